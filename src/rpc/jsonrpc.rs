//! JSON-RPC 2.0 as geth's server (which op-node runs) answers it over HTTP: one request body
//! in, one response body out. Single calls and batches, notifications (no response), geth's
//! error codes and texts, and a method table whose `admin_` namespace is served only when
//! enabled.
//!
//! A method may answer later (`register_deferred`): it starts work elsewhere and returns a
//! `CallId`; the body then comes back as a `PendingBody` with a hole at that call's place, which
//! `PendingBody::fill` closes once the result is known. Batches keep their order whatever
//! finishes first.
//!
//! Bodies are split into borrowed raw JSON slices (`RawValue`): ids are echoed verbatim as geth
//! does, params are decoded by each method into its own types, and batches are cut at
//! `Limits::max_batch` while scanning, so no body becomes a large `Value` tree. Nesting inside
//! skipped or raw values is scanned iteratively; typed decoding keeps serde_json's recursion
//! limit (128), so deep nesting is an error, never a stack overflow.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::de::{DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use super::deferred::{Hole, Part, PendingBody};
use crate::time::Now;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// Unknown (or disabled) method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Params that do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;
/// A failure inside the server.
pub const INTERNAL_ERROR: i64 = -32603;
/// geth's code for errors that methods return.
pub const SERVER_ERROR: i64 = -32000;
/// geth's code when a batch's results exceed the response limit.
pub const RESPONSE_TOO_LARGE: i64 = -32003;
/// geth's code when a call did not finish in time.
pub const TIMEOUT: i64 = -32002;

/// Namespaces served only with `--rpc.enable-admin`.
const ADMIN_PREFIX: &str = "admin_";

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// The message (geth's texts for the standard errors).
    pub message: String,
    /// Optional structured details.
    pub data: Option<Value>,
}

impl RpcError {
    /// Builds an error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }

    /// Builds an error from a method's failure, as geth reports plain Go errors (-32000).
    pub fn server(message: impl Into<String>) -> Self {
        RpcError::new(SERVER_ERROR, message)
    }

    /// Builds geth's "method not found" error.
    pub fn method_not_found(method: &str) -> Self {
        RpcError::new(METHOD_NOT_FOUND, format!("the method {method} does not exist/is not available"))
    }

    /// Builds an invalid-params error.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// A method name registered twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateMethod(pub &'static str);

impl fmt::Display for DuplicateMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RPC method {} is already registered", self.0)
    }
}

impl std::error::Error for DuplicateMethod {}

/// Bounds on one request body's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls in one batch; more get geth's "batch too large".
    pub max_batch: usize,
    /// Result bytes in one batch response; later calls get "response too large".
    pub max_batch_response: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_batch: 100, max_batch_response: 5 * 1024 * 1024 }
    }
}

/// A method's positional params, each a raw JSON slice of the request body.
#[derive(Debug, Default)]
pub struct Params<'a> {
    args: Vec<&'a RawValue>,
}

impl<'a> Params<'a> {
    /// Splits `params` (absent, `null` or an array) into at most `max` arguments.
    fn parse(raw: Option<&'a RawValue>, max: usize) -> Result<Self, RpcError> {
        let Some(raw) = raw.filter(|r| r.get() != "null") else {
            return Ok(Params::default());
        };
        if !raw.get().starts_with('[') {
            return Err(RpcError::invalid_params("non-array args"));
        }
        let mut de = serde_json::Deserializer::from_str(raw.get());
        match de.deserialize_seq(BoundedSeq { max }) {
            Ok((args, false)) => Ok(Params { args }),
            Ok((_, true)) => Err(RpcError::invalid_params(format!("too many arguments, want at most {max}"))),
            Err(e) => Err(RpcError::invalid_params(e.to_string())),
        }
    }

