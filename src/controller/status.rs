//! Status: a pure function from what a tick saw and did to the `ScalePolicyStatus` to store.
//!
//! Every builder starts from the previous status, because status is written with server-side
//! apply: a field the controller owned and leaves out is deleted, and `state` must survive ticks
//! that could not decide (invalid spec, unreadable target).

use std::collections::BTreeMap;

use crate::api::{Condition, CooldownStatus, DecisionRecord, MemberStatus, MetricReading, ScalePolicyStatus};
use crate::core::{Decision, Mode, Policy, PolicyState, Reason, Ts};
use crate::readout::day;
use crate::spec::PolicyError;
use crate::tick::{Actuation, OperationOutcome, TickError, TickReport};

/// Condition type: the policy is valid, unique for its target, and its target is readable.
pub const READY: &str = "Ready";
/// Condition type: the target can be resized now (no resize running, no cooldown, no failure).
pub const ABLE_TO_SCALE: &str = "AbleToScale";
/// Condition type: the metrics are flowing and drive the size.
pub const SCALING_ACTIVE: &str = "ScalingActive";
/// Condition type: the size the metrics ask for is cut by a bound, a step limit or the budget.
pub const SCALING_LIMITED: &str = "ScalingLimited";

/// Identity of the object a status is computed for.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `TargetRef::describe()`.
    pub target: &'a str,
    /// When the status is computed.
    pub now: Ts,
}

/// Set a condition, keeping its `lastTransitionTime` unless its status flips.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: Option<bool>,
    reason: &str,
    message: impl Into<String>,
    meta: Meta<'_>,
) {
    let status = match ok {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    let previous = conditions.iter().position(|c| c.type_ == type_);
    let last_transition_time = match previous.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => meta.now.to_rfc3339(),
    };
    let c = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        last_transition_time,
        observed_generation: meta.generation,
    };
    match previous {
        Some(i) => conditions[i] = c,
        None => conditions.push(c),
    }
}

/// Status after a tick that reached a decision.
pub fn from_report(
    prev: &ScalePolicyStatus,
    policy: &Policy,
    report: &TickReport,
    meta: Meta<'_>,
) -> ScalePolicyStatus {
    let d = &report.decision;
    let state = &d.state;
    let mut s = base(prev, meta);
    s.current_size = Some(report.observation.size);
    s.live_size = report.observation.serving;
    s.desired_size = Some(match &report.actuation {
        Actuation::Started { to, .. } | Actuation::DryRun { to } => *to,
        Actuation::Failed { .. } | Actuation::None => state.in_flight.as_ref().map_or(d.desired, |f| f.to),
    });
    s.last_decision = Some(decision_record(policy, d));
    remember(&mut s.recent_decisions, decision_record(policy, d));
    s.cooldown = cooldown(policy, state, meta.now);
    s.operation = state.in_flight.as_ref().and_then(|f| f.operation.clone());
    s.operation_progress = s.operation.as_ref().and(report.progress.clone());
    s.history = Some(history(prev, &s, policy, report, meta.now));
    s.state = Some(state.clone());
    s.members = report
        .observation
        .members
        .iter()
        .map(|m| MemberStatus {
            name: m.name.clone(),
            size: m.size,
            state: m.state.clone(),
            operation: m.operation.clone(),
            ..MemberStatus::default()
        })
        .collect();

    set_condition(&mut s.conditions, READY, Some(true), "Reconciled", format!("evaluating {}", meta.target), meta);
    able_to_scale(&mut s.conditions, policy, report, meta);
    scaling_active(&mut s.conditions, policy, report, meta);
    scaling_limited(&mut s.conditions, policy, d, meta);
    crate::controller::known::note_status(&mut s, policy, meta);
    s
}

