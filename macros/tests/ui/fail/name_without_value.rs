#[taskprof::track(name)]
async fn load() {}

fn main() {
    let _ = load();
}
