//! `send()` and `execute(x)` calls that are not reqwest requests, inside `#[taskprof::track]`
//! functions: the macro wraps every `X.send()` and `X.execute(r)` in an autoref probe, which must
//! hand anything that is not a reqwest builder or client back unchanged. These compile, return
//! what they return without the macro, and never show as HTTP frames.
#![forbid(unsafe_code)]

use std::future::{Future, Ready, ready};

use taskprof::{Snapshot, TaskInfo};
use taskprof_tests::{Line, column_of, wait_for};
use tokio::sync::{mpsc, oneshot};

const SRC: &str = include_str!("http_send.rs");
const FILE: &str = file!();

/// Line of the pending `tx.send(2).await` in [`park_on_mpsc`].
static MPSC_LINE: Line = Line::new();
/// Line of the pending `gate.send().await` in [`park_on_gate`].
static GATE_LINE: Line = Line::new();

/// `send(&self)`: reads.
struct Counter(u32);
impl Counter {
    fn send(&self) -> u32 {
        self.0 + 1
    }
}

/// A fresh [`Counter`], for rvalue receivers.
fn make(n: u32) -> Counter {
    Counter(n)
}

/// `send(&mut self)`: mutates, so a copy or a move of the receiver would show.
struct Tally(u32);
impl Tally {
    fn send(&mut self) -> u32 {
        self.0 += 1;
        self.0
    }
}

/// `send(self)` returning a future.
struct Letter(u32);
impl Letter {
    // Written out on purpose: the receiver's method returns a future rather than being async.
    #[allow(clippy::manual_async_fn)]
    fn send(self) -> impl Future<Output = u32> {
        async move { self.0 * 2 }
    }
}

/// `send(self)` returning a nameable future, to check the type is unchanged.
struct Postcard(u32);
impl Postcard {
    fn send(self) -> Ready<u32> {
        ready(self.0 + 1000)
    }
}

/// `execute(&self, x)`: a one-argument `execute` that is not `reqwest::Client::execute`.
struct Pool(u32);
impl Pool {
    fn execute(&self, job: u32) -> u32 {
        self.0 * 100 + job
    }
}

/// A `send` known only through a trait (generic and `dyn` receivers).
trait Sends {
    /// A number.
    fn send(&self) -> u32;
}
impl Sends for Counter {
    fn send(&self) -> u32 {
        Counter::send(self) + 10
    }
}

/// Receivers behind fields of `self`.
struct Outbox {
    counter: Counter,
    tally: Tally,
    pool: Pool,
}

impl Outbox {
    /// `self.field.send()` / `self.field.execute(x)`, then an await.
    #[taskprof::track]
    async fn flush(&mut self) -> [u32; 4] {
        let a = self.counter.send();
        let b = self.tally.send();
        let c = self.tally.send();
        let d = self.pool.execute(a);
        tokio::task::yield_now().await;
        [a, b, c, d]
    }
}

/// Every non-HTTP form in one tracked function; returns what each call returned.
#[taskprof::track]
async fn non_http_calls(tx: mpsc::Sender<u32>, done: oneshot::Sender<u32>) -> Vec<u32> {
    let mut out = Vec::new();
    // tokio mpsc: one argument, left as written; awaited.
    tx.send(1).await.expect("the receiver is alive");
    // A place receiver, read by `&self`.
    let counter = Counter(10);
    out.push(counter.send());
    // An rvalue receiver.
    out.push(make(20).send());
    out.push(Counter(30).send());
    // `&mut self`, twice: the mutation lands in the variable.
    let mut tally = Tally(0);
    out.push(tally.send());
    out.push(tally.send());
    out.push(tally.0);
    // `self` by value, returning a future, on an rvalue and on a place.
    out.push(Letter(21).send().await);
    let letter = Letter(4);
    out.push(letter.send().await);
    // The returned future keeps its type.
    let postcard: Ready<u32> = Postcard(1).send();
    out.push(postcard.await);
    // `execute(&self, x)` on a place and on an rvalue, argument an rvalue too.
    let pool = Pool(3);
    out.push(pool.execute(7));
    out.push(Pool(4).execute(make(1).send()));
    // oneshot: one argument, not awaited.
    out.push(u32::from(done.send(99).is_ok()));
    tokio::task::yield_now().await;
    out
}

/// Generic and `dyn` receivers.
#[taskprof::track]
async fn through_traits<S: Sends>(generic: &S, dynamic: &dyn Sends) -> (u32, u32) {
    let a = generic.send();
    let b = dynamic.send();
    tokio::task::yield_now().await;
    (a, b)
}

/// Parks on a full tokio mpsc channel's `send(v).await`.
#[taskprof::track]
async fn park_on_mpsc(tx: mpsc::Sender<u32>) -> bool {
    tx.send(1).await.expect("the receiver is alive");
    let (_, sent) = (MPSC_LINE.set(line!()), tx.send(2).await);
    sent.is_ok()
}

/// A `send(self)` whose future waits on a oneshot.
struct Gate(oneshot::Receiver<u32>);
impl Gate {
    #[allow(clippy::manual_async_fn)]
    fn send(self) -> impl Future<Output = u32> {
        async move { self.0.await.unwrap_or(0) }
    }
}

