//! Cluster metadata for Oxka: the records that describe topics, partitions and configs, the
//! immutable [`MetadataImage`] they fold into, the durable [`MetadataLog`] that holds them, and
//! the [`Controller`] that validates admin requests and turns them into records.
//!
//! A single node is a cluster of one: it runs the same records, image and apply path that a
//! Raft quorum replicates in a multi-node cluster; only the log's transport differs.

pub mod acl;
mod acl_control;
mod controller;
pub mod dynamic_broker_config;
mod image;
mod quorum;
mod record;
mod scram;
mod store;
pub mod topic_config;

pub use controller::{Controller, ControllerError, CreateTopicSpec, ElectionOutcome, Elections};
pub use image::{BrokerRegistration, MetadataImage, PartitionImage, TopicImage};
pub use quorum::{ImageListener, LocalQuorum, MetadataQuorum, QuorumError};
pub use record::{BrokerEndpoint, MetadataRecord};
pub use scram::{ScramCredential, ScramMechanism};
pub use store::{MetadataLog, StoreError};
pub use uuid::Uuid;

/// Kafka's rules for a legal topic name: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Topics whose names differ only by `.` versus `_` collide in metric names; Kafka refuses them.
pub fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }
}
