//! What `#[taskprof::track]` expansions record, observed through `taskprof::snapshot()`.
//!
//! Tests of this binary run in parallel, so each one looks only at its own tasks (by spawn site
//! or frame label). Expected lines and columns come from this file's own text, found by a
//! `// at: NAME` marker at the end of the line.

use std::future::Future;
use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskprof::{Frame, Snapshot, TaskInfo};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

const SRC: &str = include_str!("expand.rs");

/// `(line, column)` of `needle` on the line ending in `// at: NAME`.
fn at(name: &str, needle: &str) -> (u32, u32) {
    let marker = format!("// at: {name}");
    let mut hits = SRC
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_end().ends_with(&marker));
    let (index, text) = hits
        .next()
        .unwrap_or_else(|| panic!("no line marked {name}"));
    assert!(hits.next().is_none(), "two lines marked {name}");
    let byte = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` is not on the line marked {name}"));
    let line = u32::try_from(index + 1).unwrap();
    let column = u32::try_from(text[..byte].chars().count() + 1).unwrap();
    (line, column)
}

fn site_of(location: Option<&Location<'_>>) -> Option<(String, u32, u32)> {
    location.map(|l| (l.file().to_owned(), l.line(), l.column()))
}

fn here(name: &str, needle: &str) -> Option<(String, u32, u32)> {
    let (line, column) = at(name, needle);
    Some((file!().to_owned(), line, column))
}

fn frame_site(frame: &Frame) -> Option<(String, u32, u32)> {
    Some((frame.file().to_owned(), frame.line(), frame.column()))
}

/// Snapshots until `check` finds something (tasks need a moment to park).
async fn wait_for<T>(what: &str, mut check: impl FnMut(&Snapshot) -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        let snap = taskprof::snapshot();
        if let Some(found) = check(&snap) {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "gave up waiting for {what}:\n{snap:#}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The one task spawned at `site` whose stack has `depth` frames.
async fn spawned_at(site: Option<(String, u32, u32)>, depth: usize) -> TaskInfo {
    let what = format!("a task spawned at {site:?} with {depth} frames");
    wait_for(&what, |snap| {
        snap.tasks()
            .iter()
            .find(|t| site_of(t.spawn_site()) == site && t.stack().len() == depth)
            .cloned()
    })
    .await
}

struct Db;

impl Db {
    #[taskprof::track(label(kind = "expand-test"))]
    async fn load(&self, rx: oneshot::Receiver<u8>) -> u8 {
        rx.await.unwrap_or(0) // at: load-await
    }
}

#[taskprof::track(name = "expand::custom")]
async fn outer(rx: oneshot::Receiver<u8>) -> u8 {
    Db.load(rx).await + 1 // at: outer-await
}

#[taskprof::track]
async fn start(rx: oneshot::Receiver<u8>) -> JoinHandle<u8> {
    tokio::spawn(outer(rx)) // at: start-spawn
}

#[tokio::test]
async fn frames_awaits_and_spawn_site_point_at_the_source() {
    let (tx, rx) = oneshot::channel();
    let handle = start(rx).await;
    let task = spawned_at(here("start-spawn", "tokio::spawn"), 2).await;
    let stack = task.stack();

    // Innermost first: the method (labelled with its type), parked on `rx`.
    assert_eq!(stack[0].label(), "expand::Db::load");
    assert_eq!(stack[0].awaiting(), Some("rx"));
    assert_eq!(frame_site(&stack[0]), here("load-await", "rx.await"));
    assert_eq!(stack[0].depth(), 1);
    // Its caller, under its `name = ".."`, parked on the method call (located at `load`).
    assert_eq!(stack[1].label(), "expand::custom");
    assert_eq!(stack[1].awaiting(), Some("Db.load(rx)"));
    assert_eq!(frame_site(&stack[1]), here("outer-await", "load(rx)"));
    assert_eq!(stack[1].depth(), 0);

    tx.send(41).unwrap();
    assert_eq!(handle.await.unwrap(), 42);
}

#[taskprof::track]
async fn park(rx: oneshot::Receiver<u8>) -> u8 {
    rx.await.unwrap_or(0)
}

#[taskprof::track]
async fn method_spawns(set: &mut JoinSet<u8>, a: oneshot::Receiver<u8>, b: oneshot::Receiver<u8>) {
    set.spawn(park(a)); // at: set-spawn
    JoinSet::spawn(set, park(b)); // at: path-spawn
}

#[tokio::test]
async fn method_and_path_spawns_are_located_at_the_call() {
    let (tx_a, a) = oneshot::channel();
    let (tx_b, b) = oneshot::channel();
    let mut set = JoinSet::new();
    method_spawns(&mut set, a, b).await;
    let via_method = spawned_at(here("set-spawn", "spawn"), 1).await;
    let via_path = spawned_at(here("path-spawn", "JoinSet::spawn"), 1).await;
    for task in [&via_method, &via_path] {
        assert_eq!(task.stack()[0].label(), "expand::park");
        assert_eq!(task.stack()[0].awaiting(), Some("rx"));
    }
    tx_a.send(1).unwrap();
    tx_b.send(2).unwrap();
    let mut sum = 0;
    while let Some(v) = set.join_next().await {
        sum += v.unwrap();
    }
    assert_eq!(sum, 3);
}

#[taskprof::track]
async fn both(a: oneshot::Receiver<u8>, b: oneshot::Receiver<u8>) -> u8 {
    let (x, y) = tokio::join!(park(a), async { b.await.unwrap_or(0) }); // at: join
    x + y
}

#[taskprof::track]
fn spawn_from_sync(
    handle: &tokio::runtime::Handle,
    fut: impl Future<Output = u8> + Send + 'static,
) -> JoinHandle<u8> {
    handle.spawn(fut) // at: sync-spawn
}

#[tokio::test]
async fn join_branches_are_recorded_and_sync_fns_spawn_tracked() {
    let (tx_a, a) = oneshot::channel();
    let (tx_b, b) = oneshot::channel();
    let handle = spawn_from_sync(&tokio::runtime::Handle::current(), both(a, b));
    let site = here("sync-spawn", "spawn");
    // Both branches, and the `.await` inside the async block branch.
    let task = wait_for("both join branches", |snap| {
        snap.tasks()
            .iter()
            .find(|t| {
                site_of(t.spawn_site()) == site
                    && t.stack()
                        .iter()
                        .filter(|f| f.label() == "expand::both")
                        .count()
                        == 3
            })
            .cloned()
    })
    .await;
    let branches: Vec<_> = task
        .stack()
        .iter()
        .filter(|f| f.label() == "expand::both")
        .map(|f| (f.awaiting(), frame_site(f)))
        .collect();
    assert!(
        branches.contains(&(Some("park(a)"), here("join", "park(a)"))),
        "{branches:?}"
    );
    assert!(
        branches.contains(&(
            Some("async { b.await.unwrap_or(0) }"),
            here("join", "async {")
        )),
        "{branches:?}"
    );
    assert!(
        branches.contains(&(Some("b"), here("join", "b.await"))),
        "{branches:?}"
    );
    tx_a.send(1).unwrap();
    tx_b.send(2).unwrap();
    assert_eq!(handle.await.unwrap(), 3);
}

#[taskprof::track(label(kind = "expand-test", "team.name" = "core"))]
async fn labelled_spawner(rx: oneshot::Receiver<u8>) -> JoinHandle<u8> {
    tokio::spawn(park(rx)) // at: labelled-spawn
}

#[tokio::test]
async fn label_arguments_reach_spawned_tasks() {
    let (tx, rx) = oneshot::channel();
    let handle = labelled_spawner(rx).await;
    let task = spawned_at(here("labelled-spawn", "tokio::spawn"), 1).await;
    let labels: Vec<(&str, &str)> = task.labels().iter().collect();
    assert_eq!(labels, [("kind", "expand-test"), ("team.name", "core")]);
    tx.send(0).unwrap();
    assert_eq!(handle.await.unwrap(), 0);
}

/// Records its name in a shared log when dropped.
struct Guard(&'static str, Arc<Mutex<Vec<&'static str>>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

type Log = Arc<Mutex<Vec<&'static str>>>;

/// Unused arguments, `_` and destructured ones included, live as long as the future.
#[taskprof::track]
async fn hold(_a: Guard, _: Guard, (_c, _): (Guard, Guard), log: Log) {
    tokio::task::yield_now().await;
    log.lock().unwrap().push("body");
}

async fn hold_untracked(_a: Guard, _: Guard, (_c, _): (Guard, Guard), log: Log) {
    tokio::task::yield_now().await;
    log.lock().unwrap().push("body");
}

struct Owner(Log);

impl Owner {
    #[taskprof::track]
    async fn consume(self, _arg: Guard) {
        tokio::task::yield_now().await;
        self.0.lock().unwrap().push("body");
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("self");
    }
}

#[tokio::test]
async fn arguments_live_until_the_future_completes_and_drop_as_in_an_async_fn() {
    let run = |tracked: bool| async move {
        let log = Log::default();
        let g = |name| Guard(name, log.clone());
        let args = (g("a"), g("b"), (g("c"), g("d")), log.clone());
        if tracked {
            let fut = hold(args.0, args.1, args.2, args.3);
            assert!(
                log.lock().unwrap().is_empty(),
                "dropped before the first poll"
            );
            fut.await;
        } else {
            hold_untracked(args.0, args.1, args.2, args.3).await;
        }
        log.lock().unwrap().clone()
    };
    let tracked = run(true).await;
    assert_eq!(tracked, run(false).await);
    assert_eq!(tracked[0], "body");

    let log = Log::default();
    let fut = Owner(log.clone()).consume(Guard("arg", log.clone()));
    assert!(
        log.lock().unwrap().is_empty(),
        "dropped before the first poll"
    );
    fut.await;
    assert_eq!(log.lock().unwrap()[0], "body");
}
