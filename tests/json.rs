//! JSON profiles (feature `serde`): the documented, stable field names, with values equal to
//! what the accessors return, for snapshots, tasks, groups, frames and diffs.
#![forbid(unsafe_code)]

use std::panic::Location;
use std::time::UNIX_EPOCH;

use serde_json::{Map, Value, json};
use taskprof::{Frame, Group, Snapshot, TaskInfo};
use taskprof_tests::{spawned_at, wait_for};
use tokio::sync::broadcast;

const FILE: &str = file!();

/// The keys of a JSON object, sorted.
#[track_caller]
fn keys(v: &Value) -> Vec<&str> {
    let Value::Object(map) = v else {
        panic!("not an object: {v}");
    };
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn site_json(site: Option<&Location<'_>>) -> Value {
    match site {
        Some(l) => json!({"file": l.file(), "line": l.line(), "column": l.column()}),
        None => Value::Null,
    }
}

fn labels_json(labels: &taskprof::labels::Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect::<Map<_, _>>(),
    )
}

fn frame_json(f: &Frame) -> Value {
    json!({
        "label": f.label(),
        "file": f.file(),
        "line": f.line(),
        "column": f.column(),
        "awaiting": f.awaiting(),
        "depth": f.depth(),
    })
}

fn stack_json(stack: &[Frame]) -> Value {
    stack.iter().map(frame_json).collect()
}

fn task_json(t: &TaskInfo) -> Value {
    json!({
        "id": t.id(),
        "name": t.name(),
        "spawn_site": site_json(t.spawn_site()),
        "parent": t.parent(),
        "labels": labels_json(t.labels()),
        "state": t.state().as_str(),
        "lost_waker": t.lost_waker(),
        "age_secs": t.age().as_secs_f64(),
        "polls": t.polls(),
        "blocking": t.is_blocking(),
        "stack": stack_json(t.stack()),
    })
}

fn group_json(g: &Group) -> Value {
    json!({
        "count": g.count(),
        "oldest_secs": g.oldest().as_secs_f64(),
        "lost_waker": g.lost_waker(),
        "spawn_site": site_json(g.spawn_site()),
        "labels": labels_json(g.labels()),
        "stack": stack_json(g.stack()),
    })
}

