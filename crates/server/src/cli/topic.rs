//! `oxka topic create|list|describe|alter|delete|apply`.

use std::collections::BTreeMap;

use oxka_client::kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use oxka_client::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use oxka_client::kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use oxka_client::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use oxka_client::kafka_protocol::messages::{DeleteTopicsRequest, TopicName};
use oxka_client::kafka_protocol::protocol::StrBytes;
use oxka_client::{Client, ClientError};
use serde_json::json;

use super::output::emit;
use super::{error_cell, failed, failure, key_value, Common, Table};

/// DescribeConfigs/IncrementalAlterConfigs resource type of a topic.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
/// ... of a broker.
pub(crate) const RESOURCE_BROKER: i8 = 4;
/// ConfigSource: set on the topic itself.
pub(crate) const SOURCE_DYNAMIC_TOPIC: i8 = 1;
/// IncrementalAlterConfigs operations.
pub(crate) const OP_SET: i8 = 0;
pub(crate) const OP_DELETE: i8 = 1;

#[derive(Debug, clap::Args)]
pub(crate) struct TopicArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicCommand {
    /// Create a topic (CreateTopics).
    Create {
        topic: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long = "replication-factor")]
        replication_factor: Option<i16>,
        /// A topic config, KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed when the topic exists already.
        #[arg(long = "if-not-exists")]
        if_not_exists: bool,
    },
    /// List topics (Metadata).
    List {
        /// Include internal topics (__consumer_offsets, __transaction_state).
        #[arg(long = "include-internal")]
        include_internal: bool,
    },
    /// Partitions, leaders, replicas, ISR and the configs set on each topic.
    Describe {
        /// Topics to describe (default: all, internal ones excluded).
        topics: Vec<String>,
    },
    /// Add partitions (CreatePartitions) and change configs (IncrementalAlterConfigs).
    Alter {
        topic: String,
        /// New total partition count (more than today).
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a topic config, KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove a topic config override, back to the broker's value (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete topics (DeleteTopics).
    Delete {
        #[arg(required = true)]
        topics: Vec<String>,
        /// Succeed when a topic does not exist.
        #[arg(long = "if-exists")]
        if_exists: bool,
    },
    /// Make the cluster's topics match a YAML file (see config/topics.example.yaml).
    Apply(super::apply::ApplyArgs),
}

