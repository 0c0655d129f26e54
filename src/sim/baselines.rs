//! Baseline algorithms, run through the same model as the policy.
//!
//! - `hpa`: the Kubernetes HPA as documented: `desired = ceil(current × observed / target)`, 10%
//!   tolerance, a 5-minute scale-down stabilization window, default scale-up policies (the larger
//!   of +100% or +4 every 15 s), reading the newest visible sample with the same metric delay. It
//!   meets the same target and source as the policy: its resizes are operations of the same
//!   length (a resize refused while one runs waits for the next evaluation, as the HPA retries),
//!   the same samples are missing or late, a partial answer skips the evaluation (as a failed
//!   metrics query does), and it never goes below the storage floor.
//!
//! - `linear` and `stepwise`: the two scaling methods of cloudspannerecosystem/autoscaler (the
//!   Cloud Spanner Autoscaler, also used for Bigtable-like targets) with its documented defaults:
//!   it polls every 2 minutes, reads the newest value, does nothing while the value is within
//!   the threshold ± a 5-point margin (at its default 65 % threshold; scaled to the metric's
//!   target here), waits 5 minutes after any scaling before scaling out and 30 before scaling
//!   in, and sizes against the size the instance reports (not the nodes that were serving).
//!   LINEAR asks for `ceil(size × value / threshold)`; STEPWISE adds or removes 2 nodes, or adds
//!   5 when the value is past its 90 % overload level (scaled the same way).
//!
//! Every baseline keeps to the storage floor (the nodes the stored data needs, known at once):
//! it is a property of the target, not of an algorithm, and Bigtable users keep to it whatever
//! scales their cluster.
//! - `static-peak`: the size that covers the trace's peak, all the time.
//! - `oracle`: the smallest size that keeps every evaluation at or under target with no delay:
//!   the lower bound on cost.
//! - `oracle-30`: the oracle held for 30 minutes at a time: each block of 30 minutes (from the
//!   first evaluation) gets the smallest size that keeps the block's peak at or under target, with
//!   no delay. The realistic cost floor: no real target can follow the per-sample oracle.

use std::cell::Cell;
use std::collections::VecDeque;

use crate::core::MetricKind;
use crate::core::{Dur, Ts};
use crate::sim::model::{Fleet, demand_of, observed_of, seek};
use crate::sim::report::{Step, Summary};
use crate::sim::{DemandLookup, Run, Scenario, grid};

/// The HPA's scale-down stabilization window (default `--horizontal-pod-autoscaler-downscale-stabilization`).
const HPA_DOWN_WINDOW: Dur = Dur::mins(5);
/// The HPA's sync period; its default scale-up policies apply per 15 s.
const HPA_PERIOD: Dur = Dur::secs(15);
/// The HPA's default tolerance.
const HPA_TOLERANCE: f64 = 0.1;
/// cloudspannerecosystem/autoscaler's default poll (its Cloud Scheduler job runs every 2 minutes).
const SPANNER_POLL: Dur = Dur::mins(2);
/// Its default `scaleOutCoolingMinutes`.
const SPANNER_OUT_COOLING: Dur = Dur::mins(5);
/// Its default `scaleInCoolingMinutes`.
const SPANNER_IN_COOLING: Dur = Dur::mins(30);
/// Its default `stepSize` in nodes (STEPWISE).
const SPANNER_STEP: u32 = 2;
/// Its default `overloadStepSize` in nodes (STEPWISE).
const SPANNER_OVERLOAD_STEP: u32 = 5;
/// Its default margin (5 points around its default 65 % threshold), relative to the threshold.
const SPANNER_MARGIN: f64 = 5.0 / 65.0;
/// Its overload level (90 % CPU against the default 65 % threshold), relative to the threshold.
const SPANNER_OVERLOAD: f64 = 90.0 / 65.0;
/// How long `oracle-30` holds each size.
pub const ORACLE_HOLD: Dur = Dur::mins(30);

/// `n` nodes within minSize..maxSize and at or over the storage floor at `t` (the floor capped
/// at maxSize, as the policy caps it), rounded up to a size the target takes (Spanner's ladder,
/// zone multiples), as every autoscaler of such a target must.
fn clamp(sc: &Scenario, n: f64, t: Ts) -> u32 {
    let p = &sc.policy;
    let lo = p.min_size.max(sc.storage_floor_at(t).min(p.max_size));
    let n = if n.is_nan() || n <= lo as f64 {
        lo
    } else if n >= p.max_size as f64 {
        p.max_size
    } else {
        n as u32
    };
    let sizes = sc.model.sizes;
    match sizes.bounds(p.min_size, p.max_size) {
        Some((lo, hi)) => sizes.up(n).unwrap_or(hi).clamp(lo, hi),
        // No size the target takes lies between the bounds: keep asking for n, which the target
        // refuses, as the policy does.
        None => n,
    }
}

