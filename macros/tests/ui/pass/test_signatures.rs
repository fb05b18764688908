//! Function shapes `#[taskprof::test]` keeps: attributes, docs, visibility, return types.
//! Compiled out without `--test` (see `test_args.rs`); the same shapes run in `taskprof-tests`.
#![deny(warnings)]

/// Docs stay on the test.
#[taskprof::test]
#[should_panic(expected = "boom")]
async fn should_panic() {
    panic!("boom");
}

#[taskprof::test]
#[ignore = "slow"]
pub async fn ignored_pub() {}

#[taskprof::test]
async fn returns_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[taskprof::test]
async fn inner_attribute() {
    #![allow(clippy::let_unit_value)]
    let unit = ();
    let () = unit;
}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns() {
    let mut set = tokio::task::JoinSet::new();
    set.spawn(async { 1 });
    tokio::spawn(async {}).await.unwrap();
    tokio::task::spawn_blocking(|| ()).await.unwrap();
    while set.join_next().await.is_some() {}
}

fn main() {}
