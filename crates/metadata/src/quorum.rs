//! The metadata quorum: the port between the controller and the replicated metadata log.
//!
//! The controller decides *what* to write (records, validated against the current image); a
//! [`MetadataQuorum`] decides *when it is written*: it appends records after every record
//! committed before them, makes them durable (on this node's disk for [`LocalQuorum`], on a
//! majority of voters for the Raft quorum), applies them to the image in log order and hands
//! the new image to every subscriber. Every node, controller or not, sees the same images in
//! the same order.
//!
//! Implementations are thread-safe; `propose` blocks until the records are committed and
//! applied (or refused), so callers run it off the async runtime (`spawn_blocking`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::image::MetadataImage;
use crate::record::MetadataRecord;
use crate::store::{MetadataLog, StoreError};

/// Why a proposal was not committed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// This node is not the active controller; `leader` is the one it knows of, if any.
    /// Kafka answers NOT_CONTROLLER and the caller retries against the leader.
    #[error("this node is not the active controller (active controller: {leader:?})")]
    NotController { leader: Option<i32> },
    /// The quorum could not commit in time (no majority reachable, leadership changing).
    #[error("metadata quorum unavailable: {0}")]
    Unavailable(String),
    /// The log has moved on since the image the proposal was validated against: records up
    /// to `next_offset` were committed meanwhile. The caller waits for that image
    /// ([`MetadataQuorum::wait_for`]), validates again and proposes again.
    #[error("the metadata log moved on to offset {next_offset} since the proposal's image")]
    Stale { next_offset: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Called with each newly applied image, in log order. Must not block for long: it runs on
/// the thread that applied the records.
pub type ImageListener = Box<dyn Fn(&Arc<MetadataImage>) + Send + Sync>;

/// The replicated metadata log, as the controller and the brokers see it.
pub trait MetadataQuorum: Send + Sync + fmt::Debug {
    /// This node's id.
    fn node_id(&self) -> i32;

    /// The node id of the active controller, if one is known (this node's for a local quorum).
    fn leader(&self) -> Option<i32>;

    /// Appends `records` in one batch that is applied whole or not at all, if and only if the
    /// log still ends at `based_on` (the `next_offset` of the image they were validated
    /// against; otherwise [`QuorumError::Stale`]), and returns the image with them applied
    /// once they are committed. This optimistic check is what lets any node validate an
    /// admin request against its own image and have the active controller append it, without
    /// two nodes' changes interleaving (two creations of one topic, two producer-id blocks).
    /// A node that is not the active controller forwards the proposal to it where the
    /// implementation can ([`QuorumError::NotController`] where it cannot). Blocking.
    fn propose(
        &self,
        based_on: u64,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, QuorumError>;

    /// As [`MetadataQuorum::propose`], but only while this node is the active controller:
    /// never forwarded, [`QuorumError::NotController`] once it is not. For decisions that only
    /// the active controller's own view justifies (fencing by its liveness): a deposed
    /// controller that was cut off must not have its view committed by the new one.
    fn propose_as_leader(
        &self,
        based_on: u64,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        self.propose(based_on, records)
    }

    /// The newest image applied on this node.
    fn image(&self) -> Arc<MetadataImage>;

    /// Blocks until this node has applied the log up to `next_offset` (returns that image or
    /// a newer one), or [`QuorumError::Unavailable`] after `timeout`.
    fn wait_for(
        &self,
        next_offset: u64,
        timeout: Duration,
    ) -> Result<Arc<MetadataImage>, QuorumError>;

    /// On the active controller: the nodes (voters) it has heard from within the broker
    /// session timeout, itself included, so the controller can fence brokers that went away.
    /// `None` on any other node.
    fn live_nodes(&self) -> Option<Vec<i32>>;

    /// Registers `listener` for every image applied from now on (this node's proposals and
    /// records committed by another controller alike).
    fn subscribe(&self, listener: ImageListener);
}

/// A quorum of one: the metadata log on this node's disk ([`MetadataLog`], fsynced JSON lines).
/// A record is committed when it is fsynced.
pub struct LocalQuorum {
    node_id: i32,
    state: Mutex<LocalState>,
    listeners: Mutex<Vec<ImageListener>>,
}

struct LocalState {
    log: MetadataLog,
    image: Arc<MetadataImage>,
}

impl LocalQuorum {
    /// Opens (or creates) the metadata log under `dir` and replays it into the first image.
    pub fn open(dir: &Path, node_id: i32) -> Result<LocalQuorum, StoreError> {
        let (log, records) = MetadataLog::open(dir)?;
        let mut image = MetadataImage::default();
        image.apply(&records);
        Ok(LocalQuorum {
            node_id,
            state: Mutex::new(LocalState {
                log,
                image: Arc::new(image),
            }),
            listeners: Mutex::new(Vec::new()),
        })
    }
}

impl fmt::Debug for LocalQuorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalQuorum")
            .field("node_id", &self.node_id)
            .field("next_offset", &self.state.lock().image.next_offset)
            .finish_non_exhaustive()
    }
}

impl MetadataQuorum for LocalQuorum {
    fn node_id(&self) -> i32 {
        self.node_id
    }

    fn leader(&self) -> Option<i32> {
        Some(self.node_id)
    }

    fn propose(
        &self,
        based_on: u64,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        let mut state = self.state.lock();
        if state.image.next_offset != based_on {
            return Err(QuorumError::Stale {
                next_offset: state.image.next_offset,
            });
        }
        state.log.append(&records)?;
        let mut image = (*state.image).clone();
        image.apply(&records);
        let image = Arc::new(image);
        state.image = image.clone();
        // Still under the state lock, so listeners see images in log order.
        for listener in self.listeners.lock().iter() {
            listener(&image);
        }
        Ok(image)
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.state.lock().image.clone()
    }

    fn wait_for(
        &self,
        next_offset: u64,
        _timeout: Duration,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        // Only this node appends, so an offset it has not reached will never come.
        let image = self.image();
        if image.next_offset >= next_offset {
            Ok(image)
        } else {
            Err(QuorumError::Unavailable(format!(
                "the local metadata log ends at {}, before {next_offset}",
                image.next_offset
            )))
        }
    }

    fn live_nodes(&self) -> Option<Vec<i32>> {
        Some(vec![self.node_id])
    }

    fn subscribe(&self, listener: ImageListener) {
        self.listeners.lock().push(listener);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn proposals_survive_a_reopen_and_reach_subscribers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let quorum = LocalQuorum::open(dir.path(), 1).unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = seen.clone();
        quorum.subscribe(Box::new(move |image| {
            // Each image is the one after the last seen.
            assert_eq!(seen2.fetch_add(1, Ordering::SeqCst) + 1, image.next_offset);
        }));
        let cluster = MetadataRecord::Cluster {
            cluster_id: "c1".into(),
        };
        quorum.propose(0, vec![cluster.clone()]).unwrap();
        assert!(matches!(
            quorum.propose(0, vec![cluster]),
            Err(QuorumError::Stale { next_offset: 1 })
        ));
        let image = quorum
            .propose(
                1,
                vec![MetadataRecord::ProducerIds {
                    next_block_start: 1000,
                }],
            )
            .unwrap();
        assert_eq!(image.next_offset, 2);
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        drop(quorum);
        let reopened = LocalQuorum::open(dir.path(), 1).unwrap();
        assert_eq!(reopened.image().cluster_id, "c1");
        assert_eq!(reopened.image().next_producer_id, 1000);
        assert_eq!(reopened.leader(), Some(1));
    }
}
