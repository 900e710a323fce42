//! Transaction state files of a partition, in Kafka's formats:
//!
//! - `<base offset:020>.txnindex`, one per segment: the aborted transactions whose abort
//!   marker is in that segment, 34 bytes each: `version i16 (0), producer_id i64,
//!   first_offset i64, last_offset i64 (the marker), last_stable_offset i64`. Appended (and
//!   fsynced) when an abort marker is written; read at open so that read_committed fetches
//!   know every aborted transaction without rescanning the log; deleted with its segment and
//!   cut on truncation.
//! - `<offset:020>.snapshot`: the producer state (each producer's epoch, last batch and open
//!   transaction) as of `offset`, written when the log rolls and when the partition closes, so
//!   that start-up only rescans the log from the latest snapshot: `version i16 (1), crc u32
//!   (CRC-32C of what follows), count i32, then per producer: producer_id i64, epoch i16,
//!   last_sequence i32, last_offset i64, offset_delta i32, timestamp i64,
//!   coordinator_epoch i32, current_txn_first_offset i64 (-1: none)`.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError};
use crate::segment::segment_file;

pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
const TXN_ENTRY_SIZE: usize = 34;
const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_ENTRY_SIZE: usize = 46;
/// How many snapshots are kept (the newest ones).
const SNAPSHOTS_KEPT: usize = 2;

/// One aborted transaction of the `.txnindex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxnEntry {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxnEntry {
    fn encode(&self) -> [u8; TXN_ENTRY_SIZE] {
        let mut b = [0u8; TXN_ENTRY_SIZE];
        b[0..2].copy_from_slice(&0i16.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<AbortedTxnEntry> {
        let i64_at = |i: usize| i64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        (b.len() == TXN_ENTRY_SIZE && i16::from_be_bytes([b[0], b[1]]) == 0).then(|| {
            AbortedTxnEntry {
                producer_id: i64_at(2),
                first_offset: i64_at(10),
                last_offset: i64_at(18),
                last_stable_offset: i64_at(26),
            }
        })
    }
}

/// The entries of one `.txnindex` (a torn last entry is ignored). A missing file is empty.
fn read_txn_index(path: &Path) -> Result<Vec<AbortedTxnEntry>, LogError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LogError::io(path, "read transaction index", e)),
    };
    Ok(bytes
        .chunks_exact(TXN_ENTRY_SIZE)
        .filter_map(AbortedTxnEntry::decode)
        .collect())
}

/// Appends one entry and fsyncs it: an abort must not be forgotten once its marker is
/// acknowledged.
fn append_txn_index(path: &Path, entry: &AbortedTxnEntry) -> Result<(), LogError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx(path, "open transaction index")?;
    f.write_all(&entry.encode())
        .ctx(path, "append transaction index")?;
    f.sync_data().ctx(path, "fsync transaction index")
}

/// Keeps only the entries whose marker is below `offset` (the log was cut there).
fn truncate_txn_index(path: &Path, offset: i64) -> Result<(), LogError> {
    let entries = read_txn_index(path)?;
    let kept: Vec<AbortedTxnEntry> = entries
        .iter()
        .filter(|e| e.last_offset < offset)
        .copied()
        .collect();
    if kept.len() == entries.len() {
        return Ok(());
    }
    let bytes: Vec<u8> = kept.iter().flat_map(|e| e.encode()).collect();
    write_atomically(path, &bytes)
}

/// One producer in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSnapshotEntry {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_offset: i64,
    /// `last_sequence - first sequence` of the last batch (= its last offset delta).
    pub offset_delta: i32,
    pub timestamp: i64,
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction, -1 if none.
    pub current_txn_first_offset: i64,
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

fn encode_snapshot(entries: &[ProducerSnapshotEntry]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + entries.len() * SNAPSHOT_ENTRY_SIZE);
    body.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for e in entries {
        body.extend_from_slice(&e.producer_id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.last_sequence.to_be_bytes());
        body.extend_from_slice(&e.last_offset.to_be_bytes());
        body.extend_from_slice(&e.offset_delta.to_be_bytes());
        body.extend_from_slice(&e.timestamp.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&e.current_txn_first_offset.to_be_bytes());
    }
    let mut out = Vec::with_capacity(6 + body.len());
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A snapshot's entries, or `None` if it is torn, corrupt or of another version.
fn decode_snapshot(bytes: &[u8]) -> Option<Vec<ProducerSnapshotEntry>> {
    if bytes.len() < 10 || i16::from_be_bytes([bytes[0], bytes[1]]) != SNAPSHOT_VERSION {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[2..6].try_into().ok()?);
    let body = &bytes[6..];
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let count = usize::try_from(i32::from_be_bytes(body[0..4].try_into().ok()?)).ok()?;
    let rest = &body[4..];
    if rest.len() != count.checked_mul(SNAPSHOT_ENTRY_SIZE)? {
        return None;
    }
    Some(
        rest.chunks_exact(SNAPSHOT_ENTRY_SIZE)
            .map(|c| {
                let i16_at = |i: usize| i16::from_be_bytes([c[i], c[i + 1]]);
                let i32_at = |i: usize| i32::from_be_bytes(c[i..i + 4].try_into().expect("4"));
                let i64_at = |i: usize| i64::from_be_bytes(c[i..i + 8].try_into().expect("8"));
                ProducerSnapshotEntry {
                    producer_id: i64_at(0),
                    epoch: i16_at(8),
                    last_sequence: i32_at(10),
                    last_offset: i64_at(14),
                    offset_delta: i32_at(22),
                    timestamp: i64_at(26),
                    coordinator_epoch: i32_at(34),
                    current_txn_first_offset: i64_at(38),
                }
            })
            .collect(),
    )
}

