//! The devnet's L2 genesis for real execution engines: the `genesis.json` op-geth and op-reth
//! start from (`--chain DIR/genesis.json`, `geth init`), and the genesis header they compute
//! from it, so `rollup.json` names the same genesis hash without patching.
//!
//! The header follows go-ethereum's `Genesis.ToBlock` (and op-reth's genesis header, which
//! matches it for OP chains): every field the file names, the alloc's state root, empty
//! transactions / receipts / ommers, and per fork active at the genesis time: the base fee
//! (London), the empty withdrawals root (Shanghai / Canyon; from Isthmus the
//! L2ToL1MessagePasser's storage root), zero blob gas and the zero parent beacon block root
//! (Cancun / Ecotone), the empty requests hash (Prague / Isthmus). The file spells every value
//! the header takes (difficulty, gas limit, base fee) so no engine falls back to a default of
//! its own.
//!
//! Pure: `tools::devnet` writes the file; the engine stand-in starts from the same header.

use serde_json::{json, Map, Value};

use super::l1_sim::Account;
use crate::protocol::header::{Header, EMPTY_OMMERS_HASH};
use crate::protocol::payload::EMPTY_REQUESTS_HASH;
use crate::protocol::primitives::{keccak256, quantity, to_hex_prefixed, Address, Bytes, B256, B64, U256};
use crate::protocol::proof::{SnapshotAccount, StateSnapshot, EMPTY_CODE_HASH};
use crate::protocol::rollup::{Fork, RollupConfig};
use crate::protocol::trie::{secure_root, EMPTY_ROOT};

/// The base fee of the genesis block (op-lite's engine stand-in keeps it on every block).
pub const GENESIS_BASE_FEE: u64 = 1_000_000;

/// What each funded dev account holds at genesis: one million ether.
pub const DEV_BALANCE: u128 = 1_000_000 * 10u128.pow(18);

/// The devnet's users: funded on L2, they send the transfers the sequencer includes.
pub const USERS: usize = 3;

/// EIP-4788 beacon roots contract (Ecotone's upgrade deploys it; a genesis with Ecotone active
/// holds it).
pub const BEACON_ROOTS_ADDRESS: Address = Address([
    0x00, 0x0f, 0x3d, 0xf6, 0xd7, 0x32, 0x80, 0x7e, 0xf1, 0x31, 0x9f, 0xb7, 0xb8, 0xbb, 0x85, 0x22, 0xd0,
    0xbe, 0xac, 0x02,
]);
/// Its runtime code (EIP-4788, "Deployment").
pub const BEACON_ROOTS_CODE: &str = "3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500";

/// EIP-2935 block hash history contract (Isthmus's upgrade deploys it).
pub const HISTORY_STORAGE_ADDRESS: Address = Address([
    0x00, 0x00, 0xf9, 0x08, 0x27, 0xf1, 0xc5, 0x3a, 0x10, 0xcb, 0x7a, 0x02, 0x33, 0x5b, 0x17, 0x53, 0x20,
    0x00, 0x29, 0x35,
]);
/// Its runtime code (EIP-2935, "Deployment").
pub const HISTORY_STORAGE_CODE: &str = "3373fffffffffffffffffffffffffffffffffffffffe14604657602036036042575f35600143038111604257611fff81430311604257611fff9006545f5260205ff35b5f5ffd5b5f35611fff60014303065500";

/// The L2ToL1MessagePasser predeploy, whose storage root an Isthmus header commits to.
pub const L2_TO_L1_MESSAGE_PASSER: Address = crate::rpc::deferred::L2_TO_L1_MESSAGE_PASSER;

/// The devnet's user `i` (funded on L2 at genesis).
pub fn user(i: usize) -> Account {
    Account::from_seed(&format!("op-lite devnet user {i}"))
}

/// The transfer the devnet's users send each other (EIP-1559, 21,000 gas), unsigned.
pub fn user_transfer(to: Address, value: U256) -> crate::protocol::tx::SignedTx {
    crate::protocol::tx::SignedTx {
        tx_type: crate::protocol::tx::EIP1559_TX_TYPE,
        gas_price: 2_000_000_000,
        max_priority_fee_per_gas: 1_000,
        gas_limit: 21_000,
        to: Some(to),
        value,
        ..Default::default()
    }
}

/// One account of the genesis state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisAccount {
    pub address: Address,
    pub balance: U256,
    pub nonce: u64,
    pub code: Vec<u8>,
    pub storage: Vec<(U256, U256)>,
}

impl GenesisAccount {
    fn funded(address: Address) -> Self {
        GenesisAccount {
            address,
            balance: U256::from_u128(DEV_BALANCE),
            nonce: 0,
            code: Vec::new(),
            storage: Vec::new(),
        }
    }

