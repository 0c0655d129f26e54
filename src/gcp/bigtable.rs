//! A Cloud Bigtable cluster as a [`ScaleTarget`]: its serve nodes.
//!
//! - observe: `GetCluster` (`serve_nodes`; any state but READY, e.g. RESIZING, is busy), plus the
//!   storage floor's metric (the query, which the tick fetches).
//! - resize: `PartialUpdateCluster` with update mask `serve_nodes`; returns the long-running
//!   operation's name at once, without waiting.
//! - operation: `GetOperation` on that name (`done`, `error`).
//!
//! Built-in Bigtable autoscaling must be off: while `cluster_config.cluster_autoscaling_config` is
//! set, the API treats `serve_nodes` as output only and ignores updates to it, so observe refuses
//! such a cluster instead of pretending to scale it.
//!
//! ## Storage floor
//!
//! observe names the `bigtable.googleapis.com/cluster/storage_utilization` query and the
//! `storageTarget` ([`FloorMetric::Storage`]); the tick fetches the newest sample of the last 15
//! minutes (the metric moves slowly) through the policy's metric source, and the core reads it
//! against the node count of its time (`core::floor`), because Monitoring lags and a sample taken
//! before a resize describes the old size. No sample, NaN, partial or ambiguous data, or a failed
//! query is unreadable, with why, which blocks scale-in and shows in status and Events.
//!
//! ## A resize whose outcome is unknown
//!
//! A `PartialUpdateCluster` that times out may still have been taken. Before retrying it, the
//! cluster is read: if it is resizing or already at the new size, the request is not sent again
//! (a second request would leave an orphan operation, or fail as busy) and the resize is
//! reported [`ResizeStarted::Unconfirmed`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use google_cloud_bigtable_admin_v2::client::BigtableInstanceAdmin;
use google_cloud_bigtable_admin_v2::model::Cluster;
use google_cloud_bigtable_admin_v2::model::cluster::{NodeScalingFactor, State};
use google_cloud_longrunning::model::Operation;
use google_cloud_wkt::FieldMask;

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, MonitoringQuery, OperationStatus, ResizeStarted, ScaleTarget,
    TargetObservation,
};
use crate::api::BigtableClusterRef;
use crate::core::{Dur, SizeRule};
use crate::gcp::{GcpConfig, RetryConfig, bigtable_client, map_error, retry, retry_write};
use crate::kinds::{BoxTarget, Clients, KindIssue, TargetKind, required};

const BACKEND: &str = "bigtable";

/// Default `storageTarget`: keep stored data at most at half of the nodes' storage capacity.
pub const DEFAULT_STORAGE_TARGET: f64 = 0.5;

/// One Bigtable cluster.
pub struct BigtableCluster {
    client: BigtableInstanceAdmin,
    retry: RetryConfig,
    project: String,
    name: String,
    storage_query: MonitoringQuery,
    storage_target: f64,
    two_x: AtomicBool,
}

/// `clusters.get` of the cluster named `name` (`projects/P/instances/I/clusters/C`), retried.
async fn get_cluster(client: &BigtableInstanceAdmin, cfg: &RetryConfig, name: &str) -> Result<Cluster, AdapterError> {
    retry(BACKEND, cfg, || async {
        client
            .get_cluster()
            .set_name(name.to_string())
            .send()
            .await
            .map_err(|e| map_error(BACKEND, "bigtable.clusters.get", &e))
    })
    .await
}

/// Ask for `nodes` serve nodes on the cluster named `name` (`partialUpdateCluster` with the
/// update mask `serve_nodes`, so nothing else changes), retried as a write: after a lost answer
/// the cluster is read before sending again. `None`: the answer was lost but the cluster shows
/// the change taken (busy or at the new size).
pub(crate) async fn send_serve_nodes(
    client: &BigtableInstanceAdmin,
    cfg: &RetryConfig,
    name: &str,
    nodes: i32,
) -> Result<Option<Operation>, AdapterError> {
    retry_write(
        BACKEND,
        cfg,
        || async {
            client
                .partial_update_cluster()
                .set_cluster(Cluster::new().set_name(name.to_string()).set_serve_nodes(nodes))
                .set_update_mask(FieldMask::default().set_paths(["serve_nodes"]))
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "bigtable.clusters.update", &e))
        },
        || async {
            let c = get_cluster(client, cfg, name).await?;
            Ok(c.state != State::Ready || c.serve_nodes == nodes)
        },
    )
    .await
}

impl BigtableCluster {
    /// Connect to the cluster `target` names, building the client as `cfg` says.
    pub async fn connect(cfg: &GcpConfig, target: &BigtableClusterRef) -> Result<BigtableCluster, AdapterError> {
        Ok(BigtableCluster::new(bigtable_client(cfg).await?, cfg, target))
    }

    /// Use an existing client.
    pub fn new(client: BigtableInstanceAdmin, cfg: &GcpConfig, target: &BigtableClusterRef) -> BigtableCluster {
        BigtableCluster {
            client,
            retry: cfg.retry,
            project: target.project.clone(),
            name: format!("projects/{}/instances/{}/clusters/{}", target.project, target.instance, target.cluster),
            storage_query: storage_utilization_query(target),
            storage_target: target.storage_target.unwrap_or(DEFAULT_STORAGE_TARGET),
            two_x: AtomicBool::new(false),
        }
    }

    /// Full resource name, `projects/P/instances/I/clusters/C`.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn get_cluster(&self) -> Result<Cluster, AdapterError> {
        get_cluster(&self.client, &self.retry, &self.name).await
    }

    /// The sizes the cluster can take, as last observed: even only with 2x node scaling.
    fn sizes(&self) -> SizeRule {
        if self.two_x.load(Ordering::Relaxed) { SizeRule::Multiple(2) } else { SizeRule::Any }
    }
}

