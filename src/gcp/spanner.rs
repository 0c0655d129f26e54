//! A Cloud Spanner instance as a [`ScaleTarget`]: its compute capacity, in processing units.
//!
//! - observe: `GetInstance` (`processing_units`, or `node_count` × 1000 from a service that
//!   fills only that); a state other than READY (CREATING) is busy. The size rule is Spanner's
//!   ladder ([`SizeRule::SPANNER_PROCESSING_UNITS`]: 100, 200, ..., 900, then whole thousands),
//!   so the core never asks for a size the API would refuse.
//! - resize: `UpdateInstance` with the field mask `processing_units`, so nothing else changes;
//!   returns the long-running operation's name at once, without waiting.
//! - operation: `GetOperation` on that name (`done`, `error`).
//!
//! Spanner's managed autoscaler must be off: while `autoscaling_config` is set the API treats
//! `processing_units` as output only, so observe refuses such an instance rather than pretend,
//! unless the policy steers it.
//!
//! ## Steering the managed autoscaler
//!
//! With `steerAutoscaler: true` and the managed autoscaler on, the size the policy controls is
//! the autoscaler's minimum: observe reports it (in processing units, whichever unit the limits
//! are in) as the size, the live processing units as the capacity serving, and sizes in whole
//! thousands (the limits must be multiples of 1000); resize writes the minimum with
//! `UpdateInstance` on the mask `autoscaling_config.autoscaling_limits.min_processing_units`
//! (or `min_nodes`, in the unit the limits use) and the maximum with it: the policy's largest
//! size now (`ScaleTarget::resize_within`; a plain resize only raises it to the minimum).
//! Spanner keeps the maximum at most 10 times the minimum: a minimum that would break that is
//! refused with the fix. The autoscaler's storage target protects the data, so no storage floor
//! is read in this mode.
//!
//! ## While an update runs
//!
//! Spanner's documentation of `UpdateInstance`: until the operation completes, "all other
//! attempts to modify the instance are rejected" and "reading the instance via the API continues
//! to give the pre-request resource levels"; the new capacity serves, and reads back, only when
//! it is done. The instance stays READY throughout, so neither its state nor its size says that
//! a write is running: its operations do. Before any resize, and before retrying one whose answer
//! was lost, the instance's operations (`projects/P/instances/I/operations`) are listed for an
//! update that is not done:
//!
//! - one to the processing units asked for is followed ([`ResizeStarted::Operation`]), not sent
//!   again;
//! - one to another size holds the instance: [`ErrorKind::Busy`], nothing sent.
//!
//! ## Storage floor
//!
//! Spanner limits the data an instance holds by its compute capacity: 1,024 GiB per 100
//! processing units below one node and 10 TiB per node (1,000 units) above, which is the same
//! 10.24 GiB per unit throughout, so the floor is linear in processing units as Bigtable's is in
//! nodes. observe names the `spanner.googleapis.com/instance/storage/utilization` query (used
//! bytes over that limit, 0..1) and the `storageTarget`; the core reads a sample against the
//! capacity of its own time (`core::floor`). Writes fail at the limit, so an unreadable storage
//! metric blocks scale-in, as it does for Bigtable.

use std::sync::Arc;

use google_cloud_longrunning::model::Operation;
use google_cloud_spanner_admin_instance_v1::client::InstanceAdmin;
use google_cloud_spanner_admin_instance_v1::model::autoscaling_config::AutoscalingLimits;
use google_cloud_spanner_admin_instance_v1::model::instance::State;
use google_cloud_spanner_admin_instance_v1::model::{AutoscalingConfig, Instance, UpdateInstanceMetadata};
use google_cloud_wkt::FieldMask;

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, MonitoringQuery, OperationStatus, ResizeStarted, ScaleTarget,
    TargetObservation,
};
use crate::api::SpannerInstanceRef;
use crate::core::{Dur, SizeRule};
use crate::gcp::bigtable::{foreign_operation_named, plain_segments};
use crate::gcp::{GcpConfig, RetryConfig, map_error, retry, retry_write, spanner_client, started, status_of};
use crate::kinds::{BoxTarget, Clients, KindIssue, TargetKind, required, storage_target_issue};

