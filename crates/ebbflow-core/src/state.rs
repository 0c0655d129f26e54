//! The decision core's state: a small serializable value that lives in the policy's status, so a
//! restarted controller decides exactly as before.
//!
//! State changes in two places only: [`crate::decide`] (signals, recommendations, spike
//! hold) and the resize lifecycle below ([`PolicyState::begin_resize`],
//! [`PolicyState::finish_resize`], [`PolicyState::abandon_resize`]), which the actuator calls
//! when it starts a resize and when the target reports it done. Cooldowns are measured from when
//! a resize *finished*.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::decide::REC_CAP;
use crate::policy::Policy;
use crate::signal::{MAX_VALUE, Reference, SignalState};
use crate::time::{Dur, Ts};

/// Most finished resizes remembered, whatever their age: a bound on the state's size only. The
/// history is bounded by time (see [`PolicyState::prune_resizes`]); a count alone counted nodes
/// still warming up as serving once more resizes than it held fell inside one warm-up.
const MAX_RESIZE_RECORDS: usize = 256;
/// The resize budget is counted over this rolling span.
pub const BUDGET_SPAN: Dur = Dur(24 * 3_600_000);
/// How long a resize whose answer was lost (but which the target showed taken) may run without
/// the size changing before it counts as failed.
pub const UNCONFIRMED_GRACE: Dur = Dur(20 * 60_000);
/// Timestamps stored in the state may run ahead of `now` by this much (clocks of two replicas,
/// rounding) before they count as skew and are clamped.
pub const CLOCK_SKEW_TOLERANCE: Dur = Dur(60_000);

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
    /// For a request whose answer was lost but which the target showed taken: until then, a
    /// target that still has the old size is taken to be applying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_by: Option<Ts>,
}

/// A finished resize.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResizeRecord {
    /// Size before.
    pub from: u32,
    /// Size after.
    pub to: u32,
    /// When the target reported it done.
    pub finished_at: Ts,
    /// For added capacity: the first sample in which a per-node metric showed it serving (see
    /// [`PolicyState::serving_at`]). It counts from the later of this and the warm-up's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_from: Option<Ts>,
    /// For added capacity not yet shown serving: how many samples in a row were nearer the
    /// fall it brings than the baseline.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub fell: u8,
    /// For added capacity a per-node metric is judging: the per-node value it is expected to
    /// bring down, the raw value of the last samples that did not fall. While it is set the
    /// capacity does not count (until shown, or [`SERVING_PROOF_WAIT`] after the warm-up); 0
    /// when no metric judges it, and then it counts at the warm-up's end.
    #[serde(default, skip_serializing_if = "is_no_level")]
    pub level: f64,
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

fn is_no_level(x: &f64) -> bool {
    *x == 0.0
}

/// How long past its warm-up added capacity may go unseen in a per-node metric before it is
/// counted anyway: by then the load, not the capacity, explains what the metric shows (a rise
/// that made up for the fall, capacity that came in bit by bit). Bigtable asks for up to 20
/// minutes before new nodes carry their share of a loaded cluster, the slowest of the targets.
pub const SERVING_PROOF_WAIT: Dur = Dur::mins(20);

/// Samples in a row, nearer the fall than the baseline, that show added capacity serving: one
/// could be a dip.
pub const SERVING_SHOWN: u8 = 2;

/// The scatter of single per-node samples (relative) assumed while the signal has no estimate
/// of it.
const SERVING_SIGMA_UNKNOWN: f64 = 0.3;
/// The least fall, in units of the scatter, that a step of added capacity must make in the
/// per-node metric to be checked against it: samples are judged against the midpoint, half the
/// fall away, and at three times the scatter about one sample in 15 lands on the wrong side of
/// it by noise alone, two in a row (what shows a step) one in 200.
const SERVING_RESOLVE: f64 = 3.0;
/// Where a per-node value counts as saturated: from this share of the metric's ceiling to as
/// far above it.
pub(crate) const SATURATED: f64 = 0.97;

/// Whether the per-node value `x` reads as saturated against `ceiling` (see [`SATURATED`]):
/// `0.97 c <= x <= c / 0.97`, written as `0.97 x <= c <= x / 0.97`. The two agree but for
/// rounding within a few ulps of the band's ends (for a ceiling of 1.0, the only one
/// `core::units` gives, they agree there too).
///
/// Arithmetic on the sample only, the ceiling only compared: the compiler works out such a
/// test before it looks at the option, and the bytes of a `None` can be a subnormal number,
/// whose multiplication and division the CPU runs in microcode (a comparison it does not).
/// Written on the ceiling, it was a quarter of the decision core's time in the `ebbflow` binary
/// for a metric without a ceiling (4.2 million samples/s there against 6.5 in the core's own
/// bench, where those bytes happened to be harmless).
#[inline]
pub(crate) fn saturated(x: f64, ceiling: Option<f64>) -> bool {
    ceiling.is_some_and(|c| SATURATED * x <= c && c <= x / SATURATED)
}

/// The least step checked (a quarter more capacity): a smaller one over-reads demand by less
/// than that for at most the provisioning's overrun, and a rising load takes its fall out of
/// sight within minutes (2% a minute hides a 10% step in five), before two samples can show it.
const SERVING_LEAST_STEP: f64 = 1.25;

/// Drop the records no sample within `reach` of `now` needs, keeping the newest whose effect began
/// before the cutoff (it says what served then), and at most [`MAX_RESIZE_RECORDS`].
fn prune_records(records: &mut Vec<ResizeRecord>, now: Ts, reach: Dur, warmup: Dur) {
    let cutoff = now - reach;
    let first_needed = records.iter().rposition(|r| r.counted_from(warmup) < cutoff).unwrap_or(0);
    let drop = first_needed.max(records.len().saturating_sub(MAX_RESIZE_RECORDS));
    if drop > 0 {
        records.drain(..drop);
    }
}

impl ResizeRecord {
    /// A finished resize, its added capacity (if any) not yet seen serving.
    pub fn new(from: u32, to: u32, finished_at: Ts) -> ResizeRecord {
        ResizeRecord { from, to, finished_at, served_from: None, fell: 0, level: 0.0 }
    }

    /// Whether its size is what served a sample measured at `at`: removed capacity stops at
    /// once; added capacity serves after the warm-up, once a per-node metric showed it or the
    /// longest wait for that has passed.
    #[inline]
    fn counts_at(&self, at: Ts, warmup: Dur) -> bool {
        if self.to <= self.from {
            return at >= self.finished_at;
        }
        let warm = self.finished_at + warmup;
        at >= warm
            && (self.level == 0.0 || self.served_from.is_some_and(|s| at >= s) || at >= warm + SERVING_PROOF_WAIT)
    }

