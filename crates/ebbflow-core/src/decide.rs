//! `decide`: one evaluation of a policy. Pure: data, state and `now` in; decision and next state out.
//!
//! The rules, in the order they apply:
//! 1. Fold the tick's new samples into each metric's signal (smoothing, spike detection).
//! 2. Judge each metric's data: missing, stale, NaN/negative, partial or ambiguous data is
//!    *missing*, never zero.
//! 3. The target is a ceiling and the dead band lies under it: `[target × (1 − tolerance), target]`.
//!    Above the band, a metric recommends the size that puts its smoothed demand in the middle
//!    of the band (`ceil(demand / (target × (1 − tolerance / 2)))`). Below it, the metric sizes
//!    on an upper confidence bound of the smoothed demand (the average plus
//!    `SCALE_IN_CONFIDENCE_Z` standard errors of the noise around it), so it scales in only when
//!    load is lower beyond the noise; otherwise it keeps the current size. A detected spike
//!    recommends at once what a scale-out on its level would (the middle of the band, with the
//!    noise's headroom). The policy's recommendation is the largest.
//! 4. Stabilization (as the HPA): scale out only to the lowest recommendation within the scale-out
//!    window, scale in only to the highest within the scale-in window. A spike skips the former.
//! 5. Guards: min/max bounds, the storage floor, cooldowns from when the last resize finished,
//!    the warm-up of new capacity, the spike hold, missing data, the step limits, a resize in
//!    flight, and the daily resize budget.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::forecast::ForecastMode;
use crate::known::{Active, Source};
use crate::policy::{MetricPolicy, MissingDataPolicy, Mode, Policy};
use crate::signal::{Ingest, Sample};
use crate::sizes::SizeRule;
use crate::state::PolicyState;
use crate::time::{Dur, Ts};

/// Most metrics a policy may have (the CRD enforces it too).
pub const MAX_METRICS: usize = 10;

/// Recommendations are capped far above any real size (not at maxSize), so that "load asks for
/// more than maxSize" stays visible in decisions and status.
pub(crate) const REC_CAP: u32 = 1_000_000;
/// A steady rise is fitted over this many smoothing windows of samples (see [`crate::ramp`]).
const RAMP_WINDOWS: i64 = 3;
/// A load climbs when its trend carries it further than its noise over this many windows.
const CLIMB_WINDOWS: i64 = 3;

/// Standard errors above the smoothed demand that scale-in sizes on: 2 is the conventional
/// one-sided ~97.5% bound. Measured on the bundled set against z = 0 and z = 1: each step up
/// costs about 2% more node-minutes and cuts minutes over the limit and reversals by about 12%.
const SCALE_IN_CONFIDENCE_Z: f64 = 2.0;

/// Why a metric source could not give clean data this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataProblem {
    /// The response carried execution errors: some data is missing.
    Partial,
    /// The query returned this many series where one was expected.
    MultipleSeries(u32),
    /// The query failed (error, timeout, malformed response).
    QueryFailed,
}

/// One metric's input for a tick.
#[derive(Debug, Clone, Copy)]
pub struct MetricInput<'a> {
    /// Raw samples, oldest first. May overlap what earlier ticks saw.
    pub samples: &'a [Sample],
    /// Set when the source knows the data is not clean.
    pub problem: Option<DataProblem>,
}

/// A lower bound on the size from the target itself (Bigtable storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Floor {
    /// The target has no such bound.
    #[default]
    None,
    /// The target needs at least this many nodes.
    Nodes(u32),
    /// The bound could not be read: scale-in is blocked.
    Unknown,
}

/// Everything observed for one tick.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Size the target reports now.
    pub current: u32,
    /// One entry per policy metric, in spec order.
    pub metrics: &'a [MetricInput<'a>],
    /// Lower bound from the target.
    pub floor: Floor,
    /// The target reports a resize running that this policy did not start.
    pub busy: bool,
    /// The sizes the target can take: every size the decision asks for is one of them.
    pub sizes: SizeRule,
    /// The capacity serving now when it is not `current` (a built-in autoscaler's live size under
    /// the minimum this policy steers): per-node samples are read as load on it, so demand, and
    /// every size the decision asks for, is the load's, while `current` stays what is written.
    pub serving: Option<u32>,
}

/// Why a metric counts as missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No sample has ever been seen.
    NoData,
    /// The newest sample is older than `maxDataAge`.
    Stale,
    /// The newest sample is NaN, infinite or negative.
    Invalid,
    /// The source reported a problem.
    Source(DataProblem),
}

/// How one metric fared this tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MetricOutcome {
    /// Why the metric is missing, if it is.
    pub missing: Option<Missing>,
    /// Size the smoothed value asks for.
    pub recommended: Option<u32>,
    /// Size a detected spike asks for.
    pub spike: Option<u32>,
    /// Valid new samples folded in this tick.
    pub accepted: u32,
    /// The target this metric was sized on: the spec's target, or lower when headroom for noise
    /// asks for it (see [`effective_target`]).
    pub effective_target: Option<f64>,
    /// How far single samples scatter around the smoothed value, as a fraction of it (a relative
    /// standard deviation), when known.
    pub noise: Option<f64>,
    /// Size the smoothed demand plus the forecast rise asks for, when the forecast expects a rise
    /// (whether or not the policy acts on it).
    pub forecast: Option<u32>,
    /// Demand the forecast expects at `now + lead` (smoothed demand plus the weighted rise).
    pub forecast_demand: Option<f64>,
    /// Size the load asks for when capacity ordered now serves, when it climbs steadily (a line
    /// through its newest samples, see [`crate::ramp`]); only ever adds.
    pub ramp: Option<u32>,
    /// Demand the line through a steady climb puts at `now + warmup`, whenever a line is believed
    /// (whether or not it asks for more than the smoothed demand): what the replay scores the line
    /// by.
    pub ramp_demand: Option<f64>,
    /// The load climbs beyond its noise (its trend, see [`crate::signal::SignalState::climbing`]):
    /// a scale-out lands at the bottom of the tolerance band rather than its middle.
    pub climbing: bool,
    /// The newest sample was saturated (a utilization at its ceiling): the size was asked for
    /// from it rather than from the smoothed value (see `decide`).
    pub saturated: bool,
    /// A guard metric whose value (the newest raw sample or the smoothed value, whichever is
    /// higher) is above its level: scale-in is blocked.
    pub guard_high: bool,
}

