//! The chart's SVG, byte for byte, for a handful of fixed data sets against reviewed snapshots in
//! `tests/snapshots/chart_*.svg`, so a change to the layout or the writer shows up as a diff.
//!
//! The data are made here (no simulator run), so only the chart code can move these files. The
//! cases cover every series style, all three marker kinds, shading, gaps (NaN), decimation of a
//! dense series, legend wrapping, the smallest size, and time axes from seconds to decades. When a
//! change moves the output on purpose, rewrite them with
//! `UPDATE_SNAPSHOTS=1 cargo test --test it chart_snapshot::` and review the diff.
//!
//! The other tests read the SVG as a person sees it, from its text positions and point lists:
//! the labels of close target and limit lines do not overprint each other, and a long span (a
//! synthesized seven months, and the bundled 62-day replay as `simulate --chart` draws it) is a
//! line of at most one point per pixel column with the range around it, not a solid band.

use std::path::PathBuf;

use ebbflow::chart::{
    ChartData, DEFAULT_HEIGHT, DEFAULT_WIDTH, Marker, MarkerKind, MetricPanel, Series, Style, render_svg,
};

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

/// The value of attribute `name` in the element text `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(&tag[at..at + tag[at..].find('"')?])
}

fn num_attr(tag: &str, name: &str) -> f64 {
    let v = attr(tag, name).unwrap_or_else(|| panic!("no {name} in {tag}"));
    v.parse().unwrap_or_else(|_| panic!("{name}={v:?} in {tag}"))
}

/// A label's box as a browser lays it out: the SVG's font is 11 px monospace, whose glyphs
/// advance 0.6 em and reach 0.8 em above the baseline and 0.25 em below it.
#[derive(Debug, Clone, Copy)]
struct TextBox {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl TextBox {
    fn overlaps(&self, o: &TextBox) -> bool {
        self.left < o.right && o.left < self.right && self.top < o.bottom && o.top < self.bottom
    }
}

/// The box of the `<text>` element whose content is `content`.
fn text_box(svg: &str, content: &str) -> TextBox {
    let line = svg
        .lines()
        .find(|l| l.starts_with("<text ") && l.ends_with(&format!(">{content}</text>")))
        .unwrap_or_else(|| panic!("no text {content:?}"));
    let (x, y) = (num_attr(line, "x"), num_attr(line, "y"));
    let size = 11.0;
    let w = content.chars().count() as f64 * 0.6 * size;
    let left = match attr(line, "text-anchor") {
        Some("end") => x - w,
        Some("middle") => x - w / 2.0,
        _ => x,
    };
    TextBox { left, right: left + w, top: y - 0.8 * size, bottom: y + 0.25 * size }
}

/// The points of every `<polyline>` whose tooltip is `title`.
fn polylines(svg: &str, title: &str) -> Vec<Vec<(f64, f64)>> {
    svg.lines()
        .filter(|l| l.starts_with("<polyline ") && l.ends_with(&format!("<title>{title}</title></polyline>")))
        .map(|l| {
            attr(l, "points")
                .expect("points")
                .split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').expect("x,y");
                    (x.parse().expect("x"), y.parse().expect("y"))
                })
                .collect()
        })
        .collect()
}

/// The points of every `<polygon>` of `class` whose tooltip starts with `title`.
fn polygons(svg: &str, class: &str, title: &str) -> Vec<Vec<(f64, f64)>> {
    svg.lines()
        .filter(|l| {
            l.starts_with("<polygon ") && attr(l, "class") == Some(class) && l.contains(&format!("<title>{title}"))
        })
        .map(|l| {
            attr(l, "points")
                .expect("points")
                .split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').expect("x,y");
                    (x.parse().expect("x"), y.parse().expect("y"))
                })
                .collect()
        })
        .collect()
}

