//! A blocking JSON-RPC 2.0 client over ureq, for the worker threads: single calls and batches,
//! optional JWT (engine), optional extra headers, a response size limit, and errors split into
//! JSON-RPC error objects and transport failures.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Largest JSON-RPC response read from L1 or the engine. The largest legitimate ones are a
/// full L1 block with its transactions or its receipts: at 60M gas, log data (8 gas a byte) or
/// calldata (10 gas a byte at the EIP-7623 floor) stay under 7.5 MB, 15 MB as hex. A response
/// past it is refused while it is read; memory held meanwhile stays under twice this.
pub const MAX_RESPONSE_BYTES: u64 = 32 << 20;

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

/// One endpoint.
pub struct RpcClient {
    agent: ureq::Agent,
    url: String,
    jwt: Option<[u8; 32]>,
    headers: Vec<(String, String)>,
    next_id: u64,
    limiter: Option<RateLimiter>,
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
        let builder = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_idle_connections(2)
            .user_agent(concat!("op-lite/", env!("CARGO_PKG_VERSION")));
        #[cfg(feature = "tls")]
        let builder = builder.tls_config(super::tls::config(super::tls::any_https([url])));
        let agent: ureq::Agent = builder.build().into();
        RpcClient {
            agent,
            url: url.to_string(),
            jwt,
            headers,
            next_id: 0,
            limiter: None,
            max_response: MAX_RESPONSE_BYTES,
        }
    }

    /// Refuses responses larger than `bytes` (for endpoints whose answers are small).
    pub fn with_max_response(mut self, bytes: u64) -> RpcClient {
        self.max_response = bytes.min(MAX_RESPONSE_BYTES);
        self
    }

    /// Limits this client to `per_second` requests a second, bursting up to `burst` (0: none).
    pub fn with_rate_limit(mut self, per_second: f64, burst: usize) -> RpcClient {
        self.limiter = (per_second > 0.0).then(|| RateLimiter::new(per_second, burst));
        self
    }

    /// Waits as the rate limit asks before `n` requests go out.
    fn pace(&mut self, n: usize) {
        if let Some(l) = &mut self.limiter {
            let wait = l.delay(n, Instant::now());
            if !wait.is_zero() {
                super::clock::sleep(wait);
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn post(&mut self, body: &Value) -> Result<Value, ClientError> {
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
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.pace(1);
        let id = self.id();
        let resp = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        response_result(resp)
    }

    /// A batch of calls, answered in request order (the server may reorder; ids match them).
    pub fn batch(&mut self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
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
        let resp = self.post(&Value::Array(body))?;
        let Value::Array(items) = resp else {
            // A server without batch support answers with one error object.
            return Err(response_result(resp)
                .err()
                .unwrap_or(ClientError::Transport("batch answered with a single object".into())));
        };
        let mut out: Vec<Option<Result<Value, ClientError>>> = vec![None; calls.len()];
        for item in items {
            let Some(idx) = item.get("id").and_then(Value::as_u64).and_then(|id| id.checked_sub(first))
            else {
                continue;
            };
            if let Some(slot) = out.get_mut(idx as usize) {
                *slot = Some(response_result(item));
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or(Err(ClientError::Transport("missing batch response".into()))))
            .collect())
    }
}

/// Reads a response body of at most `limit` bytes: refused at once when its `Content-Length`
/// says more, and while reading when it has none or it lies.
pub(super) fn read_body(resp: &mut ureq::http::Response<ureq::Body>, limit: u64) -> Result<Vec<u8>, String> {
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(format!("response of {n} bytes is larger than the limit ({limit} bytes)"));
    }
    resp.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| format!("reading response: {e}"))
}

/// `result`, or the error object, of one response.
fn response_result(mut resp: Value) -> Result<Value, ClientError> {
    if let Some(err) = resp.get("error").filter(|e| !e.is_null()) {
        return Err(ClientError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
        });
    }
    match resp.get_mut("result") {
        Some(r) => Ok(r.take()),
        None => Err(ClientError::Transport("response without result or error".into())),
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
