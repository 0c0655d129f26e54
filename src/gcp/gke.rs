//! A GKE node pool as a [`ScaleTarget`]: its node count.
//!
//! - observe: `GetNodePool`, then Compute Engine `instanceGroupManagers.get` for each of the pool's
//!   `instanceGroupUrls` (one managed instance group per zone): the size is the sum of the groups'
//!   `targetSize`, the count each group is converging to. A NodePool carries no live node count:
//!   `initialNodeCount` is documented as the count the pool was created with, and a size changed
//!   by a console edit of a group, or by anything but `SetNodePoolSize`, need not show in it. The
//!   sizes the pool can take are still multiples of its zone count (GKE resizes every zone alike).
//!   A pool that is PROVISIONING, RECONCILING or STOPPING has an operation in progress and is busy;
//!   ERROR is an error.
//! - resize: `SetNodePoolSize` with the per-zone count: `nodeCount` is applied to every zone of the
//!   pool ("the new size will be used for all replicas"), so a total of `n` over `z` zones becomes
//!   `ceil(n / z)` per zone. Rounding up keeps at least the capacity the policy asked for; the
//!   observed size is then `z × ceil(n / z)`.
//! - operation: the GKE `Operation` (not google.longrunning) by full name
//!   `projects/{p}/locations/{loc}/operations/{id}`; `status == DONE` with an `error` is a failure.
//!   A name read back from the state is requested only if it is an id (letters, digits, `-`, `_`)
//!   of the pool's own project and location; any other is treated as a vanished operation.
//! - FAILED_PRECONDITION "incompatible operation" / "in progress" answers are [`ErrorKind::Busy`]:
//!   someone else's upgrade or resize holds the cluster; try again later.
//!
//! ## Cluster autoscaler
//!
//! While the pool's cluster autoscaler is enabled, a size set with `SetNodePoolSize` is undone by
//! the autoscaler, so observe refuses the pool unless `adjustClusterAutoscaler: true`. With it, the
//! policy's size becomes the autoscaler's lower bound instead: resize calls
//! `SetNodePoolAutoscaling` with the minimum set to the new size (per zone, rounded up as above;
//! or `totalMinNodeCount` when the pool uses total limits) and the maximum raised to it if it was
//! lower. The autoscaler may still add nodes above that for pending pods, and removes nodes down to
//! it when they are idle. In this mode the observed size is that minimum, i.e. what the policy
//! controls, and the live node count (the groups' target sizes) is the capacity serving, on which
//! the core reads the metrics.
//!
//! The instance groups are read with the official Compute client (`google-cloud-compute-v1`,
//! only `instance-group-managers`); their URLs are taken apart into project, zone and name and
//! only a zonal group of the pool's own project is requested. A regional group is refused with
//! what to do: GKE creates zonal groups for node pools.

use std::sync::Arc;

use google_cloud_compute_v1::client::InstanceGroupManagers;
use google_cloud_container_v1::client::ClusterManager;
use google_cloud_container_v1::model::node_pool::Status as PoolStatus;
use google_cloud_container_v1::model::operation::Status as OpStatus;
use google_cloud_container_v1::model::{NodePool, NodePoolAutoscaling};

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, OperationStatus, ResizeStarted, ScaleTarget, TargetObservation,
};
use crate::api::{GkeNodePoolRef, ScaleIn};
use crate::core::{Dur, SizeRule};
use crate::gcp::drain::{DrainSettings, Drainer, Plan};
use crate::gcp::{Clock, GcpConfig, RetryConfig, compute_groups_client, gke_client, map_error, retry, retry_write};
use crate::kinds::{BoxTarget, Clients, KindIssue, TargetKind, required};

const BACKEND: &str = "gke";

/// One GKE node pool.
pub struct GkeNodePool {
    client: ClusterManager,
    groups: InstanceGroupManagers,
    retry: RetryConfig,
    project: String,
    location: String,
    name: String,
    adjust_cluster_autoscaler: bool,
    /// The pool's nodes in Kubernetes ([`crate::gcp::drain`]), when there is an API to reach
    /// them: drains, and releases nodes a drain left tainted.
    drain: Option<Drainer>,
    /// Whether scale-in drains (`scaleIn: drain` without `adjustClusterAutoscaler`); otherwise
    /// `SetNodePoolSize` removes nodes.
    scale_in_by_drain: bool,
}