pub(crate) async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let common = args.common;
    let mut client = common.connect().await?;
    match args.command {
        TopicCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let configs = configs
                .iter()
                .map(|c| key_value(c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let spec = NewTopic {
                name: topic,
                partitions: partitions.unwrap_or(-1),
                replication_factor: replication_factor.unwrap_or(-1),
                configs,
            };
            let results = create_topics(&mut client, &[spec], false).await?;
            let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION", "RESULT"]);
            let mut errors = Vec::new();
            let mut rows = Vec::new();
            for r in &results {
                let ok = r.error_code == 0 || (if_not_exists && r.error_code == 36);
                if !ok {
                    errors.push(failure(r.error_code, &r.name));
                }
                let result = if r.error_code == 0 {
                    "created".to_owned()
                } else if ok {
                    "exists".to_owned()
                } else {
                    error_cell(r.error_code, r.error_message.as_deref())
                };
                table.row(vec![
                    r.name.clone(),
                    r.partitions.to_string(),
                    r.replication_factor.to_string(),
                    result.clone(),
                ]);
                rows.push(json!({"topic": r.name, "partitions": r.partitions,
                    "replication_factor": r.replication_factor, "result": result,
                    "error": (!ok).then(|| oxka_client::error_name(r.error_code))}));
            }
            emit(common.format, &table, json!(rows));
            failed(&errors, "topic creations")
        }
        TopicCommand::List { include_internal } => {
            let md = client.metadata(None).await?;
            let mut topics: Vec<_> = md
                .topics
                .iter()
                .filter(|t| include_internal || !t.is_internal)
                .filter_map(|t| {
                    Some((
                        t.name.as_ref()?.0.to_string(),
                        t.partitions.len(),
                        t.partitions.first().map_or(0, |p| p.replica_nodes.len()),
                    ))
                })
                .collect();
            topics.sort();
            let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION"]);
            for (name, parts, rf) in &topics {
                table.row(vec![name.clone(), parts.to_string(), rf.to_string()]);
            }
            let json = json!(topics
                .iter()
                .map(|(n, p, r)| json!({"topic": n, "partitions": p, "replication_factor": r}))
                .collect::<Vec<_>>());
            emit(common.format, &table, json);
            Ok(())
        }
        TopicCommand::Describe { topics } => describe(&mut client, &common, topics).await,
        TopicCommand::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                anyhow::bail!("nothing to alter: give --partitions, --config or --delete-config");
            }
            let mut table = Table::new(&["TOPIC", "CHANGE", "RESULT"]);
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            if let Some(count) = partitions {
                let code = create_partitions(&mut client, &topic, count, false).await?;
                let change = format!("partitions={count}");
                if code.0 != 0 {
                    errors.push(failure(code.0, &topic));
                }
                let result = if code.0 == 0 {
                    "ok".into()
                } else {
                    error_cell(code.0, code.1.as_deref())
                };
                table.row(vec![topic.clone(), change.clone(), result.clone()]);
                rows.push(json!({"topic": topic, "change": change, "result": result}));
            }
            let mut ops = Vec::new();
            for c in &configs {
                let (k, v) = key_value(c)?;
                ops.push((k, OP_SET, Some(v)));
            }
            for k in &delete_configs {
                ops.push((k.clone(), OP_DELETE, None));
            }
            if !ops.is_empty() {
                let change = ops
                    .iter()
                    .map(|(k, op, v)| match (op, v) {
                        (&OP_SET, Some(v)) => format!("{k}={v}"),
                        _ => format!("-{k}"),
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                let code = alter_configs(&mut client, RESOURCE_TOPIC, &topic, &ops, false).await?;
                if code.0 != 0 {
                    errors.push(failure(code.0, &topic));
                }
                let result = if code.0 == 0 {
                    "ok".into()
                } else {
                    error_cell(code.0, code.1.as_deref())
                };
                table.row(vec![topic.clone(), change.clone(), result.clone()]);
                rows.push(json!({"topic": topic, "change": change, "result": result}));
            }
            emit(common.format, &table, json!(rows));
            failed(&errors, "changes")
        }
        TopicCommand::Delete { topics, if_exists } => {
            let response = client
                .send(|_| {
                    DeleteTopicsRequest::default()
                        .with_topic_names(topics.iter().map(|t| topic_name(t)).collect())
                        .with_timeout_ms(30_000)
                })
                .await?;
            let mut table = Table::new(&["TOPIC", "RESULT"]);
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            for r in &response.responses {
                let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                let ok = r.error_code == 0 || (if_exists && r.error_code == 3);
                if !ok {
                    errors.push(failure(r.error_code, &name));
                }
                let result = match r.error_code {
                    0 => "deleted".to_owned(),
                    _ if ok => "absent".to_owned(),
                    c => error_cell(c, r.error_message.as_deref()),
                };
                table.row(vec![name.clone(), result.clone()]);
                rows.push(json!({"topic": name, "result": result,
                    "error": (!ok).then(|| oxka_client::error_name(r.error_code))}));
            }
            emit(common.format, &table, json!(rows));
            failed(&errors, "deletions")
        }
        TopicCommand::Apply(apply) => super::apply::run(&mut client, &common, apply).await,
    }
}

