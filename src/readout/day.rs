//! The last 24 hours of a policy as status keeps them ([`StatusHistory`]): every resize, and
//! the load and sizes in 5-minute buckets. Status is what every replica reads and what survives
//! a restart, so the dashboard of any replica shows the same day.
//!
//! Pure: the controller folds each decision in ([`fold`], [`resize_started`],
//! [`resize_finished`]); the readout and the dashboard read it back ([`buckets`]). The JSON
//! stays within [`HISTORY_BUDGET_BYTES`] whatever the load: numbers are written with three
//! significant digits, and when the resizes of a busy day would pass the budget the oldest are
//! dropped and counted.

use std::fmt::Write as _;

use crate::api::{
    HISTORY_BUCKET_MINUTES, HISTORY_BUCKETS, HISTORY_BUDGET_BYTES, HISTORY_RESIZES, ResizeEntry, StatusHistory,
};
use crate::core::{Dur, Ts};

/// How far back the history reaches.
pub const SPAN: Dur = Dur(24 * 3_600_000);
/// Width of one bucket.
pub const BUCKET: Dur = Dur(HISTORY_BUCKET_MINUTES * 60_000);
/// Longest error text kept per resize.
pub const ERROR_CHARS: usize = 120;

/// What one decision adds to its bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Newest observed value of the first metric.
    pub observed: Option<f64>,
    /// Its smoothed value.
    pub smoothed: Option<f64>,
    /// Nodes serving.
    pub serving: Option<u32>,
    /// Size wanted.
    pub desired: Option<u32>,
}

/// One 5-minute bucket, decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    /// Start of the bucket.
    pub start: Ts,
    /// Highest observed value in it.
    pub observed: Option<f64>,
    /// Last smoothed value in it.
    pub smoothed: Option<f64>,
    /// Last serving size in it.
    pub serving: Option<u32>,
    /// Last desired size in it.
    pub desired: Option<u32>,
}

fn start_of(t: Ts) -> Ts {
    Ts(t.0.div_euclid(BUCKET.0) * BUCKET.0)
}

/// A number in at most 8 characters, three significant digits.
fn fmt(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let a = v.abs();
            if a != 0.0 && !(0.001..1e6).contains(&a) { format!("{v:.2e}") } else { super::num(v) }
        }
        _ => "-".into(),
    }
}

fn parse_f(s: &str) -> Option<f64> {
    s.parse().ok().filter(|v: &f64| v.is_finite())
}

fn split(s: &str) -> Vec<&str> {
    s.split_ascii_whitespace().collect()
}

/// The buckets of `h`, oldest first, one per 5 minutes from `since` (gaps included).
pub fn buckets(h: &StatusHistory) -> Vec<Bucket> {
    let Some(since) = h.since.as_deref().and_then(|s| Ts::parse_rfc3339(s).ok()) else { return Vec::new() };
    let (o, s, n, d) = (split(&h.observed), split(&h.smoothed), split(&h.serving), split(&h.desired));
    let len = o.len().max(s.len()).max(n.len()).max(d.len()).min(HISTORY_BUCKETS);
    (0..len)
        .map(|i| Bucket {
            start: since + Dur(BUCKET.0 * i as i64),
            observed: o.get(i).and_then(|x| parse_f(x)),
            smoothed: s.get(i).and_then(|x| parse_f(x)),
            serving: n.get(i).and_then(|x| x.parse().ok()),
            desired: d.get(i).and_then(|x| x.parse().ok()),
        })
        .collect()
}

fn store(h: &mut StatusHistory, b: &[Bucket]) {
    h.since = b.first().map(|b| b.start.to_rfc3339());
    h.observed = series(b, |b, out| out.push_str(&fmt(b.observed)));
    h.smoothed = series(b, |b, out| out.push_str(&fmt(b.smoothed)));
    h.serving = series(b, |b, out| size(out, b.serving));
    h.desired = series(b, |b, out| size(out, b.desired));
}

