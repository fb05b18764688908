//! `Snapshot::diff`: groups that grew show `+N` (largest growth first), groups that shrank show
//! `-N` after them, and the text reads `task profile diff: total +N` / `+N @ site`.
//!
//! The tests hold [`serial`], so the only tracked tasks alive are their own and totals are exact.
#![forbid(unsafe_code)]

use taskprof::{Diff, DiffGroup, Snapshot};
use taskprof_tests::{
    assert_site, column_of, frame_line, is_at, multi_thread, serial, spawned_at, wait_for,
};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

const SRC: &str = include_str!("diff.rs");
const FILE: &str = file!();

/// Parks until the broadcast closes.
#[taskprof::track]
async fn diff_park(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

/// `(delta, spawn line)` of each group of `diff`.
fn deltas(diff: &Diff) -> Vec<(i64, u32)> {
    diff.groups()
        .iter()
        .map(|g| (g.delta(), g.spawn_site().map_or(0, |l| l.line())))
        .collect()
}

/// Waits until exactly `n` tasks spawned at each of `lines` are parked in `diff_park`.
async fn parked(lines: &[(u32, usize)]) -> Snapshot {
    wait_for("tasks parked in diff_park", |s| {
        lines
            .iter()
            .all(|(line, n)| {
                let at = spawned_at(s, FILE, *line);
                at.len() == *n && at.iter().all(|t| t.stack().len() == 1)
            })
            .then(|| s.clone())
    })
    .await
}

/// The group header and frame lines of `g` in the diff text.
fn group_lines(g: &DiffGroup) -> Vec<String> {
    let site = g.spawn_site().expect("spawn site");
    let mut lines = vec![format!(
        "{:+} @ {}:{}:{}",
        g.delta(),
        site.file(),
        site.line(),
        site.column()
    )];
    lines.extend(g.stack().iter().map(frame_line));
    lines.push(String::new());
    lines
}

/// Asserts that the text of `diff` is its total line, then each group in order.
#[track_caller]
fn assert_text(diff: &Diff, total: &str) {
    let text = diff.to_string();
    let mut expected = vec![format!("task profile diff: total {total}")];
    for g in diff.groups() {
        expected.extend(group_lines(g));
    }
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got, expected, "diff text:\n{text}");
}

#[test]
fn diff_shows_growth_largest_first_then_shrinkage() {
    let _serial = serial();
    multi_thread(2).block_on(async {
        let (tx_a, rx_a) = broadcast::channel::<()>(1);
        let (tx_b, rx_b) = broadcast::channel::<()>(1);
        let base = taskprof::snapshot();
        assert_eq!(base.total(), 0, "nothing else lives:\n{base}");

        let (a, mut handles_a) = (line!(), spawn_here(3, &rx_a));
        let (b, handles_b) = (line!(), spawn_here(5, &rx_b));
        let grown = parked(&[(a, 3), (b, 5)]).await;
        let diff = grown.diff(&base);
        assert_eq!(diff.total(), 8);
        assert_eq!(deltas(&diff), [(5, b), (3, a)]);
        for g in diff.groups() {
            let line = g.spawn_site().map_or(0, |l| l.line());
            assert_site(
                g.spawn_site(),
                FILE,
                line,
                column_of(SRC, line, "spawn_here("),
            );
            assert_eq!(g.stack().len(), 1);
            assert_eq!(g.stack()[0].label(), "diff::diff_park");
            assert_eq!(g.stack()[0].awaiting(), Some("rx.recv()"));
            assert!(g.labels().is_empty());
        }
        assert_text(&diff, "+8");
        let text = diff.to_string();
        assert!(
            text.starts_with("task profile diff: total +8\n+5 @ "),
            "{text}"
        );

        // The same snapshot twice: nothing changed.
        let same = grown.diff(&grown);
        assert_eq!(same.total(), 0);
        assert!(same.groups().is_empty());
        assert_eq!(same.to_string(), "task profile diff: total +0\n");

        // B's tasks finish: -5.
        drop(tx_b);
        for h in handles_b {
            h.await.expect("B task");
        }
        let shrunk = parked(&[(a, 3), (b, 0)]).await;
        let diff = shrunk.diff(&grown);
        assert_eq!(diff.total(), -5);
        assert_eq!(deltas(&diff), [(-5, b)]);
        assert_text(&diff, "-5");

        // Two new groups of 2 and A's 3 tasks finish: growth first (ties by site), then -3.
        let (tx_c, rx_c) = broadcast::channel::<()>(1);
        let (c, handles_c) = (line!(), spawn_here(2, &rx_c));
        let (d, handles_d) = (line!(), spawn_here(2, &rx_c));
        drop(tx_a);
        for h in handles_a.drain(..) {
            h.await.expect("A task");
        }
        let mixed = parked(&[(a, 0), (c, 2), (d, 2)]).await;
        let diff = mixed.diff(&shrunk);
        assert_eq!(diff.total(), 1);
        assert_eq!(deltas(&diff), [(2, c), (2, d), (-3, a)]);
        assert_text(&diff, "+1");

        // Against the base: only what is alive now.
        let diff = mixed.diff(&base);
        assert_eq!(deltas(&diff), [(2, c), (2, d)]);
        assert_text(&diff, "+4");

        drop(tx_c);
        for h in handles_c.into_iter().chain(handles_d) {
            h.await.expect("C/D task");
        }
        let end = taskprof::snapshot();
        let diff = end.diff(&mixed);
        assert_eq!(diff.total(), -4);
        assert_eq!(deltas(&diff), [(-2, c), (-2, d)]);
        assert!(end.diff(&base).groups().is_empty());
    });
}

