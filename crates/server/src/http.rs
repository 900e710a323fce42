//! The operations HTTP endpoint on `oxka.metrics.listen`: `/metrics` (Prometheus text format),
//! `/livez` (200 while the process runs) and `/readyz` (200 once the logs are loaded and
//! recovered and the client listeners accept; 503 before, and again once shutdown begins).
//!
//! It is started before the broker opens its logs, so a slow recovery shows as live but not
//! ready. Broker-state gauges (log sizes, consumer lag, ISR counts) are computed at scrape time
//! from the broker, so they are never staler than the scrape. HTTP/1.1 only, one task per
//! connection (hyper).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use oxka_broker::Broker;
use tokio::net::TcpListener;

/// What the probes report, shared between the serve loop and the HTTP tasks.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Set once the broker is open and every client listener is bound and accepting; cleared
    /// when shutdown begins.
    ready: AtomicBool,
    broker: OnceLock<Arc<Broker>>,
}

impl Health {
    /// The broker's logs are loaded: scrapes may read its state from now on.
    pub(crate) fn opened(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Parses `oxka.metrics.listen`; an address that does not parse refuses the start.
pub(crate) fn parse_listen(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.parse().with_context(|| {
        format!("invalid value {addr:?} for configuration oxka.metrics.listen: expected host:port with a numeric IP, or none")
    })
}

/// Installs the Prometheus recorder and serves the endpoint on `addr`. A port that cannot be
/// bound is logged as an error and the broker runs without the endpoint.
pub(crate) async fn start(addr: SocketAddr, health: Arc<Health>) -> anyhow::Result<()> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        // Scrape-time gauges of deleted topics and groups disappear once they stop being set.
        .idle_timeout(
            metrics_util::MetricKindMask::GAUGE,
            Some(Duration::from_secs(60)),
        )
        .install_recorder()
        .context("installing the metrics recorder")?;
    oxka_broker::metrics::describe();
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(url = %format!("http://{addr}/"), error = %e, "metrics and probe endpoint not started");
            return Ok(());
        }
    };
    tracing::info!(
        metrics = %format!("http://{addr}/metrics"),
        livez = %format!("http://{addr}/livez"),
        readyz = %format!("http://{addr}/readyz"),
        "operations endpoint listening"
    );
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (handle, health) = (handle.clone(), health.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    respond(req, handle.clone(), health.clone())
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "metrics connection closed");
                }
            });
        }
    });
    Ok(())
}

async fn respond(
    req: Request<Incoming>,
    handle: PrometheusHandle,
    health: Arc<Health>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"));
    }
    Ok(match route(req.uri().path(), health.is_ready()) {
        Route::Probe(status, body) => text(status, body),
        Route::Metrics => {
            if let Some(broker) = health.broker.get().cloned() {
                // Reads every partition's size and every group's offsets: off the runtime.
                let _ = tokio::task::spawn_blocking(move || {
                    oxka_broker::metrics::record_broker_state(&broker)
                })
                .await;
            }
            let mut r = Response::new(Full::new(Bytes::from(handle.render())));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Probe(StatusCode, &'static str),
    Metrics,
}

/// What a GET of `path` answers, given whether the broker is ready.
fn route(path: &str, ready: bool) -> Route {
    match path {
        "/livez" => Route::Probe(StatusCode::OK, "ok\n"),
        "/readyz" if ready => Route::Probe(StatusCode::OK, "ready\n"),
        "/readyz" => Route::Probe(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: logs are loading or the client listeners are not accepting yet\n",
        ),
        "/metrics" => Route::Metrics,
        _ => Route::Probe(StatusCode::NOT_FOUND, "try /metrics, /livez or /readyz\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_broker_and_liveness_does_not() {
        let status = |path, ready| match route(path, ready) {
            Route::Probe(s, _) => s,
            Route::Metrics => StatusCode::OK,
        };
        assert_eq!(status("/livez", false), StatusCode::OK);
        assert_eq!(status("/readyz", false), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status("/readyz", true), StatusCode::OK);
        assert_eq!(route("/metrics", false), Route::Metrics);
        assert_eq!(status("/nope", true), StatusCode::NOT_FOUND);
        let health = Health::default();
        assert!(!health.is_ready());
        health.set_ready(true);
        assert!(health.is_ready());
    }
}
