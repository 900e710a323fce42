//! Encoding record batches v2, for tests (here, in the broker, in end-to-end tests) and for
//! tools that need to write a few records.
//!
//! ```
//! use oxka_log::test_support::BatchBuilder;
//! use oxka_log::Compression;
//! let bytes = BatchBuilder::new(0)
//!     .compression(Compression::Gzip)
//!     .record(1_000, Some(b"k"), Some(b"v"))
//!     .record(1_005, None, Some(b"w"))
//!     .build();
//! let summary = oxka_log::validate_batches(&bytes, 1 << 20).unwrap();
//! assert_eq!(summary.num_records, 2);
//! ```

use crate::batch::{
    Compression, TimestampType, HEADER_SIZE, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_TIMESTAMP,
};
use crate::record::{put_varint, put_varlong};

/// One record to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    /// Absolute timestamp (ms).
    pub timestamp: i64,
    /// Key; `None` for null.
    pub key: Option<Vec<u8>>,
    /// Value; `None` for null.
    pub value: Option<Vec<u8>>,
    /// Headers (key, value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Builds one record batch v2.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    /// baseOffset
    pub base_offset: i64,
    /// partitionLeaderEpoch
    pub partition_leader_epoch: i32,
    /// Codec for the records section.
    pub compression: Compression,
    /// For snappy: use the xerial framing (as the Java producer) instead of a raw block.
    pub xerial_snappy: bool,
    /// Timestamp type bit.
    pub timestamp_type: TimestampType,
    /// producerId
    pub producer_id: i64,
    /// producerEpoch
    pub producer_epoch: i16,
    /// baseSequence
    pub base_sequence: i32,
    /// isTransactional bit.
    pub transactional: bool,
    /// isControl bit.
    pub control: bool,
    /// The records; offset deltas are their indexes.
    pub records: Vec<TestRecord>,
}

impl BatchBuilder {
    /// An empty, uncompressed, non-idempotent CreateTime batch at `base_offset`.
    pub fn new(base_offset: i64) -> BatchBuilder {
        BatchBuilder {
            base_offset,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            compression: Compression::None,
            xerial_snappy: false,
            timestamp_type: TimestampType::CreateTime,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            records: Vec::new(),
        }
    }

    /// Sets the codec.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets partitionLeaderEpoch.
    pub fn leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Adds a record.
    pub fn record(mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        self.records.push(TestRecord {
            timestamp,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        });
        self
    }

    /// Adds a record with headers.
    pub fn record_with_headers(
        mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Self {
        self.records.push(TestRecord {
            timestamp,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
                .collect(),
        });
        self
    }

    /// Encodes the batch, CRC included.
    pub fn build(&self) -> Vec<u8> {
        let base_ts = self.records.first().map_or(NO_TIMESTAMP, |r| r.timestamp);
        let max_ts = self
            .records
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(NO_TIMESTAMP);
        let mut payload = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            let mut body = vec![0u8];
            put_varlong(&mut body, r.timestamp - base_ts);
            put_varint(&mut body, i as i32);
            put_bytes(&mut body, r.key.as_deref());
            put_bytes(&mut body, r.value.as_deref());
            put_varint(&mut body, r.headers.len() as i32);
            for (k, v) in &r.headers {
                put_bytes(&mut body, Some(k.as_bytes()));
                put_bytes(&mut body, v.as_deref());
            }
            put_varint(&mut payload, body.len() as i32);
            payload.extend_from_slice(&body);
        }
        let payload = crate::compression::compress(self.compression, &payload, self.xerial_snappy);
        let mut attributes = self.compression.id();
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= 0x08;
        }
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        let mut out = Vec::with_capacity(HEADER_SIZE + payload.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&((HEADER_SIZE - 12 + payload.len()) as i32).to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0; 4]); // crc, below
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&(self.records.len() as i32 - 1).max(0).to_be_bytes());
        out.extend_from_slice(&base_ts.to_be_bytes());
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&(self.records.len() as i32).to_be_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// A batch of `count` records at `base_offset`, timestamps `first_ts, first_ts + 1, ...`, each
/// value `value_len` bytes.
pub fn simple_batch(base_offset: i64, count: usize, first_ts: i64, value_len: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(base_offset);
    for i in 0..count {
        let value = vec![(i % 251) as u8; value_len];
        b = b.record(
            first_ts + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(&value),
        );
    }
    b.build()
}
