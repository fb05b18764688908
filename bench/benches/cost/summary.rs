#![forbid(unsafe_code)]
//! The one summary table: criterion's medians (read back from its `estimates.json`) and the
//! child processes' reports, with ratios or deltas to plain tokio and taskprof's budgets.

use std::path::Path;
use std::time::SystemTime;

use taskprof_bench::{
    Table, Verdict, criterion_median, fmt_bytes, fmt_delta_bytes, fmt_delta_ns, fmt_ns, fmt_ratio,
};

use crate::child::{Children, Report};
use crate::micro::{
    FRAMES_FLAT, FRAMES_YIELD, PARKED_CT, PARKED_MT, PLAIN_AGAIN, POLL, POLL_FRAME, SPAWN_CT,
    SPAWN_MT, TASKPROF_OFF, paired, parked_id,
};
use crate::tools::{CHAIN_DEPTH, TOOLS};

/// Where the results come from.
pub struct Sources<'a> {
    /// criterion's output directory.
    pub criterion_dir: &'a Path,
    /// Start of this run: older criterion results are ignored.
    pub since: SystemTime,
    /// The child processes' reports.
    pub children: &'a Children,
    /// Sizes used.
    pub opts: &'a crate::Opts,
}

impl Sources<'_> {
    fn est(&self, group: &str, id: &str) -> Option<f64> {
        criterion_median(self.criterion_dir, group, id, self.since)
    }
}

const NA: &str = "n/a";
const TASKPROF: usize = 1;

/// The table and the notes printed under it.
pub fn build(src: &Sources<'_>) -> (Table, Vec<String>) {
    let mut t = Table::new([
        "scenario".to_owned(),
        "unit".to_owned(),
        "plain tokio".to_owned(),
        "taskprof".to_owned(),
        format!("async-backtrace {}", env!("BENCH_VERSION_ASYNC_BACKTRACE")),
        format!("await-tree {}", env!("BENCH_VERSION_AWAIT_TREE")),
        format!("tokio-metrics {}", env!("BENCH_VERSION_TOKIO_METRICS")),
        "taskprof budget".to_owned(),
        "verdict".to_owned(),
    ]);
    let mut notes = Vec::new();

    ratio_row(
        &mut t,
        src,
        SPAWN_CT,
        "1. spawn+join of a trivial task, current_thread",
    );
    ratio_row(
        &mut t,
        src,
        SPAWN_MT,
        "1. spawn+join of a trivial task, multi_thread (2 workers)",
    );
    ratio_row_with(
        &mut t,
        src,
        POLL,
        "2. poll of a task yielding in a loop (body not instrumented)",
        "per yield",
        1.05,
    );
    poll_frame_row(&mut t, src);
    frame_rows(&mut t, src);
    memory_row(&mut t, src);
    dump_rows(&mut t, src);
    parked_rows(&mut t, src);
    off_rows(&mut t, src);

    notes.push(format!(
        "Verdicts of rows 1–3 and 7 use the paired comparison: plain tokio and the tool \
             alternated in short rounds, in {} per row, each reporting the \
             median of its rounds' ratios or deltas; the verdict takes the median over the \
             processes. It holds up better than the ratio of two criterion medians taken seconds \
             apart on a loaded machine, and better than one process's rounds: each process \
             places the same code differently (its stack and heap), which moves its readings by \
             a few percent in every round. Row 6's verdict: {} per tool, each \
             timing spawn+join with nothing parked, then parking the tasks once and timing it \
             again (median over the processes of the ratio).",
        processes(src.opts.paired_children),
        processes(src.opts.parked_pair_children)
    ));
    let again: Vec<String> = [
        (SPAWN_CT, "spawn ct"),
        (SPAWN_MT, "spawn mt"),
        (POLL, "poll"),
    ]
    .into_iter()
    .filter_map(|(g, name)| {
        let r = src.est(g, PLAIN_AGAIN)? / src.est(g, "plain")?;
        Some(format!("{name} {}", fmt_ratio(r)))
    })
    .collect();
    if !again.is_empty() {
        notes.push(format!(
            "Noise check (plain tokio measured again at the end of its group, ratio to the first \
             measurement): {}.",
            again.join(", ")
        ));
    }
    let sizes: Vec<String> = TOOLS
        .iter()
        .filter_map(|tool| {
            let b = report_value(src, tool, "future_bytes")?;
            Some(format!("{tool} {}", fmt_bytes(b)))
        })
        .collect();
    if !sizes.is_empty() {
        notes.push(format!(
            "Size of the future handed to tokio for a parked task of row 4 (allocated inline in \
             tokio's task; the rest of the RSS delta is the tool's heap): {}.",
            sizes.join(", ")
        ));
    }
    if !src.children.scaling.is_empty() {
        let reused = src
            .children
            .scaling
            .iter()
            .filter_map(|(n, r)| {
                let per = r.get("per_task_reused_ns")? / *n as f64;
                Some(format!("{}: {}", count(*n), fmt_ns(per)))
            })
            .collect::<Vec<_>>()
            .join(" · ");
        notes.push(format!(
            "Every dump of row 5 is timed with the CPU's caches emptied first (a buffer of twice \
             the last-level cache written), as a profile request finds a busy service's. The \
             scaling rows come from {} that each park the tasks up to every \
             size in turn and time the texts at each; the cells give the median per size, the \
             steps the median over the processes of each one's ratio from one size to the next \
             (a process reads as a whole faster or slower than another; its steps do not). The \
             per-task text's row writes the text to a byte counter: the work of producing it. \
             Into one reused `String` it took {reused} per task. `format!` into a fresh `String` \
             (the 100k row above) also page-faults all of it whenever it is over glibc's \
             largest mmap threshold, 32 MiB.",
            processes(src.opts.scaling_children)
        ));
    }
    if let Some(r) = src.children.parked.get("taskprof")
        && let (Some(seen), Some(n)) = (r.get("seen"), r.get("n"))
        && seen < n
    {
        notes.push(format!(
            "Warning: taskprof's snapshot saw {seen} of {n} parked tasks."
        ));
    }
    (t, notes)
}

