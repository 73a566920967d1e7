//! op-lite's derivation pipeline against kona-derive's on the shared real OP Mainnet range
//! (derivation-e2e fixture: 14 L1 blocks, 32 L2 payloads): from the fixture's text to every
//! payload, each side building its own in-memory view of the recorded chain. kona-derive runs
//! with its in-memory test providers (feature `test-utils`), its Ethereum data source and
//! stateful attributes builder; op-lite runs `op-lite replay`'s code. Both must derive the same
//! payloads before either is timed.

use std::collections::HashMap;
use std::sync::Arc;

use alloy_consensus::{BlockBody, Header, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::B256;
use alloy_rlp::Decodable;
use futures::executor::block_on;
use kona_derive::test_utils::{TestBlobProvider, TestChainProvider, TestL2ChainProvider};
use kona_derive::{
    EthereumDataSource, Pipeline, PipelineBuilder, ResetSignal, SignalReceiver, StatefulAttributesBuilder,
    StepResult,
};
use kona_genesis::{RollupConfig, SystemConfig};
use kona_protocol::{BlockInfo, L1BlockInfoTx, L2BlockInfo};
use op_alloy_consensus::{OpBlock, OpTxEnvelope};
use serde_json::Value;

/// A derived payload as both sides can report it: (timestamp, transaction count).
pub type Payload = (u64, usize);

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    let s = s.strip_prefix("0x").unwrap_or(s);
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn num(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().expect("u64"),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).expect("hex number"),
            None => s.parse().expect("decimal number"),
        },
        other => panic!("not a number: {other}"),
    }
}

fn hash(v: &Value) -> B256 {
    B256::from_slice(&hex(v))
}

fn word(v: &Value) -> B256 {
    match v {
        Value::String(s) if s.len() == 66 => hash(v),
        other => B256::from(alloy_primitives::U256::from(num(other))),
    }
}

/// op-lite: the recording `op-lite replay` reads (outside the timing).
pub fn op_lite_read(text: &str) -> op_lite::tools::replay::Recording {
    op_lite::tools::replay::Recording::read(text.as_bytes()).expect("op-lite reads the fixture")
}

/// op-lite's pipeline over its recording.
pub fn op_lite(rec: &op_lite::tools::replay::Recording) -> Vec<Payload> {
    let mut out = Vec::new();
    rec.derive(false, &mut |a| out.push((a.attributes.timestamp, a.attributes.transactions.len())))
        .expect("op-lite derives the range");
    out
}

/// kona's view of the recorded chain: its in-memory providers and the starting point.
pub struct Kona {
    cfg: Arc<RollupConfig>,
    l1: TestChainProvider,
    l2: TestL2ChainProvider,
    origin: BlockInfo,
    safe: L2BlockInfo,
    sys: SystemConfig,
    hashes: HashMap<u64, B256>,
    claims: HashMap<u64, B256>,
    want: usize,
}

/// The parent hashes the range's singular batches claim, by the claiming batch's timestamp:
/// without an engine, the only record of the hashes of derived blocks the fixture does not
/// hold (`op-lite replay` reads them the same way). Computed once, outside kona's timing.
pub fn claimed_parents(text: &str) -> HashMap<u64, B256> {
    use op_lite::protocol::batch::BatchData;
    use op_lite::protocol::channel::{decompress, read_batches};
    use op_lite::protocol::frame::Frame;
    use op_lite::protocol::tx::Transaction;
    let fx: Value = serde_json::from_str(text).expect("fixture json");
    let inbox = op_lite::config::networks::op_mainnet().rollup.batch_inbox_address;
    let mut claims = HashMap::new();
    for b in fx["l1Blocks"].as_array().expect("l1Blocks") {
        for t in b["transactions"].as_array().expect("transactions") {
            let Ok(tx) = Transaction::decode(&hex(t)) else { continue };
            if tx.to() != Some(inbox) {
                continue;
            }
            let Ok(frames) = Frame::parse_all(tx.input()) else { continue };
            for f in frames.iter().filter(|f| f.number == 0 && f.is_last) {
                let Ok(d) = decompress(&f.data, 10_000_000, false) else { continue };
                for batch in read_batches(&d.data).flatten() {
                    if let BatchData::Singular(s) = batch {
                        claims.insert(s.timestamp, B256::from(s.parent_hash.0));
                    }
                }
            }
        }
    }
    claims
}

