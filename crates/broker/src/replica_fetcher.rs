//! The follower side of replication (Kafka's ReplicaFetcherThread): one task per leader broker
//! fetches every partition this broker follows from that leader, over the public protocol with
//! this broker's id as `replica_id`, and appends what it gets with the leader's offsets.
//!
//! A partition starts in *truncating*: before its first fetch in a leader epoch the follower
//! asks the leader where its own latest epoch ends (OffsetsForLeaderEpoch, KIP-101/279, the
//! exchange decided by `oxka_replication::follower`) and removes whatever it has past that,
//! so that a replica which was ahead of the new leader (records never committed) rejoins with
//! the leader's history. Then it fetches from its log end; every fetch also tells the leader how
//! far this replica has got, which is what moves the leader's high watermark and ISR.
//!
//! The set of followed partitions comes from the metadata image ([`ReplicaFetchers::update`]),
//! so leader changes reach the fetchers without any other signal: a partition whose leader
//! epoch changed is truncated again, one no longer followed is dropped, a leader no longer
//! followed for anything has its task ended by the supervisor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use oxka_client::Connection;
use oxka_protocol::kafka_protocol;
use oxka_replication::follower::{self, EpochEndOffset, TruncationStart, TruncationStep};
use oxka_replication::{LeaderEpoch, Offset};
use tokio::sync::watch;

use crate::partition::{FollowerSet, Partition};
use crate::Broker;

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// How soon a partition the leader refused (it has not applied the image that makes it
/// leader yet, or this replica has not) is asked again: images reach every node within
/// milliseconds, and a failover waits on this.
const RETRY_REFUSED: Duration = Duration::from_millis(100);

/// How long a fetch waits at the leader for new records (`replica.fetch.wait.max.ms`).
const DEFAULT_FETCH_WAIT_MS: i32 = 500;
/// The pause after a failed connection or request before trying again
/// (`replica.fetch.backoff.ms`).
const BACKOFF: Duration = Duration::from_millis(1000);

/// The replica fetchers of one broker: fed the followed partitions after every image.
#[derive(Debug)]
pub(crate) struct ReplicaFetchers {
    followed: watch::Sender<Arc<FollowerSet>>,
}

impl Default for ReplicaFetchers {
    fn default() -> Self {
        ReplicaFetchers {
            followed: watch::Sender::new(Arc::new(FollowerSet::new())),
        }
    }
}

impl ReplicaFetchers {
    /// What this broker follows now, by leader (from `PartitionManager::sync_roles`).
    pub(crate) fn update(&self, followed: FollowerSet) {
        let changed = {
            let current = self.followed.borrow();
            !same_set(&current, &followed)
        };
        if changed {
            self.followed.send_replace(Arc::new(followed));
        }
    }

    /// Starts the supervisor that runs one fetcher task per followed leader. Needs a runtime.
    pub(crate) fn start(broker: &Arc<Broker>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime: replica fetchers not started");
            return;
        };
        let mut followed = broker.fetchers.followed.subscribe();
        let weak = Arc::downgrade(broker);
        runtime.spawn(async move {
            let mut running: HashMap<i32, tokio::task::JoinHandle<()>> = HashMap::new();
            loop {
                let leaders: Vec<i32> = followed.borrow_and_update().keys().copied().collect();
                // The supervisor alone ends fetchers (at an await point, never inside an
                // append), so a leader that goes and comes back always has one.
                running.retain(|leader, task| {
                    if leaders.contains(leader) {
                        !task.is_finished()
                    } else {
                        task.abort();
                        false
                    }
                });
                for leader in leaders {
                    running.entry(leader).or_insert_with(|| {
                        let fetcher = Fetcher::new(weak.clone(), leader, followed.clone());
                        tokio::spawn(fetcher.run())
                    });
                }
                if followed.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

fn same_set(a: &FollowerSet, b: &FollowerSet) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((la, pa), (lb, pb))| {
            la == lb
                && pa.len() == pb.len()
                && pa
                    .iter()
                    .zip(pb)
                    .all(|((a, ea), (b, eb))| Arc::ptr_eq(a, b) && ea == eb)
        })
}

/// Where one followed partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Ask the leader where this epoch ends before fetching.
    Truncating { epoch: i32 },
    /// Fetch from the log end.
    Fetching,
    /// The leader refused (not leader yet, another epoch) or the log failed, at this time:
    /// try again after a pause, or at once with a newer image.
    Waiting { since: Instant },
}

fn waiting() -> Phase {
    Phase::Waiting {
        since: Instant::now(),
    }
}

#[derive(Debug)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    phase: Phase,
}

