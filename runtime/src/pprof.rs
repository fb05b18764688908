//! pprof export (feature `pprof`): [`Snapshot::to_pprof`] and [`Diff::to_pprof`] write the gzipped
//! `profile.proto` that `go tool pprof` reads, shaped like Go's goroutine profile.
//!
//! - Sample and period type `task`/`count` (Go: `goroutine`/`count`), period 1.
//! - One sample per group of tasks (spawn site, stack, labels) and state, its value the count;
//!   locations leaf first, as in Go.
//! - One `Function` per distinct frame label and file, one `Location` per distinct frame
//!   (function, line, column), no addresses. One `Mapping` names the program (pprof's `File:`
//!   line) and says its locations are symbolized, so pprof never tries to symbolize them.
//! - String labels: `spawn_site` (`file:line:col` or `<unknown>`), `state` (`idle`, `running` or
//!   `lost waker`) and the tasks' own labels.
//! - A task waiting outside any `#[track]` frame has no stack; it gets one pseudo-frame named
//!   after the task (its name, at its spawn site) so `pprof -top` still shows it.
//!
//! The schema is `proto/profile.proto`, vendored from google/pprof and compiled at build time by
//! protox and prost-build (see `build.rs`).

use std::collections::HashMap;
use std::io::Write;
use std::panic::Location;
use std::time::UNIX_EPOCH;

use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;

use crate::labels::Labels;
use crate::snapshot::{Diff, Frame, Snapshot, State};

/// The types generated from `proto/profile.proto` (package `perftools.profiles`).
#[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]
pub(crate) mod proto {
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.rs"));
}

/// Label key of the spawn site.
pub(crate) const SITE_KEY: &str = "spawn_site";
/// Label key of the state.
pub(crate) const STATE_KEY: &str = "state";
/// Id of the one mapping: the program.
const MAPPING: u64 = 1;
/// Function name of the pseudo-frame of a diff group with no tracked frame.
const NO_FRAME: &str = "<no tracked frame>";

impl Snapshot {
    /// The snapshot as a gzipped pprof `profile.proto`, what Go's `/debug/pprof/goroutine` serves
    /// by default: read it with `go tool pprof -top FILE` (or `-raw`, `-web`, `-http=:8080`).
    ///
    /// Sample type `task`/`count`; one sample per group and state (see [`groups`](Self::groups)),
    /// with string labels `spawn_site`, `state` and the tasks' labels; one function per frame
    /// label (name = [`Frame::label`], with its file and line).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// std::fs::write(std::env::temp_dir().join("tasks.pb.gz"), taskprof::snapshot().to_pprof())
    ///     .unwrap();
    /// # }
    /// ```
    pub fn to_pprof(&self) -> Vec<u8> {
        // Tasks are regrouped here (rather than taking `groups()`) to split a group by state.
        let mut samples: HashMap<SampleKey<'_>, i64> = HashMap::new();
        for t in self.tasks() {
            let state = if t.lost_waker() {
                StateLabel::Lost
            } else {
                StateLabel::State(t.state())
            };
            let key = SampleKey {
                site: t.spawn_site(),
                stack: t.stack(),
                labels: t.labels(),
                state,
                // Only needed to name the pseudo-frame of a task without frames.
                name: t.stack().is_empty().then(|| t.name()),
            };
            *samples.entry(key).or_default() += 1;
        }
        let mut samples: Vec<(SampleKey<'_>, i64)> = samples.into_iter().collect();
        samples.sort_by(|(a, an), (b, bn)| bn.cmp(an).then_with(|| a.cmp(b)));

        let mut b = Builder::new();
        b.profile.time_nanos = self
            .taken_at()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        for (key, count) in &samples {
            let empty = key.name.unwrap_or(NO_FRAME);
            b.sample(
                key.site,
                key.stack,
                key.labels,
                Some(key.state),
                empty,
                *count,
            );
        }
        b.finish()
    }
}

impl Diff {
    /// The diff as a gzipped pprof `profile.proto` with signed values, like
    /// `go tool pprof -base OLD NEW`: one sample per changed group, its value the change.
    ///
    /// Labels: `spawn_site`, the tasks' labels, and `state` = `lost waker` for tasks that lost
    /// their wakers (a diff does not split groups by idle/running). A group without frames gets
    /// one pseudo-frame named `<no tracked frame>`.
    pub fn to_pprof(&self) -> Vec<u8> {
        let mut b = Builder::new();
        for g in self.groups() {
            let state = g.key().lost.then_some(StateLabel::Lost);
            b.sample(
                g.spawn_site(),
                g.stack(),
                g.labels(),
                state,
                NO_FRAME,
                g.delta(),
            );
        }
        b.finish()
    }
}

/// What tasks of one pprof sample share.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SampleKey<'a> {
    site: Option<&'static Location<'static>>,
    stack: &'a [Frame],
    labels: &'a Labels,
    state: StateLabel,
    name: Option<&'a str>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum StateLabel {
    State(State),
    Lost,
}