const BACKEND: &str = "spanner";

/// The storage utilization a Spanner instance's data is kept at or under by default: the storage
/// threshold cloudspannerecosystem/autoscaler uses (75 %). Writes fail at 100 %.
pub const DEFAULT_SPANNER_STORAGE_TARGET: f64 = 0.75;

/// Google's recommended maximum high-priority CPU for a regional instance, and for a dual- or
/// multi-region one (per region): what a high-priority CPU metric left without a target is held
/// at, by the instance's configuration.
pub const HIGH_PRIORITY_CPU_REGIONAL: f64 = 0.65;
/// See [`HIGH_PRIORITY_CPU_REGIONAL`].
pub const HIGH_PRIORITY_CPU_MULTI_REGION: f64 = 0.45;

/// The recommended maximum high-priority CPU for an instance in `config`
/// (`projects/P/instanceConfigs/C`): regional for `regional-*` configurations (as
/// cloudspannerecosystem/autoscaler tells them apart), multi-region for every other, a custom
/// one included (the lower level is the safe one when the base is not known).
pub fn recommended_high_priority_cpu(config: &str) -> f64 {
    let id = config.rsplit('/').next().unwrap_or(config);
    if id.starts_with("regional-") { HIGH_PRIORITY_CPU_REGIONAL } else { HIGH_PRIORITY_CPU_MULTI_REGION }
}

/// Whether `metric` reads an instance's high-priority CPU (`instance/cpu/utilization_by_priority`
/// with `metric.labels.priority="high"`), sizing per node.
fn is_high_priority_cpu(metric: &crate::api::MetricSpec) -> bool {
    let Some(q) = metric.source.query.as_ref() else { return false };
    let compact: String = q.filter.chars().filter(|c| !c.is_whitespace()).collect();
    crate::core::units::metric_types(&q.filter).contains(&"spanner.googleapis.com/instance/cpu/utilization_by_priority")
        && (compact.contains("metric.labels.priority=\"high\"") || compact.contains("metric.label.priority=\"high\""))
        && metric.kind == crate::api::MetricKind::PerNode
        && metric.role != crate::api::MetricRole::Guard
}

/// Processing units in one Spanner node.
pub const UNITS_PER_NODE: u32 = 1000;

/// Pages of the instance's operations read when looking for a running update, and their size.
const MAX_OPERATION_PAGES: usize = 10;
const OPERATIONS_PAGE_SIZE: i32 = 100;
/// Longest operation name taken from stored state.
const MAX_OPERATION_NAME: usize = 512;

/// One Spanner instance.
pub struct SpannerInstance {
    client: InstanceAdmin,
    retry: RetryConfig,
    name: String,
    storage_query: MonitoringQuery,
    storage_target: f64,
    steer: bool,
}

/// Whether `op` is an operation of the instance `instance` (`projects/P/instances/I`): named
/// `projects/P/instances/I/operations/ID`, ID one plain path segment. An operation name read back
/// from stored state goes into a request's path, so any other is never requested.
pub(crate) fn operation_of(op: &str, instance: &str) -> bool {
    op.len() <= MAX_OPERATION_NAME
        && op
            .strip_prefix(instance)
            .and_then(|r| r.strip_prefix("/operations/"))
            .is_some_and(|id| !id.contains('/') && plain_segments(id))
}

/// The processing units an instance message asks for: `processing_units`, or `node_count` in
/// thousands when only that is set.
fn units_of(instance: &Instance) -> i64 {
    if instance.processing_units > 0 {
        i64::from(instance.processing_units)
    } else {
        i64::from(instance.node_count) * i64::from(UNITS_PER_NODE)
    }
}

