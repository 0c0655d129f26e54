//! The `ScalePolicy` custom resource (`ebbflow.dev/v1alpha1`): what users write with kubectl, and
//! the status the controller writes back.
//!
//! These are wire types only. [`crate::spec::policy_from_spec`] turns a spec into the validated
//! domain value the decision core works with, so every rule about what a valid spec is lives in one
//! place and is shared by the controller, the simulator and `ebbflow validate`.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use crate::adapters::kubernetes::{FieldQuery, KubernetesQuery, PodPhase, PodsQuery, ReplicaCount, ReplicasQuery};
pub use crate::adapters::monitoring::MonitoringSpec;
pub use crate::adapters::sources::MetricSourceSpec;
use crate::core::state::PolicyState;
use crate::kinds::TargetKind;

/// A Go-style duration string as Kubernetes CEL's `duration()` accepts it: `"90s"`, `"5m"`, `"1h30m"`.
pub const DURATION_PATTERN: &str = crate::core::Dur::PATTERN;
/// A Kubernetes label value of the strict kind (RFC 1123 label, lowercase): override names.
pub const LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Desired autoscaling behaviour for one target.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ebbflow.dev",
    version = "v1alpha1",
    kind = "ScalePolicy",
    plural = "scalepolicies",
    shortname = "sp",
    namespaced,
    status = "ScalePolicyStatus",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.target"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.currentSize"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredSize"}"#,
    printcolumn = r#"{"name":"Live","type":"integer","jsonPath":".status.liveSize","priority":1,"description":"The steered built-in autoscaler's own size (Current and Desired are then its minimum)"}"#,
    printcolumn = r#"{"name":"Last Action","type":"string","jsonPath":".status.lastDecision.reason"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.activeSummary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.minSize <= self.maxSize").message("minSize must not be greater than maxSize").field_path(".minSize"))]
#[x_kube(validation = Rule::new("!has(self.schedules) || self.schedules.all(s, (!has(s.minSize) || s.minSize <= self.maxSize) && (!has(s.maxSize) || s.maxSize >= self.minSize))").message("a schedule's minSize must not be above maxSize, and its maxSize not below minSize").field_path(".schedules"))]
#[x_kube(validation = Rule::new("!has(self.overrides) || self.overrides.all(o, (!has(o.minSize) || o.minSize <= self.maxSize) && (!has(o.maxSize) || o.maxSize <= self.maxSize))").message("an override's minSize and maxSize must not be above maxSize").field_path(".overrides"))]
#[x_kube(validation = Rule::new("has(self.target.spannerInstance) || self.metrics.all(m, has(m.target))").message("every metric needs a target (on a spannerInstance policy only the high-priority CPU metric may leave it out, checked when the policy is evaluated)").field_path(".metrics"))]
#[serde(rename_all = "camelCase")]
pub struct ScalePolicySpec {
    /// What to scale: exactly one of bigtableCluster, bigtableInstance, gkeNodePool, spannerInstance or workload.
    /// Immutable once set:
    /// create a new ScalePolicy to scale something else.
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("target is immutable; create a new ScalePolicy to scale a different target"),
        validation = Rule::new(TargetRef::one_of_rule()).message(TargetRef::one_of_message().as_str())
    )]
    pub target: TargetRef,

    /// Smallest size (nodes or replicas) the policy will ever ask for. At least 1.
    #[schemars(range(min = 1))]
    pub min_size: u32,

    /// Largest size the policy will ever ask for.
    #[schemars(range(min = 1))]
    pub max_size: u32,

    /// Metrics that drive the size. With several, the desired size is the largest any one of them asks for.
    #[schemars(length(min = 1, max = 10))]
    pub metrics: Vec<MetricSpec>,

    /// How a real spike is told from noise, and what a spike does.
    #[serde(default)]
    pub spike: SpikeSpec,

    /// How fast the policy adds capacity. Defaults: no cooldown, no stabilization, steps of 100% or 4 nodes.
    #[serde(default)]
    pub scale_out: ScaleOutRules,

    /// How fast the policy removes capacity. Defaults: 10m cooldown, 15m stabilization, steps of 10% or 1 node.
    #[serde(default)]
    pub scale_in: ScaleInRules,

    /// Dead band under the target, as a fraction: no resize while the smoothed value is between
    /// target × (1 − tolerance) and the target. Outside it, the policy resizes to land in the
    /// middle of the band. Default 0.1.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 0.0, max = 0.9))]
    pub tolerance: f64,

    /// How often the policy is evaluated, e.g. "60s". Default "60s"; at least "10s".
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s')").message("interval must be at least 10s"))]
    pub interval: String,

    /// Enforce (resize the target), DryRun (decide and report, never touch the target) or Paused (do nothing).
    #[serde(default)]
    pub mode: Mode,

    /// What to do when a metric is missing, stale, NaN or partial.
    #[serde(default)]
    pub on_missing_data: MissingDataPolicy,

    /// Most resizes the policy may issue in any 24-hour span, counted from the first resize of the
    /// span (Bigtable allows 500 cluster writes per project per day). Default 100.
    #[serde(default = "default_max_resizes_per_day")]
    #[schemars(range(min = 1))]
    pub max_resizes_per_day: u32,
    /// Scale out ahead of rises the load's weekly shape predicts, learned from this policy's
    /// own history.
    #[serde(default)]
    pub forecast: ForecastSpec,
    /// Known events: windows (recurring by cron in a time zone, or once) that raise the minimum
    /// and/or lower the maximum while they are open. Overlapping windows: the highest minimum and
    /// the lowest maximum win.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub schedules: Vec<ScheduleSpec>,
    /// Temporary changes by people, each with an owner, a reason and an expiry: bounds and/or a
    /// pause. Ignored after they expire. Written by `ebbflow override` and `ebbflow pause`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub overrides: Vec<OverrideSpec>,
}

