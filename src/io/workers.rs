//! Worker threads for blocking calls (ureq HTTP to L1, beacon, engine). A `Worker` is one
//! thread with a bounded job queue; a `Pool` is up to N threads sharing one bounded queue,
//! started on demand (the L1 client, `--l1.max-concurrency`). Results go back on one shared
//! completion channel to the loop, which a `mio::Waker` wakes. The loop never blocks on the
//! network.

use std::collections::VecDeque;
use std::fmt;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use mio::Waker;

/// Stack size for worker threads: they run ureq and JSON decoding, nothing deep.
pub const WORKER_STACK: usize = 256 * 1024;

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is at capacity; the caller should retry later.
    Full,
    /// The worker has stopped.
    Closed,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Full => write!(f, "worker queue full"),
            SubmitError::Closed => write!(f, "worker stopped"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// The sending half that workers use to hand results to the loop.
pub struct Completions<R> {
    tx: Sender<R>,
    waker: Arc<Waker>,
}

impl<R> Clone for Completions<R> {
    fn clone(&self) -> Self {
        Completions { tx: self.tx.clone(), waker: self.waker.clone() }
    }
}

impl<R> Completions<R> {
    /// A completion channel that wakes `waker` on every result.
    pub fn new(waker: Arc<Waker>) -> (Self, Receiver<R>) {
        let (tx, rx) = mpsc::channel();
        (Completions { tx, waker }, rx)
    }

    /// Delivers a result and wakes the loop. Fails only when the loop is gone.
    pub fn send(&self, r: R) -> bool {
        if self.tx.send(r).is_err() {
            return false;
        }
        if let Err(e) = self.waker.wake() {
            log::error!("failed to wake the event loop: {e}");
        }
        true
    }
}

/// A named thread running `handler` on each job of its bounded queue.
pub struct Worker<J: Send + 'static> {
    name: String,
    tx: Option<SyncSender<J>>,
    handle: Option<JoinHandle<()>>,
}

impl<J: Send + 'static> Worker<J> {
    /// Starts the thread. `handler` maps a job to a result, which goes to `done`.
    pub fn spawn<R: Send + 'static>(
        name: &str,
        queue_cap: usize,
        done: Completions<R>,
        handler: impl FnMut(J) -> R + Send + 'static,
    ) -> std::io::Result<Self> {
        Self::spawn_with_stack(name, queue_cap, WORKER_STACK, done, handler)
    }

    /// `spawn` with a given stack size (KZG work keeps 128 KiB blobs on the stack).
    pub fn spawn_with_stack<R: Send + 'static>(
        name: &str,
        queue_cap: usize,
        stack: usize,
        done: Completions<R>,
        mut handler: impl FnMut(J) -> R + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<J>(queue_cap);
        let handle = thread::Builder::new().name(name.to_string()).stack_size(stack).spawn(move || {
            while let Ok(job) = rx.recv() {
                if !done.send(handler(job)) {
                    break;
                }
            }
        })?;
        Ok(Worker { name: name.to_string(), tx: Some(tx), handle: Some(handle) })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues a job without blocking.
    pub fn submit(&self, job: J) -> Result<(), SubmitError> {
        self.try_submit(job).map_err(|(_, e)| e)
    }

    /// Queues a job without blocking; a job that could not be queued comes back.
    pub fn try_submit(&self, job: J) -> Result<(), (J, SubmitError)> {
        let Some(tx) = self.tx.as_ref() else { return Err((job, SubmitError::Closed)) };
        tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(j) => (j, SubmitError::Full),
            TrySendError::Disconnected(j) => (j, SubmitError::Closed),
        })
    }

    /// Closes the queue and waits for the job in progress to finish.
    pub fn stop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                log::error!("worker {} panicked", self.name);
            }
        }
    }
}

impl<J: Send + 'static> Drop for Worker<J> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A queue the shell can hand jobs to without blocking: a `Worker` or a `Pool`.
pub trait JobQueue<J> {
    /// Queues a job; a job that could not be queued comes back.
    fn try_submit(&self, job: J) -> Result<(), (J, SubmitError)>;
}

impl<J: Send + 'static> JobQueue<J> for Worker<J> {
    fn try_submit(&self, job: J) -> Result<(), (J, SubmitError)> {
        Worker::try_submit(self, job)
    }
}

/// Up to `max` threads sharing one bounded queue. One thread starts with the pool; another
/// starts only when a job is queued while every thread is busy (so more jobs wait than there
/// are idle threads to take them), never past `max`. Each thread runs its own handler, made by
/// the pool's factory (e.g. its own HTTP client). Results may come back in any order.
pub struct Pool<J: Send + 'static> {
    name: String,
    shared: Arc<PoolShared<J>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    spawn: Box<dyn Fn(usize) -> std::io::Result<JoinHandle<()>> + Send + Sync>,
}

