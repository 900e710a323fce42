//! Partitions hosted by this broker and the manager that reconciles them against the
//! metadata image.
//!
//! A [`Partition`] owns its [`Log`] behind a mutex (appends and reads of one partition are
//! serialised; different partitions never contend), and this replica's [`Role`] in it: the
//! leader, with the ISR and high watermark of `oxka_replication::LeaderState` (fed by appends
//! and by its followers' fetches), or a follower of another broker, whose high watermark is
//! the leader's as last fetched. Consumers read below the high watermark only. On a single
//! node every partition's ISR is the leader alone, so the high watermark is the log end offset.
//!
//! The [`PartitionManager`] maps topic → partitions. `reconcile` opens logs for partitions the
//! image assigns to this node, applies config changes, and deletes logs of removed topics. It
//! does blocking file I/O and must run off the async runtime's worker threads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxka_log::batch::BatchHeader;
use oxka_log::RecordBatch;
use oxka_log::{AppendInfo, Log, LogError, ReadInfo};
use oxka_metadata::{MetadataImage, PartitionImage};
use oxka_replication::{
    AckStatus, Action, BrokerId, LeaderAndIsr, LeaderConfig, LeaderEpoch, LeaderState, Offset,
    PartitionEpoch,
};
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::now_ms;
use crate::producer_state::{
    self, AbortedTxn, BatchMeta, ProducerError, ProducerStateManager, SequenceCheck,
};

/// Batch attributes bit 4: the batch belongs to a transaction.
const TRANSACTIONAL_BIT: i16 = 0x10;
/// Batch attributes bit 5: a control batch (transaction marker).
const CONTROL_BIT: i16 = 0x20;

/// One partition replica on this broker.
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    /// `None` once the partition has been deleted; requests still holding it get
    /// UNKNOWN_TOPIC_OR_PARTITION.
    inner: Mutex<Option<Inner>>,
    /// Woken after every append to this partition (records or a transaction marker), every
    /// advance of its high watermark and every change of role, so that fetches long-polling on
    /// it and acks=all produces waiting for it re-check. Per partition, as Kafka's delayed
    /// operations are keyed: an append wakes only what waits on this partition.
    appended: tokio::sync::Notify,
}

/// This replica's part in its partition, from the metadata image.
#[derive(Debug)]
enum Role {
    /// The image names this broker leader: ISR, followers' progress, high watermark.
    Leader(LeaderState),
    /// Another broker leads (`leader` -1: none does) at `leader_epoch`; this replica fetches
    /// from it.
    Follower { leader: i32, leader_epoch: i32 },
}

/// An ISR change the leader proposes to the controller (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub new_isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// Where an acks=all produce waiting for its followers stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckWait {
    Done,
    Pending,
    /// Replicated, but the ISR shrank below min.insync.replicas (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    NotEnoughReplicasAfterAppend,
    /// This broker no longer leads the epoch the batch was appended in (NOT_LEADER_OR_FOLLOWER).
    NotLeader,
}

/// The partitions this broker follows, by leader: what the replica fetchers fetch. A fetcher
/// truncates a partition again whenever its leader epoch here changes.
pub type FollowerSet = BTreeMap<i32, Vec<(Arc<Partition>, i32)>>;

/// The log and the producer state that must change together with it.
#[derive(Debug)]
struct Inner {
    log: Log,
    producers: ProducerStateManager,
    policy: TopicRules,
    /// Records appended since the last fsync, and when that was.
    unflushed_records: u64,
    last_flush_ms: i64,
    role: Role,
    /// Every record below it is on every ISR member: what consumers may read.
    high_watermark: i64,
}

impl Inner {
    /// The leader epoch this replica leads or follows in (-1 before the image named one).
    fn leader_epoch(&self) -> i32 {
        match &self.role {
            Role::Leader(state) => state.leader_epoch().0,
            Role::Follower { leader_epoch, .. } => *leader_epoch,
        }
    }

    fn leader(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            Role::Leader(state) => Some(state),
            Role::Follower { .. } => None,
        }
    }

    /// Carries out what the leader state decided: a new high watermark is exposed, ISR changes
    /// are returned for the broker to propose. Whether anything waiting must be woken.
    fn apply(&mut self, actions: Vec<Action>, proposals: &mut Vec<IsrProposal>) -> bool {
        let mut wake = false;
        for action in actions {
            match action {
                Action::HighWatermark(hw) => {
                    self.high_watermark = hw.0;
                    wake = true;
                }
                Action::AlterIsr {
                    new_isr,
                    leader_epoch,
                    partition_epoch,
                } => proposals.push(IsrProposal {
                    new_isr: new_isr.into_iter().map(|b| b.0).collect(),
                    leader_epoch: leader_epoch.0,
                    partition_epoch: partition_epoch.0,
                }),
            }
        }
        wake
    }

    fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets {
            log_start_offset: self.log.log_start_offset(),
            high_watermark: self.high_watermark.min(self.log.log_end_offset()),
        }
    }

    /// The last stable offset: the first offset of the earliest open transaction, else the
    /// high watermark.
    fn last_stable_offset(&self) -> i64 {
        let hw = self.offsets().high_watermark;
        self.producers
            .first_unstable_offset()
            .map_or(hw, |f| f.min(hw))
    }
}

/// The topic configs the partition enforces itself (the log enforces its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRules {
    /// `cleanup.policy` has `delete`: time and size retention apply.
    pub delete: bool,
    /// `cleanup.policy` has `compact`: every record needs a key.
    pub compact: bool,
    /// `message.timestamp.type=CreateTime`: record timestamps are checked against the window.
    pub create_time: bool,
    /// `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms`.
    pub timestamp_before_ms: i64,
    pub timestamp_after_ms: i64,
    /// `flush.messages` / `flush.ms`: fsync after this many records / this long.
    pub flush_messages: u64,
    pub flush_ms: i64,
    /// `min.insync.replicas`: the ISR an acks=all produce needs.
    pub min_insync_replicas: usize,
}

impl TopicRules {
    /// The rules of a topic with `overrides` (values were validated on the way in).
    pub fn of(config: &BrokerConfig, overrides: &BTreeMap<String, String>) -> TopicRules {
        let value = |name: &str| config.topic_config_value(overrides, name);
        let number = |name: &str| value(name).trim().parse::<i64>().unwrap_or(i64::MAX);
        let policy = value("cleanup.policy");
        let has = |p: &str| policy.split(',').any(|v| v.trim() == p);
        TopicRules {
            delete: has("delete"),
            compact: has("compact"),
            create_time: !value("message.timestamp.type").eq_ignore_ascii_case("LogAppendTime"),
            timestamp_before_ms: number("message.timestamp.before.max.ms"),
            timestamp_after_ms: number("message.timestamp.after.max.ms"),
            flush_messages: number("flush.messages").max(1) as u64,
            flush_ms: number("flush.ms"),
            min_insync_replicas: number("min.insync.replicas").clamp(1, i64::from(i16::MAX))
                as usize,
        }
    }
}

