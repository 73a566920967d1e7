//! Embeds the version metadata that `op-lite --version` prints, like op-node's `VersionWithMeta`,
//! packs the network-upgrade bytecode and the Karst bundle (as a compact table) into one brotli
//! stream for `protocol::upgrades`,
//! compiles `src/config/networks.txt` into the built-in network table `config::networks` includes,
//! and packs the KZG setup's Lagrange points (`src/protocol/kzg_setup.txt`) for `protocol::kzg`.

// A build script runs at build time, outside the node: it reads and writes files.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

fn main() {
    upgrade_code();
    network_table();
    kzg_setup();
    release_link_args();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=8", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=OP_LITE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=OP_LITE_GIT_DIRTY={}", if dirty { "-dirty" } else { "" });
    println!("cargo:rustc-env=OP_LITE_TARGET={target}");
    // Rebuild the metadata when the checked-out commit moves: HEAD, the branch ref it points
    // to, packed refs, and the index (for the dirty flag).
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{r}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The deployment bytecode files of `src/protocol/upgrades`, each packed under the constant named
/// after it (`ecotone-l1-block-deployment.bin` -> `ECOTONE_L1_BLOCK_DEPLOYMENT`).
const UPGRADE_CODE: [&str; 10] = [
    "ecotone-l1-block-deployment.bin",
    "ecotone-gas-price-oracle-deployment.bin",
    "ecotone-eip4788-deployment.bin",
    "fjord-gas-price-oracle-deployment.bin",
    "isthmus-l1-block-deployment.bin",
    "isthmus-gas-price-oracle-deployment.bin",
    "isthmus-operator-fee-deployment.bin",
    "isthmus-eip2935-deployment.bin",
    "jovian-l1-block-deployment.bin",
    "jovian-gas-price-oracle-deployment.bin",
];

/// Writes `$OUT_DIR/upgrade_code.br` and `$OUT_DIR/upgrade_code.rs`: the upgrade bytecode files
/// and the Karst table (`karst_table`), concatenated and brotli-compressed (quality 11, 256 KiB
/// window: 195 KB -> 42 KB; the node inflates it only to build an activation block's deposits),
/// and the constants locating each piece in the unpacked bytes (`Piece { start, len }`), the
/// unpacked length and the Karst transaction count and total gas.
fn upgrade_code() {
    const DIR: &str = "src/protocol/upgrades";
    let mut unpacked = Vec::new();
    let mut consts = String::new();
    let mut piece = |name: &str, bytes: &[u8], unpacked: &mut Vec<u8>| {
        consts.push_str(&format!(
            "const {name}: Piece = Piece {{ start: {}, len: {} }};\n",
            unpacked.len(),
            bytes.len()
        ));
        unpacked.extend_from_slice(bytes);
    };
    for file in UPGRADE_CODE {
        let path = format!("{DIR}/{file}");
        println!("cargo:rerun-if-changed={path}");
        let code = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let name = file.trim_end_matches(".bin").replace('-', "_").to_uppercase();
        piece(&name, &code, &mut unpacked);
    }
    let (table, count, gas) = karst_table();
    piece("KARST_TABLE", &table, &mut unpacked);
    consts.push_str(&format!("const UNPACKED_LEN: usize = {};\n", unpacked.len()));
    consts.push_str(&format!("const KARST_COUNT: u32 = {count};\nconst KARST_GAS: u64 = {gas};\n"));

    let mut packed = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 18, ..Default::default() };
    brotli::BrotliCompress(&mut unpacked.as_slice(), &mut packed, &params)
        .expect("compress the upgrade code");
    let dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    let dir = std::path::Path::new(&dir);
    std::fs::write(dir.join("upgrade_code.br"), packed).expect("write the packed upgrade code");
    std::fs::write(dir.join("upgrade_code.rs"), consts).expect("write the upgrade code layout");
}