/// The managed autoscaler's limits, in processing units, and whether they are written in nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    min: i64,
    max: i64,
    in_nodes: bool,
}

/// The managed autoscaler's limits, if it is on (limits it does not show read 0).
fn limits_of(instance: &Instance) -> Option<Limits> {
    let config = instance.autoscaling_config.as_ref()?;
    let node = i64::from(UNITS_PER_NODE);
    let Some(l) = config.autoscaling_limits.as_ref() else { return Some(Limits { min: 0, max: 0, in_nodes: false }) };
    let in_nodes = l.min_nodes().is_some();
    let min = l.min_processing_units().map(|u| i64::from(*u)).or(l.min_nodes().map(|n| i64::from(*n) * node));
    let max = l.max_processing_units().map(|u| i64::from(*u)).or(l.max_nodes().map(|n| i64::from(*n) * node));
    Some(Limits { min: min.unwrap_or(0), max: max.unwrap_or(0), in_nodes })
}

/// The autoscaler minimum (in processing units) an update operation asks for, if it sets one.
fn minimum_asked(op: &Operation) -> Option<i64> {
    let metadata = op.metadata.as_ref()?.to_msg::<UpdateInstanceMetadata>().ok()?;
    let limits = limits_of(metadata.instance.as_ref()?)?;
    (limits.min > 0).then_some(limits.min)
}

/// The processing units an operation asks of the instance `instance`, if it is an update of it.
fn update_of(op: &Operation, instance: &str) -> Option<i64> {
    if !operation_of(&op.name, instance) {
        return None;
    }
    let metadata = op.metadata.as_ref()?.to_msg::<UpdateInstanceMetadata>().ok()?;
    metadata.instance.as_ref().map(units_of).filter(|u| *u > 0)
}

impl SpannerInstance {
    /// Connect to the instance `target` names, building the client as `cfg` says.
    pub async fn connect(cfg: &GcpConfig, target: &SpannerInstanceRef) -> Result<SpannerInstance, AdapterError> {
        Ok(SpannerInstance::new(spanner_client(cfg).await?, cfg, target))
    }

    /// Use an existing client.
    pub fn new(client: InstanceAdmin, cfg: &GcpConfig, target: &SpannerInstanceRef) -> SpannerInstance {
        SpannerInstance {
            client,
            retry: cfg.retry,
            name: format!("projects/{}/instances/{}", target.project, target.instance),
            storage_query: storage_utilization_query(target),
            storage_target: target.storage_target.unwrap_or(DEFAULT_SPANNER_STORAGE_TARGET),
            steer: target.steer_autoscaler,
        }
    }

