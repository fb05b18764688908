//! Tracked tasks: the registry entry of a task and the future wrapper that keeps it current.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::labels::LabelSet;
use crate::registry;
use crate::stack::{CURRENT, StackCell};

pub(crate) const IDLE: u8 = 0;
pub(crate) const RUNNING: u8 = 1;

/// What a task is called in profiles.
pub(crate) enum Name {
    /// `std::any::type_name` of the spawned future or closure.
    Type(&'static str),
    /// A `#[track]` function polled as a task of its own.
    Frame(&'static crate::site::FnSite, crate::site::TypeName),
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
    labels: Mutex<Option<LabelSet>>,
    pub(crate) polls: AtomicU64,
    pub(crate) state: AtomicU8,
    pub(crate) stack: StackCell,
}

impl Header {
    pub(crate) fn labels(&self) -> Option<LabelSet> {
        self.labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        labels: Option<LabelSet>,
        parent: u64,
    ) -> Self {
        let header = Arc::new(Header {
            id: registry::next_id(),
            parent,
            created: Instant::now(),
            spawn_site: site,
            name,
            blocking,
            labels: Mutex::new(labels),
            polls: AtomicU64::new(0),
            state: AtomicU8::new(IDLE),
            stack: StackCell::new(),
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
    }
}

/// The parent id and labels a task spawned right now inherits.
pub(crate) fn inherited() -> (u64, Option<LabelSet>) {
    CURRENT.with_borrow(|c| (c.task, c.labels.clone()))
}

pin_project_lite::pin_project! {
    /// A spawned future, registered as a task.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Tracked<F> {
        // Declared first so it is dropped first: the entry outlives the future's drop.
        #[pin]
        fut: F,
        labels: Option<LabelSet>,
        reg: Registration,
    }
}

impl<F: Future> Tracked<F> {
    pub(crate) fn new(
        site: &'static Location<'static>,
        name: Option<Cow<'static, str>>,
        fut: F,
    ) -> Self {
        let (parent, labels) = inherited();
        let name = match name {
            Some(n) => Name::Given(n),
            None => Name::Type(std::any::type_name::<F>()),
        };
        let reg = Registration::new(Some(site), name, false, labels.clone(), parent);
        Self { fut, labels, reg }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        poll_task(this.reg.header(), this.labels, this.fut, cx)
    }
}

/// Polls `fut` as the body of the task `header`: makes it the thread's current task, counts the
/// poll, and publishes where it waits when it returns `Pending`.
pub(crate) fn poll_task<F: Future>(
    header: &Header,
    labels: &mut Option<LabelSet>,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let guard = TaskGuard::enter(header.id, labels);
    // Only this poller writes these, so a load and a store are enough (no read-modify-write).
    header
        .polls
        .store(header.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    header.state.store(RUNNING, Ordering::Relaxed);
    let out = fut.poll(cx);
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
    prev_labels: Option<LabelSet>,
    labels: &'a mut Option<LabelSet>,
    start: usize,
}

impl<'a> TaskGuard<'a> {
    fn enter(task: u64, labels: &'a mut Option<LabelSet>) -> Self {
        CURRENT.with_borrow_mut(|c| {
            let prev_task = std::mem::replace(&mut c.task, task);
            let prev_labels = std::mem::replace(&mut c.labels, labels.take());
            Self {
                prev_task,
                prev_labels,
                labels,
                start: c.buf.len(),
            }
        })
    }
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with_borrow_mut(|c| {
            c.task = self.prev_task;
            *self.labels = std::mem::replace(&mut c.labels, self.prev_labels.take());
            c.buf.truncate(self.start);
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
    let (parent, mut labels) = inherited();
    let reg = Registration::new(
        Some(site),
        Name::Type(std::any::type_name::<F>()),
        true,
        labels.clone(),
        parent,
    );
    move || {
        let header = reg.header();
        let _guard = TaskGuard::enter(header.id, &mut labels);
        header.polls.store(1, Ordering::Relaxed);
        header.state.store(RUNNING, Ordering::Relaxed);
        let out = f();
        drop(_guard);
        drop(reg);
        out
    }
}
