//! The RPC and metrics servers of the real binary on ephemeral ports: every method, batches,
//! errors and the admin gate through curl (a client not written here), against an offline node
//! and against `op-lite devnet` (output roots recomputed from the devnet engine's own blocks,
//! the safe-head store across a crash), health and metrics endpoints (scraped from a running
//! devnet node and checked by `promtool` when it is installed), pipelining over a raw socket,
//! `optimism_outputAtBlock` before Isthmus against a stub engine, and a bounded load test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use op_lite::metrics::{Metrics, ProcStats};
use op_lite::protocol::block_ref::L2BlockRef;
use op_lite::rpc::CallRecord;
use serde_json::{json, Value};

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

use crate::support::{lines, ServedNode as Node};

fn start() -> Node {
    start_with(&crate::support::offline_node_args(), &[])
}

/// Starts a node with `args` plus `extra`, metrics on, both servers on ephemeral ports.
fn start_with(args: &[String], extra: &[&str]) -> Node {
    Node::start(args, extra)
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
        r#"[{"jsonrpc":"2.0","id":1,"method":"opp2p_self"},{"jsonrpc":"2.0","method":"optimism_version"},{"jsonrpc":"2.0","id":"x","method":"rpc_modules"}]"#,
    );
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{body}");
    assert_eq!(v[0]["error"]["code"], -32601);
    // No gossip yet: the p2p namespace is absent, not faked.
    assert_eq!(v[0]["error"]["message"], "the method opp2p_self does not exist/is not available");
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
    let mut buckets = vec![0; op_lite::metrics::catalogue::RPC_BUCKETS.len()];
    buckets[2] = 3;
    m.set_rpc_clients(&[
        op_lite::metrics::RpcClientStats {
            rpc: "l1",
            method: "eth_getBlockByNumber".into(),
            requests: 4,
            duration_buckets: buckets.clone(),
            duration_sum: 0.06,
            duration_count: 3,
            responses: vec![("<nil>".into(), 2), ("rpc_-32000".into(), 1)],
        },
        op_lite::metrics::RpcClientStats {
            rpc: "l1-beacon",
            method: "blobs".into(),
            requests: 3,
            duration_buckets: buckets,
            duration_sum: 0.06,
            duration_count: 3,
            responses: vec![("<nil>".into(), 2), ("http_404".into(), 1)],
        },
    ]);
    promtool_check(&m.render());
}

/// Calls `method` through curl; returns the whole response object.
fn call(url: &str, method: &str, params: &str) -> Value {
    let (code, body) =
        post(url, &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#));
    assert_eq!(code, 200, "{method}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method}: {e}: {body}"))
}

/// The result of a call that must succeed.
fn ok(url: &str, method: &str, params: &str) -> Value {
    let v = call(url, method, params);
    assert!(v.get("error").is_none(), "{method}{params}: {v}");
    v["result"].clone()
}

/// The error of a call that must fail: code and message.
fn err(url: &str, method: &str, params: &str) -> (i64, String) {
    let v = call(url, method, params);
    let e = &v["error"];
    assert!(e.is_object(), "{method}{params} did not fail: {v}");
    (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap().to_string())
}

const NOT_FOUND: i64 = -32601;

/// Methods op-node has whose parts op-lite does not have yet: never faked.
const ABSENT: &[&str] = &["opp2p_self", "opp2p_peers"];

