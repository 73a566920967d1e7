//! The beacon client against a real beacon response: the Goerli `blob_sidecars` for slot
//! 7422094 (five real blobs with their KZG commitments), served by a loopback stub that, like
//! an older beacon node, has no `/eth/v1/beacon/blobs` endpoint.

use std::time::Duration;

use crate::stub_http::{StubRequest, StubResponse, StubServer};
use op_lite::io::beacon::{BeaconClient, BeaconConfig};
use op_lite::protocol::blob::{kzg_commitment, versioned_hash};
use op_lite::protocol::primitives::{from_hex, from_hex_fixed, B256};
use serde_json::Value;

use crate::support::{fixtures, read_json};

fn sidecars() -> Option<Value> {
    let p =
        fixtures()?.join("protocol-vectors/blobs/beacon-api/eth_v1_beacon_blob_sidecars_7422094_goerli.json");
    Some(read_json(&p))
}

fn serve(body: String, slot_time: u64) -> StubServer {
    StubServer::start(move |r: &StubRequest| match r.path.as_str() {
        "/eth/v1/beacon/genesis" => StubResponse::json(200, r#"{"data":{"genesis_time":"1616508000"}}"#),
        "/eth/v1/config/spec" => StubResponse::json(200, r#"{"data":{"SECONDS_PER_SLOT":"12"}}"#),
        p if p == format!("/eth/v1/beacon/blob_sidecars/{slot_time}") => {
            StubResponse::json(200, body.clone())
        }
        _ => StubResponse::json(404, r#"{"code":404,"message":"Not found"}"#),
    })
    .unwrap()
}

fn config(url: String) -> BeaconConfig {
    BeaconConfig {
        url,
        fallbacks: vec![],
        header: None,
        fetch_all_sidecars: false,
        slot_duration_override: None,
        timeout: Duration::from_secs(10),
    }
}

#[test]
fn real_goerli_sidecars_verify_against_their_commitments() {
    let Some(sc) = sidecars() else { return };
    let items = sc["data"].as_array().unwrap();
    let hashes: Vec<B256> = items
        .iter()
        .map(|s| versioned_hash(&from_hex_fixed(s["kzg_commitment"].as_str().unwrap()).unwrap()))
        .collect();
    // Our KZG commitment of each real blob equals the one the beacon chain recorded.
    for s in items {
        let blob = from_hex(s["blob"].as_str().unwrap()).unwrap();
        let c = from_hex_fixed::<48>(s["kzg_commitment"].as_str().unwrap()).unwrap();
        assert_eq!(kzg_commitment(&blob).unwrap(), c);
    }
    let srv = serve(sc.to_string(), 7422094);
    let mut cl = BeaconClient::new(&config(srv.url()));
    // Slot 7422094 starts at genesis + 12 * slot; ask for three of the five, out of order.
    let t = 1616508000 + 12 * 7422094;
    let want = [hashes[3], hashes[0], hashes[4]];
    let got = cl.blobs(t + 5, &want).unwrap();
    for (blob, i) in got.iter().zip([3, 0, 4]) {
        assert_eq!(*blob, from_hex(items[i]["blob"].as_str().unwrap()).unwrap());
    }
    // A hash the slot does not have.
    assert!(cl.blobs(t, &[B256([1; 32])]).is_err());
}

#[test]
fn a_sidecar_claiming_a_commitment_its_blob_does_not_have_is_rejected() {
    let Some(mut sc) = sidecars() else { return };
    // Swap the blobs of sidecars 0 and 1: each claims a commitment its blob does not match.
    let b0 = sc["data"][0]["blob"].clone();
    sc["data"][0]["blob"] = sc["data"][1]["blob"].clone();
    sc["data"][1]["blob"] = b0;
    let c0 = from_hex_fixed(sc["data"][0]["kzg_commitment"].as_str().unwrap()).unwrap();
    let srv = serve(sc.to_string(), 7422094);
    let mut cl = BeaconClient::new(&config(srv.url()));
    let e = cl.blobs(1616508000 + 12 * 7422094, &[versioned_hash(&c0)]).unwrap_err().to_string();
    assert!(e.contains("verification"), "{e}");
}
