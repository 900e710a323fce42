//! [`RaftQuorum`]: the metadata log replicated by Raft across the controller quorum's voters.
//!
//! A proposal is one openraft `client_write` of the record batch: the leader appends it,
//! replicates it, and once a majority has it durable every node applies it to its image (the
//! state machine in [`crate::store`]), calling its subscribers in log order.
//!
//! **Proposals from any voter.** `propose(based_on, records)` on the leader (Kafka's active
//! controller) runs [`Proposer::propose`]: serialised, checked against the image once
//! everything committed is applied, then written (the module [`crate::propose`] says why that
//! check is sound). Any other voter forwards `(based_on, records)` to the leader it knows of
//! (`RaftRequest::Forward`, see [`crate::network`]) and, once the leader answers
//! `Committed { next_offset }`, waits until its own image reaches `next_offset` and returns
//! that image. While no leader is known (a cluster forming, an election) or the one it knew
//! says it no longer leads or cannot reach a majority, it waits and tries again, until the
//! propose timeout; then `Unavailable`. Trying again is safe even when an earlier attempt's
//! answer was lost: if that attempt is committed, the log no longer ends at `based_on` and
//! the retry is `Stale`, answered by the leader's early check or, if both reached the log, by
//! the state machine, which applies at most one batch based on one offset.
//! `NotController` is left for a leader this node has no address for.
//!
//! **Liveness.** On the leader, [`MetadataQuorum::live_nodes`] is itself plus the voters that
//! answered any of its requests (heartbeats included) within the session timeout.
//!
//! A new cluster is formed by every voter calling openraft's `initialize` with the full voter
//! set when it starts: the first to do so proposes the membership entry and asks for votes,
//! and the others' calls are refused as already initialised (which is expected and ignored).
//! Any majority of started voters can then elect a leader. On a restart the node's vote and
//! log are on disk and `initialize` is refused the same way.
//!
//! Thread-safety: `RaftQuorum` is `Send + Sync`; its methods take `&self`. The Raft node and
//! the peer server run as tasks on the tokio runtime `start` was called on; the blocking
//! `propose` and `wait_for` block on that runtime, so they must not run on its worker threads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::InitializeError;
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use oxka_metadata::{ImageListener, MetadataImage, MetadataQuorum, MetadataRecord, QuorumError};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::network::{serve, Contact, NetworkFactory, PeerClient};
use crate::propose::{ProposeOutcome, Proposer};
use crate::store::{self, Published};
use crate::{NodeId, RaftError, TypeConfig};

/// How to start one voter of the quorum.
#[derive(Debug)]
pub struct RaftConfig {
    /// This node's id (Kafka `node.id`); must be one of `voters`.
    pub node_id: NodeId,
    /// Every voter's id and Raft address (`controller.quorum.voters`).
    pub voters: Vec<(NodeId, SocketAddr)>,
    /// Where the Raft state lives: `<metadata.log.dir>/__cluster_metadata-0/raft/`.
    pub dir: PathBuf,
    /// A listener already bound for this node's Raft address; `None` binds its voter address.
    pub listener: Option<std::net::TcpListener>,
    /// How often the leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// A follower that hears no leader for a random time in `[min, max)` starts an election.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How long `propose` waits for its records to be committed before `Unavailable`, waiting
    /// for a leader and forwarding included.
    pub propose_timeout: Duration,
    /// A voter the leader has not heard from for this long is not live
    /// ([`MetadataQuorum::live_nodes`]); Kafka's `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// A snapshot is taken after this many entries since the last one.
    pub snapshot_after_entries: u64,
    /// How many entries before the last snapshot are kept in the log (for lagging followers).
    pub entries_kept_after_snapshot: u64,
}

impl RaftConfig {
    /// A configuration with Kafka-like timings: heartbeat 200 ms, election timeout 1–2 s,
    /// proposals time out after 5 s, sessions after 9 s; a snapshot every 5000 entries, keeping
    /// 1000.
    pub fn new(node_id: NodeId, voters: Vec<(NodeId, SocketAddr)>, dir: PathBuf) -> RaftConfig {
        RaftConfig {
            node_id,
            voters,
            dir,
            listener: None,
            heartbeat_interval: Duration::from_millis(200),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            propose_timeout: Duration::from_secs(5),
            session_timeout: Duration::from_secs(9),
            snapshot_after_entries: 5000,
            entries_kept_after_snapshot: 1000,
        }
    }
}

