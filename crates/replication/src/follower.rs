//! The follower's truncation decision after a leader change or a restart (KIP-101, KIP-279):
//! before fetching from a leader, a replica finds the offset where its log stops agreeing with
//! the leader's and truncates to it.
//!
//! The exchange, driven by the shell:
//! 1. [`first_step`]: ask the leader OffsetsForLeaderEpoch for the newest epoch of the local
//!    [`LeaderEpochCache`] — or, if the cache is empty, truncate to the high watermark (pre-KIP-101
//!    behaviour, all that can be done without epochs).
//! 2. [`on_epoch_end_offset`] with the leader's answer: the largest epoch the leader has at or
//!    below the one asked, and where it ends in the leader's log.
//!    - Undefined end offset (the leader knows no such epoch): truncate to the high watermark.
//!    - The leader answered an epoch this replica also has: truncate to the smaller of the two
//!      end offsets; done.
//!    - The leader answered an older epoch this replica does not have: truncate to the end of
//!      the largest local epoch below it and ask again for that epoch (Kafka's loop; each round
//!      asks a strictly older epoch, so it ends).
//!
//! Invariants of every answer: the offset to truncate to is never above the local log end offset
//! (a leader whose epoch ends beyond it means "nothing to remove": [`TruncationStep::NoTruncation`]);
//! the shell must also truncate its epoch cache ([`LeaderEpochCache::truncate_from_end`]). Pure
//! functions over borrowed data.

use crate::epoch_cache::LeaderEpochCache;
use crate::ids::{LeaderEpoch, Offset};

/// What a replica does before its first fetch from a new leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncationStart {
    /// Send OffsetsForLeaderEpoch for this epoch (the newest in the local cache).
    AskLeader {
        /// The epoch to ask about.
        epoch: LeaderEpoch,
    },
    /// No local epochs to ask about: apply this step (truncation to the high watermark).
    Step(TruncationStep),
}

/// The leader's OffsetsForLeaderEpoch answer for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch `<=` the requested one in the leader's cache, or
    /// [`LeaderEpoch::UNDEFINED`].
    pub leader_epoch: LeaderEpoch,
    /// Where that epoch ends in the leader's log, or [`Offset::UNDEFINED`].
    pub end_offset: Offset,
}

/// One decision of the truncation exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncationStep {
    /// The log agrees with the leader's up to its end: remove nothing, fetch from `fetch_offset`
    /// (the local log end offset).
    NoTruncation {
        /// Where fetching starts.
        fetch_offset: Offset,
    },
    /// Truncate the log (and epoch cache) to `truncate_to`, then fetch from there.
    Truncate {
        /// The new log end offset; below the old one.
        truncate_to: Offset,
    },
    /// Truncate to `truncate_to` (possibly a no-op when it equals the log end offset) and ask the
    /// leader again, for `epoch`.
    TruncateAndAskAgain {
        /// The new log end offset; at or below the old one.
        truncate_to: Offset,
        /// The epoch to ask about next (older than the one just asked).
        epoch: LeaderEpoch,
    },
}

/// The first step for a replica with epoch cache `cache`, log end offset `log_end_offset` and
/// high watermark `high_watermark`.
pub fn first_step(
    cache: &LeaderEpochCache,
    log_end_offset: Offset,
    high_watermark: Offset,
) -> TruncationStart {
    match cache.latest_epoch() {
        Some(epoch) => TruncationStart::AskLeader { epoch },
        None => TruncationStart::Step(finish(high_watermark, log_end_offset)),
    }
}

/// The step after the leader's `answer` (see the module docs for the cases).
pub fn on_epoch_end_offset(
    cache: &LeaderEpochCache,
    log_end_offset: Offset,
    high_watermark: Offset,
    answer: EpochEndOffset,
) -> TruncationStep {
    if answer.end_offset == Offset::UNDEFINED {
        return finish(high_watermark, log_end_offset);
    }
    if answer.leader_epoch == LeaderEpoch::UNDEFINED {
        // A leader without epochs for its log still told us where its log ends.
        return finish(answer.end_offset, log_end_offset);
    }
    let (local_epoch, local_end) = cache.end_offset_for(answer.leader_epoch, log_end_offset);
    if local_end == Offset::UNDEFINED {
        // No local epoch at or below the leader's (or an empty cache): the leader's end offset
        // is the best bound there is.
        return finish(answer.end_offset, log_end_offset);
    }
    if local_epoch == answer.leader_epoch {
        // Both have the epoch (or, as Kafka's cache answers, this replica's log starts after
        // it): the logs agree up to the smaller end offset.
        return finish(answer.end_offset.min(local_end), log_end_offset);
    }
    // The leader's newest epoch at or below the one asked is one this replica never saw.
    // Everything after the end of our largest older epoch is suspect; ask about that epoch.
    TruncationStep::TruncateAndAskAgain {
        truncate_to: local_end.min(log_end_offset),
        epoch: local_epoch,
    }
}

