//! The server side of SASL/PLAIN (RFC 4616): one message `authzid NUL authcid NUL passwd`,
//! checked against the users of the listener's JAAS config (`user_<name>="<password>"`), as
//! Kafka's `PlainServerCallbackHandler` does. The password comparison is constant-time.

use subtle::ConstantTimeEq;

use super::AuthFailure;

/// Verifies one PLAIN message; the authenticated user name on success. `password_of` gives
/// the configured password of a user.
pub fn authenticate(
    message: &[u8],
    password_of: &dyn Fn(&str) -> Option<String>,
) -> Result<String, AuthFailure> {
    let message = std::str::from_utf8(message)
        .map_err(|_| AuthFailure::new("Invalid SASL/PLAIN response: not UTF-8"))?;
    let tokens: Vec<&str> = message.split('\u{0}').collect();
    let [authzid, username, password] = tokens[..] else {
        return Err(AuthFailure::new(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            tokens.len()
        )));
    };
    if username.is_empty() {
        return Err(AuthFailure::new(
            "Authentication failed: username not specified",
        ));
    }
    if password.is_empty() {
        return Err(AuthFailure::new(
            "Authentication failed: password not specified",
        ));
    }
    if !authzid.is_empty() && authzid != username {
        return Err(AuthFailure::new(
            "Authentication failed: Client requested an authorization id that is different from username",
        ));
    }
    let ok = password_of(username)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(password.as_bytes())));
    if !ok {
        return Err(AuthFailure::new(
            "Authentication failed: Invalid username or password",
        ));
    }
    Ok(username.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(name: &str) -> Option<String> {
        (name == "alice").then(|| "alice-secret".to_owned())
    }

    #[test]
    fn right_password_authenticates() {
        assert_eq!(
            authenticate(b"\0alice\0alice-secret", &users).unwrap(),
            "alice"
        );
        assert_eq!(
            authenticate(b"alice\0alice\0alice-secret", &users).unwrap(),
            "alice"
        );
    }

    #[test]
    fn wrong_password_unknown_user_and_bad_shapes_fail() {
        let msg = |m: &[u8]| authenticate(m, &users).unwrap_err().message;
        assert!(msg(b"\0alice\0wrong").contains("Invalid username or password"));
        assert!(msg(b"\0bob\0alice-secret").contains("Invalid username or password"));
        assert!(msg(b"\0alice").contains("expected 3 tokens"));
        assert!(msg(b"\0\0pw").contains("username not specified"));
        assert!(msg(b"bob\0alice\0alice-secret").contains("authorization id"));
        assert!(msg(b"\0alice\0alice-secret\0").contains("expected 3 tokens"));
    }
}
