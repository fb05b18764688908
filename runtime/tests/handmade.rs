//! The runtime driven by hand-written expansions of `#[track]` (what the macro emits), so the
//! runtime is tested independently of the macro crate.

use std::future::Future;
use std::panic::Location;
use taskprof::__private::{AwaitSite, AwaitSiteOf, FnSite, FnSiteOf, Framed, await_point};

static WAIT_FN: FnSite = FnSite::new("wait", module_path!(), Location::caller(), None, &[]);

struct WaitFn;

impl FnSiteOf for WaitFn {
    fn site() -> &'static FnSite {
        &WAIT_FN
    }
}

fn wait(rx: tokio::sync::oneshot::Receiver<()>) -> impl Future<Output = ()> {
    let fut = async move {
        static S: AwaitSite = AwaitSite::new(&WAIT_FN, Location::caller(), "rx");
        struct Site;
        impl AwaitSiteOf for Site {
            fn site() -> &'static AwaitSite {
                &S
            }
        }
        let _ = await_point(Site, rx).await;
    };
    Framed::new(WaitFn, fut)
}

static OUTER_FN: FnSite = FnSite::new(
    "outer",
    module_path!(),
    Location::caller(),
    None,
    &[("role", "outer")],
);

struct OuterFn;

impl FnSiteOf for OuterFn {
    fn site() -> &'static FnSite {
        &OUTER_FN
    }
}

fn outer(rx: tokio::sync::oneshot::Receiver<()>) -> impl Future<Output = ()> {
    let fut = async move {
        static S: AwaitSite = AwaitSite::new(&OUTER_FN, Location::caller(), "wait(rx)");
        struct Site;
        impl AwaitSiteOf for Site {
            fn site() -> &'static AwaitSite {
                &S
            }
        }
        await_point(Site, wait(rx)).await;
    };
    Framed::labelled(OuterFn, fut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_and_awaits_show_in_profiles() {
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..3 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        txs.push(tx);
        handles.push(taskprof::spawn(outer(rx)));
    }
    // A root frame: plain tokio::spawn of a #[track] future registers itself.
    let (tx, rx) = tokio::sync::oneshot::channel();
    txs.push(tx);
    handles.push(tokio::spawn(outer(rx)));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let snap = taskprof::snapshot();
    println!("{snap}");
    println!("{snap:#}");
    let g = snap
        .groups()
        .iter()
        .find(|g| g.spawn_site().is_some() && g.labels().get("role") == Some("outer"))
        .expect("group of the spawned tasks");
    assert_eq!(g.count(), 3);
    assert_eq!(g.stack().len(), 2);
    assert_eq!(g.stack()[0].label(), "handmade::wait");
    assert_eq!(g.stack()[0].awaiting(), Some("rx"));
    assert_eq!(g.stack()[1].label(), "handmade::outer");
    assert_eq!(g.labels().get("role"), Some("outer"));
    let root = snap
        .tasks()
        .iter()
        .find(|t| t.spawn_site().is_none())
        .expect("root task");
    assert_eq!(root.name(), "handmade::outer");
    let ids: Vec<u64> = snap
        .tasks()
        .iter()
        .filter(|t| t.labels().get("role") == Some("outer"))
        .map(|t| t.id())
        .collect();
    assert_eq!(ids.len(), 4);
    drop(txs);
    for h in handles {
        h.await.unwrap();
    }
    let after = taskprof::snapshot();
    assert!(after.tasks().iter().all(|t| !ids.contains(&t.id())));
}

/// Returns `Pending` forever without keeping the waker: nothing can ever wake its task.
struct DropsWaker;

impl std::future::Future for DropsWaker {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn lost_wakers_are_flagged_and_reported_at_once() {
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    let report = taskprof::LeakCheck::new()
        .grace(std::time::Duration::from_millis(200))
        .run(async move {
            taskprof::spawn(DropsWaker);
            taskprof::spawn(async move {
                let _ = rx.await;
            });
            tokio::task::yield_now().await;
        })
        .await;
    // A task parked on a live channel keeps its waker; the other lost it.
    let report = report.expect_err("both tasks leak");
    println!("{report}");
    let lost: Vec<bool> = report
        .snapshot()
        .tasks()
        .iter()
        .map(|t| t.lost_waker())
        .collect();
    assert_eq!(lost.iter().filter(|l| **l).count(), 1, "{report}");
    assert_eq!(report.count(), 2);
}

#[tokio::test]
async fn only_lost_tasks_left_fail_without_waiting_the_grace() {
    let report = taskprof::LeakCheck::new()
        .grace(std::time::Duration::from_secs(3600))
        .run(async {
            taskprof::spawn(DropsWaker);
            tokio::task::yield_now().await;
        })
        .await
        .expect_err("lost waker leaks");
    assert_eq!(report.count(), 1);
    assert!(report.to_string().contains("# lost waker"), "{report}");
}

/// The per-task profile, built from interned kinds, reads exactly as every task written on its
/// own, for tasks that differ in every shared part: name (type, static, owned, escaped), labels,
/// spawn site, parent, stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_task_text_is_each_task_written_alone() {
    let (tx, rx) = tokio::sync::broadcast::channel::<()>(1);
    let park = |mut rx: tokio::sync::broadcast::Receiver<()>| async move {
        let _ = rx.recv().await;
    };
    let mut handles = Vec::new();
    for name in ["owned", "owned", "we\"ird\n", "other"] {
        handles.push(taskprof::spawn_named(
            name.to_string(),
            park(rx.resubscribe()),
        ));
    }
    handles.push(taskprof::spawn_named("static", park(rx.resubscribe())));
    let labelled = taskprof::labels::with(&[("k", "v\"")], park(rx.resubscribe()));
    handles.push(taskprof::spawn(labelled));
    let (otx, orx) = tokio::sync::oneshot::channel();
    handles.push(taskprof::spawn(outer(orx)));
    // Two parents, each with a child: kinds that differ by parent only.
    for _ in 0..2 {
        let mut child_rx = rx.resubscribe();
        handles.push(taskprof::spawn(async move {
            let child = taskprof::spawn(park(child_rx.resubscribe()));
            let _ = child_rx.recv().await;
            let _ = child.await;
        }));
    }
    let snap = loop {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let snap = taskprof::snapshot();
        let mine = |n: &str| snap.tasks().iter().filter(|t| t.name() == n).count();
        if mine("owned") == 2 && mine("static") == 1 && snap.tasks().len() >= 11 {
            break snap;
        }
    };
    let mut expected = format!("task profile: total {}\n", snap.total());
    for t in snap.tasks() {
        expected.push_str(&format!("{t}\n"));
    }
    assert_eq!(format!("{snap:#}"), expected);
    assert!(snap.tasks().is_sorted_by_key(|t| t.id()));
    let escaped = snap.tasks().iter().find(|t| t.name() == "we\"ird\n");
    assert!(escaped.is_some(), "{snap:#}");
    let labelled = snap
        .tasks()
        .iter()
        .find(|t| t.labels().get("k") == Some("v\""));
    assert!(labelled.is_some(), "{snap:#}");
    assert!(
        snap.tasks().iter().any(|t| t.parent().is_some()),
        "{snap:#}"
    );
    drop((tx, otx));
    for h in handles {
        h.await.unwrap();
    }
}
