//! Channel frames and the batcher transaction data that carries them (derivation spec, "Batcher
//! Transaction Format" and "Frame Format").
//!
//! Input: the calldata or blob payload of a batcher transaction. Output: the frames it holds, in
//! order. As op-node's `ParseFrames`, one malformed frame rejects the whole transaction data.

use std::fmt;

/// The only batcher transaction version that carries frames.
pub const DERIVATION_VERSION_0: u8 = 0;
/// op-node's `MaxFrameLen`: the cap on one frame's data length.
pub const MAX_FRAME_LEN: usize = 1_000_000;
/// Encoded bytes of a frame besides its data: id, number, data length and `is_last`.
pub const FRAME_HEADER_LEN: usize = 16 + 2 + 4 + 1;

/// An opaque channel identifier.
pub type ChannelId = [u8; 16];

/// Why batcher transaction data was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The transaction data is empty.
    Empty,
    /// The first byte is not derivation version 0.
    UnknownVersion(u8),
    /// Frame `frame` ends inside `field`.
    Truncated { frame: usize, field: &'static str },
    /// Frame `frame` declares more data than `MAX_FRAME_LEN`.
    TooLarge { frame: usize, len: u32 },
    /// Frame `frame` has an `is_last` byte other than 0 or 1.
    InvalidIsLast { frame: usize, byte: u8 },
    /// The version byte is followed by no frame at all.
    NoFrames,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Empty => write!(f, "batcher data is empty"),
            FrameError::UnknownVersion(v) => write!(f, "unknown derivation version {v}"),
            FrameError::Truncated { frame, field } => {
                write!(f, "frame {frame}: input ends inside {field}")
            }
            FrameError::TooLarge { frame, len } => {
                write!(f, "frame {frame}: data length {len} exceeds {MAX_FRAME_LEN}")
            }
            FrameError::InvalidIsLast { frame, byte } => {
                write!(f, "frame {frame}: invalid is_last byte {byte}")
            }
            FrameError::NoFrames => write!(f, "batcher data holds no frames"),
        }
    }
}

impl std::error::Error for FrameError {}

/// One piece of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub channel_id: ChannelId,
    pub number: u16,
    pub data: Vec<u8>,
    pub is_last: bool,
}

impl Frame {
    /// Parses batcher transaction data: version 0 followed by one or more frames, nothing else.
    pub fn parse_all(tx_data: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let (&version, mut rest) = tx_data.split_first().ok_or(FrameError::Empty)?;
        if version != DERIVATION_VERSION_0 {
            return Err(FrameError::UnknownVersion(version));
        }
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let (frame, used) = Frame::parse(rest, frames.len())?;
            rest = &rest[used..];
            frames.push(frame);
        }
        if frames.is_empty() {
            return Err(FrameError::NoFrames);
        }
        Ok(frames)
    }

    /// Parses the frame at the start of `buf` (the `index`-th of its transaction, for errors),
    /// returning it and the bytes it took.
    fn parse(buf: &[u8], index: usize) -> Result<(Frame, usize), FrameError> {
        let truncated = |field| FrameError::Truncated { frame: index, field };
        let (id, rest) = split::<16>(buf).ok_or(truncated("channel_id"))?;
        let (number, rest) = split::<2>(rest).ok_or(truncated("frame_number"))?;
        let (len, rest) = split::<4>(rest).ok_or(truncated("frame_data_length"))?;
        let len = u32::from_be_bytes(len);
        if len as usize > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge { frame: index, len });
        }
        let data = rest.get(..len as usize).ok_or(truncated("frame_data"))?;
        let is_last = match rest.get(len as usize) {
            None => return Err(truncated("is_last")),
            Some(0) => false,
            Some(1) => true,
            Some(&byte) => return Err(FrameError::InvalidIsLast { frame: index, byte }),
        };
        let frame =
            Frame { channel_id: id, number: u16::from_be_bytes(number), data: data.to_vec(), is_last };
        Ok((frame, FRAME_HEADER_LEN + data.len()))
    }

    /// Appends the frame's wire encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.channel_id);
        out.extend_from_slice(&self.number.to_be_bytes());
        // Frames built here carry at most MAX_FRAME_LEN bytes, which fits a u32.
        out.extend_from_slice(&(self.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.data);
        out.push(self.is_last as u8);
    }

    /// Returns the length of the frame's wire encoding.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.data.len()
    }
}

