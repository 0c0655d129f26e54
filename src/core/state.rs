//! The decision core's state: a small serializable value that lives in the policy's status, so a
//! restarted controller decides exactly as before.
//!
//! State changes in two places only: [`crate::core::decide`] (signals, recommendations, spike
//! hold) and the resize lifecycle below ([`PolicyState::begin_resize`],
//! [`PolicyState::finish_resize`], [`PolicyState::abandon_resize`]), which the actuator calls
//! when it starts a resize and when the target reports it done. Cooldowns are measured from when
//! a resize *finished*.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::core::policy::Policy;
use crate::core::signal::SignalState;
use crate::core::time::{Dur, Ts};

/// How many finished resizes are remembered for attributing samples to the capacity that served them.
const RESIZE_HISTORY: usize = 4;
/// The resize budget is counted over this rolling span.
pub const BUDGET_SPAN: Dur = Dur(24 * 3_600_000);

/// A resize that was started and has not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    /// Size before.
    pub from: u32,
    /// Size asked for.
    pub to: u32,
    /// When it was started.
    pub started_at: Ts,
    /// The target's operation name, if it has one (Bigtable LRO, GKE operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// A finished resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResizeRecord {
    /// Size before.
    pub from: u32,
    /// Size after.
    pub to: u32,
    /// When the target reported it done.
    pub finished_at: Ts,
}

/// Everything the core remembers between evaluations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyState {
    /// One streaming signal per metric, in spec order.
    #[serde(default)]
    pub signals: Vec<SignalState>,
    /// Recent recommendations `(time, size)`, oldest first, kept for the stabilization windows.
    #[serde(default)]
    pub recommendations: VecDeque<(Ts, u32)>,
    /// The resize in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
    /// The last few finished resizes, oldest first.
    #[serde(default)]
    pub resizes: Vec<ResizeRecord>,
    /// When the last scale-out finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_out_at: Option<Ts>,
    /// When the last resize of either direction finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resize_at: Option<Ts>,
    /// Scale-in is blocked until then, because of a spike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_hold_until: Option<Ts>,
    /// Start of the current resize-budget span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_since: Option<Ts>,
    /// Resizes started in the current budget span.
    #[serde(default)]
    pub budget_used: u32,
}

impl PolicyState {
    /// Make `signals` line up with the policy's metrics, resetting those whose spec changed.
    pub fn align(&mut self, policy: &Policy) {
        let fits = self.signals.len() == policy.metrics.len()
            && self.signals.iter().zip(&policy.metrics).all(|(s, m)| s.matches(m));
        if !fits {
            let old = std::mem::take(&mut self.signals);
            self.signals = policy
                .metrics
                .iter()
                .map(|m| old.iter().find(|s| s.matches(m)).cloned().unwrap_or_else(|| SignalState::new(m)))
                .collect();
        }
    }

    /// The capacity that was carrying load at `at`, from the resize history: added capacity counts
    /// only after its warm-up, removed capacity stops at once.
    #[inline]
    pub fn capacity_at(resizes: &[ResizeRecord], at: Ts, current: u32, warmup: Dur) -> u32 {
        let Some(first) = resizes.first() else { return current };
        for r in resizes.iter().rev() {
            let effective = if r.to > r.from { r.finished_at + warmup } else { r.finished_at };
            if at >= effective {
                return r.to;
            }
        }
        first.from
    }

    /// Resizes still available in the budget span at `now`.
    pub fn budget_left(&self, policy: &Policy, now: Ts) -> u32 {
        match self.budget_since {
            Some(since) if now - since < BUDGET_SPAN => policy.max_resizes_per_day.saturating_sub(self.budget_used),
            _ => policy.max_resizes_per_day,
        }
    }

    /// When the budget span resets, if the budget is exhausted.
    pub fn budget_resets_at(&self) -> Option<Ts> {
        self.budget_since.map(|s| s + BUDGET_SPAN)
    }

    /// The actuator started a resize (or, in the simulator, applied it).
    pub fn begin_resize(&mut self, from: u32, to: u32, operation: Option<String>, now: Ts) {
        match self.budget_since {
            Some(since) if now - since < BUDGET_SPAN => self.budget_used += 1,
            _ => {
                self.budget_since = Some(now);
                self.budget_used = 1;
            }
        }
        self.in_flight = Some(InFlight { from, to, started_at: now, operation });
    }

    /// The target reports the resize in flight done: cooldowns start now.
    pub fn finish_resize(&mut self, now: Ts) {
        if let Some(f) = self.in_flight.take() {
            if f.to > f.from {
                self.last_scale_out_at = Some(now);
            }
            self.last_resize_at = Some(now);
            self.resizes.push(ResizeRecord { from: f.from, to: f.to, finished_at: now });
            if self.resizes.len() > RESIZE_HISTORY {
                self.resizes.remove(0);
            }
        }
    }

    /// The resize in flight failed or vanished: forget it without starting cooldowns.
    pub fn abandon_resize(&mut self) {
        self.in_flight = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_follows_history_with_warmup_for_additions_only() {
        let resizes = [
            ResizeRecord { from: 4, to: 8, finished_at: Ts(1_000) },
            ResizeRecord { from: 8, to: 6, finished_at: Ts(10_000) },
        ];
        let warm = Dur(2_000);
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(500), 6, warm), 4);
        // Added capacity is warming up until 3_000.
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(2_000), 6, warm), 4);
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(3_000), 6, warm), 8);
        // Removed capacity stops at once.
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(10_000), 6, warm), 6);
        assert_eq!(PolicyState::capacity_at(&[], Ts(10_000), 6, warm), 6);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = PolicyState::default();
        s.begin_resize(3, 5, Some("operations/1".into()), Ts(60_000));
        s.recommendations.push_back((Ts(60_000), 5));
        let json = serde_json::to_string(&s).unwrap();
        let back: PolicyState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
