//! The controller's leader choices for a partition (Kafka's `PartitionLeaderElectionAlgorithms`
//! and the KRaft controller's controlled-shutdown handling).
//!
//! Invariants:
//! - A clean election only ever picks a live ISR member, the first in *assignment* order (not
//!   ISR order), so the choice is deterministic and favours the preferred replica.
//! - An unclean election (`unclean.leader.election.enable`) picks a live replica only when no
//!   live ISR member exists, and the caller must then set the ISR to just that leader.
//! - Controlled shutdown never leaves an ISR empty: the shutting-down broker is removed from an
//!   ISR only if another member remains (so the partition still remembers who has its data).
//!
//! Pure functions; "no leader" is `None` (Kafka's leader -1).

use crate::ids::{BrokerId, LeaderEpoch, PartitionEpoch};

/// The controller's registration of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRegistration {
    /// All replicas, in assignment order (the first is the preferred leader).
    pub replicas: Vec<BrokerId>,
    /// The in-sync replicas.
    pub isr: Vec<BrokerId>,
    /// The leader; `None` when offline.
    pub leader: Option<BrokerId>,
    /// Bumped on every leader change.
    pub leader_epoch: LeaderEpoch,
    /// Bumped on every change of this registration.
    pub partition_epoch: PartitionEpoch,
}

/// The first replica in assignment order that is in `isr` and live; when there is none and
/// `unclean` is set, the first live replica; otherwise `None`.
pub fn elect_leader(
    replicas: &[BrokerId],
    isr: &[BrokerId],
    is_live: impl Fn(BrokerId) -> bool,
    unclean: bool,
) -> Option<BrokerId> {
    let clean = replicas
        .iter()
        .copied()
        .find(|&b| isr.contains(&b) && is_live(b));
    match clean {
        Some(leader) => Some(leader),
        None if unclean => replicas.iter().copied().find(|&b| is_live(b)),
        None => None,
    }
}

/// The preferred replica (the first assigned) if it is live and in the ISR; `None` otherwise
/// (Kafka then leaves leadership where it is, answering PREFERRED_LEADER_NOT_AVAILABLE).
pub fn preferred_leader_election(
    replicas: &[BrokerId],
    isr: &[BrokerId],
    is_live: impl Fn(BrokerId) -> bool,
) -> Option<BrokerId> {
    let preferred = *replicas.first()?;
    (isr.contains(&preferred) && is_live(preferred)).then_some(preferred)
}

