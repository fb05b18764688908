#![forbid(unsafe_code)]
//! Attribute macros for [taskprof](https://docs.rs/taskprof).
//!
//! Don't depend on this crate directly: use `taskprof`, which re-exports [`macro@track`] as
//! `taskprof::track` and provides the runtime its expansion calls into (`taskprof::__private`).

mod args;
mod expand;
mod print;
mod rewrite;
mod test_args;
mod test_attr;

use proc_macro::TokenStream;

/// Records an `async fn` as a frame of the task that runs it, with its `.await` points and the
/// tasks it spawns.
///
/// Applied to an `async fn` (free function, inherent or trait-impl method, with any receiver,
/// generics, lifetimes or `impl Trait`), `#[track]`:
///
/// 1. makes the call's future a *frame*: while it is pending, task snapshots show it as
///    `module::function` (or `Type::method`) at the place it is defined;
/// 2. records every `.await` written in the body (also inside async blocks and closures in the
///    body, but not inside nested items), and every branch of `join!`, `try_join!` and
///    `select!`, with its source text and `file:line:col`;
/// 3. turns spawn calls in the body into tracked spawns located at the call:
///    `tokio::spawn`, `tokio::task::{spawn, spawn_local, spawn_blocking}`,
///    `JoinSet::spawn(&mut set, ..)` and `.spawn(..)` / `.spawn_local(..)` /
///    `.spawn_blocking(..)` method calls on any receiver. A method call whose argument is not a
///    future (or, for `spawn_blocking`, not a closure) is left exactly as it was.
///
/// On a non-`async` fn (say a `fn main` that builds a runtime) only the spawn calls are
/// rewritten.
///
/// Attributes, visibility, name, generics and argument types stay as written. An `async fn`
/// becomes a `fn` returning `impl Future<Output = ..>` whose future is the frame around the
/// body: one state machine per call, as the `async fn` had (an `async fn` awaiting a wrapped
/// `async` block would be two, and cost twice as much per call). The future captures every
/// lifetime in scope and moves every argument in, so it borrows, lives and drops arguments
/// exactly as the `async fn`'s did, in any edition. An `async fn` that another attribute macro
/// still has to see as `async` (`#[tokio::main]`, `#[instrument]`, ... written after
/// `#[track]`), or an `async fn` marked `unsafe`, stays `async` and awaits its frame.
///
/// The returned future's type also says `+ InFrame` (a hidden trait), so that an `.await` on
/// the call directly in another `#[track]` body polls it as a callee: without the code that
/// would make it a task of its own when polled outside any task, which lets the compiler
/// inline it into its caller as it inlines a plain `async fn`. The bound is left out where the
/// fn may be a trait's provided method, whose signature every impl would then have to meet: a
/// fn without `pub` that takes `self` or names `Self`. (A trait's provided fn without `pub`,
/// `self` or `Self` that an impl overrides without `#[track]` is the one case that does not
/// compile; write `#[track]` on the override too.)
///
/// # Arguments
///
/// - `name = "..."`: the frame label, instead of `module::function` / `Type::method`.
/// - `label(key = "value", ...)`: labels for the frame and everything it awaits; keys are
///   identifiers or string literals, values string literals.
///
/// Anything else, duplicates, empty names and non-literal values are compile errors that point
/// at the offending token. Applying `#[track]` to something other than a function, or to a
/// `const fn`, is an error too.
///
/// # Example
///
/// ```text
/// #[taskprof::track(label(kind = "db"))]
/// async fn load(&self, id: u64) -> Result<Row, DbError> {
///     let row = self.client.get(id).await?;
///     tokio::spawn(refresh_cache(id));
///     Ok(row)
/// }
/// ```
///
/// # Expands roughly to
///
/// ```text
/// fn load(&self, id: u64) -> impl Future<Output = Result<Row, DbError>> /* + InFrame if `pub` */ {
///     static __TASKPROF_FN: FnSite = FnSite::new(
///         "load", module_path!(), /* location of `load` */, None, &[("kind", "db")],
///     );
///     // The site as a zero-sized type: frames carry no pointer to it.
///     struct __TaskprofFn;
///     impl FnSiteOf for __TaskprofFn {
///         fn site() -> &'static FnSite { &__TASKPROF_FN }
///     }
///     FnSite::label(&__TASKPROF_FN, type_name::<Self>); // methods only: the label needs `Self`
///     let fut = async move {
///         let id = id; // every argument moves in, as into an `async fn`'s future
///         // Fixes the block's output type, so `?` and coercions work as in the fn.
///         if false { let r: Result<Row, DbError> = loop {}; return r; }
///         {
///             // `await_point` in an `async` block or closure, or for a `join!`/`select!`
///             // branch: those can be dropped while pending and take their entry back. A
///             // call's future is dispatched on its type: a `#[track]` frame (`InFrame`) is
///             // polled as a callee, anything else as it is.
///             let row = match self.client.get(id) {
///                 awaited => (&awaited).__taskprof_await_kind().await_in_body(
///                     { static S: AwaitSite = AwaitSite::new(
///                           &__TASKPROF_FN, /* location of `get` */, "self.client.get(id)");
///                       struct T; impl AwaitSiteOf for T { fn site() -> &'static AwaitSite { &S } }
///                       T },
///                     awaited,
///                 ),
///             }.await?;
///             tokio::spawn(spawned(refresh_cache(id))); // `spawned` is `#[track_caller]`
///             Ok(row)
///         }
///     };
///     Framed::labelled(__TaskprofFn, fut) // `Framed::new` for a fn without labels
/// }
/// ```
///
/// All paths in the real expansion are absolute (`::taskprof::__private::..`,
/// `::core::..`), so local items named `Option` or `Location` don't interfere.
#[proc_macro_attribute]
pub fn track(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::track(args.into(), item.into()).into()
}