impl StateLabel {
    fn as_str(self) -> &'static str {
        match self {
            StateLabel::State(s) => s.as_str(),
            StateLabel::Lost => "lost waker",
        }
    }
}

/// Builds one profile: interns strings, functions and locations.
struct Builder {
    profile: proto::Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    locations: HashMap<(u64, u32, u32), u64>,
}

impl Builder {
    fn new() -> Self {
        let mut b = Builder {
            profile: proto::Profile::default(),
            strings: HashMap::new(),
            functions: HashMap::new(),
            locations: HashMap::new(),
        };
        // The string table must start with "".
        b.string("");
        let task_count = proto::ValueType {
            r#type: b.string("task"),
            unit: b.string("count"),
        };
        b.profile.sample_type = vec![task_count];
        b.profile.period_type = Some(task_count);
        b.profile.period = 1;
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let filename = b.string(&program);
        b.profile.mapping = vec![proto::Mapping {
            id: MAPPING,
            filename,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            ..Default::default()
        }];
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        if let Some(&id) = self.functions.get(&(name.to_owned(), file.to_owned())) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let (name_i, file_i) = (self.string(name), self.string(file));
        self.profile.function.push(proto::Function {
            id,
            name: name_i,
            system_name: name_i,
            filename: file_i,
            start_line: 0,
        });
        self.functions
            .insert((name.to_owned(), file.to_owned()), id);
        id
    }

    fn location(&mut self, name: &str, file: &str, line: u32, column: u32) -> u64 {
        let function_id = self.function(name, file);
        // The vendored schema's `Line` has no column; distinct columns still get their own
        // location so each frame of the text profile has one.
        *self
            .locations
            .entry((function_id, line, column))
            .or_insert_with(|| {
                let id = self.profile.location.len() as u64 + 1;
                self.profile.location.push(proto::Location {
                    id,
                    mapping_id: MAPPING,
                    line: vec![proto::Line {
                        function_id,
                        line: i64::from(line),
                    }],
                    ..Default::default()
                });
                id
            })
    }

    fn sample(
        &mut self,
        site: Option<&'static Location<'static>>,
        stack: &[Frame],
        labels: &Labels,
        state: Option<StateLabel>,
        empty_name: &str,
        value: i64,
    ) {
        let location_id: Vec<u64> = if stack.is_empty() {
            let (file, line) = site.map_or(("", 0), |l| (l.file(), l.line()));
            vec![self.location(empty_name, file, line, 0)]
        } else {
            stack
                .iter()
                .map(|f| self.location(f.label(), f.file(), f.line(), f.column()))
                .collect()
        };
        let site = match site {
            Some(l) => format!("{}:{}:{}", l.file(), l.line(), l.column()),
            None => "<unknown>".to_owned(),
        };
        let mut label = vec![self.label(SITE_KEY, &site)];
        if let Some(state) = state {
            label.push(self.label(STATE_KEY, state.as_str()));
        }
        for (k, v) in labels.iter() {
            label.push(self.label(k, v));
        }
        self.profile.sample.push(proto::Sample {
            location_id,
            value: vec![value],
            label,
        });
    }