struct PoolShared<J> {
    state: Mutex<PoolState<J>>,
    ready: Condvar,
    cap: usize,
    max: usize,
}

struct PoolState<J> {
    queue: VecDeque<J>,
    /// Threads started, and those running a job.
    threads: usize,
    busy: usize,
    closed: bool,
}

impl<J> PoolShared<J> {
    fn lock(&self) -> MutexGuard<'_, PoolState<J>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<J: Send + 'static> Pool<J> {
    /// Starts the pool's first thread. `make` builds each thread's handler.
    pub fn spawn<R, H>(
        name: &str,
        max: usize,
        queue_cap: usize,
        done: Completions<R>,
        make: impl Fn() -> H + Send + Sync + 'static,
    ) -> std::io::Result<Self>
    where
        R: Send + 'static,
        H: FnMut(J) -> R + 'static,
    {
        let shared = Arc::new(PoolShared {
            state: Mutex::new(PoolState { queue: VecDeque::new(), threads: 0, busy: 0, closed: false }),
            ready: Condvar::new(),
            cap: queue_cap.max(1),
            max: max.max(1),
        });
        let (sh, base) = (shared.clone(), name.to_string());
        let make = Arc::new(make);
        let spawn = move |i: usize| {
            let (sh, done, make) = (sh.clone(), done.clone(), make.clone());
            thread::Builder::new().name(format!("{base}-{i}")).stack_size(WORKER_STACK).spawn(move || {
                let mut handler = make();
                pool_thread(&sh, &done, &mut handler);
            })
        };
        let pool =
            Pool { name: name.to_string(), shared, threads: Mutex::new(Vec::new()), spawn: Box::new(spawn) };
        pool.grow()?;
        Ok(pool)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Threads started so far.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Starts one more thread (the caller has checked that one is needed).
    fn grow(&self) -> std::io::Result<()> {
        let mut handles = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.lock().threads += 1;
        match (self.spawn)(handles.len()) {
            Ok(h) => {
                handles.push(h);
                Ok(())
            }
            Err(e) => {
                self.shared.lock().threads -= 1;
                Err(e)
            }
        }
    }

    /// Closes the queue; the threads finish the jobs queued and end. Waits for them.
    pub fn stop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            if h.join().is_err() {
                log::error!("worker {} panicked", self.name);
            }
        }
    }
}

impl<J: Send + 'static> JobQueue<J> for Pool<J> {
    fn try_submit(&self, job: J) -> Result<(), (J, SubmitError)> {
        let grow = {
            let mut st = self.shared.lock();
            if st.closed {
                return Err((job, SubmitError::Closed));
            }
            if st.queue.len() >= self.shared.cap {
                return Err((job, SubmitError::Full));
            }
            st.queue.push_back(job);
            st.queue.len() > st.threads - st.busy && st.threads < self.shared.max
        };
        self.shared.ready.notify_one();
        if grow {
            if let Err(e) = self.grow() {
                // The threads already running take the job in turn.
                log::warn!("failed to start another {} thread: {e}", self.name);
            }
        }
        Ok(())
    }
}

