//! The load's weekly shape, learned online from the policy's own smoothed demand, so scale-out can
//! start early enough that new capacity *serves* when a rise the shape predicts arrives.
//!
//! Each metric keeps a profile of 168 hour-of-week buckets (UTC). When an hour with samples ends,
//! its peak smoothed demand is folded into its bucket (an exponentially weighted mean, half
//! weight to the newest week). To forecast an hour, the profile uses its own bucket once two
//! weeks were seen there; before that, the mean of the same hour of day over the days seen (a
//! daily shape, learned in two days).
//!
//! The forecast only ever *adds*: the demand the policy sizes on is the smoothed demand plus the
//! rise the profile expects between now and `now + lead` (never a fall), times the forecast's
//! weight. The weight is earned: every hour that ends is first compared with what the profile
//! expected for it, and the weight is a running mean of `1 - relative error`. A profile that
//! stops describing the load (a holiday, a migration) loses its weight within hours, and a new
//! one starts at zero. Scale-in never happens on a forecast alone.

use serde::{Deserialize, Serialize};

use crate::signal::MAX_VALUE;
use crate::smoothing::PLAUSIBLE_MS;
use crate::time::{Dur, Ts};

/// Hours in the profile: one week.
pub const HOURS: usize = 168;
const HOUR_MS: i64 = 3_600_000;
/// Weight of the newest week in a bucket.
const BUCKET_ALPHA: f64 = 0.5;
/// Weight of the newest hour in the accuracy (a memory of about ten hours).
const ACCURACY_ALPHA: f64 = 0.1;
/// Observations a bucket (or an hour of day) needs before it forecasts.
const MIN_OBSERVATIONS: u8 = 2;

/// What the policy does with its forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForecastMode {
    /// Learn and report what the forecast would have done; decide without it.
    Report,
    /// Scale out ahead of forecast rises.
    Act,
}

/// Forecast settings, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastPolicy {
    /// Report only, or act.
    pub mode: ForecastMode,
    /// How far ahead capacity is ordered: warm-up plus the time a resize takes.
    pub lead: Dur,
}

/// One metric's weekly profile. Serializable: it lives in the policy status (168 numbers and
/// counts, about 2 KB of JSON). Peaks are kept as `f32` and counts as `u8` (about 850 bytes in
/// memory instead of 1.7 KB): a fleet holds one per metric per policy, and a peak folded from
/// weekly samples needs no more than seven digits (arithmetic on them stays in `f64`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Peak smoothed demand per hour of week (UTC, Monday 00:00 first), 0 where unseen.
    pub peaks: Vec<f32>,
    /// Weeks observed per bucket (saturating at 255: only "at least two" is ever asked). Read
    /// saturating too, so a state written when counts were 16-bit still loads.
    #[serde(deserialize_with = "saturating_counts")]
    pub seen: Vec<u8>,
    /// The hour being observed (hours since the epoch) and its peak so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<(i64, f64)>,
    /// Running accuracy of the profile, 0 to 1: how far it can be trusted.
    #[serde(default)]
    pub weight: f64,
}

fn saturating_counts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let wide: Vec<u64> = Deserialize::deserialize(d)?;
    Ok(wide.into_iter().map(|n| u8::try_from(n).unwrap_or(u8::MAX)).collect())
}

impl Default for Profile {
    fn default() -> Self {
        Profile { peaks: vec![0.0; HOURS], seen: vec![0; HOURS], open: None, weight: 0.0 }
    }
}

/// Hour of week (Monday 00:00 UTC = 0) of an absolute hour; the epoch was a Thursday.
#[inline]
fn hour_of_week(abs_hour: i64) -> usize {
    (abs_hour + 72).rem_euclid(HOURS as i64) as usize
}

