//! The runtime config (op-node's `RuntimeConfig`): values the node reads from L1 state rather
//! than from the rollup config — the unsafe block signer (SystemConfig storage) and the required
//! and recommended protocol versions (ProtocolVersions storage) — loaded at start and every
//! `--l1.runtime-config-reload-interval`, `--verifier.l1-confs` behind the L1 head, each value
//! checked by storage proof against the L1 block's state root (in the L1 client).
//!
//! `--rollup.halt LEVEL` stops the node when L1 requires a protocol version newer than op-lite
//! supports at that level or above (major > minor > patch), as op-node did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::derive::data::{BlockInfo, SharedData};
use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::block_ref::L1BlockRef;
use crate::protocol::primitives::{Address, B256};
use crate::time::Now;

/// `--rollup.halt`: halt when L1 signals a required protocol version newer at this level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltLevel {
    Major,
    Minor,
    Patch,
}

/// A protocol version (`specs/protocol/superchain-upgrades.md`): type byte 0, build at 8..16,
/// then big-endian major, minor, patch and pre-release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtocolVersion(pub [u8; 32]);

/// How a version compares with another, from the first one's point of view (op-geth's
/// `ProtocolVersionComparison`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    AheadMajor,
    OutdatedMajor,
    AheadMinor,
    OutdatedMinor,
    AheadPatch,
    OutdatedPatch,
    AheadPrerelease,
    OutdatedPrerelease,
    Matching,
    DiffVersionType,
    DiffBuild,
    EmptyVersion,
}

/// The protocol version op-lite implements: v12.0.0, counting one major version per network
/// upgrade after Holocene's v9.0.0 (Isthmus, Jovian, Karst).
pub const OP_LITE_SUPPORT: ProtocolVersion = ProtocolVersion::v0(12, 0, 0, 0);

impl ProtocolVersion {
    pub const fn v0(major: u32, minor: u32, patch: u32, pre: u32) -> Self {
        let mut b = [0u8; 32];
        let (ma, mi, pa, pr) =
            (major.to_be_bytes(), minor.to_be_bytes(), patch.to_be_bytes(), pre.to_be_bytes());
        let mut i = 0;
        while i < 4 {
            b[16 + i] = ma[i];
            b[20 + i] = mi[i];
            b[24 + i] = pa[i];
            b[28 + i] = pr[i];
            i += 1;
        }
        ProtocolVersion(b)
    }

    fn word(&self, at: usize) -> u32 {
        u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 32]
    }

    /// Compares `self` (the local version) with `other` (e.g. the required one).
    pub fn compare(&self, other: &ProtocolVersion) -> Comparison {
        use Comparison::*;
        if self.is_empty() || other.is_empty() {
            return EmptyVersion;
        }
        if self.0[0] != other.0[0] {
            return DiffVersionType;
        }
        if self.0[8..16] != other.0[8..16] {
            return DiffBuild;
        }
        let pairs = [
            (16, AheadMajor, OutdatedMajor),
            (20, AheadMinor, OutdatedMinor),
            (24, AheadPatch, OutdatedPatch),
        ];
        for (at, ahead, outdated) in pairs {
            let (a, b) = (self.word(at), other.word(at));
            if a != b {
                return if a > b { ahead } else { outdated };
            }
        }
        // Pre-release 0 is the release itself, ahead of any pre-release.
        let (a, b) = (self.word(28), other.word(28));
        match (a, b) {
            _ if a == b => Matching,
            (0, _) => AheadPrerelease,
            (_, 0) => OutdatedPrerelease,
            _ if a > b => AheadPrerelease,
            _ => OutdatedPrerelease,
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0[0] != 0 {
            return write!(f, "0x{}", crate::protocol::primitives::to_hex(&self.0));
        }
        write!(f, "v{}.{}.{}", self.word(16), self.word(20), self.word(24))?;
        if self.word(28) != 0 {
            write!(f, "-{}", self.word(28))?;
        }
        let build = &self.0[8..16];
        if build.iter().any(|b| *b != 0) {
            write!(f, "+0x{}", crate::protocol::primitives::to_hex(build))?;
        }
        Ok(())
    }
}

