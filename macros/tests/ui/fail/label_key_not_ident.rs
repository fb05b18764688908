#[taskprof::track(label(5 = "five"))]
async fn load() {}

fn main() {
    let _ = load();
}
