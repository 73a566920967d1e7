pub mod blocks;
pub mod gossipsub;
pub mod reqresp;
