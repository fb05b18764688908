//! Annotate a few async functions, spawn tasks, and print the profiles.
//!
//! ```text
//! cargo run --example basic
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// A worker that waits for jobs on a channel.
#[taskprof::track]
async fn worker(mut jobs: mpsc::Receiver<u32>) {
    while let Some(job) = jobs.recv().await {
        process(job).await;
    }
}

#[taskprof::track]
async fn process(job: u32) {
    tokio::time::sleep(Duration::from_millis(u64::from(job))).await;
}

/// Waits for a reply that never comes.
#[taskprof::track(label(component = "rpc"))]
async fn call(reply: oneshot::Receiver<String>) -> Option<String> {
    reply.await.ok()
}

#[taskprof::track]
async fn run() {
    let (jobs_tx, jobs_rx) = mpsc::channel(8);
    tokio::spawn(worker(jobs_rx));
    let mut pending_replies = Vec::new();
    for _ in 0..3 {
        let (tx, rx) = oneshot::channel();
        pending_replies.push(tx);
        tokio::spawn(call(rx));
    }
    jobs_tx.send(60_000).await.ok();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let snapshot = taskprof::snapshot();
    println!("== grouped (like Go's debug=1) ==\n{snapshot}");
    println!("== per task (like debug=2) ==\n{snapshot:#}");
}

#[tokio::main]
async fn main() {
    run().await;
}