/// Why the decision came out as it did. Variant names are used as condition reasons, Event
/// reasons, metric labels and on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The smoothed metric is above the target.
    ScaleOut,
    /// A sustained spike: scale out on the raw value at once.
    ScaleOutOnSpike,
    /// The load's weekly shape forecasts a rise within the lead time: scale out so the new
    /// capacity serves when it arrives.
    ScaleOutAhead,
    /// The load climbs steadily (a line through its newest samples, beyond what noise and a
    /// step explain): scale out for the load it reaches when the new capacity serves.
    ScaleOutOnRamp,
    /// The smoothed metric is below the dead band for the whole stabilization window.
    ScaleIn,
    /// The size is below `minSize`.
    RaiseToMinSize,
    /// The size is above `maxSize`.
    LowerToMaxSize,
    /// The target's storage needs more nodes.
    RaiseToStorageFloor,
    /// The smoothed metric is inside the dead band.
    WithinTolerance,
    /// A lower size is recommended, but not for the whole scale-in stabilization window.
    StabilizingScaleIn,
    /// A higher size is recommended, but not for the whole scale-out stabilization window.
    StabilizingScaleOut,
    /// Scale-in waits until this policy has watched the load for one scale-in stabilization
    /// window of its own decisions (a new policy, a lost state file).
    WatchingNewLoad,
    /// Scale-out waits for its cooldown.
    ScaleOutCooldown,
    /// Scale-in waits for its cooldown or for new capacity to warm up.
    ScaleInCooldown,
    /// Scale-in is blocked after a spike.
    SpikeHold,
    /// Scale-in is blocked while a guard metric (e.g. the hottest node's CPU) is above its level.
    GuardMetricHigh,
    /// More is wanted but the size is at `maxSize`.
    AtMaxSize,
    /// Less is wanted but the size is at `minSize`.
    AtMinSize,
    /// Less is wanted but the storage floor forbids it.
    AtStorageFloor,
    /// The storage floor could not be read, so scale-in is blocked.
    StorageFloorUnknown,
    /// Scale-in waits for a tick that brings a new sample: it never acts on an empty response.
    AwaitingFreshData,
    /// Metric data is missing, stale, invalid or partial: the size is held.
    MissingData,
    /// A resize is still running on the target.
    ResizeInProgress,
    /// The daily resize budget is used up.
    ResizeBudgetExhausted,
    /// Earlier resizes failed, were refused or had no effect: the next waits (exponential backoff).
    ResizeBackoff,
    /// The policy is paused.
    Paused,
    /// A schedule raises the minimum (from its lead time before the window): scale out to it.
    ScheduledMinimum,
    /// A schedule lowers the maximum while its window is open: scale in to it.
    ScheduledMaximum,
    /// An override raises (or sets) the minimum until it expires.
    OverrideMinimum,
    /// An override lowers (or sets) the maximum until it expires.
    OverrideMaximum,
    /// Scale-in is wanted, but an override pauses scale-in until it expires.
    ScaleInPaused,
    /// Scale-out is wanted, but an override pauses scale-out until it expires.
    ScaleOutPaused,
    /// A resize is wanted, but an override freezes the size until it expires.
    Frozen,
    /// Per-member sizing: this member's own load asks for less, but no member may be smaller
    /// than a fraction of the largest member's decision (see [`crate::replicas`]).
    RaiseToReplicaFloor,
    /// Per-member sizing: scale-in is wanted, but the member is at the fraction of the largest
    /// member's decision.
    AtReplicaFloor,
}

impl Reason {
    /// The CamelCase name, as used in conditions, Events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ScaleOut => "ScaleOut",
            Reason::ScaleOutOnSpike => "ScaleOutOnSpike",
            Reason::ScaleOutAhead => "ScaleOutAhead",
            Reason::ScaleOutOnRamp => "ScaleOutOnRamp",
            Reason::ScaleIn => "ScaleIn",
            Reason::RaiseToMinSize => "RaiseToMinSize",
            Reason::LowerToMaxSize => "LowerToMaxSize",
            Reason::RaiseToStorageFloor => "RaiseToStorageFloor",
            Reason::WithinTolerance => "WithinTolerance",
            Reason::StabilizingScaleIn => "StabilizingScaleIn",
            Reason::StabilizingScaleOut => "StabilizingScaleOut",
            Reason::WatchingNewLoad => "WatchingNewLoad",
            Reason::ScaleOutCooldown => "ScaleOutCooldown",
            Reason::ScaleInCooldown => "ScaleInCooldown",
            Reason::SpikeHold => "SpikeHold",
            Reason::GuardMetricHigh => "GuardMetricHigh",
            Reason::AtMaxSize => "AtMaxSize",
            Reason::AtMinSize => "AtMinSize",
            Reason::AtStorageFloor => "AtStorageFloor",
            Reason::StorageFloorUnknown => "StorageFloorUnknown",
            Reason::AwaitingFreshData => "AwaitingFreshData",
            Reason::MissingData => "MissingData",
            Reason::ResizeInProgress => "ResizeInProgress",
            Reason::ResizeBudgetExhausted => "ResizeBudgetExhausted",
            Reason::ResizeBackoff => "ResizeBackoff",
            Reason::Paused => "Paused",
            Reason::ScheduledMinimum => "ScheduledMinimum",
            Reason::ScheduledMaximum => "ScheduledMaximum",
            Reason::OverrideMinimum => "OverrideMinimum",
            Reason::OverrideMaximum => "OverrideMaximum",
            Reason::ScaleInPaused => "ScaleInPaused",
            Reason::ScaleOutPaused => "ScaleOutPaused",
            Reason::Frozen => "Frozen",
            Reason::RaiseToReplicaFloor => "RaiseToReplicaFloor",
            Reason::AtReplicaFloor => "AtReplicaFloor",
        }
    }

    /// Every reason, for metric registration and documentation.
    pub const ALL: [Reason; 35] = [
        Reason::ScaleOut,
        Reason::ScaleOutOnSpike,
        Reason::ScaleOutAhead,
        Reason::ScaleOutOnRamp,
        Reason::ScaleIn,
        Reason::RaiseToMinSize,
        Reason::LowerToMaxSize,
        Reason::RaiseToStorageFloor,
        Reason::WithinTolerance,
        Reason::StabilizingScaleIn,
        Reason::StabilizingScaleOut,
        Reason::WatchingNewLoad,
        Reason::ScaleOutCooldown,
        Reason::ScaleInCooldown,
        Reason::SpikeHold,
        Reason::GuardMetricHigh,
        Reason::AtMaxSize,
        Reason::AtMinSize,
        Reason::AtStorageFloor,
        Reason::StorageFloorUnknown,
        Reason::AwaitingFreshData,
        Reason::MissingData,
        Reason::ResizeInProgress,
        Reason::ResizeBudgetExhausted,
        Reason::ResizeBackoff,
        Reason::Paused,
        Reason::ScheduledMinimum,
        Reason::ScheduledMaximum,
        Reason::OverrideMinimum,
        Reason::OverrideMaximum,
        Reason::ScaleInPaused,
        Reason::ScaleOutPaused,
        Reason::Frozen,
        Reason::RaiseToReplicaFloor,
        Reason::AtReplicaFloor,
    ];

    /// Parse a name produced by [`Reason::as_str`].
    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Which way a decision moves the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// More capacity.
    Up,
    /// Less capacity.
    Down,
    /// No change.
    None,
}

impl Direction {
    /// "Up", "Down" or "None".
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "Up",
            Direction::Down => "Down",
            Direction::None => "None",
        }
    }
}

/// What limited a decision below (or above) what the metrics asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Clamped to `maxSize`.
    MaxSize,
    /// Clamped to `minSize`.
    MinSize,
    /// Clamped to the storage floor.
    StorageFloor,
    /// Cut to the step limit.
    Step,
    /// Held at the fraction of the largest member's decision (per-member sizing).
    ReplicaFloor,
}

impl Limit {
    /// CamelCase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxSize => "MaxSize",
            Limit::MinSize => "MinSize",
            Limit::StorageFloor => "StorageFloor",
            Limit::Step => "StepLimit",
            Limit::ReplicaFloor => "ReplicaFloor",
        }
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// When it was made.
    pub at: Ts,
    /// Size before.
    pub current: u32,
    /// Size to set; equal to `current` when nothing should change.
    pub desired: u32,
    /// The policy's combined recommendation before stabilization and guards, if it had data.
    pub recommended: Option<u32>,
    /// Why.
    pub reason: Reason,
    /// What cut the change short, if anything.
    pub limited_by: Option<Limit>,
    /// Until when the reason holds, for cooldowns and holds.
    pub wait_until: Option<Ts>,
    /// The capacity serving when it is not `current` (a steered autoscaler's live size).
    pub serving: Option<u32>,
    /// Per metric, in spec order (at most [`MAX_METRICS`]). A vector, not an array of the
    /// maximum: a decision is moved several times per tick, and ten outcomes made it a kilobyte.
    pub metrics: Vec<MetricOutcome>,
    /// State to carry into the next evaluation.
    pub state: PolicyState,
}

