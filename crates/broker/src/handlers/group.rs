//! Group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13),
//! SyncGroup (14), OffsetCommit (8), OffsetFetch (9), DescribeGroups (15), ListGroups (16),
//! DeleteGroups (42), OffsetDelete (47). They translate between the wire and
//! [`crate::group::GroupCoordinator`]; every field that a version lacks is left at its default
//! (the codec refuses to encode it otherwise).

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    delete_groups_response::DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use oxka_metadata::acl::{AclOperation, ResourceType};
use oxka_protocol::kafka_protocol;

use super::RequestContext;
use crate::group::coordinator::{Committer, OffsetCommit};
use crate::group::state::{code, JoinRequest};
use crate::leadership::{broker_endpoint, Leadership};
use crate::Broker;

const INVALID_REQUEST: i16 = 42;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

/// Whether the request's principal may perform `op` on group `id`.
fn group_allowed(broker: &Broker, ctx: &RequestContext, op: AclOperation, id: &str) -> bool {
    broker.authorize(ctx, op, ResourceType::Group, id)
}

/// Whether the request's principal may perform `op` on topic `name`.
fn topic_allowed(broker: &Broker, ctx: &RequestContext, op: AclOperation, name: &str) -> bool {
    broker.authorize(ctx, op, ResourceType::Topic, name)
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub(super) fn find_coordinator(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let v = ctx.api_version;
    let keys: Vec<String> = if v >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let image = broker.image();
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            // DESCRIBE on the group or transactional id, as Kafka checks.
            let found = match request.key_type {
                0 if !group_allowed(broker, ctx, AclOperation::Describe, &key) => {
                    Err(GROUP_AUTHORIZATION_FAILED)
                }
                1 if !broker.authorize(
                    ctx,
                    AclOperation::Describe,
                    ResourceType::TransactionalId,
                    &key,
                ) =>
                {
                    Err(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                }
                0 => broker.groups.coordinator_for(broker, &key),
                1 => broker.txns.coordinator_for(broker, &key),
                _ => Err(INVALID_REQUEST),
            };
            // The coordinator is the leader of the key's partition, reached at its registered
            // endpoint for this listener (this node's is its advertised listener). A leader
            // that is not registered, or fenced, is not available (Kafka's
            // getAliveBrokerNode).
            let endpoint = found.map(|node| {
                (
                    node,
                    if node == broker.config.node_id {
                        broker
                            .config
                            .advertised_for(&ctx.listener_name)
                            .map(|l| (l.host.clone(), l.port))
                    } else {
                        broker_endpoint(&image, node, &ctx.listener_name)
                            .map(|e| (e.host.clone(), e.port))
                    },
                )
            });
            let mut c = Coordinator::default();
            c.key = s(&key);
            match endpoint {
                Ok((node, Some((host, port)))) => {
                    c.node_id = node.into();
                    c.host = s(&host);
                    c.port = i32::from(port);
                    c.error_message = None;
                }
                result => {
                    let error = result.err().unwrap_or(code::COORDINATOR_NOT_AVAILABLE);
                    c.error_code = error;
                    c.node_id = (-1).into();
                    c.host = s("");
                    c.port = -1;
                    c.error_message = Some(s(error_message(error)));
                }
            }
            c
        })
        .collect();
    let mut response = FindCoordinatorResponse::default();
    if v >= 4 {
        response.coordinators = answers;
    } else if let Some(c) = answers.into_iter().next() {
        response.error_code = c.error_code;
        response.node_id = c.node_id;
        response.host = c.host;
        response.port = c.port;
        response.error_message = if v >= 1 { c.error_message } else { None };
    }
    response
}

fn error_message(code: i16) -> &'static str {
    match code {
        code::COORDINATOR_NOT_AVAILABLE => "The coordinator is not available.",
        INVALID_REQUEST => "Invalid coordinator key type.",
        GROUP_AUTHORIZATION_FAILED => "Group authorization failed.",
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED => "Transactional Id authorization failed.",
        _ => "",
    }
}

