//! The Kubernetes metric source: a metric's `kubernetes` field (a number the cluster knows: a
//! workload's replicas, a count of Pods, a number at a path of an object), its checks, and the
//! query resolved with the policy's namespace. The adapter that answers it reads a watch cache
//! (`crate::controller::kubemetrics`); the simulator replays it from a trace like any other
//! metric.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::adapters::sources::{SourceContext, SourceIssue, SourceKind};

/// A number read from Kubernetes in the policy's namespace. Exactly one variant.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum KubernetesQuery {
    /// The replicas of a workload (Deployment, StatefulSet, ...).
    Replicas(ReplicasQuery),
    /// The number of Pods matching a label selector, in the given phases.
    Pods(PodsQuery),
    /// A number at a dotted path of one object, e.g. `status.replicas`.
    Field(FieldQuery),
}

/// The replicas of a workload in the policy's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ReplicasQuery {
    /// API version of the workload, e.g. "apps/v1".
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// Kind of the workload, e.g. "Deployment".
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name of the workload.
    #[schemars(length(min = 1))]
    pub name: String,
    /// desired: `spec.replicas` (what the workload was asked for, which leads the load); ready:
    /// `status.readyReplicas`. Default desired.
    #[serde(default)]
    pub count: ReplicaCount,
}

/// Which replica count of a workload.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ReplicaCount {
    /// `spec.replicas`.
    #[default]
    Desired,
    /// `status.readyReplicas` (absent means 0: Kubernetes leaves zero counts out).
    Ready,
}

/// Pods in the policy's namespace matching a label selector.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct PodsQuery {
    /// Labels the Pods must all carry, e.g. {app: subscriber}. At least one.
    #[schemars(length(min = 1))]
    pub match_labels: BTreeMap<String, String>,
    /// Phases counted. Default [Running].
    #[serde(default = "default_phases")]
    #[schemars(length(min = 1))]
    pub phases: Vec<PodPhase>,
}

fn default_phases() -> Vec<PodPhase> {
    vec![PodPhase::Running]
}

/// A Pod phase.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PodPhase {
    /// Accepted, not all containers running yet (scheduling, pulling images).
    Pending,
    /// Bound to a node, containers running.
    Running,
    /// All containers terminated successfully.
    Succeeded,
    /// All containers terminated, at least one in failure.
    Failed,
    /// The state could not be obtained.
    Unknown,
}

impl PodPhase {
    /// The phase as Kubernetes writes it in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }
}

/// A number at a dotted path of one object in the policy's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct FieldQuery {
    /// API version of the object, e.g. "apps/v1" or "v1".
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// Kind of the object, e.g. "Deployment".
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name of the object.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Dotted path to a number (or a string holding one), e.g. `status.replicas` or
    /// `status.conditions.0.observedGeneration`; a leading `.` or `$.` is allowed. A path that
    /// is absent is missing data, never zero.
    #[schemars(length(min = 1))]
    pub path: String,
}

impl SourceKind for KubernetesQuery {
    const LABEL: &'static str = "kubernetes";
    const WHAT: &'static str = "kubernetes (replicas, pods or field)";
    const NEEDS_KUBE: bool = true;
    type Query = KubernetesMetric;

    fn check(&self, _: &SourceContext) -> Vec<SourceIssue> {
        let mut issues = Vec::new();
        let mut names = |field: &str, fields: &[(&str, &str)]| {
            for (f, v) in fields {
                if v.trim().is_empty() {
                    issues.push((format!("{field}.{f}"), "must not be empty".to_string()));
                }
            }
        };
        match self {
            KubernetesQuery::Replicas(r) => {
                names("replicas", &[("apiVersion", &r.api_version), ("kind", &r.kind), ("name", &r.name)])
            }
            KubernetesQuery::Field(f) => {
                names("field", &[("apiVersion", &f.api_version), ("kind", &f.kind), ("name", &f.name)]);
                if parse_path(&f.path).is_none() {
                    issues.push((
                        "field.path".to_string(),
                        format!(
                            "{} is not a dotted path; write e.g. status.replicas or status.conditions.0.value (no filters, wildcards or brackets)",
                            crate::excerpt::quoted(&f.path)
                        ),
                    ));
                }
            }
            KubernetesQuery::Pods(p) => {
                if p.match_labels.is_empty() {
                    issues.push((
                        "pods.matchLabels".to_string(),
                        "needs at least one label, e.g. {app: subscriber}".to_string(),
                    ));
                }
                if p.phases.is_empty() {
                    issues.push((
                        "pods.phases".to_string(),
                        "needs at least one phase, e.g. [Running, Pending]".to_string(),
                    ));
                }
            }
        }
        issues
    }