/// Status recorded just before a resize is sent: the intended size and the state with the resize
/// begun, so a restarted controller resumes instead of resizing again.
pub fn intent(
    prev: &ScalePolicyStatus,
    policy: &Policy,
    decision: &Decision,
    intent: &PolicyState,
    meta: Meta<'_>,
) -> ScalePolicyStatus {
    let mut s = base(prev, meta);
    s.current_size = Some(decision.current);
    s.desired_size = Some(decision.desired);
    s.last_decision = Some(decision_record(policy, decision));
    remember(&mut s.recent_decisions, decision_record(policy, decision));
    s.cooldown = cooldown(policy, intent, meta.now);
    s.operation = None;
    s.operation_progress = None;
    let mut h = s.history.take().unwrap_or_default();
    day::resize_started(&mut h, decision.at, decision.current, decision.desired, decision.reason.as_str());
    s.history = Some(h);
    s.state = Some(intent.clone());
    set_condition(&mut s.conditions, READY, Some(true), "Reconciled", format!("evaluating {}", meta.target), meta);
    set_condition(
        &mut s.conditions,
        ABLE_TO_SCALE,
        Some(false),
        Reason::ResizeInProgress.as_str(),
        format!("resizing {} -> {}", decision.current, decision.desired),
        meta,
    );
    s
}

/// Status for a spec that does not validate: every field issue in the message; the state is kept.
pub fn invalid_spec(prev: &ScalePolicyStatus, err: &PolicyError, meta: Meta<'_>) -> ScalePolicyStatus {
    let mut s = base(prev, meta);
    let message = err.issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ");
    set_condition(&mut s.conditions, READY, Some(false), "InvalidSpec", message, meta);
    s
}

/// Status for the younger of two policies on one target: it is refused, naming the other.
pub fn target_conflict(prev: &ScalePolicyStatus, owner: &str, meta: Meta<'_>) -> ScalePolicyStatus {
    let mut s = base(prev, meta);
    let message =
        format!("{} is already scaled by ScalePolicy {owner} (the oldest policy on a target wins)", meta.target);
    set_condition(&mut s.conditions, READY, Some(false), "TargetConflict", message, meta);
    set_condition(&mut s.conditions, ABLE_TO_SCALE, Some(false), "TargetConflict", "refused", meta);
    s
}

/// Status after a tick that could not read its target or its resize operation.
pub fn target_error(prev: &ScalePolicyStatus, err: &TickError, meta: Meta<'_>) -> ScalePolicyStatus {
    let mut s = base(prev, meta);
    let reason = err.adapter().kind.as_str();
    set_condition(&mut s.conditions, READY, Some(false), reason, err.to_string(), meta);
    set_condition(&mut s.conditions, ABLE_TO_SCALE, Some(false), reason, err.to_string(), meta);
    s
}

/// The day's history with this tick folded in: its bucket, the resize it started, and the end
/// of the resize that was running (with how long it took).
fn history(
    prev: &ScalePolicyStatus,
    s: &ScalePolicyStatus,
    policy: &Policy,
    report: &TickReport,
    now: Ts,
) -> crate::api::StatusHistory {
    let d = &report.decision;
    let rec = s.last_decision.as_ref();
    let first = policy.metrics.first().and_then(|m| rec.and_then(|r| r.metrics.get(&m.name)));
    let reading = day::Reading {
        observed: first.and_then(|m| m.raw),
        smoothed: first.and_then(|m| m.smoothed),
        serving: rec.map(|r| r.serving.unwrap_or(r.from)),
        desired: s.desired_size,
    };
    let mut h = day::fold(prev.history.as_ref(), now, reading);
    // The previous resize ended when its operation's outcome says so, even if this tick started
    // the next one (then the state has a resize in flight again, and the first was never marked
    // finished: the timeline showed it "still running").
    let ended = match &report.operation {
        Some(OperationOutcome::Running) => false,
        Some(_) => true,
        None => d.state.in_flight.is_none(),
    };
    if let Some(f) = prev.state.as_ref().and_then(|st| st.in_flight.as_ref())
        && ended
    {
        let error = match &report.operation {
            Some(OperationOutcome::Failed { message, .. }) => Some(message.clone()),
            Some(OperationOutcome::NoEffect { size, .. }) => Some(format!("no effect: the target still has {size}")),
            Some(OperationOutcome::TimedOut { operation, after, .. }) => {
                Some(format!("operation {operation} not finished after {after}; no longer followed"))
            }
            _ => None,
        };
        day::resize_finished(&mut h, f.started_at, now, error.as_deref());
    }
    match &report.actuation {
        Actuation::Started { to, done, .. } => {
            day::resize_started(&mut h, d.at, d.current, *to, d.reason.as_str());
            if *done {
                day::resize_finished(&mut h, d.at, now, None);
            }
        }
        Actuation::Failed { to, error } => {
            day::resize_started(&mut h, d.at, d.current, *to, d.reason.as_str());
            day::resize_finished(&mut h, d.at, now, Some(&error.to_string()));
        }
        Actuation::None | Actuation::DryRun { .. } => {}
    }
    h
}

