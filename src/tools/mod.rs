//! Operator tools that run the node's own code on files: `replay` (derivation over a recorded
//! L1 range), `decode` (batcher data, channels, blocks, blobs, gossip messages) and `networks`
//! (the built-in networks).

pub mod decode;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod networks;
pub mod p2p;
pub mod replay;

/// The usage error for arguments a command did not take, naming them; `None` when none are
/// left.
pub fn unexpected(rest: &[std::ffi::OsString]) -> Option<String> {
    (!rest.is_empty()).then(|| {
        let names: Vec<_> = rest.iter().map(|a| a.to_string_lossy()).collect();
        format!("unexpected argument{} {}", if rest.len() == 1 { "" } else { "s" }, names.join(" "))
    })
}
