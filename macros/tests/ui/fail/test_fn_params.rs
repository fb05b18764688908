#[taskprof::test]
async fn with_params(port: u16, host: &str) {
    let _ = (port, host);
}

#[taskprof::test]
async fn generic<T: Default>() {
    let _ = T::default();
}

fn main() {}
