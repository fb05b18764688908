//! `#[track]` frames and recorded `.await` points: the futures the attribute wraps code in.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::labels::{LabelScope, LabelSet};
use crate::site::{AwaitSite, AwaitSiteOf, FnSite, FnSiteOf};
use crate::stack::{FAST, FrameMode, Pushed, mark};
use crate::task::{Name, Polling, TaskCore};

pin_project_lite::pin_project! {
    /// The future of a `#[track]` function call; `S` (zero-sized) names the function's site,
    /// `L` is [`NoLabels`] or, for a function with `label(..)` arguments, [`Labelled`].
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Framed<F, S, L = NoLabels> {
        #[pin]
        fut: F,
        // How the frame relates to the task polling it (see `FrameMode`): 8 bytes, added to
        // its caller's future at every level of nesting.
        mode: Pushed,
        labels: L,
        site: S,
    }
    impl<F, S, L> PinnedDrop for Framed<F, S, L> {
        fn drop(this: Pin<&mut Self>) {
            let mode = *this.project().mode;
            if mode.needs_drop() {
                drop_frame(mode);
            }
        }
    }
}

/// The frame of a function without `label(..)` arguments: nothing.
#[doc(hidden)]
#[derive(Default)]
pub struct NoLabels;

/// The labels of a frame with `label(..)` arguments, applied around each poll of the frame
/// inside a task (a root frame's task starts with them instead). Boxed on the frame's first
/// poll, so the frame adds one pointer.
#[doc(hidden)]
#[derive(Default)]
pub struct Labelled(Option<Box<LabelScope>>);

impl<F: Future, S: FnSiteOf> Framed<F, S> {
    /// Used by `#[track]` expansions only.
    #[inline]
    pub fn new(site: S, fut: F) -> Self {
        Self {
            fut,
            mode: Pushed::initial(),
            labels: NoLabels,
            site,
        }
    }
}

impl<F: Future, S: FnSiteOf> Framed<F, S, Labelled> {
    /// Used by `#[track(label(..))]` expansions only.
    #[inline]
    pub fn labelled(site: S, fut: F) -> Self {
        Self {
            fut,
            mode: Pushed::initial(),
            labels: Labelled(None),
            site,
        }
    }
}

/// What a frame's labels field is: [`NoLabels`] or [`Labelled`].
#[doc(hidden)]
pub trait FrameLabels {
    /// The labels, if the frame has any (`None` is a constant once inlined).
    fn labelled(&mut self) -> Option<&mut Labelled>;
}

impl FrameLabels for NoLabels {
    #[inline]
    fn labelled(&mut self) -> Option<&mut Labelled> {
        None
    }
}

impl FrameLabels for Labelled {
    #[inline]
    fn labelled(&mut self) -> Option<&mut Labelled> {
        Some(self)
    }
}

impl<F: Future, S: FnSiteOf, L: FrameLabels> Future for Framed<F, S, L> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        poll_frame(this.fut, S::site(), this.mode, this.labels.labelled(), cx)
    }
}

/// Implemented by the future of every `#[track]` function that returns its frame: lets an
/// `.await` directly in another `#[track]` function's body poll it without the root path.
///
/// Such a frame is polled while its caller's frame is: inside the caller's task, or the task the
/// caller became as a root, or outside any task only when the caller was made while tracking was
/// off (its callees then stay plain futures, as it does). So it never becomes a root itself, and
/// its poll has no code for it. That code costs even where it never runs: a call on any path
/// to the body's poll makes the compiler reload the body's state and dispatch on it there, and
/// keep the root's poll across it (13 of the 23 instructions a non-suspending frame cost over a
/// plain `async fn`). Without it, the compiler knows the state of a future just made and
/// inlines the body as it would without taskprof. The macro picks this poll by the awaited
/// expression's type (see [`AwaitFrame`]).
#[doc(hidden)]
pub trait InFrame: Future {
    /// Polls the frame as awaited at `at`, directly in a `#[track]` function's body.
    fn poll_awaited(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        at: &'static AwaitSite,
    ) -> Poll<Self::Output>;
}

