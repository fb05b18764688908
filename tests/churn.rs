//! Stress: a 2-worker runtime does over 200,000 tracked spawns (tasks that finish at once,
//! tasks that yield, tasks parked on a gate that spawn children, all with nested `#[track]`
//! frames) while another OS thread takes and formats snapshots in a loop. Nothing deadlocks,
//! every snapshot is self-consistent, and at the end nothing is left: `live_count() == 0`.
//! Registry entries are reused all along: each gated task has a name and a label that say the
//! same number, and no snapshot shows one task's name with another's label.
//!
//! Its own binary with one test: `live_count()` and totals are exact here.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use taskprof::Snapshot;
use taskprof_tests::multi_thread;
use tokio::sync::watch;

/// Batches of spawns; each batch spawns [`PER_BATCH`] tasks plus one child per gated task.
const BATCHES: usize = 200;
const PER_BATCH: usize = 1_000;
/// Of each batch: tasks that finish in their first poll, then tasks that yield, the rest wait
/// on the batch's gate (and spawn a child each).
const QUICK: usize = 500;
const YIELDING: usize = 250;
const GATED: usize = PER_BATCH - QUICK - YIELDING;
const SPAWNS: usize = BATCHES * (PER_BATCH + GATED);
const _: () = assert!(SPAWNS >= 200_000);

/// Fails the test instead of hanging it if something deadlocks.
const WATCHDOG: Duration = Duration::from_secs(300);

/// Every frame label the workload can show.
const LABELS: &[&str] = &[
    "churn::quick_outer",
    "churn::quick_inner",
    "churn::yield_outer",
    "churn::yield_inner",
    "churn::gated_outer",
    "churn::gated_inner",
    "churn::child",
];

#[taskprof::track]
async fn quick_inner(n: usize) -> usize {
    n + 1
}

#[taskprof::track]
async fn quick_outer(n: usize) -> usize {
    quick_inner(n).await + 1
}

#[taskprof::track]
async fn yield_inner(n: usize) -> usize {
    for _ in 0..n % 3 + 1 {
        tokio::task::yield_now().await;
    }
    n
}

#[taskprof::track]
async fn yield_outer(n: usize) -> usize {
    yield_inner(n).await
}

#[taskprof::track(label(kind = "child"))]
async fn child(n: usize) -> usize {
    if n.is_multiple_of(2) {
        tokio::task::yield_now().await;
    }
    n
}

#[taskprof::track(label(kind = "gated"))]
async fn gated_inner(mut gate: watch::Receiver<bool>) {
    let _ = gate.wait_for(|open| *open).await;
}

#[taskprof::track]
async fn gated_outer(n: usize, gate: watch::Receiver<bool>) -> usize {
    // A nested tracked spawn, made by the macro.
    let child = tokio::spawn(child(n));
    gated_inner(gate).await;
    child.await.expect("child")
}

/// Checks what must hold for any snapshot, whatever the workload is doing.
fn check(snap: &Snapshot, prev: Option<&Snapshot>) {
    assert_eq!(snap.total(), snap.tasks().len());
    assert_eq!(
        snap.groups().iter().map(|g| g.count()).sum::<usize>(),
        snap.total()
    );
    let ids: HashSet<u64> = snap.tasks().iter().map(|t| t.id()).collect();
    assert_eq!(ids.len(), snap.total(), "task ids are unique");
    assert!(snap.tasks().windows(2).all(|w| w[0].id() < w[1].id()));
    for t in snap.tasks() {
        assert!(t.stack().len() <= 4, "{t}");
        for f in t.stack() {
            assert!(LABELS.contains(&f.label()), "unexpected frame {f:?}");
            assert_eq!(f.file(), file!());
        }
        assert!(t.spawn_site().is_some_and(|s| s.file() == file!()), "{t}");
        // Name and label of one task, never of two (entries are reused while snapshots read).
        // (A gated task's child inherits its label.)
        match t.name().strip_prefix("gated-") {
            Some(n) => assert_eq!(t.labels().get("n"), Some(n), "{t}"),
            None if t.name() == "churn::child" => {}
            None => assert_eq!(t.labels().get("n"), None, "{t}"),
        }
    }
    if let Some(prev) = prev {
        let diff = snap.diff(prev);
        assert_eq!(diff.total(), snap.total() as i64 - prev.total() as i64);
        let _ = diff.to_string();
    }
    let grouped = snap.to_string();
    let first = grouped.lines().next().unwrap_or_default();
    assert_eq!(first, format!("task profile: total {}", snap.total()));
    let per_task = format!("{snap:#}");
    assert_eq!(per_task.matches("\ntask ").count(), snap.total());
}

