//! `oxka topic apply -f topics.yaml`: declarative topics.
//!
//! The file lists topics with optional `partitions`, `replicas` and `config` (values as strings
//! or numbers). Applying it is idempotent: a missing topic is created; a topic with fewer
//! partitions than asked gets more (CreatePartitions); a named config whose value is not set on
//! the topic is SET (IncrementalAlterConfigs), configs the file does not name are left alone
//! unless `--prune` (then overrides not in the file are DELETEd); topics not in the file are
//! deleted only with `--delete-missing`. A file asking for fewer partitions than a topic has is
//! refused before anything changes (Kafka cannot remove partitions). `--dry-run` sends the same
//! requests with `validate_only`, so the broker still checks names and config values.
//!
//! The plan is computed by a pure function ([`plan`]) from the file and the cluster's state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use oxka_client::kafka_protocol::messages::DeleteTopicsRequest;
use oxka_client::Client;
use serde::Deserialize;
use serde_json::json;

use super::output::emit;
use super::topic::{
    alter_configs, create_partitions, create_topics, topic_configs, topic_name, NewTopic,
    OP_DELETE, OP_SET, RESOURCE_TOPIC, SOURCE_DYNAMIC_TOPIC,
};
use super::{error_cell, failed, failure, Common, Table};

#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// The topics file (YAML).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Show the plan and let the broker validate it; change nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Also remove config overrides that the file does not name.
    #[arg(long)]
    prune: bool,
    /// Also delete topics that the file does not list (internal topics are never deleted).
    #[arg(long = "delete-missing")]
    delete_missing: bool,
}

/// The file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicsFile {
    pub(crate) topics: Vec<TopicSpec>,
}

/// One topic in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicSpec {
    pub(crate) name: String,
    pub(crate) partitions: Option<i32>,
    pub(crate) replicas: Option<i16>,
    #[serde(default)]
    pub(crate) config: BTreeMap<String, yaml_serde::Value>,
}

/// A topic as the cluster has it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CurrentTopic {
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i16,
    /// Configs set on the topic (source DYNAMIC_TOPIC_CONFIG).
    pub(crate) overrides: BTreeMap<String, String>,
}

/// What to do to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Create {
        partitions: i32,
        replicas: i16,
        configs: Vec<(String, String)>,
    },
    AddPartitions {
        from: i32,
        to: i32,
    },
    /// (name, current override, new value).
    SetConfig(String, Option<String>, String),
    DeleteConfig(String, String),
    DeleteTopic,
}

/// The plan for one topic; no steps = unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicPlan {
    pub(crate) topic: String,
    pub(crate) steps: Vec<Step>,
    /// Differences the apply cannot make (a replication factor change needs a reassignment).
    pub(crate) warnings: Vec<String>,
}

/// A checked topic of the file, config values as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredTopic {
    pub(crate) name: String,
    pub(crate) partitions: Option<i32>,
    pub(crate) replicas: Option<i16>,
    pub(crate) config: BTreeMap<String, String>,
}

/// Reads and checks a topics file.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<DesiredTopic>> {
    let file: TopicsFile = yaml_serde::from_str(text)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for t in file.topics {
        if t.name.is_empty() {
            anyhow::bail!("a topic has an empty name");
        }
        if !seen.insert(t.name.clone()) {
            anyhow::bail!("topic {} is listed twice", t.name);
        }
        if let Some(p) = t.partitions {
            if p < 1 {
                anyhow::bail!("topic {}: partitions must be at least 1, not {p}", t.name);
            }
        }
        if let Some(r) = t.replicas {
            if r < 1 {
                anyhow::bail!("topic {}: replicas must be at least 1, not {r}", t.name);
            }
        }
        let mut config = BTreeMap::new();
        for (k, v) in t.config {
            let value = match v {
                yaml_serde::Value::String(s) => s,
                yaml_serde::Value::Number(n) => n.to_string(),
                yaml_serde::Value::Bool(b) => b.to_string(),
                other => anyhow::bail!(
                    "topic {}: config {k} must be a string, number or boolean, not {other:?}",
                    t.name
                ),
            };
            config.insert(k, value);
        }
        out.push(DesiredTopic {
            name: t.name,
            partitions: t.partitions,
            replicas: t.replicas,
            config,
        });
    }
    Ok(out)
}