impl<F: Future, S: FnSiteOf, L: FrameLabels> InFrame for Framed<F, S, L> {
    #[inline]
    fn poll_awaited(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        at: &'static AwaitSite,
    ) -> Poll<F::Output> {
        let this = self.project();
        let site = S::site();
        let start = mark();
        if let Some(labels) = this.labels.labelled() {
            let out = poll_labelled(this.fut, site, this.mode, labels, cx, true);
            if out.is_pending() {
                await_pending(at, start);
            }
            return out;
        }
        let mode = this.mode;
        let out = this.fut.poll(cx);
        if out.is_ready() {
            *mode = Pushed::NONE;
        } else if mode.is_special() {
            // Switched off: only the caller's `.await` is recorded (if it is in a task).
            await_pending(at, start);
        } else {
            // The frame and the caller's `.await` on it in one call. Outside a task (a caller
            // made while tracking was off) it records nothing.
            *mode = callee_pending(site, at, start);
        }
        out
    }
}

/// Polls a frame awaited by anything but a `#[track]` body (an executor, a plain `async`
/// block): `labels` is `None` for a frame without labels (a constant once inlined).
///
/// `fut.poll` is called in one place only, with as little around it as can be. An `async fn`'s
/// body polled from one call site is inlined into its caller however large it is (the
/// compiler's rule for a function with a single caller), as it is without taskprof; polled from
/// two or three (a slow path, a root frame's), nested bodies are compiled as separate functions
/// and every frame pays a call. So the rare paths run non-generic code before and after this
/// one poll: [`RootPoll`] for a frame polled outside any task, [`Slow`] for a labelled one.
#[inline]
fn poll_frame<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    mode: &mut Pushed,
    labels: Option<&mut Labelled>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    if let Some(labels) = labels {
        return poll_labelled(fut, site, mode, labels, cx, false);
    }
    let (task, start) = FAST.with(|f| (f.task.get(), f.len.get()));
    // A frame outside any task is, or becomes, a task of its own (a root), unless it was
    // created while tracking was switched off: then it stays a plain future.
    let special = mode.is_special();
    let root = if special {
        *mode != Pushed::OFF
    } else {
        task == 0
    };
    let root = if root {
        // The mode goes by value: a pointer into the frame given to a call would make the
        // compiler keep every field of the caller's future in memory.
        let (new, root) = RootPoll::begin(site, *mode, cx.waker());
        *mode = new;
        root
    } else {
        None
    };
    let waker = root.as_ref().and_then(|r| r.tracking.as_ref());
    let out = fut.poll(&mut Context::from_waker(waker.unwrap_or(cx.waker())));
    let pending = out.is_pending();
    // Moved, not dropped: only a panicking poll runs `RootPoll`'s drop glue.
    if let Some(root) = root {
        root.end(site, pending);
    }
    // A completed frame has nothing left to do when dropped, on every path (a root frame's
    // task has just ended): with that constant here, the compiler drops the frames of a chain
    // that completed without a call.
    if !pending {
        *mode = Pushed::NONE;
    } else if task != 0 && !special {
        *mode = frame_pending(site, start);
    }
    out
}

/// Polls a frame with `label(..)` arguments (its own type: the macro picks it); `in_body`: as
/// one awaited in a `#[track]` body, which never becomes a root (see [`InFrame`]).
#[inline]
fn poll_labelled<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    mode: &mut Pushed,
    labels: &mut Labelled,
    cx: &mut Context<'_>,
    in_body: bool,
) -> Poll<F::Output> {
    let start = crate::stack::mark();
    let slow = Slow::before(site, mode, labels, cx.waker(), in_body);
    let waker = slow.waker().unwrap_or(cx.waker());
    let out = fut.poll(&mut Context::from_waker(waker));
    let pending = out.is_pending();
    slow.after(site, mode, start, pending);
    if !pending {
        // As in `poll_frame`: a completed frame's drop has nothing left to do.
        *mode = Pushed::NONE;
    }
    out
}

/// What a labelled frame's poll sets up before it, undone by [`Slow::after`].
enum Slow<'a> {
    /// Polled as a plain future.
    Off,
    /// Inside a task: the frame's labels applied for the poll, and what they replaced.
    Nested(&'a mut LabelScope, Option<LabelSet>),
    /// The body of the task whose header is at the index in the mode.
    Root(RootPoll),
}

