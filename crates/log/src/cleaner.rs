//! Log compaction (`cleanup.policy=compact`): Kafka's LogCleaner for one partition.
//!
//! # What a pass does
//! The log is cut into a *clean* part (below the cleaner checkpoint, the first dirty offset) and a
//! *dirty* part, which ends at the *first uncleanable offset*: the active segment's base offset,
//! the high watermark (passed in by the broker), and the first segment whose newest record is not
//! older than `min.compaction.lag.ms` — whichever comes first, rounded down to a segment boundary.
//! A pass runs when dirty bytes / (clean + dirty bytes) > `min.cleanable.dirty.ratio`, or when the
//! oldest dirty segment's first batch is older than `max.compaction.lag.ms`, or when the delete
//! horizon of a tombstone kept by an earlier pass has passed.
//!
//! 1. An offset map `key → offset of its latest record` is built over the dirty part (control
//!    batches skipped). Its memory is bounded by [`CleanerConfig::dedupe_buffer_bytes`]; when it
//!    fills, the pass ends at that batch and the next pass goes on from there.
//! 2. Every segment from the first up to where the map ends is rewritten, in groups of
//!    consecutive segments that together fit `segment.bytes` (so segments do not shrink
//!    forever), each group into one new segment with the group's first base offset.
//! 3. A record is kept when it is the latest for its key (or its key is not in the map, i.e.
//!    the key was only seen in the clean part), and it has a value, or it is a tombstone whose
//!    batch's delete horizon has not passed. Records without a key are dropped (Kafka counts them
//!    as invalid). Records at or after the map's end are kept.
//! 4. Tombstones get their delete horizon (KIP-534) the first time a pass keeps them: the batch
//!    is rewritten with attributes bit 6 set and baseTimestamp = now + `delete.retention.ms`;
//!    record timestamps are unchanged (their deltas are recomputed). A later pass after the
//!    horizon removes them.
//!
//! # What a kept batch looks like (Kafka's `MemoryRecords.filterTo`)
//! - Nothing removed and no horizon to set: the original bytes.
//! - Some records removed: a new batch with the same baseOffset, lastOffsetDelta (so the last
//!   sequence number and the next offset stay right), partitionLeaderEpoch, producer id, epoch,
//!   base sequence, attributes and codec (snappy keeps its xerial framing or raw form); record
//!   offset deltas and timestamps unchanged; recordsCount, maxTimestamp (CreateTime) and the
//!   CRC recomputed. Offsets of removed records become gaps.
//! - Every record removed: the batch goes, except (as an empty batch: header only, recordsCount
//!   0, no compression, baseTimestamp -1) when it is the last batch of its producer id in the
//!   log (the broker rebuilds producer state from batch headers) or the last batch of its group
//!   (so the cleaned segment still ends where the old ones did).
//! - Control batches (transaction markers) are always kept.
//!
//! *Deviations from Kafka*: every producer id's last batch is kept, not only those of producers
//! the broker still considers active (the log does not know about producer expiration); records
//! of transactional batches are treated as committed (there is no transaction index yet), and
//! transaction markers are never removed.
//!
//! # Crash safety (Kafka's `.cleaned` → `.swap` → rename)
//! A group is written to `<base>.log.cleaned` (and `.index.cleaned`, `.timeindex.cleaned`) and
//! fsynced. Under the log's lock it is then committed by renaming the indexes and then the
//! `.log` to `.swap` and fsyncing the directory; the replaced segments are deleted; the `.swap`
//! files are renamed to their final names. At open ([`complete_interrupted_swaps`]): `.cleaned`
//! files are deleted (the swap never started); a `<base>.log.swap` is completed: the segments
//! with base offsets in `[base, the swap's next offset)` are deleted (the old segments it
//! replaces: its last batch is the group's last batch, kept even when empty) and it is renamed;
//! `.swap` indexes without their `.log.swap` are deleted (the segment's indexes are rebuilt).
//!
//! # Locking
//! A pass is split so that the partition's lock is held only for bookkeeping:
//! [`crate::Log::prepare_compaction`] (under the lock: decide, open the segment files),
//! [`CompactionJob::clean`] (no lock: read, write the `.cleaned` files; appends go on) and
//! [`crate::Log::finish_compaction`] (under the lock: give up if segments were deleted or the
//! log truncated meanwhile, else swap). One pass per log at a time.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crate::batch::{
    be_i32, BatchError, BatchHeader, Compression, RecordBatch, TimestampType, CONTROL_BIT,
    DELETE_HORIZON_BIT, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, MIN_BATCH_LENGTH, NO_TIMESTAMP,
    TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};
