//! The safe-head store behind `optimism_safeHeadAtL1Block` (op-node `node/safedb`), sans-IO:
//! for each L1 block that made L2 blocks safe, the safe head it produced. `SafeHeads` keeps the
//! entries (bounded, oldest dropped first) and encodes every change as records for an
//! append-only file; `SafeDbDeriver` feeds it from events (`SafeDerived`, engine resets, the
//! start of EL sync) and hands the node writes through `poll_write`, one in flight at a time
//! (`SafeDbWritten` ends it), later changes coalesced. `io::safedb_file` owns the file.
//!
//! File format (integers big-endian, each checksum a CRC-32 (IEEE) over the bytes before it in
//! its record):
//!
//! ```text
//! header   "opl-safe" | version u8 = 1 | L2 genesis hash (32) | crc32        45 bytes
//! set      0x01 | l1 number u64 | l1 hash | l2 hash | l2 number u64 | crc32 85 bytes
//! truncate 0x02 | l1 number u64 (drop entries at or above it) | crc32      13 bytes
//! ```
//!
//! Loading replays the records. A record that fails its checksum in the middle of the file (a
//! flipped byte) is skipped: loading finds the next valid record and goes on, and the caller
//! rewrites the file from the entries, so valid records are never destroyed. Only a tail with
//! no valid record in it (a write torn by a crash) is cut off. The file is rewritten from the
//! entries (compaction) once it holds more than twice what they need.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::derive::data::{Arrival, SharedData};
use crate::event::{Deriver, Emitter, Event};
use crate::protocol::block_ref::{BlockId, L2BlockRef};
use crate::protocol::primitives::B256;
use crate::time::Now;

/// The name the deriver is registered under.
pub const SAFE_DB: &str = "safe-db";

/// Entries kept by default: 4.5 days of 12 s L1 blocks, more than a dispute game's clock;
/// 2.6 MB of memory at most.
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 15;

/// Records kept while a write is in flight before a rewrite replaces them.
const MAX_PENDING_BYTES: usize = 64 * 1024;

/// After a failed write (a full disk), the next attempt waits this long: it rewrites the whole
/// file, so attempts are not made at the pace of new safe heads.
pub const RETRY_DELAY: Duration = Duration::from_secs(10);

/// Failed writes are logged as errors at most once per this interval (the rest at debug).
pub const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

const MAGIC: &[u8; 8] = b"opl-safe";
const VERSION: u8 = 1;
/// Length of the file header.
pub const HEADER_LEN: usize = 8 + 1 + 32 + 4;
const TAG_SET: u8 = 1;
/// Length of a set record.
pub const SET_LEN: usize = 1 + 8 + 32 + 32 + 8 + 4;
const TAG_TRUNCATE: u8 = 2;
const TRUNCATE_LEN: usize = 1 + 8 + 4;

/// Why a store file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafeDbError {
    /// The file does not start with the store's magic bytes.
    NotASafeDb,
    UnsupportedVersion(u8),
    /// The header fails its checksum.
    CorruptHeader,
    /// The file records another chain.
    OtherChain {
        file: B256,
        ours: B256,
    },
}

impl fmt::Display for SafeDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SafeDbError::NotASafeDb => write!(f, "not an op-lite safe head database"),
            SafeDbError::UnsupportedVersion(v) => write!(f, "unsupported safe head database version {v}"),
            SafeDbError::CorruptHeader => write!(f, "corrupt safe head database header"),
            SafeDbError::OtherChain { file, ours } => {
                write!(f, "safe head database belongs to the chain with L2 genesis {file}, not {ours}")
            }
        }
    }
}

impl std::error::Error for SafeDbError {}

/// The L1 block and the safe head derived up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub l1: BlockId,
    pub safe: BlockId,
}

/// What `SafeHeads::load` found in a file.
#[derive(Debug)]
pub struct Loaded {
    pub store: SafeHeads,
    /// Bytes of the file up to the end of its last valid record; the rest is a torn tail to
    /// cut off.
    pub valid_len: usize,
    /// Bytes of corrupt records skipped before `valid_len`: the file is to be rewritten from
    /// `store.snapshot()`.
    pub skipped: usize,
    /// The file was empty (or a torn header of a new file): write `store.snapshot()`.
    pub fresh: bool,
}

