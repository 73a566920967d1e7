//! Synthetic derivation scenarios for what the recorded OP Mainnet range does not cover. The
//! devnet sequences L2 blocks (its producer uses the node's own attributes code) and mines L1,
//! but posts no batches: each scenario encodes frames, channels and batches with the project's
//! encoders and puts batcher transactions (calldata or blobs, from the batcher or a stranger,
//! successful or failed) and SystemConfig logs into L1 blocks by hand. The verifier core derives
//! from that L1 on virtual time, and each test asserts the spec's outcome.

use std::time::Duration;

use op_lite::devnet::chain::{Devnet, DevnetParams};
use op_lite::devnet::l1_sim::{abi_address, config_update_log, Account};
use op_lite::devnet::DEVNET_L1_CHAIN_ID;
use op_lite::protocol::blob::{kzg_commitment, versioned_hash};
use op_lite::protocol::channel_out::{self, BatchKind, Compressor, L2BlockInput};
use op_lite::protocol::frame::{batcher_tx_data, Frame};
use op_lite::protocol::primitives::{Bytes, B256};
use op_lite::protocol::rollup::Fork;
use op_lite::protocol::tx::{SignedTx, DEPOSIT_TX_TYPE, EIP1559_TX_TYPE, EIP4844_TX_TYPE};
use op_lite::time::Now;

use super::{Core, EngineOf};

struct Scenario {
    devnet: Devnet,
    node: Core,
    now: Now,
    channels: u8,
}

impl Scenario {
    fn new(params: DevnetParams) -> Scenario {
        Scenario::with_devnet_batcher(DevnetParams { manual_batcher: true, deposit_every: 0, ..params })
    }

    /// The devnet's own batcher posts what it sequences.
    fn with_devnet_batcher(params: DevnetParams) -> Scenario {
        let now = Now::new(std::time::Instant::now(), params.genesis_time * 1000);
        let devnet = Devnet::new(params).unwrap();
        let node = Core::new(&devnet, now, None);
        Scenario { devnet, node, now, channels: 0 }
    }

    /// Advances `secs` of chain time: the devnet sequences and mines, the node derives.
    fn run(&mut self, secs: u64) {
        for _ in 0..secs {
            self.now = self.now.advance(Duration::from_secs(1));
            self.devnet.advance_to(self.now.unix()).unwrap();
            self.node.settle(&mut self.devnet, EngineOf::Node, self.now);
        }
    }

    /// Runs until the next L1 block is mined (what was posted is then on L1).
    fn mine(&mut self) {
        let n = self.devnet.l1.head().info.number();
        while self.devnet.l1.head().info.number() == n {
            self.run(1);
        }
        self.run(1);
    }

    fn safe(&self) -> u64 {
        self.node.status().safe_l2.number
    }

    /// The channel's frames over `blocks`, at most `max_frame` bytes each.
    fn frames(&mut self, kind: BatchKind, blocks: &[L2BlockInput], max_frame: usize) -> Vec<Frame> {
        self.channels += 1;
        let id = [self.channels; 16];
        let zlib = Compressor::Zlib { level: channel_out::ZLIB_BEST_COMPRESSION };
        channel_out::channel_frames(self.devnet.rollup_config(), id, kind, blocks, zlib, max_frame).unwrap()
    }

    /// Puts a calldata transaction carrying `frames` into the next L1 block.
    fn post(&mut self, from: &mut Account, frames: &[Frame], success: bool) {
        let data = batcher_tx_data(frames);
        let tx = SignedTx {
            tx_type: EIP1559_TX_TYPE,
            gas_price: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 21_000 + 16 * data.len() as u64,
            to: Some(self.devnet.rollup_config().batch_inbox_address),
            input: Bytes(data),
            ..SignedTx::default()
        };
        let tx = from.sign(tx, DEVNET_L1_CHAIN_ID);
        self.devnet.l1.include(tx, Vec::new(), success);
    }

