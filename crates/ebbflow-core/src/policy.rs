//! The validated, domain form of a policy: what the decision core runs.
//!
//! The wire form (the `ScalePolicy` spec) and the rules that turn it into this live outside the
//! core, in the `ebbflow` crate's `spec` module; the core knows nothing of the CRD.

use crate::time::Dur;

/// Whether a metric is a per-node average or a total spread over the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Per-node average, e.g. CPU utilization: falls as nodes are added.
    PerNode,
    /// Total over the target, divided across its nodes, e.g. requests per second.
    Total,
}

/// The moving average used for smoothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmoothingKind {
    /// Simple moving average over the window.
    Sma,
    /// Exponential moving average with a half-life of half the window.
    Ema,
}

/// Whether the controller acts on its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Decide and resize the target.
    Enforce,
    /// Decide and report, never touch the target.
    DryRun,
    /// Do nothing; keep the state as it is.
    Paused,
}

/// What missing, stale, NaN or partial data does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissingDataPolicy {
    /// Keep the current size while any metric is missing.
    Hold,
    /// Let the metrics that do have data scale out; never scale in while any metric is missing.
    ScaleOutOnly,
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
}