    /// From when its size serves every sample, whatever the metric shows.
    fn counted_from(&self, warmup: Dur) -> Ts {
        if self.to <= self.from {
            return self.finished_at;
        }
        let warm = self.finished_at + warmup;
        match self.served_from {
            Some(s) => s.max(warm),
            None if self.level > 0.0 => warm + SERVING_PROOF_WAIT,
            None => warm,
        }
    }
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
    /// The extremes of `recommendations` over each stabilization window, kept as they arrive: a
    /// cache for [`crate::decide`], never stored and never compared.
    #[serde(skip)]
    pub stabilizer: crate::decide::Stabilizer,
    /// The resize in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
    /// The last few finished resizes, oldest first.
    #[serde(default)]
    pub resizes: Vec<ResizeRecord>,
    /// With a steered built-in autoscaler (the target's size is its minimum): each change of
    /// its live size, as a record from the size before to the size seen, at the evaluation that
    /// first saw it, oldest first. A sample is read on the live size of its own time, as the
    /// policy's own resizes are otherwise (see [`PolicyState::serving_at`]): read on today's
    /// size, samples from before the autoscaler grew read as load that was never there, and the
    /// minimum climbed after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serving_changes: Vec<ResizeRecord>,
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
    /// When this state made its first decision. A state without history waits one scale-in
    /// stabilization window of its own decisions before any scale-in (back-filled samples are
    /// no substitute for having watched the load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluating_since: Option<Ts>,
    /// Consecutive resizes that failed, were refused, or had no effect.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resize_failures: u32,
    /// After failed resizes, no resize is sent before this time (exponential backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_resize_at: Option<Ts>,
    /// Why the last resize failed, for people (kept while the backoff lasts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resize_error: Option<String>,
    /// What the core already knows of this state since it was read: that [`PolicyState::sanitize`]
    /// found its signals and recommendations plausible, and the newest `now` that
    /// [`PolicyState::clamp_future`] brought its history under; only the core's own transitions
    /// (which keep both so) since. Not serialized: a state read back from status or the state
    /// file is checked again; one kept in memory between evaluations keeps what is known of it.
    #[serde(skip)]
    pub checked: Checked,
}

/// What the core knows of a state (see [`PolicyState::checked`]). Equal to every other: two
/// states that hold the same values are the same state, checked or not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checked {
    signals: bool,
    /// No resize record or recommendation lies after this plus the skew tolerance.
    clamped_at: Option<Ts>,
}

