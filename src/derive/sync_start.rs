//! Finding where to start syncing after a (re)start or reset (op-node `sync.FindL2Heads`):
//! load the engine's unsafe, safe and finalized heads, then walk the L2 chain back from the
//! unsafe head, checking each block's L1 origin against L1, until a block whose L1 origin is a
//! full sequencing window older than the newest canonical one (or the finalized head). Blocks
//! whose origin is no longer canonical are dropped from the unsafe chain.
//!
//! Resumable: chain data misses return `NotYet` and the walk continues where it stopped. The
//! walk is bounded (op-node's `MaxReorgSeqWindows`) and logs its progress.

use super::data::{ChainData, L2Label, Miss};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::protocol::rollup::RollupConfig;

/// op-node `MaxReorgSeqWindows`: how deep an unsafe-chain reorg may go.
pub const MAX_REORG_SEQ_WINDOWS: u64 = 5;
/// op-node `RecoverMinSeqWindows`: an unsafe head this far past genesis without finality is
/// recovered as after EL sync.
pub const RECOVER_MIN_SEQ_WINDOWS: u64 = 14;
/// How many L2 blocks to prefetch by number ahead of the walk.
const PREFETCH: u64 = 64;

/// The heads to reset the engine to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FindHeadsResult {
    pub unsafe_head: L2BlockRef,
    pub safe: L2BlockRef,
    pub finalized: L2BlockRef,
}

/// Why the search failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStartError {
    /// Waiting for chain data.
    NotYet,
    /// The engine has no unsafe head.
    NoUnsafeHead,
    WrongChain(String),
    ReorgFinalized(String),
    TooDeepReorg(String),
    Inconsistent(String),
    /// An L1 or L2 block could not be fetched.
    Missing(String),
}

