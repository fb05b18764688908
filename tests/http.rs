//! The leak taskprof exists to find, end to end over real HTTP on 127.0.0.1: a `/health` handler
//! that spawns a registry check through a `reqwest::Client` without a timeout, against a registry
//! that never answers. Every check leaves a task parked on the same `.send()`; the profile shows
//! them as one group whose innermost frame is the HTTP call. The fixed client (with a timeout)
//! returns to zero once the timeouts fire. Also: which timeout an HTTP frame reports for a
//! per-request timeout, a client timeout and a read timeout. One ignored test pins a known gap:
//! `.execute(r)` through `&reqwest::Client` / `Arc<reqwest::Client>` is not recorded.
//!
//! Tests of this binary run in parallel; each one selects its own tasks by a label naming its
//! registry (or by its silent server's address in the frame's URL), never by global totals.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use taskprof::http::{HttpCallInfo, Timeout};
use taskprof::{Frame, Snapshot, TaskInfo};
use taskprof_tests::{Line, PATIENCE, assert_site, column_of, labelled, silent_server, wait_for};
use tokio::net::TcpListener;

const SRC: &str = include_str!("http.rs");
const FILE: &str = file!();

/// Line of the registry check's `.send().await`.
static SEND_LINE: Line = Line::new();
/// Line of the `tokio::spawn` of a registry check in [`health`].
static SPAWN_LINE: Line = Line::new();
/// Line of the `.send().await` in [`get_once`].
static GET_LINE: Line = Line::new();

/// Label key naming the registry a check task talks to.
const REGISTRY: &str = "registry";

/// Client of a schema registry, as the seed's service had it.
#[derive(Clone)]
struct Registry {
    /// Names this test's registry; the check tasks carry it as the `registry` label.
    name: Arc<str>,
    /// `http://user:password@host:port`, as the seed's configuration had it.
    base: String,
    client: reqwest::Client,
    /// Checks that returned (with a response or an error).
    done: Arc<AtomicUsize>,
}

impl Registry {
    /// Lists the registry's subjects: with no timeout, waits as long as the registry is silent.
    #[taskprof::track]
    async fn check(&self) -> Result<u16, reqwest::Error> {
        let url = format!("{}/subjects?token=s3cret-token", self.base);
        let (_, sent) = (SEND_LINE.set(line!()), self.client.get(url).send().await);
        Ok(sent?.status().as_u16())
    }
}

/// `/health`: fires a registry check in the background and reports UP.
#[taskprof::track]
async fn health(State(registry): State<Registry>) -> &'static str {
    let name = registry.name.clone();
    let check = taskprof::labels::with(&[(REGISTRY, &*name)], async move {
        let _ = registry.check().await;
        registry.done.fetch_add(1, Ordering::SeqCst);
    });
    let (_, _task) = (SPAWN_LINE.set(line!()), tokio::spawn(check));
    "UP"
}

/// Serves `/health` on 127.0.0.1 with `registry`; returns its address.
async fn service(registry: Registry) -> SocketAddr {
    let app = Router::new()
        .route("/health", get(health))
        .with_state(registry);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the service");
    let addr = listener.local_addr().expect("service address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The uptime checker: a client with a generous timeout of its own.
fn uptime_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("build the uptime client")
}

/// Calls `GET /health` once and checks the answer.
async fn call_health(uptime: &reqwest::Client, service: SocketAddr) {
    let response = uptime
        .get(format!("http://{service}/health"))
        .send()
        .await
        .expect("GET /health");
    assert_eq!(response.status().as_u16(), 200, "GET /health status");
    assert_eq!(response.text().await.expect("/health body"), "UP");
}

/// A registry named `name` behind a silent server, checked with `client`.
async fn registry(name: &str, client: reqwest::Client) -> (Registry, SocketAddr) {
    let addr = silent_server().await;
    let registry = Registry {
        name: name.into(),
        base: format!("http://schema:hunter2@{addr}"),
        client,
        done: Arc::new(AtomicUsize::new(0)),
    };
    (registry, addr)
}

/// The registry-check tasks of registry `name`.
fn checks<'a>(snap: &'a Snapshot, name: &str) -> Vec<&'a TaskInfo> {
    labelled(snap, REGISTRY, name)
}

