//! What counts as a leak for `#[taskprof::test]` and [`LeakCheck`]: the grace period, nested
//! spawns, ignore rules, panics, `spawn_blocking`, and lost wakers.
//!
//! Spawn lines come from `line!()` in the same expression as the spawn call. Nothing here
//! asserts on timing: a check that should return early (lost waker) is given an hour of grace,
//! so a wrong implementation hangs the test instead of passing it.
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use taskprof::{LeakCheck, LeakReport, TaskInfo};
use taskprof_tests::{spawned_at, wait_for};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

const FILE: &str = file!();

/// Never completes, but can be woken: it owns both ends of a channel, so its waker stays stored
/// in the channel.
async fn parked() {
    let (tx, rx) = oneshot::channel::<()>();
    let _tx = tx;
    let _ = rx.await;
}

/// A `#[track]` function that never returns; ignored by name below.
#[taskprof::track]
async fn wait_forever() {
    parked().await;
}

/// Returns `Pending` without storing the waker: nothing can ever wake the task that polls it.
struct NeverWakes;

impl Future for NeverWakes {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// The leaked tasks' spawn lines in this file, sorted.
fn lines(report: &LeakReport) -> Vec<u32> {
    let mut lines: Vec<u32> = report
        .snapshot()
        .tasks()
        .iter()
        .map(|t| {
            let site = t.spawn_site().expect("spawned tasks have a site");
            assert_eq!(site.file(), FILE, "{t}");
            site.line()
        })
        .collect();
    lines.sort_unstable();
    lines
}

// ---- the grace period -------------------------------------------------------------------------

/// A task that finishes 50 ms after the body returns is within the (default, 1 s) grace.
#[taskprof::test]
async fn finishing_within_the_grace_is_no_leak() {
    tokio::spawn(tokio::time::sleep(Duration::from_millis(50)));
}

#[taskprof::test]
async fn outliving_the_grace_is_a_leak() {
    let mut spawned = 0;
    let report = LeakCheck::new()
        .grace(Duration::from_millis(100))
        .run(async {
            let ten_s = Duration::from_secs(10);
            spawned = (tokio::spawn(tokio::time::sleep(ten_s)), line!()).1;
            // Within the grace: not part of the report.
            tokio::spawn(tokio::time::sleep(Duration::from_millis(20)));
        })
        .await
        .expect_err("the 10 s sleeper outlives a 100 ms grace");
    assert_eq!(lines(&report), [spawned]);
    let task = &report.snapshot().tasks()[0];
    assert!(!task.lost_waker(), "a timer holds the waker: {task}");
    let text = report.to_string();
    assert!(
        text.starts_with(&format!("leaked tasks: 1\n1 @ {FILE}:{spawned}:")),
        "{text}"
    );
    assert!(!text.contains("lost waker"), "{text}");
}

// ---- nested spawns ----------------------------------------------------------------------------

/// test → task → task, all parked: both reported, the inner one with its own site and the
/// outer one as its parent; the outer one has no tracked parent (the test body is no task).
#[taskprof::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_two_spawns_deep_with_parent_chain() {
    let (line_tx, line_rx) = oneshot::channel();
    let mut outer_line = 0;
    let mut inner_line = 0;
    let report = LeakCheck::new()
        .grace(Duration::from_millis(100))
        .run(async {
            let outer = async move {
                let _ = line_tx.send((tokio::spawn(parked()), line!()).1);
                parked().await;
            };
            outer_line = (tokio::spawn(outer), line!()).1;
            inner_line = line_rx.await.expect("the outer task sends its spawn line");
        })
        .await
        .expect_err("both tasks leak");
    let mut expected = [outer_line, inner_line];
    expected.sort_unstable();
    assert_eq!(lines(&report), expected, "{report}");
    let tasks = report.snapshot().tasks();
    assert_eq!(tasks.len(), 2, "{report}");
    let outer = find_at(tasks, outer_line);
    let inner = find_at(tasks, inner_line);
    assert_eq!(inner.parent(), Some(outer.id()), "{report}");
    assert_eq!(outer.parent(), None, "{report}");
}

