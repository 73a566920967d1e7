//! Network upgrade transactions: the deposits the derivation pipeline inserts, after the L1-info
//! deposit and the user deposits, into a fork's activation block.
//!
//! Ecotone (6), Fjord (3), Isthmus (8) and Jovian (5) are listed here as in op-node
//! `derive/{ecotone,fjord,isthmus,jovian}_upgrade_transactions.go` and specs
//! `protocol/{ecotone,fjord,isthmus,jovian}/derivation.md`. The deployment bytecode in the `.bin`
//! files of this folder is raw bytes of the specs' `specs/static/bytecode/<name>.txt` at
//! ethereum-optimism/specs commit fd72cf797df6778fca67177c5335563bc602757c;
//! `ecotone-eip4788-deployment.bin` and `isthmus-eip2935-deployment.bin` are the creation code
//! given inline in the Ecotone and Isthmus derivation specs at that commit.
//!
//! Jovian intents follow op-node and kona ("Jovian: L1 Block Deployment", ...), which derive the
//! real chains; the spec text spells some of them differently ("Jovian: L1Block Deployment").
//!
//! Karst (31 transactions) comes from `karst_nut_bundle.json`, a verbatim copy of op-node's
//! `op-core/nuts/bundles/karst_nut_bundle.json` (ethereum-optimism/optimism, last changed in
//! 79a83f3ce7, as of 4c8b17472b7b6ffcb96785e2eefeddb30223e616; sha256
//! 08f5df36f7ff29a9421ab84beebe96684a7455df9a5d234a2468613a4008ad91), which `build.rs` turns into
//! a binary table. Its gas is added to the activation block's gas limit and, unless the chain
//! keeps it (`keep_karst_upgrade_gas`), removed again from the next block's system config.
//!
//! `build.rs` packs the bytecode and the Karst table into one brotli stream (`PACKED`, 42 KB of
//! the binary instead of 195 KB); building an activation block's deposits inflates it whole
//! (195 KB of heap for the moment), once per activation block however many forks it activates.

use std::fmt;

use super::deposit::upgrade_source;
use super::l1_info::{L1_BLOCK_ADDRESS, L1_INFO_DEPOSITOR};
use super::primitives::{keccak256, Address, Bytes, U256};
use super::rlp;
use super::tx::DepositTx;
use crate::protocol::rollup::{Fork, RollupConfig};

/// Why upgrade transactions could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeError {
    /// The embedded upgrade code or Karst table is malformed (a build problem, not input).
    CorruptTable,
    /// op-lite does not build this fork's upgrade transactions.
    Unsupported(Fork),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::CorruptTable => write!(f, "embedded upgrade code or Karst NUT table is malformed"),
            UpgradeError::Unsupported(fork) => {
                write!(f, "{fork} network upgrade transactions are not supported")
            }
        }
    }
}

impl std::error::Error for UpgradeError {}

/// The upgrade deposits of the forks activating in one L2 block, and the gas added to that
/// block's gas limit for them (NUT-bundle forks only, i.e. Karst on).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivationUpgrades {
    pub txs: Vec<DepositTx>,
    pub extra_gas: u64,
}

/// The upgrade deposits of `fork`, in order; empty for forks without any. Interop's are not
/// built by op-lite and yield `Unsupported`.
pub fn upgrade_txs(fork: Fork) -> Result<Vec<DepositTx>, UpgradeError> {
    fork_txs(fork, &mut None)
}

/// `upgrade_txs`, inflating the packed code into `unpacked` only if it is not there yet (one
/// block may activate several forks).
fn fork_txs(fork: Fork, unpacked: &mut Option<Vec<u8>>) -> Result<Vec<DepositTx>, UpgradeError> {
    match fork {
        Fork::Ecotone => Ok(from_spec(&ECOTONE, code(unpacked)?)),
        Fork::Fjord => Ok(from_spec(&FJORD, code(unpacked)?)),
        Fork::Isthmus => Ok(from_spec(&ISTHMUS, code(unpacked)?)),
        Fork::Jovian => Ok(from_spec(&JOVIAN, code(unpacked)?)),
        Fork::Karst => karst_txs(code(unpacked)?),
        Fork::Interop => Err(UpgradeError::Unsupported(fork)),
        Fork::Regolith | Fork::Canyon | Fork::Delta | Fork::Granite | Fork::Holocene => Ok(Vec::new()),
    }
}

