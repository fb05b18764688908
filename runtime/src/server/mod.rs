//! Debug endpoints (feature `server`), the analog of Go's `net/http/pprof` for tasks.
//!
//! [`router`] returns an axum [`Router`] to mount under any prefix; [`serve`] runs it as a
//! standalone debug server on 127.0.0.1. Paths, relative to the mount point:
//!
//! | path | what |
//! |---|---|
//! | `GET /debug/tasks/` | HTML index: totals, a chart of live tasks per spawn site over the last minutes, the top groups |
//! | `GET /debug/tasks/profile` | `?debug=0` (default) gzipped pprof, as an attachment; `?debug=1` grouped text; `?debug=2` per-task text; `?format=json`; `?seconds=N`: the change over the next N seconds (not with `debug=2`; at most 4 at once, more get `429`); `?site=FILE:LINE[:COL]` keeps the tasks spawned there |
//! | `GET /debug/tasks/health` | `{"status":"UP","tasks":N,"uptime":"…"}` ([`crate::health`]) |
//! | `GET /debug/tasks/metrics` | Prometheus text: `taskprof_tasks{site,name}`, `taskprof_tasks_total`, `taskprof_spawned_total`, `taskprof_completed_total` |
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! // Mounted in an application's own router, behind a token:
//! let config = taskprof::server::ServerConfig::default().token("s3cret");
//! let app = axum::Router::new().nest("/admin", taskprof::server::router_with(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tokio::spawn(async move { axum::serve(listener, app).await });
//! // Or standalone, on 127.0.0.1:6060:
//! taskprof::server::serve("6060").await
//! # }
//! ```
//!
//! Bad parameters get `400 Bad Request` with a one-line reason. Text and HTML views are capped
//! ([`ServerConfig::max_groups`], [`ServerConfig::max_tasks`]) with a note saying what was left
//! out; pprof and JSON are complete (JSON is streamed).

mod history;
mod html;
mod metrics;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Snapshot;

/// Settings of the debug endpoints. Build with the methods, starting from `default()`.
///
/// ```
/// use std::time::Duration;
/// let config = taskprof::server::ServerConfig::default()
///     .token("s3cret")
///     .sample_interval(Duration::from_secs(5));
/// assert!(format!("{config:?}").contains("token: Some(\"<redacted>\")"));
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    token: Option<String>,
    sample_interval: Duration,
    max_groups: usize,
    max_tasks: usize,
    max_series: usize,
    max_seconds: u64,
    /// `?seconds=N` requests in flight on this router; each holds a snapshot while it waits.
    deltas: Arc<AtomicUsize>,
}

/// At most this many `?seconds=N` requests wait at once per router; more get `429`.
const MAX_DELTAS: usize = 4;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            token: None,
            sample_interval: Duration::from_secs(1),
            max_groups: 500,
            max_tasks: 10_000,
            max_series: 100,
            max_seconds: 600,
            deltas: Arc::default(),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("sample_interval", &self.sample_interval)
            .field("max_groups", &self.max_groups)
            .field("max_tasks", &self.max_tasks)
            .field("max_series", &self.max_series)
            .field("max_seconds", &self.max_seconds)
            .finish()
    }
}

impl ServerConfig {
    /// Requires `Authorization: Bearer TOKEN` on every request; others get `401`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// How often the chart's sampler counts the live tasks per spawn site (default 1 s, at least
    /// 10 ms). The sampler keeps the last 300 samples; one sampler serves the whole process, at
    /// the interval of the last router built.
    pub fn sample_interval(mut self, every: Duration) -> Self {
        self.sample_interval = every;
        self
    }
    /// Groups listed by the HTML page and `?debug=1` (default 500); a note counts the rest.
    pub fn max_groups(mut self, n: usize) -> Self {
        self.max_groups = n;
        self
    }
    /// Tasks listed by `?debug=2` (default 10,000); a note counts the rest.
    pub fn max_tasks(mut self, n: usize) -> Self {
        self.max_tasks = n;
        self
    }
    /// `taskprof_tasks` series in `/metrics` (default 100); the rest are summed into
    /// `site="other"`.
    pub fn max_series(mut self, n: usize) -> Self {
        self.max_series = n;
        self
    }
    /// The largest `?seconds=N` accepted (default 600).
    pub fn max_seconds(mut self, n: u64) -> Self {
        self.max_seconds = n;
        self
    }
}

