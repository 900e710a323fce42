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
use oxka_protocol::kafka_protocol;

use super::blocking;
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

pub(super) async fn add_partitions_to_txn(
    broker: &Arc<Broker>,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let image = broker.image();
    let mut wanted: Vec<TopicPartition> = Vec::new();
    let mut unknown = false;
    for t in &request.v3_and_below_topics {
        for p in &t.partitions {
            let known = image
                .topic(&t.name)
                .is_some_and(|topic| topic.partitions.iter().any(|x| x.partition == *p));
            unknown |= !known;
            wanted.push((t.name.to_string(), *p));
        }
    }
    let error = if unknown {
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
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
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
    version: i16,
    request: EndTxnRequest,
) -> EndTxnResponse {
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

pub(super) fn describe_transactions(
    broker: &Broker,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut s = describe_transactions_response::TransactionState::default();
        match broker.txns.describe(id.as_str()) {
            Ok(txn) => {
                s.transaction_state = StrBytes::from_static_str(txn.state.name());
                s.transaction_timeout_ms = txn.timeout_ms;
                s.transaction_start_time_ms = txn.txn_start_ms;
                s.producer_id = ProducerId(txn.producer_id);
                s.producer_epoch = txn.producer_epoch;
                let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> =
                    std::collections::BTreeMap::new();
                for (t, p) in &txn.partitions {
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

pub(super) fn list_transactions(
    broker: &Broker,
    version: i16,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
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
        if state_ok && pid_ok && duration_ok {
            let mut s = list_transactions_response::TransactionState::default();
            s.transactional_id = TransactionalId(StrBytes::from_string(txn.transactional_id));
            s.producer_id = ProducerId(txn.producer_id);
            s.transaction_state = StrBytes::from_static_str(txn.state.name());
            response.transaction_states.push(s);
        }
    }
    response
}

pub(super) fn describe_producers(
    broker: &Broker,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for t in request.topics {
        let mut tr = describe_producers_response::TopicResponse::default();
        for index in t.partition_indexes {
            let mut pr = describe_producers_response::PartitionResponse::default();
            pr.partition_index = index;
            match broker
                .partitions()
                .get(&t.name, index)
                .map(|p| p.producers())
            {
                Some(Ok(mut producers)) => {
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
                _ => {
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

pub(super) async fn txn_offset_commit(
    broker: &Arc<Broker>,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    use crate::group::coordinator::{Committer, OffsetCommit};
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
    let list = commits.clone();
    let result = blocking(broker, move |b| {
        b.txns
            .txn_offset_commit(b, &id, pid, epoch, &group, &who, &list)
    })
    .await;
    let mut codes = match result {
        Ok(codes) => codes.into_iter(),
        Err(code) => vec![fenced_for(version, 3, code); commits.len()].into_iter(),
    };
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
