//! The production backends: which adapter serves which target kind.
//!
//! Workload targets go through the Kubernetes `/scale` subresource. Bigtable clusters, GKE node
//! pools and Cloud Monitoring are served by `crate::gcp` once it is wired in here; until then they
//! fail with a clear message rather than silently doing nothing.

use crate::adapters::{
    AdapterError, ErrorKind, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget, Series,
    TargetObservation,
};
use crate::api::TargetRef;
use crate::controller::reconcile::Backends;
use crate::controller::workload::WorkloadTarget;
use crate::core::Ts;

/// Settings for the production backends.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Google API endpoint override (a fake server in tests and benchmarks).
    pub gcp_endpoint: Option<String>,
}

/// Production backends.
#[derive(Clone)]
pub struct ProdBackends {
    client: Option<kube::Client>,
    source: GcpSource,
    config: BackendConfig,
}

impl ProdBackends {
    /// Backends using `client` for workload targets (none in standalone mode without a kubeconfig).
    pub fn new(client: Option<kube::Client>, config: BackendConfig) -> ProdBackends {
        ProdBackends { client, source: GcpSource { endpoint: config.gcp_endpoint.clone() }, config }
    }
}

/// Any target kind.
pub enum AnyTarget {
    /// A workload's `/scale` subresource.
    Workload(Box<WorkloadTarget>),
    /// A target kind this build cannot serve; every call fails with the message.
    Unavailable(AdapterError),
}

impl ScaleTarget for AnyTarget {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        match self {
            AnyTarget::Workload(w) => w.observe().await,
            AnyTarget::Unavailable(e) => Err(e.clone()),
        }
    }
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        match self {
            AnyTarget::Workload(w) => w.resize(to).await,
            AnyTarget::Unavailable(e) => Err(e.clone()),
        }
    }
    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        match self {
            AnyTarget::Workload(w) => w.operation(name).await,
            AnyTarget::Unavailable(e) => Err(e.clone()),
        }
    }
}

/// Cloud Monitoring.
#[derive(Debug, Clone)]
pub struct GcpSource {
    endpoint: Option<String>,
}

impl MetricSource for GcpSource {
    async fn fetch(&self, _query: &MetricQuery, _after: Ts, _until: Ts) -> Result<Series, AdapterError> {
        Err(AdapterError::new(
            "monitoring",
            ErrorKind::Other,
            format!(
                "the Cloud Monitoring adapter is not wired into this build (endpoint {})",
                self.endpoint.as_deref().unwrap_or("default")
            ),
        ))
    }
}

impl Backends for ProdBackends {
    type Source = GcpSource;
    type Target = AnyTarget;

    fn source(&self) -> &GcpSource {
        &self.source
    }

    fn target(&self, namespace: &str, target: &TargetRef) -> Result<AnyTarget, AdapterError> {
        Ok(match target {
            TargetRef::Workload(w) => match &self.client {
                Some(c) => AnyTarget::Workload(Box::new(WorkloadTarget::new(c.clone(), namespace, w))),
                None => AnyTarget::Unavailable(AdapterError::new(
                    "kubernetes",
                    ErrorKind::Refused,
                    "workload targets need a Kubernetes API (no kubeconfig or in-cluster config was found)",
                )),
            },
            other => AnyTarget::Unavailable(AdapterError::new(
                "gcp",
                ErrorKind::Refused,
                format!(
                    "{} targets are not wired into this build yet (gcp endpoint {})",
                    other.describe(),
                    self.config.gcp_endpoint.as_deref().unwrap_or("default")
                ),
            )),
        })
    }
}
