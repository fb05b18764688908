#![forbid(unsafe_code)]
//! The criterion microbenchmarks: scenarios 1, 2, 3 and 6 (and the switched-off rows).
//!
//! Every measurement is taken inside a runtime task with `iter_custom`, so what is timed is the
//! loop body only: no `block_on` from outside per iteration (that would measure cross-thread
//! wake-ups), no runtime start-up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use taskprof_bench::median;

use crate::Opts;
use crate::tools::{
    AsyncBacktrace, AwaitTree, Plain, Taskprof, TokioMetrics, Tool, keep, parked_count,
    reset_parked,
};

/// A paired comparison of a tool with plain tokio: both alternated in short rounds (ABBA order),
/// so a change of the machine's load hits both sides of a round alike.
#[derive(Clone, Copy, Debug)]
pub struct Paired {
    /// Median over rounds of tool time / plain time.
    pub ratio: f64,
    /// Median over rounds of (tool time - plain time) per iteration, in ns.
    pub delta_ns: f64,
}

/// Paired results by (criterion group, function id).
static PAIRED: Mutex<BTreeMap<(String, String), Paired>> = Mutex::new(BTreeMap::new());

/// The paired result of `id` in `group`, if measured.
pub fn paired(group: &str, id: &str) -> Option<Paired> {
    PAIRED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(group.to_owned(), id.to_owned()))
        .copied()
}

/// Rounds and per-round duration of the tool's side of a paired comparison.
#[derive(Clone, Copy)]
pub struct PairedConfig {
    /// Rounds (each runs both sides once).
    pub rounds: usize,
    /// Time the tool's side of a round should take (iterations are calibrated on it).
    pub target: Duration,
}

/// Iterations (a power of two) for which `run` takes at least `target`.
fn calibrate(target: Duration, mut run: impl FnMut(u64) -> Duration) -> u64 {
    let mut iters = 1u64;
    while run(iters) < target && iters < 1 << 30 {
        iters *= 2;
    }
    iters
}

fn measure_paired(
    cfg: PairedConfig,
    mut plain: impl FnMut(u64) -> Duration,
    mut tool: impl FnMut(u64) -> Duration,
) -> Paired {
    // Calibrated on the tool's side: a slow peer's rounds (up to 500× plain's in a chain of
    // frames) then take about the target too, not hundreds of times it.
    let iters = calibrate(cfg.target, &mut tool);
    let (mut ratios, mut deltas) = (Vec::new(), Vec::new());
    for round in 0..cfg.rounds.max(1) {
        let (p, t) = if round % 2 == 0 {
            let p = plain(iters);
            (p, tool(iters))
        } else {
            let t = tool(iters);
            (plain(iters), t)
        };
        let (p, t) = (p.as_secs_f64(), t.as_secs_f64());
        ratios.push(t / p);
        deltas.push((t - p) * 1e9 / iters as f64);
    }
    Paired {
        ratio: median(&mut ratios).unwrap_or(f64::NAN),
        delta_ns: median(&mut deltas).unwrap_or(f64::NAN),
    }
}

/// Records the paired result of `id` in `group` (the median of the child processes' results).
pub fn record_paired(group: &str, id: &str, p: Paired) {
    PAIRED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((group.to_owned(), id.to_owned()), p);
}

/// Criterion group of scenario 1, current_thread runtime.
pub const SPAWN_CT: &str = "spawn_join_current_thread";
/// Criterion group of scenario 1, multi_thread runtime with 2 workers.
pub const SPAWN_MT: &str = "spawn_join_multi_thread";
/// Criterion group of scenario 2: a task yielding in a loop (per yield).
pub const POLL: &str = "poll_yield";
/// Criterion group of scenario 2 with the yield inside one instrumented fn.
pub const POLL_FRAME: &str = "poll_yield_in_frame";
/// Criterion group of scenario 3, chain completing without suspending (per chain call).
pub const FRAMES_FLAT: &str = "frames_flat";
/// Criterion group of scenario 3, one suspension per frame (per chain call).
pub const FRAMES_YIELD: &str = "frames_yield";
/// Criterion group of scenario 6, current_thread.
pub const PARKED_CT: &str = "spawn_with_parked_current_thread";
/// Criterion group of scenario 6, multi_thread.
pub const PARKED_MT: &str = "spawn_with_parked_multi_thread";

/// Function id of plain tokio measured a second time at the end of its group (noise check).
pub const PLAIN_AGAIN: &str = "plain-again";
/// Function id of taskprof switched off with `set_enabled(false)`.
pub const TASKPROF_OFF: &str = "taskprof-off";

