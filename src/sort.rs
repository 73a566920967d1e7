//! The one sort op-lite uses: a heapsort (O(n log n) comparisons in the worst case, in place,
//! no allocation, not stable).
//!
//! The standard library's sorts are faster on large slices but put 2-4 KB of machine code into
//! the binary for every element type and comparator they are used with (driftsort and ipnsort,
//! each with its small-sorts, pivot choice and merges): op-lite's 17 call sites were about 70 KB
//! of the aarch64 binary. This one is a few hundred bytes per use. What op-lite sorts is small
//! (peers, metric families, a block's trie keys, routing-table entries) and sorted rarely, and
//! no caller needs stability: the keys are distinct, or equal elements are interchangeable, or
//! their order is random anyway (gossipsub shuffles the peers it then ranks by score).

/// Sorts `v` ascending by `less`, a strict weak order ("a comes before b").
pub fn sort_by<T>(v: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    let n = v.len();
    for start in (0..n / 2).rev() {
        sift_down(v, start, &mut less);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(&mut v[..end], 0, &mut less);
    }
}

/// Sorts `v` ascending.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, |a, b| a < b);
}

/// Sorts `v` ascending by `key` (computed at each comparison).
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a) < key(b));
}

/// Moves `v[node]` down the max-heap `v` until neither child is greater.
fn sift_down<T>(v: &mut [T], mut node: usize, less: &mut impl FnMut(&T, &T) -> bool) {
    loop {
        let left = 2 * node + 1;
        let Some(l) = v.get(left) else { return };
        let child = match v.get(left + 1) {
            Some(r) if less(l, r) => left + 1,
            _ => left,
        };
        if !less(&v[node], &v[child]) {
            return;
        }
        v.swap(node, child);
        node = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn sorts_like_the_standard_library() {
        let mut rng = Rng::new(7);
        for n in [0usize, 1, 2, 3, 4, 5, 7, 8, 16, 31, 100, 1000] {
            for range in [2u64, 10, 1 << 40] {
                let v: Vec<u64> = (0..n).map(|_| rng.next_u64() % range).collect();
                let mut ours = v.clone();
                sort(&mut ours);
                let mut want = v.clone();
                want.sort_unstable();
                assert_eq!(ours, want, "n {n} range {range}");
            }
        }
        let mut sorted: Vec<u32> = (0..50).collect();
        sort(&mut sorted);
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        let mut reversed: Vec<u32> = (0..50).rev().collect();
        sort(&mut reversed);
        assert_eq!(reversed, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn by_comparator_and_key() {
        let mut v = vec![(3, "c"), (1, "a"), (2, "b")];
        sort_by(&mut v, |a, b| a.0 > b.0);
        assert_eq!(v, [(3, "c"), (2, "b"), (1, "a")]);
        sort_by_key(&mut v, |e| e.1);
        assert_eq!(v, [(1, "a"), (2, "b"), (3, "c")]);
        let mut f = vec![0.5f64, f64::NEG_INFINITY, 2.0, -1.0];
        sort_by(&mut f, |a, b| b.total_cmp(a).is_lt());
        assert_eq!(f, [2.0, 0.5, -1.0, f64::NEG_INFINITY]);
    }
}
