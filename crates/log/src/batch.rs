//! Record batch v2: the unit of everything the log stores.
//!
//! # Format
//! The same bytes travel on the wire (Produce, Fetch) and sit in `.log` files. All integers are
//! big-endian. Byte ranges of the 61-byte header:
//!
//! | bytes   | field                | notes                                                  |
//! |---------|----------------------|--------------------------------------------------------|
//! | 0..8    | baseOffset i64       | rewritten by the leader on append; not under the CRC   |
//! | 8..12   | batchLength i32      | bytes after this field: total size = 12 + batchLength  |
//! | 12..16  | partitionLeaderEpoch | stamped by the leader; not under the CRC               |
//! | 16      | magic i8             | must be 2                                              |
//! | 17..21  | crc u32              | CRC-32C of bytes 21..end                               |
//! | 21..23  | attributes i16       | bits 0-2 compression, 3 timestampType, 4 transactional, 5 control |
//! | 23..27  | lastOffsetDelta i32  |                                                        |
//! | 27..35  | baseTimestamp i64    |                                                        |
//! | 35..43  | maxTimestamp i64     | with LogAppendTime: the append time of every record    |
//! | 43..51  | producerId i64       |                                                        |
//! | 51..53  | producerEpoch i16    |                                                        |
//! | 53..57  | baseSequence i32     |                                                        |
//! | 57..61  | recordsCount i32     |                                                        |
//! | 61..    | records              | compressed as a whole when compression != 0            |
//!
//! # Invariants and trust
//! Nothing here trusts a length: a [`RecordBatch`] is only made over a slice that holds the whole
//! batch, and [`Batches`] stops (rather than fails) at a torn tail, which is what a reader of a
//! segment wants. [`validate_batches`] is the strict check for bytes from the network.
//! These are plain functions over byte slices and are thread-safe.

use std::borrow::Cow;
use std::fmt;

use crate::record::{RecordIter, RecordTimestamps};

/// Byte position of baseOffset.
pub const BASE_OFFSET_OFFSET: usize = 0;
/// Byte position of batchLength.
pub const BATCH_LENGTH_OFFSET: usize = 8;
/// Byte position of partitionLeaderEpoch.
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// Byte position of magic.
pub const MAGIC_OFFSET: usize = 16;
/// Byte position of crc.
pub const CRC_OFFSET: usize = 17;
/// Byte position of attributes, where the CRC-covered part starts.
pub const ATTRIBUTES_OFFSET: usize = 21;
/// Byte position of lastOffsetDelta.
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
/// Byte position of baseTimestamp.
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
/// Byte position of maxTimestamp.
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Byte position of producerId.
pub const PRODUCER_ID_OFFSET: usize = 43;
/// Byte position of producerEpoch.
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
/// Byte position of baseSequence.
pub const BASE_SEQUENCE_OFFSET: usize = 53;
/// Byte position of recordsCount.
pub const RECORDS_COUNT_OFFSET: usize = 57;
/// Size of the header; the records start here.
pub const HEADER_SIZE: usize = 61;
/// baseOffset + batchLength: the bytes not counted by batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// The smallest legal batchLength (a batch with no records).
pub const MIN_BATCH_LENGTH: usize = HEADER_SIZE - LOG_OVERHEAD;
/// The only supported magic.
pub const MAGIC_V2: i8 = 2;
/// Kafka's "no timestamp" value.
pub const NO_TIMESTAMP: i64 = -1;
/// Kafka's "no partition leader epoch" value.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

const COMPRESSION_MASK: i16 = 0x07;
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
pub(crate) const CONTROL_BIT: i16 = 0x20;
/// attributes bit 6 (KIP-534): baseTimestamp holds the delete horizon set by the log cleaner.
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;

/// The compression codec of a batch (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// 0
    None,
    /// 1
    Gzip,
    /// 2 (raw snappy or xerial-framed)
    Snappy,
    /// 3 (LZ4 frame format)
    Lz4,
    /// 4
    Zstd,
}

