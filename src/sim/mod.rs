//! `ebbflow simulate`: replay a recorded trace through the same step machine (`core::step`, and so
//! the same decision core) the controller runs, in a closed-loop model of the target, and compare the result with
//! baseline algorithms run through the same model.

pub mod baselines;
pub mod bench;
pub mod chart;
pub mod cli;
pub mod drive;
pub mod html;
pub mod model;
pub mod report;
pub mod scenario;
pub mod trace;
pub mod tune;

use crate::api::{Mode, ScalePolicySpec};
use crate::core::{Decision, Dur, MetricKind, Policy, PolicyState, Ts};

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

/// Run a future that never waits (the simulated world's ports answer at once).
#[cfg(test)]
pub(crate) fn run_now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        // The simulated world answers every call synchronously; a pending future here is a bug.
        std::task::Poll::Pending => unreachable!("simulated adapters never wait"),
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

/// [`demand_in`] of the trace's first column, for evaluation times that mostly increase, as a
/// replay asks: each search of the trace starts where the last one ended (`model::seek`); the
/// answers are `demand_in`'s.
pub(crate) struct DemandLookup<'t> {
    trace: &'t Trace,
    kind: MetricKind,
    recorded: u32,
    gap: Dur,
    cursor: std::cell::Cell<usize>,
}