/// A window of known load: it recurs at each match of `cron` in `timeZone`, or happens once at
/// `start`, lasts `duration`, and sets `minSize` and/or `maxSize` while open. The raised minimum
/// applies `leadTime` early, so the new capacity serves when the window opens. Never a pinned
/// size: the metrics still scale between the bounds.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.cron) != has(self.start)").message("set exactly one of cron (recurring) or start (once)"))]
#[x_kube(validation = Rule::new("has(self.cron) == has(self.timeZone)").message("cron needs timeZone (an IANA name such as Europe/Berlin), and timeZone needs cron").field_path(".timeZone"))]
#[x_kube(validation = Rule::new("has(self.minSize) || has(self.maxSize)").message("set minSize and/or maxSize"))]
#[x_kube(validation = Rule::new("!has(self.minSize) || !has(self.maxSize) || self.minSize <= self.maxSize").message("minSize must not be greater than maxSize").field_path(".minSize"))]
pub struct ScheduleSpec {
    /// Name, unique within the policy, e.g. "friday-match".
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Five-field cron expression (minute hour day-of-month month day-of-week) in `timeZone`,
    /// e.g. "30 19 * * FRI". A local time skipped by a daylight-saving change starts the window
    /// just after the gap; a local time that happens twice starts it once, at the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone the cron fields are read in, e.g. "Asia/Tokyo".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// A one-off window's start (RFC 3339 with offset), e.g. "2026-12-24T18:00:00+09:00".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// How long each window lasts (elapsed time, also across a clock change), e.g. "3h".
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub duration: String,
    /// Minimum size while the window is open (from leadTime before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_size: Option<u32>,
    /// Maximum size while the window is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_size: Option<u32>,
    /// How long before the window the minimum is raised. Default: the scale-out warm-up plus 5
    /// minutes for the resize itself (Bigtable: 25m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub lead_time: Option<String>,
}

/// A temporary change with an owner, a reason and an expiry: bounds (`minSize`, `maxSize`,
/// within the spec's maxSize) and/or a `pause`. Ignored once `until` has passed.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.minSize) || has(self.maxSize) || has(self.pause)").message("set minSize, maxSize and/or pause"))]
#[x_kube(validation = Rule::new("!has(self.minSize) || !has(self.maxSize) || self.minSize <= self.maxSize").message("minSize must not be greater than maxSize").field_path(".minSize"))]
pub struct OverrideSpec {
    /// Name, unique within the policy, e.g. "campaign": lowercase letters, digits and '-'.
    #[schemars(length(min = 1, max = 63), regex(pattern = LABEL_PATTERN))]
    pub name: String,
    /// Who set it, e.g. "alice@example.com".
    #[schemars(length(min = 1, max = 254))]
    pub owner: String,
    /// Why, e.g. "Christmas campaign".
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// When it was set (RFC 3339); it applies from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// When it expires (RFC 3339 with offset), e.g. "2026-12-24T18:00:00+09:00".
    #[schemars(length(min = 1))]
    pub until: String,
    /// Minimum size until expiry (may lower the spec's minSize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_size: Option<u32>,
    /// Maximum size until expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_size: Option<u32>,
    /// scaleIn: no scale-in; scaleOut: no scale-out; freeze: no resize at all; until expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseKind>,
}

/// What an override pauses.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum PauseKind {
    /// No scale-in.
    ScaleIn,
    /// No scale-out.
    ScaleOut,
    /// No resize in either direction.
    Freeze,
}

/// Forecasting: each metric learns its load's weekly shape (the peak smoothed value of each hour
/// of the week, UTC) and, when the shape predicts a rise within `lead`, the policy scales out
/// early enough that the new capacity serves when the rise arrives. The forecast only adds
/// capacity, never removes it, and earns its weight: an hour the shape did not predict lowers
/// its say.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ForecastSpec {
    /// off: no forecast; report: learn and show what the forecast would do, decide without it;
    /// act: scale out ahead of forecast rises. Default act.
    #[serde(default = "default_forecast_mode")]
    pub mode: ForecastMode,
    /// How far ahead capacity is ordered. Default: the scale-out warm-up plus 5 minutes for the
    /// resize itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub lead: Option<String>,
}

