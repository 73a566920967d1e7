//! The discv5 v5.1 wire protocol (devp2p `discv5-wire.md`): packet masking, the three packet
//! kinds, message sealing, the handshake's key agreement and identity proof, and the messages.
//! Pure functions over bytes; sessions and timing live in the protocol state machine.
//!
//! ```text
//! packet        = masking-iv || aesctr(dest-id[:16], masking-iv, header) || message
//! header        = "discv5" || 0x0001 || flag || nonce(12) || authdata-size(2) || authdata
//! message       = aesgcm(key, nonce, message-type || rlp(message-data), masking-iv || header)
//! ```
//!
//! Packets come from anyone on the internet: decoding checks sizes before reading (63 to 1280
//! bytes, authdata within the packet) and never panics.

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes128Gcm;
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256};

use crate::protocol::primitives::B256;
use crate::protocol::rlp::{self, Rlp};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Largest packet sent or processed.
pub const MAX_PACKET_SIZE: usize = 1280;
/// Smallest valid packet (masking IV, static header, a 32-byte authdata... minus the message).
pub const MIN_PACKET_SIZE: usize = 63;
const PROTOCOL_ID: &[u8; 6] = b"discv5";
const VERSION: [u8; 2] = [0, 1];
const STATIC_HEADER_SIZE: usize = 23;
const IV_SIZE: usize = 16;
/// AES-GCM tag bytes appended to every sealed message.
pub const TAG_SIZE: usize = 16;

/// A 96-bit message nonce.
pub type Nonce = [u8; 12];

/// Why a packet or message was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireError {}

/// The packet kinds (`flag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary message from `src_id`.
    Message { src_id: B256 },
    /// A challenge: sign `id_nonce`; the challenger knows our record at `enr_seq`.
    WhoAreYou { id_nonce: [u8; 16], enr_seq: u64 },
    /// A handshake message: a new session from `src_id`.
    Handshake { src_id: B256, id_signature: Vec<u8>, eph_pubkey: Vec<u8>, record: Option<Vec<u8>> },
}

/// A decoded packet, with what authenticates its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub masking_iv: [u8; IV_SIZE],
    pub nonce: Nonce,
    pub kind: Kind,
    /// `masking-iv || header` (unmasked): the message's associated data, and for WHOAREYOU the
    /// `challenge-data` the handshake signs.
    pub authenticated: Vec<u8>,
    /// The sealed message (empty for WHOAREYOU).
    pub message: Vec<u8>,
}

fn mask(dest_id: &B256, iv: &[u8; IV_SIZE], data: &mut [u8]) {
    let mut key = [0u8; 16];
    key.copy_from_slice(&dest_id.0[..16]);
    let mut c = Aes128Ctr::new(&key.into(), iv.into());
    c.apply_keystream(data);
}

