//! The upstream clients against real peers on loopback: anvil as the L1 (execution RPC, storage
//! proofs and its beacon blobs endpoint) and EthereumJS as an Engine API behind JWT. Each test
//! starts its own peer on a free port and kills it when done; the tests deploy nothing beyond a
//! few bytes of code, send real signed batcher, blob and deposit transactions, and read them back
//! through op-lite's clients with verification on.
//!
//! The binaries come from `$OP_LITE_ANVIL` / `$OP_LITE_ETHEREUMJS`, else `anvil` / `ethereumjs` on
//! PATH (`.ci/peers.sh` installs both). Without one, its tests print "skipped: anvil not found"
//! (resp. ethereumjs), except under `CI=true`, where absence fails.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stub_http::{StubRequest, StubResponse, StubServer};
use k256::ecdsa::SigningKey;
use op_lite::config::networks::op_mainnet;
use op_lite::derive::data::{Arrival, BlockInfo, FetchRequest, L2Label};
use op_lite::derive::deriver::digest_receipts;
use op_lite::driver::l1_poll::L1Label;
use op_lite::driver::runtime_config::ProtocolVersion;
use op_lite::engine::api::{
    EngineCall, EngineError, EngineReply, ExecutionStatus, ForkchoiceState, PayloadInfo,
};
use op_lite::event::Event;
use op_lite::io::beacon::{BeaconClient, BeaconConfig};
use op_lite::io::rpc_client::{ClientError, RpcClient};
use op_lite::io::upstream::ReceiptsMethod;
use op_lite::io::upstream::{EngineClient, EngineJob, L1Client, L1Job};
use op_lite::protocol::blob::{decode_blob, kzg_commitment, versioned_hash};
use op_lite::protocol::block_ref::{BlockId, L1BlockRef};
use op_lite::protocol::channel_out::{
    blob_payloads, calldata_payloads, channel_frames, BatchKind, Compressor, L2BlockInput,
};
use op_lite::protocol::deposit::{encode_deposit_log, user_deposit_source};
use op_lite::protocol::frame::Frame;
use op_lite::protocol::payload::PayloadAttributes;
use op_lite::protocol::primitives::{keccak256, quantity, Address, Bytes, B256, U256};
use op_lite::protocol::proof::named_slot;
use op_lite::protocol::rlp;
use op_lite::protocol::rollup::RollupConfig;
use op_lite::protocol::trie::ordered_root;
use op_lite::protocol::tx::{
    address_of, AccessListItem, DepositTx, SignedTx, Transaction, TxBody, TxSignature, EIP1559_TX_TYPE,
    EIP2930_TX_TYPE, EIP4844_TX_TYPE, LEGACY_TX_TYPE,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Peer processes

/// A peer binary: `$var` when set, else `name` on PATH. Absent: `None` and a "skipped" line, or
/// a failure under `CI=true`.
fn peer_bin(var: &str, name: &str) -> Option<PathBuf> {
    let found = match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())),
    };
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} not found (set {var} or put it on PATH; .ci/peers.sh installs it); required under CI=true");
        }
        eprintln!("skipped: {name} not found");
    }
    found
}

/// A running peer with its scratch directory; killed and cleaned up on drop.
struct Peer {
    child: Child,
    dir: PathBuf,
}

