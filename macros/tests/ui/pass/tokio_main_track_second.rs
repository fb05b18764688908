#![deny(warnings)]

// `#[tokio::main]` expands first, so `#[track]` sees a sync `fn main` and only tracks spawns.
#[tokio::main(flavor = "current_thread")]
#[taskprof::track]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handle = tokio::spawn(async { 1 });
    tokio::task::yield_now().await;
    assert_eq!(handle.await?, 1);
    Ok(())
}
