//! Tracked tasks: the registry entry of a task and the future wrapper that keeps it current.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::labels::LabelSet;
use crate::leak::Scope;
use crate::registry;
use crate::stack::{CURRENT, Inherit, StackCell};

pub(crate) const IDLE: u8 = 0;
pub(crate) const RUNNING: u8 = 1;

/// What a task is called in profiles.
pub(crate) enum Name {
    /// `std::any::type_name` of the spawned future or closure.
    Type(&'static str),
    /// A `#[track]` function polled as a task of its own.
    Frame(&'static crate::site::FnSite),
    /// Given to [`spawn_named`].
    Given(Cow<'static, str>),
}

/// The registry entry of a live task.
pub(crate) struct Header {
    pub(crate) id: u64,
    /// Id of the tracked task that spawned this one, 0 if none.
    pub(crate) parent: u64,
    pub(crate) created: Instant,
    pub(crate) spawn_site: Option<&'static Location<'static>>,
    pub(crate) name: Name,
    pub(crate) blocking: bool,
    pub(crate) scope: Option<Arc<Scope>>,
    labels: Mutex<Option<LabelSet>>,
    pub(crate) polls: AtomicU64,
    pub(crate) state: AtomicU8,
    pub(crate) stack: StackCell,
    /// The waker the task's future sees; see [`WakeTracker`].
    pub(crate) waker: Arc<WakeTracker>,
}

impl Header {
    pub(crate) fn labels(&self) -> Option<LabelSet> {
        self.labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True when the task is parked and no waker can reach it any more: every clone of the
    /// waker it was polled with has been dropped and it was not woken, so nothing can ever
    /// poll it again (the analog of Go's `goroutineleak` profile).
    pub(crate) fn lost_waker(&self) -> bool {
        // One reference is ours, one is the task's cached `Waker`; any other is a clone held by
        // whatever the task waits on. Before the first poll the cached waker does not exist yet.
        !self.blocking
            && self.state.load(Ordering::Relaxed) == IDLE
            && Arc::strong_count(&self.waker) == 2
            && !self.waker.woken.load(Ordering::Acquire)
    }

    pub(crate) fn set_labels(&self, labels: Option<LabelSet>) -> Option<LabelSet> {
        std::mem::replace(
            &mut *self.labels.lock().unwrap_or_else(|p| p.into_inner()),
            labels,
        )
    }
}

/// Keeps a task registered for exactly as long as it lives: dropped together with the future.
pub(crate) struct Registration {
    header: Arc<Header>,
}

impl Registration {
    /// Creates and registers a task spawned from the current thread's context.
    pub(crate) fn new(
        site: Option<&'static Location<'static>>,
        name: Name,
        blocking: bool,
        ctx: &Inherit,
        parent: u64,
    ) -> Self {
        if let Some(scope) = &ctx.scope {
            scope.enter();
        }
        let header = Arc::new(Header {
            id: registry::next_id(),
            parent,
            created: Instant::now(),
            spawn_site: site,
            name,
            blocking,
            scope: ctx.scope.clone(),
            labels: Mutex::new(ctx.labels.clone()),
            polls: AtomicU64::new(0),
            state: AtomicU8::new(IDLE),
            stack: StackCell::new(),
            waker: Arc::new(WakeTracker::default()),
        });
        registry::insert(header.clone());
        Self { header }
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        registry::remove(self.header.id);
        if let Some(scope) = &self.header.scope {
            scope.exit();
        }
    }
}

/// The parent id and context a task spawned right now inherits.
pub(crate) fn inherited() -> (u64, Inherit) {
    CURRENT.with_borrow(|c| (c.task, c.ctx.clone()))
}

pin_project_lite::pin_project! {
    /// A spawned future, registered as a task.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Tracked<F> {
        // Declared first so it is dropped first: the entry outlives the future's drop.
        #[pin]
        fut: F,
        ctx: Inherit,
        wakers: Option<Wakers>,
        reg: Registration,
    }
}

impl<F: Future> Tracked<F> {
    pub(crate) fn new(
        site: &'static Location<'static>,
        name: Option<Cow<'static, str>>,
        fut: F,
    ) -> Self {
        Self::with_labels(site, name, &[], fut)
    }

    /// Like `new`, with labels added to the inherited ones.
    pub(crate) fn with_labels(
        site: &'static Location<'static>,
        name: Option<Cow<'static, str>>,
        labels: &[(&str, &str)],
        fut: F,
    ) -> Self {
        let (parent, mut ctx) = inherited();
        if !labels.is_empty() {
            ctx.labels = Some(Arc::new(crate::labels::Labels::merged(
                ctx.labels.as_deref(),
                labels.iter().copied(),
            )));
        }
        let name = match name {
            Some(n) => Name::Given(n),
            None => Name::Type(std::any::type_name::<F>()),
        };
        let reg = Registration::new(Some(site), name, false, &ctx, parent);
        Self {
            fut,
            ctx,
            wakers: None,
            reg,
        }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        poll_task(this.reg.header(), this.ctx, this.wakers, this.fut, cx)
    }
}

/// Polls `fut` as the body of the task `header`: makes it the thread's current task, counts the
/// poll, and publishes where it waits when it returns `Pending`.
pub(crate) fn poll_task<F: Future>(
    header: &Header,
    ctx: &mut Inherit,
    wakers: &mut Option<Wakers>,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let wakers = wakers.get_or_insert_with(|| Wakers::new(&header.waker, cx.waker()));
    wakers.refresh(&header.waker, cx.waker());
    let guard = TaskGuard::enter(header.id, ctx);
    // Only this poller writes these, so a load and a store are enough (no read-modify-write).
    header
        .polls
        .store(header.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    header.state.store(RUNNING, Ordering::Relaxed);
    let out = fut.poll(&mut Context::from_waker(&wakers.tracked));
    if out.is_pending() {
        CURRENT.with_borrow(|c| {
            header
                .stack
                .publish(c.buf.get(guard.start..).unwrap_or(&[]))
        });
    }
    header.state.store(IDLE, Ordering::Relaxed);
    drop(guard);
    out
}

/// Restores the thread's previous task context, also when the poll panics.
struct TaskGuard<'a> {
    prev_task: u64,
    prev_ctx: Inherit,
    ctx: &'a mut Inherit,
    start: usize,
}

impl<'a> TaskGuard<'a> {
    fn enter(task: u64, ctx: &'a mut Inherit) -> Self {
        CURRENT.with_borrow_mut(|c| {
            let prev_task = std::mem::replace(&mut c.task, task);
            c.epoch = c.epoch.wrapping_add(1);
            let prev_ctx = std::mem::replace(&mut c.ctx, std::mem::take(ctx));
            c.sync();
            Self {
                prev_task,
                prev_ctx,
                ctx,
                start: c.buf.len(),
            }
        })
    }
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with_borrow_mut(|c| {
            c.task = self.prev_task;
            *self.ctx = std::mem::replace(&mut c.ctx, std::mem::take(&mut self.prev_ctx));
            c.buf.truncate(self.start);
            c.sync();
        });
    }
}

/// Spawns a tracked task on the current tokio runtime, like [`tokio::spawn`].
///
/// The task is registered until its future is dropped. Its spawn site is the caller's
/// `file:line:col`; its parent is the tracked task calling `spawn` (if any), whose labels it
/// inherits.
///
/// # Panics
///
/// Like [`tokio::spawn`], when called outside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let handle = taskprof::spawn(async { 1 + 1 });
/// assert_eq!(handle.await.unwrap(), 2);
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Tracked::new(Location::caller(), None, fut))
}

