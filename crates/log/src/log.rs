//! [`Log`]: one partition's log, a sequence of segments in a directory.
//!
//! # Files in the partition directory
//! - `<base offset:020>.log`, `.index`, `.timeindex`: one segment each (see [`crate::segment`] and
//!   [`crate::index`]).
//! - `leader-epoch-checkpoint`: the leader-epoch cache (Kafka's format).
//! - `log-start-offset`: the log start offset, in the same text format (`0`, `1`, `<offset>`).
//! - `cleaner-offset-checkpoint`: the log cleaner's first dirty offset (compacted topics; see
//!   [`crate::cleaner`]).
//! - `recovery-point`: the offset below which everything was fsynced by [`Log::flush`]; at open,
//!   the active segment and every segment holding offsets at or above it are rescanned (CRC
//!   checked), and the log is cut at the first bad batch (later segments deleted), as Kafka does.
//!
//! *Deviation from Kafka*, which keeps `log-start-offset-checkpoint` and
//! `recovery-point-offset-checkpoint` once per log dir listing every partition: a file per
//! partition keeps partitions independent and needs no shared writer.
//!
//! # Invariants
//! - There is always at least one segment; the last one is the active segment, the only one
//!   written to. Segments are keyed by base offset and their offsets do not overlap.
//! - `log_start_offset <= log_end_offset`, and `log_start_offset >=` the first segment's base
//!   offset. The log end offset is the active segment's next offset.
//! - Offsets of appended batches increase without gaps for leader appends (followers may see gaps
//!   left by compaction on the leader).
//! - The leader-epoch cache has no entry starting at or after the log end offset.
//!
//! Not thread-safe: the broker keeps each `Log` behind a mutex. `read` and the timestamp queries
//! take `&self`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{
    self, validate, BatchesSummary, Origin, RecordBatchMut, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_TIMESTAMP,
};
use crate::checkpoint;
use crate::cleaner::{self, CLEANER_OFFSET_CHECKPOINT_FILE};
use crate::epoch::{EpochEntry, LeaderEpochCache};
use crate::error::{IoContext, LogError};
use crate::segment::{
    segment_file, IndexConfig, LogSegment, OpenMode, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use crate::txn::{self, AbortedTxnEntry, ProducerSnapshotEntry};

/// File holding this partition's log start offset (see the module docs for the deviation).
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";

/// File holding this partition's recovery point (see the module docs for the deviation).
pub const RECOVERY_POINT_FILE: &str = "recovery-point";

/// Positions in the `.index` are 32-bit and Kafka caps segment.bytes to an i32.
const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// Per-topic log settings. `Default` is Kafka's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// segment.bytes: roll when the active segment would grow beyond this. 1073741824.
    pub segment_bytes: u64,
    /// segment.ms: roll when the active segment is older than this. 604800000 (7 days).
    pub segment_ms: i64,
    /// segment.index.bytes: preallocated size of each index. 10485760.
    pub segment_index_bytes: u32,
    /// index.interval.bytes: bytes of log between index entries. 4096.
    pub index_interval_bytes: u32,
    /// retention.ms: delete segments whose newest record is older. 604800000; -1 = unlimited.
    pub retention_ms: i64,
    /// retention.bytes: delete the oldest segments while the log is larger. -1 = unlimited.
    pub retention_bytes: i64,
    /// max.message.bytes: largest record batch accepted from a producer. 1048588.
    pub max_message_bytes: u32,
    /// message.timestamp.type. CreateTime.
    pub timestamp_type: TimestampType,
    /// cleanup.policy contains `compact`: the log cleaner keeps the latest record per key
    /// (see [`crate::cleaner`]). false.
    pub compact: bool,
    /// delete.retention.ms: how long the cleaner keeps a tombstone after it first kept it.
    /// 86400000.
    pub delete_retention_ms: i64,
    /// min.compaction.lag.ms: a record stays uncompacted at least this long. 0.
    pub min_compaction_lag_ms: i64,
    /// max.compaction.lag.ms: a record stays uncompacted at most about this long (also caps
    /// segment.ms for a compacted topic). 9223372036854775807.
    pub max_compaction_lag_ms: i64,
    /// min.cleanable.dirty.ratio: clean when dirty bytes / all cleanable bytes exceeds it. 0.5.
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_index_bytes: 10_485_760,
            index_interval_bytes: 4096,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            compact: false,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

impl LogConfig {
    /// Kafka's `maxSegmentMs`: segment.ms, capped by max.compaction.lag.ms on a compacted topic
    /// so that records can be cleaned within that lag.
    pub fn max_segment_ms(&self) -> i64 {
        if self.compact && self.max_compaction_lag_ms > 0 {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    pub(crate) fn index_config(&self) -> IndexConfig {
        IndexConfig {
            // At least one entry of each kind, so an index is never born full.
            max_index_bytes: self.segment_index_bytes.max(24),
            index_interval_bytes: self.index_interval_bytes,
        }
    }

    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, MAX_SEGMENT_BYTES)
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Base offset of the first batch.
    pub first_offset: i64,
    /// Last offset of the last batch.
    pub last_offset: i64,
    /// Largest batch maxTimestamp (the append time with LogAppendTime).
    pub max_timestamp: i64,
    /// Last offset of the first batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// The append time with LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// Sum of recordsCount.
    pub num_records: u64,
    /// Bytes appended.
    pub bytes: usize,
}

/// What a read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    /// Whole record batches, as stored.
    pub records: Bytes,
    /// Base offset of the first batch returned; `None` when `records` is empty.
    pub first_offset: Option<i64>,
}

/// One partition's log. See the module docs.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Never empty; the last is the active segment.
    pub(crate) segments: BTreeMap<i64, LogSegment>,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    /// As written in the recovery-point file: every offset below it is known to be on disk
    /// (fsynced); segments holding offsets at or above it are rescanned at open.
    recovery_point: i64,
    epochs: LeaderEpochCache,
    /// Segment files were created or removed since the last flush: the directory needs an fsync.
    pub(crate) dir_dirty: bool,
    /// The log cleaner's checkpoint: the first dirty offset (see [`crate::cleaner`]).
    pub(crate) cleaner_checkpoint: i64,
    /// The latest delete horizon of a tombstone the cleaner kept, not yet passed when it did;
    /// [`NO_TIMESTAMP`] when none. In memory only, as in Kafka.
    pub(crate) latest_delete_horizon: i64,
    /// Bumped whenever segments other than the active one are removed or cut (retention,
    /// DeleteRecords, truncation), so that a compaction pass planned before gives up.
    pub(crate) layout_generation: u64,
    /// A compaction pass is under way.
    pub(crate) cleaning: Arc<AtomicBool>,
    /// Which `.snapshot` and `.txnindex` files exist (see [`txn::TxnFiles`]).
    txn_files: txn::TxnFiles,
}

