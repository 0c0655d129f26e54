//! Speed of `tune` for `simulate --bench` (a report, never a timed test): policy variants
//! replayed per second over a synthetic 60-day, 1-minute trace, on every core.

use std::fmt::Write as _;
use std::time::Instant;

use super::search::{self, Outcome, Scores};
use super::{Case, Constraints, Evaluator, Problem, space};
use crate::core::Ts;
use crate::sim::model::Model;
use crate::sim::scenario::Scenario;
use crate::sim::trace::Trace;

/// Samples in the reference trace of the speed goal: 60 days at one a minute.
pub const GOAL_SAMPLES: usize = 86_400;
/// Variants in the speed goal.
pub const GOAL_VARIANTS: usize = 10_000;

/// Noisy per-node CPU with a daily cycle, a weekly dip and flash crowds, one sample a minute.
fn trace(samples: usize) -> Trace {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut csv = String::from("timestamp,value\n");
    let t0 = 1_700_006_400i64; // a Wednesday, 00:00 UTC
    for i in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = (x % 10_000) as f64 / 10_000.0 - 0.5;
        let day = (i as f64 / 1440.0 * std::f64::consts::TAU).sin();
        let weekend = if (i / 1440) % 7 >= 5 { -0.1 } else { 0.0 };
        let crowd = if i % 4327 < 20 { 0.3 } else { 0.0 };
        let v: f64 = (0.45 + 0.15 * day + weekend + 0.15 * noise + crowd).max(0.01);
        let _ = writeln!(csv, "{},{v:.4}", Ts((t0 + i as i64 * 60) * 1000).to_rfc3339());
    }
    Trace::parse("synthetic-60d-1m.csv", &csv).unwrap_or_else(|e| panic!("the synthetic trace parses: {e}"))
}

/// The bundled default policy (target 0.65, sizes 1–40) on the synthetic trace, recorded on 10
/// nodes, 10-minute provisioning; the whole trace is "tuning days" (nothing held back).
fn problem(samples: usize) -> Problem {
    let text = include_str!("../../../simulations/policies/default-065.yaml");
    let (sp, _) = crate::crd::check_policy("default-065.yaml", text)
        .unwrap_or_else(|e| panic!("the bundled policy is valid: {e}"));
    let (spec, metric) = crate::sim::replay_policy(&sp.spec, None).unwrap_or_else(|e| panic!("{e}"));
    let policy = crate::spec::policy_from_spec(&spec).unwrap_or_else(|e| panic!("{e}"));
    let trace = trace(samples);
    let end = trace.span().1;
    let limit = policy.metrics[0].target * 1.25;
    // A node pool, as the policy's target: its operation time, and Cloud Monitoring's faults.
    let behaviour = spec.target.kind().behaviour();
    let model = Model {
        resize_time: behaviour.operation_time,
        new_size_while_busy: behaviour.new_size_while_busy,
        faults: crate::sim::model::Faults {
            gap_rate: crate::sim::scenario::DEFAULT_GAP_RATE,
            partial_rate: crate::sim::scenario::DEFAULT_PARTIAL_RATE,
            late_rate: crate::sim::scenario::DEFAULT_LATE_RATE,
            late_by: crate::core::Dur::mins(3),
            seed: 1,
        },
        ..Model::ideal(10, 10, crate::core::Dur::mins(10), crate::core::Dur::mins(4))
    };
    let scenario = Scenario {
        name: "bench".into(),
        trace,
        spec: spec.clone(),
        policy,
        model,
        limit,
        notes: Vec::new(),
        feeds: Vec::new(),
        clusters: Vec::new(),
        per_cluster: None,
    };
    let case = Case { source: "synthetic".into(), scenario, cutoff: Ts(end.0), days: 60, held_days: 0 };
    Problem {
        cases: vec![case],
        dims: space::dims(&spec, 0, false),
        spec,
        policy_path: "simulations/policies/default-065.yaml".into(),
        policy: sp,
        metric,
        constraints: Constraints {
            over_limit_per_day: None,
            over_limit_from_start: false,
            actions_per_day: None,
            bigtable: false,
        },
    }
}

/// The figures `simulate --bench` prints.
#[derive(Debug, Clone, Copy)]
pub struct TuneSpeed {
    /// Worker threads used.
    pub threads: usize,
    /// Variants replayed to the end.
    pub variants: usize,
    /// Samples (evaluations) each replays.
    pub samples: usize,
    /// Seconds they took.
    pub seconds: f64,
    /// A real search (with early stopping of beaten variants): variants run and seconds.
    pub search_variants: usize,
    /// Seconds the search took.
    pub search_seconds: f64,
    /// Of the search's variants, those replayed to the end of the trace (the others were stopped
    /// once the front beat them).
    pub search_to_end: usize,
}

impl TuneSpeed {
    /// Variant-samples per second, every variant replayed to the end.
    pub fn rate(&self) -> f64 {
        (self.variants * self.samples) as f64 / self.seconds
    }

    /// Seconds the speed goal (10,000 variants over 86,400 samples) would take at [`Self::rate`].
    pub fn goal_seconds(&self) -> f64 {
        (GOAL_VARIANTS * GOAL_SAMPLES) as f64 / self.rate()
    }

    /// Seconds 10,000 variants would take at the search's own pace (early stops included).
    pub fn goal_search_seconds(&self) -> f64 {
        self.search_seconds / self.search_variants as f64 * GOAL_VARIANTS as f64 * GOAL_SAMPLES as f64
            / self.samples as f64
    }
}

/// Replay `variants` random variants of the default policy to the end over a synthetic trace of
/// `samples` one-minute samples on `threads` workers, then run a search of `search_budget`.
pub fn measure(samples: usize, variants: usize, search_budget: usize, threads: usize) -> TuneSpeed {
    let problem = problem(samples);
    let rows = problem.cases[0].scenario.evaluations();
    let mut rng = search::Rng::new(11);
    let points = search::latin_hypercube(&mut rng, variants, problem.dims.len());
    let worker = || {
        let mut ev = Evaluator::new(&problem);
        move |x: &[f64], front: &[Scores]| {
            let spec = ev.spec_at(Some(x));
            ev.tuning(spec, front)
        }
    };
    let started = Instant::now();
    let outcomes = search::run_batch(&points, &[], threads, &worker, |_| {});
    let seconds = started.elapsed().as_secs_f64();
    let replayed = outcomes.iter().filter(|o| matches!(o, Outcome::Scored(_))).count();

    // A real search: variants its front already beats stop early, so its pace per variant is
    // what `tune` itself reaches.
    let cfg = search::Config { budget: search_budget, patience: usize::MAX, seed: 1, threads };
    let started = Instant::now();
    let found = search::search(
        &cfg,
        problem.dims.len(),
        space::base_point(&problem.dims),
        |x| space::decode(&problem.dims, x).iter().map(|v| v.to_bits()).collect(),
        |_| true,
        &worker,
        |_| {},
    );
    let search_seconds = started.elapsed().as_secs_f64();
    let search_to_end = found.evaluated.iter().filter(|e| matches!(e.outcome, Outcome::Scored(_))).count();
    TuneSpeed {
        threads,
        variants: replayed,
        samples: rows,
        seconds,
        search_variants: found.evaluated.len(),
        search_seconds,
        search_to_end,
    }
}
