#![deny(warnings)]

use std::pin::Pin;
use std::sync::Arc;

pub struct Counter {
    n: u64,
}

impl Counter {
    #[taskprof::track]
    pub async fn new(n: u64) -> Self {
        Counter { n }
    }

    #[taskprof::track]
    pub async fn get(&self) -> u64 {
        tokio::task::yield_now().await;
        self.n
    }

    #[taskprof::track]
    pub async fn bump(&mut self, by: u64) -> &mut Self {
        tokio::task::yield_now().await;
        self.n += by;
        self
    }

    #[taskprof::track]
    pub async fn into_inner(self) -> u64 {
        let Counter { n } = self;
        n
    }

    #[taskprof::track]
    pub async fn shared(self: Arc<Self>) -> u64 {
        self.get().await
    }

    #[taskprof::track]
    pub async fn pinned(self: Pin<&mut Self>) -> u64 {
        self.n
    }

    #[taskprof::track]
    pub async fn with_mut_arg(&self, mut extra: u64, (a, b): (u64, u64)) -> u64 {
        extra += a + b;
        self.n + extra
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = Counter::new(1).await;
        c.bump(2).await.bump(3).await;
        assert_eq!(c.get().await, 6);
        let mut boxed = Box::pin(Counter::new(4).await);
        assert_eq!(boxed.as_mut().pinned().await, 4);
        assert_eq!(Arc::new(Counter::new(5).await).shared().await, 5);
        assert_eq!(c.with_mut_arg(1, (2, 3)).await, 12);
        assert_eq!(c.into_inner().await, 6);
    });
}
