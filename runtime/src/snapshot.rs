//! Point-in-time views of the live tasks: [`snapshot`], [`Snapshot`], [`Group`] and [`Diff`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::http::HttpCallInfo;
use rustc_hash::FxBuildHasher;

use crate::intern::Interned;
use crate::labels::Labels;
use crate::registry;
use crate::site::{FnSite, Resolved, with_sites};
use crate::stack::{Entry, entry_descendants, entry_http, entry_site};
use crate::task::{Header, RichView, View};

/// Whether a task is being polled right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum State {
    /// Parked: waiting to be woken (or queued to run).
    Idle,
    /// Being polled (or, for a blocking task, running its closure).
    Running,
}

impl State {
    /// `idle` or `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Running => "running",
        }
    }
}

/// One line of a task's stack: a `#[track]` function, and where in it the task waits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    label: &'static str,
    location: &'static Location<'static>,
    awaiting: Option<&'static str>,
    depth: u32,
    http: Option<Box<HttpCallInfo>>,
}

impl Frame {
    /// The function's path (`module::Type::method`) or its `name = ".."` override; for an HTTP
    /// call, `http METHOD URL`.
    pub fn label(&self) -> &str {
        match &self.http {
            Some(h) => h.label(),
            None => self.label,
        }
    }
    /// The HTTP call this frame is, if it is one.
    pub fn http(&self) -> Option<&HttpCallInfo> {
        self.http.as_deref()
    }
    /// Source file, as `file!()` gives it.
    pub fn file(&self) -> &str {
        self.location.file()
    }
    /// Line of the `.await` the task is parked on, or of the function for a frame without one.
    pub fn line(&self) -> u32 {
        self.location.line()
    }
    /// Column, 1-based.
    pub fn column(&self) -> u32 {
        self.location.column()
    }
    /// Source text of the awaited expression, shortened to about 60 characters.
    pub fn awaiting(&self) -> Option<&str> {
        self.awaiting
    }
    /// Nesting depth: 0 for the task's outermost frame. Frames of concurrent branches
    /// (`join!`, `select!`) share their parent's depth + 1.
    pub fn depth(&self) -> u32 {
        self.depth
    }
    fn sort_key(&self) -> (&str, &str, u32, u32, Option<&str>, u32) {
        (
            self.label(),
            self.location.file(),
            self.location.line(),
            self.location.column(),
            self.awaiting,
            self.depth,
        )
    }
}

impl PartialOrd for Frame {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Frame {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key()
            .cmp(&other.sort_key())
            .then_with(|| self.http.cmp(&other.http))
    }
}

/// What tasks of one group share: spawn site, stack and labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) site: Option<&'static Location<'static>>,
    pub(crate) stack: Arc<[Frame]>,
    pub(crate) labels: Arc<Labels>,
    /// Parked with no waker left to wake it.
    pub(crate) lost: bool,
}

impl Key {
    fn site_key(&self) -> Option<(&str, u32, u32)> {
        self.site.map(|l| (l.file(), l.line(), l.column()))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.site_key()
            .cmp(&other.site_key())
            .then_with(|| self.stack.cmp(&other.stack))
            .then_with(|| self.labels.cmp(&other.labels))
            .then_with(|| self.lost.cmp(&other.lost))
    }
}

/// A live task as seen by a [`Snapshot`].
// What it shares with tasks that look the same (name, spawn site, stack, labels, parent, state)
// is interned once per snapshot as its `Kind`: a task is 32 bytes and one reference count, so a
// million of them fit in 32 MB, below glibc's largest mmap threshold (memory freed by the last
// snapshot is reused instead of being mapped and page-faulted in afresh).
#[derive(Clone)]
pub struct TaskInfo {
    id: u64,
    /// Nanoseconds since it was registered.
    age: u64,
    polls: u64,
    kind: Arc<Kind>,
}

/// What tasks of one kind share, interned per snapshot.
#[derive(Debug)]
pub(crate) struct Kind {
    name: Cow<'static, str>,
    key: Key,
    parent: Option<u64>,
    state: State,
    blocking: bool,
}