/// How a pool's size is read and set, from its current configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizing {
    /// `SetNodePoolSize`, per zone.
    Fixed { zones: u32 },
    /// Autoscaler limits per zone.
    AutoscalerPerZone { zones: u32 },
    /// Autoscaler total limits.
    AutoscalerTotal,
}

/// Total nodes → nodes per zone. The pool reports its sizes as multiples of its zone count (see
/// `observe`), so the core only asks for those; a total that is not one (the zones changed since
/// the pool was observed) is refused rather than rounded behind the core's back.
pub fn per_zone(total: u32, zones: u32) -> Result<u32, AdapterError> {
    let zones = zones.max(1);
    if total.is_multiple_of(zones) {
        Ok(total / zones)
    } else {
        Err(AdapterError::new(
            BACKEND,
            ErrorKind::Refused,
            format!("{total} nodes is not a whole number of nodes in each of the pool's {zones} zones"),
        ))
    }
}

impl Sizing {
    /// The sizes a pool sized this way can take.
    fn rule(self) -> SizeRule {
        match self {
            Sizing::Fixed { zones } | Sizing::AutoscalerPerZone { zones } => SizeRule::Multiple(zones),
            Sizing::AutoscalerTotal => SizeRule::Any,
        }
    }
}

impl GkeNodePool {
    /// Connect to the node pool `target` names, building the client as `cfg` says.
    pub async fn connect(cfg: &GcpConfig, target: &GkeNodePoolRef) -> Result<GkeNodePool, AdapterError> {
        Ok(GkeNodePool::new(gke_client(cfg).await?, compute_groups_client(cfg).await?, cfg, target))
    }

    /// Use existing clients.
    pub fn new(
        client: ClusterManager,
        groups: InstanceGroupManagers,
        cfg: &GcpConfig,
        target: &GkeNodePoolRef,
    ) -> GkeNodePool {
        GkeNodePool {
            client,
            groups,
            retry: cfg.retry,
            project: target.project.clone(),
            location: target.location.clone(),
            name: format!(
                "projects/{}/locations/{}/clusters/{}/nodePools/{}",
                target.project, target.location, target.cluster, target.node_pool
            ),
            adjust_cluster_autoscaler: target.adjust_cluster_autoscaler || target.steer_autoscaler,
            drain: None,
            scale_in_by_drain: false,
        }
    }

    /// Reach the pool's nodes through `kube` (the pool's own cluster): scale in by draining
    /// nodes and deleting exactly those VMs when `target` asks for it (`scaleIn: drain`, the
    /// default), with its drain settings and deadlines read from `clock`; in any case release
    /// nodes an earlier drain left tainted. Without this, scale-in is `SetNodePoolSize`.
    pub fn with_drain(mut self, kube: kube::Client, target: &GkeNodePoolRef, clock: Clock) -> GkeNodePool {
        self.scale_in_by_drain = drains(target);
        self.drain = Some(Drainer {
            kube,
            groups: self.groups.clone(),
            retry: self.retry,
            project: self.project.clone(),
            pool: target.node_pool.clone(),
            settings: drain_settings(target),
            clock,
        });
        self
    }