/// A consistent view of a partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// Why a partition operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("partition was deleted")]
    Deleted,
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Producer(#[from] ProducerError),
    #[error("{0}")]
    InvalidRecord(String),
    #[error("{0}")]
    CorruptMessage(String),
    #[error("zstd compression needs Produce v7 / Fetch v10 or later")]
    UnsupportedCompressionType,
    /// This broker does not lead the partition (any more).
    #[error("This server is not the leader for that topic-partition.")]
    NotLeader,
    /// acks=all with an ISR smaller than min.insync.replicas (Kafka's message).
    #[error("The size of the current ISR {isr} is insufficient to satisfy the min.isr requirement of {min} for partition {partition}")]
    NotEnoughReplicas {
        isr: usize,
        min: usize,
        partition: String,
    },
    /// A request's current leader epoch is older than this replica's (FENCED_LEADER_EPOCH).
    #[error("The leader epoch in the request is older than the epoch on the broker.")]
    FencedLeaderEpoch,
    /// A request's current leader epoch is newer than this replica's (UNKNOWN_LEADER_EPOCH).
    #[error("The leader epoch in the request is newer than the epoch on the broker.")]
    UnknownLeaderEpoch,
    /// Records of the batch that Kafka's LogValidator refuses one by one (no key on a compacted
    /// topic, timestamp out of range): the whole batch is refused, and Produce v8+ names each
    /// offending record by its index in the batch (KIP-467) so a client fails only those and
    /// may retry the others.
    #[error("{}", record_errors_message(.errors, *.timestamp))]
    RecordErrors {
        /// Any timestamp among them: the partition's error is INVALID_TIMESTAMP, else
        /// INVALID_RECORD.
        timestamp: bool,
        /// (index of the record in its batch, why), in batch order.
        errors: Vec<(i32, String)>,
    },
}

/// Kafka's top-level message for a batch refused because of record errors.
fn record_errors_message(errors: &[(i32, String)], timestamp: bool) -> String {
    if timestamp {
        return "One or more records have been rejected due to invalid timestamp".into();
    }
    let first: Vec<String> = errors
        .iter()
        .take(3)
        .map(|(index, message)| format!("RecordError(batchIndex={index}, message='{message}')"))
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        errors.len(),
        first.join(", ")
    )
}

/// The result of a produce append: where the batch is (for a duplicate, where it already was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_offset: i64,
    pub log_append_time_ms: i64,
    pub num_records: u64,
    pub bytes: usize,
    pub duplicate: bool,
    /// `flush.messages` was reached: the caller must `flush` before acknowledging.
    pub needs_flush: bool,
    /// The batch's last offset and the leader epoch it was appended in: an acks=all produce
    /// waits until the high watermark passes it ([`Partition::ack_status`]).
    pub last_offset: i64,
    pub leader_epoch: i32,
}

