//! Per-member sizing (a replicated Bigtable instance with `sizing: perCluster`): one decision per
//! member, each from its own metrics and with its own state, then the core's floor at a fraction
//! of the largest member's decision (`core::replicas`), then one write per member that changes.
//!
//! Each member is the core's step machine (`core::step`), driven as [`crate::tick`] drives it:
//! ask about the member's resize in flight (IO) → observe every member with one read (IO) →
//! settle → its storage floor (IO) → gather its own series, the policy's Monitoring queries
//! narrowed to the member (IO) → decide. Then, across members: the floor (pure). The caller records the intents ([`Plan::intents`])
//! before [`actuate`] sends anything, as the fence does for one target.
//!
//! [`Plan::summary`] folds the members into one [`TickReport`] for the instance (largest size,
//! the decision that drives it), so status, Events and metrics read it like any other target's.

use crate::adapters::{
    AdapterError, MetricQuery, MetricSource, OperationStatus, ScaleTarget, TargetMember, TargetObservation,
};
use crate::core::floor::FloorInput;
use crate::core::replicas::{fraction_floor, hold_at_floor};
use crate::core::step::{Evaluation, Seen};
use crate::core::{Decision, MetricInput, Mode, Policy, PolicyState, Reason, Ts};
use crate::tick::{Actuation, OperationOutcome, TickError, TickReport, answer_of, read_and_gather, record_resize};

/// One member's tick.
#[derive(Debug, Clone)]
pub struct MemberTick {
    /// Its name (a cluster ID).
    pub name: String,
    /// Its state as the backend reports it.
    pub state: String,
    /// It, as a target.
    pub observation: TargetObservation,
    /// Its storage floor's reading.
    pub floor: FloorInput,
    /// What became of its resize in flight, if one was.
    pub operation: Option<OperationOutcome>,
    /// Its metric fetches that failed, by metric index.
    pub metric_errors: Vec<(usize, AdapterError)>,
    /// The size its own metrics ask for (its own decision, before the floor).
    pub own: u32,
    /// Why, before the floor.
    pub own_reason: Reason,
    /// The decision after the floor: `desired` is the size applied.
    pub decision: Decision,
    /// What was done with it.
    pub actuation: Actuation,
    /// Stored timestamps from the future that were clamped.
    pub clock_skew: Vec<&'static str>,
    /// Its scale-in was not sent because the write to this other member failed in the same tick
    /// (the floor it was computed against may not hold).
    pub held_by: Option<String>,
}

impl MemberTick {
    /// The size this tick leaves the member at: the one sent (or, in dry-run, the one that would
    /// be), else the size observed when a write failed or was held, else the decision's.
    pub fn applied(&self) -> u32 {
        match &self.actuation {
            Actuation::Started { to, .. } | Actuation::DryRun { to } => *to,
            Actuation::Failed { .. } => self.observation.size,
            Actuation::None if self.held_by.is_some() => self.observation.size,
            Actuation::None => self.decision.desired,
        }
    }
}

/// Every member decided, nothing sent yet.
#[derive(Debug, Clone)]
pub struct Plan {
    /// In the target's order.
    pub members: Vec<MemberTick>,
    /// The floor: `ceil(fraction × largest own decision)`.
    pub floor: u32,
    /// Members with a stored state that the target no longer lists (a cluster deleted from the
    /// instance, or a listing that left it out), with the resize each had in flight: their state
    /// is dropped with this tick, which must be said.
    pub gone: Vec<(String, Option<u32>)>,
}

/// The policy's Monitoring queries narrowed to one member's series (`(filter) AND` its clause);
/// other sources (Kubernetes state) say the same for every member.
pub fn narrow(queries: &[MetricQuery], filter: &str) -> Vec<MetricQuery> {
    queries
        .iter()
        .map(|q| match q {
            MetricQuery::Monitoring(m) if !filter.is_empty() => {
                let mut m = m.clone();
                // In parentheses: a filter with a top-level OR must not lose the clause to one side.
                m.filter = format!("({}) AND {filter}", m.filter);
                MetricQuery::Monitoring(m)
            }
            other => other.clone(),
        })
        .collect()
}

