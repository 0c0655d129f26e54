//! A Cloud Bigtable cluster as a [`ScaleTarget`]: its serve nodes.
//!
//! - observe: `GetCluster` (`serve_nodes`; any state but READY, e.g. RESIZING, is busy), plus the
//!   storage floor from Cloud Monitoring.
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
//! `bigtable.googleapis.com/cluster/storage_utilization` is the data stored divided by the
//! storage capacity of the cluster's current nodes (`serve_nodes × per-node capacity`). So the
//! data fills `utilization × serve_nodes` nodes' worth of capacity, and to keep utilization at or
//! below `storage_target` (default 0.5) the cluster needs
//!
//! ```text
//! floor = max(1, ceil(utilization × serve_nodes / storage_target))
//! ```
//!
//! nodes, whatever the per-node capacity (SSD or HDD). The newest complete sample of the last
//! 15 minutes is used (the metric moves slowly). No sample, NaN, partial or ambiguous data, or a
//! failed query gives [`Floor::Unknown`], which blocks scale-in. Caveat: just after a resize the
//! newest sample may still be relative to the old node count; the cooldowns that follow every
//! resize cover that window.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use google_cloud_bigtable_admin_v2::client::BigtableInstanceAdmin;
use google_cloud_bigtable_admin_v2::model::Cluster;
use google_cloud_bigtable_admin_v2::model::cluster::{NodeScalingFactor, State};
use google_cloud_wkt::FieldMask;

use crate::adapters::{
    AdapterError, ErrorKind, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget, TargetObservation,
};
use crate::api::BigtableClusterRef;
use crate::core::{Dur, Floor};
use crate::gcp::{Clock, GcpConfig, RetryConfig, bigtable_client, map_error, retry};

const BACKEND: &str = "bigtable";

/// Default `storageTarget`: keep stored data at most at half of the nodes' storage capacity.
pub const DEFAULT_STORAGE_TARGET: f64 = 0.5;

/// One Bigtable cluster. `M` reads the storage utilization metric.
pub struct BigtableCluster<M> {
    client: BigtableInstanceAdmin,
    retry: RetryConfig,
    project: String,
    name: String,
    storage_query: MetricQuery,
    storage_target: f64,
    storage: Arc<M>,
    clock: Clock,
    two_x: AtomicBool,
}

impl<M: MetricSource> BigtableCluster<M> {
    /// Connect to the cluster `target` names, building the client as `cfg` says.
    pub async fn connect(
        cfg: &GcpConfig,
        target: &BigtableClusterRef,
        storage: Arc<M>,
        clock: Clock,
    ) -> Result<BigtableCluster<M>, AdapterError> {
        Ok(BigtableCluster::new(bigtable_client(cfg).await?, cfg, target, storage, clock))
    }

    /// Use an existing client.
    pub fn new(
        client: BigtableInstanceAdmin,
        cfg: &GcpConfig,
        target: &BigtableClusterRef,
        storage: Arc<M>,
        clock: Clock,
    ) -> BigtableCluster<M> {
        BigtableCluster {
            client,
            retry: cfg.retry,
            project: target.project.clone(),
            name: format!("projects/{}/instances/{}/clusters/{}", target.project, target.instance, target.cluster),
            storage_query: storage_utilization_query(target),
            storage_target: target.storage_target.unwrap_or(DEFAULT_STORAGE_TARGET),
            storage,
            clock,
            two_x: AtomicBool::new(false),
        }
    }

    /// Full resource name, `projects/P/instances/I/clusters/C`.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn get_cluster(&self) -> Result<Cluster, AdapterError> {
        retry(BACKEND, &self.retry, || async {
            self.client
                .get_cluster()
                .set_name(self.name.clone())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "bigtable.clusters.get", &e))
        })
        .await
    }

    async fn storage_floor(&self, serve_nodes: u32) -> Floor {
        let now = (self.clock)();
        let series = match self.storage.fetch(&self.storage_query, now - Dur::mins(15), now).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cluster = %self.name, error = %e, "storage utilization unreadable: scale-in blocked");
                return Floor::Unknown;
            }
        };
        match (series.problem, series.samples.last()) {
            (None, Some(s)) => storage_floor(s.value, serve_nodes, self.storage_target),
            _ => Floor::Unknown,
        }
    }
}

/// The nodes the stored data needs at `storage_target`, from the current utilization (see the
/// module docs). Invalid utilization gives [`Floor::Unknown`].
pub fn storage_floor(utilization: f64, serve_nodes: u32, storage_target: f64) -> Floor {
    if !utilization.is_finite() || utilization < 0.0 || storage_target <= 0.0 {
        return Floor::Unknown;
    }
    // The small slack keeps 0.25 × 4 / 0.5 = 2.0000000000000004 from asking for 3 nodes.
    let nodes = (utilization * f64::from(serve_nodes) / storage_target - 1e-9).ceil();
    Floor::Nodes(nodes.clamp(1.0, f64::from(u32::MAX)) as u32)
}

/// The Monitoring query for a cluster's storage utilization: the largest value of any of its
/// series (there is one per cluster; MAX is the safe reduction if there were more).
pub fn storage_utilization_query(target: &BigtableClusterRef) -> MetricQuery {
    MetricQuery {
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

impl<M: MetricSource> ScaleTarget for BigtableCluster<M> {
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
        let floor = self.storage_floor(size).await;
        Ok(TargetObservation { size, busy, floor })
    }

    /// With 2x node scaling, serve nodes must be even, so an odd size is rounded up.
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        let to = if self.two_x.load(Ordering::Relaxed) { to.div_ceil(2) * 2 } else { to };
        let nodes = i32::try_from(to)
            .map_err(|_| AdapterError::new(BACKEND, ErrorKind::Refused, format!("{to} nodes is too many")))?;
        let op = retry(BACKEND, &self.retry, || async {
            self.client
                .partial_update_cluster()
                .set_cluster(Cluster::new().set_name(self.name.clone()).set_serve_nodes(nodes))
                .set_update_mask(FieldMask::default().set_paths(["serve_nodes"]))
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "bigtable.clusters.update", &e))
        })
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_floor_is_the_nodes_the_data_needs_at_the_target() {
        // 4 nodes at 30% → 1.2 nodes of data → at 50% → 2.4 → 3
        assert_eq!(storage_floor(0.3, 4, 0.5), Floor::Nodes(3));
        assert_eq!(storage_floor(0.25, 4, 0.5), Floor::Nodes(2));
        assert_eq!(storage_floor(0.0, 4, 0.5), Floor::Nodes(1));
        assert_eq!(storage_floor(0.9, 10, 0.6), Floor::Nodes(15));
        assert_eq!(storage_floor(f64::NAN, 4, 0.5), Floor::Unknown);
        assert_eq!(storage_floor(-0.1, 4, 0.5), Floor::Unknown);
    }
}
