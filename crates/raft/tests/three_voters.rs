//! Three `RaftQuorum` voters in one process, on 127.0.0.1 ephemeral ports with temp dirs:
//! election, replication in log order, proposals forwarded from followers, fail-over, catch-up of a
//! restarted voter (from the log, and through a snapshot), and Unavailable without a majority.
//!
//! Every wait is bounded: polled every 50 ms, given up after 10 s with a message that says what
//! did not happen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use oxka_metadata::{MetadataImage, MetadataQuorum, MetadataRecord, QuorumError};
use oxka_raft::{RaftConfig, RaftQuorum};
use parking_lot::Mutex;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(10);
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Short, so a stopped voter drops out of `live_nodes` quickly (heartbeats are every 50 ms).
const SESSION_TIMEOUT: Duration = Duration::from_millis(600);

/// What one node's subscriber saw: `(next_offset, next_producer_id)` of each image.
type Seen = Arc<Mutex<Vec<(u64, i64)>>>;

struct Cluster {
    voters: Vec<(u64, SocketAddr)>,
    dirs: Vec<TempDir>,
    nodes: Vec<Option<Arc<RaftQuorum>>>,
    seen: Vec<Seen>,
    /// Snapshot every this many entries, keeping none before it (0: the default policy).
    snapshot_after_entries: u64,
    /// `RaftConfig::new`'s timings instead of the tests' fast ones.
    default_timings: bool,
}

impl Cluster {
    async fn start(snapshot_after_entries: u64) -> Cluster {
        Cluster::start_with(snapshot_after_entries, false).await
    }

    async fn start_with(snapshot_after_entries: u64, default_timings: bool) -> Cluster {
        let listeners: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let voters: Vec<(u64, SocketAddr)> = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap()))
            .collect();
        let mut cluster = Cluster {
            voters,
            dirs: (0..3).map(|_| tempfile::tempdir().unwrap()).collect(),
            nodes: vec![None, None, None],
            seen: Vec::new(),
            snapshot_after_entries,
            default_timings,
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            cluster.start_node(i, Some(listener)).await;
        }
        cluster
    }

    fn config(&self, i: usize, listener: Option<TcpListener>) -> RaftConfig {
        let mut config = RaftConfig::new(
            self.voters[i].0,
            self.voters.clone(),
            self.dirs[i].path().join("__cluster_metadata-0/raft"),
        );
        config.listener = listener;
        if self.default_timings {
            return config;
        }
        config.heartbeat_interval = Duration::from_millis(50);
        config.election_timeout_min = Duration::from_millis(300);
        config.election_timeout_max = Duration::from_millis(600);
        config.propose_timeout = PROPOSE_TIMEOUT;
        config.session_timeout = SESSION_TIMEOUT;
        if self.snapshot_after_entries > 0 {
            config.snapshot_after_entries = self.snapshot_after_entries;
            config.entries_kept_after_snapshot = 0;
        }
        config
    }

    /// Starts node `i` (index into `voters`) and subscribes to its images.
    async fn start_node(&mut self, i: usize, listener: Option<TcpListener>) {
        let node = RaftQuorum::start(self.config(i, listener)).await.unwrap();
        let seen: Seen = Arc::default();
        let seen2 = seen.clone();
        node.subscribe(Box::new(move |image| {
            seen2
                .lock()
                .push((image.next_offset, image.next_producer_id))
        }));
        if i < self.seen.len() {
            self.seen[i] = seen;
        } else {
            self.seen.push(seen);
        }
        self.nodes[i] = Some(node);
    }

    /// Stops node `i`: its peer server closes and its Raft node shuts down.
    async fn stop_node(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("node is running");
        node.shutdown().await;
    }

    fn node(&self, i: usize) -> &Arc<RaftQuorum> {
        self.nodes[i].as_ref().expect("node is running")
    }

    fn running(&self) -> impl Iterator<Item = (usize, &Arc<RaftQuorum>)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    fn index_of(&self, node_id: i32) -> usize {
        self.voters
            .iter()
            .position(|(id, _)| *id == node_id as u64)
            .unwrap()
    }

    /// Waits until one running node is leader and every running node names it; its index.
    async fn leader(&self) -> usize {
        let mut found = None;
        wait_until("the running voters agree on a leader", || {
            let leaders: Vec<Option<i32>> = self.running().map(|(_, n)| n.leader()).collect();
            let Some(Some(leader)) = leaders.first().copied() else {
                return false;
            };
            if leaders.iter().any(|l| *l != Some(leader)) {
                return false;
            }
            let i = self.index_of(leader);
            let is_leader = self.nodes[i]
                .as_ref()
                .is_some_and(|n| n.raft().metrics().borrow().state == ServerState::Leader);
            if is_leader {
                found = Some(i);
            }
            is_leader
        })
        .await;
        found.unwrap()
    }

    /// Waits until every running node has applied `next_offset` records.
    async fn all_applied(&self, next_offset: u64) {
        wait_until(
            &format!("every running voter applies {next_offset} records"),
            || {
                self.running()
                    .all(|(_, n)| n.image().next_offset == next_offset)
            },
        )
        .await;
    }

    async fn shutdown(mut self) {
        for i in 0..3 {
            if self.nodes[i].is_some() {
                self.stop_node(i).await;
            }
        }
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "gave up after {WAIT:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `MetadataQuorum::propose` based on the node's current image, from a blocking thread as
/// callers must.
async fn propose(
    node: &Arc<RaftQuorum>,
    records: Vec<MetadataRecord>,
) -> Result<Arc<MetadataImage>, QuorumError> {
    let based_on = node.image().next_offset;
    propose_at(node, based_on, records).await
}

/// `MetadataQuorum::propose` at `based_on`, from a blocking thread.
async fn propose_at(
    node: &Arc<RaftQuorum>,
    based_on: u64,
    records: Vec<MetadataRecord>,
) -> Result<Arc<MetadataImage>, QuorumError> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || node.propose(based_on, records))
        .await
        .unwrap()
}