impl<J: Send + 'static> Drop for Pool<J> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A pool thread: takes jobs until the queue is closed and empty (or the loop is gone).
fn pool_thread<J, R>(sh: &PoolShared<J>, done: &Completions<R>, handler: &mut dyn FnMut(J) -> R) {
    loop {
        let job = {
            let mut st = sh.lock();
            loop {
                if let Some(j) = st.queue.pop_front() {
                    st.busy += 1;
                    break j;
                }
                if st.closed {
                    return;
                }
                st = sh.ready.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = handler(job);
        // Idle again before the loop hears of it, so that its next job finds this thread free.
        sh.lock().busy -= 1;
        if !done.send(result) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A loopback HTTP/1.1 server answering `GET /n` with `n * 2` after `n` ms.
    fn serve() -> (String, thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let h = thread::spawn(move || {
            for _ in 0..4 {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let n: u64 = line.split_whitespace().nth(1).unwrap()[1..].parse().unwrap();
                thread::sleep(Duration::from_millis(n));
                let body = (n * 2).to_string();
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        (addr, h)
    }

    #[test]
    fn blocking_http_jobs_complete_through_the_waker() {
        let (base, server) = serve();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (done, rx) = Completions::<Result<u64, String>>::new(waker);
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
        let mut w = Worker::spawn("test-http", 2, done, move |n: u64| {
            let mut resp = agent.get(&format!("{base}/{n}")).call().map_err(|e| e.to_string())?;
            let body = resp.body_mut().read_to_string().map_err(|e| e.to_string())?;
            body.trim().parse::<u64>().map_err(|e| e.to_string())
        })
        .unwrap();
        // The loop thread stays free: submitting never blocks, and results arrive by wake-up.
        let t = Instant::now();
        for n in [30, 10, 20, 5] {
            while w.submit(n) == Err(SubmitError::Full) {
                thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(t.elapsed() < Duration::from_secs(2));
        let mut got = Vec::new();
        let mut events = Events::with_capacity(8);
        while got.len() < 4 {
            poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
            assert!(!events.is_empty(), "no wake-up within 5 s");
            while let Ok(r) = rx.try_recv() {
                got.push(r.unwrap());
            }
        }
        // One thread per upstream: jobs complete in submission order.
        assert_eq!(got, vec![60, 20, 40, 10]);
        w.stop();
        assert_eq!(w.submit(1), Err(SubmitError::Closed));
        server.join().unwrap();
    }

    #[test]
    fn a_pool_grows_on_demand_up_to_its_size_and_never_beyond() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (done, rx) = Completions::<u32>::new(waker);
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate_rx));
        // Jobs running at once, and the most seen.
        let running =
            Arc::new([std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)]);
        let r2 = running.clone();
        let mut pool = Pool::spawn("test-pool", 3, 16, done, move || {
            let (gate, running) = (gate.clone(), r2.clone());
            move |n: u32| {
                use std::sync::atomic::Ordering::SeqCst;
                if n >= 100 {
                    let now = running[0].fetch_add(1, SeqCst) + 1;
                    running[1].fetch_max(now, SeqCst);
                    let _ = gate.lock().unwrap().recv();
                    running[0].fetch_sub(1, SeqCst);
                }
                n
            }
        })
        .unwrap();
        assert_eq!(pool.threads(), 1);
        // Jobs that finish at once never find every thread busy: one thread does them all.
        let mut events = Events::with_capacity(8);
        for n in 0..5 {
            pool.try_submit(n).map_err(|(_, e)| e).unwrap();
            let t = Instant::now();
            while rx.try_recv() != Ok(n) {
                poll.poll(&mut events, Some(Duration::from_millis(10))).unwrap();
                assert!(t.elapsed() < Duration::from_secs(5));
            }
        }
        assert_eq!(pool.threads(), 1);
        // Blocked jobs: a thread for each while jobs wait, up to three; the rest queue.
        for n in 100..110 {
            pool.try_submit(n).map_err(|(_, e)| e).unwrap();
        }
        assert_eq!(pool.threads(), 3);
        let t = Instant::now();
        while running[0].load(std::sync::atomic::Ordering::SeqCst) < 3 {
            thread::sleep(Duration::from_millis(1));
            assert!(t.elapsed() < Duration::from_secs(5), "three jobs never ran at once");
        }
        // Every job is done once the gate opens, by those three threads.
        for _ in 100..110 {
            gate_tx.send(()).unwrap();
        }
        let mut got = Vec::new();
        let t = Instant::now();
        while got.len() < 10 {
            poll.poll(&mut events, Some(Duration::from_millis(50))).unwrap();
            got.extend(rx.try_iter());
            assert!(t.elapsed() < Duration::from_secs(5), "{got:?}");
        }
        got.sort_unstable();
        assert_eq!(got, (100..110).collect::<Vec<_>>());
        assert_eq!((pool.threads(), running[1].load(std::sync::atomic::Ordering::SeqCst)), (3, 3));
        pool.stop();
        assert_eq!(pool.try_submit(1).map_err(|(_, e)| e), Err(SubmitError::Closed));
    }

    #[test]
    fn a_full_pool_queue_rejects_without_blocking() {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (done, _rx) = Completions::<()>::new(waker);
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate_rx));
        let pool = Pool::spawn("test-pool-full", 1, 2, done, move || {
            let gate = gate.clone();
            move |_: u8| {
                let _ = gate.lock().unwrap().recv();
            }
        })
        .unwrap();
        let mut refused = false;
        for _ in 0..10 {
            if pool.try_submit(0).is_err_and(|(_, e)| e == SubmitError::Full) {
                refused = true;
                break;
            }
        }
        assert!(refused);
        assert_eq!(pool.threads(), 1);
        drop(gate_tx);
    }

    #[test]
    fn a_full_queue_rejects_without_blocking() {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (done, _rx) = Completions::<()>::new(waker);
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate_rx);
        let w = Worker::spawn("test-full", 1, done, move |_: u8| {
            let _ = gate.lock().unwrap().recv();
        })
        .unwrap();
        // One job running (blocked on the gate), one queued, the third is refused.
        w.submit(0).unwrap();
        let t = Instant::now();
        let mut refused = false;
        for _ in 0..100 {
            if w.submit(1) == Err(SubmitError::Full) {
                refused = true;
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        assert!(refused);
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(gate_tx);
    }
}
