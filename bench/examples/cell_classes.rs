#![forbid(unsafe_code)]
//! How the RSS of a parked tokio task grows with the size of its future: in steps of 128 bytes.
//!
//! tokio allocates a task (header, future, trailer) as one `Cell` aligned to 128 bytes on x86-64,
//! so a task's allocation is a multiple of 128 bytes: bytes a tool adds to a future cost nothing
//! until the future crosses into the next multiple, then 128 bytes (plus the allocator's share).
//! That is why scenario 4 of the cost benchmark counts the bytes a tool adds to the future
//! separately from what it allocates itself.
//!
//! ```sh
//! cargo run --release -p taskprof-bench --example cell_classes
//! ```
//!
//! Prints, for a future padded by 0 to 160 bytes, its size and the RSS per parked task (100k
//! tasks, plain `tokio::spawn` and `taskprof::spawn`).
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Tasks parked per measurement.
const TASKS: u64 = 100_000;

async fn body<const N: usize>(notify: Arc<Notify>, pad: [u8; N]) {
    let pad = std::hint::black_box(pad);
    notify.notified().await;
    std::hint::black_box(pad);
}

/// The size of the future `taskprof::spawn` hands tokio for `fut`.
fn tracked_size<F>(_: &F) -> usize {
    size_of::<taskprof::__private::Tracked<F>>()
}

fn rss() -> f64 {
    taskprof_bench::rss_bytes().unwrap_or(0) as f64
}

/// Parks `tasks` tasks with an `N`-byte pad, prints (if `report`) the RSS they added per task,
/// releases them.
fn probe<const N: usize>(rt: &tokio::runtime::Runtime, tracked: bool, tasks: u64, report: bool) {
    let notify = Arc::new(Notify::new());
    let fut = body::<N>(notify.clone(), [0; N]);
    let size = if tracked {
        tracked_size(&fut)
    } else {
        size_of_val(&fut)
    };
    drop(fut);
    let before = rss();
    rt.block_on(async {
        for _ in 0..tasks {
            let fut = body::<N>(notify.clone(), [0; N]);
            drop(if tracked {
                taskprof::spawn(fut)
            } else {
                tokio::spawn(fut)
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let per_task = (rss() - before) / tasks as f64;
    let tool = if tracked { "taskprof" } else { "plain" };
    if report {
        println!("{tool:>8}  pad {N:>3} B  future {size:>3} B  RSS per task {per_task:>4.0} B");
    }
    notify.notify_waiters();
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
}

/// Pads probed, in bytes.
const PADS: [usize; 8] = [0, 16, 32, 40, 64, 96, 128, 160];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tool, pad] = args.as_slice() else {
        // Each probe in a process of its own: freed task memory (and taskprof's headers, kept
        // for reuse) would be reused by the next one and not show in its RSS.
        let exe = std::env::current_exe().expect("the path of this executable");
        for tool in ["plain", "taskprof"] {
            for pad in PADS {
                let status = std::process::Command::new(&exe)
                    .args([tool, &pad.to_string()])
                    .status()
                    .expect("a child process");
                assert!(status.success(), "probe {tool} {pad} failed");
            }
        }
        return;
    };
    let tracked = tool == "taskprof";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Warm-up: first-use allocations (runtime queues, registries) are not per task.
    probe::<0>(&rt, tracked, 64, false);
    match pad.parse::<usize>() {
        Ok(0) => probe::<0>(&rt, tracked, TASKS, true),
        Ok(16) => probe::<16>(&rt, tracked, TASKS, true),
        Ok(32) => probe::<32>(&rt, tracked, TASKS, true),
        Ok(40) => probe::<40>(&rt, tracked, TASKS, true),
        Ok(64) => probe::<64>(&rt, tracked, TASKS, true),
        Ok(96) => probe::<96>(&rt, tracked, TASKS, true),
        Ok(128) => probe::<128>(&rt, tracked, TASKS, true),
        Ok(160) => probe::<160>(&rt, tracked, TASKS, true),
        _ => eprintln!("pad {pad:?} is not one of {PADS:?}"),
    }
}
