//! The transaction coordinator shell: runs the [`TxnMetadata`] state machines, persists them
//! to `__transaction_state`, writes the commit/abort markers, and aborts transactions that
//! outlive their timeout.
//!
//! A transactional id is coordinated by the leader of partition
//! `abs(java_string_hash(transactional_id)) % transaction.state.log.num.partitions`, as in
//! Kafka; on one node that is always this broker. Each transactional id lives behind its own
//! mutex, held (on a blocking thread, never across an `.await`) while its records and markers
//! are written, so its log order is the order of its changes. Lock order: a transaction's
//! mutex, then a partition's.
//!
//! Ending a transaction writes PrepareCommit/PrepareAbort, then every marker, then
//! CompleteCommit/CompleteAbort, all before EndTxn is answered: on one node the markers are
//! local appends. A crash in between leaves a Prepare state in the log; loading finishes it.
//!
//! Start-up: [`TxnCoordinator::load`] reads every partition of `__transaction_state` this node
//! leads (later records win, tombstones delete) and completes transactions left in a Prepare
//! state. Until a partition is loaded its transactional ids get COORDINATOR_LOAD_IN_PROGRESS;
//! ids of a partition another node leads get NOT_COORDINATOR. Leadership changes in later
//! images load ([`TxnCoordinator::load_partitions`]) and unload
//! ([`TxnCoordinator::unload_partitions`]) partitions.
//!
//! Not supported yet: transactions across brokers. Markers are written only to partitions
//! this node leads (a marker for a partition led elsewhere would need a WriteTxnMarkers
//! client, which does not exist: it is skipped with a warning and that partition's
//! transaction stays open there), and a transactional produce is verified against this
//! node's transactions only (KIP-890), so producing to a broker that is not the
//! transaction's coordinator fails. Single-node transactions are unaffected.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use oxka_log::batch::BatchHeader;
use oxka_metadata::{ControllerError, CreateTopicSpec, MetadataImage};
use oxka_protocol::kafka_protocol;
use parking_lot::{Mutex, RwLock};

use super::records;
use super::state::{code, Action, Step, TopicPartition, TxnLimits, TxnMetadata, TxnState};
use crate::config::BrokerConfig;
use crate::group::coordinator::partition_for;
use crate::partition::{Partition, PartitionError};
use crate::{now_ms, Broker};

pub const TXN_TOPIC: &str = "__transaction_state";

/// Error codes the shell answers with (the core's are in [`code`]).
pub mod err {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
}

/// The coordinator's settings, from Kafka's config keys.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    pub limits: TxnLimits,
    /// `transaction.state.log.num.partitions` (50).
    pub num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3, capped to the live brokers).
    pub replication_factor: i16,
    /// `transaction.state.log.segment.bytes` (100 MiB).
    pub segment_bytes: i64,
    /// `transaction.state.log.min.isr`: the topic's `min.insync.replicas`.
    pub min_isr: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10 s).
    pub abort_check_interval_ms: i64,
    /// `transactional.id.expiration.ms` (7 days).
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (1 h).
    pub remove_expired_interval_ms: i64,
}

