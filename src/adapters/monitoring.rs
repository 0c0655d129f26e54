//! The Cloud Monitoring metric source: a metric's `query` field (a `projects.timeSeries.list`
//! query), its checks, and the query resolved for a policy (durations parsed, the target's
//! project filled in), which `crate::gcp::CloudMonitoring` answers.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::adapters::MetricQuery;
use crate::adapters::sources::{SourceContext, SourceIssue, SourceKind};
use crate::core::Dur;

/// A Cloud Monitoring `projects.timeSeries.list` query, as it is on the wire (`spec.metrics[].query`).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Project to query; defaults to the target's project (required for a workload target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Monitoring filter, e.g. `metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c1"`.
    #[schemars(length(min = 1))]
    pub filter: String,
    /// Alignment period, at least "60s". Default "60s".
    #[serde(default = "default_alignment_period")]
    #[schemars(regex(pattern = Dur::PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('60s')").message("alignmentPeriod must be at least 60s"))]
    pub alignment_period: String,
    /// Per-series aligner, e.g. ALIGN_MEAN. Default ALIGN_MEAN.
    #[serde(default = "default_aligner")]
    #[schemars(regex(pattern = "^ALIGN_[A-Z0-9_]+$"))]
    pub per_series_aligner: String,
    /// Cross-series reducer, e.g. REDUCE_MEAN. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^REDUCE_[A-Z0-9_]+$"))]
    pub cross_series_reducer: Option<String>,
    /// Fields to group by when reducing, e.g. ["resource.labels.cluster"].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by_fields: Vec<String>,
}

fn default_alignment_period() -> String {
    "60s".to_string()
}
fn default_aligner() -> String {
    "ALIGN_MEAN".to_string()
}

/// The defaults of every optional field and an empty filter (which the checks refuse).
impl Default for MonitoringSpec {
    fn default() -> Self {
        MonitoringSpec {
            project: None,
            filter: String::new(),
            alignment_period: default_alignment_period(),
            per_series_aligner: default_aligner(),
            cross_series_reducer: None,
            group_by_fields: Vec::new(),
        }
    }
}

impl SourceKind for MonitoringSpec {
    const LABEL: &'static str = "query (Cloud Monitoring)";
    const WHAT: &'static str = "a Cloud Monitoring query";
    type Query = MonitoringQuery;

    fn check(&self, ctx: &SourceContext) -> Vec<SourceIssue> {
        let mut issues = Vec::new();
        let mut fail = |field: &str, message: String| issues.push((field.to_string(), message));
        if self.filter.trim().is_empty() {
            fail("filter", "must not be empty; e.g. metric.type=\"bigtable.googleapis.com/cluster/cpu_load\"".into());
        }
        if ctx.project.is_none() && self.project.as_deref().is_none_or(|p| p.trim().is_empty()) {
            fail(
                "project",
                "is required for a workload target (there is no Google Cloud project to take it from); e.g. \"my-project\""
                    .into(),
            );
        }
        match Dur::parse(&self.alignment_period) {
            Err(e) => fail("alignmentPeriod", e),
            Ok(align) if align < Dur::secs(60) => fail(
                "alignmentPeriod",
                format!(
                    "must be at least 60s (got \"{}\"): Cloud Monitoring stores points at most once a minute",
                    self.alignment_period
                ),
            ),
            Ok(_) => {}
        }
        issues
    }

    fn query(&self, ctx: &SourceContext) -> MonitoringQuery {
        MonitoringQuery {
            project: self.project.clone().unwrap_or_else(|| ctx.project.unwrap_or_default().to_string()),
            filter: self.filter.clone(),
            alignment_period: Dur::parse(&self.alignment_period).unwrap_or(Dur::secs(60)),
            per_series_aligner: self.per_series_aligner.clone(),
            cross_series_reducer: self.cross_series_reducer.clone(),
            group_by_fields: self.group_by_fields.clone(),
        }
    }
}

/// A Cloud Monitoring query, resolved (durations parsed, project filled in).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MonitoringQuery {
    /// Project to query.
    pub project: String,
    /// Monitoring filter.
    pub filter: String,
    /// Alignment period.
    pub alignment_period: Dur,
    /// Per-series aligner, e.g. `ALIGN_MEAN`.
    pub per_series_aligner: String,
    /// Cross-series reducer, e.g. `REDUCE_MEAN`.
    pub cross_series_reducer: Option<String>,
    /// Group-by fields.
    pub group_by_fields: Vec<String>,
}

impl MetricQuery {
    /// The Cloud Monitoring query, if this is one.
    pub fn monitoring(&self) -> Option<&MonitoringQuery> {
        match self {
            MetricQuery::Monitoring(q) => Some(q),
            _ => None,
        }
    }
}
