//! Raft RPCs between voters over plain TCP.
//!
//! **Wire format.** Each message is one frame: a 4-byte big-endian length `n`
//! (`n <= MAX_FRAME_BYTES`), then `n` bytes of JSON. A client sends a [`RaftRequest`] frame and
//! reads exactly one [`RaftResponse`] frame back before sending the next, on a connection it
//! keeps open. A frame longer than [`MAX_FRAME_BYTES`], a connection closed mid-frame or JSON
//! that does not parse ends *that* connection (the length is checked before anything is
//! allocated); other connections and the node go on.
//!
//! **Client** ([`NetworkFactory`], [`PeerClient`]): one connection per openraft replication
//! stream or vote request, opened lazily and dropped on any error or timeout (a late response
//! would otherwise be read as the answer to the next request), so the next call reconnects.
//! Every call is bounded by openraft's per-RPC deadline (`RPCOption::hard_ttl`). A failed
//! connect reports the peer *unreachable* (openraft backs off), other failures a network error
//! (openraft retries).
//!
//! **Server** ([`serve`]): one task per connection, at most [`MAX_CONNECTIONS`], each handing
//! requests to the local `Raft` one at a time. Aborting the `serve` task closes the listener
//! and every connection it accepted.
//!
//! **Forwarded proposals** (`RaftRequest::Forward`): a voter that is not the leader sends
//! `(based_on, records)` to the one it believes leads, on a connection of its own (one per
//! peer, see [`PeerClient::forward`]); the leader runs [`Proposer::propose`] and answers with
//! its [`ProposeOutcome`]. The request may take up to the proposal timeout, during which that
//! connection carries nothing else.
//!
//! **Contact** ([`Contact`]): every answer a peer sends (to an openraft RPC or a forwarded
//! proposal) records when this node last heard from it: the leader's heartbeats make that its
//! view of which voters are alive.
//!
//! Snapshots travel as openraft's chunked `InstallSnapshot` requests (chunk size
//! `snapshot_max_chunk_size`, 3 MiB by default, well under the frame limit).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use oxka_metadata::MetadataRecord;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::propose::{ProposeOutcome, Proposer};
use crate::{NodeId, TypeConfig};

/// The largest frame accepted: 64 MiB (snapshot chunks are 3 MiB by default; append-entries
/// batches are bounded by openraft's `max_payload_entries`).
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// The most connections [`serve`] keeps open at once; more are closed on accept. Three voters
/// need a handful (a replication stream and a vote client per peer).
pub const MAX_CONNECTIONS: usize = 64;

type RaftApiError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;

/// A request from one voter to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A proposal from a follower, for the leader to run as its own.
    Forward {
        based_on: u64,
        records: Vec<MetadataRecord>,
    },
}

/// The answer to a [`RaftRequest`] of the same name: the local `Raft`'s result, error included.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftApiError>),
    Vote(Result<VoteResponse<NodeId>, RaftApiError>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftApiError<InstallSnapshotError>>),
    Forward(ProposeOutcome),
}

/// When this node last heard from each peer (any answer to any request).
#[derive(Debug, Clone, Default)]
pub struct Contact {
    heard: Arc<Mutex<BTreeMap<NodeId, Instant>>>,
}

impl Contact {
    /// The peers heard from within the last `window`.
    pub fn heard_within(&self, window: Duration) -> Vec<NodeId> {
        self.heard
            .lock()
            .iter()
            .filter(|(_, at)| at.elapsed() <= window)
            .map(|(id, _)| *id)
            .collect()
    }

