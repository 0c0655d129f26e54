//! The validated, domain form of a `ScalePolicySpec`.
//!
//! Every rule about what a valid spec is lives in [`Policy::from_spec`]: the CRD's CEL rules catch
//! the same mistakes at `kubectl apply` time, and this catches them wherever a spec enters without
//! an API server (simulate, standalone mode, `ebbflow validate`). All problems are reported at once,
//! each naming the field and the fix.

use std::fmt;

use crate::api::{MetricKind, MissingDataPolicy, Mode, ScalePolicySpec, SmoothingKind, TargetRef};
use crate::core::time::Dur;

/// One problem with a spec: the field path, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Path from the spec root, e.g. `spec.metrics[0].smoothing.window`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A spec that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ScalePolicy spec: {}", .issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
pub struct PolicyError {
    /// Each problem, in field order.
    pub issues: Vec<FieldIssue>,
}

/// Per-metric settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPolicy {
    /// Short name.
    pub name: String,
    /// Target per node, in the metric's units.
    pub target: f64,
    /// Per-node average or total.
    pub kind: MetricKind,
    /// SMA or EMA.
    pub smoothing: SmoothingKind,
    /// Smoothing window.
    pub window: Dur,
    /// Older samples count as missing.
    pub max_age: Dur,
}

/// Spike handling, validated. `None` in [`Policy::spike`] when disabled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikePolicy {
    /// Robust deviations above the baseline.
    pub threshold: f64,
    /// Minimum rise above the baseline, as a fraction of it.
    pub min_rise: f64,
    /// Consecutive samples required.
    pub sustained: u32,
    /// Scale-in block after a spike.
    pub hold: Dur,
}

/// Pace limits for one direction, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Cooldown after the last relevant resize finished.
    pub cooldown: Dur,
    /// HPA-style stabilization window.
    pub stabilization: Dur,
    /// Step limit in nodes.
    pub step_nodes: Option<u32>,
    /// Step limit in percent of the current size.
    pub step_percent: Option<u32>,
}

impl Pace {
    /// Largest step allowed from `current`: the larger of the two limits, at least one node.
    pub fn max_step(&self, current: u32, rounding_up: bool) -> u32 {
        let by_nodes = self.step_nodes;
        let by_percent = self.step_percent.map(|p| {
            let exact = current as f64 * p as f64 / 100.0;
            if rounding_up { exact.ceil() as u32 } else { exact.floor() as u32 }
        });
        match (by_nodes, by_percent) {
            (None, None) => u32::MAX,
            (Some(n), None) => n,
            (None, Some(p)) => p,
            (Some(n), Some(p)) => n.max(p),
        }
        .max(1)
    }
}

/// A validated policy: what the decision core runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Smallest size.
    pub min_size: u32,
    /// Largest size.
    pub max_size: u32,
    /// Metrics, at least one.
    pub metrics: Vec<MetricPolicy>,
    /// Spike handling, if enabled.
    pub spike: Option<SpikePolicy>,
    /// Scale-out pace.
    pub scale_out: Pace,
    /// Scale-in pace.
    pub scale_in: Pace,
    /// How long added capacity takes to carry load.
    pub warmup: Dur,
    /// Dead band as a fraction of the target.
    pub tolerance: f64,
    /// Evaluation period.
    pub interval: Dur,
    /// Enforce, DryRun or Paused.
    pub mode: Mode,
    /// What missing data does.
    pub on_missing_data: MissingDataPolicy,
    /// Resize budget per rolling day.
    pub max_resizes_per_day: u32,
}

struct Checker {
    issues: Vec<FieldIssue>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.issues.push(FieldIssue { field: field.into(), message: message.into() });
    }

    fn duration(&mut self, field: &str, text: &str) -> Dur {
        match Dur::parse(text) {
            Ok(d) => d,
            Err(e) => {
                self.fail(field, e);
                Dur::ZERO
            }
        }
    }

    fn positive_duration(&mut self, field: &str, text: &str) -> Dur {
        let d = self.duration(field, text);
        if d == Dur::ZERO && Dur::parse(text).is_ok() {
            self.fail(field, format!("must be greater than 0 (got \"{text}\"); e.g. \"5m\""));
        }
        d
    }

    fn pace(
        &mut self,
        field: &str,
        cooldown: &str,
        stabilization: &str,
        nodes: Option<u32>,
        percent: Option<u32>,
    ) -> Pace {
        let cooldown = self.duration(&format!("{field}.cooldown"), cooldown);
        let stabilization = self.duration(&format!("{field}.stabilizationWindow"), stabilization);
        if nodes == Some(0) {
            self.fail(format!("{field}.maxStepNodes"), "must be at least 1; set it to null for no limit");
        }
        if percent == Some(0) {
            self.fail(format!("{field}.maxStepPercent"), "must be at least 1; set it to null for no limit");
        }
        Pace { cooldown, stabilization, step_nodes: nodes, step_percent: percent }
    }
}