impl std::fmt::Display for SyncStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncStartError::NotYet => write!(f, "waiting for chain data"),
            SyncStartError::NoUnsafeHead => write!(f, "failed to find the L2 head block"),
            SyncStartError::WrongChain(m) => write!(f, "wrong chain: {m}"),
            SyncStartError::ReorgFinalized(m) => write!(f, "cannot reorg finalized block: {m}"),
            SyncStartError::TooDeepReorg(m) => write!(f, "reorg is too deep: {m}"),
            SyncStartError::Inconsistent(m) => write!(f, "{m}"),
            SyncStartError::Missing(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for SyncStartError {}

/// The walk's position, kept across `NotYet`.
#[derive(Debug, Clone)]
struct Walk {
    result: FindHeadsResult,
    prev_unsafe: L2BlockRef,
    n: L2BlockRef,
    l1_block: Option<L1BlockRef>,
    ahead: bool,
    highest_canonical: Option<L2BlockRef>,
    ready: bool,
    steps: u64,
}

/// The search, stepped until it returns the heads.
#[derive(Debug, Clone, Default)]
pub struct FindL2Heads {
    walk: Option<Walk>,
    /// With EL sync, recover heads from the unsafe head offset by this many blocks.
    pub el_sync_offset_blocks: u64,
}

impl FindL2Heads {
    /// A new search; labels are re-read from the engine.
    pub fn new(data: &mut ChainData) -> Self {
        data.forget_l2_labels();
        FindL2Heads::default()
    }

    /// Advances the search as far as the cached data allows.
    pub fn step(
        &mut self,
        cfg: &RollupConfig,
        data: &mut ChainData,
    ) -> Result<FindHeadsResult, SyncStartError> {
        if self.walk.is_none() {
            let heads = current_heads(cfg, data)?;
            log::info!(
                "loaded current L2 heads unsafe={} safe={} finalized={} unsafe_origin={} safe_origin={}",
                heads.unsafe_head,
                heads.safe,
                heads.finalized,
                heads.unsafe_head.l1origin,
                heads.safe.l1origin
            );
            let genesis = cfg.genesis.l2.hash;
            if heads.finalized.hash == genesis
                && heads.safe.hash == genesis
                && heads.unsafe_head.number > cfg.genesis.l2.number
                && heads.unsafe_head.l1origin.number
                    > cfg.genesis.l1.number + RECOVER_MIN_SEQ_WINDOWS * cfg.seq_window_size
            {
                log::warn!("attempting recovery from sync state without finality head={}", heads.unsafe_head);
                return self.el_sync_heads(cfg, data, heads.unsafe_head);
            }
            if heads.unsafe_head.number < heads.finalized.number
                || heads.unsafe_head.number < heads.safe.number
            {
                log::error!(
                    "unsafe head is behind known finalized/safe blocks, execution-engine chain must have been rewound without forkchoice update; attempting recovery unsafe={} safe={} finalized={}",
                    heads.unsafe_head,
                    heads.safe,
                    heads.finalized
                );
                return self.el_sync_heads(cfg, data, heads.unsafe_head);
            }
            self.walk = Some(Walk {
                result: heads,
                prev_unsafe: heads.unsafe_head,
                n: heads.unsafe_head,
                l1_block: None,
                ahead: false,
                highest_canonical: None,
                ready: false,
                steps: 0,
            });
        }
        let Some(w) = self.walk.as_mut() else {
            return Err(SyncStartError::NotYet);
        };
        let out = walk(w, cfg, data);
        if out.is_ok() {
            self.walk = None;
        }
        out
    }

    /// op-node `L2HeadsForELSyncWithOffset`: unsafe at the tip, safe and finalized behind it.
    fn el_sync_heads(
        &mut self,
        cfg: &RollupConfig,
        data: &mut ChainData,
        tip: L2BlockRef,
    ) -> Result<FindHeadsResult, SyncStartError> {
        let offset = self.el_sync_offset_blocks.min(tip.number.saturating_sub(cfg.genesis.l2.number));
        let derived = if offset == 0 { tip } else { fetch_l2_number(data, tip.number - offset)? };
        Ok(FindHeadsResult { unsafe_head: tip, safe: derived, finalized: derived })
    }
}

fn fetch_l2_number(data: &mut ChainData, n: u64) -> Result<L2BlockRef, SyncStartError> {
    match data.l2_by_number(n) {
        Ok(d) => Ok(d.block_ref),
        Err(Miss::Pending) => Err(SyncStartError::NotYet),
        Err(Miss::NotFound) => Err(SyncStartError::Missing(format!("L2 block {n} not found"))),
    }
}

fn label(data: &mut ChainData, l: L2Label) -> Result<Option<L2BlockRef>, SyncStartError> {
    data.l2_by_label(l).map_err(|_| SyncStartError::NotYet)
}

/// op-node `currentHeads`: missing finalized -> genesis, missing safe -> finalized.
fn current_heads(cfg: &RollupConfig, data: &mut ChainData) -> Result<FindHeadsResult, SyncStartError> {
    let finalized = label(data, L2Label::Finalized);
    let safe = label(data, L2Label::Safe);
    let unsafe_head = label(data, L2Label::Unsafe);
    let finalized = match finalized? {
        Some(f) => f,
        None => match data.l2_by_hash(cfg.genesis.l2.hash) {
            Ok(d) => d.block_ref,
            Err(Miss::Pending) => return Err(SyncStartError::NotYet),
            Err(Miss::NotFound) => {
                return Err(SyncStartError::Missing("failed to find the finalized L2 block".into()))
            }
        },
    };
    let safe = safe?.unwrap_or(finalized);
    let unsafe_head = unsafe_head?.ok_or(SyncStartError::NoUnsafeHead)?;
    Ok(FindHeadsResult { unsafe_head, safe, finalized })
}

fn l1_miss(m: Miss, what: String) -> SyncStartError {
    match m {
        Miss::Pending => SyncStartError::NotYet,
        Miss::NotFound => SyncStartError::Missing(what),
    }
}

fn walk(w: &mut Walk, cfg: &RollupConfig, data: &mut ChainData) -> Result<FindHeadsResult, SyncStartError> {
    let lookback = cfg.seq_window_size;
    loop {
        let n = w.n;
        // Keep an L1 block at the height of n's origin: by parent hash when walking back one
        // L1 block at a time, else by number.
        match w.l1_block {
            Some(l1) if n.l1origin.hash == l1.parent_hash => {
                let b = data
                    .header_by_hash(n.l1origin.hash)
                    .map_err(|m| l1_miss(m, format!("failed to retrieve L1 block {}", n.l1origin)))?;
                w.l1_block = Some(b.block_ref());
                w.ahead = false;
            }
            Some(l1) if n.l1origin.hash == l1.hash => {}
            _ => match data.header_by_number(n.l1origin.number) {
                Ok(b) => {
                    w.l1_block = Some(b.block_ref());
                    w.ahead = false;
                }
                Err(Miss::NotFound) => {
                    w.l1_block = None;
                    w.ahead = true;
                }
                Err(Miss::Pending) => return Err(SyncStartError::NotYet),
            },
        }
        let l1 = w.l1_block;
        if n.number == cfg.genesis.l2.number {
            if n.hash != cfg.genesis.l2.hash {
                return Err(SyncStartError::WrongChain(format!(
                    "L2 genesis {} , got {n}",
                    cfg.genesis.l2.hash
                )));
            }
            if !w.ahead && l1.map(|b| b.hash) != Some(cfg.genesis.l1.hash) {
                return Err(SyncStartError::WrongChain(format!(
                    "L1 genesis {}, got {l1:?}",
                    cfg.genesis.l1.hash
                )));
            }
        }
        if n.number == w.result.finalized.number && n.hash != w.result.finalized.hash {
            return Err(SyncStartError::ReorgFinalized(format!("finalized {}, got {n}", w.result.finalized)));
        }
        if w.result.unsafe_head == L2BlockRef::default() {
            w.result.unsafe_head = n;
            if n.l1origin.number + MAX_REORG_SEQ_WINDOWS * lookback < w.prev_unsafe.l1origin.number {
                return Err(SyncStartError::TooDeepReorg(format!(
                    "traversed back to L2 block {n}, but too deep compared to previous unsafe block {}",
                    w.prev_unsafe
                )));
            }
        }
        if w.ahead {
            w.highest_canonical = None;
        } else if l1.map(|b| b.hash) == Some(n.l1origin.hash) {
            if w.highest_canonical.is_none() {
                w.highest_canonical = Some(n);
            }
        } else {
            // n's origin is not canonical: the unsafe chain above n is abandoned.
            w.result.unsafe_head = L2BlockRef::default();
            w.highest_canonical = None;
        }
        let highest_origin = w.highest_canonical.map_or(0, |h| h.l1origin.number);
        if n.number <= w.result.safe.number
            && n.l1origin.number.saturating_add(lookback) < highest_origin
            && n.sequence_number == 0
        {
            w.ready = true;
        }
        if n.number == w.result.finalized.number {
            log::info!(
                "hit finalized L2 head, returning immediately unsafe={} safe={} finalized={}",
                w.result.unsafe_head,
                n,
                w.result.finalized
            );
            w.result.safe = n;
            return Ok(w.result);
        }
        let parent = match data.l2_by_hash(n.parent_hash) {
            Ok(p) => p.block_ref,
            Err(Miss::Pending) => {
                let low = n.number.saturating_sub(PREFETCH).max(cfg.genesis.l2.number);
                data.prefetch_l2((low..n.number.saturating_sub(1)).rev());
                return Err(SyncStartError::NotYet);
            }
            Err(Miss::NotFound) => {
                return Err(SyncStartError::Missing(format!(
                    "failed to fetch L2 block by hash {}",
                    n.parent_hash
                )))
            }
        };
        if parent.l1origin != n.l1origin {
            if parent.l1origin.number.saturating_add(1) != n.l1origin.number {
                return Err(SyncStartError::Inconsistent(format!(
                    "l2 parent {parent} of {n} has L1 origin {} that is not before {}",
                    parent.l1origin, n.l1origin
                )));
            }
            if n.sequence_number != 0 {
                return Err(SyncStartError::Inconsistent(format!(
                    "l2 block {n} has parent {parent} with different L1 origin {}, but non-zero sequence number {}",
                    parent.l1origin, n.sequence_number
                )));
            }
            if let Some(b) = l1 {
                if b.hash == n.l1origin.hash && b.parent_hash != parent.l1origin.hash {
                    return Err(SyncStartError::Inconsistent(format!(
                        "parent L2 block {parent} has origin {} but expected {}",
                        parent.l1origin, b.parent_hash
                    )));
                }
            }
        } else if parent.sequence_number.saturating_add(1) != n.sequence_number {
            return Err(SyncStartError::Inconsistent(format!(
                "sequence number inconsistency {} <> {} between l2 blocks {parent} and {n}",
                parent.sequence_number, n.sequence_number
            )));
        }
        w.n = parent;
        w.steps += 1;
        if w.steps % 1000 == 0 {
            log::info!("walking sync start steps={} l2={} l1_origin={}", w.steps, parent, parent.l1origin);
        }
        if w.ready {
            w.result.safe = parent;
            return Ok(w.result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::data::{BlockInfo, CacheLimits, L2BlockData, L2Label};
    use crate::protocol::block_ref::BlockId;
    use crate::protocol::header::Header;
    use crate::protocol::primitives::{keccak256, B256};
    use crate::protocol::rollup::tests_support;
    use crate::protocol::system_config::SystemConfig;
    use std::sync::Arc;

    /// A config whose genesis is L1 block 0 / L2 block 0, with a small sequencing window.
    fn cfg() -> RollupConfig {
        let mut c = RollupConfig::from_json(tests_support::BASE_JSON).unwrap();
        c.seq_window_size = 10;
        c
    }

    /// L1 blocks 0..n with 12 s spacing; `fork_at` starts an alternative branch there.
    fn l1_chain(n: u64, salt: u8) -> Vec<BlockInfo> {
        let mut out: Vec<BlockInfo> = Vec::new();
        for i in 0..n {
            let parent = out.last().map_or(B256::ZERO, |b| b.hash);
            let h = Header {
                number: i,
                parent_hash: parent,
                timestamp: 1000 + 12 * i,
                extra_data: vec![salt].into(),
                ..Header::default()
            };
            out.push(BlockInfo::new(h));
        }
        out
    }

    /// L2 blocks every 2 s from L1 time 1000, each with the latest L1 origin it may have.
    fn l2_chain(cfg: &mut RollupConfig, l1: &[BlockInfo], count: u64) -> Vec<L2BlockRef> {
        cfg.genesis.l1 = BlockId { hash: l1[0].hash, number: 0 };
        cfg.genesis.l2_time = 1000;
        let mut out: Vec<L2BlockRef> = Vec::new();
        for i in 0..count {
            let t = 1000 + 2 * i;
            let origin = l1.iter().rev().find(|b| b.time() <= t).unwrap();
            let (parent_hash, seq) = match out.last() {
                Some(p) if p.l1origin.hash == origin.hash => (p.hash, p.sequence_number + 1),
                Some(p) => (p.hash, 0),
                None => (B256::ZERO, 0),
            };
            let hash = keccak256([&parent_hash.0[..], &origin.hash.0[..], &i.to_be_bytes()].concat());
            out.push(L2BlockRef {
                hash,
                number: i,
                parent_hash,
                timestamp: t,
                l1origin: origin.block_ref().id(),
                sequence_number: seq,
            });
        }
        cfg.genesis.l2 = out[0].id();
        out
    }

    fn data_with(l1: &[BlockInfo], l2: &[L2BlockRef]) -> ChainData {
        let mut d = ChainData::new(CacheLimits::default(), Default::default(), Default::default());
        for b in l1 {
            d.insert_header(b.clone());
        }
        for r in l2 {
            d.insert_l2(L2BlockData {
                block_ref: *r,
                system_config: SystemConfig::default(),
                txs: Arc::new(vec![]),
                header: None,
            });
        }
        d
    }

    fn labels(d: &mut ChainData, unsafe_head: L2BlockRef, safe: L2BlockRef, finalized: Option<L2BlockRef>) {
        let data = |r: L2BlockRef| L2BlockData {
            block_ref: r,
            system_config: SystemConfig::default(),
            txs: Arc::new(vec![]),
            header: None,
        };
        d.insert_l2_label(L2Label::Unsafe, Some(data(unsafe_head)));
        d.insert_l2_label(L2Label::Safe, Some(data(safe)));
        d.insert_l2_label(L2Label::Finalized, finalized.map(data));
    }

    #[test]
    fn walks_back_a_sequencing_window_below_the_safe_head() {
        let mut c = cfg();
        let l1 = l1_chain(60, 0);
        let l2 = l2_chain(&mut c, &l1, 300);
        let mut d = data_with(&l1, &l2);
        let mut f = FindL2Heads::new(&mut d);
        labels(&mut d, l2[299], l2[250], None);
        let r = f.step(&c, &mut d).unwrap();
        assert_eq!(r.unsafe_head, l2[299]);
        assert_eq!(r.finalized, l2[0]);
        // The new safe head is the parent of the first block of an epoch whose origin is more than
        // a sequencing window (10 L1 blocks) older than the unsafe head's origin.
        assert!(r.safe.number < 250);
        assert!(r.safe.l1origin.number + 10 < l2[299].l1origin.number);
        let child = l2[r.safe.number as usize + 1];
        assert_eq!(child.sequence_number, 0);
        assert!(child.l1origin.number + 10 < l2[299].l1origin.number);
    }

    #[test]
    fn stops_at_the_finalized_head() {
        let mut c = cfg();
        let l1 = l1_chain(60, 0);
        let l2 = l2_chain(&mut c, &l1, 300);
        let mut d = data_with(&l1, &l2);
        let mut f = FindL2Heads::new(&mut d);
        labels(&mut d, l2[299], l2[296], Some(l2[295]));
        let r = f.step(&c, &mut d).unwrap();
        assert_eq!(r, FindHeadsResult { unsafe_head: l2[299], safe: l2[295], finalized: l2[295] });
    }

    #[test]
    fn unsafe_blocks_on_a_reorged_l1_are_dropped() {
        let mut c = cfg();
        let old_l1 = l1_chain(60, 0);
        let l2 = l2_chain(&mut c, &old_l1, 300);
        // L1 reorgs from block 40: the canonical chain now differs there.
        let mut new_l1: Vec<BlockInfo> = old_l1[..40].to_vec();
        for i in 40..60u64 {
            let parent = new_l1.last().unwrap().hash;
            new_l1.push(BlockInfo::new(Header {
                number: i,
                parent_hash: parent,
                timestamp: 1000 + 12 * i,
                extra_data: vec![9].into(),
                ..Header::default()
            }));
        }
        let mut d = data_with(&new_l1, &l2);
        let mut f = FindL2Heads::new(&mut d);
        labels(&mut d, l2[299], l2[250], None);
        let r = f.step(&c, &mut d).unwrap();
        // The new unsafe head is the last L2 block whose origin is still canonical (origin 39).
        assert_eq!(r.unsafe_head.l1origin.number, 39);
        assert_eq!(l2[r.unsafe_head.number as usize + 1].l1origin.number, 40);
        assert!(r.safe.number < r.unsafe_head.number);
    }

    #[test]
    fn resumes_after_missing_data_arrives() {
        let mut c = cfg();
        let l1 = l1_chain(60, 0);
        let l2 = l2_chain(&mut c, &l1, 300);
        // Only the heads are known; everything else must be fetched.
        let mut d = data_with(&[], &[]);
        let mut f = FindL2Heads::new(&mut d);
        let mut rounds = 0;
        let r = loop {
            match f.step(&c, &mut d) {
                Ok(r) => break r,
                Err(SyncStartError::NotYet) => {}
                Err(e) => panic!("{e}"),
            }
            rounds += 1;
            assert!(rounds < 1000);
            for req in d.poll_requests() {
                use crate::derive::data::FetchRequest::*;
                match req {
                    L2BlockByLabel(L2Label::Unsafe) => labels(&mut d, l2[299], l2[250], None),
                    L2BlockByLabel(_) => {}
                    L1HeaderByNumber(n) => d.insert_header(l1[n as usize].clone()),
                    L1HeaderByHash(h) => d.insert_header(l1.iter().find(|b| b.hash == h).unwrap().clone()),
                    L2BlockByNumber(n) => d.insert_l2(L2BlockData {
                        block_ref: l2[n as usize],
                        system_config: SystemConfig::default(),
                        txs: Arc::new(vec![]),
                        header: None,
                    }),
                    L2BlockByHash(h) => {
                        let r = *l2.iter().find(|b| b.hash == h).unwrap();
                        d.insert_l2(L2BlockData {
                            block_ref: r,
                            system_config: SystemConfig::default(),
                            txs: Arc::new(vec![]),
                            header: None,
                        });
                    }
                    other => panic!("unexpected request {other:?}"),
                }
            }
        };
        assert_eq!(r.unsafe_head, l2[299]);
        // Prefetching by number keeps the number of rounds far below one per block walked.
        assert!(rounds < 40, "{rounds} rounds");
    }

    #[test]
    fn a_finalized_block_off_the_chain_is_an_error() {
        let mut c = cfg();
        let l1 = l1_chain(60, 0);
        let l2 = l2_chain(&mut c, &l1, 300);
        let mut d = data_with(&l1, &l2);
        let mut f = FindL2Heads::new(&mut d);
        let mut fake = l2[280];
        fake.hash = B256([7; 32]);
        labels(&mut d, l2[299], l2[290], Some(fake));
        assert!(matches!(f.step(&c, &mut d), Err(SyncStartError::ReorgFinalized(_))));
    }
}