/// A decision without its per-metric outcomes and next state, which [`decide_into`] leaves in
/// the caller's buffers: small enough to copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// When it was made.
    pub at: Ts,
    /// Size before.
    pub current: u32,
    /// Size to set; equal to `current` when nothing should change.
    pub desired: u32,
    /// The policy's combined recommendation before stabilization and guards, if it had data.
    pub recommended: Option<u32>,
    /// Why.
    pub reason: Reason,
    /// What cut the change short, if anything.
    pub limited_by: Option<Limit>,
    /// Until when the reason holds, for cooldowns and holds.
    pub wait_until: Option<Ts>,
    /// The capacity serving when it is not `current` (a steered autoscaler's live size).
    pub serving: Option<u32>,
}

impl Verdict {
    /// Up, Down or None.
    pub fn direction(&self) -> Direction {
        use std::cmp::Ordering::*;
        match self.desired.cmp(&self.current) {
            Greater => Direction::Up,
            Less => Direction::Down,
            Equal => Direction::None,
        }
    }

    /// Whether the target should be resized.
    pub fn is_resize(&self) -> bool {
        self.desired != self.current
    }
}

impl Decision {
    /// The decision made of a verdict, the per-metric outcomes and the next state, as
    /// [`decide_into`] leaves them.
    pub fn from_parts(verdict: Verdict, metrics: Vec<MetricOutcome>, state: PolicyState) -> Decision {
        let Verdict { at, current, desired, recommended, reason, limited_by, wait_until, serving } = verdict;
        Decision { at, current, desired, recommended, reason, limited_by, wait_until, serving, metrics, state }
    }

    /// A decision standing for none made yet, holding `state`: where a driver that decides in
    /// place ([`crate::step::Gathering::decide_in_place`]) starts from. Its verdict keeps the
    /// size 0 at time 0, for no reason a person reads.
    pub fn none_yet(state: PolicyState) -> Decision {
        let verdict = Verdict {
            at: Ts(0),
            current: 0,
            desired: 0,
            recommended: None,
            reason: Reason::WithinTolerance,
            limited_by: None,
            wait_until: None,
            serving: None,
        };
        Decision::from_parts(verdict, Vec::new(), state)
    }

    /// The decision without its outcomes and state.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            at: self.at,
            current: self.current,
            desired: self.desired,
            recommended: self.recommended,
            reason: self.reason,
            limited_by: self.limited_by,
            wait_until: self.wait_until,
            serving: self.serving,
        }
    }

    /// Take over what a verdict says (outcomes and state stay).
    pub(crate) fn set_verdict(&mut self, v: Verdict) {
        let Verdict { at, current, desired, recommended, reason, limited_by, wait_until, serving } = v;
        (self.at, self.current, self.desired, self.recommended) = (at, current, desired, recommended);
        (self.reason, self.limited_by, self.wait_until, self.serving) = (reason, limited_by, wait_until, serving);
    }

    /// Up, Down or None.
    pub fn direction(&self) -> Direction {
        use std::cmp::Ordering::*;
        match self.desired.cmp(&self.current) {
            Greater => Direction::Up,
            Less => Direction::Down,
            Equal => Direction::None,
        }
    }

    /// Whether the target should be resized.
    pub fn is_resize(&self) -> bool {
        self.desired != self.current
    }

    /// Whether a spike was detected on any metric.
    pub fn spike(&self, policy: &Policy) -> bool {
        self.metrics.iter().take(policy.metrics.len()).any(|m| m.spike.is_some())
    }

    /// Smoothed value of metric `i` on the scale of its raw values: per node at the current size
    /// (the serving size, when that is another) for a per-node metric, the total for a total
    /// metric.
    pub fn smoothed(&self, policy: &Policy, i: usize) -> Option<f64> {
        let demand = self.state.signals.get(i)?.smoothed_demand()?;
        Some(match policy.metrics[i].kind {
            crate::MetricKind::PerNode => demand / self.serving.unwrap_or(self.current).max(1) as f64,
            crate::MetricKind::Total => demand,
        })
    }

    /// Newest raw value of metric `i`.
    pub fn raw(&self, i: usize) -> Option<f64> {
        self.state.signals.get(i)?.last_raw
    }

    /// A one-line explanation for people: status messages, Events, the dashboard.
    pub fn message(&self, policy: &Policy) -> String {
        let mut m = String::new();
        let until = |t: Option<Ts>| t.map(|t| format!(" until {t}")).unwrap_or_default();
        let _ = match self.reason {
            Reason::ScaleOut if self.metrics.iter().any(|o| o.saturated) => write!(
                m,
                "scale out {} -> {}: the newest sample is saturated (a full node: the load is at least that)",
                self.current, self.desired
            ),
            Reason::ScaleOut if self.metrics.iter().any(|o| o.climbing) => write!(
                m,
                "scale out {} -> {}: smoothed load is above target and climbing (sized to the bottom of the band)",
                self.current, self.desired
            ),
            Reason::ScaleOut => {
                write!(m, "scale out {} -> {}: smoothed load is above target", self.current, self.desired)
            }
            Reason::ScaleOutAhead => write!(
                m,
                "scale out {} -> {} ahead of a rise the load's weekly shape forecasts",
                self.current, self.desired
            ),
            Reason::ScaleOutOnRamp => write!(
                m,
                "scale out {} -> {} for the load a steady climb reaches when new capacity serves",
                self.current, self.desired
            ),
            Reason::ScaleOutOnSpike => {
                write!(m, "scale out {} -> {} at once: sustained spike", self.current, self.desired)
            }
            Reason::ScaleIn => write!(
                m,
                "scale in {} -> {}: load stayed below target for the stabilization window",
                self.current, self.desired
            ),
            Reason::RaiseToMinSize => write!(m, "raise {} -> {}: below minSize", self.current, self.desired),
            Reason::LowerToMaxSize => write!(m, "lower {} -> {}: above maxSize", self.current, self.desired),
            Reason::RaiseToStorageFloor => {
                write!(m, "raise {} -> {}: storage needs more nodes", self.current, self.desired)
            }
            Reason::WithinTolerance => {
                write!(m, "hold at {}: within {:.0}% of target", self.current, policy.tolerance * 100.0)
            }
            Reason::StabilizingScaleIn => write!(
                m,
                "hold at {}: a higher size was recommended within the scale-in stabilization window",
                self.current
            ),
            Reason::StabilizingScaleOut => write!(
                m,
                "hold at {}: a lower size was recommended within the scale-out stabilization window",
                self.current
            ),
            Reason::WatchingNewLoad => write!(
                m,
                "scale-in waits{}: this policy has watched the load for less than its scale-in stabilization window",
                until(self.wait_until)
            ),
            Reason::ScaleOutCooldown => write!(m, "scale-out blocked: cooldown{}", until(self.wait_until)),
            Reason::ScaleInCooldown => write!(m, "scale-in blocked: cooldown{}", until(self.wait_until)),
            Reason::SpikeHold => write!(m, "scale-in blocked: spike hold{}", until(self.wait_until)),
            Reason::GuardMetricHigh => {
                let high: Vec<String> = policy
                    .metrics
                    .iter()
                    .zip(&self.metrics)
                    .filter(|(_, o)| o.guard_high)
                    .map(|(p, _)| format!("{} (level {})", p.name, p.guard.unwrap_or(p.target)))
                    .collect();
                write!(m, "scale-in blocked: guard metric {} is above its level", high.join(", "))
            }
            Reason::AtMaxSize => {
                write!(m, "at maxSize {}: load asks for {}", self.current, self.recommended.unwrap_or(self.current))
            }
            Reason::AtMinSize => write!(m, "at minSize {}", self.current),
            Reason::AtStorageFloor => write!(m, "scale-in blocked: storage floor {} nodes", self.desired),
            Reason::StorageFloorUnknown => write!(m, "scale-in blocked: storage utilization is unknown"),
            Reason::AwaitingFreshData => write!(m, "scale-in waits for a fresh sample"),
            Reason::MissingData => {
                let names: Vec<String> = policy
                    .metrics
                    .iter()
                    .zip(&self.metrics)
                    .filter_map(|(p, o)| o.missing.map(|why| format!("{} ({})", p.name, missing_text(why))))
                    .collect();
                write!(m, "hold at {}: missing data for {}", self.current, names.join(", "))
            }
            Reason::ResizeInProgress => write!(m, "hold: a resize is in progress"),
            Reason::ResizeBudgetExhausted => write!(
                m,
                "resize to {} blocked: {} resizes per day used{}",
                self.recommended.unwrap_or(self.current),
                policy.max_resizes_per_day,
                until(self.wait_until)
            ),
            Reason::ResizeBackoff => write!(
                m,
                "a resize waits: {} earlier resize(s) failed or had no effect (last: {}); retrying{}",
                self.state.resize_failures,
                self.state.last_resize_error.as_deref().unwrap_or("unknown"),
                until(self.wait_until)
            ),
            Reason::Paused => write!(m, "paused"),
            Reason::ScheduledMinimum => {
                write!(m, "raise {} -> {}: a schedule raises the minimum", self.current, self.desired)
            }
            Reason::ScheduledMaximum => {
                write!(m, "lower {} -> {}: a schedule lowers the maximum", self.current, self.desired)
            }
            Reason::OverrideMinimum => {
                write!(m, "raise {} -> {}: an override sets the minimum", self.current, self.desired)
            }
            Reason::OverrideMaximum => {
                write!(m, "lower {} -> {}: an override sets the maximum", self.current, self.desired)
            }
            Reason::ScaleInPaused => write!(
                m,
                "scale-in to {} blocked: paused by an override{}",
                self.recommended.unwrap_or(self.current),
                until(self.wait_until)
            ),
            Reason::ScaleOutPaused => write!(
                m,
                "scale-out to {} blocked: paused by an override{}",
                self.recommended.unwrap_or(self.current),
                until(self.wait_until)
            ),
            Reason::Frozen => write!(m, "hold at {}: frozen by an override{}", self.current, until(self.wait_until)),
            Reason::RaiseToReplicaFloor => write!(
                m,
                "raise {} -> {}: the largest cluster's decision sets a floor for every cluster",
                self.current, self.desired
            ),
            Reason::AtReplicaFloor => write!(
                m,
                "scale-in to {} blocked: the largest cluster's decision sets a floor of {} for every cluster",
                self.recommended.unwrap_or(self.current).min(self.current),
                self.desired
            ),
        };
        if let Some(limit) = self.limited_by {
            let _ = write!(m, " (limited by {})", limit.as_str());
        }
        m
    }
}

