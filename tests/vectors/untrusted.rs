//! Untrusted input across every decoder, on real inputs: each decoder gets every truncated prefix
//! of a real encoding, the real encoding with seeded random byte flips, and seeded random byte
//! strings. Decoders must return (error or value), never panic. Upstream JSON (blocks, receipts)
//! is mutated the same way at the text level.

use op_lite::protocol::batch::BatchData;
use op_lite::protocol::blob::decode_blob;
use op_lite::protocol::block::RpcBlock;
use op_lite::protocol::eip1559::ExtraData;
use op_lite::protocol::frame::Frame;
use op_lite::protocol::gossip::{BlockVersion, SignedBlock};
use op_lite::protocol::header::Header;
use op_lite::protocol::l1_info::L1BlockInfo;
use op_lite::protocol::output_root::OutputV0;
use op_lite::protocol::receipt::{Receipt, RpcReceipt};
use op_lite::protocol::span_batch::RawSpanBatch;
use op_lite::protocol::tx::Transaction;
use op_lite::rng::Rng;
use serde_json::Value;

use crate::support::{fixtures, hex, read_json};

const RANGE: &str = "derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/fixture.json";

/// Every decoder over one input; results are ignored, only panics matter.
fn decode_all(b: &[u8]) {
    let _ = Header::decode(b);
    let _ = Transaction::decode(b);
    let _ = Receipt::decode(b);
    assert_eq!(Frame::parse_shared(&std::sync::Arc::new(b.to_vec())), Frame::parse_all(b));
    let _ = BatchData::decode(b);
    let _ = RawSpanBatch::decode(b);
    let _ = L1BlockInfo::decode(b);
    let _ = OutputV0::decode(b);
    let _ = ExtraData::decode(b);
    for v in [BlockVersion::V1, BlockVersion::V2, BlockVersion::V3, BlockVersion::V4] {
        let _ = SignedBlock::decode(b, v);
    }
}

/// Every prefix, then `flips` copies with 1..4 random bytes changed.
fn mangle(real: &[u8], rng: &mut Rng, flips: usize, decode: &dyn Fn(&[u8])) {
    for n in 0..real.len() {
        decode(&real[..n]);
    }
    if real.is_empty() {
        return;
    }
    for _ in 0..flips {
        let mut b = real.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        decode(&b);
    }
}

fn range() -> Option<Value> {
    Some(read_json(&fixtures()?.join(RANGE)))
}

#[test]
fn random_bytes_never_panic_any_decoder() {
    let mut rng = Rng::new(0x0b5e_55ed);
    for i in 0..4000 {
        let len = match i % 4 {
            0 => rng.below(16),
            1 => rng.below(300),
            2 => rng.below(5000),
            _ => 131_072,
        } as usize;
        let mut b = vec![0u8; len];
        rng.fill(&mut b);
        // Give the type-byte-dispatched decoders a fair chance at their deeper paths.
        if let Some(first) = b.first_mut() {
            *first %= if i % 2 == 0 { 5 } else { 0x80 };
        }
        decode_all(&b);
        if len == 131_072 {
            let _ = decode_blob(&b);
        }
    }
}

#[test]
fn real_l1_headers_transactions_and_receipts_mangled() {
    let Some(fx) = range() else { return };
    let mut rng = Rng::new(7);
    let mut decoded_ok = 0usize;
    for blk in fx["l1Blocks"].as_array().unwrap() {
        let header = hex(blk["headerRlp"].as_str().unwrap());
        mangle(&header, &mut rng, 200, &|b| {
            let _ = Header::decode(b);
        });
        for (i, t) in blk["transactions"].as_array().unwrap().iter().enumerate() {
            let raw = hex(t.as_str().unwrap());
            // All prefixes for a sample (the range has thousands of txs), flips for every one.
            if i % 20 == 0 {
                mangle(&raw, &mut rng, 20, &|b| {
                    if let Ok(tx) = Transaction::decode(b) {
                        let _ = tx.sender();
                    }
                });
            } else {
                let mut b = raw.clone();
                let j = rng.below(b.len() as u64) as usize;
                b[j] ^= 1 << rng.below(8);
                if let Ok(tx) = Transaction::decode(&b) {
                    let _ = tx.sender();
                }
            }
            decoded_ok += Transaction::decode(&raw).is_ok() as usize;
        }
        for (i, r) in blk["receipts"].as_array().into_iter().flatten().enumerate() {
            if i % 25 == 0 {
                mangle(&hex(r.as_str().unwrap()), &mut rng, 10, &|b| {
                    let _ = Receipt::decode(b);
                });
            }
        }
    }
    assert!(decoded_ok > 1000, "the real transactions decode ({decoded_ok})");
}

#[test]
fn real_l2_headers_and_l1_info_mangled() {
    let Some(fx) = range() else { return };
    let mut rng = Rng::new(8);
    for h in fx["l2Headers"].as_array().unwrap().iter().take(4) {
        let rlp = hex(h["headerRlp"].as_str().unwrap());
        mangle(&rlp, &mut rng, 200, &|b| {
            let _ = Header::decode(b);
        });
        let h = Header::decode(&rlp).unwrap();
        mangle(&h.extra_data, &mut rng, 50, &|b| {
            let _ = ExtraData::decode(b);
        });
    }
    for b in fx["l2Blocks"].as_array().unwrap().iter().take(4) {
        // The first transaction is the L1-info deposit; its calldata is what the decoder reads.
        let tx = Transaction::decode(&hex(b["transactions"][0].as_str().unwrap())).unwrap();
        let data = tx.input().to_vec();
        assert!(L1BlockInfo::decode(&data).is_ok());
        mangle(&data, &mut rng, 200, &|b| {
            let _ = L1BlockInfo::decode(b);
        });
    }
}

/// Text-level JSON damage on a real block with full transactions, as an upstream could send.
#[test]
fn upstream_block_and_receipt_json_mangled() {
    let Some(fx) = range() else { return };
    let blk = &fx["l1Blocks"][3];
    let mut v = blk["header"].clone();
    v["hash"] = blk["hash"].clone();
    v["transactions"] = Value::Array(vec![]);
    // A real L2 block as the engine's eth_getBlockByNumber returns it, with full transactions.
    let dir = fixtures().unwrap().join(RANGE).parent().unwrap().join("l2-blocks-rpc/109279678.json");
    let mut l2 = read_json(&dir);
    if l2.get("result").is_some() {
        l2 = l2["result"].take();
    }
    let real = RpcBlock::from_value(l2.clone()).unwrap().unwrap();
    assert!(real.verified_transactions(false).unwrap().len() > 1, "the real block verifies");
    let texts = [serde_json::to_string(&v).unwrap(), serde_json::to_string(&l2).unwrap()];
    let mut rng = Rng::new(9);
    for text in &texts {
        let bytes = text.as_bytes();
        let mut parsed = 0;
        for n in (0..bytes.len()).step_by(7) {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes[..n]) {
                let _ = RpcBlock::from_value(v);
            }
        }
        for _ in 0..400 {
            let mut b = bytes.to_vec();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = b"0123456789abcdefx\"{}[],:-"[rng.below(25) as usize];
            }
            if let Ok(v) = serde_json::from_slice::<Value>(&b) {
                parsed += 1;
                if let Ok(Some(blk)) = RpcBlock::from_value(v.clone()) {
                    let _ = blk.verified_header(false);
                    let _ = blk.verified_transactions(false);
                }
                let _ = serde_json::from_value::<RpcReceipt>(v).map(|r| r.to_receipt());
            }
        }
        assert!(parsed > 0, "some mutations stay valid JSON and reach the block checks");
    }
}
