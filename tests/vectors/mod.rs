//! Real data: every decoder, encoder and derivation step against the shared fixtures (real
//! batcher transactions, channels, span batches, blobs, deposits, L2 blocks, rollup configs
//! and a real OP Mainnet derivation range) and published vectors.

mod batcher;
mod batches;
mod beacon;
mod chain_data;
mod config;
mod deposits;
mod derive;
mod enr;
mod p2p_blocks;
mod payloads;
mod untrusted;
