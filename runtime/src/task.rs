//! Tracked tasks: the registry entry of a task and the future wrapper that keeps it current.
//!
//! A task is counted ([`live_count`](crate::live_count)) and takes its registry entry at its
//! spawn, but is listed (shown by snapshots) only when its first poll returns `Pending`: most
//! tasks finish in their first poll and never write more than the few fields of their entry set
//! at spawn, which keeps a tracked spawn close to a plain one. A task spawned inside a
//! [`LeakCheck`](crate::LeakCheck) scope, and a blocking task, is listed at once, so a leak
//! report or a stuck closure shows even before (or without) a first suspension.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;
use tokio::task::JoinHandle;

use crate::intern::{self, Interned};
use crate::labels::LabelSet;
use crate::leak::Scope;
use crate::registry;
use crate::stack::{CURRENT, FAST, Inherit, StackCell};

pub(crate) const IDLE: u8 = 0;
pub(crate) const RUNNING: u8 = 1;

/// What a task is called in profiles. (`pub` in a private module: [`TaskName`] returns it.)
#[doc(hidden)]
pub enum Name {
    /// `std::any::type_name` of the spawned future or closure.
    Type(fn() -> &'static str),
    /// A `#[track]` function polled as a task of its own.
    Frame(&'static crate::site::FnSite),
    /// Given to [`spawn_named`].
    Given(Box<Cow<'static, str>>),
}

/// The registry entry of a tracked task, in the registry's slab (see `registry.rs`): taken at
/// spawn, given back when the task's future is dropped, then reused. Every field is paid for by
/// every live task: 96 bytes, and nothing else per task. What only some tasks have (labels, a
/// context to pass on, a leak check's watch, a given name) is in [`RICH`].
///
/// Snapshots read entries with no lock while tasks take and give them back: an entry's id is
/// read before and after its other fields, and a reading with two different ids is dropped (the
/// entry was reused meanwhile). Ids are never reused.
pub(crate) struct Header {
    /// The id of its task. Written at spawn, before the other fields.
    id: AtomicU64,
    /// Id of the tracked task that spawned this one, 0 if none.
    parent: AtomicU64,
    /// When it was listed (see [`nanos_now`]): at its first suspension, or at spawn for eagerly
    /// listed tasks.
    created: AtomicU64,
    pub(crate) polls: AtomicU64,
    /// [`GENERATION`] when the task was created.
    generation: AtomicU32,
    /// Id of its spawn site (see `intern.rs`), or [`intern::NONE`].
    site: AtomicU32,
    /// Id of its name (see `intern.rs`); [`intern::NONE`] until the task is listed.
    name: AtomicU32,
    /// Where it is in the slab.
    index: u32,
    pub(crate) state: AtomicU8,
    /// [`BLOCKING`], [`RICH_ENTRY`], and the `PARKED_*` flags.
    flags: AtomicU8,
    pub(crate) stack: StackCell,
}

/// [`Header::flags`]: a blocking task.
const BLOCKING: u8 = 1;
/// [`Header::flags`]: the task has an entry in [`RICH`].
const RICH_ENTRY: u8 = 2;
/// [`Header::flags`] of a task [`park`](TaskCore::park)ed in its header: the flags of its
/// [`TaskCore::id`].
const PARKED_LISTED: u8 = 4;
const PARKED_CTX: u8 = 8;
const PARKED_WATCHED: u8 = 16;

/// What only some tasks have, by header index: most tasks have none of it, so it stays out of
/// the header every task pays for.
#[derive(Default)]
struct Rich {
    /// What the task's children inherit (labels, leak-check scope); in the thread's context
    /// while the task is polled.
    ctx: Inherit,
    /// The leak-check scope the task was spawned in: entered at spawn, left at drop.
    scope: Option<Arc<Scope>>,
    /// The labels it shows, once set (by its listing or by `labels::with` in it; set to
    /// `None`, it shows none).
    labels: Option<Option<LabelSet>>,
    /// Its tracking waker, for tasks a leak check watches; see [`WakeTracker`].
    waker: Option<TaskWaker>,
    /// A name given to [`spawn_named`].
    name: Option<Box<Cow<'static, str>>>,
}

static RICH: LazyLock<DashMap<u32, Rich, FxBuildHasher>> =
    LazyLock::new(|| DashMap::with_hasher(FxBuildHasher));

/// What a snapshot reads of a listed task.
pub(crate) struct View {
    pub(crate) parent: u64,
    pub(crate) created: u64,
    pub(crate) polls: u64,
    pub(crate) generation: u32,
    /// Spawn-site id.
    pub(crate) site: u32,
    /// Name id.
    pub(crate) name: u32,
    pub(crate) running: bool,
    pub(crate) blocking: bool,
    /// Whether the task has an entry in [`RICH`] (see [`Header::rich`]).
    pub(crate) rich: bool,
}

/// What a snapshot reads of a task's [`Rich`] entry.
pub(crate) struct RichView {
    pub(crate) labels: Option<LabelSet>,
    pub(crate) scope: Option<Arc<Scope>>,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) lost_waker: bool,
}

impl Header {
    pub(crate) fn new(index: u32) -> Self {
        Self {
            id: AtomicU64::new(0),
            parent: AtomicU64::new(0),
            created: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            generation: AtomicU32::new(0),
            site: AtomicU32::new(intern::NONE),
            name: AtomicU32::new(intern::NONE),
            index,
            state: AtomicU8::new(IDLE),
            flags: AtomicU8::new(0),
            stack: StackCell::new(),
        }
    }

    /// The id of its task, if that task is listed.
    #[inline]
    pub(crate) fn listed_id(&self) -> Option<u64> {
        let id = self.id.load(Ordering::Acquire);
        (self.name.load(Ordering::Acquire) != intern::NONE && id != 0).then_some(id)
    }

    /// Starts the entry of a task just spawned (the entry is not listed).
    #[inline]
    fn start(&self, id: u64, parent: u64, generation: u32, site: u32, flags: u8) {
        // Published first: a snapshot that reads anything written below also reads this id
        // when it checks the id again, and drops what it read (see the type's docs).
        self.id.store(id, Ordering::Release);
        fence(Ordering::Release);
        self.parent.store(parent, Ordering::Relaxed);
        self.generation.store(generation, Ordering::Relaxed);
        self.site.store(site, Ordering::Relaxed);
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// Lists the entry: snapshots see it from now on.
    fn list(&self, name: u32, polls: u64) {
        self.created.store(nanos_now(), Ordering::Relaxed);
        self.polls.store(polls, Ordering::Relaxed);
        self.state.store(IDLE, Ordering::Relaxed);
        self.name.store(name, Ordering::Release);
        registry::count_listed();
    }

    /// Unlists the entry of an ended task (snapshots skip it from now on).
    fn unlist(&self) {
        self.name.store(intern::NONE, Ordering::Release);
        self.stack.publish(&[]);
        registry::count_unlisted();
    }

    /// Reads the entry of task `id`, if it still is that task's and listed.
    #[inline]
    pub(crate) fn view(&self, id: u64) -> Option<View> {
        if self.id.load(Ordering::Acquire) != id {
            return None;
        }
        let name = self.name.load(Ordering::Acquire);
        let flags = self.flags.load(Ordering::Relaxed);
        let view = View {
            parent: self.parent.load(Ordering::Relaxed),
            created: self.created.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
            generation: self.generation.load(Ordering::Relaxed),
            site: self.site.load(Ordering::Relaxed),
            name,
            running: self.state.load(Ordering::Relaxed) == RUNNING,
            blocking: flags & BLOCKING != 0,
            rich: flags & RICH_ENTRY != 0,
        };
        fence(Ordering::Acquire);
        (name != intern::NONE && self.id.load(Ordering::Relaxed) == id).then_some(view)
    }

    /// Reads the [`Rich`] entry of task `id` (`view` must have said it has one).
    pub(crate) fn rich(&self, id: u64) -> Option<RichView> {
        let rich = RICH.get(&self.index)?;
        // Checked under the entry's lock: the task cannot end meanwhile (its drop removes it).
        if self.id.load(Ordering::Acquire) != id {
            return None;
        }
        Some(RichView {
            labels: rich.labels.clone().flatten(),
            scope: rich.scope.clone(),
            name: rich.name.as_deref().cloned(),
            lost_waker: self.lost_waker(rich.waker.as_ref()),
        })
    }

    /// True when the task is parked and no waker can reach it any more: every clone of the
    /// waker it was polled with has been dropped and it was not woken, so nothing can ever
    /// poll it again (the analog of Go's `goroutineleak` profile).
    fn lost_waker(&self, waker: Option<&TaskWaker>) -> bool {
        // Two references are ours: the `Arc` and the `Waker` made from it, lent to the future
        // at every poll. Any other is a clone held by whatever the task waits on. A task never
        // polled yet has lent its waker to nothing.
        waker.is_some_and(|w| {
            self.state.load(Ordering::Relaxed) == IDLE
                && self.polls.load(Ordering::Relaxed) > 0
                && Arc::strong_count(&w.tracker) == 2
                && !w.tracker.woken.load(Ordering::Acquire)
        })
    }

    /// Sets the labels the task shows; returns the previous ones.
    pub(crate) fn set_labels(&self, labels: Option<LabelSet>) -> Option<LabelSet> {
        let mut rich = RICH.entry(self.index).or_default();
        self.flags.fetch_or(RICH_ENTRY, Ordering::Release);
        rich.labels.replace(labels).flatten()
    }
}

/// The process's clock origin: registry entries keep the nanoseconds since it in a `u64`, half
/// the size of an `Instant`.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since [`EPOCH`].
pub(crate) fn nanos_now() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Bumped by [`LeakCheck::global`](crate::LeakCheck::global): tasks created before a global
/// check are its baseline.
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// Starts a new generation and returns it.
pub(crate) fn next_generation() -> u32 {
    GENERATION.fetch_add(1, Ordering::Relaxed) + 1
}

/// Number of live [`Eager`] guards.
static EAGER: AtomicUsize = AtomicUsize::new(0);

/// While one exists (a [`LeakCheck::global`](crate::LeakCheck::global) check), every new task
/// is listed at once: the check must see tasks created after it even before they first poll.
pub(crate) struct Eager(());

impl Eager {
    pub(crate) fn new() -> Self {
        EAGER.fetch_add(1, Ordering::Relaxed);
        Eager(())
    }
}

impl Drop for Eager {
    fn drop(&mut self) {
        EAGER.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A task's own bookkeeping, kept in its future: its header (taken at spawn) and its id. Sixteen
/// bytes, added to the task's future.
pub(crate) struct TaskCore {
    /// `None` for a task spawned while tracking was switched off (or with no header left): then
    /// nothing else is used.
    header: Option<&'static Header>,
    /// Its id, with the [`LISTED`], [`CTX`] and [`WATCHED`] flags.
    id: u64,
}

/// [`TaskCore::id`]: the task is listed. Kept with the id so that polling a task that is not
/// listed does not touch its header (on another thread's cache, right after a spawn).
const LISTED: u64 = 1 << 63;
/// [`TaskCore::id`]: the task has a context of its own (in [`RICH`]).
const CTX: u64 = 1 << 62;
/// [`TaskCore::id`]: the task has a tracking waker (in [`RICH`]).
const WATCHED: u64 = 1 << 61;

impl TaskCore {
    /// A task spawned from the current thread's context, with `labels` added to the inherited
    /// ones; untracked when tracking is switched off.
    fn new(site: Option<&'static Location<'static>>, labels: &[(&str, &str)]) -> Self {
        if !crate::enabled::enabled() {
            return Self::OFF;
        }
        let (parent, mut ctx) = inherited();
        if !labels.is_empty() {
            ctx.labels = Some(Arc::new(crate::labels::Labels::merged(
                ctx.labels.as_deref(),
                labels.iter().copied(),
            )));
        }
        let (id, header) = registry::spawned();
        let Some(header) = header else {
            // Counted, but not tracked: it ends as soon as it is counted.
            registry::completed();
            return Self::OFF;
        };
        let site = site.map_or(intern::NONE, |l| intern::id(Interned::Site(l)));
        let generation = GENERATION.load(Ordering::Relaxed);
        if ctx.is_empty() {
            header.start(id, parent, generation, site, 0);
            return Self {
                header: Some(header),
                id,
            };
        }
        header.start(id, parent, generation, site, RICH_ENTRY);
        if let Some(scope) = &ctx.scope {
            scope.enter();
        }
        let rich = Rich {
            scope: ctx.scope.clone(),
            ctx,
            ..Rich::default()
        };
        RICH.insert(header.index, rich);
        Self {
            header: Some(header),
            id: id | CTX,
        }
    }

    /// A `#[track]` frame polled outside any task, as a task of its own.
    pub(crate) fn root(labels: &[(&str, &str)]) -> Self {
        let core = Self::new(None, labels);
        if let Some(h) = core.header {
            h.parent.store(0, Ordering::Relaxed);
        }
        core
    }

    const OFF: TaskCore = TaskCore {
        header: None,
        id: 0,
    };

    /// Keeps the task in its header alone, for a root frame (which has room for the header's
    /// index only); `None` for an untracked task. [`unpark`](Self::unpark) takes it back.
    pub(crate) fn park(self) -> Option<u32> {
        let h = self.header?;
        let mut bits = 0;
        for (core, header) in [
            (LISTED, PARKED_LISTED),
            (CTX, PARKED_CTX),
            (WATCHED, PARKED_WATCHED),
        ] {
            if self.id & core != 0 {
                bits |= header;
            }
        }
        h.flags.fetch_and(
            !(PARKED_LISTED | PARKED_CTX | PARKED_WATCHED),
            Ordering::Relaxed,
        );
        h.flags.fetch_or(bits, Ordering::Relaxed);
        // Its header stays taken: the task lives on in the frame.
        std::mem::forget(self);
        Some(h.index)
    }

    /// The task [`park`](Self::park)ed at `index`.
    pub(crate) fn unpark(index: u32) -> TaskCore {
        let Some(h) = registry::header(index) else {
            return Self::OFF;
        };
        let flags = h.flags.load(Ordering::Relaxed);
        let mut id = h.id.load(Ordering::Relaxed);
        for (core, header) in [
            (LISTED, PARKED_LISTED),
            (CTX, PARKED_CTX),
            (WATCHED, PARKED_WATCHED),
        ] {
            if flags & header != 0 {
                id |= core;
            }
        }
        TaskCore {
            header: Some(h),
            id,
        }
    }

    /// The task's id.
    #[inline]
    fn id(&self) -> u64 {
        self.id & !(LISTED | CTX | WATCHED)
    }

    /// Tasks inside a leak-check scope (or created while a global check exists) are listed
    /// before their first poll: a report must list them even if they never ran.
    fn wants_eager(&self) -> bool {
        self.header.is_some() && (self.scope().is_some() || EAGER.load(Ordering::Relaxed) != 0)
    }

    fn scope(&self) -> Option<Arc<Scope>> {
        if self.id & CTX == 0 {
            return None;
        }
        RICH.get(&self.header?.index)?.scope.clone()
    }

    /// Lists the task before its first poll, with its tracking waker (blocking tasks have
    /// none: a closure is never woken).
    fn register(&mut self, name: Name, blocking: bool) {
        let Some(h) = self.header else { return };
        let waker = (!blocking).then(TaskWaker::new);
        if blocking {
            h.flags.fetch_or(BLOCKING, Ordering::Relaxed);
        } else {
            self.id |= WATCHED;
        }
        self.id |= LISTED;
        list(h, name, self.ctx_labels(), waker, 0);
    }
}

impl Drop for TaskCore {
    fn drop(&mut self) {
        let Some(h) = self.header else { return };
        if self.id & LISTED != 0 {
            h.unlist();
        }
        // Only a task listed or with a context can have a rich entry: the others' headers are
        // not touched here (that of a task that never suspended may be in another core's cache).
        let rich =
            if self.id & (LISTED | CTX) != 0 && h.flags.load(Ordering::Relaxed) & RICH_ENTRY != 0 {
                RICH.remove(&h.index).map(|(_, rich)| rich)
            } else {
                None
            };
        registry::ended(h);
        // Outside the map's lock, and after the task is counted ended (a check waiting on the
        // scope then sees it gone).
        if let Some(scope) = rich.and_then(|r| r.scope) {
            scope.exit();
        }
    }
}

/// The parent id and context a task spawned right now inherits.
#[inline]
pub(crate) fn inherited() -> (u64, Inherit) {
    let (task, rich) = FAST.with(|f| (f.task.get(), f.rich.get()));
    if !rich {
        return (task, Inherit::NONE);
    }
    (task, CURRENT.with_borrow(|c| c.ctx.clone()))
}

pin_project_lite::pin_project! {
    /// A spawned future, tracked as a task.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Tracked<F, N = Unnamed> {
        // Declared first so it is dropped first: the entry outlives the future's drop.
        #[pin]
        fut: F,
        core: TaskCore,
        // A type parameter, not an `Option`: most tasks have no name and carry no field for it.
        name: N,
    }
}

/// The name of a spawned task, as its type: [`Unnamed`] (named by its future's type) or
/// [`Named`].
#[doc(hidden)]
pub trait TaskName {
    /// The name of a task whose future is an `F`.
    fn name<F>(&self) -> Name;
}

/// A task named by the type of its future.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Unnamed;

impl TaskName for Unnamed {
    #[inline]
    fn name<F>(&self) -> Name {
        Name::Type(std::any::type_name::<F>)
    }
}

/// A task given a name (boxed: one pointer in the task's future).
#[doc(hidden)]
#[derive(Debug)]
pub struct Named(Box<Cow<'static, str>>);

impl Named {
    pub(crate) fn new(name: Cow<'static, str>) -> Self {
        Named(Box::new(name))
    }
}

impl TaskName for Named {
    fn name<F>(&self) -> Name {
        Name::Given(self.0.clone())
    }
}

impl<F: Future> Tracked<F> {
    pub(crate) fn new(site: &'static Location<'static>, fut: F) -> Self {
        Self::with_labels(site, Unnamed, &[], fut)
    }
}

impl<F: Future, N: TaskName> Tracked<F, N> {
    /// A task named `name`, with `labels` added to the inherited ones.
    pub(crate) fn with_labels(
        site: &'static Location<'static>,
        name: N,
        labels: &[(&str, &str)],
        fut: F,
    ) -> Self {
        let mut core = TaskCore::new(Some(site), labels);
        if core.wants_eager() {
            core.register(name.name::<F>(), false);
        }
        Self { fut, core, name }
    }
}

impl<F: Future, N: TaskName> Future for Tracked<F, N> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let name = &*this.name;
        poll_task(this.core, || name.name::<F>(), this.fut, cx)
    }
}

/// Polls `fut` as the body of the task `core`: makes it the thread's current task, counts the
/// poll, lists the task at its first suspension and publishes where it waits.
#[inline(always)]
pub(crate) fn poll_task<F: Future>(
    core: &mut TaskCore,
    name: impl FnOnce() -> Name,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    if core.header.is_none() {
        return fut.poll(cx);
    }
    let polling = core.begin();
    // Two poll sites: the common one passes the executor's context on as it is.
    let out = match core.tracking_waker(cx.waker()) {
        None => fut.poll(cx),
        Some(tracking) => fut.poll(&mut Context::from_waker(&tracking)),
    };
    core.end(polling, out.is_pending(), name);
    out
}

/// A poll of a task under way: begun by [`TaskCore::begin`], finished by [`TaskCore::end`]. If
/// the poll panics, dropping it restores the thread's previous task and context.
pub(crate) struct Polling {
    prev_task: u64,
    prev_header: Option<&'static Header>,
    /// Length of the pending path when the poll began: the task's entries follow.
    pub(crate) start: usize,
    /// Whether the task's context was installed (the thread's is saved in `Current`).
    swapped: bool,
}

impl TaskCore {
    /// The waker to poll with instead of the executor's (`executor`, which it will wake): only
    /// a task watched by a leak check lends its future the tracking waker (see `WakeTracker`);
    /// the others cost nothing on wake-ups.
    #[inline]
    pub(crate) fn tracking_waker(&self, executor: &Waker) -> Option<Waker> {
        if self.id & WATCHED == 0 {
            return None;
        }
        tracking_waker(self.header?, executor)
    }

    /// Whether this task is tracked (it was not spawned while tracking was off).
    #[inline]
    pub(crate) fn is_tracked(&self) -> bool {
        self.header.is_some()
    }

    /// Makes the task the thread's current one for a poll.
    #[inline(always)]
    pub(crate) fn begin(&mut self) -> Polling {
        let listed = match self.header {
            Some(h) if self.id & LISTED != 0 => Some(h),
            _ => None,
        };
        let (prev_task, prev_header, start, rich) = FAST.with(|f| {
            f.bump_generation();
            (
                f.task.replace(self.id()),
                f.header.replace(self.header),
                f.len.get(),
                f.rich.get(),
            )
        });
        let swapped = rich || self.id & CTX != 0;
        if swapped {
            swap_in(self);
        }
        if let Some(h) = listed {
            // Only this poller writes these, so a load and a store are enough (no
            // read-modify-write).
            h.polls
                .store(h.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            h.state.store(RUNNING, Ordering::Relaxed);
        }
        Polling {
            prev_task,
            prev_header,
            start,
            swapped,
        }
    }

    /// Ends a poll begun by [`begin`](Self::begin): lists the task at its first suspension,
    /// publishes where it waits, and gives the thread its previous task and context back.
    #[inline(always)]
    pub(crate) fn end(&mut self, polling: Polling, pending: bool, name: impl FnOnce() -> Name) {
        let start = polling.start;
        if pending && let Some(h) = self.header {
            if self.id & LISTED == 0 {
                self.id |= LISTED;
                register_pending(h, name, start);
            } else if crate::stack::mark() != start || !h.stack.is_empty() {
                // (Nothing pushed and nothing published is the common poll of a task that
                // waits outside `#[track]` code.)
                publish(h, start);
            }
            // A task whose last poll completed stays `RUNNING` until its future is dropped
            // (right after): idle, with its waker's flag reset by that poll, it would look like
            // a task no waker can reach to a leak check looking in between.
            h.state.store(IDLE, Ordering::Relaxed);
        }
        if polling.leave() {
            let taken = swap_out(polling.swapped);
            self.keep_ctx(taken);
        }
        // Left: its drop (for a poll that panicked) must not run.
        std::mem::forget(polling);
    }
}

impl Polling {
    /// Gives the thread its previous task back and cuts the pending path; true when the
    /// contexts must be swapped back too.
    #[inline(always)]
    fn leave(&self) -> bool {
        let (len, rich) = FAST.with(|f| {
            f.task.set(self.prev_task);
            f.header.set(self.prev_header);
            if self.start == 0 {
                f.buried.set(false);
            }
            (f.len.get(), f.rich.get())
        });
        if len > self.start {
            crate::stack::truncate_path(self.start);
        }
        rich || self.swapped
    }
}

impl Drop for Polling {
    /// After a poll that panicked: the thread gets its previous task and context back (the
    /// task is done for, its context with it).
    #[inline(always)]
    fn drop(&mut self) {
        if self.leave() {
            drop(swap_out(self.swapped));
        }
    }
}

/// Installs a task's context as the thread's, saving the thread's.
#[cold]
fn swap_in(core: &TaskCore) {
    let mine = core.take_ctx();
    CURRENT.with_borrow_mut(|c| {
        let prev = std::mem::replace(&mut c.ctx, mine);
        c.saved.push(prev);
        c.sync();
    });
}

/// Takes the task's context back and reinstalls the thread's (saved by `swap_in` if `saved`;
/// display labels only live during the poll of a task not listed yet).
#[cold]
fn swap_out(saved: bool) -> Inherit {
    CURRENT.with_borrow_mut(|c| {
        c.display = None;
        let prev = if saved { c.saved.pop() } else { None };
        let taken = std::mem::replace(&mut c.ctx, prev.unwrap_or(Inherit::NONE));
        c.sync();
        taken
    })
}

impl TaskCore {
    /// Takes the task's context out of its [`Rich`] entry.
    fn take_ctx(&self) -> Inherit {
        match self.header {
            Some(h) if self.id & CTX != 0 => RICH
                .get_mut(&h.index)
                .map(|mut r| std::mem::take(&mut r.ctx))
                .unwrap_or_default(),
            _ => Inherit::NONE,
        }
    }

    /// Keeps `ctx` (taken back after a poll) as the task's context.
    #[cold]
    fn keep_ctx(&mut self, ctx: Inherit) {
        let Some(h) = self.header else { return };
        if ctx.is_empty() && self.id & CTX == 0 {
            return;
        }
        if ctx.is_empty() {
            self.id &= !CTX;
        } else {
            self.id |= CTX;
            h.flags.fetch_or(RICH_ENTRY, Ordering::Relaxed);
        }
        RICH.entry(h.index).or_default().ctx = ctx;
    }

    /// The labels of the task's own context.
    fn ctx_labels(&self) -> Option<LabelSet> {
        match self.header {
            Some(h) if self.id & CTX != 0 => RICH.get(&h.index)?.ctx.labels.clone(),
            _ => None,
        }
    }
}

/// Publishes the entries pushed since `start` as the task's stack.
#[inline(never)]
fn publish(header: &Header, start: usize) {
    crate::stack::publish_path(&header.stack, start);
}

/// Lists a task at the end of its first poll, which returned `Pending`, and publishes where it
/// waits. The thread's context is the task's until the poll's guard drops.
#[cold]
#[inline(never)]
fn register_pending(h: &'static Header, name: impl FnOnce() -> Name, start: usize) {
    let labels = CURRENT.with_borrow_mut(|c| {
        let labels = c.display.take().unwrap_or_else(|| c.ctx.labels.clone());
        c.sync();
        labels
    });
    list(h, name(), labels, None, 1);
    crate::stack::publish_path(&h.stack, start);
}

/// Lists `h`: its name, the labels it starts with, its tracking waker.
#[cold]
#[inline(never)]
fn list(h: &Header, name: Name, labels: Option<LabelSet>, waker: Option<TaskWaker>, polls: u64) {
    let (name, given) = match name {
        Name::Type(t) => (intern::id(Interned::Type(t)), None),
        Name::Frame(f) => (intern::id(Interned::Frame(f)), None),
        Name::Given(n) => (intern::GIVEN, Some(n)),
    };
    if labels.is_some() || waker.is_some() || given.is_some() {
        let mut rich = RICH.entry(h.index).or_default();
        if labels.is_some() {
            rich.labels = Some(labels);
        }
        rich.waker = waker;
        rich.name = given;
        h.flags.fetch_or(RICH_ENTRY, Ordering::Relaxed);
    }
    h.list(name, polls);
}

/// The tracking waker of `h`, refreshed with the executor's.
#[cold]
fn tracking_waker(h: &Header, executor: &Waker) -> Option<Waker> {
    let rich = RICH.get(&h.index)?;
    let w = rich.waker.as_ref()?;
    w.tracker.refresh(executor);
    Some(w.waker.clone())
}

/// Spawns a tracked task on the current tokio runtime, like [`tokio::spawn`].
///
/// The task counts in [`live_count`](crate::live_count) until its future is dropped, and shows
/// in snapshots from its first suspension on. Its spawn site is the caller's `file:line:col`; its
/// parent is the tracked task calling `spawn` (if any), whose labels it inherits.
///
/// # Panics
///
/// Like [`tokio::spawn`], when called outside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let handle = taskprof::spawn(async { 1 + 1 });
/// assert_eq!(handle.await.unwrap(), 2);
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if !crate::enabled::enabled() {
        // Switched off: exactly `tokio::spawn`, not even the wrapper's size.
        return tokio::spawn(fut);
    }
    tokio::spawn(Tracked::new(Location::caller(), fut))
}

/// Like [`spawn`], with a name shown in profiles instead of the future's type.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let handle = taskprof::spawn_named("config-watcher", async move { let _ = rx.await; });
/// tokio::task::yield_now().await;
/// assert!(taskprof::snapshot().tasks().iter().any(|t| t.name() == "config-watcher"));
/// drop(tx);
/// handle.await.unwrap();
/// # }
/// ```
#[track_caller]
pub fn spawn_named<F>(name: impl Into<Cow<'static, str>>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if !crate::enabled::enabled() {
        return tokio::spawn(fut);
    }
    tokio::spawn(Tracked::with_labels(
        Location::caller(),
        Named::new(name.into()),
        &[],
        fut,
    ))
}

/// Runs a blocking closure on tokio's blocking pool as a tracked task, like
/// [`tokio::task::spawn_blocking`].
///
/// The task is listed from the call until the closure returns (or is dropped unrun at
/// shutdown). Tasks spawned from inside the closure have it as their parent.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sum = taskprof::spawn_blocking(|| (1..=10).sum::<u32>()).await.unwrap();
/// assert_eq!(sum, 55);
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(tracked_blocking(Location::caller(), f))
}

/// Wraps a closure so it runs as a listed blocking task.
pub(crate) fn tracked_blocking<F, R>(site: &'static Location<'static>, f: F) -> impl FnOnce() -> R
where
    F: FnOnce() -> R,
{
    let mut core = TaskCore::new(Some(site), &[]);
    // Registered at once: a closure stuck in its first (and only) run must show.
    core.register(Name::Type(std::any::type_name::<F>), true);
    move || {
        if !core.is_tracked() {
            return f();
        }
        let polling = core.begin();
        let out = f();
        // Never pending, and listed already: the name is not asked for.
        core.end(polling, false, || Name::Type(std::any::type_name::<F>));
        drop(core);
        out
    }
}

/// The waker a task watched by a leak check is polled with: it forwards wakes to the executor's
/// waker and lets [`Header::lost_waker`] count how many clones of it are still held, so that a
/// check can report a task nothing can ever wake at once instead of waiting out its grace.
/// Other tasks are polled with the executor's own waker: forwarding costs every wake-up two
/// more atomic read-modify-writes, over budget for an always-on profiler.
#[derive(Default)]
pub(crate) struct WakeTracker {
    /// The executor's waker, from the latest poll.
    executor: Mutex<Option<Waker>>,
    /// Set by a wake, cleared when a poll starts: a woken task is not lost even if it holds no
    /// waker clone.
    woken: AtomicBool,
}

impl WakeTracker {
    /// Called at the start of every poll with the executor's waker.
    fn refresh(&self, executor: &Waker) {
        self.woken.store(false, Ordering::Relaxed);
        let mut current = self.executor.lock().unwrap_or_else(|p| p.into_inner());
        // tokio hands a task the same waker every time; other executors may not.
        if !current.as_ref().is_some_and(|w| w.will_wake(executor)) {
            *current = Some(executor.clone());
        }
    }
}

impl Wake for WakeTracker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // tokio's wake only schedules the task; it never re-enters this waker.
        if let Some(w) = &*self.executor.lock().unwrap_or_else(|p| p.into_inner()) {
            w.wake_by_ref();
        }
    }
}