impl TaskInfo {
    /// Process-unique task id.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The name given to [`spawn_named`](crate::spawn_named), the `#[track]` function of a task that
    /// registered itself, or else the type of the spawned future.
    pub fn name(&self) -> &str {
        &self.kind.name
    }
    /// Where the task was spawned (`file:line:col`), if known.
    pub fn spawn_site(&self) -> Option<&'static Location<'static>> {
        self.kind.key.site
    }
    /// The tracked task that spawned it, if any.
    pub fn parent(&self) -> Option<u64> {
        self.kind.parent
    }
    /// Its labels, inherited ones included.
    pub fn labels(&self) -> &Labels {
        &self.kind.key.labels
    }
    /// Idle or running.
    pub fn state(&self) -> State {
        self.kind.state
    }
    /// Time since it was spawned.
    pub fn age(&self) -> Duration {
        Duration::from_nanos(self.age)
    }
    /// How many times it has been polled.
    pub fn polls(&self) -> u64 {
        self.polls
    }
    /// True for a [`spawn_blocking`](crate::spawn_blocking) task.
    pub fn is_blocking(&self) -> bool {
        self.kind.blocking
    }
    /// Where it waits, innermost frame first (empty when it waits outside any `#[track]` code).
    pub fn stack(&self) -> &[Frame] {
        &self.kind.key.stack
    }
    /// True when the task is parked and nothing can ever wake it: every clone of its waker was
    /// dropped without waking it. Such a task is leaked for certain.
    ///
    /// Only tasks a leak check watches are polled with the counting waker this needs (tasks
    /// spawned inside [`LeakCheck::run`](crate::LeakCheck::run) or `#[taskprof::test]`, or
    /// while a [`LeakCheck::global`](crate::LeakCheck::global) check exists); for the others
    /// it is always false, which keeps every wake-up as cheap as tokio's own.
    pub fn lost_waker(&self) -> bool {
        self.kind.key.lost
    }
    /// What it shares with tasks of its kind; tasks of one kind share its address.
    pub(crate) fn kind(&self) -> &Arc<Kind> {
        &self.kind
    }
}

impl fmt::Debug for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.kind;
        f.debug_struct("TaskInfo")
            .field("id", &self.id)
            .field("name", &k.name)
            .field("key", &k.key)
            .field("parent", &k.parent)
            .field("state", &k.state)
            .field("age", &self.age())
            .field("polls", &self.polls)
            .field("blocking", &k.blocking)
            .finish()
    }
}

/// Tasks sharing spawn site, stack and labels, with their count (a line of Go's debug=1 profile).
#[derive(Clone, Debug)]
pub struct Group {
    count: usize,
    oldest: Duration,
    key: Key,
}

impl Group {
    /// Number of tasks in the group.
    pub fn count(&self) -> usize {
        self.count
    }
    /// Their spawn site.
    pub fn spawn_site(&self) -> Option<&'static Location<'static>> {
        self.key.site
    }
    /// Their stack, innermost frame first.
    pub fn stack(&self) -> &[Frame] {
        &self.key.stack
    }
    /// Their labels.
    pub fn labels(&self) -> &Labels {
        &self.key.labels
    }
    /// True when these tasks have lost their wakers (see [`TaskInfo::lost_waker`]).
    pub fn lost_waker(&self) -> bool {
        self.key.lost
    }
    /// Age of the oldest task in the group.
    pub fn oldest(&self) -> Duration {
        self.oldest
    }
    pub(crate) fn key(&self) -> &Key {
        &self.key
    }
}

/// The live tracked tasks at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) tasks: Vec<TaskInfo>,
    pub(crate) groups: Vec<Group>,
    pub(crate) taken: SystemTime,
}

/// Takes a snapshot of every live tracked task.
///
/// It holds registry read locks only while reading a few tasks' fields, and never waits on a
/// task: a task republishing its stack faster than the snapshot can read it shows an empty stack.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let task = taskprof::spawn(async move { let _ = rx.await; });
/// tokio::task::yield_now().await;
/// let snap = taskprof::snapshot();
/// assert!(snap.total() >= 1);
/// print!("{snap}"); // grouped, like Go's debug=1
/// print!("{snap:#}"); // one block per task, like debug=2
/// drop(tx);
/// task.await.unwrap();
/// # }
/// ```
pub fn snapshot() -> Snapshot {
    snapshot_matching(|_, _| true)
}