/// The debug endpoints with the default [`ServerConfig`]: no token, 1 s sampling.
pub fn router() -> Router {
    router_with(ServerConfig::default())
}

/// The debug endpoints, under `/debug/tasks/`; mount the router under any prefix with
/// [`Router::nest`] or merge it into yours.
///
/// Called inside a tokio runtime, it starts the chart's sampler (once per process); otherwise the
/// first request does.
pub fn router_with(mut config: ServerConfig) -> Router {
    crate::health::start_clock();
    history::ensure_sampler(config.sample_interval);
    config.deltas = Arc::default();
    let config = Arc::new(config);
    let mut router = Router::new()
        .route("/debug/tasks", get(redirect_to_index))
        .route("/debug/tasks/", get(index))
        .route("/debug/tasks/profile", get(profile))
        .route("/debug/tasks/health", get(health))
        .route("/debug/tasks/metrics", get(metrics))
        .with_state(config.clone());
    if config.token.is_some() {
        router = router.layer(middleware::from_fn_with_state(config, authorize));
    }
    router.layer(middleware::map_response(common_headers))
}

/// A standalone debug server, bound and ready to [`run`](Self::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds `addr`: `"6060"` or `":6060"` mean 127.0.0.1:6060 (loopback unless an address is
    /// given, unlike Go's `:6060`); `"0.0.0.0:6060"`, `"[::1]:6060"` bind what they say; port 0
    /// picks a free port (see [`local_addr`](Self::local_addr)).
    pub async fn bind(addr: &str, config: ServerConfig) -> io::Result<Server> {
        let addr = parse_addr(addr)?;
        let listener = TcpListener::bind(addr).await?;
        Ok(Server { listener, config })
    }
    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
    /// Serves the debug endpoints until the task running it is dropped or the listener fails.
    pub async fn run(self) -> io::Result<()> {
        axum::serve(self.listener, router_with(self.config)).await
    }
}

/// Serves the debug endpoints on `addr` (`"6060"` or `":6060"`: 127.0.0.1:6060) with the
/// default config.
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// tokio::spawn(taskprof::server::serve("6060"));
/// # }
/// ```
pub async fn serve(addr: &str) -> io::Result<()> {
    serve_with(addr, ServerConfig::default()).await
}

/// [`serve`] with a config.
pub async fn serve_with(addr: &str, config: ServerConfig) -> io::Result<()> {
    Server::bind(addr, config).await?.run().await
}

/// `PORT` and `:PORT` bind loopback; anything else must be a full socket address.
fn parse_addr(addr: &str) -> io::Result<SocketAddr> {
    let port = addr.strip_prefix(':').unwrap_or(addr);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    addr.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad listen address {addr:?}: want PORT, :PORT or IP:PORT"),
        )
    })
}

/// `file:line:col` of a spawn site, or `<unknown>`, as the text profile prints it.
pub(crate) fn site_text(site: Option<&Location<'_>>) -> String {
    match site {
        Some(l) => format!("{}:{}:{}", l.file(), l.line(), l.column()),
        None => "<unknown>".to_owned(),
    }
}

async fn common_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn authorize(State(config): State<Arc<ServerConfig>>, req: Request, next: Next) -> Response {
    let Some(token) = config.token.as_deref() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    if given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer realm=\"taskprof\""),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "401 unauthorized: send Authorization: Bearer <token>\n",
    )
        .into_response()
}

/// Compares in time independent of where the inputs differ, so the token cannot be guessed byte
/// by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

fn bad_request(message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Runs `f` (snapshots and rendering, O(tasks)) on the blocking pool, off the async workers.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "snapshot failed\n").into_response())
}

async fn redirect_to_index() -> Response {
    // Relative, so it works under any mount prefix.
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "tasks/")],
    )
        .into_response()
}

async fn index(State(config): State<Arc<ServerConfig>>) -> Response {
    history::ensure_running();
    let max_groups = config.max_groups;
    let page = off_thread(move || {
        let snap = crate::snapshot();
        let (spawned, completed) = crate::registry::totals();
        html::render(&html::Page {
            snap: &snap,
            spawned,
            completed,
            uptime: crate::health().uptime(),
            chart: history::chart(6),
            samples: history::len(),
            max_groups,
        })
    })
    .await;
    match page {
        Ok(page) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, html::CSP),
            ],
            page,
        )
            .into_response(),
        Err(e) => e,
    }
}

