//! Point-in-time views of the live tasks: [`snapshot`], [`Snapshot`], [`Group`] and [`Diff`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use crate::http::HttpCallInfo;
use rustc_hash::FxBuildHasher;

use crate::labels::Labels;
use crate::registry;
use crate::site::{Resolved, with_sites};
use crate::stack::{Entry, entry_descendants, entry_http, entry_site};
use crate::task::{Header, Name, RUNNING};

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
#[derive(Clone, Debug)]
pub struct TaskInfo {
    id: u64,
    name: Cow<'static, str>,
    key: Key,
    parent: Option<u64>,
    state: State,
    age: Duration,
    polls: u64,
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
        &self.name
    }
    /// Where the task was spawned (`file:line:col`), if known.
    pub fn spawn_site(&self) -> Option<&'static Location<'static>> {
        self.key.site
    }
    /// The tracked task that spawned it, if any.
    pub fn parent(&self) -> Option<u64> {
        self.parent
    }
    /// Its labels, inherited ones included.
    pub fn labels(&self) -> &Labels {
        &self.key.labels
    }
    /// Idle or running.
    pub fn state(&self) -> State {
        self.state
    }
    /// Time since it was spawned.
    pub fn age(&self) -> Duration {
        self.age
    }
    /// How many times it has been polled.
    pub fn polls(&self) -> u64 {
        self.polls
    }
    /// True for a [`spawn_blocking`](crate::spawn_blocking) task.
    pub fn is_blocking(&self) -> bool {
        self.blocking
    }
    /// Where it waits, innermost frame first (empty when it waits outside any `#[track]` code).
    pub fn stack(&self) -> &[Frame] {
        &self.key.stack
    }
    /// True when the task is parked and nothing can ever wake it: every clone of its waker was
    /// dropped without waking it. Such a task is leaked for certain.
    ///
    /// Only tasks a leak check watches are polled with the counting waker this needs (tasks
    /// spawned inside [`LeakCheck::run`](crate::LeakCheck::run) or `#[taskprof::test]`, or
    /// while a [`LeakCheck::global`](crate::LeakCheck::global) check exists); for the others
    /// it is always false, which keeps every wake-up as cheap as tokio's own.
    pub fn lost_waker(&self) -> bool {
        self.key.lost
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
    snapshot_matching(|_| true)
}

/// What a snapshot copies out of a task's header while holding the registry's read lock.
struct Read {
    id: u64,
    name: Cow<'static, str>,
    site: Option<&'static Location<'static>>,
    parent: Option<u64>,
    state: State,
    created: u64,
    polls: u64,
    blocking: bool,
    labels: Option<Arc<Labels>>,
    lost: bool,
    /// Its raw stack, in the chunk's buffer of entries.
    raw: Range<usize>,
}

