//! A blocking JSON-RPC 2.0 client over ureq, for the worker threads: single calls and batches,
//! optional JWT (engine), optional extra headers, a response size limit, and errors split into
//! JSON-RPC error objects and transport failures. Clients may share a rate limiter (a global
//! limit across worker threads) and an `RpcStats`, where they count their requests for op-node's
//! `rpc_client_*` metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::metrics::catalogue::{RpcClientStats, RPC_BUCKETS};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// Largest JSON-RPC response read from L1 or the engine. The largest legitimate ones are a
/// full L1 block with its transactions or its receipts: at 60M gas, log data (8 gas a byte) or
/// calldata (10 gas a byte at the EIP-7623 floor) stay under 7.5 MB, 15 MB as hex. A response
/// past it is refused while it is read; memory held meanwhile stays under twice this.
pub const MAX_RESPONSE_BYTES: u64 = 32 << 20;

/// Each connection's read buffer (also the largest response head read) and write buffer.
/// ureq's defaults, 128 KiB each (and 64 KiB of head), are zero-filled when a connection is
/// first used: with an L1 pool of up to --l1.max-concurrency threads, each with connections of
/// its own, they were over 1 MB of the devnet node's steady RSS (10.5 -> 9.1 MB at 8 KiB
/// each). A JSON-RPC or beacon response head is a few hundred bytes; bodies stream through the
/// read buffer into a vector of their own, requests through the write buffer.
pub const READ_BUFFER: usize = 16 * 1024;
pub const WRITE_BUFFER: usize = 8 * 1024;

/// An HTTP agent for upstream `urls` (one endpoint and its fallbacks): `timeout` per call,
/// statuses as responses, two idle connections, the buffers above, op-lite's user agent, and
/// TLS with the system's roots when any URL is https.
pub(super) fn agent<'a>(timeout: Duration, urls: impl IntoIterator<Item = &'a str>) -> ureq::Agent {
    let builder = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_idle_connections(2)
        .input_buffer_size(READ_BUFFER)
        .output_buffer_size(WRITE_BUFFER)
        .max_response_header_size(READ_BUFFER)
        .user_agent(concat!("op-lite/", env!("CARGO_PKG_VERSION")));
    #[cfg(feature = "tls")]
    let builder = builder.tls_config(super::tls::config(super::tls::any_https(urls)));
    #[cfg(not(feature = "tls"))]
    let _ = urls;
    builder.build().into()
}

/// Bytes of a non-JSON error body quoted in the error message.
const MAX_ERROR_BODY: usize = 200;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server answered with a JSON-RPC error object.
    Rpc { code: i64, message: String },
    /// Connection, timeout, HTTP status or malformed response.
    Transport(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Rpc { code, message } => write!(f, "rpc error {code}: {message}"),
            ClientError::Transport(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// (rpc, method) pairs an `RpcStats` counts; requests of further ones are not counted. The
/// methods come from op-lite's own code, so a handful are ever used.
pub const MAX_RPC_STATS: usize = 64;
/// Error labels counted per method (JSON-RPC codes come from the server); further ones are not.
const MAX_ERROR_LABELS: usize = 16;

/// Request counts, durations and responses of the upstream clients by (rpc, method), shared by
/// the worker threads that make the requests and read by the loop at scrape time. Bounded by
/// `MAX_RPC_STATS` series of `MAX_ERROR_LABELS` error labels each.
#[derive(Debug, Clone, Default)]
pub struct RpcStats(Arc<Mutex<StatsInner>>);

#[derive(Debug, Default)]
struct StatsInner {
    series: Vec<RpcClientStats>,
    /// The first and the last L1 head the `latest` polls saw.
    l1_heads: Option<(u64, u64)>,
}

impl RpcStats {
    fn lock(&self) -> MutexGuard<'_, StatsInner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request of `method` that took `elapsed`; `response` is its error label
    /// (`<nil>` on success), `None` when nothing was answered (a transport failure).
    pub fn record(&self, rpc: &'static str, method: &str, elapsed: Duration, response: Option<&str>) {
        let mut inner = self.lock();
        let series = &mut inner.series;
        let i = match series.iter().position(|s| s.rpc == rpc && s.method == method) {
            Some(i) => i,
            None if series.len() >= MAX_RPC_STATS => return,
            None => {
                series.push(RpcClientStats {
                    rpc,
                    method: method.to_string(),
                    duration_buckets: vec![0; RPC_BUCKETS.len()],
                    ..RpcClientStats::default()
                });
                series.len() - 1
            }
        };
        let Some(s) = series.get_mut(i) else { return };
        s.requests += 1;
        let secs = elapsed.as_secs_f64();
        if let Some(b) = RPC_BUCKETS.iter().position(|b| secs <= *b) {
            s.duration_buckets[b] += 1;
        }
        s.duration_sum += secs;
        s.duration_count += 1;
        let Some(label) = response else { return };
        match s.responses.iter().position(|(l, _)| l == label) {
            Some(i) => s.responses[i].1 += 1,
            None if s.responses.len() < MAX_ERROR_LABELS => s.responses.push((label.to_string(), 1)),
            None => {}
        }
    }

    /// Every series, as last counted.
    pub fn snapshot(&self) -> Vec<RpcClientStats> {
        self.lock().series.clone()
    }

    /// Requests made by the `rpc` client, in all.
    pub fn requests(&self, rpc: &str) -> u64 {
        self.lock().series.iter().filter(|s| s.rpc == rpc).map(|s| s.requests).sum()
    }

    /// Requests made by the `rpc` client per method, most first.
    pub fn requests_by_method(&self, rpc: &str) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .lock()
            .series
            .iter()
            .filter(|s| s.rpc == rpc)
            .map(|s| (s.method.clone(), s.requests))
            .collect();
        crate::sort::sort_by(&mut v, |a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)).is_lt());
        v
    }

    /// Notes an L1 head number a `latest` poll returned.
    pub fn note_l1_head(&self, n: u64) {
        let mut inner = self.lock();
        inner.l1_heads = Some(inner.l1_heads.map_or((n, n), |(first, _)| (first, n)));
    }

    /// The first and the last L1 head number polled.
    pub fn l1_heads(&self) -> Option<(u64, u64)> {
        self.lock().l1_heads
    }
}

