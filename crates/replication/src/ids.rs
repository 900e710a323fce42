//! Newtypes for the numbers replication juggles, so that an offset can never be passed where a
//! leader epoch is expected.
//!
//! Invariants and conventions:
//! - [`Offset`] is a position in one partition's log. A *log end offset* (LEO) is the offset the
//!   next appended record gets; a *high watermark* (HW) is an exclusive bound too: every record
//!   with offset `< HW` is committed.
//! - [`LeaderEpoch`] is the generation of a partition's leadership (Kafka's `leaderEpoch`),
//!   bumped by the controller on every leader change. [`PartitionEpoch`] is bumped on every change
//!   of the partition's registration (leader or ISR), and is what AlterPartition is fenced on.
//! - `-1` is Kafka's "undefined" for all of them ([`Offset::UNDEFINED`],
//!   [`LeaderEpoch::UNDEFINED`], "no leader" is `None`, never `BrokerId(-1)`, in this crate).
//!
//! Time is not a type here: every event that needs it takes `now_ms: u64` (milliseconds on the
//! shell's clock, monotonic), so the cores never read a clock themselves.
//!
//! All types are `Copy`, plain data, and `Send + Sync`.

use std::fmt;

/// A broker's `node.id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerId(pub i32);

/// A record's position in a partition's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub i64);

/// The generation of a partition's leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaderEpoch(pub i32);

/// The version of a partition's registration at the controller (leader, ISR); AlterPartition
/// is accepted only when the leader sends the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionEpoch(pub i32);

impl Offset {
    /// Kafka's `UNDEFINED_EPOCH_OFFSET` (-1).
    pub const UNDEFINED: Offset = Offset(-1);

    /// This offset moved `n` records forward.
    pub fn plus(self, n: i64) -> Offset {
        Offset(self.0 + n)
    }
}

impl LeaderEpoch {
    /// Kafka's `UNDEFINED_EPOCH` (-1): "the leader knows no epoch at or below the one asked".
    pub const UNDEFINED: LeaderEpoch = LeaderEpoch(-1);

    /// The epoch after this one.
    pub fn next(self) -> LeaderEpoch {
        LeaderEpoch(self.0 + 1)
    }
}

impl PartitionEpoch {
    /// The epoch after this one.
    pub fn next(self) -> PartitionEpoch {
        PartitionEpoch(self.0 + 1)
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(BrokerId, Offset, LeaderEpoch, PartitionEpoch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_bare_number() {
        assert_eq!(BrokerId(3).to_string(), "3");
        assert_eq!(Offset::UNDEFINED.to_string(), "-1");
        assert_eq!(LeaderEpoch(7).next().to_string(), "8");
        assert_eq!(PartitionEpoch(0).next(), PartitionEpoch(1));
    }

    #[test]
    fn undefined_sorts_below_every_real_value() {
        assert!(Offset::UNDEFINED < Offset(0));
        assert!(LeaderEpoch::UNDEFINED < LeaderEpoch(0));
    }
}
