//! A simulation scenario: a trace, a policy, and the model of the world (sizes and delays), from a
//! small YAML file, from flags, or from the embedded default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::ScalePolicySpec;
use crate::core::MetricKind;
use crate::core::units::Unit;
use crate::core::{Dur, Policy};
use crate::sim::model::{Faults, Model, Steer, Storage};
use crate::sim::trace::{Trace, TraceError, TraceScale};

/// A scenario file (`simulations/scenarios/*.yaml`). Paths are relative to the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioFile {
    /// Name for reports; defaults to the file name.
    pub name: Option<String>,
    /// Trace file (CSV or ListTimeSeries JSON).
    pub trace: Option<PathBuf>,
    /// ScalePolicy YAML.
    pub policy: Option<PathBuf>,
    /// Size while the trace was recorded.
    pub recorded_size: Option<u32>,
    /// Size at the start of the replay.
    pub start_size: Option<u32>,
    /// Time before added capacity serves.
    pub provision_delay: Option<String>,
    /// Time before a sample is visible.
    pub metric_delay: Option<String>,
    /// Per-node limit for "minutes over limit"; default target × 1.25.
    pub limit: Option<f64>,
    /// Which policy metric the trace feeds; default the first.
    pub metric: Option<String>,
    /// How long a resize operation runs (the target is busy and refuses another meanwhile);
    /// `0s` answers at once. Default: the target kind's.
    pub resize_time: Option<String>,
    /// The target takes only multiples of this size, as the live target says when observed: a
    /// regional node pool's zone count, 2 for a Bigtable cluster with 2x node scaling. Default 1.
    pub size_step: Option<u32>,
    /// The data behind the storage floor: `off`, `trace` (the trace's `storage` column) or a
    /// utilization measured on `recordedSize` nodes. Default: `trace` when the target kind has a
    /// floor and the trace the column, else off.
    pub storage: Option<StorageSetting>,
    /// Share of samples never written, 0 to 1. Default [`DEFAULT_GAP_RATE`].
    pub gap_rate: Option<f64>,
    /// Share of metric fetches answered with partial data, 0 to 1. Default [`DEFAULT_PARTIAL_RATE`].
    pub partial_rate: Option<f64>,
    /// Share of samples visible only `lateBy` after the metric delay, 0 to 1. Default
    /// [`DEFAULT_LATE_RATE`].
    pub late_rate: Option<f64>,
    /// How much later a late sample is visible. Default [`DEFAULT_LATE_BY`].
    pub late_by: Option<String>,
    /// Seed of the faults: which samples and fetches they hit. Default 1.
    pub seed: Option<u64>,
    /// Further policy metrics the trace feeds, each from a column named in its CSV header:
    /// `{metric name: column}` (e.g. a guard `hottest-node: cpu_hottest`). The replayed metric
    /// (`metric`) is fed by the first column; unmapped metrics are left out.
    pub columns: Option<std::collections::BTreeMap<String, String>>,
    /// A replicated Bigtable instance (target `bigtableInstance`, sized as one): the trace
    /// columns of its clusters, each that cluster's value of the replayed metric as recorded on
    /// `recordedSize` nodes. Each cluster is a fleet of its own, resized with the others; the
    /// policy sees the hottest cluster's value each minute.
    pub clusters: Option<Vec<String>>,
    /// The unit the trace's values are written in, for metrics whose unit is a fraction:
    /// `percent` (divided by 100 when read) or `fraction` (replayed as written). Default: what the
    /// trace's own `# unit:` line says; a trace that says nothing must stay within 0..1 where it
    /// feeds a fraction metric.
    pub trace_scale: Option<TraceScale>,
    /// With a policy that steers its target's built-in autoscaler (`steerAutoscaler: true`): the
    /// per-node level the autoscaler holds (its CPU target), in the replayed metric's units.
    /// Default: the policy's own target.
    pub autoscaler_target: Option<f64>,
    /// With such a policy: the autoscaler's maximum at the start. Default the policy's `maxSize`.
    pub autoscaler_max: Option<u32>,
}

/// The `storage` setting of a scenario: a word or a utilization.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StorageSetting {
    /// A storage utilization (0..1) measured on `recordedSize` nodes, constant over the replay.
    Utilization(f64),
    /// `off` or `trace`.
    Word(String),
}

impl std::str::FromStr for StorageSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<StorageSetting, String> {
        Ok(match s.trim().parse::<f64>() {
            Ok(u) => StorageSetting::Utilization(u),
            Err(_) => StorageSetting::Word(s.trim().to_string()),
        })
    }
}