impl<'t> DemandLookup<'t> {
    /// Demand of the scenario's replayed metric, read as the baselines read it.
    pub(crate) fn new(sc: &'t Scenario) -> DemandLookup<'t> {
        let metric = &sc.policy.metrics[0];
        DemandLookup {
            trace: &sc.trace,
            kind: metric.kind,
            recorded: sc.model.recorded_size,
            gap: sc.gap(),
            cursor: std::cell::Cell::new(0),
        }
    }

    /// Demand at `t` (see [`demand_in`]).
    pub(crate) fn at(&self, t: Ts) -> f64 {
        let points = &self.trace.points;
        let i = model::seek(points, t, &self.cursor);
        let Some(&(at, v)) = i.checked_sub(1).and_then(|i| points.get(i)) else { return f64::NAN };
        let demand = model::demand_of(self.kind, self.recorded, v);
        if t - at > self.gap || !demand.is_finite() { f64::NAN } else { demand }
    }
}

/// Demand at evaluation time `t` in one column's samples: the newest sample at or before `t`,
/// unless it is older than `gap` (then the trace has a gap there and demand is unknown). Demand
/// too large for an `f64` (a value near `f64::MAX` times the recorded size) is unknown too, never
/// infinite.
pub(crate) fn demand_in(points: &[(Ts, f64)], kind: MetricKind, recorded: u32, t: Ts, gap: crate::core::Dur) -> f64 {
    let i = points.partition_point(|p| p.0 <= t);
    if i == 0 {
        return f64::NAN;
    }
    let (at, v) = points[i - 1];
    let demand = model::demand_of(kind, recorded, v);
    if t - at > gap || !demand.is_finite() { f64::NAN } else { demand }
}

/// Evaluation times: every policy interval across the trace, skipping what [`fast_forward`]
/// finds nothing can happen in (so the rows, and the memory, follow the samples, not the span).
pub(crate) fn grid(trace: &Trace, policy: &Policy) -> impl Iterator<Item = Ts> + use<> {
    grid_with(trace, policy, true)
}

/// [`grid`], or every policy interval with `fast_forward` off.
fn grid_with(trace: &Trace, policy: &Policy, fast_forward: bool) -> impl Iterator<Item = Ts> + use<> {
    let (start, end) = trace.span();
    let step = policy.interval.0.max(1);
    let skips = if fast_forward { skips(trace, policy) } else { Vec::new() };
    let (mut k, mut next_skip) = (0i64, 0usize);
    std::iter::from_fn(move || {
        let t = start.0.checked_add(k.checked_mul(step)?)?;
        if t > end.0 {
            return None;
        }
        let at = k;
        k = match skips.get(next_skip) {
            Some(&(stop, resume)) if stop == at => {
                next_skip += 1;
                resume
            }
            _ => at + 1,
        };
        Some(Ts(t))
    })
}

/// Margin after the last change a stretch without samples can bring before the replay skips
/// ahead: it covers the core's own waits (an operation's hour, an unconfirmed write's grace) and
/// the baselines' windows (the HPA's 5 minutes, the Spanner autoscaler's 30-minute cooling).
const SETTLE: Dur = Dur::mins(24 * 60);
/// Slowest pace of any algorithm that keeps acting on an old sample: the Spanner autoscaler's
/// stepwise method moves two nodes per 30-minute cooling, so maxSize of these reach any size.
const PER_NODE: Dur = Dur::mins(30);
/// Skips resume on whole days from the trace's start, when the interval divides a day, so the
/// periodic parts of the baselines (a 2-minute poll, 30-minute oracle blocks) keep their phase.
const DAY_MS: i64 = 24 * 3_600_000;

/// How long after a change the replay (the policy through `tick`, and every baseline) may go on
/// acting without a new sample: seeing the sample (the world's lag), its use until it is too old
/// (data age, history, smoothing), the cooldowns, stabilization windows and spike hold that can
/// defer a resize, the resize and warm-up that follow, a baseline's climb to any size, and
/// [`SETTLE`]. After that, every evaluation until the next change repeats the last one.
pub(crate) fn settle_time(trace: &Trace, policy: &Policy) -> Dur {
    let max_age = policy.metrics.iter().map(|m| m.max_age).max().unwrap_or(Dur::ZERO);
    let (out, inn) = (&policy.scale_out, &policy.scale_in);
    let climb = Dur(PER_NODE.0.saturating_mul(i64::from(policy.max_size)));
    SETTLE
        + trace.world_lag()
        + max_age
        + policy.sample_reach()
        + policy.warmup
        + policy.interval
        + out.cooldown
        + out.stabilization
        + inn.cooldown
        + inn.stabilization
        + policy.spike.as_ref().map_or(Dur::ZERO, |s| s.hold)
        + climb
}

/// Stretches of the trace's silences that nothing can happen in: `(time, time)` pairs, the
/// evaluation after which the replay jumps and the one it jumps to.
///
/// Without a new sample, the world changes only at a few instants after the last one: when it
/// is seen and used, when the trace's own spacing says it no longer counts as the demand
/// (1.5 intervals, [`Scenario::gap`]) or as a baseline's reading (an interval), and when the
/// next sample comes. After each, [`settle_time`] lets every consequence play out; the rest, up
/// to the next instant, is skipped: each skipped evaluation would repeat the one before (the
/// controller holds on missing data), and the row before a skip lasts until the next row, so
/// the figures (node-minutes, minutes without data) still cover the whole span. Only a schedule
/// or an override acts inside a silence; the scenario notes that it is not replayed there.
pub(crate) fn fast_forward(trace: &Trace, policy: &Policy) -> Vec<(Ts, Ts)> {
    let (start, _) = trace.span();
    let step = policy.interval.0.max(1);
    skips(trace, policy)
        .into_iter()
        .map(|(stop, resume)| {
            let at = |k: i64| Ts(start.0.saturating_add(k.saturating_mul(step)));
            (at(stop), at(resume))
        })
        .collect()
}

/// [`fast_forward`] as grid indices `(stop, resume)`, increasing, each `resume > stop + 1`.
fn skips(trace: &Trace, policy: &Policy) -> Vec<(i64, i64)> {
    let (start, end) = trace.span();
    let step = policy.interval.0.max(1);
    let settle = settle_time(trace, policy).0;
    let spacing = trace.interval().0.max(0);
    let changes = [spacing, spacing.saturating_mul(3) / 2];
    // The first evaluation at or after `t`, and the last at or before it on a whole day.
    let after = |t: i64| {
        let d = t.saturating_sub(start.0).max(0);
        d / step + i64::from(d % step != 0)
    };
    let day_before = |t: i64| {
        let k = t.saturating_sub(start.0).max(0) / step;
        if DAY_MS % step == 0 { k - k % (DAY_MS / step) } else { k }
    };
    // The last row lasts as long as the one before it (`report::step_minutes`): never jump onto it.
    let last = end.0.saturating_sub(start.0).max(0) / step;
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in trace.silences(Dur(settle)) {
        let b = b.0.min(end.0);
        let mut instants: Vec<i64> = changes.iter().map(|c| a.0.saturating_add(*c)).filter(|&t| t < b).collect();
        instants.sort_unstable();
        instants.push(b);
        let mut quiet_from = a.0.saturating_add(settle);
        for t in instants {
            let (stop, resume) = (after(quiet_from), day_before(t).min(last - 1));
            if resume > stop + 1 && out.last().is_none_or(|&(_, r)| stop > r) {
                out.push((stop, resume));
            }
            quiet_from = quiet_from.max(t.saturating_add(settle));
        }
    }
    out
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
    replay(sc, go_on, false, true).0
}

/// The world a scenario replays in: the trace's first column feeds the replayed metric (per
/// cluster for an instance), and further columns the metrics `columns:` maps them to.
pub fn sim(sc: &Scenario) -> model::Sim<'_> {
    let metric = &sc.policy.metrics[0];
    let world = model::Sim::new(&sc.trace, metric.kind, sc.model).with_ceiling(metric.ceiling);
    let feeds: Vec<_> = sc
        .feeds
        .iter()
        .enumerate()
        .filter_map(|(i, column)| {
            let pts = sc.trace.column(column)?;
            let m = &sc.policy.metrics[i + 1];
            Some((crate::spec::metric_query(&sc.spec.metrics[i + 1], "simulated", "simulated"), m.kind, m.ceiling, pts))
        })
        .collect();
    let world = if feeds.is_empty() { world } else { world.with_feeds(feeds) };
    if sc.clusters.is_empty() {
        world
    } else {
        world.with_clusters(sc.clusters.iter().filter_map(|c| sc.trace.column(c)).collect())
    }
}

