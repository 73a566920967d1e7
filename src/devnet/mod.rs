//! The embedded local devnet (`op-lite devnet`): an L1 simulator, a batcher posting real
//! frames, channels and span batches, and an engine stand-in — all in-process on loopback — for
//! the real node to follow. Behind the `devnet` cargo feature (on by default).

pub mod engine_sim;
pub mod l1_sim;
