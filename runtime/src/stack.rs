//! Where a task waits: the per-poll pending path and its published copy in the task's header.
//!
//! While a task is polled, every `#[track]` frame and recorded `.await` that returns `Pending`
//! pushes one entry onto a thread-local buffer. `Pending` propagates from the innermost future
//! outwards, so the buffer ends up innermost first, and each entry records how many entries were
//! pushed beneath it: a post-order encoding of the tree of pending branches (`join!`, `select!`).
//! When the task's poll returns `Pending`, the buffer is published into the task's [`StackCell`].
//! Futures that complete without suspending push nothing, which keeps frames nearly free.

use std::cell::{Cell, RefCell};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// One pending frame: a site id (low 32 bits) and the number of entries beneath it (high 32 bits).
pub(crate) type Entry = u64;

pub(crate) fn entry(site: u32, descendants: usize) -> Entry {
    u64::from(site) | ((descendants.min(0x7FFF_FFFF) as u64) << 32)
}

/// Marks an entry naming an in-flight HTTP call (by call id) instead of a static site.
pub(crate) const HTTP_ENTRY: u64 = 1 << 63;

pub(crate) fn http_entry(call: u64) -> Entry {
    HTTP_ENTRY | (call & !HTTP_ENTRY)
}

/// The HTTP call id of an HTTP entry.
pub(crate) fn entry_http(e: Entry) -> Option<u64> {
    (e & HTTP_ENTRY != 0).then_some(e & !HTTP_ENTRY)
}

pub(crate) fn entry_site(e: Entry) -> u32 {
    e as u32
}

pub(crate) fn entry_descendants(e: Entry) -> usize {
    // HTTP calls are leaves: nothing is tracked inside the client.
    if e & HTTP_ENTRY != 0 {
        0
    } else {
        (e >> 32) as usize
    }
}

/// Pushes an HTTP call's entry (a leaf) if a tracked task is being polled.
pub(crate) fn push_http(call: u64) -> Pushed {
    CURRENT.with_borrow_mut(|c| {
        if c.task == 0 {
            return Pushed::NONE;
        }
        let start = c.buf.len();
        c.buf.push(http_entry(call));
        c.sync();
        Pushed::record(c, start)
    })
}

/// Thread-local state of the task being polled on this thread.
pub(crate) struct Current {
    /// Id of the tracked task being polled, 0 when none.
    pub(crate) task: u64,
    /// Whether that task has its registry entry yet (see `task.rs`).
    pub(crate) registered: bool,
    /// Labels a labelled frame gave the current task before it was registered: the entry
    /// starts with them (`Some(None)`: no labels).
    pub(crate) display: Option<Option<crate::labels::LabelSet>>,
    /// What tasks spawned right now inherit; moved in and out around each poll (no refcounting).
    pub(crate) ctx: Inherit,
    /// Pending path of the current poll, innermost first.
    pub(crate) buf: Vec<Entry>,
    /// (frame site address, buffer length) of the last recorded `.await` that went pending,
    /// so its frame can tell that the await entry already names it.
    pub(crate) last_await: (usize, usize),
    /// Counts task polls on this thread, so a frame dropped later can tell whether its entries
    /// are from the poll under way.
    pub(crate) epoch: u32,
    /// Counts removals from `buf`, so a stale range is only drained while it is still in place.
    pub(crate) mods: u32,
}

/// The context a task passes on to the tasks it spawns: labels and leak-check scope.
#[derive(Clone, Default)]
pub(crate) struct Inherit {
    pub(crate) labels: Option<crate::labels::LabelSet>,
    pub(crate) scope: Option<std::sync::Arc<crate::leak::Scope>>,
}

impl Inherit {
    pub(crate) const NONE: Inherit = Inherit {
        labels: None,
        scope: None,
    };
}

thread_local! {
    pub(crate) static CURRENT: RefCell<Current> = const {
        RefCell::new(Current {
            task: 0,
            registered: false,
            display: None,
            ctx: Inherit::NONE,
            buf: Vec::new(),
            last_await: (0, 0),
            epoch: 0,
            mods: 0,
        })
    };
}

/// Copies of `Current::task` and `buf.len()` in a thread-local without a destructor or a
/// `RefCell`: the paths every frame takes (first poll, completion) read only these.
struct Fast {
    task: Cell<u64>,
    len: Cell<usize>,
}

thread_local! {
    static FAST: Fast = const { Fast { task: Cell::new(0), len: Cell::new(0) } };
}

impl Current {
    /// Publishes `task` and the buffer length to [`FAST`]; called after every change.
    pub(crate) fn sync(&self) {
        FAST.with(|f| {
            f.task.set(self.task);
            f.len.set(self.buf.len());
        });
    }
}

/// Id of the tracked task being polled on this thread, if any.
#[inline]
pub(crate) fn current_task() -> Option<u64> {
    let task = FAST.with(|f| f.task.get());
    (task != 0).then_some(task)
}

