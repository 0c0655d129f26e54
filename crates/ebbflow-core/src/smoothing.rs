//! Streaming moving averages with O(1) work per sample.
//!
//! Both averages are defined over *time*, not sample counts, because real metric streams skip
//! samples: a 10-minute SMA over a stream with a 20-minute gap averages what it has, and an EMA
//! weighs a sample that arrives after a long gap more heavily.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::policy::SmoothingKind;
use crate::signal::MAX_VALUE;
use crate::time::{Dur, Ts};

/// Milliseconds beyond any timestamp a state can hold (about 35,000 years), yet far enough from
/// `i64`'s ends that differences of two such times never overflow.
pub(crate) const PLAUSIBLE_MS: i64 = 1 << 50;

/// A moving average's state: serializable, so it can live in the policy's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Smoother {
    /// Simple moving average over `(now - window, now]` by running sum.
    Sma {
        /// Samples inside the window, oldest first: `[time ms, value]`.
        window: VecDeque<(i64, f64)>,
        /// Running sum of the values in `window`.
        sum: f64,
        /// The rounding the running sum has lost, carried exactly (Neumaier's compensated
        /// sum): a value far larger than the rest that enters and leaves the window takes no
        /// precision with it, so `sum + low` stays the window's sum however the load swung.
        #[serde(default, skip_serializing_if = "is_zero_f64")]
        low: f64,
    },
    /// Time-aware exponential moving average whose weights halve every `window / 2`.
    Ema {
        /// Current average, if any sample was seen.
        value: Option<f64>,
        /// Time of the last sample folded in.
        at: Option<i64>,
        /// Sum of the sample weights (the newest weighs 1).
        #[serde(default)]
        weight: f64,
        /// Sum of the squared sample weights.
        #[serde(default)]
        weight_sq: f64,
        /// Cache of the last decay factor.
        #[serde(skip)]
        decay: Decay,
    },
}

/// The weight left after `dt` for a half-life, `2^(-dt / half-life)`, remembered for the last
/// `(dt, half-life)` asked: samples are usually evenly spaced, so without it every sample pays
/// for the same `exp`. A cache only: never serialized, and it never makes two states unequal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decay {
    dt: i64,
    half_life_bits: u64,
    keep: f64,
}

impl PartialEq for Decay {
    fn eq(&self, _: &Decay) -> bool {
        true
    }
}

impl Decay {
    /// `2^(-dt / half_life)` for `dt` in milliseconds (negative counts as 0).
    #[inline]
    pub fn keep(&mut self, dt: i64, half_life: f64) -> f64 {
        let dt = dt.max(0);
        let bits = half_life.to_bits();
        // A default cache has half_life_bits 0 (half-life 0.0), which no caller asks for.
        if self.dt != dt || self.half_life_bits != bits {
            self.keep = (-(dt as f64) / half_life * std::f64::consts::LN_2).exp();
            self.dt = dt;
            self.half_life_bits = bits;
        }
        self.keep
    }
}

