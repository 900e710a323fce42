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
