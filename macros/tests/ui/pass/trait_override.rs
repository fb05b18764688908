#![deny(warnings)]

// Provided `#[track]` methods keep the trait's signature: impls override them without
// `#[track]`, and `#[track]` impls of required methods refine nothing they must not.
trait Source: Sized {
    #[taskprof::track]
    async fn fetch(&self) -> u32 {
        1
    }

    async fn make() -> Self;

    #[taskprof::track]
    async fn pair(a: Self, b: Self) -> (Self, Self) {
        (a, b)
    }
}

struct Plain;

impl Source for Plain {
    async fn fetch(&self) -> u32 {
        2
    }

    async fn make() -> Self {
        Plain
    }

    async fn pair(a: Self, _: Self) -> (Self, Self) {
        (Plain, a)
    }
}

struct Tracked;

impl Source for Tracked {
    #[taskprof::track]
    async fn make() -> Self {
        Tracked
    }
}

#[taskprof::track]
async fn total() -> u32 {
    let plain = Plain::make().await;
    let tracked = Tracked::make().await;
    let (a, _) = Plain::pair(Plain, Plain).await;
    plain.fetch().await + tracked.fetch().await + a.fetch().await
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(total()), 5);
}
