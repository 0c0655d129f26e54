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
//! such a cluster instead of pretending to scale it, unless the policy steers it
//! (`steerAutoscaler: true`, below).
//!
//! ## Steering built-in autoscaling
//!
//! With `steerAutoscaler: true` and autoscaling on, the size the policy controls is the
//! autoscaler's `min_serve_nodes`: observe reports it as the size and the live `serve_nodes` as
//! the capacity serving (the core reads the metrics as load on that), and resize writes the
//! minimum with `PartialUpdateCluster` on the mask
//! `cluster_config.cluster_autoscaling_config.autoscaling_limits.min_serve_nodes` and
//! `max_serve_nodes`, the policy's largest size now (`ScaleTarget::resize_within`; a plain
//! resize only raises the maximum to the minimum), a long-running operation followed like a
//! resize. Bigtable keeps `max <= 10 x min`, so a minimum that would break that
//! is refused with the fix rather than sent. The autoscaler's own storage target protects the
//! data, so no storage floor is read in this mode. With autoscaling off, the policy sets the
//! serve nodes as usual.
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
//! A `PartialUpdateCluster` that times out may still have been taken, and a process killed after
//! sending one never recorded its operation. While a resize runs the cluster can show READY with
//! its old `serve_nodes` until the operation is done, so neither its state nor its size says
//! whether such a write is running: its operation does. So before any resize, and before
//! retrying one whose answer was lost, the instance's operations are listed
//! (`operations.list` on `operations/projects/P/instances/I`, as gcloud lists them) for a
//! resize of this cluster that is not done:
//!
//! - one to the size asked for is followed ([`ResizeStarted::Operation`]) and not sent again;
//! - one to another size holds the cluster: [`ErrorKind::Busy`], nothing sent.
//!
//! A write that was taken but whose operation cannot be found (the cluster shows RESIZING or the
//! new size) is reported [`ResizeStarted::Unconfirmed`] and settled by the size. The lookup before
//! a first write is a precaution: if the operations cannot be listed, the write goes out and the
//! service's answer decides (it refuses a second resize while one runs).
//!
//! An operation name read back from the state is requested only if it is one of this cluster's
//! (`operations/projects/P/instances/I/clusters/C/…`, in plain path segments); any other is
//! treated as a vanished operation, settled by the size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use google_cloud_bigtable_admin_v2::client::BigtableInstanceAdmin;

use google_cloud_bigtable_admin_v2::model::cluster::{
    ClusterAutoscalingConfig, ClusterConfig, NodeScalingFactor, State,
};
use google_cloud_bigtable_admin_v2::model::{
    AutoscalingLimits, Cluster, PartialUpdateClusterMetadata, UpdateClusterMetadata,
};
use google_cloud_longrunning::model::Operation;
use google_cloud_wkt::FieldMask;

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, MonitoringQuery, OperationStatus, ResizeStarted, ScaleTarget,
    TargetObservation,
};
use crate::api::BigtableClusterRef;
use crate::core::{Dur, SizeRule};
use crate::gcp::{GcpConfig, RetryConfig, bigtable_client, map_error, retry, retry_write, started, status_of};
use crate::kinds::{BoxTarget, Clients, KindIssue, TargetKind, required, storage_target_issue};

const BACKEND: &str = "bigtable";

pub use crate::core::floor::DEFAULT_STORAGE_TARGET;

