//! Kafka wire protocol for Oxka: framing, the supported-version table, error codes and the
//! request/response codec (a guarded wrapper around the `kafka-protocol` crate). No I/O.

pub mod codec;
pub mod frame;
pub mod guard;
pub mod versions;

pub use kafka_protocol;