use crate::compression;
use crate::error::{IoContext, LogError};
use crate::log::{Log, LogConfig};
use crate::record::{put_varint, put_varlong, Record};
use crate::segment::{
    segment_file, IndexConfig, LogSegment, OpenMode, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// File holding this partition's cleaner checkpoint (the first dirty offset). *Deviation*: Kafka
/// keeps one `cleaner-offset-checkpoint` per log dir listing every partition.
pub const CLEANER_OFFSET_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// Suffix of a cleaned segment's files before the swap.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's files once the swap is committed.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// Bytes read from a segment at a time.
const READ_CHUNK: usize = 1 << 20;
/// Bytes of kept batches buffered before they are appended to the cleaned segment.
const WRITE_CHUNK: usize = 1 << 20;
/// Estimated bytes per offset-map entry besides the key (hash table slot, box, offset).
const MAP_ENTRY_OVERHEAD: usize = 64;

/// Settings of the cleaner itself (Kafka's `log.cleaner.*` broker keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanerConfig {
    /// log.cleaner.dedupe.buffer.size: memory for one pass's offset map. 134217728.
    pub dedupe_buffer_bytes: usize,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_bytes: 134_217_728,
        }
    }
}

/// What a compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// The cleaner checkpoint the pass started from.
    pub first_dirty_offset: i64,
    /// The new cleaner checkpoint: the first offset not covered by the offset map.
    pub end_offset: i64,
    /// Old segments replaced.
    pub segments_replaced: usize,
    /// Cleaned segments written.
    pub segments_written: usize,
    /// Bytes of the segments rewritten.
    pub bytes_read: u64,
    /// Bytes of the cleaned segments.
    pub bytes_written: u64,
    /// Records in the segments rewritten.
    pub records_read: u64,
    /// Records kept.
    pub records_retained: u64,
    /// The log changed (segments deleted, truncation) while the pass ran; nothing was swapped.
    pub aborted: bool,
}

/// Marks a log as being cleaned; cleared when dropped.
#[derive(Debug)]
struct CleaningGuard(Arc<AtomicBool>);

