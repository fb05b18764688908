//! Task labels, the analog of Go's `pprof.Do` / `pprof.Labels`.
//!
//! Labels are key/value strings carried by a task and inherited by every task it spawns. They
//! come from `#[track(label(k = "v"))]` and from [`with`], and show up in every profile format.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::stack::{CURRENT, Current, FAST};
use crate::task::Header;

/// An immutable, shared, key-sorted set of labels.
pub(crate) type LabelSet = Arc<Labels>;

/// The labels of a task: key/value pairs sorted by key, keys unique.
///
/// Displays as a JSON object, the way Go's debug=1 profile prints `# labels: {"k":"v"}`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<(Box<str>, Box<str>)>);

impl Labels {
    /// Iterates `(key, value)` pairs in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `base` with `extra` added; a key in `extra` replaces the same key in `base`.
    pub(crate) fn merged<'a>(
        base: Option<&Labels>,
        extra: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Labels {
        let mut out: Vec<(Box<str>, Box<str>)> = base.map(|b| b.0.clone()).unwrap_or_default();
        for (k, v) in extra {
            match out.binary_search_by(|(ok, _)| (**ok).cmp(k)) {
                Ok(i) => out[i].1 = v.into(),
                Err(i) => out.insert(i, (k.into(), v.into())),
            }
        }
        Labels(out)
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// `{"k":"v","k2":"v2"}`, with keys and values JSON-escaped.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write_json_str(f, k)?;
            f.write_str(":")?;
            write_json_str(f, v)?;
        }
        f.write_str("}")
    }
}

/// Writes `s` as a JSON string literal, so a hostile label cannot break a line-oriented format.
pub(crate) fn write_json_str(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(feature = "serde")]
impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Runs `fut` with extra labels, like Go's `pprof.Do`.
///
/// While `fut` is alive, the task polling it shows these labels (merged over its own) in every
/// profile, and every task spawned from inside `fut` inherits them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let task = taskprof::spawn(taskprof::labels::with(&[("tenant", "acme")], async move {
///     let _ = rx.await;
/// }));
/// tokio::task::yield_now().await;
/// let snap = taskprof::snapshot();
/// assert!(snap.tasks().iter().any(|t| t.labels().get("tenant") == Some("acme")));
/// drop(tx);
/// task.await.unwrap();
/// # }
/// ```
pub fn with<F: IntoFuture>(labels: &[(&str, &str)], fut: F) -> WithLabels<F::IntoFuture> {
    WithLabels {
        fut: fut.into_future(),
        scope: LabelScope::new(
            labels
                .iter()
                .map(|(k, v)| (Box::<str>::from(*k), Box::<str>::from(*v)))
                .collect(),
        ),
    }
}

pin_project_lite::pin_project! {
    /// Future returned by [`with`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WithLabels<F> {
        #[pin]
        fut: F,
        scope: LabelScope,
    }
}

impl<F: Future> Future for WithLabels<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let prev = this.scope.enter();
        let out = this.fut.poll(cx);
        this.scope.exit(prev, out.is_ready());
        out
    }
}

/// Applies extra labels around each poll of a future, and to the polling task while it lives.
pub(crate) struct LabelScope {
    extra: Vec<(Box<str>, Box<str>)>,
    merged: Option<LabelSet>,
    restore: Option<Restore>,
}

impl LabelScope {
    pub(crate) fn new(extra: Vec<(Box<str>, Box<str>)>) -> Self {
        Self {
            extra,
            merged: None,
            restore: None,
        }
    }

    /// Installs the merged labels as the thread's current labels; returns the previous ones.
    pub(crate) fn enter(&mut self) -> Option<LabelSet> {
        CURRENT.with_borrow_mut(|c| {
            let merged = match self.merged.take() {
                Some(m) => m,
                None => {
                    let m = Arc::new(Labels::merged(
                        c.ctx.labels.as_deref(),
                        self.extra.iter().map(|(k, v)| (&**k, &**v)),
                    ));
                    if crate::stack::current_task().is_some() && self.restore.is_none() {
                        self.restore = Restore::set(c, m.clone());
                    }
                    m
                }
            };
            let prev = c.ctx.labels.replace(merged);
            c.sync();
            prev
        })
    }

    /// Puts the previous labels back; on completion also restores the task's labels.
    pub(crate) fn exit(&mut self, prev: Option<LabelSet>, done: bool) {
        self.merged = CURRENT.with_borrow_mut(|c| {
            let merged = std::mem::replace(&mut c.ctx.labels, prev);
            c.sync();
            merged
        });
        if done {
            self.restore = None;
        }
    }
}

/// Restores a task's displayed labels when the labelled future completes or is dropped.
struct Restore {
    task: u64,
    header: &'static Header,
    prev: Option<LabelSet>,
}

/// The current task of the thread and its entry if it is listed.
fn current() -> (u64, Option<&'static Header>, Option<&'static Header>) {
    let (task, header) = FAST.with(|f| (f.task.get(), f.header.get()));
    let listed = header.filter(|h| h.listed_id() == Some(task));
    (task, header, listed)
}

impl Restore {
    /// Shows `labels` on the current task of `c`.
    fn set(c: &mut Current, labels: LabelSet) -> Option<Self> {
        let (task, header, listed) = current();
        let header = header?;
        let prev = match listed {
            Some(h) => h.set_labels(Some(labels)),
            None => {
                // Not listed yet: its entry will start with these labels (see `task.rs`).
                let prev = c
                    .display
                    .replace(Some(labels))
                    .unwrap_or_else(|| c.ctx.labels.clone());
                c.sync();
                prev
            }
        };
        Some(Self { task, header, prev })
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let prev = CURRENT
            .try_with(|c| {
                let Ok(mut c) = c.try_borrow_mut() else {
                    return Some(prev);
                };
                let (task, _, listed) = current();
                if task == self.task && listed.is_none() {
                    c.display = Some(prev);
                    c.sync();
                    None
                } else {
                    Some(prev)
                }
            })
            .unwrap_or(None);
        let Some(prev) = prev else { return };
        if self.header.listed_id() == Some(self.task) {
            self.header.set_labels(prev);
        }
    }
}
