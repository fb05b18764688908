const NAME: &str = "load";

#[taskprof::track(name = NAME)]
async fn load() {}

fn main() {
    let _ = load();
}
