//! Embeds the version metadata that `op-lite --version` prints, like op-node's `VersionWithMeta`,
//! and converts the Karst network-upgrade bundle into the compact table `protocol::upgrades` reads.

// A build script runs at build time, outside the node: it reads and writes files.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

fn main() {
    karst_table();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=8", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=OP_LITE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=OP_LITE_GIT_DIRTY={}", if dirty { "-dirty" } else { "" });
    println!("cargo:rustc-env=OP_LITE_TARGET={target}");
    // Rebuild the metadata when the checked-out commit moves: HEAD, the branch ref it points
    // to, packed refs, and the index (for the dirty flag).
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{r}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// Writes `$OUT_DIR/karst_nut_table.bin` from op-node's Karst NUT bundle JSON: u32 count, u64 total
/// gas, then per transaction u16 intent length, intent, 20-byte from, u8 has-to (+ 20-byte to),
/// u64 gas limit, u32 data length, data (all big-endian).
fn karst_table() {
    const SRC: &str = "src/protocol/upgrades/karst_nut_bundle.json";
    println!("cargo:rerun-if-changed={SRC}");
    let text = std::fs::read_to_string(SRC).expect("read the Karst NUT bundle");
    let bundle: serde_json::Value = serde_json::from_str(&text).expect("parse the Karst NUT bundle");
    // op-node accepts only this bundle schema version.
    assert_eq!(bundle["metadata"]["version"], "1.0.0", "unsupported NUT bundle version");
    let txs = bundle["transactions"].as_array().expect("NUT bundle transactions");
    let mut body = Vec::new();
    let mut total_gas = 0u64;
    for (i, tx) in txs.iter().enumerate() {
        let intent = tx["intent"].as_str().unwrap_or_default();
        assert!(!intent.is_empty(), "NUT tx {i}: missing intent");
        body.extend_from_slice(&u16::try_from(intent.len()).expect("intent length").to_be_bytes());
        body.extend_from_slice(intent.as_bytes());
        body.extend_from_slice(&address(&tx["from"]));
        match &tx["to"] {
            serde_json::Value::Null => body.push(0),
            to => {
                body.push(1);
                body.extend_from_slice(&address(to));
            }
        }
        let gas = tx["gasLimit"].as_u64().expect("NUT tx gasLimit");
        total_gas = total_gas.checked_add(gas).expect("NUT gas overflow");
        body.extend_from_slice(&gas.to_be_bytes());
        let data = hex(tx["data"].as_str().expect("NUT tx data"));
        body.extend_from_slice(&u32::try_from(data.len()).expect("data length").to_be_bytes());
        body.extend_from_slice(&data);
    }
    let mut out = u32::try_from(txs.len()).expect("tx count").to_be_bytes().to_vec();
    out.extend_from_slice(&total_gas.to_be_bytes());
    out.extend_from_slice(&body);
    let dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(std::path::Path::new(&dir).join("karst_nut_table.bin"), out)
        .expect("write the Karst NUT table");
}

fn address(v: &serde_json::Value) -> [u8; 20] {
    let bytes = hex(v.as_str().expect("address string"));
    bytes.try_into().expect("20-byte address")
}

fn hex(s: &str) -> Vec<u8> {
    let s = s.strip_prefix("0x").expect("0x-prefixed hex");
    assert!(s.len() % 2 == 0, "odd-length hex");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}
