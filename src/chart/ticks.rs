//! Axis ticks and labels: round value steps, and UTC time ticks at round times.

use super::scene::text_width;

/// Ticks on multiples of 1, 2 or 5 × 10ⁿ covering `lo..=hi`, about `target` of them.
pub(super) fn nice_ticks(lo: f64, hi: f64, target: f64) -> (Vec<f64>, f64) {
    let raw = (hi - lo) / target.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    // A range the scale could not divide (callers avoid it) gets its two ends as ticks rather
    // than an unbounded or empty list.
    if !(step.is_finite() && step > 0.0 && first.is_finite() && last.is_finite() && last - first <= 1000.0) {
        return (vec![lo, hi], hi - lo);
    }
    // Multiplying an integer by the step avoids the drift of repeated addition.
    ((first as i64..=last as i64).map(|k| k as f64 * step).collect(), step)
}

/// [`nice_ticks`] for about `target` to `target + 2` ticks, whichever wastes the least of the
/// panel above the data: rounding 1.03 up to 1.5 would squash the data into two thirds of it.
pub(super) fn fitted_ticks(lo: f64, hi: f64, target: f64) -> (Vec<f64>, f64) {
    let mut best = nice_ticks(lo, hi, target);
    let waste = |t: &(Vec<f64>, f64)| match (t.0.first(), t.0.last()) {
        (Some(a), Some(b)) if b > a => (b - hi) / (b - a),
        _ => 1.0,
    };
    for extra in [1.0, 2.0] {
        let candidate = nice_ticks(lo, hi, target + extra);
        if waste(&candidate) < waste(&best) - 0.05 {
            best = candidate;
        }
    }
    best
}

pub(super) fn decimals_for(step: f64) -> usize {
    if step >= 1.0 { 0 } else { (-step.log10()).ceil().max(0.0) as usize }
}

pub(super) fn format_value(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    // "-0" and "-0.0" come from tiny negative rounding noise.
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_owned()
    } else {
        s
    }
}

pub(super) const SECOND: i64 = 1_000;
pub(super) const MINUTE: i64 = 60 * SECOND;
pub(super) const HOUR: i64 = 60 * MINUTE;
pub(super) const DAY: i64 = 24 * HOUR;
/// Ticks of a year or more sit on 364-day multiples, like the longest step before them.
pub(super) const YEAR: i64 = 364 * DAY;

/// Time ticks at round UTC times with labels; the interval is the smallest that leaves room
/// between labels.
pub(super) fn time_ticks(start: i64, end: i64, plot_w: f64) -> Vec<(i64, String)> {
    const STEPS: [i64; 30] = [
        SECOND,
        2 * SECOND,
        5 * SECOND,
        10 * SECOND,
        15 * SECOND,
        30 * SECOND,
        MINUTE,
        2 * MINUTE,
        5 * MINUTE,
        10 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        14 * DAY,
        28 * DAY,
        56 * DAY,
        182 * DAY,
        364 * DAY,
        2 * YEAR,
        5 * YEAR,
        10 * YEAR,
        100 * YEAR,
        1000 * YEAR,
    ];
    let span = (i128::from(end) - i128::from(start)).max(1);
    let multi_day = start.div_euclid(DAY) != end.div_euclid(DAY) && span > i128::from(HOUR);
    let mut chosen = STEPS[STEPS.len() - 1];
    for step in STEPS {
        let label_w = text_width(&format_tick(start, step, multi_day)) + 24.0;
        let count = span as f64 / step as f64;
        if count * label_w <= plot_w {
            chosen = step;
            break;
        }
    }
    // Spans beyond the table (any i64 range is accepted) still get a bounded number of ticks.
    let most = (plot_w / 40.0).max(1.0) as i128;
    if span / i128::from(chosen) > most {
        chosen = i64::try_from(span / most + 1).unwrap_or(i64::MAX);
    }
    // Weekly ticks fall on Mondays; 1970-01-01 was a Thursday, four days after one.
    let offset = if chosen >= 7 * DAY { 4 * DAY } else { 0 };
    let mut t = start.saturating_sub(offset).div_euclid(chosen).saturating_mul(chosen).saturating_add(offset);
    if t < start {
        t = t.saturating_add(chosen);
    }
    let mut out = Vec::new();
    while t >= start && t <= end {
        out.push((t, format_tick(t, chosen, multi_day)));
        match t.checked_add(chosen) {
            Some(next) => t = next,
            None => break,
        }
    }
    out
}

/// The label of a time tick; the more the ticks are apart, the less it says.
pub(super) fn format_tick(t: i64, step: i64, multi_day: bool) -> String {
    let Some(dt) = utc(t) else { return OUT_OF_RANGE.to_owned() };
    let (y, mo, d, hh, mm, ss) = (dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute(), dt.second());
    if step >= 2 * YEAR {
        format!("{y:04}")
    } else if step >= DAY {
        format!("{mo:02}-{d:02}")
    } else if step < MINUTE {
        format!("{hh:02}:{mm:02}:{ss:02}")
    } else if multi_day {
        format!("{mo:02}-{d:02} {hh:02}:{mm:02}")
    } else {
        format!("{hh:02}:{mm:02}")
    }
}

/// A time in full to the minute, e.g. `2026-04-16 12:00`, for the title's range and tooltips.
pub(super) fn format_full(t: i64) -> String {
    match utc(t) {
        Some(dt) => format!("{:04}-{:02}-{:02} {:02}:{:02}", dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute()),
        None => OUT_OF_RANGE.to_owned(),
    }
}

/// The label of a time outside the years -9999 to 9999: no trace the simulator accepts gets
/// there, but the chart draws any `i64` range without panicking.
const OUT_OF_RANGE: &str = "?";

/// The UTC calendar date and time of epoch milliseconds, or `None` beyond what `jiff` represents.
pub(super) fn utc(t: i64) -> Option<jiff::civil::DateTime> {
    jiff::Timestamp::from_millisecond(t).ok().map(|ts| jiff::tz::Offset::UTC.to_datetime(ts))
}