    /// Puts a blob transaction carrying `frames` (one per blob) into the next L1 block.
    fn post_blobs(&mut self, from: &mut Account, frames: &[Frame]) {
        let mut hashes = Vec::new();
        for b in channel_out::blob_payloads(frames).unwrap() {
            let h = versioned_hash(&kzg_commitment(&b).unwrap());
            self.devnet.l1.add_blob(h, b);
            hashes.push(h);
        }
        let tx = SignedTx {
            tx_type: EIP4844_TX_TYPE,
            gas_price: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 21_000,
            to: Some(self.devnet.rollup_config().batch_inbox_address),
            max_fee_per_blob_gas: 1_000_000_000,
            blob_versioned_hashes: hashes,
            ..SignedTx::default()
        };
        let tx = from.sign(tx, DEVNET_L1_CHAIN_ID);
        self.devnet.l1.include(tx, Vec::new(), true);
    }

    /// The derived (node's) block `n` and the sequenced one.
    fn hashes(&self, n: u64) -> (B256, B256) {
        let mine = self.devnet.engine.block_by_number(n).unwrap().envelope.execution_payload.block_hash;
        let seq = self.devnet.sequenced_block(n).unwrap().envelope.execution_payload.block_hash;
        (mine, seq)
    }

    /// The node's safe chain is the sequenced chain up to its safe head.
    fn assert_safe_is_sequenced(&self) {
        for n in 1..=self.safe() {
            let (mine, seq) = self.hashes(n);
            assert_eq!(mine, seq, "safe block {n}");
        }
    }

    fn txs(&self, n: u64) -> Vec<Bytes> {
        self.devnet.engine.block_by_number(n).unwrap().envelope.execution_payload.transactions.clone()
    }
}

fn batcher_key() -> Account {
    Account::from_seed("op-lite devnet batcher")
}

/// derivation.md "L1 Retrieval": only transactions to the batch inbox signed by the
/// SystemConfig's batcher count; a stranger's are ignored. A failed transaction's calldata
/// still counts: op-node reads batcher data from the transactions alone, without receipts
/// (`DataFromEVMTransactions`), and a node that skipped it would derive a different chain.
#[test]
fn batches_from_strangers_are_ignored_and_failed_txs_still_count() {
    let mut s = Scenario::new(DevnetParams::default());
    s.run(13);
    let blocks = s.devnet.poll_unbatched();
    assert!(blocks.len() >= 6);
    let frames = s.frames(BatchKind::Span, &blocks, 120_000);
    s.post(&mut Account::from_seed("a stranger"), &frames, true);
    s.mine();
    s.run(12);
    assert_eq!(s.safe(), 0, "nothing derived from a stranger's tx");
    s.post(&mut batcher_key(), &frames, false);
    s.mine();
    assert!(s.safe() >= blocks.last().unwrap().number, "safe {}", s.safe());
    s.assert_safe_is_sequenced();
}

/// holocene/derivation.md "Frame Queue": frames of a channel must arrive in order; an
/// out-of-order frame is dropped, so the channel never completes. Before Holocene the channel
/// bank reassembles frames in any order.
#[test]
fn out_of_order_frames_are_dropped_from_holocene_and_reassembled_before() {
    for holocene in [true, false] {
        let forks = if holocene { Vec::new() } else { vec![(Fork::Holocene, Some(100_000))] };
        let mut s = Scenario::new(DevnetParams { forks, ..DevnetParams::default() });
        s.run(13);
        let blocks = s.devnet.poll_unbatched();
        let frames = s.frames(BatchKind::Singular, &blocks, 200);
        assert!(frames.len() >= 3, "{} frames", frames.len());
        let (first, rest) = frames.split_first().unwrap();
        s.post(&mut batcher_key(), rest, true);
        s.mine();
        s.post(&mut batcher_key(), std::slice::from_ref(first), true);
        s.mine();
        s.run(6);
        if holocene {
            assert_eq!(s.safe(), 0, "Holocene drops frames that arrive out of order");
            // The whole channel again, in order, derives the blocks.
            let again = s.frames(BatchKind::Singular, &blocks, 200);
            s.post(&mut batcher_key(), &again, true);
            s.mine();
        }
        assert!(s.safe() >= blocks.last().unwrap().number, "holocene={holocene}: safe {}", s.safe());
        s.assert_safe_is_sequenced();
    }
}