    /// Full resource name, `projects/P/locations/L/clusters/C/nodePools/N`.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self) -> Result<NodePool, AdapterError> {
        retry(BACKEND, &self.retry, || async {
            self.client
                .get_node_pool()
                .set_name(self.name.clone())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "container.clusters.get", &e))
        })
        .await
    }

    /// The pool's live size: the sum of its instance groups' target sizes.
    async fn live_size(&self, pool: &NodePool) -> Result<u32, AdapterError> {
        Ok(self.live_sizes(pool).await?.iter().fold(0u32, |a, n| a.saturating_add(*n)))
    }

    /// Each of the pool's instance groups' target size, in the pool's order.
    async fn live_sizes(&self, pool: &NodePool) -> Result<Vec<u32>, AdapterError> {
        if pool.instance_group_urls.is_empty() {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Malformed,
                format!("{} lists no instance groups (instanceGroupUrls), so its live size is unknown", self.name),
            ));
        }
        let mut sizes = Vec::with_capacity(pool.instance_group_urls.len());
        for url in &pool.instance_group_urls {
            let (zone, group) = zonal_group(url, &self.project)
                .map_err(|why| AdapterError::new(BACKEND, ErrorKind::Malformed, format!("{}: {why}", self.name)))?;
            let got = retry(BACKEND, &self.retry, || async {
                self.groups
                    .get()
                    .set_project(self.project.clone())
                    .set_zone(zone.clone())
                    .set_instance_group_manager(group.clone())
                    .send()
                    .await
                    .map_err(|e| map_error(BACKEND, "compute.instanceGroupManagers.get", &e))
            })
            .await?;
            let size = got.target_size.ok_or_else(|| {
                AdapterError::new(BACKEND, ErrorKind::Malformed, format!("instance group {group} has no targetSize"))
            })?;
            sizes.push(count(size, "targetSize")?);
        }
        Ok(sizes)
    }

    fn sizing(&self, pool: &NodePool) -> Result<Sizing, AdapterError> {
        let zones = u32::try_from(pool.locations.len()).unwrap_or(u32::MAX).max(1);
        match &pool.autoscaling {
            Some(a) if a.enabled && !self.adjust_cluster_autoscaler => Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "{} has the cluster autoscaler enabled, which would undo every resize; disable it (gcloud container node-pools update ... --no-enable-autoscaling) or set steerAutoscaler: true (adjustClusterAutoscaler, its older name) to let the policy set the autoscaler's minimum",
                    self.name
                ),
            )),
            Some(a) if a.enabled && (a.total_min_node_count > 0 || a.total_max_node_count > 0) => {
                Ok(Sizing::AutoscalerTotal)
            }
            Some(a) if a.enabled => Ok(Sizing::AutoscalerPerZone { zones }),
            _ => Ok(Sizing::Fixed { zones }),
        }
    }

    fn full_operation_name(&self, op_name: &str) -> String {
        if op_name.starts_with("projects/") {
            op_name.to_string()
        } else {
            format!("projects/{}/locations/{}/operations/{op_name}", self.project, self.location)
        }
    }
}

/// The full name of the stored operation `stored` (a short id, or
/// `projects/P/locations/L/operations/ID`) of the node pool `pool`, if it is an operation of the
/// pool's `project` and `location`. It goes into a request's path: any other name is not
/// requested, and answers NotFound, which the tick settles as a vanished operation (by the size).
fn stored_operation(pool: &str, project: &str, location: &str, stored: &str) -> Result<String, AdapterError> {
    let prefix = format!("projects/{project}/locations/{location}/operations/");
    let id = stored.strip_prefix(prefix.as_str()).unwrap_or(stored);
    if is_operation_id(id) {
        return Ok(format!("{prefix}{id}"));
    }
    let shown: String = stored.chars().take(120).collect();
    tracing::warn!(pool = %pool, operation = %shown, "stored operation name is not one of this pool's: not requested");
    Err(AdapterError::new(
        BACKEND,
        ErrorKind::NotFound,
        format!(
            "the stored operation name {shown:?} is not an operation of {pool} (those are {prefix}ID, the ID of letters, digits, '-' and '_'); it was not requested and counts as vanished"
        ),
    ))
}

