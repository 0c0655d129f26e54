//! Kubernetes Events for resizes and problems, deduplicated per policy.
//!
//! What to announce is a pure function of the tick's outcome ([`for_report`]); [`Dedup`] drops a
//! problem that was already announced on the previous tick, so a metric that stays missing for an
//! hour yields one Event, not sixty. Resizes are always announced.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::adapters::ErrorKind;
use crate::api::ScalePolicy;
use crate::core::{Direction, Policy, Reason};
use crate::tick::{Actuation, MAX_OPERATION, OperationOutcome, TickError, TickReport};

/// One Event to publish about a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyEvent {
    /// Warning for problems, Normal otherwise.
    pub warning: bool,
    /// CamelCase reason, e.g. `ScaledOut`, `MetricsUnavailable`.
    pub reason: String,
    /// What happened, for people.
    pub note: String,
    /// What the controller did: `Resize`, `Evaluate`, `Validate`.
    pub action: String,
}

impl PolicyEvent {
    fn normal(reason: &str, action: &str, note: String) -> PolicyEvent {
        PolicyEvent { warning: false, reason: reason.into(), note, action: action.into() }
    }
    fn warning(reason: &str, action: &str, note: String) -> PolicyEvent {
        PolicyEvent { warning: true, reason: reason.into(), note, action: action.into() }
    }

    /// Resizes are news every time; problems only when they start or change.
    fn always(&self) -> bool {
        matches!(self.reason.as_str(), "ScaledOut" | "ScaledIn")
    }
}

/// The reason for an adapter failure, as an Event reason.
pub fn problem_reason(kind: ErrorKind) -> &'static str {
    match kind {
        k if k.is_access() => k.as_str(),
        ErrorKind::Busy => "TargetBusy",
        ErrorKind::NotFound => "TargetNotFound",
        _ => "ResizeFailed",
    }
}

/// Events for a tick that reached a decision.
pub fn for_report(policy: &Policy, r: &TickReport) -> Vec<PolicyEvent> {
    let mut out = Vec::new();
    let d = &r.decision;
    if !r.metric_errors.is_empty() || d.reason == Reason::MissingData {
        let mut parts: Vec<String> =
            r.metric_errors.iter().map(|(i, e)| format!("{}: {e}", policy.metrics[*i].name)).collect();
        if parts.is_empty() {
            parts.push(d.message(policy));
        }
        let reason = r
            .metric_errors
            .iter()
            .map(|(_, e)| e.kind)
            .find(|k| k.is_access())
            .map_or("MetricsUnavailable", ErrorKind::as_str);
        out.push(PolicyEvent::warning(reason, "Evaluate", parts.join("; ")));
    }
    if let crate::core::FloorInput::Unreadable(why) = &r.floor {
        out.push(PolicyEvent::warning("StorageUnreadable", "Evaluate", format!("scale-in blocked: {why}")));
    }
    if let Some(OperationOutcome::NoEffect { to, size }) = &r.operation {
        out.push(PolicyEvent::warning(
            "ResizeHadNoEffect",
            "Resize",
            format!(
                "the target accepted a resize to {to} and reported it done, but it still has {size} (is something else, such as built-in autoscaling, managing its size, or does the target round {to} back to {size}?); resizes back off: {}",
                d.message(policy)
            ),
        ));
    }
    if !r.clock_skew.is_empty() {
        out.push(PolicyEvent::warning(
            "ClockSkew",
            "Evaluate",
            format!("stored state had timestamps in the future ({}); no longer trusted (clamped to now, or dropped where a future time would delay a scale-out)", r.clock_skew.join(", ")),
        ));
    }
    if let (Some(OperationOutcome::Finished { from, to }), Some(left)) = (&r.operation, &r.progress) {
        out.push(PolicyEvent::warning(
            "ResizePartlyDone",
            "Resize",
            format!("the resize from {from} finished at {to}, not all of it: {left}"),
        ));
    }
    if let Some(OperationOutcome::Failed { to, message }) = &r.operation {
        out.push(PolicyEvent::warning("ResizeFailed", "Resize", format!("resize to {to} failed: {message}")));
    }
    if let Some(OperationOutcome::TimedOut { to, operation, after }) = &r.operation {
        out.push(PolicyEvent::warning("ResizeTimedOut", "Resize", timed_out(*to, operation, *after)));
    }
    match &r.actuation {
        Actuation::Started { .. } => {
            let reason = if d.direction() == Direction::Up { "ScaledOut" } else { "ScaledIn" };
            out.push(PolicyEvent::normal(reason, "Resize", d.message(policy)));
        }
        Actuation::DryRun { .. } => {
            let reason = if d.direction() == Direction::Up { "DryRunScaleOut" } else { "DryRunScaleIn" };
            out.push(PolicyEvent::normal(reason, "Evaluate", format!("DryRun, not applied: {}", d.message(policy))));
        }
        Actuation::Failed { to, error } => out.push(PolicyEvent::warning(
            problem_reason(error.kind),
            "Resize",
            format!("resize {} -> {to} failed: {error}", d.current),
        )),
        Actuation::None => {}
    }
    out
}