impl Partition {
    /// A future that completes at the next append to this partition; `enable` it before
    /// reading so an append in between is not missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// Appends a produce request's batches (offsets assigned here, in place). A batch from an
    /// idempotent producer is first checked against that producer's sequences: a retry of a
    /// batch already written is answered with its original offsets and not written again.
    ///
    /// `acks_all` (acks=-1) first needs an ISR of at least min.insync.replicas (Kafka's
    /// Partition.appendRecordsToLeader); the caller then waits on [`Partition::ack_status`].
    pub fn append_as_leader(
        &self,
        records: &mut [u8],
        allow_zstd: bool,
        acks_all: bool,
    ) -> Result<Appended, PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        let min_insync = inner.policy.min_insync_replicas;
        let leader = inner.leader().ok_or(PartitionError::NotLeader)?;
        if acks_all && leader.isr().len() < min_insync {
            return Err(PartitionError::NotEnoughReplicas {
                isr: leader.isr().len(),
                min: min_insync,
                partition: format!("{}-{}", self.topic, self.index),
            });
        }
        let leader_epoch = leader.leader_epoch().0;
        self.validate_records(records, allow_zstd, &inner.policy)?;
        let producer = BatchHeader::parse(records).filter(|h| h.producer_id >= 0);
        if BatchHeader::parse(records).is_some_and(|h| h.attributes & CONTROL_BIT != 0) {
            // Only the transaction coordinator writes markers (Kafka's LogValidator).
            return Err(PartitionError::InvalidRecord(
                "Clients are not allowed to write control records".into(),
            ));
        }
        if let Some(h) = producer.as_ref() {
            inner.producers.check_txn_state(
                h.producer_id,
                h.producer_epoch,
                h.attributes & TRANSACTIONAL_BIT != 0,
            )?;
        }
        // Batches without a sequence (the group coordinator's transactional offset commits,
        // NO_SEQUENCE = -1) open a transaction but are not sequence-checked.
        if let Some(h) = producer.as_ref().filter(|h| h.base_sequence >= 0) {
            let last = producer_state::last_seq(h.base_sequence, h.last_offset_delta);
            if let SequenceCheck::Duplicate(meta) =
                inner
                    .producers
                    .check(h.producer_id, h.producer_epoch, h.base_sequence, last)?
            {
                return Ok(Appended {
                    first_offset: meta.first_offset,
                    log_append_time_ms: -1,
                    num_records: 0,
                    bytes: 0,
                    duplicate: true,
                    needs_flush: false,
                    last_offset: meta.last_offset,
                    leader_epoch,
                });
            }
        }
        let base_before = inner.log.active_base_offset();
        let info: AppendInfo = inner
            .log
            .append_as_leader(records, leader_epoch, now_ms())?;
        snapshot_if_rolled(inner, base_before);
        if let Some(h) = producer {
            inner.producers.record(
                h.producer_id,
                h.producer_epoch,
                BatchMeta {
                    first_seq: h.base_sequence,
                    last_seq: producer_state::last_seq(h.base_sequence, h.last_offset_delta),
                    first_offset: info.first_offset,
                    last_offset: info.last_offset,
                    timestamp: now_ms(),
                },
                h.attributes & TRANSACTIONAL_BIT != 0,
            );
        }
        inner.unflushed_records += info.num_records;
        self.leader_appended(inner);
        Ok(Appended {
            first_offset: info.first_offset,
            log_append_time_ms: info.log_append_time_ms,
            num_records: info.num_records,
            bytes: info.bytes,
            duplicate: false,
            needs_flush: inner.unflushed_records >= inner.policy.flush_messages,
            last_offset: info.last_offset,
            leader_epoch,
        })
    }

    /// After a leader append: the leader state learns the new log end (on a single replica the
    /// high watermark follows it at once), and waiters wake.
    fn leader_appended(&self, inner: &mut Inner) {
        let end = Offset(inner.log.log_end_offset());
        if let Some(leader) = inner.leader() {
            let actions = leader.on_append(end);
            // on_append never proposes an ISR change.
            inner.apply(actions, &mut Vec::new());
        }
        self.appended.notify_waiters();
    }

    /// Kafka's delayed operations on this partition: `check` again after every append, high
    /// watermark move and role change until it gives an answer, at most until `deadline`
    /// (then `None`). Registers for the wake-up before each check, so none is missed.
    pub async fn wait_until<T>(
        &self,
        deadline: std::time::Instant,
        mut check: impl FnMut(&Partition) -> Option<T>,
    ) -> Option<T> {
        loop {
            let woken = self.appended();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(answer) = check(self) {
                return Some(answer);
            }
            let now = std::time::Instant::now();
            if now >= deadline || tokio::time::timeout(deadline - now, woken).await.is_err() {
                return check(self);
            }
        }
    }

    /// Where an acks=all produce of a batch ending at `last_offset`, appended in
    /// `leader_epoch`, stands.
    pub fn ack_status(&self, leader_epoch: i32, last_offset: i64) -> AckWait {
        let mut inner = self.inner.lock();
        let Some(leader) = inner.as_mut().and_then(|i| i.leader()) else {
            return AckWait::NotLeader;
        };
        if leader.leader_epoch().0 != leader_epoch {
            return AckWait::NotLeader;
        }
        match leader.check_ack(Offset(last_offset)) {
            AckStatus::Done => AckWait::Done,
            AckStatus::Pending => AckWait::Pending,
            AckStatus::NotEnoughReplicasAfterAppend => AckWait::NotEnoughReplicasAfterAppend,
        }
    }

    /// The leader epoch this replica leads or follows in.
    pub fn leader_epoch(&self) -> i32 {
        self.inner.lock().as_ref().map_or(-1, Inner::leader_epoch)
    }

    /// KIP-320's check of a request's `current_leader_epoch` (-1: none) against this replica's.
    pub fn check_leader_epoch(&self, current_leader_epoch: i32) -> Result<(), PartitionError> {
        let ours = self.leader_epoch();
        match current_leader_epoch {
            -1 => Ok(()),
            e if e > ours => Err(PartitionError::UnknownLeaderEpoch),
            e if e < ours => Err(PartitionError::FencedLeaderEpoch),
            _ => Ok(()),
        }
    }

    /// Brings this replica's role in line with `p`, its registration in the image, on broker
    /// `local` (Kafka's makeLeader / makeFollower, and an ISR change within a leader epoch).
    pub fn sync_role(
        &self,
        p: &PartitionImage,
        local: i32,
        replica_lag_time_max_ms: u64,
        now_ms: u64,
    ) -> Result<(), PartitionError> {
        let mut guard = self.inner.lock();
        let inner = guard.as_mut().ok_or(PartitionError::Deleted)?;
        let config = LeaderConfig {
            replica_lag_time_max_ms,
            min_insync_replicas: inner.policy.min_insync_replicas,
        };
        let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
        let mut wake = false;
        if p.leader == local {
            if let Role::Leader(state) = &mut inner.role {
                if state.leader_epoch().0 == p.leader_epoch {
                    state.set_config(config);
                    let actions = state.on_isr_committed(
                        LeaderEpoch(p.leader_epoch),
                        ids(&p.isr),
                        PartitionEpoch(p.partition_epoch),
                    );
                    wake = inner.apply(actions, &mut Vec::new());
                    if wake {
                        self.appended.notify_waiters();
                    }
                    return Ok(());
                }
            }
            // Kafka's makeLeader: the new epoch starts at the log end offset.
            inner.log.assign_leader_epoch(p.leader_epoch)?;
            let registration = LeaderAndIsr {
                leader_epoch: LeaderEpoch(p.leader_epoch),
                partition_epoch: PartitionEpoch(p.partition_epoch),
                replicas: ids(&p.replicas),
                isr: ids(&p.isr),
            };
            let end = Offset(inner.log.log_end_offset());
            match LeaderState::become_leader(
                BrokerId(local),
                registration,
                end,
                Offset(inner.high_watermark),
                now_ms,
                config,
            ) {
                Ok((state, actions)) => {
                    tracing::info!(topic = %self.topic, partition = self.index, leader_epoch = p.leader_epoch, isr = ?p.isr, log_end_offset = end.0, high_watermark = inner.high_watermark, "leading");
                    inner.role = Role::Leader(state);
                    inner.apply(actions, &mut Vec::new());
                }
                Err(e) => {
                    tracing::error!(topic = %self.topic, partition = self.index, error = %e, "cannot lead");
                    inner.role = Role::Follower {
                        leader: -1,
                        leader_epoch: p.leader_epoch,
                    };
                }
            }
            wake = true;
        } else {
            let same = matches!(inner.role, Role::Follower { leader, leader_epoch }
                if leader == p.leader && leader_epoch == p.leader_epoch);
            if !same {
                tracing::info!(topic = %self.topic, partition = self.index, leader = p.leader, leader_epoch = p.leader_epoch, "following");
                inner.role = Role::Follower {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                };
                wake = true;
            }
        }
        if wake {
            self.appended.notify_waiters();
        }
        Ok(())
    }

    /// The leader's side of a follower's fetch: `replica` fetches from `fetch_offset` (its log
    /// end offset) in `current_leader_epoch`. Updates its progress (which may advance the high
    /// watermark and propose adding it to the ISR, returned), then reads whole batches from
    /// there up to the log end, not the high watermark.
    pub fn read_for_follower(
        &self,
        replica: i32,
        current_leader_epoch: i32,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<(ReadInfo, PartitionOffsets, Vec<IsrProposal>), PartitionError> {
        self.check_leader_epoch(current_leader_epoch)?;
        let mut guard = self.inner.lock();
        let inner = guard.as_mut().ok_or(PartitionError::Deleted)?;
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let leader = inner.leader().ok_or(PartitionError::NotLeader)?;
        let mut proposals = Vec::new();
        match leader.on_follower_fetch(BrokerId(replica), Offset(fetch_offset), now) {
            Ok(actions) => {
                if inner.apply(actions, &mut proposals) {
                    self.appended.notify_waiters();
                }
            }
            Err(oxka_replication::ReplicationError::NotAReplica { .. }) => {
                return Err(PartitionError::NotLeader);
            }
            // Out of range: the log's own check below answers OFFSET_OUT_OF_RANGE.
            Err(_) => {}
        }
        let end = inner.log.log_end_offset();
        let info = inner
            .log
            .read(fetch_offset, max_bytes, end, min_one_batch)?;
        Ok((info, inner.offsets(), proposals))
    }

    /// The leader's periodic ISR check (Kafka's isr-expiration task): the ISR shrink to
    /// propose, if a follower fell behind for longer than replica.lag.time.max.ms.
    pub fn isr_tick(&self, now_ms: u64) -> Vec<IsrProposal> {
        let mut guard = self.inner.lock();
        let Some(inner) = guard.as_mut() else {
            return Vec::new();
        };
        let Some(leader) = inner.leader() else {
            return Vec::new();
        };
        let actions = leader.on_tick(now_ms);
        let mut proposals = Vec::new();
        inner.apply(actions, &mut proposals);
        proposals
    }

    /// The controller refused an ISR change that was based on `partition_epoch` without
    /// applying it: the next event may propose again.
    pub fn isr_rejected(&self, partition_epoch: i32) {
        let mut guard = self.inner.lock();
        if let Some(inner) = guard.as_mut() {
            if let Some(leader) = inner.leader() {
                let actions = leader.on_isr_rejected(PartitionEpoch(partition_epoch));
                if inner.apply(actions, &mut Vec::new()) {
                    self.appended.notify_waiters();
                }
            }
        }
    }

    /// The ISR as this leader knows it, `None` on a follower (for the under-replicated count).
    pub fn isr_len(&self) -> Option<(usize, usize)> {
        let mut guard = self.inner.lock();
        let leader = guard.as_mut()?.leader()?;
        Some((leader.isr().len(), leader.replicas().len()))
    }

    /// Which broker this replica follows and in which epoch; `None` when it leads.
    pub fn following(&self) -> Option<(i32, i32)> {
        let guard = self.inner.lock();
        match &guard.as_ref()?.role {
            Role::Follower {
                leader,
                leader_epoch,
            } => Some((*leader, *leader_epoch)),
            Role::Leader(_) => None,
        }
    }

    /// A follower's append of batches fetched from its leader, with the leader's high
    /// watermark and log start offset from the same response: the batches keep their offsets
    /// and epochs, producer state and the transaction index learn them as on the leader, and
    /// the high watermark becomes the leader's (bounded by this log's end). The log end offset.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start_offset: i64,
    ) -> Result<i64, PartitionError> {
        let mut guard = self.inner.lock();
        let inner = guard.as_mut().ok_or(PartitionError::Deleted)?;
        if matches!(inner.role, Role::Leader(_)) {
            return Err(PartitionError::NotLeader);
        }
        if !records.is_empty() {
            let base_before = inner.log.active_base_offset();
            let info = inner.log.append_as_follower(records, now_ms())?;
            snapshot_if_rolled(inner, base_before);
            track_batches(inner, records)?;
            inner.unflushed_records += info.num_records;
        }
        let end = inner.log.log_end_offset();
        if leader_log_start_offset > inner.log.log_start_offset() && leader_log_start_offset <= end
        {
            inner.log.delete_records_before(leader_log_start_offset)?;
        }
        let hw = leader_high_watermark.min(end);
        if hw != inner.high_watermark || !records.is_empty() {
            inner.high_watermark = hw;
            self.appended.notify_waiters();
        }
        Ok(end)
    }

    /// A follower's truncation (KIP-101/279): removes every offset from `offset` on and
    /// rebuilds the producer state from what is left. The new log end offset.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, PartitionError> {
        let mut guard = self.inner.lock();
        let inner = guard.as_mut().ok_or(PartitionError::Deleted)?;
        let before = inner.log.log_end_offset();
        inner.log.truncate_to(offset)?;
        let end = inner.log.log_end_offset();
        if end != before {
            tracing::info!(topic = %self.topic, partition = self.index, from = before, to = end, "truncated");
            inner.producers = rebuild_producer_state(&mut inner.log)?;
        }
        inner.high_watermark = inner.high_watermark.min(end);
        Ok(end)
    }

    /// A follower whose log ends before the leader's log start: empties it and starts at
    /// `offset`.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), PartitionError> {
        let mut guard = self.inner.lock();
        let inner = guard.as_mut().ok_or(PartitionError::Deleted)?;
        tracing::info!(topic = %self.topic, partition = self.index, offset, "truncating fully: the leader's log starts after this replica's end");
        inner.log.truncate_fully_and_start_at(offset)?;
        inner.producers = ProducerStateManager::default();
        inner.high_watermark = offset;
        Ok(())
    }

    /// The follower's view for its truncation exchange: (latest epoch in its cache, log end
    /// offset, high watermark, the epoch cache).
    pub fn follower_truncation_view(
        &self,
    ) -> Result<(oxka_replication::LeaderEpochCache, i64, i64), PartitionError> {
        let guard = self.inner.lock();
        let inner = guard.as_ref().ok_or(PartitionError::Deleted)?;
        let mut cache = oxka_replication::LeaderEpochCache::new();
        for e in inner.log.epoch_entries() {
            cache.assign(LeaderEpoch(e.epoch), Offset(e.start_offset));
        }
        Ok((
            cache,
            inner.log.log_end_offset(),
            inner.high_watermark.min(inner.log.log_end_offset()),
        ))
    }

    /// The log end offset and start offset (for a follower's next fetch).
    pub fn log_end_and_start(&self) -> Result<(i64, i64), PartitionError> {
        self.with_log(|log| Ok((log.log_end_offset(), log.log_start_offset())))
    }

    /// Reads whole batches up to the log end, not the high watermark: for a coordinator loading
    /// its partition on becoming leader (records above the high watermark are this leader's and
    /// will be committed; Kafka's coordinator loader reads to the log end too).
    pub fn read_to_end(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(ReadInfo, i64), PartitionError> {
        self.with_log(|log| {
            let end = log.log_end_offset();
            Ok((log.read(offset, max_bytes, end, true)?, end))
        })
    }

    /// Writes a transaction marker (a control batch: commit or abort) for `producer_id` at
    /// `producer_epoch`, closing its open transaction here; the marker's offset. Written by
    /// the transaction coordinator only.
    pub fn write_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<i64, PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        let leader_epoch = inner
            .leader()
            .ok_or(PartitionError::NotLeader)?
            .leader_epoch()
            .0;
        let now = now_ms();
        let mut batch =
            crate::txn::marker::encode(producer_id, producer_epoch, commit, coordinator_epoch, now);
        let base_before = inner.log.active_base_offset();
        let info = inner.log.append_as_leader(&mut batch, leader_epoch, now)?;
        snapshot_if_rolled(inner, base_before);
        complete_txn(
            inner,
            producer_id,
            producer_epoch,
            info.first_offset,
            commit,
            now,
        )?;
        inner.unflushed_records += info.num_records;
        self.leader_appended(inner);
        Ok(info.first_offset)
    }

    /// The last stable offset: the first offset of the earliest open transaction, else the
    /// high watermark.
    pub fn last_stable_offset(&self) -> Result<i64, PartitionError> {
        let inner = self.inner.lock();
        Ok(inner
            .as_ref()
            .ok_or(PartitionError::Deleted)?
            .last_stable_offset())
    }

    /// A read_committed read: whole batches from `offset` bounded by the last stable offset,
    /// with the aborted transactions overlapping what was read. Returns the offsets and LSO.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<(ReadInfo, PartitionOffsets, i64, Vec<AbortedTxn>), PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        let offsets = inner.offsets();
        let lso = inner.last_stable_offset();
        let info = inner.log.read(offset, max_bytes, lso, min_one_batch)?;
        let mut end = offset;
        let mut buf = &info.records[..];
        while let Some(h) = BatchHeader::parse(buf) {
            end = h.next_offset();
            match h.size_in_bytes() {
                Some(size) if size <= buf.len() => buf = &buf[size..],
                _ => break,
            }
        }
        let aborted = if end > offset {
            inner.producers.aborted_between(offset, end)
        } else {
            Vec::new()
        };
        Ok((info, offsets, lso, aborted))
    }

    /// Every producer of this partition (DescribeProducers).
    #[allow(clippy::type_complexity)]
    pub fn producers(&self) -> Result<Vec<(i64, i16, i32, i64, Option<i64>)>, PartitionError> {
        let inner = self.inner.lock();
        let inner = inner.as_ref().ok_or(PartitionError::Deleted)?;
        Ok(inner.producers.producers())
    }

    /// Fsyncs the log if anything was appended since the last flush. Blocking.
    pub fn flush(&self) -> Result<(), PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        if inner.unflushed_records > 0 {
            inner.log.flush()?;
            inner.unflushed_records = 0;
        }
        inner.last_flush_ms = now_ms();
        Ok(())
    }

    /// Writes the producer state as of the log end (clean shutdown), so the next start-up
    /// rescans nothing.
    pub fn write_producer_snapshot(&self) -> Result<(), PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        let end = inner.log.log_end_offset();
        // An empty log has nothing to rescan.
        if end > inner.log.log_start_offset() {
            let entries = inner.producers.snapshot_entries();
            inner.log.write_producer_snapshot(end, &entries)?;
        }
        Ok(())
    }

    /// Kafka's flush after a roll: fsyncs the segments the log rolled away from, with the
    /// partition unlocked (appends go on meanwhile), then moves the recovery point to the
    /// active segment. Keeps dirty pages bounded to about the active segments. Blocking;
    /// whether anything was flushed.
    pub fn flush_rolled(&self) -> Result<bool, PartitionError> {
        let pending = {
            let inner = self.inner.lock();
            inner
                .as_ref()
                .ok_or(PartitionError::Deleted)?
                .log
                .rolled_unflushed()
        };
        let Some(pending) = pending else {
            return Ok(false);
        };
        pending.sync()?;
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        inner.log.mark_rolled_flushed(&pending)?;
        Ok(true)
    }

    /// Whether `flush.ms` has passed with unflushed records.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        self.inner.lock().as_ref().is_some_and(|i| {
            i.unflushed_records > 0 && now_ms.saturating_sub(i.last_flush_ms) >= i.policy.flush_ms
        })
    }

    /// Kafka's LogValidator checks on a produce: exactly one batch (Produce v3+), zstd only
    /// from Produce v7, and every record of the batch parsed (decompressing if needed) with the
    /// count the header claims; on a compacted topic every record needs a key. Header, size and
    /// CRC checks are the log's own (`validate_batches`).
    fn validate_records(
        &self,
        records: &[u8],
        allow_zstd: bool,
        rules: &TopicRules,
    ) -> Result<(), PartitionError> {
        let Ok(batch) = RecordBatch::from_prefix(records) else {
            return Ok(()); // the log reports malformed or empty input
        };
        if batch.size_in_bytes() != records.len() {
            return Err(PartitionError::InvalidRecord(
                "Produce requests with version 3 and above must contain exactly one record batch"
                    .into(),
            ));
        }
        if !batch.is_valid() {
            return Ok(()); // CRC mismatch: CORRUPT_MESSAGE from the log
        }
        if !allow_zstd && matches!(batch.compression(), Ok(oxka_log::Compression::Zstd)) {
            return Err(PartitionError::UnsupportedCompressionType);
        }
        let payload = batch
            .records_payload()
            .map_err(|e| PartitionError::CorruptMessage(e.to_string()))?;
        let mut count: i64 = 0;
        let now = now_ms();
        let earliest = now.saturating_sub(rules.timestamp_before_ms);
        let latest = now.saturating_add(rules.timestamp_after_ms);
        let check_time =
            rules.create_time && batch.timestamp_type() == oxka_log::TimestampType::CreateTime;
        // As Kafka's LogValidator: every record is checked (key first, then timestamp) and
        // all offending records are reported together.
        let mut errors = Vec::new();
        let mut timestamp_error = false;
        for record in batch.records(&payload) {
            let record = record.map_err(|e| PartitionError::CorruptMessage(e.to_string()))?;
            let index = i32::try_from(count).unwrap_or(i32::MAX);
            let timestamp = batch.base_timestamp().wrapping_add(record.timestamp_delta);
            if rules.compact && record.key.is_none() {
                errors.push((
                    index,
                    format!(
                        "Compacted topic cannot accept message without key in topic partition {}-{}.",
                        self.topic, self.index
                    ),
                ));
            } else if check_time && timestamp != -1 && !(earliest..=latest).contains(&timestamp) {
                timestamp_error = true;
                errors.push((
                    index,
                    format!(
                        "Timestamp {timestamp} of message with offset delta {} is out of range. The timestamp should be within [{earliest}, {latest}]",
                        record.offset_delta
                    ),
                ));
            }
            count += 1;
        }
        if count != i64::from(batch.records_count()) {
            return Err(PartitionError::InvalidRecord(format!(
                "Record count {} does not match the {count} records in the batch",
                batch.records_count()
            )));
        }
        if !errors.is_empty() {
            return Err(PartitionError::RecordErrors {
                timestamp: timestamp_error,
                errors,
            });
        }
        Ok(())
    }

    /// Applies retention if the topic's cleanup policy includes `delete`; the number of
    /// segments deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        let base_before = inner.log.active_base_offset();
        inner.log.maybe_roll(now_ms)?;
        snapshot_if_rolled(inner, base_before);
        if !inner.policy.delete {
            return Ok(0);
        }
        let deleted = inner.log.enforce_retention(now_ms)?;
        // Aborted transactions wholly below the log start are never fetched again.
        let log_start = inner.log.log_start_offset();
        inner.producers.forget_aborted_before(log_start);
        Ok(deleted)
    }

    /// One log-compaction pass when the topic's cleanup policy includes `compact` and a pass is
    /// due (see `oxka_log::cleaner`). The lock is held to plan the pass and to swap the cleaned
    /// segments in, not while they are written: appends and reads go on meanwhile.
    pub fn compact(
        &self,
        now_ms: i64,
        cleaner: &oxka_log::CleanerConfig,
    ) -> Result<Option<oxka_log::CompactionStats>, PartitionError> {
        let job = {
            let inner = self.inner.lock();
            let inner = inner.as_ref().ok_or(PartitionError::Deleted)?;
            if !inner.policy.compact {
                return Ok(None);
            }
            let high_watermark = inner.offsets().high_watermark;
            match inner
                .log
                .prepare_compaction(now_ms, high_watermark, cleaner)?
            {
                Some(job) => job,
                None => return Ok(None),
            }
        };
        let cleaned = job.clean()?;
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        Ok(Some(inner.log.finish_compaction(cleaned)?))
    }

    /// Forgets idle producers (`producer.id.expiration.ms`).
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.inner
            .lock()
            .as_mut()
            .map_or(0, |i| i.producers.expire(now_ms, expiration_ms))
    }

    /// Reads whole batches from `offset`, bounded by the high watermark.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<(ReadInfo, PartitionOffsets), PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
        let offsets = inner.offsets();
        let info = inner
            .log
            .read(offset, max_bytes, offsets.high_watermark, min_one_batch)?;
        Ok((info, offsets))
    }

    pub fn offsets(&self) -> Result<PartitionOffsets, PartitionError> {
        let inner = self.inner.lock();
        Ok(inner.as_ref().ok_or(PartitionError::Deleted)?.offsets())
    }

    pub fn size_bytes(&self) -> Result<u64, PartitionError> {
        self.with_log(|log| Ok(log.size_bytes()))
    }

    /// Runs `f` on the log, failing if the partition was deleted.
    /// The topic configs this partition enforces (cleanup policy, timestamps, flushing).
    pub fn rules(&self) -> Result<TopicRules, PartitionError> {
        let inner = self.inner.lock();
        Ok(inner.as_ref().ok_or(PartitionError::Deleted)?.policy)
    }

    pub fn with_log<T>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<T, PartitionError>,
    ) -> Result<T, PartitionError> {
        let mut inner = self.inner.lock();
        f(&mut inner.as_mut().ok_or(PartitionError::Deleted)?.log)
    }

    fn take_log(&self) -> Option<Log> {
        self.inner.lock().take().map(|i| i.log)
    }
}