impl Drop for CleaningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A segment as it was when the pass was planned, with its own file handle (so that retention
/// deleting it meanwhile does not disturb the read; the swap then gives up).
#[derive(Debug)]
struct SegmentSnapshot {
    base: i64,
    /// The next segment's base offset; the log end offset for the active segment.
    upper: i64,
    /// The offset after its last batch.
    next_offset: i64,
    /// Bytes of whole batches.
    size: u64,
    path: PathBuf,
    file: File,
    modified: Option<SystemTime>,
}

/// The part of a compaction pass that runs without the log's lock. Made by
/// [`Log::prepare_compaction`]; [`CompactionJob::clean`] writes the cleaned segments, which
/// [`Log::finish_compaction`] swaps in. `Send`; dropping it abandons the pass.
#[derive(Debug)]
pub struct CompactionJob {
    dir: PathBuf,
    config: LogConfig,
    cleaner: CleanerConfig,
    index_cfg: IndexConfig,
    now_ms: i64,
    first_dirty: i64,
    /// Every segment of the log, oldest first, the active one last.
    segments: Vec<SegmentSnapshot>,
    /// The first `cleanable` segments are below the first uncleanable offset.
    cleanable: usize,
    generation: u64,
    guard: Option<CleaningGuard>,
}

/// Cleaned segments waiting to be swapped in by [`Log::finish_compaction`]. Dropping it removes
/// their files.
#[derive(Debug)]
pub struct CleanedLog {
    dir: PathBuf,
    outputs: Vec<CleanedSegment>,
    end_offset: i64,
    pending_delete_horizon: i64,
    generation: u64,
    now_ms: i64,
    stats: CompactionStats,
    _guard: CleaningGuard,
}

#[derive(Debug)]
struct CleanedSegment {
    base: i64,
    /// Base offsets of the segments it replaces (the first is `base`).
    replaced: Vec<i64>,
}

impl Drop for CleanedLog {
    fn drop(&mut self) {
        for out in &self.outputs {
            remove_files_with_suffix(&self.dir, out.base, CLEANED_SUFFIX);
        }
    }
}

impl Log {
    /// Decides whether a compaction pass is due (see the module docs) and, if so, snapshots the
    /// segments it needs. `max_offset` bounds the cleanable part (the high watermark or last
    /// stable offset). `None` when the topic is not compacted, a pass is already under way, or
    /// nothing is due.
    pub fn prepare_compaction(
        &self,
        now_ms: i64,
        max_offset: i64,
        cleaner: &CleanerConfig,
    ) -> Result<Option<CompactionJob>, LogError> {
        if !self.config.compact || self.cleaning.load(Ordering::Acquire) {
            return Ok(None);
        }
        let segs: Vec<&LogSegment> = self.segments.values().collect();
        let upper = |i: usize| {
            segs.get(i + 1)
                .map_or(self.log_end_offset, |s| s.base_offset())
        };
        let mut first_dirty = self.cleaner_checkpoint;
        if first_dirty < self.log_start_offset || first_dirty > self.log_end_offset {
            first_dirty = self.log_start_offset;
        }
        let active_base = segs.last().expect("never empty").base_offset();
        let mut uncleanable = active_base.min(max_offset);
        let min_lag = self.config.min_compaction_lag_ms;
        if min_lag > 0 {
            for (i, seg) in segs[..segs.len() - 1].iter().enumerate() {
                if upper(i) > first_dirty
                    && seg.largest_timestamp() > now_ms.saturating_sub(min_lag)
                {
                    uncleanable = uncleanable.min(seg.base_offset());
                    break;
                }
            }
        }
        let cleanable = (0..segs.len() - 1)
            .take_while(|&i| upper(i) <= uncleanable)
            .count();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let mut first_dirty_segment = None;
        for (i, seg) in segs[..cleanable].iter().enumerate() {
            if upper(i) <= first_dirty {
                clean_bytes += seg.size();
            } else {
                dirty_bytes += seg.size();
                first_dirty_segment.get_or_insert(*seg);
            }
        }
        if cleanable == 0 || clean_bytes + dirty_bytes == 0 {
            return Ok(None);
        }
        let ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes) as f64;
        let max_lag = self.config.max_compaction_lag_ms;
        let must_clean = match first_dirty_segment {
            Some(seg) if max_lag < i64::MAX => {
                let first_ts = seg
                    .first_batch_timestamp()?
                    .unwrap_or_else(|| seg.largest_timestamp());
                now_ms.saturating_sub(max_lag) > first_ts
            }
            _ => false,
        };
        let tombstones_due =
            self.latest_delete_horizon != NO_TIMESTAMP && self.latest_delete_horizon <= now_ms;
        let due = (dirty_bytes > 0
            && (ratio > self.config.min_cleanable_dirty_ratio || must_clean))
            || tombstones_due;
        if !due {
            return Ok(None);
        }
        if self
            .cleaning
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(None);
        }
        let guard = CleaningGuard(self.cleaning.clone());
        let mut snapshots = Vec::with_capacity(segs.len());
        for (i, seg) in segs.iter().enumerate() {
            let path = seg.log_path().to_path_buf();
            let file = File::open(&path).ctx(&path, "open segment for cleaning")?;
            let modified = file.metadata().and_then(|m| m.modified()).ok();
            snapshots.push(SegmentSnapshot {
                base: seg.base_offset(),
                upper: upper(i),
                next_offset: seg.next_offset(),
                size: seg.size(),
                path,
                file,
                modified,
            });
        }
        tracing::debug!(
            dir = %self.dir.display(),
            first_dirty,
            uncleanable,
            ratio,
            must_clean,
            tombstones_due,
            "log compaction due"
        );
        Ok(Some(CompactionJob {
            dir: self.dir.clone(),
            config: self.config.clone(),
            cleaner: cleaner.clone(),
            index_cfg: self.config.index_config(),
            now_ms,
            first_dirty,
            segments: snapshots,
            cleanable,
            generation: self.layout_generation,
            guard: Some(guard),
        }))
    }

    /// Swaps in the segments written by [`CompactionJob::clean`] (see the module docs for the
    /// crash-safe order) and advances the cleaner checkpoint. When segments were deleted or the
    /// log truncated since [`Log::prepare_compaction`], nothing is swapped and the stats say
    /// `aborted`. An error after the first swap leaves the log's in-memory view incomplete;
    /// reopening the log completes the swap from the files.
    pub fn finish_compaction(&mut self, cleaned: CleanedLog) -> Result<CompactionStats, LogError> {
        self.finish_compaction_with_hook(cleaned, &mut |_| {})
    }

    /// [`Log::finish_compaction`], calling `after_step` after every change to the directory (for
    /// crash tests: a copy of the directory at each call is what a crash there would leave).
    #[doc(hidden)]
    pub fn finish_compaction_with_hook(
        &mut self,
        mut cleaned: CleanedLog,
        after_step: &mut dyn FnMut(&str),
    ) -> Result<CompactionStats, LogError> {
        after_step("cleaned segments written");
        let outputs = std::mem::take(&mut cleaned.outputs);
        let active_base = self.active().base_offset();
        let unchanged = cleaned.generation == self.layout_generation
            && outputs.iter().all(|o| {
                o.replaced
                    .iter()
                    .all(|b| *b < active_base && self.segments.contains_key(b))
            });
        let mut stats = cleaned.stats.clone();
        if !unchanged {
            for out in &outputs {
                remove_files_with_suffix(&self.dir, out.base, CLEANED_SUFFIX);
            }
            tracing::info!(dir = %self.dir.display(), "log changed during compaction; cleaned segments discarded");
            stats.aborted = true;
            return Ok(stats);
        }
        let cfg = self.config.index_config();
        for out in &outputs {
            // Commit: once `.log.swap` exists (and the directory says so), recovery completes it.
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] {
                rename_suffixed(&self.dir, out.base, suffix, CLEANED_SUFFIX, SWAP_SUFFIX)?;
                after_step("renamed .cleaned to .swap");
            }
            fsync_dir(&self.dir)?;
            for base in &out.replaced {
                let seg = self.segments.remove(base).expect("checked above");
                seg.delete()?;
                after_step("deleted a replaced segment");
            }
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                rename_suffixed(&self.dir, out.base, suffix, SWAP_SUFFIX, "")?;
                after_step("renamed .swap to the final name");
            }
            let next = self.segments.range(out.base + 1..).next().map(|(b, _)| *b);
            let (seg, _) = LogSegment::open(
                &self.dir,
                out.base,
                next,
                OpenMode::Load,
                cfg,
                cleaned.now_ms,
            )?;
            self.segments.insert(out.base, seg);
        }
        self.dir_dirty = true;
        self.cleaner_checkpoint = cleaned.end_offset;
        self.persist_cleaner_checkpoint()?;
        after_step("cleaner checkpoint written");
        self.latest_delete_horizon = cleaned.pending_delete_horizon;
        tracing::info!(
            dir = %self.dir.display(),
            replaced = stats.segments_replaced,
            written = stats.segments_written,
            bytes_read = stats.bytes_read,
            bytes_written = stats.bytes_written,
            records_retained = stats.records_retained,
            records_read = stats.records_read,
            end_offset = stats.end_offset,
            "compacted log"
        );
        Ok(stats)
    }

    /// One whole compaction pass holding `&mut self` throughout (tests, tools); the broker
    /// runs the three steps itself to release the lock during [`CompactionJob::clean`]. `None`
    /// when no pass was due.
    pub fn compact(
        &mut self,
        now_ms: i64,
        cleaner: &CleanerConfig,
    ) -> Result<Option<CompactionStats>, LogError> {
        let Some(job) = self.prepare_compaction(now_ms, i64::MAX, cleaner)? else {
            return Ok(None);
        };
        let cleaned = job.clean()?;
        self.finish_compaction(cleaned).map(Some)
    }

    /// The cleaner checkpoint: offsets below it have been through the offset map.
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.cleaner_checkpoint
    }

    pub(crate) fn persist_cleaner_checkpoint(&self) -> Result<(), LogError> {
        crate::checkpoint::write(
            &self.dir.join(CLEANER_OFFSET_CHECKPOINT_FILE),
            &[self.cleaner_checkpoint.to_string()],
        )
    }
}

