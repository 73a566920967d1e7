//! What the benches share: the fixture lookup, a counting allocator for heap figures, and a
//! gossipsub router set up as a node's mesh. Each bench includes it with `mod common;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use op_lite::p2p::blocks::block_topics;
use op_lite::p2p::gossipsub::{Config, Protocol, Router};
use op_lite::protocol::rollup::RollupConfig;
use op_lite::protocol::varint;

/// The shared fixtures: `$OP_LITE_FIXTURES`, else `../shared/fixtures`. `None` when absent,
/// except under `CI=true`, where absence is a failure.
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("OP_LITE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if dir.join("INDEX.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("fixtures not found at {} (required under CI=true)", dir.display());
    }
    None
}

/// An allocator that counts the bytes live and their peak; a bench that reports heap installs
/// it with `#[global_allocator] static ALLOC: common::Counting = common::Counting;`.
pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

/// Heap bytes live now (with `Counting` installed).
pub fn heap_now() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// Runs `f`, returning its result, the time it took and the heap it peaked at above the start
/// (with `Counting` installed).
pub fn phase<T>(f: impl FnOnce() -> T) -> (T, Duration, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let out = f();
    (out, start.elapsed(), PEAK.load(Ordering::Relaxed) - base)
}

/// Megabytes, for printing.
pub fn mb(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / 1_048_576.0)
}

/// A router subscribed to the chain's block topics with `peers` mesh peers (ids `0..peers`,
/// all subscribed); its opening messages are already drained.
pub fn mesh(cfg: &RollupConfig, peers: u32, t0: Instant) -> Router<u32> {
    let topics = block_topics(cfg.l2_chain_id);
    let mut r = Router::new(Config::op_node(topics.clone(), cfg.block_time), 1, t0).unwrap();
    let mut subs = Vec::new();
    for t in &topics {
        let mut opts = vec![0x08, 0x01, 0x12];
        length_prefixed(&mut opts, t.as_bytes());
        subs.push(0x0a);
        length_prefixed(&mut subs, &opts);
    }
    let mut hello = Vec::new();
    length_prefixed(&mut hello, &subs);
    for p in 0..peers {
        r.add_peer(p, true, IpAddr::V4(Ipv4Addr::new(10, 0, 0, p as u8)), Protocol::V11, t0).unwrap();
        r.handle_input(&p, &hello, t0).unwrap();
    }
    for t in &topics {
        r.subscribe(t, t0).unwrap();
    }
    while r.poll_outbound().is_some() {}
    r
}

/// Appends `data` with its varint length (protobuf's length-delimited field body).
pub fn length_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    varint::put(out, data.len() as u64);
    out.extend_from_slice(data);
}