/// A task's tracking waker and the `Waker` made from it, lent to its future at every poll.
pub(crate) struct TaskWaker {
    tracker: Arc<WakeTracker>,
    waker: Waker,
}

impl TaskWaker {
    fn new() -> Self {
        let tracker = Arc::new(WakeTracker::default());
        Self {
            waker: Waker::from(tracker.clone()),
            tracker,
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use std::future::Ready;

    use crate::frame::{AwaitPoint, Framed, InBody, Labelled};

    /// A zero-sized site, as the macro defines.
    struct Site;

    /// A task's entry is reused by the next task of its thread: that task shows with its own
    /// name, labels and id, nothing of the one before.
    #[test]
    fn a_reused_entry_shows_only_its_new_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let mut first = None;
            crate::labels::with(&[("reused", "first")], async {
                first = Some(crate::spawn_named("reused-entry-first", async move {
                    let _ = rx.await;
                }));
            })
            .await;
            tokio::task::yield_now().await;
            let listed = crate::snapshot();
            let first_task = listed
                .tasks()
                .iter()
                .find(|t| t.name() == "reused-entry-first")
                .expect("the first task is listed");
            assert_eq!(first_task.labels().get("reused"), Some("first"));
            let first_id = first_task.id();
            drop(tx);
            if let Some(first) = first {
                let _ = first.await;
            }

            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let second = crate::spawn(async move {
                let _ = rx.await;
            });
            tokio::task::yield_now().await;
            let snap = crate::snapshot();
            assert!(snap.tasks().iter().all(|t| t.id() != first_id));
            assert!(
                snap.tasks()
                    .iter()
                    .all(|t| t.name() != "reused-entry-first")
            );
            let second_task = snap
                .tasks()
                .iter()
                .find(|t| t.id() > first_id && t.labels().get("reused").is_none())
                .expect("the second task is listed, without the first one's labels");
            assert!(
                second_task
                    .name()
                    .contains("a_reused_entry_shows_only_its_new_task")
            );
            drop(tx);
            let _ = second.await;
        });
    }

    /// Every byte here is paid by every parked task (issue E's memory budget): a field added to
    /// one of these must pay for itself.
    #[test]
    fn per_task_records_stay_small() {
        // In the registry's slab: no allocation of its own.
        assert_eq!(size_of::<super::Header>(), 96);
        assert_eq!(size_of::<super::Tracked<Ready<u64>>>(), 16 + 16);
        // Over the body's future: a frame adds 8 bytes (16 with labels), an await point 8, or
        // nothing directly in a frame's body.
        assert_eq!(size_of::<Framed<Ready<u64>, Site>>(), 16 + 8);
        assert_eq!(size_of::<Framed<Ready<u64>, Site, Labelled>>(), 16 + 16);
        assert_eq!(size_of::<AwaitPoint<Ready<u64>, Site>>(), 16 + 8);
        assert_eq!(size_of::<AwaitPoint<Ready<u64>, Site, InBody>>(), 16);
    }
}
