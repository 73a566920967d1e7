//! op-node's metrics (`op-node/metrics.Metrics`): its families with their names, types, help
//! texts and labels in a `Registry`, and the `record_*` methods the recorder and the node call.

use std::collections::BTreeMap;

use super::registry::{Id, Kind, Registry, MAX_SERIES, NAMESPACE};
use crate::derive::DeriveMetrics;
use crate::event::EventMetrics;
use crate::protocol::block_ref::{BlockId, L1BlockRef, L2BlockRef};
use crate::protocol::primitives::B256;
use crate::rpc::jsonrpc::CallRecord;
use crate::time::Now;

/// An upstream client's figures for one method, counted on the worker threads (`io::rpc_client::RpcStats`)
/// and copied in before a scrape as op-node's `rpc_client_*` families.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RpcClientStats {
    /// Which client: `l1`, `engine-api` or `l1-beacon`.
    pub rpc: &'static str,
    pub method: String,
    pub requests: u64,
    /// Durations per bucket of `RPC_BUCKETS` (not cumulative), their sum and count.
    pub duration_buckets: Vec<u64>,
    pub duration_sum: f64,
    pub duration_count: u64,
    /// Responses by error label (`<nil>`, `rpc_<code>`, `http_<status>`).
    pub responses: Vec<(String, u64)>,
}

/// Process statistics as Prometheus' process collector reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcStats {
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub resident_bytes: f64,
    /// Virtual memory size.
    pub virtual_bytes: f64,
    /// Process start, in unix seconds.
    pub start_time_seconds: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft descriptor limit; `+Inf` when unlimited.
    pub max_fds: f64,
}

/// Prometheus' default buckets, which op-node's RPC histograms use.
pub const RPC_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const REORG_BUCKETS: &[f64] = &[0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 20.5, 50.5, 100.5];

/// op-service's `metrics.Event`: a counter and the time it last moved.
#[derive(Debug, Clone, Copy)]
struct EventPair {
    total: Id,
    last: Id,
}

#[derive(Debug, Clone, Copy)]
struct ProcessIds {
    cpu: Id,
    resident: Id,
    virt: Id,
    start: Id,
    open_fds: Id,
    max_fds: Id,
}