/// A task as the registry walk leaves it: its own numbers and the index of its kind. The size
/// of a [`TaskInfo`], which it becomes in place (no second allocation).
#[derive(Clone, Copy, Default)]
struct Rec {
    id: u64,
    created: u64,
    polls: u64,
    kind: u32,
}

const _: () = assert!(size_of::<Rec>() == size_of::<TaskInfo>());

/// A snapshot of the tasks that match `pred` (given what is read of each, and of its
/// [`RichView`] if it has one).
pub(crate) fn snapshot_matching(pred: impl Fn(&View, Option<&RichView>) -> bool) -> Snapshot {
    let now = Instant::now();
    let now_nanos = crate::task::nanos_now();
    let taken = SystemTime::now();
    let mut walk = Walk {
        // Sized once (with room for tasks listed meanwhile): growing by doubling would copy
        // the list and leave freed blocks that the next snapshot's allocations fit badly.
        recs: Vec::with_capacity(registry::listed() + 1024),
        interned: crate::intern::table(),
        ..Walk::default()
    };
    // One pass over the registry's headers, in address order; then the tasks are sorted by id
    // (already sorted for tasks spawned in turn by one thread, not once headers are reused or
    // when tasks of several threads interleave).
    for chunk in registry::chunks() {
        walk.read(chunk, &pred);
        walk.stacks.resolve_pending(now);
    }
    sort_by_id(&mut walk.recs, &mut Vec::new());
    walk.finish(now_nanos, taken)
}

/// Sorts tasks by id: a least-significant-digit radix sort over the bytes in which the ids
/// differ, linear in their number (ids are unique and, being allocated in blocks, fairly
/// dense). Tasks out of order are usually many sorted sequences interleaved (blocks of ids of
/// several threads, in headers reused in turn), where a comparison sort costs about 200
/// instructions per task.
fn sort_by_id(recs: &mut [Rec], scratch: &mut Vec<Rec>) {
    // Mostly sorted (a few headers reused out of order among many taken in turn): the standard
    // library's stable sort merges the sorted runs it finds, in about one pass.
    let descents = recs.windows(2).filter(|w| w[0].id > w[1].id).count();
    if descents == 0 {
        return;
    }
    if recs.len() < 128 || descents < 64 {
        recs.sort_by_key(|r| r.id);
        return;
    }
    let min = recs.iter().map(|r| r.id).min().unwrap_or(0);
    let span = recs.iter().map(|r| r.id - min).max().unwrap_or(0);
    scratch.clear();
    scratch.resize(recs.len(), Rec::default());
    // Passes alternate between `recs` and `scratch`.
    let mut in_scratch = false;
    let mut shift = 0;
    while shift < u64::BITS && span >> shift != 0 {
        let (from, to): (&[Rec], &mut [Rec]) = if in_scratch {
            (scratch, recs)
        } else {
            (recs, scratch)
        };
        let digit = |id: u64| ((id - min) >> shift) as usize & 0xFF;
        let mut starts = [0usize; 256];
        for r in from {
            starts[digit(r.id)] += 1;
        }
        let mut sum = 0;
        for s in &mut starts {
            (*s, sum) = (sum, sum + *s);
        }
        for &r in from {
            let d = digit(r.id);
            to[starts[d]] = r;
            starts[d] += 1;
        }
        in_scratch = !in_scratch;
        shift += 8;
    }
    if in_scratch {
        recs.copy_from_slice(scratch);
    }
}

/// The state of a snapshot's walk over the registry.
#[derive(Default)]
struct Walk {
    recs: Vec<Rec>,
    /// Scratch buffer a stack is read into.
    raw: Vec<Entry>,
    stacks: Stacks,
    kinds: Kinds,
    names: NameCache,
    /// Spawn sites and names, by id (see `intern.rs`).
    interned: Vec<Interned>,
}

