//! Ten leaky and ten clean leak-checked tests in one binary, run in parallel by `cargo test`:
//! each leaky test reports exactly its own leaked tasks, each clean test passes although the
//! leaky ones keep tasks alive in the same process at the same time.
//!
//! The leaky `#[taskprof::test]`s expect their panic with `#[should_panic]`. The expected text
//! `leaked tasks: N\nN @ tests/leaks_parallel.rs:` says the report holds exactly N tasks, in one
//! group spawned in this file; every such test leaks a different N (1 to 5), so a task of another
//! test in the report would change it. The other leaky tests run a [`LeakCheck`] themselves and
//! check the report's tasks one by one: count, spawn line (from `line!()` in the same
//! expression as the spawn call) and the test's own label.
#![forbid(unsafe_code)]

use std::time::Duration;

use taskprof::{LeakCheck, LeakReport};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

const FILE: &str = file!();

/// Never completes, but can be woken: it owns both ends of a channel, so the waker it parks
/// with stays stored in the channel (not a lost waker, so the check waits out the grace).
async fn parked() {
    let (tx, rx) = oneshot::channel::<()>();
    let _tx = tx;
    let _ = rx.await;
}

/// Asserts that `report` holds exactly the tasks spawned at `lines` of this file (one entry per
/// task), all labelled `test = name`, and that its text says so.
#[track_caller]
fn assert_own_leaks(report: &LeakReport, name: &str, lines: &[u32]) {
    let text = report.to_string();
    assert_eq!(report.count(), lines.len(), "{text}");
    assert!(
        text.starts_with(&format!("leaked tasks: {}\n", lines.len())),
        "{text}"
    );
    let mut expected = lines.to_vec();
    expected.sort_unstable();
    let mut seen = Vec::new();
    for task in report.snapshot().tasks() {
        assert_eq!(task.labels().get("test"), Some(name), "{task}\n{text}");
        let site = task
            .spawn_site()
            .unwrap_or_else(|| panic!("no spawn site: {task}"));
        assert_eq!(site.file(), FILE, "{task}");
        seen.push(site.line());
    }
    seen.sort_unstable();
    assert_eq!(seen, expected, "{text}");
    // Every group line carries this test's label and nothing else.
    let label = format!(" # labels: {{\"test\":\"{name}\"}}");
    for group in text.lines().filter(|l| l.contains(" @ ")) {
        assert!(group.ends_with(&label), "{group:?} in\n{text}");
    }
}

// ---- leaky: `#[taskprof::test]` + `#[should_panic]` -------------------------------------------

#[taskprof::test(grace = "100ms")]
#[should_panic(expected = "leaked tasks: 1\n1 @ tests/leaks_parallel.rs:")]
async fn leaks_one_current_thread() {
    tokio::spawn(parked());
}

/// The default grace period (1 s).
#[taskprof::test]
#[should_panic(expected = "leaked tasks: 2\n2 @ tests/leaks_parallel.rs:")]
async fn leaks_two_default_grace() {
    for _ in 0..2 {
        tokio::task::spawn(parked());
    }
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2, grace = "150ms")]
#[should_panic(expected = "leaked tasks: 3\n3 @ tests/leaks_parallel.rs:")]
async fn leaks_three_multi_thread() {
    for _ in 0..3 {
        tokio::spawn(parked());
    }
}

/// Paused time: the default 1 s grace passes on the paused clock, at once.
#[taskprof::test(start_paused = true)]
#[should_panic(expected = "leaked tasks: 4\n4 @ tests/leaks_parallel.rs:")]
async fn leaks_four_start_paused() {
    for _ in 0..4 {
        tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
    }
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2, grace = "100ms")]
#[should_panic(expected = "leaked tasks: 5\n5 @ tests/leaks_parallel.rs:")]
async fn leaks_five_detached_join_set() {
    let mut set = JoinSet::new();
    for _ in 0..5 {
        set.spawn(parked());
    }
    set.detach_all();
}

// ---- leaky: `LeakCheck::run` returning the report ---------------------------------------------

