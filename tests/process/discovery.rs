//! discv5 between op-lite processes on loopback: four OP Mainnet nodes that know only the
//! first one's record find each other and hold gossip connections to each other; a Base node
//! that knows the same record is discovered but never dialled (op-node's filter: the `opstack`
//! entry's chain id); a restarted node finds its peers again from its peer store, its record's
//! sequence number kept. The nodes have no L1 or engine (gossip and discovery need neither).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{offline_node_args, ServedNode};

fn rpc(node: &ServedNode, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = std::net::TcpStream::connect(node.rpc.trim_start_matches("http://")).unwrap();
    use std::io::Write;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    let (_, body) = crate::support::read_response(&mut s, &mut buf).unwrap();
    serde_json::from_str::<Value>(&body).unwrap()["result"].clone()
}

/// A node with P2P on loopback, discovery on, its files in `dir`.
fn node(network: &str, dir: &std::path::Path, bootnode: Option<&str>) -> ServedNode {
    let mut args: Vec<String> = offline_node_args().into_iter().filter(|a| a != "--p2p.disable").collect();
    if let Some(i) = args.iter().position(|a| a == "op-mainnet") {
        args[i] = network.to_string();
    }
    let p = |s: &str| dir.join(s).to_string_lossy().into_owned();
    let mut extra = vec![
        "--p2p.listen.ip".to_string(),
        "127.0.0.1".into(),
        "--p2p.listen.tcp".into(),
        "0".into(),
        "--p2p.priv.path".into(),
        p("p2p.key"),
        "--p2p.discovery.path".into(),
        p("discovery"),
        "--p2p.peers.lo".into(),
        "8".into(),
        "--log.level".into(),
        "debug".into(),
        "--p2p.bootnodes".into(),
    ];
    // No bootnode of ours: an empty list means op-node's public ones, so EIP-778's example
    // record (127.0.0.1:30303, where nobody answers) stands in.
    extra.push(bootnode.unwrap_or("enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8").into());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    ServedNode::start(&args, &[])
}

fn self_info(n: &ServedNode) -> (String, String) {
    let v = rpc(n, "opp2p_self", json!([]));
    (v["peerID"].as_str().unwrap().to_string(), v["ENR"].as_str().unwrap().to_string())
}

fn peers(n: &ServedNode) -> Vec<String> {
    let v = rpc(n, "opp2p_peers", json!([true]));
    v["peers"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn nodes_knowing_one_record_find_each_other_and_skip_other_chains() {
    let base = std::env::temp_dir().join(format!("op-lite-discv5-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = |i: usize| {
        let d = base.join(i.to_string());
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let first = node("op-mainnet", &dir(0), None);
    let (first_id, first_enr) = self_info(&first);
    assert!(first_enr.starts_with("enr:"), "opp2p_self reports the record: {first_enr}");
    let decoded = op_lite::p2p::discovery::enr::Enr::from_text(&first_enr).unwrap();
    assert!(decoded.signature_valid);
    assert_eq!(decoded.opstack().unwrap().map(|o| o.chain_id), Some(10));
    assert_eq!(decoded.ip(), Some(std::net::Ipv4Addr::LOCALHOST));
    let mut nodes = vec![first];
    for i in 1..4 {
        nodes.push(node("op-mainnet", &dir(i), Some(&first_enr)));
    }
    let other = node("base-mainnet", &dir(9), Some(&first_enr));
    let (other_id, _) = self_info(&other);
    let ids: Vec<String> = nodes.iter().map(|n| self_info(n).0).collect();
    assert_eq!(ids[0], first_id);
    // Within 60 s every OP Mainnet node holds gossip connections to the three others.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all: Vec<Vec<String>> = nodes.iter().map(peers).collect();
        let done = all
            .iter()
            .enumerate()
            .all(|(i, p)| ids.iter().enumerate().all(|(j, id)| i == j || p.contains(id)));
        if done {
            for p in &all {
                assert!(!p.contains(&other_id), "the Base node is never dialled: {p:?}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "not connected in 60 s: {all:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // The Base node found them by discovery too, but dialled none of them: it has no peers
    // of its chain, and the others never dial it.
    std::thread::sleep(Duration::from_secs(6));
    assert!(peers(&other).is_empty(), "{:?}", peers(&other));
    for n in &nodes {
        assert!(!peers(n).contains(&other_id));
    }
    // A node restarted (its peer store kept) finds its peers again without the bootnode: the
    // records it stored are asked for their current records.
    let restarted_dir = dir(3);
    let mut stopping = nodes.pop().unwrap();
    // A graceful stop (SIGTERM) writes the peer store.
    std::process::Command::new("kill").args(["-TERM", &stopping.child.id().to_string()]).status().unwrap();
    assert!(stopping.child.wait().unwrap().success());
    let seq_before = op_lite::p2p::discovery::enr::Enr::from_text(
        std::fs::read_to_string(restarted_dir.join("discovery/records.txt")).unwrap().lines().next().unwrap(),
    )
    .unwrap()
    .seq;
    let again = node("op-mainnet", &restarted_dir, None);
    let (_, enr) = self_info(&again);
    let rec = op_lite::p2p::discovery::enr::Enr::from_text(&enr).unwrap();
    // A new TCP and UDP port (ephemeral): the record changed, its sequence number went up.
    assert_eq!(rec.seq, seq_before + 1);
    let deadline = Instant::now() + Duration::from_secs(40);
    while peers(&again).len() < 3 {
        assert!(Instant::now() < deadline, "restarted node has {:?}", peers(&again));
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(again);
    drop(nodes);
    drop(other);
    let _ = std::fs::remove_dir_all(&base);
}
