//! op-lite against kona (crates.io `kona-protocol`) on the same real batcher data, in one run:
//! - frame parse: the calldata of OP Mainnet batcher tx e69d9433 into frames (kona's
//!   `Frame::parse_frames`, which copies each frame's data; op-lite's derivation path,
//!   `Frame::parse_shared`, where a frame that is all of its transaction's data shares it);
//! - span batch decode + derive: the decompressed e69d9433 span batch into its 27 blocks
//!   (kona's `Batch::decode`; op-lite's `BatchData::decode` and `derive`);
//! - channel to batches: zlib decompression, batch decoding and derivation of the same batch
//!   in a complete zlib stream (kona's `BatchReader::next_batch`; op-lite's `decompress`,
//!   `read_batches` and `derive`). The fixture's own channel lacks its zlib trailer, which
//!   op-node and op-lite accept and kona's reader refuses.
//!
//! - derivation pipeline: op-lite's (`op-lite replay`'s recording) against kona-derive's (its
//!   in-memory test providers, Ethereum data source and stateful attributes builder) on the
//!   shared real OP Mainnet range, all 32 payloads; both must derive the same ones first
//!   (src/pipeline.rs).
//!
//! For each side it prints iterations per second and the peak heap during one iteration (a
//! counting global allocator), and the ratios op-lite / kona. Fixtures: `$OP_LITE_FIXTURES`,
//! else `../shared/fixtures` from the op-lite root.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod pipeline;

use op_lite::protocol::batch::BatchData;
use op_lite::protocol::channel::{decompress, read_batches};
use op_lite::protocol::frame::Frame;
use op_lite::protocol::rlp::Rlp;
use op_lite::protocol::tx::Transaction;

struct Counting;

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

#[global_allocator]
static ALLOC: Counting = Counting;

const GENESIS_TIME: u64 = 1_686_068_903;
const MAX_RLP: usize = 100_000_000;

/// Iterations per second over about a second, and the peak heap above the baseline of one run.
fn measure(mut f: impl FnMut()) -> (f64, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        f();
        n += 1;
    }
    (n as f64 / start.elapsed().as_secs_f64(), peak)
}