/// Whether `id` is a GKE operation id (`operation-1712345678901-0a1b2c3d`): letters, digits, `-`
/// and `_`, so it goes into a URL as it is.
fn is_operation_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The zone and name of a zonal managed instance group of `project` from its URL
/// (`https://www.googleapis.com/compute/v1/projects/P/zones/Z/instanceGroupManagers/G`, or the
/// same path alone); they go into a request's path, so each must be a plain name.
fn zonal_group(url: &str, project: &str) -> Result<(String, String), String> {
    let path = url.split_once("/compute/v1/").map_or(url, |(_, p)| p);
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let plain = |s: &str| !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    match seg.as_slice() {
        ["projects", p, "zones", z, "instanceGroupManagers", g] if *p == project && plain(z) && plain(g) => {
            Ok((z.to_string(), g.to_string()))
        }
        ["projects", _, "regions", ..] => {
            Err(format!("instance group {url} is regional; ebbflow reads the zonal groups GKE creates for node pools"))
        }
        _ => Err(format!("{url:?} is not a zonal instance group manager of project {project}")),
    }
}

fn count(v: i32, what: &str) -> Result<u32, AdapterError> {
    u32::try_from(v).map_err(|_| AdapterError::new(BACKEND, ErrorKind::Malformed, format!("{what} is {v}")))
}

fn to_i32(v: u32) -> Result<i32, AdapterError> {
    i32::try_from(v).map_err(|_| AdapterError::new(BACKEND, ErrorKind::Refused, format!("{v} nodes is too many")))
}

impl ScaleTarget for GkeNodePool {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        let pool = self.get().await?;
        let busy = match pool.status {
            PoolStatus::Running | PoolStatus::RunningWithError => false,
            PoolStatus::Error => {
                return Err(AdapterError::new(
                    BACKEND,
                    ErrorKind::Other,
                    format!(
                        "{} is in state ERROR: {}",
                        self.name,
                        pool.conditions.iter().map(|c| c.message.as_str()).collect::<Vec<_>>().join("; ")
                    ),
                ));
            }
            _ => true,
        };
        let sizing = self.sizing(&pool)?;
        if let Some(drain) = &self.drain
            && let Err(e) = drain.release_orphans().await
        {
            tracing::warn!(pool = %self.name, error = %e, "could not look for nodes left tainted by a lost drain");
        }
        let live = self.live_size(&pool).await?;
        let size = match (sizing, &pool.autoscaling) {
            (Sizing::Fixed { .. }, _) => live,
            (Sizing::AutoscalerPerZone { zones }, Some(a)) => count(a.min_node_count, "minNodeCount")? * zones,
            (Sizing::AutoscalerTotal, Some(a)) => count(a.total_min_node_count, "totalMinNodeCount")?,
            (_, None) => 0,
        };
        // Steering the cluster autoscaler, the size is its minimum; the nodes its groups keep
        // are what carry the load the metrics measure.
        let serving = (!matches!(sizing, Sizing::Fixed { .. })).then_some(live);
        Ok(TargetObservation {
            size,
            busy,
            sizes: sizing.rule(),
            floor: FloorMetric::None,
            members: Vec::new(),
            serving,
            steered_max: None,
        })
    }

    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        // Read the pool again: its zones and autoscaler decide what request means `to` nodes.
        let pool = self.get().await?;
        let sizing = self.sizing(&pool)?;
        // With drain, the groups' sizes decide both whether this is a scale-in and, for a
        // scale-out, the least count per zone: read once.
        let groups = match (&self.drain, sizing, self.scale_in_by_drain) {
            (Some(drain), Sizing::Fixed { .. }, true) => Some((drain, self.live_sizes(&pool).await?)),
            _ => None,
        };
        if let Some((drain, sizes)) = &groups {
            let live = sizes.iter().fold(0u32, |a, n| a.saturating_add(*n));
            if to < live {
                // Only the plan: it goes into status as the operation before any node is touched.
                let plan = drain.plan(live - to).await?;
                let name = plan.encode();
                tracing::info!(pool = %self.name, to, nodes = plan.nodes.len(), operation = %name, "drain planned");
                return Ok(ResizeStarted::Operation(name));
            }
        }
        if let Sizing::Fixed { zones } | Sizing::AutoscalerPerZone { zones } = sizing {
            per_zone(to, zones)?;
        }
        // A scale-out sets every zone alike; after a drain took more from one zone than another,
        // a count below the largest zone's would shrink that zone, removing nodes the group
        // picks, pods and all. So a scale-out never sets fewer than the largest zone has.
        let keep_per_zone = groups.as_ref().and_then(|(_, sizes)| sizes.iter().copied().max()).unwrap_or(0);
        let op = retry_write(
            BACKEND,
            &self.retry,
            || async {
                let sent = match (sizing, &pool.autoscaling) {
                    (Sizing::Fixed { zones }, _) => {
                        self.client
                            .set_node_pool_size()
                            .set_name(self.name.clone())
                            .set_node_count(to_i32(per_zone(to, zones)?.max(keep_per_zone))?)
                            .send()
                            .await
                    }
                    (Sizing::AutoscalerPerZone { zones }, Some(a)) => {
                        let min = to_i32(per_zone(to, zones)?)?;
                        let limits = a.clone().set_min_node_count(min).set_max_node_count(a.max_node_count.max(min));
                        self.set_autoscaling(limits).await
                    }
                    (Sizing::AutoscalerTotal, Some(a)) => {
                        let min = to_i32(to)?;
                        let limits = a
                            .clone()
                            .set_total_min_node_count(min)
                            .set_total_max_node_count(a.total_max_node_count.max(min));
                        self.set_autoscaling(limits).await
                    }
                    (_, None) => unreachable_sizing(),
                };
                sent.map_err(|e| map_error(BACKEND, "container.clusters.update", &e))
            },
            || async {
                // Taken if the pool is busy or already has the size asked for.
                let now = self.observe().await?;
                Ok(now.busy || now.size == to)
            },
        )
        .await?;
        let Some(op) = op else {
            tracing::warn!(pool = %self.name, to, "resize timed out but the pool shows it taken; not re-sent");
            return Ok(ResizeStarted::Unconfirmed);
        };
        let name = self.full_operation_name(&op.name);
        tracing::info!(pool = %self.name, to, operation = %name, "resize requested");
        match op.status {
            OpStatus::Done => match op.error.filter(|e| e.code != 0) {
                Some(e) => Err(AdapterError::new(BACKEND, ErrorKind::Other, e.message)),
                None => Ok(ResizeStarted::Done),
            },
            _ => Ok(ResizeStarted::Operation(name)),
        }
    }

    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        if name.starts_with(crate::gcp::drain::PREFIX) {
            return self.drain_step(name).await;
        }
        let name = stored_operation(&self.name, &self.project, &self.location, name)?;
        let op = retry(BACKEND, &self.retry, || async {
            self.client
                .get_operation()
                .set_name(name.clone())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "container.operations.get", &e))
        })
        .await?;
        Ok(match op.status {
            OpStatus::Done => match op.error.filter(|e| e.code != 0) {
                Some(e) => OperationStatus::Failed(format!("{} (code {})", e.message, e.code)),
                None => OperationStatus::Done,
            },
            _ => OperationStatus::Running,
        })
    }
}