pub(super) async fn join_group(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let v = ctx.api_version;
    if !group_allowed(broker, ctx, AclOperation::Read, &request.group_id) {
        let mut response = JoinGroupResponse::default();
        response.error_code = GROUP_AUTHORIZATION_FAILED;
        response.generation_id = -1;
        response.member_id = request.member_id.clone();
        response.leader = s("");
        response.protocol_name = (v < 7).then(|| s(""));
        return response;
    }
    let client_id = ctx.client_id.clone().unwrap_or_default();
    let req = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if v >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        client_host: ctx.client_host.clone(),
        require_known_member_id: v >= 4,
        new_member_id: format!("{client_id}-{}", uuid::Uuid::new_v4()),
        client_id,
    };
    let result = broker.groups.join(broker, &request.group_id, req).await;
    let mut response = JoinGroupResponse::default();
    response.error_code = result.error;
    response.generation_id = result.generation;
    if v >= 7 {
        response.protocol_type = result.protocol_type.map(|p| s(&p));
        response.protocol_name = result.protocol_name.map(|p| s(&p));
    } else {
        response.protocol_name = Some(s(result.protocol_name.as_deref().unwrap_or("")));
    }
    response.leader = s(&result.leader);
    if v >= 9 {
        response.skip_assignment = result.skip_assignment;
    }
    response.member_id = s(&result.member_id);
    response.members = result
        .members
        .into_iter()
        .map(|m| {
            let mut out = JoinGroupResponseMember::default();
            out.member_id = s(&m.member_id);
            if v >= 5 {
                out.group_instance_id = m.group_instance_id.map(|i| s(&i));
            }
            out.metadata = m.metadata;
            out
        })
        .collect();
    response
}

pub(super) async fn sync_group(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let v = ctx.api_version;
    if !group_allowed(broker, ctx, AclOperation::Read, &request.group_id) {
        let mut response = SyncGroupResponse::default();
        response.error_code = GROUP_AUTHORIZATION_FAILED;
        return response;
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let result = broker
        .groups
        .sync(
            broker,
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
            request.protocol_type.as_deref(),
            request.protocol_name.as_deref(),
            assignments,
        )
        .await;
    let mut response = SyncGroupResponse::default();
    response.error_code = result.error;
    if v >= 5 {
        response.protocol_type = result.protocol_type.map(|p| s(&p));
        response.protocol_name = result.protocol_name.map(|p| s(&p));
    }
    response.assignment = result.assignment;
    response
}

pub(super) fn heartbeat(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    let mut response = HeartbeatResponse::default();
    if !group_allowed(broker, ctx, AclOperation::Read, &request.group_id) {
        response.error_code = GROUP_AUTHORIZATION_FAILED;
        return response;
    }
    response.error_code = broker.groups.heartbeat(
        broker,
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    response
}

pub(super) fn leave_group(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let v = ctx.api_version;
    let members: Vec<(String, Option<String>)> = if v >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    if !group_allowed(broker, ctx, AclOperation::Read, &request.group_id) {
        response.error_code = GROUP_AUTHORIZATION_FAILED;
        return response;
    }
    match broker.groups.leave(broker, &request.group_id, &members) {
        Err(e) => response.error_code = e,
        Ok(codes) if v >= 3 => {
            response.members = members
                .into_iter()
                .zip(codes)
                .map(|((member_id, instance), code)| {
                    let mut m = MemberResponse::default();
                    m.member_id = s(&member_id);
                    m.group_instance_id = instance.map(|i| s(&i));
                    m.error_code = code;
                    m
                })
                .collect();
        }
        Ok(codes) => response.error_code = codes.first().copied().unwrap_or(code::NONE),
    }
    response
}

pub(super) fn offset_commit(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let v = ctx.api_version;
    let who = Committer {
        member_id: request.member_id.to_string(),
        group_instance_id: if v >= 7 {
            request.group_instance_id.as_ref().map(|i| i.to_string())
        } else {
            None
        },
        generation: request.generation_id_or_member_epoch,
        retention_time_ms: if (2..=4).contains(&v) {
            request.retention_time_ms
        } else {
            -1
        },
        api_version: v,
    };
    // As KafkaApis: READ on the group (else every partition fails), then per partition READ on
    // its topic, then a partition of a topic that does not exist is answered
    // UNKNOWN_TOPIC_OR_PARTITION; only the rest reach the coordinator (which is not asked at all
    // when nothing is left).
    let group_ok = group_allowed(broker, ctx, AclOperation::Read, &request.group_id);
    let answered: Vec<Option<i16>> = request
        .topics
        .iter()
        .flat_map(|t| {
            let topic_code = if !group_ok {
                Some(GROUP_AUTHORIZATION_FAILED)
            } else if !topic_allowed(broker, ctx, AclOperation::Read, &t.name) {
                Some(TOPIC_AUTHORIZATION_FAILED)
            } else {
                None
            };
            t.partitions.iter().map(move |p| {
                // Known to the cluster, wherever it is led (in a cluster most partitions
                // a group commits are led by other brokers).
                topic_code.or_else(|| {
                    (broker.leadership(&t.name, p.partition_index) == Leadership::Unknown).then(
                        || kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code(),
                    )
                })
            })
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
                leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .zip(&answered)
        .filter_map(|(c, a)| a.is_none().then_some(c))
        .collect();
    let codes = if commits.is_empty() {
        Vec::new()
    } else {
        match broker
            .groups
            .commit_offsets(broker, &request.group_id, &who, &commits)
        {
            Ok(codes) => codes,
            Err(e) => vec![e; commits.len()],
        }
    };
    let mut committed = codes.into_iter();
    let mut codes = answered
        .into_iter()
        .map(|a| a.unwrap_or_else(|| committed.next().unwrap_or(code::NONE)));
    let mut response = OffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = OffsetCommitResponsePartition::default();
                    out.partition_index = p.partition_index;
                    out.error_code = codes.next().unwrap_or(code::NONE);
                    out
                })
                .collect();
            topic
        })
        .collect();
    response
}

