//! Shared helpers of the end-to-end tests.
//!
//! The tests run real tokio runtimes and observe them only through taskprof's public API. Tests
//! of one binary run in parallel, so helpers select *their own* tasks (by spawn site, frame label
//! or label) instead of looking at global totals, and they wait for tasks to park by polling
//! [`taskprof::snapshot`] with a generous bound instead of sleeping a fixed time.
#![forbid(unsafe_code)]

use std::panic::Location;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use taskprof::{Frame, Snapshot, TaskInfo};

/// How long the waiting helpers give tasks to reach the expected state before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Takes snapshots until `check` returns `Some`, and returns that value.
///
/// Between attempts it sleeps a millisecond on the tokio timer, so the tasks under test (and,
/// on a current-thread runtime, the caller's own tasks) make progress. After [`PATIENCE`] it
/// panics with `what` and the last snapshot, grouped and per task.
pub async fn wait_for<T>(what: &str, mut check: impl FnMut(&Snapshot) -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        let snap = taskprof::snapshot();
        if let Some(found) = check(&snap) {
            return found;
        }
        if start.elapsed() > PATIENCE {
            give_up(what, &snap);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// [`wait_for`] for code that is not async: sleeps the thread between attempts.
pub fn wait_for_blocking<T>(what: &str, mut check: impl FnMut(&Snapshot) -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        let snap = taskprof::snapshot();
        if let Some(found) = check(&snap) {
            return found;
        }
        if start.elapsed() > PATIENCE {
            give_up(what, &snap);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn give_up(what: &str, snap: &Snapshot) -> ! {
    let per_task = format!("{snap:#}");
    // Keep the failure readable when thousands of tasks are live.
    let per_task: String = per_task.chars().take(20_000).collect();
    panic!(
        "gave up after {PATIENCE:?} waiting for {what}\n--- grouped ---\n{snap}\n--- per task (cut) ---\n{per_task}"
    );
}

/// The 1-based column of `needle` on line `line` (1-based) of `src`.
///
/// Tests pass their own source (`include_str!("this_file.rs")`) so the expected column of a
/// spawn call or `.await` comes from the code itself. Panics unless `needle` occurs exactly once
/// on that line. Columns are counted in characters, like [`Location::column`].
pub fn column_of(src: &str, line: u32, needle: &str) -> u32 {
    let text = src
        .lines()
        .nth(line as usize - 1)
        .unwrap_or_else(|| panic!("no line {line} in the source"));
    let mut hits = text.match_indices(needle);
    let Some((byte, _)) = hits.next() else {
        panic!("`{needle}` is not on line {line}: {text:?}");
    };
    assert!(
        hits.next().is_none(),
        "`{needle}` occurs more than once on line {line}: {text:?}"
    );
    u32::try_from(text[..byte].chars().count() + 1).expect("column fits in u32")
}

/// `file:line:col` of `site`, or `<unknown>`, as the text profiles print it.
pub fn site_text(site: Option<&Location<'_>>) -> String {
    match site {
        Some(l) => format!("{}:{}:{}", l.file(), l.line(), l.column()),
        None => "<unknown>".to_owned(),
    }
}

/// True when `site` is `file:line` (any column).
pub fn is_at(site: Option<&Location<'_>>, file: &str, line: u32) -> bool {
    site.is_some_and(|l| l.file() == file && l.line() == line)
}

/// Asserts that `site` is exactly `file:line:col`.
#[track_caller]
pub fn assert_site(site: Option<&Location<'_>>, file: &str, line: u32, col: u32) {
    assert_eq!(
        site_text(site),
        format!("{file}:{line}:{col}"),
        "unexpected site"
    );
}

/// The tasks of `snap` spawned at `file:line`.
pub fn spawned_at<'a>(snap: &'a Snapshot, file: &str, line: u32) -> Vec<&'a TaskInfo> {
    snap.tasks()
        .iter()
        .filter(|t| is_at(t.spawn_site(), file, line))
        .collect()
}

/// The labels of `task` as `(key, value)` pairs, in key order.
pub fn labels_of(task: &TaskInfo) -> Vec<(&str, &str)> {
    task.labels().iter().collect()
}

/// The tasks of `snap` carrying the label `key = value`.
pub fn labelled<'a>(snap: &'a Snapshot, key: &str, value: &str) -> Vec<&'a TaskInfo> {
    snap.tasks()
        .iter()
        .filter(|t| t.labels().get(key) == Some(value))
        .collect()
}

/// The tasks of `snap` whose stack has a frame labelled `label`.
pub fn with_frame<'a>(snap: &'a Snapshot, label: &str) -> Vec<&'a TaskInfo> {
    snap.tasks()
        .iter()
        .filter(|t| t.stack().iter().any(|f| f.label() == label))
        .collect()
}

/// The task `id` of `snap`, if it is live.
pub fn task(snap: &Snapshot, id: u64) -> Option<&TaskInfo> {
    snap.tasks().iter().find(|t| t.id() == id)
}

