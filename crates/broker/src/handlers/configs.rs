//! DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44).
//!
//! Topic configs report their source (topic override, static broker config, default) and,
//! when asked, their synonyms. A BROKER resource (this broker's id, or "" for the cluster
//! default) takes Kafka's dynamic keys, checked as Kafka's ConfigAdminManager checks them:
//! topic-config synonyms change topic defaults; the other dynamic keys Kafka has (Kerberos,
//! login refresh, thread pools: `oxka_metadata::dynamic_broker_config`) are stored and
//! described but have no effect, which is logged as a warning on every change; every other key
//! is refused with INVALID_REQUEST, as Kafka refuses keys it cannot update dynamically.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use oxka_metadata::dynamic_broker_config::{self, DynamicBrokerKey, KeyKind};
use oxka_metadata::topic_config::{self, ConfigKind};
use oxka_protocol::kafka_protocol;

use oxka_metadata::acl::{AclOperation, ResourceType};

use super::{blocking, RequestContext};
use crate::config::ConfigSource;
use crate::errors::controller_error_code;
use crate::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// DescribeConfigs' ConfigType codes.
fn config_type(kind: ConfigKind) -> i8 {
    match kind {
        ConfigKind::Bool => 1,
        ConfigKind::Enum(_) => 2,
        ConfigKind::Int { .. } => 3,
        ConfigKind::Long { .. } => 5,
        ConfigKind::Double { .. } => 6,
        ConfigKind::List(_) => 7,
    }
}

type ResourceError = (i16, String);

/// Kafka's check for a config resource: `op` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic
/// (TOPIC_AUTHORIZATION_FAILED), or on the cluster for a broker (CLUSTER_AUTHORIZATION_FAILED).
fn authorize_resource(
    broker: &Broker,
    ctx: &RequestContext,
    op: AclOperation,
    resource_type: i8,
    name: &str,
) -> Result<(), ResourceError> {
    match resource_type {
        TOPIC if !broker.authorize(ctx, op, ResourceType::Topic, name) => Err((
            ResponseError::TopicAuthorizationFailed.code(),
            "Topic authorization failed.".into(),
        )),
        BROKER if !broker.authorize_cluster(ctx, op) => Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            "Cluster authorization failed.".into(),
        )),
        _ => Ok(()),
    }
}

pub(super) fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let version = ctx.api_version;
    let synonyms = request.include_synonyms && version >= 1;
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let keys: Option<Vec<String>> = resource
            .configuration_keys
            .map(|k| k.iter().map(|s| s.to_string()).collect());
        let wanted = |name: &str| keys.as_ref().is_none_or(|k| k.iter().any(|x| x == name));
        let authorized = authorize_resource(
            broker,
            ctx,
            AclOperation::DescribeConfigs,
            resource.resource_type,
            &resource.resource_name,
        );
        let outcome = match resource.resource_type {
            _ if authorized.is_err() => authorized.map(|()| Vec::new()),
            TOPIC => describe_topic(broker, &resource.resource_name, synonyms, &wanted),
            BROKER => describe_broker(broker, &resource.resource_name, synonyms, &wanted),
            other => Err((
                ResponseError::InvalidRequest.code(),
                format!("Unsupported resource type {other}"),
            )),
        };
        match outcome {
            Ok(mut configs) => {
                if version < 3 {
                    // ConfigType arrived in v3; earlier versions must leave it unset.
                    configs.iter_mut().for_each(|c| c.config_type = 0);
                }
                result.configs = configs;
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(message.into());
            }
        }
        response.results.push(result);
    }
    response
}

fn entry(
    name: &str,
    value: &str,
    source: ConfigSource,
    read_only: bool,
    sensitive: bool,
    kind: i8,
) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = name.to_owned().into();
    c.value = (!sensitive).then(|| value.to_owned().into());
    c.read_only = read_only;
    c.config_source = source as i8;
    c.is_sensitive = sensitive;
    c.config_type = kind;
    c
}

