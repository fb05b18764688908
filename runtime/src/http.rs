//! HTTP client calls as frames: method, redacted URL, elapsed time and whether a timeout applies.
//!
//! Inside `#[track]` functions the macro records awaited reqwest requests by itself; outside, use
//! [`send`] and [`execute`] (feature `reqwest`). [`Executor`] (feature `hyper`) tracks the
//! connection tasks a hyper client or server spawns.

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use crate::stack::{Pushed, push_http};

/// What bounds an HTTP call's duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timeout {
    /// Nothing: the call waits as long as the server stays silent.
    None,
    /// A per-request total timeout (`RequestBuilder::timeout`).
    Request(Duration),
    /// The client's total timeout (`ClientBuilder::timeout`).
    Client(Duration),
    /// Only the client's per-read timeout (`ClientBuilder::read_timeout`).
    Read(Duration),
}

impl Timeout {
    /// True unless the call can wait forever.
    pub fn is_set(&self) -> bool {
        !matches!(self, Timeout::None)
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeout::None => f.write_str("no timeout"),
            Timeout::Request(d) => write!(f, "timeout {d:?}"),
            Timeout::Client(d) => write!(f, "client timeout {d:?}"),
            Timeout::Read(d) => write!(f, "read timeout {d:?}"),
        }
    }
}

/// An in-flight HTTP call, shared by the future making it and by snapshots.
pub(crate) struct HttpCall {
    method: Box<str>,
    url: Box<str>,
    timeout: Timeout,
    location: &'static Location<'static>,
    started: Instant,
}

static CALLS: LazyLock<DashMap<u64, Arc<HttpCall>, FxBuildHasher>> =
    LazyLock::new(|| DashMap::with_hasher(FxBuildHasher));

/// The HTTP call behind a frame, as a snapshot saw it.
#[derive(Clone, Debug)]
pub struct HttpCallInfo {
    call: Arc<HttpCall>,
    label: String,
    elapsed: Duration,
}

impl fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCall")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpCallInfo {
    /// `GET`, `POST`, ...
    pub fn method(&self) -> &str {
        &self.call.method
    }
    /// The URL without userinfo or fragment, query values replaced by `…` (keys kept).
    pub fn url(&self) -> &str {
        &self.call.url
    }
    /// Time since the call started, when the snapshot was taken.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// What bounds the call.
    pub fn timeout(&self) -> Timeout {
        self.call.timeout
    }
    /// Where the call is made (`file:line:col` of `.send()` / `execute`).
    pub fn location(&self) -> &'static Location<'static> {
        self.call.location
    }
    /// `http GET http://host/path?key=…`: the frame label.
    pub fn label(&self) -> &str {
        &self.label
    }
    fn key(&self) -> (&str, &str, Timeout) {
        (&self.call.method, &self.call.url, self.call.timeout)
    }
}

// Snapshots group tasks by stack: calls differing only in elapsed time are the same frame.
impl PartialEq for HttpCallInfo {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for HttpCallInfo {}
impl Hash for HttpCallInfo {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}
impl PartialOrd for HttpCallInfo {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HttpCallInfo {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Looks up a live call for a snapshot taken at `now`.
pub(crate) fn resolve(id: u64, now: Instant) -> Option<HttpCallInfo> {
    let call = CALLS.get(&id)?.value().clone();
    Some(HttpCallInfo {
        label: format!("http {} {}", call.method, call.url),
        elapsed: now.saturating_duration_since(call.started),
        call,
    })
}

/// Redacts a URL for display: no `user:password@`, query values replaced by `…` (keys kept, as
/// written), no fragment. Anything unparsable is reduced to its scheme and host, if any.
///
/// ```
/// assert_eq!(
///     taskprof::http::redact_url("http://admin:s3cret@registry:8081/subjects?token=abc&v=1#top"),
///     "http://registry:8081/subjects?token=…&v=…",
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split('#').next().unwrap_or("");
    let (authority_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match authority_path.find('/') {
        Some(i) => authority_path.split_at(i),
        None => (authority_path, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let mut out = String::with_capacity(url.len());
    if !scheme.is_empty() {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(host);
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) => {
                    out.push_str(key);
                    out.push_str("=…");
                }
                None => out.push_str(pair),
            }
        }
    }
    // Keep line-oriented formats intact whatever the URL holds.
    out.chars().filter(|c| !c.is_control()).collect()
}

pin_project_lite::pin_project! {
    /// An HTTP call in flight: shows as an `http METHOD URL` frame while it is pending.
    #[must_use = "futures do nothing unless polled"]
    pub struct HttpFrame<F> {
        #[pin]
        fut: F,
        call: Option<Arc<HttpCall>>,
        id: u64,
        pushed: Pushed,
    }
    impl<F> PinnedDrop for HttpFrame<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.pushed.retract();
            if *this.id != 0 {
                CALLS.remove(this.id);
            }
        }
    }
}