/// One series as status keeps it, a token per bucket separated by spaces, written into one string:
/// every policy folds its day on every tick, and a string per token and a vector to join them
/// (288 × 4 allocations a policy a tick) only churned the allocator.
fn series(b: &[Bucket], token: impl Fn(&Bucket, &mut String)) -> String {
    let mut out = String::new();
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        token(x, &mut out);
    }
    out
}

fn size(out: &mut String, n: Option<u32>) {
    match n {
        // Writing into a String cannot fail.
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push('-'),
    }
}

/// `prev` with the decision at `now` folded into its bucket, and everything older than 24
/// hours dropped.
pub fn fold(prev: Option<&StatusHistory>, now: Ts, r: Reading) -> StatusHistory {
    let mut h = prev.cloned().unwrap_or_default();
    let mut b = buckets(&h);
    let at = start_of(now);
    // A bucket from the future (a skewed clock earlier) would pin the series: start over.
    if b.last().is_some_and(|l| l.start > at) {
        b.clear();
    }
    if let Some(last) = b.last().map(|l| l.start) {
        let mut t = last + BUCKET;
        while t <= at {
            b.push(Bucket { start: t, ..Bucket::default() });
            t = t + BUCKET;
        }
    } else {
        b.push(Bucket { start: at, ..Bucket::default() });
    }
    let cur = b.last_mut().expect("a bucket at now");
    cur.observed = match (cur.observed, r.observed) {
        (Some(a), Some(x)) => Some(a.max(x)),
        (a, x) => x.or(a),
    };
    cur.smoothed = r.smoothed.or(cur.smoothed);
    cur.serving = r.serving.or(cur.serving);
    cur.desired = r.desired.or(cur.desired);
    let excess = b.len().saturating_sub(HISTORY_BUCKETS);
    b.drain(..excess);
    store(&mut h, &b);
    prune(&mut h, now);
    h
}

/// Record that a resize `from -> to` for `reason` was started at `at` (once: a second call for
/// the same start, the intent and then the outcome of a tick, changes nothing).
pub fn resize_started(h: &mut StatusHistory, at: Ts, from: u32, to: u32, reason: &str) {
    let time = at.to_rfc3339();
    if h.resizes.iter().any(|r| r.time == time) {
        return;
    }
    h.resizes.push(ResizeEntry { time, from, to, reason: reason.into(), took_secs: None, error: None });
    prune(h, at);
}

/// Record that the resize started at `started` ended at `now`, with `error` if it failed.
pub fn resize_finished(h: &mut StatusHistory, started: Ts, now: Ts, error: Option<&str>) {
    let time = started.to_rfc3339();
    if let Some(r) = h.resizes.iter_mut().rev().find(|r| r.time == time) {
        r.took_secs = Some(((now - started).0.max(0) / 1000) as u64);
        r.error = error.map(|e| e.chars().take(ERROR_CHARS).collect());
    }
    prune(h, now);
}

/// Drop resizes older than 24 hours, keep at most [`HISTORY_RESIZES`], and stay within
/// [`HISTORY_BUDGET_BYTES`], counting what a busy day had to drop.
pub fn prune(h: &mut StatusHistory, now: Ts) {
    let old = h.resizes.iter().take_while(|r| Ts::parse_rfc3339(&r.time).map_or(true, |t| now - t > SPAN)).count();
    h.resizes.drain(..old);
    let over = h.resizes.len().saturating_sub(HISTORY_RESIZES);
    h.resizes.drain(..over);
    h.dropped = h.dropped.saturating_add(over as u32);
    while !h.resizes.is_empty() && bytes(h) > HISTORY_BUDGET_BYTES {
        h.resizes.remove(0);
        h.dropped = h.dropped.saturating_add(1);
    }
}