/// Unmasks and parses a packet sent to `dest_id` (our node id).
pub fn decode(dest_id: &B256, packet: &[u8]) -> Result<Packet, WireError> {
    if packet.len() < MIN_PACKET_SIZE {
        return Err(WireError("packet too small"));
    }
    if packet.len() > MAX_PACKET_SIZE {
        return Err(WireError("packet too large"));
    }
    let mut masking_iv = [0u8; IV_SIZE];
    masking_iv.copy_from_slice(&packet[..IV_SIZE]);
    // Unmask the static header first: it says how much authdata follows.
    let mut header = packet[IV_SIZE..IV_SIZE + STATIC_HEADER_SIZE].to_vec();
    let mut key = [0u8; 16];
    key.copy_from_slice(&dest_id.0[..16]);
    let mut c = Aes128Ctr::new(&key.into(), (&masking_iv).into());
    c.apply_keystream(&mut header);
    if &header[..6] != PROTOCOL_ID {
        return Err(WireError("not a discv5 packet"));
    }
    if header[6..8] != VERSION {
        return Err(WireError("unsupported discv5 version"));
    }
    let flag = header[8];
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&header[9..21]);
    let authdata_size = u16::from_be_bytes([header[21], header[22]]) as usize;
    let auth_end = IV_SIZE + STATIC_HEADER_SIZE + authdata_size;
    if auth_end > packet.len() {
        return Err(WireError("authdata past the packet's end"));
    }
    let mut authdata = packet[IV_SIZE + STATIC_HEADER_SIZE..auth_end].to_vec();
    c.apply_keystream(&mut authdata);
    let message = packet[auth_end..].to_vec();
    let kind = match flag {
        0 => {
            let src: [u8; 32] =
                authdata.as_slice().try_into().map_err(|_| WireError("bad message authdata"))?;
            if message.len() < TAG_SIZE {
                return Err(WireError("message too short"));
            }
            Kind::Message { src_id: B256(src) }
        }
        1 => {
            if authdata.len() != 24 || !message.is_empty() {
                return Err(WireError("bad WHOAREYOU"));
            }
            let mut id_nonce = [0u8; 16];
            id_nonce.copy_from_slice(&authdata[..16]);
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&authdata[16..]);
            Kind::WhoAreYou { id_nonce, enr_seq: u64::from_be_bytes(seq) }
        }
        2 => {
            if authdata.len() < 34 || message.len() < TAG_SIZE {
                return Err(WireError("bad handshake"));
            }
            let mut src = [0u8; 32];
            src.copy_from_slice(&authdata[..32]);
            let (sig_size, key_size) = (authdata[32] as usize, authdata[33] as usize);
            let sig_end = 34 + sig_size;
            let key_end = sig_end + key_size;
            if key_end > authdata.len() {
                return Err(WireError("handshake authdata too short"));
            }
            let record = (key_end < authdata.len()).then(|| authdata[key_end..].to_vec());
            Kind::Handshake {
                src_id: B256(src),
                id_signature: authdata[34..sig_end].to_vec(),
                eph_pubkey: authdata[sig_end..key_end].to_vec(),
                record,
            }
        }
        _ => return Err(WireError("unknown packet flag")),
    };
    let mut authenticated = Vec::with_capacity(auth_end);
    authenticated.extend_from_slice(&masking_iv);
    authenticated.extend_from_slice(&header);
    authenticated.extend_from_slice(&authdata);
    Ok(Packet { masking_iv, nonce, kind, authenticated, message })
}

/// The authdata of a packet kind.
fn authdata(kind: &Kind) -> Vec<u8> {
    match kind {
        Kind::Message { src_id } => src_id.0.to_vec(),
        Kind::WhoAreYou { id_nonce, enr_seq } => {
            let mut a = id_nonce.to_vec();
            a.extend_from_slice(&enr_seq.to_be_bytes());
            a
        }
        Kind::Handshake { src_id, id_signature, eph_pubkey, record } => {
            let mut a = src_id.0.to_vec();
            a.push(id_signature.len() as u8);
            a.push(eph_pubkey.len() as u8);
            a.extend_from_slice(id_signature);
            a.extend_from_slice(eph_pubkey);
            if let Some(r) = record {
                a.extend_from_slice(r);
            }
            a
        }
    }
}

/// `masking-iv || header` of a packet about to be sent (the associated data of its message).
pub fn authenticated_data(masking_iv: &[u8; IV_SIZE], nonce: &Nonce, kind: &Kind) -> Vec<u8> {
    let auth = authdata(kind);
    let flag = match kind {
        Kind::Message { .. } => 0,
        Kind::WhoAreYou { .. } => 1,
        Kind::Handshake { .. } => 2,
    };
    let mut out = Vec::with_capacity(IV_SIZE + STATIC_HEADER_SIZE + auth.len());
    out.extend_from_slice(masking_iv);
    out.extend_from_slice(PROTOCOL_ID);
    out.extend_from_slice(&VERSION);
    out.push(flag);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&(auth.len() as u16).to_be_bytes());
    out.extend_from_slice(&auth);
    out
}

/// A packet to `dest_id`: the header masked, `message` (already sealed with
/// `authenticated_data` as its associated data; empty for WHOAREYOU) appended.
pub fn encode(dest_id: &B256, authenticated: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(authenticated.len() + message.len());
    out.extend_from_slice(authenticated);
    let mut iv = [0u8; IV_SIZE];
    iv.copy_from_slice(&authenticated[..IV_SIZE]);
    mask(dest_id, &iv, &mut out[IV_SIZE..]);
    out.extend_from_slice(message);
    out
}

