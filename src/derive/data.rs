//! The chain data the pipeline reads, held in bounded caches. A miss records a fetch request
//! (deduplicated while in flight) and returns `Miss::Pending`; the I/O layer performs it and
//! inserts the result, after which the pipeline is stepped again. This is the only place L1
//! and L2 data is held; entries the pipeline has passed are evicted.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use crate::protocol::block_ref::{L1BlockRef, L2BlockRef};
use crate::protocol::header::Header;
use crate::protocol::primitives::{Address, Bytes, B256};
use crate::protocol::receipt::Log;
use crate::protocol::system_config::SystemConfig;
use crate::protocol::tx::Transaction;

/// Why data is not available now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Requested; retry once it arrives.
    Pending,
    /// The source says it does not exist (yet): e.g. an L1 block beyond the head.
    NotFound,
}

pub type Fetch<T> = Result<T, Miss>;

/// A header with its hash: everything the pipeline needs about an L1 block but its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub hash: B256,
    pub header: Header,
}

impl BlockInfo {
    /// Hashes the header.
    pub fn new(header: Header) -> Self {
        BlockInfo { hash: header.hash(), header }
    }

    pub fn number(&self) -> u64 {
        self.header.number
    }

    pub fn time(&self) -> u64 {
        self.header.timestamp
    }

    pub fn block_ref(&self) -> L1BlockRef {
        L1BlockRef {
            hash: self.hash,
            number: self.header.number,
            parent_hash: self.header.parent_hash,
            timestamp: self.header.timestamp,
        }
    }
}

/// What derivation needs from an L1 block's receipts, extracted on arrival so the receipts
/// themselves are not kept: user deposits (encoded deposit txs, in log order) and the
/// SystemConfig update logs of successful transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptsDigest {
    /// Encoded deposit transactions, or the error deriving them (critical in op-node).
    pub deposits: Result<Vec<Bytes>, String>,
    pub config_logs: Vec<Log>,
}

/// An L2 block as the pipeline sees it: its ref, the system config it implies for its child,
/// and its transactions (for span-batch overlap checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2BlockData {
    pub block_ref: L2BlockRef,
    pub system_config: SystemConfig,
    pub txs: Arc<Vec<Bytes>>,
    /// The full header when known (fetched blocks), for consolidation checks.
    pub header: Option<Arc<Header>>,
}

/// The engine's labelled L2 heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L2Label {
    Unsafe,
    Safe,
    Finalized,
}

impl L2Label {
    /// The JSON-RPC block tag.
    pub fn tag(self) -> &'static str {
        match self {
            L2Label::Unsafe => "latest",
            L2Label::Safe => "safe",
            L2Label::Finalized => "finalized",
        }
    }
}

/// A request for the I/O layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchRequest {
    L1HeaderByNumber(u64),
    L1HeaderByHash(B256),
    /// Header and transactions.
    L1BlockByHash(B256),
    /// Receipts of a block (the digest is made on arrival), checked against the receipts root
    /// of its header, which the pipeline already holds (so the header is not fetched again).
    L1Receipts {
        hash: B256,
        receipts_root: B256,
    },
    /// Blobs of a block by versioned hash (the L1 block ref gives slot and time).
    Blobs {
        block: L1BlockRef,
        hashes: Vec<B256>,
    },
    L2BlockByNumber(u64),
    L2BlockByHash(B256),
    L2BlockByLabel(L2Label),
}

/// The answer to a `FetchRequest`, as an event payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    L1Header(BlockInfo),
    L1Block(BlockInfo, Vec<Transaction>),
    /// Raw receipts; the deriver digests them.
    L1Receipts(B256, Vec<crate::protocol::receipt::Receipt>),
    Blobs {
        block: L1BlockRef,
        hashes: Vec<B256>,
        blobs: Vec<Vec<u8>>,
    },
    L2Block(L2BlockData),
    /// A labelled head; None when the engine has no such block (e.g. nothing finalized yet).
    L2Label(L2Label, Option<L2BlockData>),
    /// The source has no such block (yet).
    NotFound(FetchRequest),
    /// The fetch failed; it may be retried.
    Failed(FetchRequest, String),
}