/// Runtime flavors.
#[derive(Clone, Copy)]
pub enum Flavor {
    /// `new_current_thread`.
    Current,
    /// `new_multi_thread` with 2 workers.
    Multi,
}

/// A runtime of `flavor`; the timer only when asked (scenario 6 sleeps while tasks park).
pub fn runtime(flavor: Flavor, time: bool) -> Runtime {
    let mut b = match flavor {
        Flavor::Current => tokio::runtime::Builder::new_current_thread(),
        Flavor::Multi => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    if time {
        b.enable_time();
    }
    b.build().expect("tokio runtime")
}

/// `iters` spawn+joins of a trivial task, from inside a runtime task.
pub fn spawn_join<T: Tool>(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for i in 0..iters {
                keep(T::spawn(trivial(i)).await.expect("task"));
            }
            start.elapsed()
        })
        .await
        .expect("driver")
    })
}

/// The trivial task of scenario 1: one future type for every tool. (An `async` block written in
/// the generic `spawn_join` would be a type per tool, and tokio's spawn path a copy per type:
/// two copies of the same code, placed differently, differ by a few percent, which the off
/// switch's ≤ 1.02× budget could not tell from its own cost. Switched off, `taskprof::spawn`
/// runs the very code `tokio::spawn` does for plain tokio.)
async fn trivial(i: u64) -> u64 {
    keep(i)
}

/// The task of scenario 2's first row, one future type for every tool (see [`trivial`]).
async fn yields(iters: u64) {
    for _ in 0..iters {
        tokio::task::yield_now().await;
    }
}

/// One task of the tool yielding `iters` times in a plain loop (the body is not instrumented).
fn poll_yield<T: Tool>(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            T::spawn(yields(iters)).await.expect("task");
            start.elapsed()
        })
        .await
        .expect("driver")
    })
}

/// One task of the tool running one instrumented fn that yields `iters` times.
fn poll_yield_in_frame<T: Tool>(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            T::spawn(T::yielder(iters)).await.expect("task");
            start.elapsed()
        })
        .await
        .expect("driver")
    })
}

/// `iters` calls of the 8-frame chain that completes without suspending, in a task of the tool.
pub fn frames_flat<T: Tool>(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        T::spawn(async move {
            let start = Instant::now();
            let mut acc = 0u64;
            for i in 0..iters {
                acc = acc.wrapping_add(T::chain_flat(keep(i)).await);
            }
            keep(acc);
            start.elapsed()
        })
        .await
        .expect("task")
    })
}

/// `iters` calls of the 8-frame chain with one `yield_now` per frame, in a task of the tool.
fn frames_yield<T: Tool>(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        T::spawn(async move {
            let start = Instant::now();
            let mut acc = 0u64;
            for i in 0..iters {
                acc = acc.wrapping_add(T::chain_yield(keep(i)).await);
            }
            keep(acc);
            start.elapsed()
        })
        .await
        .expect("task")
    })
}

/// Spawns `n` tasks of the tool parked two frames deep on the returned `Notify`, and waits until
/// all of them reached their `.await`. The runtime needs its timer.
pub fn park<T: Tool>(rt: &Runtime, n: u64) -> Arc<Notify> {
    reset_parked();
    let notify = Arc::new(Notify::new());
    let shared = notify.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            for i in 0..n {
                drop(T::spawn(T::parked(shared.clone())));
                if i % 4096 == 4095 {
                    // Lets the runtime poll what was spawned so far (keeps its queues short).
                    tokio::task::yield_now().await;
                }
            }
        })
        .await
        .expect("spawner");
        while parked_count() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The last tasks counted themselves just before their `.await`; let them finish parking.
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    notify
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// A scenario, generic over the tool (generic functions can't be passed as values).
trait Scenario {
    /// `iters` iterations of the scenario for tool `T`; returns the time they took.
    fn run<T: Tool>(rt: &Runtime, iters: u64) -> Duration;
}

macro_rules! scenario {
    ($name:ident, $f:ident) => {
        struct $name;
        impl Scenario for $name {
            fn run<T: Tool>(rt: &Runtime, iters: u64) -> Duration {
                $f::<T>(rt, iters)
            }
        }
    };
}
scenario!(SpawnJoin, spawn_join);
scenario!(PollYield, poll_yield);
scenario!(PollYieldInFrame, poll_yield_in_frame);
scenario!(FramesFlat, frames_flat);
scenario!(FramesYield, frames_yield);

/// Registers scenario `S` for tool `T` under the tool's id.
fn bench<S: Scenario, T: Tool>(g: &mut Group<'_>, rt: &Runtime) {
    g.bench_function(T::ID, |b| b.iter_custom(|iters| S::run::<T>(rt, iters)));
}