/// A snapshot of the tasks whose header matches `pred`.
pub(crate) fn snapshot_matching(pred: impl Fn(&Header) -> bool) -> Snapshot {
    // Ids first, from the registry's slots alone (no header touched), then the tasks in id order:
    // the snapshot comes out sorted, headers (allocated about in id order) are read about in
    // address order, and a run of ids of one shard is read under one lock. A run is read in two
    // passes: plain loads first, so that the cache misses on its headers and wakers overlap,
    // then names and labels, whose lock and `Arc` count updates would each wait for every
    // earlier load to complete.
    const CHUNK: usize = 64;
    let mut ids: Vec<(u64, u32)> = Vec::new();
    registry::list(&mut ids);
    sort_by_id(&mut ids);
    let now = Instant::now();
    let now_nanos = crate::task::nanos_now();
    let taken = SystemTime::now();
    let mut tasks: Vec<TaskInfo> = Vec::with_capacity(ids.len());
    let mut reads: Vec<Read> = Vec::with_capacity(CHUNK);
    let mut raws: Vec<Entry> = Vec::new();
    let mut raw = Vec::new();
    let mut stacks = Stacks::default();
    let empty_labels: Arc<Labels> = Arc::default();
    let mut names = NameCache::default();
    let mut rest = &ids[..];
    while let Some(&(first, _)) = rest.first() {
        let shard = registry::shard_of(first);
        let run = rest
            .iter()
            .take(CHUNK)
            .take_while(|(id, _)| registry::shard_of(*id) == shard)
            .count();
        let (ids, next) = rest.split_at(run);
        rest = next;
        registry::with_shard(shard, |slots| {
            // A task gone since its id was listed is skipped.
            let headers = || {
                ids.iter()
                    .filter_map(|&(id, slot)| Some((id, slots.get(slot as usize)?.of(id)?)))
                    .filter(|(_, h)| pred(h))
            };
            for (id, h) in headers() {
                h.stack.read(&mut raw);
                let start = raws.len();
                raws.extend_from_slice(&raw);
                reads.push(Read {
                    id,
                    name: Cow::Borrowed(""),
                    site: h.spawn_site,
                    parent: (h.parent != 0).then_some(h.parent),
                    state: if h.state.load(Relaxed) == RUNNING {
                        State::Running
                    } else {
                        State::Idle
                    },
                    created: h.created,
                    polls: h.polls.load(Relaxed),
                    blocking: h.blocking,
                    labels: None,
                    lost: h.lost_waker(),
                    raw: start..raws.len(),
                });
            }
            // Nothing here can drop a header or re-enter the registry: names and labels are
            // only cloned.
            for ((_, h), r) in headers().zip(&mut reads) {
                r.name = names.name_of(h);
                r.labels = h.labels();
            }
        });
        // Resolving a new stack reads other maps (HTTP calls): not under the registry's locks.
        for r in reads.drain(..) {
            tasks.push(TaskInfo {
                id: r.id,
                name: r.name,
                key: Key {
                    site: r.site,
                    stack: stacks.get(&raws[r.raw], now),
                    labels: r.labels.unwrap_or_else(|| empty_labels.clone()),
                    lost: r.lost,
                },
                parent: r.parent,
                state: r.state,
                age: Duration::from_nanos(now_nanos.saturating_sub(r.created)),
                polls: r.polls,
                blocking: r.blocking,
            });
        }
        raws.clear();
    }
    // Already in id order.
    Snapshot {
        groups: group(&tasks),
        tasks,
        taken,
    }
}

/// Sorts (id, payload) pairs by id: a least-significant-digit radix sort over the bytes in which
/// the ids differ, linear in their number (ids are unique and, being allocated in blocks, fairly
/// dense).
fn sort_by_id(pairs: &mut Vec<(u64, u32)>) {
    if pairs.len() < 1024 {
        pairs.sort_unstable_by_key(|p| p.0);
        return;
    }
    let min = pairs.iter().map(|p| p.0).min().unwrap_or(0);
    let span = pairs.iter().map(|p| p.0 - min).max().unwrap_or(0);
    let mut out = vec![(0, 0); pairs.len()];
    let mut shift = 0;
    while shift < u64::BITS && span >> shift != 0 {
        let digit = |id: u64| ((id - min) >> shift) as usize & 0xFF;
        let mut starts = [0usize; 256];
        for p in pairs.iter() {
            starts[digit(p.0)] += 1;
        }
        let mut sum = 0;
        for s in &mut starts {
            (*s, sum) = (sum, sum + *s);
        }
        for &p in pairs.iter() {
            let d = digit(p.0);
            out[starts[d]] = p;
            starts[d] += 1;
        }
        std::mem::swap(pairs, &mut out);
        shift += 8;
    }
}

/// Distinct raw stacks and what they resolve to; most tasks share a few.
#[derive(Default)]
struct Stacks {
    /// Stacks of up to four entries, as most are, keyed by length and entries: hashed and
    /// compared without a loop or an allocation.
    short: HashMap<ShortStack, Arc<[Frame]>, FxBuildHasher>,
    /// The last short stack looked up, which the next task often repeats.
    last: Option<(ShortStack, Arc<[Frame]>)>,
    long: HashMap<Box<[Entry]>, Arc<[Frame]>, FxBuildHasher>,
}

