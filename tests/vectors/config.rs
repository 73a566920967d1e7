//! Built-in networks against the superchain-registry files in the shared fixtures, and the
//! published op-node rollup.json files of Base against the loader.

use std::collections::BTreeMap;

use op_lite::config::networks;
use op_lite::protocol::primitives::{Address, B256};
use op_lite::protocol::rollup::RollupConfig;

use crate::support::fixtures;

fn addr(v: &toml::Value) -> Address {
    v.as_str().unwrap().parse().unwrap()
}

fn hash(v: &toml::Value) -> B256 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn built_in_networks_match_the_superchain_registry() {
    let Some(fx) = fixtures() else { return };
    let reg = fx.join("rollup-configs/superchain-registry");
    let addresses: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reg.join("addresses.json")).unwrap()).unwrap();
    for (name, superchain, file) in [
        ("op-mainnet", "mainnet", "op.toml"),
        ("op-sepolia", "sepolia", "op.toml"),
        ("base-mainnet", "mainnet", "base.toml"),
        ("base-sepolia", "sepolia", "base.toml"),
    ] {
        let net = networks::by_name(name).unwrap();
        let c = &net.rollup;
        let chain: toml::Value =
            std::fs::read_to_string(reg.join(superchain).join(file)).unwrap().parse().unwrap();
        let sc: toml::Value =
            std::fs::read_to_string(reg.join(superchain).join("superchain.toml")).unwrap().parse().unwrap();
        let g = &chain["genesis"];
        assert_eq!(c.l2_chain_id, chain["chain_id"].as_integer().unwrap() as u64, "{name}");
        assert_eq!(c.l1_chain_id, sc["l1"]["chain_id"].as_integer().unwrap() as u64, "{name}");
        assert_eq!(c.block_time, chain["block_time"].as_integer().unwrap() as u64);
        assert_eq!(c.seq_window_size, chain["seq_window_size"].as_integer().unwrap() as u64);
        assert_eq!(c.max_sequencer_drift, chain["max_sequencer_drift"].as_integer().unwrap() as u64);
        assert_eq!(c.batch_inbox_address, addr(&chain["batch_inbox_addr"]), "{name}");
        assert_eq!(c.genesis.l1.hash, hash(&g["l1"]["hash"]), "{name}");
        assert_eq!(c.genesis.l1.number, g["l1"]["number"].as_integer().unwrap() as u64);
        assert_eq!(c.genesis.l2.hash, hash(&g["l2"]["hash"]), "{name}");
        assert_eq!(c.genesis.l2.number, g["l2"]["number"].as_integer().unwrap() as u64);
        assert_eq!(c.genesis.l2_time, g["l2_time"].as_integer().unwrap() as u64);
        let sys = &g["system_config"];
        assert_eq!(c.genesis.system_config.batcher_addr, addr(&sys["batcherAddress"]), "{name}");
        assert_eq!(c.genesis.system_config.overhead, hash(&sys["overhead"]));
        assert_eq!(c.genesis.system_config.scalar, hash(&sys["scalar"]));
        assert_eq!(c.genesis.system_config.gas_limit, sys["gasLimit"].as_integer().unwrap() as u64);
        let op = &chain["optimism"];
        let eip = c.chain_op_config();
        assert_eq!(eip.eip1559_elasticity, op["eip1559_elasticity"].as_integer().unwrap() as u64);
        assert_eq!(eip.eip1559_denominator, op["eip1559_denominator"].as_integer().unwrap() as u64);
        assert_eq!(
            eip.eip1559_denominator_canyon,
            op["eip1559_denominator_canyon"].as_integer().unwrap() as u64
        );
        assert_eq!(c.deposit_contract_address, addr(&chain["addresses"]["OptimismPortalProxy"]));
        assert_eq!(c.l1_system_config_address, addr(&chain["addresses"]["SystemConfigProxy"]));
        let a = &addresses[c.l2_chain_id.to_string()];
        assert_eq!(net.unsafe_block_signer, a["UnsafeBlockSigner"].as_str().unwrap().parse().unwrap());
        assert_eq!(c.deposit_contract_address, a["OptimismPortalProxy"].as_str().unwrap().parse().unwrap());
        // Fork times: the chain file, inheriting the superchain's when the chain omits one.
        let mut want: BTreeMap<String, Option<u64>> = BTreeMap::new();
        for key in FORK_KEYS {
            let v = chain["hardforks"].get(key).or_else(|| sc["hardforks"].get(key));
            want.insert(key.to_string(), v.map(|v| v.as_integer().unwrap() as u64));
        }
        // Base left the registry before Karst; its superchain.toml at the OP commit lists
        // Karst for the OP chains only, so Base keeps it unscheduled.
        if name.starts_with("base") {
            assert_eq!(c.forks.karst_time, None);
            want.insert("karst_time".into(), None);
        }
        let got: BTreeMap<String, Option<u64>> = FORK_KEYS.map(|k| (k.to_string(), fork_time(c, k))).into();
        assert_eq!(got, want, "{name}");
        assert_eq!(c.forks.regolith_time, Some(0));
        assert_eq!(
            c.keep_karst_upgrade_gas,
            chain["hardforks"].get("keep_karst_upgrade_gas").and_then(|v| v.as_bool()).unwrap_or(false),
            "{name}"
        );
    }
}