/// Parks on a custom `gate.send().await`.
#[taskprof::track]
async fn park_on_gate(gate: Gate) -> u32 {
    let (_, opened) = (GATE_LINE.set(line!()), gate.send().await);
    opened + 1
}

/// The HTTP calls of `task` in `snap`.
fn http_calls_of(snap: &Snapshot, task: &TaskInfo) -> usize {
    snap.http_calls()
        .iter()
        .filter(|(t, _)| t.id() == task.id())
        .count()
}

/// Every form returns exactly what it returns without the macro.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_http_sends_return_their_own_values() {
    let (tx, mut rx) = mpsc::channel(4);
    let (done_tx, done_rx) = oneshot::channel();
    let out = non_http_calls(tx, done_tx).await;
    assert_eq!(
        out,
        [11, 21, 31, 1, 2, 2, 42, 8, 1001, 307, 402, 1],
        "returned values"
    );
    assert_eq!(rx.recv().await, Some(1), "the mpsc send went through");
    assert_eq!(done_rx.await, Ok(99), "the oneshot send went through");

    let mut outbox = Outbox {
        counter: Counter(1),
        tally: Tally(5),
        pool: Pool(2),
    };
    assert_eq!(outbox.flush().await, [2, 6, 7, 202]);
    assert_eq!(outbox.tally.0, 7, "the mutation lands in the field");

    assert_eq!(through_traits(&Counter(1), &Counter(2)).await, (12, 13));
}

/// A task parked on a non-HTTP `send(..).await` shows its own frame at that line, and no HTTP
/// frame; once released it returns as without the macro.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_non_http_sends_are_plain_awaits() {
    let (tx, mut rx) = mpsc::channel(1);
    let (open, gate) = oneshot::channel();
    let mpsc_task = taskprof::spawn(park_on_mpsc(tx));
    let gate_task = taskprof::spawn(park_on_gate(Gate(gate)));

    let mpsc_label = format!("{}::park_on_mpsc", module_path!());
    let gate_label = format!("{}::park_on_gate", module_path!());
    let snap = wait_for("both tasks parked on their send", |snap| {
        let parked = |label: &str, line: Option<u32>| {
            snap.tasks().iter().any(|t| {
                t.stack()
                    .first()
                    .is_some_and(|f| f.label() == label && Some(f.line()) == line)
            })
        };
        (parked(&mpsc_label, MPSC_LINE.try_get()) && parked(&gate_label, GATE_LINE.try_get()))
            .then(|| snap.clone())
    })
    .await;

    for (label, line, needle, awaiting) in [
        (&mpsc_label, MPSC_LINE.get(), "send(2)", "tx.send(2)"),
        (&gate_label, GATE_LINE.get(), "send()", "gate.send()"),
    ] {
        let task = snap
            .tasks()
            .iter()
            .find(|t| t.stack().first().is_some_and(|f| f.label() == *label))
            .unwrap_or_else(|| panic!("no task parked in {label}:\n{snap:#}"));
        assert_eq!(task.stack().len(), 1, "{task}");
        let frame = &task.stack()[0];
        assert!(frame.http().is_none(), "{task}");
        assert_eq!(
            (frame.file(), frame.line(), frame.column()),
            (FILE, line, column_of(SRC, line, needle)),
            "{task}"
        );
        assert_eq!(frame.awaiting(), Some(awaiting), "{task}");
        assert_eq!(http_calls_of(&snap, task), 0, "{task}");
    }
    // Nothing in this binary makes an HTTP call.
    assert!(snap.http_calls().is_empty(), "{snap:#}");
    assert!(!snap.to_string().contains("#\thttp "), "{snap}");

    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.recv().await, Some(2));
    assert!(mpsc_task.await.expect("the mpsc task"));
    open.send(41).expect("the gate is waiting");
    assert_eq!(gate_task.await.expect("the gate task"), 42);
}

/// Regressions: shapes the `.send()`/`.execute()` rewrite must leave exactly as written.
mod unchanged_shapes {
    /// `send(&self)` on a temporary whose result borrows it (was E0716).
    struct Outbox(u32);
    impl Outbox {
        async fn send(&self) -> u32 {
            self.0
        }
    }

    #[derive(Clone, Copy)]
    struct Tick(u32);
    impl Tick {
        fn send(&mut self) -> u32 {
            self.0 += 1;
            self.0
        }
    }

    struct Pool;
    impl Pool {
        fn execute<F: Fn(u32) -> u32>(&self, f: F) -> u32 {
            f(2)
        }
    }

    #[taskprof::track]
    async fn shapes() -> (u32, u32, u32, u32) {
        let from_temp = Outbox(3).send().await;
        // An index place must be mutated in place, not copied out (was silently wrong).
        let mut ticks = [Tick(0)];
        let sent = ticks[0].send();
        let counted = Pool.execute(|v| v.count_ones());
        tokio::task::yield_now().await;
        (from_temp, sent, ticks[0].0, counted)
    }

    #[tokio::test]
    async fn temporaries_indexes_and_closures_behave_as_written() {
        assert_eq!(shapes().await, (3, 1, 1, 1));
    }
}
