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