fn missing_text(why: Missing) -> String {
    match why {
        Missing::NoData => "no data".into(),
        Missing::Stale => "stale".into(),
        Missing::Invalid => "NaN, infinite, negative or absurdly large value".into(),
        Missing::Source(DataProblem::Partial) => "partial result".into(),
        Missing::Source(DataProblem::MultipleSeries(n)) => format!("{n} series where one was expected"),
        Missing::Source(DataProblem::QueryFailed) => "query failed".into(),
    }
}

/// Nodes (fractional) that demand `x` needs. Without headroom: `x / target`. With headroom, the
/// size must also keep the chosen quantile of single samples at or under the limit, so it is
/// the larger of `x / target` and `(x + z x noise) / limit`; on quiet load that is the first.
#[inline]
fn need(metric: &MetricPolicy, x: f64, noise: Option<f64>) -> f64 {
    let plain = x / metric.target;
    match (metric.headroom_z, noise) {
        (Some(z), Some(sigma)) if sigma > 0.0 => plain.max((x + z.max(0.0) * sigma) / metric.limit),
        _ => plain,
    }
}

/// The per-node target a metric is effectively sized on at smoothed demand `smoothed`: the
/// spec's target, or lower when headroom for noise asks for more nodes than the target does.
pub fn effective_target(metric: &MetricPolicy, smoothed: f64, noise: Option<f64>) -> f64 {
    let plain = smoothed / metric.target;
    let nodes = need(metric, smoothed, noise);
    if smoothed > 0.0 && nodes > plain { smoothed / nodes } else { metric.target }
}

/// The size the smoothed demand asks for, with the dead band around `current`.
#[inline]
fn recommend(
    metric: &MetricPolicy,
    demand: f64,
    upper: f64,
    noise: Option<f64>,
    current: u32,
    tolerance: f64,
    climbing: bool,
) -> u32 {
    // The target is a ceiling: the dead band is [target × (1 − tolerance), target]. Leaving it in
    // either direction resizes to land in the middle of the band, so ordinary noise does not push
    // the new size straight back out of it (and time over target stays low). Going down, the
    // policy sizes on the upper confidence bound of demand, never below the current size.
    // Going up while the load climbs, it lands at the bottom of the band: the load is moving
    // up through it, and landing in the middle only brings the next scale-out sooner.
    let landing = 1.0 - tolerance / 2.0;
    let now = need(metric, demand, noise);
    if now > current.max(1) as f64 {
        let landing = if climbing { 1.0 - tolerance } else { landing };
        return nodes(now / landing, REC_CAP);
    }
    let high = need(metric, upper, noise);
    if high >= current.max(1) as f64 * (1.0 - tolerance) {
        return current;
    }
    nodes(high / landing, REC_CAP).min(current)
}

/// Whole nodes for a fractional need, at least 1 and at most `max`.
#[inline]
fn nodes(need: f64, max: u32) -> u32 {
    // Guard against rounding up an exact fit (0.6 * 5 / 0.6 = 5.000000000000001).
    let n = (need - 1e-9).ceil();
    if n >= max as f64 {
        max
    } else if n < 1.0 {
        1
    } else {
        n as u32
    }
}

/// Evaluate `policy` once. Consumes the state and returns the next one inside the decision.
/// [`decide_into`] is the same evaluation on a state and an outcome buffer the caller keeps,
/// which allocates nothing once the buffers have grown.
pub fn decide(policy: &Policy, mut state: PolicyState, inputs: &Inputs<'_>, now: Ts) -> Decision {
    let mut metrics = Vec::with_capacity(policy.metrics.len().min(MAX_METRICS));
    let verdict = decide_into(policy, &mut state, inputs, now, &mut metrics);
    Decision::from_parts(verdict, metrics, state)
}

