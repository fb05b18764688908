//! The global registry of live tracked tasks.
//!
//! A task's [`Header`] is inserted when the task first suspends (see `task.rs`) and removed when
//! its future is dropped, so the map holds the live tasks that ever waited. Counters are per
//! thread: spawns and completions of one task often happen on different workers, and a shared
//! atomic would bounce between cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use crate::task::Header;

pub(crate) type TaskMap = DashMap<u64, Arc<Header>, FxBuildHasher>;

static TASKS: LazyLock<TaskMap> = LazyLock::new(|| DashMap::with_hasher(FxBuildHasher));

pub(crate) fn tasks() -> &'static TaskMap {
    &TASKS
}

pub(crate) fn insert(header: Arc<Header>) {
    TASKS.insert(header.id, header);
}

pub(crate) fn remove(id: u64) {
    TASKS.remove(&id);
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
            NEXT_BLOCK.fetch_add(1, Ordering::Relaxed)
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
    live_count() > TASKS.len()
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
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

impl Local {
    /// Takes ids from per-thread blocks so spawning does not contend on one global counter.
    #[inline]
    fn next_id(&self) -> u64 {
        const BLOCK: u64 = 256;
        let (mut next, mut end) = (self.next_id.get(), self.end_id.get());
        if next == end {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
            self.end_id.set(end);
        }
        self.next_id.set(next + 1);
        next
    }
}