/// Whether `--rollup.halt` at `level` stops the node for this comparison of the local version
/// with the required one (op-node's `haltMaybe`).
pub fn should_halt(level: Option<HaltLevel>, cmp: Comparison) -> bool {
    let need = match level {
        Some(HaltLevel::Major) => 3,
        Some(HaltLevel::Minor) => 2,
        Some(HaltLevel::Patch) => 1,
        None => return false,
    };
    let have = match cmp {
        Comparison::OutdatedMajor => 3,
        Comparison::OutdatedMinor => 2,
        Comparison::OutdatedPatch => 1,
        _ => 0,
    };
    have >= need
}

/// The values read from L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfigData {
    /// The L1 block they were read at.
    pub l1_hash: B256,
    pub l1_number: u64,
    pub unsafe_block_signer: Address,
    pub required: ProtocolVersion,
    pub recommended: ProtocolVersion,
}

/// How often a failed load is retried.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// How old the last L1 head seen may be for the runtime config to be read at it.
pub const STALE_HEAD: Duration = Duration::from_secs(120);

/// The halt message (op-node's `errNodeHalt`).
pub const HALT_MESSAGE: &str = "opted to halt, unprepared for protocol change";

/// Loads and reloads the runtime config.
pub struct RuntimeConfigLoader {
    interval: Duration,
    /// The header cache and `--verifier.l1-confs`: a load reads at the cached block `confs`
    /// behind the L1 head the node last saw, when there is one (no header fetch).
    cache: Option<(SharedData, u64)>,
    l1_head: Option<L1BlockRef>,
    halt: Option<HaltLevel>,
    due: Option<Instant>,
    in_flight: bool,
    loaded: bool,
    pub current: Option<RuntimeConfigData>,
}

impl RuntimeConfigLoader {
    /// `interval` zero loads once and never reloads, as op-node.
    pub fn new(interval: Duration, halt: Option<HaltLevel>) -> Self {
        RuntimeConfigLoader {
            interval,
            cache: None,
            l1_head: None,
            halt,
            due: None,
            in_flight: false,
            loaded: false,
            current: None,
        }
    }

    /// Reads at cached blocks: `confs` behind the L1 head, when the cache holds that block.
    pub fn with_cache(mut self, data: SharedData, confs: u64) -> Self {
        self.cache = Some((data, confs));
        self
    }

    /// The block to read at, if the cache has it: on the head's chain, `confs` below it. A head
    /// older than `STALE_HEAD` (a light node whose source stalled) is not used: L1 is asked for
    /// its head then.
    fn cached_target(&self, now: Now) -> Option<Arc<BlockInfo>> {
        let ((data, confs), head) = (self.cache.as_ref()?, self.l1_head?);
        if (now.unix_ms / 1000).saturating_sub(head.timestamp) > STALE_HEAD.as_secs() {
            return None;
        }
        let data = data.borrow();
        let mut b = data.cached_l1_at(head.number)?;
        if b.hash != head.hash {
            return None;
        }
        // Walk down by parent hash, so the block is the head's ancestor (a bounded walk: confs
        // is a handful of blocks).
        for _ in 0..*confs {
            let parent = data.cached_l1_at(b.number().checked_sub(1)?)?;
            if parent.hash != b.header.parent_hash {
                return None;
            }
            b = parent;
        }
        Some(b)
    }
}