/// The caches, shared by the derivers that read chain data (pipeline, engine reset, finalizer,
/// sequencer). Single-threaded: the event loop owns them.
pub type SharedData = Rc<RefCell<ChainData>>;

/// Capacity limits of the caches.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub headers: usize,
    pub bodies: usize,
    pub body_bytes: usize,
    pub receipts: usize,
    pub blob_bytes: usize,
    pub l2_blocks: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            headers: 4096,
            bodies: 32,
            body_bytes: 16 << 20,
            receipts: 256,
            blob_bytes: 8 << 20,
            l2_blocks: 512,
        }
    }
}

impl CacheLimits {
    /// `--l1.cache-size` (op-node sizes its L1 header, transaction and receipt LRUs with it):
    /// the entry counts of the header, body and receipt caches. The byte budgets stay, so the
    /// bodies held are the fewer of `n` and what fits in `body_bytes` (a board cannot hold 900
    /// full L1 blocks).
    pub fn with_l1_entries(self, n: usize) -> Self {
        let n = n.max(1);
        CacheLimits { headers: n, bodies: n, receipts: n, ..self }
    }
}

/// Bounded L1 and L2 caches with request bookkeeping.
#[derive(Debug)]
pub struct ChainData {
    limits: CacheLimits,
    headers: HashMap<B256, Arc<BlockInfo>>,
    header_order: VecDeque<B256>,
    canonical: BTreeMap<u64, B256>,
    bodies: HashMap<B256, Arc<Vec<Transaction>>>,
    body_order: VecDeque<(B256, usize)>,
    body_bytes: usize,
    receipts: HashMap<B256, Arc<ReceiptsDigest>>,
    receipts_order: VecDeque<B256>,
    blobs: HashMap<B256, Arc<Vec<u8>>>,
    blob_bytes: usize,
    l2_by_hash: HashMap<B256, Arc<L2BlockData>>,
    l2_canonical: BTreeMap<u64, B256>,
    l2_order: VecDeque<B256>,
    l2_labels: HashMap<L2Label, Option<L2BlockRef>>,
    /// Highest L1 block the pipeline may use (head minus confirmations); None until known.
    l1_limit: Option<u64>,
    /// Addresses whose logs matter; a header's bloom without either proves receipts useless.
    pub deposit_contract: Address,
    pub system_config_address: Address,
    in_flight: HashSet<FetchRequest>,
    requests: Vec<FetchRequest>,
    /// Receipt fetches avoided because the bloom ruled both addresses out.
    pub receipts_skipped_by_bloom: u64,
}

impl ChainData {
    pub fn new(limits: CacheLimits, deposit_contract: Address, system_config_address: Address) -> Self {
        ChainData {
            limits,
            headers: HashMap::new(),
            header_order: VecDeque::new(),
            canonical: BTreeMap::new(),
            bodies: HashMap::new(),
            body_order: VecDeque::new(),
            body_bytes: 0,
            receipts: HashMap::new(),
            receipts_order: VecDeque::new(),
            blobs: HashMap::new(),
            blob_bytes: 0,
            l2_by_hash: HashMap::new(),
            l2_canonical: BTreeMap::new(),
            l2_order: VecDeque::new(),
            l2_labels: HashMap::new(),
            l1_limit: None,
            deposit_contract,
            system_config_address,
            in_flight: HashSet::new(),
            requests: Vec::new(),
            receipts_skipped_by_bloom: 0,
        }
    }

    fn request(&mut self, r: FetchRequest) -> Miss {
        if self.in_flight.insert(r.clone()) {
            self.requests.push(r);
        }
        Miss::Pending
    }

    /// Requests made since the last call.
    pub fn poll_requests(&mut self) -> Vec<FetchRequest> {
        std::mem::take(&mut self.requests)
    }

