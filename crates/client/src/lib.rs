//! # oxka-client: a small async Kafka client on the Kafka protocol
//!
//! Used by the `oxka` CLI (and meant for replication and the load generator). It speaks only
//! the public Kafka protocol, so everything it does works against Apache Kafka too.
//!
//! - [`Connection`]: one TCP connection to one broker. At connect it sends ApiVersions and keeps
//!   the broker's ranges; every request is then sent at the highest version both sides support
//!   (the broker's range ∩ the codec's range ∩ [`versions::CLIENT_MAX_VERSIONS`]). Requests carry
//!   increasing correlation ids and a response is checked against the id it answers. One request
//!   is in flight per connection (the caller holds `&mut`), which keeps responses in order
//!   without a demultiplexer.
//! - [`Client`]: a cluster seen from a bootstrap list. Connects to the first reachable bootstrap
//!   address, learns brokers and partition leaders from Metadata, opens one connection per
//!   broker on demand, routes partition requests to the leader and group requests to the group
//!   coordinator (FindCoordinator).
//! - [`records`]: producing and reading record batches v2 (the format `oxka-log` owns).
//!
//! Errors: one enum, [`ClientError`]; a Kafka error code from a broker is
//! [`ClientError::Kafka`], carrying Kafka's name for it (`UNKNOWN_TOPIC_OR_PARTITION`).

mod client;
mod connection;
mod error;
pub mod ops;
pub mod records;
pub mod versions;

pub use client::{Client, ClientConfig, CoordinatorType, RETRIES, RETRY_BACKOFF};
pub use connection::Connection;
pub use error::{error_name, ClientError, Result};
pub use kafka_protocol;
