//! `#[track]` frames and recorded `.await` points: the futures the attribute wraps code in.

use std::future::{Future, IntoFuture};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::labels::LabelScope;
use crate::site::{AwaitSite, FnSite};
use crate::stack::{FAST, Pushed, completed, entry, mark, push};
use crate::task::{Name, TaskCore, poll_task};

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
    /// The future of a `#[track]` function call.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Framed<F> {
        #[pin]
        fut: F,
        site: &'static FnSite,
        mode: Mode,
    }
    impl<F> PinnedDrop for Framed<F> {
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

impl Framed<()> {
    /// Used by `#[track]` expansions only, before the function's future is built (a call
    /// between building it and moving it into the frame would cost a copy of it).
    ///
    /// The label is computed here, once per site: awaits in async blocks the function spawns
    /// name it too, even if it never suspends itself. After the first call this is one load.
    #[inline]
    pub fn label(site: &'static FnSite, type_name: Option<fn() -> &'static str>) {
        site.ensure_label(type_name);
    }
}

impl<F: Future> Framed<F> {
    /// Used by `#[track]` expansions only.
    #[inline]
    pub fn new(site: &'static FnSite, fut: F) -> Self {
        Self {
            fut,
            site,
            mode: Mode::Nested(Pushed::NONE),
        }
    }
}

impl<F: Future> Future for Framed<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Mode::Nested(pushed) = this.mode {
            // The common case, inline: inside a task, no labels.
            let (task, start) = FAST.with(|f| (f.task.get(), f.len.get()));
            if task != 0 && this.site.labels().is_empty() {
                let out = this.fut.poll(cx);
                if out.is_pending() {
                    *pushed = frame_pending(this.site, start);
                } else {
                    *pushed = Pushed::NONE;
                    completed(start);
                }
                return out;
            }
            // Switched off: a plain future from now on.
            if task == 0 && !crate::enabled::enabled() {
                *this.mode = Mode::Off;
                return this.fut.poll(cx);
            }
            // Outside any task, or labelled: decided once (a frame first polled in a task
            // and later outside one, which tokio never does, becomes a task then).
            *this.mode = first_poll(this.site);
        }
        match this.mode {
            Mode::Cold(cold) => poll_cold(this.fut, this.site, cold, cx),
            Mode::Nested(_) | Mode::Off => this.fut.poll(cx),
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

/// Polls a labelled or root frame.
fn poll_cold<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    cold: &mut Cold,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let Cold {
        labels,
        root,
        pushed,
    } = cold;
    let frame = FrameBody { fut, site, pushed };
    match (root, labels) {
        (Some(core), _) => poll_task(core, || Name::Frame(site), std::pin::pin!(frame), cx),
        (None, Some(scope)) => {
            let prev = scope.enter();
            let out = poll_frame(frame.fut, site, frame.pushed, cx);
            scope.exit(prev, out.is_ready());
            out
        }
        (None, None) => poll_frame(frame.fut, site, frame.pushed, cx),
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

/// Polls a frame's future and records the frame on the task's stack if it returns `Pending`.
#[inline]
fn poll_frame<F: Future>(
    fut: Pin<&mut F>,
    site: &'static FnSite,
    pushed: &mut Pushed,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let start = mark();
    let out = fut.poll(cx);
    if out.is_pending() {
        *pushed = frame_pending(site, start);
    } else {
        *pushed = Pushed::NONE;
        completed(start);
    }
    out
}

#[inline]
fn frame_pending(site: &'static FnSite, start: usize) -> Pushed {
    if crate::stack::current_task().is_none() {
        return Pushed::NONE;
    }
    let id = site.id();
    let me = site as *const FnSite as usize;
    let (len, last_await) = FAST.with(|f| (f.len.get(), f.last_await.get()));
    // The `.await` this frame is parked on already names the frame: one line, not two.
    if !(last_await == (me, len) && len > start) {
        push(entry(id, len.saturating_sub(start)));
    }
    Pushed::record(start)
}

/// A frame's future with where it records itself, polled as the body of a root frame's task.
struct FrameBody<'a, F> {
    fut: Pin<&'a mut F>,
    site: &'static FnSite,
    pushed: &'a mut Pushed,
}

impl<F: Future> Future for FrameBody<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        poll_frame(this.fut.as_mut(), this.site, this.pushed, cx)
    }
}

pin_project_lite::pin_project! {
    /// A recorded `.await` inside a `#[track]` function.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct AwaitPoint<F> {
        #[pin]
        fut: F,
        site: &'static AwaitSite,
        pushed: Pushed,
    }
    impl<F> PinnedDrop for AwaitPoint<F> {
        fn drop(this: Pin<&mut Self>) {
            this.project().pushed.retract();
        }
    }
}

/// Used by `#[track]` expansions only: `expr.await` becomes `await_point(&SITE, expr).await`.
#[inline]
pub fn await_point<F: IntoFuture>(site: &'static AwaitSite, fut: F) -> AwaitPoint<F::IntoFuture> {
    AwaitPoint {
        fut: fut.into_future(),
        site,
        pushed: Pushed::NONE,
    }
}

impl<F: Future> Future for AwaitPoint<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let start = mark();
        let out = this.fut.poll(cx);
        if out.is_pending() {
            *this.pushed = await_pending(this.site, start);
        } else {
            *this.pushed = Pushed::NONE;
            completed(start);
        }
        out
    }
}

#[inline]
fn await_pending(site: &'static AwaitSite, start: usize) -> Pushed {
    if crate::stack::current_task().is_none() {
        return Pushed::NONE;
    }
    let id = site.id();
    let func = site.func() as *const FnSite as usize;
    let len = mark();
    push(entry(id, len.saturating_sub(start)));
    FAST.with(|f| f.last_await.set((func, len + 1)));
    Pushed::record(start)
}