impl Peer {
    /// Starts `cmd` in a fresh scratch directory, with stdout and stderr going to `peer.log`
    /// there.
    fn spawn(tag: &str, setup: impl FnOnce(&Path) -> Command) -> Peer {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("op-lite-peers-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut cmd = setup(&dir);
        let log = File::create(dir.join("peer.log")).unwrap();
        cmd.current_dir(&dir).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {tag}: {e}"));
        Peer { child, dir }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("peer.log")).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Polls `ready` every 50 ms until it gives a value, the peer exits, or 30 s pass.
fn wait_for<T>(peer: &mut Peer, what: &str, mut ready: impl FnMut(&Peer) -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = ready(peer) {
            return Some(v);
        }
        if peer.exited() {
            return None;
        }
        assert!(Instant::now() < deadline, "{what} did not start:\n{}", peer.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn arrival(ev: Event) -> Arrival {
    match ev {
        Event::ChainDataArrived(a) => *a,
        other => panic!("expected an arrival, got {other:?}"),
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// anvil as the L1

/// anvil's first dev account (the standard test mnemonic).
const ANVIL_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ANVIL_CHAIN_ID: u64 = 31337;
/// Block time given to anvil; the beacon client is told the same slot duration.
const SLOT: u64 = 12;
const GWEI: u128 = 1_000_000_000;

struct Anvil {
    peer: Peer,
    url: String,
    rpc: RpcClient,
}

impl Anvil {
    /// Starts anvil with on-demand mining and 12 s between block timestamps, so that block `n`
    /// sits at genesis + 12 n: anvil's beacon endpoint takes the slot as a block number, and the
    /// beacon client computes the slot from the block time.
    fn start() -> Option<Anvil> {
        let bin = peer_bin("OP_LITE_ANVIL", "anvil")?;
        let mut peer = Peer::spawn("anvil", |_| {
            let mut c = Command::new(&bin);
            c.args(["--port", "0", "--no-mining", "--color", "never"]);
            c
        });
        let addr = wait_for(&mut peer, "anvil", |p| {
            p.log().lines().find_map(|l| l.strip_prefix("Listening on ").map(|a| a.trim().to_string()))
        })
        .unwrap_or_else(|| panic!("anvil exited:\n{}", peer.log()));
        let url = format!("http://{addr}");
        let rpc = RpcClient::new(&url, TIMEOUT, None, Vec::new());
        let mut a = Anvil { peer, url, rpc };
        a.call("anvil_setBlockTimestampInterval", json!([SLOT]));
        Some(a)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        match self.rpc.call(method, params) {
            Ok(v) => v.parse().unwrap(),
            Err(e) => panic!("anvil {method}: {e}\n{}", self.peer.log()),
        }
    }

    fn send_raw(&mut self, raw: &[u8]) -> B256 {
        serde_json::from_value(self.call("eth_sendRawTransaction", json!([Bytes(raw.to_vec())]))).unwrap()
    }

    /// Mines one block and returns its number and hash.
    fn mine(&mut self) -> (u64, B256) {
        self.call("evm_mine", json!([]));
        let b = self.call("eth_getBlockByNumber", json!(["latest", false]));
        (
            serde_json::from_value::<U256>(b["number"].clone()).unwrap().to_u64().unwrap(),
            serde_json::from_value(b["hash"].clone()).unwrap(),
        )
    }

    fn l1(&self, method: ReceiptsMethod) -> L1Client {
        L1Client::new(&self.url, false, method, TIMEOUT)
    }

    fn set_storage(&mut self, address: Address, slot: U256, value: B256) {
        self.call("anvil_setStorageAt", json!([address, B256(slot.0), value]));
    }
}

/// A signing key with its nonce: enough to send real transactions of every type.
struct Signer {
    key: SigningKey,
    address: Address,
    nonce: u64,
}

impl Signer {
    fn anvil_dev() -> Signer {
        let key = SigningKey::from_slice(&crate::support::hex(ANVIL_KEY)).unwrap();
        let address = address_of(key.verifying_key());
        Signer { key, address, nonce: 0 }
    }

    fn sign(&mut self, mut tx: SignedTx) -> Transaction {
        tx.chain_id = Some(ANVIL_CHAIN_ID);
        tx.nonce = self.nonce;
        self.nonce += 1;
        let (sig, rec) = self.key.sign_prehash_recoverable(&tx.signing_hash().0).unwrap();
        let (r, s) = sig.split_bytes();
        let parity = u64::from(rec.is_y_odd());
        tx.sig = TxSignature {
            v: if tx.tx_type == LEGACY_TX_TYPE { ANVIL_CHAIN_ID * 2 + 35 + parity } else { parity },
            r: U256::from_be_slice(&r).unwrap(),
            s: U256::from_be_slice(&s).unwrap(),
        };
        Transaction::new(TxBody::Signed(tx))
    }
}

/// An unsigned transaction of `tx_type` to `to` with generous fees and gas.
fn tx_to(tx_type: u8, to: Address, input: Vec<u8>) -> SignedTx {
    let dynamic = tx_type >= EIP1559_TX_TYPE;
    SignedTx {
        tx_type,
        gas_price: 20 * GWEI,
        max_priority_fee_per_gas: if dynamic { GWEI } else { 0 },
        gas_limit: 300_000,
        to: Some(to),
        input: Bytes(input),
        ..SignedTx::default()
    }
}

/// Frames of a real channel: `blocks` singular batches with a signed user transaction each,
/// zlib-compressed and cut into frames of at most `max_frame` bytes.
fn batcher_frames(cfg: &RollupConfig, blocks: u64, max_frame: usize) -> Vec<Frame> {
    let mut user = Signer::anvil_dev();
    let blocks: Vec<L2BlockInput> = (0..blocks)
        .map(|i| {
            let pay =
                user.sign(tx_to(EIP1559_TX_TYPE, Address([0x11; 20]), keccak256(i.to_be_bytes()).0.to_vec()));
            L2BlockInput {
                number: 1000 + i,
                timestamp: cfg.genesis.l2_time + 2 * (1000 + i),
                parent_hash: keccak256((999 + i).to_be_bytes()),
                hash: keccak256((1000 + i).to_be_bytes()),
                l1_origin: BlockId { number: 77, hash: B256([0x77; 32]) },
                sequence_number: i,
                transactions: vec![Bytes(vec![0x7e, 0xc0]), Bytes(pay.into_encoded())],
            }
        })
        .collect();
    channel_frames(cfg, [0xc4; 16], BatchKind::Singular, &blocks, Compressor::Zlib { level: 9 }, max_frame)
        .unwrap()
}

#[test]
fn anvil_blocks_verify_and_batcher_calldata_comes_back() {
    let Some(mut anvil) = Anvil::start() else { return };
    let cfg = op_mainnet().rollup;
    let frames = batcher_frames(&cfg, 3, 200);
    assert!(frames.len() > 1, "want a channel of several frames");
    let mut batcher = Signer::anvil_dev();
    let sent: Vec<Transaction> = calldata_payloads(&frames)
        .into_iter()
        .map(|data| batcher.sign(tx_to(EIP1559_TX_TYPE, cfg.batch_inbox_address, data)))
        .collect();
    for tx in &sent {
        assert_eq!(anvil.send_raw(tx.encoded()), tx.hash());
    }
    let (number, hash) = anvil.mine();

    // The block by hash, header hash and transactions root verified against anvil's block.
    let mut l1 = anvil.l1(ReceiptsMethod::BlockReceipts);
    let (info, txs) = l1_block(&anvil, hash);
    assert_eq!((info.hash, info.number()), (hash, number));
    assert_eq!(info.time(), anvil_genesis_time(&mut anvil) + SLOT * number);
    assert_eq!(
        txs.iter().map(Transaction::hash).collect::<Vec<_>>(),
        sent.iter().map(Transaction::hash).collect::<Vec<_>>()
    );
    let mut got_frames = Vec::new();
    for tx in &txs {
        assert_eq!(tx.sender().unwrap(), batcher.address);
        assert_eq!(tx.to(), Some(cfg.batch_inbox_address));
        got_frames.extend(Frame::parse_all(tx.input()).unwrap());
    }
    assert_eq!(got_frames, frames);

    // Headers by number and by hash are the same verified header; missing blocks are NotFound.
    for req in [FetchRequest::L1HeaderByNumber(number), FetchRequest::L1HeaderByHash(hash)] {
        assert_eq!(arrival(l1.handle(L1Job::Fetch(req))), Arrival::L1Header(info.clone()));
    }
    for req in [FetchRequest::L1HeaderByNumber(number + 1000), FetchRequest::L1BlockByHash(B256([9; 32]))] {
        assert_eq!(arrival(l1.handle(L1Job::Fetch(req.clone()))), Arrival::NotFound(req));
    }

    // anvil's labels: safe one epoch (32 blocks) and finalized two epochs behind the head.
    anvil.call("anvil_mine", json!([quantity(70)]));
    let head = number + 70;
    let mut by_number = |n: u64| match arrival(l1.handle(L1Job::Fetch(FetchRequest::L1HeaderByNumber(n)))) {
        Arrival::L1Header(i) => i.block_ref(),
        other => panic!("{other:?}"),
    };
    let (latest, safe, finalized) = (by_number(head), by_number(head - 32), by_number(head - 64));
    match l1.handle(L1Job::Poll { label: L1Label::Latest, txs: false }) {
        Event::L1HeadPolled(a) => match *a {
            Arrival::L1Header(i) => assert_eq!(i.block_ref(), latest),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    // With its transactions, verified as any block fetch.
    match l1.handle(L1Job::Poll { label: L1Label::Latest, txs: true }) {
        Event::L1HeadPolled(a) => match *a {
            Arrival::L1Block(i, _) => assert_eq!(i.block_ref(), latest),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    match l1.handle(L1Job::Poll { label: L1Label::Safe, txs: false }) {
        Event::L1SafeUpdated(r) => assert_eq!(r, safe),
        other => panic!("{other:?}"),
    }
    match l1.handle(L1Job::Poll { label: L1Label::Finalized, txs: false }) {
        Event::L1FinalizedUpdated(r) => assert_eq!(r, finalized),
        other => panic!("{other:?}"),
    }
}

/// The block `hash` through the L1 client, verified.
fn l1_block(anvil: &Anvil, hash: B256) -> (BlockInfo, Vec<Transaction>) {
    match arrival(
        anvil.l1(ReceiptsMethod::BlockReceipts).handle(L1Job::Fetch(FetchRequest::L1BlockByHash(hash))),
    ) {
        Arrival::L1Block(info, txs) => (info, txs),
        other => panic!("block {hash}: {other:?}"),
    }
}

fn anvil_genesis_time(anvil: &mut Anvil) -> u64 {
    let b = anvil.call("eth_getBlockByNumber", json!(["0x0", false]));
    serde_json::from_value::<U256>(b["timestamp"].clone()).unwrap().to_u64().unwrap()
}

/// Runtime code that emits a `TransactionDeposited`-shaped LOG4: topic 1 is the caller, topic 2
/// the first calldata word, topic 3 zero (version 0), and the data the rest of the calldata.
fn deposit_emitter_code() -> Vec<u8> {
    let mut code = vec![0x60, 0x00, 0x60, 0x00, 0x35, 0x33, 0x7f];
    code.extend_from_slice(&op_lite::protocol::deposit::DEPOSIT_EVENT_TOPIC.0);
    // len = calldatasize - 32; calldatacopy(0, 32, len); log4(0, len, ...); stop
    code.extend_from_slice(&[
        0x60, 0x20, 0x36, 0x03, 0x80, 0x60, 0x20, 0x60, 0x00, 0x37, 0x60, 0x00, 0xa4, 0x00,
    ]);
    code
}

#[test]
fn anvil_receipts_verify_by_every_method_and_carry_real_deposit_logs() {
    let Some(mut anvil) = Anvil::start() else { return };
    let portal = Address([0xde; 20]);
    let reverter = Address([0xee; 20]);
    anvil.call("anvil_setCode", json!([portal, Bytes(deposit_emitter_code())]));
    // PUSH1 0, DUP1, REVERT: a failed receipt, whose logs (none) must be skipped anyway.
    anvil.call("anvil_setCode", json!([reverter, Bytes(vec![0x60, 0x00, 0x80, 0xfd])]));
    let mut user = Signer::anvil_dev();
    let deposits = [
        DepositTx {
            from: user.address,
            to: Some(Address([0x42; 20])),
            mint: U256::from_u64(5_000_000_000),
            value: U256::from_u64(7),
            gas_limit: 100_000,
            input: Bytes(b"hello L2".to_vec()),
            ..DepositTx::default()
        },
        // A contract creation with a long input (several data words).
        DepositTx {
            from: user.address,
            gas_limit: 1_000_000,
            input: Bytes(vec![0x5a; 100]),
            ..DepositTx::default()
        },
    ];
    let logs: Vec<_> = deposits.iter().map(|d| encode_deposit_log(&portal, d)).collect();
    let call_data = |log: &op_lite::protocol::receipt::Log| [&log.topics[2].0[..], &log.data].concat();
    let mut access = tx_to(EIP2930_TX_TYPE, portal, call_data(&logs[0]));
    access.access_list = vec![AccessListItem { address: portal, storage_keys: vec![B256([1; 32])] }];
    let txs = [
        user.sign(SignedTx {
            value: U256::from_u64(1),
            ..tx_to(LEGACY_TX_TYPE, Address([0x12; 20]), vec![])
        }),
        user.sign(access),
        user.sign(tx_to(EIP1559_TX_TYPE, reverter, vec![1, 2, 3])),
        user.sign(tx_to(EIP1559_TX_TYPE, portal, call_data(&logs[1]))),
    ];
    for tx in &txs {
        anvil.send_raw(tx.encoded());
    }
    let (_, hash) = anvil.mine();

    let receipts_root = match arrival(
        anvil.l1(ReceiptsMethod::BlockReceipts).handle(L1Job::Fetch(FetchRequest::L1HeaderByHash(hash))),
    ) {
        Arrival::L1Header(i) => i.header.receipts_root,
        other => panic!("{other:?}"),
    };
    let by = |anvil: &Anvil, m: ReceiptsMethod| {
        let req = FetchRequest::L1Receipts { hash, receipts_root };
        arrival(anvil.l1(m).with_max_batch(3).handle(L1Job::Fetch(req)))
    };
    let Arrival::L1Receipts(h, receipts) = by(&anvil, ReceiptsMethod::BlockReceipts) else {
        panic!("no receipts")
    };
    assert_eq!(h, hash);
    assert_eq!(
        receipts.iter().map(|r| (r.tx_type, r.success, r.logs.len())).collect::<Vec<_>>(),
        [
            (LEGACY_TX_TYPE, true, 0),
            (EIP2930_TX_TYPE, true, 1),
            (EIP1559_TX_TYPE, false, 0),
            (EIP1559_TX_TYPE, true, 1),
        ]
    );
    // The EVM emitted exactly the portal's log encoding.
    assert_eq!([&receipts[1].logs[0], &receipts[3].logs[0]], [&logs[0], &logs[1]]);
    // Per-transaction receipts (in batches of 3) give the same, verified, receipts.
    assert_eq!(by(&anvil, ReceiptsMethod::PerTransaction), Arrival::L1Receipts(hash, receipts.clone()));
    // anvil has no debug_getRawReceipts: a clean failure naming the cause.
    match by(&anvil, ReceiptsMethod::DebugRawReceipts) {
        Arrival::Failed(FetchRequest::L1Receipts { hash: h, .. }, e) if h == hash => {
            assert!(e.contains("-32601"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let missing = FetchRequest::L1Receipts { hash: B256([3; 32]), receipts_root: B256::ZERO };
    assert_eq!(
        arrival(anvil.l1(ReceiptsMethod::BlockReceipts).handle(L1Job::Fetch(missing.clone()))),
        Arrival::NotFound(missing)
    );

    // The deposits the node derives from these receipts: log indices count every log of the block.
    let mut cfg = op_mainnet().rollup;
    cfg.deposit_contract_address = portal;
    let expected: Vec<Bytes> = deposits
        .iter()
        .zip([0, 1])
        .map(|(d, log_index)| {
            let d = DepositTx { source_hash: user_deposit_source(&hash, log_index), ..d.clone() };
            Bytes(Transaction::new(TxBody::Deposit(d)).into_encoded())
        })
        .collect();
    assert_eq!(digest_receipts(&cfg, hash, &receipts).deposits, Ok(expected));
}

/// The network form of a blob transaction (EIP-4844 `PooledTransactions` wrapper): the signed
/// transaction's fields with the blobs, their commitments and KZG proofs.
fn blob_network_tx(tx: &Transaction, blobs: &[Vec<u8>]) -> Vec<u8> {
    let settings = c_kzg::ethereum_kzg_settings(0);
    let mut out = vec![EIP4844_TX_TYPE];
    let (mut commitments, mut proofs) = (Vec::new(), Vec::new());
    for b in blobs {
        let blob = c_kzg::Blob::from_bytes(b).unwrap();
        let c = settings.blob_to_kzg_commitment(&blob).unwrap().to_bytes();
        proofs.push(settings.compute_blob_kzg_proof(&blob, &c).unwrap().to_bytes());
        commitments.push(c);
    }
    rlp::put_list(&mut out, |o| {
        o.extend_from_slice(&tx.encoded()[1..]);
        rlp::put_list(o, |o| blobs.iter().for_each(|b| rlp::put_bytes(o, b)));
        rlp::put_list(o, |o| commitments.iter().for_each(|c| rlp::put_bytes(o, &c[..])));
        rlp::put_list(o, |o| proofs.iter().for_each(|p| rlp::put_bytes(o, &p[..])));
    });
    out
}

#[test]
fn anvil_blob_tx_comes_back_through_its_beacon_endpoint() {
    let Some(mut anvil) = Anvil::start() else { return };
    let cfg = op_mainnet().rollup;
    let frames = batcher_frames(&cfg, 4, 250);
    let blobs = blob_payloads(&frames[..2]).unwrap();
    let hashes: Vec<B256> = blobs.iter().map(|b| versioned_hash(&kzg_commitment(b).unwrap())).collect();
    let mut batcher = Signer::anvil_dev();
    // An empty block first, so the blob block is not block 1 by accident of numbering.
    anvil.mine();
    let tx = batcher.sign(SignedTx {
        max_fee_per_blob_gas: 10 * GWEI,
        blob_versioned_hashes: hashes.clone(),
        ..tx_to(EIP4844_TX_TYPE, cfg.batch_inbox_address, vec![])
    });
    let net = blob_network_tx(&tx, &blobs);
    assert_eq!(anvil.send_raw(&net), tx.hash());
    let (number, hash) = anvil.mine();

    // The block carries the transaction without its sidecar. anvil 1.7.1 computes the
    // transactions root over the pooled encoding (with the sidecar) instead
    // (foundry-rs/foundry#15132, fixed after 1.7.1): verification must catch exactly that,
    // while a trusted RPC (`--l1.trustrpc`) takes the block as served.
    match arrival(
        anvil.l1(ReceiptsMethod::BlockReceipts).handle(L1Job::Fetch(FetchRequest::L1BlockByHash(hash))),
    ) {
        Arrival::L1Block(..) => {}
        Arrival::Failed(_, e) => {
            let pooled_root = ordered_root(&[&net[..]]);
            assert!(e.contains(&format!("transactions root mismatch: header {pooled_root}")), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let mut trusted = L1Client::new(&anvil.url, true, ReceiptsMethod::BlockReceipts, TIMEOUT);
    let (info, txs) = match arrival(trusted.handle(L1Job::Fetch(FetchRequest::L1BlockByHash(hash)))) {
        Arrival::L1Block(info, txs) => (info, txs),
        other => panic!("{other:?}"),
    };
    assert_eq!(txs, vec![tx]);
    assert_eq!(txs[0].blob_versioned_hashes(), &hashes[..]);
    assert_eq!(txs[0].sender().unwrap(), batcher.address);

    // The beacon client: genesis from anvil, the slot duration by override (anvil has no
    // /eth/v1/config/spec), so slot = (time - genesis) / 12 = the block number anvil expects.
    let beacon_cfg = BeaconConfig {
        url: anvil.url.clone(),
        fallbacks: vec![],
        header: None,
        fetch_all_sidecars: false,
        slot_duration_override: Some(SLOT),
        timeout: TIMEOUT,
    };
    let mut beacon = BeaconClient::new(&beacon_cfg);
    assert_eq!(beacon.slot(info.time()).unwrap(), number);
    let block = info.block_ref();
    for (i, h) in hashes.iter().enumerate() {
        let req = FetchRequest::Blobs { block, hashes: vec![*h] };
        match arrival(beacon.handle(req)) {
            Arrival::Blobs { blobs: got, .. } => {
                assert_eq!(got, vec![blobs[i].clone()]);
                let data = decode_blob(&got[0]).unwrap();
                assert_eq!(Frame::parse_all(&data).unwrap(), vec![frames[i].clone()]);
            }
            other => panic!("blob {i}: {other:?}"),
        }
    }
    // Both at once: op-node (and op-lite) repeat `versioned_hashes=`; anvil keeps only one of
    // the repeated parameters, so the answer is short and rejected rather than misassigned.
    match arrival(beacon.handle(FetchRequest::Blobs { block, hashes: hashes.clone() })) {
        Arrival::Blobs { blobs: got, .. } => assert_eq!(got, blobs),
        Arrival::Failed(_, e) => assert!(e.contains("expected 2 blobs but got 1"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A hash the block does not have, and a block without blobs, fail cleanly.
    let stranger = versioned_hash(&kzg_commitment(&blob_payloads(&frames[2..3]).unwrap()[0]).unwrap());
    for (block, what) in [
        (block, "unknown hash"),
        (L1BlockRef { number: number - 1, timestamp: block.timestamp - SLOT, ..block }, "blobless block"),
    ] {
        match arrival(beacon.handle(FetchRequest::Blobs { block, hashes: vec![stranger] })) {
            Arrival::Failed(_, e) => assert!(e.contains("expected 1 blobs but got 0"), "{what}: {e}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn anvil_storage_proofs_verify_against_the_state_root() {
    let Some(mut anvil) = Anvil::start() else { return };
    let (_, before) = anvil.mine();
    let account = Address([0x55; 20]);
    // Keys of every shape: zero, one with a leading zero nibble, a hashed one, and one never set.
    let zero = U256::ZERO;
    let low = U256::from_u64(0x0fff);
    let hashed = U256(keccak256(b"some mapping key").0);
    let unset = U256::from_u64(0xabcdef);
    let values = [B256([0x01; 32]), B256(U256::from_u64(7).0), B256(keccak256(b"v").0)];
    for (slot, value) in [zero, low, hashed].into_iter().zip(values) {
        anvil.set_storage(account, slot, value);
    }
    let (number, after) = anvil.mine();
    let mut l1 = anvil.l1(ReceiptsMethod::BlockReceipts);
    let header = |l1: &mut L1Client, h: B256| match arrival(
        l1.handle(L1Job::Fetch(FetchRequest::L1HeaderByHash(h))),
    ) {
        Arrival::L1Header(i) => i,
        other => panic!("{other:?}"),
    };
    let (old, new) = (header(&mut l1, before), header(&mut l1, after));
    assert_eq!(new.number(), number);

    let got = l1.storage_at(&account, &[zero, low, hashed, unset], &new).unwrap();
    let want: Vec<U256> = values.iter().map(|v| U256(v.0)).chain([U256::ZERO]).collect();
    assert_eq!(got, want);
    // An account that does not exist: an exclusion proof in the account trie.
    assert_eq!(l1.storage_at(&Address([0x77; 20]), &[zero], &new).unwrap(), vec![U256::ZERO]);
    // Before the writes the account did not exist either, but anvil 1.7.1 answers proofs for
    // that block from a state that already has the cheat-code writes: never believed.
    match l1.storage_at(&account, &[zero], &old) {
        Ok(v) => assert_eq!(v, vec![U256::ZERO]),
        Err(e) => assert!(e.contains(&format!("proof lacks trie node {}", old.header.state_root)), "{e}"),
    }
    // The proof for the new block checked against the old block's state root fails.
    let wrong_root = BlockInfo { hash: new.hash, header: old.header.clone() };
    let e = l1.storage_at(&account, &[low], &wrong_root).unwrap_err();
    assert!(e.contains("invalid storage proof"), "{e}");

    // The runtime config as the node loads it: the SystemConfig's unsafe block signer and the
    // ProtocolVersions' required and recommended versions, read by proof at the head.
    let (system_config, protocol_versions) = (Address([0x5c; 20]), Address([0x5d; 20]));
    let signer = Address([0xab; 20]);
    let mut signer_word = [0u8; 32];
    signer_word[12..].copy_from_slice(&signer.0);
    anvil.set_storage(system_config, U256(keccak256(b"systemconfig.unsafeblocksigner").0), B256(signer_word));
    let (required, recommended) = ([3u8; 32], [4u8; 32]);
    anvil.set_storage(protocol_versions, named_slot("protocolversion.required"), B256(required));
    anvil.set_storage(protocol_versions, named_slot("protocolversion.recommended"), B256(recommended));
    let (head, head_hash) = anvil.mine();
    match l1.handle(L1Job::RuntimeConfig { at: None, confs: 0, system_config, protocol_versions }) {
        Event::RuntimeConfigLoaded(d) => {
            assert_eq!((d.l1_number, d.l1_hash), (head, head_hash));
            assert_eq!(d.unsafe_block_signer, signer);
            assert_eq!(
                (d.required, d.recommended),
                (ProtocolVersion(required), ProtocolVersion(recommended))
            );
        }
        other => panic!("{other:?}"),
    }
    // At a cached header (the node passes the block the cache holds): only the proofs are
    // asked for, at that block. (anvil answers eth_getProof from its latest state whatever
    // block is named, so the block is the head here.)
    let at = match arrival(l1.handle(L1Job::Fetch(FetchRequest::L1HeaderByNumber(head)))) {
        Arrival::L1Header(info) => std::sync::Arc::new(info),
        other => panic!("{other:?}"),
    };
    match l1.handle(L1Job::RuntimeConfig { at: Some(at), confs: 0, system_config, protocol_versions }) {
        Event::RuntimeConfigLoaded(d) => {
            assert_eq!((d.l1_number, d.l1_hash), (head, head_hash));
            assert_eq!(d.unsafe_block_signer, signer);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_killed_anvil_is_a_clean_transport_failure() {
    let Some(mut anvil) = Anvil::start() else { return };
    let (_, hash) = anvil.mine();
    let mut l1 = anvil.l1(ReceiptsMethod::BlockReceipts);
    let (info, _) = l1_block(&anvil, hash);
    let mut beacon = BeaconClient::new(&BeaconConfig {
        url: anvil.url.clone(),
        fallbacks: vec![],
        header: None,
        fetch_all_sidecars: false,
        slot_duration_override: Some(SLOT),
        timeout: TIMEOUT,
    });
    anvil.peer.kill();
    match l1.handle(L1Job::Poll { label: L1Label::Latest, txs: false }) {
        Event::L1PollFailed { label: "latest", err } => assert!(err.contains(&anvil.url), "{err}"),
        other => panic!("{other:?}"),
    }
    for req in [
        FetchRequest::L1BlockByHash(hash),
        FetchRequest::L1Receipts { hash, receipts_root: B256::ZERO },
        FetchRequest::L1HeaderByNumber(1),
    ] {
        match arrival(l1.handle(L1Job::Fetch(req.clone()))) {
            Arrival::Failed(r, e) => assert_eq!(r, req, "{e}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(l1.storage_at(&Address([1; 20]), &[U256::ZERO], &info).is_err());
    match l1.handle(L1Job::RuntimeConfig {
        at: None,
        confs: 0,
        system_config: Address([1; 20]),
        protocol_versions: Address::ZERO,
    }) {
        Event::RuntimeConfigLoadFailed { .. } => {}
        other => panic!("{other:?}"),
    }
    let req = FetchRequest::Blobs { block: info.block_ref(), hashes: vec![B256([1; 32])] };
    match arrival(beacon.handle(req.clone())) {
        Arrival::Failed(r, e) => assert_eq!(r, req, "{e}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// EthereumJS as the engine

const ENGINE_CHAIN_ID: u64 = 901;

/// A post-merge dev chain: merged at genesis, Shanghai, Cancun and Prague from time 0.
fn engine_genesis() -> Value {
    let mut config = json!({
        "chainId": ENGINE_CHAIN_ID,
        "mergeNetsplitBlock": 0, "terminalTotalDifficulty": 0, "terminalTotalDifficultyPassed": true,
        "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0,
        "blobSchedule": {
            "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
            "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716}
        }
    });
    let block_forks = "homestead eip150 eip155 eip158 byzantium constantinople petersburg istanbul \
                       muirGlacier berlin london arrowGlacier grayGlacier";
    for fork in block_forks.split_whitespace() {
        config[format!("{fork}Block")] = json!(0);
    }
    json!({
        "config": config,
        "nonce": "0x0", "timestamp": "0x0", "extraData": "0x", "gasLimit": "0x1c9c380", "difficulty": "0x0",
        "mixHash": B256::ZERO, "coinbase": Address::ZERO, "number": "0x0", "gasUsed": "0x0", "parentHash": B256::ZERO,
        "baseFeePerGas": "0x3b9aca00", "excessBlobGas": "0x0", "blobGasUsed": "0x0",
        "alloc": { Address([0x11; 20]).to_string(): { "balance": "0x1" } }
    })
}

struct EthereumJs {
    _peer: Peer,
    url: String,
    secret: [u8; 32],
    genesis: B256,
}

impl EthereumJs {
    /// Starts EthereumJS with only its authenticated Engine API server on a free loopback port
    /// (retried on another port should the chosen one be taken meanwhile), no peers, no discovery.
    fn start() -> Option<EthereumJs> {
        Self::start_with(&engine_genesis())
    }

    /// EthereumJS started from `genesis` (geth's genesis.json format).
    fn start_with(genesis: &Value) -> Option<EthereumJs> {
        let bin = peer_bin("OP_LITE_ETHEREUMJS", "ethereumjs")?;
        let secret = keccak256(b"op-lite peers engine secret").0;
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut peer = Peer::spawn("ethereumjs", |dir| {
                fs::write(dir.join("genesis.json"), genesis.to_string()).unwrap();
                fs::write(dir.join("jwt.hex"), op_lite::protocol::primitives::to_hex(&secret)).unwrap();
                let mut c = Command::new(&bin);
                c.arg("--gethGenesis").arg(dir.join("genesis.json"));
                c.arg("--dataDir").arg(dir.join("data"));
                c.arg("--jwtSecret").arg(dir.join("jwt.hex"));
                c.args(["--rpcEngine", "--rpcEngineAddr", "127.0.0.1", "--rpcEnginePort", &port.to_string()]);
                c.args(["--port", "0", "--maxPeers", "0", "--discDns", "false", "--discV4", "false"]);
                c.args(["--isSingleNode", "--no-logFile"]);
                c
            });
            let url = format!("http://127.0.0.1:{port}");
            let mut rpc = RpcClient::new(&url, Duration::from_secs(2), Some(secret), Vec::new());
            let genesis = wait_for(&mut peer, "ethereumjs", |_| {
                let b: Value = rpc.call("eth_getBlockByNumber", json!(["0x0", false])).ok()?.parse().ok()?;
                serde_json::from_value(b["hash"].clone()).ok()
            });
            match genesis {
                Some(genesis) => return Some(EthereumJs { _peer: peer, url, secret, genesis }),
                None => last_log = peer.log(),
            }
        }
        panic!("ethereumjs exited three times:\n{last_log}");
    }

    /// An engine client whose rollup config has this chain's genesis as the L2 genesis.
    fn client(&self, secret: [u8; 32], timeout: Duration) -> EngineClient {
        let mut cfg = op_mainnet().rollup;
        cfg.genesis.l2 = BlockId { hash: self.genesis, number: 0 };
        cfg.genesis.l2_time = 0;
        cfg.l2_chain_id = ENGINE_CHAIN_ID;
        EngineClient::new(&self.url, secret, timeout, Arc::new(cfg))
    }
}

fn engine_call(engine: &mut EngineClient, call: EngineCall) -> Result<EngineReply, EngineError> {
    match engine.handle(EngineJob::Call { id: 7, call }) {
        Event::EngineReplied { id: 7, result } => result,
        other => panic!("{other:?}"),
    }
}

fn fcu(
    engine: &mut EngineClient,
    version: u8,
    head: B256,
    safe: B256,
    attributes: Option<PayloadAttributes>,
) -> Result<EngineReply, EngineError> {
    let state = ForkchoiceState { head_block_hash: head, safe_block_hash: safe, finalized_block_hash: safe };
    engine_call(
        engine,
        EngineCall::ForkchoiceUpdated { version, state, attributes: attributes.map(Box::new) },
    )
}

/// `op-lite devnet init` writes a genesis.json whose genesis block EthereumJS (a second
/// implementation of geth's genesis rules: state trie, header fields per fork) hashes to the
/// rollup.json's `genesis.l2.hash`, for schedules from London-only to every fork at genesis
/// (Shanghai's withdrawals root, Cancun's blob fields and beacon root, Prague's requests hash,
/// Holocene's and Jovian's extraData).
#[test]
fn devnet_init_genesis_hash_is_the_one_ethereumjs_computes() {
    if peer_bin("OP_LITE_ETHEREUMJS", "ethereumjs").is_none() {
        return;
    }
    for forks in
        [&[][..], &["jovian=off"], &["isthmus=off"], &["holocene=off"], &["ecotone=off"], &["canyon=off"]]
    {
        let flags: Vec<&str> = forks.iter().flat_map(|f| ["--fork", f]).collect();
        let dir = crate::support::devnet_init(&format!("ejs-{}", forks.join("-")), &flags);
        let genesis = crate::support::read_json(&dir.join("genesis.json"));
        let rollup = RollupConfig::from_json(&fs::read_to_string(dir.join("rollup.json")).unwrap()).unwrap();
        let ejs = EthereumJs::start_with(&genesis).expect("ethereumjs");
        assert_eq!(ejs.genesis, rollup.genesis.l2.hash, "forks {forks:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn ethereumjs_checks_the_jwt_and_lists_its_capabilities() {
    let Some(ejs) = EthereumJs::start() else { return };
    let mut engine = ejs.client(ejs.secret, TIMEOUT);
    let caps = engine
        .exchange_capabilities(&["engine_forkchoiceUpdatedV3", "engine_newPayloadV4", "engine_getPayloadV4"])
        .unwrap();
    for m in [
        "engine_forkchoiceUpdatedV3",
        "engine_newPayloadV3",
        "engine_newPayloadV4",
        "engine_getPayloadV3",
        "engine_getPayloadV4",
    ] {
        assert!(caps.iter().any(|c| c == m), "{m} missing from {caps:?}");
    }
    assert_eq!(engine.chain_id().unwrap(), ENGINE_CHAIN_ID);

    // A wrong secret: EthereumJS answers 401 with a text body; every path reports it cleanly.
    let mut wrong = ejs.client([0x13; 32], TIMEOUT);
    let unauthorized =
        |m: &str| m.contains("HTTP 401 Unauthorized: Unauthorized: Error: Signature verification failed");
    match wrong.exchange_capabilities(&[]) {
        Err(ClientError::Transport(m)) => assert!(unauthorized(&m), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(wrong.chain_id(), Err(ClientError::Transport(m)) if unauthorized(&m)));
    match fcu(&mut wrong, 3, ejs.genesis, ejs.genesis, None) {
        Err(EngineError::Transport(m)) => assert!(unauthorized(&m), "{m}"),
        other => panic!("{other:?}"),
    }
    match arrival(wrong.handle(EngineJob::Fetch(FetchRequest::L2BlockByNumber(0)))) {
        Arrival::Failed(_, m) => assert!(unauthorized(&m), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ethereumjs_builds_and_inserts_a_block_through_the_engine_client() {
    let Some(ejs) = EthereumJs::start() else { return };
    let mut engine = ejs.client(ejs.secret, TIMEOUT);
    let g = ejs.genesis;
    let valid = |r: Result<EngineReply, EngineError>| match r {
        Ok(EngineReply::Forkchoice(f)) if f.payload_status.status == ExecutionStatus::Valid => f.payload_id,
        other => panic!("{other:?}"),
    };
    assert_eq!(valid(fcu(&mut engine, 3, g, g, None)), None);

    let beacon_root = B256([0xbe; 32]);
    let attributes = PayloadAttributes {
        timestamp: 12,
        prev_randao: B256([0x5a; 32]),
        suggested_fee_recipient: Address([0xfe; 20]),
        withdrawals: Some(vec![]),
        parent_beacon_block_root: Some(beacon_root),
        transactions: vec![],
        no_tx_pool: false,
        gas_limit: None,
        eip1559_params: None,
        min_base_fee: None,
    };
    // The OP extensions (forced transactions, noTxPool, gasLimit) are not L1 Engine API:
    // EthereumJS refuses attributes with more than the five V3 fields, as invalid params.
    let op = PayloadAttributes {
        transactions: vec![Bytes(vec![0x7e, 0xc0])],
        no_tx_pool: true,
        gas_limit: Some(30_000_000),
        ..attributes.clone()
    };
    match fcu(&mut engine, 3, g, g, Some(op)) {
        Err(EngineError::Rpc { code: -32602, message }) => {
            assert!(message.contains("PayloadAttributesV3"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // V3 attributes on forkchoiceUpdatedV2 are refused the same way.
    match fcu(&mut engine, 2, g, g, Some(attributes.clone())) {
        Err(EngineError::Rpc { code: -32602, message }) => {
            assert!(message.contains("forkchoiceUpdatedV2"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // The L1 subset of the attributes: a payload id, the payload, its insertion, the new head.
    let id = valid(fcu(&mut engine, 3, g, g, Some(attributes.clone()))).expect("a payload id");
    let info = PayloadInfo { id, timestamp: 12 };
    let mut envelope = match engine_call(&mut engine, EngineCall::GetPayload { version: 4, info }) {
        Ok(EngineReply::Payload(e)) => e,
        other => panic!("{other:?}"),
    };
    let p = &envelope.execution_payload;
    assert_eq!((p.parent_hash, p.block_number, p.timestamp), (g, 1, 12));
    assert_eq!(
        (p.prev_randao, p.fee_recipient),
        (attributes.prev_randao, attributes.suggested_fee_recipient)
    );
    assert_eq!((&p.withdrawals, p.blob_gas_used, p.excess_blob_gas), (&Some(vec![]), Some(0), Some(0)));
    // An L1 getPayload has no parentBeaconBlockRoot in its envelope (op-geth adds it); the
    // caller supplies the one it built with.
    assert_eq!(envelope.parent_beacon_block_root, None);
    envelope.parent_beacon_block_root = Some(beacon_root);
    let block = p.block_hash;
    match engine_call(&mut engine, EngineCall::NewPayload { version: 4, envelope: envelope.clone() }) {
        Ok(EngineReply::NewPayload(s)) => {
            assert_eq!((s.status, s.latest_valid_hash), (ExecutionStatus::Valid, Some(block)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(valid(fcu(&mut engine, 3, block, g, None)), None);
    // A head the engine has never seen: SYNCING, not an error.
    match fcu(&mut engine, 3, B256([0x11; 32]), g, None) {
        Ok(EngineReply::Forkchoice(f)) => assert_eq!(f.payload_status.status, ExecutionStatus::Syncing),
        other => panic!("{other:?}"),
    }
    // A payload whose block hash does not match its contents is not inserted.
    let mut forged = envelope.clone();
    forged.execution_payload.extra_data = Bytes(b"forged".to_vec());
    // EthereumJS says INVALID (with the reason) where geth says INVALID_BLOCK_HASH.
    match engine_call(&mut engine, EngineCall::NewPayload { version: 4, envelope: forged }) {
        Ok(EngineReply::NewPayload(s)) => {
            assert!(matches!(s.status, ExecutionStatus::InvalidBlockHash | ExecutionStatus::Invalid), "{s}");
            assert!(s.validation_error.as_deref().unwrap_or_default().contains("Invalid blockHash"), "{s}");
        }
        other => panic!("{other:?}"),
    }
    // An unknown payload id is an Engine API error object (EthereumJS uses -32001, not -38001).
    match engine_call(
        &mut engine,
        EngineCall::GetPayload {
            version: 4,
            info: PayloadInfo { id: op_lite::protocol::primitives::B64([1; 8]), timestamp: 24 },
        },
    ) {
        Err(EngineError::Rpc { message, .. }) => assert!(message.contains("Unknown payload"), "{message}"),
        other => panic!("{other:?}"),
    }

    // L2 blocks through the engine client: the genesis (this config's L2 genesis) parses, with
    // its header hash checked; block 1 has no L1-info deposit, so it is a clean failure.
    match arrival(engine.handle(EngineJob::Fetch(FetchRequest::L2BlockByNumber(0)))) {
        Arrival::L2Block(d) => assert_eq!((d.block_ref.hash, d.block_ref.number), (g, 0)),
        other => panic!("{other:?}"),
    }
    for req in [
        FetchRequest::L2BlockByLabel(L2Label::Unsafe),
        FetchRequest::L2BlockByHash(block),
        FetchRequest::L2BlockByNumber(1),
    ] {
        match arrival(engine.handle(EngineJob::Fetch(req.clone()))) {
            Arrival::Failed(r, e) => {
                assert_eq!(r, req);
                assert!(
                    e.contains(&format!("l2 block is missing L1 info deposit tx, block hash: {block}")),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let missing = FetchRequest::L2BlockByNumber(5);
    assert_eq!(arrival(engine.handle(EngineJob::Fetch(missing.clone()))), Arrival::NotFound(missing));
}

#[test]
fn engine_calls_time_out_against_an_engine_that_never_answers() {
    let silent = StubServer::start(|_: &StubRequest| StubResponse {
        delay: Duration::from_secs(2),
        ..StubResponse::json(200, "{}")
    })
    .unwrap();
    let timeout = Duration::from_millis(200);
    let mut engine = EngineClient::new(&silent.url(), [1; 32], timeout, Arc::new(op_mainnet().rollup));
    let t0 = Instant::now();
    match fcu(&mut engine, 3, B256::ZERO, B256::ZERO, None) {
        Err(EngineError::Transport(m)) => assert!(m.contains(&silent.url()) && m.contains("timeout"), "{m}"),
        other => panic!("{other:?}"),
    }
    let took = t0.elapsed();
    assert!(took >= timeout && took < Duration::from_millis(1500), "{took:?}");
}