/// Like [`spawn`], with a name shown in profiles instead of the future's type.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let handle = taskprof::spawn_named("config-watcher", async move { let _ = rx.await; });
/// tokio::task::yield_now().await;
/// assert!(taskprof::snapshot().tasks().iter().any(|t| t.name() == "config-watcher"));
/// drop(tx);
/// handle.await.unwrap();
/// # }
/// ```
#[track_caller]
pub fn spawn_named<F>(name: impl Into<Cow<'static, str>>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Tracked::new(Location::caller(), Some(name.into()), fut))
}

/// Runs a blocking closure on tokio's blocking pool as a tracked task, like
/// [`tokio::task::spawn_blocking`].
///
/// The task is registered from the call until the closure returns (or is dropped unrun at
/// shutdown). Tasks spawned from inside the closure have it as their parent.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sum = taskprof::spawn_blocking(|| (1..=10).sum::<u32>()).await.unwrap();
/// assert_eq!(sum, 55);
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(tracked_blocking(Location::caller(), f))
}

/// Wraps a closure so it runs as a registered blocking task.
pub(crate) fn tracked_blocking<F, R>(site: &'static Location<'static>, f: F) -> impl FnOnce() -> R
where
    F: FnOnce() -> R,
{
    let (parent, mut ctx) = inherited();
    let reg = Registration::new(
        Some(site),
        Name::Type(std::any::type_name::<F>()),
        true,
        &ctx,
        parent,
    );
    move || {
        let header = reg.header();
        let _guard = TaskGuard::enter(header.id, &mut ctx);
        header.polls.store(1, Ordering::Relaxed);
        header.state.store(RUNNING, Ordering::Relaxed);
        let out = f();
        drop(_guard);
        drop(reg);
        out
    }
}

/// The waker a tracked task's future is polled with: it forwards wakes to the executor's waker
/// and lets [`Header::lost_waker`] count how many clones of it are still held. One per task,
/// allocated with the task, not per poll.
#[derive(Default)]
pub(crate) struct WakeTracker {
    inner: Mutex<Option<Waker>>,
    /// Set by a wake, cleared when a poll starts: a woken task is not lost even if it holds no
    /// waker clone.
    woken: AtomicBool,
}

impl Wake for WakeTracker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // tokio's wake only schedules the task; it never re-enters this waker.
        if let Some(w) = &*self.inner.lock().unwrap_or_else(|p| p.into_inner()) {
            w.wake_by_ref();
        }
    }
}

/// The task's side of the tracking waker: the `Waker` it lends to its future and the executor
/// waker last forwarded to, compared without locking on each poll.
pub(crate) struct Wakers {
    tracked: Waker,
    executor: Waker,
}

impl Wakers {
    fn new(tracker: &Arc<WakeTracker>, executor: &Waker) -> Self {
        *tracker.inner.lock().unwrap_or_else(|p| p.into_inner()) = Some(executor.clone());
        Self {
            tracked: Waker::from(tracker.clone()),
            executor: executor.clone(),
        }
    }

    fn refresh(&mut self, tracker: &WakeTracker, executor: &Waker) {
        tracker.woken.store(false, Ordering::Relaxed);
        // tokio hands a task the same waker every time; other executors may not.
        if !self.executor.will_wake(executor) {
            self.executor = executor.clone();
            *tracker.inner.lock().unwrap_or_else(|p| p.into_inner()) = Some(executor.clone());
        }
    }
}
