//! The debug server (feature `server`) over real HTTP on 127.0.0.1: every view of
//! `/debug/tasks/profile`, `seconds=N` deltas, caps with notes, health, the token, the loopback
//! default, mounting under a prefix, and every 400.
//!
//! The tests hold [`serial`], so the only tracked tasks alive are their own.
#![forbid(unsafe_code)]

mod http_client;

use std::net::SocketAddr;
use std::time::Duration;

use http_client::{Response, get};
use serde_json::Value;
use taskprof::server::{Server, ServerConfig};
use taskprof_tests::{column_of, frame_line, is_age, multi_thread, serial, spawned_at, wait_for};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

const SRC: &str = include_str!("server.rs");
const FILE: &str = file!();

#[taskprof::track]
async fn server_wait(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

/// Starts a debug server on 127.0.0.1 (a free port) on the current runtime.
async fn start(config: ServerConfig) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    let server = Server::bind(":0", config).await.expect("bind");
    let addr = server.local_addr().expect("local addr");
    (addr, tokio::spawn(server.run()))
}

/// Spawns `n` tasks parked in `server_wait`, spawned at the caller's line.
#[track_caller]
fn spawn_here(n: usize, rx: &broadcast::Receiver<()>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(taskprof::spawn(server_wait(rx.resubscribe())));
    }
    handles
}

async fn parked(line: u32, n: usize) {
    wait_for("tasks parked in server_wait", |s| {
        let at = spawned_at(s, FILE, line);
        (at.len() == n && at.iter().all(|t| t.stack().len() == 1)).then_some(())
    })
    .await;
}

async fn finish(tx: broadcast::Sender<()>, handles: Vec<JoinHandle<()>>) {
    drop(tx);
    for h in handles {
        h.await.expect("task");
    }
}

fn site(line: u32) -> String {
    format!("{FILE}:{line}:{}", column_of(SRC, line, "spawn_here("))
}

#[track_caller]
fn assert_status(r: &Response, status: u16, what: &str) {
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

#[test]
fn serve_binds_loopback_unless_given_an_address() {
    multi_thread(1).block_on(async {
        for addr in [":0", "0"] {
            let server = Server::bind(addr, ServerConfig::default())
                .await
                .expect("bind");
            let local = server.local_addr().expect("addr");
            assert!(local.ip().is_loopback(), "{addr} bound {local}");
            assert_eq!(local.ip().to_string(), "127.0.0.1");
        }
        let any = Server::bind("0.0.0.0:0", ServerConfig::default())
            .await
            .expect("bind any");
        assert!(any.local_addr().expect("addr").ip().is_unspecified());
        let err = taskprof::server::serve("localhost")
            .await
            .expect_err("not an address");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("localhost"), "{err}");
    });
}