/// The unpacked code, inflated into `cache` on first use.
fn code(cache: &mut Option<Vec<u8>>) -> Result<&[u8], UpgradeError> {
    if cache.is_none() {
        *cache = Some(unpack()?);
    }
    Ok(cache.as_deref().unwrap_or_default())
}

/// The total gas limit of `fork`'s upgrade deposits (Karst: 55,370,657); 0 without any.
pub fn upgrade_gas(fork: Fork) -> u64 {
    let sum = |spec: &[Spec]| spec.iter().map(|s| s.gas).sum();
    match fork {
        Fork::Ecotone => sum(&ECOTONE),
        Fork::Fjord => sum(&FJORD),
        Fork::Isthmus => sum(&ISTHMUS),
        Fork::Jovian => sum(&JOVIAN),
        Fork::Karst => KARST_GAS,
        _ => 0,
    }
}

/// True for the forks whose upgrade gas is added to the activation block's gas limit.
fn has_nut_bundle(fork: Fork) -> bool {
    fork >= Fork::Karst
}

/// The upgrade deposits and extra gas of the L2 block at `l2_time`, in op-node's order of forks
/// (op-node `PreparePayloadAttributes`).
pub fn activation_upgrades(cfg: &RollupConfig, l2_time: u64) -> Result<ActivationUpgrades, UpgradeError> {
    let mut out = ActivationUpgrades::default();
    let mut unpacked = None;
    for fork in Fork::ALL {
        if !cfg.is_activation_block(fork, l2_time) {
            continue;
        }
        out.txs.extend(fork_txs(fork, &mut unpacked)?);
        if has_nut_bundle(fork) {
            out.extra_gas += upgrade_gas(fork);
        }
    }
    Ok(out)
}

/// The upgrade gas to subtract from the gas limit of the block at `block_time` when its system
/// config is rebuilt from it (op-node `upgradeGasToStrip`, the "sticky upgrade gas" fix): the gas
/// of every NUT-bundle fork activating in that block, except Karst when the chain keeps it.
pub fn upgrade_gas_to_strip(cfg: &RollupConfig, block_time: u64) -> u64 {
    Fork::ALL
        .into_iter()
        .filter(|f| has_nut_bundle(*f) && cfg.is_activation_block(*f, block_time))
        .filter(|f| !(*f == Fork::Karst && cfg.keep_karst_upgrade_gas))
        .map(upgrade_gas)
        .sum()
}

/// One upgrade deposit as the spec lists it.
struct Spec {
    intent: &'static str,
    from: Address,
    to: Option<Address>,
    gas: u64,
    data: Data,
}

enum Data {
    /// Contract creation code.
    Code(Piece),
    /// `upgradeTo(address)` to the contract the deployer creates with nonce 0.
    UpgradeTo { deployer: Address },
    /// A call without arguments.
    Call([u8; 4]),
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("invalid hex digit"),
    }
}

/// An address from `0x`-prefixed hex, evaluated at compile time.
const fn addr(s: &str) -> Address {
    let b = s.as_bytes();
    let mut out = [0u8; 20];
    let mut i = 0;
    while i < 20 {
        out[i] = nibble(b[2 + 2 * i]) << 4 | nibble(b[3 + 2 * i]);
        i += 1;
    }
    Address(out)
}

const ZERO: Address = Address::ZERO;
const GAS_PRICE_ORACLE: Address = addr("0x420000000000000000000000000000000000000F");
const OPERATOR_FEE_VAULT: Address = addr("0x420000000000000000000000000000000000001B");
const EIP4788_DEPLOYER: Address = addr("0x0B799C86a49DEeb90402691F1041aa3AF2d3C875");
const EIP2935_DEPLOYER: Address = addr("0x3462413Af4609098e1E27A490f554f260213D685");