impl Profile {
    /// Whether observing smoothed demand could have left this profile: one bucket per hour of the
    /// week (fewer made the next hour that closes index out of bounds), peaks of demand in
    /// `0..=MAX_VALUE`, a weight in `0..=1`, and an hour a timestamp can hold.
    pub fn is_plausible(&self) -> bool {
        // One pass over the peaks (every evaluation checks the state it is given): the largest
        // magnitude, the lowest and highest peak, and whether any is NaN (which `max` and `min`
        // pass over, and which no range contains).
        let (mut magnitude, mut lowest, mut highest, mut nan) = (1.0_f64, f64::INFINITY, f64::NEG_INFINITY, false);
        for p in self.peaks.iter().map(|&p| f64::from(p)) {
            magnitude = magnitude.max(p.abs());
            lowest = lowest.min(p);
            highest = highest.max(p);
            nan |= p.is_nan();
        }
        // An SMA's running sum can drift a hair below zero after its samples left the window.
        let floor = -1e-6 * magnitude;
        let valid = |x: f64| (floor..=MAX_VALUE).contains(&x);
        let hours = PLAUSIBLE_MS / HOUR_MS;
        self.peaks.len() == HOURS
            && self.seen.len() == HOURS
            && !nan
            && lowest >= floor
            && highest <= MAX_VALUE
            && (0.0..=1.0).contains(&self.weight)
            && self.open.is_none_or(|(h, peak)| (-hours..=hours).contains(&h) && valid(peak))
    }

    /// Note the smoothed demand measured at `at`. Closes the previous hour when `at` is in a new
    /// one: scores the profile against it, then folds it in.
    #[inline]
    pub fn observe(&mut self, at: Ts, smoothed: f64) {
        let hour = at.0.div_euclid(HOUR_MS);
        match self.open {
            Some((h, peak)) if h == hour => self.open = Some((h, peak.max(smoothed))),
            Some((h, _)) if hour < h => {}
            previous => {
                if let Some((h, peak)) = previous {
                    self.close(h, peak);
                }
                self.open = Some((hour, smoothed));
            }
        }
    }

    fn close(&mut self, abs_hour: i64, peak: f64) {
        let b = hour_of_week(abs_hour);
        if let Some(expected) = self.expected(b) {
            let scale = peak.max(expected);
            let error = if scale > 0.0 { (peak - expected).abs() / scale } else { 0.0 };
            self.weight += ACCURACY_ALPHA * ((1.0 - error).clamp(0.0, 1.0) - self.weight);
        }
        let seen = self.seen[b];
        let old = f64::from(self.peaks[b]);
        self.peaks[b] = (if seen == 0 { peak } else { old + BUCKET_ALPHA * (peak - old) }) as f32;
        self.seen[b] = seen.saturating_add(1);
    }

    /// The profile's value for a bucket: its own once seen in two weeks, else the mean of the
    /// same hour of day over the days seen, once two were.
    fn expected(&self, b: usize) -> Option<f64> {
        if self.seen[b] >= MIN_OBSERVATIONS {
            return Some(f64::from(self.peaks[b]));
        }
        let (mut sum, mut n) = (0.0, 0u8);
        let mut h = b % 24;
        while h < HOURS {
            if self.seen[h] > 0 {
                sum += f64::from(self.peaks[h]);
                n += 1;
            }
            h += 24;
        }
        (n >= MIN_OBSERVATIONS).then(|| sum / n as f64)
    }

    /// The profile at an instant, interpolated between the centres of the hours around it.
    fn at(&self, t: Ts) -> Option<f64> {
        let centred = t.0 - HOUR_MS / 2;
        let hour = centred.div_euclid(HOUR_MS);
        let frac = centred.rem_euclid(HOUR_MS) as f64 / HOUR_MS as f64;
        let a = self.expected(hour_of_week(hour))?;
        let b = self.expected(hour_of_week(hour + 1))?;
        Some(a + (b - a) * frac)
    }

