//! A replicated Cloud Bigtable instance as one [`ScaleTarget`]: all its clusters (or a listed
//! subset) at one size, so that any of them can take the others' traffic when they fail over.
//!
//! In mode `largest` (the default) the policy's size is the **largest** cluster's size, and every
//! cluster is brought to the size the policy decides. In mode `perCluster` each cluster is a
//! member with a decision of its own ([`crate::members`]: its own metrics, narrowed with
//! `resource.labels.cluster`, its own state and storage floor), none below `perClusterFloor` of
//! the largest cluster's decision; the adapter then observes each cluster as a target of its own
//! ([`ScaleTarget::observe_members`]) and writes one cluster at a time
//! ([`ScaleTarget::resize_member`]). The rest of this page is about `largest`.
//!
//! - observe: `ListClusters` on the instance (every page; a list with `failedLocations` is
//!   incomplete and is an error, never a smaller instance); the selected clusters' largest
//!   `serve_nodes` is the size; busy while any of them is not READY; 2x node scaling on any of
//!   them makes every size even; each cluster is reported as a [`TargetMember`].
//! - resize: the clusters are listed again; if any is not READY nothing is written (busy);
//!   otherwise one `PartialUpdateCluster` (update mask `serve_nodes`) per cluster whose size
//!   differs, each a long-running operation; their names, joined by `", "`, are the resize's
//!   operation.
//! - operation: `GetOperation` on each joined name: running while any runs, failed (naming the
//!   clusters) once all are done and any failed. A name read back from the state is requested
//!   only if every part is an operation of one of the instance's clusters
//!   (`operations/projects/P/instances/I/clusters/C/…`); otherwise none is, and the resize is
//!   settled as a vanished operation, by the size.
//!
//! Each cluster's write is the single cluster's (`gcp::bigtable`): a resize of it already
//! running, which the cluster may hide behind READY and its old size, is found among the
//! instance's operations and followed instead of being sent again.
//!
//! ## Demand: the hottest cluster drives the decision
//!
//! Each cluster's demand is its own metric series; the policy's Monitoring queries filter on the
//! instance (`resource.labels.instance`), align each cluster's series (`ALIGN_MEAN`) and reduce
//! across clusters with `REDUCE_MAX` and no `groupByFields`, so each minute's value is the
//! hottest cluster's. The core sizes that against the largest cluster's size: once the clusters
//! are even (after the first resize) that is exactly the largest of the per-cluster desired
//! sizes; while they are uneven it can only overestimate (a small hot cluster's load is counted
//! as if it were on the largest), which errs toward capacity.
//!
//! ## Storage floor
//!
//! `storage_utilization` of the selected clusters, `ALIGN_MAX` then `REDUCE_MAX`: the fullest
//! cluster's, so the largest per-cluster floor wins. The core reads it against the policy's size
//! (the largest cluster's), which is exact while the clusters are even. While they are uneven,
//! the smaller replicas (holding the same data, so reading fuller) would inflate the floor by
//! largest/smallest, so only the largest clusters' utilization is read until they are even.
//!
//! ## Built-in autoscaling
//!
//! A cluster with `cluster_config.cluster_autoscaling_config` treats `serve_nodes` as output only;
//! observe and resize refuse the whole target, naming the cluster, before any write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use google_cloud_bigtable_admin_v2::client::BigtableInstanceAdmin;
use google_cloud_bigtable_admin_v2::model::Cluster;
use google_cloud_bigtable_admin_v2::model::cluster::{NodeScalingFactor, State};

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, MemberObservation, MonitoringQuery, OperationStatus, ResizeStarted,
    ScaleTarget, TargetMember, TargetObservation,
};
use crate::api::{BigtableInstanceRef, InstanceSizing};
use crate::core::{Dur, SizeRule};
use crate::gcp::bigtable::{DEFAULT_STORAGE_TARGET, foreign_operation, operation_under, send_serve_nodes};
use crate::gcp::{GcpConfig, RetryConfig, bigtable_client, map_error, retry};
use crate::kinds::{BoxTarget, Clients, KindIssue, TargetKind, required, storage_target_issue};

