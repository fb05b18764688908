//! `GET /debug/tasks/metrics` parsed by the Prometheus project's own Python parser
//! (`prometheus_client.parser`): values, the cardinality cap, the counters, and label values that
//! try to break out of their quotes.
//!
//! Needs `python3` with `prometheus_client` (`.ci/run` installs it with pip); without it the test
//! prints a notice and passes, except under CI, where it fails. Holds [`serial`], so the only
//! tracked tasks alive are its own.
#![forbid(unsafe_code)]

mod http_client;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use taskprof::server::{Server, ServerConfig};
use taskprof_tests::{column_of, multi_thread, serial, spawned_at, wait_for};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

const SRC: &str = include_str!("metrics.rs");
const FILE: &str = file!();

/// A task name that tries to close the label value and add a label and a sample of its own.
const HOSTILE: &str = "evil\"} injected{x=\"1\\\n2\\\"} 99\nfake_metric 1";

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Parses exposition text with prometheus_client: `[{family, type, name, labels, value}]`.
fn parse(text: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let out = child.wait_with_output().expect("parser output");
    assert!(
        out.status.success(),
        "prometheus_client rejected the metrics:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("parser JSON")
        .as_array()
        .expect("array")
        .clone()
}

fn value(samples: &[Value], name: &str) -> f64 {
    let found: Vec<&Value> = samples.iter().filter(|s| s["name"] == name).collect();
    assert_eq!(found.len(), 1, "{name} in {samples:?}");
    found[0]["value"].as_f64().expect("number")
}

/// `(site, name) -> value` of the `taskprof_tasks` samples.
fn series(samples: &[Value]) -> Vec<(String, String, f64)> {
    let mut out: Vec<(String, String, f64)> = samples
        .iter()
        .filter(|s| s["name"] == "taskprof_tasks")
        .map(|s| {
            let labels = s["labels"].as_object().expect("labels");
            assert_eq!(labels.len(), 2, "only site and name: {s}");
            (
                labels["site"].as_str().expect("site").to_owned(),
                labels["name"].as_str().expect("name").to_owned(),
                s["value"].as_f64().expect("value"),
            )
        })
        .collect();
    out.sort_by(|a, b| {
        b.2.total_cmp(&a.2)
            .then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1)))
    });
    out
}

#[taskprof::track]
async fn metrics_wait(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

/// Spawns `n` tasks named `name`, spawned at the caller's line.
#[track_caller]
fn spawn_here(n: usize, name: &'static str, rx: &broadcast::Receiver<()>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(taskprof::spawn_named(name, metrics_wait(rx.resubscribe())));
    }
    handles
}

fn site(line: u32) -> String {
    format!("{FILE}:{line}:{}", column_of(SRC, line, "spawn_here("))
}

#[test]
fn metrics_parse_with_prometheus_client_with_values_cap_and_escaping() {
    if !http_client::have_prometheus_client() {
        return;
    }
    let _serial = serial();
    multi_thread(2).block_on(async {
        let server = Server::bind(":0", ServerConfig::default().max_series(3))
            .await
            .expect("bind");
        let addr = server.local_addr().expect("addr");
        let serving = tokio::spawn(server.run());
        let get_metrics = || async move {
            let r = http_client::get(addr, "/debug/tasks/metrics", &[]).await;
            assert_eq!(r.status, 200);
            assert_eq!(
                r.header("content-type"),
                Some("text/plain; version=0.0.4; charset=utf-8")
            );
            let text = r.text();
            println!("{text}");
            (text.clone(), parse(&text))
        };
        let (_, before) = get_metrics().await;
        let completed_before = value(&before, "taskprof_completed_total");

        let (tx, rx) = broadcast::channel::<()>(1);
        let (a, mut handles) = (line!(), spawn_here(4, "plain", &rx));
        let (b, more) = (line!(), spawn_here(2, HOSTILE, &rx));
        handles.extend(more);
        let (c, more) = (line!(), spawn_here(1, "n3", &rx));
        handles.extend(more);
        let (c2, more) = (line!(), spawn_here(1, "n4", &rx));
        handles.extend(more);
        wait_for("8 parked tasks", |s| {
            [(a, 4), (b, 2), (c, 1), (c2, 1)]
                .iter()
                .all(|(line, n)| {
                    let at = spawned_at(s, FILE, *line);
                    at.len() == *n && at.iter().all(|t| t.stack().len() == 1)
                })
                .then_some(())
        })
        .await;

        let (text, samples) = get_metrics().await;
        assert_eq!(
            series(&samples),
            [
                (site(a), "plain".to_owned(), 4.0),
                (site(b), HOSTILE.to_owned(), 2.0),
                // Ties are ordered by site then name; beyond max_series(3) the rest is "other".
                ("other".to_owned(), "other".to_owned(), 1.0),
                (site(c), "n3".to_owned(), 1.0),
            ],
            "{text}"
        );
        assert!(
            !samples.iter().any(|s| s["name"] == "fake_metric"),
            "{text}"
        );
        assert_eq!(value(&samples, "taskprof_tasks_total"), 8.0);
        let spawned = value(&samples, "taskprof_spawned_total");
        let completed = value(&samples, "taskprof_completed_total");
        assert_eq!(spawned - completed, 8.0, "{text}");
        let types: Vec<(&str, &str)> = samples
            .iter()
            .map(|s| {
                (
                    s["family"].as_str().unwrap_or_default(),
                    s["type"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        for expected in [
            ("taskprof_tasks", "gauge"),
            ("taskprof_tasks_total", "gauge"),
            ("taskprof_spawned", "counter"),
            ("taskprof_completed", "counter"),
        ] {
            assert!(types.contains(&expected), "{expected:?} in {types:?}");
        }

        drop(tx);
        for h in handles {
            h.await.expect("task");
        }
        let (text, after) = get_metrics().await;
        assert!(series(&after).is_empty(), "{text}");
        assert_eq!(value(&after, "taskprof_tasks_total"), 0.0);
        assert_eq!(
            value(&after, "taskprof_completed_total") - completed_before,
            8.0,
            "{text}"
        );
        serving.abort();
    });
}
