#[taskprof::test(flavor = "multi_threaded")]
async fn typo() {}

#[taskprof::test(flavor = multi_thread)]
async fn not_a_string() {}

fn main() {}
