//! Google Cloud adapters: Cloud Monitoring as a [`MetricSource`](crate::adapters::MetricSource),
//! Bigtable clusters and GKE node pools as [`ScaleTarget`](crate::adapters::ScaleTarget)s, and a
//! local fake of the three REST APIs for tests (`fake`, with the `fake` feature).
//!
//! All three are Google's generated REST clients (`google-cloud-*-v*`). They are built here, in
//! one place, so that a test can never reach a real endpoint by accident: with
//! [`GcpConfig::endpoint`] set, every client talks to that URL with anonymous credentials; only
//! without it do the clients use the real endpoints and Application Default Credentials (on GKE:
//! Workload Identity).
//!
//! Retries are ours, not the clients': every call goes through [`retry`], which retries only
//! [`ErrorKind::Transient`] failures (429, 5xx, timeouts, connection errors) with jittered
//! exponential backoff (`backon`), a bounded number of times. The clients' own retry policy is turned off
//! so that attempts are not multiplied.

pub mod bigtable;
pub mod bigtable_instance;
pub mod drain;
pub mod export;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod gke;
pub mod monitoring;
pub mod spanner;

use std::future::Future;
use std::num::NonZeroU32;
use std::time::Duration;

use google_cloud_auth::credentials::anonymous::Builder as Anonymous;
use google_cloud_gax::error::rpc::{Code, StatusDetails};
use google_cloud_gax::retry_policy::NeverRetry;
use tokio::time::Instant;

use crate::adapters::{AdapterError, ErrorKind};

pub use bigtable::BigtableCluster;
pub use bigtable_instance::BigtableInstance;
pub use gke::GkeNodePool;
pub use monitoring::CloudMonitoring;

/// Cloud Monitoring's default quota for `timeSeries.list` (and other read queries):
/// 6,000 per minute per project.
pub const MONITORING_QUERIES_PER_MINUTE: u32 = 6_000;

/// The time now, as the adapters that need it (the Bigtable storage floor) read it.
pub use crate::clock::Clock;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, including the first. At least 1.
    pub attempts: u32,
    /// Upper bound of the first backoff; doubles each attempt.
    pub initial_backoff: Duration,
    /// Largest backoff between two attempts.
    pub max_backoff: Duration,
    /// Time limit of one attempt; a slower answer counts as a transient failure.
    pub attempt_timeout: Duration,
}

impl Default for RetryConfig {
    /// Four attempts over at most about 7 s of backoff: enough to ride out a 429 burst within one
    /// 60 s evaluation interval, short enough not to delay the next tick.
    fn default() -> Self {
        RetryConfig {
            attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            attempt_timeout: Duration::from_secs(20),
        }
    }
}

impl RetryConfig {
    /// Millisecond backoffs and a short attempt timeout, for tests against the local fake.
    pub fn fast() -> RetryConfig {
        RetryConfig {
            attempts: 3,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(10),
            attempt_timeout: Duration::from_millis(300),
        }
    }
}

/// Where and how the Google clients connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpConfig {
    /// Base URL of a fake or emulator (`http://127.0.0.1:PORT`), used for all three APIs with
    /// anonymous credentials. `None`: the real endpoints with Application Default Credentials.
    pub endpoint: Option<String>,
    /// Retries of transient failures.
    pub retry: RetryConfig,
    /// Cloud Monitoring queries allowed per minute per project, shared by every query this
    /// process makes through one [`CloudMonitoring`].
    pub monitoring_queries_per_minute: u32,
}

impl Default for GcpConfig {
    fn default() -> Self {
        GcpConfig {
            endpoint: None,
            retry: RetryConfig::default(),
            monitoring_queries_per_minute: MONITORING_QUERIES_PER_MINUTE,
        }
    }
}

impl GcpConfig {
    /// Real endpoints when `endpoint` is `None`, else the given fake.
    pub fn new(endpoint: Option<String>) -> GcpConfig {
        GcpConfig { endpoint, ..GcpConfig::default() }
    }

    /// A local fake with fast retries, for tests.
    pub fn for_fake(endpoint: impl Into<String>) -> GcpConfig {
        GcpConfig { endpoint: Some(endpoint.into()), retry: RetryConfig::fast(), ..GcpConfig::default() }
    }
}

