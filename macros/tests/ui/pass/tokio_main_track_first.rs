#![deny(warnings)]

// `#[track]` expands first and makes `main`'s body a frame; `#[tokio::main]` then runs it.
#[taskprof::track]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let handle = tokio::spawn(async { 1 });
    tokio::task::yield_now().await;
    assert_eq!(handle.await.unwrap(), 1);
}