/// AES-128-GCM sealing of a message (tag appended).
pub fn seal(key: &[u8; 16], nonce: &Nonce, pt: &[u8], ad: &[u8]) -> Vec<u8> {
    let cipher = Aes128Gcm::new(key.into());
    let mut out = Vec::with_capacity(pt.len() + TAG_SIZE);
    out.extend_from_slice(pt);
    // Encryption only fails for inputs past GCM's 64 GiB limit.
    match cipher.encrypt_in_place_detached(nonce.into(), ad, &mut out) {
        Ok(tag) => out.extend_from_slice(&tag),
        Err(_) => out.clear(),
    }
    out
}

/// Opens a sealed message; `None` when it does not authenticate.
pub fn open(key: &[u8; 16], nonce: &Nonce, ct: &[u8], ad: &[u8]) -> Option<Vec<u8>> {
    let split = ct.len().checked_sub(TAG_SIZE)?;
    let cipher = Aes128Gcm::new(key.into());
    let mut out = ct[..split].to_vec();
    let tag: [u8; TAG_SIZE] = ct[split..].try_into().ok()?;
    cipher.decrypt_in_place_detached(nonce.into(), ad, &mut out, &tag.into()).ok()?;
    Some(out)
}

/// The node id of a secp256k1 public key (keccak256 of its uncompressed coordinates).
pub fn node_id(key: &VerifyingKey) -> B256 {
    crate::protocol::primitives::keccak256(&key.to_encoded_point(false).as_bytes()[1..])
}

/// `ecdh(pubkey, privkey)`: the compressed shared point (33 bytes).
pub fn ecdh(pubkey: &[u8], secret: &SigningKey) -> Option<[u8; 33]> {
    let pk = k256::PublicKey::from_sec1_bytes(pubkey).ok()?;
    let shared = (pk.to_projective() * *secret.as_nonzero_scalar().as_ref()).to_affine();
    shared.to_encoded_point(true).as_bytes().try_into().ok()
}

/// Session keys from the handshake: (initiator-key, recipient-key).
pub fn derive_keys(
    secret: &[u8; 33],
    challenge_data: &[u8],
    id_a: &B256,
    id_b: &B256,
) -> ([u8; 16], [u8; 16]) {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(challenge_data), secret);
    let mut info = Vec::with_capacity(26 + 64);
    info.extend_from_slice(b"discovery v5 key agreement");
    info.extend_from_slice(&id_a.0);
    info.extend_from_slice(&id_b.0);
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit.
    let _ = hk.expand(&info, &mut okm);
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    a.copy_from_slice(&okm[..16]);
    b.copy_from_slice(&okm[16..]);
    (a, b)
}

fn id_signature_input(challenge_data: &[u8], eph_pubkey: &[u8], id_b: &B256) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"discovery v5 identity proof");
    h.update(challenge_data);
    h.update(eph_pubkey);
    h.update(id_b.0);
    h.finalize().into()
}

/// The handshake's identity proof (64 bytes, r || s).
pub fn id_sign(key: &SigningKey, challenge_data: &[u8], eph_pubkey: &[u8], id_b: &B256) -> [u8; 64] {
    let digest = id_signature_input(challenge_data, eph_pubkey, id_b);
    let sig: Result<Signature, _> = key.sign_prehash(&digest);
    sig.map(|s| s.to_bytes().into()).unwrap_or([0; 64])
}

/// Checks an identity proof against the signer's public key (compressed, from its record).
pub fn id_verify(
    pubkey: &[u8],
    signature: &[u8],
    challenge_data: &[u8],
    eph_pubkey: &[u8],
    id_b: &B256,
) -> bool {
    let (Ok(key), Ok(sig)) = (VerifyingKey::from_sec1_bytes(pubkey), Signature::from_slice(signature)) else {
        return false;
    };
    key.verify_prehash(&id_signature_input(challenge_data, eph_pubkey, id_b), &sig).is_ok()
}

/// Longest request id (spec: at most 8 bytes).
pub const MAX_REQUEST_ID: usize = 8;
/// Distances accepted in one FINDNODE.
pub const MAX_DISTANCES: usize = 8;