/// `#[tokio::test]` that also fails the test if it leaks tasks.
///
/// The body runs on a fresh tokio runtime, in a fresh leak scope: every tracked task spawned
/// while it runs, however deep, belongs to the test (tests running in parallel don't see each
/// other's tasks). Spawn calls written in the body are tracked as with [`macro@track`]
/// (`tokio::spawn`, `tokio::task::spawn_blocking`, `set.spawn(..)`, ...); tasks spawned in
/// helper functions are tracked if those use `#[taskprof::track]` or `taskprof::spawn`.
///
/// After the body returns, the test waits up to the grace period (default 1 s, polled with
/// exponential backoff from 1 ms) for those tasks to finish, and panics with the leak report
/// (`leaked tasks: N` and the grouped profile of the leaked tasks) if any is still alive. A
/// task whose waker is lost is reported at once. A panicking body panics with its own message,
/// so `#[should_panic]` and the test output show the panic, not a leak report.
///
/// # Arguments
///
/// - `flavor = "current_thread"` (default) or `"multi_thread"`, `worker_threads = N` (multi-thread
///   only) and `start_paused = true` (current-thread only; needs tokio's `test-util` feature):
///   as in `#[tokio::test]`. The runtime is built with `enable_all()` in your crate, so your crate
///   must depend on `tokio` with the features the test needs.
/// - `grace = "500ms"`: a whole number or decimal followed by `ns`, `us`, `ms`, `s` or `m`.
/// - `ignore = ["my_crate::server::run", "server.rs:40"]`: tasks to leave out of the check.
///   Entries containing `.rs` are sites (`file.rs` or `file.rs:LINE`, matched as a path suffix
///   against spawn sites and await sites; see `LeakCheck::ignore_site`), others function paths
///   or task names (see `LeakCheck::ignore_fn`).
///
/// A non-`async` fn, arguments, generics, a second test attribute, unknown or duplicate
/// arguments and malformed values are compile errors pointing at the offending token.
///
/// # Example
///
/// ```text
/// #[taskprof::test(flavor = "multi_thread", worker_threads = 2, grace = "200ms")]
/// async fn shuts_down_cleanly() {
///     let (tx, rx) = tokio::sync::oneshot::channel::<()>();
///     tokio::spawn(async move { let _ = rx.await; }); // tracked, part of the test's scope
///     drop(tx); // without this the test fails with "leaked tasks: 1 ..."
/// }
/// ```
///
/// # Expands roughly to
///
/// ```text
/// #[::core::prelude::v1::test]
/// fn shuts_down_cleanly() {
///     let body = async move {
///         let (tx, rx) = tokio::sync::oneshot::channel::<()>();
///         tokio::spawn(::taskprof::__private::spawned(async move { let _ = rx.await; }));
///         drop(tx);
///     };
///     let rt = ::tokio::runtime::Builder::new_multi_thread()
///         .worker_threads(2)
///         .enable_all()
///         .build()
///         .expect("taskprof::test: failed to build the tokio runtime");
///     ::taskprof::__private::run_test(
///         rt,
///         ::taskprof::LeakCheck::new().grace(::core::time::Duration::from_nanos(200000000)),
///         body,
///     )
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::test(args.into(), item.into()).into()
}
