//! The metadata image: an immutable snapshot of everything the metadata log has said so far.
//! A new image is made by applying records to a clone; readers hold an `Arc` to the image they
//! started with, so a request never sees half of a change.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::acl::AclImage;
use crate::record::{BrokerEndpoint, ConfigResource, MetadataRecord};
use crate::scram::{ScramCredential, ScramMechanism};

#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// How many records have been applied (the next record's offset in the metadata log).
    pub next_offset: u64,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_names: BTreeMap<Uuid, String>,
    /// Per-topic config overrides (only keys that were set).
    pub topic_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Dynamic broker configs; the key "" holds cluster-wide defaults.
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The first producer id not yet handed out in any block.
    pub next_producer_id: i64,
    /// Every ACL (AccessControlEntry records not yet removed).
    pub acls: AclImage,
    /// SCRAM credentials by user, then mechanism.
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
}

/// A broker as it last registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub fenced: bool,
    /// In controlled shutdown: not elected, not added to ISRs, not placed on.
    pub shutting_down: bool,
}

impl BrokerRegistration {
    /// The endpoint for `listener`, as Kafka answers Metadata with the endpoints of the
    /// listener the request came in on.
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.name == listener)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionImage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    /// KRaft's partition epoch: the version of this registration, 0 when created and one more
    /// with every later Partition record for it (an ISR change, a new leader). A leader's ISR
    /// change names the epoch it was based on, so one based on an older registration is refused.
    pub partition_epoch: i32,
    /// An ongoing reassignment: (target replicas, replicas before it).
    pub reassignment: Option<(Vec<i32>, Vec<i32>)>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// The overrides set on `topic`, empty when none.
    pub fn topic_overrides(&self, topic: &str) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.topic_configs.get(topic).unwrap_or(&EMPTY)
    }

    /// The registered brokers that are not fenced, by id.
    pub fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Whether broker `id` may lead or join an ISR: registered, unfenced and not shutting down.
    pub fn is_active_broker(&self, id: i32) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(|b| !b.fenced && !b.shutting_down)
    }

    /// The SCRAM credential of `user` for `mechanism`, if one is set.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.scram_credentials.get(user)?.get(&mechanism)
    }

    /// Applies records in order. Records about unknown topics are ignored (they can only
    /// follow a removal in a replayed log).
    pub fn apply(&mut self, records: &[MetadataRecord]) {
        for record in records {
            self.apply_one(record);
            self.next_offset += 1;
        }
    }

    fn apply_one(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Cluster { cluster_id } => self.cluster_id = cluster_id.clone(),
            MetadataRecord::Topic { name, topic_id } => {
                self.topic_names.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: Vec::new(),
                    }),
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
            } => {
                let Some(name) = self.topic_names.get(topic_id) else {
                    return;
                };
                let Some(topic) = self.topics.get_mut(name) else {
                    return;
                };
                let topic = Arc::make_mut(topic);
                let mut image = PartitionImage {
                    partition: *partition,
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: 0,
                    reassignment: None,
                };
                match topic
                    .partitions
                    .binary_search_by_key(partition, |p| p.partition)
                {
                    Ok(i) => {
                        image.partition_epoch = topic.partitions[i].partition_epoch + 1;
                        image.reassignment = topic.partitions[i].reassignment.take();
                        topic.partitions[i] = image;
                    }
                    Err(i) => topic.partitions.insert(i, image),
                }
            }
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                endpoints,
                fenced,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        incarnation_id: *incarnation_id,
                        endpoints: endpoints.clone(),
                        fenced: *fenced,
                        shutting_down: false,
                    },
                );
            }
            MetadataRecord::BrokerRegistrationChange { broker_id, fenced } => {
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    b.fenced = *fenced;
                }
            }
            MetadataRecord::BrokerShuttingDown { broker_id } => {
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    b.shutting_down = true;
                }
            }
            MetadataRecord::UnregisterBroker { broker_id } => {
                self.brokers.remove(broker_id);
            }
            MetadataRecord::ProducerIds { next_block_start } => {
                self.next_producer_id = self.next_producer_id.max(*next_block_start);
            }
            MetadataRecord::PartitionReassignment {
                topic_id,
                partition,
                target,
                original,
            } => {
                let Some(name) = self.topic_names.get(topic_id) else {
                    return;
                };
                let Some(topic) = self.topics.get_mut(name) else {
                    return;
                };
                if let Some(p) = Arc::make_mut(topic)
                    .partitions
                    .iter_mut()
                    .find(|p| p.partition == *partition)
                {
                    p.reassignment = target.clone().map(|t| (t, original.clone()));
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.topic_names.remove(topic_id) {
                    self.topics.remove(&name);
                    self.topic_configs.remove(&name);
                }
            }
            MetadataRecord::AccessControlEntry { id, acl } => {
                self.acls.by_id.insert(*id, acl.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                self.acls.by_id.remove(id);
            }
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            } => {
                self.scram_credentials
                    .entry(name.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                if let Some(by_mechanism) = self.scram_credentials.get_mut(name) {
                    by_mechanism.remove(mechanism);
                    if by_mechanism.is_empty() {
                        self.scram_credentials.remove(name);
                    }
                }
            }
            MetadataRecord::Config {
                resource,
                resource_name,
                name,
                value,
            } => {
                let map = match resource {
                    ConfigResource::Topic => {
                        self.topic_configs.entry(resource_name.clone()).or_default()
                    }
                    ConfigResource::Broker => self
                        .broker_configs
                        .entry(resource_name.clone())
                        .or_default(),
                };
                match value {
                    Some(v) => {
                        map.insert(name.clone(), v.clone());
                    }
                    None => {
                        map.remove(name);
                    }
                }
            }
        }
    }
}
