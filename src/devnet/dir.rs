//! A devnet directory (`op-lite devnet init DIR`): the files a real execution engine and the
//! node start from, kept between runs so the engines' data stays valid.
//!
//! - `genesis.json`: the L2 genesis in the op-geth / op-reth format (`genesis::genesis_json`);
//! - `rollup.json`: the rollup config, its `genesis.l2.hash` the header hash of genesis.json;
//! - `jwt.hex`: the Engine API secret;
//! - `keys.json`: the dev accounts and their keys (users funded on L2, the unsafe block signer,
//!   the batcher, the L1 depositor).
//!
//! The devnet is deterministic from the rollup config: `params_for` gives the parameters that
//! rebuild it, and `check_rebuilt` that the rebuilt config is the file's, so a later
//! `op-lite devnet --from DIR` runs the same L1 genesis and the same L2 genesis.
//!
//! Pure: `tools::devnet` reads and writes the files.

use serde_json::{json, Value};

use super::chain::{Devnet, DevnetParams};
use super::genesis;
use super::l1_sim::Account;
use crate::protocol::primitives::to_hex_prefixed;
use crate::protocol::rollup::{Fork, RollupConfig};

pub const GENESIS_FILE: &str = "genesis.json";
pub const ROLLUP_FILE: &str = "rollup.json";
pub const JWT_FILE: &str = "jwt.hex";
pub const KEYS_FILE: &str = "keys.json";
/// The devnet L1's chain config, for `--rollup.l1-chain-config`.
pub const L1_CHAIN_FILE: &str = "l1-chain.json";

/// The seeds of the devnet's fixed accounts.
pub const SEQUENCER_SEED: &str = "op-lite devnet sequencer";
pub const BATCHER_SEED: &str = "op-lite devnet batcher";
pub const DEPOSITOR_SEED: &str = "op-lite devnet depositor";

/// The text of `genesis.json`, `rollup.json` and `keys.json` for a devnet.
pub struct DirFiles {
    pub genesis: String,
    pub rollup: String,
    pub keys: String,
}

fn key_entry(a: &Account, role: &str) -> Value {
    json!({
        "role": role,
        "address": a.address,
        "privateKey": to_hex_prefixed(&a.secret()),
    })
}

/// The files describing `net`.
pub fn files(net: &Devnet) -> DirFiles {
    let cfg = net.rollup_config();
    let alloc = genesis::devnet_alloc(cfg);
    let users: Vec<Value> = (0..genesis::USERS)
        .map(|i| key_entry(&genesis::user(i), &format!("user {i}: funded on L2 with 1,000,000 ETH")))
        .collect();
    let keys = json!({
        "l1ChainId": cfg.l1_chain_id,
        "l2ChainId": cfg.l2_chain_id,
        "users": users,
        "sequencer": key_entry(
            &Account::from_seed(SEQUENCER_SEED),
            "unsafe block signer (--p2p.sequencer.key); SystemConfig on L1 names it",
        ),
        "batcher": key_entry(&Account::from_seed(BATCHER_SEED), "batcher: posts to the batch inbox on L1"),
        "depositor": key_entry(&Account::from_seed(DEPOSITOR_SEED), "L1 depositor: deposits through the portal"),
    });
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    DirFiles {
        genesis: pretty(&genesis::genesis_json(cfg, &alloc)),
        rollup: pretty(&serde_json::to_value(cfg).unwrap_or_default()),
        keys: pretty(&keys),
    }
}

/// The devnet L1's chain config (geth's format, as `--rollup.l1-chain-config` reads it):
/// Cancun and Prague from genesis, as the L1 simulator runs.
pub fn l1_chain_json(l1_chain_id: u64) -> String {
    let v = json!({
        "chainId": l1_chain_id,
        "cancunTime": 0,
        "pragueTime": 0,
        "blobSchedule": {
            "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": crate::protocol::l1_chain::CANCUN_UPDATE_FRACTION},
            "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": crate::protocol::l1_chain::PRAGUE_UPDATE_FRACTION},
        },
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// The devnet parameters that rebuild the devnet `cfg` came from (genesis time, sequencing
/// window, channel timeout, fork schedule); the rest are the devnet's defaults.
pub fn params_for(cfg: &RollupConfig) -> DevnetParams {
    let t0 = cfg.genesis.l2_time;
    DevnetParams {
        genesis_time: t0,
        seq_window_size: cfg.seq_window_size,
        channel_timeout: cfg.channel_timeout_bedrock,
        forks: Fork::ALL.iter().map(|f| (*f, cfg.forks.get(*f).map(|t| t.saturating_sub(t0)))).collect(),
        ..DevnetParams::default()
    }
}

/// Checks that the devnet rebuilt from `loaded` has `loaded` as its config: the file was
/// written by `init` (of this op-lite) and not edited since.
pub fn check_rebuilt(loaded: &RollupConfig, rebuilt: &RollupConfig) -> Result<(), String> {
    if loaded == rebuilt {
        return Ok(());
    }
    let (a, b) =
        (serde_json::to_value(loaded).unwrap_or_default(), serde_json::to_value(rebuilt).unwrap_or_default());
    let mut differ = Vec::new();
    diff("", &a, &b, &mut differ);
    Err(format!(
        "{ROLLUP_FILE} is not the config `op-lite devnet init` writes for its genesis time and forks \
         (edited, or written by another op-lite version): {} differ{}",
        differ.join(", "),
        if differ.len() == 1 { "s" } else { "" }
    ))
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff(&p, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_devnet_rebuilds_from_its_rollup_config() {
        let p = DevnetParams {
            genesis_time: 1_750_000_000,
            seq_window_size: 300,
            channel_timeout: 40,
            forks: vec![(Fork::Isthmus, Some(60)), (Fork::Karst, Some(90))],
            ..DevnetParams::default()
        };
        let net = Devnet::new(p).unwrap();
        let cfg = net.rollup_config().clone();
        let again = Devnet::new(params_for(&cfg)).unwrap();
        check_rebuilt(&cfg, again.rollup_config()).unwrap();
        assert_eq!(again.l1.genesis().block_ref().hash, cfg.genesis.l1.hash);

        // The files: rollup.json parses back to the config, keys name the signer SystemConfig holds.
        let f = files(&net);
        let back = RollupConfig::from_json(&f.rollup).unwrap();
        assert_eq!(back, cfg);
        let keys: Value = serde_json::from_str(&f.keys).unwrap();
        assert_eq!(keys["sequencer"]["address"], json!(net.unsafe_signer));
        assert_eq!(keys["batcher"]["address"], json!(cfg.genesis.system_config.batcher_addr));
        assert_eq!(keys["users"].as_array().unwrap().len(), genesis::USERS);
        let g: Value = serde_json::from_str(&f.genesis).unwrap();
        assert_eq!(g["config"]["isthmusTime"], cfg.forks.isthmus_time.unwrap());
        assert_eq!(g["config"]["karstTime"], cfg.forks.karst_time.unwrap());

        // The L1 chain config file describes the simulator's blob schedule.
        let l1 = crate::protocol::l1_chain::L1ChainSpec::from_json(&l1_chain_json(900)).unwrap();
        assert_eq!(l1.blob_schedule, crate::protocol::l1_chain::L1ChainSpec::dev(900).blob_schedule);

        // An edited file is named for what differs.
        let mut edited = cfg.clone();
        edited.seq_window_size = 301;
        edited.block_time = 1;
        let e = check_rebuilt(&edited, again.rollup_config()).unwrap_err();
        assert!(e.contains("block_time, seq_window_size differ"), "{e}");
    }
}