/// Closes `producer_id`'s transaction at the marker at `marker_offset` (leader and follower
/// alike): an aborted one goes to the transaction index, so read_committed fetches skip it.
fn complete_txn(
    inner: &mut Inner,
    producer_id: i64,
    producer_epoch: i16,
    marker_offset: i64,
    commit: bool,
    timestamp: i64,
) -> Result<(), LogError> {
    let lso = inner.producers.first_unstable_offset();
    inner.producers.complete_txn(
        producer_id,
        producer_epoch,
        marker_offset,
        commit,
        timestamp,
    );
    if let Some(a) = inner.producers.aborted_at(producer_id, marker_offset) {
        inner.log.append_aborted_txn(&oxka_log::AbortedTxnEntry {
            producer_id,
            first_offset: a.first_offset,
            last_offset: a.last_offset,
            last_stable_offset: lso.unwrap_or(marker_offset).min(marker_offset),
        })?;
    }
    Ok(())
}

/// What producer state keeps of a batch already in the log (replay, follower appends).
fn batch_meta(h: &BatchHeader) -> BatchMeta {
    BatchMeta {
        first_seq: h.base_sequence,
        last_seq: producer_state::last_seq(h.base_sequence, h.last_offset_delta),
        first_offset: h.base_offset,
        last_offset: h.last_offset(),
        timestamp: h.max_timestamp,
    }
}

