#[taskprof::track]
static LIMIT: usize = 10;

fn main() {
    let _ = LIMIT;
}