struct Fetcher {
    broker: Weak<Broker>,
    leader: i32,
    followed_rx: watch::Receiver<Arc<FollowerSet>>,
    partitions: BTreeMap<(String, i32), Followed>,
    conn: Option<Connection>,
}

impl Fetcher {
    fn new(
        broker: Weak<Broker>,
        leader: i32,
        followed_rx: watch::Receiver<Arc<FollowerSet>>,
    ) -> Fetcher {
        Fetcher {
            broker,
            leader,
            followed_rx,
            partitions: BTreeMap::new(),
            conn: None,
        }
    }

    async fn run(mut self) {
        tracing::info!(leader = self.leader, "replica fetcher started");
        loop {
            self.sync_partitions();
            if self.partitions.is_empty() {
                // Nothing to follow from this leader until a newer image; the supervisor ends
                // this task if the leader is gone from the followed set.
                self.conn = None;
                if self.followed_rx.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let Some(broker) = self.broker.upgrade() else {
                return;
            };
            let result = self.round(&broker).await;
            drop(broker);
            if let Err(e) = result {
                tracing::debug!(leader = self.leader, error = %e, "replica fetch failed");
                self.conn = None;
                // A new image (e.g. another leader) cuts the pause short.
                let _ = tokio::time::timeout(BACKOFF, self.followed_rx.changed()).await;
            }
        }
    }

    /// Takes in the newest followed set for this leader: new partitions and new epochs start
    /// truncating, partitions no longer followed here are dropped.
    fn sync_partitions(&mut self) {
        let set = self.followed_rx.borrow_and_update().clone();
        let mine = set.get(&self.leader).map(Vec::as_slice).unwrap_or(&[]);
        let mut next = BTreeMap::new();
        for (partition, epoch) in mine {
            let key = (partition.topic.clone(), partition.index);
            let keep = self
                .partitions
                .remove(&key)
                .filter(|f| f.leader_epoch == *epoch && Arc::ptr_eq(&f.partition, partition));
            let followed = keep.unwrap_or_else(|| Followed {
                partition: partition.clone(),
                leader_epoch: *epoch,
                phase: start_truncation(partition),
            });
            next.insert(key, followed);
        }
        self.partitions = next;
    }

    /// One exchange with the leader: truncation questions if any partition needs them, else a
    /// fetch. Errors are connection-level; partition errors are handled per partition.
    async fn round(&mut self, broker: &Broker) -> Result<(), String> {
        if self.conn.is_none() {
            let addr = leader_address(broker, self.leader)
                .ok_or_else(|| format!("broker {} has no registered endpoint", self.leader))?;
            let timeout = Duration::from_millis(
                broker
                    .config
                    .get("replica.socket.timeout.ms")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(30_000),
            );
            let conn = Connection::connect(
                &addr,
                &format!("oxka-replica-fetcher-{}", broker.config.node_id),
                timeout,
                256 << 20,
            )
            .await
            .map_err(|e| e.to_string())?;
            self.conn = Some(conn);
        }
        for f in self.partitions.values_mut() {
            if matches!(f.phase, Phase::Waiting { since } if since.elapsed() >= RETRY_REFUSED) {
                f.phase = start_truncation(&f.partition);
            }
        }
        if self
            .partitions
            .values()
            .any(|f| matches!(f.phase, Phase::Truncating { .. }))
        {
            return self.truncate(broker).await;
        }
        if !self.partitions.values().any(|f| f.phase == Phase::Fetching) {
            // Everything waits: for a newer image, or the pause.
            let _ = tokio::time::timeout(RETRY_REFUSED, self.followed_rx.changed()).await;
            return Ok(());
        }
        self.fetch(broker).await
    }

    async fn truncate(&mut self, broker: &Broker) -> Result<(), String> {
        let node_id = broker.config.node_id;
        let mut by_topic: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
        for ((topic, index), f) in &self.partitions {
            if let Phase::Truncating { epoch } = f.phase {
                let mut p = OffsetForLeaderPartition::default();
                p.partition = *index;
                p.current_leader_epoch = f.leader_epoch;
                p.leader_epoch = epoch;
                by_topic.entry(topic.clone()).or_default().push(p);
            }
        }
        let conn = self.conn.as_mut().expect("connected");
        let response = conn
            .send(|_| {
                let mut r = OffsetForLeaderEpochRequest::default();
                r.replica_id = BrokerId(node_id);
                r.topics = by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let mut t = OffsetForLeaderTopic::default();
                        t.topic = TopicName(StrBytes::from_string(topic));
                        t.partitions = partitions;
                        t
                    })
                    .collect();
                r
            })
            .await
            .map_err(|e| e.to_string())?;
        for t in response.topics {
            for r in t.partitions {
                let key = (t.topic.to_string(), r.partition);
                let Some(f) = self.partitions.get_mut(&key) else {
                    continue;
                };
                if r.error_code != NONE {
                    tracing::info!(topic = %key.0, partition = key.1, leader = self.leader, error = r.error_code, "leader refused the epoch query; waiting for new metadata");
                    f.phase = waiting();
                    continue;
                }
                let Ok((cache, end, hw)) = f.partition.follower_truncation_view() else {
                    f.phase = waiting();
                    continue;
                };
                let answer = EpochEndOffset {
                    leader_epoch: LeaderEpoch(r.leader_epoch),
                    end_offset: Offset(r.end_offset),
                };
                let step = follower::on_epoch_end_offset(&cache, Offset(end), Offset(hw), answer);
                f.phase = match step {
                    TruncationStep::TruncateAndAskAgain { truncate_to, epoch } => {
                        apply_step(&f.partition, TruncationStep::Truncate { truncate_to });
                        Phase::Truncating { epoch: epoch.0 }
                    }
                    step => {
                        apply_step(&f.partition, step);
                        Phase::Fetching
                    }
                };
            }
        }
        // A partition the answer left out is asked again next round.
        Ok(())
    }

    async fn fetch(&mut self, broker: &Broker) -> Result<(), String> {
        let node_id = broker.config.node_id;
        let config = &broker.config;
        let number = |key: &str, default: i32| {
            config
                .get(key)
                .and_then(|v| v.trim().parse::<i32>().ok())
                .unwrap_or(default)
        };
        let wait_ms = number("replica.fetch.wait.max.ms", DEFAULT_FETCH_WAIT_MS);
        let partition_max = number("replica.fetch.max.bytes", 1 << 20);
        let response_max = number("replica.fetch.response.max.bytes", 10 << 20);
        let min_bytes = number("replica.fetch.min.bytes", 1);
        let mut by_topic: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        for ((topic, index), f) in &self.partitions {
            if f.phase != Phase::Fetching {
                continue;
            }
            let Ok((end, start)) = f.partition.log_end_and_start() else {
                continue;
            };
            let mut p = FetchPartition::default();
            p.partition = *index;
            p.current_leader_epoch = f.leader_epoch;
            p.fetch_offset = end;
            p.last_fetched_epoch = -1;
            p.log_start_offset = start;
            p.partition_max_bytes = partition_max;
            by_topic.entry(topic.clone()).or_default().push(p);
        }
        let conn = self.conn.as_mut().expect("connected");
        let mut changed = self.followed_rx.clone();
        let request = conn.send(|_| {
            let mut r = FetchRequest::default();
            r.replica_id = BrokerId(node_id);
            r.max_wait_ms = wait_ms;
            r.min_bytes = min_bytes;
            r.max_bytes = response_max;
            r.session_epoch = -1;
            r.topics = by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    let mut t = FetchTopic::default();
                    t.topic = TopicName(StrBytes::from_string(topic));
                    t.partitions = partitions;
                    t
                })
                .collect();
            r
        });
        let response = tokio::select! {
            r = request => r.map_err(|e| e.to_string())?,
            // A leadership change while the fetch long-polls: drop it (and the connection, whose
            // response is now unread) and start over with the new set.
            _ = changed.changed() => {
                self.conn = None;
                return Ok(());
            }
        };
        if response.error_code != NONE {
            return Err(format!("fetch failed with error {}", response.error_code));
        }
        for t in response.responses {
            for p in t.partitions {
                let key = (t.topic.to_string(), p.partition_index);
                let Some(f) = self.partitions.get_mut(&key) else {
                    continue;
                };
                match p.error_code {
                    NONE => {
                        let records = p.records.unwrap_or_else(Bytes::new);
                        match f.partition.append_as_follower(
                            &records,
                            p.high_watermark,
                            p.log_start_offset,
                        ) {
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(topic = %key.0, partition = key.1, error = %e, "appending fetched records failed; truncating again");
                                f.phase = start_truncation(&f.partition);
                            }
                        }
                    }
                    OFFSET_OUT_OF_RANGE => {
                        let end = f.partition.log_end_and_start().map_or(0, |(e, _)| e);
                        if p.log_start_offset > end {
                            // The leader deleted what this replica still needs: start at its
                            // log start.
                            if let Err(e) =
                                f.partition.truncate_fully_and_start_at(p.log_start_offset)
                            {
                                tracing::error!(topic = %key.0, partition = key.1, error = %e, "truncation failed");
                            }
                        } else {
                            f.phase = start_truncation(&f.partition);
                        }
                    }
                    code => {
                        tracing::info!(topic = %key.0, partition = key.1, leader = self.leader, error = code, "leader refused the fetch; waiting for new metadata");
                        f.phase = waiting();
                    }
                }
            }
        }
        Ok(())
    }
}

