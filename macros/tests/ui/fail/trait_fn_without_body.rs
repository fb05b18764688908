trait Store {
    #[taskprof::track]
    async fn load(&self);
}

fn main() {}