/// The plot rectangles (x, y, width, height), one per panel, from the SVG's clip paths.
fn plots(svg: &str) -> Vec<(f64, f64, f64, f64)> {
    svg.split("<clipPath ")
        .skip(1)
        .map(|c| {
            let rect = &c[c.find("<rect").expect("rect")..];
            (num_attr(rect, "x"), num_attr(rect, "y"), num_attr(rect, "width"), num_attr(rect, "height"))
        })
        .collect()
}

/// A chart whose metric panel has the target and limit lines `lines` and observed values that
/// stay near them but for one spike to `spike`, which stretches the axis so the two lines lie a
/// few pixels apart.
fn close_lines(lines: (f64, f64), spike: f64) -> ChartData {
    let step = 5 * MINUTE;
    let n = 288;
    ChartData {
        title: "close target and limit".into(),
        start_ms: T0,
        end_ms: T0 + DAY,
        load: vec![Series::new("demand", Style::Area, series(T0, step, n, |i| 4.0 + wobble(i)))],
        sizes: vec![Series::new("serving", Style::Step, series(T0, step, n, |_| 5.0))],
        markers: vec![],
        y_label: "nodes".into(),
        metrics: vec![
            MetricPanel::new(
                "cpu per node",
                vec![Series::new(
                    "observed",
                    Style::Line,
                    series(T0, step, n, |i| if i == 140 { spike } else { lines.0 * (0.8 + 0.3 * wobble(i)) }),
                )],
            )
            .with_lines(Some(lines.0), Some(lines.1)),
        ],
    }
}

/// Target 0.6 and limit 0.75 on an axis a spike stretched to 10 (or to 2, which puts the lines
/// mid-plot), and 60 and 75 on one stretched to 1,000: the lines are a few pixels apart, and
/// each label sat 4 px above its own line, so the two printed over each other. Now their boxes
/// (from the text positions and the font size) are apart, inside the plot, and each within two
/// label heights of its own line.
#[test]
fn labels_of_close_target_and_limit_lines_do_not_overlap() {
    for (lines, spike, target, limit) in [
        ((0.6, 0.75), 10.0, "target 0.6", "limit 0.75"),
        ((0.6, 0.75), 2.0, "target 0.6", "limit 0.75"),
        ((60.0, 75.0), 1000.0, "target 60", "limit 75"),
    ] {
        for (w, h) in [(1200, 720), (800, 400)] {
            let svg = render_svg(&close_lines(lines, spike), w, h);
            let (t, l) = (text_box(&svg, target), text_box(&svg, limit));
            assert!(!t.overlaps(&l), "{w}x{h}: {target} at {t:?} overprints {limit} at {l:?}");
            let (_, py, _, ph) = plots(&svg)[1];
            for (name, b) in [(target, t), (limit, l)] {
                let line_y = polylines(&svg, name).first().unwrap_or_else(|| panic!("no line {name}"))[0].1;
                assert!(b.top >= py - 1.0 && b.bottom <= py + ph + 1.0, "{w}x{h}: {name} at {b:?} outside the plot");
                let mid = (b.top + b.bottom) / 2.0;
                assert!((mid - line_y).abs() <= 24.0, "{w}x{h}: {name} at {b:?} is far from its line at y={line_y}");
            }
        }
    }
}

/// Whether the x of `pts` only grows: the line never doubles back.
fn forward(pts: &[(f64, f64)]) -> bool {
    pts.windows(2).all(|w| w[0].0 <= w[1].0)
}