fn finish(sc: &Scenario, name: &str, steps: Vec<Step>) -> Run {
    finish_from(sc, name, steps, sc.model.start_size)
}

/// [`finish`] for a baseline that starts at `start` nodes (per cluster) rather than the
/// scenario's start size.
fn finish_from(sc: &Scenario, name: &str, mut steps: Vec<Step>, start: u32) -> Run {
    // A baseline sizes an instance as one, every cluster alike on the hottest one's load: its
    // rows count every cluster's nodes, as the policy's rows of an instance do (`Sim::row`).
    let clusters = u32::try_from(sc.clusters.len()).unwrap_or(u32::MAX);
    if clusters > 1 {
        for s in &mut steps {
            s.desired = s.desired.saturating_mul(clusters);
            s.serving = s.serving.saturating_mul(clusters);
            s.demand *= f64::from(clusters);
        }
    }
    let start = start.saturating_mul(clusters.max(1));
    let summary = Summary::from_steps(name, &steps, sc.policy.metrics[0].target, sc.limit, start);
    Run { steps, summary }
}

/// The newest sample written and visible at `now` (a late one is not yet), as the metric's own
/// value on the nodes that served when it was measured, with its time: `None` when there is none,
/// the answer is partial, the newest is stale, or it overflows with the recorded size (each of
/// which a real autoscaler meets as a failed metrics query and skips the evaluation).
fn reading(sc: &Scenario, fleet: &Fleet, now: Ts, cursor: &Cell<usize>) -> Option<(Ts, f64)> {
    let metric = &sc.policy.metrics[0];
    let (faults, delay) = (sc.model.faults, sc.model.metric_delay);
    let mut visible = seek(&sc.trace.points, now - delay, cursor);
    if faults.any() {
        while visible > 0 && !faults.readable(sc.trace.points[visible - 1].0, now, delay) {
            visible -= 1;
        }
    }
    if visible == 0 || faults.partial(now) {
        return None;
    }
    let (at, raw) = sc.trace.points[visible - 1];
    let kind = metric.kind;
    let seen =
        observed_of(kind, demand_of(kind, sc.model.recorded_size, raw), fleet.serving_at(at), raw, metric.ceiling);
    (now - at <= metric.max_age.max(sc.trace.interval() + delay) && seen.is_finite()).then_some((at, seen))
}

/// The Kubernetes HPA algorithm.
pub fn hpa(sc: &Scenario) -> Run {
    let metric = &sc.policy.metrics[0];
    let kind = metric.kind;
    let target = metric.target;
    let mut fleet = Fleet::for_model(&sc.model);
    let mut recs: VecDeque<(Ts, u32)> = VecDeque::new();
    let lookup = DemandLookup::new(sc);
    let cursor = Cell::new(0);
    let periods = (sc.policy.interval.0 / HPA_PERIOD.0).max(1);
    let mut steps = Vec::with_capacity(sc.evaluations());
    for now in grid(&sc.trace, &sc.policy) {
        fleet.advance(now);
        let current = fleet.requested();
        let mut observed = f64::NAN;
        let mut desired = current;
        if let Some((at, seen)) = reading(sc, &fleet, now, &cursor) {
            observed = seen;
            // The HPA averages usage over the pods that are ready and multiplies by their
            // number: the nodes the sample was measured on, not the size last asked for
            // (while a resize runs, or before new capacity serves, the two differ).
            let basis = fleet.serving_at(at).max(1) as f64;
            let usage_ratio = match kind {
                MetricKind::PerNode => observed / target,
                MetricKind::Total => observed / (target * basis),
            };
            let rec = if (usage_ratio - 1.0).abs() <= HPA_TOLERANCE {
                current
            } else {
                clamp(sc, (basis * usage_ratio - 1e-9).ceil(), now)
            };
            recs.push_back((now, rec));
            while recs.front().is_some_and(|&(t, _)| now - t > HPA_DOWN_WINDOW) {
                recs.pop_front();
            }
            desired = if rec < current { recs.iter().map(|r| r.1).max().unwrap_or(rec).min(current) } else { rec };
            if desired > current {
                let mut allowed = current;
                // A long policy interval holds many HPA periods; past max_size more make no
                // difference (and would overflow).
                for _ in 0..periods {
                    allowed = allowed.saturating_mul(2).max(allowed.saturating_add(4));
                    if allowed >= sc.policy.max_size {
                        break;
                    }
                }
                desired = desired.min(allowed);
            }
        }
        // The storage floor holds even when the metric gave nothing to act on.
        desired = desired.max(sc.storage_floor_at(now).min(sc.policy.max_size));
        if desired != current {
            // Refused while an operation runs: the next evaluation tries again.
            let _ = fleet.resize(desired, now);
        }
        steps.push(Step {
            at: now,
            demand: lookup.at(now),
            observed,
            smoothed: f64::NAN,
            spike: false,
            desired: fleet.requested(),
            serving: fleet.serving(),
            reason: "hpa",
            forecast: f64::NAN,
            ramp: f64::NAN,
        });
    }
    finish(sc, "hpa", steps)
}

