#![forbid(unsafe_code)]
//! Build script of taskprof-bench.
//!
//! - Feature `off-switch`: sets `cfg(taskprof_set_enabled)` only when taskprof (`../runtime/src`)
//!   has a `set_enabled` function re-exported from its `lib.rs`, so
//!   `cargo clippy --workspace --all-features` builds before that function exists; until then the
//!   switched-off rows print `n/a` and the build prints a warning.
//! - Records the compiler and the peers' versions (from `Cargo.lock`) for the results table.

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let root = Path::new(&manifest).join("..");
    let runtime_src = root.join("runtime").join("src");
    let lock = root.join("Cargo.lock");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={}", runtime_src.display());
    println!("cargo::rerun-if-changed={}", lock.display());
    println!("cargo::rustc-check-cfg=cfg(taskprof_set_enabled)");

    if std::env::var_os("CARGO_FEATURE_OFF_SWITCH").is_some() {
        if has_set_enabled(&runtime_src) {
            println!("cargo::rustc-cfg=taskprof_set_enabled");
        } else {
            println!(
                "cargo::warning=feature `off-switch`: taskprof has no `set_enabled` yet \
                 (looked in {}); the switched-off rows are skipped",
                runtime_src.display()
            );
        }
    }

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

/// True when some file of taskprof's sources defines `fn set_enabled` and `lib.rs` names it.
fn has_set_enabled(src: &Path) -> bool {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    if !lib.contains("set_enabled") {
        return false;
    }
    let Ok(dir) = std::fs::read_dir(src) else {
        return false;
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .any(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|text| text.contains("fn set_enabled"))
        })
}

/// The version of `krate` in a `Cargo.lock` (the first entry if there are several).
fn locked_version(lock: &str, krate: &str) -> Option<String> {
    let needle = format!("name = \"{krate}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let end = start + lock[start..].find('"')?;
    Some(lock[start..end].to_owned())
}