impl Log {
    /// Opens (creating the dir if needed) and recovers: every segment is loaded in base-offset
    /// order; the active (last) segment, and any older one holding offsets at or above the
    /// recovery point, is rescanned batch by batch (magic, lengths, offsets, CRC), the log is cut
    /// at the first torn or corrupt batch (later segments deleted) and the rescanned segments'
    /// indexes rebuilt; any other segment's indexes are checked and rebuilt when missing or
    /// inconsistent. A log-cleaner swap interrupted by a crash is completed first (see
    /// [`crate::cleaner`]); leftover `.deleted`/`.cleaned` files, temp files and indexes without
    /// a `.log` are removed. `now_ms` starts the segment.ms clock of a segment whose
    /// first batch has no timestamp.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log, LogError> {
        fs::create_dir_all(dir).ctx(dir, "create log directory")?;
        cleaner::complete_interrupted_swaps(dir)?;
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        let mut txn_files = txn::TxnFiles::default();
        for entry in fs::read_dir(dir).ctx(dir, "list log directory")? {
            let entry = entry.ctx(dir, "list log directory")?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if [".deleted", ".cleaned", ".swap", ".tmp"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                tracing::info!(file = %path.display(), "removing leftover file");
                fs::remove_file(&path).ctx(&path, "remove leftover file")?;
                continue;
            }
            txn_files.note(name);
            if let Some(base) = parse_segment_name(name, LOG_SUFFIX) {
                bases.push(base);
            } else if let Some(base) = parse_segment_name(name, INDEX_SUFFIX)
                .or_else(|| parse_segment_name(name, TIME_INDEX_SUFFIX))
                .or_else(|| parse_segment_name(name, txn::TXN_INDEX_SUFFIX))
            {
                index_files.push((base, path));
            }
        }
        bases.sort_unstable();
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                tracing::info!(file = %path.display(), "removing index without a segment");
                fs::remove_file(&path).ctx(&path, "remove orphan index")?;
            }
        }

        let saved_start = read_offset_file(dir, LOG_START_OFFSET_FILE)?;
        // Without a recovery point every segment is rescanned: safe, and only slow once.
        let saved_recovery_point = read_offset_file(dir, RECOVERY_POINT_FILE)?;
        let recovery_point = saved_recovery_point.unwrap_or(i64::MIN);
        let cfg = config.index_config();
        let mut segments = BTreeMap::new();
        let mut recovery_truncated = false;
        let mut i = 0;
        while i < bases.len() {
            let base = bases[i];
            let next = bases.get(i + 1).copied();
            // The active segment is always rescanned; an older one when it holds offsets at or
            // above the recovery point (not known to be flushed).
            let recover = next.is_none_or(|n| n > recovery_point);
            let mode = if recover {
                OpenMode::Recover
            } else {
                OpenMode::Load
            };
            let (mut seg, truncated) = LogSegment::open(dir, base, next, mode, cfg, now_ms)?;
            if truncated > 0 {
                recovery_truncated = true;
                tracing::warn!(partition = %topic_partition(dir), dir = %dir.display(), base, truncated, "recovery truncated a segment");
                // Kafka's rule: everything after a corrupt batch goes, later segments included.
                for &later in &bases[i + 1..] {
                    tracing::warn!(partition = %topic_partition(dir), dir = %dir.display(), base = later, "deleting segment after corruption");
                    remove_segment_files(dir, later)?;
                }
                bases.truncate(i + 1);
            } else if next.is_some() && recover {
                seg.on_become_inactive()?;
            }
            segments.insert(base, seg);
            i += 1;
        }
        // A brand-new log: its missing checkpoint files already mean what they would say.
        let fresh = segments.is_empty() && saved_start.is_none() && saved_recovery_point.is_none();
        if segments.is_empty() {
            let base = saved_start.unwrap_or(0).max(0);
            segments.insert(base, LogSegment::create(dir, base, cfg)?);
        }
        let log_end_offset = segments
            .values()
            .next_back()
            .expect("non-empty")
            .next_offset();
        let first_base = *segments.keys().next().expect("non-empty");
        let log_start_offset = saved_start
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end_offset);
        let mut epochs = LeaderEpochCache::load(dir)?;
        // Entries past the log end are for records that are gone, and so are entries at the
        // log end when recovery cut a torn tail off. Otherwise an entry starting exactly at the
        // log end is kept: an epoch assigned at becoming leader before any append
        // ([`Log::assign_leader_epoch`]) starts there, and dropping it would rewrite the
        // checkpoint of every empty partition at every start.
        epochs.truncate_from_end(if recovery_truncated {
            log_end_offset
        } else {
            log_end_offset.saturating_add(1)
        })?;
        epochs.truncate_from_start(log_start_offset)?;
        let cleaner_checkpoint =
            read_offset_file(dir, CLEANER_OFFSET_CHECKPOINT_FILE)?.unwrap_or(log_start_offset);
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            log_end_offset,
            recovery_point: recovery_point.clamp(0, log_end_offset),
            epochs,
            dir_dirty: true,
            cleaner_checkpoint,
            latest_delete_horizon: NO_TIMESTAMP,
            layout_generation: 0,
            cleaning: Arc::new(AtomicBool::new(false)),
            txn_files,
        };
        if fresh {
            return Ok(log);
        }
        // Recovery may have cut the tail: aborts whose marker is gone go too, and snapshots
        // beyond the end.
        let active_base = log.active().base_offset();
        log.txn_files.truncate(dir, active_base, log_end_offset)?;
        if saved_start != Some(log_start_offset) {
            log.persist_log_start_offset()?;
        }
        // Only a lowered recovery point must reach disk before appends resume (so that data
        // written above it is rescanned after a crash); a missing file already means "rescan".
        if saved_recovery_point.is_some_and(|saved| saved > log.recovery_point) {
            log.persist_recovery_point()?;
        }
        Ok(log)
    }

    /// Validates (see [`batch::validate_batches`]), assigns offsets from the log end offset by
    /// rewriting baseOffset in place, stamps partitionLeaderEpoch, and for LogAppendTime sets the
    /// timestampType bit and maxTimestamp = `now_ms` and recomputes the CRC; rolls first when the
    /// active segment is full or older than segment.ms; appends; records a new leader epoch start
    /// when `leader_epoch` is greater than the latest. Records are never decompressed.
    pub fn append_as_leader(
        &mut self,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let summary = validate(records, Some(self.config.max_message_bytes), Origin::Client)?;
        let first_offset = self.log_end_offset;
        first_offset
            .checked_add(summary.offset_count)
            .ok_or_else(|| LogError::OffsetOverflow {
                reason: format!("{} offsets after {first_offset}", summary.offset_count),
            })?;
        let timestamp_type = self.config.timestamp_type;
        let mut next = first_offset;
        let mut pos = 0;
        let mut max_timestamp = NO_TIMESTAMP;
        let mut offset_of_max_timestamp = -1;
        while pos < records.len() {
            let mut batch = RecordBatchMut::from_prefix(&mut records[pos..])?;
            let size = batch.as_batch().size_in_bytes();
            batch.set_base_offset(next);
            batch.set_partition_leader_epoch(leader_epoch);
            let batch_max = match timestamp_type {
                TimestampType::LogAppendTime => now_ms,
                TimestampType::CreateTime => batch.as_batch().max_timestamp(),
            };
            batch.set_max_timestamp(timestamp_type, batch_max);
            let last = batch.as_batch().last_offset();
            if offset_of_max_timestamp < 0 || batch_max > max_timestamp {
                max_timestamp = batch_max;
                offset_of_max_timestamp = last;
            }
            next = last + 1;
            pos += size;
        }
        let info = AppendInfo {
            first_offset,
            last_offset: next - 1,
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time_ms: match timestamp_type {
                TimestampType::LogAppendTime => now_ms,
                TimestampType::CreateTime => -1,
            },
            num_records: summary.num_records,
            bytes: records.len(),
        };
        self.append_validated(records, &info, now_ms)?;
        if leader_epoch >= 0 && self.epochs.latest().is_none_or(|l| leader_epoch > l.epoch) {
            self.epochs.assign(leader_epoch, first_offset)?;
        }
        Ok(info)
    }

    /// For replication: the batches already carry offsets; the first must start at or after the
    /// log end offset (after only when the leader's log has a gap, e.g. from compaction) and the
    /// offsets must increase. The leader-epoch cache learns each batch's partitionLeaderEpoch.
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let summary: BatchesSummary = validate(records, None, Origin::Replication)?;
        if summary.first_offset < self.log_end_offset {
            return Err(LogError::UnexpectedAppendOffset {
                expected: self.log_end_offset,
                first_offset: summary.first_offset,
            });
        }
        let info = AppendInfo {
            first_offset: summary.first_offset,
            last_offset: summary.last_offset,
            max_timestamp: summary.max_timestamp,
            offset_of_max_timestamp: summary.offset_of_max_timestamp,
            log_append_time_ms: -1,
            num_records: summary.num_records,
            bytes: records.len(),
        };
        self.append_validated(records, &info, now_ms)?;
        for b in batch::batches(records) {
            let epoch = b.partition_leader_epoch();
            if epoch != NO_PARTITION_LEADER_EPOCH
                && self.epochs.latest().is_none_or(|l| epoch > l.epoch)
            {
                self.epochs.assign(epoch, b.base_offset())?;
            }
        }
        Ok(info)
    }

    fn check_fits_a_segment(&self, size: usize) -> Result<(), LogError> {
        if size as u64 > self.config.effective_segment_bytes() {
            return Err(LogError::RecordsTooLargeForSegment {
                size,
                segment_bytes: self.config.segment_bytes,
            });
        }
        Ok(())
    }

    fn append_validated(
        &mut self,
        records: &[u8],
        info: &AppendInfo,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let segment_bytes = self.config.effective_segment_bytes();
        self.check_fits_a_segment(records.len())?;
        if info.last_offset - info.first_offset > i64::from(i32::MAX) {
            return Err(LogError::OffsetOverflow {
                reason: format!(
                    "offsets {}..={} do not fit one segment",
                    info.first_offset, info.last_offset
                ),
            });
        }
        let active = self.active();
        // Relative offsets must fit the indexes; this can hit an empty active segment too when a
        // follower's first batch comes after a large gap.
        let offsets_overflow = info.last_offset - active.base_offset() > i64::from(i32::MAX);
        let roll = offsets_overflow
            || active.size() > 0
                && (active.size() + records.len() as u64 > segment_bytes
                    || now_ms.saturating_sub(active.rolling_base_ms())
                        > self.config.max_segment_ms()
                    || active.indexes_full());
        if roll {
            self.roll_at(info.first_offset)?;
        }
        let cfg = self.config.index_config();
        self.active_mut().append(records, cfg, now_ms)?;
        self.log_end_offset = info.last_offset + 1;
        Ok(())
    }

    /// Whole batches starting with the batch that contains `start_offset`, up to `max_bytes`,
    /// only batches whose base offset < `max_offset` (the high watermark or last stable offset);
    /// with `min_one_batch` the first batch is returned even when larger than `max_bytes`
    /// (KIP-74). Batches come from one segment. `OffsetOutOfRange` when `start_offset` <
    /// log start offset or > log end offset.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo, LogError> {
        if start_offset < self.log_start_offset || start_offset > self.log_end_offset {
            return Err(self.out_of_range(start_offset));
        }
        let empty = ReadInfo {
            records: Bytes::new(),
            first_offset: None,
        };
        if start_offset == self.log_end_offset || start_offset >= max_offset {
            return Ok(empty);
        }
        let floor = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(floor..).map(|(_, s)| s) {
            if let Some(r) = seg.read(start_offset, max_bytes, max_offset, min_one_batch)? {
                return Ok(ReadInfo {
                    records: Bytes::from(r.records),
                    first_offset: r.first_offset,
                });
            }
        }
        Ok(empty)
    }

    /// The first offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Sum of the segments' sizes in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size).sum()
    }

    /// Number of segments (at least 1).
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// ListOffsets by timestamp: the first record (not batch) at or after the log start offset
    /// with timestamp >= `target_ms`, as (offset, timestamp); `None` if there is none. Uses the
    /// time index, then the batch headers, then the records of one batch.
    pub fn offset_for_timestamp(&self, target_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        for seg in self.segments.values() {
            if seg.size() == 0
                || seg.next_offset() <= self.log_start_offset
                || seg.max_timestamp() < target_ms
            {
                continue;
            }
            if let Some(found) = seg.find_offset_by_timestamp(target_ms, self.log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (KIP-734): the offset and timestamp of the first record holding
    /// the largest timestamp; `None` when no record has a timestamp.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<&LogSegment> = None;
        for seg in self.segments.values() {
            if seg.size() == 0 || seg.next_offset() <= self.log_start_offset {
                continue;
            }
            if best.is_none_or(|b| seg.max_timestamp() > b.max_timestamp()) {
                best = Some(seg);
            }
        }
        match best {
            Some(seg) => seg.max_timestamp_record(),
            None => Ok(None),
        }
    }

    /// DeleteRecords: advances the log start offset to `offset` (an offset at or below it is a
    /// no-op; beyond the log end offset is `OffsetOutOfRange`), deletes the segments wholly below
    /// it and persists it. Returns the log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset > self.log_end_offset {
            return Err(self.out_of_range(offset));
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.set_log_start_offset(offset)?;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let n = bases.windows(2).take_while(|w| w[1] <= offset).count();
        self.delete_oldest(n)?;
        Ok(self.log_start_offset)
    }

    /// Retention: deletes whole segments whose largest timestamp is older than retention.ms, then
    /// the oldest segments while the log is larger than retention.bytes; when the active segment
    /// itself must go, rolls first so the log end offset is kept. Advances the log start offset.
    /// Returns the number of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.enforce_retention_below(now_ms, i64::MAX)
    }

    /// [`Log::enforce_retention`], deleting only segments whose offsets are all below
    /// `high_watermark` (Kafka never lets the log start offset pass the high watermark).
    pub fn enforce_retention_below(
        &mut self,
        now_ms: i64,
        high_watermark: i64,
    ) -> Result<usize, LogError> {
        let mut deleted = 0;
        if self.config.retention_ms >= 0 {
            let retention_ms = self.config.retention_ms;
            let n = self.deletable_prefix(high_watermark, |seg| {
                now_ms.saturating_sub(seg.largest_timestamp()) > retention_ms
            });
            deleted += self.delete_oldest(n)?;
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            let n = self.deletable_prefix(high_watermark, |seg| {
                if excess - seg.size() as i64 >= 0 {
                    excess -= seg.size() as i64;
                    true
                } else {
                    false
                }
            });
            deleted += self.delete_oldest(n)?;
        }
        Ok(deleted)
    }

    /// How many of the oldest segments satisfy `predicate` in a row, stopping at the empty active
    /// segment and at segments reaching `high_watermark`.
    fn deletable_prefix(
        &self,
        high_watermark: i64,
        mut predicate: impl FnMut(&LogSegment) -> bool,
    ) -> usize {
        let segs: Vec<&LogSegment> = self.segments.values().collect();
        let mut n = 0;
        for (i, seg) in segs.iter().enumerate() {
            let next = segs.get(i + 1);
            if next.is_none() && seg.size() == 0 {
                break;
            }
            let upper = next.map_or(self.log_end_offset, |s| s.base_offset());
            if upper > high_watermark || !predicate(seg) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Deletes the `n` oldest segments, rolling first when that is all of them, and advances the
    /// log start offset to the new first segment.
    fn delete_oldest(&mut self, n: usize) -> Result<usize, LogError> {
        if n == 0 {
            return Ok(0);
        }
        self.layout_generation += 1;
        if n >= self.segments.len() {
            self.roll()?;
        }
        let bases: Vec<i64> = self.segments.keys().take(n).copied().collect();
        let new_first = *self
            .segments
            .keys()
            .nth(n)
            .expect("at least one segment remains");
        if new_first > self.log_start_offset {
            self.set_log_start_offset(new_first)?;
        }
        for base in bases {
            let seg = self.segments.remove(&base).expect("listed above");
            tracing::info!(dir = %self.dir.display(), base, "deleting segment");
            self.dir_dirty = true;
            seg.delete()?;
        }
        Ok(n)
    }

    fn set_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        self.log_start_offset = offset;
        self.persist_log_start_offset()?;
        self.epochs.truncate_from_start(offset)
    }

    fn persist_recovery_point(&self) -> Result<(), LogError> {
        checkpoint::write(
            &self.dir.join(RECOVERY_POINT_FILE),
            &[self.recovery_point.to_string()],
        )
    }

    /// Lowers the recovery point to the log end offset (after truncation), on disk first, so data
    /// appended later is rescanned after a crash.
    fn lower_recovery_point(&mut self) -> Result<(), LogError> {
        if self.recovery_point > self.log_end_offset {
            self.recovery_point = self.log_end_offset;
            self.persist_recovery_point()?;
        }
        Ok(())
    }

    fn persist_log_start_offset(&self) -> Result<(), LogError> {
        checkpoint::write(
            &self.dir.join(LOG_START_OFFSET_FILE),
            &[self.log_start_offset.to_string()],
        )
    }

    /// Rolls when segment.ms (see [`LogConfig::max_segment_ms`]) has elapsed for a non-empty active segment, even without appends
    /// (called periodically). Returns whether it rolled.
    pub fn maybe_roll(&mut self, now_ms: i64) -> Result<bool, LogError> {
        let active = self.active();
        if active.size() > 0
            && now_ms.saturating_sub(active.rolling_base_ms()) > self.config.max_segment_ms()
        {
            self.roll()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Starts a new active segment at the log end offset (nothing happens when the active segment
    /// is empty).
    pub fn roll(&mut self) -> Result<(), LogError> {
        self.roll_at(self.log_end_offset)
    }

    /// Starts a new active segment at `base` (>= the log end offset). An empty active segment at
    /// that base is kept; an empty one elsewhere is replaced.
    fn roll_at(&mut self, base: i64) -> Result<(), LogError> {
        let cfg = self.config.index_config();
        let (&active_base, active) = self.segments.iter_mut().next_back().expect("non-empty");
        if active.size() == 0 {
            if active_base == base {
                return Ok(());
            }
            let old = self.segments.remove(&active_base).expect("present");
            old.delete()?;
        } else {
            active.on_become_inactive()?;
        }
        tracing::debug!(dir = %self.dir.display(), base, "rolling new segment");
        self.dir_dirty = true;
        self.segments
            .insert(base, LogSegment::create(&self.dir, base, cfg)?);
        Ok(())
    }

    /// Removes every offset >= `offset` (replication), fixing indexes and the leader-epoch cache.
    /// A batch containing `offset` is removed whole, so the log end offset becomes the end of the
    /// last batch kept (which is `offset` whenever `offset` is a batch boundary). No-op when
    /// `offset` >= log end offset; below the first segment it is
    /// [`Log::truncate_fully_and_start_at`].
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        let first_base = *self.segments.keys().next().expect("non-empty");
        if offset < first_base {
            return self.truncate_fully_and_start_at(offset);
        }
        self.layout_generation += 1;
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        // Newest first, so a crash midway leaves a prefix of the log.
        for base in doomed.into_iter().rev() {
            let seg = self.segments.remove(&base).expect("listed above");
            self.dir_dirty = true;
            seg.delete()?;
        }
        let cfg = self.config.index_config();
        let active = self.active_mut();
        active.truncate_to(offset, cfg)?;
        self.log_end_offset = active.next_offset();
        let active_base = self.active().base_offset();
        self.txn_files
            .truncate(&self.dir, active_base, self.log_end_offset)?;
        self.lower_recovery_point()?;
        self.epochs.truncate_from_end(self.log_end_offset)?;
        if self.log_start_offset > self.log_end_offset {
            self.log_start_offset = self.log_end_offset;
            self.persist_log_start_offset()?;
        }
        if self.cleaner_checkpoint > self.log_end_offset {
            self.cleaner_checkpoint = self.log_end_offset;
            self.persist_cleaner_checkpoint()?;
        }
        Ok(())
    }

    /// Deletes every segment and restarts empty at `offset` (log start = log end = `offset`);
    /// clears the leader-epoch cache.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        let offset = offset.max(0);
        let cfg = self.config.index_config();
        self.dir_dirty = true;
        self.layout_generation += 1;
        for (_, seg) in std::mem::take(&mut self.segments).into_iter().rev() {
            seg.delete()?;
        }
        self.segments
            .insert(offset, LogSegment::create(&self.dir, offset, cfg)?);
        self.txn_files.delete_snapshots(&self.dir)?;
        self.log_end_offset = offset;
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.persist_recovery_point()?;
        self.persist_log_start_offset()?;
        self.cleaner_checkpoint = offset;
        self.persist_cleaner_checkpoint()?;
        self.epochs.clear()
    }

    /// OffsetForLeaderEpoch: (largest epoch <= `epoch`, its end offset), Kafka semantics: the
    /// latest epoch ends at the log end offset; an epoch below the earliest known gives
    /// (`epoch`, earliest start offset); `None` for an unknown newer epoch, a negative epoch or an
    /// empty cache.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    /// Kafka's `maybeAssignEpochStartOffset` on becoming leader: `epoch` starts at the log end
    /// offset unless the cache already has it (or a later one). Writes (and fsyncs) the
    /// checkpoint when it changes, so doing it here keeps that off the first append's path.
    pub fn assign_leader_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        if epoch >= 0 && self.epochs.latest().is_none_or(|l| epoch > l.epoch) {
            self.epochs.assign(epoch, self.log_end_offset)?;
        }
        Ok(())
    }

    /// The latest leader epoch in the cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest().map(|e| e.epoch)
    }

    /// The leader-epoch cache, oldest first.
    pub fn epoch_entries(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// Replaces the configuration. Index sizes apply from the next segment on.
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// fsyncs data and indexes of every segment changed since the last flush.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.flush_inner(false)
    }

    fn flush_inner(&mut self, closing: bool) -> Result<(), LogError> {
        for seg in self.segments.values_mut() {
            seg.flush()?;
        }
        if self.dir_dirty {
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .ctx(&self.dir, "fsync directory")?;
            self.dir_dirty = false;
        }
        // The recovery point only matters per segment (the active segment is rescanned at every
        // open anyway), so it is written when a whole older segment became flushed, and at close;
        // this keeps a flush per append at one fsync in the common case.
        let active_base = self.active().base_offset();
        if self.recovery_point != self.log_end_offset
            && (closing || active_base > self.recovery_point)
        {
            self.recovery_point = self.log_end_offset;
            self.persist_recovery_point()?;
        }
        Ok(())
    }

    /// Kafka flushes a log up to a new segment's base in the background after each roll. This
    /// hands out what that needs without holding the log: the files of the inactive segments
    /// with unflushed writes, the offset they end at (the active segment's base) and the
    /// layout generation. The caller fsyncs the files with the log unlocked, then calls
    /// [`Log::mark_rolled_flushed`]. `None` when nothing inactive is unflushed.
    pub fn rolled_unflushed(&self) -> Option<RolledUnflushed> {
        let active = self.active().base_offset();
        let files: Vec<PathBuf> = self
            .segments
            .range(..active)
            .filter_map(|(_, s)| s.unflushed_files())
            .flatten()
            .collect();
        (!files.is_empty()).then_some(RolledUnflushed {
            files,
            up_to: active,
            layout_generation: self.layout_generation,
        })
    }

    /// The files [`Log::rolled_unflushed`] returned were fsynced: the segments below `up_to`
    /// are clean and the recovery point moves up to `up_to` (unless segments were replaced or
    /// deleted meanwhile, when nothing is marked).
    pub fn mark_rolled_flushed(&mut self, done: &RolledUnflushed) -> Result<(), LogError> {
        if done.layout_generation != self.layout_generation {
            return Ok(());
        }
        for seg in self.segments.range_mut(..done.up_to).map(|(_, s)| s) {
            seg.mark_flushed();
        }
        if self.dir_dirty {
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .ctx(&self.dir, "fsync directory")?;
            self.dir_dirty = false;
        }
        if done.up_to > self.recovery_point {
            self.recovery_point = done.up_to.min(self.log_end_offset);
            self.persist_recovery_point()?;
        }
        Ok(())
    }

    /// Flushes, trims the active segment's indexes and records the recovery point.
    pub fn close(mut self) -> Result<(), LogError> {
        self.active_mut().trim_indexes()?;
        self.flush_inner(true)
    }

    /// Removes the whole directory.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).ctx(&dir, "remove log directory")
    }

    /// Records an aborted transaction in the `.txnindex` of the segment holding its abort
    /// marker (`entry.last_offset`; normally the active segment). Fsynced.
    pub fn append_aborted_txn(&mut self, entry: &AbortedTxnEntry) -> Result<(), LogError> {
        let base = self
            .segments
            .range(..=entry.last_offset)
            .next_back()
            .map_or(self.active().base_offset(), |(b, _)| *b);
        self.txn_files.append_aborted(&self.dir, base, entry)
    }

    /// The base offset of the active segment (it changes when the log rolls).
    pub fn active_base_offset(&self) -> i64 {
        self.active().base_offset()
    }

    /// Every aborted transaction recorded in the segments' `.txnindex` files, in log order.
    pub fn aborted_txns(&self) -> Result<Vec<AbortedTxnEntry>, LogError> {
        self.txn_files
            .aborted(&self.dir, self.segments.keys().copied())
    }

    /// Writes the producer state as of `offset` (`<offset>.snapshot`, fsynced); the two newest
    /// snapshots are kept.
    pub fn write_producer_snapshot(
        &mut self,
        offset: i64,
        entries: &[ProducerSnapshotEntry],
    ) -> Result<(), LogError> {
        self.txn_files.write_snapshot(&self.dir, offset, entries)
    }

    /// The newest readable producer snapshot within the log (`log start..=log end`), with
    /// its offset: the log is rescanned from there.
    pub fn latest_producer_snapshot(
        &mut self,
    ) -> Result<Option<(i64, Vec<ProducerSnapshotEntry>)>, LogError> {
        self.txn_files
            .latest_snapshot(&self.dir, self.log_start_offset, self.log_end_offset)
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn active(&self) -> &LogSegment {
        self.segments.values().next_back().expect("never empty")
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments.values_mut().next_back().expect("never empty")
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
    }
}

