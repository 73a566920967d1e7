//! Regression tests: each is named after the defect it pins, and says how the defect showed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::sim::derivation::Sim;

/// With the engine down, an idle pipeline reset the step backoff, so idle -> forkchoice retry
/// -> failure -> step ran again at once: a CPU spin on a board whose execution engine is down
/// (here the simulated node never settled at one instant). The backoff must hold while the
/// engine fails, and the node must recover when it is back.
#[test]
fn idle_pipeline_reset_the_step_backoff_while_the_engine_was_down() {
    // A short sequencing window: empty epochs expire, so there are blocks to derive.
    let mut sim = Sim::new(4);
    sim.engine_down = true;
    // Ten L1 blocks (120 s) arrive while every engine call fails.
    sim.l1_blocks(10);
    let calls = sim.engine_calls;
    assert!(calls > 0, "the node keeps retrying");
    assert!(calls <= 120, "{calls} engine calls in 120 s: retries without backoff");
    assert_eq!(sim.status().safe_l2.number, 0);
    sim.engine_down = false;
    sim.l1_blocks(2);
    assert!(sim.status().safe_l2.number > 0, "the node recovers once the engine is back");
}

/// The real binary with its RPC and metrics servers on ephemeral ports, for the HTTP
/// regressions below; killed when dropped.
struct HttpNode {
    child: std::process::Child,
    rpc: String,
    metrics: String,
}

impl Drop for HttpNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HttpNode {
    fn start() -> HttpNode {
        use std::io::BufRead;
        let mut child = std::process::Command::new(crate::support::bin())
            .args(crate::support::offline_node_args())
            .args(["--metrics.enabled", "--rpc.port", "0", "--metrics.port", "0"])
            .env_remove("OP_NODE_NETWORK")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        // Keeps reading after the receiver is gone, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut rpc, mut metrics) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while rpc.is_none() || metrics.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("node did not start its servers");
            let addr = |needle: &str| line.split_once(needle).map(|(_, a)| a.trim().to_string());
            rpc = rpc.or_else(|| addr("Started JSON-RPC server addr="));
            metrics = metrics.or_else(|| addr("started metrics server addr="));
        }
        HttpNode { child, rpc: rpc.unwrap(), metrics: metrics.unwrap() }
    }

    /// The node's resident and peak resident memory in kB (Linux), from `/proc/<pid>/status`.
    fn rss_kb(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<u64> {
            let v = status.lines().find_map(|l| l.strip_prefix(name))?;
            v.trim().trim_end_matches("kB").trim().parse().ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// Sends `request` on a new connection; returns the response (up to the server's close or 5 s)
/// and how long the first complete response took.
fn exchange(addr: &str, request: &[u8]) -> (String, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..h]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= h + 4 + len {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

fn version_call(addr: &str) -> (bool, Duration) {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"optimism_version"}"#;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (out, took) = exchange(addr, req.as_bytes());
    (out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("\"result\":\"v0.1.0-"), took)
}

/// Makes `n` legitimate calls, each on a new connection; returns how many were answered within
/// a second, and the slowest.
fn legitimate_calls(addr: &str, n: usize) -> (usize, Duration) {
    let mut fast = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let (ok, took) = version_call(addr);
        if ok && took < Duration::from_secs(1) {
            fast += 1;
        }
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(20));
    }
    (fast, slowest)
}

