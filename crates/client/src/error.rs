//! The client's one error type, and Kafka's names for error codes.

use kafka_protocol::error::ResponseError;

/// Everything that can go wrong talking to a Kafka cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A TCP connect, read or write failed.
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// No bootstrap address accepted a connection.
    #[error("no broker reachable (tried {tried}): {last}")]
    NoBrokerReachable { tried: String, last: String },
    /// An operation did not finish in time.
    #[error("{addr}: timed out after {timeout_ms} ms waiting for {what}")]
    Timeout {
        addr: String,
        what: String,
        timeout_ms: u64,
    },
    /// The broker does not serve any version of this API that the client can speak.
    #[error("{addr}: broker does not support {api} at any version this client speaks (broker range: {broker_range})")]
    UnsupportedVersion {
        addr: String,
        api: String,
        broker_range: String,
    },
    /// A request could not be encoded (a bug: a field set that the version cannot carry).
    #[error("cannot encode {api} v{version} request: {source}")]
    Encode {
        api: String,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response could not be decoded.
    #[error("{addr}: cannot decode {api} v{version} response: {source}")]
    Decode {
        addr: String,
        api: String,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response frame is larger than the client accepts.
    #[error("{addr}: response frame of {size} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { addr: String, size: i64, max: usize },
    /// A response answered another request.
    #[error("{addr}: response correlation id {got} does not match request {expected}")]
    CorrelationMismatch {
        addr: String,
        expected: i32,
        got: i32,
    },
    /// A broker answered with a Kafka error code.
    #[error("{name}{}: {context}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        code: i16,
        name: String,
        message: Option<String>,
        context: String,
    },
    /// Metadata named a broker the client has no address for, or no leader.
    #[error("no address for broker {0} in the cluster metadata")]
    UnknownBroker(i32),
    /// A record batch from the broker could not be parsed.
    #[error("cannot read record batch: {0}")]
    Records(String),
}

impl ClientError {
    /// A [`ClientError::Kafka`] for a non-zero `code`.
    pub fn kafka(code: i16, message: Option<String>, context: impl Into<String>) -> ClientError {
        ClientError::Kafka {
            code,
            name: error_name(code),
            message: message.filter(|m| !m.is_empty()),
            context: context.into(),
        }
    }

    /// `Err(ClientError::Kafka)` unless `code` is 0.
    pub fn check(code: i16, message: Option<String>, context: impl Into<String>) -> Result<()> {
        if code == 0 {
            Ok(())
        } else {
            Err(ClientError::kafka(code, message, context))
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Result with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Kafka's name for an error code, as `Errors.java` spells it: `UNKNOWN_TOPIC_OR_PARTITION`.
/// `NONE` for 0; `UNKNOWN_ERROR_CODE_<n>` for a code this client does not know.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(n)) => format!("UNKNOWN_ERROR_CODE_{n}"),
        Some(e) => upper_snake(&e.to_string()),
    }
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(40), "INVALID_CONFIG");
        assert_eq!(error_name(37), "INVALID_PARTITIONS");
        assert_eq!(error_name(69), "GROUP_ID_NOT_FOUND");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }
}
