//! Shared helpers: locating fixtures, the built binary and the real peers, and reading the
//! process's output.

#![allow(dead_code)]

use std::path::PathBuf;

/// The shared fixtures folder: `$OP_LITE_FIXTURES`, else `../shared/fixtures` from the project
/// root. `None` (test prints "skipped") when absent, except under `CI=true`, where absence fails.
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("OP_LITE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if dir.join("INDEX.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("fixtures not found at {} (required under CI=true)", dir.display());
    }
    eprintln!("skipped: fixtures not found");
    None
}

/// Path of the `op-lite` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_op-lite"))
}

/// Reads `stream` to the end on a thread; signals `started` once a line contains `needle`.
/// Returns the thread (yielding everything read) and the signal.
pub fn capture_until(
    stream: impl std::io::Read + Send + 'static,
    needle: &'static str,
) -> (std::thread::JoinHandle<String>, std::sync::mpsc::Receiver<()>) {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.contains(needle) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (h, rx)
}

/// Decompresses a gzip file (the zeth RPC cache files) with miniz_oxide.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "not gzip");
    let flags = bytes[3];
    let mut i = 10;
    if flags & 4 != 0 {
        let xlen = u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
        i += 2 + xlen;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            while bytes[i] != 0 {
                i += 1;
            }
            i += 1;
        }
    }
    if flags & 2 != 0 {
        i += 2;
    }
    miniz_oxide::inflate::decompress_to_vec(&bytes[i..]).expect("inflate")
}

/// Reads a fixture JSON file (plain or .gz).
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let raw = if path.extension().is_some_and(|e| e == "gz") { gunzip(&raw) } else { raw };
    serde_json::from_slice(&raw).unwrap()
}

/// Hex string (with 0x) to bytes.
pub fn hex(s: &str) -> Vec<u8> {
    op_lite::protocol::primitives::from_hex(s).unwrap()
}

/// Flags that start a node on OP Mainnet with no reachable upstream: L1 and engine calls fail
/// and are retried, which is all the RPC, metrics and lifecycle tests need. Each call gets its
/// own JWT secret file (the node creates it).
pub fn offline_node_args() -> Vec<String> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let jwt = std::env::temp_dir().join(format!("op-lite-test-jwt-{}-{n}.hex", std::process::id()));
    let _ = std::fs::remove_file(&jwt);
    [
        "--network",
        "op-mainnet",
        "--p2p.disable",
        "--l1",
        "http://127.0.0.1:9",
        "--l2",
        "http://127.0.0.1:9",
        "--l2.jwt-secret",
        jwt.to_str().unwrap(),
        "--l1.beacon.ignore",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A Rust interop peer `tests/NAME` (its own workspace): `$VAR`, else its release build in
/// place. `None` (the test prints "skipped") when absent, except under `CI=true`, where absence
/// fails; `.ci/NAME.sh` builds it.
fn rust_peer(name: &str, var: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/{name}/target/release/{name}"))
    });
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} not built at {} (required under CI=true; .ci/{name}.sh builds it)", path.display());
    }
    eprintln!("skipped: {name} not built (run: source .ci/{name}.sh)");
    None
}

/// The rust-libp2p interop peer (`tests/libp2p-peer`): `$OP_LITE_LIBP2P_PEER`, else its release
/// build in place. `None` (test prints "skipped") when absent, except under `CI=true`.
pub fn libp2p_peer() -> Option<PathBuf> {
    rust_peer("libp2p-peer", "OP_LITE_LIBP2P_PEER")
}

/// The sigp discv5 interop peer (`tests/discv5-peer`): `$OP_LITE_DISCV5_PEER`, else its release
/// build in place. `None` (test prints "skipped") when absent, except under `CI=true`.
pub fn discv5_peer() -> Option<PathBuf> {
    rust_peer("discv5-peer", "OP_LITE_DISCV5_PEER")
}

