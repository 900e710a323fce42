//! Who leads a partition, and so which node serves it. The metadata image is the only source:
//! a partition is served here when the image names this node its leader, whatever logs happen
//! to be on disk (a replica that is not the leader keeps its log but serves nothing).
//!
//! Every partition-addressed API (Produce, Fetch, ListOffsets, OffsetsForLeaderEpoch,
//! DeleteRecords, DescribeProducers) asks [`Broker::led_partition`]; the coordinators ask
//! [`leads`] for their `__consumer_offsets` / `__transaction_state` partitions, and
//! [`led_partitions_changed`] tells them which of those partitions to load and unload when a
//! new image arrives. These are plain functions of the image so they are tested without a
//! broker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use oxka_metadata::{BrokerEndpoint, MetadataImage};

use crate::partition::Partition;
use crate::Broker;

pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// What the image says about one partition, from this node's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// The topic, or the partition, is not in the image.
    Unknown,
    /// This node leads it.
    Local { leader_epoch: i32 },
    /// Another node leads it, or (`leader` = -1) no node does.
    Elsewhere { leader: i32, leader_epoch: i32 },
}

impl Leadership {
    /// The error a partition-addressed request answers with, `None` when led here. Kafka's
    /// ReplicaManager: a partition in the metadata that this broker does not lead is
    /// NOT_LEADER_OR_FOLLOWER (with or without a leader elsewhere), one not in the metadata
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub fn error_code(self) -> Option<i16> {
        match self {
            Leadership::Local { .. } => None,
            Leadership::Elsewhere { .. } => Some(NOT_LEADER_OR_FOLLOWER),
            Leadership::Unknown => Some(UNKNOWN_TOPIC_OR_PARTITION),
        }
    }

    /// The (leader id, leader epoch) Kafka reports as `current_leader` (KIP-951): (-1, -1)
    /// for a partition it does not know.
    pub fn leader_and_epoch(self, node_id: i32) -> (i32, i32) {
        match self {
            Leadership::Unknown => (-1, -1),
            Leadership::Local { leader_epoch } => (node_id, leader_epoch),
            Leadership::Elsewhere {
                leader,
                leader_epoch,
            } => (leader, leader_epoch),
        }
    }
}

/// Who leads `topic`-`partition` in `image`, seen from `node_id`.
pub fn leadership(image: &MetadataImage, node_id: i32, topic: &str, partition: i32) -> Leadership {
    let Some(p) = image
        .topic(topic)
        .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
    else {
        return Leadership::Unknown;
    };
    if p.leader == node_id && p.leader >= 0 {
        Leadership::Local {
            leader_epoch: p.leader_epoch,
        }
    } else {
        Leadership::Elsewhere {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
        }
    }
}

/// Whether `node_id` leads `topic`-`partition` in `image`.
pub fn leads(image: &MetadataImage, node_id: i32, topic: &str, partition: i32) -> bool {
    matches!(
        leadership(image, node_id, topic, partition),
        Leadership::Local { .. }
    )
}

/// The partitions of `topic` that `node_id` leads in `image` (empty without the topic).
pub fn led_partitions(image: &MetadataImage, node_id: i32, topic: &str) -> BTreeSet<i32> {
    image.topic(topic).map_or_else(BTreeSet::new, |t| {
        t.partitions
            .iter()
            .filter(|p| p.leader == node_id)
            .map(|p| p.partition)
            .collect()
    })
}

/// The partitions of `topic` that `node_id` leads in `new` but not in `previous` (gained),
/// and those it led in `previous` but not in `new` (lost). A partition whose topic was
/// deleted and re-created counts as lost and gained when its topic id changed.
pub fn led_partitions_changed(
    previous: &MetadataImage,
    new: &MetadataImage,
    node_id: i32,
    topic: &str,
) -> (BTreeSet<i32>, BTreeSet<i32>) {
    let mut before = led_partitions(previous, node_id, topic);
    let after = led_partitions(new, node_id, topic);
    let same_topic = match (previous.topic(topic), new.topic(topic)) {
        (Some(a), Some(b)) => a.topic_id == b.topic_id,
        _ => true,
    };
    if !same_topic {
        let lost = std::mem::take(&mut before);
        return (after, lost);
    }
    let gained = after.difference(&before).copied().collect();
    let lost = before.difference(&after).copied().collect();
    (gained, lost)
}