/// Builds batcher transaction data (version 0 followed by the frames) for a batcher to post.
pub fn batcher_tx_data(frames: &[Frame]) -> Vec<u8> {
    let len = 1 + frames.iter().map(Frame::encoded_len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.push(DERIVATION_VERSION_0);
    for f in frames {
        f.encode(&mut out);
    }
    out
}

fn split<const N: usize>(buf: &[u8]) -> Option<([u8; N], &[u8])> {
    let head = buf.get(..N)?;
    Some((head.try_into().ok()?, &buf[N..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn sample() -> Vec<Frame> {
        vec![
            Frame { channel_id: [0xde; 16], number: 0, data: b"hello".to_vec(), is_last: false },
            Frame { channel_id: [0xde; 16], number: 1, data: vec![], is_last: true },
        ]
    }

    #[test]
    fn round_trip() {
        let frames = sample();
        let data = batcher_tx_data(&frames);
        assert_eq!(data.len(), 1 + 2 * FRAME_HEADER_LEN + 5);
        assert_eq!(Frame::parse_all(&data).unwrap(), frames);
    }

    #[test]
    fn rejects_what_op_node_rejects() {
        assert_eq!(Frame::parse_all(&[]), Err(FrameError::Empty));
        assert_eq!(Frame::parse_all(&[1]), Err(FrameError::UnknownVersion(1)));
        assert_eq!(Frame::parse_all(&[0]), Err(FrameError::NoFrames));
        let mut data = batcher_tx_data(&sample());
        *data.last_mut().unwrap() = 2;
        assert_eq!(Frame::parse_all(&data), Err(FrameError::InvalidIsLast { frame: 1, byte: 2 }));
        let mut big = vec![0u8; 1 + 18];
        big.extend_from_slice(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert_eq!(
            Frame::parse_all(&big),
            Err(FrameError::TooLarge { frame: 0, len: MAX_FRAME_LEN as u32 + 1 })
        );
        // A trailing partial frame rejects the frames before it too.
        let mut data = batcher_tx_data(&sample());
        data.push(0xde);
        assert!(matches!(Frame::parse_all(&data), Err(FrameError::Truncated { frame: 2, .. })));
    }

    #[test]
    fn a_frame_of_max_len_is_accepted() {
        let f = Frame { channel_id: [1; 16], number: 7, data: vec![0xab; MAX_FRAME_LEN], is_last: true };
        let data = batcher_tx_data(std::slice::from_ref(&f));
        assert_eq!(Frame::parse_all(&data).unwrap(), vec![f]);
    }

    #[test]
    fn truncated_prefixes_are_errors() {
        let data = batcher_tx_data(&sample());
        for n in 0..data.len() {
            if n == 1 + FRAME_HEADER_LEN + 5 {
                assert_eq!(Frame::parse_all(&data[..n]).unwrap().len(), 1);
            } else {
                assert!(Frame::parse_all(&data[..n]).is_err(), "prefix {n}");
            }
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng::new(0xf4a3e);
        for _ in 0..4000 {
            let mut buf = vec![0u8; rng.below(80) as usize];
            rng.fill(&mut buf);
            if let Some(b) = buf.first_mut() {
                *b = 0;
            }
            // Small lengths so some random frames parse.
            if buf.len() > 23 {
                buf[19] = 0;
                buf[20] = 0;
                buf[21] = 0;
                buf[22] %= 64;
            }
            if let Ok(frames) = Frame::parse_all(&buf) {
                assert_eq!(batcher_tx_data(&frames), buf);
            }
        }
    }
}
