//! SASL authentication cores, free of sockets: the mechanisms Oxka serves (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512), the JAAS text that configures PLAIN users, and [`Authenticator`], one
//! exchange of one mechanism. The server's connection task drives an `Authenticator` with the
//! tokens of SaslAuthenticate requests (or raw tokens after a SaslHandshake v0) and sends back
//! what it returns.

pub mod jaas;
pub mod plain;
pub mod scram;

pub use oxka_metadata::{ScramCredential, ScramMechanism};

pub use scram::ScramServer;

/// A SASL mechanism Oxka can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    /// Kafka's mechanism name (`PLAIN`, `SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.mechanism_name(),
        }
    }

    /// The mechanism of a name, or `None` for one Oxka does not implement (GSSAPI,
    /// OAUTHBEARER, anything else).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            other => ScramMechanism::from_mechanism_name(other).map(Mechanism::Scram),
        }
    }
}

/// An authentication failure, with the message Kafka would send in SaslAuthenticate's
/// `error_message` (the client shows it to its user).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthFailure {
    pub message: String,
}

impl AuthFailure {
    pub fn new(message: impl Into<String>) -> Self {
        AuthFailure {
            message: message.into(),
        }
    }

    /// Kafka's message for a SCRAM exchange that did not verify (wrong password, unknown user).
    pub fn invalid_credentials(mechanism: ScramMechanism) -> Self {
        AuthFailure::new(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            mechanism.mechanism_name()
        ))
    }
}

/// Where an exchange looks users up.
pub trait Credentials {
    /// The PLAIN password configured for `user` on this listener.
    fn plain_password(&self, user: &str) -> Option<String>;
    /// The SCRAM credential of `user` (from the metadata image).
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// What one step of an exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the client's next token.
    Challenge(Vec<u8>),
    /// Authenticated as `username`; send `response` (possibly empty) as the last token.
    Complete { username: String, response: Vec<u8> },
}

/// One authentication exchange with one mechanism.
#[derive(Debug)]
pub enum Authenticator {
    Plain {
        done: bool,
    },
    /// Boxed: a SCRAM exchange holds its messages and credential while it runs.
    Scram(Box<ScramServer>),
}

impl Authenticator {
    /// A new exchange; `server_nonce` is used by SCRAM only (random, printable, no `,`).
    pub fn new(mechanism: Mechanism, server_nonce: String) -> Self {
        match mechanism {
            Mechanism::Plain => Authenticator::Plain { done: false },
            Mechanism::Scram(m) => {
                Authenticator::Scram(Box::new(ScramServer::new(m, server_nonce)))
            }
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        match self {
            Authenticator::Plain { .. } => Mechanism::Plain,
            Authenticator::Scram(s) => Mechanism::Scram(s.mechanism()),
        }
    }

    /// Handles the client's next token.
    pub fn step(&mut self, token: &[u8], creds: &dyn Credentials) -> Result<Step, AuthFailure> {
        match self {
            Authenticator::Plain { done } => {
                if std::mem::replace(done, true) {
                    return Err(AuthFailure::new("SASL/PLAIN exchange is already complete"));
                }
                let username = plain::authenticate(token, &|u| creds.plain_password(u))?;
                Ok(Step::Complete {
                    username,
                    response: Vec::new(),
                })
            }
            Authenticator::Scram(s) => {
                match s.step(token, &|u, m| creds.scram_credential(u, m))? {
                    scram::ScramStep::Challenge(c) => Ok(Step::Challenge(c)),
                    scram::ScramStep::Complete { username, response } => {
                        Ok(Step::Complete { username, response })
                    }
                }
            }
        }
    }
}

/// A random SCRAM server nonce: 32 random ASCII letters and digits (as Kafka's, and never
/// a character a client's attribute parser could trip on).
pub fn random_nonce() -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}
