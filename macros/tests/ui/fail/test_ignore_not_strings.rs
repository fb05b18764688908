#[taskprof::test(ignore = "my_crate::server::run")]
async fn not_an_array() {}

#[taskprof::test(ignore = ["my_crate::server::run", 40, server::run])]
async fn not_strings() {}

#[taskprof::test(ignore = ["", "server.rs:forty"])]
async fn bad_entries() {}

fn main() {}
