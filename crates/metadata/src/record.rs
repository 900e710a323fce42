//! Metadata records: the unit of change in the metadata log. Each is applied, in log order,
//! by [`crate::MetadataImage::apply`]. Names follow KRaft's record types.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::AclBinding;
use crate::scram::{ScramCredential, ScramMechanism};

/// Which kind of resource a [`MetadataRecord::Config`] applies to (Kafka's ConfigResource types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic,
    /// A broker; an empty resource name is the cluster-wide default.
    Broker,
}

/// One listener a broker serves clients on, as it advertises it (KRaft's BrokerEndpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// The listener name (`PLAINTEXT`, `SASL_SSL`, ...), matched against the listener a
    /// request arrived on.
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// The cluster's identity, written once when the log is created.
    Cluster {
        cluster_id: String,
    },
    Topic {
        name: String,
        topic_id: Uuid,
    },
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
    },
    RemoveTopic {
        topic_id: Uuid,
    },
    /// A partition reassignment began (`target` set; `original` the replicas before it) or
    /// ended (`target` None): KRaft keeps adding/removing replicas in the partition record;
    /// here the replicas during a reassignment are `target` and the `original` ones not in it.
    PartitionReassignment {
        topic_id: Uuid,
        partition: i32,
        target: Option<Vec<i32>>,
        original: Vec<i32>,
    },
    /// A broker (re)registered (KRaft's RegisterBrokerRecord): a new process, or new endpoints.
    /// It replaces any earlier registration of the same id.
    RegisterBroker {
        broker_id: i32,
        /// Random per registration, so a restarted broker is told apart from its old self.
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        /// A fenced broker leads nothing and is left out of Metadata responses.
        fenced: bool,
    },
    /// A registered broker was fenced or unfenced (KRaft's BrokerRegistrationChangeRecord).
    BrokerRegistrationChange {
        broker_id: i32,
        fenced: bool,
    },
    /// A broker began its controlled shutdown (KRaft's in-controlled-shutdown state): it leads
    /// nothing new and joins no ISR until it registers again.
    BrokerShuttingDown {
        broker_id: i32,
    },
    /// A broker's registration was removed (KRaft's UnregisterBrokerRecord).
    UnregisterBroker {
        broker_id: i32,
    },
    /// A block of producer ids was handed out; the next block starts at `next_block_start`.
    ProducerIds {
        next_block_start: i64,
    },
    /// Sets (`Some`) or removes (`None`) one config key of a resource.
    Config {
        resource: ConfigResource,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    /// An ACL was created (KRaft's AccessControlEntryRecord); `id` names it for removal.
    AccessControlEntry {
        id: Uuid,
        acl: AclBinding,
    },
    /// The ACL `id` was deleted (KRaft's RemoveAccessControlEntryRecord).
    RemoveAccessControlEntry {
        id: Uuid,
    },
    /// Sets a user's SCRAM credential for one mechanism (AlterUserScramCredentials upsertion).
    UserScramCredential {
        name: String,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    },
    /// Removes a user's SCRAM credential for one mechanism.
    RemoveUserScramCredential {
        name: String,
        mechanism: ScramMechanism,
    },
}
