//! The chart's SVG, byte for byte, for a handful of fixed data sets against reviewed snapshots in
//! `tests/snapshots/chart_*.svg`, so a change to the layout or the writer shows up as a diff.
//!
//! The data are made here (no simulator run), so only the chart code can move these files. The
//! cases cover every series style, all three marker kinds, shading, gaps (NaN), decimation of a
//! dense series, legend wrapping, the smallest size, and time axes from seconds to decades. When a
//! change moves the output on purpose, rewrite them with
//! `UPDATE_SNAPSHOTS=1 cargo test --test chart_snapshot` and review the diff.

use std::path::PathBuf;

use ebbflow::chart::{ChartData, Marker, MarkerKind, MetricPanel, Series, Style, render_svg};

/// 2024-03-01T00:00:00Z, a leap year around the start of March.
const T0: i64 = 1_709_251_200_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// Compare with `tests/snapshots/{name}.svg`, or write it when UPDATE_SNAPSHOTS is set.
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.svg"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it", path.display()));
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
        panic!(
            "{} differs from the output (first differing line {line}; {} vs {} bytes).\n\
             Run with UPDATE_SNAPSHOTS=1 to accept, then review the diff.",
            path.display(),
            expected.len(),
            actual.len()
        );
    }
}

/// `n` samples every `step` ms from `start`, valued by `f(i)`.
fn series(start: i64, step: i64, n: usize, f: impl Fn(usize) -> f64) -> Vec<(i64, f64)> {
    (0..n).map(|i| (start + step * i as i64, f(i))).collect()
}

/// A cheap deterministic wobble in [0, 1), so the data look measured without a random source.
fn wobble(i: usize) -> f64 {
    let x = (i as u64).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (x >> 40) as f64 / (1u64 << 24) as f64
}

/// A simulator-like chart: two days of 5-minute samples, a daily cycle with a burst, a serving
/// size that lags demand, a dashed plan, a baseline, markers of every kind, and a per-node panel
/// with a gap.
fn two_days() -> ChartData {
    let step = 5 * MINUTE;
    let n = 2 * 288;
    let demand = |i: usize| {
        let day = (i as f64 / 288.0 * std::f64::consts::TAU).sin();
        let burst = if (300..312).contains(&i) { 6.0 } else { 0.0 };
        4.0 + 2.5 * day + burst + wobble(i)
    };
    let serving = |i: usize| (demand(i.saturating_sub(6)) - 0.5).ceil().max(1.0);
    let desired = |i: usize| (demand(i.saturating_sub(3)) - 0.5).ceil().max(1.0);
    let observed = |i: usize| if (100..110).contains(&i) { f64::NAN } else { 0.45 + 0.3 * wobble(i + 7) };
    let markers = vec![
        Marker { at_ms: T0 + 300 * step, kind: MarkerKind::Spike, label: "spike".into() },
        Marker { at_ms: T0 + 301 * step, kind: MarkerKind::ScaleOut, label: "5->11 ScaleOutOnSpike".into() },
        Marker { at_ms: T0 + 340 * step, kind: MarkerKind::ScaleIn, label: "11->6 ScaleIn".into() },
        Marker { at_ms: T0 + 50 * step, kind: MarkerKind::ScaleOut, label: "3->5 ScaleOut".into() },
    ];
    ChartData {
        title: "ebbflow on two-days".into(),
        start_ms: T0,
        end_ms: T0 + 2 * DAY,
        load: vec![Series::new("demand (nodes at target)", Style::Area, series(T0, step, n, demand))],
        sizes: vec![
            Series::new("ebbflow serving", Style::Step, series(T0, step, n, serving)),
            Series::new("ebbflow desired", Style::Dashed, series(T0, step, n, desired)),
            Series::new("hpa serving", Style::Step, series(T0, step, n, |i| serving(i + 2) + 1.0)),
        ],
        markers,
        y_label: "nodes".into(),
        metrics: vec![
            MetricPanel::new(
                "cpu per node",
                vec![
                    Series::new("observed", Style::Line, series(T0, step, n, observed)),
                    Series::new("smoothed", Style::Line, series(T0, step, n, |i| 0.5 + 0.1 * wobble(i))),
                ],
            )
            .with_lines(Some(0.6), Some(0.8)),
        ],
    }
}

