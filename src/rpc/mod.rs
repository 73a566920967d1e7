//! The RPC and metrics servers, sans-IO: `http` turns bytes into requests and responses into
//! bytes, `jsonrpc` answers JSON-RPC bodies from a method table, and this module routes a
//! request as op-node's servers do. The sockets live in `io::http_server`, which hands each
//! complete request to a `Service` (the node) and writes back what it returns, now or, for
//! calls that wait on a worker (`deferred`), once the service completes the request's ticket.
//!
//! Routes on the RPC listener (op-service's RPC handler around geth's HTTP server):
//! `/healthz` (any method) answers `{"version":..}`; `/` is JSON-RPC (a bodiless `GET` is a
//! health probe answered with an empty 200, `PUT`/`DELETE` get 405, a content type other than
//! JSON gets 415); anything else is 404. The metrics listener answers every request with the
//! text exposition, as op-node's promhttp handler does.

pub mod deferred;
pub mod http;
pub mod jsonrpc;
pub mod methods;

pub use http::{Request, Response};
pub use jsonrpc::{CallRecord, Dispatcher, Params, RpcContext, RpcError};

use crate::time::Now;

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `--rpc.addr`/`--rpc.port`: JSON-RPC and `/healthz`.
    Rpc,
    /// `--metrics.addr`/`--metrics.port`: the Prometheus endpoint.
    Metrics,
    /// The devnet's L1: JSON-RPC and the beacon API.
    DevnetL1,
    /// The devnet's engine stand-in (JWT).
    DevnetEngine,
    /// The devnet's sequencer engine (JWT), driven by a sequencer node.
    DevnetSeqEngine,
}

/// Identifies a request whose response comes later.
pub type Ticket = u64;

/// A service's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The response.
    Now(Response),
    /// The response follows through `HttpServer::complete` with this ticket; the connection
    /// sends nothing else meanwhile (responses keep request order).
    Later(Ticket),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Now(r)
    }
}

/// Answers complete HTTP requests (implemented by the node).
pub trait Service {
    /// Returns the answer to `req`, received on `listener` at `now`.
    fn serve(&mut self, listener: Listener, req: &Request, now: Now) -> Reply;
}

/// Content types geth accepts for JSON-RPC (parameters such as `charset` are allowed).
const JSON_TYPES: [&str; 3] = ["application/json", "application/json-rpc", "application/jsonrequest"];

/// Routes a request on the RPC listener; `handle_body` answers a JSON-RPC body.
pub fn serve_rpc(
    req: &Request,
    app_version: &str,
    handle_body: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Response {
    match route_rpc(req, app_version) {
        Ok(()) => json_response(handle_body(&req.body).unwrap_or_default()),
        Err(resp) => resp,
    }
}

/// Routes a request on the RPC listener whose JSON-RPC body may be answered later:
/// `handle_body` returns the body, or the ticket its response will be completed with.
pub fn serve_rpc_deferred(
    req: &Request,
    app_version: &str,
    handle_body: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>, Ticket>,
) -> Reply {
    match route_rpc(req, app_version) {
        Ok(()) => match handle_body(&req.body) {
            Ok(body) => Reply::Now(json_response(body.unwrap_or_default())),
            Err(ticket) => Reply::Later(ticket),
        },
        Err(resp) => Reply::Now(resp),
    }
}

/// The response carrying a JSON-RPC response body.
pub fn json_response(body: Vec<u8>) -> Response {
    Response::new(200, "application/json", body)
}

/// `Ok` for a JSON-RPC request; otherwise the response to anything else (health, errors).
fn route_rpc(req: &Request, app_version: &str) -> Result<(), Response> {
    match req.path() {
        "/healthz" | "/healthz/" => Err(healthz(app_version)),
        "/" => {
            let no_query = req.query().is_none_or(str::is_empty);
            if req.method == "GET" && req.body.is_empty() && no_query {
                return Err(Response::empty(200));
            }
            if req.method == "PUT" || req.method == "DELETE" {
                return Err(Response::text(405, "method not allowed"));
            }
            if req.method != "OPTIONS" && !is_json(req.content_type.as_deref()) {
                return Err(Response::text(415, "invalid content type, only application/json is supported"));
            }
            Ok(())
        }
        _ => Err(Response::text(404, "404 page not found")),
    }
}

/// op-service's health response: the app version as JSON, with Go's encoder newline.
fn healthz(app_version: &str) -> Response {
    let mut body = serde_json::to_vec(&serde_json::json!({ "version": app_version })).unwrap_or_default();
    body.push(b'\n');
    Response::new(200, "application/json", body)
}

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let media = ct.split(';').next().unwrap_or("").trim();
    JSON_TYPES.iter().any(|t| media.eq_ignore_ascii_case(t))
}