/// [`sim`] behind the adapter ports, for the live engine (`ebbflow demo`).
pub fn world(sc: &Scenario) -> model::World<'_> {
    model::World::from(sim(sc))
}

/// [`run_policy_while`], with each fleet's `(requested, serving)` after every evaluation: one
/// fleet, or one per cluster of a replicated instance.
pub fn run_policy_traced(sc: &Scenario, go_on: impl FnMut(Ts, &[Step]) -> bool) -> (Run, Vec<Vec<(u32, u32)>>) {
    replay(sc, go_on, true, true)
}

/// What a replay does with each evaluation ([`drive_replay`]).
pub(crate) trait Rows {
    /// Whether to evaluate at `now` (false ends the replay).
    fn go_on(&mut self, now: Ts) -> bool;
    /// One evaluation at `now`: its decision, and the world after it.
    fn row(&mut self, now: Ts, decision: &crate::core::Decision, world: &model::Sim<'_>);
}

/// Replay the scenario's policy through the step machine, handing every evaluation to `rows`.
pub(crate) fn drive_replay(sc: &Scenario, fast_forward: bool, rows: &mut impl Rows) {
    let mut world = sim(sc);
    let mut driver = drive::Driver::for_scenario(sc, &world);
    if let Some(fraction) = sc.per_cluster {
        // Each cluster its own step machine and state, then the core's replica rule.
        let mut states = vec![PolicyState::default(); world.members()];
        for now in grid_with(&sc.trace, &sc.policy, fast_forward) {
            if !rows.go_on(now) {
                break;
            }
            world.advance(now);
            let states_in = std::mem::take(&mut states);
            let decided = driver.evaluate_members(&sc.policy, fraction, states_in, &mut world, now);
            // The decision that speaks for the instance: of those that resize, the largest.
            if let Some(d) = decided.iter().max_by_key(|d| (d.decision.is_resize(), d.decision.desired)) {
                rows.row(now, &d.decision, &world);
            }
            states = decided.into_iter().map(|d| d.decision.state).collect();
        }
        return;
    }
    // Each evaluation decides in place into the previous one's decision: its state is carried
    // on, never copied (a copy is a dozen allocations) nor moved through the stages (an eighth
    // of the replay's time).
    let mut decision = Decision::none_yet(PolicyState::default());
    for now in grid_with(&sc.trace, &sc.policy, fast_forward) {
        if !rows.go_on(now) {
            break;
        }
        world.advance(now);
        let decided = driver.evaluate(&sc.policy, &mut decision, &mut world, now);
        rows.row(now, decided.decision, &world);
    }
}

/// The rows of a replay kept as [`Step`]s (and, when asked, each fleet's sizes).
struct StepRows<'s, F> {
    sc: &'s Scenario,
    gap: Dur,
    steps: Vec<Step>,
    fleets: Option<Vec<Vec<(u32, u32)>>>,
    go_on: F,
}

