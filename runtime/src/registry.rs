//! The global registry of live tracked tasks.
//!
//! A task's [`Header`] is inserted when the task first suspends (see `task.rs`) and removed when
//! its future is dropped, so the map holds the live tasks that ever waited. Counters are sharded by thread: spawns and completions of
//! one task often happen on different workers, and a single shared atomic would bounce between cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

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

/// Counts a tracked task created (registered or not).
#[inline]
pub(crate) fn spawned() {
    SPAWNED.add(1);
}

/// Counts a tracked task ended.
#[inline]
pub(crate) fn completed() {
    COMPLETED.add(1);
}

/// Number of tracked tasks alive right now, in O(1).
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
    let spawned = SPAWNED.sum();
    let completed = COMPLETED.sum();
    // The two sums are read one after the other; a completion counted between them must not
    // make the count wrap.
    spawned.saturating_sub(completed) as usize
}

/// True when some live tracked tasks have no registry entry yet (not suspended yet).
pub(crate) fn unlisted() -> bool {
    live_count() > TASKS.len()
}

/// `(spawned, completed)`: tracked tasks registered and ended since the process started, for the
/// debug server's counters.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) fn totals() -> (u64, u64) {
    (SPAWNED.sum(), COMPLETED.sum())
}

const SHARDS: usize = 16;

#[repr(align(128))]
struct Padded(AtomicU64);

struct ShardedCounter([Padded; SHARDS]);

impl ShardedCounter {
    const fn new() -> Self {
        Self([const { Padded(AtomicU64::new(0)) }; SHARDS])
    }

    fn add(&self, n: u64) {
        self.0[shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

static SPAWNED: ShardedCounter = ShardedCounter::new();
static COMPLETED: ShardedCounter = ShardedCounter::new();

fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        s.set(v);
        v
    })
}

/// Allocates task ids in per-thread blocks so spawning does not contend on one global counter.
pub(crate) fn next_id() -> u64 {
    const BLOCK: u64 = 256;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}
