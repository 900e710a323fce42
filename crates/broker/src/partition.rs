//! Partitions hosted by this broker and the manager that reconciles them against the
//! metadata image.
//!
//! A [`Partition`] owns its [`Log`] behind a mutex (appends and reads of one partition are
//! serialised; different partitions never contend). On a single node the high watermark is the
//! log end offset: every acknowledged write is on the only replica.
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
use oxka_metadata::MetadataImage;
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
    pub leader_epoch: i32,
    /// `None` once the partition has been deleted; requests still holding it get
    /// UNKNOWN_TOPIC_OR_PARTITION.
    inner: Mutex<Option<Inner>>,
    /// Woken after every append to this partition (records or a transaction marker), so that
    /// fetches long-polling on it re-check. Per partition, as Kafka's delayed-fetch purgatory is
    /// keyed: an append wakes only the fetches that asked for this partition.
    appended: tokio::sync::Notify,
}

/// The log and the producer state that must change together with it.
#[derive(Debug)]
struct Inner {
    log: Log,
    producers: ProducerStateManager,
    policy: TopicRules,
    /// Records appended since the last fsync, and when that was.
    unflushed_records: u64,
    last_flush_ms: i64,
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
    pub fn append_as_leader(
        &self,
        records: &mut [u8],
        allow_zstd: bool,
    ) -> Result<Appended, PartitionError> {
        let mut inner = self.inner.lock();
        let inner = inner.as_mut().ok_or(PartitionError::Deleted)?;
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
                });
            }
        }
        let base_before = inner.log.active_base_offset();
        let info: AppendInfo = inner
            .log
            .append_as_leader(records, self.leader_epoch, now_ms())?;
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
        self.appended.notify_waiters();
        Ok(Appended {
            first_offset: info.first_offset,
            log_append_time_ms: info.log_append_time_ms,
            num_records: info.num_records,
            bytes: info.bytes,
            duplicate: false,
            needs_flush: inner.unflushed_records >= inner.policy.flush_messages,
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
        let now = now_ms();
        let mut batch =
            crate::txn::marker::encode(producer_id, producer_epoch, commit, coordinator_epoch, now);
        let base_before = inner.log.active_base_offset();
        let info = inner
            .log
            .append_as_leader(&mut batch, self.leader_epoch, now)?;
        snapshot_if_rolled(inner, base_before);
        let lso = inner.producers.first_unstable_offset();
        inner
            .producers
            .complete_txn(producer_id, producer_epoch, info.first_offset, commit, now);
        if let Some(a) = inner.producers.aborted_at(producer_id, info.first_offset) {
            inner.log.append_aborted_txn(&oxka_log::AbortedTxnEntry {
                producer_id,
                first_offset: a.first_offset,
                last_offset: a.last_offset,
                last_stable_offset: lso.unwrap_or(info.first_offset).min(info.first_offset),
            })?;
        }
        inner.unflushed_records += info.num_records;
        self.appended.notify_waiters();
        Ok(info.first_offset)
    }

    /// The last stable offset: the first offset of the earliest open transaction, else the
    /// high watermark.
    pub fn last_stable_offset(&self) -> Result<i64, PartitionError> {
        let inner = self.inner.lock();
        let inner = inner.as_ref().ok_or(PartitionError::Deleted)?;
        let hw = inner.log.log_end_offset();
        Ok(inner
            .producers
            .first_unstable_offset()
            .map_or(hw, |f| f.min(hw)))
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
        let offsets = offsets_of(&inner.log);
        let lso = inner
            .producers
            .first_unstable_offset()
            .map_or(offsets.high_watermark, |f| f.min(offsets.high_watermark));
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
            let high_watermark = offsets_of(&inner.log).high_watermark;
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
        self.with_log(|log| {
            let offsets = offsets_of(log);
            let info = log.read(offset, max_bytes, offsets.high_watermark, min_one_batch)?;
            Ok((info, offsets))
        })
    }

    pub fn offsets(&self) -> Result<PartitionOffsets, PartitionError> {
        self.with_log(|log| Ok(offsets_of(log)))
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

fn offsets_of(log: &Log) -> PartitionOffsets {
    PartitionOffsets {
        log_start_offset: log.log_start_offset(),
        high_watermark: log.log_end_offset(),
    }
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
}

impl PartitionManager {
    pub fn new(node_id: i32, log_dirs: Vec<PathBuf>) -> PartitionManager {
        PartitionManager {
            node_id,
            log_dirs,
            topics: RwLock::new(HashMap::new()),
            reconcile_lock: Mutex::new(()),
        }
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
                if p.leader == self.node_id {
                    // As Kafka's makeLeader: the leader epoch is in the checkpoint before the
                    // first append, which then writes no file (a fsync per partition on the
                    // produce path otherwise).
                    log.assign_leader_epoch(p.leader_epoch)?;
                }
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
                    leader_epoch: p.leader_epoch,
                    inner: Mutex::new(Some(Inner {
                        log,
                        producers,
                        policy,
                        unflushed_records: 0,
                        last_flush_ms: now_ms(),
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
                    BatchMeta {
                        first_seq: h.base_sequence,
                        last_seq: producer_state::last_seq(h.base_sequence, h.last_offset_delta),
                        first_offset: h.base_offset,
                        last_offset: h.last_offset(),
                        timestamp: h.max_timestamp,
                    },
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
