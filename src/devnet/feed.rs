//! What the devnet's batcher reads from a sequencer's execution engine it does not run itself
//! (op-reth, op-geth, or a stand-in in another process): the sequenced chain block by block,
//! as op-batcher follows its sequencer's L2, and the user transfers the devnet sends into that
//! engine's mempool.
//!
//! Call order: `next_block` is the number to fetch; each fetched block goes to `handle_block`,
//! which hands back the steps for the batcher (`FeedStep`); `poll_transfers` gives signed
//! transfers to send (`eth_sendRawTransaction`). A block whose parent is not the block handed
//! out before it means the sequencer's chain was reorganised: the feed walks back, fetching
//! again until the chains meet, then tells the batcher where the new chain starts.
//!
//! Pure: `io::devnet_feed` fetches and sends over HTTP on a thread of its own.

use std::collections::BTreeMap;

use super::genesis::{self, USERS};
use super::l1_sim::Account;
use crate::derive::data::L2BlockData;
use crate::protocol::channel_out::L2BlockInput;
use crate::protocol::primitives::{keccak256, Bytes, B256, U256};
use crate::protocol::tx::Transaction;
use crate::rng::Rng;

/// Recent block hashes kept to notice a reorganised chain (deeper reorgs restart the batcher
/// from where the kept hashes end).
const KEEP_HASHES: usize = 1024;
/// A transfer not seen in a block after this many seconds is sent again with the nonce the
/// chain says (the engine restarted and lost its pool, or dropped the transaction).
const RESEND_AFTER_SECS: u64 = 20;

/// What the batcher learns from the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStep {
    /// The next sequenced block.
    Block(L2BlockInput),
    /// The sequenced chain from `from` on was replaced; blocks from `from` follow again.
    Reorg { from: u64 },
}

struct User {
    account: Account,
    /// The nonce of this user's next transaction by the blocks seen.
    next_nonce: u64,
    /// The transfer sent and not yet seen in a block, with when it was sent.
    in_flight: Option<(B256, u64)>,
}

/// The feed's state.
pub struct SequencerFeed {
    l2_chain_id: u64,
    next: u64,
    /// Hashes of the blocks handed out, by number (the last `KEEP_HASHES`).
    hashes: BTreeMap<u64, B256>,
    /// The first block of a reorganised chain, while walking back to where it meets ours.
    reorg_from: Option<u64>,
    /// Per block: the (user, nonce) of the user transfers it carried, to take back on a reorg.
    carried: BTreeMap<u64, Vec<(usize, u64)>>,
    users: Vec<User>,
    /// Whether `poll_transfers` makes transfers (at most one in flight per user).
    transfers: bool,
    rng: Rng,
}

impl SequencerFeed {
    /// A feed of the chain `l2_chain_id` from block 1, sending transfers between the devnet's
    /// funded users when `transfers`.
    pub fn new(l2_chain_id: u64, transfers: bool, seed: u64) -> Self {
        SequencerFeed {
            l2_chain_id,
            next: 1,
            hashes: BTreeMap::new(),
            reorg_from: None,
            carried: BTreeMap::new(),
            users: (0..USERS)
                .map(|i| User { account: genesis::user(i), next_nonce: 0, in_flight: None })
                .collect(),
            transfers,
            rng: Rng::new(seed),
        }
    }

    /// The number of the block to fetch next.
    pub fn next_block(&self) -> u64 {
        self.next
    }

    /// A block fetched at `next_block()`: the steps it gives the batcher (none while walking
    /// back over a reorganised chain).
    pub fn handle_block(&mut self, block: &L2BlockData) -> Vec<FeedStep> {
        let r = &block.block_ref;
        if r.number != self.next {
            return Vec::new();
        }
        let parent_known = r.number.checked_sub(1).and_then(|p| self.hashes.get(&p));
        if parent_known.is_some_and(|h| *h != r.parent_hash) {
            // Our block r.number - 1 is no longer on the chain: fetch that height again.
            let from = r.number - 1;
            self.reorg_from = Some(self.reorg_from.map_or(from, |f| f.min(from)));
            self.forget_from(from);
            self.next = from;
            return Vec::new();
        }
        let mut steps = Vec::with_capacity(2);
        if let Some(from) = self.reorg_from.take() {
            log::warn!("devnet batcher: the sequencer's chain was reorganised from block {from}");
            steps.push(FeedStep::Reorg { from: r.number.min(from) });
        }
        self.see_transfers(r.number, &block.txs);
        self.hashes.insert(r.number, r.hash);
        while self.hashes.len() > KEEP_HASHES {
            self.hashes.pop_first();
        }
        self.next = r.number + 1;
        steps.push(FeedStep::Block(L2BlockInput {
            number: r.number,
            timestamp: r.timestamp,
            parent_hash: r.parent_hash,
            hash: r.hash,
            l1_origin: r.l1origin,
            sequence_number: r.sequence_number,
            transactions: block.txs.to_vec(),
        }));
        steps
    }

    fn forget_from(&mut self, from: u64) {
        self.hashes.split_off(&from);
        // Transfers of the dropped blocks are not on the chain any more: their users' next
        // nonce goes back to the lowest of them.
        for (_, carried) in self.carried.split_off(&from) {
            for (u, nonce) in carried {
                let user = &mut self.users[u];
                user.next_nonce = user.next_nonce.min(nonce);
                user.in_flight = None;
            }
        }
    }