impl GkeNodePool {
    /// One step of the drain `name` carries (see [`crate::gcp::drain`]).
    async fn drain_step(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        let vanished = |why: String| Err(AdapterError::new(BACKEND, ErrorKind::NotFound, why));
        let Some(plan) = Plan::decode(name) else {
            let shown: String = name.chars().take(120).collect();
            return vanished(format!("the stored drain {shown:?} is not a plan this code wrote; not followed"));
        };
        let Some(drain) = &self.drain else {
            return Ok(OperationStatus::Failed(format!(
                "a drain of {} node(s) was in progress but this controller has no Kubernetes API to follow it; its nodes stay cordoned until a controller that has one releases them, or `kubectl uncordon` and `kubectl taint nodes NODE {}-`",
                plan.nodes.len(),
                crate::gcp::drain::TAINT_KEY
            )));
        };
        if !self.scale_in_by_drain {
            let released = drain.roll_back(&plan).await?;
            return Ok(OperationStatus::Failed(format!(
                "the policy no longer drains (scaleIn or adjustClusterAutoscaler changed): the drain of {} node(s) was rolled back, {released} released",
                plan.nodes.len()
            )));
        }
        let pool = self.get().await?;
        let mut groups = crate::gcp::drain::Groups::new();
        for url in &pool.instance_group_urls {
            let (zone, group) = zonal_group(url, &self.project)
                .map_err(|why| AdapterError::new(BACKEND, ErrorKind::Malformed, format!("{}: {why}", self.name)))?;
            groups.entry(zone).or_default().push(group);
        }
        drain.advance(&plan, &groups).await
    }