/// Seven months of one-minute samples (302,400) with a single-sample spike: the observed and
/// demand lines have at most one point per pixel column (drawn sample by sample, every column
/// held its first, lowest, highest and last sample, and the line filled the plot as a solid
/// band), and the band of each column's range still reaches the spike.
#[test]
fn a_seven_month_chart_is_a_line_of_one_point_per_column_with_its_range_as_a_band() {
    let n = 7 * 30 * 24 * 60;
    let spike_at = n / 3;
    let day = |i: usize| (i as f64 / 1440.0 * std::f64::consts::TAU).sin();
    let observed = |i: usize| if i == spike_at { 3.0 } else { 0.45 + 0.1 * day(i) + 0.15 * wobble(i) };
    let data = ChartData {
        title: "seven months".into(),
        start_ms: T0,
        end_ms: T0 + n as i64 * MINUTE,
        load: vec![Series::new("demand", Style::Area, series(T0, MINUTE, n, |i| 8.0 * observed(i)))],
        sizes: vec![Series::new("serving", Style::Step, series(T0, MINUTE, n, |i| 4.0 + (i / 20_000) as f64))],
        markers: vec![],
        y_label: "nodes".into(),
        metrics: vec![
            MetricPanel::new(
                "cpu per node",
                vec![Series::new("observed", Style::Line, series(T0, MINUTE, n, observed))],
            )
            .with_lines(Some(0.6), Some(0.75)),
        ],
    };
    let svg = render_svg(&data, DEFAULT_WIDTH, DEFAULT_HEIGHT);
    let panels = plots(&svg);
    let columns = panels[0].2.ceil();
    for (name, panel) in [("observed", panels[1]), ("demand", panels[0])] {
        let lines = polylines(&svg, name);
        let points: usize = lines.iter().map(Vec::len).sum();
        assert!(!lines.is_empty() && points as f64 <= columns + 4.0, "{name}: {points} points for {columns} columns");
        assert!(lines.iter().all(|l| forward(l)), "{name} doubles back");
        let band = polygons(&svg, "envelope", &format!("{name}:"));
        assert_eq!(band.len(), 1, "{name}: one band for one run");
        let band_top = band[0].iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let line_top = lines.iter().flatten().map(|p| p.1).fold(f64::INFINITY, f64::min);
        // The spike is more than four times the next highest value and sets the scale: the band
        // reaches near the top of the plot, while the means stay in its lower part.
        let (_, py, _, ph) = panel;
        assert!(band_top < py + 0.2 * ph, "{name}: the band tops at y={band_top}, plot from {py} ({ph} high)");
        assert!(line_top > py + 0.6 * ph, "{name}: the line tops at y={line_top}, plot from {py} ({ph} high)");
    }
    // A size that changes a few times in seven months stays an exact step line.
    let serving = polylines(&svg, "serving");
    assert!(polygons(&svg, "envelope", "serving:").is_empty(), "a rare step is no band");
    assert!(serving.iter().map(Vec::len).sum::<usize>() < 60, "{serving:?}");
}

/// `simulate --chart` on the bundled 62-day replay (89,000 one-minute evaluations in about
/// 1,100 columns): every series' path has at most two points per pixel column (one for a line,
/// two for a step's corners), and the lines are drawn with their range.
#[test]
fn the_62_day_replay_chart_has_a_bounded_path_per_pixel_column() {
    let scenario =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("simulations/scenarios/asg-misconfiguration-62d.yaml");
    let sc = ebbflow::sim::cli::SimulateArgs { scenario: Some(scenario), ..Default::default() }
        .scenario()
        .expect("scenario");
    let run = ebbflow::sim::run_policy(&sc);
    let data = ebbflow::sim::chart::chart_data(&sc, std::slice::from_ref(&run));
    let svg = render_svg(&data, DEFAULT_WIDTH, DEFAULT_HEIGHT);
    let columns = plots(&svg)[0].2.ceil();
    let names: Vec<String> = data
        .load
        .iter()
        .chain(&data.sizes)
        .chain(data.metrics.iter().flat_map(|m| &m.series))
        .map(|s| s.name.clone())
        .collect();
    for name in &names {
        let points: usize = polylines(&svg, name).iter().map(Vec::len).sum();
        assert!(points as f64 <= 2.0 * columns + 8.0, "{name}: {points} points for {columns} columns");
    }
    for name in ["observed", "smoothed", "demand (nodes at target)"] {
        let points: usize = polylines(&svg, name).iter().map(Vec::len).sum();
        assert!(points > 0 && points as f64 <= columns + 8.0, "{name}: {points} points for {columns} columns");
        assert!(!polygons(&svg, "envelope", &format!("{name}:")).is_empty(), "{name} has no band");
    }
}