impl CompactionJob {
    /// Builds the offset map and writes the cleaned segments as `.cleaned` files (fsynced).
    /// Blocking I/O; needs no lock on the log. On error the files written so far are removed.
    pub fn clean(mut self) -> Result<CleanedLog, LogError> {
        let mut stats = CompactionStats {
            first_dirty_offset: self.first_dirty,
            ..CompactionStats::default()
        };
        let producers = self.scan_producers()?;
        let (map, end_offset, range) = self.build_offset_map(&producers)?;
        stats.end_offset = end_offset;
        let groups = self.group_segments(range);
        let mut cleaned = CleanedLog {
            dir: self.dir.clone(),
            outputs: Vec::new(),
            end_offset,
            pending_delete_horizon: NO_TIMESTAMP,
            generation: self.generation,
            now_ms: self.now_ms,
            stats: CompactionStats::default(),
            // The log stays marked as being cleaned until the result is finished or dropped.
            _guard: self.guard.take().expect("set by prepare_compaction"),
        };
        let mut filter = Filter {
            map: &map,
            end_offset,
            now_ms: self.now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            producers: &producers,
            group_end: 0,
            pending_delete_horizon: NO_TIMESTAMP,
        };
        for group in groups {
            let out = self.clean_group(&self.segments[group.clone()], &mut filter, &mut stats);
            match out {
                Ok(out) => cleaned.outputs.push(out),
                Err(e) => {
                    remove_files_with_suffix(
                        &self.dir,
                        self.segments[group.start].base,
                        CLEANED_SUFFIX,
                    );
                    return Err(e);
                }
            }
        }
        cleaned.pending_delete_horizon = filter.pending_delete_horizon;
        cleaned.stats = stats;
        Ok(cleaned)
    }

    /// The offset map over the dirty segments, the offset where it ends, and the segments to
    /// rewrite (indexes into `self.segments`).
    fn build_offset_map(
        &self,
        producers: &Producers,
    ) -> Result<(OffsetMap, i64, std::ops::Range<usize>), LogError> {
        let mut map = OffsetMap::new(self.cleaner.dedupe_buffer_bytes);
        let mut end_offset = self.first_dirty;
        let mut range_end = 0;
        for (i, seg) in self.segments[..self.cleanable].iter().enumerate() {
            if seg.upper <= self.first_dirty {
                range_end = i + 1;
                continue;
            }
            if map.is_full() {
                break;
            }
            range_end = i + 1;
            end_offset = seg.upper;
            let mut batches = SegmentBatches::new(seg);
            while let Some((pos, batch)) = batches.next()? {
                if batch.last_offset() < self.first_dirty
                    || batch.is_control()
                    || producers.txn_state(&batch) != TxnState::Committed
                {
                    continue;
                }
                let payload = batch.records_payload().map_err(|e| corrupt(seg, pos, e))?;
                for record in batch.records(&payload) {
                    let record = record.map_err(|e| corrupt(seg, pos, e))?;
                    let offset = batch.base_offset() + i64::from(record.offset_delta);
                    if let (Some(key), true) = (record.key, offset >= self.first_dirty) {
                        map.put(key, offset);
                    }
                }
                if map.is_full() {
                    end_offset = batch.next_offset();
                    break;
                }
            }
        }
        Ok((map, end_offset, 0..range_end))
    }