/// One Bigtable cluster.
pub struct BigtableCluster {
    client: BigtableInstanceAdmin,
    retry: RetryConfig,
    project: String,
    name: String,
    storage_query: MonitoringQuery,
    storage_target: f64,
    two_x: AtomicBool,
    steer: bool,
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

/// Pages of an instance's operations read when looking for a cluster's running resize: with
/// [`OPERATIONS_PAGE_SIZE`], a thousand operations, and a bound on a list whose pages never end.
const MAX_OPERATION_PAGES: usize = 10;
/// Operations asked for per page of `operations.list`.
const OPERATIONS_PAGE_SIZE: i32 = 100;
/// Longest operation name taken from stored state (the service's are about 100 characters).
const MAX_OPERATION_NAME: usize = 512;

/// Whether `name` is an operation under the resource `parent` (`operations/{parent}/…`), in path
/// segments a URL carries as they are: letters, digits, `-`, `_` and `.`, never `.` or `..`
/// alone. An operation name read back from stored state goes into a request's path, so one that
/// is not the target's own, or that would climb out of it, is never requested.
pub(crate) fn operation_under(name: &str, parent: &str) -> bool {
    let rest = name.strip_prefix("operations/").and_then(|r| r.strip_prefix(parent)).and_then(|r| r.strip_prefix('/'));
    rest.is_some_and(|rest| name.len() <= MAX_OPERATION_NAME && plain_segments(rest))
}

/// Whether every `/`-separated segment of `path` is one a URL carries as it is: letters, digits,
/// `-`, `_`, `.` and `:` (a domain-scoped project, example.com:my-project), never empty, `.` or
/// `..`.
pub(crate) fn plain_segments(path: &str) -> bool {
    path.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    })
}

/// The answer to a stored operation name that is not one of `parent`'s: NotFound, which the tick
/// settles as a vanished operation (by the size), with why; nothing was requested.
pub(crate) fn foreign_operation(name: &str, parent: &str) -> AdapterError {
    foreign_operation_named(BACKEND, name, parent, &format!("operations/{parent}/…"))
}

/// [`foreign_operation`] for a service whose operations of `parent` are named as `form` says.
pub(crate) fn foreign_operation_named(backend: &'static str, name: &str, parent: &str, form: &str) -> AdapterError {
    let shown: String = name.chars().take(120).collect();
    tracing::warn!(resource = %parent, operation = %shown, "stored operation name is not one of this resource's: not requested");
    AdapterError::new(
        backend,
        ErrorKind::NotFound,
        format!(
            "the stored operation name {shown:?} is not an operation of {parent} (those are named {form}); it was not requested and counts as vanished"
        ),
    )
}

/// The serve nodes an operation asks of the cluster `cluster`, if it is a resize of it: a
/// `PartialUpdateCluster` whose mask names `serve_nodes`, or an `UpdateCluster`.
fn resize_of(op: &Operation, cluster: &str) -> Option<i32> {
    if !operation_under(&op.name, cluster) {
        return None;
    }
    let metadata = op.metadata.as_ref()?;
    if let Ok(m) = metadata.to_msg::<PartialUpdateClusterMetadata>() {
        let request = m.original_request?;
        let masked = request.update_mask.as_ref().is_some_and(|mask| mask.paths.iter().any(|p| p == "serve_nodes"));
        return request.cluster.filter(|_| masked).map(|c| c.serve_nodes);
    }
    metadata.to_msg::<UpdateClusterMetadata>().ok()?.original_request.map(|c| c.serve_nodes)
}

/// The resize of the cluster `cluster` (`projects/P/instances/I/clusters/C`) that is not done, if
/// any, and the serve nodes it asks for, from its instance's operations (listed under
/// `operations/projects/P/instances/I`, as gcloud lists them).
pub(crate) async fn running_resize(
    client: &BigtableInstanceAdmin,
    cfg: &RetryConfig,
    cluster: &str,
) -> Result<Option<(Operation, i32)>, AdapterError> {
    let Some((instance, _)) = cluster.split_once("/clusters/") else { return Ok(None) };
    let parent = format!("operations/{instance}");
    let mut token = String::new();
    for _ in 0..MAX_OPERATION_PAGES {
        let page = retry(BACKEND, cfg, || async {
            client
                .list_operations()
                .set_name(parent.clone())
                .set_page_size(OPERATIONS_PAGE_SIZE)
                .set_page_token(token.clone())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "bigtable.clusters.get", &e))
        })
        .await?;
        let found = page.operations.into_iter().filter(|op| !op.done).find_map(|op| {
            let nodes = resize_of(&op, cluster)?;
            Some((op, nodes))
        });
        if found.is_some() || page.next_page_token.is_empty() {
            return Ok(found);
        }
        token = page.next_page_token;
    }
    tracing::warn!(cluster = %cluster, pages = MAX_OPERATION_PAGES, "no running resize among the first pages of the instance's operations: taken as none");
    Ok(None)
}