fn base(prev: &ScalePolicyStatus, meta: Meta<'_>) -> ScalePolicyStatus {
    let mut s = prev.clone();
    s.observed_generation = meta.generation;
    s.target = Some(meta.target.to_string());
    s
}

/// The decision as shown in status.
pub fn decision_record(policy: &Policy, d: &Decision) -> DecisionRecord {
    let mut metrics = BTreeMap::new();
    for (i, (m, o)) in policy.metrics.iter().zip(&d.metrics).enumerate() {
        // On the scale of `smoothed`: per node across the current size, or the total.
        let scale = |demand: f64| match m.kind {
            crate::core::MetricKind::PerNode => demand / f64::from(d.serving.unwrap_or(d.current).max(1)),
            crate::core::MetricKind::Total => demand,
        };
        metrics.insert(
            m.name.clone(),
            MetricReading {
                raw: d.raw(i),
                smoothed: d.smoothed(policy, i),
                target: m.target,
                recommended: o.recommended,
                spike: o.spike.is_some(),
                effective_target: o.effective_target,
                noise: o.noise,
                forecast: o.forecast,
                forecast_demand: o.forecast_demand.map(scale),
            },
        );
    }
    // Nodes added by a scale-out serve once warmed up and, where a per-node metric judges them,
    // once it showed them serving (the decision may also have read its newest sample on nodes
    // that sample leaned to); while a resize runs the old size serves.
    let base = d.state.in_flight.as_ref().map_or(d.current, |f| f.from);
    let serving = PolicyState::capacity_at(&d.state.resizes, d.at, base, policy.warmup);
    DecisionRecord {
        time: d.at.to_rfc3339(),
        direction: d.direction().as_str().to_string(),
        reason: d.reason.as_str().to_string(),
        message: d.message(policy),
        from: d.current,
        to: d.desired,
        metrics,
        serving: (serving != d.current).then_some(serving),
    }
}

/// Add `record` to the recent decisions (for `ebbflow status NAME` and the dashboard). A decision
/// with the same reason and sizes as the newest entry is not added, so the entry keeps the time
/// its state began and a steady state does not push older changes out; the intent and the
/// outcome of one tick share an entry.
pub fn remember(recent: &mut Vec<DecisionRecord>, mut record: DecisionRecord) {
    record.metrics.clear();
    record.serving = None;
    if let Some(last) = recent.last_mut() {
        if last.time == record.time {
            *last = record;
            return;
        }
        if (last.reason.as_str(), last.from, last.to) == (record.reason.as_str(), record.from, record.to) {
            return;
        }
    }
    recent.push(record);
    let excess = recent.len().saturating_sub(crate::api::RECENT_DECISIONS);
    recent.drain(..excess);
}