/// The Monitoring query for a cluster's storage utilization: the largest value of any of its
/// series (there is one per cluster; MAX is the safe reduction if there were more).
pub fn storage_utilization_query(target: &BigtableClusterRef) -> MonitoringQuery {
    MonitoringQuery {
        project: target.project.clone(),
        filter: format!(
            "metric.type=\"bigtable.googleapis.com/cluster/storage_utilization\" AND resource.type=\"bigtable_cluster\" AND resource.labels.instance=\"{}\" AND resource.labels.cluster=\"{}\"",
            target.instance, target.cluster
        ),
        alignment_period: Dur::secs(60),
        per_series_aligner: "ALIGN_MAX".into(),
        cross_series_reducer: Some("REDUCE_MAX".into()),
        group_by_fields: Vec::new(),
    }
}

impl ScaleTarget for BigtableCluster {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        let cluster = self.get_cluster().await?;
        if cluster.cluster_config().is_some_and(|c| c.cluster_autoscaling_config.is_some()) {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "{} has Bigtable's built-in autoscaling enabled, which makes serve_nodes output-only (updates are ignored); disable it (gcloud bigtable clusters update {} --instance=... --disable-autoscaling --num-nodes=N) or remove this ScalePolicy",
                    self.name,
                    self.name.rsplit('/').next().unwrap_or_default()
                ),
            ));
        }
        self.two_x.store(cluster.node_scaling_factor == NodeScalingFactor::NodeScalingFactor2X, Ordering::Relaxed);
        let size = u32::try_from(cluster.serve_nodes).map_err(|_| {
            AdapterError::new(BACKEND, ErrorKind::Malformed, format!("serve_nodes is {}", cluster.serve_nodes))
        })?;
        let busy = cluster.state != State::Ready;
        let floor =
            FloorMetric::Storage { query: self.storage_query.clone().into(), storage_target: self.storage_target };
        Ok(TargetObservation { size, busy, sizes: self.sizes(), floor, members: Vec::new() })
    }

    /// With 2x node scaling, serve nodes must be even: the observation says so, the core asks
    /// for even sizes only, and an odd size (the setting changed since) is refused, not rounded.
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        if !self.sizes().allows(to) {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!("{to} nodes: {} takes {} only (2x node scaling)", self.name, self.sizes().describe()),
            ));
        }
        let nodes = i32::try_from(to)
            .map_err(|_| AdapterError::new(BACKEND, ErrorKind::Refused, format!("{to} nodes is too many")))?;
        let sent = send_serve_nodes(&self.client, &self.retry, &self.name, nodes).await?;
        let Some(op) = sent else {
            tracing::warn!(cluster = %self.name, to, "resize timed out but the cluster shows it taken; not re-sent");
            return Ok(ResizeStarted::Unconfirmed);
        };
        tracing::info!(cluster = %self.name, project = %self.project, to, operation = %op.name, "resize requested");
        match (op.done, op.error()) {
            (true, Some(err)) => Err(AdapterError::new(BACKEND, ErrorKind::Other, err.message.clone())),
            (true, None) => Ok(ResizeStarted::Done),
            (false, _) => Ok(ResizeStarted::Operation(op.name)),
        }
    }

    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        let op = retry(BACKEND, &self.retry, || async {
            self.client
                .get_operation()
                .set_name(name.to_string())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "bigtable.clusters.get", &e))
        })
        .await?;
        Ok(match (op.done, op.error()) {
            (false, _) => OperationStatus::Running,
            (true, Some(err)) => OperationStatus::Failed(format!("{} (code {})", err.message, err.code)),
            (true, None) => OperationStatus::Done,
        })
    }
}

impl TargetKind for BigtableClusterRef {
    fn field(&self) -> &'static str {
        "bigtableCluster"
    }
    fn describe(&self) -> String {
        format!("bigtable {}/{}/{}", self.project, self.instance, self.cluster)
    }
    fn leaf(&self) -> &str {
        &self.cluster
    }
    fn project(&self) -> Option<&str> {
        Some(&self.project)
    }
    /// "It can take up to 20 minutes under load before you see a significant improvement in
    /// performance" after adding nodes (Bigtable docs, "Add or remove nodes").
    fn default_warmup(&self) -> Dur {
        Dur::mins(20)
    }
    /// A `PartialUpdateCluster` is a long-running operation of minutes (4, as the closed-loop
    /// tests against the fake assume), during which the cluster is RESIZING, shows the new
    /// `serve_nodes`, and refuses another update; its data sets the storage floor.
    fn behaviour(&self) -> crate::kinds::Behaviour {
        crate::kinds::Behaviour {
            operation_time: Dur::mins(4),
            new_size_while_busy: true,
            storage_target: Some(self.storage_target.unwrap_or(DEFAULT_STORAGE_TARGET)),
        }
    }
    fn check(&self) -> Vec<KindIssue> {
        let mut issues =
            required(&[("project", &self.project), ("instance", &self.instance), ("cluster", &self.cluster)]);
        if let Some(t) = self.storage_target
            && !(0.05..=0.95).contains(&t)
        {
            issues.push(("storageTarget", format!("must be between 0.05 and 0.95 (got {t})")));
        }
        issues
    }
    fn connect(&self, clients: &Arc<Clients>, _namespace: &str) -> Result<BoxTarget, AdapterError> {
        let (clients, target) = (clients.clone(), self.clone());
        Ok(BoxTarget::lazy(move || {
            let (clients, target) = (clients.clone(), target.clone());
            async move {
                let gcp = clients.setting::<GcpConfig>()?;
                let client = clients.get(|| bigtable_client(gcp)).await?;
                Ok(BigtableCluster::new(client, gcp, &target))
            }
        }))
    }
}
