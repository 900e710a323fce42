//! The transaction APIs: AddPartitionsToTxn (key 24, v0–3), AddOffsetsToTxn (25), EndTxn (26),
//! TxnOffsetCommit (28), DescribeProducers (61), DescribeTransactions (65), ListTransactions (66). InitProducerId
//! with a transactional id is in `producer_id.rs`. The coordinator work runs on a blocking
//! thread (it appends to `__transaction_state` and writes markers).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response;
use kafka_protocol::messages::{
    describe_producers_response, describe_transactions_response, list_transactions_response,
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeProducersRequest, DescribeProducersResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use oxka_metadata::acl::{AclOperation, ResourceType};
use oxka_protocol::kafka_protocol;

use super::{blocking, RequestContext};
use crate::txn::state::{code, TopicPartition};
use crate::Broker;

/// KIP-588: clients before these versions do not know PRODUCER_FENCED and get
/// INVALID_PRODUCER_EPOCH instead, as Kafka answers them.
pub(super) fn fenced_for(version: i16, fenced_from: i16, error: i16) -> i16 {
    if error == code::PRODUCER_FENCED && version < fenced_from {
        code::INVALID_PRODUCER_EPOCH
    } else {
        error
    }
}

fn result_code(r: Result<(), i16>) -> i16 {
    r.err().unwrap_or(code::NONE)
}

/// Kafka's checks before a transactional request: WRITE on the transactional id
/// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then READ on the group if there is one
/// (GROUP_AUTHORIZATION_FAILED).
fn authorize_txn(
    broker: &Broker,
    ctx: &RequestContext,
    transactional_id: &str,
    group: Option<&str>,
) -> Result<(), i16> {
    if !broker.authorize(
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        return Err(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    match group {
        Some(g) if !broker.authorize(ctx, AclOperation::Read, ResourceType::Group, g) => {
            Err(ResponseError::GroupAuthorizationFailed.code())
        }
        _ => Ok(()),
    }
}

pub(super) async fn add_partitions_to_txn(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let version = ctx.api_version;
    let image = broker.image();
    let txn_denied = authorize_txn(broker, ctx, &request.v3_and_below_transactional_id, None).err();
    let writable =
        |topic: &str| broker.authorize(ctx, AclOperation::Write, ResourceType::Topic, topic);
    let mut wanted: Vec<TopicPartition> = Vec::new();
    let mut unknown = false;
    for t in &request.v3_and_below_topics {
        for p in &t.partitions {
            let known = image
                .topic(&t.name)
                .is_some_and(|topic| topic.partitions.iter().any(|x| x.partition == *p));
            // An unwritable topic fails the request like an unknown one.
            unknown |= !known || !writable(&t.name);
            wanted.push((t.name.to_string(), *p));
        }
    }
    let error = if let Some(code) = txn_denied {
        Some(code)
    } else if unknown {
        None
    } else {
        let id = request.v3_and_below_transactional_id.to_string();
        let pid = request.v3_and_below_producer_id.0;
        let epoch = request.v3_and_below_producer_epoch;
        let list = wanted.clone();
        let r = blocking(broker, move |b| {
            b.txns.add_partitions(b, &id, pid, epoch, &list)
        })
        .await;
        Some(fenced_for(version, 2, result_code(r)))
    };
    let mut response = AddPartitionsToTxnResponse::default();
    for t in &request.v3_and_below_topics {
        let mut tr = AddPartitionsToTxnTopicResult::default();
        tr.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = *p;
            pr.partition_error_code = match error {
                Some(code) => code,
                None if !writable(&t.name) => ResponseError::TopicAuthorizationFailed.code(),
                // Kafka: the unknown partitions fail, the others are not attempted.
                None if image
                    .topic(&t.name)
                    .is_some_and(|topic| topic.partitions.iter().any(|x| x.partition == *p)) =>
                {
                    ResponseError::OperationNotAttempted.code()
                }
                None => ResponseError::UnknownTopicOrPartition.code(),
            };
            tr.results_by_partition.push(pr);
        }
        response.results_by_topic_v3_and_below.push(tr);
    }
    response
}

pub(super) async fn add_offsets_to_txn(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let version = ctx.api_version;
    if let Err(code) = authorize_txn(
        broker,
        ctx,
        &request.transactional_id,
        Some(&request.group_id),
    ) {
        let mut response = AddOffsetsToTxnResponse::default();
        response.error_code = code;
        return response;
    }
    let id = request.transactional_id.to_string();
    let group = request.group_id.to_string();
    let (pid, epoch) = (request.producer_id.0, request.producer_epoch);
    let r = blocking(broker, move |b| {
        b.txns.add_offsets(b, &id, pid, epoch, &group)
    })
    .await;
    let mut response = AddOffsetsToTxnResponse::default();
    response.error_code = fenced_for(version, 2, result_code(r));
    response
}

pub(super) async fn end_txn(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: EndTxnRequest,
) -> EndTxnResponse {
    let version = ctx.api_version;
    if let Err(code) = authorize_txn(broker, ctx, &request.transactional_id, None) {
        let mut response = EndTxnResponse::default();
        response.error_code = code;
        return response;
    }
    let id = request.transactional_id.to_string();
    let (pid, epoch, commit) = (
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    );
    let r = blocking(broker, move |b| b.txns.end_txn(b, &id, pid, epoch, commit)).await;
    let mut response = EndTxnResponse::default();
    response.error_code = fenced_for(version, 2, result_code(r));
    // producer_id/producer_epoch exist from v5 only (not served): left at their defaults.
    response
}

/// DescribeTransactions: DESCRIBE on each transactional id (else
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED); topics the principal may not describe are left out.
pub(super) fn describe_transactions(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut s = describe_transactions_response::TransactionState::default();
        let described = if broker.authorize(
            ctx,
            AclOperation::Describe,
            ResourceType::TransactionalId,
            &id,
        ) {
            broker.txns.describe(broker, id.as_str())
        } else {
            Err(ResponseError::TransactionalIdAuthorizationFailed.code())
        };
        match described {
            Ok(txn) => {
                s.transaction_state = StrBytes::from_static_str(txn.state.name());
                s.transaction_timeout_ms = txn.timeout_ms;
                s.transaction_start_time_ms = txn.txn_start_ms;
                s.producer_id = ProducerId(txn.producer_id);
                s.producer_epoch = txn.producer_epoch;
                let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> =
                    std::collections::BTreeMap::new();
                for (t, p) in &txn.partitions {
                    if !broker.authorize(ctx, AclOperation::Describe, ResourceType::Topic, t) {
                        continue;
                    }
                    by_topic.entry(t.clone()).or_default().push(*p);
                }
                for (topic, partitions) in by_topic {
                    let mut td = describe_transactions_response::TopicData::default();
                    td.topic = TopicName(StrBytes::from_string(topic));
                    td.partitions = partitions;
                    s.topics.push(td);
                }
            }
            Err(code) => {
                s.error_code = code;
                s.transaction_state = StrBytes::from_static_str("");
                s.producer_id = ProducerId(-1);
                s.producer_epoch = -1;
                s.transaction_start_time_ms = -1;
            }
        }
        s.transactional_id = id;
        response.transaction_states.push(s);
    }
    response
}