/// Ask for `nodes` serve nodes on the cluster named `name` (`partialUpdateCluster` with the
/// update mask `serve_nodes`, so nothing else changes), unless a resize of it is running (see
/// the module docs): one to `nodes` is returned and followed instead, one to another size is
/// Busy. Retried as a write: after a lost answer the cluster, and if it shows READY with its old
/// size its operations, are read before sending again. `None`: the answer was lost and the
/// cluster shows the change taken, but its operation was not found.
pub(crate) async fn send_serve_nodes(
    client: &BigtableInstanceAdmin,
    cfg: &RetryConfig,
    name: &str,
    nodes: i32,
) -> Result<Option<Operation>, AdapterError> {
    match running_resize(client, cfg, name).await {
        Ok(Some((op, n))) if n == nodes => {
            tracing::info!(cluster = %name, nodes, operation = %op.name, "a resize to this size is running already: following it, not sending another");
            return Ok(Some(op));
        }
        Ok(Some((op, n))) => {
            let why = format!("{name} is being resized to {n} nodes by operation {}; resize later", op.name);
            return Err(AdapterError::new(BACKEND, ErrorKind::Busy, why));
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(cluster = %name, error = %e, "listing the instance's operations failed: resizing without that check");
        }
    }
    let sent = retry_write(
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
            if c.state != State::Ready || c.serve_nodes == nodes {
                return Ok(true);
            }
            // READY with the old size is also how the cluster shows a resize that is running.
            Ok(running_resize(client, cfg, name).await?.is_some_and(|(_, n)| n == nodes))
        },
    )
    .await?;
    if sent.is_some() {
        return Ok(sent);
    }
    // Taken, but the answer naming its operation was lost: find the operation, so the resize is
    // followed to its end rather than judged by a size that can lag it.
    Ok(match running_resize(client, cfg, name).await {
        Ok(Some((op, n))) if n == nodes => Some(op),
        _ => None,
    })
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
            steer: target.steer_autoscaler,
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

/// The built-in autoscaler's (min, max) serve nodes, if it is on (limits it does not show read 0).
fn autoscaling(cluster: &Cluster) -> Option<(i32, i32)> {
    let config = cluster.cluster_config()?.cluster_autoscaling_config.as_ref()?;
    Some(config.autoscaling_limits.as_ref().map_or((0, 0), |l| (l.min_serve_nodes, l.max_serve_nodes)))
}

/// The mask path of the autoscaler's limit `field` (`min_serve_nodes`, `max_serve_nodes`).
fn limit_path(field: &str) -> String {
    format!("cluster_config.cluster_autoscaling_config.autoscaling_limits.{field}")
}

