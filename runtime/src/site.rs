//! Static descriptions of instrumented code: `#[track]` functions and their `.await` points.
//!
//! The macro emits one `static` per function and per `.await`. Each gets a small integer id the
//! first time it goes pending, so a task's published stack is a few integers, resolved back into
//! names, files and lines only when a snapshot is taken.

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{OnceLock, RwLock};

/// A `#[track]` function: its name, module, definition site and attribute arguments.
#[doc(hidden)]
pub struct FnSite {
    id: AtomicU32,
    name: &'static str,
    module: &'static str,
    location: &'static Location<'static>,
    name_override: Option<&'static str>,
    labels: &'static [(&'static str, &'static str)],
    label: OnceLock<Box<str>>,
    /// Set once `label` is: a relaxed load is all every frame creation pays.
    labelled: AtomicBool,
}

/// A recorded `.await` (or a branch of `join!`/`select!`) inside a `#[track]` function.
#[doc(hidden)]
pub struct AwaitSite {
    id: AtomicU32,
    func: &'static FnSite,
    location: &'static Location<'static>,
    text: &'static str,
}

/// A `#[track]` function's site as a type: the expansion defines a zero-sized type per function,
/// so its frames hold no pointer to the site (a frame's size is added to its caller's future at
/// every level of nesting).
#[doc(hidden)]
pub trait FnSiteOf {
    /// The function's site.
    fn site() -> &'static FnSite;
}

/// An `.await`'s site as a type, like [`FnSiteOf`].
#[doc(hidden)]
pub trait AwaitSiteOf {
    /// The `.await`'s site.
    fn site() -> &'static AwaitSite;
}

/// Provides the `Self` type name of a method, so the label can read `module::Type::method`.
pub(crate) type TypeName = Option<fn() -> &'static str>;

impl FnSite {
    /// Used by `#[track]` expansions only.
    pub const fn new(
        name: &'static str,
        module: &'static str,
        location: &'static Location<'static>,
        name_override: Option<&'static str>,
        labels: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            id: AtomicU32::new(0),
            name,
            module,
            location,
            name_override,
            labels,
            label: OnceLock::new(),
            labelled: AtomicBool::new(false),
        }
    }

    pub(crate) fn labels(&self) -> &'static [(&'static str, &'static str)] {
        self.labels
    }

    /// Used by `#[track]` expansions of methods only, before the method's future is built:
    /// computes the frame label once per site (the `name = ".."` override, else `Type::method`
    /// with the type's path, generic arguments dropped so all instances share one label). Awaits
    /// in async blocks the method spawns name it too, even if it never suspends itself. After
    /// the first call this is one load. A free function's label needs no call: see
    /// [`known_label`](Self::known_label).
    #[inline]
    pub fn label(&'static self, type_name: fn() -> &'static str) {
        if !self.labelled.load(Ordering::Relaxed) {
            self.init_label(Some(type_name));
        }
    }

    #[cold]
    #[inline(never)]
    fn init_label(&'static self, type_name: TypeName) -> &'static str {
        let label = self.label.get_or_init(|| {
            if let Some(name) = self.name_override {
                return name.into();
            }
            match type_name {
                Some(type_name) => format!("{}::{}", strip_generics(type_name()), self.name),
                None => format!("{}::{}", self.module, self.name),
            }
            .into_boxed_str()
        });
        self.labelled.store(true, Ordering::Relaxed);
        label
    }

    /// The label: a method's was computed by [`label`](Self::label) before any frame of it
    /// existed; a free function's (`module::function`, or its `name = ".."`) is computed here,
    /// the first time a snapshot needs it.
    pub(crate) fn known_label(&'static self) -> &'static str {
        match self.label.get() {
            Some(label) => label,
            None => self.init_label(None),
        }
    }

    /// The site's id, given the first time one of its frames goes pending.
    pub(crate) fn id(&'static self) -> u32 {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        register(&self.id, Site::Fn(self))
    }
}

impl AwaitSite {
    /// Used by `#[track]` expansions only.
    pub const fn new(
        func: &'static FnSite,
        location: &'static Location<'static>,
        text: &'static str,
    ) -> Self {
        Self {
            id: AtomicU32::new(0),
            func,
            location,
            text,
        }
    }

    pub(crate) fn func(&self) -> &'static FnSite {
        self.func
    }

    pub(crate) fn id(&'static self) -> u32 {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        register(&self.id, Site::Await(self))
    }
}

fn strip_generics(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[derive(Clone, Copy)]
pub(crate) enum Site {
    Fn(&'static FnSite),
    Await(&'static AwaitSite),
}

/// A resolved site, as snapshots show it.
#[derive(Clone, Copy)]
pub(crate) struct Resolved {
    pub(crate) label: &'static str,
    pub(crate) location: &'static Location<'static>,
    pub(crate) text: Option<&'static str>,
}

impl Site {
    pub(crate) fn resolve(self) -> Resolved {
        match self {
            Site::Fn(f) => Resolved {
                label: f.known_label(),
                location: f.location,
                text: None,
            },
            Site::Await(a) => Resolved {
                label: a.func.known_label(),
                location: a.location,
                text: Some(a.text),
            },
        }
    }
}

/// Id → site. Index 0 is unused so that 0 can mean "not assigned yet".
static SITES: RwLock<Vec<Option<Site>>> = RwLock::new(Vec::new());

#[cold]
fn register(slot: &AtomicU32, site: Site) -> u32 {
    let mut sites = SITES.write().unwrap_or_else(|p| p.into_inner());
    // Another thread may have registered this site while we waited for the lock.
    let id = slot.load(Ordering::Acquire);
    if id != 0 {
        return id;
    }
    if sites.is_empty() {
        sites.push(None);
    }
    let id = u32::try_from(sites.len()).unwrap_or(u32::MAX);
    sites.push(Some(site));
    slot.store(id, Ordering::Release);
    id
}

/// Resolves site ids in bulk under one read lock.
pub(crate) fn with_sites<R>(f: impl FnOnce(&dyn Fn(u32) -> Option<Resolved>) -> R) -> R {
    let sites = SITES.read().unwrap_or_else(|p| p.into_inner());
    let lookup = |id: u32| -> Option<Resolved> {
        sites.get(id as usize).copied().flatten().map(Site::resolve)
    };
    f(&lookup)
}

#[cfg(test)]
mod tests {
    use super::strip_generics;

    #[test]
    fn generics_are_dropped_from_type_paths() {
        assert_eq!(strip_generics("a::B<c::D<E>, F>"), "a::B");
        assert_eq!(strip_generics("a::B"), "a::B");
    }
}