impl Compression {
    /// The codec for an attributes value; `Err(id)` for the unknown ids 5-7.
    pub fn from_attributes(attributes: i16) -> Result<Compression, u8> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(other as u8),
        }
    }

    /// The id stored in attributes bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// Which clock a batch's timestamps come from (attributes bit 3; topic config
/// `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer's timestamps are kept.
    #[default]
    CreateTime,
    /// The broker overwrites maxTimestamp with its clock at append; every record's timestamp is
    /// then the batch's maxTimestamp.
    LogAppendTime,
}

/// Why a buffer of record batches was rejected.
///
/// Broker mapping: `CorruptMessage` → CORRUPT_MESSAGE, `UnsupportedMagic` → UNSUPPORTED_VERSION
/// (INVALID_RECORD for newer produce versions), `MessageTooLarge` → MESSAGE_TOO_LARGE,
/// `InvalidRecord` → INVALID_RECORD, `Decompression` → CORRUPT_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// CRC mismatch, a length inconsistent with the buffer, a truncated batch, or header fields
    /// that contradict each other.
    #[error("corrupt record batch at byte {position}: {reason}")]
    CorruptMessage {
        /// Byte position of the batch in the buffer.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// The batch's magic is not 2.
    #[error("unsupported record batch magic {magic} at byte {position}")]
    UnsupportedMagic {
        /// Byte position of the batch in the buffer.
        position: usize,
        /// The magic found.
        magic: i8,
    },
    /// A batch is larger than max.message.bytes.
    #[error("record batch of {size} bytes at byte {position} is larger than max.message.bytes {max_message_bytes}")]
    MessageTooLarge {
        /// Byte position of the batch in the buffer.
        position: usize,
        /// Total size of the batch.
        size: usize,
        /// The limit in force.
        max_message_bytes: u32,
    },
    /// The buffer holds no batch at all.
    #[error("invalid record: {reason}")]
    InvalidRecord {
        /// What is wrong.
        reason: String,
    },
    /// The records of a compressed batch cannot be decompressed, or would decompress to more than
    /// the allowed bound.
    #[error("cannot decompress {compression:?} records: {reason}")]
    Decompression {
        /// The codec.
        compression: Compression,
        /// What went wrong.
        reason: String,
    },
}

impl BatchError {
    pub(crate) fn corrupt(position: usize, reason: impl Into<String>) -> BatchError {
        BatchError::CorruptMessage {
            position,
            reason: reason.into(),
        }
    }
}

#[inline]
pub(crate) fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

#[inline]
pub(crate) fn be_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

#[inline]
pub(crate) fn be_u32(buf: &[u8], at: usize) -> u32 {
    be_i32(buf, at) as u32
}

#[inline]
pub(crate) fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

/// The fixed 61-byte header of a batch, decoded. Used where only the header has been read from a
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// baseOffset
    pub base_offset: i64,
    /// batchLength (bytes after this field)
    pub batch_length: i32,
    /// partitionLeaderEpoch
    pub partition_leader_epoch: i32,
    /// magic
    pub magic: i8,
    /// crc as stored
    pub crc: u32,
    /// attributes
    pub attributes: i16,
    /// lastOffsetDelta
    pub last_offset_delta: i32,
    /// baseTimestamp
    pub base_timestamp: i64,
    /// maxTimestamp
    pub max_timestamp: i64,
    /// producerId
    pub producer_id: i64,
    /// producerEpoch
    pub producer_epoch: i16,
    /// baseSequence
    pub base_sequence: i32,
    /// recordsCount
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the first [`HEADER_SIZE`] bytes of `buf`; `None` if `buf` is shorter. No field is
    /// checked.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < HEADER_SIZE {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_OFFSET),
            batch_length: be_i32(buf, BATCH_LENGTH_OFFSET),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: be_u32(buf, CRC_OFFSET),
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_OFFSET),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, PRODUCER_ID_OFFSET),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(buf, BASE_SEQUENCE_OFFSET),
            records_count: be_i32(buf, RECORDS_COUNT_OFFSET),
        })
    }

    /// Total size of the batch (12 + batchLength); `None` when batchLength is below the minimum.
    pub fn size_in_bytes(&self) -> Option<usize> {
        let len = usize::try_from(self.batch_length).ok()?;
        (len >= MIN_BATCH_LENGTH).then_some(LOG_OVERHEAD + len)
    }

    /// baseOffset + lastOffsetDelta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The timestamp type from the attributes.
    pub fn timestamp_type(&self) -> TimestampType {
        timestamp_type_of(self.attributes)
    }
}