/// The truncation phase a partition (re)starts following with: ask the leader about its latest
/// epoch, or with no epochs at all, truncate to the high watermark and fetch.
fn start_truncation(partition: &Partition) -> Phase {
    match partition.follower_truncation_view() {
        Ok((cache, end, hw)) => match follower::first_step(&cache, Offset(end), Offset(hw)) {
            TruncationStart::AskLeader { epoch } => Phase::Truncating { epoch: epoch.0 },
            TruncationStart::Step(step) => {
                apply_step(partition, step);
                Phase::Fetching
            }
        },
        Err(_) => waiting(),
    }
}

fn apply_step(partition: &Partition, step: TruncationStep) {
    let offset = match step {
        TruncationStep::NoTruncation { .. } => return,
        TruncationStep::Truncate { truncate_to }
        | TruncationStep::TruncateAndAskAgain { truncate_to, .. } => truncate_to.0,
    };
    if let Err(e) = partition.truncate_to(offset) {
        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "truncation failed");
    }
}

/// `host:port` of `leader`'s endpoint on the inter-broker listener (its first endpoint when it
/// registered none of that name).
pub(crate) fn leader_address(broker: &Broker, leader: i32) -> Option<String> {
    let image = broker.image();
    let listener = broker
        .config
        .get("inter.broker.listener.name")
        .unwrap_or("PLAINTEXT")
        .to_owned();
    let e = crate::leadership::broker_endpoint(&image, leader, &listener)?;
    Some(if e.host.contains(':') {
        format!("[{}]:{}", e.host, e.port)
    } else {
        format!("{}:{}", e.host, e.port)
    })
}
