//! `oxka config get|set` for a topic or a broker (DescribeConfigs, IncrementalAlterConfigs).

use serde_json::json;

use super::output::emit;
use super::topic::{
    alter_configs, describe_configs, OP_DELETE, OP_SET, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use super::{error_cell, key_value, Common, Table};

#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
struct Resource {
    /// A topic's configs.
    #[arg(long)]
    topic: Option<String>,
    /// A broker's configs (node id).
    #[arg(long)]
    broker: Option<i32>,
}

impl Resource {
    fn target(&self) -> (i8, String) {
        match (&self.topic, self.broker) {
            (Some(t), _) => (RESOURCE_TOPIC, t.clone()),
            (None, Some(b)) => (RESOURCE_BROKER, b.to_string()),
            (None, None) => unreachable!("clap requires one of --topic, --broker"),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Show configs set on the resource (with --all: every config, with its source).
    Get {
        #[command(flatten)]
        resource: Resource,
        #[arg(long)]
        all: bool,
    },
    /// Set (KEY=VALUE) or remove (--delete KEY) configs.
    Set {
        #[command(flatten)]
        resource: Resource,
        #[arg(value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove an override (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

/// Kafka's ConfigSource names.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

pub(crate) async fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let common = args.common;
    let mut client = common.connect().await?;
    match args.command {
        ConfigCommand::Get { resource, all } => {
            let (kind, name) = resource.target();
            let mut entries = describe_configs(&mut client, kind, &name).await?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let mut table = Table::new(&["NAME", "VALUE", "SOURCE", "READ-ONLY"]);
            let mut rows = Vec::new();
            for c in entries.iter().filter(|c| all || !matches!(c.source, 4 | 5)) {
                let value = if c.sensitive {
                    "(sensitive)".to_owned()
                } else {
                    c.value.clone().unwrap_or_else(|| "null".into())
                };
                table.row(vec![
                    c.name.clone(),
                    value.clone(),
                    source_name(c.source).into(),
                    c.read_only.to_string(),
                ]);
                rows.push(json!({"name": c.name, "value": if c.sensitive { None } else { c.value.clone() },
                    "source": source_name(c.source), "read_only": c.read_only, "sensitive": c.sensitive}));
            }
            emit(common.format, &table, json!(rows));
            Ok(())
        }
        ConfigCommand::Set {
            resource,
            configs,
            delete,
        } => {
            let (kind, name) = resource.target();
            let mut ops = Vec::new();
            for c in &configs {
                let (k, v) = key_value(c)?;
                ops.push((k, OP_SET, Some(v)));
            }
            for k in delete {
                ops.push((k, OP_DELETE, None));
            }
            if ops.is_empty() {
                anyhow::bail!("nothing to set: give KEY=VALUE or --delete KEY");
            }
            let (code, message) = alter_configs(&mut client, kind, &name, &ops, false).await?;
            let result = if code == 0 {
                "ok".to_owned()
            } else {
                error_cell(code, message.as_deref())
            };
            let mut table = Table::new(&["RESOURCE", "RESULT"]);
            table.row(vec![name.clone(), result.clone()]);
            emit(
                common.format,
                &table,
                json!({"resource": name, "result": result,
                "error": (code != 0).then(|| oxka_client::error_name(code))}),
            );
            if code != 0 {
                anyhow::bail!(
                    "{}",
                    super::failure(code, &format!("{name}: {}", message.unwrap_or_default()))
                );
            }
            Ok(())
        }
    }
}
