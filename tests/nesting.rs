//! Nested spawns and frames: parent chains, label inheritance (also through `spawn_blocking`),
//! `#[track]` futures that register themselves as root tasks, `join!`/`select!` branches,
//! method labels and `name = ".."` overrides.
#![forbid(unsafe_code)]

use std::marker::PhantomData;
use std::sync::mpsc as std_mpsc;

use taskprof::{Snapshot, State, TaskInfo};
use taskprof_tests::{
    Line, assert_has_line, assert_site, column_of, current_thread, frame_line, labels_of,
    spawned_at, task, task_block, wait_for,
};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinSet;

const SRC: &str = include_str!("nesting.rs");
const FILE: &str = file!();

/// The only task of `snap` spawned at `FILE:line`, if exactly one is.
fn one_at(snap: &Snapshot, line: Option<u32>) -> Option<TaskInfo> {
    match spawned_at(snap, FILE, line?).as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// The tasks of `snap` whose parent is `parent`.
fn children_of(snap: &Snapshot, parent: u64) -> Vec<TaskInfo> {
    snap.tasks()
        .iter()
        .filter(|t| t.parent() == Some(parent))
        .cloned()
        .collect()
}

/// Parks until the broadcast closes (no frame of its own).
async fn plain_wait(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

// ---------------------------------------------------------------------------------------------
// Parent chains.

static PLAIN_CHILD_AT: Line = Line::new();
static PLAIN_GRANDCHILD_AT: Line = Line::new();

async fn plain_child(rx: broadcast::Receiver<()>) {
    let (line, grandchild) = (line!(), taskprof::spawn(plain_wait(rx.resubscribe())));
    PLAIN_GRANDCHILD_AT.set(line);
    plain_wait(rx).await;
    grandchild.await.expect("grandchild");
}

async fn plain_root(rx: broadcast::Receiver<()>) {
    let (line, child) = (line!(), taskprof::spawn(plain_child(rx.resubscribe())));
    PLAIN_CHILD_AT.set(line);
    plain_wait(rx).await;
    child.await.expect("child");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_chain_through_taskprof_spawn() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let (root_line, handle) = (line!(), taskprof::spawn(plain_root(rx)));
    let (root, child, grandchild) = wait_for("three generations of plain tasks", |s| {
        let root = one_at(s, Some(root_line))?;
        let child = one_at(s, PLAIN_CHILD_AT.try_get())?;
        let grandchild = one_at(s, PLAIN_GRANDCHILD_AT.try_get())?;
        Some((root, child, grandchild))
    })
    .await;
    drop(tx);
    handle.await.expect("plain_root");

    let col = |line| column_of(SRC, line, "taskprof::spawn(");
    assert_site(root.spawn_site(), FILE, root_line, col(root_line));
    let child_line = PLAIN_CHILD_AT.get();
    assert_site(child.spawn_site(), FILE, child_line, col(child_line));
    let grandchild_line = PLAIN_GRANDCHILD_AT.get();
    assert_site(
        grandchild.spawn_site(),
        FILE,
        grandchild_line,
        col(grandchild_line),
    );
    assert_eq!(root.parent(), None);
    assert_eq!(child.parent(), Some(root.id()));
    assert_eq!(grandchild.parent(), Some(child.id()));
    assert!(root.name().contains("plain_root"), "{}", root.name());
    assert!(child.name().contains("plain_child"), "{}", child.name());
    assert!(grandchild.name().contains("plain_wait"));
    // No `#[track]` code: no frames.
    assert!(root.stack().is_empty() && child.stack().is_empty());
}

static TRACK_CHILD_AT: Line = Line::new();
static TRACK_GRANDCHILD_AT: Line = Line::new();

#[taskprof::track]
async fn track_leaf(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

#[taskprof::track]
async fn track_middle(rx: broadcast::Receiver<()>) {
    let (line, leaf) = (line!(), tokio::spawn(track_leaf(rx.resubscribe())));
    TRACK_GRANDCHILD_AT.set(line);
    track_leaf(rx).await;
    leaf.await.expect("track_leaf");
}

#[taskprof::track]
async fn track_top(rx: broadcast::Receiver<()>) {
    let (line, middle) = (line!(), tokio::spawn(track_middle(rx.resubscribe())));
    TRACK_CHILD_AT.set(line);
    track_leaf(rx).await;
    middle.await.expect("track_middle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_chain_through_tokio_spawn_in_track_fns() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let (root_line, handle) = (line!(), taskprof::spawn(track_top(rx)));
    let (root, child, grandchild) = wait_for("three generations of #[track] tasks", |s| {
        let parked = |t: TaskInfo| (t.stack().len() == 2).then_some(t);
        let root = parked(one_at(s, Some(root_line))?)?;
        let child = parked(one_at(s, TRACK_CHILD_AT.try_get())?)?;
        let grandchild = one_at(s, TRACK_GRANDCHILD_AT.try_get())?;
        (grandchild.stack().len() == 1).then_some((root, child, grandchild))
    })
    .await;
    drop(tx);
    handle.await.expect("track_top");

    assert_site(
        root.spawn_site(),
        FILE,
        root_line,
        column_of(SRC, root_line, "taskprof::spawn("),
    );
    let child_line = TRACK_CHILD_AT.get();
    assert_site(
        child.spawn_site(),
        FILE,
        child_line,
        column_of(SRC, child_line, "tokio::spawn("),
    );
    let grandchild_line = TRACK_GRANDCHILD_AT.get();
    assert_site(
        grandchild.spawn_site(),
        FILE,
        grandchild_line,
        column_of(SRC, grandchild_line, "tokio::spawn("),
    );
    assert_eq!(root.parent(), None);
    assert_eq!(child.parent(), Some(root.id()));
    assert_eq!(grandchild.parent(), Some(child.id()));
    assert!(child.name().contains("track_middle"), "{}", child.name());
    assert!(
        grandchild.name().contains("track_leaf"),
        "{}",
        grandchild.name()
    );

    let labels = |t: &TaskInfo| -> Vec<(String, Option<String>, u32)> {
        t.stack()
            .iter()
            .map(|f| {
                (
                    f.label().to_owned(),
                    f.awaiting().map(str::to_owned),
                    f.depth(),
                )
            })
            .collect()
    };
    let frame =
        |label: &str, awaiting: &str, depth| (label.to_owned(), Some(awaiting.to_owned()), depth);
    assert_eq!(
        labels(&root),
        [
            frame("nesting::track_leaf", "rx.recv()", 1),
            frame("nesting::track_top", "track_leaf(rx)", 0)
        ]
    );
    assert_eq!(
        labels(&child),
        [
            frame("nesting::track_leaf", "rx.recv()", 1),
            frame("nesting::track_middle", "track_leaf(rx)", 0)
        ]
    );
    assert_eq!(
        labels(&grandchild),
        [frame("nesting::track_leaf", "rx.recv()", 0)]
    );
}

static KINDS_BLOCKING_AT: Line = Line::new();
static KINDS_TASK_SPAWN_AT: Line = Line::new();
static KINDS_SET_AT: Line = Line::new();
static KINDS_SET_PATH_AT: Line = Line::new();

/// Spawns one task with each spawn call the macro tracks, then waits for them all.
#[taskprof::track]
async fn spawn_kinds(rx: broadcast::Receiver<()>, blocker: std_mpsc::Receiver<()>) {
    let (line, blocking) = (line!(), tokio::task::spawn_blocking(move || blocker.recv()));
    KINDS_BLOCKING_AT.set(line);
    let (line, task) = (line!(), tokio::task::spawn(track_leaf(rx.resubscribe())));
    KINDS_TASK_SPAWN_AT.set(line);
    let mut set = JoinSet::new();
    let (line, _) = (line!(), set.spawn(track_leaf(rx.resubscribe())));
    KINDS_SET_AT.set(line);
    let leaf = track_leaf(rx.resubscribe());
    let (line, _) = (line!(), JoinSet::spawn(&mut set, leaf));
    KINDS_SET_PATH_AT.set(line);
    track_leaf(rx).await;
    task.await.expect("tokio::task::spawn");
    while let Some(done) = set.join_next().await {
        done.expect("JoinSet task");
    }
    let _ = blocking.await.expect("spawn_blocking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spawn_call_in_a_track_fn_is_tracked() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let (blocker_tx, blocker_rx) = std_mpsc::channel::<()>();
    let (root_line, handle) = (line!(), taskprof::spawn(spawn_kinds(rx, blocker_rx)));
    let sites = [
        (&KINDS_BLOCKING_AT, "tokio::task::spawn_blocking("),
        (&KINDS_TASK_SPAWN_AT, "tokio::task::spawn("),
        (&KINDS_SET_AT, "spawn(track_leaf"),
        (&KINDS_SET_PATH_AT, "JoinSet::spawn("),
    ];
    let (root, children) = wait_for("the four spawned kinds", |s| {
        let root = one_at(s, Some(root_line))?;
        let children = sites
            .iter()
            .map(|(line, _)| {
                let t = one_at(s, line.try_get())?;
                // The blocking task counts as started once its closure runs.
                let started = t.is_blocking() && t.polls() == 1;
                (started || t.stack().len() == 1).then_some(t)
            })
            .collect::<Option<Vec<_>>>()?;
        Some((root, children))
    })
    .await;
    drop(tx);
    drop(blocker_tx);
    handle.await.expect("spawn_kinds");

    for ((line, needle), child) in sites.iter().zip(&children) {
        let line = line.get();
        assert_site(child.spawn_site(), FILE, line, column_of(SRC, line, needle));
        assert_eq!(child.parent(), Some(root.id()), "parent of {needle}");
    }
    let blocking = &children[0];
    assert!(blocking.is_blocking());
    assert_eq!(blocking.state(), State::Running);
    assert!(blocking.stack().is_empty());
    for child in &children[1..] {
        assert!(!child.is_blocking());
        assert_eq!(child.stack()[0].label(), "nesting::track_leaf");
    }
}

// ---------------------------------------------------------------------------------------------
// Labels.

/// Labelled by its attribute; spawns a labelled child, and a blocking task that spawns too.
#[taskprof::track(label(team = "core"))]
async fn team_root(rx: broadcast::Receiver<()>, blocker: std_mpsc::Receiver<()>) {
    let child = tokio::spawn(team_child(rx.resubscribe()));
    let rx2 = rx.resubscribe();
    let blocking = tokio::task::spawn_blocking(move || {
        let grandchild = taskprof::spawn(plain_wait(rx2));
        let _ = blocker.recv();
        grandchild
    });
    track_leaf(rx).await;
    child.await.expect("team_child");
    let grandchild = blocking.await.expect("blocking");
    grandchild.await.expect("grandchild of blocking");
}

#[taskprof::track(label(role = "child"))]
async fn team_child(rx: broadcast::Receiver<()>) {
    let grandchild = tokio::spawn(track_leaf(rx.resubscribe()));
    track_leaf(rx).await;
    grandchild.await.expect("grandchild");
}

/// Root, child, blocking child, and the grandchildren under each, found by parent links.
struct Family {
    root: TaskInfo,
    child: TaskInfo,
    blocking: TaskInfo,
    grandchild: TaskInfo,
    blocking_grandchild: TaskInfo,
}

fn family(s: &Snapshot, root: TaskInfo) -> Option<Family> {
    let kids = children_of(s, root.id());
    let [a, b] = kids.as_slice() else {
        return None;
    };
    let (blocking, child) = if a.is_blocking() { (a, b) } else { (b, a) };
    let [grandchild] = children_of(s, child.id()).try_into().ok()?;
    let [blocking_grandchild] = children_of(s, blocking.id()).try_into().ok()?;
    // Everyone parked (the blocking task runs its closure, which has no frames).
    let parked = [&root, child, &grandchild, &blocking_grandchild]
        .iter()
        .all(|t| t.polls() > 0 && t.state() == State::Idle);
    (parked && blocking.is_blocking() && !child.is_blocking()).then(|| Family {
        root: root.clone(),
        child: child.clone(),
        blocking: blocking.clone(),
        grandchild,
        blocking_grandchild,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_of_track_attributes_reach_children_and_grandchildren() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let (blocker_tx, blocker_rx) = std_mpsc::channel::<()>();
    let (root_line, handle) = (line!(), taskprof::spawn(team_root(rx, blocker_rx)));
    let f = wait_for("the labelled family", |s| {
        let root = one_at(s, Some(root_line))?;
        let f = family(s, root)?;
        // The labels of a frame show once it has been polled.
        (!f.child.labels().is_empty()).then_some(f)
    })
    .await;
    drop(tx);
    drop(blocker_tx);
    handle.await.expect("team_root");

    let team = [("team", "core")];
    let team_child = [("role", "child"), ("team", "core")];
    assert_eq!(labels_of(&f.root), team);
    assert_eq!(labels_of(&f.blocking), team, "through spawn_blocking");
    assert_eq!(labels_of(&f.blocking_grandchild), team);
    assert_eq!(labels_of(&f.child), team_child);
    assert_eq!(labels_of(&f.grandchild), team_child);
}

#[taskprof::track]
async fn tenant_root(rx: broadcast::Receiver<()>, blocker: std_mpsc::Receiver<()>) {
    let child = tokio::spawn(tenant_child(rx.resubscribe(), blocker));
    // An inner `labels::with` overrides a key and adds one, for what is spawned inside it.
    let overridden = taskprof::labels::with(&[("tenant", "other"), ("extra", "x")], async {
        taskprof::spawn(plain_wait(rx.resubscribe()))
    })
    .await;
    track_leaf(rx).await;
    child.await.expect("tenant_child");
    overridden.await.expect("overridden");
}

#[taskprof::track]
async fn tenant_child(rx: broadcast::Receiver<()>, blocker: std_mpsc::Receiver<()>) {
    let grandchild = tokio::spawn(track_leaf(rx.resubscribe()));
    let rx2 = rx.resubscribe();
    let blocking = tokio::task::spawn_blocking(move || {
        let great_grandchild = taskprof::spawn(plain_wait(rx2));
        let _ = blocker.recv();
        great_grandchild
    });
    track_leaf(rx).await;
    grandchild.await.expect("grandchild");
    let great = blocking.await.expect("blocking");
    great.await.expect("great-grandchild");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_of_labels_with_reach_children_and_grandchildren() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let (blocker_tx, blocker_rx) = std_mpsc::channel::<()>();
    let root_fut = taskprof::labels::with(&[("tenant", "acme")], tenant_root(rx, blocker_rx));
    let (root_line, handle) = (line!(), taskprof::spawn(root_fut));
    let (root, child, overridden, grandchild, blocking, great) =
        wait_for("the tenant family", |s| {
            let root = one_at(s, Some(root_line))?;
            let kids = children_of(s, root.id());
            let [a, b] = kids.as_slice() else {
                return None;
            };
            let (overridden, child) = if a.labels().get("extra").is_some() {
                (a, b)
            } else {
                (b, a)
            };
            let grandkids = children_of(s, child.id());
            let [x, y] = grandkids.as_slice() else {
                return None;
            };
            let (blocking, grandchild) = if x.is_blocking() { (x, y) } else { (y, x) };
            let [great] = children_of(s, blocking.id()).try_into().ok()?;
            let parked = [&root, child, overridden, grandchild, &great]
                .iter()
                .all(|t| t.polls() > 0 && t.state() == State::Idle);
            parked.then(|| {
                (
                    root.clone(),
                    child.clone(),
                    overridden.clone(),
                    grandchild.clone(),
                    blocking.clone(),
                    great,
                )
            })
        })
        .await;
    drop(tx);
    drop(blocker_tx);
    handle.await.expect("tenant_root");

    let acme = [("tenant", "acme")];
    assert_eq!(labels_of(&root), acme);
    assert_eq!(labels_of(&child), acme);
    assert_eq!(labels_of(&grandchild), acme);
    assert_eq!(labels_of(&blocking), acme, "through spawn_blocking");
    assert!(blocking.is_blocking());
    assert_eq!(labels_of(&great), acme, "spawned from a blocking task");
    assert_eq!(great.parent(), Some(blocking.id()));
    assert_eq!(
        labels_of(&overridden),
        [("extra", "x"), ("tenant", "other")]
    );
}

#[taskprof::track]
async fn root_in_labels_with(rx: broadcast::Receiver<()>) {
    let child = tokio::spawn(track_leaf(rx.resubscribe()));
    track_leaf(rx).await;
    child.await.expect("child");
}

/// A `#[track]` future that registers itself as a task while inside `labels::with`: the labels
/// it runs under are the task's and its children's, as `labels::with` documents ("the task
/// polling it shows these labels ... every task spawned from inside `fut` inherits them").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_track_fn_inside_labels_with_carries_the_labels() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let handle = tokio::spawn(taskprof::labels::with(
        &[("tenant", "rooted")],
        root_in_labels_with(rx),
    ));
    let (root, child) = wait_for("the root and its child", |s| {
        let roots: Vec<&TaskInfo> = s
            .tasks()
            .iter()
            .filter(|t| t.name() == "nesting::root_in_labels_with")
            .collect();
        let [root] = roots.as_slice() else {
            return None;
        };
        let [child] = children_of(s, root.id()).try_into().ok()?;
        (child.polls() > 0 && root.polls() > 0).then(|| ((*root).clone(), child))
    })
    .await;
    drop(tx);
    handle.await.expect("root_in_labels_with");
    assert_eq!(root.spawn_site(), None);
    assert_eq!(labels_of(&root), [("tenant", "rooted")], "root task");
    assert_eq!(labels_of(&child), [("tenant", "rooted")], "child");
}

// ---------------------------------------------------------------------------------------------
// `#[track]` futures with no tracked task around them.

static ROOTED_CHILD_AT: Line = Line::new();

#[taskprof::track(label(kind = "root"))]
async fn rooted(mut rx: broadcast::Receiver<()>) -> u32 {
    let (line, child) = (line!(), tokio::spawn(track_leaf(rx.resubscribe())));
    ROOTED_CHILD_AT.set(line);
    let (line, _) = (line!(), rx.recv().await);
    child.await.expect("child of rooted");
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_fn_on_plain_tokio_spawn_registers_itself_as_a_root_task() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let handle = tokio::spawn(rooted(rx));
    let (snap, root, child) = wait_for("the root task and its child", |s| {
        let roots: Vec<&TaskInfo> = s
            .tasks()
            .iter()
            .filter(|t| t.name() == "nesting::rooted")
            .collect();
        let [root] = roots.as_slice() else {
            return None;
        };
        let [child] = children_of(s, root.id()).try_into().ok()?;
        (root.stack().len() == 1 && child.stack().len() == 1)
            .then(|| (s.clone(), (*root).clone(), child))
    })
    .await;
    drop(tx);
    let await_line = handle.await.expect("rooted");
    let await_col = column_of(SRC, await_line, "recv()");

    assert_eq!(root.spawn_site(), None);
    assert_eq!(root.parent(), None);
    assert_eq!(labels_of(&root), [("kind", "root")]);
    let frame = &root.stack()[0];
    assert_eq!(frame.label(), "nesting::rooted");
    assert_eq!(
        (frame.file(), frame.line(), frame.column()),
        (FILE, await_line, await_col)
    );
    assert_eq!(frame.awaiting(), Some("rx.recv()"));
    assert_eq!(frame.depth(), 0);

    let child_line = ROOTED_CHILD_AT.get();
    assert_site(
        child.spawn_site(),
        FILE,
        child_line,
        column_of(SRC, child_line, "tokio::spawn("),
    );
    assert_eq!(child.parent(), Some(root.id()));
    assert_eq!(labels_of(&child), [("kind", "root")]);

    let text = format!("{snap}");
    let frame_text =
        format!("#\tnesting::rooted\t{FILE}:{await_line}:{await_col}\tawait rx.recv()");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == frame_text)
        .unwrap_or_else(|| panic!("no {frame_text:?} in:\n{text}"));
    assert_eq!(lines[at - 1], "1 @ <unknown> # labels: {\"kind\":\"root\"}");

    let per_task = format!("{snap:#}");
    let block = task_block(&per_task, root.id()).expect("root block");
    assert_eq!(
        block[1..],
        [
            frame_text.as_str(),
            &format!("name: nesting::rooted, polls: {}", root.polls()),
            "labels: {\"kind\":\"root\"}",
            "spawned at <unknown>",
        ]
    );
}

#[taskprof::track]
async fn blocked_on(rx: oneshot::Receiver<()>) -> u32 {
    let (line, _) = (line!(), rx.await);
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_fn_under_block_on_registers_itself_as_a_root_task() {
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::spawn(move || current_thread().block_on(blocked_on(rx)));
    let root = wait_for("the block_on root task", |s| {
        let roots: Vec<&TaskInfo> = s
            .tasks()
            .iter()
            .filter(|t| t.name() == "nesting::blocked_on")
            .collect();
        match roots.as_slice() {
            [root] if root.stack().len() == 1 => Some((*root).clone()),
            _ => None,
        }
    })
    .await;
    tx.send(()).expect("blocked_on waits");
    let await_line = thread.join().expect("block_on thread");
    assert_eq!(root.spawn_site(), None);
    assert_eq!(root.parent(), None);
    assert!(root.labels().is_empty());
    let frame = &root.stack()[0];
    assert_eq!(frame.label(), "nesting::blocked_on");
    assert_eq!(
        (frame.line(), frame.column()),
        (await_line, column_of(SRC, await_line, "rx.await"))
    );
    assert_eq!(frame.awaiting(), Some("rx"));
    assert!(task(&taskprof::snapshot(), root.id()).is_none());
}

// ---------------------------------------------------------------------------------------------
// Concurrent branches.

#[taskprof::track]
async fn left(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[taskprof::track]
async fn right(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[taskprof::track]
async fn both(a: oneshot::Receiver<()>, b: oneshot::Receiver<()>) -> u32 {
    let (line, _) = (line!(), tokio::join!(left(a), right(b)));
    line
}

#[taskprof::track]
async fn either(a: oneshot::Receiver<()>, b: oneshot::Receiver<()>) -> u32 {
    // Each handler reports its own line, which is its branch's line.
    tokio::select! {
        _ = left(a) => line!(),
        _ = right(b) => line!(),
    }
}

/// `(label, awaiting, depth)` of each frame.
fn frames(t: &TaskInfo) -> Vec<(String, String, u32)> {
    t.stack()
        .iter()
        .map(|f| {
            (
                f.label().to_owned(),
                f.awaiting().unwrap_or("").to_owned(),
                f.depth(),
            )
        })
        .collect()
}

fn triple(label: &str, awaiting: &str, depth: u32) -> (String, String, u32) {
    (label.to_owned(), awaiting.to_owned(), depth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_shows_both_branches() {
    let (a_tx, a) = oneshot::channel();
    let (b_tx, b) = oneshot::channel();
    let (line, handle) = (line!(), taskprof::spawn(both(a, b)));
    let task = wait_for("both branches of join!", |s| {
        one_at(s, Some(line)).filter(|t| t.stack().len() >= 4)
    })
    .await;
    a_tx.send(()).expect("left waits");
    b_tx.send(()).expect("right waits");
    let join_line = handle.await.expect("both");
    // Post-order, innermost first: each branch's frame, then the branch itself.
    assert_eq!(
        frames(&task),
        [
            triple("nesting::left", "rx", 1),
            triple("nesting::both", "left(a)", 0),
            triple("nesting::right", "rx", 1),
            triple("nesting::both", "right(b)", 0),
        ],
        "{:#?}",
        task.stack()
    );
    assert_eq!(task.stack()[1].line(), join_line);
    assert_eq!(
        task.stack()[1].column(),
        column_of(SRC, join_line, "left(a)")
    );
    assert_eq!(
        task.stack()[3].column(),
        column_of(SRC, join_line, "right(b)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_shows_both_branches() {
    let (a_tx, a) = oneshot::channel();
    let (_b_tx, b) = oneshot::channel();
    let (line, handle) = (line!(), taskprof::spawn(either(a, b)));
    let task = wait_for("both branches of select!", |s| {
        one_at(s, Some(line)).filter(|t| t.stack().len() >= 4)
    })
    .await;
    a_tx.send(()).expect("left waits");
    let select_line = handle.await.expect("either");
    // `select!` polls its branches in random order: compare as sets of (branch, frame) pairs.
    let got = frames(&task);
    assert_eq!(got.len(), 4, "{got:?}");
    let mut pairs: Vec<_> = got
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (
                triple("nesting::left", "rx", 1),
                triple("nesting::either", "left(a)", 0)
            ),
            (
                triple("nesting::right", "rx", 1),
                triple("nesting::either", "right(b)", 0)
            ),
        ]
    );
    let branch = task
        .stack()
        .iter()
        .find(|f| f.awaiting() == Some("left(a)"))
        .expect("left branch");
    assert_eq!(
        (branch.line(), branch.column()),
        (select_line, column_of(SRC, select_line, "left(a)"))
    );
}

// ---------------------------------------------------------------------------------------------
// Method labels and name overrides.

struct Mailbox {
    rx: oneshot::Receiver<()>,
}

impl Mailbox {
    #[taskprof::track]
    async fn wait(self) -> u32 {
        let (line, _) = (line!(), self.rx.await);
        line
    }
}

mod pool {
    use std::marker::PhantomData;

    /// A generic type: its method label drops the generic arguments.
    pub struct Pool<T>(pub PhantomData<T>);

    impl<T: Send + Sync> Pool<T> {
        #[taskprof::track]
        pub async fn serve(&self, rx: tokio::sync::oneshot::Receiver<()>) {
            let _ = rx.await;
        }
    }
}

trait Service {
    async fn call(&self, rx: oneshot::Receiver<()>);
}

struct Echo;

impl Service for Echo {
    #[taskprof::track]
    async fn call(&self, rx: oneshot::Receiver<()>) {
        let _ = rx.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_frames_are_labelled_with_the_type_path() {
    let (tx1, rx1) = oneshot::channel();
    let (tx2, rx2) = oneshot::channel();
    let (tx3, rx3) = oneshot::channel();
    let (line1, h1) = (line!(), taskprof::spawn(Mailbox { rx: rx1 }.wait()));
    let serve = async move { pool::Pool::<u8>(PhantomData).serve(rx2).await };
    let (line2, h2) = (line!(), taskprof::spawn(serve));
    let call = async move { Echo.call(rx3).await };
    let (line3, h3) = (line!(), taskprof::spawn(call));
    let labels = wait_for("three method frames", |s| {
        [line1, line2, line3]
            .iter()
            .map(|l| {
                let t = one_at(s, Some(*l))?;
                let [frame] = t.stack() else {
                    return None;
                };
                Some((frame.label().to_owned(), frame.line(), frame.column()))
            })
            .collect::<Option<Vec<_>>>()
    })
    .await;
    for tx in [tx1, tx2, tx3] {
        tx.send(()).expect("waiting");
    }
    let wait_line = h1.await.expect("Mailbox::wait");
    h2.await.expect("Pool::serve");
    h3.await.expect("Echo::call");
    assert_eq!(labels[0].0, "nesting::Mailbox::wait");
    assert_eq!(
        (labels[0].1, labels[0].2),
        (wait_line, column_of(SRC, wait_line, "self.rx.await"))
    );
    assert_eq!(labels[1].0, "nesting::pool::Pool::serve");
    assert_eq!(labels[2].0, "nesting::Echo::call");
}

#[taskprof::track(name = "custom/renamed")]
async fn renamed(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_override_labels_frames_and_root_tasks() {
    let (tx1, rx1) = oneshot::channel();
    let (tx2, rx2) = oneshot::channel();
    let (line, nested) = (line!(), taskprof::spawn(renamed(rx1)));
    let root = tokio::spawn(renamed(rx2));
    let (nested_task, root_task, snap) = wait_for("the renamed frames", |s| {
        let nested = one_at(s, Some(line)).filter(|t| t.stack().len() == 1)?;
        let roots: Vec<&TaskInfo> = s
            .tasks()
            .iter()
            .filter(|t| t.name() == "custom/renamed")
            .collect();
        match roots.as_slice() {
            [root] if root.stack().len() == 1 => Some((nested, (*root).clone(), s.clone())),
            _ => None,
        }
    })
    .await;
    tx1.send(()).expect("nested waits");
    tx2.send(()).expect("root waits");
    nested.await.expect("nested");
    root.await.expect("root");
    assert_eq!(nested_task.stack()[0].label(), "custom/renamed");
    assert_eq!(nested_task.stack()[0].awaiting(), Some("rx"));
    assert_eq!(root_task.spawn_site(), None);
    assert_eq!(root_task.stack()[0].label(), "custom/renamed");
    let text = format!("{snap}");
    assert_has_line(&text, &frame_line(&nested_task.stack()[0]));
    assert!(!text.contains("nesting::renamed"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// A root frame's task ends when the frame completes, before its future is dropped.

/// Pending on its first poll (waking itself), ready on the second.
async fn once_pending() {
    let mut polled = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut polled, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

#[taskprof::track]
async fn done_after_one_wait() {
    once_pending().await;
}

#[taskprof::track(label(kind = "labelled-root"))]
async fn labelled_done_after_one_wait() {
    once_pending().await;
}

/// Polls `fut` by hand outside any task: the first poll makes it a root task (named `name`),
/// the second completes it, which ends the task while the future is still alive; dropping it
/// then has nothing left to end.
fn ends_at_completion<F: std::future::Future<Output = ()>>(fut: F, name: &str) {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let snap = taskprof::snapshot();
    let ids: Vec<u64> = snap
        .tasks()
        .iter()
        .filter(|t| t.name() == name)
        .map(TaskInfo::id)
        .collect();
    let [id] = ids[..] else {
        panic!("one root task {name} while pending:\n{snap:#}");
    };
    assert!(fut.as_mut().poll(&mut cx).is_ready());
    // Completed, not yet dropped: the task is gone.
    assert!(
        task(&taskprof::snapshot(), id).is_none(),
        "{name} still listed"
    );
}

#[test]
fn a_root_frame_task_ends_when_its_frame_completes() {
    ends_at_completion(done_after_one_wait(), "nesting::done_after_one_wait");
    ends_at_completion(
        labelled_done_after_one_wait(),
        "nesting::labelled_done_after_one_wait",
    );
}