    /// Walks the batch headers of the whole log as snapshotted (and the records of control
    /// batches): each producer's last batch, and which transactions were aborted or are open.
    fn scan_producers(&self) -> Result<Producers, LogError> {
        let mut p = Producers::default();
        let mut open: HashMap<i64, i64> = HashMap::new();
        for seg in &self.segments {
            let mut pos = 0u64;
            let mut buf = [0u8; HEADER_SIZE];
            while pos + HEADER_SIZE as u64 <= seg.size {
                seg.file
                    .read_exact_at(&mut buf, pos)
                    .ctx(&seg.path, "read")?;
                let h = BatchHeader::parse(&buf).expect("a whole header");
                let Some(size) = h.size_in_bytes().filter(|s| pos + *s as u64 <= seg.size) else {
                    break;
                };
                if h.producer_id >= 0 {
                    p.last_batch.insert(h.producer_id, h.last_offset());
                }
                if h.attributes & CONTROL_BIT != 0 {
                    let mut batch = vec![0u8; size];
                    seg.file
                        .read_exact_at(&mut batch, pos)
                        .ctx(&seg.path, "read")?;
                    let abort = control_type(&batch).map_err(|e| corrupt(seg, pos, e))? == Some(0);
                    if let Some(first) = open.remove(&h.producer_id) {
                        if abort {
                            p.aborted
                                .entry(h.producer_id)
                                .or_default()
                                .push((first, h.base_offset));
                        }
                    }
                } else if h.attributes & TRANSACTIONAL_BIT != 0 {
                    open.entry(h.producer_id).or_insert(h.base_offset);
                }
                pos += size as u64;
            }
        }
        p.open = open;
        Ok(p)
    }

    /// Consecutive segments whose sizes add up to at most segment.bytes and whose offsets fit
    /// one segment's relative offsets (Kafka's `groupSegmentsBySize`).
    fn group_segments(&self, range: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
        let max_bytes = self.config.effective_segment_bytes();
        let segs = &self.segments;
        let mut groups = Vec::new();
        let mut i = range.start;
        while i < range.end {
            let start = i;
            let mut size = segs[i].size;
            i += 1;
            while i < range.end
                && size + segs[i].size <= max_bytes
                && segs[i].upper - 1 - segs[start].base <= i64::from(i32::MAX)
            {
                size += segs[i].size;
                i += 1;
            }
            groups.push(start..i);
        }
        groups
    }

    fn clean_group(
        &self,
        group: &[SegmentSnapshot],
        filter: &mut Filter<'_>,
        stats: &mut CompactionStats,
    ) -> Result<CleanedSegment, LogError> {
        let base = group[0].base;
        filter.group_end = group.iter().map(|s| s.next_offset).max().unwrap_or(base);
        let group_bytes: u64 = group.iter().map(|s| s.size).sum();
        // The cleaned segment's index is sized for its data (it is trimmed afterwards).
        let entries = group_bytes / u64::from(self.index_cfg.index_interval_bytes.max(1)) + 2;
        let cfg = IndexConfig {
            max_index_bytes: self
                .index_cfg
                .max_index_bytes
                .max((entries * 12).min(u64::from(u32::MAX / 2)) as u32),
            index_interval_bytes: self.index_cfg.index_interval_bytes,
        };
        let mut out = LogSegment::create_with_suffix(&self.dir, base, cfg, CLEANED_SUFFIX)?;
        let mut pending = Vec::new();
        for seg in group {
            let mut batches = SegmentBatches::new(seg);
            while let Some((pos, batch)) = batches.next()? {
                stats.bytes_read += batch.size_in_bytes() as u64;
                filter
                    .filter_batch(&batch, &mut pending, stats)
                    .map_err(|e| corrupt(seg, pos, e))?;
                if pending.len() >= WRITE_CHUNK {
                    out.append(&pending, cfg, self.now_ms)?;
                    stats.bytes_written += pending.len() as u64;
                    pending.clear();
                }
            }
        }
        if !pending.is_empty() {
            out.append(&pending, cfg, self.now_ms)?;
            stats.bytes_written += pending.len() as u64;
        }
        out.on_become_inactive()?;
        out.flush()?;
        // Keep the replaced segments' modification time (retention of batches without timestamps
        // and the legacy delete horizon go by it).
        if let Some(modified) = group.last().and_then(|s| s.modified) {
            let path = out.log_path().to_path_buf();
            File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(modified))
                .ctx(&path, "set modification time of")?;
        }
        drop(out);
        stats.segments_replaced += group.len();
        stats.segments_written += 1;
        Ok(CleanedSegment {
            base,
            replaced: group.iter().map(|s| s.base).collect(),
        })
    }
}

/// The record-level rules of a pass.
struct Filter<'a> {
    map: &'a OffsetMap,
    end_offset: i64,
    now_ms: i64,
    delete_retention_ms: i64,
    producers: &'a Producers,
    /// The offset after the last batch of the group being cleaned.
    group_end: i64,
    /// The latest delete horizon of a tombstone kept so far that has not passed yet.
    pending_delete_horizon: i64,
}

