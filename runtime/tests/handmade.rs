//! The runtime driven by hand-written expansions of `#[track]` (what the macro emits), so the
//! runtime is tested independently of the macro crate.

use std::panic::Location;
use taskprof::__private::{AwaitSite, FnSite, Framed, await_point};

static WAIT_FN: FnSite = FnSite::new("wait", module_path!(), Location::caller(), None, &[]);

async fn wait(rx: tokio::sync::oneshot::Receiver<()>) {
    let fut = async move {
        static S: AwaitSite = AwaitSite::new(&WAIT_FN, Location::caller(), "rx");
        let _ = await_point(&S, rx).await;
    };
    Framed::new(&WAIT_FN, None, fut).await
}

static OUTER_FN: FnSite = FnSite::new(
    "outer",
    module_path!(),
    Location::caller(),
    None,
    &[("role", "outer")],
);

async fn outer(rx: tokio::sync::oneshot::Receiver<()>) {
    let fut = async move {
        static S: AwaitSite = AwaitSite::new(&OUTER_FN, Location::caller(), "wait(rx)");
        await_point(&S, wait(rx)).await;
    };
    Framed::new(&OUTER_FN, None, fut).await
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
    let g = &snap.groups()[0];
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
    drop(txs);
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(taskprof::snapshot().total(), 0);
}