/// Asserts the keys appear in this order in a JSON text (op-node's struct field order).
fn assert_key_order(text: &str, keys: &[&str]) {
    let at: Vec<usize> = keys
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("no {k} in {text}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "keys out of order {keys:?}: {text}");
}

const SYNC_STATUS_KEYS: [&str; 11] = [
    "current_l1",
    "current_l1_finalized",
    "head_l1",
    "safe_l1",
    "finalized_l1",
    "unsafe_l2",
    "safe_l2",
    "finalized_l2",
    "pending_safe_l2",
    "cross_unsafe_l2",
    "local_safe_l2",
];

/// A payload envelope whose block hash does not match its header.
fn bad_hash_envelope() -> Value {
    let header = op_lite::protocol::header::Header { number: 5, ..Default::default() };
    let mut env = op_lite::protocol::payload::ExecutionPayloadEnvelope::from_block(&header, Vec::new(), None);
    env.execution_payload.block_hash = op_lite::protocol::primitives::B256([0xab; 32]);
    serde_json::to_value(env).unwrap()
}

#[test]
fn offline_node_methods_errors_and_the_admin_gate() {
    if !have("curl") {
        eprintln!("skipped: curl not found");
        return;
    }
    let node = start();
    let url = format!("http://{}/", node.rpc);
    let (code, body) = post(&url, r#"{"jsonrpc":"2.0","id":1,"method":"optimism_syncStatus"}"#);
    assert_eq!(code, 200);
    assert_key_order(&body, &SYNC_STATUS_KEYS);
    assert_key_order(&body, &["hash", "number", "parentHash", "timestamp", "l1origin", "sequenceNumber"]);
    let cfg = ok(&url, "optimism_rollupConfig", "[]");
    assert_eq!(cfg["l2_chain_id"], 10);
    assert_eq!(cfg["genesis"]["l2"]["number"], 105_235_063);
    // The engine is unreachable: the deferred call fails with op-node's wording.
    let (code, msg) = err(&url, "optimism_outputAtBlock", r#"["0x10"]"#);
    assert_eq!(code, -32000);
    assert!(msg.starts_with("failed to get L2 block ref with sync status: "), "{msg}");
    let t = "into Go value of type hexutil.Uint64";
    assert_eq!(
        err(&url, "optimism_outputAtBlock", "[16]"),
        (-32602, format!("invalid argument 0: json: cannot unmarshal non-string {t}"))
    );
    assert_eq!(
        err(&url, "optimism_safeHeadAtL1Block", r#"["16"]"#),
        (-32602, format!("invalid argument 0: json: cannot unmarshal hex string without 0x prefix {t}"))
    );
    assert_eq!(
        err(&url, "optimism_outputAtBlock", "[]"),
        (-32602, "missing value for required argument 0".into())
    );
    assert_eq!(
        err(&url, "optimism_syncStatus", "[1]"),
        (-32602, "too many arguments, want at most 0".into())
    );
    assert_eq!(
        err(&url, "optimism_safeHeadAtL1Block", r#"["0x1"]"#),
        (-32000, "failed to get safe head at l1 block 0x1: safe head database not enabled".into())
    );
    // A batch answers in order around its deferred calls; notifications get nothing.
    let (code, body) = post(
        &url,
        r#"[{"jsonrpc":"2.0","id":1,"method":"optimism_outputAtBlock","params":["0x1"]},
            {"jsonrpc":"2.0","id":2,"method":"optimism_version"},
            {"jsonrpc":"2.0","method":"optimism_outputAtBlock","params":["0x2"]},
            {"jsonrpc":"2.0","id":3,"method":"optimism_outputAtBlock","params":[3]},
            {"jsonrpc":"2.0","id":4,"method":"optimism_outputAtBlock","params":["0x4"]}]"#,
    );
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<i64> = v.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4], "{body}");
    assert_eq!(v[0]["error"]["code"], -32000);
    assert!(v[1]["result"].is_string());
    assert_eq!(v[2]["error"]["code"], -32602);
    assert_eq!(v[3]["error"]["code"], -32000);
    // Admin off: the namespace is absent.
    let modules = ok(&url, "rpc_modules", "[]");
    assert!(modules.get("admin").is_none() && modules.get("opp2p").is_none(), "{modules}");
    assert_eq!(modules["optimism"], "1.0");
    for m in [
        "admin_resetDerivationPipeline",
        "admin_setLogLevel",
        "admin_postUnsafePayload",
        "admin_startSequencer",
        "admin_sequencerActive",
    ]
    .iter()
    .chain(ABSENT)
    {
        assert_eq!(err(&url, m, "[]").0, NOT_FOUND, "{m}");
    }
    drop(node);

    let node = start_with(&crate::support::offline_node_args(), &["--rpc.enable-admin"]);
    let url = format!("http://{}/", node.rpc);
    assert_eq!(ok(&url, "rpc_modules", "[]")["admin"], "1.0");
    assert_eq!(ok(&url, "admin_setLogLevel", r#"["DEBUG"]"#), Value::Null);
    assert_eq!(err(&url, "admin_setLogLevel", r#"["loud"]"#), (-32000, "unknown level: loud".into()));
    assert_eq!(ok(&url, "admin_setLogLevel", r#"["info"]"#), Value::Null);
    assert_eq!(ok(&url, "admin_resetDerivationPipeline", "[]"), Value::Null);
    let (code, msg) = err(&url, "admin_postUnsafePayload", &format!("[{}]", bad_hash_envelope()));
    assert_eq!(code, -32000);
    assert!(msg.starts_with("payload has bad block hash: 0xabab"), "{msg}");
    assert!(msg.contains(", actual block hash is: 0x"), "{msg}");
    assert_eq!(err(&url, "admin_postUnsafePayload", r#"["0x00"]"#).0, -32602);
    // Without --sequencer.enabled: op-node's disabled sequencer.
    assert_eq!(ok(&url, "admin_sequencerActive", "[]"), Value::Bool(false));
    let zero = format!(r#"["0x{}"]"#, "00".repeat(32));
    assert_eq!(err(&url, "admin_startSequencer", &zero), (-32000, "sequencer is not enabled".into()));
    assert_eq!(err(&url, "admin_stopSequencer", "[]"), (-32000, "sequencer is not enabled".into()));
    // Gossip is not implemented: its methods are absent even with admin.
    for m in ABSENT {
        assert_eq!(err(&url, m, "[]").0, NOT_FOUND, "{m}");
    }
    drop(node);
}

#[test]
fn sequencer_admin_state_persists_across_restarts() {
    if !have("curl") {
        eprintln!("skipped: curl not found");
        return;
    }
    let dir = std::env::temp_dir().join(format!("op-lite-admin-state-rpc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("admin.json");
    let state_arg = state.to_str().unwrap();
    let seq = ["--rpc.enable-admin", "--sequencer.enabled", "--rpc.admin-state", state_arg];
    let node =
        start_with(&crate::support::offline_node_args(), &[&seq[..], &["--sequencer.stopped"]].concat());
    let url = format!("http://{}/", node.rpc);
    assert_eq!(ok(&url, "admin_sequencerActive", "[]"), Value::Bool(false));
    // The initial state is persisted, as op-node does.
    assert_eq!(std::fs::read_to_string(&state).unwrap(), r#"{"sequencerStarted":false}"#);
    // The engine is unreachable, so the head to start on is unknown.
    let zero = format!(r#"["0x{}"]"#, "00".repeat(32));
    let (code, msg) = err(&url, "admin_startSequencer", &zero);
    assert_eq!(code, -32000);
    assert!(msg.starts_with("no prestate, cannot determine if sequencer start at 0x00"), "{msg}");
    assert_eq!(err(&url, "admin_stopSequencer", "[]"), (-32000, "sequencer not running".into()));
    assert_eq!(err(&url, "admin_startSequencer", "[]").0, -32602);
    drop(node);

    // A persisted "started" wins over --sequencer.stopped.
    std::fs::write(&state, r#"{"sequencerStarted":true}"#).unwrap();
    let node =
        start_with(&crate::support::offline_node_args(), &[&seq[..], &["--sequencer.stopped"]].concat());
    let url = format!("http://{}/", node.rpc);
    assert_eq!(ok(&url, "admin_sequencerActive", "[]"), Value::Bool(true));
    let stopped = ok(&url, "admin_stopSequencer", "[]");
    assert!(stopped.as_str().is_some_and(|h| h.len() == 66), "{stopped}");
    assert_eq!(ok(&url, "admin_sequencerActive", "[]"), Value::Bool(false));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), r#"{"sequencerStarted":false}"#);
    assert_eq!(ok(&url, "admin_setRecoverMode", "[true]"), Value::Null);
    drop(node);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_at_block_before_isthmus_proves_the_message_passer() {
    use crate::stub_http::{StubRequest, StubResponse, StubServer};
    use op_lite::io::upstream::EngineClient;
    use op_lite::protocol::header::Header;
    use op_lite::protocol::primitives::{keccak256, B256, U256};
    use op_lite::protocol::proof::{SnapshotAccount, StateSnapshot};
    use op_lite::rpc::deferred::{RpcJobOutput, L2_TO_L1_MESSAGE_PASSER};
    use std::sync::Arc;

    // A genesis-numbered block (its ref needs no L1-info deposit) of OP Mainnet, before Isthmus,
    // whose state holds the message passer with two sent-message slots.
    let slots = [(U256::from_u64(1), U256::from_u64(1)), (U256::from_u64(0xbeef), U256::from_u64(1))];
    let other = [(U256::from_u64(3), U256::from_u64(9))];
    let state = StateSnapshot {
        accounts: vec![
            SnapshotAccount {
                address: L2_TO_L1_MESSAGE_PASSER,
                nonce: 1,
                balance: U256::ZERO,
                code_hash: keccak256(b"message passer code"),
                storage: &slots,
            },
            SnapshotAccount {
                address: op_lite::protocol::primitives::Address([0x11; 20]),
                nonce: 0,
                balance: U256::from_u64(5),
                code_hash: keccak256(b""),
                storage: &other,
            },
        ],
    };
    let mut cfg = op_lite::config::networks::op_mainnet().rollup;
    let header = Header {
        number: cfg.genesis.l2.number,
        timestamp: cfg.genesis.l2_time,
        state_root: state.root(),
        base_fee_per_gas: Some(1),
        ..Default::default()
    };
    let hash = header.hash();
    cfg.genesis.l2.hash = hash;
    let mut block = serde_json::to_value(&header).unwrap();
    block["hash"] = json!(hash);
    block["transactions"] = json!([]);
    block["uncles"] = json!([]);
    let proof = state.proof(&L2_TO_L1_MESSAGE_PASSER, &[]);
    let storage_root = proof.storage_hash;

    let serve = move |tamper: bool| {
        let block = block.clone();
        let mut proof = serde_json::to_value(&proof).unwrap();
        if tamper {
            proof["storageHash"] = json!(B256([0x55; 32]));
        }
        StubServer::start(move |r: &StubRequest| {
            let req: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let result = match req["method"].as_str() {
                Some("eth_getBlockByNumber") if req["params"][0] == json!(format!("{:#x}", 105_235_063)) => {
                    block.clone()
                }
                Some("eth_getBlockByNumber") => Value::Null,
                Some("eth_getProof") => {
                    assert_eq!(req["params"], json!([L2_TO_L1_MESSAGE_PASSER, [], hash]));
                    proof.clone()
                }
                _ => Value::Null,
            };
            StubResponse::json(200, json!({"jsonrpc": "2.0", "id": req["id"], "result": result}).to_string())
        })
        .unwrap()
    };
    let cfg = Arc::new(cfg);
    let srv = serve(false);
    let mut client = EngineClient::new(&srv.url(), [1; 32], Duration::from_secs(5), cfg.clone());
    let RpcJobOutput::Output { block: got, output } = client.output_at_block(105_235_063).unwrap();
    assert_eq!((got.hash, got.number), (hash, 105_235_063));
    assert_eq!(output.state_root, header.state_root);
    assert_eq!(output.message_passer_storage_root, storage_root);
    assert_eq!(output.block_hash, hash);
    let mut pre = vec![0u8; 32];
    pre.extend_from_slice(&header.state_root.0);
    pre.extend_from_slice(&storage_root.0);
    pre.extend_from_slice(&hash.0);
    assert_eq!(output.root(), keccak256(&pre));
    assert_eq!(
        client.output_at_block(105_235_064).unwrap_err(),
        "failed to get L2 block ref with sync status: not found"
    );
    // A storage root that the account proof does not commit to is refused.
    let srv = serve(true);
    let mut client = EngineClient::new(&srv.url(), [1; 32], Duration::from_secs(5), cfg);
    let e = client.output_at_block(105_235_063).unwrap_err();
    assert!(e.starts_with(&format!("failed to get L2 output at block {hash}:105235063: invalid withdrawal root hash, state root was {}", header.state_root)), "{e}");
}

/// `op-lite devnet` with the admin API, metrics and `extra` flags; killed when dropped.
struct Devnet {
    child: Child,
    rpc: String,
    metrics: String,
    engine: String,
    jwt: [u8; 32],
    jwt_path: std::path::PathBuf,
    /// The node's log (stderr).
    log: mpsc::Receiver<String>,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed devnet leaves its JWT secret behind.
        let _ = std::fs::remove_file(&self.jwt_path);
    }
}

fn start_devnet(extra: &[&str]) -> Devnet {
    let mut child = Command::new(bin())
        .args(["devnet", "--speed", "20", "--rpc.port", "0", "--rpc.enable-admin"])
        .args(["--metrics.enabled", "--metrics.port", "0", "--log.level", "info"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let log = lines(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let left = || deadline.saturating_duration_since(Instant::now());
    let (rpc, engine) = loop {
        let line = out.recv_timeout(left()).expect("devnet did not start");
        if let Some(rest) = line.strip_prefix("devnet: L1 and beacon at ") {
            let engine = rest.split("engine stand-in at ").nth(1).unwrap().split(',').next().unwrap();
            let rpc = rest.split("node RPC at ").nth(1).unwrap();
            break (rpc.trim().to_string(), engine.trim().to_string());
        }
    };
    let metrics = loop {
        let line = log.recv_timeout(left()).expect("no metrics server");
        if let Some((_, a)) = line.split_once("started metrics server addr=") {
            break a.trim().to_string();
        }
    };
    let jwt_path = std::env::temp_dir().join(format!("op-lite-devnet-{}", child.id())).join("jwt.hex");
    let jwt = op_lite::io::jwt::load_or_create_secret(&jwt_path).unwrap();
    Devnet { child, rpc: format!("{rpc}/"), metrics, engine, jwt, jwt_path, log }
}

impl Devnet {
    /// Calls the devnet's engine stand-in (behind JWT) through curl.
    fn engine(&self, method: &str, params: Value) -> Value {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let auth = format!("Authorization: Bearer {}", op_lite::protocol::jwt::token(&self.jwt, secs));
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let (code, text) = curl(&[
            "-H",
            "Content-Type: application/json",
            "-H",
            &auth,
            "--data-binary",
            &body,
            &self.engine,
        ]);
        assert_eq!(code, 200, "{text}");
        serde_json::from_str::<Value>(&text).unwrap()["result"].clone()
    }

    /// Polls the sync status until `done` holds.
    fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = ok(&self.rpc, "optimism_syncStatus", "[]");
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn hash(v: &Value) -> op_lite::protocol::primitives::B256 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a hash: {v}"))
}

/// The value of the first sample line starting with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series}\n{text}"))
}

#[test]
fn every_method_against_the_devnet_and_the_safe_head_store_across_a_crash() {
    if !have("curl") {
        eprintln!("skipped: curl not found");
        return;
    }
    let dir = std::env::temp_dir().join(format!("op-lite-rpc-devnet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("safe.db");
    let mut dev = start_devnet(&["--safedb.path", db.to_str().unwrap()]);
    let url = dev.rpc.clone();
    let status = dev.wait_for("safe head 12", |s| num(&s["safe_l2"]["number"]) >= 12);
    let cfg = ok(&url, "optimism_rollupConfig", "[]");
    assert_eq!(cfg["isthmus_time"], 0, "the devnet runs Isthmus from genesis: {cfg}");

    // The output root, recomputed from the engine's own block.
    let n = num(&status["safe_l2"]["number"]) - 2;
    let (code, text) = post(
        &url,
        &format!(r#"{{"jsonrpc":"2.0","id":7,"method":"optimism_outputAtBlock","params":["{n:#x}"]}}"#),
    );
    assert_eq!(code, 200);
    assert_key_order(
        &text,
        &["version", "outputRoot", "blockRef", "withdrawalStorageRoot", "stateRoot", "syncStatus"],
    );
    let out = serde_json::from_str::<Value>(&text).unwrap()["result"].clone();
    let block = dev.engine("eth_getBlockByNumber", json!([format!("{n:#x}"), false]));
    assert_eq!(num(&out["blockRef"]["number"]), n);
    assert_eq!(out["blockRef"]["hash"], block["hash"]);
    assert_eq!(out["blockRef"]["parentHash"], block["parentHash"]);
    assert_eq!(out["stateRoot"], block["stateRoot"]);
    assert_eq!(out["withdrawalStorageRoot"], block["withdrawalsRoot"]);
    assert_eq!(hash(&out["version"]), op_lite::protocol::primitives::B256::ZERO);
    let mut pre = [0u8; 128];
    pre[32..64].copy_from_slice(&hash(&block["stateRoot"]).0);
    pre[64..96].copy_from_slice(&hash(&block["withdrawalsRoot"]).0);
    pre[96..].copy_from_slice(&hash(&block["hash"]).0);
    assert_eq!(hash(&out["outputRoot"]), op_lite::protocol::primitives::keccak256(pre));
    assert!(num(&out["syncStatus"]["safe_l2"]["number"]) >= n);

    // A batch: two deferred calls around an immediate one, a failing one, a notification.
    let body = format!(
        r#"[{{"jsonrpc":"2.0","id":"a","method":"optimism_outputAtBlock","params":["{:#x}"]}},
            {{"jsonrpc":"2.0","id":"b","method":"optimism_version"}},
            {{"jsonrpc":"2.0","id":"c","method":"optimism_outputAtBlock","params":["0xffffff"]}},
            {{"jsonrpc":"2.0","method":"optimism_syncStatus"}},
            {{"jsonrpc":"2.0","id":"d","method":"optimism_outputAtBlock","params":["{n:#x}"]}}]"#,
        n - 1
    );
    let (_, text) = post(&url, &body);
    let v: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"], "{text}");
    assert_eq!(num(&v[0]["result"]["blockRef"]["number"]), n - 1);
    assert_eq!(v[2]["error"]["message"], "failed to get L2 block ref with sync status: not found");
    assert_eq!(v[3]["result"]["outputRoot"], out["outputRoot"]);

    // Safe heads by L1 block: genesis from L1 block 0 on, never decreasing.
    let l1 = num(&status["current_l1"]["number"]);
    let at = |k: u64| ok(&url, "optimism_safeHeadAtL1Block", &format!(r#"["{k:#x}"]"#));
    let first = at(0);
    assert_eq!(first["l1Block"]["number"], 0);
    assert_eq!(first["safeHead"], cfg["genesis"]["l2"], "{first}");
    let mut last = 0;
    for k in 1..=l1 {
        let e = at(k);
        assert!(num(&e["l1Block"]["number"]) <= k, "{e}");
        let safe = num(&e["safeHead"]["number"]);
        assert!(safe >= last, "safe head went back at L1 {k}: {e}");
        last = safe;
    }
    assert!(last > 0 && last <= num(&status["safe_l2"]["number"]) + 20);

    // Admin: the live log level.
    assert_eq!(ok(&url, "admin_setLogLevel", r#"["debug"]"#), Value::Null);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dev.log.recv_timeout(Duration::from_secs(1)).is_ok_and(|l| l.starts_with("DEBUG")) {
        assert!(Instant::now() < deadline, "no debug output after admin_setLogLevel");
    }
    assert_eq!(ok(&url, "admin_setLogLevel", r#"["info"]"#), Value::Null);

    // Admin: an unsafe payload the node already has, as op-conductor would post it.
    let unsafe_n = num(&ok(&url, "optimism_syncStatus", "[]")["unsafe_l2"]["number"]);
    let full = dev.engine("eth_getBlockByNumber", json!([format!("{unsafe_n:#x}"), true]));
    let rpc_block = op_lite::protocol::block::RpcBlock::from_value(full).unwrap().unwrap();
    let header = rpc_block.verified_header(false).unwrap();
    let txs = rpc_block.verified_transactions(false).unwrap();
    let raw_txs = txs.into_iter().map(|t| op_lite::protocol::primitives::Bytes(t.into_encoded())).collect();
    let mut env =
        op_lite::protocol::payload::ExecutionPayloadEnvelope::from_block(&header, raw_txs, Some(Vec::new()));
    if env.check_block_hash().is_err() {
        // Isthmus blocks commit to their withdrawals root even when it is the empty root.
        env.execution_payload.withdrawals_root = header.withdrawals_root;
    }
    env.check_block_hash().unwrap();
    let posted = serde_json::to_string(&env).unwrap();
    assert_eq!(ok(&url, "admin_postUnsafePayload", &format!("[{posted}]")), Value::Null);
    assert_eq!(err(&url, "admin_postUnsafePayload", &format!("[{}]", bad_hash_envelope())).0, -32000);

    // Admin: a manual pipeline reset; derivation carries on.
    let before = num(&ok(&url, "optimism_syncStatus", "[]")["safe_l2"]["number"]);
    assert_eq!(ok(&url, "admin_resetDerivationPipeline", "[]"), Value::Null);
    let status = dev.wait_for("progress after the reset", |s| num(&s["safe_l2"]["number"]) >= before + 6);
    for m in ABSENT {
        assert_eq!(err(&url, m, "[]").0, NOT_FOUND, "{m}");
    }

    // Metrics from the live node, under op-node's names.
    let (code, text) = curl(&[&format!("http://{}/metrics", dev.metrics)]);
    assert_eq!(code, 200);
    for series in [
        "op_node_default_up",
        "op_node_default_refs_number{layer=\"l2\",type=\"l2_safe\"}",
        "op_node_default_refs_number{layer=\"l2\",type=\"l2_unsafe\"}",
        "op_node_default_refs_number{layer=\"l1\",type=\"l1_head\"}",
        "op_node_default_refs_number{layer=\"l1\",type=\"l1_derived\"}",
        "op_node_default_refs_time{layer=\"l2\",type=\"l2_finalized\"}",
        "op_node_default_pipeline_resets_total",
        "op_node_default_derived_batches_total{type=\"span\"}",
        "op_node_default_frame_added_total",
        "op_node_default_unsafe_payloads_total",
        "op_node_default_rpc_server_requests_total{rpc=\"main\",method=\"optimism_outputAtBlock\"}",
        "op_node_default_rpc_server_request_duration_seconds_count{rpc=\"main\",method=\"optimism_outputAtBlock\"}",
        "op_node_default_events_processed{event_type=\"rpc-job-done\"}",
        "op_node_default_events_emitted{event_type=\"safe-derived\"}",
        "op_node_default_events_process_time{event_type=\"forkchoice-update\"}",
        "op_lite_receipts_fetches_skipped_by_bloom_total",
        "op_lite_chain_data_cache_bytes",
        "op_node_default_rpc_client_requests_total{rpc=\"l1\",method=\"eth_getBlockByNumber\"}",
        "op_node_default_rpc_client_request_duration_seconds_count{rpc=\"l1\",method=\"eth_getBlockByNumber\"}",
        "op_node_default_rpc_client_responses_total{rpc=\"l1\",method=\"eth_getBlockByNumber\",error=\"<nil>\"}",
    ] {
        assert!(sample(&text, series) > 0.0, "{series} is zero\n{text}");
    }
    assert!(sample(&text, "op_node_default_pipeline_resets_total") >= 2.0, "manual plus initial reset");
    assert!(
        text.contains("\nop_node_default_rpc_client_requests_total{rpc=\"engine-api\",method=\"engine_"),
        "{text}"
    );
    assert!(sample(&text, "op_node_default_refs_latency{layer=\"l2\",type=\"l2_unsafe\"}").is_finite());
    assert_eq!(sample(&text, "op_node_default_p2p_peer_count"), 0.0);
    assert!(text.contains("\n# TYPE op_node_default_l1_reorg_depth histogram\n"));
    if std::path::Path::new("/proc/self/stat").exists() {
        assert!(sample(&text, "process_resident_memory_bytes") > 0.0);
    }
    promtool_check(&text);

    // The safe-head store across a crash: answers recorded before SIGKILL come back from an
    // offline node reading the same file with the same chain's config.
    let settled = num(&status["current_l1"]["number"]).saturating_sub(3);
    let before: Vec<Value> = (0..=settled).map(at).collect();
    assert!(Command::new("kill").args(["-KILL", &dev.child.id().to_string()]).status().unwrap().success());
    let _ = dev.child.wait();
    drop(dev);
    let rollup = dir.join("rollup.json");
    std::fs::write(&rollup, cfg.to_string()).unwrap();
    let jwt = dir.join("jwt.hex");
    let args: Vec<String> = [
        "--rollup.config",
        rollup.to_str().unwrap(),
        "--p2p.disable",
        "--l1",
        "http://127.0.0.1:9",
        "--l2",
        "http://127.0.0.1:9",
        "--l2.jwt-secret",
        jwt.to_str().unwrap(),
        "--l1.beacon.ignore",
        "--safedb.path",
        db.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let node = start_with(&args, &[]);
    let url = format!("http://{}/", node.rpc);
    for (k, want) in before.iter().enumerate() {
        assert_eq!(&ok(&url, "optimism_safeHeadAtL1Block", &format!(r#"["{k:#x}"]"#)), want, "L1 block {k}");
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads one HTTP response from `s`, keeping extra bytes in `buf`; returns the status line and
/// the body.
fn read_one(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let (head, body) = crate::support::read_response(s, buf)?;
    Some((head.lines().next().unwrap_or("").to_string(), body))
}

/// The requests of the load test, by index: what to send and how to check the answer.
fn load_request(id: u64) -> (String, fn(&Value) -> bool) {
    match id % 10 {
        0..=3 => (format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"optimism_version"}}"#), |v| {
            v["result"].as_str().is_some_and(|s| s.starts_with("v0.1.0-"))
        }),
        4..=6 => (format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"optimism_syncStatus"}}"#), |v| {
            v["result"]["local_safe_l2"]["number"].is_u64()
        }),
        7 => (format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"optimism_rollupConfig"}}"#), |v| {
            v["result"]["l2_chain_id"] == 10
        }),
        8 => (
            format!(
                r#"[{{"jsonrpc":"2.0","id":{id},"method":"rpc_modules"}},{{"jsonrpc":"2.0","id":{id},"method":"nope_x"}}]"#
            ),
            |v| v[0]["result"]["optimism"] == "1.0" && v[1]["error"]["code"] == -32601,
        ),
        // Deferred: the engine is unreachable, so the RPC worker fails it quickly.
        _ => (
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"optimism_outputAtBlock","params":["0x1"]}}"#),
            |v| v["error"]["message"].as_str().is_some_and(|m| m.starts_with("failed to get L2 block ref")),
        ),
    }
}

/// Peak resident set size of a process, from `/proc/<pid>/status`.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

#[test]
fn bounded_load_with_a_slowloris_and_an_oversized_body() {
    const CONNS: u64 = 8;
    const PER_CONN: u64 = 1250;
    const WINDOW: u64 = 16;
    let node = start();
    let addr = node.rpc.clone();

    // A slowloris client: a header byte every 300 ms, never finishing its request.
    let slow_addr = addr.clone();
    let slowloris = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&slow_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let t0 = Instant::now();
        s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\n").unwrap();
        let mut b = [0u8; 256];
        loop {
            if t0.elapsed() > Duration::from_secs(15) {
                return None;
            }
            match s.read(&mut b) {
                Ok(0) => return Some(t0.elapsed()),
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Some(t0.elapsed()),
            }
            if s.write_all(b"X").is_err() {
                return Some(t0.elapsed());
            }
        }
    });

    // An oversized body is refused from its header, before any of it is read.
    let big = raw(
        &addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 6291456\r\n\r\n",
        1,
    );
    assert!(big.starts_with("HTTP/1.1 413 "), "{big}");

    let t0 = Instant::now();
    let clients: Vec<_> = (0..CONNS)
        .map(|c| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = Vec::new();
                let mut good = 0u64;
                let ids: Vec<u64> = (0..PER_CONN).map(|i| c * 1_000_000 + i).collect();
                for window in ids.chunks(WINDOW as usize) {
                    let mut out = Vec::new();
                    for id in window {
                        let (body, _) = load_request(*id);
                        out.extend_from_slice(
                            format!(
                                "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        );
                    }
                    s.write_all(&out).unwrap();
                    for id in window {
                        let (status, body) = read_one(&mut s, &mut buf).expect("connection closed");
                        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
                        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
                        let first = if v.is_array() { &v[0] } else { &v };
                        assert_eq!(first["id"], *id, "answers out of order: {body}");
                        let (_, check) = load_request(*id);
                        assert!(check(&v), "wrong answer to {id}: {body}");
                        good += 1;
                    }
                }
                good
            })
        })
        .collect();
    let answered: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let took = t0.elapsed();
    assert_eq!(answered, CONNS * PER_CONN);
    let rss = peak_rss_kb(node.child.id());
    eprintln!(
        "load: {answered} requests over {CONNS} connections in {took:.2?}: {:.0} requests/s; node peak RSS {}",
        answered as f64 / took.as_secs_f64(),
        rss.map_or("unknown".into(), |kb| format!("{kb} kB"))
    );
    // The slowloris never finishes its head: cut at the header deadline (5 s from its first
    // byte), no later.
    let cut = slowloris.join().unwrap().expect("slowloris connection never closed");
    assert!(cut >= Duration::from_secs(4) && cut < Duration::from_secs(8), "slowloris closed after {cut:?}");
    // Still serving.
    let ok = raw(&addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
    drop(node);
}

/// Two nodes with P2P on loopback: `opp2p_*` connect them, list, block and unblock peers.
#[test]
fn opp2p_methods_connect_list_and_block_peers() {
    if !have("curl") {
        eprintln!("skipped: curl not found");
        return;
    }
    let dir = std::env::temp_dir().join(format!("op-lite-opp2p-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key_a = dir.join("a.key");
    // op-node's key file format: the secret in hex; its peer id is what `p2p priv2id` prints.
    std::fs::write(&key_a, "53DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB").unwrap();
    let id_a = {
        let out =
            Command::new(bin()).args(["p2p", "priv2id", "--file", key_a.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert!(id_a.starts_with("16Uiu2"), "{id_a}");
    let p2p_args = |key: &std::path::Path| -> Vec<String> {
        crate::support::offline_node_args()
            .into_iter()
            .filter(|a| a != "--p2p.disable")
            .chain(
                [
                    "--p2p.listen.ip",
                    "127.0.0.1",
                    "--p2p.listen.tcp",
                    "0",
                    "--p2p.priv.path",
                    key.to_str().unwrap(),
                ]
                .map(String::from),
            )
            .collect()
    };
    let a = start_with(&p2p_args(&key_a), &[]);
    let key_b = dir.join("b.key");
    let b = start_with(&p2p_args(&key_b), &[]);
    assert!(std::fs::read_to_string(&key_b).unwrap().len() == 64, "the key file was created");
    let (ua, ub) = (format!("http://{}/", a.rpc), format!("http://{}/", b.rpc));
    let me = ok(&ua, "opp2p_self", "[]");
    assert_eq!(me["peerID"], id_a.as_str());
    let addr_a = me["addresses"][0].as_str().unwrap().to_string();
    assert!(addr_a.starts_with("/ip4/127.0.0.1/tcp/") && addr_a.ends_with(&id_a), "{addr_a}");
    assert_eq!(ok(&ub, "opp2p_peers", "[true]")["totalConnected"], 0);
    // b dials a; both see each other.
    assert_eq!(ok(&ub, "opp2p_connectPeer", &format!("[\"{addr_a}\"]")), Value::Null);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok(&ua, "opp2p_peers", "[true]")["totalConnected"] != 1 {
        assert!(Instant::now() < deadline, "no connection");
        std::thread::sleep(Duration::from_millis(50));
    }
    let id_b = ok(&ub, "opp2p_self", "[]")["peerID"].as_str().unwrap().to_string();
    let dump = ok(&ua, "opp2p_peers", "[true]");
    let info = &dump["peers"][&id_b];
    assert_eq!(info["direction"], 1, "inbound at a: {dump}");
    assert_eq!(info["chainID"], 10);
    let stats = ok(&ua, "opp2p_peerStats", "[]");
    assert_eq!(stats["connected"], 1);
    // a blocks b: disconnected, listed, and b cannot come back until unblocked.
    assert_eq!(ok(&ua, "opp2p_blockPeer", &format!("[\"{id_b}\"]")), Value::Null);
    assert_eq!(ok(&ua, "opp2p_listBlockedPeers", "[]"), serde_json::json!([id_b]));
    assert_eq!(ok(&ua, "opp2p_peers", "[true]")["totalConnected"], 0);
    let (code, msg) = err(&ua, "opp2p_connectPeer", r#"["/ip4/1.2.3.4/tcp/1"]"#);
    assert_eq!(code, -32000);
    assert!(msg.contains("no /p2p/<peer id>"), "{msg}");
    assert_eq!(err(&ua, "opp2p_blockPeer", r#"["not-a-peer"]"#).0, -32602);
    assert_eq!(ok(&ua, "opp2p_unblockPeer", &format!("[\"{id_b}\"]")), Value::Null);
    assert_eq!(ok(&ua, "opp2p_listBlockedPeers", "[]"), serde_json::json!([]));
    drop((a, b));
    std::fs::remove_dir_all(&dir).unwrap();
}
