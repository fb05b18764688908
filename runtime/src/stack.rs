//! Where a task waits: the per-poll pending path and its published copy in the task's header.
//!
//! While a task is polled, every `#[track]` frame and recorded `.await` that returns `Pending`
//! pushes one entry onto a thread-local buffer. `Pending` propagates from the innermost future
//! outwards, so the buffer ends up innermost first, and each entry records how many entries were
//! pushed beneath it: a post-order encoding of the tree of pending branches (`join!`, `select!`).
//! When the task's poll returns `Pending`, the buffer is published into the task's [`StackCell`].
//! Futures that complete without suspending push nothing, which keeps frames nearly free.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Mutex, OnceLock};

/// One pending frame: a site id (low 32 bits) and the number of entries beneath it (high 32 bits).
pub(crate) type Entry = u64;

/// An entry taken back (see `bury`): site id 0 is never given out.
const TOMBSTONE: Entry = 0;

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
    if current_task().is_none() {
        return Pushed::NONE;
    }
    let start = mark();
    push(http_entry(call));
    Pushed::record(start)
}

/// Thread-local state of the task being polled on this thread that needs a `RefCell`; the
/// scalars every poll and frame touch are in [`Fast`].
pub(crate) struct Current {
    /// What tasks spawned right now inherit; moved in and out around each poll (no refcounting).
    pub(crate) ctx: Inherit,
    /// Contexts of the threads' outer polls while a task's own is installed.
    pub(crate) saved: Vec<Inherit>,
    /// Labels a labelled frame gave the current task before it was registered: the entry
    /// starts with them (`Some(None)`: no labels).
    pub(crate) display: Option<Option<crate::labels::LabelSet>>,
    /// Entries of the pending path past the [`INLINE_PATH`] kept in [`Fast`]: index `i` here
    /// is entry `INLINE_PATH + i`.
    overflow: Vec<Entry>,
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

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_none() && self.scope.is_none()
    }
}

thread_local! {
    pub(crate) static CURRENT: RefCell<Current> = const {
        RefCell::new(Current {
            ctx: Inherit::NONE,
            saved: Vec::new(),
            display: None,
            overflow: Vec::new(),
        })
    };
}

/// The scalars of the thread's current task, in a thread-local without a destructor or a
/// `RefCell`: a poll of a task with no labels and a frame that does not suspend touch only these.
pub(crate) struct Fast {
    /// Id of the tracked task being polled, 0 when none.
    pub(crate) task: Cell<u64>,
    /// That task's registry entry (listed or not).
    pub(crate) header: Cell<Option<&'static crate::task::Header>>,
    /// Bumped when a task poll starts and when the path is cut back (a poll ends): a frame
    /// dropped later can tell whether the range it pushed is still this poll's and in place.
    /// Never 0 (see [`Pushed::needs_drop`]).
    pub(crate) generation: Cell<u32>,
    /// Length of the pending path of the current poll.
    pub(crate) len: Cell<usize>,
    /// Whether `Current` has a context or display labels: only then must a poll swap them.
    pub(crate) rich: Cell<bool>,
    /// Whether the path may hold [`TOMBSTONE`]s: publishing then compacts it. Cleared when the
    /// outermost poll ends.
    pub(crate) buried: Cell<bool>,
    /// (frame site address, path length) of the last recorded `.await` that went pending, so
    /// its frame can tell that the await entry already names it.
    pub(crate) last_await: Cell<(usize, usize)>,
    /// The pending path of the current poll, innermost first (its first [`INLINE_PATH`]
    /// entries; deeper ones are in `Current`).
    path: [Cell<Entry>; INLINE_PATH],
}

/// Pending-path entries kept in [`Fast`]: recording a frame touches no `RefCell`.
const INLINE_PATH: usize = 32;

thread_local! {
    pub(crate) static FAST: Fast = const {
        Fast {
            task: Cell::new(0),
            header: Cell::new(None),
            generation: Cell::new(1),
            len: Cell::new(0),
            rich: Cell::new(false),
            buried: Cell::new(false),
            last_await: Cell::new((0, 0)),
            path: [const { Cell::new(0) }; INLINE_PATH],
        }
    };
}

