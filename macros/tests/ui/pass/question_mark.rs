#![deny(warnings)]

use std::error::Error;

#[taskprof::track]
async fn parse(input: &str) -> Result<u32, Box<dyn Error + Send + Sync>> {
    if input.is_empty() {
        return Ok(0);
    }
    let n: u32 = input.trim().parse()?;
    let ready = std::future::ready(Ok::<_, std::io::Error>(n)).await?;
    if ready > 100 {
        return Err("too big".into());
    }
    Ok(ready)
}

#[taskprof::track]
async fn first_even(values: Vec<u32>) -> Option<u32> {
    for v in values {
        tokio::task::yield_now().await;
        if v % 2 == 0 {
            return Some(v);
        }
    }
    None
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(parse("42").await.unwrap(), 42);
        assert_eq!(parse("").await.unwrap(), 0);
        assert!(parse("x").await.is_err());
        assert!(parse("500").await.is_err());
        assert_eq!(first_even(vec![1, 3, 4, 6]).await, Some(4));
    });
}