/// Length of the pending-path buffer, taken before polling an inner future.
#[inline]
pub(crate) fn mark() -> usize {
    FAST.with(|f| f.len.get())
}

/// Entries a frame or await point pushed in the current poll, remembered so they can be taken
/// back if it completes or is dropped before the poll ends: a `select!` branch that lost, or a
/// future cancelled by `timeout`, must not stay on the stack its task publishes.
#[derive(Clone, Copy)]
pub(crate) struct Pushed {
    epoch: u32,
    mods: u32,
    start: u32,
    end: u32,
}

impl Pushed {
    /// Nothing pushed (`end == 0` never names a real range).
    pub(crate) const NONE: Pushed = Pushed {
        epoch: 0,
        mods: 0,
        start: 0,
        end: 0,
    };

    /// Records the range `start..` up to the current end of the buffer.
    pub(crate) fn record(c: &Current, start: usize) -> Self {
        Pushed {
            epoch: c.epoch,
            mods: c.mods,
            start: start as u32,
            end: c.buf.len() as u32,
        }
    }

    /// Drains the range if it is still this poll's and still in place.
    #[inline]
    pub(crate) fn retract(&mut self) {
        if self.end != 0 {
            std::mem::replace(self, Pushed::NONE).retract_slow();
        }
    }

    #[cold]
    fn retract_slow(self) {
        // `try_with`: frames may be dropped while the thread's locals are being destroyed.
        let _ = CURRENT.try_with(|c| {
            let Ok(mut c) = c.try_borrow_mut() else {
                return;
            };
            let (start, end) = (self.start as usize, self.end as usize);
            if c.task != 0 && c.epoch == self.epoch && c.mods == self.mods && c.buf.len() >= end {
                c.buf.drain(start..end);
                c.mods = c.mods.wrapping_add(1);
                c.sync();
            }
        });
    }
}

/// A frame or await point completed: whatever its subtree pushed in this poll is stale.
#[inline]
pub(crate) fn completed(start: usize) {
    if mark() > start {
        CURRENT.with_borrow_mut(|c| {
            c.buf.truncate(start);
            c.mods = c.mods.wrapping_add(1);
            c.sync();
        });
    }
}

const INLINE: usize = 4;

/// The published stack of a task: a seqlock over atomics, written only by the task's poller and
/// read by snapshots without blocking it. Stacks deeper than [`INLINE`] spill into a mutex.
pub(crate) struct StackCell {
    seq: AtomicU32,
    len: AtomicU32,
    inline: [AtomicU64; INLINE],
    spill: Mutex<Vec<Entry>>,
}

impl StackCell {
    pub(crate) const fn new() -> Self {
        Self {
            seq: AtomicU32::new(0),
            len: AtomicU32::new(0),
            inline: [const { AtomicU64::new(0) }; INLINE],
            spill: Mutex::new(Vec::new()),
        }
    }

    /// True when `entries` equals what is published (only the writer calls this).
    fn same(&self, entries: &[Entry]) -> bool {
        let len = self.len.load(Ordering::Relaxed) as usize;
        len == entries.len()
            && len <= INLINE
            && entries
                .iter()
                .zip(&self.inline)
                .all(|(e, a)| *e == a.load(Ordering::Relaxed))
    }

    /// Publishes `entries`. Only the task's poller writes, and tokio polls a task on one thread
    /// at a time, so writers never race each other.
    pub(crate) fn publish(&self, entries: &[Entry]) {
        if self.same(entries) {
            return;
        }
        let s = self.seq.load(Ordering::Relaxed);
        let prev_len = self.len.load(Ordering::Relaxed) as usize;
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.len.store(entries.len() as u32, Ordering::Relaxed);
        for (slot, e) in self.inline.iter().zip(entries) {
            slot.store(*e, Ordering::Relaxed);
        }
        if entries.len() > INLINE || prev_len > INLINE {
            let mut spill = self.spill.lock().unwrap_or_else(|p| p.into_inner());
            spill.clear();
            spill.extend_from_slice(entries.get(INLINE..).unwrap_or(&[]));
        }
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Reads the published stack into `out`. Gives up (returns false) after a bounded number of
    /// retries if the task keeps republishing, so a snapshot never waits on a busy task.
    pub(crate) fn read(&self, out: &mut Vec<Entry>) -> bool {
        for _ in 0..64 {
            out.clear();
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let len = self.len.load(Ordering::Relaxed) as usize;
            for slot in self.inline.iter().take(len) {
                out.push(slot.load(Ordering::Relaxed));
            }
            if len > INLINE {
                let spill = self.spill.lock().unwrap_or_else(|p| p.into_inner());
                out.extend(spill.iter().take(len - INLINE));
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 && out.len() == len {
                return true;
            }
        }
        out.clear();
        false
    }
}