/// Cloud Monitoring, as the simulator assumes it misbehaves unless told otherwise: one sample in
/// 200 never written.
pub const DEFAULT_GAP_RATE: f64 = 0.005;
/// One metric answer in 500 partial.
pub const DEFAULT_PARTIAL_RATE: f64 = 0.002;
/// One sample in 50 later than the stated latency...
pub const DEFAULT_LATE_RATE: f64 = 0.02;
/// ...by 3 more minutes.
pub const DEFAULT_LATE_BY: &str = "3m";

impl ScenarioFile {
    /// Read a scenario file; its relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<ScenarioFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let mut f: ScenarioFile = serde_saphyr::from_str(&text).map_err(|e| {
            let (location, message) = crate::crd::yaml_problem(&e, &text);
            let at = location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default();
            format!("{}{at}: not a valid scenario: {message}", path.display())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        f.trace = f.trace.map(|p| base.join(p));
        f.policy = f.policy.map(|p| base.join(p));
        if f.name.is_none() {
            f.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        Ok(f)
    }

    /// Values set here win over `base`.
    pub fn over(self, base: ScenarioFile) -> ScenarioFile {
        ScenarioFile {
            name: self.name.or(base.name),
            trace: self.trace.or(base.trace),
            policy: self.policy.or(base.policy),
            recorded_size: self.recorded_size.or(base.recorded_size),
            start_size: self.start_size.or(base.start_size),
            provision_delay: self.provision_delay.or(base.provision_delay),
            metric_delay: self.metric_delay.or(base.metric_delay),
            limit: self.limit.or(base.limit),
            metric: self.metric.or(base.metric),
            resize_time: self.resize_time.or(base.resize_time),
            size_step: self.size_step.or(base.size_step),
            storage: self.storage.or(base.storage),
            gap_rate: self.gap_rate.or(base.gap_rate),
            partial_rate: self.partial_rate.or(base.partial_rate),
            late_rate: self.late_rate.or(base.late_rate),
            late_by: self.late_by.or(base.late_by),
            seed: self.seed.or(base.seed),
            columns: self.columns.or(base.columns),
            clusters: self.clusters.or(base.clusters),
            trace_scale: self.trace_scale.or(base.trace_scale),
            autoscaler_target: self.autoscaler_target.or(base.autoscaler_target),
            autoscaler_max: self.autoscaler_max.or(base.autoscaler_max),
        }
    }
}

/// A ready-to-run scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name for reports.
    pub name: String,
    /// The recorded metric.
    pub trace: Trace,
    /// The policy spec, reduced to the replayed metric, mode Enforce.
    pub spec: ScalePolicySpec,
    /// The validated policy.
    pub policy: Policy,
    /// The world.
    pub model: Model,
    /// Per-node limit.
    pub limit: f64,
    /// Notes for the reader (assumptions, likely mistakes).
    pub notes: Vec<String>,
    /// The trace column of each further metric: `feeds[i]` feeds `policy.metrics[i + 1]`.
    pub feeds: Vec<String>,
    /// A replicated instance's clusters, by trace column (empty: one target).
    pub clusters: Vec<String>,
    /// For an instance sized per cluster (`sizing: perCluster`): the fraction of the largest
    /// cluster's decision no cluster goes below. `None`: sized as one.
    pub per_cluster: Option<f64>,
}

/// Most evaluations one replay may make (19 years at a 1-minute interval). Every evaluation is a
/// row per algorithm, so a trace whose span needs more, nearly always one row with a wrong year,
/// is refused with the gap to fix rather than replayed for hours into gigabytes of rows.
pub const MAX_EVALUATIONS: u64 = 10_000_000;

/// Bigtable and most Google Cloud metrics: "sampled every 60 seconds; after sampling, data is not
/// visible for up to 240 seconds".
pub const DEFAULT_METRIC_DELAY: &str = "4m";

/// The embedded default: a bundled trace and example policy, so `ebbflow simulate` runs anywhere.
pub const DEFAULT_TRACE_NAME: &str = "ec2_cpu_utilization_ac20cd.csv";
const DEFAULT_TRACE: &str = include_str!("../../simulations/traces/ec2_cpu_utilization_ac20cd.csv");
const DEFAULT_POLICY: &str = include_str!("../../simulations/policies/bigtable-cpu.yaml");

