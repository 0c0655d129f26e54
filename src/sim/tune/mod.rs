//! `ebbflow tune`: search a policy's parameters on recorded traces for the Pareto front of cost
//! (node-minutes) against overload (minutes over the limit) against scale actions, under
//! constraints a person states, and recommend the cheapest variant that meets them.
//!
//! Every trace is split by whole days: the search sees only the earlier days (the tuning days);
//! the front is then replayed over the whole trace and scored on the later days it never saw
//! (the held-back days), so a variant that only fits the days it was tuned on shows it.

pub mod bench;
pub mod output;
pub mod search;
pub mod space;

use std::path::{Path, PathBuf};

use crate::api::ScalePolicySpec;
use crate::core::{Dur, Ts};
use crate::sim::report::Summary;
use crate::sim::scenario::{Scenario, ScenarioFile};
use search::{Outcome, Scores};
use space::Dim;

/// Search a policy's parameters on recorded traces and recommend the cheapest variant that
/// meets your constraints.
///
/// Moves the target, the headroom quantile, the smoothing window, both cooldowns and
/// stabilization windows, the step limits and the spike settings; replays every variant
/// through the same closed loop as `simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct TuneArgs {
    /// Scenario YAML to tune on (as `simulate --scenario` takes). Repeatable: the scores add up
    /// over all of them.
    #[arg(long = "scenario", value_name = "FILE")]
    pub scenarios: Vec<PathBuf>,
    /// Recorded metric to tune on (CSV or ListTimeSeries JSON), with --policy. Repeatable.
    #[arg(long = "trace", value_name = "FILE")]
    pub traces: Vec<PathBuf>,
    /// The unit the traces' values are written in, where they feed a metric that is a fraction:
    /// percent (divided by 100 when read) or fraction [default: each scenario's traceScale, or
    /// the trace's `# unit:` line]. The tuned target is written in the metric's own unit.
    #[arg(long, value_name = "UNIT")]
    pub trace_scale: Option<crate::sim::trace::TraceScale>,
    /// The starting ScalePolicy YAML; for --scenario files, replaces the policy they name.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Nodes the target had while the traces were recorded (perNode metrics).
    #[arg(long, value_name = "N")]
    pub recorded_size: Option<u32>,
    /// Nodes at the start of each replay.
    #[arg(long, value_name = "N")]
    pub start_size: Option<u32>,
    /// Time before added capacity serves, e.g. 20m for Bigtable.
    #[arg(long, value_name = "DUR")]
    pub provision_delay: Option<String>,
    /// Time before a sample is visible to the policy [default: 4m].
    #[arg(long, value_name = "DUR")]
    pub metric_delay: Option<String>,
    /// Per-node value counted as overload, in the metric's unit [default: the starting target ×
    /// 1.25]. It stays fixed while the target is searched.
    #[arg(long, value_name = "VALUE")]
    pub limit: Option<f64>,
    /// Which policy metric the traces feed [default: the first].
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,
    /// Constraint: at most this many minutes over the limit per day, on average over the
    /// tuning days [default: no more than the starting policy's].
    #[arg(long, value_name = "MIN")]
    pub max_over_limit_per_day: Option<f64>,
    /// Constraint: at most this many scale actions per day, on average over the tuning days.
    #[arg(long, value_name = "N")]
    pub max_resizes_per_day: Option<f64>,
    /// Constraint: follow Bigtable's guidance to remove at most 10% of the nodes per 10
    /// minutes. Every searched variant keeps scaleIn.cooldown at 10m or more, scaleIn.maxStepPercent
    /// at 10 or less, and scaleIn.maxStepNodes at 1.
    #[arg(long)]
    pub bigtable_scale_in_guidance: bool,
    /// Most policy variants to run (the starting policy included).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub budget: usize,
    /// Stop when the front has not moved for this many generations.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub patience: usize,
    /// Seed of the search: the same seed and inputs give the same result.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Share of each trace's whole days held back from the search and used only to score the
    /// front (at least one day).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.25)]
    pub holdout: f64,
    /// Write the recommended policy here, as ScalePolicy YAML ready for `kubectl apply`.
    #[arg(long, value_name = "FILE.yaml")]
    pub out: Option<PathBuf>,
    /// Write a chart of the front (node-minutes against minutes over the limit) as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
    /// Rows of the front to print (0: all).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub show: usize,
    /// Worker threads [default: the machine's cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl Default for TuneArgs {
    fn default() -> Self {
        TuneArgs {
            scenarios: Vec::new(),
            traces: Vec::new(),
            trace_scale: None,
            policy: None,
            recorded_size: None,
            start_size: None,
            provision_delay: None,
            metric_delay: None,
            limit: None,
            metric: None,
            max_over_limit_per_day: None,
            max_resizes_per_day: None,
            bigtable_scale_in_guidance: false,
            budget: 2000,
            patience: 12,
            seed: 1,
            holdout: 0.25,
            out: None,
            chart: None,
            show: 20,
            threads: None,
            no_progress: false,
        }
    }
}

