//! One metric's streaming signal: demand smoothing and spike detection.
//!
//! The signal works on **demand**, not on the raw per-node value. For a per-node metric, demand is
//! the raw value times the capacity that was serving when the sample was measured; for a total
//! metric it is the raw value itself. Demand does not jump when the policy resizes the target, so a
//! smoothing window that straddles a resize stays meaningful, and a scale-out that is still warming
//! up is not mistaken for more load (the capacity that was serving is what the sample measured).
//!
//! Spike detection compares each new sample with the smoothed baseline *before* that sample, in
//! units of a robust running deviation: an exponentially weighted mean absolute deviation whose
//! updates are clipped (winsorized) and frozen during a spike, so a spike cannot inflate the very
//! yardstick that measures it.

use serde::{Deserialize, Serialize};

use crate::api::MetricKind;
use crate::core::policy::{MetricPolicy, SpikePolicy};
use crate::core::smoothing::{Decay, Smoother};
use crate::core::time::{Dur, Ts};

/// One raw sample of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the sample was measured (end of its alignment period).
    pub at: Ts,
    /// Raw value in the metric's own units.
    pub value: f64,
}

/// Samples a signal needs before its deviation estimate is trusted for spike detection.
const SPIKE_WARMUP_SAMPLES: u32 = 5;
/// Mean absolute deviation to standard deviation for normal noise: sqrt(pi / 2).
const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
/// Deviation updates are clipped at this many sigmas.
const CLIP_SIGMAS: f64 = 3.0;
/// The deviation estimate forgets with a half-life of this many smoothing windows.
const DEVIATION_HALF_LIFE_WINDOWS: f64 = 3.0;

/// Streaming state of one metric. Serializable: it lives in the policy status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalState {
    /// Metric name, so a spec edit that renames or reorders metrics resets the signal.
    pub name: String,
    /// Time of the newest valid sample folded in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Ts>,
    /// Newest valid raw value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_raw: Option<f64>,
    /// Newest valid demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_demand: Option<f64>,
    /// Moving average of demand.
    pub smoother: Smoother,
    /// Running mean absolute deviation of demand around the baseline.
    #[serde(default)]
    pub deviation: f64,
    /// Valid samples folded in (saturating).
    #[serde(default)]
    pub seen: u32,
    /// Consecutive newest samples above the spike threshold.
    #[serde(default)]
    pub run: u32,
    /// Lowest demand within that run: the level the spike has held.
    #[serde(default)]
    pub run_min: f64,
    /// Cache of the deviation's last decay factor.
    #[serde(skip)]
    decay: Decay,
}

/// What ingesting one tick's samples found, besides the state change.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ingest {
    /// New valid samples folded in.
    pub accepted: u32,
    /// Samples that were NaN, infinite or negative.
    pub invalid: u32,
    /// Whether the newest sample offered this tick was invalid.
    pub newest_invalid: bool,
}

impl SignalState {
    /// An empty signal for `metric`.
    pub fn new(metric: &MetricPolicy) -> SignalState {
        SignalState {
            name: metric.name.clone(),
            last_at: None,
            last_raw: None,
            last_demand: None,
            smoother: Smoother::new(metric.smoothing),
            deviation: 0.0,
            seen: 0,
            run: 0,
            run_min: 0.0,
            decay: Decay::default(),
        }
    }

    /// Whether this state belongs to `metric` as currently specified.
    pub fn matches(&self, metric: &MetricPolicy) -> bool {
        self.name == metric.name && self.smoother.is_kind(metric.smoothing)
    }

    /// Fold in the samples of one tick, oldest first. Samples at or before the newest already
    /// seen are skipped, so a source may hand over overlapping windows. `basis(at)` is the
    /// capacity that was serving at `at` (used only for per-node metrics).
    #[inline]
    pub fn ingest(
        &mut self,
        metric: &MetricPolicy,
        spike: Option<&SpikePolicy>,
        samples: &[Sample],
        basis: impl Fn(Ts) -> u32,
    ) -> Ingest {
        let mut out = Ingest::default();
        let mut newest: Option<Ts> = None;
        for s in samples {
            if newest.is_none_or(|n| s.at > n) {
                newest = Some(s.at);
                out.newest_invalid = false;
            }
            if self.last_at.is_some_and(|last| s.at <= last) {
                continue;
            }
            if !s.value.is_finite() || s.value < 0.0 {
                out.invalid += 1;
                if newest == Some(s.at) {
                    out.newest_invalid = true;
                }
                continue;
            }
            let demand = match metric.kind {
                MetricKind::PerNode => s.value * basis(s.at) as f64,
                MetricKind::Total => s.value,
            };
            self.fold(metric, spike, s.at, s.value, demand);
            out.accepted += 1;
        }
        out
    }

