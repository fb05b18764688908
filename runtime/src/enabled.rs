//! The run-time off switch: [`set_enabled`] and the `TASKPROF` environment variable.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::stack::Pushed;

const UNSET: u64 = 0;
const ON: u64 = 1;
/// The bits of [`Pushed::OFF`], so a new frame's mode is the switch's value under a mask (see
/// [`initial_mode`]): one load and one `and`, no comparison.
const OFF: u64 = Pushed::OFF.to_bits();

static STATE: AtomicU64 = AtomicU64::new(UNSET);

/// Whether new tasks and frames are tracked: one relaxed load once the environment was read.
#[inline]
pub(crate) fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => from_env(),
    }
}

/// The mode a new `#[track]` frame starts in: [`Pushed::OFF`] if tracking is known to be off,
/// else [`Pushed::NONE`] (the environment is read by [`enabled`]). Masking the switch's value
/// gives it: `UNSET` and `ON` have no bit of `OFF`'s set.
#[inline]
pub(crate) fn initial_mode() -> Pushed {
    Pushed::from_bits(STATE.load(Ordering::Relaxed) & OFF)
}

#[cold]
fn from_env() -> bool {
    let off = std::env::var("TASKPROF").is_ok_and(|v| {
        let v = v.trim();
        ["off", "0", "false", "no"]
            .iter()
            .any(|o| v.eq_ignore_ascii_case(o))
    });
    let want = if off { OFF } else { ON };
    // A `set_enabled` call that raced with this read wins.
    match STATE.compare_exchange(UNSET, want, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => !off,
        Err(now) => now == ON,
    }
}

/// Switches tracking on or off for the whole process, at run time.
///
/// While off, [`spawn`](crate::spawn) and the spawns `#[track]` rewrites hand tokio the future
/// as it is (one check per spawn and per poll), and `#[track]` frames and `.await`s record nothing.
/// Tasks already tracked stay tracked until they end; tasks spawned while off are never tracked,
/// even after tracking is switched back on, so a snapshot shows what was spawned while on.
/// Likewise a `#[track]` call made while off returns a plain future, which never becomes a task
/// of its own, nor do the `#[track]` calls it awaits when it is not inside a tracked task.
///
/// Without a call, tracking is on unless the environment variable `TASKPROF` is `off`
/// (or `0`, `false`, `no`), read once, at the first tracked spawn or frame. A call overrides it.
///
/// ```standalone_crate
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// taskprof::set_enabled(false);
/// let before = taskprof::live_count();
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let task = taskprof::spawn(async move { let _ = rx.await; });
/// assert_eq!(taskprof::live_count(), before); // not tracked
/// taskprof::set_enabled(true);
/// # drop(tx); task.await.unwrap();
/// # }
/// ```
pub fn set_enabled(on: bool) {
    STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether tracking is on (see [`set_enabled`]).
///
/// ```
/// // On by default, unless the environment says `TASKPROF=off`.
/// let on = taskprof::is_enabled();
/// # let _ = on;
/// ```
pub fn is_enabled() -> bool {
    enabled()
}