/// Decide every member: the core's step machine (`core::step`) per member, driven as
/// [`crate::tick`] drives it for one target, then the core's replica rule across members.
/// `states` are the members' stored states by name; a member without one starts from `seed`. On
/// error nothing is decided (the caller keeps its states).
#[allow(clippy::too_many_arguments)]
pub async fn plan<M: MetricSource, T: ScaleTarget>(
    policy: &Policy,
    fraction: f64,
    queries: &[MetricQuery],
    states: &[(String, PolicyState)],
    seed: &PolicyState,
    source: &M,
    target: &T,
    now: Ts,
) -> Result<Plan, TickError> {
    let mut stored: Vec<(String, Option<Evaluation<'_>>)> =
        states.iter().map(|(name, s)| (name.clone(), Some(Evaluation::start(policy, s.clone(), now)))).collect();
    // Ask about each resize in flight before observing (see `tick`): never an observation older
    // than the answer.
    let mut answers: Vec<(String, Result<OperationStatus, AdapterError>)> = Vec::new();
    for (name, evaluation) in &stored {
        if let Some(op) = evaluation.as_ref().and_then(Evaluation::operation) {
            answers.push((name.clone(), target.operation(op).await));
        }
    }
    let observed = target.observe_members().await.map_err(TickError::Target)?;

    let mut members = Vec::with_capacity(observed.len());
    for m in observed {
        let evaluation = stored
            .iter_mut()
            .find(|(n, _)| *n == m.name)
            .and_then(|(_, e)| e.take())
            .unwrap_or_else(|| Evaluation::start(policy, seed.clone(), now));
        let answer = answer_of(answers.iter().find(|(n, _)| *n == m.name).map(|(_, a)| a.clone()))?;
        let obs = m.observation;
        let settled =
            evaluation.settle(answer, Seen { size: obs.size, busy: obs.busy, sizes: obs.sizes, serving: obs.serving });
        let own_queries = narrow(queries, &m.filter);
        let (gathering, series, metric_errors) = read_and_gather(settled, &obs, &own_queries, source, now).await;
        let inputs: Vec<MetricInput<'_>> =
            series.iter().map(|s| MetricInput { samples: &s.samples, problem: s.problem }).collect();
        let decided = gathering.decide(&inputs);
        members.push(MemberTick {
            name: m.name,
            state: m.state,
            own: decided.decision.desired,
            own_reason: decided.decision.reason,
            observation: obs,
            floor: decided.floor,
            operation: decided.operation,
            metric_errors,
            decision: decided.decision,
            actuation: Actuation::None,
            held_by: None,
            clock_skew: decided.clock_skew,
        });
    }

    // Across members (pure): the floor at a fraction of the largest own decision.
    let own: Vec<u32> = members.iter().map(|m| m.own).collect();
    let floor = fraction_floor(&own, fraction);
    for m in &mut members {
        hold_at_floor(policy, &mut m.decision, floor, m.observation.sizes, now);
    }
    let gone = stored
        .iter()
        .filter_map(|(n, e)| e.as_ref().map(|e| (n.clone(), e.state().in_flight.as_ref().map(|f| f.to))))
        .collect();
    Ok(Plan { members, floor, gone })
}

impl Plan {
    /// Whether anything is to be sent (a member resizes, in Enforce mode).
    pub fn sends(&self, policy: &Policy) -> bool {
        policy.mode == Mode::Enforce && self.members.iter().any(|m| m.decision.is_resize())
    }

    /// Every member's state as it must be stored before any write: a resizing member's with its
    /// resize begun (no operation name yet), so a controller killed mid-write resumes.
    pub fn intents(&self, policy: &Policy, now: Ts) -> Vec<(String, PolicyState)> {
        self.members
            .iter()
            .map(|m| {
                let mut s = m.decision.state.clone();
                if policy.mode == Mode::Enforce && m.decision.is_resize() {
                    s.begin_resize(m.decision.current, m.decision.desired, None, now);
                }
                (m.name.clone(), s)
            })
            .collect()
    }

    /// Every member's state to carry into the next evaluation.
    pub fn states(&self) -> Vec<(String, PolicyState)> {
        self.members.iter().map(|m| (m.name.clone(), m.decision.state.clone())).collect()
    }

    /// The member whose decision speaks for the instance: of the members that resize, the one
    /// applied the largest size; if none resizes, the one applied the largest size.
    pub fn driver(&self) -> Option<&MemberTick> {
        self.members.iter().max_by_key(|m| (m.decision.is_resize(), m.decision.desired))
    }

    /// The instance as one target, for status, Events and metrics: the largest member's size,
    /// the [`Plan::driver`]'s decision (its state shown as the policy's), the largest applied
    /// size as the one asked for, the members' outcomes folded (a failure first).
    pub fn summary(&self) -> TickReport {
        let size = self.members.iter().map(|m| m.observation.size).max().unwrap_or(0);
        let observation = TargetObservation {
            size,
            busy: self.members.iter().any(|m| m.observation.busy),
            sizes: self.members.first().map_or(crate::core::SizeRule::Any, |m| m.observation.sizes),
            floor: crate::adapters::FloorMetric::None,
            members: self
                .members
                .iter()
                .map(|m| TargetMember {
                    name: m.name.clone(),
                    size: m.observation.size,
                    state: m.state.clone(),
                    operation: m.decision.state.in_flight.as_ref().and_then(|f| f.operation.clone()),
                })
                .collect(),
            serving: None,
            steered_max: None,
        };
        let decision = self.driver().map_or_else(|| decide_nothing(size), |m| m.decision.clone());
        let applied = self.members.iter().map(|m| m.decision.desired).max().unwrap_or(size);
        let named = |name: &str, e: &AdapterError| {
            let mut e = e.clone();
            e.message = format!("cluster {name}: {}", e.message);
            e
        };
        let mut metric_errors = Vec::new();
        for m in &self.members {
            for (i, e) in &m.metric_errors {
                metric_errors.push((*i, named(&m.name, e)));
            }
        }
        let failed = self.members.iter().find_map(|m| match &m.actuation {
            Actuation::Failed { to, error } => Some(Actuation::Failed { to: *to, error: named(&m.name, error) }),
            _ => None,
        });
        let started: Vec<&MemberTick> =
            self.members.iter().filter(|m| matches!(m.actuation, Actuation::Started { .. })).collect();
        let actuation = if let Some(f) = failed {
            f
        } else if !started.is_empty() {
            let ops: Vec<String> = started
                .iter()
                .filter_map(|m| match &m.actuation {
                    Actuation::Started { operation, .. } => operation.clone(),
                    _ => None,
                })
                .collect();
            Actuation::Started {
                to: applied,
                operation: (!ops.is_empty()).then(|| ops.join(", ")),
                done: started.iter().all(|m| matches!(m.actuation, Actuation::Started { done: true, .. })),
            }
        } else if self.members.iter().any(|m| matches!(m.actuation, Actuation::DryRun { .. })) {
            Actuation::DryRun { to: applied }
        } else {
            Actuation::None
        };
        let operation = self.members.iter().filter_map(|m| m.operation.clone()).max_by_key(|o| {
            matches!(
                o,
                OperationOutcome::Failed { .. } | OperationOutcome::NoEffect { .. } | OperationOutcome::TimedOut { .. }
            )
        });
        let mut clock_skew: Vec<&'static str> = self.members.iter().flat_map(|m| m.clock_skew.clone()).collect();
        clock_skew.sort_unstable();
        clock_skew.dedup();
        TickReport {
            observation,
            floor: FloorInput::None,
            operation,
            progress: None,
            metric_errors,
            decision,
            actuation,
            clock_skew,
        }
    }
}

/// A decision that keeps `size`, for an instance with no members (never listed: the adapter
/// refuses an empty instance).
fn decide_nothing(size: u32) -> Decision {
    Decision {
        at: Ts(0),
        current: size,
        desired: size,
        recommended: None,
        reason: Reason::WithinTolerance,
        limited_by: None,
        wait_until: None,
        serving: None,
        metrics: Default::default(),
        state: PolicyState::default(),
    }
}

/// Send one write per member whose applied size differs (Enforce), or note it (DryRun), and
/// carry each member's outcome into its state. Call after the intents are recorded.
pub async fn actuate<T: ScaleTarget>(policy: &Policy, plan: &mut Plan, target: &T, now: Ts) {
    // Scale-outs first, and no scale-in after a failed write: the floor each scale-in was cut
    // against assumes the other members reach their sizes, so a scale-in next to a failed write
    // could leave a replica below the floor of what actually serves.
    // Among scale-ins the member with the largest own decision (the one the floor comes from)
    // goes first, so its failure holds the others.
    let mut order: Vec<usize> = (0..plan.members.len()).collect();
    order.sort_by_key(|&i| {
        let m = &plan.members[i];
        (m.decision.desired < m.decision.current, std::cmp::Reverse(m.own))
    });
    let mut failed: Option<String> = None;
    for i in order {
        let m = &mut plan.members[i];
        let d = &mut m.decision;
        if !d.is_resize() {
            continue;
        }
        if policy.mode != Mode::Enforce {
            m.actuation = Actuation::DryRun { to: d.desired };
            continue;
        }
        let (from, to) = (d.current, d.desired);
        if to < from
            && let Some(other) = &failed
        {
            m.held_by = Some(other.clone());
            continue;
        }
        m.actuation = record_resize(&mut d.state, (from, to), target.resize_member(&m.name, to).await, now);
        if matches!(m.actuation, Actuation::Failed { .. }) {
            failed.get_or_insert_with(|| m.name.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{FloorMetric, MonitoringQuery, ResizeStarted};
    use crate::core::{Dur, SizeRule};
    use std::sync::Mutex;

    /// A target whose writes to `refuses` fail; it records every write.
    struct Stub {
        refuses: &'static str,
        sent: Mutex<Vec<(String, u32)>>,
    }

    impl ScaleTarget for Stub {
        async fn observe(&self) -> Result<TargetObservation, AdapterError> {
            Err(AdapterError::new("stub", crate::adapters::ErrorKind::Malformed, "not used"))
        }
        async fn resize(&self, _: u32) -> Result<ResizeStarted, AdapterError> {
            Err(AdapterError::new("stub", crate::adapters::ErrorKind::Malformed, "not used"))
        }
        async fn operation(&self, _: &str) -> Result<crate::adapters::OperationStatus, AdapterError> {
            Ok(crate::adapters::OperationStatus::Done)
        }
        async fn resize_member(&self, member: &str, to: u32) -> Result<ResizeStarted, AdapterError> {
            self.sent.lock().unwrap_or_else(|p| p.into_inner()).push((member.to_string(), to));
            if member == self.refuses {
                return Err(AdapterError::new("stub", crate::adapters::ErrorKind::PermissionDenied, "denied"));
            }
            Ok(ResizeStarted::Operation(format!("op-{member}")))
        }
    }

    fn member(name: &str, size: u32, own: u32, applied: u32) -> MemberTick {
        let observation = TargetObservation {
            size,
            busy: false,
            sizes: SizeRule::Any,
            floor: FloorMetric::None,
            members: vec![],
            serving: None,
            steered_max: None,
        };
        MemberTick {
            name: name.into(),
            state: "READY".into(),
            observation,
            floor: FloorInput::None,
            operation: None,
            metric_errors: vec![],
            own,
            own_reason: Reason::ScaleIn,
            decision: Decision { current: size, desired: applied, reason: Reason::ScaleIn, ..decide_nothing(size) },
            actuation: Actuation::None,
            clock_skew: vec![],
            held_by: None,
        }
    }

    /// The hot cluster c1 scales in 10 -> 4, so the replicas may go to ceil(0.5 x 4) = 2. When
    /// c1's write fails, the replicas' scale-ins are not sent (c1 still serves 10, and 2 is below
    /// its floor of 5), whatever order the target lists them in; status shows what was applied.
    #[tokio::test]
    async fn a_failed_write_holds_the_other_members_scale_ins() {
        let sp = crate::crd::parse_policy(
            "p.yaml",
            r#"
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata: {name: p, namespace: d}
spec:
  target: {bigtableInstance: {project: p, instance: i, sizing: perCluster}}
  minSize: 1
  maxSize: 30
  metrics: [{name: cpu, target: 0.6, query: {filter: 'metric.type="x"'}}]
"#,
        )
        .expect("policy");
        let policy = crate::spec::policy_from_spec(&sp.spec).expect("valid");
        let mut plan = Plan {
            members: vec![member("c2", 5, 1, 2), member("c1", 10, 4, 4), member("c3", 5, 1, 2)],
            floor: 2,
            gone: Vec::new(),
        };
        let stub = Stub { refuses: "c1", sent: Mutex::new(vec![]) };
        actuate(&policy, &mut plan, &stub, Ts(0)).await;
        assert_eq!(*stub.sent.lock().expect("lock"), [("c1".to_string(), 4)], "only the driving member's write");
        assert!(matches!(plan.members[1].actuation, Actuation::Failed { to: 4, .. }));
        for m in [&plan.members[0], &plan.members[2]] {
            assert_eq!(m.held_by.as_deref(), Some("c1"), "{}", m.name);
            assert_eq!(m.applied(), 5, "{} stays at what it has", m.name);
        }
        assert_eq!(plan.members[1].applied(), 10, "a failed write applies nothing");

        // Without the failure every member is written, the driving one first.
        let mut plan = Plan {
            members: vec![member("c2", 5, 1, 2), member("c1", 10, 4, 4), member("c3", 5, 1, 2)],
            floor: 2,
            gone: Vec::new(),
        };
        let stub = Stub { refuses: "none", sent: Mutex::new(vec![]) };
        actuate(&policy, &mut plan, &stub, Ts(0)).await;
        let sent: Vec<String> = stub.sent.lock().expect("lock").iter().map(|w| w.0.clone()).collect();
        assert_eq!(sent, ["c1", "c2", "c3"]);
        assert!(plan.members.iter().all(|m| m.held_by.is_none() && m.applied() == m.decision.desired));
    }

    /// The member's clause is added to the whole of the policy's filter: with a top-level OR,
    /// `a OR b AND cluster` would select b's series of one cluster and a's of every cluster.
    #[test]
    fn a_narrowed_filter_keeps_the_policys_in_parentheses() {
        let q = MetricQuery::Monitoring(MonitoringQuery {
            project: "p".into(),
            filter: r#"metric.type="a" OR metric.type="b""#.into(),
            alignment_period: Dur::secs(60),
            per_series_aligner: "ALIGN_MEAN".into(),
            cross_series_reducer: None,
            group_by_fields: vec![],
        });
        let narrowed = narrow(std::slice::from_ref(&q), r#"resource.labels.cluster="c1""#);
        let MetricQuery::Monitoring(m) = &narrowed[0] else { panic!("a Monitoring query") };
        assert_eq!(m.filter, r#"(metric.type="a" OR metric.type="b") AND resource.labels.cluster="c1""#);
        assert_eq!(narrow(std::slice::from_ref(&q), ""), vec![q], "no clause, no change");
    }
}