    /// Full resource name, `projects/P/instances/I`.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn get_instance(&self) -> Result<Instance, AdapterError> {
        retry(BACKEND, &self.retry, || async {
            self.client
                .get_instance()
                .set_name(self.name.clone())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "spanner.instances.get", &e))
        })
        .await
    }

    /// The update of this instance that is not done, if any, and the units it asks for.
    async fn running_update(&self) -> Result<Option<(Operation, i64)>, AdapterError> {
        self.first_running(|op| update_of(op, &self.name)).await
    }

    /// The first operation of this instance that is not done and that `pick` picks, with what
    /// it picked, from the instance's operations page by page (at most
    /// [`MAX_OPERATION_PAGES`]).
    async fn first_running<T>(
        &self,
        pick: impl Fn(&Operation) -> Option<T>,
    ) -> Result<Option<(Operation, T)>, AdapterError> {
        let parent = format!("{}/operations", self.name);
        let mut token = String::new();
        for _ in 0..MAX_OPERATION_PAGES {
            let page = retry(BACKEND, &self.retry, || async {
                self.client
                    .list_operations()
                    .set_name(parent.clone())
                    .set_page_size(OPERATIONS_PAGE_SIZE)
                    .set_page_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| map_error(BACKEND, "spanner.instanceOperations.list", &e))
            })
            .await?;
            let found = page.operations.into_iter().filter(|op| !op.done).find_map(|op| {
                let picked = pick(&op)?;
                Some((op, picked))
            });
            if found.is_some() || page.next_page_token.is_empty() {
                return Ok(found);
            }
            token = page.next_page_token;
        }
        tracing::warn!(instance = %self.name, pages = MAX_OPERATION_PAGES, "no running operation among the first pages of the instance's operations: taken as none");
        Ok(None)
    }

    /// Ask for `units` processing units, unless an update is running (see the module docs).
    /// `None`: the answer was lost and the instance's operations show nothing to follow.
    async fn send_units(&self, units: i32) -> Result<Option<Operation>, AdapterError> {
        match self.running_update().await {
            Ok(Some((op, u))) if u == i64::from(units) => {
                tracing::info!(instance = %self.name, units, operation = %op.name, "an update to this size is running already: following it, not sending another");
                return Ok(Some(op));
            }
            Ok(Some((op, u))) => {
                let why = format!(
                    "{} is being updated to {u} processing units by operation {}; resize later",
                    self.name, op.name
                );
                return Err(AdapterError::new(BACKEND, ErrorKind::Busy, why));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(instance = %self.name, error = %e, "listing the instance's operations failed: resizing without that check");
            }
        }
        let sent = retry_write(
            BACKEND,
            &self.retry,
            || async {
                self.client
                    .update_instance()
                    .set_instance(Instance::new().set_name(self.name.clone()).set_processing_units(units))
                    .set_field_mask(FieldMask::default().set_paths(["processing_units"]))
                    .send()
                    .await
                    .map_err(|e| map_error(BACKEND, "spanner.instances.update", &e))
            },
            // The instance reads its old units until the update is done, so only its operations
            // say whether a lost write was taken.
            || async {
                let i = self.get_instance().await?;
                if units_of(&i) == i64::from(units) {
                    return Ok(true);
                }
                Ok(self.running_update().await?.is_some_and(|(_, u)| u == i64::from(units)))
            },
        )
        .await?;
        if sent.is_some() {
            return Ok(sent);
        }
        Ok(match self.running_update().await {
            Ok(Some((op, u))) if u == i64::from(units) => Some(op),
            _ => None,
        })
    }
}

