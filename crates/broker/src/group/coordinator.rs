//! The group coordinator shell: runs the [`Group`] state machines, parks JoinGroup and
//! SyncGroup requests until their answers, fires deadlines from a ticker task, and keeps
//! committed offsets, persisting everything to `__consumer_offsets`.
//!
//! A group is coordinated by the leader of partition
//! `abs(java_string_hash(group_id)) % offsets.topic.num.partitions` of `__consumer_offsets`,
//! as in Kafka; on one node that is always this broker. Each group lives behind its own mutex
//! (requests of one group are serialised; groups never contend); records are appended while
//! that mutex is held, so the log order of a group's records is the order of its changes. No
//! lock is held across an `.await`.
//!
//! Start-up: [`GroupCoordinator::load`] reads every partition of `__consumer_offsets` this node
//! leads from its log start (later records win, tombstones delete). Until a partition is
//! loaded, requests for its groups are answered with COORDINATOR_LOAD_IN_PROGRESS; requests for
//! groups of a partition another node leads with NOT_COORDINATOR. Leadership changes in later
//! images load ([`GroupCoordinator::load_partitions`]) and unload
//! ([`GroupCoordinator::unload_partitions`]) partitions, as Kafka's onElection/onResignation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
use tokio::sync::oneshot;

use super::consumer::{self, ConsumerConfig, ConsumerGroup, TopicCounts};
use super::consumer_records::{self as crec, CurrentAssignmentValue, MemberMetadataValue};
use super::records::{self, OffsetValue, RecordKey};
use super::state::{
    code, Action, Group, GroupConfig, GroupSnapshot, GroupState, JoinRequest, JoinResult, Outcome,
    SyncResult,
};
use crate::config::BrokerConfig;
use crate::partition::{Partition, PartitionError};
use crate::{now_ms, Broker};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka error codes the shell answers with (the core's are in [`code`]).
pub mod err {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
}

/// How often deadlines (sessions, join and sync timeouts) are checked.
const TICK: Duration = Duration::from_millis(100);

/// The coordinator's settings, from the broker's config keys.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub group: GroupConfig,
    /// The KIP-848 protocol's settings (`group.consumer.*`).
    pub consumer: ConsumerConfig,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub segment_bytes: i64,
    pub retention_ms: i64,
    pub retention_check_interval_ms: i64,
    pub metadata_max_bytes: usize,
}

impl CoordinatorConfig {
    pub fn from_broker(config: &BrokerConfig) -> CoordinatorConfig {
        fn get<T: std::str::FromStr>(config: &BrokerConfig, key: &str, default: T) -> T {
            config
                .get(key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        }
        CoordinatorConfig {
            group: GroupConfig {
                min_session_timeout_ms: get(config, "group.min.session.timeout.ms", 6_000),
                max_session_timeout_ms: get(config, "group.max.session.timeout.ms", 1_800_000),
                initial_rebalance_delay_ms: get(config, "group.initial.rebalance.delay.ms", 3_000),
                max_size: get::<i64>(config, "group.max.size", i64::from(i32::MAX)).max(1) as usize,
            },
            consumer: ConsumerConfig {
                session_timeout_ms: get(config, "group.consumer.session.timeout.ms", 45_000),
                heartbeat_interval_ms: get(config, "group.consumer.heartbeat.interval.ms", 5_000),
                max_size: get::<i64>(config, "group.consumer.max.size", i64::from(i32::MAX)).max(1)
                    as usize,
                assignors: config
                    .get("group.consumer.assignors")
                    .unwrap_or("uniform,range")
                    .split(',')
                    .map(assignor_name)
                    .filter(|a| !a.is_empty())
                    .collect(),
            },
            num_partitions: get(config, "offsets.topic.num.partitions", 50).max(1),
            replication_factor: get(config, "offsets.topic.replication.factor", 3),
            segment_bytes: get(config, "offsets.topic.segment.bytes", 104_857_600),
            retention_ms: get::<i64>(config, "offsets.retention.minutes", 10_080) * 60_000,
            retention_check_interval_ms: get(
                config,
                "offsets.retention.check.interval.ms",
                600_000,
            ),
            metadata_max_bytes: get(config, "offset.metadata.max.bytes", 4096),
        }
    }
}

/// `group.consumer.assignors` takes short names or Kafka's class names.
fn assignor_name(s: &str) -> String {
    match s.trim() {
        "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => "uniform".to_owned(),
        "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => "range".to_owned(),
        other => other.to_owned(),
    }
}

/// Creates `__consumer_offsets` through the controller if it does not exist yet: compacted,
/// `offsets.topic.num.partitions` partitions, replication factor capped to the live brokers.
pub fn ensure_offsets_topic(
    controller: &oxka_metadata::Controller,
    config: &CoordinatorConfig,
    live_brokers: usize,
) -> Result<Arc<MetadataImage>, ControllerError> {
    if controller.image().topic(OFFSETS_TOPIC).is_some() {
        return Ok(controller.image());
    }
    // Kafka does not shrink the replication factor of an internal topic to the brokers
    // available: the topic is not created, and FindCoordinator answers
    // COORDINATOR_NOT_AVAILABLE until enough brokers are registered.
    if i64::from(config.replication_factor) > live_brokers as i64 {
        tracing::error!(
            "Number of alive brokers '{live_brokers}' does not meet the required replication factor '{}' for the offsets topic (configured via 'offsets.topic.replication.factor'); {OFFSETS_TOPIC} is not created and FindCoordinator answers COORDINATOR_NOT_AVAILABLE until enough brokers are registered (on a single node set offsets.topic.replication.factor=1).",
            config.replication_factor
        );
        return Ok(controller.image());
    }
    let rf = config.replication_factor.max(1);
    let configs = [
        ("cleanup.policy", "compact".to_owned()),
        ("compression.type", "producer".to_owned()),
        ("segment.bytes", config.segment_bytes.to_string()),
    ];
    let spec = CreateTopicSpec {
        name: OFFSETS_TOPIC.to_owned(),
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
        "creating {OFFSETS_TOPIC}"
    );
    controller.create_topic(&spec, config.num_partitions, rf, false)
}

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The partition of `__consumer_offsets` that coordinates `group_id`.
pub fn partition_for(group_id: &str, num_partitions: i32) -> i32 {
    // Kafka's Utils.abs: abs, with i32::MIN mapped to 0.
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % num_partitions.max(1)
}

/// A KIP-848 group's records as the load reads them (later records win, tombstones delete).
#[derive(Debug, Default)]
struct LoadedConsumer {
    /// Position of the last ConsumerGroupMetadata record (3) in the load.
    seq: usize,
    epoch: Option<i32>,
    subscription: TopicCounts,
    assignment_epoch: i32,
    members: BTreeMap<String, MemberMetadataValue>,
    targets: BTreeMap<String, crec::TopicPartitions>,
    current: BTreeMap<String, CurrentAssignmentValue>,
}

/// Folds one consumer group record (types 3–8) into `consumers`; false if unreadable.
fn load_consumer_record(
    consumers: &mut HashMap<String, LoadedConsumer>,
    seq: usize,
    record_type: i16,
    group: String,
    member_id: Option<String>,
    value: Option<&[u8]>,
) -> bool {
    if record_type == crec::GROUP_METADATA && value.is_none() {
        // The group was deleted (or turned classic): its other records went before.
        consumers.remove(&group);
        return true;
    }
    let g = consumers.entry(group).or_default();
    let member = member_id.unwrap_or_default();
    match (record_type, value) {
        (crec::GROUP_METADATA, Some(v)) => {
            let Some(epoch) = crec::decode_group_metadata(v) else {
                return false;
            };
            g.epoch = Some(epoch);
            g.seq = seq;
        }
        (crec::PARTITION_METADATA, v) => {
            let topics = match v {
                None => Vec::new(),
                Some(v) => match crec::decode_partition_metadata(v) {
                    Some(t) => t,
                    None => return false,
                },
            };
            g.subscription = topics
                .into_iter()
                .map(|t| (t.name, t.num_partitions))
                .collect();
        }
        (crec::TARGET_ASSIGNMENT_METADATA, v) => {
            g.assignment_epoch = match v {
                None => 0,
                Some(v) => match crec::decode_target_assignment_metadata(v) {
                    Some(e) => e,
                    None => return false,
                },
            };
        }
        (crec::MEMBER_METADATA, None) => {
            g.members.remove(&member);
        }
        (crec::MEMBER_METADATA, Some(v)) => match crec::decode_member_metadata(v) {
            Some(m) => {
                g.members.insert(member, m);
            }
            None => return false,
        },
        (crec::TARGET_ASSIGNMENT_MEMBER, None) => {
            g.targets.remove(&member);
        }
        (crec::TARGET_ASSIGNMENT_MEMBER, Some(v)) => {
            match crec::decode_target_assignment_member(v) {
                Some(t) => {
                    g.targets.insert(member, t);
                }
                None => return false,
            }
        }
        (crec::CURRENT_MEMBER_ASSIGNMENT, None) => {
            g.current.remove(&member);
        }
        (crec::CURRENT_MEMBER_ASSIGNMENT, Some(v)) => match crec::decode_current_assignment(v) {
            Some(c) => {
                g.current.insert(member, c);
            }
            None => return false,
        },
        _ => return false,
    }
    true
}

impl LoadedConsumer {
    /// The group the records describe. Topic ids the image no longer knows are dropped.
    fn restore(
        self,
        id: &str,
        config: ConsumerConfig,
        epoch: i32,
        image: &MetadataImage,
        now: i64,
    ) -> ConsumerGroup {
        let by_name = |tps: &crec::TopicPartitions| {
            from_topic_ids(image, tps.iter().map(|(id, ps)| (id, ps.as_slice())))
        };
        let mut current = self.current;
        let members: Vec<consumer::Member> = self
            .members
            .into_iter()
            .map(|(member_id, v)| {
                let mut m = consumer::Member::new(&member_id);
                m.instance_id = v.instance_id;
                m.rack_id = v.rack_id;
                m.client_id = v.client_id;
                m.client_host = v.client_host;
                m.subscribed_topic_names = v.subscribed_topic_names;
                m.subscribed_topic_regex = v.subscribed_topic_regex;
                m.server_assignor = v.server_assignor;
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                if let Some(c) = current.remove(&member_id) {
                    m.member_epoch = c.member_epoch;
                    m.previous_member_epoch = c.previous_member_epoch;
                    m.state = match c.state {
                        1 => consumer::MemberState::UnrevokedPartitions,
                        2 => consumer::MemberState::UnreleasedPartitions,
                        _ => consumer::MemberState::Stable,
                    };
                    m.assigned = by_name(&c.assigned);
                    m.pending_revocation = by_name(&c.pending_revocation);
                }
                m
            })
            .collect();
        let target = self
            .targets
            .iter()
            .map(|(m, tps)| (m.clone(), by_name(tps)))
            .collect();
        ConsumerGroup::restore(
            id,
            config,
            epoch,
            self.assignment_epoch,
            self.subscription,
            members,
            target,
            now,
        )
    }
}

/// One group: its state machine, its committed offsets and its parked requests.
#[derive(Debug)]
struct GroupEntry {
    group: Group,
    offsets: BTreeMap<(String, i32), OffsetValue>,
    join_waiters: HashMap<String, oneshot::Sender<JoinResult>>,
    sync_waiters: HashMap<String, oneshot::Sender<SyncResult>>,
    /// Transactional offset commits (TxnOffsetCommit) per producer id, applied to `offsets`
    /// when the transaction commits (see the transactions block below).
    pending_txn: HashMap<i64, BTreeMap<(String, i32), OffsetValue>>,
    /// Set while the group is a KIP-848 consumer group (ConsumerGroupHeartbeat); `group`
    /// then stays Empty. An empty group of either kind becomes the other on a join.
    consumer: Option<ConsumerGroup>,
}

impl GroupEntry {
    fn new(group: Group) -> GroupEntry {
        GroupEntry {
            group,
            offsets: BTreeMap::new(),
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
            pending_txn: HashMap::new(),
            consumer: None,
        }
    }