impl PartialEq for Checked {
    fn eq(&self, _: &Checked) -> bool {
        true
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Longest error text kept, in bytes: status has a size budget, and the start of an error says
/// what it is.
const MAX_ERROR: usize = 300;

/// Cut `why` to [`MAX_ERROR`] bytes (on a character boundary) and mark the cut.
fn shorten(why: &mut String) {
    if why.len() > MAX_ERROR {
        let cut = (0..=MAX_ERROR).rev().find(|&i| why.is_char_boundary(i)).unwrap_or(0);
        why.truncate(cut);
        why.push('…');
    }
}

/// First backoff after a failed resize; it doubles with each further failure.
pub const RESIZE_BACKOFF_BASE: Dur = Dur(60_000);
/// Longest backoff after failed resizes, before jitter.
pub const RESIZE_BACKOFF_CAP: Dur = Dur(30 * 60_000);
/// Longest backoff after failed resizes, with the jitter (up to a fifth more).
pub const RESIZE_BACKOFF_MAX: Dur = Dur(RESIZE_BACKOFF_CAP.0 * 6 / 5);

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
    /// only after its warm-up and once shown serving (see [`ResizeRecord::served_from`]),
    /// removed capacity stops at once.
    #[inline]
    pub fn capacity_at(resizes: &[ResizeRecord], at: Ts, current: u32, warmup: Dur) -> u32 {
        Self::capacity_leaning(resizes, at, current, warmup, 0)
    }

    /// The capacity that served a sample measured at `at` beyond doubt: removed capacity stops
    /// at once, added capacity counts only once a per-node metric showed it serving (after its
    /// warm-up) or the longest wait for that has run out; the warm-up's word alone does not do.
    pub fn proven_capacity_at(resizes: &[ResizeRecord], at: Ts, current: u32, warmup: Dur) -> u32 {
        let Some(first) = resizes.first() else { return current };
        for r in resizes.iter().rev() {
            let warm = r.finished_at + warmup;
            let counts = if r.to <= r.from {
                at >= r.finished_at
            } else {
                r.served_from.is_some_and(|s| at >= s.max(warm)) || at >= warm + SERVING_PROOF_WAIT
            };
            if counts {
                return r.to;
            }
        }
        first.from
    }

    /// [`PolicyState::capacity_at`], with the newest 64 records whose bit is set in `leaning`
    /// (newest in the lowest bit) counted as serving too.
    #[inline]
    fn capacity_leaning(resizes: &[ResizeRecord], at: Ts, current: u32, warmup: Dur, leaning: u64) -> u32 {
        let Some(first) = resizes.first() else { return current };
        for (k, r) in resizes.iter().rev().enumerate() {
            if r.counts_at(at, warmup) || (k < 64 && leaning & (1 << k) != 0) {
                return r.to;
            }
        }
        first.from
    }

    /// [`PolicyState::capacity_at`] for a per-node sample of `value` at `at`, which may show
    /// added capacity serving: `reference` is where the raw value stood before the sample
    /// (`None` for a metric that does not judge capacity).
    ///
    /// The warm-up is a guess, and the world's provisioning may be slower: a node pool's VM
    /// must boot and its pods start, a Bigtable cluster rebalance. Counted as serving too
    /// early, nodes that do not serve yet multiply an unchanged per-node metric into demand
    /// that does not exist, and the policy scales out again on it (4 nodes at 88% CPU grew to
    /// 9 where 6 were enough, new nodes serving 15 minutes after a 20-minute warm-up). So added capacity
    /// counts once the metric shows it: from the resize's end, each sample is compared with
    /// the raw value of the last samples that did not fall (so a rising load moves the
    /// baseline, and no capacity model is read into it) and with that baseline fallen by
    /// `from / to`. [`SERVING_SHOWN`] samples in a row nearer the fall show the capacity
    /// serving; it counts from the later of that and the warm-up's end, or, never shown, once
    /// [`SERVING_PROOF_WAIT`] has run out after the warm-up. Until then, after the warm-up, a
    /// sample nearer the fall is read on the new size, so nodes that serve as soon as they
    /// are warm cost no sample misread. A step of less than a quarter, or whose fall the noise
    /// would blur (less than three times the scatter), is not checked: it counts at its
    /// warm-up's end (or, behind a step still waiting, once that one counts), and a mistake
    /// there is as small as the step. Saturated samples are read as the warm-up says.
    pub fn serving_at(
        resizes: &mut [ResizeRecord],
        at: Ts,
        current: u32,
        warmup: Dur,
        value: f64,
        reference: Option<Reference>,
    ) -> u32 {
        // A 0 (a glitch, an idle moment) and a value that is no number say nothing here.
        let usable = value > 0.0 && value.is_finite();
        // The newest 64 records that this sample leans to serving, newest in the lowest bit.
        let mut leaning: u64 = 0;
        if let Some(reference) = reference.filter(|r| usable && r.level > 0.0 && r.level.is_finite()) {
            let sigma = reference.sigma.filter(|s| s.is_finite()).unwrap_or(SERVING_SIGMA_UNKNOWN);
            // A step too small or too blurred to see in the metric (`unseen`) counts at its
            // warm-up's end, as the warm-up says, but not before the steps added before it: it
            // cannot serve while they do not.
            let unseen = |step: f64| step < SERVING_LEAST_STEP || step.ln() < SERVING_RESOLVE * sigma;
            // A saturated value (CPU at 100%) stays there while the load exceeds even the new
            // capacity: it shows nothing either way, so it is read as the warm-up says. A value
            // well above the ceiling comes from no capped metric (a recording's estimate of load
            // beyond the nodes it had) and is judged as it is.
            let saturated = |x: f64| saturated(x, reference.ceiling);
            // Once this sample showed one step serving, the steps after it are judged from their
            // baseline brought down by that step's fall (`shown`, the product of from/to of the
            // steps shown): the fall was partly that step's, and theirs may come with it.
            let mut shown = 1.0f64;
            // Whether a step before this one is still waiting to be shown.
            let mut waiting = false;
            let n = resizes.len();
            for (i, r) in resizes.iter_mut().enumerate() {
                if r.to <= r.from || r.served_from.is_some() || at < r.finished_at {
                    continue;
                }
                let warm = r.finished_at + warmup;
                if at >= warm + SERVING_PROOF_WAIT {
                    // Counted whatever the metric shows: nothing left to judge.
                    (r.fell, r.level) = (0, 0.0);
                    continue;
                }
                // Read on the new size for this sample: warm, and not behind a step still
                // waiting (the bit of the newest 64 records only).
                let lean = if !waiting && at >= warm && n - i <= 64 { 1 << (n - 1 - i) } else { 0 };
                let step = r.to as f64 / r.from.max(1) as f64;
                if saturated(value) || (r.level == 0.0 && saturated(reference.level)) {
                    // Read as the warm-up says.
                    leaning |= lean;
                    continue;
                }
                if unseen(step) {
                    if waiting {
                        // Held (a level, so it does not count) until the steps before it show.
                        r.level = value.min(MAX_VALUE);
                    } else {
                        let held = r.level > 0.0 || shown < 1.0;
                        (r.fell, r.level) = (0, 0.0);
                        r.served_from = Some(if held { at } else { r.finished_at });
                    }
                    continue;
                }
                // The first sample after the resize: the value before it is the baseline.
                if !(r.level > 0.0 && r.level.is_finite()) {
                    r.level = reference.level.min(MAX_VALUE);
                }
                if shown < 1.0 {
                    (r.fell, r.level) = (0, r.level * shown);
                }
                // Nearer (on a log scale) the baseline fallen by `from / to` than the baseline.
                if value * step.sqrt() < r.level {
                    r.fell = r.fell.saturating_add(1);
                    // Read on the new size, though not shown beyond doubt yet.
                    leaning |= lean;
                } else {
                    // Not fallen: the sample moves the baseline (a rising load), each sample
                    // counted at most at the midpoint above it, so a lone spike cannot lift it so
                    // far that ordinary samples look fallen.
                    r.fell = 0;
                    r.level = 0.5 * (r.level + value.min(r.level * step.sqrt()));
                }
                if r.fell >= SERVING_SHOWN && !waiting {
                    (r.fell, r.level) = (0, 0.0);
                    r.served_from = Some(at);
                    shown /= step;
                } else {
                    waiting = true;
                }
            }
        }
        Self::capacity_leaning(resizes, at, current, warmup, leaning)
    }

    /// Forget resizes that no sample still to be read can fall under: a sample is read at most
    /// `reach` after it was measured, so a resize whose effect started before `now - reach` only
    /// matters as the `from` of the one after it (which is kept).
    pub fn prune_resizes(&mut self, now: Ts, reach: Dur, warmup: Dur) {
        prune_records(&mut self.resizes, now, reach, warmup);
        prune_records(&mut self.serving_changes, now, reach, warmup);
    }

    /// Note the live size a steered autoscaler shows at `now` (see
    /// [`PolicyState::serving_changes`]).
    pub fn note_serving(&mut self, live: u32, now: Ts) {
        let last = self.serving_changes.last().map(|r| r.to);
        if last != Some(live) {
            // First seen: it has served as far back as anything is known.
            self.serving_changes.push(ResizeRecord::new(last.unwrap_or(live), live, now));
        }
    }

    /// Clamp timestamps that lie in the future (clock skew between replicas, a hand-edited
    /// status), so a wrong clock cannot silently stop evaluation or exhaust the budget. Returns
    /// the fields that were clamped, for a warning.
    ///
    /// A time from the future says nothing about when a thing happened. Read as "now", it made a
    /// resize as recent as it can be, which delays scale-outs: its nodes counted as warming for a
    /// whole warm-up (samples were read as if the old size served, hiding 48% overload for
    /// 7 minutes) and the scale-out cooldown started again. So for scale-out such times count as
    /// long past, while scale-in, slow by design, waits its cooldown from now.
    pub fn clamp_future(&mut self, now: Ts, spike_hold: Dur) -> Vec<&'static str> {
        let limit = now + CLOCK_SKEW_TOLERANCE;
        // Clamp one timestamp; report whether it was ahead of `bound`.
        let fix = |t: &mut Ts, bound: Ts| {
            let ahead = *t > bound;
            if ahead {
                *t = now;
            }
            ahead
        };
        let mut clamped = Vec::new();
        // A budget span dated in the future would keep the budget exhausted until then; its
        // count was kept on a clock we cannot trust, so the span starts again now.
        if self.budget_since.is_some_and(|t| t > limit) {
            self.budget_since = Some(now);
            self.budget_used = 0;
            clamped.push("budgetSince");
        }
        // Scale-in cooldowns and the storage floor count from the last resize: from now.
        for (field, slot) in
            [("lastResizeAt", &mut self.last_resize_at), ("evaluatingSince", &mut self.evaluating_since)]
        {
            if slot.as_mut().is_some_and(|t| fix(t, limit)) {
                clamped.push(field);
            }
        }
        // The scale-out cooldown does not start again on a clock's word; scale-in still waits
        // from now, through `lastResizeAt`.
        if self.last_scale_out_at.is_some_and(|t| t > limit) {
            self.last_scale_out_at = None;
            self.last_resize_at = Some(self.last_resize_at.map_or(now, |t| t.max(now)));
            clamped.push("lastScaleOutAt");
        }
        // These two lie in the future by design, but never by more than their own length (for a
        // backoff, the one its count of failures gives).
        if self.spike_hold_until.as_mut().is_some_and(|t| fix(t, limit + spike_hold)) {
            clamped.push("spikeHoldUntil");
        }
        let doublings = self.resize_failures.saturating_sub(1).min(20);
        let backoff = Dur(RESIZE_BACKOFF_BASE.0.saturating_mul(1i64 << doublings).min(RESIZE_BACKOFF_CAP.0) * 6 / 5);
        if self.retry_resize_at.as_mut().is_some_and(|t| fix(t, limit + backoff)) {
            clamped.push("retryResizeAt");
        }
        if self.in_flight.as_mut().is_some_and(|f| fix(&mut f.started_at, limit)) {
            clamped.push("inFlight.startedAt");
        }
        if self
            .in_flight
            .as_mut()
            .and_then(|f| f.confirm_by.as_mut())
            .is_some_and(|t| fix(t, limit + UNCONFIRMED_GRACE))
        {
            clamped.push("inFlight.confirmBy");
        }
        // Every record and recommendation the core adds is stamped with the evaluation's `now`:
        // once brought under an earlier `now`, the history has nothing later, unless the clock
        // went back since (then it is looked through again).
        let history_under = self.checked.clamped_at.is_some_and(|t| t <= now);
        self.checked.clamped_at = Some(now);
        // The history was kept on a clock we cannot trust: forget it, so every sample is read
        // against the size that serves now instead of counting nodes as warming up.
        if !history_under
            && self.resizes.iter().any(|r| r.finished_at.max(r.served_from.unwrap_or(r.finished_at)) > limit)
        {
            self.resizes.clear();
            clamped.push("resizes");
        }
        // Dated now, an old lower recommendation would hold a scale-out in its stabilization
        // window. Without them scale-in waits, as a new state does, for a whole window of its
        // own decisions.
        if !history_under && self.recommendations.iter().any(|&(t, _)| t > limit) {
            self.recommendations.retain(|&(t, _)| t <= limit);
            self.evaluating_since = Some(self.evaluating_since.map_or(now, |t| t.max(now)));
            clamped.push("recommendations");
        }
        let mut signals = false;
        for s in &mut self.signals {
            if s.last_at.is_some_and(|t| t > limit) {
                // Its samples were read on a clock we cannot trust: start the signal afresh rather
                // than skip every real sample until that time.
                *s = s.fresh();
                signals = true;
            }
        }
        if signals {
            clamped.push("signals");
        }
        clamped
    }