/// The endpoint of broker `node_id` for `listener` if it is registered and unfenced (Kafka's
/// `metadataCache.getAliveBrokerNode(id, listener)`); like Metadata's broker list, its first
/// endpoint when none is named `listener`.
pub fn broker_endpoint<'a>(
    image: &'a MetadataImage,
    node_id: i32,
    listener: &str,
) -> Option<&'a BrokerEndpoint> {
    image
        .brokers
        .get(&node_id)
        .filter(|b| !b.fenced)
        .and_then(|b| b.endpoint(listener).or_else(|| b.endpoints.first()))
}

/// KIP-951: the `current_leader` (leader id, leader epoch) a partition answered
/// NOT_LEADER_OR_FOLLOWER carries (`topic` `None`: a topic id the image does not know), and
/// that leader's endpoint for `listener` added to `endpoints`, the response's node endpoints
/// (Kafka's `getCurrentLeader` in handleProduceRequest / handleFetchRequest).
pub(crate) fn current_leader<'a>(
    image: &'a MetadataImage,
    node_id: i32,
    topic: Option<&str>,
    partition: i32,
    listener: &str,
    endpoints: &mut BTreeMap<i32, &'a BrokerEndpoint>,
) -> (i32, i32) {
    let (id, epoch) = topic
        .map_or(Leadership::Unknown, |t| {
            leadership(image, node_id, t, partition)
        })
        .leader_and_epoch(node_id);
    if let Some(e) = broker_endpoint(image, id, listener) {
        endpoints.insert(id, e);
    }
    (id, epoch)
}

/// Of `partitions` of a coordinator topic, those to read into memory now: this node leads
/// them in `image` and they are not `loaded` already.
pub(crate) fn to_load(
    image: &MetadataImage,
    node_id: i32,
    topic: &str,
    partitions: &BTreeSet<i32>,
    loaded: &BTreeSet<i32>,
) -> BTreeSet<i32> {
    partitions
        .iter()
        .copied()
        .filter(|p| !loaded.contains(p) && leads(image, node_id, topic, *p))
        .collect()
}

impl Broker {
    /// Who leads `topic`-`partition` according to the broker's current image.
    pub fn leadership(&self, topic: &str, partition: i32) -> Leadership {
        leadership(&self.image(), self.config.node_id, topic, partition)
    }

    /// The local partition to serve a partition-addressed request from, or the error code to
    /// answer: UNKNOWN_TOPIC_OR_PARTITION when the image does not have it (or its log is
    /// gone), NOT_LEADER_OR_FOLLOWER when another node, or none, leads it. A partition led
    /// elsewhere is never touched, even when a log of it is on this node.
    pub(crate) fn led_partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, i16> {
        if let Some(code) = self.leadership(topic, partition).error_code() {
            return Err(code);
        }
        self.partitions()
            .get(topic, partition)
            .ok_or(UNKNOWN_TOPIC_OR_PARTITION)
    }

    /// The local replica a consumer's Fetch may read: from Fetch v11 (KIP-392) Kafka serves a
    /// consumer from a follower too, below the follower's high watermark; a broker that holds
    /// no replica answers as [`Broker::led_partition`] does.
    pub(crate) fn readable_partition(
        &self,
        topic: &str,
        partition: i32,
        version: i16,
    ) -> Result<Arc<Partition>, i16> {
        match self.led_partition(topic, partition) {
            Err(NOT_LEADER_OR_FOLLOWER) if version >= 11 => {
                let image = self.image();
                let replica = image
                    .topic(topic)
                    .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
                    .is_some_and(|p| p.replicas.contains(&self.config.node_id));
                match self.partitions().get(topic, partition) {
                    Some(p) if replica => Ok(p),
                    _ => Err(NOT_LEADER_OR_FOLLOWER),
                }
            }
            other => other,
        }
    }
}