    /// Returns argument `i` as raw JSON text.
    pub fn raw(&self, i: usize) -> Option<&'a str> {
        self.args.get(i).map(|r| r.get())
    }

    #[cfg(test)]
    pub(crate) fn from_raw(args: Vec<&'a RawValue>) -> Self {
        Params { args }
    }

    /// Returns the number of arguments given.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Tells whether no arguments were given.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Decodes argument `i`; `None` when it is absent or `null` (geth's optional pointer args).
    pub fn optional<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, RpcError> {
        match self.args.get(i) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|e| RpcError::invalid_params(format!("invalid argument {i}: {e}"))),
        }
    }

    /// Decodes argument `i`, which must be present and not `null`.
    pub fn required<T: DeserializeOwned>(&self, i: usize) -> Result<T, RpcError> {
        self.optional(i)?
            .ok_or_else(|| RpcError::invalid_params(format!("missing value for required argument {i}")))
    }
}

/// What op-node's RPC recorder counts for one call or notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord<'a> {
    /// The method name as requested.
    pub method: &'a str,
    /// Whether the method exists (unknown names are not used as metric labels).
    pub served: bool,
    /// A notification (no id, no response).
    pub notification: bool,
    /// Length of the raw params JSON.
    pub params_bytes: usize,
    /// Length of the written response object, for successful calls.
    pub result_bytes: usize,
    /// The error code, for failed calls.
    pub error_code: Option<i64>,
    /// Time spent in the method.
    pub took: Duration,
}

