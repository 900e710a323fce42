//! Records inside a v2 batch: a minimal parser, used to answer timestamp queries at record
//! granularity.
//!
//! # Format (all varints zigzag-encoded, as in protobuf)
//! ```text
//! length varint            bytes after this field
//! attributes i8            unused
//! timestampDelta varlong   relative to the batch's baseTimestamp
//! offsetDelta varint       relative to the batch's baseOffset
//! keyLength varint, key    -1 = null
//! valueLength varint, value
//! headersCount varint, then per header: keyLength varint, key, valueLength varint, value
//! ```
//! Every length is checked against the bytes that remain before it is used, and nothing is sized
//! from a count read from the data.

use crate::batch::{BatchError, RecordBatch, TimestampType};

/// One record, borrowing from the (decompressed) records payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// attributes (unused by Kafka today).
    pub attributes: i8,
    /// timestampDelta
    pub timestamp_delta: i64,
    /// offsetDelta
    pub offset_delta: i32,
    /// key; `None` when null.
    pub key: Option<&'a [u8]>,
    /// value; `None` when null.
    pub value: Option<&'a [u8]>,
    /// headers in order.
    pub headers: Vec<RecordHeader<'a>>,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// Header key (UTF-8 by convention; not checked).
    pub key: &'a [u8],
    /// Header value; `None` when null.
    pub value: Option<&'a [u8]>,
}

/// Iterates the records of a payload. After the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: i32,
}

impl<'a> RecordIter<'a> {
    /// Iterates at most `records_count` records of `payload`.
    pub fn new(payload: &'a [u8], records_count: i32) -> RecordIter<'a> {
        RecordIter {
            buf: payload,
            pos: 0,
            remaining: records_count.max(0),
        }
    }

    fn parse_next(&mut self) -> Result<Record<'a>, BatchError> {
        let mut cur = Cursor {
            buf: self.buf,
            pos: self.pos,
        };
        let len = cur.varint()?;
        let len = usize::try_from(len).map_err(|_| cur.err(format!("record length {len} < 0")))?;
        if len > cur.remaining() {
            return Err(cur.err(format!(
                "record length {len} exceeds the {} bytes left",
                cur.remaining()
            )));
        }
        let end = cur.pos + len;
        let mut body = Cursor {
            buf: &self.buf[..end],
            pos: cur.pos,
        };
        let attributes = body.byte()? as i8;
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let key = body.nullable_bytes()?;
        let value = body.nullable_bytes()?;
        let headers_count = body.varint()?;
        if headers_count < 0 {
            return Err(body.err(format!("headers count {headers_count} < 0")));
        }
        let mut headers = Vec::new();
        for _ in 0..headers_count {
            let key = body
                .nullable_bytes()?
                .ok_or_else(|| body.err("null header key"))?;
            let value = body.nullable_bytes()?;
            headers.push(RecordHeader { key, value });
        }
        if body.pos != end {
            return Err(body.err(format!("{} unread bytes in record", end - body.pos)));
        }
        self.pos = end;
        Ok(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match self.parse_next() {
            Ok(r) => {
                self.remaining -= 1;
                Some(Ok(r))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}

/// Computes the per-record (offset, timestamp) pairs of a batch.
pub(crate) struct RecordTimestamps;

impl RecordTimestamps {
    pub(crate) fn of(batch: &RecordBatch<'_>) -> Result<Vec<(i64, i64)>, BatchError> {
        let payload = batch.records_payload()?;
        let base_offset = batch.base_offset();
        let base_ts = batch.base_timestamp();
        let log_append = batch.timestamp_type() == TimestampType::LogAppendTime;
        let mut out = Vec::new();
        for record in batch.records(&payload) {
            let record = record?;
            let ts = if log_append {
                batch.max_timestamp()
            } else {
                base_ts.wrapping_add(record.timestamp_delta)
            };
            out.push((base_offset + i64::from(record.offset_delta), ts));
        }
        if out.len() != batch.records_count().max(0) as usize {
            return Err(BatchError::corrupt(
                0,
                format!(
                    "batch claims {} records, {} found",
                    batch.records_count(),
                    out.len()
                ),
            ));
        }
        Ok(out)
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: impl Into<String>) -> BatchError {
        BatchError::corrupt(self.pos, format!("malformed record: {}", reason.into()))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, BatchError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("unexpected end of record"))?;
        self.pos += 1;
        Ok(b)
    }

    fn unsigned_varint(&mut self, max_bytes: u32) -> Result<u64, BatchError> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err("varint too long"))
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let raw = self.unsigned_varint(5)?;
        let raw = u32::try_from(raw).map_err(|_| self.err("varint overflows 32 bits"))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let raw = self.unsigned_varint(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        if len > self.remaining() {
            return Err(self.err(format!(
                "field length {len} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(Some(out))
    }
}

/// Appends a zigzag varint (used by the test-support encoder).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends a zigzag varlong.
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0i32, 1, -1, 63, -64, 64, 300, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.varint().unwrap(), v);
            assert_eq!(c.pos, out.len());
        }
        for v in [0i64, -1, 1 << 40, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.varlong().unwrap(), v);
        }
    }

    #[test]
    fn record_length_beyond_payload_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        put_varint(&mut out, 1_000_000);
        out.extend_from_slice(&[0; 10]);
        let mut it = RecordIter::new(&out, 1);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn huge_header_count_does_not_allocate() {
        let mut body = vec![0u8]; // attributes
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, i32::MAX); // headers count
        let mut rec = Vec::new();
        put_varint(&mut rec, body.len() as i32);
        rec.extend_from_slice(&body);
        let mut it = RecordIter::new(&rec, 1);
        assert!(it.next().unwrap().is_err());
    }
}
