//! The chart as data for a page that draws it itself: the HTML report's zoomable chart.
//!
//! A static SVG is drawn for one time range. A report of an 8-week replay needs any range, from
//! all of it down to a day, so it embeds the series and a small script draws them. To keep the
//! file small, every series is reduced to the lowest and highest value in each of at most
//! [`MAX_BUCKETS`] equal time buckets; the script reduces those again to pixel columns for the
//! range shown. Keeping both extremes at both steps means a one-sample peak is drawn at every
//! zoom level, never averaged away.

use serde::Serialize;

use super::palette::{LIMIT, PALETTE, TARGET};
use super::{ChartData, MarkerKind, Series, Style};

/// Most buckets a series is reduced to. Eight weeks of one-minute samples become 8-minute
/// buckets: a day still has 180 of them, more than its width in a report needs.
pub const MAX_BUCKETS: usize = 10_000;

/// A chart as the report's script reads it (JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Embedded {
    /// Shown above the chart.
    pub title: String,
    /// Start of the data, epoch milliseconds (UTC); bucket 0 starts here.
    pub start: i64,
    /// End of the data, epoch milliseconds (UTC).
    pub end: i64,
    /// Width of one bucket in milliseconds.
    pub bucket: i64,
    /// The bucket is the samples' own spacing: each bucket holds one sample, at its start, and is
    /// drawn there (a wider bucket's values are drawn at its middle).
    pub per_sample: bool,
    /// The samples' typical spacing in milliseconds (the median gap of the longest series): with
    /// more than a few samples to a pixel column the script draws each column's range as a band
    /// and one line through it, as the SVG chart does, rather than a solid block of zigzags.
    pub spacing: i64,
    /// The load panel first, then one panel per metric, each with its own scale.
    pub panels: Vec<EmbeddedPanel>,
    /// Scale actions and spikes.
    pub markers: Vec<EmbeddedMarker>,
    /// Indices into the first panel's series: the demand and the serving capacity whose gap is
    /// shaded.
    pub shade: Option<(usize, usize)>,
}

/// One panel: its label, series, and target and limit lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedPanel {
    /// The y axis label.
    pub label: String,
    /// The panel's series, in drawing order.
    pub series: Vec<EmbeddedSeries>,
    /// The target line, when the panel is a metric's.
    pub target: Option<f64>,
    /// The limit line, when the panel is a metric's.
    pub limit: Option<f64>,
    /// Colours of the target and limit lines (the same as in the SVG chart).
    pub line_colours: (String, String),
}

/// One series reduced to buckets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedSeries {
    /// Legend name.
    pub name: String,
    /// `line`, `step`, `dashed` or `area`.
    pub style: &'static str,
    /// `#rrggbb`, as the SVG chart colours it.
    pub colour: String,
    /// Drawn as a step line (sizes hold between changes).
    pub stepped: bool,
    /// Lowest value in each bucket; `None` where the bucket has no finite sample.
    pub lo: Vec<Option<f64>>,
    /// Highest value in each bucket; left out when equal to `lo` everywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hi: Option<Vec<Option<f64>>>,
}

/// A marker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedMarker {
    /// When, epoch milliseconds.
    pub t: i64,
    /// `out`, `in` or `spike`.
    pub kind: &'static str,
    /// What happened.
    pub label: String,
}

/// The bucket width for `data`: the typical sample spacing, or wider when that would give more
/// than `max_buckets` buckets over the chart's range; whether it is the spacing; and the spacing.
fn bucket_width(data: &ChartData, max_buckets: usize) -> (i64, bool, i64) {
    let span = (data.end_ms - data.start_ms).max(1);
    let longest = data
        .load
        .iter()
        .chain(&data.sizes)
        .chain(data.metrics.iter().flat_map(|m| &m.series))
        .max_by_key(|s| s.points.len());
    let mut gaps: Vec<i64> =
        longest.map(|s| s.points.windows(2).map(|w| w[1].0 - w[0].0).filter(|g| *g > 0).collect()).unwrap_or_default();
    gaps.sort_unstable();
    let spacing = gaps.get(gaps.len() / 2).copied().unwrap_or(span);
    let buckets = max_buckets.max(1) as i64;
    let widest = (span + buckets - 1) / buckets;
    (spacing.max(widest).max(1), spacing >= widest, spacing.max(1))
}