/// The Karst table from op-node's Karst NUT bundle JSON, with its transaction count and total
/// gas: per transaction u16 intent length, intent, 20-byte from, u8 has-to (+ 20-byte to), u64
/// gas limit, u32 data length, data (all big-endian).
fn karst_table() -> (Vec<u8>, u32, u64) {
    const SRC: &str = "src/protocol/upgrades/karst_nut_bundle.json";
    println!("cargo:rerun-if-changed={SRC}");
    let text = std::fs::read_to_string(SRC).expect("read the Karst NUT bundle");
    let bundle: serde_json::Value = serde_json::from_str(&text).expect("parse the Karst NUT bundle");
    // op-node accepts only this bundle schema version.
    assert_eq!(bundle["metadata"]["version"], "1.0.0", "unsupported NUT bundle version");
    let txs = bundle["transactions"].as_array().expect("NUT bundle transactions");
    let mut body = Vec::new();
    let mut total_gas = 0u64;
    for (i, tx) in txs.iter().enumerate() {
        let intent = tx["intent"].as_str().unwrap_or_default();
        assert!(!intent.is_empty(), "NUT tx {i}: missing intent");
        body.extend_from_slice(&u16::try_from(intent.len()).expect("intent length").to_be_bytes());
        body.extend_from_slice(intent.as_bytes());
        body.extend_from_slice(&address(&tx["from"]));
        match &tx["to"] {
            serde_json::Value::Null => body.push(0),
            to => {
                body.push(1);
                body.extend_from_slice(&address(to));
            }
        }
        let gas = tx["gasLimit"].as_u64().expect("NUT tx gasLimit");
        total_gas = total_gas.checked_add(gas).expect("NUT gas overflow");
        body.extend_from_slice(&gas.to_be_bytes());
        let data = hex(tx["data"].as_str().expect("NUT tx data"));
        body.extend_from_slice(&u32::try_from(data.len()).expect("data length").to_be_bytes());
        body.extend_from_slice(&data);
    }
    (body, u32::try_from(txs.len()).expect("tx count"), total_gas)
}

fn address(v: &serde_json::Value) -> [u8; 20] {
    let bytes = hex(v.as_str().expect("address string"));
    bytes.try_into().expect("20-byte address")
}

fn hex(s: &str) -> Vec<u8> {
    unhex(s.strip_prefix("0x").expect("0x-prefixed hex")).expect("an even number of hex digits")
}

/// The bytes of hex digits (no prefix); `None` for an odd count or a non-hex character.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The fork keys of a `forks` line in networks.txt, in the order of `config::networks::FORKS`.
const NETWORK_FORKS: [&str; 11] = [
    "canyon",
    "delta",
    "ecotone",
    "fjord",
    "granite",
    "holocene",
    "pectra_blob_schedule",
    "isthmus",
    "jovian",
    "karst",
    "interop",
];

