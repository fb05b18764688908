//! The global registry of tracked tasks: a slab of fixed-address [`Header`]s.
//!
//! Every tracked task takes a header at its spawn and gives it back when its future is dropped;
//! headers are reused, never freed (as Go keeps its goroutine descriptors). A header lives in a
//! chunk allocated once and owned by a static, so a task holds a plain `&'static Header`: no
//! reference count, no allocation per task, and a snapshot reads headers with no lock, checking
//! each one's id before and after (see `task.rs`). A task is listed (seen by snapshots) from its
//! first suspension on; most tasks finish in their first poll and never are.
//!
//! Free headers are kept per thread, moved between threads in batches through a shared pool:
//! taking or giving back one is a thread-local push or pop. Counters are per thread too: spawns
//! and completions of one task often happen on different workers, and a shared atomic would
//! bounce between cores.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::task::Header;

/// Headers in a chunk.
const CHUNK: usize = 1024;

/// Chunks there can be: room for 64M live tasks (tasks past that are not tracked).
const MAX_CHUNKS: usize = 1 << 16;

/// Ids a thread takes at a time (see [`Local::next_id`]).
const ID_BLOCK: u64 = 256;

/// A thread gives half its free headers to the pool when it holds more than this.
const KEEP: usize = 2 * CHUNK;

static CHUNKS: [OnceLock<Box<[Header; CHUNK]>>; MAX_CHUNKS] =
    [const { OnceLock::new() }; MAX_CHUNKS];

/// Number of chunks allocated.
static GROWN: Mutex<usize> = Mutex::new(0);

/// [`GROWN`], for readers.
static CHUNKS_LEN: AtomicUsize = AtomicUsize::new(0);

/// Batches of free headers given up by threads (or by ones that exited).
static POOL: Mutex<Vec<Vec<&'static Header>>> = Mutex::new(Vec::new());

/// The header at `index`.
#[inline]
pub(crate) fn header(index: u32) -> Option<&'static Header> {
    let index = index as usize;
    CHUNKS.get(index / CHUNK)?.get()?.get(index % CHUNK)
}

/// Fills an empty free list: a batch from the pool, or a new chunk.
#[cold]
#[inline(never)]
fn refill(free: &mut Vec<&'static Header>) {
    if let Some(batch) = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop() {
        *free = batch;
        return;
    }
    let mut grown = GROWN.lock().unwrap_or_else(|p| p.into_inner());
    let n = *grown;
    let Some(place) = CHUNKS.get(n) else { return };
    let first = n * CHUNK;
    let chunk: Box<[Header]> = (first..first + CHUNK)
        .map(|i| Header::new(i as u32))
        .collect();
    let Ok(chunk) = Box::<[Header; CHUNK]>::try_from(chunk) else {
        return;
    };
    if place.set(chunk).is_err() {
        return;
    }
    *grown = n + 1;
    CHUNKS_LEN.store(n + 1, Ordering::Release);
    if let Some(chunk) = place.get() {
        // Popped from the end: lowest index first.
        free.extend(chunk.iter().rev());
    }
}

/// Counts a tracked task ended and gives back the header it took in [`spawned`] (without
/// touching it: the header of a task that never suspended may be in another core's cache).
#[inline]
pub(crate) fn ended(h: &'static Header) {
    let given = LOCAL.try_with(|l| {
        bump(&l.counts.completed);
        let mut free = l.free.borrow_mut();
        free.push(h);
        if free.len() > KEEP {
            let keep = free.len() - CHUNK;
            let batch = free.split_off(keep);
            drop(free);
            POOL.lock().unwrap_or_else(|p| p.into_inner()).push(batch);
        }
    });
    if given.is_err() {
        // The thread's locals are gone (a task dropped during thread exit).
        RETIRED_COMPLETED.fetch_add(1, Ordering::Relaxed);
        POOL.lock().unwrap_or_else(|p| p.into_inner()).push(vec![h]);
    }
}

/// Number of listed tasks.
pub(crate) fn listed() -> usize {
    let (listed, unlisted) = sum(
        |c| (&c.listed, &c.unlisted),
        &RETIRED_LISTED,
        &RETIRED_UNLISTED,
    );
    listed.saturating_sub(unlisted) as usize
}

