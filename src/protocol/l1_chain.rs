//! What the rollup needs to know about the L1 chain itself: the EIP-4844 blob schedule by L1
//! fork, to compute the blob base fee recorded in the L1-info deposit (op-node computes it with
//! go-ethereum's `eip4844.CalcBlobFee(l1ChainConfig, header)`).

use crate::protocol::primitives::U256;

/// Blob base fee update fraction of Cancun.
pub const CANCUN_UPDATE_FRACTION: u64 = 3_338_477;
/// Blob base fee update fraction of Prague and Osaka.
pub const PRAGUE_UPDATE_FRACTION: u64 = 5_007_716;
/// BPO1 (Fusaka blob-parameter-only fork).
pub const BPO1_UPDATE_FRACTION: u64 = 8_346_193;
/// BPO2.
pub const BPO2_UPDATE_FRACTION: u64 = 11_684_671;

/// An L1 chain's blob schedule: (activation time, update fraction), sorted by time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L1ChainSpec {
    pub chain_id: u64,
    pub name: &'static str,
    pub blob_schedule: Vec<(u64, u64)>,
}

impl L1ChainSpec {
    /// The built-in L1s (go-ethereum `params` chain configs): mainnet, Sepolia, Holesky, Hoodi.
    pub fn by_chain_id(chain_id: u64) -> Option<L1ChainSpec> {
        let (name, times): (&'static str, [u64; 5]) = match chain_id {
            1 => ("mainnet", [1710338135, 1746612311, 1764798551, 1765290071, 1767747671]),
            11155111 => ("sepolia", [1706655072, 1741159776, 1760427360, 1761017184, 1761607008]),
            17000 => ("holesky", [1707305664, 1740434112, 1759308480, 1759800000, 1760389824]),
            560048 => ("hoodi", [0, 1742999832, 1761677592, 1762365720, 1762955544]),
            _ => return None,
        };
        let fractions = [
            CANCUN_UPDATE_FRACTION,
            PRAGUE_UPDATE_FRACTION,
            PRAGUE_UPDATE_FRACTION,
            BPO1_UPDATE_FRACTION,
            BPO2_UPDATE_FRACTION,
        ];
        Some(L1ChainSpec { chain_id, name, blob_schedule: times.into_iter().zip(fractions).collect() })
    }

    /// A dev L1 with Cancun and Prague from genesis (the devnet's L1 simulator).
    pub fn dev(chain_id: u64) -> L1ChainSpec {
        L1ChainSpec {
            chain_id,
            name: "devnet",
            blob_schedule: vec![(0, CANCUN_UPDATE_FRACTION), (0, PRAGUE_UPDATE_FRACTION)],
        }
    }

    /// A geth chain config (`params.ChainConfig` JSON, or a genesis.json with it under
    /// `.config`), as `--rollup.l1-chain-config` takes it: the blob forks' times, with the
    /// fractions of its `blobSchedule` or the standard ones.
    pub fn from_json(text: &str) -> Result<L1ChainSpec, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let c = v.get("config").filter(|c| c.is_object()).unwrap_or(&v);
        let chain_id = c.get("chainId").and_then(|x| x.as_u64()).ok_or("missing chainId")?;
        let forks = [
            ("cancunTime", "cancun", CANCUN_UPDATE_FRACTION),
            ("pragueTime", "prague", PRAGUE_UPDATE_FRACTION),
            ("osakaTime", "osaka", PRAGUE_UPDATE_FRACTION),
            ("bpo1Time", "bpo1", BPO1_UPDATE_FRACTION),
            ("bpo2Time", "bpo2", BPO2_UPDATE_FRACTION),
            ("bpo3Time", "bpo3", 0),
            ("bpo4Time", "bpo4", 0),
            ("bpo5Time", "bpo5", 0),
        ];
        let mut blob_schedule = Vec::new();
        for (time_key, name, default) in forks {
            let Some(t) = c.get(time_key).and_then(|x| x.as_u64()) else { continue };
            let fraction = c
                .pointer(&format!("/blobSchedule/{name}/baseFeeUpdateFraction"))
                .and_then(|x| x.as_u64())
                .unwrap_or(default);
            if fraction == 0 {
                return Err(format!(
                    "{time_key} is set but blobSchedule.{name}.baseFeeUpdateFraction is missing"
                ));
            }
            blob_schedule.push((t, blob_schedule.len(), fraction));
        }
        // By time; of forks at the same time the later one rules.
        crate::sort::sort_by_key(&mut blob_schedule, |&(t, fork, _)| (t, fork));
        let blob_schedule = blob_schedule.into_iter().map(|(t, _, fraction)| (t, fraction)).collect();
        Ok(L1ChainSpec { chain_id, name: "custom", blob_schedule })
    }

    /// The update fraction in force at L1 time `t`, if blobs exist then.
    pub fn update_fraction(&self, t: u64) -> Option<u64> {
        self.blob_schedule.iter().rev().find(|(at, _)| t >= *at).map(|(_, f)| *f)
    }
}