/// `upgradeTo(address)`.
const UPGRADE_TO: [u8; 4] = [0x36, 0x59, 0xcf, 0xe6];
/// `setEcotone()`.
const SET_ECOTONE: [u8; 4] = [0x22, 0xb9, 0x0a, 0xb3];
/// `setFjord()`.
const SET_FJORD: [u8; 4] = [0x8e, 0x98, 0xb1, 0x06];
/// `setIsthmus()`.
const SET_ISTHMUS: [u8; 4] = [0x29, 0x1b, 0x03, 0x83];
/// `setJovian()`.
const SET_JOVIAN: [u8; 4] = [0xb3, 0xd7, 0x20, 0x79];

const fn deploy(intent: &'static str, from: Address, gas: u64, code: Piece) -> Spec {
    Spec { intent, from, to: None, gas, data: Data::Code(code) }
}

const fn proxy_update(intent: &'static str, proxy: Address, deployer: Address) -> Spec {
    Spec { intent, from: ZERO, to: Some(proxy), gas: 50_000, data: Data::UpgradeTo { deployer } }
}

const fn enable(intent: &'static str, gas: u64, selector: [u8; 4]) -> Spec {
    Spec { intent, from: L1_INFO_DEPOSITOR, to: Some(GAS_PRICE_ORACLE), gas, data: Data::Call(selector) }
}

const ECOTONE_L1_BLOCK_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000000");
const ECOTONE_GPO_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000001");
const FJORD_GPO_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000002");
const ISTHMUS_L1_BLOCK_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000003");
const ISTHMUS_GPO_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000004");
const ISTHMUS_OFV_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000005");
const JOVIAN_L1_BLOCK_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000006");
const JOVIAN_GPO_DEPLOYER: Address = addr("0x4210000000000000000000000000000000000007");

const ECOTONE: [Spec; 6] = [
    deploy("Ecotone: L1 Block Deployment", ECOTONE_L1_BLOCK_DEPLOYER, 375_000, ECOTONE_L1_BLOCK_DEPLOYMENT),
    deploy(
        "Ecotone: Gas Price Oracle Deployment",
        ECOTONE_GPO_DEPLOYER,
        1_000_000,
        ECOTONE_GAS_PRICE_ORACLE_DEPLOYMENT,
    ),
    proxy_update("Ecotone: L1 Block Proxy Update", L1_BLOCK_ADDRESS, ECOTONE_L1_BLOCK_DEPLOYER),
    proxy_update("Ecotone: Gas Price Oracle Proxy Update", GAS_PRICE_ORACLE, ECOTONE_GPO_DEPLOYER),
    enable("Ecotone: Gas Price Oracle Set Ecotone", 80_000, SET_ECOTONE),
    // Gas 0x3d090 as EIP-4788 defines it.
    deploy(
        "Ecotone: beacon block roots contract deployment",
        EIP4788_DEPLOYER,
        250_000,
        ECOTONE_EIP4788_DEPLOYMENT,
    ),
];

const FJORD: [Spec; 3] = [
    deploy(
        "Fjord: Gas Price Oracle Deployment",
        FJORD_GPO_DEPLOYER,
        1_450_000,
        FJORD_GAS_PRICE_ORACLE_DEPLOYMENT,
    ),
    proxy_update("Fjord: Gas Price Oracle Proxy Update", GAS_PRICE_ORACLE, FJORD_GPO_DEPLOYER),
    enable("Fjord: Gas Price Oracle Set Fjord", 90_000, SET_FJORD),
];