/// The entries, ordered by L1 block number, one per L1 block.
#[derive(Debug, Clone)]
pub struct SafeHeads {
    genesis: B256,
    max_entries: usize,
    entries: VecDeque<Entry>,
    /// Length the file has once every record handed out so far is written.
    file_len: usize,
}

impl SafeHeads {
    /// Creates an empty store for the chain whose L2 genesis block hash is `genesis`.
    pub fn new(genesis: B256, max_entries: usize) -> Self {
        SafeHeads { genesis, max_entries: max_entries.max(1), entries: VecDeque::new(), file_len: HEADER_LEN }
    }

    /// Replays a file's records.
    pub fn load(bytes: &[u8], genesis: B256, max_entries: usize) -> Result<Loaded, SafeDbError> {
        let mut store = SafeHeads::new(genesis, max_entries);
        if bytes.len() < HEADER_LEN && MAGIC.starts_with(bytes.get(..bytes.len().min(8)).unwrap_or_default())
        {
            return Ok(Loaded { store, valid_len: 0, skipped: 0, fresh: true });
        }
        let header = bytes.get(..HEADER_LEN).ok_or(SafeDbError::NotASafeDb)?;
        if header.get(..8) != Some(&MAGIC[..]) {
            return Err(SafeDbError::NotASafeDb);
        }
        if !checksum_ok(header) {
            return Err(SafeDbError::CorruptHeader);
        }
        if header[8] != VERSION {
            return Err(SafeDbError::UnsupportedVersion(header[8]));
        }
        let file = B256::from_slice(&header[9..41]).unwrap_or_default();
        if file != genesis {
            return Err(SafeDbError::OtherChain { file, ours: genesis });
        }
        let (mut at, mut skipped) = (HEADER_LEN, 0);
        while at < bytes.len() {
            let rec = match record_at(bytes, at) {
                Some(rec) => rec,
                // A bad record: resume at the next valid one; none left means a torn tail.
                None => match (at + 1..bytes.len()).find(|&i| record_at(bytes, i).is_some()) {
                    Some(next) => {
                        skipped += next - at;
                        at = next;
                        continue;
                    }
                    None => break,
                },
            };
            let (tag, len) = (rec[0], rec.len());
            let num = |i: usize| u64::from_be_bytes(rec[i..i + 8].try_into().unwrap_or_default());
            let hash = |i: usize| B256::from_slice(&rec[i..i + 32]).unwrap_or_default();
            if tag == TAG_SET {
                let l1 = BlockId { number: num(1), hash: hash(9) };
                let safe = BlockId { hash: hash(41), number: num(73) };
                store.set(Entry { l1, safe });
            } else {
                store.truncate(num(1));
            }
            at += len;
        }
        store.file_len = at;
        Ok(Loaded { store, valid_len: at, skipped, fresh: false })
    }

    /// op-node `SafeHeadAtL1`: the entry of the last L1 block at or before `l1_number`.
    pub fn at(&self, l1_number: u64) -> Option<Entry> {
        let i = self.entries.partition_point(|e| e.l1.number <= l1_number);
        i.checked_sub(1).and_then(|i| self.entries.get(i)).copied()
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Tells whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the length the file has once every record handed out is written.
    pub fn file_len(&self) -> usize {
        self.file_len
    }

    /// Tells whether the file holds more than twice what the entries need.
    pub fn wants_compaction(&self) -> bool {
        self.file_len > 2 * (HEADER_LEN + self.max_entries * SET_LEN)
    }

    /// op-node `SafeHeadUpdated`: `safe` became safe from L1 block `l1`; returns the record.
    pub fn update(&mut self, safe: BlockId, l1: BlockId) -> Vec<u8> {
        let e = Entry { l1, safe };
        self.set(e);
        self.record_set(&e)
    }

    /// op-node `SafeHeadReset`: derivation restarts from `safe`, so entries from the first one
    /// whose safe head is at or past it are dropped; that entry's L1 block keeps `safe` unless
    /// it was the first entry (whether `safe` became safe there is then unknown). Returns the
    /// records.
    pub fn reset(&mut self, safe: &L2BlockRef) -> Vec<u8> {
        let from = self.entries.partition_point(|e| e.l1.number < safe.l1origin.number);
        let Some(i) = (from..self.entries.len()).find(|&i| self.entries[i].safe.number >= safe.number) else {
            return Vec::new();
        };
        let l1 = self.entries[i].l1;
        self.truncate(l1.number);
        let mut out = self.record_truncate(l1.number);
        if i > 0 {
            out.extend(self.update(safe.id(), l1));
        }
        out
    }

    /// The whole store as a file: header and one set record per entry.
    pub fn snapshot(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.entries.len() * SET_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.genesis.0);
        seal(&mut out, 0);
        for e in &self.entries {
            put_set(&mut out, e);
        }
        self.file_len = out.len();
        out
    }