/// test → task → task where the middle task returns: only the innermost is reported, still with
/// its own site and the (finished) middle task as its parent.
#[taskprof::test]
async fn leak_two_spawns_deep_middle_finished() {
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (line_tx, line_rx) = oneshot::channel();
    let mut middle_line = 0;
    let mut middle_id = 0;
    let report = LeakCheck::new()
        .grace(Duration::from_millis(100))
        .run(async {
            let middle = async move {
                let _ = go_rx.await;
                let _ = line_tx.send((tokio::spawn(parked()), line!()).1);
            };
            middle_line = (tokio::spawn(middle), line!()).1;
            // The middle task's id, while it is alive.
            middle_id = wait_for("the middle task", |s| {
                spawned_at(s, FILE, middle_line).first().map(|t| t.id())
            })
            .await;
            go_tx.send(()).expect("the middle task waits");
            line_rx.await.expect("the middle task sends the inner line")
        })
        .await;
    let inner_line = match &report {
        Ok(line) => panic!("the inner task (line {line}) should leak"),
        Err(report) => lines(report),
    };
    let report = report.expect_err("checked above");
    assert_eq!(report.count(), 1, "{report}");
    let inner = &report.snapshot().tasks()[0];
    assert_eq!(inner.parent(), Some(middle_id), "{report}");
    assert_ne!(inner_line, [middle_line]);
    assert!(
        report
            .to_string()
            .starts_with(&format!("leaked tasks: 1\n1 @ {FILE}:{}:", inner_line[0])),
        "{report}"
    );
}

/// Spawns a parked task from inside a `#[track]` function.
#[taskprof::track]
async fn starts_a_worker() -> u32 {
    tokio::spawn(parked());
    7
}

/// A leak started inside a `#[track]` fn that the body awaits directly fails the test too: the
/// fn's frame, a root task of its own (no tracked task polls the body), joins the test's scope.
#[taskprof::test(grace = "100ms")]
#[should_panic(expected = "leaked tasks: 1\n1 @ tests/leaks_semantics.rs:")]
async fn leak_inside_a_track_fn_awaited_by_the_body() {
    assert_eq!(starts_a_worker().await, 7);
}

fn find_at(tasks: &[TaskInfo], line: u32) -> &TaskInfo {
    tasks
        .iter()
        .find(|t| t.spawn_site().is_some_and(|s| s.line() == line))
        .unwrap_or_else(|| panic!("no task spawned at line {line}"))
}

// ---- ignore rules -----------------------------------------------------------------------------

#[taskprof::test(grace = "100ms", ignore = ["leaks_semantics::wait_forever"])]
async fn ignore_fn_argument() {
    tokio::spawn(wait_forever());
}

/// The site is this file's line of the `tokio::spawn` below; the assertion keeps them in step.
#[taskprof::test(grace = "100ms", ignore = ["leaks_semantics.rs:200"])]
async fn ignore_site_argument() {
    let line = (tokio::spawn(parked()), line!()).1;
    assert_eq!(line, 200, "update the `ignore` site of this test");
}

/// Without the ignore rule the same leak is reported; with it the check passes at once.
#[taskprof::test]
async fn ignore_fn_site_and_closure() {
    /// Spawns three leaks: one in `wait_forever`, one parked at a known line, one labelled.
    async fn leaks(site_line: &mut u32) {
        taskprof::spawn(wait_forever());
        *site_line = (taskprof::spawn(parked()), line!()).1;
        taskprof::spawn(taskprof::labels::with(&[("role", "daemon")], parked()));
    }
    let grace = Duration::from_millis(100);
    let mut site_line = 0;
    let report = LeakCheck::new()
        .grace(grace)
        .run(leaks(&mut site_line))
        .await
        .expect_err("three leaks");
    assert_eq!(report.count(), 3, "{report}");

    let site = format!(
        "{}:{site_line}",
        FILE.rsplit('/').next().expect("a file name")
    );
    let check = || {
        LeakCheck::new()
            .grace(grace)
            .ignore_fn("leaks_semantics::wait_forever")
            .ignore_site(&site)
    };
    let mut line = 0;
    let report = check()
        .run(leaks(&mut line))
        .await
        .expect_err("the labelled task is not ignored");
    assert_eq!(report.count(), 1, "{report}");
    assert_eq!(
        report.snapshot().tasks()[0].labels().get("role"),
        Some("daemon")
    );

    check()
        .ignore(|t| t.labels().get("role") == Some("daemon"))
        .run(leaks(&mut line))
        .await
        .expect("every leak is ignored");
    // A whole file (no line) and a full path ignore everything spawned here.
    LeakCheck::new()
        .grace(grace)
        .ignore_site(FILE)
        .run(leaks(&mut line))
        .await
        .expect("every leak was spawned in this file");
}