impl Walk {
    /// Reads the listed tasks of `headers`. A task of a kind already seen (most) costs plain
    /// loads and compares: no lock, allocation or `Arc` count update (but for the few tasks
    /// with labels, a leak check's watch or a given name).
    fn read(&mut self, headers: &[Header], pred: &impl Fn(&View, Option<&RichView>) -> bool) {
        for h in headers {
            let Some(id) = h.listed_id() else { continue };
            let Some(v) = h.view(id) else { continue };
            let rich = if v.rich { h.rich(id) } else { None };
            if !pred(&v, rich.as_ref()) {
                continue;
            }
            let stack = match h.stack.read_short() {
                Some(short) => self.stacks.short(&short),
                None => {
                    h.stack.read(&mut self.raw);
                    self.stacks.long(&self.raw)
                }
            };
            if self.interned.len() <= v.name.max(v.site) as usize {
                // Interned after the table was read.
                self.interned = crate::intern::table();
            }
            let site = match self.interned.get(v.site as usize) {
                Some(Interned::Site(l)) => Some(*l),
                _ => None,
            };
            let Some(&name) = self.interned.get(v.name as usize) else {
                continue;
            };
            let (labels, lost, given) = match rich {
                Some(r) => (r.labels, r.lost_waker, r.name),
                None => (None, false, None),
            };
            let given = given.as_ref();
            let key = KindKey {
                name: self.names.key_of(name, given),
                site: site.map_or(0, |l| l as *const Location<'static> as usize),
                stack,
                labels: labels.as_ref().map_or(0, |l| Arc::as_ptr(l) as usize),
                parent: v.parent,
                running: v.running,
                blocking: v.blocking,
                lost,
            };
            let kind = self.kinds.index(key, v.created, || Seed {
                name: self.names.name_of(name, given),
                site,
                stack,
                labels,
                parent: (v.parent != 0).then_some(v.parent),
                state: if v.running {
                    State::Running
                } else {
                    State::Idle
                },
                blocking: v.blocking,
                lost,
                count: 0,
                first: u64::MAX,
            });
            self.recs.push(Rec {
                id,
                created: v.created,
                polls: v.polls,
                kind,
            });
        }
    }

    /// The snapshot of the tasks read.
    fn finish(self, now_nanos: u64, taken: SystemTime) -> Snapshot {
        let Walk {
            recs,
            kinds: Kinds { mut seeds, .. },
            stacks,
            ..
        } = self;
        let empty_labels: Arc<Labels> = Arc::default();
        let age = |created: u64| now_nanos.saturating_sub(created);
        let kinds: Vec<Arc<Kind>> = seeds
            .iter_mut()
            .map(|s| {
                Arc::new(Kind {
                    name: std::mem::take(&mut s.name),
                    key: Key {
                        site: s.site,
                        stack: stacks.frames[s.stack as usize].clone(),
                        labels: s.labels.take().unwrap_or_else(|| empty_labels.clone()),
                        lost: s.lost,
                    },
                    parent: s.parent,
                    state: s.state,
                    blocking: s.blocking,
                })
            })
            .collect();
        let groups = merge_groups(
            kinds
                .iter()
                .zip(&seeds)
                .map(|(k, s)| (&k.key, s.count, Duration::from_nanos(age(s.first)))),
        );
        // In place: a `Rec` and a `TaskInfo` have one size and alignment.
        let tasks: Vec<TaskInfo> = recs
            .into_iter()
            .map(|r| TaskInfo {
                id: r.id,
                age: age(r.created),
                polls: r.polls,
                kind: kinds[r.kind as usize].clone(),
            })
            .collect();
        Snapshot {
            tasks,
            groups,
            taken,
        }
    }
}

/// What makes tasks of one kind: everything a [`TaskInfo`] shares, by address where it can.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct KindKey {
    name: NameKey,
    site: usize,
    /// Index in [`Stacks`].
    stack: u32,
    labels: usize,
    parent: u64,
    running: bool,
    blocking: bool,
    lost: bool,
}

/// A task's name by identity: its type's `type_name` function, its frame's site, the address
/// of a static name given, or the index of a name given as a `String` (by content).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum NameKey {
    Type(usize),
    Frame(usize),
    Static(usize, usize),
    Owned(u32),
}

