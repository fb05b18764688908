//! The chart's data: live-task counts per spawn site, sampled in process into a bounded ring.
//!
//! One sampler per process: a plain (untracked) tokio task, so it never shows in the profiles it
//! takes. It is started by the first router built inside a runtime, or by the first request; if
//! its runtime shuts down (a test's runtime, say) the next router or request starts a new one.

use std::collections::{HashMap, VecDeque};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Samples kept: 5 minutes at the default interval of 1 s.
pub(crate) const CAPACITY: usize = 300;
/// Sites recorded per sample; the rest only count in the total.
const SITES_PER_SAMPLE: usize = 20;

struct Sample {
    at_ms: u64,
    total: usize,
    /// Counts of the largest sites, largest first.
    sites: Vec<(Arc<str>, usize)>,
    /// True when `sites` holds every site, so a site missing from it had no tasks.
    complete: bool,
}

static RING: Mutex<VecDeque<Sample>> = Mutex::new(VecDeque::new());
static RUNNING: AtomicBool = AtomicBool::new(false);
static INTERVAL_MS: AtomicU64 = AtomicU64::new(1000);

fn ring() -> MutexGuard<'static, VecDeque<Sample>> {
    // A panic while holding the lock leaves the ring consistent (pushes and pops only).
    RING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the sampling interval (the last router built wins) and starts the sampler if none runs
/// and there is a runtime to run it on.
pub(crate) fn ensure_sampler(interval: Duration) {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(10);
    INTERVAL_MS.store(ms, Ordering::Relaxed);
    ensure_running();
}

/// Starts the sampler if none runs and there is a runtime to run it on.
pub(crate) fn ensure_running() {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    // Plain tokio: not a tracked spawn, so the sampler is no task of the profile.
    handle.spawn(async {
        let _running = Running;
        let mut names: HashMap<Option<&'static Location<'static>>, Arc<str>> = HashMap::new();
        loop {
            // Snapshots are O(tasks): take them off the async workers.
            let Ok(snap) = tokio::task::spawn_blocking(crate::snapshot).await else {
                return;
            };
            record(&snap, &mut names);
            let ms = INTERVAL_MS.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    });
}

/// Clears `RUNNING` when the sampler ends, also when its runtime drops it.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

fn record(
    snap: &crate::Snapshot,
    names: &mut HashMap<Option<&'static Location<'static>>, Arc<str>>,
) {
    let mut per_site: HashMap<Option<&'static Location<'static>>, usize> = HashMap::new();
    for g in snap.groups() {
        *per_site.entry(g.spawn_site()).or_default() += g.count();
    }
    let mut sites: Vec<(Option<&'static Location<'static>>, usize)> =
        per_site.into_iter().collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let complete = sites.len() <= SITES_PER_SAMPLE;
    sites.truncate(SITES_PER_SAMPLE);
    let sites = sites
        .into_iter()
        .map(|(site, n)| {
            // Sites are code locations, so this cache stays as small as the program.
            let name = names
                .entry(site)
                .or_insert_with(|| super::site_text(site).into())
                .clone();
            (name, n)
        })
        .collect();
    let at_ms = snap
        .taken_at()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut ring = ring();
    if ring.len() == CAPACITY {
        ring.pop_front();
    }
    ring.push_back(Sample {
        at_ms,
        total: snap.total(),
        sites,
        complete,
    });
}

/// The chart's data, embedded in the page:
/// `{"interval_ms":1000,"now_ms":..,"t":[ms..],"total":[n..],"series":[{"site":"f.rs:1:2","points":[n|null..]}]}`,
/// with the `top` sites that had the most tasks at any time in the window.
pub(crate) fn chart(top: usize) -> Value {
    let ring = ring();
    let mut peak: HashMap<&Arc<str>, (usize, usize)> = HashMap::new();
    let last = ring.back();
    for s in ring.iter() {
        for (site, n) in &s.sites {
            let e = peak.entry(site).or_default();
            e.0 = e.0.max(*n);
        }
    }
    if let Some(last) = last {
        for (site, n) in &last.sites {
            if let Some(e) = peak.get_mut(site) {
                e.1 = *n;
            }
        }
    }
    let mut ranked: Vec<(&Arc<str>, (usize, usize))> = peak.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked.truncate(top);
    let series: Vec<Value> = ranked
        .iter()
        .map(|(site, _)| {
            let points: Vec<Option<usize>> = ring
                .iter()
                .map(|s| match s.sites.iter().find(|(name, _)| name == *site) {
                    Some((_, n)) => Some(*n),
                    None if s.complete => Some(0),
                    None => None,
                })
                .collect();
            json!({ "site": &***site, "points": points })
        })
        .collect();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    json!({
        "interval_ms": INTERVAL_MS.load(Ordering::Relaxed),
        "now_ms": now_ms,
        "t": ring.iter().map(|s| s.at_ms).collect::<Vec<_>>(),
        "total": ring.iter().map(|s| s.total).collect::<Vec<_>>(),
        "series": series,
    })
}

/// Number of samples in the ring.
pub(crate) fn len() -> usize {
    ring().len()
}
