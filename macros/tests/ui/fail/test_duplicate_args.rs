#[taskprof::test(flavor = "multi_thread", flavor = "multi_thread")]
async fn flavor() {}

#[taskprof::test(flavor = "multi_thread", worker_threads = 2, worker_threads = 4)]
async fn worker_threads() {}

#[taskprof::test(start_paused = true, start_paused = false)]
async fn start_paused() {}

#[taskprof::test(grace = "1s", grace = "2s")]
async fn grace() {}

#[taskprof::test(ignore = ["a::b"], ignore = ["x.rs:3"])]
async fn ignore() {}

fn main() {}