/// A kind as the walk collects it, with the number of its tasks and the oldest one's creation.
struct Seed {
    name: Cow<'static, str>,
    site: Option<&'static Location<'static>>,
    stack: u32,
    labels: Option<Arc<Labels>>,
    parent: Option<u64>,
    state: State,
    blocking: bool,
    lost: bool,
    count: usize,
    first: u64,
}

/// The kinds seen so far, by key.
#[derive(Default)]
struct Kinds {
    index: HashMap<KindKey, u32, FxBuildHasher>,
    /// The last kind looked up, which the next task (spawned alongside) usually shares.
    last: Option<(KindKey, u32)>,
    seeds: Vec<Seed>,
}

impl Kinds {
    /// The index of the kind `key` of a task created at `created`, which it is counted in;
    /// `seed` describes a kind seen for the first time.
    #[inline]
    fn index(&mut self, key: KindKey, created: u64, seed: impl FnOnce() -> Seed) -> u32 {
        let i = match self.last {
            Some((k, i)) if k == key => i,
            _ => self.lookup(key, seed),
        };
        let s = &mut self.seeds[i as usize];
        s.count += 1;
        s.first = s.first.min(created);
        i
    }

    #[inline(never)]
    fn lookup(&mut self, key: KindKey, seed: impl FnOnce() -> Seed) -> u32 {
        let next = self.seeds.len() as u32;
        let i = *self.index.entry(key).or_insert(next);
        if i == next {
            self.seeds.push(seed());
        }
        self.last = Some((key, i));
        i
    }
}

/// Distinct raw stacks, by index, and what they resolve to; most tasks share a few.
#[derive(Default)]
struct Stacks {
    /// Stacks of up to four entries, as most are, keyed by length and entries: hashed and
    /// compared without a loop or an allocation.
    short: HashMap<ShortStack, u32, FxBuildHasher>,
    /// The last short stack looked up, which the next task often repeats.
    last: Option<(ShortStack, u32)>,
    long: HashMap<Box<[Entry]>, u32, FxBuildHasher>,
    /// Resolved stacks, by index.
    frames: Vec<Arc<[Frame]>>,
    /// Raw entries of the stacks given an index but not resolved yet (see
    /// [`resolve_pending`](Self::resolve_pending)), and where each one's lie.
    pending: Vec<Entry>,
    pending_ranges: Vec<Range<usize>>,
}

/// A stack of at most `INLINE` entries: its length and entries, zero-padded.
type ShortStack = (usize, [Entry; crate::stack::INLINE]);

impl Stacks {
    #[inline]
    fn short(&mut self, key: &ShortStack) -> u32 {
        match &self.last {
            Some((k, i)) if k == key => *i,
            _ => self.short_lookup(key),
        }
    }

    #[inline(never)]
    fn short_lookup(&mut self, key: &ShortStack) -> u32 {
        let next = self.next();
        let i = *self.short.entry(*key).or_insert(next);
        if i == next {
            self.add_pending(&key.1[..key.0]);
        }
        self.last = Some((*key, i));
        i
    }

    fn long(&mut self, raw: &[Entry]) -> u32 {
        if let Some(&i) = self.long.get(raw) {
            return i;
        }
        let i = self.next();
        self.long.insert(raw.into(), i);
        self.add_pending(raw);
        i
    }

    fn next(&self) -> u32 {
        (self.frames.len() + self.pending_ranges.len()) as u32
    }

    fn add_pending(&mut self, raw: &[Entry]) {
        let start = self.pending.len();
        self.pending.extend_from_slice(raw);
        self.pending_ranges.push(start..self.pending.len());
    }

    /// Resolves the stacks seen since the last call: outside the registry's locks, as HTTP
    /// frames read another map.
    fn resolve_pending(&mut self, now: Instant) {
        if self.pending_ranges.is_empty() {
            return;
        }
        with_sites(|lookup| {
            for r in self.pending_ranges.drain(..) {
                self.frames.push(resolve(&self.pending[r], lookup, now));
            }
        });
        self.pending.clear();
    }
}

