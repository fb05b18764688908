//! Where a task waits: the per-poll pending path and its published copy in the task's header.
//!
//! While a task is polled, every `#[track]` frame and recorded `.await` that returns `Pending`
//! pushes one entry onto a thread-local buffer. `Pending` propagates from the innermost future
//! outwards, so the buffer ends up innermost first, and each entry records how many entries were
//! pushed beneath it: a post-order encoding of the tree of pending branches (`join!`, `select!`).
//! When the task's poll returns `Pending`, the buffer is published into the task's [`StackCell`].
//! Futures that complete without suspending push nothing, which keeps frames nearly free.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// One pending frame: a site id (low 32 bits) and the number of entries beneath it (high 32 bits).
pub(crate) type Entry = u64;

pub(crate) fn entry(site: u32, descendants: usize) -> Entry {
    u64::from(site) | ((descendants.min(u32::MAX as usize) as u64) << 32)
}

pub(crate) fn entry_site(e: Entry) -> u32 {
    e as u32
}

pub(crate) fn entry_descendants(e: Entry) -> usize {
    (e >> 32) as usize
}

/// Thread-local state of the task being polled on this thread.
pub(crate) struct Current {
    /// Id of the tracked task being polled, 0 when none.
    pub(crate) task: u64,
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
            ctx: Inherit::NONE,
            buf: Vec::new(),
            last_await: (0, 0),
            epoch: 0,
            mods: 0,
        })
    };
}

/// Id of the tracked task being polled on this thread, if any.
pub(crate) fn current_task() -> Option<u64> {
    CURRENT.with_borrow(|c| (c.task != 0).then_some(c.task))
}

/// Length of the pending-path buffer, taken before polling an inner future.
pub(crate) fn mark() -> usize {
    CURRENT.with_borrow(|c| c.buf.len())
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
    pub(crate) fn retract(self) {
        // `try_with`: frames may be dropped while the thread's locals are being destroyed.
        let _ = CURRENT.try_with(|c| {
            let Ok(mut c) = c.try_borrow_mut() else {
                return;
            };
            let (start, end) = (self.start as usize, self.end as usize);
            if c.task != 0 && c.epoch == self.epoch && c.mods == self.mods && c.buf.len() >= end {
                c.buf.drain(start..end);
                c.mods = c.mods.wrapping_add(1);
            }
        });
    }
}

/// A frame or await point completed: whatever its subtree pushed in this poll is stale.
#[inline]
pub(crate) fn completed(start: usize) {
    CURRENT.with_borrow_mut(|c| {
        if c.buf.len() > start {
            c.buf.truncate(start);
            c.mods = c.mods.wrapping_add(1);
        }
    });
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