// ---- panics -----------------------------------------------------------------------------------

/// The body panics with a task still alive: the test fails with the panic, not a leak report.
#[taskprof::test(grace = "100ms")]
#[should_panic(expected = "boom")]
async fn panic_is_reported_not_the_leak() {
    tokio::spawn(parked());
    panic!("boom");
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2, grace = "100ms")]
#[should_panic(expected = "boom (multi-thread)")]
async fn panic_is_reported_not_the_leak_multi_thread() {
    tokio::spawn(parked());
    tokio::task::yield_now().await;
    panic!("boom (multi-thread)");
}

/// The exact panic payload: the body's message, nothing of a leak report.
#[test]
fn panic_payload_is_the_bodys() {
    for test in [
        panic_is_reported_not_the_leak as fn(),
        panic_is_reported_not_the_leak_multi_thread,
    ] {
        let payload = std::panic::catch_unwind(test).expect_err("the test panics");
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .expect("a string payload");
        assert!(message.starts_with("boom"), "{message:?}");
        assert!(!message.contains("leaked tasks"), "{message:?}");
    }
}

// ---- spawn_blocking ---------------------------------------------------------------------------

/// A task spawned from inside a `spawn_blocking` closure belongs to the check's scope.
#[taskprof::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_blocking_inherits_the_scope() {
    let mut blocking_line = 0;
    let mut inner_line = 0;
    let report = LeakCheck::new()
        .grace(Duration::from_millis(100))
        .run(async {
            let (handle, line) = (
                tokio::task::spawn_blocking(|| (tokio::spawn(parked()), line!()).1),
                line!(),
            );
            blocking_line = line;
            inner_line = handle.await.expect("the closure returns");
        })
        .await
        .expect_err("the task spawned by the blocking closure leaks");
    assert_eq!(lines(&report), [inner_line], "{report}");
    let task = &report.snapshot().tasks()[0];
    assert!(task.parent().is_some(), "its parent is the blocking task");
    assert!(!task.is_blocking());
    assert_ne!(blocking_line, inner_line);
}

#[taskprof::test]
#[should_panic(expected = "leaked tasks: 1\n1 @ tests/leaks_semantics.rs:")]
async fn spawn_blocking_leak_fails_the_test() {
    tokio::task::spawn_blocking(|| tokio::spawn(parked()))
        .await
        .expect("the closure returns");
}

// ---- lost wakers ------------------------------------------------------------------------------

/// A task nobody can wake is reported at once, without waiting out the (hour-long) grace.
#[taskprof::test]
async fn lost_waker_is_reported_without_waiting() {
    let mut line = 0;
    let report = LeakCheck::new()
        .grace(Duration::from_secs(3600))
        .run(async {
            line = (tokio::spawn(NeverWakes), line!()).1;
        })
        .await
        .expect_err("the task is lost");
    assert_eq!(lines(&report), [line]);
    assert!(report.snapshot().tasks()[0].lost_waker(), "{report}");
    let text = report.to_string();
    assert!(
        text.starts_with(&format!("leaked tasks: 1\n1 @ {FILE}:{line}:")),
        "{text}"
    );
    let head = text.lines().nth(1).expect("a group line");
    assert!(head.contains(" # lost waker"), "{text}");
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2, grace = "3600s")]
#[should_panic(expected = "# lost waker")]
async fn lost_waker_fails_the_test_without_waiting() {
    tokio::spawn(NeverWakes);
}