/// Default warm-up of new capacity per target kind, from how long each kind takes to carry load.
pub fn default_warmup(target: &TargetRef) -> Dur {
    match target {
        // Bigtable: "it can take up to 20 minutes under load before you see a significant
        // improvement in performance" after adding nodes (Bigtable docs, "Add or remove nodes").
        TargetRef::BigtableCluster(_) => Dur::mins(20),
        TargetRef::GkeNodePool(_) => Dur::mins(3),
        TargetRef::Workload(_) => Dur::mins(1),
    }
}

/// How far back the first fetch of a metric reaches: enough history to fill the smoothing window
/// and warm up the spike detector's deviation estimate.
pub fn history(window: Dur, max_age: Dur) -> Dur {
    Dur((window.0 * 3).max(max_age.0).max(Dur::mins(30).0).min(Dur::mins(360).0))
}

impl Policy {
    /// The oldest a sample can be when it is first read: the longest first fetch of any metric.
    /// Resize history older than this (plus the warm-up) can no longer matter.
    pub fn sample_reach(&self) -> Dur {
        self.metrics.iter().map(|m| history(m.window, m.max_age)).max().unwrap_or(Dur::mins(30))
    }

    /// Validate a spec. Every problem is reported, each naming its field and the fix.
    pub fn from_spec(spec: &ScalePolicySpec) -> Result<Policy, PolicyError> {
        let mut c = Checker { issues: Vec::new() };

        if spec.min_size == 0 {
            c.fail("spec.minSize", "must be at least 1");
        }
        if spec.max_size == 0 {
            c.fail("spec.maxSize", "must be at least 1");
        }
        if spec.min_size > spec.max_size {
            c.fail(
                "spec.minSize",
                format!(
                    "minSize ({}) is greater than maxSize ({}); raise maxSize or lower minSize",
                    spec.min_size, spec.max_size
                ),
            );
        }
        match &spec.target {
            TargetRef::BigtableCluster(b) => {
                for (field, value) in [("project", &b.project), ("instance", &b.instance), ("cluster", &b.cluster)] {
                    if value.trim().is_empty() {
                        c.fail(format!("spec.target.bigtableCluster.{field}"), "must not be empty");
                    }
                }
                if let Some(t) = b.storage_target
                    && !(0.05..=0.95).contains(&t)
                {
                    c.fail(
                        "spec.target.bigtableCluster.storageTarget",
                        format!("must be between 0.05 and 0.95 (got {t})"),
                    );
                }
            }
            TargetRef::GkeNodePool(g) => {
                for (field, value) in [
                    ("project", &g.project),
                    ("location", &g.location),
                    ("cluster", &g.cluster),
                    ("nodePool", &g.node_pool),
                ] {
                    if value.trim().is_empty() {
                        c.fail(format!("spec.target.gkeNodePool.{field}"), "must not be empty");
                    }
                }
            }
            TargetRef::Workload(w) => {
                for (field, value) in [("apiVersion", &w.api_version), ("kind", &w.kind), ("name", &w.name)] {
                    if value.trim().is_empty() {
                        c.fail(format!("spec.target.workload.{field}"), "must not be empty");
                    }
                }
            }
        }

        if spec.metrics.is_empty() {
            c.fail("spec.metrics", "needs at least one metric");
        }
        if spec.metrics.len() > 10 {
            c.fail("spec.metrics", format!("has {} metrics; at most 10 are allowed", spec.metrics.len()));
        }
        let mut metrics = Vec::with_capacity(spec.metrics.len());
        for (i, m) in spec.metrics.iter().enumerate() {
            let base = format!("spec.metrics[{i}]");
            if m.name.trim().is_empty() {
                c.fail(format!("{base}.name"), "must not be empty; e.g. \"cpu\"");
            }
            if spec.metrics[..i].iter().any(|other| other.name == m.name) {
                c.fail(
                    format!("{base}.name"),
                    format!("\"{}\" is used by an earlier metric; names must be unique", m.name),
                );
            }
            if !(m.target.is_finite() && m.target > 0.0) {
                c.fail(format!("{base}.target"), format!("must be a number greater than 0 (got {})", m.target));
            }
            if m.query.filter.trim().is_empty() {
                c.fail(
                    format!("{base}.query.filter"),
                    "must not be empty; e.g. metric.type=\"bigtable.googleapis.com/cluster/cpu_load\"",
                );
            }
            if matches!(spec.target, TargetRef::Workload(_))
                && m.query.project.as_deref().is_none_or(|p| p.trim().is_empty())
            {
                c.fail(
                    format!("{base}.query.project"),
                    "is required for a workload target (there is no Google Cloud project to take it from); e.g. \"my-project\"",
                );
            }
            let align = c.duration(&format!("{base}.query.alignmentPeriod"), &m.query.alignment_period);
            if Dur::parse(&m.query.alignment_period).is_ok() && align < Dur::secs(60) {
                c.fail(
                    format!("{base}.query.alignmentPeriod"),
                    format!(
                        "must be at least 60s (got \"{}\"): Cloud Monitoring stores points at most once a minute",
                        m.query.alignment_period
                    ),
                );
            }
            let window = c.positive_duration(&format!("{base}.smoothing.window"), &m.smoothing.window);
            let max_age = c.positive_duration(&format!("{base}.maxDataAge"), &m.max_data_age);
            metrics.push(MetricPolicy {
                name: m.name.clone(),
                target: m.target,
                kind: m.kind,
                smoothing: m.smoothing.kind,
                window,
                max_age,
            });
        }

        let spike = if spec.spike.enabled {
            let s = &spec.spike;
            if !(s.threshold.is_finite() && s.threshold >= 1.0) {
                c.fail("spec.spike.threshold", format!("must be at least 1 (got {})", s.threshold));
            }
            if !(s.min_rise.is_finite() && s.min_rise >= 0.0) {
                c.fail("spec.spike.minRise", format!("must be 0 or more (got {})", s.min_rise));
            }
            if s.sustained_samples == 0 {
                c.fail("spec.spike.sustainedSamples", "must be at least 1");
            }
            let hold = c.duration("spec.spike.hold", &s.hold);
            Some(SpikePolicy {
                threshold: s.threshold,
                min_rise: s.min_rise,
                sustained: s.sustained_samples.max(1),
                hold,
            })
        } else {
            None
        };

        let (o, i) = (&spec.scale_out, &spec.scale_in);
        let scale_out =
            c.pace("spec.scaleOut", &o.cooldown, &o.stabilization_window, o.max_step_nodes, o.max_step_percent);
        let scale_in =
            c.pace("spec.scaleIn", &i.cooldown, &i.stabilization_window, i.max_step_nodes, i.max_step_percent);
        let warmup = match &o.warmup {
            Some(text) => c.duration("spec.scaleOut.warmup", text),
            None => default_warmup(&spec.target),
        };
        if !(spec.tolerance.is_finite() && (0.0..=0.9).contains(&spec.tolerance)) {
            c.fail(
                "spec.tolerance",
                format!("must be between 0 and 0.9 (got {}); 0.1 means a 10% dead band", spec.tolerance),
            );
        }
        let interval = c.duration("spec.interval", &spec.interval);
        if Dur::parse(&spec.interval).is_ok() && interval < Dur::secs(10) {
            c.fail("spec.interval", format!("must be at least 10s (got \"{}\")", spec.interval));
        }
        if spec.max_resizes_per_day == 0 {
            c.fail("spec.maxResizesPerDay", "must be at least 1");
        }

        if !c.issues.is_empty() {
            return Err(PolicyError { issues: c.issues });
        }
        Ok(Policy {
            min_size: spec.min_size,
            max_size: spec.max_size,
            metrics,
            spike,
            scale_out,
            scale_in,
            warmup,
            tolerance: spec.tolerance,
            interval,
            mode: spec.mode,
            on_missing_data: spec.on_missing_data,
            max_resizes_per_day: spec.max_resizes_per_day,
        })
    }
}
