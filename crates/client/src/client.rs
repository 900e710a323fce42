//! A cluster seen from a bootstrap list: broker addresses and partition leaders from Metadata,
//! one [`Connection`] per broker opened on demand, group and transaction coordinators from
//! FindCoordinator.
//!
//! Invariant: a request routed to a broker goes over that broker's own connection, opened to the
//! address the cluster metadata advertises for it. The bootstrap connection carries requests
//! that any broker answers (Metadata, FindCoordinator, and admin requests such as CreateTopics,
//! which a broker forwards to the controller). Requests for one broker's own state (ListGroups,
//! a broker's configs) are sent by the caller to each of [`Client::broker_ids`].

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::{MetadataResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// How often a transient condition (a coordinator loading, a leader being elected) is retried.
pub const RETRIES: u32 = 20;
/// The pause between those retries.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(250);

/// How to reach a cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses tried in order until one answers.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    /// Upper bound on a connect and on each request/response round trip.
    pub request_timeout: Duration,
    /// Largest response frame accepted.
    pub max_response_bytes: usize,
}

impl ClientConfig {
    /// From a comma-separated bootstrap list (`host:port,host:port`).
    pub fn new(bootstrap: &str) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            client_id: "oxka-client".to_owned(),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 100 << 20,
        }
    }
}

/// Which coordinator FindCoordinator looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorType {
    Group = 0,
    Transaction = 1,
}

/// A client of one cluster. See the module docs.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    bootstrap: Connection,
    /// node id → `host:port` from the last Metadata response.
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
    /// (topic, partition) → leader node id, from the last Metadata response naming the topic.
    leaders: HashMap<(String, i32), i32>,
}

impl Client {
    /// Connects to the first reachable bootstrap address and loads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        let mut last = String::from("empty bootstrap list");
        let mut bootstrap = None;
        for addr in &config.bootstrap {
            match Connection::connect(
                addr,
                &config.client_id,
                config.request_timeout,
                config.max_response_bytes,
            )
            .await
            {
                Ok(c) => {
                    bootstrap = Some(c);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let Some(bootstrap) = bootstrap else {
            return Err(ClientError::NoBrokerReachable {
                tried: config.bootstrap.join(","),
                last,
            });
        };
        let mut client = Client {
            config,
            bootstrap,
            brokers: HashMap::new(),
            connections: HashMap::new(),
            leaders: HashMap::new(),
        };
        client.metadata(Some(&[])).await?;
        Ok(client)
    }

    /// The bootstrap connection (any broker may answer).
    pub fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Sends a request to any broker (the bootstrap connection).
    pub async fn send<R: Request>(&mut self, build: impl FnOnce(i16) -> R) -> Result<R::Response> {
        self.bootstrap.send(build).await
    }

    /// Sends a request to broker `node_id`.
    pub async fn send_to<R: Request>(
        &mut self,
        node_id: i32,
        build: impl FnOnce(i16) -> R,
    ) -> Result<R::Response> {
        self.broker(node_id).await?.send(build).await
    }

    /// The connection to broker `node_id`, opened if needed.
    pub async fn broker(&mut self, node_id: i32) -> Result<&mut Connection> {
        if !self.connections.contains_key(&node_id) {
            let addr = self
                .brokers
                .get(&node_id)
                .ok_or(ClientError::UnknownBroker(node_id))?
                .clone();
            let conn = Connection::connect(
                &addr,
                &self.config.client_id,
                self.config.request_timeout,
                self.config.max_response_bytes,
            )
            .await?;
            self.connections.insert(node_id, conn);
        }
        Ok(self.connections.get_mut(&node_id).expect("inserted above"))
    }

    /// Node ids of the brokers in the last Metadata response, sorted.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Metadata for `topics` (`None`: every topic; `Some(&[])`: none, brokers only). Updates the
    /// broker addresses and the leaders of the topics returned. Never auto-creates topics.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let response = self
            .bootstrap
            .send(|_| {
                MetadataRequest::default()
                    .with_topics(topics.map(|names| {
                        names
                            .iter()
                            .map(|n| {
                                MetadataRequestTopic::default()
                                    .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                            })
                            .collect()
                    }))
                    .with_allow_auto_topic_creation(false)
            })
            .await?;
        self.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        for topic in &response.topics {
            let Some(name) = &topic.name else { continue };
            for p in &topic.partitions {
                self.leaders
                    .insert((name.0.to_string(), p.partition_index), p.leader_id.0);
            }
        }
        Ok(response)
    }

    /// The leader of `topic`/`partition`, from cached metadata or a fresh Metadata request.
    /// UNKNOWN_TOPIC_OR_PARTITION if the cluster does not have it; LEADER_NOT_AVAILABLE if it
    /// has no leader now.
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32> {
        let key = (topic.to_owned(), partition);
        if let Some(&leader) = self.leaders.get(&key) {
            if leader >= 0 {
                return Ok(leader);
            }
        }
        // A topic just created may have no leader for a moment: ask again, boundedly.
        for attempt in 1..=RETRIES {
            let response = self.metadata(Some(&[topic.to_owned()])).await?;
            if let Some(t) = response.topics.first() {
                if t.error_code == 5 && attempt < RETRIES {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    continue;
                }
                ClientError::check(t.error_code, None, format!("topic {topic}"))?;
            }
            if self.leaders.get(&key).is_some_and(|&l| l >= 0) || attempt == RETRIES {
                break;
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        match self.leaders.get(&key) {
            Some(&leader) if leader >= 0 => Ok(leader),
            Some(_) => Err(ClientError::kafka(5, None, format!("{topic}-{partition}"))),
            None => Err(ClientError::kafka(3, None, format!("{topic}-{partition}"))),
        }
    }

    /// Forgets cached leaders (after NOT_LEADER_OR_FOLLOWER and the like).
    pub fn invalidate_leaders(&mut self) {
        self.leaders.clear();
    }

    /// The node id of the coordinator for `key` (a group id or a transactional id). While the
    /// coordinator is loading (COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS) it asks
    /// again, [`RETRIES`] times at most, [`RETRY_BACKOFF`] apart.
    pub async fn coordinator(&mut self, kind: CoordinatorType, key: &str) -> Result<i32> {
        let mut attempt = 0;
        let response = loop {
            let response = self
                .bootstrap
                .send(|_| {
                    FindCoordinatorRequest::default()
                        .with_key(StrBytes::from_string(key.to_owned()))
                        .with_key_type(kind as i8)
                })
                .await?;
            attempt += 1;
            if matches!(response.error_code, 14 | 15) && attempt < RETRIES {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            break response;
        };
        ClientError::check(
            response.error_code,
            response.error_message.map(|m| m.to_string()),
            format!("FindCoordinator for {key}"),
        )?;
        let node = response.node_id.0;
        self.brokers
            .entry(node)
            .or_insert_with(|| format!("{}:{}", response.host.as_str(), response.port));
        Ok(node)
    }

    /// Sends a request to the group coordinator of `group`.
    pub async fn send_to_coordinator<R: Request>(
        &mut self,
        group: &str,
        build: impl FnOnce(i16) -> R,
    ) -> Result<R::Response> {
        let node = self.coordinator(CoordinatorType::Group, group).await?;
        self.send_to(node, build).await
    }
}
