#![deny(warnings)]

// `.await` on calls whose type is only known once their output is used: the macro's dispatch on
// the awaited type must not need it earlier.
async fn parse<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.parse().ok()
}

#[taskprof::track]
pub async fn default_of<T: Default>() -> T {
    T::default()
}

#[taskprof::track]
async fn ready<T>(value: T) -> T {
    value
}

#[taskprof::track]
async fn user() -> u64 {
    let n: Option<u32> = parse("5").await;
    let d: u8 = default_of().await;
    let v: Vec<u16> = ready(Vec::new()).await;
    let w = ready(std::future::ready(7u64)).await.await;
    u64::from(n.unwrap_or(0)) + u64::from(d) + v.len() as u64 + w
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(user()), 12);
}
