//! One task per client connection: read size-checked frames, decode (guarded), hand to the
//! broker, write responses in request order.
//!
//! Like Kafka's socket server, a connection processes one request at a time; pipelined
//! requests wait in the read buffer, and responses are flushed when no further complete
//! request is already buffered. Any framing or decoding failure closes *this* connection and
//! nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use oxka_broker::{metrics, Broker, Reply, RequestContext};
use oxka_protocol::frame::{self, FrameError};
use oxka_protocol::kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind};
use oxka_protocol::kafka_protocol::protocol::Encodable;
use oxka_protocol::{codec, guard, versions};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

/// Per-listener limits.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) max_frame_bytes: usize,
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) async fn accept_loop(
    listener: TcpListener,
    name: String,
    broker: Arc<Broker>,
    limits: Arc<Limits>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn_id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let span = tracing::debug_span!("conn", conn_id, %peer);
                let (broker, limits, name) = (broker.clone(), limits.clone(), name.clone());
                tokio::spawn(
                    async move {
                        let client_host = format!("/{}", peer.ip());
                        match serve_connection(stream, &name, &client_host, broker, &limits).await {
                            Ok(()) => tracing::debug!("connection closed"),
                            Err(e) => tracing::info!(error = %e, "closing connection"),
                        }
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a connection was closed by the broker.
#[derive(Debug)]
enum ConnError {
    Io(std::io::Error),
    Frame(FrameError),
    UnknownApiKey(i16),
    UnsupportedVersion {
        api_key: i16,
        api_version: i16,
    },
    Closed {
        api_key: i16,
        api_version: i16,
        reason: String,
    },
    Malformed {
        api_key: i16,
        api_version: i16,
        reason: String,
    },
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o: {e}"),
            ConnError::Frame(e) => write!(f, "bad frame: {e}"),
            ConnError::UnknownApiKey(k) => write!(f, "unknown api key {k}"),
            ConnError::UnsupportedVersion {
                api_key,
                api_version,
            } => {
                write!(f, "unsupported version {api_version} of api key {api_key}")
            }
            ConnError::Closed {
                api_key,
                api_version,
                reason,
            } => write!(
                f,
                "closing after api key {api_key} v{api_version}: {reason}"
            ),
            ConnError::Malformed {
                api_key,
                api_version,
                reason,
            } => {
                write!(
                    f,
                    "malformed request (api key {api_key} v{api_version}): {reason}"
                )
            }
        }
    }
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        ConnError::Io(e)
    }
}

async fn serve_connection(
    stream: TcpStream,
    listener_name: &str,
    client_host: &str,
    broker: Arc<Broker>,
    limits: &Limits,
) -> Result<(), ConnError> {
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let Some(frame) = read_frame(&mut reader, &mut buf, limits.max_frame_bytes).await? else {
            return Ok(());
        };
        let started = Instant::now();
        let response = handle_frame(frame, listener_name, client_host, &broker).await?;
        if let Some((api, bytes)) = response {
            writer.write_all(&bytes).await?;
            metrics::request(api, started.elapsed().as_secs_f64() * 1000.0);
        }
        // Flush unless another complete request is already waiting: pipelined requests then
        // share one write.
        if !has_complete_frame(&buf) {
            writer.flush().await?;
        }
    }
}

fn has_complete_frame(buf: &BytesMut) -> bool {
    buf.len() >= 4 && {
        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        size >= 0 && buf.len() - 4 >= size as usize
    }
}

/// Reads one frame; `None` on a clean end of stream between frames.
async fn read_frame(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, ConnError> {
    while buf.len() < 4 {
        if reader.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()))
            };
        }
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let size = frame::check_frame_size(size, max_frame_bytes).map_err(ConnError::Frame)?;
    // Grow the buffer as bytes arrive rather than trusting the announced size up front.
    while buf.len() < 4 + size {
        let missing = 4 + size - buf.len();
        buf.reserve(missing.min(1 << 20));
        if reader.read_buf(buf).await? == 0 {
            return Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// Decodes and handles one request; the encoded response (with its API's name for metrics),
/// or `None` when no response is due.
async fn handle_frame(
    frame: Bytes,
    listener_name: &str,
    client_host: &str,
    broker: &Arc<Broker>,
) -> Result<Option<(&'static str, Bytes)>, ConnError> {
    let (api_key, api_version, correlation_id) =
        frame::peek_fixed_header(&frame).map_err(ConnError::Frame)?;
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Err(ConnError::UnknownApiKey(api_key));
    };
    if !versions::is_supported(api_key, api_version) {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer with v0 and the supported ranges so the client can downgrade.
            return Ok(Some((
                "ApiVersions",
                unsupported_api_versions(correlation_id),
            )));
        }
        return Err(ConnError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    let malformed = |reason: String| ConnError::Malformed {
        api_key,
        api_version,
        reason,
    };
    let header_version = key.request_header_version(api_version);
    let (header, body) =
        frame::parse_request_header(frame, header_version).map_err(|e| malformed(e.to_string()))?;
    guard::check_request(api_key, api_version, &body).map_err(|e| malformed(e.to_string()))?;
    let mut body = body;
    let request =
        RequestKind::decode(key, &mut body, api_version).map_err(|e| malformed(e.to_string()))?;
    let ctx = RequestContext {
        api_version,
        correlation_id,
        client_id: header.client_id,
        listener_name: listener_name.to_owned(),
        client_host: client_host.to_owned(),
        principal: oxka_broker::KafkaPrincipal::anonymous(),
    };
    let span = tracing::debug_span!("request", api_key, api_version, correlation_id);
    let response = match broker.handle(&ctx, request).instrument(span).await {
        Reply::Send(response) => response,
        Reply::Nothing => return Ok(None),
        Reply::Close(reason) => {
            return Err(ConnError::Closed {
                api_key,
                api_version,
                reason,
            })
        }
    };
    let bytes = codec::encode_response(key, api_version, correlation_id, &response)
        .map_err(|e| malformed(format!("encoding response: {e}")))?;
    Ok(Some((api_name(key), bytes)))
}

fn unsupported_api_versions(correlation_id: i32) -> Bytes {
    let mut response = ApiVersionsResponse::default();
    response.error_code =
        oxka_protocol::kafka_protocol::error::ResponseError::UnsupportedVersion.code();
    // As Kafka's ApiVersionsRequest.getErrorResponse (KIP-511): only the ApiVersions entry, so
    // the client can retry at a version both sides speak.
    response.api_keys = versions::api_version_entries()
        .into_iter()
        .filter(|k| k.api_key == ApiKey::ApiVersions as i16)
        .collect();
    codec::frame(correlation_id, 0, |buf| response.encode(buf, 0))
        .expect("v0 ApiVersions always encodes")
}

fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::DescribeProducers => "DescribeProducers",
        ApiKey::DescribeTransactions => "DescribeTransactions",
        ApiKey::ListTransactions => "ListTransactions",
        _ => "Other",
    }
}
