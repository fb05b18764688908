#[taskprof::track(name = 5)]
async fn load() {}

fn main() {
    let _ = load();
}