/// Reads one HTTP response framed by `Content-Length` from `s`, keeping bytes past it in `buf`;
/// returns its head (status line and headers) and body. `None` once the connection ends first.
pub fn read_response(s: &mut impl std::io::Read, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..h]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= h + 4 + len {
                let body = String::from_utf8_lossy(&buf[h + 4..h + 4 + len]).into_owned();
                buf.drain(..h + 4 + len);
                return Some((head, body));
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A running node with its RPC and metrics servers on ephemeral ports; killed when dropped.
pub struct ServedNode {
    pub child: std::process::Child,
    pub rpc: String,
    pub metrics: String,
    /// The node's log lines (standard error), as they come.
    pub log: std::sync::mpsc::Receiver<String>,
}

impl Drop for ServedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServedNode {
    /// Starts the node with `args` plus `extra`, metrics on, and waits for both servers.
    pub fn start(args: &[String], extra: &[&str]) -> ServedNode {
        use std::process::{Command, Stdio};
        use std::time::{Duration, Instant};
        let mut child = Command::new(bin())
            .args(args)
            .args(["--metrics.enabled", "--rpc.port", "0", "--metrics.port", "0"])
            .args(extra)
            .env_remove("OP_NODE_NETWORK")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = lines(child.stderr.take().unwrap());
        let (mut rpc, mut metrics) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while rpc.is_none() || metrics.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = log.recv_timeout(left).expect("node did not start its servers");
            let addr = |needle: &str| line.split_once(needle).map(|(_, a)| a.trim().to_string());
            rpc = rpc.or_else(|| addr("Started JSON-RPC server addr="));
            metrics = metrics.or_else(|| addr("started metrics server addr="));
        }
        ServedNode { child, rpc: rpc.unwrap_or_default(), metrics: metrics.unwrap_or_default(), log }
    }

    /// The node's resident and peak resident memory in kB (Linux), from `/proc/<pid>/status`.
    pub fn rss_kb(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<u64> {
            let v = status.lines().find_map(|l| l.strip_prefix(name))?;
            v.trim().trim_end_matches("kB").trim().parse().ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// A JSON-RPC call to a served node: its `result` (null when it answered an error).
pub fn rpc(node: &ServedNode, method: &str, params: serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = std::net::TcpStream::connect(node.rpc.trim_start_matches("http://")).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    let (_, body) = read_response(&mut s, &mut buf).unwrap();
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["result"].clone()
}

/// `op-lite devnet --serve-only --with-sequencer`, running: the process, the sequencer's and the
/// verifier's command lines as it printed them (without `op-lite`), and the directory of their
/// files. Waits at most `secs` for each printed line.
pub fn serve_only_with_sequencer(secs: u64) -> (std::process::Child, Vec<String>, Vec<String>, PathBuf) {
    use std::process::{Command, Stdio};
    let mut devnet = Command::new(bin())
        .args(["devnet", "--serve-only", "--with-sequencer"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(devnet.stdout.take().unwrap());
    let (mut seq_args, mut ver_args, mut dir) = (None, None, None);
    let mut after = String::new();
    while dir.is_none() {
        let line = out
            .recv_timeout(std::time::Duration::from_secs(secs))
            .expect("devnet did not print its command lines");
        let args = || {
            line.trim()
                .strip_prefix("op-lite ")
                .map(|a| a.split_whitespace().map(String::from).collect::<Vec<_>>())
        };
        if after.contains("sequencer node") {
            seq_args = args();
        } else if after.contains("verifier node") {
            ver_args = args();
        }
        if let Some(rest) = line.strip_prefix("(files in ") {
            dir = Some(PathBuf::from(rest.split(',').next().unwrap()));
        }
        after = line.clone();
    }
    (devnet, seq_args.unwrap(), ver_args.unwrap(), dir.unwrap())
}

/// `op-lite devnet init` into a fresh temporary directory named by `tag`, with `extra` flags;
/// the directory.
pub fn devnet_init(tag: &str, extra: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("op-lite-devnet-init-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out =
        std::process::Command::new(bin()).args(["devnet", "init"]).arg(&dir).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// Sends every line of `stream` into a channel.
pub fn lines(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    parsed_lines(stream, |l| Some(l.to_string()))
}

/// Sends every line of `stream` that `parse` accepts, parsed, into a channel (a peer's JSON
/// events: `parsed_lines(out, |l| serde_json::from_str(l).ok())`).
pub fn parsed_lines<T: Send + 'static>(
    stream: impl std::io::Read + Send + 'static,
    parse: fn(&str) -> Option<T>,
) -> std::sync::mpsc::Receiver<T> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keeps reading after the receiver is gone, so the child never blocks on a full pipe.
        for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(v) = parse(&line) {
                let _ = tx.send(v);
            }
        }
    });
    rx
}

/// The executing engine peer (`tests/engine-peer`): `$OP_LITE_ENGINE_PEER`, else its release
/// build in place. `None` (test prints "skipped") when absent, except under `CI=true`.
pub fn engine_peer() -> Option<PathBuf> {
    rust_peer("engine-peer", "OP_LITE_ENGINE_PEER")
}