impl Deriver for RuntimeConfigLoader {
    fn on_event(&mut self, ev: &Event, now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::RuntimeConfigLoaded(data) => {
                self.in_flight = false;
                self.loaded = true;
                self.due = (!self.interval.is_zero()).then(|| now.mono + self.interval);
                if self.current.as_ref().map(|c| c.unsafe_block_signer) != Some(data.unsafe_block_signer) {
                    log::info!(
                        "loaded new runtime config values! p2p_seq_address={}",
                        data.unsafe_block_signer
                    );
                }
                for (v, what) in [(&data.recommended, "recommended"), (&data.required, "required")] {
                    match OP_LITE_SUPPORT.compare(v) {
                        Comparison::OutdatedMajor | Comparison::OutdatedMinor | Comparison::OutdatedPatch => {
                            log::warn!("L1 signals a {what} protocol version {v} newer than supported {OP_LITE_SUPPORT}")
                        }
                        _ => log::debug!("{what} protocol version {v}, supported {OP_LITE_SUPPORT}"),
                    }
                }
                let cmp = OP_LITE_SUPPORT.compare(&data.required);
                self.current = Some((**data).clone());
                if should_halt(self.halt, cmp) {
                    log::error!(
                        "Opted to halt, unprepared for protocol change required={} local={OP_LITE_SUPPORT}",
                        data.required
                    );
                    out.emit(Event::CriticalError { err: HALT_MESSAGE.to_string() });
                }
                true
            }
            Event::RuntimeConfigLoadFailed { err } => {
                self.in_flight = false;
                log::warn!("failed to reload runtime config err={err}");
                self.due = Some(now.mono + RETRY_INTERVAL);
                true
            }
            Event::L1HeadUpdated(r) => {
                self.l1_head = Some(*r);
                false
            }
            _ => false,
        }
    }

    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        // The first load has no deadline: it runs at the loop's first timer pass.
        self.due.filter(|_| !self.in_flight).map(|d| (d, "runtime-config"))
    }

    fn handle_timeout(&mut self, now: Now, out: &mut Emitter) {
        let due = match self.due {
            Some(d) => d <= now.mono,
            None => !self.loaded,
        };
        if self.in_flight || !due {
            return;
        }
        self.in_flight = true;
        self.due = None;
        out.request(Request::LoadRuntimeConfig { at: self.cached_target(now) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_op_geth() {
        let v = ProtocolVersion::v0;
        let local = v(9, 2, 3, 0);
        assert_eq!(local.compare(&v(10, 0, 0, 0)), Comparison::OutdatedMajor);
        assert_eq!(local.compare(&v(8, 9, 9, 0)), Comparison::AheadMajor);
        assert_eq!(local.compare(&v(9, 3, 0, 0)), Comparison::OutdatedMinor);
        assert_eq!(local.compare(&v(9, 2, 4, 0)), Comparison::OutdatedPatch);
        assert_eq!(local.compare(&v(9, 2, 3, 1)), Comparison::AheadPrerelease);
        assert_eq!(v(9, 2, 3, 1).compare(&local), Comparison::OutdatedPrerelease);
        assert_eq!(local.compare(&local), Comparison::Matching);
        assert_eq!(local.compare(&ProtocolVersion::default()), Comparison::EmptyVersion);
        let mut build = v(9, 2, 3, 0);
        build.0[8] = b'x';
        assert_eq!(local.compare(&build), Comparison::DiffBuild);
        let mut other_type = v(9, 2, 3, 0);
        other_type.0[0] = 1;
        assert_eq!(local.compare(&other_type), Comparison::DiffVersionType);
        assert_eq!(v(3, 1, 0, 2).to_string(), "v3.1.0-2");
        assert_eq!(OP_LITE_SUPPORT.to_string(), "v12.0.0");
    }

    #[test]
    fn halt_levels_match_op_node() {
        use Comparison::*;
        let all = [
            AheadMajor,
            OutdatedMajor,
            AheadMinor,
            OutdatedMinor,
            AheadPatch,
            OutdatedPatch,
            AheadPrerelease,
            OutdatedPrerelease,
            Matching,
            DiffVersionType,
            DiffBuild,
            EmptyVersion,
        ];
        let cases: [(Option<HaltLevel>, &[Comparison]); 4] = [
            (None, &[]),
            (Some(HaltLevel::Major), &[OutdatedMajor]),
            (Some(HaltLevel::Minor), &[OutdatedMajor, OutdatedMinor]),
            (Some(HaltLevel::Patch), &[OutdatedMajor, OutdatedMinor, OutdatedPatch]),
        ];
        for (level, halts) in cases {
            for c in all {
                assert_eq!(should_halt(level, c), halts.contains(&c), "{level:?} {c:?}");
            }
        }
    }

    fn loaded(required: ProtocolVersion) -> Event {
        Event::RuntimeConfigLoaded(Box::new(RuntimeConfigData {
            l1_hash: B256::ZERO,
            l1_number: 1,
            unsafe_block_signer: Address([7; 20]),
            required,
            recommended: required,
        }))
    }

    #[test]
    fn loads_at_start_reloads_on_schedule_and_halts_when_opted_in() {
        let now = crate::time::test_now();
        let mut out = Emitter::with_cap(16);
        let mut r = RuntimeConfigLoader::new(Duration::from_secs(600), Some(HaltLevel::Major));
        r.handle_timeout(now, &mut out);
        assert_eq!(out.poll_requests(), vec![Request::LoadRuntimeConfig { at: None }]);
        r.handle_timeout(now, &mut out);
        assert!(out.poll_requests().is_empty(), "one load at a time");
        // A failure retries after 10 s.
        r.on_event(&Event::RuntimeConfigLoadFailed { err: "down".into() }, now, &mut out);
        assert_eq!(r.poll_timeout().unwrap().0, now.mono + RETRY_INTERVAL);
        r.handle_timeout(now.advance(RETRY_INTERVAL), &mut out);
        assert_eq!(out.poll_requests().len(), 1);
        // A minor bump does not halt at level major; the next reload is 10 min later.
        r.on_event(&loaded(ProtocolVersion::v0(12, 1, 0, 0)), now, &mut out);
        assert_eq!(out.pending(), 0);
        assert_eq!(r.current.as_ref().unwrap().unsafe_block_signer, Address([7; 20]));
        assert_eq!(r.poll_timeout().unwrap().0, now.mono + Duration::from_secs(600));
        // A major bump halts.
        r.on_event(&loaded(ProtocolVersion::v0(13, 0, 0, 0)), now, &mut out);
        assert_eq!(out.aborted(), Some(HALT_MESSAGE));
        let mut out = Emitter::with_cap(16);
        // Without --rollup.halt the node keeps going.
        let mut r = RuntimeConfigLoader::new(Duration::ZERO, None);
        r.handle_timeout(now, &mut out);
        assert_eq!(out.poll_requests().len(), 1);
        r.on_event(&loaded(ProtocolVersion::v0(99, 0, 0, 0)), now, &mut out);
        assert_eq!(out.pending(), 0);
        assert_eq!(r.poll_timeout(), None, "interval 0: loaded once, never reloaded");
        r.handle_timeout(now.advance(Duration::from_secs(3600)), &mut out);
        assert!(out.poll_requests().is_empty());
    }

    #[test]
    fn reads_at_the_cached_block_confs_behind_the_l1_head_when_the_cache_has_it() {
        use crate::derive::data::{CacheLimits, ChainData};
        use crate::protocol::header::Header;
        let now = crate::time::test_now();
        let data = std::rc::Rc::new(std::cell::RefCell::new(ChainData::new(
            CacheLimits::default(),
            Address::ZERO,
            Address::ZERO,
        )));
        let t = now.unix_ms / 1000;
        let b7 = BlockInfo::new(Header { number: 7, timestamp: t - 12, ..Header::default() });
        let b8 =
            BlockInfo::new(Header { number: 8, parent_hash: b7.hash, timestamp: t, ..Header::default() });
        let load_at = |confs: u64, head: Option<&BlockInfo>, now: Now| {
            let mut r = RuntimeConfigLoader::new(Duration::ZERO, None).with_cache(data.clone(), confs);
            let mut out = Emitter::with_cap(4);
            if let Some(h) = head {
                r.on_event(&Event::L1HeadUpdated(h.block_ref()), now, &mut out);
            }
            r.handle_timeout(now, &mut out);
            match out.poll_requests().pop() {
                Some(Request::LoadRuntimeConfig { at }) => at.map(|b| b.number()),
                other => panic!("{other:?}"),
            }
        };
        let load = |confs: u64, head: Option<&BlockInfo>| load_at(confs, head, now);
        // No head seen yet, or a head the cache lacks: the worker fetches the headers.
        assert_eq!(load(0, None), None);
        assert_eq!(load(0, Some(&b8)), None);
        data.borrow_mut().insert_header(b8.clone());
        assert_eq!(load(0, Some(&b8)), Some(8));
        assert_eq!(load(1, Some(&b8)), None, "block 7 not cached");
        data.borrow_mut().insert_header(b7.clone());
        assert_eq!(load(1, Some(&b8)), Some(7));
        // A cached block 7 that is not the head's parent is not used.
        let other7 = BlockInfo::new(Header { number: 7, gas_limit: 1, ..Header::default() });
        data.borrow_mut().insert_header(other7);
        assert_eq!(load(1, Some(&b8)), None);
        // A head last seen long ago (a light node whose source stalled): L1 is asked.
        assert_eq!(load_at(0, Some(&b8), now.advance(STALE_HEAD)), Some(8));
        assert_eq!(load_at(0, Some(&b8), now.advance(STALE_HEAD + Duration::from_secs(1))), None);
    }
}
