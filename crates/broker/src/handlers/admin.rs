//! Topic administration: CreateTopics (19), DeleteTopics (20), CreatePartitions (37) and
//! DeleteRecords (21). Topic changes go through the controller (metadata log, then image,
//! then partition reconciliation) on a blocking thread.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    TopicName,
};
use oxka_metadata::{CreateTopicSpec, TopicImage, Uuid};
use oxka_protocol::kafka_protocol;

use oxka_metadata::acl::{AclOperation, ResourceType};

use super::{blocking, RequestContext};
use crate::errors::{controller_error_code, partition_error_code};
use crate::Broker;

pub(super) async fn create_topics(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let version = ctx.api_version;
    // CREATE on the cluster covers every topic; else CREATE on each topic.
    let cluster_create = broker.authorize_cluster(ctx, AclOperation::Create);
    let validate_only = request.validate_only;
    // A name given twice in one request is refused for every occurrence, as Kafka does.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in &request.topics {
        *counts.entry(t.name.to_string()).or_default() += 1;
    }
    let mut response = CreateTopicsResponse::default();
    for topic in request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        result.num_partitions = -1;
        result.replication_factor = -1;
        if counts[topic.name.as_str()] > 1 {
            result.error_code = ResponseError::InvalidRequest.code();
            result.error_message = Some(format!("Create topics request from client contains multiple entries for the following topics: {}", topic.name.as_str()).into());
            response.topics.push(fit_create_result(result, version));
            continue;
        }
        if !cluster_create
            && !broker.authorize(ctx, AclOperation::Create, ResourceType::Topic, &topic.name)
        {
            result.error_code = ResponseError::TopicAuthorizationFailed.code();
            result.error_message = Some("Authorization failed.".into());
            response.topics.push(fit_create_result(result, version));
            continue;
        }
        let describe_configs = broker.authorize(
            ctx,
            AclOperation::DescribeConfigs,
            ResourceType::Topic,
            &topic.name,
        );
        let mut configs = BTreeMap::new();
        let mut config_error = None;
        for c in &topic.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => {
                    config_error = Some(format!(
                        "Null value not supported for topic configs: {}",
                        c.name.as_str()
                    ))
                }
            }
        }
        let spec = CreateTopicSpec {
            name: topic.name.to_string(),
            num_partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic
                .assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect(),
            configs,
        };
        if let Some(message) = config_error {
            result.error_code = ResponseError::InvalidConfig.code();
            result.error_message = Some(message.into());
            response.topics.push(fit_create_result(result, version));
            continue;
        }
        let outcome = blocking(broker, move |b| {
            b.change_metadata(|c| {
                c.create_topic(
                    &spec,
                    b.config.num_partitions,
                    b.config.default_replication_factor,
                    validate_only,
                )?;
                Ok(spec.clone())
            })
        })
        .await;
        match outcome {
            Ok(_) if version < 5 => {}
            Ok(spec) => {
                let image = broker.image();
                if let Some(created) = image.topic(&spec.name) {
                    if version >= 7 {
                        result.topic_id = created.topic_id;
                    }
                    result.num_partitions = created.partitions.len() as i32;
                    result.replication_factor =
                        created.partitions.first().map_or(1, |p| p.replicas.len()) as i16;
                } else {
                    // validate_only: report what would have been created.
                    result.num_partitions = if spec.assignments.is_empty() {
                        if spec.num_partitions == -1 {
                            broker.config.num_partitions
                        } else {
                            spec.num_partitions
                        }
                    } else {
                        spec.assignments.len() as i32
                    };
                    result.replication_factor = match spec.replication_factor {
                        -1 => spec
                            .assignments
                            .first()
                            .map_or(broker.config.default_replication_factor, |a| a.len() as i16),
                        n => n,
                    };
                }
                if version >= 5 && !describe_configs {
                    result.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
                } else if version >= 5 {
                    let overrides = if validate_only {
                        &spec.configs
                    } else {
                        image.topic_overrides(&spec.name)
                    };
                    result.configs = Some(
                        broker
                            .config
                            .topic_config_values(overrides)
                            .into_iter()
                            .map(|(def, value, source)| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = def.name.into();
                                c.value = Some(value.into());
                                c.config_source = source as i8;
                                c.is_sensitive = def.sensitive;
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                result.error_code = controller_error_code(&e);
                result.error_message = Some(e.to_string().into());
            }
        }
        response.topics.push(fit_create_result(result, version));
    }
    response
}

/// Creates `name` with the broker's defaults (auto-creation); the created topic, or the
/// error code a Metadata/Produce response should carry.
pub(super) async fn auto_create(
    broker: &Arc<Broker>,
    name: String,
) -> Result<Arc<TopicImage>, i16> {
    let topic = name.clone();
    let outcome = blocking(broker, move |b| {
        b.change_metadata(|c| {
            let spec = CreateTopicSpec {
                name: name.clone(),
                num_partitions: -1,
                replication_factor: -1,
                ..CreateTopicSpec::default()
            };
            match c.create_topic(
                &spec,
                b.config.num_partitions,
                b.config.default_replication_factor,
                false,
            ) {
                Ok(image) => Ok(image.topic(&name).cloned()),
                // Another request created it first: that is success for us.
                Err(oxka_metadata::ControllerError::TopicAlreadyExists(_)) => {
                    Ok(c.image().topic(&name).cloned())
                }
                Err(e) => Err(e),
            }
        })
    })
    .await;
    match outcome {
        Ok(Some(topic)) => Ok(topic),
        Ok(None) => Err(ResponseError::UnknownTopicOrPartition.code()),
        Err(e) => {
            tracing::warn!(topic = %topic, error = %e, "auto-creating topic {topic} failed");
            Err(controller_error_code(&e))
        }
    }
}

pub(super) async fn delete_topics(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let version = ctx.api_version;
    let allowed = |op, name: &str| broker.authorize(ctx, op, ResourceType::Topic, name);
    // v6 names topics by name or id in `topics`; earlier versions list names.
    let wanted: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::nil()))
            .collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for (name, topic_id) in wanted {
        let mut result = DeletableTopicResult::default();
        result.name = name.clone();
        result.topic_id = topic_id;
        let image = broker.image();
        let target = match &name {
            Some(n) => image.topic(n).cloned(),
            None => image.topic_by_id(&topic_id).cloned(),
        };
        // By name: DELETE, whether or not it exists. By id: the name is not disclosed
        // without DESCRIBE.
        let denied = match (&name, &target) {
            (Some(n), _) => !allowed(AclOperation::Delete, n),
            (None, Some(t)) if !allowed(AclOperation::Describe, &t.name) => {
                result.name = None;
                true
            }
            (None, Some(t)) => !allowed(AclOperation::Delete, &t.name),
            (None, None) => false,
        };
        if denied {
            result.error_code = ResponseError::TopicAuthorizationFailed.code();
            response.responses.push(fit_delete_result(result, version));
            continue;
        }
        let Some(target) = target else {
            result.error_code = if name.is_none() {
                ResponseError::UnknownTopicId.code()
            } else {
                ResponseError::UnknownTopicOrPartition.code()
            };
            response.responses.push(fit_delete_result(result, version));
            continue;
        };
        if version >= 6 {
            result.name = Some(TopicName(target.name.clone().into()));
            result.topic_id = target.topic_id;
        }
        let topic_name = target.name.clone();
        let outcome = blocking(broker, move |b| {
            b.change_metadata(|c| c.delete_topic(&topic_name).map(|_| ()))
        })
        .await;
        if let Err(e) = outcome {
            result.error_code = controller_error_code(&e);
            result.error_message = Some(e.to_string().into());
        }
        response.responses.push(fit_delete_result(result, version));
    }
    response
}

