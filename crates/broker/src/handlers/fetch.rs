//! Fetch (key 1): whole batches from each requested partition, bounded by the high
//! watermark, `partition_max_bytes` and the response's `max_bytes`; long-polls until
//! `min_bytes` are available or `max_wait_ms` passes, woken only by appends to the partitions
//! it asked for (each [`Partition`] has its own notifier). Sessions (KIP-227) are not created:
//! a session id of 0 in the response tells clients to keep sending full requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::futures::Notified;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use oxka_protocol::kafka_protocol;

use oxka_log::batch::BatchHeader;

use oxka_metadata::acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::errors::partition_error_code;
use crate::leadership::{current_leader, NOT_LEADER_OR_FOLLOWER};
use crate::partition::{Partition, PartitionError};
use crate::{metrics, Broker};

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FetchRequest,
) -> FetchResponse {
    let version = ctx.api_version;
    let mut response = FetchResponse::default();
    if request.session_id != 0 {
        response.error_code = ResponseError::FetchSessionIdNotFound.code();
        return response;
    }
    let (request, mut denied) = authorize_fetch(broker, ctx, request);
    let replica_id = replica_id(version, &request);
    if request.topics.is_empty() && !denied.is_empty() {
        response.responses = denied;
        return response;
    }
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + max_wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    // Most fetches find data (or an error) at once: answer without registering any wake-up.
    let mut registered = false;
    loop {
        // Before waiting, register on each requested partition and read again, so that an
        // append between the read and the wait is not missed. Only appends to these
        // partitions wake this fetch.
        let watched = if registered {
            watched_partitions(broker, version, &request)
        } else {
            Vec::new()
        };
        let mut waits: Vec<Pin<Box<Notified<'_>>>> =
            watched.iter().map(|p| Box::pin(p.appended())).collect();
        for w in &mut waits {
            w.as_mut().enable();
        }
        let (topics, bytes, errors) = read_once(broker, version, &request, replica_id);
        let now = Instant::now();
        if bytes >= min_bytes || errors || now >= deadline {
            let image = broker.image();
            // Kafka counts a follower's fetches apart (ReplicationBytesOutPerSec).
            for t in topics.iter().filter(|_| replica_id < 0) {
                let sent: usize = t
                    .partitions
                    .iter()
                    .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
                    .sum();
                if sent > 0 {
                    // Fetch v13+ names topics by id only.
                    match image.topic_by_id(&t.topic_id) {
                        Some(topic) if t.topic.is_empty() => metrics::fetched(&topic.name, sent),
                        _ => metrics::fetched(&t.topic, sent),
                    }
                }
            }
            denied.extend(topics);
            response.responses = denied;
            if version >= 16 {
                fill_current_leaders(broker, &ctx.listener_name, &mut response);
            }
            return response;
        }
        if !registered {
            registered = true;
            continue;
        }
        let any_appended = std::future::poll_fn(|cx| {
            for w in waits.iter_mut() {
                if w.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        });
        let _ = tokio::time::timeout(deadline - now, any_appended).await;
    }
}

/// The local partition a fetch reads: a follower's fetch only from the leader, a consumer's
/// from any replica from v11 (KIP-392).
fn partition_for(
    broker: &Broker,
    version: i16,
    replica_id: i32,
    topic: &str,
    partition: i32,
) -> Result<Arc<Partition>, i16> {
    if replica_id >= 0 {
        broker.led_partition(topic, partition)
    } else {
        broker.readable_partition(topic, partition, version)
    }
}

/// The fetching replica's broker id (a follower), or -1 for a consumer.
fn replica_id(version: i16, request: &FetchRequest) -> i32 {
    if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    }
}

