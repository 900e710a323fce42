//! ElectLeaders (key 43): preferred (election type 0) or unclean (1) leader elections, run by
//! the controller ([`oxka_metadata::Controller::elect_leaders`]). Needs ALTER on the cluster.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use oxka_metadata::acl::AclOperation;
use oxka_metadata::ElectionOutcome;
use oxka_protocol::kafka_protocol;

use super::{blocking, RequestContext};
use crate::errors::controller_error_code;
use crate::Broker;

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let mut response = ElectLeadersResponse::default();
    let unclean = ctx.api_version >= 1 && request.election_type == 1;
    let asked: Option<Vec<(String, i32)>> = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
            .collect()
    });
    if !broker.authorize_cluster(ctx, AclOperation::Alter) {
        let code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_code = code;
        let failed: Vec<((String, i32), Result<(), i16>)> = asked
            .unwrap_or_default()
            .into_iter()
            .map(|tp| (tp, Err(code)))
            .collect();
        response.replica_election_results = results(failed);
        return response;
    }
    if request.election_type != 0 && !unclean {
        response.error_code = ResponseError::InvalidRequest.code();
        return response;
    }
    let outcome = blocking(broker, move |b| {
        b.change_metadata(|c| c.elect_leaders(asked.as_deref(), unclean))
    })
    .await;
    match outcome {
        Ok((_, outcomes)) => {
            let coded = outcomes
                .into_iter()
                .map(|(tp, o)| {
                    let code = match o {
                        ElectionOutcome::Elected => return (tp, Ok(())),
                        ElectionOutcome::NotNeeded => ResponseError::ElectionNotNeeded,
                        ElectionOutcome::PreferredLeaderNotAvailable => {
                            ResponseError::PreferredLeaderNotAvailable
                        }
                        ElectionOutcome::EligibleLeadersNotAvailable => {
                            ResponseError::EligibleLeadersNotAvailable
                        }
                        ElectionOutcome::UnknownTopicOrPartition => {
                            ResponseError::UnknownTopicOrPartition
                        }
                    };
                    (tp, Err(code.code()))
                })
                .collect();
            response.replica_election_results = results(coded);
        }
        Err(e) => response.error_code = controller_error_code(&e),
    }
    response
}

/// Per-topic results in the order the partitions came.
fn results(outcomes: Vec<((String, i32), Result<(), i16>)>) -> Vec<ReplicaElectionResult> {
    let mut out: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, partition), outcome) in outcomes {
        let mut r = PartitionResult::default();
        r.partition_id = partition;
        if let Err(code) = outcome {
            r.error_code = code;
            r.error_message =
                ResponseError::try_from_code(code).map(|e| StrBytes::from_string(e.to_string()));
        }
        match out.iter_mut().find(|t| t.topic.as_str() == topic) {
            Some(t) => t.partition_result.push(r),
            None => {
                let mut t = ReplicaElectionResult::default();
                t.topic = TopicName(StrBytes::from_string(topic));
                t.partition_result.push(r);
                out.push(t);
            }
        }
    }
    out
}
