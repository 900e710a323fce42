//! Idempotent-producer state of one partition: for each producer id, its epoch and the
//! sequence ranges and offsets of its last five batches, so that a retried batch is answered
//! with its original offsets instead of being written twice, and a gap in sequences is refused.
//!
//! A pure structure with no I/O; the partition keeps it under the same lock as its log, so the
//! check and the append are one step. It is rebuilt at start-up from the log.
//!
//! Transactions: a producer's first transactional batch since its last commit/abort marker
//! opens a transaction at that batch's offset; the marker closes it. The last stable offset
//! is the smallest first offset of an open transaction. Aborted transactions (producer id,
//! first offset, marker offset) are kept in memory, in marker order, for read_committed
//! fetches, and in the log's `.txnindex` files; start-up restores the state from the newest
//! producer snapshot and the indexes (module `snapshot`) and replays the log after it.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// How many recent batches per producer are remembered (Kafka's
/// `max.in.flight.requests.per.connection` bound for idempotence).
pub const BATCHES_PER_PRODUCER: usize = 5;

/// What is known of one batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    last_update_ms: i64,
    /// The first offset of this producer's open transaction on this partition.
    txn_first_offset: Option<i64>,
}

/// An aborted transaction as a read_committed fetch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
}

/// A produce batch refused by sequence or epoch checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error(
        "expected a transactional write from producer {producer_id}: it has a transaction open"
    )]
    InvalidTxnState { producer_id: i64 },
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
}

/// The outcome of checking a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data: append it, then `record` it.
    Append,
    /// A retry of a batch already in the log: answer with its offsets, append nothing.
    Duplicate(BatchMeta),
}

#[derive(Debug, Default, Clone)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions in marker order.
    aborted: Vec<AbortedTxn>,
}