const ISTHMUS: [Spec; 8] = [
    deploy("Isthmus: L1 Block Deployment", ISTHMUS_L1_BLOCK_DEPLOYER, 425_000, ISTHMUS_L1_BLOCK_DEPLOYMENT),
    deploy(
        "Isthmus: Gas Price Oracle Deployment",
        ISTHMUS_GPO_DEPLOYER,
        1_625_000,
        ISTHMUS_GAS_PRICE_ORACLE_DEPLOYMENT,
    ),
    deploy(
        "Isthmus: Operator Fee Vault Deployment",
        ISTHMUS_OFV_DEPLOYER,
        500_000,
        ISTHMUS_OPERATOR_FEE_DEPLOYMENT,
    ),
    proxy_update("Isthmus: L1 Block Proxy Update", L1_BLOCK_ADDRESS, ISTHMUS_L1_BLOCK_DEPLOYER),
    proxy_update("Isthmus: Gas Price Oracle Proxy Update", GAS_PRICE_ORACLE, ISTHMUS_GPO_DEPLOYER),
    proxy_update("Isthmus: Operator Fee Vault Proxy Update", OPERATOR_FEE_VAULT, ISTHMUS_OFV_DEPLOYER),
    enable("Isthmus: Gas Price Oracle Set Isthmus", 90_000, SET_ISTHMUS),
    deploy("Isthmus: EIP-2935 Contract Deployment", EIP2935_DEPLOYER, 250_000, ISTHMUS_EIP2935_DEPLOYMENT),
];

const JOVIAN: [Spec; 5] = [
    deploy("Jovian: L1 Block Deployment", JOVIAN_L1_BLOCK_DEPLOYER, 447_315, JOVIAN_L1_BLOCK_DEPLOYMENT),
    proxy_update("Jovian: L1 Block Proxy Update", L1_BLOCK_ADDRESS, JOVIAN_L1_BLOCK_DEPLOYER),
    deploy(
        "Jovian: Gas Price Oracle Deployment",
        JOVIAN_GPO_DEPLOYER,
        1_750_714,
        JOVIAN_GAS_PRICE_ORACLE_DEPLOYMENT,
    ),
    proxy_update("Jovian: Gas Price Oracle Proxy Update", GAS_PRICE_ORACLE, JOVIAN_GPO_DEPLOYER),
    enable("Jovian: Gas Price Oracle Set Jovian", 90_000, SET_JOVIAN),
];

/// The address `deployer` creates a contract at with nonce 0: keccak256(rlp([deployer, 0]))[12..].
fn created_address(deployer: &Address) -> Address {
    let enc = rlp::encode_list(|o| {
        rlp::put_bytes(o, &deployer.0);
        rlp::put_u64(o, 0);
    });
    Address::from_slice(&keccak256(enc).0[12..]).unwrap_or_default()
}

fn from_spec(spec: &[Spec], unpacked: &[u8]) -> Vec<DepositTx> {
    spec.iter()
        .map(|s| {
            let input = match &s.data {
                Data::Code(code) => code.of(unpacked).to_vec(),
                Data::Call(selector) => selector.to_vec(),
                Data::UpgradeTo { deployer } => {
                    let mut d = UPGRADE_TO.to_vec();
                    d.extend_from_slice(&[0; 12]);
                    d.extend_from_slice(&created_address(deployer).0);
                    d
                }
            };
            DepositTx {
                source_hash: upgrade_source(s.intent),
                from: s.from,
                to: s.to,
                mint: U256::ZERO,
                value: U256::ZERO,
                gas_limit: s.gas,
                is_system_tx: false,
                input: Bytes(input),
            }
        })
        .collect()
}

// The layout `build.rs` wrote: a `Piece` constant per bytecode file and for the Karst table,
// `UNPACKED_LEN`, `KARST_COUNT` and `KARST_GAS`.
include!(concat!(env!("OUT_DIR"), "/upgrade_code.rs"));

/// The upgrade bytecode and the Karst table, brotli-compressed by `build.rs`.
static PACKED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/upgrade_code.br"));

/// Where one file's bytes lie in the unpacked stream.
#[derive(Clone, Copy)]
struct Piece {
    start: usize,
    len: usize,
}

