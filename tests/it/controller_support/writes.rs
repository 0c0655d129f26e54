//! How the API server applies a write, shared by the mock API servers of the tests
//! (`watch.rs`) and of the replicas benchmark (`benches/replicas/apiserver.rs`, which includes
//! this file by path), so the two cannot drift apart.

use serde_json::Value;

/// JSON merge patch (RFC 7386): objects merge, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Whether a write's resourceVersion precondition `want` (absent: none) fails against `object`.
pub fn stale(want: &Value, object: &Value) -> bool {
    !want.is_null() && *want != object["metadata"]["resourceVersion"]
}
