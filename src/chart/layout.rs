//! From [`ChartData`] to a [`Scene`]: the panels with their series and legends, where they sit, and
//! their scales. Drawing the laid-out panels is [`super::draw`]'s part.

use super::draw;
use super::marks::legend_item_width;
use super::palette::{LIMIT, PALETTE, Rgb, TARGET, WHITE};
use super::reduce::visible;
use super::scene::{
    LEGEND_ROW_H, MARKER_STRIP_H, PAD, PANEL_GAP, RIGHT_MARGIN, Rect, Scene, TIME_LABEL_H, TITLE_H, text_width,
};
use super::ticks::{decimals_for, fitted_ticks, format_value, time_ticks};
use super::{ChartData, Marker, MarkerKind, Series, Style};

/// One series as the layout sees it: its colour and whether it is drawn as steps.
pub(super) struct Drawn<'a> {
    pub(super) series: &'a Series,
    pub(super) colour: Rgb,
    pub(super) stepped: bool,
}

/// What a legend entry shows before its name.
pub(super) enum LegendSwatch {
    Series(Style, Rgb),
    Shade,
    Marker(MarkerKind),
}

/// One panel of the chart: its series, legend, place and value scale.
pub(super) struct Panel<'a> {
    pub(super) label: String,
    pub(super) series: Vec<Drawn<'a>>,
    pub(super) legend: Vec<(LegendSwatch, String)>,
    /// Indices into `legend`, one list per row of the header.
    pub(super) legend_rows: Vec<Vec<usize>>,
    pub(super) rect: Rect,
    pub(super) header_y: f64,
    pub(super) y_lo: f64,
    pub(super) y_hi: f64,
    pub(super) y_ticks: Vec<f64>,
    pub(super) y_decimals: usize,
    /// Horizontal reference lines: the metric's target and limit, each with its name.
    pub(super) lines: Vec<(&'static str, f64, Rgb)>,
}

impl<'a> Panel<'a> {
    /// A panel not yet placed or scaled.
    fn new(label: &str) -> Self {
        Panel {
            label: label.to_owned(),
            series: Vec::new(),
            legend: Vec::new(),
            legend_rows: Vec::new(),
            rect: Rect { x: 0.0, y: 0.0, w: 0.0, h: 0.0 },
            header_y: 0.0,
            y_lo: 0.0,
            y_hi: 1.0,
            y_ticks: Vec::new(),
            y_decimals: 0,
            lines: Vec::new(),
        }
    }

    /// Pixel row of `v`, always finite: a value beyond the scale (only possible past the
    /// ±f64::MAX / 4 the scale is capped at) is drawn just outside the plot, where it is clipped.
    pub(super) fn y_px(&self, v: f64) -> f64 {
        let f = (v - self.y_lo) / (self.y_hi - self.y_lo);
        let f = if f.is_nan() { 0.0 } else { f.clamp(-1.0, 2.0) };
        self.rect.bottom() - f * self.rect.h
    }
}

/// Everything the drawing needs besides the panels: the time range and its pixel mapping, the
/// time ticks, and the markers that fall in the range.
pub(super) struct Frame<'a> {
    pub(super) data: &'a ChartData,
    pub(super) width: f64,
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) plot_x: f64,
    pub(super) plot_w: f64,
    pub(super) ticks: Vec<(i64, String)>,
    pub(super) markers: Vec<&'a Marker>,
    /// The demand series and the serving series whose gap is shaded.
    pub(super) shortfall: Option<(&'a Series, &'a Series)>,
    pub(super) has_markers: bool,
    /// A spike and the scale-out it causes share a timestamp, so spikes get a lane of their own.
    pub(super) spike_lane: bool,
}

impl Frame<'_> {
    /// Pixel column of time `t`.
    pub(super) fn x_px(&self, t: i64) -> f64 {
        // In i128: the span of two arbitrary i64 times does not fit an i64.
        let span_ms = (i128::from(self.end) - i128::from(self.start)).max(1) as f64;
        self.plot_x + (i128::from(t) - i128::from(self.start)) as f64 / span_ms * self.plot_w
    }
}