/// Splits off the partitions the principal may not fetch, answered TOPIC_AUTHORIZATION_FAILED
/// as Kafka does: a follower (replica id >= 0) needs CLUSTER_ACTION on the cluster for all of
/// them, a consumer READ on each topic. Topic ids the image does not know stay in the request
/// (UNKNOWN_TOPIC_ID comes first).
fn authorize_fetch(
    broker: &Broker,
    ctx: &RequestContext,
    mut request: FetchRequest,
) -> (FetchRequest, Vec<FetchableTopicResponse>) {
    if !broker.authorizer_enabled() {
        return (request, Vec::new());
    }
    let replica_id = replica_id(ctx.api_version, &request);
    let follower_allowed =
        replica_id < 0 || broker.authorize_cluster(ctx, AclOperation::ClusterAction);
    let image = broker.image();
    let mut denied = Vec::new();
    request.topics.retain(|topic| {
        let Some(name) = topic_name(&image, ctx.api_version, topic) else {
            return true;
        };
        let allowed = follower_allowed
            && (replica_id >= 0
                || broker.authorize(ctx, AclOperation::Read, ResourceType::Topic, &name));
        if !allowed {
            let mut t = FetchableTopicResponse::default();
            t.topic = topic.topic.clone();
            t.topic_id = topic.topic_id;
            t.partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut data = PartitionData::default();
                    data.partition_index = p.partition;
                    data.error_code = ResponseError::TopicAuthorizationFailed.code();
                    data.high_watermark = -1;
                    data.last_stable_offset = -1;
                    data.log_start_offset = -1;
                    data.preferred_read_replica = BrokerId(-1);
                    data
                })
                .collect();
            denied.push(t);
        }
        allowed
    });
    (request, denied)
}

/// The name of a requested topic: by topic id from Fetch v13 (None when the image does not
/// know the id), else as sent.
fn topic_name(
    image: &oxka_metadata::MetadataImage,
    version: i16,
    topic: &kafka_protocol::messages::fetch_request::FetchTopic,
) -> Option<TopicName> {
    if version >= 13 {
        image
            .topic_by_id(&topic.topic_id)
            .map(|t| TopicName(t.name.clone().into()))
    } else {
        Some(topic.topic.clone())
    }
}

/// The hosted partitions a fetch asks for (those it can wait on).
fn watched_partitions(
    broker: &Broker,
    version: i16,
    request: &FetchRequest,
) -> Vec<Arc<Partition>> {
    let image = broker.image();
    let mut out = Vec::new();
    for topic in &request.topics {
        let name = topic_name(&image, version, topic);
        let Some(name) = name else { continue };
        out.extend(topic.partitions.iter().filter_map(|p| {
            partition_for(
                broker,
                version,
                replica_id(version, request),
                &name,
                p.partition,
            )
            .ok()
        }));
    }
    out
}

