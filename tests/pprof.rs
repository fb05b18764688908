//! `Snapshot::to_pprof` and `Diff::to_pprof` read by the real `go tool pprof` (`-raw`, `-top`,
//! `-tagfocus`, `-base`), from files and over HTTP from the debug server.
//!
//! Needs Debian's `golang-go` (installed by `.ci/run`); without `go` the tests print a notice and
//! pass, except under CI, where they fail. They hold [`serial`], so the only tracked tasks alive
//! are their own and the counts are exact.
#![forbid(unsafe_code)]

mod http_client;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use taskprof::Snapshot;
use taskprof_tests::{column_of, multi_thread, serial, spawned_at, wait_for};
use tokio::sync::broadcast;

const SRC: &str = include_str!("pprof.rs");
const FILE: &str = file!();

#[taskprof::track]
async fn pprof_wait(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

#[taskprof::track]
async fn pprof_outer(rx: broadcast::Receiver<()>) {
    pprof_wait(rx).await;
}

#[taskprof::track]
async fn pprof_other(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

/// The 1-based line of the only line of this file containing `needle`.
fn line_of(needle: &str) -> u32 {
    let lines: Vec<usize> = SRC
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "{needle:?} on lines {lines:?}");
    lines[0] as u32
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pprof-test");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// Runs `go tool pprof ARGS` and returns its stdout; fails with stderr if it fails.
fn pprof(args: &[&str]) -> String {
    let tmp = scratch("pprof-home");
    std::fs::create_dir_all(&tmp).expect("pprof tmp");
    let out = Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        // Where pprof saves fetched profiles; GOCACHE in case HOME is unset.
        .env("PPROF_TMPDIR", &tmp)
        .env("GOCACHE", &tmp)
        .output()
        .expect("run go tool pprof");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "go tool pprof {args:?} failed:\n{stderr}\n{stdout}"
    );
    println!("$ go tool pprof {}\n{stdout}{stderr}", args.join(" "));
    stdout
}

fn write(name: &str, bytes: &[u8]) -> String {
    let path = scratch(name);
    std::fs::write(&path, bytes).expect("write profile");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// The rows of `pprof -top`: `(flat, cum, function)`.
fn top_rows(top: &str) -> Vec<(i64, i64, String)> {
    top.lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 6 {
                return None;
            }
            let flat = cols[0].parse().ok()?;
            let cum = cols[3].parse().ok()?;
            Some((flat, cum, cols[5..].join(" ")))
        })
        .collect()
}

/// The `(value, location ids)` lines of the `Samples:` section of `pprof -raw`.
fn raw_samples(raw: &str) -> Vec<(i64, Vec<u64>)> {
    raw.lines()
        .skip_while(|l| *l != "Samples:")
        .skip(2)
        .take_while(|l| !l.starts_with("Locations"))
        .filter_map(|l| {
            let (value, ids) = l.split_once(':')?;
            let value = value.trim().parse().ok()?;
            let ids = ids
                .split_whitespace()
                .map(|id| id.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            Some((value, ids))
        })
        .collect()
}

/// The `Locations` section of `pprof -raw`: id → `function file:line`.
fn raw_locations(raw: &str) -> Vec<(u64, String)> {
    raw.lines()
        .skip_while(|l| *l != "Locations")
        .skip(1)
        .take_while(|l| !l.starts_with("Mappings"))
        .filter_map(|l| {
            let (id, rest) = l.trim().split_once(':')?;
            let id = id.parse().ok()?;
            // `0x0 M=0 FUNCTION FILE:LINE s=0`
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some((id, format!("{} {}", fields.get(2)?, fields.get(3)?)))
        })
        .collect()
}

fn location(locations: &[(u64, String)], id: u64) -> &str {
    locations
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, l)| l.as_str())
        .unwrap_or_else(|| panic!("no location {id} in {locations:?}"))
}

/// Waits until `n` tasks spawned at each `(line, n, depth)` wait with that many frames.
async fn parked(lines: &[(u32, usize, usize)]) -> Snapshot {
    wait_for("tasks parked", |s| {
        lines
            .iter()
            .all(|(line, n, depth)| {
                let at = spawned_at(s, FILE, *line);
                at.len() == *n && at.iter().all(|t| t.stack().len() == *depth)
            })
            .then(|| s.clone())
    })
    .await
}

