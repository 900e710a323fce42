//! SCRAM credentials as Kafka stores them (RFC 5802, RFC 7677): the client computes
//! `SaltedPassword = Hi(password, salt, iterations)` (PBKDF2 with HMAC of the mechanism's hash,
//! output the hash's length) and sends salt and salted password in AlterUserScramCredentials,
//! as Kafka's `kafka-configs --alter --add-config 'SCRAM-SHA-256=[password=...]'` does. The
//! password itself never leaves the process.

use hmac::Hmac;
use rand::RngCore;
use sha2::{Sha256, Sha512};

/// Kafka's ScramMechanism codes and the minimum and maximum iterations it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Sha256 = 1,
    Sha512 = 2,
}

/// Kafka's bounds on iterations (ScramMechanism.minIterations; ScramFormatter max 16384).
pub(crate) const MIN_ITERATIONS: i32 = 4096;
pub(crate) const MAX_ITERATIONS: i32 = 16384;

impl Mechanism {
    pub(crate) fn parse(name: &str) -> anyhow::Result<Mechanism> {
        match name.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Ok(Mechanism::Sha256),
            "SCRAM-SHA-512" => Ok(Mechanism::Sha512),
            _ => anyhow::bail!("unknown mechanism {name:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"),
        }
    }

    pub(crate) fn name(code: i8) -> &'static str {
        match code {
            1 => "SCRAM-SHA-256",
            2 => "SCRAM-SHA-512",
            _ => "UNKNOWN",
        }
    }
}

/// `Hi(password, salt, iterations)` for the mechanism.
pub(crate) fn salted_password(
    mechanism: Mechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    match mechanism {
        Mechanism::Sha256 => {
            let mut out = vec![0u8; 32];
            pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out)
                .expect("HMAC accepts keys of any length");
            out
        }
        Mechanism::Sha512 => {
            let mut out = vec![0u8; 64];
            pbkdf2::pbkdf2::<Hmac<Sha512>>(password, salt, iterations, &mut out)
                .expect("HMAC accepts keys of any length");
            out
        }
    }
}

/// A fresh random salt.
pub(crate) fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; 32];
    rand::rng().fill_bytes(&mut salt);
    salt
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use hmac::Mac;
    use sha2::Digest;

    /// RFC 7677 §3: the SCRAM-SHA-256 exchange for user "user", password "pencil". A client
    /// proof computed from our SaltedPassword equal to the RFC's proves the salted password.
    #[test]
    fn salted_password_gives_rfc7677_client_proof() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(Mechanism::Sha256, b"pencil", &salt, 4096);
        let hmac = |key: &[u8], msg: &[u8]| {
            let mut m = <Hmac<Sha256>>::new_from_slice(key).unwrap();
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        };
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            b64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
    }

    /// SCRAM-SHA-512 keys are the hash length (64 bytes); every salt is fresh.
    #[test]
    fn sha512_output_is_64_bytes_and_salt_is_random() {
        assert_eq!(
            salted_password(Mechanism::Sha512, b"p", b"s", 4096).len(),
            64
        );
        assert_ne!(random_salt(), random_salt());
        assert_eq!(
            Mechanism::parse("scram-sha-512").unwrap(),
            Mechanism::Sha512
        );
        assert!(Mechanism::parse("PLAIN").is_err());
    }
}
