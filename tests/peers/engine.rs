//! op-lite on an executing engine (`tests/engine-peer`: the OP EVM from crates.io, blocks
//! re-executed and checked): its genesis hash is the one `devnet init` writes; a sequencer
//! op-lite and a verifier op-lite, each on its own engine peer, run the devnet with every fork
//! Ecotone..Jovian activating mid-chain (Canyon and Delta at genesis), user transactions of every kind sent to the
//! sequencer's engine and L1 deposits that mint; both engines hold the same chain hash for
//! hash, the safe head advances through the batcher, `optimism_outputAtBlock` agrees; the
//! -38002 race of issue 14 never reaches the engine (which refuses such a forkchoice), and the
//! sequencer goes on promptly after its engine restarts without its last two blocks.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use op_lite::devnet::l1_sim::Account;
use op_lite::io::rpc_client::RpcClient;
use op_lite::protocol::primitives::{keccak256, Address, Bytes, U256};
use op_lite::protocol::rlp;
use op_lite::protocol::tx::{Authorization, SignedTx, EIP1559_TX_TYPE, EIP7702_TX_TYPE, LEGACY_TX_TYPE};

use crate::support::{bin, devnet_init, engine_peer, lines, rpc, ServedNode};

const CHAIN_ID: u64 = 901;

/// An engine peer process on loopback; killed on drop.
struct Peer {
    child: Child,
    url: String,
    jwt: [u8; 32],
}

