//! Ethereum Node Records (EIP-778) with the "v4" identity scheme, as discv5 carries them and
//! op-node's bootnode lists name them: `enr:` + unpadded base64url of the RLP list
//! `[signature, seq, k1, v1, k2, v2, ...]`, keys sorted and unique, at most 300 bytes. The
//! signature is secp256k1 (r || s) over keccak256 of the list without it; the node id is
//! keccak256 of the uncompressed public key. op-node adds an `opstack` entry: RLP bytes holding
//! the L2 chain id and a version, each an unsigned varint.
//!
//! Records come from strangers (bootnode flags, NODES answers): decoding bounds the size,
//! checks the structure, never panics, and reports a bad signature instead of trusting it.

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};

use crate::protocol::primitives::{keccak256, B256};
use crate::protocol::rlp::{self, Rlp};
use crate::protocol::varint;

/// The largest record EIP-778 allows, encoded.
pub const MAX_ENR_SIZE: usize = 300;

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrError(pub String);

impl std::fmt::Display for EnrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid ENR: {}", self.0)
    }
}

impl std::error::Error for EnrError {}

fn bad(what: impl Into<String>) -> EnrError {
    EnrError(what.into())
}

/// op-node's `opstack` entry: which OP chain a node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpStack {
    pub chain_id: u64,
    pub version: u64,
}

impl OpStack {
    /// The entry's value: RLP bytes of uvarint(chain id) ++ uvarint(version).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(20);
        varint::put(&mut b, self.chain_id);
        varint::put(&mut b, self.version);
        let mut out = Vec::with_capacity(b.len() + 1);
        rlp::put_bytes(&mut out, &b);
        out
    }

    fn decode(item: &[u8]) -> Result<OpStack, EnrError> {
        let b = Rlp::new(item).next_bytes().map_err(|e| bad(format!("opstack entry: {e}")))?;
        let (chain_id, n) = varint::read(b).map_err(|_| bad("opstack entry: bad chain id"))?;
        let (version, _) =
            varint::read(b.get(n..).unwrap_or(&[])).map_err(|_| bad("opstack entry: bad version"))?;
        Ok(OpStack { chain_id, version })
    }
}

/// A decoded record. The signature is checked once, at decoding (`signature_valid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enr {
    pub seq: u64,
    /// Keys and their values as RLP items, sorted by key.
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    signature: [u8; 64],
    /// The compressed secp256k1 public key (`secp256k1` entry).
    pub public_key: [u8; 33],
    pub node_id: B256,
    pub signature_valid: bool,
    /// The record as encoded (RLP).
    raw: Vec<u8>,
}

impl Enr {
    /// Parses `enr:...` text.
    pub fn from_text(text: &str) -> Result<Enr, EnrError> {
        let b64 = text.trim().strip_prefix("enr:").ok_or_else(|| bad("does not start with enr:"))?;
        if b64.len() > MAX_ENR_SIZE.div_ceil(3) * 4 {
            return Err(bad(format!("longer than {MAX_ENR_SIZE} bytes")));
        }
        let raw = base64url_decode(b64).ok_or_else(|| bad("not unpadded base64url"))?;
        Enr::decode(&raw)
    }

