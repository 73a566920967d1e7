//! Calls answered later, sans-IO. A deferred method (`optimism_outputAtBlock`) needs engine
//! round trips the loop must not wait for: it `start`s a call here and asks for an `RpcJob`
//! (`Request::Rpc`, which the shell hands to its RPC worker), and its response body waits
//! (`hold`) with a hole for each such call.
//! The worker's `Event::RpcJobDone`, or the call's deadline, finishes the call; the node takes
//! finished calls (`poll_done`), turns their outputs into JSON and `fill`s them in; a body whose
//! holes are all filled goes back to its HTTP connection by ticket.
//!
//! Bounded: at most `max_calls` calls are open at once (more get an error at once), and each
//! ends at its deadline with geth's timeout error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::jsonrpc::{write_error, write_result, CallId, CallRecord, RpcError, SERVER_ERROR, TIMEOUT};
use super::Ticket;
use crate::event::{Deriver, Emitter, Event};
use crate::protocol::block_ref::L2BlockRef;
use crate::protocol::output_root::OutputV0;
use crate::protocol::primitives::Address;
use crate::time::Now;

/// The name the store is registered under in the event system.
pub const RPC_CALLS: &str = "rpc-calls";

/// Open calls allowed at once.
pub const MAX_CALLS: usize = 64;

/// How long a call may wait for its worker (two engine calls at the engine RPC timeout each,
/// behind whatever the engine worker is doing).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The L2ToL1MessagePasser predeploy, whose storage root is part of every output.
pub const L2_TO_L1_MESSAGE_PASSER: Address =
    Address([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);

/// Work a deferred method hands to a worker; answered with `Event::RpcJobDone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcJob {
    /// The output at an L2 block: its header and, before Isthmus, the L2ToL1MessagePasser's
    /// storage root proven against the header's state root.
    OutputAtBlock { call: CallId, number: u64 },
}

/// What a worker found for an `RpcJob`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcJobOutput {
    /// The block and the preimage of its output root.
    Output { block: L2BlockRef, output: OutputV0 },
}

/// A finished call: the worker's output, or why there is none.
pub type Finished = (CallId, Result<Box<RpcJobOutput>, RpcError>);

#[derive(Debug)]
struct CallState {
    deadline: Instant,
    /// The held body the call's response goes into (none for a notification).
    ticket: Option<Ticket>,
    /// Its outcome is in `done` (a late worker answer is then ignored).
    finished: bool,
}

/// Open deferred calls and the response bodies waiting for them.
#[derive(Debug)]
pub struct Deferred {
    max_calls: usize,
    timeout: Duration,
    next: CallId,
    calls: BTreeMap<CallId, CallState>,
    bodies: BTreeMap<Ticket, PendingBody>,
    done: Vec<Finished>,
}

impl Deferred {
    /// Creates an empty store.
    pub fn new(max_calls: usize, timeout: Duration) -> Self {
        Deferred {
            max_calls,
            timeout,
            next: 0,
            calls: BTreeMap::new(),
            bodies: BTreeMap::new(),
            done: Vec::new(),
        }
    }

    /// Opens a call due by `now + timeout`; refused while `max_calls` are open.
    pub fn start(&mut self, now: Now) -> Result<CallId, RpcError> {
        if self.calls.len() >= self.max_calls {
            return Err(RpcError::new(SERVER_ERROR, "too many pending requests"));
        }
        self.next += 1;
        let deadline = now.mono + self.timeout;
        self.calls.insert(self.next, CallState { deadline, ticket: None, finished: false });
        Ok(self.next)
    }

    /// Keeps a response body until its calls are filled in.
    pub fn hold(&mut self, ticket: Ticket, body: PendingBody) {
        for call in body.open_calls() {
            if let Some(c) = self.calls.get_mut(&call) {
                c.ticket = Some(ticket);
            }
        }
        self.bodies.insert(ticket, body);
    }