async fn health() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::health().to_string(),
    )
        .into_response()
}

async fn metrics(State(config): State<Arc<ServerConfig>>) -> Response {
    let max_series = config.max_series;
    let body = off_thread(move || {
        let snap = crate::snapshot();
        let (spawned, completed) = crate::registry::totals();
        metrics::render(&snap, spawned, completed, max_series)
    })
    .await;
    match body {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => e,
    }
}

/// The validated query of `/profile`.
#[derive(Debug)]
struct ProfileQuery {
    debug: u8,
    json: bool,
    seconds: Option<u64>,
    site: Option<String>,
}

fn parse_profile_query(
    params: &[(String, String)],
    max_seconds: u64,
) -> Result<ProfileQuery, String> {
    let mut q = ProfileQuery {
        debug: 0,
        json: false,
        seconds: None,
        site: None,
    };
    // Unknown parameters are ignored, as Go's handlers do; for repeated ones the last wins.
    for (k, v) in params {
        match k.as_str() {
            "debug" => {
                q.debug = match v.as_str() {
                    "0" | "" => 0,
                    "1" => 1,
                    "2" => 2,
                    _ => {
                        return Err(format!(
                            "invalid debug={}: want 0 (pprof), 1 (grouped text) or 2 (per-task text)",
                            Shown(v)
                        ));
                    }
                }
            }
            "format" => {
                q.json = match v.as_str() {
                    "json" => true,
                    "" | "pprof" => false,
                    _ => return Err(format!("invalid format={}: want json", Shown(v))),
                }
            }
            "seconds" => match v.parse::<u64>() {
                Ok(n) if (1..=max_seconds).contains(&n) => q.seconds = Some(n),
                _ => {
                    return Err(format!(
                        "invalid seconds={}: want a whole number from 1 to {max_seconds}",
                        Shown(v)
                    ));
                }
            },
            "site" => {
                if v.len() > 4096 {
                    return Err("invalid site: longer than 4096 bytes".to_owned());
                }
                q.site = Some(v.clone());
            }
            _ => {}
        }
    }
    if q.seconds.is_some() && q.debug == 2 {
        return Err("seconds and debug=2 are incompatible: a delta has no per-task view; use debug=1, debug=0 or format=json".to_owned());
    }
    Ok(q)
}

/// A user-supplied value echoed in an error: debug-escaped and cut short.
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut: String = self.0.chars().take(40).collect();
        write!(f, "{:?}", cut)?;
        if cut.len() < self.0.len() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// True when the spawn site matches `filter`: `file:line:col`, `file:line` or `file`.
fn site_matches(site: Option<&Location<'_>>, filter: &str) -> bool {
    match site {
        None => filter == "<unknown>",
        Some(l) => {
            filter == l.file()
                || filter == format!("{}:{}", l.file(), l.line())
                || filter == format!("{}:{}:{}", l.file(), l.line(), l.column())
        }
    }
}

fn take_snapshot(site: Option<&str>) -> Snapshot {
    let mut snap = crate::snapshot();
    if let Some(site) = site {
        snap.retain(|t| site_matches(t.spawn_site(), site));
    }
    snap
}

async fn profile(
    State(config): State<Arc<ServerConfig>>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = match query {
        Ok(Query(p)) => p,
        Err(e) => return bad_request(format!("bad query string: {e}")),
    };
    let q = match parse_profile_query(&params, config.max_seconds) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    let site = q.site.clone();
    if let Some(seconds) = q.seconds {
        let Some(_slot) = Slot::take(&config.deltas) else {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "too many seconds=N profiles in progress (at most {MAX_DELTAS}); retry later\n"
                ),
            )
                .into_response();
        };
        let s = site.clone();
        let base = match off_thread(move || take_snapshot(s.as_deref())).await {
            Ok(b) => b,
            Err(e) => return e,
        };
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let max_groups = config.max_groups;
        let out = off_thread(move || {
            let now = take_snapshot(site.as_deref());
            let diff = now.diff(&base);
            if q.json {
                Rendered::Json(serde_json::to_vec(&diff).unwrap_or_default())
            } else if q.debug == 1 {
                Rendered::Text(diff_text(&diff, max_groups))
            } else {
                Rendered::Pprof(diff.to_pprof())
            }
        })
        .await;
        return match out {
            Ok(r) => r.into_response(),
            Err(e) => e,
        };
    }
    let (max_groups, max_tasks) = (config.max_groups, config.max_tasks);
    let out = off_thread(move || {
        let snap = take_snapshot(site.as_deref());
        if q.json {
            Rendered::Stream(snap)
        } else {
            match q.debug {
                1 => Rendered::Text(grouped_text(&snap, max_groups)),
                2 => Rendered::Text(per_task_text(&snap, max_tasks)),
                _ => Rendered::Pprof(snap.to_pprof()),
            }
        }
    })
    .await;
    match out {
        Ok(r) => r.into_response(),
        Err(e) => e,
    }
}