/// The HTTP calls in flight to `addr`.
fn calls_to(snap: &Snapshot, addr: SocketAddr) -> Vec<(&TaskInfo, &HttpCallInfo)> {
    let prefix = format!("http://{addr}/");
    snap.http_calls()
        .into_iter()
        .filter(|(_, call)| call.url().starts_with(&prefix))
        .collect()
}

/// The frame label of [`Registry::check`].
fn check_label() -> String {
    format!("{}::Registry::check", module_path!())
}

/// Asserts the frames of a registry check parked on its HTTP call: the HTTP frame (GET, redacted
/// URL, `timeout`) at the `.send()` of [`Registry::check`], then the check's own frame parked on
/// that same line.
#[track_caller]
fn assert_check_stack(stack: &[Frame], addr: SocketAddr, timeout: Timeout) {
    let send_line = SEND_LINE.get();
    let send_col = column_of(SRC, send_line, "send()");
    let http_frame = stack.first().expect("a stack");
    let http = http_frame
        .http()
        .unwrap_or_else(|| panic!("innermost frame is not an HTTP call: {stack:?}"));
    let url = format!("http://{addr}/subjects?token=…");
    assert_eq!(http.method(), "GET");
    assert_eq!(http.url(), url);
    assert_eq!(http.label(), format!("http GET {url}"));
    assert_eq!(http_frame.label(), http.label());
    assert_eq!(http.timeout(), timeout);
    assert_eq!(http.timeout().is_set(), timeout != Timeout::None);
    assert_site(Some(http.location()), FILE, send_line, send_col);
    assert_eq!(
        (http_frame.file(), http_frame.line(), http_frame.column()),
        (FILE, send_line, send_col)
    );

    let check = stack.get(1).expect("the check's frame under the HTTP call");
    assert_eq!(check.label(), check_label());
    assert!(check.http().is_none());
    assert_eq!((check.file(), check.line()), (FILE, send_line), "{check:?}");
    assert_eq!(check.column(), send_col);
    assert_eq!(check.awaiting(), Some("self.client.get(url).send()"));
}

/// The seed's leak: every `/health` call leaves one task parked forever on the registry check's
/// `.send()`, all in one group whose innermost frame is the HTTP call without a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaky_health_leaves_one_parked_check_per_call() {
    const CHECKS: usize = 8;
    let (registry, addr) = registry("leaky", reqwest::Client::new()).await;
    let done = registry.done.clone();
    let service = service(registry).await;
    let uptime = uptime_client();
    let base = taskprof::snapshot();
    for _ in 0..CHECKS {
        call_health(&uptime, service).await;
    }

    let snap = wait_for("the 8 leaky checks to park on their HTTP call", |snap| {
        let parked = snap.groups().iter().any(|g| {
            g.labels().get(REGISTRY) == Some("leaky")
                && g.count() == CHECKS
                && g.stack().first().is_some_and(|f| f.http().is_some())
        });
        parked.then(|| snap.clone())
    })
    .await;

    let groups: Vec<_> = snap
        .groups()
        .iter()
        .filter(|g| g.labels().get(REGISTRY) == Some("leaky"))
        .collect();
    assert_eq!(groups.len(), 1, "one group of checks:\n{snap}");
    let group = groups[0];
    assert_eq!(group.count(), CHECKS, "{snap}");
    assert!(!group.lost_waker(), "a socket can still wake them:\n{snap}");
    assert_check_stack(group.stack(), addr, Timeout::None);
    let spawn_line = SPAWN_LINE.get();
    assert_site(
        group.spawn_site(),
        FILE,
        spawn_line,
        column_of(SRC, spawn_line, "tokio::spawn"),
    );
    assert_eq!(
        group.stack().get(2).map(Frame::label),
        Some(format!("{}::health", module_path!()).as_str()),
        "the handler's frame, where it awaits the check:\n{snap}"
    );

    // Every call is listed, with the task making it.
    let calls = calls_to(&snap, addr);
    assert_eq!(calls.len(), CHECKS, "{snap:#}");
    for (task, call) in &calls {
        assert_eq!(task.labels().get(REGISTRY), Some("leaky"));
        assert_eq!(call.method(), "GET");
        assert_eq!(call.timeout(), Timeout::None);
        assert_eq!(call.url(), format!("http://{addr}/subjects?token=…"));
        assert_eq!(task.stack().first().and_then(Frame::http), Some(*call));
    }
    let mut ids: Vec<u64> = calls.iter().map(|(t, _)| t.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), CHECKS, "one call per task");

    // The grouped text names the call and the line; the diff shows the growth.
    let text = snap.to_string();
    let header = format!(
        "{CHECKS} @ {FILE}:{spawn_line}:{} # labels: {{\"registry\":\"leaky\"}}",
        column_of(SRC, spawn_line, "tokio::spawn")
    );
    let at = text
        .lines()
        .position(|l| l == header)
        .unwrap_or_else(|| panic!("no line {header:?} in:\n{text}"));
    let http_line = text.lines().nth(at + 1).expect("the HTTP frame line");
    let prefix = format!("#\thttp GET http://{addr}/subjects?token=… (no timeout, ");
    let suffix = format!(
        ")\t{FILE}:{}:{}",
        SEND_LINE.get(),
        column_of(SRC, SEND_LINE.get(), "send()")
    );
    assert!(
        http_line.starts_with(&prefix) && http_line.ends_with(&suffix),
        "{http_line:?}"
    );
    let diff = snap.diff(&base);
    let grown = diff
        .groups()
        .iter()
        .find(|g| g.labels().get(REGISTRY) == Some("leaky"))
        .unwrap_or_else(|| panic!("the checks are not in the diff:\n{diff}"));
    assert_eq!(grown.delta(), CHECKS as i64);
    assert_eq!(done.load(Ordering::SeqCst), 0, "no check can have returned");
}