/// The `error` label of a response: `<nil>`, or `rpc_<code>` for a JSON-RPC error object.
fn response_label(r: &Result<Reply, ClientError>) -> Option<String> {
    match r {
        Ok(_) => Some("<nil>".into()),
        Err(ClientError::Rpc { code, .. }) => Some(format!("rpc_{code}")),
        Err(ClientError::Transport(_)) => None,
    }
}

/// A rate limiter several clients share (`--l1.rpc-rate-limit` is one limit for all L1 workers).
pub type SharedLimiter = Arc<Mutex<RateLimiter>>;

/// One endpoint.
pub struct RpcClient {
    agent: ureq::Agent,
    url: String,
    jwt: Option<[u8; 32]>,
    headers: Vec<(String, String)>,
    next_id: u64,
    limiter: Option<SharedLimiter>,
    /// Where requests are counted, under which `rpc` label.
    stats: Option<(RpcStats, &'static str)>,
    /// Largest response read (`MAX_RESPONSE_BYTES` unless set lower).
    max_response: u64,
}

/// A token bucket as Go's `rate.Limiter` (op-node's rate-limiting client): `rate` tokens a
/// second up to `burst`; a call of n requests takes n tokens and, when the bucket holds fewer,
/// waits until it would have had them (the bucket may go negative: later calls wait longer).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: usize) -> RateLimiter {
        let burst = burst.max(1) as f64;
        RateLimiter { rate: per_second, burst, tokens: burst, last: None }
    }

    /// How long a call of `n` requests made at `now` waits before it goes out.
    pub fn delay(&mut self, n: usize, now: Instant) -> Duration {
        let elapsed = self.last.map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        // A call larger than the burst takes the whole burst (it could never be served otherwise).
        self.tokens -= (n as f64).min(self.burst);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

impl RpcClient {
    pub fn new(
        url: &str,
        timeout: Duration,
        jwt: Option<[u8; 32]>,
        headers: Vec<(String, String)>,
    ) -> RpcClient {
        RpcClient {
            agent: agent(timeout, [url]),
            url: url.to_string(),
            jwt,
            headers,
            next_id: 0,
            limiter: None,
            stats: None,
            max_response: MAX_RESPONSE_BYTES,
        }
    }

    /// Refuses responses larger than `bytes` (for endpoints whose answers are small).
    pub fn with_max_response(mut self, bytes: u64) -> RpcClient {
        self.max_response = bytes.min(MAX_RESPONSE_BYTES);
        self
    }

    /// Limits this client to `per_second` requests a second, bursting up to `burst` (0: none).
    pub fn with_rate_limit(self, per_second: f64, burst: usize) -> RpcClient {
        let limiter = (per_second > 0.0).then(|| Arc::new(Mutex::new(RateLimiter::new(per_second, burst))));
        self.with_limiter(limiter)
    }

    /// Paces this client with a limiter it may share with others (`None`: no limit).
    pub fn with_limiter(mut self, limiter: Option<SharedLimiter>) -> RpcClient {
        self.limiter = limiter;
        self
    }

    /// Counts this client's requests in `stats` under the `rpc` label.
    pub fn with_stats(mut self, stats: RpcStats, rpc: &'static str) -> RpcClient {
        self.stats = Some((stats, rpc));
        self
    }

    /// Waits as the rate limit asks before `n` requests go out (the lock is not held while
    /// waiting: the bucket has already been charged).
    fn pace(&mut self, n: usize) {
        let Some(l) = &self.limiter else { return };
        let wait = l.lock().unwrap_or_else(|e| e.into_inner()).delay(n, Instant::now());
        if !wait.is_zero() {
            super::clock::sleep(wait);
        }
    }

    fn record(&self, method: &str, elapsed: Duration, response: Option<String>) {
        if let Some((stats, rpc)) = &self.stats {
            stats.record(rpc, method, elapsed, response.as_deref());
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts `body`; the response parsed as `T` (a JSON-RPC envelope or a batch of them).
    fn post<T: DeserializeOwned>(&mut self, body: &Value) -> Result<T, ClientError> {
        let mut req = self.agent.post(&self.url).header("content-type", "application/json");
        if let Some(secret) = &self.jwt {
            let iat = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            req = req.header("authorization", format!("Bearer {}", crate::protocol::jwt::token(secret, iat)));
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Transport(e.to_string()))?;
        let mut resp =
            req.send(&body[..]).map_err(|e| ClientError::Transport(format!("{}: {e}", self.url)))?;
        let status = resp.status();
        let bytes = read_body(&mut resp, self.max_response)
            .map_err(|e| ClientError::Transport(format!("{}: {e}", self.url)))?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(v),
            // A refusal in plain text (an engine's 401 for a bad JWT, a proxy's 502) says more
            // than the JSON error would; geth's client reports the body the same way.
            Err(_) if !status.is_success() => {
                let body = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]);
                let body = body.trim();
                let sep = if body.is_empty() { "" } else { ": " };
                Err(ClientError::Transport(format!("{}: HTTP {status}{sep}{body}", self.url)))
            }
            Err(e) => Err(ClientError::Transport(format!(
                "{}: HTTP {status}, malformed JSON-RPC response: {e}",
                self.url
            ))),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// One call; `result` on success.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Reply, ClientError> {
        self.pace(1);
        let id = self.id();
        let start = Instant::now();
        let resp =
            self.post::<Response>(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let result = resp.and_then(Response::result);
        self.record(method, start.elapsed(), response_label(&result));
        result
    }

    /// A batch of calls, answered in request order (the server may reorder; ids match them).
    pub fn batch(&mut self, calls: &[(&str, Value)]) -> Result<Vec<Result<Reply, ClientError>>, ClientError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.pace(calls.len());
        let first = self.next_id + 1;
        let body: Vec<Value> = calls
            .iter()
            .map(|(m, p)| {
                let id = self.id();
                json!({"jsonrpc": "2.0", "id": id, "method": m, "params": p})
            })
            .collect();
        let start = Instant::now();
        let resp = self.post::<BatchResponse>(&Value::Array(body));
        let elapsed = start.elapsed();
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                for (m, _) in calls {
                    self.record(m, elapsed, None);
                }
                return Err(e);
            }
        };
        let items = match resp {
            BatchResponse::Batch(items) => items,
            BatchResponse::Single(one) => {
                for (m, _) in calls {
                    self.record(m, elapsed, None);
                }
                // A server without batch support answers with one error object.
                return Err(one
                    .result()
                    .err()
                    .unwrap_or(ClientError::Transport("batch answered with a single object".into())));
            }
        };
        let mut out: Vec<Option<Result<Reply, ClientError>>> = (0..calls.len()).map(|_| None).collect();
        for item in items {
            let Some(idx) = item.id.and_then(|id| id.checked_sub(first)) else {
                continue;
            };
            if let Some(slot) = out.get_mut(idx as usize) {
                *slot = Some(item.result());
            }
        }
        let out: Vec<Result<Reply, ClientError>> = out
            .into_iter()
            .map(|r| r.unwrap_or(Err(ClientError::Transport("missing batch response".into()))))
            .collect();
        // Each element is one request of its method, as op-node's rate limiter counts them.
        for ((m, _), r) in calls.iter().zip(&out) {
            self.record(m, elapsed, response_label(r));
        }
        Ok(out)
    }
}

