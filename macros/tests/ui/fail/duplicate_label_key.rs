#[taskprof::track(label(kind = "db", shard = "1", kind = "cache"))]
async fn load() {}

fn main() {
    let _ = load();
}