/// A poll of a root frame's task under way.
struct RootPoll {
    /// The task, put back in its header when dropped, even if the poll panics (the frame's
    /// drop then ends it).
    core: Parked,
    polling: Polling,
    tracking: Option<Waker>,
    start: usize,
}

/// A root frame's task taken out of its header for a poll.
struct Parked(Option<TaskCore>);

impl Drop for Parked {
    fn drop(&mut self) {
        if let Some(core) = self.0.take() {
            core.park();
        }
    }
}

impl RootPoll {
    /// Begins a poll of a root frame's task, first making the frame one if it is new (`None`
    /// if it stays a plain future: tracking is off, or the registry is full).
    #[cold]
    #[inline(never)]
    fn begin(
        site: &'static FnSite,
        mut mode: Pushed,
        executor: &Waker,
    ) -> (Pushed, Option<RootPoll>) {
        if let FrameMode::Nested = mode.frame_mode() {
            // Decided once (a frame first polled in a task and later outside one, which tokio
            // never does, becomes a task then).
            mode = first_poll(site);
        }
        let FrameMode::Root(index) = mode.frame_mode() else {
            return (mode, None);
        };
        let mut core = TaskCore::unpark(index);
        let start = crate::stack::mark();
        let polling = core.begin();
        let tracking = core.tracking_waker(executor);
        let root = RootPoll {
            core: Parked(Some(core)),
            polling,
            tracking,
            start,
        };
        (mode, Some(root))
    }

    /// Ends the poll begun by [`begin`](Self::begin); if the frame completed, ends its task
    /// too (rather than when the frame is dropped, right after).
    #[cold]
    #[inline(never)]
    fn end(mut self, site: &'static FnSite, pending: bool) {
        if pending {
            // Recorded on the frame's own task, still current; nothing to take back later
            // (the task's poll ends with this one).
            frame_pending(site, self.start);
        }
        if let Some(core) = self.core.0.as_mut() {
            core.end(self.polling, pending, || Name::Frame(site));
        }
        if !pending {
            drop(self.core.0.take());
        }
    }
}

impl<'a> Slow<'a> {
    #[cold]
    #[inline(never)]
    fn before(
        site: &'static FnSite,
        mode: &mut Pushed,
        labels: &'a mut Labelled,
        executor: &Waker,
        in_body: bool,
    ) -> Self {
        let in_task = crate::stack::current_task().is_some();
        match mode.frame_mode() {
            FrameMode::Off => Slow::Off,
            FrameMode::Nested if in_body && !in_task => Slow::Off,
            FrameMode::Nested if in_task => {
                let scope = &mut **labels.0.get_or_insert_with(|| {
                    let labels = site
                        .labels()
                        .iter()
                        .map(|(k, v)| (Box::<str>::from(*k), Box::<str>::from(*v)))
                        .collect();
                    Box::new(LabelScope::new(labels))
                });
                let prev = scope.enter();
                Slow::Nested(scope, prev)
            }
            // A root, or a frame outside any task that becomes one: its labels go into the task.
            FrameMode::Root(_) | FrameMode::Nested => {
                let (new, root) = RootPoll::begin(site, *mode, executor);
                *mode = new;
                root.map_or(Slow::Off, Slow::Root)
            }
        }
    }

    /// The waker to poll with instead of the executor's, if any.
    fn waker(&self) -> Option<&Waker> {
        match self {
            Slow::Root(root) => root.tracking.as_ref(),
            Slow::Off | Slow::Nested(..) => None,
        }
    }

    #[cold]
    #[inline(never)]
    fn after(self, site: &'static FnSite, mode: &mut Pushed, start: usize, pending: bool) {
        match self {
            Slow::Off => {}
            Slow::Nested(scope, prev) => {
                // Recorded while the labels are still the task's.
                record(mode, site, start, pending);
                scope.exit(prev, !pending);
            }
            Slow::Root(root) => root.end(site, pending),
        }
    }
}

