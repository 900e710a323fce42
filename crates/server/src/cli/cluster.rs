//! `oxka cluster info`: cluster id, controller, brokers (DescribeCluster, else Metadata), and
//! with `--api-versions` the bootstrap broker's ApiVersions table.

use oxka_client::kafka_protocol::messages::{ApiKey, DescribeClusterRequest};
use serde_json::json;

use super::output::print_json;
use super::{Common, Format, Table};

#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller and brokers.
    Info {
        /// Also list the API versions the bootstrap broker serves.
        #[arg(long = "api-versions")]
        api_versions: bool,
    },
}

pub(crate) async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let common = args.common;
    let mut client = common.connect().await?;
    let ClusterCommand::Info { api_versions } = args.command;
    let (cluster_id, controller, brokers) =
        if client.any().version_for(ApiKey::DescribeCluster).is_some() {
            let r = client.send(|_| DescribeClusterRequest::default()).await?;
            oxka_client::ClientError::check(
                r.error_code,
                r.error_message.map(|m| m.to_string()),
                "DescribeCluster",
            )?;
            let brokers: Vec<(i32, String, i32, Option<String>)> = r
                .brokers
                .iter()
                .map(|b| {
                    (
                        b.broker_id.0,
                        b.host.to_string(),
                        b.port,
                        b.rack.as_ref().map(|s| s.to_string()),
                    )
                })
                .collect();
            (r.cluster_id.to_string(), r.controller_id.0, brokers)
        } else {
            let md = client.metadata(Some(&[])).await?;
            let brokers = md
                .brokers
                .iter()
                .map(|b| {
                    (
                        b.node_id.0,
                        b.host.to_string(),
                        b.port,
                        b.rack.as_ref().map(|s| s.to_string()),
                    )
                })
                .collect();
            (
                md.cluster_id.map(|c| c.to_string()).unwrap_or_default(),
                md.controller_id.0,
                brokers,
            )
        };
    let versions = client.any().broker_versions();
    match common.format {
        Format::Table => {
            println!("Cluster id: {cluster_id}\nController: {controller}\n");
            let mut t = Table::new(&["BROKER", "HOST", "PORT", "RACK"]);
            for (id, host, port, rack) in &brokers {
                t.row(vec![
                    id.to_string(),
                    host.clone(),
                    port.to_string(),
                    rack.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            t.print();
            if api_versions {
                println!();
                let mut t = Table::new(&["API-KEY", "NAME", "MIN", "MAX"]);
                for (key, min, max) in &versions {
                    let name = ApiKey::try_from(*key)
                        .map_or_else(|_| "?".to_owned(), |k| format!("{k:?}"));
                    t.row(vec![
                        key.to_string(),
                        name,
                        min.to_string(),
                        max.to_string(),
                    ]);
                }
                t.print();
            }
        }
        Format::Json => {
            let mut v = json!({"cluster_id": cluster_id, "controller_id": controller,
                "brokers": brokers.iter().map(|(id, host, port, rack)| json!({"id": id, "host": host, "port": port, "rack": rack})).collect::<Vec<_>>()});
            if api_versions {
                v["api_versions"] = json!(versions.iter().map(|(k, min, max)| json!({"api_key": k,
                    "name": ApiKey::try_from(*k).map(|k| format!("{k:?}")).ok(), "min": min, "max": max})).collect::<Vec<_>>());
            }
            print_json(&v);
        }
    }
    Ok(())
}