impl TxnConfig {
    pub fn from_broker(config: &BrokerConfig) -> TxnConfig {
        fn get<T: std::str::FromStr>(config: &BrokerConfig, key: &str, default: T) -> T {
            config
                .get(key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        }
        TxnConfig {
            limits: TxnLimits {
                max_timeout_ms: get(config, "transaction.max.timeout.ms", 900_000),
            },
            num_partitions: get(config, "transaction.state.log.num.partitions", 50).max(1),
            replication_factor: get(config, "transaction.state.log.replication.factor", 3),
            segment_bytes: get(config, "transaction.state.log.segment.bytes", 104_857_600),
            min_isr: get(config, "transaction.state.log.min.isr", 2).max(1),
            abort_check_interval_ms: get(
                config,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
            )
            .max(10),
            id_expiration_ms: get(config, "transactional.id.expiration.ms", 604_800_000),
            remove_expired_interval_ms: get(
                config,
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                3_600_000,
            )
            .max(10),
        }
    }
}

/// Creates `__transaction_state` through the controller if it does not exist yet.
pub fn ensure_txn_topic(
    controller: &oxka_metadata::Controller,
    config: &TxnConfig,
    live_brokers: usize,
) -> Result<Arc<MetadataImage>, ControllerError> {
    if controller.image().topic(TXN_TOPIC).is_some() {
        return Ok(controller.image());
    }
    // Kafka does not shrink the replication factor of an internal topic to the brokers
    // available: the topic is not created, and FindCoordinator answers
    // COORDINATOR_NOT_AVAILABLE until enough brokers are registered.
    if i64::from(config.replication_factor) > live_brokers as i64 {
        tracing::error!(
            "Number of alive brokers '{live_brokers}' does not meet the required replication factor '{}' for the transactions state topic (configured via 'transaction.state.log.replication.factor'); {TXN_TOPIC} is not created and FindCoordinator answers COORDINATOR_NOT_AVAILABLE until enough brokers are registered (on a single node set transaction.state.log.replication.factor=1).",
            config.replication_factor
        );
        return Ok(controller.image());
    }
    let rf = config.replication_factor.max(1);
    let configs = [
        ("cleanup.policy", "compact".to_owned()),
        ("compression.type", "uncompressed".to_owned()),
        ("segment.bytes", config.segment_bytes.to_string()),
        // Until the log cleaner compacts, time retention must not delete transaction state.
        ("retention.ms", "-1".to_owned()),
        ("min.insync.replicas", config.min_isr.to_string()),
    ];
    let spec = CreateTopicSpec {
        name: TXN_TOPIC.to_owned(),
        num_partitions: config.num_partitions,
        replication_factor: rf,
        assignments: Vec::new(),
        configs: configs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    };
    tracing::info!(
        partitions = config.num_partitions,
        replication_factor = rf,
        "creating {TXN_TOPIC}"
    );
    controller.create_topic(&spec, config.num_partitions, rf, false)
}

/// A transaction as DescribeTransactions and ListTransactions report it.
pub type TxnSnapshot = TxnMetadata;

/// The transaction coordinator. See the module docs.
#[derive(Debug)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: RwLock<HashMap<String, Arc<Mutex<TxnMetadata>>>>,
    /// Set once the start-up load has run (ListTransactions answers
    /// COORDINATOR_LOAD_IN_PROGRESS before).
    loaded: AtomicBool,
    /// The `__transaction_state` partitions whose transactions are in memory: only their
    /// transactional ids are served. Written only with `load_lock` held.
    loaded_partitions: RwLock<BTreeSet<i32>>,
    /// Serialises loads and unloads, so a partition is never read twice into memory.
    load_lock: Mutex<()>,
    /// Per transactional id, the partitions whose markers for its current prepare state are
    /// written (locally or by their leader through WriteTxnMarkers), and whether a send to
    /// other brokers is in flight: a prepare state completes once every partition is written.
    markers: Mutex<HashMap<String, MarkerProgress>>,
    /// The broker, for sending markers to other brokers from a background task.
    broker: std::sync::OnceLock<Weak<Broker>>,
}

#[derive(Debug, Default)]
struct MarkerProgress {
    written: BTreeSet<TopicPartition>,
    sending: bool,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator {
            config,
            txns: RwLock::new(HashMap::new()),
            loaded: AtomicBool::new(false),
            loaded_partitions: RwLock::new(BTreeSet::new()),
            load_lock: Mutex::new(()),
            markers: Mutex::new(HashMap::new()),
            broker: std::sync::OnceLock::new(),
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Loads `__transaction_state` (blocking, on a thread of its own), then checks for timed
    /// out transactions every `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    /// until the broker is dropped. Needs a tokio runtime.
    pub fn start(broker: &Arc<Broker>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime: transaction coordinator not started");
            return;
        };
        let weak: Weak<Broker> = Arc::downgrade(broker);
        let _ = broker.txns.broker.set(weak.clone());
        let interval_ms = broker.txns.config.abort_check_interval_ms as u64;
        runtime.spawn(async move {
            let loader = weak.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                // Transactions left in a prepare state are finished at load, which may apply
                // transactional offset commits: the groups must be loaded first (bounded wait).
                for _ in 0..1200 {
                    match loader.upgrade() {
                        Some(b) if b.groups.list().is_err() => {}
                        _ => break,
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                if let Some(b) = loader.upgrade() {
                    b.txns.load(&b);
                }
            })
            .await;
            if let Err(e) = loaded {
                tracing::error!(error = %e, "loading {TXN_TOPIC} failed");
                return;
            }
            let mut interval = tokio::time::interval(Duration::from_millis(interval_ms));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_expiry = now_ms();
            loop {
                interval.tick().await;
                let Some(b) = weak.upgrade() else { return };
                let now = now_ms();
                let expire = now - last_expiry >= b.txns.config.remove_expired_interval_ms;
                if expire {
                    last_expiry = now;
                }
                let ticked = tokio::task::spawn_blocking(move || {
                    b.txns.tick(&b, now);
                    if expire {
                        b.txns.expire_ids(&b, now);
                    }
                })
                .await;
                if let Err(e) = ticked {
                    tracing::error!(error = %e, "transaction timeout check failed");
                }
            }
        });
    }

