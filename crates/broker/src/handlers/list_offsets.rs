//! ListOffsets (key 2) and OffsetForLeaderEpoch (key 23).
//!
//! ListOffsets timestamps: -2 earliest, -1 latest, -3 max timestamp (KIP-734), -4 earliest
//! local (KIP-405), -5 latest tiered (no tiered storage: -1), otherwise the first record with
//! a timestamp at or after the target (offset -1 when there is none).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use oxka_protocol::kafka_protocol;

use oxka_metadata::acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::errors::partition_error_code;
use crate::partition::{Partition, PartitionError};
use crate::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub(super) fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let version = ctx.api_version;
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let authorized = broker.authorize(
            ctx,
            AclOperation::Describe,
            ResourceType::Topic,
            &topic.name,
        );
        let mut t = ListOffsetsTopicResponse::default();
        for p in &topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            r.leader_epoch = -1;
            match led(broker, authorized, &topic.name, p.partition_index) {
                Err(code) => r.error_code = code,
                Ok(partition) => {
                    if let Some(code) = check_leader_epoch(&partition, p.current_leader_epoch) {
                        r.error_code = code;
                    } else {
                        let found = if p.timestamp == LATEST && request.isolation_level == 1 {
                            // read_committed: the latest offset a committed reader may see.
                            partition.last_stable_offset().map(|lso| Some((lso, -1)))
                        } else {
                            lookup(&partition, p.timestamp, version)
                        };
                        match found {
                            Ok(Some((offset, timestamp))) => {
                                r.offset = offset;
                                r.timestamp = timestamp;
                                if version >= 4 {
                                    r.leader_epoch = partition.leader_epoch();
                                }
                            }
                            Ok(None) => {}
                            Err(e) => r.error_code = partition_error_code(&e),
                        }
                    }
                }
            }
            t.partitions.push(r);
        }
        t.name = topic.name;
        response.topics.push(t);
    }
    response
}

fn lookup(
    partition: &Partition,
    timestamp: i64,
    version: i16,
) -> Result<Option<(i64, i64)>, PartitionError> {
    if timestamp == LATEST {
        // What consumers may read: the high watermark, not the log end.
        return Ok(Some((partition.offsets()?.high_watermark, -1)));
    }
    partition.with_log(|log| {
        Ok(match timestamp {
            EARLIEST | EARLIEST_LOCAL => Some((log.log_start_offset(), -1)),
            MAX_TIMESTAMP if version >= 7 => log.max_timestamp_offset()?,
            LATEST_TIERED if version >= 9 => None,
            t if t >= 0 => log.offset_for_timestamp(t)?,
            _ => None,
        })
    })
}

/// Kafka's leader-epoch fencing: a client's epoch newer than ours is UNKNOWN_LEADER_EPOCH,
/// an older one FENCED_LEADER_EPOCH; -1 skips the check.
fn check_leader_epoch(partition: &Partition, current: i32) -> Option<i16> {
    partition
        .check_leader_epoch(current)
        .err()
        .map(|e| partition_error_code(&e))
}

/// The partition to answer from: TOPIC_AUTHORIZATION_FAILED when the topic is not authorized
/// (its existence is not disclosed), else [`Broker::led_partition`]'s answer
/// (UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER when another node leads it, as
/// Kafka's ListOffsets and OffsetsForLeaderEpoch answer from the leader only).
fn led(
    broker: &Broker,
    authorized: bool,
    topic: &str,
    partition: i32,
) -> Result<Arc<Partition>, i16> {
    if !authorized {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    broker.led_partition(topic, partition)
}

/// OffsetForLeaderEpoch: CLUSTER_ACTION on the cluster (followers) or DESCRIBE on each topic
/// (consumers since KIP-320), as Kafka checks.
pub(super) fn offset_for_leader_epoch(
    broker: &Broker,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    let cluster_action = broker.authorize_cluster(ctx, AclOperation::ClusterAction);
    for topic in request.topics {
        let authorized = cluster_action
            || broker.authorize(
                ctx,
                AclOperation::Describe,
                ResourceType::Topic,
                &topic.topic,
            );
        let mut t = OffsetForLeaderTopicResult::default();
        for p in &topic.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            match led(broker, authorized, &topic.topic, p.partition) {
                Err(code) => r.error_code = code,
                Ok(partition) => {
                    if let Some(code) = check_leader_epoch(&partition, p.current_leader_epoch) {
                        r.error_code = code;
                    } else {
                        let found =
                            partition.with_log(|log| Ok(log.end_offset_for_epoch(p.leader_epoch)));
                        match found {
                            Ok(Some((epoch, offset))) => {
                                r.leader_epoch = epoch;
                                r.end_offset = offset;
                            }
                            Ok(None) => {}
                            Err(e) => r.error_code = partition_error_code(&e),
                        }
                    }
                }
            }
            t.partitions.push(r);
        }
        t.topic = topic.topic;
        response.topics.push(t);
    }
    response
}