/// A dashboard-like chart: half an hour of 10-second samples, many series so the legend wraps,
/// and no per-node panel.
fn half_hour_one_panel() -> ChartData {
    let step = 10_000;
    let n = 180;
    let load = |i: usize| 10.0 + 5.0 * wobble(i);
    let mut sizes = vec![Series::new("serving", Style::Step, series(T0, step, n, |i| 8.0 + (i / 40) as f64))];
    for k in 0..6 {
        let style = [Style::Line, Style::Dashed, Style::Step][k % 3];
        sizes.push(Series::new(
            format!("baseline number {k} with a long name"),
            style,
            series(T0, step * 3, n / 3, move |i| 6.0 + k as f64 + wobble(i + k)),
        ));
    }
    ChartData {
        title: "data/orders: a dashboard chart whose title is long enough to meet the time range".into(),
        start_ms: T0 + 7 * MINUTE,
        end_ms: T0 + 37 * MINUTE,
        load: vec![Series::new("load", Style::Line, series(T0 + 7 * MINUTE, step, n, load))],
        sizes,
        markers: vec![Marker { at_ms: T0 + 20 * MINUTE, kind: MarkerKind::ScaleIn, label: "<&\"'> escaped".into() }],
        y_label: "nodes".into(),
        metrics: vec![],
    }
}

/// A dense series (one sample a second for six hours) that must be decimated to pixel columns,
/// with negative and fractional values.
fn dense() -> ChartData {
    let n = 6 * 3600;
    let v = |i: usize| (i as f64 / 900.0).sin() * 0.75 + if i.is_multiple_of(997) { 2.0 } else { 0.0 } - 0.2;
    ChartData {
        title: "dense".into(),
        start_ms: T0,
        end_ms: T0 + n as i64 * 1000,
        load: vec![Series::new("demand", Style::Area, series(T0, 1000, n, v))],
        sizes: vec![Series::new("serving", Style::Step, series(T0, 60_000, n / 60, |i| v(i * 60).ceil()))],
        markers: vec![],
        y_label: "units".into(),
        metrics: vec![MetricPanel::new(
            "tiny values",
            vec![Series::new("observed", Style::Line, series(T0, 1000, n, |i| v(i) * 1e-3))],
        )],
    }
}

/// One data set, drawn over a given span: the time axis is what varies.
fn over(start: i64, end: i64, title: &str) -> ChartData {
    let n = 50;
    let step = ((end - start) / n as i64).max(1);
    ChartData {
        title: title.into(),
        start_ms: start,
        end_ms: end,
        load: vec![Series::new("demand", Style::Area, series(start, step, n, |i| 2.0 + wobble(i) * 3.0))],
        sizes: vec![Series::new("serving", Style::Step, series(start, step, n, |i| 3.0 + (i % 7) as f64))],
        markers: vec![Marker { at_ms: start + step * 10, kind: MarkerKind::ScaleOut, label: "3->4".into() }],
        y_label: "nodes".into(),
        metrics: vec![MetricPanel::new(
            "cpu",
            vec![Series::new("observed", Style::Line, series(start, step, n, wobble))],
        )],
    }
}

#[test]
fn two_days_chart() {
    snapshot("chart_two_days", &render_svg(&two_days(), 1200, 720));
}

#[test]
fn half_hour_chart_without_per_node_panel() {
    snapshot("chart_half_hour", &render_svg(&half_hour_one_panel(), 1100, 520));
}

#[test]
fn dense_chart_is_decimated() {
    snapshot("chart_dense", &render_svg(&dense(), 800, 400));
}

/// Time axes from seconds to decades, including weekly ticks (on Mondays), a span across a year
/// end, and a size below the minimum.
#[test]
fn time_axes_at_every_scale() {
    let mut all = String::new();
    let cases = [
        (T0 + 17_000, T0 + 107_000, 600, 300),
        (T0 - 3 * 3_600_000, T0 + 5 * 3_600_000, 600, 300),
        (T0, T0 + 45 * DAY, 600, 300),
        (T0 - 70 * DAY, T0 + 300 * DAY, 900, 300),
        (0, 30 * 365 * DAY, 600, 300),
        (T0, T0 + 1, 100, 50),
        (T0, T0, 160, 120),
    ];
    for (start, end, w, h) in cases {
        all.push_str(&render_svg(&over(start, end, &format!("{start}..{end}")), w, h));
        all.push('\n');
    }
    snapshot("chart_time_axes", &all);
}