/// Parses Kafka's `controller.quorum.voters`: comma-separated `id@host:port` entries
/// (`1@127.0.0.1:19093,2@localhost:19094`), host names resolved (the first address each
/// resolves to). Whitespace around entries is ignored. Refuses an empty list, an entry
/// without `@`, an id that is not a non-negative Kafka node id, a missing or bad port, a host
/// that does not resolve, and an id listed twice, naming the entry.
pub fn parse_voters(s: &str) -> Result<Vec<(NodeId, SocketAddr)>, RaftError> {
    use std::net::ToSocketAddrs;

    let bad = |entry: &str, why: String| {
        RaftError::Config(format!(
            "controller.quorum.voters entry {entry:?}: {why} (expected id@host:port)"
        ))
    };
    let mut voters: Vec<(NodeId, SocketAddr)> = Vec::new();
    for entry in s.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(bad(entry, "empty entry".into()));
        }
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| bad(entry, "no '@'".into()))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|e| bad(entry, format!("node id {id:?}: {e}")))?;
        let id = NodeId::try_from(id).map_err(|_| bad(entry, format!("negative node id {id}")))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad(entry, "no port".into()))?;
        if host.is_empty() {
            return Err(bad(entry, "no host".into()));
        }
        port.parse::<u16>()
            .map_err(|e| bad(entry, format!("port {port:?}: {e}")))?;
        let addr = address
            .to_socket_addrs()
            .map_err(|e| bad(entry, format!("resolving {host:?}: {e}")))?
            .next()
            .ok_or_else(|| bad(entry, format!("{host:?} resolves to no address")))?;
        if voters.iter().any(|(other, _)| *other == id) {
            return Err(bad(entry, format!("node id {id} is listed twice")));
        }
        voters.push((id, addr));
    }
    Ok(voters)
}

/// One voter of the Raft metadata quorum.
pub struct RaftQuorum {
    node_id: NodeId,
    raft: Raft<TypeConfig>,
    published: Arc<Published>,
    runtime: Handle,
    propose_timeout: Duration,
    session_timeout: Duration,
    proposer: Proposer,
    /// One connection per other voter for forwarded proposals, used one proposal at a time.
    forwarders: BTreeMap<NodeId, tokio::sync::Mutex<PeerClient>>,
    contact: Contact,
    local_addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl RaftQuorum {
    /// Opens the Raft state under `config.dir`, starts the Raft node and its peer server on the
    /// current tokio runtime, and initialises the cluster if this node has no vote or log yet.
    /// Returns once the node runs; a leader is elected in the background.
    pub async fn start(config: RaftConfig) -> Result<Arc<RaftQuorum>, RaftError> {
        let members = voter_nodes(config.node_id, &config.voters)?;
        let raft_config = Config {
            cluster_name: "oxka-metadata".into(),
            heartbeat_interval: millis(config.heartbeat_interval),
            election_timeout_min: millis(config.election_timeout_min),
            election_timeout_max: millis(config.election_timeout_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries),
            max_in_snapshot_log_to_keep: config.entries_kept_after_snapshot,
            ..Config::default()
        }
        .validate()?;

        let (log_store, state_machine) = store::open(&config.dir)?;
        let published = state_machine.published();
        let contact = Contact::default();
        let network = NetworkFactory {
            node_id: config.node_id,
            contact: contact.clone(),
        };
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await?;

        let own_addr = members[&config.node_id]
            .addr
            .parse::<SocketAddr>()
            .expect("built from a SocketAddr");
        let listener = match config.listener {
            Some(listener) => listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener)),
            None => tokio::net::TcpListener::bind(own_addr).await,
        }
        .map_err(|source| RaftError::Bind {
            addr: own_addr,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| RaftError::Bind {
            addr: own_addr,
            source,
        })?;
        let proposer = Proposer::new(raft.clone(), published.clone(), config.propose_timeout);
        let server = tokio::spawn(serve(listener, raft.clone(), proposer.clone()));
        let forwarders = members
            .iter()
            .filter(|(id, _)| **id != config.node_id)
            .map(|(id, node)| {
                let client =
                    PeerClient::new(config.node_id, *id, node.addr.clone(), contact.clone());
                (*id, tokio::sync::Mutex::new(client))
            })
            .collect();

        let quorum = Arc::new(RaftQuorum {
            node_id: config.node_id,
            raft: raft.clone(),
            published,
            runtime: Handle::current(),
            propose_timeout: config.propose_timeout,
            session_timeout: config.session_timeout,
            proposer,
            forwarders,
            contact,
            local_addr,
            server: Mutex::new(Some(server)),
        });
        match raft.initialize(members).await {
            Ok(()) => tracing::info!(node_id = config.node_id, "initialized the metadata quorum"),
            Err(openraft::error::RaftError::APIError(InitializeError::NotAllowed(_))) => {
                tracing::debug!(
                    node_id = config.node_id,
                    "metadata quorum already initialized"
                );
            }
            Err(e) => {
                quorum.shutdown().await;
                return Err(e.into());
            }
        }
        Ok(quorum)
    }

