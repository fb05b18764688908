//! The text profiles: grouped (Go's `debug=1`), per task (`debug=2`) and diffs.

use std::collections::HashMap;
use std::fmt::{self, Display, Formatter, Write};
use std::ops::Range;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxBuildHasher;

use crate::labels::Labels;
use crate::snapshot::{Diff, Frame, Key, Snapshot, State, TaskInfo};

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
            write_tasks(f, self.tasks())?;
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

/// The per-task profile, each block followed by a blank line: the same text as writing every
/// task with [`write_task`], built for 100k+ tasks. What tasks share (stacks, names, labels,
/// spawn sites) is rendered once and copied; per task only the numbers are formatted, by hand.
fn write_tasks(f: &mut Formatter<'_>, tasks: &[TaskInfo]) -> fmt::Result {
    // Written to `f` in chunks: fewer calls through `dyn Write` than one per piece, and no
    // second copy of the whole text.
    const CHUNK: usize = 64 * 1024;
    let mut out = String::with_capacity(CHUNK + 4096);
    let mut texts = Texts::default();
    for task in tasks {
        let k = texts.of(task)?;
        out.push_str("task ");
        push_u64(&mut out, task.id());
        out.push_str(k.head);
        push_age(&mut out, task.age());
        out.push_str(&texts.arena[k.mid.clone()]);
        push_u64(&mut out, task.polls());
        out.push_str(&texts.arena[k.tail.clone()]);
        if let Some(parent) = task.parent() {
            push_u64(&mut out, parent);
            out.push_str("\n\n");
        }
        if out.len() >= CHUNK {
            f.write_str(&out)?;
            out.clear();
        }
    }
    f.write_str(&out)
}

/// The text of a kind of tasks ([`TaskInfo::kind`]) around their numbers.
#[derive(Clone)]
struct KindText {
    /// ` [STATE, `, before the age.
    head: &'static str,
    /// From `]:` to `polls: `, in the arena.
    mid: Range<usize>,
    /// The rest of the block, up to ` by task ` when there is a parent, in the arena.
    tail: Range<usize>,
}

/// Texts shared between tasks, rendered once into `arena`. Kinds are memoized by address, and
/// their parts by what they are made of: tasks of many kinds (say, each with a parent of its
/// own) still share the text of their stack, name, labels and spawn site.
#[derive(Default)]
struct Texts<'a> {
    arena: String,
    /// The last kind met, which the next task very often repeats.
    last: Option<(usize, KindText)>,
    kinds: HashMap<usize, KindText, FxBuildHasher>,
    /// `mid` by stack address and name.
    mids: HashMap<(usize, &'a str), Range<usize>, FxBuildHasher>,
    /// `tail` by labels address, spawn site address and whether there is a parent.
    tails: HashMap<(usize, usize, bool), Range<usize>, FxBuildHasher>,
    /// Rendered stacks, by address (interned: kinds share them).
    stacks: String,
    stack_ranges: HashMap<usize, Range<usize>, FxBuildHasher>,
}

impl<'a> Texts<'a> {
    fn of(&mut self, task: &'a TaskInfo) -> Result<KindText, fmt::Error> {
        let key = Arc::as_ptr(task.kind()) as usize;
        if let Some((k, t)) = &self.last
            && *k == key
        {
            return Ok(t.clone());
        }
        let t = match self.kinds.get(&key) {
            Some(t) => t.clone(),
            None => {
                let t = self.render(task)?;
                self.kinds.insert(key, t.clone());
                t
            }
        };
        self.last = Some((key, t.clone()));
        Ok(t)
    }

