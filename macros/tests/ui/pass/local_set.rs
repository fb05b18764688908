#![deny(warnings)]

use std::rc::Rc;

#[taskprof::track]
async fn local_work(v: Rc<u8>) -> u8 {
    tokio::task::yield_now().await;
    *v
}

#[taskprof::track]
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let v = Rc::new(3);
    let h = local.spawn_local(local_work(v.clone()));
    let out = local.block_on(&rt, async move {
        let h2 = tokio::task::spawn_local(local_work(v));
        h.await.unwrap() + h2.await.unwrap()
    });
    assert_eq!(out, 6);
}