/// Which transaction files a partition directory holds: learnt from the directory listing
/// [`crate::Log::open`] makes anyway and kept current by the writes below, so that nothing
/// lists or probes the directory again (a directory read costs start-up time per partition).
#[derive(Debug, Default)]
pub(crate) struct TxnFiles {
    /// Offsets of the `.snapshot` files.
    snapshots: BTreeSet<i64>,
    /// Bases of segments that have a `.txnindex` (possibly also of segments deleted since: a
    /// missing file reads as empty).
    indexed: BTreeSet<i64>,
}

impl TxnFiles {
    /// Records the file `name` (from the directory listing) if it is a snapshot or a
    /// transaction index.
    pub(crate) fn note(&mut self, name: &str) {
        if let Some(offset) = crate::log::parse_segment_name(name, SNAPSHOT_SUFFIX) {
            self.snapshots.insert(offset);
        } else if let Some(base) = crate::log::parse_segment_name(name, TXN_INDEX_SUFFIX) {
            self.indexed.insert(base);
        }
    }

    /// Appends an abort to the `.txnindex` of the segment at `base` (fsynced).
    pub(crate) fn append_aborted(
        &mut self,
        dir: &Path,
        base: i64,
        entry: &AbortedTxnEntry,
    ) -> Result<(), LogError> {
        append_txn_index(&segment_file(dir, base, TXN_INDEX_SUFFIX), entry)?;
        self.indexed.insert(base);
        Ok(())
    }

    /// The aborts in the indexes of the segments at `bases`, in that order.
    pub(crate) fn aborted(
        &self,
        dir: &Path,
        bases: impl Iterator<Item = i64>,
    ) -> Result<Vec<AbortedTxnEntry>, LogError> {
        let mut out = Vec::new();
        for base in bases.filter(|b| self.indexed.contains(b)) {
            out.extend(read_txn_index(&segment_file(dir, base, TXN_INDEX_SUFFIX))?);
        }
        Ok(out)
    }

    /// The log was cut at `offset` inside the segment at `base`: its aborts from there go,
    /// and so do snapshots above `offset`.
    pub(crate) fn truncate(&mut self, dir: &Path, base: i64, offset: i64) -> Result<(), LogError> {
        if self.indexed.contains(&base) {
            truncate_txn_index(&segment_file(dir, base, TXN_INDEX_SUFFIX), offset)?;
        }
        let above: Vec<i64> = self.snapshots.range(offset + 1..).copied().collect();
        for s in above {
            remove_if_exists(&snapshot_path(dir, s))?;
            self.snapshots.remove(&s);
        }
        Ok(())
    }

    /// Deletes every snapshot (the log restarts empty).
    pub(crate) fn delete_snapshots(&mut self, dir: &Path) -> Result<(), LogError> {
        for s in std::mem::take(&mut self.snapshots) {
            remove_if_exists(&snapshot_path(dir, s))?;
        }
        Ok(())
    }

    /// Writes the snapshot at `offset` (fsynced, via a temp file) and keeps only the newest
    /// few.
    pub(crate) fn write_snapshot(
        &mut self,
        dir: &Path,
        offset: i64,
        entries: &[ProducerSnapshotEntry],
    ) -> Result<(), LogError> {
        write_atomically(&snapshot_path(dir, offset), &encode_snapshot(entries))?;
        self.snapshots.insert(offset);
        while self.snapshots.len() > SNAPSHOTS_KEPT {
            let oldest = self.snapshots.pop_first().expect("non-empty");
            remove_if_exists(&snapshot_path(dir, oldest))?;
        }
        Ok(())
    }