#[test]
fn profile_views_text_pprof_json_and_site_filter() {
    let _serial = serial();
    multi_thread(2).block_on(async {
        let (addr, server) = start(ServerConfig::default()).await;
        let (tx, rx) = broadcast::channel::<()>(1);
        let (a, mut handles) = (line!(), spawn_here(3, &rx));
        let (b, more) = (line!(), spawn_here(1, &rx));
        handles.extend(more);
        parked(a, 3).await;
        parked(b, 1).await;

        let r = get(addr, "/debug/tasks/profile?debug=1", &[]).await;
        assert_status(&r, 200, "debug=1");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        let text = r.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "task profile: total 4", "{text}");
        assert_eq!(lines[1], format!("3 @ {}", site(a)), "{text}");
        let snap = taskprof::snapshot();
        let frame = &spawned_at(&snap, FILE, a)[0].stack()[0];
        assert_eq!(frame.label(), "server::server_wait");
        assert_eq!(lines[2], frame_line(frame), "{text}");
        assert!(text.contains(&format!("\n1 @ {}\n", site(b))), "{text}");

        let r = get(addr, "/debug/tasks/profile?debug=2", &[]).await;
        assert_status(&r, 200, "debug=2");
        let text = r.text();
        assert_eq!(text.matches("\ntask ").count(), 4, "{text}");
        assert_eq!(
            text.matches(&format!("spawned at {}", site(a))).count(),
            3,
            "{text}"
        );

        for path in ["/debug/tasks/profile", "/debug/tasks/profile?debug=0"] {
            let r = get(addr, path, &[]).await;
            assert_status(&r, 200, path);
            assert_eq!(r.header("content-type"), Some("application/octet-stream"));
            assert_eq!(
                r.header("content-disposition"),
                Some("attachment; filename=\"tasks.pb.gz\"")
            );
            assert_eq!(&r.body[..2], [0x1f, 0x8b], "gzip");
        }

        let r = get(addr, "/debug/tasks/profile?format=json", &[]).await;
        assert_status(&r, 200, "json");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let json: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(json["total"], 4);
        assert_eq!(json["tasks"].as_array().map(Vec::len), Some(4));
        assert_eq!(json["groups"][0]["count"], 3);
        assert_eq!(json["groups"][0]["spawn_site"]["line"], a);

        // `site=` keeps the tasks spawned there: file:line:col, file:line or file.
        let only_a = format!(
            "/debug/tasks/profile?debug=1&site={}",
            site(a).replace('/', "%2F").replace(':', "%3A")
        );
        for path in [
            only_a,
            format!("/debug/tasks/profile?debug=1&site={FILE}:{a}"),
        ] {
            let r = get(addr, &path, &[]).await;
            assert_status(&r, 200, &path);
            let text = r.text();
            assert!(
                text.starts_with("task profile: total 3\n3 @ "),
                "{path}: {text}"
            );
        }
        let r = get(
            addr,
            &format!("/debug/tasks/profile?format=json&site={FILE}"),
            &[],
        )
        .await;
        let json: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(json["total"], 4);

        finish(tx, handles).await;
        server.abort();
    });
}

#[test]
fn json_of_many_tasks_is_complete() {
    let _serial = serial();
    multi_thread(2).block_on(async {
        let (addr, server) = start(ServerConfig::default()).await;
        let (tx, rx) = broadcast::channel::<()>(1);
        let (a, handles) = (line!(), spawn_here(700, &rx));
        parked(a, 700).await;
        let r = get(addr, "/debug/tasks/profile?format=json", &[]).await;
        assert_status(&r, 200, "json");
        let json: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(json["total"], 700);
        let tasks = json["tasks"].as_array().expect("tasks");
        assert_eq!(tasks.len(), 700);
        let ids: Vec<u64> = tasks.iter().filter_map(|t| t["id"].as_u64()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "tasks by id");
        assert_eq!(json["groups"][0]["count"], 700);
        finish(tx, handles).await;
        server.abort();
    });
}

#[test]
fn seconds_returns_the_change_over_the_next_n_seconds() {
    let _serial = serial();
    multi_thread(2).block_on(async {
        let (addr, server) = start(ServerConfig::default()).await;
        let (tx, rx) = broadcast::channel::<()>(1);
        let (a, mut handles) = (line!(), spawn_here(2, &rx));
        parked(a, 2).await;

        let text = tokio::spawn(get(addr, "/debug/tasks/profile?seconds=2&debug=1", &[]));
        let json = tokio::spawn(get(addr, "/debug/tasks/profile?seconds=2&format=json", &[]));
        let pprof = tokio::spawn(get(addr, "/debug/tasks/profile?seconds=2", &[]));
        // Well after the requests arrived, well before they end.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (b, more) = (line!(), spawn_here(3, &rx));
        handles.extend(more);
        parked(b, 3).await;

        let r = text.await.expect("text");
        assert_status(&r, 200, "seconds debug=1");
        let text = r.text();
        assert!(
            text.starts_with(&format!("task profile diff: total +3\n+3 @ {}\n", site(b))),
            "{text}"
        );
        let r = json.await.expect("json");
        let json: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(json["total"], 3);
        assert_eq!(json["groups"][0]["delta"], 3);
        let r = pprof.await.expect("pprof");
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(&r.body[..2], [0x1f, 0x8b], "gzip");

        finish(tx, handles).await;
        server.abort();
    });
}