/// derivation.md "Channel Bank" / holocene "Channel Assembler": a channel that is not complete
/// within the channel timeout (50 L1 blocks from Granite) is dropped; frames after that are
/// from a channel the node no longer holds.
#[test]
fn a_channel_not_completed_within_the_timeout_is_dropped() {
    let mut s = Scenario::new(DevnetParams { seq_window_size: 400, ..DevnetParams::default() });
    s.run(13);
    let blocks = s.devnet.poll_unbatched();
    let frames = s.frames(BatchKind::Span, &blocks, 150);
    assert!(frames.len() >= 2);
    let (last, head) = frames.split_last().unwrap();
    s.post(&mut batcher_key(), head, true);
    s.mine();
    let opened = s.devnet.l1.head().info.number();
    let timeout = s.devnet.rollup_config().channel_timeout(s.devnet.l1.head().info.time());
    while s.devnet.l1.head().info.number() <= opened + timeout {
        s.mine();
    }
    s.post(&mut batcher_key(), std::slice::from_ref(last), true);
    s.mine();
    s.run(12);
    assert_eq!(s.safe(), 0, "the timed-out channel must not complete");
    // A fresh channel with the same blocks derives them (the batches are still in the window).
    let again = s.frames(BatchKind::Span, &blocks, 120_000);
    s.post(&mut batcher_key(), &again, true);
    s.mine();
    assert!(s.safe() >= blocks.last().unwrap().number, "safe {}", s.safe());
    s.assert_safe_is_sequenced();
}

/// derivation.md "Sequencing Window": with no batches for a whole window, the node derives
/// deposit-only blocks for the expired epochs (the sequenced blocks with user txs are lost).
#[test]
fn an_expired_sequencing_window_yields_deposit_only_blocks() {
    let mut s = Scenario::new(DevnetParams { seq_window_size: 8, ..DevnetParams::default() });
    s.run(8 * 6 * 2 + 30);
    let safe = s.safe();
    assert!(safe >= 10, "empty batches derived: safe {safe}");
    for n in 1..=safe {
        let txs = s.txs(n);
        assert!(txs.iter().all(|t| t.first() == Some(&DEPOSIT_TX_TYPE)), "block {n} holds user txs");
        assert!(!txs.is_empty(), "block {n} lacks its L1-info deposit");
    }
    // The sequencer's blocks carried user transfers, so the derived chain differs from them.
    let (mine, seq) = s.hashes(safe);
    assert_ne!(mine, seq);
}

