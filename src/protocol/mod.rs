//! Everything op-lite reads from L1, the engine and the gossip network, as pure code: no I/O,
//! no clock. Decoders take untrusted bytes and return errors, never panic, and bound what they
//! allocate.

pub mod primitives;
pub mod rlp;
pub mod system_config;