async fn describe(client: &mut Client, common: &Common, topics: Vec<String>) -> anyhow::Result<()> {
    let md = client
        .metadata(if topics.is_empty() {
            None
        } else {
            Some(&topics)
        })
        .await?;
    let mut described = Vec::new();
    let mut errors = Vec::new();
    for t in &md.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        if topics.is_empty() && t.is_internal {
            continue;
        }
        if t.error_code != 0 {
            errors.push(failure(t.error_code, &name));
            continue;
        }
        described.push((name, t));
    }
    described.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<String> = described.iter().map(|(n, _)| n.clone()).collect();
    let configs = topic_configs(client, &names).await?;
    let mut table = Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "CONFIGS"]);
    let mut json_topics = Vec::new();
    let join = |ids: &[oxka_client::kafka_protocol::messages::BrokerId]| {
        ids.iter()
            .map(|b| b.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    for (name, t) in &described {
        let set: BTreeMap<String, String> = configs
            .get(name)
            .map(|cs| {
                cs.iter()
                    .filter(|c| c.source == SOURCE_DYNAMIC_TOPIC)
                    .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let config_text = set
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut partitions: Vec<_> = t.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition_index);
        let mut json_parts = Vec::new();
        for (i, p) in partitions.iter().enumerate() {
            table.row(vec![
                name.clone(),
                p.partition_index.to_string(),
                p.leader_id.0.to_string(),
                join(&p.replica_nodes),
                join(&p.isr_nodes),
                if i == 0 {
                    config_text.clone()
                } else {
                    String::new()
                },
            ]);
            json_parts.push(
                json!({"partition": p.partition_index, "leader": p.leader_id.0,
                "replicas": p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                "isr": p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>()}),
            );
        }
        json_topics.push(json!({"topic": name, "topic_id": t.topic_id.to_string(),
            "internal": t.is_internal, "partitions": json_parts, "configs": set}));
    }
    emit(common.format, &table, json!(json_topics));
    failed(&errors, "topics")
}

/// A topic to create.
#[derive(Debug, Clone)]
pub(crate) struct NewTopic {
    pub(crate) name: String,
    /// -1: the broker's default.
    pub(crate) partitions: i32,
    /// -1: the broker's default.
    pub(crate) replication_factor: i16,
    pub(crate) configs: Vec<(String, String)>,
}

/// One CreateTopics result.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    pub(crate) name: String,
    pub(crate) error_code: i16,
    pub(crate) error_message: Option<String>,
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i16,
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// CreateTopics for `topics` (sent to any broker, which forwards to the controller).
pub(crate) async fn create_topics(
    client: &mut Client,
    topics: &[NewTopic],
    validate_only: bool,
) -> Result<Vec<Created>, ClientError> {
    let response = client
        .send(|_| build_create_topics(topics, validate_only))
        .await?;
    Ok(response
        .topics
        .iter()
        .map(|t| {
            let asked = topics.iter().find(|s| s.name == t.name.0.as_str());
            Created {
                name: t.name.0.to_string(),
                error_code: t.error_code,
                error_message: t.error_message.as_ref().map(|m| m.to_string()),
                partitions: if t.num_partitions > 0 {
                    t.num_partitions
                } else {
                    asked.map_or(-1, |a| a.partitions)
                },
                replication_factor: if t.replication_factor > 0 {
                    t.replication_factor
                } else {
                    asked.map_or(-1, |a| a.replication_factor)
                },
            }
        })
        .collect())
}

pub(crate) fn build_create_topics(topics: &[NewTopic], validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    CreatableTopic::default()
                        .with_name(topic_name(&t.name))
                        .with_num_partitions(t.partitions)
                        .with_replication_factor(t.replication_factor)
                        .with_configs(
                            t.configs
                                .iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfig::default()
                                        .with_name(str_bytes(k))
                                        .with_value(Some(str_bytes(v)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// CreatePartitions to `count` in total; returns the topic's (error code, message).
pub(crate) async fn create_partitions(
    client: &mut Client,
    topic: &str,
    count: i32,
    validate_only: bool,
) -> Result<(i16, Option<String>), ClientError> {
    let response = client
        .send(|_| {
            CreatePartitionsRequest::default()
                .with_timeout_ms(30_000)
                .with_validate_only(validate_only)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name(topic))
                    .with_count(count)
                    // null: the broker places the new partitions (an empty list would mean
                    // "these assignments", and be refused for the wrong count).
                    .with_assignments(None)])
        })
        .await?;
    Ok(response
        .results
        .first()
        .map(|r| {
            (
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .unwrap_or((-1, Some("empty response".into()))))
}

/// IncrementalAlterConfigs of one resource with `(name, operation, value)` ops; returns the
/// resource's (error code, message). Broker resources go to that broker.
pub(crate) async fn alter_configs(
    client: &mut Client,
    resource_type: i8,
    resource_name: &str,
    ops: &[(String, i8, Option<String>)],
    validate_only: bool,
) -> Result<(i16, Option<String>), ClientError> {
    let build = |_| {
        IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(resource_name))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            AlterableConfig::default()
                                .with_name(str_bytes(k))
                                .with_config_operation(*op)
                                .with_value(v.as_deref().map(str_bytes))
                        })
                        .collect(),
                )])
    };
    let response = match broker_target(resource_type, resource_name) {
        Some(node) => client.send_to(node, build).await?,
        None => client.send(build).await?,
    };
    Ok(response
        .responses
        .first()
        .map(|r| {
            (
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .unwrap_or((-1, Some("empty response".into()))))
}

/// The broker a broker-resource request must go to (an empty name: any broker).
fn broker_target(resource_type: i8, resource_name: &str) -> Option<i32> {
    (resource_type == RESOURCE_BROKER)
        .then(|| resource_name.parse().ok())
        .flatten()
}

/// One described config entry.
#[derive(Debug, Clone)]
pub(crate) struct ConfigEntry {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) source: i8,
    pub(crate) read_only: bool,
    pub(crate) sensitive: bool,
}

/// DescribeConfigs of one resource (all keys).
pub(crate) async fn describe_configs(
    client: &mut Client,
    resource_type: i8,
    resource_name: &str,
) -> anyhow::Result<Vec<ConfigEntry>> {
    let build = |_| {
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(str_bytes(resource_name))
            .with_configuration_keys(None)])
    };
    let response = match broker_target(resource_type, resource_name) {
        Some(node) => client.send_to(node, build).await?,
        None => client.send(build).await?,
    };
    let result = response
        .results
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("empty DescribeConfigs response"))?;
    ClientError::check(
        result.error_code,
        result.error_message.map(|m| m.to_string()),
        format!("describe configs of {resource_name}"),
    )?;
    Ok(result
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: c.config_source,
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect())
}

/// Configs of every topic in `names`.
pub(crate) async fn topic_configs(
    client: &mut Client,
    names: &[String],
) -> anyhow::Result<BTreeMap<String, Vec<ConfigEntry>>> {
    let mut out = BTreeMap::new();
    for name in names {
        out.insert(
            name.clone(),
            describe_configs(client, RESOURCE_TOPIC, name).await?,
        );
    }
    Ok(out)
}