    async fn set_autoscaling(
        &self,
        limits: NodePoolAutoscaling,
    ) -> Result<google_cloud_container_v1::model::Operation, google_cloud_gax::error::Error> {
        self.client.set_node_pool_autoscaling().set_name(self.name.clone()).set_autoscaling(limits).send().await
    }
}

/// Whether a policy on `target` scales in by draining (the default, unless the cluster autoscaler
/// is adjusted instead: it drains its own nodes).
fn drains(target: &GkeNodePoolRef) -> bool {
    target.scale_in == ScaleIn::Drain && !target.adjust_cluster_autoscaler && !target.steer_autoscaler
}

/// The drain settings `target` gives (checked by [`TargetKind::check`]; defaults otherwise).
fn drain_settings(target: &GkeNodePoolRef) -> DrainSettings {
    let d = DrainSettings::default();
    let parse = |t: &Option<String>, default: Dur| t.as_deref().and_then(|t| Dur::parse(t).ok()).unwrap_or(default);
    DrainSettings {
        timeout: parse(&target.drain_timeout, d.timeout),
        max_grace: parse(&target.max_pod_grace_period, d.max_grace),
        evict_local_storage: target.evict_local_storage,
    }
}

/// `sizing` returns an autoscaler variant only when `autoscaling` is present.
fn unreachable_sizing() -> Result<google_cloud_container_v1::model::Operation, google_cloud_gax::error::Error> {
    Err(google_cloud_gax::error::Error::binding("node pool autoscaling vanished between reads"))
}