    /// A system contract as a CREATE left it: nonce 1 (EIP-161), no balance.
    fn contract(address: Address, code_hex: &str) -> Self {
        let code = crate::protocol::primitives::from_hex(code_hex).unwrap_or_default();
        GenesisAccount { address, balance: U256::ZERO, nonce: 1, code, storage: Vec::new() }
    }

    fn code_hash(&self) -> B256 {
        if self.code.is_empty() {
            EMPTY_CODE_HASH
        } else {
            keccak256(&self.code)
        }
    }
}

/// The devnet's genesis state: its users funded, and the system contracts of the forks active
/// at genesis (EIP-4788 from Ecotone, EIP-2935 from Isthmus), as the upgrade transactions
/// would have left them.
pub fn devnet_alloc(cfg: &RollupConfig) -> Vec<GenesisAccount> {
    let t = cfg.genesis.l2_time;
    let mut alloc: Vec<GenesisAccount> =
        (0..USERS).map(|i| GenesisAccount::funded(user(i).address)).collect();
    if cfg.is_active(Fork::Ecotone, t) {
        alloc.push(GenesisAccount::contract(BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CODE));
    }
    if cfg.is_active(Fork::Isthmus, t) {
        alloc.push(GenesisAccount::contract(HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CODE));
    }
    alloc
}

/// The state root of `alloc`.
pub fn state_root(alloc: &[GenesisAccount]) -> B256 {
    StateSnapshot {
        accounts: alloc
            .iter()
            .map(|a| SnapshotAccount {
                address: a.address,
                nonce: a.nonce,
                balance: a.balance,
                code_hash: a.code_hash(),
                storage: &a.storage,
            })
            .collect(),
    }
    .root()
}

/// The storage root of one account of `alloc` (the empty root when absent or without storage).
fn storage_root(alloc: &[GenesisAccount], address: &Address) -> B256 {
    let Some(a) = alloc.iter().find(|a| a.address == *address) else { return EMPTY_ROOT };
    let kv: Vec<([u8; 32], Vec<u8>)> = a
        .storage
        .iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(k, v)| (k.0, crate::protocol::proof::encode_slot_value(v)))
        .collect();
    secure_root(&kv)
}

/// The genesis `extraData`: from Holocene the EIP-1559 parameters the next block reads (with
/// Jovian's minimum base fee from Jovian), empty before.
pub fn extra_data(cfg: &RollupConfig) -> Vec<u8> {
    let t = cfg.genesis.l2_time;
    let sys = &cfg.genesis.system_config;
    if !cfg.is_active(Fork::Holocene, t) {
        return Vec::new();
    }
    crate::protocol::eip1559::ExtraData::from_attributes(
        sys.eip1559_params,
        cfg.is_active(Fork::Jovian, t).then_some(sys.min_base_fee),
        &cfg.chain_op_config(),
    )
    .map(|e| e.encode())
    .unwrap_or_default()
}

/// The genesis block header an engine computes from `genesis_json(cfg, alloc)`.
pub fn header(cfg: &RollupConfig, alloc: &[GenesisAccount]) -> Header {
    let t = cfg.genesis.l2_time;
    let active = |f| cfg.is_active(f, t);
    let withdrawals_root = if active(Fork::Isthmus) {
        Some(storage_root(alloc, &L2_TO_L1_MESSAGE_PASSER))
    } else {
        active(Fork::Canyon).then_some(EMPTY_ROOT)
    };
    Header {
        parent_hash: B256::ZERO,
        ommers_hash: EMPTY_OMMERS_HASH,
        beneficiary: Address::default(),
        state_root: state_root(alloc),
        transactions_root: EMPTY_ROOT,
        receipts_root: EMPTY_ROOT,
        logs_bloom: Default::default(),
        difficulty: U256::ZERO,
        number: cfg.genesis.l2.number,
        gas_limit: cfg.genesis.system_config.gas_limit,
        gas_used: 0,
        timestamp: t,
        extra_data: Bytes(extra_data(cfg)),
        mix_hash: B256::ZERO,
        nonce: B64::ZERO,
        base_fee_per_gas: Some(GENESIS_BASE_FEE),
        withdrawals_root,
        blob_gas_used: active(Fork::Ecotone).then_some(0),
        excess_blob_gas: active(Fork::Ecotone).then_some(0),
        parent_beacon_block_root: active(Fork::Ecotone).then_some(B256::ZERO),
        requests_hash: active(Fork::Isthmus).then_some(EMPTY_REQUESTS_HASH),
    }
}