impl Scenario {
    /// Build a scenario from a (merged) scenario file. Without a trace and policy, the embedded
    /// default is used.
    pub fn build(file: ScenarioFile) -> Result<Scenario, String> {
        let (trace, policy_text, policy_name) = match (&file.trace, &file.policy) {
            (None, None) => (
                Trace::parse(DEFAULT_TRACE_NAME, DEFAULT_TRACE).map_err(|e| e.to_string())?,
                DEFAULT_POLICY.to_string(),
                "simulations/policies/bigtable-cpu.yaml (embedded)".to_string(),
            ),
            (Some(t), Some(p)) => (
                Trace::load(t).map_err(|e: TraceError| e.to_string())?,
                std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?,
                p.display().to_string(),
            ),
            (Some(_), None) => {
                return Err("--trace needs --policy FILE (a ScalePolicy YAML) to replay it through".into());
            }
            (None, Some(_)) => {
                return Err("--policy needs --trace FILE (a CSV or ListTimeSeries JSON recording)".into());
            }
        };
        let (sp, _) = crate::crd::check_policy(&policy_name, &policy_text).map_err(|e| e.to_string())?;
        let (mut spec, primary) = super::replay_policy(&sp.spec, file.metric.as_deref())?;
        let feeds = feeds(&sp.spec, primary, file.columns.as_ref(), &trace, &mut spec)?;
        // A left-out target the kind recommends is replayed at its recommendation from the spec
        // alone; the controller reads the target (a Spanner instance's configuration).
        let recommended = crate::spec::fill_targets(&mut spec, None);
        let clusters = clusters(&spec, file.clusters.as_deref(), &trace)?;
        let policy = crate::spec::policy_from_spec(&spec).map_err(|e| format!("{policy_name}: {e}"))?;
        let metric = &policy.metrics[0];
        let mut notes = Vec::new();
        for i in recommended {
            let m = &spec.metrics[i];
            notes.push(format!(
                "metric \"{}\" has no target: replayed at {}, the level its target kind recommends from the spec alone (a Spanner instance's high-priority CPU: 0.65 regional; the controller holds a multi-region instance at 0.45, which `target: 0.45` replays)",
                m.name,
                m.target_value()
            ));
        }
        if sp.spec.metrics.len() > spec.metrics.len() {
            notes.push(format!("the trace feeds metric \"{}\"; the policy's other metrics are left out", metric.name));
        }

        let recorded_size = match (metric.kind, file.recorded_size) {
            (_, Some(0)) => return Err("--recorded-size must be at least 1".into()),
            (_, Some(n)) => n,
            (MetricKind::PerNode, None) => {
                return Err(format!(
                    "metric \"{}\" is perNode: pass --recorded-size N, the number of nodes the trace was recorded on",
                    metric.name
                ));
            }
            (MetricKind::Total, None) => 1,
        };
        let start_size = match file.start_size {
            Some(0) => return Err("--start-size must be at least 1".into()),
            Some(n) => n,
            None if metric.kind == MetricKind::PerNode => recorded_size,
            None => policy.min_size,
        };
        // The kind's own rule (Spanner's processing-unit ladder) unless --size-step says which
        // multiples the target takes (a node pool's zones, Bigtable's 2x node scaling).
        let sizes = match file.size_step {
            Some(0) => return Err("--size-step must be at least 1 (1: any size)".into()),
            Some(1) => crate::core::SizeRule::Any,
            Some(k) => crate::core::SizeRule::Multiple(k),
            None => spec.target.kind().behaviour().sizes,
        };
        if !sizes.allows(start_size) {
            let why = match file.size_step {
                Some(k) => format!("multiples of --size-step {k}"),
                None => format!("{} ({})", sizes.describe(), spec.target.kind().field()),
            };
            return Err(format!(
                "--start-size {start_size}: the target takes {why} only; start at {}",
                sizes.up(start_size).unwrap_or(start_size)
            ));
        }
        let dur = |flag: &str, text: &Option<String>, default: Dur| -> Result<Dur, String> {
            match text {
                // The value may come from a scenario file: quote it short.
                Some(t) => Dur::parse(t).map_err(|e| format!("--{flag}: {}", crate::excerpt::shorten_quotes(&e))),
                None => Ok(default),
            }
        };
        let provision_delay = dur("provision-delay", &file.provision_delay, policy.warmup)?;
        let metric_delay =
            dur("metric-delay", &file.metric_delay, Dur::parse(DEFAULT_METRIC_DELAY).unwrap_or(Dur::ZERO))?;
        // The policy's own limit (`headroom.limit`, or 1.25 × target), so a replay counts overload
        // where the policy sizes against it.
        let limit = file.limit.unwrap_or(metric.limit);
        if !(limit.is_finite() && limit > 0.0) {
            return Err(format!("--limit must be a number greater than 0 (got {limit})"));
        }
        if let Some(problem) = file
            .limit
            .zip(crate::spec::metric_unit(&spec.metrics[0]))
            .and_then(|(l, k)| k.level_problem(l, metric.kind, policy.max_size))
        {
            return Err(format!("--limit {problem}"));
        }
        check_span(&trace, policy.interval)?;
        let mut trace = trace;
        trace_units(&mut trace, file.trace_scale, &spec, &feeds, &clusters)?;
        // The baselines read the replayed metric from the trace's first column: for an instance,
        // what its query (REDUCE_MAX) reports, the hottest cluster each minute, as the policy
        // sees it when sized as one.
        if !clusters.is_empty() {
            let hot = hottest(&trace, &clusters);
            // The first column keeps answering under its own name.
            let first = std::mem::replace(&mut trace.points, hot);
            if let Some(name) = trace.value_name.take() {
                trace.columns.push(crate::sim::trace::Column { name, points: first });
            }
        }
        let per_cluster = match &spec.target {
            crate::api::TargetRef::BigtableInstance(i) if !clusters.is_empty() => i.per_cluster_floor(),
            _ => None,
        };
        if trace.missing() > 0 {
            notes.push(format!(
                "{} samples of the trace are not numbers (NaN, Infinity or empty) and count as missing data",
                trace.missing()
            ));
        }
        let interval = trace.interval();
        if metric.max_age < interval + metric_delay {
            notes.push(format!(
                "maxDataAge {} is shorter than the trace's sample interval {} plus the metric delay {}: the policy will often see stale data and hold",
                metric.max_age, interval, metric_delay
            ));
        }
        let behaviour = spec.target.kind().behaviour();
        let resize_time = dur("resize-time", &file.resize_time, behaviour.operation_time)?;
        let storage = storage(&file, &trace, behaviour.storage_target, start_size, &mut notes)?;
        let rate = |flag: &str, v: Option<f64>, default: f64| -> Result<f64, String> {
            match v {
                Some(r) if !(0.0..=1.0).contains(&r) => {
                    Err(format!("--{flag}: must be a share between 0 and 1, e.g. 0.01 (got {r})"))
                }
                Some(r) => Ok(r),
                None => Ok(default),
            }
        };
        let faults = Faults {
            gap_rate: rate("gap-rate", file.gap_rate, DEFAULT_GAP_RATE)?,
            partial_rate: rate("partial-rate", file.partial_rate, DEFAULT_PARTIAL_RATE)?,
            late_rate: rate("late-rate", file.late_rate, DEFAULT_LATE_RATE)?,
            late_by: dur("late-by", &file.late_by, Dur::parse(DEFAULT_LATE_BY).unwrap_or(Dur::ZERO))?,
            seed: file.seed.unwrap_or(1),
        };
        let steer = match (spec.target.kind().steered_sizes(), file.autoscaler_target, file.autoscaler_max) {
            (Some(bound_sizes), target, max) => {
                if !clusters.is_empty() {
                    return Err(
                        "a policy that steers a built-in autoscaler is replayed on one target, not clusters".into()
                    );
                }
                let target = target.unwrap_or(metric.target);
                if !(target.is_finite() && target > 0.0) {
                    return Err(format!("autoscalerTarget must be a number greater than 0 (got {target})"));
                }
                let min = bound_sizes.up(policy.min_size).unwrap_or(policy.min_size);
                // Both services keep the maximum at most 10 x the minimum.
                let max = max.unwrap_or(policy.max_size.min(min.saturating_mul(10))).max(min);
                if max > min.saturating_mul(10) {
                    return Err(format!(
                        "autoscalerMax {max} is more than 10 x the autoscaler's minimum {min} (the policy's minSize), which Bigtable and Spanner refuse; lower it to {} or raise minSize",
                        min.saturating_mul(10)
                    ));
                }
                Some(Steer { target, min, max, bound_sizes })
            }
            (None, None, None) => None,
            (None, _, _) => {
                return Err(format!(
                    "autoscalerTarget and autoscalerMax describe a built-in autoscaler the policy steers; {} does not set steerAutoscaler: true",
                    spec.target.kind().field()
                ));
            }
        };
        if steer.is_some() {
            notes.push(
                "the policy steers the target's built-in autoscaler: its size is the autoscaler's minimum, and the \
                 autoscaler (modelled: holds its target within its limits, adds at once, removes a tenth every 10 \
                 minutes) sets the live size that serves and is billed; the baselines size the target directly"
                    .to_string(),
            );
        }
        let name = file.name.clone().unwrap_or_else(|| sp.metadata.name.clone().unwrap_or_else(|| "policy".into()));
        // The replay skips what cannot change inside a long silence of the trace; how long after a
        // sample the world can still act on it is this model's to say.
        trace.set_world_lag(metric_delay + faults.late_by + resize_time + provision_delay);
        let skipped = super::fast_forward(&trace, &policy);
        if let Some(longest) = skipped.iter().max_by_key(|(a, b)| *b - *a) {
            let total = skipped.iter().fold(Dur::ZERO, |sum, (a, b)| sum + (*b - *a));
            let known = if policy.known.is_empty() { "" } else { "; schedules and overrides are not replayed there" };
            notes.push(format!(
                "the trace has long stretches without samples: the replay skips {} of them (the longest from {} \
                 to {}), holding the size as a controller holds on missing data{known}",
                span_text(crate::core::Ts(0), crate::core::Ts(total.0)),
                longest.0,
                longest.1,
            ));
        }
        Ok(Scenario {
            name,
            trace,
            spec,
            policy,
            model: Model {
                recorded_size,
                start_size,
                provision_delay,
                metric_delay,
                resize_time,
                new_size_while_busy: behaviour.new_size_while_busy,
                storage,
                faults,
                sizes,
                steer,
            },
            limit,
            notes,
            feeds,
            clusters,
            per_cluster,
        })
    }

