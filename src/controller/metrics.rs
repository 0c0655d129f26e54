//! Prometheus metrics (OpenMetrics text on `/metrics`).
//!
//! Memory: a policy has a fixed set of series (three per policy, seven per metric, one per
//! decision reason it has seen and per reason a resize was skipped, so at most
//! `3 + 7 × metrics + Reason::ALL.len() + SKIP_REASONS.len()` twice over), and [`Metrics::forget`]
//! removes every one of them. Label values are shared: the namespace, policy and metric names of
//! a policy are one allocation each for all its series, and reasons are static strings.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::adapters::ErrorKind;
use crate::core::{Policy, Reason};
use crate::tick::TickReport;

/// Labels of a per-policy series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// Namespace of the policy ("" in standalone mode when none is set).
    pub namespace: Arc<str>,
    /// Name of the policy.
    pub policy: Arc<str>,
}

/// Labels of a per-metric series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    /// Namespace of the policy.
    pub namespace: Arc<str>,
    /// Name of the policy.
    pub policy: Arc<str>,
    /// The metric's name in the policy.
    pub metric: Arc<str>,
}

/// Labels of a per-policy count by reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Namespace of the policy.
    pub namespace: Arc<str>,
    /// Name of the policy.
    pub policy: Arc<str>,
    /// A `Reason` name or one of [`SKIP_REASONS`].
    pub reason: Cow<'static, str>,
}

/// Why a resize was skipped, besides the decision's own `Reason`: the labels [`Metrics::skip`]
/// is called with. A label not listed here still counts, but is not removed by
/// [`Metrics::forget`].
pub const SKIP_REASONS: &[&str] = &["DryRun", "NotLeader", "StatusConflict", "StatusWriteFailed", "TargetConflict"];

/// `reason` as a static string when it is a known one (no allocation per series).
fn reason_label(reason: &str) -> Cow<'static, str> {
    Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .chain(SKIP_REASONS.iter().copied())
        .find(|known| *known == reason)
        .map_or_else(|| Cow::Owned(reason.to_string()), Cow::Borrowed)
}

/// The label values of each policy with series: its namespace, name and metric names, shared by
/// all its series. By namespace, then name.
type Names = HashMap<Arc<str>, HashMap<Arc<str>, Vec<Arc<str>>>>;

/// Labels of an API error: a fixed set ([`BACKENDS`] x [`KINDS`]), all created at 0 when the
/// metrics are registered, so a `rate()` alert sees the first error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiErrorLabels {
    /// "monitoring", "bigtable", "gke", "kubernetes".
    pub backend: String,
    /// The error kind: Transient, PermissionDenied, CredentialsMissing, CredentialsRefused, NotFound, TargetBusy, Refused, Malformed, Other.
    pub kind: String,
}

/// Labels of an API error response by HTTP status code (created on the first one).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiCodeLabels {
    /// "monitoring", "bigtable", "gke", "kubernetes".
    pub backend: String,
    /// HTTP status code.
    pub code: String,
}

/// Backends whose API errors are counted.
pub const BACKENDS: &[&str] = &["monitoring", "bigtable", "gke", "kubernetes"];

/// Every error kind, as labelled.
pub const KINDS: &[ErrorKind] = &[
    ErrorKind::Transient,
    ErrorKind::PermissionDenied,
    ErrorKind::CredentialsMissing,
    ErrorKind::CredentialsRefused,
    ErrorKind::NotFound,
    ErrorKind::Busy,
    ErrorKind::Refused,
    ErrorKind::Malformed,
    ErrorKind::Other,
];