const BACKEND: &str = "bigtable";
/// Joins the operations of one resize into the one name the core follows.
const JOIN: &str = ", ";

/// One replicated Bigtable instance.
pub struct BigtableInstance {
    client: BigtableInstanceAdmin,
    retry: RetryConfig,
    /// `projects/P/instances/I`.
    parent: String,
    /// Cluster IDs to size; empty: all.
    wanted: Vec<String>,
    /// What the policy names (for the storage query of uneven clusters).
    reference: BigtableInstanceRef,
    storage_query: MonitoringQuery,
    storage_target: f64,
    two_x: AtomicBool,
    /// Cluster ID → the resize operation on it being followed (for status).
    following: Mutex<HashMap<String, String>>,
}

impl BigtableInstance {
    /// Use an existing client.
    pub fn new(client: BigtableInstanceAdmin, cfg: &GcpConfig, target: &BigtableInstanceRef) -> BigtableInstance {
        BigtableInstance {
            client,
            retry: cfg.retry,
            parent: format!("projects/{}/instances/{}", target.project, target.instance),
            wanted: target.clusters.clone(),
            reference: target.clone(),
            storage_query: storage_utilization_query(target),
            storage_target: target.storage_target.unwrap_or(DEFAULT_STORAGE_TARGET),
            two_x: AtomicBool::new(false),
            following: Mutex::new(HashMap::new()),
        }
    }

    /// Connect to the instance `target` names, building the client as `cfg` says.
    pub async fn connect(cfg: &GcpConfig, target: &BigtableInstanceRef) -> Result<BigtableInstance, AdapterError> {
        Ok(BigtableInstance::new(bigtable_client(cfg).await?, cfg, target))
    }

    fn following(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.following.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The selected clusters, in the instance's order, each refused if Bigtable autoscales it.
    async fn clusters(&self) -> Result<Vec<Cluster>, AdapterError> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = retry(BACKEND, &self.retry, || async {
                self.client
                    .list_clusters()
                    .set_parent(self.parent.clone())
                    .set_page_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| map_error(BACKEND, "bigtable.clusters.list", &e))
            })
            .await?;
            if !page.failed_locations.is_empty() {
                return Err(AdapterError::new(
                    BACKEND,
                    ErrorKind::Transient,
                    format!(
                        "listing the clusters of {} failed in {}: the instance's clusters are not all known",
                        self.parent,
                        page.failed_locations.join(", ")
                    ),
                ));
            }
            all.extend(page.clusters);
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        let selected: Vec<Cluster> = if self.wanted.is_empty() {
            all
        } else {
            let mut selected = Vec::with_capacity(self.wanted.len());
            for id in &self.wanted {
                let Some(c) = all.iter().find(|c| cluster_id(&c.name) == id) else {
                    return Err(AdapterError::new(
                        BACKEND,
                        ErrorKind::NotFound,
                        format!(
                            "{} has no cluster {id:?} (it has {}); fix spec.target.bigtableInstance.clusters",
                            self.parent,
                            all.iter().map(|c| cluster_id(&c.name)).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                };
                selected.push(c.clone());
            }
            selected
        };
        if selected.is_empty() {
            return Err(AdapterError::new(BACKEND, ErrorKind::NotFound, format!("{} has no clusters", self.parent)));
        }
        if let Some(c) =
            selected.iter().find(|c| c.cluster_config().is_some_and(|cfg| cfg.cluster_autoscaling_config.is_some()))
        {
            let id = cluster_id(&c.name);
            let instance = self.parent.rsplit('/').next().unwrap_or_default();
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "cluster {id} of {} has Bigtable's built-in autoscaling enabled, which makes serve_nodes output-only (updates are ignored); disable it (gcloud bigtable clusters update {id} --instance={instance} --disable-autoscaling --num-nodes=N), leave the cluster out of spec.target.bigtableInstance.clusters, or remove this ScalePolicy",
                    self.parent
                ),
            ));
        }
        Ok(selected)
    }

    fn sizes(&self) -> SizeRule {
        if self.two_x.load(Ordering::Relaxed) { SizeRule::Multiple(2) } else { SizeRule::Any }
    }
}

