//! `oxka`: a Kafka-protocol broker in one binary.

mod auth;
mod connection;
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
    },
}

fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            properties,
            overrides,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("oxka")
                .build()?;
            runtime.block_on(serve::serve(properties, overrides))
        }
    }
}

/// Log level from `RUST_LOG`, else from the log4j-style `KAFKA_LOG4J_ROOT_LOGLEVEL`.
fn init_tracing() {
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
        EnvFilter::new(level)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
