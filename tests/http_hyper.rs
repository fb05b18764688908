//! `taskprof::http::Executor` with real hyper clients and servers on 127.0.0.1: the background
//! tasks hyper spawns through it are tracked, named `hyper connection`, labelled
//! `executor = NAME` (and `peer = ADDR`), spawned at the line that created the executor, and gone
//! once hyper is done with them.
//!
//! What spawns through the executor, as of hyper 1 / hyper-util 0.1:
//! - the legacy client: one task per connection (HTTP/1 and HTTP/2), alive while the connection
//!   is pooled;
//! - an HTTP/2 server (`hyper::server::conn::http2` or hyper-util's `auto` builder): one task per
//!   request stream, alive while the request is being handled;
//! - an HTTP/1 server spawns nothing (hyper's `http1` server takes no executor), so a
//!   per-connection executor's `peer` label never shows for HTTP/1; the last test pins that down.
//!
//! Tests of this binary run in parallel; each uses its own executor names.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use taskprof::TaskInfo;
use taskprof::http::Executor;
use taskprof_tests::{Line, assert_site, column_of, labelled, labels_of, wait_for};
use tokio::net::TcpListener;
use tokio::sync::watch;

const SRC: &str = include_str!("http_hyper.rs");
const FILE: &str = file!();

/// Line of the `Executor::new` in [`server`].
static SERVER_EXEC_LINE: Line = Line::new();

/// Label key of the executor's name.
const EXECUTOR: &str = "executor";

/// The client type of these tests.
type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// How [`server`] serves its connections.
#[derive(Clone, Copy, Debug)]
enum Proto {
    /// hyper-util's `auto` builder (HTTP/1 or HTTP/2, whatever the client speaks).
    Auto,
    /// `hyper::server::conn::http2` only.
    Http2,
}

/// A running test server (see [`server`]).
struct Server {
    addr: SocketAddr,
    /// Set to true to let the handlers answer.
    release: watch::Sender<bool>,
    /// The peers it accepted.
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    /// Requests that reached the handler.
    entered: Arc<AtomicUsize>,
}

impl Server {
    /// The accepted peers so far.
    fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().expect("peers lock").clone()
    }
}

/// A hyper server on 127.0.0.1 whose handler answers `released` once released (at once if
/// `released`). Each connection is served with `Executor::new(executor).with_peer(peer)`.
async fn server(proto: Proto, executor: &'static str, released: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the server");
    let (release, rx) = watch::channel(released);
    let server = Server {
        addr: listener.local_addr().expect("server address"),
        release,
        peers: Arc::default(),
        entered: Arc::default(),
    };
    let (peers, entered) = (server.peers.clone(), server.entered.clone());
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            peers.lock().expect("peers lock").push(peer);
            let (_, exec) = (SERVER_EXEC_LINE.set(line!()), Executor::new(executor));
            let exec = exec.with_peer(peer);
            let (rx, entered) = (rx.clone(), entered.clone());
            let service = service_fn(move |_: Request<Incoming>| {
                let mut rx = rx.clone();
                entered.fetch_add(1, Ordering::SeqCst);
                async move {
                    let _ = rx.wait_for(|released| *released).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"released"))))
                }
            });
            let io = TokioIo::new(stream);
            tokio::spawn(async move {
                let _: Result<(), Box<dyn std::error::Error + Send + Sync>> = match proto {
                    Proto::Auto => {
                        hyper_util::server::conn::auto::Builder::new(exec)
                            .serve_connection(io, service)
                            .await
                    }
                    Proto::Http2 => hyper::server::conn::http2::Builder::new(exec)
                        .serve_connection(io, service)
                        .await
                        .map_err(Into::into),
                };
            });
        }
    });
    server
}

/// `GET http://addr/` on `client`; returns the body.
async fn get(client: &HttpClient, addr: SocketAddr) -> Bytes {
    let uri: hyper::Uri = format!("http://{addr}/").parse().expect("a valid URI");
    let response = client.get(uri).await.expect("GET /");
    assert_eq!(response.status().as_u16(), 200);
    response
        .into_body()
        .collect()
        .await
        .expect("the response body")
        .to_bytes()
}

/// Owned copies of the tasks labelled `executor = name`.
fn executor_tasks(snap: &taskprof::Snapshot, name: &str) -> Vec<TaskInfo> {
    labelled(snap, EXECUTOR, name)
        .into_iter()
        .cloned()
        .collect()
}

/// Waits until some task is labelled `executor = name`; returns them all.
async fn wait_for_executor_tasks(name: &str) -> Vec<TaskInfo> {
    wait_for(&format!("tasks of executor {name:?}"), |snap| {
        let tasks = executor_tasks(snap, name);
        (!tasks.is_empty()).then_some(tasks)
    })
    .await
}