type ShortStack = (usize, [Entry; 4]);

impl Stacks {
    /// The frames of `raw`, resolved on first sight (outside the registry's locks: HTTP frames
    /// read another map).
    fn get(&mut self, raw: &[Entry], now: Instant) -> Arc<[Frame]> {
        let resolved = || with_sites(|lookup| resolve(raw, lookup, now));
        if raw.len() > 4 {
            return match self.long.get(raw) {
                Some(s) => s.clone(),
                None => self.long.entry(raw.into()).or_insert_with(resolved).clone(),
            };
        }
        let mut key = (raw.len(), [0; 4]);
        key.1[..raw.len()].copy_from_slice(raw);
        if let Some((k, s)) = &self.last
            && *k == key
        {
            return s.clone();
        }
        let s = match self.short.get(&key) {
            Some(s) => s.clone(),
            None => self.short.entry(key).or_insert_with(resolved).clone(),
        };
        self.last = Some((key, s.clone()));
        s
    }
}

/// Remembers the last type name cleaned: tasks spawned from one place share a `&'static str`.
#[derive(Default)]
struct NameCache {
    last: Option<(&'static str, &'static str)>,
}

impl NameCache {
    fn name_of(&mut self, h: &Header) -> Cow<'static, str> {
        match &h.name {
            Name::Type(t) => match (self.last, t()) {
                (Some((raw, clean)), t) if std::ptr::eq(raw, t) => Cow::Borrowed(clean),
                (_, t) => {
                    let clean = clean_type_name(t);
                    self.last = Some((t, clean));
                    Cow::Borrowed(clean)
                }
            },
            _ => name_of(h),
        }
    }
}

fn name_of(h: &Header) -> Cow<'static, str> {
    match &h.name {
        Name::Given(n) => (**n).clone(),
        Name::Frame(site) => Cow::Borrowed(site.known_label()),
        Name::Type(t) => Cow::Borrowed(clean_type_name(t())),
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

fn group(tasks: &[TaskInfo]) -> Vec<Group> {
    // Stacks are interned and labels shared between a task and its children, so tasks are first
    // counted by pointer identity (cheap for 100k tasks), then the few resulting keys are merged
    // by value (equal content behind different pointers).
    let mut by_ptr: HashMap<PtrKey, (usize, Duration, &Key), FxBuildHasher> = HashMap::default();
    // Tasks in id order often come in runs of one kind (spawned together): count a run, then
    // add it in one lookup.
    let mut run: Option<(PtrKey, usize, Duration, &Key)> = None;
    for t in tasks {
        let k = &t.key;
        let site = k.site.map_or(0, |l| l as *const Location<'static> as usize);
        let stack = Arc::as_ptr(&k.stack) as *const Frame as usize;
        let labels = Arc::as_ptr(&k.labels) as usize;
        let ptrs = (site, stack, labels, k.lost);
        match &mut run {
            Some((p, count, oldest, _)) if *p == ptrs => {
                *count += 1;
                *oldest = (*oldest).max(t.age);
            }
            _ => {
                if let Some((p, count, oldest, key)) = run.replace((ptrs, 1, t.age, k)) {
                    add_run(&mut by_ptr, p, count, oldest, key);
                }
            }
        }
    }
    if let Some((p, count, oldest, key)) = run {
        add_run(&mut by_ptr, p, count, oldest, key);
    }
    let mut counts: HashMap<&Key, (usize, Duration)> = HashMap::new();
    for (count, oldest, key) in by_ptr.into_values() {
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

fn add_run<'a>(
    by_ptr: &mut HashMap<PtrKey, (usize, Duration, &'a Key), FxBuildHasher>,
    ptrs: PtrKey,
    count: usize,
    oldest: Duration,
    key: &'a Key,
) {
    let (c, o, _) = by_ptr.entry(ptrs).or_insert((0, Duration::ZERO, key));
    *c += count;
    *o = (*o).max(oldest);
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
