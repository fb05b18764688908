//! Compile-time behaviour of `#[taskprof::track]`, through the `taskprof` facade.
//!
//! Regenerate the `.stderr` snapshots with `TRYBUILD=overwrite cargo test -p taskprof-macros
//! --test ui` and read every changed file: each error must point at the user's token, with no
//! second, spurious error.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
