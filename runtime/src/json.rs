//! JSON (feature `serde`): stable field names for snapshots, tasks, groups, frames and diffs.
//!
//! ```json
//! {"total":1,"taken_at_unix_ms":1764410000000,
//!  "groups":[{"count":1,"oldest_secs":0.25,"lost_waker":false,"spawn_site":{"file":"src/main.rs","line":9,"column":5},"labels":{},
//!             "stack":[{"label":"app::wait","file":"src/main.rs","line":3,"column":8,
//!                       "awaiting":"rx","depth":0}]}],
//!  "tasks":[{"id":1,"name":"app::main","spawn_site":{...},"parent":null,"labels":{},
//!            "state":"idle","lost_waker":false,"age_secs":0.25,"polls":1,"blocking":false,"stack":[...]}]}
//! ```

use std::panic::Location;
use std::time::UNIX_EPOCH;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::snapshot::{Diff, DiffGroup, Frame, Group, Snapshot, TaskInfo};

struct Site(Option<&'static Location<'static>>);

impl Serialize for Site {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(l) => {
                let mut st = s.serialize_struct("Site", 3)?;
                st.serialize_field("file", l.file())?;
                st.serialize_field("line", &l.line())?;
                st.serialize_field("column", &l.column())?;
                st.end()
            }
        }
    }
}

impl Serialize for Frame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Frame", 6)?;
        st.serialize_field("label", self.label())?;
        st.serialize_field("file", self.file())?;
        st.serialize_field("line", &self.line())?;
        st.serialize_field("column", &self.column())?;
        st.serialize_field("awaiting", &self.awaiting())?;
        st.serialize_field("depth", &self.depth())?;
        st.end()
    }
}

impl Serialize for Group {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Group", 6)?;
        st.serialize_field("count", &self.count())?;
        st.serialize_field("oldest_secs", &self.oldest().as_secs_f64())?;
        st.serialize_field("lost_waker", &self.lost_waker())?;
        st.serialize_field("spawn_site", &Site(self.spawn_site()))?;
        st.serialize_field("labels", self.labels())?;
        st.serialize_field("stack", self.stack())?;
        st.end()
    }
}

impl Serialize for TaskInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("TaskInfo", 11)?;
        st.serialize_field("id", &self.id())?;
        st.serialize_field("name", self.name())?;
        st.serialize_field("spawn_site", &Site(self.spawn_site()))?;
        st.serialize_field("parent", &self.parent())?;
        st.serialize_field("labels", self.labels())?;
        st.serialize_field("state", &self.state())?;
        st.serialize_field("lost_waker", &self.lost_waker())?;
        st.serialize_field("age_secs", &self.age().as_secs_f64())?;
        st.serialize_field("polls", &self.polls())?;
        st.serialize_field("blocking", &self.is_blocking())?;
        st.serialize_field("stack", self.stack())?;
        st.end()
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let taken = self
            .taken_at()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut st = s.serialize_struct("Snapshot", 4)?;
        st.serialize_field("total", &self.total())?;
        st.serialize_field("taken_at_unix_ms", &taken)?;
        st.serialize_field("groups", self.groups())?;
        st.serialize_field("tasks", self.tasks())?;
        st.end()
    }
}

impl Serialize for DiffGroup {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("DiffGroup", 4)?;
        st.serialize_field("delta", &self.delta())?;
        st.serialize_field("spawn_site", &Site(self.spawn_site()))?;
        st.serialize_field("labels", self.labels())?;
        st.serialize_field("stack", self.stack())?;
        st.end()
    }
}

impl Serialize for Diff {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Diff", 2)?;
        st.serialize_field("total", &self.total())?;
        st.serialize_field("groups", self.groups())?;
        st.end()
    }
}