impl SpannerInstance {
    /// Set the managed autoscaler's minimum to `to` processing units and its maximum to the
    /// policy's `policy_max` (whole thousands under it; see the module docs), its limits being
    /// `now`. Without the policy's maximum (a plain resize) the maximum is only raised, to `to`,
    /// when lower.
    async fn steer_to(&self, to: i64, now: Limits, policy_max: Option<i64>) -> Result<ResizeStarted, AdapterError> {
        let node = i64::from(UNITS_PER_NODE);
        let max = policy_max.map_or(now.max, |m| m / node * node).max(to);
        if to.saturating_mul(10) < max {
            let lowest = (max + 10 * node - 1) / (10 * node) * node;
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "{to} processing units as the autoscaler's minimum: Spanner keeps the maximum at most 10 x the minimum, and {}'s maximum is {max}, so its minimum cannot go below {lowest}; raise the policy's minSize to at least that, or lower its maxSize",
                    self.name
                ),
            ));
        }
        let too_many = || AdapterError::new(BACKEND, ErrorKind::Refused, format!("{to} processing units is too many"));
        let (unit, scale) = if now.in_nodes { ("nodes", node) } else { ("processing_units", 1) };
        let as_i32 = |v: i64| i32::try_from(v / scale).map_err(|_| too_many());
        let (lo, hi) = (as_i32(to)?, as_i32(max)?);
        let limits = if now.in_nodes {
            AutoscalingLimits::new().set_min_nodes(lo).set_max_nodes(hi)
        } else {
            AutoscalingLimits::new().set_min_processing_units(lo).set_max_processing_units(hi)
        };
        let mut paths = vec![format!("autoscaling_config.autoscaling_limits.min_{unit}")];
        if max != now.max {
            paths.push(format!("autoscaling_config.autoscaling_limits.max_{unit}"));
        }
        let instance = Instance::new()
            .set_name(self.name.clone())
            .set_autoscaling_config(AutoscalingConfig::new().set_autoscaling_limits(limits));
        let sent = retry_write(
            BACKEND,
            &self.retry,
            || async {
                self.client
                    .update_instance()
                    .set_instance(instance.clone())
                    .set_field_mask(FieldMask::default().set_paths(paths.clone()))
                    .send()
                    .await
                    .map_err(|e| map_error(BACKEND, "spanner.instances.update", &e))
            },
            // Limits read back once the update is done; while it runs, its operation asks for
            // this minimum.
            || async {
                let i = self.get_instance().await?;
                if limits_of(&i).is_some_and(|l| l.min == to) {
                    return Ok(true);
                }
                Ok(self.running_operation().await?.is_some_and(|op| minimum_asked(&op) == Some(to)))
            },
        )
        .await?;
        let Some(op) = sent else {
            tracing::warn!(instance = %self.name, to, "autoscaler minimum update timed out but the instance shows it taken; not re-sent");
            return Ok(ResizeStarted::Unconfirmed);
        };
        tracing::info!(instance = %self.name, min = to, max, from = now.min, operation = %op.name, "autoscaler minimum requested");
        started(BACKEND, op)
    }

    /// The operation of this instance that is not done, if any (an update of any kind holds
    /// it).
    async fn running_operation(&self) -> Result<Option<Operation>, AdapterError> {
        Ok(self.first_running(|op| operation_of(&op.name, &self.name).then_some(())).await?.map(|(op, ())| op))
    }
}

/// The Monitoring query for an instance's storage utilization (used bytes over the limit its
/// compute capacity allows): the largest of its series.
pub fn storage_utilization_query(target: &SpannerInstanceRef) -> MonitoringQuery {
    MonitoringQuery {
        project: target.project.clone(),
        filter: format!(
            "metric.type=\"spanner.googleapis.com/instance/storage/utilization\" AND resource.type=\"spanner_instance\" AND resource.labels.instance_id=\"{}\"",
            target.instance
        ),
        alignment_period: Dur::secs(60),
        per_series_aligner: "ALIGN_MAX".into(),
        cross_series_reducer: Some("REDUCE_MAX".into()),
        group_by_fields: Vec::new(),
    }
}