/// The first frame of `stack` labelled `label`.
pub fn frame<'a>(stack: &'a [Frame], label: &str) -> Option<&'a Frame> {
    stack.iter().find(|f| f.label() == label)
}

/// Asserts that none of `ids` is a live task in a fresh snapshot.
#[track_caller]
pub fn assert_gone(ids: &[u64]) {
    let snap = taskprof::snapshot();
    let live: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| task(&snap, *id).is_some())
        .collect();
    assert!(
        live.is_empty(),
        "tasks {live:?} are still in the snapshot:\n{snap:#}"
    );
}

/// Asserts that `text` has a line equal to `line`.
#[track_caller]
pub fn assert_has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

/// The block of task `id` in a per-task (`{:#}`) profile: from its `task ID [` line up to the
/// blank line that ends it, as lines.
pub fn task_block(per_task: &str, id: u64) -> Option<Vec<&str>> {
    let head = format!("task {id} [");
    let mut lines = per_task.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines.next()?;
    let mut block = vec![first];
    block.extend(lines.take_while(|l| !l.is_empty()));
    Some(block)
}

/// True when `text` reads like a task age in the text profiles: `850ms`, `12.3s`, `5m12s` or
/// `2h05m`.
pub fn is_age(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(ms) = text.strip_suffix("ms") {
        return digits(ms);
    }
    if let Some((h, m)) = text.strip_suffix('m').and_then(|s| s.split_once('h')) {
        return digits(h) && m.len() == 2 && digits(m);
    }
    if let Some(s) = text.strip_suffix('s') {
        if let Some((m, s)) = s.split_once('m') {
            return digits(m) && s.len() == 2 && digits(s);
        }
        if let Some((whole, tenth)) = s.split_once('.') {
            return digits(whole) && tenth.len() == 1 && digits(tenth);
        }
    }
    false
}

/// The `#\t<label>\t<file>:<line>:<col>[\tawait <text>]` line of a frame in the text profiles.
pub fn frame_line(frame: &Frame) -> String {
    let mut line = format!(
        "#\t{}\t{}:{}:{}",
        frame.label(),
        frame.file(),
        frame.line(),
        frame.column()
    );
    if let Some(text) = frame.awaiting() {
        line.push_str("\tawait ");
        line.push_str(text);
    }
    line
}

/// A source line recorded at run time by the code it names, read later by the test.
#[derive(Debug, Default)]
pub struct Line(AtomicU32);

impl Line {
    /// An unset line.
    pub const fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Records `line` (pass `line!()`).
    pub fn set(&self, line: u32) {
        self.0.store(line, Ordering::SeqCst);
    }

    /// The recorded line, if one was recorded.
    pub fn try_get(&self) -> Option<u32> {
        let line = self.0.load(Ordering::SeqCst);
        (line != 0).then_some(line)
    }

    /// The recorded line; panics if none was recorded yet.
    #[track_caller]
    pub fn get(&self) -> u32 {
        let line = self.0.load(Ordering::SeqCst);
        assert_ne!(line, 0, "line not recorded yet");
        line
    }
}

/// Serializes the tests of one binary that assert on process-wide numbers (`live_count`, totals).
///
/// Hold the guard for the whole test, outside any runtime. A test that failed while holding it
/// does not stop the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A multi-thread runtime with `workers` worker threads and every driver enabled.
pub fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("build a multi-thread runtime")
}

/// A current-thread runtime with every driver enabled.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a current-thread runtime")
}

/// A dependency on 127.0.0.1 that accepts connections and never answers (it keeps them open,
/// like the seed's schema registry): calls to it without a timeout wait forever.
pub async fn silent_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the silent server");
    let addr = listener.local_addr().expect("silent server address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    addr
}

#[cfg(test)]
mod tests {
    use super::{column_of, is_age, task_block};

    #[test]
    fn columns_are_one_based() {
        let src = "fn a() {}\n    let x = rx.recv().await;\n";
        assert_eq!(column_of(src, 2, "recv()"), 16);
        assert_eq!(column_of(src, 1, "fn"), 1);
    }

    #[test]
    fn ages() {
        for ok in ["0ms", "850ms", "12.3s", "5m12s", "2h05m"] {
            assert!(is_age(ok), "{ok}");
        }
        for bad in ["", "ms", "1.23s", "5m1s", "2h5m", "12s"] {
            assert!(!is_age(bad), "{bad}");
        }
    }

    #[test]
    fn blocks() {
        let text = "task profile: total 2\ntask 1 [idle, 1ms]:\nname: a, polls: 1\nspawned at <unknown>\n\ntask 12 [idle, 2ms]:\nname: b, polls: 1\nspawned at <unknown>\n\n";
        assert_eq!(
            task_block(text, 12),
            Some(vec![
                "task 12 [idle, 2ms]:",
                "name: b, polls: 1",
                "spawned at <unknown>"
            ])
        );
        assert_eq!(task_block(text, 2), None);
    }
}