#[test]
fn go_pprof_reads_counts_function_names_and_labels() {
    if !http_client::have_go() {
        return;
    }
    let _serial = serial();
    multi_thread(2).block_on(async {
        let (tx, rx) = broadcast::channel::<()>(1);
        let mut handles = Vec::new();
        let a = line!() + 2;
        for _ in 0..3 {
            handles.push(taskprof::spawn(taskprof::labels::with(
                &[("tenant", "acme")],
                pprof_outer(rx.resubscribe()),
            )));
        }
        let b = line!() + 2;
        for _ in 0..2 {
            handles.push(taskprof::spawn(pprof_wait(rx.resubscribe())));
        }
        let snap = parked(&[(a, 3, 2), (b, 2, 1)]).await;
        assert_eq!(snap.total(), 5, "only this test's tasks live:\n{snap}");
        let file = write("five.pb.gz", &snap.to_pprof());

        // (Split needles, so these lines do not match themselves.)
        let recv_line = line_of(concat!("async fn pprof_", "wait(")) + 1;
        let outer_line = line_of(concat!("    pprof_", "wait(rx).await;"));

        let top = pprof(&["-top", &file]);
        assert!(top.contains("Type: task\n"), "{top}");
        assert!(
            top.contains("Showing nodes accounting for 5, 100% of 5 total"),
            "{top}"
        );
        let rows = top_rows(&top);
        assert_eq!(
            rows,
            [
                (5, 5, "pprof::pprof_wait".to_owned()),
                (0, 3, "pprof::pprof_outer".to_owned()),
            ],
            "{top}"
        );

        let raw = pprof(&["-raw", &file]);
        assert!(raw.contains("PeriodType: task count\nPeriod: 1\n"), "{raw}");
        assert!(raw.contains("Samples:\ntask/count\n"), "{raw}");
        let samples = raw_samples(&raw);
        let locations = raw_locations(&raw);
        assert_eq!(samples.len(), 2, "{raw}");
        assert_eq!(samples[0].0, 3);
        assert_eq!(samples[1].0, 2);
        let wait_at = format!("pprof::pprof_wait {FILE}:{recv_line}");
        let outer_at = format!("pprof::pprof_outer {FILE}:{outer_line}");
        let stack =
            |ids: &[u64]| -> Vec<&str> { ids.iter().map(|id| location(&locations, *id)).collect() };
        assert_eq!(
            stack(&samples[0].1),
            [wait_at.as_str(), outer_at.as_str()],
            "{raw}"
        );
        assert_eq!(stack(&samples[1].1), [wait_at.as_str()], "{raw}");
        // One location per distinct frame: the waits of both groups share one.
        assert_eq!(locations.len(), 2, "{raw}");
        let site_a = format!("{FILE}:{a}:{}", column_of(SRC, a, "taskprof::spawn("));
        let site_b = format!("{FILE}:{b}:{}", column_of(SRC, b, "taskprof::spawn("));
        for label in [
            format!("spawn_site:[{site_a}]"),
            format!("spawn_site:[{site_b}]"),
            "state:[idle]".to_owned(),
            "tenant:[acme]".to_owned(),
        ] {
            assert!(raw.contains(&label), "no {label} in\n{raw}");
        }

        // The labels are real pprof tags: focusing on one keeps its group only.
        let focused = pprof(&["-top", "-tagfocus=tenant=acme", &file]);
        assert!(
            focused.contains("Showing nodes accounting for 3, 60.00% of 5 total"),
            "{focused}"
        );

        drop((tx, rx));
        for h in handles {
            h.await.expect("task");
        }
    });
}

