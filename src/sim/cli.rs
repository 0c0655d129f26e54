//! The `ebbflow simulate` command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::sim::report::{self, Summary};
use crate::sim::scenario::{Scenario, ScenarioFile};
use crate::sim::{Run, compare};

/// Replay recorded metrics through the policy and compare it with baselines.
///
/// With no arguments, replays the embedded default: a bundled NAB trace
/// (ec2_cpu_utilization_ac20cd.csv, recorded on 10 nodes) through simulations/policies/bigtable-cpu.yaml.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SimulateArgs {
    /// Scenario YAML (trace, traceScale, policy, recordedSize, startSize, provisionDelay,
    /// metricDelay, limit, metric, resizeTime, sizeStep, storage, gapRate, partialRate, lateRate, lateBy,
    /// seed); flags override its values.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Recorded metric: CSV `timestamp,value` or a Cloud Monitoring ListTimeSeries JSON response
    /// (several pages concatenated or in an array), e.g. from `ebbflow record`. Values that are
    /// not finite numbers (NaN, inf, empty; "NaN"/"Infinity" in JSON) are gaps. A trace whose
    /// span needs more than 10,000,000 evaluations at the policy's interval is refused, naming its
    /// longest gap.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The unit the trace's values are written in, where they feed a metric that is a fraction
    /// (Bigtable, Spanner, Compute and GKE CPU): percent (divided by 100 when read) or fraction
    /// [default: the trace's `# unit:` line; a trace that says nothing and passes 1 is refused].
    #[arg(long, value_name = "UNIT")]
    pub trace_scale: Option<crate::sim::trace::TraceScale>,
    /// ScalePolicy YAML, the same file `kubectl apply` takes.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Nodes the target had while the trace was recorded (needed for perNode metrics).
    #[arg(long, value_name = "N")]
    pub recorded_size: Option<u32>,
    /// Nodes at the start of the replay [default: recorded size; minSize for total metrics].
    #[arg(long, value_name = "N")]
    pub start_size: Option<u32>,
    /// Time from the end of a resize operation until added capacity serves, e.g. 20m for
    /// Bigtable, 2m for a node pool [default: the policy's scaleOut.warmup].
    #[arg(long, value_name = "DUR")]
    pub provision_delay: Option<String>,
    /// Time before a sample is visible to the policy [default: 4m, Cloud Monitoring's latency].
    #[arg(long, value_name = "DUR")]
    pub metric_delay: Option<String>,
    /// Per-node value counted as overload ("minutes over limit"), in the policy metric's unit
    /// (0.75 for 75 % CPU) [default: target × 1.25].
    #[arg(long, value_name = "VALUE")]
    pub limit: Option<f64>,
    /// Which policy metric the trace feeds [default: the first].
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,
    /// How long a resize operation runs; the target is busy and refuses another meanwhile. 0s
    /// answers at once [default: the target kind's: Bigtable 4m, GKE node pool 3m, workload 0s].
    #[arg(long, value_name = "DUR")]
    pub resize_time: Option<String>,
    /// The target takes only multiples of this size, as the live one says: a regional node
    /// pool's zone count, 2 for Bigtable's 2x node scaling [default: 1, any size]
    #[arg(long, value_name = "N")]
    pub size_step: Option<u32>,
    /// The data behind the storage floor: off, trace (the trace's `storage` column), or a storage
    /// utilization (0..1) measured on the recorded size [default: trace when the target has a
    /// storage floor and the trace the column, else off].
    #[arg(long, value_name = "off|trace|UTILIZATION")]
    pub storage: Option<crate::sim::scenario::StorageSetting>,
    /// Share of samples never written (0..1) [default: 0.005].
    #[arg(long, value_name = "SHARE")]
    pub gap_rate: Option<f64>,
    /// Share of metric answers that are partial (0..1) [default: 0.002].
    #[arg(long, value_name = "SHARE")]
    pub partial_rate: Option<f64>,
    /// Share of samples visible only --late-by after the metric delay (0..1) [default: 0.02].
    #[arg(long, value_name = "SHARE")]
    pub late_rate: Option<f64>,
    /// How much later a late sample is visible [default: 3m].
    #[arg(long, value_name = "DUR")]
    pub late_by: Option<String>,
    /// Seed of the faults: which samples and answers they hit [default: 1].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write one row per evaluation of the policy:
    /// timestamp,demand,observed,smoothed,spike,desired,serving,reason.
    #[arg(long, value_name = "FILE.csv")]
    pub steps_out: Option<PathBuf>,
    /// Write an SVG chart of demand vs serving capacity, with scale actions marked.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
    /// Write a self-contained HTML report (summary against the baselines, the chart, every scale
    /// action) to attach to a change review.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Evaluate a grid of policy variants: a spec path and values, e.g.
    /// `--sweep scaleIn.cooldown=5m,10m,20m --sweep metrics[0].smoothing.window=5m,15m`. Repeatable.
    #[arg(long, value_name = "KEY=V1,V2,...")]
    pub sweep: Vec<String>,
    /// How to rank sweep variants: over-limit (minutes over limit, then node-minutes),
    /// node-minutes, or over-target.
    #[arg(long, default_value = "over-limit", value_name = "ORDER")]
    pub rank_by: String,
    /// Report speed instead: samples per second through the decision core, and the time to run
    /// every scenario in --scenarios-dir with all baselines.
    #[arg(long)]
    pub bench: bool,
    /// Folder of scenario files for --bench.
    #[arg(long, value_name = "DIR", default_value = "simulations/scenarios")]
    pub scenarios_dir: PathBuf,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl SimulateArgs {
    fn overrides(&self) -> ScenarioFile {
        ScenarioFile {
            name: None,
            trace: self.trace.clone(),
            policy: self.policy.clone(),
            recorded_size: self.recorded_size,
            start_size: self.start_size,
            provision_delay: self.provision_delay.clone(),
            metric_delay: self.metric_delay.clone(),
            limit: self.limit,
            metric: self.metric.clone(),
            resize_time: self.resize_time.clone(),
            size_step: self.size_step,
            storage: self.storage.clone(),
            gap_rate: self.gap_rate,
            partial_rate: self.partial_rate,
            late_rate: self.late_rate,
            late_by: self.late_by.clone(),
            seed: self.seed,
            columns: None,
            clusters: None,
            trace_scale: self.trace_scale,
            autoscaler_target: None,
            autoscaler_max: None,
        }
    }

    /// The scenario these arguments describe.
    pub fn scenario(&self) -> Result<Scenario, String> {
        let base = match &self.scenario {
            Some(p) => ScenarioFile::load(p)?,
            None if self.trace.is_none() && self.policy.is_none() => default_scenario_file(),
            None => ScenarioFile::default(),
        };
        Scenario::build(self.overrides().over(base))
    }
}