fn timestamp_type_of(attributes: i16) -> TimestampType {
    if attributes & TIMESTAMP_TYPE_BIT != 0 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    }
}

/// A zero-copy view of one whole record batch.
///
/// Invariant: the slice is exactly `12 + batchLength` bytes and at least [`HEADER_SIZE`]. Magic and
/// CRC are *not* implied; see [`RecordBatch::is_valid`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecordBatch<'a> {
    buf: &'a [u8],
}

impl fmt::Debug for RecordBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("size", &self.buf.len())
            .field("magic", &self.magic())
            .finish()
    }
}

impl<'a> RecordBatch<'a> {
    /// Views the batch at the start of `buf`. Fails when `buf` does not hold a complete batch or
    /// batchLength is below the minimum. Bytes after the batch are ignored.
    pub fn from_prefix(buf: &'a [u8]) -> Result<RecordBatch<'a>, BatchError> {
        match frame_size(buf) {
            Frame::Complete(size) => Ok(RecordBatch { buf: &buf[..size] }),
            Frame::Incomplete => Err(BatchError::corrupt(0, "truncated record batch")),
            Frame::BadLength(len) => Err(BatchError::corrupt(
                0,
                format!("batchLength {len} is below the minimum {MIN_BATCH_LENGTH}"),
            )),
        }
    }

    /// The whole batch.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The decoded header.
    pub fn header(&self) -> BatchHeader {
        BatchHeader::parse(self.buf).expect("a RecordBatch holds at least a header")
    }

    /// Total size in bytes (12 + batchLength).
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// baseOffset
    pub fn base_offset(&self) -> i64 {
        be_i64(self.buf, BASE_OFFSET_OFFSET)
    }

    /// batchLength
    pub fn batch_length(&self) -> i32 {
        be_i32(self.buf, BATCH_LENGTH_OFFSET)
    }

    /// partitionLeaderEpoch
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.buf, PARTITION_LEADER_EPOCH_OFFSET)
    }

    /// magic
    pub fn magic(&self) -> i8 {
        self.buf[MAGIC_OFFSET] as i8
    }

    /// The CRC stored in the header.
    pub fn crc(&self) -> u32 {
        be_u32(self.buf, CRC_OFFSET)
    }

    /// CRC-32C of bytes 21..end, computed now.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.buf[ATTRIBUTES_OFFSET..])
    }

    /// Magic is 2 and the stored CRC matches.
    pub fn is_valid(&self) -> bool {
        self.magic() == MAGIC_V2 && self.crc() == self.compute_crc()
    }

    /// attributes
    pub fn attributes(&self) -> i16 {
        be_i16(self.buf, ATTRIBUTES_OFFSET)
    }

    /// The codec; `Err(id)` for an unknown id.
    pub fn compression(&self) -> Result<Compression, u8> {
        Compression::from_attributes(self.attributes())
    }

    /// attributes bit 3.
    pub fn timestamp_type(&self) -> TimestampType {
        timestamp_type_of(self.attributes())
    }

    /// attributes bit 4.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }

    /// attributes bit 5.
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }

    /// With attributes bit 6 set (KIP-534), the time after which the log cleaner may remove this
    /// batch's tombstones; it is stored in baseTimestamp.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes() & DELETE_HORIZON_BIT != 0).then(|| self.base_timestamp())
    }

    /// Whether the batch has a producer id (idempotent or transactional).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id() >= 0
    }

    /// lastOffsetDelta
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.buf, LAST_OFFSET_DELTA_OFFSET)
    }

    /// baseOffset + lastOffsetDelta.
    pub fn last_offset(&self) -> i64 {
        self.header().last_offset()
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.header().next_offset()
    }

    /// baseTimestamp
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.buf, BASE_TIMESTAMP_OFFSET)
    }

    /// maxTimestamp
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.buf, MAX_TIMESTAMP_OFFSET)
    }

    /// producerId
    pub fn producer_id(&self) -> i64 {
        be_i64(self.buf, PRODUCER_ID_OFFSET)
    }

    /// producerEpoch
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.buf, PRODUCER_EPOCH_OFFSET)
    }

    /// baseSequence
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.buf, BASE_SEQUENCE_OFFSET)
    }

    /// recordsCount
    pub fn records_count(&self) -> i32 {
        be_i32(self.buf, RECORDS_COUNT_OFFSET)
    }

    /// The records section as stored (compressed when compression != 0).
    pub fn raw_records(&self) -> &'a [u8] {
        &self.buf[HEADER_SIZE..]
    }

    /// The records section, decompressed when needed (bounded; see [`crate::record`]).
    pub fn records_payload(&self) -> Result<Cow<'a, [u8]>, BatchError> {
        let compression = self
            .compression()
            .map_err(|id| BatchError::corrupt(0, format!("unknown compression codec id {id}")))?;
        match compression {
            Compression::None => Ok(Cow::Borrowed(self.raw_records())),
            c => crate::compression::decompress(c, self.raw_records()).map(Cow::Owned),
        }
    }

    /// Iterates the records of a payload obtained from [`RecordBatch::records_payload`].
    pub fn records<'p>(&self, payload: &'p [u8]) -> RecordIter<'p> {
        RecordIter::new(payload, self.records_count())
    }

    /// (offset, timestamp) of every record, in order. With LogAppendTime every timestamp is the
    /// batch's maxTimestamp, as in Kafka.
    pub fn record_timestamps(&self) -> Result<Vec<(i64, i64)>, BatchError> {
        RecordTimestamps::of(self)
    }
}