/// The chain-config name of each OP fork an execution engine schedules (Delta changes only
/// the rollup node; Karst is written only when scheduled, for engines that know it).
fn engine_fork_key(f: Fork) -> Option<&'static str> {
    Some(match f {
        Fork::Regolith => "regolithTime",
        Fork::Canyon => "canyonTime",
        Fork::Delta => return None,
        Fork::Ecotone => "ecotoneTime",
        Fork::Fjord => "fjordTime",
        Fork::Granite => "graniteTime",
        Fork::Holocene => "holoceneTime",
        Fork::Isthmus => "isthmusTime",
        Fork::Jovian => "jovianTime",
        Fork::Karst => "karstTime",
        Fork::Interop => "interopTime",
    })
}

/// `genesis.json` in the op-geth / op-reth format for `cfg`'s L2 chain and `alloc`.
pub fn genesis_json(cfg: &RollupConfig, alloc: &[GenesisAccount]) -> Value {
    let h = header(cfg, alloc);
    let mut config = Map::new();
    config.insert("chainId".into(), json!(cfg.l2_chain_id));
    // Every pre-merge Ethereum fork at block 0, the merge done at genesis.
    for key in [
        "homesteadBlock",
        "eip150Block",
        "eip155Block",
        "eip158Block",
        "byzantiumBlock",
        "constantinopleBlock",
        "petersburgBlock",
        "istanbulBlock",
        "muirGlacierBlock",
        "berlinBlock",
        "londonBlock",
        "arrowGlacierBlock",
        "grayGlacierBlock",
        "mergeNetsplitBlock",
        "bedrockBlock",
    ] {
        config.insert(key.into(), json!(0));
    }
    config.insert("terminalTotalDifficulty".into(), json!(0));
    config.insert("terminalTotalDifficultyPassed".into(), json!(true));
    // The L1 forks an OP engine runs with the OP fork that brings them.
    for (key, fork) in
        [("shanghaiTime", Fork::Canyon), ("cancunTime", Fork::Ecotone), ("pragueTime", Fork::Isthmus)]
    {
        if let Some(at) = cfg.forks.get(fork) {
            config.insert(key.into(), json!(at));
        }
    }
    for f in Fork::ALL {
        if let (Some(key), Some(at)) = (engine_fork_key(f), cfg.forks.get(f)) {
            config.insert(key.into(), json!(at));
        }
    }
    // The blob schedule geth asks for with Cancun / Prague (an L2 carries no blobs).
    let mut blobs = Map::new();
    if cfg.forks.get(Fork::Ecotone).is_some() {
        blobs.insert("cancun".into(), json!({"target": 3, "max": 6, "baseFeeUpdateFraction": 3_338_477}));
    }
    if cfg.forks.get(Fork::Isthmus).is_some() {
        blobs.insert("prague".into(), json!({"target": 6, "max": 9, "baseFeeUpdateFraction": 5_007_716}));
    }
    if !blobs.is_empty() {
        config.insert("blobSchedule".into(), Value::Object(blobs));
    }
    let op = cfg.chain_op_config();
    config.insert(
        "optimism".into(),
        json!({
            "eip1559Elasticity": op.eip1559_elasticity,
            "eip1559Denominator": op.eip1559_denominator,
            "eip1559DenominatorCanyon": op.eip1559_denominator_canyon,
        }),
    );
    let mut accounts = Map::new();
    for a in alloc {
        let mut entry = Map::new();
        entry.insert("balance".into(), json!(u256_quantity(&a.balance)));
        if a.nonce != 0 {
            entry.insert("nonce".into(), json!(quantity(a.nonce)));
        }
        if !a.code.is_empty() {
            entry.insert("code".into(), json!(to_hex_prefixed(&a.code)));
        }
        if !a.storage.is_empty() {
            let slots: Map<String, Value> = a
                .storage
                .iter()
                .map(|(k, v)| (to_hex_prefixed(&k.0), json!(to_hex_prefixed(&v.0))))
                .collect();
            entry.insert("storage".into(), Value::Object(slots));
        }
        accounts.insert(to_hex_prefixed(&a.address.0), Value::Object(entry));
    }
    json!({
        "config": Value::Object(config),
        "nonce": "0x0",
        "timestamp": quantity(h.timestamp),
        "extraData": to_hex_prefixed(&h.extra_data.0),
        "gasLimit": quantity(h.gas_limit),
        "difficulty": "0x0",
        "mixHash": h.mix_hash,
        "coinbase": h.beneficiary,
        "number": quantity(h.number),
        "gasUsed": "0x0",
        "parentHash": h.parent_hash,
        "baseFeePerGas": h.base_fee_per_gas.map(quantity),
        "excessBlobGas": h.excess_blob_gas.map(quantity),
        "blobGasUsed": h.blob_gas_used.map(quantity),
        "alloc": Value::Object(accounts),
    })
}