/// Reads a response body of at most `limit` bytes: refused at once when its `Content-Length`
/// says more, and while reading when it has none or it lies.
pub(super) fn read_body(resp: &mut ureq::http::Response<ureq::Body>, limit: u64) -> Result<Answer, String> {
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(format!("response of {n} bytes is larger than the limit ({limit} bytes)"));
    }
    read_counted(&mut resp.body_mut().with_config().limit(limit).reader(), declared, &ANSWERS)
}

/// Reads a body (`declared` long, when its length is known and within the limit), counting it
/// in `budget` as it arrives.
fn read_counted(
    reader: &mut impl std::io::Read,
    declared: Option<u64>,
    budget: &'static AnswerBudget,
) -> Result<Answer, String> {
    let mut answer = Answer { bytes: Vec::new(), held: 0, budget };
    // Room for a declared length up front (not touched, so not resident, until it arrives).
    answer.bytes.reserve_exact(declared.unwrap_or(0).min(budget.max) as usize);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading response: {e}")),
        };
        answer.hold(answer.bytes.len() + n)?;
        answer.bytes.extend_from_slice(&chunk[..n]);
    }
    Ok(answer)
}

/// The bytes of large upstream answers that all clients (L1, engine, beacon; every worker
/// thread) hold at once while they are read and parsed. Each answer has its limit; this bounds
/// their sum, so the L1 pool's threads each reading a hostile endpoint's huge answer hold one
/// answer's limit between them, not one each (a 50 MB answer from every call: 75.5 MB peak
/// RSS in benches/hostile.sh, against its budget of twice the limit; 37.2 MB now). An answer's
/// first MiB is not counted: everyday answers (heads, receipts, blobs) never wait on a large
/// one.
static ANSWERS: AnswerBudget = AnswerBudget::new(MAX_RESPONSE_BYTES, 1 << 20);