/// The protocol messages op-lite speaks (topic messages are not used by the OP Stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Ping {
        req_id: Vec<u8>,
        enr_seq: u64,
    },
    Pong {
        req_id: Vec<u8>,
        enr_seq: u64,
        ip: std::net::IpAddr,
        port: u16,
    },
    FindNode {
        req_id: Vec<u8>,
        distances: Vec<u16>,
    },
    /// `records`: the RLP encodings of the node records.
    Nodes {
        req_id: Vec<u8>,
        total: u64,
        records: Vec<Vec<u8>>,
    },
    TalkReq {
        req_id: Vec<u8>,
        protocol: Vec<u8>,
        request: Vec<u8>,
    },
    TalkResp {
        req_id: Vec<u8>,
        response: Vec<u8>,
    },
}

impl Message {
    pub fn req_id(&self) -> &[u8] {
        match self {
            Message::Ping { req_id, .. }
            | Message::Pong { req_id, .. }
            | Message::FindNode { req_id, .. }
            | Message::Nodes { req_id, .. }
            | Message::TalkReq { req_id, .. }
            | Message::TalkResp { req_id, .. } => req_id,
        }
    }

    /// `message-type || rlp(message-data)`.
    pub fn encode(&self) -> Vec<u8> {
        let (ty, body) = match self {
            Message::Ping { req_id, enr_seq } => (
                1,
                rlp::encode_list(|o| {
                    rlp::put_bytes(o, req_id);
                    rlp::put_u64(o, *enr_seq);
                }),
            ),
            Message::Pong { req_id, enr_seq, ip, port } => (
                2,
                rlp::encode_list(|o| {
                    rlp::put_bytes(o, req_id);
                    rlp::put_u64(o, *enr_seq);
                    match ip {
                        std::net::IpAddr::V4(v4) => rlp::put_bytes(o, &v4.octets()),
                        std::net::IpAddr::V6(v6) => rlp::put_bytes(o, &v6.octets()),
                    }
                    rlp::put_u64(o, *port as u64);
                }),
            ),
            Message::FindNode { req_id, distances } => (
                3,
                rlp::encode_list(|o| {
                    rlp::put_bytes(o, req_id);
                    rlp::put_list(o, |l| {
                        for d in distances {
                            rlp::put_u64(l, *d as u64);
                        }
                    });
                }),
            ),
            Message::Nodes { req_id, total, records } => (
                4,
                rlp::encode_list(|o| {
                    rlp::put_bytes(o, req_id);
                    rlp::put_u64(o, *total);
                    rlp::put_list(o, |l| {
                        for r in records {
                            l.extend_from_slice(r);
                        }
                    });
                }),
            ),
            Message::TalkReq { req_id, protocol, request } => (
                5,
                rlp::encode_list(|o| {
                    rlp::put_bytes(o, req_id);
                    rlp::put_bytes(o, protocol);
                    rlp::put_bytes(o, request);
                }),
            ),
            Message::TalkResp { req_id, response } => (
                6,
                rlp::encode_list(|o| {
                    rlp::put_bytes(o, req_id);
                    rlp::put_bytes(o, response);
                }),
            ),
        };
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(ty);
        out.extend_from_slice(&body);
        out
    }