impl BigtableCluster {
    /// Set the built-in autoscaler's minimum to `to` and its maximum to the policy's
    /// `policy_max` (see the module docs), its limits being `(min, max)` now. Without the
    /// policy's maximum (a plain resize) the maximum is only raised, to `to`, when lower.
    async fn steer_to(
        &self,
        to: i32,
        (min, max): (i32, i32),
        policy_max: Option<i32>,
    ) -> Result<ResizeStarted, AdapterError> {
        let new_max = policy_max.unwrap_or(max).max(to);
        if to.saturating_mul(10) < new_max {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "{to} nodes as the autoscaler's minimum: Bigtable keeps max_serve_nodes at most 10 x min_serve_nodes, and {}'s maximum is {new_max}, so its minimum cannot go below {}; raise the policy's minSize to at least that, or lower its maxSize",
                    self.name,
                    (new_max + 9) / 10
                ),
            ));
        }
        let mut paths = vec![limit_path("min_serve_nodes")];
        if new_max != max {
            paths.push(limit_path("max_serve_nodes"));
        }
        let limits = AutoscalingLimits::new().set_min_serve_nodes(to).set_max_serve_nodes(new_max);
        let config = ClusterConfig::new()
            .set_cluster_autoscaling_config(ClusterAutoscalingConfig::new().set_autoscaling_limits(limits));
        let sent = retry_write(
            BACKEND,
            &self.retry,
            || async {
                self.client
                    .partial_update_cluster()
                    .set_cluster(Cluster::new().set_name(self.name.clone()).set_cluster_config(config.clone()))
                    .set_update_mask(FieldMask::default().set_paths(paths.clone()))
                    .send()
                    .await
                    .map_err(|e| map_error(BACKEND, "bigtable.clusters.update", &e))
            },
            // Limits read back at once; a cluster RESIZING says nothing here (the autoscaler
            // resizes it on its own).
            || async { Ok(autoscaling(&self.get_cluster().await?).is_some_and(|(lo, _)| lo == to)) },
        )
        .await?;
        let Some(op) = sent else {
            tracing::warn!(cluster = %self.name, to, "autoscaler minimum update timed out but the cluster shows it taken; not re-sent");
            return Ok(ResizeStarted::Unconfirmed);
        };
        tracing::info!(cluster = %self.name, min = to, max = new_max, from = min, operation = %op.name, "autoscaler minimum requested");
        started(BACKEND, op)
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
        let autoscaled = autoscaling(&cluster);
        if let (Some((min, max)), true) = (autoscaled, self.steer) {
            self.two_x.store(cluster.node_scaling_factor == NodeScalingFactor::NodeScalingFactor2X, Ordering::Relaxed);
            let count = |n: i32, what: &str| {
                u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    AdapterError::new(BACKEND, ErrorKind::Malformed, format!("{} reports {what} {n}", self.name))
                })
            };
            return Ok(TargetObservation {
                size: count(min, "autoscaling min_serve_nodes")?,
                busy: cluster.state != State::Ready,
                sizes: self.sizes(),
                floor: FloorMetric::None,
                members: Vec::new(),
                serving: Some(count(cluster.serve_nodes, "serve_nodes")?),
                steered_max: u32::try_from(max).ok(),
            });
        }
        if autoscaled.is_some() {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "{} has Bigtable's built-in autoscaling enabled, which makes serve_nodes output-only (updates are ignored); disable it (gcloud bigtable clusters update {} --instance=... --disable-autoscaling --num-nodes=N), set steerAutoscaler: true to let the policy set the autoscaler's minimum, or remove this ScalePolicy",
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
        Ok(TargetObservation {
            size,
            busy,
            sizes: self.sizes(),
            floor,
            members: Vec::new(),
            serving: None,
            steered_max: None,
        })
    }

    /// With 2x node scaling, serve nodes must be even: the observation says so, the core asks
    /// for even sizes only, and an odd size (the setting changed since) is refused, not rounded.
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.resize_to(to, None).await
    }

    /// Steering built-in autoscaling, its maximum becomes the policy's `max` too.
    async fn resize_within(&self, to: u32, max: u32) -> Result<ResizeStarted, AdapterError> {
        self.resize_to(to, Some(max)).await
    }

    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        if !operation_under(name, &self.name) {
            return Err(foreign_operation(name, &self.name));
        }
        self.operation_status(name).await
    }
}