fn finish(truncate_to: Offset, log_end_offset: Offset) -> TruncationStep {
    if truncate_to >= log_end_offset {
        TruncationStep::NoTruncation {
            fetch_offset: log_end_offset,
        }
    } else {
        TruncationStep::Truncate { truncate_to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::new();
        for &(e, o) in entries {
            c.assign(LeaderEpoch(e), Offset(o));
        }
        c
    }

    fn answer(epoch: i32, end: i64) -> EpochEndOffset {
        EpochEndOffset {
            leader_epoch: LeaderEpoch(epoch),
            end_offset: Offset(end),
        }
    }

    #[test]
    fn asks_for_the_latest_local_epoch() {
        let c = cache(&[(0, 0), (3, 10)]);
        assert_eq!(
            first_step(&c, Offset(12), Offset(5)),
            TruncationStart::AskLeader {
                epoch: LeaderEpoch(3)
            }
        );
    }

    #[test]
    fn empty_epoch_cache_truncates_to_high_watermark() {
        let c = LeaderEpochCache::new();
        assert_eq!(
            first_step(&c, Offset(12), Offset(5)),
            TruncationStart::Step(TruncationStep::Truncate {
                truncate_to: Offset(5)
            })
        );
    }

    #[test]
    fn truncates_to_leader_epoch_end_offset_when_diverged() {
        // We wrote 10..15 in epoch 2 as a leader that lost leadership at 12.
        let c = cache(&[(0, 0), (2, 10)]);
        let step = on_epoch_end_offset(&c, Offset(15), Offset(8), answer(2, 12));
        assert_eq!(
            step,
            TruncationStep::Truncate {
                truncate_to: Offset(12)
            }
        );
    }

    #[test]
    fn no_truncation_when_leader_epoch_ends_beyond_local_log_end_offset() {
        let c = cache(&[(0, 0), (2, 10)]);
        let step = on_epoch_end_offset(&c, Offset(15), Offset(8), answer(2, 40));
        assert_eq!(
            step,
            TruncationStep::NoTruncation {
                fetch_offset: Offset(15)
            }
        );
    }

    #[test]
    fn local_epoch_ending_first_bounds_the_truncation() {
        // We have epochs 1 and 3; the leader (asked for 3) says its epoch 1 ends at 30, but ours
        // ends at 20 where our epoch 3 starts. Asking for 3 means the leader has no 3, so it
        // answered 1: our end of epoch 1 is 20, and we both have epoch 1.
        let c = cache(&[(1, 0), (3, 20)]);
        let step = on_epoch_end_offset(&c, Offset(25), Offset(5), answer(1, 30));
        assert_eq!(
            step,
            TruncationStep::Truncate {
                truncate_to: Offset(20)
            }
        );
    }

    #[test]
    fn walks_back_when_leader_answers_an_epoch_we_never_saw() {
        // Local: epoch 0 from 0, epoch 2 from 10 (we led epoch 2 without replicating).
        // Leader: epoch 0 from 0, epoch 1 from 8, epoch 3 from 12. Asked for 2, it answers
        // (1, 12). We have no epoch 1: truncate to the end of our epoch 0 (10), ask for 0.
        let mut c = cache(&[(0, 0), (2, 10)]);
        let step = on_epoch_end_offset(&c, Offset(15), Offset(5), answer(1, 12));
        assert_eq!(
            step,
            TruncationStep::TruncateAndAskAgain {
                truncate_to: Offset(10),
                epoch: LeaderEpoch(0)
            }
        );
        c.truncate_from_end(Offset(10));
        // Asked for 0, the leader answers (0, 8): epoch 1 began at 8.
        let step = on_epoch_end_offset(&c, Offset(10), Offset(5), answer(0, 8));
        assert_eq!(
            step,
            TruncationStep::Truncate {
                truncate_to: Offset(8)
            }
        );
    }

    #[test]
    fn undefined_answer_truncates_to_high_watermark() {
        let c = cache(&[(4, 0)]);
        let undefined = EpochEndOffset {
            leader_epoch: LeaderEpoch::UNDEFINED,
            end_offset: Offset::UNDEFINED,
        };
        assert_eq!(
            on_epoch_end_offset(&c, Offset(9), Offset(6), undefined),
            TruncationStep::Truncate {
                truncate_to: Offset(6)
            }
        );
        // A high watermark at the log end offset removes nothing.
        assert_eq!(
            on_epoch_end_offset(&c, Offset(6), Offset(6), undefined),
            TruncationStep::NoTruncation {
                fetch_offset: Offset(6)
            }
        );
    }

    #[test]
    fn undefined_epoch_with_end_offset_truncates_to_that_offset() {
        let c = cache(&[(4, 0)]);
        let a = EpochEndOffset {
            leader_epoch: LeaderEpoch::UNDEFINED,
            end_offset: Offset(3),
        };
        assert_eq!(
            on_epoch_end_offset(&c, Offset(9), Offset(1), a),
            TruncationStep::Truncate {
                truncate_to: Offset(3)
            }
        );
    }

    #[test]
    fn leader_epoch_older_than_every_local_epoch_truncates_to_our_first_epoch_start() {
        // Our log (after retention) starts in epoch 5 at 40; asked for 5, the leader answers
        // epoch 2 ending at 50: it never had epoch 5, so everything we wrote in 5 goes.
        let c = cache(&[(5, 40)]);
        assert_eq!(
            on_epoch_end_offset(&c, Offset(60), Offset(38), answer(2, 50)),
            TruncationStep::Truncate {
                truncate_to: Offset(40)
            }
        );
    }
}
