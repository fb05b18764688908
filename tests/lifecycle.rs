//! A task's entry lives from its first suspension exactly as long as its future: it is removed on completion, panic,
//! abort, cancellation by drop (an expiring `timeout`, a losing `select!` branch) and runtime
//! shutdown, and `live_count()` comes back to where it was.
//!
//! Every test here holds [`serial`] so that `live_count()` can be compared exactly: no other
//! tracked task of this binary lives while a test runs.
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use taskprof::TaskInfo;
use taskprof_tests::{
    assert_gone, current_thread, labels_of, multi_thread, serial, spawned_at, task, wait_for,
};
use tokio::sync::{broadcast, oneshot};

const FILE: &str = file!();

/// The ids of the root tasks (`#[track]` futures that registered themselves, with no spawn
/// site) named `name`.
fn named(snap: &taskprof::Snapshot, name: &str) -> Vec<u64> {
    snap.tasks()
        .iter()
        .filter(|t| t.name() == name && t.spawn_site().is_none())
        .map(TaskInfo::id)
        .collect()
}

#[taskprof::track]
async fn wait_then_return(mut rx: broadcast::Receiver<()>) -> u32 {
    let _ = rx.recv().await;
    7
}

#[test]
fn removed_on_completion() {
    let _serial = serial();
    let before = taskprof::live_count();
    multi_thread(2).block_on(async {
        let (tx, rx) = broadcast::channel::<()>(1);
        let mut handles = Vec::new();
        let mut line = 0;
        for _ in 0..3 {
            let (l, h) = (line!(), taskprof::spawn(wait_then_return(rx.resubscribe())));
            line = l;
            handles.push(h);
        }
        // A `#[track]` future that registered itself.
        handles.push(tokio::spawn(wait_then_return(rx)));
        let ids = wait_for("3 spawned tasks and 1 root task parked", |s| {
            let mut ids: Vec<u64> = spawned_at(s, FILE, line)
                .iter()
                .filter(|t| t.stack().len() == 1)
                .map(|t| t.id())
                .collect();
            ids.extend(named(s, "lifecycle::wait_then_return"));
            (ids.len() == 4).then_some(ids)
        })
        .await;
        assert_eq!(taskprof::live_count(), before + 4);
        drop(tx);
        for h in handles {
            assert_eq!(h.await.expect("completes"), 7);
        }
        assert_gone(&ids);
        assert_eq!(taskprof::live_count(), before);
    });
    assert_eq!(taskprof::live_count(), before);
}

#[taskprof::track]
async fn panic_after(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
    panic!("lifecycle test: deliberate panic");
}

#[taskprof::track]
async fn outer_of_panic(rx: broadcast::Receiver<()>) {
    panic_after(rx).await;
}

#[test]
fn removed_on_panic() {
    let _serial = serial();
    let before = taskprof::live_count();
    // Current-thread: the follow-up task below runs on the thread the panics unwound through.
    current_thread().block_on(async {
        let (tx, rx) = broadcast::channel::<()>(1);
        let (line, spawned) = (line!(), taskprof::spawn(outer_of_panic(rx.resubscribe())));
        let root = tokio::spawn(panic_after(rx));
        let ids = wait_for("the two tasks parked", |s| {
            let mut ids: Vec<u64> = spawned_at(s, FILE, line)
                .iter()
                .filter(|t| t.stack().len() == 2)
                .map(|t| t.id())
                .collect();
            ids.extend(named(s, "lifecycle::panic_after"));
            (ids.len() == 2).then_some(ids)
        })
        .await;
        assert_eq!(taskprof::live_count(), before + 2);
        drop(tx);
        assert!(spawned.await.expect_err("panics").is_panic());
        assert!(root.await.expect_err("panics").is_panic());
        assert_gone(&ids);
        assert_eq!(taskprof::live_count(), before);

        // The thread is not left inside a panicked task: a task spawned from untracked code
        // now has no parent and no labels.
        let (tx, rx) = oneshot::channel::<()>();
        let plain = tokio::spawn(async move {
            let (line, h) = (line!(), taskprof::spawn(async move { rx.await.ok() }));
            (line, h)
        });
        let (line, h) = plain.await.expect("plain task");
        let after = wait_for("the follow-up task", |s| {
            spawned_at(s, FILE, line).first().map(|t| (*t).clone())
        })
        .await;
        assert_eq!(after.parent(), None);
        assert!(after.labels().is_empty());
        drop(tx);
        h.await.expect("follow-up");
        assert_eq!(taskprof::live_count(), before);
    });
}

