//! The `workload` target: any Kubernetes resource with a `/scale` subresource (Deployment,
//! StatefulSet, ...) in the policy's namespace, through kube's dynamic API.

use std::sync::Arc;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, OperationStatus, ResizeStarted, ScaleTarget, TargetObservation,
};
use crate::api::WorkloadRef;
use crate::core::Dur;
use crate::kinds::{BoxTarget, Clients, KindIssue, TargetKind, required};

/// A workload's `/scale` subresource.
#[derive(Clone)]
pub struct WorkloadTarget {
    api: Api<DynamicObject>,
    name: String,
}

impl WorkloadTarget {
    /// A handle on `workload` in `namespace`. The plural is derived from the kind (Deployment →
    /// deployments), which holds for every built-in kind with a `/scale` subresource.
    pub fn new(client: kube::Client, namespace: &str, workload: &WorkloadRef) -> WorkloadTarget {
        let (group, version) = match workload.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", workload.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &workload.kind);
        let ar = ApiResource::from_gvk(&gvk);
        WorkloadTarget { api: Api::namespaced_with(client, namespace, &ar), name: workload.name.clone() }
    }
}

/// Map a Kubernetes API error to the port's error kinds.
pub fn kube_error(e: kube::Error) -> AdapterError {
    match e {
        kube::Error::Api(s) => {
            let kind = match s.code {
                403 | 401 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Busy,
                422 | 400 => ErrorKind::Refused,
                429 | 500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Other,
            };
            AdapterError { backend: "kubernetes", kind, code: Some(s.code), message: s.message }
        }
        other => AdapterError::new("kubernetes", ErrorKind::Transient, other.to_string()),
    }
}

impl ScaleTarget for WorkloadTarget {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        let scale = self.api.get_scale(&self.name).await.map_err(kube_error)?;
        let size = scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        // A /scale write takes effect at once (the workload controller converges on it), so
        // there is never a resize of ours in flight to wait for.
        Ok(TargetObservation {
            size,
            busy: false,
            sizes: crate::core::SizeRule::Any,
            floor: FloorMetric::None,
            members: Vec::new(),
            serving: None,
            steered_max: None,
        })
    }

    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        let patch = serde_json::json!({ "spec": { "replicas": to } });
        self.api.patch_scale(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(kube_error)?;
        Ok(ResizeStarted::Done)
    }

    async fn operation(&self, _name: &str) -> Result<OperationStatus, AdapterError> {
        Ok(OperationStatus::Done)
    }
}

impl TargetKind for WorkloadRef {
    fn field(&self) -> &'static str {
        "workload"
    }
    fn describe(&self) -> String {
        format!("{} {}", self.kind.to_lowercase(), self.name)
    }
    /// Workloads are namespaced: the policy's namespace is part of the identity.
    fn identity(&self, namespace: &str) -> String {
        format!("{namespace}/{} {}", self.api_version, self.describe())
    }
    fn leaf(&self) -> &str {
        &self.name
    }
    /// A workload has no Google Cloud project: its queries must name theirs.
    fn project(&self) -> Option<&str> {
        None
    }
    fn default_warmup(&self) -> Dur {
        Dur::mins(1)
    }
    fn check(&self) -> Vec<KindIssue> {
        required(&[("apiVersion", &self.api_version), ("kind", &self.kind), ("name", &self.name)])
    }
    fn needs_kube(&self) -> bool {
        true
    }
    fn connect(&self, clients: &Arc<Clients>, namespace: &str) -> Result<BoxTarget, AdapterError> {
        match &clients.kube {
            Some(c) => Ok(BoxTarget::new(WorkloadTarget::new(c.clone(), namespace, self))),
            None => Err(AdapterError::new(
                "kubernetes",
                ErrorKind::Refused,
                "workload targets need a Kubernetes API (no kubeconfig or in-cluster config was found)",
            )),
        }
    }
}
