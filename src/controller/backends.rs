//! The production backends: which adapter serves which target kind.
//!
//! - metrics: Cloud Monitoring ([`crate::gcp::CloudMonitoring`]) behind a
//!   [`SharedSource`], so policies that ask the same query cost one query per tick;
//! - `bigtableCluster`: [`crate::gcp::BigtableCluster`] (the tick reads its storage floor's metric
//!   through the same source);
//! - `gkeNodePool`: [`crate::gcp::GkeNodePool`];
//! - `workload`: the Kubernetes `/scale` subresource ([`WorkloadTarget`]).
//!
//! The Google clients are built once at start-up. A client that cannot be built (no credentials)
//! does not stop the controller: the policies that need it report the reason in their status.

use std::sync::Arc;

use crate::adapters::{
    AdapterError, ErrorKind, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget, Series,
    TargetObservation,
};
use crate::api::TargetRef;
use crate::controller::reconcile::Backends;
use crate::controller::workload::WorkloadTarget;
use crate::core::{Dur, Ts};
use crate::gcp::{BigtableCluster, CloudMonitoring, GcpConfig, GkeNodePool, SharedSource};

/// Settings for the production backends.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Google API endpoint override (a fake server in tests and benchmarks).
    pub gcp_endpoint: Option<String>,
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
pub type Source = SharedSource<GcpSource>;

/// Production backends.
pub struct ProdBackends {
    client: Option<kube::Client>,
    gcp: GcpConfig,
    source: Arc<Source>,
    bigtable: Result<google_cloud_bigtable_admin_v2::client::BigtableInstanceAdmin, AdapterError>,
    gke: Result<google_cloud_container_v1::client::ClusterManager, AdapterError>,
}

impl ProdBackends {
    /// Build the Google clients as `config` says (a fake's endpoint, or the real APIs with
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
        let bigtable = crate::gcp::bigtable_client(&gcp).await;
        let gke = crate::gcp::gke_client(&gcp).await;
        ProdBackends { client, source: Arc::new(SharedSource::new(monitoring, SHARE_WINDOW)), gcp, bigtable, gke }
    }

    /// Monitoring queries sent so far (after sharing), for the benchmark and `/metrics`.
    pub fn monitoring_queries(&self) -> u64 {
        self.source.queries_issued()
    }
}

/// Any target kind.
pub enum AnyTarget {
    /// A Bigtable cluster.
    Bigtable(Box<BigtableCluster>),
    /// A GKE node pool.
    Gke(Box<GkeNodePool>),
    /// A workload's `/scale` subresource.
    Workload(Box<WorkloadTarget>),
    /// A target this process cannot serve; every call fails with the reason.
    Unavailable(AdapterError),
}

impl ScaleTarget for AnyTarget {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        match self {
            AnyTarget::Bigtable(t) => t.observe().await,
            AnyTarget::Gke(t) => t.observe().await,
            AnyTarget::Workload(t) => t.observe().await,
            AnyTarget::Unavailable(e) => Err(e.clone()),
        }
    }
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        match self {
            AnyTarget::Bigtable(t) => t.resize(to).await,
            AnyTarget::Gke(t) => t.resize(to).await,
            AnyTarget::Workload(t) => t.resize(to).await,
            AnyTarget::Unavailable(e) => Err(e.clone()),
        }
    }
    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        match self {
            AnyTarget::Bigtable(t) => t.operation(name).await,
            AnyTarget::Gke(t) => t.operation(name).await,
            AnyTarget::Workload(t) => t.operation(name).await,
            AnyTarget::Unavailable(e) => Err(e.clone()),
        }
    }
}

impl Backends for ProdBackends {
    type Source = Source;
    type Target = AnyTarget;

    fn source(&self) -> &Source {
        &self.source
    }

    fn target(&self, namespace: &str, target: &TargetRef) -> Result<AnyTarget, AdapterError> {
        Ok(match target {
            TargetRef::BigtableCluster(b) => match &self.bigtable {
                Ok(c) => AnyTarget::Bigtable(Box::new(BigtableCluster::new(c.clone(), &self.gcp, b))),
                Err(e) => AnyTarget::Unavailable(e.clone()),
            },
            TargetRef::GkeNodePool(g) => match &self.gke {
                Ok(c) => AnyTarget::Gke(Box::new(GkeNodePool::new(c.clone(), &self.gcp, g))),
                Err(e) => AnyTarget::Unavailable(e.clone()),
            },
            TargetRef::Workload(w) => match &self.client {
                Some(c) => AnyTarget::Workload(Box::new(WorkloadTarget::new(c.clone(), namespace, w))),
                None => AnyTarget::Unavailable(AdapterError::new(
                    "kubernetes",
                    ErrorKind::Refused,
                    "workload targets need a Kubernetes API (no kubeconfig or in-cluster config was found)",
                )),
            },
        })
    }
}
