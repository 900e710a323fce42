//! ISR and high-watermark bookkeeping for one partition led by this broker (Kafka's
//! `Partition` on the leader: `updateFollowerFetchState`, `maybeExpandIsr`, `maybeShrinkIsr`,
//! `maybeIncrementLeaderHW`, `checkEnoughReplicasReachOffset`).
//!
//! Events in, [`Action`]s out; the shell appends, serves fetches, sends AlterPartition and
//! completes delayed produces. No I/O, no clock: `now_ms` comes with each event.
//!
//! Invariants:
//! - **The high watermark never decreases** while this [`LeaderState`] lives (one leader epoch).
//!   It starts at the replica's own prior HW, which may lag the previous leader's, and only
//!   advances: it is `min(LEO)` over the *maximal* ISR, applied only when larger.
//! - **At most one ISR change is in flight** (Kafka's `PendingExpandIsr`/`PendingShrinkIsr`).
//!   While one is, no other is proposed and the HW is computed over the maximal ISR: the
//!   committed ISR plus a replica being added (it might already be in the ISR the controller
//!   holds), and the committed ISR itself during a shrink (the controller may not have applied
//!   it). So a new leader elected from either ISR has every record below the HW.
//! - **The leader is always in the ISR** and is never proposed for removal.
//! - A follower's log end offset is unknown until its first fetch in this epoch; an unknown
//!   follower in the ISR holds the HW where it is.
//! - A replica joins the ISR only when its LEO is `>=` the HW and `>=` the leader epoch's start
//!   offset (it has everything this leader committed and is on this leader's log).
//! - A follower leaves the ISR when it has not caught up for more than
//!   `replica.lag.time.max.ms` and is not at the leader's LEO.
//!
//! Not modelled (Kafka has them): the HW also waiting for a caught-up replica about to join the
//! ISR (KIP-841), broker epochs and fenced/shutting-down brokers in ISR eligibility, ELR.
//!
//! Plain data, `Send + Sync`; the shell serialises events per partition.

use std::collections::BTreeMap;

use crate::error::ReplicationError;
use crate::ids::{BrokerId, LeaderEpoch, Offset, PartitionEpoch};

/// What the shell must do after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The high watermark advanced to this offset: expose it to consumers, checkpoint it, and
    /// re-check delayed acks=all produces ([`LeaderState::check_ack`]).
    HighWatermark(Offset),
    /// Send AlterPartition to the controller with this ISR; answer with
    /// [`LeaderState::on_isr_committed`] or [`LeaderState::on_isr_rejected`].
    AlterIsr {
        /// The proposed ISR.
        new_isr: Vec<BrokerId>,
        /// This leader's epoch.
        leader_epoch: LeaderEpoch,
        /// The partition epoch this proposal is based on.
        partition_epoch: PartitionEpoch,
    },
}

/// A produce request's `acks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: no response.
    Zero,
    /// acks=1: the leader's append.
    One,
    /// acks=-1 (all): every ISR member, with at least `min.insync.replicas` of them.
    All,
}

impl Acks {
    /// From Kafka's wire value (0, 1, -1); `None` for any other.
    pub fn from_kafka(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::Zero),
            1 => Some(Acks::One),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// Where a waiting acks=all produce stands ([`LeaderState::check_ack`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckStatus {
    /// Every maximal-ISR member has the batch and the ISR is large enough: answer success.
    Done,
    /// The batch is below the HW but the ISR shrank under `min.insync.replicas` since the
    /// append (Kafka: NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    NotEnoughReplicasAfterAppend,
    /// Not yet replicated; the shell answers REQUEST_TIMED_OUT if this lasts past the timeout.
    Pending,
}

/// The configuration a leader needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    /// `replica.lag.time.max.ms`: how long a follower may go without catching up.
    pub replica_lag_time_max_ms: u64,
    /// `min.insync.replicas`.
    pub min_insync_replicas: usize,
}

/// The controller's registration of a partition, as handed to its leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// The leader epoch this broker leads in.
    pub leader_epoch: LeaderEpoch,
    /// The registration's partition epoch.
    pub partition_epoch: PartitionEpoch,
    /// All replicas, in assignment order.
    pub replicas: Vec<BrokerId>,
    /// The committed ISR.
    pub isr: Vec<BrokerId>,
}