/// One partition's answer: `(partition, offset, leader epoch, metadata, error)`.
type OffsetRow = (i32, i64, i32, String, i16);

/// One group's offsets as OffsetFetch answers them, by topic, or a group-level error.
type FetchedOffsets = Result<Vec<(String, Vec<OffsetRow>)>, i16>;

fn fetch_group_offsets(
    broker: &Arc<Broker>,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> FetchedOffsets {
    let wanted = topics.map(|ts| {
        ts.into_iter()
            .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
            .collect()
    });
    let found = broker.groups.fetch_offsets(broker, group_id, wanted)?;
    let mut out: Vec<(String, Vec<OffsetRow>)> = Vec::new();
    for (topic, partition, value) in found {
        let row = match value {
            Some(v) => (partition, v.offset, v.leader_epoch, v.metadata, code::NONE),
            None => (partition, -1, -1, String::new(), code::NONE),
        };
        match out.last_mut() {
            Some((t, rows)) if *t == topic => rows.push(row),
            _ => out.push((topic, vec![row])),
        }
    }
    Ok(out)
}

/// [`fetch_group_offsets`] behind Kafka's checks: DESCRIBE on the group (else the group-level
/// GROUP_AUTHORIZATION_FAILED), DESCRIBE on each topic: named partitions of other topics
/// answer TOPIC_AUTHORIZATION_FAILED, and an all-topics fetch leaves those topics out.
fn fetch_authorized_offsets(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> FetchedOffsets {
    let explicit = topics.is_some();
    let found = fetch_group_offsets(broker, group_id, topics)?;
    Ok(found
        .into_iter()
        .filter_map(|(topic, rows)| {
            if topic_allowed(broker, ctx, AclOperation::Describe, &topic) {
                Some((topic, rows))
            } else if explicit {
                let rows = rows
                    .into_iter()
                    .map(|(p, ..)| (p, -1, -1, String::new(), TOPIC_AUTHORIZATION_FAILED))
                    .collect();
                Some((topic, rows))
            } else {
                None
            }
        })
        .collect())
}

/// GROUP_AUTHORIZATION_FAILED unless the principal may describe the group.
fn describe_group_allowed(broker: &Broker, ctx: &RequestContext, id: &str) -> Result<(), i16> {
    if group_allowed(broker, ctx, AclOperation::Describe, id) {
        Ok(())
    } else {
        Err(GROUP_AUTHORIZATION_FAILED)
    }
}

/// OffsetFetch with require_stable while a transactional offset commit is pending.
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

pub(super) fn offset_fetch(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let v = ctx.api_version;
    let mut response = OffsetFetchResponse::default();
    if v >= 8 {
        response.groups = request
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let mut group = OffsetFetchResponseGroup::default();
                group.group_id = g.group_id.clone();
                let checked = describe_group_allowed(broker, ctx, &g.group_id)
                    .and_then(|()| {
                        broker.groups.validate_offset_fetch(
                            &g.group_id,
                            g.member_id.as_deref(),
                            g.member_epoch,
                        )
                    })
                    .and_then(|()| fetch_authorized_offsets(broker, ctx, &g.group_id, topics));
                match checked {
                    Err(e) => group.error_code = e,
                    Ok(found) => {
                        group.topics = found
                            .into_iter()
                            .map(|(name, rows)| {
                                let mut t = OffsetFetchResponseTopics::default();
                                t.name = s(&name).into();
                                t.partitions = rows
                                    .into_iter()
                                    .map(|(p, offset, epoch, metadata, error)| {
                                        let mut out = OffsetFetchResponsePartitions::default();
                                        out.partition_index = p;
                                        out.committed_offset = offset;
                                        out.committed_leader_epoch = epoch;
                                        out.metadata = Some(s(&metadata));
                                        out.error_code = error;
                                        // A transactional commit is pending (transactions).
                                        if request.require_stable
                                            && broker.groups.has_pending_txn_offset(
                                                &g.group_id,
                                                &name,
                                                p,
                                            )
                                        {
                                            out.committed_offset = -1;
                                            out.error_code = UNSTABLE_OFFSET_COMMIT;
                                        }
                                        out
                                    })
                                    .collect();
                                t
                            })
                            .collect();
                    }
                }
                group
            })
            .collect();
        return response;
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let fetched = describe_group_allowed(broker, ctx, &request.group_id)
        .and_then(|()| fetch_authorized_offsets(broker, ctx, &request.group_id, requested.clone()));
    let (found, group_error) = match fetched {
        Ok(found) => (found, code::NONE),
        // v0–v1 have no group-level error: each requested partition carries it.
        Err(e) => (
            requested
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| {
                    let rows = ps.into_iter().map(|p| (p, -1, -1, String::new(), e));
                    (t, rows.collect())
                })
                .collect(),
            e,
        ),
    };
    if v >= 2 {
        response.error_code = group_error;
    }
    response.topics = found
        .into_iter()
        .map(|(name, rows)| {
            let mut t = OffsetFetchResponseTopic::default();
            t.name = s(&name).into();
            t.partitions = rows
                .into_iter()
                .map(|(p, offset, epoch, metadata, error)| {
                    let mut out = OffsetFetchResponsePartition::default();
                    out.partition_index = p;
                    out.committed_offset = offset;
                    if v >= 5 {
                        out.committed_leader_epoch = epoch;
                    }
                    out.metadata = Some(s(&metadata));
                    out.error_code = error;
                    // v7: a transactional commit is pending (transactions).
                    if request.require_stable
                        && broker
                            .groups
                            .has_pending_txn_offset(&request.group_id, &name, p)
                    {
                        out.committed_offset = -1;
                        out.error_code = UNSTABLE_OFFSET_COMMIT;
                    }
                    out
                })
                .collect();
            t
        })
        .collect();
    response
}

