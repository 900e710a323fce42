//! The sparse indexes of a segment: `.index` (offset → file position) and `.timeindex`
//! (timestamp → offset).
//!
//! # Format
//! Fixed-size big-endian entries, no header, no checksum:
//! - `.index`: relative offset u32 (offset − base offset) + file position u32, 8 bytes. The
//!   offset is the *last* offset of the batch that starts at the position.
//! - `.timeindex`: timestamp i64 + relative offset u32, 12 bytes. The timestamp is the largest
//!   seen so far in the segment and the offset the last offset of the batch where it first occurred.
//!
//! # Invariants
//! Entries are strictly increasing in both fields (time index: timestamps strictly, offsets
//! non-decreasing). An entry is added at most once every `index.interval.bytes` of log.
//! The active segment's files are preallocated to `segment.index.bytes` and the number of entries is
//! kept in memory; a rolled segment's files are trimmed to their entries, so for them
//! `entries = file length / entry size`. Indexes are never trusted after an unclean shutdown: the
//! active segment's are rebuilt at open, an older segment's are checked (cheaply: length and last
//! entries) and rebuilt when inconsistent. Not thread-safe; owned by one segment.

use std::marker::PhantomData;
use std::path::Path;

use crate::batch::{be_i64, be_u32, NO_TIMESTAMP};
use crate::error::LogError;
use crate::mmap_file::MmapFile;

/// An index entry kind.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    const SIZE: usize;
    /// The field lookups search by.
    fn key(&self) -> i64;
    fn decode(buf: &[u8], base_offset: i64) -> Self;
    fn encode(&self, buf: &mut [u8], base_offset: i64);
    /// Entries must strictly increase: `prev` then `self`.
    fn follows(&self, prev: &Self) -> bool;
    /// The offset the entry points at.
    fn offset(&self) -> i64;
}

/// `.index` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetPosition {
    pub(crate) offset: i64,
    pub(crate) position: u32,
}

impl IndexEntry for OffsetPosition {
    const SIZE: usize = 8;
    fn key(&self) -> i64 {
        self.offset
    }
    fn decode(buf: &[u8], base_offset: i64) -> Self {
        OffsetPosition {
            offset: base_offset + i64::from(be_u32(buf, 0)),
            position: be_u32(buf, 4),
        }
    }
    fn encode(&self, buf: &mut [u8], base_offset: i64) {
        buf[0..4].copy_from_slice(&((self.offset - base_offset) as u32).to_be_bytes());
        buf[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn follows(&self, prev: &Self) -> bool {
        self.offset > prev.offset && self.position > prev.position
    }
    fn offset(&self) -> i64 {
        self.offset
    }
}

/// `.timeindex` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampOffset {
    pub(crate) timestamp: i64,
    pub(crate) offset: i64,
}

impl IndexEntry for TimestampOffset {
    const SIZE: usize = 12;
    fn key(&self) -> i64 {
        self.timestamp
    }
    fn decode(buf: &[u8], base_offset: i64) -> Self {
        TimestampOffset {
            timestamp: be_i64(buf, 0),
            offset: base_offset + i64::from(be_u32(buf, 8)),
        }
    }
    fn encode(&self, buf: &mut [u8], base_offset: i64) {
        buf[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&((self.offset - base_offset) as u32).to_be_bytes());
    }
    fn follows(&self, prev: &Self) -> bool {
        self.timestamp > prev.timestamp && self.offset >= prev.offset
    }
    fn offset(&self) -> i64 {
        self.offset
    }
}

/// A memory-mapped sparse index of `E` entries.
#[derive(Debug)]
pub(crate) struct SparseIndex<E: IndexEntry> {
    file: MmapFile,
    base_offset: i64,
    entries: usize,
    _entry: PhantomData<E>,
}

pub(crate) type OffsetIndex = SparseIndex<OffsetPosition>;
pub(crate) type TimeIndex = SparseIndex<TimestampOffset>;

impl<E: IndexEntry> SparseIndex<E> {
    /// Creates (or empties) the file at `path` and preallocates it to `max_index_bytes`.
    pub(crate) fn create(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
    ) -> Result<Self, LogError> {
        let mut file = MmapFile::open(path, true)?;
        file.resize(0)?;
        let mut index = SparseIndex {
            file,
            base_offset,
            entries: 0,
            _entry: PhantomData,
        };
        index.preallocate(max_index_bytes)?;
        Ok(index)
    }

