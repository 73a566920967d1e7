//! Follow mode (op-node's `--l2.follow.source`, the "light CL"): instead of deriving from L1,
//! the node polls a trusted source node's `optimism_syncStatus` every two L2 block times and
//! adopts its local-safe, safe and finalized heads, while unsafe blocks keep coming from gossip
//! or EL sync. No derivation runs, so no batch, blob or receipt is fetched.
//!
//! op-node's `followUpstream`, step by step: skip while the engine is in initial EL sync; read
//! the status; refuse an impossible one (safe above local safe, finalized above safe); check the
//! L1 origins of the three heads, and the source's current L1, against our own L1 (the block at
//! that number must have that hash); report the current L1 as the derivation origin; hand the
//! heads to the engine controller (`Event::FollowSource`), which reorgs onto them if they
//! conflict with the local chain. Where op-lite differs, for the boards it runs on:
//! - the L1 checks read the node's header cache first (an earlier check, or a sequencer's head
//!   poll, usually has the block, or the block above it naming it as parent) and ask L1 only
//!   for what it lacks: the block above the origin, which checks the next origin too; a light
//!   verifier polls no L1 head at all. A cached block whose hash differs is asked for again
//!   before the source is called a liar (our view may predate a reorg);
//! - a source that fails to answer is polled again with exponential backoff (op-node retries at
//!   the same pace);
//! - a source whose safe or finalized head goes backwards is not followed (op-node ignores the
//!   lower safe head silently): logged, and counted as `error_backwards`;
//! - the source's current L1 is checked only against the cache, never fetched: when the cache
//!   does not show it, the newest block of ours at or below it is reported instead (the heads
//!   are still adopted), rather than failing the whole poll or paying a request per poll.
//!
//! With `--l2.follow.source.skip-l1-check` nothing is checked against L1, and the source's L1
//! heads are reported as the node's own.

use std::time::{Duration, Instant};

use crate::derive::data::{Arrival, ChainData, FetchRequest, Miss, SharedData};
use crate::event::{Deriver, Emitter, Event, Request};
use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::protocol::primitives::B256;
use crate::time::Now;

use super::status::SyncStatus;

/// Longest wait between polls of a source that keeps failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// op-node's `follow_source_requests_total` results (and op-lite's `error_backwards`).
pub mod result {
    pub const SUCCESS: &str = "success";
    pub const FETCH: &str = "error_fetch_status";
    pub const INVALID: &str = "error_invalid_state";
    pub const L1_LOOKUP: &str = "error_l1_lookup";
    pub const L1_MISMATCH: &str = "error_l1_mismatch";
    pub const BACKWARDS: &str = "error_backwards";
}

/// The source's heads as the engine controller adopts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FollowRefs {
    pub safe: L2BlockRef,
    pub local_safe: L2BlockRef,
    pub finalized: L2BlockRef,
    /// The local engine's block at `local_safe`'s height; `None` when it has none.
    pub local: Option<L2BlockRef>,
}

/// A status being checked: L1 lookups, then the local engine's block.
#[derive(Debug)]
struct Check {
    status: SyncStatus,
    /// L1 heights asked for again after a cached hash differed.
    refetched: Vec<u64>,
    /// L1 heights our L1 node does not have (yet).
    missing: Vec<u64>,
    l1_done: bool,
    /// The source's current L1 passed the check (it is reported).
    current_ok: bool,
    l2_asked: bool,
    /// The engine answered: no block at local safe's height.
    l2_missing: bool,
}

/// How far below the source's current L1 the newest cached block of ours is looked for.
const NEWEST_SCAN: u64 = 64;

/// Our L1's hash at height `n` as the cache shows it: the block itself, or the parent named by
/// the block above it.
fn on_our_chain(data: &ChainData, n: u64) -> Option<B256> {
    if let Some(b) = data.cached_l1_at(n) {
        return Some(b.hash);
    }
    data.cached_l1_at(n.checked_add(1)?).map(|b| b.header.parent_hash)
}