fn cell_time_ratio(v: Option<f64>, plain: Option<f64>) -> String {
    match (v, plain) {
        (Some(v), Some(p)) => format!("{} ({})", fmt_ns(v), fmt_ratio(v / p)),
        (Some(v), None) => fmt_ns(v),
        _ => NA.to_owned(),
    }
}

fn ratio_row(t: &mut Table, src: &Sources<'_>, group: &str, label: &str) {
    ratio_row_with(t, src, group, label, "per task", 1.15);
}

fn ratio_row_with(
    t: &mut Table,
    src: &Sources<'_>,
    group: &str,
    label: &str,
    unit: &str,
    budget: f64,
) {
    let plain = src.est(group, "plain");
    let mut cells = vec![
        label.to_owned(),
        unit.to_owned(),
        plain.map_or_else(|| NA.to_owned(), fmt_ns),
    ];
    for tool in &TOOLS[1..] {
        cells.push(cell_time_ratio(src.est(group, tool), plain));
    }
    cells.push(format!("≤ {}", fmt_ratio(budget)));
    cells.push(ratio_verdict(src, group, TOOLS[TASKPROF], budget));
    t.row(cells);
}

/// Row 2 with the yield inside one instrumented fn: a frame that suspends on every poll, so it
/// has the budget the issue gives a suspending frame (row 3): async-backtrace's cost, measured in
/// the same run. (A tracked task's own poll has the ≤ 1.05× budget: the row above.)
fn poll_frame_row(t: &mut Table, src: &Sources<'_>) {
    let plain = src.est(POLL_FRAME, "plain");
    let mut cells = vec![
        "2. poll of a task yielding inside one instrumented fn (await recorded/spanned where the \
         tool can)"
            .to_owned(),
        "per yield".to_owned(),
        plain.map_or_else(|| NA.to_owned(), fmt_ns),
    ];
    for tool in &TOOLS[1..] {
        cells.push(cell_time_ratio(src.est(POLL_FRAME, tool), plain));
    }
    let ratio = |id: &str| -> Option<(f64, bool)> {
        match paired(POLL_FRAME, id) {
            Some(p) => Some((p.ratio, true)),
            None => Some((src.est(POLL_FRAME, id)? / plain?, false)),
        }
    };
    let (ours, ab) = (ratio(TOOLS[TASKPROF]), ratio("async-backtrace"));
    cells.push(format!(
        "{}, as a suspending frame (row 3)",
        peer_budget(ab, fmt_ratio)
    ));
    cells.push(match (ours, ab) {
        (Some((r, true)), Some((ab, _))) => format!(
            "{} (paired {})",
            Verdict::of(Some(r <= ab)).as_str(),
            fmt_ratio(r)
        ),
        (Some((r, false)), Some((ab, _))) => Verdict::of(Some(r <= ab)).as_str().to_owned(),
        _ => Verdict::NotMeasured.as_str().to_owned(),
    });
    t.row(cells);
}

