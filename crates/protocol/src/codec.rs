//! Response encoding: size prefix, response header, body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

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
/// `api_version`. The ApiVersions response header is always v0 (KIP-511).
pub fn encode_response<M: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &M,
) -> Result<Bytes, EncodeError> {
    let header_version = api_key.response_header_version(api_version);
    let fail = |source| EncodeError {
        api_key,
        api_version,
        source,
    };
    let body_size = body.compute_size(api_version).map_err(fail)?;
    let header_size = if header_version >= 1 { 5 } else { 4 };
    let mut buf = BytesMut::with_capacity(4 + header_size + body_size);
    buf.put_i32((header_size + body_size) as i32);
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        buf.put_u8(0); // no tagged fields
    }
    body.encode(&mut buf, api_version).map_err(fail)?;
    Ok(buf.freeze())
}
