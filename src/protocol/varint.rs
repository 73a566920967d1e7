//! Unsigned LEB128 varints, as Go's `binary.Uvarint`, protobuf and multiformats' unsigned-varint
//! write them: seven bits per byte, least significant group first, the high bit set on every
//! byte but the last. One coder for span batches, libp2p framing and protobuf fields.

/// The longest encoding of a `u64`.
pub const MAX_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ends inside the varint.
    Truncated,
    /// More than 64 bits (Go's "varint overflows a 64-bit integer").
    Overflow,
}

/// Appends `v`.
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The encoded size of `v`.
pub fn len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a varint from the start of `buf`; returns it and the bytes it took. Go's
/// `binary.ReadUvarint`: at most 10 bytes, the 10th at most 1; non-minimal forms pass.
pub fn read(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut v = 0u64;
    for i in 0..MAX_LEN {
        let b = *buf.get(i).ok_or(VarintError::Truncated)?;
        if i == MAX_LEN - 1 && b > 1 {
            return Err(VarintError::Overflow);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(VarintError::Overflow)
}

/// Reads a varint at `*pos` and moves `pos` past it.
pub fn read_at(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let (v, n) = read(buf.get(*pos..).unwrap_or_default())?;
    *pos += n;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sizes() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(out.len(), len(v), "{v}");
            assert_eq!(read(&out), Ok((v, out.len())), "{v}");
        }
        let mut out = Vec::new();
        put(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(len(u64::MAX), MAX_LEN);
    }

    #[test]
    fn truncated_and_overflowing_inputs_are_errors() {
        let mut out = Vec::new();
        put(&mut out, u64::MAX);
        for n in 0..out.len() {
            assert_eq!(read(&out[..n]), Err(VarintError::Truncated), "prefix {n}");
        }
        // The tenth byte may only carry the 64th bit.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(read(&over), Err(VarintError::Overflow));
        assert_eq!(read(&[0x80; 11]), Err(VarintError::Overflow));
        // Non-minimal forms read as Go reads them.
        assert_eq!(read(&[0x81, 0x00]), Ok((1, 2)));
    }

    #[test]
    fn read_at_advances() {
        let buf = [0x05, 0xac, 0x02, 0x80];
        let mut pos = 0;
        assert_eq!(read_at(&buf, &mut pos), Ok(5));
        assert_eq!(read_at(&buf, &mut pos), Ok(300));
        assert_eq!(pos, 3);
        assert_eq!(read_at(&buf, &mut pos), Err(VarintError::Truncated));
        let mut past = 9;
        assert_eq!(read_at(&buf, &mut past), Err(VarintError::Truncated));
    }
}
