//! One segment: a `.log` file of whole record batches plus its `.index` and `.timeindex`.
//!
//! # Format
//! `<base offset, 20 digits>.log` holds record batches v2 back to back, exactly as on the wire.
//! Every batch's offsets are >= the segment's base offset and increase from batch to batch;
//! relative offsets (offset − base offset) fit in 32 bits and positions fit in 31 bits, which the
//! log guarantees by rolling first.
//!
//! # Invariants
//! - `size` is the end of the last whole batch; bytes past it (a torn write) are never read and
//!   are truncated by recovery.
//! - Data is read with `pread` only; the indexes are the only mapped files.
//! - `max_timestamp`/`offset_of_max_timestamp` cover every batch; `next_offset` is the last
//!   batch's last offset + 1 (the base offset when empty).
//!
//! Not thread-safe; the owning [`crate::Log`] is used behind a mutex.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::batch::{batches, BatchHeader, RecordBatch, HEADER_SIZE, MAGIC_V2, NO_TIMESTAMP};
use crate::error::{IoContext, LogError};
use crate::index::{OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset};

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Chunk size for CRC checks during recovery, so a corrupt length never sizes an allocation.
const CRC_CHUNK: usize = 64 * 1024;

/// First read size when serving a fetch; doubles while more is wanted.
const READ_CHUNK: usize = 64 * 1024;

/// `dir/<base offset as 20 digits><suffix>`.
pub(crate) fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// Index settings a segment needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexConfig {
    pub(crate) max_index_bytes: u32,
    pub(crate) index_interval_bytes: u32,
}

/// How [`LogSegment::open`] treats an existing segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Check every batch, truncate at the first bad one, rebuild the indexes.
    Recover,
    /// Trust the data (flushed before the last clean point); check the indexes cheaply.
    Load,
}

/// How to rebuild a segment's indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Check magic, lengths, offsets and CRC of every batch; truncate the file at the first bad one.
    Recover,
    /// Trust the batches (already checked); read headers only; stop at a torn tail.
    Rebuild,
}

/// Batches read from one segment.
#[derive(Debug, Default)]
pub(crate) struct SegmentRead {
    pub(crate) records: Vec<u8>,
    pub(crate) first_offset: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    file: File,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_last_index_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    next_offset: i64,
    /// Time the segment's age is measured from for segment.ms: when the first batch was appended,
    /// or for a segment loaded from disk its first batch's maxTimestamp (the open time when that
    /// is not set). Meaningless while the segment is empty.
    rolling_base_ms: i64,
    dirty: bool,
}