/// The RPC server held 64 connections and closed every one past them: 64 idle sockets made
/// every request fail (curl 000). Now a new connection replaces an idle or slow one.
#[test]
fn idle_connections_blocked_every_rpc_request() {
    let node = HttpNode::start();
    // Five times the connection cap, never sending a byte, from the honest client's address.
    let idle: Vec<TcpStream> = (0..320).map(|_| TcpStream::connect(&node.rpc).unwrap()).collect();
    let metrics_idle: Vec<TcpStream> = (0..320).map(|_| TcpStream::connect(&node.metrics).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (fast, slowest) = legitimate_calls(&node.rpc, 20);
    assert_eq!(fast, 20, "{fast} of 20 answered within 1 s (slowest {slowest:?})");
    let (out, took) = exchange(&node.metrics, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && took < Duration::from_secs(1), "{took:?}: {out}");
    drop((idle, metrics_idle));
}

/// 500 slowloris connections at a byte a second served 0 of 43 legitimate requests. Now a
/// request head is due within 5 s, and a new connection replaces the slowest when full.
#[test]
fn slowloris_connections_starved_rpc_clients() {
    let node = HttpNode::start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = node.rpc.clone();
    let stop2 = stop.clone();
    // 200 connections trickling a header byte each every 500 ms, reconnecting when closed.
    let attacker = std::thread::spawn(move || {
        let open = || {
            let mut s = TcpStream::connect(&addr).ok()?;
            s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\n").ok()?;
            Some(s)
        };
        let mut conns: Vec<Option<TcpStream>> = (0..200).map(|_| open()).collect();
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            for c in &mut conns {
                if c.as_mut().is_none_or(|s| s.write_all(b"X").is_err()) {
                    *c = open();
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let (fast, slowest) = legitimate_calls(&node.rpc, 40);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    attacker.join().unwrap();
    // The issue's budget: 95% within a second.
    assert!(fast >= 38, "{fast} of 40 answered within 1 s (slowest {slowest:?})");
}

/// Sends `bytes` on `conns` new non-blocking connections for `period`, as fast as the node
/// reads them (never reading answers); returns the sockets, still open.
fn flood(addr: &str, conns: usize, bytes: &[u8], period: Duration) -> Vec<TcpStream> {
    let mut socks: Vec<(TcpStream, usize)> = (0..conns)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            (s, 0)
        })
        .collect();
    let end = Instant::now() + period;
    while Instant::now() < end {
        for (s, at) in &mut socks {
            while *at < bytes.len() {
                match s.write(&bytes[*at..]) {
                    Ok(n) => *at += n,
                    Err(_) => break,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    socks.into_iter().map(|(s, _)| s).collect()
}

/// 64 connections each sending all of a 5 MiB body but its last byte took the node from 15 to
/// 346 MB (687 MB with the metrics server flooded too). Now one budget (16 MiB) bounds the request bytes all connections buffer.
#[test]
fn partial_large_bodies_amplified_rpc_memory() {
    let node = HttpNode::start();
    assert!(version_call(&node.rpc).0);
    let Some((base, _)) = node.rss_kb() else {
        eprintln!("skipped: no /proc");
        return;
    };
    let max_body = 5 * 1024 * 1024;
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {max_body}\r\n\r\n"
    )
    .into_bytes();
    req.resize(req.len() + max_body - 1, b' ');
    // 24 are enough to declare 120 MiB; the node buffered all it was sent.
    let socks = flood(&node.rpc, 24, &req, Duration::from_secs(2));
    // The metrics server too (its bodies are capped at 64 KiB: a 5 MiB one is refused).
    let small = {
        let mut r = b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n".to_vec();
        r.resize(r.len() + 65535, b' ');
        r
    };
    let msocks = flood(&node.metrics, 64, &small, Duration::from_millis(500));
    let (ok, took) = version_call(&node.rpc);
    assert!(ok, "a small call during the attack failed after {took:?}");
    let (rss, peak) = node.rss_kb().unwrap();
    eprintln!("partial bodies: RSS {base} kB before, {rss} kB during, peak {peak} kB");
    // The budgets (16 MiB + 1 MiB) and what answers and allocators add.
    assert!(peak <= base + 24 * 1024, "peak RSS {peak} kB from {base} kB");
    drop((socks, msocks));
}

/// 32 connections pipelining 10,000 requests each and never reading the answers took the node
/// from 11 to 382 MB: every request read was answered at once, and bytes the socket took were
/// kept. Now a client is neither read nor served while 64 KiB of answers wait for it.
#[test]
fn unread_pipelined_answers_amplified_rpc_memory() {
    let node = HttpNode::start();
    assert!(version_call(&node.rpc).0);
    let Some((base, _)) = node.rss_kb() else {
        eprintln!("skipped: no /proc");
        return;
    };
    // A large answer (the rollup config) for a small request.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"optimism_rollupConfig"}"#;
    let one = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let socks = flood(&node.rpc, 32, one.repeat(10_000).as_bytes(), Duration::from_secs(3));
    let (ok, took) = version_call(&node.rpc);
    assert!(ok, "a call during the attack failed after {took:?}");
    let (rss, peak) = node.rss_kb().unwrap();
    eprintln!("unread answers: RSS {base} kB before, {rss} kB during, peak {peak} kB");
    assert!(peak <= base + 16 * 1024, "peak RSS {peak} kB from {base} kB");
    drop(socks);
}

/// Chunked request bodies got 411 (geth accepts them), and a request line ending in a bare LF
/// was never answered.
#[test]
fn chunked_bodies_got_411_and_bare_lf_lines_were_never_answered() {
    let node = HttpNode::start();
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"optimism_version"}"#;
    let (a, b) = body.split_at(20);
    let req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let (out, _) = exchange(&node.rpc, req.as_bytes());
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains(r#""id":7,"result":"v0.1.0-"#), "{out}");
    // Malformed chunking: 400.
    let bad = "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    let (out, _) = exchange(&node.rpc, bad.as_bytes());
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    // `echo 'GET / HTTP/1.1' | nc`: answered at once, not left waiting for a deadline.
    let (out, took) = exchange(&node.rpc, b"GET / HTTP/1.1\n");
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}