/// kona's providers from the fixture text (outside the timing); `claims` from `claimed_parents`.
pub fn kona_read(text: &str, claims: HashMap<u64, B256>) -> Kona {
    let fx: Value = serde_json::from_str(text).expect("fixture json");
    // OP Mainnet's rollup config, as op-node's rollup.json (the fixture's chain).
    let mut cfg_json = serde_json::to_value(op_lite::config::networks::op_mainnet().rollup).unwrap();
    // kona 0.4 predates Jovian's system config fields and refuses unknown ones.
    if let Some(sc) = cfg_json["genesis"]["system_config"].as_object_mut() {
        sc.remove("daFootprintGasScalar");
        sc.remove("minBaseFee");
    }
    // Nor does it know Karst (in the future for this 2023 range).
    if let Some(c) = cfg_json.as_object_mut() {
        c.remove("karst_time");
        c.remove("keep_karst_upgrade_gas");
    }
    let cfg: RollupConfig = serde_json::from_value(cfg_json).expect("kona reads op-node's rollup.json");

    let mut l1 = TestChainProvider::default();
    let mut l1_info = HashMap::new();
    for b in fx["l1Blocks"].as_array().expect("l1Blocks") {
        let raw = hex(&b["headerRlp"]);
        let header = Header::decode(&mut &raw[..]).expect("L1 header");
        let info = BlockInfo::new(header.hash_slow(), header.number, header.parent_hash, header.timestamp);
        let txs: Vec<TxEnvelope> = b["transactions"]
            .as_array()
            .expect("transactions")
            .iter()
            .map(|t| TxEnvelope::decode_2718(&mut &hex(t)[..]).expect("L1 tx"))
            .collect();
        l1.insert_block_with_transactions(header.number, info, txs);
        // The fixture leaves out receipts that the blocks' blooms rule out (no deposits).
        let receipts = b["receipts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let env =
                    alloy_consensus::ReceiptEnvelope::decode_2718(&mut &hex(r)[..]).expect("L1 receipt");
                env.as_receipt().expect("a receipt").clone()
            })
            .collect();
        l1.insert_receipts(info.hash, receipts);
        l1.insert_header(info.hash, header);
        l1_info.insert(info.number, info);
    }

    let mut hashes = HashMap::new();
    let mut op_blocks = Vec::new();
    let mut infos = Vec::new();
    for b in fx["l2Blocks"].as_array().into_iter().flatten() {
        let raw = hex(&b["headerRlp"]);
        let header = Header::decode(&mut &raw[..]).expect("L2 header");
        let txs: Vec<OpTxEnvelope> = b["transactions"]
            .as_array()
            .expect("transactions")
            .iter()
            .map(|t| OpTxEnvelope::decode_2718(&mut &hex(t)[..]).expect("L2 tx"))
            .collect();
        let block =
            OpBlock { header, body: BlockBody { transactions: txs, ommers: Vec::new(), withdrawals: None } };
        infos.push(L2BlockInfo::from_block_and_genesis(&block, &cfg.genesis).expect("L2 block info"));
        hashes.insert(num(&b["number"]), hash(&b["hash"]));
        op_blocks.push(block);
    }
    for h in fx["l2Headers"].as_array().into_iter().flatten() {
        hashes.entry(num(&h["number"])).or_insert_with(|| hash(&h["hash"]));
    }

    let s = &fx["l2SafeHead"];
    let safe_number = num(&s["number"]);
    let safe_hash = hash(&s["hash"]);
    let parent = infos.iter().find(|i| i.block_info.hash == safe_hash).map(|i| i.block_info.parent_hash);
    let origin_number = num(&s["l1Origin"]["number"]);
    let safe = L2BlockInfo::new(
        BlockInfo::new(safe_hash, safe_number, parent.unwrap_or_default(), num(&s["timestamp"])),
        alloy_eips::BlockNumHash { number: origin_number, hash: hash(&s["l1Origin"]["hash"]) },
        num(&s["sequenceNumber"]),
    );
    let sc = &fx["systemConfigAtSafeHead"];
    let sys = SystemConfig {
        batcher_address: alloy_primitives::Address::from_slice(&hex(&sc["batcherAddr"])),
        overhead: word(&sc["overhead"]).into(),
        scalar: word(&sc["scalar"]).into(),
        gas_limit: num(&sc["gasLimit"]),
        ..SystemConfig::default()
    };
    // No system config update in the range: the safe head's holds for every block of it.
    let configs: alloy_primitives::map::HashMap<u64, SystemConfig> =
        (safe_number..safe_number + 1000).map(|n| (n, sys)).collect();
    let l2 = TestL2ChainProvider::new(infos, op_blocks, configs);

    let cfg = Arc::new(cfg);
    let origin = *l1_info.get(&origin_number).expect("the safe head's L1 origin is recorded");
    let want = fx["expected"]["derivedAttributes"].as_array().map_or(0, Vec::len);
    Kona { cfg, l1, l2, origin, safe, sys, hashes, claims, want }
}

