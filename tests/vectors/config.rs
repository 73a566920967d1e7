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
        for key in [
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
        ] {
            let v = chain["hardforks"].get(key).or_else(|| sc["hardforks"].get(key));
            want.insert(key.to_string(), v.map(|v| v.as_integer().unwrap() as u64));
        }
        // Base left the registry before Karst; its superchain.toml at the OP commit lists
        // Karst for the OP chains only, so Base keeps it unscheduled.
        if name.starts_with("base") {
            assert_eq!(c.forks.karst_time, None);
            want.insert("karst_time".into(), None);
        }
        let f = &c.forks;
        let got: BTreeMap<String, Option<u64>> = [
            ("canyon_time", f.canyon_time),
            ("delta_time", f.delta_time),
            ("ecotone_time", f.ecotone_time),
            ("fjord_time", f.fjord_time),
            ("granite_time", f.granite_time),
            ("holocene_time", f.holocene_time),
            ("pectra_blob_schedule_time", f.pectra_blob_schedule_time),
            ("isthmus_time", f.isthmus_time),
            ("jovian_time", f.jovian_time),
            ("karst_time", f.karst_time),
            ("interop_time", f.interop_time),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
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

#[test]
fn kona_registry_json_agrees_on_genesis_and_forks() {
    let Some(fx) = fixtures() else { return };
    let text = std::fs::read_to_string(fx.join("rollup-configs/kona-registry/configs.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut seen = 0;
    for sc in v["superchains"].as_array().unwrap() {
        for chain in sc["chains"].as_array().unwrap() {
            let id = chain["l2_chain_id"].as_u64().unwrap();
            let Some(name) = networks::NETWORK_NAMES
                .iter()
                .find(|n| networks::by_name(n).unwrap().rollup.l2_chain_id == id)
            else {
                continue;
            };
            seen += 1;
            let c = networks::by_name(name).unwrap().rollup;
            assert_eq!(c.genesis.l2.hash, chain["genesis"]["l2"]["hash"].as_str().unwrap().parse().unwrap());
            assert_eq!(
                c.genesis.system_config.batcher_addr,
                chain["genesis"]["system_config"]["batcherAddr"].as_str().unwrap().parse().unwrap()
            );
            let hf = &chain["hardfork_configuration"];
            // kona's copy ends at Jovian.
            for (key, got) in [
                ("canyon_time", c.forks.canyon_time),
                ("ecotone_time", c.forks.ecotone_time),
                ("holocene_time", c.forks.holocene_time),
                ("isthmus_time", c.forks.isthmus_time),
                ("jovian_time", c.forks.jovian_time),
                ("pectra_blob_schedule_time", c.forks.pectra_blob_schedule_time),
            ] {
                assert_eq!(got, hf.get(key).and_then(|v| v.as_u64()), "{name} {key}");
            }
            let pv = sc["config"]["protocol_versions_addr"].as_str().unwrap();
            assert_eq!(c.protocol_versions_address, pv.parse().unwrap(), "{name}");
        }
    }
    assert_eq!(seen, 4);
}