/// Records a frame that returned `Pending`, or forgets what a completed one pushed in an earlier
/// poll. (Nothing to truncate: every future in its subtree that went pending in this poll has
/// since completed or been dropped, and took its entries back then. This keeps a frame that
/// does not suspend cheap.)
#[inline]
fn record(pushed: &mut Pushed, site: &'static FnSite, start: usize, pending: bool) {
    *pushed = if pending {
        frame_pending(site, start)
    } else {
        Pushed::NONE
    };
}

/// Takes back what a dropped frame pushed, or ends a root frame's task, just before its future
/// is dropped. `extern "C"`, so the compiler knows it never unwinds (a panic here would abort):
/// the drop glue of every frame then needs no unwinding path, which keeps it small enough for
/// the compiler to inline through nested frames.
#[cold]
#[inline(never)]
extern "C" fn drop_frame(mut mode: Pushed) {
    match mode.frame_mode() {
        FrameMode::Nested => mode.retract(),
        FrameMode::Root(index) => drop(TaskCore::unpark(index)),
        FrameMode::Off => {}
    }
}

/// Decides the mode of a frame first polled outside any task: it becomes a task of its own,
/// inheriting any labels (`labels::with`) or leak-check scope the thread has, plus its own.
#[cold]
fn first_poll(site: &'static FnSite) -> Pushed {
    if !crate::enabled::enabled() {
        return Pushed::OFF;
    }
    match TaskCore::root(site.labels()).park() {
        Some(index) => Pushed::root(index),
        None => Pushed::OFF,
    }
}

/// A frame awaited at `at` in its caller's body returned `Pending`: records the frame (see
/// [`frame_pending`]), then the caller's `.await` on it (see [`await_pending`]); returns the
/// frame's range. One call where there were two: 525 fewer instructions per call of an 8-deep
/// chain that yields once per frame (of the 6,174 it cost over plain `async fn`s). Two
/// thread-local accesses: the compiler does not inline one closure doing both.
#[inline(never)]
fn callee_pending(site: &'static FnSite, at: &'static AwaitSite, start: usize) -> Pushed {
    let (id, me) = (site.id(), site as *const FnSite as usize);
    let (await_id, func) = (at.id(), at.func() as *const FnSite as usize);
    let pushed = FAST.with(|f| f.frame_pending(id, me, start));
    FAST.with(|f| f.await_pending(await_id, func, start));
    pushed
}

/// Out of line: one call per suspension, and the frames' own code stays small.
#[inline(never)]
fn frame_pending(site: &'static FnSite, start: usize) -> Pushed {
    let (id, me) = (site.id(), site as *const FnSite as usize);
    FAST.with(|f| f.frame_pending(id, me, start))
}

// An `.await` directly in a `#[track]` body dispatches on the awaited future's type with autoref
// specialization: `match E { e => (&e).__taskprof_await_kind().await_in_body(SITE, e) }` picks
// `AwaitFrame` when `E` is a `#[track]` frame (its type says `InFrame`) and `AwaitAny` otherwise.

/// Tag: the awaited future is a `#[track]` frame.
#[doc(hidden)]
pub struct AwaitFrame;
/// Tag: any other awaited value.
#[doc(hidden)]
pub struct AwaitAny;

/// Chosen for an awaited `#[track]` frame.
#[doc(hidden)]
pub trait FrameAwaitKind {
    /// Picks the tag.
    #[inline]
    fn __taskprof_await_kind(&self) -> AwaitFrame {
        AwaitFrame
    }
}
impl<F: InFrame> FrameAwaitKind for F {}

/// Fallback for any other awaited value.
#[doc(hidden)]
pub trait AnyAwaitKind {
    /// Picks the tag.
    #[inline]
    fn __taskprof_await_kind(&self) -> AwaitAny {
        AwaitAny
    }
}
impl<T> AnyAwaitKind for &T {}

impl AwaitFrame {
    /// [`await_in_body`] for a frame: polled without the root path, and recorded together with
    /// the `.await` on it.
    #[inline]
    pub fn await_in_body<F: InFrame, S: AwaitSiteOf>(
        self,
        site: S,
        fut: F,
    ) -> AwaitPoint<F, S, Callee> {
        AwaitPoint {
            pushed: Callee,
            fut,
            site,
        }
    }
}

