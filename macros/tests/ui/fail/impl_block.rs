struct Db;

#[taskprof::track]
impl Db {
    async fn load(&self) {}
}

fn main() {
    let _ = Db.load();
}