/// Remembers the last type name cleaned (tasks spawned from one place share a `&'static str`),
/// and the names given as `String`s, by content.
#[derive(Default)]
struct NameCache {
    last: Option<(&'static str, &'static str)>,
    owned: HashMap<Box<str>, u32, FxBuildHasher>,
}

impl NameCache {
    /// What tells a name apart, without copying it.
    #[inline]
    fn key_of(&mut self, name: Interned, given: Option<&Cow<'static, str>>) -> NameKey {
        match (name, given) {
            (Interned::Type(t), _) => NameKey::Type(t as usize),
            (Interned::Frame(site), _) => NameKey::Frame(site as *const FnSite as usize),
            (_, Some(Cow::Borrowed(s))) => NameKey::Static(s.as_ptr() as usize, s.len()),
            (_, Some(Cow::Owned(s))) => NameKey::Owned(self.owned(s)),
            (_, None) => NameKey::Static(0, 0),
        }
    }

    /// The index of a name given as a `String`.
    #[inline(never)]
    fn owned(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.owned.get(name) {
            return i;
        }
        let next = self.owned.len() as u32;
        self.owned.insert(name.into(), next);
        next
    }

    fn name_of(&mut self, name: Interned, given: Option<&Cow<'static, str>>) -> Cow<'static, str> {
        match (name, given) {
            (Interned::Type(t), _) => match (self.last, t()) {
                (Some((raw, clean)), t) if std::ptr::eq(raw, t) => Cow::Borrowed(clean),
                (_, t) => {
                    let clean = clean_type_name(t);
                    self.last = Some((t, clean));
                    Cow::Borrowed(clean)
                }
            },
            (Interned::Frame(site), _) => Cow::Borrowed(site.known_label()),
            (_, Some(given)) => given.clone(),
            (_, None) => Cow::Borrowed(""),
        }
    }
}

/// The code a spawned future runs, from its type: `app::check::{{closure}}` (an `async fn`'s
/// future) → `app::check`, and an async block written in `app::health` → `app::health`.
fn clean_type_name(t: &'static str) -> &'static str {
    let mut t = t;
    for wrapper in ["taskprof::frame::Framed<", "taskprof::labels::WithLabels<"] {
        if let Some(inner) = t.strip_prefix(wrapper).and_then(|s| s.strip_suffix('>')) {
            // `Framed<F, S>`: the future's type is the first argument.
            t = first_type_argument(inner);
        }
    }
    while let Some(outer) = t.strip_suffix("::{{closure}}") {
        t = outer;
    }
    t
}

/// `A` of `A, B` where `A` and `B` are type names, which may have arguments of their own.
fn first_type_argument(args: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in args.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return &args[..i],
            _ => {}
        }
    }
    args
}

/// Turns a published stack (post-order, innermost first) into frames with depths.
fn resolve(raw: &[Entry], lookup: &dyn Fn(u32) -> Option<Resolved>, now: Instant) -> Arc<[Frame]> {
    // Walk from the outermost entry (last) back: an entry's subtree is the `descendants` entries
    // right before it, and its depth is one more than the entry whose subtree holds it.
    let mut depth = vec![0u32; raw.len()];
    for i in (0..raw.len()).rev() {
        let d = depth[i];
        let n = entry_descendants(raw[i]).min(i);
        for slot in &mut depth[i - n..i] {
            *slot = d + 1;
        }
    }
    raw.iter()
        .zip(depth)
        .filter_map(|(e, depth)| match entry_http(*e) {
            Some(call) => crate::http::resolve(call, now).map(|h| Frame {
                label: "",
                location: h.location(),
                awaiting: None,
                depth,
                http: Some(Box::new(h)),
            }),
            None => lookup(entry_site(*e)).map(|r| Frame {
                label: r.label,
                location: r.location,
                awaiting: r.text,
                depth,
                http: None,
            }),
        })
        .collect()
}