/// ListTransactions lists only the transactional ids the principal may describe.
pub(super) fn list_transactions(
    broker: &Broker,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let version = ctx.api_version;
    let mut response = ListTransactionsResponse::default();
    const STATES: [&str; 8] = [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ];
    response.unknown_state_filters = request
        .state_filters
        .iter()
        .filter(|f| !STATES.contains(&f.as_str()))
        .cloned()
        .collect();
    let all = match broker.txns.list() {
        Ok(all) => all,
        Err(code) => {
            response.error_code = code;
            return response;
        }
    };
    let now = crate::now_ms();
    for txn in all {
        let state_ok = request.state_filters.is_empty()
            || request
                .state_filters
                .iter()
                .any(|f| f.as_str() == txn.state.name());
        let pid_ok = request.producer_id_filters.is_empty()
            || request
                .producer_id_filters
                .iter()
                .any(|p| p.0 == txn.producer_id);
        // v1+: only transactions running longer than duration_filter ms (-1 = all).
        let duration_ok = version < 1
            || request.duration_filter < 0
            || (txn.txn_start_ms >= 0 && now - txn.txn_start_ms > request.duration_filter);
        let allowed = broker.authorize(
            ctx,
            AclOperation::Describe,
            ResourceType::TransactionalId,
            &txn.transactional_id,
        );
        if state_ok && pid_ok && duration_ok && allowed {
            let mut s = list_transactions_response::TransactionState::default();
            s.transactional_id = TransactionalId(StrBytes::from_string(txn.transactional_id));
            s.producer_id = ProducerId(txn.producer_id);
            s.transaction_state = StrBytes::from_static_str(txn.state.name());
            response.transaction_states.push(s);
        }
    }
    response
}