    fn query(&self, ctx: &SourceContext) -> KubernetesMetric {
        KubernetesMetric::new(ctx.namespace, self)
    }
}

/// A Kubernetes metric query, resolved: the spec's query in the policy's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubernetesMetric {
    /// The policy's namespace: every object read lives there.
    pub namespace: String,
    /// What to read.
    pub query: KubernetesQuery,
}

impl KubernetesMetric {
    /// The query in `namespace`.
    pub fn new(namespace: &str, query: &KubernetesQuery) -> KubernetesMetric {
        KubernetesMetric { namespace: namespace.to_string(), query: query.clone() }
    }

    /// The object this query reads, described for messages, e.g. `deployment subscriber`.
    pub fn describe(&self) -> String {
        match &self.query {
            KubernetesQuery::Replicas(r) => format!("{} {}/{}", r.kind.to_lowercase(), self.namespace, r.name),
            KubernetesQuery::Field(f) => {
                format!("{} {}/{} at {}", f.kind.to_lowercase(), self.namespace, f.name, f.path)
            }
            KubernetesQuery::Pods(p) => {
                let labels: Vec<String> = p.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("pods in {} with {}", self.namespace, labels.join(","))
            }
        }
    }
}

/// The dotted path a replicas query reads.
pub fn replicas_path(count: ReplicaCount) -> &'static str {
    match count {
        ReplicaCount::Desired => "spec.replicas",
        ReplicaCount::Ready => "status.readyReplicas",
    }
}

/// Split a dotted path into its segments. Accepted: `status.replicas`, `.status.replicas`,
/// `$.status.replicas`, `{.status.replicas}` (kubectl's form) and numeric segments for list
/// items (`status.conditions.0.status`). Not accepted: filters, wildcards, brackets (`None`).
pub fn parse_path(path: &str) -> Option<Vec<&str>> {
    let p = path.trim();
    let p = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let p = p.strip_prefix('.').unwrap_or(p);
    if p.is_empty() {
        return None;
    }
    let segments: Vec<&str> = p.split('.').collect();
    let ok = segments.iter().all(|s| !s.is_empty() && !s.contains(['[', ']', '*', '?', '@', '(', ')', ' ']));
    ok.then_some(segments)
}

/// The number at `path` of `object`: a JSON number, or a string holding one (quantities such as
/// `"12"`). `None` when the path is absent or holds something else.
pub fn number_at(object: &serde_json::Value, path: &[&str]) -> Option<f64> {
    let mut v = object;
    for seg in path {
        v = match v {
            serde_json::Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            other => other.get(*seg)?,
        };
    }
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_in_the_documented_forms_read_numbers_and_nothing_else() {
        let o = json!({"spec": {"replicas": 4}, "status": {"conditions": [{"n": "7"}], "flag": true}});
        for p in ["spec.replicas", ".spec.replicas", "$.spec.replicas", "{.spec.replicas}"] {
            assert_eq!(number_at(&o, &parse_path(p).expect(p)), Some(4.0), "{p}");
        }
        assert_eq!(number_at(&o, &parse_path("status.conditions.0.n").expect("path")), Some(7.0));
        assert_eq!(number_at(&o, &parse_path("status.readyReplicas").expect("path")), None, "absent is not 0");
        assert_eq!(number_at(&o, &parse_path("status.flag").expect("path")), None);
        for bad in ["", "$", "status.conditions[0]", "status..x", "items[*].x"] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }
}
