//! The transaction coordinator's state machine for one transactional id, as a pure core: a
//! request or a clock tick goes in, the next [`TxnMetadata`] and the [`Action`]s the shell must
//! perform come out. No I/O, no clock of its own (every event carries `now_ms`), no runtime.
//!
//! The shell applies a [`Step`] only after its `Persist` action has been written to
//! `__transaction_state`: a failed write leaves the old metadata in place, as Kafka's
//! "pending state" does.
//!
//! States and transitions follow Kafka's `TransactionState`:
//!
//! ```text
//! Empty / CompleteCommit / CompleteAbort --AddPartitions--> Ongoing
//! Ongoing --EndTxn(commit)--> PrepareCommit --markers written--> CompleteCommit
//! Ongoing --EndTxn(abort) or timeout--> PrepareAbort --markers written--> CompleteAbort
//! Ongoing --InitProducerId (another producer)--> epoch bumped, PrepareAbort (the old
//!         producer is fenced; the caller gets CONCURRENT_TRANSACTIONS and retries)
//! ```
//!
//! `PrepareEpochFence` and `Dead` exist for the log format (Kafka writes them); this core never
//! stays in them: a fence bumps the epoch and moves straight to `PrepareAbort`.

use std::collections::BTreeSet;

/// Kafka error codes this core answers with.
pub mod code {
    pub const NONE: i16 = 0;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const PRODUCER_FENCED: i16 = 90;
}

/// Kafka's `TransactionState`, with the ids it has in `__transaction_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_id(id: i8) -> Option<TxnState> {
        use TxnState::*;
        Some(match id {
            0 => Empty,
            1 => Ongoing,
            2 => PrepareCommit,
            3 => PrepareAbort,
            4 => CompleteCommit,
            5 => CompleteAbort,
            6 => Dead,
            7 => PrepareEpochFence,
            _ => return None,
        })
    }

    pub fn id(self) -> i8 {
        self as i8
    }

    /// The name Kafka's admin APIs (DescribeTransactions, ListTransactions) use.
    pub fn name(self) -> &'static str {
        use TxnState::*;
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Markers are being written: the transaction is ending.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// A topic partition taking part in a transaction.
pub type TopicPartition = (String, i32);

/// What the coordinator knows of one transactional id (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last epoch exhaustion (-1 if none), for KIP-360 retries.
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1 if none).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the current transaction started (its first AddPartitions), -1 if none.
    pub txn_start_ms: i64,
    pub last_update_ms: i64,
}

/// What the shell must do, in order, for a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the step's metadata to `__transaction_state`; apply the step once written.
    Persist,
    /// Write a commit or abort marker for `producer_id` at `producer_epoch` to every
    /// partition, then feed [`TxnMetadata::markers_written`] back in.
    WriteMarkers {
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        partitions: Vec<TopicPartition>,
    },
}

/// The outcome of an event: the metadata to apply, the actions to run, and the error code to
/// answer the request with (a fence answers CONCURRENT_TRANSACTIONS while it aborts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub txn: TxnMetadata,
    pub actions: Vec<Action>,
    pub error: i16,
}

/// Limits from the broker's configuration.
#[derive(Debug, Clone, Copy)]
pub struct TxnLimits {
    /// `transaction.max.timeout.ms` (Kafka's default 900000).
    pub max_timeout_ms: i32,
}

impl Default for TxnLimits {
    fn default() -> Self {
        TxnLimits {
            max_timeout_ms: 900_000,
        }
    }
}