impl Default for ForecastSpec {
    fn default() -> Self {
        Self { mode: default_forecast_mode(), lead: None }
    }
}

fn default_forecast_mode() -> ForecastMode {
    ForecastMode::Act
}

/// What a policy does with its forecast.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ForecastMode {
    /// No forecast.
    Off,
    /// Learn and report what the forecast would do; decide without it.
    Report,
    /// Scale out ahead of forecast rises.
    Act,
}

/// Time a resize itself takes, added to the warm-up for the default forecast lead.
pub const FORECAST_OPERATION_TIME_MINUTES: i64 = 5;

fn default_tolerance() -> f64 {
    0.1
}
fn default_interval() -> String {
    "60s".to_string()
}
fn default_max_resizes_per_day() -> u32 {
    100
}

/// Declares [`TargetRef`], one variant per target kind, and its dispatch to the kind's
/// descriptor ([`TargetKind`]): the one place target kinds are registered.
macro_rules! target_kinds {
    ($($(#[$doc:meta])* $field:ident: $variant:ident($reference:ty),)*) => {
        /// The thing a policy scales. Exactly one variant.
        #[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
        #[serde(rename_all = "camelCase")]
        pub enum TargetRef {
            $($(#[$doc])* $variant($reference),)*
        }

        impl TargetRef {
            /// The CEL rule that exactly one kind is set. Generated from this list, so a kind
            /// added here is never refused by the API server for being none of the others.
            pub fn one_of_rule() -> String {
                let set = [$(concat!("has(self.", stringify!($field), ")")),*];
                format!("[{}].filter(x, x).size() == 1", set.join(", "))
            }

            /// The message of [`TargetRef::one_of_rule`].
            pub fn one_of_message() -> String {
                let fields = [$(concat!("target.", stringify!($field))),*];
                match fields.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("set exactly one of {} or {last}", rest.join(", "))
                    }
                    _ => format!("set {}", fields.join("")),
                }
            }

            /// What the program knows about this target's kind.
            pub fn kind(&self) -> &dyn TargetKind {
                match self {
                    $(TargetRef::$variant(r) => r,)*
                }
            }
        }
    };
}

// The registered target kinds. A new kind: its file (reference type, `TargetKind` impl,
// adapter) and one line here.
target_kinds! {
    /// A Cloud Bigtable cluster; the policy sets its serve nodes.
    bigtableCluster: BigtableCluster(BigtableClusterRef),
    /// A replicated Cloud Bigtable instance; the policy sets the serve nodes of all its clusters
    /// (or the listed ones) to one size.
    bigtableInstance: BigtableInstance(BigtableInstanceRef),
    /// A GKE node pool; the policy sets its node count.
    gkeNodePool: GkeNodePool(GkeNodePoolRef),
    /// A Cloud Spanner instance; the policy sets its compute capacity in processing units (so
    /// minSize, maxSize and step limits are in processing units too).
    spannerInstance: SpannerInstance(SpannerInstanceRef),
    /// A Kubernetes workload in the policy's namespace with a `/scale` subresource (Deployment,
    /// StatefulSet, ...); the policy sets its replicas.
    workload: Workload(WorkloadRef),
}

/// A replicated Cloud Bigtable instance: its clusters sized together.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BigtableInstanceRef {
    /// Google Cloud project ID.
    #[schemars(length(min = 1))]
    pub project: String,
    /// Bigtable instance ID.
    #[schemars(length(min = 1))]
    pub instance: String,
    /// The cluster IDs to size together; empty (the default): every cluster of the instance, as
    /// listed at each evaluation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Storage utilization (fraction of per-node storage capacity) never to exceed by scaling in,
    /// in any of the clusters. Default 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.05, max = 0.95))]
    pub storage_target: Option<f64>,
    /// How the clusters are sized: `largest` (the default) sets every cluster to the size the
    /// hottest cluster needs; `perCluster` sizes each cluster from its own metrics, none below
    /// `perClusterFloor` of the largest cluster's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizing: Option<InstanceSizing>,
    /// With `sizing: perCluster`: no cluster is sized below this fraction of the largest
    /// cluster's decision (rounded up), so a failover lands on enough capacity. In (0, 1];
    /// default 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_cluster_floor: Option<f64>,
}

/// How the clusters of a replicated Bigtable instance are sized.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum InstanceSizing {
    /// Every cluster at the size the hottest cluster needs.
    #[default]
    Largest,
    /// Each cluster from its own metrics, with its own cooldowns, none below a fraction of the
    /// largest cluster's decision.
    PerCluster,
}

/// The default of `perClusterFloor`.
pub const DEFAULT_PER_CLUSTER_FLOOR: f64 = 0.5;

