//! The operations endpoint: `/metrics` (OpenMetrics), `/healthz`, `/readyz`.
//!
//! [`router`] merges in the pages that whoever starts the controller passes ([`Pages`]: `ebbflow
//! run` passes the dashboard's `/` and `/api/policies`), so the controller serves them without
//! knowing them.
//!
//! [`serve_on`] is a hand-written accept loop rather than `axum::serve`, which has no timeouts:
//! idle or slow clients (headers sent a byte a second) held their connections, and their file
//! descriptors, for ever, until `/healthz` and the state file's writes failed with "too many open
//! files". Here every connection must send its request headers within
//! [`Limits::header_timeout`] (also the longest wait for the next request on a kept-alive
//! connection), is closed after [`Limits::idle_timeout`] without any traffic, and at most
//! [`Limits::max_connections`] are open at once: when full, the connection idle the longest (not
//! inside a handler) is closed to admit the new one, so a probe always gets in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

// tokio's clock, not std's: the idle timeout then follows a paused clock in tests.
use tokio::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::controller::metrics::encode;
use crate::readout::published::Published;

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The Prometheus registry.
    pub registry: Arc<Registry>,
    /// Set once the controller has loaded its policies (and, in a cluster, synced its cache).
    pub ready: Arc<AtomicBool>,
}

/// Builds the pages served next to the operations endpoints from what the engine publishes.
/// `ebbflow run` passes the dashboard's router.
pub type Pages = fn(Published) -> Router;

/// The routes: `/metrics`, `/healthz`, `/readyz`, and `pages` (e.g. the dashboard's `/` and
/// `/api/policies`).
pub fn router(state: AppState, pages: Router) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(pages)
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

/// Why the `--listen` address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("--listen {addr}: {}", explain(.source))]
pub struct ListenError {
    /// The address.
    pub addr: SocketAddr,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

fn explain(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => {
            "address in use (another process listens there: stop it, or choose another address with --listen)".into()
        }
        ErrorKind::AddrNotAvailable => "address not available: no network interface of this machine has it".into(),
        ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".into(),
        _ => e.to_string(),
    }
}

/// Bind `addr` now, so that a taken port stops the start instead of surfacing at shutdown.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| ListenError { addr, source })
}

/// Connection limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once. When full, the connection idle the longest is closed to admit a
    /// new one; when every connection is inside a handler, the new one is closed at once.
    pub max_connections: usize,
    /// Time for a client to send a request's headers, counted from the connection's start or the
    /// end of the previous response.
    pub header_timeout: Duration,
    /// A connection with no traffic either way for this long is closed (a handler running is
    /// not idleness).
    pub idle_timeout: Duration,
    /// At shutdown, how long requests in progress may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Bind `addr` and serve `router` with the default [`Limits`] until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = bind(addr).await.map_err(|e| std::io::Error::new(e.source.kind(), e.to_string()))?;
    serve_on(listener, router, Limits::default(), shutdown).await
}