impl<F> HttpFrame<F> {
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn new(
        fut: F,
        method: &str,
        url: &str,
        timeout: Timeout,
        location: &'static Location<'static>,
    ) -> Self {
        Self {
            fut,
            call: Some(Arc::new(HttpCall {
                method: method.chars().filter(|c| !c.is_control()).collect(),
                url: redact_url(url).into_boxed_str(),
                timeout,
                location,
                started: Instant::now(),
            })),
            id: 0,
            pushed: Pushed::NONE,
        }
    }
}

impl<F: Future> Future for HttpFrame<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Some(call) = this.call.take() {
            // Registered on first poll, so a request built but never awaited costs nothing.
            static NEXT: AtomicU64 = AtomicU64::new(1);
            *this.id = NEXT.fetch_add(1, Ordering::Relaxed);
            CALLS.insert(*this.id, call);
        }
        let out = this.fut.poll(cx);
        *this.pushed = if out.is_pending() {
            push_http(*this.id)
        } else {
            Pushed::NONE
        };
        out
    }
}

/// What the `#[track]` expansion gets for a receiver that is not an HTTP request: nothing to
/// record; `wrap` returns the call unchanged.
#[doc(hidden)]
pub struct NoProbe;

impl NoProbe {
    #[inline]
    pub fn wrap<T>(self, call: T) -> T {
        call
    }
}

/// Fallback of the expansion's autoref dispatch: any type that is not a reqwest builder/client.
#[doc(hidden)]
pub trait NoHttpProbe {
    #[inline]
    fn __taskprof_http_probe(&self) -> NoProbe {
        NoProbe
    }
    #[inline]
    fn __taskprof_http_exec_probe<A: ?Sized>(&self, _request: &A) -> NoProbe {
        NoProbe
    }
}
impl<T: ?Sized> NoHttpProbe for &T {}

#[cfg(feature = "reqwest")]
#[doc(hidden)]
pub use self::reqwest_support::{HttpExecProbe, HttpProbe, Probe};
#[cfg(feature = "reqwest")]
pub use self::reqwest_support::{execute, send};

/// Without the `reqwest` feature nothing implements these; the expansion names them anyway.
#[cfg(not(feature = "reqwest"))]
#[doc(hidden)]
pub trait HttpProbe {}
/// Without the `reqwest` feature nothing implements these; the expansion names them anyway.
#[cfg(not(feature = "reqwest"))]
#[doc(hidden)]
pub trait HttpExecProbe {}

#[cfg(feature = "reqwest")]
mod reqwest_support {
    use super::*;
    use std::future::IntoFuture;

    /// A reqwest call about to be made: what it is, before it is sent.
    #[doc(hidden)]
    pub struct Probe {
        method: String,
        url: String,
        timeout: Timeout,
        location: &'static Location<'static>,
    }

    impl Probe {
        fn of(
            client: &reqwest::Client,
            request: &reqwest::Request,
            location: &'static Location<'static>,
        ) -> Self {
            Probe {
                method: request.method().as_str().to_owned(),
                url: request.url().as_str().to_owned(),
                timeout: timeout_of(client, request),
                location,
            }
        }

        /// Wraps the request's future into a frame.
        pub fn wrap<F: IntoFuture>(self, call: F) -> HttpFrame<F::IntoFuture> {
            HttpFrame::new(
                call.into_future(),
                &self.method,
                &self.url,
                self.timeout,
                self.location,
            )
        }
    }

    /// Picked by the expansion's autoref dispatch when the receiver is a reqwest builder/client.
    #[doc(hidden)]
    pub trait HttpProbe {
        /// For `builder.send()`.
        #[track_caller]
        fn __taskprof_http_probe(&self) -> Probe;
    }

    impl HttpProbe for reqwest::RequestBuilder {
        #[track_caller]
        fn __taskprof_http_probe(&self) -> Probe {
            let location = Location::caller();
            // A builder can only be read by building it; build a copy. Streaming bodies can't be
            // copied: then only the fact that a request is in flight is known.
            match self.try_clone().map(reqwest::RequestBuilder::build_split) {
                Some((client, Ok(request))) => Probe::of(&client, &request, location),
                _ => Probe {
                    method: "?".into(),
                    url: "(streaming request)".into(),
                    timeout: Timeout::None,
                    location,
                },
            }
        }
    }

    /// `client.execute(request)` dispatch.
    #[doc(hidden)]
    pub trait HttpExecProbe {
        /// For `client.execute(request)`.
        #[track_caller]
        fn __taskprof_http_exec_probe(&self, request: &reqwest::Request) -> Probe;
    }

    impl HttpExecProbe for reqwest::Client {
        #[track_caller]
        fn __taskprof_http_exec_probe(&self, request: &reqwest::Request) -> Probe {
            Probe::of(self, request, Location::caller())
        }
    }