/// What a resize whose operation outlived [`MAX_OPERATION`] means, for an Event and a condition.
pub fn timed_out(to: u32, operation: &str, after: crate::core::Dur) -> String {
    format!(
        "the resize to {to} has not finished after {after} (operation {operation}); a resize is followed for at most {MAX_OPERATION}, so it counts as failed and resizes back off; the target may still be busy with it"
    )
}

/// Events for a tick that could not read its target.
pub fn for_tick_error(err: &TickError) -> Vec<PolicyEvent> {
    let reason = match err.adapter().kind {
        k if k.is_access() => k.as_str(),
        ErrorKind::Busy => "TargetBusy",
        ErrorKind::NotFound => "TargetNotFound",
        _ => "TargetUnavailable",
    };
    vec![PolicyEvent::warning(reason, "Evaluate", err.to_string())]
}

/// Remembers, per policy, the problems announced on its last tick.
#[derive(Debug, Default)]
pub struct Dedup {
    last: Mutex<HashMap<String, HashSet<(String, String)>>>,
}

impl Dedup {
    /// The events of this tick worth publishing. Problems seen on the previous tick with the same
    /// reason and note are dropped; a problem that goes away and comes back is announced again.
    pub fn filter(&self, key: &str, events: Vec<PolicyEvent>) -> Vec<PolicyEvent> {
        let now: HashSet<(String, String)> =
            events.iter().filter(|e| !e.always()).map(|e| (e.reason.clone(), e.note.clone())).collect();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let before = last.insert(key.to_string(), now).unwrap_or_default();
        events.into_iter().filter(|e| e.always() || !before.contains(&(e.reason.clone(), e.note.clone()))).collect()
    }

