//! Tracked tasks: the registry entry of a task and the future wrapper that keeps it current.
//!
//! A task is counted ([`live_count`](crate::live_count)) from its spawn, but its registry entry
//! is created only when its first poll returns `Pending`: most tasks finish in their first poll
//! and never touch the shared registry, which keeps a tracked spawn close to a plain one. A task
//! spawned inside a [`LeakCheck`](crate::LeakCheck) scope, and a blocking task, registers at
//! once, so a leak report or a stuck closure shows even before (or without) a first suspension.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::labels::LabelSet;
use crate::leak::Scope;
use crate::registry;
use crate::stack::{CURRENT, FAST, Inherit, StackCell, UNLISTED};

pub(crate) const IDLE: u8 = 0;
pub(crate) const RUNNING: u8 = 1;

/// What a task is called in profiles.
///
/// Every variant is one pointer, so a name takes 16 bytes in every registry entry. (`pub` in a
/// private module: [`TaskName`] returns it.)
#[doc(hidden)]
pub enum Name {
    /// `std::any::type_name` of the spawned future or closure.
    Type(fn() -> &'static str),
    /// A `#[track]` function polled as a task of its own.
    Frame(&'static crate::site::FnSite),
    /// Given to [`spawn_named`].
    Given(Box<Cow<'static, str>>),
}

/// The registry entry of a live task (its id is next to it in the registry's slot). Every field
/// is paid for by every parked task: 136 bytes, 160 with the `Arc`'s counts and the
/// allocator's word.
pub(crate) struct Header {
    /// Id of the tracked task that spawned this one, 0 if none.
    pub(crate) parent: u64,
    /// When it was registered (see [`nanos_now`]): at its first suspension, or at spawn for
    /// eagerly registered tasks.
    pub(crate) created: u64,
    pub(crate) spawn_site: Option<&'static Location<'static>>,
    pub(crate) name: Name,
    pub(crate) blocking: bool,
    /// [`GENERATION`] when the task was created.
    pub(crate) generation: u32,
    labels: Mutex<Option<LabelSet>>,
    /// Whether `labels` was ever set: only then does reading them take the lock.
    labelled: AtomicBool,
    pub(crate) polls: AtomicU64,
    pub(crate) state: AtomicU8,
    pub(crate) stack: StackCell,
    /// Only for tasks a leak check watches: boxed, every entry carries the field.
    watch: Option<Box<Watch>>,
}

/// What a leak check needs of the tasks it watches.
struct Watch {
    /// The leak-check scope the task was spawned in.
    scope: Option<Arc<Scope>>,
    /// Its tracking waker; see [`WakeTracker`].
    waker: Option<TaskWaker>,
}

impl Header {
    /// The leak-check scope the task was spawned in.
    pub(crate) fn scope(&self) -> Option<&Arc<Scope>> {
        self.watch.as_ref()?.scope.as_ref()
    }

    fn waker(&self) -> Option<&TaskWaker> {
        self.watch.as_ref()?.waker.as_ref()
    }

    pub(crate) fn labels(&self) -> Option<LabelSet> {
        // Most tasks never have labels: a snapshot of them takes no lock.
        if !self.labelled.load(Ordering::Acquire) {
            return None;
        }
        self.labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True when the task is parked and no waker can reach it any more: every clone of the
    /// waker it was polled with has been dropped and it was not woken, so nothing can ever
    /// poll it again (the analog of Go's `goroutineleak` profile).
    pub(crate) fn lost_waker(&self) -> bool {
        // Two references are ours: the `Arc` and the `Waker` made from it, lent to the future
        // at every poll. Any other is a clone held by whatever the task waits on. A task never
        // polled yet has lent its waker to nothing.
        self.waker().is_some_and(|w| {
            self.state.load(Ordering::Relaxed) == IDLE
                && self.polls.load(Ordering::Relaxed) > 0
                && Arc::strong_count(&w.tracker) == 2
                && !w.tracker.woken.load(Ordering::Acquire)
        })
    }

    pub(crate) fn set_labels(&self, labels: Option<LabelSet>) -> Option<LabelSet> {
        let mut slot = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        self.labelled.store(true, Ordering::Release);
        std::mem::replace(&mut *slot, labels)
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
/// registers at once: the check must see tasks created after it even before they first poll.
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

/// A task's own bookkeeping, kept in its future: counted from creation to drop, registered in
/// the registry from its first suspension (or at once, see the module docs).
pub(crate) struct TaskCore {
    /// 0 for a task spawned while tracking was switched off: then nothing else is used.
    id: u64,
    parent: u64,
    generation: u32,
    /// The registry slot of `header` (see `registry.rs`), [`UNLISTED`] while there is none.
    slot: u32,
    site: Option<&'static Location<'static>>,
    /// Labels and leak-check scope, moved into the thread-local context around each poll;
    /// boxed, and only when there are any: most tasks have none.
    ctx: Option<Box<Inherit>>,
    header: Option<Arc<Header>>,
}

impl TaskCore {
    /// A task spawned from the current thread's context, with `labels` added to the inherited
    /// ones; `None` when tracking is switched off.
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
        if let Some(scope) = &ctx.scope {
            scope.enter();
        }
        Self {
            id: registry::spawned(),
            parent,
            generation: GENERATION.load(Ordering::Relaxed),
            slot: UNLISTED,
            site,
            ctx: (!ctx.is_empty()).then(|| Box::new(ctx)),
            header: None,
        }
    }

    /// A `#[track]` frame polled outside any task, as a task of its own.
    pub(crate) fn root(labels: &[(&str, &str)]) -> Self {
        let mut core = Self::new(None, labels);
        core.parent = 0;
        core
    }

    const OFF: TaskCore = TaskCore {
        id: 0,
        parent: 0,
        generation: 0,
        slot: UNLISTED,
        site: None,
        ctx: None,
        header: None,
    };

    /// Tasks inside a leak-check scope (or created while a global check exists) register before
    /// their first poll: a report must list them even if they never ran.
    fn wants_eager(&self) -> bool {
        self.id != 0 && (self.scope().is_some() || EAGER.load(Ordering::Relaxed) != 0)
    }

    fn scope(&self) -> Option<&Arc<Scope>> {
        self.ctx.as_ref()?.scope.as_ref()
    }

    /// Creates and inserts the registry entry before the first poll.
    fn register(&mut self, name: Name, labels: Option<LabelSet>, blocking: bool) {
        // The executor's waker comes with the first poll (see `refresh`).
        let waker = (!blocking).then(TaskWaker::new);
        let entry = self.entry(self.scope().cloned(), blocking, 0);
        let (header, slot) = entry.register(name, labels, waker);
        (self.header, self.slot) = (Some(header), slot);
    }

    /// What its registry entry is made from.
    fn entry(&self, scope: Option<Arc<Scope>>, blocking: bool, polls: u64) -> Entry {
        Entry {
            id: self.id,
            parent: self.parent,
            generation: self.generation,
            site: self.site,
            scope,
            blocking,
            polls,
        }
    }
}

impl Drop for TaskCore {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        if self.header.take().is_some() {
            registry::remove(self.id, self.slot);
        }
        registry::completed();
        if let Some(scope) = self.scope() {
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
            let labels = core.ctx.as_ref().and_then(|c| c.labels.clone());
            core.register(name.name::<F>(), labels, false);
        }
        Self { fut, core, name }
    }
}

impl<F: Future, N: TaskName> Future for Tracked<F, N> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let name = &*this.name;
        poll_task(this.core, || name.name::<F>(), this.fut, cx)
    }
}

/// Polls `fut` as the body of the task `core`: makes it the thread's current task, counts the
/// poll, registers the task at its first suspension and publishes where it waits.
#[inline]
pub(crate) fn poll_task<F: Future>(
    core: &mut TaskCore,
    name: impl FnOnce() -> Name,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    if core.id == 0 {
        return fut.poll(cx);
    }
    let polling = core.begin();
    let waker = core.tracking_waker(cx.waker()).unwrap_or(cx.waker());
    let out = fut.poll(&mut Context::from_waker(waker));
    core.end(polling, out.is_pending(), name);
    out
}

/// A poll of a task under way: begun by [`TaskCore::begin`], finished by [`TaskCore::end`]. If
/// the poll panics, dropping it restores the thread's previous task and context.
pub(crate) struct Polling {
    prev_task: u64,
    prev_slot: u32,
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
    pub(crate) fn tracking_waker(&self, executor: &Waker) -> Option<&Waker> {
        let wake = self.header.as_ref()?.waker()?;
        wake.tracker.refresh(executor);
        Some(&wake.waker)
    }

    /// Whether this task is tracked (it was not spawned while tracking was off).
    #[inline]
    pub(crate) fn is_tracked(&self) -> bool {
        self.id != 0
    }

    /// Makes the task the thread's current one for a poll.
    #[inline(always)]
    pub(crate) fn begin(&mut self) -> Polling {
        let (prev_task, prev_slot, start, rich) = FAST.with(|f| {
            f.generation.set(f.generation.get().wrapping_add(1));
            (
                f.task.replace(self.id),
                f.slot.replace(self.slot),
                f.len.get(),
                f.rich.get(),
            )
        });
        let swapped = rich || self.ctx.is_some();
        if swapped {
            swap_in(&mut self.ctx);
        }
        if let Some(h) = &self.header {
            // Only this poller writes these, so a load and a store are enough (no
            // read-modify-write).
            h.polls
                .store(h.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            h.state.store(RUNNING, Ordering::Relaxed);
        }
        Polling {
            prev_task,
            prev_slot,
            start,
            swapped,
        }
    }

    /// Ends a poll begun by [`begin`](Self::begin): registers the task at its first suspension,
    /// publishes where it waits, and gives the thread its previous task and context back.
    #[inline(always)]
    pub(crate) fn end(&mut self, polling: Polling, pending: bool, name: impl FnOnce() -> Name) {
        let start = polling.start;
        if pending {
            match &self.header {
                // Nothing pushed and nothing published: the common poll of a task that waits
                // outside `#[track]` code.
                Some(h) if crate::stack::mark() == start && h.stack.is_empty() => {}
                Some(h) => publish(h, start),
                None => {
                    // The scope is in the thread-local context until the poll ends.
                    let entry = self.entry(None, false, 1);
                    let (header, slot) = register_pending(entry, name, start);
                    (self.header, self.slot) = (Some(header), slot);
                }
            }
        }
        // A task whose last poll completed stays `RUNNING` until its future is dropped (right
        // after): idle, with its waker's flag reset by that poll, it would look like a task no
        // waker can reach to a leak check looking in between.
        if pending && let Some(h) = &self.header {
            h.state.store(IDLE, Ordering::Relaxed);
        }
        if polling.leave() {
            swap_out(&mut self.ctx, polling.swapped);
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
            f.slot.set(self.prev_slot);
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
            swap_out(&mut None, self.swapped);
        }
    }
}

/// Installs a task's context as the thread's, saving the thread's.
#[cold]
fn swap_in(ctx: &mut Option<Box<Inherit>>) {
    // The box stays, empty, for `swap_out` to put the context back in.
    let mine = ctx.as_deref_mut().map(std::mem::take).unwrap_or_default();
    CURRENT.with_borrow_mut(|c| {
        let prev = std::mem::replace(&mut c.ctx, mine);
        c.saved.push(prev);
        c.sync();
    });
}

/// Takes the task's context back into `ctx` and reinstalls the thread's (saved by `swap_in` if
/// `saved`; display labels only live during an unregistered task's poll).
#[cold]
fn swap_out(ctx: &mut Option<Box<Inherit>>, saved: bool) {
    let taken = CURRENT.with_borrow_mut(|c| {
        c.display = None;
        let prev = if saved { c.saved.pop() } else { None };
        let taken = std::mem::replace(&mut c.ctx, prev.unwrap_or(Inherit::NONE));
        c.sync();
        taken
    });
    match ctx {
        _ if taken.is_empty() => *ctx = None,
        Some(mine) => **mine = taken,
        None => *ctx = Some(Box::new(taken)),
    }
}

/// Publishes the entries pushed since `start` as the task's stack.
#[inline(never)]
fn publish(header: &Header, start: usize) {
    crate::stack::publish_path(&header.stack, start);
}

/// Registers a task at the end of its first poll, which returned `Pending`, and publishes
/// where it waits. The thread's context is the task's until the poll's guard drops.
#[cold]
#[inline(never)]
fn register_pending(
    mut entry: Entry,
    name: impl FnOnce() -> Name,
    start: usize,
) -> (Arc<Header>, u32) {
    let (header, slot) = CURRENT.with_borrow_mut(|c| {
        entry.scope = c.ctx.scope.clone();
        let labels = c.display.take().unwrap_or_else(|| c.ctx.labels.clone());
        c.sync();
        entry.register(name(), labels, None)
    });
    crate::stack::publish_path(&header.stack, start);
    (header, slot)
}

/// What a registry entry is made from.
struct Entry {
    id: u64,
    parent: u64,
    generation: u32,
    site: Option<&'static Location<'static>>,
    scope: Option<Arc<Scope>>,
    blocking: bool,
    polls: u64,
}

impl Entry {
    #[cold]
    #[inline(never)]
    fn register(
        self,
        name: Name,
        labels: Option<LabelSet>,
        waker: Option<TaskWaker>,
    ) -> (Arc<Header>, u32) {
        let watch = (self.scope.is_some() || waker.is_some()).then(|| {
            Box::new(Watch {
                scope: self.scope,
                waker,
            })
        });
        let header = Arc::new(Header {
            parent: self.parent,
            created: nanos_now(),
            spawn_site: self.site,
            name,
            blocking: self.blocking,
            generation: self.generation,
            labelled: AtomicBool::new(labels.is_some()),
            labels: Mutex::new(labels),
            polls: AtomicU64::new(self.polls),
            state: AtomicU8::new(IDLE),
            stack: StackCell::new(),
            watch,
        });
        let slot = registry::insert(self.id, header.clone());
        (header, slot)
    }
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
/// The task is registered from the call until the closure returns (or is dropped unrun at
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

/// Wraps a closure so it runs as a registered blocking task.
pub(crate) fn tracked_blocking<F, R>(site: &'static Location<'static>, f: F) -> impl FnOnce() -> R
where
    F: FnOnce() -> R,
{
    let mut core = TaskCore::new(Some(site), &[]);
    if core.id != 0 {
        // Registered at once: a closure stuck in its first (and only) run must show.
        let labels = core.ctx.as_ref().and_then(|c| c.labels.clone());
        core.register(Name::Type(std::any::type_name::<F>), labels, true);
    }
    move || {
        if !core.is_tracked() {
            return f();
        }
        let polling = core.begin();
        let out = f();
        // Never pending, and registered already: the name is not asked for.
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

    use crate::frame::{AwaitPoint, Framed};

    /// A zero-sized site, as the macro defines.
    struct Site;

    /// Every byte here is paid by every parked task (issue E's memory budget): a field added to
    /// one of these must pay for itself.
    #[test]
    fn per_task_records_stay_small() {
        // 136 + 16 (`Arc` counts) + 8 (allocator word) = 160, a malloc size class boundary.
        assert_eq!(size_of::<super::Header>(), 136);
        assert_eq!(size_of::<super::Tracked<Ready<u64>>>(), 48 + 16);
        // Over the body's future: a frame adds 16 bytes, an await point 8.
        assert_eq!(size_of::<Framed<Ready<u64>, Site>>(), 16 + 16);
        assert_eq!(size_of::<AwaitPoint<Ready<u64>, Site>>(), 16 + 8);
    }
}
