//! The per-connection authentication state machine (Kafka's `SaslServerAuthenticator`), free
//! of I/O: the connection task asks [`Session::admit`] before parsing a request, hands it
//! SaslHandshake / SaslAuthenticate requests and, after a SaslHandshake v0, the raw SASL tokens,
//! and does what the returned [`After`] says. Time is passed in.
//!
//! Invariants:
//! - until a SASL listener's connection has authenticated, only ApiVersions, SaslHandshake and
//!   SaslAuthenticate are admitted, and frames are capped at `sasl.server.max.receive.size`
//!   (the connection reads that cap through [`Session::max_frame_bytes`] before allocating);
//! - a failed exchange answers SASL_AUTHENTICATION_FAILED (or nothing, for raw v0 tokens), and
//!   the connection is closed `connection.failed.authentication.delay.ms` after that answer;
//! - with `connections.max.reauth.ms` > 0 (KIP-368), SaslAuthenticate v1+ reports the session
//!   lifetime, and a request other than a re-authentication after it ran out closes the
//!   connection; re-authentication keeps the mechanism and the principal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxka_broker::sasl::{
    self, AuthFailure, Authenticator, Credentials, Mechanism, ScramCredential, ScramMechanism, Step,
};
use oxka_broker::{Broker, KafkaPrincipal};
use oxka_protocol::kafka_protocol::error::ResponseError;
use oxka_protocol::kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