impl TargetKind for GkeNodePoolRef {
    fn field(&self) -> &'static str {
        "gkeNodePool"
    }
    fn describe(&self) -> String {
        format!("gke {}/{}/{}/{}", self.project, self.location, self.cluster, self.node_pool)
    }
    fn leaf(&self) -> &str {
        &self.node_pool
    }
    fn project(&self) -> Option<&str> {
        Some(&self.project)
    }
    fn default_warmup(&self) -> Dur {
        Dur::mins(3)
    }
    /// `SetNodePoolSize` runs as an operation until the new VMs exist (minutes); meanwhile the
    /// pool is RECONCILING, keeps its old count, and refuses another ("incompatible operation").
    /// A scale-in by drain takes about as long: an evaluation to cordon, the evicted pods' grace
    /// (at most `maxPodGracePeriod`, 2 minutes by default), an evaluation to delete the VM. A
    /// replay keeps the removed nodes serving, and billed, until it ends.
    fn behaviour(&self) -> crate::kinds::Behaviour {
        crate::kinds::Behaviour {
            operation_time: Dur::mins(3),
            new_size_while_busy: false,
            storage_target: None,
            sizes: SizeRule::Any,
        }
    }
    fn check(&self) -> Vec<KindIssue> {
        let mut issues = required(&[
            ("project", &self.project),
            ("location", &self.location),
            ("cluster", &self.cluster),
            ("nodePool", &self.node_pool),
        ]);
        for (field, text, least) in [
            ("drainTimeout", &self.drain_timeout, Dur::secs(10)),
            // 0 deletes the pod object at once while its containers may still run (a StatefulSet
            // could start a second copy): at least a second.
            ("maxPodGracePeriod", &self.max_pod_grace_period, Dur::secs(1)),
        ] {
            let Some(text) = text else { continue };
            match Dur::parse(text) {
                Ok(d) if d < least => issues.push((field, format!("{text:?} is shorter than {least}"))),
                Ok(d) if d > Dur::mins(60) => issues
                    .push((field, format!("{text:?} is longer than 60m: a drain is followed for at most an hour"))),
                Ok(_) => {}
                Err(e) => issues.push((field, format!("{e} (write a duration like \"10m\")"))),
            }
        }
        issues
    }
    fn needs_kube(&self) -> bool {
        drains(self)
    }
    fn connect(&self, clients: &Arc<Clients>, _namespace: &str) -> Result<BoxTarget, AdapterError> {
        let (clients, target) = (clients.clone(), self.clone());
        Ok(BoxTarget::lazy(move || {
            let (clients, target) = (clients.clone(), target.clone());
            async move {
                let gcp = clients.setting::<GcpConfig>()?;
                let client = clients.get(|| gke_client(gcp)).await?;
                let groups = clients.get(|| compute_groups_client(gcp)).await?;
                let pool = GkeNodePool::new(client, groups, gcp, &target);
                let clock = clients.setting::<Clock>().cloned().unwrap_or_else(|_| crate::clock::wall_clock());
                if let Some(kube) = clients.kube.clone() {
                    return Ok(pool.with_drain(kube, &target, clock));
                }
                if !drains(&target) {
                    return Ok(pool);
                }
                Err(AdapterError::new(
                    BACKEND,
                    ErrorKind::Refused,
                    "gkeNodePool.scaleIn: drain needs the Kubernetes API of the pool's cluster, and none was found (no kubeconfig or in-cluster config); run the controller with one, or set scaleIn: resize to let the instance groups remove nodes of their choosing",
                ))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_become_per_zone_counts_and_partial_zones_are_refused() {
        assert_eq!(per_zone(6, 3), Ok(2));
        assert_eq!(per_zone(5, 1), Ok(5));
        assert_eq!(per_zone(5, 0), Ok(5));
        assert_eq!(per_zone(7, 3).unwrap_err().kind, ErrorKind::Refused);
        assert_eq!(per_zone(1, 3).unwrap_err().kind, ErrorKind::Refused);
        assert_eq!(Sizing::Fixed { zones: 3 }.rule(), SizeRule::Multiple(3));
        assert_eq!(Sizing::AutoscalerTotal.rule(), SizeRule::Any);
    }

    /// A stored operation name is requested only as an id of the pool's own project and location.
    #[test]
    fn only_zonal_groups_of_the_pools_project_are_requested() {
        let url = "https://www.googleapis.com/compute/v1/projects/p1/zones/europe-west1-b/instanceGroupManagers/gke-c-np-1a2b-grp";
        assert_eq!(zonal_group(url, "p1"), Ok(("europe-west1-b".into(), "gke-c-np-1a2b-grp".into())));
        assert!(zonal_group(url, "p2").is_err(), "another project's group");
        let regional = "https://www.googleapis.com/compute/v1/projects/p1/regions/europe-west1/instanceGroupManagers/g";
        assert!(zonal_group(regional, "p1").is_err_and(|e| e.contains("regional")));
        let sneaky = "https://www.googleapis.com/compute/v1/projects/p1/zones/z/instanceGroupManagers/g%2F..%2Fx";
        assert!(zonal_group(sneaky, "p1").is_err(), "a name that is not plain is not put in a path");
    }

    #[test]
    fn only_operations_of_the_pools_project_and_location_are_requested() {
        let own = |stored: &str| stored_operation(POOL, "p1", "us-central1", stored);
        let full = "projects/p1/locations/us-central1/operations/operation-17-ab_c";
        assert_eq!(own("operation-17-ab_c").as_deref(), Ok(full));
        assert_eq!(own(full).as_deref(), Ok(full));
        for foreign in [
            "projects/p2/locations/us-central1/operations/operation-1",
            "projects/p1/locations/europe-west1/operations/operation-1",
            "projects/p1/locations/us-central1/operations/",
            "projects/p1/locations/us-central1/operations/operation-1/../../clusters/gke1",
            "operation-1?alt=media",
            "../operation-1",
            "",
        ] {
            let e = own(foreign).expect_err(foreign);
            assert_eq!(e.kind, ErrorKind::NotFound, "{foreign}: settled as a vanished operation");
            assert!(e.message.contains("is not an operation of"), "{e}");
        }
    }

    const POOL: &str = "projects/p1/locations/us-central1/clusters/gke1/nodePools/pool-1";
}
