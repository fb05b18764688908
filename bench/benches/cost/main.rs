#![forbid(unsafe_code)]
//! Cost of taskprof against plain tokio, async-backtrace, await-tree and tokio-metrics (issue E).
//!
//! ```sh
//! cargo bench -p taskprof-bench                 # full run, a few minutes
//! cargo bench -p taskprof-bench -- --quick      # smoke run, under a minute
//! cargo bench -p taskprof-bench -- spawn_join   # only matching criterion groups (no children)
//! ```
//!
//! Scenarios 1–3 and 6 are criterion benchmarks (`harness = false`, this `main`); 4 and 5 run in
//! child processes (this binary re-executed, see `child.rs`). At the end one Markdown table with
//! medians, ratios or deltas to plain tokio and taskprof's budgets is printed and written to
//! `bench/RESULTS.md`.

mod child;
mod micro;
mod summary;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use taskprof_bench::{machine, utc_timestamp};

/// Sizes and modes of one run.
pub struct Opts {
    /// `--quick`: fewer samples, smaller sizes.
    pub quick: bool,
    /// criterion's test mode (`cargo test --benches`, `-- --test`): every benchmark once.
    pub test: bool,
    /// `--list`: criterion lists the benchmarks; nothing is run.
    pub list: bool,
    /// `--profile-time S`: criterion only iterates (for a profiler); no children, no table.
    pub profile: bool,
    /// criterion's positional filter, if any.
    pub filter: Option<String>,
    /// Parked tasks of scenarios 4 and 5.
    pub parked_tasks: u64,
    /// Child processes per tool for scenarios 4 and 5 (merged by median).
    pub children_reps: usize,
    /// Dumps timed per child (median).
    pub dump_reps: usize,
    /// Sizes of taskprof's dump scaling.
    pub scaling: Vec<u64>,
    /// Dumps per child at each scaling size.
    pub scaling_reps: usize,
    /// Child processes of the scaling rows, each parking up to every size (merged by median).
    pub scaling_children: usize,
    /// Parked tasks of scenario 6.
    pub spawn_parked_tasks: u64,
    /// Iterations per round of the `TASKPROF=off` child.
    pub off_env_iters: u64,
    /// Rounds of each `TASKPROF=off` child.
    pub off_env_rounds: usize,
    /// Child processes per paired comparison of rows 1–3 and 7 (and of the `TASKPROF=off`
    /// child), merged by median.
    pub paired_children: usize,
    /// Child processes per tool and runtime of scenario 6's verdict (merged by median).
    pub parked_pair_children: usize,
    /// Rounds of scenario 6 per child and side (with none parked, with the tasks parked).
    pub parked_pair_rounds: usize,
}

impl Opts {
    fn from_args(args: &[String]) -> Self {
        // criterion options that take a value (so the value is not the filter).
        const WITH_VALUE: [&str; 16] = [
            "-c",
            "--color",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--format",
            "--profile-time",
            "--load-baseline",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
        ];
        const WITH_VALUE_2: [&str; 3] = [
            "--significance-level",
            "--plotting-backend",
            "--output-format",
        ];
        let has = |flag: &str| args.iter().any(|a| a == flag);
        let mut filter = None;
        let mut skip = false;
        for a in args.iter().skip(1) {
            if skip {
                skip = false;
            } else if WITH_VALUE.contains(&a.as_str()) || WITH_VALUE_2.contains(&a.as_str()) {
                skip = true;
            } else if !a.starts_with('-') && filter.is_none() {
                filter = Some(a.clone());
            }
        }
        let quick = has("--quick");
        let test = has("--test") || !has("--bench");
        let (parked_tasks, children_reps, dump_reps, scaling, spawn_parked_tasks) = if test {
            (2_000, 1, 1, vec![1_000, 2_000], 2_000)
        } else if quick {
            (100_000, 1, 3, vec![10_000, 100_000], 100_000)
        } else {
            (100_000, 3, 3, vec![10_000, 100_000, 1_000_000], 1_000_000)
        };
        // More dumps per size than the 100k rows' children: a steadier median.
        let scaling_reps = if test { 1 } else { 7 };
        // Whole processes differ more than dumps within one (a process at 10k tasks read 54 or
        // 74 ns per task, its memory placed better or worse): the median of several, cheap
        // enough (a child parking a million tasks takes a few seconds).
        let scaling_children = if test || quick { 1 } else { 7 };
        Opts {
            quick,
            test,
            list: has("--list"),
            profile: args.iter().any(|a| a.starts_with("--profile-time")),
            filter,
            parked_tasks,
            children_reps,
            dump_reps,
            scaling,
            scaling_reps,
            scaling_children,
            spawn_parked_tasks,
            off_env_iters: if test { 1_000 } else { 200_000 },
            off_env_rounds: if test {
                1
            } else if quick {
                3
            } else {
                11
            },
            // A quick run is a smoke run (under a minute): one child.
            paired_children: if test || quick { 1 } else { 7 },
            parked_pair_children: if test || quick { 1 } else { 7 },
            parked_pair_rounds: if test {
                1
            } else if quick {
                3
            } else {
                7
            },
        }
    }

