//! Grouped profiles of tasks parked at known lines: counts, spawn sites, frames, ordering and
//! the text formats (`{snapshot}` grouped, `{snapshot:#}` per task).
//!
//! Lines come from `line!()` written in the same expression as the spawn call or `.await` they
//! name; columns come from this file's own source, so every asserted `file:line:col` is exact.
#![forbid(unsafe_code)]

use taskprof::{Group, Snapshot, State, TaskInfo};
use taskprof_tests::{
    Line, assert_has_line, assert_site, column_of, frame_line, is_age, is_at, spawned_at,
    task_block, wait_for,
};
use tokio::sync::{broadcast, oneshot};

const SRC: &str = include_str!("groups.rs");
const FILE: &str = file!();

/// The groups of `snap` spawned at `FILE:line`.
fn groups_at(snap: &Snapshot, line: u32) -> Vec<&Group> {
    snap.groups()
        .iter()
        .filter(|g| is_at(g.spawn_site(), FILE, line))
        .collect()
}

/// Index of the line equal to `line` in `text`, failing with the text.
#[track_caller]
fn line_index(text: &str, line: &str) -> usize {
    text.lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{text}"))
}

/// Asserts the grouped text has the header `header` directly followed by `frames`, then a blank
/// line.
#[track_caller]
fn assert_group_text(text: &str, header: &str, frames: &[String]) {
    let at = line_index(text, header);
    let lines: Vec<&str> = text.lines().skip(at + 1).take(frames.len() + 1).collect();
    let mut expected: Vec<&str> = frames.iter().map(String::as_str).collect();
    expected.push("");
    assert_eq!(lines, expected, "frames under {header:?} in:\n{text}");
}

/// Asserts the per-task block of `task` in `per_task`: header with state and age, frames, name
/// and polls, labels, and the spawn line.
#[track_caller]
fn assert_task_block(per_task: &str, task: &TaskInfo, spawned: &str) {
    let block = task_block(per_task, task.id())
        .unwrap_or_else(|| panic!("no block for task {} in:\n{per_task}", task.id()));
    let head = block[0];
    let age = head
        .strip_prefix(&format!("task {} [idle, ", task.id()))
        .and_then(|rest| rest.strip_suffix("]:"))
        .unwrap_or_else(|| panic!("bad task header {head:?}"));
    assert!(is_age(age), "bad age {age:?} in {head:?}");
    let mut expected: Vec<String> = task.stack().iter().map(frame_line).collect();
    expected.push(format!(
        "name: {}, polls: {}",
        task.name().escape_debug(),
        task.polls()
    ));
    if !task.labels().is_empty() {
        expected.push(format!("labels: {}", task.labels()));
    }
    expected.push(spawned.to_owned());
    assert_eq!(block[1..], expected[..], "block of task {}", task.id());
}

/// Parks until `rx` fires; returns the line of its `.await`.
#[taskprof::track]
async fn park_one(rx: oneshot::Receiver<()>) -> u32 {
    let (line, _) = (line!(), rx.await);
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_parked_at_a_known_line() {
    let (tx, rx) = oneshot::channel();
    let (spawn_line, handle) = (line!(), taskprof::spawn(park_one(rx)));
    let snap = wait_for("the task to park in park_one", |s| {
        let mine = spawned_at(s, FILE, spawn_line);
        (mine.len() == 1 && !mine[0].stack().is_empty()).then(|| s.clone())
    })
    .await;
    tx.send(()).expect("task is waiting");
    let await_line = handle.await.expect("park_one");

    let spawn_col = column_of(SRC, spawn_line, "taskprof::spawn(");
    let await_col = column_of(SRC, await_line, "rx.await");
    let task = spawned_at(&snap, FILE, spawn_line)[0];
    assert_site(task.spawn_site(), FILE, spawn_line, spawn_col);
    assert_eq!(task.parent(), None);
    assert_eq!(task.state(), State::Idle);
    assert!(task.polls() >= 1);
    assert!(!task.is_blocking());
    assert!(task.labels().is_empty());
    let stack = task.stack();
    assert_eq!(stack.len(), 1, "{stack:?}");
    assert_eq!(stack[0].label(), "groups::park_one");
    assert_eq!(stack[0].file(), FILE);
    assert_eq!(stack[0].line(), await_line);
    assert_eq!(stack[0].column(), await_col);
    assert_eq!(stack[0].awaiting(), Some("rx"));
    assert_eq!(stack[0].depth(), 0);

    let groups = groups_at(&snap, spawn_line);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].count(), 1);
    assert_eq!(groups[0].stack(), stack);
    assert!(groups[0].labels().is_empty());

    let text = format!("{snap}");
    assert_eq!(
        text.lines().next(),
        Some(format!("task profile: total {}", snap.total()).as_str())
    );
    assert_group_text(
        &text,
        &format!("1 @ {FILE}:{spawn_line}:{spawn_col}"),
        &[format!(
            "#\tgroups::park_one\t{FILE}:{await_line}:{await_col}\tawait rx"
        )],
    );

    let per_task = format!("{snap:#}");
    assert_eq!(
        per_task.lines().next(),
        Some(format!("task profile: total {}", snap.total()).as_str())
    );
    assert_task_block(
        &per_task,
        task,
        &format!("spawned at {FILE}:{spawn_line}:{spawn_col}"),
    );
}