impl<F: FnMut(Ts, &[Step]) -> bool> Rows for StepRows<'_, F> {
    fn go_on(&mut self, now: Ts) -> bool {
        (self.go_on)(now, &self.steps)
    }

    fn row(&mut self, now: Ts, d: &crate::core::Decision, world: &model::Sim<'_>) {
        let policy = &self.sc.policy;
        let (requested, serving, demand) = world.row(now, self.gap);
        self.steps.push(Step {
            at: now,
            demand,
            observed: d.raw(0).unwrap_or(f64::NAN),
            smoothed: d.smoothed(policy, 0).unwrap_or(f64::NAN),
            spike: d.spike(policy),
            desired: requested,
            serving,
            reason: d.reason.as_str(),
            forecast: d.metrics.first().and_then(|m| m.forecast_demand).unwrap_or(f64::NAN),
            ramp: d.metrics.first().and_then(|m| m.ramp_demand).unwrap_or(f64::NAN),
        });
        if let Some(fleets) = &mut self.fleets {
            fleets.push(world.fleet_sizes());
        }
    }
}

fn replay(
    sc: &Scenario,
    go_on: impl FnMut(Ts, &[Step]) -> bool,
    record: bool,
    fast_forward: bool,
) -> (Run, Vec<Vec<(u32, u32)>>) {
    let metric = &sc.policy.metrics[0];
    let mut rows = StepRows {
        sc,
        gap: sc.gap(),
        steps: Vec::with_capacity(sc.evaluations()),
        fleets: record.then(Vec::new),
        go_on,
    };
    drive_replay(sc, fast_forward, &mut rows);
    let steps = rows.steps;
    let mut summary = Summary::from_steps(&sc.name, &steps, metric.target, sc.limit, sc.start_total());
    if let Some(f) = &sc.policy.forecast {
        summary.forecast = Some(report::ForecastScore::from_steps(&steps, metric.target, f.lead, sc.start_total()));
    }
    summary.ramp = report::ForecastScore::of_ramp(&steps, metric.target, sc.policy.warmup, sc.start_total());
    (Run { steps, summary }, rows.fleets.unwrap_or_default())
}

/// The policy and every baseline (hpa, static-peak, oracle, oracle-30, linear, stepwise, in that order, and
/// `builtin` last when the policy steers a built-in autoscaler), side by side; `vs_lower_bound`
/// filled in against the oracle. The algorithms are independent replays of the same scenario,
/// so they run on every core, each into its own slot: the result is the same on any number.
pub fn compare(sc: &Scenario) -> Vec<Run> {
    let mut runs = on_every_core(&ALGORITHMS, |(_, run)| run(sc));
    // A policy that steers a built-in autoscaler is compared with that autoscaler alone too.
    runs.extend(baselines::builtin(sc));
    let lower = runs.iter().find(|r| r.summary.algorithm == "oracle").map_or(0.0, |r| r.summary.node_minutes);
    for r in &mut runs {
        if lower > 0.0 {
            r.summary.vs_lower_bound = Some(r.summary.node_minutes / lower);
        }
    }
    runs
}

/// One algorithm's replay of a scenario.
pub type Algorithm = fn(&Scenario) -> Run;

