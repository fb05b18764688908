struct S;

impl S {
    #[taskprof::track(name = "s")]
    pub const fn new() -> Self {
        S
    }
}

fn main() {
    let _ = S::new();
}