/// Spawns `n` tasks parked in `diff_park`. `#[track_caller]` passes the caller's location on
/// to `taskprof::spawn`, so the spawn site is the line that calls `spawn_here`.
#[track_caller]
fn spawn_here(n: usize, rx: &broadcast::Receiver<()>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(taskprof::spawn(diff_park(rx.resubscribe())));
    }
    handles
}

#[taskprof::track]
async fn stage_one(rx: oneshot::Receiver<()>, next: oneshot::Receiver<()>) {
    let _ = rx.await;
    stage_two(next).await;
}

#[taskprof::track]
async fn stage_two(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[test]
fn tasks_moving_to_another_await_show_plus_and_minus() {
    let _serial = serial();
    multi_thread(2).block_on(async {
        let mut firsts = Vec::new();
        let mut seconds = Vec::new();
        let mut handles = Vec::new();
        let mut line = 0;
        for _ in 0..4 {
            let (first_tx, first_rx) = oneshot::channel();
            let (second_tx, second_rx) = oneshot::channel();
            let (l, h) = (line!(), taskprof::spawn(stage_one(first_rx, second_rx)));
            line = l;
            firsts.push(first_tx);
            seconds.push(second_tx);
            handles.push(h);
        }
        let at_stage = |label: &'static str| {
            move |s: &Snapshot| {
                let mine = spawned_at(s, FILE, line);
                let moved =
                    |t: &&taskprof::TaskInfo| t.stack().first().is_some_and(|f| f.label() == label);
                (mine.len() == 4 && mine.iter().all(moved)).then(|| s.clone())
            }
        };
        let before = wait_for("4 tasks in stage_one", at_stage("diff::stage_one")).await;
        for tx in firsts {
            tx.send(()).expect("stage one waits");
        }
        let after = wait_for("4 tasks in stage_two", at_stage("diff::stage_two")).await;
        let diff = after.diff(&before);
        assert_eq!(diff.total(), 0);
        let groups: Vec<(i64, &str)> = diff
            .groups()
            .iter()
            .filter(|g| is_at(g.spawn_site(), FILE, line))
            .map(|g| (g.delta(), g.stack()[0].label()))
            .collect();
        assert_eq!(groups, [(4, "diff::stage_two"), (-4, "diff::stage_one")]);
        assert_eq!(diff.groups().len(), 2, "{diff}");
        assert_text(&diff, "+0");
        for tx in seconds {
            tx.send(()).expect("stage two waits");
        }
        for h in handles {
            h.await.expect("stages");
        }
    });
}