impl ScaleTarget for SpannerInstance {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        let instance = self.get_instance().await?;
        if let (Some(limits), true) = (limits_of(&instance), self.steer) {
            let count = |n: i64, what: &str| {
                u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    AdapterError::new(BACKEND, ErrorKind::Malformed, format!("{} reports {what} {n}", self.name))
                })
            };
            return Ok(TargetObservation {
                size: count(limits.min, "an autoscaling minimum of")?,
                busy: instance.state != State::Ready,
                sizes: SizeRule::Multiple(UNITS_PER_NODE),
                floor: FloorMetric::None,
                members: Vec::new(),
                serving: Some(count(units_of(&instance), "processing units")?),
                steered_max: u32::try_from(limits.max).ok(),
            });
        }
        if instance.autoscaling_config.is_some() {
            let id = self.name.rsplit('/').next().unwrap_or_default();
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "{} has Spanner's managed autoscaler enabled, which makes processing_units output-only (updates are refused); \
                     turn it off by setting a size (gcloud spanner instances update {id} --processing-units=N), set steerAutoscaler: true \
                     to let the policy set the autoscaler's minimum, or remove this ScalePolicy",
                    self.name
                ),
            ));
        }
        let units = units_of(&instance);
        let size = u32::try_from(units).ok().filter(|u| *u > 0 || instance.state != State::Ready).ok_or_else(|| {
            AdapterError::new(
                BACKEND,
                ErrorKind::Malformed,
                format!(
                    "{} reports {} processing units and {} nodes",
                    self.name, instance.processing_units, instance.node_count
                ),
            )
        })?;
        let busy = instance.state != State::Ready;
        let floor =
            FloorMetric::Storage { query: self.storage_query.clone().into(), storage_target: self.storage_target };
        Ok(TargetObservation {
            size,
            busy,
            sizes: SizeRule::SPANNER_PROCESSING_UNITS,
            floor,
            members: Vec::new(),
            serving: None,
            steered_max: None,
        })
    }

    /// Only sizes on the ladder are sent; any other is refused, not rounded (the core asks for
    /// ladder sizes only, from the observation).
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.resize_to(to, None).await
    }

    /// Steering the managed autoscaler, its maximum becomes the policy's `max` too.
    async fn resize_within(&self, to: u32, max: u32) -> Result<ResizeStarted, AdapterError> {
        self.resize_to(to, Some(max)).await
    }

    /// The instance's configuration decides: 0.65 regional, 0.45 multi-region.
    async fn recommended_target(&self) -> Result<Option<f64>, AdapterError> {
        Ok(Some(recommended_high_priority_cpu(&self.get_instance().await?.config)))
    }

    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        self.operation_status(name).await
    }
}

impl SpannerInstance {
    /// [`ScaleTarget::resize_within`], `max` unknown (`None`) for a plain resize.
    async fn resize_to(&self, to: u32, max: Option<u32>) -> Result<ResizeStarted, AdapterError> {
        if self.steer
            && let Some(limits) = limits_of(&self.get_instance().await?)
        {
            if !SizeRule::Multiple(UNITS_PER_NODE).allows(to) {
                return Err(AdapterError::new(
                    BACKEND,
                    ErrorKind::Refused,
                    format!("{to} processing units: the autoscaler's limits on {} are whole thousands", self.name),
                ));
            }
            return self.steer_to(i64::from(to), limits, max.map(i64::from)).await;
        }
        let rule = SizeRule::SPANNER_PROCESSING_UNITS;
        if !rule.allows(to) {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!("{to} processing units: {} takes {} only", self.name, rule.describe()),
            ));
        }
        let units = i32::try_from(to).map_err(|_| {
            AdapterError::new(BACKEND, ErrorKind::Refused, format!("{to} processing units is too many"))
        })?;
        let Some(op) = self.send_units(units).await? else {
            tracing::warn!(instance = %self.name, to, "update timed out but the instance shows it taken; not re-sent");
            return Ok(ResizeStarted::Unconfirmed);
        };
        tracing::info!(instance = %self.name, to, operation = %op.name, "update requested");
        started(BACKEND, op)
    }

    async fn operation_status(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        if !operation_of(name, &self.name) {
            let form = format!("{}/operations/ID", self.name);
            return Err(foreign_operation_named(BACKEND, name, &self.name, &form));
        }
        let op = retry(BACKEND, &self.retry, || async {
            self.client
                .get_operation()
                .set_name(name.to_string())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "spanner.instanceOperations.get", &e))
        })
        .await?;
        Ok(status_of(&op))
    }
}