    /// Notes the users' transfers in block `number`.
    fn see_transfers(&mut self, number: u64, txs: &[Bytes]) {
        let mut carried = Vec::new();
        for raw in txs {
            let Ok(tx) = Transaction::decode(raw) else { continue };
            let Some(signed) = tx.as_signed() else { continue };
            let Ok(sender) = tx.sender() else { continue };
            let Some(u) = self.users.iter().position(|u| u.account.address == sender) else { continue };
            let user = &mut self.users[u];
            user.next_nonce = user.next_nonce.max(signed.nonce + 1);
            if user.in_flight.is_some_and(|(h, _)| h == keccak256(raw)) {
                user.in_flight = None;
            }
            carried.push((u, signed.nonce));
        }
        if !carried.is_empty() {
            self.carried.insert(number, carried);
            while self.carried.len() > KEEP_HASHES {
                self.carried.pop_first();
            }
        }
    }

    /// Signed transfers to send now (`now`: unix seconds): one for each user without one in
    /// flight, or whose last has not shown up for `RESEND_AFTER_SECS`.
    pub fn poll_transfers(&mut self, now: u64) -> Vec<Bytes> {
        if !self.transfers {
            return Vec::new();
        }
        let mut out = Vec::new();
        for i in 0..self.users.len() {
            let due = self.users[i].in_flight.is_none_or(|(_, at)| now >= at + RESEND_AFTER_SECS);
            if !due {
                continue;
            }
            let to = self.users[(i + 1) % self.users.len()].account.address;
            let tx = genesis::user_transfer(to, U256::from_u64(1 + self.rng.below(1_000_000)));
            let user = &mut self.users[i];
            user.account.nonce = user.next_nonce;
            let raw = user.account.sign(tx, self.l2_chain_id).encoded().to_vec();
            user.in_flight = Some((keccak256(&raw), now));
            out.push(Bytes(raw));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::chain::{Devnet, DevnetParams, Sequencing};
    use crate::devnet::engine_sim::EngineSim;

    fn data(e: &EngineSim, n: u64) -> L2BlockData {
        let b = e.block_by_number(n).unwrap();
        e.block_data(&b.envelope.execution_payload.block_hash).unwrap()
    }

    /// A devnet whose sequencer engine (`seq`) builds blocks from its pool, driven the way the
    /// sequencer node drives it.
    fn devnet() -> Devnet {
        let p = DevnetParams { sequencing: Sequencing::NodeOnStandIn, ..DevnetParams::default() };
        Devnet::new(p).unwrap()
    }

    #[test]
    fn follows_the_chain_and_its_reorgs_and_keeps_nonces_with_it() {
        let mut d = devnet();
        let mut feed = SequencerFeed::new(d.rollup_config().l2_chain_id, true, 3);
        // Three transfers, one per user, go into the sequencer engine's pool; blocks carry them.
        let sent = feed.poll_transfers(100);
        assert_eq!(sent.len(), USERS);
        assert!(feed.poll_transfers(101).is_empty(), "one in flight per user");
        d.seq.pool.extend(sent);
        crate::devnet::chain::tests_support::sequence(&mut d, 3);
        let mut got = Vec::new();
        while feed.next_block() <= d.seq.head_number() {
            got.extend(feed.handle_block(&data(&d.seq, feed.next_block())));
        }
        assert_eq!(got.len(), 3);
        assert!(matches!(&got[0], FeedStep::Block(b) if b.number == 1 && b.transactions.len() == 1 + USERS));
        // Seen in block 1: the next round sends nonce 1.
        let next = feed.poll_transfers(102);
        assert_eq!(next.len(), USERS);
        let tx = Transaction::decode(&next[0]).unwrap();
        assert_eq!(tx.as_signed().unwrap().nonce, 1);

        // The sequencer reorganises from block 1 (e.g. derivation replaced its unsafe chain):
        // the feed walks back and says so once, and the users' nonces go back to 0.
        d.seq.restart_losing(3);
        crate::devnet::chain::tests_support::sequence(&mut d, 4);
        let mut steps = Vec::new();
        for _ in 0..20 {
            if feed.next_block() > d.seq.head_number() {
                break;
            }
            steps.extend(feed.handle_block(&data(&d.seq, feed.next_block())));
        }
        assert_eq!(steps.first(), Some(&FeedStep::Reorg { from: 1 }), "{steps:?}");
        let numbers: Vec<u64> = steps
            .iter()
            .filter_map(|s| match s {
                FeedStep::Block(b) => Some(b.number),
                _ => None,
            })
            .collect();
        assert_eq!(numbers, vec![1, 2, 3, 4]);
        let again = feed.poll_transfers(200);
        assert_eq!(Transaction::decode(&again[0]).unwrap().as_signed().unwrap().nonce, 0);
    }

    #[test]
    fn a_lost_transfer_is_sent_again() {
        let mut feed = SequencerFeed::new(901, true, 3);
        let first = feed.poll_transfers(100);
        assert!(feed.poll_transfers(100 + RESEND_AFTER_SECS - 1).is_empty());
        let again = feed.poll_transfers(100 + RESEND_AFTER_SECS);
        assert_eq!(again.len(), first.len());
        assert_eq!(Transaction::decode(&again[0]).unwrap().as_signed().unwrap().nonce, 0);
        let mut quiet = SequencerFeed::new(901, false, 3);
        assert!(quiet.poll_transfers(100).is_empty());
    }
}
