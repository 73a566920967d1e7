//! The RPC and metrics servers of the real binary on ephemeral ports: JSON-RPC calls, batches
//! and errors through curl, health and metrics endpoints, pipelining over a raw socket, and the
//! exposition format checked by `promtool` when it is installed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use op_lite::metrics::{Metrics, ProcStats};
use op_lite::rpc::CallRecord;
use op_lite::types::L2BlockRef;

use crate::support::bin;

/// op-node's own metric names that promtool's naming lint flags (counters without `_total`,
/// a gauge ending in `_count`); kept for compatibility with existing dashboards.
const OP_NODE_LINT_EXCEPTIONS: &[&str] = &[
    "op_node_default_channel_input_bytes",
    "op_node_default_events_emitted",
    "op_node_default_events_processed",
    "op_node_default_events_process_time",
    "op_node_default_p2p_peer_count",
];

/// A running node, killed when dropped.
struct Node {
    child: Child,
    rpc: String,
    metrics: String,
    log: mpsc::Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Node {
    let mut child = Command::new(bin())
        .args(crate::support::offline_node_args())
        .args(["--metrics.enabled", "--rpc.port", "0", "--metrics.port", "0"])
        .env_remove("OP_NODE_NETWORK")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
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
    Node { child, rpc: rpc.unwrap(), metrics: metrics.unwrap(), log: rx }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Runs curl; returns the HTTP status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn post(url: &str, body: &str) -> (u16, String) {
    curl(&["-H", "Content-Type: application/json", "--data-binary", body, url])
}

/// Checks exposition text with promtool: parse errors fail, naming lints are allowed only for
/// op-node's own names.
fn promtool_check(text: &str) {
    if !have("promtool") {
        eprintln!("skipped: promtool not found");
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => {}
        // Exit 3: lint problems only (no parse errors).
        Some(3) => {
            for line in report.lines().filter(|l| !l.trim().is_empty()) {
                let name = line.split_whitespace().next().unwrap_or("");
                assert!(OP_NODE_LINT_EXCEPTIONS.contains(&name), "promtool: {line}\n{report}");
            }
        }
        code => panic!("promtool check metrics failed ({code:?}):\n{report}\n{text}"),
    }
}

/// Sends raw bytes and reads until `responses` complete responses arrived (Content-Length
/// framing) or the server closed.
fn raw(addr: &str, request: &[u8], responses: usize) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while count_responses(&got) < responses {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn count_responses(buf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(buf);
    let mut n = 0;
    let mut rest: &str = &text;
    while let Some((head, after)) = rest.split_once("\r\n\r\n") {
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if after.len() < len {
            break;
        }
        n += 1;
        rest = &after[len..];
    }
    n
}

#[test]
fn json_rpc_health_and_metrics_over_http() {
    if !have("curl") {
        eprintln!("skipped: curl not found");
        return;
    }
    let node = start();
    let url = format!("http://{}/", node.rpc);

    let (code, body) = post(&url, r#"{"jsonrpc":"2.0","id":1,"method":"optimism_version"}"#);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["result"].as_str().unwrap().starts_with("v0.1.0-"), "{body}");

    let (code, body) = post(
        &url,
        r#"[{"jsonrpc":"2.0","id":1,"method":"optimism_syncStatus"},{"jsonrpc":"2.0","method":"optimism_version"},{"jsonrpc":"2.0","id":"x","method":"rpc_modules"}]"#,
    );
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{body}");
    assert_eq!(v[0]["error"]["code"], -32601);
    assert_eq!(v[0]["error"]["message"], "the method optimism_syncStatus does not exist/is not available");
    assert_eq!(v[1]["id"], "x");
    assert!(v[1]["result"]["optimism"].is_string(), "{body}");
    assert!(v[1]["result"].get("admin").is_none());

    let (code, body) = post(&url, r#"{"jsonrpc":"2.0","id":1,"method":"admin_sequencerActive"}"#);
    assert_eq!(code, 200);
    assert!(body.contains("-32601"), "{body}");

    let (code, body) = post(&url, "{\"jsonrpc\":\"2.0\",\"id\":1,");
    assert_eq!(code, 200);
    assert_eq!(
        body.trim_end(),
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#
    );

    let (code, body) = curl(&["--data-binary", "{}", &url]);
    assert_eq!(code, 415, "{body}");

    // Over the 5 MiB body limit: refused before the body is read (curl waits for 100-continue).
    let big = std::env::temp_dir().join(format!("op-lite-rpc-big-{}.json", std::process::id()));
    std::fs::write(&big, vec![b' '; 6 * 1024 * 1024]).unwrap();
    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", big.display()),
        &url,
    ]);
    let _ = std::fs::remove_file(&big);
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("content length too large (6291456>5242880)"), "{body}");

    let (code, body) = curl(&[&format!("http://{}/healthz", node.rpc)]);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["version"].as_str().unwrap().starts_with("v0.1.0-"));
    assert_eq!(curl(&[&format!("http://{}/nope", node.rpc)]).0, 404);
    assert_eq!(curl(&[&url]).0, 200);

    // Still serving after all of the above.
    let (code, _) = post(&url, r#"{"jsonrpc":"2.0","id":2,"method":"optimism_version"}"#);
    assert_eq!(code, 200);

    let (code, text) = curl(&[&format!("http://{}/metrics", node.metrics)]);
    assert_eq!(code, 200);
    for line in [
        "op_node_default_up 1",
        "op_node_default_rpc_server_requests_total{rpc=\"main\",method=\"optimism_version\"} 2",
        "op_node_default_rpc_client_notifications_received_total{rpc=\"main\",method=\"optimism_version\"} 1",
        "op_node_default_rpc_server_responses_total{rpc=\"main\",method=\"unknown\",error=\"rpc_-32601\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert!(text.contains("\nop_node_default_info{version=\"v0.1.0-"));
    assert!(text.contains("\nop_node_default_events_processed{event_type=\"step\"} "));
    if std::path::Path::new("/proc/self/stat").exists() {
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
    }
    promtool_check(&text);
    drop(node);
}

#[test]
fn pipelined_keep_alive_requests_and_garbage_over_a_raw_socket() {
    let node = start();
    let call = |id: u32| {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"optimism_version"}}"#);
        format!(
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let req = format!("{}{}GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", call(1), call(2));
    let out = raw(&node.rpc, req.as_bytes(), 3);
    let first = out.find("\"id\":1").unwrap();
    let second = out.find("\"id\":2").unwrap();
    let health = out.find("{\"version\"").unwrap();
    assert!(first < second && second < health, "{out}");
    assert!(!out.contains("Connection: close"));

    let out = raw(&node.rpc, b"\x16\x03\x01garbage\r\n\r\n", 1);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"));

    // Metrics are served on any path, as op-node's handler does.
    let out = raw(&node.metrics, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    assert!(out.contains("op_node_default_up 1"), "{out}");
    drop(node);
}

#[test]
fn sigint_stops_the_servers() {
    let mut node = start();
    let status = Command::new("kill").args(["-INT", &node.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "node did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    // The reader thread ends (and the channel closes) at the end of stderr.
    let mut log = Vec::new();
    while let Ok(line) = node.log.recv_timeout(Duration::from_secs(5)) {
        log.push(line);
    }
    assert!(log.iter().any(|l| l.contains("rollup node stopped")), "{log:?}");
    assert!(TcpStream::connect(&node.rpc).is_err());
}

#[test]
fn a_busy_port_fails_init_naming_the_part() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(bin())
        .args(crate::support::offline_node_args())
        .args(["--rpc.port", &port])
        .env_remove("OP_NODE_NETWORK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("failed to init the RPC server: failed to bind to address 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn populated_metrics_pass_promtool() {
    let now = op_lite::time::Now::new(Instant::now(), 1_700_000_000_000);
    let mut m = Metrics::new();
    m.record_info("v0.1.0-test \"quoted\"\\");
    m.record_up();
    m.record_pipeline_reset(now);
    m.record_derived_batches("span", now);
    m.record_derived_batches("singular", now);
    m.record_l1_reorg_depth(2);
    m.record_l2_ref("l2_safe", &L2BlockRef::default(), now);
    m.count_sequenced_txs_in_block(5, 1);
    for (method, err) in [("optimism_version", None), ("optimism_syncStatus", Some(-32000))] {
        m.record_rpc_call(&CallRecord {
            method,
            served: true,
            notification: false,
            params_bytes: 10,
            result_bytes: 20,
            error_code: err,
            took: Duration::from_millis(7),
        });
    }
    m.set_process(&ProcStats {
        cpu_seconds: 0.5,
        resident_bytes: 1e6,
        virtual_bytes: 2e6,
        start_time_seconds: 1.7e9,
        open_fds: 8.0,
        max_fds: 1024.0,
    });
    promtool_check(&m.render());
}
