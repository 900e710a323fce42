//! The transaction coordinator: its state machine ([`state`], a pure core), the records it
//! keeps in `__transaction_state` ([`records`]) and the shell that runs it ([`coordinator`]).

pub mod coordinator;
pub mod marker;
mod marker_channel;
pub mod records;
pub mod state;

pub use coordinator::{ensure_txn_topic, TxnConfig, TxnCoordinator, TXN_TOPIC};
