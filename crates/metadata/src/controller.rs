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
    live_brokers: Vec<i32>,
    quorum: Arc<dyn MetadataQuorum>,
}

impl Controller {
    /// A controller of one: opens the metadata log under `dir` ([`LocalQuorum`]) and replays
    /// it; a new log gets a cluster id (`cluster_id`, or a fresh random one).
    pub fn open(
        dir: &Path,
        node_id: i32,
        cluster_id: Option<String>,
    ) -> Result<Controller, ControllerError> {
        let quorum = Arc::new(LocalQuorum::open(dir, node_id)?);
        Controller::with_quorum(quorum, vec![node_id], cluster_id)
    }

    /// A controller over `quorum`, placing replicas on `live_brokers`. An empty log gets its
    /// cluster id first.
    pub fn with_quorum(
        quorum: Arc<dyn MetadataQuorum>,
        live_brokers: Vec<i32>,
        cluster_id: Option<String>,
    ) -> Result<Controller, ControllerError> {
        let controller = Controller {
            node_id: quorum.node_id(),
            live_brokers,
            quorum,
        };
        if controller.image().cluster_id.is_empty() {
            let cluster_id = cluster_id.unwrap_or_else(random_cluster_id);
            controller.commit(
                &controller.image(),
                vec![MetadataRecord::Cluster { cluster_id }],
            )?;
        }
        Ok(controller)
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
            self.place(partitions, rf)?
        } else {
            if spec.num_partitions != -1 || spec.replication_factor != -1 {
                return Err(ControllerError::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            for replicas in &spec.assignments {
                self.check_replicas(replicas)?;
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
                    self.check_replicas(replicas)?;
                }
                given.to_vec()
            }
            None => self.place(added, rf)?,
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
            .is_some_and(|b| !b.fenced && b.endpoints == endpoints)
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

    fn place(&self, partitions: i32, rf: i16) -> Result<Vec<Vec<i32>>, ControllerError> {
        let brokers = self.live_brokers.len();
        if rf as usize > brokers {
            return Err(ControllerError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."
            )));
        }
        Ok((0..partitions as usize)
            .map(|p| {
                (0..rf as usize)
                    .map(|r| self.live_brokers[(p + r) % brokers])
                    .collect()
            })
            .collect())
    }

    fn check_replicas(&self, replicas: &[i32]) -> Result<(), ControllerError> {
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
        if let Some(b) = replicas.iter().find(|b| !self.live_brokers.contains(b)) {
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
}