#[test]
fn published_base_rollup_json_loads_and_agrees_with_the_registry() {
    let Some(fx) = fixtures() else { return };
    for (file, name) in
        [("base-mainnet-rollup.json", "base-mainnet"), ("base-sepolia-rollup.json", "base-sepolia")]
    {
        let text = std::fs::read_to_string(fx.join("rollup-configs/base-org-node").join(file)).unwrap();
        let loaded = RollupConfig::from_json(&text).unwrap();
        let built_in = networks::by_name(name).unwrap().rollup;
        // The published files predate Canyon: only the overlapping fields are compared.
        assert_eq!(loaded.genesis.l1, built_in.genesis.l1, "{name}");
        assert_eq!(loaded.genesis.l2, built_in.genesis.l2, "{name}");
        assert_eq!(loaded.genesis.l2_time, built_in.genesis.l2_time);
        assert_eq!(loaded.l1_chain_id, built_in.l1_chain_id);
        assert_eq!(loaded.l2_chain_id, built_in.l2_chain_id);
        assert_eq!(loaded.batch_inbox_address, built_in.batch_inbox_address);
        assert_eq!(loaded.deposit_contract_address, built_in.deposit_contract_address);
        assert_eq!(loaded.l1_system_config_address, built_in.l1_system_config_address);
        assert_eq!(loaded.channel_timeout_bedrock, built_in.channel_timeout_bedrock);
        assert_eq!(loaded.max_sequencer_drift, built_in.max_sequencer_drift);
    }
}

