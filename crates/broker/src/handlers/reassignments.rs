//! AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46): moving
//! partitions between brokers, run by the controller
//! ([`oxka_metadata::Controller::alter_reassignments`]). Both need ALTER / DESCRIBE on the
//! cluster, as in Kafka.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use oxka_metadata::acl::AclOperation;
use oxka_protocol::kafka_protocol;

use super::{blocking, RequestContext};
use crate::errors::controller_error_code;
use crate::Broker;

pub(super) async fn alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut response = AlterPartitionReassignmentsResponse::default();
    response.allow_replication_factor_change = request.allow_replication_factor_change;
    if !broker.authorize_cluster(ctx, AclOperation::Alter) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    // v0 has no such field: the replication factor may change, as before KIP-860.
    let allow_rf_change = ctx.api_version == 0 || request.allow_replication_factor_change;
    let changes: Vec<(String, i32, Option<Vec<i32>>)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                )
            })
        })
        .collect();
    let asked = changes.clone();
    let outcome = blocking(broker, move |b| {
        b.change_metadata(|c| {
            c.alter_reassignments(&changes, allow_rf_change)
                .map(|(_, outcomes)| {
                    outcomes
                        .into_iter()
                        .map(|o| o.map_err(|e| (controller_error_code(&e), e.to_string())))
                        .collect::<Vec<_>>()
                })
        })
    })
    .await;
    let outcomes = match outcome {
        Ok(outcomes) => outcomes,
        Err(e) => {
            response.error_code = controller_error_code(&e);
            response.error_message = Some(e.to_string().into());
            return response;
        }
    };
    for ((topic, partition, _), outcome) in asked.into_iter().zip(outcomes) {
        let mut r = ReassignablePartitionResponse::default();
        r.partition_index = partition;
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(message.into());
        }
        match response
            .responses
            .iter_mut()
            .find(|t| t.name.as_str() == topic)
        {
            Some(t) => t.partitions.push(r),
            None => {
                let mut t = ReassignableTopicResponse::default();
                t.name = TopicName(StrBytes::from_string(topic));
                t.partitions.push(r);
                response.responses.push(t);
            }
        }
    }
    response
}

pub(super) fn list(
    broker: &Broker,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let mut response = ListPartitionReassignmentsResponse::default();
    if !broker.authorize_cluster(ctx, AclOperation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let image = broker.image();
    let wanted = |topic: &str, partition: i32| {
        request.topics.as_ref().is_none_or(|topics| {
            topics
                .iter()
                .any(|t| t.name.as_str() == topic && t.partition_indexes.contains(&partition))
        })
    };
    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
    for topic in image.topics.values() {
        let mut ongoing = OngoingTopicReassignment::default();
        ongoing.name = TopicName(StrBytes::from_string(topic.name.clone()));
        for p in &topic.partitions {
            let Some((target, original)) = &p.reassignment else {
                continue;
            };
            if !wanted(&topic.name, p.partition) {
                continue;
            }
            let mut r = OngoingPartitionReassignment::default();
            r.partition_index = p.partition;
            r.replicas = ids(&p.replicas);
            r.adding_replicas = ids(&target
                .iter()
                .copied()
                .filter(|b| !original.contains(b))
                .collect::<Vec<_>>());
            r.removing_replicas = ids(&original
                .iter()
                .copied()
                .filter(|b| !target.contains(b))
                .collect::<Vec<_>>());
            ongoing.partitions.push(r);
        }
        if !ongoing.partitions.is_empty() {
            response.topics.push(ongoing);
        }
    }
    response
}