    /// A request failed or was abandoned: it may be made again.
    pub fn clear_in_flight(&mut self, r: &FetchRequest) {
        self.in_flight.remove(r);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The highest L1 block number derivation may read (head minus confirmation depth).
    pub fn set_l1_limit(&mut self, n: Option<u64>) {
        self.l1_limit = n;
    }

    pub fn l1_limit(&self) -> Option<u64> {
        self.l1_limit
    }

    /// Approximate bytes held, for the metrics endpoint.
    pub fn bytes(&self) -> usize {
        self.headers.len() * 700
            + self.body_bytes
            + self.blob_bytes
            + self.receipts.len() * 256
            + self.l2_by_hash.len() * 512
    }

    /// Files an arrival; returns false for a failed fetch (which may be retried).
    pub fn apply(&mut self, a: Arrival, cfg: &crate::protocol::rollup::RollupConfig) -> bool {
        match a {
            Arrival::L1Header(info) => self.insert_header(info),
            Arrival::L1Block(info, txs) => self.insert_block(info, txs),
            Arrival::L1Receipts(hash, receipts) => {
                let digest = super::deriver::digest_receipts(cfg, hash, &receipts);
                self.insert_receipts(hash, digest);
            }
            Arrival::Blobs { block, hashes, blobs } => self.insert_blobs(&block, &hashes, blobs),
            Arrival::L2Block(d) => self.insert_l2(d),
            Arrival::L2Label(label, d) => self.insert_l2_label(label, d),
            Arrival::NotFound(req) => {
                if let FetchRequest::L1HeaderByNumber(n) = req {
                    self.not_found_by_number(n);
                } else {
                    self.clear_in_flight(&req);
                }
            }
            Arrival::Failed(req, err) => {
                log::warn!("chain data fetch failed request={req:?} err={err}");
                self.clear_in_flight(&req);
                return false;
            }
        }
        true
    }

    // -- L1 headers --

    pub fn insert_header(&mut self, info: BlockInfo) {
        self.in_flight.remove(&FetchRequest::L1HeaderByNumber(info.number()));
        self.in_flight.remove(&FetchRequest::L1HeaderByHash(info.hash));
        let hash = info.hash;
        // The newest view by number wins: a reorg replaces the canonical entry.
        self.canonical.insert(info.number(), hash);
        if self.headers.insert(hash, Arc::new(info)).is_none() {
            self.header_order.push_back(hash);
        }
        while self.header_order.len() > self.limits.headers {
            if let Some(old) = self.header_order.pop_front() {
                if let Some(i) = self.headers.remove(&old) {
                    if self.canonical.get(&i.number()) == Some(&old) {
                        self.canonical.remove(&i.number());
                    }
                }
            }
        }
    }

    /// The block at height `n` on the chain as last seen (bounded by the confirmation limit).
    pub fn header_by_number(&mut self, n: u64) -> Fetch<Arc<BlockInfo>> {
        if self.l1_limit.is_some_and(|limit| n > limit) {
            return Err(Miss::NotFound);
        }
        if let Some(i) = self.canonical.get(&n).and_then(|h| self.headers.get(h)) {
            return Ok(i.clone());
        }
        Err(self.request(FetchRequest::L1HeaderByNumber(n)))
    }

    /// The block at height `n` as last seen, whatever the confirmation limit (follow mode checks
    /// a source's claims against L1 up to the tip).
    pub fn l1_header_at(&mut self, n: u64) -> Fetch<Arc<BlockInfo>> {
        if let Some(i) = self.canonical.get(&n).and_then(|h| self.headers.get(h)) {
            return Ok(i.clone());
        }
        Err(self.request(FetchRequest::L1HeaderByNumber(n)))
    }

    /// The block at height `n` if cached (never asks).
    pub fn cached_l1_at(&self, n: u64) -> Option<Arc<BlockInfo>> {
        self.canonical.get(&n).and_then(|h| self.headers.get(h)).cloned()
    }

    /// Asks L1 again for the block at `n` (the cached view may be older than a reorg).
    pub fn refetch_l1_at(&mut self, n: u64) -> Miss {
        self.canonical.remove(&n);
        self.request(FetchRequest::L1HeaderByNumber(n))
    }

    /// Records that L1 has no block at `n` yet.
    pub fn not_found_by_number(&mut self, n: u64) {
        self.in_flight.remove(&FetchRequest::L1HeaderByNumber(n));
        if self.l1_limit.is_none_or(|l| l >= n) {
            self.l1_limit = Some(n.saturating_sub(1));
        }
    }

    pub fn header_by_hash(&mut self, h: B256) -> Fetch<Arc<BlockInfo>> {
        if let Some(i) = self.headers.get(&h) {
            return Ok(i.clone());
        }
        Err(self.request(FetchRequest::L1HeaderByHash(h)))
    }

    /// Forgets the canonical index above `n` (after an L1 reorg).
    pub fn forget_l1_above(&mut self, n: u64) {
        self.canonical.retain(|k, _| *k <= n);
    }

    // -- L1 bodies --

    pub fn insert_block(&mut self, info: BlockInfo, txs: Vec<Transaction>) {
        let hash = info.hash;
        self.in_flight.remove(&FetchRequest::L1BlockByHash(hash));
        self.insert_header(info);
        let size: usize = txs.iter().map(|t| t.encoded().len() + 64).sum();
        if self.bodies.insert(hash, Arc::new(txs)).is_none() {
            self.body_order.push_back((hash, size));
            self.body_bytes += size;
        }
        while self.body_order.len() > self.limits.bodies || self.body_bytes > self.limits.body_bytes {
            let Some((old, sz)) = self.body_order.pop_front() else {
                break;
            };
            self.bodies.remove(&old);
            self.body_bytes -= sz;
        }
    }

    pub fn transactions(&mut self, h: B256) -> Fetch<Arc<Vec<Transaction>>> {
        if let Some(b) = self.bodies.get(&h) {
            return Ok(b.clone());
        }
        Err(self.request(FetchRequest::L1BlockByHash(h)))
    }

    /// Drops a block's body once retrieval has taken what it needs.
    pub fn release_body(&mut self, h: &B256) {
        if self.bodies.remove(h).is_some() {
            if let Some(i) = self.body_order.iter().position(|(x, _)| x == h) {
                if let Some((_, sz)) = self.body_order.remove(i) {
                    self.body_bytes -= sz;
                }
            }
        }
    }

    // -- L1 receipts --

    /// The receipts digest of a block, or an empty one when its bloom proves that neither the
    /// deposit contract nor the SystemConfig emitted a log there.
    pub fn receipts(&mut self, info: &BlockInfo) -> Fetch<Arc<ReceiptsDigest>> {
        if let Some(r) = self.receipts.get(&info.hash) {
            return Ok(r.clone());
        }
        let bloom = &info.header.logs_bloom;
        if !bloom.may_contain(&self.deposit_contract.0) && !bloom.may_contain(&self.system_config_address.0) {
            self.receipts_skipped_by_bloom += 1;
            return Ok(Arc::new(ReceiptsDigest { deposits: Ok(Vec::new()), config_logs: Vec::new() }));
        }
        Err(self
            .request(FetchRequest::L1Receipts { hash: info.hash, receipts_root: info.header.receipts_root }))
    }

    pub fn insert_receipts(&mut self, hash: B256, digest: ReceiptsDigest) {
        self.in_flight.retain(|r| !matches!(r, FetchRequest::L1Receipts { hash: h, .. } if *h == hash));
        if self.receipts.insert(hash, Arc::new(digest)).is_none() {
            self.receipts_order.push_back(hash);
        }
        while self.receipts_order.len() > self.limits.receipts {
            if let Some(old) = self.receipts_order.pop_front() {
                self.receipts.remove(&old);
            }
        }
    }

    // -- blobs --

    /// Blobs by versioned hash, in the order asked.
    pub fn blobs(&mut self, block: &L1BlockRef, hashes: &[B256]) -> Fetch<Vec<Arc<Vec<u8>>>> {
        let found: Option<Vec<_>> = hashes.iter().map(|h| self.blobs.get(h).cloned()).collect();
        match found {
            Some(all) => Ok(all),
            None => Err(self.request(FetchRequest::Blobs { block: *block, hashes: hashes.to_vec() })),
        }
    }

    /// Blobs arrived (already checked against their versioned hashes by the I/O layer).
    pub fn insert_blobs(&mut self, block: &L1BlockRef, hashes: &[B256], blobs: Vec<Vec<u8>>) {
        self.in_flight.remove(&FetchRequest::Blobs { block: *block, hashes: hashes.to_vec() });
        for (h, b) in hashes.iter().zip(blobs) {
            self.blob_bytes += b.len();
            if let Some(old) = self.blobs.insert(*h, Arc::new(b)) {
                self.blob_bytes -= old.len();
            }
        }
        if self.blob_bytes > self.limits.blob_bytes {
            // Blobs are consumed right after arrival; anything left over is stale.
            let keep: HashSet<&B256> = hashes.iter().collect();
            self.blobs.retain(|h, _| keep.contains(h));
            self.blob_bytes = self.blobs.values().map(|b| b.len()).sum();
        }
    }

    /// Drops blobs once retrieval has decoded them.
    pub fn release_blobs(&mut self, hashes: &[B256]) {
        for h in hashes {
            if let Some(b) = self.blobs.remove(h) {
                self.blob_bytes -= b.len();
            }
        }
    }

    // -- L2 --

    pub fn insert_l2(&mut self, data: L2BlockData) {
        let r = data.block_ref;
        self.in_flight.remove(&FetchRequest::L2BlockByNumber(r.number));
        self.in_flight.remove(&FetchRequest::L2BlockByHash(r.hash));
        self.l2_canonical.insert(r.number, r.hash);
        if self.l2_by_hash.insert(r.hash, Arc::new(data)).is_none() {
            self.l2_order.push_back(r.hash);
        }
        while self.l2_order.len() > self.limits.l2_blocks {
            if let Some(old) = self.l2_order.pop_front() {
                if let Some(d) = self.l2_by_hash.remove(&old) {
                    if self.l2_canonical.get(&d.block_ref.number) == Some(&old) {
                        self.l2_canonical.remove(&d.block_ref.number);
                    }
                }
            }
        }
    }

    pub fn l2_by_number(&mut self, n: u64) -> Fetch<Arc<L2BlockData>> {
        if let Some(d) = self.l2_canonical.get(&n).and_then(|h| self.l2_by_hash.get(h)) {
            return Ok(d.clone());
        }
        Err(self.request(FetchRequest::L2BlockByNumber(n)))
    }

    /// Asks the engine again for its block at `n` (its chain may have moved since it was cached).
    pub fn refetch_l2_at(&mut self, n: u64) -> Miss {
        self.l2_canonical.remove(&n);
        self.request(FetchRequest::L2BlockByNumber(n))
    }

    pub fn l2_by_hash(&mut self, h: B256) -> Fetch<Arc<L2BlockData>> {
        if let Some(d) = self.l2_by_hash.get(&h) {
            return Ok(d.clone());
        }
        Err(self.request(FetchRequest::L2BlockByHash(h)))
    }

    /// A labelled L2 head, as last fetched since `forget_l2_labels`.
    pub fn l2_by_label(&mut self, label: L2Label) -> Fetch<Option<L2BlockRef>> {
        if let Some(r) = self.l2_labels.get(&label) {
            return Ok(*r);
        }
        Err(self.request(FetchRequest::L2BlockByLabel(label)))
    }

    pub fn insert_l2_label(&mut self, label: L2Label, data: Option<L2BlockData>) {
        self.in_flight.remove(&FetchRequest::L2BlockByLabel(label));
        self.l2_labels.insert(label, data.as_ref().map(|d| d.block_ref));
        if let Some(d) = data {
            self.insert_l2(d);
        }
    }

    /// Labels move: drop them so the next reader fetches fresh ones.
    pub fn forget_l2_labels(&mut self) {
        self.l2_labels.clear();
    }

    /// Asks for L2 blocks by number ahead of a walk that will need them (served in batches).
    pub fn prefetch_l2(&mut self, numbers: impl Iterator<Item = u64>) {
        for n in numbers {
            if !self.l2_canonical.contains_key(&n) {
                self.request(FetchRequest::L2BlockByNumber(n));
            }
        }
    }

    /// Forgets L2 blocks above `n` from the canonical index (after a reorg or reset).
    pub fn forget_l2_above(&mut self, n: u64) {
        self.l2_canonical.retain(|k, _| *k <= n);
    }

    /// Drops L1 data of blocks below `n` the pipeline no longer needs.
    pub fn evict_l1_below(&mut self, n: u64) {
        let old: Vec<B256> = self.canonical.range(..n).map(|(_, h)| *h).collect();
        for h in old {
            self.release_body(&h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u64, parent: B256) -> BlockInfo {
        BlockInfo::new(Header {
            number: n,
            parent_hash: parent,
            timestamp: 1000 + 12 * n,
            ..Header::default()
        })
    }

    fn data() -> ChainData {
        ChainData::new(
            CacheLimits { headers: 4, ..CacheLimits::default() },
            Address([1; 20]),
            Address([2; 20]),
        )
    }

    #[test]
    fn misses_request_once_and_arrivals_serve() {
        let mut d = data();
        assert_eq!(d.header_by_number(5), Err(Miss::Pending));
        assert_eq!(d.header_by_number(5), Err(Miss::Pending));
        assert_eq!(d.poll_requests(), vec![FetchRequest::L1HeaderByNumber(5)]);
        d.insert_header(info(5, B256::ZERO));
        assert_eq!(d.header_by_number(5).unwrap().number(), 5);
        assert_eq!(d.in_flight(), 0);
        d.set_l1_limit(Some(5));
        assert_eq!(d.header_by_number(6), Err(Miss::NotFound));
    }

    #[test]
    fn header_cache_is_bounded() {
        let mut d = data();
        for n in 0..10 {
            d.insert_header(info(n, B256::ZERO));
        }
        assert_eq!(d.headers.len(), 4);
        assert!(d.header_by_number(0).is_err());
        assert!(d.header_by_number(9).is_ok());
    }

    #[test]
    fn the_l1_cache_size_sets_entries_and_keeps_byte_budgets() {
        let l = CacheLimits::default().with_l1_entries(900);
        assert_eq!((l.headers, l.bodies, l.receipts), (900, 900, 900));
        assert_eq!((l.body_bytes, l.blob_bytes, l.l2_blocks), (16 << 20, 8 << 20, 512));
        assert_eq!(CacheLimits::default().with_l1_entries(0).headers, 1);
        // Past the default 32 bodies: the entry count is the flag's.
        let mut d =
            ChainData::new(CacheLimits::default().with_l1_entries(900), Address([1; 20]), Address([2; 20]));
        for n in 0..100 {
            d.insert_block(info(n, B256::ZERO), Vec::new());
        }
        assert_eq!(d.bodies.len(), 100);
        assert_eq!(d.headers.len(), 100);
    }

    #[test]
    fn bloom_skips_receipts() {
        let mut d = data();
        let mut i = info(1, B256::ZERO);
        assert!(d.receipts(&i).unwrap().config_logs.is_empty());
        assert_eq!(d.receipts_skipped_by_bloom, 1);
        i.header.logs_bloom.accrue(&[1; 20]);
        let i = BlockInfo::new(i.header);
        assert_eq!(d.receipts(&i), Err(Miss::Pending));
        let root = i.header.receipts_root;
        assert_eq!(d.poll_requests(), vec![FetchRequest::L1Receipts { hash: i.hash, receipts_root: root }]);
        d.insert_receipts(i.hash, ReceiptsDigest { deposits: Ok(Vec::new()), config_logs: Vec::new() });
        assert_eq!(d.in_flight(), 0);
    }
}
