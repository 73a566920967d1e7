//! The Kademlia routing table: 256 buckets of 16 nodes by log2 distance from our node id, as
//! discv5 keeps it. Only nodes that answered us (or shook hands with us) enter; a full bucket
//! keeps its nodes while they answer and holds one replacement for the first that fails twice.

use std::time::Instant;

use super::enr::Enr;
use super::session::Contact;
use crate::protocol::primitives::B256;

pub const BUCKET_SIZE: usize = 16;
/// Failed requests in a row before a node leaves the table.
pub const MAX_FAILURES: u8 = 2;

/// The log2 distance of two node ids (0: the same id, 256: they differ in the first bit).
pub fn log2_distance(a: &B256, b: &B256) -> u16 {
    for (i, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        let d = x ^ y;
        if d != 0 {
            return (256 - i * 8 - d.leading_zeros() as usize) as u16;
        }
    }
    0
}

/// One node of the table.
#[derive(Debug, Clone)]
pub struct Entry {
    pub enr: Enr,
    pub contact: Contact,
    pub last_seen: Instant,
    pub failures: u8,
}

/// What `insert` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Added,
    /// Already there: its record (if newer) and liveness updated.
    Updated,
    /// The bucket is full: held as the replacement; ping `oldest` to see whether it is alive.
    Full {
        oldest: Contact,
    },
    /// Our own id, no UDP endpoint, or a bad signature.
    Refused,
}

pub struct Table {
    local: B256,
    buckets: Vec<Vec<Entry>>,
    replacements: Vec<Option<Entry>>,
}

impl Table {
    pub fn new(local: B256) -> Table {
        Table { local, buckets: vec![Vec::new(); 256], replacements: vec![None; 256] }
    }

    fn bucket(&self, id: &B256) -> Option<usize> {
        match log2_distance(&self.local, id) {
            0 => None,
            d => Some(d as usize - 1),
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &B256) -> Option<&Entry> {
        self.buckets.get(self.bucket(id)?)?.iter().find(|e| e.contact.id == *id)
    }

    /// A node that answered us (live) with its record.
    pub fn insert(&mut self, enr: Enr, now: Instant) -> Inserted {
        let Some(contact) = Contact::from_enr(&enr) else { return Inserted::Refused };
        let Some(b) = self.bucket(&contact.id) else { return Inserted::Refused };
        let bucket = &mut self.buckets[b];
        if let Some(e) = bucket.iter_mut().find(|e| e.contact.id == contact.id) {
            if enr.seq >= e.enr.seq {
                e.enr = enr;
                e.contact = contact;
            }
            e.last_seen = now;
            e.failures = 0;
            return Inserted::Updated;
        }
        let entry = Entry { enr, contact, last_seen: now, failures: 0 };
        if bucket.len() < BUCKET_SIZE {
            bucket.push(entry);
            return Inserted::Added;
        }
        self.replacements[b] = Some(entry);
        let oldest = bucket.iter().min_by_key(|e| e.last_seen).map(|e| e.contact.clone());
        oldest.map_or(Inserted::Refused, |oldest| Inserted::Full { oldest })
    }

    /// The node answered: seen now.
    pub fn mark_live(&mut self, id: &B256, now: Instant) {
        let Some(b) = self.bucket(id) else { return };
        if let Some(e) = self.buckets[b].iter_mut().find(|e| e.contact.id == *id) {
            e.last_seen = now;
            e.failures = 0;
        }
    }

    /// A request to the node failed; at `MAX_FAILURES` it leaves (its replacement comes in).
    /// Returns whether it left.
    pub fn mark_failed(&mut self, id: &B256) -> bool {
        let Some(b) = self.bucket(id) else { return false };
        let bucket = &mut self.buckets[b];
        let Some(i) = bucket.iter().position(|e| e.contact.id == *id) else { return false };
        bucket[i].failures += 1;
        if bucket[i].failures < MAX_FAILURES {
            return false;
        }
        bucket.remove(i);
        if let Some(r) = self.replacements[b].take() {
            bucket.push(r);
        }
        true
    }

    /// Up to `n` nodes closest to `target` (by XOR distance).
    pub fn closest(&self, target: &B256, n: usize) -> Vec<&Entry> {
        let mut all: Vec<&Entry> = self.buckets.iter().flatten().collect();
        crate::sort::sort_by_key(&mut all, |e| xor(&e.contact.id, target));
        all.truncate(n);
        all
    }

    /// Records at these log2 distances from us, at most `limit`.
    pub fn at_distances(&self, distances: &[u16], limit: usize) -> Vec<&Enr> {
        distances
            .iter()
            .filter(|d| (1..=256).contains(*d))
            .flat_map(|d| self.buckets[*d as usize - 1].iter().map(|e| &e.enr))
            .take(limit)
            .collect()
    }

    /// The node seen longest ago, if seen before `before`.
    pub fn stalest(&self, before: Instant) -> Option<&Entry> {
        self.buckets.iter().flatten().filter(|e| e.last_seen < before).min_by_key(|e| e.last_seen)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flatten()
    }
}

/// XOR distance, for ordering by closeness.
pub fn xor(a: &B256, b: &B256) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (i, x) in d.iter_mut().enumerate() {
        *x = a.0[i] ^ b.0[i];
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    fn record(seed: u64) -> Enr {
        let mut k = [0u8; 32];
        k[24..].copy_from_slice(&seed.to_be_bytes());
        k[0] = 1;
        let key = SigningKey::from_slice(&k).unwrap();
        let entries = vec![
            super::super::enr::entry_bytes("ip", &[10, 0, 0, 1]),
            super::super::enr::entry_u64("udp", 9000 + seed),
        ];
        Enr::sign(&key, 1, entries)
    }

    #[test]
    fn distances() {
        let z = B256::ZERO;
        let mut one = B256::ZERO;
        one.0[31] = 1;
        let mut top = B256::ZERO;
        top.0[0] = 0x80;
        assert_eq!((log2_distance(&z, &z), log2_distance(&z, &one), log2_distance(&z, &top)), (0, 1, 256));
    }

    #[test]
    fn buckets_fill_to_16_then_hold_a_replacement_for_a_failing_node() {
        let now = crate::time::test_now().mono;
        let mut t = Table::new(B256::ZERO);
        // Random node ids: about half land in bucket 256.
        let mut top = Vec::new();
        for s in 0..200 {
            let r = record(s);
            if log2_distance(&B256::ZERO, &r.node_id) == 256 {
                top.push(r);
            }
        }
        assert!(top.len() > 20);
        for r in &top[..16] {
            assert_eq!(t.insert(r.clone(), now), Inserted::Added);
        }
        assert_eq!(t.insert(top[0].clone(), now), Inserted::Updated);
        let Inserted::Full { oldest } = t.insert(top[16].clone(), now) else { panic!() };
        assert_eq!(t.len(), 16);
        assert!(!t.mark_failed(&oldest.id), "one failure is forgiven");
        assert!(t.mark_failed(&oldest.id));
        assert!(t.get(&oldest.id).is_none());
        assert!(t.get(&top[16].node_id).is_some(), "the replacement came in");
        assert_eq!(t.at_distances(&[256], 100).len(), 16);
        assert!(t.at_distances(&[0, 257], 100).is_empty());
        let target = top[3].node_id;
        assert_eq!(t.closest(&target, 1)[0].contact.id, target);
    }
}
