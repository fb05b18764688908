//! HTTP frames never leak credentials: a request to
//! `http://user:secret@host/path?token=abc&x=1#frag` shows as `http://host/path?token=…&x=…` in
//! every format (grouped and per-task text, JSON, diffs, pprof), whichever way it was made:
//! `.send()` / `.execute(r)` inside `#[taskprof::track]`, or the explicit
//! `taskprof::http::{send, execute}` anywhere in a tracked task.
//!
//! The requests go to a silent server on 127.0.0.1, so they stay in flight while the snapshot is
//! taken. The URL is only ever held in variables: frames quote the source text of awaited
//! expressions, and a literal there is source, not a leak.
#![forbid(unsafe_code)]

use std::io::Read;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use taskprof::http::{HttpCallInfo, Timeout};
use taskprof::{Snapshot, TaskInfo};
use taskprof_tests::{Line, assert_site, column_of, silent_server, wait_for};
use tokio::net::TcpListener;

const SRC: &str = include_str!("http_redact.rs");
const FILE: &str = file!();

/// Line of the explicit `taskprof::http::send` call.
static SEND_LINE: Line = Line::new();
/// Line of the explicit `taskprof::http::execute` call.
static EXECUTE_LINE: Line = Line::new();

/// What must never show, and what must.
const HIDDEN: [&str; 5] = ["secret", "abc", "user:", "#frag", "token=abc"];
const SHOWN: &str = "token=…";

/// The request URL, credentials and all.
fn credentialed_url(addr: SocketAddr) -> String {
    format!("http://user:secret@{addr}/path?token=abc&x=1#frag")
}

/// What the frames show for it.
fn redacted_url(addr: SocketAddr) -> String {
    format!("http://{addr}/path?token=…&x=…")
}

/// A server answering `ok` on every path.
async fn ok_server() -> SocketAddr {
    let app = Router::new().fallback(get(|| async { "ok" }));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the ok server");
    let addr = listener.local_addr().expect("ok server address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A GET of `url` as a `reqwest::Request`, built without the builder, so its URL keeps the
/// userinfo as written.
fn request(url: &str) -> reqwest::Request {
    let url = reqwest::Url::parse(url).expect("a valid URL");
    reqwest::Request::new(reqwest::Method::GET, url)
}

/// `builder.send()` inside `#[track]`.
#[taskprof::track]
async fn tracked_send(client: reqwest::Client, url: String) -> reqwest::Result<String> {
    let response = client.get(url).send().await?;
    response.text().await
}

/// `client.execute(request)` inside `#[track]`.
#[taskprof::track]
async fn tracked_execute(
    client: reqwest::Client,
    request: reqwest::Request,
) -> reqwest::Result<String> {
    let response = client.execute(request).await?;
    response.text().await
}

/// `taskprof::http::send` in a tracked task, outside any `#[track]` function.
async fn explicit_send(client: reqwest::Client, url: String) -> reqwest::Result<String> {
    // The call is located where `send` is called; the frame shows once it is awaited.
    let (line, call) = (line!(), taskprof::http::send(client.get(url)));
    SEND_LINE.set(line);
    call.await?.text().await
}

/// `taskprof::http::execute` in a tracked task, outside any `#[track]` function.
async fn explicit_execute(
    client: reqwest::Client,
    request: reqwest::Request,
) -> reqwest::Result<String> {
    let (line, call) = (line!(), taskprof::http::execute(&client, request));
    EXECUTE_LINE.set(line);
    call.await?.text().await
}

/// The HTTP calls in flight to `addr`.
fn calls_to(snap: &Snapshot, addr: SocketAddr) -> Vec<(&TaskInfo, &HttpCallInfo)> {
    let prefix = format!("http://{addr}/");
    snap.http_calls()
        .into_iter()
        .filter(|(_, call)| call.url().starts_with(&prefix))
        .collect()
}

/// Decompresses a gzipped pprof profile.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzipped profile");
    out
}

/// True when `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts `output` (named `what`) shows none of [`HIDDEN`] and does show [`SHOWN`].
#[track_caller]
fn assert_redacted(what: &str, output: &[u8]) {
    for hidden in HIDDEN {
        assert!(
            !contains(output, hidden),
            "{what} shows {hidden:?}:\n{}",
            String::from_utf8_lossy(output)
        );
    }
    assert!(
        contains(output, SHOWN),
        "{what} does not show {SHOWN:?}:\n{}",
        String::from_utf8_lossy(output)
    );
}

/// Four calls to a credentialed URL, made four ways, in flight: no format shows the
/// credentials, the query values or the fragment, and all show the query keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_show_in_any_format() {
    let addr = silent_server().await;
    let url = credentialed_url(addr);
    // What the probes read does hold the credentials (the builder moves them to a header, a
    // `Request` built directly keeps them in its URL): the frames must drop them.
    let raw = request(&url);
    assert!(raw.url().as_str().contains("user:secret"), "{}", raw.url());
    assert!(raw.url().as_str().contains("token=abc"), "{}", raw.url());
    let client = reqwest::Client::new();
    let base = taskprof::snapshot();
    let tasks = [
        taskprof::spawn(tracked_send(client.clone(), url.clone())),
        taskprof::spawn(tracked_execute(client.clone(), request(&url))),
        taskprof::spawn(explicit_send(client.clone(), url.clone())),
        taskprof::spawn(explicit_execute(client.clone(), request(&url))),
    ];

    let snap = wait_for("the four calls in flight", |snap| {
        (calls_to(snap, addr).len() == 4).then(|| snap.clone())
    })
    .await;
    for (task, call) in calls_to(&snap, addr) {
        assert_eq!(call.url(), redacted_url(addr), "{task}");
        assert_eq!(call.method(), "GET");
        assert_eq!(call.timeout(), Timeout::None);
        assert_eq!(
            call.label(),
            format!("http GET {}", redacted_url(addr)),
            "{task}"
        );
    }

    assert_redacted("the grouped profile", format!("{snap}").as_bytes());
    assert_redacted("the per-task profile", format!("{snap:#}").as_bytes());
    let json = serde_json::to_string(&snap).expect("snapshot JSON");
    assert_redacted("the JSON snapshot", json.as_bytes());
    assert_redacted("the pprof snapshot", &gunzip(&snap.to_pprof()));
    let diff = snap.diff(&base);
    assert_redacted("the diff", format!("{diff}").as_bytes());
    let json = serde_json::to_string(&diff).expect("diff JSON");
    assert_redacted("the JSON diff", json.as_bytes());
    assert_redacted("the pprof diff", &gunzip(&diff.to_pprof()));
    for (task, _) in calls_to(&snap, addr) {
        assert_redacted("a task's block", task.to_string().as_bytes());
        let debug = format!("{:?}", task.stack());
        assert_redacted("a stack's Debug", debug.as_bytes());
    }

    for task in tasks {
        task.abort();
        assert!(task.await.expect_err("aborted in flight").is_cancelled());
    }
    wait_for("the aborted calls to be gone", |snap| {
        calls_to(snap, addr).is_empty().then_some(())
    })
    .await;
}

