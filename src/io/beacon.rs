//! The L1 beacon API client (op-node's `L1BeaconClient`): blobs by slot and versioned hash,
//! with fallback endpoints tried in turn. A blob is accepted only when its recomputed KZG
//! commitment hashes to the versioned hash it was asked for, so a faulty or hostile beacon node
//! cannot feed the pipeline other data.
//!
//! Blobs come from `GET /eth/v1/beacon/blobs/{slot}?versioned_hashes=...` (the Fulu-era API that
//! op-node uses); a beacon node that does not serve it (404/400/405/501 without a block-level
//! answer) is asked for `/eth/v1/beacon/blob_sidecars/{slot}` instead, and the endpoint is
//! remembered as a sidecars-only one. Slot numbers come from `/eth/v1/beacon/genesis` and
//! `/eth/v1/config/spec` (or `--l1.beacon.slot-duration-override`), asked once.

use std::time::Duration;

use serde::Deserialize;

use crate::derive::data::{Arrival, FetchRequest};
use crate::event::Event;
use crate::protocol::blob::{kzg_commitment, verify_blob, versioned_hash, BLOB_SIZE, COMMITMENT_SIZE};
use crate::protocol::primitives::{from_hex, from_hex_fixed, B256};

/// Largest beacon response read: 21 blobs (the BPO2 maximum) as sidecars are about 6 MB of hex;
/// room for twice the blobs.
pub const MAX_BEACON_RESPONSE: u64 = 16 << 20;

/// Beacon client settings (`--l1.beacon*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeaconConfig {
    pub url: String,
    pub fallbacks: Vec<String>,
    /// `--l1.beacon-header`, split at the first colon.
    pub header: Option<(String, String)>,
    pub fetch_all_sidecars: bool,
    pub slot_duration_override: Option<u64>,
    pub timeout: Duration,
}

/// Why a beacon request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeaconError {
    /// Connection, timeout or read failure.
    Transport(String),
    /// An HTTP error status, with the body's message.
    Status(u16, String),
    /// The body was not the expected JSON.
    Malformed(String),
    /// Blobs came back but do not match what was asked for.
    Mismatch(String),
}

impl std::fmt::Display for BeaconError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BeaconError::Transport(m) => write!(f, "{m}"),
            BeaconError::Status(s, m) => write!(f, "failed request with status {s}: {m}"),
            BeaconError::Malformed(m) => write!(f, "malformed beacon response: {m}"),
            BeaconError::Mismatch(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for BeaconError {}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct Genesis {
    genesis_time: String,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(rename = "SECONDS_PER_SLOT")]
    seconds_per_slot: String,
}

#[derive(Deserialize)]
struct Version {
    version: String,
}

#[derive(Deserialize)]
struct Sidecar {
    blob: String,
    kzg_commitment: String,
}

struct Endpoint {
    base: String,
    /// Whether `/eth/v1/beacon/blobs` works there: unknown until tried.
    blobs_api: Option<bool>,
}

/// The beacon client; lives on the beacon worker thread.
pub struct BeaconClient {
    agent: ureq::Agent,
    endpoints: Vec<Endpoint>,
    /// The endpoint tried first (rotates past failing ones, as op-node's client pool).
    current: usize,
    header: Option<(String, String)>,
    fetch_all_sidecars: bool,
    slot_duration_override: Option<u64>,
    /// (genesis time, seconds per slot), fetched once.
    slots: Option<(u64, u64)>,
    /// Where GETs are counted (`rpc="l1-beacon"`, method the endpoint kind).
    stats: Option<super::rpc_client::RpcStats>,
}

impl BeaconClient {
    pub fn new(cfg: &BeaconConfig) -> BeaconClient {
        // One agent for the endpoint and its fallbacks: the roots are read if any is https.
        let urls = std::iter::once(&cfg.url).chain(&cfg.fallbacks).map(String::as_str);
        let agent = super::rpc_client::agent(cfg.timeout, urls);
        let endpoints = std::iter::once(&cfg.url)
            .chain(&cfg.fallbacks)
            .map(|u| Endpoint { base: u.trim_end_matches('/').to_string(), blobs_api: None })
            .collect();
        BeaconClient {
            agent,
            endpoints,
            current: 0,
            header: cfg.header.clone(),
            fetch_all_sidecars: cfg.fetch_all_sidecars,
            slot_duration_override: cfg.slot_duration_override,
            slots: None,
            stats: None,
        }
    }