/// [`decide`] in place: `state` becomes the next state and `metrics` the per-metric outcomes
/// (its old contents are dropped, its allocation kept). For a caller that evaluates a policy
/// again and again (a replay, a step machine), this neither allocates per evaluation nor moves
/// the state around.
pub fn decide_into(
    policy: &Policy,
    state: &mut PolicyState,
    inputs: &Inputs<'_>,
    now: Ts,
    metrics: &mut Vec<MetricOutcome>,
) -> Verdict {
    state.align(policy);
    // The caller validates a stored state where it can say what it reset; here it is only made
    // sure of, so that no path (a replay, a member of an instance) decides on absurd values.
    state.sanitize(policy, inputs.current);
    decide_prepared(policy, state, inputs, now, metrics)
}

/// [`decide_into`] for a state already lined up with the policy and made sure of for
/// `inputs.current` ([`PolicyState::align`], then [`PolicyState::sanitize`]), with nothing
/// changed since: what the step machine (`crate::step`) does before it gathers, so the checks
/// are not made twice per evaluation.
pub fn decide_prepared(
    policy: &Policy,
    state: &mut PolicyState,
    inputs: &Inputs<'_>,
    now: Ts,
    metrics: &mut Vec<MetricOutcome>,
) -> Verdict {
    let current = inputs.current;
    state.evaluating_since.get_or_insert(now);
    state.prune_resizes(now, policy.sample_reach(), policy.warmup);

    // 1-2. Fold in samples and judge each metric's data.
    let n = policy.metrics.len().min(MAX_METRICS);
    metrics.clear();
    metrics.resize(n, MetricOutcome::default());
    let spike_policy = policy.spike.as_ref();
    {
        // A steered autoscaler's own size is what serves, as it changed over time; this
        // policy's resizes move only its minimum, so they say nothing of the capacity behind a
        // sample.
        if let Some(live) = inputs.serving {
            state.note_serving(live, now);
        }
        let resizes: &mut [crate::state::ResizeRecord] =
            if inputs.serving.is_some() { &mut state.serving_changes } else { &mut state.resizes };
        let warmup = policy.warmup;
        // While a resize runs, the old capacity is what serves, whatever size the target
        // reports (a cluster can show the new size as soon as the resize starts).
        let serving = inputs.serving.unwrap_or_else(|| state.in_flight.as_ref().map_or(current, |f| f.from));
        // One metric judges whether added capacity serves yet (see `PolicyState::serving_at`):
        // the first per-node metric that sizes (its baseline is on its own scale).
        let judge = policy.metrics.iter().position(|m| m.kind == crate::MetricKind::PerNode && m.guard.is_none());
        for (i, (metric, signal)) in policy.metrics.iter().zip(state.signals.iter_mut()).enumerate().take(MAX_METRICS) {
            let input = inputs.metrics.get(i).copied().unwrap_or(MetricInput { samples: &[], problem: None });
            let judges = judge == Some(i);
            let ingest: Ingest = signal.ingest(metric, spike_policy, input.samples, |at, value, reference| {
                PolicyState::serving_at(resizes, at, serving, warmup, value, reference.filter(|_| judges))
            });
            let out = &mut metrics[i];
            out.accepted = ingest.accepted;
            out.missing = if let Some(p) = input.problem {
                Some(Missing::Source(p))
            } else if ingest.newest_invalid {
                Some(Missing::Invalid)
            } else {
                match signal.age(now) {
                    None => Some(Missing::NoData),
                    Some(age) if age > metric.max_age => Some(Missing::Stale),
                    Some(_) => None,
                }
            };
            if let (None, Some(level)) = (out.missing, metric.guard) {
                // A guard never sizes: it only reads high or not, on the metric's own scale.
                let smoothed = signal.smoothed_demand().map(|d| match metric.kind {
                    crate::MetricKind::PerNode => d / inputs.serving.unwrap_or(current).max(1) as f64,
                    crate::MetricKind::Total => d,
                });
                let value = signal.last_raw.into_iter().chain(smoothed).fold(f64::NEG_INFINITY, f64::max);
                out.guard_high = value > level;
            } else if out.missing.is_none() {
                if let (Some(demand), Some(upper)) =
                    (signal.smoothed_demand(), signal.smoothed_demand_upper(SCALE_IN_CONFIDENCE_Z))
                {
                    let noise = signal.noise();
                    out.effective_target = Some(effective_target(metric, demand, noise));
                    out.noise = noise.filter(|_| demand > 0.0).map(|n| n / demand);
                    let climbing = signal.climbing(metric.window, Dur(metric.window.0 * CLIMB_WINDOWS));
                    out.climbing = climbing;
                    // A full node shows its ceiling however much load waits: the newest sample
                    // times the capacity that served it beyond doubt is a floor under the load,
                    // and averaging it with older, lower samples only lags further behind (a held
                    // sample is no evidence yet; a value far above the ceiling is no capped
                    // reading, see `PolicyState::serving_at`; capacity on the warm-up's word
                    // alone would compound when provisioning is slower).
                    let saturated = metric.kind == crate::MetricKind::PerNode
                        && signal.held.is_none()
                        && signal.last_raw.is_some_and(|raw| crate::state::saturated(raw, metric.ceiling));
                    // Only what the size is asked for from: the weekly profile, the forecast and
                    // the line through a climb go on reading the smoothed demand they expect.
                    let floor = match (signal.last_raw, signal.last_at) {
                        (Some(raw), Some(at)) if saturated => {
                            Some(raw * PolicyState::proven_capacity_at(resizes, at, serving, warmup) as f64)
                        }
                        _ => None,
                    };
                    let sized = match floor {
                        Some(last) if last > demand => {
                            out.saturated = true;
                            last
                        }
                        _ => demand,
                    };
                    out.recommended =
                        Some(recommend(metric, sized, upper.max(sized), noise, current, policy.tolerance, climbing));
                    // The average trails a climb by half its window: a line through the newest
                    // samples says where the load will be when capacity ordered now serves.
                    let span = Dur(metric.window.0 * RAMP_WINDOWS);
                    if let Some(rise) = metric.ramp_t.and_then(|t| signal.ramp.rise(now, span, policy.warmup, t)) {
                        out.ramp_demand = Some(rise.ahead);
                        if rise.ahead > demand {
                            out.ramp =
                                Some(nodes(need(metric, rise.ahead, noise) / (1.0 - policy.tolerance / 2.0), REC_CAP));
                        }
                    }
                    if let Some(f) = &policy.forecast {
                        let profile = signal.profile.get_or_insert_default();
                        if let (true, Some(at)) = (out.accepted > 0, signal.last_at) {
                            profile.observe(at, demand);
                        }
                        // The profile holds smoothed demand, which trails the load by about half
                        // the smoothing window: look that much further ahead.
                        let rise = profile.rise(now, f.lead + Dur(metric.window.0 / 2));
                        if rise > 0.0 {
                            let ahead = demand + rise;
                            out.forecast_demand = Some(ahead);
                            out.forecast =
                                Some(nodes(need(metric, ahead, noise) / (1.0 - policy.tolerance / 2.0), REC_CAP));
                        }
                    }
                }
                if let Some(level) = signal.spike_level(spike_policy, metric.limit * serving.max(1) as f64) {
                    // Sized as any scale-out: for the middle of the band, with the headroom the
                    // noise asks for, so the load's next samples do not ask for a second move.
                    let want = need(metric, level, signal.noise()) / (1.0 - policy.tolerance / 2.0);
                    out.spike = Some(nodes(want, REC_CAP));
                }
            }
        }
    }
    let metrics = &metrics[..n];
    // Guards never size, so only the sizing metrics decide whether there is a recommendation; a
    // guard without data blocks scale-in (it cannot say the target is safe to shrink).
    let is_guard = |i: usize| policy.metrics[i].guard.is_some();
    let sizing = (0..n).filter(|&i| !is_guard(i)).count();
    let missing = (0..n).filter(|&i| !is_guard(i) && metrics[i].missing.is_some()).count();
    let guard_missing = (0..n).any(|i| is_guard(i) && metrics[i].missing.is_some());
    let guard_high = metrics.iter().any(|m| m.guard_high);

    let mut v = Verdict {
        at: now,
        current,
        desired: current,
        recommended: None,
        reason: Reason::WithinTolerance,
        limited_by: None,
        wait_until: None,
        serving: inputs.serving,
    };

    if policy.mode == Mode::Paused {
        v.reason = Reason::Paused;
        return v;
    }

    // 3. Combine. Missing data under Hold, or on every metric, gives no recommendation.
    let usable = missing < sizing && (missing == 0 || policy.on_missing_data == MissingDataPolicy::ScaleOutOnly);
    let windows = (policy.scale_out.stabilization, policy.scale_in.stabilization);
    let mut spike_rec: Option<u32> = None;
    let mut plain = 0u32;
    let mut ramp_rec = 0u32;
    if usable {
        let mut rec = 0u32;
        let acts = policy.forecast.is_some_and(|f| f.mode == ForecastMode::Act);
        for m in metrics {
            if let Some(r) = m.recommended {
                rec = rec.max(r);
            }
            if let (true, Some(f)) = (acts, m.forecast) {
                // Only ever more: a forecast never lowers a recommendation.
                rec = rec.max(f);
            }
            if let Some(r) = m.ramp {
                // Only ever more, as a forecast.
                rec = rec.max(r);
                ramp_rec = ramp_rec.max(r);
            }
            if let Some(s) = m.spike {
                spike_rec = Some(spike_rec.map_or(s, |x: u32| x.max(s)));
            }
        }
        plain = metrics.iter().filter_map(|m| m.recommended).max().unwrap_or(0);
        // A spike only matters when it asks for more than the current size.
        spike_rec = spike_rec.filter(|&s| s > current);
        if let Some(s) = spike_rec {
            rec = rec.max(s);
            if let Some(p) = spike_policy {
                let until = now + p.hold;
                state.spike_hold_until = Some(state.spike_hold_until.map_or(until, |u| u.max(until)));
            }
        }
        v.recommended = Some(rec);
        let keep = policy.scale_in.stabilization.max(policy.scale_out.stabilization);
        let recs = &mut state.recommendations;
        let followed = state.stabilizer.follows(recs, now, windows);
        recs.push_back((now, rec));
        while recs.front().is_some_and(|&(t, _)| now - t > keep) {
            recs.pop_front();
        }
        state.stabilizer.pushed(recs, now, rec, windows, followed);
    }

    if state.in_flight.is_some() || inputs.busy {
        v.reason = Reason::ResizeInProgress;
        return v;
    }

    // 5a. Hard bounds are the user's intent and apply whatever the metrics say. Only sizes the
    // target can take are asked for (see `core::sizes`): the bounds are the reachable sizes
    // inside [minSize, maxSize], and when there is none, no resize can honour both.
    // Schedules and overrides move the bounds (see `known`); without any, these are the spec's.
    let known = policy.known.limits(now, policy.min_size, policy.max_size);
    let (min_size, max_size) = known.bounds(policy.min_size, policy.max_size);
    let sizes = inputs.sizes;
    let Some((lo, hi)) = sizes.bounds(min_size, max_size) else {
        v.reason = Reason::AtMaxSize;
        v.limited_by = Some(Limit::MaxSize);
        return v;
    };
    let floor = match inputs.floor {
        Floor::Nodes(f) => sizes.up(f).unwrap_or(hi).min(hi),
        _ => 0,
    };
    if current < min_size {
        v.desired = lo.max(floor);
        v.reason = match known.min {
            Some((_, Source::Schedule)) => Reason::ScheduledMinimum,
            Some((_, Source::Override)) => Reason::OverrideMinimum,
            None => Reason::RaiseToMinSize,
        };
    } else if current > max_size {
        v.desired = hi;
        v.reason = match known.max {
            Some((_, Source::Schedule)) => Reason::ScheduledMaximum,
            Some((_, Source::Override)) => Reason::OverrideMaximum,
            None => Reason::LowerToMaxSize,
        };
    } else if current < floor {
        v.desired = floor;
        v.reason = Reason::RaiseToStorageFloor;
    } else if let Some(rec) = v.recommended {
        // 4. Stabilization over the recent recommendations.
        let (mut up, mut down) = (rec, rec);
        match state.stabilizer.extremes(&state.recommendations, now, windows) {
            Some((low, high)) => {
                if let Some(r) = low {
                    up = up.min(r);
                }
                if let Some(r) = high {
                    down = down.max(r);
                }
            }
            None => {
                for &(t, r) in &state.recommendations {
                    if now - t <= policy.scale_out.stabilization {
                        up = up.min(r);
                    }
                    if now - t <= policy.scale_in.stabilization {
                        down = down.max(r);
                    }
                }
            }
        }
        if let Some(s) = spike_rec {
            up = up.max(s);
        }
        if up > current {
            let why = if spike_rec.is_some_and(|s| s >= up) {
                Reason::ScaleOutOnSpike
            } else if up > plain && ramp_rec >= up {
                Reason::ScaleOutOnRamp
            } else if up > plain {
                Reason::ScaleOutAhead
            } else {
                Reason::ScaleOut
            };
            scale_out(policy, &mut v, state, up, why, (sizes, hi), now);
        } else if down < current {
            let fresh = (0..n).any(|i| !is_guard(i) && metrics[i].accepted > 0);
            let guard = Guards { missing: guard_missing, high: guard_high };
            scale_in(policy, &mut v, state, down, floor, inputs.floor, missing > 0, guard, fresh, (sizes, lo), now);
        } else if rec < current {
            v.reason = Reason::StabilizingScaleIn;
        } else if rec > current {
            v.reason = Reason::StabilizingScaleOut;
        } else {
            v.reason = Reason::WithinTolerance;
        }
    } else {
        v.reason = Reason::MissingData;
    }

    last_word_on(policy, &mut v, state, &known, now);
    v
}

