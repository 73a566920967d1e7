//! Merkle-Patricia tries: the ordered root (keys `rlp(index)`) of a block's transactions,
//! receipts and withdrawals; secure-trie roots and proofs (keys `keccak(key)`) as `eth_getProof`
//! returns them for accounts and storage; and proof verification against a state root, so that
//! values read from an L1 node's state are checked, not trusted.

use super::primitives::{keccak256, B256};
use super::rlp;

/// keccak256(rlp("")), the root of an empty trie.
pub const EMPTY_ROOT: B256 = B256([
    0x56, 0xe8, 0x1f, 0x17, 0x1b, 0xcc, 0x55, 0xa6, 0xff, 0x83, 0x45, 0xe6, 0x92, 0xc0, 0xf8, 0x6e, 0x5b,
    0x48, 0xe0, 0x1b, 0x99, 0x6c, 0xad, 0xc0, 0x01, 0x62, 0x2f, 0xb5, 0xe3, 0x63, 0xb4, 0x21,
]);

/// Root of the trie mapping `rlp(i)` to `items[i]`.
pub fn ordered_root<T: AsRef<[u8]>>(items: &[T]) -> B256 {
    if items.is_empty() {
        return EMPTY_ROOT;
    }
    let mut entries: Vec<(Vec<u8>, &[u8])> = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut k = Vec::with_capacity(9);
            rlp::put_u64(&mut k, i as u64);
            (nibbles(&k), v.as_ref())
        })
        .collect();
    crate::sort::sort_by(&mut entries, |a, b| a.0 < b.0);
    let root = node(&entries, 0, None, &mut Vec::new());
    keccak256(root)
}

/// Root of the secure trie mapping `keccak(key)` to each value (state and storage tries).
pub fn secure_root<K: AsRef<[u8]>>(kv: &[(K, Vec<u8>)]) -> B256 {
    secure_proof(kv, &[]).0
}

/// The secure trie's root and the proof for `key` (the nodes on its path, root first), as
/// `eth_getProof` gives them. The key need not be present: the proof then shows its absence.
pub fn secure_proof<K: AsRef<[u8]>>(kv: &[(K, Vec<u8>)], key: &[u8]) -> (B256, Vec<Vec<u8>>) {
    if kv.is_empty() {
        return (EMPTY_ROOT, vec![vec![0x80]]);
    }
    let mut entries: Vec<(Vec<u8>, &[u8])> =
        kv.iter().map(|(k, v)| (nibbles(&keccak256(k.as_ref()).0), v.as_slice())).collect();
    crate::sort::sort_by(&mut entries, |a, b| a.0 < b.0);
    let path = nibbles(&keccak256(key).0);
    let mut proof = Vec::new();
    let root = node(&entries, 0, Some(&path), &mut proof);
    let hash = keccak256(&root);
    if proof.last() != Some(&root) {
        proof.push(root);
    }
    proof.reverse();
    (hash, proof)
}

fn nibbles(b: &[u8]) -> Vec<u8> {
    b.iter().flat_map(|x| [x >> 4, x & 15]).collect()
}

/// Hex-prefix encoding of a nibble path.
fn hex_prefix(path: &[u8], leaf: bool) -> Vec<u8> {
    let flag = if leaf { 2 } else { 0 };
    let mut out = Vec::with_capacity(path.len() / 2 + 1);
    let rest = if path.len() % 2 == 1 {
        out.push((flag + 1) << 4 | path[0]);
        &path[1..]
    } else {
        out.push(flag << 4);
        path
    };
    for pair in rest.chunks(2) {
        out.push(pair[0] << 4 | pair[1]);
    }
    out
}

/// A child reference: the node itself when its encoding is shorter than 32 bytes, else its hash.
fn reference(o: &mut Vec<u8>, encoded: Vec<u8>) {
    if encoded.len() < 32 {
        o.extend_from_slice(&encoded);
    } else {
        rlp::put_bytes(o, &keccak256(&encoded).0);
    }
}

