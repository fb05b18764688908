//! `GET /debug/tasks/metrics`: Prometheus text exposition (format 0.0.4).

use std::collections::HashMap;
use std::fmt::Write;

use crate::Snapshot;

/// `taskprof_tasks{site,name}` per spawn site and task name (the `max_series` largest; the rest
/// summed into `site="other",name="other"`), `taskprof_tasks_total`, and the spawn and
/// completion counters.
pub(crate) fn render(snap: &Snapshot, spawned: u64, completed: u64, max_series: usize) -> String {
    let mut series: HashMap<(String, &str), u64> = HashMap::new();
    for t in snap.tasks() {
        *series
            .entry((super::site_text(t.spawn_site()), t.name()))
            .or_default() += 1;
    }
    let mut series: Vec<((String, &str), u64)> = series.into_iter().collect();
    series.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let other: u64 = series.iter().skip(max_series).map(|(_, n)| n).sum();
    let dropped = series.len().saturating_sub(max_series);
    series.truncate(max_series);

    let mut out = String::new();
    out.push_str(
        "# HELP taskprof_tasks Live tracked tasks by spawn site and task name; \
         beyond the largest series the rest are summed into site=\"other\".\n\
         # TYPE taskprof_tasks gauge\n",
    );
    for ((site, name), n) in &series {
        let _ = writeln!(
            out,
            "taskprof_tasks{{site=\"{}\",name=\"{}\"}} {n}",
            Escaped(site),
            Escaped(name)
        );
    }
    if dropped > 0 {
        let _ = writeln!(
            out,
            "taskprof_tasks{{site=\"other\",name=\"other\"}} {other}"
        );
    }
    let _ = write!(
        out,
        "# HELP taskprof_tasks_total Live tracked tasks.\n\
         # TYPE taskprof_tasks_total gauge\n\
         taskprof_tasks_total {}\n\
         # HELP taskprof_spawned_total Tracked tasks started since the process started.\n\
         # TYPE taskprof_spawned_total counter\n\
         taskprof_spawned_total {spawned}\n\
         # HELP taskprof_completed_total Tracked tasks ended (completed, panicked, aborted or dropped) since the process started.\n\
         # TYPE taskprof_completed_total counter\n\
         taskprof_completed_total {completed}\n",
        snap.total()
    );
    out
}

/// A Prometheus label value: `\`, `"` and newline escaped, as the text format requires.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn label_values_escape_backslash_quote_newline() {
        assert_eq!(
            Escaped("a\\b\"c\nd}").to_string(),
            "a\\\\b\\\"c\\nd}".to_string()
        );
    }
}