/// The SASL settings of one listener.
#[derive(Debug)]
pub(crate) struct SaslSettings {
    /// `sasl.enabled.mechanisms`, in configured order.
    pub(crate) mechanisms: Vec<Mechanism>,
    /// PLAIN users from the JAAS config: `user_<name>="<password>"`.
    pub(crate) plain_users: BTreeMap<String, String>,
    /// `sasl.server.max.receive.size`: the largest frame before authentication.
    pub(crate) max_receive_size: usize,
    /// `connections.max.reauth.ms`; 0 disables session expiry.
    pub(crate) max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`.
    pub(crate) failed_delay: Duration,
}

/// API keys admitted before authentication.
const API_VERSIONS: i16 = 18;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;

/// What the connection does after answering.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum After {
    Continue,
    /// Send the answer, then close (an unsupported mechanism, a request in the wrong state).
    Close(String),
    /// Authentication failed: send the answer (if any), wait
    /// `connection.failed.authentication.delay.ms`, close.
    Fail(String),
}

#[derive(Debug)]
enum State {
    /// Not a SASL listener, or authenticated.
    Authenticated,
    /// A SASL listener's connection before its SaslHandshake.
    AwaitHandshake,
    /// After a SaslHandshake: the exchange runs. `raw` after a v0 handshake (tokens without
    /// Kafka framing); `reauth` holds the principal being re-authenticated (KIP-368).
    Exchange {
        authenticator: Authenticator,
        raw: bool,
        reauth: Option<KafkaPrincipal>,
    },
}

/// One connection's authentication state.
#[derive(Debug)]
pub(crate) struct Session {
    sasl: Option<Arc<SaslSettings>>,
    state: State,
    principal: KafkaPrincipal,
    /// The mechanism the connection authenticated with (re-authentication must keep it).
    mechanism: Option<Mechanism>,
    /// When the SASL session ends (KIP-368), if `connections.max.reauth.ms` > 0.
    expires_at: Option<Instant>,
}

impl Session {
    /// A session on a listener without SASL: authenticated from the start as `principal`
    /// (`User:ANONYMOUS`, or the TLS client certificate's mapped subject).
    pub(crate) fn without_sasl(principal: KafkaPrincipal) -> Self {
        Session {
            sasl: None,
            state: State::Authenticated,
            principal,
            mechanism: None,
            expires_at: None,
        }
    }

    /// A session on a SASL listener, not yet authenticated.
    pub(crate) fn with_sasl(settings: Arc<SaslSettings>) -> Self {
        Session {
            sasl: Some(settings),
            state: State::AwaitHandshake,
            principal: KafkaPrincipal::anonymous(),
            mechanism: None,
            expires_at: None,
        }
    }

    pub(crate) fn principal(&self) -> &KafkaPrincipal {
        &self.principal
    }

    fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated)
            && (self.sasl.is_none() || self.mechanism.is_some())
    }

    /// The largest frame accepted now: `sasl.server.max.receive.size` before authentication.
    pub(crate) fn max_frame_bytes(&self, authenticated_max: usize) -> usize {
        match &self.sasl {
            Some(s) if !self.is_authenticated() => s.max_receive_size.min(authenticated_max),
            _ => authenticated_max,
        }
    }

    /// Whether the next frame is a raw SASL token (after a SaslHandshake v0).
    pub(crate) fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::Exchange { raw: true, .. })
    }

    /// Whether a request with `api_key` may be served now; `Err` closes the connection.
    pub(crate) fn admit(&self, api_key: i16, now: Instant) -> Result<(), String> {
        if self.sasl.is_none() {
            return Ok(());
        }
        if self.is_authenticated() {
            if let Some(at) = self.expires_at {
                if now >= at && api_key != SASL_HANDSHAKE {
                    return Err("the SASL session expired without re-authentication (connections.max.reauth.ms)".into());
                }
            }
            return Ok(());
        }
        match api_key {
            API_VERSIONS | SASL_HANDSHAKE | SASL_AUTHENTICATE => Ok(()),
            other => Err(format!(
                "Unexpected Kafka request of type {other} during SASL handshake"
            )),
        }
    }

    /// SaslHandshake (17) v0 or v1.
    pub(crate) fn handshake(
        &mut self,
        version: i16,
        request: &SaslHandshakeRequest,
    ) -> (SaslHandshakeResponse, After) {
        let mut response = SaslHandshakeResponse::default();
        let Some(settings) = self.sasl.clone() else {
            response.error_code = ResponseError::IllegalSaslState.code();
            return (response, After::Continue);
        };
        response.mechanisms = settings
            .mechanisms
            .iter()
            .map(|m| m.name().to_owned().into())
            .collect();
        let reauth = match &self.state {
            State::AwaitHandshake => None,
            State::Authenticated if version >= 1 => Some(self.principal.clone()),
            _ => {
                response.error_code = ResponseError::IllegalSaslState.code();
                return (
                    response,
                    After::Close("SaslHandshake in the wrong state".into()),
                );
            }
        };
        let asked = request.mechanism.as_str();
        let mechanism = Mechanism::from_name(asked).filter(|m| settings.mechanisms.contains(m));
        let Some(mechanism) = mechanism else {
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
            return (
                response,
                After::Close(format!("Unsupported SASL mechanism {asked}")),
            );
        };
        if reauth.is_some() && self.mechanism != Some(mechanism) {
            response.error_code = ResponseError::IllegalSaslState.code();
            return (
                response,
                After::Fail(format!(
                    "SASL mechanism changed from {} to {asked} during re-authentication",
                    self.mechanism.map_or("none", Mechanism::name)
                )),
            );
        }
        self.state = State::Exchange {
            authenticator: Authenticator::new(mechanism, sasl::random_nonce()),
            raw: version == 0,
            reauth,
        };
        (response, After::Continue)
    }

    /// SaslAuthenticate (36) v0–v2.
    pub(crate) fn authenticate(
        &mut self,
        version: i16,
        request: &SaslAuthenticateRequest,
        creds: &dyn Credentials,
        now: Instant,
    ) -> (SaslAuthenticateResponse, After) {
        let mut response = SaslAuthenticateResponse::default();
        if !matches!(self.state, State::Exchange { raw: false, .. }) {
            response.error_code = ResponseError::IllegalSaslState.code();
            response.error_message = Some("Unexpected SaslAuthenticate request".to_owned().into());
            let after = if self.sasl.is_some() {
                After::Close("SaslAuthenticate in the wrong state".into())
            } else {
                After::Continue
            };
            return (response, after);
        }
        match self.token(&request.auth_bytes, creds, now) {
            Ok(bytes) => {
                response.auth_bytes = bytes;
                if version >= 1 && self.is_authenticated() {
                    response.session_lifetime_ms = self.session_lifetime_ms();
                }
                (response, After::Continue)
            }
            Err(e) => {
                response.error_code = ResponseError::SaslAuthenticationFailed.code();
                response.error_message = Some(e.message.clone().into());
                (response, After::Fail(e.message))
            }
        }
    }

    /// A raw token after a SaslHandshake v0; the raw bytes to send back.
    pub(crate) fn raw_token(
        &mut self,
        token: &[u8],
        creds: &dyn Credentials,
        now: Instant,
    ) -> Result<Bytes, AuthFailure> {
        self.token(token, creds, now)
    }

    fn session_lifetime_ms(&self) -> i64 {
        self.sasl.as_ref().map_or(0, |s| s.max_reauth_ms.max(0))
    }

    fn token(
        &mut self,
        token: &[u8],
        creds: &dyn Credentials,
        now: Instant,
    ) -> Result<Bytes, AuthFailure> {
        let State::Exchange {
            authenticator,
            reauth,
            ..
        } = &mut self.state
        else {
            return Err(AuthFailure::new("no SASL exchange in progress"));
        };
        let step = authenticator.step(token, creds);
        let step = match step {
            Ok(s) => s,
            Err(e) => {
                self.state = State::AwaitHandshake;
                return Err(e);
            }
        };
        match step {
            Step::Challenge(c) => Ok(Bytes::from(c)),
            Step::Complete { username, response } => {
                let principal = KafkaPrincipal::user(username);
                if let Some(previous) = reauth.take() {
                    if previous != principal {
                        self.state = State::AwaitHandshake;
                        return Err(AuthFailure::new(format!(
                            "Cannot change principals during re-authentication from {previous}: {principal}"
                        )));
                    }
                }
                self.mechanism = Some(authenticator.mechanism());
                self.state = State::Authenticated;
                self.principal = principal;
                let lifetime = self.session_lifetime_ms();
                self.expires_at =
                    (lifetime > 0).then(|| now + Duration::from_millis(lifetime as u64));
                tracing::debug!(principal = %self.principal, "SASL authentication succeeded");
                Ok(Bytes::from(response))
            }
        }
    }
}

/// Where a connection's exchange finds users: the listener's PLAIN users and the SCRAM
/// credentials of the current metadata image.
#[derive(Debug)]
pub(crate) struct BrokerCredentials<'a> {
    pub(crate) settings: &'a SaslSettings,
    pub(crate) broker: &'a Broker,
}

impl Credentials for BrokerCredentials<'_> {
    fn plain_password(&self, user: &str) -> Option<String> {
        self.settings.plain_users.get(user).cloned()
    }

    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.broker
            .image()
            .scram_credential(user, mechanism)
            .cloned()
    }
}

impl Session {
    pub(crate) fn settings(&self) -> Option<&Arc<SaslSettings>> {
        self.sasl.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Users;
    impl Credentials for Users {
        fn plain_password(&self, user: &str) -> Option<String> {
            (user == "alice").then(|| "alice-secret".into())
        }
        fn scram_credential(&self, _: &str, _: ScramMechanism) -> Option<ScramCredential> {
            None
        }
    }

    fn settings(reauth_ms: i64) -> Arc<SaslSettings> {
        Arc::new(SaslSettings {
            mechanisms: vec![Mechanism::Plain],
            plain_users: BTreeMap::new(),
            max_receive_size: 524288,
            max_reauth_ms: reauth_ms,
            failed_delay: Duration::from_millis(100),
        })
    }

    fn handshake(s: &mut Session, v: i16, mechanism: &str) -> (SaslHandshakeResponse, After) {
        let mut r = SaslHandshakeRequest::default();
        r.mechanism = mechanism.to_owned().into();
        s.handshake(v, &r)
    }

    fn authenticate(
        s: &mut Session,
        v: i16,
        token: &[u8],
        now: Instant,
    ) -> (SaslAuthenticateResponse, After) {
        let mut r = SaslAuthenticateRequest::default();
        r.auth_bytes = Bytes::copy_from_slice(token);
        s.authenticate(v, &r, &Users, now)
    }

    #[test]
    fn only_sasl_and_api_versions_before_authentication() {
        let now = Instant::now();
        let mut s = Session::with_sasl(settings(0));
        assert!(s.admit(18, now).is_ok() && s.admit(17, now).is_ok() && s.admit(36, now).is_ok());
        assert!(s.admit(3, now).is_err());
        assert_eq!(s.max_frame_bytes(100 << 20), 524288);
        assert_eq!(handshake(&mut s, 1, "PLAIN").1, After::Continue);
        assert!(s.admit(0, now).is_err());
        let (r, after) = authenticate(&mut s, 2, b"\0alice\0alice-secret", now);
        assert_eq!((r.error_code, after), (0, After::Continue));
        assert_eq!(s.principal().to_string(), "User:alice");
        assert!(s.admit(0, now).is_ok());
        assert_eq!(s.max_frame_bytes(100 << 20), 100 << 20);
    }

    #[test]
    fn wrong_password_fails_and_unsupported_mechanism_closes() {
        let now = Instant::now();
        let mut s = Session::with_sasl(settings(0));
        let (r, after) = handshake(&mut s, 1, "GSSAPI");
        assert_eq!(r.error_code, 33);
        assert_eq!(r.mechanisms.len(), 1);
        assert!(matches!(after, After::Close(_)));
        let mut s = Session::with_sasl(settings(0));
        handshake(&mut s, 1, "PLAIN");
        let (r, after) = authenticate(&mut s, 1, b"\0alice\0nope", now);
        assert_eq!(r.error_code, 58);
        assert!(r
            .error_message
            .unwrap()
            .contains("Invalid username or password"));
        assert!(matches!(after, After::Fail(_)));
        assert_eq!(s.principal(), &KafkaPrincipal::anonymous());
    }

    #[test]
    fn session_lifetime_and_reauthentication() {
        let now = Instant::now();
        let mut s = Session::with_sasl(settings(1000));
        handshake(&mut s, 1, "PLAIN");
        let (r, _) = authenticate(&mut s, 1, b"\0alice\0alice-secret", now);
        assert_eq!(r.session_lifetime_ms, 1000);
        let later = now + Duration::from_millis(1001);
        assert!(s.admit(0, now).is_ok());
        assert!(s.admit(0, later).is_err());
        assert!(s.admit(17, later).is_ok());
        // v0 handshakes cannot re-authenticate
        assert!(matches!(handshake(&mut s, 0, "PLAIN").1, After::Close(_)));
        let mut s = Session::with_sasl(settings(1000));
        handshake(&mut s, 1, "PLAIN");
        authenticate(&mut s, 1, b"\0alice\0alice-secret", now);
        assert_eq!(handshake(&mut s, 1, "PLAIN").1, After::Continue);
        let (r, _) = authenticate(&mut s, 1, b"\0alice\0alice-secret", later);
        assert_eq!(r.error_code, 0);
        assert!(s.admit(0, later).is_ok());
    }

    #[test]
    fn sasl_requests_on_a_plain_listener_get_illegal_sasl_state() {
        let mut s = Session::without_sasl(KafkaPrincipal::anonymous());
        let (r, after) = handshake(&mut s, 1, "PLAIN");
        assert_eq!((r.error_code, after), (34, After::Continue));
        assert!(s.admit(0, Instant::now()).is_ok());
    }
}