impl Filter<'_> {
    /// Appends what is kept of `batch` to `out`.
    fn filter_batch(
        &mut self,
        batch: &RecordBatch<'_>,
        out: &mut Vec<u8>,
        stats: &mut CompactionStats,
    ) -> Result<(), BatchError> {
        let count = batch.records_count().max(0) as u64;
        stats.records_read += count;
        if batch.is_control() {
            stats.records_retained += count;
            out.extend_from_slice(batch.as_bytes());
            return Ok(());
        }
        let txn = self.producers.txn_state(batch);
        if txn == TxnState::Open {
            // Undecided: neither in the map nor filtered (Kafka never cleans past the LSO).
            stats.records_retained += count;
            out.extend_from_slice(batch.as_bytes());
            return Ok(());
        }
        let payload = batch.records_payload()?;
        let horizon = batch.delete_horizon_ms();
        let retain_deletes = horizon.is_none_or(|h| self.now_ms < h);
        let mut kept: Vec<Record<'_>> = Vec::new();
        let mut removed_any = false;
        let mut tombstones = false;
        let mut seen = 0u64;
        for record in batch.records(&payload) {
            let record = record?;
            seen += 1;
            let offset = batch.base_offset() + i64::from(record.offset_delta);
            let keep = txn == TxnState::Committed
                && (offset >= self.end_offset
                    || record.key.is_some_and(|key| {
                        let latest = self.map.get(key).is_none_or(|o| offset >= o);
                        latest && (record.value.is_some() || retain_deletes)
                    }));
            if keep {
                tombstones |= record.value.is_none();
                kept.push(record);
            } else {
                removed_any = true;
            }
        }
        if seen != count {
            return Err(BatchError::corrupt(
                0,
                format!("batch claims {count} records, {seen} found"),
            ));
        }
        stats.records_retained += kept.len() as u64;
        if !kept.is_empty() {
            let needs_horizon = tombstones && horizon.is_none();
            let horizon = if needs_horizon {
                Some(self.now_ms.saturating_add(self.delete_retention_ms))
            } else {
                horizon
            };
            if let (true, Some(h)) = (tombstones, horizon) {
                if h > self.now_ms {
                    self.pending_delete_horizon = self.pending_delete_horizon.max(h);
                }
            }
            if !removed_any && !needs_horizon {
                out.extend_from_slice(batch.as_bytes());
            } else {
                write_retained(batch, &kept, horizon, out);
            }
            return Ok(());
        }
        let last_of_producer = batch.has_producer_id()
            && self.producers.last_batch.get(&batch.producer_id()) == Some(&batch.last_offset());
        if last_of_producer || batch.next_offset() == self.group_end {
            write_empty(batch, out);
        }
        Ok(())
    }
}

/// What the cleaner knows of producers and transactions.
#[derive(Debug, Default)]
struct Producers {
    /// producer id → last offset of its last batch in the log.
    last_batch: HashMap<i64, i64>,
    /// producer id → aborted transactions as [first offset, marker offset).
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    /// producer id → first offset of its transaction without a marker yet.
    open: HashMap<i64, i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    /// Not transactional, or its transaction committed.
    Committed,
    Aborted,
    /// Its transaction has no marker yet.
    Open,
}

impl Producers {
    fn txn_state(&self, batch: &RecordBatch<'_>) -> TxnState {
        if !batch.is_transactional() || batch.is_control() {
            return TxnState::Committed;
        }
        let (pid, base) = (batch.producer_id(), batch.base_offset());
        let aborted = self
            .aborted
            .get(&pid)
            .is_some_and(|r| r.iter().any(|(first, end)| (*first..*end).contains(&base)));
        if aborted {
            TxnState::Aborted
        } else if self.open.get(&pid).is_some_and(|first| base >= *first) {
            TxnState::Open
        } else {
            TxnState::Committed
        }
    }
}

/// The type of a control batch's first record (key: version i16, type i16; 0 = abort,
/// 1 = commit); `None` when it has no record or a short key.
fn control_type(batch: &[u8]) -> Result<Option<i16>, BatchError> {
    let batch = RecordBatch::from_prefix(batch)?;
    let payload = batch.records_payload()?;
    let first = batch.records(&payload).next().transpose()?;
    Ok(first
        .and_then(|r| r.key)
        .filter(|k| k.len() >= 4)
        .map(|k| i16::from_be_bytes([k[2], k[3]])))
}

