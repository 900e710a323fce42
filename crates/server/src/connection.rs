//! One task per client connection: read size-checked frames, decode (guarded), hand to the
//! broker, write responses in request order.
//!
//! Like Kafka's socket server, a connection processes one request at a time; pipelined
//! requests wait in the read buffer, and responses are flushed when no further complete
//! request is already buffered. Any framing or decoding failure closes *this* connection and
//! nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use oxka_broker::{metrics, Broker, KafkaPrincipal, Reply, RequestContext};
use oxka_protocol::frame::{self, FrameError};
use oxka_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestKind, ResponseKind,
};
use oxka_protocol::kafka_protocol::protocol::Encodable;
use oxka_protocol::{codec, guard, versions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::auth::{After, BrokerCredentials, Session};
use crate::security::ListenerSecurity;

/// How long a TLS client may take to complete its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    security: Arc<ListenerSecurity>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn_id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let span = tracing::debug_span!("conn", conn_id, %peer);
                let (broker, limits, name) = (broker.clone(), limits.clone(), name.clone());
                let security = security.clone();
                tokio::spawn(
                    async move {
                        let info = ConnInfo {
                            listener_name: name,
                            client_host: format!("/{}", peer.ip()),
                        };
                        let result = match &security.tls {
                            None => {
                                let session = plain_session(&security);
                                serve_connection(stream, &info, broker, &limits, session).await
                            }
                            Some(tls) => {
                                let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                                match tls_accept(&acceptor, stream, &security).await {
                                    Ok((tls, session)) => {
                                        serve_connection(tls, &info, broker, &limits, session).await
                                    }
                                    Err(e) => Err(e),
                                }
                            }
                        };
                        match result {
                            Ok(()) => tracing::debug!("connection closed"),
                            Err(e @ ConnError::Auth(_)) => {
                                tracing::info!(error = %e, "authentication failed")
                            }
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

/// The session of a connection on a listener without TLS.
fn plain_session(security: &ListenerSecurity) -> Session {
    match &security.sasl {
        Some(sasl) => Session::with_sasl(sasl.clone()),
        None => Session::without_sasl(KafkaPrincipal::anonymous()),
    }
}

/// Completes the TLS handshake; with a client certificate, the principal is its subject DN
/// mapped by `ssl.principal.mapping.rules` (SASL, if the listener has it, decides later).
async fn tls_accept(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    security: &ListenerSecurity,
) -> Result<
    (
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        Session,
    ),
    ConnError,
> {
    let tls = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| ConnError::Tls("handshake timed out".into()))?
        .map_err(|e| ConnError::Tls(e.to_string()))?;
    if let Some(sasl) = &security.sasl {
        return Ok((tls, Session::with_sasl(sasl.clone())));
    }
    let certificate = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let principal = match certificate {
        None => KafkaPrincipal::anonymous(),
        Some(der) => {
            let dn = crate::principal_mapping::subject_dn(der).map_err(ConnError::Tls)?;
            let name = security
                .principal_mapper
                .map(&dn)
                .map_err(ConnError::Auth)?;
            tracing::info!(subject = %dn, principal = %KafkaPrincipal::user(name.clone()), "TLS client authenticated");
            KafkaPrincipal::user(name)
        }
    };
    Ok((tls, Session::without_sasl(principal)))
}

/// What a connection knows about itself.
#[derive(Debug)]
struct ConnInfo {
    listener_name: String,
    client_host: String,
}

/// Why a connection was closed by the broker.
#[derive(Debug)]
enum ConnError {
    Io(std::io::Error),
    Tls(String),
    /// Authentication failed (after `connection.failed.authentication.delay.ms`).
    Auth(String),
    /// A request the session did not admit (before authentication, or after it expired).
    NotAdmitted {
        api_key: i16,
        reason: String,
    },
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
            ConnError::Tls(e) => write!(f, "TLS: {e}"),
            ConnError::Auth(e) => write!(f, "authentication failed: {e}"),
            ConnError::NotAdmitted { api_key, reason } => {
                write!(f, "request with api key {api_key} not admitted: {reason}")
            }
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

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    info: &ConnInfo,
    broker: Arc<Broker>,
    limits: &Limits,
    mut session: Session,
) -> Result<(), ConnError> {
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let max_frame_bytes = session.max_frame_bytes(limits.max_frame_bytes);
        let Some(frame) = read_frame(&mut reader, &mut buf, max_frame_bytes).await? else {
            return Ok(());
        };
        let started = Instant::now();
        if session.expects_raw_token() {
            // After a SaslHandshake v0, SASL tokens come size-prefixed without Kafka framing.
            let settings = session
                .settings()
                .cloned()
                .expect("raw tokens only on SASL listeners");
            let creds = BrokerCredentials {
                settings: &settings,
                broker: &broker,
            };
            match session.raw_token(&frame, &creds, started) {
                Ok(token) => {
                    writer
                        .write_all(&(token.len() as u32).to_be_bytes())
                        .await?;
                    writer.write_all(&token).await?;
                    writer.flush().await?;
                    continue;
                }
                Err(e) => {
                    tokio::time::sleep(settings.failed_delay).await;
                    return Err(ConnError::Auth(e.message));
                }
            }
        }
        let (response, after) = handle_frame(frame, info, &broker, &mut session).await?;
        if let After::Fail(reason) = &after {
            // As Kafka: the error response goes out now, the close follows after
            // connection.failed.authentication.delay.ms (so the client reads the error first).
            if let Some((_, bytes)) = &response {
                writer.write_all(bytes).await?;
                writer.flush().await?;
            }
            if let Some(settings) = session.settings() {
                tokio::time::sleep(settings.failed_delay).await;
            }
            return Err(ConnError::Auth(reason.clone()));
        }
        if let Some((api, bytes)) = response {
            writer.write_all(&bytes).await?;
            metrics::request(api, started.elapsed().as_secs_f64() * 1000.0);
        }
        if let After::Close(reason) = after {
            writer.flush().await?;
            return Err(ConnError::Auth(reason));
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
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
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
    info: &ConnInfo,
    broker: &Arc<Broker>,
    session: &mut Session,
) -> Result<(Option<(&'static str, Bytes)>, After), ConnError> {
    let (api_key, api_version, correlation_id) =
        frame::peek_fixed_header(&frame).map_err(ConnError::Frame)?;
    session
        .admit(api_key, Instant::now())
        .map_err(|reason| ConnError::NotAdmitted { api_key, reason })?;
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Err(ConnError::UnknownApiKey(api_key));
    };
    if !versions::is_supported(api_key, api_version) {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer with v0 and the supported ranges so the client can downgrade.
            return Ok((
                Some(("ApiVersions", unsupported_api_versions(correlation_id))),
                After::Continue,
            ));
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
    let encode = |response: &ResponseKind| {
        codec::encode_response(key, api_version, correlation_id, response)
            .map_err(|e| malformed(format!("encoding response: {e}")))
    };
    // The SASL requests change the connection's own state: answered here, not by the broker.
    match request {
        RequestKind::SaslHandshake(r) => {
            let (response, after) = session.handshake(api_version, &r);
            let bytes = encode(&ResponseKind::SaslHandshake(response))?;
            return Ok((Some(("SaslHandshake", bytes)), after));
        }
        RequestKind::SaslAuthenticate(r) => {
            let (response, after) = match session.settings().cloned() {
                Some(settings) => {
                    let creds = BrokerCredentials {
                        settings: &settings,
                        broker,
                    };
                    session.authenticate(api_version, &r, &creds, Instant::now())
                }
                None => {
                    let creds = NoCredentials;
                    session.authenticate(api_version, &r, &creds, Instant::now())
                }
            };
            let bytes = encode(&ResponseKind::SaslAuthenticate(response))?;
            return Ok((Some(("SaslAuthenticate", bytes)), after));
        }
        _ => {}
    }
    let ctx = RequestContext {
        api_version,
        correlation_id,
        client_id: header.client_id,
        listener_name: info.listener_name.clone(),
        client_host: info.client_host.clone(),
        principal: session.principal().clone(),
    };
    let span = tracing::debug_span!("request", api_key, api_version, correlation_id);
    let response = match broker.handle(&ctx, request).instrument(span).await {
        Reply::Send(response) => response,
        Reply::Nothing => return Ok((None, After::Continue)),
        Reply::Close(reason) => {
            return Err(ConnError::Closed {
                api_key,
                api_version,
                reason,
            })
        }
    };
    let bytes = encode(&response)?;
    Ok((Some((api_name(key), bytes)), After::Continue))
}

/// The credentials of a listener without SASL (its exchanges never start).
#[derive(Debug)]
struct NoCredentials;

impl oxka_broker::sasl::Credentials for NoCredentials {
    fn plain_password(&self, _: &str) -> Option<String> {
        None
    }
    fn scram_credential(
        &self,
        _: &str,
        _: oxka_broker::sasl::ScramMechanism,
    ) -> Option<oxka_broker::sasl::ScramCredential> {
        None
    }
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
        ApiKey::DescribeUserScramCredentials => "DescribeUserScramCredentials",
        ApiKey::AlterUserScramCredentials => "AlterUserScramCredentials",
        _ => "Other",
    }
}
