//! The transaction coordinator: its state machine ([`state`], a pure core), the records it
//! keeps in `__transaction_state` ([`records`]) and the shell that runs it ([`coordinator`]).

pub mod state;