/// One of the [`MAX_DELTAS`] places for a `?seconds=N` request, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_DELTAS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

enum Rendered {
    Text(String),
    Json(Vec<u8>),
    Stream(Snapshot),
    Pprof(Vec<u8>),
}

impl IntoResponse for Rendered {
    fn into_response(self) -> Response {
        match self {
            Rendered::Text(t) => text(t),
            Rendered::Json(j) => ([(header::CONTENT_TYPE, "application/json")], j).into_response(),
            Rendered::Stream(snap) => (
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(futures_util::stream::iter(JsonChunks::new(snap))),
            )
                .into_response(),
            Rendered::Pprof(p) => (
                [
                    (header::CONTENT_TYPE, "application/octet-stream"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"tasks.pb.gz\"",
                    ),
                ],
                p,
            )
                .into_response(),
        }
    }
}

/// `?debug=1`: the grouped text, at most `max` groups, then a note.
fn grouped_text(snap: &Snapshot, max: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "task profile: total {}", snap.total());
    let groups = snap.groups();
    for g in groups.iter().take(max) {
        let _ = crate::profile::write_group(&mut out, &g.count().to_string(), g.key(), None);
    }
    if groups.len() > max {
        let rest: usize = groups[max..].iter().map(|g| g.count()).sum();
        let _ = writeln!(
            out,
            "# capped: {} more groups with {rest} tasks not shown (at most {max} groups here); \
             ?debug=0 and ?format=json have them all",
            groups.len() - max
        );
    }
    out
}

/// `?debug=2`: one block per task, at most `max` tasks, then a note.
fn per_task_text(snap: &Snapshot, max: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "task profile: total {}", snap.total());
    for t in snap.tasks().iter().take(max) {
        let _ = writeln!(out, "{t}");
    }
    if snap.total() > max {
        let _ = writeln!(
            out,
            "# capped: {} more tasks not shown (at most {max} tasks here); \
             ?debug=1, ?debug=0 and ?format=json cover them all",
            snap.total() - max
        );
    }
    out
}

/// `?seconds=N&debug=1`: the diff text, at most `max` groups, then a note.
fn diff_text(diff: &crate::Diff, max: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "task profile diff: total {:+}", diff.total());
    let groups = diff.groups();
    for g in groups.iter().take(max) {
        let _ = crate::profile::write_group(&mut out, &format!("{:+}", g.delta()), g.key(), None);
    }
    if groups.len() > max {
        let _ = writeln!(
            out,
            "# capped: {} more changed groups not shown (at most {max} groups here); \
             ?debug=0 and ?format=json have them all",
            groups.len() - max
        );
    }
    out
}

/// Serializes a snapshot as the same JSON as `serde_json::to_vec(&snapshot)`, a few hundred
/// groups or tasks per chunk, so a huge snapshot never sits in memory twice.
struct JsonChunks {
    snap: Snapshot,
    part: Part,
}

#[derive(Clone, Copy)]
enum Part {
    Head,
    Groups(usize),
    Tasks(usize),
    Done,
}

const CHUNK: usize = 256;

impl JsonChunks {
    fn new(snap: Snapshot) -> Self {
        Self {
            snap,
            part: Part::Head,
        }
    }
}

impl Iterator for JsonChunks {
    type Item = Result<Bytes, Infallible>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        match self.part {
            Part::Head => {
                let taken = self
                    .snap
                    .taken_at()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                let _ = write!(
                    Utf8(&mut buf),
                    "{{\"total\":{},\"taken_at_unix_ms\":{taken},\"groups\":[",
                    self.snap.total()
                );
                self.part = Part::Groups(0);
            }
            Part::Groups(i) => {
                let groups = self.snap.groups();
                let end = (i + CHUNK).min(groups.len());
                items(&mut buf, &groups[i..end], i);
                if end == groups.len() {
                    buf.extend_from_slice(b"],\"tasks\":[");
                    self.part = Part::Tasks(0);
                } else {
                    self.part = Part::Groups(end);
                }
            }
            Part::Tasks(i) => {
                let tasks = self.snap.tasks();
                let end = (i + CHUNK).min(tasks.len());
                items(&mut buf, &tasks[i..end], i);
                if end == tasks.len() {
                    buf.extend_from_slice(b"]}");
                    self.part = Part::Done;
                } else {
                    self.part = Part::Tasks(end);
                }
            }
            Part::Done => return None,
        }
        Some(Ok(Bytes::from(buf)))
    }
}

