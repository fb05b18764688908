//! Argument combinations `#[taskprof::test]` accepts. trybuild builds without `--test`, so the
//! generated test functions are compiled out here; their bodies are type-checked (and run) by
//! the `taskprof-tests` package (`tests/leaks_*.rs`).
#![deny(warnings)]

#[taskprof::test]
async fn defaults() {}

#[taskprof::test()]
async fn empty_parens() {}

#[taskprof::test(flavor = "current_thread")]
async fn current_thread() {}

#[taskprof::test(flavor = "multi_thread")]
async fn multi_thread() {}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_workers() {}

#[taskprof::test(worker_threads = 4usize, flavor = "multi_thread",)]
async fn workers_first_trailing_comma() {}

#[taskprof::test(start_paused = true)]
async fn paused() {}

#[taskprof::test(flavor = "current_thread", start_paused = true, grace = "10m")]
async fn paused_current_thread() {}

#[taskprof::test(flavor = "multi_thread", start_paused = false)]
async fn multi_thread_not_paused() {}

#[taskprof::test(grace = "0s")]
async fn no_grace() {}

#[taskprof::test(grace = "1.5s")]
async fn decimal_grace() {}

#[taskprof::test(grace = "250ms")]
async fn grace_ms() {}

#[taskprof::test(grace = "750us")]
async fn grace_us() {}

#[taskprof::test(grace = "100000ns")]
async fn grace_ns() {}

#[taskprof::test(ignore = [])]
async fn ignore_nothing() {}

#[taskprof::test(ignore = ["my_crate::server::run", "server.rs:40", "src/db.rs", "worker",])]
async fn ignore_all_kinds() {}

#[taskprof::test(
    flavor = "multi_thread",
    worker_threads = 3,
    grace = "2s",
    ignore = ["a::b", "c.rs:1"]
)]
async fn everything() {}

fn main() {}