/// The embedded default scenario (what `ebbflow simulate` with no arguments runs): the bundled
/// Bigtable CPU policy on the embedded trace, recorded on 10 nodes in percent (read as the
/// fractions `cpu_load` reports), 20m provisioning, 4m metric delay, and stored data at 20% of the
/// recorded nodes' storage (a 4-node storage floor).
pub fn default_scenario_file() -> ScenarioFile {
    ScenarioFile {
        name: Some("bigtable-cpu".into()),
        trace_scale: Some(crate::sim::trace::TraceScale::Percent),
        recorded_size: Some(10),
        start_size: Some(10),
        provision_delay: Some("20m".into()),
        metric_delay: Some("4m".into()),
        storage: Some(crate::sim::scenario::StorageSetting::Utilization(0.2)),
        ..ScenarioFile::default()
    }
}

/// The machine-readable result of a comparison.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The scenario, in one line.
    pub scenario: String,
    /// Assumptions and warnings.
    pub notes: Vec<String>,
    /// The policy first, then hpa, static-peak, oracle, oracle-30, linear and stepwise.
    pub results: Vec<Summary>,
}

/// Run the command; the error is the message for the user.
pub fn run(args: &SimulateArgs) -> Result<(), String> {
    if args.bench {
        return bench(args);
    }
    // Refused before the replay, which can take a while, rather than after it.
    if let Some(path) = &args.chart {
        crate::chart::check_path(path).map_err(|e| format!("--chart: {e}"))?;
    }
    let sc = args.scenario()?;
    if !args.sweep.is_empty() {
        return sweep(args, &sc);
    }
    let runs = compare(&sc);
    output(args, &sc, &runs)
}

