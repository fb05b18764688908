//! `#[track]` frames and recorded `.await` points: the futures the attribute wraps code in.

use std::future::{Future, IntoFuture};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::labels::LabelScope;
use crate::labels::LabelSet;
use crate::site::{AwaitSiteOf, FnSite, FnSiteOf};
use crate::stack::{FAST, Pushed, mark};
use crate::task::{Name, Polling, TaskCore};

/// How a frame relates to the task polling it.
enum Mode {
    /// Polled inside a tracked task, no labels: records itself on that task's stack. Also the
    /// state of a frame not polled yet, so the common case needs no decision on its first poll.
    Nested(Pushed),
    /// First polled while tracking was switched off: a plain future.
    Off,
    /// A labelled frame, or a root frame (polled with no tracked task around it: plain
    /// `tokio::spawn`, `block_on`), which is a task itself. Dropped by `Framed`'s drop: with
    /// no drop glue of its own, dropping a `Mode` is free, and every frame is dropped.
    Cold(ManuallyDrop<Box<Cold>>),
}

/// What only some frames need, boxed so every other frame stays small: a frame's size is added
/// to its caller's future for every level of nesting.
struct Cold {
    /// `#[track(label(..))]` labels, applied around each poll of a nested frame.
    labels: Option<LabelScope>,
    /// The task a root frame is.
    root: Option<TaskCore>,
    pushed: Pushed,
}

pin_project_lite::pin_project! {
    /// The future of a `#[track]` function call; `S` (zero-sized) names the function's site.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Framed<F, S> {
        #[pin]
        fut: F,
        mode: Mode,
        site: S,
    }
    impl<F, S> PinnedDrop for Framed<F, S> {
        fn drop(this: Pin<&mut Self>) {
            let mode = this.project().mode;
            match mode {
                Mode::Nested(pushed) => pushed.retract(),
                Mode::Cold(_) => drop_cold(mode),
                Mode::Off => {}
            }
        }
    }
}

impl<F: Future, S: FnSiteOf> Framed<F, S> {
    /// Used by `#[track]` expansions only.
    #[inline]
    pub fn new(site: S, fut: F) -> Self {
        Self {
            fut,
            mode: Mode::Nested(Pushed::NONE),
            site,
        }
    }
}

impl<F: Future, S: FnSiteOf> Future for Framed<F, S> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let (task, start) = FAST.with(|f| (f.task.get(), f.len.get()));
        let this = self.project();
        let site = S::site();
        let plain = match this.mode {
            // The common case: inside a task, no labels.
            Mode::Nested(_) if task != 0 => !S::LABELLED,
            // Switched off: decided on the first poll, here rather than in a call (and with no
            // call on this path, which would make the compiler forget what it knows of `fut`).
            Mode::Nested(_) if crate::enabled::known_off() => {
                *this.mode = Mode::Off;
                true
            }
            Mode::Off => true,
            Mode::Nested(_) | Mode::Cold(_) => false,
        };
        if plain {
            let out = this.fut.poll(cx);
            if let Mode::Nested(pushed) = this.mode {
                record(pushed, site, start, out.is_pending());
            }
            return out;
        }
        poll_slow(this.fut, site, this.mode, cx, start)
    }
}

