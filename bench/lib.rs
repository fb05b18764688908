#![forbid(unsafe_code)]
//! Helpers of the `cost` benchmark of taskprof (issue E): statistics, process memory, criterion's
//! saved estimates, the machine description and the Markdown summary table.
//!
//! The scenarios themselves live in `benches/cost.rs` (they need the dev-dependencies: taskprof,
//! tokio, criterion and the peers). This library only uses `std`, so it is cheap to build and its
//! unit tests run with the workspace's tests. Run the benchmark with
//! `cargo bench -p taskprof-bench` (full, a few minutes) or `cargo bench -p taskprof-bench --
//! --quick` (smoke run, under a minute).

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

/// Median of `values` (sorts them); `None` when empty. The mean of the two middle values for an
/// even count.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Resident set size of this process in bytes, from `/proc/self/statm` (second field, in pages of
/// 4 KiB, the page size of the x86-64 and aarch64 Linux machines this runs on); `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    parse_statm_rss(&statm)
}

/// The resident size in bytes from the text of `/proc/<pid>/statm`.
pub fn parse_statm_rss(statm: &str) -> Option<u64> {
    const PAGE: u64 = 4096;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE)
}

/// The median point estimate, in nanoseconds, that criterion saved for `group/function` under
/// `criterion_dir` (`<dir>/<group>/<function>/new/estimates.json`), if that file was written at
/// or after `since` (so a benchmark skipped by a filter does not show a stale number).
pub fn criterion_median(
    criterion_dir: &Path,
    group: &str,
    function: &str,
    since: SystemTime,
) -> Option<f64> {
    let path = criterion_dir
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    parse_median_estimate(&std::fs::read_to_string(path).ok()?)
}

/// `median.point_estimate` from the text of a criterion `estimates.json`.
pub fn parse_median_estimate(json: &str) -> Option<f64> {
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\"")? + "\"point_estimate\"".len()..];
    let value = value.trim_start().strip_prefix(':')?.trim_start();
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

/// One line describing the machine: CPU model, logical cores, memory and kernel, from `/proc`.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown kernel".to_owned(), |k| k.trim().to_owned());
    format!("{model}, {cores} logical cores, {mem_gib:.0} GiB RAM, Linux {kernel}")
}

/// `time` as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// A duration in nanoseconds, with a unit that keeps 3 significant digits: `412 ns`, `1.23 µs`,
/// `14.2 ms`.
pub fn fmt_ns(ns: f64) -> String {
    let abs = ns.abs();
    if abs < 10.0 {
        format!("{ns:.2} ns")
    } else if abs < 1_000.0 {
        format!("{ns:.0} ns")
    } else if abs < 1_000_000.0 {
        format!("{:.3} µs", ns / 1e3)
    } else if abs < 1_000_000_000.0 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A signed delta in nanoseconds: `+3.1 ns`, `-0.4 ns`.
pub fn fmt_delta_ns(ns: f64) -> String {
    let sign = if ns < 0.0 { "-" } else { "+" };
    if ns.abs() < 100.0 {
        format!("{sign}{:.1} ns", ns.abs())
    } else {
        format!("{sign}{}", fmt_ns(ns.abs()))
    }
}

/// A byte count: `452 B`, `13.8 MB` (decimal units, as in the issue's table).
pub fn fmt_bytes(bytes: f64) -> String {
    let abs = bytes.abs();
    if abs < 10_000.0 {
        format!("{bytes:.0} B")
    } else if abs < 10_000_000.0 {
        format!("{:.1} KB", bytes / 1e3)
    } else if abs < 10_000_000_000.0 {
        format!("{:.1} MB", bytes / 1e6)
    } else {
        format!("{:.1} GB", bytes / 1e9)
    }
}

/// A signed byte delta: `+120 B`, `-3 B`.
pub fn fmt_delta_bytes(bytes: f64) -> String {
    let sign = if bytes < 0.0 { "-" } else { "+" };
    format!("{sign}{}", fmt_bytes(bytes.abs()))
}

/// A ratio: `1.08×`.
pub fn fmt_ratio(ratio: f64) -> String {
    format!("{ratio:.2}×")
}

/// Whether a measurement met its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the budget.
    Pass,
    /// Over the budget.
    Fail,
    /// Not measured in this run (filtered out, feature off, or a measurement missing).
    NotMeasured,
}

impl Verdict {
    /// `Pass` when `ok`, else `Fail`; `NotMeasured` for `None`.
    pub fn of(ok: Option<bool>) -> Self {
        match ok {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail,
            None => Verdict::NotMeasured,
        }
    }

    /// `PASS`, `FAIL` or `n/a`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "**FAIL**",
            Verdict::NotMeasured => "n/a",
        }
    }
}

/// A Markdown table: a header row and rows of already formatted cells.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are left empty, extra cells are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// GitHub-flavoured Markdown, one line per row; `|` in cells is escaped.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for c in cells {
                let _ = write!(out, " {} |", c.replace('|', "\\|"));
            }
            out.push('\n');
        };
        line(&mut out, &self.header);
        let rule: Vec<String> = self.header.iter().map(|_| "---".to_owned()).collect();
        line(&mut out, &rule);
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn statm_second_field_is_resident_pages() {
        assert_eq!(parse_statm_rss("1000 25 10 1 0 50 0\n"), Some(25 * 4096));
        assert_eq!(parse_statm_rss(""), None);
    }

    #[test]
    fn reads_criterion_median() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":370.1,"upper_bound":390.2},"point_estimate":381.25,"standard_error":2.5e-1},"median_abs_dev":null}"#;
        assert_eq!(parse_median_estimate(json), Some(381.25));
        assert_eq!(parse_median_estimate("{}"), None);
    }

    #[test]
    fn formats_units() {
        assert_eq!(fmt_ns(412.3), "412 ns");
        assert_eq!(fmt_ns(1234.0), "1.234 µs");
        assert_eq!(fmt_ns(14_200_000.0), "14.2 ms");
        assert_eq!(fmt_delta_ns(3.12), "+3.1 ns");
        assert_eq!(fmt_delta_ns(-0.44), "-0.4 ns");
        assert_eq!(fmt_bytes(452.0), "452 B");
        assert_eq!(fmt_bytes(13_800_000.0), "13.8 MB");
        assert_eq!(fmt_delta_bytes(-3.0), "-3 B");
        assert_eq!(fmt_ratio(1.084), "1.08×");
    }

    #[test]
    fn timestamps() {
        use std::time::Duration;
        let at = |s| utc_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(at(1_764_412_200), "2025-11-29 10:30 UTC");
    }

    #[test]
    fn markdown_table() {
        let mut t = Table::new(["a", "b"]);
        t.row(["1"]);
        t.row(["x|y", "2", "dropped"]);
        assert_eq!(
            t.to_markdown(),
            "| a | b |\n| --- | --- |\n| 1 |  |\n| x\\|y | 2 |\n"
        );
    }
}