#[test]
fn go_pprof_base_and_diff_profiles_show_signed_changes() {
    if !http_client::have_go() {
        return;
    }
    let _serial = serial();
    multi_thread(2).block_on(async {
        let (tx_a, rx_a) = broadcast::channel::<()>(1);
        let (tx_b, rx_b) = broadcast::channel::<()>(1);
        let mut keep = Vec::new();
        let a = line!() + 2;
        for _ in 0..3 {
            keep.push(taskprof::spawn(pprof_outer(rx_a.resubscribe())));
        }
        let mut gone = Vec::new();
        let b = line!() + 2;
        for _ in 0..2 {
            gone.push(taskprof::spawn(pprof_wait(rx_b.resubscribe())));
        }
        let base = parked(&[(a, 3, 2), (b, 2, 1)]).await;
        drop((tx_b, rx_b));
        for h in gone {
            h.await.expect("B task");
        }
        let c = line!() + 2;
        for _ in 0..4 {
            keep.push(taskprof::spawn(pprof_other(rx_a.resubscribe())));
        }
        let now = parked(&[(a, 3, 2), (b, 0, 0), (c, 4, 1)]).await;
        let base_file = write("base.pb.gz", &base.to_pprof());
        let now_file = write("now.pb.gz", &now.to_pprof());

        // pprof's own -base: the new profile minus the base.
        let top = pprof(&["-top", "-base", &base_file, &now_file]);
        let rows = top_rows(&top);
        assert!(
            rows.contains(&(4, 4, "pprof::pprof_other".to_owned())),
            "{top}"
        );
        assert!(
            rows.contains(&(-2, -2, "pprof::pprof_wait".to_owned())),
            "{top}"
        );
        assert!(
            !rows.iter().any(|r| r.2 == "pprof::pprof_outer"),
            "unchanged: {top}"
        );

        // Diff::to_pprof: the same view, computed by taskprof.
        let diff = now.diff(&base);
        let diff_file = write("diff.pb.gz", &diff.to_pprof());
        let raw = pprof(&["-raw", &diff_file]);
        let values: Vec<i64> = raw_samples(&raw).iter().map(|s| s.0).collect();
        assert_eq!(values, [4, -2], "{raw}");
        let top = pprof(&["-top", &diff_file]);
        assert_eq!(
            top_rows(&top),
            [
                (4, 4, "pprof::pprof_other".to_owned()),
                (-2, -2, "pprof::pprof_wait".to_owned()),
            ],
            "{top}"
        );

        drop((tx_a, rx_a));
        for h in keep {
            h.await.expect("task");
        }
    });
}

#[test]
fn go_pprof_fetches_from_the_debug_server_with_and_without_seconds() {
    if !http_client::have_go() {
        return;
    }
    let _serial = serial();
    multi_thread(2).block_on(async {
        let server = taskprof::server::Server::bind(":0", Default::default())
            .await
            .expect("bind");
        let addr = server.local_addr().expect("addr");
        let serving = tokio::spawn(server.run());
        let url = format!("http://{addr}/debug/tasks/profile");

        let (tx, rx) = broadcast::channel::<()>(1);
        let mut handles = Vec::new();
        let a = line!() + 2;
        for _ in 0..3 {
            handles.push(taskprof::spawn(pprof_outer(rx.resubscribe())));
        }
        parked(&[(a, 3, 2)]).await;

        let u = url.clone();
        let raw = tokio::task::spawn_blocking(move || pprof(&["-raw", &u]))
            .await
            .expect("pprof");
        let values: Vec<i64> = raw_samples(&raw).iter().map(|s| s.0).collect();
        assert_eq!(values, [3], "{raw}");

        // `-seconds 3` asks for `?seconds=3`: the change over the next 3 s. Two tasks are
        // spawned 1 s in, well after pprof's request arrived and well before the end.
        let u = url.clone();
        let fetch = tokio::task::spawn_blocking(move || pprof(&["-top", "-seconds", "3", &u]));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let c = line!() + 2;
        for _ in 0..2 {
            handles.push(taskprof::spawn(pprof_other(rx.resubscribe())));
        }
        parked(&[(c, 2, 1)]).await;
        let top = fetch.await.expect("pprof -seconds");
        assert_eq!(
            top_rows(&top),
            [(2, 2, "pprof::pprof_other".to_owned())],
            "{top}"
        );

        serving.abort();
        drop((tx, rx));
        for h in handles {
            h.await.expect("task");
        }
    });
}
