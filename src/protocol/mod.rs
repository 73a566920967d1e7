//! Everything op-lite reads from L1, the engine and the gossip network, as pure code: no I/O,
//! no clock. Decoders take untrusted bytes and return errors, never panic, and bound what they
//! allocate.

pub mod batch;
pub mod blob;
pub mod block;
pub mod block_ref;
pub mod channel;
pub mod channel_out;
pub mod deposit;
pub mod eip1559;
pub mod frame;
pub mod gossip;
pub mod header;
pub mod jwt;
pub mod kzg;
pub mod l1_chain;
pub mod l1_info;
pub mod output_root;
pub mod payload;
pub mod primitives;
pub mod proof;
pub mod receipt;
pub mod rlp;
pub mod rollup;
pub mod span_batch;
pub mod system_config;
pub mod trie;
pub mod tx;
pub mod upgrades;
pub mod varint;
