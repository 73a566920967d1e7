//! Headers, transactions, receipts and trie roots against real OP Mainnet and Ethereum blocks
//! (derivation-e2e fixture: L1 18090205..18090218, L2 109279674..109279689).

use op_lite::protocol::header::{Header, Withdrawal};
use op_lite::protocol::primitives::{keccak256, Address, B256};
use op_lite::protocol::receipt::{Receipt, RpcReceipt};
use op_lite::protocol::trie::ordered_root;
use op_lite::protocol::tx::{RpcTransaction, Transaction};
use serde_json::Value;

use crate::support::{fixtures, hex, read_json};

const RANGE: &str = "derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218";

fn fixture() -> Option<Value> {
    Some(read_json(&fixtures()?.join(RANGE).join("fixture.json")))
}

fn b256(v: &Value) -> B256 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn l1_headers_hash_and_roots_match() {
    let Some(fx) = fixture() else { return };
    let blocks = fx["l1Blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 14);
    let mut parent = None;
    let mut receipts_checked = 0;
    for b in blocks {
        // JSON header -> RLP equals the recorded RLP, and hashes to the block hash.
        let h: Header = serde_json::from_value(b["header"].clone()).unwrap();
        let rlp = hex(b["headerRlp"].as_str().unwrap());
        assert_eq!(h.encode(), rlp, "block {}", h.number);
        assert_eq!(Header::decode(&rlp).unwrap(), h);
        assert_eq!(h.hash(), b256(&b["hash"]));
        if let Some(p) = parent {
            assert_eq!(h.parent_hash, p);
        }
        parent = Some(h.hash());
        // Transactions decode, re-encode identically and commit to the transactions root.
        let txs: Vec<Vec<u8>> =
            b["transactions"].as_array().unwrap().iter().map(|t| hex(t.as_str().unwrap())).collect();
        for raw in &txs {
            let tx = Transaction::decode(raw).unwrap();
            assert_eq!(Transaction::new(tx.body.clone()).encoded(), &raw[..]);
        }
        assert_eq!(ordered_root(&txs), h.transactions_root, "tx root of {}", h.number);
        let w: Vec<Withdrawal> = serde_json::from_value(b["withdrawals"].clone()).unwrap();
        let w: Vec<Vec<u8>> = w.iter().map(|w| w.encode()).collect();
        assert_eq!(Some(ordered_root(&w)), h.withdrawals_root);
        if let Some(rs) = b["receipts"].as_array() {
            let rs: Vec<Vec<u8>> = rs.iter().map(|r| hex(r.as_str().unwrap())).collect();
            for raw in &rs {
                assert_eq!(Receipt::decode(raw).unwrap().encode(), *raw);
            }
            assert_eq!(ordered_root(&rs), h.receipts_root, "receipts root of {}", h.number);
            receipts_checked += 1;
        }
    }
    assert_eq!(receipts_checked, 3);
}

#[test]
fn l1_rpc_json_transactions_and_receipts_rebuild_exactly() {
    let Some(dir) = fixtures() else { return };
    let fx = read_json(&dir.join(RANGE).join("fixture.json"));
    for b in fx["l1Blocks"].as_array().unwrap() {
        let n = b["number"].as_u64().unwrap();
        let cache = read_json(&dir.join(RANGE).join(format!("zeth-rpc-cache/ethereum/{n}.json.gz")));
        let block = &cache["full_blocks"][0][1];
        let want: Vec<&str> =
            b["transactions"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let rpc_txs = block["transactions"].as_array().unwrap();
        assert_eq!(rpc_txs.len(), want.len());
        for (j, t) in rpc_txs.iter().enumerate() {
            let rpc: RpcTransaction = serde_json::from_value(t.clone()).unwrap();
            let tx = rpc.to_transaction().unwrap();
            assert_eq!(tx.encoded(), &hex(want[j])[..], "block {n} tx {j}");
            assert_eq!(Some(tx.hash()), rpc.hash);
            // Sender recovery for a sample of transactions of every block.
            if j % 17 == 0 {
                assert_eq!(Some(tx.sender().unwrap()), rpc.from, "sender of block {n} tx {j}");
            }
        }
        if let Some(rs) = cache["receipts"].as_array().and_then(|r| r.first()) {
            let rs: Vec<RpcReceipt> = serde_json::from_value(rs[1].clone()).unwrap();
            let enc: Vec<Vec<u8>> = rs.iter().map(|r| r.to_receipt().unwrap().encode()).collect();
            assert_eq!(ordered_root(&enc), b256(&block["receiptsRoot"]), "receipts of {n}");
        }
    }
}

#[test]
fn batcher_transactions_recover_the_batcher() {
    let Some(fx) = fixture() else { return };
    let batcher: Address = "0x6887246668a3b87F54DeB3b94Ba47a6f63F32985".parse().unwrap();
    for bt in fx["expected"]["batcherTransactions"].as_array().unwrap() {
        let n = bt["l1Block"].as_u64().unwrap();
        let block =
            fx["l1Blocks"].as_array().unwrap().iter().find(|b| b["number"].as_u64() == Some(n)).unwrap();
        let raw = hex(block["transactions"][bt["txIndex"].as_u64().unwrap() as usize].as_str().unwrap());
        let tx = Transaction::decode(&raw).unwrap();
        assert_eq!(tx.hash(), b256(&bt["txHash"]));
        assert_eq!(tx.sender().unwrap(), batcher);
        assert_eq!(tx.to(), Some("0xFF00000000000000000000000000000000000010".parse().unwrap()));
        assert_eq!(tx.input()[0], 0, "derivation version byte");
    }
}

#[test]
fn l2_blocks_and_header_chain_match() {
    let Some(fx) = fixture() else { return };
    for b in fx["l2Blocks"].as_array().unwrap() {
        let rlp = hex(b["headerRlp"].as_str().unwrap());
        let h = Header::decode(&rlp).unwrap();
        assert_eq!(h.encode(), rlp);
        assert_eq!(keccak256(&rlp), b256(&b["hash"]));
        let json: Header = serde_json::from_value(b["header"].clone()).unwrap();
        assert_eq!(json, h);
        let txs: Vec<Vec<u8>> =
            b["transactions"].as_array().unwrap().iter().map(|t| hex(t.as_str().unwrap())).collect();
        // The first transaction of every L2 block is the L1-info deposit.
        assert_eq!(Transaction::decode(&txs[0]).unwrap().tx_type(), 0x7e);
        assert_eq!(ordered_root(&txs), h.transactions_root);
    }
    let headers = fx["l2Headers"].as_array().unwrap();
    assert_eq!(headers.len(), 79);
    for pair in headers.windows(2) {
        let parent = Header::decode(&hex(pair[0]["headerRlp"].as_str().unwrap())).unwrap();
        let child = Header::decode(&hex(pair[1]["headerRlp"].as_str().unwrap())).unwrap();
        assert_eq!(parent.hash(), b256(&pair[0]["hash"]));
        assert_eq!(child.parent_hash, parent.hash());
        assert_eq!(child.number, parent.number + 1);
    }
}

#[test]
fn l2_rpc_json_deposits_rebuild_exactly() {
    let Some(dir) = fixtures() else { return };
    for n in 109279674u64..=109279689 {
        let block = read_json(&dir.join(RANGE).join(format!("l2-blocks-rpc/{n}.json")));
        let mut enc = Vec::new();
        for t in block["transactions"].as_array().unwrap() {
            let rpc: RpcTransaction = serde_json::from_value(t.clone()).unwrap();
            let tx = rpc.to_transaction().unwrap();
            assert_eq!(Some(tx.hash()), rpc.hash, "L2 block {n}");
            enc.push(tx.into_encoded());
        }
        assert_eq!(ordered_root(&enc), b256(&block["transactionsRoot"]));
    }
}

/// Every real transaction of the range survives the JSON-RPC form the devnet serves:
/// `rpc_json` read back by `RpcTransaction` rebuilds the same bytes (and so the same hash).
#[test]
fn real_transactions_round_trip_through_rpc_json() {
    let Some(fx) = fixture() else { return };
    let mut n = 0;
    for b in fx["l1Blocks"].as_array().unwrap().iter().chain(fx["l2Blocks"].as_array().unwrap()) {
        for (i, t) in b["transactions"].as_array().unwrap().iter().enumerate() {
            let raw = hex(t.as_str().unwrap());
            let tx = Transaction::decode(&raw).unwrap();
            let at = op_lite::protocol::tx::TxLocation {
                block_hash: b256(&b["hash"]),
                block_number: 1,
                index: i as u64,
            };
            let json = tx.rpc_json(Some(at));
            let back: RpcTransaction = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back.to_transaction().unwrap().encoded(), &raw[..], "{json}");
            assert_eq!(back.hash, Some(tx.hash()));
            n += 1;
        }
    }
    assert!(n > 1000, "{n}");
    // Receipts likewise, through the `eth_getBlockReceipts` form.
    let mut m = 0;
    for b in fx["l1Blocks"].as_array().unwrap() {
        for r in b["receipts"].as_array().into_iter().flatten() {
            let raw = hex(r.as_str().unwrap());
            let rc = Receipt::decode(&raw).unwrap();
            let at =
                op_lite::protocol::tx::TxLocation { block_hash: b256(&b["hash"]), block_number: 1, index: m };
            let back: RpcReceipt = serde_json::from_value(rc.rpc_json(B256::ZERO, at)).unwrap();
            assert_eq!(back.to_receipt().unwrap().encode(), raw);
            m += 1;
        }
    }
    assert!(m > 100, "{m}");
}
