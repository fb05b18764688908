//! `#[track]` frames and recorded `.await` points: the futures the attribute wraps code in.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::labels::LabelScope;
use crate::site::{AwaitSiteOf, FnSite, FnSiteOf};
use crate::stack::{FAST, FrameMode, Pushed, mark};
use crate::task::{Name, TaskCore};

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
            let mode = this.project().mode;
            match mode.frame_mode() {
                FrameMode::Nested => mode.retract(),
                FrameMode::Root(index) => drop_root(index),
                FrameMode::Off => {}
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
            mode: Pushed::NONE,
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
            mode: Pushed::NONE,
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

/// Polls a frame: `labels` is `None` for a frame without labels (a constant once inlined).
#[inline]
fn poll_frame<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    mode: &mut Pushed,
    labels: Option<&mut Labelled>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let (task, start) = FAST.with(|f| (f.task.get(), f.len.get()));
    let plain = match mode.frame_mode() {
        // The common case: inside a task, no labels.
        FrameMode::Nested if task != 0 => labels.is_none(),
        // Switched off: decided on the first poll, here rather than in a call (and with no
        // call on this path, which would make the compiler forget what it knows of `fut`).
        FrameMode::Nested if crate::enabled::known_off() => {
            *mode = Pushed::OFF;
            true
        }
        FrameMode::Off => true,
        FrameMode::Nested | FrameMode::Root(_) => false,
    };
    // One call of `fut.poll` here: a second would make the compiler stop inlining it.
    if plain {
        let out = fut.poll(cx);
        if let FrameMode::Nested = mode.frame_mode() {
            record(mode, site, start, out.is_pending());
        }
        return out;
    }
    poll_slow(fut, site, mode, labels, cx, start)
}

/// Polls a frame first polled outside any task (which becomes a task itself), or a labelled one.
#[cold]
#[inline(never)]
fn poll_slow<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    mode: &mut Pushed,
    labels: Option<&mut Labelled>,
    cx: &mut Context<'_>,
    start: usize,
) -> Poll<F::Output> {
    if let FrameMode::Nested = mode.frame_mode()
        && crate::stack::current_task().is_none()
    {
        // Decided once (a frame first polled in a task and later outside one, which tokio
        // never does, becomes a task then).
        *mode = first_poll(site);
    }
    match mode.frame_mode() {
        FrameMode::Off => fut.poll(cx),
        FrameMode::Root(index) => poll_root(fut, site, index, cx),
        FrameMode::Nested => {
            let scope = labels.map(|l| {
                &mut **l.0.get_or_insert_with(|| {
                    let labels = site
                        .labels()
                        .iter()
                        .map(|(k, v)| (Box::<str>::from(*k), Box::<str>::from(*v)))
                        .collect();
                    Box::new(LabelScope::new(labels))
                })
            });
            let Some(scope) = scope else {
                let out = fut.poll(cx);
                record(mode, site, start, out.is_pending());
                return out;
            };
            let prev = scope.enter();
            let out = fut.poll(cx);
            let pending = out.is_pending();
            // Recorded while the labels are still the task's.
            record(mode, site, start, pending);
            scope.exit(prev, !pending);
            out
        }
    }
}

/// Polls a root frame, the body of the task whose header is at `index`.
#[cold]
#[inline(never)]
fn poll_root<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    index: u32,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    /// Puts the task back in its header even if the poll panics: the frame's drop ends it.
    struct Guard(Option<TaskCore>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(core) = self.0.take() {
                core.park();
            }
        }
    }
    let mut guard = Guard(Some(TaskCore::unpark(index)));
    let Some(core) = guard.0.as_mut() else {
        return fut.poll(cx);
    };
    let start = crate::stack::mark();
    let polling = core.begin();
    let tracking = core.tracking_waker(cx.waker());
    let waker = tracking.as_ref().unwrap_or(cx.waker());
    let out = fut.poll(&mut Context::from_waker(waker));
    let pending = out.is_pending();
    if pending {
        // Recorded on the frame's own task, still current; nothing to take back later (the
        // task's poll ends with this one).
        frame_pending(site, start);
    }
    core.end(polling, pending, || Name::Frame(site));
    out
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

/// Ends a root frame's task, just before its future is dropped.
#[cold]
#[inline(never)]
fn drop_root(index: u32) {
    drop(TaskCore::unpark(index));
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

/// Out of line: one call per suspension, and the frames' own code stays small.
#[inline(never)]
fn frame_pending(site: &'static FnSite, start: usize) -> Pushed {
    let (id, me) = (site.id(), site as *const FnSite as usize);
    FAST.with(|f| f.frame_pending(id, me, start))
}

pin_project_lite::pin_project! {
    /// A recorded `.await` inside a `#[track]` function; `S` (zero-sized) names its site. `P` is
    /// [`Retract`] (takes its entries back when dropped) or, for an `.await` directly in the
    /// function's body, [`InBody`] (no drop code).
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
fn await_pending(site: &'static crate::site::AwaitSite, start: usize) -> Pushed {
    let (id, func) = (site.id(), site.func() as *const FnSite as usize);
    FAST.with(|f| f.await_pending(id, func, start))
}