fn synonym(name: &str, value: &str, source: ConfigSource) -> DescribeConfigsSynonym {
    let mut s = DescribeConfigsSynonym::default();
    s.name = name.to_owned().into();
    s.value = Some(value.to_owned().into());
    s.source = source as i8;
    s
}

fn describe_topic(
    broker: &Broker,
    name: &str,
    with_synonyms: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ResourceError> {
    if let Err(message) = oxka_metadata::validate_topic_name(name) {
        return Err((ResponseError::InvalidTopicException.code(), message));
    }
    let image = broker.image();
    if image.topic(name).is_none() {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("Topic {name} does not exist"),
        ));
    }
    let overrides = image.topic_overrides(name);
    Ok(broker
        .config
        .topic_config_values(overrides)
        .into_iter()
        .filter(|(def, _, _)| wanted(def.name))
        .map(|(def, value, source)| {
            let mut c = entry(
                def.name,
                &value,
                source,
                false,
                def.sensitive,
                config_type(def.kind),
            );
            if with_synonyms {
                if let Some(v) = overrides.get(def.name) {
                    c.synonyms
                        .push(synonym(def.name, v, ConfigSource::DynamicTopic));
                }
                let (broker_value, broker_source) = broker.config.topic_default(def);
                c.synonyms
                    .push(synonym(def.broker_synonym, &broker_value, broker_source));
            }
            c
        })
        .collect())
}

fn describe_broker(
    broker: &Broker,
    name: &str,
    with_synonyms: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ResourceError> {
    check_broker_name(broker, name)?;
    // The cluster default resource ("") describes only the dynamic defaults that are set.
    let entries: Vec<(String, String, ConfigSource)> = if name.is_empty() {
        broker
            .config
            .dynamic()
            .cluster
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), ConfigSource::DynamicDefaultBroker))
            .collect()
    } else {
        with_unused_dynamic_defaults(broker.config.entries())
    };
    Ok(entries
        .into_iter()
        .filter(|(key, _, _)| wanted(key))
        .map(|(key, value, source)| {
            let dynamic = topic_config::by_broker_synonym(&key);
            let unused = dynamic_broker_config::lookup(&key);
            let kind = match (dynamic, unused) {
                (Some(d), _) => config_type(d.kind),
                (None, Some(k)) => key_type(k.kind),
                (None, None) => 2,
            };
            let read_only = dynamic.is_none() && unused.is_none();
            let sensitive = key.contains("password")
                || key.contains("secret")
                || key.ends_with("sasl.jaas.config")
                || key.ends_with("ssl.keystore.key")
                || key == "oxka.scram.users";
            let mut c = entry(&key, &value, source, read_only, sensitive, kind);
            if with_synonyms {
                c.synonyms.push(synonym(&key, &value, source));
            }
            c
        })
        .collect())
}

/// DescribeConfigs' ConfigType code of a stored-but-unused dynamic broker key.
fn key_type(kind: KeyKind) -> i8 {
    match kind {
        KeyKind::Str => 2,
        KeyKind::Int { .. } => 3,
        KeyKind::Short => 4,
        KeyKind::Long => 5,
        KeyKind::Double => 6,
        KeyKind::List => 7,
    }
}