/// EIP-4844 `fake_exponential(1, excess_blob_gas, update_fraction)`: the blob base fee.
pub fn blob_base_fee(excess_blob_gas: u64, update_fraction: u64) -> U256 {
    // numerator_accum grows as factor * numerator^i / (denominator^i * i!); it fits in 256 bits
    // for any u64 inputs long before it falls to zero, except for absurd excess values, which
    // saturate (an L1 node would never produce them).
    let factor = U256::from_u64(1);
    let mut output = U256::ZERO;
    let mut accum = factor.checked_mul_add_small(update_fraction, 0).unwrap_or(U256::MAX);
    let mut i = 1u64;
    while !accum.is_zero() {
        output = output.checked_add(&accum).unwrap_or(U256::MAX);
        // accum = accum * excess / (update_fraction * i)
        let Some(next) = mul_u256_u64(&accum, excess_blob_gas) else {
            return U256::MAX;
        };
        accum = div_u256_u128(&next, update_fraction as u128 * i as u128);
        i += 1;
        if i > 10_000 {
            break;
        }
    }
    div_u256_u128(&output, update_fraction as u128)
}

fn mul_u256_u64(a: &U256, m: u64) -> Option<U256> {
    a.checked_mul_add_small(m, 0)
}

fn div_u256_u128(a: &U256, d: u128) -> U256 {
    if d == 0 {
        return U256::MAX;
    }
    // Long division over bytes with a u128 divisor (d < 2^128 keeps remainders < 2^128).
    let mut q = [0u8; 32];
    let mut rem: u128 = 0;
    for (i, byte) in a.0.iter().enumerate() {
        let cur = (rem << 8) | *byte as u128;
        // rem < d < 2^120 in practice (fraction * iterations), so the shift cannot overflow.
        q[i] = (cur / d) as u8;
        rem = cur % d;
    }
    U256(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_chain_config_from_geth_json() {
        let genesis = r#"{"config":{"chainId":900,"cancunTime":0,"pragueTime":100,
            "blobSchedule":{"cancun":{"target":3,"max":6,"baseFeeUpdateFraction":3338477},
            "prague":{"target":6,"max":9,"baseFeeUpdateFraction":5007716}}},"alloc":{}}"#;
        let s = L1ChainSpec::from_json(genesis).unwrap();
        assert_eq!(s.chain_id, 900);
        assert_eq!(s.update_fraction(50), Some(CANCUN_UPDATE_FRACTION));
        assert_eq!(s.update_fraction(100), Some(PRAGUE_UPDATE_FRACTION));
        // The direct format, standard fractions when the schedule is absent.
        let s = L1ChainSpec::from_json(r#"{"chainId":5,"cancunTime":10,"bpo1Time":20}"#).unwrap();
        assert_eq!(s.update_fraction(5), None);
        assert_eq!(s.update_fraction(25), Some(BPO1_UPDATE_FRACTION));
        assert!(L1ChainSpec::from_json(r#"{"chainId":5,"bpo3Time":1}"#).is_err());
        assert!(L1ChainSpec::from_json("[]").is_err());
    }

    #[test]
    fn blob_base_fee_matches_eip4844() {
        assert_eq!(blob_base_fee(0, CANCUN_UPDATE_FRACTION).to_u64(), Some(1));
        // Values from go-ethereum's eip4844 tests (CalcBlobFee).
        assert_eq!(blob_base_fee(2314057, CANCUN_UPDATE_FRACTION).to_u64(), Some(1));
        assert_eq!(blob_base_fee(2314058, CANCUN_UPDATE_FRACTION).to_u64(), Some(2));
        assert_eq!(blob_base_fee(10 * 1024 * 1024, CANCUN_UPDATE_FRACTION).to_u64(), Some(23));
    }

    #[test]
    fn schedules_pick_the_latest_fork() {
        let m = L1ChainSpec::by_chain_id(1).unwrap();
        assert_eq!(m.update_fraction(1710338134), None);
        assert_eq!(m.update_fraction(1710338135), Some(CANCUN_UPDATE_FRACTION));
        assert_eq!(m.update_fraction(1746612311), Some(PRAGUE_UPDATE_FRACTION));
        assert_eq!(m.update_fraction(1767747671), Some(BPO2_UPDATE_FRACTION));
        assert!(L1ChainSpec::by_chain_id(5).is_none());
    }
}
