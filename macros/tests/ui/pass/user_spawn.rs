#![deny(warnings)]

/// A user type whose `spawn` has nothing to do with futures.
pub struct Pool {
    started: Vec<String>,
}

impl Pool {
    pub fn spawn(&mut self, name: &str) -> usize {
        self.started.push(name.to_owned());
        self.started.len()
    }

    pub fn spawn_local(&mut self, n: u32) -> u32 {
        n + 1
    }

    pub fn spawn_blocking(&self, worker: Worker) -> Worker {
        worker
    }
}

#[derive(Debug, PartialEq)]
pub struct Worker(u8);

/// A scope-like API whose closure argument gets its parameter type from `spawn`'s signature.
pub struct Scope;

pub struct Ctx(u8);

impl Ctx {
    pub fn get(&self) -> u8 {
        self.0
    }
}

impl Scope {
    pub fn spawn<F: FnOnce(&Ctx) -> u8>(&self, f: F) -> u8 {
        f(&Ctx(6))
    }
}

#[taskprof::track]
fn scoped() -> u8 {
    let from_scope = Scope.spawn(|ctx| ctx.get());
    let from_threads = std::thread::scope(|s| s.spawn(|| 1).join().unwrap());
    from_scope + from_threads
}

#[taskprof::track]
fn start(pool: &mut Pool) -> usize {
    // Temporaries in the argument must live as long as they did before the rewrite.
    pool.spawn(&String::from("a"));
    assert_eq!(pool.spawn_local(1), 2);
    assert_eq!(pool.spawn_blocking(Worker(3)), Worker(3));
    let f = || 4;
    assert_eq!(f(), 4);
    pool.spawn("b")
}

#[taskprof::track]
async fn start_async(pool: &mut Pool) -> usize {
    tokio::task::yield_now().await;
    pool.spawn(format!("{}", 1).as_str())
}

fn main() {
    let mut pool = Pool {
        started: Vec::new(),
    };
    assert_eq!(start(&mut pool), 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(start_async(&mut pool)), 3);
    // A thread builder's `spawn` takes a closure, not a future: passed through.
    let handle = run_thread();
    assert_eq!(handle.join().unwrap(), 5);
    assert_eq!(scoped(), 7);
}

#[taskprof::track]
fn run_thread() -> std::thread::JoinHandle<u8> {
    std::thread::Builder::new().spawn(|| 5).unwrap()
}