    /// The size the whole target starts at: the start size, in each cluster of an instance (a
    /// replay of an instance reports every cluster's nodes together).
    pub fn start_total(&self) -> u32 {
        self.model.start_size.saturating_mul(u32::try_from(self.clusters.len()).unwrap_or(u32::MAX).max(1))
    }

    /// A sample older than this at an evaluation means the trace has a gap there.
    pub fn gap(&self) -> Dur {
        Dur(self.trace.interval().0 * 3 / 2)
    }

    /// Number of evaluations the replay makes: one per policy interval across the trace, less
    /// those skipped inside long stretches without samples (the replay's fast-forward).
    pub fn evaluations(&self) -> usize {
        super::grid(&self.trace, &self.policy).count()
    }

    /// One line describing the model, for reports.
    pub fn describe(&self) -> String {
        let (a, b) = self.trace.span();
        let m = &self.model;
        let unit = self.spec.target.kind().size_unit();
        let storage = match m.storage {
            Storage::Off => "no storage floor".to_string(),
            Storage::Constant { data_nodes, target } => {
                format!("storage {data_nodes:.2} {unit} of data at storage target {target}")
            }
            Storage::Trace { recorded_on, target } => {
                format!("storage from the trace (recorded on {recorded_on} {unit}) at storage target {target}")
            }
        };
        let f = &m.faults;
        let faults = if f.any() {
            format!(
                "samples missing {}%, late {}% by {}, partial answers {}% (seed {})",
                f.gap_rate * 100.0,
                f.late_rate * 100.0,
                f.late_by,
                f.partial_rate * 100.0,
                f.seed
            )
        } else {
            "no metric faults".to_string()
        };
        let scale = match self.trace.read_as() {
            Some(TraceScale::Percent) => " in percent, read as fractions",
            _ => "",
        };
        let mut step = match m.sizes {
            crate::core::SizeRule::Any => String::new(),
            rule => format!(" ({})", rule.describe()),
        };
        if !self.clusters.is_empty() {
            let how = match self.per_cluster {
                Some(f) => format!("each sized on its own, at least {f} of the largest"),
                None => "sized as one".to_string(),
            };
            step.push_str(&format!(" in each of {} clusters ({how}; sizes summed)", self.clusters.len()));
        }
        format!(
            "{} ({} samples{scale}, {} to {}), recorded on {} {unit}, start {} {unit}{step}, resize operations {}, provisioning {} after, metric delay {}, {storage}, {faults}, target {}, limit {}",
            self.trace.name,
            self.trace.points.len(),
            a,
            b,
            m.recorded_size,
            m.start_size,
            m.resize_time,
            m.provision_delay,
            m.metric_delay,
            self.policy.metrics[0].target,
            self.limit
        )
    }