impl Peer {
    fn start(exe: &Path, dir: &Path, port: u16, extra: &[&str]) -> Peer {
        let mut child = Command::new(exe)
            .arg("--genesis")
            .arg(dir.join("genesis.json"))
            .arg("--jwt")
            .arg(dir.join("jwt.hex"))
            .args(["--port", &port.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = lines(child.stdout.take().unwrap());
        let first = out.recv_timeout(Duration::from_secs(20)).expect("engine peer did not start");
        let url = first.split("serving at ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        let jwt_text = std::fs::read_to_string(dir.join("jwt.hex")).unwrap();
        let jwt: [u8; 32] = crate::support::hex(jwt_text.trim()).try_into().unwrap();
        Peer { child, url, jwt }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        RpcClient::new(&self.url, Duration::from_secs(10), Some(self.jwt), Vec::new())
            .call(method, params)
            .map_err(|e| e.to_string())
            .and_then(|r| r.parse().map_err(|e| e.to_string()))
    }

    fn block(&self, tag: Value, full: bool) -> Value {
        self.call("eth_getBlockByNumber", json!([tag, full])).unwrap()
    }

    fn hash(&self, n: u64) -> String {
        self.block(json!(format!("0x{n:x}")), false)["hash"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn q(v: &Value) -> u64 {
    v.as_str().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()).unwrap_or(0)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The genesis block the engine computes from genesis.json is the one rollup.json names, for
/// forks at genesis and forks later.
#[test]
fn engine_peer_genesis_is_the_one_devnet_init_writes() {
    let Some(exe) = engine_peer() else { return };
    for (tag, forks) in [("all", vec![]), ("later", vec!["--fork", "canyon=4", "--fork", "isthmus=20"])] {
        let dir = devnet_init(&format!("engine-peer-{tag}"), &forks);
        let rollup: Value = crate::support::read_json(&dir.join("rollup.json"));
        let peer = Peer::start(&exe, &dir, 0, &[]);
        assert_eq!(peer.hash(0), rollup["genesis"]["l2"]["hash"].as_str().unwrap(), "{tag}");
        assert_eq!(q(&peer.call("eth_chainId", json!([])).unwrap()), CHAIN_ID);
        drop(peer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Signs an EIP-7702 authorization by `authority` for `address`.
fn authorize(authority: &Account, address: Address, nonce: u64) -> Authorization {
    let body = rlp::encode_list(|o| {
        rlp::put_u64(o, CHAIN_ID);
        rlp::put_bytes(o, &address.0);
        rlp::put_u64(o, nonce);
    });
    let mut msg = vec![0x05];
    msg.extend_from_slice(&body);
    let key = k256::ecdsa::SigningKey::from_slice(&authority.secret()).unwrap();
    let (sig, rec) = key.sign_prehash_recoverable(&keccak256(&msg).0).unwrap();
    let (r, s) = sig.split_bytes();
    Authorization {
        chain_id: U256::from_u64(CHAIN_ID),
        address,
        nonce,
        y_parity: rec.is_y_odd() as u8,
        r: U256::from_be_slice(&r).unwrap(),
        s: U256::from_be_slice(&s).unwrap(),
    }
}

fn send(peer: &Peer, from: &mut Account, tx: SignedTx) -> String {
    let raw = from.sign(tx, CHAIN_ID);
    let h = peer
        .call(
            "eth_sendRawTransaction",
            json!([op_lite::protocol::primitives::to_hex_prefixed(raw.encoded())]),
        )
        .unwrap_or_else(|e| panic!("sending nonce {}: {e}", from.nonce - 1));
    h.as_str().unwrap().to_string()
}

fn receipt(peer: &Peer, h: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = peer.call("eth_getTransactionReceipt", json!([h])).unwrap();
        if !r.is_null() {
            return r;
        }
        assert!(Instant::now() < deadline, "transaction {h} not included within {secs} s");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn sync_status(node: &ServedNode) -> Value {
    rpc(node, "optimism_syncStatus", json!([]))
}

fn head(node: &ServedNode, which: &str) -> u64 {
    sync_status(node)[which]["number"].as_u64().unwrap_or(0)
}

/// `op-lite devnet --from DIR --serve-only --with-sequencer --sequencer-engine A --engine B`:
/// the process and the two node command lines it prints.
fn serve_devnet(dir: &Path, a: &Peer, b: &Peer) -> (Child, Vec<String>, Vec<String>) {
    let mut devnet = Command::new(bin())
        .args(["devnet", "--from"])
        .arg(dir)
        .args(["--serve-only", "--with-sequencer", "--sequencer-engine", &a.url, "--engine", &b.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = lines(devnet.stdout.take().unwrap());
    let (mut seq, mut ver, mut after) = (None, None, String::new());
    while seq.is_none() || ver.is_none() {
        let line = out.recv_timeout(Duration::from_secs(60)).expect("devnet did not print its command lines");
        let args =
            || line.trim().strip_prefix("op-lite ").map(|a| a.split_whitespace().map(String::from).collect());
        if after.contains("sequencer node") {
            seq = args();
        } else if after.contains("verifier node") {
            ver = args();
        }
        after = line.clone();
    }
    (devnet, seq.unwrap(), ver.unwrap())
}

/// A child process killed when dropped (also when the test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every line a node logged so far.
fn drain_log(node: &ServedNode, into: &mut String) {
    while let Ok(l) = node.log.try_recv() {
        into.push_str(&l);
        into.push('\n');
    }
}

#[test]
fn a_sequencer_and_a_verifier_on_executing_engines_build_and_derive_the_same_chain() {
    let Some(exe) = engine_peer() else { return };
    // Genesis 30 s ago: the devnet catches up the first 15 blocks at once, then runs in real
    // time; every fork from Ecotone to Jovian activates after genesis, Jovian about 16 s in.
    // Canyon and Delta are at genesis: the devnet's batcher writes span batches only, which a
    // verifier drops before Delta.
    let t0 = now() - 30;
    let forks = [
        "canyon=0",
        "delta=0",
        "ecotone=8",
        "fjord=10",
        "granite=12",
        "holocene=14",
        "isthmus=20",
        "jovian=46",
    ];
    let mut flags = vec!["--genesis-time".to_string(), t0.to_string()];
    for f in forks {
        flags.extend(["--fork".to_string(), f.to_string()]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = devnet_init("engine-peer-pair", &flags);
    let datadir = dir.join("engine-a");
    let datadir_flag = datadir.to_string_lossy().into_owned();
    let mut a = Peer::start(&exe, &dir, 0, &["--datadir", &datadir_flag]);
    let b = Peer::start(&exe, &dir, 0, &[]);
    let (devnet, seq_args, ver_args) = serve_devnet(&dir, &a, &b);
    let devnet = Killed(devnet);
    let seq = ServedNode::start(&seq_args, &["--log.level", "info"]);
    let ver = ServedNode::start(&ver_args, &["--log.level", "info"]);
    let (mut seq_log, mut ver_log) = (String::new(), String::new());

    // A test account of our own, funded by devnet user 2 (the devnet's own transfers use the
    // users' nonces too: ours pays more, so it replaces theirs at the same nonce).
    let mut me = Account::from_seed("op-lite engine peer test");
    let mut funder = op_lite::devnet::genesis::user(2);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bal = a.call("eth_getBalance", json!([me.address, "latest"])).unwrap();
        if bal.as_str().is_some_and(|s| s != "0x0") {
            break;
        }
        assert!(Instant::now() < deadline, "the test account was never funded");
        funder.nonce = q(&a.call("eth_getTransactionCount", json!([funder.address, "latest"])).unwrap());
        let tx = SignedTx {
            tx_type: EIP1559_TX_TYPE,
            gas_price: 5_000_000_000,
            max_priority_fee_per_gas: 2_000,
            gas_limit: 21_000,
            to: Some(me.address),
            value: U256::from_u128(1000 * 10u128.pow(18)),
            ..Default::default()
        };
        let raw = funder.sign(tx, CHAIN_ID);
        let _ = a.call(
            "eth_sendRawTransaction",
            json!([op_lite::protocol::primitives::to_hex_prefixed(raw.encoded())]),
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // Legacy (EIP-155), EIP-1559, a contract creation (its runtime code returns 42).
    let runtime = [0x60, 0x2a, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];
    let mut init_code = vec![0x69];
    init_code.extend_from_slice(&runtime);
    init_code.extend_from_slice(&[0x60, 0x00, 0x52, 0x60, 0x0a, 0x60, 0x16, 0xf3]);
    let fee = |tx_type, gas_limit, to, value: u64, input: Vec<u8>| SignedTx {
        tx_type,
        gas_price: 3_000_000_000,
        max_priority_fee_per_gas: 1_000,
        gas_limit,
        to,
        value: U256::from_u64(value),
        input: Bytes(input),
        ..Default::default()
    };
    let other = Address([0x55; 20]);
    let legacy = send(&a, &mut me, fee(LEGACY_TX_TYPE, 21_000, Some(other), 7, vec![]));
    let dynamic = send(&a, &mut me, fee(EIP1559_TX_TYPE, 21_000, Some(other), 8, vec![]));
    let create = send(&a, &mut me, fee(EIP1559_TX_TYPE, 200_000, None, 0, init_code));
    let mut sent = vec![legacy.clone(), dynamic.clone(), create.clone()];
    let created = receipt(&a, &create, 30);
    assert_eq!(created["status"], "0x1", "{created}");
    let contract = created["contractAddress"].as_str().unwrap().to_string();
    let code = a.call("eth_getCode", json!([contract, "latest"])).unwrap();
    assert_eq!(code.as_str().unwrap(), op_lite::protocol::primitives::to_hex_prefixed(&runtime));
    for h in [&legacy, &dynamic] {
        assert_eq!(receipt(&a, h, 30)["status"], "0x1");
    }

    // EIP-7702 once Isthmus (Prague) is active: a fresh account delegates to the contract.
    let isthmus = t0 + 20;
    while q(&a.block(json!("latest"), false)["timestamp"]) < isthmus {
        std::thread::sleep(Duration::from_millis(500));
    }
    let authority = Account::from_seed("op-lite engine peer delegate");
    let contract_addr = Address(crate::support::hex(&contract).try_into().unwrap());
    let mut tx = fee(EIP7702_TX_TYPE, 100_000, Some(other), 0, vec![]);
    tx.authorization_list = vec![authorize(&authority, contract_addr, 0)];
    let delegated = send(&a, &mut me, tx);
    sent.push(delegated.clone());
    assert_eq!(receipt(&a, &delegated, 30)["status"], "0x1");
    let code = a.call("eth_getCode", json!([authority.address, "latest"])).unwrap();
    assert_eq!(
        code.as_str().unwrap(),
        format!("0xef0100{}", &contract[2..]).to_lowercase(),
        "delegation designator"
    );

    // More transfers, one every two seconds, until block 50 and the safe head 50.
    let target = 50;
    let deadline = Instant::now() + Duration::from_secs(240);
    while head(&ver, "safe_l2") < target || head(&seq, "unsafe_l2") < target + 2 {
        if Instant::now() > deadline {
            drain_log(&ver, &mut ver_log);
            panic!("safe head {} after 240 s; verifier log:\n{ver_log}", head(&ver, "safe_l2"));
        }
        if head(&seq, "unsafe_l2") < target + 2 {
            sent.push(send(&a, &mut me, fee(EIP1559_TX_TYPE, 21_000, Some(other), 1, vec![])));
        }
        drain_log(&seq, &mut seq_log);
        drain_log(&ver, &mut ver_log);
        std::thread::sleep(Duration::from_secs(2));
    }

    // The chains: equal hash for hash on both engines up to the verifier's unsafe head.
    let upto = head(&ver, "unsafe_l2").min(head(&seq, "unsafe_l2"));
    let rollup: Value = crate::support::read_json(&dir.join("rollup.json"));
    assert_eq!(a.hash(0), rollup["genesis"]["l2"]["hash"].as_str().unwrap());
    let (mut with_user_txs, mut deposits_minting, mut extra_lens) = (0, 0, Vec::new());
    for n in 0..=upto {
        assert_eq!(a.hash(n), b.hash(n), "block {n}");
        let blk = a.block(json!(format!("0x{n:x}")), true);
        let txs = blk["transactions"].as_array().unwrap();
        if txs.iter().any(|t| t["type"] != "0x7e") {
            with_user_txs += 1;
        }
        // A user deposit (not the L1 attributes one, which mints nothing).
        deposits_minting += txs.iter().filter(|t| t["type"] == "0x7e" && q(&t["mint"]) > 0).count();
        extra_lens.push(crate::support::hex(blk["extraData"].as_str().unwrap()).len());
    }
    for h in &sent {
        assert_eq!(receipt(&a, h, 10)["status"], "0x1", "{h}");
    }
    assert!(with_user_txs >= 30, "{with_user_txs} of {upto} blocks carry user transactions");
    assert!(deposits_minting >= 1, "no L1 user deposit minted ETH in blocks 0..={upto}");
    // Before Holocene no EIP-1559 parameters in extraData, then Holocene's 9 bytes, then Jovian's 17.
    assert_eq!(extra_lens[1], 0, "{extra_lens:?}");
    assert!(extra_lens.contains(&9) && extra_lens.last() == Some(&17), "{extra_lens:?}");
    let first = a.block(json!("0x1"), false);
    assert!(first.get("parentBeaconBlockRoot").is_none(), "block 1 is before Ecotone: {first}");
    let last = a.block(json!(format!("0x{upto:x}")), false);
    assert!(last["requestsHash"].is_string() && last["withdrawalsRoot"].is_string(), "{last}");

    // The safe chain: the verifier derived it from L1 through the batcher; its outputs agree.
    let safe = head(&ver, "safe_l2");
    assert!(safe >= target);
    for n in (1..=safe).step_by(7).chain([safe]) {
        let on_seq = rpc(&seq, "optimism_outputAtBlock", json!([format!("0x{n:x}")]));
        let on_ver = rpc(&ver, "optimism_outputAtBlock", json!([format!("0x{n:x}")]));
        assert!(on_seq["outputRoot"].is_string(), "block {n}: {on_seq}");
        assert_eq!(on_seq["outputRoot"], on_ver["outputRoot"], "output at block {n}");
        assert_eq!(on_seq["blockRef"]["hash"].as_str().unwrap(), b.hash(n));
    }
    assert_eq!(sync_status(&seq)["safe_l2"]["hash"], sync_status(&ver)["safe_l2"]["hash"]);

    // Issue 14's race: derivation made blocks safe while the sequencer built; a forkchoice
    // whose head does not descend from safe never reached either engine, which refuses it.
    drain_log(&seq, &mut seq_log);
    drain_log(&ver, &mut ver_log);
    for (name, peer) in [("sequencer", &a), ("verifier", &b)] {
        let stats = peer.call("enginePeer_stats", json!([])).unwrap();
        assert_eq!(stats["refusedForkchoice"], 0, "{name} engine: {stats}");
        assert_eq!(stats["invalid"], 0, "{name} engine: {stats}");
    }
    for (name, log) in [("sequencer", &seq_log), ("verifier", &ver_log)] {
        assert!(!log.contains("-38002") && !log.contains("Invalid forkchoice"), "{name}:\n{log}");
    }

    // Issue 14's restart stall: engine A restarts without its last two blocks; the sequencer
    // reloads its heads at once and builds on.
    let before = head(&seq, "unsafe_l2");
    let port = a.port();
    drop(a);
    a = Peer::start(&exe, &dir, port, &["--datadir", &datadir_flag, "--forget-last", "2"]);
    let lost = q(&a.block(json!("latest"), false)["number"]);
    assert!(lost < before, "the engine came back at {lost}, the sequencer was at {before}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while head(&seq, "unsafe_l2") < before + 2 {
        drain_log(&seq, &mut seq_log);
        assert!(
            Instant::now() < deadline,
            "15 s after the restart the sequencer is at {}:\n{seq_log}",
            head(&seq, "unsafe_l2")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let n = head(&seq, "unsafe_l2");
    assert_eq!(sync_status(&seq)["unsafe_l2"]["hash"].as_str().unwrap(), a.hash(n));

    drop((devnet, seq, ver, a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
