//! The write fence and the conflict rules: what must hold before a decided resize is sent.
//!
//! One policy owns a target: when several aim at the same one, the oldest (by
//! creationTimestamp, then namespace/name) acts and the others stand by
//! ([`conflicting_owner`]). Before a resize, the fence checks leadership and records the
//! intended size in status under the resourceVersion the decision was made from, so a resize is
//! never sent by a stale leader or on a stale read; leadership is checked again after the write.

use kube::ResourceExt;

use crate::api::{ScalePolicy, ScalePolicyStatus, TargetRef};
use crate::controller::events::EventSink;
use crate::controller::reconcile::{Backends, Engine, StatusStore, StoreError, key};
use crate::controller::status::{self, Meta};
use crate::core::{Decision, Policy, PolicyState};
use crate::tick::BeforeActuate;

/// What makes two policies aim at the same target. Workloads are namespaced, so their namespace
/// is part of the identity; cloud targets are global.
pub fn target_identity(sp: &ScalePolicy) -> String {
    sp.spec.target.kind().identity(&sp.namespace().unwrap_or_default())
}

/// Whether two targets have the same kind and innermost name; a necessary condition for being
/// the same target that needs no allocation.
pub(crate) fn same_leaf(a: &TargetRef, b: &TargetRef) -> bool {
    let (a, b) = (a.kind(), b.kind());
    // The leaf first: it tells most targets apart (the field is one of a handful of names).
    a.leaf() == b.leaf() && a.field() == b.field()
}

/// The policy that owns `sp`'s target when it is not `sp`: the oldest by creationTimestamp
/// (ties by namespace/name).
pub fn conflicting_owner<'a>(
    sp: &ScalePolicy,
    peers: impl IntoIterator<Item = &'a ScalePolicy>,
) -> Option<&'a ScalePolicy> {
    let me = target_identity(sp);
    let rank = |p: &ScalePolicy| (p.metadata.creation_timestamp.as_ref().map(|t| t.0), key(p));
    let mine = rank(sp);
    peers
        .into_iter()
        // The cheap check first: every reconcile scans all policies.
        .filter(|p| same_leaf(&p.spec.target, &sp.spec.target))
        .filter(|p| key(p) != key(sp) && target_identity(p) == me)
        .filter(|p| rank(p) < mine)
        .min_by_key(|p| rank(p))
}

/// Why the fence stopped a resize.
#[derive(Debug)]
pub enum Refusal {
    /// This instance is no longer the leader.
    NotLeader,
    /// The intent could not be recorded.
    Store(StoreError),
}

/// The write fence between deciding and resizing: leadership, then the intended size recorded in
/// status under the resourceVersion the decision was made from.
pub(super) struct Fence<'a, B, S, E> {
    pub(super) engine: &'a Engine<B, S, E>,
    pub(super) sp: &'a ScalePolicy,
    pub(super) policy: &'a Policy,
    pub(super) prev: &'a ScalePolicyStatus,
    pub(super) meta: Meta<'a>,
    pub(super) rv: Option<&'a str>,
    pub(super) wrote: bool,
}

impl<B: Backends, S: StatusStore, E: EventSink> BeforeActuate for Fence<'_, B, S, E> {
    type Refusal = Refusal;

    async fn before_actuate(&mut self, decision: &Decision, intent: &PolicyState) -> Result<(), Refusal> {
        if !self.engine.leadership.owns(self.sp) {
            return Err(Refusal::NotLeader);
        }
        let status = status::intent(self.prev, self.policy, decision, intent, self.meta);
        self.engine.write(self.sp, status, self.rv).await.map_err(Refusal::Store)?;
        // Leadership can be lost while the write was in flight; the write is harmless (it only
        // records an intent), the resize would not be.
        if !self.engine.leadership.owns(self.sp) {
            return Err(Refusal::NotLeader);
        }
        self.wrote = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Ts;

    fn sp(ns: &str, name: &str, created: i64, target: serde_json::Value) -> ScalePolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": name, "namespace": ns,
                          "creationTimestamp": Ts(created).to_rfc3339()},
            "spec": {"target": target, "minSize": 1, "maxSize": 5,
                     "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}]}
        }))
        .expect("policy")
    }

    /// The oldest policy on a target wins; workloads of the same name in two namespaces are two
    /// targets; cloud targets are global.
    #[test]
    fn oldest_policy_on_a_target_wins() {
        let bt = serde_json::json!({"bigtableCluster": {"project": "p", "instance": "i", "cluster": "c"}});
        let old = sp("a", "first", 1_000_000, bt.clone());
        let young = sp("b", "second", 2_000_000, bt);
        let all = [old.clone(), young.clone()];
        assert_eq!(conflicting_owner(&young, &all).map(key), Some("a/first".to_string()));
        assert!(conflicting_owner(&old, &all).is_none());

        let w = serde_json::json!({"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}});
        let w1 = sp("a", "w1", 1_000_000, w.clone());
        let w2 = sp("b", "w2", 2_000_000, w.clone());
        let w3 = sp("a", "w3", 3_000_000, w);
        let all = [w1.clone(), w2.clone(), w3.clone()];
        assert!(conflicting_owner(&w2, &all).is_none());
        assert_eq!(conflicting_owner(&w3, &all).map(key), Some("a/w1".to_string()));
    }
}
