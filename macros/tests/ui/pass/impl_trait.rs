#![deny(warnings)]

use std::fmt::Display;
use std::future::Future;

#[taskprof::track]
async fn show(value: impl Display + Send, later: impl Future<Output = u32>) -> impl Display {
    format!("{value}: {}", later.await)
}

#[taskprof::track]
async fn boxed(flag: bool) -> Box<dyn Display + Send> {
    if flag {
        return Box::new("early");
    }
    Box::new(5)
}

#[taskprof::track]
async fn iter(n: u32) -> Result<impl Iterator<Item = u32>, String> {
    Ok(0..n)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(show("x", async { 1 }).await.to_string(), "x: 1");
        assert_eq!(boxed(true).await.to_string(), "early");
        assert_eq!(boxed(false).await.to_string(), "5");
        assert_eq!(iter(3).await.unwrap().sum::<u32>(), 3);
    });
}