/// Which of cloudspannerecosystem/autoscaler's scaling methods (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpannerMethod {
    /// `ceil(size × value / threshold)`.
    Linear,
    /// ± `stepSize` nodes, `overloadStepSize` past the overload level.
    Stepwise,
}

impl SpannerMethod {
    /// The algorithm's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            SpannerMethod::Linear => "linear",
            SpannerMethod::Stepwise => "stepwise",
        }
    }

    /// The size it asks for at `size` nodes when the per-node value is `value` against
    /// `threshold`, before bounds and cooling (`size` when the value is within the margin).
    ///
    /// On a target sized in processing units (`sizes` a ladder), the steps are its documented
    /// defaults in units, "2 NODES or 200 PROCESSING_UNITS" (overload: 500), and "when the
    /// Spanner instance size is over 1000 PROCESSING_UNITS, scaling will be done in steps of 1000"
    /// (its configuration schema); otherwise a step of 200 from 3,000 would round back to 3,000.
    pub fn suggest(self, size: u32, value: f64, threshold: f64, sizes: crate::core::SizeRule) -> u32 {
        if (value - threshold).abs() <= SPANNER_MARGIN * threshold {
            return size;
        }
        let step = |nodes: u32| match sizes {
            crate::core::SizeRule::Ladder { fine, threshold: rung, coarse } => {
                let units = nodes.saturating_mul(fine);
                // Its stepwise.js: "currentSize > 1000".
                if size > rung { units.max(coarse) } else { units }
            }
            _ => nodes,
        };
        match self {
            SpannerMethod::Linear => (f64::from(size) * value / threshold - 1e-9).ceil().max(0.0) as u32,
            SpannerMethod::Stepwise if value > SPANNER_OVERLOAD * threshold => {
                size.saturating_add(step(SPANNER_OVERLOAD_STEP))
            }
            SpannerMethod::Stepwise if value > threshold => size.saturating_add(step(SPANNER_STEP)),
            SpannerMethod::Stepwise => size.saturating_sub(step(SPANNER_STEP)),
        }
    }
}

/// cloudspannerecosystem/autoscaler with `method` and its default parameters, on the same target
/// and source as the policy (resize operations, provisioning, missing and late samples).
pub fn spanner(sc: &Scenario, method: SpannerMethod) -> Run {
    let metric = &sc.policy.metrics[0];
    let (kind, target) = (metric.kind, metric.target);
    let mut fleet = Fleet::for_model(&sc.model);
    let lookup = DemandLookup::new(sc);
    let cursor = Cell::new(0);
    let mut last_scaling: Option<Ts> = None;
    let mut next_poll: Option<Ts> = None;
    let mut steps = Vec::with_capacity(sc.evaluations());
    for now in grid(&sc.trace, &sc.policy) {
        fleet.advance(now);
        let current = fleet.requested();
        let mut observed = f64::NAN;
        if next_poll.is_none_or(|t| now >= t) {
            next_poll = Some(now + SPANNER_POLL);
            if let Some((at, seen)) = reading(sc, &fleet, now, &cursor) {
                observed = seen;
                // Its metrics are utilizations of the instance: a total is read per serving node.
                let value = match kind {
                    MetricKind::PerNode => seen,
                    MetricKind::Total => seen / f64::from(fleet.serving_at(at).max(1)),
                };
                let suggested = clamp(sc, f64::from(method.suggest(current, value, target, sc.model.sizes)), now);
                let cooling = if suggested > current { SPANNER_OUT_COOLING } else { SPANNER_IN_COOLING };
                let cooled = last_scaling.is_none_or(|t| now - t >= cooling);
                // A resize refused while an operation runs waits for the next poll.
                if suggested != current && cooled && fleet.resize(suggested, now).is_ok() {
                    last_scaling = Some(now);
                }
            }
        }
        // The storage floor holds even when the metric gave nothing to act on.
        let floor = sc.storage_floor_at(now).min(sc.policy.max_size);
        if fleet.requested() < floor && fleet.resize(floor, now).is_ok() {
            last_scaling = Some(now);
        }
        steps.push(Step {
            at: now,
            demand: lookup.at(now),
            observed,
            smoothed: f64::NAN,
            spike: false,
            desired: fleet.requested(),
            serving: fleet.serving(),
            reason: method.name(),
            forecast: f64::NAN,
            ramp: f64::NAN,
        });
    }
    finish(sc, method.name(), steps)
}

