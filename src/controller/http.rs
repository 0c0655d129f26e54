//! The operations endpoint: `/metrics` (OpenMetrics), `/healthz`, `/readyz`.
//!
//! [`router`] returns a plain `axum::Router` so more routes (the dashboard's `/` and
//! `/api/policies`) can be merged in with `Router::merge`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::controller::metrics::encode;
use crate::controller::reconcile::Snapshots;

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The Prometheus registry.
    pub registry: Arc<Registry>,
    /// Set once the controller has loaded its policies (and, in a cluster, synced its cache).
    pub ready: Arc<AtomicBool>,
    /// Newest view of each policy, keyed `namespace/name`.
    pub snapshots: Snapshots,
    /// Recent decisions per policy, for the dashboard's charts.
    pub history: crate::dashboard::History,
}

/// The routes: `/metrics`, `/healthz`, `/readyz`, and the dashboard (`/`, `/api/policies`).
pub fn router(state: AppState) -> Router {
    let dashboard = crate::dashboard::Dashboard { snapshots: state.snapshots.clone(), history: state.history.clone() };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(crate::dashboard::router(dashboard))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], encode(&s.registry))
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serve `router` on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::metrics::Metrics;

    /// `/metrics` answers OpenMetrics text with the registered families; `/readyz` follows the
    /// ready flag.
    #[tokio::test]
    async fn serves_metrics_and_probes() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.skip("DryRun");
        let state = AppState {
            registry: Arc::new(registry),
            ready: Arc::default(),
            snapshots: Snapshots::default(),
            history: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ready = state.ready.clone();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });

        // A blocking std client on a blocking thread: the test needs no HTTP client crate.
        let get = |path: &'static str| async move {
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).expect("connect");
                s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
                    .expect("write");
                let mut out = String::new();
                s.read_to_string(&mut out).expect("read");
                out
            })
            .await
            .expect("client thread")
        };
        let body = get("/metrics").await;
        assert!(body.contains("application/openmetrics-text"), "{body}");
        assert!(body.contains("ebbflow_skipped_actions_total{reason=\"DryRun\"} 1"), "{body}");
        assert!(body.contains("ebbflow_reconcile_duration_seconds_bucket"), "{body}");
        assert!(body.trim_end().ends_with("# EOF"), "{body}");
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        ready.store(true, Ordering::Relaxed);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    }
}
