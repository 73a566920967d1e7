//! The node's libp2p identity: a secp256k1 key (op-node's `--p2p.priv.path`, 32 bytes hex), its
//! libp2p `PublicKey` protobuf (`KeyType` Secp256k1 = 2, the 33-byte compressed point), the
//! `PeerId` (the identity multihash of that protobuf, which fits in 42 bytes) in base58btc, and
//! libp2p signatures (ECDSA over SHA-256, DER-encoded), per the libp2p peer-id spec.

use std::fmt;

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::protocol::varint;

/// `KeyType.Secp256k1` of the libp2p key protobuf.
const KEY_TYPE_SECP256K1: u64 = 2;
/// The multihash code of the identity "hash".
const IDENTITY_MULTIHASH: u8 = 0x00;
/// Encoded public keys up to this size are inlined in the peer id (libp2p's rule).
const MAX_INLINE_KEY: usize = 42;
/// A peer id is at most a SHA-256 multihash or an inlined key: bounded input for decoding.
const MAX_PEER_ID_LEN: usize = 2 + MAX_INLINE_KEY;

/// Errors of keys, peer ids and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The key file does not hold 32 bytes of hex (a `0x` prefix and surrounding space allowed).
    BadPrivateKey,
    /// A public key protobuf that is not a compressed secp256k1 key.
    BadPublicKey(&'static str),
    BadPeerId(&'static str),
    BadSignature,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::BadPrivateKey => f.write_str("expected a 32-byte secp256k1 private key in hex"),
            IdentityError::BadPublicKey(why) => write!(f, "bad public key: {why}"),
            IdentityError::BadPeerId(why) => write!(f, "bad peer id: {why}"),
            IdentityError::BadSignature => f.write_str("signature does not verify"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// A libp2p peer id: the multihash bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(Vec<u8>);

impl PeerId {
    /// The peer id of a public key protobuf (identity multihash; longer keys are not used by the
    /// OP Stack, whose peers all have secp256k1 identities).
    pub fn from_public_key(key: &PublicKey) -> PeerId {
        let pb = key.to_protobuf();
        let mut id = Vec::with_capacity(2 + pb.len());
        id.push(IDENTITY_MULTIHASH);
        id.push(pb.len() as u8);
        id.extend_from_slice(&pb);
        PeerId(id)
    }

    /// Parses multihash bytes.
    pub fn from_bytes(b: &[u8]) -> Result<PeerId, IdentityError> {
        match b {
            [IDENTITY_MULTIHASH, len, key @ ..]
                if usize::from(*len) == key.len() && key.len() <= MAX_INLINE_KEY =>
            {
                Ok(PeerId(b.to_vec()))
            }
            // SHA2-256 multihash of a longer key.
            [0x12, 0x20, digest @ ..] if digest.len() == 32 => Ok(PeerId(b.to_vec())),
            _ => Err(IdentityError::BadPeerId("not an identity or sha2-256 multihash")),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The inlined public key, when the id carries one.
    pub fn public_key(&self) -> Option<PublicKey> {
        match self.0.as_slice() {
            [IDENTITY_MULTIHASH, _, pb @ ..] => PublicKey::from_protobuf(pb).ok(),
            _ => None,
        }
    }

    /// Parses the base58btc text form.
    pub fn parse(s: &str) -> Result<PeerId, IdentityError> {
        let bytes = base58_decode(s, MAX_PEER_ID_LEN).ok_or(IdentityError::BadPeerId("not base58btc"))?;
        PeerId::from_bytes(&bytes)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base58_encode(&self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// A secp256k1 public key as libp2p uses it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The `PublicKey` protobuf: `Type` (field 1, varint 2) and `Data` (field 2, 33 bytes).
    pub fn to_protobuf(&self) -> Vec<u8> {
        let point = self.0.to_encoded_point(true);
        let mut out = Vec::with_capacity(37);
        out.extend_from_slice(&[0x08, KEY_TYPE_SECP256K1 as u8, 0x12, point.len() as u8]);
        out.extend_from_slice(point.as_bytes());
        out
    }

    /// Parses a `PublicKey` protobuf (fields in any order, as protobuf allows).
    pub fn from_protobuf(pb: &[u8]) -> Result<PublicKey, IdentityError> {
        let truncated = |_| IdentityError::BadPublicKey("truncated");
        let (mut ty, mut data) = (None, None);
        let mut pos = 0;
        while pos < pb.len() {
            match varint::read_at(pb, &mut pos).map_err(truncated)? {
                0x08 => ty = Some(varint::read_at(pb, &mut pos).map_err(truncated)?),
                0x12 => {
                    let len = varint::read_at(pb, &mut pos).map_err(truncated)?;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|n| pos.checked_add(n))
                        .ok_or(IdentityError::BadPublicKey("key too long"))?;
                    data = Some(pb.get(pos..end).ok_or(IdentityError::BadPublicKey("truncated"))?);
                    pos = end;
                }
                _ => return Err(IdentityError::BadPublicKey("unexpected field")),
            }
        }
        if ty != Some(KEY_TYPE_SECP256K1) {
            return Err(IdentityError::BadPublicKey("not a secp256k1 key"));
        }
        let data = data.ok_or(IdentityError::BadPublicKey("no key data"))?;
        VerifyingKey::from_sec1_bytes(data)
            .map(PublicKey)
            .map_err(|_| IdentityError::BadPublicKey("not a curve point"))
    }

    /// Verifies a libp2p signature (DER ECDSA over SHA-256 of `msg`).
    pub fn verify(&self, msg: &[u8], der: &[u8]) -> Result<(), IdentityError> {
        let sig = Signature::from_der(der).map_err(|_| IdentityError::BadSignature)?;
        let sig = sig.normalize_s().unwrap_or(sig);
        self.0.verify_prehash(&Sha256::digest(msg), &sig).map_err(|_| IdentityError::BadSignature)
    }

    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(self)
    }
}

/// The node's identity key.
#[derive(Clone)]
pub struct Keypair {
    secret: SigningKey,
    public: PublicKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public.peer_id())
    }
}

impl Keypair {
    pub fn from_secret(bytes: &[u8; 32]) -> Result<Keypair, IdentityError> {
        let secret = SigningKey::from_slice(bytes).map_err(|_| IdentityError::BadPrivateKey)?;
        let public = PublicKey(*secret.verifying_key());
        Ok(Keypair { secret, public })
    }

    /// Parses op-node's key file format: the 32-byte secret in hex.
    pub fn from_hex(text: &str) -> Result<Keypair, IdentityError> {
        let t = text.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        let bytes = crate::protocol::primitives::from_hex(t).map_err(|_| IdentityError::BadPrivateKey)?;
        let secret: [u8; 32] = bytes.try_into().map_err(|_| IdentityError::BadPrivateKey)?;
        Keypair::from_secret(&secret)
    }

    /// The key file's contents (hex, no prefix, as op-node writes it).
    pub fn to_hex(&self) -> String {
        crate::protocol::primitives::to_hex(&self.secret.to_bytes())
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn peer_id(&self) -> PeerId {
        self.public.peer_id()
    }

    /// Signs `msg` as libp2p does: ECDSA over SHA-256, DER-encoded.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: Signature = match self.secret.sign_prehash(&Sha256::digest(msg)) {
            Ok(s) => s,
            // Signing a 32-byte digest with a valid key cannot fail.
            Err(_) => return Vec::new(),
        };
        sig.to_der().as_bytes().to_vec()
    }
}

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Base58btc (Bitcoin alphabet).
pub fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &b in &bytes[zeros..] {
        let mut carry = b as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut s = String::with_capacity(zeros + digits.len());
    s.extend(std::iter::repeat_n('1', zeros));
    s.extend(digits.iter().rev().map(|d| char::from(ALPHABET[usize::from(*d)])));
    s
}

/// Decodes base58btc of at most `max` bytes (longer input is refused before any work).
pub fn base58_decode(s: &str, max: usize) -> Option<Vec<u8>> {
    if s.len() > max * 2 {
        return None;
    }
    let zeros = s.bytes().take_while(|c| *c == b'1').count();
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes().skip(zeros) {
        let mut carry = ALPHABET.iter().position(|a| *a == c)? as u32;
        for b in bytes.iter_mut() {
            carry += (*b as u32) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    (out.len() <= max).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::from_hex;

    /// The secp256k1 vectors of the libp2p peer-id spec.
    const SPEC_PRIVATE: &str = "0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB";
    const SPEC_PUBLIC: &str = "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";

    #[test]
    fn the_spec_key_vectors_round_trip() {
        let private = from_hex(SPEC_PRIVATE).unwrap();
        assert_eq!(&private[..4], &[0x08, 0x02, 0x12, 0x20]);
        let kp = Keypair::from_secret(&private[4..].try_into().unwrap()).unwrap();
        let public = from_hex(SPEC_PUBLIC).unwrap();
        assert_eq!(kp.public().to_protobuf(), public);
        assert_eq!(PublicKey::from_protobuf(&public).unwrap(), *kp.public());
        let id = kp.peer_id();
        // secp256k1 peer ids inline the 37-byte protobuf: base58 "16Uiu2..." as on OP networks.
        assert!(id.to_string().starts_with("16Uiu2"), "{id}");
        assert_eq!(PeerId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(id.public_key().unwrap(), *kp.public());
        assert_eq!(Keypair::from_hex(&format!("0x{}\n", kp.to_hex())).unwrap().peer_id(), id);
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let kp = Keypair::from_secret(&[7; 32]).unwrap();
        let sig = kp.sign(b"noise-libp2p-static-key:abc");
        kp.public().verify(b"noise-libp2p-static-key:abc", &sig).unwrap();
        assert_eq!(
            kp.public().verify(b"noise-libp2p-static-key:abd", &sig),
            Err(IdentityError::BadSignature)
        );
        let other = Keypair::from_secret(&[8; 32]).unwrap();
        assert!(other.public().verify(b"noise-libp2p-static-key:abc", &sig).is_err());
        assert!(kp.public().verify(b"x", &sig[..sig.len() - 1]).is_err());
    }

    #[test]
    fn base58_matches_known_encodings() {
        assert_eq!(base58_encode(b""), "");
        assert_eq!(base58_encode(&[0, 0, 1]), "112");
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58_decode("StV1DL6CwTryKyV", 64).unwrap(), b"hello world");
        assert_eq!(base58_decode("112", 64).unwrap(), vec![0, 0, 1]);
        assert!(base58_decode("0OIl", 64).is_none(), "letters outside the alphabet");
        assert!(base58_decode(&"z".repeat(200), 44).is_none(), "too long");
    }

    #[test]
    fn hostile_keys_and_ids_are_errors() {
        let mut rng = crate::rng::Rng::new(3);
        let good = Keypair::from_secret(&[9; 32]).unwrap().public().to_protobuf();
        for n in 0..good.len() {
            assert!(PublicKey::from_protobuf(&good[..n]).is_err());
            assert!(PeerId::from_bytes(&good[..n]).is_err());
        }
        for _ in 0..3000 {
            let len = rng.below(60) as usize;
            let mut b = vec![0u8; len];
            rng.fill(&mut b);
            let _ = PublicKey::from_protobuf(&b);
            let _ = PeerId::from_bytes(&b);
            let s: String = b.iter().map(|x| (b'1' + x % 75) as char).collect();
            let _ = PeerId::parse(&s);
        }
        assert!(Keypair::from_hex("00").is_err());
        assert!(Keypair::from_hex(&"00".repeat(32)).is_err(), "zero is not a secp256k1 key");
    }
}