/// Lays out `data` at `width` × `height` and draws it.
pub(super) fn build_scene(data: &ChartData, width: u32, height: u32) -> Scene {
    // Tiny sizes would give negative plot areas; the chart is unreadable below this anyway.
    let width = width.max(160);
    let height = height.max(120);
    let (w, h) = (f64::from(width), f64::from(height));
    let start = data.start_ms;
    let end = if data.end_ms > data.start_ms { data.end_ms } else { data.start_ms.saturating_add(1) };

    let mut scene = Scene { width, height, title: data.title.clone(), clips: Vec::new(), prims: Vec::new() };
    scene.rect(Rect { x: 0.0, y: 0.0, w, h }, WHITE, 1.0);

    let shortfall = shortfall_pair(data);
    let marker_kinds = marker_kinds(data, start, end);
    let mut panels = panels(data);
    if shortfall.is_some() {
        panels[0].legend.push((LegendSwatch::Shade, "demand > serving".to_owned()));
    }
    for &kind in &marker_kinds {
        panels[0].legend.push((LegendSwatch::Marker(kind), marker_name(kind).to_owned()));
    }
    // Horizontal layout: the legend is laid out against the right edge before the y tick labels
    // are known, so it is wrapped against the full width left of the panel label.
    let plot_right = w - RIGHT_MARGIN;
    for p in &mut panels {
        p.legend_rows = wrap_legend(p, plot_right);
    }
    let has_markers = !marker_kinds.is_empty();
    let spike_lane = marker_kinds.contains(&MarkerKind::Spike) && marker_kinds.len() > 1;
    place_vertically(&mut panels, h, has_markers.then_some(strip_height(spike_lane)));
    let plot_x = fit_y_scales(&mut panels, start, end);
    for p in &mut panels {
        p.rect.x = plot_x;
        p.rect.w = (plot_right - plot_x).max(20.0);
    }
    let plot_w = panels[0].rect.w;
    let frame = Frame {
        data,
        width: w,
        start,
        end,
        plot_x,
        plot_w,
        ticks: time_ticks(start, end, plot_w),
        markers: data.markers.iter().filter(|m| m.at_ms >= start && m.at_ms <= end).collect(),
        shortfall,
        has_markers,
        spike_lane,
    };
    draw::title(&mut scene, &frame);
    for (pi, p) in panels.iter().enumerate() {
        draw::panel(&mut scene, &frame, p, pi == 0, pi + 1 == panels.len());
    }
    scene
}

/// The demand (first load series) and the serving capacity (the first step series among the
/// sizes, or else the first size) whose gap is shaded, when there are both.
fn shortfall_pair(data: &ChartData) -> Option<(&Series, &Series)> {
    let serving = data.sizes.iter().find(|s| s.style == Style::Step).or(data.sizes.first());
    Some((data.load.first()?, serving?))
}

/// The kinds of marker inside the time range, in legend order.
fn marker_kinds(data: &ChartData, start: i64, end: i64) -> Vec<MarkerKind> {
    [MarkerKind::ScaleOut, MarkerKind::ScaleIn, MarkerKind::Spike]
        .into_iter()
        .filter(|&kind| data.markers.iter().any(|m| m.kind == kind && m.at_ms >= start && m.at_ms <= end))
        .collect()
}

/// A marker kind as the legend and the tooltips name it.
pub(super) fn marker_name(kind: MarkerKind) -> &'static str {
    match kind {
        MarkerKind::ScaleOut => "scale out",
        MarkerKind::ScaleIn => "scale in",
        MarkerKind::Spike => "spike",
    }
}

/// The upper panel, and the per-node panel when there is one, with their series and legends.
fn panels(data: &ChartData) -> Vec<Panel<'_>> {
    // Colours are assigned across all panels so no two legend entries share one.
    let colour_of = |i: usize| PALETTE[i % PALETTE.len()];
    let (n_load, n_sizes) = (data.load.len(), data.sizes.len());
    let mut top = Panel::new(&data.y_label);
    // Sizes are drawn before the load so the demand line stays on top where they meet.
    for (i, s) in data.sizes.iter().enumerate() {
        let stepped = matches!(s.style, Style::Step | Style::Dashed);
        top.series.push(Drawn { series: s, colour: colour_of(n_load + i), stepped });
    }
    for (i, s) in data.load.iter().enumerate() {
        top.series.push(Drawn { series: s, colour: colour_of(i), stepped: s.style == Style::Step });
    }
    for (i, s) in data.load.iter().chain(&data.sizes).enumerate() {
        top.legend.push((LegendSwatch::Series(s.style, colour_of(i)), s.name.clone()));
    }
    let mut panels = vec![top];
    let mut colour_index = n_load + n_sizes;
    for m in &data.metrics {
        let mut p = Panel::new(&m.label);
        for s in &m.series {
            let colour = colour_of(colour_index);
            colour_index += 1;
            p.series.push(Drawn { series: s, colour, stepped: s.style == Style::Step });
            p.legend.push((LegendSwatch::Series(s.style, colour), s.name.clone()));
        }
        for (name, value, colour) in [("target", m.target, TARGET), ("limit", m.limit, LIMIT)] {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                p.lines.push((name, v, colour));
                p.legend.push((LegendSwatch::Series(Style::Dashed, colour), name.to_owned()));
            }
        }
        panels.push(p);
    }
    panels
}

