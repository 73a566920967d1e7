//! JSON-RPC methods: the Engine API (forkchoiceUpdated V1-V3, getPayload V2-V5, newPayload
//! V2-V4, exchangeCapabilities) and the eth_ methods a rollup node, its batcher and the tests
//! use, translated to and from `Chain` calls.

use alloy_consensus::proofs::calculate_transaction_root;
use alloy_consensus::{Header, TxReceipt, EMPTY_OMMER_ROOT_HASH};
use alloy_eips::eip2718::{Encodable2718, Typed2718};
use alloy_eips::eip7685::{Requests, EMPTY_REQUESTS_HASH};
use alloy_op_hardforks::OpHardfork;
use alloy_primitives::{Address, Bytes, B256, B64, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use serde_json::{json, Value};

use crate::chain::{ApiError, Attributes, Block, Chain, Status, Tx, UNKNOWN_PAYLOAD};

/// Unsupported fork: the method version does not fit the payload's timestamp.
const UNSUPPORTED_FORK: i64 = -38005;
const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;
const SERVER_ERROR: i64 = -32000;

/// The Engine API methods served.
pub const CAPABILITIES: &[&str] = &[
    "engine_forkchoiceUpdatedV1",
    "engine_forkchoiceUpdatedV2",
    "engine_forkchoiceUpdatedV3",
    "engine_getPayloadV2",
    "engine_getPayloadV3",
    "engine_getPayloadV4",
    "engine_getPayloadV5",
    "engine_newPayloadV2",
    "engine_newPayloadV3",
    "engine_newPayloadV4",
];

fn param_err(m: impl Into<String>) -> ApiError {
    ApiError::new(INVALID_PARAMS, m)
}

fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

/// A quantity: a hex string, or a JSON number (op-node writes Jovian's `minBaseFee` as its
/// `*uint64` marshals, a number; op-geth and op-reth read both).
fn get_u64(v: &Value, what: &str) -> Result<u64, ApiError> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.strip_prefix("0x")).and_then(|h| u64::from_str_radix(h, 16).ok()))
        .ok_or_else(|| param_err(format!("{what}: expected a quantity, got {v}")))
}

fn opt_u64(v: &Value, what: &str) -> Result<Option<u64>, ApiError> {
    if v.is_null() {
        Ok(None)
    } else {
        get_u64(v, what).map(Some)
    }
}

fn parse<T: std::str::FromStr>(v: &Value, what: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    let s = v.as_str().ok_or_else(|| param_err(format!("{what}: expected a string, got {v}")))?;
    s.parse::<T>().map_err(|e| param_err(format!("{what}: {e}")))
}

fn opt<T: std::str::FromStr>(v: &Value, what: &str) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    if v.is_null() {
        Ok(None)
    } else {
        parse(v, what).map(Some)
    }
}

/// The version the fork at `t` calls for: (newPayload, getPayload).
fn versions(chain: &Chain, t: u64) -> (u8, u8) {
    let a = |f| chain.spec.active(f, t);
    if a(OpHardfork::Karst) {
        (4, 5)
    } else if a(OpHardfork::Isthmus) {
        (4, 4)
    } else if a(OpHardfork::Ecotone) {
        (3, 3)
    } else {
        (2, 2)
    }
}