/// The result of looking at the first bytes of a buffer.
enum Frame {
    Complete(usize),
    Incomplete,
    BadLength(i32),
}

fn frame_size(buf: &[u8]) -> Frame {
    if buf.len() < LOG_OVERHEAD {
        return Frame::Incomplete;
    }
    let len = be_i32(buf, BATCH_LENGTH_OFFSET);
    let Some(size) = usize::try_from(len)
        .ok()
        .filter(|l| *l >= MIN_BATCH_LENGTH)
        .map(|l| l + LOG_OVERHEAD)
    else {
        return Frame::BadLength(len);
    };
    if size > buf.len() {
        Frame::Incomplete
    } else {
        Frame::Complete(size)
    }
}

/// Iterates consecutive batches of a buffer. Stops at the first incomplete batch or impossible
/// batchLength, so a torn tail ends the iteration instead of failing it; [`Batches::position`]
/// then tells where the whole batches end. Magic and CRC are not checked.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Iterates the batches of `buf`; see [`Batches`].
pub fn batches(buf: &[u8]) -> Batches<'_> {
    Batches { buf, pos: 0 }
}

impl<'a> Batches<'a> {
    /// Bytes consumed so far: the end of the last batch returned.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = RecordBatch<'a>;

    fn next(&mut self) -> Option<RecordBatch<'a>> {
        let rest = &self.buf[self.pos..];
        match frame_size(rest) {
            Frame::Complete(size) => {
                self.pos += size;
                Some(RecordBatch { buf: &rest[..size] })
            }
            Frame::Incomplete | Frame::BadLength(_) => None,
        }
    }
}