/// The lowest recommendation in the scale-out stabilization window and the highest in the
/// scale-in window, kept as recommendations arrive (a monotonic queue each), so that a decision
/// reads them at once instead of scanning the windows. A cache beside
/// [`PolicyState::recommendations`]: never stored, never compared, boxed so that a state is one
/// pointer larger. It follows them through [`decide`] only; when they changed another way (a
/// stored state, clamping, sanitizing), time ran backwards or the windows changed, it is rebuilt
/// from them, and while they are out of time order it is not used.
#[derive(Debug, Clone, Default)]
pub struct Stabilizer(Option<Box<Queues>>);

impl PartialEq for Stabilizer {
    fn eq(&self, _: &Stabilizer) -> bool {
        true
    }
}

impl Stabilizer {
    /// Whether the queues describe `recs` at `now` for these windows, and a recommendation made
    /// at `now` keeps them in time order.
    fn follows(&self, recs: &Recommendations, now: Ts, windows: (Dur, Dur)) -> bool {
        self.0.as_ref().is_some_and(|q| q.follows(recs, now, windows))
    }

    /// `recs` gained `(now, rec)` at the back and may have lost some at the front; `followed`
    /// says whether the queues described `recs` just before (see [`Stabilizer::follows`]).
    fn pushed(&mut self, recs: &Recommendations, now: Ts, rec: u32, windows: (Dur, Dur), followed: bool) {
        self.0.get_or_insert_default().pushed(recs, now, rec, windows, followed);
    }