impl Current {
    /// Mirrors whether a context is set into [`FAST`]; called after every change of `ctx` or
    /// `display`.
    pub(crate) fn sync(&self) {
        let rich = !self.ctx.is_empty() || self.display.is_some();
        FAST.with(|f| f.rich.set(rich));
    }
}

/// Appends an entry to the pending path.
#[inline]
pub(crate) fn push(e: Entry) {
    FAST.with(|f| f.push(e));
}

impl Fast {
    /// Starts a new generation: generations start at 1 and step by 2, so they are never 0.
    #[inline]
    pub(crate) fn bump_generation(&self) {
        self.generation.set(self.generation.get().wrapping_add(2));
    }

    #[inline]
    fn push(&self, e: Entry) {
        let n = self.len.get();
        match self.path.get(n) {
            Some(slot) => slot.set(e),
            None => push_overflow(n, e),
        }
        self.len.set(n + 1);
    }

    #[inline]
    fn record(&self, start: usize) -> Pushed {
        let end = self.len.get();
        // `start <= end`: one comparison covers both. `u16::MAX` is no range's end (see
        // `frame_mode`).
        if end >= usize::from(u16::MAX) {
            return Pushed::NONE;
        }
        Pushed::new(self.generation.get(), start as u16, end as u16)
    }

    /// A `#[track]` frame (site `id` at address `me`) whose poll started at path length
    /// `start` returned `Pending`: pushes its entry, unless the `.await` it is parked on
    /// already names it (one line, not two). One thread-local access for all of it.
    #[inline]
    pub(crate) fn frame_pending(&self, id: u32, me: usize, start: usize) -> Pushed {
        if self.task.get() == 0 {
            return Pushed::NONE;
        }
        let len = self.len.get();
        if !(self.last_await.get() == (me, len) && len > start) {
            self.push(entry(id, len.saturating_sub(start)));
        }
        self.record(start)
    }

    /// A recorded `.await` (site `id`, in the frame at address `func`) returned `Pending`.
    #[inline]
    pub(crate) fn await_pending(&self, id: u32, func: usize, start: usize) -> Pushed {
        if self.task.get() == 0 {
            return Pushed::NONE;
        }
        let len = self.len.get();
        self.push(entry(id, len.saturating_sub(start)));
        self.last_await.set((func, len + 1));
        self.record(start)
    }
}

/// Entries past the inline ones: rare, kept out of every frame's code.
#[cold]
#[inline(never)]
fn push_overflow(n: usize, e: Entry) {
    CURRENT.with_borrow_mut(|c| {
        c.overflow.truncate(n - INLINE_PATH);
        c.overflow.push(e);
    });
}

/// Publishes the pending path from `start` on into `cell`. A path within the thread-local
/// buffer is compared and copied from it in place: most polls publish what the previous one did.
pub(crate) fn publish_path(cell: &StackCell, start: usize) {
    let done = FAST.with(|f| {
        let len = f.len.get();
        if f.buried.get() {
            return None;
        }
        let path = f.path.get(start.min(len)..len)?;
        cell.publish_from(path.len(), path.iter().map(Cell::get));
        Some(())
    });
    if done.is_none() {
        with_path(start, |path| {
            if path.contains(&TOMBSTONE) {
                cell.publish(&compact(path));
            } else {
                cell.publish(path);
            }
        });
    }
}

/// `path` without its [`TOMBSTONE`]s, each entry's count of entries beneath it recounted.
fn compact(path: &[Entry]) -> Vec<Entry> {
    // `kept[i]`: live entries in `path[..i]`.
    let mut kept = Vec::with_capacity(path.len() + 1);
    let mut n = 0;
    for &e in path {
        kept.push(n);
        n += usize::from(e != TOMBSTONE);
    }
    kept.push(n);
    path.iter()
        .enumerate()
        .filter(|&(_, &e)| e != TOMBSTONE)
        .map(|(i, &e)| {
            if entry_http(e).is_some() {
                return e;
            }
            let below = entry_descendants(e).min(i);
            entry(entry_site(e), kept[i] - kept[i - below])
        })
        .collect()
}