/// A byte count shared by the answers being read, its ceiling, and the bytes of each answer
/// left out of it.
pub(super) struct AnswerBudget {
    held: AtomicU64,
    max: u64,
    free: u64,
}

impl AnswerBudget {
    pub(super) const fn new(max: u64, free: u64) -> AnswerBudget {
        AnswerBudget { held: AtomicU64::new(0), max, free }
    }
}

/// A response body, counted in its budget until it is dropped.
#[derive(Debug)]
pub(super) struct Answer {
    bytes: Vec<u8>,
    held: u64,
    budget: &'static AnswerBudget,
}

impl std::fmt::Debug for AnswerBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} bytes", self.held.load(Ordering::Relaxed), self.max)
    }
}

impl PartialEq for Answer {
    fn eq(&self, other: &Answer) -> bool {
        self.bytes == other.bytes
    }
}

impl Answer {
    /// Counts this answer as `len` bytes from now on (it only grows), refusing past the budget.
    fn hold(&mut self, len: usize) -> Result<(), String> {
        let more = (len as u64).saturating_sub(self.budget.free).saturating_sub(self.held);
        if more == 0 {
            return Ok(());
        }
        let before = self.budget.held.fetch_add(more, Ordering::Relaxed);
        if before + more > self.budget.max {
            self.budget.held.fetch_sub(more, Ordering::Relaxed);
            return Err(format!(
                "response refused: large upstream answers being read together would pass their limit of {} bytes",
                self.budget.max
            ));
        }
        self.held += more;
        Ok(())
    }
}

impl std::ops::Deref for Answer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// A call's `result`, kept as its JSON text and parsed once, straight into the type the caller
/// wants: no `serde_json::Value` tree in between (a block with its transactions would be
/// thousands of small allocations), and one deserializer per type in the binary.
#[derive(Debug)]
pub struct Reply(Box<RawValue>);

/// Equal when the JSON texts are.
impl PartialEq for Reply {
    fn eq(&self, other: &Reply) -> bool {
        self.text() == other.text()
    }
}

