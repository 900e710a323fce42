//! The crate's one error type. Each variant names the Kafka error code the shell answers with;
//! the mapping to wire codes lives in the broker's `errors.rs`, not here.

use crate::ids::{BrokerId, Offset};

/// Why an event was refused. Refusing leaves the state unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    /// A fetch (or an ISR) named a broker outside the partition's replicas
    /// (Kafka: NOT_LEADER_OR_FOLLOWER to that fetcher).
    #[error("broker {broker} is not a replica of this partition")]
    NotAReplica {
        /// The broker that is not a replica.
        broker: BrokerId,
    },
    /// A follower fetched beyond the leader's log end offset (Kafka: OFFSET_OUT_OF_RANGE).
    #[error("fetch offset {fetch_offset} is beyond the leader's log end offset {log_end_offset}")]
    FetchOffsetOutOfRange {
        /// The offset asked for.
        fetch_offset: Offset,
        /// The leader's log end offset.
        log_end_offset: Offset,
    },
    /// acks=all while the ISR is smaller than `min.insync.replicas` (Kafka: NOT_ENOUGH_REPLICAS).
    #[error("ISR has {isr_size} replicas, fewer than min.insync.replicas={min_insync_replicas}")]
    NotEnoughReplicas {
        /// The committed ISR's size.
        isr_size: usize,
        /// The partition's `min.insync.replicas`.
        min_insync_replicas: usize,
    },
    /// Asked to lead a partition whose ISR does not contain this broker.
    #[error("broker {leader} cannot lead: it is not in the ISR")]
    LeaderNotInIsr {
        /// This broker.
        leader: BrokerId,
    },
}