    /// Reads every partition of `__transaction_state`, then finishes transactions left in a
    /// Prepare state (their markers are written again; markers are idempotent for readers).
    /// Blocking.
    pub fn load(&self, broker: &Broker) {
        let led =
            crate::leadership::led_partitions(&broker.image(), broker.config.node_id, TXN_TOPIC);
        self.load_partitions(broker, &led);
        self.loaded.store(true, Ordering::Release);
    }

    /// Reads `partitions` of `__transaction_state` and serves their transactional ids from
    /// then on, finishing transactions left in a Prepare state. Partitions already loaded, or
    /// that this node no longer leads, are skipped. Blocking.
    pub fn load_partitions(&self, broker: &Broker, partitions: &BTreeSet<i32>) {
        let _guard = self.load_lock.lock();
        let image = broker.image();
        let partitions = crate::leadership::to_load(
            &image,
            broker.config.node_id,
            TXN_TOPIC,
            partitions,
            &self.loaded_partitions.read(),
        );
        if partitions.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let mut txns: HashMap<String, TxnMetadata> = HashMap::new();
        let mut records = 0usize;
        for &p in &partitions {
            let Some(partition) = broker.partitions().get(TXN_TOPIC, p) else {
                continue;
            };
            let result = for_each_record(&partition, |key, value| {
                records += 1;
                let Some(id) = records::decode_key(&key) else {
                    tracing::warn!("unreadable {TXN_TOPIC} key");
                    return;
                };
                match value.as_deref().map(|v| records::decode_value(&id, v)) {
                    None => {
                        txns.remove(&id);
                    }
                    Some(Some(txn)) => {
                        txns.insert(id, txn);
                    }
                    Some(None) => {
                        tracing::warn!(transactional_id = %id, "unreadable {TXN_TOPIC} value")
                    }
                }
            });
            if let Err(e) = result {
                tracing::error!(partition = p, error = %e, "reading {TXN_TOPIC} failed");
            }
        }
        let count = txns.len();
        let loaded: Vec<Arc<Mutex<TxnMetadata>>> = {
            let mut all = self.txns.write();
            txns.into_iter()
                .map(|(id, t)| {
                    let entry = Arc::new(Mutex::new(t));
                    all.insert(id, entry.clone());
                    entry
                })
                .collect()
        };
        self.loaded_partitions.write().extend(&partitions);
        for entry in loaded {
            let mut txn = entry.lock();
            if let Some(markers) = txn.pending_markers() {
                tracing::info!(transactional_id = %txn.transactional_id, state = txn.state.name(), "completing a transaction left in a prepare state");
                let _ = self.finish(broker, &mut txn, markers);
            }
        }
        tracing::info!(
            transactions = count,
            records,
            ?partitions,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded {TXN_TOPIC}"
        );
    }