/// The registrations that change when `shutting_down` stops in a controlled way: for each
/// partition it is a replica of, it leaves the ISR if the ISR stays non-empty, and where it
/// leads, a new leader is elected from the remaining live ISR (`None` if there is none). The
/// leader epoch is bumped on a leader change, the partition epoch on any change. Partitions that
/// do not change are left out; keys are passed through.
pub fn controlled_shutdown<'a, K: Clone + 'a>(
    partitions: impl IntoIterator<Item = (K, &'a PartitionRegistration)>,
    shutting_down: BrokerId,
    is_live: impl Fn(BrokerId) -> bool,
) -> Vec<(K, PartitionRegistration)> {
    let mut changes = Vec::new();
    for (key, current) in partitions {
        if !current.replicas.contains(&shutting_down) {
            continue;
        }
        let mut next = current.clone();
        let remaining: Vec<BrokerId> = current
            .isr
            .iter()
            .copied()
            .filter(|&b| b != shutting_down)
            .collect();
        if !remaining.is_empty() {
            next.isr = remaining;
        }
        if current.leader == Some(shutting_down) {
            next.leader = elect_leader(
                &current.replicas,
                &next.isr,
                |b| b != shutting_down && is_live(b),
                false,
            );
            next.leader_epoch = current.leader_epoch.next();
        }
        if next != *current {
            next.partition_epoch = current.partition_epoch.next();
            changes.push((key, next));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const B1: BrokerId = BrokerId(1);
    const B2: BrokerId = BrokerId(2);
    const B3: BrokerId = BrokerId(3);

    fn live(set: &'static [BrokerId]) -> impl Fn(BrokerId) -> bool {
        move |b| set.contains(&b)
    }

    #[test]
    fn elects_first_live_isr_member_in_assignment_order() {
        // ISR order is [3, 2], but assignment order puts 2 first.
        assert_eq!(
            elect_leader(&[B1, B2, B3], &[B3, B2], live(&[B1, B2, B3]), false),
            Some(B2)
        );
        assert_eq!(
            elect_leader(&[B1, B2, B3], &[B3, B2], live(&[B1, B3]), false),
            Some(B3)
        );
    }

    #[test]
    fn no_clean_leader_when_no_isr_member_is_live() {
        assert_eq!(
            elect_leader(&[B1, B2, B3], &[B1], live(&[B2, B3]), false),
            None
        );
    }

    #[test]
    fn unclean_election_picks_a_live_replica_only_without_live_isr() {
        assert_eq!(
            elect_leader(&[B1, B2, B3], &[B1], live(&[B3, B2]), true),
            Some(B2)
        );
        assert_eq!(
            elect_leader(&[B1, B2, B3], &[B3], live(&[B2, B3]), true),
            Some(B3)
        );
        assert_eq!(elect_leader(&[B1, B2], &[B1], live(&[]), true), None);
    }

    #[test]
    fn preferred_leader_only_when_live_and_in_isr() {
        assert_eq!(
            preferred_leader_election(&[B1, B2], &[B2, B1], live(&[B1, B2])),
            Some(B1)
        );
        assert_eq!(
            preferred_leader_election(&[B1, B2], &[B2], live(&[B1, B2])),
            None
        );
        assert_eq!(
            preferred_leader_election(&[B1, B2], &[B1, B2], live(&[B2])),
            None
        );
        assert_eq!(preferred_leader_election(&[], &[], live(&[B2])), None);
    }

    fn registration(leader: Option<BrokerId>, isr: &[BrokerId]) -> PartitionRegistration {
        PartitionRegistration {
            replicas: vec![B1, B2, B3],
            isr: isr.to_vec(),
            leader,
            leader_epoch: LeaderEpoch(4),
            partition_epoch: PartitionEpoch(9),
        }
    }

    #[test]
    fn controlled_shutdown_moves_leadership_and_shrinks_isr() {
        let p = registration(Some(B1), &[B1, B2, B3]);
        let changes = controlled_shutdown([("p0", &p)], B1, live(&[B1, B2, B3]));
        assert_eq!(
            changes,
            vec![(
                "p0",
                PartitionRegistration {
                    leader: Some(B2),
                    isr: vec![B2, B3],
                    leader_epoch: LeaderEpoch(5),
                    partition_epoch: PartitionEpoch(10),
                    ..p.clone()
                }
            )]
        );
    }

    #[test]
    fn controlled_shutdown_of_a_follower_only_shrinks_isr() {
        let p = registration(Some(B2), &[B1, B2]);
        let changes = controlled_shutdown([(0, &p)], B1, live(&[B1, B2, B3]));
        assert_eq!(changes.len(), 1);
        let (_, next) = &changes[0];
        assert_eq!(next.leader, Some(B2));
        assert_eq!(next.leader_epoch, LeaderEpoch(4));
        assert_eq!(next.isr, vec![B2]);
        assert_eq!(next.partition_epoch, PartitionEpoch(10));
    }

    #[test]
    fn controlled_shutdown_keeps_the_last_isr_member() {
        // Sole ISR member leads: the partition goes offline but its ISR still names B1.
        let p = registration(Some(B1), &[B1]);
        let changes = controlled_shutdown([(0, &p)], B1, live(&[B1, B2, B3]));
        let (_, next) = &changes[0];
        assert_eq!(next.leader, None);
        assert_eq!(next.isr, vec![B1]);
        assert_eq!(next.leader_epoch, LeaderEpoch(5));
    }

    #[test]
    fn controlled_shutdown_skips_partitions_it_does_not_change() {
        let other = PartitionRegistration {
            replicas: vec![B2, B3],
            ..registration(Some(B2), &[B2, B3])
        };
        let sole_follower_isr = registration(Some(B2), &[B2]);
        let changes = controlled_shutdown(
            [(0, &other), (1, &sole_follower_isr)],
            B1,
            live(&[B1, B2, B3]),
        );
        assert!(changes.is_empty());
    }
}
