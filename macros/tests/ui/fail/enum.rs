#[taskprof::track]
enum State {
    Idle,
}

fn main() {
    let _ = State::Idle;
}