    fn heard(&self, peer: NodeId) {
        self.heard.lock().insert(peer, Instant::now());
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge { len: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one frame's payload; `None` on a clean end of stream before a frame starts.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let mut filled = 0;
    while filled < len.len() {
        match r.read(&mut len[filled..]).await? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            n => filled += n,
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { len });
    }
    // Bounded by MAX_FRAME_BYTES above, so allocating `len` is safe.
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME_BYTES)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {} bytes exceeds the limit", payload.len()),
            )
        })?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(payload).await?;
    w.flush().await
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// Makes a [`PeerClient`] for each peer openraft talks to.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    /// This node's id, for timeout reports.
    pub node_id: NodeId,
    /// Updated by every client this factory makes.
    pub contact: Contact,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient::new(
            self.node_id,
            target,
            node.addr.clone(),
            self.contact.clone(),
        )
    }
}

/// A connection to one peer, reopened on demand.
pub struct PeerClient {
    node_id: NodeId,
    target: NodeId,
    addr: String,
    conn: Option<Connection>,
    contact: Contact,
}

struct Connection {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
}

impl fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerClient")
            .field("target", &self.target)
            .field("addr", &self.addr)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// Why a call to a peer failed, before it is told to openraft.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("talking to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("reading a frame from {addr}: {source}")]
    Frame {
        addr: String,
        #[source]
        source: FrameError,
    },
    #[error("{addr} closed the connection before answering")]
    Closed { addr: String },
    #[error("{addr} sent an invalid response: {reason}")]
    Protocol { addr: String, reason: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl PeerClient {
    /// A client for peer `target` at `addr`; it connects on the first call.
    pub fn new(node_id: NodeId, target: NodeId, addr: String, contact: Contact) -> PeerClient {
        PeerClient {
            node_id,
            target,
            addr,
            conn: None,
            contact,
        }
    }

    /// Forwards a proposal to the peer (which should be the leader) and returns its outcome,
    /// within `ttl`. On an error the proposal may or may not have been committed.
    pub async fn forward(
        &mut self,
        based_on: u64,
        records: Vec<MetadataRecord>,
        ttl: Duration,
    ) -> Result<ProposeOutcome, CallError> {
        let request = RaftRequest::Forward { based_on, records };
        match self.call(&request, ttl).await? {
            RaftResponse::Forward(outcome) => Ok(outcome),
            _ => {
                self.conn = None;
                Err(CallError::Protocol {
                    addr: self.addr.clone(),
                    reason: "expected a Forward response".into(),
                })
            }
        }
    }

    /// Sends `request` and reads its response within `ttl`; drops the connection on failure.
    async fn call(
        &mut self,
        request: &RaftRequest,
        ttl: Duration,
    ) -> Result<RaftResponse, CallError> {
        let result = match tokio::time::timeout(ttl, self.call_inner(request)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(ttl)),
        };
        match result {
            Ok(_) => self.contact.heard(self.target),
            Err(_) => self.conn = None,
        }
        result
    }

    async fn call_inner(&mut self, request: &RaftRequest) -> Result<RaftResponse, CallError> {
        let addr = &self.addr;
        if self.conn.is_none() {
            let stream =
                TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|source| CallError::Connect {
                        addr: addr.clone(),
                        source,
                    })?;
            let _ = stream.set_nodelay(true);
            let (reader, writer) = stream.into_split();
            self.conn = Some(Connection {
                reader: BufReader::new(reader),
                writer: BufWriter::new(writer),
            });
        }
        let conn = self.conn.as_mut().expect("connected above");
        let payload = serde_json::to_vec(request).expect("raft requests always serialize");
        write_frame(&mut conn.writer, &payload)
            .await
            .map_err(|source| CallError::Io {
                addr: addr.clone(),
                source,
            })?;
        let frame = read_frame(&mut conn.reader)
            .await
            .map_err(|source| CallError::Frame {
                addr: addr.clone(),
                source,
            })?
            .ok_or_else(|| CallError::Closed { addr: addr.clone() })?;
        serde_json::from_slice(&frame).map_err(|e| CallError::Protocol {
            addr: addr.clone(),
            reason: e.to_string(),
        })
    }

    fn to_rpc_error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        e: CallError,
    ) -> RPCError<NodeId, BasicNode, E> {
        match e {
            CallError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Timeout(timeout) => RPCError::Timeout(Timeout {
                action,
                id: self.node_id,
                target: self.target,
                timeout,
            }),
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn mismatch<E: std::error::Error>(&self, expected: &str) -> RPCError<NodeId, BasicNode, E> {
        let e = CallError::Protocol {
            addr: self.addr.clone(),
            reason: format!("expected a {expected} response"),
        };
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftApiError>> {
        let request = RaftRequest::AppendEntries(rpc);
        match self.call(&request, option.hard_ttl()).await {
            Ok(RaftResponse::AppendEntries(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.mismatch("AppendEntries")),
            Err(e) => Err(self.to_rpc_error(RPCTypes::AppendEntries, e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftApiError<InstallSnapshotError>>,
    > {
        let request = RaftRequest::InstallSnapshot(rpc);
        match self.call(&request, option.hard_ttl()).await {
            Ok(RaftResponse::InstallSnapshot(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.mismatch("InstallSnapshot")),
            Err(e) => Err(self.to_rpc_error(RPCTypes::InstallSnapshot, e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftApiError>> {
        let request = RaftRequest::Vote(rpc);
        match self.call(&request, option.hard_ttl()).await {
            Ok(RaftResponse::Vote(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.mismatch("Vote")),
            Err(e) => Err(self.to_rpc_error(RPCTypes::Vote, e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Accepts peers on `listener` and hands their requests to `raft` (forwarded proposals to
/// `proposer`), until the task is aborted (which also ends every connection it accepted).
pub async fn serve(listener: TcpListener, raft: Raft<TypeConfig>, proposer: Proposer) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and the like: wait instead of spinning.
                tracing::warn!(error = %e, "raft listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if connections.len() >= MAX_CONNECTIONS {
            tracing::warn!(%peer, "closing a raft connection: {MAX_CONNECTIONS} already open");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        let proposer = proposer.clone();
        connections.spawn(async move {
            if let Err(e) = serve_connection(stream, &raft, &proposer).await {
                tracing::info!(%peer, error = %e, "closing raft connection");
            }
        });
    }
}

/// Why [`serve_connection`] closed a connection.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("invalid request: {0}")]
    Request(#[source] serde_json::Error),
    #[error("writing the response: {0}")]
    Write(#[source] io::Error),
}

async fn serve_connection(
    stream: TcpStream,
    raft: &Raft<TypeConfig>,
    proposer: &Proposer,
) -> Result<(), ServeError> {
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut writer = BufWriter::new(writer);
    while let Some(frame) = read_frame(&mut reader).await? {
        let request: RaftRequest = serde_json::from_slice(&frame).map_err(ServeError::Request)?;
        let response = match request {
            RaftRequest::AppendEntries(rpc) => {
                RaftResponse::AppendEntries(raft.append_entries(rpc).await)
            }
            RaftRequest::Vote(rpc) => RaftResponse::Vote(raft.vote(rpc).await),
            RaftRequest::InstallSnapshot(rpc) => {
                RaftResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            RaftRequest::Forward { based_on, records } => {
                RaftResponse::Forward(proposer.propose(based_on, records).await)
            }
        };
        let payload = serde_json::to_vec(&response).expect("raft responses always serialize");
        write_frame(&mut writer, &payload)
            .await
            .map_err(ServeError::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips_and_a_clean_end_reads_as_none() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"{\"a\":1}").await.unwrap();
        assert_eq!(&buf[..4], &7u32.to_be_bytes());
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).await.unwrap().unwrap(), b"{\"a\":1}");
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_allocating() {
        let len = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
        let mut r = &len[..];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::TooLarge { len }) if len == MAX_FRAME_BYTES + 1
        ));
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_an_error_not_a_clean_end() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"0123456789").await.unwrap();
        for cut in [2, 8] {
            let mut r = &buf[..cut];
            assert!(
                matches!(read_frame(&mut r).await, Err(FrameError::Io(_))),
                "cut at {cut}"
            );
        }
    }
}