/// One pass over the requested partitions: the responses, bytes returned, and whether any
/// partition had an error (which makes Kafka answer at once). A follower (`replica_id` >= 0)
/// reads up to the log end and its fetch offsets are its progress for the leader's ISR and
/// high watermark; a consumer reads up to the high watermark (or last stable offset).
fn read_once(
    broker: &Arc<Broker>,
    version: i16,
    request: &FetchRequest,
    replica_id: i32,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let image = broker.image();
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic_name(&image, version, topic);
        let mut topic_response = FetchableTopicResponse::default();
        topic_response.topic = topic.topic.clone();
        topic_response.topic_id = topic.topic_id;
        for p in &topic.partitions {
            let mut data = PartitionData::default();
            data.partition_index = p.partition;
            data.high_watermark = -1;
            data.last_stable_offset = -1;
            data.log_start_offset = -1;
            data.preferred_read_replica = BrokerId(-1);
            let partition = match &name {
                Some(n) => partition_for(broker, version, replica_id, n, p.partition),
                None if version >= 13 => Err(ResponseError::UnknownTopicId.code()),
                None => Err(ResponseError::UnknownTopicOrPartition.code()),
            };
            let partition = match partition {
                Ok(partition) => partition,
                Err(code) => {
                    data.error_code = code;
                    any_error = true;
                    topic_response.partitions.push(data);
                    continue;
                }
            };
            let max_bytes = (p.partition_max_bytes.max(0) as usize).min(remaining);
            // KIP-74: the first partition with data may exceed the limits by one batch so that
            // a batch larger than max_bytes cannot stall the consumer.
            let min_one = total == 0;
            // read_committed (isolation level 1) stops at the last stable offset and lists
            // the aborted transactions in what it returns.
            let read = if replica_id >= 0 {
                partition
                    .read_for_follower(
                        replica_id,
                        p.current_leader_epoch,
                        p.fetch_offset,
                        max_bytes,
                        min_one,
                    )
                    .map(|(info, offsets, proposals)| {
                        for proposal in proposals {
                            broker.propose_isr(partition.clone(), proposal);
                        }
                        (info, offsets, offsets.high_watermark, None)
                    })
            } else if let Err(e) = partition.check_leader_epoch(p.current_leader_epoch) {
                Err(e)
            } else if request.isolation_level == 1 {
                partition
                    .read_committed(p.fetch_offset, max_bytes, min_one)
                    .map(|(info, offsets, lso, aborted)| (info, offsets, lso, Some(aborted)))
            } else {
                partition
                    .read(p.fetch_offset, max_bytes, min_one)
                    .map(|(info, offsets)| {
                        let lso = partition
                            .last_stable_offset()
                            .unwrap_or(offsets.high_watermark);
                        (info, offsets, lso, None)
                    })
            };
            match read {
                Ok((info, ..)) if version < 10 && contains_zstd(&info.records) => {
                    // Clients before Fetch v10 cannot read zstd (KIP-110).
                    data.error_code = ResponseError::UnsupportedCompressionType.code();
                    any_error = true;
                }
                Ok((info, offsets, lso, aborted)) => {
                    data.high_watermark = offsets.high_watermark;
                    data.last_stable_offset = lso;
                    data.aborted_transactions = aborted.map(|list| {
                        list.into_iter()
                            .map(|a| {
                                let mut t = AbortedTransaction::default();
                                t.producer_id = ProducerId(a.producer_id);
                                t.first_offset = a.first_offset;
                                t
                            })
                            .collect()
                    });
                    if version >= 5 {
                        data.log_start_offset = offsets.log_start_offset;
                    }
                    let n = info.records.len();
                    total += n;
                    remaining = remaining.saturating_sub(n);
                    data.records = Some(info.records);
                }
                Err(e) => {
                    if let Ok(offsets) = partition.offsets() {
                        data.high_watermark = offsets.high_watermark;
                        data.last_stable_offset = partition
                            .last_stable_offset()
                            .unwrap_or(offsets.high_watermark);
                        if version >= 5 {
                            data.log_start_offset = offsets.log_start_offset;
                        }
                    }
                    data.error_code = match e {
                        PartitionError::Deleted => ResponseError::UnknownTopicOrPartition.code(),
                        ref e => partition_error_code(e),
                    };
                    any_error = true;
                }
            }
            topic_response.partitions.push(data);
        }
        out.push(topic_response);
    }
    (out, total, any_error)
}

/// KIP-951 (Fetch v16+): each NOT_LEADER_OR_FOLLOWER partition carries the leader and leader
/// epoch the image knows, and the response the leaders' endpoints for the request's listener,
/// so the consumer moves without a Metadata round trip (Kafka's handleFetchRequest).
fn fill_current_leaders(broker: &Broker, listener: &str, response: &mut FetchResponse) {
    let image = broker.image();
    let mut endpoints = std::collections::BTreeMap::new();
    for t in &mut response.responses {
        // Fetch v13+ names topics by id only.
        let name = if t.topic.is_empty() {
            image
                .topic_by_id(&t.topic_id)
                .map(|topic| topic.name.clone())
        } else {
            Some(t.topic.to_string())
        };
        for p in &mut t.partitions {
            if p.error_code == NOT_LEADER_OR_FOLLOWER {
                let (id, epoch) = current_leader(
                    &image,
                    broker.config.node_id,
                    name.as_deref(),
                    p.partition_index,
                    listener,
                    &mut endpoints,
                );
                p.current_leader.leader_id = BrokerId(id);
                p.current_leader.leader_epoch = epoch;
            }
        }
    }
    response.node_endpoints = endpoints
        .into_iter()
        .map(|(id, e)| {
            let mut node = NodeEndpoint::default();
            node.node_id = BrokerId(id);
            node.host = StrBytes::from_string(e.host.clone());
            node.port = i32::from(e.port);
            node
        })
        .collect();
}

/// Whether any batch in `records` is zstd-compressed (attributes bits 0-2 = 4).
fn contains_zstd(mut records: &[u8]) -> bool {
    while let Some(h) = BatchHeader::parse(records) {
        if h.attributes & 0x7 == 4 {
            return true;
        }
        match h.size_in_bytes() {
            Some(size) if size <= records.len() => records = &records[size..],
            _ => return false,
        }
    }
    false
}
