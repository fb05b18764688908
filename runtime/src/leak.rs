//! Leak assertions: [`LeakCheck`] and [`LeakReport`], behind `#[taskprof::test]`.
//!
//! Every check runs its future in a fresh *scope*. A task belongs to the scope it was spawned in,
//! and passes it on to everything it spawns (also through `spawn_blocking`), so tests running in
//! parallel in one process each see only their own tasks.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::snapshot::{Snapshot, TaskInfo, snapshot_matching};
use crate::stack::CURRENT;

/// A leak-check scope: counts its live tasks so a clean check costs no snapshot.
pub(crate) struct Scope {
    id: u64,
    live: AtomicUsize,
}

impl Scope {
    fn new() -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Scope {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            live: AtomicUsize::new(0),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn enter(&self) {
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn exit(&self) {
        self.live.fetch_sub(1, Ordering::Release);
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

type IgnoreFn = Box<dyn Fn(&TaskInfo) -> bool + Send + Sync>;

/// Fails when tasks outlive the code that spawned them: goleak for tokio, safe under
/// `cargo test`'s parallel threads.
///
/// [`run`](LeakCheck::run) runs a future in a new scope and, once it returns, waits up to the
/// grace period (default 1 s, polled with exponential backoff from 1 ms) for every task spawned
/// in that scope, however deep, to finish. A task whose waker is lost (nothing can ever wake it)
/// is reported at once, without waiting out the grace.
///
/// ```
/// use std::time::Duration;
/// use taskprof::LeakCheck;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // Clean: the spawned task finishes within the grace period.
/// let out = LeakCheck::new()
///     .run(async {
///         taskprof::spawn(tokio::time::sleep(Duration::from_millis(20)));
///         42
///     })
///     .await;
/// assert_eq!(out.unwrap(), 42);
///
/// // Leaky: the task waits on a channel whose sender is kept alive.
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let report = LeakCheck::new()
///     .grace(Duration::from_millis(50))
///     .run(async move {
///         taskprof::spawn(async move { let _ = rx.await; });
///     })
///     .await
///     .unwrap_err();
/// assert_eq!(report.count(), 1);
/// assert!(report.to_string().starts_with("leaked tasks: 1\n"));
/// # drop(tx);
/// # }
/// ```
#[must_use = "a LeakCheck does nothing until `run` or `verify` is awaited"]
pub struct LeakCheck {
    grace: Duration,
    ignore_fns: Vec<String>,
    ignore_sites: Vec<(String, Option<u32>)>,
    ignore: Vec<IgnoreFn>,
    /// For [`global`](Self::global): tasks created before this generation are ignored.
    baseline: Option<(u32, crate::task::Eager)>,
}

impl Default for LeakCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LeakCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakCheck")
            .field("grace", &self.grace)
            .field("ignore_fns", &self.ignore_fns)
            .field("ignore_sites", &self.ignore_sites)
            .field("ignore", &self.ignore.len())
            .field("global", &self.baseline.is_some())
            .finish()
    }
}

impl LeakCheck {
    /// The default grace period.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

    /// A check for [`run`](Self::run): only tasks spawned inside the run count.
    pub fn new() -> Self {
        Self {
            grace: Self::DEFAULT_GRACE,
            ignore_fns: Vec::new(),
            ignore_sites: Vec::new(),
            ignore: Vec::new(),
            baseline: None,
        }
    }

    /// A check of every tracked task in the process, ignoring those alive now (goleak's
    /// `VerifyNone` with `IgnoreCurrent`). Tasks of other tests running in parallel count too,
    /// so prefer [`new`](Self::new) + [`run`](Self::run) in tests.
    pub fn global() -> Self {
        // By creation generation, not by the ids of a snapshot: a task spawned but not yet
        // polled is not listed, and it is alive now too.
        Self {
            baseline: Some((crate::task::next_generation(), crate::task::Eager::new())),
            ..Self::new()
        }
    }

    /// How long tasks may take to finish after the checked code returns.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Ignores tasks with a frame (or task name) equal to `path`, e.g. `"my_crate::server::run"`.
    pub fn ignore_fn(mut self, path: impl Into<String>) -> Self {
        self.ignore_fns.push(path.into());
        self
    }

    /// Ignores tasks spawned at, or waiting at, `"file.rs:LINE"` (the file matched as a path
    /// suffix, so `"server.rs:40"` matches `src/server.rs:40`). Without `:LINE`, any line of
    /// the file.
    pub fn ignore_site(mut self, site: &str) -> Self {
        let parsed = match site.rsplit_once(':') {
            Some((file, line)) => match line.trim().parse() {
                Ok(line) => (file.to_owned(), Some(line)),
                Err(_) => (site.to_owned(), None),
            },
            None => (site.to_owned(), None),
        };
        self.ignore_sites.push(parsed);
        self
    }

    /// Ignores tasks for which `f` returns true.
    pub fn ignore(mut self, f: impl Fn(&TaskInfo) -> bool + Send + Sync + 'static) -> Self {
        self.ignore.push(Box::new(f));
        self
    }

    /// Runs `fut` in a new scope, then checks that every task spawned inside it has finished
    /// within the grace period. Needs a tokio runtime with time enabled.
    pub async fn run<F: IntoFuture>(self, fut: F) -> Result<F::Output, LeakReport> {
        let scope = Scope::new();
        let out = InScope {
            fut: fut.into_future(),
            scope: Some(scope.clone()),
        }
        .await;
        self.wait(Some(&scope)).await?;
        Ok(out)
    }

    /// Checks every tracked task in the process but those alive when the check was created
    /// (with [`global`](Self::global)) or none (with [`new`](Self::new)).
    pub async fn verify(self) -> Result<(), LeakReport> {
        self.wait(None).await
    }

    async fn wait(&self, scope: Option<&Arc<Scope>>) -> Result<(), LeakReport> {
        let deadline = tokio::time::Instant::now() + self.grace;
        let mut delay = Duration::from_millis(1);
        loop {
            if scope.is_some_and(|s| s.live() == 0) {
                return Ok(());
            }
            let leaked = self.leaked(scope);
            let now = tokio::time::Instant::now();
            if leaked.total() == 0 {
                // A check of every task (`new().verify()`) cannot list tasks that have not
                // suspended yet (see `task.rs`); while the counters say some are alive, give
                // them the grace to show up.
                if scope.is_some() || self.baseline.is_some() || !crate::registry::unlisted() {
                    return Ok(());
                }
                if now >= deadline {
                    return Ok(());
                }
            } else if now >= deadline || leaked.tasks().iter().all(TaskInfo::lost_waker) {
                return Err(LeakReport { leaked });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = delay.saturating_mul(2);
        }
    }

    fn leaked(&self, scope: Option<&Arc<Scope>>) -> Snapshot {
        let scope_id = scope.map(|s| s.id());
        let baseline = self.baseline.as_ref().map(|(g, _)| *g);
        let mut snap = snapshot_matching(|v, rich| match scope_id {
            Some(id) => rich
                .and_then(|r| r.scope.as_ref())
                .is_some_and(|s| s.id() == id),
            None => baseline.is_none_or(|b| v.generation >= b),
        });
        snap.retain(|t| !self.ignored(t));
        snap
    }

    fn ignored(&self, t: &TaskInfo) -> bool {
        let fn_match = |path: &String| {
            t.name() == path.as_str() || t.stack().iter().any(|f| f.label() == path.as_str())
        };
        let site_match = |(file, line): &(String, Option<u32>)| {
            let hit = |f: &str, l: u32| path_ends_with(f, file) && line.is_none_or(|x| x == l);
            t.spawn_site().is_some_and(|s| hit(s.file(), s.line()))
                || t.stack().iter().any(|f| hit(f.file(), f.line()))
        };
        self.ignore_fns.iter().any(fn_match)
            || self.ignore_sites.iter().any(site_match)
            || self.ignore.iter().any(|f| f(t))
    }
}

/// `src/server.rs` ends with `server.rs` and `src/server.rs`, not with `er.rs`.
fn path_ends_with(path: &str, suffix: &str) -> bool {
    let path = path.replace('\\', "/");
    let suffix = suffix.replace('\\', "/");
    path == suffix || path.ends_with(&format!("/{}", suffix.trim_start_matches('/')))
}

pin_project_lite::pin_project! {
    /// Runs a future with a leak-check scope installed, so the tasks it spawns join the scope.
    struct InScope<F> {
        #[pin]
        fut: F,
        scope: Option<Arc<Scope>>,
    }
}

impl<F: Future> Future for InScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let prev = CURRENT.with_borrow_mut(|c| {
            let prev = std::mem::replace(&mut c.ctx.scope, this.scope.take());
            c.sync();
            prev
        });
        // Put the scope back even if the future panics.
        struct Restore<'a> {
            slot: &'a mut Option<Arc<Scope>>,
            prev: Option<Option<Arc<Scope>>>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let prev = self.prev.take().flatten();
                *self.slot = CURRENT.with_borrow_mut(|c| {
                    let scope = std::mem::replace(&mut c.ctx.scope, prev);
                    c.sync();
                    scope
                });
            }
        }
        let _restore = Restore {
            slot: this.scope,
            prev: Some(prev),
        };
        this.fut.poll(cx)
    }
}

