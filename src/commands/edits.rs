//! The pure edits behind `ebbflow override`, `pause` and `resume`: a policy's overrides with one
//! added or removed, the result checked as a whole policy.

use crate::api::{OverrideSpec, PauseKind, ScalePolicySpec};
use crate::core::Ts;
use crate::known::timestamp;

/// A new override to add with `ebbflow override` or `ebbflow pause`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOverride {
    /// Name; replaces an override of the same name.
    pub name: String,
    /// Who.
    pub owner: String,
    /// Why.
    pub reason: String,
    /// Until when.
    pub until: Ts,
    /// Minimum size.
    pub min_size: Option<u32>,
    /// Maximum size.
    pub max_size: Option<u32>,
    /// Pause.
    pub pause: Option<PauseKind>,
}

/// The spec's overrides with `new` added (replacing one of the same name) and expired ones
/// dropped, checked against the rest of the spec. Errors are for people and name the fix.
pub fn with_override(spec: &ScalePolicySpec, new: &NewOverride, now: Ts) -> Result<Vec<OverrideSpec>, String> {
    if new.until <= now {
        return Err(format!(
            "the expiry {} is in the past (now is {}); give a later --until or a --for duration",
            new.until.to_rfc3339(),
            now.to_rfc3339()
        ));
    }
    for (flag, v) in [("--min", new.min_size), ("--max", new.max_size)] {
        if let Some(m) = v.filter(|&m| m > spec.max_size) {
            return Err(format!(
                "{flag} {m} is above the policy's maxSize ({}); raise spec.maxSize first or ask for less",
                spec.max_size
            ));
        }
    }
    let mut list: Vec<OverrideSpec> = spec
        .overrides
        .iter()
        .filter(|o| o.name != new.name && timestamp(&o.until).is_ok_and(|u| u > now))
        .cloned()
        .collect();
    list.push(OverrideSpec {
        name: new.name.clone(),
        owner: new.owner.clone(),
        reason: new.reason.clone(),
        since: Some(now.to_rfc3339()),
        until: new.until.to_rfc3339(),
        min_size: new.min_size,
        max_size: new.max_size,
        pause: new.pause,
    });
    let mut next = spec.clone();
    next.overrides = list.clone();
    if let Err(e) = crate::spec::policy_from_spec(&next) {
        return Err(format!("the policy would not be valid with this override: {e}"));
    }
    Ok(list)
}

/// The spec's overrides without `name` (all of them with `None`) and without expired ones; an
/// error when there is nothing to resume.
pub fn without_override(spec: &ScalePolicySpec, name: Option<&str>, now: Ts) -> Result<Vec<OverrideSpec>, String> {
    let live = |o: &&OverrideSpec| timestamp(&o.until).is_ok_and(|u| u > now);
    let active: Vec<&OverrideSpec> = spec.overrides.iter().filter(live).collect();
    match name {
        Some(n) if !active.iter().any(|o| o.name == n) => Err(format!(
            "no active override named \"{n}\"; active: {}",
            if active.is_empty() {
                "none".into()
            } else {
                active.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
            }
        )),
        None if active.is_empty() => Err("no active override to resume".into()),
        _ => Ok(active.into_iter().filter(|o| name.is_some_and(|n| o.name != n)).cloned().collect()),
    }
}