impl BigtableInstanceRef {
    /// With `sizing: perCluster`, the fraction of the largest cluster's decision every cluster
    /// is kept at; `None` in `largest` mode.
    pub fn per_cluster_floor(&self) -> Option<f64> {
        (self.sizing == Some(InstanceSizing::PerCluster))
            .then(|| self.per_cluster_floor.unwrap_or(DEFAULT_PER_CLUSTER_FLOOR))
    }
}

/// A Cloud Bigtable cluster.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BigtableClusterRef {
    /// Google Cloud project ID.
    #[schemars(length(min = 1))]
    pub project: String,
    /// Bigtable instance ID.
    #[schemars(length(min = 1))]
    pub instance: String,
    /// Bigtable cluster ID.
    #[schemars(length(min = 1))]
    pub cluster: String,
    /// Storage utilization (fraction of per-node storage capacity) never to exceed by scaling in.
    /// The policy never scales in below the nodes the cluster's data needs at this utilization. Default 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.05, max = 0.95))]
    pub storage_target: Option<f64>,
    /// Steer the target's built-in autoscaler instead of refusing it: while it is on, the
    /// policy's size becomes the autoscaler's minimum (its maximum raised to it if lower), and
    /// the autoscaler keeps its own live size at or above it. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub steer_autoscaler: bool,
}

/// A Cloud Spanner instance, sized in processing units: 100 to 900 in steps of 100, then whole
/// thousands (1000 = one node).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpannerInstanceRef {
    /// Google Cloud project ID.
    #[schemars(length(min = 1))]
    pub project: String,
    /// Spanner instance ID.
    #[schemars(length(min = 1))]
    pub instance: String,
    /// Storage utilization (fraction of the storage limit the instance's compute capacity allows)
    /// never to exceed by scaling in. Default 0.75.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.05, max = 0.95))]
    pub storage_target: Option<f64>,
    /// Steer the target's built-in autoscaler instead of refusing it: while it is on, the
    /// policy's size becomes the autoscaler's minimum (its maximum raised to it if lower), and
    /// the autoscaler keeps its own live size at or above it. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub steer_autoscaler: bool,
}

/// A GKE node pool.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "camelCase")]
pub struct GkeNodePoolRef {
    /// Google Cloud project ID.
    #[schemars(length(min = 1))]
    pub project: String,
    /// Region or zone of the GKE cluster, e.g. "us-central1".
    #[schemars(length(min = 1))]
    pub location: String,
    /// GKE cluster name.
    #[schemars(length(min = 1))]
    pub cluster: String,
    /// Node pool name.
    #[schemars(length(min = 1))]
    pub node_pool: String,
    /// When the pool's cluster autoscaler is enabled, adjust its min/max node count instead of
    /// refusing to act. Default false. The older name of `steerAutoscaler`; either turns it on.
    #[serde(default)]
    pub adjust_cluster_autoscaler: bool,
    /// Steer the target's built-in autoscaler instead of refusing it: while it is on, the
    /// policy's size becomes the autoscaler's minimum (its maximum raised to it if lower), and
    /// the autoscaler keeps its own live size at or above it. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub steer_autoscaler: bool,
    /// How nodes leave the pool on scale-in. `drain` (the default): the nodes cheapest to empty
    /// are cordoned, their pods evicted through the Eviction API (PodDisruptionBudgets honoured),
    /// and exactly those VMs deleted; a node that does not empty in `drainTimeout` is kept.
    /// `resize`: `SetNodePoolSize`, which removes nodes the instance groups pick, pods and all.
    /// Needs the Kubernetes API of the pool's own cluster. Ignored with `adjustClusterAutoscaler`
    /// (the cluster autoscaler drains its own nodes).
    #[serde(default, skip_serializing_if = "ScaleIn::is_default")]
    pub scale_in: ScaleIn,
    /// Longest a node's drain may take before the node is kept (uncordoned, reported), as a Go
    /// duration, e.g. "10m" (the default). 10s to 60m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub drain_timeout: Option<String>,
    /// Most grace period an evicted pod is given, e.g. "2m" (the default); a pod asking for less
    /// gets what it asks for. 1s to 60m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max_pod_grace_period: Option<String>,
    /// Evict pods that keep data on the node (`emptyDir` or `hostPath` volumes), which is lost to
    /// them. Default false: a node with such a pod is not chosen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evict_local_storage: bool,
}

/// How a node pool scales in (see [`GkeNodePoolRef::scale_in`]).
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ScaleIn {
    /// Cordon, evict honouring PodDisruptionBudgets, delete exactly the drained VMs.
    #[default]
    Drain,
    /// `SetNodePoolSize`: the instance groups remove nodes of their choosing, pods and all.
    Resize,
}

impl ScaleIn {
    fn is_default(&self) -> bool {
        *self == ScaleIn::Drain
    }
}

