//! The text profiles: grouped (Go's `debug=1`), per task (`debug=2`) and diffs.

use std::fmt::{self, Display, Formatter, Write};
use std::panic::Location;
use std::time::Duration;

use crate::snapshot::{Diff, Frame, Key, Snapshot, TaskInfo};

/// `{snapshot}` prints the grouped profile, `{snapshot:#}` one block per task.
///
/// Grouped (Go's `debug=1`):
/// ```text
/// task profile: total 31
/// 30 @ examples/leaky_health.rs:120:9
/// #	leaky_health::Registry::check	examples/leaky_health.rs:61:14	await self.client.get(&url).send()
/// #	leaky_health::health	examples/leaky_health.rs:120:40	await registry.check()
///
/// ```
/// Per task (`debug=2`):
/// ```text
/// task 17 [idle, 12.3s]:
/// #	leaky_health::Registry::check	examples/leaky_health.rs:61:14	await self.client.get(&url).send()
/// name: leaky_health::health::{{closure}}
/// spawned at examples/leaky_health.rs:120:9 by task 3
///
/// ```
// The profile's frame lines start with a tab, as Go's do.
#[allow(clippy::tabs_in_doc_comments)]
impl Display for Snapshot {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "task profile: total {}", self.total())?;
        if f.alternate() {
            for task in self.tasks() {
                writeln!(f, "{task}")?;
            }
        } else {
            for g in self.groups() {
                write_group(f, &g.count().to_string(), g.key(), None)?;
            }
        }
        Ok(())
    }
}

/// `task profile diff: total +N`, then `+COUNT @ SITE` / `-COUNT @ SITE` groups.
impl Display for Diff {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "task profile diff: total {:+}", self.total())?;
        for g in self.groups() {
            write_group(f, &format!("{:+}", g.delta()), g.key(), None)?;
        }
        Ok(())
    }
}

/// `COUNT @ SITE[ # age AGE][ # lost waker][ # labels: {..}]`, the frames, a blank line.
pub(crate) fn write_group(
    f: &mut impl Write,
    count: &str,
    key: &Key,
    age: Option<Duration>,
) -> fmt::Result {
    write!(f, "{count} @ ")?;
    write_site(f, key.site)?;
    if let Some(age) = age {
        write!(f, " # age {}", Age(age))?;
    }
    if key.lost {
        f.write_str(" # lost waker")?;
    }
    if !key.labels.is_empty() {
        write!(f, " # labels: {}", key.labels)?;
    }
    f.write_char('\n')?;
    for frame in key.stack.iter() {
        write_frame(f, frame)?;
    }
    f.write_char('\n')
}

fn write_site(f: &mut impl Write, site: Option<&Location<'_>>) -> fmt::Result {
    match site {
        Some(l) => write!(f, "{}:{}:{}", l.file(), l.line(), l.column()),
        None => f.write_str("<unknown>"),
    }
}

pub(crate) fn write_frame(f: &mut impl Write, frame: &Frame) -> fmt::Result {
    if let Some(h) = frame.http() {
        return writeln!(
            f,
            "#\t{} ({}, {})\t{}:{}:{}",
            h.label(),
            h.timeout(),
            Age(h.elapsed()),
            frame.file(),
            frame.line(),
            frame.column()
        );
    }
    write!(
        f,
        "#\t{}\t{}:{}:{}",
        frame.label(),
        frame.file(),
        frame.line(),
        frame.column()
    )?;
    if let Some(text) = frame.awaiting() {
        write!(f, "\tawait {text}")?;
    }
    f.write_char('\n')
}

/// One task's block of the per-task profile (Go's `debug=2`), without the trailing blank line.
impl Display for TaskInfo {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_task(f, self)
    }
}

fn write_task(f: &mut impl Write, task: &TaskInfo) -> fmt::Result {
    let state = if task.lost_waker() {
        "lost waker"
    } else {
        task.state().as_str()
    };
    writeln!(f, "task {} [{}, {}]:", task.id(), state, Age(task.age()))?;
    for frame in task.stack() {
        write_frame(f, frame)?;
    }
    writeln!(
        f,
        "name: {}, polls: {}",
        task.name().escape_debug(),
        task.polls()
    )?;
    if !task.labels().is_empty() {
        writeln!(f, "labels: {}", task.labels())?;
    }
    f.write_str("spawned at ")?;
    write_site(f, task.spawn_site())?;
    if let Some(parent) = task.parent() {
        write!(f, " by task {parent}")?;
    }
    f.write_char('\n')
}

/// Human-readable age: `850ms`, `12.3s`, `5m12s`, `2h05m`.
pub(crate) struct Age(pub(crate) Duration);

impl Display for Age {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if secs < 1 {
            write!(f, "{}ms", d.as_millis())
        } else if secs < 60 {
            write!(f, "{:.1}s", d.as_secs_f64())
        } else if secs < 3600 {
            write!(f, "{}m{:02}s", secs / 60, secs % 60)
        } else {
            write!(f, "{}h{:02}m", secs / 3600, (secs % 3600) / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Age;
    use std::time::Duration;

    #[test]
    fn ages_read_like_go() {
        let age = |ms| Age(Duration::from_millis(ms)).to_string();
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_345), "12.3s");
        assert_eq!(age(312_000), "5m12s");
        assert_eq!(age(7_500_000), "2h05m");
    }
}