/// A new batch holding `kept` (records of `orig`), as Kafka's `buildRetainedRecordsInto`.
fn write_retained(
    orig: &RecordBatch<'_>,
    kept: &[Record<'_>],
    horizon: Option<i64>,
    out: &mut Vec<u8>,
) {
    let timestamp = |r: &Record<'_>| orig.base_timestamp().wrapping_add(r.timestamp_delta);
    let base_timestamp = horizon.unwrap_or_else(|| timestamp(&kept[0]));
    let max_timestamp = match orig.timestamp_type() {
        TimestampType::LogAppendTime => orig.max_timestamp(),
        TimestampType::CreateTime => kept.iter().map(timestamp).max().unwrap_or(NO_TIMESTAMP),
    };
    let mut payload = Vec::new();
    let mut body = Vec::new();
    for r in kept {
        body.clear();
        body.push(r.attributes as u8);
        put_varlong(&mut body, timestamp(r).wrapping_sub(base_timestamp));
        put_varint(&mut body, r.offset_delta);
        put_nullable_bytes(&mut body, r.key);
        put_nullable_bytes(&mut body, r.value);
        put_varint(&mut body, r.headers.len() as i32);
        for h in &r.headers {
            put_nullable_bytes(&mut body, Some(h.key));
            put_nullable_bytes(&mut body, h.value);
        }
        put_varint(&mut payload, body.len() as i32);
        payload.extend_from_slice(&body);
    }
    let codec = orig.compression().unwrap_or(Compression::None);
    let xerial = codec == Compression::Snappy && compression::is_xerial(orig.raw_records());
    let payload = match codec {
        Compression::None => payload,
        c => compression::compress(c, &payload, xerial),
    };
    let mut attributes = orig.attributes();
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    } else {
        attributes &= !DELETE_HORIZON_BIT;
    }
    write_batch(
        out,
        orig,
        BatchFields {
            attributes,
            base_timestamp,
            max_timestamp,
            records_count: kept.len() as i32,
        },
        &payload,
    );
}

/// Kafka's `writeEmptyHeader`: the batch's offsets and producer fields, no records.
fn write_empty(orig: &RecordBatch<'_>, out: &mut Vec<u8>) {
    let keep = TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | CONTROL_BIT;
    write_batch(
        out,
        orig,
        BatchFields {
            attributes: orig.attributes() & keep,
            base_timestamp: NO_TIMESTAMP,
            max_timestamp: orig.max_timestamp(),
            records_count: 0,
        },
        &[],
    );
}

/// The header fields a cleaned batch does not take from the original.
struct BatchFields {
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    records_count: i32,
}

fn write_batch(out: &mut Vec<u8>, orig: &RecordBatch<'_>, f: BatchFields, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&orig.base_offset().to_be_bytes());
    out.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + payload.len()) as i32).to_be_bytes());
    out.extend_from_slice(&orig.partition_leader_epoch().to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&[0; 4]); // crc, below
    out.extend_from_slice(&f.attributes.to_be_bytes());
    out.extend_from_slice(&orig.last_offset_delta().to_be_bytes());
    out.extend_from_slice(&f.base_timestamp.to_be_bytes());
    out.extend_from_slice(&f.max_timestamp.to_be_bytes());
    out.extend_from_slice(&orig.producer_id().to_be_bytes());
    out.extend_from_slice(&orig.producer_epoch().to_be_bytes());
    out.extend_from_slice(&orig.base_sequence().to_be_bytes());
    out.extend_from_slice(&f.records_count.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + crate::batch::ATTRIBUTES_OFFSET..]);
    out[start + crate::batch::CRC_OFFSET..start + crate::batch::CRC_OFFSET + 4]
        .copy_from_slice(&crc.to_be_bytes());
}

fn put_nullable_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// key → offset of its latest record, with the memory it uses estimated.
#[derive(Debug)]
struct OffsetMap {
    map: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    budget: usize,
}

impl OffsetMap {
    fn new(budget: usize) -> OffsetMap {
        OffsetMap {
            map: HashMap::new(),
            bytes: 0,
            budget,
        }
    }

    fn put(&mut self, key: &[u8], offset: i64) {
        if let Some(o) = self.map.get_mut(key) {
            *o = offset;
        } else {
            self.bytes += key.len() + MAP_ENTRY_OVERHEAD;
            self.map.insert(key.into(), offset);
        }
    }

    fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(key).copied()
    }

    fn is_full(&self) -> bool {
        self.bytes >= self.budget
    }
}

/// Reads the whole batches of a snapshotted segment in chunks, checking each batch's length and
/// CRC (data is copied into new segments, so corruption must not travel).
struct SegmentBatches<'a> {
    seg: &'a SegmentSnapshot,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_pos: u64,
    /// Position in `buf` of the next batch.
    at: usize,
}