    /// The fewest nodes the target's stored data needs at `t` (0 without a storage floor): the
    /// floor the baselines keep to, known at once.
    pub fn storage_floor_at(&self, t: crate::core::Ts) -> u32 {
        match self.model.storage.floor_at(&self.trace, t) {
            0 => 0,
            // Rounded up to a size the target takes, as the policy's floor is.
            n => self.model.sizes.up(n).unwrap_or(n),
        }
    }
}

/// Settle the unit of the trace's values against the units of the metrics it feeds (the replayed
/// metric `spec.metrics[0]`, from the first column or each of `clusters`; `spec.metrics[i + 1]`
/// from column `feeds[i]`), and convert a percent trace to fractions. A trace and a policy in
/// different units are refused with the fix, never replayed: a percent trace read as fractions
/// pins every algorithm at maxSize, a fraction trace read as percent at minSize.
fn trace_units(
    trace: &mut Trace,
    declared: Option<TraceScale>,
    spec: &ScalePolicySpec,
    feeds: &[String],
    clusters: &[String],
) -> Result<(), String> {
    let scale = match (declared, trace.unit_line()) {
        (Some(d), Some((own, line))) if d != own => {
            return Err(format!(
                "traceScale (--trace-scale) {}: {} says \"# unit: {}\" on line {line}; the two disagree, keep the \
                 right one",
                d.word(),
                trace.name,
                own.word()
            ));
        }
        (d, own) => d.or(own.map(|o| o.0)),
    };
    // Who said the unit, for the fix: the scenario (or flag), or the trace's own line.
    let (said, undo, say_fraction) = match (declared, trace.unit_line()) {
        (Some(d), _) => {
            (format!("traceScale (--trace-scale) {}", d.word()), "remove traceScale", "set traceScale: fraction")
        }
        (None, Some((own, line))) => (
            format!("{}'s \"# unit: {}\" (line {line})", trace.name, own.word()),
            "remove that line",
            "write \"# unit: fraction\" there",
        ),
        (None, None) => (String::new(), "", ""),
    };
    let number = crate::core::units::number;
    for (i, m) in spec.metrics.iter().enumerate() {
        // The columns that feed it: the replayed metric the first column (or each cluster's),
        // a further metric its own.
        let columns: Vec<&str> = match i {
            0 if !clusters.is_empty() => clusters.iter().map(String::as_str).collect(),
            0 => Vec::new(),
            _ => feeds.get(i - 1).map(String::as_str).into_iter().collect(),
        };
        let series: Vec<&[(crate::core::Ts, f64)]> = if columns.is_empty() {
            vec![trace.points.as_slice()]
        } else {
            columns.iter().filter_map(|c| trace.column(c)).collect()
        };
        let peak = series.into_iter().filter_map(Trace::peak).reduce(f64::max);
        let known = crate::spec::metric_unit(m);
        let what = match known {
            Some(k) => format!("metric \"{}\" reads {}, {}", m.name, k.metric_type, k.unit.describe()),
            None => format!("metric \"{}\"", m.name),
        };
        match (scale, known.map(|k| k.unit)) {
            (Some(_), Some(Unit::Count)) => {
                return Err(format!("{said}: {what}, replayed as recorded; {undo}"));
            }
            (Some(TraceScale::Percent), Some(Unit::Fraction)) => {
                // Fractions read as percent shrink the load a hundredfold: the policy walks to
                // minSize. A percent recording of load never above 1 % is no load at all.
                if let Some(peak) = peak.filter(|p| *p <= 1.0) {
                    return Err(format!(
                        "{said}: {}'s values never pass 1 (the largest is {}), which reads as fractions, and \
                         {what}: if they are fractions, {say_fraction} (divided by 100 they would be a hundredth \
                         of the load)",
                        trace.name,
                        number(peak)
                    ));
                }
            }
            (Some(TraceScale::Percent), None) => {
                // The conversion makes fractions: a policy whose levels read as percent would then
                // see a hundredth of its load.
                let levels = [m.target, m.headroom.limit];
                if let Some(level) = levels.into_iter().flatten().find(|l| *l > 1.0) {
                    return Err(format!(
                        "{said} divides {} by 100 into fractions, but {what} is held at {} (a percent): {} for its \
                         levels, or {undo} to replay the percent values as they are",
                        trace.name,
                        number(level),
                        crate::core::units::percent_fix(level)
                    ));
                }
            }
            (None, Some(Unit::Fraction)) => {
                if let Some(peak) = peak.filter(|p| *p > 1.0) {
                    return Err(format!(
                        "{}: values reach {}, but {what}, and the trace does not say its unit: if it is in percent, \
                         set traceScale: percent in the scenario (or --trace-scale percent) to divide it by 100; if \
                         it holds fractions (load beyond the recorded nodes), set traceScale: fraction",
                        trace.name,
                        number(peak)
                    ));
                }
            }
            _ => {}
        }
    }
    match scale {
        Some(TraceScale::Percent) => trace.percent_to_fractions(),
        Some(TraceScale::Fraction) => trace.set_read_as(TraceScale::Fraction),
        None => {}
    }
    Ok(())
}