/// The pending path from `start` on, for publishing.
pub(crate) fn with_path<R>(start: usize, f: impl FnOnce(&[Entry]) -> R) -> R {
    let len = mark();
    if len <= INLINE_PATH {
        let mut copy = [0; INLINE_PATH];
        let n = len.saturating_sub(start);
        FAST.with(|fast| {
            for (dst, src) in copy.iter_mut().zip(&fast.path[start.min(len)..len]) {
                *dst = src.get();
            }
        });
        return f(&copy[..n]);
    }
    let all: Vec<Entry> = FAST.with(|fast| {
        CURRENT.with_borrow(|c| {
            fast.path
                .iter()
                .map(Cell::get)
                .chain(c.overflow.iter().copied())
                .take(len)
                .collect()
        })
    });
    f(all.get(start..).unwrap_or(&[]))
}

/// Cuts the pending path back to `len` entries; ranges recorded before become stale.
pub(crate) fn truncate_path(len: usize) {
    FAST.with(|f| {
        if f.len.get() > len {
            f.len.set(len);
        }
        f.bump_generation();
    });
}

/// Takes entries `start..end` off the pending path. They become [`TOMBSTONE`]s, skipped when
/// the path is published, so every other range recorded in this poll stays where it is (a
/// `select!` drops all its losing branches one after the other); tombstones at the end of the
/// path are cut off, so a loop that keeps dropping futures does not grow it.
fn bury(start: usize, end: usize) {
    let len = mark();
    let end = end.min(len);
    if start >= end {
        return;
    }
    FAST.with(|f| {
        for i in start..end.min(INLINE_PATH) {
            f.path[i].set(TOMBSTONE);
        }
        if end > INLINE_PATH {
            CURRENT.with_borrow_mut(|c| {
                let from = start.max(INLINE_PATH) - INLINE_PATH;
                for e in c.overflow.iter_mut().take(end - INLINE_PATH).skip(from) {
                    *e = TOMBSTONE;
                }
            });
        }
        let mut len = len;
        while len > 0 && entry_at(f, len - 1) == TOMBSTONE {
            len -= 1;
        }
        f.len.set(len);
        // An await recorded in the buried range no longer names its frame.
        f.last_await.set((0, 0));
        f.buried.set(true);
    });
}