impl BigtableCluster {
    /// [`ScaleTarget::resize_within`], `max` unknown (`None`) for a plain resize.
    async fn resize_to(&self, to: u32, max: Option<u32>) -> Result<ResizeStarted, AdapterError> {
        if !self.sizes().allows(to) {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!("{to} nodes: {} takes {} only (2x node scaling)", self.name, self.sizes().describe()),
            ));
        }
        let nodes = i32::try_from(to)
            .map_err(|_| AdapterError::new(BACKEND, ErrorKind::Refused, format!("{to} nodes is too many")))?;
        if self.steer
            && let Some(limits) = autoscaling(&self.get_cluster().await?)
        {
            // A maximum the cluster can take (2x node scaling: even), under the policy's.
            let max = max.map(|m| i32::try_from(self.sizes().down(m).unwrap_or(m)).unwrap_or(i32::MAX));
            return self.steer_to(nodes, limits, max).await;
        }
        let sent = send_serve_nodes(&self.client, &self.retry, &self.name, nodes).await?;
        let Some(op) = sent else {
            tracing::warn!(cluster = %self.name, to, "resize timed out but the cluster shows it taken; not re-sent");
            return Ok(ResizeStarted::Unconfirmed);
        };
        tracing::info!(cluster = %self.name, project = %self.project, to, operation = %op.name, "resize requested");
        started(BACKEND, op)
    }

    async fn operation_status(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        let op = retry(BACKEND, &self.retry, || async {
            self.client
                .get_operation()
                .set_name(name.to_string())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "bigtable.clusters.get", &e))
        })
        .await?;
        Ok(status_of(&op))
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
            sizes: SizeRule::Any,
        }
    }
    /// Any node count (2x node scaling is the replay's `sizeStep`).
    fn steered_sizes(&self) -> Option<SizeRule> {
        self.steer_autoscaler.then_some(SizeRule::Any)
    }
    fn check(&self) -> Vec<KindIssue> {
        let mut issues =
            required(&[("project", &self.project), ("instance", &self.instance), ("cluster", &self.cluster)]);
        issues.extend(storage_target_issue(self.storage_target));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored operation name is used in a URL only if it is one of the cluster's own, in plain
    /// path segments.
    #[test]
    fn only_the_clusters_own_operations_are_requested() {
        let cluster = "projects/p1/instances/i1/clusters/c1";
        let own = "operations/projects/p1/instances/i1/clusters/c1/locations/us-central1-b/operations/1234";
        assert!(operation_under(own, cluster));
        let scoped = "projects/example.com:p1/instances/i1/clusters/c1";
        assert!(operation_under(&format!("operations/{scoped}/locations/us-central1-b/operations/7"), scoped));
        for foreign in [
            "operations/projects/p1/instances/i1/clusters/c2/locations/us-central1-b/operations/1",
            "operations/projects/p1/instances/i1/clusters/c10/locations/us-central1-b/operations/1",
            "operations/projects/p2/instances/i1/clusters/c1/locations/us-central1-b/operations/1",
            "operations/projects/p1/instances/i1/clusters/c1/../c2/locations/z/operations/1",
            "operations/projects/p1/instances/i1/clusters/c1/locations/z/operations/1?alt=media",
            "operations/projects/p1/instances/i1/clusters/c1/locations/z/operations/1#x",
            "operations/projects/p1/instances/i1/clusters/c1/locations//operations/1",
            "operations/projects/p1/instances/i1/clusters/c1/",
            "operations/projects/p1/instances/i1/clusters/c1",
            "projects/p1/instances/i1/clusters/c1/locations/z/operations/1",
            "op-1",
            "",
        ] {
            assert!(!operation_under(foreign, cluster), "{foreign}");
        }
        let long = format!("{own}{}", "9".repeat(MAX_OPERATION_NAME));
        assert!(!operation_under(&long, cluster));
        let e = foreign_operation("op-1", cluster);
        assert_eq!(e.kind, ErrorKind::NotFound, "settled as a vanished operation");
        assert!(e.message.contains("not an operation of projects/p1/instances/i1/clusters/c1"), "{e}");
    }
}