/// Every series the controller exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Size the target reports.
    pub current_size: Family<PolicyLabels, Gauge>,
    /// Size the policy wants.
    pub desired_size: Family<PolicyLabels, Gauge>,
    /// Newest raw metric value.
    pub observed: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    /// Smoothed metric value on the raw scale.
    pub smoothed: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    /// The target a metric was sized against (lower than its target for noise headroom).
    pub effective_target: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    /// The metric's target as written in the spec.
    pub target: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    /// Scatter of single samples around the smoothed value, as a fraction of it.
    pub noise: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    /// Demand the forecast expects at now + lead, on the smoothed value's scale (0: no rise).
    pub forecast_demand: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    /// Size the forecast asks for (0: no rise expected).
    pub forecast_size: Family<MetricLabels, Gauge>,
    /// Resizes left in the rolling 24-hour budget (spec.maxResizesPerDay).
    pub budget_left: Family<PolicyLabels, Gauge>,
    /// Nodes a node-pool scale-in is draining now; a series only for policies that drained.
    pub draining_nodes: Family<PolicyLabels, Gauge>,
    /// Decisions by policy and reason.
    pub decisions: Family<ReasonLabels, Counter>,
    /// Resizes that were wanted and not sent, by policy and why.
    pub skipped: Family<ReasonLabels, Counter>,
    /// Failed backend calls by backend and error kind.
    pub api_errors: Family<ApiErrorLabels, Counter>,
    /// Failed backend calls that had an HTTP status, by backend and code.
    pub api_error_codes: Family<ApiCodeLabels, Counter>,
    /// 1 while this instance holds the lease.
    pub leader: Gauge,
    /// Shards this replica holds (with `--shards`; 0 otherwise).
    pub shards_held: Gauge,
    /// Policies whose last decision is older than two of their intervals (not paused), as this
    /// replica's copy of their status shows: an alert on it catches a controller that stopped.
    pub overdue: Gauge,
    /// Time spent in one reconcile.
    pub reconcile_duration: ReconcileHistogram,
    /// Shared label values, per policy with series (removed by [`Metrics::forget`]).
    names: Mutex<Names>,
}

/// A histogram with buckets from 5ms to about 80s.
#[derive(Debug)]
pub struct ReconcileHistogram(pub Histogram);

impl Default for ReconcileHistogram {
    fn default() -> Self {
        ReconcileHistogram(Histogram::new(exponential_buckets(0.005, 2.0, 15)))
    }
}

