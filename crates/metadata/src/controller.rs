//! The controller: validates admin requests against the current image, turns them into
//! metadata records, makes them durable in the metadata log and publishes the new image.
//!
//! Not thread-safe by itself; the broker serialises calls (one change at a time, like KRaft's
//! single-threaded controller event loop).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use crate::image::MetadataImage;
use crate::quorum::{LocalQuorum, MetadataQuorum, QuorumError};
use crate::record::{BrokerEndpoint, ConfigResource, MetadataRecord};
use crate::store::StoreError;
use crate::{dynamic_broker_config, topic_config, unify_collision_chars, validate_topic_name};

/// A refused admin request, one variant per Kafka error code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("metadata log: {0}")]
    Store(#[from] StoreError),
    /// This node is not the active controller (Kafka's NOT_CONTROLLER).
    #[error("this node is not the active controller (active controller: {leader:?})")]
    NotController { leader: Option<i32> },
    /// The metadata quorum did not commit the change (REQUEST_TIMED_OUT).
    #[error("metadata quorum unavailable: {0}")]
    QuorumUnavailable(String),
    /// The metadata log moved on to `next_offset` while the request was validated; the
    /// broker validates it again against the newer image (never reaches a client).
    #[error("the metadata log moved on to offset {next_offset}")]
    Stale { next_offset: u64 },
    /// An ISR change from a leader whose epoch is not the registration's (FENCED_LEADER_EPOCH).
    #[error("The leader epoch in the request is older than the epoch on the broker.")]
    FencedLeaderEpoch,
    /// An ISR change based on an older partition epoch (INVALID_UPDATE_VERSION).
    #[error("The given version of the partition registration is stale.")]
    InvalidUpdateVersion,
    /// An ISR change adding a replica that may not join it (INELIGIBLE_REPLICA).
    #[error("{0}")]
    IneligibleReplica(String),
    /// Cancelling a reassignment of a partition that has none (NO_REASSIGNMENT_IN_PROGRESS).
    #[error("No reassignment is in progress for this partition.")]
    NoReassignmentInProgress,
}

impl From<QuorumError> for ControllerError {
    fn from(e: QuorumError) -> ControllerError {
        match e {
            QuorumError::NotController { leader } => ControllerError::NotController { leader },
            QuorumError::Unavailable(why) => ControllerError::QuorumUnavailable(why),
            QuorumError::Store(e) => ControllerError::Store(e),
            QuorumError::Stale { next_offset } => ControllerError::Stale { next_offset },
        }
    }
}

/// One partition's answer to ElectLeaders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionOutcome {
    Elected,
    /// The preferred replica leads already / the leader is live (ELECTION_NOT_NEEDED).
    NotNeeded,
    /// The preferred replica is not live or not in the ISR (PREFERRED_LEADER_NOT_AVAILABLE).
    PreferredLeaderNotAvailable,
    /// No live replica to elect (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    EligibleLeadersNotAvailable,
    UnknownTopicOrPartition,
}

/// Each partition's ElectLeaders outcome.
pub type Elections = Vec<((String, i32), ElectionOutcome)>;

/// What a CreateTopics entry asks for. `-1` means the broker default.
#[derive(Debug, Clone, Default)]
pub struct CreateTopicSpec {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Explicit replica assignments, by partition index.
    pub assignments: Vec<Vec<i32>>,
    pub configs: BTreeMap<String, String>,
}

/// Validates admin requests against the newest image of its [`MetadataQuorum`] and proposes
/// the records that carry them out; what is committed reaches every node through the quorum.
#[derive(Debug)]
pub struct Controller {
    node_id: i32,
    quorum: Arc<dyn MetadataQuorum>,
}

/// How many times an operation is validated again after another node's records were
/// committed between its validation and its proposal ([`ControllerError::Stale`]).
const STALE_ATTEMPTS: usize = 5;

