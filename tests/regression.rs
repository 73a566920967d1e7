//! Regression tests: each is named after the defect it pins, and says how the defect showed.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use op_lite::config::networks::op_mainnet;
use op_lite::p2p::blocks::Signers;
use op_lite::p2p::identity::Keypair;
use op_lite::p2p::multiaddr::Multiaddr;
use op_lite::p2p::swarm::{ConnId, Swarm, SwarmConfig};
use op_lite::protocol::primitives::Address;
use op_lite::protocol::rollup::RollupConfig;
use op_lite::time::Now;

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

/// The real binary with its RPC and metrics servers on ephemeral ports.
fn served_node() -> crate::support::ServedNode {
    crate::support::ServedNode::start(&crate::support::offline_node_args(), &[])
}

/// Sends `request` on a new connection; returns the response (head and body; what arrived
/// before the server closed or 5 s passed) and how long it took.
fn http_exchange(addr: &str, request: &[u8]) -> (String, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let out = match crate::support::read_response(&mut s, &mut buf) {
        Some((head, body)) => format!("{head}\r\n\r\n{body}"),
        None => String::from_utf8_lossy(&buf).into_owned(),
    };
    (out, t0.elapsed())
}

fn version_call(addr: &str) -> (bool, Duration) {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"optimism_version"}"#;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (out, took) = http_exchange(addr, req.as_bytes());
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
    let node = served_node();
    // Five times the connection cap, never sending a byte, from the honest client's address.
    let idle: Vec<TcpStream> = (0..320).map(|_| TcpStream::connect(&node.rpc).unwrap()).collect();
    let metrics_idle: Vec<TcpStream> = (0..320).map(|_| TcpStream::connect(&node.metrics).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (fast, slowest) = legitimate_calls(&node.rpc, 20);
    assert_eq!(fast, 20, "{fast} of 20 answered within 1 s (slowest {slowest:?})");
    let (out, took) = http_exchange(&node.metrics, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && took < Duration::from_secs(1), "{took:?}: {out}");
    drop((idle, metrics_idle));
}

