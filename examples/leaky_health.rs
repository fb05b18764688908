//! The leak taskprof exists to find, replayed end to end over real HTTP on 127.0.0.1.
//!
//! A "schema registry" accepts connections and never answers. An axum service's `/health`
//! handler spawns a registry check through a `reqwest::Client` that has no timeout (reqwest's
//! default, like Go's `http.Client{}`), then reports UP. An uptime checker calls `/health` again
//! and again; every call leaves a task behind, waiting on the same `.send()` forever. The
//! profile names that line; then the fixed client (with a timeout) shows the count returning to
//! the baseline.
//!
//! ```text
//! cargo run --example leaky_health [-- --checks N] [-- --fixed]
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio::net::TcpListener;

/// Client of the schema registry. The seed's registry used basic auth in its URL: profiles must
/// not show it.
#[derive(Clone)]
struct Registry {
    base: String,
    client: reqwest::Client,
}

impl Registry {
    /// Lists the registry's subjects: with no timeout this waits as long as the registry stays
    /// silent, which is forever.
    #[taskprof::track]
    async fn check(&self) -> Result<u16, reqwest::Error> {
        let url = format!("{}/subjects?token=s3cret-token", self.base);
        let response = self.client.get(url).send().await?;
        Ok(response.status().as_u16())
    }
}

/// `/health`: fires a registry check in the background and reports UP with the task count.
#[taskprof::track]
async fn health(State(registry): State<Registry>) -> String {
    tokio::spawn(async move {
        let _ = registry.check().await;
    });
    format!("{{\"status\":\"UP\",\"tasks\":{}}}", taskprof::live_count())
}

/// A dependency that accepts connections and never answers (keeps them open).
async fn silent_registry() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    Ok(addr)
}

/// Serves `/health` on 127.0.0.1 with the given registry client.
async fn service(registry: Registry) -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route("/health", get(health))
        .with_state(registry);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Runs one phase: `checks` calls of `/health`, then the profile and the diff.
async fn phase(
    title: &str,
    client: reqwest::Client,
    checks: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("==== {title} ====");
    let registry_addr = silent_registry().await?;
    let registry = Registry {
        base: format!("http://schema:hunter2@{registry_addr}"),
        client,
    };
    let service_addr = service(registry).await?;
    let uptime = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = format!("http://{service_addr}/health");

    let first = taskprof::snapshot();
    for i in 1..=checks {
        let body = uptime.get(&url).send().await?.text().await?;
        if i == 1 || i == checks {
            println!("check {i:>3}: GET /health -> {body}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let last = taskprof::snapshot();
    println!("\n{last}");
    println!(
        "== what grew between the first and the last check ==\n{}",
        last.diff(&first)
    );
    if let Some(task) = last
        .tasks()
        .iter()
        .find(|t| t.stack().iter().any(|f| f.http().is_some()))
    {
        println!("== one of them ==\n{task}");
    }
    Ok(())
}

/// Counts the registry-check tasks alive now.
fn registry_checks() -> usize {
    taskprof::snapshot()
        .tasks()
        .iter()
        .filter(|t| {
            t.stack()
                .iter()
                .any(|f| f.label() == "leaky_health::Registry::check")
        })
        .count()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let checks: usize = args
        .iter()
        .skip_while(|a| *a != "--checks")
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(30);
    let fixed_only = args.iter().any(|a| a == "--fixed");
    // `--pprof FILE`: at the end, write the live tasks as a pprof profile for `go tool pprof`.
    let pprof_file = args.iter().skip_while(|a| *a != "--pprof").nth(1).cloned();

    if !fixed_only {
        phase(
            "leaky: reqwest::Client::new(), no timeout",
            reqwest::Client::new(),
            checks,
        )
        .await?;
        println!("registry checks alive: {}\n", registry_checks());
    }

    let timeout = Duration::from_millis(500);
    let fixed = reqwest::Client::builder().timeout(timeout).build()?;
    let baseline = registry_checks();
    phase(
        &format!("fixed: Client::builder().timeout({timeout:?})"),
        fixed,
        checks,
    )
    .await?;
    println!(
        "registry checks alive right after the checks: {}",
        registry_checks()
    );
    tokio::time::sleep(timeout * 2).await;
    println!(
        "registry checks alive once the timeouts fired: {} (baseline {baseline})",
        registry_checks()
    );
    if let Some(path) = pprof_file {
        std::fs::write(&path, taskprof::snapshot().to_pprof())?;
        println!("pprof profile of the live tasks written to {path}");
    }
    Ok(())
}