impl Broker {
    /// Loads the coordinator partitions (`__consumer_offsets`, `__transaction_state`) this
    /// node leads in `new` but did not in `previous`, and unloads those it no longer leads.
    /// Called by [`Broker::apply_image`] after the partitions are reconciled (so a newly led
    /// partition's log is open). Blocking: a load reads the partition's log.
    pub(crate) fn move_coordinators(&self, previous: &MetadataImage, new: &MetadataImage) {
        let node_id = self.config.node_id;
        let (gained, lost) =
            led_partitions_changed(previous, new, node_id, crate::group::OFFSETS_TOPIC);
        if !lost.is_empty() {
            self.groups.unload_partitions(self, &lost);
        }
        if !gained.is_empty() {
            self.groups.load_partitions(self, &gained);
        }
        let (gained, lost) = led_partitions_changed(previous, new, node_id, crate::txn::TXN_TOPIC);
        if !lost.is_empty() {
            self.txns.unload_partitions(self, &lost);
        }
        if !gained.is_empty() {
            self.txns.load_partitions(self, &gained);
        }
    }
}

/// Test support: lets a test stand in for the rest of a cluster by writing metadata records
/// (another broker's registration, partitions it leads) through this broker's quorum.
impl Broker {
    /// Registers broker `broker_id` with `endpoints`, as that broker would on start-up.
    #[doc(hidden)]
    pub fn register_broker_for_test(
        &self,
        broker_id: i32,
        endpoints: Vec<BrokerEndpoint>,
    ) -> Result<(), oxka_metadata::ControllerError> {
        self.change_metadata(|c| c.register_broker(broker_id, endpoints.clone()))
            .map(|_| ())
    }

    /// Appends `records` as they are (no validation) and returns once this broker has applied
    /// them, e.g. a topic whose replicas are on a broker this controller does not place on,
    /// or a `Partition` record that moves a leader.
    #[doc(hidden)]
    pub fn propose_for_test(
        &self,
        records: Vec<oxka_metadata::MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, oxka_metadata::ControllerError> {
        self.change_metadata(|c| {
            let image = c.image();
            Ok(c.quorum().propose(image.next_offset, records.clone())?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxka_metadata::MetadataRecord;
    use uuid::Uuid;

    fn image_with(topic_id: Uuid, leaders: &[(i32, i32)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        let mut records = vec![MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        }];
        for (partition, (leader, epoch)) in leaders.iter().enumerate() {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition: partition as i32,
                replicas: vec![(*leader).max(1)],
                isr: vec![(*leader).max(1)],
                leader: *leader,
                leader_epoch: *epoch,
            });
        }
        image.apply(&records);
        image
    }

    #[test]
    fn a_partition_is_local_only_when_the_image_names_this_node_leader() {
        let image = image_with(Uuid::new_v4(), &[(1, 0), (2, 3), (-1, 4)]);
        assert_eq!(
            leadership(&image, 1, "t", 0),
            Leadership::Local { leader_epoch: 0 }
        );
        assert_eq!(
            leadership(&image, 1, "t", 1),
            Leadership::Elsewhere {
                leader: 2,
                leader_epoch: 3
            }
        );
        assert_eq!(
            leadership(&image, 1, "t", 2).error_code(),
            Some(NOT_LEADER_OR_FOLLOWER)
        );
        assert_eq!(
            leadership(&image, 1, "t", 3).error_code(),
            Some(UNKNOWN_TOPIC_OR_PARTITION)
        );
        assert_eq!(leadership(&image, 1, "u", 0), Leadership::Unknown);
        assert_eq!(leadership(&image, 1, "t", 3).leader_and_epoch(1), (-1, -1));
    }

    #[test]
    fn led_partitions_changed_reports_gained_and_lost_leadership() {
        let id = Uuid::new_v4();
        let before = image_with(id, &[(1, 0), (2, 0), (1, 0)]);
        let after = image_with(id, &[(2, 1), (1, 1), (1, 0)]);
        let (gained, lost) = led_partitions_changed(&before, &after, 1, "t");
        assert_eq!(gained, BTreeSet::from([1]));
        assert_eq!(lost, BTreeSet::from([0]));
        let (gained, lost) = led_partitions_changed(&MetadataImage::default(), &before, 1, "t");
        assert_eq!(gained, BTreeSet::from([0, 2]));
        assert!(lost.is_empty());
        let recreated = image_with(Uuid::new_v4(), &[(1, 0)]);
        let (gained, lost) = led_partitions_changed(&before, &recreated, 1, "t");
        assert_eq!(gained, BTreeSet::from([0]));
        assert_eq!(lost, BTreeSet::from([0, 2]));
    }
}