/// The cluster ID in a cluster's or an operation's name (`…/clusters/C` or `…/clusters/C/…`).
fn cluster_id(name: &str) -> &str {
    name.split_once("/clusters/").map_or(name, |(_, rest)| rest.split('/').next().unwrap_or(rest))
}

fn size_of(c: &Cluster) -> Result<u32, AdapterError> {
    u32::try_from(c.serve_nodes).map_err(|_| {
        AdapterError::new(BACKEND, ErrorKind::Malformed, format!("{}: serve_nodes is {}", c.name, c.serve_nodes))
    })
}

fn state_name(s: &State) -> String {
    s.name().unwrap_or("STATE_NOT_KNOWN").to_string()
}

/// The Monitoring query for the selected clusters' storage utilization: the fullest cluster's.
pub fn storage_utilization_query(target: &BigtableInstanceRef) -> MonitoringQuery {
    let mut filter = format!(
        "metric.type=\"bigtable.googleapis.com/cluster/storage_utilization\" AND resource.type=\"bigtable_cluster\" AND resource.labels.instance=\"{}\"",
        target.instance
    );
    if !target.clusters.is_empty() {
        let ids: Vec<String> = target.clusters.iter().map(|c| format!("\"{c}\"")).collect();
        filter.push_str(&format!(" AND resource.labels.cluster=one_of({})", ids.join(",")));
    }
    MonitoringQuery {
        project: target.project.clone(),
        filter,
        alignment_period: Dur::secs(60),
        per_series_aligner: "ALIGN_MAX".into(),
        cross_series_reducer: Some("REDUCE_MAX".into()),
        group_by_fields: Vec::new(),
    }
}