const DAY: Dur = Dur(24 * 3_600_000);

/// One trace prepared for tuning.
#[derive(Debug, Clone)]
pub struct Case {
    /// Where it came from (the scenario file, or the trace file).
    pub source: String,
    /// The scenario (its policy is the starting policy).
    pub scenario: Scenario,
    /// Evaluations at or before this time are tuning days; later ones are held back.
    pub cutoff: Ts,
    /// Whole days of the trace.
    pub days: i64,
    /// Days held back.
    pub held_days: i64,
}

impl Case {
    /// Length of the tuning part, in days.
    pub fn tune_days(&self) -> f64 {
        (self.cutoff - self.scenario.trace.span().0).0 as f64 / DAY.0 as f64
    }
}

/// Split a scenario's trace: the last `holdout` share of its whole days (at least one) is held
/// back; at least one day must remain to tune on.
pub fn split(source: &str, scenario: Scenario, holdout: f64) -> Result<Case, String> {
    let (start, end) = scenario.trace.span();
    let days = (end - start).0 / DAY.0;
    if days < 2 {
        let hours = (end - start).0 / 3_600_000;
        return Err(format!(
            "{source}: the trace spans {hours} hours; tune holds back whole days to check its result, so it needs a trace of at least 2 days (one to tune on, one held back)"
        ));
    }
    let held_days = ((holdout * days as f64).round() as i64).clamp(1, days - 1);
    let cutoff = Ts(end.0 - held_days * DAY.0);
    Ok(Case { source: source.to_string(), scenario, cutoff, days, held_days })
}

/// Everything a run of `tune` works from.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The traces.
    pub cases: Vec<Case>,
    /// The starting policy as replayed (one metric, Enforce): what variants are made from.
    pub spec: ScalePolicySpec,
    /// The searched dimensions.
    pub dims: Vec<Dim>,
    /// The starting policy file and its full document, for the YAML written.
    pub policy_path: PathBuf,
    /// The starting policy document as loaded.
    pub policy: crate::api::ScalePolicy,
    /// Index of the tuned metric in the full policy.
    pub metric: usize,
    /// The constraints.
    pub constraints: Constraints,
}

/// What a person asked the recommended policy to meet, per day of trace on average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constraints {
    /// Minutes over the limit per day.
    pub over_limit_per_day: Option<f64>,
    /// Whether the over-limit bound is the starting policy's own (no bound was given).
    pub over_limit_from_start: bool,
    /// Scale actions per day.
    pub actions_per_day: Option<f64>,
    /// Bigtable's scale-in guidance.
    pub bigtable: bool,
}

impl Constraints {
    /// Whether scores over `days` meet the numeric constraints (the guidance is a bound on the
    /// space, checked separately).
    pub fn meet(&self, s: &Scores, days: f64) -> bool {
        self.over_limit_per_day.is_none_or(|m| s.over_limit / days <= m + 1e-9)
            && self.actions_per_day.is_none_or(|m| s.actions as f64 / days <= m + 1e-9)
    }
}