    fn set(&mut self, e: Entry) {
        match self.entries.binary_search_by_key(&e.l1.number, |x| x.l1.number) {
            Ok(i) => self.entries[i] = e,
            Err(i) => self.entries.insert(i, e),
        }
        while self.entries.len() > self.max_entries {
            self.entries.pop_front();
        }
    }

    fn truncate(&mut self, l1_number: u64) {
        let keep = self.entries.partition_point(|e| e.l1.number < l1_number);
        self.entries.truncate(keep);
    }

    fn record_set(&mut self, e: &Entry) -> Vec<u8> {
        let mut out = Vec::with_capacity(SET_LEN);
        put_set(&mut out, e);
        self.file_len += out.len();
        out
    }

    fn record_truncate(&mut self, l1_number: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(TRUNCATE_LEN);
        out.push(TAG_TRUNCATE);
        out.extend_from_slice(&l1_number.to_be_bytes());
        seal(&mut out, 0);
        self.file_len += out.len();
        out
    }
}

fn put_set(out: &mut Vec<u8>, e: &Entry) {
    let start = out.len();
    out.push(TAG_SET);
    out.extend_from_slice(&e.l1.number.to_be_bytes());
    out.extend_from_slice(&e.l1.hash.0);
    out.extend_from_slice(&e.safe.hash.0);
    out.extend_from_slice(&e.safe.number.to_be_bytes());
    seal(out, start);
}

/// Appends the CRC-32 of `out[start..]`.
fn seal(out: &mut Vec<u8>, start: usize) {
    let c = crc32(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&c.to_be_bytes());
}

/// The valid record starting at `at`: a known tag, whole, with a good checksum.
fn record_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let len = match *bytes.get(at)? {
        TAG_SET => SET_LEN,
        TAG_TRUNCATE => TRUNCATE_LEN,
        _ => return None,
    };
    bytes.get(at..at.checked_add(len)?).filter(|rec| checksum_ok(rec))
}

/// Checks a record whose last four bytes are the CRC-32 of the rest.
fn checksum_ok(rec: &[u8]) -> bool {
    match rec.len().checked_sub(4) {
        Some(n) => rec.get(n..).map(|c| c == crc32(&rec[..n]).to_be_bytes()).unwrap_or(false),
        None => false,
    }
}

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE 802.3, as zlib and PNG use).
pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, b| CRC_TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8))
}

/// A write for the I/O layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafeDbWrite {
    /// Append these records.
    Append(Vec<u8>),
    /// Replace the file with this one (compaction, or recovery after a failed write).
    Rewrite(Vec<u8>),
}

/// Keeps the store current from events and its file in step (op-node records these in its
/// sync deriver).
pub struct SafeDbDeriver {
    pub store: SafeHeads,
    genesis_l2: BlockId,
    data: SharedData,
    /// Records not yet handed out.
    appends: Vec<u8>,
    /// The next write replaces the file.
    rewrite: bool,
    in_flight: bool,
    /// The last write failed: the next waits until this time, so a failing disk is not
    /// retried in a loop.
    retry_at: Option<Instant>,
    /// When a failed write was last logged as an error.
    error_logged_at: Option<Instant>,
    /// Genesis is safe from L1 block 0, whose hash is being fetched.
    genesis_pending: bool,
    el_syncing: bool,
    /// Writes that failed.
    pub write_errors: u64,
    /// Writes that failed since the last one that worked.
    failing: u64,
}