/// The state methods run on, as the dispatcher needs it.
pub trait RpcContext {
    /// Reads the monotonic clock, for call durations.
    fn mono(&self) -> Instant;
    /// Counts one dispatched call or notification.
    fn record_call(&mut self, call: &CallRecord<'_>);
}

/// A method: runs on the context with decoded params and the current time.
pub type Handler<C> = fn(&mut C, &Params<'_>, Now) -> Result<Value, RpcError>;

/// A method whose result is serialized by the method itself (`raw_json`), so objects keep
/// their field order (Go's struct order) where a `Value` would sort keys.
pub type RawHandler<C> = fn(&mut C, &Params<'_>, Now) -> Result<Box<RawValue>, RpcError>;

/// Serializes a result for a `RawHandler` or a deferred call.
pub fn raw_json(v: &impl serde::Serialize) -> Result<Box<RawValue>, RpcError> {
    serde_json::value::to_raw_value(v).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

/// Identifies a deferred call until its result is filled in.
pub type CallId = u64;

/// A method that answers later: it starts the work and returns the id its result will carry.
pub type DeferredHandler<C> = fn(&mut C, &Params<'_>, Now) -> Result<CallId, RpcError>;

enum Run<C> {
    Now(Handler<C>),
    Raw(RawHandler<C>),
    Later(DeferredHandler<C>),
}

struct Method<C> {
    max_args: usize,
    run: Run<C>,
}

/// What a call produced: a result now, or a promise of one.
enum Outcome {
    Done(Result<Value, RpcError>),
    Raw(Result<Box<RawValue>, RpcError>),
    Later(CallId),
}

/// What answering a request body produced.
#[derive(Debug)]
pub enum Body {
    /// The whole response body; `None` when nothing is to be sent (only notifications).
    Ready(Option<Vec<u8>>),
    /// A response waiting for deferred calls.
    Pending(PendingBody),
}

/// Collects a response body: bytes, and holes for deferred calls.
#[derive(Default)]
struct Writer {
    cur: Vec<u8>,
    parts: Vec<Part>,
    /// Bytes moved from `cur` into `parts`.
    flushed: usize,
    holes: usize,
}

impl Writer {
    fn len(&self) -> usize {
        self.flushed + self.cur.len()
    }

    fn hole(&mut self, h: Hole) {
        let cur = std::mem::take(&mut self.cur);
        self.flushed += cur.len();
        self.parts.push(Part::Bytes(cur));
        self.parts.push(Part::Hole(Box::new(h)));
        self.holes += 1;
    }

    /// Drops bytes written after `mark` (a length taken while no hole was added since).
    fn truncate(&mut self, mark: usize) {
        self.cur.truncate(mark.saturating_sub(self.flushed));
    }

    fn finish(mut self) -> Body {
        if self.holes == 0 {
            return Body::Ready(Some(self.cur));
        }
        self.parts.push(Part::Bytes(self.cur));
        Body::Pending(PendingBody::new(self.parts, self.holes))
    }
}

/// The method table and the request-body handler.
pub struct Dispatcher<C> {
    methods: BTreeMap<&'static str, Method<C>>,
    app_version: &'static str,
    enable_admin: bool,
    limits: Limits,
}

impl<C> Default for Dispatcher<C> {
    fn default() -> Self {
        Dispatcher {
            methods: BTreeMap::new(),
            app_version: "",
            enable_admin: false,
            limits: Limits::default(),
        }
    }
}

/// The error of a deferred call made where no store can hold its body.
pub fn no_store() -> RpcError {
    RpcError::new(INTERNAL_ERROR, "deferred call without a pending-answer store")
}

/// Methods every op-service RPC server has: geth's `rpc_modules` and op-service's
/// `health_status`.
const BUILTINS: [&str; 2] = ["rpc_modules", "health_status"];

impl<C: RpcContext> Dispatcher<C> {
    /// Creates an empty table; `app_version` is what `health_status` returns.
    pub fn new(app_version: &'static str, enable_admin: bool, limits: Limits) -> Self {
        Dispatcher { methods: BTreeMap::new(), app_version, enable_admin, limits }
    }

    /// Adds a method taking at most `max_args` positional params (more get geth's "too many
    /// arguments"). `admin_` methods may always be registered; they are served only when the
    /// admin namespace is enabled.
    pub fn register(
        &mut self,
        name: &'static str,
        max_args: usize,
        handler: Handler<C>,
    ) -> Result<(), DuplicateMethod> {
        self.add(name, Method { max_args, run: Run::Now(handler) })
    }

    /// Adds a method that serializes its own result (see `RawHandler`).
    pub fn register_raw(
        &mut self,
        name: &'static str,
        max_args: usize,
        handler: RawHandler<C>,
    ) -> Result<(), DuplicateMethod> {
        self.add(name, Method { max_args, run: Run::Raw(handler) })
    }

    /// Adds a method that answers later (see `PendingBody`).
    pub fn register_deferred(
        &mut self,
        name: &'static str,
        max_args: usize,
        handler: DeferredHandler<C>,
    ) -> Result<(), DuplicateMethod> {
        self.add(name, Method { max_args, run: Run::Later(handler) })
    }

    fn add(&mut self, name: &'static str, m: Method<C>) -> Result<(), DuplicateMethod> {
        if BUILTINS.contains(&name) || self.methods.contains_key(name) {
            return Err(DuplicateMethod(name));
        }
        self.methods.insert(name, m);
        Ok(())
    }

    /// Tells whether a call to `method` would find it.
    pub fn is_served(&self, method: &str) -> bool {
        BUILTINS.contains(&method) || self.lookup(method).is_some()
    }

    /// Returns the served namespaces with geth's version "1.0" (the `rpc_modules` result).
    pub fn modules(&self) -> BTreeMap<String, &'static str> {
        let mut out: BTreeMap<String, &'static str> =
            [("rpc", "1.0"), ("health", "1.0")].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        for name in self.methods.keys().filter(|n| self.gate(n)) {
            if let Some((ns, _)) = name.split_once('_') {
                out.insert(ns.to_string(), "1.0");
            }
        }
        out
    }

    fn gate(&self, method: &str) -> bool {
        self.enable_admin || !method.starts_with(ADMIN_PREFIX)
    }

    fn lookup(&self, method: &str) -> Option<&Method<C>> {
        self.methods.get(method).filter(|_| self.gate(method))
    }

    /// Answers one HTTP request body; `None` means an empty response body (an empty request,
    /// or only notifications). For tables without deferred methods; a deferred call answers
    /// with an internal error here.
    pub fn handle(&self, ctx: &mut C, body: &[u8], now: Now) -> Option<Vec<u8>> {
        match self.handle_body(ctx, body, now) {
            Body::Ready(b) => b,
            Body::Pending(mut p) => {
                for r in p.fail_open(&no_store(), ctx.mono()) {
                    ctx.record_call(&r);
                }
                Some(p.into_bytes())
            }
        }
    }

    /// Answers one HTTP request body, possibly with holes for deferred calls.
    pub fn handle_body(&self, ctx: &mut C, body: &[u8], now: Now) -> Body {
        let Ok(text) = std::str::from_utf8(body) else {
            return Body::Ready(Some(error_body(None, PARSE_ERROR, "parse error")));
        };
        if text.trim_start_matches([' ', '\t', '\n', '\r']).is_empty() {
            return Body::Ready(None);
        }
        // Like geth, only the first JSON value of the body counts.
        let mut de = serde_json::Deserializer::from_str(text);
        let Ok(first) = <&RawValue>::deserialize(&mut de) else {
            return Body::Ready(Some(error_body(None, PARSE_ERROR, "parse error")));
        };
        let mut out = Writer::default();
        if !first.get().starts_with('[') {
            if !self.handle_msg(ctx, first, now, &mut out) {
                return Body::Ready(None);
            }
            out.cur.push(b'\n');
            return out.finish();
        }
        let mut de = serde_json::Deserializer::from_str(first.get());
        let Ok((msgs, too_many)) = de.deserialize_seq(BoundedSeq { max: self.limits.max_batch }) else {
            return Body::Ready(Some(error_body(None, PARSE_ERROR, "parse error")));
        };
        if too_many {
            let id = msgs.iter().find_map(|m| Msg::parse(m).call_id());
            let mut out = b"[".to_vec();
            write_error(&mut out, id, INVALID_REQUEST, "batch too large", None);
            out.extend_from_slice(b"]\n");
            return Body::Ready(Some(out));
        }
        if msgs.is_empty() {
            return Body::Ready(Some(error_body(None, INVALID_REQUEST, "empty batch")));
        }
        out.cur.push(b'[');
        let mut any = false;
        let mut too_large = false;
        for raw in msgs {
            let mark = out.len();
            if any {
                out.cur.push(b',');
            }
            let wrote = if too_large {
                let msg = Msg::parse(raw);
                match msg.kind() {
                    Kind::Call { id, .. } => {
                        write_error(&mut out.cur, Some(id), RESPONSE_TOO_LARGE, "response too large", None);
                        true
                    }
                    _ => false,
                }
            } else {
                self.handle_msg(ctx, raw, now, &mut out)
            };
            if wrote {
                any = true;
                // Deferred results are not counted: their methods answer small fixed-shape objects.
                too_large |= out.len() > self.limits.max_batch_response;
            } else {
                out.truncate(mark);
            }
        }
        if !any {
            return Body::Ready(None);
        }
        out.cur.extend_from_slice(b"]\n");
        out.finish()
    }

    /// Handles one message; returns whether it wrote a response (or a hole) into `out`.
    fn handle_msg(&self, ctx: &mut C, raw: &RawValue, now: Now, out: &mut Writer) -> bool {
        let msg = Msg::parse(raw);
        match msg.kind() {
            Kind::Response => false,
            Kind::Invalid { id } => {
                write_error(&mut out.cur, id, INVALID_REQUEST, "invalid request", None);
                true
            }
            Kind::Notification { method } => {
                self.dispatch(ctx, &method, msg.params, now, None);
                false
            }
            Kind::Call { id, method } => {
                self.dispatch(ctx, &method, msg.params, now, Some((id, out)));
                true
            }
        }
    }

    /// Runs a call; with `reply`, writes its response (or a hole for a deferred one) and
    /// records it. Deferred calls are recorded when their result is filled in.
    fn dispatch(
        &self,
        ctx: &mut C,
        method: &str,
        params: Option<&RawValue>,
        now: Now,
        reply: Option<(&RawValue, &mut Writer)>,
    ) {
        let t0 = ctx.mono();
        let outcome = self.call(ctx, method, params, now);
        let took = ctx.mono().saturating_duration_since(t0);
        let notification = reply.is_none();
        let params_bytes = params.map_or(0, |p| p.get().len());
        let result = match outcome {
            Outcome::Later(call) => {
                let Some((id, out)) = reply else {
                    // A notification's result is never sent; the work still runs.
                    ctx.record_call(&CallRecord {
                        method,
                        served: true,
                        notification,
                        params_bytes,
                        result_bytes: 0,
                        error_code: None,
                        took,
                    });
                    return;
                };
                let method = self.methods.get_key_value(method).map_or("", |(k, _)| *k);
                out.hole(Hole { call, id: id.to_owned(), method, params_bytes, started: t0, filled: None });
                return;
            }
            Outcome::Done(r) => r.map(Json::Value),
            Outcome::Raw(r) => r.map(Json::Raw),
        };
        let mut result_bytes = 0;
        if let Some((id, out)) = reply {
            match &result {
                Ok(v) => {
                    let start = out.cur.len();
                    write_result(&mut out.cur, id, v);
                    result_bytes = out.cur.len().saturating_sub(start);
                }
                Err(e) => write_error(&mut out.cur, Some(id), e.code, &e.message, e.data.as_ref()),
            }
        }
        ctx.record_call(&CallRecord {
            method,
            served: self.is_served(method),
            notification,
            params_bytes,
            result_bytes,
            error_code: result.as_ref().err().map(|e| e.code),
            took,
        });
    }

    fn call(&self, ctx: &mut C, method: &str, params: Option<&RawValue>, now: Now) -> Outcome {
        if method.ends_with("_subscribe") {
            // geth over HTTP: subscriptions need a persistent connection.
            return Outcome::Done(Err(RpcError::new(METHOD_NOT_FOUND, "notifications not supported")));
        }
        match method {
            "rpc_modules" => {
                return Outcome::Done(Params::parse(params, 0).and_then(|_| {
                    serde_json::to_value(self.modules())
                        .map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
                }));
            }
            "health_status" => {
                let r = Params::parse(params, 0).map(|_| Value::String(self.app_version.to_string()));
                return Outcome::Done(r);
            }
            _ => {}
        }
        let Some(m) = self.lookup(method) else {
            return Outcome::Done(Err(RpcError::method_not_found(method)));
        };
        let params = match Params::parse(params, m.max_args) {
            Ok(p) => p,
            Err(e) => return Outcome::Done(Err(e)),
        };
        match m.run {
            Run::Now(f) => Outcome::Done(f(ctx, &params, now)),
            Run::Raw(f) => Outcome::Raw(f(ctx, &params, now)),
            Run::Later(f) => match f(ctx, &params, now) {
                Ok(call) => Outcome::Later(call),
                Err(e) => Outcome::Done(Err(e)),
            },
        }
    }
}

/// A message with every field kept raw, so wrong types make it invalid rather than unparsable.
#[derive(Default, Deserialize)]
struct Msg<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// Keeps a field that is present, even as `null` (absent `id` means notification, `null` not).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

enum Kind<'a> {
    Call {
        id: &'a RawValue,
        method: String,
    },
    Notification {
        method: String,
    },
    /// A response object sent to the server: ignored, as geth does.
    Response,
    Invalid {
        id: Option<&'a RawValue>,
    },
}

impl<'a> Msg<'a> {
    /// Reads a message; anything that is not an object becomes the empty (invalid) message.
    fn parse(raw: &'a RawValue) -> Self {
        serde_json::from_str(raw.get()).unwrap_or_default()
    }

    /// The id when it is one geth accepts (not an object or array).
    fn valid_id(&self) -> Option<&'a RawValue> {
        self.id.filter(|id| !id.get().starts_with('{') && !id.get().starts_with('['))
    }

    fn call_id(&self) -> Option<&'a RawValue> {
        match self.kind() {
            Kind::Call { id, .. } => Some(id),
            _ => None,
        }
    }

    fn kind(&self) -> Kind<'a> {
        let string = |r: Option<&RawValue>| r.and_then(|r| serde_json::from_str::<String>(r.get()).ok());
        let version_ok = string(self.jsonrpc).as_deref() == Some("2.0");
        let method = string(self.method).unwrap_or_default();
        let id = self.valid_id();
        match (version_ok, id, method.is_empty()) {
            (true, None, false) if self.id.is_none() => Kind::Notification { method },
            (true, Some(id), false) => Kind::Call { id, method },
            (true, Some(_), true)
                if self.params.is_none() && (self.result.is_some() || self.error.is_some()) =>
            {
                Kind::Response
            }
            _ => Kind::Invalid { id },
        }
    }
}

