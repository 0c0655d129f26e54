//! One evaluation of a policy whose target's members are each sized on their own (a replicated
//! Bigtable instance with `sizing: perCluster`): [`crate::members`] decides every member, the
//! fence records every member's intent before any write, then one write per member that changes.
//! Each member's core state lives in its entry of `status.members`, so a restart loses nothing.

use kube::ResourceExt;

use crate::adapters::MetricQuery;
use crate::api::{MemberStatus, ScalePolicy, ScalePolicyStatus};
use crate::controller::events::{self, EventSink};
use crate::controller::reconcile::{
    Backends, Deadline, Engine, Error, Next, StatusStore, StoreError, TimeBoxed, read_budget,
};
use crate::controller::status::{self, Meta};
use crate::core::{Policy, PolicyState};
use crate::members::{Plan, actuate, plan};
use crate::tick::Actuation;

/// The members' stored states, by name, and the state a member without one starts from: the
/// policy's own (without its resize in flight) when no member has one yet (the policy was in
/// `largest` mode, so its signals and cooldowns carry over), else a fresh one.
pub fn stored_states(prev: &ScalePolicyStatus) -> (Vec<(String, PolicyState)>, PolicyState) {
    let states: Vec<(String, PolicyState)> =
        prev.members.iter().filter_map(|m| m.core_state.clone().map(|s| (m.name.clone(), s))).collect();
    let seed = if states.is_empty() {
        let mut s = prev.state.clone().unwrap_or_default();
        s.in_flight = None;
        s
    } else {
        PolicyState::default()
    };
    (states, seed)
}

/// Each member as status shows it: observed, its own decision, the size applied and why, and its
/// core state (`states`, by name).
pub fn member_status(policy: &Policy, plan: &Plan, states: &[(String, PolicyState)]) -> Vec<MemberStatus> {
    plan.members
        .iter()
        .map(|m| MemberStatus {
            name: m.name.clone(),
            size: m.observation.size,
            state: m.state.clone(),
            operation: states
                .iter()
                .find(|(n, _)| *n == m.name)
                .and_then(|(_, s)| s.in_flight.as_ref())
                .and_then(|f| f.operation.clone()),
            desired_size: Some(m.own),
            applied_size: Some(m.applied()),
            reason: Some(m.decision.reason.as_str().to_string()),
            message: Some(match (&m.actuation, &m.held_by) {
                (Actuation::Failed { to, error }, _) => {
                    format!("{}; the write of {to} failed: {error}", m.decision.message(policy))
                }
                (_, Some(other)) => format!(
                    "{}; not sent: the write to cluster {other} failed this tick, so the floor this scale-in was cut against may not hold",
                    m.decision.message(policy)
                ),
                _ => m.decision.message(policy),
            }),
            core_state: states.iter().find(|(n, _)| *n == m.name).map(|(_, s)| s.clone()),
        })
        .collect()
}

/// The last decision is one cluster's: say which.
fn name_the_cluster(s: &mut ScalePolicyStatus, cluster: &str) {
    let named = |d: &mut crate::api::DecisionRecord| {
        if !cluster.is_empty() && !d.message.starts_with("cluster ") {
            d.message = format!("cluster {cluster}: {}", d.message);
        }
    };
    if let Some(d) = s.last_decision.as_mut() {
        named(d);
    }
    if let Some(d) = s.recent_decisions.last_mut() {
        named(d);
    }
}

