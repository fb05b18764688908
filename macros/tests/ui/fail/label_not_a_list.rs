#[taskprof::track(label = "db")]
async fn load() {}

fn main() {
    let _ = load();
}