/// The size that covers the peak, all the time.
pub fn static_peak(sc: &Scenario) -> Run {
    let metric = &sc.policy.metrics[0];
    let peak = sc
        .trace
        .points
        .iter()
        .map(|p| demand_of(metric.kind, sc.model.recorded_size, p.1))
        .filter(|d| d.is_finite())
        .fold(0.0, f64::max);
    // Sized for the peak and for the most data the trace stores.
    let most_data = grid(&sc.trace, &sc.policy).map(|t| sc.storage_floor_at(t)).max().unwrap_or(0);
    let size = clamp(sc, (peak / metric.target - 1e-9).ceil().max(f64::from(most_data)), sc.trace.span().0);
    let lookup = DemandLookup::new(sc);
    let steps = grid(&sc.trace, &sc.policy)
        .map(|now| Step {
            at: now,
            demand: lookup.at(now),
            observed: f64::NAN,
            smoothed: f64::NAN,
            spike: false,
            desired: size,
            serving: size,
            reason: "static-peak",
            forecast: f64::NAN,
            ramp: f64::NAN,
        })
        .collect();
    // It is sized before the replay starts, so it makes no resize of its own.
    finish_from(sc, "static-peak", steps, size)
}

/// The smallest size that keeps every evaluation at or under target, with no delay.
pub fn oracle(sc: &Scenario) -> Run {
    let metric = &sc.policy.metrics[0];
    let lookup = DemandLookup::new(sc);
    let mut size = sc.model.start_size;
    let steps = grid(&sc.trace, &sc.policy)
        .map(|now| {
            let demand = lookup.at(now);
            if !demand.is_nan() {
                size = clamp(sc, (demand / metric.target - 1e-9).ceil(), now);
            }
            Step {
                at: now,
                demand,
                observed: f64::NAN,
                smoothed: f64::NAN,
                spike: false,
                desired: size,
                serving: size,
                reason: "oracle",
                forecast: f64::NAN,
                ramp: f64::NAN,
            }
        })
        .collect();
    finish(sc, "oracle", steps)
}

/// The oracle held for [`ORACLE_HOLD`]: it knows the future and gives each 30-minute block (from
/// the first evaluation, so blocks line up with the trace's start) the smallest size, within
/// min/max, that keeps the block's highest demand at or under target. Like `oracle`, new capacity
/// serves at once (no provisioning delay): both are floors to compare a real plan with, not plans a
/// real target could follow. A block without demand (a gap) keeps the size before it.
pub fn oracle_30(sc: &Scenario) -> Run {
    let metric = &sc.policy.metrics[0];
    let lookup = DemandLookup::new(sc);
    let rows: Vec<(Ts, f64)> = grid(&sc.trace, &sc.policy).map(|now| (now, lookup.at(now))).collect();
    let mut size = sc.model.start_size;
    let mut steps = Vec::with_capacity(rows.len());
    let mut i = 0;
    while i < rows.len() {
        let from = rows[i].0;
        let end = i + rows[i..].partition_point(|r| r.0 - from < ORACLE_HOLD);
        let peak = rows[i..end].iter().map(|r| r.1).filter(|d| !d.is_nan()).reduce(f64::max);
        let floor = rows[i..end].iter().map(|r| sc.storage_floor_at(r.0)).max().unwrap_or(0);
        if let Some(peak) = peak {
            size = clamp(sc, (peak / metric.target - 1e-9).ceil().max(f64::from(floor)), from);
        }
        steps.extend(rows[i..end].iter().map(|&(at, demand)| Step {
            at,
            demand,
            observed: f64::NAN,
            smoothed: f64::NAN,
            spike: false,
            desired: size,
            serving: size,
            reason: "oracle-30",
            forecast: f64::NAN,
            ramp: f64::NAN,
        }));
        i = end;
    }
    finish(sc, "oracle-30", steps)
}

/// The built-in autoscaler a policy steers, alone: its minimum left at the policy's `minSize`,
/// as it ran before the policy steered it (`None` unless the policy steers one). Replayed in the
/// same world as the policy's steering (`model::Steer`): same trace, delays and faults.
pub fn builtin(sc: &Scenario) -> Option<Run> {
    sc.model.steer?;
    let mut world = crate::sim::sim(sc);
    let lookup = DemandLookup::new(sc);
    let gap = sc.gap();
    let mut steps = Vec::with_capacity(sc.evaluations());
    for now in grid(&sc.trace, &sc.policy) {
        world.advance(now);
        let (requested, serving, _) = world.row(now, gap);
        steps.push(Step {
            at: now,
            demand: lookup.at(now),
            observed: f64::NAN,
            smoothed: f64::NAN,
            spike: false,
            desired: requested,
            serving,
            reason: "builtin",
            forecast: f64::NAN,
            ramp: f64::NAN,
        });
    }
    Some(finish(sc, "builtin", steps))
}