impl Piece {
    /// This piece of `unpacked` (which `unpack` made exactly `UNPACKED_LEN` long).
    fn of(self, unpacked: &[u8]) -> &[u8] {
        unpacked.get(self.start..self.start + self.len).unwrap_or_default()
    }
}

/// Inflates `PACKED`: exactly `UNPACKED_LEN` bytes, else `CorruptTable`.
fn unpack() -> Result<Vec<u8>, UpgradeError> {
    unpack_from(PACKED)
}

fn unpack_from(packed: &[u8]) -> Result<Vec<u8>, UpgradeError> {
    match super::channel::unbrotli(packed, UNPACKED_LEN) {
        (bytes, super::channel::StreamEnd::Complete) if bytes.len() == UNPACKED_LEN => Ok(bytes),
        _ => Err(UpgradeError::CorruptTable),
    }
}

/// A reader over the embedded table; None on any overrun.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

fn karst_txs(unpacked: &[u8]) -> Result<Vec<DepositTx>, UpgradeError> {
    let parse = || -> Option<Vec<DepositTx>> {
        let mut c = Cursor(KARST_TABLE.of(unpacked));
        let mut txs = Vec::new();
        for i in 0..KARST_COUNT {
            let intent_len = u16::from_be_bytes(c.array()?) as usize;
            let intent = std::str::from_utf8(c.take(intent_len)?).ok()?;
            let from = Address(c.array()?);
            let to = match c.array::<1>()? {
                [0] => None,
                [1] => Some(Address(c.array()?)),
                _ => return None,
            };
            let gas_limit = u64::from_be_bytes(c.array()?);
            let data_len = usize::try_from(u32::from_be_bytes(c.array()?)).ok()?;
            let input = Bytes(c.take(data_len)?.to_vec());
            txs.push(DepositTx {
                // The bundle's intents are namespaced by fork and index (op-node `toDepositTransactions`).
                source_hash: upgrade_source(&format!("Karst {i}: {intent}")),
                from,
                to,
                mint: U256::ZERO,
                value: U256::ZERO,
                gas_limit,
                is_system_tx: false,
                input,
            });
        }
        c.0.is_empty().then_some(txs)
    };
    parse().ok_or(UpgradeError::CorruptTable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rollup::tests_support::BASE_JSON;

    #[test]
    fn selectors_are_keccak_of_signatures() {
        for (sel, sig) in [
            (UPGRADE_TO, "upgradeTo(address)"),
            (SET_ECOTONE, "setEcotone()"),
            (SET_FJORD, "setFjord()"),
            (SET_ISTHMUS, "setIsthmus()"),
            (SET_JOVIAN, "setJovian()"),
        ] {
            assert_eq!(keccak256(sig.as_bytes()).0[..4], sel, "{sig}");
        }
    }

    #[test]
    fn counts_and_gas_per_fork() {
        for (fork, n, gas) in [
            (Fork::Ecotone, 6, 1_805_000),
            (Fork::Fjord, 3, 1_590_000),
            (Fork::Isthmus, 8, 3_040_000),
            (Fork::Jovian, 5, 2_388_029),
            (Fork::Karst, 31, 55_370_657),
            (Fork::Holocene, 0, 0),
        ] {
            let txs = upgrade_txs(fork).unwrap();
            assert_eq!(txs.len(), n, "{fork}");
            assert_eq!(txs.iter().map(|t| t.gas_limit).sum::<u64>(), gas, "{fork}");
            assert_eq!(upgrade_gas(fork), gas, "{fork}");
        }
        assert_eq!(upgrade_txs(Fork::Interop), Err(UpgradeError::Unsupported(Fork::Interop)));
    }

    #[test]
    fn karst_source_hashes_follow_op_node() {
        let txs = upgrade_txs(Fork::Karst).unwrap();
        for (i, want) in [
            (0, "0x7e71ceb6816466ed1bbe59fce31bab86fbb815adbca6d2587fa492f6eb6eba74"),
            (1, "0xd23869ff0fadabd720e471e24eebbcc2f319deb508dba9cd8effef8cd25dd55c"),
            (30, "0x343d18613a55342c09a7be60664cb2e9bce77a17302c41322753e31427f9c543"),
        ] {
            assert_eq!(txs[i].source_hash.to_string(), want);
        }
        assert!(txs.iter().all(|t| t.to.is_some() && !t.is_system_tx));
    }

    #[test]
    fn karst_txs_are_the_bundle_byte_for_byte() {
        let bundle: serde_json::Value = serde_json::from_str(include_str!("karst_nut_bundle.json")).unwrap();
        let want = bundle["transactions"].as_array().unwrap();
        let txs = upgrade_txs(Fork::Karst).unwrap();
        assert_eq!(txs.len(), want.len());
        for (i, (tx, w)) in txs.iter().zip(want).enumerate() {
            let data = w["data"].as_str().unwrap().trim_start_matches("0x");
            let data: Vec<u8> = (0..data.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(&data[k..k + 2], 16).unwrap())
                .collect();
            assert_eq!(tx.input.0, data, "tx {i}");
            assert_eq!(tx.gas_limit, w["gasLimit"].as_u64().unwrap(), "tx {i}");
            assert_eq!(
                tx.from.to_string().to_lowercase(),
                w["from"].as_str().unwrap().to_lowercase(),
                "tx {i}"
            );
            let to = tx.to.map(|a| a.to_string().to_lowercase());
            assert_eq!(to.as_deref(), w["to"].as_str().map(str::to_lowercase).as_deref(), "tx {i}");
        }
        assert!(txs.iter().any(|t| t.input.0.len() > 10_000), "the bytecode is there");
    }

    #[test]
    fn a_damaged_pack_is_refused() {
        assert!(unpack().is_ok());
        // Cut short, or followed by bytes of another stream (brotli has no checksum: a flipped
        // bit inside may go unseen, as it would have in the raw bytes before).
        assert_eq!(unpack_from(&PACKED[..PACKED.len() / 2]), Err(UpgradeError::CorruptTable));
        assert_eq!(unpack_from(&[]), Err(UpgradeError::CorruptTable));
        assert_eq!(unpack_from(&PACKED[1..]), Err(UpgradeError::CorruptTable));
    }

    #[test]
    fn activation_blocks_and_gas_stripping() {
        let mut c = RollupConfig::from_json(BASE_JSON).unwrap();
        let t0 = c.genesis.l2_time;
        c.apply_overrides(&[
            (Fork::Canyon, t0),
            (Fork::Delta, t0),
            (Fork::Ecotone, t0 + 10),
            (Fork::Fjord, t0 + 10),
            (Fork::Granite, t0 + 10),
            (Fork::Holocene, t0 + 10),
            (Fork::Isthmus, t0 + 20),
            (Fork::Jovian, t0 + 20),
            (Fork::Karst, t0 + 30),
        ]);
        let at = |t| activation_upgrades(&c, t).unwrap();
        assert_eq!(at(t0 + 12), ActivationUpgrades::default());
        let ef = at(t0 + 10);
        assert_eq!((ef.txs.len(), ef.extra_gas), (9, 0));
        assert_eq!(ef.txs[6].source_hash, upgrade_source("Fjord: Gas Price Oracle Deployment"));
        assert_eq!(at(t0 + 20).txs.len(), 13);
        let k = at(t0 + 30);
        assert_eq!((k.txs.len(), k.extra_gas), (31, 55_370_657));

        assert_eq!(upgrade_gas_to_strip(&c, t0 + 20), 0);
        assert_eq!(upgrade_gas_to_strip(&c, t0 + 30), 55_370_657);
        assert_eq!(upgrade_gas_to_strip(&c, t0 + 32), 0);
        c.keep_karst_upgrade_gas = true;
        assert_eq!(upgrade_gas_to_strip(&c, t0 + 30), 0);
    }
}