    /// Forget a policy (deleted).
    pub fn forget(&self, key: &str) {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// Where events go: the Kubernetes API in a cluster, the log in standalone mode.
pub trait EventSink: Send + Sync {
    /// Publish one event about `sp`. Failures are logged, never fatal: an Event is a courtesy.
    fn publish(&self, sp: &ScalePolicy, ev: &PolicyEvent) -> impl Future<Output = ()> + Send;
}

/// Events through kube's [`Recorder`] (`events.k8s.io/v1`).
#[derive(Clone)]
pub struct KubeEvents {
    recorder: Recorder,
}

impl KubeEvents {
    /// A recorder reporting as `ebbflow` from this pod.
    pub fn new(client: kube::Client, instance: Option<String>) -> KubeEvents {
        KubeEvents { recorder: Recorder::new(client, Reporter { controller: "ebbflow".into(), instance }) }
    }
}

impl EventSink for KubeEvents {
    async fn publish(&self, sp: &ScalePolicy, ev: &PolicyEvent) {
        let event = Event {
            type_: if ev.warning { EventType::Warning } else { EventType::Normal },
            reason: ev.reason.clone(),
            note: Some(ev.note.clone()),
            action: ev.action.clone(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &sp.object_ref(&())).await {
            tracing::warn!(error = %e, reason = %ev.reason, "publishing an Event failed");
        }
    }
}

/// Events as log lines (standalone mode has no API server).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogEvents;

impl EventSink for LogEvents {
    async fn publish(&self, _: &ScalePolicy, ev: &PolicyEvent) {
        if ev.warning {
            tracing::warn!(reason = %ev.reason, action = %ev.action, "{}", ev.note);
        } else {
            tracing::info!(reason = %ev.reason, action = %ev.action, "{}", ev.note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(reason: &str, note: &str) -> PolicyEvent {
        PolicyEvent::warning(reason, "Evaluate", note.into())
    }

    /// The same problem on consecutive ticks is announced once; when it clears and comes back it
    /// is announced again; resizes are never dropped.
    #[test]
    fn dedup_announces_problems_once_per_episode() {
        let d = Dedup::default();
        assert_eq!(d.filter("ns/a", vec![ev("MetricsUnavailable", "cpu")]).len(), 1);
        assert_eq!(d.filter("ns/a", vec![ev("MetricsUnavailable", "cpu")]).len(), 0);
        // Another policy has its own memory.
        assert_eq!(d.filter("ns/b", vec![ev("MetricsUnavailable", "cpu")]).len(), 1);
        // A different message is news.
        assert_eq!(d.filter("ns/a", vec![ev("MetricsUnavailable", "cpu, mem")]).len(), 1);
        assert_eq!(d.filter("ns/a", vec![]).len(), 0);
        assert_eq!(d.filter("ns/a", vec![ev("MetricsUnavailable", "cpu, mem")]).len(), 1);
        let up = PolicyEvent::normal("ScaledOut", "Resize", "3 -> 5".into());
        assert_eq!(d.filter("ns/a", vec![up.clone()]).len(), 1);
        assert_eq!(d.filter("ns/a", vec![up]).len(), 1);
    }

    /// A refused metric query says PermissionDenied (with the permission in the note), an
    /// unreadable storage floor and a resize without effect each get their own warning.
    #[test]
    fn problems_are_named_for_what_they_are() {
        use crate::adapters::{AdapterError, TargetObservation};
        use crate::core::{FloorInput, Inputs, MetricInput, decide};
        let policy = crate::spec::policy_from_spec(
            &serde_json::from_value(serde_json::json!({
                "target": {"bigtableCluster": {"project": "p", "instance": "i", "cluster": "c"}},
                "minSize": 1, "maxSize": 10,
                "metrics": [{"name": "cpu", "target": 0.6, "query": {"filter": "x"}}]
            }))
            .expect("spec"),
        )
        .expect("policy");
        let input = [MetricInput { samples: &[], problem: Some(crate::core::DataProblem::QueryFailed) }];
        let d = decide(
            &policy,
            crate::core::PolicyState::default(),
            &Inputs {
                current: 3,
                metrics: &input,
                floor: crate::core::Floor::Unknown,
                busy: false,
                serving: None,
                sizes: crate::core::SizeRule::Any,
            },
            crate::core::Ts(0),
        );
        let denied = AdapterError::new(
            "monitoring",
            ErrorKind::PermissionDenied,
            "permission denied: lacks IAM permission monitoring.timeSeries.list",
        );
        let report = TickReport {
            observation: TargetObservation {
                size: 3,
                busy: false,
                sizes: crate::core::SizeRule::Any,
                floor: crate::adapters::FloorMetric::None,
                members: Vec::new(),
                serving: None,
                steered_max: None,
            },
            floor: FloorInput::Unreadable("storage utilization query failed: 403".into()),
            operation: Some(OperationOutcome::NoEffect { to: 5, size: 3 }),
            progress: None,
            metric_errors: vec![(0, denied)],
            decision: d,
            actuation: Actuation::None,
            clock_skew: vec!["budgetSince"],
        };
        let events = for_report(&policy, &report);
        let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["PermissionDenied", "StorageUnreadable", "ResizeHadNoEffect", "ClockSkew"]);
        assert!(events[0].note.contains("monitoring.timeSeries.list"), "{}", events[0].note);
        assert!(events.iter().all(|e| e.warning));

        // An operation followed past the bound: a warning of its own, naming it and the bound.
        let report = TickReport {
            operation: Some(OperationOutcome::TimedOut {
                to: 5,
                operation: "operations/x/operations/7".into(),
                after: MAX_OPERATION,
            }),
            metric_errors: Vec::new(),
            floor: FloorInput::None,
            clock_skew: Vec::new(),
            ..report
        };
        let events = for_report(&policy, &report);
        let found: Vec<&PolicyEvent> = events.iter().filter(|e| e.reason == "ResizeTimedOut").collect();
        assert_eq!(found.len(), 1, "{events:?}");
        assert!(found[0].warning);
        let note = &found[0].note;
        assert!(note.contains("operations/x/operations/7") && note.contains("at most 2h"), "{note}");
    }
}
