#![forbid(unsafe_code)]
//! Scenarios 4 and 5, and the comparisons that decide the verdicts of rows 1–3, 6 and 7,
//! each run in fresh child processes: the bench binary re-executes itself with [`CHILD_ENV`]
//! set, so every tool's memory is measured from a clean heap (no allocator reuse from an earlier
//! tool) and a dump only sees its own tasks.
//!
//! The paired comparisons take the median over several children: one process reads the same
//! code a few percent faster or slower than another, as its stack and heap are placed (address
//! space layout randomization; the size of the environment moves the stack too). On this
//! machine, `TASKPROF=off` spawn+join read 1.002× to 1.04× plain tokio in children that
//! differed only in that. Within one process the bias holds for every round, so more rounds do
//! not remove it; more processes do.
//!
//! A child prints one line `RESULT key=value ...` on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskprof_bench::{median, rss_bytes};

use crate::micro::{
    Flavor, PAIRED_GROUPS, PARKED_GROUPS, Paired, PairedConfig, measure_pairs, park, parked_rounds,
    record_paired, runtime,
};
use crate::tools::{AWAIT_TREE, Tool};
use crate::{Opts, for_tool};

/// Set in a child's environment: `parked TOOL N REPS`, `scaling N,N,.. REPS`,
/// `offenv ITERS ROUNDS`, `pairs GROUP ROUNDS TARGET_US` or `parkedpair GROUP TOOL N ROUNDS`.
pub const CHILD_ENV: &str = "TASKPROF_BENCH_CHILD";

/// What a child reported.
pub type Report = BTreeMap<String, f64>;

/// Runs the child scenario `spec` (the value of [`CHILD_ENV`]) and prints its `RESULT` line.
pub fn run(spec: &str) {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let num = |i: usize| -> u64 {
        words
            .get(i)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("bad {CHILD_ENV}: {spec:?}"))
    };
    let report = match words.first() {
        Some(&"parked") => {
            let tool = *words.get(1).expect("tool");
            let (n, reps) = (num(2), num(3) as usize);
            for_tool!(tool, parked_child(n, reps))
        }
        Some(&"offenv") => off_env_child(num(1), num(2) as usize),
        Some(&"scaling") => {
            let sizes: Vec<u64> = words
                .get(1)
                .map(|w| w.split(',').filter_map(|n| n.parse().ok()).collect())
                .unwrap_or_default();
            scaling_child(&sizes, num(2) as usize)
        }
        Some(&"pairs") => {
            let group = *words.get(1).expect("group");
            let cfg = PairedConfig {
                rounds: num(2) as usize,
                target: Duration::from_micros(num(3)),
            };
            let pairs = measure_pairs(group, cfg).unwrap_or_else(|| panic!("bad group {group}"));
            pairs
                .into_iter()
                .flat_map(|(id, p)| paired_keys(id, p))
                .collect()
        }
        Some(&"parkedpair") => {
            let group = *words.get(1).expect("group");
            let tool = *words.get(2).expect("tool");
            let (n, rounds) = (num(3), num(4) as usize);
            let flavor = PARKED_GROUPS
                .iter()
                .find(|(g, _)| *g == group)
                .map(|&(_, f)| f)
                .unwrap_or_else(|| panic!("bad group {group}"));
            let p: Paired = for_tool!(tool, parked_rounds(flavor, n, rounds));
            paired_keys(tool, p).into_iter().collect()
        }
        _ => panic!("bad {CHILD_ENV}: {spec:?}"),
    };
    let mut line = String::from("RESULT");
    for (k, v) in &report {
        let _ = write!(line, " {k}={v}");
    }
    println!("{line}");
}