    /// Parses the RLP encoding.
    pub fn decode(raw: &[u8]) -> Result<Enr, EnrError> {
        if raw.len() > MAX_ENR_SIZE {
            return Err(bad(format!("{} bytes, more than {MAX_ENR_SIZE}", raw.len())));
        }
        let err = |e: rlp::RlpError| bad(e.to_string());
        let mut outer = Rlp::new(raw);
        let mut list = outer.next_list().map_err(err)?;
        outer.finish().map_err(|_| bad("bytes after the record"))?;
        let sig = list.next_bytes().map_err(err)?;
        let seq = list.next_u64().map_err(err)?;
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        while !list.is_empty() {
            let key = list.next_bytes().map_err(err)?;
            let value = list.next_raw().map_err(|_| bad("a key without a value"))?;
            if pairs.last().is_some_and(|(k, _)| k.as_slice() >= key) {
                return Err(bad("keys are not sorted and unique"));
            }
            pairs.push((key.to_vec(), value.to_vec()));
        }
        let get = |k: &[u8]| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_slice());
        let id = get(b"id").ok_or_else(|| bad("no id entry"))?;
        if Rlp::new(id).next_bytes().map_err(err)? != b"v4" {
            return Err(bad("identity scheme is not v4"));
        }
        let pk = get(b"secp256k1").ok_or_else(|| bad("no secp256k1 entry"))?;
        let public_key: [u8; 33] =
            Rlp::new(pk).next_fixed().map_err(|_| bad("secp256k1 entry is not 33 bytes"))?;
        let key = VerifyingKey::from_sec1_bytes(&public_key)
            .map_err(|_| bad("secp256k1 entry is not a public key"))?;
        let signature: [u8; 64] = sig.try_into().map_err(|_| bad("signature is not 64 bytes"))?;
        let content = content(seq, &pairs);
        let signature_valid = Signature::from_slice(&signature)
            .is_ok_and(|s| key.verify_prehash(&keccak256(&content).0, &s).is_ok());
        let uncompressed = key.to_encoded_point(false);
        let node_id = keccak256(&uncompressed.as_bytes()[1..]);
        Ok(Enr { seq, pairs, signature, public_key, node_id, signature_valid, raw: raw.to_vec() })
    }

    /// A record signed with `key`: `pairs` (key, RLP item) plus the scheme's `id` and
    /// `secp256k1` entries.
    pub fn sign(key: &SigningKey, seq: u64, mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Enr {
        let public_key: [u8; 33] =
            key.verifying_key().to_encoded_point(true).as_bytes().try_into().unwrap_or([0; 33]);
        pairs.retain(|(k, _)| k != b"id" && k != b"secp256k1");
        pairs.push(entry_bytes("id", b"v4"));
        pairs.push(entry_bytes("secp256k1", &public_key));
        crate::sort::sort(&mut pairs);
        pairs.dedup_by(|a, b| a.0 == b.0);
        let content = content(seq, &pairs);
        let sig: Signature = match key.sign_prehash(&keccak256(&content).0) {
            Ok(s) => s,
            // Signing a 32-byte digest with a valid key cannot fail; an empty signature would
            // only make the record invalid.
            Err(_) => Signature::from_slice(&[1; 64]).expect("constant"),
        };
        let signature: [u8; 64] = sig.to_bytes().into();
        let raw = rlp::encode_list(|o| {
            rlp::put_bytes(o, &signature);
            rlp::put_u64(o, seq);
            for (k, v) in &pairs {
                rlp::put_bytes(o, k);
                o.extend_from_slice(v);
            }
        });
        match Enr::decode(&raw) {
            Ok(e) => e,
            // Only a record past 300 bytes (too many pairs) gets here: it stays unusable.
            Err(_) => {
                Enr { seq, pairs, signature, public_key, node_id: B256::ZERO, signature_valid: false, raw }
            }
        }
    }

    /// The libp2p peer id of the record's key (a discovered node is dialled as this peer).
    pub fn peer_id(&self) -> Result<crate::p2p::identity::PeerId, crate::p2p::identity::IdentityError> {
        let mut pb = vec![0x08, 0x02, 0x12, 33];
        pb.extend_from_slice(&self.public_key);
        let key = crate::p2p::identity::PublicKey::from_protobuf(&pb)?;
        Ok(crate::p2p::identity::PeerId::from_public_key(&key))
    }

    /// The record with `entries` set (replacing the same keys), signed with `key` under the
    /// next sequence number.
    pub fn updated(&self, key: &SigningKey, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Enr {
        let mut pairs: Vec<_> =
            self.pairs.iter().filter(|(k, _)| !entries.iter().any(|(n, _)| n == k)).cloned().collect();
        pairs.extend(entries);
        Enr::sign(key, self.seq + 1, pairs)
    }

    /// Whether `other` holds the same entries (whatever its sequence number and signature).
    pub fn same_entries(&self, other: &Enr) -> bool {
        self.pairs == other.pairs
    }

    /// The record as `enr:` text.
    pub fn to_text(&self) -> String {
        format!("enr:{}", crate::protocol::jwt::base64url(&self.raw))
    }

    /// The RLP encoding.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    fn bytes<const N: usize>(&self, key: &[u8]) -> Option<[u8; N]> {
        Rlp::new(self.get(key)?).next_fixed().ok()
    }

    fn port(&self, key: &[u8]) -> Option<u16> {
        Rlp::new(self.get(key)?).next_u64().ok().and_then(|p| u16::try_from(p).ok())
    }

    pub fn ip(&self) -> Option<std::net::Ipv4Addr> {
        self.bytes::<4>(b"ip").map(std::net::Ipv4Addr::from)
    }

    pub fn ip6(&self) -> Option<std::net::Ipv6Addr> {
        self.bytes::<16>(b"ip6").map(std::net::Ipv6Addr::from)
    }

    pub fn tcp(&self) -> Option<u16> {
        self.port(b"tcp")
    }

    pub fn udp(&self) -> Option<u16> {
        self.port(b"udp")
    }

    pub fn tcp6(&self) -> Option<u16> {
        self.port(b"tcp6")
    }

    pub fn udp6(&self) -> Option<u16> {
        self.port(b"udp6")
    }

    /// The `opstack` entry; `Err` when present but malformed.
    pub fn opstack(&self) -> Result<Option<OpStack>, EnrError> {
        self.get(b"opstack").map(OpStack::decode).transpose()
    }

    /// `op-lite p2p enr decode`'s JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let opstack = match self.opstack() {
            Ok(Some(o)) => serde_json::json!({"chainId": o.chain_id, "version": o.version}),
            _ => serde_json::Value::Null,
        };
        serde_json::json!({
            "seq": self.seq,
            "nodeId": self.node_id,
            "publicKey": format!("0x{}", crate::protocol::primitives::to_hex(&self.public_key)),
            "ip": self.ip().map(|ip| ip.to_string()).or_else(|| self.ip6().map(|ip| ip.to_string())),
            "tcp": self.tcp().or(self.tcp6()),
            "udp": self.udp().or(self.udp6()),
            "opstack": opstack,
            "signatureValid": self.signature_valid,
        })
    }
}