/// How long to wait for this node to apply records another node committed.
const CATCH_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Controller {
    /// A controller of one: opens the metadata log under `dir` ([`LocalQuorum`]) and replays
    /// it; a new log gets a cluster id (`cluster_id`, or a fresh random one).
    pub fn open(
        dir: &Path,
        node_id: i32,
        cluster_id: Option<String>,
    ) -> Result<Controller, ControllerError> {
        let quorum = Arc::new(LocalQuorum::open(dir, node_id)?);
        Controller::with_quorum(quorum, cluster_id)
    }

    /// A controller over `quorum`. A log without a cluster id gets one first (`cluster_id`, or
    /// a fresh random one); when several nodes of a new cluster race to write it, the first
    /// committed wins and the others adopt it.
    pub fn with_quorum(
        quorum: Arc<dyn MetadataQuorum>,
        cluster_id: Option<String>,
    ) -> Result<Controller, ControllerError> {
        let controller = Controller {
            node_id: quorum.node_id(),
            quorum,
        };
        let cluster_id = cluster_id.unwrap_or_else(random_cluster_id);
        controller.retry_stale(|c| {
            let image = c.image();
            if image.cluster_id.is_empty() {
                c.commit(
                    &image,
                    vec![MetadataRecord::Cluster {
                        cluster_id: cluster_id.clone(),
                    }],
                )?;
            }
            Ok(())
        })?;
        Ok(controller)
    }

    /// Runs `op` and, when another node's records were committed between its validation and
    /// its proposal ([`ControllerError::Stale`]), runs it again once this node has applied
    /// them, a bounded number of times.
    pub fn retry_stale<T>(
        &self,
        mut op: impl FnMut(&Controller) -> Result<T, ControllerError>,
    ) -> Result<T, ControllerError> {
        let mut attempt = 1;
        loop {
            match op(self) {
                Err(ControllerError::Stale { next_offset }) if attempt < STALE_ATTEMPTS => {
                    attempt += 1;
                    self.quorum.wait_for(next_offset, CATCH_UP_TIMEOUT)?;
                }
                other => return other,
            }
        }
    }

    /// The newest image the quorum has applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The metadata quorum this controller proposes to.
    pub fn quorum(&self) -> &Arc<dyn MetadataQuorum> {
        &self.quorum
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Validates a topic creation; when `validate_only` is false, also performs it.
    pub fn create_topic(
        &self,
        spec: &CreateTopicSpec,
        default_partitions: i32,
        default_replication_factor: i16,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        validate_topic_name(&spec.name).map_err(ControllerError::InvalidTopic)?;
        if image.topic(&spec.name).is_some() {
            return Err(ControllerError::TopicAlreadyExists(spec.name.clone()));
        }
        let unified = unify_collision_chars(&spec.name);
        if let Some(other) = image
            .topics
            .keys()
            .find(|t| unify_collision_chars(t) == unified)
        {
            return Err(ControllerError::InvalidTopic(format!(
                "Topic '{}' collides with existing topic: {other}",
                spec.name
            )));
        }
        let assignments = if spec.assignments.is_empty() {
            let partitions = match spec.num_partitions {
                -1 => default_partitions,
                n if n <= 0 => {
                    return Err(ControllerError::InvalidPartitions(
                        "Number of partitions was set to an invalid non-positive value.".into(),
                    ))
                }
                n => n,
            };
            let rf =
                match spec.replication_factor {
                    -1 => default_replication_factor,
                    n if n <= 0 => return Err(ControllerError::InvalidReplicationFactor(
                        "Replication factor must be larger than 0, or -1 to use the default value."
                            .into(),
                    )),
                    n => n,
                };
            self.place(&image, partitions, rf)?
        } else {
            if spec.num_partitions != -1 || spec.replication_factor != -1 {
                return Err(ControllerError::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            for replicas in &spec.assignments {
                self.check_replicas(&image, replicas)?;
            }
            spec.assignments.clone()
        };
        for (name, value) in &spec.configs {
            topic_config::validate(name, value).map_err(ControllerError::InvalidConfig)?;
        }
        if validate_only {
            return Ok(image.clone());
        }
        let topic_id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic {
            name: spec.name.clone(),
            topic_id,
        }];
        records.extend(
            spec.configs
                .iter()
                .map(|(name, value)| MetadataRecord::Config {
                    resource: ConfigResource::Topic,
                    resource_name: spec.name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                }),
        );
        records.extend(partition_records(topic_id, 0, &assignments));
        self.commit(&image, records)
    }

    /// Deletes a topic and its configs.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        let topic = image
            .topic(name)
            .ok_or(ControllerError::UnknownTopicOrPartition)?;
        let topic_id = topic.topic_id;
        self.commit(&image, vec![MetadataRecord::RemoveTopic { topic_id }])
    }

    /// Grows a topic to `new_total` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        new_total: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        let topic = image
            .topic(name)
            .ok_or(ControllerError::UnknownTopicOrPartition)?
            .clone();
        let current = topic.partitions.len() as i32;
        if new_total < current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {new_total}."
            )));
        }
        if new_total == current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        let added = new_total - current;
        let rf = topic.partitions.first().map_or(1, |p| p.replicas.len()) as i16;
        let new_assignments = match assignments {
            Some(given) => {
                if given.len() as i32 != added {
                    return Err(ControllerError::InvalidReplicaAssignment(format!(
                        "Increasing the number of partitions by {added} but {} assignments provided.",
                        given.len()
                    )));
                }
                for replicas in given {
                    self.check_replicas(&image, replicas)?;
                }
                given.to_vec()
            }
            None => self.place(&image, added, rf)?,
        };
        if validate_only {
            return Ok(image.clone());
        }
        self.commit(
            &image,
            partition_records(topic.topic_id, current, &new_assignments).collect(),
        )
    }

    /// Replaces a topic's overrides with `configs` (validated first).
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        if image.topic(name).is_none() {
            return Err(ControllerError::UnknownTopicOrPartition);
        }
        for (key, value) in configs {
            topic_config::validate(key, value).map_err(ControllerError::InvalidConfig)?;
        }
        let current = image.topic_overrides(name).clone();
        self.replace_configs(
            image,
            ConfigResource::Topic,
            name,
            &current,
            configs,
            validate_only,
        )
    }

    /// Replaces the dynamic configs of broker `name` ("" = cluster-wide default). Only the
    /// broker-level synonyms of topic configs (`log.retention.ms`, `message.max.bytes`, ...)
    /// can change at run time; any other key is INVALID_REQUEST, as Kafka refuses keys it
    /// cannot update dynamically.
    pub fn set_broker_configs(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        let fixed: Vec<&str> = configs
            .keys()
            .filter(|k| !dynamic_broker_config::is_dynamic(k))
            .map(String::as_str)
            .collect();
        if !fixed.is_empty() {
            return Err(ControllerError::InvalidRequest(format!(
                "Cannot update these configs dynamically: {}",
                fixed.join(", ")
            )));
        }
        for (key, value) in configs {
            if let Some(def) = topic_config::by_broker_synonym(key) {
                topic_config::validate_kind(key, def.kind, value)
                    .map_err(ControllerError::InvalidConfig)?;
            } else if let Some(k) = dynamic_broker_config::lookup(key) {
                dynamic_broker_config::validate_value(k, value)
                    .map_err(ControllerError::InvalidRequest)?;
            }
        }
        let current = image.broker_configs.get(name).cloned().unwrap_or_default();
        self.replace_configs(
            image,
            ConfigResource::Broker,
            name,
            &current,
            configs,
            validate_only,
        )
    }

    /// Records that turn `current` into `wanted` for one resource, committed unless
    /// `validate_only`.
    fn replace_configs(
        &self,
        image: Arc<MetadataImage>,
        resource: ConfigResource,
        name: &str,
        current: &BTreeMap<String, String>,
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        if validate_only {
            return Ok(image);
        }
        let config = |key: &String, value: Option<String>| MetadataRecord::Config {
            resource,
            resource_name: name.to_owned(),
            name: key.clone(),
            value,
        };
        let mut records: Vec<MetadataRecord> = current
            .keys()
            .filter(|k| !configs.contains_key(*k))
            .map(|k| config(k, None))
            .collect();
        records.extend(
            configs
                .iter()
                .filter(|(k, v)| current.get(*k) != Some(v))
                .map(|(k, v)| config(k, Some(v.clone()))),
        );
        if records.is_empty() {
            return Ok(image.clone());
        }
        self.commit(&image, records)
    }

    /// Registers broker `broker_id` with `endpoints`, unfenced (a broker registers when it
    /// starts). A registration equal to the current one writes nothing, so a restarted single
    /// node does not grow the log; new endpoints, or a fenced broker coming back, write a
    /// RegisterBroker record with a new incarnation id. Returns the image.
    pub fn register_broker(
        &self,
        broker_id: i32,
        endpoints: Vec<BrokerEndpoint>,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        if image
            .brokers
            .get(&broker_id)
            .is_some_and(|b| !b.fenced && !b.shutting_down && b.endpoints == endpoints)
        {
            return Ok(image);
        }
        self.commit(
            &image,
            vec![MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id: Uuid::new_v4(),
                endpoints,
                fenced: false,
            }],
        )
    }

    /// Brings registrations, ISRs and partition leaders in line with `live`, the brokers the
    /// active controller has heard from within the broker session timeout (Kafka's heartbeat
    /// fencing): a registered broker not in `live` is fenced and one back in it unfenced
    /// (BrokerRegistrationChange); a fenced broker leaves every ISR it is in, unless it is the
    /// last member (Kafka keeps the last one, so that it, and no replica that may lack
    /// committed records, leads again); every partition whose leader is not live gets a new
    /// leader elected from its ISR among the live, registered brokers, or none (-1, NO_LEADER),
    /// and a leaderless partition gets one as soon as an ISR member is live again; each leader
    /// change bumps the leader epoch. A broker back from fencing rejoins ISRs through its
    /// leaders once it has caught up ([`Controller::alter_partition`]). Writes nothing when
    /// everything already agrees, so the active controller can call it on every tick. Returns
    /// the image.
    pub fn fence_and_elect(&self, live: &[i32]) -> Result<Arc<MetadataImage>, ControllerError> {
        use oxka_replication::{election::elect_leader, BrokerId};
        let image = self.image();
        let mut records = Vec::new();
        for b in image.brokers.values() {
            let alive = live.contains(&b.broker_id);
            if b.fenced == alive {
                records.push(MetadataRecord::BrokerRegistrationChange {
                    broker_id: b.broker_id,
                    fenced: !alive,
                });
            }
        }
        // A broker in controlled shutdown is heard from but may not lead again.
        let is_live =
            |b: i32| live.contains(&b) && image.brokers.get(&b).is_some_and(|r| !r.shutting_down);
        let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
        for topic in image.topics.values() {
            for p in &topic.partitions {
                let mut isr: Vec<i32> = p.isr.iter().copied().filter(|&b| is_live(b)).collect();
                if isr.is_empty() {
                    isr = p.isr.clone();
                }
                let leader = if p.leader >= 0 && is_live(p.leader) {
                    p.leader
                } else {
                    elect_leader(&ids(&p.replicas), &ids(&isr), |b| is_live(b.0), false)
                        .map_or(-1, |b| b.0)
                };
                if leader != p.leader || isr != p.isr {
                    records.push(MetadataRecord::Partition {
                        topic_id: topic.topic_id,
                        partition: p.partition,
                        replicas: p.replicas.clone(),
                        isr,
                        leader,
                        leader_epoch: p.leader_epoch + i32::from(leader != p.leader),
                    });
                }
            }
        }
        if records.is_empty() {
            return Ok(image);
        }
        // Only the active controller's own liveness view justifies these records: never
        // forwarded (a cut-off ex-controller's view must not be committed by the new one).
        Ok(self.quorum.propose_as_leader(image.next_offset, records)?)
    }

    /// Broker `broker_id` is stopping (Kafka's controlled shutdown): it leaves every ISR it is
    /// in (unless it is the last member), and every partition it leads gets a new leader from
    /// the remaining ISR among the registered, unfenced brokers (none, -1, when there is no
    /// other in-sync replica: the partition is offline until the broker is back, as it would be
    /// anyway once it stops). Returns the image.
    pub fn controlled_shutdown(
        &self,
        broker_id: i32,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        use oxka_replication::election::{controlled_shutdown, PartitionRegistration};
        use oxka_replication::{BrokerId, LeaderEpoch, PartitionEpoch};
        let image = self.image();
        let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
        let registrations: Vec<((Uuid, i32), PartitionRegistration)> = image
            .topics
            .values()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        (t.topic_id, p.partition),
                        PartitionRegistration {
                            replicas: ids(&p.replicas),
                            isr: ids(&p.isr),
                            leader: (p.leader >= 0).then_some(BrokerId(p.leader)),
                            leader_epoch: LeaderEpoch(p.leader_epoch),
                            partition_epoch: PartitionEpoch(p.partition_epoch),
                        },
                    )
                })
            })
            .collect();
        let live = |b: BrokerId| image.is_active_broker(b.0);
        let mut records: Vec<MetadataRecord> = controlled_shutdown(
            registrations.iter().map(|(k, r)| (*k, r)),
            BrokerId(broker_id),
            live,
        )
        .into_iter()
        .map(|((topic_id, partition), next)| MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: next.replicas.iter().map(|b| b.0).collect(),
            isr: next.isr.iter().map(|b| b.0).collect(),
            leader: next.leader.map_or(-1, |b| b.0),
            leader_epoch: next.leader_epoch.0,
        })
        .collect();
        if image
            .brokers
            .get(&broker_id)
            .is_some_and(|b| !b.shutting_down)
        {
            records.insert(0, MetadataRecord::BrokerShuttingDown { broker_id });
        }
        if records.is_empty() {
            return Ok(image);
        }
        self.commit(&image, records)
    }

    /// ElectLeaders: for each `(topic, partition)` (every partition when `None`), the
    /// preferred replica (the first of the assignment) becomes leader if it is live and in the
    /// ISR, or with `unclean` a partition without a live leader gets the first live replica even
    /// outside the ISR (its ISR becomes that replica alone: records only the old ISR had are
    /// lost, as in Kafka). Returns the image and each partition's outcome; with `None` the
    /// partitions that needed nothing are left out, as Kafka does.
    pub fn elect_leaders(
        &self,
        partitions: Option<&[(String, i32)]>,
        unclean: bool,
    ) -> Result<(Arc<MetadataImage>, Elections), ControllerError> {
        use oxka_replication::election::{elect_leader, preferred_leader_election};
        use oxka_replication::BrokerId;
        let image = self.image();
        let all: Vec<(String, i32)>;
        let wanted = match partitions {
            Some(list) => list,
            None => {
                all = image
                    .topics
                    .values()
                    .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
                    .collect();
                &all
            }
        };
        let live = |b: BrokerId| image.is_active_broker(b.0);
        let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
        let mut records = Vec::new();
        let mut outcomes = Vec::new();
        for (name, index) in wanted {
            let found = image.topic(name).and_then(|t| {
                t.partitions
                    .iter()
                    .find(|p| p.partition == *index)
                    .map(|p| (t.topic_id, p))
            });
            let Some((topic_id, p)) = found else {
                outcomes.push((
                    (name.clone(), *index),
                    ElectionOutcome::UnknownTopicOrPartition,
                ));
                continue;
            };
            let (replicas, isr) = (ids(&p.replicas), ids(&p.isr));
            let leader_live = p.leader >= 0 && live(BrokerId(p.leader));
            let chosen = if unclean {
                if leader_live {
                    Err(ElectionOutcome::NotNeeded)
                } else {
                    elect_leader(&replicas, &isr, live, true)
                        .ok_or(ElectionOutcome::EligibleLeadersNotAvailable)
                }
            } else if p.replicas.first() == Some(&p.leader) {
                Err(ElectionOutcome::NotNeeded)
            } else {
                preferred_leader_election(&replicas, &isr, live)
                    .ok_or(ElectionOutcome::PreferredLeaderNotAvailable)
            };
            match chosen {
                Ok(leader) => {
                    let isr = if p.isr.contains(&leader.0) {
                        p.isr.clone()
                    } else {
                        vec![leader.0]
                    };
                    records.push(MetadataRecord::Partition {
                        topic_id,
                        partition: p.partition,
                        replicas: p.replicas.clone(),
                        isr,
                        leader: leader.0,
                        leader_epoch: p.leader_epoch + 1,
                    });
                    outcomes.push(((name.clone(), *index), ElectionOutcome::Elected));
                }
                Err(ElectionOutcome::NotNeeded) if partitions.is_none() => {}
                Err(outcome) => outcomes.push(((name.clone(), *index), outcome)),
            }
        }
        let image = if records.is_empty() {
            image
        } else {
            self.commit(&image, records)?
        };
        Ok((image, outcomes))
    }

    /// A partition leader's ISR change (Kafka's AlterPartition): `leader` leading at
    /// `leader_epoch` proposes `new_isr`, based on the registration at `partition_epoch`.
    /// Refused with FENCED_LEADER_EPOCH when the leader or its epoch is not the
    /// registration's, INVALID_UPDATE_VERSION when the registration changed since, and
    /// INELIGIBLE_REPLICA when the ISR would name a non-replica, drop the leader, or add a
    /// fenced broker. Returns the image with the change applied.
    pub fn alter_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: &[i32],
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        let current = image
            .topic_by_id(&topic_id)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
            .ok_or(ControllerError::UnknownTopicOrPartition)?;
        if current.leader != leader || current.leader_epoch != leader_epoch {
            return Err(ControllerError::FencedLeaderEpoch);
        }
        if current.partition_epoch != partition_epoch {
            return Err(ControllerError::InvalidUpdateVersion);
        }
        if !new_isr.contains(&leader) {
            return Err(ControllerError::IneligibleReplica(format!(
                "The proposed ISR {new_isr:?} does not include the leader {leader}."
            )));
        }
        if let Some(b) = new_isr.iter().find(|b| !current.replicas.contains(b)) {
            return Err(ControllerError::IneligibleReplica(format!(
                "Broker {b} is not a replica of the partition."
            )));
        }
        if let Some(b) = new_isr
            .iter()
            .find(|b| !current.isr.contains(b) && !image.is_active_broker(**b))
        {
            return Err(ControllerError::IneligibleReplica(format!(
                "Broker {b} is fenced or in controlled shutdown and cannot join the ISR."
            )));
        }
        if new_isr == current.isr.as_slice() {
            return Ok(image);
        }
        let records = match &current.reassignment {
            // The last target replica caught up: the reassignment completes with this change.
            Some((target, original)) if target.iter().all(|b| new_isr.contains(b)) => {
                finish_reassignment(topic_id, current, new_isr, target, original)
            }
            _ => vec![MetadataRecord::Partition {
                topic_id,
                partition,
                replicas: current.replicas.clone(),
                isr: new_isr.to_vec(),
                leader,
                leader_epoch,
            }],
        };
        self.commit(&image, records)
    }

    /// AlterPartitionReassignments: for each `(topic, partition, target)`, moves the partition
    /// to the `target` replicas (`None`: cancels its reassignment, back to the replicas it had).
    /// The partition's replicas become the target and the original ones (new replicas catch up
    /// as followers, outside the ISR), with the leader epoch bumped so the leader tracks them;
    /// once every target replica is in the ISR (at once when it already is) the replicas become
    /// the target, those left out leave the ISR and the leadership moves into the target if it
    /// must. `allow_rf_change` false refuses a target of another size (v1). Returns the image
    /// and each partition's outcome, in order.
    #[allow(clippy::type_complexity)]
    pub fn alter_reassignments(
        &self,
        changes: &[(String, i32, Option<Vec<i32>>)],
        allow_rf_change: bool,
    ) -> Result<(Arc<MetadataImage>, Vec<Result<(), ControllerError>>), ControllerError> {
        let image = self.image();
        let mut records = Vec::new();
        let mut outcomes = Vec::new();
        for (name, index, target) in changes {
            let found = image.topic(name).and_then(|t| {
                t.partitions
                    .iter()
                    .find(|p| p.partition == *index)
                    .map(|p| (t.topic_id, p))
            });
            let Some((topic_id, p)) = found else {
                outcomes.push(Err(ControllerError::UnknownTopicOrPartition));
                continue;
            };
            let original = p
                .reassignment
                .as_ref()
                .map_or_else(|| p.replicas.clone(), |(_, o)| o.clone());
            let Some(target) = target else {
                if p.reassignment.is_none() {
                    outcomes.push(Err(ControllerError::NoReassignmentInProgress));
                } else {
                    records.extend(finish_reassignment(
                        topic_id, p, &p.isr, &original, &original,
                    ));
                    outcomes.push(Ok(()));
                }
                continue;
            };
            if let Err(e) = self.check_replicas(&image, target) {
                outcomes.push(Err(e));
                continue;
            }
            if !allow_rf_change && target.len() != original.len() {
                outcomes.push(Err(ControllerError::InvalidReplicationFactor(format!(
                    "The replication factor is changed from {} to {} but allowReplicationFactorChange is false.",
                    original.len(),
                    target.len()
                ))));
                continue;
            }
            outcomes.push(Ok(()));
            if p.reassignment.is_none() && *target == p.replicas {
                continue;
            }
            if target.iter().all(|b| p.isr.contains(b)) {
                records.extend(finish_reassignment(topic_id, p, &p.isr, target, &original));
                continue;
            }
            let mut replicas = target.clone();
            replicas.extend(original.iter().filter(|b| !target.contains(b)));
            records.push(MetadataRecord::Partition {
                topic_id,
                partition: p.partition,
                replicas,
                isr: p.isr.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch + 1,
            });
            records.push(MetadataRecord::PartitionReassignment {
                topic_id,
                partition: p.partition,
                target: Some(target.clone()),
                original,
            });
        }
        let image = if records.is_empty() {
            image
        } else {
            self.commit(&image, records)?
        };
        Ok((image, outcomes))
    }

    /// Reserves `count` producer ids that no one else will ever get (they survive restarts
    /// because the reservation is in the metadata log). Returns the first id of the block.
    pub fn allocate_producer_ids(&self, count: i64) -> Result<i64, ControllerError> {
        let image = self.image();
        let start = image.next_producer_id;
        self.commit(
            &image,
            vec![MetadataRecord::ProducerIds {
                next_block_start: start + count,
            }],
        )?;
        Ok(start)
    }

    /// Applies one AlterUserScramCredentials request's accepted changes in one append: the
    /// caller (the broker's handler) has validated them. Returns the new image.
    pub fn alter_scram_credentials(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.image();
        debug_assert!(records.iter().all(|r| matches!(
            r,
            MetadataRecord::UserScramCredential { .. }
                | MetadataRecord::RemoveUserScramCredential { .. }
        )));
        if records.is_empty() {
            return Ok(image.clone());
        }
        self.commit(&image, records)
    }

    /// The brokers new replicas may go to: the registered, unfenced ones (this node alone
    /// before anything registered, as in tests of the controller on its own).
    fn placement_brokers(&self, image: &MetadataImage) -> Vec<i32> {
        if image.brokers.is_empty() {
            return vec![self.node_id];
        }
        image
            .unfenced_brokers()
            .filter(|b| !b.shutting_down)
            .map(|b| b.broker_id)
            .collect()
    }

    /// Replica lists for `partitions` new partitions: round robin over the placement brokers,
    /// starting at a broker that moves on with every topic so leaders spread across topics.
    fn place(
        &self,
        image: &MetadataImage,
        partitions: i32,
        rf: i16,
    ) -> Result<Vec<Vec<i32>>, ControllerError> {
        let live = self.placement_brokers(image);
        let brokers = live.len();
        if rf as usize > brokers {
            return Err(ControllerError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."
            )));
        }
        // Round robin carries on from the partitions that exist, so leaders spread across topics.
        let start: usize = image.topics.values().map(|t| t.partitions.len()).sum();
        Ok((0..partitions as usize)
            .map(|p| {
                (0..rf as usize)
                    .map(|r| live[(start + p + r) % brokers])
                    .collect()
            })
            .collect())
    }

    fn check_replicas(
        &self,
        image: &MetadataImage,
        replicas: &[i32],
    ) -> Result<(), ControllerError> {
        if replicas.is_empty() {
            return Err(ControllerError::InvalidReplicaAssignment(
                "The manual partition assignment includes an empty replica list.".into(),
            ));
        }
        let mut seen = replicas.to_vec();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != replicas.len() {
            return Err(ControllerError::InvalidReplicaAssignment(
                "The manual partition assignment includes duplicate replicas.".into(),
            ));
        }
        let live = self.placement_brokers(image);
        if let Some(b) = replicas.iter().find(|b| !live.contains(b)) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            )));
        }
        Ok(())
    }

    /// Proposes `records`, validated against `image`, and returns the image with them applied
    /// once they are committed ([`ControllerError::Stale`] when the log moved on since
    /// `image`: validate again against the newer one).
    pub(crate) fn commit(
        &self,
        image: &MetadataImage,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        Ok(self.quorum.propose(image.next_offset, records)?)
    }
}