fn check_args(args: &TuneArgs) -> Result<(), String> {
    if args.scenarios.is_empty() && args.traces.is_empty() {
        return Err("tune needs recorded load to tune on: pass --scenario FILE (repeatable), or --trace FILE with --policy FILE".into());
    }
    if !args.traces.is_empty() && args.policy.is_none() {
        return Err("--trace needs --policy FILE: the starting ScalePolicy to tune".into());
    }
    if args.budget < 10 {
        return Err(format!(
            "--budget {}: give at least 10 variants (a few hundred to a few thousand is typical)",
            args.budget
        ));
    }
    if args.patience == 0 {
        return Err("--patience 0: give at least 1 generation (default 12)".into());
    }
    if !(args.holdout.is_finite() && (0.05..=0.5).contains(&args.holdout)) {
        return Err(format!(
            "--holdout {}: give the share of days to hold back, between 0.05 and 0.5 (default 0.25)",
            args.holdout
        ));
    }
    for (flag, v) in
        [("--max-over-limit-per-day", args.max_over_limit_per_day), ("--max-resizes-per-day", args.max_resizes_per_day)]
    {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(format!("{flag} {v}: give a number of at least 0, per day (e.g. {flag} 5)"));
        }
    }
    if args.threads == Some(0) {
        return Err("--threads 0: give at least 1".into());
    }
    if let Some(chart) = &args.chart
        && chart.extension().is_none_or(|e| !e.eq_ignore_ascii_case("svg"))
    {
        return Err(format!("--chart {}: tune writes SVG only; name the file .svg", chart.display()));
    }
    Ok(())
}

impl TuneArgs {
    fn file_over(&self, trace: Option<PathBuf>) -> ScenarioFile {
        ScenarioFile {
            name: None,
            trace,
            policy: self.policy.clone(),
            recorded_size: self.recorded_size,
            start_size: self.start_size,
            provision_delay: self.provision_delay.clone(),
            metric_delay: self.metric_delay.clone(),
            limit: self.limit,
            metric: self.metric.clone(),
            trace_scale: self.trace_scale,
            ..ScenarioFile::default()
        }
    }

    /// Check the flags, load every trace and the starting policy, and split the traces.
    pub fn problem(&self) -> Result<Problem, String> {
        check_args(self)?;
        let mut files: Vec<(String, ScenarioFile)> = Vec::new();
        for p in &self.scenarios {
            let base = ScenarioFile::load(p).map_err(|e| format!("--scenario {e}"))?;
            files.push((p.display().to_string(), self.file_over(None).over(base)));
        }
        for t in &self.traces {
            files.push((t.display().to_string(), self.file_over(Some(t.clone()))));
        }
        let mut cases = Vec::new();
        let mut policies: Vec<(String, PathBuf)> = Vec::new();
        for (source, file) in files {
            let policy = file.policy.clone().ok_or_else(|| {
                format!("{source}: the scenario names no policy; add `policy: FILE` to it or pass --policy FILE")
            })?;
            if file.trace.is_none() {
                return Err(format!("{source}: the scenario names no trace; add `trace: FILE` to it"));
            }
            let sc =
                Scenario::build(file).map_err(|e| if e.contains(&source) { e } else { format!("{source}: {e}") })?;
            policies.push((source.clone(), policy));
            cases.push(split(&source, sc, self.holdout)?);
        }
        let spec = cases[0].scenario.spec.clone();
        if let Some(other) = cases.iter().position(|c| c.scenario.spec != spec) {
            return Err(format!(
                "{} and {} replay different policies ({} and {}); tune searches one policy: pass --policy FILE to tune it on all of them",
                cases[0].source,
                cases[other].source,
                policies[0].1.display(),
                policies[other].1.display()
            ));
        }
        let policy_path = policies[0].1.clone();
        let (policy, _) = crate::crd::load_policy(&policy_path).map_err(|e| e.to_string())?;
        let (_, metric) = crate::sim::replay_policy(&policy.spec, self.metric.as_deref())?;
        let dims = space::dims(&spec, 0, self.bigtable_scale_in_guidance);
        let constraints = Constraints {
            over_limit_per_day: self.max_over_limit_per_day,
            over_limit_from_start: self.max_over_limit_per_day.is_none(),
            actions_per_day: self.max_resizes_per_day,
            bigtable: self.bigtable_scale_in_guidance,
        };
        Ok(Problem { cases, spec, dims, policy_path, policy, metric, constraints })
    }
}

