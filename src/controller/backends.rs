//! The production backends: which adapter serves which target kind.
//!
//! - metrics: the routing [`Sources`] (Cloud Monitoring, [`crate::gcp::CloudMonitoring`]; the
//!   Kubernetes watch caches, [`KubeMetrics`]) behind a
//!   [`SharedSource`], so policies that ask the same query cost one query per tick;
//! - targets: whatever the target's kind builds ([`crate::kinds::TargetKind::connect`]) from the
//!   shared [`Clients`]: a Bigtable cluster, a GKE node pool, a workload's `/scale` subresource.
//!
//! Cloud Monitoring is built at start-up; each kind's client once, on its first use. A client that
//! cannot be built (no credentials) does not stop the controller: the policies that need it report
//! the reason in their status.

use std::sync::Arc;

use crate::adapters::{AdapterError, MetricQuery, MetricSource, Series, SharedSource, Sources};
use crate::api::TargetRef;
use crate::controller::kubemetrics::KubeMetrics;
use crate::controller::reconcile::Backends;
use crate::core::{Dur, Ts};
use crate::gcp::{CloudMonitoring, GcpConfig};
use crate::kinds::{BoxTarget, Clients, Unavailable};

/// Settings for the production backends.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Google API endpoint override (a fake server in tests and benchmarks).
    pub gcp_endpoint: Option<String>,
    /// Opt-in: the project to export decisions to as Cloud Monitoring custom metrics.
    pub export_project: Option<String>,
}

/// How often decisions are exported to Cloud Monitoring (a series takes a point at most every
/// 5 seconds; a minute matches the default evaluation interval).
pub const EXPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Start the opt-in Cloud Monitoring export when `config` names a project: every
/// [`EXPORT_INTERVAL`], while `leading()` (only one replica writes), what `published` holds.
pub async fn spawn_export(
    config: &BackendConfig,
    published: crate::readout::published::Published,
    leading: impl Fn() -> bool + Send + Sync + 'static,
) {
    let Some(project) = config.export_project.clone() else { return };
    let cfg = GcpConfig::new(config.gcp_endpoint.clone());
    let client = match crate::gcp::monitoring_client(&cfg).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cloud Monitoring export disabled: no client");
            return;
        }
    };
    tracing::info!(%project, "exporting decisions to Cloud Monitoring (custom.googleapis.com/ebbflow/...)");
    let mut exporter = crate::gcp::export::Exporter::new(client, project, crate::clock::now());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EXPORT_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            if !leading() {
                continue;
            }
            let policies: Vec<_> =
                published.snapshots.read().unwrap_or_else(|e| e.into_inner()).values().map(|s| s.policy()).collect();
            if let Err(e) = exporter.export(&policies, crate::clock::now()).await {
                tracing::warn!(error = %e, "exporting to Cloud Monitoring failed; next try in a minute");
            }
        }
    });
}

/// How long a Monitoring answer is shared between policies: policies evaluated within this
/// span of each other read the same query once.
pub const SHARE_WINDOW: Dur = Dur::secs(30);

/// Cloud Monitoring, or why it is not available.
pub enum GcpSource {
    /// The client.
    Ready(CloudMonitoring),
    /// The client could not be built.
    Unavailable(AdapterError),
}

impl MetricSource for GcpSource {
    async fn fetch(&self, query: &MetricQuery, after: Ts, until: Ts) -> Result<Series, AdapterError> {
        match self {
            GcpSource::Ready(m) => m.fetch(query, after, until).await,
            GcpSource::Unavailable(e) => Err(e.clone()),
        }
    }
}

/// The metric source every policy reads through.
pub type Source = SharedSource<Sources<GcpSource, KubeMetrics>>;

/// Production backends.
pub struct ProdBackends {
    source: Arc<Source>,
    clients: Arc<Clients>,
}

impl ProdBackends {
    /// Build Cloud Monitoring as `config` says (a fake's endpoint, or the real APIs with
    /// Application Default Credentials) and use `client` for workload targets (none in
    /// standalone mode without a kubeconfig).
    pub async fn connect(client: Option<kube::Client>, config: &BackendConfig) -> ProdBackends {
        let gcp = match &config.gcp_endpoint {
            Some(url) => GcpConfig::new(Some(url.clone())),
            None => GcpConfig::default(),
        };
        ProdBackends::with_gcp(client, gcp).await
    }

    /// Like [`ProdBackends::connect`] with a full Google configuration (retries, quota).
    pub async fn with_gcp(client: Option<kube::Client>, gcp: GcpConfig) -> ProdBackends {
        let monitoring = match CloudMonitoring::new(&gcp).await {
            Ok(m) => GcpSource::Ready(m),
            Err(e) => {
                tracing::warn!(error = %e, "Cloud Monitoring unavailable");
                GcpSource::Unavailable(e)
            }
        };
        ProdBackends {
            source: Arc::new(SharedSource::new(
                Sources { monitoring, kubernetes: KubeMetrics::new(client.clone()) },
                SHARE_WINDOW,
            )),
            clients: Arc::new(Clients::new(client).with(gcp)),
        }
    }

    /// Monitoring queries sent so far (after sharing), for the benchmark and `/metrics`.
    pub fn monitoring_queries(&self) -> u64 {
        self.source.queries_issued()
    }
}

impl Backends for ProdBackends {
    type Source = Source;
    type Target = BoxTarget;

    fn source(&self) -> &Source {
        &self.source
    }

    /// The target's kind builds its adapter; one it cannot build fails every call with the reason.
    fn target(&self, namespace: &str, target: &TargetRef) -> Result<BoxTarget, AdapterError> {
        Ok(target.kind().connect(&self.clients, namespace).unwrap_or_else(|e| BoxTarget::new(Unavailable(e))))
    }
}