    /// Reset what no valid sample or resize could have left in the state (non-finite, negative
    /// or absurdly large numbers, a malformed forecast profile, sizes far beyond every bound) to
    /// "no history", as [`crate::signal::SignalState::ingest`] ignores such samples: a state
    /// file is trusted no more than a sample (a smoothed value of 1e308 scaled 9 -> 18 at once).
    /// `current` is the size the target reports. Returns the fields reset, for a warning.
    pub fn sanitize(&mut self, policy: &Policy, current: u32) -> Vec<&'static str> {
        let mut reset = Vec::new();
        let (mut signals, mut profiles) = (false, false);
        // Checking a signal reads its whole window and forecast profile (a third of a replay's
        // time when done on every evaluation); the core's own updates keep them plausible, so a
        // state is checked once after it was read, and again only if someone changed its signals.
        let known = self.checked.signals;
        let unchecked = if known { &mut [][..] } else { &mut self.signals[..] };
        for s in unchecked {
            if s.profile.as_ref().is_some_and(|p| !p.is_plausible()) {
                s.profile = None;
                profiles = true;
            }
            if !s.is_plausible() {
                *s = s.fresh();
                signals = true;
            }
        }
        self.checked.signals = true;
        if signals {
            reset.push("signals");
        }
        if profiles {
            reset.push("signals.profile");
        }
        // The policy asks for no size above its largest maximum (an override may raise it), and
        // the target reports what it has. Twice that: maxSize may have been lowered since (a
        // record 20 -> 10 after maxSize went from 20 to 10 is real), but a size far beyond every
        // bound read as the capacity that served multiplies demand by as much.
        let bound = policy
            .known
            .overrides
            .iter()
            .filter_map(|o| o.max_size)
            .fold(policy.max_size.max(current), u32::max)
            .saturating_mul(2);
        if self.resizes.iter().any(|r| r.from.max(r.to) > bound) {
            // Without history every sample is read against the size that serves now.
            self.resizes.clear();
            reset.push("resizes");
        }
        // A level is a raw value, and a step is shown once `fell` reaches SERVING_SHOWN.
        let mut judged = false;
        for r in &mut self.resizes {
            if !(0.0..=MAX_VALUE).contains(&r.level) || r.fell >= SERVING_SHOWN {
                (r.fell, r.level) = (0, 0.0);
                judged = true;
            }
        }
        if judged {
            reset.push("resizes.level");
        }
        if let Some(f) = self.in_flight.as_mut()
            && f.from > bound
        {
            // While it runs, the old size is taken to serve: take the one the target reports.
            f.from = current;
            reset.push("inFlight.from");
        }
        // The core never recommends past the cap: only a state read from outside can.
        if !known && self.recommendations.iter().any(|&(_, r)| r > REC_CAP) {
            self.recommendations.retain(|&(_, r)| r <= REC_CAP);
            reset.push("recommendations");
        }
        if let Some(why) = self.last_resize_error.as_mut()
            && why.len() > MAX_ERROR + '…'.len_utf8()
        {
            shorten(why);
            reset.push("lastResizeError");
        }
        reset
    }

    /// When the scale-out cooldown allows the next scale-out, if a scale-out finished.
    pub fn scale_out_allowed_at(&self, policy: &Policy) -> Option<Ts> {
        self.last_scale_out_at.map(|t| t + policy.scale_out.cooldown)
    }

    /// When scale-in may act again: the scale-in cooldown after any resize, and after a
    /// scale-out also once the new capacity has warmed up and a full smoothing window has been
    /// measured on it. `None` when no resize finished.
    pub fn scale_in_allowed_at(&self, policy: &Policy) -> Option<Ts> {
        let mut allowed = self.last_resize_at.map(|t| t + policy.scale_in.cooldown);
        if let Some(out) = self.last_scale_out_at {
            let window = policy.metrics.iter().map(|m| m.window).max().unwrap_or(Dur::ZERO);
            let warm = out + policy.warmup + window;
            allowed = Some(allowed.map_or(warm, |a| a.max(warm)));
        }
        allowed
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
        self.in_flight = Some(InFlight { from, to, started_at: now, operation, confirm_by: None });
    }

    /// The target reports the resize in flight done: cooldowns start now.
    pub fn finish_resize(&mut self, now: Ts) {
        if let Some(f) = self.in_flight.take() {
            if f.to > f.from {
                self.last_scale_out_at = Some(now);
            }
            self.last_resize_at = Some(now);
            self.resizes.push(ResizeRecord::new(f.from, f.to, now));
            if self.resizes.len() > MAX_RESIZE_RECORDS {
                self.resizes.remove(0);
            }
        }
    }

    /// The resize in flight finished at a size other than the one asked for (the target rounds,
    /// e.g. Bigtable's 2x node scaling): record what the target really has.
    pub fn finish_resize_at_size(&mut self, size: u32, now: Ts) {
        if let Some(f) = self.in_flight.as_mut() {
            f.to = size;
        }
        self.finish_resize(now);
    }

    /// The resize in flight failed, vanished or had no effect: forget it without starting
    /// cooldowns. It changed nothing, so it does not count against the daily budget.
    pub fn abandon_resize(&mut self) {
        if let Some(f) = self.in_flight.take()
            && self.budget_since.is_some_and(|since| f.started_at >= since)
        {
            self.budget_used = self.budget_used.saturating_sub(1);
        }
    }

    /// A resize failed (refused, failed, or without effect): no resize is sent for an
    /// exponentially growing, capped and jittered time.
    pub fn note_resize_failure(&mut self, now: Ts, why: &str) {
        let mut why = why.to_string();
        shorten(&mut why);
        self.last_resize_error = Some(why);
        self.resize_failures = self.resize_failures.saturating_add(1);
        // The jitter's seed: the time and what this policy's signals last saw, so policies that
        // fail together (an outage) spread out instead of retrying in lockstep.
        let mut seed = now.0.to_le_bytes().to_vec();
        for sig in &self.signals {
            seed.extend_from_slice(sig.name.as_bytes());
            seed.extend_from_slice(&sig.last_demand.unwrap_or(0.0).to_bits().to_le_bytes());
        }
        let wait = crate::backoff::exponential(self.resize_failures, RESIZE_BACKOFF_BASE, RESIZE_BACKOFF_CAP, &seed);
        self.retry_resize_at = Some(now + wait);
    }

    /// A resize took effect: the backoff is over.
    pub fn note_resize_success(&mut self) {
        self.resize_failures = 0;
        self.retry_resize_at = None;
        self.last_resize_error = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The saturated band is [0.97 c, c / 0.97] of the ceiling; no ceiling, no band, whatever
    /// the value. For the ceiling the units give (1.0), the test written on the sample answers
    /// as the band written on the ceiling does, ulp by ulp across both ends.
    #[test]
    fn a_value_is_saturated_within_three_percent_of_its_ceiling() {
        for c in [1.0, 0.5, 100.0] {
            assert!(saturated(c, Some(c)));
            assert!(!saturated(0.969 * c, Some(c)), "{c}");
            assert!(!saturated(c / 0.969, Some(c)), "{c}");
            assert!(saturated(0.971 * c, Some(c)), "{c}");
            assert!(saturated(c / 0.971, Some(c)), "{c}");
            assert!(!saturated(c, None));
        }
        assert!(!saturated(f64::NAN, Some(1.0)));
        let band = |x: f64, c: f64| (SATURATED * c..=c / SATURATED).contains(&x);
        let c = 1.0f64;
        for edge in [SATURATED * c, c / SATURATED] {
            for k in -50i64..=50 {
                let x = f64::from_bits((edge.to_bits() as i64 + k) as u64);
                assert_eq!(saturated(x, Some(c)), band(x, c), "{x:e}, {k} ulps from {edge}");
            }
        }
    }

    #[test]
    fn capacity_follows_history_with_warmup_for_additions_only() {
        let resizes = [ResizeRecord::new(4, 8, Ts(1_000)), ResizeRecord::new(8, 6, Ts(10_000))];
        let warm = Dur(2_000);
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(500), 6, warm), 4);
        // Added capacity is warming up until 3_000.
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(2_000), 6, warm), 4);
        // No metric judges it: it serves from the warm-up's end.
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(3_000), 6, warm), 8);
        // A metric judges it and has not seen it serve: not until the wait for that runs out.
        let mut judged = resizes;
        judged[0].level = 0.7;
        assert_eq!(PolicyState::capacity_at(&judged, Ts(3_000), 6, warm), 4);
        assert_eq!(PolicyState::capacity_at(&judged[..1], Ts(3_000) + SERVING_PROOF_WAIT, 6, warm), 8);
        // Shown serving: from the later of that and the warm-up's end.
        let mut shown = resizes;
        shown[0].served_from = Some(Ts(1_500));
        assert_eq!(PolicyState::capacity_at(&shown, Ts(2_000), 6, warm), 4);
        assert_eq!(PolicyState::capacity_at(&shown, Ts(3_000), 6, warm), 8);
        // Removed capacity stops at once.
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(10_000), 6, warm), 6);
        assert_eq!(PolicyState::capacity_at(&[], Ts(10_000), 6, warm), 6);
    }

    /// What served beyond doubt: added capacity only once shown serving or once the wait for
    /// that ran out, never on the warm-up's word alone (a saturated sample's floor is read on
    /// it, so a warm-up shorter than the provisioning does not compound).
    #[test]
    fn proven_capacity_waits_for_the_metric_or_the_longest_wait() {
        let resizes = [ResizeRecord::new(4, 8, Ts(1_000)), ResizeRecord::new(8, 6, Ts(10_000))];
        let warm = Dur(2_000);
        assert_eq!(PolicyState::proven_capacity_at(&resizes, Ts(3_000), 6, warm), 4, "warm, not shown");
        assert_eq!(PolicyState::capacity_at(&resizes, Ts(3_000), 6, warm), 8, "the warm-up's word");
        assert_eq!(PolicyState::proven_capacity_at(&resizes[..1], Ts(3_000) + SERVING_PROOF_WAIT, 6, warm), 8);
        let mut shown = resizes;
        shown[0].served_from = Some(Ts(1_500));
        assert_eq!(PolicyState::proven_capacity_at(&shown, Ts(2_000), 6, warm), 4, "shown before its warm-up");
        assert_eq!(PolicyState::proven_capacity_at(&shown, Ts(3_000), 6, warm), 8);
        // Removed capacity stops at once.
        assert_eq!(PolicyState::proven_capacity_at(&resizes, Ts(10_000), 6, warm), 6);
        assert_eq!(PolicyState::proven_capacity_at(&[], Ts(10_000), 6, warm), 6);
    }

    /// Added capacity counts once the per-node metric fell as it would with it serving, and
    /// not before its warm-up ends: a value that stays where it was keeps the old size (the
    /// nodes are still provisioning), a rising load moves the baseline, and capacity added in
    /// two steps is shown one step at a time.
    #[test]
    fn added_capacity_counts_once_the_metric_shows_it() {
        /// A per-node metric's recent raw value, as the signal keeps it, and the samples it
        /// judges a resize history by.
        struct Metric {
            recent: f64,
            sigma: f64,
        }
        impl Metric {
            fn sample(&mut self, r: &mut [ResizeRecord], m: i64, value: f64) -> u32 {
                let reference = Some(Reference { level: self.recent, sigma: Some(self.sigma), ceiling: None });
                let c = PolicyState::serving_at(r, Ts(m * 60_000), 9, Dur::mins(3), value, reference);
                self.recent = 0.5 * (self.recent + value);
                c
            }
        }
        let min = |m: i64| Ts(m * 60_000);
        let mut r = [ResizeRecord::new(1, 5, min(3)), ResizeRecord::new(5, 9, min(8))];
        // Demand 3 nodes' worth: 3.0 per node on 1 node, 0.6 on 5, 0.33 on 9; 10% scatter.
        let mut metric = Metric { recent: 3.0, sigma: 0.1 };
        let mut at = |m: i64, value: f64| metric.sample(&mut r, m, value);
        assert_eq!(at(4, 3.0), 1, "not warm yet");
        assert_eq!(at(6, 3.1), 1, "warm, but the per-node value did not fall: still provisioning");
        assert_eq!(at(7, 2.9), 1);
        assert_eq!(at(8, 0.62), 5, "it fell: read on the new size, though half the proof");
        assert_eq!(at(9, 0.6), 5, "shown; the second step is not warm");
        assert_eq!(at(11, 0.6), 5, "the second step warm, and the value did not fall");
        assert_eq!(at(12, 0.34), 9, "now the second serves");
        assert_eq!(at(13, 0.33), 9);
        assert_eq!(r[0].served_from, Some(min(9)));
        assert_eq!(r[1].served_from, Some(min(13)));
        // Once shown, a later higher value is load, not capacity missing.
        assert_eq!(metric.sample(&mut r, 15, 3.0), 9);

        // A step the scatter would blur (2 -> 3 is a fall of 41% on a log scale, the scatter
        // 15%), or a small one (10 -> 11), is not checked: it counts at its warm-up's end.
        for (from, to, sigma) in [(2, 3, 0.15), (10, 11, 0.01)] {
            let mut unchecked = [ResizeRecord::new(from, to, min(0))];
            let mut metric = Metric { recent: 0.6, sigma };
            assert_eq!(metric.sample(&mut unchecked, 1, 0.6), from);
            assert_eq!(metric.sample(&mut unchecked, 3, 0.6), to, "{from} -> {to}");
        }

        // A lone dip is read on the new size, and the next ordinary sample on the old again.
        let mut dip = [ResizeRecord::new(1, 5, min(0))];
        let mut metric = Metric { recent: 3.0, sigma: 0.1 };
        assert_eq!(metric.sample(&mut dip, 4, 3.0), 1);
        assert_eq!(metric.sample(&mut dip, 5, 0.5), 5);
        assert_eq!(metric.sample(&mut dip, 6, 3.1), 1);
        assert_eq!(dip[0].served_from, None);

        // Nodes that serve at once count when the warm-up ends.
        let mut quick = [ResizeRecord::new(4, 6, min(0))];
        let mut metric = Metric { recent: 0.9, sigma: 0.05 };
        assert_eq!(metric.sample(&mut quick, 1, 0.6), 4, "shown, but warming up");
        assert_eq!(metric.sample(&mut quick, 3, 0.61), 6);

        // A rising load moves the baseline: 2% a minute for 8 minutes, then the fall by 4/6.
        let mut rising = [ResizeRecord::new(4, 6, min(0))];
        let mut metric = Metric { recent: 0.8, sigma: 0.05 };
        for m in 1..=8 {
            assert_eq!(metric.sample(&mut rising, m, 0.8 * (1.0 + 0.02 * m as f64)), 4, "minute {m}");
        }
        assert_eq!(metric.sample(&mut rising, 9, 0.94 * 4.0 / 6.0), 6);

        // Two steps whose nodes serve together: the first is shown, and the second is judged
        // from its baseline brought down by the first one's fall, so it shows too.
        let mut together = [ResizeRecord::new(4, 6, min(0)), ResizeRecord::new(6, 9, min(1))];
        let mut metric = Metric { recent: 0.9, sigma: 0.02 };
        assert_eq!(metric.sample(&mut together, 1, 0.9), 4);
        assert_eq!(metric.sample(&mut together, 4, 0.4), 6, "both fell; the second waits for the first");
        assert_eq!(metric.sample(&mut together, 5, 0.4), 9, "the first shown, the second leans");
        assert_eq!(metric.sample(&mut together, 6, 0.41), 9);
        assert_eq!((together[0].served_from, together[1].served_from), (Some(min(5)), Some(min(6))));
        // A lone spike lifts the baseline by at most half the way to the midpoint: the ordinary
        // samples after it do not look fallen.
        let mut spiked = [ResizeRecord::new(2, 4, min(0))];
        let mut metric = Metric { recent: 1.0, sigma: 0.02 };
        for (m, v) in [(1, 1.0), (2, 50.0), (3, 1.0), (4, 1.0), (5, 1.0)] {
            assert_eq!(metric.sample(&mut spiked, m, v), 2, "minute {m}");
        }
        assert_eq!(spiked[0].served_from, None);

        // Saturated (CPU at 100% before and after, the load beyond even the new size): the
        // metric shows nothing, and the warm-up alone decides.
        let mut saturated = [ResizeRecord::new(2, 4, min(0))];
        let reference = |level| Some(Reference { level, sigma: Some(0.05), ceiling: Some(1.0) });
        assert_eq!(PolicyState::serving_at(&mut saturated, min(1), 4, Dur::mins(3), 1.0, reference(1.0)), 2);
        assert_eq!(PolicyState::serving_at(&mut saturated, min(3), 4, Dur::mins(3), 1.0, reference(1.0)), 4);
        // Below the ceiling, or far above it (no capped metric reads 3 on a 0-1 scale), the
        // same step is judged.
        let mut beyond = [ResizeRecord::new(2, 4, min(0))];
        assert_eq!(PolicyState::serving_at(&mut beyond, min(1), 4, Dur::mins(3), 3.0, reference(3.0)), 2);
        assert_eq!(PolicyState::serving_at(&mut beyond, min(3), 4, Dur::mins(3), 3.0, reference(3.0)), 2);
        let mut unsaturated = [ResizeRecord::new(2, 4, min(0))];
        assert_eq!(PolicyState::serving_at(&mut unsaturated, min(1), 4, Dur::mins(3), 0.8, reference(0.8)), 2);
        assert_eq!(PolicyState::serving_at(&mut unsaturated, min(3), 4, Dur::mins(3), 0.8, reference(0.8)), 2);

        // Never shown: counted when the wait runs out.
        let mut quiet = [ResizeRecord::new(2, 4, min(0))];
        let mut metric = Metric { recent: 1.0, sigma: 0.1 };
        let late = 3 + SERVING_PROOF_WAIT.as_minutes() as i64;
        assert_eq!(metric.sample(&mut quiet, late - 1, 1.0), 2);
        assert_eq!(metric.sample(&mut quiet, late, 1.0), 4);

        // A 0, a value that is no number, or no reference (no sample yet) judge nothing: the
        // warm-up alone.
        let mut fresh = [ResizeRecord::new(2, 4, min(0))];
        let reference = Some(Reference { level: 1.0, sigma: None, ceiling: None });
        for value in [0.0, f64::NAN] {
            assert_eq!(PolicyState::serving_at(&mut fresh, min(2), 4, Dur::mins(3), value, reference), 2);
            assert_eq!(PolicyState::serving_at(&mut fresh, min(4), 4, Dur::mins(3), value, reference), 4);
        }
        assert_eq!(PolicyState::serving_at(&mut fresh, min(4), 4, Dur::mins(3), 0.5, None), 4);
        assert_eq!((fresh[0].served_from, fresh[0].fell, fresh[0].level), (None, 0, 0.0));
    }

    /// A record written before `servedFrom` existed loads as not yet shown serving.
    #[test]
    fn a_resize_record_without_served_from_loads() {
        let r: ResizeRecord = serde_json::from_str(r#"{"from":2,"to":4,"finishedAt":"2026-12-07T10:00:00Z"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.served_from, None);
        assert!(!serde_json::to_string(&r).unwrap_or_default().contains("servedFrom"));
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

    /// More resizes than any count inside one warm-up: the history is bounded by time, so nodes
    /// still warming up are never counted as serving (with a history of four, the fifth resize
    /// made the first one's from-size vanish and inflated demand).
    #[test]
    fn resize_history_is_bounded_by_time_not_count() {
        let warm = Dur::mins(20);
        let mut s = PolicyState::default();
        for (i, (from, to)) in [(3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9)].into_iter().enumerate() {
            let t = Ts(i as i64 * 60_000);
            s.begin_resize(from, to, None, t);
            s.finish_resize(t);
            s.prune_resizes(t, Dur::mins(30), warm);
        }
        assert_eq!(s.resizes.len(), 6);
        // A sample taken after the last resize, inside the first one's warm-up: 3 nodes served.
        assert_eq!(PolicyState::capacity_at(&s.resizes, Ts(6 * 60_000), 9, warm), 3);
        // Hours later the old records go, but the newest one stays as the base.
        s.prune_resizes(Ts(5 * 3_600_000), Dur::mins(30), warm);
        assert_eq!(s.resizes.len(), 1);
        assert_eq!(PolicyState::capacity_at(&s.resizes, Ts(5 * 3_600_000), 9, warm), 9);
    }

    /// A resize that never took effect is given back to the budget.
    #[test]
    fn abandoned_resizes_do_not_count_against_the_budget() {
        let mut s = PolicyState::default();
        s.begin_resize(3, 5, None, Ts(0));
        s.finish_resize(Ts(1_000));
        s.begin_resize(5, 7, None, Ts(2_000));
        assert_eq!(s.budget_used, 2);
        s.abandon_resize();
        assert_eq!(s.budget_used, 1);
        assert!(s.in_flight.is_none());
    }

    /// Timestamps from the future are clamped to now and named; a signal dated in the future
    /// starts afresh instead of skipping every real sample until then.
    #[test]
    fn future_timestamps_are_clamped() {
        let now = Ts(10 * 3_600_000);
        let future = now + Dur::mins(60);
        let mut s = PolicyState {
            last_resize_at: Some(future),
            budget_since: Some(future),
            budget_used: 100,
            spike_hold_until: Some(now + Dur::mins(20)),
            ..PolicyState::default()
        };
        let clamped = s.clamp_future(now, Dur::mins(30));
        assert_eq!(clamped, vec!["budgetSince", "lastResizeAt"]);
        assert_eq!(s.last_resize_at, Some(now));
        assert_eq!(s.budget_left(&crate::tests::fixtures::policy(), now), 100);
        // A legitimate hold (shorter than its length) is kept.
        assert_eq!(s.spike_hold_until, Some(now + Dur::mins(20)));
        assert!(s.clamp_future(now, Dur::mins(30)).is_empty());
    }

    /// For scale-out, times from the future count as long past: the history written on that clock
    /// is forgotten (its capacity serves) and the scale-out cooldown is not started again; for
    /// scale-in the last resize is now. A backoff may lie ahead only as far as its count of
    /// failures allows.
    #[test]
    fn future_resizes_do_not_count_as_recent_for_scale_out() {
        let now = Ts(10 * 3_600_000);
        let future = now + Dur::mins(60);
        let mut s = PolicyState {
            resizes: vec![ResizeRecord::new(3, 6, now - Dur::mins(90)), ResizeRecord::new(6, 9, future)],
            last_scale_out_at: Some(future),
            last_resize_at: Some(future),
            evaluating_since: Some(now - Dur::mins(120)),
            recommendations: [(now - Dur::mins(2), 9), (future, 6)].into(),
            resize_failures: 1,
            retry_resize_at: Some(now + Dur::mins(30)),
            ..PolicyState::default()
        };
        let clamped = s.clamp_future(now, Dur::mins(30));
        assert_eq!(clamped, vec!["lastResizeAt", "lastScaleOutAt", "retryResizeAt", "resizes", "recommendations"]);
        assert!(s.resizes.is_empty());
        assert_eq!(PolicyState::capacity_at(&s.resizes, now, 9, Dur::mins(20)), 9);
        assert_eq!((s.last_scale_out_at, s.last_resize_at), (None, Some(now)));
        assert_eq!(s.recommendations, [(now - Dur::mins(2), 9)]);
        // Scale-in watches the load afresh, as a new state does.
        assert_eq!(s.evaluating_since, Some(now));
        assert_eq!(s.retry_resize_at, Some(now));
        assert!(s.clamp_future(now, Dur::mins(30)).is_empty());
    }

    /// Values no valid sample can leave are reset to no history and named; a sound state is
    /// left exactly as it was.
    #[test]
    fn sanitize_resets_what_no_sample_could_produce() {
        let p = crate::tests::fixtures::policy();
        let mut sound = PolicyState::default();
        sound.align(&p);
        let samples: Vec<crate::Sample> =
            (0..20).map(|i| crate::Sample { at: Ts(i * 60_000), value: 0.5 + 0.01 * (i % 3) as f64 }).collect();
        sound.signals[0].ingest(&p.metrics[0], p.spike.as_ref(), &samples, |_, _, _| 9);
        sound.begin_resize(9, 12, None, Ts(20 * 60_000));
        sound.finish_resize(Ts(21 * 60_000));
        sound.recommendations.push_back((Ts(21 * 60_000), 1_000_000));
        let before = sound.clone();
        assert!(sound.sanitize(&p, 12).is_empty());
        assert_eq!(sound, before);

        let mut s = sound.clone();
        // Changed from outside the core, as a hand-edited status is: checked again.
        s.checked = Checked::default();
        s.signals[0].deviation = f64::NAN;
        s.resizes[0].to = 4_000_000_000;
        s.recommendations.push_back((Ts(22 * 60_000), u32::MAX));
        s.last_resize_error = Some("x".repeat(100_000));
        let reset = s.sanitize(&p, 12);
        assert_eq!(reset, vec!["signals", "resizes", "recommendations", "lastResizeError"]);
        assert_eq!(s.signals[0], sound.signals[0].fresh());
        assert!(s.resizes.is_empty());
        assert_eq!(s.recommendations, sound.recommendations);
        assert!(s.last_resize_error.as_ref().is_some_and(|e| e.len() <= 303), "{:?}", s.last_resize_error);
        assert!(s.sanitize(&p, 12).is_empty());

        // A forecast profile that lost hours would index out of bounds when the next hour closes.
        let mut s = sound.clone();
        s.checked = Checked::default();
        s.signals[0].profile =
            Some(Box::new(crate::forecast::Profile { peaks: vec![1.0; 3], seen: vec![1; 3], open: None, weight: 0.5 }));
        assert_eq!(s.sanitize(&p, 12), vec!["signals.profile"]);
        assert_eq!(s, sound);

        // The check is skipped only for a state the core itself kept: one read back from its
        // stored form (status, the state file) is checked again, whatever it was before.
        let mut text = serde_json::to_value(&sound).unwrap_or_default();
        text["signals"][0]["deviation"] = serde_json::json!(-1.0);
        let mut read: PolicyState = serde_json::from_value(text).unwrap_or_default();
        assert_eq!(read.sanitize(&p, 12), vec!["signals"]);
        assert_eq!(read.signals[0], sound.signals[0].fresh());
    }

    /// The history is looked through only when the clock may have gone back: kept under one
    /// `now`, it is skipped at a later one, and at an earlier one (a replica with a slower clock
    /// took over) what lies ahead of that clock is clamped as in a state read from status.
    #[test]
    fn a_clock_that_went_back_has_the_history_looked_through_again() {
        let mut s = PolicyState::default();
        assert!(s.clamp_future(Ts(200 * 60_000), Dur::ZERO).is_empty());
        s.recommendations.push_back((Ts(200 * 60_000), 7));
        s.resizes.push(ResizeRecord::new(3, 7, Ts(200 * 60_000)));
        assert!(s.clamp_future(Ts(201 * 60_000), Dur::ZERO).is_empty(), "a later clock: nothing ahead");
        let clamped = s.clamp_future(Ts(100 * 60_000), Dur::ZERO);
        assert_eq!(clamped, vec!["resizes", "recommendations"]);
        assert!(s.recommendations.is_empty() && s.resizes.is_empty());
    }

    /// Policies that fail in the same millisecond (an outage) do not retry in lockstep: the
    /// jitter also depends on what each policy's signals last saw.
    #[test]
    fn backoff_jitter_differs_between_policies_failing_together() {
        let p = crate::tests::fixtures::policy();
        let retry_at = |demand: f64| {
            let mut s = PolicyState::default();
            s.align(&p);
            s.signals[0].last_demand = Some(demand);
            s.note_resize_failure(Ts(1_000_000), "503");
            s.retry_resize_at.expect("backoff")
        };
        let times: std::collections::HashSet<Ts> = (1..20).map(|i| retry_at(f64::from(i) * 0.37)).collect();
        assert!(times.len() > 10, "{times:?}");
    }
}
