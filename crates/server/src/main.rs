//! `oxka`: a Kafka-protocol broker in one binary.

mod auth;
mod cli;
mod connection;
mod http;
mod pkcs12;
mod principal_mapping;
mod security;
mod serve;
mod settings;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "oxka", version, about = "A Kafka-protocol broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format: `text` (colour only on a terminal, never with NO_COLOR) or `json`
    /// (one JSON object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "OXKA_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker. With no arguments: a single node on localhost:9092 with data in ./data.
    Serve {
        /// A Kafka server.properties file.
        properties: Option<PathBuf>,
        /// Override a property, as kafka-server-start's --override (repeatable).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Print every effective configuration key, its value and its source (flag, KAFKA_*
        /// env, KAFKA_CFG_* env, file, default), then exit without starting.
        #[arg(long)]
        print_config: bool,
    },
    /// Create, list, describe, alter, delete topics; `topic apply -f topics.yaml`.
    Topic(cli::topic::TopicArgs),
    /// Write lines of standard input to a topic.
    Produce(cli::produce::ProduceArgs),
    /// Read records from a topic.
    Consume(cli::consume::ConsumeArgs),
    /// Consumer groups: list, describe (lag), reset-offsets, delete.
    Group(cli::group::GroupArgs),
    /// Topic and broker configs: get, set.
    Config(cli::config::ConfigArgs),
    /// Cluster id, controller, brokers.
    Cluster(cli::cluster::ClusterArgs),
    /// ACLs: create, list, delete.
    Acl(cli::acl::AclArgs),
    /// SCRAM users: list, set, delete.
    User(cli::user::UserArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve {
            properties,
            overrides,
            print_config: true,
        } => serve::print_config(properties, overrides),
        Command::Serve {
            properties,
            overrides,
            print_config: false,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("oxka")
                .build()?;
            let served = runtime.block_on(serve::serve(properties, overrides));
            if served.is_ok() {
                // The logs are flushed and closed. Background work that may still be waiting
                // (a metadata proposal to a quorum that is gone) must not run on into a
                // runtime being torn down: exit now, as a stopped JVM broker does.
                std::process::exit(0);
            }
            served
        }
        Command::Topic(args) => std::process::exit(cli::run(cli::topic::run(args))),
        Command::Produce(args) => std::process::exit(cli::run(cli::produce::run(args))),
        Command::Consume(args) => std::process::exit(cli::run(cli::consume::run(args))),
        Command::Group(args) => std::process::exit(cli::run(cli::group::run(args))),
        Command::Config(args) => std::process::exit(cli::run(cli::config::run(args))),
        Command::Cluster(args) => std::process::exit(cli::run(cli::cluster::run(args))),
        Command::Acl(args) => std::process::exit(cli::run(cli::acl::run(args))),
        Command::User(args) => std::process::exit(cli::run(cli::user::run(args))),
    }
}

/// Log level from `RUST_LOG`, else from the log4j-style `KAFKA_LOG4J_ROOT_LOGLEVEL` (openraft
/// at most WARN); lines to
/// stderr as text (ANSI colour only when stderr is a terminal and NO_COLOR is unset) or JSON.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = std::env::var("KAFKA_LOG4J_ROOT_LOGLEVEL")
            .map(|l| match l.to_ascii_uppercase().as_str() {
                "TRACE" | "ALL" => "trace",
                "DEBUG" => "debug",
                "WARN" => "warn",
                "ERROR" | "FATAL" => "error",
                "OFF" => "off",
                _ => "info",
            })
            .unwrap_or("info");
        // openraft reports every vote and election step at INFO; its warnings stay.
        match level {
            "trace" | "debug" | "info" => EnvFilter::new(format!("{level},openraft=warn")),
            _ => EnvFilter::new(level),
        }
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
}
