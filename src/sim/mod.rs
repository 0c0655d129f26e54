//! `ebbflow simulate`: replay a recorded trace through the same `tick` (and so the same decision
//! core) the controller runs, in a closed-loop model of the target, and compare the result with
//! baseline algorithms run through the same model.

pub mod baselines;
pub mod bench;
pub mod chart;
pub mod cli;
pub mod html;
pub mod model;
pub mod report;
pub mod scenario;
pub mod trace;
pub mod tune;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use crate::api::{Mode, ScalePolicySpec};
use crate::core::{MetricKind, Policy, PolicyState, Ts};
use crate::tick::tick;

pub use model::Model;
pub use report::{Step, Summary};
pub use scenario::Scenario;
pub use trace::Trace;

/// Everything one simulated algorithm produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// One row per evaluation.
    pub steps: Vec<Step>,
    /// Figures computed from the rows.
    pub summary: Summary,
}

/// Run a future that never waits (the simulator's adapters answer at once).
#[cfg(test)]
pub(crate) fn run_now<F: Future>(f: F) -> F::Output {
    run_pinned(pin!(f))
}

/// [`run_now`] for a future pinned where it was made: a tick's future is two kilobytes, and
/// moving it into `run_now` cost a copy per simulated evaluation.
pub(crate) fn run_pinned<F: Future>(mut f: Pin<&mut F>) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        // The simulated world answers every call synchronously; a pending future here is a bug.
        Poll::Pending => unreachable!("simulated adapters never wait"),
    }
}

/// The metric the trace feeds, and the policy reduced to it (a trace replays one metric).
pub fn replay_policy(spec: &ScalePolicySpec, metric: Option<&str>) -> Result<(ScalePolicySpec, usize), String> {
    let index = match metric {
        Some(name) => spec.metrics.iter().position(|m| m.name == name).ok_or_else(|| {
            let names: Vec<&str> = spec.metrics.iter().map(|m| m.name.as_str()).collect();
            format!("--metric {name}: the policy has no such metric (it has: {})", names.join(", "))
        })?,
        None => 0,
    };
    let mut s = spec.clone();
    s.metrics = vec![spec.metrics[index].clone()];
    // A simulation shows what enforcing the policy would do.
    s.mode = Mode::Enforce;
    Ok((s, index))
}

/// Demand at evaluation time `t`: the newest sample at or before `t`, unless it is older than
/// `gap` (then the trace has a gap there and demand is unknown). Demand too large for an `f64`
/// (a value near `f64::MAX` times the recorded size) is unknown too, never infinite.
pub(crate) fn demand_at(trace: &Trace, kind: MetricKind, recorded: u32, t: Ts, gap: crate::core::Dur) -> f64 {
    demand_in(&trace.points, kind, recorded, t, gap)
}

/// [`demand_at`] in one column's samples.
pub(crate) fn demand_in(points: &[(Ts, f64)], kind: MetricKind, recorded: u32, t: Ts, gap: crate::core::Dur) -> f64 {
    let i = points.partition_point(|p| p.0 <= t);
    if i == 0 {
        return f64::NAN;
    }
    let (at, v) = points[i - 1];
    let demand = model::demand_of(kind, recorded, v);
    if t - at > gap || !demand.is_finite() { f64::NAN } else { demand }
}

/// Evaluation times: every policy interval across the trace.
pub(crate) fn grid(trace: &Trace, policy: &Policy) -> impl Iterator<Item = Ts> {
    let (start, end) = trace.span();
    let step = policy.interval.0.max(1);
    (0..).map(move |k| Ts(start.0 + k * step)).take_while(move |t| *t <= end)
}

/// Replay the scenario's policy.
pub fn run_policy(sc: &Scenario) -> Run {
    run_policy_while(sc, |_, _| true)
}

/// Replay the scenario's policy for as long as `go_on(now, rows so far)` says, asked before each
/// evaluation: `ebbflow tune` stops at the end of its tuning days, and stops a variant early
/// once its running scores already lose to the best found (every score only grows). The rows
/// and the summary are those of the evaluations made; a replay that runs to the end is exactly
/// [`run_policy`]'s.
pub fn run_policy_while(sc: &Scenario, go_on: impl FnMut(Ts, &[Step]) -> bool) -> Run {
    replay(sc, go_on, false).0
}

