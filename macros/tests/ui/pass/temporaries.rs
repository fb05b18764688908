#![deny(warnings)]

use std::sync::Mutex;

async fn len(s: &str) -> usize {
    s.len()
}

#[taskprof::track]
async fn borrows_temporaries(m: &Mutex<Vec<u8>>) -> usize {
    // The temporaries `String` and the guard live until the end of the statement, as without
    // the attribute.
    let a = len(&String::from("abc")).await;
    let b = len(&format!("{}", m.lock().unwrap().len())).await;
    let c = std::future::ready(m.lock().unwrap().len()).await;
    a + b + c
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let m = Mutex::new(vec![1, 2]);
    assert_eq!(rt.block_on(borrows_temporaries(&m)), 3 + 1 + 2);
}
