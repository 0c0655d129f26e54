//! Schedules and overrides in the controller: what is in effect goes into status with its
//! condition, and windows and overrides that start or end become Events. The rules of what is in
//! effect live in the core (`core::known`), their spec side in `crate::known`.

use crate::api::ActiveStatus;
use crate::controller::events::PolicyEvent;
use crate::controller::status::{Meta, set_condition};
use crate::core::known::Source;
use crate::known::{active_status, summary};

/// Condition type: a schedule window or override is in effect (set only on policies that have
/// schedules or overrides, or had the condition).
pub const KNOWN_EVENTS: &str = "KnownEvents";

/// Record in status what is in effect at `meta.now`, and the condition.
pub fn note_status(s: &mut crate::api::ScalePolicyStatus, policy: &crate::core::Policy, meta: Meta<'_>) {
    let active = policy.known.active(meta.now, policy.min_size, policy.max_size);
    s.active = active_status(&active);
    s.active_summary = summary(&s.active);
    let had = s.conditions.iter().any(|c| c.type_ == KNOWN_EVENTS);
    if policy.known.is_empty() && !had {
        return;
    }
    let (ok, reason) = match active.entries.first().map(|e| e.source) {
        None => (false, "NoneActive"),
        Some(_) if active.entries.iter().any(|e| e.source == Source::Override) => (true, "OverrideActive"),
        Some(_) => (true, "ScheduleActive"),
    };
    let message = if s.active.is_empty() {
        "no schedule window or override in effect".to_string()
    } else {
        s.active
            .iter()
            .map(|a| format!("{} {} ({}) until {}", a.kind.to_lowercase(), a.name, a.effect, a.until))
            .collect::<Vec<_>>()
            .join("; ")
    };
    set_condition(&mut s.conditions, KNOWN_EVENTS, Some(ok), reason, message, meta);
}

/// Events for windows and overrides that started or ended between two statuses.
pub fn events(before: &[ActiveStatus], after: &[ActiveStatus]) -> Vec<PolicyEvent> {
    let same = |a: &ActiveStatus, b: &ActiveStatus| a.kind == b.kind && a.name == b.name && a.until == b.until;
    let event = |reason: &str, note: String| PolicyEvent {
        warning: false,
        reason: reason.into(),
        note,
        action: "Evaluate".into(),
    };
    let mut out = Vec::new();
    for a in after.iter().filter(|a| !before.iter().any(|b| same(a, b))) {
        let reason = if a.kind == "Override" { "OverrideStarted" } else { "ScheduleStarted" };
        out.push(event(reason, format!("{} {}: {} until {}", a.kind.to_lowercase(), a.name, a.effect, a.until)));
    }
    for b in before.iter().filter(|b| !after.iter().any(|a| same(a, b))) {
        let reason = if b.kind == "Override" { "OverrideExpired" } else { "ScheduleEnded" };
        out.push(event(reason, format!("{} {} ({}) ended", b.kind.to_lowercase(), b.name, b.effect)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_expiries_become_events() {
        let a = ActiveStatus {
            kind: "Override".into(),
            name: "campaign".into(),
            effect: "min 20".into(),
            from: None,
            until: "2026-12-24T09:00:00Z".into(),
        };
        let started = events(&[], std::slice::from_ref(&a));
        assert_eq!(started.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(), ["OverrideStarted"]);
        assert!(events(std::slice::from_ref(&a), std::slice::from_ref(&a)).is_empty());
        let ended = events(std::slice::from_ref(&a), &[]);
        assert_eq!(ended.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(), ["OverrideExpired"]);
    }
}
