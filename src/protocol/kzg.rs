//! KZG commitments of blobs (EIP-4844 `blob_to_kzg_commitment`): the blob's 4,096 field elements
//! are the scalars of one multi-scalar multiplication over the trusted setup's Lagrange points
//! taken in bit-reversed order. The curve arithmetic is blst's (the BLS12-381 library c-kzg,
//! geth, reth and Lighthouse build on), its Pippenger MSM on one thread; op-lite carries only the
//! Lagrange points a commitment needs (196,608 bytes, `kzg_setup.txt`), not c-kzg's monomial and
//! G2 points, FFT tables and PeerDAS code, which about 3 MB of heap went to once a blob was seen.
//!
//! The points are decompressed once, on first use (about 0.2 s on x86, a few seconds on a small
//! ARM core), and kept: 4,096 affine points, 384 KiB.

use std::sync::OnceLock;

use blst::min_pk::{AggregatePublicKey, PublicKey};
use blst::{blst_p1_affine, MultiPoint};

/// Field elements per blob.
pub const FIELD_ELEMENTS_PER_BLOB: usize = 4096;
/// Bytes per field element (big-endian).
pub const BYTES_PER_FIELD_ELEMENT: usize = 32;
/// Bytes of a compressed G1 point.
pub const BYTES_PER_G1: usize = 48;

/// The setup's Lagrange points, natural order, compressed (build.rs from kzg_setup.txt).
static SETUP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kzg_g1_lagrange.bin"));

/// The BLS12-381 scalar field modulus r, big-endian: every field element must be below it.
const MODULUS: [u8; 32] = [
    0x73, 0xed, 0xa7, 0x53, 0x29, 0x9d, 0x7d, 0x48, 0x33, 0x39, 0xd8, 0x08, 0x09, 0xa1, 0xd8, 0x05, 0x53,
    0xbd, 0xa4, 0x02, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
];

/// Position `i` of the bit-reversal permutation of 4,096 items (12 bits).
fn reverse_index(i: usize) -> usize {
    ((i as u32).reverse_bits() >> (32 - 12)) as usize
}

/// The Lagrange points in bit-reversed order, decompressed on first use.
fn points() -> Result<&'static [blst_p1_affine], String> {
    static POINTS: OnceLock<Result<Vec<blst_p1_affine>, String>> = OnceLock::new();
    POINTS
        .get_or_init(|| {
            (0..FIELD_ELEMENTS_PER_BLOB)
                .map(|i| {
                    let at = reverse_index(i) * BYTES_PER_G1;
                    PublicKey::uncompress(&SETUP[at..at + BYTES_PER_G1])
                        .map(blst_p1_affine::from)
                        .map_err(|e| format!("trusted setup point {}: {e:?}", reverse_index(i)))
                })
                .collect()
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The compressed KZG commitment of a blob. Fails for a blob of the wrong size or with a field
/// element not below the BLS modulus, as c-kzg does.
pub fn blob_to_commitment(blob: &[u8]) -> Result<[u8; BYTES_PER_G1], String> {
    if blob.len() != FIELD_ELEMENTS_PER_BLOB * BYTES_PER_FIELD_ELEMENT {
        return Err(format!(
            "blob of {} bytes, not {}",
            blob.len(),
            FIELD_ELEMENTS_PER_BLOB * BYTES_PER_FIELD_ELEMENT
        ));
    }
    // blst takes scalars little-endian.
    let mut scalars = vec![0u8; blob.len()];
    for (i, (fe, s)) in blob
        .chunks_exact(BYTES_PER_FIELD_ELEMENT)
        .zip(scalars.chunks_exact_mut(BYTES_PER_FIELD_ELEMENT))
        .enumerate()
    {
        if fe >= &MODULUS[..] {
            return Err(format!("field element {i} is not below the BLS modulus"));
        }
        s.copy_from_slice(fe);
        s.reverse();
    }
    let sum = points()?.mult(&scalars, 255);
    Ok(AggregatePublicKey::from(sum).to_public_key().compress())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn blob(rng: &mut Rng) -> Vec<u8> {
        let mut b = vec![0u8; FIELD_ELEMENTS_PER_BLOB * BYTES_PER_FIELD_ELEMENT];
        for fe in b.chunks_exact_mut(32) {
            rng.fill(fe);
            fe[0] &= 0x3f; // below the modulus
        }
        b
    }

    /// c-kzg (the reference implementation, a test-only dependency) gives the same commitment for
    /// random blobs, a zero blob and a one-hot blob: the setup file, its order and the MSM agree.
    #[test]
    fn commitments_equal_c_kzg() {
        let settings = c_kzg::ethereum_kzg_settings(0);
        let reference =
            |b: &[u8]| *settings.blob_to_kzg_commitment(&c_kzg::Blob::from_bytes(b).unwrap()).unwrap();
        let mut rng = Rng::new(7);
        let mut blobs = vec![vec![0u8; 131072], blob(&mut rng), blob(&mut rng)];
        let mut one_hot = vec![0u8; 131072];
        one_hot[1234 * 32 + 31] = 1;
        blobs.push(one_hot);
        let mut max = vec![0u8; 131072];
        for fe in max.chunks_exact_mut(32) {
            fe.copy_from_slice(&MODULUS);
            fe[31] = 0; // r - 1
        }
        blobs.push(max);
        for b in &blobs {
            assert_eq!(blob_to_commitment(b).unwrap(), reference(b));
        }
    }

    #[test]
    fn bad_blobs_are_refused_like_c_kzg() {
        assert!(blob_to_commitment(&[0u8; 100]).unwrap_err().contains("100 bytes"));
        let mut b = vec![0u8; 131072];
        b[32 * 7..32 * 8].copy_from_slice(&MODULUS);
        assert_eq!(blob_to_commitment(&b).unwrap_err(), "field element 7 is not below the BLS modulus");
        assert!(c_kzg::Blob::from_bytes(&b)
            .and_then(|x| c_kzg::ethereum_kzg_settings(0).blob_to_kzg_commitment(&x))
            .is_err());
        b[32 * 7] = 0xff;
        assert!(blob_to_commitment(&b).is_err());
    }

    #[test]
    fn bit_reversal_of_twelve_bits() {
        assert_eq!(reverse_index(0), 0);
        assert_eq!(reverse_index(1), 2048);
        assert_eq!(reverse_index(2), 1024);
        assert_eq!(reverse_index(4095), 4095);
        assert_eq!(reverse_index(reverse_index(1234)), 1234);
    }
}
