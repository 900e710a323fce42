//! Kafka's transaction marker channel: the coordinator's WriteTxnMarkers requests to the
//! leaders of a transaction's partitions on other brokers, over oxka-client on their
//! inter-broker listener.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use oxka_client::Connection;
use oxka_protocol::kafka_protocol;

use super::coordinator::RemoteMarkers;
use super::state::TopicPartition;
use crate::Broker;

/// How long one leader may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `m`'s markers to each partition's current leader; the partitions written (error
/// NONE, or a partition that no longer exists). What failed is left for the next retry.
pub(crate) async fn write(broker: &Broker, m: &RemoteMarkers) -> Vec<TopicPartition> {
    let image = broker.image();
    let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    let mut written = Vec::new();
    for tp in &m.partitions {
        let leader = image
            .topic(&tp.0)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == tp.1))
            .map(|p| p.leader);
        match leader {
            None => written.push(tp.clone()), // deleted: no marker needed
            Some(l) if l >= 0 => by_leader.entry(l).or_default().push(tp.clone()),
            Some(_) => {} // offline: retried later
        }
    }
    for (leader, partitions) in by_leader {
        match send(broker, leader, m, &partitions).await {
            Ok(done) => written.extend(done),
            Err(e) => {
                tracing::info!(leader, transactional_id = %m.transactional_id, error = %e, "sending transaction markers failed; retried later")
            }
        }
    }
    written
}

async fn send(
    broker: &Broker,
    leader: i32,
    m: &RemoteMarkers,
    partitions: &[TopicPartition],
) -> Result<Vec<TopicPartition>, String> {
    let addr = crate::replica_fetcher::leader_address(broker, leader)
        .ok_or_else(|| format!("broker {leader} has no registered endpoint"))?;
    let mut conn = Connection::connect(
        &addr,
        &format!("oxka-txn-markers-{}", broker.config.node_id),
        TIMEOUT,
        16 << 20,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        topics.entry(t.as_str()).or_default().push(*p);
    }
    let response = conn
        .send(|_| {
            let mut marker = WritableTxnMarker::default();
            marker.producer_id = ProducerId(m.producer_id);
            marker.producer_epoch = m.producer_epoch;
            marker.transaction_result = m.commit;
            marker.coordinator_epoch = m.coordinator_epoch;
            marker.topics = topics
                .iter()
                .map(|(name, indexes)| {
                    let mut t = WritableTxnMarkerTopic::default();
                    t.name = TopicName(StrBytes::from_string((*name).to_owned()));
                    t.partition_indexes = indexes.clone();
                    t
                })
                .collect();
            let mut r = WriteTxnMarkersRequest::default();
            r.markers = vec![marker];
            r
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut done = Vec::new();
    for result in response.markers {
        for t in result.topics {
            for p in t.partitions {
                // 3: the partition is gone (no marker needed); anything else is retried.
                if p.error_code == 0 || p.error_code == 3 {
                    done.push((t.name.to_string(), p.partition_index));
                } else {
                    tracing::info!(topic = %t.name.as_str(), partition = p.partition_index, error = p.error_code, "a leader refused a transaction marker; retried later");
                }
            }
        }
    }
    Ok(done)
}
