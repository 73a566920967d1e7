//! Channel frames and the batcher transaction data that carries them (derivation spec, "Batcher
//! Transaction Format" and "Frame Format").
//!
//! Input: the calldata or blob payload of a batcher transaction. Output: the frames it holds, in
//! order. As op-node's `ParseFrames`, one malformed frame rejects the whole transaction data.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// The only batcher transaction version that carries frames.
pub const DERIVATION_VERSION_0: u8 = 0;
/// op-node's `MaxFrameLen`: the cap on one frame's data length.
pub const MAX_FRAME_LEN: usize = 1_000_000;
/// Encoded bytes of a frame besides its data: id, number, data length and `is_last`.
pub const FRAME_HEADER_LEN: usize = 16 + 2 + 4 + 1;

/// An opaque channel identifier.
pub type ChannelId = [u8; 16];

/// A frame's channel id, number and `is_last`: all of it but its data.
type FrameHead = (ChannelId, u16, bool);

/// The most transaction data a shared frame may keep alive beyond its own bytes: the version
/// byte and one frame header, with room to spare.
pub const SHARE_SLACK: usize = 64;

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
    pub data: FrameData,
    pub is_last: bool,
}

/// A frame's data: bytes of its own, or the part of the transaction data it was parsed from
/// when it is nearly all of it (a batcher posts one frame per transaction or blob), so that
/// parsing copies nothing. A shared frame keeps at most [`SHARE_SLACK`] bytes of the buffer
/// (its capacity, not just its length) alive beyond its own: the channel bank, which counts a
/// frame as its data and 200 bytes, still bounds the memory; a hostile transaction of many
/// small frames gets them copied, not pinning its buffer through each.
#[derive(Clone, Default)]
pub struct FrameData {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl FrameData {
    /// `range` of `buf`, shared when it is nearly all of the buffer, else copied.
    fn of(buf: &Arc<Vec<u8>>, range: Range<usize>) -> FrameData {
        if buf.capacity() - range.len() <= SHARE_SLACK {
            FrameData { buf: buf.clone(), range }
        } else {
            buf[range].to_vec().into()
        }
    }

    /// Whether the bytes are part of a larger shared buffer (for tests of the sharing rule).
    pub fn is_shared(&self) -> bool {
        self.range.len() != self.buf.len()
    }
}

impl From<Vec<u8>> for FrameData {
    fn from(v: Vec<u8>) -> FrameData {
        FrameData { range: 0..v.len(), buf: Arc::new(v) }
    }
}

impl Deref for FrameData {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

impl AsRef<[u8]> for FrameData {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for FrameData {
    fn eq(&self, other: &FrameData) -> bool {
        **self == **other
    }
}

impl Eq for FrameData {}

impl fmt::Debug for FrameData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl Frame {
    /// Parses batcher transaction data: version 0 followed by one or more frames, nothing else.
    /// Each frame's data is copied out of `tx_data`.
    pub fn parse_all(tx_data: &[u8]) -> Result<Vec<Frame>, FrameError> {
        Frame::parse_frames(tx_data, None)
    }

    /// Parses batcher transaction data as [`Frame::parse_all`] does, a frame that is nearly all
    /// of `tx_data` sharing its buffer rather than copying it (derivation's path).
    pub fn parse_shared(tx_data: &Arc<Vec<u8>>) -> Result<Vec<Frame>, FrameError> {
        Frame::parse_frames(tx_data, Some(tx_data))
    }

    /// Parses `tx_data`, sharing `shared` (the same bytes) where a frame may keep it.
    fn parse_frames(tx_data: &[u8], shared: Option<&Arc<Vec<u8>>>) -> Result<Vec<Frame>, FrameError> {
        let (&version, mut rest) = tx_data.split_first().ok_or(FrameError::Empty)?;
        if version != DERIVATION_VERSION_0 {
            return Err(FrameError::UnknownVersion(version));
        }
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let offset = tx_data.len() - rest.len();
            let (head, range, used) = Frame::parse(rest, frames.len())?;
            let (channel_id, number, is_last) = head;
            let range = offset + range.start..offset + range.end;
            let data = match shared {
                Some(buf) => FrameData::of(buf, range),
                None => tx_data[range].to_vec().into(),
            };
            frames.push(Frame { channel_id, number, data, is_last });
            rest = &rest[used..];
        }
        if frames.is_empty() {
            return Err(FrameError::NoFrames);
        }
        Ok(frames)
    }

