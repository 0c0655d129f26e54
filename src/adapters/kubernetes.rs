//! The Kubernetes metric query: a number the cluster knows (a workload's replicas, a count of
//! Pods, a number at a path of an object), resolved with the policy's namespace. The source that
//! answers it reads a watch cache (`crate::controller::kubemetrics`); the simulator replays it
//! from a trace like any other metric.

use crate::api::{self, KubernetesQuery, ReplicaCount};

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
    pub fn new(namespace: &str, query: &api::KubernetesQuery) -> KubernetesMetric {
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