/// A follower's producer state learns the batches it appended, as the leader's did.
fn track_batches(inner: &mut Inner, mut records: &[u8]) -> Result<(), LogError> {
    while let Some(h) = BatchHeader::parse(records) {
        let Some(size) = h.size_in_bytes().filter(|s| *s <= records.len()) else {
            break;
        };
        if h.producer_id >= 0 && h.attributes & CONTROL_BIT != 0 {
            if let Some(commit) = crate::txn::marker::decode_commit(&records[..size]) {
                complete_txn(
                    inner,
                    h.producer_id,
                    h.producer_epoch,
                    h.base_offset,
                    commit,
                    h.max_timestamp,
                )?;
            }
        } else if h.producer_id >= 0 {
            inner.producers.record(
                h.producer_id,
                h.producer_epoch,
                batch_meta(&h),
                h.attributes & TRANSACTIONAL_BIT != 0,
            );
        }
        records = &records[size..];
    }
    Ok(())
}

#[derive(Debug, Default)]
struct HostedTopic {
    topic_id: Uuid,
    partitions: BTreeMap<i32, Arc<Partition>>,
}

/// All partitions hosted by this broker.
#[derive(Debug)]
pub struct PartitionManager {
    node_id: i32,
    log_dirs: Vec<PathBuf>,
    topics: RwLock<HashMap<String, HostedTopic>>,
    /// Serialises reconciliations so that two never open the same log.
    reconcile_lock: Mutex<()>,
    /// The high watermarks of the last run (`replication-offset-checkpoint` in each log dir),
    /// where a partition's opens: its leader must not expose less than it did.
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
}

