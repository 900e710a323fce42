//! Metadata (key 3) and DescribeCluster (key 60): brokers as advertised on the listener the
//! client connected to, and topics from the current metadata image. Metadata may create
//! missing topics when both the request and `auto.create.topics.enable` allow it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use oxka_metadata::acl::{AclOperation, ResourceType};
use oxka_metadata::{BrokerEndpoint, MetadataImage, TopicImage, Uuid};
use oxka_protocol::kafka_protocol;

use super::{admin, RequestContext};
use crate::Broker;

/// Kafka's internal topics, reported with `is_internal`.
pub(crate) fn is_internal(topic: &str) -> bool {
    topic == "__consumer_offsets" || topic == "__transaction_state"
}

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let version = ctx.api_version;
    let mut response = MetadataResponse::default();
    for (id, endpoint) in listed_brokers(&broker.image(), &ctx.listener_name) {
        let mut b = MetadataResponseBroker::default();
        b.node_id = BrokerId(id);
        b.host = endpoint.host.clone().into();
        b.port = i32::from(endpoint.port);
        response.brokers.push(b);
    }
    if version >= 1 {
        response.controller_id = BrokerId(broker.controller_id());
    }
    response.cluster_authorized_operations = i32::MIN;
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = cluster_operations(broker, ctx);
    }
    let describe =
        |name: &str| broker.authorize(ctx, AclOperation::Describe, ResourceType::Topic, name);
    // Auto-creation needs CREATE on the cluster or on the topic.
    let may_create = |name: &str| {
        broker.authorize_cluster(ctx, AclOperation::Create)
            || broker.authorize(ctx, AclOperation::Create, ResourceType::Topic, name)
    };

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let allow_create = broker.config.auto_create_topics_enable
        && (version < 4 || request.allow_auto_topic_creation);
    let mut image = broker.image();
    if version >= 2 {
        response.cluster_id = Some(image.cluster_id.clone().into());
    }
    match requested {
        None => {
            // Topics the principal may not describe are left out, not reported.
            response.topics = image
                .topics
                .values()
                .filter(|t| describe(&t.name))
                .map(|t| topic_response(t, version))
                .collect();
        }
        Some(topics) => {
            for wanted in topics {
                let found = match &wanted.name {
                    Some(name) => image.topic(name).cloned(),
                    None => image.topic_by_id(&wanted.topic_id).cloned(),
                };
                // Whether a named topic exists is not disclosed without DESCRIBE.
                let denied = match (&found, &wanted.name) {
                    (_, Some(name)) => !describe(name),
                    (Some(t), None) => !describe(&t.name),
                    (None, None) => false,
                };
                if denied {
                    response.topics.push(error_topic(
                        wanted.name,
                        wanted.topic_id,
                        ResponseError::TopicAuthorizationFailed.code(),
                    ));
                    continue;
                }
                let topic = match (found, wanted.name) {
                    (Some(t), _) => topic_response(&t, version),
                    (None, Some(name)) if allow_create && !may_create(&name) => error_topic(
                        Some(name),
                        Uuid::nil(),
                        ResponseError::TopicAuthorizationFailed.code(),
                    ),
                    (None, Some(name)) => {
                        match create_for_metadata(broker, &name, allow_create).await {
                            Ok(created) => {
                                image = broker.image();
                                topic_response(&created, version)
                            }
                            Err(code) => error_topic(Some(name), Uuid::nil(), code),
                        }
                    }
                    (None, None) => {
                        error_topic(None, wanted.topic_id, ResponseError::UnknownTopicId.code())
                    }
                };
                response.topics.push(topic);
            }
        }
    }
    if version >= 8 && request.include_topic_authorized_operations {
        for t in &mut response.topics {
            if t.error_code == ResponseError::TopicAuthorizationFailed.code() {
                continue;
            }
            if let Some(name) = &t.name {
                t.topic_authorized_operations =
                    broker.authorized_operations(ctx, ResourceType::Topic, name);
            }
        }
    }
    response
}

/// The cluster's authorized-operations bitfield as Kafka reports it: 0 without DESCRIBE on
/// the cluster.
fn cluster_operations(broker: &Broker, ctx: &RequestContext) -> i32 {
    if broker.authorize_cluster(ctx, AclOperation::Describe) {
        broker.authorized_operations(ctx, ResourceType::Cluster, oxka_metadata::acl::CLUSTER_NAME)
    } else {
        0
    }
}

/// Creates a topic on behalf of a Metadata or Produce request, or says why not.
pub(super) async fn create_for_metadata(
    broker: &Arc<Broker>,
    name: &TopicName,
    allow: bool,
) -> Result<Arc<TopicImage>, i16> {
    if oxka_metadata::validate_topic_name(name).is_err() {
        return Err(ResponseError::InvalidTopicException.code());
    }
    if !allow {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    admin::auto_create(broker, name.to_string()).await
}

fn error_topic(name: Option<TopicName>, topic_id: Uuid, code: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = code;
    t.name = name;
    t.topic_id = topic_id;
    t.topic_authorized_operations = i32::MIN;
    t
}

fn topic_response(topic: &TopicImage, version: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(topic.name.clone().into()));
    if version >= 10 {
        t.topic_id = topic.topic_id;
    }
    if version >= 1 {
        t.is_internal = is_internal(&topic.name);
    }
    t.topic_authorized_operations = i32::MIN;
    t.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut r = MetadataResponsePartition::default();
            r.partition_index = p.partition;
            r.leader_id = BrokerId(p.leader);
            if version >= 7 {
                r.leader_epoch = p.leader_epoch;
            }
            r.replica_nodes = p.replicas.iter().copied().map(BrokerId).collect();
            r.isr_nodes = p.isr.iter().copied().map(BrokerId).collect();
            r
        })
        .collect();
    t
}

pub(super) fn describe_cluster(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.cluster_id = broker.image().cluster_id.clone().into();
    response.controller_id = BrokerId(broker.controller_id());
    response.endpoint_type = request.endpoint_type;
    response.cluster_authorized_operations = i32::MIN;
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = cluster_operations(broker, ctx);
    }
    // A broker listener only describes brokers (endpoint type 1).
    if request.endpoint_type != 1 {
        response.error_code = ResponseError::MismatchedEndpointType.code();
        response.error_message = Some("The request was sent to an endpoint of type BROKER".into());
        return response;
    }
    for (id, endpoint) in listed_brokers(&broker.image(), &ctx.listener_name) {
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(id);
        b.host = endpoint.host.clone().into();
        b.port = i32::from(endpoint.port);
        response.brokers.push(b);
    }
    response
}

/// The brokers a Metadata or DescribeCluster answer lists: every registered broker that is
/// not fenced, with its endpoint for the listener the request came in on (or, as before the
/// listener names matched, its first endpoint), in id order.
fn listed_brokers<'a>(
    image: &'a MetadataImage,
    listener: &str,
) -> impl Iterator<Item = (i32, &'a BrokerEndpoint)> + 'a {
    let listener = listener.to_owned();
    image.unfenced_brokers().filter_map(move |b| {
        b.endpoint(&listener)
            .or_else(|| b.endpoints.first())
            .map(|e| (b.broker_id, e))
    })
}