/// A Kubernetes workload with a `/scale` subresource, in the policy's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// API version of the workload, e.g. "apps/v1".
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// Kind of the workload, e.g. "Deployment".
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name of the workload.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// One metric that drives the size.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(MetricSourceSpec::one_of_rule()).message(MetricSourceSpec::one_of_message().as_str()))]
pub struct MetricSpec {
    /// Short name used in status, events and the dashboard, e.g. "cpu".
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Where the metric is read: one field per registered source (`query`, `kubernetes`), see
    /// [`crate::adapters::sources`].
    #[serde(flatten)]
    pub source: MetricSourceSpec,
    /// size (default): the metric sizes the target. guard: it never asks for more nodes, but
    /// while its value (the newest sample or the smoothed value, whichever is higher) is above
    /// `target`, scale-in is blocked (reason GuardMetricHigh), e.g. the hottest node's CPU.
    #[serde(default, skip_serializing_if = "MetricRole::is_size")]
    pub role: MetricRole,
    /// The value to hold the metric at, in the metric's own units. For a perNode metric this is the
    /// per-node value (e.g. 0.6 for 60% CPU); for a total metric it is what one node can serve
    /// (e.g. 5000 requests/s per node). Required, except where the target recommends one: a
    /// spannerInstance's high-priority CPU (`instance/cpu/utilization_by_priority` with
    /// `metric.labels.priority="high"`) left without one is held at Google's recommended maximum
    /// for the instance's configuration, 0.65 regional and 0.45 multi-region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("target must be greater than 0"))]
    pub target: Option<f64>,
    /// perNode: the metric is a per-node average (CPU utilization) and falls as nodes are added;
    /// total: the metric is a total (requests/s) that is divided across the nodes.
    #[serde(default)]
    pub kind: MetricKind,
    /// How raw samples are smoothed before sizing.
    #[serde(default)]
    pub smoothing: Smoothing,
    /// Samples older than this count as missing. Default "5m".
    #[serde(default = "default_max_data_age")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("maxDataAge must be greater than 0"))]
    pub max_data_age: String,
    /// Room for noise: size so that single samples, not only their average, rarely pass a limit.
    /// On by default (quantile 0.975, limit 1.25 x target).
    #[serde(default)]
    pub headroom: HeadroomSpec,
    /// Sizing ahead of a steady climb: a line through the newest samples says where the load
    /// will be when capacity ordered now serves. On by default.
    #[serde(default, skip_serializing_if = "RampSpec::is_default")]
    pub ramp: RampSpec,
}

/// The line through a steady climb (`ScaleOutOnRamp`): fitted to the demands of the last three
/// smoothing windows (at least 12 samples) and believed only when its slope stands `threshold`
/// standard errors above zero, its residuals are the samples' own noise, and no single step
/// explains them better. It only ever adds capacity.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RampSpec {
    /// Turn sizing ahead of a steady climb on or off. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How many standard errors the line's slope must stand above zero, between 2 and 20: lower
    /// believes a climb sooner and more often falsely. Default 4 (about one false climb in 5,000
    /// windows of noise).
    #[serde(default = "default_ramp_threshold")]
    #[schemars(range(min = 2.0, max = 20.0))]
    pub threshold: f64,
}

impl Default for RampSpec {
    fn default() -> Self {
        Self { enabled: true, threshold: default_ramp_threshold() }
    }
}

impl RampSpec {
    fn is_default(&self) -> bool {
        *self == RampSpec::default()
    }
}

fn default_ramp_threshold() -> f64 {
    crate::core::ramp::RAMP_T
}

impl MetricSpec {
    /// The target as written; NaN when it was left out (see [`crate::spec::target_of`] for the
    /// one a left-out target resolves to).
    pub fn target_value(&self) -> f64 {
        self.target.unwrap_or(f64::NAN)
    }
}

/// Noise-aware sizing. The target holds the *smoothed* metric; on noisy load single samples
/// scatter far around it. With headroom, the policy also keeps the chosen quantile of single
/// samples at or under `limit`, using a robust running estimate of the scatter: the effective
/// target is `min(target, limit x smoothed / (smoothed + z(quantile) x noise))`, which is the
/// target itself when the load is quiet.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.limit) || self.limit > 0.0").message("headroom.limit must be greater than 0"))]
pub struct HeadroomSpec {
    /// Turn noise-aware sizing on or off. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The share of single samples that should stay at or under `limit`, between 0.5 and 0.999.
    /// Default 0.975 (about two standard deviations of the noise).
    #[serde(default = "default_headroom_quantile")]
    #[schemars(range(min = 0.5, max = 0.999))]
    pub quantile: f64,
    /// The per-node level (same units as `target`) single samples should rarely pass; at least
    /// the target. Default: 1.25 x target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
}

impl Default for HeadroomSpec {
    fn default() -> Self {
        Self { enabled: true, quantile: default_headroom_quantile(), limit: None }
    }
}

fn default_headroom_quantile() -> f64 {
    0.975
}

/// The default limit as a multiple of the target: a quarter above it, the same limit the
/// simulator's "minutes over limit" uses.
pub const DEFAULT_LIMIT_RATIO: f64 = 1.25;

