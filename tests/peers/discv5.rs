//! Interop with sigp's discv5 (`tests/discv5-peer`, the implementation Lighthouse and reth run)
//! against op-lite processes on loopback. Checked: op-lite, given the sigp peer as its bootnode,
//! completes a handshake with it (op-lite initiates) and answers its PING and FINDNODE (distance
//! 0: op-lite's own record); two OP Mainnet op-lite nodes whose only bootnode is the sigp peer
//! find each other through its NODES answers and connect over libp2p, while the sigp peer's own
//! record (an `opstack` entry for chain 10, a TCP port nobody listens on) breaks nothing; a sigp
//! peer that learnt of an op-lite node through a lookup initiates a handshake to it. The nodes
//! have no L1 or engine (discovery and gossip need neither).

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use op_lite::p2p::discovery::enr::Enr;
use op_lite::p2p::discovery::table::log2_distance;
use op_lite::protocol::primitives::{from_hex_fixed, B256};

use crate::support::{discv5_peer, offline_node_args, rpc, ServedNode};

struct SigpPeer {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Value>,
    /// Every event read so far, for failure messages.
    seen: Vec<Value>,
    enr: String,
    node_id: String,
}

impl SigpPeer {
    fn spawn(exe: &std::path::Path, args: &[&str]) -> SigpPeer {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let events =
            crate::support::parsed_lines(child.stdout.take().unwrap(), |l| serde_json::from_str(l).ok());
        let mut p =
            SigpPeer { child, stdin, events, seen: Vec::new(), enr: String::new(), node_id: String::new() };
        let l = p.wait(30, "listening", |v| v["event"] == "listening");
        p.enr = l["enr"].as_str().unwrap().to_string();
        p.node_id = l["nodeId"].as_str().unwrap().to_string();
        p
    }

    /// The first event (already seen or new) matching `pred` within `secs`.
    fn wait(&mut self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        self.next(secs, what, pred)
    }

    /// The first new event matching `pred` within `secs`.
    fn next(&mut self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("sigp peer: no {what} within {secs} s; its events: {:#?}", self.seen),
            }
        }
    }

    /// Sends a command and waits for the answer `event` about it.
    fn ask(&mut self, cmd: Value, event: &'static str, secs: u64) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        self.next(secs, event, |v| v["event"] == event)
    }
}

impl Drop for SigpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OP Mainnet node with P2P and discovery on loopback, its only bootnode `bootnode`.
fn node(dir: &std::path::Path, bootnode: &str) -> ServedNode {
    let mut args: Vec<String> = offline_node_args().into_iter().filter(|a| a != "--p2p.disable").collect();
    let p = |s: &str| dir.join(s).to_string_lossy().into_owned();
    for a in [
        "--p2p.listen.ip",
        "127.0.0.1",
        "--p2p.listen.tcp",
        "0",
        "--p2p.priv.path",
        &p("p2p.key"),
        "--p2p.discovery.path",
        "memory",
        "--p2p.peers.lo",
        "8",
        "--log.level",
        "debug",
        "--p2p.bootnodes",
        bootnode,
    ] {
        args.push(a.to_string());
    }
    ServedNode::start(&args, &[])
}

/// op-lite's record and its node id as `0x` hex (the sigp peer's spelling).
fn self_record(n: &ServedNode) -> (Enr, String) {
    let v = rpc(n, "opp2p_self", json!([]));
    let enr = Enr::from_text(v["ENR"].as_str().unwrap()).unwrap();
    let id = format!("0x{}", v["nodeID"].as_str().unwrap().trim_start_matches("0x"));
    assert_eq!(id, enr.node_id.to_string(), "opp2p_self: nodeID and ENR agree");
    (enr, id)
}

fn peer_id(n: &ServedNode) -> String {
    rpc(n, "opp2p_self", json!([]))["peerID"].as_str().unwrap().to_string()
}

