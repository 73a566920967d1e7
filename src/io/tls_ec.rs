//! The NIST curves of the TLS client (`io::tls`), from RustCrypto's `p256` and `p384` instead
//! of ring: ECDSA signature verification (P-256 and P-384 with SHA-256 or SHA-384, as webpki's
//! ring algorithms and with rustls' mapping of TLS signature schemes to them) and ephemeral ECDH
//! (secp256r1, secp384r1).
//!
//! Why: ring's P-256 keeps a 152 KB precomputed table of base-point multiples (for signing and
//! key generation, and linked for verification too), 5% of the aarch64 binary; RustCrypto's
//! curves, the same family as the `k256` op-lite already links for secp256k1, need no tables.
//! Everything else stays ring's: X25519 (what servers pick first), the AEADs, hashes, HMAC, and
//! RSA and Ed25519 verification. Nothing here is secret but the ephemeral ECDH scalar, which
//! RustCrypto's constant-time arithmetic handles, drawn from the system's CSPRNG (getrandom).

use std::fmt;

use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::pki_types::{alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use rustls::{Error, NamedGroup};
use sha2::{Digest, Sha256, Sha384};

/// The digest an ECDSA signature is over.
#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
        }
    }

    fn alg_id(self) -> AlgorithmIdentifier {
        match self {
            Hash::Sha256 => alg_id::ECDSA_SHA256,
            Hash::Sha384 => alg_id::ECDSA_SHA384,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Curve {
    P256,
    P384,
}

/// ECDSA over `curve` with `hash`: the public key an uncompressed SEC1 point, the signature
/// ASN.1 DER, as in X.509 and TLS.
#[derive(Debug)]
pub struct Ecdsa {
    curve: Curve,
    hash: Hash,
}

pub static ECDSA_P256_SHA256: &Ecdsa = &Ecdsa { curve: Curve::P256, hash: Hash::Sha256 };
pub static ECDSA_P256_SHA384: &Ecdsa = &Ecdsa { curve: Curve::P256, hash: Hash::Sha384 };
pub static ECDSA_P384_SHA256: &Ecdsa = &Ecdsa { curve: Curve::P384, hash: Hash::Sha256 };
pub static ECDSA_P384_SHA384: &Ecdsa = &Ecdsa { curve: Curve::P384, hash: Hash::Sha384 };

impl SignatureVerificationAlgorithm for Ecdsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        // Uncompressed points only, as ring (and so rustls before) takes them.
        if public_key.first() != Some(&4) {
            return Err(InvalidSignature);
        }
        let digest = self.hash.digest(message);
        let ok = match self.curve {
            Curve::P256 => {
                let key =
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&digest, &sig).is_ok()
            }
            Curve::P384 => {
                let key =
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&digest, &sig).is_ok()
            }
        };
        ok.then_some(()).ok_or(InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self.curve {
            Curve::P256 => alg_id::ECDSA_P256,
            Curve::P384 => alg_id::ECDSA_P384,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.hash.alg_id()
    }
}

/// Ephemeral ECDH on a NIST curve (TLS 1.3 key shares, TLS 1.2 ECDHE).
#[derive(Debug)]
pub struct Kx(Curve);

pub static SECP256R1: &Kx = &Kx(Curve::P256);
pub static SECP384R1: &Kx = &Kx(Curve::P384);

impl SupportedKxGroup for Kx {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let mut rng = rand_core::OsRng;
        Ok(match self.0 {
            Curve::P256 => {
                let secret = p256::ecdh::EphemeralSecret::random(&mut rng);
                let public = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
                Box::new(Active { secret: Secret::P256(secret), public })
            }
            Curve::P384 => {
                let secret = p384::ecdh::EphemeralSecret::random(&mut rng);
                let public = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
                Box::new(Active { secret: Secret::P384(secret), public })
            }
        })
    }

    fn name(&self) -> NamedGroup {
        match self.0 {
            Curve::P256 => NamedGroup::secp256r1,
            Curve::P384 => NamedGroup::secp384r1,
        }
    }
}

enum Secret {
    P256(p256::ecdh::EphemeralSecret),
    P384(p384::ecdh::EphemeralSecret),
}

