//! The group coordinator: the classic rebalance protocol ([`state`], a pure core), the
//! records it keeps in `__consumer_offsets` ([`records`]) and the shell that runs it
//! ([`coordinator`]).

pub mod consumer;
pub mod consumer_records;
pub mod coordinator;
pub mod records;
pub mod state;

pub use coordinator::{ensure_offsets_topic, CoordinatorConfig, GroupCoordinator, OFFSETS_TOPIC};