impl AwaitAny {
    /// [`await_in_body`].
    #[inline]
    pub fn await_in_body<F: IntoFuture, S: AwaitSiteOf>(
        self,
        site: S,
        fut: F,
    ) -> AwaitPoint<F::IntoFuture, S, InBody> {
        await_in_body(site, fut)
    }
}

pin_project_lite::pin_project! {
    /// A recorded `.await` inside a `#[track]` function; `S` (zero-sized) names its site. `P` is
    /// [`Retract`] (takes its entries back when dropped) or, for an `.await` directly in the
    /// function's body, [`InBody`] (no drop code), or [`Callee`] when what it awaits there is
    /// another `#[track]` function's frame.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct AwaitPoint<F, S, P = Retract> {
        // Declared first so it is dropped first: its range covers what `fut` pushed, which a
        // frame in `fut` would otherwise drain first, leaving the range stale (not taken back).
        pushed: P,
        #[pin]
        fut: F,
        site: S,
    }
}

/// What an await point pushed, taken back when it is dropped: an `.await` in an `async` block
/// or closure, or a `join!`/`select!` branch, can be dropped while pending, before its task's
/// poll ends (a losing branch), and then must not stay on the task's stack.
#[doc(hidden)]
pub struct Retract(Pushed);

impl Drop for Retract {
    #[inline]
    fn drop(&mut self) {
        self.0.retract();
    }
}

/// An `.await` directly in a `#[track]` function's body keeps nothing: while it is pending, so
/// is the body, and the frame around the body covers its entries in the range the frame takes
/// back if it is dropped. Zero-sized and without drop code, so awaiting through it costs the
/// caller's future no byte, and dropping it is what dropping the plain awaited future is.
#[doc(hidden)]
pub struct InBody;

/// An `.await` directly in a `#[track]` body on another `#[track]` function's frame: like
/// [`InBody`], it keeps nothing, and the frame records the `.await` along with itself.
#[doc(hidden)]
pub struct Callee;

/// Used by `#[track]` expansions only: `expr.await` in an `async` block or closure, and a
/// `join!`/`select!` branch, become `await_point(SITE, expr)`.
#[inline]
pub fn await_point<F: IntoFuture, S: AwaitSiteOf>(site: S, fut: F) -> AwaitPoint<F::IntoFuture, S> {
    AwaitPoint {
        pushed: Retract(Pushed::NONE),
        fut: fut.into_future(),
        site,
    }
}

/// Used by `#[track]` expansions only: `expr.await` directly in the function's body becomes
/// `await_in_body(SITE, expr).await`.
#[inline]
pub fn await_in_body<F: IntoFuture, S: AwaitSiteOf>(
    site: S,
    fut: F,
) -> AwaitPoint<F::IntoFuture, S, InBody> {
    AwaitPoint {
        pushed: InBody,
        fut: fut.into_future(),
        site,
    }
}

// Two impls rather than one over a trait: a public trait could not name the crate-private
// `Pushed` it would pass.
impl<F: Future, S: AwaitSiteOf> Future for AwaitPoint<F, S, Retract> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let (out, pushed) = poll_await::<F, S>(this.fut, cx);
        this.pushed.0 = pushed;
        out
    }
}

impl<F: Future, S: AwaitSiteOf> Future for AwaitPoint<F, S, InBody> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        poll_await::<F, S>(this.fut, cx).0
    }
}

impl<F: InFrame, S: AwaitSiteOf> Future for AwaitPoint<F, S, Callee> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().fut.poll_awaited(cx, S::site())
    }
}

/// Polls an awaited future, recording the `.await` (site `S`) if it returns `Pending`.
#[inline]
fn poll_await<F: Future, S: AwaitSiteOf>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> (Poll<F::Output>, Pushed) {
    let start = mark();
    let out = fut.poll(cx);
    let pushed = if out.is_pending() {
        await_pending(S::site(), start)
    } else {
        Pushed::NONE
    };
    (out, pushed)
}

#[inline(never)]
fn await_pending(site: &'static AwaitSite, start: usize) -> Pushed {
    let (id, func) = (site.id(), site.func() as *const FnSite as usize);
    FAST.with(|f| f.await_pending(id, func, start))
}