/// The five tools; then taskprof switched off if `off`; then plain tokio again (`plain-again`,
/// the noise check) if `again`. The paired comparisons that decide the verdicts run later, in
/// child processes of their own (see [`measure_pairs`]).
fn all_tools<S: Scenario>(g: &mut Group<'_>, rt: &Runtime, off: bool, again: bool) {
    bench::<S, Plain>(g, rt);
    bench::<S, Taskprof>(g, rt);
    bench::<S, AsyncBacktrace>(g, rt);
    bench::<S, AwaitTree>(g, rt);
    bench::<S, TokioMetrics>(g, rt);
    if off {
        switched_off::<S>(g, rt);
    }
    if again {
        g.bench_function(PLAIN_AGAIN, |b| {
            b.iter_custom(|iters| S::run::<Plain>(rt, iters))
        });
    }
}

/// The criterion groups whose verdicts come from paired comparisons (rows 1–3 and 7).
pub const PAIRED_GROUPS: [&str; 6] = [
    SPAWN_CT,
    SPAWN_MT,
    POLL,
    POLL_FRAME,
    FRAMES_FLAT,
    FRAMES_YIELD,
];

/// The paired comparisons of group `group` with plain tokio, measured in this process: each
/// tool's, and taskprof switched off where the group has that row. `None` for an unknown group.
pub fn measure_pairs(group: &str, cfg: PairedConfig) -> Option<Vec<(&'static str, Paired)>> {
    let flavor = if group == SPAWN_MT {
        Flavor::Multi
    } else {
        Flavor::Current
    };
    let rt = runtime(flavor, false);
    Some(match group {
        SPAWN_CT | SPAWN_MT => pairs::<SpawnJoin>(&rt, cfg, true),
        POLL => pairs::<PollYield>(&rt, cfg, false),
        POLL_FRAME => pairs::<PollYieldInFrame>(&rt, cfg, false),
        FRAMES_FLAT => pairs::<FramesFlat>(&rt, cfg, true),
        FRAMES_YIELD => pairs::<FramesYield>(&rt, cfg, false),
        _ => return None,
    })
}

fn pairs<S: Scenario>(rt: &Runtime, cfg: PairedConfig, off: bool) -> Vec<(&'static str, Paired)> {
    let mut out = vec![
        (Taskprof::ID, pair::<S, Taskprof>(rt, cfg)),
        (AsyncBacktrace::ID, pair::<S, AsyncBacktrace>(rt, cfg)),
        (AwaitTree::ID, pair::<S, AwaitTree>(rt, cfg)),
        (TokioMetrics::ID, pair::<S, TokioMetrics>(rt, cfg)),
    ];
    if off {
        out.push((TASKPROF_OFF, pair_switched_off::<S>(rt, cfg)));
    }
    out
}

fn pair<S: Scenario, T: Tool>(rt: &Runtime, cfg: PairedConfig) -> Paired {
    measure_paired(
        cfg,
        |iters| S::run::<Plain>(rt, iters),
        |iters| S::run::<T>(rt, iters),
    )
}

fn pair_switched_off<S: Scenario>(rt: &Runtime, cfg: PairedConfig) -> Paired {
    measure_paired(
        cfg,
        |iters| S::run::<Plain>(rt, iters),
        |iters| {
            crate::tools::set_enabled(false);
            let d = S::run::<Taskprof>(rt, iters);
            crate::tools::set_enabled(true);
            d
        },
    )
}

/// taskprof with `set_enabled(false)`.
fn switched_off<S: Scenario>(g: &mut Group<'_>, rt: &Runtime) {
    g.bench_function(TASKPROF_OFF, |b| {
        b.iter_custom(|iters| {
            crate::tools::set_enabled(false);
            let d = S::run::<Taskprof>(rt, iters);
            crate::tools::set_enabled(true);
            d
        })
    });
}

/// Scenarios 1, 2 and 3.
pub fn run(c: &mut Criterion, opts: &Opts) {
    let ct = runtime(Flavor::Current, false);
    let mt = runtime(Flavor::Multi, false);
    let again = !opts.quick;

    let mut g = c.benchmark_group(SPAWN_CT);
    all_tools::<SpawnJoin>(&mut g, &ct, true, again);
    g.finish();

    let mut g = c.benchmark_group(SPAWN_MT);
    all_tools::<SpawnJoin>(&mut g, &mt, true, again);
    g.finish();

    let mut g = c.benchmark_group(POLL);
    all_tools::<PollYield>(&mut g, &ct, false, again);
    g.finish();

    let mut g = c.benchmark_group(POLL_FRAME);
    all_tools::<PollYieldInFrame>(&mut g, &ct, false, false);
    g.finish();

    let mut g = c.benchmark_group(FRAMES_FLAT);
    all_tools::<FramesFlat>(&mut g, &ct, true, false);
    g.finish();

    let mut g = c.benchmark_group(FRAMES_YIELD);
    all_tools::<FramesYield>(&mut g, &ct, false, false);
    g.finish();
}