impl ScaleTarget for BigtableInstance {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        let clusters = self.clusters().await?;
        let mut size = 0;
        let mut members = Vec::with_capacity(clusters.len());
        let following = self.following().clone();
        for c in &clusters {
            let id = cluster_id(&c.name).to_string();
            let n = size_of(c)?;
            size = size.max(n);
            members.push(TargetMember {
                operation: following.get(&id).cloned(),
                name: id,
                size: n,
                state: state_name(&c.state),
            });
        }
        let busy = clusters.iter().any(|c| c.state != State::Ready);
        self.two_x.store(
            clusters.iter().any(|c| c.node_scaling_factor == NodeScalingFactor::NodeScalingFactor2X),
            Ordering::Relaxed,
        );
        // The core reads utilization against the policy's size, the largest cluster's. A smaller
        // replica holding the same data reads fuller, and would inflate the floor by
        // largest/smallest: while uneven, only the largest clusters' utilization is read.
        let query = if members.iter().all(|m| m.size == size) {
            self.storage_query.clone()
        } else {
            let largest = members.iter().filter(|m| m.size == size).map(|m| m.name.clone()).collect();
            storage_utilization_query(&BigtableInstanceRef { clusters: largest, ..self.reference.clone() })
        };
        let floor = FloorMetric::Storage { query: query.into(), storage_target: self.storage_target };
        Ok(TargetObservation { size, busy, sizes: self.sizes(), floor, members, serving: None, steered_max: None })
    }

    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        if !self.sizes().allows(to) {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!("{to} nodes: {} takes {} only (2x node scaling)", self.parent, self.sizes().describe()),
            ));
        }
        let nodes = i32::try_from(to)
            .map_err(|_| AdapterError::new(BACKEND, ErrorKind::Refused, format!("{to} nodes is too many")))?;
        let clusters = self.clusters().await?;
        // Any cluster mid-operation would refuse its write after others were taken: write none.
        if let Some(c) = clusters.iter().find(|c| c.state != State::Ready) {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Busy,
                format!("cluster {} is {}; no cluster resized", cluster_id(&c.name), state_name(&c.state)),
            ));
        }
        let (mut ops, mut unconfirmed, mut done) = (Vec::new(), Vec::new(), Vec::new());
        for c in clusters.iter().filter(|c| c.serve_nodes != nodes) {
            let id = cluster_id(&c.name).to_string();
            let sent = send_serve_nodes(&self.client, &self.retry, &c.name, nodes).await;
            let op = match sent {
                Ok(Some(op)) => op,
                Ok(None) => {
                    tracing::warn!(cluster = %c.name, to, "resize timed out but the cluster shows it taken; not re-sent");
                    unconfirmed.push(id);
                    continue;
                }
                Err(mut e) => {
                    // The clusters already written keep resizing (shown busy until done); say so.
                    let taken: Vec<&str> = ops
                        .iter()
                        .map(|o: &String| cluster_id(o))
                        .chain(unconfirmed.iter().chain(&done).map(String::as_str))
                        .collect();
                    e.message = if taken.is_empty() {
                        format!("cluster {id}: {}", e.message)
                    } else {
                        format!("cluster {id}: {} (already resizing to {to}: {})", e.message, taken.join(", "))
                    };
                    return Err(e);
                }
            };
            tracing::info!(cluster = %c.name, to, operation = %op.name, "resize requested");
            match (op.done, op.error()) {
                (true, Some(err)) => {
                    return Err(AdapterError::new(BACKEND, ErrorKind::Other, format!("cluster {id}: {}", err.message)));
                }
                (true, None) => done.push(id),
                (false, _) => {
                    self.following().insert(id, op.name.clone());
                    ops.push(op.name);
                }
            }
        }
        Ok(if !ops.is_empty() {
            ResizeStarted::Operation(ops.join(JOIN))
        } else if !unconfirmed.is_empty() {
            ResizeStarted::Unconfirmed
        } else {
            ResizeStarted::Done
        })
    }

    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        let clusters = format!("{}/clusters", self.parent);
        if let Some(foreign) = name.split(JOIN).find(|p| !p.is_empty() && !operation_under(p, &clusters)) {
            return Err(foreign_operation(foreign, &clusters));
        }
        let (mut running, mut failed) = (false, Vec::new());
        for part in name.split(JOIN).filter(|p| !p.is_empty()) {
            let op = retry(BACKEND, &self.retry, || async {
                self.client
                    .get_operation()
                    .set_name(part.to_string())
                    .send()
                    .await
                    .map_err(|e| map_error(BACKEND, "bigtable.clusters.get", &e))
            })
            .await?;
            let id = cluster_id(part).to_string();
            if op.done {
                self.following().remove(&id);
            } else {
                // Also after a restart: the name is kept in the policy's state.
                self.following().insert(id.clone(), part.to_string());
            }
            match (op.done, op.error()) {
                (false, _) => running = true,
                (true, Some(err)) => failed.push(format!("cluster {id}: {} (code {})", err.message, err.code)),
                (true, None) => {}
            }
        }
        Ok(match (running, failed.is_empty()) {
            (true, _) => OperationStatus::Running,
            (false, false) => OperationStatus::Failed(failed.join("; ")),
            (false, true) => OperationStatus::Done,
        })
    }

    async fn observe_members(&self) -> Result<Vec<MemberObservation>, AdapterError> {
        self.members().await
    }

    async fn resize_member(&self, member: &str, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.resize_one(member, to).await
    }
}

/// The size rule of one cluster: 2x node scaling takes even sizes only.
fn cluster_sizes(c: &Cluster) -> SizeRule {
    if c.node_scaling_factor == NodeScalingFactor::NodeScalingFactor2X { SizeRule::Multiple(2) } else { SizeRule::Any }
}

impl BigtableInstance {
    /// Per-cluster mode: every selected cluster as a target of its own, from one list.
    async fn members(&self) -> Result<Vec<MemberObservation>, AdapterError> {
        let clusters = self.clusters().await?;
        let mut members = Vec::with_capacity(clusters.len());
        for c in &clusters {
            let id = cluster_id(&c.name).to_string();
            // Each cluster's own storage, read against its own size: its own floor.
            let query = storage_utilization_query(&BigtableInstanceRef {
                clusters: vec![id.clone()],
                ..self.reference.clone()
            });
            members.push(MemberObservation {
                state: state_name(&c.state),
                observation: TargetObservation {
                    size: size_of(c)?,
                    busy: c.state != State::Ready,
                    sizes: cluster_sizes(c),
                    floor: FloorMetric::Storage { query: query.into(), storage_target: self.storage_target },
                    members: Vec::new(),
                    serving: None,
                    steered_max: None,
                },
                filter: format!("resource.labels.cluster=\"{id}\""),
                name: id,
            });
        }
        Ok(members)
    }