/// The budget cell "≤ async-backtrace's (its figure, paired)" for async-backtrace's figure
/// `ab` (and whether it is the paired one).
fn peer_budget(ab: Option<(f64, bool)>, fmt: fn(f64) -> String) -> String {
    format!(
        "≤ async-backtrace's ({}{})",
        ab.map_or_else(|| NA.to_owned(), |(v, _)| fmt(v)),
        if ab.is_some_and(|(_, p)| p) {
            ", paired"
        } else {
            ""
        }
    )
}

/// The verdict on `id`'s ratio to plain in `group`: from the paired comparison when there is one
/// (shown), else from the criterion medians.
fn ratio_verdict(src: &Sources<'_>, group: &str, id: &str, budget: f64) -> String {
    match paired(group, id) {
        Some(p) => format!(
            "{} (paired {})",
            Verdict::of(Some(p.ratio <= budget)).as_str(),
            fmt_ratio(p.ratio)
        ),
        None => {
            let ratio = src
                .est(group, id)
                .zip(src.est(group, "plain"))
                .map(|(v, p)| v / p);
            Verdict::of(ratio.map(|r| r <= budget)).as_str().to_owned()
        }
    }
}

/// Per-frame delta for the verdict: paired when measured, else from the criterion medians; and
/// whether it is the paired one.
fn frame_delta_for_verdict(src: &Sources<'_>, group: &str, id: &str) -> Option<(f64, bool)> {
    match paired(group, id) {
        Some(p) => Some((p.delta_ns / CHAIN_DEPTH as f64, true)),
        None => frame_delta(src, group, id).map(|d| (d, false)),
    }
}

fn delta_verdict(ours: Option<(f64, bool)>, ok: impl FnOnce(f64) -> bool) -> String {
    match ours {
        Some((d, true)) => format!(
            "{} (paired {})",
            Verdict::of(Some(ok(d))).as_str(),
            fmt_delta_ns(d)
        ),
        Some((d, false)) => Verdict::of(Some(ok(d))).as_str().to_owned(),
        None => Verdict::NotMeasured.as_str().to_owned(),
    }
}

/// Per-frame delta of `tool`'s chain over the plain chain, in ns.
fn frame_delta(src: &Sources<'_>, group: &str, tool: &str) -> Option<f64> {
    Some((src.est(group, tool)? - src.est(group, "plain")?) / CHAIN_DEPTH as f64)
}

fn frame_rows(t: &mut Table, src: &Sources<'_>) {
    let rows = [
        (
            FRAMES_FLAT,
            "3. nested instrumented async fn frame, completing without suspending (8-deep chain)",
        ),
        (
            FRAMES_YIELD,
            "3. nested instrumented async fn frame, one `yield_now().await` per frame (8-deep chain)",
        ),
    ];
    for (group, label) in rows {
        let plain = src.est(group, "plain");
        let mut cells = vec![
            label.to_owned(),
            "per frame, delta vs unannotated".to_owned(),
            plain.map_or_else(
                || NA.to_owned(),
                |p| format!("{} per 8-frame call", fmt_ns(p)),
            ),
        ];
        for tool in &TOOLS[1..] {
            cells.push(frame_delta(src, group, tool).map_or_else(|| NA.to_owned(), fmt_delta_ns));
        }
        let ours = frame_delta_for_verdict(src, group, TOOLS[TASKPROF]);
        if group == FRAMES_FLAT {
            cells.push("≤ +6 ns".to_owned());
            cells.push(delta_verdict(ours, |d| d <= 6.0));
        } else {
            let ab = frame_delta_for_verdict(src, group, "async-backtrace");
            cells.push(peer_budget(ab, fmt_delta_ns));
            match ab {
                Some((ab, _)) => cells.push(delta_verdict(ours, |d| d <= ab)),
                None => cells.push(Verdict::NotMeasured.as_str().to_owned()),
            }
        }
        t.row(cells);
    }
}

fn report_value(src: &Sources<'_>, tool: &str, key: &str) -> Option<f64> {
    src.children.parked.get(tool)?.get(key).copied()
}

