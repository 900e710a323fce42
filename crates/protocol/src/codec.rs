//! Response encoding: size prefix, response header, body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};

/// A response could not be encoded (a bug: the handler built a value the version cannot carry).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{api_version} response: {source}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub api_version: i16,
    #[source]
    pub source: anyhow::Error,
}

/// Encodes a whole response frame (size prefix included) for a request of `api_key` at
/// `api_version`, with that API's response header version (ApiVersions: always v0, KIP-511).
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let header_version = api_key.response_header_version(api_version);
    frame(correlation_id, header_version, |buf| {
        body.encode(buf, api_version)
    })
    .map_err(|source| EncodeError {
        api_key,
        api_version,
        source,
    })
}

/// Writes size prefix and response header, then the body by `encode_body`, then patches the size.
pub fn frame(
    correlation_id: i32,
    header_version: i16,
    encode_body: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // size, patched below
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        buf.put_u8(0); // no tagged fields
    }
    encode_body(&mut buf)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}