/// system-config.md: a ConfigUpdate log changing the batcher applies from its L1 block on:
/// batches from the old batcher are ignored after it, the new batcher's are accepted; a gas
/// limit update reaches the attributes of the next epoch.
#[test]
fn a_batcher_and_gas_limit_update_take_effect_from_their_l1_block() {
    let mut s = Scenario::new(DevnetParams::default());
    let mut new_batcher = Account::from_seed("the new batcher");
    let sys = s.devnet.rollup_config().l1_system_config_address;
    let log_tx = |s: &mut Scenario, logs| {
        let tx = SignedTx {
            tx_type: EIP1559_TX_TYPE,
            gas_price: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 100_000,
            to: Some(sys),
            ..SignedTx::default()
        };
        let tx = Account::from_seed("system config owner").sign(tx, DEVNET_L1_CHAIN_ID);
        s.devnet.l1.include(tx, logs, true);
    };
    let mut gas = [0u8; 32];
    gas[24..].copy_from_slice(&45_000_000u64.to_be_bytes());
    log_tx(
        &mut s,
        vec![config_update_log(sys, 0, &abi_address(&new_batcher.address)), config_update_log(sys, 2, &gas)],
    );
    s.mine();
    let changed_at = s.devnet.l1.head().info.number();
    s.run(13);
    let blocks = s.devnet.poll_unbatched();
    let frames = s.frames(BatchKind::Span, &blocks, 120_000);
    s.post(&mut batcher_key(), &frames, true);
    s.mine();
    s.run(6);
    assert_eq!(s.safe(), 0, "the old batcher no longer counts after L1 block {changed_at}");
    s.post(&mut new_batcher, &frames, true);
    s.mine();
    assert!(s.safe() >= blocks.last().unwrap().number, "safe {}", s.safe());
    s.assert_safe_is_sequenced();
    // Blocks of epochs from the update's L1 block on carry the new gas limit.
    let mut seen = false;
    for n in 1..=s.safe() {
        let b = &s.devnet.engine.block_by_number(n).unwrap().envelope.execution_payload;
        let origin = s.devnet.engine.block_data(&b.block_hash).unwrap().block_ref.l1origin.number;
        let want = if origin >= changed_at { 45_000_000 } else { 30_000_000 };
        assert_eq!(b.gas_limit, want, "block {n} (origin {origin})");
        seen |= origin >= changed_at;
    }
    assert!(seen, "no derived block reached the update's epoch");
}

/// holocene/derivation.md "Batch Queue": batches must arrive in order; a batch for a future
/// block is dropped rather than buffered, so it must be posted again after the gap is filled.
/// A batch from the past (already derived) is dropped too.
#[test]
fn holocene_drops_future_and_past_batches() {
    let mut s = Scenario::new(DevnetParams::default());
    s.run(13);
    let blocks = s.devnet.poll_unbatched();
    assert!(blocks.len() >= 4);
    let (early, late) = blocks.split_at(2);
    let late_frames = s.frames(BatchKind::Singular, late, 120_000);
    s.post(&mut batcher_key(), &late_frames, true);
    s.mine();
    s.run(6);
    assert_eq!(s.safe(), 0, "a future batch is not buffered");
    let early_frames = s.frames(BatchKind::Singular, early, 120_000);
    s.post(&mut batcher_key(), &early_frames, true);
    s.mine();
    assert_eq!(s.safe(), early.last().unwrap().number, "only the in-order batches");
    // The past batches again change nothing; the dropped future ones, re-posted, derive.
    let past = s.frames(BatchKind::Singular, early, 120_000);
    s.post(&mut batcher_key(), &past, true);
    s.mine();
    assert_eq!(s.safe(), early.last().unwrap().number);
    let again = s.frames(BatchKind::Singular, late, 120_000);
    s.post_blobs(&mut batcher_key(), &again);
    s.mine();
    assert_eq!(s.safe(), late.last().unwrap().number);
    s.assert_safe_is_sequenced();
}

