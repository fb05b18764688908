//! A minimal HTTP/1.0 client for the debug-server tests, plus helpers to find the external tools
//! (`go`, `chromium`, `python3` with `prometheus_client`) the end-to-end tests drive.
//!
//! HTTP/1.0 makes the server close the connection after each response, so a streamed body needs
//! no chunked decoding: read to EOF, split at the blank line.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response: status, headers (names lowercased) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// `GET path` with extra header lines (`"Name: value"`).
pub async fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Response {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).await.expect("send request");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).expect("ASCII head");
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body,
    }
}

/// True when `program args` runs and exits 0.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `what` can be used. Missing under CI (env `CI` set) fails the test; elsewhere the test
/// prints a notice and skips.
pub fn available(what: &str, program: &str, args: &[&str], install: &str) -> bool {
    if runs(program, args) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is required under CI but `{program} {}` failed; .ci/run installs it ({install})",
        args.join(" ")
    );
    // Straight to stderr: the test harness captures eprintln! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "NOTICE: skipping: {what} not found (`{install}` to run this test)"
    );
    false
}

/// `go` on PATH (Debian's golang-go).
pub fn have_go() -> bool {
    available("go", "go", &["version"], "apt-get install golang-go")
}

/// Debian's `chromium` on PATH.
pub fn have_chromium() -> bool {
    available(
        "chromium",
        "chromium",
        &["--version"],
        "apt-get install chromium",
    )
}

/// `python3` with the `prometheus_client` package.
pub fn have_prometheus_client() -> bool {
    available(
        "python3 with prometheus_client",
        "python3",
        &["-c", "import prometheus_client.parser"],
        "pip install prometheus_client",
    )
}