impl<'a> SegmentBatches<'a> {
    fn new(seg: &'a SegmentSnapshot) -> SegmentBatches<'a> {
        SegmentBatches {
            seg,
            buf: Vec::new(),
            buf_pos: 0,
            at: 0,
        }
    }

    /// The next batch and its file position.
    fn next(&mut self) -> Result<Option<(u64, RecordBatch<'_>)>, LogError> {
        let pos = self.buf_pos + self.at as u64;
        if pos >= self.seg.size {
            return Ok(None);
        }
        if self.buf.len() - self.at < LOG_OVERHEAD {
            self.fill(pos, LOG_OVERHEAD)?;
        }
        let len = be_i32(&self.buf[self.at..], crate::batch::BATCH_LENGTH_OFFSET);
        let size = usize::try_from(len)
            .ok()
            .filter(|l| *l >= MIN_BATCH_LENGTH)
            .map(|l| l + LOG_OVERHEAD)
            .filter(|s| pos + *s as u64 <= self.seg.size)
            .ok_or_else(|| {
                corrupt(
                    self.seg,
                    pos,
                    BatchError::corrupt(0, format!("batchLength {len} does not fit the segment")),
                )
            })?;
        if self.buf.len() - self.at < size {
            self.fill(pos, size)?;
        }
        let at = self.at;
        self.at += size;
        let batch = RecordBatch::from_prefix(&self.buf[at..at + size])
            .map_err(|e| corrupt(self.seg, pos, e))?;
        if !batch.is_valid() {
            return Err(corrupt(
                self.seg,
                pos,
                BatchError::corrupt(0, "CRC mismatch or magic other than 2"),
            ));
        }
        Ok(Some((pos, batch)))
    }

    /// Reads from `pos` at least `min` bytes (more when the segment has them).
    fn fill(&mut self, pos: u64, min: usize) -> Result<(), LogError> {
        let left = (self.seg.size - pos) as usize;
        if left < min {
            return Err(corrupt(
                self.seg,
                pos,
                BatchError::corrupt(0, "truncated record batch"),
            ));
        }
        let n = min.max(READ_CHUNK).min(left);
        self.buf.resize(n, 0);
        self.seg
            .file
            .read_exact_at(&mut self.buf, pos)
            .ctx(&self.seg.path, "read")?;
        self.buf_pos = pos;
        self.at = 0;
        Ok(())
    }
}

fn corrupt(seg: &SegmentSnapshot, position: u64, source: BatchError) -> LogError {
    LogError::CorruptSegment {
        path: seg.path.clone(),
        position,
        source,
    }
}

/// `dir/<base:020><suffix><extra>`.
fn suffixed(dir: &Path, base: i64, suffix: &str, extra: &str) -> PathBuf {
    let mut p = segment_file(dir, base, suffix).into_os_string();
    p.push(extra);
    PathBuf::from(p)
}

fn rename_suffixed(
    dir: &Path,
    base: i64,
    suffix: &str,
    from: &str,
    to: &str,
) -> Result<(), LogError> {
    let src = suffixed(dir, base, suffix, from);
    fs::rename(&src, suffixed(dir, base, suffix, to)).ctx(&src, "rename")
}

/// Best effort: the files may not exist (and the directory may be gone with a deleted topic).
fn remove_files_with_suffix(dir: &Path, base: i64, extra: &str) {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let _ = fs::remove_file(suffixed(dir, base, suffix, extra));
    }
}

fn fsync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(dir, "fsync directory")
}

fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, "delete", e)),
    }
}

/// At open, before segments are loaded: completes every committed swap and removes what an
/// uncommitted one left (see the module docs).
pub(crate) fn complete_interrupted_swaps(dir: &Path) -> Result<(), LogError> {
    let mut log_swaps = Vec::new();
    let mut other_swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir).ctx(dir, "list log directory")? {
        let entry = entry.ctx(dir, "list log directory")?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            match crate::log::parse_segment_name(stem, LOG_SUFFIX) {
                Some(base) => log_swaps.push(base),
                None => other_swaps.push(path),
            }
        } else if name.ends_with(CLEANED_SUFFIX) {
            tracing::info!(file = %path.display(), "removing uncommitted cleaned segment file");
            remove_if_exists(&path)?;
        } else if let Some(base) = crate::log::parse_segment_name(name, LOG_SUFFIX) {
            logs.push(base);
        }
    }
    log_swaps.sort_unstable();
    for base in log_swaps {
        let swap = suffixed(dir, base, LOG_SUFFIX, SWAP_SUFFIX);
        let end = next_offset_of_file(&swap)?.max(base + 1);
        for &old in logs.iter().filter(|o| (base..end).contains(*o)) {
            tracing::info!(dir = %dir.display(), base = old, "deleting segment replaced by an interrupted swap");
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove_if_exists(&segment_file(dir, old, suffix))?;
            }
        }
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let p = suffixed(dir, base, suffix, SWAP_SUFFIX);
            if p.exists() {
                fs::rename(&p, segment_file(dir, base, suffix)).ctx(&p, "rename")?;
            }
        }
        tracing::info!(dir = %dir.display(), base, "completing interrupted swap of a cleaned segment");
        fs::rename(&swap, segment_file(dir, base, LOG_SUFFIX)).ctx(&swap, "rename")?;
    }
    for p in other_swaps {
        remove_if_exists(&p)?;
    }
    Ok(())
}

/// The offset after the last whole batch of a segment file (`i64::MIN` when it has none).
fn next_offset_of_file(path: &Path) -> Result<i64, LogError> {
    let file = File::open(path).ctx(path, "open")?;
    let len = file.metadata().ctx(path, "stat")?.len();
    let mut pos = 0u64;
    let mut next = i64::MIN;
    let mut buf = [0u8; HEADER_SIZE];
    while pos + HEADER_SIZE as u64 <= len {
        file.read_exact_at(&mut buf, pos).ctx(path, "read")?;
        let h = BatchHeader::parse(&buf).expect("a whole header");
        match h.size_in_bytes() {
            Some(size) if pos + size as u64 <= len => {
                next = h.next_offset();
                pos += size as u64;
            }
            _ => break,
        }
    }
    Ok(next)
}