struct Active {
    secret: Secret,
    /// Our uncompressed SEC1 point, as TLS sends it.
    public: Vec<u8>,
}

impl ActiveKeyExchange for Active {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        let bad = || Error::PeerMisbehaved(rustls::PeerMisbehaved::InvalidKeyShare);
        // TLS allows only the uncompressed form (RFC 8446 4.2.8.2, RFC 8422 5.4.1).
        if peer.first() != Some(&4) {
            return Err(bad());
        }
        let shared = match self.secret {
            Secret::P256(s) => {
                let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| bad())?;
                s.diffie_hellman(&peer).raw_secret_bytes().to_vec()
            }
            Secret::P384(s) => {
                let peer = p384::PublicKey::from_sec1_bytes(peer).map_err(|_| bad())?;
                s.diffie_hellman(&peer).raw_secret_bytes().to_vec()
            }
        };
        Ok(SharedSecret::from(shared))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        match self.secret {
            Secret::P256(_) => NamedGroup::secp256r1,
            Secret::P384(_) => NamedGroup::secp384r1,
        }
    }
}

impl fmt::Debug for Active {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Active({:?})", self.group())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use ring::agreement;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair};
    use webpki::ring as reference;

    /// Signs a digest (DER signature).
    type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

    /// What one check gives: its name, the key, the message, the signature.
    type Case<'a> = (&'a str, &'a [u8], &'a [u8], Vec<u8>);

    /// A key pair on `curve`: its SEC1 public key, and its signer.
    fn signer(curve: Curve, seed: u8) -> (Vec<u8>, Signer) {
        match curve {
            Curve::P256 => {
                let k = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
                let public = k.verifying_key().to_encoded_point(false).as_bytes().to_vec();
                let sign = move |d: &[u8]| {
                    let s: p256::ecdsa::Signature = k.sign_prehash(d).unwrap();
                    s.to_der().as_bytes().to_vec()
                };
                (public, Box::new(sign))
            }
            Curve::P384 => {
                let k = p384::ecdsa::SigningKey::from_slice(&[seed; 48]).unwrap();
                let public = k.verifying_key().to_encoded_point(false).as_bytes().to_vec();
                let sign = move |d: &[u8]| {
                    let s: p384::ecdsa::Signature = k.sign_prehash(d).unwrap();
                    s.to_der().as_bytes().to_vec()
                };
                (public, Box::new(sign))
            }
        }
    }

    /// The signature with s replaced by n - s (the "high-S" twin, valid for ECDSA as X.509
    /// and TLS use it).
    fn high_s(curve: Curve, der: &[u8]) -> Vec<u8> {
        match curve {
            Curve::P256 => {
                let s = p256::ecdsa::Signature::from_der(der).unwrap();
                let twin = p256::ecdsa::Signature::from_scalars(s.r(), -*s.s()).unwrap();
                twin.to_der().as_bytes().to_vec()
            }
            Curve::P384 => {
                let s = p384::ecdsa::Signature::from_der(der).unwrap();
                let twin = p384::ecdsa::Signature::from_scalars(s.r(), -*s.s()).unwrap();
                twin.to_der().as_bytes().to_vec()
            }
        }
    }

    /// Every case is decided as webpki's ring algorithm (what rustls used before) decides it.
    #[test]
    fn ecdsa_verification_agrees_with_ring() {
        let algs: [(&Ecdsa, &dyn SignatureVerificationAlgorithm); 4] = [
            (ECDSA_P256_SHA256, reference::ECDSA_P256_SHA256),
            (ECDSA_P256_SHA384, reference::ECDSA_P256_SHA384),
            (ECDSA_P384_SHA256, reference::ECDSA_P384_SHA256),
            (ECDSA_P384_SHA384, reference::ECDSA_P384_SHA384),
        ];
        let (other_curve_key, _) = signer(Curve::P256, 9);
        let (other_curve_key_384, _) = signer(Curve::P384, 9);
        let mut accepted = 0;
        for (ours, theirs) in algs {
            assert_eq!(ours.public_key_alg_id(), theirs.public_key_alg_id());
            assert_eq!(ours.signature_alg_id(), theirs.signature_alg_id());
            for seed in 1..=4u8 {
                let (public, sign) = signer(ours.curve, seed);
                let message = format!("TLS 1.3, server CertificateVerify {seed}").into_bytes();
                let sig = sign(&ours.hash.digest(&message));
                let mut flipped = sig.clone();
                let last = flipped.len() - 1;
                flipped[last] ^= 1;
                let mut compressed = public.clone();
                compressed.truncate(1 + (public.len() - 1) / 2);
                compressed[0] = 2 + (public[public.len() - 1] & 1);
                let wrong_curve = match ours.curve {
                    Curve::P256 => &other_curve_key_384,
                    Curve::P384 => &other_curve_key,
                };
                let cases: Vec<Case> = vec![
                    ("valid", &public, &message, sig.clone()),
                    ("compressed key", &compressed, &message, sig.clone()),
                    ("high S", &public, &message, high_s(ours.curve, &sig)),
                    ("other message", &public, b"another message", sig.clone()),
                    ("flipped bit", &public, &message, flipped),
                    ("truncated", &public, &message, sig[..sig.len() - 3].to_vec()),
                    ("empty signature", &public, &message, Vec::new()),
                    ("key of the other curve", wrong_curve, &message, sig.clone()),
                    ("garbage key", &[4; 65], &message, sig.clone()),
                    ("empty key", &[], &message, sig.clone()),
                ];
                for (what, key, msg, sig) in cases {
                    let want = theirs.verify_signature(key, msg, &sig).is_ok();
                    let got = ours.verify_signature(key, msg, &sig).is_ok();
                    assert_eq!(got, want, "{ours:?} seed {seed}: {what}");
                    accepted += usize::from(got);
                }
            }
        }
        // Valid and high-S everywhere; ring takes no compressed keys.
        assert_eq!(accepted, 4 * 4 * 2);
    }

    /// A key share completed by ring (the peer) and by us gives the same secret both ways.
    #[test]
    fn ecdh_agrees_with_ring() {
        let rng = SystemRandom::new();
        for (ours, theirs) in [(SECP256R1, &agreement::ECDH_P256), (SECP384R1, &agreement::ECDH_P384)] {
            let active = ours.start().unwrap();
            assert_eq!(active.group(), ours.name());
            let ring_key = agreement::EphemeralPrivateKey::generate(theirs, &rng).unwrap();
            let ring_pub = ring_key.compute_public_key().unwrap().as_ref().to_vec();
            let peer = agreement::UnparsedPublicKey::new(theirs, active.pub_key().to_vec());
            let want = agreement::agree_ephemeral(ring_key, &peer, |s| s.to_vec()).unwrap();
            let got = active.complete(&ring_pub).unwrap();
            assert_eq!(got.secret_bytes(), want.as_slice());

            // Bad shares from the peer are errors: compressed, off the curve, empty, infinity.
            let mut compressed = ring_pub[..1 + (ring_pub.len() - 1) / 2].to_vec();
            compressed[0] = 2;
            let mut off_curve = ring_pub.clone();
            let last = off_curve.len() - 1;
            off_curve[last] ^= 1;
            for bad in [compressed, off_curve, Vec::new(), vec![0]] {
                assert!(ours.start().unwrap().complete(&bad).is_err(), "{ours:?} {bad:?}");
            }
        }
        // And two of ours agree with each other.
        let (a, b) = (SECP384R1.start().unwrap(), SECP384R1.start().unwrap());
        let b_pub = b.pub_key().to_vec();
        let a_pub = a.pub_key().to_vec();
        assert_eq!(a.complete(&b_pub).unwrap().secret_bytes(), b.complete(&a_pub).unwrap().secret_bytes());
    }

    #[test]
    fn ring_signs_and_we_verify() {
        let rng = SystemRandom::new();
        for (alg, ours) in [
            (&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256),
            (&ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P384_SHA384),
        ] {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
            let sig = pair.sign(&rng, b"hello").unwrap();
            assert!(ours.verify_signature(pair.public_key().as_ref(), b"hello", sig.as_ref()).is_ok());
            assert!(ours.verify_signature(pair.public_key().as_ref(), b"hellO", sig.as_ref()).is_err());
        }
    }
}