impl Metrics {
    /// Create the metrics and register them under the `ebbflow` prefix.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("ebbflow");
        r.register("policy_current_size", "Size the target reports", m.current_size.clone());
        r.register("policy_desired_size", "Size the policy wants", m.desired_size.clone());
        r.register("metric_observed_value", "Newest raw value of a policy metric", m.observed.clone());
        r.register("metric_smoothed_value", "Smoothed value of a policy metric", m.smoothed.clone());
        r.register("metric_target", "Target of a policy metric as written in the spec", m.target.clone());
        r.register(
            "metric_effective_target",
            "Target a policy metric was sized against: the target, or lower when noise headroom asks for more nodes",
            m.effective_target.clone(),
        );
        r.register(
            "metric_noise_ratio",
            "Scatter of single samples around the smoothed value, as a fraction of it",
            m.noise.clone(),
        );
        r.register(
            "metric_forecast_demand",
            "Demand the weekly-shape forecast expects at now plus lead, on the smoothed value's scale (0: no rise)",
            m.forecast_demand.clone(),
        );
        r.register("metric_forecast_size", "Size the forecast asks for (0: no rise expected)", m.forecast_size.clone());
        r.register(
            "policy_resize_budget_remaining",
            "Resizes left in the rolling 24-hour budget (spec.maxResizesPerDay)",
            m.budget_left.clone(),
        );
        r.register(
            "policy_draining_nodes",
            "Nodes a node-pool scale-in is draining now (cordoned, pods being evicted, VM being deleted); 0 once done",
            m.draining_nodes.clone(),
        );
        r.register("decisions", "Decisions by policy and reason", m.decisions.clone());
        r.register("skipped_actions", "Resizes wanted but not sent, by policy and reason", m.skipped.clone());
        r.register("api_errors", "Failed backend API calls by backend and error kind", m.api_errors.clone());
        r.register("api_error_codes", "Failed backend API calls by backend and HTTP status", m.api_error_codes.clone());
        // Every error series exists from the start, so a rate() alert fires on the first error.
        for backend in BACKENDS {
            for kind in KINDS {
                let _ = m
                    .api_errors
                    .get_or_create(&ApiErrorLabels { backend: (*backend).into(), kind: kind.as_str().into() });
            }
        }
        r.register(
            "leader",
            "1 while this instance holds the leader lease (with shards: shard 0, which exports decisions)",
            m.leader.clone(),
        );
        r.register("shards_held", "Shards this replica holds and evaluates (with --shards)", m.shards_held.clone());
        r.register(
            "policies_overdue",
            "Policies not evaluated for more than two of their intervals (paused ones excepted), from the statuses this replica sees",
            m.overdue.clone(),
        );
        r.register("reconcile_duration_seconds", "Time spent evaluating one policy", m.reconcile_duration.0.clone());
        m
    }

    /// Record what a tick saw and decided, with `status` the status just written for it (so
    /// `desired_size` is the same number `/api/policies` and `kubectl get` show).
    pub fn record_report(
        &self,
        ns: &str,
        name: &str,
        policy: &Policy,
        r: &TickReport,
        status: &crate::api::ScalePolicyStatus,
    ) {
        let (labels, metric_names) = self.labels(ns, name, Some(policy));
        self.current_size.get_or_create(&labels).set(r.observation.size.into());
        // While a resize runs the decision holds at the current size, but the policy still
        // wants the size it asked for; status says so, and so must this series.
        let desired = status.desired_size.unwrap_or(r.decision.desired);
        self.desired_size.get_or_create(&labels).set(desired.into());
        let left = r.decision.state.budget_left(policy, r.decision.at);
        self.budget_left.get_or_create(&labels).set(left.into());
        // Only policies that drain get the series (most never will), and keep it at 0 after.
        let draining =
            status.operation.as_deref().and_then(crate::gcp::drain::Plan::decode).map_or(0, |p| p.nodes.len());
        if draining > 0 || self.draining_nodes.get(&labels).is_some() {
            self.draining_nodes.get_or_create(&labels).set(i64::try_from(draining).unwrap_or(i64::MAX));
        }
        for (i, ((m, o), metric)) in policy.metrics.iter().zip(&r.decision.metrics).zip(metric_names).enumerate() {
            let l = MetricLabels { namespace: labels.namespace.clone(), policy: labels.policy.clone(), metric };
            if let Some(v) = r.decision.raw(i) {
                self.observed.get_or_create(&l).set(v);
            }
            if let Some(v) = r.decision.smoothed(policy, i) {
                self.smoothed.get_or_create(&l).set(v);
            }
            self.target.get_or_create(&l).set(m.target);
            if let Some(v) = o.effective_target {
                self.effective_target.get_or_create(&l).set(v);
            }
            if let Some(v) = o.noise {
                self.noise.get_or_create(&l).set(v);
            }
            let reading = status.last_decision.as_ref().and_then(|d| d.metrics.get(&m.name));
            self.forecast_demand.get_or_create(&l).set(reading.and_then(|x| x.forecast_demand).unwrap_or(0.0));
            self.forecast_size.get_or_create(&l).set(o.forecast.map_or(0, i64::from));
        }
        let reason = r.decision.reason.as_str();
        self.decisions
            .get_or_create(&ReasonLabels {
                namespace: labels.namespace.clone(),
                policy: labels.policy.clone(),
                reason: Cow::Borrowed(reason),
            })
            .inc();
        // A recommendation the guards held back is a skipped action, named by what held it back.
        if r.decision.recommended.is_some_and(|rec| rec != r.decision.current) && !r.decision.is_resize() {
            self.skip(ns, name, reason);
        }
        for (_, e) in &r.metric_errors {
            self.api_error(e);
        }
        if let crate::tick::Actuation::Failed { error, .. } = &r.actuation {
            self.api_error(error);
        }
    }

    /// Count a resize of `ns/name` that was wanted and not sent, `reason` a `Reason` name or one of
    /// [`SKIP_REASONS`].
    pub fn skip(&self, ns: &str, name: &str, reason: &str) {
        let (labels, _) = self.labels(ns, name, None);
        self.skipped
            .get_or_create(&ReasonLabels {
                namespace: labels.namespace,
                policy: labels.policy,
                reason: reason_label(reason),
            })
            .inc();
    }

    /// The labels of `ns/name`'s series, from one shared copy of each value, and the labels of
    /// `policy`'s metrics (which replace those of an earlier spec).
    fn labels(&self, ns: &str, name: &str, policy: Option<&Policy>) -> (PolicyLabels, Vec<Arc<str>>) {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let namespace = match names.get_key_value(ns) {
            Some((k, _)) => k.clone(),
            None => Arc::<str>::from(ns),
        };
        let policies = names.entry(namespace.clone()).or_default();
        let policy_name = match policies.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => Arc::<str>::from(name),
        };
        let metrics = policies.entry(policy_name.clone()).or_default();
        if let Some(p) = policy
            && (metrics.len() != p.metrics.len() || metrics.iter().zip(&p.metrics).any(|(a, m)| **a != *m.name))
        {
            *metrics = p.metrics.iter().map(|m| Arc::<str>::from(m.name.as_str())).collect();
        }
        (PolicyLabels { namespace, policy: policy_name }, metrics.clone())
    }

    /// Count a failed backend call.
    pub fn api_error(&self, e: &crate::adapters::AdapterError) {
        self.api_errors
            .get_or_create(&ApiErrorLabels { backend: e.backend.into(), kind: e.kind.as_str().into() })
            .inc();
        if let Some(code) = e.code {
            self.api_error_codes
                .get_or_create(&ApiCodeLabels { backend: e.backend.into(), code: code.to_string() })
                .inc();
        }
    }

    /// Drop the series of a policy that is gone: all of them, the counts by reason included.
    pub fn forget(&self, ns: &str, name: &str, policy: Option<&Policy>) {
        let labels = PolicyLabels { namespace: ns.into(), policy: name.into() };
        self.current_size.remove(&labels);
        self.desired_size.remove(&labels);
        self.budget_left.remove(&labels);
        self.draining_nodes.remove(&labels);
        for reason in Reason::ALL.iter().map(|r| r.as_str()).chain(SKIP_REASONS.iter().copied()) {
            let l = ReasonLabels {
                namespace: labels.namespace.clone(),
                policy: labels.policy.clone(),
                reason: Cow::Borrowed(reason),
            };
            self.decisions.remove(&l);
            self.skipped.remove(&l);
        }
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        // The metrics the series were made for, which may be of an earlier spec than `policy`.
        let known: Vec<Arc<str>> = names.get_mut(ns).and_then(|p| p.remove(name)).unwrap_or_default();
        if names.get(ns).is_some_and(HashMap::is_empty) {
            names.remove(ns);
        }
        drop(names);
        let specced = policy.map(|p| p.metrics.as_slice()).unwrap_or_default();
        for metric in known.into_iter().chain(specced.iter().map(|m| Arc::<str>::from(m.name.as_str()))) {
            let l = MetricLabels { namespace: labels.namespace.clone(), policy: labels.policy.clone(), metric };
            for g in [
                &self.observed,
                &self.smoothed,
                &self.target,
                &self.effective_target,
                &self.noise,
                &self.forecast_demand,
            ] {
                g.remove(&l);
            }
            self.forecast_size.remove(&l);
        }
    }
}

