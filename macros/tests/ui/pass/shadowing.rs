#![deny(warnings)]
#![allow(dead_code)]

// User items with the names the expansion uses: its paths must be absolute.
struct Location;
struct Option;
struct Some;
struct None;
struct FnSite;
struct Framed;
mod core {}
mod std {}
mod tokio {}
mod __private {}
fn module_path() {}
fn type_name() {}

pub struct Service;

impl Service {
    #[taskprof::track(label(kind = "svc"))]
    pub async fn call(&self) -> u8 {
        ::tokio::task::yield_now().await;
        let _shadow = Location;
        let _shadow = Option;
        7
    }
}

#[taskprof::track]
async fn free() -> u8 {
    let __taskprof_fut = 1;
    let __taskprof_r = 2;
    let __taskprof_arg = 3;
    __taskprof_fut + __taskprof_r + __taskprof_arg
}

fn main() {
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        ::core::assert_eq!(Service.call().await, 7);
        ::core::assert_eq!(free().await, 6);
    });
}