    /// Renders the kind of `task`: the text of [`write_task`] around its numbers.
    fn render(&mut self, task: &'a TaskInfo) -> Result<KindText, fmt::Error> {
        let head = if task.lost_waker() {
            " [lost waker, "
        } else {
            match task.state() {
                State::Idle => " [idle, ",
                State::Running => " [running, ",
            }
        };
        let stack = task.stack();
        let stack_key = stack.as_ptr() as usize;
        let mid = match self.mids.get(&(stack_key, task.name())) {
            Some(r) => r.clone(),
            None => {
                let stack = match self.stack_ranges.get(&stack_key) {
                    Some(r) => r.clone(),
                    None => {
                        let start = self.stacks.len();
                        for frame in stack {
                            write_frame(&mut self.stacks, frame)?;
                        }
                        let r = start..self.stacks.len();
                        self.stack_ranges.insert(stack_key, r.clone());
                        r
                    }
                };
                let t = &mut self.arena;
                let start = t.len();
                t.push_str("]:\n");
                t.push_str(&self.stacks[stack]);
                t.push_str("name: ");
                push_escaped(t, task.name())?;
                t.push_str(", polls: ");
                let r = start..t.len();
                self.mids.insert((stack_key, task.name()), r.clone());
                r
            }
        };
        let labels = task.labels();
        let site = task.spawn_site();
        let tail_key = (
            labels as *const Labels as usize,
            site.map_or(0, |l| l as *const Location<'_> as usize),
            task.parent().is_some(),
        );
        let tail = match self.tails.get(&tail_key) {
            Some(r) => r.clone(),
            None => {
                let t = &mut self.arena;
                let start = t.len();
                t.push('\n');
                if !labels.is_empty() {
                    writeln!(t, "labels: {labels}")?;
                }
                t.push_str("spawned at ");
                write_site(t, site)?;
                t.push_str(if tail_key.2 { " by task " } else { "\n\n" });
                let r = start..t.len();
                self.tails.insert(tail_key, r.clone());
                r
            }
        };
        Ok(KindText { head, mid, tail })
    }
}

/// Appends `n` in decimal, as `{}` would.
fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `name` as `{}` of `name.escape_debug()` would, copying it as is when nothing needs
/// escaping (printable ASCII without quotes or backslashes, as most names are).
fn push_escaped(out: &mut String, name: &str) -> fmt::Result {
    if name
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && !matches!(b, b'"' | b'\'' | b'\\'))
    {
        out.push_str(name);
        Ok(())
    } else {
        write!(out, "{}", name.escape_debug())
    }
}

/// Appends [`Age`]'s text without float formatting.
fn push_age(out: &mut String, d: Duration) {
    const NANOS_PER_TENTH: u128 = 100_000_000;
    let secs = d.as_secs();
    if secs < 1 {
        push_u64(out, d.subsec_millis().into());
        out.push_str("ms");
    } else if secs < 60 {
        let nanos = d.as_nanos();
        // `{:.1}` rounds the exact value of `as_secs_f64()`, which lies within far less than a
        // nanosecond of `nanos`: rounding the integer agrees except exactly halfway, where the
        // float's representation error decides.
        if nanos % NANOS_PER_TENTH == NANOS_PER_TENTH / 2 {
            let _ = write!(out, "{}", Age(d));
            return;
        }
        let tenths = ((nanos + NANOS_PER_TENTH / 2) / NANOS_PER_TENTH) as u64;
        push_u64(out, tenths / 10);
        out.push('.');
        push_u64(out, tenths % 10);
        out.push('s');
    } else if secs < 3600 {
        push_u64(out, secs / 60);
        out.push('m');
        push_2digits(out, secs % 60);
        out.push('s');
    } else {
        push_u64(out, secs / 3600);
        out.push('h');
        push_2digits(out, (secs % 3600) / 60);
        out.push('m');
    }
}

/// `{:02}` of a number below 100.
fn push_2digits(out: &mut String, n: u64) {
    if n < 10 {
        out.push('0');
    }
    push_u64(out, n);
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
    use super::{Age, push_age, push_escaped, push_u64};
    use std::time::Duration;

    #[test]
    fn fast_formatting_matches_fmt() {
        let mut next = crate::snapshot::tests::xorshift();
        let mut ages: Vec<Duration> = (0..200_000)
            .map(|i| {
                let r = next();
                let max = [
                    1_000_000_000u64,
                    60_000_000_000,
                    3_600_000_000_000,
                    u64::MAX,
                ][i % 4];
                Duration::from_nanos(r % max)
            })
            .collect();
        // Exact halves and their neighbours, where rounding is decided.
        for tenths in 10..600u64 {
            for delta in [-1i64, 0, 1] {
                let nanos = tenths * 100_000_000 + 50_000_000;
                ages.push(Duration::from_nanos(nanos.saturating_add_signed(delta)));
            }
        }
        ages.extend([
            Duration::ZERO,
            Duration::MAX,
            Duration::from_secs(59) + Duration::from_millis(960),
        ]);
        for age in ages {
            let mut fast = String::new();
            push_age(&mut fast, age);
            assert_eq!(fast, Age(age).to_string(), "{age:?}");
        }
        for n in [0, 1, 9, 10, 99, 100, 12345, u64::MAX, next()] {
            let mut fast = String::new();
            push_u64(&mut fast, n);
            assert_eq!(fast, n.to_string());
        }
        for name in [
            "app::run",
            "a b",
            "q\"uote",
            "it's",
            "back\\slash",
            "tab\t",
            "é",
            "\u{301}x",
            "",
        ] {
            let mut fast = String::new();
            push_escaped(&mut fast, name).unwrap();
            assert_eq!(fast, name.escape_debug().to_string());
        }
    }

    #[test]
    fn ages_read_like_go() {
        let age = |ms| Age(Duration::from_millis(ms)).to_string();
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_345), "12.3s");
        assert_eq!(age(312_000), "5m12s");
        assert_eq!(age(7_500_000), "2h05m");
    }
}