/// Encode a registry as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// Keep [`Metrics::overdue`] current: every 15 s, count the policies in `published` whose last
/// decision is more than two intervals old ([`crate::readout::overdue_of`]). Followers see the
/// leader's statuses, so a standby's `/metrics` shows a leader that stopped evaluating.
pub fn spawn_overdue(
    published: crate::readout::published::Published,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            metrics.overdue.set(count_overdue(&published));
            tokio::time::sleep(std::time::Duration::from_secs(15)).await;
        }
    })
}

/// How many policies in `published` are overdue now.
pub fn count_overdue(published: &crate::readout::published::Published) -> i64 {
    let now = published.clock.now();
    let shown = published.snapshots.read().unwrap_or_else(|p| p.into_inner());
    let n = shown
        .values()
        .filter(|s| s.status().is_some_and(|st| crate::readout::overdue_of(&s.object().spec, st, now).is_some()))
        .count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {

    /// The overdue count: policies whose last decision is older than two intervals, paused
    /// ones and ones without a decision excepted.
    #[test]
    fn policies_whose_decisions_stopped_are_counted_as_overdue() {
        use crate::api::ScalePolicy;
        use crate::core::Ts;
        use crate::readout::published::{EngineClock, Published, Shown};
        let now = Ts::parse_rfc3339("2026-12-07T12:00:00Z").expect("time");
        let policy = |name: &str, mode: &str, last_min: Option<i64>| {
            let mut v = serde_json::json!({
                "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
                "metadata": {"name": name, "namespace": "data"},
                "spec": {"target": {"bigtableCluster": {"project": "p", "instance": "i", "cluster": name}},
                         "minSize": 1, "maxSize": 9, "mode": mode,
                         "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}]},
                "status": {}});
            if let Some(m) = last_min {
                v["status"]["lastDecision"] = serde_json::json!({"time": Ts(now.0 - m * 60_000).to_rfc3339(),
                    "direction": "None", "reason": "WithinTolerance", "message": "hold", "from": 3, "to": 3});
            }
            let sp: ScalePolicy = serde_json::from_value(v).expect("policy");
            (format!("data/{name}"), Shown::of(sp))
        };
        let published =
            Published { clock: EngineClock(Some(std::sync::Arc::new(move || now))), ..Published::default() };
        published.snapshots.write().expect("lock").extend([
            policy("fresh", "Enforce", Some(1)),
            policy("stuck", "Enforce", Some(5)),
            policy("dry", "DryRun", Some(30)),
            policy("paused", "Paused", Some(300)),
            policy("new", "Enforce", None),
        ]);
        assert_eq!(count_overdue(&published), 2, "stuck and dry");
    }
    use super::*;

    fn policy() -> Policy {
        let sp: crate::api::ScalePolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
                     "minSize": 1, "maxSize": 10,
                     "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}},
                                 {"name": "requests", "target": 5000, "kind": "total", "query": {"filter": "y"}}]}
        }))
        .expect("policy");
        crate::spec::policy_from_spec(&sp.spec).expect("valid spec")
    }

    /// A deleted policy leaves no series behind, its counts by reason included (they stayed, one
    /// set per policy ever seen), and the label values of a policy are one copy for all its series.
    #[test]
    fn forget_removes_every_series_of_a_policy_and_labels_are_shared() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        for reason in ["ScaleOut", "WithinTolerance", "DryRun", "NotLeader"] {
            m.skip("n", "p", reason);
        }
        let (labels, metrics) = m.labels("n", "p", Some(&policy()));
        assert_eq!(metrics.iter().map(|m| &**m).collect::<Vec<_>>(), ["cpu", "requests"]);
        let reason = ReasonLabels {
            namespace: labels.namespace.clone(),
            policy: labels.policy.clone(),
            reason: "ScaleIn".into(),
        };
        m.decisions.get_or_create(&reason).inc();
        for metric in metrics {
            let l = MetricLabels { namespace: labels.namespace.clone(), policy: labels.policy.clone(), metric };
            m.observed.get_or_create(&l).set(1.0);
        }
        m.current_size.get_or_create(&labels).set(3);
        m.skip("n", "other", "DryRun");
        let (again, metrics) = m.labels("n", "p", None);
        assert!(Arc::ptr_eq(&again.policy, &labels.policy) && Arc::ptr_eq(&again.namespace, &labels.namespace));
        assert_eq!(metrics.len(), 2, "a call without the policy keeps its metrics");

        let series = |text: &str| text.lines().filter(|l| l.contains("policy=\"p\"")).count();
        assert_eq!(series(&encode(&registry)), 4 + 1 + 2 + 1);
        m.forget("n", "p", None);
        let text = encode(&registry);
        assert_eq!(series(&text), 0, "{text}");
        assert!(text.contains("policy=\"other\""), "{text}");
        let names = m.names.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(names.get("n").map(HashMap::len), Some(1), "only the other policy's labels are kept");
    }
}