    /// A KIP-848 group with members: the classic APIs do not apply to it.
    fn is_live_consumer_group(&self) -> bool {
        self.consumer.as_ref().is_some_and(|c| !c.is_empty())
    }
}

/// A group as ListGroups and DescribeGroups report it.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub group_id: String,
    pub state: GroupState,
    /// Kafka's name of the state (a consumer group's states differ from a classic one's).
    pub state_name: &'static str,
    /// "classic" or "consumer".
    pub group_type: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    pub snapshot: GroupSnapshot,
}

/// An offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// Who commits: a member of a generation, or (generation < 0, empty member id) a client
/// without group management / an admin.
#[derive(Debug, Clone)]
pub struct Committer {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation: i32,
    /// OffsetCommit v2–v4 retention time; -1 = the broker's.
    pub retention_time_ms: i64,
    /// The request's version (a KIP-848 member must commit with v9+).
    pub api_version: i16,
}

/// The group coordinator. See the module docs.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: RwLock<HashMap<String, Arc<Mutex<GroupEntry>>>>,
    /// Set once the start-up load has run (ListGroups answers COORDINATOR_LOAD_IN_PROGRESS
    /// before).
    loaded: AtomicBool,
    /// The `__consumer_offsets` partitions whose groups are in memory: only their groups are
    /// served. Written only with `load_lock` held.
    loaded_partitions: RwLock<BTreeSet<i32>>,
    /// Serialises loads and unloads, so a partition is never read twice into memory.
    load_lock: Mutex<()>,
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> GroupCoordinator {
        GroupCoordinator {
            config,
            groups: RwLock::new(HashMap::new()),
            loaded: AtomicBool::new(false),
            loaded_partitions: RwLock::new(BTreeSet::new()),
            load_lock: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Loads `__consumer_offsets` (blocking, on a thread of its own) and then ticks deadlines
    /// and offset expiry until the broker is dropped. Needs a tokio runtime.
    pub fn start(broker: &Arc<Broker>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime: group coordinator not started");
            return;
        };
        let weak: Weak<Broker> = Arc::downgrade(broker);
        runtime.spawn(async move {
            let loader = weak.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                if let Some(b) = loader.upgrade() {
                    b.groups.load(&b);
                }
            })
            .await;
            if let Err(e) = loaded {
                tracing::error!(error = %e, "loading {OFFSETS_TOPIC} failed");
                return;
            }
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_expiry = now_ms();
            loop {
                interval.tick().await;
                let Some(b) = weak.upgrade() else { return };
                let now = now_ms();
                b.groups.tick(&b, now);
                if now - last_expiry >= b.groups.config.retention_check_interval_ms {
                    last_expiry = now;
                    b.groups.expire_offsets(&b, now);
                }
            }
        });
    }

    /// Start-up: loads every partition of `__consumer_offsets` this node leads. Blocking.
    pub fn load(&self, broker: &Broker) {
        let led = crate::leadership::led_partitions(
            &broker.image(),
            broker.config.node_id,
            OFFSETS_TOPIC,
        );
        self.load_partitions(broker, &led);
        self.loaded.store(true, Ordering::Release);
    }

    /// Reads `partitions` of `__consumer_offsets` and rebuilds their groups and offsets; from
    /// then on their groups are served. Partitions already loaded, or that this node no longer
    /// leads, are skipped. Blocking.
    pub fn load_partitions(&self, broker: &Broker, partitions: &BTreeSet<i32>) {
        let _guard = self.load_lock.lock();
        let image = broker.image();
        let partitions = crate::leadership::to_load(
            &image,
            broker.config.node_id,
            OFFSETS_TOPIC,
            partitions,
            &self.loaded_partitions.read(),
        );
        if partitions.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let mut snapshots: HashMap<String, GroupSnapshot> = HashMap::new();
        let mut offsets: HashMap<String, BTreeMap<(String, i32), OffsetValue>> = HashMap::new();
        let mut records = 0usize;
        // KIP-848 groups, and for each group the position of its last classic metadata
        // record: a group is of the kind whose metadata was written last.
        let mut consumers: HashMap<String, LoadedConsumer> = HashMap::new();
        let mut classic_seq: HashMap<String, usize> = HashMap::new();
        // Offsets of transactions still open at the end of the log (transactions block).
        let mut open_txn_records: Vec<(i64, Bytes, Option<Bytes>)> = Vec::new();
        for &p in &partitions {
            let Some(partition) = broker.partitions().get(OFFSETS_TOPIC, p) else {
                continue;
            };
            let result = for_each_record(&partition, &mut open_txn_records, |key, value| {
                records += 1;
                match (records::decode_key(&key), value) {
                    (Some(RecordKey::Group { group }), None) => {
                        snapshots.remove(&group);
                        offsets.remove(&group);
                    }
                    (Some(RecordKey::Group { group }), Some(v)) => {
                        match records::decode_group_value(&v) {
                            Some(s) => {
                                classic_seq.insert(group.clone(), records);
                                snapshots.insert(group, s);
                            }
                            None => tracing::warn!(%group, "unreadable group metadata record"),
                        }
                    }
                    (
                        Some(RecordKey::Offset {
                            group,
                            topic,
                            partition,
                        }),
                        value,
                    ) => {
                        let of_group = offsets.entry(group).or_default();
                        match value.as_deref().and_then(records::decode_offset_value) {
                            Some(v) => {
                                of_group.insert((topic, partition), v);
                            }
                            None => {
                                of_group.remove(&(topic, partition));
                            }
                        }
                    }
                    (
                        Some(RecordKey::Consumer {
                            record_type,
                            group,
                            member_id,
                        }),
                        value,
                    ) => {
                        if !load_consumer_record(
                            &mut consumers,
                            records,
                            record_type,
                            group.clone(),
                            member_id,
                            value.as_deref(),
                        ) {
                            tracing::warn!(%group, record_type, "unreadable consumer group record");
                        }
                    }
                    (None, _) => tracing::warn!("unreadable {OFFSETS_TOPIC} key"),
                }
            });
            if let Err(e) = result {
                tracing::error!(partition = p, error = %e, "reading {OFFSETS_TOPIC} failed");
            }
        }
        let now = now_ms();
        let mut groups = self.groups.write();
        let before = groups.len();
        let ids: Vec<String> = snapshots
            .keys()
            .chain(offsets.keys())
            .chain(consumers.keys())
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for id in ids {
            let group = match snapshots.remove(&id) {
                Some(s) => Group::restore(&id, self.config.group.clone(), s, now),
                None => Group::new(&id, self.config.group.clone(), now),
            };
            let mut entry = GroupEntry::new(group);
            entry.offsets = offsets.remove(&id).unwrap_or_default();
            if let Some(loaded) = consumers.remove(&id) {
                let classic_later = classic_seq.get(&id).is_some_and(|c| *c > loaded.seq);
                match loaded.epoch {
                    _ if classic_later => {}
                    None => {
                        tracing::warn!(group = %id, "consumer group records without a group epoch: ignored")
                    }
                    Some(epoch) => {
                        entry.group = Group::new(&id, self.config.group.clone(), now);
                        entry.consumer = Some(loaded.restore(
                            &id,
                            self.config.consumer.clone(),
                            epoch,
                            &image,
                            now,
                        ));
                    }
                }
            }
            if entry.group.is_empty()
                && entry.offsets.is_empty()
                && entry.group.protocol_type().is_none()
                && entry.consumer.is_none()
            {
                continue;
            }
            groups.insert(id, Arc::new(Mutex::new(entry)));
        }
        self.restore_open_txn_offsets(&mut groups, open_txn_records, now);
        tracing::info!(
            groups = groups.len() - before.min(groups.len()),
            records,
            ?partitions,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded {OFFSETS_TOPIC}"
        );
        drop(groups);
        self.loaded_partitions.write().extend(partitions);
    }

    /// Stops serving the groups of `partitions` of `__consumer_offsets` (this node no longer
    /// leads them) and drops them from memory; parked JoinGroup and SyncGroup requests are
    /// answered NOT_COORDINATOR, as Kafka's onResignation. Their state stays in the log for
    /// the next leader.
    pub fn unload_partitions(&self, broker: &Broker, partitions: &BTreeSet<i32>) {
        let _guard = self.load_lock.lock();
        self.loaded_partitions
            .write()
            .retain(|p| !partitions.contains(p));
        let count = offsets_partition_count(broker);
        let unloaded: Vec<Arc<Mutex<GroupEntry>>> = {
            let mut groups = self.groups.write();
            let ids: Vec<String> = groups
                .keys()
                // Without the topic every group goes (it was deleted).
                .filter(|id| count == 0 || partitions.contains(&partition_for(id, count)))
                .cloned()
                .collect();
            ids.iter().filter_map(|id| groups.remove(id)).collect()
        };
        for entry in &unloaded {
            let mut e = entry.lock();
            for (member_id, tx) in e.join_waiters.drain() {
                let _ = tx.send(JoinResult {
                    error: err::NOT_COORDINATOR,
                    member_id,
                    generation: -1,
                    ..JoinResult::default()
                });
            }
            for (_, tx) in e.sync_waiters.drain() {
                let _ = tx.send(SyncResult {
                    error: err::NOT_COORDINATOR,
                    ..SyncResult::default()
                });
            }
        }
        tracing::info!(
            groups = unloaded.len(),
            ?partitions,
            "unloaded {OFFSETS_TOPIC}"
        );
    }

    /// The node coordinating `group_id`, or the error FindCoordinator answers with.
    pub fn coordinator_for(&self, broker: &Broker, group_id: &str) -> Result<i32, i16> {
        let image = broker.image();
        let topic = image
            .topic(OFFSETS_TOPIC)
            .ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
        let p = partition_for(group_id, topic.partitions.len() as i32);
        let leader = topic
            .partitions
            .iter()
            .find(|x| x.partition == p)
            .map(|x| x.leader)
            .ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
        if leader < 0 {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        Ok(leader)
    }

    /// The `__consumer_offsets` partition of `group_id` if this broker coordinates it and has
    /// loaded it; else the error every group request answers with.
    fn partition_of(&self, broker: &Broker, group_id: &str) -> Result<Arc<Partition>, i16> {
        // The topic's actual partition count decides placement (as in Kafka), not the config:
        // changing offsets.topic.num.partitions later must not move groups.
        let count = offsets_partition_count(broker);
        if count == 0 {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        let p = partition_for(group_id, count);
        if !crate::leadership::leads(&broker.image(), broker.config.node_id, OFFSETS_TOPIC, p) {
            return Err(err::NOT_COORDINATOR);
        }
        let partition = broker
            .partitions()
            .get(OFFSETS_TOPIC, p)
            .ok_or(err::NOT_COORDINATOR)?;
        if !self.loaded_partitions.read().contains(&p) {
            return Err(err::COORDINATOR_LOAD_IN_PROGRESS);
        }
        Ok(partition)
    }

    fn entry(&self, group_id: &str) -> Option<Arc<Mutex<GroupEntry>>> {
        self.groups.read().get(group_id).cloned()
    }

    fn entry_or_create(&self, group_id: &str) -> Arc<Mutex<GroupEntry>> {
        if let Some(e) = self.entry(group_id) {
            return e;
        }
        let mut groups = self.groups.write();
        groups
            .entry(group_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(GroupEntry::new(Group::new(
                    group_id,
                    self.config.group.clone(),
                    now_ms(),
                ))))
            })
            .clone()
    }

    /// JoinGroup: answered when the join phase completes (or at once on an error).
    pub async fn join(&self, broker: &Broker, group_id: &str, req: JoinRequest) -> JoinResult {
        let error = |e| JoinResult {
            error: e,
            member_id: req.member_id.clone(),
            generation: -1,
            ..JoinResult::default()
        };
        let partition = match self.partition_of(broker, group_id) {
            Ok(p) => p,
            Err(e) => return error(e),
        };
        let entry = if req.member_id.is_empty() {
            self.entry_or_create(group_id)
        } else {
            match self.entry(group_id) {
                Some(e) => e,
                None => return error(code::UNKNOWN_MEMBER_ID),
            }
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut e = entry.lock();
            if e.is_live_consumer_group() {
                return error(code::INCONSISTENT_GROUP_PROTOCOL);
            }
            if e.consumer.take().is_some() {
                // An empty consumer group turns classic: its records go.
                let batch = consumer_group_tombstones(group_id);
                if let Err(error) = append(&partition, &batch, now_ms()) {
                    tracing::error!(group = group_id, %error, "writing consumer group tombstones failed");
                }
            }
            let (outcome, actions) = e.group.join(now_ms(), req.clone());
            tracing::debug!(group = group_id, member = %req.member_id, ?outcome, state = ?e.group.state(), generation = e.group.generation(), "join");
            let immediate = match outcome {
                Outcome::Now(result) => Some(result),
                Outcome::Parked { member_id } => {
                    e.join_waiters.insert(member_id, tx);
                    None
                }
            };
            execute(&mut e, &partition, actions);
            if let Some(result) = immediate {
                return result;
            }
        }
        // The sender is dropped only if this member's join was superseded by a newer one.
        rx.await
            .unwrap_or_else(|_| error(code::REBALANCE_IN_PROGRESS))
    }

    /// SyncGroup: the leader's assignment is answered to every member once it arrives.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync(
        &self,
        broker: &Broker,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let error = |e| SyncResult {
            error: e,
            ..SyncResult::default()
        };
        let partition = match self.partition_of(broker, group_id) {
            Ok(p) => p,
            Err(e) => return error(e),
        };
        let Some(entry) = self.entry(group_id) else {
            return error(code::UNKNOWN_MEMBER_ID);
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut e = entry.lock();
            if e.consumer.is_some() {
                return error(code::UNKNOWN_MEMBER_ID);
            }
            let (outcome, actions) = e.group.sync(
                now_ms(),
                member_id,
                group_instance_id,
                generation,
                protocol_type,
                protocol_name,
                assignments,
            );
            tracing::debug!(group = group_id, member = member_id, generation, ?outcome, state = ?e.group.state(), "sync");
            let immediate = match outcome {
                Outcome::Now(result) => Some(result),
                Outcome::Parked { member_id } => {
                    e.sync_waiters.insert(member_id, tx);
                    None
                }
            };
            execute(&mut e, &partition, actions);
            if let Some(result) = immediate {
                return result;
            }
        }
        rx.await
            .unwrap_or_else(|_| error(code::REBALANCE_IN_PROGRESS))
    }

    pub fn heartbeat(
        &self,
        broker: &Broker,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if let Err(e) = self.partition_of(broker, group_id) {
            return e;
        }
        match self.entry(group_id) {
            Some(entry) if entry.lock().consumer.is_some() => code::UNKNOWN_MEMBER_ID,
            Some(entry) => {
                let code = entry.lock().group.heartbeat(
                    now_ms(),
                    member_id,
                    group_instance_id,
                    generation,
                );
                tracing::debug!(
                    group = group_id,
                    member = member_id,
                    generation,
                    code,
                    "heartbeat"
                );
                code
            }
            None => code::UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup: `Err` is a group-level error, else one code per leaving member.
    pub fn leave(
        &self,
        broker: &Broker,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        let partition = self.partition_of(broker, group_id)?;
        let Some(entry) = self.entry(group_id) else {
            return Ok(vec![code::UNKNOWN_MEMBER_ID; members.len()]);
        };
        let mut e = entry.lock();
        if e.group.state() == GroupState::Dead {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        if e.consumer.is_some() {
            return Ok(vec![code::UNKNOWN_MEMBER_ID; members.len()]);
        }
        let (codes, actions) = e.group.leave(now_ms(), members);
        execute(&mut e, &partition, actions);
        Ok(codes)
    }

    /// OffsetCommit: `Err` applies to every partition, else one code per commit.
    pub fn commit_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        who: &Committer,
        commits: &[OffsetCommit],
    ) -> Result<Vec<i16>, i16> {
        let partition = self.partition_of(broker, group_id)?;
        let entry = match self.entry(group_id) {
            Some(e) => e,
            None if who.generation < 0 => self.entry_or_create(group_id),
            None => return Err(code::ILLEGAL_GENERATION),
        };
        let now = now_ms();
        let mut e = entry.lock();
        match &e.consumer {
            Some(c) => {
                c.validate_offset_commit(&who.member_id, who.generation)?;
                // A KIP-848 member commits with OffsetCommit v9+ (it carries the member epoch).
                if !who.member_id.is_empty() && who.api_version < 9 {
                    return Err(consumer::code::UNSUPPORTED_VERSION);
                }
            }
            None => e.group.validate_offset_commit(
                &who.member_id,
                who.group_instance_id.as_deref(),
                who.generation,
                now,
            )?,
        }
        let image = broker.image();
        let mut codes = Vec::with_capacity(commits.len());
        let mut accepted = Vec::new();
        for c in commits {
            let known = image
                .topic(&c.topic)
                .is_some_and(|t| t.partitions.iter().any(|p| p.partition == c.partition));
            let metadata = c.metadata.clone().unwrap_or_default();
            let code = if !known {
                err::UNKNOWN_TOPIC_OR_PARTITION
            } else if metadata.len() > self.config.metadata_max_bytes {
                err::OFFSET_METADATA_TOO_LARGE
            } else {
                let value = OffsetValue {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata,
                    commit_timestamp_ms: now,
                    expire_timestamp_ms: (who.retention_time_ms >= 0)
                        .then(|| now.saturating_add(who.retention_time_ms)),
                };
                accepted.push(((c.topic.clone(), c.partition), value));
                code::NONE
            };
            codes.push(code);
        }
        if accepted.is_empty() {
            return Ok(codes);
        }
        let batch: Vec<(Bytes, Option<Bytes>)> = accepted
            .iter()
            .map(|((topic, p), v)| {
                let key = RecordKey::Offset {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *p,
                };
                (
                    records::encode_key(&key),
                    Some(records::encode_offset_value(v)),
                )
            })
            .collect();
        if let Err(error) = append(&partition, &batch, now) {
            tracing::error!(group = group_id, %error, "writing offsets failed");
            return Err(err::UNKNOWN_SERVER_ERROR);
        }
        for (key, value) in accepted {
            e.offsets.insert(key, value);
        }
        Ok(codes)
    }

    /// OffsetFetch: `None` partitions = every committed offset of the group. Each answer is
    /// `(topic, partition, offset or None)`.
    #[allow(clippy::type_complexity)]
    pub fn fetch_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<(String, i32, Option<OffsetValue>)>, i16> {
        self.partition_of(broker, group_id)?;
        let entry = self.entry(group_id);
        let e = entry.as_ref().map(|e| e.lock());
        let offsets = e.as_ref().map(|e| &e.offsets);
        Ok(match partitions {
            Some(list) => list
                .into_iter()
                .map(|(t, p)| {
                    let v = offsets.and_then(|o| o.get(&(t.clone(), p)).cloned());
                    (t, p, v)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((t, p), v)| (t.clone(), *p, Some(v.clone())))
                .collect(),
        })
    }

    /// Every committed offset of every group as `(group, topic, partition, offset)`, for the
    /// consumer-lag gauges. Empty while loading.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        if !self.loaded.load(Ordering::Acquire) {
            return Vec::new();
        }
        let entries: Vec<(String, Arc<Mutex<GroupEntry>>)> = self
            .groups
            .read()
            .iter()
            .map(|(g, e)| (g.clone(), e.clone()))
            .collect();
        let mut out = Vec::new();
        for (group, entry) in entries {
            let e = entry.lock();
            out.extend(
                e.offsets
                    .iter()
                    .map(|((t, p), v)| (group.clone(), t.clone(), *p, v.offset)),
            );
        }
        out
    }

    /// Every group (ListGroups), or `Err` while loading.
    pub fn list(&self) -> Result<Vec<GroupSummary>, i16> {
        if !self.loaded.load(Ordering::Acquire) {
            return Err(err::COORDINATOR_LOAD_IN_PROGRESS);
        }
        let entries: Vec<Arc<Mutex<GroupEntry>>> = self.groups.read().values().cloned().collect();
        let mut out: Vec<GroupSummary> = entries
            .iter()
            .map(|e| entry_summary(&e.lock()))
            .filter(|s| s.state != GroupState::Dead)
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// One group (DescribeGroups); a group that does not exist is reported Dead.
    pub fn describe(&self, broker: &Broker, group_id: &str) -> Result<GroupSummary, i16> {
        self.partition_of(broker, group_id)?;
        let dead = || GroupSummary {
            group_id: group_id.to_owned(),
            state: GroupState::Dead,
            state_name: GroupState::Dead.name(),
            group_type: "classic",
            protocol_type: String::new(),
            protocol_name: String::new(),
            snapshot: Group::new(group_id, self.config.group.clone(), 0).snapshot(),
        };
        Ok(match self.entry(group_id) {
            // DescribeGroups up to v5 reports a group that is not a classic group as Dead,
            // as Kafka does.
            Some(e) if e.lock().consumer.is_some() => dead(),
            Some(e) => summary(&e.lock().group),
            None => GroupSummary {
                group_id: group_id.to_owned(),
                state: GroupState::Dead,
                state_name: GroupState::Dead.name(),
                group_type: "classic",
                protocol_type: String::new(),
                protocol_name: String::new(),
                snapshot: Group::new(group_id, self.config.group.clone(), 0).snapshot(),
            },
        })
    }

    /// DeleteGroups for one group: only an Empty group can go (NON_EMPTY_GROUP otherwise).
    pub fn delete_group(&self, broker: &Broker, group_id: &str) -> i16 {
        let partition = match self.partition_of(broker, group_id) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let Some(entry) = self.entry(group_id) else {
            return err::GROUP_ID_NOT_FOUND;
        };
        let mut e = entry.lock();
        if e.is_live_consumer_group() {
            return err::NON_EMPTY_GROUP;
        }
        match e.group.state() {
            GroupState::Dead => return err::GROUP_ID_NOT_FOUND,
            GroupState::Empty => {}
            _ => return err::NON_EMPTY_GROUP,
        }
        let now = now_ms();
        let mut batch: Vec<(Bytes, Option<Bytes>)> = e
            .offsets
            .keys()
            .map(|(topic, p)| {
                let key = RecordKey::Offset {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *p,
                };
                (records::encode_key(&key), None)
            })
            .collect();
        if e.consumer.is_some() {
            batch.extend(consumer_group_tombstones(group_id));
        }
        batch.push((
            records::encode_key(&RecordKey::Group {
                group: group_id.to_owned(),
            }),
            None,
        ));
        if let Err(error) = append(&partition, &batch, now) {
            tracing::error!(group = group_id, %error, "writing group tombstones failed");
            return err::UNKNOWN_SERVER_ERROR;
        }
        e.offsets.clear();
        e.group.mark_dead(now);
        drop(e);
        self.groups.write().remove(group_id);
        code::NONE
    }

    /// OffsetDelete: `Err` is a group-level error, else one code per partition.
    pub fn delete_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, i16> {
        let partition = self.partition_of(broker, group_id)?;
        let entry = self.entry(group_id).ok_or(err::GROUP_ID_NOT_FOUND)?;
        let mut e = entry.lock();
        let live_consumer = e
            .consumer
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| c.subscribed_topics(&topic_counts(&broker.image())));
        let subscribed = match e.group.state() {
            _ if live_consumer.is_some() => live_consumer.unwrap_or_default(),
            GroupState::Dead => return Err(err::GROUP_ID_NOT_FOUND),
            GroupState::Empty => Default::default(),
            _ => match e.group.subscribed_topics() {
                Some(topics) => topics,
                None => return Err(err::NON_EMPTY_GROUP),
            },
        };
        let image = broker.image();
        let mut codes = Vec::with_capacity(partitions.len());
        let mut batch = Vec::new();
        let mut removed = Vec::new();
        for (topic, p) in partitions {
            let known = image
                .topic(topic)
                .is_some_and(|t| t.partitions.iter().any(|x| x.partition == *p));
            if !known {
                codes.push(err::UNKNOWN_TOPIC_OR_PARTITION);
            } else if subscribed.contains(topic) {
                codes.push(err::GROUP_SUBSCRIBED_TO_TOPIC);
            } else {
                codes.push(code::NONE);
                if e.offsets.contains_key(&(topic.clone(), *p)) {
                    let key = RecordKey::Offset {
                        group: group_id.to_owned(),
                        topic: topic.clone(),
                        partition: *p,
                    };
                    batch.push((records::encode_key(&key), None));
                    removed.push((topic.clone(), *p));
                }
            }
        }
        if !batch.is_empty() {
            if let Err(error) = append(&partition, &batch, now_ms()) {
                tracing::error!(group = group_id, %error, "writing offset tombstones failed");
                return Err(err::UNKNOWN_SERVER_ERROR);
            }
            for k in removed {
                e.offsets.remove(&k);
            }
        }
        Ok(codes)
    }

    /// Fires every group's passed deadlines.
    fn tick(&self, broker: &Broker, now: i64) {
        let entries: Vec<(String, Arc<Mutex<GroupEntry>>)> = self
            .groups
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut topics: Option<TopicCounts> = None;
        for (id, entry) in entries {
            let Ok(partition) = self.partition_of(broker, &id) else {
                continue;
            };
            let mut e = entry.lock();
            if let Some(c) = e.consumer.as_mut() {
                let counts = topics.get_or_insert_with(|| topic_counts(&broker.image()));
                if !c.is_empty() && c.tick_due(now, counts) {
                    let before = c.clone();
                    if c.tick(now, counts) {
                        tracing::info!(group = %id, epoch = c.group_epoch(), state = c.state().name(), "consumer group changed at tick");
                        let changes = consumer::changes(&before, c);
                        let batch = consumer_records(&id, c, &changes, &broker.image());
                        if let Err(error) = append(&partition, &batch, now) {
                            tracing::error!(group = %id, %error, "writing consumer group records failed");
                        }
                    }
                }
                continue;
            }
            let actions = e.group.tick(now);
            if !actions.is_empty() {
                execute(&mut e, &partition, actions);
            }
        }
    }

    /// Deletes offsets past retention: of Empty groups `offsets.retention.minutes` after the
    /// group became Empty (or after the commit, for groups that never had members), or at the
    /// commit's own expire timestamp. A group left with no offsets and no members is removed.
    fn expire_offsets(&self, broker: &Broker, now: i64) {
        let entries: Vec<(String, Arc<Mutex<GroupEntry>>)> = self
            .groups
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, entry) in entries {
            let Ok(partition) = self.partition_of(broker, &id) else {
                continue;
            };
            let mut e = entry.lock();
            if e.group.state() != GroupState::Empty || e.is_live_consumer_group() {
                continue;
            }
            let expired = expired_offsets(
                &e.offsets,
                e.group.protocol_type().is_some(),
                e.group.state_since_ms(),
                self.config.retention_ms,
                now,
            );
            let mut batch: Vec<(Bytes, Option<Bytes>)> = expired
                .iter()
                .map(|(topic, p)| {
                    let key = RecordKey::Offset {
                        group: id.clone(),
                        topic: topic.clone(),
                        partition: *p,
                    };
                    (records::encode_key(&key), None)
                })
                .collect();
            let dies = e.offsets.len() == expired.len();
            if dies {
                if e.consumer.is_some() {
                    batch.extend(consumer_group_tombstones(&id));
                }
                batch.push((
                    records::encode_key(&RecordKey::Group { group: id.clone() }),
                    None,
                ));
            }
            if expired.is_empty() && !dies {
                continue;
            }
            if let Err(error) = append(&partition, &batch, now) {
                tracing::error!(group = %id, %error, "writing expired offsets failed");
                continue;
            }
            tracing::info!(group = %id, expired = expired.len(), "offsets expired");
            for k in &expired {
                e.offsets.remove(k);
            }
            if dies {
                e.group.mark_dead(now);
                drop(e);
                self.groups.write().remove(&id);
            }
        }
    }
}