impl SafeDbDeriver {
    /// Runs `store` for the chain starting at `genesis_l2`; `data` supplies L1 block 0.
    pub fn new(store: SafeHeads, genesis_l2: BlockId, data: SharedData) -> Self {
        SafeDbDeriver {
            store,
            genesis_l2,
            data,
            appends: Vec::new(),
            rewrite: false,
            in_flight: false,
            retry_at: None,
            error_logged_at: None,
            genesis_pending: false,
            el_syncing: false,
            write_errors: 0,
            failing: 0,
        }
    }

    fn record_genesis(&mut self, l1_genesis: BlockId) {
        self.genesis_pending = false;
        let r = self.store.update(self.genesis_l2, l1_genesis);
        self.changed(r);
    }

    fn changed(&mut self, records: Vec<u8>) {
        if self.rewrite {
            return;
        }
        self.appends.extend(records);
        // While the disk is slow, pending records are bounded: past this, rewrite the file from
        // the entries instead.
        if self.appends.len() > MAX_PENDING_BYTES {
            self.appends = Vec::new();
            self.rewrite = true;
        }
    }

    /// Returns the next write for the file, unless one is still in flight.
    pub fn poll_write(&mut self) -> Option<SafeDbWrite> {
        if self.in_flight || self.retry_at.is_some() {
            return None;
        }
        if self.store.wants_compaction() {
            self.rewrite = true;
        }
        let write = if self.rewrite {
            self.appends.clear();
            SafeDbWrite::Rewrite(self.store.snapshot())
        } else if !self.appends.is_empty() {
            SafeDbWrite::Append(std::mem::take(&mut self.appends))
        } else {
            return None;
        };
        self.rewrite = false;
        self.in_flight = true;
        Some(write)
    }
}

