#[taskprof::track(name = "a", name = "b")]
async fn load() {}

fn main() {
    let _ = load();
}