/// The three scores a variant is ranked by, summed row by row as the replay makes them, in the
/// order and arithmetic of [`Summary::from_steps`] (so a replay scored to its end scores exactly
/// what its summary states), without keeping the rows: a variant's replay of 86,400 evaluations
/// kept 7 MB of rows to be summed afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    limit: f64,
    /// The size of the row before the last one summed.
    prev: u32,
    /// The newest row `(at, demand, desired, serving)`: its length is known at the next.
    last: Option<(Ts, f64, u32, u32)>,
    /// When the row before the newest was made (the last row lasts as long as it did).
    before: Option<Ts>,
    scores: Scores,
    rows: usize,
}

impl Tally {
    /// A tally against the overload `limit` for a replay starting at `start_size`.
    pub fn new(limit: f64, start_size: u32) -> Tally {
        Tally { limit, prev: start_size, last: None, before: None, scores: Scores::default(), rows: 0 }
    }

    /// One row: the evaluation at `at`, the demand then, the size asked for and serving after it.
    pub fn push(&mut self, at: Ts, demand: f64, desired: u32, serving: u32) {
        if let Some(row) = self.last {
            self.add(row, (at - row.0).as_minutes());
            self.before = Some(row.0);
        }
        self.last = Some((at, demand, desired, serving));
        self.rows += 1;
    }

    fn add(&mut self, (_, demand, desired, serving): (Ts, f64, u32, u32), minutes: f64) {
        self.scores.node_minutes += crate::sim::report::billed(desired, serving) as f64 * minutes;
        if desired != self.prev {
            self.scores.actions += 1;
        }
        self.prev = desired;
        if !demand.is_nan() && demand / serving.max(1) as f64 / (1.0 + crate::sim::report::TIE) > self.limit {
            self.scores.over_limit += minutes;
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The scores of the rows whose length is known (all but the newest): a lower bound of the
    /// final scores, which only grow.
    pub fn so_far(&self) -> Scores {
        self.scores
    }

    /// The scores of every row, the newest lasting as long as the one before it.
    pub fn finish(mut self) -> Scores {
        if let Some(row) = self.last.take() {
            let minutes = self.before.map_or(1.0, |b| (row.0 - b).as_minutes());
            self.add(row, minutes);
        }
        self.scores
    }
}

/// A replay scored as it runs ([`Tally`]), ended at the tuning days' cutoff or once its scores,
/// added to those of the traces before it, are dominated by the front.
struct Scoring<'f> {
    tally: Tally,
    gap: crate::core::Dur,
    cutoff: Ts,
    before: Scores,
    front: &'f [Scores],
    pruned: bool,
}

impl crate::sim::Rows for Scoring<'_> {
    fn go_on(&mut self, now: Ts) -> bool {
        if now > self.cutoff {
            return false;
        }
        if !self.front.is_empty() && self.tally.rows().is_multiple_of(PRUNE_EVERY) {
            let so_far = self.before.plus(&self.tally.so_far());
            if self.front.iter().any(|f| f.dominates(&so_far)) {
                self.pruned = true;
                return false;
            }
        }
        true
    }

    fn row(&mut self, now: Ts, _: &crate::core::Decision, world: &crate::sim::model::Sim<'_>) {
        let (requested, serving, demand) = world.row(now, self.gap);
        self.tally.push(now, demand, requested, serving);
    }
}

/// How often (in evaluations) a replay compares its running scores with the front.
const PRUNE_EVERY: usize = 512;

/// The scores a summary states.
pub fn scores_of(s: &Summary) -> Scores {
    Scores { node_minutes: s.node_minutes, over_limit: s.minutes_over_limit, actions: s.scale_outs + s.scale_ins }
}

