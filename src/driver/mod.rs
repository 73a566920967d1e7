//! The rollup driver's derivers: step scheduling and the sync deriver.

pub mod finalizer;
pub mod follow;
pub mod l1_poll;
pub mod runtime_config;
pub mod safedb;
pub mod sched;
pub mod sequencer;
pub mod status;
pub mod sync;