/// The fix: a client with a total timeout. Its HTTP frames say so while in flight, and once the
/// timeouts fire no check task is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fixed_client_times_out_and_leaves_nothing() {
    const CHECKS: usize = 8;
    const TIMEOUT: Duration = Duration::from_millis(300);
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("build the fixed client");
    let (registry, addr) = registry("fixed", client).await;
    let done = registry.done.clone();
    let service = service(registry).await;
    let uptime = uptime_client();
    let mut called = 0;
    for _ in 0..CHECKS {
        call_health(&uptime, service).await;
        called += 1;
    }

    // Catch one in flight. Should every check have timed out before a snapshot saw it (a very
    // slow machine), call /health again rather than fail on timing.
    let start = Instant::now();
    let seen = loop {
        let snap = taskprof::snapshot();
        if let Some((task, _)) = calls_to(&snap, addr).first() {
            break task.stack().to_vec();
        }
        if checks(&snap, "fixed").is_empty() {
            call_health(&uptime, service).await;
            called += 1;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "never saw a check in flight:\n{snap:#}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_check_stack(&seen, addr, Timeout::Client(TIMEOUT));

    wait_for("every fixed check to time out and end", |snap| {
        (done.load(Ordering::SeqCst) == called
            && checks(snap, "fixed").is_empty()
            && calls_to(snap, addr).is_empty())
        .then_some(())
    })
    .await;
}

/// One GET of `url` on `client`, with `timeout` on the request if given.
#[taskprof::track]
async fn get_once(
    client: reqwest::Client,
    url: String,
    timeout: Option<Duration>,
) -> reqwest::Result<u16> {
    let mut request = client.get(url);
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let (_, sent) = (GET_LINE.set(line!()), request.send().await);
    Ok(sent?.status().as_u16())
}

/// Runs [`get_once`] against a silent server and returns what its HTTP frame reports.
async fn in_flight_timeout(client: reqwest::Client, timeout: Option<Duration>) -> Timeout {
    let addr = silent_server().await;
    let url = format!("http://{addr}/t?k=v");
    let task = taskprof::spawn(get_once(client, url, timeout));
    let (id, call) = wait_for("the GET to be in flight", |snap| {
        calls_to(snap, addr)
            .first()
            .map(|(t, c)| (t.id(), (*c).clone()))
    })
    .await;
    assert_eq!(call.method(), "GET");
    assert_eq!(call.url(), format!("http://{addr}/t?k=…"));
    let line = GET_LINE.get();
    assert_site(
        Some(call.location()),
        FILE,
        line,
        column_of(SRC, line, "send()"),
    );
    task.abort();
    assert!(
        task.await
            .expect_err("aborted while in flight")
            .is_cancelled(),
        "the call cannot have finished"
    );
    wait_for("the aborted call to be gone", |snap| {
        (calls_to(snap, addr).is_empty() && !snap.tasks().iter().any(|t| t.id() == id))
            .then_some(())
    })
    .await;
    call.timeout()
}

/// Long enough never to fire during a test.
const LONG: Duration = Duration::from_secs(600);

/// `RequestBuilder::timeout` shows as `Timeout::Request`, and wins over the client's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_is_reported() {
    assert_eq!(
        in_flight_timeout(reqwest::Client::new(), Some(LONG)).await,
        Timeout::Request(LONG)
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .expect("build a client with a timeout");
    assert_eq!(
        in_flight_timeout(client, Some(LONG)).await,
        Timeout::Request(LONG)
    );
}

/// `ClientBuilder::timeout` shows as `Timeout::Client`, with odd durations read back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timeout_is_reported() {
    for timeout in [
        LONG,
        Duration::from_millis(601_500),
        Duration::from_secs(3600),
    ] {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("build a client with a timeout");
        assert_eq!(
            in_flight_timeout(client, None).await,
            Timeout::Client(timeout)
        );
    }
}

