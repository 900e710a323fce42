//! # oxka-log: one partition's log on disk, in Apache Kafka's format
//!
//! A partition directory holds segments (`<base offset:020>.log` with its `.index` and
//! `.timeindex`), the `leader-epoch-checkpoint`, and `log-start-offset` and `recovery-point` files
//! (per-partition stand-ins for Kafka's per-log-dir checkpoints; see [`Log`]'s module docs). The `.log` files
//! hold record batches v2 exactly as they travel on the wire ([`batch`]), so produce and fetch
//! move bytes without re-encoding them. Everything is synchronous `std::fs`; the broker keeps each
//! [`Log`] behind a mutex and calls it off the async runtime threads. `Log` is `Send` and `Sync`;
//! its reading methods take `&self`.
//!
//! Modules: [`batch`] (the batch header view and validation), [`record`] (records inside a
//! batch), `compression`, `index` and `mmap_file` (the sparse memory-mapped indexes), `segment`,
//! `epoch` (leader-epoch cache), `txn` (`.txnindex` and producer `.snapshot` files), `log` ([`Log`] itself), [`cleaner`] (log compaction),
//! [`test_support`] (a batch encoder).
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
//! - **recovery**: at open, rescanning the active segment (and any segment not known to be
//!   flushed), cutting the log at the first torn or corrupt batch, and rebuilding indexes.
//! - **recovery point**: the offset below which everything is known to be fsynced.
//! - **retention**: deleting the oldest segments by age (`retention.ms`) or size
//!   (`retention.bytes`).
//! - **compaction** (log cleaning): rewriting inactive segments of a `cleanup.policy=compact`
//!   topic so that only the latest record per key remains; offsets never change.
//! - **tombstone**: a record with a key and a null value; it deletes the key when compacted, and
//!   is itself removed `delete.retention.ms` after the cleaner first kept it (delete horizon).
//! - **dirty / clean**: the part of the log the cleaner has not yet / has already deduplicated;
//!   the boundary is the cleaner checkpoint.

pub mod batch;
mod checkpoint;
pub mod cleaner;
mod compression;
mod epoch;
mod error;
mod index;
mod log;
mod mmap_file;
pub mod record;
mod segment;
pub mod test_support;
mod txn;

pub use batch::{
    validate_batches, validate_replicated_batches, BatchError, BatchesSummary, Compression,
    RecordBatch, TimestampType,
};
pub use cleaner::{
    CleanedLog, CleanerConfig, CompactionJob, CompactionStats, CLEANER_OFFSET_CHECKPOINT_FILE,
};
pub use epoch::EpochEntry;
pub use error::LogError;
pub use log::{
    AppendInfo, Log, LogConfig, ReadInfo, RolledUnflushed, LOG_START_OFFSET_FILE,
    RECOVERY_POINT_FILE,
};
pub use txn::{AbortedTxnEntry, ProducerSnapshotEntry};

/// Name of the leader-epoch checkpoint file in a partition directory.
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = epoch::LEADER_EPOCH_CHECKPOINT;

#[cfg(test)]
mod send_check {
    fn assert_send<T: Send>() {}

    fn assert_sync<T: Sync>() {}

    #[test]
    fn log_is_send_and_sync() {
        assert_send::<crate::Log>();
        assert_sync::<crate::Log>();
    }
}