    /// The newest readable snapshot at or below `max_offset` and at or above `min_offset`.
    /// Snapshots above `max_offset` (the log was cut below them) and unreadable ones are
    /// deleted.
    pub(crate) fn latest_snapshot(
        &mut self,
        dir: &Path,
        min_offset: i64,
        max_offset: i64,
    ) -> Result<Option<(i64, Vec<ProducerSnapshotEntry>)>, LogError> {
        let newest_first: Vec<i64> = self.snapshots.iter().rev().copied().collect();
        for offset in newest_first {
            let path = snapshot_path(dir, offset);
            if offset > max_offset {
                remove_if_exists(&path)?;
                self.snapshots.remove(&offset);
                continue;
            }
            if offset < min_offset {
                break;
            }
            let bytes = fs::read(&path).ctx(&path, "read producer snapshot")?;
            match decode_snapshot(&bytes) {
                Some(entries) => return Ok(Some((offset, entries))),
                None => {
                    tracing::warn!(file = %path.display(), "ignoring an unreadable producer snapshot");
                    remove_if_exists(&path)?;
                    self.snapshots.remove(&offset);
                }
            }
        }
        Ok(None)
    }

    #[cfg(test)]
    fn snapshot_offsets(&self) -> Vec<i64> {
        self.snapshots.iter().copied().collect()
    }
}

fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, "delete", e)),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).ctx(&tmp, "create")?;
        f.write_all(bytes).ctx(&tmp, "write")?;
        f.sync_all().ctx(&tmp, "fsync")?;
    }
    fs::rename(&tmp, path).ctx(&tmp, "rename")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxnEntry {
        AbortedTxnEntry {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: first,
        }
    }

    #[test]
    fn txn_index_appends_reads_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        assert!(read_txn_index(&path).unwrap().is_empty());
        append_txn_index(&path, &entry(7, 0, 5)).unwrap();
        append_txn_index(&path, &entry(8, 3, 9)).unwrap();
        // Kafka's layout: 34 bytes per entry, version 0 first.
        let raw = fs::read(&path).unwrap();
        assert_eq!(raw.len(), 68);
        assert_eq!(&raw[0..10], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        // A torn tail is ignored.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[0, 0, 1])
            .unwrap();
        assert_eq!(
            read_txn_index(&path).unwrap(),
            vec![entry(7, 0, 5), entry(8, 3, 9)]
        );
        truncate_txn_index(&path, 9).unwrap();
        assert_eq!(read_txn_index(&path).unwrap(), vec![entry(7, 0, 5)]);
    }

    #[test]
    fn snapshots_round_trip_keep_the_newest_and_reject_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let e = ProducerSnapshotEntry {
            producer_id: 1000,
            epoch: 3,
            last_sequence: 41,
            last_offset: 99,
            offset_delta: 4,
            timestamp: 1_700_000_000_000,
            coordinator_epoch: -1,
            current_txn_first_offset: -1,
        };
        // What is on disk, listed (the struct itself never lists).
        let on_disk = |dir: &Path| {
            let mut v: Vec<i64> = fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| {
                    crate::log::parse_segment_name(
                        e.unwrap().file_name().to_str().unwrap(),
                        SNAPSHOT_SUFFIX,
                    )
                })
                .collect();
            v.sort_unstable();
            v
        };
        let mut files = TxnFiles::default();
        for offset in [10, 20, 30] {
            files.write_snapshot(dir.path(), offset, &[e]).unwrap();
        }
        assert_eq!(on_disk(dir.path()), vec![20, 30]);
        assert_eq!(files.snapshot_offsets(), vec![20, 30]);
        assert_eq!(
            files.latest_snapshot(dir.path(), 0, 100).unwrap(),
            Some((30, vec![e]))
        );
        // Above the log end: deleted; the one below is used.
        assert_eq!(
            files.latest_snapshot(dir.path(), 0, 25).unwrap().unwrap().0,
            20
        );
        assert_eq!(on_disk(dir.path()), vec![20]);
        // Below the log start: not used.
        assert_eq!(files.latest_snapshot(dir.path(), 21, 100).unwrap(), None);
        // A corrupt snapshot is ignored and removed.
        let path = snapshot_path(dir.path(), 20);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert_eq!(files.latest_snapshot(dir.path(), 0, 100).unwrap(), None);
        assert!(on_disk(dir.path()).is_empty());
        assert!(files.snapshot_offsets().is_empty());
        // A listing at open finds them again (`note`); a truncation drops those above.
        for offset in [50, 60] {
            files.write_snapshot(dir.path(), offset, &[e]).unwrap();
        }
        let mut reopened = TxnFiles::default();
        for name in [
            "00000000000000000050.snapshot",
            "00000000000000000060.snapshot",
            "x.log",
        ] {
            reopened.note(name);
        }
        reopened.truncate(dir.path(), 0, 55).unwrap();
        assert_eq!(on_disk(dir.path()), vec![50]);
        reopened.delete_snapshots(dir.path()).unwrap();
        assert!(on_disk(dir.path()).is_empty());
        reopened.write_snapshot(dir.path(), 40, &[e]).unwrap();
        // Kafka's layout: version 1, crc, count, 46 bytes per producer.
        let raw = fs::read(snapshot_path(dir.path(), 40)).unwrap();
        assert_eq!(raw.len(), 2 + 4 + 4 + 46);
        assert_eq!(&raw[0..2], &[0, 1]);
        assert_eq!(&raw[6..10], &[0, 0, 0, 1]);
    }
}
