//! The Raft metadata quorum: Oxka's [`MetadataQuorum`](oxka_metadata::MetadataQuorum) for a
//! cluster of several controllers (`controller.quorum.voters=1@host:port,2@...,3@...`), on
//! [openraft](https://docs.rs/openraft/0.9.25) 0.9.
//!
//! - [`store`]: the durable Raft state under `__cluster_metadata-0/raft/`: the vote, the log of
//!   record batches, and the state machine (the [`MetadataImage`](oxka_metadata::MetadataImage)
//!   folded from applied batches, with snapshots; it skips a batch that is stale).
//! - [`network`]: Raft RPCs and forwarded proposals between voters over plain TCP, as
//!   length-prefixed JSON frames.
//! - [`propose`]: the leader's side of a proposal: one at a time, checked against the image
//!   once all that is committed is applied, then `client_write`.
//! - [`quorum`]: [`RaftQuorum`], which starts the Raft node, initialises a new cluster, runs or
//!   forwards proposals, and reports live voters; [`parse_voters`] for
//!   `controller.quorum.voters`.
//!
//! One log entry is one proposal: a [`Batch`] of records, applied whole, and only if the log
//! still ends where the proposal was validated ([`Batch::based_on`]). The entry's response is
//! an [`EntryOutcome`].

use std::io;
use std::path::PathBuf;

pub mod network;
pub mod propose;
pub mod quorum;
pub mod store;

pub use quorum::{parse_voters, RaftConfig, RaftQuorum};

use oxka_metadata::MetadataRecord;
use serde::{Deserialize, Serialize};

/// A node's id in the quorum: Kafka's `node.id`, widened to openraft's `u64`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration of the metadata quorum.
    pub TypeConfig:
        D = Batch,
        R = EntryOutcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// The payload of a proposal's log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The `next_offset` of the image the records were validated against: the state machine
    /// applies them only if its image still ends there.
    pub based_on: u64,
    pub records: Vec<MetadataRecord>,
}

/// What applying one log entry did: the state machine's response to openraft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryOutcome {
    /// The entry's records (none, for a blank or membership entry) were applied; the image
    /// ends at `next_offset` after them.
    Applied { next_offset: u64 },
    /// A batch whose `based_on` was not the image's `next_offset` (which stays as it was) was
    /// skipped whole.
    Stale { next_offset: u64 },
}

/// Everything that can fail in this crate outside openraft's own storage errors.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("raft store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("raft store {path}: line {line} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("raft store {path}: {reason}")]
    Inconsistent { path: PathBuf, reason: String },
    #[error("raft configuration: {0}")]
    Config(String),
    // The openraft errors are boxed: they are large, and they are rare (start-up only).
    #[error("invalid openraft configuration: {0}")]
    OpenraftConfig(#[source] Box<openraft::ConfigError>),
    #[error("the raft node stopped: {0}")]
    Fatal(#[source] Box<openraft::error::Fatal<NodeId>>),
    #[error("initializing the cluster: {0}")]
    Initialize(#[source] Box<InitializeFailure>),
    #[error("binding the raft listener {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// openraft's answer to a refused `initialize`.
pub type InitializeFailure = openraft::error::RaftError<
    NodeId,
    openraft::error::InitializeError<NodeId, openraft::BasicNode>,
>;

impl From<openraft::ConfigError> for RaftError {
    fn from(e: openraft::ConfigError) -> RaftError {
        RaftError::OpenraftConfig(Box::new(e))
    }
}

impl From<openraft::error::Fatal<NodeId>> for RaftError {
    fn from(e: openraft::error::Fatal<NodeId>) -> RaftError {
        RaftError::Fatal(Box::new(e))
    }
}

impl From<InitializeFailure> for RaftError {
    fn from(e: InitializeFailure) -> RaftError {
        RaftError::Initialize(Box::new(e))
    }
}
