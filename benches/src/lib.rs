//! Helpers shared by Oxka's criterion benchmarks: a small, self-contained encoder for Kafka
//! record batches v2 (uncompressed, no headers, producer id -1), so the benchmarks feed the log
//! and the codec the same bytes a librdkafka producer would send.
//!
//! Layout (all integers big-endian, varints zig-zag):
//! `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 (2) | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 | producerId i64 |
//! producerEpoch i16 | baseSequence i32 | recordsCount i32 | records...`
//! where the CRC-32C covers `attributes` to the end of the batch.

use bytes::{BufMut, BytesMut};

/// Size of the fixed record batch v2 header.
pub const BATCH_HEADER_LEN: usize = 61;

/// Offset of the CRC field in a batch.
const CRC_POS: usize = 17;
/// Offset of the attributes field (start of the CRC-covered bytes).
const ATTRIBUTES_POS: usize = 21;

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

/// Encodes one uncompressed record batch v2 holding `count` records, each with a null key and a
/// `value_len`-byte value, timestamps starting at `first_ts` (one millisecond apart).
pub fn record_batch(base_offset: i64, count: usize, value_len: usize, first_ts: i64) -> Vec<u8> {
    assert!(count >= 1, "a batch holds at least one record");
    let value = vec![b'x'; value_len];
    let mut records = BytesMut::with_capacity(count * (value_len + 16));
    let mut body = BytesMut::with_capacity(value_len + 16);
    for i in 0..count {
        body.clear();
        body.put_i8(0); // attributes
        put_varint(&mut body, i as i64); // timestampDelta
        put_varint(&mut body, i as i64); // offsetDelta
        put_varint(&mut body, -1); // key: null
        put_varint(&mut body, value_len as i64);
        body.put_slice(&value);
        put_varint(&mut body, 0); // no headers
        put_varint(&mut records, body.len() as i64);
        records.put_slice(&body);
    }
    let total = BATCH_HEADER_LEN + records.len();
    let mut buf = BytesMut::with_capacity(total);
    buf.put_i64(base_offset);
    buf.put_i32((total - 12) as i32); // batchLength: everything after this field
    buf.put_i32(-1); // partitionLeaderEpoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // crc, patched below
    buf.put_i16(0); // attributes: no compression, CreateTime
    buf.put_i32(count as i32 - 1); // lastOffsetDelta
    buf.put_i64(first_ts);
    buf.put_i64(first_ts + count as i64 - 1);
    buf.put_i64(-1); // producerId
    buf.put_i16(-1); // producerEpoch
    buf.put_i32(-1); // baseSequence
    buf.put_i32(count as i32);
    buf.put_slice(&records);
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_POS..]);
    buf[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    buf.to_vec()
}

/// Records of `value_len` bytes that fit in a batch of about `batch_bytes` bytes.
pub fn records_per_batch(batch_bytes: usize, value_len: usize) -> usize {
    // Per record overhead, rounded up, with a null key: length(1-3) + attrs(1) +
    // tsDelta(1-3) + offDelta(1-3) + key(1) + valueLen(1-3) + headers(1); so a batch stays
    // at or below `batch_bytes` (librdkafka's batch.size works the same way).
    let per_record = value_len + 16;
    ((batch_bytes - BATCH_HEADER_LEN) / per_record).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_shape() {
        let b = record_batch(0, 3, 100, 1_700_000_000_000);
        let len = i32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        assert_eq!(len + 12, b.len());
        assert_eq!(b[16], 2);
        let crc = u32::from_be_bytes(b[CRC_POS..CRC_POS + 4].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&b[ATTRIBUTES_POS..]));
        assert_eq!(i32::from_be_bytes(b[57..61].try_into().unwrap()), 3);
    }
}
