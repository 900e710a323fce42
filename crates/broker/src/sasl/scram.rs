//! The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka serves
//! them: no channel binding (`n` or `y` GS2 flag), an authorization id only if it equals the
//! user name, and no extensions (Kafka's only one, `tokenauth`, is for delegation tokens, which
//! Oxka does not issue).
//!
//! A pure state machine: [`ScramServer::new`] takes the server nonce (randomness is the
//! shell's), the credential is looked up through a closure, and each client message moves it
//! forward exactly once. Invariants: the client's proof is compared in constant time; the
//! client-final message must carry the nonce the server sent and the GS2 header the client
//! sent; the server signature is only produced after the proof verified.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use oxka_metadata::{ScramCredential, ScramMechanism};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::AuthFailure;

/// Kafka's bounds on the iteration count (`ScramMechanism.minIterations/maxIterations`).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// What a step of the exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this server-first message and wait for the client-final message.
    Challenge(Vec<u8>),
    /// Authenticated as `username`; send this server-final message.
    Complete { username: String, response: Vec<u8> },
}

#[derive(Debug)]
enum State {
    ExpectClientFirst {
        server_nonce: String,
    },
    ExpectClientFinal {
        username: String,
        credential: ScramCredential,
        gs2_header: String,
        nonce: String,
        client_first_bare: String,
        server_first: String,
    },
    Finished,
}

/// One SCRAM exchange on the server side.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

impl ScramServer {
    /// A new exchange; `server_nonce` is printable ASCII without `,` (the shell makes it random).
    pub fn new(mechanism: ScramMechanism, server_nonce: String) -> Self {
        ScramServer {
            mechanism,
            state: State::ExpectClientFirst { server_nonce },
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Handles the next client message. After an error or completion the exchange is over and
    /// every further message fails.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    ) -> Result<ScramStep, AuthFailure> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ExpectClientFirst { server_nonce } => {
                self.client_first(message, &server_nonce, lookup)
            }
            State::ExpectClientFinal {
                username,
                credential,
                gs2_header,
                nonce,
                client_first_bare,
                server_first,
            } => {
                let auth = FinalCheck {
                    credential: &credential,
                    gs2_header: &gs2_header,
                    nonce: &nonce,
                    client_first_bare: &client_first_bare,
                    server_first: &server_first,
                };
                let response = self.client_final(message, &auth)?;
                Ok(ScramStep::Complete { username, response })
            }
            State::Finished => Err(AuthFailure::new("SCRAM exchange is already complete")),
        }
    }

    fn client_first(
        &mut self,
        message: &[u8],
        server_nonce: &str,
        lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    ) -> Result<ScramStep, AuthFailure> {
        let invalid = || AuthFailure::new("Invalid SCRAM client first message");
        let message = std::str::from_utf8(message).map_err(|_| invalid())?;
        let first = parse_client_first(message).ok_or_else(invalid)?;
        if let Some(authzid) = &first.authzid {
            if *authzid != first.username {
                return Err(AuthFailure::new(
                    "Authentication failed: Client requested an authorization id that is different from username",
                ));
            }
        }
        let credential = lookup(&first.username, self.mechanism)
            .ok_or_else(|| AuthFailure::invalid_credentials(self.mechanism))?;
        let nonce = format!("{}{}", first.client_nonce, server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::ExpectClientFinal {
            username: first.username,
            credential,
            gs2_header: first.gs2_header.to_owned(),
            nonce,
            client_first_bare: first.client_first_bare.to_owned(),
            server_first: server_first.clone(),
        };
        Ok(ScramStep::Challenge(server_first.into_bytes()))
    }

    fn client_final(&self, message: &[u8], auth: &FinalCheck<'_>) -> Result<Vec<u8>, AuthFailure> {
        let invalid = || AuthFailure::new("Invalid SCRAM client final message");
        let message = std::str::from_utf8(message).map_err(|_| invalid())?;
        let (without_proof, proof) = message.rsplit_once(",p=").ok_or_else(invalid)?;
        let mut attrs = without_proof.split(',');
        let channel_binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(invalid)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(invalid)?;
        if attrs.next().is_some() {
            return Err(invalid()); // extensions are not accepted
        }
        let channel_binding = B64.decode(channel_binding).map_err(|_| invalid())?;
        if channel_binding != auth.gs2_header.as_bytes() {
            return Err(AuthFailure::new("Invalid SCRAM channel binding"));
        }
        if nonce != auth.nonce {
            tracing::debug!(received = nonce, sent = auth.nonce, "SCRAM nonce mismatch");
            return Err(AuthFailure::new(
                "Invalid SCRAM nonce: it is not the nonce the server sent",
            ));
        }
        let proof = B64.decode(proof).map_err(|_| invalid())?;
        let auth_message = format!(
            "{},{},{}",
            auth.client_first_bare, auth.server_first, without_proof
        );
        let m = self.mechanism;
        let client_signature = hmac(m, &auth.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(AuthFailure::invalid_credentials(m));
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let stored_key = hash(m, &client_key);
        if !bool::from(stored_key.ct_eq(&auth.credential.stored_key)) {
            return Err(AuthFailure::invalid_credentials(m));
        }
        let server_signature = hmac(m, &auth.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// What the client-final message is checked against.
struct FinalCheck<'a> {
    credential: &'a ScramCredential,
    gs2_header: &'a str,
    nonce: &'a str,
    client_first_bare: &'a str,
    server_first: &'a str,
}

#[derive(Debug)]
struct ClientFirst<'a> {
    gs2_header: &'a str,
    authzid: Option<String>,
    username: String,
    client_nonce: &'a str,
    client_first_bare: &'a str,
}

/// `gs2-header client-first-bare` where gs2-header = (`n`|`y`) `,` [`a=` authzid] `,` and
/// client-first-bare = `n=` saslname `,r=` nonce, with no extensions.
fn parse_client_first(message: &str) -> Option<ClientFirst<'_>> {
    let (flag, rest) = message.split_once(',')?;
    if flag != "n" && flag != "y" {
        return None; // `p=` asks for channel binding, which is not offered
    }
    let (authzid, bare) = rest.split_once(',')?;
    let gs2_header = &message[..message.len() - bare.len()];
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(a.strip_prefix("a=")?)?),
    };
    let mut attrs = bare.split(',');
    let username = decode_saslname(attrs.next()?.strip_prefix("n=")?)?;
    let client_nonce = attrs.next()?.strip_prefix("r=")?;
    if attrs.next().is_some()
        || username.is_empty()
        || client_nonce.is_empty()
        || !client_nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return None;
    }
    Some(ClientFirst {
        gs2_header,
        authzid,
        username,
        client_nonce,
        client_first_bare: bare,
    })
}

