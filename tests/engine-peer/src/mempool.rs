//! A bounded transaction pool: per sender, transactions by nonce; a block takes each sender's
//! run of consecutive nonces from its state nonce on, senders in arrival order.

use std::collections::{BTreeMap, HashMap};

use alloy_consensus::Transaction;
use alloy_primitives::{Address, B256};

use crate::chain::Tx;
use crate::state::State;

/// Nonces further than this ahead of the sender's state nonce are refused.
const MAX_NONCE_GAP: u64 = 64;

pub struct Pool {
    cap: usize,
    len: usize,
    by_sender: HashMap<Address, BTreeMap<u64, Tx>>,
    /// Senders in the order their first pending transaction arrived.
    senders: Vec<Address>,
}

fn state_nonce(state: &State, a: &Address) -> u64 {
    state.account(a).map_or(0, |acc| acc.nonce)
}

impl Pool {
    pub fn new(cap: usize) -> Pool {
        Pool { cap, len: 0, by_sender: HashMap::new(), senders: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds `tx` (replacing one with the same sender and nonce if it pays more).
    pub fn insert(&mut self, tx: Tx, state: &State) -> Result<B256, String> {
        let nonce = tx.envelope.nonce();
        let next = state_nonce(state, &tx.sender);
        if nonce < next {
            return Err(format!("nonce too low: next nonce {next}, tx nonce {nonce}"));
        }
        if nonce > next + MAX_NONCE_GAP {
            return Err(format!("nonce too high: next nonce {next}, tx nonce {nonce}"));
        }
        let hash = tx.hash;
        let queue = self.by_sender.entry(tx.sender).or_default();
        if let Some(old) = queue.get(&nonce) {
            if old.hash == hash {
                return Ok(hash);
            }
            if tx.envelope.max_fee_per_gas() <= old.envelope.max_fee_per_gas() {
                return Err("replacement transaction underpriced".into());
            }
            queue.insert(nonce, tx);
            return Ok(hash);
        }
        if self.len >= self.cap {
            if queue.is_empty() {
                self.by_sender.remove(&tx.sender);
            }
            return Err("txpool is full".into());
        }
        if queue.is_empty() {
            self.senders.push(tx.sender);
        }
        queue.insert(nonce, tx);
        self.len += 1;
        Ok(hash)
    }

    /// Drops what `state` (the new head's) already includes.
    pub fn prune(&mut self, state: &State) {
        let mut removed = 0;
        for (sender, queue) in self.by_sender.iter_mut() {
            let next = state_nonce(state, sender);
            let keep = queue.split_off(&next);
            removed += queue.len();
            *queue = keep;
        }
        self.len -= removed;
        self.by_sender.retain(|_, q| !q.is_empty());
        let by_sender = &self.by_sender;
        self.senders.retain(|s| by_sender.contains_key(s));
    }

    /// Removes one transaction (it failed to execute).
    pub fn remove(&mut self, hash: &B256) {
        for queue in self.by_sender.values_mut() {
            if let Some(n) = queue.iter().find(|(_, t)| t.hash == *hash).map(|(n, _)| *n) {
                queue.remove(&n);
                self.len -= 1;
            }
        }
        self.by_sender.retain(|_, q| !q.is_empty());
        let by_sender = &self.by_sender;
        self.senders.retain(|s| by_sender.contains_key(s));
    }

    /// The transactions a block on `state` can take, in order.
    pub fn candidates(&self, state: &State) -> Vec<Tx> {
        let mut out = Vec::new();
        for sender in &self.senders {
            let Some(queue) = self.by_sender.get(sender) else { continue };
            let mut next = state_nonce(state, sender);
            while let Some(tx) = queue.get(&next) {
                out.push(tx.clone());
                next += 1;
            }
        }
        out
    }
}
