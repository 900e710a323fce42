//! The leader-epoch cache: for each leader epoch, the first offset written in it.
//!
//! # Format
//! `leader-epoch-checkpoint`, Kafka's text checkpoint: line `0` (version), line with the number of
//! entries, then one `epoch startOffset` line per entry.
//!
//! # Invariants
//! Entries are strictly increasing in both epoch and start offset. Every change is written to disk
//! before the call returns (changes happen once per leader election, so this is cheap).
//! Not thread-safe; owned by the log.

use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::error::LogError;

pub(crate) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One (epoch, start offset) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset written in that epoch.
    pub start_offset: i64,
}

#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir` (empty when missing).
    pub(crate) fn load(dir: &Path) -> Result<LeaderEpochCache, LogError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries = Vec::new();
        for (i, e) in checkpoint::read(&path, 2)?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let entry = EpochEntry {
                epoch: i32::try_from(e[0]).map_err(|_| LogError::CorruptCheckpoint {
                    path: path.clone(),
                    line: i + 3,
                    reason: format!("epoch {} out of range", e[0]),
                })?,
                start_offset: e[1],
            };
            if entries.last().is_some_and(|l: &EpochEntry| {
                l.epoch >= entry.epoch || l.start_offset >= entry.start_offset
            }) || entry.epoch < 0
                || entry.start_offset < 0
            {
                return Err(LogError::CorruptCheckpoint {
                    path,
                    line: i + 3,
                    reason: "entries are not strictly increasing".into(),
                });
            }
            entries.push(entry);
        }
        Ok(LeaderEpochCache { path, entries })
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Kafka's `assign`: records that `epoch` starts at `start_offset`, first removing entries
    /// that conflict (epoch >= `epoch` or start offset >= `start_offset`). No change when the
    /// latest entry already is `epoch` with a start offset <= `start_offset`, or for negative
    /// values.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        if let Some(latest) = self.latest() {
            if latest.epoch == epoch && latest.start_offset <= start_offset {
                return Ok(());
            }
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.persist()
    }

    /// Kafka's `endOffsetFor`: `(largest epoch <= requested, the start offset of the next higher
    /// epoch)`, or the log end offset when the requested epoch is the latest. `None` (Kafka's
    /// UNDEFINED_EPOCH/UNDEFINED_EPOCH_OFFSET) for a negative epoch, an empty cache or an epoch above
    /// the latest. An epoch below the earliest gives `(requested, earliest start offset)`.
    pub(crate) fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        let latest = self.latest()?;
        if requested == latest.epoch {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            None => Some((requested, higher.start_offset)),
            Some(floor) => Some((floor.epoch, higher.start_offset)),
        }
    }

    /// Removes entries whose start offset is >= `end_offset` (after truncation).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        if self.latest().is_some_and(|l| l.start_offset >= end_offset) {
            self.entries.retain(|e| e.start_offset < end_offset);
            self.persist()?;
        }
        Ok(())
    }

    /// Drops entries wholly below `start_offset`; the last entry at or below it is kept with its
    /// start offset moved up to `start_offset` (after the log start offset advances).
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LogError> {
        let below = self
            .entries
            .iter()
            .take_while(|e| e.start_offset <= start_offset)
            .count();
        if below == 0 {
            return Ok(());
        }
        let kept = EpochEntry {
            epoch: self.entries[below - 1].epoch,
            start_offset,
        };
        if below == 1 && self.entries[0] == kept {
            return Ok(());
        }
        self.entries.drain(..below);
        self.entries.insert(0, kept);
        self.persist()
    }

    pub(crate) fn clear(&mut self) -> Result<(), LogError> {
        self.entries.clear();
        self.persist()
    }

    fn persist(&self) -> Result<(), LogError> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        checkpoint::write(&self.path, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::load(dir.path()).unwrap();
        for &(e, o) in entries {
            c.assign(e, o).unwrap();
        }
        (dir, c)
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let (_d, c) = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(c.end_offset_for(5, 30), Some((5, 30)));
        assert_eq!(c.end_offset_for(4, 30), Some((3, 20)));
        assert_eq!(c.end_offset_for(3, 30), Some((3, 20)));
        assert_eq!(c.end_offset_for(2, 30), Some((1, 10)));
        assert_eq!(c.end_offset_for(0, 30), Some((0, 0)));
        assert_eq!(c.end_offset_for(6, 30), None);
        assert_eq!(c.end_offset_for(-1, 30), None);
    }

    #[test]
    fn assign_removes_conflicting_entries() {
        let (_d, mut c) = cache(&[(1, 0), (3, 10), (5, 20)]);
        c.assign(4, 15).unwrap();
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 1,
                    start_offset: 0
                },
                EpochEntry {
                    epoch: 3,
                    start_offset: 10
                },
                EpochEntry {
                    epoch: 4,
                    start_offset: 15
                }
            ]
        );
        c.assign(4, 16).unwrap(); // same epoch, later offset: ignored
        assert_eq!(c.latest().unwrap().start_offset, 15);
    }

    #[test]
    fn truncate_from_start_keeps_the_covering_epoch() {
        let (d, mut c) = cache(&[(1, 0), (3, 10), (5, 20)]);
        c.truncate_from_start(12).unwrap();
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 3,
                    start_offset: 12
                },
                EpochEntry {
                    epoch: 5,
                    start_offset: 20
                }
            ]
        );
        let reloaded = LeaderEpochCache::load(d.path()).unwrap();
        assert_eq!(reloaded.entries(), c.entries());
        let text = std::fs::read_to_string(d.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n3 12\n5 20\n");
    }
}
