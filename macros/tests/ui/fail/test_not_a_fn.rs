#[taskprof::test]
struct NotAFn;

fn main() {}
