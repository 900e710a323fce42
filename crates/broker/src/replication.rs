//! The broker's replica manager: after every metadata image the hosted partitions take the
//! role the image gives them (leader or follower, `PartitionManager::sync_roles`) and the
//! replica fetchers follow the new set; a leader's ISR changes go to the controller as
//! records (Kafka's AlterPartition, here a proposal through the metadata quorum like any other
//! controller operation); a periodic tick shrinks ISRs of lagging followers and checkpoints
//! high watermarks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oxka_metadata::ControllerError;

use crate::partition::{IsrProposal, Partition};
use crate::Broker;

/// Kafka's default `replica.lag.time.max.ms`.
const DEFAULT_REPLICA_LAG_TIME_MAX_MS: u64 = 30_000;

impl Broker {
    /// `replica.lag.time.max.ms`: how long a follower may go without catching up before its
    /// leader removes it from the ISR.
    pub(crate) fn replica_lag_time_max_ms(&self) -> u64 {
        self.config
            .get("replica.lag.time.max.ms")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_REPLICA_LAG_TIME_MAX_MS)
    }

    /// Gives every hosted partition its role in `image` and hands the followed partitions to
    /// the replica fetchers. Blocking (a new leader epoch is checkpointed).
    pub(crate) fn install_roles(&self, image: &oxka_metadata::MetadataImage) {
        let followed = self
            .partitions()
            .sync_roles(image, self.replica_lag_time_max_ms());
        self.fetchers.update(followed);
    }

    /// Sends a leader's ISR change to the controller, off the caller's thread. A refusal that
    /// leaves the registration as it was (an ineligible replica, no quorum) lets the leader
    /// propose again; a fenced epoch or stale version means a newer registration is on its
    /// way, which settles the change.
    pub(crate) fn propose_isr(self: &Arc<Self>, partition: Arc<Partition>, proposal: IsrProposal) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Kafka's isReplicaIsrEligible: a fenced broker or one in controlled shutdown does not
        // join the ISR however caught up it is; refused here, without asking the controller.
        let image = self.image();
        let current_isr = image
            .topic_by_id(&partition.topic_id)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == partition.index))
            .map(|p| p.isr.clone())
            .unwrap_or_default();
        if proposal
            .new_isr
            .iter()
            .any(|b| !current_isr.contains(b) && !image.is_active_broker(*b))
        {
            partition.isr_rejected(proposal.partition_epoch);
            return;
        }
        let broker = Arc::clone(self);
        runtime.spawn_blocking(move || {
            let node_id = broker.config.node_id;
            let result = broker.change_metadata(|c| {
                c.alter_partition(
                    partition.topic_id,
                    partition.index,
                    node_id,
                    proposal.leader_epoch,
                    proposal.partition_epoch,
                    &proposal.new_isr,
                )
            });
            match result {
                Ok(_) => tracing::info!(topic = %partition.topic, partition = partition.index, isr = ?proposal.new_isr, "ISR changed"),
                Err(ControllerError::FencedLeaderEpoch | ControllerError::InvalidUpdateVersion) => {
                    tracing::debug!(topic = %partition.topic, partition = partition.index, "ISR change overtaken by a newer registration");
                }
                Err(e) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, isr = ?proposal.new_isr, error = %e, "ISR change refused");
                    partition.isr_rejected(proposal.partition_epoch);
                }
            }
        });
    }

    /// The leaders' periodic ISR check (followers that fell behind leave the ISR). Needs a
    /// runtime for the proposals.
    pub fn replication_tick(self: &Arc<Self>) {
        let now = u64::try_from(crate::now_ms()).unwrap_or(0);
        for partition in self.partitions().all() {
            for proposal in partition.isr_tick(now) {
                self.propose_isr(partition.clone(), proposal);
            }
        }
    }

    /// Waits until the coordinator partition of `key` in `topic` (`__consumer_offsets` or
    /// `__transaction_state`) has everything its log holds now on every ISR member, at most
    /// `offsets.commit.timeout.ms`; false when that did not happen (or the partition is not
    /// led here). Immediate on a partition without followers.
    pub(crate) async fn await_coordinator_write(&self, topic: &str, key: &str) -> bool {
        let Some(count) = self.image().topic(topic).map(|t| t.partitions.len() as i32) else {
            return true;
        };
        let index = crate::group::coordinator::partition_for(key, count.max(1));
        let Ok(partition) = self.led_partition(topic, index) else {
            return true; // answered NOT_COORDINATOR (or the like) already
        };
        let Ok((target, _)) = partition.log_end_and_start() else {
            return false;
        };
        let timeout_ms = self
            .config
            .get("offsets.commit.timeout.ms")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(5000);
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let replicated = partition
            .wait_until(deadline, |p| match p.offsets() {
                Ok(o) if o.high_watermark >= target => Some(true),
                // Still leading: wait for the followers.
                Ok(_) if p.following().is_none() => None,
                _ => Some(false),
            })
            .await
            .unwrap_or(false);
        if !replicated {
            tracing::warn!(
                topic,
                partition = index,
                target,
                "coordinator write not replicated in time"
            );
        }
        replicated
    }

    /// Kafka's controlled shutdown, before a cluster node stops: its leaderships move to other
    /// in-sync replicas and it leaves the ISRs, so clients see a retriable
    /// NOT_LEADER_OR_FOLLOWER and move rather than wait for the session timeout. Blocking.
    pub fn controlled_shutdown(&self) {
        let node_id = self.config.node_id;
        match self.change_metadata(|c| c.controlled_shutdown(node_id)) {
            Ok(image) => {
                let still = image
                    .topics
                    .values()
                    .flat_map(|t| &t.partitions)
                    .filter(|p| p.leader == node_id)
                    .count();
                tracing::info!(
                    still_leading = still,
                    "controlled shutdown: leaderships moved"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "controlled shutdown failed; leaderships move when this broker is fenced")
            }
        }
    }

    /// Writes the high watermark checkpoint of every log dir. Blocking.
    pub fn checkpoint_high_watermarks(&self) {
        if let Err(e) = self.partitions().checkpoint_high_watermarks() {
            tracing::warn!(error = %e, "writing the high watermark checkpoint failed");
        }
    }
}