    /// Takes the calls finished since the last call.
    pub fn poll_done(&mut self) -> Vec<Finished> {
        std::mem::take(&mut self.done)
    }

    /// Writes a finished call's response into its body. Returns the call's record (for the
    /// RPC metrics) and, once the body is complete, its ticket and bytes.
    pub fn fill(
        &mut self,
        call: CallId,
        result: &Result<Box<RawValue>, RpcError>,
        mono: Instant,
    ) -> (Option<CallRecord<'static>>, Option<(Ticket, Vec<u8>)>) {
        let Some(ticket) = self.calls.remove(&call).and_then(|c| c.ticket) else {
            return (None, None);
        };
        let Some(body) = self.bodies.get_mut(&ticket) else {
            return (None, None);
        };
        let record = body.fill(call, result, mono);
        if !body.is_complete() {
            return (record, None);
        }
        let done = self.bodies.remove(&ticket).map(|b| (ticket, b.into_bytes()));
        (record, done)
    }

    /// Returns the number of open calls.
    pub fn open(&self) -> usize {
        self.calls.len()
    }

    fn finish(&mut self, call: CallId, result: Result<Box<RpcJobOutput>, RpcError>) -> bool {
        match self.calls.get_mut(&call) {
            Some(c) if !c.finished => {
                c.finished = true;
                self.done.push((call, result));
                true
            }
            _ => false,
        }
    }
}

impl Deriver for Deferred {
    fn on_event(&mut self, ev: &Event, _now: Now, _out: &mut Emitter) -> bool {
        match ev {
            Event::RpcJobDone { call, result } => {
                self.finish(*call, result.clone().map_err(RpcError::server))
            }
            _ => false,
        }
    }

    fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        self.calls.values().filter(|c| !c.finished).map(|c| c.deadline).min().map(|t| (t, "rpc-call"))
    }

    fn handle_timeout(&mut self, now: Now, _out: &mut Emitter) {
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.finished && c.deadline <= now.mono)
            .map(|(id, _)| *id)
            .collect();
        for call in due {
            self.finish(call, Err(RpcError::new(TIMEOUT, "request timed out")));
        }
    }
}

/// A response body with holes where deferred calls will write their responses.
#[derive(Debug)]
pub struct PendingBody {
    parts: Vec<Part>,
    open: usize,
}

#[derive(Debug)]
pub(super) enum Part {
    Bytes(Vec<u8>),
    Hole(Box<Hole>),
}

#[derive(Debug)]
pub(super) struct Hole {
    pub(super) call: CallId,
    /// The request id, echoed verbatim.
    pub(super) id: Box<RawValue>,
    pub(super) method: &'static str,
    pub(super) params_bytes: usize,
    pub(super) started: Instant,
    pub(super) filled: Option<Vec<u8>>,
}

impl PendingBody {
    pub(super) fn new(parts: Vec<Part>, open: usize) -> Self {
        PendingBody { parts, open }
    }