    /// Counts the client's GETs under `rpc="l1-beacon"`, by endpoint kind (`blobs`,
    /// `blob_sidecars`, `genesis`, `spec`, `version`), never by URL.
    pub fn with_stats(mut self, stats: super::rpc_client::RpcStats) -> BeaconClient {
        self.stats = Some(stats);
        self
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, ep: usize, kind: &str, path: &str) -> Result<T, BeaconError> {
        let start = std::time::Instant::now();
        let got = self.get_body(ep, path);
        if let Some(stats) = &self.stats {
            // A response is `<nil>` on 200 and `http_<status>` otherwise; none on a transport failure.
            let label = match &got {
                Ok((200, _)) => Some("<nil>".to_string()),
                Ok((status, _)) => Some(format!("http_{status}")),
                Err(_) => None,
            };
            stats.record("l1-beacon", kind, start.elapsed(), label.as_deref());
        }
        let (status, body) = got?;
        let url = format!("{}/{}", self.endpoints[ep].base, path);
        if status != 200 {
            let msg = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(BeaconError::Status(status, msg));
        }
        serde_json::from_slice::<Data<T>>(&body)
            .map(|d| d.data)
            .map_err(|e| BeaconError::Malformed(format!("{url}: {e}")))
    }

    /// One GET: the status and the body (bounded).
    fn get_body(&self, ep: usize, path: &str) -> Result<(u16, super::rpc_client::Answer), BeaconError> {
        let url = format!("{}/{}", self.endpoints[ep].base, path);
        let mut req = self.agent.get(&url).header("accept", "application/json");
        if let Some((k, v)) = &self.header {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = req.call().map_err(|e| BeaconError::Transport(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = super::rpc_client::read_body(&mut resp, MAX_BEACON_RESPONSE)
            .map_err(|e| BeaconError::Transport(format!("{url}: {e}")))?;
        Ok((status, body))
    }

    /// `/eth/v1/node/version` of the primary endpoint (the start-up health check).
    pub fn version(&self) -> Result<String, BeaconError> {
        self.get::<Version>(0, "version", "eth/v1/node/version").map(|v| v.version)
    }

    /// Genesis time and slot duration, asked of the primary endpoint once.
    pub fn slot_params(&mut self) -> Result<(u64, u64), BeaconError> {
        if let Some(s) = self.slots {
            return Ok(s);
        }
        let num = |s: &str, what: &str| {
            s.parse::<u64>().map_err(|_| BeaconError::Malformed(format!("bad {what} {s:?}")))
        };
        let g: Genesis = self.get(0, "genesis", "eth/v1/beacon/genesis")?;
        let genesis = num(&g.genesis_time, "genesis_time")?;
        let secs = match self.slot_duration_override {
            Some(s) => s,
            None => {
                let spec: Spec = self.get(0, "spec", "eth/v1/config/spec")?;
                num(&spec.seconds_per_slot, "SECONDS_PER_SLOT")?
            }
        };
        if secs == 0 {
            return Err(BeaconError::Malformed("got bad value for seconds per slot: 0".into()));
        }
        self.slots = Some((genesis, secs));
        Ok((genesis, secs))
    }

    /// The slot of an L1 block time.
    pub fn slot(&mut self, time: u64) -> Result<u64, BeaconError> {
        let (genesis, secs) = self.slot_params()?;
        if time < genesis {
            return Err(BeaconError::Mismatch(format!(
                "provided timestamp ({time}) precedes genesis time ({genesis})"
            )));
        }
        Ok((time - genesis) / secs)
    }

    /// The blobs of `hashes` in order, each verified against its hash; endpoints are tried in
    /// turn starting from the last one that worked.
    pub fn blobs(&mut self, time: u64, hashes: &[B256]) -> Result<Vec<Vec<u8>>, BeaconError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let slot = self.slot(time)?;
        let mut errs = Vec::new();
        for _ in 0..self.endpoints.len() {
            let ep = self.current;
            match self.blobs_from(ep, slot, hashes) {
                Ok(b) => return Ok(b),
                Err(e) => {
                    errs.push(format!("{}: {e}", self.endpoints[ep].base));
                    self.current = (self.current + 1) % self.endpoints.len();
                }
            }
        }
        Err(BeaconError::Transport(format!("get blobs from beacon client: {}", errs.join("; "))))
    }

    fn blobs_from(&mut self, ep: usize, slot: u64, hashes: &[B256]) -> Result<Vec<Vec<u8>>, BeaconError> {
        if !self.fetch_all_sidecars && self.endpoints[ep].blobs_api != Some(false) {
            let query: Vec<String> = hashes.iter().map(|h| format!("versioned_hashes={h}")).collect();
            match self.get::<Vec<String>>(
                ep,
                "blobs",
                &format!("eth/v1/beacon/blobs/{slot}?{}", query.join("&")),
            ) {
                Ok(raw) => {
                    self.endpoints[ep].blobs_api = Some(true);
                    return match_blobs(raw.iter().map(|b| (b.as_str(), None)), hashes);
                }
                // Possibly an older beacon node without the blobs API. A node that has it
                // answers 404 for a missing block too, so the switch to sidecars sticks only
                // when the API never worked there and the sidecars do.
                Err(BeaconError::Status(s, m))
                    if matches!(s, 400 | 404 | 405 | 410 | 501) && self.endpoints[ep].blobs_api.is_none() =>
                {
                    let r = self.sidecars_from(ep, slot, hashes);
                    if let Err(BeaconError::Status(..) | BeaconError::Transport(_)) = r {
                        return Err(BeaconError::Status(s, m));
                    }
                    log::info!(
                        "beacon endpoint {} does not serve /eth/v1/beacon/blobs (HTTP {s}); using blob_sidecars",
                        self.endpoints[ep].base
                    );
                    self.endpoints[ep].blobs_api = Some(false);
                    return r;
                }
                Err(e) => return Err(e),
            }
        }
        self.sidecars_from(ep, slot, hashes)
    }

    fn sidecars_from(&mut self, ep: usize, slot: u64, hashes: &[B256]) -> Result<Vec<Vec<u8>>, BeaconError> {
        let sidecars: Vec<Sidecar> =
            self.get(ep, "blob_sidecars", &format!("eth/v1/beacon/blob_sidecars/{slot}"))?;
        // Keep only the sidecars whose claimed commitment we want; each is then verified by
        // recomputing its commitment.
        let wanted: Vec<(&str, Option<B256>)> = sidecars
            .iter()
            .filter_map(|s| {
                let c = from_hex_fixed::<COMMITMENT_SIZE>(&s.kzg_commitment).ok()?;
                let h = versioned_hash(&c);
                hashes.contains(&h).then_some((s.blob.as_str(), Some(h)))
            })
            .collect();
        match_blobs(wanted.into_iter(), hashes)
    }

    /// Answers a `FetchRequest::Blobs` as an event.
    pub fn handle(&mut self, req: FetchRequest) -> Event {
        let FetchRequest::Blobs { block, hashes } = &req else {
            return Event::ChainDataArrived(Box::new(Arrival::Failed(req, "not a blob request".into())));
        };
        match self.blobs(block.timestamp, hashes) {
            Ok(blobs) => Event::ChainDataArrived(Box::new(Arrival::Blobs {
                block: *block,
                hashes: hashes.clone(),
                blobs,
            })),
            Err(e) => {
                let msg = format!("failed to fetch blobs of L1 block {}: {e}", block.number);
                Event::ChainDataArrived(Box::new(Arrival::Failed(req, msg)))
            }
        }
    }
}

/// Decodes and verifies returned blobs, placing each at the position of the hash it commits to
/// (op-node's matching: a blob that matches no requested hash fails the whole fetch). `hint` is
/// the hash a sidecar claims; it is checked, not trusted.
fn match_blobs<'a>(
    raw: impl Iterator<Item = (&'a str, Option<B256>)>,
    hashes: &[B256],
) -> Result<Vec<Vec<u8>>, BeaconError> {
    let mut out: Vec<Option<Vec<u8>>> = vec![None; hashes.len()];
    let mut count = 0;
    for (hex, hint) in raw {
        count += 1;
        if count > hashes.len() {
            return Err(BeaconError::Mismatch(format!(
                "more blobs returned than the {} requested",
                hashes.len()
            )));
        }
        if hex.len() > 2 + 2 * BLOB_SIZE {
            return Err(BeaconError::Malformed(format!("blob of {} hex chars", hex.len())));
        }
        let blob = from_hex(hex).map_err(|e| BeaconError::Malformed(format!("blob hex: {e}")))?;
        let got = match hint {
            Some(h) => verify_blob(&blob, &h).map(|_| h),
            None => kzg_commitment(&blob).map(|c| versioned_hash(&c)),
        }
        .map_err(|e| BeaconError::Mismatch(format!("blob failed verification: {e}")))?;
        let slot = (0..hashes.len()).find(|&i| hashes[i] == got && out[i].is_none()).ok_or_else(|| {
            BeaconError::Mismatch(format!(
                "received a blob hash that does not match any expected hash: {got}"
            ))
        })?;
        out[slot] = Some(blob);
    }
    let missing = out.iter().filter(|b| b.is_none()).count();
    if missing > 0 {
        return Err(BeaconError::Mismatch(format!("expected {} blobs but got {}", hashes.len(), count)));
    }
    Ok(out.into_iter().flatten().collect())
}

/// The start-up check (op-node's `initL1BeaconAPI`): the version endpoint, up to 5 attempts
/// with exponential backoff. `ignore` (`--l1.beacon.ignore`) turns failure into a warning.
pub fn startup_check(client: &BeaconClient, ignore: bool) -> Result<(), String> {
    let mut delay = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(delay);
            delay *= 2;
        }
        match client.version() {
            Ok(v) => {
                log::info!("Connected to L1 Beacon API, ready for EIP-4844 blobs retrieval. version={v}");
                return Ok(());
            }
            // A 4xx is an answer (e.g. a beacon API without the version endpoint); only
            // transport failures and server errors are worth waiting for.
            Err(e @ BeaconError::Status(400..=499, _)) => {
                last = e.to_string();
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    if ignore {
        log::warn!(
            "Failed to check L1 Beacon API version, but configuration ignores results. \
             The node may be unable to retrieve EIP-4844 blobs data. err={last}"
        );
        Ok(())
    } else {
        Err(format!("failed to check L1 Beacon API version: {last}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::stub_http::{StubRequest, StubResponse, StubServer};
    use crate::protocol::blob::encode_blob;
    use crate::protocol::primitives::to_hex_prefixed;
    use std::sync::{Arc, Mutex};

    fn blob(text: &str) -> (Vec<u8>, B256) {
        let b = encode_blob(text.as_bytes()).unwrap();
        let h = versioned_hash(&kzg_commitment(&b).unwrap());
        (b, h)
    }

    fn cfg(url: String) -> BeaconConfig {
        BeaconConfig {
            url,
            fallbacks: vec![],
            header: None,
            fetch_all_sidecars: false,
            slot_duration_override: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// A beacon node at genesis 1000, 12 s slots, holding `blobs` at slot 5; `api` says whether
    /// it serves the blobs endpoint (else only sidecars). Records the paths asked.
    fn beacon(blobs: Vec<Vec<u8>>, api: bool, log: Arc<Mutex<Vec<String>>>) -> StubServer {
        StubServer::start(move |r: &StubRequest| {
            log.lock().unwrap().push(r.path.clone());
            let p = r.path.as_str();
            let body = if p == "/eth/v1/beacon/genesis" {
                r#"{"data":{"genesis_time":"1000"}}"#.to_string()
            } else if p == "/eth/v1/config/spec" {
                r#"{"data":{"SECONDS_PER_SLOT":"12","OTHER":"x"}}"#.to_string()
            } else if p.starts_with("/eth/v1/beacon/blobs/5?") && api {
                // Only the requested ones, in the server's own order (reversed).
                let want: Vec<&str> = p.split("versioned_hashes=").skip(1).map(|s| &s[..66]).collect();
                let mut out: Vec<String> = blobs
                    .iter()
                    .filter(|b| {
                        let h = versioned_hash(&kzg_commitment(b).unwrap()).to_string();
                        want.contains(&h.as_str())
                    })
                    .map(|b| to_hex_prefixed(b))
                    .collect();
                out.reverse();
                serde_json::json!({ "data": out }).to_string()
            } else if p == "/eth/v1/beacon/blob_sidecars/5" && !api {
                let sc: Vec<_> = blobs
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        serde_json::json!({"index": i.to_string(), "blob": to_hex_prefixed(b),
                            "kzg_commitment": to_hex_prefixed(&kzg_commitment(b).unwrap())})
                    })
                    .collect();
                serde_json::json!({ "data": sc }).to_string()
            } else {
                return StubResponse::json(404, r#"{"code":404,"message":"not found"}"#);
            };
            StubResponse::json(200, body)
        })
        .unwrap()
    }

    #[test]
    fn blobs_api_results_are_verified_and_ordered() {
        let (a, ha) = blob("first");
        let (b, hb) = blob("second");
        let (c, _) = blob("not asked for");
        let log = Arc::new(Mutex::new(Vec::new()));
        let srv = beacon(vec![a.clone(), b.clone(), c], true, log.clone());
        let mut cl = BeaconClient::new(&cfg(srv.url()));
        // Block time 1065 -> slot (1065 - 1000) / 12 = 5.
        assert_eq!(cl.blobs(1065, &[hb, ha]).unwrap(), vec![b, a]);
        assert!(cl.blobs(990, &[ha]).is_err(), "before genesis");
        assert_eq!(cl.blobs(1065, &[]).unwrap(), Vec::<Vec<u8>>::new());
        let paths = log.lock().unwrap().clone();
        assert_eq!(paths.iter().filter(|p| p.contains("genesis")).count(), 1, "slot params asked once");
    }

    #[test]
    fn older_nodes_fall_back_to_sidecars_and_stay_there() {
        let (a, ha) = blob("alpha");
        let (b, hb) = blob("beta");
        let log = Arc::new(Mutex::new(Vec::new()));
        let srv = beacon(vec![a.clone(), b.clone()], false, log.clone());
        let mut cl = BeaconClient::new(&cfg(srv.url()));
        assert_eq!(cl.blobs(1065, &[hb]).unwrap(), vec![b.clone()]);
        assert_eq!(cl.blobs(1070, &[ha, hb]).unwrap(), vec![a, b]);
        let paths = log.lock().unwrap().clone();
        assert_eq!(paths.iter().filter(|p| p.starts_with("/eth/v1/beacon/blobs/")).count(), 1);
        assert_eq!(paths.iter().filter(|p| p.contains("blob_sidecars")).count(), 2);
        // This node has no version endpoint: start-up fails unless told to ignore the check.
        assert!(startup_check(&cl, false).unwrap_err().contains("404"));
        assert!(startup_check(&cl, true).is_ok());
    }

    #[test]
    fn a_blob_that_does_not_commit_to_the_hash_is_rejected() {
        let (mut a, ha) = blob("genuine");
        a[100] ^= 1; // still a valid field element, different commitment
        let srv = StubServer::start(move |r: &StubRequest| {
            if r.path.ends_with("genesis") {
                return StubResponse::json(200, r#"{"data":{"genesis_time":"0"}}"#);
            }
            StubResponse::json(200, serde_json::json!({ "data": [to_hex_prefixed(&a)] }).to_string())
        })
        .unwrap();
        let mut c = cfg(srv.url());
        c.slot_duration_override = Some(12);
        let mut cl = BeaconClient::new(&c);
        let e = cl.blobs(24, &[ha]).unwrap_err().to_string();
        assert!(e.contains("does not match any expected hash"), "{e}");
        // Garbage in place of a blob is an error too, not a panic.
        let srv2 = StubServer::start(|r: &StubRequest| {
            if r.path.ends_with("genesis") {
                return StubResponse::json(200, r#"{"data":{"genesis_time":"0"}}"#);
            }
            StubResponse::json(200, r#"{"data":["0x1234", 5]}"#)
        })
        .unwrap();
        c.url = srv2.url();
        assert!(BeaconClient::new(&c).blobs(24, &[ha]).is_err());
    }

    #[test]
    fn fallbacks_are_tried_in_turn_with_the_configured_header() {
        let (a, ha) = blob("from the archive");
        let down = StubServer::start(|_: &StubRequest| StubResponse::json(500, "oops")).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let archive = StubServer::start(move |r: &StubRequest| {
            s2.lock().unwrap().push(r.header("x-api-key").map(str::to_string));
            if r.path.ends_with("genesis") {
                return StubResponse::json(200, r#"{"data":{"genesis_time":"0"}}"#);
            }
            StubResponse::json(200, serde_json::json!({ "data": [to_hex_prefixed(&a)] }).to_string())
        })
        .unwrap();
        // Slot parameters come from the primary; give it an override so only blobs are asked.
        let mut c = cfg(down.url());
        c.fallbacks = vec![archive.url()];
        c.header = Some(("x-api-key".into(), "s3cret".into()));
        c.slot_duration_override = Some(12);
        let mut cl = BeaconClient::new(&c);
        assert!(cl.blobs(24, &[ha]).is_err(), "genesis comes from the primary, which is down");
        cl.slots = Some((0, 12));
        assert!(cl.blobs(24, &[ha]).is_ok());
        assert_eq!(cl.current, 1, "the working endpoint is tried first next time");
        assert!(seen.lock().unwrap().iter().all(|h| h.as_deref() == Some("s3cret")));
    }
}