/// An entry whose value is a byte string (`ip`, `ip6`), for `Enr::sign`.
pub fn entry_bytes(key: &str, v: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut o = Vec::with_capacity(v.len() + 1);
    rlp::put_bytes(&mut o, v);
    (key.as_bytes().to_vec(), o)
}

/// An entry whose value is an integer (`tcp`, `udp`), for `Enr::sign`.
pub fn entry_u64(key: &str, v: u64) -> (Vec<u8>, Vec<u8>) {
    let mut o = Vec::with_capacity(9);
    rlp::put_u64(&mut o, v);
    (key.as_bytes().to_vec(), o)
}

/// The signed content: RLP `[seq, k1, v1, ...]`.
fn content(seq: u64, pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    rlp::encode_list(|o| {
        rlp::put_u64(o, seq);
        for (k, v) in pairs {
            rlp::put_bytes(o, k);
            o.extend_from_slice(v);
        }
    })
}

/// Unpadded base64url (RFC 4648 §5) in its one canonical form, as ENR text uses it (one text
/// per record); `None` for anything else.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let raw = crate::protocol::jwt::base64url_decode(s)?;
    (crate::protocol::jwt::base64url(&raw) == s).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EIP-778's example record, its key and node id.
    const EXAMPLE: &str = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
    const EXAMPLE_KEY: &str = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";
    const EXAMPLE_ID: &str = "0xa448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7";

    #[test]
    fn eip_778_example() {
        let e = Enr::from_text(EXAMPLE).unwrap();
        assert!(e.signature_valid);
        assert_eq!(e.seq, 1);
        assert_eq!(e.node_id.to_string(), EXAMPLE_ID);
        assert_eq!(e.ip(), Some(std::net::Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(e.udp(), Some(30303));
        assert_eq!(e.tcp(), None);
        assert_eq!(e.opstack(), Ok(None));
        assert_eq!(e.to_text(), EXAMPLE);
        // Signed again with the example's key: the same record (signatures are deterministic).
        let key =
            SigningKey::from_slice(&crate::protocol::primitives::from_hex(EXAMPLE_KEY).unwrap()).unwrap();
        let again = Enr::sign(&key, 1, vec![entry_bytes("ip", &[127, 0, 0, 1]), entry_u64("udp", 30303)]);
        assert!(again.signature_valid);
        assert_eq!(again.node_id, e.node_id);
        assert_eq!(again.public_key, e.public_key);
    }

    #[test]
    fn op_stack_entry_round_trips() {
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        let o = OpStack { chain_id: 8453, version: 0 };
        let e = Enr::sign(&key, 9, vec![(b"opstack".to_vec(), o.encode())]);
        assert!(e.signature_valid);
        let back = Enr::from_text(&e.to_text()).unwrap();
        assert_eq!(back.opstack(), Ok(Some(o)));
        assert_eq!(back.seq, 9);
        // op-node's encoding of Base: RLP bytes 85 42 00.
        assert_eq!(o.encode(), vec![0x83, 0x85, 0x42, 0x00]);
    }

    #[test]
    fn a_changed_record_fails_its_signature() {
        let mut raw = Enr::from_text(EXAMPLE).unwrap().raw().to_vec();
        let n = raw.len();
        raw[n - 1] ^= 1; // the udp port
        let e = Enr::decode(&raw).unwrap();
        assert!(!e.signature_valid);
    }

    #[test]
    fn malformed_records_are_refused_not_panicked_on() {
        for bad in ["", "enr:", "enode://x", "enr:!!!!", "enr:-IS4QHCY", &EXAMPLE[..EXAMPLE.len() - 1]] {
            assert!(Enr::from_text(bad).is_err(), "{bad}");
        }
        let long = format!("enr:{}", "A".repeat(500));
        assert!(Enr::from_text(&long).unwrap_err().0.contains("longer"));
        // Every truncation and random bytes.
        let raw = Enr::from_text(EXAMPLE).unwrap().raw().to_vec();
        for n in 0..raw.len() {
            assert!(Enr::decode(&raw[..n]).is_err());
        }
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 320) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = Enr::decode(&b);
            // Mutations of the real record.
            b = raw.clone();
            let i = (rng.next_u64() as usize) % b.len();
            b[i] = rng.next_u64() as u8;
            if let Ok(e) = Enr::decode(&b) {
                let _ = (e.opstack(), e.to_json());
            }
        }
        // Unsorted keys.
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        let e = Enr::sign(&key, 1, vec![]);
        let swapped = rlp::encode_list(|o| {
            rlp::put_bytes(o, &[0; 64]);
            rlp::put_u64(o, 1);
            for (k, v) in e.pairs.iter().rev() {
                rlp::put_bytes(o, k);
                o.extend_from_slice(v);
            }
        });
        assert_eq!(Enr::decode(&swapped).unwrap_err().0, "keys are not sorted and unique");
    }

    #[test]
    fn base64url_as_rfc_4648() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0xff, 0xfe, 0xfd]] {
            let text = crate::protocol::jwt::base64url(data);
            assert_eq!(base64url_decode(&text).as_deref(), Some(data));
        }
        assert_eq!(base64url_decode("Zg=="), None);
        assert_eq!(base64url_decode("Zh"), None, "non-zero trailing bits");
        assert_eq!(base64url_decode("Z"), None);
    }
}