/// The history's size as JSON.
pub fn bytes(h: &StatusHistory) -> usize {
    serde_json::to_vec(h).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Ts {
        Ts::parse_rfc3339("2026-11-23T00:00:00Z").expect("time")
    }

    /// A day of one-minute decisions folds into 288 buckets: the highest observed value of each
    /// bucket survives (a one-minute peak is not averaged away), the last sizes are kept, and
    /// the series start 24 hours back.
    #[test]
    fn a_day_folds_into_buckets_keeping_peaks() {
        let mut h: Option<StatusHistory> = None;
        for m in 0..(26 * 60) {
            let peak = m % 60 == 7;
            let r = Reading {
                observed: Some(if peak { 0.95 } else { 0.4 }),
                smoothed: Some(0.42),
                serving: Some(4 + (m / 600) as u32),
                desired: Some(5),
            };
            h = Some(fold(h.as_ref(), t0() + Dur::mins(m), r));
        }
        let h = h.expect("history");
        let b = buckets(&h);
        assert_eq!(b.len(), HISTORY_BUCKETS);
        let newest = t0() + Dur::mins(26 * 60 - 1);
        assert_eq!(b.last().expect("newest").start, start_of(newest));
        assert!(newest - b[0].start < SPAN + BUCKET);
        // Every hour's minute 7 is a peak; its bucket shows it.
        let peaks = b.iter().filter(|x| x.observed == Some(0.95)).count();
        assert_eq!(peaks, 24, "{b:?}");
        assert_eq!(b.last().expect("newest").serving, Some(6));
    }

    /// The budget holds on the worst day: the most resizes, the longest reasons and errors,
    /// sizes and values of the widest form; the oldest resizes go first, and are counted.
    #[test]
    fn worst_case_stays_within_the_byte_budget() {
        let mut h: Option<StatusHistory> = None;
        for m in 0..(24 * 60) {
            let r = Reading {
                observed: Some(1.234_567e-7 * if m % 2 == 0 { -1.0 } else { 1e15 }),
                smoothed: Some(-123_456_789.0),
                serving: Some(u32::MAX),
                desired: Some(u32::MAX - 1),
            };
            h = Some(fold(h.as_ref(), t0() + Dur::mins(m), r));
        }
        let mut h = h.expect("history");
        let now = t0() + Dur::mins(24 * 60 - 1);
        for i in 0..400 {
            let at = t0() + Dur::secs(i * 200 + 1);
            resize_started(&mut h, at, u32::MAX, u32::MAX - 1, "RaiseToStorageFloorWithAVeryLongReasonName");
            resize_finished(&mut h, at, at + Dur::secs(9_999), Some(&"x".repeat(500)));
        }
        prune(&mut h, now);
        let size = bytes(&h);
        assert!(size <= HISTORY_BUDGET_BYTES, "{size} bytes");
        assert!(h.dropped > 0 && !h.resizes.is_empty());
        assert!(h.resizes.len() <= HISTORY_RESIZES);
        // Kept are the newest.
        let newest = h.resizes.last().expect("newest");
        assert_eq!(newest.time, (t0() + Dur::secs(399 * 200 + 1)).to_rfc3339());
        assert!(newest.error.as_ref().is_some_and(|e| e.chars().count() == ERROR_CHARS));
        // And a normal busy day, 100 resizes, keeps every one.
        let mut h = StatusHistory::default();
        for i in 0..100 {
            let at = t0() + Dur::mins(i * 14);
            resize_started(&mut h, at, 4, 5, "ScaleOut");
            resize_finished(&mut h, at, at + Dur::secs(95), None);
        }
        assert_eq!((h.resizes.len(), h.dropped), (100, 0));
    }

    /// A resize is recorded once per start, gets its duration when it ends, and leaves after 24h.
    #[test]
    fn resizes_are_recorded_once_timed_and_expire() {
        let mut h = StatusHistory::default();
        resize_started(&mut h, t0(), 3, 7, "ScaleOutOnSpike");
        resize_started(&mut h, t0(), 3, 7, "ScaleOutOnSpike");
        assert_eq!(h.resizes.len(), 1);
        assert_eq!(h.resizes[0].took_secs, None);
        resize_finished(&mut h, t0(), t0() + Dur::secs(95), None);
        assert_eq!(h.resizes[0].took_secs, Some(95));
        resize_started(&mut h, t0() + Dur::mins(25 * 60), 7, 6, "ScaleIn");
        assert_eq!(h.resizes.len(), 1);
        assert_eq!(h.resizes[0].reason, "ScaleIn");
    }
}