impl Snapshot {
    /// A snapshot of the given tasks (the registry's path builds one already sorted).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn from_tasks(mut tasks: Vec<TaskInfo>, taken: SystemTime) -> Self {
        if !tasks.is_sorted_by_key(|t| t.id) {
            tasks.sort_by_key(|t| t.id);
        }
        let groups = group(&tasks);
        Snapshot {
            tasks,
            groups,
            taken,
        }
    }

    /// Keeps only the tasks for which `keep` is true, regrouping them.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&TaskInfo) -> bool) {
        self.tasks.retain(keep);
        self.groups = group(&self.tasks);
    }

    /// Number of live tracked tasks.
    pub fn total(&self) -> usize {
        self.tasks.len()
    }
    /// Every task, by id.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }
    /// Tasks grouped by spawn site, stack and labels: count descending, then by key.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }
    /// When the snapshot was taken.
    pub fn taken_at(&self) -> SystemTime {
        self.taken
    }
    /// Every HTTP call in flight, with the task making it.
    pub fn http_calls(&self) -> Vec<(&TaskInfo, &HttpCallInfo)> {
        self.tasks
            .iter()
            .flat_map(|t| t.stack().iter().filter_map(move |f| Some((t, f.http()?))))
            .collect()
    }

    /// What changed since `base`: the groups whose count changed, largest growth first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let base = taskprof::snapshot();
    /// let (tx, rx) = tokio::sync::broadcast::channel::<()>(1);
    /// let tasks: Vec<_> = (0..3).map(|_| {
    ///     let mut rx = tx.subscribe();
    ///     taskprof::spawn(async move { let _ = rx.recv().await; })
    /// }).collect();
    /// tokio::task::yield_now().await;
    /// let diff = taskprof::snapshot().diff(&base);
    /// assert_eq!(diff.groups()[0].delta(), 3);
    /// # drop((tx, rx, tasks));
    /// # }
    /// ```
    pub fn diff(&self, base: &Snapshot) -> Diff {
        let mut counts: HashMap<&Key, i64> = HashMap::new();
        for g in &self.groups {
            *counts.entry(&g.key).or_default() += g.count as i64;
        }
        for g in &base.groups {
            *counts.entry(&g.key).or_default() -= g.count as i64;
        }
        let mut groups: Vec<DiffGroup> = counts
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|(k, delta)| DiffGroup {
                delta,
                key: k.clone(),
            })
            .collect();
        groups.sort_by(|a, b| b.delta.cmp(&a.delta).then_with(|| a.key.cmp(&b.key)));
        Diff {
            total: self.total() as i64 - base.total() as i64,
            groups,
        }
    }
}

/// Spawn site, stack and labels by address, and the lost-waker flag.
type PtrKey = (usize, usize, usize, bool);

fn group<'a>(tasks: &'a [TaskInfo]) -> Vec<Group> {
    // Tasks in id order often come in runs of one kind (spawned together): count a run, then
    // add it in one lookup.
    let mut by_kind: HashMap<usize, (&Key, usize, Duration), FxBuildHasher> = HashMap::default();
    let mut add = |kind: &'a Arc<Kind>, count: usize, oldest: Duration| {
        let (_, c, o) =
            by_kind
                .entry(Arc::as_ptr(kind) as usize)
                .or_insert((&kind.key, 0, Duration::ZERO));
        *c += count;
        *o = (*o).max(oldest);
    };
    let mut run: Option<(&Arc<Kind>, usize, u64)> = None;
    for t in tasks {
        match &mut run {
            Some((k, count, oldest)) if Arc::ptr_eq(k, &t.kind) => {
                *count += 1;
                *oldest = (*oldest).max(t.age);
            }
            _ => {
                if let Some((k, count, oldest)) = run.replace((&t.kind, 1, t.age)) {
                    add(k, count, Duration::from_nanos(oldest));
                }
            }
        }
    }
    if let Some((k, count, oldest)) = run {
        add(k, count, Duration::from_nanos(oldest));
    }
    merge_groups(by_kind.into_values())
}

