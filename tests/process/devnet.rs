//! `op-lite devnet`: the real binary runs the devnet and the node against it over HTTP; the
//! node derives the chain from L1 (calldata and blob batches, deposits) and stops on its own at
//! `--blocks N`, or cleanly on SIGINT.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin;

fn heads(stdout: &str) -> Vec<(u64, u64, u64)> {
    let num = |s: &str, key: &str| -> Option<u64> {
        let rest = s.split(key).nth(1)?.trim_start();
        rest.strip_prefix('#')?.split_whitespace().next()?.parse().ok()
    };
    stdout
        .lines()
        .filter(|l| l.starts_with("l2 unsafe"))
        .filter_map(|l| Some((num(l, "unsafe")?, num(l, "safe")?, num(l, "finalized")?)))
        .collect()
}

#[test]
fn derives_the_devnet_chain_to_the_target_and_exits_0() {
    let out = Command::new(bin())
        .args(["devnet", "--blocks", "60", "--speed", "30", "--rpc.port", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("safe head reached L2 block 60: stopping"), "{stdout}");
    let h = heads(&stdout);
    let last = *h.last().unwrap();
    assert!(last.1 >= 60 && last.0 >= last.1 && last.1 >= last.2, "{last:?}");
    // Heads only move forward, and finality follows the L1 simulator's finalized blocks.
    assert!(h.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1 && w[1].2 >= w[0].2));
    assert!(last.2 > 0, "finalized moved: {last:?}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

#[test]
fn light_node_follows_the_source_nodes_safe_and_finalized_heads() {
    let out = Command::new(bin())
        .args(["devnet", "--light", "--blocks", "30", "--rpc.port", "0", "--log.level", "info"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("safe head reached L2 block 30: stopping"), "{stdout}");
    assert!(stdout.contains("source node (deriving from L1)"), "{stdout}");
    assert!(stderr.contains("derivation is off"), "{stderr}");
    let sealed: std::collections::BTreeMap<u64, String> = stderr
        .lines()
        .filter_map(|l| l.split("sequencer sealed block 0x").nth(1))
        .filter_map(|rest| {
            let (hash, n) = rest.split_whitespace().next()?.split_once(':')?;
            Some((n.parse().ok()?, hash.to_string()))
        })
        .collect();
    // Every line: the light node's heads are the sequencer's blocks, its safe and finalized
    // heads exactly the source's as last polled, and they move.
    let field = |l: &str, key: &str| -> (u64, Option<String>) {
        let mut it = l.split(key).nth(1).unwrap().split_whitespace();
        let n = it.next().unwrap().parse().unwrap();
        (n, it.next().filter(|h| h.starts_with("0x")).map(|h| h[2..].to_string()))
    };
    let (mut moves, mut last) = (0, (0, 0));
    for l in stdout.lines().filter(|l| l.starts_with("l2 unsafe")) {
        let (safe, safe_hash) = field(l, " safe #");
        let (fin, _) = field(l, "finalized #");
        if !l.contains("| source") {
            // The unsafe head can move before the source's first answer (a slow host): with
            // nothing from the source yet, nothing is safe or final.
            assert!(safe == 0 && fin == 0, "{l}");
            continue;
        }
        if safe > 0 {
            assert!(sealed[&safe].starts_with(safe_hash.as_deref().unwrap()), "{l}");
        }
        let (src_safe, _) = field(l, "source safe #");
        let src_fin = l.split("| source").nth(1).map(|r| field(r, "finalized #").0).unwrap();
        // Never ahead of the source; equal once its last answer is adopted.
        assert!(safe <= src_safe && fin <= src_fin, "{l}");
        if (safe, fin) == (src_safe, src_fin) && (safe, fin) != last {
            moves += 1;
            last = (safe, fin);
        }
    }
    // Finality follows too (the devnet's L1 finalizes 4 blocks back, polled every 4 blocks:
    // about 20 L2 blocks behind the safe head).
    assert!(moves >= 3 && last.1 > 0, "{stdout}");
}

#[test]
fn with_sequencer_the_verifier_derives_the_sequencer_nodes_blocks() {
    let out = Command::new(bin())
        .args(["devnet", "--with-sequencer", "--blocks", "6", "--rpc.port", "0", "--log.level", "info"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("safe head reached L2 block 6: stopping"), "{stdout}");
    // Blocks the sequencer node sealed, by number.
    let sealed: std::collections::BTreeMap<u64, String> = stderr
        .lines()
        .filter_map(|l| l.split("sequencer sealed block 0x").nth(1))
        .filter_map(|rest| {
            let (hash, n) = rest.split_whitespace().next()?.split_once(':')?;
            Some((n.parse().ok()?, hash.to_string()))
        })
        .collect();
    assert!(sealed.len() >= 6, "{stderr}");
    // The verifier's unsafe head (from gossip) and safe head (from L1) are the sequencer's
    // blocks, hash for hash; the unsafe head runs ahead of what L1 has made safe.
    let head = |l: &str, key: &str| -> (u64, String) {
        let rest = l.split(key).nth(1).unwrap();
        let mut it = rest.split_whitespace();
        let n = it.next().unwrap().parse().unwrap();
        (n, it.next().unwrap().trim_start_matches("0x").to_string())
    };
    let (mut checked, mut ahead) = (0, false);
    for l in stdout.lines().filter(|l| l.starts_with("l2 unsafe")) {
        let (u, u_hash) = head(l, "unsafe #");
        let (s, s_hash) = head(l, " safe #");
        for (n, prefix) in [(u, u_hash), (s, s_hash)] {
            if n > 0 {
                assert!(sealed[&n].starts_with(&prefix), "#{n} {prefix} is not the sequenced {}", sealed[&n]);
                checked += 1;
            }
        }
        ahead |= u > s;
    }
    assert!(checked > 0 && ahead, "{stdout}");
    assert!(stderr.contains("connected to peer"), "{stderr}");
    // The verifier's unsafe blocks came by gossip, each within two block times (4 s) of being
    // sealed: log timestamps of "sequencer sealed block" and the verifier's "received gossip block".
    let millis = |l: &str| -> u64 {
        // `LEVEL [YYYY-MM-DDTHH:MM:SS.mmmZ] ...`
        let ts = l.split('[').nth(1).and_then(|r| r.split(']').next()).unwrap();
        let (h, m, rest) = (&ts[11..13], &ts[14..16], &ts[17..23]);
        let secs: f64 = rest.parse().unwrap();
        (h.parse::<u64>().unwrap() * 3600 + m.parse::<u64>().unwrap() * 60) * 1000 + (secs * 1000.0) as u64
    };
    let sealed_at: std::collections::BTreeMap<u64, u64> = stderr
        .lines()
        .filter(|l| l.contains("sequencer sealed block 0x"))
        .filter_map(|l| {
            let n =
                l.split("sequencer sealed block 0x").nth(1)?.split_whitespace().next()?.split(':').nth(1)?;
            Some((n.parse().ok()?, millis(l)))
        })
        .collect();
    let mut gossiped = 0;
    for l in stderr.lines().filter(|l| l.contains("received gossip block number=")) {
        let n: u64 = l.split("number=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
        if let Some(t) = sealed_at.get(&n) {
            let lag = millis(l).saturating_sub(*t);
            assert!(lag <= 4_000, "block {n} reached the verifier {lag} ms after sealing");
            gossiped += 1;
        }
    }
    assert!(gossiped >= 3, "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

#[test]
fn sigint_stops_the_devnet_cleanly() {
    let mut child = Command::new(bin())
        .args(["devnet", "--speed", "20", "--rpc.port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_log, started) = crate::support::capture_until(child.stdout.take().unwrap(), "safe #3");
    assert!(started.recv_timeout(Duration::from_secs(30)).is_ok(), "no safe progress");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "devnet did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

/// `--rollup.halt`: L1 signals a required protocol version (read by storage proof from the
/// ProtocolVersions contract); a major bump halts the node with exit code 3, a minor bump does
/// not at level major, and without the flag nothing halts.
#[test]
fn rollup_halt_on_a_required_protocol_version() {
    let run = |version: &str, halt: Option<&str>, blocks: &str| {
        let mut cmd = Command::new(bin());
        cmd.args([
            "devnet",
            "--blocks",
            blocks,
            "--speed",
            "20",
            "--rpc.port",
            "0",
            "--protocol-version",
            version,
        ]);
        if let Some(level) = halt {
            cmd.args(["--rollup.halt", level]);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run("v99.0.0", Some("major"), "1000");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("Opted to halt, unprepared for protocol change required=v99.0.0"), "{err}");
    let (code, err) = run("v12.5.0", Some("major"), "3");
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run("v99.0.0", None, "3");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("newer than supported"), "warned: {err}");
}

/// An engine started from a devnet directory (`op-lite devnet engine --from DIR`, the stand-in
/// in its own process, as op-reth would be); killed on drop.
struct DirEngine {
    child: std::process::Child,
    url: String,
}

impl DirEngine {
    fn start(dir: &std::path::Path) -> DirEngine {
        let mut child = Command::new(bin())
            .args(["devnet", "engine", "--from"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = crate::support::lines(child.stdout.take().unwrap());
        let first = lines.recv_timeout(Duration::from_secs(10)).expect("engine did not start");
        let url = first.split("serving at ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        DirEngine { child, url }
    }

    /// Block hashes 0..=n and each block's transaction count.
    fn chain(&self, jwt: [u8; 32], n: u64) -> Vec<(String, usize)> {
        let mut rpc =
            op_lite::io::rpc_client::RpcClient::new(&self.url, Duration::from_secs(5), Some(jwt), Vec::new());
        (0..=n)
            .map(|i| {
                let b =
                    rpc.call("eth_getBlockByNumber", serde_json::json!([format!("0x{i:x}"), false])).unwrap();
                let b: serde_json::Value = b.parse().unwrap();
                (b["hash"].as_str().unwrap().to_string(), b["transactions"].as_array().unwrap().len())
            })
            .collect()
    }
}

impl Drop for DirEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `devnet --from DIR --with-sequencer --sequencer-engine A --engine B` on two engines that
/// started from DIR/genesis.json in processes of their own: the sequencer node builds on A, the
/// batcher reads A's blocks over the Engine API port and posts them, users' transfers go into
/// A's pool, and the verifier node derives the same chain on B, hash for hash. Run again, the
/// devnet refuses engines that already hold blocks, and a genesis too old to catch up, saying
/// what to do.
#[test]
fn devnet_from_a_directory_runs_on_engines_of_their_own() {
    // Written 40 s ago: the devnet catches up (L1 mines the blocks since genesis at once, the
    // sequencer builds 20 L2 blocks as fast as its engine takes them) before running in real time.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let dir = crate::support::devnet_init("engines", &["--genesis-time", &(now - 40).to_string()]);
    let jwt_text = std::fs::read_to_string(dir.join("jwt.hex")).unwrap();
    let jwt: [u8; 32] = crate::support::hex(jwt_text.trim()).try_into().unwrap();
    let (a, b) = (DirEngine::start(&dir), DirEngine::start(&dir));
    let run = || {
        Command::new(bin())
            .args(["devnet", "--from"])
            .arg(&dir)
            .args(["--with-sequencer", "--sequencer-engine", &a.url, "--engine", &b.url])
            .args(["--blocks", "24", "--rpc.port", "0", "--log.level", "info"])
            .output()
            .unwrap()
    };
    let out = run();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("safe head reached L2 block 24: stopping"), "{stdout}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let rollup: serde_json::Value = crate::support::read_json(&dir.join("rollup.json"));
    let (on_a, on_b) = (a.chain(jwt, 24), b.chain(jwt, 24));
    assert_eq!(on_a[0].0, rollup["genesis"]["l2"]["hash"].as_str().unwrap());
    assert_eq!(on_a, on_b, "the verifier's engine holds the sequencer's chain");
    assert!(on_a.iter().any(|(_, txs)| *txs > 1), "users' transfers landed: {on_a:?}");

    let again = run();
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(err.contains("already holds L2 blocks") && err.contains("data"), "{err}");

    // One engine real, the other the stand-in: refused before anything starts.
    let half = Command::new(bin())
        .args(["devnet", "--from"])
        .arg(&dir)
        .args(["--with-sequencer", "--engine", &b.url])
        .output()
        .unwrap();
    assert_eq!(half.status.code(), Some(2), "{}", String::from_utf8_lossy(&half.stderr));
    let old = crate::support::devnet_init("old", &["--genesis-time", &(now - 3600).to_string()]);
    let out =
        Command::new(bin()).args(["devnet", "--from"]).arg(&old).args(["--blocks", "1"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("devnet init") && err.contains("--force"), "{err}");
    let _ = std::fs::remove_dir_all(&old);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--serve-only --with-sequencer` prints two complete node command lines (rollup and L1 chain
/// configs, JWT secret, signer key, gossip flags): run as printed, in processes of their own,
/// the verifier follows the sequencer by gossip and derives its blocks from L1, hash for hash.
/// The files they name stay after the devnet exits.
#[test]
fn serve_only_with_a_sequencer_prints_command_lines_that_run() {
    use crate::support::ServedNode;
    use op_lite::io::rpc_client::RpcClient;
    let (mut devnet, seq_args, ver_args, dir) = crate::support::serve_only_with_sequencer(20);
    assert!(seq_args.contains(&"--p2p.sequencer.key".to_string()), "{seq_args:?}");
    assert!(ver_args.contains(&"--p2p.static".to_string()), "{ver_args:?}");
    let sequencer = ServedNode::start(&seq_args, &[]);
    let verifier = ServedNode::start(&ver_args, &[]);
    let client = |n: &ServedNode| {
        let url = if n.rpc.starts_with("http") { n.rpc.clone() } else { format!("http://{}", n.rpc) };
        RpcClient::new(&url, Duration::from_secs(5), None, Vec::new())
    };
    let (mut seq_rpc, mut ver_rpc) = (client(&sequencer), client(&verifier));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s: serde_json::Value =
            ver_rpc.call("optimism_syncStatus", serde_json::json!([])).unwrap().parse().unwrap();
        if s["safe_l2"]["number"].as_u64().unwrap_or(0) >= 3
            && s["unsafe_l2"]["number"].as_u64() > s["safe_l2"]["number"].as_u64()
        {
            break s;
        }
        assert!(Instant::now() < deadline, "the verifier did not advance: {s}");
        std::thread::sleep(Duration::from_millis(250));
    };
    for head in ["safe_l2", "unsafe_l2"] {
        let n = status[head]["number"].as_u64().unwrap();
        let out = seq_rpc.call("optimism_outputAtBlock", serde_json::json!([format!("0x{n:x}")])).unwrap();
        let out: serde_json::Value = out.parse().unwrap();
        assert_eq!(out["blockRef"]["hash"], status[head]["hash"], "{head} #{n}");
    }
    drop((sequencer, verifier));
    assert!(Command::new("kill").args(["-INT", &devnet.id().to_string()]).status().unwrap().success());
    assert_eq!(devnet.wait().unwrap().code(), Some(0));
    for name in ["rollup.json", "l1-chain.json", "jwt.hex", "sequencer.p2p.key"] {
        assert!(dir.join(name).exists(), "{name} kept in {}", dir.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
