#[taskprof::track(name = "load", level = "debug")]
async fn load() {}

fn main() {
    let _ = load();
}