/// An ISR change sent to the controller and not yet answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingIsrChange {
    /// Kafka's `PendingExpandIsr`: adding one replica.
    Expand {
        /// The replica being added.
        adding: BrokerId,
        /// The proposed ISR.
        proposed: Vec<BrokerId>,
    },
    /// Kafka's `PendingShrinkIsr`: removing out-of-sync replicas.
    Shrink {
        /// The replicas being removed.
        removing: Vec<BrokerId>,
        /// The proposed ISR.
        proposed: Vec<BrokerId>,
    },
}

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (its last fetch offset); `None` before its first fetch in
    /// this leader epoch.
    pub log_end_offset: Option<Offset>,
    /// When it last fetched; `None` before its first fetch.
    pub last_fetch_ms: Option<u64>,
    /// The leader's LEO at that fetch.
    pub last_fetch_leader_log_end_offset: Option<Offset>,
    /// The last time it was known to be caught up. Set to the election time for ISR members and
    /// 0 for the others when this leader took over.
    pub last_caught_up_ms: u64,
}

/// The leader's state for one partition in one leader epoch. See the module docs.
#[derive(Clone, Debug)]
pub struct LeaderState {
    local: BrokerId,
    replicas: Vec<BrokerId>,
    isr: Vec<BrokerId>,
    pending: Option<PendingIsrChange>,
    leader_epoch: LeaderEpoch,
    leader_epoch_start_offset: Offset,
    partition_epoch: PartitionEpoch,
    log_end_offset: Offset,
    high_watermark: Offset,
    followers: BTreeMap<BrokerId, FollowerState>,
    config: LeaderConfig,
}

impl LeaderState {
    /// Broker `local` becomes leader of `partition` at `now_ms`, with its log at
    /// `log_end_offset` (also the leader epoch's start offset) and its own prior
    /// `high_watermark`. Every follower's fetch state starts unknown. Returns the state and
    /// the actions of a first HW computation (the HW jumps to the LEO if the ISR is only this
    /// broker).
    pub fn become_leader(
        local: BrokerId,
        partition: LeaderAndIsr,
        log_end_offset: Offset,
        high_watermark: Offset,
        now_ms: u64,
        config: LeaderConfig,
    ) -> Result<(LeaderState, Vec<Action>), ReplicationError> {
        if !partition.isr.contains(&local) {
            return Err(ReplicationError::LeaderNotInIsr { leader: local });
        }
        if let Some(&broker) = partition
            .isr
            .iter()
            .find(|b| !partition.replicas.contains(b))
        {
            return Err(ReplicationError::NotAReplica { broker });
        }
        let followers = partition
            .replicas
            .iter()
            .filter(|&&b| b != local)
            .map(|&b| {
                let in_isr = partition.isr.contains(&b);
                let state = FollowerState {
                    log_end_offset: None,
                    last_fetch_ms: None,
                    last_fetch_leader_log_end_offset: None,
                    last_caught_up_ms: if in_isr { now_ms } else { 0 },
                };
                (b, state)
            })
            .collect();
        let mut state = LeaderState {
            local,
            replicas: partition.replicas,
            isr: partition.isr,
            pending: None,
            leader_epoch: partition.leader_epoch,
            leader_epoch_start_offset: log_end_offset,
            partition_epoch: partition.partition_epoch,
            log_end_offset,
            high_watermark: high_watermark.min(log_end_offset),
            followers,
            config,
        };
        let actions = state.maybe_increment_high_watermark();
        Ok((state, actions))
    }

    /// The leader appended; its log now ends at `log_end_offset`. A smaller value than the
    /// current one is ignored (a leader's log only grows within its epoch).
    pub fn on_append(&mut self, log_end_offset: Offset) -> Vec<Action> {
        self.log_end_offset = self.log_end_offset.max(log_end_offset);
        self.maybe_increment_high_watermark()
    }