/// What [`validate_batches`] learned about a valid buffer, with offsets as found in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchesSummary {
    /// Number of batches.
    pub num_batches: usize,
    /// Sum of recordsCount.
    pub num_records: u64,
    /// baseOffset of the first batch.
    pub first_offset: i64,
    /// Last offset of the last batch.
    pub last_offset: i64,
    /// Sum of lastOffsetDelta + 1: how many offsets the buffer spans when offsets are assigned.
    pub offset_count: i64,
    /// Largest maxTimestamp ([`NO_TIMESTAMP`] if none is set).
    pub max_timestamp: i64,
    /// Last offset of the first batch holding `max_timestamp` (Kafka's "shallow" offset).
    pub offset_of_max_timestamp: i64,
    /// Total bytes (equals the buffer length).
    pub size_bytes: usize,
}

/// How strictly [`validate`] checks the offset fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// From a producer: recordsCount must equal lastOffsetDelta + 1 and be at least 1. Offsets are
    /// about to be assigned, so their values do not matter.
    Client,
    /// From a leader: batches may have been compacted (recordsCount <= lastOffsetDelta + 1, empty
    /// batches allowed), and offsets must increase from batch to batch.
    Replication,
}

/// Checks a produce request's records: every batch complete, magic 2, CRC correct, no larger than
/// `max_message_bytes`, recordsCount >= 1 and equal to lastOffsetDelta + 1. Never allocates.
pub fn validate_batches(buf: &[u8], max_message_bytes: u32) -> Result<BatchesSummary, BatchError> {
    validate(buf, Some(max_message_bytes), Origin::Client)
}

/// Checks replicated records (already carrying offsets): as [`validate_batches`] without the size
/// limit, allowing compacted batches, and requiring increasing offsets.
pub fn validate_replicated_batches(buf: &[u8]) -> Result<BatchesSummary, BatchError> {
    validate(buf, None, Origin::Replication)
}

pub(crate) fn validate(
    buf: &[u8],
    max_message_bytes: Option<u32>,
    origin: Origin,
) -> Result<BatchesSummary, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::InvalidRecord {
            reason: "no record batches".into(),
        });
    }
    let mut pos = 0usize;
    let mut summary = BatchesSummary {
        num_batches: 0,
        num_records: 0,
        first_offset: 0,
        last_offset: 0,
        offset_count: 0,
        max_timestamp: NO_TIMESTAMP,
        offset_of_max_timestamp: -1,
        size_bytes: buf.len(),
    };
    let mut next_expected: Option<i64> = None;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < LOG_OVERHEAD {
            return Err(BatchError::corrupt(
                pos,
                format!("{} trailing bytes are not a whole batch", rest.len()),
            ));
        }
        let len = be_i32(rest, BATCH_LENGTH_OFFSET);
        if len < MIN_BATCH_LENGTH as i32 {
            return Err(BatchError::corrupt(
                pos,
                format!("batchLength {len} is below the minimum {MIN_BATCH_LENGTH}"),
            ));
        }
        let size = LOG_OVERHEAD + len as usize;
        if rest.len() <= MAGIC_OFFSET {
            return Err(BatchError::corrupt(pos, "truncated record batch header"));
        }
        let magic = rest[MAGIC_OFFSET] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic {
                position: pos,
                magic,
            });
        }
        if let Some(max) = max_message_bytes {
            if size > max as usize {
                return Err(BatchError::MessageTooLarge {
                    position: pos,
                    size,
                    max_message_bytes: max,
                });
            }
        }
        if size > rest.len() {
            return Err(BatchError::corrupt(
                pos,
                format!(
                    "truncated record batch: batchLength says {size} bytes, {} present",
                    rest.len()
                ),
            ));
        }
        let batch = RecordBatch { buf: &rest[..size] };
        let (stored, computed) = (batch.crc(), batch.compute_crc());
        if stored != computed {
            return Err(BatchError::corrupt(
                pos,
                format!("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"),
            ));
        }
        if let Err(id) = batch.compression() {
            return Err(BatchError::corrupt(
                pos,
                format!("unknown compression codec id {id}"),
            ));
        }
        let count = batch.records_count();
        let delta = batch.last_offset_delta();
        if count < 0 {
            return Err(BatchError::corrupt(
                pos,
                format!("recordsCount {count} < 0"),
            ));
        }
        if delta < 0 {
            return Err(BatchError::corrupt(
                pos,
                format!("lastOffsetDelta {delta} < 0"),
            ));
        }
        match origin {
            Origin::Client => {
                if i64::from(count) != i64::from(delta) + 1 {
                    return Err(BatchError::corrupt(
                        pos,
                        format!("recordsCount {count} does not match lastOffsetDelta {delta}"),
                    ));
                }
            }
            Origin::Replication => {
                if i64::from(count) > i64::from(delta) + 1 {
                    return Err(BatchError::corrupt(
                        pos,
                        format!("recordsCount {count} exceeds lastOffsetDelta {delta} + 1"),
                    ));
                }
                let base = batch.base_offset();
                if base < 0 || base.checked_add(i64::from(delta)).is_none() {
                    return Err(BatchError::corrupt(
                        pos,
                        format!("invalid baseOffset {base}"),
                    ));
                }
                if let Some(expected) = next_expected {
                    if base < expected {
                        return Err(BatchError::corrupt(
                            pos,
                            format!(
                                "baseOffset {base} is below the previous batch's end {expected}"
                            ),
                        ));
                    }
                }
                next_expected = Some(batch.next_offset());
            }
        }
        if summary.num_batches == 0 {
            summary.first_offset = batch.base_offset();
        }
        summary.num_batches += 1;
        summary.num_records += count as u64;
        summary.offset_count += i64::from(delta) + 1;
        summary.last_offset = batch.last_offset();
        if summary.num_batches == 1 || batch.max_timestamp() > summary.max_timestamp {
            summary.max_timestamp = batch.max_timestamp();
            summary.offset_of_max_timestamp = batch.last_offset();
        }
        pos += size;
    }
    Ok(summary)
}

