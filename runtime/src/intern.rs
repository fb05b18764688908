//! Ids for what registry entries point to: spawn sites and task names.
//!
//! A registry entry is reused by task after task, so it cannot hold a `&'static` reference
//! without a lock around it; it holds a `u32` id of the referenced value instead, interned here
//! by address. Spawns and first suspensions look ids up in a small per-thread cache (a hit is
//! two loads and a compare); snapshots read the table once.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::{Mutex, RwLock};

use rustc_hash::FxBuildHasher;

use crate::site::FnSite;

/// What an id stands for.
#[derive(Clone, Copy)]
pub(crate) enum Interned {
    /// A spawn site.
    Site(&'static Location<'static>),
    /// A task named by `std::any::type_name` of its future or closure.
    Type(fn() -> &'static str),
    /// A `#[track]` function polled as a task of its own.
    Frame(&'static FnSite),
    /// A task with a name of its own (given to `spawn_named`), kept with the task.
    Given,
}

/// Id 0: nothing (no spawn site; a task not listed yet has no name).
pub(crate) const NONE: u32 = 0;

/// Id of [`Interned::Given`].
pub(crate) const GIVEN: u32 = 1;

impl Interned {
    /// A key unique to the value: its address, tagged with the variant.
    fn key(self) -> usize {
        let (address, tag) = match self {
            Interned::Site(l) => (l as *const Location<'static> as usize, 0),
            Interned::Type(f) => (f as usize, 1),
            Interned::Frame(s) => (s as *const FnSite as usize, 2),
            Interned::Given => (0, 3),
        };
        address.wrapping_mul(4).wrapping_add(tag)
    }
}

/// Id → value ([`NONE`] and [`GIVEN`] first).
static TABLE: RwLock<Vec<Interned>> = RwLock::new(Vec::new());

/// Key → id, for values not in a thread's cache.
static IDS: Mutex<Option<HashMap<usize, u32, FxBuildHasher>>> = Mutex::new(None);

/// Entries of the per-thread cache (direct-mapped: a key has one place).
const CACHE: usize = 256;

thread_local! {
    static CACHED: [Cell<(usize, u32)>; CACHE] = const { [const { Cell::new((0, 0)) }; CACHE] };
}

/// The id of `value`.
#[inline]
pub(crate) fn id(value: Interned) -> u32 {
    let key = value.key();
    let place = (key >> 4 ^ key >> 12) % CACHE;
    let cached = CACHED
        .try_with(|c| c[place].get())
        .unwrap_or((usize::MAX, 0));
    if cached.0 == key && cached.1 != NONE {
        return cached.1;
    }
    let id = lookup(key, value);
    // The thread's locals may be gone (a task spawned during thread exit): no caching then.
    let _ = CACHED.try_with(|c| c[place].set((key, id)));
    id
}

#[cold]
#[inline(never)]
fn lookup(key: usize, value: Interned) -> u32 {
    let mut ids = IDS.lock().unwrap_or_else(|p| p.into_inner());
    let ids = ids.get_or_insert_with(HashMap::default);
    if let Some(&id) = ids.get(&key) {
        return id;
    }
    let mut table = TABLE.write().unwrap_or_else(|p| p.into_inner());
    if table.is_empty() {
        // `NONE` stands for nothing; it is never looked up.
        table.extend([Interned::Given, Interned::Given]);
        ids.insert(Interned::Given.key(), GIVEN);
    }
    if let Some(&id) = ids.get(&key) {
        return id;
    }
    // Ids are of distinct sites and names in the program: far fewer than `u32::MAX`.
    let id = u32::try_from(table.len()).unwrap_or(u32::MAX);
    table.push(value);
    ids.insert(key, id);
    id
}

/// The whole table, indexed by id (empty before the first id is given out).
pub(crate) fn table() -> Vec<Interned> {
    TABLE.read().unwrap_or_else(|p| p.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_a() -> &'static str {
        "a"
    }

    fn name_b() -> &'static str {
        "b"
    }

    #[test]
    fn equal_values_share_an_id_and_others_do_not() {
        let here = Location::caller();
        let a = id(Interned::Type(name_a));
        let b = id(Interned::Type(name_b));
        let site = id(Interned::Site(here));
        assert_ne!(a, b);
        assert_ne!(a, site);
        assert_eq!(id(Interned::Type(name_a)), a);
        assert_eq!(id(Interned::Site(here)), site);
        assert_eq!(id(Interned::Given), GIVEN);
        let table = table();
        assert!(matches!(table[a as usize], Interned::Type(f) if f() == "a"));
        assert!(matches!(table[site as usize], Interned::Site(l) if std::ptr::eq(l, here)));
        // From another thread (another cache), the same ids.
        let other =
            std::thread::spawn(move || (id(Interned::Type(name_a)), id(Interned::Site(here))));
        assert_eq!(other.join().ok(), Some((a, site)));
    }
}