    /// Stops serving the transactional ids of `partitions` of `__transaction_state` (this node
    /// no longer leads them) and drops their transactions from memory; their state stays in
    /// the log for the next leader, which finishes what was left in a Prepare state.
    pub fn unload_partitions(&self, broker: &Broker, partitions: &BTreeSet<i32>) {
        let _guard = self.load_lock.lock();
        self.loaded_partitions
            .write()
            .retain(|p| !partitions.contains(p));
        let count = partition_count(broker, TXN_TOPIC);
        let mut txns = self.txns.write();
        let before = txns.len();
        txns.retain(|id, _| count != 0 && !partitions.contains(&partition_for(id, count)));
        tracing::info!(
            transactions = before - txns.len(),
            ?partitions,
            "unloaded {TXN_TOPIC}"
        );
    }

    /// The node coordinating `transactional_id`, or the error FindCoordinator answers with.
    pub fn coordinator_for(&self, broker: &Broker, transactional_id: &str) -> Result<i32, i16> {
        let image = broker.image();
        let topic = image
            .topic(TXN_TOPIC)
            .ok_or(err::COORDINATOR_NOT_AVAILABLE)?;
        let p = partition_for(transactional_id, topic.partitions.len() as i32);
        let leader = topic
            .partitions
            .iter()
            .find(|x| x.partition == p)
            .map(|x| x.leader)
            .ok_or(err::COORDINATOR_NOT_AVAILABLE)?;
        if leader < 0 {
            return Err(err::COORDINATOR_NOT_AVAILABLE);
        }
        Ok(leader)
    }