/// What a controller does with one change: propose it based on the node's image and, on
/// `Stale`, wait for the newer image and propose again. Blocking.
fn propose_until_committed(node: &RaftQuorum, record: MetadataRecord) -> Arc<MetadataImage> {
    let mut based_on = node.image().next_offset;
    for _ in 0..10 {
        match node.propose(based_on, vec![record.clone()]) {
            Ok(image) => return image,
            Err(QuorumError::Stale { next_offset }) => {
                based_on = node.wait_for(next_offset, WAIT).unwrap().next_offset;
            }
            Err(e) => panic!("node {} could not propose: {e}", node.node_id()),
        }
    }
    panic!("node {} was Stale 10 times in a row", node.node_id());
}

fn producer_ids(start: i64) -> MetadataRecord {
    MetadataRecord::ProducerIds {
        next_block_start: start,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_a_leader_and_apply_its_proposals_in_the_same_order_everywhere() {
    let cluster = Cluster::start(0).await;
    let leader = cluster.leader().await;
    // Batches of one and two records: applied whole, each batch one image.
    let mut expected = Vec::new();
    let mut next_offset = 0;
    for b in 1..=5i64 {
        let records: Vec<_> = (0..(b % 2 + 1))
            .map(|r| producer_ids(b * 1000 + r))
            .collect();
        next_offset += records.len() as u64;
        let last_start = b * 1000 + b % 2;
        let image = propose(cluster.node(leader), records).await.unwrap();
        assert!(image.next_offset >= next_offset);
        expected.push((next_offset, last_start));
    }
    cluster.all_applied(next_offset).await;
    for (i, node) in cluster.running() {
        assert_eq!(node.image().next_producer_id, 5001, "node {i}'s image");
        assert_eq!(*cluster.seen[i].lock(), expected, "node {i}'s subscriber");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_on_a_follower_is_forwarded_to_the_leader_and_its_image_includes_it() {
    let cluster = Cluster::start(0).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let image = propose_at(cluster.node(follower), 0, vec![producer_ids(4242)])
        .await
        .unwrap();
    assert_eq!(image.next_offset, 1, "the follower's image has the batch");
    assert_eq!(image.next_producer_id, 4242);
    assert_eq!(cluster.node(follower).image().next_offset, 1);
    cluster.all_applied(1).await;
    assert_eq!(cluster.node(leader).image().next_producer_id, 4242);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_followers_proposing_at_the_same_offset_commit_exactly_one_and_the_other_is_stale() {
    let cluster = Cluster::start(0).await;
    let leader = cluster.leader().await;
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let (a, b) = tokio::join!(
        propose_at(cluster.node(followers[0]), 0, vec![producer_ids(1000)]),
        propose_at(cluster.node(followers[1]), 0, vec![producer_ids(2000)]),
    );
    let winner = match (&a, &b) {
        (Ok(image), Err(QuorumError::Stale { next_offset: 1 })) => image,
        (Err(QuorumError::Stale { next_offset: 1 }), Ok(image)) => image,
        other => panic!("expected one commit and one Stale at offset 1, got {other:?}"),
    };
    assert_eq!(winner.next_offset, 1);
    cluster.all_applied(1).await;
    let committed = cluster.node(leader).image().next_producer_id;
    assert_eq!(
        winner.next_producer_id, committed,
        "the winner's batch is the one committed"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_cluster_accepts_a_proposal_from_every_voter_and_all_images_agree() {
    let cluster = Cluster::start(0).await;
    let started = Instant::now();
    // No waiting for a leader: each voter proposes as soon as it runs.
    let proposals: Vec<_> = cluster
        .running()
        .map(|(i, node)| {
            let node = node.clone();
            tokio::task::spawn_blocking(move || {
                propose_until_committed(&node, producer_ids(1000 * (i as i64 + 1)))
            })
        })
        .collect();
    for (i, proposal) in proposals.into_iter().enumerate() {
        let image = proposal.await.unwrap();
        assert!(image.next_offset >= 1, "node {i}'s image has its batch");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the proposals took {took:?}");
    cluster.all_applied(3).await;
    // A subscriber is called just after the image is published.
    wait_until("every subscriber sees three images", || {
        cluster.seen.iter().all(|seen| seen.lock().len() == 3)
    })
    .await;
    let seen0 = cluster.seen[0].lock().clone();
    assert_eq!(seen0.len(), 3, "three batches, each one image: {seen0:?}");
    // Three proposals answered Ok and three batches applied: each committed exactly once.
    let offsets: Vec<u64> = seen0.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(offsets, vec![1, 2, 3]);
    // The image keeps the highest block start.
    assert_eq!(seen0[2].1, 3000);
    for i in 1..3 {
        assert_eq!(
            *cluster.seen[i].lock(),
            seen0,
            "node {i} saw the same images"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_default_timings_a_fresh_cluster_takes_a_follower_proposal_within_a_few_seconds() {
    let cluster = Cluster::start_with(0, true).await;
    let started = Instant::now();
    // Node 3 proposes at once: it waits for a leader, and forwards unless it is elected.
    let node = cluster.node(2).clone();
    let image =
        tokio::task::spawn_blocking(move || propose_until_committed(&node, producer_ids(7)))
            .await
            .unwrap();
    let took = started.elapsed();
    assert_eq!(image.next_offset, 1);
    // An election timeout of 1–2 s, then a round trip or two.
    assert!(took < Duration::from_secs(4), "the proposal took {took:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_nodes_on_the_leader_drops_a_stopped_voter_after_the_session_timeout() {
    let mut cluster = Cluster::start(0).await;
    let leader = cluster.leader().await;
    let ids: Vec<i32> = cluster.running().map(|(_, n)| n.node_id()).collect();
    wait_until("the leader hears from every voter", || {
        cluster.node(leader).live_nodes().as_deref() == Some(&ids[..])
    })
    .await;
    for (i, node) in cluster.running().filter(|(i, _)| *i != leader) {
        assert_eq!(node.live_nodes(), None, "node {i} is a follower");
    }
    let stopped = (leader + 1) % 3;
    let stopped_id = cluster.node(stopped).node_id();
    cluster.stop_node(stopped).await;
    let at = Instant::now();
    wait_until("the stopped voter drops out of live_nodes", || {
        cluster
            .node(leader)
            .live_nodes()
            .is_some_and(|live| !live.contains(&stopped_id))
    })
    .await;
    let took = at.elapsed();
    // Heard from at most one heartbeat interval before it stopped.
    assert!(
        took + Duration::from_millis(100) >= SESSION_TIMEOUT,
        "dropped after {took:?}, before the {SESSION_TIMEOUT:?} session timeout"
    );
    let live = cluster.node(leader).live_nodes().unwrap();
    let expected: Vec<i32> = ids.iter().copied().filter(|id| *id != stopped_id).collect();
    assert_eq!(live, expected);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_an_offset_never_reached_is_unavailable_after_its_timeout() {
    let cluster = Cluster::start(0).await;
    let leader = cluster.leader().await;
    propose(cluster.node(leader), vec![producer_ids(1)])
        .await
        .unwrap();
    cluster.all_applied(1).await;
    for (i, node) in cluster.running() {
        let node = node.clone();
        let (reached, waited) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let reached = node
                .wait_for(1, Duration::from_millis(300))
                .map(|image| image.next_offset);
            let result = node.wait_for(2, Duration::from_millis(300));
            (reached, (result, started.elapsed()))
        })
        .await
        .unwrap();
        assert_eq!(reached.unwrap(), 1, "node {i} has applied offset 1");
        let (result, took) = waited;
        assert!(
            matches!(result, Err(QuorumError::Unavailable(_))),
            "node {i}: expected Unavailable, got {result:?}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "node {i} answered after {took:?}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_stops_a_new_leader_commits_with_two_of_three_and_the_old_one_catches_up() {
    let mut cluster = Cluster::start(0).await;
    let old = cluster.leader().await;
    let old_id = cluster.node(old).node_id();
    propose(cluster.node(old), vec![producer_ids(100)])
        .await
        .unwrap();
    cluster.all_applied(1).await;

    cluster.stop_node(old).await;
    let new = cluster.leader().await;
    assert_ne!(
        cluster.node(new).node_id(),
        old_id,
        "a new leader is elected"
    );
    for b in 1..=5 {
        propose(cluster.node(new), vec![producer_ids(200 + b)])
            .await
            .unwrap();
    }
    cluster.all_applied(6).await;

    // Restarted from its directory, on its address (rebound: its listener was closed).
    cluster.start_node(old, None).await;
    cluster.all_applied(6).await;
    assert_eq!(cluster.node(old).image().next_producer_id, 205);

    // And it follows what comes next, its subscriber included.
    let leader = cluster.leader().await;
    propose(cluster.node(leader), vec![producer_ids(300)])
        .await
        .unwrap();
    cluster.all_applied(7).await;
    assert_eq!(cluster.seen[old].lock().last(), Some(&(7, 300)));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_behind_a_leader_that_purged_its_log_catches_up_through_a_snapshot() {
    // A snapshot every 3 entries, keeping no log before it. A leader keeps the entries its
    // replication to a stopped voter still needs, a follower does not: so the voter that
    // stops first is behind the *other follower's* purged log, and when that follower leads
    // it can only send a snapshot.
    let mut cluster = Cluster::start(3).await;
    let first = cluster.leader().await;
    propose(cluster.node(first), vec![producer_ids(100)])
        .await
        .unwrap();
    cluster.all_applied(1).await;
    cluster.stop_node(first).await;

    let second = cluster.leader().await;
    let third = (0..3).find(|i| *i != first && *i != second).unwrap();
    for b in 1..=10 {
        propose(cluster.node(second), vec![producer_ids(200 + b)])
            .await
            .unwrap();
    }
    cluster.all_applied(11).await;
    wait_until(
        "the follower purges the log the stopped voter needs",
        || {
            let purged = cluster.node(third).raft().metrics().borrow().purged;
            purged.is_some_and(|p| p.index > 3)
        },
    )
    .await;

    cluster.stop_node(second).await;
    cluster.start_node(first, None).await;
    // Only `third` has the committed log, so only it can be elected.
    assert_eq!(cluster.leader().await, third);
    cluster.all_applied(11).await;
    assert_eq!(cluster.node(first).image().next_producer_id, 210);
    // The image is published while the snapshot is installed, the metrics a moment later.
    wait_until(
        "the restarted voter's metrics show the snapshot it installed",
        || {
            let snapshot = cluster.node(first).raft().metrics().borrow().snapshot;
            snapshot.is_some_and(|s| s.index > 3)
        },
    )
    .await;

    propose(cluster.node(third), vec![producer_ids(300)])
        .await
        .unwrap();
    cluster.start_node(second, None).await;
    cluster.all_applied(12).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_a_proposal_fails_unavailable_within_its_timeout() {
    let mut cluster = Cluster::start(0).await;
    let leader = cluster.leader().await;
    for i in (0..3).filter(|i| *i != leader) {
        cluster.stop_node(i).await;
    }
    let started = Instant::now();
    let result = propose(cluster.node(leader), vec![producer_ids(1)]).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(QuorumError::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
    assert!(
        took < PROPOSE_TIMEOUT + Duration::from_secs(1),
        "answered after {took:?}, the timeout is {PROPOSE_TIMEOUT:?}"
    );
    assert_eq!(cluster.node(leader).image().next_offset, 0);
    cluster.shutdown().await;
}

/// Sends `bytes` to `addr` and reads until the peer closes; panics if it does not within 10 s.
fn peer_closes_after(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection closed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_closes_only_its_own_connection() {
    let cluster = Cluster::start(0).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let addr = cluster.node(follower).local_addr();
    tokio::task::spawn_blocking(move || {
        // A length over the limit, then a frame that is not a request.
        peer_closes_after(addr, &u32::MAX.to_be_bytes());
        let mut frame = 5u32.to_be_bytes().to_vec();
        frame.extend_from_slice(b"hello");
        peer_closes_after(addr, &frame);
    })
    .await
    .unwrap();
    // The follower still replicates from the leader.
    propose(cluster.node(leader), vec![producer_ids(7)])
        .await
        .unwrap();
    cluster.all_applied(1).await;
    cluster.shutdown().await;
}
