//! A simulation scenario: a trace, a policy, and the model of the world (sizes and delays), from a
//! small YAML file, from flags, or from the embedded default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::ScalePolicySpec;
use crate::core::MetricKind;
use crate::core::{Dur, Policy};
use crate::sim::model::Model;
use crate::sim::trace::{Trace, TraceError};

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
}

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
        let (spec, _) = super::replay_policy(&sp.spec, file.metric.as_deref())?;
        let policy = crate::spec::policy_from_spec(&spec).map_err(|e| format!("{policy_name}: {e}"))?;
        let metric = &policy.metrics[0];
        let mut notes = Vec::new();
        if sp.spec.metrics.len() > 1 {
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
        check_span(&trace, policy.interval)?;
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
        let name = file.name.clone().unwrap_or_else(|| sp.metadata.name.clone().unwrap_or_else(|| "policy".into()));
        Ok(Scenario {
            name,
            trace,
            spec,
            policy,
            model: Model { recorded_size, start_size, provision_delay, metric_delay },
            limit,
            notes,
        })
    }

    /// A sample older than this at an evaluation means the trace has a gap there.
    pub fn gap(&self) -> Dur {
        Dur(self.trace.interval().0 * 3 / 2)
    }

    /// Number of evaluations the replay makes.
    pub fn evaluations(&self) -> usize {
        let (a, b) = self.trace.span();
        ((b - a).0 / self.policy.interval.0.max(1)) as usize + 1
    }

    /// One line describing the model, for reports.
    pub fn describe(&self) -> String {
        let (a, b) = self.trace.span();
        format!(
            "{} ({} samples, {} to {}), recorded on {} nodes, start {} nodes, provisioning {}, metric delay {}, target {}, limit {}",
            self.trace.name,
            self.trace.points.len(),
            a,
            b,
            self.model.recorded_size,
            self.model.start_size,
            self.model.provision_delay,
            self.model.metric_delay,
            self.policy.metrics[0].target,
            self.limit
        )
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