/// Cooldown timers from the state, by the core's own rules (the ones `decide` applies); `None`
/// when no timer is set.
pub fn cooldown(policy: &Policy, state: &PolicyState, now: Ts) -> Option<CooldownStatus> {
    let out = state.scale_out_allowed_at(policy);
    let scale_in = state.scale_in_allowed_at(policy);
    // Timers in the past say nothing a reader needs; dropping them keeps status stable.
    let future = |t: Option<Ts>| t.filter(|t| *t > now).map(Ts::to_rfc3339);
    let c = CooldownStatus {
        scale_out_allowed_at: future(out),
        scale_in_allowed_at: future(scale_in),
        spike_hold_until: future(state.spike_hold_until),
    };
    (c != CooldownStatus::default()).then_some(c)
}

fn able_to_scale(conditions: &mut Vec<Condition>, policy: &Policy, report: &TickReport, meta: Meta<'_>) {
    let d = &report.decision;
    let (ok, reason, message): (bool, &str, String) = match (&report.actuation, &report.operation) {
        (Actuation::Failed { to, error }, _) => {
            let reason = match error.kind {
                k if k.is_access() => k.as_str(),
                crate::adapters::ErrorKind::Busy => "TargetBusy",
                _ => "ResizeFailed",
            };
            (false, reason, format!("resize to {to} failed: {error}"))
        }
        (Actuation::Started { to, done: false, .. }, _) => {
            (false, Reason::ResizeInProgress.as_str(), format!("resizing {} -> {to}", d.current))
        }
        (_, Some(OperationOutcome::Failed { to, message })) => {
            (false, "ResizeFailed", format!("resize to {to} failed: {message}"))
        }
        (_, Some(OperationOutcome::Finished { from, to })) if report.progress.is_some() => (
            true,
            "ResizePartlyDone",
            format!(
                "the resize from {from} finished at {to}, not all of it: {}",
                report.progress.as_deref().unwrap_or_default()
            ),
        ),
        (_, Some(OperationOutcome::TimedOut { to, operation, after })) => {
            (false, "ResizeTimedOut", crate::controller::events::timed_out(*to, operation, *after))
        }
        (_, Some(OperationOutcome::NoEffect { to, size })) => (
            false,
            "ResizeHadNoEffect",
            format!(
                "the target accepted a resize to {to} and reported it done, but it still has {size}; {}",
                d.message(policy)
            ),
        ),
        _ => match d.reason {
            Reason::ResizeInProgress
            | Reason::ScaleOutCooldown
            | Reason::ScaleInCooldown
            | Reason::SpikeHold
            | Reason::GuardMetricHigh
            | Reason::ResizeBudgetExhausted
            | Reason::ResizeBackoff
            | Reason::ScaleInPaused
            | Reason::ScaleOutPaused
            | Reason::Frozen => (false, d.reason.as_str(), d.message(policy)),
            _ if policy.mode == Mode::DryRun => {
                (true, "DryRun", "DryRun: decisions are reported, never applied".into())
            }
            _ => (true, "ReadyForNewScale", "the target can be resized".into()),
        },
    };
    set_condition(conditions, ABLE_TO_SCALE, Some(ok), reason, message, meta);
}

fn scaling_active(conditions: &mut Vec<Condition>, policy: &Policy, report: &TickReport, meta: Meta<'_>) {
    let d = &report.decision;
    let any_missing = d.metrics.iter().take(policy.metrics.len()).any(|m| m.missing.is_some());
    let (ok, reason) = match d.reason {
        Reason::Paused => (false, Reason::Paused.as_str()),
        Reason::MissingData => (false, Reason::MissingData.as_str()),
        _ if any_missing && d.recommended.is_none() => (false, Reason::MissingData.as_str()),
        r => (true, r.as_str()),
    };
    let mut message = if reason == Reason::MissingData.as_str() && d.reason != Reason::MissingData {
        let names: Vec<&str> = policy
            .metrics
            .iter()
            .zip(&d.metrics)
            .filter(|(_, o)| o.missing.is_some())
            .map(|(p, _)| p.name.as_str())
            .collect();
        format!("missing data for {}", names.join(", "))
    } else {
        d.message(policy)
    };
    // Say why a query failed (a 403 names the IAM permission), not only that it did.
    for (i, e) in &report.metric_errors {
        message.push_str(&format!("; {}: {e}", policy.metrics[*i].name));
    }
    let access = report.metric_errors.iter().map(|(_, e)| e.kind).find(|k| k.is_access());
    let reason = if let Some(kind) = access {
        (false, kind.as_str())
    } else if let (true, crate::core::FloorInput::Unreadable(why)) = (ok, &report.floor) {
        // Scaling works, but scale-in is blocked until the floor can be read: not OK.
        message = format!("scale-in blocked: {why}; {message}");
        (false, "StorageUnreadable")
    } else {
        (ok, reason)
    };
    set_condition(conditions, SCALING_ACTIVE, Some(reason.0), reason.1, message, meta);
}