/// Serve `router` on `listener` within `limits` until `shutdown` resolves; then stop accepting,
/// let requests in progress finish for [`Limits::shutdown_grace`], and close what is left.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, max_connections = limits.max_connections, "serving /metrics, /healthz, /readyz and the dashboard");
    let tracker = Arc::new(Tracker::new(limits.max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some((id, conn)) = tracker.admit() else {
                        tracing::debug!(%peer, "every connection is busy; refusing a new one");
                        drop(stream);
                        continue;
                    };
                    conns.spawn(connection(stream, router.clone(), limits.clone(), tracker.clone(), id, conn, stopping.clone()));
                }
                Err(e) => {
                    // Out of descriptors (or a connection reset before accept): wait a little
                    // rather than spin; the connections' own timeouts free descriptors.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so their results do not pile up.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    stop.send_replace(true);
    let drained = tokio::time::timeout(limits.shutdown_grace + Duration::from_millis(500), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(open = conns.len(), "closing HTTP connections still open after the grace period");
        conns.abort_all();
    }
    Ok(())
}

/// The open connections, for the cap and for choosing whom to close when it is reached.
struct Tracker {
    max: usize,
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
}

/// What the accept loop knows about one connection.
struct ConnState {
    /// Milliseconds since [`Tracker::epoch`] of the last byte read or written.
    last_active: AtomicU64,
    /// Requests inside a handler.
    busy: AtomicUsize,
    /// Told to close to make room.
    evict: tokio::sync::Notify,
}

impl Tracker {
    fn new(max: usize) -> Tracker {
        Tracker { max: max.max(1), epoch: Instant::now(), next: AtomicU64::new(0), open: Mutex::default() }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Register a new connection, closing the longest-idle one if the cap is reached; `None`
    /// when every open connection is inside a handler.
    fn admit(&self) -> Option<(u64, Arc<ConnState>)> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= self.max {
            let victim = open
                .iter()
                .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(c) = open.remove(&victim) {
                c.evict.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            last_active: AtomicU64::new(self.now_ms()),
            busy: AtomicUsize::new(0),
            evict: tokio::sync::Notify::new(),
        });
        open.insert(id, state.clone());
        Some((id, state))
    }

    fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// Counts a request as inside a handler while alive.
struct Busy(Arc<ConnState>);

impl Busy {
    fn enter(conn: &Arc<ConnState>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serve one connection until it ends, idles out, is evicted, or shutdown's grace runs out.
async fn connection(
    stream: tokio::net::TcpStream,
    router: Router,
    limits: Limits,
    tracker: Arc<Tracker>,
    id: u64,
    conn: Arc<ConnState>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    use hyper::service::Service as _;
    let io = hyper_util::rt::TokioIo::new(Activity { inner: stream, conn: conn.clone(), tracker: tracker.clone() });
    let inner = hyper_util::service::TowerToHyperService::new(router);
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
            let busy = Busy::enter(&conn);
            let response = inner.call(req);
            async move {
                let out = response.await;
                drop(busy);
                out
            }
        })
    };
    let http = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service);
    tokio::pin!(http);
    let mut closing_since: Option<tokio::time::Instant> = None;
    let mut check_idle_at = tokio::time::Instant::now() + limits.idle_timeout;
    loop {
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
                break;
            }
            () = conn.evict.notified() => {
                tracing::debug!("closing the longest-idle HTTP connection to admit a new one");
                break;
            }
            _ = stopping.wait_for(|s| *s), if closing_since.is_none() => {
                // Finish the request in progress, if any, then close.
                http.as_mut().graceful_shutdown();
                closing_since = Some(tokio::time::Instant::now());
            }
            () = tokio::time::sleep_until(closing_since.unwrap_or_else(tokio::time::Instant::now) + limits.shutdown_grace), if closing_since.is_some() => break,
            () = tokio::time::sleep_until(check_idle_at) => {
                let idle_ms = tracker.now_ms().saturating_sub(conn.last_active.load(Ordering::Relaxed));
                let idle = Duration::from_millis(idle_ms);
                if idle >= limits.idle_timeout && conn.busy.load(Ordering::Acquire) == 0 {
                    tracing::debug!(?idle, "closing an idle HTTP connection");
                    break;
                }
                // Busy, or traffic since: look again when it could next be idle long enough.
                check_idle_at = tokio::time::Instant::now() + limits.idle_timeout.saturating_sub(idle).max(Duration::from_millis(50));
            }
        }
    }
    tracker.remove(id);
}

/// A TCP stream that records when it last moved a byte.
struct Activity {
    inner: tokio::net::TcpStream,
    conn: Arc<ConnState>,
    tracker: Arc<Tracker>,
}

impl Activity {
    fn touch(&self) {
        self.conn.last_active.store(self.tracker.now_ms(), Ordering::Relaxed);
    }
}

impl tokio::io::AsyncRead for Activity {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl tokio::io::AsyncWrite for Activity {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
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
        m.skip("data", "orders", "DryRun");
        let state = AppState { registry: Arc::new(registry), ready: Arc::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ready = state.ready.clone();
        tokio::spawn(serve_on(listener, router(state, Router::new()), Limits::default(), std::future::pending()));

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
        assert!(
            body.contains("ebbflow_skipped_actions_total{namespace=\"data\",policy=\"orders\",reason=\"DryRun\"} 1"),
            "{body}"
        );
        // Error series exist before the first error, so a rate() alert can see it.
        assert!(
            body.contains("ebbflow_api_errors_total{backend=\"monitoring\",kind=\"PermissionDenied\"} 0"),
            "{body}"
        );
        assert!(body.contains("ebbflow_reconcile_duration_seconds_bucket"), "{body}");
        assert!(body.trim_end().ends_with("# EOF"), "{body}");
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        ready.store(true, Ordering::Relaxed);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    }
}