fn main() {
    let root = std::env::var_os("OP_LITE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"));
    let path = root.join("batch-channel-frame/kona/op-mainnet-batcher-tx-e69d9433.rlp.bin");
    let Ok(tx) = std::fs::read(&path) else {
        println!("skipped: fixtures not found ({})", path.display());
        return;
    };
    let calldata = Transaction::decode(&tx).expect("the fixture tx decodes").input().to_vec();
    let frames = Frame::parse_all(&calldata).expect("frames");
    let channel = frames[0].data.to_vec();
    // The retrieved data as derivation holds it (FrameQueue): in a shared buffer.
    let shared = std::sync::Arc::new(calldata.clone());

    let kona_cfg = |chain_id: u64, genesis: u64| {
        let mut c = kona_genesis::RollupConfig::default();
        c.block_time = 2;
        c.genesis.l2_time = genesis;
        c.l2_chain_id = chain_id.into();
        c.hardforks.delta_time = Some(0);
        c
    };
    let mainnet = kona_cfg(10, GENESIS_TIME);

    // The e69d9433 frame carries a channel whose zlib stream ends without its trailer (op-node
    // and op-lite read the batches it holds; kona's `BatchReader` refuses it), so the channel
    // case re-compresses the same batch data into a complete zlib stream for both readers.
    let decompressed = decompress(&channel, MAX_RLP, true).unwrap().data;
    let typed = Rlp::new(&decompressed).next_bytes().unwrap().to_vec();
    let complete = op_lite::protocol::channel_out::Compressor::Zlib { level: 9 }.compress(&decompressed);

    // Both sides agree on the work before it is timed.
    let lite_blocks = |channel: &[u8], genesis, chain_id| {
        let d = decompress(channel, MAX_RLP, true).unwrap();
        let mut n = 0;
        for b in read_batches(&d.data) {
            if let BatchData::Span(raw) = b.unwrap() {
                n += raw.derive(2, genesis, chain_id).unwrap().blocks.len();
            }
        }
        n
    };
    let kona_blocks = |batch: Option<kona_protocol::Batch>| match batch {
        Some(kona_protocol::Batch::Span(s)) => s.batches.len(),
        other => panic!("kona read no span batch: {other:?}"),
    };
    assert_eq!(lite_blocks(&channel, GENESIS_TIME, 10), 27);
    assert_eq!(kona_blocks(kona_protocol::Batch::decode(&mut &typed[..], &mainnet).ok()), 27);
    assert_eq!(lite_blocks(&complete, GENESIS_TIME, 10), 27);
    assert_eq!(
        kona_blocks(kona_protocol::BatchReader::new(complete.clone(), MAX_RLP).next_batch(&mainnet)),
        27
    );

    let cases: [(&str, (f64, usize), (f64, usize)); 4] = [
        (
            "frame parse, e69d9433 calldata",
            measure(|| {
                black_box(Frame::parse_shared(black_box(&shared)).unwrap());
            }),
            measure(|| {
                black_box(kona_protocol::Frame::parse_frames(black_box(&calldata)).unwrap());
            }),
        ),
        (
            "(the same, op-lite copying as kona: parse_all)",
            measure(|| {
                black_box(Frame::parse_all(black_box(&calldata)).unwrap());
            }),
            measure(|| {
                black_box(kona_protocol::Frame::parse_frames(black_box(&calldata)).unwrap());
            }),
        ),
        (
            "span batch decode + derive, e69d9433 (27 blocks)",
            measure(|| {
                if let BatchData::Span(raw) = BatchData::decode(black_box(&typed)).unwrap() {
                    black_box(raw.derive(2, GENESIS_TIME, 10).unwrap());
                }
            }),
            measure(|| {
                black_box(kona_protocol::Batch::decode(&mut black_box(&typed[..]), &mainnet).unwrap());
            }),
        ),
        (
            "zlib channel -> derived span batch, e69d9433",
            measure(|| {
                let d = decompress(black_box(&complete), MAX_RLP, true).unwrap();
                for b in read_batches(&d.data) {
                    if let BatchData::Span(raw) = b.unwrap() {
                        black_box(raw.derive(2, GENESIS_TIME, 10).unwrap());
                    }
                }
            }),
            measure(|| {
                let mut r = kona_protocol::BatchReader::new(black_box(complete.clone()), MAX_RLP);
                while let Some(b) = r.next_batch(&mainnet) {
                    black_box(b);
                }
            }),
        ),
    ];
    println!(
        "{:<50} {:>12} {:>12} {:>7}   {:>10} {:>10} {:>7}",
        "case", "op-lite/s", "kona/s", "ratio", "op-lite heap", "kona heap", "ratio"
    );
    for (name, (lite_rate, lite_heap), (kona_rate, kona_heap)) in cases {
        println!(
            "{name:<50} {lite_rate:>12.0} {kona_rate:>12.0} {:>7.2}   {:>10} {:>10} {:>7.2}",
            lite_rate / kona_rate,
            format!("{} KB", lite_heap / 1024),
            format!("{} KB", kona_heap / 1024),
            lite_heap as f64 / kona_heap.max(1) as f64
        );
    }
    println!("(throughput ratio > 1: op-lite faster; heap ratio < 1: op-lite smaller)");

    // The pipelines, end to end on the real range.
    let fx = root.join("derivation-e2e/op-mainnet-bedrock-l1-18090205-18090218/fixture.json");
    let Ok(text) = std::fs::read_to_string(&fx) else {
        println!("derivation pipeline: skipped, fixture not found ({})", fx.display());
        return;
    };
    let lite_rec = pipeline::op_lite_read(&text);
    let kona_rec = pipeline::kona_read(&text, pipeline::claimed_parents(&text));
    let lite = pipeline::op_lite(&lite_rec);
    let kona = pipeline::kona(&kona_rec);
    assert_eq!(lite.len(), 32, "op-lite payloads");
    assert_eq!(lite, kona, "both pipelines derive the same payloads (timestamp, tx count)");
    let n = lite.len() as f64;
    let (lite_rate, lite_heap) = measure(|| {
        black_box(pipeline::op_lite(black_box(&lite_rec)));
    });
    let (kona_rate, kona_heap) = measure(|| {
        black_box(pipeline::kona(black_box(&kona_rec)));
    });
    println!(
        "{:<50} {:>12.0} {:>12.0} {:>7.2}   {:>10} {:>10} {:>7.2}",
        "derivation pipeline, real range (payloads/s)",
        lite_rate * n,
        kona_rate * n,
        lite_rate / kona_rate,
        format!("{} KB", lite_heap / 1024),
        format!("{} KB", kona_heap / 1024),
        lite_heap as f64 / kona_heap.max(1) as f64
    );
    println!(
        "(pipeline row: all 32 payloads from the recorded chain already in memory: op-lite's recording, \
         kona's test providers; heap: the run's peak above the recording)"
    );
}