    /// Parses the frame at the start of `buf` (the `index`-th of its transaction, for errors),
    /// returning its id, number and `is_last`, where its data lies in `buf`, and the bytes it
    /// took.
    fn parse(buf: &[u8], index: usize) -> Result<(FrameHead, Range<usize>, usize), FrameError> {
        let truncated = |field| FrameError::Truncated { frame: index, field };
        let (id, rest) = split::<16>(buf).ok_or(truncated("channel_id"))?;
        let (number, rest) = split::<2>(rest).ok_or(truncated("frame_number"))?;
        let (len, rest) = split::<4>(rest).ok_or(truncated("frame_data_length"))?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge { frame: index, len: len as u32 });
        }
        if rest.len() < len {
            return Err(truncated("frame_data"));
        }
        let is_last = match rest.get(len) {
            None => return Err(truncated("is_last")),
            Some(0) => false,
            Some(1) => true,
            Some(&byte) => return Err(FrameError::InvalidIsLast { frame: index, byte }),
        };
        let start = FRAME_HEADER_LEN - 1;
        Ok(((id, u16::from_be_bytes(number), is_last), start..start + len, FRAME_HEADER_LEN + len))
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
            Frame { channel_id: [0xde; 16], number: 0, data: b"hello".to_vec().into(), is_last: false },
            Frame { channel_id: [0xde; 16], number: 1, data: vec![].into(), is_last: true },
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
        let f =
            Frame { channel_id: [1; 16], number: 7, data: vec![0xab; MAX_FRAME_LEN].into(), is_last: true };
        let data = batcher_tx_data(std::slice::from_ref(&f));
        assert_eq!(Frame::parse_all(&data).unwrap(), vec![f]);
    }

    #[test]
    fn a_frame_shares_the_transaction_data_only_when_it_is_nearly_all_of_it() {
        let frame = |n: u16, len: usize| Frame {
            channel_id: [3; 16],
            number: n,
            data: vec![n as u8; len].into(),
            is_last: false,
        };
        let parse = |frames: &[Frame]| {
            let buf = batcher_tx_data(frames);
            let shared = Frame::parse_shared(&Arc::new(buf.clone())).unwrap();
            assert_eq!(shared, Frame::parse_all(&buf).unwrap());
            assert_eq!(shared, frames);
            shared.iter().map(|f| f.data.is_shared()).collect::<Vec<_>>()
        };
        // One frame, the whole transaction (what batchers post): shared, parsing copied nothing.
        assert_eq!(parse(&[frame(0, 120_000)]), [true]);
        assert_eq!(parse(&[frame(0, 0)]), [true]);
        // A buffer whose capacity runs past the frame by more than the slack is not kept alive.
        let buf_with_spare = |spare| {
            let f = [frame(0, 1000)];
            let mut buf = Vec::with_capacity(1 + f[0].encoded_len() + spare);
            buf.extend_from_slice(&batcher_tx_data(&f));
            Frame::parse_shared(&Arc::new(buf)).unwrap()[0].data.is_shared()
        };
        assert!(buf_with_spare(SHARE_SLACK - 1 - FRAME_HEADER_LEN));
        assert!(!buf_with_spare(SHARE_SLACK - FRAME_HEADER_LEN));
        // Two halves, or many small frames: every frame gets its own bytes. Beside a large
        // frame, a small one is copied and the large one shared only if what it keeps alive
        // besides its own bytes (the small frame, both headers) is within the slack.
        assert_eq!(parse(&[frame(0, 60_000), frame(1, 60_000)]), [false, false]);
        assert_eq!(parse(&(0..500).map(|n| frame(n, 1)).collect::<Vec<_>>()), vec![false; 500]);
        assert_eq!(parse(&[frame(0, 10), frame(1, 120_000)]), [false, true]);
        assert_eq!(parse(&[frame(0, 100), frame(1, 120_000)]), [false, false]);
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