    /// The openraft node, for metrics and tests.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The address the peer server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// [`MetadataQuorum::propose`] for async callers: on the leader, runs the proposal; on
    /// another voter, forwards it to the leader (waiting for one to be known) and then waits
    /// until this node has applied it. Gives up after the propose timeout with `Unavailable`
    /// (the records may still be committed later, as with any timed-out write to a quorum).
    /// Returns an image that includes the records: the one right after them on the leader.
    pub async fn propose_async(
        &self,
        based_on: u64,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        self.propose_inner(based_on, records, false).await
    }

    /// `propose_async`; with `leader_only` never forwarded (NotController once another node
    /// leads, or no leader is known).
    async fn propose_inner(
        &self,
        based_on: u64,
        records: Vec<MetadataRecord>,
        leader_only: bool,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        let deadline = tokio::time::Instant::now() + self.propose_timeout;
        let unavailable = |why: &str| {
            QuorumError::Unavailable(format!("{why}; gave up after {:?}", self.propose_timeout))
        };
        // Why the last attempt failed, for the answer at the deadline.
        let mut last_failure = String::from("the proposal was not committed");
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Err(unavailable(&last_failure));
            }
            let leader = self.raft.metrics().borrow().current_leader;
            if leader_only && leader != Some(self.node_id) {
                return Err(QuorumError::NotController {
                    leader: leader.and_then(kafka_id),
                });
            }
            let outcome = match leader {
                None => {
                    let elected = self
                        .raft
                        .wait(Some(remaining))
                        .metrics(|m| m.current_leader.is_some(), "a leader is known")
                        .await;
                    if elected.is_err() {
                        return Err(unavailable("no leader was elected"));
                    }
                    continue;
                }
                Some(leader) if leader == self.node_id => {
                    // The proposer has its own timeout; the deadline bounds the whole call.
                    match tokio::time::timeout(
                        remaining,
                        self.proposer.propose(based_on, records.clone()),
                    )
                    .await
                    {
                        Ok(outcome) => outcome,
                        Err(_) => return Err(unavailable("the proposal was not committed")),
                    }
                }
                Some(leader) => {
                    let Some(forwarder) = self.forwarders.get(&leader) else {
                        return Err(QuorumError::NotController {
                            leader: kafka_id(leader),
                        });
                    };
                    // Waiting for this node's earlier proposal to free the connection counts
                    // against the deadline too.
                    let forwarded = tokio::time::timeout(remaining, async {
                        let mut forwarder = forwarder.lock().await;
                        let remaining =
                            deadline.saturating_duration_since(tokio::time::Instant::now());
                        forwarder
                            .forward(based_on, records.clone(), remaining)
                            .await
                    });
                    match forwarded.await {
                        Ok(Ok(outcome)) => outcome,
                        Ok(Err(e)) => {
                            tracing::debug!(node_id = self.node_id, leader, error = %e,
                                "forwarding a proposal failed; retrying");
                            ProposeOutcome::Unavailable(format!(
                                "forwarding to the leader {leader}: {e}"
                            ))
                        }
                        Err(_) => return Err(unavailable("the proposal was not committed")),
                    }
                }
            };
            match outcome {
                ProposeOutcome::Committed { next_offset } => {
                    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                    return self
                        .published
                        .wait_for(next_offset, remaining)
                        .await
                        .ok_or_else(|| {
                            unavailable(&format!(
                                "committed up to {next_offset} but not applied on this node"
                            ))
                        });
                }
                ProposeOutcome::Stale { next_offset } => {
                    return Err(QuorumError::Stale { next_offset })
                }
                // Leadership is moving, the leader is unreachable or could not reach a majority
                // yet: try again once this node has had time to hear of a change. Safe even if
                // the failed attempt is committed after all: then this one is Stale.
                ProposeOutcome::NotLeader { leader } => {
                    last_failure = format!("the leader moved (to {leader:?})");
                    let pause = RETRY_PAUSE
                        .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    tokio::time::sleep(pause).await;
                }
                ProposeOutcome::Unavailable(why) => {
                    last_failure = why;
                    let pause = RETRY_PAUSE
                        .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Stops this voter: closes its peer server (listener and connections) and shuts the Raft
    /// node down. The state on disk stays, for a later `start` on the same directory.
    pub async fn shutdown(&self) {
        if let Some(server) = self.server.lock().take() {
            server.abort();
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(node_id = self.node_id, error = %e, "raft core ended abnormally");
        }
    }
}

impl Drop for RaftQuorum {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().take() {
            server.abort();
        }
    }
}

impl fmt::Debug for RaftQuorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftQuorum")
            .field("node_id", &self.node_id)
            .field("local_addr", &self.local_addr)
            .field("leader", &self.raft.metrics().borrow().current_leader)
            .field("next_offset", &self.published.image().next_offset)
            .finish_non_exhaustive()
    }
}