/// Configure a gax client builder the same way for every API. A macro because the three builders
/// are distinct generic types with no common trait for these methods.
macro_rules! configure {
    ($builder:expr, $cfg:expr) => {{
        let b = $builder.with_retry_policy(NeverRetry);
        match &$cfg.endpoint {
            Some(url) => b.with_endpoint(url.clone()).with_credentials(Anonymous::new().build()),
            None => b,
        }
    }};
}

/// What to do when no credentials are found, in every message that says so.
pub const NO_CREDENTIALS_FIX: &str = "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run on GCP with a service account / Workload Identity";

/// What to do when credentials are refused, in every message that says so.
pub const REFUSED_CREDENTIALS_FIX: &str = "run `gcloud auth application-default login` again, or point GOOGLE_APPLICATION_CREDENTIALS at a key of a service account that exists and is enabled (on GKE: check the Workload Identity binding of the controller's Kubernetes service account)";

/// A client that could not be built. Without `--gcp-endpoint` the only way this happens in
/// practice is Application Default Credentials that cannot be loaded (`GOOGLE_APPLICATION_CREDENTIALS`
/// names a missing file, or a file that is not a credentials file): that is said as such, with
/// the fix, not as a missing permission.
fn build_error(api: &str, e: &google_cloud_gax::client_builder::Error) -> AdapterError {
    use std::error::Error as _;
    if !e.is_default_credentials() {
        return AdapterError::new("gcp", ErrorKind::Other, format!("could not build the {api} client: {e}"));
    }
    // The builder's error wraps the credentials loader's, which says which file and why.
    let cause = e.source().map_or_else(|| e.to_string(), |s| s.to_string());
    let loading = e
        .source()
        .and_then(|s| s.downcast_ref::<google_cloud_auth::build_errors::Error>())
        .is_none_or(|b| b.is_loading());
    let found = if loading { "no Google credentials found" } else { "no usable Google credentials" };
    AdapterError::new(
        "gcp",
        ErrorKind::CredentialsMissing,
        format!("could not build the {api} client: {found}: {NO_CREDENTIALS_FIX} ({cause})"),
    )
}

/// The Cloud Monitoring client.
pub async fn monitoring_client(
    cfg: &GcpConfig,
) -> Result<google_cloud_monitoring_v3::client::MetricService, AdapterError> {
    configure!(google_cloud_monitoring_v3::client::MetricService::builder(), cfg)
        .build()
        .await
        .map_err(|e| build_error("Cloud Monitoring", &e))
}

/// The Bigtable instance admin client.
pub async fn bigtable_client(
    cfg: &GcpConfig,
) -> Result<google_cloud_bigtable_admin_v2::client::BigtableInstanceAdmin, AdapterError> {
    configure!(google_cloud_bigtable_admin_v2::client::BigtableInstanceAdmin::builder(), cfg)
        .build()
        .await
        .map_err(|e| build_error("Bigtable admin", &e))
}

/// The Spanner instance admin client.
pub async fn spanner_client(
    cfg: &GcpConfig,
) -> Result<google_cloud_spanner_admin_instance_v1::client::InstanceAdmin, AdapterError> {
    configure!(google_cloud_spanner_admin_instance_v1::client::InstanceAdmin::builder(), cfg)
        .build()
        .await
        .map_err(|e| build_error("Spanner instance admin", &e))
}

/// The GKE cluster manager client.
pub async fn gke_client(cfg: &GcpConfig) -> Result<google_cloud_container_v1::client::ClusterManager, AdapterError> {
    configure!(google_cloud_container_v1::client::ClusterManager::builder(), cfg)
        .build()
        .await
        .map_err(|e| build_error("GKE", &e))
}

/// The Compute Engine instance group managers client (a node pool's live size per zone).
pub async fn compute_groups_client(
    cfg: &GcpConfig,
) -> Result<google_cloud_compute_v1::client::InstanceGroupManagers, AdapterError> {
    configure!(google_cloud_compute_v1::client::InstanceGroupManagers::builder(), cfg)
        .build()
        .await
        .map_err(|e| build_error("Compute Engine", &e))
}