/// Writes `$OUT_DIR/networks_table.rs`: `static NETWORKS: [Row; N]` from `src/config/networks.txt`
/// (blocks of `key value...` lines, one per network, written by platform/networks.py). Any
/// malformed, missing, repeated or unknown line fails the build, naming the line.
fn network_table() {
    const SRC: &str = "src/config/networks.txt";
    println!("cargo:rerun-if-changed={SRC}");
    let text = std::fs::read_to_string(SRC).expect("read the network table");
    let mut rows = Vec::new();
    let mut block: Vec<(usize, &str, Vec<&str>)> = Vec::new();
    let mut lines = text.lines().enumerate();
    loop {
        let line = lines.next();
        let end = match line {
            None => true,
            Some((_, l)) => l.trim().is_empty(),
        };
        if end {
            if !block.is_empty() {
                rows.push(network_row(SRC, std::mem::take(&mut block)));
            }
            if line.is_none() {
                break;
            }
            continue;
        }
        let (n, l) = line.unwrap();
        if l.starts_with('#') {
            continue;
        }
        let mut words = l.split_whitespace();
        let key = words.next().unwrap();
        let rest: Vec<&str> =
            if key == "display" { vec![l["display".len()..].trim()] } else { words.collect() };
        block.push((n + 1, key, rest));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for (name, id, _) in &rows {
        assert!(names.insert(name.clone()), "{SRC}: network {name} appears twice");
        assert!(ids.insert(*id), "{SRC}: L2 chain id {id} appears twice");
    }
    let mut out = format!("static NETWORKS: [Row; {}] = [\n", rows.len());
    for (_, _, code) in &rows {
        out.push_str(code);
    }
    out.push_str("];\n");
    let dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(std::path::Path::new(&dir).join("networks_table.rs"), out)
        .expect("write the network table");
}

/// One network block -> (name, L2 chain id, the `Row { .. }` expression).
fn network_row(src: &str, block: Vec<(usize, &str, Vec<&str>)>) -> (String, u64, String) {
    let at = block[0].0;
    let mut fields = std::collections::BTreeMap::new();
    for (n, key, vals) in &block {
        assert!(fields.insert(*key, (*n, vals.clone())).is_none(), "{src}:{n}: {key} given twice");
    }
    let num = |(n, v): (usize, Vec<String>), i: usize| -> u64 {
        v[i].parse().unwrap_or_else(|_| panic!("{src}:{n}: {:?} is not a number", v[i]))
    };
    let bytes = |(n, v): (usize, Vec<String>), i: usize, len: usize| -> String {
        let b = v[i]
            .strip_prefix("0x")
            .and_then(unhex)
            .filter(|b| b.len() == len)
            .unwrap_or_else(|| panic!("{src}:{n}: {:?} is not {len} bytes of 0x-hex", v[i]));
        let hexes: Vec<String> = b.iter().map(|x| format!("{x:#04x}")).collect();
        format!("[{}]", hexes.join(","))
    };
    let fork_vals = take_forks(&mut fields, src, at);
    let keep = fields.remove("keep_karst_upgrade_gas").map(|(n, v)| {
        assert!(v.is_empty(), "{src}:{n}: keep_karst_upgrade_gas takes no value");
    });
    let alt_da = match fields.remove("alt_da") {
        None => "None".to_string(),
        Some((n, v)) => {
            assert!(v.len() == 4, "{src}:{n}: alt_da takes commitment type, challenge contract, windows");
            assert!(v[0].bytes().all(|c| c.is_ascii_alphanumeric()), "{src}:{n}: bad commitment type");
            let a = (n, v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            format!(
                "Some(&AltDaRow {{ commitment_type: {:?}, challenge_contract: {}, challenge_window: {}, resolve_window: {} }})",
                v[0],
                bytes(a.clone(), 1, 20),
                num(a.clone(), 2),
                num(a, 3)
            )
        }
    };
    let mut take = |key: &str, count: usize| -> (usize, Vec<String>) {
        let (n, vals) = fields.remove(key).unwrap_or_else(|| panic!("{src}:{at}: network without {key}"));
        assert!(vals.len() == count, "{src}:{n}: {key} takes {count} value(s)");
        (n, vals.into_iter().map(str::to_string).collect())
    };
    let name = take("network", 1).1.remove(0);
    assert!(
        !name.is_empty()
            && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'),
        "{src}:{at}: bad network name {name:?}"
    );
    // The registry's display name stays in the file for its readers; the binary does not need it.
    let _display = take("display", 1);
    let l2_chain_id = num(take("l2_chain_id", 1), 0);
    let g1 = take("genesis_l1", 2);
    let g2 = take("genesis_l2", 2);
    let eip = take("eip1559", 3);
    let code = format!(
        "    Row {{ name: {name:?}, l1_chain_id: {}, l2_chain_id: {l2_chain_id}, \
         block_time: {}, seq_window_size: {}, max_sequencer_drift: {}, \
         genesis_l1: ({}, {}), genesis_l2: ({}, {}), genesis_l2_time: {}, \
         batcher: {}, overhead: {}, scalar: {}, gas_limit: {}, batch_inbox: {}, deposit_contract: {}, \
         system_config: {}, unsafe_block_signer: {}, eip1559: [{}, {}, {}], forks: [{}], \
         keep_karst_upgrade_gas: {}, alt_da: {alt_da} }},\n",
        num(take("l1_chain_id", 1), 0),
        num(take("block_time", 1), 0),
        num(take("seq_window_size", 1), 0),
        num(take("max_sequencer_drift", 1), 0),
        num(g1.clone(), 0),
        bytes(g1, 1, 32),
        num(g2.clone(), 0),
        bytes(g2, 1, 32),
        num(take("genesis_l2_time", 1), 0),
        bytes(take("batcher", 1), 0, 20),
        bytes(take("overhead", 1), 0, 32),
        bytes(take("scalar", 1), 0, 32),
        num(take("gas_limit", 1), 0),
        bytes(take("batch_inbox", 1), 0, 20),
        bytes(take("deposit_contract", 1), 0, 20),
        bytes(take("system_config", 1), 0, 20),
        bytes(take("unsafe_block_signer", 1), 0, 20),
        num(eip.clone(), 0),
        num(eip.clone(), 1),
        num(eip, 2),
        fork_vals
            .iter()
            .map(|t| t.map_or("NO_FORK".to_string(), |t| t.to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        keep.is_some(),
    );
    if let Some((key, (n, _))) = fields.into_iter().next() {
        panic!("{src}:{n}: unknown key {key:?}");
    }
    (name, l2_chain_id, code)
}

/// The `forks` line: `name=time` pairs, each a key of NETWORK_FORKS at most once.
fn take_forks(
    fields: &mut std::collections::BTreeMap<&str, (usize, Vec<&str>)>,
    src: &str,
    at: usize,
) -> [Option<u64>; 11] {
    let (n, vals) = fields.remove("forks").unwrap_or_else(|| panic!("{src}:{at}: network without forks"));
    let mut times = [None; 11];
    for v in vals {
        let (k, t) = v.split_once('=').unwrap_or_else(|| panic!("{src}:{n}: {v:?} is not fork=time"));
        let i = NETWORK_FORKS
            .iter()
            .position(|f| *f == k)
            .unwrap_or_else(|| panic!("{src}:{n}: unknown fork {k:?}"));
        assert!(times[i].is_none(), "{src}:{n}: fork {k} given twice");
        let t: u64 = t.parse().unwrap_or_else(|_| panic!("{src}:{n}: {t:?} is not a time"));
        assert!(t < u64::from(u32::MAX), "{src}:{n}: fork time out of range");
        times[i] = Some(t);
    }
    times
}

/// Writes `$OUT_DIR/kzg_g1_lagrange.bin`: the 4,096 compressed G1 points of
/// `src/protocol/kzg_setup.txt` (hex lines after the `#` header), 48 bytes each, in file order.
fn kzg_setup() {
    const SRC: &str = "src/protocol/kzg_setup.txt";
    println!("cargo:rerun-if-changed={SRC}");
    let text = std::fs::read_to_string(SRC).expect("read the KZG setup");
    let mut out = Vec::with_capacity(4096 * 48);
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.starts_with('#')) {
        let point = unhex(line).filter(|p| p.len() == 48);
        out.extend(point.unwrap_or_else(|| panic!("{SRC}:{}: not 48 bytes of hex", n + 1)));
    }
    assert_eq!(out.len(), 4096 * 48, "{SRC}: want 4096 points");
    let dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(std::path::Path::new(&dir).join("kzg_g1_lagrange.bin"), out).expect("write the KZG setup");
}

/// Link arguments of the release `op-lite` binary on Linux (release builds only: tests and debug
/// builds keep the defaults).
///
/// No unwind tables. With `panic = "abort"` (the release profile) no frame is ever unwound: a
/// panic prints its message and aborts. The tables (.eh_frame and its index .eh_frame_hdr, about
/// 450 KB on aarch64, 11% of the binary) serve only debuggers and profilers walking the stack and
/// `RUST_BACKTRACE` output, which is empty without them. The linker drops them (a linker script
/// with `INSERT` and `/DISCARD/`). `OP_LITE_KEEP_UNWIND_TABLES=1` keeps them.
///
/// LLD, the linker the Rust toolchain ships (`rust-lld` behind its `gcc-ld/ld.lld`), instead of
/// the C compiler's GNU ld: GNU ld pads the file so that the relocation-read-only segment ends on
/// a 64 KiB boundary (aarch64's largest page size), LLD pads it in memory only; and LLD folds
/// functions whose machine code is identical (`--icf=all`: Rust marks every function
/// `unnamed_addr`, its address is not its identity). Together -54 KB on aarch64. Where the
/// toolchain has no `rust-lld` (a distribution's rustc), or with `OP_LITE_SYSTEM_LINKER=1`, the C
/// compiler's linker stays.
fn release_link_args() {
    println!("cargo:rerun-if-env-changed=OP_LITE_KEEP_UNWIND_TABLES");
    println!("cargo:rerun-if-env-changed=OP_LITE_SYSTEM_LINKER");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if !(release && linux) {
        return;
    }
    if std::env::var_os("OP_LITE_KEEP_UNWIND_TABLES").is_none() {
        let dir = std::env::var("OUT_DIR").expect("OUT_DIR");
        let script = std::path::Path::new(&dir).join("no-unwind-tables.ld");
        std::fs::write(
            &script,
            "SECTIONS\n{\n  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) }\n}\nINSERT AFTER .text;\n",
        )
        .expect("write the linker script");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
    if std::env::var_os("OP_LITE_SYSTEM_LINKER").is_none() {
        if let Some(gcc_ld) = toolchain_lld_dir() {
            println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
            println!("cargo:rustc-link-arg-bins=-B{}", gcc_ld.display());
            println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
        }
    }
}

/// The toolchain's `lib/rustlib/HOST/bin/gcc-ld` (an `ld.lld` that runs its `rust-lld`), if it has one.
fn toolchain_lld_dir() -> Option<std::path::PathBuf> {
    let rustc = std::env::var_os("RUSTC")?;
    let host = std::env::var("HOST").ok()?;
    let out =
        Command::new(rustc).args(["--print", "sysroot"]).output().ok().filter(|o| o.status.success())?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = std::path::Path::new(sysroot.trim()).join("lib/rustlib").join(host).join("bin/gcc-ld");
    dir.join("ld.lld").is_file().then_some(dir)
}