    /// Returns the ids of the calls still open.
    pub fn open_calls(&self) -> impl Iterator<Item = CallId> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Hole(h) if h.filled.is_none() => Some(h.call),
            _ => None,
        })
    }

    /// Writes the response of deferred call `call`, finished at `mono`; returns its record for
    /// the RPC metrics, or `None` when the call is not one of this body's open holes.
    pub fn fill(
        &mut self,
        call: CallId,
        result: &Result<Box<RawValue>, RpcError>,
        mono: Instant,
    ) -> Option<CallRecord<'static>> {
        let h = self.parts.iter_mut().find_map(|p| match p {
            Part::Hole(h) if h.call == call && h.filled.is_none() => Some(h),
            _ => None,
        })?;
        let mut out = Vec::new();
        let result_bytes = match result {
            Ok(v) => {
                write_result(&mut out, &h.id, &**v);
                out.len()
            }
            Err(e) => {
                write_error(&mut out, Some(&*h.id), e.code, &e.message, e.data.as_ref());
                0
            }
        };
        h.filled = Some(out);
        self.open = self.open.saturating_sub(1);
        Some(CallRecord {
            method: h.method,
            served: true,
            notification: false,
            params_bytes: h.params_bytes,
            result_bytes,
            error_code: result.as_ref().err().map(|e| e.code),
            took: mono.saturating_duration_since(h.started),
        })
    }

    /// Answers every open call with `err` (no store to wait in); returns their records.
    pub fn fail_open(&mut self, err: &RpcError, mono: Instant) -> Vec<CallRecord<'static>> {
        let calls: Vec<CallId> = self.open_calls().collect();
        let err = Err(err.clone());
        calls.into_iter().filter_map(|c| self.fill(c, &err, mono)).collect()
    }

    /// Tells whether every hole was filled.
    pub fn is_complete(&self) -> bool {
        self.open == 0
    }

    /// Joins the parts into the response body (holes still open stay empty).
    pub fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in self.parts {
            match p {
                Part::Bytes(b) => out.extend_from_slice(&b),
                Part::Hole(h) => out.extend_from_slice(h.filled.as_deref().unwrap_or_default()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::jsonrpc::{raw_json, Body, Dispatcher, Limits, Params, RpcContext};
    use crate::time::test_now;
    use serde_json::Value;

    /// A context whose deferred method opens a call in its store.
    struct Ctx {
        store: Deferred,
        now: Now,
        records: Vec<(String, Option<i64>)>,
    }

    impl RpcContext for Ctx {
        fn mono(&self) -> Instant {
            self.now.mono
        }
        fn record_call(&mut self, c: &CallRecord<'_>) {
            self.records.push((c.method.to_string(), c.error_code));
        }
    }

    fn later(c: &mut Ctx, _: &Params<'_>, now: Now) -> Result<CallId, RpcError> {
        c.store.start(now)
    }

    fn now_fn(_: &mut Ctx, p: &Params<'_>, _: Now) -> Result<Value, RpcError> {
        Ok(p.optional::<Value>(0)?.unwrap_or(Value::Null))
    }

    fn setup(max: usize) -> (Dispatcher<Ctx>, Ctx) {
        let mut d = Dispatcher::new("v", false, Limits::default());
        d.register_deferred("test_later", 1, later).unwrap();
        d.register("test_now", 1, now_fn).unwrap();
        let ctx =
            Ctx { store: Deferred::new(max, Duration::from_secs(30)), now: test_now(), records: Vec::new() };
        (d, ctx)
    }

    fn pending(d: &Dispatcher<Ctx>, ctx: &mut Ctx, body: &str) -> PendingBody {
        let now = ctx.now;
        match d.handle_body(ctx, body.as_bytes(), now) {
            Body::Pending(p) => p,
            Body::Ready(b) => panic!("ready: {:?}", b.map(String::from_utf8)),
        }
    }

    /// Delivers worker results and fills them in; returns the completed bodies.
    fn settle(ctx: &mut Ctx, answers: &[(CallId, Result<Value, RpcError>)]) -> Vec<(Ticket, String)> {
        let mut out = Vec::new();
        let mut em = Emitter::with_cap(8);
        for (call, _) in answers {
            let ev = Event::RpcJobDone { call: *call, result: Err("unused".into()) };
            ctx.store.on_event(&ev, ctx.now, &mut em);
        }
        let done: Vec<CallId> = ctx.store.poll_done().into_iter().map(|(c, _)| c).collect();
        for (call, result) in answers.iter().filter(|(c, _)| done.contains(c)) {
            let result = result.clone().and_then(|v| raw_json(&v));
            let (rec, body) = ctx.store.fill(*call, &result, ctx.now.mono);
            if let Some(r) = rec {
                ctx.record_call(&r);
            }
            out.extend(body.map(|(t, b)| (t, String::from_utf8(b).unwrap())));
        }
        out
    }

    #[test]
    fn a_batch_answers_in_request_order_whatever_finishes_first() {
        let (d, mut ctx) = setup(8);
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"test_later"},
            {"jsonrpc":"2.0","id":"two","method":"test_now","params":[2]},
            {"jsonrpc":"2.0","method":"test_later"},
            {"jsonrpc":"2.0","id":3,"method":"test_later"}]"#;
        let p = pending(&d, &mut ctx, body);
        assert_eq!(p.open_calls().collect::<Vec<_>>(), [1, 3]);
        ctx.store.hold(42, p);
        // The notification's call (2) belongs to no body; its answer is dropped.
        assert!(settle(&mut ctx, &[(3, Ok(Value::from("c"))), (2, Ok(Value::Null))]).is_empty());
        let done = settle(&mut ctx, &[(1, Err(RpcError::server("boom")))]);
        assert_eq!(
            done,
            [(
                42,
                concat!(
                    r#"[{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"boom"}},"#,
                    r#"{"jsonrpc":"2.0","id":"two","result":2},"#,
                    r#"{"jsonrpc":"2.0","id":3,"result":"c"}]"#,
                    "\n"
                )
                .to_string()
            )]
        );
        assert_eq!(ctx.store.open(), 0);
        let methods: Vec<&str> = ctx.records.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(methods, ["test_now", "test_later", "test_later", "test_later"]);
    }

    #[test]
    fn a_single_call_and_the_synchronous_fallback() {
        let (d, mut ctx) = setup(8);
        let p = pending(&d, &mut ctx, r#"{"jsonrpc":"2.0","id":9,"method":"test_later"}"#);
        ctx.store.hold(1, p);
        let done = settle(&mut ctx, &[(1, Ok(Value::from(5)))]);
        assert_eq!(done, [(1, "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":5}\n".to_string())]);
        // Without a store to wait in, `handle` answers a deferred call with an internal error.
        let now = ctx.now;
        let out = d.handle(&mut ctx, br#"{"jsonrpc":"2.0","id":9,"method":"test_later"}"#, now).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("-32603"));
    }

    #[test]
    fn open_calls_are_bounded_and_time_out() {
        let (d, mut ctx) = setup(2);
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"test_later"}"#;
        let a = pending(&d, &mut ctx, call);
        ctx.store.hold(1, a);
        let b = pending(&d, &mut ctx, call);
        ctx.store.hold(2, b);
        let now = ctx.now;
        match d.handle_body(&mut ctx, call.as_bytes(), now) {
            Body::Ready(Some(b)) => {
                assert!(String::from_utf8(b).unwrap().contains("too many pending requests"))
            }
            other => panic!("{other:?}"),
        }
        let t0 = ctx.now;
        assert_eq!(ctx.store.poll_timeout(), Some((t0.mono + Duration::from_secs(30), "rpc-call")));
        let mut em = Emitter::with_cap(8);
        ctx.store.handle_timeout(t0.advance(Duration::from_secs(29)), &mut em);
        assert!(ctx.store.poll_done().is_empty());
        ctx.store.handle_timeout(t0.advance(Duration::from_secs(30)), &mut em);
        let done = ctx.store.poll_done();
        assert_eq!(done.len(), 2);
        assert_eq!(ctx.store.poll_timeout(), None);
        // A worker answer after the deadline changes nothing.
        let ev = Event::RpcJobDone { call: 1, result: Err("late".into()) };
        assert!(!ctx.store.on_event(&ev, t0.advance(Duration::from_secs(31)), &mut em));
        for (call, r) in done {
            let r = r.and_then(|_| raw_json(&Value::Null));
            let (_, body) = ctx.store.fill(call, &r, t0.mono);
            let (_, text) = body.unwrap();
            assert!(String::from_utf8(text)
                .unwrap()
                .contains(r#""code":-32002,"message":"request timed out""#));
        }
        assert_eq!(ctx.store.open(), 0);
    }
}
