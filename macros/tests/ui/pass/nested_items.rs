#![deny(warnings)]

#[taskprof::track]
async fn outer() -> u32 {
    #[taskprof::track]
    async fn inner(x: u32) -> u32 {
        tokio::task::yield_now().await;
        x + 1
    }

    struct Local;
    impl Local {
        async fn plain(&self) -> u32 {
            tokio::task::yield_now().await;
            10
        }
    }

    let closure = |x: u32| async move { inner(x).await };
    let block = async { Local.plain().await };
    let async_closure = async |x: u32| inner(x).await;
    closure(1).await + block.await + async_closure(2).await
}

#[taskprof::track]
pub extern "C" fn c_abi(x: u32) -> u32 {
    x
}

#[taskprof::track]
async fn r#match() -> u8 {
    1
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(outer()), 2 + 10 + 3);
    assert_eq!(c_abi(4), 4);
    assert_eq!(rt.block_on(r#match()), 1);
}