/// `ClientBuilder::read_timeout` alone shows as `Timeout::Read`; with a total timeout too, the
/// total one is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_is_reported() {
    let client = reqwest::Client::builder()
        .read_timeout(LONG)
        .build()
        .expect("build a client with a read timeout");
    assert_eq!(in_flight_timeout(client, None).await, Timeout::Read(LONG));
    let client = reqwest::Client::builder()
        .read_timeout(LONG)
        .timeout(Duration::from_secs(700))
        .build()
        .expect("build a client with both timeouts");
    assert_eq!(
        in_flight_timeout(client, None).await,
        Timeout::Client(Duration::from_secs(700))
    );
}

/// A client without any timeout: `Timeout::None`, and the text says `no timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_timeout_is_reported() {
    assert_eq!(
        in_flight_timeout(reqwest::Client::new(), None).await,
        Timeout::None
    );
    assert_eq!(Timeout::None.to_string(), "no timeout");
    assert_eq!(
        Timeout::Client(Duration::from_millis(300)).to_string(),
        "client timeout 300ms"
    );
    assert_eq!(
        Timeout::Request(Duration::from_secs(5)).to_string(),
        "timeout 5s"
    );
    assert_eq!(
        Timeout::Read(Duration::from_secs(5)).to_string(),
        "read timeout 5s"
    );
}

/// `client.execute(request)` through a shared reference.
#[taskprof::track]
async fn execute_via_ref(
    client: &reqwest::Client,
    request: reqwest::Request,
) -> reqwest::Result<u16> {
    Ok(client.execute(request).await?.status().as_u16())
}

/// `client.execute(request)` through an `Arc`.
#[taskprof::track]
async fn execute_via_arc(
    client: Arc<reqwest::Client>,
    request: reqwest::Request,
) -> reqwest::Result<u16> {
    Ok(client.execute(request).await?.status().as_u16())
}

/// Clients are commonly passed as `&reqwest::Client` or shared as `Arc<reqwest::Client>`; their
/// `execute` calls should be HTTP frames too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known gap: `.execute(r)` is only recorded on a `reqwest::Client` place, not through \
            `&Client` or `Arc<Client>` (the autoref probe matches `Client` exactly)"]
async fn execute_through_references_is_recorded() {
    let addr = silent_server().await;
    let request = || {
        let url = reqwest::Url::parse(&format!("http://{addr}/r")).expect("a valid URL");
        reqwest::Request::new(reqwest::Method::GET, url)
    };
    let client = reqwest::Client::new();
    let by_ref = {
        let (client, request) = (client.clone(), request());
        taskprof::spawn(async move { execute_via_ref(&client, request).await })
    };
    let by_arc = taskprof::spawn(execute_via_arc(Arc::new(client), request()));
    wait_for("both calls as HTTP frames", |snap| {
        (calls_to(snap, addr).len() == 2).then_some(())
    })
    .await;
    by_ref.abort();
    by_arc.abort();
}