/// Kafka's per-log-dir checkpoint of high watermarks.
pub const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";

impl PartitionManager {
    pub fn new(node_id: i32, log_dirs: Vec<PathBuf>) -> PartitionManager {
        let mut high_watermarks = HashMap::new();
        for dir in &log_dirs {
            let path = dir.join(HIGH_WATERMARK_CHECKPOINT);
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse_high_watermarks(&text) {
                    Some(entries) => high_watermarks.extend(entries),
                    None => {
                        tracing::warn!(path = %path.display(), "ignoring a malformed high watermark checkpoint")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the high watermark checkpoint")
                }
            }
        }
        PartitionManager {
            node_id,
            log_dirs,
            topics: RwLock::new(HashMap::new()),
            reconcile_lock: Mutex::new(()),
            high_watermarks: Mutex::new(high_watermarks),
        }
    }

    /// Writes every hosted partition's high watermark to `replication-offset-checkpoint` in its
    /// log dir (Kafka's format: version 0, a count, then `topic partition offset` lines),
    /// atomically. Blocking; run every few seconds and at shutdown.
    pub fn checkpoint_high_watermarks(&self) -> std::io::Result<()> {
        let mut by_dir: HashMap<PathBuf, Vec<(String, i32, i64)>> = HashMap::new();
        for p in self.all() {
            let Some((dir, hw)) = p
                .with_log(|log| {
                    Ok((
                        log.dir().parent().map(Path::to_path_buf),
                        log.log_end_offset(),
                    ))
                })
                .ok()
                .and_then(|(dir, end)| Some((dir?, p.offsets().ok()?.high_watermark.min(end))))
            else {
                continue;
            };
            by_dir
                .entry(dir)
                .or_default()
                .push((p.topic.clone(), p.index, hw));
        }
        let mut saved = self.high_watermarks.lock();
        for dir in &self.log_dirs {
            let entries = by_dir.remove(dir).unwrap_or_default();
            let mut text = format!("0\n{}\n", entries.len());
            for (topic, partition, hw) in &entries {
                text.push_str(&format!("{topic} {partition} {hw}\n"));
                saved.insert((topic.clone(), *partition), *hw);
            }
            let tmp = dir.join(format!("{HIGH_WATERMARK_CHECKPOINT}.tmp"));
            std::fs::write(&tmp, text)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, dir.join(HIGH_WATERMARK_CHECKPOINT))?;
        }
        Ok(())
    }

    /// Brings every hosted partition's role in line with `image` (leader, follower, ISR
    /// changes) and returns what this broker follows, by leader. Run after `reconcile`.
    pub fn sync_roles(&self, image: &MetadataImage, replica_lag_time_max_ms: u64) -> FollowerSet {
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let mut followed = FollowerSet::new();
        for (name, topic) in &image.topics {
            for p in &topic.partitions {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                let Some(partition) = self.get(name, p.partition) else {
                    continue;
                };
                if partition.topic_id != topic.topic_id {
                    continue;
                }
                if let Err(e) = partition.sync_role(p, self.node_id, replica_lag_time_max_ms, now) {
                    tracing::error!(topic = %name, partition = p.partition, error = %e, "changing the replica's role failed");
                    continue;
                }
                if p.leader != self.node_id && p.leader >= 0 {
                    followed
                        .entry(p.leader)
                        .or_default()
                        .push((partition, p.leader_epoch));
                }
            }
        }
        followed
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.topics
            .read()
            .get(topic)
            .and_then(|t| t.partitions.get(&partition).cloned())
    }

    /// Every hosted partition, in topic then partition order.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        let topics = self.topics.read();
        let mut names: Vec<&String> = topics.keys().collect();
        names.sort();
        names
            .into_iter()
            .flat_map(|n| topics[n].partitions.values().cloned())
            .collect()
    }

    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// Brings hosted partitions in line with `image`. Blocking.
    pub fn reconcile(&self, image: &MetadataImage, config: &BrokerConfig) -> Result<(), LogError> {
        let _guard = self.reconcile_lock.lock();
        // Topics removed (or re-created under a new id) lose their logs.
        let stale: Vec<(String, HostedTopic)> = {
            let mut topics = self.topics.write();
            let names: Vec<String> = topics
                .iter()
                .filter(|(name, hosted)| {
                    image
                        .topic(name)
                        .is_none_or(|t| t.topic_id != hosted.topic_id)
                })
                .map(|(name, _)| name.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|n| topics.remove(&n).map(|t| (n, t)))
                .collect()
        };
        for (name, hosted) in stale {
            for partition in hosted.partitions.values() {
                if let Some(log) = partition.take_log() {
                    tracing::info!(topic = %name, partition = partition.index, "deleting partition log");
                    log.delete()?;
                }
            }
        }
        // Replicas moved off this broker (a reassignment) lose their logs, as Kafka's
        // StopReplica with deletion.
        let moved: Vec<Arc<Partition>> = {
            let mut topics = self.topics.write();
            let mut out = Vec::new();
            for (name, hosted) in topics.iter_mut() {
                let Some(topic) = image.topic(name) else {
                    continue;
                };
                let gone: Vec<i32> = hosted
                    .partitions
                    .keys()
                    .copied()
                    .filter(|i| {
                        topic
                            .partitions
                            .iter()
                            .find(|p| p.partition == *i)
                            .is_some_and(|p| !p.replicas.contains(&self.node_id))
                    })
                    .collect();
                out.extend(gone.iter().filter_map(|i| hosted.partitions.remove(i)));
            }
            out
        };
        for partition in moved {
            if let Some(log) = partition.take_log() {
                tracing::info!(topic = %partition.topic, partition = partition.index, "deleting the log of a replica moved off this broker");
                log.delete()?;
            }
        }
        // Start-up (or a topic change) opens every log not hosted yet: one line per log, with
        // progress, as Kafka's "Completed load of log ... (n/total completed)".
        let to_open = image
            .topics
            .iter()
            .flat_map(|(name, t)| t.partitions.iter().map(move |p| (name, p)))
            .filter(|(name, p)| {
                p.replicas.contains(&self.node_id) && self.get(name, p.partition).is_none()
            })
            .count();
        let mut opened = 0usize;
        let started = std::time::Instant::now();
        for (name, topic) in &image.topics {
            let overrides = image.topic_overrides(name);
            let log_config = config.log_config(overrides);
            let policy = TopicRules::of(config, overrides);
            for p in &topic.partitions {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                if let Some(existing) = self.get(name, p.partition) {
                    if let Some(inner) = existing.inner.lock().as_mut() {
                        inner.log.update_config(log_config.clone());
                        inner.policy = policy;
                    }
                    continue;
                }
                let dir = self.dir_for(name, p.partition);
                let log_started = std::time::Instant::now();
                let mut log = Log::open(&dir, log_config.clone(), now_ms())?;
                let producers = rebuild_producer_state(&mut log)?;
                opened += 1;
                tracing::info!(
                    topic = %name,
                    partition = p.partition,
                    log_start_offset = log.log_start_offset(),
                    log_end_offset = log.log_end_offset(),
                    elapsed_ms = log_started.elapsed().as_millis() as u64,
                    "loaded log {opened}/{to_open} ({}%, {} ms so far)",
                    opened * 100 / to_open.max(1),
                    started.elapsed().as_millis()
                );
                let partition = Arc::new(Partition {
                    topic: name.clone(),
                    topic_id: topic.topic_id,
                    index: p.partition,
                    inner: Mutex::new(Some(Inner {
                        high_watermark: self
                            .high_watermarks
                            .lock()
                            .get(&(name.clone(), p.partition))
                            .copied()
                            .unwrap_or(log.log_start_offset()),
                        log,
                        producers,
                        policy,
                        unflushed_records: 0,
                        last_flush_ms: now_ms(),
                        // The role comes from the image right after (`sync_roles`).
                        role: Role::Follower {
                            leader: -1,
                            leader_epoch: -1,
                        },
                    })),
                    appended: tokio::sync::Notify::new(),
                });
                let mut topics = self.topics.write();
                let hosted = topics.entry(name.clone()).or_insert_with(|| HostedTopic {
                    topic_id: topic.topic_id,
                    partitions: BTreeMap::new(),
                });
                hosted.partitions.insert(p.partition, partition);
            }
        }
        Ok(())
    }

    /// Deletes partition directories that no topic in `image` owns (left by a crash in the
    /// middle of a topic deletion). Run once at start-up, before the first reconcile.
    pub fn remove_orphans(&self, image: &MetadataImage) {
        let wanted: HashSet<String> = image
            .topics
            .values()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| partition_dir_name(&t.name, p.partition))
            })
            .collect();
        for dir in &self.log_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !entry.path().is_dir() || name.starts_with("__cluster_metadata") {
                    continue;
                }
                let looks_like_partition = name
                    .rsplit_once('-')
                    .is_some_and(|(_, p)| p.parse::<u32>().is_ok());
                if looks_like_partition && !wanted.contains(&name) {
                    tracing::warn!(dir = %entry.path().display(), "removing orphaned partition directory");
                    if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                        tracing::error!(error = %e, "could not remove orphaned partition directory");
                    }
                }
            }
        }
    }

    /// The directory of a partition: where it already is, else the log dir hosting fewest.
    fn dir_for(&self, topic: &str, partition: i32) -> PathBuf {
        let name = partition_dir_name(topic, partition);
        if let Some(existing) = self
            .log_dirs
            .iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_dir())
        {
            return existing;
        }
        if let [only] = self.log_dirs.as_slice() {
            // One log dir (the common case): nothing to balance, and counting its entries for
            // every new partition would make creating N partitions O(N²).
            return only.join(name);
        }
        let count = |d: &Path| std::fs::read_dir(d).map(|e| e.count()).unwrap_or(0);
        let dir = self
            .log_dirs
            .iter()
            .min_by_key(|d| count(d))
            .expect("at least one log dir");
        dir.join(name)
    }
}

