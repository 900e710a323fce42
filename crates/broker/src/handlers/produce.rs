//! Produce (key 0): validate and append each partition's batches as they came (offsets are
//! assigned in place), then answer per partition. acks=0 gets no response at all; acks=1 is
//! answered once the leader appended; acks=all needs an ISR of at least min.insync.replicas
//! (else NOT_ENOUGH_REPLICAS, nothing appended) and is answered once the high watermark passes
//! the batch, i.e. every ISR member has it (Kafka's delayed produce): REQUEST_TIMED_OUT after
//! the request's timeout, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below the minimum
//! meanwhile, NOT_LEADER_OR_FOLLOWER if this broker lost the leadership. On a single node the
//! ISR is the leader alone, so acks=all is answered at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use oxka_protocol::kafka_protocol;

use oxka_log::batch::BatchHeader;
use oxka_metadata::acl::{AclOperation, ResourceType};

use super::{Reply, RequestContext};
use crate::errors::partition_error_code;
use crate::leadership::{current_leader, NOT_LEADER_OR_FOLLOWER};
use crate::partition::{AckWait, Appended, Partition, PartitionError};
use crate::{metrics, Broker};

/// Batch attributes bit 4: the batch belongs to a transaction.
const TRANSACTIONAL_BIT: i16 = 0x10;

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> Reply {
    let version = ctx.api_version;
    let acks = request.acks;
    let ack_deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut response = ProduceResponse::default();
    let transactional_id = request.transactional_id.as_ref().map(|s| s.to_string());
    if !matches!(acks, -1..=1) {
        response.responses = error_all(&request, ResponseError::InvalidRequiredAcks.code());
        return Reply::Send(ResponseKind::Produce(response));
    }
    // Transactional batches need WRITE on the transactional id, else the whole request fails
    // (Kafka's hasTransactionalRecords check).
    // (Only scanned with an authorizer: without one there is nothing to check.)
    let has_transactional = broker.authorizer_enabled()
        && request.topic_data.iter().any(|t| {
            t.partition_data.iter().any(|d| {
                d.records
                    .as_ref()
                    .and_then(|r| BatchHeader::parse(r))
                    .is_some_and(|h| h.attributes & TRANSACTIONAL_BIT != 0)
            })
        });
    if has_transactional
        && !transactional_id.as_ref().is_some_and(|id| {
            broker.authorize(ctx, AclOperation::Write, ResourceType::TransactionalId, id)
        })
    {
        response.responses = error_all(
            &request,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
        );
        return reply(response, acks);
    }
    for topic in request.topic_data {
        let mut topic_response = TopicProduceResponse::default();
        let name = topic.name.clone();
        // Produce never creates topics (clients do it through Metadata first), as in Kafka.
        let topic_error = if !broker.authorize(ctx, AclOperation::Write, ResourceType::Topic, &name)
        {
            Some(ResponseError::TopicAuthorizationFailed.code())
        } else {
            broker
                .image()
                .topic(&name)
                .is_none()
                .then(|| ResponseError::UnknownTopicOrPartition.code())
        };
        for data in topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = data.index;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            let partition = broker.led_partition(&name, data.index);
            match (topic_error, partition, data.records) {
                (Some(code), _, _) => p.error_code = code,
                (None, Err(code), _) => p.error_code = code,
                (None, Ok(_), None) => p.error_code = ResponseError::InvalidRecord.code(),
                (None, Ok(partition), Some(records)) => {
                    let mut records = BytesMut::from(&records[..]);
                    let txn_header = BatchHeader::parse(&records)
                        .filter(|h| h.attributes & TRANSACTIONAL_BIT != 0);
                    let appended = match (txn_header, &transactional_id) {
                        (None, _) => {
                            Ok(partition.append_as_leader(&mut records, version >= 7, acks == -1))
                        }
                        (Some(_), None) => {
                            Err(ResponseError::TransactionalIdAuthorizationFailed.code())
                        }
                        // KIP-890 part 1: only into a partition of the open transaction.
                        (Some(h), Some(id)) => broker.txns.with_verified_partition(
                            broker,
                            id,
                            h.producer_id,
                            h.producer_epoch,
                            &(name.to_string(), data.index),
                            || partition.append_as_leader(&mut records, version >= 7, acks == -1),
                        ),
                    };
                    match appended {
                        Err(code) => {
                            tracing::debug!(topic = %name.as_str(), partition = data.index, code, "transactional produce refused");
                            p.error_code = code;
                        }
                        Ok(appended) => match appended {
                            Ok(info) => {
                                if info.needs_flush {
                                    // flush.messages reached: acknowledge only what is on disk.
                                    let p = partition.clone();
                                    let flushed = tokio::task::spawn_blocking(move || p.flush())
                                        .await
                                        .expect("flush task panicked");
                                    if let Err(e) = flushed {
                                        tracing::error!(error = %e, "flush failed");
                                    }
                                }
                                if acks == -1 {
                                    p.error_code =
                                        await_replication(&partition, &info, ack_deadline).await;
                                }
                                p.base_offset = info.first_offset;
                                p.log_append_time_ms = info.log_append_time_ms;
                                if version >= 5 {
                                    p.log_start_offset =
                                        partition.offsets().map_or(-1, |o| o.log_start_offset);
                                }
                                if !info.duplicate {
                                    metrics::produced(&name, info.num_records, info.bytes);
                                }
                            }
                            Err(e) => {
                                tracing::debug!(topic = %name.as_str(), partition = data.index, error = %e, "produce refused");
                                p.error_code = partition_error_code(&e);
                                if version >= 8 {
                                    p.error_message = Some(e.to_string().into());
                                    if let PartitionError::RecordErrors { errors, .. } = &e {
                                        p.record_errors = errors
                                            .iter()
                                            .map(|(index, message)| {
                                                let mut r = BatchIndexAndErrorMessage::default();
                                                r.batch_index = *index;
                                                r.batch_index_error_message =
                                                    Some(message.clone().into());
                                                r
                                            })
                                            .collect();
                                    }
                                }
                            }
                        },
                    }
                }
            }
            topic_response.partition_responses.push(p);
        }
        topic_response.name = name;
        response.responses.push(topic_response);
    }
    if version >= 10 {
        fill_current_leaders(broker, &ctx.listener_name, &mut response);
    }
    reply(response, acks)
}

