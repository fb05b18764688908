//! `#[track]` frames and recorded `.await` points: the futures the attribute wraps code in.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::labels::LabelScope;
use crate::site::{AwaitSite, FnSite};
use crate::stack::{CURRENT, Pushed, completed, entry, mark};
use crate::task::{Name, TaskCore, poll_task};

/// How a frame relates to the task polling it, decided on its first poll.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Unpolled,
    /// Polled inside a tracked task: records itself on that task's stack.
    Nested,
    /// Polled with no tracked task around it (plain `tokio::spawn`, `block_on`): a task itself.
    Root,
    /// First polled while tracking was switched off: a plain future.
    Off,
}

/// What only some frames need, boxed so every other frame stays small: a frame's size is added
/// to its caller's future for every level of nesting.
struct Cold {
    /// `#[track(label(..))]` labels, applied around each poll of a nested frame.
    labels: Option<LabelScope>,
    /// The task a root frame is.
    root: Option<TaskCore>,
}

pin_project_lite::pin_project! {
    /// The future of a `#[track]` function call.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Framed<F> {
        #[pin]
        fut: F,
        site: &'static FnSite,
        pushed: Pushed,
        cold: Option<Box<Cold>>,
        role: Role,
    }
    impl<F> PinnedDrop for Framed<F> {
        fn drop(this: Pin<&mut Self>) {
            this.project().pushed.retract();
        }
    }
}

impl<F: Future> Framed<F> {
    /// Used by `#[track]` expansions only.
    #[inline]
    pub fn new(site: &'static FnSite, type_name: Option<fn() -> &'static str>, fut: F) -> Self {
        // The label is computed here, once per site: awaits in async blocks the function spawns
        // name it too, even if it never suspends itself. After the first call this is one load.
        site.label(type_name);
        Self {
            fut,
            site,
            pushed: Pushed::NONE,
            cold: None,
            role: Role::Unpolled,
        }
    }
}

impl<F: Future> Future for Framed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.role == Role::Unpolled {
            // The common case, inline: inside a task, no labels.
            *this.role = if crate::stack::current_task().is_some() && this.site.labels().is_empty()
            {
                Role::Nested
            } else {
                first_poll(this.site, this.cold)
            };
        }
        let frame = FrameBody {
            fut: this.fut,
            site: this.site,
            pushed: this.pushed,
        };
        let site = frame.site;
        match (*this.role, this.cold.as_deref_mut()) {
            (Role::Off, _) => frame.fut.poll(cx),
            (
                Role::Root,
                Some(Cold {
                    root: Some(core), ..
                }),
            ) => poll_task(core, || Name::Frame(site), std::pin::pin!(frame), cx),
            (
                _,
                Some(Cold {
                    labels: Some(scope),
                    ..
                }),
            ) => {
                let prev = scope.enter();
                let out = frame.poll_frame(cx);
                scope.exit(prev, out.is_ready());
                out
            }
            _ => frame.poll_frame(cx),
        }
    }
}

/// Decides the frame's role; a root frame registers as a task, a labelled frame gets its labels.
#[cold]
fn first_poll(site: &'static FnSite, cold: &mut Option<Box<Cold>>) -> Role {
    if !crate::enabled::enabled() {
        return Role::Off;
    }
    if crate::stack::current_task().is_some() {
        if !site.labels().is_empty() {
            let labels = site
                .labels()
                .iter()
                .map(|(k, v)| (Box::<str>::from(*k), Box::<str>::from(*v)))
                .collect();
            *cold = Some(Box::new(Cold {
                labels: Some(LabelScope::new(labels)),
                root: None,
            }));
        }
        return Role::Nested;
    }
    // No task around: the frame is a task of its own, inheriting any labels (`labels::with`)
    // or leak-check scope the thread has.
    let core = TaskCore::root(site.labels());
    *cold = Some(Box::new(Cold {
        labels: None,
        root: Some(core),
    }));
    Role::Root
}

/// The part of a frame's poll that records it on the task's stack.
struct FrameBody<'a, F> {
    fut: Pin<&'a mut F>,
    site: &'static FnSite,
    pushed: &'a mut Pushed,
}

impl<F: Future> FrameBody<'_, F> {
    #[inline]
    fn poll_frame(mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = mark();
        let out = self.fut.as_mut().poll(cx);
        if out.is_pending() {
            *self.pushed = self.pending(start);
        } else {
            *self.pushed = Pushed::NONE;
            completed(start);
        }
        out
    }

    #[cold]
    fn pending(&self, start: usize) -> Pushed {
        let id = self.site.id();
        let me = self.site as *const FnSite as usize;
        CURRENT.with_borrow_mut(|c| {
            if c.task == 0 {
                return Pushed::NONE;
            }
            // The `.await` this frame is parked on already names the frame: one line, not two.
            if !(c.last_await == (me, c.buf.len()) && c.buf.len() > start) {
                let descendants = c.buf.len().saturating_sub(start);
                c.buf.push(entry(id, descendants));
                c.sync();
            }
            Pushed::record(c, start)
        })
    }
}

impl<F: Future> Future for FrameBody<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let body = FrameBody {
            fut: this.fut.as_mut(),
            site: this.site,
            pushed: this.pushed,
        };
        body.poll_frame(cx)
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

#[cold]
fn await_pending(site: &'static AwaitSite, start: usize) -> Pushed {
    let id = site.id();
    let func = site.func() as *const FnSite as usize;
    CURRENT.with_borrow_mut(|c| {
        if c.task == 0 {
            return Pushed::NONE;
        }
        let descendants = c.buf.len().saturating_sub(start);
        c.buf.push(entry(id, descendants));
        c.last_await = (func, c.buf.len());
        c.sync();
        Pushed::record(c, start)
    })
}