/// The tasks a [`LeakCheck`] found still alive: the grouped profile of the leaked tasks only.
///
/// ```text
/// leaked tasks: 1
/// 1 @ tests/leaks.rs:31:5 # age 1.0s
/// #	leaks::fetch	tests/leaks.rs:22:41	await answer
///
/// ```
#[allow(clippy::tabs_in_doc_comments)] // frame lines start with a tab, as in Go's profiles
pub struct LeakReport {
    leaked: Snapshot,
}

impl LeakReport {
    /// Number of leaked tasks.
    pub fn count(&self) -> usize {
        self.leaked.total()
    }

    /// The leaked tasks, as a snapshot (grouped and per task).
    pub fn snapshot(&self) -> &Snapshot {
        &self.leaked
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "leaked tasks: {}", self.count())?;
        for g in self.leaked.groups() {
            crate::profile::write_group(f, &g.count().to_string(), g.key(), Some(g.oldest()))?;
        }
        Ok(())
    }
}

impl fmt::Debug for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for LeakReport {}

/// Used by `#[taskprof::test]` expansions only: runs the test body on `rt` under `check`, and
/// fails the test with the report if tasks leak. A panicking body panics through unchanged.
#[doc(hidden)]
#[track_caller]
pub fn run_test<F: Future>(rt: tokio::runtime::Runtime, check: LeakCheck, body: F) -> F::Output {
    match rt.block_on(check.run(body)) {
        Ok(out) => out,
        Err(report) => panic!("{report}"),
    }
}