/// The workload: every batch spawns its tasks, opens the gate, and waits for all of them.
async fn workload(spawned: Arc<AtomicUsize>) {
    for batch in 0..BATCHES {
        let (open, gate) = watch::channel(false);
        let mut handles = Vec::with_capacity(PER_BATCH);
        for i in 0..PER_BATCH {
            let n = batch * PER_BATCH + i;
            let handle = if i < QUICK {
                taskprof::spawn(quick_outer(n))
            } else if i < QUICK + YIELDING {
                taskprof::spawn(yield_outer(n))
            } else {
                // Named and labelled with its number (see `check`).
                let number = n.to_string();
                let mut handle = None;
                taskprof::labels::with(&[("n", number.as_str())], async {
                    let task = gated_outer(n, gate.clone());
                    handle = Some(taskprof::spawn_named(format!("gated-{n}"), task));
                })
                .await;
                handle.expect("spawned")
            };
            handles.push(handle);
        }
        // Let the gated tasks park before opening the gate (some will, some won't yet).
        tokio::task::yield_now().await;
        open.send_replace(true);
        for handle in handles {
            handle.await.expect("churn task");
        }
        spawned.fetch_add(PER_BATCH + GATED, Ordering::Relaxed);
    }
}

#[test]
fn churn_with_concurrent_snapshots() {
    assert_eq!(taskprof::live_count(), 0);
    let stop = Arc::new(AtomicBool::new(false));
    let snapshots = Arc::new(AtomicUsize::new(0));
    let observer = {
        let stop = stop.clone();
        let snapshots = snapshots.clone();
        std::thread::spawn(move || {
            let mut prev: Option<Snapshot> = None;
            let mut max_seen = 0;
            while !stop.load(Ordering::Relaxed) {
                let snap = taskprof::snapshot();
                check(&snap, prev.as_ref());
                max_seen = max_seen.max(snap.total());
                snapshots.fetch_add(1, Ordering::Relaxed);
                prev = Some(snap);
            }
            max_seen
        })
    };

    let spawned = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let driver = {
        let spawned = spawned.clone();
        std::thread::spawn(move || {
            let rt = multi_thread(2);
            rt.block_on(async {
                workload(spawned).await;
                // Everything finished while the runtime is still up.
                assert_eq!(taskprof::live_count(), 0);
                let snap = taskprof::snapshot();
                assert_eq!(snap.total(), 0, "{snap:#}");
            });
            drop(rt);
            let _ = done_tx.send(());
        })
    };
    let finished = done_rx.recv_timeout(WATCHDOG);
    stop.store(true, Ordering::Relaxed);
    match finished {
        Ok(()) => driver.join().expect("driver"),
        // The driver panicked: show its failure.
        Err(mpsc::RecvTimeoutError::Disconnected) => match driver.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the driver reports before it ends"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("churn did not finish within {WATCHDOG:?}: deadlock?")
        }
    }
    let max_seen = observer.join().expect("snapshot thread");

    assert_eq!(spawned.load(Ordering::Relaxed), SPAWNS);
    assert!(snapshots.load(Ordering::Relaxed) > 0);
    assert!(max_seen > 0, "the snapshots saw live tasks");
    assert_eq!(taskprof::live_count(), 0);
    let snap = taskprof::snapshot();
    assert_eq!(snap.total(), 0, "{snap:#}");
    println!(
        "{SPAWNS} spawns, {} snapshots, up to {max_seen} live tasks seen",
        snapshots.load(Ordering::Relaxed)
    );
}
