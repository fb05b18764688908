#![forbid(unsafe_code)]
//! Build script of taskprof-bench.
//!
//! Records the compiler and the peers' versions (from `Cargo.lock`) for the results table.

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let root = Path::new(&manifest).join("..");
    let lock = root.join("Cargo.lock");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={}", lock.display());

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "rustc (unknown)".to_owned(), |v| v.trim().to_owned());
    println!("cargo::rustc-env=BENCH_RUSTC_VERSION={version}");

    let lock = std::fs::read_to_string(&lock).unwrap_or_default();
    for (krate, var) in [
        ("async-backtrace", "BENCH_VERSION_ASYNC_BACKTRACE"),
        ("await-tree", "BENCH_VERSION_AWAIT_TREE"),
        ("tokio-metrics", "BENCH_VERSION_TOKIO_METRICS"),
        ("tokio", "BENCH_VERSION_TOKIO"),
        ("criterion", "BENCH_VERSION_CRITERION"),
    ] {
        let version = locked_version(&lock, krate).unwrap_or_else(|| "?".to_owned());
        println!("cargo::rustc-env={var}={version}");
    }
}

/// The version of `krate` in a `Cargo.lock` (the first entry if there are several).
fn locked_version(lock: &str, krate: &str) -> Option<String> {
    let needle = format!("name = \"{krate}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let end = start + lock[start..].find('"')?;
    Some(lock[start..end].to_owned())
}
