//! Baseline algorithms, run through the same model as the policy.
//!
//! - `hpa`: the Kubernetes HPA as documented: `desired = ceil(current × observed / target)`, 10%
//!   tolerance, a 5-minute scale-down stabilization window, default scale-up policies (the larger
//!   of +100% or +4 every 15 s), reading the newest visible sample with the same metric delay.
//! - `static-peak`: the size that covers the trace's peak, all the time.
//! - `oracle`: the smallest size that keeps every evaluation at or under target with no delay:
//!   the lower bound on cost.
//! - `oracle-30`: the oracle held for 30 minutes at a time: each block of 30 minutes (from the
//!   first evaluation) gets the smallest size that keeps the block's peak at or under target, with
//!   no delay. The realistic cost floor: no real target can follow the per-sample oracle.

use std::collections::VecDeque;

use crate::core::MetricKind;
use crate::core::{Dur, Ts};
use crate::sim::model::{Fleet, demand_of, observed_of};
use crate::sim::report::{Step, Summary};
use crate::sim::{Run, Scenario, demand_at, grid};

/// The HPA's scale-down stabilization window (default `--horizontal-pod-autoscaler-downscale-stabilization`).
const HPA_DOWN_WINDOW: Dur = Dur::mins(5);
/// The HPA's sync period; its default scale-up policies apply per 15 s.
const HPA_PERIOD: Dur = Dur::secs(15);
/// The HPA's default tolerance.
const HPA_TOLERANCE: f64 = 0.1;
/// How long `oracle-30` holds each size.
pub const ORACLE_HOLD: Dur = Dur::mins(30);

fn clamp(sc: &Scenario, n: f64) -> u32 {
    let p = &sc.policy;
    if n.is_nan() || n <= p.min_size as f64 {
        p.min_size
    } else if n >= p.max_size as f64 {
        p.max_size
    } else {
        n as u32
    }
}

fn finish(sc: &Scenario, name: &str, steps: Vec<Step>) -> Run {
    let summary = Summary::from_steps(name, &steps, sc.policy.metrics[0].target, sc.limit, sc.model.start_size);
    Run { steps, summary }
}

/// The Kubernetes HPA algorithm.
pub fn hpa(sc: &Scenario) -> Run {
    let metric = &sc.policy.metrics[0];
    let kind = metric.kind;
    let target = metric.target;
    let recorded = sc.model.recorded_size;
    let mut fleet = Fleet::new(sc.model.start_size, sc.model.provision_delay);
    let mut recs: VecDeque<(Ts, u32)> = VecDeque::new();
    let gap = sc.gap();
    let periods = (sc.policy.interval.0 / HPA_PERIOD.0).max(1);
    let mut steps = Vec::with_capacity(sc.evaluations());
    for now in grid(&sc.trace, &sc.policy) {
        fleet.advance(now);
        let current = fleet.requested();
        let visible = sc.trace.points.partition_point(|p| p.0 <= now - sc.model.metric_delay);
        let mut observed = f64::NAN;
        let mut desired = current;
        if visible > 0 {
            let (at, raw) = sc.trace.points[visible - 1];
            // Stale metrics make the HPA skip the evaluation, as a failed metrics query does.
            let seen = observed_of(kind, demand_of(kind, recorded, raw), fleet.serving_at(at), raw);
            // A value that overflows with the recorded size is a failed metrics query too.
            if now - at <= metric.max_age.max(sc.trace.interval() + sc.model.metric_delay) && seen.is_finite() {
                observed = seen;
                let usage_ratio = match kind {
                    MetricKind::PerNode => observed / target,
                    MetricKind::Total => observed / (target * current.max(1) as f64),
                };
                let rec = if (usage_ratio - 1.0).abs() <= HPA_TOLERANCE {
                    current
                } else {
                    clamp(sc, (current as f64 * usage_ratio - 1e-9).ceil())
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
        }
        if desired != current {
            fleet.resize(desired, now);
        }
        steps.push(Step {
            at: now,
            demand: demand_at(&sc.trace, kind, recorded, now, gap),
            observed,
            smoothed: f64::NAN,
            spike: false,
            desired: fleet.requested(),
            serving: fleet.serving(),
            reason: "hpa",
        });
    }
    finish(sc, "hpa", steps)
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
    let size = clamp(sc, (peak / metric.target - 1e-9).ceil());
    let gap = sc.gap();
    let steps = grid(&sc.trace, &sc.policy)
        .map(|now| Step {
            at: now,
            demand: demand_at(&sc.trace, metric.kind, sc.model.recorded_size, now, gap),
            observed: f64::NAN,
            smoothed: f64::NAN,
            spike: false,
            desired: size,
            serving: size,
            reason: "static-peak",
        })
        .collect();
    // It is sized before the replay starts, so it makes no resize of its own.
    let mut run = finish(sc, "static-peak", steps);
    run.summary = Summary::from_steps("static-peak", &run.steps, metric.target, sc.limit, size);
    run
}

/// The smallest size that keeps every evaluation at or under target, with no delay.
pub fn oracle(sc: &Scenario) -> Run {
    let metric = &sc.policy.metrics[0];
    let gap = sc.gap();
    let mut size = sc.model.start_size;
    let steps = grid(&sc.trace, &sc.policy)
        .map(|now| {
            let demand = demand_at(&sc.trace, metric.kind, sc.model.recorded_size, now, gap);
            if !demand.is_nan() {
                size = clamp(sc, (demand / metric.target - 1e-9).ceil());
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
    let gap = sc.gap();
    let rows: Vec<(Ts, f64)> = grid(&sc.trace, &sc.policy)
        .map(|now| (now, demand_at(&sc.trace, metric.kind, sc.model.recorded_size, now, gap)))
        .collect();
    let mut size = sc.model.start_size;
    let mut steps = Vec::with_capacity(rows.len());
    let mut i = 0;
    while i < rows.len() {
        let from = rows[i].0;
        let end = i + rows[i..].partition_point(|r| r.0 - from < ORACLE_HOLD);
        let peak = rows[i..end].iter().map(|r| r.1).filter(|d| !d.is_nan()).reduce(f64::max);
        if let Some(peak) = peak {
            size = clamp(sc, (peak / metric.target - 1e-9).ceil());
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
        }));
        i = end;
    }
    finish(sc, "oracle-30", steps)
}