fn memory_row(t: &mut Table, src: &Sources<'_>) {
    let plain = report_value(src, "plain", "rss_per_task");
    let mut cells = vec![
        format!(
            "4. memory per parked task, two frames deep ({} tasks, RSS)",
            count(src.opts.parked_tasks)
        ),
        "per task, delta vs plain".to_owned(),
        plain.map_or_else(|| NA.to_owned(), fmt_bytes),
    ];
    let delta = |tool: &str| Some(report_value(src, tool, "rss_per_task")? - plain?);
    for tool in &TOOLS[1..] {
        cells.push(delta(tool).map_or_else(|| NA.to_owned(), fmt_delta_bytes));
    }
    cells.push("≤ +128 B".to_owned());
    cells.push(
        Verdict::of(delta(TOOLS[TASKPROF]).map(|d| d <= 128.0))
            .as_str()
            .to_owned(),
    );
    t.row(cells);
}

fn dump_cell(r: Option<&Report>, name: &str) -> String {
    let Some(r) = r else {
        return NA.to_owned();
    };
    match (
        r.get(&format!("{name}_ns")),
        r.get(&format!("{name}_bytes")),
    ) {
        (Some(ns), Some(bytes)) => format!("{} ({})", fmt_ns(*ns), fmt_bytes(*bytes)),
        _ => NA.to_owned(),
    }
}

fn dump_rows(t: &mut Table, src: &Sources<'_>) {
    let n = count(src.opts.parked_tasks);
    let get = |tool: &str| src.children.parked.get(tool);
    let ms = |tool: &str, name: &str| report_value(src, tool, &format!("{name}_ns"));
    let grouped = ms("taskprof", "grouped");
    t.row([
        format!("5. grouped profile of {n} parked tasks (`snapshot()` + `to_string()`)"),
        "time (text size)".to_owned(),
        "–".to_owned(),
        dump_cell(get("taskprof"), "grouped"),
        "no grouped view".to_owned(),
        "no grouped view".to_owned(),
        "counts only".to_owned(),
        "≤ 20 ms".to_owned(),
        Verdict::of(grouped.map(|v| v <= 20e6)).as_str().to_owned(),
    ]);
    let per_task = ms("taskprof", "per_task");
    t.row([
        format!(
            "5. full per-task dump of {n} parked tasks (taskprof `{{:#}}`, `taskdump_tree(true)`, \
             await-tree registry)"
        ),
        "time (text size)".to_owned(),
        "–".to_owned(),
        dump_cell(get("taskprof"), "per_task"),
        dump_cell(get("async-backtrace"), "per_task"),
        dump_cell(get("await-tree"), "per_task"),
        "counts only".to_owned(),
        "≤ 60 ms".to_owned(),
        Verdict::of(per_task.map(|v| v <= 60e6)).as_str().to_owned(),
    ]);
    for (name, label) in [
        ("grouped", "grouped profile"),
        (
            "per_task_counted",
            "per-task text (written to a byte counter)",
        ),
    ] {
        let points: Vec<(u64, f64)> = src
            .children
            .scaling
            .iter()
            .filter_map(|(n, r)| Some((*n, r.get(&format!("{name}_ns"))? / *n as f64)))
            .collect();
        let text = points
            .iter()
            .map(|(n, per)| format!("{}: {}", count(*n), fmt_ns(*per)))
            .collect::<Vec<_>>()
            .join(" · ");
        // Each child measured every size and the steps between them; the verdict takes the
        // median step over the children (see `child::run_all`).
        let steps: Vec<f64> = src
            .children
            .scaling
            .iter()
            .skip(1)
            .filter_map(|(_, r)| r.get(&format!("{name}_step")).copied())
            .collect();
        let linear = (points.len() >= 2 && steps.len() + 1 == points.len())
            .then(|| steps.iter().all(|&s| s <= 1.3));
        let text = if steps.is_empty() {
            text
        } else {
            let steps: Vec<String> = steps.iter().map(|&s| fmt_ratio(s)).collect();
            format!("{text} (steps {})", steps.join(", "))
        };
        t.row([
            format!("5. taskprof {label}, scaling with the number of parked tasks"),
            "time per task".to_owned(),
            "–".to_owned(),
            if text.is_empty() { NA.to_owned() } else { text },
            "–".to_owned(),
            "–".to_owned(),
            "–".to_owned(),
            "linear: per-task cost ≤ 1.3× the previous size's (median step)".to_owned(),
            Verdict::of(linear).as_str().to_owned(),
        ]);
    }
}