/// Waits until no task is labelled `executor = name`.
async fn wait_for_no_executor_tasks(name: &str) {
    wait_for(&format!("the tasks of executor {name:?} to end"), |snap| {
        executor_tasks(snap, name).is_empty().then_some(())
    })
    .await;
}

/// Asserts what every task spawned through an executor shows.
#[track_caller]
fn assert_connection_task(task: &TaskInfo, labels: &[(&str, &str)], line: u32) {
    assert_eq!(task.name(), "hyper connection", "{task}");
    assert_eq!(labels_of(task), labels, "{task}");
    assert_site(
        task.spawn_site(),
        FILE,
        line,
        column_of(SRC, line, "Executor::new"),
    );
    assert!(!task.is_blocking());
}

/// The legacy client's connection task: tracked while the connection is pooled, gone when the
/// client (and so its pool) is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_client_connections_are_tracked_until_the_pool_drops() {
    let server = server(Proto::Auto, "ready-server", true).await;
    let (exec_line, exec) = (line!(), Executor::new("registry-client"));
    let client: HttpClient = Client::builder(exec).build_http();
    for _ in 0..3 {
        assert_eq!(&get(&client, server.addr).await[..], b"released");
    }

    let tasks = wait_for_executor_tasks("registry-client").await;
    for task in &tasks {
        assert_connection_task(task, &[(EXECUTOR, "registry-client")], exec_line);
    }
    // Sequential requests reuse the pooled connection: its task is still there.
    let snap = taskprof::snapshot();
    assert!(
        labelled(&snap, EXECUTOR, "registry-client")
            .iter()
            .any(|t| tasks.iter().any(|u| u.id() == t.id())),
        "the pooled connection's task ended while the client lives:\n{snap:#}"
    );

    drop(client);
    wait_for_no_executor_tasks("registry-client").await;
}

/// Serves one request that blocks until released, over HTTP/2 with prior knowledge, and checks
/// the server's per-stream task and the client's connection task.
async fn h2_stream_task(proto: Proto, server_name: &'static str, client_name: &'static str) {
    let server = server(proto, server_name, false).await;
    let addr = server.addr;
    let (client_line, exec) = (line!(), Executor::new(client_name));
    let client: HttpClient = Client::builder(exec).http2_only(true).build_http();
    let request = {
        let client = client.clone();
        tokio::spawn(async move { get(&client, addr).await })
    };

    // While the handler waits, the stream's task is live with the connection's peer.
    let streams = wait_for_executor_tasks(server_name).await;
    let peers_seen = server.peers();
    for task in &streams {
        let peer = task.labels().get("peer").expect("a peer label");
        assert!(
            peers_seen.iter().any(|p| p.to_string() == peer),
            "peer {peer} is none of the accepted {peers_seen:?}"
        );
        assert_connection_task(
            task,
            &[(EXECUTOR, server_name), ("peer", peer)],
            SERVER_EXEC_LINE.get(),
        );
    }
    let conns = wait_for_executor_tasks(client_name).await;
    for task in &conns {
        assert_connection_task(task, &[(EXECUTOR, client_name)], client_line);
    }

    server.release.send_replace(true);
    let body = request.await.expect("the request task");
    assert_eq!(&body[..], b"released");
    wait_for_no_executor_tasks(server_name).await;
    drop(client);
    wait_for_no_executor_tasks(client_name).await;
}

/// hyper-util's `auto` server builder, for an HTTP/2 client: each request stream runs as a task
/// of the per-connection executor, labelled with the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_server_h2_streams_are_tracked_with_their_peer() {
    h2_stream_task(Proto::Auto, "auto-server", "auto-h2-client").await;
}

/// `hyper::server::conn::http2::Builder` with the executor: the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_server_streams_are_tracked_with_their_peer() {
    h2_stream_task(Proto::Http2, "h2-server", "h2-client").await;
}

/// An HTTP/1 connection through the `auto` builder is served with the executor in place, but
/// hyper's HTTP/1 server spawns nothing: no task of that executor exists even while a request
/// is being handled. (The HTTP/1 client's connection task is tracked, as above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_server_h1_spawns_nothing_through_the_executor() {
    let server = server(Proto::Auto, "h1-server", false).await;
    let addr = server.addr;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let request = {
        let client = client.clone();
        tokio::spawn(async move { get(&client, addr).await })
    };
    wait_for("the request to reach the handler", |_| {
        (server.entered.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let snap = taskprof::snapshot();
    assert!(
        labelled(&snap, EXECUTOR, "h1-server").is_empty(),
        "an HTTP/1 server spawned through the executor:\n{snap:#}"
    );
    assert_eq!(server.peers().len(), 1);
    server.release.send_replace(true);
    assert_eq!(&request.await.expect("the request task")[..], b"released");
}