/// op-node's metrics (`op-node/metrics.Metrics`), single-threaded.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The families; parts with metrics op-node lacks may register more here.
    pub registry: Registry,
    info: Id,
    up: Id,
    rpc_requests: Id,
    rpc_duration: Id,
    rpc_responses: Id,
    rpc_params_size: Id,
    rpc_results_size: Id,
    rpc_notifications: Id,
    derivation_idle: Id,
    pipeline_resets: EventPair,
    unsafe_payloads: EventPair,
    derivation_errors: EventPair,
    sequencing_errors: EventPair,
    publishing_errors: EventPair,
    sequencer_active: Id,
    events_emitted: Id,
    events_processed: Id,
    events_process_time: Id,
    events_total_enqueued: Id,
    derived_batches: EventPair,
    sequencer_resets: EventPair,
    unsafe_buffer_len: Id,
    unsafe_buffer_mem: Id,
    refs_number: Id,
    refs_time: Id,
    refs_hash: Id,
    refs_seqnr: Id,
    refs_latency: Id,
    l1_reorg_depth: Id,
    txs_sequenced: Id,
    peer_count: Id,
    head_channel: EventPair,
    channel_timeout: EventPair,
    frame_added: EventPair,
    channel_input_bytes: Id,
    bloom_skips: Id,
    cache_bytes: Id,
    /// Last hash seen per ref name, so latency is measured once per block (op-service).
    latency_seen: BTreeMap<String, B256>,
    process: Option<ProcessIds>,
    loop_wakeups: Option<Id>,
    follow_source: Option<Id>,
    discovery: Option<[Id; 5]>,
    rpc_client: Option<[Id; 3]>,
    /// The pipeline's counters as last mirrored.
    derive_seen: DeriveMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers op-node's families.
    pub fn new() -> Self {
        use Kind::*;
        let mut r = Registry::default();
        let n = |s: &str| format!("{NAMESPACE}_{s}");
        let event =
            |r: &mut Registry, name: &str, display: &str, labels: &'static [&'static str]| EventPair {
                total: r.register(
                    n(&format!("{name}_total")),
                    format!("Count of {display} events"),
                    Counter,
                    labels,
                ),
                last: r.register(
                    n(&format!("last_{name}_unix")),
                    format!("Timestamp of last {display} event"),
                    Gauge,
                    labels,
                ),
            };
        const RPC: &[&str] = &["rpc", "method"];
        const REF: &[&str] = &["layer", "type"];
        Metrics {
            info: r.register(
                n("info"),
                "Pseudo-metric tracking version and config info",
                Gauge,
                &["version"],
            ),
            up: r.register(n("up"), "1 if the op node has finished starting up", Gauge, &[]),
            rpc_requests: r.register(
                n("rpc_server_requests_total"),
                "Total requests to the RPC server",
                Counter,
                RPC,
            ),
            rpc_duration: r.register(
                n("rpc_server_request_duration_seconds"),
                "Histogram of RPC server request durations",
                Histogram(RPC_BUCKETS),
                RPC,
            ),
            rpc_responses: r.register(
                n("rpc_server_responses_total"),
                "Total RPC request responses served",
                Counter,
                &["rpc", "method", "error"],
            ),
            rpc_params_size: r.register(
                n("rpc_server_params_size_total"),
                "Total bytes of RPC params received",
                Counter,
                RPC,
            ),
            rpc_results_size: r.register(
                n("rpc_server_results_size_total"),
                "Total bytes of RPC results sent back",
                Counter,
                RPC,
            ),
            rpc_notifications: r.register(
                n("rpc_client_notifications_received_total"),
                "Total RPC notifications received",
                Counter,
                RPC,
            ),
            derivation_idle: r.register(
                n("derivation_idle"),
                "1 if the derivation pipeline is idle",
                Gauge,
                &[],
            ),
            pipeline_resets: event(&mut r, "pipeline_resets", "derivation pipeline resets", &[]),
            unsafe_payloads: event(&mut r, "unsafe_payloads", "unsafe payloads", &[]),
            derivation_errors: event(&mut r, "derivation_errors", "derivation errors", &[]),
            sequencing_errors: event(&mut r, "sequencing_errors", "sequencing errors", &[]),
            publishing_errors: event(&mut r, "publishing_errors", "p2p publishing errors", &[]),
            sequencer_active: r.register(
                n("sequencer_active"),
                "1 if sequencer active, 0 otherwise",
                Gauge,
                &[],
            ),
            events_emitted: r.register(
                n("events_emitted"),
                "number of emitted events",
                Counter,
                &["event_type"],
            ),
            events_processed: r.register(
                n("events_processed"),
                "number of processed events",
                Counter,
                &["event_type"],
            ),
            events_process_time: r.register(
                n("events_process_time"),
                "total duration in seconds of processed events",
                Counter,
                &["event_type"],
            ),
            events_total_enqueued: r.register(
                n("events_total_enqueued"),
                "Gauge representing the current total number of enqueued events",
                Gauge,
                &[],
            ),
            derived_batches: event(&mut r, "derived_batches", "derived batches", &["type"]),
            sequencer_resets: event(&mut r, "sequencer_resets", "sequencer resets", &[]),
            unsafe_buffer_len: r.register(
                n("unsafe_payloads_buffer_len"),
                "Number of buffered L2 unsafe payloads",
                Gauge,
                &[],
            ),
            unsafe_buffer_mem: r.register(
                n("unsafe_payloads_buffer_mem_size"),
                "Total estimated memory size of buffered L2 unsafe payloads",
                Gauge,
                &[],
            ),
            refs_number: r.register(
                n("refs_number"),
                "Gauge representing the different L1/L2 reference block numbers",
                Gauge,
                REF,
            ),
            refs_time: r.register(
                n("refs_time"),
                "Gauge representing the different L1/L2 reference block timestamps",
                Gauge,
                REF,
            ),
            refs_hash: r.register(
                n("refs_hash"),
                "Gauge representing the different L1/L2 reference block hashes truncated to float values",
                Gauge,
                REF,
            ),
            refs_seqnr: r.register(
                n("refs_seqnr"),
                "Gauge representing the different L2 reference sequence numbers",
                Gauge,
                &["type"],
            ),
            refs_latency: r.register(
                n("refs_latency"),
                "Gauge representing the different L1/L2 reference block timestamps minus current time, in seconds",
                Gauge,
                REF,
            ),
            l1_reorg_depth: r.register(
                n("l1_reorg_depth"),
                "Histogram of L1 Reorg Depths",
                Histogram(REORG_BUCKETS),
                &[],
            ),
            txs_sequenced: r.register(
                n("transactions_sequenced_total"),
                "Count of total transactions sequenced",
                Counter,
                &["type"],
            ),
            peer_count: r.register(
                n("p2p_peer_count"),
                "Count of currently connected p2p peers",
                Gauge,
                &[],
            ),
            head_channel: event(
                &mut r,
                "head_channel",
                "New channel at the front of the channel bank",
                &[],
            ),
            channel_timeout: event(&mut r, "channel_timeout", "Channel has timed out", &[]),
            frame_added: event(
                &mut r,
                "frame_added",
                "New frame ingested in the channel bank",
                &[],
            ),
            channel_input_bytes: r.register(
                n("channel_input_bytes"),
                "Number of compressed bytes added to the channel",
                Counter,
                &[],
            ),
            bloom_skips: r.register(
                "op_lite_receipts_fetches_skipped_by_bloom_total",
                "L1 receipt fetches avoided because the block's logs bloom rules out deposits and config updates",
                Counter,
                &[],
            ),
            cache_bytes: r.register(
                "op_lite_chain_data_cache_bytes",
                "Approximate bytes held by the L1 and L2 chain-data caches",
                Gauge,
                &[],
            ),
            registry: r,
            latency_seen: BTreeMap::new(),
            process: None,
            loop_wakeups: None,
            follow_source: None,
            discovery: None,
            rpc_client: None,
            derive_seen: DeriveMetrics::default(),
        }
    }

    /// Renders all metrics in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.registry.render(&mut out);
        out
    }

    fn record_event(&mut self, e: EventPair, labels: &[&str], now: Now) {
        self.registry.inc(e.total, labels);
        self.registry.set(e.last, labels, now.unix_ms as f64 / 1000.0);
    }

    /// Sets the version info pseudo-metric.
    pub fn record_info(&mut self, version: &str) {
        self.registry.set(self.info, &[version], 1.0);
    }

    /// Marks the node as started.
    pub fn record_up(&mut self) {
        self.registry.set(self.up, &[], 1.0);
    }

    /// Sets whether the derivation pipeline is idle.
    pub fn set_derivation_idle(&mut self, idle: bool) {
        self.registry.set(self.derivation_idle, &[], f64::from(u8::from(idle)));
    }

    /// Sets whether the sequencer is active.
    pub fn set_sequencer_state(&mut self, active: bool) {
        self.registry.set(self.sequencer_active, &[], f64::from(u8::from(active)));
    }

    /// Counts a derivation pipeline reset.
    pub fn record_pipeline_reset(&mut self, now: Now) {
        self.record_event(self.pipeline_resets, &[], now);
    }

    /// Counts a derivation error.
    pub fn record_derivation_error(&mut self, now: Now) {
        self.record_event(self.derivation_errors, &[], now);
    }

    /// Counts a sequencing error.
    pub fn record_sequencing_error(&mut self, now: Now) {
        self.record_event(self.sequencing_errors, &[], now);
    }

    /// Counts a p2p publishing error.
    pub fn record_publishing_error(&mut self, now: Now) {
        self.record_event(self.publishing_errors, &[], now);
    }

    /// Counts a sequencer reset.
    pub fn record_sequencer_reset(&mut self, now: Now) {
        self.record_event(self.sequencer_resets, &[], now);
    }

    /// Counts an unsafe payload received (gossip or RPC) and records it as ref
    /// `received_payload`.
    pub fn record_received_unsafe_payload(&mut self, block: BlockId, timestamp: u64, now: Now) {
        self.record_event(self.unsafe_payloads, &[], now);
        self.record_ref("l2", "received_payload", block.number, timestamp, &block.hash, now);
    }

    /// Records the unsafe-payload buffer's size and its next block.
    pub fn record_unsafe_payloads_buffer(&mut self, len: u64, mem: u64, next: BlockId, now: Now) {
        self.record_ref("l2", "l2_buffer_unsafe", next.number, 0, &next.hash, now);
        self.set_unsafe_payloads_buffer(len, mem);
    }

    /// Sets the unsafe-payload buffer's size (an empty buffer has no next block to record).
    pub fn set_unsafe_payloads_buffer(&mut self, len: u64, mem: u64) {
        self.registry.set(self.unsafe_buffer_len, &[], len as f64);
        self.registry.set(self.unsafe_buffer_mem, &[], mem as f64);
    }

    /// Mirrors the derivation pipeline's counters: what grew since the last call is counted
    /// (as op-node's `Record*` calls would have), with `now` as the time of the last event.
    pub fn sync_derive(&mut self, d: &DeriveMetrics, now: Now) {
        let seen = std::mem::replace(&mut self.derive_seen, *d);
        let grew = |new: u64, old: u64| new.saturating_sub(old);
        let pairs = [
            (
                self.derived_batches,
                &["singular"][..],
                grew(d.derived_batches_singular, seen.derived_batches_singular),
            ),
            (self.derived_batches, &["span"][..], grew(d.derived_batches_span, seen.derived_batches_span)),
            (self.pipeline_resets, &[][..], grew(d.pipeline_resets, seen.pipeline_resets)),
            (self.frame_added, &[][..], grew(d.frames, seen.frames)),
            (self.channel_timeout, &[][..], grew(d.channel_timeouts, seen.channel_timeouts)),
        ];
        for (e, labels, n) in pairs {
            if n > 0 {
                self.registry.add(e.total, labels, n as f64);
                self.registry.set(e.last, labels, now.unix_ms as f64 / 1000.0);
            }
        }
        let bytes = grew(d.channel_input_bytes, seen.channel_input_bytes);
        self.registry.add(self.channel_input_bytes, &[], bytes as f64);
    }

    /// Sets op-lite's chain-data figures: receipt fetches the bloom filter saved (a count kept
    /// by the caches) and the caches' size.
    pub fn set_chain_data(&mut self, receipts_skipped_by_bloom: u64, cache_bytes: usize) {
        self.registry.set(self.bloom_skips, &[], receipts_skipped_by_bloom as f64);
        self.registry.set(self.cache_bytes, &[], cache_bytes as f64);
    }

    /// Counts a derived batch by type (`singular`, `span`).
    pub fn record_derived_batches(&mut self, batch_type: &str, now: Now) {
        self.record_event(self.derived_batches, &[batch_type], now);
    }

    /// Records an L1 reorg's depth.
    pub fn record_l1_reorg_depth(&mut self, depth: u64) {
        self.registry.observe(self.l1_reorg_depth, &[], depth as f64);
    }

    /// Counts the transactions of a sequenced block.
    pub fn count_sequenced_txs_in_block(&mut self, txs: u64, deposits: u64) {
        self.registry.add(self.txs_sequenced, &["deposits"], deposits as f64);
        self.registry.add(self.txs_sequenced, &["txns"], txs.saturating_sub(deposits) as f64);
    }

    /// Sets the number of connected p2p peers.
    pub fn set_peer_count(&mut self, peers: usize) {
        self.registry.set(self.peer_count, &[], peers as f64);
    }

    /// Counts compressed bytes added to a channel.
    pub fn record_channel_input_bytes(&mut self, n: usize) {
        self.registry.add(self.channel_input_bytes, &[], n as f64);
    }

    /// Counts a new channel at the front of the channel bank.
    pub fn record_head_channel_opened(&mut self, now: Now) {
        self.record_event(self.head_channel, &[], now);
    }

    /// Counts a channel time-out.
    pub fn record_channel_timed_out(&mut self, now: Now) {
        self.record_event(self.channel_timeout, &[], now);
    }

    /// Counts a frame added to the channel bank.
    pub fn record_frame(&mut self, now: Now) {
        self.record_event(self.frame_added, &[], now);
    }

    /// Records a block reference (op-service `RecordRef`): number, time, truncated hash, and
    /// the latency once per new hash.
    pub fn record_ref(&mut self, layer: &str, name: &str, num: u64, timestamp: u64, hash: &B256, now: Now) {
        let labels = [layer, name];
        self.registry.set(self.refs_number, &labels, num as f64);
        if timestamp != 0 {
            self.registry.set(self.refs_time, &labels, timestamp as f64);
            if self.latency_seen.get(name) != Some(hash) {
                let room = self.latency_seen.len() < MAX_SERIES;
                match self.latency_seen.get_mut(name) {
                    Some(seen) => *seen = *hash,
                    None if room => {
                        self.latency_seen.insert(name.to_string(), *hash);
                    }
                    None => {}
                }
                let latency = timestamp as f64 - now.unix_ms as f64 / 1000.0;
                self.registry.set(self.refs_latency, &labels, latency);
            }
        }
        // op-service graphs the first 8 hash bytes (little-endian) as a plain float.
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        self.registry.set(self.refs_hash, &labels, u64::from_le_bytes(first) as f64);
    }

    /// Records an L1 block ref.
    pub fn record_l1_ref(&mut self, name: &str, r: &L1BlockRef, now: Now) {
        self.record_ref("l1", name, r.number, r.timestamp, &r.hash, now);
    }

    /// Records an L2 block ref, its L1 origin and sequence number.
    pub fn record_l2_ref(&mut self, name: &str, r: &L2BlockRef, now: Now) {
        self.record_ref("l2", name, r.number, r.timestamp, &r.hash, now);
        self.record_ref("l1_origin", name, r.l1origin.number, 0, &r.l1origin.hash, now);
        self.registry.set(self.refs_seqnr, &[name], r.sequence_number as f64);
    }

    /// Records one served RPC call (op-service's RPC recorder, server `main`). Unknown method
    /// names are counted as `unknown` to keep label sets bounded.
    pub fn record_rpc_call(&mut self, call: &CallRecord<'_>) {
        let method = if call.served { call.method } else { "unknown" };
        let labels = ["main", method];
        if call.notification {
            self.registry.inc(self.rpc_notifications, &labels);
            return;
        }
        self.registry.inc(self.rpc_requests, &labels);
        self.registry.add(self.rpc_params_size, &labels, call.params_bytes as f64);
        self.registry.observe(self.rpc_duration, &labels, call.took.as_secs_f64());
        let error = match call.error_code {
            None => {
                self.registry.add(self.rpc_results_size, &labels, call.result_bytes as f64);
                "<nil>".to_string()
            }
            Some(code) => format!("rpc_{code}"),
        };
        self.registry.inc(self.rpc_responses, &["main", method, &error]);
    }

    /// Copies the event system's counters (emitted, processed, processing time per event name)
    /// and its queue length.
    pub fn update_events(&mut self, events: &EventMetrics, enqueued: usize) {
        for (name, c) in events.iter() {
            let l = [name];
            self.registry.set(self.events_emitted, &l, c.emitted as f64);
            self.registry.set(self.events_processed, &l, c.processed as f64);
            self.registry.set(self.events_process_time, &l, c.processing_time.as_secs_f64());
        }
        self.registry.set(self.events_total_enqueued, &[], enqueued as f64);
    }

    /// op-lite's own: the event loop's wake-ups by cause (`kind` deadline or io, `what` the
    /// deadline's owner or the socket kind), registered on first use.
    /// discv5's figures, mirrored at scrape time (op-node has no discovery metrics of its own:
    /// these are op-lite's), registered when discovery runs.
    pub fn set_discovery(
        &mut self,
        table: usize,
        d: &crate::p2p::discovery::DiscoveryStats,
        s: &crate::p2p::discovery::session::SessionStats,
    ) {
        let r = &mut self.registry;
        let ids = *self.discovery.get_or_insert_with(|| {
            [
                r.register("op_lite_discv5_table_nodes", "Nodes in the discv5 routing table", Kind::Gauge, &[]),
                r.register("op_lite_discv5_lookups_total", "discv5 lookups started", Kind::Counter, &[]),
                r.register(
                    "op_lite_discv5_records_total",
                    "Node records seen by discv5, by outcome: dial (passed the chain filter), filtered (another chain or no TCP port), invalid",
                    Kind::Counter,
                    &["outcome"],
                ),
                r.register(
                    "op_lite_discv5_packets_total",
                    "discv5 packets, by kind: in, dropped (malformed, unsolicited, replayed), whoareyou_sent, handshake_in, handshake_out",
                    Kind::Counter,
                    &["kind"],
                ),
                r.register(
                    "op_lite_discv5_address_updates_total",
                    "Times our node record took the address other nodes see us at (a record without an IP)",
                    Kind::Counter,
                    &[],
                ),
            ]
        });
        r.set(ids[0], &[], table as f64);
        r.set(ids[4], &[], d.address_updates as f64);
        r.set(ids[1], &[], d.lookups as f64);
        for (k, v) in [("dial", d.found), ("filtered", d.filtered_out), ("invalid", d.records_invalid)] {
            r.set(ids[2], &[k], v as f64);
        }
        for (k, v) in [
            ("in", s.packets_in),
            ("dropped", s.packets_dropped),
            ("whoareyou_sent", s.whoareyou_sent),
            ("handshake_in", s.handshakes_in),
            ("handshake_out", s.handshakes_out),
        ] {
            r.set(ids[3], &[k], v as f64);
        }
    }

    /// One follow-source poll's result (registered by the first, as only a node in follow mode
    /// has them).
    pub fn record_follow_source_request(&mut self, result: &str) {
        let r = &mut self.registry;
        let id = *self.follow_source.get_or_insert_with(|| {
            r.register(
                format!("{NAMESPACE}_follow_source_requests_total"),
                "Follow source requests by result",
                Kind::Counter,
                &["result"],
            )
        });
        r.inc(id, &[result]);
    }

    pub fn set_loop_wakeups(&mut self, wakeups: &[(&'static str, &'static str, u64)]) {
        if wakeups.is_empty() {
            return;
        }
        let r = &mut self.registry;
        let id = *self.loop_wakeups.get_or_insert_with(|| {
            r.register(
                "op_lite_loop_wakeups_total",
                "Times op-lite's event loop woke from poll, by cause: a deadline (what: its owner) or io (what: the source).",
                Kind::Counter,
                &["kind", "what"],
            )
        });
        for (kind, what, n) in wakeups {
            r.set(id, &[kind, what], *n as f64);
        }
    }

    /// op-node's RPC client metrics (`rpc_client_requests_total`, `..._request_duration_seconds`,
    /// `..._responses_total`), mirrored from counts the clients keep; registered once a client
    /// has made a request.
    pub fn set_rpc_clients(&mut self, stats: &[RpcClientStats]) {
        if stats.is_empty() {
            return;
        }
        let r = &mut self.registry;
        let n = |s: &str| format!("{NAMESPACE}_{s}");
        use Kind::{Counter, Histogram};
        let [requests, duration, responses] = *self.rpc_client.get_or_insert_with(|| {
            [
                r.register(
                    n("rpc_client_requests_total"),
                    "Total RPC requests initiated by the opnode's RPC client",
                    Counter,
                    &["rpc", "method"],
                ),
                r.register(
                    n("rpc_client_request_duration_seconds"),
                    "Histogram of RPC client request durations",
                    Histogram(RPC_BUCKETS),
                    &["rpc", "method"],
                ),
                r.register(
                    n("rpc_client_responses_total"),
                    "Total RPC request responses received by the opnode's RPC client",
                    Counter,
                    &["rpc", "method", "error"],
                ),
            ]
        });
        for s in stats {
            let l = [s.rpc, s.method.as_str()];
            r.set(requests, &l, s.requests as f64);
            r.set_histogram(duration, &l, &s.duration_buckets, s.duration_sum, s.duration_count);
            for (err, count) in &s.responses {
                r.set(responses, &[s.rpc, s.method.as_str(), err.as_str()], *count as f64);
            }
        }
    }

    /// Sets the process statistics (registered on first use, so hosts without `/proc` do not
    /// report zeros).
    pub fn set_process(&mut self, p: &ProcStats) {
        let r = &mut self.registry;
        let ids = *self.process.get_or_insert_with(|| ProcessIds {
            cpu: r.register(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                Kind::Counter,
                &[],
            ),
            resident: r.register(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                Kind::Gauge,
                &[],
            ),
            virt: r.register(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                Kind::Gauge,
                &[],
            ),
            start: r.register(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Kind::Gauge,
                &[],
            ),
            open_fds: r.register("process_open_fds", "Number of open file descriptors.", Kind::Gauge, &[]),
            max_fds: r.register(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                Kind::Gauge,
                &[],
            ),
        });
        r.set(ids.cpu, &[], p.cpu_seconds);
        r.set(ids.resident, &[], p.resident_bytes);
        r.set(ids.virt, &[], p.virtual_bytes);
        r.set(ids.start, &[], p.start_time_seconds);
        r.set(ids.open_fds, &[], p.open_fds);
        r.set(ids.max_fds, &[], p.max_fds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn mirrored_counters_count_what_grew() {
        let now = crate::time::test_now();
        let mut m = Metrics::new();
        let mut d = DeriveMetrics {
            derived_batches_span: 3,
            frames: 5,
            pipeline_resets: 1,
            channel_input_bytes: 100,
            ..DeriveMetrics::default()
        };
        m.sync_derive(&d, now);
        d.derived_batches_span = 4;
        m.sync_derive(&d, now.advance(Duration::from_secs(1)));
        m.sync_derive(&d, now.advance(Duration::from_secs(2)));
        m.set_chain_data(7, 1234);
        m.set_unsafe_payloads_buffer(2, 300);
        let text = m.render();
        for line in [
            "op_node_default_derived_batches_total{type=\"span\"} 4",
            "op_node_default_last_derived_batches_unix{type=\"span\"} 1700000001",
            "op_node_default_frame_added_total 5",
            "op_node_default_pipeline_resets_total 1",
            "op_node_default_channel_input_bytes 100",
            "op_node_default_unsafe_payloads_buffer_len 2",
            "op_lite_receipts_fetches_skipped_by_bloom_total 7",
            "op_lite_chain_data_cache_bytes 1234",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("type=\"singular\""));
    }

    #[test]
    fn rpc_client_figures_render_with_op_node_names() {
        let mut m = Metrics::new();
        m.set_rpc_clients(&[]);
        assert!(!m.render().contains("rpc_client"));
        let mut buckets = vec![0; RPC_BUCKETS.len()];
        buckets[1] = 2;
        buckets[4] = 1;
        let s = RpcClientStats {
            rpc: "l1",
            method: "eth_getBlockByNumber".into(),
            requests: 4,
            duration_buckets: buckets,
            duration_sum: 0.12,
            duration_count: 3,
            responses: vec![("<nil>".into(), 2), ("rpc_-32000".into(), 1)],
        };
        m.set_rpc_clients(&[s]);
        let text = m.render();
        for line in [
            "# TYPE op_node_default_rpc_client_requests_total counter",
            "op_node_default_rpc_client_requests_total{rpc=\"l1\",method=\"eth_getBlockByNumber\"} 4",
            "# TYPE op_node_default_rpc_client_request_duration_seconds histogram",
            "op_node_default_rpc_client_request_duration_seconds_bucket{rpc=\"l1\",method=\"eth_getBlockByNumber\",le=\"0.005\"} 0",
            "op_node_default_rpc_client_request_duration_seconds_bucket{rpc=\"l1\",method=\"eth_getBlockByNumber\",le=\"0.01\"} 2",
            "op_node_default_rpc_client_request_duration_seconds_bucket{rpc=\"l1\",method=\"eth_getBlockByNumber\",le=\"0.1\"} 3",
            "op_node_default_rpc_client_request_duration_seconds_bucket{rpc=\"l1\",method=\"eth_getBlockByNumber\",le=\"+Inf\"} 3",
            "op_node_default_rpc_client_request_duration_seconds_sum{rpc=\"l1\",method=\"eth_getBlockByNumber\"} 0.12",
            "op_node_default_rpc_client_responses_total{rpc=\"l1\",method=\"eth_getBlockByNumber\",error=\"<nil>\"} 2",
            "op_node_default_rpc_client_responses_total{rpc=\"l1\",method=\"eth_getBlockByNumber\",error=\"rpc_-32000\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn loop_wakeups_by_cause() {
        let mut m = Metrics::new();
        m.set_loop_wakeups(&[]);
        assert!(!m.render().contains("op_lite_loop_wakeups_total"));
        m.set_loop_wakeups(&[("deadline", "gossipsub-heartbeat", 120), ("io", "worker", 7)]);
        m.set_loop_wakeups(&[("deadline", "gossipsub-heartbeat", 121), ("io", "worker", 7)]);
        let text = m.render();
        for line in [
            "# TYPE op_lite_loop_wakeups_total counter",
            "op_lite_loop_wakeups_total{kind=\"deadline\",what=\"gossipsub-heartbeat\"} 121",
            "op_lite_loop_wakeups_total{kind=\"io\",what=\"worker\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn op_node_names_and_records() {
        let now = crate::time::test_now();
        let mut m = Metrics::new();
        m.record_info("v1.2.3-abc");
        m.record_up();
        m.record_pipeline_reset(now);
        m.record_derived_batches("span", now);
        m.record_l1_reorg_depth(3);
        let l2 =
            L2BlockRef { number: 10, timestamp: now.unix() - 4, sequence_number: 2, ..L2BlockRef::default() };
        m.record_l2_ref("l2_unsafe", &l2, now);
        m.record_rpc_call(&CallRecord {
            method: "optimism_version",
            served: true,
            notification: false,
            params_bytes: 2,
            result_bytes: 30,
            error_code: None,
            took: Duration::from_millis(3),
        });
        m.record_rpc_call(&CallRecord {
            method: "x_attack\"label",
            served: false,
            notification: false,
            params_bytes: 0,
            result_bytes: 0,
            error_code: Some(-32601),
            took: Duration::ZERO,
        });
        let text = m.render();
        for line in [
            "op_node_default_up 1",
            "op_node_default_info{version=\"v1.2.3-abc\"} 1",
            "op_node_default_pipeline_resets_total 1",
            "op_node_default_last_pipeline_resets_unix 1700000000",
            "# HELP op_node_default_derived_batches_total Count of derived batches events",
            "op_node_default_derived_batches_total{type=\"span\"} 1",
            "op_node_default_l1_reorg_depth_bucket{le=\"3.5\"} 1",
            "op_node_default_refs_number{layer=\"l2\",type=\"l2_unsafe\"} 10",
            "op_node_default_refs_latency{layer=\"l2\",type=\"l2_unsafe\"} -4",
            "op_node_default_refs_seqnr{type=\"l2_unsafe\"} 2",
            "op_node_default_refs_number{layer=\"l1_origin\",type=\"l2_unsafe\"} 0",
            "op_node_default_rpc_server_requests_total{rpc=\"main\",method=\"optimism_version\"} 1",
            "op_node_default_rpc_server_request_duration_seconds_bucket{rpc=\"main\",method=\"optimism_version\",le=\"0.005\"} 1",
            "op_node_default_rpc_server_responses_total{rpc=\"main\",method=\"optimism_version\",error=\"<nil>\"} 1",
            "op_node_default_rpc_server_responses_total{rpc=\"main\",method=\"unknown\",error=\"rpc_-32601\"} 1",
            "op_node_default_p2p_peer_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("attack"));
        assert!(!text.contains("process_"));
        m.set_process(&ProcStats {
            cpu_seconds: 1.5,
            resident_bytes: 4096.0,
            virtual_bytes: 8192.0,
            start_time_seconds: 1.7e9,
            open_fds: 9.0,
            max_fds: f64::INFINITY,
        });
        let text = m.render();
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n"));
        assert!(text.contains("process_max_fds +Inf\n"));
    }
}
