#![deny(warnings)]

#[taskprof::track]
async fn noisy() {
    #![allow(unused_variables, unused_mut)]
    let mut unused = 1;
    tokio::task::yield_now().await;
}

#[taskprof::track]
fn sync_noisy() {
    #![allow(unused_variables)]
    let unused = 1;
}

fn main() {
    sync_noisy();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(noisy());
}
