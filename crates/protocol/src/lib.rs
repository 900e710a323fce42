//! Kafka wire protocol for Oxka: framing, the supported-version table, error codes and the
//! request/response codec (a guarded wrapper around the `kafka-protocol` crate). No I/O.

pub mod guard;
