#[taskprof::test(flavor = "multi_thread", timeout = "5s")]
async fn unknown() {}

#[taskprof::test(crate = "tokio")]
async fn renamed_crate() {}

fn main() {}
