#[taskprof::test(worker_threads = 2)]
async fn default_flavor() {}

#[taskprof::test(flavor = "current_thread", worker_threads = 2)]
async fn current_thread() {}

#[taskprof::test(flavor = "multi_thread", worker_threads = 0)]
async fn zero() {}

#[taskprof::test(flavor = "multi_thread", worker_threads = "2")]
async fn not_an_int() {}

fn main() {}
