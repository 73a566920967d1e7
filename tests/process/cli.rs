//! The binary's command line: help, version, usage errors, exit codes and clean shutdown.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).env_remove("OP_NODE_NETWORK").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_prints_commit_and_target() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("op-lite version v0.1.0-"), "{out}");
    assert!(out.trim_end().ends_with(')'), "{out}");
}

#[test]
fn help_groups_flags_with_env_vars_and_defaults() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "1. ROLLUP",
        "--l1 value",
        "$OP_NODE_L1_ETH_RPC",
        "--l2.jwt-secret",
        "$OP_NODE_L2_ENGINE_AUTH",
        "(default: 9545)",
        "--p2p.disable",
    ] {
        assert!(out.contains(needle), "help lacks {needle}");
    }
}

#[test]
fn usage_errors_exit_2_with_one_line_naming_the_flag() {
    for (args, needle) in [
        (vec!["--bogus"], "--bogus"),
        (vec!["--network", "op-mainnet", "--rpc.port"], "rpc.port"),
        (vec!["--network", "op-mainnet", "--rpc.port", "70000"], "--rpc.port"),
        (vec!["--network", "op-mainnet", "--log.format", "xml"], "--log.format"),
        (vec!["--network", "atlantis"], "--network"),
        (vec![], "--rollup.config or --network"),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn env_vars_configure_the_node() {
    let out = Command::new(bin())
        .args(["--network", "op-mainnet"])
        .env("OP_NODE_RPC_PORT", "notaport")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rpc.port"));
}

/// Starts the node, waits for it to be running, sends SIGINT and expects a clean exit 0 with
/// the shutdown logged; also checks an unknown OP_NODE_ variable was warned about.
#[test]
fn sigint_stops_the_node_cleanly() {
    let mut child = Command::new(bin())
        .args(crate::support::offline_node_args())
        .args([
            "--log.level",
            "debug",
            // An ephemeral RPC port, so parallel test runs do not collide on 9545.
            "--rpc.port",
            "0",
        ])
        .env("OP_NODE_NOT_A_FLAG", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, started) = crate::support::capture_until(child.stderr.take().unwrap(), "starting rollup node");
    assert!(started.recv_timeout(Duration::from_secs(20)).is_ok(), "node did not start");
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "node did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = log.join().unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("OP_NODE_NOT_A_FLAG"), "{log}");
    assert!(log.contains("received SIGINT"), "{log}");
    assert!(log.contains("rollup node stopped"), "{log}");
}

#[test]
fn networks_lists_the_registry_and_shows_rollup_json_the_node_loads() {
    let (code, out, _) = run(&["networks"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = out.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    for n in [
        "op-mainnet",
        "base-sepolia",
        "unichain-mainnet",
        "ink-sepolia",
        "zora-mainnet",
        "worldchain-mainnet",
    ] {
        assert!(names.contains(&n), "{n} missing from:\n{out}");
    }
    assert!(out.lines().last().unwrap().starts_with(&format!("{} networks", names.len() - 1)), "{out}");

    // `networks show` output is a rollup.json: given back with --rollup.config, the node accepts
    // it (the usage error is about the missing engine flag, not the config).
    let (code, json, _) = run(&["networks", "show", "soneium-mainnet"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["l2_chain_id"], 1868);
    let dir = std::env::temp_dir().join(format!("op-lite-networks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rollup.json");
    std::fs::write(&file, &json).unwrap();
    let (code, _, err) = run(&["--rollup.config", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("--l2: flag l2 is required"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    for (args, needle) in [
        (vec!["networks", "show", "unichain"], "did you mean unichain-mainnet, unichain-sepolia?"),
        (vec!["networks", "show"], "show needs a network NAME"),
        (vec!["networks", "list"], "unknown subcommand"),
        (vec!["--network", "op-mainet"], "did you mean op-mainnet"),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `op-lite p2p enr decode`: JSON for a record (EIP-778's example), one line and exit 1 for a bad one.
#[test]
fn p2p_enr_decode_prints_json_or_one_line() {
    let example = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
    let (code, out, _) = run(&["p2p", "enr", "decode", example]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["seq"], 1);
    assert_eq!(v["nodeId"], "0xa448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7");
    assert_eq!(v["publicKey"], "0x03ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138");
    assert_eq!(
        (v["ip"].as_str(), v["udp"].as_u64(), v["tcp"].as_u64()),
        (Some("127.0.0.1"), Some(30303), None)
    );
    assert_eq!((v["opstack"].is_null(), v["signatureValid"].as_bool()), (true, Some(true)));
    for bad in ["enr:abc", "enode://1234", &example[..60]] {
        let (code, out, err) = run(&["p2p", "enr", "decode", bad]);
        assert_eq!((code, out.as_str()), (1, ""), "{bad}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("op-lite p2p enr decode: invalid ENR"), "{err}");
    }
}
