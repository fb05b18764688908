//! The leak taskprof exists to find, replayed: every health check spawns a registry check that
//! waits forever on a dependency that never answers, so tasks pile up at one line.
//!
//! ```text
//! cargo run --example leaky_health [-- --checks N]
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// A request to the dependency; it carries a channel for the answer.
struct Request {
    _reply: oneshot::Sender<String>,
}

/// Client of a "schema registry" that accepts requests and never answers them.
#[derive(Clone)]
struct Registry {
    requests: mpsc::UnboundedSender<Request>,
}

impl Registry {
    /// Asks the registry for its subjects; with no timeout this waits as long as the registry
    /// stays silent, which is forever.
    #[taskprof::track]
    async fn check(&self) -> Result<String, &'static str> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { _reply: reply })
            .map_err(|_| "registry gone")?;
        answer.await.map_err(|_| "registry hung up")
    }
}

/// The health endpoint: fires a registry check in the background and reports UP.
#[taskprof::track]
async fn health(registry: &Registry) -> String {
    let registry = registry.clone();
    tokio::spawn(async move {
        let _ = registry.check().await;
    });
    format!("{{\"status\":\"UP\",\"tasks\":{}}}", taskprof::live_count())
}

#[tokio::main]
async fn main() {
    let checks: usize = std::env::args()
        .skip_while(|a| a != "--checks")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);

    // The dependency: takes requests, keeps them, never answers.
    let (requests, mut inbox) = mpsc::unbounded_channel::<Request>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(request) = inbox.recv().await {
            held.push(request);
        }
    });
    let registry = Registry { requests };

    tokio::task::yield_now().await;
    let first = taskprof::snapshot();
    for i in 1..=checks {
        let body = health(&registry).await;
        if i == 1 || i == checks {
            println!("check {i:>3}: /health -> {body}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = taskprof::snapshot();
    println!("\n{last}");
    println!(
        "== what grew between the first and the last check ==\n{}",
        last.diff(&first)
    );
    if let Some(task) = last.tasks().iter().find(|t| t.stack().len() > 1) {
        println!("== one of them ==\n{task}");
    }
}
