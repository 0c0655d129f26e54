//! A steady rise told from noise and from a step (issue 24): a straight line fitted to the
//! newest demands, believed only when its slope stands out of the scatter around it and that
//! scatter is the samples' own (no pattern left in the residuals).
//!
//! An average lags a climbing load by about half its window, so while the load climbs the policy
//! sizes for where it was. A line fitted over the last few windows says where the load is now
//! and where it will be when capacity ordered now serves. Three tests keep it honest:
//!
//! - the slope's t statistic (slope over its standard error, from the residuals) must pass
//!   [`RAMP_T`]: noise alone fits a slope too;
//! - the residuals must be independent, by the Durbin-Watson statistic (the squared change of
//!   consecutive residuals over their squares: about 2 when they are noise, near 0 when they
//!   follow a pattern): a step inside the window fits a line badly in one long run of residuals
//!   on each side, and so does the knee where a ramp starts or ends. Only a window that is one
//!   straight climb passes;
//! - no single step may explain the samples better (by the Bayesian information criterion): on
//!   few samples the Durbin-Watson test is weak, and a clean step can pass it.
//!
//! It only ever adds capacity (see `decide`): a wrong line costs a scale-out that scale-in
//! takes back slowly, never a scale-in.

use serde::{Deserialize, Serialize};

use crate::time::{Dur, Ts};

/// Demands kept (the newest): a window of three smoothing windows of one-minute samples.
pub const RAMP_CAP: usize = 32;
/// Fewest samples in the window for a fit: fewer (five-minute data under 20-minute windows)
/// never fit a line.
pub const RAMP_MIN_SAMPLES: usize = 12;
/// The slope's t statistic a rise must reach by default (`metrics[].ramp.threshold`): about one
/// false rise in 5,000 windows of noise.
pub const RAMP_T: f64 = 4.0;
/// The Durbin-Watson statistic the residuals must reach (2 for independent residuals; the 5%
/// lower bound of the test for 12-30 samples is 0.97-1.35).
pub const RAMP_DW: f64 = 1.2;
/// The furthest a line may carry the load: twice what it fits now.
pub const RAMP_MAX_RISE: f64 = 2.0;

/// The newest demands, oldest first, in a ring that never allocates.
#[derive(Debug, Clone, Copy)]
pub struct Ramp {
    at: [i64; RAMP_CAP],
    /// As `f32`: seven significant digits are far finer than any fit needs, and the state is
    /// stored in status (the same numbers in memory, so a restart fits the same line).
    demand: [f32; RAMP_CAP],
    /// Index of the oldest.
    head: u8,
    len: u8,
    /// Sums over the samples held, times in minutes after `anchor`: Σt, Σy, Σt², Σty, Σy². They
    /// let [`Ramp::rise`] turn away a window whose slope cannot pass before fitting it (most
    /// windows: the fit ran on every decision, a fifth of a replay's time). Rebuilt from the
    /// samples each time the ring comes round, so rounding never accumulates; never stored.
    anchor: i64,
    sums: [f64; 5],
}

impl Default for Ramp {
    fn default() -> Ramp {
        Ramp { at: [0; RAMP_CAP], demand: [0.0; RAMP_CAP], head: 0, len: 0, anchor: 0, sums: [0.0; 5] }
    }
}

/// What one sample adds to [`Ramp`]'s sums.
#[inline]
fn terms(at: i64, anchor: i64, y: f64) -> [f64; 5] {
    let t = (at - anchor) as f64 / 60_000.0;
    [t, y, t * t, t * y, y * y]
}

/// A fitted rise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rise {
    /// Demand the line puts at now.
    pub level: f64,
    /// Demand the line puts at now plus the lead (at most [`RAMP_MAX_RISE`] times `level`).
    pub ahead: f64,
}

impl Ramp {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn get(&self, i: usize) -> (i64, f64) {
        let k = (usize::from(self.head) + i) % RAMP_CAP;
        (self.at[k], f64::from(self.demand[k]))
    }

    /// The newest demand and when it was measured.
    pub fn newest(&self) -> Option<(Ts, f64)> {
        let len = usize::from(self.len);
        (len > 0).then(|| {
            let (at, d) = self.get(len - 1);
            (Ts(at), d)
        })
    }

