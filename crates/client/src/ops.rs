//! Partition operations routed to each partition's leader: produce one batch, list offsets,
//! fetch. Retries once after refreshing metadata when the leader moved
//! (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE), as Kafka's clients do.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::client::Client;
use crate::error::{ClientError, Result};

/// ListOffsets timestamp for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp for the log end offset (high watermark).
pub const LATEST_TIMESTAMP: i64 = -1;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const LEADER_NOT_AVAILABLE: i16 = 5;

/// One partition's slice of a Fetch response.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    pub partition: i32,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Option<Bytes>,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn leader_moved(e: &ClientError) -> bool {
    matches!(
        e.kafka_code(),
        Some(NOT_LEADER_OR_FOLLOWER) | Some(LEADER_NOT_AVAILABLE)
    )
}

impl Client {
    /// Produces one record batch to `topic`/`partition` with `acks` (-1, 0 is not offered: the
    /// client always awaits a response) and returns the base offset the leader assigned.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
        timeout_ms: i32,
    ) -> Result<i64> {
        match self
            .produce_once(topic, partition, batch.clone(), acks, timeout_ms)
            .await
        {
            Err(e) if leader_moved(&e) => {
                self.invalidate_leaders();
                self.produce_once(topic, partition, batch, acks, timeout_ms)
                    .await
            }
            other => other,
        }
    }

    async fn produce_once(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
        timeout_ms: i32,
    ) -> Result<i64> {
        let leader = self.leader(topic, partition).await?;
        let response = self
            .send_to(leader, |_| {
                ProduceRequest::default()
                    .with_acks(acks)
                    .with_timeout_ms(timeout_ms)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(topic_name(topic))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch))])])
            })
            .await?;
        let p = response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| {
                ClientError::kafka(-1, None, format!("no answer for {topic}-{partition}"))
            })?;
        ClientError::check(
            p.error_code,
            p.error_message.as_ref().map(|m| m.to_string()),
            format!("produce to {topic}-{partition}"),
        )?;
        Ok(p.base_offset)
    }

    /// The offset for `timestamp` (or [`EARLIEST_TIMESTAMP`] / [`LATEST_TIMESTAMP`]) of each
    /// partition, asking each partition's leader. A timestamp later than every record gives -1.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<BTreeMap<i32, i64>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in partitions {
            by_leader
                .entry(self.leader(topic, p).await?)
                .or_default()
                .push(p);
        }
        let mut out = BTreeMap::new();
        for (leader, parts) in by_leader {
            let response = self
                .send_to(leader, |_| {
                    ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|&p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )])
                })
                .await?;
            for t in &response.topics {
                for p in &t.partitions {
                    ClientError::check(
                        p.error_code,
                        None,
                        format!("list offsets of {topic}-{}", p.partition_index),
                    )?;
                    out.insert(p.partition_index, p.offset);
                }
            }
        }
        Ok(out)
    }

    /// One Fetch to the leader of each partition of `offsets` (partition → fetch offset),
    /// read_uncommitted, waiting at most `max_wait_ms` for data. Partition errors are returned
    /// as errors (OFFSET_OUT_OF_RANGE included).
    pub async fn fetch(
        &mut self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
        max_wait_ms: i32,
        partition_max_bytes: i32,
    ) -> Result<Vec<FetchedPartition>> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (&p, &offset) in offsets {
            by_leader
                .entry(self.leader(topic, p).await?)
                .or_default()
                .push((p, offset));
        }
        let mut out = Vec::new();
        for (leader, parts) in by_leader {
            let response = self
                .send_to(leader, |_| {
                    FetchRequest::default()
                        .with_max_wait_ms(max_wait_ms)
                        .with_min_bytes(1)
                        .with_max_bytes(partition_max_bytes.saturating_mul(4))
                        .with_session_epoch(-1)
                        .with_topics(vec![FetchTopic::default()
                            .with_topic(topic_name(topic))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|&(p, offset)| {
                                        FetchPartition::default()
                                            .with_partition(p)
                                            .with_fetch_offset(offset)
                                            .with_partition_max_bytes(partition_max_bytes)
                                    })
                                    .collect(),
                            )])
                })
                .await?;
            ClientError::check(response.error_code, None, format!("fetch from {topic}"))?;
            for t in response.responses {
                for p in t.partitions {
                    if leader_moved(&ClientError::kafka(p.error_code, None, "")) {
                        self.invalidate_leaders();
                    }
                    ClientError::check(
                        p.error_code,
                        None,
                        format!("fetch {topic}-{}", p.partition_index),
                    )?;
                    out.push(FetchedPartition {
                        partition: p.partition_index,
                        high_watermark: p.high_watermark,
                        log_start_offset: p.log_start_offset,
                        records: p.records,
                    });
                }
            }
        }
        Ok(out)
    }
}