impl LogSegment {
    /// Creates an empty segment (replacing any files of the same name).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        cfg: IndexConfig,
    ) -> Result<LogSegment, LogError> {
        LogSegment::create_with_suffix(dir, base_offset, cfg, "")
    }

    /// Creates an empty segment whose three file names end with `extra` after the usual suffix
    /// (the cleaner writes `<base>.log.cleaned`, `<base>.index.cleaned`, ...).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        cfg: IndexConfig,
        extra: &str,
    ) -> Result<LogSegment, LogError> {
        let with_extra = |suffix: &str| {
            let mut p = segment_file(dir, base_offset, suffix).into_os_string();
            p.push(extra);
            PathBuf::from(p)
        };
        let log_path = with_extra(LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .ctx(&log_path, "create segment")?;
        Ok(LogSegment {
            base_offset,
            file,
            size: 0,
            offset_index: OffsetIndex::create(
                &with_extra(INDEX_SUFFIX),
                base_offset,
                cfg.max_index_bytes,
            )?,
            time_index: TimeIndex::create(
                &with_extra(TIME_INDEX_SUFFIX),
                base_offset,
                cfg.max_index_bytes,
            )?,
            log_path,
            bytes_since_last_index_entry: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            next_offset: base_offset,
            rolling_base_ms: i64::MAX,
            dirty: true,
        })
    }

    /// Loads an existing segment. With [`OpenMode::Recover`] every batch is checked, the file
    /// truncated at the first bad one and the indexes rebuilt (left preallocated, as for an active
    /// segment); with [`OpenMode::Load`] the indexes are kept when they look consistent and
    /// rebuilt otherwise, and left trimmed. Returns the segment and how many bytes recovery
    /// truncated.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        next_base_offset: Option<i64>,
        mode: OpenMode,
        cfg: IndexConfig,
        now_ms: i64,
    ) -> Result<(LogSegment, u64), LogError> {
        let active = mode == OpenMode::Recover;
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let index_path = segment_file(dir, base_offset, INDEX_SUFFIX);
        let time_index_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .ctx(&log_path, "open segment")?;
        let size = file.metadata().ctx(&log_path, "stat segment")?.len();

        let existing = if active {
            None
        } else {
            match (
                OffsetIndex::open_trimmed(&index_path, base_offset)?,
                TimeIndex::open_trimmed(&time_index_path, base_offset)?,
            ) {
                (Some(oi), Some(ti))
                    if oi.looks_sane(next_base_offset, size)
                        && ti.looks_sane(next_base_offset, size)
                        && (size == 0 || (oi.entries() > 0 && ti.entries() > 0)) =>
                {
                    Some((oi, ti))
                }
                _ => None,
            }
        };
        let (offset_index, time_index, trusted) = match existing {
            Some((oi, ti)) => (oi, ti, true),
            None => (
                OffsetIndex::create(&index_path, base_offset, cfg.max_index_bytes)?,
                TimeIndex::create(&time_index_path, base_offset, cfg.max_index_bytes)?,
                false,
            ),
        };
        let mut seg = LogSegment {
            base_offset,
            log_path,
            file,
            size,
            offset_index,
            time_index,
            bytes_since_last_index_entry: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            next_offset: base_offset,
            rolling_base_ms: now_ms,
            dirty: false,
        };
        let mut truncated = 0;
        if active {
            truncated = seg.rebuild(Scan::Recover, cfg)?;
        } else if trusted {
            if let Some(last) = seg.time_index.last_entry() {
                seg.max_timestamp = last.timestamp;
                seg.offset_of_max_timestamp = last.offset;
            }
            // The batches after the last offset-index entry give the next offset.
            let from = u64::from(seg.offset_index.lookup_position(i64::MAX));
            let mut next = seg.base_offset;
            seg.scan_headers(from, |_, h, _| {
                next = h.next_offset();
                Ok(true)
            })?;
            seg.next_offset = next;
        } else {
            tracing::info!(segment = %seg.log_path.display(), "rebuilding missing or inconsistent indexes");
            seg.rebuild(Scan::Rebuild, cfg)?;
            seg.on_become_inactive()?;
        }
        if let Some(first) = seg.read_header(0)? {
            if first.max_timestamp >= 0 {
                seg.rolling_base_ms = first.max_timestamp;
            }
        }
        Ok((seg, truncated))
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub(crate) fn rolling_base_ms(&self) -> i64 {
        self.rolling_base_ms
    }

    /// The `.log` file.
    /// The segment's `.log`, `.index` and `.timeindex` files if it has writes not yet fsynced.
    pub(crate) fn unflushed_files(&self) -> Option<[PathBuf; 3]> {
        self.dirty.then(|| {
            [
                self.log_path.clone(),
                self.offset_index.path().to_path_buf(),
                self.time_index.path().to_path_buf(),
            ]
        })
    }

    /// Someone else fsynced the segment's files (see [`crate::Log::rolled_unflushed`]).
    pub(crate) fn mark_flushed(&mut self) {
        self.dirty = false;
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The first batch's maxTimestamp (Kafka's `getFirstBatchTimestamp`), `None` when the segment
    /// is empty or the batch has no timestamp.
    pub(crate) fn first_batch_timestamp(&self) -> Result<Option<i64>, LogError> {
        Ok(self
            .read_header(0)?
            .map(|h| h.max_timestamp)
            .filter(|t| *t >= 0))
    }

    /// Whether another index entry of either kind would not fit.
    pub(crate) fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Kafka's `largestTimestamp`: the largest record timestamp, or the file's modification time
    /// when no batch has a timestamp. `i64::MAX` when even that is unknown, so retention keeps it.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| d.as_millis() as i64)
    }

    /// Appends already validated batches with final offsets at the end of the file, adding index
    /// entries every `index_interval_bytes`.
    pub(crate) fn append(
        &mut self,
        records: &[u8],
        cfg: IndexConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let start = self.size;
        if start == 0 {
            self.rolling_base_ms = now_ms;
        }
        if let Err(e) = self.file.write_all_at(records, start) {
            // Best effort: drop a partial write so it is not mistaken for data later.
            let _ = self.file.set_len(start);
            return Err(LogError::io(&self.log_path, "append to", e));
        }
        self.dirty = true;
        let mut pos = start;
        for batch in batches(records) {
            let size = batch.size_in_bytes() as u64;
            self.index_batch(pos, &batch.header(), size, cfg);
            pos += size;
        }
        self.size = pos;
        Ok(())
    }

    fn index_batch(&mut self, position: u64, h: &BatchHeader, size: u64, cfg: IndexConfig) {
        let last_offset = h.last_offset();
        if self.offset_of_max_timestamp < 0 || h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        if self.bytes_since_last_index_entry > u64::from(cfg.index_interval_bytes) {
            self.offset_index.append(OffsetPosition {
                offset: last_offset,
                position: position as u32,
            });
            if self.max_timestamp >= 0 {
                self.time_index.append(TimestampOffset {
                    timestamp: self.max_timestamp,
                    offset: self.offset_of_max_timestamp,
                });
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += size;
        self.next_offset = h.next_offset();
    }

    /// Empties and preallocates the indexes, then walks the batches from the start to refill them
    /// and the in-memory state. Returns the bytes truncated (only [`Scan::Recover`] truncates).
    fn rebuild(&mut self, scan: Scan, cfg: IndexConfig) -> Result<u64, LogError> {
        self.offset_index.clear();
        self.time_index.clear();
        self.offset_index.preallocate(cfg.max_index_bytes)?;
        self.time_index.preallocate(cfg.max_index_bytes)?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp = NO_TIMESTAMP;
        self.offset_of_max_timestamp = -1;
        self.next_offset = self.base_offset;
        let file_size = self
            .file
            .metadata()
            .ctx(&self.log_path, "stat segment")?
            .len();
        self.size = file_size;
        let mut pos = 0u64;
        let mut crc_buf = Vec::new();
        while let Some(h) = self.read_header(pos)? {
            let Some(batch_size) = h.size_in_bytes().map(|s| s as u64) else {
                break;
            };
            if pos + batch_size > file_size {
                break;
            }
            if scan == Scan::Recover {
                if let Some(reason) = self.check_batch(pos, &h, batch_size, &mut crc_buf)? {
                    tracing::warn!(
                        partition = %self.log_path.parent().map(crate::log::topic_partition).unwrap_or_default(),
                        segment = %self.log_path.display(),
                        position = pos,
                        reason,
                        "truncating log at invalid record batch"
                    );
                    break;
                }
            }
            self.index_batch(pos, &h, batch_size, cfg);
            pos += batch_size;
        }
        self.size = pos;
        let truncated = file_size - pos;
        if scan == Scan::Recover && truncated > 0 {
            self.file
                .set_len(pos)
                .ctx(&self.log_path, "truncate segment")?;
            self.dirty = true;
        }
        Ok(truncated)
    }

    /// Why the batch at `pos` is not acceptable during recovery, if it is not.
    fn check_batch(
        &self,
        pos: u64,
        h: &BatchHeader,
        size: u64,
        crc_buf: &mut Vec<u8>,
    ) -> Result<Option<String>, LogError> {
        if h.magic != MAGIC_V2 {
            return Ok(Some(format!("magic {}", h.magic)));
        }
        if h.last_offset_delta < 0 || h.records_count < 0 {
            return Ok(Some("negative lastOffsetDelta or recordsCount".into()));
        }
        if h.base_offset < self.next_offset {
            return Ok(Some(format!(
                "baseOffset {} below the expected {}",
                h.base_offset, self.next_offset
            )));
        }
        if h.last_offset() - self.base_offset > i64::from(i32::MAX) {
            return Ok(Some("offset too far from the segment's base offset".into()));
        }
        if pos + size > u64::from(i32::MAX as u32) {
            return Ok(Some("position beyond 2 GiB".into()));
        }
        crc_buf.resize(CRC_CHUNK, 0);
        let mut crc = 0u32;
        let mut at = pos + crate::batch::ATTRIBUTES_OFFSET as u64;
        let end = pos + size;
        while at < end {
            let n = ((end - at) as usize).min(CRC_CHUNK);
            self.file
                .read_exact_at(&mut crc_buf[..n], at)
                .ctx(&self.log_path, "read")?;
            crc = crc32c::crc32c_append(crc, &crc_buf[..n]);
            at += n as u64;
        }
        if crc != h.crc {
            return Ok(Some(format!(
                "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
                h.crc
            )));
        }
        Ok(None)
    }

    /// The header of the batch at `pos`, or `None` when fewer than a header's bytes remain.
    fn read_header(&self, pos: u64) -> Result<Option<BatchHeader>, LogError> {
        if pos + HEADER_SIZE as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_SIZE];
        self.file
            .read_exact_at(&mut buf, pos)
            .ctx(&self.log_path, "read")?;
        Ok(BatchHeader::parse(&buf))
    }

    /// Calls `f(position, header, size)` for each whole batch from `pos` on, while it returns true.
    fn scan_headers(
        &self,
        mut pos: u64,
        mut f: impl FnMut(u64, &BatchHeader, u64) -> Result<bool, LogError>,
    ) -> Result<(), LogError> {
        while let Some(h) = self.read_header(pos)? {
            let Some(size) = h.size_in_bytes().map(|s| s as u64) else {
                break;
            };
            if pos + size > self.size || !f(pos, &h, size)? {
                break;
            }
            pos += size;
        }
        Ok(())
    }

    /// The position and header of the first batch whose last offset is >= `target`.
    pub(crate) fn translate_offset(
        &self,
        target: i64,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let start = u64::from(self.offset_index.lookup_position(target));
        let mut found = None;
        self.scan_headers(start, |pos, h, _| {
            if h.last_offset() >= target {
                found = Some((pos, *h));
                Ok(false)
            } else {
                Ok(true)
            }
        })?;
        Ok(found)
    }

    /// Whole batches starting with the one containing `start_offset` (see [`crate::Log::read`]).
    /// `None` when no batch of this segment has an offset >= `start_offset`.
    pub(crate) fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<SegmentRead>, LogError> {
        let Some((pos, first)) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        if first.base_offset >= max_offset {
            return Ok(Some(SegmentRead::default()));
        }
        // Read in growing chunks so that a large max_bytes with a near max_offset (a consumer
        // close to the high watermark) does not read or allocate far more than it returns.
        let limit = (max_bytes as u64).min(self.size - pos) as usize;
        let mut buf = Vec::new();
        let mut end = 0;
        let mut chunk = READ_CHUNK;
        loop {
            let mut it = batches(&buf[end..]);
            let mut reached_max_offset = false;
            let mut accepted = end;
            while let Some(b) = it.next() {
                if b.base_offset() >= max_offset {
                    reached_max_offset = true;
                    break;
                }
                accepted = end + it.position();
            }
            end = accepted;
            if reached_max_offset || buf.len() >= limit {
                break;
            }
            let target = (buf.len() + chunk).min(limit);
            let from = buf.len();
            buf.resize(target, 0);
            self.file
                .read_exact_at(&mut buf[from..], pos + from as u64)
                .ctx(&self.log_path, "read")?;
            chunk = chunk.saturating_mul(2);
        }
        if end == 0 {
            if !min_one_batch {
                return Ok(Some(SegmentRead::default()));
            }
            let size = first
                .size_in_bytes()
                .expect("scanned batches have a valid size");
            buf = self.read_at(pos, size)?;
            end = size;
        }
        buf.truncate(end);
        Ok(Some(SegmentRead {
            records: buf,
            first_offset: Some(first.base_offset),
        }))
    }

    fn read_at(&self, pos: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, pos)
            .ctx(&self.log_path, "read")?;
        Ok(buf)
    }

    fn read_batch(&self, pos: u64, size: u64) -> Result<Vec<u8>, LogError> {
        self.read_at(pos, size as usize)
    }

    fn record_timestamps(&self, pos: u64, size: u64) -> Result<Vec<(i64, i64)>, LogError> {
        let buf = self.read_batch(pos, size)?;
        RecordBatch::from_prefix(&buf)
            .and_then(|b| b.record_timestamps())
            .map_err(|source| LogError::CorruptSegment {
                path: self.log_path.clone(),
                position: pos,
                source,
            })
    }

    /// The first record with offset >= `min_offset` and timestamp >= `target_ms`, as
    /// (offset, timestamp).
    pub(crate) fn find_offset_by_timestamp(
        &self,
        target_ms: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let entry = self.time_index.lookup_timestamp(target_ms);
        let start = u64::from(
            self.offset_index
                .lookup_position(entry.offset.max(min_offset)),
        );
        let mut candidate = None;
        let mut result = None;
        self.scan_headers(start, |pos, h, size| {
            if h.max_timestamp >= target_ms && h.last_offset() >= min_offset {
                candidate = Some((pos, size));
                return Ok(false);
            }
            Ok(true)
        })?;
        // Usually the first candidate batch has the record; keep looking if records below
        // min_offset were the only ones that matched.
        while let Some((pos, size)) = candidate.take() {
            let found = self
                .record_timestamps(pos, size)?
                .into_iter()
                .find(|&(o, ts)| o >= min_offset && ts >= target_ms);
            if found.is_some() {
                result = found;
                break;
            }
            self.scan_headers(pos + size, |p, h, s| {
                if h.max_timestamp >= target_ms && h.last_offset() >= min_offset {
                    candidate = Some((p, s));
                    return Ok(false);
                }
                Ok(true)
            })?;
        }
        Ok(result)
    }

    /// The first record holding this segment's largest timestamp, as (offset, timestamp).
    pub(crate) fn max_timestamp_record(&self) -> Result<Option<(i64, i64)>, LogError> {
        if self.size == 0 || self.max_timestamp < 0 {
            return Ok(None);
        }
        let start = u64::from(
            self.offset_index
                .lookup_position(self.offset_of_max_timestamp),
        );
        let mut batch = None;
        self.scan_headers(start, |pos, h, size| {
            if h.max_timestamp == self.max_timestamp {
                batch = Some((pos, size));
                return Ok(false);
            }
            Ok(true)
        })?;
        let Some((pos, size)) = batch else {
            return Ok(Some((self.offset_of_max_timestamp, self.max_timestamp)));
        };
        let found = self
            .record_timestamps(pos, size)?
            .into_iter()
            .find(|&(_, ts)| ts == self.max_timestamp);
        Ok(Some(found.unwrap_or((
            self.offset_of_max_timestamp,
            self.max_timestamp,
        ))))
    }

    /// Removes every batch with last offset >= `offset` (a batch containing `offset` goes whole)
    /// and rebuilds the indexes, leaving this segment ready to be the active one. Returns the
    /// bytes removed.
    pub(crate) fn truncate_to(&mut self, offset: i64, cfg: IndexConfig) -> Result<u64, LogError> {
        let cut = match self.translate_offset(offset)? {
            Some((pos, _)) => pos,
            None => self.size,
        };
        let removed = self.size - cut;
        self.file
            .set_len(cut)
            .ctx(&self.log_path, "truncate segment")?;
        self.dirty = true;
        self.rebuild(Scan::Rebuild, cfg)?;
        Ok(removed)
    }

    /// Called when a newer segment is rolled (and for older segments after a rebuild): records the
    /// final max timestamp in the time index and trims both indexes to their entries.
    pub(crate) fn on_become_inactive(&mut self) -> Result<(), LogError> {
        if self.max_timestamp >= 0 {
            let entry = TimestampOffset {
                timestamp: self.max_timestamp,
                offset: self.offset_of_max_timestamp,
            };
            if self.time_index.is_full()
                && self
                    .time_index
                    .last_entry()
                    .is_none_or(|l| l.timestamp < entry.timestamp)
            {
                let bytes = (self.time_index.entries() + 1) * 12;
                self.time_index.preallocate(bytes as u32)?;
            }
            self.time_index.append(entry);
        }
        self.offset_index.trim()?;
        self.time_index.trim()?;
        self.dirty = true;
        Ok(())
    }

    /// Trims both indexes to their entries (at close; the active segment is rebuilt at open).
    pub(crate) fn trim_indexes(&mut self) -> Result<(), LogError> {
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// fsyncs the data and the indexes when anything changed since the last flush.
    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        if !self.dirty {
            return Ok(());
        }
        self.file.sync_all().ctx(&self.log_path, "fsync")?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.dirty = false;
        Ok(())
    }

    /// Unmaps and removes the segment's files (the `.log` first, so a crash midway leaves only
    /// orphan indexes, which open removes).
    pub(crate) fn delete(self) -> Result<(), LogError> {
        let LogSegment {
            log_path,
            file,
            offset_index,
            time_index,
            ..
        } = self;
        drop(file);
        let index_path = offset_index.path().to_path_buf();
        let time_index_path = time_index.path().to_path_buf();
        drop(offset_index);
        drop(time_index);
        let txn_index_path = log_path.with_extension("txnindex");
        for path in [&log_path, &index_path, &time_index_path, &txn_index_path] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(path, "delete", e)),
            }
        }
        Ok(())
    }
}