/// When the log has just rolled, the producer state as of the new segment's base (nothing
/// of the new segment recorded yet) goes to `<base>.snapshot`. A failed snapshot only makes
/// the next start-up rescan more.
fn snapshot_if_rolled(inner: &mut Inner, base_before: i64) {
    let base = inner.log.active_base_offset();
    if base != base_before {
        let entries = inner.producers.snapshot_entries();
        if let Err(e) = inner.log.write_producer_snapshot(base, &entries) {
            tracing::warn!(partition = %inner.log.dir().file_name().map(|n| n.to_string_lossy()).unwrap_or_default(), dir = %inner.log.dir().display(), error = %e, "writing a producer snapshot failed");
        }
    }
}

/// How much of a log's tail is scanned at start-up to rebuild idempotent-producer sequences.
/// Producers whose last batches are older than this are forgotten (as if expired) and get
/// UNKNOWN_PRODUCER_ID, from which clients recover by bumping their epoch.
const PRODUCER_STATE_SCAN_SEGMENTS: usize = 2;

/// Rebuilds producer state at open: the newest producer snapshot and the `.txnindex`
/// entries, then the batch headers after the snapshot. Without a snapshot, sequences come
/// from the last segments and transactions from the whole log, once.
fn rebuild_producer_state(log: &mut Log) -> Result<ProducerStateManager, LogError> {
    let end = log.log_end_offset();
    if end == log.log_start_offset() {
        // Nothing to restore (and no directory listing: it costs start-up time per partition).
        return Ok(ProducerStateManager::default());
    }
    let indexed = log.aborted_txns()?;
    if let Some((from, entries)) = log.latest_producer_snapshot()? {
        let mut producers = ProducerStateManager::restore(&entries, &indexed);
        replay(log, &mut producers, from, from, end)?;
        producers.dedup_aborted();
        return Ok(producers);
    }
    // No snapshot (a log written before snapshots existed, or one that never rolled): sequences
    // from the last segments, transactions from the whole log; aborts found that no
    // `.txnindex` holds are added to the indexes, and a snapshot at the end is written so the
    // next start-up does not scan again.
    let mut producers = ProducerStateManager::restore(&[], &indexed);
    let bases = log.segment_base_offsets();
    let sequences_from = bases
        .iter()
        .rev()
        .nth(PRODUCER_STATE_SCAN_SEGMENTS - 1)
        .copied()
        .unwrap_or(log.log_start_offset())
        .max(log.log_start_offset());
    let start = log.log_start_offset();
    replay(log, &mut producers, start, sequences_from, end)?;
    producers.dedup_aborted();
    let known: std::collections::HashSet<(i64, i64)> = indexed
        .iter()
        .map(|a| (a.producer_id, a.last_offset))
        .collect();
    for a in producers.aborted_between(start, end) {
        if !known.contains(&(a.producer_id, a.last_offset)) {
            log.append_aborted_txn(&oxka_log::AbortedTxnEntry {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
                last_offset: a.last_offset,
                last_stable_offset: a.first_offset,
            })?;
        }
    }
    if end > start {
        log.write_producer_snapshot(end, &producers.snapshot_entries())?;
    }
    Ok(producers)
}