/// The sequence after `seq`; sequences wrap from `i32::MAX` to 0.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch of `count` records starting at `first`.
pub fn last_seq(first: i32, last_offset_delta: i32) -> i32 {
    ((i64::from(first) + i64::from(last_offset_delta)) % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerStateManager {
    /// Checks a batch of `producer_id` at `epoch` covering sequences `first_seq..=last_seq`.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck, ProducerError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            // No state for this producer (new, expired, or its batches are gone): there is
            // nothing to check against, so any sequence is accepted, as Kafka does since 2.5
            // (KIP-360; `ProducerAppendInfo.checkSequence`). Answering UNKNOWN_PRODUCER_ID
            // instead fails the sends of clients that do not reset on it (kafka-python 3).
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            // A bumped epoch restarts sequences at 0.
            return if first_seq == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    got: first_seq,
                })
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let expected = entry.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if first_seq != expected {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id,
                expected,
                got: first_seq,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Kafka's ProducerAppendInfo rule: while a producer has a transaction open here (at its
    /// current epoch), its non-transactional batches are refused (INVALID_TXN_STATE).
    pub fn check_txn_state(
        &self,
        producer_id: i64,
        epoch: i16,
        transactional: bool,
    ) -> Result<(), ProducerError> {
        match self.producers.get(&producer_id) {
            Some(e) if !transactional && e.epoch == epoch && e.txn_first_offset.is_some() => {
                Err(ProducerError::InvalidTxnState { producer_id })
            }
            _ => Ok(()),
        }
    }

    /// Remembers an appended batch (also used when rebuilding from the log); a transactional
    /// batch opens a transaction if the producer has none open here.
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchMeta, transactional: bool) {
        let entry = self.entry(producer_id, epoch, batch.timestamp);
        let opens = transactional && entry.txn_first_offset.is_none();
        if opens {
            entry.txn_first_offset = Some(batch.first_offset);
        }
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        entry.last_update_ms = entry.last_update_ms.max(batch.timestamp);
        if opens {
            self.ongoing.insert(batch.first_offset, producer_id);
        }
    }

    /// A commit or abort marker of `producer_id` at `epoch` was written at `marker_offset`:
    /// closes its open transaction (an abort is remembered for read_committed fetches) and
    /// moves the producer to `epoch` (a bumped epoch restarts sequences and fences older ones).
    pub fn complete_txn(
        &mut self,
        producer_id: i64,
        epoch: i16,
        marker_offset: i64,
        commit: bool,
        timestamp: i64,
    ) {
        let entry = self.entry(producer_id, epoch, timestamp);
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_update_ms = entry.last_update_ms.max(timestamp);
        let first = entry.txn_first_offset.take();
        if let Some(first_offset) = first {
            self.ongoing.remove(&first_offset);
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: marker_offset,
                });
            }
        }
    }

    /// The first offset of the earliest open transaction: the last stable offset, unless the
    /// high watermark is lower.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Aborted transactions overlapping `[start, end)`, as Fetch reports them.
    pub fn aborted_between(&self, start: i64, end: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= start && a.first_offset < end)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions whose marker is below `offset` (the new log start).
    pub fn forget_aborted_before(&mut self, offset: i64) {
        self.aborted.retain(|a| a.last_offset >= offset);
    }

    /// Every producer as DescribeProducers reports it: (producer id, epoch, last sequence,
    /// last update time, first offset of its open transaction).
    #[allow(clippy::type_complexity)]
    pub fn producers(&self) -> Vec<(i64, i16, i32, i64, Option<i64>)> {
        self.producers
            .iter()
            .map(|(pid, e)| {
                (
                    *pid,
                    e.epoch,
                    e.batches.back().map_or(-1, |b| b.last_seq),
                    e.last_update_ms,
                    e.txn_first_offset,
                )
            })
            .collect()
    }

    /// Forgets producers idle for longer than `expiration_ms` (`producer.id.expiration.ms`);
    /// a producer with an open transaction is kept.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_update_ms) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Forgets state for batches at or beyond `offset` (the log was truncated there).
    pub fn truncate_to(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
            if entry.txn_first_offset.is_some_and(|f| f >= offset) {
                entry.txn_first_offset = None;
            }
        }
        self.producers
            .retain(|_, e| !e.batches.is_empty() || e.txn_first_offset.is_some());
        self.ongoing.retain(|first, _| *first < offset);
        self.aborted.retain(|a| a.last_offset < offset);
    }

    fn entry(&mut self, producer_id: i64, epoch: i16, timestamp: i64) -> &mut ProducerEntry {
        self.producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::with_capacity(BATCHES_PER_PRODUCER),
                last_update_ms: timestamp,
                txn_first_offset: None,
            })
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first_seq: i32, last_seq: i32, first_offset: i64) -> BatchMeta {
        BatchMeta {
            first_seq,
            last_seq,
            first_offset,
            last_offset: first_offset + i64::from(last_seq - first_seq),
            timestamp: 0,
        }
    }

    #[test]
    fn a_producer_with_an_open_transaction_may_not_write_outside_it() {
        let mut s = ProducerStateManager::default();
        s.record(7, 1, meta(0, 0, 0), true);
        assert_eq!(
            s.check_txn_state(7, 1, false),
            Err(ProducerError::InvalidTxnState { producer_id: 7 })
        );
        assert_eq!(s.check_txn_state(7, 1, true), Ok(()));
        s.complete_txn(7, 1, 1, true, 0);
        assert_eq!(s.check_txn_state(7, 1, false), Ok(()));
        assert_eq!(s.check_txn_state(8, 0, false), Ok(()));
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_its_original_offsets() {
        let mut s = ProducerStateManager::default();
        assert_eq!(s.check(7, 0, 0, 4), Ok(SequenceCheck::Append));
        s.record(7, 0, meta(0, 4, 100), false);
        assert_eq!(s.check(7, 0, 5, 9), Ok(SequenceCheck::Append));
        s.record(7, 0, meta(5, 9, 105), false);
        assert_eq!(
            s.check(7, 0, 0, 4),
            Ok(SequenceCheck::Duplicate(meta(0, 4, 100)))
        );
        assert_eq!(
            s.check(7, 0, 5, 9),
            Ok(SequenceCheck::Duplicate(meta(5, 9, 105)))
        );
    }

    #[test]
    fn gaps_and_old_epochs_are_refused_unknown_producers_accepted() {
        let mut s = ProducerStateManager::default();
        s.record(7, 1, meta(0, 4, 0), false);
        assert!(matches!(
            s.check(7, 1, 6, 6),
            Err(ProducerError::OutOfOrderSequence { expected: 5, .. })
        ));
        assert!(matches!(
            s.check(7, 0, 5, 5),
            Err(ProducerError::InvalidProducerEpoch { .. })
        ));
        // A producer with no state here (its state expired) goes on from any sequence.
        assert_eq!(s.check(8, 0, 3, 3), Ok(SequenceCheck::Append));
        // A new epoch must start again at sequence 0.
        assert_eq!(s.check(7, 2, 0, 0), Ok(SequenceCheck::Append));
        assert!(s.check(7, 2, 5, 5).is_err());
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut s = ProducerStateManager::default();
        for i in 0..7 {
            s.record(1, 0, meta(i, i, i64::from(i)), false);
        }
        assert!(matches!(
            s.check(1, 0, 0, 0),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            s.check(1, 0, 2, 2),
            Ok(SequenceCheck::Duplicate(meta(2, 2, 2)))
        );
        assert_eq!(last_seq(i32::MAX - 1, 3), 1);
        let mut w = ProducerStateManager::default();
        w.record(
            2,
            0,
            BatchMeta {
                first_seq: i32::MAX - 1,
                last_seq: i32::MAX,
                first_offset: 0,
                last_offset: 1,
                timestamp: 0,
            },
            false,
        );
        assert_eq!(w.check(2, 0, 0, 3), Ok(SequenceCheck::Append));
    }

    #[test]
    fn truncation_and_expiry_forget_state() {
        let mut s = ProducerStateManager::default();
        s.record(
            1,
            0,
            BatchMeta {
                timestamp: 10,
                ..meta(0, 0, 0)
            },
            false,
        );
        s.record(
            2,
            0,
            BatchMeta {
                timestamp: 1_000,
                ..meta(0, 0, 5)
            },
            false,
        );
        s.truncate_to(3);
        assert_eq!(s.len(), 1);
        assert_eq!(s.expire(2_000, 500), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn transactions_hold_the_last_stable_offset_and_aborts_are_remembered() {
        let mut s = ProducerStateManager::default();
        s.record(1, 0, meta(0, 1, 10), true);
        s.record(2, 0, meta(0, 0, 12), true);
        s.record(1, 0, meta(2, 2, 13), true);
        assert_eq!(s.first_unstable_offset(), Some(10));
        s.complete_txn(1, 0, 14, true, 0);
        assert_eq!(s.first_unstable_offset(), Some(12));
        s.complete_txn(2, 0, 15, false, 0);
        assert_eq!(s.first_unstable_offset(), None);
        let aborted = AbortedTxn {
            producer_id: 2,
            first_offset: 12,
            last_offset: 15,
        };
        assert_eq!(s.aborted_between(0, 100), vec![aborted]);
        assert_eq!(s.aborted_between(16, 100), vec![]);
        assert_eq!(s.aborted_between(0, 12), vec![]);
        // The same epoch continues its sequences in the next transaction.
        assert_eq!(s.check(1, 0, 3, 3), Ok(SequenceCheck::Append));
        // A marker at a bumped epoch fences the old epoch and restarts sequences.
        s.record(1, 0, meta(3, 3, 16), true);
        s.complete_txn(1, 1, 17, false, 0);
        assert!(matches!(
            s.check(1, 0, 4, 4),
            Err(ProducerError::InvalidProducerEpoch { .. })
        ));
        assert_eq!(s.check(1, 1, 0, 0), Ok(SequenceCheck::Append));
        s.truncate_to(16);
        assert_eq!(s.aborted_between(0, 100), vec![aborted]);
        s.forget_aborted_before(16);
        assert_eq!(s.aborted_between(0, 100), vec![]);
    }
}

mod snapshot;