static SPAWN_37_AT: Line = Line::new();

/// Parks until the broadcast closes; returns the line of its `.await`.
#[taskprof::track]
async fn park_thirty_seven(mut rx: broadcast::Receiver<()>) -> u32 {
    let (line, _) = (line!(), rx.recv().await);
    line
}

/// Spawns 37 parked tasks with `tokio::spawn` (tracked by the macro) and waits for them.
#[taskprof::track]
async fn spawn_thirty_seven(rx: broadcast::Receiver<()>) -> Vec<u32> {
    let mut handles = Vec::new();
    for _ in 0..37 {
        let (line, handle) = (line!(), tokio::spawn(park_thirty_seven(rx.resubscribe())));
        SPAWN_37_AT.set(line);
        handles.push(handle);
    }
    let mut lines = Vec::new();
    for handle in handles {
        lines.push(handle.await.expect("park_thirty_seven"));
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_seven_tasks_spawned_by_a_tracked_task() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let (parent_line, parent) = (line!(), taskprof::spawn(spawn_thirty_seven(rx)));
    let snap = wait_for("37 tasks parked in park_thirty_seven", |s| {
        let parked = s
            .tasks()
            .iter()
            .filter(|t| t.stack().first().map(|f| f.label()) == Some("groups::park_thirty_seven"))
            .count();
        let parent_parked = spawned_at(s, FILE, parent_line)
            .first()
            .is_some_and(|t| !t.stack().is_empty());
        (parked == 37 && parent_parked).then(|| s.clone())
    })
    .await;
    drop(tx);
    let await_lines = parent.await.expect("spawn_thirty_seven");
    assert_eq!(await_lines.len(), 37);
    let await_line = await_lines[0];
    assert!(await_lines.iter().all(|l| *l == await_line));
    let await_col = column_of(SRC, await_line, "recv()");
    let spawn_line = SPAWN_37_AT.get();
    let spawn_col = column_of(SRC, spawn_line, "tokio::spawn(");

    let parent = spawned_at(&snap, FILE, parent_line)[0];
    let parent_stack = parent.stack();
    assert_eq!(parent_stack.len(), 1, "{parent_stack:?}");
    assert_eq!(parent_stack[0].label(), "groups::spawn_thirty_seven");
    assert_eq!(parent_stack[0].awaiting(), Some("handle"));

    let children = spawned_at(&snap, FILE, spawn_line);
    assert_eq!(children.len(), 37);
    for child in &children {
        assert_site(child.spawn_site(), FILE, spawn_line, spawn_col);
        assert_eq!(child.parent(), Some(parent.id()));
        assert_eq!(child.stack().len(), 1);
        let frame = &child.stack()[0];
        assert_eq!(frame.label(), "groups::park_thirty_seven");
        assert_eq!(
            (frame.file(), frame.line(), frame.column()),
            (FILE, await_line, await_col)
        );
        assert_eq!(frame.awaiting(), Some("rx.recv()"));
    }

    let groups = groups_at(&snap, spawn_line);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].count(), 37);
    assert_eq!(groups[0].stack(), children[0].stack());

    let text = format!("{snap}");
    assert_eq!(
        text.lines().next(),
        Some(format!("task profile: total {}", snap.total()).as_str())
    );
    assert_group_text(
        &text,
        &format!("37 @ {FILE}:{spawn_line}:{spawn_col}"),
        &[format!(
            "#\tgroups::park_thirty_seven\t{FILE}:{await_line}:{await_col}\tawait rx.recv()"
        )],
    );

    let per_task = format!("{snap:#}");
    for child in &children {
        assert_task_block(
            &per_task,
            child,
            &format!(
                "spawned at {FILE}:{spawn_line}:{spawn_col} by task {}",
                parent.id()
            ),
        );
    }
}