/// The offsets of an Empty group that have expired at `now`: at their own expire timestamp if
/// the commit carried one, else `retention_ms` after the later of the commit and the moment the
/// group became Empty (for a group that never had members, after the commit).
fn expired_offsets(
    offsets: &BTreeMap<(String, i32), OffsetValue>,
    has_protocol: bool,
    empty_since_ms: i64,
    retention_ms: i64,
    now: i64,
) -> Vec<(String, i32)> {
    offsets
        .iter()
        .filter(|(_, v)| {
            let expire_at = v.expire_timestamp_ms.unwrap_or_else(|| {
                let base = if has_protocol {
                    empty_since_ms.max(v.commit_timestamp_ms)
                } else {
                    v.commit_timestamp_ms
                };
                base.saturating_add(retention_ms)
            });
            expire_at <= now
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// How many partitions `__consumer_offsets` has (0 if it does not exist).
fn offsets_partition_count(broker: &Broker) -> i32 {
    broker
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(0, |t| t.partitions.len() as i32)
}

fn entry_summary(e: &GroupEntry) -> GroupSummary {
    match &e.consumer {
        None => summary(&e.group),
        Some(c) => GroupSummary {
            group_id: c.id().to_owned(),
            state: if c.is_empty() {
                GroupState::Empty
            } else {
                GroupState::Stable
            },
            state_name: c.state().name(),
            group_type: "consumer",
            protocol_type: "consumer".to_owned(),
            protocol_name: String::new(),
            snapshot: e.group.snapshot(),
        },
    }
}

fn summary(group: &Group) -> GroupSummary {
    let mut snapshot = group.snapshot();
    if group.state() != GroupState::Stable {
        // Kafka describes metadata and assignments only of a Stable group.
        for m in &mut snapshot.members {
            m.subscription = Bytes::new();
            m.assignment = Bytes::new();
        }
    }
    GroupSummary {
        group_id: group.id().to_owned(),
        state: group.state(),
        state_name: group.state().name(),
        group_type: "classic",
        protocol_type: group.protocol_type().unwrap_or_default().to_owned(),
        protocol_name: group.protocol_name().unwrap_or_default().to_owned(),
        snapshot,
    }
}

/// Carries out the state machine's actions: answers parked requests and persists the group.
fn execute(e: &mut GroupEntry, partition: &Partition, actions: Vec<Action>) {
    for action in actions {
        tracing::debug!(group = e.group.id(), ?action, "group action");
        match action {
            Action::Join { member_id, result } => {
                if let Some(tx) = e.join_waiters.remove(&member_id) {
                    let _ = tx.send(result);
                }
            }
            Action::Sync { member_id, result } => {
                if let Some(tx) = e.sync_waiters.remove(&member_id) {
                    let _ = tx.send(result);
                }
            }
            Action::Persist => {
                let key = records::encode_key(&RecordKey::Group {
                    group: e.group.id().to_owned(),
                });
                let value = records::encode_group_value(&e.group.snapshot());
                if let Err(error) = append(partition, &[(key, Some(value))], now_ms()) {
                    tracing::error!(group = e.group.id(), %error, "writing group metadata failed");
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Transactional offset commits (TxnOffsetCommit), added by the transactions work (`txn/`):
// offsets committed inside a transaction are written to `__consumer_offsets` as a transactional
// batch of the producer and kept pending per producer id until the transaction coordinator
// writes the commit marker (`complete_txn_offsets`); an abort drops them. Lock order: the
// transaction's mutex, then the group's, then the partition's.
// ------------------------------------------------------------------------------------------
impl GroupCoordinator {
    /// TxnOffsetCommit: `Err` applies to every partition, else one code per commit. The
    /// caller holds the transaction's mutex and has checked that the group's partition is in
    /// the open transaction. Blocking (one append).
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        who: &Committer,
        commits: &[OffsetCommit],
    ) -> Result<Vec<i16>, i16> {
        let partition = self.partition_of(broker, group_id)?;
        let entry = match self.entry(group_id) {
            Some(e) => e,
            None if who.generation < 0 => self.entry_or_create(group_id),
            None => return Err(code::ILLEGAL_GENERATION),
        };
        let now = now_ms();
        let mut e = entry.lock();
        // Before v3 the request names no member: nothing to check against (as in Kafka).
        if let Some(c) = &e.consumer {
            if who.generation >= 0 || !who.member_id.is_empty() {
                c.validate_offset_commit(&who.member_id, who.generation)?;
            }
        } else if who.generation >= 0 || !who.member_id.is_empty() {
            e.group.validate_offset_commit(
                &who.member_id,
                who.group_instance_id.as_deref(),
                who.generation,
                now,
            )?;
        }
        let image = broker.image();
        let mut codes = Vec::with_capacity(commits.len());
        let mut accepted = Vec::new();
        for c in commits {
            let known = image
                .topic(&c.topic)
                .is_some_and(|t| t.partitions.iter().any(|p| p.partition == c.partition));
            let metadata = c.metadata.clone().unwrap_or_default();
            codes.push(if !known {
                err::UNKNOWN_TOPIC_OR_PARTITION
            } else if metadata.len() > self.config.metadata_max_bytes {
                err::OFFSET_METADATA_TOO_LARGE
            } else {
                let value = OffsetValue {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata,
                    commit_timestamp_ms: now,
                    expire_timestamp_ms: None,
                };
                accepted.push(((c.topic.clone(), c.partition), value));
                code::NONE
            });
        }
        if accepted.is_empty() {
            return Ok(codes);
        }
        let records: Vec<Record> = accepted
            .iter()
            .enumerate()
            .map(|(i, ((topic, p), v))| Record {
                transactional: true,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: now,
                key: Some(records::encode_key(&RecordKey::Offset {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *p,
                })),
                value: Some(records::encode_offset_value(v)),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options)
            .expect("encoding an uncompressed batch into memory cannot fail");
        // Kafka writes offset commits without a sequence (NO_SEQUENCE = -1); the CRC covers
        // baseSequence, so it is recomputed.
        buf[oxka_log::batch::BASE_SEQUENCE_OFFSET..oxka_log::batch::BASE_SEQUENCE_OFFSET + 4]
            .copy_from_slice(&(-1i32).to_be_bytes());
        let crc = oxka_log::RecordBatch::from_prefix(&buf)
            .map(|b| b.compute_crc())
            .map_err(|_| err::UNKNOWN_SERVER_ERROR)?;
        buf[oxka_log::batch::CRC_OFFSET..oxka_log::batch::CRC_OFFSET + 4]
            .copy_from_slice(&crc.to_be_bytes());
        if let Err(error) = partition.append_as_leader(&mut buf, true, false) {
            tracing::error!(group = group_id, %error, "writing transactional offsets failed");
            return Err(err::UNKNOWN_SERVER_ERROR);
        }
        let pending = e.pending_txn.entry(producer_id).or_default();
        for (key, value) in accepted {
            pending.insert(key, value);
        }
        Ok(codes)
    }

    /// The transaction of `producer_id` ended (its marker is in `__consumer_offsets`): its
    /// offsets become committed, or are dropped.
    pub fn complete_txn_offsets(&self, producer_id: i64, commit: bool) {
        let entries: Vec<Arc<Mutex<GroupEntry>>> = self.groups.read().values().cloned().collect();
        for entry in entries {
            let mut e = entry.lock();
            if let Some(pending) = e.pending_txn.remove(&producer_id) {
                if commit {
                    e.offsets.extend(pending);
                }
            }
        }
    }

    /// Whether `group_id` has a transactional offset commit pending for the partition
    /// (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.entry(group_id).is_some_and(|e| {
            e.lock()
                .pending_txn
                .values()
                .any(|p| p.contains_key(&(topic.to_owned(), partition)))
        })
    }

    /// At load: offsets of transactions still open at the end of the log become pending.
    fn restore_open_txn_offsets(
        &self,
        groups: &mut HashMap<String, Arc<Mutex<GroupEntry>>>,
        open: Vec<(i64, Bytes, Option<Bytes>)>,
        now: i64,
    ) {
        for (pid, key, value) in open {
            let Some(RecordKey::Offset {
                group,
                topic,
                partition,
            }) = records::decode_key(&key)
            else {
                continue;
            };
            let Some(v) = value.as_deref().and_then(records::decode_offset_value) else {
                continue;
            };
            let entry = groups.entry(group.clone()).or_insert_with(|| {
                Arc::new(Mutex::new(GroupEntry::new(Group::new(
                    &group,
                    self.config.group.clone(),
                    now,
                ))))
            });
            entry
                .lock()
                .pending_txn
                .entry(pid)
                .or_default()
                .insert((topic, partition), v);
        }
    }
}

// ------------------------------------------------------------------------------------------
// KIP-848 consumer groups (ConsumerGroupHeartbeat, ConsumerGroupDescribe): the core is
// [`consumer::ConsumerGroup`]. Every change it reports ([`consumer::changes`]) is written as
// Kafka's ConsumerGroup* records (types 3–8, [`crec`]) while the group's mutex is held, and
// [`GroupCoordinator::load`] rebuilds the groups from them: members keep their epochs and
// assignments across a restart. Committed offsets are persisted like any group's.
// ------------------------------------------------------------------------------------------

/// Topic name → partition count of every topic in the image.
fn topic_counts(image: &MetadataImage) -> TopicCounts {
    image
        .topics
        .values()
        .map(|t| (t.name.clone(), t.partitions.len() as i32))
        .collect()
}

/// A consumer group as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone)]
pub struct ConsumerGroupDescription {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    /// Each member with its target assignment.
    pub members: Vec<(consumer::Member, consumer::Assignment)>,
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat.
    pub fn consumer_heartbeat(
        &self,
        broker: &Broker,
        group_id: &str,
        req: consumer::Heartbeat,
    ) -> consumer::HeartbeatResult {
        let error = |code: i16, message: Option<String>| consumer::HeartbeatResult {
            error: code,
            message,
            ..consumer::HeartbeatResult::default()
        };
        if group_id.is_empty() {
            return error(
                consumer::code::INVALID_REQUEST,
                Some("GroupId can't be empty.".to_owned()),
            );
        }
        let partition = match self.partition_of(broker, group_id) {
            Ok(p) => p,
            Err(e) => return error(e, None),
        };
        let entry = if req.member_epoch == 0 {
            self.entry_or_create(group_id)
        } else {
            match self.entry(group_id) {
                Some(e) => e,
                None => {
                    return error(
                        consumer::code::GROUP_ID_NOT_FOUND,
                        Some(format!("Group {group_id} not found.")),
                    )
                }
            }
        };
        let mut e = entry.lock();
        let created = e.consumer.is_none();
        if created {
            if e.group.state() != GroupState::Empty || req.member_epoch != 0 {
                return error(
                    consumer::code::GROUP_ID_NOT_FOUND,
                    Some(format!("Group {group_id} is not a consumer group.")),
                );
            }
            // An empty classic group (offsets only) becomes a consumer group.
            e.consumer = Some(ConsumerGroup::new(group_id, self.config.consumer.clone()));
        }
        let image = broker.image();
        let counts = topic_counts(&image);
        let c = e.consumer.as_mut().expect("set above");
        let member = req.member_id.clone();
        let before = c.clone();
        let now = now_ms();
        let result = c.heartbeat(now, req, &counts);
        tracing::debug!(group = group_id, %member, error = result.error, epoch = result.member_epoch, group_epoch = c.group_epoch(), state = c.state().name(), "consumer group heartbeat");
        let changes = consumer::changes(&before, c);
        if !changes.is_empty() {
            let batch = consumer_records(group_id, c, &changes, &image);
            if let Err(err) = append(&partition, &batch, now) {
                // Not written, not done: the member retries against the state as it was.
                tracing::error!(group = group_id, error = %err, "writing consumer group records failed");
                *c = before;
                if created {
                    e.consumer = None;
                }
                return error(code::COORDINATOR_NOT_AVAILABLE, None);
            }
        }
        result
    }

    /// ConsumerGroupDescribe for one group: `Err` is `(error, message)`.
    pub fn consumer_describe(
        &self,
        broker: &Broker,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, (i16, Option<String>)> {
        self.partition_of(broker, group_id).map_err(|e| (e, None))?;
        let not_found = |m: String| (consumer::code::GROUP_ID_NOT_FOUND, Some(m));
        let entry = self
            .entry(group_id)
            .ok_or_else(|| not_found(format!("Group {group_id} not found.")))?;
        let e = entry.lock();
        let c = e
            .consumer
            .as_ref()
            .ok_or_else(|| not_found(format!("Group {group_id} is not a consumer group.")))?;
        Ok(ConsumerGroupDescription {
            state: c.state().name(),
            group_epoch: c.group_epoch(),
            assignment_epoch: c.assignment_epoch(),
            assignor: c.assignor(),
            members: c
                .members()
                .map(|m| (m.clone(), c.target_of(&m.member_id)))
                .collect(),
        })
    }

    /// OffsetFetch v9 from a member of a KIP-848 group: the member must be known and at its
    /// current epoch (STALE_MEMBER_EPOCH otherwise). Requests without a member pass.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), i16> {
        let Some(member_id) = member_id.filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        let Some(entry) = self.entry(group_id) else {
            return Ok(());
        };
        let e = entry.lock();
        match &e.consumer {
            Some(c) => c.validate_offset_commit(member_id, member_epoch),
            None => Ok(()),
        }
    }
}

fn consumer_key(record_type: i16, group_id: &str, member_id: Option<&str>) -> Bytes {
    records::encode_key(&RecordKey::Consumer {
        record_type,
        group: group_id.to_owned(),
        member_id: member_id.map(str::to_owned),
    })
}

/// An assignment by topic id; topics the image no longer has are left out.
/// Partitions by topic name as `(topic id, partitions)`, as KIP-848 records and responses
/// carry them; topics the image does not know are left out.
pub(crate) fn with_topic_ids(
    image: &MetadataImage,
    a: &consumer::Assignment,
) -> crec::TopicPartitions {
    a.iter()
        .filter_map(|(t, ps)| {
            let topic = image.topic(t)?;
            Some((topic.topic_id, ps.iter().copied().collect()))
        })
        .collect()
}

/// `(topic id, partitions)` pairs as partitions by topic name; unknown topic ids and empty
/// partition lists are left out.
pub(crate) fn from_topic_ids<'a>(
    image: &MetadataImage,
    topics: impl Iterator<Item = (&'a uuid::Uuid, &'a [i32])>,
) -> consumer::Assignment {
    let mut out = consumer::Assignment::new();
    for (id, partitions) in topics.filter(|(_, ps)| !ps.is_empty()) {
        if let Some(name) = image.topic_names.get(id) {
            out.entry(name.clone())
                .or_default()
                .extend(partitions.iter().copied());
        }
    }
    out
}

/// The records (types 3–8) of `changes`, with the group's current values.
fn consumer_records(
    group_id: &str,
    c: &ConsumerGroup,
    changes: &[consumer::Change],
    image: &MetadataImage,
) -> Vec<(Bytes, Option<Bytes>)> {
    use consumer::Change;
    let mut out = Vec::new();
    for change in changes {
        match change {
            Change::MemberRemoved(m) => {
                for t in [
                    crec::CURRENT_MEMBER_ASSIGNMENT,
                    crec::TARGET_ASSIGNMENT_MEMBER,
                    crec::MEMBER_METADATA,
                ] {
                    out.push((consumer_key(t, group_id, Some(m)), None));
                }
            }
            Change::MemberMetadata(id) => {
                let Some(m) = c.member(id) else { continue };
                let value = MemberMetadataValue {
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    server_assignor: m.server_assignor.clone(),
                };
                out.push((
                    consumer_key(crec::MEMBER_METADATA, group_id, Some(id)),
                    Some(crec::encode_member_metadata(&value)),
                ));
            }
            Change::SubscriptionMetadata => {
                let topics: Vec<crec::TopicMetadata> = c
                    .subscription_metadata()
                    .iter()
                    .filter_map(|(name, n)| {
                        Some(crec::TopicMetadata {
                            topic_id: image.topic(name)?.topic_id,
                            name: name.clone(),
                            num_partitions: *n,
                        })
                    })
                    .collect();
                out.push((
                    consumer_key(crec::PARTITION_METADATA, group_id, None),
                    Some(crec::encode_partition_metadata(&topics)),
                ));
            }
            Change::GroupEpoch => out.push((
                consumer_key(crec::GROUP_METADATA, group_id, None),
                Some(crec::encode_group_metadata(c.group_epoch())),
            )),
            Change::TargetMember(id) => out.push((
                consumer_key(crec::TARGET_ASSIGNMENT_MEMBER, group_id, Some(id)),
                Some(crec::encode_target_assignment_member(&with_topic_ids(
                    image,
                    &c.target_of(id),
                ))),
            )),
            Change::TargetEpoch => out.push((
                consumer_key(crec::TARGET_ASSIGNMENT_METADATA, group_id, None),
                Some(crec::encode_target_assignment_metadata(
                    c.assignment_epoch(),
                )),
            )),
            Change::CurrentAssignment(id) => {
                let Some(m) = c.member(id) else { continue };
                let value = CurrentAssignmentValue {
                    member_epoch: m.member_epoch,
                    previous_member_epoch: m.previous_member_epoch,
                    state: match m.state {
                        consumer::MemberState::Stable => 0,
                        consumer::MemberState::UnrevokedPartitions => 1,
                        consumer::MemberState::UnreleasedPartitions => 2,
                    },
                    assigned: with_topic_ids(image, &m.assigned),
                    pending_revocation: with_topic_ids(image, &m.pending_revocation),
                };
                out.push((
                    consumer_key(crec::CURRENT_MEMBER_ASSIGNMENT, group_id, Some(id)),
                    Some(crec::encode_current_assignment(&value)),
                ));
            }
        }
    }
    out
}

/// Tombstones that delete an empty consumer group's records (6, 4, 3), as Kafka writes them
/// when the group is deleted or turns classic.
fn consumer_group_tombstones(group_id: &str) -> Vec<(Bytes, Option<Bytes>)> {
    [
        crec::TARGET_ASSIGNMENT_METADATA,
        crec::PARTITION_METADATA,
        crec::GROUP_METADATA,
    ]
    .into_iter()
    .map(|t| (consumer_key(t, group_id, None), None))
    .collect()
}

/// Appends one uncompressed batch of `(key, value)` records (a `None` value is a tombstone).
fn append(
    partition: &Partition,
    batch: &[(Bytes, Option<Bytes>)],
    now: i64,
) -> Result<(), PartitionError> {
    let records: Vec<Record> = batch
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch wherever `offset - sequence` changes; with no
            // producer id the sequence means nothing, so it follows the offset.
            sequence: i as i32,
            timestamp: now,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .expect("encoding an uncompressed batch into memory cannot fail");
    if partition
        .append_as_leader(&mut buf, true, false)?
        .needs_flush
    {
        // `flush.messages` (e.g. the broker's log.flush.interval.messages) asks for an fsync
        // before the change is acknowledged.
        partition.flush()?;
    }
    Ok(())
}

/// Calls `f(key, value)` for every record of the partition, from its log start to its log end
/// (a new leader's records above the high watermark are its own and get committed). Records of a transaction (TxnOffsetCommit) are passed on only when its commit
/// marker is read, dropped at its abort marker, and left in `open_txn` (with their producer
/// id) if the log ends before either. Blocking.
fn for_each_record(
    partition: &Partition,
    open_txn: &mut Vec<(i64, Bytes, Option<Bytes>)>,
    mut f: impl FnMut(Bytes, Option<Bytes>),
) -> Result<(), PartitionError> {
    let mut offset = partition.offsets()?.log_start_offset;
    let mut pending: HashMap<i64, Vec<(Bytes, Option<Bytes>)>> = HashMap::new();
    loop {
        let (info, end) = partition.read_to_end(offset, 1 << 20)?;
        if info.records.is_empty() || offset >= end {
            for (pid, recs) in pending {
                open_txn.extend(recs.into_iter().map(|(k, v)| (pid, k, v)));
            }
            return Ok(());
        }
        let mut rest = info.records.clone();
        while let Some(header) = BatchHeader::parse(&rest) {
            let Some(size) = header.size_in_bytes().filter(|s| *s <= rest.len()) else {
                break;
            };
            let mut batch = rest.split_to(size);
            offset = header.next_offset();
            let transactional = header.attributes & 0x10 != 0 && header.producer_id >= 0;
            if transactional && header.attributes & 0x20 != 0 {
                let commit = crate::txn::marker::decode_commit(&batch);
                let recs = pending.remove(&header.producer_id).unwrap_or_default();
                if commit == Some(true) {
                    for (k, v) in recs {
                        f(k, v);
                    }
                }
                continue;
            }
            match RecordBatchDecoder::decode(&mut batch) {
                Ok(set) => {
                    for r in set.records.into_iter().filter(|r| !r.control) {
                        if let Some(key) = r.key {
                            if transactional {
                                pending
                                    .entry(header.producer_id)
                                    .or_default()
                                    .push((key, r.value));
                            } else {
                                f(key, r.value);
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    base_offset = header.base_offset,
                    error = %e,
                    "skipping an unreadable {OFFSETS_TOPIC} batch"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(commit_ms: i64, expire_ms: Option<i64>) -> OffsetValue {
        OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: commit_ms,
            expire_timestamp_ms: expire_ms,
        }
    }

    #[test]
    fn offsets_expire_after_retention_from_when_the_group_became_empty() {
        let mut offsets = BTreeMap::new();
        offsets.insert(("t".to_owned(), 0), offset(1_000, None));
        offsets.insert(("t".to_owned(), 1), offset(5_000, None));
        offsets.insert(("t".to_owned(), 2), offset(1_000, Some(2_000)));
        let key = |p: i32| ("t".to_owned(), p);
        // A consumer group that became Empty at 4_000, retention 10_000.
        assert_eq!(
            expired_offsets(&offsets, true, 4_000, 10_000, 2_000),
            vec![key(2)]
        );
        assert_eq!(
            expired_offsets(&offsets, true, 4_000, 10_000, 13_999),
            vec![key(2)]
        );
        assert_eq!(
            expired_offsets(&offsets, true, 4_000, 10_000, 14_000),
            vec![key(0), key(2)]
        );
        assert_eq!(
            expired_offsets(&offsets, true, 4_000, 10_000, 15_000).len(),
            3
        );
        // Without group management the commit time alone counts.
        assert_eq!(
            expired_offsets(&offsets, false, 4_000, 10_000, 11_000),
            vec![key(0), key(2)]
        );
    }

    #[test]
    fn java_hash_matches_java() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        // "hello".hashCode() == 99162322; "polygenelubricants".hashCode() == Integer.MIN_VALUE
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // "my-group".hashCode() is negative: -1906497762 -> abs % 50 = 12
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(partition_for("my-group", 50), 12);
    }
}
