//! The leader-epoch cache of one replica of one partition (Kafka's `LeaderEpochFileCache`,
//! in memory): for each leader epoch that wrote to this log, the first offset it wrote.
//!
//! Invariants (kept by [`LeaderEpochCache::assign`]):
//! - entries are strictly increasing in both `epoch` and `start_offset`;
//! - assigning an epoch removes every entry whose epoch is `>=` it or whose start offset is
//!   `>=` its start offset (a new leader's epoch overrides whatever a diverged tail claimed).
//!
//! The leader answers OffsetsForLeaderEpoch from its cache with
//! [`LeaderEpochCache::end_offset_for`]; a follower uses the same method on its own cache to find
//! where it diverges ([`crate::follower`]). Plain data, `Send + Sync`; persistence (the
//! `leader-epoch-checkpoint` file) is the shell's job.

use crate::ids::{LeaderEpoch, Offset};

/// One epoch and the first offset written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: LeaderEpoch,
    /// The offset of the first record written in `epoch`.
    pub start_offset: Offset,
}

/// A replica's leader-epoch cache. See the module docs for its invariants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// An empty cache (a new replica, or a log written before leader epochs existed).
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, or `None` for an empty cache.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` (a leader taking over at its log end offset,
    /// or a follower appending a batch stamped with `epoch`). A no-op when `epoch` is already the
    /// newest entry and starts at or before `start_offset`; otherwise removes the entries that
    /// the invariants forbid and appends this one. Negative epochs or offsets are ignored.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) {
        if epoch.0 < 0 || start_offset.0 < 0 {
            return;
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return;
            }
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }

    /// Removes every entry that starts at or after `end_offset` (the log was truncated to
    /// `end_offset`).
    pub fn truncate_from_end(&mut self, end_offset: Offset) {
        self.entries.retain(|e| e.start_offset < end_offset);
    }

    /// Kafka's `endOffsetFor`: the largest epoch `<= requested` and the offset where it ends
    /// (the start offset of the next epoch, or `log_end_offset` if it is the newest). When
    /// `requested` is older than every entry, answers `(requested, first start offset)` as Kafka
    /// does (the data before it is gone). When the cache is empty, `requested` is undefined, or
    /// `requested` is newer than every entry of a cache whose newest epoch is not `requested`,
    /// answers `(UNDEFINED, UNDEFINED)`.
    pub fn end_offset_for(
        &self,
        requested: LeaderEpoch,
        log_end_offset: Offset,
    ) -> (LeaderEpoch, Offset) {
        const UNDEFINED: (LeaderEpoch, Offset) = (LeaderEpoch::UNDEFINED, Offset::UNDEFINED);
        if requested == LeaderEpoch::UNDEFINED {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().position(|e| e.epoch > requested) else {
            return UNDEFINED;
        };
        let end = self.entries[higher].start_offset;
        match higher.checked_sub(1) {
            Some(floor) => (self.entries[floor].epoch, end),
            None => (requested, end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::new();
        for &(e, o) in entries {
            c.assign(LeaderEpoch(e), Offset(o));
        }
        c
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries()
            .iter()
            .map(|e| (e.epoch.0, e.start_offset.0))
            .collect()
    }

    #[test]
    fn assign_same_epoch_later_offset_is_a_no_op() {
        let c = cache(&[(0, 0), (0, 5), (1, 7), (1, 9)]);
        assert_eq!(pairs(&c), vec![(0, 0), (1, 7)]);
    }

    #[test]
    fn assign_removes_entries_at_or_after_the_new_start_offset() {
        // Epoch 2 took over at offset 7: epoch 1, which also started at 7, wrote nothing.
        let c = cache(&[(0, 0), (1, 7), (2, 7)]);
        assert_eq!(pairs(&c), vec![(0, 0), (2, 7)]);
        // A stale higher epoch is removed by a lower epoch assigned earlier in the log.
        let c = cache(&[(0, 0), (3, 10), (2, 5)]);
        assert_eq!(pairs(&c), vec![(0, 0), (2, 5)]);
    }

    #[test]
    fn end_offset_for_latest_epoch_is_log_end_offset() {
        let c = cache(&[(0, 0), (2, 10)]);
        assert_eq!(
            c.end_offset_for(LeaderEpoch(2), Offset(15)),
            (LeaderEpoch(2), Offset(15))
        );
    }

    #[test]
    fn end_offset_for_unknown_middle_epoch_is_floor_epoch_and_next_start() {
        let c = cache(&[(0, 0), (2, 10), (5, 20)]);
        assert_eq!(
            c.end_offset_for(LeaderEpoch(3), Offset(30)),
            (LeaderEpoch(2), Offset(20))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(0), Offset(30)),
            (LeaderEpoch(0), Offset(10))
        );
    }

    #[test]
    fn end_offset_for_epoch_older_than_cache_is_requested_and_first_start() {
        let c = cache(&[(3, 40), (5, 50)]);
        assert_eq!(
            c.end_offset_for(LeaderEpoch(1), Offset(60)),
            (LeaderEpoch(1), Offset(40))
        );
    }

    #[test]
    fn end_offset_for_is_undefined_on_empty_cache_or_newer_epoch() {
        let undefined = (LeaderEpoch::UNDEFINED, Offset::UNDEFINED);
        assert_eq!(
            LeaderEpochCache::new().end_offset_for(LeaderEpoch(1), Offset(3)),
            undefined
        );
        let c = cache(&[(0, 0), (2, 10)]);
        assert_eq!(c.end_offset_for(LeaderEpoch(4), Offset(15)), undefined);
        assert_eq!(
            c.end_offset_for(LeaderEpoch::UNDEFINED, Offset(15)),
            undefined
        );
    }

    #[test]
    fn truncate_from_end_drops_epochs_starting_at_or_after_the_offset() {
        let mut c = cache(&[(0, 0), (2, 10), (5, 20)]);
        c.truncate_from_end(Offset(20));
        assert_eq!(pairs(&c), vec![(0, 0), (2, 10)]);
        c.truncate_from_end(Offset(11));
        assert_eq!(pairs(&c), vec![(0, 0), (2, 10)]);
    }
}