/// KIP-951 (Produce v10+): each NOT_LEADER_OR_FOLLOWER partition carries the leader and leader
/// epoch the image knows, and the response the leaders' endpoints for the request's listener,
/// so the producer moves without a Metadata round trip (Kafka's handleProduceRequest).
fn fill_current_leaders(broker: &Broker, listener: &str, response: &mut ProduceResponse) {
    let image = broker.image();
    let mut endpoints = BTreeMap::new();
    for t in &mut response.responses {
        for p in &mut t.partition_responses {
            if p.error_code == NOT_LEADER_OR_FOLLOWER {
                let (id, epoch) = current_leader(
                    &image,
                    broker.config.node_id,
                    Some(&t.name),
                    p.index,
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

/// The response for `acks`: sent, or for acks=0 nothing unless something failed.
fn reply(response: ProduceResponse, acks: i16) -> Reply {
    if acks != 0 {
        return Reply::Send(ResponseKind::Produce(response));
    }
    // acks=0: no response; an error closes the connection, as Kafka does, so the producer
    // notices and refreshes its metadata.
    let failed = response
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter().map(move |p| (t, p)))
        .find(|(_, p)| p.error_code != 0);
    match failed {
        Some((t, p)) => Reply::Close(format!(
            "acks=0 produce to {}-{} failed with error {}",
            t.name.as_str(),
            p.index,
            p.error_code
        )),
        None => Reply::Nothing,
    }
}

/// Waits until every ISR member has the batch `info` describes (the high watermark passed
/// it), at most until `deadline`; the error code to answer (0 when replicated).
async fn await_replication(partition: &Partition, info: &Appended, deadline: Instant) -> i16 {
    let status = partition
        .wait_until(deadline, |p| {
            Some(p.ack_status(info.leader_epoch, info.last_offset))
                .filter(|s| *s != AckWait::Pending)
        })
        .await;
    match status {
        Some(AckWait::Done) => 0,
        Some(AckWait::NotEnoughReplicasAfterAppend) => {
            ResponseError::NotEnoughReplicasAfterAppend.code()
        }
        Some(AckWait::NotLeader) => NOT_LEADER_OR_FOLLOWER,
        Some(AckWait::Pending) | None => ResponseError::RequestTimedOut.code(),
    }
}

fn error_all(request: &ProduceRequest, code: i16) -> Vec<TopicProduceResponse> {
    request
        .topic_data
        .iter()
        .map(|t| {
            let mut r = TopicProduceResponse::default();
            r.name = t.name.clone();
            r.partition_responses = t
                .partition_data
                .iter()
                .map(|d| {
                    let mut p = PartitionProduceResponse::default();
                    p.index = d.index;
                    p.error_code = code;
                    p.base_offset = -1;
                    p.log_append_time_ms = -1;
                    p.log_start_offset = -1;
                    p
                })
                .collect();
            r
        })
        .collect()
}
