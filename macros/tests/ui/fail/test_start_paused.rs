#[taskprof::test(flavor = "multi_thread", start_paused = true)]
async fn multi_thread() {}

#[taskprof::test(start_paused = "yes")]
async fn not_a_bool() {}

#[taskprof::test(start_paused)]
async fn no_value() {}

fn main() {}