fn output(args: &SimulateArgs, sc: &Scenario, runs: &[Run]) -> Result<(), String> {
    if let Some(path) = &args.steps_out {
        let mut f = std::fs::File::create(path).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        report::write_steps_with(&mut std::io::BufWriter::new(&mut f), &runs[0].steps, Some(&sc.policy))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    if let Some(path) = &args.chart {
        crate::sim::chart::write(path, sc, runs).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.html {
        crate::sim::html::write(path, sc, runs).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    let summaries: Vec<Summary> = runs.iter().map(|r| r.summary.clone()).collect();
    if args.json {
        let rep = Report { scenario: sc.describe(), notes: sc.notes.clone(), results: summaries };
        println!("{}", serde_json::to_string_pretty(&rep).map_err(|e| e.to_string())?);
    } else {
        println!("{}", sc.describe());
        for n in &sc.notes {
            println!("note: {n}");
        }
        println!();
        print!("{}", report::table(&summaries));
        println!();
        println!(
            "node-min: node-minutes billed; x lower: relative to the oracle (the lower bound); min>target / min>limit:"
        );
        println!("minutes with per-node load above the target / the limit; revs: scale-ins undone within an hour.");
        println!();
        println!("Elasticity (SPEC RG metrics; demand d = ceil(demand / target) nodes, supply s = serving nodes):");
        println!();
        print!("{}", report::scores_table(&summaries));
        println!();
        println!(
            "θU / θO: mean shortfall / excess of s against d, relative to max(d, 1); τU / τO: share of time s < d / s > d;"
        );
        println!("υ: share of time s and d did not move the same way; jitter/h: (supply chg − demand chg) per hour.");
        let forecast = report::forecast_table(&summaries);
        if !forecast.is_empty() {
            println!();
            println!("Forecast (each forecast against the demand that arrived lead later, in nodes at the target):");
            println!();
            print!("{forecast}");
            println!();
            println!(
                "forecasts: rows with a forecast rise whose outcome is in the trace; bias > 0: expected more than came;"
            );
            println!(
                "naive MAE: error of \"demand stays what it is now\" on the same rows; ahead outs: ScaleOutAhead resizes, needed: the load passed the old size within the lead."
            );
            if summaries.iter().any(|s| s.ramp.is_some()) {
                println!(
                    "(line): the line through a steady climb, its lead the warm-up, its rows those where a line was believed, its ahead outs ScaleOutOnRamp resizes."
                );
            }
        }
    }
    Ok(())
}

/// Parse `key=v1,v2` into the key and its values as JSON.
fn parse_sweep(arg: &str) -> Result<(String, Vec<serde_json::Value>), String> {
    let (key, values) = arg
        .split_once('=')
        .ok_or_else(|| format!("--sweep {arg}: expected KEY=V1,V2,... e.g. scaleIn.cooldown=5m,10m"))?;
    let values: Vec<serde_json::Value> = values
        .split(',')
        .map(|v| {
            let v = v.trim();
            serde_json::from_str::<serde_json::Value>(v)
                .ok()
                .filter(|j| j.is_number() || j.is_boolean())
                .unwrap_or_else(|| serde_json::Value::String(v.to_string()))
        })
        .collect();
    if key.is_empty() || values.iter().any(|v| v.as_str() == Some("")) {
        return Err(format!("--sweep {arg}: empty key or value"));
    }
    Ok((key.to_string(), values))
}

/// Set `path` (e.g. `metrics[0].smoothing.window`) inside a spec as JSON.
fn set_path(spec: &mut serde_json::Value, path: &str, value: serde_json::Value) -> Result<(), String> {
    let mut cur = spec;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => {
                let idx: usize = rest
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("--sweep {path}: bad index in \"{part}\""))?;
                (n, Some(idx))
            }
            None => (*part, None),
        };
        let last = i + 1 == parts.len() && index.is_none();
        let obj = cur.as_object_mut().ok_or_else(|| format!("--sweep {path}: \"{name}\" is not inside an object"))?;
        if last {
            obj.insert(name.to_string(), value);
            return Ok(());
        }
        cur = obj.entry(name.to_string()).or_insert_with(|| serde_json::json!({}));
        if let Some(idx) = index {
            let len = cur.as_array().map(|a| a.len()).unwrap_or(0);
            cur = cur
                .as_array_mut()
                .and_then(|a| a.get_mut(idx))
                .ok_or_else(|| format!("--sweep {path}: \"{name}\" has {len} entries, no [{idx}]"))?;
            if i + 1 == parts.len() {
                *cur = value;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A variant: its label and its summary.
struct Variant {
    label: String,
    summary: Summary,
}

/// `key` with every list index written as `[0]`, the form [`crate::crd::spec_field_paths`] lists.
fn index_free(key: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[0]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// Refuse a sweep key that names no policy field: it would change nothing, and every variant
/// would silently be the base policy.
fn check_sweep_key(key: &str) -> Result<(), String> {
    let known = crate::crd::spec_field_paths();
    let normal = index_free(key);
    if known.contains(&normal) {
        return Ok(());
    }
    let shown = crate::excerpt::excerpt(key);
    let hint = known
        .iter()
        .map(|k| (strsim::levenshtein(&normal.to_lowercase(), &k.to_lowercase()), k))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, k)| format!(" Did you mean {k}?"))
        .unwrap_or_default();
    Err(format!(
        "--sweep {shown}: no policy field is called that.{hint} The fields you can sweep (paths inside spec): {}",
        known.join(", ")
    ))
}

fn sweep(args: &SimulateArgs, base: &Scenario) -> Result<(), String> {
    if !matches!(args.rank_by.as_str(), "over-limit" | "node-minutes" | "over-target") {
        return Err(format!("--rank-by {}: use over-limit, node-minutes or over-target", args.rank_by));
    }
    let axes: Vec<(String, Vec<serde_json::Value>)> =
        args.sweep.iter().map(|s| parse_sweep(s)).collect::<Result<_, _>>()?;
    for (key, _) in &axes {
        check_sweep_key(key)?;
    }
    let total: usize = axes.iter().map(|a| a.1.len()).product();
    if total > 10_000 {
        return Err(format!("--sweep: {total} variants is too many; at most 10000"));
    }
    let base_json = serde_json::to_value(&base.spec).map_err(|e| e.to_string())?;
    // Every variant is built and checked before any runs: a bad value in the last one must not
    // cost the time of all the others first.
    let mut built = Vec::with_capacity(total);
    for n in 0..total {
        let mut spec_json = base_json.clone();
        let mut label = Vec::new();
        let mut k = n;
        for (key, values) in &axes {
            let v = &values[k % values.len()];
            k /= values.len();
            set_path(&mut spec_json, key, v.clone())?;
            label.push(format!("{key}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
        }
        let label = label.join(" ");
        let doc = serde_json::json!({"apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy", "metadata": {"name": "sweep"}, "spec": spec_json});
        let issues = crate::crd::schema_issues(&doc);
        if !issues.is_empty() {
            let list: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
            return Err(format!("--sweep variant {label}: {}", list.join("; ")));
        }
        let spec: crate::api::ScalePolicySpec = serde_json::from_value(spec_json)
            .map_err(|e| format!("--sweep variant {label}: {}", crate::crd::humanize_serde(&e.to_string())))?;
        let policy = crate::spec::policy_from_spec(&spec).map_err(|e| format!("--sweep variant {label}: {e}"))?;
        crate::sim::scenario::check_span(&base.trace, policy.interval)
            .map_err(|e| format!("--sweep variant {label}: {e}"))?;
        built.push((label, spec, policy));
    }
    let lower = crate::sim::baselines::oracle(base).summary.node_minutes;
    let mut progress = Progress::new(total, args.no_progress);
    let mut variants = Vec::with_capacity(total);
    for (n, (label, spec, policy)) in built.into_iter().enumerate() {
        let sc = Scenario { spec, policy, ..base.clone() };
        let mut run = crate::sim::run_policy(&sc);
        if lower > 0.0 {
            run.summary.vs_lower_bound = Some(run.summary.node_minutes / lower);
        }
        run.summary.algorithm = label.clone();
        variants.push(Variant { label, summary: run.summary });
        progress.tick(n + 1);
    }
    progress.done();
    let key = |s: &Summary| -> (f64, f64, f64) {
        match args.rank_by.as_str() {
            "node-minutes" => (s.node_minutes, s.minutes_over_limit, s.minutes_over_target),
            "over-target" => (s.minutes_over_target, s.node_minutes, 0.0),
            _ => (s.minutes_over_limit, s.node_minutes, s.minutes_over_target),
        }
    };
    variants.sort_by(|a, b| {
        let (x, y) = (key(&a.summary), key(&b.summary));
        x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)).then(x.2.total_cmp(&y.2)).then(a.label.cmp(&b.label))
    });
    let summaries: Vec<Summary> = variants.into_iter().map(|v| v.summary).collect();
    if args.json {
        let rep = Report { scenario: base.describe(), notes: base.notes.clone(), results: summaries };
        println!("{}", serde_json::to_string_pretty(&rep).map_err(|e| e.to_string())?);
    } else {
        println!("{}", base.describe());
        println!("{total} variants ranked by {}:\n", args.rank_by);
        print!("{}", report::table(&summaries));
    }
    Ok(())
}

/// A progress bar on stderr, shown only on a terminal (`simulate --sweep` and `tune`): a pipe, a
/// log file or a test sees no bar.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    pub(crate) fn new(total: usize, off: bool) -> Progress {
        Progress::drawn_if(total, !off && std::io::stderr().is_terminal())
    }

    /// A bar for `total` steps, drawn only if `terminal` (and there is more than one step).
    fn drawn_if(total: usize, terminal: bool) -> Progress {
        let total = u64::try_from(total).unwrap_or(u64::MAX);
        if !terminal || total <= 1 {
            return Progress { bar: indicatif::ProgressBar::hidden() };
        }
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
        // The template is fixed and valid; a failure would only cost the layout.
        let style = indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} {elapsed}")
            .map(|s| s.progress_chars("# "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        Progress { bar }
    }

    pub(crate) fn tick(&mut self, done: usize) {
        self.bar.set_position(u64::try_from(done).unwrap_or(u64::MAX));
    }

    /// Leave the bar as it ended (a search may stop before its budget) and move to a new line.
    pub(crate) fn done(&self) {
        self.bar.abandon();
    }
}

/// Scenario files in a folder, sorted.
pub fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot list scenarios: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

fn bench(args: &SimulateArgs) -> Result<(), String> {
    let core = crate::sim::bench::core_samples_per_second();
    let signal = crate::sim::bench::signal_samples_per_second();
    println!(
        "signal step: {:.1} million samples/s (smoothing and spike detection per sample, single core)",
        signal / 1e6
    );
    println!("decision core: {:.1} million samples/s (one sample and one full decision each, single core)", core / 1e6);
    let files = scenario_files(&args.scenarios_dir)?;
    let scenarios: Vec<Scenario> =
        files.iter().map(|f| ScenarioFile::load(f).and_then(Scenario::build)).collect::<Result<_, _>>()?;
    let samples: usize = scenarios.iter().map(|s| s.trace.points.len()).sum();
    let evaluations: usize = scenarios.iter().map(|s| s.evaluations()).sum();
    let started = Instant::now();
    let mut algorithms = 0;
    for sc in &scenarios {
        let runs = compare(sc);
        algorithms = runs.len();
        std::hint::black_box(&runs);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "whole bundled set: {} scenarios, {samples} samples, {evaluations} evaluations x {} algorithms in {secs:.2}s ({:.1} million samples/s through the closed loop)",
        scenarios.len(),
        algorithms,
        samples as f64 / secs / 1e6
    );
    // Each algorithm alone over the set, one core: the policy's is the replay speed `tune` is
    // bound by (the goal is 10 million evaluations per second per core), the others say what
    // the set's time is made of.
    let mut each = Vec::new();
    let mut policy_secs = 0.0;
    for (name, run) in crate::sim::ALGORITHMS {
        let started = Instant::now();
        for sc in &scenarios {
            std::hint::black_box(run(sc).summary.node_minutes);
        }
        let secs = started.elapsed().as_secs_f64();
        if name == "policy" {
            policy_secs = secs;
        } else {
            each.push(format!("{name} {secs:.2}s"));
        }
    }
    println!(
        "closed-loop replay: {evaluations} evaluations of the policy alone in {policy_secs:.2}s = {:.1} million evaluations/s (single core)",
        evaluations as f64 / policy_secs / 1e6
    );
    println!("baselines alone over the set (single core): {}", each.join(", "));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = crate::sim::tune::bench::measure(crate::sim::tune::bench::GOAL_SAMPLES, 8 * threads, 200, threads);
    println!(
        "tune: {} variants x {} samples (synthetic 60 days, 1-minute) in {:.2}s on {} threads = {:.1} million variant-samples/s; 10,000 variants x 86,400 samples would take {:.0}s replayed to the end",
        t.variants,
        t.samples,
        t.seconds,
        t.threads,
        t.rate() / 1e6,
        t.goal_seconds()
    );
    println!(
        "tune search: {} variants in {:.2}s, {} replayed to the end, the others stopped once the front beat them; 10,000 variants at that pace: {:.0}s",
        t.search_variants,
        t.search_seconds,
        t.search_to_end,
        t.goal_search_seconds()
    );
    let state = crate::sim::bench::state_bytes_after_long_run();
    println!("policy state after 1,000,000 samples: {state} bytes serialized (bounded by the windows, not the trace)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No bar is drawn where nobody watches: off a terminal (a pipe, a log, a test), with
    /// --no-progress, or for a single step.
    #[test]
    fn progress_bar_is_hidden_off_a_terminal_and_when_turned_off() {
        assert!(Progress::drawn_if(100, false).bar.is_hidden(), "not a terminal");
        assert!(Progress::drawn_if(1, true).bar.is_hidden(), "one step");
        assert!(Progress::new(100, true).bar.is_hidden(), "--no-progress");
        let mut p = Progress::drawn_if(100, false);
        p.tick(40);
        assert_eq!(p.bar.position(), 40, "a hidden bar still counts");
        p.done();
    }

    /// A mistyped sweep key is answered with the nearest policy field (any list index), and a
    /// key near none gets no guess.
    #[test]
    fn a_mistyped_sweep_key_is_answered_with_the_nearest_field() {
        let e = check_sweep_key("scaleIn.cooldwn").expect_err("refused");
        assert!(e.contains("Did you mean scaleIn.cooldown?"), "{e}");
        let e = check_sweep_key("metrics[2].Smoothing.windw").expect_err("refused");
        assert!(e.contains("Did you mean metrics[0].smoothing.window?"), "{e}");
        let e = check_sweep_key("zzzzzzzzzzzz").expect_err("refused");
        assert!(!e.contains("Did you mean"), "{e}");
        assert_eq!(check_sweep_key("metrics[1].smoothing.window"), Ok(()));
    }
}
