#[taskprof::track(label(shard = 3))]
async fn load() {}

fn main() {
    let _ = load();
}