/// The inner frame of the 1,000 tasks: returns the line of its `.await`.
#[taskprof::track]
async fn thousand_inner(mut rx: broadcast::Receiver<()>) -> u32 {
    let (line, _) = (line!(), rx.recv().await);
    line
}

/// The outer frame of the 1,000 tasks: returns its own and the inner `.await` lines.
#[taskprof::track]
async fn thousand_outer(rx: broadcast::Receiver<()>) -> (u32, u32) {
    let (line, inner) = (line!(), thousand_inner(rx).await);
    (line, inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_in_one_group_with_two_frames() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let mut handles = Vec::new();
    let mut spawn_line = 0;
    for _ in 0..1000 {
        let (line, handle) = (line!(), taskprof::spawn(thousand_outer(rx.resubscribe())));
        spawn_line = line;
        handles.push(handle);
    }
    drop(rx);
    let snap = wait_for("1000 tasks parked in thousand_inner", |s| {
        groups_at(s, spawn_line)
            .iter()
            .any(|g| g.count() == 1000 && g.stack().len() == 2)
            .then(|| s.clone())
    })
    .await;
    drop(tx);
    let mut lines = Vec::new();
    for handle in handles {
        lines.push(handle.await.expect("thousand_outer"));
    }
    let (outer_line, inner_line) = lines[0];
    assert!(lines.iter().all(|l| *l == (outer_line, inner_line)));
    let spawn_col = column_of(SRC, spawn_line, "taskprof::spawn(");
    let inner_col = column_of(SRC, inner_line, "recv()");
    let outer_col = column_of(SRC, outer_line, "thousand_inner(rx)");

    let groups = groups_at(&snap, spawn_line);
    assert_eq!(groups.len(), 1, "{groups:?}");
    let group = groups[0];
    assert_eq!(group.count(), 1000);
    assert_site(group.spawn_site(), FILE, spawn_line, spawn_col);
    assert!(group.labels().is_empty());
    let stack = group.stack();
    assert_eq!(stack.len(), 2);
    assert_eq!(stack[0].label(), "groups::thousand_inner");
    assert_eq!(
        (stack[0].file(), stack[0].line(), stack[0].column()),
        (FILE, inner_line, inner_col)
    );
    assert_eq!(stack[0].awaiting(), Some("rx.recv()"));
    assert_eq!(stack[0].depth(), 1);
    assert_eq!(stack[1].label(), "groups::thousand_outer");
    assert_eq!(
        (stack[1].file(), stack[1].line(), stack[1].column()),
        (FILE, outer_line, outer_col)
    );
    assert_eq!(stack[1].awaiting(), Some("thousand_inner(rx)"));
    assert_eq!(stack[1].depth(), 0);

    let mine = spawned_at(&snap, FILE, spawn_line);
    assert_eq!(mine.len(), 1000);
    let mut ids: Vec<u64> = mine.iter().map(|t| t.id()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "ids are unique and tasks sorted by id");
    assert!(
        mine.iter()
            .all(|t| t.stack() == stack && t.parent().is_none())
    );

    let text = format!("{snap}");
    assert_eq!(
        text.lines().next(),
        Some(format!("task profile: total {}", snap.total()).as_str())
    );
    assert_group_text(
        &text,
        &format!("1000 @ {FILE}:{spawn_line}:{spawn_col}"),
        &[
            format!("#\tgroups::thousand_inner\t{FILE}:{inner_line}:{inner_col}\tawait rx.recv()"),
            format!(
                "#\tgroups::thousand_outer\t{FILE}:{outer_line}:{outer_col}\tawait thousand_inner(rx)"
            ),
        ],
    );
    // Exactly one group line for the site: the 1,000 tasks are not split.
    let header_prefix = format!("@ {FILE}:{spawn_line}:");
    assert_eq!(
        text.lines().filter(|l| l.contains(&header_prefix)).count(),
        1
    );
}

/// Parks until the broadcast closes.
#[taskprof::track]
async fn sort_park(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

/// Spawns `sort_park` under `labels`; `#[track_caller]` makes the caller's line the spawn site.
#[track_caller]
fn spawn_labelled(
    labels: &'static [(&'static str, &'static str)],
    rx: broadcast::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    taskprof::spawn(taskprof::labels::with(labels, sort_park(rx)))
}

/// The sort key of a group, as documented: count descending, then spawn site, stack, labels.
type SortKey<'a> = (
    std::cmp::Reverse<usize>,
    Option<(&'a str, u32, u32)>,
    &'a [taskprof::Frame],
    &'a taskprof::labels::Labels,
);

fn sort_key(g: &Group) -> SortKey<'_> {
    (
        std::cmp::Reverse(g.count()),
        g.spawn_site().map(|l| (l.file(), l.line(), l.column())),
        g.stack(),
        g.labels(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_sorted_by_count_then_key() {
    const LABELS: &[(&str, &str)] = &[("test", "sorted")];
    let (tx, rx) = broadcast::channel::<()>(1);
    let mut handles = Vec::new();
    let (mut first, mut big, mut last) = (0, 0, 0);
    for _ in 0..2 {
        let (line, h) = (line!(), spawn_labelled(LABELS, rx.resubscribe()));
        first = line;
        handles.push(h);
    }
    for _ in 0..5 {
        let (line, h) = (line!(), spawn_labelled(LABELS, rx.resubscribe()));
        big = line;
        handles.push(h);
    }
    for _ in 0..2 {
        let (line, h) = (line!(), spawn_labelled(LABELS, rx.resubscribe()));
        last = line;
        handles.push(h);
    }
    assert!(first < big && big < last);
    drop(rx);
    let snap = wait_for("9 labelled tasks parked in sort_park", |s| {
        let parked = s
            .tasks()
            .iter()
            .filter(|t| t.labels().get("test") == Some("sorted") && t.stack().len() == 1)
            .count();
        (parked == 9).then(|| s.clone())
    })
    .await;
    drop(tx);
    for h in handles {
        h.await.expect("sort_park");
    }

    // The whole profile is sorted, whatever other tests are doing.
    let keys: Vec<SortKey<'_>> = snap.groups().iter().map(sort_key).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "groups out of order:\n{snap}"
    );
    assert_eq!(
        snap.groups().iter().map(Group::count).sum::<usize>(),
        snap.total()
    );

    // Ours: the 5 first, then the two groups of 2 by spawn line.
    let mine: Vec<(usize, u32)> = snap
        .groups()
        .iter()
        .filter(|g| g.labels().get("test") == Some("sorted"))
        .map(|g| (g.count(), g.spawn_site().map_or(0, |l| l.line())))
        .collect();
    assert_eq!(mine, [(5, big), (2, first), (2, last)]);

    let text = format!("{snap}");
    let header = |count: usize, line: u32| {
        let col = column_of(SRC, line, "spawn_labelled(");
        format!("{count} @ {FILE}:{line}:{col} # labels: {{\"test\":\"sorted\"}}")
    };
    let at: Vec<usize> = [(5, big), (2, first), (2, last)]
        .into_iter()
        .map(|(count, line)| line_index(&text, &header(count, line)))
        .collect();
    assert!(at[0] < at[1] && at[1] < at[2], "{at:?} in:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_labels_are_escaped_in_text() {
    const LABELS: &[(&str, &str)] = &[("we\"ird", "two\nlines\tand\\tab")];
    let (tx, rx) = broadcast::channel::<()>(1);
    let (line, handle) = (line!(), spawn_labelled(LABELS, rx));
    let snap = wait_for("the hostile-labelled task", |s| {
        let mine = spawned_at(s, FILE, line);
        (mine.len() == 1 && mine[0].stack().len() == 1).then(|| s.clone())
    })
    .await;
    drop(tx);
    handle.await.expect("sort_park");
    let task = spawned_at(&snap, FILE, line)[0];
    assert_eq!(task.labels().get("we\"ird"), Some("two\nlines\tand\\tab"));
    let col = column_of(SRC, line, "spawn_labelled(");
    let escaped = r#"{"we\"ird":"two\nlines\tand\\tab"}"#;
    assert_eq!(task.labels().to_string(), escaped);
    let text = format!("{snap}");
    assert_has_line(
        &text,
        &format!("1 @ {FILE}:{line}:{col} # labels: {escaped}"),
    );
    let per_task = format!("{snap:#}");
    assert_task_block(&per_task, task, &format!("spawned at {FILE}:{line}:{col}"));
}
