//! One TCP connection to one broker.
//!
//! Invariants: the broker's ApiVersions ranges are known before any other request is sent;
//! exactly one request is in flight (methods take `&mut self`), so the next frame read is the
//! response to the last request written, and its correlation id is checked to be that request's;
//! a response frame is never larger than `max_response_bytes` (checked before allocating).

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ClientError, Result};
use crate::versions::pick_version;

/// UNSUPPORTED_VERSION: an ApiVersions request above the broker's range (KIP-511).
const UNSUPPORTED_VERSION: i16 = 35;

/// A connection to one broker, with its negotiated API versions.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: TcpStream,
    client_id: String,
    next_correlation_id: i32,
    timeout: Duration,
    max_response_bytes: usize,
    /// The broker's `(min, max)` per API key, from ApiVersions.
    broker_versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and learns its API versions.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<Connection> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.to_owned(),
                what: "TCP connect".to_owned(),
                timeout_ms: timeout.as_millis() as u64,
            })?
            .map_err(|source| ClientError::Io {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut conn = Connection {
            addr: addr.to_owned(),
            stream,
            client_id: client_id.to_owned(),
            next_correlation_id: 0,
            timeout,
            max_response_bytes,
            broker_versions: HashMap::new(),
        };
        conn.negotiate_versions().await?;
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The broker's advertised `(min, max)` for every API key, sorted by key.
    pub fn broker_versions(&self) -> Vec<(i16, i16, i16)> {
        let mut v: Vec<_> = self
            .broker_versions
            .iter()
            .map(|(&k, &(min, max))| (k, min, max))
            .collect();
        v.sort_unstable();
        v
    }

    /// The version this connection would send `api_key` at, if any.
    pub fn version_for(&self, api_key: ApiKey) -> Option<i16> {
        let range = self.broker_versions.get(&(api_key as i16))?;
        pick_version(api_key, *range)
    }

    /// Sends the request `build(version)` at the highest common version and awaits its response.
    /// `build` sees the version so that it can fill the fields that version carries.
    pub async fn send<R>(&mut self, build: impl FnOnce(i16) -> R) -> Result<R::Response>
    where
        R: Request,
    {
        let api_key = api_key_of::<R>();
        let version = self
            .version_for(api_key)
            .ok_or_else(|| ClientError::UnsupportedVersion {
                addr: self.addr.clone(),
                api: format!("{api_key:?}"),
                broker_range: self
                    .broker_versions
                    .get(&R::KEY)
                    .map(|(a, b)| format!("{a}..{b}"))
                    .unwrap_or_else(|| "not served".to_owned()),
            })?;
        let request = build(version);
        self.send_at(&request, version).await
    }

    /// Sends `request` at exactly `version` and awaits its response.
    pub async fn send_at<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        let api_key = api_key_of::<R>();
        let frame = self.encode(request, version)?;
        let correlation_id = self.next_correlation_id - 1;
        let mut body = self.round_trip(frame, api_key).await?;
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| self.decode_error(api_key, version, e))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::CorrelationMismatch {
                addr: self.addr.clone(),
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        R::Response::decode(&mut body, version).map_err(|e| self.decode_error(api_key, version, e))
    }

    /// ApiVersions at the highest version we know; a broker that does not know it answers v0
    /// with UNSUPPORTED_VERSION (KIP-511), and we ask again at v0.
    async fn negotiate_versions(&mut self) -> Result<()> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("oxka-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let max = crate::versions::client_max_version(ApiKey::ApiVersions).unwrap_or(0);
        let response = match self.send_at(&request, max).await {
            Ok(r) if r.error_code != UNSUPPORTED_VERSION => r,
            Ok(_) | Err(ClientError::Decode { .. }) => {
                self.send_at(&ApiVersionsRequest::default(), 0).await?
            }
            Err(e) => return Err(e),
        };
        ClientError::check(
            response.error_code,
            None,
            format!("ApiVersions from {}", self.addr),
        )?;
        self.broker_versions = versions_of(&response);
        Ok(())
    }

    fn encode<R: Request>(&mut self, request: &R, version: i16) -> Result<Bytes> {
        let api_key = api_key_of::<R>();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut buf = BytesMut::with_capacity(128);
        buf.put_i32(0);
        let encode_error = |source| ClientError::Encode {
            api: format!("{api_key:?}"),
            version,
            source,
        };
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| encode_error(boxed(e)))?;
        request
            .encode(&mut buf, version)
            .map_err(|e| encode_error(boxed(e)))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok(buf.freeze())
    }

    async fn round_trip(&mut self, frame: Bytes, api_key: ApiKey) -> Result<Bytes> {
        let timeout = self.timeout;
        let addr = self.addr.clone();
        let io = |source| ClientError::Io {
            addr: addr.clone(),
            source,
        };
        let work = async {
            self.stream.write_all(&frame).await.map_err(io)?;
            let mut size = [0u8; 4];
            self.stream.read_exact(&mut size).await.map_err(io)?;
            let size = i32::from_be_bytes(size);
            if size < 4 || size as usize > self.max_response_bytes {
                return Err(ClientError::FrameTooLarge {
                    addr: addr.clone(),
                    size: i64::from(size),
                    max: self.max_response_bytes,
                });
            }
            let mut body = vec![0u8; size as usize];
            self.stream.read_exact(&mut body).await.map_err(io)?;
            Ok(Bytes::from(body))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ClientError::Timeout {
                addr: self.addr.clone(),
                what: format!("{api_key:?} response"),
                timeout_ms: timeout.as_millis() as u64,
            })?
    }

    fn decode_error(
        &self,
        api_key: ApiKey,
        version: i16,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ClientError {
        ClientError::Decode {
            addr: self.addr.clone(),
            api: format!("{api_key:?}"),
            version,
            source: e.into(),
        }
    }
}

/// The codec reports `anyhow::Error`s; the client keeps them as boxed sources.
fn boxed(
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Box<dyn std::error::Error + Send + Sync> {
    e.into()
}

fn api_key_of<R: Request>() -> ApiKey {
    // Every `Request` type of the codec has a valid key.
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}

fn versions_of(response: &ApiVersionsResponse) -> HashMap<i16, (i16, i16)> {
    response
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect()
}
