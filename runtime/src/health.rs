//! [`health`]: the body of `GET /debug/tasks/health`, for services that build their own health
//! endpoint.

use std::fmt::{self, Display, Formatter};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::profile::Age;

static START: OnceLock<Instant> = OnceLock::new();

/// Starts the uptime clock if it is not running yet.
pub(crate) fn start_clock() -> Instant {
    *START.get_or_init(Instant::now)
}

/// A health report: status `UP`, the number of live tracked tasks and the uptime.
///
/// Displays as `{"status":"UP","tasks":31,"uptime":"5m12s"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    tasks: usize,
    uptime: Duration,
}

impl Health {
    /// Always `UP`: a process that can answer is up; the task count is the signal to watch.
    pub fn status(&self) -> &'static str {
        "UP"
    }
    /// Live tracked tasks ([`live_count`](crate::live_count)).
    pub fn tasks(&self) -> usize {
        self.tasks
    }
    /// Time since the uptime clock started: the first call of [`health`] or the first debug
    /// router or server built in this process.
    pub fn uptime(&self) -> Duration {
        self.uptime
    }
}

/// `{"status":"UP","tasks":N,"uptime":"12.3s"}`.
impl Display for Health {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{\"status\":\"{}\",\"tasks\":{},\"uptime\":\"{}\"}}",
            self.status(),
            self.tasks,
            Age(self.uptime)
        )
    }
}

/// The health report now; O(1), so it suits a health endpoint polled often.
///
/// ```
/// let body = taskprof::health().to_string();
/// assert!(body.starts_with(r#"{"status":"UP","tasks":"#));
/// ```
pub fn health() -> Health {
    let start = start_clock();
    Health {
        tasks: crate::live_count(),
        uptime: start.elapsed(),
    }
}
