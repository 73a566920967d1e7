//! L2 output roots, the commitment proposals post to L1 (specs `protocol/proposals.md`,
//! op-service `eth/output.go`): version 0 is
//! `keccak256(version ++ stateRoot ++ messagePasserStorageRoot ++ latestBlockHash)` with a
//! 32-byte zero version.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::primitives::{keccak256, B256};

/// The version word of a v0 output.
pub const OUTPUT_VERSION_V0: B256 = B256::ZERO;
/// The size of an encoded v0 output.
pub const OUTPUT_V0_LEN: usize = 128;

/// Why bytes are not an output preimage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputRootError {
    /// Too short for a version, or not 128 bytes for version 0.
    InvalidOutput(usize),
    UnknownVersion(B256),
}

impl fmt::Display for OutputRootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputRootError::InvalidOutput(n) => write!(f, "invalid output ({n} bytes)"),
            OutputRootError::UnknownVersion(v) => write!(f, "invalid output version {v}"),
        }
    }
}

impl std::error::Error for OutputRootError {}

/// The preimage of a version 0 output root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputV0 {
    pub state_root: B256,
    /// The storage root of the L2ToL1MessagePasser (from Isthmus also the header's
    /// withdrawalsRoot).
    pub message_passer_storage_root: B256,
    pub block_hash: B256,
}

impl OutputV0 {
    /// The 128-byte preimage.
    pub fn encode(&self) -> [u8; OUTPUT_V0_LEN] {
        let mut out = [0u8; OUTPUT_V0_LEN];
        out[32..64].copy_from_slice(&self.state_root.0);
        out[64..96].copy_from_slice(&self.message_passer_storage_root.0);
        out[96..].copy_from_slice(&self.block_hash.0);
        out
    }

    /// The output root.
    pub fn root(&self) -> B256 {
        keccak256(self.encode())
    }

    /// Decodes a preimage (op-service `UnmarshalOutput`).
    pub fn decode(data: &[u8]) -> Result<OutputV0, OutputRootError> {
        let version =
            data.get(..32).and_then(B256::from_slice).ok_or(OutputRootError::InvalidOutput(data.len()))?;
        if version != OUTPUT_VERSION_V0 {
            return Err(OutputRootError::UnknownVersion(version));
        }
        let words: &[u8; OUTPUT_V0_LEN] =
            data.try_into().map_err(|_| OutputRootError::InvalidOutput(data.len()))?;
        let word = |i: usize| B256::from_slice(&words[32 * i..32 * (i + 1)]).unwrap_or_default();
        Ok(OutputV0 { state_root: word(1), message_passer_storage_root: word(2), block_hash: word(3) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn sample() -> OutputV0 {
        let mut o = OutputV0::default();
        o.state_root.0[..3].copy_from_slice(&[1, 2, 3]);
        o.message_passer_storage_root.0[..3].copy_from_slice(&[4, 5, 6]);
        o.block_hash.0[..3].copy_from_slice(&[7, 8, 9]);
        o
    }

    #[test]
    fn codec_and_json_match_op_service() {
        let o = sample();
        assert_eq!(OutputV0::decode(&o.encode()), Ok(o));
        // op-service eth/testdata/output_v0.json.
        let json = r#"{"stateRoot":"0x0102030000000000000000000000000000000000000000000000000000000000","messagePasserStorageRoot":"0x0405060000000000000000000000000000000000000000000000000000000000","blockHash":"0x0708090000000000000000000000000000000000000000000000000000000000"}"#;
        assert_eq!(serde_json::to_string(&o).unwrap(), json);
        assert_eq!(serde_json::from_str::<OutputV0>(json).unwrap(), o);
    }

    #[test]
    fn rejects_bad_preimages() {
        let mut v = [0u8; 33];
        v[0] = 0xa;
        assert!(matches!(OutputV0::decode(&v), Err(OutputRootError::UnknownVersion(_))));
        assert_eq!(OutputV0::decode(&[0xa]), Err(OutputRootError::InvalidOutput(1)));
        assert_eq!(OutputV0::decode(&[0; 65]), Err(OutputRootError::InvalidOutput(65)));
    }

    #[test]
    fn truncated_and_random_never_panic() {
        let data = sample().encode();
        for n in 0..data.len() {
            assert!(OutputV0::decode(&data[..n]).is_err());
        }
        let mut rng = Rng::new(0);
        for _ in 0..2000 {
            let mut b = vec![0u8; rng.below(160) as usize];
            rng.fill(&mut b);
            if rng.below(2) == 0 {
                b.iter_mut().take(32).for_each(|x| *x = 0);
            }
            let _ = OutputV0::decode(&b);
        }
    }
}