/// The devnet's batcher posts singular batches before Delta (a span batch whose L1 origin or
/// inclusion block predates Delta is dropped) and span batches from it, calldata before Ecotone
/// and blobs every other L1 block from it: with every fork from Canyon to Jovian activating
/// mid-chain the node derives every block.
#[test]
fn the_devnet_batcher_posts_singular_batches_before_delta_and_span_batches_after() {
    let later = [Fork::Ecotone, Fork::Fjord, Fork::Granite, Fork::Holocene, Fork::Isthmus, Fork::Jovian];
    let mut forks = vec![(Fork::Canyon, Some(12)), (Fork::Delta, Some(40))];
    forks.extend(later.iter().enumerate().map(|(i, f)| (*f, Some(50 + 2 * i as u64))));
    let mut s = Scenario::with_devnet_batcher(DevnetParams { forks, ..DevnetParams::default() });
    s.run(36);
    let (singular, calldata) = (s.devnet.channels, s.devnet.posted);
    assert!(singular.0 >= 5 && singular.1 == 0, "singular batches before Delta: {singular:?}");
    assert_eq!(calldata.1, 0, "calldata only before Ecotone: {calldata:?}");
    assert!(s.safe() >= 12, "singular batches derive: safe {}", s.safe());
    s.run(84);
    assert!(s.devnet.channels.1 >= 5, "span batches from Delta: {:?}", s.devnet.channels);
    assert!(s.devnet.posted.1 > 0, "blobs from Ecotone: {:?}", s.devnet.posted);
    assert!(s.safe() >= 50, "and span batches after it: safe {}", s.safe());
    s.assert_safe_is_sequenced();
}

/// Fork boundaries mid-chain, Delta through Jovian, one every 12 s (the per-fork
/// derivation.md documents): each activation block carries the L1-info deposit and that fork's
/// upgrade deposits, and no user transactions where the spec says so (Ecotone, Fjord, Isthmus,
/// Jovian); the L1-info deposit switches format one block after Ecotone, Isthmus and Jovian
/// activate; singular batches carry the blocks across all of them (span batches only from
/// Delta), and the derived chain is the sequenced one, hash for hash.
#[test]
fn every_fork_from_delta_to_jovian_activates_mid_chain() {
    let order =
        [Fork::Delta, Fork::Ecotone, Fork::Fjord, Fork::Granite, Fork::Holocene, Fork::Isthmus, Fork::Jovian];
    let forks: Vec<_> = order.iter().enumerate().map(|(i, f)| (*f, Some(12 * (i as u64 + 1)))).collect();
    let mut s = Scenario::new(DevnetParams { forks, ..DevnetParams::default() });
    s.run(100);
    let blocks = s.devnet.poll_unbatched();
    let frames = s.frames(BatchKind::Singular, &blocks, 120_000);
    s.post(&mut batcher_key(), &frames, true);
    s.mine();
    assert!(s.safe() >= 48, "safe {}", s.safe());
    s.assert_safe_is_sequenced();
    let cfg = s.devnet.rollup_config().clone();
    let mut activated = Vec::new();
    let mut selectors: Vec<Vec<u8>> = Vec::new();
    for n in 1..=s.safe() {
        let b = &s.devnet.engine.block_by_number(n).unwrap().envelope.execution_payload;
        let txs = &b.transactions;
        let info = op_lite::protocol::tx::Transaction::decode(&txs[0]).unwrap();
        let op_lite::protocol::tx::TxBody::Deposit(d) = &info.body else {
            panic!("block {n}: no L1-info deposit first")
        };
        let selector = d.input.0[..4].to_vec();
        if selectors.last() != Some(&selector) {
            selectors.push(selector);
        }
        for fork in order {
            if !cfg.is_activation_block(fork, b.timestamp) {
                continue;
            }
            activated.push(fork);
            let deposits_only = txs.iter().all(|t| t.first() == Some(&DEPOSIT_TX_TYPE));
            match fork {
                Fork::Ecotone | Fork::Fjord | Fork::Isthmus | Fork::Jovian => {
                    assert!(txs.len() > 1, "{fork:?} activation block {n} lacks its upgrade txs");
                    assert!(deposits_only, "{fork:?} activation block {n} has user txs");
                }
                _ => assert!(!deposits_only, "{fork:?} activation block {n} may carry user txs"),
            }
        }
    }
    assert_eq!(activated, order, "every activation block derived, in order");
    // Bedrock's setL1BlockValues, then Ecotone's, Isthmus's and Jovian's formats, never back.
    assert_eq!(selectors.len(), 4, "four L1-info formats in order: {selectors:02x?}");
}