    /// Parses a decrypted message (bounded: request ids, distances, records).
    pub fn decode(pt: &[u8]) -> Result<Message, WireError> {
        let (&ty, body) = pt.split_first().ok_or(WireError("empty message"))?;
        let e = |_| WireError("malformed message");
        let mut outer = Rlp::new(body);
        let mut l = outer.next_list().map_err(e)?;
        outer.finish().map_err(|_| WireError("bytes after the message"))?;
        let req_id = l.next_bytes().map_err(e)?.to_vec();
        if req_id.len() > MAX_REQUEST_ID {
            return Err(WireError("request id longer than 8 bytes"));
        }
        let m = match ty {
            1 => Message::Ping { req_id, enr_seq: l.next_u64().map_err(e)? },
            2 => {
                let enr_seq = l.next_u64().map_err(e)?;
                let ip = match l.next_bytes().map_err(e)? {
                    b if b.len() == 4 => {
                        std::net::IpAddr::from(<[u8; 4]>::try_from(b).map_err(|_| WireError("ip"))?)
                    }
                    b if b.len() == 16 => {
                        std::net::IpAddr::from(<[u8; 16]>::try_from(b).map_err(|_| WireError("ip"))?)
                    }
                    _ => return Err(WireError("PONG ip is neither 4 nor 16 bytes")),
                };
                let port = u16::try_from(l.next_u64().map_err(e)?).map_err(|_| WireError("PONG port"))?;
                Message::Pong { req_id, enr_seq, ip, port }
            }
            3 => {
                let mut ds = l.next_list().map_err(e)?;
                let mut distances = Vec::new();
                while !ds.is_empty() {
                    if distances.len() == MAX_DISTANCES {
                        return Err(WireError("too many distances"));
                    }
                    let d = ds.next_u64().map_err(e)?;
                    distances.push(
                        u16::try_from(d).ok().filter(|d| *d <= 256).ok_or(WireError("distance > 256"))?,
                    );
                }
                Message::FindNode { req_id, distances }
            }
            4 => {
                let total = l.next_u64().map_err(e)?;
                let mut rs = l.next_list().map_err(e)?;
                let mut records = Vec::new();
                while !rs.is_empty() {
                    let r = rs.next_raw().map_err(e)?;
                    if r.len() > super::enr::MAX_ENR_SIZE {
                        return Err(WireError("record longer than 300 bytes"));
                    }
                    records.push(r.to_vec());
                }
                Message::Nodes { req_id, total, records }
            }
            5 => Message::TalkReq {
                req_id,
                protocol: l.next_bytes().map_err(e)?.to_vec(),
                request: l.next_bytes().map_err(e)?.to_vec(),
            },
            6 => Message::TalkResp { req_id, response: l.next_bytes().map_err(e)?.to_vec() },
            _ => return Err(WireError("unknown message type")),
        };
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::from_hex;

    fn hex(s: &str) -> Vec<u8> {
        from_hex(&s.split_whitespace().collect::<String>()).unwrap()
    }

    fn b256(s: &str) -> B256 {
        B256(hex(s).try_into().unwrap())
    }

    fn key(s: &str) -> SigningKey {
        SigningKey::from_slice(&hex(s)).unwrap()
    }

    // The devp2p spec's vectors (discv5-wire-test-vectors.md).
    const NODE_A_KEY: &str = "eef77acb6c6a6eebc5b363a475ac583ec7eccdb42b6481424c60f59aa326547f";
    const NODE_B_KEY: &str = "66fb62bfbd66b9177a138c1e5cddbe4f7c30c343e94e68df8769459cb1cde628";
    const SRC_ID: &str = "aaaa8419e9f49d0083561b48287df592939a8d19947d8c0ef88f2a4856a69fbb";
    const DEST_ID: &str = "bbbb9d047f0488c0b5a93c1c3f2d8bafc7c8ff337024a55434a0d0555de64db9";
    const PING: &str = "00000000000000000000000000000000088b3d4342774649325f313964a39e55
        ea96c005ad52be8c7560413a7008f16c9e6d2f43bbea8814a546b7409ce783d3
        4c4f53245d08dab84102ed931f66d1492acb308fa1c6715b9d139b81acbdcc";
    const WHOAREYOU: &str = "00000000000000000000000000000000088b3d434277464933a1ccc59f5967ad
        1d6035f15e528627dde75cd68292f9e6c27d6b66c8100a873fcbaed4e16b8d";
    const HANDSHAKE: &str = "00000000000000000000000000000000088b3d4342774649305f313964a39e55
        ea96c005ad521d8c7560413a7008f16c9e6d2f43bbea8814a546b7409ce783d3
        4c4f53245d08da4bb252012b2cba3f4f374a90a75cff91f142fa9be3e0a5f3ef
        268ccb9065aeecfd67a999e7fdc137e062b2ec4a0eb92947f0d9a74bfbf44dfb
        a776b21301f8b65efd5796706adff216ab862a9186875f9494150c4ae06fa4d1
        f0396c93f215fa4ef524f1eadf5f0f4126b79336671cbcf7a885b1f8bd2a5d83
        9cf8";
    const HANDSHAKE_ENR: &str = "00000000000000000000000000000000088b3d4342774649305f313964a39e55
        ea96c005ad539c8c7560413a7008f16c9e6d2f43bbea8814a546b7409ce783d3
        4c4f53245d08da4bb23698868350aaad22e3ab8dd034f548a1c43cd246be9856
        2fafa0a1fa86d8e7a3b95ae78cc2b988ded6a5b59eb83ad58097252188b902b2
        1481e30e5e285f19735796706adff216ab862a9186875f9494150c4ae06fa4d1
        f0396c93f215fa4ef524e0ed04c3c21e39b1868e1ca8105e585ec17315e755e6
        cfc4dd6cb7fd8e1a1f55e49b4b5eb024221482105346f3c82b15fdaae36a3bb1
        2a494683b4a3c7f2ae41306252fed84785e2bbff3b022812d0882f06978df84a
        80d443972213342d04b9048fc3b1d5fcb1df0f822152eced6da4d3f6df27e70e
        4539717307a0208cd208d65093ccab5aa596a34d7511401987662d8cf62b1394
        71";
    const CHALLENGE_SEQ0: &str = "000000000000000000000000000000006469736376350001010102030405060708090a0b0c00180102030405060708090a0b0c0d0e0f100000000000000000";
    const CHALLENGE_SEQ1: &str = "000000000000000000000000000000006469736376350001010102030405060708090a0b0c00180102030405060708090a0b0c0d0e0f100000000000000001";
    const EPH_KEY: &str = "0288ef00023598499cb6c940146d050d2b1fb914198c327f76aad590bead68b6";

    fn ping(seq: u64) -> Vec<u8> {
        Message::Ping { req_id: vec![0, 0, 0, 1], enr_seq: seq }.encode()
    }

    #[test]
    fn ordinary_message_packet() {
        let dest = b256(DEST_ID);
        let p = decode(&dest, &hex(PING)).unwrap();
        assert_eq!(p.kind, Kind::Message { src_id: b256(SRC_ID) });
        assert_eq!(p.nonce, [0xff; 12]);
        let pt = open(&[0; 16], &p.nonce, &p.message, &p.authenticated).unwrap();
        assert_eq!(Message::decode(&pt).unwrap(), Message::Ping { req_id: vec![0, 0, 0, 1], enr_seq: 2 });
        // Built again from its inputs: the same bytes.
        let ad = authenticated_data(&[0; 16], &[0xff; 12], &Kind::Message { src_id: b256(SRC_ID) });
        let sealed = seal(&[0; 16], &[0xff; 12], &ping(2), &ad);
        assert_eq!(encode(&dest, &ad, &sealed), hex(PING));
        // The node ids are those of the keys.
        assert_eq!(node_id(key(NODE_A_KEY).verifying_key()), b256(SRC_ID));
        assert_eq!(node_id(key(NODE_B_KEY).verifying_key()), b256(DEST_ID));
    }

    #[test]
    fn whoareyou_packet() {
        let dest = b256(DEST_ID);
        let p = decode(&dest, &hex(WHOAREYOU)).unwrap();
        let mut id_nonce = [0u8; 16];
        id_nonce.copy_from_slice(&hex("0102030405060708090a0b0c0d0e0f10"));
        assert_eq!(p.kind, Kind::WhoAreYou { id_nonce, enr_seq: 0 });
        assert_eq!(p.nonce.to_vec(), hex("0102030405060708090a0b0c"));
        assert_eq!(p.authenticated, hex(CHALLENGE_SEQ0), "the challenge data");
        let ad = authenticated_data(&[0; 16], &p.nonce, &p.kind);
        assert_eq!(encode(&dest, &ad, &[]), hex(WHOAREYOU));
    }

    /// Node B decodes A's handshake: the identity proof verifies against A's key, the session
    /// keys from B's side open the message; A's side builds the same packet.
    fn handshake(vector: &str, challenge: &str, seq: u64, read_key: &str, with_record: bool) {
        let (a, b) = (key(NODE_A_KEY), key(NODE_B_KEY));
        let (id_a, id_b) = (b256(SRC_ID), b256(DEST_ID));
        let p = decode(&id_b, &hex(vector)).unwrap();
        let Kind::Handshake { src_id, id_signature, eph_pubkey, record } = &p.kind else {
            panic!("{:?}", p.kind)
        };
        assert_eq!(*src_id, id_a);
        assert_eq!(record.is_some(), with_record);
        if let Some(r) = record {
            let enr = super::super::enr::Enr::decode(r).unwrap();
            assert!(enr.signature_valid);
            assert_eq!(enr.node_id, id_a);
        }
        let a_pub = a.verifying_key().to_encoded_point(true);
        assert!(id_verify(a_pub.as_bytes(), id_signature, &hex(challenge), eph_pubkey, &id_b));
        // B: ecdh(eph-pubkey, B's static key).
        let secret = ecdh(eph_pubkey, &b).unwrap();
        let (initiator, _) = derive_keys(&secret, &hex(challenge), &id_a, &id_b);
        assert_eq!(initiator.to_vec(), hex(read_key));
        let pt = open(&initiator, &p.nonce, &p.message, &p.authenticated).unwrap();
        assert_eq!(Message::decode(&pt).unwrap(), Message::Ping { req_id: vec![0, 0, 0, 1], enr_seq: seq });
        // A: the same packet from the inputs.
        let eph = key(EPH_KEY);
        let eph_pub = eph.verifying_key().to_encoded_point(true).as_bytes().to_vec();
        assert_eq!(&eph_pub, eph_pubkey);
        let b_pub = b.verifying_key().to_encoded_point(true);
        assert_eq!(ecdh(b_pub.as_bytes(), &eph).unwrap(), secret);
        let kind = Kind::Handshake {
            src_id: id_a,
            id_signature: id_sign(&a, &hex(challenge), &eph_pub, &id_b).to_vec(),
            eph_pubkey: eph_pub,
            record: record.clone(),
        };
        let ad = authenticated_data(&[0; 16], &[0xff; 12], &kind);
        let sealed = seal(&initiator, &[0xff; 12], &ping(seq), &ad);
        assert_eq!(encode(&id_b, &ad, &sealed), hex(vector));
    }

    #[test]
    fn handshake_packet() {
        handshake(HANDSHAKE, CHALLENGE_SEQ1, 1, "4f9fac6de7567d1e3b1241dffe90f662", false);
    }

    #[test]
    fn handshake_packet_with_record() {
        handshake(HANDSHAKE_ENR, CHALLENGE_SEQ0, 1, "53b1c075f41876423154e157470c2f48", true);
    }

    #[test]
    fn cryptographic_primitives() {
        let secret = ecdh(
            &hex("039961e4c2356d61bedb83052c115d311acb3a96f5777296dcf297351130266231"),
            &key("fb757dc581730490a1d7a00deea65e9b1936924caaea8f44d476014856b68736"),
        )
        .unwrap();
        assert_eq!(
            secret.to_vec(),
            hex("033b11a2a1f214567e1537ce5e509ffd9b21373247f2a3ff6841f4976f53165e7e")
        );
        let eph = key("fb757dc581730490a1d7a00deea65e9b1936924caaea8f44d476014856b68736");
        let dest_pub = hex("0317931e6e0840220642f230037d285d122bc59063221ef3226b1f403ddc69ca91");
        let s = ecdh(&dest_pub, &eph).unwrap();
        let (i, r) = derive_keys(&s, &hex(CHALLENGE_SEQ0), &b256(SRC_ID), &b256(DEST_ID));
        assert_eq!(i.to_vec(), hex("dccc82d81bd610f4f76d3ebe97a40571"));
        assert_eq!(r.to_vec(), hex("ac74bb8773749920b0d3a8881c173ec5"));
        let sig = id_sign(
            &eph,
            &hex(CHALLENGE_SEQ0),
            &hex("039961e4c2356d61bedb83052c115d311acb3a96f5777296dcf297351130266231"),
            &b256(DEST_ID),
        );
        assert_eq!(sig.to_vec(), hex("94852a1e2318c4e5e9d422c98eaf19d1d90d876b29cd06ca7cb7546d0fff7b484fe86c09a064fe72bdbef73ba8e9c34df0cd2b53e9d65528c2c7f336d5dfc6e6"));
        let mut k = [0u8; 16];
        k.copy_from_slice(&hex("9f2d77db7004bf8a1a85107ac686990b"));
        let mut n = [0u8; 12];
        n.copy_from_slice(&hex("27b5af763c446acd2749fe8e"));
        let ad = hex("93a7400fa0d6a694ebc24d5cf570f65d04215b6ac00757875e3f3a5f42107903");
        let ct = seal(&k, &n, &hex("01c20101"), &ad);
        assert_eq!(ct, hex("a5d12a2d94b8ccb3ba55558229867dc13bfa3648"));
        assert_eq!(open(&k, &n, &ct, &ad), Some(hex("01c20101")));
        assert_eq!(open(&k, &n, &ct, &ad[1..]), None);
    }

    #[test]
    fn messages_round_trip_and_are_bounded() {
        let msgs = [
            Message::Ping { req_id: vec![1], enr_seq: 1 },
            Message::Pong { req_id: vec![1], enr_seq: 1, ip: "127.0.0.1".parse().unwrap(), port: 5000 },
            Message::Pong { req_id: vec![], enr_seq: 0, ip: "::1".parse().unwrap(), port: 1 },
            Message::FindNode { req_id: vec![1, 2, 3, 4, 5, 6, 7, 8], distances: vec![256, 255, 0] },
            Message::Nodes { req_id: vec![1], total: 2, records: vec![vec![0xc1, 0x80], vec![0xc0]] },
            Message::TalkReq { req_id: vec![9], protocol: b"x".to_vec(), request: vec![] },
            Message::TalkResp { req_id: vec![9], response: vec![] },
        ];
        for m in msgs {
            let b = m.encode();
            assert_eq!(Message::decode(&b).unwrap(), m);
            for n in 0..b.len() {
                assert!(Message::decode(&b[..n]).is_err(), "{m:?} cut at {n}");
            }
        }
        // The spec's PONG encoding (discv5 v5.0 message vector, unchanged in v5.1).
        let pong =
            Message::Pong { req_id: vec![1], enr_seq: 1, ip: "127.0.0.1".parse().unwrap(), port: 5000 };
        assert_eq!(pong.encode(), hex("02ca0101847f000001821388"));
        let long_id = Message::Ping { req_id: vec![0; 9], enr_seq: 1 }.encode();
        assert!(Message::decode(&long_id).is_err());
        let many = Message::FindNode { req_id: vec![1], distances: vec![1; 9] }.encode();
        assert!(Message::decode(&many).is_err());
    }

    #[test]
    fn hostile_packets_are_dropped_not_panicked_on() {
        let dest = b256(DEST_ID);
        let mut rng = crate::rng::Rng::new(3);
        for v in [PING, WHOAREYOU, HANDSHAKE, HANDSHAKE_ENR] {
            let good = hex(v);
            for n in 0..good.len() {
                let _ = decode(&dest, &good[..n]);
            }
            for _ in 0..3000 {
                let mut b = good.clone();
                let i = rng.below(b.len() as u64) as usize;
                b[i] ^= 1 << rng.below(8);
                if let Ok(p) = decode(&dest, &b) {
                    // A flipped bit never opens under the real key.
                    let _ = open(&[0; 16], &p.nonce, &p.message, &p.authenticated);
                }
            }
        }
        for _ in 0..20_000 {
            let len = rng.below(1400) as usize;
            let mut b = vec![0u8; len];
            rng.fill(&mut b);
            let _ = decode(&dest, &b);
            let _ = Message::decode(&b);
        }
        assert_eq!(decode(&dest, &vec![0; 1281]).unwrap_err().0, "packet too large");
        assert_eq!(decode(&dest, &[0; 62]).unwrap_err().0, "packet too small");
        // Another node's packet: the header does not unmask to "discv5".
        assert_eq!(decode(&b256(SRC_ID), &hex(PING)).unwrap_err().0, "not a discv5 packet");
    }
}