    /// Opens an existing trimmed index (a rolled segment's). `None` when the file is missing or
    /// its length is not a whole number of entries.
    pub(crate) fn open_trimmed(path: &Path, base_offset: i64) -> Result<Option<Self>, LogError> {
        if !path.exists() {
            return Ok(None);
        }
        let file = MmapFile::open(path, false)?;
        if file.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries = file.len() / E::SIZE;
        Ok(Some(SparseIndex {
            file,
            base_offset,
            entries,
            _entry: PhantomData,
        }))
    }

    /// Grows (or shrinks, never below the entries) the file to hold `max_index_bytes`.
    pub(crate) fn preallocate(&mut self, max_index_bytes: u32) -> Result<(), LogError> {
        let want = (max_index_bytes as usize / E::SIZE * E::SIZE).max(self.entries * E::SIZE);
        self.file.resize(want)
    }

    /// Shrinks the file to exactly its entries (when the segment stops being active or at close).
    pub(crate) fn trim(&mut self) -> Result<(), LogError> {
        self.file.resize(self.entries * E::SIZE)
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.file.len() / E::SIZE
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries()
    }

    pub(crate) fn entry(&self, i: usize) -> E {
        E::decode(
            &self.file.bytes()[i * E::SIZE..(i + 1) * E::SIZE],
            self.base_offset,
        )
    }

    pub(crate) fn last_entry(&self) -> Option<E> {
        self.entries.checked_sub(1).map(|i| self.entry(i))
    }

    /// The largest entry whose key is <= `target`, if any.
    pub(crate) fn lookup(&self, target: i64) -> Option<E> {
        // Number of entries with key <= target (keys are strictly increasing).
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).key() <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends `entry` when there is room and it strictly follows the last one; returns whether it
    /// was added.
    pub(crate) fn append(&mut self, entry: E) -> bool {
        if self.is_full() || self.last_entry().is_some_and(|last| !entry.follows(&last)) {
            return false;
        }
        let at = self.entries * E::SIZE;
        let base = self.base_offset;
        entry.encode(&mut self.file.bytes_mut()[at..at + E::SIZE], base);
        self.entries += 1;
        true
    }

    /// Forgets every entry (the file keeps its size).
    pub(crate) fn clear(&mut self) {
        self.entries = 0;
    }

    /// Cheap consistency check of a trimmed index against its segment: the last two entries
    /// increase, the last one points inside the segment (offset in `[base, next_base)` and, given a
    /// `position_of`, a position below `log_size`).
    pub(crate) fn looks_sane(&self, next_base_offset: Option<i64>, log_size: u64) -> bool
    where
        E: HasPosition,
    {
        let Some(last) = self.last_entry() else {
            return true;
        };
        if last.offset() < self.base_offset
            || next_base_offset.is_some_and(|next| last.offset() >= next)
            || last.position().is_some_and(|p| u64::from(p) >= log_size)
        {
            return false;
        }
        if self.entries >= 2 && !last.follows(&self.entry(self.entries - 2)) {
            return false;
        }
        true
    }