    /// Per-cluster mode: one cluster to `to`. The instance is listed first, so a cluster with
    /// built-in autoscaling anywhere in the selection refuses the write as in `largest` mode.
    async fn resize_one(&self, member: &str, to: u32) -> Result<ResizeStarted, AdapterError> {
        let clusters = self.clusters().await?;
        let Some(c) = clusters.iter().find(|c| cluster_id(&c.name) == member) else {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::NotFound,
                format!("{} has no selected cluster {member:?}", self.parent),
            ));
        };
        if !cluster_sizes(c).allows(to) {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!("{to} nodes: cluster {member} takes {} only (2x node scaling)", cluster_sizes(c).describe()),
            ));
        }
        if c.state != State::Ready {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Busy,
                format!("cluster {member} is {}; not resized", state_name(&c.state)),
            ));
        }
        let nodes = i32::try_from(to)
            .map_err(|_| AdapterError::new(BACKEND, ErrorKind::Refused, format!("{to} nodes is too many")))?;
        if c.serve_nodes == nodes {
            return Ok(ResizeStarted::Done);
        }
        let op = match send_serve_nodes(&self.client, &self.retry, &c.name, nodes).await {
            Ok(Some(op)) => op,
            Ok(None) => {
                tracing::warn!(cluster = %c.name, to, "resize timed out but the cluster shows it taken; not re-sent");
                return Ok(ResizeStarted::Unconfirmed);
            }
            Err(mut e) => {
                e.message = format!("cluster {member}: {}", e.message);
                return Err(e);
            }
        };
        tracing::info!(cluster = %c.name, to, operation = %op.name, "resize requested");
        match (op.done, op.error()) {
            (true, Some(err)) => {
                Err(AdapterError::new(BACKEND, ErrorKind::Other, format!("cluster {member}: {}", err.message)))
            }
            (true, None) => Ok(ResizeStarted::Done),
            (false, _) => {
                self.following().insert(member.to_string(), op.name.clone());
                Ok(ResizeStarted::Operation(op.name))
            }
        }
    }
}