impl TargetKind for SpannerInstanceRef {
    fn field(&self) -> &'static str {
        "spannerInstance"
    }
    fn describe(&self) -> String {
        format!("spanner {}/{}", self.project, self.instance)
    }
    fn leaf(&self) -> &str {
        &self.instance
    }
    fn project(&self) -> Option<&str> {
        Some(&self.project)
    }
    /// Added capacity serves once the update is done, but Spanner then moves splits onto it
    /// ("rebalancing"), which takes minutes to tens of minutes after a large change: the same
    /// 20 minutes as a Bigtable node's.
    fn default_warmup(&self) -> Dur {
        Dur::mins(20)
    }
    /// An `UpdateInstance` is a long-running operation of minutes, during which the instance
    /// reads its old size and refuses another update; its data sets the storage floor; its sizes
    /// are the processing-unit ladder.
    fn behaviour(&self) -> crate::kinds::Behaviour {
        crate::kinds::Behaviour {
            operation_time: Dur::mins(5),
            new_size_while_busy: false,
            storage_target: Some(self.storage_target.unwrap_or(DEFAULT_SPANNER_STORAGE_TARGET)),
            sizes: SizeRule::SPANNER_PROCESSING_UNITS,
        }
    }
    /// Whole thousands of processing units, as the autoscaling limits must be.
    fn steered_sizes(&self) -> Option<SizeRule> {
        self.steer_autoscaler.then_some(SizeRule::Multiple(UNITS_PER_NODE))
    }
    fn size_unit(&self) -> &'static str {
        "processing units"
    }
    /// An hour: Spanner bills the largest compute capacity of each hour, so capacity removed
    /// sooner after a change saves nothing it would not save an hour later, and after a change
    /// Spanner moves data onto the new capacity (rebalancing) for a while.
    fn default_scale_in_cooldown(&self) -> &'static str {
        "60m"
    }
    /// High-priority CPU: the regional recommendation from the spec alone; the controller
    /// reads the instance's configuration ([`recommended_high_priority_cpu`]).
    fn recommended_target(&self, metric: &crate::api::MetricSpec) -> Option<f64> {
        is_high_priority_cpu(metric).then_some(HIGH_PRIORITY_CPU_REGIONAL)
    }
    fn check(&self) -> Vec<KindIssue> {
        let mut issues = required(&[("project", &self.project), ("instance", &self.instance)]);
        issues.extend(storage_target_issue(self.storage_target));
        issues
    }
    fn connect(&self, clients: &Arc<Clients>, _namespace: &str) -> Result<BoxTarget, AdapterError> {
        let (clients, target) = (clients.clone(), self.clone());
        Ok(BoxTarget::lazy(move || {
            let (clients, target) = (clients.clone(), target.clone());
            async move {
                let gcp = clients.setting::<GcpConfig>()?;
                let client = clients.get(|| spanner_client(gcp)).await?;
                Ok(SpannerInstance::new(client, gcp, &target))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_instances_own_operations_are_requested() {
        let instance = "projects/p1/instances/i1";
        assert!(operation_of("projects/p1/instances/i1/operations/_auto_op_1234", instance));
        assert!(operation_of(
            "projects/example.com:p1/instances/i1/operations/7",
            "projects/example.com:p1/instances/i1"
        ));
        for foreign in [
            "projects/p1/instances/i2/operations/1",
            "projects/p1/instances/i10/operations/1",
            "projects/p1/instances/i1/databases/d/operations/1",
            "projects/p1/instances/i1/operations/../i2",
            "projects/p1/instances/i1/operations/1/x",
            "projects/p1/instances/i1/operations/1?alt=media",
            "projects/p1/instances/i1/operations/",
            "projects/p1/instances/i1/operations/..",
            "operations/projects/p1/instances/i1/operations/1",
            "",
        ] {
            assert!(!operation_of(foreign, instance), "{foreign}");
        }
        let long = format!("{instance}/operations/{}", "9".repeat(MAX_OPERATION_NAME));
        assert!(!operation_of(&long, instance));
    }

    #[test]
    fn units_come_from_processing_units_or_nodes() {
        assert_eq!(units_of(&Instance::new().set_processing_units(300)), 300);
        assert_eq!(units_of(&Instance::new().set_node_count(3)), 3000);
        assert_eq!(units_of(&Instance::new().set_node_count(2).set_processing_units(2000)), 2000);
        assert_eq!(units_of(&Instance::new()), 0);
    }
}
