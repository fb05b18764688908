#[taskprof::track(label(kind = "db"), label(shard = "1"))]
async fn load() {}

fn main() {
    let _ = load();
}