/// How a resize that answered with `op` was taken: done, failed with the service's message, or
/// an operation to follow.
pub(crate) fn started(
    backend: &'static str,
    op: google_cloud_longrunning::model::Operation,
) -> Result<crate::adapters::ResizeStarted, AdapterError> {
    use crate::adapters::ResizeStarted;
    match (op.done, op.error()) {
        (true, Some(err)) => Err(AdapterError::new(backend, ErrorKind::Other, err.message.clone())),
        (true, None) => Ok(ResizeStarted::Done),
        (false, _) => Ok(ResizeStarted::Operation(op.name)),
    }
}

/// What a polled long-running operation says: running, failed (message and code), or done.
pub(crate) fn status_of(op: &google_cloud_longrunning::model::Operation) -> crate::adapters::OperationStatus {
    use crate::adapters::OperationStatus;
    match (op.done, op.error()) {
        (false, _) => OperationStatus::Running,
        (true, Some(err)) => OperationStatus::Failed(format!("{} (code {})", err.message, err.code)),
        (true, None) => OperationStatus::Done,
    }
}

/// Translate a client error into an [`AdapterError`].
///
/// `permission` is the IAM permission the call needs; a 403 names it, so the fix is in the
/// message even when the server's body does not say (Google's usually does, in an `ErrorInfo`
/// detail, and that one wins). Credentials are told apart from permissions: none found
/// ([`ErrorKind::CredentialsMissing`]), found but refused by the token endpoint or the service
/// (401: [`ErrorKind::CredentialsRefused`]), and a missing permission (403:
/// [`ErrorKind::PermissionDenied`]) each get their own fix.
pub fn map_error(backend: &'static str, permission: &str, e: &google_cloud_gax::error::Error) -> AdapterError {
    let http = e.http_status_code();
    let status = e.status();
    let server_message = status.map(|s| s.message.clone()).unwrap_or_else(|| e.to_string());
    let kind = if e.is_timeout() || e.is_connect() || e.is_io() {
        ErrorKind::Transient
    } else if e.is_deserialization() {
        ErrorKind::Malformed
    } else if e.is_authentication() {
        credentials_kind(e)
    } else if let Some(s) = status {
        match s.code {
            Code::ResourceExhausted | Code::Unavailable | Code::DeadlineExceeded | Code::Internal => {
                ErrorKind::Transient
            }
            Code::PermissionDenied => ErrorKind::PermissionDenied,
            Code::Unauthenticated => ErrorKind::CredentialsRefused,
            Code::NotFound => ErrorKind::NotFound,
            Code::FailedPrecondition | Code::Aborted if mentions_operation_in_progress(&s.message) => ErrorKind::Busy,
            Code::FailedPrecondition => ErrorKind::Refused,
            Code::Aborted => ErrorKind::Busy,
            _ => kind_from_http(http),
        }
    } else {
        kind_from_http(http)
    };
    let message = match kind {
        ErrorKind::CredentialsMissing => {
            format!(
                "no Google credentials found: {NO_CREDENTIALS_FIX} (looking for them ended with: {})",
                root_cause(e)
            )
        }
        ErrorKind::CredentialsRefused => {
            // The token endpoint's answer (e.g. invalid_grant) or the service's 401 message.
            let said = innermost_credentials_error(e).map_or(server_message, |c| c.to_string());
            format!("the Google credentials were refused (expired or revoked): {REFUSED_CREDENTIALS_FIX}: {said}")
        }
        ErrorKind::PermissionDenied => {
            let named = status
                .and_then(|s| {
                    s.details.iter().find_map(|d| match d {
                        StatusDetails::ErrorInfo(info) => info.metadata.get("permission").cloned(),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| permission.to_string());
            format!(
                "permission denied: the controller's service account lacks IAM permission {named} (grant it through the ebbflow custom role, see docs/gcp.md): {server_message}"
            )
        }
        ErrorKind::Malformed => format!("unreadable response: {e}"),
        _ => match http {
            Some(code) => format!("HTTP {code}: {server_message}"),
            None => server_message,
        },
    };
    AdapterError { backend, kind, code: http, message }
}

/// What google-cloud-auth says when Application Default Credentials found nothing (no
/// `GOOGLE_APPLICATION_CREDENTIALS`, no `gcloud auth application-default login` file) and the
/// metadata server it then falls back to gave no token (`MDS_NOT_FOUND_ERROR` in its
/// `credentials/mds.rs`). The library has no other way to tell this case apart.
const NO_ADC_MARKER: &str = "Could not fetch an auth token to authenticate with Google Cloud";

/// The kind of a failure to get a token, before any request was sent.
///
/// - No credentials found (the library's fallback to the metadata server gave nothing): missing,
///   unless a metadata server answered 429 or 5xx, which is the metadata server having a bad
///   moment on GCP (worth retrying).
/// - Otherwise a permanent failure (the token endpoint refused the refresh token or the key):
///   refused; a transient one (the token endpoint unreachable or overloaded): transient.
fn credentials_kind(e: &google_cloud_gax::error::Error) -> ErrorKind {
    use std::error::Error as _;
    let mut overloaded = false;
    let mut no_adc = false;
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(c) = c.downcast_ref::<google_cloud_gax::error::CredentialsError>() {
            no_adc |= c.to_string().contains(NO_ADC_MARKER);
        }
        if let Some(g) = c.downcast_ref::<google_cloud_gax::error::Error>() {
            overloaded |= matches!(g.http_status_code(), Some(429 | 500..=599));
        }
        cause = c.source();
    }
    let transient = credentials_error(e).is_some_and(|c| c.is_transient());
    match (no_adc, overloaded, transient) {
        (true, false, _) => ErrorKind::CredentialsMissing,
        (_, _, true) => ErrorKind::Transient,
        (_, _, false) => ErrorKind::CredentialsRefused,
    }
}

/// The credentials error behind a failure to build the authentication headers: the library's
/// last word, which says whether trying again may help.
fn credentials_error(e: &google_cloud_gax::error::Error) -> Option<&google_cloud_gax::error::CredentialsError> {
    use std::error::Error as _;
    e.source().and_then(|s| s.downcast_ref::<google_cloud_gax::error::CredentialsError>())
}

/// The most specific credentials error behind `e`: the library wraps the token endpoint's answer
/// (e.g. `invalid_grant`) in retry-loop errors that only say that fetching a token failed.
fn innermost_credentials_error(
    e: &google_cloud_gax::error::Error,
) -> Option<&google_cloud_gax::error::CredentialsError> {
    use std::error::Error as _;
    let mut found = None;
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(credentials) = c.downcast_ref::<google_cloud_gax::error::CredentialsError>() {
            found = Some(credentials);
        }
        cause = c.source();
    }
    found
}

/// The innermost error of `e`'s chain (e.g. "dns error: failed to lookup address information"):
/// the library's outer messages repeat the fix this crate gives.
fn root_cause(e: &google_cloud_gax::error::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

fn kind_from_http(http: Option<u16>) -> ErrorKind {
    match http {
        Some(429 | 500 | 502 | 503 | 504) => ErrorKind::Transient,
        Some(401) => ErrorKind::CredentialsRefused,
        Some(403) => ErrorKind::PermissionDenied,
        Some(404) => ErrorKind::NotFound,
        Some(409) => ErrorKind::Busy,
        Some(_) => ErrorKind::Other,
        // No HTTP status and not classified above: a transport failure before any answer.
        None => ErrorKind::Transient,
    }
}

/// Whether a FAILED_PRECONDITION / ABORTED message says another operation holds the resource
/// (Bigtable: "...another operation is in progress"; GKE: "Cluster is running incompatible
/// operation ..."), which means "try later", not "fix your setup".
fn mentions_operation_in_progress(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("in progress") || m.contains("incompatible operation") || m.contains("another operation")
}

/// Run `attempt` until it succeeds, fails with a non-transient error, or `cfg.attempts` are used.
/// Each attempt is cut off after `cfg.attempt_timeout`. Between attempts: jittered exponential
/// backoff (see [`delays`]: a random delay in the upper half of `initial × 2^n`, capped at
/// `max_backoff`), which spreads the retries of many policies hitting the same 429 instead of
/// synchronising them.
pub async fn retry<T, F, Fut>(backend: &'static str, cfg: &RetryConfig, mut attempt: F) -> Result<T, AdapterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AdapterError>>,
{
    let attempts = cfg.attempts.max(1);
    let mut n = 0;
    let mut delays = delays(cfg);
    loop {
        n += 1;
        match timed(backend, cfg, attempt()).await {
            Err(e) if e.kind == ErrorKind::Transient && n < attempts => {
                tracing::debug!(backend, attempt = n, error = %e, "retrying");
                tokio::time::sleep(delays.next().unwrap_or(cfg.max_backoff)).await;
            }
            Err(mut e) if e.kind == ErrorKind::Transient && attempts > 1 => {
                e.message = format!("{} (gave up after {attempts} attempts)", e.message);
                return Err(e);
            }
            other => return other,
        }
    }
}

/// [`retry`] for a write whose outcome is unknown after a transient failure: a timeout or a
/// dropped connection can come after the server took the request. Before each retry, `landed`
/// reads the target; if it shows the write taken, nothing is re-sent and the answer is `None`
/// (a retried resize would leave an orphan operation behind); the last attempt is checked the
/// same way before giving up. Where a target can look unchanged while the write runs (a Bigtable
/// cluster READY with its old size), `landed` must look for the write's operation, not trust the
/// size (`bigtable::send_serve_nodes`). A retry refused because another operation is in progress
/// also means the lost attempt was taken (`None`). If the target cannot be read, the write is not
/// retried: the caller backs off and looks again.
pub async fn retry_write<T, F, Fut, L, LFut>(
    backend: &'static str,
    cfg: &RetryConfig,
    mut attempt: F,
    mut landed: L,
) -> Result<Option<T>, AdapterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AdapterError>>,
    L: FnMut() -> LFut,
    LFut: Future<Output = Result<bool, AdapterError>>,
{
    let attempts = cfg.attempts.max(1);
    let mut n = 0;
    let mut delays = delays(cfg);
    loop {
        n += 1;
        let e = match timed(backend, cfg, attempt()).await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.kind == ErrorKind::Transient => e,
            // After an attempt whose answer was lost, "another operation is in progress" is
            // that attempt, running.
            Err(e) if e.kind == ErrorKind::Busy && n > 1 => {
                tracing::info!(backend, error = %e, "an earlier attempt whose answer was lost is running");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        tokio::time::sleep(delays.next().unwrap_or(cfg.max_backoff)).await;
        match tokio::time::timeout(cfg.attempt_timeout, landed()).await {
            Ok(Ok(true)) => return Ok(None),
            Ok(Ok(false)) if n >= attempts => {
                let tries = if n == 1 { "1 attempt".to_string() } else { format!("{n} attempts") };
                return Err(AdapterError { message: format!("{} (gave up after {tries})", e.message), ..e });
            }
            Ok(Ok(false)) => tracing::debug!(backend, attempt = n, error = %e, "write not taken; retrying"),
            Ok(Err(read)) => {
                return Err(AdapterError {
                    message: format!("{}; its outcome is unknown (reading the target failed: {read})", e.message),
                    ..e
                });
            }
            Err(_) => {
                return Err(AdapterError {
                    message: format!("{}; its outcome is unknown (reading the target timed out)", e.message),
                    ..e
                });
            }
        }
    }
}

/// One attempt, cut off after `cfg.attempt_timeout` (a slower answer is a transient failure).
async fn timed<T>(
    backend: &'static str,
    cfg: &RetryConfig,
    attempt: impl Future<Output = Result<T, AdapterError>>,
) -> Result<T, AdapterError> {
    match tokio::time::timeout(cfg.attempt_timeout, attempt).await {
        Ok(r) => r,
        Err(_) => {
            Err(AdapterError::new(backend, ErrorKind::Transient, format!("no answer within {:?}", cfg.attempt_timeout)))
        }
    }
}

/// The delays between the attempts of one request: `backon`'s exponential backoff with random
/// jitter. backon adds up to 100% of each step as jitter, so the steps start at half the
/// configured delays: the delay before attempt `n + 1` lies in the upper half of
/// `min(initial × 2^(n−1), max_backoff)` ("equal jitter"). The controller's schedules between
/// evaluations are the core's seeded backoff instead (`core::backoff`), so replays repeat.
fn delays(cfg: &RetryConfig) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::new()
        .with_min_delay(cfg.initial_backoff / 2)
        .with_max_delay(cfg.max_backoff / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// A token bucket per project that keeps this process within Cloud Monitoring's query quota
/// (governor's GCRA, one state per project). A caller over the rate waits for its token instead
/// of being refused with a 429.
pub struct QuotaLimiter {
    per_minute: u32,
    limiter: ProjectLimiter,
}

/// governor's keyed limiter on [`TokioClock`], without middleware.
type ProjectLimiter = governor::RateLimiter<
    String,
    governor::state::keyed::HashMapStateStore<String>,
    TokioClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// tokio's clock as governor reads time: the waits are tokio sleeps, so the limiter must measure
/// time by the same clock (which tests pause and advance) rather than by its own.
#[derive(Debug, Clone)]
struct TokioClock {
    origin: Instant,
}

impl governor::clock::Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

impl std::fmt::Debug for QuotaLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaLimiter").field("per_minute", &self.per_minute).finish_non_exhaustive()
    }
}

impl QuotaLimiter {
    /// At most `per_minute` queries per minute per project, with bursts of up to one second's
    /// worth (`per_minute / 60`, at least 1), so the minute's quota is never spent in a burst.
    pub fn new(per_minute: u32) -> QuotaLimiter {
        let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate.get() / 60).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::per_minute(rate).allow_burst(burst);
        let clock = TokioClock { origin: Instant::now() };
        QuotaLimiter { per_minute: rate.get(), limiter: ProjectLimiter::hashmap_with_clock(quota, clock) }
    }

    /// Wait until `project` may send one more query, and take the token.
    pub async fn acquire(&self, project: &str) {
        use governor::clock::Clock as _;
        let key = project.to_string();
        // A refusal takes no token; another caller may take the one waited for, so check again.
        while let Err(refused) = self.limiter.check_key(&key) {
            let wait = refused.wait_time_from(self.limiter.clock().now());
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limiter_keeps_a_project_within_its_per_minute_quota() {
        let limiter = QuotaLimiter::new(120); // 2/s, bursts of 2
        let start = Instant::now();
        for _ in 0..12 {
            limiter.acquire("p1").await;
        }
        // 2 from the burst, then 10 more at 2 per second.
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(5) && took < Duration::from_millis(5100), "{took:?}");
        // another project has its own bucket
        let other = Instant::now();
        limiter.acquire("p2").await;
        assert!(other.elapsed() < Duration::from_millis(1));
    }

    /// The default quota (6,000 a minute) allows a burst of one second's worth, 100 queries, not
    /// the whole minute's: the next query waits its 10 ms.
    #[tokio::test(start_paused = true)]
    async fn limiter_bursts_one_seconds_worth_not_the_minutes() {
        let limiter = QuotaLimiter::new(MONITORING_QUERIES_PER_MINUTE);
        let start = Instant::now();
        for _ in 0..100 {
            limiter.acquire("p1").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is served at once");
        limiter.acquire("p1").await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(10) && took < Duration::from_millis(11), "{took:?}");
    }

    /// A token that could not be fetched, as google-cloud-auth 1.18 reports it to the client:
    /// `inner` wrapped by its token retry loop (`retry.rs`), which says only whether to try again.
    fn token_failed(inner: google_cloud_gax::error::CredentialsError) -> google_cloud_gax::error::Error {
        use google_cloud_gax::error::{CredentialsError, Error};
        let outer = if inner.is_transient() {
            "Fetching the token resulted in transient errors. Subsequent calls with this credential might succeed."
        } else {
            "Request to fetch the token failed. Subsequent calls with this credential will also fail."
        };
        let transient = inner.is_transient();
        Error::authentication(CredentialsError::new(transient, outer, Error::authentication(inner)))
    }

    /// What google-cloud-auth 1.18 returns when Application Default Credentials found nothing on
    /// this machine: its fallback to the metadata server (`credentials/mds.rs`), with its own
    /// message and `cause`.
    fn no_adc(cause: google_cloud_gax::error::Error) -> google_cloud_gax::error::Error {
        use google_cloud_gax::error::CredentialsError;
        let mds_not_found = "Could not fetch an auth token to authenticate with Google Cloud. The most common reason \
            for this problem is that you are not running in a Google Cloud Environment and you have not configured \
            local credentials for development and testing. To setup local credentials, run \
            `gcloud auth application-default login`.";
        let transient = !matches!(cause.http_status_code(), Some(400..=499));
        let fetch = CredentialsError::new(transient, "failed to fetch access token", cause);
        token_failed(CredentialsError::new(transient, mds_not_found, fetch))
    }

    /// No credentials anywhere (no ADC file, no metadata server): "no credentials found" with
    /// the three ways to provide them, not retried, and no IAM permission named, since none is
    /// missing.
    #[test]
    fn no_credentials_at_all_is_credentials_missing_with_the_fix() {
        let unreachable = std::io::Error::other("dns error: failed to lookup address information");
        let e = map_error(
            "monitoring",
            "monitoring.timeSeries.list",
            &no_adc(google_cloud_gax::error::Error::io(unreachable)),
        );
        assert_eq!(e.kind, ErrorKind::CredentialsMissing, "{e}");
        assert!(!e.is_transient());
        assert!(e.message.starts_with("no Google credentials found: "), "{e}");
        assert!(e.message.contains(NO_CREDENTIALS_FIX), "{e}");
        assert!(e.message.contains("dns error"), "says what the search ended with: {e}");
        assert!(!e.message.contains("monitoring.timeSeries.list") && !e.message.contains("permission"), "{e}");

        // On GCP, a metadata server that answers 503 is having a bad moment: retried.
        let overloaded = google_cloud_gax::error::Error::http(503, Default::default(), Default::default());
        let e = map_error("monitoring", "monitoring.timeSeries.list", &no_adc(overloaded));
        assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    }

    /// Credentials the token endpoint refuses for good (a revoked or expired refresh token:
    /// `invalid_grant`) are "refused" with the fix; a token endpoint that is down is transient.
    #[test]
    fn credentials_the_token_endpoint_refuses_are_credentials_refused() {
        use google_cloud_gax::error::CredentialsError;
        let refused = CredentialsError::from_msg(
            false,
            r#"failed to refresh user access token, body=<{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}>"#,
        );
        let e = map_error("bigtable", "bigtable.clusters.get", &token_failed(refused));
        assert_eq!(e.kind, ErrorKind::CredentialsRefused, "{e}");
        assert!(e.message.starts_with("the Google credentials were refused (expired or revoked): "), "{e}");
        assert!(e.message.contains("`gcloud auth application-default login` again"), "{e}");
        assert!(e.message.contains("invalid_grant"), "says what the token endpoint said: {e}");
        assert!(!e.message.contains("bigtable.clusters.get"), "{e}");

        let down = CredentialsError::from_msg(true, "failed to refresh user access token, body=<503>");
        assert_eq!(map_error("bigtable", "bigtable.clusters.get", &token_failed(down)).kind, ErrorKind::Transient);
    }

    /// A key file that is not a key stops the client's construction as missing credentials,
    /// naming the problem and the fix; a transport that cannot be built is not a credentials
    /// problem at all.
    #[test]
    fn a_client_that_cannot_load_its_credentials_is_credentials_missing() {
        use google_cloud_gax::client_builder::Error;
        let Err(unusable) = google_cloud_auth::credentials::service_account::Builder::new(
            serde_json::json!({"type": "service_account"}),
        )
        .build() else {
            panic!("a key without its fields is refused");
        };
        assert!(unusable.is_parsing(), "{unusable}");
        let e = build_error("Cloud Monitoring", &Error::cred(unusable));
        assert_eq!(e.kind, ErrorKind::CredentialsMissing, "{e}");
        assert!(e.message.starts_with("could not build the Cloud Monitoring client: no usable Google credentials: "));
        assert!(e.message.contains(NO_CREDENTIALS_FIX), "{e}");
        assert!(!e.message.contains("permission"), "{e}");

        let e = build_error("GKE", &Error::transport("no TLS roots"));
        assert_eq!(e.kind, ErrorKind::Other, "{e}");
        assert!(!e.message.contains("credentials"), "{e}");
    }

    #[test]
    fn backoff_is_jittered_within_the_exponential_cap() {
        let cfg = RetryConfig {
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            attempt_timeout: Duration::from_secs(1),
        };
        let ms = |d: Duration| d.as_millis();
        for _ in 0..50 {
            let d: Vec<Duration> = delays(&cfg).take(4).collect();
            assert!((50..=100).contains(&ms(d[0])), "{d:?}");
            assert!((100..=200).contains(&ms(d[1])), "{d:?}");
            assert!((150..=300).contains(&ms(d[2])) && (150..=300).contains(&ms(d[3])), "{d:?}");
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| delays(&cfg).nth(2)).collect();
        assert!(distinct.len() > 1, "backoff must vary between calls");
    }

    #[tokio::test]
    async fn retry_stops_at_non_transient_errors_and_bounds_attempts() {
        let cfg = RetryConfig::fast();
        let mut calls = 0;
        let r: Result<(), _> = retry("t", &cfg, || {
            calls += 1;
            async { Err(AdapterError::new("t", ErrorKind::Transient, "503")) }
        })
        .await;
        assert_eq!(calls, 3);
        assert!(r.unwrap_err().message.contains("gave up after 3 attempts"));

        let mut calls = 0;
        let r: Result<(), _> = retry("t", &cfg, || {
            calls += 1;
            async { Err(AdapterError::new("t", ErrorKind::PermissionDenied, "403")) }
        })
        .await;
        assert_eq!(calls, 1);
        assert_eq!(r.unwrap_err().kind, ErrorKind::PermissionDenied);
    }

    /// A write whose answer is lost is not sent again when the target shows it taken; a retry
    /// refused as busy is the lost attempt running; the last attempt is checked too; a target
    /// that cannot be read stops the retries with an error that says the outcome is unknown.
    #[tokio::test]
    async fn retry_write_reads_the_target_before_sending_again() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let cfg = RetryConfig { attempts: 3, ..RetryConfig::fast() };
        let timeout = || async { Err::<(), _>(AdapterError::new("t", ErrorKind::Transient, "timed out")) };

        let sent = AtomicU32::new(0);
        let r = retry_write(
            "t",
            &cfg,
            || {
                sent.fetch_add(1, Ordering::SeqCst);
                timeout()
            },
            || async { Ok(true) },
        )
        .await;
        assert_eq!((r, sent.load(Ordering::SeqCst)), (Ok(None), 1));

        let sent = AtomicU32::new(0);
        let r = retry_write(
            "t",
            &cfg,
            || {
                let n = sent.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Err::<(), _>(AdapterError::new("t", ErrorKind::Transient, "timed out"))
                    } else {
                        Err(AdapterError::new("t", ErrorKind::Busy, "in progress"))
                    }
                }
            },
            || async { Ok(false) },
        )
        .await;
        assert_eq!((r, sent.load(Ordering::SeqCst)), (Ok(None), 2));

        let one = RetryConfig { attempts: 1, ..RetryConfig::fast() };
        let r = retry_write("t", &one, timeout, || async { Ok(true) }).await;
        assert_eq!(r, Ok(None), "the last attempt is checked before giving up");
        let e = retry_write("t", &one, timeout, || async { Ok(false) }).await.expect_err("not taken");
        assert!(e.message.ends_with("(gave up after 1 attempt)"), "{}", e.message);

        let sent = AtomicU32::new(0);
        let e = retry_write(
            "t",
            &cfg,
            || {
                sent.fetch_add(1, Ordering::SeqCst);
                timeout()
            },
            || async { Err(AdapterError::new("t", ErrorKind::PermissionDenied, "403")) },
        )
        .await
        .expect_err("unknown");
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        assert!(e.message.contains("outcome is unknown"), "{}", e.message);
    }
}