/// An evaluator of variants on the tuning days, with its own copy of the scenarios.
pub struct Evaluator<'a> {
    problem: &'a Problem,
    scratch: Vec<Scenario>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator for `problem`.
    pub fn new(problem: &'a Problem) -> Evaluator<'a> {
        Evaluator { problem, scratch: problem.cases.iter().map(|c| c.scenario.clone()).collect() }
    }

    /// The spec of the variant at `x` (the starting spec itself for `None`).
    pub fn spec_at(&self, x: Option<&[f64]>) -> ScalePolicySpec {
        match x {
            Some(x) => space::apply(&self.problem.spec, 0, &self.problem.dims, &space::decode(&self.problem.dims, x)),
            None => self.problem.spec.clone(),
        }
    }

    /// Run the variant `spec` on the tuning days, stopping early once the running scores are
    /// dominated by one of `front`.
    pub fn tuning(&mut self, spec: ScalePolicySpec, front: &[Scores]) -> Outcome {
        let policy = match crate::spec::policy_from_spec(&spec) {
            Ok(p) => p,
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        let mut total = Scores::default();
        for (case, sc) in self.problem.cases.iter().zip(self.scratch.iter_mut()) {
            sc.spec = spec.clone();
            sc.policy = policy.clone();
            let mut scoring = Scoring {
                tally: Tally::new(sc.limit, sc.start_total()),
                gap: sc.gap(),
                cutoff: case.cutoff,
                before: total,
                front,
                pruned: false,
            };
            crate::sim::drive_replay(sc, true, &mut scoring);
            if scoring.pruned {
                return Outcome::Pruned;
            }
            total = total.plus(&scoring.tally.finish());
        }
        Outcome::Scored(total)
    }
}

/// A variant's scores on the tuning days and on the held-back days, from one replay of each
/// whole trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Summed over the traces' tuning days.
    pub tuning: Scores,
    /// Summed over the traces' held-back days.
    pub held: Scores,
    /// Per trace: the summaries of the tuning and the held-back days.
    pub per_case: Vec<(Summary, Summary)>,
}

/// Replay `spec` over every whole trace and score the tuning and held-back days apart. The
/// held-back days continue the replay (the policy arrives at them with the state and size the
/// tuning days left), as they would in production.
pub fn score_split(problem: &Problem, spec: &ScalePolicySpec) -> Result<Split, String> {
    let policy = crate::spec::policy_from_spec(spec).map_err(|e| e.to_string())?;
    let mut out = Split { tuning: Scores::default(), held: Scores::default(), per_case: Vec::new() };
    for case in &problem.cases {
        let sc = Scenario { spec: spec.clone(), policy: policy.clone(), ..case.scenario.clone() };
        let run = crate::sim::run_policy(&sc);
        let k = run.steps.partition_point(|s| s.at <= case.cutoff);
        let (a, b) = run.steps.split_at(k);
        let target = sc.policy.metrics[0].target;
        let tuning = Summary::from_steps(&sc.name, a, target, sc.limit, sc.model.start_size);
        let held_start = a.last().map_or(sc.model.start_size, |s| s.desired);
        let held = Summary::from_steps(&sc.name, b, target, sc.limit, held_start);
        out.tuning = out.tuning.plus(&scores_of(&tuning));
        out.held = out.held.plus(&scores_of(&held));
        out.per_case.push((tuning, held));
    }
    Ok(out)
}

/// One row of the result: a front member (or the starting policy) with both scores.
#[derive(Debug, Clone)]
pub struct Member {
    /// Index into the search's `evaluated` (`None` for the starting policy).
    pub index: Option<usize>,
    /// The changed fields: (path, from, to).
    pub changes: Vec<(String, String, String)>,
    /// The variant as replayed (one metric).
    pub spec: ScalePolicySpec,
    /// Scores on both parts.
    pub split: Split,
    /// Whether it meets the constraints on the tuning days.
    pub meets: bool,
}

/// The whole result of a run.
#[derive(Debug, Clone)]
pub struct Tuned {
    /// The search.
    pub found: search::Found,
    /// The starting policy.
    pub start: Member,
    /// The front, cheapest first.
    pub front: Vec<Member>,
    /// Index into `front` of the cheapest member that meets the constraints, if one does.
    pub recommended: Option<usize>,
    /// That member with the changes that do not pay reverted (see [`simplify`]): the policy
    /// recommended and written.
    pub recommendation: Option<Member>,
    /// The constraints, with the starting policy's over-limit filled in when none was given.
    pub constraints: Constraints,
    /// Days tuned on and held back, summed over the traces.
    pub tune_days: f64,
    /// Days held back.
    pub held_days: f64,
    /// Seconds the search took.
    pub seconds: f64,
    /// Evaluations (rows) one variant replays on the tuning days, summed over the traces.
    pub rows_per_variant: usize,
}

