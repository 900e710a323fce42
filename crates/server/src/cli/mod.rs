//! The admin and data commands of `oxka` (`topic`, `produce`, `consume`, `group`, `config`,
//! `cluster`, `acl`, `user`): pure Kafka protocol through `oxka-client`, so each works against
//! Apache Kafka as well as Oxka. One module per noun.
//!
//! Every command takes `--bootstrap-server/-b HOST:PORT[,HOST:PORT]` (env
//! `OXKA_BOOTSTRAP_SERVERS`, default `localhost:9092`) and `--format table|json`. Results go to
//! stdout, progress and errors to stderr. A Kafka error is printed with Kafka's name for it
//! (`Error: UNKNOWN_TOPIC_OR_PARTITION: ...`) and the process exits with status 1.

pub(crate) mod acl;
pub(crate) mod apply;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod consume;
pub(crate) mod group;
mod output;
pub(crate) mod produce;
pub(crate) mod scram;
pub(crate) mod topic;
pub(crate) mod user;

use std::time::Duration;

use oxka_client::{Client, ClientConfig};

pub(crate) use output::{Format, Table};

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Common {
    /// Bootstrap broker(s), `host:port[,host:port]`.
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        env = "OXKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092",
        global = true
    )]
    pub(crate) bootstrap_server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub(crate) format: Format,
    /// Per-request timeout in milliseconds.
    #[arg(long = "request-timeout-ms", default_value_t = 30_000, global = true)]
    pub(crate) request_timeout_ms: u64,
}

impl Common {
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        let mut config = ClientConfig::new(&self.bootstrap_server);
        config.client_id = "oxka-cli".to_owned();
        config.request_timeout = Duration::from_millis(self.request_timeout_ms);
        Ok(Client::connect(config).await?)
    }
}

/// Runs a command on a current-thread runtime; prints an error and returns the exit status.
pub(crate) fn run(work: impl std::future::Future<Output = anyhow::Result<()>>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    }
}

/// Per-item failures (already shown in a result table) as the command's error: Kafka's error
/// names with what they were about, e.g. `TOPIC_ALREADY_EXISTS: orders`.
pub(crate) fn failed(errors: &[String], what: &str) -> anyhow::Result<()> {
    match errors {
        [] => Ok(()),
        [one] => anyhow::bail!("{one}"),
        many => anyhow::bail!("{} {what} failed: {}", many.len(), many.join("; ")),
    }
}

/// `NAME: subject` for a failed item.
pub(crate) fn failure(code: i16, subject: &str) -> String {
    format!("{}: {subject}", oxka_client::error_name(code))
}

/// Parses `key=value`.
pub(crate) fn key_value(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => anyhow::bail!("expected KEY=VALUE, got {s:?}"),
    }
}

/// Kafka's name for an error code, or `None` for 0.
pub(crate) fn error_cell(code: i16, message: Option<&str>) -> String {
    if code == 0 {
        return String::new();
    }
    match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{}: {m}", oxka_client::error_name(code)),
        None => oxka_client::error_name(code),
    }
}