/// A 256-bit quantity in JSON-RPC form (`0x` and no leading zeros).
fn u256_quantity(v: &U256) -> String {
    let hex = crate::protocol::primitives::to_hex(v.to_be_trimmed());
    let hex = hex.trim_start_matches('0');
    if hex.is_empty() {
        "0x0".into()
    } else {
        format!("0x{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rollup::tests_support::with_forks_until;

    #[test]
    fn system_contract_code_is_the_deployed_code() {
        // The code hashes mainnet's deployments carry.
        let code = |h: &str| keccak256(crate::protocol::primitives::from_hex(h).unwrap());
        assert_eq!(
            code(BEACON_ROOTS_CODE).to_string(),
            "0xf57acd40259872606d76197ef052f3d35588dadf919ee1f0e3cb9b62d3f4b02c"
        );
        assert_eq!(
            code(HISTORY_STORAGE_CODE).to_string(),
            "0x6e49e66782037c0555897870e29fa5e552daf4719552131a0abce779daec0a5d"
        );
    }

    #[test]
    fn header_fields_follow_the_forks_at_genesis() {
        // Base's config with Canyon .. Isthmus at its genesis time: every optional field.
        let mut cfg = with_forks_until(Fork::Isthmus, 0, 0);
        cfg.genesis.l2_time = 1_000;
        let alloc = devnet_alloc(&cfg);
        assert_eq!(alloc.len(), USERS + 2);
        let h = header(&cfg, &alloc);
        assert_eq!(h.withdrawals_root, Some(EMPTY_ROOT));
        assert_eq!(h.requests_hash, Some(EMPTY_REQUESTS_HASH));
        assert_eq!(h.parent_beacon_block_root, Some(B256::ZERO));
        assert_eq!(h.extra_data.0.len(), 9, "Holocene extraData: version, denominator, elasticity");
        // The message passer's storage is what an Isthmus genesis commits to.
        let mut with_storage = alloc.clone();
        with_storage.push(GenesisAccount {
            address: L2_TO_L1_MESSAGE_PASSER,
            balance: U256::ZERO,
            nonce: 0,
            code: vec![0x00],
            storage: vec![(U256::from_u64(1), U256::from_u64(1))],
        });
        let h2 = header(&cfg, &with_storage);
        assert_ne!(h2.withdrawals_root, Some(EMPTY_ROOT));
        assert_ne!(h2.state_root, h.state_root);

        // Bedrock only: no London-after fields but the base fee, no system contracts.
        let mut bedrock = with_forks_until(Fork::Isthmus, 0, 0);
        bedrock.forks = Default::default();
        bedrock.genesis.l2_time = 1_000;
        let alloc = devnet_alloc(&bedrock);
        assert_eq!(alloc.len(), USERS);
        let h = header(&bedrock, &alloc);
        assert_eq!(
            (h.withdrawals_root, h.blob_gas_used, h.parent_beacon_block_root, h.requests_hash),
            (None, None, None, None)
        );
        assert!(h.extra_data.0.is_empty());
    }

    #[test]
    fn genesis_json_names_what_the_header_holds() {
        let mut cfg = with_forks_until(Fork::Jovian, 0, 0);
        cfg.genesis.l2_time = 1_000;
        let alloc = devnet_alloc(&cfg);
        let j = genesis_json(&cfg, &alloc);
        let c = &j["config"];
        assert_eq!(c["chainId"], 8453);
        for key in ["shanghaiTime", "cancunTime", "pragueTime", "canyonTime", "isthmusTime", "jovianTime"] {
            assert_eq!(c[key], 0, "{key}");
        }
        assert!(c.get("deltaTime").is_none() && c.get("karstTime").is_none());
        assert_eq!(c["optimism"]["eip1559DenominatorCanyon"], 250);
        assert_eq!(j["baseFeePerGas"], "0xf4240");
        assert_eq!(j["difficulty"], "0x0");
        // Jovian's extraData: version 1, denominator, elasticity, minimum base fee.
        let extra = j["extraData"].as_str().unwrap();
        assert_eq!(extra.len(), 2 + 2 * 17);
        assert!(extra.starts_with("0x01"));
        let user0 = to_hex_prefixed(&user(0).address.0);
        assert_eq!(j["alloc"][user0.as_str()]["balance"], "0xd3c21bcecceda1000000");
        let beacon = to_hex_prefixed(&BEACON_ROOTS_ADDRESS.0);
        assert_eq!(j["alloc"][beacon.as_str()]["nonce"], "0x1");
    }
}