/// Collects at most `max` raw elements of a JSON array, skipping (and flagging) the rest
/// without allocating for them.
struct BoundedSeq {
    max: usize,
}

impl<'de> Visitor<'de> for BoundedSeq {
    type Value = (Vec<&'de RawValue>, bool);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok((items, true));
            }
            items.push(item);
        }
        Ok((items, false))
    }
}

fn error_body(id: Option<&RawValue>, code: i64, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_error(&mut out, id, code, message, None);
    out.push(b'\n');
    out
}

/// A result as a value or as serialized text.
enum Json {
    Value(Value),
    Raw(Box<RawValue>),
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Value(v) => v.serialize(s),
            Json::Raw(r) => r.serialize(s),
        }
    }
}

/// Writes `{"jsonrpc":"2.0","id":..,"result":..}` (geth's field order).
pub(super) fn write_result(out: &mut Vec<u8>, id: &RawValue, result: &(impl serde::Serialize + ?Sized)) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"result\":");
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, result);
    out.push(b'}');
}

/// Writes `{"jsonrpc":"2.0","id":..,"error":{"code":..,"message":..[,"data":..]}}`.
pub(super) fn write_error(
    out: &mut Vec<u8>,
    id: Option<&RawValue>,
    code: i64,
    message: &str,
    data: Option<&Value>,
) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.map_or("null", |i| i.get()).as_bytes());
    out.extend_from_slice(format!(",\"error\":{{\"code\":{code},\"message\":").as_bytes());
    let _ = serde_json::to_writer(&mut *out, message);
    if let Some(d) = data {
        out.extend_from_slice(b",\"data\":");
        let _ = serde_json::to_writer(&mut *out, d);
    }
    out.extend_from_slice(b"}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[derive(Default)]
    struct Ctx {
        calls: Vec<String>,
        records: Vec<(String, bool, bool, Option<i64>)>,
    }

    impl RpcContext for Ctx {
        fn mono(&self) -> Instant {
            crate::time::test_now().mono
        }
        fn record_call(&mut self, c: &CallRecord<'_>) {
            self.records.push((c.method.to_string(), c.served, c.notification, c.error_code));
        }
    }

    fn echo(ctx: &mut Ctx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
        ctx.calls.push("echo".into());
        let a: Option<Value> = p.optional(0)?;
        Ok(a.unwrap_or(Value::Null))
    }

    fn add(_: &mut Ctx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
        let a: u64 = p.required(0)?;
        let b: u64 = p.optional(1)?.unwrap_or(0);
        Ok(Value::from(a + b))
    }

    fn fail(_: &mut Ctx, _: &Params<'_>, _: Now) -> Result<Value, RpcError> {
        Err(RpcError::server("engine unavailable"))
    }

    fn dispatcher(admin: bool) -> Dispatcher<Ctx> {
        let mut d = Dispatcher::new("v9.9.9-test", admin, Limits::default());
        d.register("test_echo", 1, echo).unwrap();
        d.register("test_add", 2, add).unwrap();
        d.register("test_fail", 0, fail).unwrap();
        d.register("admin_echo", 1, echo).unwrap();
        d
    }

    fn call(d: &Dispatcher<Ctx>, ctx: &mut Ctx, body: &str) -> String {
        let out = d.handle(ctx, body.as_bytes(), crate::time::test_now());
        String::from_utf8(out.unwrap_or_default()).unwrap()
    }

    fn one(body: &str) -> String {
        call(&dispatcher(false), &mut Ctx::default(), body)
    }

    #[test]
    fn single_calls_and_geth_errors() {
        assert_eq!(
            one(r#"{"jsonrpc":"2.0","id":1,"method":"test_add","params":[2,3]}"#),
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":5}\n"
        );
        // Ids are echoed verbatim, whatever their JSON spelling.
        assert_eq!(
            one(r#" {"id":"0x1" , "jsonrpc":"2.0","method":"test_echo","params":[{"a":[1.50]}]} trailing"#),
            "{\"jsonrpc\":\"2.0\",\"id\":\"0x1\",\"result\":{\"a\":[1.5]}}\n"
        );
        assert_eq!(
            one(r#"{"jsonrpc":"2.0","id":1.0e0,"method":"test_echo"}"#),
            "{\"jsonrpc\":\"2.0\",\"id\":1.0e0,\"result\":null}\n"
        );
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"optimism_syncStatus"}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"the method optimism_syncStatus does not exist/is not available"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"admin_echo"}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"the method admin_echo does not exist/is not available"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"test_add","params":[1,2,3]}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"too many arguments, want at most 2"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"test_add","params":{"a":1}}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"non-array args"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"test_add","params":[]}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"missing value for required argument 0"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"test_fail"}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"engine unavailable"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"eth_subscribe","params":["newHeads"]}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"notifications not supported"}}"#,
            ),
            (
                r#"{"jsonrpc":"1.0","id":7,"method":"test_echo"}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"invalid request"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"test_echo"}"#,
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":5}"#,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"invalid request"}}"#,
            ),
            ("42", r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}}"#),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"#,
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#,
            ),
            ("nonsense", r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#),
        ];
        for (req, want) in cases {
            assert_eq!(one(req), format!("{want}\n"), "{req}");
        }
        let bad = one(r#"{"jsonrpc":"2.0","id":7,"method":"test_add","params":["x"]}"#);
        assert!(
            bad.contains(r#""code":-32602,"message":"invalid argument 0: invalid type: string"#),
            "{bad}"
        );
        // A null id is a call, not a notification.
        assert!(one(r#"{"jsonrpc":"2.0","id":null,"method":"test_echo"}"#).contains("\"id\":null,\"result\""));
        assert_eq!(call(&dispatcher(false), &mut Ctx::default(), " \r\n\t"), "");
        assert!(one("\u{feff}").contains("-32700"));
    }

    #[test]
    fn admin_namespace_is_gated() {
        let on = call(
            &dispatcher(true),
            &mut Ctx::default(),
            r#"{"jsonrpc":"2.0","id":1,"method":"admin_echo","params":["x"]}"#,
        );
        assert_eq!(on, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"x\"}\n");
        let modules = |admin| {
            let out = call(
                &dispatcher(admin),
                &mut Ctx::default(),
                r#"{"jsonrpc":"2.0","id":1,"method":"rpc_modules"}"#,
            );
            let v: Value = serde_json::from_str(&out).unwrap();
            v["result"].as_object().unwrap().keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(modules(false), ["health", "rpc", "test"]);
        assert_eq!(modules(true), ["admin", "health", "rpc", "test"]);
        assert_eq!(
            one(r#"{"jsonrpc":"2.0","id":1,"method":"health_status"}"#),
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"v9.9.9-test\"}\n"
        );
        let mut d = dispatcher(false);
        assert_eq!(d.register("test_echo", 0, echo), Err(DuplicateMethod("test_echo")));
        assert_eq!(d.register("rpc_modules", 0, echo), Err(DuplicateMethod("rpc_modules")));
    }

    #[test]
    fn notifications_run_without_a_response() {
        let d = dispatcher(false);
        let mut ctx = Ctx::default();
        assert_eq!(call(&d, &mut ctx, r#"{"jsonrpc":"2.0","method":"test_echo"}"#), "");
        assert_eq!(ctx.calls, ["echo"]);
        assert_eq!(ctx.records, [("test_echo".to_string(), true, true, None)]);
        // A response object sent to the server is ignored.
        assert_eq!(call(&d, &mut ctx, r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#), "");
        let all = r#"[{"jsonrpc":"2.0","method":"test_echo"},{"jsonrpc":"2.0","method":"nope_x"}]"#;
        assert_eq!(call(&d, &mut ctx, all), "");
        assert_eq!(ctx.calls.len(), 2);
        assert_eq!(ctx.records[2], ("nope_x".to_string(), false, true, Some(METHOD_NOT_FOUND)));
    }

    #[test]
    fn batches() {
        let d = dispatcher(false);
        let mut ctx = Ctx::default();
        let out = call(
            &d,
            &mut ctx,
            r#"[{"jsonrpc":"2.0","id":1,"method":"test_add","params":[1,1]},
                {"jsonrpc":"2.0","method":"test_echo"},
                1,
                {"jsonrpc":"2.0","id":"b","method":"nope"}]"#,
        );
        assert_eq!(
            out,
            concat!(
                r#"[{"jsonrpc":"2.0","id":1,"result":2},"#,
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}},"#,
                r#"{"jsonrpc":"2.0","id":"b","error":{"code":-32601,"message":"the method nope does not exist/is not available"}}]"#,
                "\n"
            )
        );
        assert_eq!(
            one("[]"),
            "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"empty batch\"}}\n"
        );
        let item = r#"{"jsonrpc":"2.0","method":"test_echo"}"#;
        let call_item = r#"{"jsonrpc":"2.0","id":9,"method":"test_echo"}"#;
        let max = format!("[{item},{}]", vec![call_item; 99].join(","));
        assert_eq!(one(&max).matches("\"id\":9").count(), 99);
        let over = format!("[{item},{}]", vec![call_item; 100].join(","));
        assert_eq!(
            one(&over),
            "[{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32600,\"message\":\"batch too large\"}}]\n"
        );
        // Nothing of an oversized batch runs.
        let mut ctx = Ctx::default();
        call(&d, &mut ctx, &over);
        assert!(ctx.calls.is_empty());
    }

    #[test]
    fn batch_responses_are_bounded() {
        let limits = Limits { max_batch: 100, max_batch_response: 100 };
        let mut d = Dispatcher::new("v", false, limits);
        d.register("test_echo", 1, echo).unwrap();
        let big = "x".repeat(80);
        let body = format!(
            r#"[{{"jsonrpc":"2.0","id":1,"method":"test_echo","params":["{big}"]}},{{"jsonrpc":"2.0","id":2,"method":"test_echo","params":["{big}"]}},{{"jsonrpc":"2.0","id":3,"method":"test_echo"}}]"#
        );
        let mut ctx = Ctx::default();
        let out = call(&d, &mut ctx, &body);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["result"], Value::String(big.clone()));
        assert_eq!(v[1]["error"]["code"], RESPONSE_TOO_LARGE);
        assert_eq!(v[2]["error"]["message"], "response too large");
        assert_eq!(ctx.calls.len(), 1);
    }

    #[test]
    fn deep_nesting_is_rejected_without_overflow() {
        // serde_json's recursion limit must be on (no `unbounded_depth` anywhere in the tree).
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        let shallow = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(serde_json::from_str::<Value>(&shallow).is_ok());
        let n = 1_000_000;
        let params = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let out = one(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"test_echo","params":{params}}}"#));
        assert!(out.contains("\"code\":-32602"), "{}", &out[..out.len().min(200)]);
        let out = one(&"[".repeat(n));
        assert!(out.contains("-32700"));
        let out = one(&format!("{}{}", "[".repeat(n), "]".repeat(n)));
        assert!(out.contains("invalid request"));
    }

    #[test]
    fn every_prefix_and_random_bodies_never_panic() {
        let d = dispatcher(true);
        let mut ctx = Ctx::default();
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"test_add","params":[1,2]},{"jsonrpc":"2.0","method":"admin_echo","params":[{"k":"\u00e9"}]}]"#;
        for n in 0..=body.len() {
            if let Some(prefix) = body.get(..n) {
                let _ = call(&d, &mut ctx, prefix);
            }
        }
        let mut rng = Rng::new(11);
        let alphabet = br#"[]{}",:0123456789.eE-+ truefalsnul\jsonrpc2idmethodparams_"#;
        for i in 0..4000 {
            let mut buf = vec![0u8; rng.below(200) as usize];
            if i % 4 == 0 {
                rng.fill(&mut buf);
            } else {
                for b in &mut buf {
                    *b = alphabet[rng.below(alphabet.len() as u64) as usize];
                }
            }
            let _ = d.handle(&mut ctx, &buf, crate::time::test_now());
        }
    }
}
