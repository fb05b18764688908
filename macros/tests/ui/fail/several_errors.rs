#[taskprof::track(nme = "load", name = 1, label(kind = db, "" = "x"), name = "ok", name = "again")]
async fn load() {}

fn main() {
    let _ = load();
}