fn default_max_data_age() -> String {
    "5m".to_string()
}

/// What a metric does in the policy.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MetricRole {
    /// The metric sizes the target.
    #[default]
    Size,
    /// The metric never sizes the target; while it is above its `target`, scale-in is blocked.
    Guard,
}

impl MetricRole {
    fn is_size(&self) -> bool {
        *self == MetricRole::Size
    }
}

/// Whether a metric is a per-node average or a total spread over the nodes.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MetricKind {
    /// Per-node average, e.g. CPU utilization.
    #[default]
    PerNode,
    /// Total over the target, divided across its nodes, e.g. requests per second.
    Total,
}

/// Smoothing of the raw samples.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Smoothing {
    /// sma: simple moving average over the window; ema: exponential moving average whose weights
    /// halve every half window.
    #[serde(default, rename = "type")]
    pub kind: SmoothingKind,
    /// Window length, e.g. "10m". Default "10m".
    #[serde(default = "default_smoothing_window")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("smoothing.window must be greater than 0"))]
    pub window: String,
}

impl Default for Smoothing {
    fn default() -> Self {
        Self { kind: SmoothingKind::default(), window: default_smoothing_window() }
    }
}

fn default_smoothing_window() -> String {
    "10m".to_string()
}

/// The moving average used for smoothing.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum SmoothingKind {
    /// Simple moving average over the window.
    Sma,
    /// Exponential moving average with a half-life of half the window.
    #[default]
    Ema,
}

/// Spike detection: a robust deviation of the newest raw samples above the smoothed baseline.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpikeSpec {
    /// Turn spike handling on or off. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How many robust deviations (a running mean absolute deviation of raw samples around the
    /// smoothed baseline, scaled to a standard deviation) a raw sample must rise above the
    /// baseline to count. Default 3.
    #[serde(default = "default_spike_threshold")]
    #[schemars(range(min = 1.0, max = 20.0))]
    pub threshold: f64,
    /// A raw sample must also be at least this fraction above the baseline, so that a very quiet
    /// metric does not call every ripple a spike. Default 0.2 (20%).
    #[serde(default = "default_spike_min_rise")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub min_rise: f64,
    /// Consecutive raw samples that must be above the threshold. A run beyond the metric's limit
    /// on the capacity serving counts minutes of load instead: a sample that is the mean of five
    /// minutes counts five, so with the default one such sample is a spike. Default 2.
    #[serde(default = "default_spike_samples")]
    #[schemars(range(min = 1, max = 60))]
    pub sustained_samples: u32,
    /// After a spike, block scale-in for this long. Default "30m".
    #[serde(default = "default_spike_hold")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub hold: String,
}

impl Default for SpikeSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: default_spike_threshold(),
            min_rise: default_spike_min_rise(),
            sustained_samples: default_spike_samples(),
            hold: default_spike_hold(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_spike_threshold() -> f64 {
    3.0
}
fn default_spike_min_rise() -> f64 {
    0.2
}
fn default_spike_samples() -> u32 {
    2
}
fn default_spike_hold() -> String {
    "30m".to_string()
}

/// How fast the policy adds capacity. Every field left out takes its fast-out default, so
/// setting one field never drops the others to "no limit".
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleOutRules {
    /// Time after the last scale-out finished before the next one. Default 0s.
    #[serde(default = "zero_duration")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub cooldown: String,
    /// Scale out only to the lowest recommendation seen within this window, so one high sample
    /// does not add nodes on its own (spikes bypass it). Default 0s.
    #[serde(default = "zero_duration")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub stabilization_window: String,
    /// Most nodes added in one step. Default 4; null for no limit.
    #[serde(default = "default_out_step_nodes")]
    #[schemars(range(min = 1))]
    pub max_step_nodes: Option<u32>,
    /// Most nodes added in one step, as a percent of the current size. With maxStepNodes as well,
    /// the larger step is allowed (the HPA's selectPolicy: Max). Default 100; null for no limit.
    #[serde(default = "default_out_step_percent")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_step_percent: Option<u32>,
    /// How long new capacity takes to carry load after its resize finished (Bigtable rebalances
    /// for up to 20 minutes). Samples taken before then are read as load on the old size, so the
    /// policy does not add nodes twice for the same load. Defaults by target: bigtableCluster
    /// 20m, gkeNodePool 3m, workload 1m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub warmup: Option<String>,
}

/// How fast the policy removes capacity. Every field left out takes its slow-in default, so
/// setting one field never drops the others to "no limit".
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleInRules {
    /// Time after the last resize (in either direction) finished before a scale-in. Default 10m;
    /// 60m for a spannerInstance (Spanner bills the largest capacity of each hour, and moves data
    /// onto new capacity for a while after a change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub cooldown: Option<String>,
    /// Scale in only to the highest recommendation seen within this window, as the HPA does.
    /// Default 15m.
    #[serde(default = "default_in_stabilization")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub stabilization_window: String,
    /// Most nodes removed in one step. Default 1; null for no limit.
    #[serde(default = "default_in_step_nodes")]
    #[schemars(range(min = 1))]
    pub max_step_nodes: Option<u32>,
    /// Most nodes removed in one step, as a percent of the current size. With maxStepNodes as
    /// well, the larger step is allowed. Default 10; null for no limit.
    #[serde(default = "default_in_step_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub max_step_percent: Option<u32>,
}

fn zero_duration() -> String {
    "0s".to_string()
}
fn default_out_step_nodes() -> Option<u32> {
    Some(4)
}
fn default_out_step_percent() -> Option<u32> {
    Some(100)
}
/// The scale-in cooldown of a policy that sets none, unless its target kind says otherwise
/// (`TargetKind::default_scale_in_cooldown`).
pub const DEFAULT_SCALE_IN_COOLDOWN: &str = "10m";
fn default_in_stabilization() -> String {
    "15m".to_string()
}
fn default_in_step_nodes() -> Option<u32> {
    Some(1)
}
fn default_in_step_percent() -> Option<u32> {
    Some(10)
}

impl Default for ScaleOutRules {
    /// Fast out: no cooldown, no stabilization, steps of 100% or 4 nodes.
    fn default() -> Self {
        Self {
            cooldown: zero_duration(),
            stabilization_window: zero_duration(),
            max_step_nodes: default_out_step_nodes(),
            max_step_percent: default_out_step_percent(),
            warmup: None,
        }
    }
}

impl Default for ScaleInRules {
    /// Slow in: 10m cooldown, 15m stabilization, steps of 10% or 1 node.
    fn default() -> Self {
        Self {
            cooldown: None,
            stabilization_window: default_in_stabilization(),
            max_step_nodes: default_in_step_nodes(),
            max_step_percent: default_in_step_percent(),
        }
    }
}

/// Whether the controller acts on its decisions.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Decide and resize the target.
    #[default]
    Enforce,
    /// Decide and report, never touch the target.
    DryRun,
    /// Do nothing; keep the state as it is.
    Paused,
}

