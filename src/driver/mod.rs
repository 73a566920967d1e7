//! The rollup driver's derivers: step scheduling and the sync deriver.

pub mod sched;
pub mod sync;