/// Runs a child with `spec` (and `env`) and parses its `RESULT` line; `None` (with a message on
/// stderr) if it failed.
pub fn spawn(spec: &str, env: &[(&str, &str)]) -> Option<Report> {
    let exe = std::env::current_exe().ok()?;
    let mut cmd = Command::new(exe);
    cmd.env(CHILD_ENV, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("child `{spec}`: {e}");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("RESULT")) else {
        eprintln!("child `{spec}` failed ({}):\n{stdout}", out.status);
        return None;
    };
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect(),
    )
}

/// Per-key medians of several reports of the same child.
fn merge(reports: &[Report]) -> Report {
    let mut keys: Vec<&String> = reports.iter().flat_map(|r| r.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let mut v: Vec<f64> = reports.iter().filter_map(|r| r.get(k).copied()).collect();
            Some((k.clone(), median(&mut v)?))
        })
        .collect()
}

/// The results of all child scenarios.
#[derive(Default)]
pub struct Children {
    /// Scenarios 4 and 5 at `opts.parked_tasks`, per tool id.
    pub parked: BTreeMap<&'static str, Report>,
    /// taskprof's dumps at each scaling size.
    pub scaling: Vec<(u64, Report)>,
    /// The `TASKPROF=off` children's reports merged, if run.
    pub off_env: Option<Report>,
}

/// The paired comparisons of rows 1–3 and 7 (`opts.paired_children` children per criterion
/// group, the groups taking turns), recorded for the summary as the median over the children;
/// then the `TASKPROF=off` child as many times, whose merged report is returned.
pub fn run_paired(opts: &Opts) -> Option<Report> {
    if opts.profile {
        return None;
    }
    let groups: Vec<(&str, PairedConfig)> = PAIRED_GROUPS
        .iter()
        .filter_map(|&g| Some((g, opts.paired_for(g)?)))
        .collect();
    let mut reports: Vec<Vec<Report>> = vec![Vec::new(); groups.len()];
    for _ in 0..opts.paired_children {
        for (&(group, cfg), reports) in groups.iter().zip(&mut reports) {
            eprintln!("child: paired rounds of {group}");
            reports.extend(spawn(
                &format!(
                    "pairs {group} {} {}",
                    cfg.rounds,
                    cfg.target.as_micros().max(1)
                ),
                &[],
            ));
        }
    }
    for ((group, _), reports) in groups.iter().zip(&reports) {
        record_merged(group, &merge(reports));
    }
    // A nanosecond row: run before the children that park a million tasks. Run right after
    // one, or 5 s after, it read twice its usual delta on this machine.
    opts.paired_for(crate::micro::SPAWN_CT)?;
    let reports: Vec<Report> = (0..opts.paired_children)
        .filter_map(|_| {
            eprintln!("child: TASKPROF=off");
            spawn(
                &format!("offenv {} {}", opts.off_env_iters, opts.off_env_rounds),
                &[("TASKPROF", "off")],
            )
        })
        .collect();
    (!reports.is_empty()).then(|| merge(&reports))
}

/// A paired result of `id` as report keys: `ID.ratio` and `ID.delta`.
fn paired_keys(id: &str, p: Paired) -> [(String, f64); 2] {
    [
        (format!("{id}.ratio"), p.ratio),
        (format!("{id}.delta"), p.delta_ns),
    ]
}

/// Records the merged reports of `group`'s children (see [`paired_keys`]).
fn record_merged(group: &str, report: &Report) {
    for (key, &ratio) in report {
        let Some(id) = key.strip_suffix(".ratio") else {
            continue;
        };
        let delta_ns = report
            .get(&format!("{id}.delta"))
            .copied()
            .unwrap_or(f64::NAN);
        record_paired(group, id, Paired { ratio, delta_ns });
    }
}