/// The panel's legend entries in rows that fit between its label and `plot_right`; at least one
/// row, possibly empty.
fn wrap_legend(p: &Panel<'_>, plot_right: f64) -> Vec<Vec<usize>> {
    let avail = (plot_right - PAD - text_width(&p.label) - 24.0).max(80.0);
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut row_w = 0.0;
    for (i, (_, name)) in p.legend.iter().enumerate() {
        let item_w = legend_item_width(name);
        if rows.is_empty() || row_w + item_w > avail {
            rows.push(Vec::new());
            row_w = 0.0;
        }
        row_w += item_w;
        if let Some(r) = rows.last_mut() {
            r.push(i);
        }
    }
    if rows.is_empty() {
        rows.push(Vec::new());
    }
    rows
}

/// Height of the marker strip under the upper panel.
pub(super) fn strip_height(spike_lane: bool) -> f64 {
    if spike_lane { 2.0 * MARKER_STRIP_H - 2.0 } else { MARKER_STRIP_H }
}

/// Sets each panel's header row and plot height: the headers, the marker strip (`strip`, when
/// there are markers) and the time labels take what they need, the plots share the rest.
fn place_vertically(panels: &mut [Panel<'_>], h: f64, strip: Option<f64>) {
    let header_h = |p: &Panel<'_>| p.legend_rows.len() as f64 * LEGEND_ROW_H + 6.0;
    let mut fixed = PAD + TITLE_H + TIME_LABEL_H + PAD;
    for p in panels.iter() {
        fixed += header_h(p);
    }
    fixed += strip.unwrap_or(0.0);
    fixed += PANEL_GAP * (panels.len() as f64 - 1.0);
    let avail_h = (h - fixed).max(40.0);
    // The load panel keeps the larger part; the metric panels share the rest equally.
    let metric_panels = panels.len() as f64 - 1.0;
    let top_share = match panels.len() {
        1 => 1.0,
        2 => 0.6,
        _ => 0.45,
    };
    let mut y = PAD + TITLE_H;
    for (i, p) in panels.iter_mut().enumerate() {
        p.header_y = y;
        y += header_h(p);
        let share = if i == 0 { top_share } else { (1.0 - top_share) / metric_panels };
        let ph = (avail_h * share).floor();
        p.rect = Rect { x: 0.0, y, w: 0.0, h: ph };
        y += ph;
        if i == 0 {
            y += strip.unwrap_or(0.0);
        }
        y += PANEL_GAP;
    }
}

/// Sets each panel's value scale from the data in the time range, and returns the left edge of
/// the plots: right of the widest y tick label.
fn fit_y_scales(panels: &mut [Panel<'_>], start: i64, end: i64) -> f64 {
    let mut label_w: f64 = 0.0;
    for p in panels.iter_mut() {
        let (lo, hi) = value_range(p, start, end);
        let target = (p.rect.h / 45.0).clamp(2.0, 8.0);
        let (ticks, step) = fitted_ticks(lo, hi, target);
        p.y_lo = ticks.first().copied().unwrap_or(lo);
        p.y_hi = ticks.last().copied().unwrap_or(hi);
        p.y_decimals = decimals_for(step);
        p.y_ticks = ticks;
        for t in &p.y_ticks {
            label_w = label_w.max(text_width(&format_value(*t, p.y_decimals)));
        }
    }
    (PAD + label_w + 8.0).round()
}

/// The range a panel's scale must show: its finite values in the time range and its target and
/// limit lines, with zero always included (nodes and utilizations are read against zero) and a
/// little headroom on top.
fn value_range(p: &Panel<'_>, start: i64, end: i64) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, f64::NEG_INFINITY);
    for &(_, v, _) in &p.lines {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    for d in &p.series {
        for &(t, v) in visible(&d.series.points, start, end) {
            if v.is_finite() && t >= start && t <= end {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    // The scale spans at most f64::MAX / 2, so every difference below stays finite; a range
    // too small to divide into ticks (all values equal, or subnormal) is drawn as flat.
    let cap = f64::MAX / 4.0;
    let (lo, mut hi) = (lo.max(-cap), hi.min(cap));
    if !hi.is_finite() || hi - lo < f64::MIN_POSITIVE * 1e10 || hi - lo < lo.abs() * 1e-9 {
        hi = lo + lo.abs().max(1.0);
    }
    // Headroom keeps a line at the maximum from merging into the panel's top edge.
    (lo, hi + (hi - lo) * 0.03)
}