/// Run the search and score the front. `progress(done)` reports variants run.
pub fn tune(problem: &Problem, cfg: &search::Config, mut progress: impl FnMut(usize)) -> Result<Tuned, String> {
    let started = std::time::Instant::now();
    let tune_days: f64 = problem.cases.iter().map(Case::tune_days).sum();
    let held_days: f64 = problem.cases.iter().map(|c| c.held_days as f64).sum();
    let start_split = score_split(problem, &problem.spec)?;
    let mut constraints = problem.constraints;
    if constraints.over_limit_per_day.is_none() {
        constraints.over_limit_per_day = Some(start_split.tuning.over_limit / tune_days);
    }
    let dims = &problem.dims;
    let key = |x: &[f64]| space::decode(dims, x).iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
    let worker = || {
        let mut ev = Evaluator::new(problem);
        move |x: &[f64], front: &[Scores]| {
            let spec = ev.spec_at(Some(x));
            ev.tuning(spec, front)
        }
    };
    let meets = |s: &Scores| constraints.meet(s, tune_days);
    // The search starts from the starting policy's point (clamped into the guidance bounds,
    // when they exclude it); the starting policy itself is scored apart, above.
    let found = search::search(cfg, dims.len(), space::base_point(dims), key, meets, &worker, &mut progress);
    let seconds = started.elapsed().as_secs_f64();
    let member = |index: Option<usize>| -> Result<Member, String> {
        let (spec, values) = match index {
            Some(i) => {
                let values = space::decode(dims, &found.evaluated[i].x);
                (space::apply(&problem.spec, 0, dims, &values), values)
            }
            None => (problem.spec.clone(), dims.iter().map(|d| d.base).collect::<Vec<_>>()),
        };
        let split = match (index, &start_split) {
            (None, s) => s.clone(),
            (Some(_), _) => score_split(problem, &spec)?,
        };
        let guidance_ok = !constraints.bigtable || space::bigtable_guidance_problem(&spec).is_none();
        let meets = guidance_ok && constraints.meet(&split.tuning, tune_days);
        Ok(Member { index, changes: space::changes(dims, &values, problem.metric), spec, split, meets })
    };
    let start = member(None)?;
    let front: Vec<Member> = found.front.iter().map(|&i| member(Some(i))).collect::<Result<_, _>>()?;
    let recommended = front.iter().position(|m| m.meets);
    let recommendation = match recommended {
        Some(i) => Some(simplify(problem, &front[i], &constraints, tune_days)?),
        None => None,
    };
    let rows_per_variant = problem
        .cases
        .iter()
        .map(|c| {
            let (a, _) = c.scenario.trace.span();
            ((c.cutoff - a).0 / c.scenario.policy.interval.0.max(1)) as usize + 1
        })
        .sum();
    Ok(Tuned {
        found,
        start,
        front,
        recommended,
        recommendation,
        constraints,
        tune_days,
        held_days,
        seconds,
        rows_per_variant,
    })
}

/// How much more a reverted field may cost, as a share of the recommended variant's
/// node-minutes, and still be reverted.
pub const SIMPLER_COST: f64 = 0.002;

/// Revert, one field at a time, each change of `m` whose revert still meets the constraints on
/// the tuning days at no more than [`SIMPLER_COST`] more node-minutes than `m`: a variant bred
/// from random points moves every field, and most of those moves change nothing that matters.
/// What is left is the short list of changes a person can review.
pub fn simplify(problem: &Problem, m: &Member, constraints: &Constraints, tune_days: f64) -> Result<Member, String> {
    let dims = &problem.dims;
    let mut values: Vec<f64> = dims.iter().map(|d| d.knob.get(&m.spec, 0).unwrap_or(d.base)).collect();
    let mut best = m.clone();
    for (k, d) in dims.iter().enumerate() {
        // A starting value outside the bounds (the guidance excludes it) cannot come back.
        if (values[k] - d.base).abs() <= 1e-9 || !(d.lo..=d.hi).contains(&d.base) {
            continue;
        }
        let mut trial = values.clone();
        trial[k] = d.base;
        let spec = space::apply(&problem.spec, 0, dims, &trial);
        if constraints.bigtable && space::bigtable_guidance_problem(&spec).is_some() {
            continue;
        }
        let split = score_split(problem, &spec)?;
        if constraints.meet(&split.tuning, tune_days)
            && split.tuning.node_minutes <= m.split.tuning.node_minutes * (1.0 + SIMPLER_COST)
        {
            values = trial;
            best = Member {
                index: m.index,
                changes: space::changes(dims, &values, problem.metric),
                spec,
                split,
                meets: true,
            };
        }
    }
    Ok(best)
}