/// Answers one call.
pub fn call(chain: &mut Chain, method: &str, params: &Value) -> Result<Value, ApiError> {
    let p = |i: usize| params.get(i).unwrap_or(&Value::Null);
    if let Some(v) = method.strip_prefix("engine_forkchoiceUpdatedV") {
        return forkchoice_updated(chain, v.parse().unwrap_or(0), p(0), p(1));
    }
    if let Some(v) = method.strip_prefix("engine_getPayloadV") {
        return get_payload(chain, v.parse().unwrap_or(0), p(0));
    }
    if let Some(v) = method.strip_prefix("engine_newPayloadV") {
        return new_payload(chain, v.parse().unwrap_or(0), params);
    }
    match method {
        "engine_exchangeCapabilities" => Ok(json!(CAPABILITIES)),
        "eth_chainId" => Ok(json!(quantity(chain.spec.chain_id))),
        "net_version" => Ok(json!(chain.spec.chain_id.to_string())),
        "eth_blockNumber" => Ok(json!(quantity(chain.head().header.number))),
        "eth_getBlockByNumber" => {
            let b = block_by_tag(chain, p(0))?;
            Ok(b.map_or(Value::Null, |b| block_json(&b, p(1).as_bool().unwrap_or(false))))
        }
        "eth_getBlockByHash" => {
            let h: B256 = parse(p(0), "block hash")?;
            Ok(chain.block(&h).map_or(Value::Null, |b| block_json(b, p(1).as_bool().unwrap_or(false))))
        }
        "eth_getProof" => {
            let address: Address = parse(p(0), "address")?;
            let slots = p(1)
                .as_array()
                .ok_or_else(|| param_err("storage keys: expected an array"))?
                .iter()
                .map(|s| parse::<B256>(s, "storage key").map(|k| U256::from_be_bytes(k.0)))
                .collect::<Result<Vec<_>, _>>()?;
            let Some(b) = block_by_tag(chain, p(2))? else {
                return Err(ApiError::new(SERVER_ERROR, "block not found"));
            };
            let pr = b.state.proof(&address, &slots);
            Ok(json!({
                "address": address,
                "balance": pr.account.balance,
                "codeHash": pr.account.code_hash,
                "nonce": quantity(pr.account.nonce),
                "storageHash": pr.account.storage_root,
                "accountProof": pr.account_proof,
                "storageProof": pr.storage_proofs.iter().map(|(k, v, proof)| json!({
                    "key": B256::from(k.to_be_bytes::<32>()),
                    "value": v,
                    "proof": proof,
                })).collect::<Vec<_>>(),
            }))
        }
        "eth_getBalance" | "eth_getTransactionCount" | "eth_getCode" => {
            let address: Address = parse(p(0), "address")?;
            let b =
                block_by_tag(chain, p(1))?.ok_or_else(|| ApiError::new(SERVER_ERROR, "block not found"))?;
            let acc = b.state.account(&address);
            Ok(match method {
                "eth_getBalance" => json!(acc.map_or(U256::ZERO, |a| a.balance)),
                "eth_getTransactionCount" => json!(quantity(acc.map_or(0, |a| a.nonce))),
                _ => {
                    let code = acc.and_then(|a| chain.codes.get(&a.code_hash)).map(|c| c.original_bytes());
                    json!(code.unwrap_or_default())
                }
            })
        }
        "eth_getStorageAt" => {
            let address: Address = parse(p(0), "address")?;
            let slot: U256 = parse(p(1), "slot")?;
            let b =
                block_by_tag(chain, p(2))?.ok_or_else(|| ApiError::new(SERVER_ERROR, "block not found"))?;
            let v = b.state.account(&address).map_or(U256::ZERO, |a| a.slot(slot));
            Ok(json!(B256::from(v.to_be_bytes::<32>())))
        }
        "eth_sendRawTransaction" => {
            let raw: Bytes = parse(p(0), "transaction")?;
            chain.send_transaction(raw).map(|h| json!(h)).map_err(|e| ApiError::new(SERVER_ERROR, e))
        }
        "eth_getTransactionReceipt" => {
            let h: B256 = parse(p(0), "transaction hash")?;
            Ok(receipt_json(chain, &h))
        }
        "enginePeer_stats" => Ok(json!({
            "refusedForkchoice": chain.refused_forkchoice,
            "blocks": chain.blocks.len(),
            "invalid": chain.invalid.len(),
            "pool": chain.pool.len(),
        })),
        _ => Err(ApiError::new(
            METHOD_NOT_FOUND,
            format!("the method {method} does not exist/is not available"),
        )),
    }
}

fn block_by_tag(chain: &Chain, tag: &Value) -> Result<Option<std::sync::Arc<Block>>, ApiError> {
    let h = match tag.as_str() {
        None | Some("latest") | Some("pending") => return Ok(Some(chain.head().clone())),
        Some("earliest") => chain.genesis,
        Some("safe") => chain.safe,
        Some("finalized") => chain.finalized,
        Some(s) if s.len() == 66 => parse(tag, "block hash")?,
        Some(_) => {
            // A number, or an EIP-1898 object is not needed by the callers.
            let n = get_u64(tag, "block number")?;
            return Ok(chain.canonical_block(n).cloned());
        }
    };
    Ok(chain.block(&h).cloned())
}