fn read_offset_file(dir: &Path, name: &str) -> Result<Option<i64>, LogError> {
    Ok(checkpoint::read(&dir.join(name), 1)?.and_then(|e| e.first().map(|v| v[0])))
}

/// Removes a segment's files that are not loaded (after corruption in an earlier segment).
fn remove_segment_files(dir: &Path, base: i64) -> Result<(), LogError> {
    for suffix in [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        txn::TXN_INDEX_SUFFIX,
    ] {
        let path = segment_file(dir, base, suffix);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io(path, "delete", e)),
        }
    }
    Ok(())
}

/// What a background flush after a roll must fsync; see [`Log::rolled_unflushed`].
#[derive(Debug, Clone)]
pub struct RolledUnflushed {
    pub files: Vec<PathBuf>,
    pub up_to: i64,
    layout_generation: u64,
}

impl RolledUnflushed {
    /// Fsyncs every file (each through its own descriptor: fsync is per file).
    pub fn sync(&self) -> Result<(), LogError> {
        for path in &self.files {
            match fs::File::open(path) {
                Ok(f) => f.sync_all().ctx(path, "fsync")?,
                // Deleted by retention or the cleaner meanwhile: nothing left to flush.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(path, "open for fsync", e)),
            }
        }
        Ok(())
    }
}

/// `00000000000000000042.log` → 42.
pub(crate) fn parse_segment_name(name: &str, suffix: &str) -> Option<i64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Kafka's name for the partition a log directory holds, `<topic>-<partition>` (the directory's
/// own name), for log lines.
pub(crate) fn topic_partition(dir: &Path) -> std::borrow::Cow<'_, str> {
    dir.file_name()
        .map_or_else(|| dir.to_string_lossy(), |n| n.to_string_lossy())
}