/// Polls the source and checks what it says.
pub struct FollowSource {
    data: SharedData,
    interval: Duration,
    check_l1: bool,
    /// When the next poll is due; `None`: at the first timer pass.
    due: Option<Instant>,
    in_flight: bool,
    failures: u32,
    check: Option<Check>,
    /// The safe and finalized heights last adopted.
    adopted: Option<(u64, u64)>,
    /// The engine is in initial EL sync: op-node does not interfere.
    el_syncing: bool,
    last_l1: [L1BlockRef; 3],
    /// The current L1 last reported (checked mode).
    last_current: L1BlockRef,
    /// Checked, with no L1 head poll (a light verifier): the newest L1 block the checks
    /// brought is reported as the L1 head.
    report_l1_head: bool,
}

impl FollowSource {
    /// Polls every `interval` (op-node: two L2 block times); `check_l1` unless
    /// `--l2.follow.source.skip-l1-check`.
    pub fn new(data: SharedData, interval: Duration, check_l1: bool) -> Self {
        FollowSource {
            data,
            interval,
            check_l1,
            due: None,
            in_flight: false,
            failures: 0,
            check: None,
            adopted: None,
            el_syncing: false,
            last_l1: [L1BlockRef::default(); 3],
            last_current: L1BlockRef::default(),
            report_l1_head: false,
        }
    }

    /// Checked and polling no L1 head of its own (a light verifier): reports the newest L1
    /// block its checks brought as the L1 head.
    pub fn reporting_l1_head(mut self) -> Self {
        self.report_l1_head = self.check_l1;
        self
    }

    /// The wait before the next poll after `failures` failures in a row.
    pub fn backoff(&self) -> Duration {
        match self.failures {
            0 => self.interval,
            n => (self.interval * 2u32.saturating_pow(n.min(8))).min(MAX_BACKOFF).max(self.interval),
        }
    }

    fn done(&mut self, result: &'static str, out: &mut Emitter) {
        out.emit(Event::FollowSourceChecked { result });
        if result != result::SUCCESS {
            self.check = None;
        }
    }

    fn on_status(&mut self, s: &SyncStatus, out: &mut Emitter) {
        if s.local_safe_l2.hash.is_zero() {
            log::debug!("follow source has no safe head yet");
            return;
        }
        if s.safe_l2.number > s.local_safe_l2.number {
            log::warn!(
                "follow source: invalid state, safe {} is ahead of local safe {}",
                s.safe_l2,
                s.local_safe_l2
            );
            return self.done(result::INVALID, out);
        }
        if s.finalized_l2.number > s.safe_l2.number {
            log::warn!(
                "follow source: invalid state, finalized {} is ahead of safe {}",
                s.finalized_l2,
                s.safe_l2
            );
            return self.done(result::INVALID, out);
        }
        if let Some((safe, finalized)) = self.adopted {
            if s.safe_l2.number < safe || s.finalized_l2.number < finalized {
                log::warn!(
                    "follow source went backwards: safe #{} finalized #{} after #{safe} and #{finalized}; not followed",
                    s.safe_l2.number,
                    s.finalized_l2.number
                );
                return self.done(result::BACKWARDS, out);
            }
        }
        log::debug!(
            "follow source: safe={} local_safe={} finalized={} current_l1={}",
            s.safe_l2,
            s.local_safe_l2,
            s.finalized_l2,
            s.current_l1
        );
        self.check = Some(Check {
            status: *s,
            refetched: Vec::new(),
            missing: Vec::new(),
            l1_done: !self.check_l1,
            current_ok: false,
            l2_asked: false,
            l2_missing: false,
        });
        if !self.check_l1 {
            self.report_source_l1(s, out);
            out.emit(Event::FollowSourceChecked { result: result::SUCCESS });
        }
        self.advance(out);
    }