/// What missing, stale, NaN or partial data does.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingDataPolicy {
    /// Keep the current size while any metric is missing.
    #[default]
    Hold,
    /// Let the metrics that do have data scale out; never scale in while any metric is missing.
    ScaleOutOnly,
}

/// Most entries kept in [`ScalePolicyStatus::recent_decisions`]: enough to see the last changes,
/// small enough that status stays a few kilobytes.
pub const RECENT_DECISIONS: usize = 20;

/// What the controller observed and decided. Everything the decision core needs to decide exactly
/// as before a restart lives here (`state`).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalePolicyStatus {
    /// The spec generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The target in one line, e.g. "bigtable p1/i1/c1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Size the target has now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_size: Option<u32>,
    /// The live size the target's built-in autoscaler keeps, when the policy steers it
    /// (`steerAutoscaler`): `currentSize` is then the autoscaler's minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_size: Option<u32>,
    /// Size the policy wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_size: Option<u32>,
    /// The last decision and the numbers behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<DecisionRecord>,
    /// The most recent distinct decisions, oldest first, at most 20, without per-metric readings.
    /// A decision is added only when its reason or sizes differ from the newest entry, so an
    /// entry keeps the time its state began and a steady state does not push changes out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub recent_decisions: Vec<DecisionRecord>,
    /// When each direction may act again, and the spike hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<CooldownStatus>,
    /// Name of the resize operation in flight, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// What the operation in flight said it is doing, at the last evaluation: for a node-pool
    /// drain each node, the pods left on it and the budget holding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_progress: Option<String>,
    /// The parts of the target sized together, as last observed: a replicated Bigtable
    /// instance's clusters. Absent for a target that is one thing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// Ready, AbleToScale, ScalingActive, ScalingLimited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The decision core's state, so a restarted controller decides exactly as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub state: Option<PolicyState>,
    /// The last 24 hours for people: every resize and the load in 5-minute buckets, so every
    /// replica and a restarted controller show the same day. At most [`HISTORY_BUDGET_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<StatusHistory>,
    /// Schedule windows and overrides in effect at the last evaluation, and until when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ActiveStatus>,
    /// The same in one line, for `kubectl get`, e.g. "override campaign (min 20) until 2026-12-24T09:00:00Z".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_summary: Option<String>,
    /// With shards (`ebbflow run --shards N`): the replica (pod) that wrote this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_by: Option<String>,
    /// With shards: the policy's shard, whose Lease that replica held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
}

/// Most bytes [`ScalePolicyStatus::history`] takes as JSON, whatever the load (a test holds it).
pub const HISTORY_BUDGET_BYTES: usize = 32 * 1024;
/// Most resizes kept in [`StatusHistory::resizes`]: more than the default 100-a-day budget.
pub const HISTORY_RESIZES: usize = 144;
/// Width of one bucket of [`StatusHistory`] series, in minutes.
pub const HISTORY_BUCKET_MINUTES: i64 = 5;
/// Buckets in [`StatusHistory`] series: 24 hours.
pub const HISTORY_BUCKETS: usize = 288;