/// RFC 5802 saslname: `=2C` is `,` and `=3D` is `=`; any other `=` is invalid.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3) {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The credential the server stores for a salted password (what AlterUserScramCredentials
/// sends): StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword,
/// "Server Key").
pub fn credential_from_salted_password(
    mechanism: ScramMechanism,
    salt: Vec<u8>,
    iterations: i32,
    salted_password: &[u8],
) -> ScramCredential {
    let client_key = hmac(mechanism, salted_password, b"Client Key");
    ScramCredential {
        stored_key: hash(mechanism, &client_key),
        server_key: hmac(mechanism, salted_password, b"Server Key"),
        salt,
        iterations,
    }
}

/// SaltedPassword = Hi(password, salt, iterations), PBKDF2 with the mechanism's HMAC.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> Vec<u8> {
    let rounds = iterations.max(1) as u32;
    match mechanism {
        ScramMechanism::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, rounds).to_vec()
        }
        ScramMechanism::Sha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, rounds).to_vec()
        }
    }
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_credential() -> ScramCredential {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
        credential_from_salted_password(ScramMechanism::Sha256, salt, 4096, &salted)
    }

    fn lookup(user: &str, m: ScramMechanism) -> Option<ScramCredential> {
        (user == "user" && m == ScramMechanism::Sha256).then(rfc_credential)
    }

    fn server() -> ScramServer {
        ScramServer::new(ScramMechanism::Sha256, SERVER_NONCE.into())
    }

    #[test]
    fn rfc7677_exchange_verifies_and_signs() {
        let mut s = server();
        let first = s.step(CLIENT_FIRST.as_bytes(), &lookup).unwrap();
        assert_eq!(
            first,
            ScramStep::Challenge(SERVER_FIRST.as_bytes().to_vec())
        );
        let done = s.step(CLIENT_FINAL.as_bytes(), &lookup).unwrap();
        assert_eq!(
            done,
            ScramStep::Complete {
                username: "user".into(),
                response: SERVER_FINAL.as_bytes().to_vec()
            }
        );
        assert!(s.step(CLIENT_FINAL.as_bytes(), &lookup).is_err());
    }

    #[test]
    fn wrong_proof_fails_with_kafkas_message() {
        let mut s = server();
        s.step(CLIENT_FIRST.as_bytes(), &lookup).unwrap();
        let bad = CLIENT_FINAL.replace("p=dHzb", "p=dHzc");
        let e = s.step(bad.as_bytes(), &lookup).unwrap_err();
        assert!(e
            .message
            .contains("invalid credentials with SASL mechanism SCRAM-SHA-256"));
    }

    #[test]
    fn nonce_and_channel_binding_must_match() {
        let mut s = server();
        s.step(CLIENT_FIRST.as_bytes(), &lookup).unwrap();
        let other_nonce = CLIENT_FINAL.replace("k0,p=", "k1,p=");
        assert!(s
            .step(other_nonce.as_bytes(), &lookup)
            .unwrap_err()
            .message
            .contains("nonce"));
        let mut s = server();
        s.step(CLIENT_FIRST.as_bytes(), &lookup).unwrap();
        let other_cb = CLIENT_FINAL.replace("c=biws", "c=eSws"); // "y,,"
        assert!(s
            .step(other_cb.as_bytes(), &lookup)
            .unwrap_err()
            .message
            .contains("channel"));
    }

    #[test]
    fn unknown_user_channel_binding_and_bad_authzid_are_refused() {
        assert!(server().step(b"n,,n=nobody,r=abc", &lookup).is_err());
        assert!(server()
            .step(b"p=tls-unique,,n=user,r=abc", &lookup)
            .is_err());
        assert!(server().step(b"n,a=admin,n=user,r=abc", &lookup).is_err());
        assert!(server().step(b"n,a=user,n=user,r=abc", &lookup).is_ok());
        assert!(server()
            .step(b"n,,n=user,r=abc,tokenauth=true", &lookup)
            .is_err());
        assert!(server().step(b"n,,n=user", &lookup).is_err());
        assert!(server().step(b"\xff", &lookup).is_err());
    }

    #[test]
    fn saslname_escapes() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=b"), None);
        assert_eq!(decode_saslname("a="), None);
    }

    #[test]
    fn sha512_keys_have_its_length() {
        let salted = salted_password(ScramMechanism::Sha512, b"pw", b"salt", 4096);
        let c = credential_from_salted_password(
            ScramMechanism::Sha512,
            b"salt".to_vec(),
            4096,
            &salted,
        );
        assert_eq!(
            (salted.len(), c.stored_key.len(), c.server_key.len()),
            (64, 64, 64)
        );
    }
}