/// Groups of the counted `(key, count, oldest)` parts: count descending, then by key.
fn merge_groups<'a>(parts: impl IntoIterator<Item = (&'a Key, usize, Duration)>) -> Vec<Group> {
    // Stacks are interned and labels shared between a task and its children, so parts are first
    // merged by pointer identity (cheap for many), then the few resulting keys by value (equal
    // content behind different pointers).
    let mut by_ptr: HashMap<PtrKey, (&Key, usize, Duration), FxBuildHasher> = HashMap::default();
    for (k, count, oldest) in parts {
        let site = k.site.map_or(0, |l| l as *const Location<'static> as usize);
        let stack = Arc::as_ptr(&k.stack) as *const Frame as usize;
        let labels = Arc::as_ptr(&k.labels) as usize;
        let (_, c, o) =
            by_ptr
                .entry((site, stack, labels, k.lost))
                .or_insert((k, 0, Duration::ZERO));
        *c += count;
        *o = (*o).max(oldest);
    }
    let mut counts: HashMap<&Key, (usize, Duration)> = HashMap::new();
    for (key, count, oldest) in by_ptr.into_values() {
        let (c, o) = counts.entry(key).or_default();
        *c += count;
        *o = (*o).max(oldest);
    }
    let mut groups: Vec<Group> = counts
        .into_iter()
        .map(|(k, (count, oldest))| Group {
            count,
            oldest,
            key: k.clone(),
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    groups
}

/// The change between two snapshots ([`Snapshot::diff`]): the leak-hunting view.
#[derive(Clone, Debug)]
pub struct Diff {
    pub(crate) total: i64,
    pub(crate) groups: Vec<DiffGroup>,
}

impl Diff {
    /// Change in the total number of tasks.
    pub fn total(&self) -> i64 {
        self.total
    }
    /// Groups whose count changed, largest growth first.
    pub fn groups(&self) -> &[DiffGroup] {
        &self.groups
    }
}

/// A group whose count changed between two snapshots.
#[derive(Clone, Debug)]
pub struct DiffGroup {
    delta: i64,
    key: Key,
}

impl DiffGroup {
    /// Signed change in the number of tasks.
    pub fn delta(&self) -> i64 {
        self.delta
    }
    /// Their spawn site.
    pub fn spawn_site(&self) -> Option<&'static Location<'static>> {
        self.key.site
    }
    /// Their stack, innermost frame first.
    pub fn stack(&self) -> &[Frame] {
        &self.key.stack
    }
    /// Their labels.
    pub fn labels(&self) -> &Labels {
        &self.key.labels
    }
    pub(crate) fn key(&self) -> &Key {
        &self.key
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{Rec, sort_by_id};

    /// A fixed-seed xorshift generator: test inputs that are varied yet the same every run.
    pub(crate) fn xorshift() -> impl FnMut() -> u64 {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn radix_sort_sorts_like_a_comparison_sort() {
        let mut next = xorshift();
        let mut scratch = Vec::new();
        // Spans of one to eight bytes (odd and even numbers of passes), short and long lists.
        for (len, span) in [(5, 1 << 8), (300, 1 << 8), (1000, 1 << 16), (2000, 1 << 20)]
            .into_iter()
            .chain([(3000, 1 << 40), (3000, u64::MAX)])
        {
            let base = next() % 1000;
            let mut ids: Vec<u64> = (0..len).map(|_| base.wrapping_add(next() % span)).collect();
            ids.sort_unstable();
            ids.dedup();
            // Interleaved sorted runs, as tasks of several threads in reused headers are.
            let mut recs: Vec<Rec> = ids
                .iter()
                .enumerate()
                .map(|(i, &id)| Rec {
                    id,
                    kind: i as u32,
                    ..Rec::default()
                })
                .collect();
            let (evens, odds): (Vec<_>, Vec<_>) = recs.iter().partition(|r| r.kind % 2 == 0);
            recs = odds.into_iter().chain(evens).collect();
            let mut expected: Vec<(u64, u32)> = recs.iter().map(|r| (r.id, r.kind)).collect();
            expected.sort_unstable_by_key(|p| p.0);
            sort_by_id(&mut recs, &mut scratch);
            let pairs: Vec<(u64, u32)> = recs.iter().map(|r| (r.id, r.kind)).collect();
            assert_eq!(pairs, expected, "{len} ids spanning {span}");
        }
    }
}