impl<B: Backends, S: StatusStore, E: EventSink> Engine<B, S, E> {
    /// [`Engine::evaluate`] for a target sized per member, after the checks every policy passes.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn evaluate_members(
        &self,
        sp: &ScalePolicy,
        prev: &ScalePolicyStatus,
        policy: &Policy,
        fraction: f64,
        queries: &[MetricQuery],
        target: &B::Target,
        meta: Meta<'_>,
    ) -> Result<Next, Error> {
        let now = meta.now;
        let interval = std::time::Duration::from_millis(policy.interval.0.max(0) as u64);
        let (states, seed) = stored_states(prev);
        // The reads are time-boxed as the one-target tick's are; the writes (`actuate`) are not.
        let deadline = Deadline::after(read_budget(policy.interval));
        let (source, boxed) = (TimeBoxed::new(self.backends.source(), deadline), TimeBoxed::new(target, deadline));
        let mut planned = match plan(policy, fraction, queries, &states, &seed, &source, &boxed, now).await {
            Ok(p) => p,
            Err(e) => return self.tick_failed(sp, prev, e, meta).await,
        };
        let rv = sp.resource_version();
        let sends = planned.sends(policy);
        if sends {
            // The fence, for every member at once: leadership, then every intent recorded under
            // the resourceVersion the decisions were made from, then leadership again.
            if !self.leadership.owns(sp) {
                tracing::warn!("lost leadership before resizing; nothing sent");
                self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), "NotLeader");
                return Ok(Next::After(interval));
            }
            let intents = planned.intents(policy, now);
            let summary = planned.summary();
            let driver = planned.driver().map(|m| m.name.clone()).unwrap_or_default();
            let state = intents.iter().find(|(n, _)| *n == driver).map(|(_, s)| s.clone()).unwrap_or_default();
            let mut intent = status::intent(prev, policy, &summary.decision, &state, meta);
            name_the_cluster(&mut intent, &driver);
            intent.members = member_status(policy, &planned, &intents);
            if let Err(e) = self.write(sp, intent, rv.as_deref()).await {
                let label = if e == StoreError::Conflict { "StatusConflict" } else { "StatusWriteFailed" };
                self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), label);
                return Err(e.into());
            }
            if !self.leadership.owns(sp) {
                tracing::warn!("lost leadership before resizing; nothing sent");
                return Ok(Next::After(interval));
            }
            actuate(policy, &mut planned, target, now).await;
        } else if policy.mode != crate::core::Mode::Enforce {
            actuate(policy, &mut planned, target, now).await;
        }
        let report = planned.summary();
        if !report.clock_skew.is_empty() {
            tracing::warn!(fields = ?report.clock_skew, now = %now, "stored state had timestamps in the future (clock skew?); no longer trusted (clamped to now, or dropped where a future time would delay a scale-out)");
        }
        let mut status = status::from_report(prev, policy, &report, meta);
        name_the_cluster(&mut status, &planned.driver().map(|m| m.name.clone()).unwrap_or_default());
        status.members = member_status(policy, &planned, &planned.states());
        // After an intent write the resourceVersion moved: the outcome must be recorded anyway.
        let status = self.write(sp, status, if sends { None } else { rv.as_deref() }).await?;
        for m in &planned.members {
            tracing::info!(
                cluster = %m.name,
                reason = m.decision.reason.as_str(),
                current = m.observation.size,
                own = m.own,
                applied = m.decision.desired,
                "{}",
                m.decision.message(policy)
            );
        }
        self.metrics.record_report(&sp.namespace().unwrap_or_default(), &sp.name_any(), policy, &report, &status);
        if matches!(report.actuation, crate::tick::Actuation::DryRun { .. }) {
            self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), "DryRun");
        }
        let mut news = events::for_report(policy, &report);
        for (name, in_flight) in &planned.gone {
            let resize = in_flight.map(|to| format!(" (its resize to {to} was in flight)")).unwrap_or_default();
            let note = format!(
                "cluster {name} is no longer in the instance's list of clusters{resize}; its saved state is dropped, and it starts afresh if it comes back"
            );
            tracing::warn!(cluster = %name, "{note}");
            news.push(events::PolicyEvent {
                warning: true,
                reason: "ClusterGone".into(),
                note,
                action: "Evaluate".into(),
            });
        }
        news.extend(crate::controller::known::events(&prev.active, &status.active));
        self.announce(sp, news).await;
        Ok(Next::After(interval))
    }
}