/// Appends `items` as JSON array elements; `first` is the index of the first one in the array.
fn items<T: serde::Serialize>(buf: &mut Vec<u8>, items: &[T], first: usize) {
    for (i, item) in items.iter().enumerate() {
        if first + i > 0 {
            buf.push(b',');
        }
        // Our Serialize impls only write strings and numbers into a Vec: this cannot fail.
        let _ = serde_json::to_writer(&mut *buf, item);
    }
}

/// `fmt::Write` into a byte buffer.
struct Utf8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_addr, parse_profile_query, same};

    fn q(pairs: &[(&str, &str)]) -> Result<super::ProfileQuery, String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_profile_query(&owned, 600)
    }

    #[test]
    fn query_validation() {
        assert_eq!(q(&[]).expect("default").debug, 0);
        assert_eq!(q(&[("debug", "2")]).expect("2").debug, 2);
        assert!(q(&[("format", "json")]).expect("json").json);
        assert_eq!(q(&[("seconds", "600")]).expect("max").seconds, Some(600));
        for bad in [
            &[("debug", "7")][..],
            &[("debug", "-1")],
            &[("seconds", "-1")],
            &[("seconds", "0")],
            &[("seconds", "99999")],
            &[("seconds", "1.5")],
            &[("format", "xml")],
            &[("seconds", "5"), ("debug", "2")],
        ] {
            assert!(q(bad).is_err(), "{bad:?} accepted");
        }
        let long = "x".repeat(100);
        let err = q(&[("debug", &long)]).expect_err("long");
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(
            parse_addr("6060").expect("port").to_string(),
            "127.0.0.1:6060"
        );
        assert_eq!(parse_addr(":0").expect(":port").to_string(), "127.0.0.1:0");
        assert_eq!(
            parse_addr("0.0.0.0:1").expect("any").to_string(),
            "0.0.0.0:1"
        );
        assert_eq!(parse_addr("[::1]:2").expect("v6").to_string(), "[::1]:2");
        assert!(parse_addr("localhost").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn streamed_json_is_the_snapshot_json() {
        let (tx, rx) = tokio::sync::broadcast::channel::<()>(1);
        let handles: Vec<_> = (0..(2 * super::CHUNK + 7))
            .map(|_| {
                let mut rx = rx.resubscribe();
                crate::spawn(crate::labels::with(
                    &[("unit", "json-chunks")],
                    async move {
                        let _ = rx.recv().await;
                    },
                ))
            })
            .collect();
        // Labels show once a task has been polled: let every task run once.
        let mut snap = crate::snapshot();
        for _ in 0..10_000 {
            tokio::task::yield_now().await;
            snap = crate::snapshot();
            snap.retain(|t| t.labels().get("unit") == Some("json-chunks"));
            if snap.total() == handles.len() {
                break;
            }
        }
        assert_eq!(snap.total(), 2 * super::CHUNK + 7);
        let whole = serde_json::to_vec(&snap).expect("JSON");
        let chunks: Vec<_> = super::JsonChunks::new(snap).collect();
        assert!(chunks.len() > 3, "streamed in chunks");
        let streamed: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.expect("chunk").to_vec())
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&streamed),
            String::from_utf8_lossy(&whole)
        );
        let empty = crate::Snapshot::from_tasks(Vec::new(), std::time::SystemTime::now());
        let whole = serde_json::to_vec(&empty).expect("JSON");
        let streamed: Vec<u8> = super::JsonChunks::new(empty)
            .flat_map(|c| c.expect("chunk").to_vec())
            .collect();
        assert_eq!(streamed, whole);
        drop((tx, rx));
        for h in handles {
            h.await.expect("task");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"s3cre", b"s3cret"));
        assert!(!same(b"s3cret", b"s3crex"));
        assert!(!same(b"", b"x"));
    }
}