/// The plan that makes `current` match `desired`. Fails, changing nothing, when the file asks
/// for fewer partitions than a topic has.
pub(crate) fn plan(
    desired: &[DesiredTopic],
    current: &BTreeMap<String, CurrentTopic>,
    prune: bool,
    delete_missing: bool,
) -> anyhow::Result<Vec<TopicPlan>> {
    let mut plans = Vec::new();
    for DesiredTopic {
        name,
        partitions,
        replicas,
        config,
    } in desired
    {
        let mut steps = Vec::new();
        let mut warnings = Vec::new();
        match current.get(name) {
            None => steps.push(Step::Create {
                partitions: partitions.unwrap_or(-1),
                replicas: replicas.unwrap_or(-1),
                configs: config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            }),
            Some(cur) => {
                if let Some(want) = *partitions {
                    if want < cur.partitions {
                        anyhow::bail!(
                            "topic {name} has {} partitions and the file asks for {want}: \
                             Kafka cannot remove partitions (nothing was changed)",
                            cur.partitions
                        );
                    }
                    if want > cur.partitions {
                        steps.push(Step::AddPartitions {
                            from: cur.partitions,
                            to: want,
                        });
                    }
                }
                if let Some(r) = *replicas {
                    if r != cur.replication_factor {
                        warnings.push(format!(
                            "replication factor is {} and the file asks for {r}: changing it \
                             needs a partition reassignment, not done by apply",
                            cur.replication_factor
                        ));
                    }
                }
                for (k, v) in config {
                    let now = cur.overrides.get(k);
                    if now != Some(v) {
                        steps.push(Step::SetConfig(k.clone(), now.cloned(), v.clone()));
                    }
                }
                if prune {
                    for (k, v) in &cur.overrides {
                        if !config.contains_key(k) {
                            steps.push(Step::DeleteConfig(k.clone(), v.clone()));
                        }
                    }
                }
            }
        }
        plans.push(TopicPlan {
            topic: name.clone(),
            steps,
            warnings,
        });
    }
    if delete_missing {
        let wanted: BTreeSet<&String> = desired.iter().map(|d| &d.name).collect();
        for name in current.keys() {
            if !wanted.contains(name) {
                plans.push(TopicPlan {
                    topic: name.clone(),
                    steps: vec![Step::DeleteTopic],
                    warnings: vec![],
                });
            }
        }
    }
    Ok(plans)
}

fn describe_step(step: &Step) -> String {
    match step {
        Step::Create {
            partitions,
            replicas,
            configs,
        } => {
            let d = |v: i64| {
                if v < 0 {
                    "default".to_owned()
                } else {
                    v.to_string()
                }
            };
            let mut s = format!(
                "create partitions={} replicas={}",
                d(i64::from(*partitions)),
                d(i64::from(*replicas))
            );
            for (k, v) in configs {
                s.push_str(&format!(" {k}={v}"));
            }
            s
        }
        Step::AddPartitions { from, to } => format!("partitions {from} -> {to}"),
        Step::SetConfig(k, Some(old), new) => format!("{k}: {old} -> {new}"),
        Step::SetConfig(k, None, new) => format!("{k}: (default) -> {new}"),
        Step::DeleteConfig(k, old) => format!("{k}: {old} -> (default)"),
        Step::DeleteTopic => "delete topic".to_owned(),
    }
}

fn action_of(plan: &TopicPlan) -> &'static str {
    match plan.steps.first() {
        None => "unchanged",
        Some(Step::Create { .. }) => "create",
        Some(Step::DeleteTopic) => "delete",
        Some(_) => "alter",
    }
}

