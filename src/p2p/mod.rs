pub mod blocks;
pub mod gossipsub;
pub mod identity;
pub mod multistream;
pub mod noise;
pub mod reqresp;
pub mod yamux;
