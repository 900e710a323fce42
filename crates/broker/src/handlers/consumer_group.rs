//! The KIP-848 consumer group APIs: ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe
//! (69). Topic ids on the wire are turned into names for [`crate::group::consumer`] and back;
//! partitions of a topic id this broker does not know are ignored.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTopic,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as HeartbeatAssignment, TopicPartitions as HeartbeatTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::protocol::StrBytes;
use oxka_metadata::acl::{AclOperation, ResourceType};
use oxka_metadata::MetadataImage;
use oxka_protocol::kafka_protocol;

use super::RequestContext;
use crate::group::consumer::{self, Assignment};
use crate::group::coordinator::{from_topic_ids, with_topic_ids};
use crate::Broker;

/// ConsumerGroupDescribe v1 MemberType: a member of the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub(super) fn heartbeat(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    // READ on the group; subscribed topic names must all be describable (Kafka 4).
    let denied = if !broker.authorize(
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        Some(ResponseError::GroupAuthorizationFailed.code())
    } else if request.subscribed_topic_names.as_ref().is_some_and(|ts| {
        ts.iter()
            .any(|t| !broker.authorize(ctx, AclOperation::Describe, ResourceType::Topic, t))
    }) {
        Some(ResponseError::TopicAuthorizationFailed.code())
    } else {
        None
    };
    if let Some(code) = denied {
        let mut response = ConsumerGroupHeartbeatResponse::default();
        response.error_code = code;
        return response;
    }
    let image = broker.image();
    let req = consumer::Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|i| i.to_string()),
        rack_id: request.rack_id.as_ref().map(|r| r.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        subscribed_topic_regex: request
            .subscribed_topic_regex
            .as_ref()
            .map(|r| r.to_string()),
        server_assignor: request.server_assignor.as_ref().map(|a| a.to_string()),
        owned: request.topic_partitions.as_ref().map(|tps| {
            from_topic_ids(
                &image,
                tps.iter()
                    .map(|tp| (&tp.topic_id, tp.partitions.as_slice())),
            )
        }),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
        member_id_required: ctx.api_version >= 1,
        new_member_id: uuid::Uuid::new_v4().to_string(),
    };
    let result = broker
        .groups
        .consumer_heartbeat(broker, &request.group_id, req);
    let mut response = ConsumerGroupHeartbeatResponse::default();
    response.error_code = result.error;
    response.error_message = result.message.map(|m| s(&m));
    if result.error != consumer::code::NONE {
        // As Kafka's GroupCoordinatorService: an error response carries only the error code and
        // message; member_epoch stays at the field's default, 0.
        return response;
    }
    response.member_id = Some(s(&result.member_id));
    response.member_epoch = result.member_epoch;
    response.heartbeat_interval_ms = result.heartbeat_interval_ms;
    response.assignment = result.assignment.map(|a| {
        let mut out = HeartbeatAssignment::default();
        out.topic_partitions = with_topic_ids(&image, &a)
            .into_iter()
            .map(|(id, partitions)| {
                let mut t = HeartbeatTopic::default();
                t.topic_id = id;
                t.partitions = partitions;
                t
            })
            .collect();
        out
    });
    response
}

fn described(image: &MetadataImage, a: &Assignment) -> DescribedAssignment {
    let mut out = DescribedAssignment::default();
    out.topic_partitions = with_topic_ids(image, a)
        .into_iter()
        .map(|(id, partitions)| {
            let mut t = DescribedTopic::default();
            t.topic_id = id;
            t.topic_name = s(image.topic_names.get(&id).map_or("", |n| n.as_str())).into();
            t.partitions = partitions;
            t
        })
        .collect();
    out
}

pub(super) fn describe(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = broker.image();
    let mut response = ConsumerGroupDescribeResponse::default();
    response.groups = request
        .group_ids
        .iter()
        .map(|id| {
            let mut out = DescribedGroup::default();
            out.group_id = id.clone();
            let outcome = if broker.authorize(ctx, AclOperation::Describe, ResourceType::Group, id)
            {
                broker.groups.consumer_describe(broker, id)
            } else {
                Err((ResponseError::GroupAuthorizationFailed.code(), None))
            };
            match outcome {
                Err((code, message)) => {
                    out.error_code = code;
                    out.error_message = message.map(|m| s(&m));
                }
                Ok(g) => {
                    out.group_state = s(g.state);
                    out.group_epoch = g.group_epoch;
                    out.assignment_epoch = g.assignment_epoch;
                    out.assignor_name = s(&g.assignor);
                    out.members = g
                        .members
                        .iter()
                        .map(|(m, target)| {
                            let mut member = Member::default();
                            member.member_id = s(&m.member_id);
                            member.instance_id = m.instance_id.as_deref().map(s);
                            member.rack_id = m.rack_id.as_deref().map(s);
                            member.member_epoch = m.member_epoch;
                            member.client_id = s(&m.client_id);
                            member.client_host = s(&m.client_host);
                            member.subscribed_topic_names = m
                                .subscribed_topic_names
                                .iter()
                                .map(|t| s(t).into())
                                .collect();
                            member.subscribed_topic_regex =
                                m.subscribed_topic_regex.as_deref().map(s);
                            member.assignment = described(&image, &m.assigned);
                            member.target_assignment = described(&image, target);
                            if ctx.api_version >= 1 {
                                member.member_type = MEMBER_TYPE_CONSUMER;
                            }
                            member
                        })
                        .collect();
                    out.authorized_operations = if request.include_authorized_operations {
                        broker.authorized_operations(ctx, ResourceType::Group, id)
                    } else {
                        i32::MIN
                    };
                }
            }
            out
        })
        .collect();
    response
}
