//! # oxka-log: one partition's log on disk, in Apache Kafka's format
//!
//! A partition directory holds segments (`<base offset:020>.log` with its `.index` and
//! `.timeindex`), the `leader-epoch-checkpoint` and a `log-start-offset` file. The `.log` files
//! hold record batches v2 exactly as they travel on the wire ([`batch`]), so produce and fetch
//! move bytes without re-encoding them. Everything is synchronous `std::fs`; the broker keeps each
//! [`Log`] behind a mutex and calls it off the async runtime threads.
//!
//! ## Glossary (Kafka's words)
//! - **offset**: position of a record in the partition, assigned by the leader, increasing by one
//!   per record.
//! - **record batch**: the unit of append, read, compression and CRC; covers offsets
//!   `baseOffset..=baseOffset + lastOffsetDelta`.
//! - **segment**: one `.log` file plus indexes, covering a contiguous range of offsets.
//! - **base offset**: the first offset a segment may hold; its file name.
//! - **relative offset**: offset − base offset, stored in 4 bytes in the indexes.
//! - **active segment**: the newest segment, the only one appended to.
//! - **roll**: closing the active segment and starting a new one at the log end offset (when it is
//!   full by `segment.bytes`, its index is full, or it is older than `segment.ms`).
//! - **log end offset (LEO)**: the offset the next appended record gets.
//! - **log start offset**: the first offset still readable; advanced by retention and
//!   DeleteRecords.
//! - **high watermark (HW)**: the offset below which every in-sync replica has the data; owned by
//!   the broker and passed in as `max_offset` to [`Log::read`].
//! - **leader epoch**: the generation of the partition's leadership; the leader-epoch cache maps
//!   each epoch to the first offset written in it (OffsetForLeaderEpoch, follower truncation).
//! - **truncate_to**: removing the tail of the log (a follower diverging from the new leader).
//! - **recovery**: at open, rescanning the active segment, cutting a torn or corrupt tail, and
//!   rebuilding indexes.
//! - **retention**: deleting the oldest segments by age (`retention.ms`) or size
//!   (`retention.bytes`).

pub mod batch;
mod checkpoint;
mod compression;
mod epoch;
mod error;
mod index;
mod log;
mod mmap_file;
pub mod record;
mod segment;
pub mod test_support;

pub use batch::{
    validate_batches, validate_replicated_batches, BatchError, BatchesSummary, Compression,
    RecordBatch, TimestampType,
};
pub use epoch::EpochEntry;
pub use error::LogError;
pub use log::{AppendInfo, Log, LogConfig, ReadInfo, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};

/// Name of the leader-epoch checkpoint file in a partition directory.
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = epoch::LEADER_EPOCH_CHECKPOINT;

#[cfg(test)]
mod send_check {
    fn assert_send<T: Send>() {}

    #[test]
    fn log_is_send() {
        assert_send::<crate::Log>();
    }
}