/// A broker's entries plus, for each of Kafka's dynamic keys that Oxka stores but does not use
/// and that is not set, its Kafka default (source DEFAULT_CONFIG), as Kafka lists every key.
fn with_unused_dynamic_defaults(
    mut entries: Vec<(String, String, ConfigSource)>,
) -> Vec<(String, String, ConfigSource)> {
    for key in dynamic_broker_config::KEYS {
        if !entries.iter().any(|(k, _, _)| k == key.name) {
            entries.push((key.name.into(), key.default.into(), ConfigSource::Default));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// Kafka's broker-side check of a BROKER resource's new dynamic settings (ConfigAdminManager
/// .validateBrokerConfigChange): non-dynamic keys, value types, per-broker keys on the cluster
/// default and thread-pool bounds, each refused with INVALID_REQUEST.
fn check_dynamic_broker(
    broker: &Broker,
    name: &str,
    configs: &BTreeMap<String, String>,
) -> Result<(), ResourceError> {
    check_broker_name(broker, name)?;
    let entries = broker.config.entries();
    let current = |key: &DynamicBrokerKey| -> i64 {
        entries
            .iter()
            .find(|(k, _, _)| k == key.name)
            .map_or(key.default, |(_, v, _)| v.as_str())
            .trim()
            .parse()
            .unwrap_or(0)
    };
    dynamic_broker_config::validate(configs, !name.is_empty(), &current)
        .map_err(|message| (ResponseError::InvalidRequest.code(), message))
}

/// Logs, for each dynamic key Oxka stores but does not use whose value this change set or
/// altered, that it has no effect and why.
fn warn_unused_dynamic(
    name: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) {
    for (key, value) in after {
        let Some(unused) = dynamic_broker_config::lookup(key) else {
            continue;
        };
        if before.get(key) != Some(value) {
            let resource = if name.is_empty() {
                "the cluster default".to_owned()
            } else {
                format!("broker {name}")
            };
            tracing::warn!(
                "dynamic config {key}={value} stored for {resource} as Kafka does, but it has \
                 no effect: {}",
                unused.no_effect
            );
        }
    }
}

/// Checks that a broker resource names this broker or the cluster default ("").
fn check_broker_name(broker: &Broker, name: &str) -> Result<(), ResourceError> {
    if name.is_empty() || name == broker.config.node_id.to_string() {
        return Ok(());
    }
    Err((
        ResponseError::InvalidRequest.code(),
        format!(
            "Unexpected broker id, expected {} but received {name}",
            broker.config.node_id
        ),
    ))
}

fn unsupported_resource(resource_type: i8) -> ResourceError {
    (
        ResponseError::InvalidRequest.code(),
        format!("Unsupported resource type {resource_type}"),
    )
}

pub(super) async fn alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let mut configs = BTreeMap::new();
        let mut null_key = None;
        for c in &resource.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => null_key = Some(c.name.to_string()),
            }
        }
        let authorized = authorize_resource(
            broker,
            ctx,
            AclOperation::AlterConfigs,
            resource.resource_type,
            &name,
        );
        let outcome = match (resource.resource_type, null_key) {
            _ if authorized.is_err() => authorized,
            (_, Some(key)) => Err((
                ResponseError::InvalidRequest.code(),
                format!("Null value not supported for : {key}"),
            )),
            (BROKER, None) => match check_dynamic_broker(broker, &name, &configs) {
                Ok(()) => replace_configs(broker, BROKER, name, configs, validate_only).await,
                Err(e) => Err(e),
            },
            (TOPIC, None) => replace_configs(broker, TOPIC, name, configs, validate_only).await,
            (other, None) => Err(unsupported_resource(other)),
        };
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(message.into());
        }
        response.responses.push(r);
    }
    response
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// One IncrementalAlterConfigs operation: key, operation, value.
type ConfigOp = (String, i8, Option<String>);

pub(super) async fn incremental_alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let ops: Vec<ConfigOp> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let kind = resource.resource_type;
        let authorized = authorize_resource(broker, ctx, AclOperation::AlterConfigs, kind, &name);
        let outcome = match kind {
            _ if authorized.is_err() => authorized,
            TOPIC | BROKER => match incremental_configs(broker, kind, &name, &ops) {
                Ok(configs) if kind == BROKER => {
                    match check_dynamic_broker(broker, &name, &configs) {
                        Ok(()) => replace_configs(broker, kind, name, configs, validate_only).await,
                        Err(e) => Err(e),
                    }
                }
                Ok(configs) => replace_configs(broker, kind, name, configs, validate_only).await,
                Err(e) => Err(e),
            },
            other => Err(unsupported_resource(other)),
        };
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(message.into());
        }
        response.responses.push(r);
    }
    response
}