pub(super) async fn create_partitions(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let validate_only = request.validate_only;
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        if !broker.authorize(ctx, AclOperation::Alter, ResourceType::Topic, &topic.name) {
            result.error_code = ResponseError::TopicAuthorizationFailed.code();
            result.error_message = Some("Authorization failed.".into());
            response.results.push(result);
            continue;
        }
        let name = topic.name.to_string();
        let count = topic.count;
        let assignments: Option<Vec<Vec<i32>>> = topic.assignments.as_ref().map(|a| {
            a.iter()
                .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
        let outcome = blocking(broker, move |b| {
            b.change_metadata(|c| {
                c.create_partitions(&name, count, assignments.as_deref(), validate_only)
                    .map(|_| ())
            })
        })
        .await;
        if let Err(e) = outcome {
            result.error_code = controller_error_code(&e);
            result.error_message = Some(e.to_string().into());
        }
        response.results.push(result);
    }
    response
}

pub(super) async fn delete_records(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let authorized =
            broker.authorize(ctx, AclOperation::Delete, ResourceType::Topic, &topic.name);
        let mut t = DeleteRecordsTopicResult::default();
        for p in &topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            // Only the leader deletes records (NOT_LEADER_OR_FOLLOWER elsewhere).
            let found = if authorized {
                broker.led_partition(&topic.name, p.partition_index)
            } else {
                Err(ResponseError::TopicAuthorizationFailed.code())
            };
            match found {
                Err(code) => r.error_code = code,
                // As Kafka's Partition.deleteRecordsOnLeader: a topic whose cleanup.policy
                // lacks `delete` (compact only) refuses DeleteRecords.
                Ok(partition) if partition.rules().is_ok_and(|rules| !rules.delete) => {
                    r.error_code = ResponseError::PolicyViolation.code();
                }
                Ok(partition) => {
                    let offset = p.offset;
                    let outcome = tokio::task::spawn_blocking(move || {
                        partition.with_log(|log| {
                            // -1 means "up to the high watermark".
                            let target = if offset == -1 {
                                log.log_end_offset()
                            } else {
                                offset
                            };
                            if target < 0 || target > log.log_end_offset() {
                                return Ok(Err(ResponseError::OffsetOutOfRange.code()));
                            }
                            Ok(Ok(log.delete_records_before(target)?))
                        })
                    })
                    .await
                    .expect("delete records task panicked");
                    match outcome {
                        Ok(Ok(low)) => r.low_watermark = low,
                        Ok(Err(code)) => r.error_code = code,
                        Err(e) => r.error_code = partition_error_code(&e),
                    }
                }
            }
            t.partitions.push(r);
        }
        t.name = topic.name;
        response.topics.push(t);
    }
    response
}

/// Clears the fields a CreateTopics response version cannot carry (the codec refuses them).
fn fit_create_result(mut result: CreatableTopicResult, version: i16) -> CreatableTopicResult {
    if version < 1 {
        result.error_message = None;
    }
    if version < 5 {
        result.num_partitions = -1;
        result.replication_factor = -1;
        result.configs = None;
    }
    if version < 7 {
        result.topic_id = Uuid::nil();
    }
    result
}

/// Clears the fields a DeleteTopics response version cannot carry.
fn fit_delete_result(mut result: DeletableTopicResult, version: i16) -> DeletableTopicResult {
    if version < 5 {
        result.error_message = None;
    }
    if version < 6 {
        result.topic_id = Uuid::nil();
    }
    result
}