    /// `follower` fetched from `fetch_offset` (its log end offset) at `now_ms`: updates its
    /// state, proposes adding it to the ISR when it qualifies and nothing is in flight, and
    /// advances the HW. The shell serves the fetch after this (with the new HW).
    pub fn on_follower_fetch(
        &mut self,
        follower: BrokerId,
        fetch_offset: Offset,
        now_ms: u64,
    ) -> Result<Vec<Action>, ReplicationError> {
        let leader_leo = self.log_end_offset;
        if fetch_offset > leader_leo {
            return Err(ReplicationError::FetchOffsetOutOfRange {
                fetch_offset,
                log_end_offset: leader_leo,
            });
        }
        let state = self
            .followers
            .get_mut(&follower)
            .ok_or(ReplicationError::NotAReplica { broker: follower })?;
        // Kafka's Replica.updateFetchState: caught up if at the leader's LEO now, or at the
        // leader's LEO of the previous fetch (then it was caught up at that time).
        if fetch_offset >= leader_leo {
            state.last_caught_up_ms = state.last_caught_up_ms.max(now_ms);
        } else if let (Some(prev_leo), Some(prev_ms)) =
            (state.last_fetch_leader_log_end_offset, state.last_fetch_ms)
        {
            if fetch_offset >= prev_leo {
                state.last_caught_up_ms = state.last_caught_up_ms.max(prev_ms);
            }
        }
        state.log_end_offset = Some(fetch_offset);
        state.last_fetch_ms = Some(now_ms);
        state.last_fetch_leader_log_end_offset = Some(leader_leo);

        let mut actions = self.maybe_expand_isr(follower, fetch_offset);
        actions.extend(self.maybe_increment_high_watermark());
        Ok(actions)
    }