/// Polls a frame outside any task (a root frame, which is a task itself) or a labelled one.
#[cold]
#[inline(never)]
fn poll_slow<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    mode: &mut Mode,
    cx: &mut Context<'_>,
    start: usize,
) -> Poll<F::Output> {
    if let Mode::Nested(_) = mode {
        // Decided once (a frame first polled in a task and later outside one, which tokio
        // never does, becomes a task then).
        *mode = first_poll(site);
    }
    if let Mode::Off = mode {
        return fut.poll(cx);
    }
    let before = match mode {
        Mode::Cold(cold) => cold.before(),
        Mode::Nested(_) | Mode::Off => Before::Nothing,
    };
    let waker = match mode {
        Mode::Cold(cold) => cold
            .root
            .as_ref()
            .and_then(|core| core.tracking_waker(cx.waker())),
        Mode::Nested(_) | Mode::Off => None,
    }
    .unwrap_or(cx.waker());
    let out = fut.poll(&mut Context::from_waker(waker));
    let pending = out.is_pending();
    match mode {
        Mode::Nested(pushed) => record(pushed, site, start, pending),
        Mode::Cold(cold) => cold.after(site, start, before, pending),
        Mode::Off => {}
    }
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

/// What a labelled or root frame did before polling its body, undone after.
enum Before {
    Nothing,
    Labels(Option<LabelSet>),
    Root(Polling),
}

impl Cold {
    #[cold]
    fn before(&mut self) -> Before {
        match (&mut self.root, &mut self.labels) {
            (Some(core), _) if core.is_tracked() => Before::Root(core.begin()),
            (_, Some(scope)) => Before::Labels(scope.enter()),
            _ => Before::Nothing,
        }
    }

    #[cold]
    fn after(&mut self, site: &'static FnSite, start: usize, before: Before, pending: bool) {
        // Recorded while the frame's task (a root frame's own) is still current.
        record(&mut self.pushed, site, start, pending);
        match (before, &mut self.root, &mut self.labels) {
            (Before::Root(polling), Some(core), _) => {
                core.end(polling, pending, || Name::Frame(site));
            }
            (Before::Labels(prev), _, Some(scope)) => scope.exit(prev, !pending),
            _ => {}
        }
    }
}

#[cold]
#[inline(never)]
fn drop_cold(mode: &mut Mode) {
    if let Mode::Cold(cold) = std::mem::replace(mode, Mode::Off) {
        let mut cold = ManuallyDrop::into_inner(cold);
        cold.pushed.retract();
        // A root frame's task ends here, just before its future is dropped.
        drop(cold);
    }
}

/// Decides the frame's mode; a root frame becomes a task, a labelled frame gets its labels.
#[cold]
fn first_poll(site: &'static FnSite) -> Mode {
    if !crate::enabled::enabled() {
        return Mode::Off;
    }
    if crate::stack::current_task().is_some() {
        if site.labels().is_empty() {
            return Mode::Nested(Pushed::NONE);
        }
        let labels = site
            .labels()
            .iter()
            .map(|(k, v)| (Box::<str>::from(*k), Box::<str>::from(*v)))
            .collect();
        return Mode::Cold(ManuallyDrop::new(Box::new(Cold {
            labels: Some(LabelScope::new(labels)),
            root: None,
            pushed: Pushed::NONE,
        })));
    }
    // No task around: the frame is a task of its own, inheriting any labels (`labels::with`)
    // or leak-check scope the thread has.
    Mode::Cold(ManuallyDrop::new(Box::new(Cold {
        labels: None,
        root: Some(TaskCore::root(site.labels())),
        pushed: Pushed::NONE,
    })))
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
pub struct Retract(InBody);

impl Drop for Retract {
    #[inline]
    fn drop(&mut self) {
        self.0.0.retract();
    }
}

/// What an `.await` directly in a `#[track]` function's body pushed. It needs no drop code: while
/// it is pending, so is the body, and the frame around the body covers its entries in the range
/// the frame takes back if it is dropped. Dropping an `AwaitPoint` of it then compiles to what
/// dropping the plain awaited future does, which saves every frame that does not suspend a call.
#[doc(hidden)]
pub struct InBody(Pushed);

/// Used by `#[track]` expansions only: `expr.await` in an `async` block or closure, and a
/// `join!`/`select!` branch, become `await_point(SITE, expr)`.
#[inline]
pub fn await_point<F: IntoFuture, S: AwaitSiteOf>(site: S, fut: F) -> AwaitPoint<F::IntoFuture, S> {
    AwaitPoint {
        pushed: Retract(InBody(Pushed::NONE)),
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
        pushed: InBody(Pushed::NONE),
        fut: fut.into_future(),
        site,
    }
}

// `AsMut<InBody>` (a `Retract` is an `InBody` that takes its entries back when dropped): one
// `poll` for both kinds, without naming the crate-private `Pushed` in a public bound.
impl<F: Future, S: AwaitSiteOf, P: AsMut<InBody>> Future for AwaitPoint<F, S, P> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        poll_await::<F, S>(this.fut, &mut this.pushed.as_mut().0, cx)
    }
}

impl AsMut<InBody> for InBody {
    #[inline]
    fn as_mut(&mut self) -> &mut InBody {
        self
    }
}

impl AsMut<InBody> for Retract {
    #[inline]
    fn as_mut(&mut self) -> &mut InBody {
        &mut self.0
    }
}

/// Polls an awaited future, recording the `.await` (site `S`) if it returns `Pending`.
#[inline]
fn poll_await<F: Future, S: AwaitSiteOf>(
    fut: Pin<&mut F>,
    pushed: &mut Pushed,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let start = mark();
    let out = fut.poll(cx);
    *pushed = if out.is_pending() {
        await_pending(S::site(), start)
    } else {
        Pushed::NONE
    };
    out
}

#[inline(never)]
fn await_pending(site: &'static crate::site::AwaitSite, start: usize) -> Pushed {
    let (id, func) = (site.id(), site.func() as *const FnSite as usize);
    FAST.with(|f| f.await_pending(id, func, start))
}