    /// InitProducerId with a transactional id: the producer id and epoch to use. Blocking.
    pub fn init_producer_id(
        &self,
        broker: &Broker,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), i16> {
        if partition_count(broker, TXN_TOPIC) == 0 {
            // `__transaction_state` is created lazily; clients look the coordinator up first
            // (which creates it), but one sending InitProducerId straight away gets it too.
            if let Err(e) = broker.create_coordinator_topic(1) {
                tracing::warn!(error = %e, "creating {TXN_TOPIC} failed");
            }
        }
        let partition = self.partition_of(broker, transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.config.limits.max_timeout_ms {
            return Err(code::INVALID_TRANSACTION_TIMEOUT);
        }
        let entry = match self.entry(transactional_id) {
            Some(e) => e,
            None => {
                let id = broker.next_producer_id().map_err(|e| {
                    tracing::error!(error = %e, "allocating a producer id failed");
                    err::COORDINATOR_NOT_AVAILABLE
                })?;
                let fresh = TxnMetadata::new(transactional_id, id, timeout_ms, now_ms());
                self.txns
                    .write()
                    .entry(transactional_id.to_owned())
                    .or_insert_with(|| Arc::new(Mutex::new(fresh)))
                    .clone()
            }
        };
        let mut txn = entry.lock();
        if txn.state == TxnState::Dead {
            // Expired while this request waited for it: the client retries and starts afresh.
            return Err(code::CONCURRENT_TRANSACTIONS);
        }
        // A fence aborts the open transaction first (CONCURRENT_TRANSACTIONS); the abort is
        // complete when `run` returns, so the second pass hands out the next epoch at once.
        for _ in 0..2 {
            let step =
                txn.init_producer_id(now_ms(), timeout_ms, expected, self.config.limits, || {
                    broker
                        .next_producer_id()
                        .map_err(|_| err::COORDINATOR_NOT_AVAILABLE)
                })?;
            let error = step.error;
            self.run(broker, &partition, &mut txn, step)?;
            if error == code::NONE {
                return Ok((txn.producer_id, txn.producer_epoch));
            }
            if error != code::CONCURRENT_TRANSACTIONS || txn.state.is_preparing() {
                return Err(error);
            }
        }
        Err(code::CONCURRENT_TRANSACTIONS)
    }

    /// AddPartitionsToTxn. Blocking.
    pub fn add_partitions(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<(), i16> {
        let partition = self.partition_of(broker, transactional_id)?;
        let entry = self
            .entry(transactional_id)
            .ok_or(code::INVALID_PRODUCER_ID_MAPPING)?;
        let mut txn = entry.lock();
        let step = txn.add_partitions(now_ms(), producer_id, producer_epoch, partitions)?;
        self.run(broker, &partition, &mut txn, step)
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition. Blocking.
    pub fn add_offsets(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), i16> {
        let mut count = partition_count(broker, crate::group::OFFSETS_TOPIC);
        if count == 0 {
            // The group's coordinator may not have been looked up yet: `__consumer_offsets` is
            // created lazily, here as on FindCoordinator.
            if let Err(e) = broker.create_coordinator_topic(0) {
                tracing::warn!(error = %e, "creating {} failed", crate::group::OFFSETS_TOPIC);
            }
            count = partition_count(broker, crate::group::OFFSETS_TOPIC);
        }
        if count == 0 {
            return Err(err::COORDINATOR_NOT_AVAILABLE);
        }
        let offsets_partition = partition_for(group_id, count);
        let tp = (crate::group::OFFSETS_TOPIC.to_owned(), offsets_partition);
        self.add_partitions(broker, transactional_id, producer_id, producer_epoch, &[tp])
    }

    /// EndTxn. Blocking.
    pub fn end_txn(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), i16> {
        let partition = self.partition_of(broker, transactional_id)?;
        let entry = self
            .entry(transactional_id)
            .ok_or(code::INVALID_PRODUCER_ID_MAPPING)?;
        let mut txn = entry.lock();
        let step = txn.end_txn(now_ms(), producer_id, producer_epoch, commit)?;
        self.run(broker, &partition, &mut txn, step)
    }

    /// KIP-890 part 1: a transactional produce is appended only if its partition is part of
    /// the producer's open transaction, and `append` runs under the transaction's mutex so an
    /// EndTxn cannot slip between the check and the append (a late write would otherwise open
    /// a transaction nobody ends). Blocking only as long as the append.
    pub fn with_verified_partition<T>(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        tp: &TopicPartition,
        append: impl FnOnce() -> T,
    ) -> Result<T, i16> {
        if !self.coordinates_here(broker, transactional_id) {
            // Another broker coordinates it: KIP-890's verification would ask it
            // (AddPartitionsToTxn v4, not built); the write is accepted as before KIP-890,
            // and its marker comes through WriteTxnMarkers.
            return Ok(append());
        }
        let entry = self
            .entry(transactional_id)
            .ok_or(code::INVALID_PRODUCER_ID_MAPPING)?;
        let txn = entry.lock();
        if txn.producer_id != producer_id {
            return Err(code::INVALID_PRODUCER_ID_MAPPING);
        }
        if txn.producer_epoch != producer_epoch {
            return Err(err::INVALID_PRODUCER_EPOCH);
        }
        if txn.state != TxnState::Ongoing || !txn.partitions.contains(tp) {
            return Err(err::INVALID_TXN_STATE);
        }
        Ok(append())
    }

    /// TxnOffsetCommit: the group's `__consumer_offsets` partition must be in the producer's
    /// open transaction (AddOffsetsToTxn); the offsets are written under the transaction's
    /// mutex, so no marker can come between. `Err` applies to every partition. Blocking.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_offset_commit(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        who: &crate::group::coordinator::Committer,
        commits: &[crate::group::coordinator::OffsetCommit],
    ) -> Result<Vec<i16>, i16> {
        // When the transaction's coordinator is another broker (it checked the group's
        // partition into the transaction, AddOffsetsToTxn), the offsets are written unchecked
        // here and wait for the marker its leader writes.
        let entry = if self.coordinates_here(broker, transactional_id) {
            self.partition_of(broker, transactional_id)?;
            Some(
                self.entry(transactional_id)
                    .ok_or(code::INVALID_PRODUCER_ID_MAPPING)?,
            )
        } else {
            None
        };
        let _txn = match &entry {
            Some(entry) => {
                let txn = entry.lock();
                if txn.producer_id != producer_id {
                    return Err(code::INVALID_PRODUCER_ID_MAPPING);
                }
                if txn.producer_epoch != producer_epoch {
                    return Err(code::PRODUCER_FENCED);
                }
                let count = partition_count(broker, crate::group::OFFSETS_TOPIC);
                let tp = (
                    crate::group::OFFSETS_TOPIC.to_owned(),
                    partition_for(group_id, count.max(1)),
                );
                if txn.state != TxnState::Ongoing || !txn.partitions.contains(&tp) {
                    return Err(err::INVALID_TXN_STATE);
                }
                Some(txn)
            }
            None => None,
        };
        broker.groups.txn_commit_offsets(
            broker,
            group_id,
            producer_id,
            producer_epoch,
            who,
            commits,
        )
    }

    /// One transaction (DescribeTransactions).
    pub fn describe(&self, broker: &Broker, transactional_id: &str) -> Result<TxnSnapshot, i16> {
        self.partition_of(broker, transactional_id)?;
        self.entry(transactional_id)
            .map(|e| e.lock().clone())
            .ok_or(err::TRANSACTIONAL_ID_NOT_FOUND)
    }

    /// Every transaction (ListTransactions).
    pub fn list(&self) -> Result<Vec<TxnSnapshot>, i16> {
        if !self.loaded.load(Ordering::Acquire) {
            return Err(err::COORDINATOR_LOAD_IN_PROGRESS);
        }
        let mut all: Vec<TxnSnapshot> = self.entries().iter().map(|e| e.lock().clone()).collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(all)
    }

    /// Aborts transactions past their timeout and retries unfinished markers. Blocking.
    pub fn tick(&self, broker: &Broker, now: i64) {
        for entry in self.entries() {
            let mut txn = entry.lock();
            if let Some(markers) = txn.pending_markers() {
                let _ = self.finish(broker, &mut txn, markers);
                continue;
            }
            let Some(step) = txn.on_tick(now) else {
                continue;
            };
            tracing::info!(transactional_id = %txn.transactional_id, producer_id = txn.producer_id, "aborting a transaction past its timeout");
            let Ok(partition) = self.partition_of(broker, &txn.transactional_id.clone()) else {
                continue;
            };
            if let Err(code) = self.run(broker, &partition, &mut txn, step) {
                tracing::warn!(transactional_id = %txn.transactional_id, code, "timeout abort failed");
            }
        }
    }

    /// Forgets transactional ids idle past `transactional.id.expiration.ms` with nothing in
    /// progress: a tombstone goes to `__transaction_state`, then the id leaves the cache.
    /// Blocking.
    pub fn expire_ids(&self, broker: &Broker, now: i64) {
        let expiration = self.config.id_expiration_ms;
        for entry in self.entries() {
            let mut txn = entry.lock();
            if !txn.expired(now, expiration) {
                continue;
            }
            let Ok(partition) = self.partition_of(broker, &txn.transactional_id) else {
                continue;
            };
            if write_record(&partition, &txn.transactional_id, None).is_err() {
                continue;
            }
            tracing::info!(transactional_id = %txn.transactional_id, producer_id = txn.producer_id, "transactional id expired");
            // A request that already holds this entry sees it Dead (see init_producer_id).
            txn.state = TxnState::Dead;
            let mut all = self.txns.write();
            if all
                .get(&txn.transactional_id)
                .is_some_and(|e| Arc::ptr_eq(e, &entry))
            {
                all.remove(&txn.transactional_id);
            }
        }
    }

    /// Persists and applies `step`, then writes its markers and completes. The markers are
    /// best effort: a failure leaves the Prepare state for the next tick to finish.
    fn run(
        &self,
        broker: &Broker,
        partition: &Partition,
        txn: &mut TxnMetadata,
        step: Step,
    ) -> Result<(), i16> {
        if step.actions.contains(&Action::Persist) {
            persist(partition, &step.txn)?;
        }
        *txn = step.txn;
        for action in step.actions {
            if let Action::WriteMarkers { .. } = action {
                let _ = self.finish(broker, txn, action);
            }
        }
        Ok(())
    }

    /// Writes the markers of a Prepare state, then persists the Complete state.
    fn finish(&self, broker: &Broker, txn: &mut TxnMetadata, markers: Action) -> Result<(), i16> {
        let Action::WriteMarkers {
            producer_id,
            producer_epoch,
            commit,
            partitions,
        } = markers
        else {
            return Ok(());
        };
        let log = self.partition_of_unchecked(broker, &txn.transactional_id)?;
        let coordinator_epoch = log.leader_epoch();
        let tid = txn.transactional_id.clone();
        let mut progress = self.markers.lock();
        let done = progress.entry(tid.clone()).or_default();
        let mut remote = Vec::new();
        let mut local_offsets_marker = false;
        for tp in &partitions {
            if done.written.contains(tp) {
                continue;
            }
            let (topic, index) = tp;
            // A partition deleted since it joined the transaction needs no marker.
            let p = match broker.led_partition(topic, *index) {
                Ok(p) => p,
                Err(crate::leadership::NOT_LEADER_OR_FOLLOWER) => {
                    // Its leader writes it (WriteTxnMarkers, sent below).
                    remote.push(tp.clone());
                    continue;
                }
                Err(_) => {
                    done.written.insert(tp.clone());
                    continue;
                }
            };
            match p.write_txn_marker(producer_id, producer_epoch, commit, coordinator_epoch) {
                Ok(_) | Err(PartitionError::Deleted) => {
                    done.written.insert(tp.clone());
                    local_offsets_marker |= topic == crate::group::OFFSETS_TOPIC;
                }
                Err(e) => {
                    tracing::error!(%topic, partition = index, error = %e, "writing a transaction marker failed");
                    return Err(err::UNKNOWN_SERVER_ERROR);
                }
            }
        }
        if local_offsets_marker {
            // The marker is in __consumer_offsets here: the group coordinator applies or drops
            // the transaction's offset commits.
            broker.groups.complete_txn_offsets(producer_id, commit);
        }
        if !remote.is_empty() {
            // Kafka's transaction marker channel: the transaction stays in its prepare state
            // (the producer's next transaction waits with CONCURRENT_TRANSACTIONS) until the
            // leaders have written theirs; `tick` retries what a failed send left.
            if !done.sending {
                done.sending = true;
                let marker = RemoteMarkers {
                    transactional_id: tid,
                    producer_id,
                    producer_epoch,
                    commit,
                    coordinator_epoch,
                    partitions: remote,
                };
                self.send_remote_markers(marker);
            }
            return Ok(());
        }
        progress.remove(&tid);
        drop(progress);
        if let Some(step) = txn.markers_written(now_ms()) {
            persist(&log, &step.txn)?;
            *txn = step.txn;
        }
        Ok(())
    }

    /// Sends WriteTxnMarkers for `m` to each partition's leader, in the background; once all
    /// are written the transaction's prepare state completes (on a blocking thread).
    fn send_remote_markers(&self, m: RemoteMarkers) {
        let (Ok(runtime), Some(broker)) = (
            tokio::runtime::Handle::try_current(),
            self.broker.get().and_then(Weak::upgrade),
        ) else {
            if let Some(p) = self.markers.lock().get_mut(&m.transactional_id) {
                p.sending = false;
            }
            return;
        };
        runtime.spawn(async move {
            let written = super::marker_channel::write(&broker, &m).await;
            let b = broker.clone();
            let _ = tokio::task::spawn_blocking(move || {
                b.txns.remote_markers_written(&b, &m, &written);
            })
            .await;
        });
    }

    /// The leaders wrote `written` of `m`'s markers: records them, and completes the prepare
    /// state when nothing is left. Blocking.
    fn remote_markers_written(
        &self,
        broker: &Broker,
        m: &RemoteMarkers,
        written: &[TopicPartition],
    ) {
        {
            let mut progress = self.markers.lock();
            let p = progress.entry(m.transactional_id.clone()).or_default();
            p.sending = false;
            p.written.extend(written.iter().cloned());
        }
        let Some(entry) = self.entry(&m.transactional_id) else {
            return;
        };
        let mut txn = entry.lock();
        if txn.producer_id != m.producer_id || txn.producer_epoch != m.producer_epoch {
            return;
        }
        if let Some(markers) = txn.pending_markers() {
            let _ = self.finish(broker, &mut txn, markers);
        }
    }

    /// The `__transaction_state` partition of `transactional_id` if this broker coordinates it
    /// and has loaded it; else the error every transactional request answers with.
    /// Whether this broker is `transactional_id`'s coordinator (leads its `__transaction_state`
    /// partition).
    fn coordinates_here(&self, broker: &Broker, transactional_id: &str) -> bool {
        let count = partition_count(broker, TXN_TOPIC);
        count > 0
            && crate::leadership::leads(
                &broker.image(),
                broker.config.node_id,
                TXN_TOPIC,
                partition_for(transactional_id, count),
            )
    }

    fn partition_of(&self, broker: &Broker, transactional_id: &str) -> Result<Arc<Partition>, i16> {
        let partition = self.partition_of_unchecked(broker, transactional_id)?;
        let count = partition_count(broker, TXN_TOPIC);
        if !self
            .loaded_partitions
            .read()
            .contains(&partition_for(transactional_id, count))
        {
            return Err(err::COORDINATOR_LOAD_IN_PROGRESS);
        }
        Ok(partition)
    }

    fn partition_of_unchecked(
        &self,
        broker: &Broker,
        transactional_id: &str,
    ) -> Result<Arc<Partition>, i16> {
        // The topic's actual partition count decides placement (as in Kafka), not the config:
        // changing transaction.state.log.num.partitions later must not move transactions.
        let count = partition_count(broker, TXN_TOPIC);
        if count == 0 {
            return Err(err::COORDINATOR_NOT_AVAILABLE);
        }
        let p = partition_for(transactional_id, count);
        if !crate::leadership::leads(&broker.image(), broker.config.node_id, TXN_TOPIC, p) {
            return Err(err::NOT_COORDINATOR);
        }
        broker
            .partitions()
            .get(TXN_TOPIC, p)
            .ok_or(err::NOT_COORDINATOR)
    }

    fn entry(&self, transactional_id: &str) -> Option<Arc<Mutex<TxnMetadata>>> {
        self.txns.read().get(transactional_id).cloned()
    }

    fn entries(&self) -> Vec<Arc<Mutex<TxnMetadata>>> {
        self.txns.read().values().cloned().collect()
    }
}

/// How many partitions `topic` has in the current image (0 if it does not exist).
fn partition_count(broker: &Broker, topic: &str) -> i32 {
    broker
        .image()
        .topic(topic)
        .map_or(0, |t| t.partitions.len() as i32)
}

/// Appends `txn` as one record to its `__transaction_state` partition.
fn persist(partition: &Partition, txn: &TxnMetadata) -> Result<(), i16> {
    write_record(
        partition,
        &txn.transactional_id,
        Some(records::encode_value(txn)),
    )
}

/// Appends one `__transaction_state` record for `transactional_id` (`None`: a tombstone).
fn write_record(
    partition: &Partition,
    transactional_id: &str,
    value: Option<Bytes>,
) -> Result<(), i16> {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: now_ms(),
        key: Some(records::encode_key(transactional_id)),
        value,
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, std::iter::once(&record), &options)
        .expect("encoding an uncompressed batch into memory cannot fail");
    partition
        .append_as_leader(&mut buf, true, false)
        .map_err(|e| {
            tracing::error!(%transactional_id, error = %e, "writing {TXN_TOPIC} failed");
            err::NOT_COORDINATOR
        })?;
    Ok(())
}

/// Markers of one transaction for partitions led by other brokers.
#[derive(Debug, Clone)]
pub(crate) struct RemoteMarkers {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: Vec<TopicPartition>,
}

/// Calls `f(key, value)` for every record of the partition, from its log start to its log end
/// (a new leader's records above the high watermark are its own and get committed). Blocking.
fn for_each_record(
    partition: &Partition,
    mut f: impl FnMut(Bytes, Option<Bytes>),
) -> Result<(), PartitionError> {
    let mut offset = partition.offsets()?.log_start_offset;
    loop {
        let (info, end) = partition.read_to_end(offset, 1 << 20)?;
        if info.records.is_empty() || offset >= end {
            return Ok(());
        }
        let mut rest = info.records.clone();
        while let Some(header) = BatchHeader::parse(&rest) {
            let Some(size) = header.size_in_bytes().filter(|s| *s <= rest.len()) else {
                break;
            };
            let mut batch = rest.split_to(size);
            offset = header.next_offset();
            match RecordBatchDecoder::decode(&mut batch) {
                Ok(set) => {
                    for r in set.records.into_iter().filter(|r| !r.control) {
                        if let Some(key) = r.key {
                            f(key, r.value);
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    base_offset = header.base_offset,
                    error = %e,
                    "skipping an unreadable {TXN_TOPIC} batch"
                ),
            }
        }
    }
}