/// Scenario 6's verdict (plain tokio's and taskprof's spawn+join with the parked tasks against
/// none, see [`parked_rounds`]), `opts.parked_pair_children` children per group and tool, each
/// `opts.parked_pair_rounds` rounds a side; recorded as the median over the children.
pub fn run_parked_pairs(opts: &Opts) {
    if opts.profile {
        return;
    }
    let groups: Vec<&str> = PARKED_GROUPS
        .iter()
        .map(|&(g, _)| g)
        .filter(|g| opts.paired_for(g).is_some())
        .collect();
    let tools = [crate::tools::Plain::ID, crate::tools::Taskprof::ID];
    let mut reports: BTreeMap<(&str, &str), Vec<Report>> = BTreeMap::new();
    for _ in 0..opts.parked_pair_children {
        for &group in &groups {
            for tool in tools {
                eprintln!("child: {group}, {tool}");
                reports.entry((group, tool)).or_default().extend(spawn(
                    &format!(
                        "parkedpair {group} {tool} {} {}",
                        opts.spawn_parked_tasks, opts.parked_pair_rounds
                    ),
                    &[],
                ));
            }
        }
    }
    for ((group, _), reports) in &reports {
        record_merged(group, &merge(reports));
    }
}

/// Runs the child scenarios of rows 4 and 5 (`opts.children_reps` times per tool, merged by
/// median), and the scaling children (`opts.scaling_children`, each parking up to every size
/// with `opts.scaling_reps` dumps at each).
pub fn run_all(opts: &Opts) -> Children {
    let mut out = Children::default();
    for tool in crate::tools::TOOLS {
        let reps: Vec<Report> = (0..opts.children_reps)
            .filter_map(|_| {
                eprintln!("child: {tool}, {} parked tasks", opts.parked_tasks);
                spawn(
                    &format!("parked {tool} {} {}", opts.parked_tasks, opts.dump_reps),
                    &[],
                )
            })
            .collect();
        if !reps.is_empty() {
            out.parked.insert(tool, merge(&reps));
        }
    }
    // The sizes in one child, parked one after the other, each child reporting how the cost
    // per task grew from one size to the next; the verdict takes the median over the children
    // of those steps. One process reads as a whole faster or slower than another (by up to 1.7×
    // on this machine, its memory placed better or worse), which is not how taskprof scales,
    // and a step measured within one process is free of it.
    let reps: Vec<Report> = (0..opts.scaling_children)
        .filter_map(|_| {
            eprintln!("child: taskprof scaling");
            let sizes: Vec<String> = opts.scaling.iter().map(u64::to_string).collect();
            spawn(
                &format!("scaling {} {}", sizes.join(","), opts.scaling_reps),
                &[],
            )
        })
        .collect();
    if !reps.is_empty() {
        let merged = merge(&reps);
        for &n in &opts.scaling {
            let prefix = format!("{n}.");
            let at_n: Report = merged
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), *v)))
                .collect();
            if !at_n.is_empty() {
                out.scaling.push((n, at_n));
            }
        }
    }
    out
}

/// The multi_thread runtime (2 workers, with its timer) of the parked-task children, after a
/// warm-up: first-use allocations (registries, thread locals, runtime queues) are not per task.
fn warmed_runtime<T: Tool>() -> tokio::runtime::Runtime {
    let rt = runtime(Flavor::Multi, true);
    park::<T>(&rt, 64).notify_waiters();
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
    rt
}