/// Add the metrics `columns:` maps to trace columns to the replayed spec (after the replayed
/// metric, in spec order); returns the column of each. Every name must exist, and each fed
/// metric must have a query of its own (the simulated world tells metrics apart by query).
fn feeds(
    full: &ScalePolicySpec,
    primary: usize,
    columns: Option<&std::collections::BTreeMap<String, String>>,
    trace: &Trace,
    spec: &mut ScalePolicySpec,
) -> Result<Vec<String>, String> {
    let Some(columns) = columns.filter(|c| !c.is_empty()) else { return Ok(Vec::new()) };
    let names: Vec<&str> = full.metrics.iter().map(|m| m.name.as_str()).collect();
    for (metric, column) in columns {
        let Some(i) = full.metrics.iter().position(|m| &m.name == metric) else {
            return Err(format!(
                "columns.{metric}: the policy has no metric {metric:?} (it has: {}); map a metric by its name",
                names.join(", ")
            ));
        };
        if i == primary {
            return Err(format!(
                "columns.{metric}: {metric:?} is the replayed metric, fed by the trace's first column; map only the others (or choose another with metric:)"
            ));
        }
        if trace.column(column).is_none() {
            let have = trace.column_names();
            return Err(format!(
                "columns.{metric}: {} has no column {column:?} (its header names: {}); name a column of its CSV header",
                trace.name,
                if have.is_empty() { "none, it has no header".to_string() } else { have.join(", ") }
            ));
        }
    }
    let mut out = Vec::new();
    for (i, m) in full.metrics.iter().enumerate() {
        let Some(column) = columns.get(&m.name).filter(|_| i != primary) else { continue };
        let query = crate::spec::metric_query(m, "simulated", "simulated");
        if let Some(same) =
            spec.metrics.iter().find(|o| crate::spec::metric_query(o, "simulated", "simulated") == query)
        {
            return Err(format!(
                "columns.{}: metric {:?} has the same query as {:?}; the simulator tells metrics apart by their query, give each its own filter",
                m.name, m.name, same.name
            ));
        }
        spec.metrics.push(m.clone());
        out.push(column.clone());
    }
    Ok(out)
}

