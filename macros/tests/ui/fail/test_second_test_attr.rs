#[taskprof::test]
#[test]
async fn twice() {}

#[taskprof::test]
#[tokio::test]
async fn with_tokio() {}

fn main() {}