/// Encodes the node for sorted `entries` whose keys share the first `depth` nibbles. When
/// `path` is given, nodes on it that are referenced by hash are collected, deepest first.
fn node(
    entries: &[(Vec<u8>, &[u8])],
    depth: usize,
    path: Option<&[u8]>,
    proof: &mut Vec<Vec<u8>>,
) -> Vec<u8> {
    let on_path = |enc: Vec<u8>, proof: &mut Vec<Vec<u8>>| {
        if path.is_some() && enc.len() >= 32 {
            proof.push(enc.clone());
        }
        enc
    };
    if entries.len() == 1 {
        let (k, v) = &entries[0];
        return on_path(
            rlp::encode_list(|o| {
                rlp::put_bytes(o, &hex_prefix(&k[depth..], true));
                rlp::put_bytes(o, v);
            }),
            proof,
        );
    }
    let first = &entries[0].0;
    let last = &entries[entries.len() - 1].0;
    let mut common = depth;
    while common < first.len() && common < last.len() && first[common] == last[common] {
        common += 1;
    }
    if common > depth {
        let follows = path.filter(|p| p.len() >= common && p[depth..common] == first[depth..common]);
        let child = node(entries, common, follows, proof);
        return on_path(
            rlp::encode_list(|o| {
                rlp::put_bytes(o, &hex_prefix(&first[depth..common], false));
                reference(o, child);
            }),
            proof,
        );
    }
    let enc = rlp::encode_list(|o| {
        let mut value: &[u8] = &[];
        let mut i = 0;
        if entries[0].0.len() == depth {
            value = entries[0].1;
            i = 1;
        }
        for nib in 0u8..16 {
            let start = i;
            while i < entries.len() && entries[i].0[depth] == nib {
                i += 1;
            }
            if start == i {
                o.push(0x80);
            } else {
                let follows = path.filter(|p| p.get(depth) == Some(&nib));
                reference(o, node(&entries[start..i], depth + 1, follows, proof));
            }
        }
        rlp::put_bytes(o, value);
    });
    on_path(enc, proof)
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// A node the path needs is not in the proof.
    Missing(B256),
    /// A node is not a valid trie node.
    BadNode(String),
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProofError::Missing(h) => write!(f, "proof lacks trie node {h}"),
            ProofError::BadNode(m) => write!(f, "bad trie node in proof: {m}"),
        }
    }
}

impl std::error::Error for ProofError {}

/// Walks a secure-trie proof from `root` to `keccak(key)`: `Ok(Some(value))` when present,
/// `Ok(None)` when the proof shows it absent, an error when the proof does not connect.
pub fn verify_proof<T: AsRef<[u8]>>(
    root: &B256,
    key: &[u8],
    proof: &[T],
) -> Result<Option<Vec<u8>>, ProofError> {
    if *root == EMPTY_ROOT {
        return Ok(None);
    }
    let path = nibbles(&keccak256(key).0);
    let mut rest: &[u8] = &path;
    let find = |h: &B256| proof.iter().map(|n| n.as_ref()).find(|n| keccak256(n) == *h);
    let bad = |e: rlp::RlpError| ProofError::BadNode(e.to_string());
    let mut current: Vec<u8> = find(root).ok_or(ProofError::Missing(*root))?.to_vec();
    // Each step consumes at least one nibble, so at most 65 steps.
    for _ in 0..=path.len() {
        let mut r = rlp::Rlp::list(&current).map_err(bad)?;
        let mut items = Vec::with_capacity(17);
        while !r.is_empty() {
            items.push(r.next_raw().map_err(bad)?);
        }
        let child = match items.len() {
            17 => {
                let Some((&nib, tail)) = rest.split_first() else {
                    let v = rlp::Rlp::new(items[16]).next_bytes().map_err(bad)?;
                    return Ok((!v.is_empty()).then(|| v.to_vec()));
                };
                rest = tail;
                items[nib as usize]
            }
            2 => {
                let enc = rlp::Rlp::new(items[0]).next_bytes().map_err(bad)?;
                let (leaf, seg) = decode_hex_prefix(enc).ok_or_else(|| ProofError::BadNode("path".into()))?;
                if leaf {
                    if seg == rest {
                        return Ok(Some(rlp::Rlp::new(items[1]).next_bytes().map_err(bad)?.to_vec()));
                    }
                    return Ok(None);
                }
                if seg.is_empty() || !rest.starts_with(&seg) {
                    return Ok(None);
                }
                rest = &rest[seg.len()..];
                items[1]
            }
            n => return Err(ProofError::BadNode(format!("{n} items"))),
        };
        // A child is empty, an embedded node (a list shorter than 32 bytes) or a hash.
        current = if rlp::Rlp::new(child).peek_is_list().map_err(bad)? {
            child.to_vec()
        } else {
            let b = rlp::Rlp::new(child).next_bytes().map_err(bad)?;
            match b.len() {
                0 => return Ok(None),
                32 => {
                    let h = B256(b.try_into().unwrap_or([0; 32]));
                    find(&h).ok_or(ProofError::Missing(h))?.to_vec()
                }
                n => return Err(ProofError::BadNode(format!("child reference of {n} bytes"))),
            }
        };
    }
    Err(ProofError::BadNode("path longer than the key".into()))
}