fn scaling_limited(conditions: &mut Vec<Condition>, policy: &Policy, d: &Decision, meta: Meta<'_>) {
    let limited = d.limited_by.is_some()
        || matches!(
            d.reason,
            Reason::AtMaxSize
                | Reason::AtMinSize
                | Reason::AtStorageFloor
                | Reason::RaiseToMinSize
                | Reason::LowerToMaxSize
                | Reason::RaiseToStorageFloor
                | Reason::ResizeBudgetExhausted
                | Reason::ScheduledMinimum
                | Reason::ScheduledMaximum
                | Reason::OverrideMinimum
                | Reason::OverrideMaximum
        );
    let reason = match (limited, d.limited_by) {
        (true, Some(l)) if !matches!(d.reason, Reason::AtMaxSize | Reason::AtMinSize | Reason::AtStorageFloor) => {
            l.as_str()
        }
        (true, _) => d.reason.as_str(),
        (false, _) => "DesiredWithinRange",
    };
    let message = if limited { d.message(policy) } else { "the desired size is within bounds".to_string() };
    set_condition(conditions, SCALING_LIMITED, Some(limited), reason, message, meta);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{AdapterError, ErrorKind, TargetObservation};
    use crate::api::ScalePolicySpec;
    use crate::core::{Dur, Floor, FloorInput, Inputs, MetricInput, Sample, decide};
    use crate::spec::policy_from_spec;

    fn policy(mode: &str) -> Policy {
        let spec: ScalePolicySpec = serde_json::from_value(serde_json::json!({
            "target": {"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
            "minSize": 2, "maxSize": 10, "mode": mode,
            "metrics": [{"name": "cpu", "target": 0.5, "query": {"project": "p", "filter": "metric.type=\"x\""},
                          "smoothing": {"type": "sma", "window": "2m"}}]
        }))
        .expect("spec");
        policy_from_spec(&spec).expect("valid")
    }

    fn meta(now: Ts) -> Meta<'static> {
        Meta { generation: Some(3), target: "deployment web", now }
    }

    fn decision_with(policy: &Policy, current: u32, value: Option<f64>, now: Ts) -> Decision {
        let samples: Vec<Sample> = value
            .map(|v| (0..5).map(|i| Sample { at: Ts(now.0 - 60_000 * (4 - i)), value: v }).collect())
            .unwrap_or_default();
        let inputs = [MetricInput { samples: &samples, problem: None }];
        let mut state = PolicyState::default();
        state.align(policy);
        decide(
            policy,
            state,
            &Inputs {
                current,
                metrics: &inputs,
                floor: Floor::None,
                busy: false,
                serving: None,
                sizes: crate::core::SizeRule::Any,
            },
            now,
        )
    }

    fn report(d: Decision, actuation: Actuation) -> TickReport {
        TickReport {
            observation: TargetObservation {
                size: d.current,
                busy: false,
                sizes: crate::core::SizeRule::Any,
                floor: crate::adapters::FloorMetric::None,
                members: Vec::new(),
                serving: None,
                steered_max: None,
            },
            floor: FloorInput::None,
            operation: None,
            progress: None,
            metric_errors: Vec::new(),
            decision: d,
            actuation,
            clock_skew: Vec::new(),
        }
    }

    fn cond<'a>(s: &'a ScalePolicyStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap_or_else(|| panic!("no {t} condition"))
    }

    /// A scale-out tick fills every field a reader needs: sizes, the decision with per-metric
    /// numbers, the state, and conditions whose reasons are `Reason` names.
    #[test]
    fn scale_out_report_fills_status() {
        let p = policy("Enforce");
        let now = Ts(1_800_000_000_000);
        let d = decision_with(&p, 2, Some(1.0), now);
        assert!(d.is_resize(), "{:?}", d.reason);
        let to = d.desired;
        let r = report(d, Actuation::Started { to, operation: None, done: true });
        let s = from_report(&ScalePolicyStatus::default(), &p, &r, meta(now));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.target.as_deref(), Some("deployment web"));
        assert_eq!((s.current_size, s.desired_size), (Some(2), Some(to)));
        let ld = s.last_decision.as_ref().expect("decision");
        assert_eq!((ld.direction.as_str(), ld.reason.as_str(), ld.from, ld.to), ("Up", "ScaleOut", 2, to));
        let cpu = &ld.metrics["cpu"];
        assert_eq!((cpu.raw, cpu.target), (Some(1.0), 0.5));
        assert!(cpu.smoothed.is_some() && cpu.recommended.is_some());
        assert!(s.state.is_some());
        assert_eq!(cond(&s, READY).status, "True");
        assert_eq!(cond(&s, SCALING_ACTIVE).reason, "ScaleOut");
        assert_eq!(cond(&s, ABLE_TO_SCALE).status, "True");
    }

    /// Missing metrics hold the size and turn ScalingActive off with the MissingData reason.
    #[test]
    fn missing_data_sets_scaling_active_false() {
        let p = policy("Enforce");
        let now = Ts(1_800_000_000_000);
        let d = decision_with(&p, 4, None, now);
        assert_eq!(d.desired, 4);
        let s = from_report(&ScalePolicyStatus::default(), &p, &report(d, Actuation::None), meta(now));
        let c = cond(&s, SCALING_ACTIVE);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "MissingData"));
        assert!(c.message.contains("cpu"), "{}", c.message);
        assert_eq!(s.desired_size, Some(4));
    }

    /// lastTransitionTime moves only when a condition's status flips.
    #[test]
    fn transition_time_changes_only_on_flip() {
        let mut conds = Vec::new();
        let t1 = Ts(1_000_000);
        let t2 = Ts(2_000_000);
        let t3 = Ts(3_000_000);
        set_condition(&mut conds, READY, Some(true), "A", "a", meta(t1));
        set_condition(&mut conds, READY, Some(true), "B", "b", meta(t2));
        assert_eq!(conds[0].last_transition_time, t1.to_rfc3339());
        assert_eq!(conds[0].reason, "B");
        set_condition(&mut conds, READY, Some(false), "C", "c", meta(t3));
        assert_eq!(conds[0].last_transition_time, t3.to_rfc3339());
        assert_eq!(conds.len(), 1);
    }

    /// An invalid spec names every field issue, and keeps the stored state for when it is fixed.
    #[test]
    fn invalid_spec_lists_every_issue_and_keeps_state() {
        let mut spec: ScalePolicySpec = serde_json::from_value(serde_json::json!({
            "target": {"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
            "minSize": 5, "maxSize": 3, "interval": "1s",
            "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}]
        }))
        .expect("spec");
        spec.tolerance = 2.0;
        let err = policy_from_spec(&spec).expect_err("invalid");
        let prev = ScalePolicyStatus { state: Some(PolicyState::default()), ..Default::default() };
        let s = invalid_spec(&prev, &err, meta(Ts(1)));
        let c = cond(&s, READY);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "InvalidSpec"));
        for field in ["spec.minSize", "spec.interval", "spec.tolerance"] {
            assert!(c.message.contains(field), "{field} missing from {}", c.message);
        }
        assert_eq!(s.state, prev.state);
    }

    /// Cooldown timers follow decide's rules and disappear once they pass.
    #[test]
    fn cooldown_timers_are_derived_from_state() {
        let p = policy("Enforce");
        let mut st = PolicyState::default();
        st.begin_resize(2, 4, None, Ts(0));
        st.finish_resize(Ts(0));
        let c = cooldown(&p, &st, Ts(1)).expect("timers");
        // scale-out cooldown is 0s by default: already allowed.
        assert_eq!(c.scale_out_allowed_at, None);
        // scale-in: max(10m cooldown, 1m warmup + 2m window) after the scale-out.
        assert_eq!(c.scale_in_allowed_at, Some(Ts(600_000).to_rfc3339()));
        assert_eq!(cooldown(&p, &st, Ts(600_000)), None);
    }

    /// A failed resize shows on AbleToScale with the backend's reason.
    #[test]
    fn failed_resize_sets_able_to_scale_false() {
        let p = policy("Enforce");
        let now = Ts(1_800_000_000_000);
        let d = decision_with(&p, 2, Some(1.0), now);
        let to = d.desired;
        let error = AdapterError::new("kubernetes", ErrorKind::PermissionDenied, "forbidden");
        let s = from_report(&ScalePolicyStatus::default(), &p, &report(d, Actuation::Failed { to, error }), meta(now));
        let c = cond(&s, ABLE_TO_SCALE);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "PermissionDenied"));
        assert_eq!(s.state.as_ref().and_then(|s| s.in_flight.as_ref()), None);
    }

    /// While a resize runs the decision holds at the current size, but the policy still wants
    /// the size it asked for: `/metrics` says the same as status (and so `/api/policies`), and
    /// the day's history records the resize once and times it when it ends.
    #[test]
    fn desired_size_in_metrics_agrees_with_status_during_a_resize() {
        let p = policy("Enforce");
        let now = Ts(1_800_000_000_000);
        let d = decision_with(&p, 2, Some(1.0), now);
        let to = d.desired;
        let mut st = d.state.clone();
        st.begin_resize(2, to, Some("op-1".into()), now);
        let prev = from_report(
            &ScalePolicyStatus::default(),
            &p,
            &report(d, Actuation::Started { to, operation: Some("op-1".into()), done: false }),
            meta(now),
        );
        let later = now + Dur::secs(60);
        let held = decide(
            &p,
            st,
            &Inputs {
                current: 2,
                metrics: &[MetricInput { samples: &[], problem: None }],
                floor: Floor::None,
                busy: false,
                serving: None,
                sizes: crate::core::SizeRule::Any,
            },
            later,
        );
        assert_eq!((held.reason, held.desired), (Reason::ResizeInProgress, 2));
        let r = report(held, Actuation::None);
        let s = from_report(&prev, &p, &r, meta(later));
        assert_eq!(s.desired_size, Some(to));
        let mut registry = prometheus_client::registry::Registry::default();
        let m = crate::controller::metrics::Metrics::register(&mut registry);
        m.record_report("data", "web", &p, &r, &s);
        let labels = crate::controller::metrics::PolicyLabels { namespace: "data".into(), policy: "web".into() };
        assert_eq!(m.desired_size.get_or_create(&labels).get(), i64::from(to));
        assert_eq!(m.budget_left.get_or_create(&labels).get(), i64::from(p.max_resizes_per_day - 1));
        // A node-pool drain shows as the nodes it is draining; the series exists only once one ran.
        assert!(m.draining_nodes.get(&labels).is_none(), "no series for a policy that never drained");
        let draining = ScalePolicyStatus { operation: Some("drain:1:z-a/n1,z-b/n2".into()), ..s.clone() };
        m.record_report("data", "web", &p, &r, &draining);
        assert_eq!(m.draining_nodes.get_or_create(&labels).get(), 2);
        m.record_report("data", "web", &p, &r, &s);
        assert_eq!(m.draining_nodes.get_or_create(&labels).get(), 0, "back to 0 once the drain is over");
        let h = s.history.as_ref().expect("history");
        assert_eq!(h.resizes.len(), 1);
        assert_eq!((h.resizes[0].from, h.resizes[0].to, h.resizes[0].took_secs), (2, to, None));
        // The operation ends: the resize gets its duration.
        let mut done_state = r.decision.state.clone();
        done_state.finish_resize(later + Dur::secs(30));
        let mut r2 = report(decision_with(&p, to, Some(0.4), later + Dur::secs(30)), Actuation::None);
        r2.decision.state = done_state;
        let s2 = from_report(&s, &p, &r2, meta(later + Dur::secs(30)));
        let h = s2.history.as_ref().expect("history");
        assert_eq!(h.resizes[0].took_secs, Some(90));
    }

    /// An operation followed past the bound turns AbleToScale off with a reason of its own, naming
    /// the operation and the bound, and the day's history ends the resize with that error.
    #[test]
    fn a_timed_out_operation_sets_able_to_scale_false_naming_it() {
        let p = policy("Enforce");
        let now = Ts(1_800_000_000_000);
        let d = decision_with(&p, 2, Some(1.0), now);
        let to = d.desired;
        let mut st = d.state.clone();
        st.begin_resize(2, to, Some("op-9".into()), now);
        let prev = ScalePolicyStatus { state: Some(st), ..ScalePolicyStatus::default() };
        let later = now + crate::tick::MAX_OPERATION;
        let mut r = report(decision_with(&p, 2, Some(0.4), later), Actuation::None);
        r.operation =
            Some(OperationOutcome::TimedOut { to, operation: "op-9".into(), after: crate::tick::MAX_OPERATION });
        let s = from_report(&prev, &p, &r, meta(later));
        let c = cond(&s, ABLE_TO_SCALE);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "ResizeTimedOut"));
        assert!(c.message.contains("op-9") && c.message.contains("at most 2h"), "{}", c.message);
    }

    /// A tick that finishes one resize and starts the next (scale-out cooldown 0s) ends the first
    /// in the day's history: the timeline showed it "still running" for good.
    #[test]
    fn a_resize_finished_by_the_tick_that_starts_the_next_gets_its_duration() {
        let p = policy("Enforce");
        let now = Ts(1_800_000_000_000);
        let d = decision_with(&p, 2, Some(1.0), now);
        let to = d.desired;
        let prev = from_report(
            &ScalePolicyStatus::default(),
            &p,
            &report(d.clone(), Actuation::Started { to, operation: Some("op-1".into()), done: false }),
            meta(now),
        );
        let mut prev = prev;
        let mut st = d.state.clone();
        st.begin_resize(2, to, Some("op-1".into()), now);
        prev.state = Some(st);
        let later = now + Dur::secs(240);
        let mut next = decision_with(&p, to, Some(1.0), later);
        next.state.begin_resize(to, to + 2, Some("op-2".into()), later);
        let mut r = report(next, Actuation::Started { to: to + 2, operation: Some("op-2".into()), done: false });
        r.operation = Some(OperationOutcome::Finished { from: 2, to });
        let s = from_report(&prev, &p, &r, meta(later));
        let h = s.history.as_ref().expect("history");
        assert_eq!(h.resizes.len(), 2, "{h:?}");
        assert_eq!(h.resizes[0].took_secs, Some(240), "the first resize ended: {h:?}");
        assert_eq!(h.resizes[1].took_secs, None, "the second runs");
    }

    /// The intent status records the resize as begun, with the size asked for.
    #[test]
    fn intent_records_in_flight_resize() {
        let p = policy("Enforce");
        let now = Ts(1_800_000_000_000);
        let d = decision_with(&p, 2, Some(1.0), now);
        let mut st = d.state.clone();
        st.begin_resize(d.current, d.desired, None, now);
        let s = intent(&ScalePolicyStatus::default(), &p, &d, &st, meta(now));
        assert_eq!(s.state.as_ref().and_then(|s| s.in_flight.as_ref()).map(|f| f.to), Some(d.desired));
        assert_eq!(cond(&s, ABLE_TO_SCALE).reason, "ResizeInProgress");
    }
}