pub(crate) async fn run(
    client: &mut Client,
    common: &Common,
    args: ApplyArgs,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let desired = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let current = current_topics(client).await?;
    let plans = plan(&desired, &current, args.prune, args.delete_missing)?;

    let mut table = Table::new(&["TOPIC", "ACTION", "CHANGES", "RESULT"]);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for p in &plans {
        for w in &p.warnings {
            eprintln!("Warning: topic {}: {w}", p.topic);
        }
        let mut results = Vec::new();
        let mut error = None;
        if !p.steps.is_empty() {
            match execute(client, p, args.dry_run).await? {
                Ok(()) => results.push(
                    if args.dry_run {
                        "valid (dry run)"
                    } else {
                        "ok"
                    }
                    .to_owned(),
                ),
                Err((code, cell)) => {
                    errors.push(failure(code, &p.topic));
                    error = Some(oxka_client::error_name(code));
                    results.push(cell);
                }
            }
        }
        let changes: Vec<String> = p.steps.iter().map(describe_step).collect();
        let action = action_of(p);
        let result = results.join("; ");
        table.row(vec![
            p.topic.clone(),
            action.to_owned(),
            changes.join(", "),
            result.clone(),
        ]);
        rows.push(
            json!({"topic": p.topic, "action": action, "changes": changes,
            "warnings": p.warnings, "result": result, "error": error}),
        );
    }
    emit(
        common.format,
        &table,
        json!({"dry_run": args.dry_run, "topics": rows}),
    );
    failed(&errors, "topic changes")
}

/// Runs one topic's steps; the first failing step stops that topic (Err: code, table cell).
async fn execute(
    client: &mut Client,
    plan: &TopicPlan,
    dry_run: bool,
) -> anyhow::Result<Result<(), (i16, String)>> {
    let mut config_ops = Vec::new();
    for step in &plan.steps {
        match step {
            Step::Create {
                partitions,
                replicas,
                configs,
            } => {
                let spec = NewTopic {
                    name: plan.topic.clone(),
                    partitions: *partitions,
                    replication_factor: *replicas,
                    configs: configs.clone(),
                };
                for r in create_topics(client, &[spec], dry_run).await? {
                    if r.error_code != 0 {
                        return Ok(Err((
                            r.error_code,
                            error_cell(r.error_code, r.error_message.as_deref()),
                        )));
                    }
                }
            }
            Step::AddPartitions { to, .. } => {
                let (code, msg) = create_partitions(client, &plan.topic, *to, dry_run).await?;
                if code != 0 {
                    return Ok(Err((code, error_cell(code, msg.as_deref()))));
                }
            }
            Step::SetConfig(k, _, v) => config_ops.push((k.clone(), OP_SET, Some(v.clone()))),
            Step::DeleteConfig(k, _) => config_ops.push((k.clone(), OP_DELETE, None)),
            Step::DeleteTopic => {
                if dry_run {
                    continue;
                }
                let response = client
                    .send(|_| {
                        DeleteTopicsRequest::default()
                            .with_topic_names(vec![topic_name(&plan.topic)])
                            .with_timeout_ms(30_000)
                    })
                    .await?;
                for r in &response.responses {
                    if r.error_code != 0 {
                        let msg = r.error_message.as_ref().map(|m| m.to_string());
                        return Ok(Err((
                            r.error_code,
                            error_cell(r.error_code, msg.as_deref()),
                        )));
                    }
                }
            }
        }
    }
    if !config_ops.is_empty() {
        let (code, msg) =
            alter_configs(client, RESOURCE_TOPIC, &plan.topic, &config_ops, dry_run).await?;
        if code != 0 {
            return Ok(Err((code, error_cell(code, msg.as_deref()))));
        }
    }
    Ok(Ok(()))
}