/// Function ids of scenario 6.
pub fn parked_id(tool: &str, parked: bool) -> String {
    format!("{tool}-{}", if parked { "parked" } else { "none" })
}

/// Scenario 6 for criterion: spawn+join with no parked tasks, then with
/// `opts.spawn_parked_tasks` parked ones of the same tool (tracked ones for taskprof), for plain
/// tokio and taskprof. `opts.spawn_parked_tasks` is 1M in a full run. The paired rounds that
/// decide the verdict run in child processes (see [`parked_rounds`]).
pub fn run_parked(c: &mut Criterion, opts: &Opts) {
    for (group, flavor) in PARKED_GROUPS {
        let mut g = c.benchmark_group(group);
        parked_pair::<Plain>(&mut g, flavor, opts.spawn_parked_tasks);
        parked_pair::<Taskprof>(&mut g, flavor, opts.spawn_parked_tasks);
        g.finish();
    }
}

/// The criterion groups of scenario 6 and their runtimes.
pub const PARKED_GROUPS: [(&str, Flavor); 2] =
    [(PARKED_CT, Flavor::Current), (PARKED_MT, Flavor::Multi)];

/// Scenario 6 for the verdict, in one process (a child of its own): spawn+join timed `rounds`
/// times with nothing parked, then `n` tasks parked, then timed `rounds` times again; the ratio
/// and difference of the two medians (the verdict takes the median over several children).
///
/// The tasks are parked once. Rounds that alternated the two sides had to release the million
/// tasks and park them again, and after a release both plain tokio and taskprof read slower
/// with the tasks parked again (plain 0.87 to 1.01×, taskprof 1.02 to 1.12× over three full
/// runs, where the first round of each child, parked on a fresh heap, read about 1.0× for
/// both): malloc then serves the task cells tokio allocates (128-byte aligned, through
/// `memalign`) from the million cells freed, each spawn's cell a cold one, where on a fresh
/// heap it reuses the one just freed (callgrind's cache simulation: 3.8 L1 write misses per
/// spawn in the cell's initialization after a release, none before; the instruction count
/// does not change). That is the allocator's state after a release, not a cost of live tasks.
pub fn parked_rounds<T: Tool>(flavor: Flavor, n: u64, rounds: usize) -> Paired {
    let rt = runtime(flavor, true);
    let target = Duration::from_millis(10);
    let iters = calibrate(target, |iters| spawn_join::<T>(&rt, iters));
    // Warm-up: a process's first tens of milliseconds of spawns read slower.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        spawn_join::<T>(&rt, iters);
    }
    let timed = || -> f64 {
        let mut times: Vec<f64> = (0..rounds.max(1))
            .map(|_| spawn_join::<T>(&rt, iters).as_secs_f64() * 1e9 / iters as f64)
            .collect();
        median(&mut times).unwrap_or(f64::NAN)
    };
    let none = timed();
    let notify = park::<T>(&rt, n);
    // As in the criterion run: one-off costs right after parking are not measured.
    spawn_join::<T>(&rt, 20_000);
    let parked = timed();
    notify.notify_waiters();
    Paired {
        ratio: parked / none,
        delta_ns: parked - none,
    }
}

fn parked_pair<T: Tool>(g: &mut Group<'_>, flavor: Flavor, n: u64) {
    let rt = runtime(flavor, true);
    g.bench_function(parked_id(T::ID, false), |b| {
        b.iter_custom(|iters| spawn_join::<T>(&rt, iters))
    });
    // Only pay for parking when criterion will measure (not under `--list` or a filter).
    let mut notify = None;
    g.bench_function(parked_id(T::ID, true), |b| {
        let _ = notify.get_or_insert_with(|| {
            let notify = park::<T>(&rt, n);
            // One-off costs right after parking (a registry shard growing, first touches of new
            // heap pages) are not the steady state this row is about; criterion's `--quick`
            // has no warm-up of its own.
            spawn_join::<T>(&rt, 20_000);
            notify
        });
        b.iter_custom(|iters| spawn_join::<T>(&rt, iters))
    });
    if let Some(n) = notify {
        n.notify_waiters();
    }
    // Shutting the runtime down drops whatever is still parked.
    drop(rt);
}
