//! Worker threads for blocking calls (ureq HTTP to L1, beacon, engine). One thread per upstream,
//! a bounded job queue each, and one shared completion channel back to the loop, which a
//! `mio::Waker` wakes. The loop never blocks on the network.

use std::fmt;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;
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
