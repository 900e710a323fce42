//! Producer state to and from the log's persistent forms: producer snapshots (each producer's
//! epoch, last batch and open transaction, Kafka's `.snapshot` entries) and aborted
//! transactions (the `.txnindex` entries). Start-up loads the newest snapshot and the indexes,
//! then rescans only the log after the snapshot.

use oxka_log::{AbortedTxnEntry, ProducerSnapshotEntry};

use super::{AbortedTxn, BatchMeta, ProducerEntry, ProducerStateManager, BATCHES_PER_PRODUCER};

impl ProducerStateManager {
    /// Every producer as a snapshot entry: its last batch (Kafka keeps only that one) and the
    /// first offset of its open transaction.
    pub fn snapshot_entries(&self) -> Vec<ProducerSnapshotEntry> {
        let mut out: Vec<ProducerSnapshotEntry> = self
            .producers
            .iter()
            .map(|(pid, e)| {
                let last = e.batches.back();
                ProducerSnapshotEntry {
                    producer_id: *pid,
                    epoch: e.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_seq),
                    last_offset: last.map_or(-1, |b| b.last_offset),
                    offset_delta: last.map_or(0, |b| (b.last_offset - b.first_offset) as i32),
                    timestamp: e.last_update_ms,
                    coordinator_epoch: -1,
                    current_txn_first_offset: e.txn_first_offset.unwrap_or(-1),
                }
            })
            .collect();
        out.sort_by_key(|e| e.producer_id);
        out
    }

    /// The state a snapshot and the `.txnindex` entries describe; the log after the snapshot's
    /// offset is then replayed with [`ProducerStateManager::record`] and
    /// [`ProducerStateManager::complete_txn`].
    pub fn restore(
        entries: &[ProducerSnapshotEntry],
        aborted: &[AbortedTxnEntry],
    ) -> ProducerStateManager {
        let mut s = ProducerStateManager::default();
        for e in entries {
            let mut batches = std::collections::VecDeque::with_capacity(BATCHES_PER_PRODUCER);
            if e.last_offset >= 0 && e.last_sequence >= 0 {
                let first_seq = i64::from(e.last_sequence) - i64::from(e.offset_delta);
                let first_seq = if first_seq < 0 {
                    first_seq + i64::from(i32::MAX) + 1
                } else {
                    first_seq
                } as i32;
                batches.push_back(BatchMeta {
                    first_seq,
                    last_seq: e.last_sequence,
                    first_offset: e.last_offset - i64::from(e.offset_delta),
                    last_offset: e.last_offset,
                    timestamp: e.timestamp,
                });
            }
            let txn_first_offset =
                (e.current_txn_first_offset >= 0).then_some(e.current_txn_first_offset);
            if let Some(first) = txn_first_offset {
                s.ongoing.insert(first, e.producer_id);
            }
            s.producers.insert(
                e.producer_id,
                ProducerEntry {
                    epoch: e.epoch,
                    batches,
                    last_update_ms: e.timestamp,
                    txn_first_offset,
                },
            );
        }
        s.aborted = aborted
            .iter()
            .map(|a| AbortedTxn {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
                last_offset: a.last_offset,
            })
            .collect();
        s
    }

    /// The abort of `producer_id` whose marker is at `marker_offset`, if one was recorded.
    pub fn aborted_at(&self, producer_id: i64, marker_offset: i64) -> Option<AbortedTxn> {
        self.aborted
            .iter()
            .rev()
            .take_while(|a| a.last_offset >= marker_offset)
            .find(|a| a.producer_id == producer_id && a.last_offset == marker_offset)
            .copied()
    }

    /// Aborted transactions in marker order with repeats removed (an abort both in the
    /// `.txnindex` and replayed from the log).
    pub fn dedup_aborted(&mut self) {
        self.aborted
            .sort_by_key(|a| (a.last_offset, a.producer_id, a.first_offset));
        self.aborted.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_restores_sequences_epochs_and_open_transactions() {
        let mut s = ProducerStateManager::default();
        let meta = |first_seq, last_seq, first_offset| BatchMeta {
            first_seq,
            last_seq,
            first_offset,
            last_offset: first_offset + i64::from(last_seq - first_seq),
            timestamp: 5,
        };
        s.record(7, 2, meta(0, 4, 0), false);
        s.record(7, 2, meta(5, 9, 5), false);
        s.record(8, 0, meta(0, 0, 10), true);
        s.complete_txn(9, 0, 11, false, 6);
        let aborted = [AbortedTxnEntry {
            producer_id: 3,
            first_offset: 1,
            last_offset: 2,
            last_stable_offset: 1,
        }];
        let r = ProducerStateManager::restore(&s.snapshot_entries(), &aborted);
        // The last batch is still a duplicate; the next sequence goes on; old epochs fenced.
        assert_eq!(
            r.check(7, 2, 5, 9),
            Ok(crate::producer_state::SequenceCheck::Duplicate(meta(
                5, 9, 5
            )))
        );
        assert_eq!(
            r.check(7, 2, 10, 10),
            Ok(crate::producer_state::SequenceCheck::Append)
        );
        assert!(r.check(7, 1, 10, 10).is_err());
        assert!(r.check(7, 2, 12, 12).is_err());
        // The open transaction holds the last stable offset.
        assert_eq!(r.first_unstable_offset(), Some(10));
        assert_eq!(r.aborted_between(0, 100).len(), 1);
        assert!(r.aborted_at(3, 2).is_some());
        let mut r = r;
        r.complete_txn(3, 0, 2, false, 0);
        r.dedup_aborted();
        assert_eq!(r.aborted_between(0, 100).len(), 1);
    }
}
