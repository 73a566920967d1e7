//! Minimal protobuf (proto2 wire format) for the gossipsub RPC: a schema check over the whole
//! RPC (`check` against the `RPC` schema), zero-copy field iteration over a checked message,
//! and the writers the encoders use.

use super::RouterError;
use crate::protocol::varint::{self, VarintError};

pub const VARINT: u8 = 0;
pub const LEN: u8 = 2;

#[derive(Clone, Copy)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed-width value, with its wire type (1 or 5).
    Fixed(u8),
}

pub enum Kind {
    Varint,
    Bytes,
    Msg(&'static Schema),
}

/// Known fields with their kinds (unknown fields are skipped) and the required ones.
pub struct Schema {
    pub fields: &'static [(u64, Kind)],
    pub required: &'static [u64],
}

const fn schema(fields: &'static [(u64, Kind)]) -> Schema {
    Schema { fields, required: &[] }
}

const SUB_OPTS: Schema = schema(&[(1, Kind::Varint), (2, Kind::Bytes), (3, Kind::Varint), (4, Kind::Varint)]);
const MESSAGE: Schema = Schema {
    fields: &[
        (1, Kind::Bytes),
        (2, Kind::Bytes),
        (3, Kind::Bytes),
        (4, Kind::Bytes),
        (5, Kind::Bytes),
        (6, Kind::Bytes),
    ],
    required: &[4],
};
const IHAVE: Schema = schema(&[(1, Kind::Bytes), (2, Kind::Bytes)]);
const IDS: Schema = schema(&[(1, Kind::Bytes)]);
const PEER_INFO: Schema = schema(&[(1, Kind::Bytes), (2, Kind::Bytes)]);
const PRUNE: Schema = schema(&[(1, Kind::Bytes), (2, Kind::Msg(&PEER_INFO)), (3, Kind::Varint)]);
const EXTENSIONS: Schema = schema(&[(10, Kind::Varint)]);
const CONTROL: Schema = schema(&[
    (1, Kind::Msg(&IHAVE)),
    (2, Kind::Msg(&IDS)),
    (3, Kind::Msg(&IDS)),
    (4, Kind::Msg(&PRUNE)),
    (5, Kind::Msg(&IDS)),
    (6, Kind::Msg(&EXTENSIONS)),
]);
pub const RPC: Schema =
    schema(&[(1, Kind::Msg(&SUB_OPTS)), (2, Kind::Msg(&MESSAGE)), (3, Kind::Msg(&CONTROL))]);

/// Reads a varint of at most 10 bytes; `Truncated` if `buf` ends inside it.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, RouterError> {
    varint::read_at(buf, pos).map_err(|e| match e {
        VarintError::Truncated => RouterError::Truncated,
        VarintError::Overflow => RouterError::BadVarint,
    })
}

/// The fields of a message in wire order; stops after the first error.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<(u64, Value<'a>), RouterError> {
        let key = read_varint(self.buf, &mut self.pos)?;
        let field = key >> 3;
        if field == 0 {
            return Err(RouterError::FieldZero);
        }
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(read_varint(self.buf, &mut self.pos)?),
            LEN => {
                let len = read_varint(self.buf, &mut self.pos)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| self.pos.checked_add(l))
                    .filter(|e| *e <= self.buf.len())
                    .ok_or(RouterError::Truncated)?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Value::Bytes(b)
            }
            w @ (1 | 5) => {
                let n = if w == 1 { 8 } else { 4 };
                self.pos =
                    self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(RouterError::Truncated)?;
                Value::Fixed(w)
            }
            wire => return Err(RouterError::WrongWireType { field, wire }),
        };
        Ok((field, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), RouterError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let r = self.read();
        if r.is_err() {
            self.pos = self.buf.len();
        }
        Some(r)
    }
}

/// Checks that `buf` parses as `schema`, recursively (the schemas nest three deep).
pub fn check(buf: &[u8], schema: &Schema) -> Result<(), RouterError> {
    let mut found = 0u32;
    for f in fields(buf) {
        let (n, v) = f?;
        let Some((_, kind)) = schema.fields.iter().find(|(k, _)| *k == n) else { continue };
        match (kind, v) {
            (Kind::Varint, Value::Varint(_)) | (Kind::Bytes, Value::Bytes(_)) => {}
            (Kind::Msg(inner), Value::Bytes(b)) => check(b, inner)?,
            (_, Value::Varint(_)) => return Err(RouterError::WrongWireType { field: n, wire: VARINT }),
            (_, Value::Bytes(_)) => return Err(RouterError::WrongWireType { field: n, wire: LEN }),
            (_, Value::Fixed(wire)) => return Err(RouterError::WrongWireType { field: n, wire }),
        }
        if let Some(i) = schema.required.iter().position(|r| *r == n) {
            found |= 1 << i;
        }
    }
    match schema.required.iter().enumerate().find(|(i, _)| found & (1 << i) == 0) {
        Some((_, field)) => Err(RouterError::MissingField { field: *field }),
        None => Ok(()),
    }
}

/// Every length-delimited occurrence of `field` (a checked message never fails here).
pub fn bytes(buf: &[u8], field: u64) -> impl Iterator<Item = &[u8]> {
    fields(buf).filter_map(move |f| match f {
        Ok((n, Value::Bytes(b))) if n == field => Some(b),
        _ => None,
    })
}

/// The last occurrence of a singular bytes field (proto semantics: the last one wins).
pub fn last_bytes(buf: &[u8], field: u64) -> Option<&[u8]> {
    bytes(buf, field).last()
}

pub fn last_varint(buf: &[u8], field: u64) -> Option<u64> {
    fields(buf)
        .filter_map(|f| match f {
            Ok((n, Value::Varint(v))) if n == field => Some(v),
            _ => None,
        })
        .last()
}

pub fn has(buf: &[u8], field: u64) -> bool {
    fields(buf).any(|f| matches!(f, Ok((n, _)) if n == field))
}

pub use crate::protocol::varint::len as varint_len;

/// Encoded size of a length-delimited field with a one-byte key.
pub fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

pub use crate::protocol::varint::put as put_varint;

pub fn put_key(out: &mut Vec<u8>, field: u64, wire: u8) {
    put_varint(out, field << 3 | u64::from(wire));
}

pub fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_key(out, field, VARINT);
    put_varint(out, v);
}

pub fn put_message(out: &mut Vec<u8>, field: u64, body: impl FnOnce(&mut Vec<u8>)) {
    let mut m = Vec::new();
    body(&mut m);
    put_bytes(out, field, &m);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_helpers() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!((read_varint(&b, &mut pos), pos), (Ok(v), b.len()));
            for cut in 0..b.len() {
                assert_eq!(read_varint(&b[..cut], &mut 0), Err(RouterError::Truncated));
            }
        }
        // 11 bytes, or a 10th byte carrying more than bit 63.
        assert_eq!(read_varint(&[0xff; 11], &mut 0), Err(RouterError::BadVarint));
        let mut over = [0xff; 10];
        over[9] = 0x02;
        assert_eq!(read_varint(&over, &mut 0), Err(RouterError::BadVarint));
    }
}
