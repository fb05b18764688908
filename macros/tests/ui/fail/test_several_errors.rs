#[taskprof::test(flavor = "current_thread", worker_threads = 2, grace = "soon", ignore = [1], flavor = "x")]
fn everything_wrong(x: u8) {
    let _ = x;
}

fn main() {}