    /// The lowest recommendation in the scale-out window and the highest in the scale-in window
    /// at `now` (`None` inside for an empty window), when the queues describe `recs`.
    fn extremes(&mut self, recs: &Recommendations, now: Ts, windows: (Dur, Dur)) -> Option<(Option<u32>, Option<u32>)> {
        self.0.as_mut()?.extremes(recs, now, windows)
    }
}

/// Recent recommendations `(time, size)`, as in [`PolicyState::recommendations`].
type Recommendations = VecDeque<(Ts, u32)>;

/// The length, oldest and newest entry of recent recommendations.
type Fingerprint = (usize, Option<(Ts, u32)>, Option<(Ts, u32)>);

/// What a [`Stabilizer`] keeps.
#[derive(Debug, Clone, Default)]
struct Queues {
    /// Whether the queues hold for the recommendations as last seen (false also while those are
    /// out of time order).
    synced: bool,
    /// Length, oldest and newest recommendation when last seen.
    seen: Fingerprint,
    /// When last updated: the queues take time to run forward.
    now: Ts,
    /// Scale-out and scale-in windows the queues are for.
    windows: (Dur, Dur),
    /// Candidates for the lowest in the scale-out window: oldest first, sizes strictly rising.
    low: VecDeque<(Ts, u32)>,
    /// Candidates for the highest in the scale-in window: oldest first, sizes strictly falling.
    high: VecDeque<(Ts, u32)>,
}

impl Queues {
    fn fingerprint(recs: &Recommendations) -> Fingerprint {
        (recs.len(), recs.front().copied(), recs.back().copied())
    }

    /// See [`Stabilizer::follows`].
    fn follows(&self, recs: &Recommendations, now: Ts, windows: (Dur, Dur)) -> bool {
        self.synced
            && self.windows == windows
            && now >= self.now
            && recs.back().is_none_or(|&(t, _)| t <= now)
            && self.seen == Self::fingerprint(recs)
    }

    /// See [`Stabilizer::pushed`].
    fn pushed(&mut self, recs: &Recommendations, now: Ts, rec: u32, windows: (Dur, Dur), followed: bool) {
        if followed {
            self.add(now, rec);
        } else {
            self.low.clear();
            self.high.clear();
            self.synced = recs.iter().zip(recs.iter().skip(1)).all(|(a, b)| a.0 <= b.0);
            if self.synced {
                for &(t, r) in recs {
                    self.add(t, r);
                }
            }
        }
        self.seen = Self::fingerprint(recs);
        self.windows = windows;
        self.now = now;
        self.evict(now);
    }

    /// One more recommendation, no older than any before it. An older candidate that is not
    /// lower (higher) leaves the window first and can never be the lowest (highest) again.
    fn add(&mut self, t: Ts, r: u32) {
        while self.low.back().is_some_and(|&(_, x)| x >= r) {
            self.low.pop_back();
        }
        self.low.push_back((t, r));
        while self.high.back().is_some_and(|&(_, x)| x <= r) {
            self.high.pop_back();
        }
        self.high.push_back((t, r));
    }

    /// Drop what lies outside the windows at `now`: the oldest first, as they leave.
    fn evict(&mut self, now: Ts) {
        let (out, inn) = self.windows;
        while self.low.front().is_some_and(|&(t, _)| now - t > out) {
            self.low.pop_front();
        }
        while self.high.front().is_some_and(|&(t, _)| now - t > inn) {
            self.high.pop_front();
        }
    }

    /// See [`Stabilizer::extremes`].
    fn extremes(&mut self, recs: &Recommendations, now: Ts, windows: (Dur, Dur)) -> Option<(Option<u32>, Option<u32>)> {
        if !self.follows(recs, now, windows) {
            return None;
        }
        self.now = now;
        self.evict(now);
        Some((self.low.front().map(|&(_, r)| r), self.high.front().map(|&(_, r)| r)))
    }
}

/// Steps 5b and 5c, the checks that have the last word on any resize, whatever asked for it
/// (also a floor applied after [`decide`], see [`crate::replicas`]).
pub(crate) fn last_word(policy: &Policy, d: &mut Decision, known: &Active, now: Ts) {
    let mut v = d.verdict();
    last_word_on(policy, &mut v, &d.state, known, now);
    d.set_verdict(v);
}

/// [`last_word`] on a verdict and the state it leaves.
fn last_word_on(policy: &Policy, v: &mut Verdict, state: &PolicyState, known: &Active, now: Ts) {
    let current = v.current;
    // 5b. An override's pause holds its direction, whatever asked for the resize (bounds too:
    // a freeze is a freeze).
    let paused = match v.direction() {
        Direction::Up => known.pause_out.map(|t| (t, Reason::ScaleOutPaused)),
        Direction::Down => known.pause_in.map(|t| (t, Reason::ScaleInPaused)),
        Direction::None => None,
    };
    if let Some((until, why)) = paused {
        v.desired = current;
        v.reason = if known.pause_in.is_some() && known.pause_out.is_some() { Reason::Frozen } else { why };
        v.limited_by = None;
        v.wait_until = Some(until);
    }

    // 5c. After failed resizes, wait out the backoff; the daily resize budget is the last word.
    if v.is_resize()
        && let Some(retry) = state.retry_resize_at
        && now < retry
    {
        v.desired = current;
        v.reason = Reason::ResizeBackoff;
        v.limited_by = None;
        v.wait_until = Some(retry);
    }
    if v.is_resize() && state.budget_left(policy, now) == 0 {
        v.desired = current;
        v.reason = Reason::ResizeBudgetExhausted;
        v.wait_until = state.budget_resets_at();
    }
}

fn scale_out(
    policy: &Policy,
    v: &mut Verdict,
    state: &PolicyState,
    want: u32,
    why: Reason,
    (sizes, hi): (SizeRule, u32),
    now: Ts,
) {
    let current = v.current;
    let capped = sizes.up(want).unwrap_or(hi).min(hi);
    if capped <= current {
        v.reason = Reason::AtMaxSize;
        v.limited_by = Some(Limit::MaxSize);
        return;
    }
    if let Some(allowed) = state.scale_out_allowed_at(policy)
        && now < allowed
    {
        v.reason = Reason::ScaleOutCooldown;
        v.wait_until = Some(allowed);
        return;
    }
    let step = policy.scale_out.max_step(current, true);
    // A step moves at least one reachable size.
    let stepped = sizes.up(capped.min(current.saturating_add(step))).unwrap_or(capped).min(capped);
    v.desired = stepped;
    v.reason = why;
    v.limited_by = if stepped < capped {
        Some(Limit::Step)
    } else if capped < want {
        Some(Limit::MaxSize)
    } else {
        None
    };
}

/// What the policy's guard metrics say this tick.
#[derive(Clone, Copy)]
struct Guards {
    /// A guard has no usable data.
    missing: bool,
    /// A guard is above its level.
    high: bool,
}