/// kona's JSON rendering of the registry (crates/protocol/registry/etc/configs.json, 2025-11): a
/// second, independent copy of every chain's facts. Every built-in network kona also lists must
/// agree with it on everything that cannot change after the fact (genesis, chain parameters,
/// addresses, EIP-1559 parameters, alt-DA) and on every fork kona knows. A fork kona lacks may
/// only be one scheduled after kona's copy was taken.
#[test]
fn every_network_kona_also_lists_agrees_with_kona() {
    let Some(fx) = fixtures() else { return };
    let text = std::fs::read_to_string(fx.join("rollup-configs/kona-registry/configs.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // configs.json's last change: 2025-11-24.
    const KONA_COPY_TIME: u64 = 1_763_942_400;
    let by_id: BTreeMap<u64, networks::Network> =
        networks::all().map(|n| (n.rollup.l2_chain_id, n)).collect();
    let hex = |v: &serde_json::Value| -> String { v.as_str().unwrap().to_ascii_lowercase() };
    let mut seen = Vec::new();
    let mut absent = Vec::new();
    for sc in v["superchains"].as_array().unwrap() {
        let superchain = sc["name"].as_str().unwrap();
        for chain in sc["chains"].as_array().unwrap() {
            let id = chain["l2_chain_id"].as_u64().unwrap();
            let Some(net) = by_id.get(&id) else {
                // Only the registry's mainnet and sepolia superchains are built in, and of those
                // only chains the registry has removed since kona's copy are missing.
                if ["mainnet", "sepolia"].contains(&superchain) {
                    assert!(NOT_IN_THE_REGISTRY_NOW.contains(&id), "{superchain} chain {id} missing");
                    absent.push(id);
                }
                continue;
            };
            let name = net.name;
            assert!(name.ends_with(&format!("-{superchain}")), "{name} in {superchain}");
            seen.push(name);
            let c = &net.rollup;
            let g = &chain["genesis"];
            assert_eq!(c.l1_chain_id, sc["config"]["l1"]["chain_id"].as_u64().unwrap(), "{name}");
            assert_eq!(c.genesis.l1.number, g["l1"]["number"].as_u64().unwrap(), "{name}");
            assert_eq!(c.genesis.l1.hash.to_string(), hex(&g["l1"]["hash"]), "{name}");
            assert_eq!(c.genesis.l2.number, g["l2"]["number"].as_u64().unwrap(), "{name}");
            assert_eq!(c.genesis.l2.hash.to_string(), hex(&g["l2"]["hash"]), "{name}");
            assert_eq!(c.genesis.l2_time, g["l2_time"].as_u64().unwrap(), "{name}");
            let sys = &g["system_config"];
            assert_eq!(c.genesis.system_config.batcher_addr.to_string(), hex(&sys["batcherAddr"]), "{name}");
            assert_eq!(c.genesis.system_config.overhead.to_string(), hex(&sys["overhead"]), "{name}");
            assert_eq!(c.genesis.system_config.scalar.to_string(), hex(&sys["scalar"]), "{name}");
            assert_eq!(c.genesis.system_config.gas_limit, sys["gasLimit"].as_u64().unwrap(), "{name}");
            assert_eq!(c.block_time, chain["block_time"].as_u64().unwrap(), "{name}");
            assert_eq!(c.seq_window_size, chain["seq_window_size"].as_u64().unwrap(), "{name}");
            assert_eq!(c.max_sequencer_drift, chain["max_sequencer_drift"].as_u64().unwrap(), "{name}");
            assert_eq!(c.batch_inbox_address.to_string(), hex(&chain["batch_inbox_address"]), "{name}");
            let a = &chain["Addresses"];
            assert_eq!(c.deposit_contract_address.to_string(), hex(&a["OptimismPortalProxy"]), "{name}");
            assert_eq!(c.l1_system_config_address.to_string(), hex(&a["SystemConfigProxy"]), "{name}");
            let op = &chain["optimism"];
            let eip = c.chain_op_config();
            assert_eq!(eip.eip1559_elasticity, op["eip1559Elasticity"].as_u64().unwrap(), "{name}");
            assert_eq!(eip.eip1559_denominator, op["eip1559Denominator"].as_u64().unwrap(), "{name}");
            assert_eq!(
                eip.eip1559_denominator_canyon,
                op["eip1559DenominatorCanyon"].as_u64().unwrap(),
                "{name}"
            );
            match (&c.alt_da, &chain["alt_da"]) {
                (None, serde_json::Value::Null) => {}
                (Some(ours), kona) => {
                    assert_eq!(ours["da_commitment_type"], kona["da_commitment_type"], "{name}");
                    assert_eq!(
                        hex(&ours["da_challenge_contract_address"]),
                        hex(&kona["da_challenge_address"])
                    );
                    assert_eq!(ours["da_challenge_window"], kona["da_challenge_window"], "{name}");
                    assert_eq!(ours["da_resolve_window"], kona["da_resolve_window"], "{name}");
                }
                (None, kona) => panic!("{name}: kona has alt_da {kona}"),
            }
            let hf = &chain["hardfork_configuration"];
            // kona's copy ends at Jovian: the first nine keys.
            for key in &FORK_KEYS[..9] {
                let ours = fork_time(c, key);
                match hf.get(key).and_then(|v| v.as_u64()) {
                    Some(t) => assert_eq!(ours, Some(t), "{name} {key}"),
                    None => assert!(ours.is_none_or(|t| t > KONA_COPY_TIME), "{name} {key} {ours:?}"),
                }
            }
        }
    }
    absent.sort_unstable();
    assert_eq!(absent, NOT_IN_THE_REGISTRY_NOW);
    // Every built-in network but the ones that joined the registry after kona's copy.
    let missing: Vec<&str> = by_id.values().map(|n| n.name).filter(|n| !seen.contains(n)).collect();
    assert!(seen.len() >= 45, "{} networks compared; not in kona's copy: {missing:?}", seen.len());
    for n in ["op-mainnet", "op-sepolia", "base-mainnet", "base-sepolia", "unichain-mainnet", "ink-sepolia"] {
        assert!(seen.contains(&n), "{n}");
    }
}

/// Mainnet and sepolia chains in kona's copy that the registry no longer lists at the commit
/// networks.txt was taken from: Ethernity Sepolia 233 and Creator Chain Testnet 66665 (7f9be7f9,
/// 2026-06), Swellchain 1923 and Arena-Z 7897 (8bc6125b, sunset, 2026-05), SnaxChain 2192
/// (c63125f2, 2025-11), arena-z-testnet 9899 (5f8a0988, 2025-05), and kona's own placeholders
/// test1/test2 (123999119, 223999119), which were never in the registry.
const NOT_IN_THE_REGISTRY_NOW: [u64; 8] = [233, 1923, 2192, 7897, 9899, 66665, 123999119, 223999119];

/// The registry's fork time keys (those after Regolith), in fork order.
const FORK_KEYS: [&str; 11] = [
    "canyon_time",
    "delta_time",
    "ecotone_time",
    "fjord_time",
    "granite_time",
    "holocene_time",
    "pectra_blob_schedule_time",
    "isthmus_time",
    "jovian_time",
    "karst_time",
    "interop_time",
];

/// A config's time for a registry fork key.
fn fork_time(c: &RollupConfig, key: &str) -> Option<u64> {
    use op_lite::protocol::rollup::Fork;
    if key == "pectra_blob_schedule_time" {
        return c.forks.pectra_blob_schedule_time;
    }
    let fork = Fork::ALL.into_iter().find(|f| format!("{}_time", f.name()) == key).unwrap();
    c.forks.get(fork)
}