/// The records that end a reassignment of `p` with ISR `isr`: replicas become `target` (the
/// original ones when cancelling), the ISR keeps only them (or stays when none of it would be
/// left), and the leader stays if it is one of them, else the first target replica in the ISR
/// leads, with the leader epoch bumped either way (the replica set changed).
fn finish_reassignment(
    topic_id: Uuid,
    p: &crate::image::PartitionImage,
    isr: &[i32],
    target: &[i32],
    original: &[i32],
) -> Vec<MetadataRecord> {
    let mut kept: Vec<i32> = isr.iter().copied().filter(|b| target.contains(b)).collect();
    if kept.is_empty() {
        kept = isr.to_vec();
    }
    let leader = if target.contains(&p.leader) {
        p.leader
    } else {
        target
            .iter()
            .copied()
            .find(|b| kept.contains(b))
            .unwrap_or(-1)
    };
    vec![
        MetadataRecord::Partition {
            topic_id,
            partition: p.partition,
            replicas: target.to_vec(),
            isr: kept,
            leader,
            leader_epoch: p.leader_epoch + 1,
        },
        MetadataRecord::PartitionReassignment {
            topic_id,
            partition: p.partition,
            target: None,
            original: original.to_vec(),
        },
    ]
}

fn partition_records(
    topic_id: Uuid,
    first_partition: i32,
    assignments: &[Vec<i32>],
) -> impl Iterator<Item = MetadataRecord> + '_ {
    assignments
        .iter()
        .enumerate()
        .map(move |(i, replicas)| MetadataRecord::Partition {
            topic_id,
            partition: first_partition + i as i32,
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader: replicas[0],
            leader_epoch: 0,
        })
}