/// Scenario 4 and 5 for tool `T`: parks `n` tasks two frames deep in a multi_thread runtime (2
/// workers), reports the RSS they added per task, then times the tool's dump `reps` times.
fn parked_child<T: Tool>(n: u64, reps: usize) -> Report {
    let rt = warmed_runtime::<T>();

    let future_bytes = T::spawned_size(T::parked(std::sync::Arc::new(Default::default())));
    let before = rss_bytes().unwrap_or(0) as f64;
    let notify = park::<T>(&rt, n);
    let after = rss_bytes().unwrap_or(0) as f64;

    let mut report = Report::new();
    report.insert("n".into(), n as f64);
    report.insert("rss_per_task".into(), (after - before) / n as f64);
    report.insert("future_bytes".into(), future_bytes as f64);
    // Every dump is timed with the CPU's caches holding none of what it reads, as a profile
    // request finds a busy service's: a dump of 10k tasks, timed again and again, would
    // otherwise read them from the cache, and one of 100k or 1M from memory.
    let mut evict = vec![0u8; evict_bytes()];
    for (name, dump) in dumps::<T>() {
        let mut times = Vec::with_capacity(reps);
        let mut bytes = 0;
        for _ in 0..reps.max(1) {
            evict_caches(&mut evict);
            let start = Instant::now();
            let text = dump();
            times.push(start.elapsed().as_secs_f64() * 1e9);
            bytes = text.len();
            drop(std::hint::black_box(text));
        }
        report.insert(format!("{name}_ns"), median(&mut times).unwrap_or(0.0));
        report.insert(format!("{name}_bytes"), bytes as f64);
    }
    if T::ID == crate::tools::Taskprof::ID {
        // Sanity: the profile saw every parked task (plus none or a few of the warm-up's).
        report.insert("seen".into(), taskprof::snapshot().total() as f64);
    }
    notify.notify_waiters();
    drop(rt);
    report
}

/// taskprof's texts of the tasks parked now, for the scaling rows: the grouped profile, and the
/// per-task text written into one reused `String` and to a byte counter (`reps` times each,
/// caches evicted before each; medians in ns).
///
/// `format!` into a fresh `String` page-faults all of it whenever it is over glibc's largest
/// mmap threshold (32 MiB: 100k tasks' text is just over it, 10k tasks' far under it), which
/// measures the allocator, not how taskprof scales: hence the reused `String`, whose first
/// write sizes it. The byte counter, which decides the verdict, is what taskprof does to
/// produce the text, without the stores of its bytes, which cost per byte what the CPU's caches
/// make them.
fn text_timings(reps: usize, evict: &mut [u8]) -> Report {
    let mut report = Report::new();
    let mut time = |name: &str, warm_up: bool, f: &mut dyn FnMut()| {
        let mut times = Vec::with_capacity(reps);
        for rep in 0..reps.max(1) + usize::from(warm_up) {
            evict_caches(evict);
            let start = Instant::now();
            f();
            if !warm_up || rep > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e9);
            }
        }
        report.insert(format!("{name}_ns"), median(&mut times).unwrap_or(0.0));
    };
    time("grouped", false, &mut || {
        drop(std::hint::black_box(taskprof::snapshot().to_string()));
    });
    let mut buf = String::new();
    time("per_task_reused", true, &mut || {
        buf.clear();
        let _ = write!(buf, "{:#}", taskprof::snapshot());
    });
    let mut counted = Counter(0);
    time("per_task_counted", false, &mut || {
        counted.0 = 0;
        let _ = write!(counted, "{:#}", taskprof::snapshot());
    });
    report.insert("per_task_counted_bytes".into(), counted.0 as f64);
    report
}

/// taskprof's scaling: parks tasks up to each of `sizes` in turn (in a multi_thread runtime,
/// 2 workers, as scenario 4) and times its texts at each ([`text_timings`]). Keys are
/// `N.NAME_ns`, and `N.NAME_step`: the cost per task at `N` over that at the size before.
fn scaling_child(sizes: &[u64], reps: usize) -> Report {
    use crate::tools::Taskprof;
    let rt = warmed_runtime::<Taskprof>();
    let mut evict = vec![0u8; evict_bytes()];
    let mut notifies = Vec::new();
    let mut parked = 0;
    let mut report = Report::new();
    let mut before: Option<(u64, Report)> = None;
    for &n in sizes {
        notifies.push(park::<Taskprof>(&rt, n.saturating_sub(parked)));
        parked = parked.max(n);
        let at_n = text_timings(reps, &mut evict);
        for (k, v) in &at_n {
            report.insert(format!("{n}.{k}"), *v);
            if let (Some(name), Some((m, prev))) = (k.strip_suffix("_ns"), &before)
                && let Some(p) = prev.get(k)
            {
                let step = (v / n as f64) / (p / *m as f64);
                report.insert(format!("{n}.{name}_step"), step);
            }
        }
        before = Some((n, at_n));
    }
    report.insert("seen".into(), taskprof::snapshot().total() as f64);
    for n in notifies {
        n.notify_waiters();
    }
    drop(rt);
    report
}