/// Replays batch headers of `log` from `offset` to `end` into `producers`: transactions from
/// `offset`, sequences from `sequences_from`. Control batches are decoded for commit/abort.
fn replay(
    log: &Log,
    producers: &mut ProducerStateManager,
    mut offset: i64,
    sequences_from: i64,
    end: i64,
) -> Result<(), LogError> {
    while offset < end {
        let chunk = log.read(offset, 4 << 20, end, true)?;
        let mut buf = &chunk.records[..];
        let mut advanced = false;
        while let Some(h) = BatchHeader::parse(buf) {
            let Some(size) = h.size_in_bytes().filter(|s| *s <= buf.len()) else {
                break;
            };
            let transactional = h.attributes & TRANSACTIONAL_BIT != 0;
            if h.producer_id >= 0 && h.attributes & CONTROL_BIT != 0 {
                if let Some(commit) = crate::txn::marker::decode_commit(&buf[..size]) {
                    producers.complete_txn(
                        h.producer_id,
                        h.producer_epoch,
                        h.base_offset,
                        commit,
                        h.max_timestamp,
                    );
                }
            } else if h.producer_id >= 0 && (transactional || h.base_offset >= sequences_from) {
                producers.record(
                    h.producer_id,
                    h.producer_epoch,
                    batch_meta(&h),
                    transactional,
                );
            }
            offset = h.next_offset();
            advanced = true;
            buf = &buf[size..];
        }
        if !advanced {
            break;
        }
    }
    Ok(())
}

/// `<topic>-<partition>`, Kafka's partition directory name.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The entries of a `replication-offset-checkpoint` file, `None` when malformed.
fn parse_high_watermarks(text: &str) -> Option<Vec<((String, i32), i64)>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = Vec::with_capacity(count);
    for line in lines.take(count) {
        let mut parts = line.split_whitespace();
        let topic = parts.next()?.to_owned();
        let partition = parts.next()?.parse().ok()?;
        let offset = parts.next()?.parse().ok()?;
        out.push(((topic, partition), offset));
    }
    (out.len() == count).then_some(out)
}
