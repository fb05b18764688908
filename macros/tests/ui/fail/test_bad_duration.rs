#[taskprof::test(grace = "5 parsecs")]
async fn parsecs() {}

#[taskprof::test(grace = "")]
async fn empty() {}

#[taskprof::test(grace = "-1s")]
async fn negative() {}

#[taskprof::test(grace = "18446744073709551616ns")]
async fn overflow() {}

#[taskprof::test(grace = "1.5ns")]
async fn sub_nanosecond() {}

#[taskprof::test(grace = 500)]
async fn not_a_string() {}

fn main() {}