/// DescribeProducers needs READ on each topic (else TOPIC_AUTHORIZATION_FAILED).
pub(super) fn describe_producers(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for t in request.topics {
        let readable = broker.authorize(ctx, AclOperation::Read, ResourceType::Topic, &t.name);
        let mut tr = describe_producers_response::TopicResponse::default();
        for index in t.partition_indexes {
            let mut pr = describe_producers_response::PartitionResponse::default();
            pr.partition_index = index;
            if !readable {
                pr.error_code = ResponseError::TopicAuthorizationFailed.code();
                tr.partitions.push(pr);
                continue;
            }
            // Kafka's Partition.activeProducerState answers from the leader only.
            match broker.led_partition(&t.name, index).map(|p| p.producers()) {
                Err(code) => pr.error_code = code,
                Ok(Ok(mut producers)) => {
                    producers.sort_by_key(|p| p.0);
                    for (pid, epoch, last_seq, last_ts, txn_first) in producers {
                        let mut s = describe_producers_response::ProducerState::default();
                        s.producer_id = ProducerId(pid);
                        s.producer_epoch = i32::from(epoch);
                        s.last_sequence = last_seq;
                        s.last_timestamp = last_ts;
                        s.coordinator_epoch = -1;
                        s.current_txn_start_offset = txn_first.unwrap_or(-1);
                        pr.active_producers.push(s);
                    }
                }
                Ok(Err(_)) => {
                    pr.error_code = ResponseError::UnknownTopicOrPartition.code();
                }
            }
            tr.partitions.push(pr);
        }
        tr.name = t.name;
        response.topics.push(tr);
    }
    response
}

/// TxnOffsetCommit: WRITE on the transactional id and READ on the group (else every partition
/// fails), then READ on each topic (its partitions fail, the rest are committed).
pub(super) async fn txn_offset_commit(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    use crate::group::coordinator::{Committer, OffsetCommit};
    let version = ctx.api_version;
    let request_denied = authorize_txn(
        broker,
        ctx,
        &request.transactional_id,
        Some(&request.group_id),
    )
    .err();
    let denied: Vec<Option<i16>> = request
        .topics
        .iter()
        .flat_map(|t| {
            let code = request_denied.or_else(|| {
                (!broker.authorize(ctx, AclOperation::Read, ResourceType::Topic, &t.name))
                    .then(|| ResponseError::TopicAuthorizationFailed.code())
            });
            t.partitions.iter().map(move |_| code)
        })
        .collect();
    let commits: Vec<OffsetCommit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    // v3+ (KIP-447) names the member; before that there is no generation to check.
    let who = Committer {
        member_id: if version >= 3 {
            request.member_id.to_string()
        } else {
            String::new()
        },
        group_instance_id: if version >= 3 {
            request.group_instance_id.as_ref().map(|s| s.to_string())
        } else {
            None
        },
        generation: if version >= 3 {
            request.generation_id
        } else {
            -1
        },
        retention_time_ms: -1,
        api_version: 9,
    };
    let id = request.transactional_id.to_string();
    let group = request.group_id.to_string();
    let (pid, epoch) = (request.producer_id.0, request.producer_epoch);
    let list: Vec<OffsetCommit> = commits
        .into_iter()
        .zip(&denied)
        .filter(|(_, d)| d.is_none())
        .map(|(c, _)| c)
        .collect();
    let n = list.len();
    let result = if n == 0 {
        Ok(Vec::new())
    } else {
        blocking(broker, move |b| {
            b.txns
                .txn_offset_commit(b, &id, pid, epoch, &group, &who, &list)
        })
        .await
    };
    let mut committed = match result {
        Ok(codes) => codes.into_iter(),
        Err(code) => vec![fenced_for(version, 3, code); n].into_iter(),
    };
    let mut codes = denied
        .into_iter()
        .map(|d| d.unwrap_or_else(|| committed.next().unwrap_or(code::NONE)));
    let mut response = TxnOffsetCommitResponse::default();
    for t in request.topics {
        let mut tr = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
        for p in &t.partitions {
            let mut pr = txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = codes.next().unwrap_or(code::NONE);
            tr.partitions.push(pr);
        }
        tr.name = t.name;
        response.topics.push(tr);
    }
    response
}