/// 500 slowloris connections at a byte a second served 0 of 43 legitimate requests. Now a
/// request head is due within 5 s, and a new connection replaces the slowest when full.
#[test]
fn slowloris_connections_starved_rpc_clients() {
    let node = served_node();
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
    let node = served_node();
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
    let node = served_node();
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
    let node = served_node();
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"optimism_version"}"#;
    let (a, b) = body.split_at(20);
    let req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let (out, _) = http_exchange(&node.rpc, req.as_bytes());
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains(r#""id":7,"result":"v0.1.0-"#), "{out}");
    // Malformed chunking: 400.
    let bad = "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    let (out, _) = http_exchange(&node.rpc, bad.as_bytes());
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    // `echo 'GET / HTTP/1.1' | nc`: answered at once, not left waiting for a deadline.
    let (out, took) = http_exchange(&node.rpc, b"GET / HTTP/1.1\n");
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// A gossip node with op-node's default peer limits (`--p2p.peers.lo` 20, `.hi` 30).
fn gossip_node(seed: u8, static_peers: Vec<Multiaddr>, rollup: &Arc<RollupConfig>, now: Now) -> Swarm {
    let cfg = SwarmConfig {
        listen: None,
        static_peers,
        peers_lo: 20,
        peers_hi: 30,
        ban_peers: true,
        agent: "op-lite/regression".into(),
    };
    let key = Keypair::from_secret(&[seed; 32]).unwrap();
    let rng = op_lite::io::p2p::noise_rng();
    Swarm::new(key, cfg, rollup.clone(), Signers::only(Address::ZERO), None, seed.into(), rng, now).unwrap()
}

/// Moves one batch of bytes each way between `a`'s connection `ca` and `b`'s `cb`.
fn exchange(a: &mut Swarm, ca: ConnId, b: &mut Swarm, cb: ConnId, now: Now) {
    let mut buf = Vec::new();
    if a.poll_transmit(ca, &mut buf) {
        b.handle_input(cb, &buf, now);
        buf.clear();
    }
    if b.poll_transmit(cb, &mut buf) {
        a.handle_input(ca, &buf, now);
    }
}

/// Sockets that connected and never sent a byte counted against `--p2p.peers.hi` like peers:
/// about peers.hi of them, reconnecting whenever closed, made the swarm refuse every dial and
/// inbound connection, so a static peer's redial failed for the whole attack (it got back in
/// about 25 s after the attack stopped). Here 40 such sockets from 127.0.0.1 (peers.hi is 30)
/// reconnect as soon as they are closed or refused, for 30 s of virtual time: the static peer
/// must be admitted at once, reconnect within its 2 s redial after its connection drops, and
/// a new peer dialling in from 127.0.0.1 too must get through.
#[test]
fn unauthenticated_sockets_took_the_peer_slots_of_a_static_peer() {
    let t0 = Now::new(Instant::now(), 1_750_000_000_000);
    let rollup = Arc::new(op_mainnet().rollup);
    let mut st = gossip_node(2, Vec::new(), &rollup, t0);
    let st_addr = Multiaddr::new(SocketAddr::from(([10, 0, 0, 2], 9222)), Some(st.local_peer()));
    let mut node = gossip_node(1, vec![st_addr.clone()], &rollup, t0);
    let mut newcomer = gossip_node(3, Vec::new(), &rollup, t0);
    let localhost = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    let mut stalled = BTreeSet::new();
    let (mut port, mut accepted) = (1000u16, 0);
    // (node's connection, the other end's) for the static peer and the newcomer.
    let mut st_link: Option<(ConnId, ConnId)> = None;
    let mut new_link: Option<(ConnId, ConnId)> = None;
    let mut st_connected_at = Vec::new();
    let mut st_was_up = false;
    let tick = Duration::from_millis(10);
    for step in 0..3000u32 {
        let t = t0.advance(tick * step);
        while stalled.len() < 40 {
            port = port.wrapping_add(1);
            let Some(id) = node.handle_inbound(localhost(port), t) else { break };
            stalled.insert(id);
            accepted += 1;
        }
        node.handle_timeout(t);
        while let Some((cn, to)) = node.poll_dial() {
            assert_eq!(to, st_addr.addr, "only the static peer is dialled");
            let cs = st.handle_inbound(SocketAddr::from(([10, 0, 0, 1], 40_000)), t).unwrap();
            st_link = Some((cn, cs));
        }
        if step == 1000 {
            // The static peer's connection drops at 10 s.
            if let Some((cn, cs)) = st_link.take() {
                node.handle_closed(cn, t);
                st.handle_closed(cs, t);
            }
        }
        if step == 1500 {
            // A new peer dials in from 127.0.0.1 at 15 s.
            let to = Multiaddr::new(SocketAddr::from(([10, 0, 0, 1], 9222)), Some(node.local_peer()));
            let cw = newcomer.dial(&to, t).unwrap();
            while newcomer.poll_dial().is_some() {}
            new_link = node.handle_inbound(localhost(50_000), t).map(|cn| (cn, cw));
        }
        while let Some(id) = node.poll_close() {
            stalled.remove(&id);
            if let Some((_, cs)) = st_link.filter(|(cn, _)| *cn == id) {
                st.handle_closed(cs, t);
                st_link = None;
            }
            if let Some((_, cw)) = new_link.filter(|(cn, _)| *cn == id) {
                newcomer.handle_closed(cw, t);
                new_link = None;
            }
        }
        if let Some((cn, cs)) = st_link {
            exchange(&mut node, cn, &mut st, cs, t);
        }
        if let Some((cn, cw)) = new_link {
            exchange(&mut node, cn, &mut newcomer, cw, t);
        }
        let up = node.peers().iter().any(|p| p.peer == st.local_peer());
        if up && !st_was_up {
            st_connected_at.push(t.mono - t0.mono);
        }
        st_was_up = up;
    }
    let at = |i: usize| st_connected_at.get(i).copied();
    assert!(
        at(0).is_some_and(|d| d < Duration::from_millis(200)),
        "the static peer was not admitted at once while 40 stalled handshakes were pending: {st_connected_at:?}"
    );
    assert!(
        at(1).is_some_and(|d| d <= Duration::from_millis(12_200)),
        "the static peer did not reconnect within its 2 s redial after dropping at 10 s: {st_connected_at:?}"
    );
    assert_eq!(st_connected_at.len(), 2, "the static peer stayed connected");
    assert_eq!(newcomer.peer_count(), 1, "the new peer from 127.0.0.1 got through");
    assert_eq!(node.peer_count(), 2);
    assert!(accepted > 100, "the stalled sockets kept reconnecting ({accepted} accepted)");
}

/// With a worker blocked in a slow engine call, a second SIGTERM/SIGINT during the graceful
/// stop was never read (the loop had ended and the stop waited for the worker): TERM TERM INT
/// exited after 27 s with code 0. The second signal must exit 130 at once.
#[test]
fn a_second_signal_waited_for_a_blocked_engine_call() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    // An engine that accepts connections and never answers.
    let engine = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", engine.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = engine.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let mut args = crate::support::offline_node_args();
    let i = args.iter().position(|a| a == "--l2").unwrap();
    args[i + 1] = url;
    let mut child = Command::new(crate::support::bin())
        .args(args)
        .args(["--rpc.port", "0", "--l2.engine-rpc-timeout", "60s", "--log.level", "debug"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, started) = crate::support::capture_until(child.stderr.take().unwrap(), "starting rollup node");
    assert!(started.recv_timeout(Duration::from_secs(20)).is_ok(), "node did not start");
    let pid = child.id().to_string();
    let kill = |sig: &str| Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(kill("-TERM").success());
    // The graceful stop is now waiting on the engine worker.
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the blocked worker holds the graceful stop");
    assert!(kill("-TERM").success());
    let sent = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(sent.elapsed() < Duration::from_secs(1), "no exit within 1 s of the second signal");
        std::thread::sleep(Duration::from_millis(10));
    };
    let log = log.join().unwrap();
    assert_eq!(code, Some(130), "{log}");
}