/// Bytes written by [`evict_caches`]: twice the last-level cache (from sysfs; 32 MiB, this
/// machine's, if it does not say).
fn evict_bytes() -> usize {
    let llc = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size")
        .ok()
        .and_then(|s| s.trim().strip_suffix('K')?.parse::<usize>().ok())
        .map_or(32 << 20, |k| k << 10);
    2 * llc
}

/// Writes one byte of every cache line of `buf`: what was cached before is evicted.
fn evict_caches(buf: &mut [u8]) {
    for line in buf.chunks_mut(64) {
        if let Some(b) = line.first_mut() {
            *b = b.wrapping_add(1);
        }
    }
    std::hint::black_box(buf);
}

/// A `fmt::Write` that only counts the bytes written to it.
struct Counter(usize);

impl std::fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += std::hint::black_box(s).len();
        Ok(())
    }
}

type Dump = fn() -> String;

/// The dumps a tool offers: (name, function producing the whole text).
fn dumps<T: Tool>() -> Vec<(&'static str, Dump)> {
    match T::ID {
        "taskprof" => vec![
            ("grouped", || taskprof::snapshot().to_string()),
            ("per_task", || format!("{:#}", taskprof::snapshot())),
        ],
        "async-backtrace" => vec![("per_task", || async_backtrace::taskdump_tree(true))],
        "await-tree" => vec![("per_task", || {
            let mut out = String::new();
            for (key, tree) in AWAIT_TREE.collect_all() {
                let _ = writeln!(out, "{key}: {tree}");
            }
            out
        })],
        _ => Vec::new(),
    }
}

/// The `TASKPROF=off` rows: spawn+join (current_thread) and the flat frame chain, plain and
/// taskprof measured alternately `rounds` times, `iters` iterations each; reports medians.
fn off_env_child(iters: u64, rounds: usize) -> Report {
    use crate::tools::{Plain, Taskprof};
    let rt = runtime(Flavor::Current, false);
    let per = |d: Duration| d.as_secs_f64() * 1e9 / iters as f64;
    let (mut sp, mut st, mut fp, mut ft) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // ABBA, as the paired rounds of rows 1–3: whichever side runs first in a round is not
        // always the same.
        let mut plain = || {
            sp.push(per(crate::micro::spawn_join::<Plain>(&rt, iters)));
            fp.push(per(crate::micro::frames_flat::<Plain>(&rt, iters)));
        };
        let mut tool = || {
            st.push(per(crate::micro::spawn_join::<Taskprof>(&rt, iters)));
            ft.push(per(crate::micro::frames_flat::<Taskprof>(&rt, iters)));
        };
        if round % 2 == 0 {
            plain();
            tool();
        } else {
            tool();
            plain();
        }
    }
    // Paired, as rows 1–3: the median of the per-round ratio or difference.
    let mut spawn_ratio: Vec<f64> = st.iter().zip(&sp).map(|(t, p)| t / p).collect();
    let mut chain_delta: Vec<f64> = ft.iter().zip(&fp).map(|(t, p)| t - p).collect();
    let mut report = Report::new();
    for (k, v) in [
        ("spawn_plain_ns", sp),
        ("spawn_taskprof_ns", st),
        ("chain_plain_ns", fp),
        ("chain_taskprof_ns", ft),
        ("spawn_ratio_paired", std::mem::take(&mut spawn_ratio)),
        ("chain_delta_paired_ns", std::mem::take(&mut chain_delta)),
    ] {
        let mut v = v;
        report.insert(k.into(), median(&mut v).unwrap_or(0.0));
    }
    report
}