/// The algorithms [`compare`] replays, in its order, by the name its reports give them.
pub const ALGORITHMS: [(&str, Algorithm); 7] = [
    ("policy", run_policy),
    ("hpa", baselines::hpa),
    ("static-peak", baselines::static_peak),
    ("oracle", baselines::oracle),
    ("oracle-30", baselines::oracle_30),
    ("linear", |sc| baselines::spanner(sc, baselines::SpannerMethod::Linear)),
    ("stepwise", |sc| baselines::spanner(sc, baselines::SpannerMethod::Stepwise)),
];

/// `f` of every job, in order, the jobs taken one at a time by a thread per core (the policy's
/// replay, the longest, first).
fn on_every_core<J: Sync, R: Send>(jobs: &[J], f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len());
    if threads <= 1 {
        return jobs.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { return done };
            done.push((i, f(job)));
        }
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in helpers {
            done.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        done
    });
    done.sort_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::ScenarioFile;

    /// Two days of one-minute samples, fourteen days without any, two more days: the replay skips
    /// most of the silence, and every row it makes, and every figure, is what the replay of every
    /// minute gives (the skipped rows would only repeat the hold before them).
    #[test]
    fn skipping_a_long_silence_changes_no_row_and_no_figure() {
        let mut csv = String::from("timestamp,value\n");
        for (day, minute) in (0..2 * 1440).map(|m| (0, m)).chain((0..2 * 1440).map(|m| (16, m))) {
            let wave = 25.0 * (f64::from(minute) / 1440.0 * std::f64::consts::TAU).sin();
            let burst = if minute % 700 < 30 { 45.0 } else { 0.0 };
            let at = Ts((1_704_067_200 + i64::from(day) * 86_400 + i64::from(minute) * 60) * 1000);
            csv.push_str(&format!("{},{:.2}\n", at.to_rfc3339(), 40.0 + wave + burst));
        }
        let dir = std::env::temp_dir().join(format!("ebbflow-fast-forward-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trace = dir.join("silence.csv");
        std::fs::write(&trace, csv).unwrap();
        let sc = Scenario::build(ScenarioFile {
            trace: Some(trace),
            policy: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/simulations/policies/bigtable-cpu.yaml").into()),
            recorded_size: Some(10),
            trace_scale: Some(crate::sim::trace::TraceScale::Percent),
            ..ScenarioFile::default()
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(sc.notes.iter().any(|n| n.contains("skips")), "{:?}", sc.notes);

        let (fast, _) = replay(&sc, |_, _| true, false, true);
        let (every, _) = replay(&sc, |_, _| true, false, false);
        assert_eq!(every.steps.len(), 18 * 1440, "every minute from the first sample to the last");
        assert_eq!(fast.steps.len(), sc.evaluations());
        assert!(fast.steps.len() < every.steps.len() / 2, "{} of {} rows", fast.steps.len(), every.steps.len());
        assert!(fast.steps.iter().any(|s| s.desired != fast.steps[0].desired), "the policy resizes");

        let same = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
        let mut j = 0;
        for f in &fast.steps {
            while every.steps[j].at < f.at {
                j += 1;
            }
            let e = &every.steps[j];
            assert_eq!(
                (e.at, e.desired, e.serving, e.reason, e.spike),
                (f.at, f.desired, f.serving, f.reason, f.spike)
            );
            assert!(
                same(e.demand, f.demand) && same(e.observed, f.observed) && same(e.smoothed, f.smoothed),
                "{}",
                f.at
            );
        }
        let (a, b) = (&fast.summary, &every.summary);
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1.0);
        assert!(close(a.node_minutes, b.node_minutes), "{} vs {}", a.node_minutes, b.node_minutes);
        assert!(close(a.minutes_without_data, b.minutes_without_data));
        assert!(close(a.minutes_over_target, b.minutes_over_target));
        assert!(close(a.minutes_over_limit, b.minutes_over_limit));
        assert_eq!(
            (a.scale_outs, a.scale_ins, a.reversals, a.largest_size, a.overloads),
            (b.scale_outs, b.scale_ins, b.reversals, b.largest_size, b.overloads)
        );
        assert_eq!(a.recovery_minutes, b.recovery_minutes);
    }
}
