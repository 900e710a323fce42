//! The one place where internal errors become Kafka error codes.

use kafka_protocol::error::ResponseError;
use oxka_log::batch::BatchError;
use oxka_log::LogError;
use oxka_metadata::ControllerError;
use oxka_protocol::kafka_protocol;

use crate::partition::PartitionError;
use crate::producer_state::ProducerError;

pub(crate) fn controller_error_code(e: &ControllerError) -> i16 {
    match e {
        ControllerError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
        ControllerError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        ControllerError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        ControllerError::InvalidConfig(_) => ResponseError::InvalidConfig,
        ControllerError::InvalidRequest(_) => ResponseError::InvalidRequest,
        ControllerError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        ControllerError::Store(_) => ResponseError::KafkaStorageError,
        ControllerError::NotController { .. } => ResponseError::NotController,
        ControllerError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        ControllerError::InvalidUpdateVersion => ResponseError::InvalidUpdateVersion,
        ControllerError::IneligibleReplica(_) => ResponseError::IneligibleReplica,
        ControllerError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        // Stale is retried by Broker::change_metadata; after its last attempt the change timed out.
        ControllerError::QuorumUnavailable(_) | ControllerError::Stale { .. } => {
            ResponseError::RequestTimedOut
        }
    }
    .code()
}

pub(crate) fn partition_error_code(e: &PartitionError) -> i16 {
    match e {
        PartitionError::Deleted => ResponseError::UnknownTopicOrPartition,
        PartitionError::InvalidRecord(_) => ResponseError::InvalidRecord,
        PartitionError::CorruptMessage(_) => ResponseError::CorruptMessage,
        PartitionError::UnsupportedCompressionType => ResponseError::UnsupportedCompressionType,
        PartitionError::NotLeader => ResponseError::NotLeaderOrFollower,
        PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        PartitionError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        PartitionError::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
        PartitionError::RecordErrors {
            timestamp: true, ..
        } => ResponseError::InvalidTimestamp,
        PartitionError::RecordErrors { .. } => ResponseError::InvalidRecord,
        PartitionError::Producer(e) => match e {
            ProducerError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            ProducerError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            ProducerError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        },
        PartitionError::Log(e) => match e {
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            LogError::InvalidRecords(b) => match b {
                BatchError::CorruptMessage { .. } => ResponseError::CorruptMessage,
                BatchError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
                _ => ResponseError::InvalidRecord,
            },
            LogError::RecordsTooLargeForSegment { .. } => ResponseError::RecordListTooLarge,
            _ => ResponseError::KafkaStorageError,
        },
    }
    .code()
}
