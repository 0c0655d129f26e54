//! The validated, domain form of a policy: what the decision core runs.
//!
//! The wire form (the `ScalePolicy` spec) and the rules that turn it into this live outside the
//! core, in the `ebbflow` crate's `spec` module; the core knows nothing of the CRD.

use crate::forecast::ForecastPolicy;
use crate::known::Known;
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
    /// Per-node level single samples should rarely pass (same units as `target`).
    pub limit: f64,
    /// Standard normal quantile of the headroom (`z` for quantile 0.975 is 1.96); `None` sizes on
    /// the smoothed value alone.
    pub headroom_z: Option<f64>,
    /// A guard's level: the metric never sizes the target, but while its value is above this
    /// level scale-in is blocked (`Reason::GuardMetricHigh`). `None` for a metric that sizes.
    pub guard: Option<f64>,
    /// The largest value one series of the metric takes, when its unit has one (1 for a
    /// utilization): a per-node value there is saturated and says nothing of how much capacity
    /// serves.
    pub ceiling: Option<f64>,
    /// The t statistic the slope of a line through the newest demands must reach before the
    /// policy sizes for where a steady climb will be ([`crate::ramp`], default
    /// [`crate::ramp::RAMP_T`]); `None` fits no line.
    pub ramp_t: Option<f64>,
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
    /// Forecasting from the load's weekly shape, if on.
    pub forecast: Option<ForecastPolicy>,
    /// Schedules and overrides that move the bounds or pause a direction for a while.
    pub known: Known,
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

/// The standard normal quantile function (Acklam's rational approximation, relative error below
/// 1.2e-9 on (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod quantile_tests {
    use super::normal_quantile;

    /// Against published table values of the standard normal distribution.
    #[test]
    fn normal_quantile_matches_the_table() {
        for (p, z) in [
            (0.5, 0.0),
            (0.8413447, 1.0),
            (0.9, 1.2815516),
            (0.95, 1.6448536),
            (0.99, 2.3263479),
            (0.999, 3.0902323),
            (0.01, -2.3263479),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-6, "{p}: {} vs {z}", normal_quantile(p));
        }
    }
}