/// Applies SET/DELETE/APPEND/SUBTRACT to a resource's current settings (a topic's overrides,
/// or a broker's dynamic configs), returning the new settings.
fn incremental_configs(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    ops: &[ConfigOp],
) -> Result<BTreeMap<String, String>, ResourceError> {
    let image = broker.image();
    let mut current = if resource_type == TOPIC {
        if image.topic(name).is_none() {
            return Err((
                ResponseError::UnknownTopicOrPartition.code(),
                format!("Topic {name} does not exist"),
            ));
        }
        image.topic_overrides(name).clone()
    } else {
        check_broker_name(broker, name)?;
        image.broker_configs.get(name).cloned().unwrap_or_default()
    };
    let mut seen = std::collections::BTreeSet::new();
    if let Some((dup, _, _)) = ops.iter().find(|(k, _, _)| !seen.insert(k.clone())) {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("Error due to duplicate config keys : {dup}"),
        ));
    }
    for (key, op, value) in ops {
        // A key's list-ness and the default APPEND/SUBTRACT start from; None: not a key Oxka
        // knows (on a broker resource, SET/DELETE of it is left to Kafka's dynamic-key check).
        let known: Option<(bool, String)> = if resource_type == TOPIC {
            topic_config::lookup(key).map(|d| {
                (
                    matches!(d.kind, ConfigKind::List(_)),
                    broker.config.topic_default(d).0,
                )
            })
        } else if let Some(d) = topic_config::by_broker_synonym(key) {
            Some((
                matches!(d.kind, ConfigKind::List(_)),
                broker.config.topic_default(d).0,
            ))
        } else {
            dynamic_broker_config::lookup(key)
                .map(|k| (k.kind == KeyKind::List, k.default.to_owned()))
        };
        let known = match known {
            Some(k) => k,
            None if resource_type == BROKER && matches!(*op, SET | DELETE) => {
                (false, String::new())
            }
            None if resource_type == TOPIC => {
                return Err((
                    ResponseError::InvalidConfig.code(),
                    format!("Unknown topic config name: {key}"),
                ))
            }
            None => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!("Cannot update these configs dynamically: Set({key})"),
                ))
            }
        };
        let (is_list, list_default) = known;
        match *op {
            SET => {
                let Some(v) = value else {
                    return Err((
                        ResponseError::InvalidRequest.code(),
                        format!("Null value not supported for : {key}"),
                    ));
                };
                current.insert(key.clone(), v.clone());
            }
            DELETE => {
                current.remove(key);
            }
            APPEND | SUBTRACT => {
                if !is_list {
                    return Err((
                        ResponseError::InvalidConfig.code(),
                        format!("Config value append is not allowed for config key: {key}"),
                    ));
                }
                let base = current.get(key).cloned().unwrap_or(list_default);
                let list = |s: &str| -> Vec<String> {
                    s.split(',')
                        .map(|i| i.trim().to_owned())
                        .filter(|i| !i.is_empty())
                        .collect()
                };
                let mut items = list(&base);
                let given = list(value.as_deref().unwrap_or(""));
                if *op == APPEND {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                current.insert(key.clone(), items.join(","));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!("Unknown config operation {other}"),
                ));
            }
        }
    }
    Ok(current)
}

/// Replaces a topic's overrides or a broker's dynamic configs through the controller.
async fn replace_configs(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: String,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), ResourceError> {
    if resource_type == TOPIC {
        if let Err(message) = oxka_metadata::validate_topic_name(&name) {
            return Err((ResponseError::InvalidTopicException.code(), message));
        }
    } else {
        check_broker_name(broker, &name)?;
    }
    let before = (resource_type == BROKER)
        .then(|| broker.image().broker_configs.get(&name).cloned())
        .flatten()
        .unwrap_or_default();
    let (name_for_warning, after) = (name.clone(), configs.clone());
    blocking(broker, move |b| {
        b.change_metadata(|c| {
            if resource_type == TOPIC {
                c.set_topic_configs(&name, &configs, validate_only)
            } else {
                c.set_broker_configs(&name, &configs, validate_only)
            }
            .map(|_| ())
        })
    })
    .await
    .map_err(|e| (controller_error_code(&e), e.to_string()))?;
    if resource_type == BROKER && !validate_only {
        warn_unused_dynamic(&name_for_warning, &before, &after);
    }
    Ok(())
}