/// Mutable view of one batch, for the leader's in-place rewrite at append. Made only over a slice
/// that [`validate_batches`] accepted.
#[derive(Debug)]
pub struct RecordBatchMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> RecordBatchMut<'a> {
    /// Views the batch at the start of `buf` (same checks as [`RecordBatch::from_prefix`]).
    pub fn from_prefix(buf: &'a mut [u8]) -> Result<RecordBatchMut<'a>, BatchError> {
        let size = RecordBatch::from_prefix(buf)?.size_in_bytes();
        Ok(RecordBatchMut {
            buf: &mut buf[..size],
        })
    }

    /// Read-only view.
    pub fn as_batch(&self) -> RecordBatch<'_> {
        RecordBatch { buf: self.buf }
    }

    /// Rewrites baseOffset (not covered by the CRC).
    pub fn set_base_offset(&mut self, base_offset: i64) {
        self.buf[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8]
            .copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Rewrites partitionLeaderEpoch (not covered by the CRC).
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.buf[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
            .copy_from_slice(&epoch.to_be_bytes());
    }

    /// Sets the timestamp type bit and maxTimestamp, and recomputes the CRC when anything changed.
    /// Returns whether the batch changed.
    pub fn set_max_timestamp(&mut self, timestamp_type: TimestampType, max_timestamp: i64) -> bool {
        let old_attributes = be_i16(self.buf, ATTRIBUTES_OFFSET);
        let attributes = match timestamp_type {
            TimestampType::CreateTime => old_attributes & !TIMESTAMP_TYPE_BIT,
            TimestampType::LogAppendTime => old_attributes | TIMESTAMP_TYPE_BIT,
        };
        let old_max = be_i64(self.buf, MAX_TIMESTAMP_OFFSET);
        if attributes == old_attributes && old_max == max_timestamp {
            return false;
        }
        self.buf[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
            .copy_from_slice(&attributes.to_be_bytes());
        self.buf[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&max_timestamp.to_be_bytes());
        let crc = crc32c::crc32c(&self.buf[ATTRIBUTES_OFFSET..]);
        self.buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        true
    }
}