    /// The per-request timeout, else the client's total timeout, else its read timeout.
    fn timeout_of(client: &reqwest::Client, request: &reqwest::Request) -> Timeout {
        if let Some(t) = request.timeout() {
            return Timeout::Request(*t);
        }
        // reqwest has no getters for its client configuration; its `Debug` lists the timeouts
        // that are set (`TotalTimeout: 5s`, `read_timeout: 5s`). tests/http.rs pins this down.
        let debug = format!("{client:?}");
        let field = |name: &str| {
            let start = debug.find(name)? + name.len();
            let value = debug[start..].split([',', ' ', '}']).next()?;
            parse_debug_duration(value)
        };
        if let Some(d) = field("TotalTimeout: ") {
            Timeout::Client(d)
        } else if let Some(d) = field("read_timeout: ") {
            Timeout::Read(d)
        } else {
            Timeout::None
        }
    }

    /// Parses `Duration`'s `Debug` (`5s`, `250ms`, `1.5s`, `10µs`, `7ns`).
    fn parse_debug_duration(s: &str) -> Option<Duration> {
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, unit) = s.split_at(split);
        let num: f64 = num.parse().ok()?;
        let secs = match unit {
            "s" => num,
            "ms" => num / 1e3,
            "µs" | "us" => num / 1e6,
            "ns" => num / 1e9,
            _ => return None,
        };
        Duration::try_from_secs_f64(secs).ok()
    }

    /// Sends `request` like [`reqwest::RequestBuilder::send`], recorded as an HTTP frame of the
    /// calling task (for code outside `#[taskprof::track]`).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), reqwest::Error> {
    /// let client = reqwest::Client::new();
    /// let response = taskprof::http::send(client.get("http://127.0.0.1:8081/subjects")).await?;
    /// println!("{}", response.status());
    /// # Ok(()) }
    /// # drop(f());
    /// ```
    #[track_caller]
    pub fn send(
        request: reqwest::RequestBuilder,
    ) -> HttpFrame<impl Future<Output = reqwest::Result<reqwest::Response>>> {
        let probe = request.__taskprof_http_probe();
        probe.wrap(request.send())
    }

    /// Executes `request` on `client` like [`reqwest::Client::execute`], recorded as an HTTP
    /// frame of the calling task.
    #[track_caller]
    pub fn execute(
        client: &reqwest::Client,
        request: reqwest::Request,
    ) -> HttpFrame<impl Future<Output = reqwest::Result<reqwest::Response>>> {
        let probe = client.__taskprof_http_exec_probe(&request);
        probe.wrap(client.execute(request))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn durations_parse_from_debug() {
            use std::time::Duration;
            for d in [
                Duration::from_secs(5),
                Duration::from_millis(250),
                Duration::from_micros(10),
            ] {
                assert_eq!(super::parse_debug_duration(&format!("{d:?}")), Some(d));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_secrets() {
        assert_eq!(
            redact_url("http://u:p@h:1/a?x=1&y&z=2#f"),
            "http://h:1/a?x=…&y&z=…"
        );
        assert_eq!(redact_url("https://h/p"), "https://h/p");
        assert_eq!(redact_url("http://h/p?\nk=v"), "http://h/p?k=…");
        assert_eq!(redact_url("h/p?t=secret"), "h/p?t=…");
    }
}

#[cfg(feature = "hyper")]
pub use self::hyper_support::Executor;

#[cfg(feature = "hyper")]
mod hyper_support {
    use std::borrow::Cow;
    use std::future::Future;
    use std::panic::Location;
    use std::sync::Arc;

    use crate::task::{Named, Tracked};

    /// A [`hyper::rt::Executor`] that runs every background task hyper spawns (client connection
    /// drivers of `hyper_util`'s legacy `Client`, HTTP/2 streams, server connections) as a tracked
    /// task named `hyper connection`, labelled `executor = NAME` (and `peer = ADDR` when given).
    ///
    /// ```
    /// let exec = taskprof::http::Executor::new("registry-client");
    /// # let _ = exec;
    /// // hyper_util::client::legacy::Client::builder(exec).build_http::<Body>();
    /// ```
    #[derive(Clone, Debug)]
    pub struct Executor {
        name: Arc<str>,
        peer: Option<Arc<str>>,
        site: &'static Location<'static>,
    }

    impl Executor {
        /// An executor whose tasks carry `name`; their spawn site is where it was created.
        #[track_caller]
        pub fn new(name: impl Into<Arc<str>>) -> Self {
            Self {
                name: name.into(),
                peer: None,
                site: Location::caller(),
            }
        }

        /// Labels tasks with the peer address too (for a server's per-connection executor).
        pub fn with_peer(mut self, peer: impl std::fmt::Display) -> Self {
            self.peer = Some(peer.to_string().into());
            self
        }
    }

    impl<F> hyper::rt::Executor<F> for Executor
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        fn execute(&self, fut: F) {
            let mut labels = vec![("executor", &*self.name)];
            if let Some(peer) = &self.peer {
                labels.push(("peer", peer));
            }
            let name = Named::new(Cow::Borrowed("hyper connection"));
            tokio::spawn(Tracked::with_labels(self.site, name, &labels, fut));
        }
    }
}
