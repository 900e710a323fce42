//! # oxka-replication: the pure core of ISR replication
//!
//! Decisions only: no I/O, no threads, no clock, no randomness. The shell (follower fetcher,
//! network, log on disk, controller channel) feeds events in and carries the returned actions
//! out, so every rule here is tested without a runtime (`tests/simulation.rs` drives three
//! brokers and a controller through crashes, delays and losses with a seeded RNG).
//!
//! Modules:
//! - [`ids`]: `BrokerId`, `Offset`, `LeaderEpoch`, `PartitionEpoch`.
//! - [`leader`]: [`LeaderState`], one led partition's ISR and high watermark.
//! - [`epoch_cache`]: [`LeaderEpochCache`], leader epoch → start offset, and Kafka's
//!   `endOffsetFor` (OffsetsForLeaderEpoch).
//! - [`follower`]: the follower's truncation exchange (KIP-101/279).
//! - [`election`]: the controller's leader choice (clean, unclean, preferred) and controlled
//!   shutdown.
//!
//! ## Glossary (Kafka's words)
//! - **LEO** (log end offset): the offset the next record appended to a replica gets.
//! - **HW** (high watermark): every record below it is on every ISR member: committed.
//! - **ISR** (in-sync replicas): the replicas the controller lets be leader without data loss;
//!   the leader proposes changes (AlterPartition), the controller commits them.
//! - **maximal ISR**: the committed ISR together with any replica being added; the HW is computed
//!   over it while a change is in flight.
//! - **leader epoch**: the generation of leadership; records are stamped with it.
//! - **partition epoch**: the version of the controller's registration of the partition.

pub mod election;
pub mod epoch_cache;
pub mod error;
pub mod follower;
pub mod ids;
pub mod leader;

pub use epoch_cache::{EpochEntry, LeaderEpochCache};
pub use error::ReplicationError;
pub use ids::{BrokerId, LeaderEpoch, Offset, PartitionEpoch};
pub use leader::{AckStatus, Acks, Action, LeaderAndIsr, LeaderConfig, LeaderState};
