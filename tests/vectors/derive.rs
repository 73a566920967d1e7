//! Derivation on real data: the OP Mainnet range L1 18090205..18090218 replayed through the
//! pipeline, through the library and through `op-lite replay`.

use std::process::Command;

use op_lite::protocol::primitives::keccak256;
use op_lite::tools::replay;

use crate::support::{bin, fixtures};

const FIXTURE: &str = "derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/fixture.json";

#[test]
fn op_mainnet_range_derives_every_expected_payload() {
    let Some(dir) = fixtures() else { return };
    let text = std::fs::read_to_string(dir.join(FIXTURE)).unwrap();
    let mut seen = 0;
    let out = replay::run(&text, true, &mut |_| seen += 1).unwrap();
    assert_eq!(seen, 32);
    assert_eq!(out.checked, 32, "every expected payload was compared");
    let numbers: Vec<u64> = out.derived.iter().map(|a| a.parent.number + 1).collect();
    assert_eq!(numbers, (109279675..=109279706).collect::<Vec<_>>());
    // The user deposit of L1 18090206 is the second transaction of 109279675.
    let first = &out.derived[0].attributes;
    assert_eq!(
        keccak256(&first.transactions[1]).to_string(),
        "0xc0aad20384e39598445d2763decd1eda3acdfef9e6da2e4578c06ccabd6fdd03"
    );
    // Both channels were read: the one from L1 18090208 only has batches for blocks that are
    // already safe (63 dropped), the one from 18090218 builds everything after the safe head.
    assert_eq!(out.metrics.derived_batches_singular, 123);
    assert_eq!(out.final_safe.number, 109279706);
    // New epochs begin at 675, 681, 687, 693, 699, 705 (sequence number 0).
    let epoch_starts: Vec<u64> = out
        .derived
        .iter()
        .filter(|a| a.parent.l1origin.number != origin_of(a))
        .map(|a| a.parent.number + 1)
        .collect();
    assert_eq!(epoch_starts, vec![109279675, 109279681, 109279687, 109279693, 109279699, 109279705]);
}

/// The L1 origin number a payload commits to in its L1-info deposit (Bedrock layout: the
/// number is the first argument of setL1BlockValues).
fn origin_of(a: &op_lite::derive::attributes::AttributesWithParent) -> u64 {
    let tx = op_lite::protocol::tx::Transaction::decode(&a.attributes.transactions[0]).unwrap();
    let input = tx.input();
    u64::from_be_bytes(input[4 + 24..4 + 32].try_into().unwrap())
}

#[test]
fn replay_command_checks_and_reports_differences() {
    let Some(dir) = fixtures() else { return };
    let path = dir.join(FIXTURE);
    let out = Command::new(bin()).arg("replay").arg(&path).arg("--check").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 32);
    assert_eq!(lines[0]["number"], 109279675);
    assert_eq!(lines[0]["parentHash"], "0x3092205a2fe175bd580ce39e67976c26c98e554504a8c785851a0a5fd82567d9");
    assert_eq!(lines[0]["feeRecipient"], "0x4200000000000000000000000000000000000011");
    assert_eq!(lines[0]["gasLimit"], 30000000);
    assert_eq!(lines[0]["noTxPool"], true);
    for key in ["timestamp", "prevRandao", "transactions"] {
        assert!(lines[0].get(key).is_some(), "{key}");
    }

    // A fixture whose expectation differs makes the check fail with both sides printed.
    let mut fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    fx["expected"]["derivedAttributes"][3]["prevRandao"] =
        serde_json::json!("0x0000000000000000000000000000000000000000000000000000000000000001");
    let tampered = std::env::temp_dir().join(format!("op-lite-replay-{}.json", std::process::id()));
    std::fs::write(&tampered, fx.to_string()).unwrap();
    let out = Command::new(bin()).arg("replay").arg(&tampered).arg("--check").output().unwrap();
    let _ = std::fs::remove_file(&tampered);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("block 109279678: prevRandao differs"), "{err}");
    assert!(
        err.contains("expected: \"0x0000000000000000000000000000000000000000000000000000000000000001\""),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4, "stops at the first difference");
}

/// Recorded L1 data that its headers do not commit to is refused, as the node refuses such data
/// from an RPC: an edited transaction, a dropped receipt.
#[test]
fn replay_refuses_data_the_headers_do_not_commit_to() {
    let Some(dir) = fixtures() else { return };
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(FIXTURE)).unwrap()).unwrap();
    let run = |fx: &serde_json::Value, tag: &str| {
        let p = std::env::temp_dir().join(format!("op-lite-replay-{tag}-{}.json", std::process::id()));
        std::fs::write(&p, fx.to_string()).unwrap();
        let out = Command::new(bin()).arg("replay").arg(&p).output().unwrap();
        let _ = std::fs::remove_file(&p);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let mut edited = fx.clone();
    let tx = edited["l1Blocks"][3]["transactions"][0].as_str().unwrap().to_string();
    let flipped = format!("{}{}", &tx[..tx.len() - 1], if tx.ends_with('0') { '1' } else { '0' });
    edited["l1Blocks"][3]["transactions"][0] = serde_json::json!(flipped);
    let (code, err) = run(&edited, "tx");
    assert_eq!(code, Some(1));
    assert!(err.contains("transactions do not match the header's transactions root"), "{err}");
    let mut edited = fx.clone();
    let i = edited["l1Blocks"].as_array().unwrap().iter().position(|b| b["receipts"].is_array()).unwrap();
    edited["l1Blocks"][i]["receipts"].as_array_mut().unwrap().pop();
    let (code, err) = run(&edited, "rc");
    assert_eq!(code, Some(1));
    assert!(err.contains("receipts root"), "{err}");
}
