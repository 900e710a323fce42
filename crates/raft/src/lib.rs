//! The Raft metadata quorum: Oxka's [`MetadataQuorum`](oxka_metadata::MetadataQuorum) for a
//! cluster of several controllers (`controller.quorum.voters=1@host:port,2@...,3@...`), on
//! [openraft](https://docs.rs/openraft/0.9.25) 0.9.
//!
//! - [`store`]: the durable Raft state under `__cluster_metadata-0/raft/`: the vote, the log of
//!   record batches, and the state machine (the [`MetadataImage`](oxka_metadata::MetadataImage)
//!   folded from applied batches, with snapshots).
//! - [`network`]: Raft RPCs between voters over plain TCP, as length-prefixed JSON frames.
//! - [`quorum`]: [`RaftQuorum`], which starts the Raft node, initialises a new cluster and maps
//!   proposals onto `client_write`.
//!
//! One log entry is one proposal: a `Vec<MetadataRecord>` that is applied whole. The entry's
//! response is the image's `next_offset` once it is applied.

use std::io;
use std::path::PathBuf;

pub mod network;
pub mod propose;
pub mod quorum;
pub mod store;

pub use quorum::{parse_voters, RaftConfig, RaftQuorum};

use oxka_metadata::MetadataRecord;

/// A node's id in the quorum: Kafka's `node.id`, widened to openraft's `u64`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration of the metadata quorum.
    pub TypeConfig:
        D = Vec<MetadataRecord>,
        R = u64,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

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
