//! `LeakCheck::global()` + `verify()`: goleak's `VerifyNone(IgnoreCurrent())`. It sees every
//! tracked task of the process, so it gets a binary with a single test.
#![forbid(unsafe_code)]

use std::time::Duration;

use taskprof::LeakCheck;
use tokio::sync::oneshot;

const FILE: &str = file!();

/// Never completes, but can be woken: it owns both ends of a channel.
async fn parked() {
    let (tx, rx) = oneshot::channel::<()>();
    let _tx = tx;
    let _ = rx.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_check_ignores_tasks_alive_at_its_creation() {
    let grace = Duration::from_millis(100);
    // Alive before the check is created: part of its baseline.
    let (before, before_line) = (taskprof::spawn(parked()), line!());

    let check = LeakCheck::global().grace(grace);
    let (leaked, leaked_line) = (taskprof::spawn(parked()), line!());
    let finished = taskprof::spawn(tokio::time::sleep(Duration::from_millis(10)));
    let report = check.verify().await.expect_err("one task leaks");
    assert!(finished.is_finished(), "the sleeper ended within the grace");
    assert_eq!(report.count(), 1, "{report}");
    let site = report.snapshot().tasks()[0]
        .spawn_site()
        .expect("a spawn site");
    assert_eq!((site.file(), site.line()), (FILE, leaked_line), "{report}");
    assert!(
        report
            .to_string()
            .starts_with(&format!("leaked tasks: 1\n1 @ {FILE}:{leaked_line}:")),
        "{report}"
    );

    // Without a baseline (`new().verify()`), every live tracked task counts, old ones too.
    let report = LeakCheck::new()
        .grace(Duration::ZERO)
        .verify()
        .await
        .expect_err("two tasks are alive");
    let mut lines: Vec<u32> = report
        .snapshot()
        .tasks()
        .iter()
        .map(|t| t.spawn_site().expect("a spawn site").line())
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, [before_line, leaked_line], "{report}");

    // Clean: the leaked task is gone, the old one is in the baseline of a new check.
    leaked.abort();
    let _ = leaked.await;
    let check = LeakCheck::global().grace(grace);
    let joined = taskprof::spawn(async { 7 })
        .await
        .expect("the task completes");
    assert_eq!(joined, 7);
    taskprof::spawn(tokio::time::sleep(Duration::from_millis(10)));
    check
        .verify()
        .await
        .expect("nothing leaked since the check was created");

    // Ignore rules apply to global checks too.
    let check = LeakCheck::global().grace(grace).ignore_site(FILE);
    let ignored = taskprof::spawn(parked());
    check
        .verify()
        .await
        .expect("tasks spawned here are ignored");

    before.abort();
    ignored.abort();
}
