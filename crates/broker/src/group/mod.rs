//! The group coordinator: the classic rebalance protocol ([`state`], a pure core) and the
//! shell that runs it and keeps committed offsets.

pub mod state;