/// `redact_url`, the function behind the frames, on the same URL and a few harder ones.
#[test]
fn redact_url_drops_userinfo_values_and_fragment() {
    let addr: SocketAddr = "127.0.0.1:8081".parse().expect("an address");
    assert_eq!(
        taskprof::http::redact_url(&credentialed_url(addr)),
        redacted_url(addr)
    );
    let redact = taskprof::http::redact_url;
    // An `@` in the password, and an empty value.
    assert_eq!(redact("http://u:p@ss@h/p?a=&b"), "http://h/p?a=…&b");
    // A control character cannot break a line of the text profile.
    assert_eq!(redact("http://h/p?k=v\n#x"), "http://h/p?k=…");
    assert_eq!(redact("http://h:1"), "http://h:1");
}

/// The explicit forms, outside any `#[track]` function: the tracked task's only frame is the
/// HTTP call, located at the `send` / `execute` call; the response comes back unchanged; and
/// the calls leave no frame behind once they complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_send_and_execute_record_frames() {
    let silent = silent_server().await;
    let url = format!("http://{silent}/explicit?k=v");
    let client = reqwest::Client::new();
    let send = taskprof::spawn(explicit_send(client.clone(), url.clone()));
    let execute = taskprof::spawn(explicit_execute(client.clone(), request(&url)));

    let snap = wait_for("both explicit calls in flight", |snap| {
        (calls_to(snap, silent).len() == 2 && EXECUTE_LINE.try_get().is_some())
            .then(|| snap.clone())
    })
    .await;
    let mut lines = Vec::new();
    for (task, call) in calls_to(&snap, silent) {
        assert_eq!(task.stack().len(), 1, "only the HTTP frame:\n{task}");
        assert_eq!(task.stack()[0].http(), Some(call));
        assert_eq!(call.url(), format!("http://{silent}/explicit?k=…"));
        assert_eq!(call.method(), "GET");
        lines.push(call.location().line());
    }
    lines.sort_unstable();
    let mut expected = vec![SEND_LINE.get(), EXECUTE_LINE.get()];
    expected.sort_unstable();
    assert_eq!(lines, expected, "{snap:#}");
    for (task, call) in calls_to(&snap, silent) {
        let (line, needle) = if call.location().line() == SEND_LINE.get() {
            (SEND_LINE.get(), "taskprof::http::send")
        } else {
            (EXECUTE_LINE.get(), "taskprof::http::execute")
        };
        assert_site(
            Some(call.location()),
            FILE,
            line,
            column_of(SRC, line, needle),
        );
        let frame = &task.stack()[0];
        assert_eq!(
            (frame.line(), frame.column()),
            (line, call.location().column())
        );
    }
    send.abort();
    execute.abort();

    // Against a server that answers, both return its response, and no call stays listed.
    let ok = ok_server().await;
    let url = format!("http://{ok}/answer?k=v");
    let send = taskprof::spawn(explicit_send(client.clone(), url.clone()));
    let execute = taskprof::spawn(explicit_execute(client.clone(), request(&url)));
    let tracked = taskprof::spawn(tracked_send(client.clone(), url.clone()));
    let tracked_exec = taskprof::spawn(tracked_execute(client.clone(), request(&url)));
    for task in [send, execute, tracked, tracked_exec] {
        let body = task.await.expect("the task").expect("the response");
        assert_eq!(body, "ok");
    }
    wait_for("no call to the answering server", |snap| {
        calls_to(snap, ok).is_empty().then_some(())
    })
    .await;
    // Outside a tracked task the explicit form works too; it just has no task to show in.
    let body = tokio::spawn(explicit_send(client, url))
        .await
        .expect("the untracked task")
        .expect("the response");
    assert_eq!(body, "ok");
}