/// Counts a task listed.
#[inline]
pub(crate) fn count_listed() {
    if LOCAL.try_with(|l| bump(&l.counts.listed)).is_err() {
        RETIRED_LISTED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a listed task ended.
#[inline]
pub(crate) fn count_unlisted() {
    if LOCAL.try_with(|l| bump(&l.counts.unlisted)).is_err() {
        RETIRED_UNLISTED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every chunk of headers, in address order (headers free or not listed among them).
pub(crate) fn chunks() -> impl Iterator<Item = &'static [Header]> {
    let n = CHUNKS_LEN.load(Ordering::Acquire);
    CHUNKS[..n.min(MAX_CHUNKS)]
        .iter()
        .filter_map(|c| Some(&c.get()?[..]))
}

/// Counts a tracked task created and gives it an id and a header (none if there are no more).
#[inline]
pub(crate) fn spawned() -> (u64, Option<&'static Header>) {
    LOCAL
        .try_with(|l| {
            bump(&l.counts.spawned);
            let mut free = l.free.borrow_mut();
            if free.is_empty() {
                refill(&mut free);
            }
            (l.next_id(), free.pop())
        })
        .unwrap_or_else(|_| {
            // The thread's locals are gone (a task spawned during thread exit): counted, not
            // tracked.
            RETIRED_SPAWNED.fetch_add(1, Ordering::Relaxed);
            (NEXT_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed), None)
        })
}

/// Counts a tracked task ended that had no header (see [`ended`]).
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

/// True when some live tracked tasks are not listed yet (not suspended yet).
pub(crate) fn unlisted() -> bool {
    live_count() > listed()
}

/// `(spawned, completed)`: tracked tasks created and ended since the process started.
pub(crate) fn totals() -> (u64, u64) {
    sum(
        |c| (&c.spawned, &c.completed),
        &RETIRED_SPAWNED,
        &RETIRED_COMPLETED,
    )
}

/// Sums a pair of counters over the live threads and the exited ones.
fn sum(
    pick: impl Fn(&Counts) -> (&AtomicU64, &AtomicU64),
    retired_a: &AtomicU64,
    retired_b: &AtomicU64,
) -> (u64, u64) {
    let threads = THREADS.lock().unwrap_or_else(|p| p.into_inner());
    let mut a = retired_a.load(Ordering::Relaxed);
    let mut b = retired_b.load(Ordering::Relaxed);
    for c in threads.iter() {
        let (ca, cb) = pick(c);
        a += ca.load(Ordering::Relaxed);
        b += cb.load(Ordering::Relaxed);
    }
    (a, b)
}

/// One thread's counters. Only that thread writes them, with a plain load and store (no locked
/// read-modify-write on the spawn path); others only read them.
#[derive(Default)]
struct Counts {
    spawned: AtomicU64,
    completed: AtomicU64,
    listed: AtomicU64,
    unlisted: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Counters of the live threads; a thread's counts move to the `RETIRED_*` totals when it exits.
static THREADS: Mutex<Vec<Arc<Counts>>> = Mutex::new(Vec::new());
static RETIRED_SPAWNED: AtomicU64 = AtomicU64::new(0);
static RETIRED_COMPLETED: AtomicU64 = AtomicU64::new(0);
static RETIRED_LISTED: AtomicU64 = AtomicU64::new(0);
static RETIRED_UNLISTED: AtomicU64 = AtomicU64::new(0);

/// The thread's counters, its block of task ids and its free headers.
struct Local {
    counts: Arc<Counts>,
    next_id: Cell<u64>,
    end_id: Cell<u64>,
    free: RefCell<Vec<&'static Header>>,
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
            free: RefCell::new(Vec::new()),
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Under the lock, so a concurrent `totals` sees the counts in exactly one place.
        let mut threads = THREADS.lock().unwrap_or_else(|p| p.into_inner());
        threads.retain(|c| !Arc::ptr_eq(c, &self.counts));
        let c = &self.counts;
        for (retired, count) in [
            (&RETIRED_SPAWNED, &c.spawned),
            (&RETIRED_COMPLETED, &c.completed),
            (&RETIRED_LISTED, &c.listed),
            (&RETIRED_UNLISTED, &c.unlisted),
        ] {
            retired.fetch_add(count.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        drop(threads);
        let free = std::mem::take(&mut *self.free.borrow_mut());
        if !free.is_empty() {
            POOL.lock().unwrap_or_else(|p| p.into_inner()).push(free);
        }
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