impl Deriver for SafeDbDeriver {
    fn on_event(&mut self, ev: &Event, now: Now, _out: &mut Emitter) -> bool {
        match ev {
            Event::SafeDerived { safe, source } => {
                log::debug!("record safe head l2={} l1={}", safe.id(), source.id());
                let r = self.store.update(safe.id(), source.id());
                self.changed(r);
            }
            Event::EngineResetConfirmed(h) => {
                log::info!("resetting safe head db l2={}", h.safe.id());
                let r = self.store.reset(&h.safe);
                self.changed(r);
                // Genesis is safe by definition: once derivation restarts there, every later
                // safe head will be recorded, so genesis is safe from L1 block 0 on.
                if h.local_safe.id() == self.genesis_l2 {
                    let genesis = self.data.borrow_mut().header_by_number(0).map(|i| i.block_ref().id());
                    match genesis {
                        Ok(id) => self.record_genesis(id),
                        Err(_) => self.genesis_pending = true,
                    }
                }
            }
            Event::ChainDataArrived(a) => match &**a {
                Arrival::L1Header(info) if info.number() == 0 && self.genesis_pending => {
                    self.record_genesis(info.block_ref().id())
                }
                _ => return false,
            },
            Event::EngineSyncStatus { syncing } => {
                let started = *syncing && !self.el_syncing;
                self.el_syncing = *syncing;
                if !started {
                    return false;
                }
                // EL sync moves the safe head without deriving it: the entries would be wrong.
                log::warn!("clearing safe head db because EL sync started");
                let r = self.store.reset(&L2BlockRef::default());
                self.changed(r);
            }
            Event::SafeDbWritten { result } => {
                self.in_flight = false;
                match result {
                    Ok(()) if self.failing > 0 => {
                        log::info!("safe head db writes resumed after {} failed", self.failing);
                        self.failing = 0;
                    }
                    Ok(()) => {}
                    Err(e) => {
                        self.write_errors += 1;
                        self.failing += 1;
                        let quiet = self.error_logged_at.is_some_and(|t| now.mono < t + ERROR_LOG_INTERVAL);
                        if quiet {
                            log::debug!("failed to persist the safe head db: {e}");
                        } else {
                            self.error_logged_at = Some(now.mono);
                            log::error!(
                                "failed to persist the safe head db ({} failed in a row, retrying every {}s): {e}",
                                self.failing,
                                RETRY_DELAY.as_secs()
                            );
                        }
                        // The file may now end in a partial record: the next write replaces it.
                        self.rewrite = true;
                        self.retry_at = Some(now.mono + RETRY_DELAY);
                        self.appends.clear();
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        self.retry_at.map(|t| (t, "safedb-retry"))
    }

    fn handle_timeout(&mut self, now: Now, _out: &mut Emitter) {
        if self.retry_at.is_some_and(|t| t <= now.mono) {
            self.retry_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::data::{CacheLimits, ChainData};
    use crate::protocol::primitives::Address;
    use crate::rng::Rng;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn id(n: u64, tag: u8) -> BlockId {
        BlockId { hash: B256([tag; 32]), number: n }
    }

    fn l2(n: u64, origin: u64) -> L2BlockRef {
        L2BlockRef { hash: B256([n as u8; 32]), number: n, l1origin: id(origin, 1), ..L2BlockRef::default() }
    }

    const G: B256 = B256([7; 32]);

    /// A store with safe heads 10, 20, 30, 40 at L1 blocks 100..=103, and its file.
    fn sample() -> (SafeHeads, Vec<u8>) {
        let mut s = SafeHeads::new(G, 100);
        let mut file = s.snapshot();
        for (i, n) in [10u64, 20, 30, 40].iter().enumerate() {
            file.extend(s.update(id(*n, 2), id(100 + i as u64, 1)));
        }
        (s, file)
    }

    #[test]
    fn lookups_follow_op_node_seek_lt() {
        let (s, _) = sample();
        assert_eq!(s.at(99), None);
        assert_eq!(s.at(100), Some(Entry { l1: id(100, 1), safe: id(10, 2) }));
        assert_eq!(s.at(102).unwrap().safe.number, 30);
        assert_eq!(s.at(1000).unwrap().safe.number, 40);
        assert_eq!(s.at(u64::MAX).unwrap().l1.number, 103);
    }

    #[test]
    fn resets_match_op_node() {
        // Reset to safe head 25 with origin 101: the first entry with safe >= 25 is at L1 102;
        // it is replaced by the reset safe head and later ones dropped.
        let (mut s, mut file) = sample();
        file.extend(s.reset(&l2(25, 101)));
        assert_eq!(s.len(), 3);
        assert_eq!(s.at(103), Some(Entry { l1: id(102, 1), safe: l2(25, 101).id() }));
        assert_eq!(SafeHeads::load(&file, G, 100).unwrap().store.entries, s.entries);
        // Reset before the first entry: everything goes and nothing is recorded.
        let (mut s, _) = sample();
        assert_eq!(s.reset(&l2(5, 90)).len(), TRUNCATE_LEN);
        assert!(s.is_empty());
        // Nothing at or past the reset safe head: no change.
        let (mut s, _) = sample();
        assert!(s.reset(&l2(50, 103)).is_empty());
        assert_eq!(s.len(), 4);
        // EL sync start clears all.
        let (mut s, _) = sample();
        s.reset(&L2BlockRef::default());
        assert!(s.is_empty());
    }

    #[test]
    fn torn_and_corrupt_tails_are_cut_and_every_prefix_loads() {
        let (s, file) = sample();
        let full = SafeHeads::load(&file, G, 100).unwrap();
        assert_eq!((full.valid_len, full.fresh), (file.len(), false));
        assert_eq!(full.store.entries, s.entries);
        for n in 0..file.len() {
            let l = SafeHeads::load(&file[..n], G, 100).unwrap();
            if n < HEADER_LEN {
                assert!(l.fresh && l.store.is_empty(), "prefix {n}");
                continue;
            }
            let whole = (n - HEADER_LEN) / SET_LEN;
            assert_eq!(l.valid_len, HEADER_LEN + whole * SET_LEN, "prefix {n}");
            assert_eq!(l.store.len(), whole);
        }
        // A flipped bit in the last record: that record is dropped, the others kept.
        let mut bad = file.clone();
        let last = bad.len() - 10;
        bad[last] ^= 1;
        let l = SafeHeads::load(&bad, G, 100).unwrap();
        assert_eq!((l.store.len(), l.valid_len, l.skipped), (3, file.len() - SET_LEN, 0));
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_skipped_and_the_rest_kept() {
        let (s, file) = sample();
        // Every byte of the second record, flipped in turn: that entry alone is lost.
        let second = HEADER_LEN + SET_LEN;
        for i in second..second + SET_LEN {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            let l = SafeHeads::load(&bad, G, 100).unwrap();
            assert_eq!((l.valid_len, l.skipped), (file.len(), SET_LEN), "byte {i}");
            let kept: Vec<u64> = l.store.entries.iter().map(|e| e.safe.number).collect();
            assert_eq!(kept, vec![10, 30, 40], "byte {i}");
        }
        // Garbage between records is skipped too.
        let mut spliced = file[..second].to_vec();
        spliced.extend_from_slice(&[0x01; 7]);
        spliced.extend_from_slice(&file[second..]);
        let l = SafeHeads::load(&spliced, G, 100).unwrap();
        assert_eq!((l.store.entries.clone(), l.skipped), (s.entries, 7));
    }

    #[test]
    fn foreign_and_damaged_headers_are_errors() {
        let (_, file) = sample();
        assert_eq!(
            SafeHeads::load(&file, B256([8; 32]), 100).unwrap_err(),
            SafeDbError::OtherChain { file: G, ours: B256([8; 32]) }
        );
        let mut bad = file.clone();
        bad[20] ^= 1;
        assert_eq!(SafeHeads::load(&bad, G, 100).unwrap_err(), SafeDbError::CorruptHeader);
        assert_eq!(SafeHeads::load(b"{\"json\": 1}", G, 100).unwrap_err(), SafeDbError::NotASafeDb);
        assert_eq!(SafeHeads::load(&[b'x'; 100], G, 100).unwrap_err(), SafeDbError::NotASafeDb);
    }

    #[test]
    fn random_bytes_never_panic() {
        let (_, file) = sample();
        let mut rng = Rng::new(3);
        for i in 0..3000 {
            let mut buf = if i % 2 == 0 { file.clone() } else { file[..HEADER_LEN].to_vec() };
            let extra = rng.below(200) as usize;
            let at = buf.len();
            buf.resize(at + extra, 0);
            rng.fill(&mut buf[at..]);
            if i % 3 == 0 {
                let j = rng.below(buf.len() as u64) as usize;
                buf[j] = rng.below(256) as u8;
            }
            if let Ok(l) = SafeHeads::load(&buf, G, 100) {
                assert!(l.valid_len <= buf.len());
            }
        }
    }

    #[test]
    fn entries_are_capped_and_the_file_compacts() {
        let mut s = SafeHeads::new(G, 4);
        let mut file = s.snapshot();
        for n in 0..40u64 {
            file.extend(s.update(id(n, 2), id(n, 1)));
        }
        assert_eq!(s.len(), 4);
        assert_eq!(s.at(35), None);
        assert_eq!(s.at(36).unwrap().safe.number, 36);
        assert_eq!(s.file_len(), file.len());
        assert!(s.wants_compaction());
        let compact = s.snapshot();
        assert_eq!(compact.len(), HEADER_LEN + 4 * SET_LEN);
        assert!(!s.wants_compaction());
        let a = SafeHeads::load(&file, G, 4).unwrap().store;
        let b = SafeHeads::load(&compact, G, 4).unwrap().store;
        assert_eq!(a.entries, b.entries);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    fn deriver() -> SafeDbDeriver {
        let genesis = id(0, 9);
        let data = ChainData::new(CacheLimits::default(), Address::ZERO, Address::ZERO);
        SafeDbDeriver::new(SafeHeads::new(genesis.hash, 16), genesis, Rc::new(RefCell::new(data)))
    }

    fn writes(d: &mut SafeDbDeriver) -> Vec<SafeDbWrite> {
        d.poll_write().into_iter().collect()
    }

    #[test]
    fn one_write_in_flight_later_changes_coalesced() {
        let now = crate::time::test_now();
        let mut d = deriver();
        let mut out = Emitter::with_cap(64);
        let derived = |n: u64| Event::SafeDerived {
            safe: l2(n, n),
            source: crate::protocol::block_ref::L1BlockRef {
                number: n,
                hash: B256([1; 32]),
                ..Default::default()
            },
        };
        d.on_event(&derived(1), now, &mut out);
        let first = writes(&mut d);
        assert!(matches!(&first[..], [SafeDbWrite::Append(b)] if b.len() == SET_LEN));
        d.on_event(&derived(2), now, &mut out);
        d.on_event(&derived(3), now, &mut out);
        assert!(writes(&mut d).is_empty());
        d.on_event(&Event::SafeDbWritten { result: Ok(()) }, now, &mut out);
        assert!(matches!(&writes(&mut d)[..], [SafeDbWrite::Append(b)] if b.len() == 2 * SET_LEN));
        // A failed write: the whole file is rewritten once the retry delay has passed, not at
        // the pace of new safe heads.
        d.on_event(&Event::SafeDbWritten { result: Err("disk full".into()) }, now, &mut out);
        assert!(writes(&mut d).is_empty());
        d.on_event(&derived(4), now, &mut out);
        assert!(writes(&mut d).is_empty());
        assert_eq!(d.poll_timeout(), Some((now.mono + RETRY_DELAY, "safedb-retry")));
        d.handle_timeout(now.advance(RETRY_DELAY / 2), &mut out);
        assert!(writes(&mut d).is_empty(), "a spurious timeout does nothing");
        d.handle_timeout(now.advance(RETRY_DELAY), &mut out);
        match &writes(&mut d)[..] {
            [SafeDbWrite::Rewrite(b)] => {
                assert_eq!(SafeHeads::load(b, d.store.genesis, 16).unwrap().store.len(), 4)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.write_errors, 1);
    }

    #[test]
    fn pending_records_are_bounded_while_a_write_is_in_flight() {
        let now = crate::time::test_now();
        let mut d = deriver();
        let mut out = Emitter::with_cap(8);
        let derived = |n: u64| Event::SafeDerived {
            safe: l2(n, n),
            source: crate::protocol::block_ref::L1BlockRef { number: n, ..Default::default() },
        };
        d.on_event(&derived(0), now, &mut out);
        assert!(d.poll_write().is_some());
        for n in 1..2000 {
            d.on_event(&derived(n), now, &mut out);
        }
        assert!(d.appends.len() <= MAX_PENDING_BYTES);
        d.on_event(&Event::SafeDbWritten { result: Ok(()) }, now, &mut out);
        match d.poll_write() {
            Some(SafeDbWrite::Rewrite(b)) => {
                assert_eq!(SafeHeads::load(&b, d.store.genesis, 16).unwrap().store.len(), 16)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reset_to_genesis_records_genesis_at_l1_block_0() {
        let now = crate::time::test_now();
        let mut d = deriver();
        let mut out = Emitter::with_cap(64);
        let g = d.genesis_l2;
        let heads = crate::event::EngineHeads {
            local_safe: L2BlockRef { hash: g.hash, number: g.number, ..Default::default() },
            ..Default::default()
        };
        d.on_event(&Event::EngineResetConfirmed(Box::new(heads)), now, &mut out);
        assert!(d.store.is_empty());
        let l1_genesis = crate::derive::data::BlockInfo::new(crate::protocol::header::Header::default());
        let arrived = Event::ChainDataArrived(Box::new(Arrival::L1Header(l1_genesis.clone())));
        d.on_event(&arrived, now, &mut out);
        assert_eq!(d.store.at(5), Some(Entry { l1: l1_genesis.block_ref().id(), safe: g }));
        assert!(!d.on_event(&arrived, now, &mut out));
    }
}