#[allow(clippy::too_many_arguments)]
fn scale_in(
    policy: &Policy,
    v: &mut Verdict,
    state: &PolicyState,
    want: u32,
    floor: u32,
    floor_kind: Floor,
    missing: bool,
    guard: Guards,
    fresh: bool,
    (sizes, lo): (SizeRule, u32),
    now: Ts,
) {
    let current = v.current;
    if missing || guard.missing {
        v.reason = Reason::MissingData;
        return;
    }
    if !fresh {
        v.reason = Reason::AwaitingFreshData;
        return;
    }
    let lower = lo.max(floor);
    // Rounded up: a size the target can take that still carries what the load needs.
    let bounded = sizes.up(want.max(lower)).unwrap_or(current);
    if bounded >= current {
        if floor > lo && floor >= current {
            v.reason = Reason::AtStorageFloor;
            v.limited_by = Some(Limit::StorageFloor);
        } else if want.max(lower) < current {
            // The next size the target can take below is too small for the load.
            v.reason = Reason::WithinTolerance;
        } else {
            v.reason = Reason::AtMinSize;
            v.limited_by = Some(Limit::MinSize);
        }
        return;
    }
    // Before the timers: a hot node is the state now, and the reason should say so.
    if guard.high {
        v.reason = Reason::GuardMetricHigh;
        return;
    }
    if let Some(until) = state.spike_hold_until
        && now < until
    {
        v.reason = Reason::SpikeHold;
        v.wait_until = Some(until);
        return;
    }
    // Scale-in waits for the cooldown after any resize, and after a scale-out also until the new
    // capacity has warmed up and a full smoothing window has been measured on it.
    if let Some(allowed) = state.scale_in_allowed_at(policy)
        && now < allowed
    {
        v.reason = Reason::ScaleInCooldown;
        v.wait_until = Some(allowed);
        return;
    }
    // A state without history has not watched the load for a stabilization window yet: the
    // samples it back-filled at start-up say what the load was, not that it stayed there while
    // this policy was in charge.
    let watched_from = state.evaluating_since.unwrap_or(now);
    if now - watched_from < policy.scale_in.stabilization {
        v.reason = Reason::WatchingNewLoad;
        v.wait_until = Some(watched_from + policy.scale_in.stabilization);
        return;
    }
    // Checked after the timers, so that right after a resize the reason names the cooldown (the
    // floor waits for a sample measured on the new size then, see `core::floor`).
    if floor_kind == Floor::Unknown {
        v.reason = Reason::StorageFloorUnknown;
        return;
    }
    let step = policy.scale_in.max_step(current, false);
    // A step moves at least one reachable size (`bounded` is reachable and below `current`).
    let stepped = match sizes.up(bounded.max(current.saturating_sub(step))) {
        Some(s) if s < current => s,
        _ => sizes.below(current).unwrap_or(bounded).max(bounded),
    };
    v.desired = stepped;
    v.reason = Reason::ScaleIn;
    v.limited_by = if stepped > bounded {
        Some(Limit::Step)
    } else if lower > want {
        Some(if floor > lo && lower == floor { Limit::StorageFloor } else { Limit::MinSize })
    } else {
        None
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixtures::{World, at, policy};

    /// Leaving the band upwards lands in its middle, or at its bottom while the load climbs;
    /// going down never depends on the climb.
    #[test]
    fn a_scale_out_lands_at_the_bottom_of_the_band_while_the_load_climbs() {
        let p = policy();
        let m = &p.metrics[0];
        let t = m.target;
        // 40 nodes' worth at the target on 40 nodes, plus a little: 41 needed.
        let demand = 40.5 * t;
        assert_eq!(recommend(m, demand, demand, None, 40, 0.1, false), nodes(40.5 / 0.95, REC_CAP));
        assert_eq!(recommend(m, demand, demand, None, 40, 0.1, true), nodes(40.5 / 0.9, REC_CAP));
        assert!(nodes(40.5 / 0.9, REC_CAP) > nodes(40.5 / 0.95, REC_CAP));
        let low = 30.0 * t;
        assert_eq!(recommend(m, low, low, None, 40, 0.1, true), recommend(m, low, low, None, 40, 0.1, false));
    }

    /// What the stabilization step scanned before the queues: the lowest recommendation within
    /// the scale-out window of `now` and the highest within the scale-in window.
    fn scanned(recs: &Recommendations, now: Ts, (out, inn): (Dur, Dur)) -> (Option<u32>, Option<u32>) {
        let low = recs.iter().filter(|&&(t, _)| now - t <= out).map(|&(_, r)| r).min();
        let high = recs.iter().filter(|&&(t, _)| now - t <= inn).map(|&(_, r)| r).max();
        (low, high)
    }

    /// The queues give what a scan of the windows gives, evaluation after evaluation, through
    /// windows changing, time running backwards, recommendations removed behind their back and
    /// recommendations out of time order (while those last, they are not used).
    #[test]
    fn the_queues_give_what_a_scan_of_the_windows_gives() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (mut recs, mut queues) = (Recommendations::new(), Stabilizer::default());
        let mut now = Ts(1_000_000_000);
        let mut windows = (Dur::mins(2), Dur::mins(15));
        let mut used = 0;
        for step in 0..20_000 {
            now = now + Dur::secs(30 + next(90) as i64);
            match next(500) {
                0 => windows = (Dur::mins(next(5) as i64), Dur::mins(next(30) as i64)),
                1 => now = now - Dur::mins(3),
                2 => recs.retain(|&(_, r)| r % 7 != 0),
                3 => recs.push_front((now + Dur::mins(1), 3)),
                _ => {}
            }
            let rec = 1 + next(40) as u32;
            let keep = windows.0.max(windows.1);
            let followed = queues.follows(&recs, now, windows);
            recs.push_back((now, rec));
            while recs.front().is_some_and(|&(t, _)| now - t > keep) {
                recs.pop_front();
            }
            queues.pushed(&recs, now, rec, windows, followed);
            if let Some(got) = queues.extremes(&recs, now, windows) {
                used += 1;
                assert_eq!(got, scanned(&recs, now, windows), "step {step}: {recs:?}");
            }
        }
        assert!(used > 10_000, "the queues answered {used} of 20000 times");
    }

    /// A policy decides alike whether its queues were carried from the last evaluation or
    /// rebuilt from the stored recommendations, and [`decide_into`] on buffers kept from one
    /// evaluation to the next decides as [`decide`] does.
    #[test]
    fn carried_rebuilt_and_in_place_evaluations_decide_alike() {
        let mut p = policy();
        p.scale_out.stabilization = Dur::mins(3);
        let (mut carried, mut rebuilt) = (World::new(p.clone(), 6), World::new(p.clone(), 6));
        let (mut state, mut size, mut outcomes) = (PolicyState::default(), 6, Vec::new());
        let mut resizes = 0;
        for i in 0..900i64 {
            // A swing with bursts: the recommendations rise and fall inside both windows.
            let demand = 5.0 + 3.5 * (i as f64 / 45.0).sin() + if i % 97 < 4 { 5.0 } else { 0.0 };
            rebuilt.state.stabilizer = Stabilizer::default();
            let d = carried.step(demand / carried.size as f64);
            assert_eq!(d, rebuilt.step(demand / rebuilt.size as f64), "minute {i}");

            let now = at(i + 1);
            let samples = [Sample { at: now, value: demand / size as f64 }];
            let input = [MetricInput { samples: &samples, problem: None }];
            let inputs = Inputs {
                current: size,
                metrics: &input,
                floor: Floor::None,
                busy: false,
                serving: None,
                sizes: SizeRule::Any,
            };
            let v = decide_into(&p, &mut state, &inputs, now, &mut outcomes);
            assert_eq!((v, &outcomes, &state), (d.verdict(), &d.metrics, &d.state), "minute {i}");
            if v.is_resize() {
                state.begin_resize(size, v.desired, None, now);
                state.finish_resize(now);
                size = v.desired;
                resizes += 1;
            }
        }
        assert!(resizes > 4, "the load moved the size {resizes} times");
    }
}