/// Entry `i` of the pending path (which has more than `i` entries).
fn entry_at(f: &Fast, i: usize) -> Entry {
    match f.path.get(i) {
        Some(c) => c.get(),
        None => CURRENT.with_borrow(|c| c.overflow.get(i - INLINE_PATH).copied().unwrap_or(0)),
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

/// How a `#[track]` frame relates to the task polling it (kept in the frame's [`Pushed`]).
pub(crate) enum FrameMode {
    /// Polled inside a tracked task: records itself on that task's stack. Also the mode of a
    /// frame not polled yet, so the common case needs no decision on its first poll.
    Nested,
    /// First polled while tracking was switched off: a plain future.
    Off,
    /// Polled with no tracked task around it (plain `tokio::spawn`, `block_on`): a task
    /// itself, whose header is at this index.
    Root(u32),
}

/// Entries a frame or await point pushed in the current poll, remembered so they can be taken
/// back if it completes or is dropped before the poll ends: a `select!` branch that lost, or a
/// future cancelled by `timeout`, must not stay on the stack its task publishes. Eight bytes:
/// every frame carries one.
///
/// One integer, so a frame's mode is written and compared in one instruction: the poll's
/// generation in bits 0..32, the range's `start` in bits 32..48 and its `end` in bits 48..64.
// `repr(transparent)`: passed whole to an `extern "C"` function (see `frame::drop_frame`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Pushed(u64);

impl Pushed {
    /// Nothing pushed (`end == 0` never names a real range).
    pub(crate) const NONE: Pushed = Pushed::new(0, 0, 0);

    /// The mode of a frame created (or first polled outside any task) while tracking was
    /// switched off: a plain future.
    pub(crate) const OFF: Pushed = Pushed::new(0, 0, u16::MAX);

    const fn new(generation: u32, start: u16, end: u16) -> Pushed {
        Pushed(generation as u64 | (start as u64) << 32 | (end as u64) << 48)
    }

    fn generation(self) -> u32 {
        self.0 as u32
    }

    fn start(self) -> u16 {
        (self.0 >> 32) as u16
    }

    fn end(self) -> u16 {
        (self.0 >> 48) as u16
    }

    /// The mode a new frame starts in: [`OFF`](Self::OFF) if tracking is switched off (decided
    /// where the future is made, so polling it costs one comparison), else [`NONE`](Self::NONE).
    #[inline]
    pub(crate) fn initial() -> Pushed {
        crate::enabled::initial_mode()
    }

    /// The mode as one integer.
    pub(crate) const fn to_bits(self) -> u64 {
        self.0
    }

    /// The mode [`to_bits`](Self::to_bits) gave.
    #[inline]
    pub(crate) const fn from_bits(bits: u64) -> Pushed {
        Pushed(bits)
    }

    /// Whether the frame is a root or [`OFF`](Self::OFF) (not nested in a task).
    #[inline]
    pub(crate) fn is_special(self) -> bool {
        self.end() == u16::MAX
    }

    /// Whether the frame is a root (given [`is_special`](Self::is_special)).
    #[inline]
    pub(crate) fn is_root(self) -> bool {
        self.start() != 0
    }

    /// The mode of a root frame: the task whose header is at `index`.
    pub(crate) fn root(index: u32) -> Pushed {
        Pushed::new(index, 1, u16::MAX)
    }

    /// What a frame's `Pushed` says of the frame: `end == u16::MAX` (never the end of a range)
    /// marks the other modes, told apart by `start`; a root's `generation` is its task's
    /// header index. A nested frame's mode is one comparison.
    #[inline]
    pub(crate) fn frame_mode(self) -> FrameMode {
        if !self.is_special() {
            FrameMode::Nested
        } else if self.is_root() {
            FrameMode::Root(self.generation())
        } else {
            FrameMode::Off
        }
    }

    /// Whether dropping the frame has work to do: a range to take back or a task to end (not
    /// [`NONE`](Self::NONE) nor [`OFF`](Self::OFF)). One test: a range's generation is never
    /// 0 and a root's `start` is 1, while those two have neither.
    #[inline]
    pub(crate) fn needs_drop(self) -> bool {
        self.0 & ((1 << 48) - 1) != 0
    }

    /// Records the range `start..` up to the current end of the path (nothing for a path
    /// deeper than 65534 entries: its entries then stay until the poll ends).
    #[inline]
    pub(crate) fn record(start: usize) -> Self {
        FAST.with(|f| f.record(start))
    }

    /// Drains the range if it is still this poll's and still in place.
    #[inline]
    pub(crate) fn retract(&mut self) {
        if self.end() != 0 {
            std::mem::replace(self, Pushed::NONE).retract_slow();
        }
    }

    #[cold]
    fn retract_slow(self) {
        let (task, generation) = FAST.with(|f| (f.task.get(), f.generation.get()));
        if task == 0 || generation != self.generation() {
            return;
        }
        bury(usize::from(self.start()), usize::from(self.end()));
    }
}

/// Entries a published stack keeps inline (the common stack is shorter).
pub(crate) const INLINE: usize = 4;

/// Entries past [`INLINE`] a published stack keeps: a deeper stack keeps its innermost
/// `INLINE + SPILL` entries (Go's goroutine profile elides frames past 100 the same way).
const SPILL: usize = 60;

/// Entries past [`INLINE`] of a deep stack.
type Row = [AtomicU64; SPILL];

/// Rows in a chunk of [`ROW_CHUNKS`].
const ROWS: usize = 256;

/// Rows for stacks deeper than [`INLINE`], by id (1-based: 0 is none): given to a registry
/// entry the first time it publishes a deep stack, and kept by it for every task it holds
/// later, as the entry itself is kept. Room for 16M entries with deep stacks (the 24 bits of a
/// row id); past that, deeper stacks keep their innermost [`INLINE`] entries.
static ROW_CHUNKS: [OnceLock<Box<[Row; ROWS]>>; (1 << 24) / ROWS] =
    [const { OnceLock::new() }; (1 << 24) / ROWS];

/// Number of rows given out.
static ROWS_TAKEN: Mutex<usize> = Mutex::new(0);

/// The row with id `id`.
#[inline]
fn row(id: u32) -> Option<&'static Row> {
    let i = (id as usize).checked_sub(1)?;
    ROW_CHUNKS.get(i / ROWS)?.get()?.get(i % ROWS)
}

/// A new row's id, 0 if there are none left.
#[cold]
#[inline(never)]
fn new_row() -> u32 {
    let mut taken = ROWS_TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    let i = *taken;
    let Some(chunk) = ROW_CHUNKS.get(i / ROWS) else {
        return 0;
    };
    if chunk.get().is_none() {
        // Built on the heap: a chunk is 120 KB.
        let rows: Box<[Row]> = (0..ROWS)
            .map(|_| [const { AtomicU64::new(0) }; SPILL])
            .collect();
        let Ok(rows) = Box::<[Row; ROWS]>::try_from(rows) else {
            return 0;
        };
        // Set under the lock: no other thread sets it.
        let _ = chunk.set(rows);
    }
    *taken = i + 1;
    (i + 1) as u32
}

/// Bits of [`StackCell::len_row`] that hold the length (at most `INLINE + SPILL`, 64).
const LEN_BITS: u32 = 8;

/// The published stack of a task: a seqlock over atomics, written only by the task's poller and
/// read by snapshots, neither ever blocking the other. Stacks deeper than [`INLINE`] spill into
/// a row of [`ROW_CHUNKS`], taken the first time. 40 bytes: every registry entry has one.
pub(crate) struct StackCell {
    seq: AtomicU32,
    /// The length (low [`LEN_BITS`] bits) and the id of the entry's row (the others, 0 if
    /// none): one word, so the cell adds no padding to the entry.
    len_row: AtomicU32,
    inline: [AtomicU64; INLINE],
}

impl StackCell {
    pub(crate) fn new() -> Self {
        Self {
            seq: AtomicU32::new(0),
            len_row: AtomicU32::new(0),
            inline: [const { AtomicU64::new(0) }; INLINE],
        }
    }

    /// The published length, and the id of the row (see [`LEN_BITS`]).
    #[inline]
    fn len_and_row(&self) -> (usize, u32) {
        let v = self.len_row.load(Ordering::Relaxed);
        ((v & ((1 << LEN_BITS) - 1)) as usize, v >> LEN_BITS)
    }

    /// True when nothing is published.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len_and_row().0 == 0
    }

    /// Publishes `entries`. Only the task's poller writes, and tokio polls a task on one thread
    /// at a time, so writers never race each other.
    #[inline]
    pub(crate) fn publish(&self, entries: &[Entry]) {
        self.publish_from(entries.len(), entries.iter().copied());
    }

    /// [`publish`](Self::publish) for the `n` entries of an iterator (the thread-local path,
    /// read in place).
    #[inline]
    fn publish_from(&self, n: usize, entries: impl Iterator<Item = Entry> + Clone) {
        // Most polls publish what the previous one did (often nothing).
        if n == 0 && self.is_empty() {
            return;
        }
        let n = n.min(INLINE + SPILL);
        let entries = entries.take(n);
        if !self.same(n, entries.clone()) {
            self.write(n, entries);
        }
    }

    /// True when the `n` `entries` are what is published (only the writer calls this).
    fn same(&self, n: usize, entries: impl Iterator<Item = Entry>) -> bool {
        let (len, row_id) = self.len_and_row();
        if len != n {
            return false;
        }
        let same = |e: Entry, a: &AtomicU64| e == a.load(Ordering::Relaxed);
        // The common short stack: no chained iterator, no look at the spill array.
        if n <= INLINE {
            return entries.zip(&self.inline).all(|(e, a)| same(e, a));
        }
        let spill = row(row_id).into_iter().flat_map(|s| s.iter());
        entries
            .zip(self.inline.iter().chain(spill))
            .all(|(e, a)| same(e, a))
    }

    /// Writes the `n` (at most `INLINE + SPILL`) `entries` as the published stack.
    fn write(&self, n: usize, entries: impl Iterator<Item = Entry>) {
        let (_, mut row_id) = self.len_and_row();
        if n > INLINE && row_id == 0 {
            row_id = new_row();
        }
        let spill = if n > INLINE { row(row_id) } else { None };
        // With no row left, the innermost entries only.
        let n = if spill.is_some() { n } else { n.min(INLINE) };
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.len_row
            .store(row_id << LEN_BITS | n as u32, Ordering::Relaxed);
        let slots = self
            .inline
            .iter()
            .chain(spill.into_iter().flat_map(|s| s.iter()));
        for (slot, e) in slots.zip(entries) {
            slot.store(e, Ordering::Relaxed);
        }
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Reads a published stack of at most [`INLINE`] entries: its length and the inline
    /// entries (fixed-size loads, no buffer). `None` for a deeper stack (use
    /// [`read`](Self::read)), or if the task keeps republishing (as `read`).
    #[inline]
    pub(crate) fn read_short(&self) -> Option<(usize, [Entry; INLINE])> {
        for _ in 0..64 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let (len, _) = self.len_and_row();
            if len > INLINE {
                return None;
            }
            let mut out = [0; INLINE];
            for (to, slot) in out.iter_mut().zip(&self.inline) {
                *to = slot.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                // Entries past `len` are left over from deeper stacks: not part of this one.
                for e in out.iter_mut().skip(len) {
                    *e = 0;
                }
                return Some((len, out));
            }
        }
        None
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
            let (len, row_id) = self.len_and_row();
            for slot in self.inline.iter().take(len) {
                out.push(slot.load(Ordering::Relaxed));
            }
            if len > INLINE
                && let Some(spill) = row(row_id)
            {
                out.extend(
                    spill
                        .iter()
                        .take(len - INLINE)
                        .map(|a| a.load(Ordering::Relaxed)),
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn published(cell: &StackCell) -> Vec<Entry> {
        let mut out = Vec::new();
        assert!(cell.read(&mut out));
        out
    }

    #[test]
    fn stacks_of_every_depth_read_back_as_published() {
        let cell = StackCell::new();
        for len in [0, 1, INLINE, INLINE + 1, 17, INLINE + SPILL, 3, 0, 40, 40] {
            let entries: Vec<Entry> = (0..len as u64).map(|i| entry(i as u32 + 7, 0)).collect();
            cell.publish(&entries);
            assert_eq!(published(&cell), entries, "depth {len}");
        }
    }

    #[test]
    fn deeper_stacks_keep_their_innermost_entries() {
        let cell = StackCell::new();
        let entries: Vec<Entry> = (0..100).map(|i| entry(i, 0)).collect();
        cell.publish(&entries);
        assert_eq!(published(&cell), entries[..INLINE + SPILL]);
    }

    #[test]
    fn compacting_recounts_what_is_beneath_each_entry() {
        // Innermost first: a frame (7) over a pending branch (1, with 2 beneath it), an HTTP call
        // and a dropped branch (3 over 4), taken back.
        let path = [
            entry(2, 0),
            entry(1, 1),
            http_entry(9),
            TOMBSTONE,
            TOMBSTONE,
            entry(7, 5),
        ];
        let compacted = compact(&path);
        assert_eq!(
            compacted,
            [entry(2, 0), entry(1, 1), http_entry(9), entry(7, 3)]
        );
        assert!(compact(&[TOMBSTONE, TOMBSTONE]).is_empty());
    }

    #[test]
    fn buried_entries_leave_other_ranges_in_place() {
        // Two ranges recorded in one poll, taken back in either order: both go.
        for first_the_later in [false, true] {
            truncate_path(0);
            FAST.with(|f| f.task.set(1));
            let a = mark();
            push(entry(3, 0));
            let mut ra = Pushed::record(a);
            let b = mark();
            push(entry(4, 0));
            push(entry(5, 1));
            let mut rb = Pushed::record(b);
            push(entry(6, 3));
            if first_the_later {
                rb.retract();
                ra.retract();
            } else {
                ra.retract();
                rb.retract();
            }
            with_path(0, |p| {
                assert_eq!(compact(p), [entry(6, 0)], "{first_the_later}")
            });
            FAST.with(|f| f.task.set(0));
        }
        truncate_path(0);
    }
}