impl MetadataQuorum for RaftQuorum {
    fn node_id(&self) -> i32 {
        kafka_id(self.node_id).expect("node ids come from Kafka's i32 node.id")
    }

    fn leader(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(kafka_id)
    }

    /// Blocks the calling thread on [`RaftQuorum::propose_async`] with the runtime `start`
    /// ran on. Must not be called from a runtime worker thread (tokio panics: a runtime cannot
    /// block on itself); call it from `spawn_blocking` or a plain thread.
    fn propose(
        &self,
        based_on: u64,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        self.runtime.block_on(self.propose_async(based_on, records))
    }

    fn propose_as_leader(
        &self,
        based_on: u64,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        self.runtime
            .block_on(self.propose_inner(based_on, records, true))
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.published.image()
    }

    /// Blocking, like `propose`, and for the same reason not on a runtime worker thread.
    fn wait_for(
        &self,
        next_offset: u64,
        timeout: Duration,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        self.runtime
            .block_on(self.published.wait_for(next_offset, timeout))
            .ok_or_else(|| {
                QuorumError::Unavailable(format!(
                    "this node did not apply the metadata log up to {next_offset} within \
                     {timeout:?} (it is at {})",
                    self.published.image().next_offset
                ))
            })
    }

    fn live_nodes(&self) -> Option<Vec<i32>> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader || metrics.current_leader != Some(self.node_id) {
            return None;
        }
        let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        let mut live = vec![self.node_id];
        live.extend(self.contact.heard_within(self.session_timeout));
        let mut live: Vec<i32> = live
            .into_iter()
            .filter(|id| voters.contains(id))
            .filter_map(kafka_id)
            .collect();
        live.sort_unstable();
        live.dedup();
        Some(live)
    }

    fn subscribe(&self, listener: ImageListener) {
        self.published.subscribe(listener);
    }
}

/// The voters as openraft members, checking that `node_id` is one and ids are unique.
fn voter_nodes(
    node_id: NodeId,
    voters: &[(NodeId, SocketAddr)],
) -> Result<BTreeMap<NodeId, BasicNode>, RaftError> {
    let mut members = BTreeMap::new();
    for &(id, addr) in voters {
        if kafka_id(id).is_none() {
            return Err(RaftError::Config(format!(
                "voter id {id} is not a Kafka node id"
            )));
        }
        let node = BasicNode {
            addr: addr.to_string(),
        };
        if members.insert(id, node).is_some() {
            return Err(RaftError::Config(format!("voter {id} is listed twice")));
        }
    }
    if !members.contains_key(&node_id) {
        let ids: BTreeSet<_> = members.keys().collect();
        return Err(RaftError::Config(format!(
            "node {node_id} is not one of the voters {ids:?}"
        )));
    }
    Ok(members)
}

/// How long a forwarding voter waits before trying again after the node it took for the
/// leader said it was not, or could not be reached.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

fn kafka_id(id: NodeId) -> Option<i32> {
    i32::try_from(id).ok()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_voters_reads_ids_addresses_and_host_names() {
        let voters = parse_voters("1@127.0.0.1:19093, 2@localhost:19094,3@[::1]:19095").unwrap();
        assert_eq!(voters[0], (1, "127.0.0.1:19093".parse().unwrap()));
        assert_eq!(voters[1].0, 2);
        assert!(
            voters[1].1.ip().is_loopback(),
            "localhost resolves to a loopback address"
        );
        assert_eq!(voters[1].1.port(), 19094);
        assert_eq!(voters[2], (3, "[::1]:19095".parse().unwrap()));
    }

    #[test]
    fn parse_voters_names_the_bad_entry() {
        for (voters, expected) in [
            ("", "empty entry"),
            ("1@127.0.0.1:1,", "empty entry"),
            ("127.0.0.1:19093", "no '@'"),
            ("x@127.0.0.1:19093", "node id \"x\""),
            ("-1@127.0.0.1:19093", "negative node id -1"),
            ("4294967296@127.0.0.1:1", "node id \"4294967296\""),
            ("1@127.0.0.1", "no port"),
            ("1@:19093", "no host"),
            ("1@127.0.0.1:99999", "port \"99999\""),
            (
                "1@no-such-host.invalid:19093",
                "resolving \"no-such-host.invalid\"",
            ),
            ("1@127.0.0.1:1,1@127.0.0.1:2", "node id 1 is listed twice"),
        ] {
            match parse_voters(voters) {
                Err(RaftError::Config(message)) => assert!(
                    message.contains(expected),
                    "{voters:?}: {message:?} should contain {expected:?}"
                ),
                other => panic!("{voters:?}: expected a Config error, got {other:?}"),
            }
        }
    }
}
