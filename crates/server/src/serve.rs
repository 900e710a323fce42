//! `oxka serve`: binds the listeners, opens the broker, runs its background tasks until SIGTERM
//! or Ctrl-C, then shuts down cleanly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use oxka_broker::Broker;
use tokio::net::TcpListener;

use crate::{connection, security, settings};

pub(crate) async fn serve(
    properties: Option<PathBuf>,
    overrides: Vec<String>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (config, _) = settings::load(properties.as_deref(), std::env::vars(), &overrides)?;
    if let Some(addr) = &config.metrics_listen {
        install_metrics(addr);
    }
    let mut listeners = Vec::new();
    for l in &config.listeners {
        let security = security::resolve(&config, &l.name)
            .with_context(|| format!("listener {}://{}:{}", l.name, l.host, l.port))?;
        let host = if l.host.is_empty() {
            "0.0.0.0"
        } else {
            l.host.as_str()
        };
        let listener = TcpListener::bind((host, l.port))
            .await
            .with_context(|| format!("binding listener {}://{}:{}", l.name, l.host, l.port))?;
        tracing::info!(listener = %l.name, protocol = ?security.protocol, "listener bound");
        listeners.push((l.name.clone(), listener, Arc::new(security)));
    }
    let scram_users = security::scram_seed_users(&config)?;
    let broker = tokio::task::spawn_blocking(move || Broker::open(config)).await??;
    if !scram_users.is_empty() {
        let b = broker.clone();
        let created =
            tokio::task::spawn_blocking(move || b.seed_scram_users(&scram_users)).await??;
        tracing::info!(created, "SCRAM credentials seeded from oxka.scram.users");
    }
    tracing::info!(
        node_id = broker.config.node_id,
        cluster_id = %broker.image().cluster_id,
        listeners = ?broker.config.listeners,
        advertised = ?broker.config.advertised_listeners,
        log_dirs = ?broker.config.log_dirs,
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
    tokio::spawn(log_maintenance(broker.clone()));
    tokio::spawn(scheduled_flushes(broker.clone()));
    tokio::spawn(log_cleaner(broker.clone()));
    shutdown_signal().await;
    tracing::info!("shutting down");
    tokio::task::spawn_blocking(move || broker.shutdown()).await?;
    Ok(())
}

fn install_metrics(addr: &str) {
    let parsed: std::net::SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(addr, error = %e, "invalid oxka.metrics.listen; metrics disabled");
            return;
        }
    };
    let result = metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(parsed)
        .install();
    if let Err(e) = result {
        tracing::warn!(addr, error = %e, "metrics endpoint not started");
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