/// Add `v` to the running sum `sum`, carrying what rounding loses in `low` (Neumaier's variant
/// of Kahan summation: the error of each addition is recovered exactly).
#[inline]
fn add_compensated(sum: &mut f64, low: &mut f64, v: f64) {
    let t = *sum + v;
    *low += if sum.abs() >= v.abs() { (*sum - t) + v } else { (v - t) + *sum };
    *sum = t;
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

impl Smoother {
    /// An empty smoother of the given kind.
    pub fn new(kind: SmoothingKind) -> Smoother {
        match kind {
            SmoothingKind::Sma => Smoother::Sma { window: VecDeque::new(), sum: 0.0, low: 0.0 },
            SmoothingKind::Ema => {
                Smoother::Ema { value: None, at: None, weight: 0.0, weight_sq: 0.0, decay: Decay::default() }
            }
        }
    }

    /// An empty smoother of the same kind.
    pub fn emptied(&self) -> Smoother {
        Smoother::new(match self {
            Smoother::Sma { .. } => SmoothingKind::Sma,
            Smoother::Ema { .. } => SmoothingKind::Ema,
        })
    }

    /// Whether this smoother is of `kind`.
    pub fn is_kind(&self, kind: SmoothingKind) -> bool {
        matches!((self, kind), (Smoother::Sma { .. }, SmoothingKind::Sma) | (Smoother::Ema { .. }, SmoothingKind::Ema))
    }

    /// Fold in one sample. Samples must arrive in increasing time order (the caller drops the rest).
    #[inline]
    pub fn push(&mut self, at: Ts, value: f64, window: Dur) {
        match self {
            Smoother::Sma { window: buf, sum, low } => {
                buf.push_back((at.0, value));
                add_compensated(sum, low, value);
                let cutoff = at.0 - window.0;
                let mut evicted: f64 = 0.0;
                while let Some(&(t, v)) = buf.front() {
                    if t > cutoff {
                        break;
                    }
                    buf.pop_front();
                    add_compensated(sum, low, -v);
                    evicted = evicted.max(v.abs());
                }
                // A running sum drifts by rounding; when the window empties down to one sample,
                // reset it exactly so drift never accumulates over a long run. A value that left
                // the window a million times larger than what stays took the sum's precision
                // with it (two samples of 1e20 leaving a window of 0.5s left a sum of 0, and an
                // average of 0 under real load): add up what stays.
                if buf.len() == 1 {
                    (*sum, *low) = (value, 0.0);
                } else if evicted > 1e6 * (*sum + *low).abs() {
                    (*sum, *low) = (buf.iter().map(|&(_, v)| v).sum(), 0.0);
                }
            }
            Smoother::Ema { value: avg, at: last, weight, weight_sq, decay } => {
                match (*avg, *last) {
                    (Some(prev), Some(prev_at)) => {
                        let half_life = (window.0 as f64 / 2.0).max(1.0);
                        let keep = decay.keep(at.0 - prev_at, half_life);
                        *avg = Some(value + (prev - value) * keep);
                        *weight = 1.0 + *weight * keep;
                        *weight_sq = 1.0 + *weight_sq * keep * keep;
                    }
                    _ => {
                        *avg = Some(value);
                        *weight = 1.0;
                        *weight_sq = 1.0;
                    }
                }
                *last = Some(at.0);
            }
        }
    }

    /// How many independent samples the average is worth (Kish's effective sample size): the
    /// standard error of the average is the noise's deviation divided by its square root.
    #[inline]
    pub fn effective_samples(&self) -> f64 {
        match self {
            Smoother::Sma { window, .. } => window.len() as f64,
            Smoother::Ema { weight, weight_sq, .. } => {
                if *weight_sq > 0.0 {
                    weight * weight / weight_sq
                } else {
                    0.0
                }
            }
        }
    }

    /// Whether valid samples could have left this state: every value in `0..=MAX_VALUE` (what
    /// [`crate::signal::SignalState::ingest`] accepts), a running sum that is their sum up to
    /// rounding, weights an average of such samples has, and a time a timestamp can hold. A
    /// stored state is trusted no more than a sample.
    pub fn is_plausible(&self) -> bool {
        let valid = |x: f64| (0.0..=MAX_VALUE).contains(&x);
        match self {
            Smoother::Sma { window, sum, low } => {
                // One pass (every evaluation checks the state it is given), adding in the order
                // `Iterator::sum` does.
                let mut exact: f64 = -0.0;
                for &(_, v) in window {
                    if !valid(v) {
                        return false;
                    }
                    exact += v;
                }
                // Rounding drift of the running sum is many orders of magnitude below a millionth.
                let total = sum + low;
                sum.is_finite() && low.is_finite() && (total - exact).abs() <= 1e-6 * exact.max(1.0)
            }
            Smoother::Ema { value, at, weight, weight_sq, .. } => {
                // Each weight is at most 1, so the sum of their squares never exceeds their sum.
                value.is_none_or(valid)
                    && at.is_none_or(|t| (-PLAUSIBLE_MS..=PLAUSIBLE_MS).contains(&t))
                    && weight.is_finite()
                    && (0.0..=*weight).contains(weight_sq)
            }
        }
    }

    /// Current average, if any sample is inside the window.
    #[inline]
    pub fn value(&self) -> Option<f64> {
        match self {
            Smoother::Sma { window, sum, low } => {
                if window.is_empty() {
                    None
                } else {
                    Some((sum + low) / window.len() as f64)
                }
            }
            Smoother::Ema { value, .. } => *value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Huge values leaving the window do not take the running sum's precision with them: the
    /// average of what stays is right, and the smoother stays plausible (a state the core keeps
    /// is not checked again, so its own updates must keep it so).
    #[test]
    fn huge_values_leaving_the_window_leave_an_exact_sum() {
        let window = Dur::mins(5);
        let mut s = Smoother::new(SmoothingKind::Sma);
        let minute = |m: i64| Ts(m * 60_000);
        s.push(minute(0), 0.5, window);
        s.push(minute(1), 1e20, window);
        s.push(minute(2), 1e20, window);
        for m in 3..12 {
            s.push(minute(m), 0.5, window);
            assert!(s.is_plausible(), "minute {m}: {s:?}");
        }
        let mean = s.value().unwrap_or(f64::NAN);
        assert!((mean - 0.5).abs() < 1e-12, "{mean}");
    }

    fn t(min: i64) -> Ts {
        Ts(min * 60_000)
    }

    #[test]
    fn sma_averages_only_inside_the_time_window() {
        let mut s = Smoother::new(SmoothingKind::Sma);
        let w = Dur::mins(3);
        s.push(t(0), 1.0, w);
        s.push(t(1), 2.0, w);
        s.push(t(2), 3.0, w);
        assert_eq!(s.value(), Some(2.0));
        // t=3 evicts t=0 (window is (0, 3]).
        s.push(t(3), 4.0, w);
        assert_eq!(s.value(), Some(3.0));
        // A gap: everything older than 3 minutes goes.
        s.push(t(10), 10.0, w);
        assert_eq!(s.value(), Some(10.0));
    }

    #[test]
    fn ema_halves_old_weight_every_half_window() {
        let mut s = Smoother::new(SmoothingKind::Ema);
        let w = Dur::mins(10);
        s.push(t(0), 0.0, w);
        s.push(t(5), 1.0, w);
        // After one half-life the old value keeps half its weight.
        assert!((s.value().unwrap() - 0.5).abs() < 1e-12);
        s.push(t(10), 1.0, w);
        assert!((s.value().unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn ema_weighs_a_sample_after_a_gap_more() {
        let w = Dur::mins(10);
        let mut near = Smoother::new(SmoothingKind::Ema);
        near.push(t(0), 0.0, w);
        near.push(t(1), 1.0, w);
        let mut far = Smoother::new(SmoothingKind::Ema);
        far.push(t(0), 0.0, w);
        far.push(t(30), 1.0, w);
        assert!(far.value().unwrap() > near.value().unwrap());
    }

    #[test]
    fn sma_running_sum_matches_a_fresh_sum() {
        let mut s = Smoother::new(SmoothingKind::Sma);
        let w = Dur::mins(7);
        let mut xs = Vec::new();
        for i in 0..10_000i64 {
            let v = ((i * 7919) % 1000) as f64 / 7.0;
            s.push(t(i), v, w);
            xs.push(v);
        }
        let tail = &xs[xs.len() - 7..];
        let exact: f64 = tail.iter().sum::<f64>() / 7.0;
        assert!((s.value().unwrap() - exact).abs() < 1e-9);
    }
}
