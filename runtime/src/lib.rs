#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
//! Goroutine-style profiles and leak checks for tokio tasks.
//!
//! See the README for the tour; the main entry points are [`track`], [`spawn`], [`snapshot`] and
//! [`live_count`].
//!
//! Built to stay on in production: a task that finishes in its first poll takes no lock and is
//! never listed, so [`snapshot`] lists a task from its first suspension (its spawn is counted by
//! [`live_count`] at once); a frame that does not suspend records nothing. `TASKPROF=off` in
//! the environment, or [`set_enabled`]`(false)`, turns tracking off at run time. The README's
//! "Cost" section has the measurements.

// Lets `#[track]` (which names `::taskprof`) be used inside this crate's own tests.
extern crate self as taskprof;

mod enabled;
mod frame;
mod health;
pub mod http;
mod intern;
#[cfg(feature = "serde")]
mod json;
pub mod labels;
mod leak;
#[cfg(feature = "pprof")]
mod pprof;
mod profile;
mod registry;
#[cfg(feature = "server")]
pub mod server;
mod site;
mod snapshot;
mod spawn;
mod stack;
mod task;

pub use enabled::{is_enabled, set_enabled};
pub use health::{Health, health};
pub use leak::{LeakCheck, LeakReport};
pub use registry::live_count;
pub use snapshot::{Diff, DiffGroup, Frame, Group, Snapshot, State, TaskInfo, snapshot};
pub use task::{spawn, spawn_blocking, spawn_named};
pub use taskprof_macros::test;
pub use taskprof_macros::track;

#[doc(hidden)]
pub mod __private {
    //! Only for the output of taskprof's macros. Not public API; may change in any release.
    pub use crate::frame::{
        AnyAwaitKind, AwaitAny, AwaitFrame, AwaitPoint, Callee, FrameAwaitKind, FrameLabels,
        Framed, InBody, InFrame, Labelled, NoLabels, Retract, await_in_body, await_point,
    };
    pub use crate::http::{HttpExecProbe, HttpProbe, NoHttpProbe};
    pub use crate::leak::run_test;
    pub use crate::site::{AwaitSite, AwaitSiteOf, FnSite, FnSiteOf};
    pub use crate::spawn::{
        BlockingKind, FutureKind, Passthrough, PassthroughKind, TrackBlocking, TrackFuture,
        spawned, spawned_blocking,
    };
    pub use crate::task::Tracked;
}