/// Each minute of the first cluster's column, the highest value any cluster recorded at that
/// minute: the instance query's `REDUCE_MAX`, as `sim::model::Sim` answers it.
fn hottest(trace: &Trace, clusters: &[String]) -> Vec<(crate::core::Ts, f64)> {
    let columns: Vec<&[(crate::core::Ts, f64)]> = clusters.iter().filter_map(|c| trace.column(c)).collect();
    let Some(first) = columns.first() else { return trace.points.clone() };
    first
        .iter()
        .map(|&(at, _)| {
            let value = columns
                .iter()
                .filter_map(|col| col.binary_search_by(|p| p.0.cmp(&at)).ok().map(|i| col[i].1))
                .fold(f64::NAN, f64::max);
            (at, value)
        })
        .collect()
}

/// The clusters of a replicated instance, by trace column: only for a `bigtableInstance` target,
/// each a column of the trace.
fn clusters(spec: &ScalePolicySpec, clusters: Option<&[String]>, trace: &Trace) -> Result<Vec<String>, String> {
    let Some(clusters) = clusters.filter(|c| !c.is_empty()) else { return Ok(Vec::new()) };
    let kind = spec.target.kind().field();
    if kind != "bigtableInstance" {
        return Err(format!(
            "clusters: the policy's target is {kind}; clusters model the clusters of a replicated instance (target.bigtableInstance); remove clusters"
        ));
    }
    for (i, c) in clusters.iter().enumerate() {
        if trace.column(c).is_none() {
            let have = trace.column_names();
            return Err(format!(
                "clusters[{i}]: {} has no column {c:?} (its header names: {}); name a column of its CSV header",
                trace.name,
                if have.is_empty() { "none, it has no header".to_string() } else { have.join(", ") }
            ));
        }
        if clusters[..i].contains(c) {
            return Err(format!("clusters[{i}]: {c:?} is listed twice; list each cluster's column once"));
        }
    }
    Ok(clusters.to_vec())
}

