//! Who a request comes from, in Kafka's words: a `KafkaPrincipal` of a type (`User`) and a
//! name. A connection that has not authenticated (PLAINTEXT, or SSL without a client
//! certificate) is `User:ANONYMOUS`, as in Kafka.

use std::fmt;

/// A principal as Kafka's authorizer sees it, written `type:name` (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

impl KafkaPrincipal {
    /// The principal type Kafka gives every authenticated and anonymous user.
    pub const USER_TYPE: &'static str = "User";

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        KafkaPrincipal {
            principal_type: Self::USER_TYPE.to_owned(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`, the principal of an unauthenticated connection.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}