impl TxnMetadata {
    /// A transactional id seen for the first time: `producer_id` at no epoch yet, Empty.
    /// [`TxnMetadata::init_producer_id`] gives it epoch 0.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            last_producer_id: -1,
            producer_epoch: -1,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            txn_start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// InitProducerId with this transactional id. `expected` is the (producer id, epoch) a
    /// KIP-360 client sends to resume; `new_producer_id` is called when the epoch is exhausted.
    /// An ongoing transaction of an earlier producer is aborted under a bumped epoch (fencing
    /// that producer), and the caller is answered CONCURRENT_TRANSACTIONS so that it retries.
    pub fn init_producer_id(
        &self,
        now_ms: i64,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        limits: TxnLimits,
        new_producer_id: impl FnOnce() -> Result<i64, i16>,
    ) -> Result<Step, i16> {
        if timeout_ms <= 0 || timeout_ms > limits.max_timeout_ms {
            return Err(code::INVALID_TRANSACTION_TIMEOUT);
        }
        if let Some((pid, epoch)) = expected.filter(|(pid, _)| *pid >= 0) {
            let current = pid == self.producer_id && epoch == self.producer_epoch;
            let previous = (pid == self.producer_id || pid == self.last_producer_id)
                && epoch == self.last_producer_epoch;
            if !current && !previous {
                return Err(code::PRODUCER_FENCED);
            }
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(code::CONCURRENT_TRANSACTIONS)
            }
            TxnState::Dead => Err(code::INVALID_TXN_STATE),
            TxnState::Ongoing => {
                // Fence the producer of the open transaction and abort it.
                let mut step = self.fence_and_abort(now_ms)?;
                step.error = code::CONCURRENT_TRANSACTIONS;
                Ok(step)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut txn = self.clone();
                if self.producer_epoch >= i16::MAX - 1 {
                    txn.last_producer_id = self.producer_id;
                    txn.producer_id = new_producer_id()?;
                    txn.last_producer_epoch = -1;
                    txn.producer_epoch = 0;
                } else {
                    txn.last_producer_epoch = self.producer_epoch;
                    txn.producer_epoch = self.producer_epoch + 1;
                }
                txn.timeout_ms = timeout_ms;
                txn.state = TxnState::Empty;
                txn.partitions.clear();
                txn.txn_start_ms = -1;
                txn.last_update_ms = now_ms;
                Ok(Step {
                    txn,
                    actions: vec![Action::Persist],
                    error: code::NONE,
                })
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): starts a transaction or widens the open one.
    pub fn add_partitions(
        &self,
        now_ms: i64,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Step, i16> {
        self.check_producer(producer_id, producer_epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(code::CONCURRENT_TRANSACTIONS)
            }
            TxnState::Dead => Err(code::INVALID_TXN_STATE),
            TxnState::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => {
                Ok(Step {
                    txn: self.clone(),
                    actions: Vec::new(),
                    error: code::NONE,
                })
            }
            TxnState::Ongoing
            | TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort => {
                let mut txn = self.clone();
                if self.state != TxnState::Ongoing {
                    txn.partitions.clear();
                    txn.txn_start_ms = now_ms;
                }
                txn.partitions.extend(partitions.iter().cloned());
                txn.state = TxnState::Ongoing;
                txn.last_update_ms = now_ms;
                Ok(Step {
                    txn,
                    actions: vec![Action::Persist],
                    error: code::NONE,
                })
            }
        }
    }

    /// EndTxn: commit or abort the open transaction. A retry of an end that already
    /// completed succeeds; one still writing markers gets CONCURRENT_TRANSACTIONS.
    pub fn end_txn(
        &self,
        now_ms: i64,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<Step, i16> {
        self.check_producer(producer_id, producer_epoch)?;
        let unchanged = || Step {
            txn: self.clone(),
            actions: Vec::new(),
            error: code::NONE,
        };
        match (self.state, commit) {
            (TxnState::Ongoing, _) => Ok(self.prepare_end(now_ms, self.producer_epoch, commit)),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(unchanged()),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(code::CONCURRENT_TRANSACTIONS)
            }
            (TxnState::PrepareEpochFence, _) => Err(code::CONCURRENT_TRANSACTIONS),
            _ => Err(code::INVALID_TXN_STATE),
        }
    }

    /// Every marker of a PrepareCommit/PrepareAbort has been written: complete.
    pub fn markers_written(&self, now_ms: i64) -> Option<Step> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let mut txn = self.clone();
        txn.state = state;
        txn.partitions.clear();
        txn.last_update_ms = now_ms;
        Some(Step {
            txn,
            actions: vec![Action::Persist],
            error: code::NONE,
        })
    }

    /// A clock tick: an Ongoing transaction older than its timeout is aborted by the
    /// coordinator under a bumped epoch, so its producer is fenced (as Kafka does).
    pub fn on_tick(&self, now_ms: i64) -> Option<Step> {
        if self.state != TxnState::Ongoing || now_ms < self.deadline_ms() {
            return None;
        }
        self.fence_and_abort(now_ms).ok()
    }

    /// Kafka's transactional-id expiration: an id with no transaction in progress (Empty,
    /// CompleteCommit, CompleteAbort) and no update for `expiration_ms` is forgotten (a
    /// tombstone in `__transaction_state`); its next InitProducerId starts afresh.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && self.last_update_ms.saturating_add(expiration_ms) <= now_ms
    }

    /// When an Ongoing transaction times out.
    pub fn deadline_ms(&self) -> i64 {
        self.txn_start_ms.saturating_add(i64::from(self.timeout_ms))
    }

    /// The markers a Prepare state still needs (after a restart, or a failed write).
    pub fn pending_markers(&self) -> Option<Action> {
        self.state.is_preparing().then(|| Action::WriteMarkers {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            commit: self.state == TxnState::PrepareCommit,
            partitions: self.partitions.iter().cloned().collect(),
        })
    }

    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), i16> {
        if producer_id != self.producer_id {
            return Err(code::INVALID_PRODUCER_ID_MAPPING);
        }
        if producer_epoch != self.producer_epoch {
            return Err(code::PRODUCER_FENCED);
        }
        Ok(())
    }

    fn fence_and_abort(&self, now_ms: i64) -> Result<Step, i16> {
        if self.producer_epoch >= i16::MAX - 1 {
            // Kafka cannot bump either: abort under the current epoch.
            return Ok(self.prepare_end(now_ms, self.producer_epoch, false));
        }
        let mut step = self.prepare_end(now_ms, self.producer_epoch + 1, false);
        step.txn.last_producer_epoch = self.producer_epoch;
        Ok(step)
    }

    fn prepare_end(&self, now_ms: i64, epoch: i16, commit: bool) -> Step {
        let mut txn = self.clone();
        txn.producer_epoch = epoch;
        txn.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        txn.last_update_ms = now_ms;
        let markers = txn.pending_markers().expect("a prepare state has markers");
        Step {
            txn,
            actions: vec![Action::Persist, markers],
            error: code::NONE,
        }
    }
}

#[cfg(test)]
mod tests;