fn forkchoice_updated(
    chain: &mut Chain,
    version: u8,
    state: &Value,
    attrs: &Value,
) -> Result<Value, ApiError> {
    if !(1..=3).contains(&version) {
        return Err(ApiError::new(
            METHOD_NOT_FOUND,
            format!("engine_forkchoiceUpdatedV{version} not available"),
        ));
    }
    let head: B256 = parse(&state["headBlockHash"], "headBlockHash")?;
    let safe: B256 = parse(&state["safeBlockHash"], "safeBlockHash")?;
    let finalized: B256 = parse(&state["finalizedBlockHash"], "finalizedBlockHash")?;
    let attrs = if attrs.is_null() {
        None
    } else {
        let a = Attributes {
            timestamp: get_u64(&attrs["timestamp"], "timestamp")?,
            prev_randao: parse(&attrs["prevRandao"], "prevRandao")?,
            fee_recipient: parse(&attrs["suggestedFeeRecipient"], "suggestedFeeRecipient")?,
            withdrawals: attrs["withdrawals"].as_array().cloned(),
            parent_beacon_block_root: opt(&attrs["parentBeaconBlockRoot"], "parentBeaconBlockRoot")?,
            transactions: attrs["transactions"]
                .as_array()
                .map(|a| a.iter().map(|t| parse::<Bytes>(t, "transaction")).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default(),
            no_tx_pool: attrs["noTxPool"].as_bool().unwrap_or(false),
            gas_limit: opt_u64(&attrs["gasLimit"], "gasLimit")?,
            eip1559_params: opt::<B64>(&attrs["eip1559Params"], "eip1559Params")?,
            min_base_fee: opt_u64(&attrs["minBaseFee"], "minBaseFee")?,
        };
        if a.withdrawals.as_ref().is_some_and(|w| !w.is_empty()) {
            return Err(ApiError::new(-38003, "Invalid payload attributes: withdrawals must be empty on L2"));
        }
        let t = a.timestamp;
        let want = if chain.spec.active(OpHardfork::Ecotone, t) {
            3
        } else if chain.spec.active(OpHardfork::Canyon, t) {
            2
        } else {
            1
        };
        if version != want && !(version == 2 && want == 1) {
            return Err(ApiError::new(
                UNSUPPORTED_FORK,
                format!("Unsupported fork: engine_forkchoiceUpdatedV{version} for attributes at {t}"),
            ));
        }
        Some((a, version))
    };
    let (status, id) = chain.forkchoice_updated(head, safe, finalized, attrs)?;
    Ok(json!({ "payloadStatus": status_json(&status), "payloadId": id }))
}

fn status_json(s: &Status) -> Value {
    match s {
        Status::Valid(h) => json!({"status": "VALID", "latestValidHash": h, "validationError": null}),
        Status::Syncing => json!({"status": "SYNCING", "latestValidHash": null, "validationError": null}),
        Status::Invalid { latest_valid, reason } => {
            json!({"status": "INVALID", "latestValidHash": latest_valid, "validationError": reason})
        }
    }
}

/// An execution payload (V1 fields, withdrawals from V2, blob gas from V3, the withdrawals root
/// from V4) for `b`.
pub fn payload_json(b: &Block, version: u8) -> Value {
    let h = &b.header;
    let mut p = json!({
        "parentHash": h.parent_hash,
        "feeRecipient": h.beneficiary,
        "stateRoot": h.state_root,
        "receiptsRoot": h.receipts_root,
        "logsBloom": h.logs_bloom,
        "prevRandao": h.mix_hash,
        "blockNumber": quantity(h.number),
        "gasLimit": quantity(h.gas_limit),
        "gasUsed": quantity(h.gas_used),
        "timestamp": quantity(h.timestamp),
        "extraData": h.extra_data,
        "baseFeePerGas": quantity(h.base_fee_per_gas.unwrap_or_default()),
        "blockHash": b.hash,
        "transactions": b.txs.iter().map(|t| t.raw.clone()).collect::<Vec<_>>(),
    });
    if h.withdrawals_root.is_some() {
        p["withdrawals"] = json!([]);
    }
    if version >= 3 {
        p["blobGasUsed"] = json!(quantity(h.blob_gas_used.unwrap_or_default()));
        p["excessBlobGas"] = json!(quantity(h.excess_blob_gas.unwrap_or_default()));
    }
    if version >= 4 {
        p["withdrawalsRoot"] = json!(h.withdrawals_root);
    }
    p
}

fn get_payload(chain: &mut Chain, version: u8, id: &Value) -> Result<Value, ApiError> {
    if !(2..=5).contains(&version) {
        return Err(ApiError::new(METHOD_NOT_FOUND, format!("engine_getPayloadV{version} not available")));
    }
    let id: B64 = parse(id, "payload id")?;
    let b = chain.payload(&id).cloned().ok_or_else(|| ApiError::new(UNKNOWN_PAYLOAD, "Unknown payload"))?;
    let want = versions(chain, b.header.timestamp).1;
    if version != want {
        return Err(ApiError::new(
            UNSUPPORTED_FORK,
            format!("Unsupported fork: engine_getPayloadV{version} for a payload that needs V{want}"),
        ));
    }
    let payload_version = version.min(4);
    let mut env = json!({
        "executionPayload": payload_json(&b, payload_version),
        "blockValue": "0x0",
    });
    if version >= 3 {
        env["blobsBundle"] = json!({"commitments": [], "proofs": [], "blobs": []});
        env["shouldOverrideBuilder"] = json!(false);
        env["parentBeaconBlockRoot"] = json!(b.header.parent_beacon_block_root);
    }
    if version >= 4 {
        env["executionRequests"] = json!([]);
    }
    Ok(env)
}

fn new_payload(chain: &mut Chain, version: u8, params: &Value) -> Result<Value, ApiError> {
    if !(2..=4).contains(&version) {
        return Err(ApiError::new(METHOD_NOT_FOUND, format!("engine_newPayloadV{version} not available")));
    }
    let p = &params[0];
    let timestamp = get_u64(&p["timestamp"], "timestamp")?;
    let want = versions(chain, timestamp).0;
    // V2 also takes pre-Canyon (V1-shaped) payloads.
    if version != want {
        return Err(ApiError::new(
            UNSUPPORTED_FORK,
            format!(
                "Unsupported fork: engine_newPayloadV{version} for a payload at {timestamp} (wants V{want})"
            ),
        ));
    }
    let txs = p["transactions"]
        .as_array()
        .ok_or_else(|| param_err("transactions: expected an array"))?
        .iter()
        .map(|t| parse::<Bytes>(t, "transaction"))
        .collect::<Result<Vec<_>, _>>()?;
    let withdrawals = p["withdrawals"].as_array();
    if withdrawals.is_some_and(|w| !w.is_empty()) {
        return Ok(status_json(&Status::Invalid {
            latest_valid: None,
            reason: "withdrawals must be empty on L2".into(),
        }));
    }
    let parent_beacon_block_root = if version >= 3 {
        if !params[1].as_array().is_some_and(|a| a.is_empty()) {
            return Err(param_err("expectedBlobVersionedHashes must be an empty array"));
        }
        Some(parse::<B256>(&params[2], "parentBeaconBlockRoot")?)
    } else {
        None
    };
    let requests_hash = if version >= 4 {
        let reqs = params[3].as_array().ok_or_else(|| param_err("executionRequests: expected an array"))?;
        let reqs: Vec<Bytes> = reqs.iter().map(|r| parse::<Bytes>(r, "request")).collect::<Result<_, _>>()?;
        Some(if reqs.is_empty() { EMPTY_REQUESTS_HASH } else { Requests::new(reqs).requests_hash() })
    } else {
        None
    };
    let decoded: Vec<Tx> = match txs.iter().cloned().map(Tx::decode).collect::<Result<Vec<_>, _>>() {
        Ok(t) => t,
        Err(e) => return Ok(status_json(&Status::Invalid { latest_valid: None, reason: e })),
    };
    let withdrawals_root = if version >= 4 {
        Some(parse::<B256>(&p["withdrawalsRoot"], "withdrawalsRoot")?)
    } else {
        withdrawals.map(|_| EMPTY_ROOT_HASH)
    };
    let header = Header {
        parent_hash: parse(&p["parentHash"], "parentHash")?,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: parse(&p["feeRecipient"], "feeRecipient")?,
        state_root: parse(&p["stateRoot"], "stateRoot")?,
        transactions_root: calculate_transaction_root(
            &decoded.iter().map(|t| &t.envelope).collect::<Vec<_>>(),
        ),
        receipts_root: parse(&p["receiptsRoot"], "receiptsRoot")?,
        logs_bloom: parse(&p["logsBloom"], "logsBloom")?,
        number: get_u64(&p["blockNumber"], "blockNumber")?,
        gas_limit: get_u64(&p["gasLimit"], "gasLimit")?,
        gas_used: get_u64(&p["gasUsed"], "gasUsed")?,
        timestamp,
        extra_data: parse(&p["extraData"], "extraData")?,
        mix_hash: parse(&p["prevRandao"], "prevRandao")?,
        base_fee_per_gas: Some(
            parse::<U256>(&p["baseFeePerGas"], "baseFeePerGas")?
                .try_into()
                .map_err(|_| param_err("baseFeePerGas too large"))?,
        ),
        withdrawals_root,
        blob_gas_used: opt_u64(&p["blobGasUsed"], "blobGasUsed")?,
        excess_blob_gas: opt_u64(&p["excessBlobGas"], "excessBlobGas")?,
        parent_beacon_block_root,
        requests_hash,
        ..Default::default()
    };
    let hash: B256 = parse(&p["blockHash"], "blockHash")?;
    let status = chain.new_payload(&header, hash, txs);
    if let Status::Invalid { reason, .. } = &status {
        eprintln!("engine-peer: newPayload {hash} INVALID: {reason}");
    }
    Ok(status_json(&status))
}

/// A block in eth_getBlockBy* form, with full transactions or their hashes.
pub fn block_json(b: &Block, full: bool) -> Value {
    let mut v = serde_json::to_value(&b.header).unwrap_or_default();
    v["hash"] = json!(b.hash);
    v["uncles"] = json!([]);
    v["totalDifficulty"] = json!("0x0");
    let size = alloy_rlp::Encodable::length(&b.header) + b.txs.iter().map(|t| t.raw.len()).sum::<usize>();
    v["size"] = json!(quantity(size as u64));
    if b.header.withdrawals_root.is_some() {
        v["withdrawals"] = json!([]);
    }
    v["transactions"] = if full {
        b.txs.iter().enumerate().map(|(i, t)| tx_json(b, i, t)).collect()
    } else {
        b.txs.iter().map(|t| json!(t.hash)).collect()
    };
    v
}

fn tx_json(b: &Block, i: usize, t: &Tx) -> Value {
    let mut v = serde_json::to_value(&t.envelope).unwrap_or_default();
    v["hash"] = json!(t.hash);
    v["from"] = json!(t.sender);
    v["blockHash"] = json!(b.hash);
    v["blockNumber"] = json!(quantity(b.header.number));
    v["transactionIndex"] = json!(quantity(i as u64));
    debug_assert_eq!(t.envelope.encoded_2718(), t.raw.to_vec());
    v
}

fn receipt_json(chain: &Chain, h: &B256) -> Value {
    let Some((bh, i)) = chain.tx_index.get(h).copied() else { return Value::Null };
    let Some(b) = chain.block(&bh) else { return Value::Null };
    let (t, r) = (&b.txs[i], &b.receipts[i]);
    let prev = if i == 0 { 0 } else { b.receipts[i - 1].cumulative_gas_used() };
    let contract = match (&t.envelope, alloy_consensus::Transaction::kind(&t.envelope)) {
        (_, alloy_primitives::TxKind::Create) => {
            let nonce = alloy_consensus::Transaction::nonce(&t.envelope);
            Some(t.sender.create(nonce))
        }
        _ => None,
    };
    let mut logs = Vec::new();
    for (j, l) in r.logs().iter().enumerate() {
        logs.push(json!({
            "address": l.address, "topics": l.topics(), "data": l.data.data,
            "blockHash": bh, "blockNumber": quantity(b.header.number), "transactionHash": h,
            "transactionIndex": quantity(i as u64), "logIndex": quantity(j as u64), "removed": false,
        }));
    }
    json!({
        "transactionHash": h,
        "transactionIndex": quantity(i as u64),
        "blockHash": bh,
        "blockNumber": quantity(b.header.number),
        "from": t.sender,
        "to": alloy_consensus::Transaction::to(&t.envelope),
        "cumulativeGasUsed": quantity(r.cumulative_gas_used()),
        "gasUsed": quantity(r.cumulative_gas_used() - prev),
        "contractAddress": contract,
        "logs": logs,
        "logsBloom": r.bloom(),
        "status": if r.status() { "0x1" } else { "0x0" },
        "type": quantity(t.envelope.ty() as u64),
    })
}