impl Reply {
    /// `result` as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// Whether `result` is `null` (no such block, proof, ...).
    pub fn is_null(&self) -> bool {
        self.0.get() == "null"
    }

    /// The JSON text of `result`.
    pub fn text(&self) -> &str {
        self.0.get()
    }
}

/// One JSON-RPC response.
#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    id: Option<u64>,
    /// `None` for `null` as for a missing member: both read as `null`.
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// A batch's answer: its responses, or one error object from a server without batches.
enum BatchResponse {
    Batch(Vec<Response>),
    Single(Response),
}

// By the first byte (serde's untagged enums cannot hold a `RawValue`).
impl<'de> Deserialize<'de> for BatchResponse {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = BatchResponse;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC response or an array of them")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<BatchResponse, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(BatchResponse::Batch)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<BatchResponse, A::Error> {
                Response::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(BatchResponse::Single)
            }
        }
        d.deserialize_any(Either)
    }
}

impl Response {
    /// `result`, or the error object.
    fn result(self) -> Result<Reply, ClientError> {
        if let Some(err) = self.error {
            return Err(ClientError::Rpc { code: err.code, message: err.message });
        }
        match self.result {
            Some(r) => Ok(Reply(r)),
            None => RawValue::from_string("null".into())
                .map(Reply)
                .map_err(|e| ClientError::Transport(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::stub_http::{StubRequest, StubResponse, StubServer};

    #[test]
    fn responses_past_the_limit_are_refused() {
        let srv = StubServer::start(|r: &StubRequest| {
            let body = vec![b' '; if r.path.starts_with("/big") { 5000 } else { 1000 }];
            StubResponse { close_delimited: r.path.ends_with("/open"), ..StubResponse::json(200, body) }
        })
        .unwrap();
        let read = |path: &str| {
            let mut resp = ureq::get(&format!("{}{path}", srv.url())).call().unwrap();
            read_body(&mut resp, 1000)
        };
        assert_eq!(read("/fits").map(|b| b.len()), Ok(1000));
        assert_eq!(read("/fits/open").map(|b| b.len()), Ok(1000));
        // Declared too large: refused before reading.
        assert_eq!(read("/big"), Err("response of 5000 bytes is larger than the limit (1000 bytes)".into()));
        // No length given: refused once the limit is passed.
        assert!(read("/big/open").is_err_and(|e| e.starts_with("reading response")));
    }

    #[test]
    fn answers_being_read_share_one_budget() {
        // 100,000 bytes between them, each answer's first 10,000 not counted.
        static BUDGET: AnswerBudget = AnswerBudget::new(100_000, 10_000);
        let held = || BUDGET.held.load(Ordering::Relaxed);
        let body = vec![7u8; 70_000];
        let a = read_counted(&mut &body[..], Some(70_000), &BUDGET).unwrap();
        assert_eq!((a.len(), held()), (70_000, 60_000));
        // A second answer while the first is held: refused once the two would pass the budget,
        // and what it had counted is given back.
        let err = read_counted(&mut &body[..], None, &BUDGET).unwrap_err();
        assert!(err.starts_with("response refused") && err.contains("limit"), "{err}");
        assert_eq!(held(), 60_000);
        // Within it, both are read; small answers are not counted at all.
        let b = read_counted(&mut &body[..50_000], None, &BUDGET).unwrap();
        assert_eq!((b.len(), held()), (50_000, 100_000));
        let small = read_counted(&mut &body[..10_000], None, &BUDGET).unwrap();
        assert_eq!((small.len(), held()), (10_000, 100_000));
        // Dropping an answer gives its bytes back.
        drop((a, b, small));
        assert_eq!(held(), 0);
        assert_eq!(*read_counted(&mut &body[..], None, &BUDGET).unwrap(), body[..]);
        assert_eq!(held(), 0);
    }

    #[test]
    fn the_rate_limit_paces_calls_as_a_token_bucket() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut l = RateLimiter::new(10.0, 3);
        // The burst goes at once, then one call every 100 ms.
        assert_eq!(l.delay(3, at(0)), Duration::ZERO);
        assert_eq!(l.delay(1, at(0)), Duration::from_millis(100));
        assert_eq!(l.delay(1, at(0)), Duration::from_millis(200));
        // After a quiet second the bucket is full again (it does not grow past the burst).
        assert_eq!(l.delay(2, at(1300)), Duration::ZERO);
        assert_eq!(l.delay(2, at(1300)), Duration::from_millis(100));
        // A batch larger than the burst takes the whole burst.
        let mut l = RateLimiter::new(2.0, 2);
        assert_eq!(l.delay(20, at(0)), Duration::ZERO);
        assert_eq!(l.delay(1, at(0)), Duration::from_millis(500));
    }

    #[test]
    fn a_rate_limited_client_waits_between_calls() {
        let srv = StubServer::start(|_: &StubRequest| {
            StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)
        })
        .unwrap();
        let mut c = RpcClient::new(&srv.url(), Duration::from_secs(5), None, vec![]).with_rate_limit(20.0, 1);
        let start = Instant::now();
        for _ in 0..6 {
            c.call("eth_chainId", json!([])).unwrap();
        }
        // One at once, five more 50 ms apart.
        assert!(start.elapsed() >= Duration::from_millis(240), "{:?}", start.elapsed());
        let mut free =
            RpcClient::new(&srv.url(), Duration::from_secs(5), None, vec![]).with_rate_limit(0.0, 1);
        let start = Instant::now();
        for _ in 0..6 {
            free.call("eth_chainId", json!([])).unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(200), "{:?}", start.elapsed());
    }

    #[test]
    fn stats_count_calls_batch_elements_and_responses() {
        let srv = StubServer::start(|r: &StubRequest| {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            if body.starts_with('[') {
                let calls: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
                let answers: Vec<Value> = calls
                    .iter()
                    .map(|c| match c["params"][0].as_str() {
                        Some("bad") => json!({"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32000, "message": "x"}}),
                        _ => json!({"jsonrpc": "2.0", "id": c["id"], "result": "0x1"}),
                    })
                    .collect();
                return StubResponse::json(200, serde_json::to_string(&answers).unwrap_or_default());
            }
            match r.path.as_str() {
                "/err" => StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#),
                _ => StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#),
            }
        })
        .unwrap();
        let stats = RpcStats::default();
        let client = |path: &str| {
            RpcClient::new(&format!("{}{path}", srv.url()), Duration::from_secs(5), None, vec![])
                .with_stats(stats.clone(), "l1")
        };
        let mut ok = client("/");
        ok.call("eth_chainId", json!([])).unwrap();
        ok.call("eth_chainId", json!([])).unwrap();
        assert!(client("/err").call("eth_chainId", json!([])).is_err());
        let calls =
            [("eth_getTransactionReceipt", json!(["a"])), ("eth_getTransactionReceipt", json!(["bad"]))];
        let answers = ok.batch(&calls).unwrap();
        assert_eq!(answers[0].as_ref().map(Reply::text), Ok("\"0x1\""));
        assert_eq!(answers[1].as_ref().err(), Some(&ClientError::Rpc { code: -32000, message: "x".into() }));
        // No answer (nothing listens there): a request without a response.
        let mut down = RpcClient::new("http://127.0.0.1:1", Duration::from_secs(5), None, vec![])
            .with_stats(stats.clone(), "engine-api");
        assert!(down.call("engine_forkchoiceUpdatedV3", json!([])).is_err());

        assert_eq!(stats.requests("l1"), 5);
        assert_eq!(stats.requests("engine-api"), 1);
        assert_eq!(
            stats.requests_by_method("l1"),
            vec![("eth_chainId".into(), 3), ("eth_getTransactionReceipt".into(), 2)]
        );
        let snap = stats.snapshot();
        let get = |m: &str| snap.iter().find(|s| s.method == m).cloned().unwrap_or_default();
        assert_eq!(get("eth_chainId").responses, vec![("<nil>".into(), 2), ("rpc_-32601".into(), 1)]);
        assert_eq!(get("eth_chainId").duration_count, 3);
        assert_eq!(get("eth_chainId").duration_buckets.iter().sum::<u64>(), 3);
        assert_eq!(
            get("eth_getTransactionReceipt").responses,
            vec![("<nil>".into(), 1), ("rpc_-32000".into(), 1)]
        );
        let fcu = get("engine_forkchoiceUpdatedV3");
        assert_eq!((fcu.rpc, fcu.requests, fcu.responses.len()), ("engine-api", 1, 0));
    }

    #[test]
    fn results_are_kept_as_text_and_parsed_into_the_callers_type() {
        let srv = StubServer::start(|r: &StubRequest| match r.path.as_str() {
            "/null" => StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1,"result":null}"#),
            "/none" => StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1}"#),
            "/errnull" => StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1,"error":null,"result":[1, 2]}"#),
            "/batch-refused" => StubResponse::json(
                200,
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no batches"}}"#,
            ),
            _ => StubResponse::json(
                200,
                r#"{"jsonrpc":"2.0","id":1,"result":{"number":"0x10","x":[1,{"y":null}]}}"#,
            ),
        })
        .unwrap();
        let c = |path: &str| {
            RpcClient::new(&format!("{}{path}", srv.url()), Duration::from_secs(5), None, vec![])
        };
        let r = c("/").call("m", json!([])).unwrap();
        assert_eq!(r.text(), r#"{"number":"0x10","x":[1,{"y":null}]}"#);
        #[derive(Deserialize)]
        struct N {
            number: String,
        }
        assert_eq!(r.parse::<N>().unwrap().number, "0x10");
        assert!(r.parse::<Vec<u64>>().is_err());
        for path in ["/null", "/none"] {
            let r = c(path).call("m", json!([])).unwrap();
            assert!(r.is_null(), "{path}");
            assert_eq!(r.parse::<Option<u64>>().unwrap(), None);
        }
        assert_eq!(c("/errnull").call("m", json!([])).unwrap().parse::<Vec<u64>>().unwrap(), [1, 2]);
        let refused = c("/batch-refused").batch(&[("m", json!([])), ("m", json!([]))]);
        assert_eq!(refused, Err(ClientError::Rpc { code: -32600, message: "no batches".into() }));
    }

    #[test]
    fn stats_are_bounded() {
        let stats = RpcStats::default();
        for i in 0..MAX_RPC_STATS + 10 {
            for code in 0..MAX_ERROR_LABELS + 5 {
                stats.record("l1", &format!("m{i}"), Duration::from_millis(1), Some(&format!("rpc_{code}")));
            }
        }
        let snap = stats.snapshot();
        assert_eq!(snap.len(), MAX_RPC_STATS);
        assert!(snap.iter().all(|s| s.responses.len() == MAX_ERROR_LABELS));
        stats.note_l1_head(7);
        stats.note_l1_head(9);
        assert_eq!(stats.l1_heads(), Some((7, 9)));
    }

    #[test]
    fn a_shared_limiter_paces_clients_on_several_threads_together() {
        let srv = StubServer::start(|_: &StubRequest| {
            StubResponse::json(200, r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)
        })
        .unwrap();
        let limiter: SharedLimiter = Arc::new(Mutex::new(RateLimiter::new(20.0, 1)));
        let start = Instant::now();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let mut c = RpcClient::new(&srv.url(), Duration::from_secs(5), None, vec![])
                    .with_limiter(Some(limiter.clone()));
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        c.call("eth_chainId", json!([])).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Nine calls at 20 a second, one at once: the last waits 400 ms whichever thread makes
        // it (three limiters of their own would let each thread finish in 100 ms).
        assert!(start.elapsed() >= Duration::from_millis(390), "{:?}", start.elapsed());
    }

    #[test]
    fn error_statuses_carry_their_text_body() {
        let srv = StubServer::start(|r: &StubRequest| match r.path.as_str() {
            "/text" => StubResponse::json(401, "Unauthorized: Error: invalid signature\n"),
            "/empty" => StubResponse::json(502, ""),
            "/rpc" => {
                StubResponse::json(500, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}"#)
            }
            _ => StubResponse::json(200, "not json"),
        })
        .unwrap();
        let call = |path: &str| {
            RpcClient::new(&format!("{}{path}", srv.url()), Duration::from_secs(5), None, vec![])
                .call("m", json!([]))
        };
        let u = srv.url();
        assert_eq!(
            call("/text"),
            Err(ClientError::Transport(format!(
                "{u}/text: HTTP 401 Unauthorized: Unauthorized: Error: invalid signature"
            )))
        );
        assert_eq!(call("/empty"), Err(ClientError::Transport(format!("{u}/empty: HTTP 502 Bad Gateway"))));
        assert_eq!(call("/rpc"), Err(ClientError::Rpc { code: -32000, message: "x".into() }));
        assert!(
            matches!(call("/ok"), Err(ClientError::Transport(m)) if m.contains("malformed JSON-RPC response"))
        );
    }
}