fn parked_rows(t: &mut Table, src: &Sources<'_>) {
    let n = count(src.opts.spawn_parked_tasks);
    for (group, flavor) in [(PARKED_CT, "current_thread"), (PARKED_MT, "multi_thread")] {
        let pair = |tool: &str| {
            let none = src.est(group, &parked_id(tool, false));
            let parked = src.est(group, &parked_id(tool, true));
            let text = match (none, parked) {
                (Some(a), Some(b)) => {
                    format!("{} → {} ({})", fmt_ns(a), fmt_ns(b), fmt_ratio(b / a))
                }
                _ => NA.to_owned(),
            };
            (text, none.zip(parked).map(|(a, b)| b / a))
        };
        let (plain, _) = pair("plain");
        let (ours, ratio) = pair("taskprof");
        // The children's ratios (with vs none, in one process each), when run, decide.
        let verdict = match paired(group, "taskprof") {
            Some(p) => format!(
                "{} (paired {}; plain tokio {})",
                Verdict::of(Some(p.ratio <= 1.10)).as_str(),
                fmt_ratio(p.ratio),
                paired(group, "plain").map_or_else(|| NA.to_owned(), |p| fmt_ratio(p.ratio)),
            ),
            None => Verdict::of(ratio.map(|r| r <= 1.10)).as_str().to_owned(),
        };
        t.row([
            format!("6. spawn+join with {n} parked tasks of the same kind vs none, {flavor}"),
            "per task, none → parked".to_owned(),
            plain,
            ours,
            "–".to_owned(),
            "–".to_owned(),
            "–".to_owned(),
            "≤ 1.10× its cost with none".to_owned(),
            verdict,
        ]);
    }
}

fn off_rows(t: &mut Table, src: &Sources<'_>) {
    let mut row = |label: &str, value: Option<String>, budget: &str, verdict: String| {
        t.row([
            format!("7. switched off: {label}"),
            String::new(),
            String::new(),
            value.unwrap_or_else(|| NA.to_owned()),
            "–".to_owned(),
            "–".to_owned(),
            "–".to_owned(),
            budget.to_owned(),
            verdict,
        ]);
    };
    for (group, flavor) in [(SPAWN_CT, "current_thread"), (SPAWN_MT, "multi_thread")] {
        let plain = src.est(group, "plain");
        let off = src.est(group, TASKPROF_OFF);
        row(
            &format!("`set_enabled(false)`, spawn+join, {flavor}"),
            off.map(|o| cell_time_ratio(Some(o), plain)),
            "≤ 1.02× plain",
            ratio_verdict(src, group, TASKPROF_OFF, 1.02),
        );
    }
    row(
        "`set_enabled(false)`, `#[track]` frame (no suspension)",
        frame_delta(src, FRAMES_FLAT, TASKPROF_OFF).map(fmt_delta_ns),
        "≤ +1 ns per frame",
        delta_verdict(
            frame_delta_for_verdict(src, FRAMES_FLAT, TASKPROF_OFF),
            |d| d <= 1.0,
        ),
    );
    // The child alternates plain tokio and taskprof in rounds: verdicts use the paired figures.
    let env = src.children.off_env.as_ref();
    let ratio = env.and_then(|r| r.get("spawn_ratio_paired").copied());
    row(
        "`TASKPROF=off`, spawn+join, current_thread",
        env.map(|r| {
            cell_time_ratio(
                r.get("spawn_taskprof_ns").copied(),
                r.get("spawn_plain_ns").copied(),
            )
        }),
        "≤ 1.02× plain",
        match ratio {
            Some(r) => format!(
                "{} (paired {})",
                Verdict::of(Some(r <= 1.02)).as_str(),
                fmt_ratio(r)
            ),
            None => Verdict::NotMeasured.as_str().to_owned(),
        },
    );
    let delta = env.and_then(|r| {
        Some((r.get("chain_taskprof_ns")? - r.get("chain_plain_ns")?) / CHAIN_DEPTH as f64)
    });
    let paired_delta = env
        .and_then(|r| r.get("chain_delta_paired_ns"))
        .map(|d| d / CHAIN_DEPTH as f64);
    row(
        "`TASKPROF=off`, `#[track]` frame (no suspension)",
        delta.map(fmt_delta_ns),
        "≤ +1 ns per frame",
        delta_verdict(paired_delta.map(|d| (d, true)), |d| d <= 1.0),
    );
}

/// `1 child process`, `7 child processes`.
fn processes(n: usize) -> String {
    if n == 1 {
        "1 child process".to_owned()
    } else {
        format!("{n} child processes")
    }
}

/// `10k`, `100k`, `1M`.
pub fn count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}