/// `--l2.jwt-secret /dev/zero` was read until the kernel's OOM killer stopped the node (24 GB);
/// the P2P key, admin state and safe-head store reads were unbounded too. Each read is bounded
/// by what the file can hold, and an unusable file is a configuration error: exit 2 at once,
/// naming the file.
#[test]
fn unbounded_file_reads_ran_the_node_out_of_memory() {
    use std::process::Command;
    use std::time::{Duration, Instant};
    let dir = std::env::temp_dir().join(format!("op-lite-regression-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, &[&str]); 4] = [
        ("--l2.jwt-secret", &[]),
        ("--p2p.priv.path", &["--p2p.listen.tcp", "0"]),
        ("--rpc.admin-state", &["--sequencer.enabled"]),
        ("--safedb.path", &[]),
    ];
    for (flag, extra) in cases {
        let mut args: Vec<String> = crate::support::offline_node_args();
        if flag == "--l2.jwt-secret" {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1] = "/dev/zero".into();
        } else {
            args.extend([flag.to_string(), "/dev/zero".to_string()]);
        }
        if flag == "--p2p.priv.path" {
            args.retain(|a| a != "--p2p.disable");
        }
        let start = Instant::now();
        let out = Command::new(crate::support::bin())
            .args(&args)
            .args(extra)
            .args(["--rpc.port", "0"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(start.elapsed() < Duration::from_secs(5), "{flag}: took {:?}", start.elapsed());
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains("/dev/zero"), "{flag}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `op-lite devnet | head -2` panicked on the closed pipe (exit 134, an abort) and left its
/// temporary JWT secret behind. A closed standard output now stops the devnet cleanly.
#[test]
fn a_closed_stdout_aborted_the_devnet_and_left_its_jwt_file() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(crate::support::bin())
        .args(["devnet", "--speed", "20", "--rpc.port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let jwt = std::env::temp_dir().join(format!("op-lite-devnet-{}", child.id())).join("jwt.hex");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        lines.next().unwrap().unwrap();
    }
    assert!(jwt.exists(), "the devnet's JWT secret is at {}", jwt.display());
    drop(lines);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the devnet kept running with nobody reading its output");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!jwt.exists(), "{} left behind", jwt.display());
    assert!(!jwt.parent().unwrap().exists(), "{} left behind", jwt.parent().unwrap().display());
}

/// `op-lite p2p priv2id FILE` ignored FILE and read standard input (exit 1 with a key error).
/// Every command rejects arguments it does not take, naming them (exit 2).
#[test]
fn subcommands_ignored_unexpected_arguments() {
    use std::process::{Command, Stdio};
    for args in [
        &["p2p", "priv2id", "key.txt"][..],
        &["p2p", "genkey", "extra"],
        &["replay", "fixture.json", "second.json"],
        &["decode", "frames", "a.bin", "b.bin"],
    ] {
        let out = Command::new(crate::support::bin()).args(args).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let last = args[args.len() - 1];
        assert!(err.contains(last), "{args:?}: {err}");
    }
}

/// A 50 MB L1 answer was read whole and parsed (peak RSS 269 MB, 64 MB kept afterwards).
/// Every upstream response is limited while it is read; a larger one fails the call.
#[test]
fn a_50_mb_l1_answer_was_read_whole() {
    use op_lite::driver::l1_poll::L1Label;
    use op_lite::event::Event;
    use op_lite::io::rpc_client::MAX_RESPONSE_BYTES;
    use op_lite::io::upstream::{L1Client, L1Job, ReceiptsMethod};
    use std::time::Duration;
    let big = vec![b' '; 50 << 20];
    assert!(big.len() as u64 > MAX_RESPONSE_BYTES);
    for close_delimited in [false, true] {
        let body = big.clone();
        let srv = crate::stub_http::StubServer::start(move |_: &crate::stub_http::StubRequest| {
            crate::stub_http::StubResponse {
                close_delimited,
                ..crate::stub_http::StubResponse::json(200, body.clone())
            }
        })
        .unwrap();
        let mut l1 = L1Client::new(&srv.url(), false, ReceiptsMethod::BlockReceipts, Duration::from_secs(10));
        match l1.handle(L1Job::Poll { label: L1Label::Latest, txs: false }) {
            Event::L1PollFailed { err, .. } => {
                assert!(err.contains("limit") || err.contains("reading response"), "{err}")
            }
            other => panic!("expected a failed poll, got {other:?}"),
        }
    }
}

/// Absurd rollup values were accepted: `block_time` = u64::MAX wrapped timestamp arithmetic
/// (a critical error later), `seq_window_size` = u64::MAX, a zero EIP-1559 denominator ran
/// silently. They are refused at load: exit 2 with one line naming the field.
#[test]
fn absurd_rollup_values_were_accepted() {
    use std::process::Command;
    let base = serde_json::to_value(op_lite::config::networks::op_mainnet().rollup).unwrap();
    let dir = std::env::temp_dir().join(format!("op-lite-regression-rollup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, serde_json::Value, &str); 4] = [
        ("block_time", serde_json::json!(u64::MAX), "block_time"),
        ("seq_window_size", serde_json::json!(u64::MAX), "seq_window_size"),
        ("max_sequencer_drift", serde_json::json!(u64::MAX), "max_sequencer_drift"),
        (
            "chain_op_config",
            serde_json::json!({"eip1559Elasticity": 6, "eip1559Denominator": 0, "eip1559DenominatorCanyon": 250}),
            "eip1559Denominator",
        ),
    ];
    for (field, value, named) in cases {
        let mut cfg = base.clone();
        cfg[field] = value;
        let path = dir.join(format!("{field}.json"));
        std::fs::write(&path, cfg.to_string()).unwrap();
        let mut args = crate::support::offline_node_args();
        let i = args.iter().position(|a| a == "--network").unwrap();
        args.drain(i..i + 2);
        args.extend(["--rollup.config".into(), path.to_string_lossy().into_owned()]);
        let out = Command::new(crate::support::bin()).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{field}: {err}");
        assert!(err.contains(named), "{field}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A safe-head store at `dir/name` for the chain with L2 genesis `genesis`, holding entries for
/// L2 blocks 1..=n (each at L1 block n + 100); its file is closed.
fn safe_head_store(
    dir: &std::path::Path,
    name: &str,
    genesis: op_lite::protocol::primitives::B256,
    n: u64,
) -> std::path::PathBuf {
    use op_lite::driver::safedb::{SafeDbWrite, DEFAULT_MAX_ENTRIES};
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let (mut store, mut file) = op_lite::io::safedb_file::open(&path, genesis, DEFAULT_MAX_ENTRIES).unwrap();
    for k in 1..=n {
        file.write(SafeDbWrite::Append(store.update(block_id(k), block_id(k + 100)))).unwrap();
    }
    path
}

fn block_id(n: u64) -> op_lite::protocol::block_ref::BlockId {
    op_lite::protocol::block_ref::BlockId {
        hash: op_lite::protocol::primitives::B256([n as u8; 32]),
        number: n,
    }
}

/// With the disk full, a failed rewrite of the safe-head store left `safedb.bin.tmp` behind and
/// the store never recovered. A failed rewrite removes its temporary file, and the retried
/// rewrite works once space is back.
#[test]
fn a_full_disk_left_the_safe_head_stores_temporary_file_and_never_recovered() {
    use op_lite::driver::safedb::{SafeDbWrite, DEFAULT_MAX_ENTRIES};
    use op_lite::io::safedb_file::open;
    use op_lite::protocol::primitives::B256;
    let dir = std::env::temp_dir().join(format!("op-lite-regression-full-{}", std::process::id()));
    let g = B256([3; 32]);
    let path = safe_head_store(&dir, "safe.db", g, 1);
    let (mut store, mut file) = open(&path, g, DEFAULT_MAX_ENTRIES).unwrap();
    // The temporary file lands on a full device: /dev/full answers every write with ENOSPC.
    let tmp = dir.join("safe.db.tmp");
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
    store.update(block_id(2), block_id(102));
    let err = file.write(SafeDbWrite::Rewrite(store.snapshot())).unwrap_err();
    assert!(err.contains("No space left"), "{err}");
    assert!(std::fs::symlink_metadata(&tmp).is_err(), "the temporary file is removed");
    // Space is back: the retried rewrite works and the store holds both entries.
    file.write(SafeDbWrite::Rewrite(store.snapshot())).unwrap();
    drop(file);
    let (store, _) = open(&path, g, DEFAULT_MAX_ENTRIES).unwrap();
    assert_eq!(store.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One flipped byte in record 10 of 122 truncated the safe-head store in place (10,415 ->
/// 1,660 bytes) with one warning; `optimism_safeHeadAtL1Block` then answered stale heads. The
/// node now skips the bad record and keeps every valid one.
#[test]
fn one_corrupt_byte_discarded_the_safe_head_stores_later_history() {
    use op_lite::driver::safedb::{DEFAULT_MAX_ENTRIES, HEADER_LEN, SET_LEN};
    use op_lite::io::safedb_file::open;
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("op-lite-regression-corrupt-{}", std::process::id()));
    let g = op_lite::config::networks::op_mainnet().rollup.genesis.l2.hash;
    let path = safe_head_store(&dir, "safedb.bin", g, 122);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[HEADER_LEN + 9 * SET_LEN + 30] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let mut child = Command::new(crate::support::bin())
        .args(crate::support::offline_node_args())
        .args(["--rpc.port", "0", "--safedb.path", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, started) = crate::support::capture_until(child.stderr.take().unwrap(), "starting rollup node");
    assert!(started.recv_timeout(Duration::from_secs(20)).is_ok(), "node did not start");
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
    let log = log.join().unwrap();
    assert!(log.contains("skipped"), "{log}");
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, len - SET_LEN, "{log}");
    let (store, _) = open(&path, g, DEFAULT_MAX_ENTRIES).unwrap();
    assert_eq!(store.len(), 121);
    assert_eq!(store.at(u64::MAX).unwrap().safe, block_id(122), "the latest safe head is kept");
    let _ = std::fs::remove_dir_all(&dir);
}

/// On op-reth, about six times a run: the sequencer sealed block N while derivation made a
/// sibling of N safe; the sealed block still became the unsafe head, and the next
/// forkchoiceUpdated (head N, safe its sibling) got -38002 "Invalid forkchoice state" and a
/// reset. The stand-in, which checked only that safe was known, hid it; now it checks ancestry
/// as geth does, and a sealed block whose parent is no longer the unsafe head is abandoned.
#[test]
fn a_sealed_block_racing_derivation_made_an_invalid_forkchoice_state() {
    use op_lite::devnet::chain::{Devnet, DevnetParams};
    use op_lite::engine::SealedBlock;
    use op_lite::event::Event;
    use op_lite::protocol::block_ref::L2BlockRef;
    use op_lite::protocol::primitives::B256;
    let params = DevnetParams { seed: 11, ..DevnetParams::default() };
    let t0 = Now::new(Instant::now(), params.genesis_time * 1000);
    let mut devnet = Devnet::new(params.clone()).unwrap();
    // The same chain, run ahead: its block 1 is what derivation makes safe (B); the sequencer's
    // block 1 (A) is a sibling on the same parent.
    let mut ahead = Devnet::new(params.clone()).unwrap();
    ahead.advance_to(params.genesis_time + 4).unwrap();
    let b = ahead.sequenced_block(1).unwrap().envelope.clone();
    let mut a = b.clone();
    a.execution_payload.prev_randao = B256([0xaa; 32]);
    a.execution_payload.block_hash = a.compute_block_hash().unwrap();
    let block_ref = |env: &op_lite::protocol::payload::ExecutionPayloadEnvelope| {
        let p = &env.execution_payload;
        L2BlockRef {
            hash: p.block_hash,
            number: p.block_number,
            parent_hash: p.parent_hash,
            timestamp: p.timestamp,
            ..L2BlockRef::default()
        }
    };
    let mut core = crate::sim::Core::new(&devnet, t0, None);
    core.settle(&mut devnet, crate::sim::EngineOf::Node, t0);
    let genesis = core.status().unsafe_l2;
    assert_eq!(genesis.number, 0);
    let l1 = devnet.l1.genesis().block_ref();
    // Derivation: B, the last block of its batch, becomes unsafe and safe.
    core.core.emit(Event::PayloadProcess(Box::new(SealedBlock {
        envelope: b.clone(),
        block_ref: block_ref(&b),
        concluding: true,
        derived_from: l1,
        info: None,
    })));
    core.settle(&mut devnet, crate::sim::EngineOf::Node, t0);
    assert_eq!(core.status().safe_l2.hash, b.execution_payload.block_hash);
    let resets = |c: &crate::sim::Core| c.core.system.metrics().get("reset-event").map_or(0, |m| m.emitted);
    let before = resets(&core);
    // The sequencer's A, sealed on the old head, arrives after.
    core.core.emit(Event::PayloadProcess(Box::new(SealedBlock {
        envelope: a.clone(),
        block_ref: block_ref(&a),
        concluding: false,
        derived_from: Default::default(),
        info: None,
    })));
    core.settle(&mut devnet, crate::sim::EngineOf::Node, t0);
    assert_eq!(resets(&core), before, "an invalid forkchoice state forced a reset");
    assert_eq!(core.status().unsafe_l2.hash, b.execution_payload.block_hash);
    assert_eq!(
        devnet.engine.head, b.execution_payload.block_hash,
        "the engine's head stays on the safe chain"
    );
}

/// op-reth restarted without its last two blocks (77 -> 75): the sequencer kept building on its
/// remembered head, logged "engine is syncing" every 30 s for over seven minutes, until a reset
/// from derivation. A block-building forkchoice answered SYNCING (the engine lacks the parent)
/// now reloads the heads from the engine at once, and the sequencer goes on from there.
#[test]
fn a_sequencer_stalled_after_its_engine_restarted_without_its_last_blocks() {
    use op_lite::driver::sequencer::SequencerConfig;
    let mut pair = crate::sim::sequencer::Pair::new(SequencerConfig::default());
    pair.run(60);
    // Derivation is quiet (no new L1 blocks, everything posted already derived), as it was in
    // the run that found it: only the sequencer's own calls can notice the lost blocks.
    pair.l1_frozen = true;
    pair.run(20);
    let before = pair.seq.status().unsafe_l2.number;
    assert!(before >= 35, "sequenced {before}");
    pair.devnet.seq.restart_losing(2);
    assert_eq!(pair.devnet.seq.head_number(), before - 2);
    pair.run(10);
    let after = pair.seq.status().unsafe_l2.number;
    assert!(after >= before + 2, "10 s after the restart the sequencer is at {after} (was {before})");
    pair.assert_chain();
    assert!(pair.sequencer().stats().resets > 0, "the heads were reloaded");
}
