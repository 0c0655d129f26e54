//! Prometheus metrics (OpenMetrics text on `/metrics`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::Policy;
use crate::tick::TickReport;

/// Labels of a per-policy series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// Namespace of the policy ("" in standalone mode when none is set).
    pub namespace: String,
    /// Name of the policy.
    pub policy: String,
}

/// Labels of a per-metric series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    /// Namespace of the policy.
    pub namespace: String,
    /// Name of the policy.
    pub policy: String,
    /// The metric's name in the policy.
    pub metric: String,
}

/// Labels carrying a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A `Reason` name or another CamelCase reason.
    pub reason: String,
}

/// Labels of an API error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiErrorLabels {
    /// "monitoring", "bigtable", "gke", "kubernetes".
    pub backend: String,
    /// HTTP status code, or the error kind when there is none.
    pub code: String,
}

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
    /// Decisions by reason.
    pub decisions: Family<ReasonLabels, Counter>,
    /// Resizes that were wanted and not sent, by why.
    pub skipped: Family<ReasonLabels, Counter>,
    /// Failed backend calls by backend and code.
    pub api_errors: Family<ApiErrorLabels, Counter>,
    /// 1 while this instance holds the lease.
    pub leader: Gauge,
    /// Time spent in one reconcile.
    pub reconcile_duration: ReconcileHistogram,
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
        r.register("decisions", "Decisions by reason", m.decisions.clone());
        r.register("skipped_actions", "Resizes wanted but not sent, by reason", m.skipped.clone());
        r.register("api_errors", "Failed backend API calls by backend and code", m.api_errors.clone());
        r.register("leader", "1 while this instance holds the leader lease", m.leader.clone());
        r.register("reconcile_duration_seconds", "Time spent evaluating one policy", m.reconcile_duration.0.clone());
        m
    }

    /// Record what a tick saw and decided.
    pub fn record_report(&self, ns: &str, name: &str, policy: &Policy, r: &TickReport) {
        let labels = PolicyLabels { namespace: ns.into(), policy: name.into() };
        self.current_size.get_or_create(&labels).set(r.observation.size.into());
        self.desired_size.get_or_create(&labels).set(r.decision.desired.into());
        for (i, m) in policy.metrics.iter().enumerate() {
            let l = MetricLabels { namespace: ns.into(), policy: name.into(), metric: m.name.clone() };
            if let Some(v) = r.decision.raw(i) {
                self.observed.get_or_create(&l).set(v);
            }
            if let Some(v) = r.decision.smoothed(policy, i) {
                self.smoothed.get_or_create(&l).set(v);
            }
        }
        self.decisions.get_or_create(&ReasonLabels { reason: r.decision.reason.as_str().into() }).inc();
        // A recommendation the guards held back is a skipped action, named by what held it back.
        if r.decision.recommended.is_some_and(|rec| rec != r.decision.current) && !r.decision.is_resize() {
            self.skip(r.decision.reason.as_str());
        }
        for (_, e) in &r.metric_errors {
            self.api_error(e);
        }
        if let crate::tick::Actuation::Failed { error, .. } = &r.actuation {
            self.api_error(error);
        }
    }

    /// Count a resize that was wanted and not sent.
    pub fn skip(&self, reason: &str) {
        self.skipped.get_or_create(&ReasonLabels { reason: reason.into() }).inc();
    }

    /// Count a failed backend call.
    pub fn api_error(&self, e: &crate::adapters::AdapterError) {
        let code = e.code.map_or_else(|| e.kind.as_str().to_string(), |c| c.to_string());
        self.api_errors.get_or_create(&ApiErrorLabels { backend: e.backend.into(), code }).inc();
    }

    /// Drop the series of a policy that is gone.
    pub fn forget(&self, ns: &str, name: &str, policy: Option<&Policy>) {
        let labels = PolicyLabels { namespace: ns.into(), policy: name.into() };
        self.current_size.remove(&labels);
        self.desired_size.remove(&labels);
        for m in policy.map(|p| p.metrics.as_slice()).unwrap_or_default() {
            let l = MetricLabels { namespace: ns.into(), policy: name.into(), metric: m.name.clone() };
            self.observed.remove(&l);
            self.smoothed.remove(&l);
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