/// The world a scenario replays in: the trace's first column feeds the replayed metric (per
/// cluster for an instance), and further columns the metrics `columns:` maps them to.
pub fn world(sc: &Scenario) -> model::World<'_> {
    let metric = &sc.policy.metrics[0];
    let world = model::World::new(&sc.trace, metric.kind, sc.model);
    let feeds: Vec<_> = sc
        .feeds
        .iter()
        .enumerate()
        .filter_map(|(i, column)| {
            let pts = sc.trace.column(column)?;
            let m = &sc.policy.metrics[i + 1];
            Some((crate::spec::metric_query(&sc.spec.metrics[i + 1], "simulated", "simulated"), m.kind, pts))
        })
        .collect();
    let world = if feeds.is_empty() { world } else { world.with_feeds(feeds) };
    if sc.clusters.is_empty() {
        world
    } else {
        world.with_clusters(sc.clusters.iter().filter_map(|c| sc.trace.column(c)).collect())
    }
}

/// [`run_policy_while`], with each fleet's `(requested, serving)` after every evaluation: one
/// fleet, or one per cluster of a replicated instance.
pub fn run_policy_traced(sc: &Scenario, go_on: impl FnMut(Ts, &[Step]) -> bool) -> (Run, Vec<Vec<(u32, u32)>>) {
    replay(sc, go_on, true)
}

fn replay(sc: &Scenario, mut go_on: impl FnMut(Ts, &[Step]) -> bool, record: bool) -> (Run, Vec<Vec<(u32, u32)>>) {
    let metric = &sc.policy.metrics[0];
    let world = world(sc);
    // The world answers a query from the column its metric is mapped to (the first, unless
    // `columns:` says otherwise), whatever its source: bound by query.
    let queries: Vec<crate::adapters::MetricQuery> =
        sc.spec.metrics.iter().map(|m| crate::spec::metric_query(m, "simulated", "simulated")).collect();
    let gap = sc.gap();
    let mut state = PolicyState::default();
    let mut steps = Vec::with_capacity(sc.evaluations());
    let mut fleets = Vec::new();
    for now in grid(&sc.trace, &sc.policy) {
        if !go_on(now, &steps) {
            break;
        }
        world.advance(now);
        // The state moves into the tick rather than being copied per sample (a copy is a dozen
        // allocations, a third of a replay's time).
        let report = match run_pinned(pin!(tick(&sc.policy, &queries, std::mem::take(&mut state), &world, &world, now)))
        {
            Ok(r) => r,
            // The simulated target never fails (it has no network and answers every call); were
            // it ever to, the policy would start over as after a lost status, and the replay go on.
            Err(_) => continue,
        };
        let d = &report.decision;
        let (requested, serving) = world.sizes();
        steps.push(Step {
            at: now,
            demand: world.demand_at(now, gap),
            observed: d.raw(0).unwrap_or(f64::NAN),
            smoothed: d.smoothed(&sc.policy, 0).unwrap_or(f64::NAN),
            spike: d.spike(&sc.policy),
            desired: requested,
            serving,
            reason: d.reason.as_str(),
            forecast: d.metrics.first().and_then(|m| m.forecast_demand).unwrap_or(f64::NAN),
        });
        state = report.decision.state;
        if record {
            fleets.push(world.fleet_sizes());
        }
    }
    let mut summary = Summary::from_steps(&sc.name, &steps, metric.target, sc.limit, sc.model.start_size);
    if let Some(f) = &sc.policy.forecast {
        summary.forecast = Some(report::ForecastScore::from_steps(&steps, metric.target, f.lead, sc.model.start_size));
    }
    (Run { steps, summary }, fleets)
}

/// The policy and every baseline (hpa, static-peak, oracle, oracle-30, linear, stepwise, in that order), side by
/// side; `vs_lower_bound` filled in against the oracle.
pub fn compare(sc: &Scenario) -> Vec<Run> {
    let mut runs = vec![
        run_policy(sc),
        baselines::hpa(sc),
        baselines::static_peak(sc),
        baselines::oracle(sc),
        baselines::oracle_30(sc),
        baselines::spanner(sc, baselines::SpannerMethod::Linear),
        baselines::spanner(sc, baselines::SpannerMethod::Stepwise),
    ];
    let lower = runs[3].summary.node_minutes;
    for r in &mut runs {
        if lower > 0.0 {
            r.summary.vs_lower_bound = Some(r.summary.node_minutes / lower);
        }
    }
    runs
}
