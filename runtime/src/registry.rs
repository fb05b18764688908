//! The global registry of live tracked tasks.
//!
//! A task's [`Header`] is inserted when the task first suspends (see `task.rs`) and removed when
//! its future is dropped, so the registry holds the live tasks that ever waited. It is split in
//! shards, each a mutex over a vector of slots; a task keeps the index of its slot, so insertion
//! and removal are a lock and a vector write (no hashing, no rehashing as the registry grows).
//! Ids are handed out in blocks of [`ID_BLOCK`] per thread and a block's tasks share a shard: a
//! thread registering its tasks keeps to one shard, and a snapshot, which reads tasks in id
//! order, takes one lock per run of them.
//!
//! Counters are per thread: spawns and completions of one task often happen on different
//! workers, and a shared atomic would bounce between cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::task::Header;

/// Number of shards: enough that threads registering tasks at once rarely meet on one.
pub(crate) const SHARDS: usize = 64;

/// Ids a thread takes at a time (see [`Local::next_id`]).
const ID_BLOCK: u64 = 256;

/// A shard on cache lines of its own: shards locked by different threads must not share one.
#[repr(align(128))]
struct Shard(Mutex<Slots>);

struct Slots {
    entries: Vec<Slot>,
    /// Indices of the free entries, reused first.
    free: Vec<u32>,
    len: usize,
}

/// One entry: a task's id next to its header, so ids are listed without touching headers.
pub(crate) struct Slot {
    /// 0 when free.
    id: u64,
    header: Option<Arc<Header>>,
}

impl Slot {
    /// The header of task `id`, if this slot holds it.
    pub(crate) fn of(&self, id: u64) -> Option<&Header> {
        self.header.as_deref().filter(|_| self.id == id)
    }
}

static REGISTRY: [Shard; SHARDS] = [const {
    Shard(Mutex::new(Slots {
        entries: Vec::new(),
        free: Vec::new(),
        len: 0,
    }))
}; SHARDS];

/// The shard of task `id`.
pub(crate) fn shard_of(id: u64) -> usize {
    ((id / ID_BLOCK) % SHARDS as u64) as usize
}

fn lock(shard: usize) -> MutexGuard<'static, Slots> {
    // Nothing panics while a shard is locked, but a poisoned one is still consistent.
    REGISTRY[shard % SHARDS]
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Inserts the entry of task `id`; returns its slot, which [`remove`] and [`get`] need.
pub(crate) fn insert(id: u64, header: Arc<Header>) -> u32 {
    let mut s = lock(shard_of(id));
    s.len += 1;
    let slot = Slot {
        id,
        header: Some(header),
    };
    match s.free.pop() {
        Some(i) => {
            s.entries[i as usize] = slot;
            i
        }
        None => {
            s.entries.push(slot);
            // More than 4 billion entries in one shard cannot fit in memory.
            (s.entries.len() - 1) as u32
        }
    }
}

/// Removes the entry of task `id` from `slot`.
pub(crate) fn remove(id: u64, slot: u32) {
    let mut s = lock(shard_of(id));
    let taken = match s.entries.get_mut(slot as usize) {
        Some(e) if e.id == id => {
            e.id = 0;
            e.header.take()
        }
        _ => None,
    };
    if taken.is_some() {
        s.free.push(slot);
        s.len -= 1;
    }
    drop(s);
    // The header is dropped (if this was its last reference) outside the lock.
    drop(taken);
}

/// The entry of task `id`, looked up in `slot` if known, else searched for in its shard.
pub(crate) fn get(id: u64, slot: Option<u32>) -> Option<Arc<Header>> {
    let s = lock(shard_of(id));
    let found = match slot {
        Some(slot) => s.entries.get(slot as usize).filter(|e| e.id == id),
        None => s.entries.iter().find(|e| e.id == id),
    };
    found?.header.clone()
}

/// Number of entries.
pub(crate) fn listed() -> usize {
    (0..SHARDS).map(|i| lock(i).len).sum()
}

/// Appends `(id, slot)` of every entry to `out`, a shard at a time in slot order (no header is
/// touched), and after each shard's entries, their end in `out` to `ends`.
pub(crate) fn list(out: &mut Vec<(u64, u32)>, ends: &mut Vec<usize>) {
    for i in 0..SHARDS {
        let s = lock(i);
        out.extend(
            s.entries
                .iter()
                .zip(0..)
                .filter(|(e, _)| e.id != 0)
                .map(|(e, slot)| (e.id, slot)),
        );
        ends.push(out.len());
    }
}