#[test]
fn at_most_four_seconds_profiles_wait_at_once() {
    multi_thread(2).block_on(async {
        let (addr, server) = start(ServerConfig::default()).await;
        let waiting: Vec<_> = (0..4)
            .map(|_| tokio::spawn(get(addr, "/debug/tasks/profile?seconds=2&debug=1", &[])))
            .collect();
        // Let the four arrive and take their places.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = get(addr, "/debug/tasks/profile?seconds=1&debug=1", &[]).await;
        assert_status(&r, 429, "fifth delta");
        assert!(r.text().contains("at most 4"), "{}", r.text());
        for w in waiting {
            assert_status(&w.await.expect("delta"), 200, "delta");
        }
        // Places are given back.
        let r = get(addr, "/debug/tasks/profile?seconds=1&debug=1", &[]).await;
        assert_status(&r, 200, "after");
        server.abort();
    });
}

#[test]
fn bad_parameters_get_400_with_a_message() {
    multi_thread(1).block_on(async {
        let (addr, server) = start(ServerConfig::default()).await;
        for (query, says) in [
            ("debug=7", "invalid debug=\"7\""),
            ("debug=-1", "invalid debug"),
            ("debug=%3Cscript%3E", "invalid debug=\"<script>\""),
            (
                "seconds=-1",
                "invalid seconds=\"-1\": want a whole number from 1 to 600",
            ),
            ("seconds=99999", "invalid seconds=\"99999\""),
            ("seconds=0", "invalid seconds"),
            ("seconds=abc", "invalid seconds"),
            ("seconds=1.5", "invalid seconds"),
            ("seconds=1&debug=2", "seconds and debug=2 are incompatible"),
            ("debug=2&seconds=1", "seconds and debug=2 are incompatible"),
            ("format=xml", "invalid format=\"xml\""),
            ("debug=%FF", "invalid debug"),
        ] {
            let r = get(addr, &format!("/debug/tasks/profile?{query}"), &[]).await;
            assert_status(&r, 400, query);
            assert_eq!(
                r.header("content-type"),
                Some("text/plain; charset=utf-8"),
                "{query}"
            );
            let body = r.text();
            assert!(body.contains(says), "{query}: {body}");
            assert!(
                body.ends_with('\n') && body.lines().count() == 1,
                "{query}: {body:?}"
            );
        }
        server.abort();
    });
}

#[test]
fn token_is_required_when_configured() {
    multi_thread(1).block_on(async {
        let (addr, server) = start(ServerConfig::default().token("s3cret")).await;
        let paths = [
            "/debug/tasks/",
            "/debug/tasks/profile?debug=1",
            "/debug/tasks/health",
            "/debug/tasks/metrics",
        ];
        for path in paths {
            for headers in [
                &[][..],
                &["Authorization: Bearer wrong"],
                &["Authorization: Bearer s3cre"],
                &["Authorization: Bearer s3cretx"],
                &["Authorization: Basic czNjcmV0"],
                &["Authorization: s3cret"],
            ] {
                let r = get(addr, path, headers).await;
                assert_status(&r, 401, &format!("{path} {headers:?}"));
                assert_eq!(
                    r.header("www-authenticate"),
                    Some("Bearer realm=\"taskprof\"")
                );
            }
            for ok in [
                "Authorization: Bearer s3cret",
                "authorization: bearer s3cret",
            ] {
                let r = get(addr, path, &[ok]).await;
                assert_status(&r, 200, &format!("{path} {ok}"));
            }
        }
        // Bad parameters are only judged once authorized.
        let r = get(addr, "/debug/tasks/profile?debug=7", &[]).await;
        assert_status(&r, 401, "unauthorized bad query");
        server.abort();
    });
}