/// Decodes a hex-prefix path into (is leaf, nibbles).
fn decode_hex_prefix(enc: &[u8]) -> Option<(bool, Vec<u8>)> {
    let (&first, tail) = enc.split_first()?;
    let flag = first >> 4;
    if flag > 3 {
        return None;
    }
    let mut out = Vec::with_capacity(tail.len() * 2 + 1);
    if flag & 1 == 1 {
        out.push(first & 15);
    } else if first & 15 != 0 {
        return None;
    }
    out.extend(nibbles(tail));
    Some((flag >= 2, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_constant() {
        assert_eq!(EMPTY_ROOT, keccak256([0x80]));
        assert_eq!(ordered_root::<Vec<u8>>(&[]), EMPTY_ROOT);
    }

    fn kv(n: u64, rng: &mut crate::rng::Rng) -> Vec<(B256, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let mut k = [0u8; 32];
                rng.fill(&mut k);
                // Short and long values, so both embedded and hashed nodes occur.
                let len = if i % 3 == 0 { 1 } else { 1 + rng.below(40) as usize };
                let mut v = vec![0u8; len];
                rng.fill(&mut v);
                v[0] |= 1;
                (B256(k), rlp::encode_list(|o| rlp::put_bytes(o, &v))[1..].to_vec())
            })
            .collect()
    }

    #[test]
    fn proofs_of_present_and_absent_keys_verify() {
        let mut rng = crate::rng::Rng::new(3);
        for n in [1u64, 2, 3, 17, 200] {
            let entries = kv(n, &mut rng);
            let root = secure_root(&entries);
            for (k, v) in &entries {
                let (r, proof) = secure_proof(&entries, &k.0);
                assert_eq!(r, root);
                assert_eq!(verify_proof(&root, &k.0, &proof).unwrap().as_ref(), Some(v), "n={n}");
            }
            let absent = B256([0xab; 32]);
            let (_, proof) = secure_proof(&entries, &absent.0);
            assert_eq!(verify_proof(&root, &absent.0, &proof).unwrap(), None);
        }
    }

    #[test]
    fn tampered_or_foreign_proofs_fail() {
        let mut rng = crate::rng::Rng::new(4);
        let entries = kv(50, &mut rng);
        let root = secure_root(&entries);
        let (k, v) = &entries[7];
        let k = &k.0;
        let (_, proof) = secure_proof(&entries, k);
        // Against another root the first node is missing.
        assert!(matches!(verify_proof(&B256([1; 32]), k, &proof), Err(ProofError::Missing(_))));
        // Dropping or changing any node breaks the chain of hashes.
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p.remove(i);
            assert!(verify_proof(&root, k, &p).is_err());
            let mut p = proof.clone();
            let last = p[i].len() - 1;
            p[i][last] ^= 1;
            assert_ne!(verify_proof(&root, k, &p).ok().flatten().as_ref(), Some(v));
        }
        // Random garbage never panics.
        for _ in 0..500 {
            let mut junk = vec![0u8; rng.below(200) as usize];
            rng.fill(&mut junk);
            let _ = verify_proof(&keccak256(&junk), k, &[junk]);
        }
    }

    #[test]
    fn real_empty_storage_root_proof() {
        // An account without storage: eth_getProof answers the empty root and proof ["0x80"].
        let (root, proof) = secure_proof::<[u8; 32]>(&[], &[0; 32]);
        assert_eq!(root, EMPTY_ROOT);
        assert_eq!(verify_proof(&root, &[0; 32], &proof).unwrap(), None);
    }
}