    /// The rise in demand the profile expects between `now` and `now + lead`, beyond its own
    /// typical error, times its weight; zero when it expects none or does not know. With weight
    /// `w` the profile's hours miss by a fraction `1 - w` on average, so a rise smaller than
    /// that much of the level it leads to is no evidence of a rise.
    #[inline]
    pub fn rise(&self, now: Ts, lead: Dur) -> f64 {
        let w = self.weight;
        if w <= 0.0 {
            return 0.0;
        }
        match (self.at(now), self.at(now + lead)) {
            (Some(a), Some(b)) => w * (b - a - (1.0 - w) * b).max(0.0),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(h: i64) -> Ts {
        // Monday 2024-01-01 00:00 UTC is 19723 days after the epoch.
        Ts((19_723 * 24 + h) * HOUR_MS)
    }

    /// A daily shape: 10 at night, 40 from 09:00 to 17:00.
    fn daily(h: i64) -> f64 {
        if (9..17).contains(&(h % 24)) { 40.0 } else { 10.0 }
    }

    fn learn(p: &mut Profile, hours: std::ops::Range<i64>, load: impl Fn(i64) -> f64) {
        for h in hours {
            for m in 0..60 {
                p.observe(Ts(hour(h).0 + m * 60_000), load(h));
            }
        }
    }

    #[test]
    fn monday_is_hour_zero() {
        assert_eq!(hour_of_week(hour(0).0 / HOUR_MS), 0);
        assert_eq!(hour_of_week(hour(24 * 6 + 23).0 / HOUR_MS), 167);
    }

    /// Nothing is forecast before two days were seen; after three, the 09:00 rise is expected
    /// ahead of time, by the size of the step, times the weight the profile earned.
    #[test]
    fn a_daily_rise_is_forecast_after_two_days() {
        let mut p = Profile::default();
        learn(&mut p, 0..24, daily);
        assert_eq!(p.rise(hour(24 + 8), Dur::mins(60)), 0.0, "one day seen");
        learn(&mut p, 24..72, daily);
        assert!(p.weight > 0.5, "the shape repeated exactly: weight {}", p.weight);
        // From the middle of 08:00-09:00 to the middle of 09:00-10:00: the whole step, less the
        // profile's typical miss at the level it leads to.
        let w = p.weight;
        let rise = p.rise(Ts(hour(72 + 8).0 + HOUR_MS / 2), Dur::mins(60));
        assert!((rise - w * (30.0 - (1.0 - w) * 40.0)).abs() < 1e-9, "08:30 + 1h: rise {rise}");
        // Half an hour earlier the lead reaches only half-way up the step.
        let early = p.rise(hour(72 + 8), Dur::mins(60));
        assert!((early - w * (15.0 - (1.0 - w) * 25.0)).abs() < 1e-9, "08:00 + 1h: rise {early}");
        // No rise is forecast where the profile falls or stays flat.
        assert_eq!(p.rise(hour(72 + 16), Dur::mins(60)), 0.0);
        assert_eq!(p.rise(hour(72 + 2), Dur::mins(60)), 0.0);
    }

    /// A profile that stops describing the load loses its weight within a day.
    #[test]
    fn a_wrong_forecast_decays_its_own_weight() {
        let mut p = Profile::default();
        learn(&mut p, 0..24 * 5, daily);
        let trusted = p.weight;
        // The load goes flat at 10 (a holiday): the daytime hours were expected at 40. After one
        // such day the weight is down by a third, and the forecast rise by more.
        let before = p.rise(hour(24 * 6 + 8), Dur::mins(60));
        learn(&mut p, 24 * 5..24 * 6, |_| 10.0);
        assert!(p.weight < trusted * 0.8, "{trusted} -> {}", p.weight);
        assert!(p.rise(hour(24 * 6 + 8), Dur::mins(60)) < before * 0.5);
    }

    /// A week's own shape wins over the daily mean once seen twice: Saturday stays flat.
    #[test]
    fn weekly_buckets_take_over_after_two_weeks() {
        let mut p = Profile::default();
        let weekdays = |h: i64| if (h / 24) % 7 >= 5 { 10.0 } else { daily(h) };
        learn(&mut p, 0..24 * 15, weekdays);
        // Saturday of week three, 08:00: no rise expected; Monday 08:00: the usual rise.
        assert_eq!(p.rise(hour(24 * 19 + 8), Dur::mins(60)), 0.0);
        assert!(p.rise(hour(24 * 21 + 8), Dur::mins(60)) > 10.0);
    }

    /// A profile saved when peaks were `f64` and counts 16-bit loads: counts above 255 saturate
    /// (still "seen twice"), peaks keep their value to seven digits, and it still forecasts.
    #[test]
    fn a_profile_saved_with_wide_numbers_loads() {
        let mut peaks = vec![10.000000123_f64; HOURS];
        peaks[9] = 40.000000456;
        let json = serde_json::json!({ "peaks": peaks, "seen": vec![300u16; HOURS], "weight": 0.8 });
        let p: Profile = serde_json::from_value(json).expect("loads");
        assert!(p.is_plausible());
        assert_eq!(p.seen, vec![u8::MAX; HOURS]);
        assert!((f64::from(p.peaks[9]) - 40.0).abs() < 1e-5);
        assert!(p.rise(hour(8), Dur::mins(90)) > 10.0, "09:00 rise still expected");
        assert!(serde_json::from_value::<Profile>(serde_json::json!({ "peaks": [], "seen": [-1] })).is_err());
    }
}
