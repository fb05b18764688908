//! `#[track]` frames and recorded `.await` points: the futures the attribute wraps code in.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::labels::LabelScope;
use crate::site::{AwaitSite, FnSite, TypeName};
use crate::stack::{CURRENT, Inherit, Pushed, completed, entry, mark};
use crate::task::{Name, Registration, Wakers, poll_task};

/// How a frame relates to the task polling it, decided on its first poll.
enum Role {
    Unpolled,
    /// Polled inside a tracked task: records itself on that task's stack.
    Nested,
    /// Polled with no tracked task around it (plain `tokio::spawn`, `block_on`): a task itself.
    Root {
        reg: Registration,
        ctx: Inherit,
        wakers: Option<Wakers>,
    },
}

pin_project_lite::pin_project! {
    /// The future of a `#[track]` function call.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Framed<F> {
        #[pin]
        fut: F,
        site: &'static FnSite,
        type_name: TypeName,
        labels: Option<LabelScope>,
        role: Role,
        pushed: Option<Pushed>,
    }
    impl<F> PinnedDrop for Framed<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(p) = this.project().pushed.take() {
                p.retract();
            }
        }
    }
}

impl<F: Future> Framed<F> {
    /// Used by `#[track]` expansions only.
    #[inline]
    pub fn new(site: &'static FnSite, type_name: Option<fn() -> &'static str>, fut: F) -> Self {
        // Awaits in async blocks the function spawns name it too, even if it never suspends
        // itself; after the first call this is one atomic load.
        site.label(type_name);
        Self {
            fut,
            site,
            type_name,
            labels: None,
            role: Role::Unpolled,
            pushed: None,
        }
    }
}

impl<F: Future> Future for Framed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Role::Unpolled = this.role {
            *this.role = match crate::stack::current_task() {
                Some(_) => Role::Nested,
                None => {
                    // No task around, but maybe labels (`labels::with`) or a leak-check scope.
                    let (_, mut ctx) = crate::task::inherited();
                    if !this.site.labels().is_empty() {
                        ctx.labels = Some(std::sync::Arc::new(crate::labels::Labels::merged(
                            ctx.labels.as_deref(),
                            this.site.labels().iter().copied(),
                        )));
                    }
                    Role::Root {
                        reg: Registration::new(
                            None,
                            Name::Frame(this.site, *this.type_name),
                            false,
                            &ctx,
                            0,
                        ),
                        ctx,
                        wakers: None,
                    }
                }
            };
            if let Role::Nested = this.role
                && !this.site.labels().is_empty()
            {
                *this.labels = Some(LabelScope::new(
                    this.site
                        .labels()
                        .iter()
                        .map(|(k, v)| (Box::<str>::from(*k), Box::<str>::from(*v)))
                        .collect(),
                ));
            }
        }
        let site = *this.site;
        let type_name = *this.type_name;
        let frame = FrameBody {
            fut: this.fut,
            site,
            type_name,
            labels: this.labels,
            pushed: this.pushed,
        };
        match this.role {
            Role::Root { reg, ctx, wakers } => {
                poll_task(reg.header(), ctx, wakers, std::pin::pin!(frame), cx)
            }
            _ => frame.poll_frame(cx),
        }
    }
}

/// The part of a frame's poll that records it on the task's stack.
struct FrameBody<'a, F> {
    fut: Pin<&'a mut F>,
    site: &'static FnSite,
    type_name: TypeName,
    labels: &'a mut Option<LabelScope>,
    pushed: &'a mut Option<Pushed>,
}

impl<F: Future> FrameBody<'_, F> {
    #[inline]
    fn poll_frame(mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = mark();
        let out = match self.labels.as_mut() {
            None => self.fut.as_mut().poll(cx),
            Some(scope) => {
                let prev = scope.enter();
                let out = self.fut.as_mut().poll(cx);
                scope.exit(prev, out.is_ready());
                out
            }
        };
        if out.is_pending() {
            *self.pushed = self.pending(start);
        } else {
            *self.pushed = None;
            completed(start);
        }
        out
    }

    #[cold]
    fn pending(&self, start: usize) -> Option<Pushed> {
        let id = self.site.id(self.type_name);
        let me = self.site as *const FnSite as usize;
        CURRENT.with_borrow_mut(|c| {
            if c.task == 0 {
                return None;
            }
            // The `.await` this frame is parked on already names the frame: one line, not two.
            if !(c.last_await == (me, c.buf.len()) && c.buf.len() > start) {
                let descendants = c.buf.len().saturating_sub(start);
                c.buf.push(entry(id, descendants));
            }
            Some(Pushed::record(c, start))
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
            type_name: this.type_name,
            labels: this.labels,
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
        pushed: Option<Pushed>,
    }
    impl<F> PinnedDrop for AwaitPoint<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(p) = this.project().pushed.take() {
                p.retract();
            }
        }
    }
}

/// Used by `#[track]` expansions only: `expr.await` becomes `await_point(&SITE, expr).await`.
#[inline]
pub fn await_point<F: IntoFuture>(site: &'static AwaitSite, fut: F) -> AwaitPoint<F::IntoFuture> {
    AwaitPoint {
        fut: fut.into_future(),
        site,
        pushed: None,
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
            *this.pushed = None;
            completed(start);
        }
        out
    }
}

#[cold]
fn await_pending(site: &'static AwaitSite, start: usize) -> Option<Pushed> {
    let id = site.id();
    let func = site.func() as *const FnSite as usize;
    CURRENT.with_borrow_mut(|c| {
        if c.task == 0 {
            return None;
        }
        let descendants = c.buf.len().saturating_sub(start);
        c.buf.push(entry(id, descendants));
        c.last_await = (func, c.buf.len());
        Some(Pushed::record(c, start))
    })
}