#[taskprof::test]
async fn report_current_thread() {
    const NAME: &str = "report_current_thread";
    let mut lines = Vec::new();
    let report = LeakCheck::new()
        .grace(Duration::from_millis(100))
        .run(taskprof::labels::with(&[("test", NAME)], async {
            lines.push((tokio::spawn(parked()), line!()).1);
            lines.push((taskprof::spawn(parked()), line!()).1);
            // Finishes within the grace: not reported.
            tokio::spawn(tokio::time::sleep(Duration::from_millis(5)));
        }))
        .await
        .expect_err("two parked tasks leak");
    assert_own_leaks(&report, NAME, &lines);
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_multi_thread() {
    const NAME: &str = "report_multi_thread";
    let mut lines = Vec::new();
    let report = LeakCheck::new()
        .grace(Duration::from_millis(150))
        .run(taskprof::labels::with(&[("test", NAME)], async {
            for _ in 0..3 {
                lines.push((tokio::spawn(parked()), line!()).1);
            }
            let mut set = JoinSet::new();
            lines.push((set.spawn(parked()), line!()).1);
            set.detach_all();
        }))
        .await
        .expect_err("four parked tasks leak");
    assert_own_leaks(&report, NAME, &lines);
}

/// Paused time: a 100 ms sleeper finishes within the 500 ms grace, hour-long ones don't.
#[taskprof::test(start_paused = true)]
async fn report_start_paused() {
    const NAME: &str = "report_start_paused";
    let mut lines = Vec::new();
    let report = LeakCheck::new()
        .grace(Duration::from_millis(500))
        .run(taskprof::labels::with(&[("test", NAME)], async {
            let hour = Duration::from_secs(3600);
            lines.push((tokio::spawn(tokio::time::sleep(hour)), line!()).1);
            lines.push((tokio::spawn(tokio::time::sleep(hour)), line!()).1);
            tokio::spawn(tokio::time::sleep(Duration::from_millis(100)));
        }))
        .await
        .expect_err("two sleepers leak");
    assert_own_leaks(&report, NAME, &lines);
}

/// A plain `#[tokio::test]`: its spawn calls are not rewritten, so it uses `taskprof::spawn`.
#[tokio::test]
async fn report_plain_tokio_test() {
    const NAME: &str = "report_plain_tokio_test";
    let mut lines = Vec::new();
    let report = LeakCheck::new()
        .grace(Duration::from_millis(100))
        .run(taskprof::labels::with(&[("test", NAME)], async {
            for _ in 0..4 {
                lines.push((taskprof::spawn(parked()), line!()).1);
            }
            lines.push((taskprof::spawn_named("named", parked()), line!()).1);
        }))
        .await
        .expect_err("five parked tasks leak");
    assert_own_leaks(&report, NAME, &lines);
}

/// Tasks spawned by leaked tasks leak too, with their own spawn sites and the label inherited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_nested_multi_thread() {
    const NAME: &str = "report_nested_multi_thread";
    let (line_tx, line_rx) = oneshot::channel();
    let mut lines = Vec::new();
    let report = LeakCheck::new()
        .grace(Duration::from_millis(150))
        .run(taskprof::labels::with(&[("test", NAME)], async {
            let outer = async move {
                let _ = line_tx.send((taskprof::spawn(parked()), line!()).1);
                parked().await;
            };
            lines.push((taskprof::spawn(outer), line!()).1);
            lines.push(
                line_rx
                    .await
                    .expect("the outer task reports its spawn line"),
            );
        }))
        .await
        .expect_err("the outer task and its child leak");
    assert_own_leaks(&report, NAME, &lines);
}

// ---- clean ------------------------------------------------------------------------------------

/// An inner attribute stays at the top of the generated fn, where it covers the body.
#[taskprof::test]
async fn clean_no_spawns() {
    #![allow(clippy::eq_op)]
    assert_eq!(2, 2);
}

#[taskprof::test]
async fn clean_joined() {
    let handle = tokio::spawn(async { 6 * 7 });
    assert_eq!(handle.await.expect("the task completes"), 42);
}

/// Outlives the body, not the grace period.
#[taskprof::test]
async fn clean_finishes_within_grace() {
    tokio::spawn(tokio::time::sleep(Duration::from_millis(20)));
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_multi_thread_detached() {
    for _ in 0..8 {
        tokio::spawn(async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
    }
}

/// Paused time: a 500 ms sleeper (on the paused clock) finishes within the default grace.
#[taskprof::test(start_paused = true)]
async fn clean_start_paused_sleeper() {
    tokio::spawn(tokio::time::sleep(Duration::from_millis(500)));
}

/// Dropping a `JoinSet` aborts its tasks; aborted tasks are gone once the runtime drops them.
#[taskprof::test(grace = "5s")]
async fn clean_join_set_dropped() {
    let mut set = JoinSet::new();
    for _ in 0..3 {
        set.spawn(parked());
    }
    drop(set);
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_spawn_blocking_detached() {
    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10)));
}

/// The task waits on a channel the body completes before returning.
#[taskprof::test]
async fn clean_channel_completed() {
    let (tx, rx) = oneshot::channel::<u8>();
    tokio::spawn(async move {
        let _ = rx.await;
    });
    tx.send(1).expect("the receiver is alive");
}

#[taskprof::test(grace = "2s")]
async fn clean_returns_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = tokio::spawn(async { "41".to_owned() })
        .await
        .expect("the task completes")
        .parse()?;
    assert_eq!(n + 1, 42);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_leak_check_returns_output() {
    let out = LeakCheck::new()
        .run(async {
            let mut set = JoinSet::new();
            for i in 0..4u32 {
                set.spawn(async move { i });
            }
            let mut sum = 0;
            while let Some(v) = set.join_next().await {
                sum += v.expect("the task completes");
            }
            taskprof::spawn(async { tokio::task::yield_now().await });
            sum
        })
        .await
        .expect("nothing leaks");
    assert_eq!(out, 6);
}
