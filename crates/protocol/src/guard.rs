//! Pre-decode guard: placeholder, replaced by the bounded schema walker.

/// Why a request body was refused before decoding.
#[derive(Debug, thiserror::Error)]
#[error("request body refused: {0}")]
pub struct GuardError(pub String);

/// Checks that decoding `body` (the bytes after the request header) as `api_key` at
/// `api_version` cannot allocate more than the body's own size.
pub fn check_request(_api_key: i16, _api_version: i16, _body: &[u8]) -> Result<(), GuardError> {
    Ok(())
}