/// kona-derive's pipeline over its providers (fresh copies each run).
pub fn kona(k: &Kona) -> Vec<Payload> {
    let Kona { cfg, l1, l2, origin, safe, sys, hashes, claims, want } = k;
    let (origin, safe, sys, want) = (*origin, *safe, *sys, *want);
    let (l1, l2) = (l1.clone(), l2.clone());
    let builder = StatefulAttributesBuilder::new(cfg.clone(), l2.clone(), l1.clone());
    let dap = EthereumDataSource::new_from_parts(l1.clone(), TestBlobProvider::default(), &cfg);
    let mut pipeline = PipelineBuilder::new()
        .rollup_config(cfg.clone())
        .origin(origin)
        .dap_source(dap)
        .builder(builder)
        .chain_provider(l1)
        .l2_chain_provider(l2)
        .build_polled();
    block_on(
        pipeline
            .signal(ResetSignal { l2_safe_head: safe, l1_origin: origin, system_config: Some(sys) }.signal()),
    )
    .expect("reset");

    let mut cursor = safe;
    let mut out = Vec::new();
    let mut failures = 0;
    while out.len() < want {
        match block_on(pipeline.step(cursor)) {
            StepResult::PreparedAttributes => {
                let a = pipeline.next().expect("prepared attributes");
                let txs = a.inner.transactions.clone().unwrap_or_default();
                let deposit = OpTxEnvelope::decode_2718(&mut &txs[0][..]).expect("L1 info deposit");
                let info =
                    L1BlockInfoTx::decode_calldata(deposit.as_deposit().expect("deposit").input.as_ref())
                        .expect("L1 info");
                let number = cursor.block_info.number + 1;
                let timestamp = a.inner.payload_attributes.timestamp;
                // The last block of the range has neither (no later batch names it): a
                // placeholder, as `op-lite replay` uses.
                let hash = hashes
                    .get(&number)
                    .or_else(|| claims.get(&(timestamp + cfg.block_time)))
                    .copied()
                    .unwrap_or_else(|| B256::with_last_byte(1));
                cursor = L2BlockInfo::new(
                    BlockInfo::new(hash, number, cursor.block_info.hash, timestamp),
                    info.id(),
                    info.sequence_number(),
                );
                out.push((timestamp, txs.len()));
                failures = 0;
            }
            StepResult::AdvancedOrigin => {}
            StepResult::OriginAdvanceErr(e) | StepResult::StepFailed(e) => {
                failures += 1;
                assert!(failures < 10_000, "kona-derive stalled after {} payloads: {e:?}", out.len());
            }
        }
    }
    out
}