#[taskprof::track(label(format = "json"))]
async fn json_leaf(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

#[taskprof::track]
async fn json_parent(rx: broadcast::Receiver<()>) {
    let child = tokio::spawn(json_leaf(rx.resubscribe()));
    json_leaf(rx).await;
    child.await.expect("child");
}

/// Spawns a root task with no spawn site, then waits until it, the parent spawned at
/// `FILE:line` (by `json_parent`) and the parent's child are all parked; returns the snapshot
/// and the root's id.
async fn parked_family(line: u32, rx: broadcast::Receiver<()>) -> (Snapshot, u64) {
    tokio::spawn(json_leaf(rx));
    wait_for("parent, child and root parked", |s| {
        let [parent] = spawned_at(s, FILE, line)[..] else {
            return None;
        };
        let child = s.tasks().iter().find(|t| t.parent() == Some(parent.id()))?;
        let root = s
            .tasks()
            .iter()
            .find(|t| t.name() == "json::json_leaf" && t.spawn_site().is_none())?;
        let parked = [parent, child, root]
            .iter()
            .all(|t| !t.stack().is_empty() && !t.labels().is_empty());
        parked.then(|| (s.clone(), root.id()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_json_has_the_documented_fields_and_values() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let (line, _) = (line!(), taskprof::spawn(json_parent(rx.resubscribe())));
    let (snap, root_id) = parked_family(line, rx).await;
    let v = serde_json::to_value(&snap).expect("serialize snapshot");

    assert_eq!(keys(&v), ["groups", "taken_at_unix_ms", "tasks", "total"]);
    assert_eq!(v["total"], json!(snap.total()));
    let taken = snap
        .taken_at()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    assert_eq!(v["taken_at_unix_ms"].as_u64().map(u128::from), Some(taken));

    // Every task and every group, field by field, in the same order as the accessors.
    let tasks = v["tasks"].as_array().expect("tasks array");
    assert_eq!(tasks.len(), snap.tasks().len());
    for (json, task) in tasks.iter().zip(snap.tasks()) {
        assert_eq!(
            keys(json),
            [
                "age_secs",
                "blocking",
                "id",
                "labels",
                "lost_waker",
                "name",
                "parent",
                "polls",
                "spawn_site",
                "stack",
                "state"
            ]
        );
        assert_eq!(*json, task_json(task), "task {}", task.id());
    }
    let groups = v["groups"].as_array().expect("groups array");
    assert_eq!(groups.len(), snap.groups().len());
    for (json, group) in groups.iter().zip(snap.groups()) {
        assert_eq!(
            keys(json),
            [
                "count",
                "labels",
                "lost_waker",
                "oldest_secs",
                "spawn_site",
                "stack"
            ]
        );
        assert_eq!(*json, group_json(group));
    }

    // Our three tasks, spelled out, so the field names and shapes are pinned down literally.
    let parent = spawned_at(&snap, FILE, line)[0];
    let pj = tasks
        .iter()
        .find(|t| t["id"] == json!(parent.id()))
        .expect("parent in JSON");
    let site = parent.spawn_site().expect("site");
    assert_eq!(
        pj["spawn_site"],
        json!({"file": FILE, "line": line, "column": site.column()})
    );
    assert_eq!(pj["parent"], Value::Null);
    assert_eq!(pj["state"], json!("idle"));
    assert_eq!(pj["blocking"], json!(false));
    assert_eq!(pj["lost_waker"], json!(false));
    assert_eq!(pj["labels"], json!({"format": "json"}));
    assert!(pj["age_secs"].is_f64());
    assert!(pj["polls"].as_u64().is_some_and(|p| p >= 1));
    let frames = pj["stack"].as_array().expect("stack array");
    assert_eq!(frames.len(), 2);
    for f in frames {
        assert_eq!(
            keys(f),
            ["awaiting", "column", "depth", "file", "label", "line"]
        );
    }
    assert_eq!(frames[0]["label"], json!("json::json_leaf"));
    assert_eq!(frames[0]["awaiting"], json!("rx.recv()"));
    assert_eq!(frames[0]["depth"], json!(1));
    assert_eq!(frames[1]["label"], json!("json::json_parent"));
    assert_eq!(frames[1]["awaiting"], json!("json_leaf(rx)"));
    assert_eq!(frames[1]["depth"], json!(0));
    assert_eq!(frames[1]["file"], json!(FILE));

    let child = snap
        .tasks()
        .iter()
        .find(|t| t.parent() == Some(parent.id()))
        .expect("child");
    let cj = tasks
        .iter()
        .find(|t| t["id"] == json!(child.id()))
        .expect("child in JSON");
    assert_eq!(cj["parent"], json!(parent.id()));

    let rj = tasks
        .iter()
        .find(|t| t["id"] == json!(root_id))
        .expect("root in JSON");
    assert_eq!(rj["spawn_site"], Value::Null);
    assert_eq!(rj["name"], json!("json::json_leaf"));

    // The text form is valid JSON too, and reads back to the same value.
    let text = serde_json::to_string(&snap).expect("serialize to text");
    let back: Value = serde_json::from_str(&text).expect("parse back");
    assert_eq!(back["total"], v["total"]);
    assert_eq!(back["groups"], v["groups"]);

    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_labels_round_trip_through_json() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let labels: &[(&str, &str)] = &[("k\"ey\n", "va\\l\tue\u{1}")];
    let fut = taskprof::labels::with(labels, json_leaf(rx));
    let (line, handle) = (line!(), taskprof::spawn(fut));
    let snap = wait_for("the hostile-labelled task", |s| {
        let [t] = spawned_at(s, FILE, line)[..] else {
            return None;
        };
        (t.labels().len() == 2).then(|| s.clone())
    })
    .await;
    drop(tx);
    handle.await.expect("json_leaf");
    let text = serde_json::to_string(&snap).expect("serialize");
    let back: Value = serde_json::from_str(&text).expect("valid JSON");
    let id = spawned_at(&snap, FILE, line)[0].id();
    let task = back["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == json!(id))
        .expect("task");
    assert_eq!(
        task["labels"],
        json!({"format": "json", "k\"ey\n": "va\\l\tue\u{1}"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_json_has_the_documented_fields_and_values() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let base = taskprof::snapshot();
    let (line, _) = (line!(), taskprof::spawn(json_parent(rx.resubscribe())));
    let (snap, _) = parked_family(line, rx).await;
    let diff = snap.diff(&base);
    let v = serde_json::to_value(&diff).expect("serialize diff");
    assert_eq!(keys(&v), ["groups", "total"]);
    assert_eq!(v["total"], json!(diff.total()));
    let groups = v["groups"].as_array().expect("groups array");
    assert_eq!(groups.len(), diff.groups().len());
    for (json, g) in groups.iter().zip(diff.groups()) {
        assert_eq!(keys(json), ["delta", "labels", "spawn_site", "stack"]);
        assert_eq!(
            *json,
            json!({
                "delta": g.delta(),
                "spawn_site": site_json(g.spawn_site()),
                "labels": labels_json(g.labels()),
                "stack": stack_json(g.stack()),
            })
        );
    }
    let parent = groups
        .iter()
        .find(|g| g["spawn_site"]["line"] == json!(line) && g["spawn_site"]["file"] == json!(FILE))
        .expect("the parent's group");
    assert_eq!(parent["delta"], json!(1));
    assert_eq!(parent["labels"], json!({"format": "json"}));

    // Negative deltas serialize as negative numbers.
    drop(tx);
    let gone = wait_for("the family to finish", |s| {
        spawned_at(s, FILE, line).is_empty().then(|| s.clone())
    })
    .await;
    let v = serde_json::to_value(gone.diff(&snap)).expect("serialize diff");
    let parent = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["spawn_site"]["line"] == json!(line) && g["spawn_site"]["file"] == json!(FILE))
        .expect("the parent's group");
    assert_eq!(parent["delta"], json!(-1));
    assert!(v["total"].is_i64());
}
