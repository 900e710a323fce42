//! `oxka serve`: starts the operations endpoint (metrics and probes), opens the broker (its
//! logs are loaded and recovered), then binds the client listeners, as Kafka does: a client
//! port that accepts is a broker that can answer. Runs the background tasks until SIGTERM or
//! Ctrl-C, then shuts down cleanly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use oxka_broker::config::Listener;
use oxka_broker::{Broker, BrokerConfig};
use oxka_metadata::MetadataQuorum;
use oxka_raft::{RaftConfig, RaftQuorum};
use tokio::net::TcpListener;

use crate::{connection, http, security, settings};

/// `oxka serve --print-config`: the effective configuration with sources, on stdout.
pub(crate) fn print_config(
    properties: Option<PathBuf>,
    overrides: Vec<String>,
) -> anyhow::Result<()> {
    match settings::load(properties.as_deref(), std::env::vars(), &overrides) {
        Ok((config, layers)) => {
            print!("{}", settings::render_effective(&config, &layers));
            Ok(())
        }
        Err(e) => exit_with(e),
    }
}

/// Runs the broker until a shutdown signal. A start-up failure (configuration refused, log dir
/// locked, port taken) is logged as one clear error line and exits with status 1.
pub(crate) async fn serve(
    properties: Option<PathBuf>,
    overrides: Vec<String>,
) -> anyhow::Result<()> {
    match run(properties, overrides).await {
        Ok(()) => Ok(()),
        Err(e) => exit_with(e),
    }
}

fn exit_with(e: anyhow::Error) -> ! {
    tracing::error!("oxka cannot start: {e:#}");
    std::process::exit(1)
}