    /// The demands held, oldest first.
    pub fn demands(&self) -> impl Iterator<Item = f64> + '_ {
        (0..usize::from(self.len)).map(|i| self.get(i).1)
    }

    /// Add the demand measured at `at` (newer than every one held).
    pub fn push(&mut self, at: Ts, demand: f64) {
        let len = usize::from(self.len);
        if len == 0 {
            self.anchor = at.0;
            self.sums = [0.0; 5];
        }
        if len == RAMP_CAP {
            let (old_at, old_y) = self.get(0);
            let gone = terms(old_at, self.anchor, old_y);
            for (s, g) in self.sums.iter_mut().zip(gone) {
                *s -= g;
            }
            self.head = ((usize::from(self.head) + 1) % RAMP_CAP) as u8;
        } else {
            self.len += 1;
        }
        let k = (usize::from(self.head) + usize::from(self.len) - 1) % RAMP_CAP;
        self.at[k] = at.0;
        self.demand[k] = demand as f32;
        if self.head == 0 && usize::from(self.len) == RAMP_CAP {
            // Once round the ring: the sums afresh, from the oldest held.
            self.anchor = self.at[0];
            self.sums = [0.0; 5];
            for i in 0..RAMP_CAP {
                let (t, y) = self.get(i);
                for (s, v) in self.sums.iter_mut().zip(terms(t, self.anchor, y)) {
                    *s += v;
                }
            }
        } else {
            for (s, v) in self.sums.iter_mut().zip(terms(at.0, self.anchor, f64::from(self.demand[k]))) {
                *s += v;
            }
        }
    }

    /// Whether the samples `first..end` (in time order) certainly fit no line [`Ramp::rise`]
    /// believes at `t`: its slope's t statistic, from the running sums, is under nine tenths of
    /// it. `false` when the sums cannot say so safely (too much cancellation, a perfect line,
    /// many samples outside the window), so the fit decides.
    fn surely_flat(&self, first: usize, end: usize, t: f64) -> bool {
        let len = usize::from(self.len);
        if first + (len - end) > RAMP_CAP / 2 {
            return false;
        }
        let mut sum = self.sums;
        for i in (0..first).chain(end..len) {
            let (t, y) = self.get(i);
            for (s, v) in sum.iter_mut().zip(terms(t, self.anchor, y)) {
                *s -= v;
            }
        }
        let n = (end - first) as f64;
        let inv = 1.0 / n;
        let [st, sy, stt, sty, syy] = sum;
        let sxx = stt - st * st * inv;
        let sxy = sty - st * sy * inv;
        let scatter = syy - sy * sy * inv;
        // Cancellation: the centred sums are what is left of much larger raw ones.
        let conditioned = sxx > 1e-6 * stt.abs().max(1e-12) && scatter > 1e-8 * syy.abs();
        if !conditioned {
            return false;
        }
        let slope = sxy / sxx;
        let rss = scatter - slope * sxy;
        let scattered = rss > 1e-9 * scatter;
        if !scattered {
            return false;
        }
        // t = slope / √(rss / (n − 2) / sxx) < 0.9 × t, squared (every term is positive here,
        // and a slope of zero or less has t ≤ 0): no root and one division less on the path
        // nearly every decision takes. NaN anywhere compares false: the fit decides.
        let bar = 0.9 * t;
        slope <= 0.0 || slope * slope * (n - 2.0) * sxx < bar * bar * rss
    }

    /// How many of the first `end` samples were measured before `at` (times only grow, so a
    /// binary search: this runs on every decision, and walking up to 32 samples cost more than
    /// the test of the sums it leads to).
    fn count_before(&self, at: i64, end: usize) -> usize {
        let (mut lo, mut hi) = (0, end);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).0 < at {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The rise a straight line through the demands of the last `span` before `now` shows, and
    /// where it carries the load `lead` later; `None` unless the line passes both tests. A climb
    /// that began inside the span fails the residual test at its knee until the span holds the
    /// climb alone (on a noisy load sooner: the noise hides the knee). Lines through the newest
    /// 12 samples as well, tried when the whole span failed, found climbs sooner but fired on
    /// short rises that fell back: on the one-minute bundled traces minutes over the limit fell
    /// a further 19-51 % at 8-23 % more node-minutes and 15-84 % more scale actions (elb-noisy-1m
    /// 1.226 times `oracle-30`), so the span is one fit.
    /// Its slope must stand `t` standard errors above zero ([`RAMP_T`] by default).
    pub fn rise(&self, now: Ts, span: Dur, lead: Dur, t: f64) -> Option<Rise> {
        self.fit(now, span, lead, t, true)
    }

    /// [`Ramp::rise`]; `prefilter` false fits every window (what the sums must agree with).
    fn fit(&self, now: Ts, span: Dur, lead: Dur, t: f64, prefilter: bool) -> Option<Rise> {
        let len = usize::from(self.len);
        // Samples up to a minute ahead of the clock are accepted (clock skew): the line runs
        // through those up to now, in the span, counted from the newest back (times only grow).
        let end = self.count_before(now.0.saturating_add(1), len);
        let n = end - self.count_before(now.0 - span.0, end);
        if n < RAMP_MIN_SAMPLES || (prefilter && self.surely_flat(end - n, end, t)) {
            return None;
        }
        // The span's samples in time order, copied out of the ring once (they may wrap around
        // its end), times in milliseconds before now: this runs on every decision, and plain
        // arrays without a division per sample cost a fraction of indexing the ring.
        let start = (usize::from(self.head) + end - n) % RAMP_CAP;
        let (mut ts, mut ys) = ([0.0f64; RAMP_CAP], [0.0f64; RAMP_CAP]);
        for (j, k) in (start..(start + n).min(RAMP_CAP)).chain(0..(start + n).saturating_sub(RAMP_CAP)).enumerate() {
            ts[j] = (self.at[k] - now.0) as f64;
            ys[j] = f64::from(self.demand[k]);
        }
        let (ts, ys) = (&ts[..n], &ys[..n]);
        let tm = ts.iter().sum::<f64>() / n as f64;
        let ym = ys.iter().sum::<f64>() / n as f64;
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for (t, y) in ts.iter().zip(ys) {
            let dt = t - tm;
            sxx += dt * dt;
            sxy += dt * (y - ym);
        }
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        if slope.is_nan() || slope <= 0.0 {
            return None;
        }
        let (mut rss, mut dw, mut prev) = (0.0, 0.0, None);
        for (t, y) in ts.iter().zip(ys) {
            let e = y - (ym + slope * (t - tm));
            rss += e * e;
            if let Some(p) = prev {
                dw += (e - p) * (e - p);
            }
            prev = Some(e);
        }
        // A perfect line (no residual at all) passes both tests.
        if rss > 0.0 {
            let se = (rss / (n - 2) as f64 / sxx).sqrt();
            if slope < t * se || dw < RAMP_DW * rss {
                return None;
            }
            // On few samples a step can pass both (Durbin-Watson is weak under 20: a clean step
            // half-way through 12 samples reads t 5.6, DW 1.26). A climb is better told by a
            // line than by any single step: the best two-level fit (a break after each sample,
            // at least two on each side) must not explain the samples better, by the Bayesian
            // information criterion (the step pays for its two more parameters, its second
            // level and its break: its residual times n^(2/n)). Compared on residuals alone,
            // the break chosen among all of them fits noise too, and marginal climbs were lost
            // (bundled one-minute traces: half the line's gain in minutes over the limit).
            let (mut sum, mut sq) = ([0.0f64; RAMP_CAP + 1], [0.0f64; RAMP_CAP + 1]);
            for (j, y) in ys.iter().enumerate() {
                sum[j + 1] = sum[j] + y;
                sq[j + 1] = sq[j] + y * y;
            }
            let part = |a: usize, b: usize| {
                let (s, q, m) = (sum[b] - sum[a], sq[b] - sq[a], (b - a) as f64);
                q - s * s / m
            };
            let penalty = (n as f64).powf(2.0 / n as f64);
            if (2..=n - 2).any(|k| (part(0, k) + part(k, n)) * penalty <= rss) {
                return None;
            }
        }
        let level = ym - slope * tm;
        if level.is_nan() || level <= 0.0 {
            return None;
        }
        let ahead = (level + slope * lead.0 as f64).min(RAMP_MAX_RISE * level);
        Some(Rise { level, ahead })
    }
}