#[test]
fn removed_on_abort() {
    let _serial = serial();
    let before = taskprof::live_count();
    multi_thread(2).block_on(async {
        let (_tx, rx) = broadcast::channel::<()>(1);
        let (line, spawned) = (line!(), taskprof::spawn(wait_then_return(rx.resubscribe())));
        let root = tokio::spawn(wait_then_return(rx));
        let ids = wait_for("the two tasks parked", |s| {
            let mut ids: Vec<u64> = spawned_at(s, FILE, line)
                .iter()
                .filter(|t| t.stack().len() == 1)
                .map(|t| t.id())
                .collect();
            ids.extend(named(s, "lifecycle::wait_then_return"));
            (ids.len() == 2).then_some(ids)
        })
        .await;
        assert_eq!(taskprof::live_count(), before + 2);
        spawned.abort();
        root.abort();
        assert!(spawned.await.expect_err("aborted").is_cancelled());
        assert!(root.await.expect_err("aborted").is_cancelled());
        assert_gone(&ids);
        assert_eq!(taskprof::live_count(), before);
    });
}

#[taskprof::track]
async fn hang_in_timeout(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[test]
fn removed_when_a_timeout_expires() {
    let _serial = serial();
    let before = taskprof::live_count();
    multi_thread(2).block_on(async {
        let (_never, never_rx) = oneshot::channel::<()>();
        let (polled_tx, polled_rx) = oneshot::channel::<()>();
        let (go_tx, go_rx) = oneshot::channel::<()>();
        // A plain task: the `#[track]` future has no tracked task around it, so it registers
        // itself on its first poll, and is dropped by `timeout` when the deadline passes.
        let outer = tokio::spawn(async move {
            let mut fut = Box::pin(hang_in_timeout(never_rx));
            std::future::poll_fn(|cx| {
                assert!(Pin::as_mut(&mut fut).poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            let _ = polled_tx.send(());
            // The deadline starts only once the test has seen the task.
            let _ = go_rx.await;
            tokio::time::timeout(Duration::from_millis(1), fut)
                .await
                .is_err()
        });
        polled_rx.await.expect("first poll");
        let snap = taskprof::snapshot();
        let ids = named(&snap, "lifecycle::hang_in_timeout");
        assert_eq!(ids.len(), 1, "{snap:#}");
        assert_eq!(taskprof::live_count(), before + 1);
        go_tx.send(()).expect("outer waits");
        assert!(outer.await.expect("outer task"), "timeout expired");
        assert_gone(&ids);
        assert_eq!(taskprof::live_count(), before);
    });
}

#[taskprof::track(label(phase = "select"))]
async fn losing_branch(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[test]
fn removed_when_a_select_branch_loses() {
    let _serial = serial();
    let before = taskprof::live_count();
    multi_thread(2).block_on(async {
        // The losing branch is a task of its own (no tracked task around it): it goes away.
        let (_never, never_rx) = oneshot::channel::<()>();
        let (win_tx, win_rx) = oneshot::channel::<()>();
        let outer = tokio::spawn(async move {
            tokio::select! {
                _ = losing_branch(never_rx) => false,
                _ = win_rx => true,
            }
        });
        let ids = wait_for("the losing branch as a root task", |s| {
            let ids = named(s, "lifecycle::losing_branch");
            (ids.len() == 1).then_some(ids)
        })
        .await;
        assert_eq!(taskprof::live_count(), before + 1);
        win_tx.send(()).expect("select waits");
        assert!(outer.await.expect("outer"), "the other branch won");
        assert_gone(&ids);
        assert_eq!(taskprof::live_count(), before);
    });
}

#[taskprof::track]
async fn select_then_park(
    never: oneshot::Receiver<()>,
    win: oneshot::Receiver<()>,
    park: oneshot::Receiver<()>,
) {
    // `biased;` makes the order deterministic: the losing branch is polled (and goes pending)
    // in the very poll in which `win` completes the `select!`.
    tokio::select! {
        biased;
        _ = losing_branch(never) => {}
        _ = win => {}
    }
    let _ = park.await;
}

/// Unlabelled: its `.await` is recorded without drop code of its own (it is directly in the
/// body), so only the frame's range takes it back when the branch loses.
#[taskprof::track]
async fn plain_losing_branch(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[taskprof::track]
async fn select_plain_then_park(
    never: oneshot::Receiver<()>,
    never_too: oneshot::Receiver<()>,
    win: oneshot::Receiver<()>,
    park: oneshot::Receiver<()>,
) {
    tokio::select! {
        biased;
        _ = plain_losing_branch(never) => {}
        // An `.await` in an `async` block takes its own entry back when dropped.
        _ = async { let _ = never_too.await; } => {}
        _ = win => {}
    }
    let _ = park.await;
}

#[taskprof::track(label(phase = "timeout"))]
async fn slow_frame(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[taskprof::track]
async fn timeout_then_park(never: oneshot::Receiver<()>, park: oneshot::Receiver<()>) {
    let _ = tokio::time::timeout(Duration::from_millis(1), slow_frame(never)).await;
    let _ = park.await;
}

/// Whether `t`'s stack shows a frame labelled `label`.
fn has_frame(t: &TaskInfo, label: &str) -> bool {
    t.stack().iter().any(|f| f.label() == label)
}

/// Waits until task `id` (spawned as `handle`) parks on `park`, asserts that its stack is that
/// one frame and that it carries no labels (those of the dropped frame are gone), then lets it
/// end and checks that it is gone and counted out (`before`: the live count before its spawn).
async fn assert_parks_on_park_only_then_ends(
    id: u64,
    dropped: &str,
    park: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
    before: usize,
) {
    let after = wait_for("the task parked on `park`", |s| {
        let t = task(s, id)?;
        t.stack()
            .iter()
            .any(|f| f.awaiting() == Some("park"))
            .then(|| t.clone())
    })
    .await;
    assert!(
        !has_frame(&after, dropped),
        "the dropped frame {dropped} is still on the stack:\n{:#?}",
        after.stack()
    );
    assert_eq!(
        after.stack().len(),
        1,
        "only the `park` frame: {:#?}",
        after.stack()
    );
    assert!(
        after.labels().is_empty(),
        "labels of the dropped frame are gone: {:?}",
        after.labels()
    );
    assert_eq!(taskprof::live_count(), before + 1);
    park.send(()).expect("parked");
    handle.await.expect("the task ends");
    assert_gone(&[id]);
    assert_eq!(taskprof::live_count(), before);
}

#[test]
fn frame_of_a_losing_select_branch_leaves_the_stack() {
    let _serial = serial();
    let before = taskprof::live_count();
    multi_thread(2).block_on(async {
        let (_never, never_rx) = oneshot::channel::<()>();
        let (win_tx, win_rx) = oneshot::channel::<()>();
        let (park_tx, park_rx) = oneshot::channel::<()>();
        let fut = select_then_park(never_rx, win_rx, park_rx);
        let (line, handle) = (line!(), taskprof::spawn(fut));
        let id = wait_for("the task inside select!", |s| {
            let t = *spawned_at(s, FILE, line).first()?;
            (has_frame(t, "lifecycle::losing_branch") && labels_of(t) == [("phase", "select")])
                .then_some(t.id())
        })
        .await;
        win_tx.send(()).expect("select waits");
        assert_parks_on_park_only_then_ends(
            id,
            "lifecycle::losing_branch",
            park_tx,
            handle,
            before,
        )
        .await;
    });
}

#[test]
fn unlabelled_frame_and_async_block_of_losing_branches_leave_the_stack() {
    let _serial = serial();
    let before = taskprof::live_count();
    multi_thread(2).block_on(async {
        let (_never, never_rx) = oneshot::channel::<()>();
        let (_never_too, never_too_rx) = oneshot::channel::<()>();
        let (win_tx, win_rx) = oneshot::channel::<()>();
        let (park_tx, park_rx) = oneshot::channel::<()>();
        let fut = select_plain_then_park(never_rx, never_too_rx, win_rx, park_rx);
        let (line, handle) = (line!(), taskprof::spawn(fut));
        let id = wait_for("the task inside select!", |s| {
            let t = *spawned_at(s, FILE, line).first()?;
            let in_block = t.stack().iter().any(|f| f.awaiting() == Some("never_too"));
            (has_frame(t, "lifecycle::plain_losing_branch") && in_block).then_some(t.id())
        })
        .await;
        win_tx.send(()).expect("select waits");
        let dropped = "lifecycle::plain_losing_branch";
        assert_parks_on_park_only_then_ends(id, dropped, park_tx, handle, before).await;
    });
}

#[test]
fn frame_dropped_by_a_timeout_leaves_the_stack() {
    let _serial = serial();
    let before = taskprof::live_count();
    multi_thread(2).block_on(async {
        let (_never, never_rx) = oneshot::channel::<()>();
        let (park_tx, park_rx) = oneshot::channel::<()>();
        let fut = timeout_then_park(never_rx, park_rx);
        let (line, handle) = (line!(), taskprof::spawn(fut));
        let id = wait_for("the task", |s| {
            spawned_at(s, FILE, line).first().map(|t| t.id())
        })
        .await;
        assert_parks_on_park_only_then_ends(id, "lifecycle::slow_frame", park_tx, handle, before)
            .await;
    });
}

#[taskprof::track]
async fn parent_of_parked(rx: broadcast::Receiver<()>) {
    let child = tokio::spawn(wait_then_return(rx.resubscribe()));
    wait_then_return(rx).await;
    let _ = child.await;
}

/// Spawns parked tasks of every kind on `rt` and drives it until they have all parked; returns
/// their ids.
fn spawn_parked(rt: &tokio::runtime::Runtime, rx: &broadcast::Receiver<()>) -> Vec<u64> {
    rt.block_on(async {
        let (line, _) = (line!(), taskprof::spawn(parent_of_parked(rx.resubscribe())));
        let mut lines = Vec::new();
        for _ in 0..5 {
            let (l, _) = (line!(), taskprof::spawn(wait_then_return(rx.resubscribe())));
            lines.push(l);
        }
        tokio::spawn(wait_then_return(rx.resubscribe()));
        wait_for("parked tasks of every kind", |s| {
            let parent = spawned_at(s, FILE, line);
            let [parent] = parent.as_slice() else {
                return None;
            };
            let mut ids = vec![parent.id()];
            ids.extend(
                s.tasks()
                    .iter()
                    .filter(|t| t.parent() == Some(parent.id()))
                    .map(|t| t.id()),
            );
            ids.extend(spawned_at(s, FILE, lines[0]).iter().map(|t| t.id()));
            ids.extend(named(s, "lifecycle::wait_then_return"));
            let parked = ids
                .iter()
                .all(|id| task(s, *id).is_some_and(|t| !t.stack().is_empty()));
            (ids.len() == 8 && parked).then_some(ids)
        })
        .await
    })
}

#[test]
fn removed_on_multi_thread_runtime_shutdown() {
    let _serial = serial();
    let before = taskprof::live_count();
    let (tx, rx) = broadcast::channel::<()>(1);
    let rt = multi_thread(2);
    let ids = spawn_parked(&rt, &rx);
    assert_eq!(taskprof::live_count(), before + ids.len());
    drop(rt);
    assert_gone(&ids);
    assert_eq!(taskprof::live_count(), before);
    drop(tx);
}

#[test]
fn removed_on_current_thread_runtime_shutdown() {
    let _serial = serial();
    let before = taskprof::live_count();
    let (tx, rx) = broadcast::channel::<()>(1);
    let rt = current_thread();
    let ids = spawn_parked(&rt, &rx);
    // And tasks that are never polled: on a current-thread runtime nothing else runs while
    // `block_on`'s own future is being polled, and it returns before they get a turn. They
    // count in `live_count()` from their spawn, but have no entry yet (a task is listed from
    // its first suspension), unless a leak check is watching (tests/leaks_semantics.rs).
    let unlisted = rt.block_on(async {
        let mut line = 0;
        for _ in 0..3 {
            let (l, _) = (line!(), taskprof::spawn(std::future::pending::<()>()));
            line = l;
        }
        spawned_at(&taskprof::snapshot(), FILE, line).len()
    });
    assert_eq!(unlisted, 0);
    assert_eq!(taskprof::live_count(), before + ids.len() + 3);
    drop(rt);
    assert_gone(&ids);
    assert_eq!(taskprof::live_count(), before);
    drop(tx);
}