/// Every non-internal topic with its partition count, replication factor and overrides.
async fn current_topics(client: &mut Client) -> anyhow::Result<BTreeMap<String, CurrentTopic>> {
    let md = client.metadata(None).await?;
    let mut out = BTreeMap::new();
    for t in md
        .topics
        .iter()
        .filter(|t| !t.is_internal && t.error_code == 0)
    {
        let Some(name) = &t.name else { continue };
        out.insert(
            name.0.to_string(),
            CurrentTopic {
                partitions: t.partitions.len() as i32,
                replication_factor: t
                    .partitions
                    .first()
                    .map_or(0, |p| p.replica_nodes.len() as i16),
                overrides: BTreeMap::new(),
            },
        );
    }
    let names: Vec<String> = out.keys().cloned().collect();
    for (name, configs) in topic_configs(client, &names).await? {
        if let Some(t) = out.get_mut(&name) {
            t.overrides = configs
                .into_iter()
                .filter(|c| c.source == SOURCE_DYNAMIC_TOPIC)
                .map(|c| (c.name, c.value.unwrap_or_default()))
                .collect();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(partitions: i32, overrides: &[(&str, &str)]) -> CurrentTopic {
        CurrentTopic {
            partitions,
            replication_factor: 1,
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const FILE: &str = "topics:\n  - name: orders\n    partitions: 12\n    replicas: 3\n    config:\n      retention.ms: 604800000\n      cleanup.policy: delete\n  - name: audit\n";

    #[test]
    fn the_file_format_parses_numbers_as_strings() {
        let d = parse(FILE).unwrap();
        assert_eq!(d[0].name, "orders");
        assert_eq!((d[0].partitions, d[0].replicas), (Some(12), Some(3)));
        assert_eq!(d[0].config["retention.ms"], "604800000");
        assert_eq!(
            (d[1].partitions, d[1].replicas, d[1].config.len()),
            (None, None, 0)
        );
        assert!(parse("topics:\n  - name: a\n    partitons: 3\n").is_err());
        assert!(parse("topics:\n  - name: a\n  - name: a\n").is_err());
        assert!(parse("topics:\n  - name: a\n    partitions: 0\n").is_err());
    }

    #[test]
    fn missing_topics_are_created_and_present_ones_unchanged() {
        let d = parse(FILE).unwrap();
        let mut cur = BTreeMap::new();
        cur.insert("audit".to_owned(), current(1, &[]));
        cur.insert("other".to_owned(), current(1, &[]));
        let p = plan(&d, &cur, false, false).unwrap();
        assert_eq!(p.len(), 2);
        assert!(matches!(
            p[0].steps[0],
            Step::Create {
                partitions: 12,
                replicas: 3,
                ..
            }
        ));
        assert!(p[1].steps.is_empty());
        let p = plan(&d, &cur, false, true).unwrap();
        assert_eq!(p[2].topic, "other");
        assert_eq!(p[2].steps, vec![Step::DeleteTopic]);
    }

    #[test]
    fn partitions_grow_configs_set_and_prune_only_when_asked() {
        let d = parse(FILE).unwrap();
        let mut cur = BTreeMap::new();
        cur.insert(
            "orders".to_owned(),
            current(
                6,
                &[
                    ("retention.ms", "1000"),
                    ("cleanup.policy", "delete"),
                    ("segment.ms", "5"),
                ],
            ),
        );
        let p = plan(&d, &cur, false, false).unwrap();
        assert_eq!(
            p[0].steps,
            vec![
                Step::AddPartitions { from: 6, to: 12 },
                Step::SetConfig(
                    "retention.ms".into(),
                    Some("1000".into()),
                    "604800000".into()
                ),
            ]
        );
        assert_eq!(
            p[0].warnings.len(),
            1,
            "replicas 3 vs 1 is reported, not applied"
        );
        let p = plan(&d, &cur, true, false).unwrap();
        assert_eq!(
            p[0].steps.last(),
            Some(&Step::DeleteConfig("segment.ms".into(), "5".into()))
        );
    }

    #[test]
    fn fewer_partitions_are_refused() {
        let d = parse(FILE).unwrap();
        let mut cur = BTreeMap::new();
        cur.insert("orders".to_owned(), current(24, &[]));
        let e = plan(&d, &cur, false, false).unwrap_err().to_string();
        assert!(e.contains("cannot remove partitions"), "{e}");
    }
}