    #[inline]
    fn fold(&mut self, metric: &MetricPolicy, spike: Option<&SpikePolicy>, at: Ts, raw: f64, demand: f64) {
        let baseline = self.smoother.value();
        if let Some(base) = baseline {
            let residual = demand - base;
            let sigma = self.deviation * MAD_TO_SIGMA;
            let above = match spike {
                Some(p) if self.seen >= SPIKE_WARMUP_SAMPLES => {
                    residual > p.threshold * sigma && residual > p.min_rise * base && residual > 0.0
                }
                _ => false,
            };
            if above {
                self.run_min = if self.run == 0 { demand } else { self.run_min.min(demand) };
                self.run = self.run.saturating_add(1);
            } else {
                self.run = 0;
                // Freeze the yardstick during a spike; otherwise update it with a clipped residual.
                let magnitude = residual.abs();
                let clipped = if self.seen >= SPIKE_WARMUP_SAMPLES && sigma > 0.0 {
                    magnitude.min(CLIP_SIGMAS * sigma)
                } else {
                    magnitude
                };
                let keep = match self.last_at {
                    Some(prev) => {
                        let half_life = (metric.window.0 as f64 * DEVIATION_HALF_LIFE_WINDOWS).max(1.0);
                        self.decay.keep(at.0 - prev.0, half_life)
                    }
                    None => 0.0,
                };
                self.deviation = clipped + (self.deviation - clipped) * keep;
            }
        }
        self.smoother.push(at, demand, metric.window);
        self.last_at = Some(at);
        self.last_raw = Some(raw);
        self.last_demand = Some(demand);
        self.seen = self.seen.saturating_add(1);
    }

    /// Smoothed demand, if any.
    #[inline]
    pub fn smoothed_demand(&self) -> Option<f64> {
        self.smoother.value()
    }

    /// An upper confidence bound on the smoothed demand: the average plus `z` standard errors of
    /// the noise around it. Scale-in sizes on this, so it acts only when load is lower beyond
    /// reasonable doubt, not when noise happens to dip the average.
    #[inline]
    pub fn smoothed_demand_upper(&self, z: f64) -> Option<f64> {
        let mean = self.smoother.value()?;
        let n = self.smoother.effective_samples();
        if n < 1.0 {
            return Some(mean);
        }
        Some(mean + z * self.deviation * MAD_TO_SIGMA / n.sqrt())
    }

    /// The demand level of a detected spike (the lowest demand over the sustained run), if the
    /// newest samples form one.
    #[inline]
    pub fn spike_level(&self, spike: Option<&SpikePolicy>) -> Option<f64> {
        match spike {
            Some(p) if self.run >= p.sustained => Some(self.run_min),
            _ => None,
        }
    }

    /// Age of the newest sample at `now`, if any.
    pub fn age(&self, now: Ts) -> Option<Dur> {
        self.last_at.map(|at| now - at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SmoothingKind;

    fn metric() -> MetricPolicy {
        MetricPolicy {
            name: "cpu".into(),
            target: 0.6,
            kind: MetricKind::PerNode,
            smoothing: SmoothingKind::Ema,
            window: Dur::mins(10),
            max_age: Dur::mins(5),
        }
    }

    fn spike() -> SpikePolicy {
        SpikePolicy { threshold: 3.0, min_rise: 0.2, sustained: 2, hold: Dur::mins(30) }
    }

    fn feed(sig: &mut SignalState, values: &[f64], start_min: i64) {
        let m = metric();
        let p = spike();
        for (i, v) in values.iter().enumerate() {
            let s = [Sample { at: Ts((start_min + i as i64) * 60_000), value: *v }];
            sig.ingest(&m, Some(&p), &s, |_| 4);
        }
    }

    #[test]
    fn noise_is_not_a_spike() {
        let mut sig = SignalState::new(&metric());
        let noisy: Vec<f64> = (0..200).map(|i| 0.4 + 0.05 * ((i * 37 % 11) as f64 / 10.0 - 0.5)).collect();
        feed(&mut sig, &noisy, 0);
        assert_eq!(sig.spike_level(Some(&spike())), None);
    }

    #[test]
    fn a_sustained_jump_is_a_spike_at_its_held_level() {
        let mut sig = SignalState::new(&metric());
        let mut xs: Vec<f64> = (0..60).map(|i| 0.4 + 0.01 * ((i % 3) as f64)).collect();
        xs.extend([0.95, 0.9]);
        feed(&mut sig, &xs, 0);
        let level = sig.spike_level(Some(&spike())).expect("spike");
        // Demand = per-node value x 4 nodes; the run held at least 0.9 per node.
        assert!((level - 0.9 * 4.0).abs() < 1e-9, "{level}");
    }

    #[test]
    fn one_sample_blip_is_not_sustained() {
        let mut sig = SignalState::new(&metric());
        let mut xs: Vec<f64> = (0..60).map(|_| 0.4).collect();
        xs.extend([0.95, 0.4]);
        feed(&mut sig, &xs, 0);
        assert_eq!(sig.spike_level(Some(&spike())), None);
    }

    #[test]
    fn spikes_do_not_inflate_the_yardstick() {
        let mut sig = SignalState::new(&metric());
        let xs: Vec<f64> = (0..60).map(|i| 0.4 + 0.01 * ((i % 3) as f64)).collect();
        feed(&mut sig, &xs, 0);
        let before = sig.deviation;
        feed(&mut sig, &[0.95, 0.95, 0.95], 60);
        assert_eq!(sig.deviation, before);
    }

    #[test]
    fn invalid_and_old_samples_are_skipped() {
        let m = metric();
        let mut sig = SignalState::new(&m);
        let samples = [
            Sample { at: Ts(60_000), value: 0.5 },
            Sample { at: Ts(120_000), value: f64::NAN },
            Sample { at: Ts(120_000), value: -1.0 },
        ];
        let r = sig.ingest(&m, None, &samples, |_| 2);
        assert_eq!(r.accepted, 1);
        assert_eq!(r.invalid, 2);
        assert!(r.newest_invalid);
        // The same window again adds nothing.
        let r = sig.ingest(&m, None, &samples[..1], |_| 2);
        assert_eq!(r.accepted, 0);
        assert_eq!(sig.smoothed_demand(), Some(1.0));
    }
}
