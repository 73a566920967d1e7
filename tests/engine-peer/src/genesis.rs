//! The chain an engine runs, read from a `genesis.json` in the op-geth / op-reth format (what
//! `op-lite devnet init DIR` writes): chain id, the OP fork times, the EIP-1559 parameters, and
//! the genesis block built the way op-reth builds it (alloc state root, per-fork header fields).

use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH};
use alloy_eips::eip1559::BaseFeeParams;
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_op_hardforks::{ForkCondition, OpChainHardforks, OpHardfork, OpHardforks};
use alloy_primitives::{Address, Bytes, B256, B64, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use serde_json::Value;

use crate::state::{Codes, State};

/// The L2ToL1MessagePasser predeploy, whose storage root an Isthmus header commits to.
pub const MESSAGE_PASSER: Address =
    Address::new([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);

/// What the engine needs to know about its chain.
#[derive(Clone, Debug)]
pub struct Chain {
    pub chain_id: u64,
    pub forks: OpChainHardforks,
    /// Pre-Canyon (London) and Canyon EIP-1559 parameters.
    pub base_fee_params: BaseFeeParams,
    pub base_fee_params_canyon: BaseFeeParams,
}

impl Chain {
    pub fn active(&self, fork: OpHardfork, t: u64) -> bool {
        self.forks.op_fork_activation(fork).active_at_timestamp(t)
    }

    /// The EIP-1559 parameters the chain config gives at `t` (Holocene blocks override them
    /// through extraData).
    pub fn base_fee_params_at(&self, t: u64) -> BaseFeeParams {
        if self.active(OpHardfork::Canyon, t) {
            self.base_fee_params_canyon
        } else {
            self.base_fee_params
        }
    }
}

fn u64_field(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

fn u256_field(v: &Value) -> Option<U256> {
    match v {
        Value::Number(n) => n.as_u64().map(U256::from),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) => U256::from_str_radix(h, 16).ok(),
            None => U256::from_str_radix(s, 10).ok(),
        },
        _ => None,
    }
}

fn bytes_field(v: &Value) -> Result<Bytes, String> {
    match v.as_str() {
        None => Ok(Bytes::new()),
        Some(s) => s.parse::<Bytes>().map_err(|e| format!("{s}: {e}")),
    }
}

/// The chain, the genesis state and the genesis header of `genesis_json`.
pub fn load(genesis_json: &Value, codes: &mut Codes) -> Result<(Chain, State, Header), String> {
    let cfg = &genesis_json["config"];
    let chain_id = u64_field(&cfg["chainId"]).ok_or("config.chainId missing")?;
    let op = &cfg["optimism"];
    let elasticity = u64_field(&op["eip1559Elasticity"]).unwrap_or(6) as u128;
    let denominator = u64_field(&op["eip1559Denominator"]).unwrap_or(50) as u128;
    let denominator_canyon = u64_field(&op["eip1559DenominatorCanyon"]).unwrap_or(250) as u128;
    let mut forks = vec![(OpHardfork::Bedrock, ForkCondition::Block(0))];
    for (key, fork) in [
        ("regolithTime", OpHardfork::Regolith),
        ("canyonTime", OpHardfork::Canyon),
        ("ecotoneTime", OpHardfork::Ecotone),
        ("fjordTime", OpHardfork::Fjord),
        ("graniteTime", OpHardfork::Granite),
        ("holoceneTime", OpHardfork::Holocene),
        ("isthmusTime", OpHardfork::Isthmus),
        ("jovianTime", OpHardfork::Jovian),
        ("karstTime", OpHardfork::Karst),
        ("interopTime", OpHardfork::Interop),
    ] {
        let cond = u64_field(&cfg[key]).map_or(ForkCondition::Never, ForkCondition::Timestamp);
        forks.push((fork, cond));
    }
    let chain = Chain {
        chain_id,
        forks: OpChainHardforks::new(forks),
        base_fee_params: BaseFeeParams::new(denominator, elasticity),
        base_fee_params_canyon: BaseFeeParams::new(denominator_canyon, elasticity),
    };
    let mut alloc = Vec::new();
    for (addr, acc) in genesis_json["alloc"].as_object().ok_or("alloc missing")? {
        let address: Address = addr.parse().map_err(|e| format!("alloc {addr}: {e}"))?;
        let balance = u256_field(&acc["balance"]).unwrap_or_default();
        let nonce = u64_field(&acc["nonce"]).unwrap_or(0);
        let code = bytes_field(&acc["code"])?;
        let mut storage = Vec::new();
        if let Some(s) = acc["storage"].as_object() {
            for (k, v) in s {
                let k = u256_field(&Value::String(k.clone())).ok_or(format!("alloc {addr}: slot {k}"))?;
                storage.push((k, u256_field(v).ok_or(format!("alloc {addr}: value {v}"))?));
            }
        }
        alloc.push((address, balance, nonce, code, storage));
    }
    let state = State::genesis(alloc, codes);

    let timestamp = u64_field(&genesis_json["timestamp"]).unwrap_or(0);
    let active = |f| chain.active(f, timestamp);
    let withdrawals_root = if active(OpHardfork::Isthmus) {
        Some(state.account(&MESSAGE_PASSER).map_or(EMPTY_ROOT_HASH, |a| a.storage_root))
    } else {
        active(OpHardfork::Canyon).then_some(EMPTY_ROOT_HASH)
    };
    let hex_b256 = |k: &str| -> Result<B256, String> {
        genesis_json[k].as_str().map_or(Ok(B256::ZERO), |s| s.parse().map_err(|e| format!("{k}: {e}")))
    };
    let header = Header {
        parent_hash: hex_b256("parentHash")?,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis_json["coinbase"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default(),
        state_root: state.root(),
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        logs_bloom: Default::default(),
        difficulty: u256_field(&genesis_json["difficulty"]).unwrap_or_default(),
        number: u64_field(&genesis_json["number"]).unwrap_or(0),
        gas_limit: u64_field(&genesis_json["gasLimit"]).ok_or("gasLimit missing")?,
        gas_used: u64_field(&genesis_json["gasUsed"]).unwrap_or(0),
        timestamp,
        extra_data: bytes_field(&genesis_json["extraData"])?,
        mix_hash: hex_b256("mixHash")?,
        nonce: B64::from(u64_field(&genesis_json["nonce"]).unwrap_or(0)),
        base_fee_per_gas: Some(u64_field(&genesis_json["baseFeePerGas"]).unwrap_or(1_000_000_000)),
        withdrawals_root,
        blob_gas_used: active(OpHardfork::Ecotone)
            .then(|| u64_field(&genesis_json["blobGasUsed"]).unwrap_or(0)),
        excess_blob_gas: active(OpHardfork::Ecotone)
            .then(|| u64_field(&genesis_json["excessBlobGas"]).unwrap_or(0)),
        parent_beacon_block_root: active(OpHardfork::Ecotone).then_some(B256::ZERO),
        requests_hash: active(OpHardfork::Isthmus).then_some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    };
    Ok((chain, state, header))
}
