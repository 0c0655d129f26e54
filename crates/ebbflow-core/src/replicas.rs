//! Per-member sizing: the members of one target (the clusters of a replicated Bigtable instance
//! in `perCluster` mode) each decide from their own metrics, with their own state, and no member
//! is applied less than a fraction of the largest member's decision, so that a failover from the
//! hottest member lands on enough capacity.
//!
//! ```text
//! floor     = ceil(fraction × max_j own_j)
//! applied_i = max(own_i, floor), within the bounds and the target's size rule
//! ```
//!
//! The floor is a bound like `minSize`: it raises a member whatever its own cooldown says, but
//! never through a resize in flight, a pause, a backoff or the daily budget.

use crate::decide::{Decision, Limit, Reason, last_word};
use crate::policy::{Mode, Policy};
use crate::sizes::SizeRule;
use crate::time::Ts;

/// The least size any member may be applied: `ceil(fraction × largest own decision)`, at most the
/// largest own decision. `fraction` is in `(0, 1]` (the spec checks it); an exact fit does not
/// round up (0.5 × 10 is 5).
pub fn fraction_floor(own: &[u32], fraction: f64) -> u32 {
    let largest = own.iter().copied().max().unwrap_or(0);
    let exact = fraction.clamp(0.0, 1.0) * f64::from(largest);
    // Guard against rounding up an exact fit (0.3 × 10 = 3.0000000000000004).
    let f = (exact - 1e-9).ceil();
    if f <= 0.0 { 0 } else { (f as u32).min(largest) }
}

/// Hold one member's decision (made by [`crate::decide`] from its own metrics) at or above
/// `floor`: a decision below it is raised (`RaiseToReplicaFloor`), a scale-in is cut to it
/// (`limited_by: ReplicaFloor`) or blocked (`AtReplicaFloor`). A decision that cannot act now
/// (paused, a resize in flight) is left alone, and a raise still passes the override pauses,
/// the backoff and the budget. `sizes` is the member's size rule.
pub fn hold_at_floor(policy: &Policy, d: &mut Decision, floor: u32, sizes: SizeRule, now: Ts) {
    if policy.mode == Mode::Paused || matches!(d.reason, Reason::Paused | Reason::ResizeInProgress) {
        return;
    }
    let known = policy.known.limits(now, policy.min_size, policy.max_size);
    let (min_size, max_size) = known.bounds(policy.min_size, policy.max_size);
    let Some((lo, hi)) = sizes.bounds(min_size, max_size) else { return };
    // The bounds win over the floor: maxSize is the user's word, the floor only the others' load.
    let floor = sizes.up(floor.max(lo)).unwrap_or(hi).min(hi);
    if d.desired >= floor {
        return;
    }
    let current = d.current;
    if current < floor {
        d.desired = floor;
        d.reason = Reason::RaiseToReplicaFloor;
        d.limited_by = None;
        d.wait_until = None;
    } else if floor < current {
        // A scale-in (or a lower bound's) that would go below the floor stops at it.
        d.desired = floor;
        d.limited_by = Some(Limit::ReplicaFloor);
    } else {
        d.desired = current;
        d.reason = Reason::AtReplicaFloor;
        d.limited_by = Some(Limit::ReplicaFloor);
        d.wait_until = None;
    }
    last_word(policy, d, &known, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PolicyState;
    use crate::tests::fixtures;

    fn decision(current: u32, desired: u32, reason: Reason) -> Decision {
        Decision {
            at: Ts(0),
            current,
            desired,
            recommended: Some(desired),
            reason,
            limited_by: None,
            wait_until: None,
            serving: None,
            metrics: Default::default(),
            state: PolicyState::default(),
        }
    }

    #[test]
    fn the_floor_is_the_ceiling_of_the_fraction_of_the_largest() {
        assert_eq!(fraction_floor(&[10, 3], 0.5), 5);
        assert_eq!(fraction_floor(&[9, 3], 0.5), 5);
        assert_eq!(fraction_floor(&[10, 2, 1], 0.3), 3);
        assert_eq!(fraction_floor(&[7, 1], 1.0), 7);
        assert_eq!(fraction_floor(&[], 0.5), 0);
    }

    #[test]
    fn a_cool_member_is_raised_held_or_cut_at_the_floor() {
        let p = fixtures::policy();
        // Below the floor: raised, whatever its own decision said.
        let mut d = decision(3, 3, Reason::WithinTolerance);
        hold_at_floor(&p, &mut d, 5, SizeRule::Any, Ts(0));
        assert_eq!((d.desired, d.reason), (5, Reason::RaiseToReplicaFloor));
        // A scale-in below the floor stops at it.
        let mut d = decision(8, 2, Reason::ScaleIn);
        hold_at_floor(&p, &mut d, 5, SizeRule::Any, Ts(0));
        assert_eq!((d.desired, d.reason, d.limited_by), (5, Reason::ScaleIn, Some(Limit::ReplicaFloor)));
        // At the floor: blocked, and says so.
        let mut d = decision(5, 3, Reason::ScaleIn);
        hold_at_floor(&p, &mut d, 5, SizeRule::Any, Ts(0));
        assert_eq!((d.desired, d.reason), (5, Reason::AtReplicaFloor));
        // Own decision above the floor: untouched.
        let mut d = decision(5, 9, Reason::ScaleOut);
        hold_at_floor(&p, &mut d, 5, SizeRule::Any, Ts(0));
        assert_eq!((d.desired, d.reason), (9, Reason::ScaleOut));
    }

    #[test]
    fn the_floor_respects_bounds_size_rule_and_what_cannot_act() {
        let mut p = fixtures::policy();
        p.max_size = 6;
        let mut d = decision(3, 3, Reason::WithinTolerance);
        hold_at_floor(&p, &mut d, 9, SizeRule::Any, Ts(0));
        assert_eq!(d.desired, 6, "maxSize wins over the floor");
        let mut d = decision(2, 2, Reason::WithinTolerance);
        hold_at_floor(&p, &mut d, 3, SizeRule::Multiple(2), Ts(0));
        assert_eq!(d.desired, 4, "only sizes the member can take");
        let mut d = decision(2, 2, Reason::ResizeInProgress);
        hold_at_floor(&p, &mut d, 5, SizeRule::Any, Ts(0));
        assert_eq!(d.desired, 2, "never through a resize in flight");
        let mut d = decision(2, 2, Reason::WithinTolerance);
        d.state.retry_resize_at = Some(Ts(60_000));
        hold_at_floor(&p, &mut d, 5, SizeRule::Any, Ts(0));
        assert_eq!((d.desired, d.reason), (2, Reason::ResizeBackoff), "the backoff has the last word");
    }
}