pub(super) fn list_groups(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let v = ctx.api_version;
    let mut response = ListGroupsResponse::default();
    let groups = match broker.groups.list() {
        Ok(groups) => groups,
        Err(e) => {
            response.error_code = e;
            return response;
        }
    };
    let states: Vec<String> = if v >= 4 {
        request
            .states_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    // DESCRIBE on the cluster lists every group; else only groups the principal may describe.
    let all_groups = broker.authorize_cluster(ctx, AclOperation::Describe);
    let types: Vec<String> = if v >= 5 {
        request
            .types_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    response.groups = groups
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state_name.to_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .filter(|g| all_groups || group_allowed(broker, ctx, AclOperation::Describe, &g.group_id))
        .map(|g| {
            let mut out = ListedGroup::default();
            out.group_id = s(&g.group_id).into();
            out.protocol_type = s(&g.protocol_type);
            if v >= 4 {
                out.group_state = s(g.state_name);
            }
            if v >= 5 {
                out.group_type = s(g.group_type);
            }
            out
        })
        .collect();
    response
}

pub(super) fn describe_groups(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let mut response = DescribeGroupsResponse::default();
    response.groups = request
        .groups
        .iter()
        .map(|id| {
            let mut out = DescribedGroup::default();
            out.group_id = id.clone();
            let described = describe_group_allowed(broker, ctx, id)
                .and_then(|()| broker.groups.describe(broker, id));
            match described {
                Err(e) => out.error_code = e,
                Ok(g) => {
                    out.group_state = s(g.state_name);
                    out.protocol_type = s(&g.protocol_type);
                    out.protocol_data = s(&g.protocol_name);
                    out.members = g
                        .snapshot
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut member = DescribedGroupMember::default();
                            member.member_id = s(&m.member_id);
                            if v >= 4 {
                                member.group_instance_id = m.group_instance_id.map(|i| s(&i));
                            }
                            member.client_id = s(&m.client_id);
                            member.client_host = s(&m.client_host);
                            member.member_metadata = m.subscription;
                            member.member_assignment = m.assignment;
                            member
                        })
                        .collect();
                    if v >= 3 && request.include_authorized_operations {
                        out.authorized_operations =
                            broker.authorized_operations(ctx, ResourceType::Group, id);
                    }
                }
            }
            out
        })
        .collect();
    response
}

