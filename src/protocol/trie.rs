//! The ordered Merkle-Patricia trie root (keys `rlp(index)`), as used for a block's
//! transactions, receipts and withdrawals roots.

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
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let root = node(&entries, 0);
    keccak256(root)
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

/// Encodes the node for sorted `entries` whose keys share the first `depth` nibbles.
fn node(entries: &[(Vec<u8>, &[u8])], depth: usize) -> Vec<u8> {
    if entries.len() == 1 {
        let (k, v) = &entries[0];
        return rlp::encode_list(|o| {
            rlp::put_bytes(o, &hex_prefix(&k[depth..], true));
            rlp::put_bytes(o, v);
        });
    }
    let first = &entries[0].0;
    let last = &entries[entries.len() - 1].0;
    let mut common = depth;
    while common < first.len() && common < last.len() && first[common] == last[common] {
        common += 1;
    }
    if common > depth {
        let child = node(entries, common);
        return rlp::encode_list(|o| {
            rlp::put_bytes(o, &hex_prefix(&first[depth..common], false));
            reference(o, child);
        });
    }
    rlp::encode_list(|o| {
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
                reference(o, node(&entries[start..i], depth + 1));
            }
        }
        rlp::put_bytes(o, value);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_constant() {
        assert_eq!(EMPTY_ROOT, keccak256([0x80]));
        assert_eq!(ordered_root::<Vec<u8>>(&[]), EMPTY_ROOT);
    }
}