impl PartialEq for Ramp {
    /// The same demands at the same times, wherever the ring starts.
    fn eq(&self, other: &Ramp) -> bool {
        self.len == other.len && (0..usize::from(self.len)).all(|i| self.get(i) == other.get(i))
    }
}

/// How a ramp is stored: the time of the oldest demand, the milliseconds from each to the next,
/// and the demands (about 20 characters a sample in JSON, not 45 with a timestamp each).
#[derive(Serialize, Deserialize)]
struct Stored {
    from: Ts,
    gaps: Vec<i64>,
    demand: Vec<f32>,
}

/// A stored ramp, or anything else (a state from before this form): read as none.
#[derive(Deserialize)]
#[serde(untagged)]
enum Form {
    Stored(Stored),
    Other(serde::de::IgnoredAny),
}

impl Serialize for Ramp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = usize::from(self.len);
        let from = Ts(if len > 0 { self.get(0).0 } else { 0 });
        let gaps = (1..len).map(|i| self.get(i).0 - self.get(i - 1).0).collect();
        let demand = (0..len).map(|i| self.demand[(usize::from(self.head) + i) % RAMP_CAP]).collect();
        Stored { from, gaps, demand }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ramp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ramp, D::Error> {
        let mut r = Ramp::default();
        let Form::Stored(stored) = Form::deserialize(d)? else { return Ok(r) };
        // A stored state is not trusted blindly: times that do not grow, a count that does not
        // match, or a demand no sample could give, and the ramp starts afresh.
        let valid = stored.demand.len() == stored.gaps.len() + 1
            && stored.gaps.iter().all(|g| *g > 0)
            && stored.demand.iter().all(|d| d.is_finite() && *d >= 0.0 && f64::from(*d) <= crate::signal::MAX_VALUE);
        if !valid {
            return Ok(r);
        }
        let mut at = stored.from.0;
        let skip = stored.demand.len().saturating_sub(RAMP_CAP);
        for (i, d) in stored.demand.iter().enumerate() {
            if i > 0 {
                at = at.saturating_add(stored.gaps[i - 1]);
            }
            if i >= skip {
                r.push(Ts(at), f64::from(*d));
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixtures::noise;

    const MIN: i64 = 60_000;

    fn ramp(values: impl IntoIterator<Item = f64>) -> (Ramp, Ts) {
        let mut r = Ramp::default();
        let mut at = Ts(0);
        for (i, v) in values.into_iter().enumerate() {
            at = Ts(i as i64 * MIN);
            r.push(at, v);
        }
        (r, at)
    }

    #[test]
    fn a_steady_climb_through_noise_is_carried_ahead() {
        // 100 -> 160 over 30 minutes, ±10% noise: the line says ~160 now and more ahead.
        let (r, now) = ramp((0..31).map(|i| 100.0 + 2.0 * i as f64 + 10.0 * noise(i)));
        let rise = r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T).expect("a ramp");
        assert!((rise.level - 160.0).abs() < 10.0, "{rise:?}");
        assert!((rise.ahead - 180.0).abs() < 12.0, "{rise:?}");
    }

    /// The threshold is the policy's (`metrics[].ramp.threshold`): the same climb through more
    /// noise passes at the default and not at a stricter one, with or without the sums' prefilter.
    #[test]
    fn a_stricter_threshold_believes_fewer_climbs() {
        let (r, now) = ramp((0..31).map(|i| 100.0 + 2.0 * i as f64 + 25.0 * noise(i)));
        let (span, lead) = (Dur::mins(30), Dur::mins(10));
        assert!(r.rise(now, span, lead, RAMP_T).is_some(), "believed at {RAMP_T}");
        assert_eq!(r.rise(now, span, lead, 3.0 * RAMP_T), None);
        assert_eq!(r.fit(now, span, lead, 3.0 * RAMP_T, false), None);
    }

    #[test]
    fn noise_alone_and_a_flat_load_fit_no_rise() {
        let (r, now) = ramp((0..31).map(|i| 100.0 + 20.0 * noise(i)));
        assert_eq!(r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T), None);
    }

    #[test]
    fn a_step_is_not_a_ramp() {
        // A 4x step in the middle of the window: the slope is large, but the residuals run in
        // two long blocks.
        let (r, now) = ramp((0..31).map(|i| if i < 15 { 100.0 } else { 400.0 } + 5.0 * noise(i)));
        assert_eq!(r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T), None);
    }

    #[test]
    fn the_knee_of_a_ramp_starting_is_not_yet_a_ramp_and_its_top_not_one_any_more() {
        let (r, now) = ramp((0..31).map(|i| if i < 20 { 100.0 } else { 100.0 + 10.0 * (i - 20) as f64 } + noise(i)));
        assert_eq!(r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T), None, "a knee");
        let (r, now) = ramp((0..31).map(|i| if i < 10 { 100.0 + 10.0 * i as f64 } else { 200.0 } + noise(i)));
        assert_eq!(r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T), None, "a top");
    }

    #[test]
    fn a_step_on_few_samples_is_not_a_ramp() {
        // 12 samples, 100 -> 200 half-way, clean or with a little noise: the line alone would
        // pass both tests (t 5.6, Durbin-Watson 1.26 when clean).
        for scale in [0.0, 2.0, 5.0] {
            let (r, now) = ramp((0..12).map(|i| if i < 6 { 100.0 } else { 200.0 } + scale * noise(i)));
            assert_eq!(r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T), None, "noise {scale}");
        }
    }

    #[test]
    fn a_sample_a_little_ahead_of_the_clock_leaves_the_line_in_place() {
        let (mut r, now) = ramp((0..31).map(|i| 100.0 + 2.0 * i as f64 + 10.0 * noise(i)));
        let before = r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T).expect("a ramp");
        r.push(Ts(now.0 + 30_000), 500.0);
        assert_eq!(r.rise(now, Dur::mins(30), Dur::mins(10), RAMP_T), Some(before));
    }

    #[test]
    fn five_minute_samples_never_fit_a_line() {
        let mut r = Ramp::default();
        for i in 0..7 {
            r.push(Ts(i * 5 * MIN), 100.0 + 20.0 * i as f64);
        }
        assert_eq!(r.rise(Ts(30 * MIN), Dur::mins(30), Dur::mins(10), RAMP_T), None);
    }

    /// The running sums only ever turn away windows the fit would turn away: over noise,
    /// climbs, steps, gaps, large levels and small noise, through the ring's wrap and rebuild,
    /// and across a stored round trip, `rise` says exactly what the full fit says.
    #[test]
    fn the_sums_turn_away_only_what_the_fit_turns_away() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1_000_000) as f64 / 1_000_000.0
        };
        let (mut believed, mut checked, mut turned_away) = (0, 0, 0);
        for case in 0..400 {
            let level = [1.0, 100.0, 1e6][case % 3];
            let noise = [0.0, 0.001, 0.05, 0.3][(case / 3) % 4];
            let climb = [0.0, 0.002, 0.02, -0.01][(case / 12) % 4];
            let mut r = Ramp::default();
            let mut at = 0i64;
            for i in 0..90 {
                at += if next() < 0.1 { 3 * MIN } else { MIN };
                let step = if case % 7 == 0 && i > 60 { 2.0 } else { 1.0 };
                let v = level * step * (1.0 + climb * i as f64) * (1.0 + noise * (next() * 2.0 - 1.0));
                r.push(Ts(at), v.max(0.0));
                if i >= 12 {
                    let now = Ts(at + (next() * 60_000.0) as i64);
                    for span in [Dur::mins(20), Dur::mins(30)] {
                        let fast = r.rise(now, span, Dur::mins(10), RAMP_T);
                        assert_eq!(fast, r.fit(now, span, Dur::mins(10), RAMP_T, false), "case {case}, sample {i}");
                        believed += usize::from(fast.is_some());
                        checked += 1;
                    }
                    let len = usize::from(r.len);
                    turned_away += usize::from(r.surely_flat(len - 12, len, RAMP_T));
                }
            }
            let back: Ramp = serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("back");
            assert_eq!(
                back.rise(Ts(at), Dur::mins(30), Dur::mins(10), RAMP_T),
                r.fit(Ts(at), Dur::mins(30), Dur::mins(10), RAMP_T, false)
            );
        }
        assert!(believed > checked / 20 && believed < checked / 2, "{believed} of {checked}: both kinds exercised");
        assert!(turned_away > checked / 20, "the sums turned away {turned_away} of {checked} windows");
    }

    #[test]
    fn the_line_carries_the_load_at_most_twice_as_high() {
        let (r, now) = ramp((0..31).map(|i| 10.0 + 10.0 * i as f64));
        let rise = r.rise(now, Dur::mins(30), Dur::mins(60), RAMP_T).expect("a ramp");
        assert_eq!(rise.ahead, 2.0 * rise.level);
    }

    #[test]
    fn the_ring_keeps_the_newest_and_round_trips() {
        let (r, _) = ramp((0..40).map(f64::from));
        assert_eq!(r.len as usize, RAMP_CAP);
        assert_eq!(r.get(0), (8 * MIN, 8.0));
        let json = serde_json::to_string(&r).expect("json");
        let back: Ramp = serde_json::from_str(&json).expect("back");
        assert_eq!(back, r);
        // Anything else stored there reads as no ramp, not as a state that cannot be read.
        let other: Ramp = serde_json::from_str(r#"[["2026-12-07T00:00:00Z", 1.0]]"#).expect("read");
        assert!(other.is_empty());
        let torn: Ramp =
            serde_json::from_str(r#"{"from": "2026-12-07T00:00:00Z", "gaps": [0], "demand": [1, 2]}"#).expect("read");
        assert!(torn.is_empty());
    }
}