/// Tasks parked on a live channel, a timer or a TCP read keep a waker somewhere: they leak, but
/// are not flagged lost (so the check waits out the grace for them).
#[taskprof::test]
async fn live_wakers_are_not_lost() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
    let (mut server, _) = listener.accept().await?;
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    let mut at = [0; 3];
    let report = LeakCheck::new()
        .grace(Duration::from_millis(200))
        .run(async {
            at[0] = (tokio::spawn(async move { rx.recv().await }), line!()).1;
            let hour = Duration::from_secs(3600);
            at[1] = (tokio::spawn(tokio::time::sleep(hour)), line!()).1;
            let read = async move {
                let mut buf = [0u8; 16];
                // The client never writes: pending until the test drops the runtime.
                let _ = server.read(&mut buf).await;
            };
            at[2] = (tokio::spawn(read), line!()).1;
        })
        .await
        .expect_err("all three outlive the grace");
    let mut expected = at.to_vec();
    expected.sort_unstable();
    assert_eq!(lines(&report), expected, "{report}");
    for task in report.snapshot().tasks() {
        assert!(!task.lost_waker(), "{task}");
    }
    assert!(!report.to_string().contains("lost waker"), "{report}");
    drop((tx, client));
    Ok(())
}

// ---- overhead (a measurement, not an assertion) -----------------------------------------------

/// Prints the wall time a clean `#[taskprof::test]` body adds over a plain `#[tokio::test]` body:
/// the same runtime, built the same way, then `run_test` (what the macro calls) versus
/// `block_on`. Run with `cargo test --release -p taskprof-tests --test leaks_semantics --
/// --ignored --nocapture overhead`.
#[test]
#[ignore = "a measurement: prints numbers, asserts nothing"]
fn overhead_of_a_clean_test_body() {
    const N: u32 = 200;
    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }
    async fn trivial() -> u32 {
        std::hint::black_box(1)
    }
    async fn one_task() -> u32 {
        taskprof::spawn(async { std::hint::black_box(1) })
            .await
            .expect("the task completes")
    }
    async fn one_untracked_task() -> u32 {
        tokio::spawn(async { std::hint::black_box(1) })
            .await
            .expect("the task completes")
    }
    fn mean(mut run: impl FnMut() -> u32) -> Duration {
        // Warm up (thread-locals, registry, allocator).
        for _ in 0..20 {
            std::hint::black_box(run());
        }
        let start = Instant::now();
        for _ in 0..N {
            std::hint::black_box(run());
        }
        start.elapsed() / N
    }
    /// A name, the `#[taskprof::test]` side and the `#[tokio::test]` side.
    type Case = (&'static str, fn() -> u32, fn() -> u32);
    let cases: [Case; 2] = [
        (
            "trivial body",
            || taskprof::__private::run_test(rt(), LeakCheck::new(), trivial()),
            || rt().block_on(trivial()),
        ),
        (
            "body spawning and joining one task",
            || taskprof::__private::run_test(rt(), LeakCheck::new(), one_task()),
            || rt().block_on(one_untracked_task()),
        ),
    ];
    for (name, checked, plain) in cases {
        // Interleave the two sides a few times so drift hits both.
        let mut with = Duration::ZERO;
        let mut without = Duration::ZERO;
        for _ in 0..5 {
            with += mean(checked);
            without += mean(plain);
        }
        let (with, without) = (with / 5, without / 5);
        // Signed: on a noisy machine the checked side can come out faster.
        let extra_us = (with.as_secs_f64() - without.as_secs_f64()) * 1e6;
        println!(
            "{name}: #[taskprof::test] {with:?}, #[tokio::test] {without:?}, extra \
             {extra_us:+.2}µs per test (mean of {} runs each)",
            N * 5
        );
    }
}

// ---- tasks that never ran --------------------------------------------------------------------

/// A task is listed in snapshots from its first suspension, but inside a leak check it is listed
/// from its spawn: one that never got polled is still reported, with 0 polls.
#[test]
fn never_polled_task_is_reported() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let report = rt
        .block_on(async {
            LeakCheck::new()
                .grace(Duration::ZERO)
                .run(async {
                    // Nothing else runs on this thread before the check looks.
                    (line!(), taskprof::spawn(parked())).0
                })
                .await
        })
        .expect_err("the spawned task is alive");
    let task = &report.snapshot().tasks()[0];
    assert_eq!(report.count(), 1, "{report}");
    assert_eq!(task.polls(), 0, "{report}");
    assert!(
        !task.lost_waker(),
        "never polled is not a lost waker: {report}"
    );
    assert_eq!(lines(&report).len(), 1);
}