/// A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).
fn random_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits = u128::from_be_bytes(bytes);
    (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(port: u16) -> Vec<BrokerEndpoint> {
        vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port,
        }]
    }

    #[test]
    fn registering_again_with_the_same_endpoints_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = Controller::open(dir.path(), 1, None).unwrap();
        let first = c.register_broker(1, endpoint(9092)).unwrap();
        let registration = first.brokers[&1].clone();
        assert!(!registration.fenced);
        assert_eq!(registration.endpoint("PLAINTEXT").unwrap().port, 9092);
        assert!(registration.endpoint("SSL").is_none());
        drop(c);
        let c = Controller::open(dir.path(), 1, None).unwrap();
        let again = c.register_broker(1, endpoint(9092)).unwrap();
        assert_eq!(again.next_offset, first.next_offset, "no new record");
        assert_eq!(again.brokers[&1], registration);
        let moved = c.register_broker(1, endpoint(9093)).unwrap();
        assert_eq!(moved.next_offset, first.next_offset + 1);
        assert_ne!(
            moved.brokers[&1].incarnation_id,
            registration.incarnation_id
        );
        assert_eq!(moved.unfenced_brokers().count(), 1);
    }

    fn three_brokers() -> (tempfile::TempDir, Controller) {
        let dir = tempfile::tempdir().unwrap();
        let c = Controller::open(dir.path(), 1, None).unwrap();
        for id in 1..=3 {
            c.register_broker(id, endpoint(9090 + id as u16)).unwrap();
        }
        (dir, c)
    }

    fn spec(name: &str, partitions: i32, rf: i16) -> CreateTopicSpec {
        CreateTopicSpec {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            ..Default::default()
        }
    }

    #[test]
    fn partitions_spread_over_registered_brokers_with_up_to_as_many_replicas() {
        let (_dir, c) = three_brokers();
        let image = c.create_topic(&spec("t", 6, 1), 1, 1, false).unwrap();
        let leaders: Vec<i32> = image
            .topic("t")
            .unwrap()
            .partitions
            .iter()
            .map(|p| p.leader)
            .collect();
        for b in 1..=3 {
            assert_eq!(
                leaders.iter().filter(|&&l| l == b).count(),
                2,
                "{leaders:?}"
            );
        }
        let image = c.create_topic(&spec("r3", 3, 3), 1, 1, false).unwrap();
        for p in &image.topic("r3").unwrap().partitions {
            let mut sorted = p.replicas.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![1, 2, 3], "{p:?}");
            assert_eq!(
                (p.isr.clone(), p.leader),
                (p.replicas.clone(), p.replicas[0])
            );
            assert_eq!(p.partition_epoch, 0);
        }
        let err = c.create_topic(&spec("r4", 1, 4), 1, 1, false).unwrap_err();
        assert!(
            matches!(err, ControllerError::InvalidReplicationFactor(ref m) if m.contains("only 3 broker(s)")),
            "{err}"
        );
        let explicit = CreateTopicSpec {
            name: "two".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![vec![1, 2]],
            ..Default::default()
        };
        let image = c.create_topic(&explicit, 1, 1, false).unwrap();
        assert_eq!(
            image.topic("two").unwrap().partitions[0].replicas,
            vec![1, 2]
        );
    }

    #[test]
    fn preferred_election_gives_leadership_back_to_the_first_replica() {
        let (_dir, c) = three_brokers();
        c.create_topic(&spec("t", 1, 3), 1, 1, false).unwrap();
        let preferred = c.image().topic("t").unwrap().partitions[0].replicas[0];
        let tp = vec![("t".to_string(), 0), ("nope".to_string(), 0)];
        let (_, outcomes) = c.elect_leaders(Some(&tp), false).unwrap();
        assert_eq!(outcomes[0].1, ElectionOutcome::NotNeeded);
        assert_eq!(outcomes[1].1, ElectionOutcome::UnknownTopicOrPartition);
        c.controlled_shutdown(preferred).unwrap();
        // Restarted (registered again) but not in the ISR yet: not available.
        c.register_broker(preferred, endpoint(9090 + preferred as u16))
            .unwrap();
        let (_, outcomes) = c.elect_leaders(Some(&tp[..1]), false).unwrap();
        assert_eq!(outcomes[0].1, ElectionOutcome::PreferredLeaderNotAvailable);
        let p = c.image().topic("t").unwrap().partitions[0].clone();
        let mut isr = p.isr.clone();
        isr.push(preferred);
        c.alter_partition(
            p_topic_id(&c, "t"),
            0,
            p.leader,
            p.leader_epoch,
            p.partition_epoch,
            &isr,
        )
        .unwrap();
        let (image, outcomes) = c.elect_leaders(None, false).unwrap();
        assert_eq!(
            outcomes,
            vec![(("t".to_string(), 0), ElectionOutcome::Elected)]
        );
        let after = &image.topic("t").unwrap().partitions[0];
        assert_eq!(
            (after.leader, after.leader_epoch),
            (preferred, p.leader_epoch + 1)
        );
        let (_, outcomes) = c.elect_leaders(Some(&tp[..1]), true).unwrap();
        assert_eq!(
            outcomes[0].1,
            ElectionOutcome::NotNeeded,
            "unclean: the leader is live"
        );
    }

    fn p_topic_id(c: &Controller, name: &str) -> Uuid {
        c.image().topic(name).unwrap().topic_id
    }

    #[test]
    fn a_reassignment_adds_a_replica_completes_once_it_is_in_sync_and_removes_at_once() {
        let (_dir, c) = three_brokers();
        let explicit = CreateTopicSpec {
            name: "r".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![vec![1, 2]],
            ..Default::default()
        };
        let image = c.create_topic(&explicit, 1, 1, false).unwrap();
        let tid = image.topic("r").unwrap().topic_id;
        let p = |image: &MetadataImage| image.topic("r").unwrap().partitions[0].clone();
        let change = |target: Option<Vec<i32>>| vec![("r".to_string(), 0, target)];
        let (_, out) = c.alter_reassignments(&change(None), true).unwrap();
        assert!(matches!(
            out[0],
            Err(ControllerError::NoReassignmentInProgress)
        ));
        let (_, out) = c
            .alter_reassignments(&change(Some(vec![1, 2, 3])), false)
            .unwrap();
        assert!(matches!(
            out[0],
            Err(ControllerError::InvalidReplicationFactor(_))
        ));
        let (image, out) = c
            .alter_reassignments(&change(Some(vec![1, 2, 3])), true)
            .unwrap();
        assert!(out[0].is_ok());
        let during = p(&image);
        assert_eq!(
            (during.replicas.clone(), during.isr.clone()),
            (vec![1, 2, 3], vec![1, 2])
        );
        assert_eq!(during.reassignment, Some((vec![1, 2, 3], vec![1, 2])));
        assert_eq!(during.leader_epoch, 1, "the leader tracks the new replica");
        // Broker 3 caught up: its leader adds it, which completes the reassignment.
        let image = c
            .alter_partition(tid, 0, 1, 1, during.partition_epoch, &[1, 2, 3])
            .unwrap();
        let done = p(&image);
        assert_eq!(
            (done.replicas.clone(), done.isr.clone()),
            (vec![1, 2, 3], vec![1, 2, 3])
        );
        assert_eq!(done.reassignment, None);
        // Removing the leader's replica: complete at once, the leadership moves.
        let (image, _) = c
            .alter_reassignments(&change(Some(vec![2, 3])), true)
            .unwrap();
        let moved = p(&image);
        assert_eq!(
            (moved.replicas.clone(), moved.isr.clone(), moved.leader),
            (vec![2, 3], vec![2, 3], 2)
        );
        assert_eq!(moved.reassignment, None);
        // Cancelling puts back the replicas it had.
        c.alter_reassignments(&change(Some(vec![2, 1])), true)
            .unwrap();
        let (image, out) = c.alter_reassignments(&change(None), true).unwrap();
        assert!(out[0].is_ok());
        assert_eq!(
            (p(&image).replicas, p(&image).reassignment),
            (vec![2, 3], None)
        );
    }

    #[test]
    fn controlled_shutdown_moves_leadership_to_the_isr_and_leaves_it() {
        let (_dir, c) = three_brokers();
        c.create_topic(&spec("t", 3, 3), 1, 1, false).unwrap();
        c.create_topic(&spec("one", 3, 1), 1, 1, false).unwrap();
        let image = c.controlled_shutdown(2).unwrap();
        for p in &image.topic("t").unwrap().partitions {
            assert_ne!(p.leader, 2, "{p:?}");
            assert!(p.leader > 0, "{p:?}");
            assert!(!p.isr.contains(&2), "{p:?}");
        }
        for p in &image.topic("one").unwrap().partitions {
            if p.replicas == vec![2] {
                assert_eq!((p.leader, p.isr.clone()), (-1, vec![2]), "no other replica");
            }
        }
        assert!(image.brokers[&2].shutting_down && !image.is_active_broker(2));
        // Still fetching while it stops, it may not rejoin an ISR.
        let p = image.topic("t").unwrap().partitions[0].clone();
        let mut isr = p.isr.clone();
        isr.push(2);
        assert!(matches!(
            c.alter_partition(
                image.topic("t").unwrap().topic_id,
                0,
                p.leader,
                p.leader_epoch,
                p.partition_epoch,
                &isr
            ),
            Err(ControllerError::IneligibleReplica(_))
        ));
        let again = c.controlled_shutdown(2).unwrap();
        assert_eq!(again.next_offset, image.next_offset, "nothing left to move");
        // Nor does the fencing tick give it leaderships back while it is still heard from.
        let ticked = c.fence_and_elect(&[1, 2, 3]).unwrap();
        assert!(ticked
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .all(|p| p.leader != 2));
        // A restart registers it again: active.
        let back = c.register_broker(2, endpoint(9092)).unwrap();
        assert!(back.brokers[&2].incarnation_id != image.brokers[&2].incarnation_id);
        assert!(back.is_active_broker(2));
    }

    #[test]
    fn a_fenced_follower_leaves_the_isr_a_dead_leader_is_replaced_from_it_and_the_leader_alters_it()
    {
        let (_dir, c) = three_brokers();
        let image = c.create_topic(&spec("t", 1, 3), 1, 1, false).unwrap();
        let tid = image.topic("t").unwrap().topic_id;
        let p = |image: &MetadataImage| image.topic("t").unwrap().partitions[0].clone();
        let before = p(&image);
        let leader = before.leader;
        let follower = before.replicas[1];
        // The follower is fenced: it leaves the ISR, the leader and its epoch stay.
        let live: Vec<i32> = (1..=3).filter(|&b| b != follower).collect();
        let after = p(&c.fence_and_elect(&live).unwrap());
        assert_eq!(after.leader, leader);
        assert_eq!(after.leader_epoch, before.leader_epoch);
        assert!(!after.isr.contains(&follower), "{after:?}");
        assert_eq!(after.partition_epoch, 1);
        // Back: it does not rejoin the ISR by itself (its leader adds it once caught up) ...
        let back = p(&c.fence_and_elect(&[1, 2, 3]).unwrap());
        assert_eq!(back.isr, after.isr);
        // ... and the leader's change must name the current epochs.
        let mut full = after.isr.clone();
        full.push(follower);
        assert!(matches!(
            c.alter_partition(tid, 0, leader, before.leader_epoch, 0, &full),
            Err(ControllerError::InvalidUpdateVersion)
        ));
        assert!(matches!(
            c.alter_partition(tid, 0, follower, before.leader_epoch, 1, &full),
            Err(ControllerError::FencedLeaderEpoch)
        ));
        assert!(matches!(
            c.alter_partition(tid, 0, leader, before.leader_epoch, 1, &[follower]),
            Err(ControllerError::IneligibleReplica(_))
        ));
        let altered = p(&c
            .alter_partition(tid, 0, leader, before.leader_epoch, 1, &full)
            .unwrap());
        assert_eq!((altered.isr.len(), altered.partition_epoch), (3, 2));
        // The leader dies: a new one from the ISR, with the next leader epoch.
        let live: Vec<i32> = (1..=3).filter(|&b| b != leader).collect();
        let failed_over = p(&c.fence_and_elect(&live).unwrap());
        assert!(live.contains(&failed_over.leader), "{failed_over:?}");
        assert_eq!(failed_over.leader_epoch, before.leader_epoch + 1);
        assert!(!failed_over.isr.contains(&leader));
    }

    #[test]
    fn a_broker_that_goes_away_is_fenced_its_partitions_lose_their_leader_and_get_it_back() {
        let (_dir, c) = three_brokers();
        c.create_topic(&spec("t", 3, 1), 1, 1, false).unwrap();
        let before = c.image();
        assert_eq!(
            c.fence_and_elect(&[1, 2, 3]).unwrap().next_offset,
            before.next_offset,
            "nothing to do"
        );
        let after = c.fence_and_elect(&[1, 3]).unwrap();
        assert!(after.brokers[&2].fenced);
        assert_eq!(after.unfenced_brokers().count(), 2);
        for (old, new) in before
            .topic("t")
            .unwrap()
            .partitions
            .iter()
            .zip(&after.topic("t").unwrap().partitions)
        {
            if old.leader == 2 {
                assert_eq!((new.leader, new.leader_epoch), (-1, old.leader_epoch + 1));
                assert_eq!(new.isr, vec![2], "the ISR keeps the only replica");
            } else {
                assert_eq!(new, old);
            }
        }
        // New topics avoid the fenced broker.
        let image = c.create_topic(&spec("u", 4, 1), 1, 1, false).unwrap();
        assert!(image
            .topic("u")
            .unwrap()
            .partitions
            .iter()
            .all(|p| p.leader != 2));
        let back = c.fence_and_elect(&[1, 2, 3]).unwrap();
        assert!(!back.brokers[&2].fenced);
        for p in &back.topic("t").unwrap().partitions {
            assert!(p.leader > 0, "{p:?}");
        }
        assert_eq!(
            c.fence_and_elect(&[1, 2, 3]).unwrap().next_offset,
            back.next_offset
        );
    }
}