    /// Without L1 checks, the source's L1 view is the node's (when it moved).
    fn report_source_l1(&mut self, s: &SyncStatus, out: &mut Emitter) {
        let views = [s.head_l1, s.safe_l1, s.finalized_l1];
        for (i, r) in views.into_iter().enumerate() {
            if r == L1BlockRef::default() || r == self.last_l1[i] {
                continue;
            }
            self.last_l1[i] = r;
            out.emit(match i {
                0 => Event::L1HeadUpdated(r),
                1 => Event::L1SafeUpdated(r),
                _ => Event::L1FinalizedUpdated(r),
            });
        }
    }

    /// With L1 checks, the node does not poll L1's safe and finalized blocks (nothing but the
    /// status would use them): the source's are reported once our cache shows the same block
    /// at that height (no request is made for them). The current L1 is the source's when it
    /// passed the check, else the newest block of ours at or below it that the checks brought.
    /// A light verifier (which polls no L1 head) reports that newest block as its L1 head.
    fn report_checked_l1(&mut self, s: &SyncStatus, current_ok: bool, out: &mut Emitter) {
        let data = self.data.borrow();
        for (i, r) in [(1, s.safe_l1), (2, s.finalized_l1)] {
            if r == L1BlockRef::default() || r == self.last_l1[i] {
                continue;
            }
            if on_our_chain(&data, r.number) == Some(r.hash) {
                self.last_l1[i] = r;
                out.emit(if i == 1 { Event::L1SafeUpdated(r) } else { Event::L1FinalizedUpdated(r) });
            }
        }
        let top = s.current_l1.number.max(s.local_safe_l2.l1origin.number);
        let newest = if current_ok {
            Some(s.current_l1)
        } else {
            (top.saturating_sub(NEWEST_SCAN)..=top)
                .rev()
                .find_map(|n| data.cached_l1_at(n))
                .map(|b| b.block_ref())
        };
        let Some(newest) = newest.filter(|b| b.number > self.last_current.number || *b == s.current_l1)
        else {
            return;
        };
        if newest != self.last_current {
            self.last_current = newest;
            out.emit(Event::DeriverL1Status { origin: newest, last_l2: s.local_safe_l2 });
        }
        if self.report_l1_head && newest.number > self.last_l1[0].number {
            self.last_l1[0] = newest;
            out.emit(Event::L1HeadUpdated(newest));
        }
    }