#[test]
fn health_reports_up_tasks_and_uptime() {
    let _serial = serial();
    multi_thread(2).block_on(async {
        let (addr, server) = start(ServerConfig::default()).await;
        let (tx, rx) = broadcast::channel::<()>(1);
        let (a, handles) = (line!(), spawn_here(2, &rx));
        parked(a, 2).await;
        let r = get(addr, "/debug/tasks/health", &[]).await;
        assert_status(&r, 200, "health");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let json: Value = serde_json::from_slice(&r.body).expect("JSON");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 3, "{json}");
        assert_eq!(json["status"], "UP");
        assert_eq!(json["tasks"], 2);
        assert!(is_age(json["uptime"].as_str().expect("uptime")), "{json}");

        let h = taskprof::health();
        assert_eq!((h.status(), h.tasks()), ("UP", 2));
        assert!(h.uptime() > Duration::ZERO);
        assert!(
            h.to_string()
                .starts_with(r#"{"status":"UP","tasks":2,"uptime":""#)
        );
        finish(tx, handles).await;
        server.abort();
    });
}

#[test]
fn text_and_html_views_are_capped_with_a_note() {
    let _serial = serial();
    multi_thread(2).block_on(async {
        let config = ServerConfig::default().max_tasks(5).max_groups(2);
        let (addr, server) = start(config).await;
        let (tx, rx) = broadcast::channel::<()>(1);
        let (a, mut handles) = (line!(), spawn_here(4, &rx));
        let (b, more) = (line!(), spawn_here(3, &rx));
        handles.extend(more);
        let (c, more) = (line!(), spawn_here(1, &rx));
        handles.extend(more);
        for (line, n) in [(a, 4), (b, 3), (c, 1)] {
            parked(line, n).await;
        }

        let text = get(addr, "/debug/tasks/profile?debug=2", &[]).await.text();
        assert!(text.starts_with("task profile: total 8\n"), "{text}");
        assert_eq!(text.matches("\ntask ").count(), 5, "{text}");
        assert!(
            text.ends_with(
                "# capped: 3 more tasks not shown (at most 5 tasks here); \
                 ?debug=1, ?debug=0 and ?format=json cover them all\n"
            ),
            "{text}"
        );

        let text = get(addr, "/debug/tasks/profile?debug=1", &[]).await.text();
        assert_eq!(text.matches(" @ ").count(), 2, "{text}");
        assert!(
            text.ends_with(
                "# capped: 1 more groups with 1 tasks not shown (at most 2 groups here); \
                 ?debug=0 and ?format=json have them all\n"
            ),
            "{text}"
        );

        let html = get(addr, "/debug/tasks/", &[]).await.text();
        assert_eq!(html.matches("<tr id=\"g").count(), 2, "{html}");
        assert!(
            html.contains(
                "id=\"capped\">Showing the top 2 of 3 groups; 1 more groups with 1 tasks"
            ),
            "{html}"
        );

        // pprof stays complete.
        let r = get(addr, "/debug/tasks/profile", &[]).await;
        assert_status(&r, 200, "pprof");
        finish(tx, handles).await;
        server.abort();
    });
}

#[test]
fn mounts_under_any_prefix() {
    multi_thread(1).block_on(async {
        let app = axum::Router::new().nest("/admin/x", taskprof::server::router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let r = get(addr, "/admin/x/debug/tasks", &[]).await;
        assert_status(&r, 308, "redirect to the index");
        assert_eq!(
            r.header("location"),
            Some("tasks/"),
            "relative, prefix-agnostic"
        );
        let r = get(addr, "/admin/x/debug/tasks/", &[]).await;
        assert_status(&r, 200, "index");
        let html = r.text();
        // Links are relative to the index, so they stay under the prefix.
        for link in [
            "href=\"profile?debug=1\"",
            "href=\"metrics\"",
            "href=\"health\"",
        ] {
            assert!(html.contains(link), "{link}");
        }
        assert!(!html.contains("href=\"/"), "no absolute links");
        for path in [
            "/admin/x/debug/tasks/health",
            "/admin/x/debug/tasks/metrics",
            "/admin/x/debug/tasks/profile?debug=1",
        ] {
            assert_status(&get(addr, path, &[]).await, 200, path);
        }
        assert_eq!(get(addr, "/debug/tasks/health", &[]).await.status, 404);
        server.abort();
    });
}