/// Calls `f` with the slots of `shard`, locked: `f` must not register or drop tasks, and should
/// be quick (tasks of that shard wait to register or end meanwhile).
pub(crate) fn with_shard<R>(shard: usize, f: impl FnOnce(&[Slot]) -> R) -> R {
    f(&lock(shard).entries)
}

/// Counts a tracked task created (registered or not) and gives it an id.
#[inline]
pub(crate) fn spawned() -> u64 {
    LOCAL
        .try_with(|l| {
            bump(&l.counts.spawned);
            l.next_id()
        })
        .unwrap_or_else(|_| {
            // The thread's locals are gone (a task spawned during thread exit).
            RETIRED_SPAWNED.fetch_add(1, Ordering::Relaxed);
            // A whole block, so that later blocks stay aligned to their shards.
            NEXT_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed)
        })
}

/// Counts a tracked task ended.
#[inline]
pub(crate) fn completed() {
    if LOCAL.try_with(|l| bump(&l.counts.completed)).is_err() {
        // The thread's locals are gone (a task dropped during thread exit).
        RETIRED_COMPLETED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Number of tracked tasks alive right now, without touching the tasks.
///
/// A task counts from the moment it is spawned (or, for a `#[track]` future polled outside any
/// tracked task, from its first poll) until its future is dropped: on completion, panic, abort,
/// cancellation or runtime shutdown. A [`snapshot`](crate::snapshot) shows a task from its first
/// suspension on, so it can list fewer tasks than this counts (those not yet polled, or in
/// their first poll).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let before = taskprof::live_count();
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let handle = taskprof::spawn(async move { let _ = rx.await; });
/// assert!(taskprof::live_count() > before);
/// drop(tx);
/// handle.await.unwrap();
/// # }
/// ```
pub fn live_count() -> usize {
    let (spawned, completed) = totals();
    // Counts of different threads are read one after the other; a completion counted before its
    // spawn was read must not make the count wrap.
    spawned.saturating_sub(completed) as usize
}

/// True when some live tracked tasks have no registry entry yet (not suspended yet).
pub(crate) fn unlisted() -> bool {
    live_count() > listed()
}

/// `(spawned, completed)`: tracked tasks created and ended since the process started.
pub(crate) fn totals() -> (u64, u64) {
    let threads = THREADS.lock().unwrap_or_else(|p| p.into_inner());
    let mut spawned = RETIRED_SPAWNED.load(Ordering::Relaxed);
    let mut completed = RETIRED_COMPLETED.load(Ordering::Relaxed);
    for c in threads.iter() {
        spawned += c.spawned.load(Ordering::Relaxed);
        completed += c.completed.load(Ordering::Relaxed);
    }
    (spawned, completed)
}

/// One thread's counters. Only that thread writes them, with a plain load and store (no locked
/// read-modify-write on the spawn path); others only read them.
#[derive(Default)]
struct Counts {
    spawned: AtomicU64,
    completed: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Counters of the live threads; a thread's counts move to the `RETIRED_*` totals when it exits.
static THREADS: Mutex<Vec<Arc<Counts>>> = Mutex::new(Vec::new());
static RETIRED_SPAWNED: AtomicU64 = AtomicU64::new(0);
static RETIRED_COMPLETED: AtomicU64 = AtomicU64::new(0);

/// The thread's counters and its block of task ids.
struct Local {
    counts: Arc<Counts>,
    next_id: Cell<u64>,
    end_id: Cell<u64>,
}

impl Local {
    fn new() -> Self {
        let counts = Arc::new(Counts::default());
        THREADS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(counts.clone());
        Local {
            counts,
            next_id: Cell::new(0),
            end_id: Cell::new(0),
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Under the lock, so a concurrent `totals` sees the counts in exactly one place.
        let mut threads = THREADS.lock().unwrap_or_else(|p| p.into_inner());
        threads.retain(|c| !Arc::ptr_eq(c, &self.counts));
        RETIRED_SPAWNED.fetch_add(
            self.counts.spawned.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        RETIRED_COMPLETED.fetch_add(
            self.counts.completed.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }
}

thread_local! {
    static LOCAL: Local = Local::new();
}

/// Start of the next block of task ids.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(ID_BLOCK);

impl Local {
    /// Takes ids from per-thread blocks so spawning does not contend on one global counter.
    #[inline]
    fn next_id(&self) -> u64 {
        let (mut next, mut end) = (self.next_id.get(), self.end_id.get());
        if next == end {
            next = NEXT_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
            self.end_id.set(end);
        }
        self.next_id.set(next + 1);
        next
    }
}