    /// Checks the L1 claims one by one (waiting for lookups), then asks the engine for its
    /// block at local safe's height, then adopts.
    ///
    /// A claim (block `n` has hash `h`) holds when our L1's block `n` has that hash, or when our
    /// block `n + 1` names it as parent. A claim the cache cannot settle asks L1 for block
    /// `n + 1` when the source's current L1 says it exists (one header checks both `n` and the
    /// next origin, which is usually `n + 1`: on a chain whose safe head moves an L1 block at a
    /// time, every other update needs no request), else for block `n`. The source's current L1
    /// is checked only from what the cache holds: it is reported when it matches, never fetched.
    fn advance(&mut self, out: &mut Emitter) {
        let Some(c) = self.check.as_mut() else { return };
        let s = c.status;
        if !c.l1_done {
            let claims = [
                ("local safe", s.local_safe_l2.l1origin.number, s.local_safe_l2.l1origin.hash),
                ("safe", s.safe_l2.l1origin.number, s.safe_l2.l1origin.hash),
                ("finalized", s.finalized_l2.l1origin.number, s.finalized_l2.l1origin.hash),
            ];
            let mut data = self.data.borrow_mut();
            for (what, n, hash) in claims {
                let ours = match on_our_chain(&data, n) {
                    Some(ours) => ours,
                    None if c.missing.contains(&n) => {
                        drop(data);
                        log::warn!(
                            "follow source: our L1 has no block #{n}, the L1 origin of the source's {what} head"
                        );
                        return self.done(result::L1_LOOKUP, out);
                    }
                    None => {
                        let above = n + 1;
                        let ask = if above <= s.current_l1.number && !c.missing.contains(&above) {
                            above
                        } else {
                            n
                        };
                        // Neither block n nor n + 1 is cached (`on_our_chain` read both): the
                        // lookup is asked for, and its arrival continues the check.
                        let _ = data.l1_header_at(ask);
                        return;
                    }
                };
                if ours == hash {
                    continue;
                }
                if !c.refetched.contains(&n) {
                    log::debug!(
                        "follow source: our L1 has {ours} at #{n}, the source says {hash}: asking L1"
                    );
                    c.refetched.push(n);
                    data.refetch_l1_at(n);
                    return;
                }
                drop(data);
                log::warn!(
                    "follow source: the L1 origin of its {what} head is #{n} {hash}, our L1 has {ours}; not followed"
                );
                return self.done(result::L1_MISMATCH, out);
            }
            // The current L1: reported when the cache shows it; a different block there is a
            // source on another L1 chain (asked again first, as an origin is).
            let cur = s.current_l1;
            if cur != L1BlockRef::default() {
                match on_our_chain(&data, cur.number) {
                    Some(ours) if ours == cur.hash => c.current_ok = true,
                    Some(ours) if !c.refetched.contains(&cur.number) => {
                        log::debug!(
                            "follow source: our L1 has {ours} at #{}, the source's current L1 is {}: asking L1",
                            cur.number,
                            cur.hash
                        );
                        c.refetched.push(cur.number);
                        data.refetch_l1_at(cur.number);
                        return;
                    }
                    Some(ours) => {
                        drop(data);
                        log::warn!(
                            "follow source: its current L1 is #{} {}, our L1 has {ours}; not followed",
                            cur.number,
                            cur.hash
                        );
                        return self.done(result::L1_MISMATCH, out);
                    }
                    None => log::debug!("follow source: current L1 {cur} not in our cache; not reported"),
                }
            }
            c.l1_done = true;
            drop(data);
            self.done(result::SUCCESS, out);
        }
        let Some(c) = self.check.as_mut() else { return };
        let n = s.local_safe_l2.number;
        let local = if c.l2_missing {
            None
        } else if !c.l2_asked {
            c.l2_asked = true;
            self.data.borrow_mut().refetch_l2_at(n);
            return;
        } else {
            match self.data.borrow_mut().l2_by_number(n) {
                Ok(d) => Some(d.block_ref),
                Err(Miss::Pending) | Err(Miss::NotFound) => return,
            }
        };
        let current_ok = c.current_ok;
        if self.check_l1 {
            self.report_checked_l1(&s, current_ok, out);
        } else if s.current_l1 != L1BlockRef::default() && s.current_l1 != self.last_current {
            self.last_current = s.current_l1;
            out.emit(Event::DeriverL1Status { origin: s.current_l1, last_l2: s.local_safe_l2 });
        }
        out.emit(Event::FollowSource(Box::new(FollowRefs {
            safe: s.safe_l2,
            local_safe: s.local_safe_l2,
            finalized: s.finalized_l2,
            local,
        })));
        self.adopted = Some((s.safe_l2.number, s.finalized_l2.number));
        self.check = None;
    }

    /// Chain data for a check in progress.
    fn on_arrival(&mut self, a: &Arrival, out: &mut Emitter) {
        let Some(c) = self.check.as_mut() else { return };
        let local_safe = c.status.local_safe_l2.number;
        match a {
            Arrival::NotFound(FetchRequest::L1HeaderByNumber(n)) => c.missing.push(*n),
            Arrival::Failed(FetchRequest::L1HeaderByNumber(n), err) if !c.l1_done => {
                log::warn!("follow source: L1 lookup of block #{n} failed: {err}");
                return self.done(result::L1_LOOKUP, out);
            }
            Arrival::NotFound(FetchRequest::L2BlockByNumber(n)) if *n == local_safe => c.l2_missing = true,
            Arrival::Failed(FetchRequest::L2BlockByNumber(n), err) if *n == local_safe => {
                // op-node skips the tick when the engine lookup fails.
                log::warn!("follow source: engine lookup of block #{n} failed: {err}");
                self.check = None;
                return;
            }
            Arrival::L1Header(_) | Arrival::L2Block(_) => {}
            _ => return,
        }
        self.advance(out);
    }
}

