//! Compiles the vendored `proto/profile.proto` (feature `pprof`) with protox, a protobuf compiler
//! in pure Rust, so building needs no `protoc`; prost-build turns it into Rust in `OUT_DIR`.
//!
//! The schema is google/pprof's published `proto/profile.proto`, byte for byte as Debian ships it
//! in golang-github-google-pprof-dev 0.0~git20211008.947d60d-1 (the pprof of Debian's Go 1.19).
#![forbid(unsafe_code)]

fn main() {
    #[cfg(feature = "pprof")]
    pprof();
}

#[cfg(feature = "pprof")]
fn pprof() {
    println!("cargo:rerun-if-changed=proto/profile.proto");
    let files = match protox::compile(["profile.proto"], ["proto"]) {
        Ok(files) => files,
        Err(e) => panic!("proto/profile.proto does not compile: {e}"),
    };
    if let Err(e) = prost_build::Config::new().compile_fds(files) {
        panic!("prost-build failed on proto/profile.proto: {e}");
    }
}
