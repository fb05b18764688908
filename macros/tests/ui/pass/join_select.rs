#![deny(warnings)]

use std::time::Duration;

#[taskprof::track]
async fn one() -> u8 {
    1
}

#[taskprof::track]
async fn fallible(ok: bool) -> Result<u8, String> {
    if ok { Ok(2) } else { Err("no".into()) }
}

#[taskprof::track]
async fn combine() -> Result<u8, String> {
    let (a, b) = tokio::join!(one(), async { one().await + 1 });
    let (c, d) = tokio::try_join!(fallible(true), fallible(true))?;
    let (e,) = tokio::join!(biased; one(),);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
    tx.send(9).await.unwrap();
    let mut done = false;
    let mut total = a + b + c + d + e;
    let sleep = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            Some(v) = rx.recv(), if !done => {
                done = true;
                total += v;
            }
            _ = &mut sleep => return Err("timeout".into()),
            else => break,
        }
        if done {
            break;
        }
    }
    let r = tokio::select! {
        v = one() => v,
        v = async { fallible(false).await.unwrap_or(1) } => v,
    };
    Ok(total + r)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(combine()), Ok(18));
}