impl Deriver for FollowSource {
    fn on_event(&mut self, ev: &Event, now: Now, out: &mut Emitter) -> bool {
        match ev {
            Event::FollowSourceStatus(r) => {
                self.in_flight = false;
                match r {
                    Ok(s) => {
                        self.failures = 0;
                        self.on_status(s, out);
                    }
                    Err(e) => {
                        self.failures = self.failures.saturating_add(1);
                        log::warn!(
                            "follow source: failed to fetch status (retry in {:?}): {e}",
                            self.backoff()
                        );
                        out.emit(Event::FollowSourceChecked { result: result::FETCH });
                    }
                }
                self.due = Some(now.mono + self.backoff());
            }
            Event::ChainDataArrived(a) => self.on_arrival(a, out),
            Event::EngineSyncStatus { syncing } => self.el_syncing = *syncing,
            _ => return false,
        }
        true
    }

    /// The first poll runs at the loop's first timer pass (no deadline yet).
    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        if self.in_flight || self.el_syncing {
            return None;
        }
        self.due.map(|d| (d, "follow-source"))
    }

    fn handle_timeout(&mut self, now: Now, out: &mut Emitter) {
        if self.in_flight || self.el_syncing || self.due.is_some_and(|d| d > now.mono) {
            return;
        }
        if self.check.take().is_some() {
            log::warn!("follow source: the last status could not be checked in time (L1 or engine lookups); polling again");
        }
        self.in_flight = true;
        out.request(Request::PollFollowSource);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;
    use crate::derive::data::{BlockInfo, CacheLimits, ChainData, L2BlockData};
    use crate::protocol::block_ref::BlockId;
    use crate::protocol::header::Header;
    use crate::protocol::primitives::{Address, B256};

    const SECS: Duration = Duration::from_secs(4);

    fn l1(n: u64) -> BlockInfo {
        BlockInfo::new(Header { number: n, ..Header::default() })
    }

    fn l2(n: u64, origin: &BlockInfo, tag: u8) -> L2BlockRef {
        L2BlockRef {
            hash: B256([tag; 32]),
            number: n,
            l1origin: BlockId { hash: origin.hash, number: origin.number() },
            ..L2BlockRef::default()
        }
    }

    /// The source's status: local safe = safe at `safe`, finalized at `fin`, current L1 `cur`.
    fn status(safe: L2BlockRef, fin: L2BlockRef, cur: &BlockInfo) -> SyncStatus {
        SyncStatus {
            current_l1: cur.block_ref(),
            head_l1: cur.block_ref(),
            safe_l2: safe,
            local_safe_l2: safe,
            finalized_l2: fin,
            ..SyncStatus::default()
        }
    }

    struct T {
        f: FollowSource,
        data: crate::derive::data::SharedData,
        now: Now,
        out: Emitter,
    }

    impl T {
        fn new(check_l1: bool) -> T {
            let data =
                Rc::new(RefCell::new(ChainData::new(CacheLimits::default(), Address::ZERO, Address::ZERO)));
            T {
                f: FollowSource::new(data.clone(), SECS, check_l1),
                data,
                now: crate::time::test_now(),
                out: Emitter::with_cap(64),
            }
        }

        fn ev(&mut self, ev: Event) {
            self.f.on_event(&ev, self.now, &mut self.out);
        }

        /// Events emitted since the last call, by name, and the fetches asked for.
        fn take(&mut self) -> (Vec<String>, Vec<FetchRequest>) {
            let mut names = Vec::new();
            while let Some(e) = self.out.pop() {
                names.push(match e {
                    Event::FollowSourceChecked { result } => format!("checked:{result}"),
                    e => e.name().to_string(),
                });
            }
            (names, self.data.borrow_mut().poll_requests())
        }

        fn arrive(&mut self, a: Arrival) {
            {
                let mut d = self.data.borrow_mut();
                match a.clone() {
                    Arrival::L1Header(i) => d.insert_header(i),
                    Arrival::L2Block(b) => d.insert_l2(b),
                    Arrival::NotFound(FetchRequest::L1HeaderByNumber(n)) => d.not_found_by_number(n),
                    Arrival::NotFound(r) | Arrival::Failed(r, _) => d.clear_in_flight(&r),
                    other => panic!("not used here: {other:?}"),
                }
            }
            self.ev(Event::ChainDataArrived(Box::new(a)));
        }

        fn engine_has(&mut self, r: L2BlockRef) {
            let d = L2BlockData {
                block_ref: r,
                system_config: Default::default(),
                txs: Arc::new(Vec::new()),
                header: None,
            };
            self.arrive(Arrival::L2Block(d));
        }
    }

    #[test]
    fn polls_at_start_then_every_interval_and_backs_off_while_the_source_is_down() {
        let mut t = T::new(true);
        t.f.handle_timeout(t.now, &mut t.out);
        assert_eq!(t.out.poll_requests(), vec![Request::PollFollowSource]);
        // One poll in flight at a time.
        t.f.handle_timeout(t.now, &mut t.out);
        assert!(t.out.poll_requests().is_empty());
        assert_eq!(t.f.poll_timeout(), None);
        let mut waits = Vec::new();
        for _ in 0..6 {
            t.ev(Event::FollowSourceStatus(Err("connection refused".into())));
            waits.push(t.f.poll_timeout().unwrap().0 - t.now.mono);
            assert_eq!(t.take().0, vec!["checked:error_fetch_status"]);
            t.f.handle_timeout(t.now.advance(MAX_BACKOFF), &mut t.out);
            assert_eq!(t.out.poll_requests(), vec![Request::PollFollowSource]);
        }
        let s = |n| Duration::from_secs(n);
        assert_eq!(waits, vec![s(8), s(16), s(30), s(30), s(30), s(30)]);
        // An answer resets the pace.
        let o = l1(5);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(l2(1, &o, 1), l2(0, &o, 0), &o)))));
        assert_eq!(t.f.poll_timeout().unwrap().0 - t.now.mono, SECS);
    }

    #[test]
    fn checks_origins_against_l1_then_asks_the_engine_then_adopts() {
        let mut t = T::new(true);
        let (o1, o2) = (l1(10), l1(12));
        let (safe, fin) = (l2(20, &o2, 2), l2(8, &o1, 1));
        // Block 10 is cached already; 12 is asked for.
        t.arrive(Arrival::L1Header(o1.clone()));
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(safe, fin, &o2)))));
        assert_eq!(t.take(), (vec![], vec![FetchRequest::L1HeaderByNumber(12)]));
        t.arrive(Arrival::L1Header(o2.clone()));
        // Checked: success, then the engine's block at local safe's height, asked afresh even
        // though a (stale) one is cached.
        let (names, fetches) = t.take();
        assert_eq!(names, vec!["checked:success"]);
        assert_eq!(fetches, vec![FetchRequest::L2BlockByNumber(20)]);
        t.engine_has(safe);
        let (names, _) = t.take();
        assert_eq!(names, vec!["deriver-l1-status", "follow-source"]);
    }

    #[test]
    fn emits_the_heads_with_the_local_block_or_none() {
        let mut t = T::new(true);
        let o = l1(3);
        t.arrive(Arrival::L1Header(o.clone()));
        let safe = l2(7, &o, 7);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(safe, l2(0, &o, 0), &o)))));
        t.take();
        t.arrive(Arrival::NotFound(FetchRequest::L2BlockByNumber(7)));
        let mut found = None;
        while let Some(e) = t.out.pop() {
            if let Event::FollowSource(r) = e {
                found = Some(*r);
            }
        }
        let r = found.expect("adopted");
        assert_eq!((r.safe, r.local_safe, r.local), (safe, safe, None));
    }

    #[test]
    fn a_lying_source_is_not_followed() {
        let mut t = T::new(true);
        let o = l1(10);
        t.arrive(Arrival::L1Header(o.clone()));
        // The source names a block 10 our L1 does not have: asked again, then refused.
        let mut fake = l2(20, &o, 2);
        fake.l1origin.hash = B256([0xee; 32]);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(fake, l2(0, &o, 0), &o)))));
        assert_eq!(t.take(), (vec![], vec![FetchRequest::L1HeaderByNumber(10)]));
        t.arrive(Arrival::L1Header(o.clone()));
        assert_eq!(t.take(), (vec!["checked:error_l1_mismatch".to_string()], vec![]));
        // An origin our L1 does not have at all.
        let far = l1(99);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(l2(20, &far, 2), l2(0, &o, 0), &o)))));
        assert_eq!(t.take(), (vec![], vec![FetchRequest::L1HeaderByNumber(99)]));
        t.arrive(Arrival::NotFound(FetchRequest::L1HeaderByNumber(99)));
        assert_eq!(t.take().0, vec!["checked:error_l1_lookup"]);
        // Impossible states.
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(l2(5, &o, 5), l2(6, &o, 6), &o)))));
        assert_eq!(t.take().0, vec!["checked:error_invalid_state"]);
    }

    #[test]
    fn the_sources_l1_safe_and_finalized_are_reported_once_our_cache_shows_them() {
        let mut t = T::new(true);
        let (o, fin_l1, other) = (l1(10), l1(8), l1(9));
        t.arrive(Arrival::L1Header(o.clone()));
        t.arrive(Arrival::L1Header(fin_l1.clone()));
        let safe = l2(20, &o, 2);
        let mut st = status(safe, l2(0, &o, 0), &o);
        st.safe_l1 = other.block_ref(); // not cached: not reported, not asked for
        st.finalized_l1 = fin_l1.block_ref();
        t.ev(Event::FollowSourceStatus(Ok(Box::new(st))));
        t.take();
        t.engine_has(safe);
        let (names, fetches) = t.take();
        assert_eq!(names, vec!["l1-finalized-updated", "deriver-l1-status", "follow-source"]);
        assert!(fetches.is_empty());
    }

    #[test]
    fn a_current_l1_not_in_our_cache_is_never_fetched_our_newest_block_below_it_is_reported() {
        let mut t = T::new(true);
        let o = l1(10);
        t.arrive(Arrival::L1Header(o.clone()));
        let safe = l2(20, &o, 2);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(safe, l2(0, &o, 0), &l1(11))))));
        assert_eq!(t.take(), (vec!["checked:success".to_string()], vec![FetchRequest::L2BlockByNumber(20)]));
        t.engine_has(safe);
        let mut names = Vec::new();
        while let Some(e) = t.out.pop() {
            if let Event::DeriverL1Status { origin, .. } = &e {
                assert_eq!(*origin, o.block_ref(), "our block 10, not the source's unchecked 11");
            }
            names.push(e.name());
        }
        assert_eq!(names, vec!["deriver-l1-status", "follow-source"]);
        assert!(t.take().1.is_empty());
    }

    /// L1 blocks `0..n`, each naming the one before as parent.
    fn l1_chain(n: u64) -> Vec<BlockInfo> {
        let mut out: Vec<BlockInfo> = Vec::new();
        for i in 0..n {
            let parent_hash = out.last().map(|b| b.hash).unwrap_or_default();
            out.push(BlockInfo::new(Header { number: i, parent_hash, ..Header::default() }));
        }
        out
    }

    #[test]
    fn a_light_verifier_checks_each_origin_with_the_header_above_it_and_reports_it_as_l1_head() {
        let mut t = T::new(true);
        t.f = FollowSource::new(t.data.clone(), SECS, true).reporting_l1_head();
        let l1 = l1_chain(20);
        let (mut fetched, mut heads_per_update) = (Vec::new(), Vec::new());
        // The safe head moves one L1 origin at a time; the source's current L1 is two ahead.
        for (i, origin) in (10..16).enumerate() {
            let safe = l2(100 + i as u64, &l1[origin], 1 + i as u8);
            let st = status(safe, l2(0, &l1[0], 0), &l1[origin + 2]);
            t.ev(Event::FollowSourceStatus(Ok(Box::new(st))));
            let mut heads = Vec::new();
            loop {
                let (names, fetches) = t.take();
                heads.extend(names.into_iter().filter(|n| n == "l1-head-updated"));
                if fetches.is_empty() {
                    break;
                }
                for f in fetches {
                    match f {
                        FetchRequest::L1HeaderByNumber(n) => {
                            fetched.push(n);
                            t.arrive(Arrival::L1Header(l1[n as usize].clone()))
                        }
                        FetchRequest::L2BlockByNumber(_) => t.engine_has(safe),
                        other => panic!("unexpected fetch {other:?}"),
                    }
                }
            }
            heads_per_update.push(heads.len());
        }
        // Block 1 once for the finalized origin (block 0), then every other origin's child:
        // six safe-head updates, four L1 requests.
        assert_eq!(fetched, vec![11, 1, 13, 15]);
        // The L1 head moves with each block fetched (11, 13, 15: the newest this node knows).
        assert_eq!(heads_per_update, vec![1, 0, 1, 0, 1, 0]);
        assert_eq!(t.f.last_l1[0], l1[15].block_ref());
        // A source naming a block our cached child disowns: block 14 asked for, then refused.
        let mut fake = l2(200, &l1[14], 9);
        fake.l1origin.hash = B256([0xee; 32]);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(fake, l2(0, &l1[0], 0), &l1[16])))));
        assert_eq!(t.take(), (vec![], vec![FetchRequest::L1HeaderByNumber(14)]));
        t.arrive(Arrival::L1Header(l1[14].clone()));
        assert_eq!(t.take().0, vec!["checked:error_l1_mismatch"]);
    }

    #[test]
    fn a_source_going_backwards_is_not_followed() {
        let mut t = T::new(false);
        let o = l1(10);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(l2(20, &o, 2), l2(10, &o, 1), &o)))));
        t.take();
        t.engine_has(l2(20, &o, 2));
        assert!(t.take().0.contains(&"follow-source".to_string()));
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(l2(19, &o, 3), l2(10, &o, 1), &o)))));
        assert_eq!(t.take().0, vec!["checked:error_backwards"]);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(l2(21, &o, 3), l2(9, &o, 1), &o)))));
        assert_eq!(t.take().0, vec!["checked:error_backwards"]);
    }

    #[test]
    fn without_the_l1_check_nothing_goes_to_l1_and_the_source_l1_view_is_reported() {
        let mut t = T::new(false);
        let o = l1(10);
        let safe = l2(20, &o, 2);
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(safe, l2(0, &o, 0), &o)))));
        let (names, fetches) = t.take();
        assert_eq!(names, vec!["l1-head-updated", "checked:success"]);
        assert_eq!(fetches, vec![FetchRequest::L2BlockByNumber(20)]);
        // The same L1 head is not reported twice.
        t.engine_has(safe);
        t.take();
        t.ev(Event::FollowSourceStatus(Ok(Box::new(status(safe, l2(0, &o, 0), &o)))));
        assert_eq!(t.take().0, vec!["checked:success"]);
    }
}
