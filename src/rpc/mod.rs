//! The RPC and metrics servers, sans-IO: `http` turns bytes into requests and responses into
//! bytes, `jsonrpc` answers JSON-RPC bodies from a method table, and this module routes a
//! request as op-node's servers do. The sockets live in `io::http_server`, which hands each
//! complete request to a `Service` (the node) and writes back what it returns.
//!
//! Routes on the RPC listener (op-service's RPC handler around geth's HTTP server):
//! `/healthz` (any method) answers `{"version":..}`; `/` is JSON-RPC (a bodiless `GET` is a
//! health probe answered with an empty 200, `PUT`/`DELETE` get 405, a content type other than
//! JSON gets 415); anything else is 404. The metrics listener answers every request with the
//! text exposition, as op-node's promhttp handler does.

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
}

/// Answers complete HTTP requests (implemented by the node).
pub trait Service {
    /// Returns the response to `req`, received on `listener` at `now`.
    fn serve(&mut self, listener: Listener, req: &Request, now: Now) -> Response;
}

/// Content types geth accepts for JSON-RPC (parameters such as `charset` are allowed).
const JSON_TYPES: [&str; 3] = ["application/json", "application/json-rpc", "application/jsonrequest"];

/// Routes a request on the RPC listener; `handle_body` answers a JSON-RPC body.
pub fn serve_rpc(
    req: &Request,
    app_version: &str,
    handle_body: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Response {
    match req.path() {
        "/healthz" | "/healthz/" => healthz(app_version),
        "/" => {
            let no_query = req.query().is_none_or(str::is_empty);
            if req.method == "GET" && req.body.is_empty() && no_query {
                return Response::empty(200);
            }
            if req.method == "PUT" || req.method == "DELETE" {
                return Response::text(405, "method not allowed");
            }
            if req.method != "OPTIONS" && !is_json(req.content_type.as_deref()) {
                return Response::text(415, "invalid content type, only application/json is supported");
            }
            let body = handle_body(&req.body).unwrap_or_default();
            Response::new(200, "application/json", body)
        }
        _ => Response::text(404, "404 page not found"),
    }
}

/// Answers a scrape with the rendered metrics.
pub fn serve_metrics(text: String) -> Response {
    Response::new(200, crate::metrics::CONTENT_TYPE, text.into_bytes())
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