/// The storage model a scenario asks for, against what the target kind and the trace offer.
fn storage(
    file: &ScenarioFile,
    trace: &Trace,
    kind_target: Option<f64>,
    start_size: u32,
    notes: &mut Vec<String>,
) -> Result<Storage, String> {
    // A total metric's scenario may not say what it was recorded on: the storage utilization
    // was then measured on the start size.
    let recorded_on = file.recorded_size.unwrap_or(start_size).max(1);
    let has_column = !trace.storage.is_empty();
    let setting = match &file.storage {
        Some(s) => s.clone(),
        None if kind_target.is_some() && has_column => StorageSetting::Word("trace".into()),
        None => {
            if kind_target.is_some() {
                notes.push(
                    "the target has a storage floor, but the scenario gives no storage data (storage: UTILIZATION, or a \"storage\" column in the trace): the floor is not simulated".into(),
                );
            }
            return Ok(Storage::Off);
        }
    };
    let target = |what: &str| {
        kind_target.ok_or_else(|| {
            format!(
                "--storage {what}: the policy's target kind has no storage floor; remove storage or write storage: off"
            )
        })
    };
    match setting {
        StorageSetting::Word(w) if w == "off" => Ok(Storage::Off),
        StorageSetting::Word(w) if w == "trace" => {
            let target = target("trace")?;
            if !has_column {
                return Err(format!(
                    "--storage trace: {} has no \"storage\" column; add one (header timestamp,value,storage) or give a utilization such as storage: 0.2",
                    trace.name
                ));
            }
            Ok(Storage::Trace { recorded_on, target })
        }
        StorageSetting::Word(w) => Err(format!(
            "--storage {}: use off, trace, or a storage utilization between 0 and 1 measured on recordedSize nodes",
            crate::excerpt::excerpt(&w)
        )),
        StorageSetting::Utilization(u) if (0.0..=1.0).contains(&u) => {
            let target = target(&u.to_string())?;
            Ok(Storage::Constant { data_nodes: u * f64::from(recorded_on), target })
        }
        StorageSetting::Utilization(u) => {
            Err(format!("--storage {u}: a storage utilization is a fraction between 0 and 1 (e.g. 0.2)"))
        }
    }
}

/// Refuse a trace whose span needs more than [`MAX_EVALUATIONS`] evaluations at `interval`,
/// naming the longest gap: that is where the wrong row almost always is.
pub(crate) fn check_span(trace: &Trace, interval: Dur) -> Result<(), String> {
    let (a, b) = trace.span();
    let step = interval.0.max(1) as i128;
    let evaluations = (b.0 as i128 - a.0 as i128) / step + 1;
    if evaluations <= MAX_EVALUATIONS as i128 {
        return Ok(());
    }
    let (gap_from, gap_to) = trace
        .points
        .windows(2)
        .map(|w| (w[0].0, w[1].0))
        .max_by_key(|(x, y)| y.0 as i128 - x.0 as i128)
        .unwrap_or((a, b));
    Err(format!(
        "{}: the trace spans {} ({a} to {b}); at the policy's {interval} interval that is {} evaluations, more than the {} limit. \
         The longest gap is {} ({gap_from} to {gap_to}): fix or remove the rows around it, or split the trace into shorter files",
        trace.name,
        span_text(a, b),
        thousands(evaluations),
        thousands(MAX_EVALUATIONS as i128),
        span_text(gap_from, gap_to),
    ))
}

/// A time span in the largest unit that reads well: "9997 years", "40 days", "5 hours".
fn span_text(a: crate::core::Ts, b: crate::core::Ts) -> String {
    let ms = b.0 as i128 - a.0 as i128;
    let hours = ms / 3_600_000;
    let days = hours / 24;
    if days >= 730 {
        format!("{} years", days * 100 / 36_525)
    } else if days >= 2 {
        format!("{days} days")
    } else {
        format!("{hours} hours")
    }
}

/// `5256000001` as `5,256,000,001`.
fn thousands(n: i128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out
}
