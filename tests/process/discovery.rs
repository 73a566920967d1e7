//! discv5 between op-lite processes on loopback: four OP Mainnet nodes that know only the
//! first one's record find each other and hold gossip connections to each other; a Base node
//! that knows the same record is discovered but never dialled (op-node's filter: the `opstack`
//! entry's chain id); a restarted node finds its peers again from its peer store, its record's
//! sequence number kept; a node listening on 0.0.0.0 learns the address the others see it
//! at. The nodes have no L1 or engine (gossip and discovery need neither).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{offline_node_args, rpc, ServedNode};

/// A node with P2P on loopback, discovery on, its files in `dir`.
fn node(network: &str, dir: &std::path::Path, bootnode: Option<&str>) -> ServedNode {
    node_on("127.0.0.1", network, dir, bootnode)
}

/// The same, listening on `ip`.
fn node_on(ip: &str, network: &str, dir: &std::path::Path, bootnode: Option<&str>) -> ServedNode {
    let mut args: Vec<String> = offline_node_args().into_iter().filter(|a| a != "--p2p.disable").collect();
    if let Some(i) = args.iter().position(|a| a == "op-mainnet") {
        args[i] = network.to_string();
    }
    let p = |s: &str| dir.join(s).to_string_lossy().into_owned();
    let mut extra = vec![
        "--p2p.listen.ip".to_string(),
        ip.into(),
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
    // The discovery metrics say so too: nodes in the table, records passed to dial, handshakes.
    let metric = |n: &ServedNode, name: &str| -> f64 {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(n.metrics.trim_start_matches("http://")).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let (_, body) = crate::support::read_response(&mut s, &mut Vec::new()).unwrap();
        let line = body.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(metric(&nodes[0], "op_lite_discv5_table_nodes ") >= 3.0);
    assert!(metric(&nodes[0], "op_lite_discv5_records_total{outcome=\"dial\"}") >= 3.0);
    assert!(metric(&nodes[0], "op_lite_discv5_packets_total{kind=\"handshake_in\"}") >= 1.0);
    // The Base node found them by discovery too, but dialled none of them: it has no peers
    // of its chain, and the others never dial it.
    std::thread::sleep(Duration::from_secs(6));
    assert!(peers(&other).is_empty(), "{:?}", peers(&other));
    for n in &nodes {
        assert!(!peers(n).contains(&other_id));
    }
    // A node listening on every address (no IP in its record) learns the one the others see
    // it at (their PONGs agree on 127.0.0.1 and its UDP port) and puts it in its record.
    let anywhere = node_on("0.0.0.0", "op-mainnet", &dir(5), Some(&first_enr));
    let initial = op_lite::p2p::discovery::enr::Enr::from_text(&self_info(&anywhere).1).unwrap();
    assert_eq!((initial.ip(), initial.seq), (None, 1));
    let deadline = Instant::now() + Duration::from_secs(40);
    let learnt = loop {
        let e = op_lite::p2p::discovery::enr::Enr::from_text(&self_info(&anywhere).1).unwrap();
        if e.ip().is_some() {
            break e;
        }
        assert!(Instant::now() < deadline, "no address learnt in 40 s: {e:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        (learnt.ip(), learnt.udp(), learnt.seq),
        (Some(std::net::Ipv4Addr::LOCALHOST), initial.udp(), 2)
    );
    assert!(learnt.signature_valid);
    assert_eq!(metric(&anywhere, "op_lite_discv5_address_updates_total "), 1.0);
    drop(anywhere);
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

/// Children killed when the test ends, however it ends.
struct Kids(Vec<std::process::Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The loopback network: the devnet's sequencer and three verifiers on their own engines, all
/// knowing one record only, sigp's discv5 peer's: they find each other through it, each
/// verifier connects to the sequencer and the two others, and their unsafe heads follow the
/// sequencer's blocks, which come only by gossip (hash for hash the sequencer's, ahead of
/// anything derived from L1). An OP Mainnet node knowing the same record is discovered but
/// never dialled.
#[test]
fn gossip_reaches_nodes_that_found_the_sequencer_by_discovery() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let bin = crate::support::bin();
    let mut kids = Kids(Vec::new());
    let (devnet, seq_args, ver_args, dir) = crate::support::serve_only_with_sequencer(30);
    kids.0.push(devnet);
    // Without --p2p.static and --p2p.no-discovery; `set` replaces a flag's value or adds it.
    let edit = |args: &[String], set: &[(&str, String)]| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--p2p.no-discovery" => {}
                "--p2p.static" | "--rpc.port" => {
                    it.next();
                }
                f if set.iter().any(|(k, _)| *k == f) => {
                    it.next();
                }
                _ => v.push(a.clone()),
            }
        }
        for (k, val) in set {
            v.push(k.to_string());
            v.push(val.clone());
        }
        v
    };
    let start = |args: Vec<String>| -> ServedNode { ServedNode::start(&args, &["--log.level", "info"]) };
    let p = |s: &str| dir.join(s).to_string_lossy().into_owned();
    // The one record every node knows: sigp's discv5 peer (an `opstack` entry for the devnet's
    // chain, no TCP port: a discovery node only), else (the peer not built, outside CI) the
    // sequencer's record.
    let mut sigp = crate::support::discv5_peer().map(|exe| {
        let mut c = Command::new(exe)
            .args(["--opstack", &op_lite::devnet::DEVNET_L2_CHAIN_ID.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Its events are read to the end (a closed pipe would end the peer).
        let events = crate::support::lines(c.stdout.take().unwrap());
        let first = events.recv_timeout(Duration::from_secs(30)).unwrap();
        let v: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["event"], "listening", "{first}");
        (c, v["enr"].as_str().unwrap().to_string(), events)
    });
    let inert = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8".to_string();
    let seq_boot = sigp.as_ref().map_or(inert, |(_, e, _)| e.clone());
    let sequencer = start(edit(
        &seq_args,
        &[
            ("--p2p.discovery.path", p("seq-discovery")),
            ("--p2p.bootnodes", seq_boot),
            ("--p2p.listen.tcp", "0".into()),
        ],
    ));
    let (_, seq_enr) = self_info(&sequencer);
    let boot = sigp.as_ref().map_or(seq_enr.clone(), |(_, e, _)| e.clone());
    let _sigp_events = sigp.take().map(|(c, _, events)| {
        kids.0.push(c);
        events
    });
    // A node of another chain (OP Mainnet, no L1 or engine) that knows the same record: found,
    // never dialled.
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = node("op-mainnet", &other_dir, Some(&boot));
    let (other_id, _) = self_info(&other);
    // Engines for two more verifiers (the devnet serves one).
    let mut engines = Vec::new();
    for _ in 0..2 {
        let mut e = Command::new(&bin)
            .args(["devnet", "engine", "--from", dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(e.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let url = first.split("serving at ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        kids.0.push(e);
        engines.push(url);
    }
    let engine_of = |i: usize| -> Option<String> { (i > 0).then(|| engines[i - 1].clone()) };
    let verifiers: Vec<ServedNode> = (0..3)
        .map(|i| {
            let mut set = vec![
                ("--p2p.priv.path", p(&format!("v{i}.p2p.key"))),
                ("--p2p.discovery.path", p(&format!("v{i}-discovery"))),
                ("--p2p.bootnodes", boot.clone()),
            ];
            if let Some(url) = engine_of(i) {
                set.push(("--l2", url));
            }
            start(edit(&ver_args, &set))
        })
        .collect();
    let (seq_id, _) = self_info(&sequencer);
    let status = |n: &ServedNode| rpc(n, "optimism_syncStatus", json!([]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seq_head = status(&sequencer)["unsafe_l2"]["number"].as_u64().unwrap_or(0);
        let heads: Vec<(u64, String)> = verifiers
            .iter()
            .map(|v| {
                let s = status(v);
                (
                    s["unsafe_l2"]["number"].as_u64().unwrap_or(0),
                    s["unsafe_l2"]["hash"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        // Each verifier holds connections to the sequencer and to the two other verifiers it
        // found through it.
        let connected = verifiers.iter().all(|v| {
            let p = peers(v);
            p.contains(&seq_id) && p.len() >= 3 && !p.contains(&other_id)
        });
        // Gossip only: the batcher posts to L1 too, so the unsafe heads must run ahead of what
        // any verifier has derived as safe, and be the sequencer's blocks.
        let ahead = verifiers.iter().zip(&heads).all(|(v, (n, _))| {
            *n >= 6 && *n + 2 >= seq_head && *n > status(v)["safe_l2"]["number"].as_u64().unwrap_or(0)
        });
        if connected && ahead {
            assert!(!peers(&sequencer).contains(&other_id));
            assert!(peers(&other).is_empty(), "the other chain's node dialled nobody");
            for (n, hash) in &heads {
                let seq_block = rpc(&sequencer, "optimism_outputAtBlock", json!([format!("0x{n:x}")]));
                assert_eq!(seq_block["blockRef"]["hash"].as_str(), Some(hash.as_str()), "block #{n}");
            }
            break;
        }
        let all: Vec<String> =
            verifiers.iter().map(|v| rpc(v, "opp2p_peers", json!([true])).to_string()).collect();

        assert!(
            Instant::now() < deadline,
            "heads {heads:?}, sequencer #{seq_head}, connected {connected}: sequencer {seq_id}, other {other_id}, peers {all:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(verifiers);
    drop(sequencer);
    drop(other);
    drop(kids);
    let _ = std::fs::remove_dir_all(&dir);
}