    pub(crate) fn flush(&self) -> Result<(), LogError> {
        self.file.flush()
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

/// The file position of an entry, where it has one.
pub(crate) trait HasPosition {
    fn position(&self) -> Option<u32>;
}

impl HasPosition for OffsetPosition {
    fn position(&self) -> Option<u32> {
        Some(self.position)
    }
}

impl HasPosition for TimestampOffset {
    fn position(&self) -> Option<u32> {
        None
    }
}

impl TimeIndex {
    /// The largest entry with timestamp <= `target`, or `(NO_TIMESTAMP, base offset)`.
    pub(crate) fn lookup_timestamp(&self, target: i64) -> TimestampOffset {
        self.lookup(target).unwrap_or(TimestampOffset {
            timestamp: NO_TIMESTAMP,
            offset: self.base_offset,
        })
    }
}

impl OffsetIndex {
    /// The file position to start scanning from for `target`: the position of the largest entry
    /// with offset <= `target`, else 0.
    pub(crate) fn lookup_position(&self, target: i64) -> u32 {
        self.lookup(target).map_or(0, |e| e.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_largest_entry_not_above_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::create(&dir.path().join("x.index"), 100, 80).unwrap();
        assert_eq!(idx.max_entries(), 10);
        for i in 0..5u32 {
            assert!(idx.append(OffsetPosition {
                offset: 100 + i64::from(i) * 10,
                position: i * 1000
            }));
        }
        // Not strictly increasing: refused.
        assert!(!idx.append(OffsetPosition {
            offset: 140,
            position: 9000
        }));
        assert_eq!(idx.lookup_position(99), 0);
        assert_eq!(idx.lookup_position(100), 0);
        assert_eq!(idx.lookup_position(119), 1000);
        assert_eq!(idx.lookup_position(120), 2000);
        assert_eq!(idx.lookup_position(1_000_000), 4000);
        idx.trim().unwrap();
        drop(idx);
        let idx = OffsetIndex::open_trimmed(&dir.path().join("x.index"), 100)
            .unwrap()
            .unwrap();
        assert_eq!(idx.entries(), 5);
        assert!(idx.looks_sane(Some(200), 5000));
        assert!(!idx.looks_sane(Some(140), 5000));
        assert!(!idx.looks_sane(None, 4000));
    }

    #[test]
    fn lookups_across_pages_of_a_large_preallocated_index() {
        // 10 MiB preallocated (the default segment.index.bytes), mapped with random-access
        // advice: entries spread over many pages are found, before and after a reopen.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.index");
        let mut idx = OffsetIndex::create(&path, 1000, 10 * 1024 * 1024).unwrap();
        assert_eq!(idx.max_entries(), 10 * 1024 * 1024 / 8);
        let n = 5000u32; // 40 KB of entries: ten pages
        for i in 0..n {
            assert!(idx.append(OffsetPosition {
                offset: 1000 + i64::from(i) * 3,
                position: i * 4096,
            }));
        }
        let check = |idx: &OffsetIndex| {
            assert_eq!(idx.lookup_position(999), 0);
            for i in [0u32, 1, 511, 512, 513, 2047, 2048, 4999] {
                let at = 1000 + i64::from(i) * 3;
                assert_eq!(idx.lookup_position(at), i * 4096);
                assert_eq!(idx.lookup_position(at + 2), i * 4096);
            }
        };
        check(&idx);
        idx.trim().unwrap();
        drop(idx);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), u64::from(n) * 8);
        let idx = OffsetIndex::open_trimmed(&path, 1000).unwrap().unwrap();
        assert_eq!(idx.entries(), n as usize);
        check(&idx);
    }

    #[test]
    fn full_index_refuses_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::create(&dir.path().join("x.timeindex"), 0, 24).unwrap();
        assert!(idx.append(TimestampOffset {
            timestamp: 1,
            offset: 0
        }));
        assert!(idx.append(TimestampOffset {
            timestamp: 2,
            offset: 0
        }));
        assert!(idx.is_full());
        assert!(!idx.append(TimestampOffset {
            timestamp: 3,
            offset: 1
        }));
        assert_eq!(idx.lookup_timestamp(0).offset, 0);
        assert_eq!(idx.lookup_timestamp(0).timestamp, NO_TIMESTAMP);
        assert_eq!(idx.lookup_timestamp(5).timestamp, 2);
    }
}