fn peers(n: &ServedNode) -> Vec<String> {
    let v = rpc(n, "opp2p_peers", json!([true]));
    v["peers"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn ids(enrs: &Value) -> Vec<String> {
    let list = enrs.as_array().cloned().unwrap_or_default();
    list.iter().map(|e| Enr::from_text(e.as_str().unwrap()).unwrap().node_id.to_string()).collect()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("op-lite-sigp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The log2 distance of two node ids (hex).
fn distance(a: &str, b: &str) -> u64 {
    let parse = |s: &str| B256(from_hex_fixed::<32>(s).unwrap());
    u64::from(log2_distance(&parse(a), &parse(b)))
}

#[test]
fn op_lite_handshakes_with_sigp_bootnode_and_answers_ping_and_findnode() {
    let Some(exe) = discv5_peer() else { return };
    let mut sigp = SigpPeer::spawn(&exe, &["--opstack", "10"]);
    let dir = temp_dir("a");
    let n = node(&dir, &sigp.enr);
    let (rec, id) = self_record(&n);
    // op-lite initiates: it asks its bootnode for its record, and the handshake completes.
    let s =
        sigp.wait(30, "session with op-lite", |v| v["event"] == "session_established" && v["nodeId"] == id);
    assert_eq!(Enr::from_text(s["enr"].as_str().unwrap()).unwrap().node_id, rec.node_id);
    // PING over the session: PONG with op-lite's current sequence number.
    let pong = sigp.ask(json!({"cmd": "ping", "enr": rec.to_text()}), "pong", 20);
    assert_eq!(pong["ok"], true, "{pong}");
    assert_eq!(pong["enrSeq"], rec.seq, "{pong}");
    assert_eq!(pong["ip"], "127.0.0.1", "{pong}");
    // FINDNODE distance 0: op-lite's own record.
    let nodes = sigp.ask(json!({"cmd": "find_node", "enr": rec.to_text(), "distances": [0]}), "nodes", 20);
    assert_eq!(nodes["ok"], true, "{nodes}");
    assert_eq!(ids(&nodes["enrs"]), vec![id.clone()], "{nodes}");
    // FINDNODE at the sigp peer's own distance: an answer sigp accepts (its records, if any, at
    // that distance; sigp drops the whole answer when one is not).
    let d = distance(&id, &sigp.node_id);
    let nodes =
        sigp.ask(json!({"cmd": "find_node", "enr": rec.to_text(), "distances": [d, d - 1]}), "nodes", 20);
    assert_eq!(nodes["ok"], true, "{nodes}");
    for other in ids(&nodes["enrs"]) {
        assert!([d, d - 1].contains(&distance(&id, &other)), "{other} is not at {d} or {}", d - 1);
    }
    // A lookup from the sigp peer walks op-lite too, and comes back.
    let lookup = sigp.ask(json!({"cmd": "lookup"}), "lookup", 60);
    assert_eq!(lookup["ok"], true, "{lookup}");
    // op-lite still serves.
    assert_eq!(self_record(&n).1, id);
    drop(n);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn op_lite_nodes_find_each_other_through_a_sigp_bootnode() {
    let Some(exe) = discv5_peer() else { return };
    // A TCP port nobody listens on: the sigp peer passes op-node's filter, so op-lite dials it
    // and fails; that must not stop it from dialling the other op-lite node.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut sigp = SigpPeer::spawn(&exe, &["--opstack", "10", "--tcp", &closed]);
    let (d1, d2) = (temp_dir("b1"), temp_dir("b2"));
    let n1 = node(&d1, &sigp.enr);
    let n2 = node(&d2, &sigp.enr);
    let (p1, p2) = (peer_id(&n1), peer_id(&n2));
    let ((_, id1), (_, id2)) = (self_record(&n1), self_record(&n2));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (peers(&n1), peers(&n2));
        if a.contains(&p2) && b.contains(&p1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not connected through the sigp bootnode in 60 s: {a:?} {b:?}; sigp events: {:#?}",
            sigp.seen
        );
        while let Ok(v) = sigp.events.try_recv() {
            sigp.seen.push(v);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Both op-lite nodes are in the sigp peer's table: they answered it.
    let table = sigp.ask(json!({"cmd": "table"}), "table", 10);
    let in_table = ids(&table["enrs"]);
    assert!(in_table.contains(&id1) && in_table.contains(&id2), "{table}");
    drop((n1, n2));
    let _ = std::fs::remove_dir_all(&d1);
    let _ = std::fs::remove_dir_all(&d2);
}

#[test]
fn sigp_initiates_a_handshake_to_an_op_lite_node_it_learnt_of() {
    let Some(exe) = discv5_peer() else { return };
    let bootnode = SigpPeer::spawn(&exe, &["--opstack", "10"]);
    let dir = temp_dir("c");
    let n = node(&dir, &bootnode.enr);
    let (rec, id) = self_record(&n);
    // A second sigp peer knows only the first; its lookups reach op-lite's record through it.
    let mut walker = SigpPeer::spawn(&exe, &["--bootnode", &bootnode.enr]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let learnt = loop {
        let l = walker.ask(json!({"cmd": "lookup"}), "lookup", 60);
        if let Some(e) = l["enrs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| Enr::from_text(e.as_str().unwrap()).is_ok_and(|e| e.node_id == rec.node_id))
        {
            break e.as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no lookup found op-lite in 60 s; sigp events: {:#?}",
            walker.seen
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // A third one that never talked to op-lite pings the learnt record: it initiates the
    // handshake (random packet, op-lite's WHOAREYOU, its handshake message carrying the PING).
    let mut fresh = SigpPeer::spawn(&exe, &[]);
    let pong = fresh.ask(json!({"cmd": "ping", "enr": learnt}), "pong", 20);
    assert_eq!(pong["ok"], true, "{pong}");
    fresh.wait(10, "session with op-lite", |v| v["event"] == "session_established" && v["nodeId"] == id);
    let nodes = fresh.ask(json!({"cmd": "find_node", "enr": learnt, "distances": [0]}), "nodes", 20);
    assert_eq!(ids(&nodes["enrs"]), vec![id], "{nodes}");
    drop(n);
    let _ = std::fs::remove_dir_all(&dir);
}