    /// How to run the paired comparisons of criterion group `group`: `None` when listing or when
    /// the filter (taken as a plain substring) leaves the group out.
    pub fn paired_for(&self, group: &str) -> Option<micro::PairedConfig> {
        if self.list
            || self
                .filter
                .as_ref()
                .is_some_and(|f| !group.contains(f.as_str()))
        {
            return None;
        }
        Some(if self.test {
            micro::PairedConfig {
                rounds: 1,
                target: Duration::from_micros(1),
            }
        } else if self.quick {
            micro::PairedConfig {
                rounds: 5,
                target: Duration::from_millis(3),
            }
        } else {
            micro::PairedConfig {
                rounds: 11,
                target: Duration::from_millis(10),
            }
        })
    }

    /// The child scenarios run without a filter, or when the filter names them (`parked`,
    /// `memory`, `dump`).
    fn run_children(&self) -> bool {
        if self.profile {
            return false;
        }
        match &self.filter {
            None => true,
            Some(f) => ["parked", "memory", "dump"]
                .iter()
                .any(|s| s.contains(f.as_str())),
        }
    }
}

/// Where criterion writes (and this binary reads back) results: `$CRITERION_HOME`, else
/// `<target dir>/criterion` (the bench binary is `<target>/<profile>/deps/cost-<hash>`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("criterion")
}

/// `abc1234` (+ `, uncommitted changes in runtime/ or macros/`), if git is there.
fn revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--", "runtime", "macros"]) {
        Some(s) if !s.is_empty() => {
            format!("{head}, with uncommitted changes in runtime/ or macros/")
        }
        _ => head,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let mut w = l.split_whitespace();
            Some(format!("{} {} {}", w.next()?, w.next()?, w.next()?))
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn main() {
    if let Ok(spec) = std::env::var(child::CHILD_ENV) {
        child::run(&spec);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let opts = Opts::from_args(&args);
    let since = SystemTime::now();
    let load_before = loadavg();
    let dir = criterion_dir();

    let mut c = Criterion::default()
        // Read back from here for the summary (criterion's own default is the same directory,
        // but it is only exposed through this method).
        .output_directory(&dir);
    c = if opts.quick {
        // With criterion's `--quick` (passed through by `configure_from_args`), measurement_time
        // caps each benchmark.
        c.warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300))
            .nresamples(1_000)
    } else {
        c.sample_size(50)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .nresamples(5_000)
    };
    let mut c = c.configure_from_args();

    let phase = std::time::Instant::now();
    micro::run(&mut c, &opts);
    eprintln!("phase: scenarios 1-3 took {:.1?}", phase.elapsed());
    if opts.list {
        micro::run_parked(&mut c, &opts);
        return;
    }
    let phase = std::time::Instant::now();
    let off_env = child::run_paired(&opts);
    eprintln!(
        "phase: paired rounds of 1-3 and 7 took {:.1?}",
        phase.elapsed()
    );
    let phase = std::time::Instant::now();
    let mut children = if opts.run_children() {
        child::run_all(&opts)
    } else {
        child::Children::default()
    };
    children.off_env = off_env;
    eprintln!("phase: scenarios 4-5 took {:.1?}", phase.elapsed());
    let phase = std::time::Instant::now();
    micro::run_parked(&mut c, &opts);
    child::run_parked_pairs(&opts);
    eprintln!("phase: scenario 6 took {:.1?}", phase.elapsed());
    c.final_summary();
    if opts.profile {
        return;
    }

    let (table, notes) = summary::build(&summary::Sources {
        criterion_dir: &dir,
        since,
        children: &children,
        opts: &opts,
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mode = if opts.test {
        "test mode (every benchmark once; numbers are not measurements)"
    } else if opts.quick {
        "`--quick` (smoke run: few samples, noisy)"
    } else {
        "full"
    };
    let mut out = String::new();
    out.push_str("# taskprof cost (issue E)\n\n");
    out.push_str(&format!(
        "- run: {}, {mode}{}\n",
        utc_timestamp(since),
        opts.filter
            .as_ref()
            .map_or_else(String::new, |f| format!(", filter `{f}`"))
    ));
    out.push_str(&format!("- machine: {}\n", machine()));
    out.push_str(&format!(
        "- load average before / after: {load_before} / {}\n",
        loadavg()
    ));
    out.push_str(&format!(
        "- {}, tokio {}, criterion {}, taskprof at {}\n",
        env!("BENCH_RUSTC_VERSION"),
        env!("BENCH_VERSION_TOKIO"),
        env!("BENCH_VERSION_CRITERION"),
        revision(&root)
    ));
    out.push_str(
        "- reproduce: `cargo bench -p taskprof-bench` (full) or `cargo bench -p taskprof-bench -- \
         --quick`; sources in `bench/benches/cost/`\n\n",
    );
    out.push_str(
        "Medians (criterion for 1–3 and 6; child processes, median of runs, for 4–5). Ratios and \
         deltas are to plain tokio measured in the same run.\n\n",
    );
    out.push_str(&table.to_markdown());
    if !notes.is_empty() {
        out.push('\n');
        for n in &notes {
            out.push_str(&format!("{n}\n"));
        }
    }
    println!("\n{out}");
    // A partial run (test mode, a filter) prints its table but keeps the last full one.
    if !opts.test && opts.filter.is_none() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md");
        match std::fs::write(&path, &out) {
            Ok(()) => println!("(written to {})", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}