/// Rounds to 6 significant digits: the page draws at most 1200 pixels high, and shorter numbers
/// keep an 8-week report small.
fn round6(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 5 - v.abs().log10().floor() as i32;
    if !(0..=15).contains(&digits) {
        return v;
    }
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

fn reduce(s: &Series, start: i64, bucket: i64, n: usize) -> (Vec<Option<f64>>, Option<Vec<Option<f64>>>) {
    let mut lo: Vec<Option<f64>> = vec![None; n];
    let mut hi: Vec<Option<f64>> = vec![None; n];
    // The newest sample in each bucket, finite or not, for holding a step's value.
    let mut newest: Vec<Option<f64>> = vec![None; n];
    for &(t, v) in &s.points {
        if t < start {
            continue;
        }
        let i = ((t - start) / bucket) as usize;
        let Some(slot) = newest.get_mut(i) else { continue };
        *slot = Some(v);
        if v.is_finite() {
            lo[i] = Some(lo[i].map_or(v, |l: f64| l.min(v)));
            hi[i] = Some(hi[i].map_or(v, |h: f64| h.max(v)));
        }
    }
    // A step series holds its value through buckets without a sample (sizes change rarely),
    // up to its last sample.
    if matches!(s.style, Style::Step | Style::Dashed) {
        let last_t = s.points.last().map_or(i64::MIN, |p| p.0);
        let mut held: Option<f64> = None;
        for i in 0..n {
            match newest[i] {
                Some(v) => held = v.is_finite().then_some(v),
                None if start + i as i64 * bucket <= last_t => {
                    lo[i] = held;
                    hi[i] = held;
                }
                None => {}
            }
        }
    }
    let lo: Vec<Option<f64>> = lo.into_iter().map(|v| v.map(round6)).collect();
    let hi: Vec<Option<f64>> = hi.into_iter().map(|v| v.map(round6)).collect();
    let hi = (hi != lo).then_some(hi);
    (lo, hi)
}

fn style_name(s: Style) -> &'static str {
    match s {
        Style::Line => "line",
        Style::Step => "step",
        Style::Dashed => "dashed",
        Style::Area => "area",
    }
}

/// `data` reduced to at most `max_buckets` buckets per series, with the same colours, panels,
/// lines and markers as the SVG chart.
pub fn embed(data: &ChartData, max_buckets: usize) -> Embedded {
    let start = data.start_ms;
    let end = data.end_ms.max(start + 1);
    let (bucket, per_sample, spacing) = bucket_width(data, max_buckets);
    let n = ((end - start) / bucket + 1) as usize;
    let colour_of = |i: usize| PALETTE[i % PALETTE.len()].hex();
    let one = |s: &Series, colour: String, stepped: bool| {
        let (lo, hi) = reduce(s, start, bucket, n);
        EmbeddedSeries { name: s.name.clone(), style: style_name(s.style), colour, stepped, lo, hi }
    };
    let (n_load, n_sizes) = (data.load.len(), data.sizes.len());
    let mut top = Vec::new();
    for (i, s) in data.load.iter().enumerate() {
        top.push(one(s, colour_of(i), s.style == Style::Step));
    }
    for (i, s) in data.sizes.iter().enumerate() {
        top.push(one(s, colour_of(n_load + i), matches!(s.style, Style::Step | Style::Dashed)));
    }
    let lines = (TARGET.hex(), LIMIT.hex());
    let mut panels = vec![EmbeddedPanel {
        label: data.y_label.clone(),
        series: top,
        target: None,
        limit: None,
        line_colours: lines.clone(),
    }];
    let mut colour = n_load + n_sizes;
    for m in &data.metrics {
        let mut series = Vec::new();
        for s in &m.series {
            series.push(one(s, colour_of(colour), s.style == Style::Step));
            colour += 1;
        }
        panels.push(EmbeddedPanel {
            label: m.label.clone(),
            series,
            target: m.target,
            limit: m.limit,
            line_colours: lines.clone(),
        });
    }
    let serving = data.sizes.iter().position(|s| s.style == Style::Step).or((!data.sizes.is_empty()).then_some(0));
    let shade = match (data.load.is_empty(), serving) {
        (false, Some(i)) => Some((0, n_load + i)),
        _ => None,
    };
    let markers = data
        .markers
        .iter()
        .map(|m| EmbeddedMarker {
            t: m.at_ms,
            kind: match m.kind {
                MarkerKind::ScaleOut => "out",
                MarkerKind::ScaleIn => "in",
                MarkerKind::Spike => "spike",
            },
            label: m.label.clone(),
        })
        .collect();
    Embedded { title: data.title.clone(), start, end, bucket, per_sample, spacing, panels, markers, shade }
}
