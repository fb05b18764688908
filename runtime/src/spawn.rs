//! Helpers the `#[track]` expansion wraps spawn arguments in.
//!
//! The macro keeps the user's spawn call (`tokio::spawn`, `set.spawn`, `handle.spawn_blocking`,
//! ...) and only wraps its argument, so the call still goes where it went, with the same types.
//! `#[track_caller]` records the site: the expansion gives the wrapping call the span of the
//! user's spawn call, so `Location::caller()` is that call's `file:line:col`.

use std::future::Future;
use std::panic::Location;

use crate::task::{Tracked, tracked_blocking};

/// `tokio::spawn(fut)` → `tokio::spawn(spawned(fut))`.
#[track_caller]
#[inline]
pub fn spawned<F: Future>(fut: F) -> Tracked<F> {
    Tracked::new(Location::caller(), fut)
}

/// `spawn_blocking(f)` → `spawn_blocking(spawned_blocking(f))`.
#[track_caller]
#[inline]
pub fn spawned_blocking<F: FnOnce() -> R, R>(f: F) -> impl FnOnce() -> R {
    tracked_blocking(Location::caller(), f)
}

// Method calls (`x.spawn(arg)`) may be on any type, so the expansion dispatches on the argument
// with autoref specialization:
// `match arg { a => (&a).__taskprof_spawn_kind().wrap(a) }`
// picks `FutureKind` when `arg` is a future and falls back to `Passthrough` otherwise.

/// Tag: wrap the argument as a tracked task.
pub struct TrackFuture;
/// Tag: wrap the closure as a tracked blocking task.
pub struct TrackBlocking;
/// Tag: leave the argument as it is.
pub struct Passthrough;

/// Chosen for `.spawn(fut)` when the argument is a future.
pub trait FutureKind {
    /// Picks the tag.
    #[inline]
    fn __taskprof_spawn_kind(&self) -> TrackFuture {
        TrackFuture
    }
}
impl<F: Future> FutureKind for F {}

/// Chosen for `.spawn_blocking(f)` when the argument is a `FnOnce() -> R`.
pub trait BlockingKind {
    /// Picks the tag.
    #[inline]
    fn __taskprof_spawn_blocking_kind(&self) -> TrackBlocking {
        TrackBlocking
    }
}
impl<F, R> BlockingKind for F where F: FnOnce() -> R {}

/// Fallback for anything else.
pub trait PassthroughKind {
    /// Picks the tag.
    #[inline]
    fn __taskprof_spawn_kind(&self) -> Passthrough {
        Passthrough
    }
    /// Picks the tag.
    #[inline]
    fn __taskprof_spawn_blocking_kind(&self) -> Passthrough {
        Passthrough
    }
}
impl<T> PassthroughKind for &T {}

impl TrackFuture {
    /// Wraps `fut`.
    #[track_caller]
    #[inline]
    pub fn wrap<F: Future>(self, fut: F) -> Tracked<F> {
        Tracked::new(Location::caller(), fut)
    }
}

impl TrackBlocking {
    /// Wraps `f`.
    #[track_caller]
    #[inline]
    pub fn wrap<F: FnOnce() -> R, R>(self, f: F) -> impl FnOnce() -> R {
        tracked_blocking(Location::caller(), f)
    }
}

impl Passthrough {
    /// Returns `value` unchanged.
    #[inline]
    pub fn wrap<T>(self, value: T) -> T {
        value
    }
}
