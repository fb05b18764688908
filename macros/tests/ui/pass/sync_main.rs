#![deny(warnings)]

use tokio::task::JoinSet;

#[taskprof::track]
async fn work(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n * 2
}

#[taskprof::track]
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let total = rt.block_on(async {
        let a = tokio::spawn(work(1));
        let b = ::tokio::task::spawn(async { work(2).await });
        let c = tokio::task::spawn_blocking(|| 3);
        let mut set = JoinSet::new();
        set.spawn(work(4));
        JoinSet::spawn(&mut set, work(5));
        let mut sum = a.await.unwrap() + b.await.unwrap() + c.await.unwrap();
        while let Some(v) = set.join_next().await {
            sum += v.unwrap();
        }
        sum
    });
    let d = rt.spawn(work(6));
    let e = rt.handle().spawn_blocking(move || {
        let seven = 7;
        seven
    });
    let total = total + rt.block_on(d).unwrap() + rt.block_on(e).unwrap();
    assert_eq!(total, 2 + 4 + 3 + 8 + 10 + 12 + 7);
}