async fn run(properties: Option<PathBuf>, overrides: Vec<String>) -> anyhow::Result<()> {
    let started = Instant::now();
    let (config, _) = settings::load(properties.as_deref(), std::env::vars(), &overrides)?;
    // Every listener's security (certificates, SASL users) is resolved before anything opens, so
    // a configuration Oxka cannot serve refuses to start at once.
    let securities = config
        .listeners
        .iter()
        .map(|l| {
            security::resolve(&config, &l.name).with_context(|| format!("listener {}", url(l)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scram_users = security::scram_seed_users(&config)?;
    let health = Arc::new(http::Health::default());
    if let Some(addr) = &config.metrics_listen {
        http::start(http::parse_listen(addr)?, health.clone()).await?;
    }
    // A cluster's metadata comes from the Raft quorum of its voters, started first (its peer
    // server on the controller listener) so that opening the broker can register through it.
    let raft = match config.cluster_voters() {
        Some(_) => Some(start_raft(&config).await?),
        None => None,
    };
    let quorum = raft.clone().map(|q| q as Arc<dyn MetadataQuorum>);
    let broker = tokio::task::spawn_blocking(move || Broker::open_with(config, quorum)).await??;
    health.opened(broker.clone());
    if !scram_users.is_empty() {
        let b = broker.clone();
        let created =
            tokio::task::spawn_blocking(move || b.seed_scram_users(&scram_users)).await??;
        tracing::info!(created, "SCRAM credentials seeded from oxka.scram.users");
    }
    // Client ports are bound only once the logs are open, as Kafka does.
    let mut listeners = Vec::new();
    for (l, security) in broker.config.listeners.iter().zip(securities) {
        if raft.is_some() && Some(l) == broker.config.controller_listener() {
            continue; // the Raft peer server holds it
        }
        let host = if l.host.is_empty() {
            "0.0.0.0"
        } else {
            l.host.as_str()
        };
        let listener = TcpListener::bind((host, l.port))
            .await
            .with_context(|| format!("binding listener {}", url(l)))?;
        tracing::info!(listener = %url(l), protocol = ?security.protocol, "listener bound");
        listeners.push((l.name.clone(), listener, Arc::new(security)));
    }
    let urls = |ls: &[Listener]| ls.iter().map(url).collect::<Vec<_>>().join(",");
    tracing::info!(
        node_id = broker.config.node_id,
        cluster_id = %broker.image().cluster_id,
        listeners = %urls(&broker.config.listeners),
        advertised_listeners = %urls(&broker.config.advertised_listeners),
        log_dirs = %broker.config.log_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(","),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "oxka is serving"
    );
    let limits = Arc::new(connection::Limits {
        max_frame_bytes: broker.config.socket_request_max_bytes,
    });
    for (name, listener, security) in listeners {
        tokio::spawn(connection::accept_loop(
            listener,
            name,
            broker.clone(),
            limits.clone(),
            security,
        ));
    }
    health.set_ready(true);
    tokio::spawn(log_maintenance(broker.clone()));
    tokio::spawn(scheduled_flushes(broker.clone()));
    tokio::spawn(log_cleaner(broker.clone()));
    if raft.is_some() {
        // A single node is always live and leads everything: nothing to fence or elect.
        tokio::spawn(controller_ticks(broker.clone()));
        tokio::spawn(replication_ticks(broker.clone()));
    }
    shutdown_signal().await;
    health.set_ready(false);
    tracing::info!("shutting down");
    if raft.is_some() {
        let b = broker.clone();
        let moved = tokio::task::spawn_blocking(move || b.controlled_shutdown());
        if tokio::time::timeout(Duration::from_secs(15), moved)
            .await
            .is_err()
        {
            tracing::warn!("controlled shutdown did not finish in 15 s; stopping anyway");
        }
    }
    tokio::task::spawn_blocking(move || broker.shutdown()).await?;
    if let Some(raft) = raft {
        raft.shutdown().await;
    }
    Ok(())
}

/// Starts this node's voter of the Raft metadata quorum: the voters from
/// `controller.quorum.voters`, the peer server on the controller listener, the state under
/// `<metadata.log.dir>/__cluster_metadata-0/raft/`.
async fn start_raft(config: &BrokerConfig) -> anyhow::Result<Arc<RaftQuorum>> {
    let voters = oxka_raft::parse_voters(config.get("controller.quorum.voters").unwrap_or(""))
        .context("controller.quorum.voters")?;
    let listener = config
        .controller_listener()
        .context("controller.listener.names names no listener")?;
    let host = if listener.host.is_empty() {
        "0.0.0.0"
    } else {
        listener.host.as_str()
    };
    let socket = std::net::TcpListener::bind((host, listener.port))
        .with_context(|| format!("binding controller listener {}", url(listener)))?;
    let mut raft = RaftConfig::new(
        u64::try_from(config.node_id).context("node.id must not be negative in a cluster")?,
        voters,
        config
            .metadata_log_dir
            .join("__cluster_metadata-0")
            .join("raft"),
    );
    raft.listener = Some(socket);
    if let Some(ms) = config
        .get("broker.session.timeout.ms")
        .and_then(|v| v.parse().ok())
    {
        raft.session_timeout = Duration::from_millis(ms);
    }
    let quorum = RaftQuorum::start(raft).await?;
    tracing::info!(listener = %url(listener), "metadata quorum voter started");
    Ok(quorum)
}

/// The active controller's fencing and leader election, once a second.
async fn controller_ticks(broker: Arc<Broker>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let b = broker.clone();
        if tokio::task::spawn_blocking(move || b.controller_tick())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The leaders' ISR check once a second, and the high watermark checkpoint every 5 seconds
/// (Kafka's `replica.high.watermark.checkpoint.interval.ms`).
async fn replication_ticks(broker: Arc<Broker>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let checkpoint_ms: u64 = broker
        .config
        .get("replica.high.watermark.checkpoint.interval.ms")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(5000);
    let mut last_checkpoint = std::time::Instant::now();
    loop {
        ticker.tick().await;
        broker.replication_tick();
        if last_checkpoint.elapsed() >= Duration::from_millis(checkpoint_ms) {
            last_checkpoint = std::time::Instant::now();
            let b = broker.clone();
            if tokio::task::spawn_blocking(move || b.checkpoint_high_watermarks())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// A listener as a URL, `NAME://host:port` (an empty host is every interface).
fn url(l: &Listener) -> String {
    let host = if l.host.is_empty() {
        "0.0.0.0"
    } else {
        &l.host
    };
    if host.contains(':') {
        format!("{}://[{host}]:{}", l.name, l.port)
    } else {
        format!("{}://{host}:{}", l.name, l.port)
    }
}

async fn log_maintenance(broker: Arc<Broker>) {
    let period = Duration::from_millis(broker.config.retention_check_interval_ms.max(10));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let b = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || b.run_log_maintenance()).await {
            tracing::error!(error = %e, "log maintenance task failed");
        }
    }
}

/// The log cleaner: compacts `cleanup.policy=compact` partitions every `log.cleaner.backoff.ms`.
async fn log_cleaner(broker: Arc<Broker>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(broker.cleaner_interval_ms()));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let b = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || b.run_log_cleaner()).await {
            tracing::error!(error = %e, "log cleaner task failed");
        }
    }
}

/// Applies `flush.ms`: once a second, fsync partitions whose interval has passed.
async fn scheduled_flushes(broker: Arc<Broker>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let b = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || b.run_scheduled_flushes()).await {
            tracing::error!(error = %e, "flush task failed");
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