/// Run the command; the error is the message for the user.
pub fn run(args: &TuneArgs) -> Result<(), String> {
    let problem = args.problem()?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cfg = search::Config { budget: args.budget, patience: args.patience, seed: args.seed, threads };
    let mut bar = crate::sim::cli::Progress::new(args.budget, args.no_progress);
    let tuned = tune(&problem, &cfg, |done| bar.tick(done))?;
    bar.done();
    print!("{}", output::report(&problem, &tuned, args));
    if let Some(path) = &args.chart {
        std::fs::write(path, output::chart_svg(&problem, &tuned))
            .map_err(|e| format!("--chart {}: cannot write: {e}", path.display()))?;
    }
    let Some(best) = &tuned.recommendation else {
        return Err(output::no_variant_meets(&tuned));
    };
    if let Some(path) = &args.out {
        let yaml = output::policy_yaml(&problem, &tuned, best, args)?;
        write_file(path, &yaml).map_err(|e| format!("--out {}: cannot write: {e}", path.display()))?;
        println!("wrote the recommended policy to {}", path.display());
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scoring a variant as its replay runs gives, to the last bit, the scores its summary states
    /// (the rows summed afterwards), on bundled traces with faults, a storage floor and gaps;
    /// and the scores so far never exceed the final ones (pruning on them is sound).
    #[test]
    fn a_replay_scored_as_it_runs_scores_what_its_summary_states() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        // A replicated instance sized per cluster too: its rows count every cluster.
        let per_cluster = {
            let mut f =
                ScenarioFile::load(&root.join("simulations/examples/instance-hot-cluster.yaml")).expect("example");
            f.policy = Some(root.join("deploy/examples/bigtable-instance-per-cluster.yaml"));
            Scenario::build(f).expect("valid")
        };
        assert!(per_cluster.per_cluster.is_some());
        let bundled = ["ec2-noisy-midload.yaml", "rds-noisy-1m.yaml", "asg-misconfiguration-62d.yaml"].map(|name| {
            let path = root.join("simulations/scenarios").join(name);
            Scenario::build(ScenarioFile::load(&path).expect("bundled")).expect("valid")
        });
        for sc in bundled.iter().chain([&per_cluster]) {
            let name = &sc.name;
            let run = crate::sim::run_policy(sc);
            let mut tally = Tally::new(sc.limit, sc.start_total());
            for (i, s) in run.steps.iter().enumerate() {
                tally.push(s.at, s.demand, s.desired, s.serving);
                if i % 997 == 0 {
                    let (so_far, whole) = (tally.so_far(), scores_of(&run.summary));
                    assert!(so_far.node_minutes <= whole.node_minutes && so_far.over_limit <= whole.over_limit);
                    assert!(so_far.actions <= whole.actions, "{name}");
                }
            }
            let whole = scores_of(&run.summary);
            let streamed = tally.finish();
            assert_eq!(streamed.node_minutes.to_bits(), whole.node_minutes.to_bits(), "{name}");
            assert_eq!(streamed.over_limit.to_bits(), whole.over_limit.to_bits(), "{name}");
            assert_eq!(streamed.actions, whole.actions, "{name}");
            assert!(whole.over_limit > 0.0 && whole.actions > 0, "{name}: the case exercises every score");

            let mut scoring = Scoring {
                tally: Tally::new(sc.limit, sc.start_total()),
                gap: sc.gap(),
                cutoff: Ts(i64::MAX),
                before: Scores::default(),
                front: &[],
                pruned: false,
            };
            crate::sim::drive_replay(sc, true, &mut scoring);
            assert_eq!(scoring.tally.finish(), whole, "{name}: scored in the replay itself");
        }
    }
}
