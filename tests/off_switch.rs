//! `taskprof::set_enabled(false)` and `TASKPROF=off`: nothing new is tracked, what was tracked
//! stays tracked, and switching back on tracks new tasks again.
//!
//! Its own binary: the switch is process-wide. The `TASKPROF=off` test re-runs this binary with
//! the variable set, so the environment is read the way a service reads it: once, at start.
#![forbid(unsafe_code)]

use std::process::Command;

use taskprof::Snapshot;
use taskprof_tests::wait_for;
use tokio::sync::oneshot;

#[taskprof::track]
async fn parked(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// Waits for `go`, then calls other `#[track]` fns, made only then.
#[taskprof::track]
async fn caller(go: oneshot::Receiver<()>, rx: oneshot::Receiver<()>, rx2: oneshot::Receiver<()>) {
    let _ = go.await;
    callee(rx).await;
    labelled_callee(rx2).await;
}

#[taskprof::track]
async fn callee(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[taskprof::track(label(kind = "callee"))]
async fn labelled_callee(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// Whether a task of `snap` waits in the frame called `label`.
fn waits_in(snap: &Snapshot, label: &str) -> bool {
    snap.tasks()
        .iter()
        .any(|t| t.stack().iter().any(|f| f.label() == label))
}

/// Spawns a task called `name`, parked in a `#[track]` frame; returns the sender that ends it.
fn spawn_parked(name: &'static str) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel();
    (tx, taskprof::spawn_named(name, parked(rx)))
}

fn named<'a>(snap: &'a Snapshot, name: &str) -> Vec<&'a taskprof::TaskInfo> {
    snap.tasks().iter().filter(|t| t.name() == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_enabled_switches_tracking_at_run_time() {
    assert!(taskprof::is_enabled(), "on by default");
    let (on_tx, on_task) = spawn_parked("on");
    wait_for("the task spawned while on", |s| {
        named(s, "on").first().map(|_| ())
    })
    .await;
    let live_on = taskprof::live_count();

    taskprof::set_enabled(false);
    assert!(!taskprof::is_enabled());
    let (off_tx, off_task) = spawn_parked("off");
    // A `#[track]` future polled outside any task is not a task of its own either.
    let (root_tx, root_rx) = oneshot::channel();
    let root = tokio::spawn(parked(root_rx));
    // Nor is one made while off and first polled after switching back on.
    let (made_off_tx, made_off_rx) = oneshot::channel();
    let made_off = parked(made_off_rx);
    // And a frame made while off, outside any task, stays plain with everything it calls:
    // its callee, made after switching back on, does not become a task of its own.
    let (go_tx, go_rx) = oneshot::channel();
    let (callee_tx, callee_rx) = oneshot::channel();
    let (labelled_tx, labelled_rx) = oneshot::channel();
    let off_caller = tokio::spawn(caller(go_rx, callee_rx, labelled_rx));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let snap = taskprof::snapshot();
    assert!(named(&snap, "off").is_empty(), "{snap:#}");
    assert!(
        !snap
            .tasks()
            .iter()
            .any(|t| t.name() == "off_switch::parked"),
        "{snap:#}"
    );
    // The task spawned while on is still there, with its frame.
    let on = named(&snap, "on");
    assert_eq!(on.len(), 1, "{snap:#}");
    assert_eq!(on[0].stack()[0].label(), "off_switch::parked");
    assert_eq!(taskprof::live_count(), live_on);

    taskprof::set_enabled(true);
    let (again_tx, again_task) = spawn_parked("again");
    wait_for("the task spawned after switching back on", |s| {
        named(s, "again").first().map(|_| ())
    })
    .await;
    let made_off = tokio::spawn(made_off);
    go_tx.send(()).expect("the caller waits");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let snap = taskprof::snapshot();
    // Tasks spawned while off stay untracked, and frames made while off stay plain futures.
    assert!(named(&snap, "off").is_empty(), "{snap:#}");
    assert!(named(&snap, "off_switch::parked").is_empty(), "{snap:#}");
    assert!(!waits_in(&snap, "off_switch::callee"), "{snap:#}");
    callee_tx.send(()).expect("the callee waits");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let snap = taskprof::snapshot();
    assert!(!waits_in(&snap, "off_switch::labelled_callee"), "{snap:#}");

    for tx in [on_tx, off_tx, root_tx, again_tx, made_off_tx, labelled_tx] {
        let _ = tx.send(());
    }
    for handle in [on_task, off_task, root, again_task, made_off, off_caller] {
        handle.await.expect("completes");
    }
}

/// Run by [`taskprof_off_in_the_environment`] with `TASKPROF=off`.
#[test]
#[ignore = "run by taskprof_off_in_the_environment, with TASKPROF=off"]
fn child_with_taskprof_off() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (tx, task) = spawn_parked("off by environment");
        tokio::task::yield_now().await;
        assert!(!taskprof::is_enabled());
        assert_eq!(taskprof::live_count(), 0);
        assert_eq!(taskprof::snapshot().total(), 0);
        let _ = tx.send(());
        task.await.expect("completes");
    });
}

#[test]
fn taskprof_off_in_the_environment() {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_with_taskprof_off",
            "--nocapture",
        ])
        .env("TASKPROF", "off")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child test ran: {stdout}");
}
