#[taskprof::track(name = "load" label(kind = "db"))]
async fn load() {}

fn main() {
    let _ = load();
}