pub(super) fn delete_groups(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    response.results = request
        .groups_names
        .iter()
        .map(|id| {
            let mut out = DeletableGroupResult::default();
            out.group_id = id.clone();
            out.error_code = if group_allowed(broker, ctx, AclOperation::Delete, id) {
                broker.groups.delete_group(broker, id)
            } else {
                GROUP_AUTHORIZATION_FAILED
            };
            out
        })
        .collect();
    response
}

/// OffsetDelete: DELETE on the group (else a top-level GROUP_AUTHORIZATION_FAILED), READ on
/// each topic (else TOPIC_AUTHORIZATION_FAILED for its partitions).
pub(super) fn offset_delete(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let mut response = OffsetDeleteResponse::default();
    if !group_allowed(broker, ctx, AclOperation::Delete, &request.group_id) {
        response.error_code = GROUP_AUTHORIZATION_FAILED;
        return response;
    }
    let readable: Vec<bool> = request
        .topics
        .iter()
        .map(|t| topic_allowed(broker, ctx, AclOperation::Read, &t.name))
        .collect();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .zip(&readable)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let codes = match broker
        .groups
        .delete_offsets(broker, &request.group_id, &partitions)
    {
        Ok(codes) => codes,
        Err(e) => {
            response.error_code = e;
            return response;
        }
    };
    let mut deleted = codes.into_iter();
    let mut codes = request
        .topics
        .iter()
        .zip(&readable)
        .flat_map(|(t, ok)| t.partitions.iter().map(move |_| *ok))
        .map(|ok| {
            if ok {
                deleted.next().unwrap_or(code::NONE)
            } else {
                TOPIC_AUTHORIZATION_FAILED
            }
        })
        .collect::<Vec<_>>()
        .into_iter();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = OffsetDeleteResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = OffsetDeleteResponsePartition::default();
                    out.partition_index = p.partition_index;
                    out.error_code = codes.next().unwrap_or(code::NONE);
                    out
                })
                .collect();
            topic
        })
        .collect();
    response
}