    /// Periodic check at `now_ms` (Kafka's `isr-expiration` task): proposes removing every ISR
    /// follower that is behind the leader's LEO and has not caught up for more than
    /// `replica.lag.time.max.ms`, unless a change is in flight.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Action> {
        if self.pending.is_some() {
            return Vec::new();
        }
        let removing: Vec<BrokerId> = self
            .isr
            .iter()
            .copied()
            .filter(|&b| b != self.local)
            .filter(|b| {
                let s = &self.followers[b];
                s.log_end_offset != Some(self.log_end_offset)
                    && now_ms.saturating_sub(s.last_caught_up_ms)
                        > self.config.replica_lag_time_max_ms
            })
            .collect();
        if removing.is_empty() {
            return Vec::new();
        }
        let proposed: Vec<BrokerId> = self
            .isr
            .iter()
            .copied()
            .filter(|b| !removing.contains(b))
            .collect();
        let action = self.alter_isr(&proposed);
        self.pending = Some(PendingIsrChange::Shrink { removing, proposed });
        vec![action]
    }

    /// The controller committed `isr` at `partition_epoch` for `leader_epoch` (an AlterPartition
    /// answer, or a registration change that kept this leader). Clears any pending change and
    /// recomputes the HW. Ignored when for another leader epoch, when not newer than the
    /// partition epoch already known, or when `isr` drops this leader or names a non-replica.
    pub fn on_isr_committed(
        &mut self,
        leader_epoch: LeaderEpoch,
        isr: Vec<BrokerId>,
        partition_epoch: PartitionEpoch,
    ) -> Vec<Action> {
        if leader_epoch != self.leader_epoch
            || partition_epoch <= self.partition_epoch
            || !isr.contains(&self.local)
            || isr.iter().any(|b| !self.replicas.contains(b))
        {
            return Vec::new();
        }
        self.isr = isr;
        self.partition_epoch = partition_epoch;
        self.pending = None;
        self.maybe_increment_high_watermark()
    }

    /// The controller refused the change proposed at `partition_epoch` and says it was not
    /// applied (Kafka's INELIGIBLE_REPLICA, OPERATION_NOT_ATTEMPTED): the committed ISR stands,
    /// and the next event may propose again. Ignored unless a change based on `partition_epoch`
    /// is pending. For a refusal because this leader's epochs are stale (FENCED_LEADER_EPOCH,
    /// INVALID_UPDATE_VERSION) do not call this: as in Kafka, the change stays pending until the
    /// newer registration arrives ([`LeaderState::on_isr_committed`] or a new leader state), as
    /// the controller may have applied an earlier attempt.
    pub fn on_isr_rejected(&mut self, partition_epoch: PartitionEpoch) -> Vec<Action> {
        if self.pending.is_none() || partition_epoch != self.partition_epoch {
            return Vec::new();
        }
        self.pending = None;
        self.maybe_increment_high_watermark()
    }

    /// Before appending a produce with `acks`: acks=all needs a committed ISR of at least
    /// `min.insync.replicas`.
    pub fn check_produce(&self, acks: Acks) -> Result<(), ReplicationError> {
        if acks == Acks::All && self.isr.len() < self.config.min_insync_replicas {
            return Err(ReplicationError::NotEnoughReplicas {
                isr_size: self.isr.len(),
                min_insync_replicas: self.config.min_insync_replicas,
            });
        }
        Ok(())
    }

    /// For an acks=all produce whose batch ends at `last_offset`: done once the HW is past it
    /// (and the maximal ISR still has `min.insync.replicas` members, as Kafka checks only then).
    pub fn check_ack(&self, last_offset: Offset) -> AckStatus {
        if self.high_watermark > last_offset {
            if self.maximal_isr().len() >= self.config.min_insync_replicas {
                AckStatus::Done
            } else {
                AckStatus::NotEnoughReplicasAfterAppend
            }
        } else {
            AckStatus::Pending
        }
    }

    /// New `min.insync.replicas` / `replica.lag.time.max.ms` (a config change within the leader
    /// epoch); applies from the next event on.
    pub fn set_config(&mut self, config: LeaderConfig) {
        self.config = config;
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    /// The leader's log end offset.
    pub fn log_end_offset(&self) -> Offset {
        self.log_end_offset
    }

    /// The committed ISR.
    pub fn isr(&self) -> &[BrokerId] {
        &self.isr
    }

    /// The ISR the HW is computed over: the committed one, plus a replica being added.
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut isr = self.isr.clone();
        if let Some(PendingIsrChange::Expand { adding, .. }) = &self.pending {
            isr.push(*adding);
        }
        isr
    }

    /// The ISR change in flight, if any.
    pub fn pending_isr_change(&self) -> Option<&PendingIsrChange> {
        self.pending.as_ref()
    }

    /// The replicas, in assignment order.
    pub fn replicas(&self) -> &[BrokerId] {
        &self.replicas
    }

    /// This leader's epoch.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    /// The offset this leader epoch started at (the LEO when this broker became leader).
    pub fn leader_epoch_start_offset(&self) -> Offset {
        self.leader_epoch_start_offset
    }

    /// The partition epoch of the last committed registration.
    pub fn partition_epoch(&self) -> PartitionEpoch {
        self.partition_epoch
    }

    /// What the leader knows of `follower`.
    pub fn follower(&self, follower: BrokerId) -> Option<&FollowerState> {
        self.followers.get(&follower)
    }

    fn maybe_expand_isr(&mut self, follower: BrokerId, follower_leo: Offset) -> Vec<Action> {
        if self.pending.is_some()
            || self.isr.contains(&follower)
            || follower_leo < self.high_watermark
            || follower_leo < self.leader_epoch_start_offset
        {
            return Vec::new();
        }
        let mut proposed = self.isr.clone();
        proposed.push(follower);
        let action = self.alter_isr(&proposed);
        self.pending = Some(PendingIsrChange::Expand {
            adding: follower,
            proposed,
        });
        vec![action]
    }

    fn maybe_increment_high_watermark(&mut self) -> Vec<Action> {
        // KIP-966 (Kafka 4.1's default): with fewer in-sync replicas than min.insync.replicas the
        // high watermark stays, so nothing acks=1 wrote meanwhile becomes visible on too few
        // replicas. A partition with one replica is exempt (nothing could ever advance it).
        let maximal = self.maximal_isr();
        if self.replicas.len() > 1 && maximal.len() < self.config.min_insync_replicas {
            return Vec::new();
        }
        let mut new_hw = self.log_end_offset;
        for b in maximal {
            if b == self.local {
                continue;
            }
            match self.followers[&b].log_end_offset {
                Some(leo) => new_hw = new_hw.min(leo),
                None => return Vec::new(),
            }
        }
        if new_hw > self.high_watermark {
            self.high_watermark = new_hw;
            vec![Action::HighWatermark(new_hw)]
        } else {
            Vec::new()
        }
    }

    fn alter_isr(&self, proposed: &[BrokerId]) -> Action {
        Action::AlterIsr {
            new_isr: proposed.to_vec(),
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B1: BrokerId = BrokerId(1);
    const B2: BrokerId = BrokerId(2);
    const B3: BrokerId = BrokerId(3);
    const LAG_MS: u64 = 30_000;

    fn config(min_isr: usize) -> LeaderConfig {
        LeaderConfig {
            replica_lag_time_max_ms: LAG_MS,
            min_insync_replicas: min_isr,
        }
    }

    /// B1 leads epoch 5 over replicas [1, 2, 3] with the given ISR, LEO and prior HW at t=0.
    fn leader(isr: &[BrokerId], leo: i64, hw: i64) -> LeaderState {
        let partition = LeaderAndIsr {
            leader_epoch: LeaderEpoch(5),
            partition_epoch: PartitionEpoch(10),
            replicas: vec![B1, B2, B3],
            isr: isr.to_vec(),
        };
        let (state, _) =
            LeaderState::become_leader(B1, partition, Offset(leo), Offset(hw), 0, config(2))
                .unwrap();
        state
    }

    fn fetch(s: &mut LeaderState, b: BrokerId, offset: i64, now_ms: u64) -> Vec<Action> {
        s.on_follower_fetch(b, Offset(offset), now_ms).unwrap()
    }

    fn alter(isr: &[BrokerId], partition_epoch: i32) -> Action {
        Action::AlterIsr {
            new_isr: isr.to_vec(),
            leader_epoch: LeaderEpoch(5),
            partition_epoch: PartitionEpoch(partition_epoch),
        }
    }

    #[test]
    fn sole_isr_member_advances_hw_on_append_only_when_that_meets_min_insync() {
        let mut s = leader(&[B1], 0, 0);
        s.set_config(config(1));
        assert_eq!(
            s.on_append(Offset(3)),
            vec![Action::HighWatermark(Offset(3))]
        );
        assert_eq!(s.high_watermark(), Offset(3));
        // KIP-966: below min.insync.replicas the HW stays (acks=1 records stay invisible).
        s.set_config(config(2));
        assert!(s.on_append(Offset(5)).is_empty());
        assert_eq!(s.high_watermark(), Offset(3));
        // A single-replica partition is exempt.
        let partition = LeaderAndIsr {
            leader_epoch: LeaderEpoch(1),
            partition_epoch: PartitionEpoch(0),
            replicas: vec![B1],
            isr: vec![B1],
        };
        let (mut one, _) =
            LeaderState::become_leader(B1, partition, Offset(0), Offset(0), 0, config(2)).unwrap();
        assert_eq!(
            one.on_append(Offset(2)),
            vec![Action::HighWatermark(Offset(2))]
        );
    }

    #[test]
    fn becoming_sole_isr_leader_jumps_hw_to_leo() {
        let partition = LeaderAndIsr {
            leader_epoch: LeaderEpoch(1),
            partition_epoch: PartitionEpoch(1),
            replicas: vec![B1],
            isr: vec![B1],
        };
        let (s, actions) =
            LeaderState::become_leader(B1, partition, Offset(7), Offset(4), 0, config(1)).unwrap();
        assert_eq!(actions, vec![Action::HighWatermark(Offset(7))]);
        assert_eq!(s.high_watermark(), Offset(7));
    }

    #[test]
    fn hw_is_min_leo_over_isr_and_waits_for_every_member() {
        let mut s = leader(&[B1, B2, B3], 0, 0);
        s.on_append(Offset(10));
        assert_eq!(fetch(&mut s, B2, 10, 1), vec![]); // B3 unknown yet: HW holds
        assert_eq!(
            fetch(&mut s, B3, 6, 2),
            vec![Action::HighWatermark(Offset(6))]
        );
        assert_eq!(
            fetch(&mut s, B3, 10, 3),
            vec![Action::HighWatermark(Offset(10))]
        );
    }

    #[test]
    fn new_leader_keeps_its_lagging_hw_and_never_moves_it_back() {
        // The previous leader's HW was 20; ours is 12. Followers' state is unknown.
        let mut s = leader(&[B1, B2], 20, 12);
        assert_eq!(s.high_watermark(), Offset(12));
        // B2 truncated to 8 under an older leader (an unacknowledged tail): HW stays at 12.
        assert_eq!(fetch(&mut s, B2, 8, 1), vec![]);
        assert_eq!(s.high_watermark(), Offset(12));
        assert_eq!(
            fetch(&mut s, B2, 20, 2),
            vec![Action::HighWatermark(Offset(20))]
        );
    }

    #[test]
    fn out_of_isr_replica_is_added_once_caught_up_to_hw_and_epoch_start() {
        let mut s = leader(&[B1, B2], 10, 10);
        // Below the HW (and the leader epoch start offset, both 10): not eligible.
        assert_eq!(fetch(&mut s, B3, 9, 1), vec![]);
        assert_eq!(fetch(&mut s, B3, 10, 2), vec![alter(&[B1, B2, B3], 10)]);
        assert!(matches!(
            s.pending_isr_change(),
            Some(PendingIsrChange::Expand { adding: B3, .. })
        ));
    }

    #[test]
    fn replica_below_leader_epoch_start_offset_is_not_added_even_at_hw() {
        // Prior HW 4 lags the epoch start offset 10.
        let mut s = leader(&[B1, B2], 10, 4);
        assert_eq!(fetch(&mut s, B3, 6, 1), vec![]);
        assert!(s.pending_isr_change().is_none());
    }

    #[test]
    fn hw_uses_maximal_isr_while_expansion_pending() {
        let mut s = leader(&[B1, B2], 0, 0);
        s.on_append(Offset(10));
        fetch(&mut s, B2, 10, 1);
        assert_eq!(s.high_watermark(), Offset(10));
        s.on_append(Offset(20));
        // B3 joins at 10 (>= HW): expansion proposed; the HW now waits for B3 too.
        assert_eq!(fetch(&mut s, B3, 10, 2), vec![alter(&[B1, B2, B3], 10)]);
        assert_eq!(fetch(&mut s, B2, 20, 3), vec![]);
        assert_eq!(s.high_watermark(), Offset(10));
        assert_eq!(s.maximal_isr(), vec![B1, B2, B3]);
        assert_eq!(
            fetch(&mut s, B3, 15, 4),
            vec![Action::HighWatermark(Offset(15))]
        );
    }

    #[test]
    fn hw_uses_committed_isr_while_shrink_pending() {
        let mut s = leader(&[B1, B2, B3], 0, 0);
        s.on_append(Offset(10));
        fetch(&mut s, B2, 10, 1);
        fetch(&mut s, B3, 4, 1);
        assert_eq!(s.high_watermark(), Offset(4));
        assert_eq!(s.on_tick(LAG_MS + 1), vec![alter(&[B1, B2], 10)]);
        // Until the controller commits, B3 still holds the HW.
        assert_eq!(fetch(&mut s, B2, 10, LAG_MS + 2), vec![]);
        assert_eq!(s.high_watermark(), Offset(4));
        assert_eq!(
            s.on_isr_committed(LeaderEpoch(5), vec![B1, B2], PartitionEpoch(11)),
            vec![Action::HighWatermark(Offset(10))]
        );
        assert_eq!(s.isr(), &[B1, B2]);
        assert!(s.pending_isr_change().is_none());
    }

    #[test]
    fn no_second_isr_change_while_one_is_pending() {
        let mut s = leader(&[B1, B2], 0, 0);
        fetch(&mut s, B3, 0, 1); // expansion of B3 proposed
        assert!(s.pending_isr_change().is_some());
        // B2 falls behind for longer than the lag time: no shrink while the expansion is out.
        s.on_append(Offset(5));
        assert_eq!(s.on_tick(LAG_MS + 10), vec![]);
    }

    #[test]
    fn isr_shrinks_after_lag_time_without_catch_up() {
        let mut s = leader(&[B1, B2, B3], 0, 0);
        s.on_append(Offset(5));
        fetch(&mut s, B2, 5, 100);
        fetch(&mut s, B3, 5, 100);
        s.on_append(Offset(8));
        // B3 keeps fetching but never reaches the LEO; B2 catches up.
        fetch(&mut s, B3, 6, 200);
        fetch(&mut s, B2, 8, 200);
        assert_eq!(s.on_tick(100 + LAG_MS), vec![]);
        assert_eq!(s.on_tick(100 + LAG_MS + 1), vec![alter(&[B1, B2], 10)]);
    }

    #[test]
    fn follower_at_previous_fetch_leo_counts_as_caught_up_at_that_fetch() {
        let mut s = leader(&[B1, B2], 0, 0);
        s.on_append(Offset(5));
        fetch(&mut s, B2, 2, 1_000); // behind; leader LEO 5 recorded at t=1000
        s.on_append(Offset(9));
        fetch(&mut s, B2, 5, 2_000); // reached the LEO of the previous fetch
        assert_eq!(s.follower(B2).unwrap().last_caught_up_ms, 1_000);
        // Not caught up since t=1000: out after the lag time from then, not from t=0.
        assert_eq!(s.on_tick(1_000 + LAG_MS), vec![]);
        assert_eq!(s.on_tick(1_000 + LAG_MS + 1), vec![alter(&[B1], 10)]);
    }

    #[test]
    fn follower_at_leader_leo_is_never_shrunk() {
        let mut s = leader(&[B1, B2], 3, 3);
        fetch(&mut s, B2, 3, 1);
        assert_eq!(s.on_tick(10 * LAG_MS), vec![]);
    }

    #[test]
    fn silent_isr_follower_is_shrunk_after_lag_time_from_election() {
        let mut s = leader(&[B1, B2, B3], 0, 0);
        assert_eq!(s.on_tick(LAG_MS), vec![]);
        assert_eq!(s.on_tick(LAG_MS + 1), vec![alter(&[B1], 10)]);
    }

    #[test]
    fn rejected_change_clears_pending_and_allows_a_new_proposal() {
        let mut s = leader(&[B1, B2], 0, 0);
        assert_eq!(fetch(&mut s, B3, 0, 1), vec![alter(&[B1, B2, B3], 10)]);
        // A rejection for another partition epoch is stale.
        assert_eq!(s.on_isr_rejected(PartitionEpoch(9)), vec![]);
        assert!(s.pending_isr_change().is_some());
        s.on_isr_rejected(PartitionEpoch(10));
        assert!(s.pending_isr_change().is_none());
        assert_eq!(s.maximal_isr(), vec![B1, B2]);
        assert_eq!(fetch(&mut s, B3, 0, 2), vec![alter(&[B1, B2, B3], 10)]);
    }

    #[test]
    fn stale_isr_commit_is_ignored() {
        let mut s = leader(&[B1, B2], 0, 0);
        assert_eq!(
            s.on_isr_committed(LeaderEpoch(4), vec![B1], PartitionEpoch(11)),
            vec![]
        );
        assert_eq!(
            s.on_isr_committed(LeaderEpoch(5), vec![B1], PartitionEpoch(10)),
            vec![]
        );
        assert_eq!(
            s.on_isr_committed(LeaderEpoch(5), vec![B2], PartitionEpoch(11)),
            vec![]
        );
        assert_eq!(s.isr(), &[B1, B2]);
    }

    #[test]
    fn fetch_from_non_replica_is_refused() {
        let mut s = leader(&[B1, B2], 0, 0);
        assert_eq!(
            s.on_follower_fetch(BrokerId(9), Offset(0), 1),
            Err(ReplicationError::NotAReplica {
                broker: BrokerId(9)
            })
        );
        assert_eq!(
            s.on_follower_fetch(B1, Offset(0), 1),
            Err(ReplicationError::NotAReplica { broker: B1 })
        );
    }

    #[test]
    fn fetch_beyond_leader_leo_is_refused() {
        let mut s = leader(&[B1, B2], 4, 4);
        assert_eq!(
            s.on_follower_fetch(B2, Offset(5), 1),
            Err(ReplicationError::FetchOffsetOutOfRange {
                fetch_offset: Offset(5),
                log_end_offset: Offset(4)
            })
        );
    }

    #[test]
    fn leader_outside_isr_cannot_become_leader() {
        let partition = LeaderAndIsr {
            leader_epoch: LeaderEpoch(1),
            partition_epoch: PartitionEpoch(1),
            replicas: vec![B1, B2],
            isr: vec![B2],
        };
        let err = LeaderState::become_leader(B1, partition, Offset(0), Offset(0), 0, config(1));
        assert_eq!(
            err.unwrap_err(),
            ReplicationError::LeaderNotInIsr { leader: B1 }
        );
    }

    #[test]
    fn acks_all_refused_when_isr_below_min_insync_replicas() {
        let s = leader(&[B1], 0, 0);
        assert_eq!(
            s.check_produce(Acks::All),
            Err(ReplicationError::NotEnoughReplicas {
                isr_size: 1,
                min_insync_replicas: 2
            })
        );
        assert_eq!(s.check_produce(Acks::One), Ok(()));
        assert_eq!(leader(&[B1, B2], 0, 0).check_produce(Acks::All), Ok(()));
    }

    #[test]
    fn ack_done_only_when_hw_passes_last_offset() {
        let mut s = leader(&[B1, B2], 0, 0);
        s.on_append(Offset(5)); // batch 0..=4
        assert_eq!(s.check_ack(Offset(4)), AckStatus::Pending);
        fetch(&mut s, B2, 4, 1);
        assert_eq!(s.check_ack(Offset(4)), AckStatus::Pending);
        fetch(&mut s, B2, 5, 2);
        assert_eq!(s.check_ack(Offset(4)), AckStatus::Done);
    }

    #[test]
    fn ack_stays_pending_when_isr_shrank_below_min_insync_replicas() {
        let mut s = leader(&[B1, B2], 0, 0);
        s.on_append(Offset(5));
        s.on_tick(LAG_MS + 1); // B2 never fetched: shrink to [B1]
        s.on_isr_committed(LeaderEpoch(5), vec![B1], PartitionEpoch(11));
        // KIP-966: the HW does not pass the batch on one replica; the produce times out.
        assert_eq!(s.high_watermark(), Offset(0));
        assert_eq!(s.check_ack(Offset(4)), AckStatus::Pending);
    }

    #[test]
    fn ack_fails_after_append_when_the_hw_passed_but_the_isr_shrank_since() {
        let mut s = leader(&[B1, B2, B3], 0, 0);
        s.on_append(Offset(5));
        fetch(&mut s, B2, 5, 1);
        fetch(&mut s, B3, 5, 1);
        assert_eq!(s.high_watermark(), Offset(5));
        s.set_config(config(3));
        s.on_tick(LAG_MS + 2); // all caught up: nothing to shrink
        s.on_isr_committed(LeaderEpoch(5), vec![B1, B2], PartitionEpoch(11));
        assert_eq!(
            s.check_ack(Offset(4)),
            AckStatus::NotEnoughReplicasAfterAppend
        );
    }

    #[test]
    fn committed_expansion_makes_the_new_member_part_of_the_isr() {
        let mut s = leader(&[B1, B2], 4, 4);
        fetch(&mut s, B2, 4, 1);
        assert_eq!(fetch(&mut s, B3, 4, 1), vec![alter(&[B1, B2, B3], 10)]);
        assert_eq!(
            s.on_isr_committed(LeaderEpoch(5), vec![B1, B2, B3], PartitionEpoch(11)),
            vec![]
        );
        assert_eq!(s.isr(), &[B1, B2, B3]);
        assert_eq!(s.partition_epoch(), PartitionEpoch(11));
        assert!(s.pending_isr_change().is_none());
        s.on_append(Offset(9));
        fetch(&mut s, B2, 9, 2);
        assert_eq!(s.high_watermark(), Offset(4)); // B3 holds it now
        assert_eq!(
            fetch(&mut s, B3, 9, 3),
            vec![Action::HighWatermark(Offset(9))]
        );
    }

    #[test]
    fn follower_out_of_isr_at_election_is_never_caught_up_until_it_fetches() {
        let s = leader(&[B1, B2], 0, 0);
        assert_eq!(s.follower(B3).unwrap().last_caught_up_ms, 0);
        assert_eq!(s.follower(B2).unwrap().log_end_offset, None);
        assert_eq!(s.follower(B1), None);
    }

    #[test]
    fn append_below_log_end_offset_is_ignored() {
        let mut s = leader(&[B1], 5, 5);
        assert_eq!(s.on_append(Offset(3)), vec![]);
        assert_eq!(s.log_end_offset(), Offset(5));
        assert_eq!(s.high_watermark(), Offset(5));
    }

    #[test]
    fn shrink_removes_only_the_lagging_followers_and_never_the_leader() {
        let mut s = leader(&[B1, B2, B3], 0, 0);
        s.on_append(Offset(5));
        fetch(&mut s, B2, 5, LAG_MS);
        assert_eq!(s.on_tick(LAG_MS + 1), vec![alter(&[B1, B2], 10)]);
        assert!(matches!(
            s.pending_isr_change(),
            Some(PendingIsrChange::Shrink { removing, .. }) if removing == &vec![B3]
        ));
    }

    #[test]
    fn acks_from_kafka_wire_values() {
        assert_eq!(Acks::from_kafka(-1), Some(Acks::All));
        assert_eq!(Acks::from_kafka(0), Some(Acks::Zero));
        assert_eq!(Acks::from_kafka(1), Some(Acks::One));
        assert_eq!(Acks::from_kafka(2), None);
    }
}