    fn label(&mut self, key: &str, value: &str) -> proto::Label {
        proto::Label {
            key: self.string(key),
            str: self.string(value),
            ..Default::default()
        }
    }

    fn finish(self) -> Vec<u8> {
        let raw = self.profile.encode_to_vec();
        let mut gz = GzEncoder::new(
            Vec::with_capacity(raw.len() / 2 + 64),
            Compression::default(),
        );
        // Writing into a Vec cannot fail.
        gz.write_all(&raw).expect("gzip into memory");
        gz.finish().expect("gzip into memory")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;
    use prost::Message;

    use super::proto::Profile;

    /// Gunzips and decodes a profile.
    pub(crate) fn decode(gz: &[u8]) -> Profile {
        let mut raw = Vec::new();
        GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .expect("gzip stream");
        Profile::decode(raw.as_slice()).expect("profile.proto")
    }

    fn s(p: &Profile, i: i64) -> &str {
        &p.string_table[usize::try_from(i).expect("index")]
    }

    #[test]
    fn empty_snapshot_is_a_valid_task_profile() {
        let snap = crate::Snapshot::from_tasks(Vec::new(), std::time::SystemTime::now());
        let p = decode(&snap.to_pprof());
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.sample_type.len(), 1);
        assert_eq!(s(&p, p.sample_type[0].r#type), "task");
        assert_eq!(s(&p, p.sample_type[0].unit), "count");
        let period = p.period_type.expect("period type");
        assert_eq!(
            (s(&p, period.r#type), s(&p, period.unit)),
            ("task", "count")
        );
        assert_eq!(p.period, 1);
        assert!(p.time_nanos > 0);
        assert!(p.sample.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn groups_become_samples_with_labels_and_interned_frames() {
        #[crate::track]
        async fn pprof_unit_park(rx: tokio::sync::broadcast::Receiver<()>) {
            let mut rx = rx;
            let _ = rx.recv().await;
        }
        let (tx, rx) = tokio::sync::broadcast::channel::<()>(1);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                crate::spawn(crate::labels::with(
                    &[("unit", "pprof")],
                    pprof_unit_park(rx.resubscribe()),
                ))
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let mut snap = crate::snapshot();
        snap.retain(|t| t.labels().get("unit") == Some("pprof"));
        assert_eq!(snap.total(), 3);
        let p = decode(&snap.to_pprof());
        assert_eq!(p.sample.len(), 1, "{p:?}");
        let sample = &p.sample[0];
        assert_eq!(sample.value, [3]);
        let labels: Vec<(&str, &str)> = sample
            .label
            .iter()
            .map(|l| (s(&p, l.key), s(&p, l.str)))
            .collect();
        assert_eq!(labels[1], ("state", "idle"));
        assert_eq!(labels[2], ("unit", "pprof"));
        assert_eq!(labels[0].0, "spawn_site");
        assert!(
            labels[0].1.starts_with("runtime/src/pprof.rs:"),
            "{labels:?}"
        );
        assert_eq!(sample.location_id.len(), 1);
        assert_eq!(p.location.len(), 1);
        assert_eq!(p.function.len(), 1);
        let f = &p.function[0];
        assert!(
            s(&p, f.name).ends_with("pprof_unit_park"),
            "{}",
            s(&p, f.name)
        );
        assert_eq!(s(&p, f.filename), "runtime/src/pprof.rs");
        let diff =
            crate::Snapshot::from_tasks(Vec::new(), std::time::SystemTime::now()).diff(&snap);
        let d = decode(&diff.to_pprof());
        assert_eq!(d.sample.len(), 1);
        assert_eq!(d.sample[0].value, [-3]);
        assert_eq!(d.function.len(), 1);
        drop((tx, rx));
        for h in handles {
            h.await.expect("task");
        }
    }
}