/// The last 24 hours of one policy, compact: every resize, and per 5-minute bucket the highest
/// observed value of the first metric, the last smoothed value, the serving and the desired
/// size. Series are space-separated numbers, oldest first, "-" where a bucket has no data.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusHistory {
    /// Every resize started in the last 24 hours, oldest first (at most 144).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 144))]
    pub resizes: Vec<ResizeEntry>,
    /// Resizes dropped from `resizes` to stay within the budget, ever (0 on all but very busy days).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub dropped: u32,
    /// Start of the first bucket (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Highest observed value of the first metric per bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed: String,
    /// Last smoothed value of the first metric per bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub smoothed: String,
    /// Last serving size per bucket (nodes warming up not counted).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serving: String,
    /// Last desired size per bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desired: String,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// One resize the controller started.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResizeEntry {
    /// When it was started (RFC 3339).
    pub time: String,
    /// Size before.
    pub from: u32,
    /// Size asked for.
    pub to: u32,
    /// Why (a `Reason` name).
    pub reason: String,
    /// Seconds the resize took until the target reported it done; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_secs: Option<u64>,
    /// Why it failed or had no effect, if it did (at most 120 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A schedule window or override in effect.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ActiveStatus {
    /// Schedule or Override.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// What it does, e.g. "min 20", "pause scale-in".
    pub effect: String,
    /// When the window opens or the override was set (RFC 3339), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Until when it holds (RFC 3339).
    pub until: String,
}

/// One part of a target sized with the others (a cluster of a replicated Bigtable instance).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Its ID, e.g. the cluster ID.
    pub name: String,
    /// Its size now.
    pub size: u32,
    /// Its state as the backend reports it, e.g. READY, RESIZING.
    pub state: String,
    /// The resize operation on it the controller is following, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Per-cluster sizing: the size its own metrics ask for (its own decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_size: Option<u32>,
    /// Per-cluster sizing: the size applied, its own decision raised to the floor at a fraction
    /// of the largest cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_size: Option<u32>,
    /// Per-cluster sizing: why (a `Reason` name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per-cluster sizing: why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Per-cluster sizing: the decision core's state of this cluster (its signals, cooldowns,
    /// resize in flight), so a restarted controller decides each cluster exactly as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub core_state: Option<PolicyState>,
}

/// The core's state is versioned with the controller, not the API: the schema keeps it opaque.
fn opaque_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
        "description": "The decision core's state (signals, recent recommendations, resize history, budget), so a restarted controller decides exactly as before."
    })
}

/// One decision, as shown in status and on the dashboard.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// When the decision was made (RFC 3339).
    pub time: String,
    /// Up, Down or None.
    pub direction: String,
    /// Machine-readable reason (a `Reason` variant name).
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
    /// Size before the decision.
    pub from: u32,
    /// Size the decision asked for.
    pub to: u32,
    /// Per metric: the newest raw value and the smoothed value it was sized on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, MetricReading>,
    /// Nodes that were serving when the newest sample was measured: `from` minus nodes added
    /// but still warming up or not yet seen serving in the per-node metric (or the size before a
    /// running resize). Absent when it equals `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<u32>,
}

/// The values of one metric behind a decision.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricReading {
    /// Newest raw value as measured: per serving node (or the total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<f64>,
    /// Smoothed demand on the scale of the target: per node across all `from` nodes, warming
    /// ones included (or the total). This is what the size is computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothed: Option<f64>,
    /// The metric's target.
    pub target: f64,
    /// The target the size was computed against: the target, or lower when headroom for noise
    /// asks for more nodes (spec.metrics[].headroom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_target: Option<f64>,
    /// How far single samples scatter around the smoothed value, as a fraction of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
    /// Size the forecast rise asks for, when the weekly shape expects one (spec.forecast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<u32>,
    /// Demand the forecast expects at now + lead, on the scale of `smoothed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_demand: Option<f64>,
    /// Size this metric alone asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended: Option<u32>,
    /// Whether a spike was detected on this tick.
    #[serde(default)]
    pub spike: bool,
}

/// Cooldown timers, for humans; the authoritative copy is in `state`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CooldownStatus {
    /// Earliest time a scale-out may happen (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_allowed_at: Option<String>,
    /// Earliest time a scale-in may happen (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_allowed_at: Option<String>,
    /// Scale-in is blocked by a spike until this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_hold_until: Option<String>,
}

/// A standard Kubernetes condition.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, AbleToScale, ScalingActive or ScalingLimited.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    /// CamelCase reason (a `Reason` variant name).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The spec generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl TargetRef {
    /// The target in one line, for status, logs and the dashboard.
    pub fn describe(&self) -> String {
        self.kind().describe()
    }
}