impl TargetKind for BigtableInstanceRef {
    fn field(&self) -> &'static str {
        "bigtableInstance"
    }
    fn describe(&self) -> String {
        let which = if self.clusters.is_empty() { "all clusters".to_string() } else { self.clusters.join(",") };
        format!("bigtable instance {}/{} ({which})", self.project, self.instance)
    }
    /// One policy per instance, whichever clusters it lists: two policies sizing overlapping
    /// subsets would fight.
    fn identity(&self, _namespace: &str) -> String {
        format!("bigtable instance {}/{}", self.project, self.instance)
    }
    fn leaf(&self) -> &str {
        &self.instance
    }
    fn project(&self) -> Option<&str> {
        Some(&self.project)
    }
    /// As for one cluster: up to 20 minutes under load (Bigtable docs, "Add or remove nodes").
    fn default_warmup(&self) -> Dur {
        Dur::mins(20)
    }
    fn check(&self) -> Vec<KindIssue> {
        let mut issues = required(&[("project", &self.project), ("instance", &self.instance)]);
        for (i, c) in self.clusters.iter().enumerate() {
            if c.trim().is_empty() {
                issues.push(("clusters", format!("entry {i} is empty: name a cluster ID or remove the entry")));
            } else if self.clusters[..i].contains(c) {
                issues.push(("clusters", format!("{c:?} is listed twice: list each cluster once")));
            }
        }
        issues.extend(storage_target_issue(self.storage_target));
        if let Some(f) = self.per_cluster_floor {
            if !(f > 0.0 && f <= 1.0) {
                issues.push((
                    "perClusterFloor",
                    format!(
                        "must be more than 0 and at most 1, a fraction of the largest cluster's decision (got {f}); e.g. 0.5 keeps every cluster at half the largest at least"
                    ),
                ));
            } else if self.sizing != Some(InstanceSizing::PerCluster) {
                issues.push((
                    "perClusterFloor",
                    "applies only with sizing: perCluster (in largest mode every cluster has the largest size); set spec.target.bigtableInstance.sizing: perCluster or remove perClusterFloor".to_string(),
                ));
            }
        }
        issues
    }
    fn per_member_floor(&self) -> Option<f64> {
        self.per_cluster_floor()
    }
    fn connect(&self, clients: &Arc<Clients>, _namespace: &str) -> Result<BoxTarget, AdapterError> {
        let (clients, target) = (clients.clone(), self.clone());
        Ok(BoxTarget::lazy(move || {
            let (clients, target) = (clients.clone(), target.clone());
            async move {
                let gcp = clients.setting::<GcpConfig>()?;
                let client = clients.get(|| bigtable_client(gcp)).await?;
                Ok(BigtableInstance::new(client, gcp, &target))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_come_from_cluster_and_operation_names() {
        assert_eq!(cluster_id("projects/p/instances/i/clusters/c-east"), "c-east");
        assert_eq!(cluster_id("operations/projects/p/instances/i/clusters/c2/locations/z/operations/7"), "c2");
    }

    /// A stored operation name (several, joined) is requested only if every part is an operation
    /// of one of the instance's clusters.
    #[test]
    fn only_operations_of_the_instances_clusters_are_requested() {
        let clusters = "projects/p/instances/i/clusters";
        let op = |c: &str| format!("operations/projects/p/instances/i/clusters/{c}/locations/z/operations/7");
        assert!(operation_under(&op("c1"), clusters) && operation_under(&op("c-2"), clusters));
        for foreign in [
            "operations/projects/p/instances/other/clusters/c1/locations/z/operations/7".to_string(),
            op("c1/../../../other"),
            op("c1").replace("operations/7", "operations/7?x=1"),
        ] {
            assert!(!operation_under(&foreign, clusters), "{foreign}");
        }
    }

    #[test]
    fn fields_are_checked_with_the_fix() {
        let r = BigtableInstanceRef {
            project: "p".into(),
            instance: "i".into(),
            clusters: vec!["a".into(), " ".into(), "a".into()],
            storage_target: Some(0.99),
            sizing: None,
            per_cluster_floor: None,
        };
        let fields: Vec<_> = r.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["clusters", "clusters", "storageTarget"]);
        assert!(r.check()[1].1.contains("listed twice"));
    }

    /// perClusterFloor: a fraction in (0, 1], and only with sizing: perCluster; both errors
    /// say the fix.
    #[test]
    fn the_per_cluster_floor_is_a_fraction_and_needs_per_cluster_sizing() {
        let r = |sizing, floor| BigtableInstanceRef {
            project: "p".into(),
            instance: "i".into(),
            clusters: vec![],
            storage_target: None,
            sizing,
            per_cluster_floor: floor,
        };
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            let issues = r(Some(InstanceSizing::PerCluster), Some(bad)).check();
            assert_eq!(issues.len(), 1, "{bad}: {issues:?}");
            assert_eq!(issues[0].0, "perClusterFloor");
            assert!(issues[0].1.contains("more than 0 and at most 1"), "{}", issues[0].1);
        }
        assert!(r(Some(InstanceSizing::PerCluster), Some(1.0)).check().is_empty());
        assert_eq!(r(Some(InstanceSizing::PerCluster), None).per_cluster_floor(), Some(0.5));
        let issues = r(None, Some(0.5)).check();
        assert!(issues[0].1.contains("sizing: perCluster"), "{issues:?}");
        assert_eq!(r(None, None).per_member_floor(), None, "largest mode sizes the instance as one");
    }

    #[test]
    fn the_storage_query_reduces_to_the_fullest_listed_cluster() {
        let mut r = BigtableInstanceRef {
            project: "p".into(),
            instance: "i".into(),
            clusters: vec![],
            storage_target: None,
            sizing: None,
            per_cluster_floor: None,
        };
        assert!(!storage_utilization_query(&r).filter.contains("one_of"));
        r.clusters = vec!["a".into(), "b".into()];
        let q = storage_utilization_query(&r);
        assert!(q.filter.ends_with(r#"resource.labels.cluster=one_of("a","b")"#), "{}", q.filter);
        assert_eq!(q.cross_series_reducer.as_deref(), Some("REDUCE_MAX"));
    }
}
