//! The time-series chart that `ebbflow simulate --chart` and the dashboard both draw, so a dry run
//! and production look alike.
//!
//! [`ChartData`] is laid out once into a *scene*: a flat list of drawing primitives in pixel space,
//! which is then written out as SVG text ([`render_svg`]). SVG is the only format: every browser
//! shows it, the dashboard and the HTML report inline it, and any SVG tool turns it into a bitmap.
//!
//! Layout, top to bottom: the title (with the UTC time range on the right); the load panel, where
//! demand is drawn against capacity (serving as a step line, desired as a dashed step) and the
//! area where demand exceeds serving is shaded; a strip of scale-out ▲, scale-in ▼ and spike ◆
//! markers; the optional per-node panel (observed and smoothed values against the target); and
//! the shared UTC time axis.
//!
//! Long series are decimated to the first, minimum, maximum and last sample of each pixel column
//! before drawing, which keeps single-sample peaks visible while holding an SVG of 100k-point
//! series well under a megabyte.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// Width in pixels that [`write_chart`] uses.
pub const DEFAULT_WIDTH: u32 = 1200;
/// Height in pixels that [`write_chart`] uses.
pub const DEFAULT_HEIGHT: u32 = 720;

/// Everything one chart shows. Build it from simulator rows or dashboard history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartData {
    /// Shown at the top left; also the SVG `<title>`.
    pub title: String,
    /// Left end of the time axis, epoch milliseconds (UTC).
    pub start_ms: i64,
    /// Right end of the time axis, epoch milliseconds (UTC).
    pub end_ms: i64,
    /// Upper panel: the load in capacity units (nodes), e.g. "demand" (nodes needed at target).
    ///
    /// The first series is the demand that the shading compares against serving capacity.
    pub load: Vec<Series>,
    /// Upper panel too: sizes, e.g. "serving", "desired" and baselines.
    ///
    /// The first [`Style::Step`] series (or else the first series) is the serving capacity:
    /// wherever the first `load` series is above it, the gap is shaded as under-provisioned.
    /// Sizes hold between changes, so [`Style::Dashed`] series here are drawn as dashed steps.
    pub sizes: Vec<Series>,
    /// Scale actions and spikes, drawn in a strip under the upper panel.
    pub markers: Vec<Marker>,
    /// Label of the upper panel's y axis, e.g. "nodes".
    pub y_label: String,
    /// Optional lower panel: a per-node value against its target, e.g. observed, smoothed and a
    /// target line. When empty the chart has one panel.
    pub per_node: Vec<Series>,
    /// Label of the lower panel's y axis, e.g. "CPU utilization".
    pub per_node_label: String,
}

/// One named line on the chart.
///
/// Colours come from a colour-blind-safe palette (Okabe–Ito), by the series' position across
/// `load`, then `sizes`, then `per_node`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend and as the SVG tooltip of the line.
    pub name: String,
    /// `(epoch milliseconds, value)`, sorted by time. A non-finite value (NaN) breaks the line.
    pub points: Vec<(i64, f64)>,
    /// How the line is drawn.
    pub style: Style,
}

impl Series {
    /// A series from its name, style and points.
    pub fn new(name: impl Into<String>, style: Style, points: Vec<(i64, f64)>) -> Self {
        Series { name: name.into(), points, style }
    }
}

/// How a [`Series`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Straight segments between samples, for measured values.
    #[default]
    Line,
    /// Holds each value until the next sample, for sizes such as the serving node count.
    Step,
    /// A dashed line (a dashed step in [`ChartData::sizes`]), for plans and targets.
    Dashed,
    /// A line with the area down to zero filled lightly, for a load to read as a volume.
    Area,
}

/// A point in time worth pointing at: a scale action or a detected spike.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// When it happened, epoch milliseconds (UTC).
    pub at_ms: i64,
    /// Which symbol to draw.
    pub kind: MarkerKind,
    /// What happened, e.g. "3 → 5 nodes (spike)"; the SVG shows it as the marker's tooltip.
    pub label: String,
}

/// The kinds of [`Marker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// Capacity was added: ▲.
    ScaleOut,
    /// Capacity was removed: ▼.
    ScaleIn,
    /// The spike detector fired: ◆.
    Spike,
}

/// Renders the chart as a standalone SVG document of `width` × `height` pixels.
///
/// The output depends only on the arguments, so the same data gives the same bytes. Sizes below
/// 160 × 120 are raised to that, the least that still fits the axes.
pub fn render_svg(data: &ChartData, width: u32, height: u32) -> String {
    svg::write(&build_scene(data, width, height))
}

/// Writes the chart to `path` as SVG at [`DEFAULT_WIDTH`] × [`DEFAULT_HEIGHT`].
///
/// The file name must end in `.svg` (any case); anything else is refused before writing, with an
/// [`io::ErrorKind::InvalidInput`] error from [`check_path`].
pub fn write_chart(path: &Path, data: &ChartData) -> io::Result<()> {
    check_path(path)?;
    std::fs::write(path, render_svg(data, DEFAULT_WIDTH, DEFAULT_HEIGHT))
}

/// Checks that `path` names an SVG file, so a caller can refuse a chart path before doing the
/// work whose result it would hold.
///
/// The error names the extension found and the fix; `.png` gets its own hint because PNG was
/// written once and scripts may still ask for it.
pub fn check_path(path: &Path) -> io::Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let hint = match ext.as_deref() {
        Some("svg") => return Ok(()),
        Some("png") => "; charts are SVG only (PNG is no longer written): name the file .svg",
        _ => "; name the file .svg",
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "cannot write chart {}: unsupported extension {}{hint}",
            path.display(),
            ext.map_or_else(|| "(none)".to_owned(), |e| format!(".{e}")),
        ),
    ))
}

// === colours ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb(u8, u8, u8);

impl Rgb {
    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Okabe–Ito, reordered so the first colours contrast best on white; yellow is last because
/// thin yellow lines vanish on a white background.
const PALETTE: [Rgb; 8] = [
    Rgb(0x00, 0x72, 0xb2), // blue
    Rgb(0xd5, 0x5e, 0x00), // vermillion
    Rgb(0x00, 0x9e, 0x73), // bluish green
    Rgb(0xcc, 0x79, 0xa7), // reddish purple
    Rgb(0xe6, 0x9f, 0x00), // orange
    Rgb(0x56, 0xb4, 0xe9), // sky blue
    Rgb(0x00, 0x00, 0x00), // black
    Rgb(0xf0, 0xe4, 0x42), // yellow
];
const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
const INK: Rgb = Rgb(0x1a, 0x1a, 0x1a);
const MUTED: Rgb = Rgb(0x55, 0x55, 0x55);
const AXIS: Rgb = Rgb(0x88, 0x88, 0x88);
const GRID: Rgb = Rgb(0xe6, 0xe6, 0xe6);
const SHORTFALL: Rgb = Rgb(0xd5, 0x5e, 0x00);
const SHORTFALL_OPACITY: f64 = 0.22;
const AREA_OPACITY: f64 = 0.18;

fn marker_colour(kind: MarkerKind) -> Rgb {
    match kind {
        MarkerKind::ScaleOut => Rgb(0x11, 0x77, 0x33),
        MarkerKind::ScaleIn => Rgb(0x00, 0x5a, 0x9c),
        MarkerKind::Spike => Rgb(0xc0, 0x39, 0x2b),
    }
}

// === scene ===

#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn right(&self) -> f64 {
        self.x + self.w
    }
    fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start,
    Middle,
    End,
}

#[derive(Debug, Clone, PartialEq)]
enum Prim {
    Stroke {
        pts: Vec<(f64, f64)>,
        colour: Rgb,
        width: f64,
        dashed: bool,
        opacity: f64,
        clip: Option<usize>,
        tooltip: Option<String>,
    },
    Fill {
        pts: Vec<(f64, f64)>,
        colour: Rgb,
        opacity: f64,
        clip: Option<usize>,
        tooltip: Option<String>,
        class: &'static str,
    },
    Text {
        x: f64,
        y: f64,
        text: String,
        anchor: Anchor,
        colour: Rgb,
        title: bool,
    },
}

/// The laid-out chart, in pixels; both writers draw exactly this.
#[derive(Debug, Clone, PartialEq)]
struct Scene {
    width: u32,
    height: u32,
    title: String,
    clips: Vec<Rect>,
    prims: Vec<Prim>,
}

impl Scene {
    fn line(&mut self, a: (f64, f64), b: (f64, f64), colour: Rgb, width: f64) {
        self.prims.push(Prim::Stroke {
            pts: vec![a, b],
            colour,
            width,
            dashed: false,
            opacity: 1.0,
            clip: None,
            tooltip: None,
        });
    }

    fn rect(&mut self, r: Rect, colour: Rgb, opacity: f64) {
        self.prims.push(Prim::Fill {
            pts: vec![(r.x, r.y), (r.right(), r.y), (r.right(), r.bottom()), (r.x, r.bottom())],
            colour,
            opacity,
            clip: None,
            tooltip: None,
            class: "",
        });
    }

    fn text(&mut self, x: f64, y: f64, text: impl Into<String>, anchor: Anchor, colour: Rgb) {
        self.prims.push(Prim::Text { x, y, text: text.into(), anchor, colour, title: false });
    }
}

/// Pixels per character used for layout: the SVG's 11 px monospace advances about 6.6 px.
const CHAR_W: f64 = 6.6;
const PAD: f64 = 10.0;
const TITLE_H: f64 = 24.0;
const LEGEND_ROW_H: f64 = 16.0;
const MARKER_STRIP_H: f64 = 16.0;
const PANEL_GAP: f64 = 12.0;
const TIME_LABEL_H: f64 = 18.0;
const RIGHT_MARGIN: f64 = 24.0;
const SWATCH_W: f64 = 20.0;

fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

/// One series as the layout sees it: its colour and whether it is drawn as steps.
struct Drawn<'a> {
    series: &'a Series,
    colour: Rgb,
    stepped: bool,
}

enum LegendSwatch {
    Series(Style, Rgb),
    Shade,
    Marker(MarkerKind),
}

struct Panel<'a> {
    label: String,
    series: Vec<Drawn<'a>>,
    legend: Vec<(LegendSwatch, String)>,
    legend_rows: Vec<Vec<usize>>,
    rect: Rect,
    header_y: f64,
    y_lo: f64,
    y_hi: f64,
    y_ticks: Vec<f64>,
    y_decimals: usize,
}

impl Panel<'_> {
    /// Pixel row of `v`, always finite: a value beyond the scale (only possible past the
    /// ±f64::MAX / 4 the scale is capped at) is drawn just outside the plot, where it is clipped.
    fn y_px(&self, v: f64) -> f64 {
        let f = (v - self.y_lo) / (self.y_hi - self.y_lo);
        let f = if f.is_nan() { 0.0 } else { f.clamp(-1.0, 2.0) };
        self.rect.bottom() - f * self.rect.h
    }
}

fn build_scene(data: &ChartData, width: u32, height: u32) -> Scene {
    // Tiny sizes would give negative plot areas; the chart is unreadable below this anyway.
    let width = width.max(160);
    let height = height.max(120);
    let (w, h) = (f64::from(width), f64::from(height));
    let start = data.start_ms;
    let end = if data.end_ms > data.start_ms { data.end_ms } else { data.start_ms.saturating_add(1) };

    let mut scene = Scene { width, height, title: data.title.clone(), clips: Vec::new(), prims: Vec::new() };
    scene.rect(Rect { x: 0.0, y: 0.0, w, h }, WHITE, 1.0);

    // Colours are assigned across all panels so no two legend entries share one.
    let colour_of = |i: usize| PALETTE[i % PALETTE.len()];
    let load_c: Vec<usize> = (0..data.load.len()).collect();
    let size_c: Vec<usize> = (0..data.sizes.len()).map(|i| data.load.len() + i).collect();
    let node_c: Vec<usize> = (0..data.per_node.len()).map(|i| data.load.len() + data.sizes.len() + i).collect();

    let serving_idx =
        data.sizes.iter().position(|s| s.style == Style::Step).or(if data.sizes.is_empty() { None } else { Some(0) });
    let shortfall_pair = match (data.load.first(), serving_idx) {
        (Some(d), Some(s)) => Some((d, &data.sizes[s])),
        _ => None,
    };

    // Sizes are drawn before the load so the demand line stays on top where they meet.
    let mut top = Panel {
        label: data.y_label.clone(),
        series: Vec::new(),
        legend: Vec::new(),
        legend_rows: Vec::new(),
        rect: Rect { x: 0.0, y: 0.0, w: 0.0, h: 0.0 },
        header_y: 0.0,
        y_lo: 0.0,
        y_hi: 1.0,
        y_ticks: Vec::new(),
        y_decimals: 0,
    };
    for (s, c) in data.sizes.iter().zip(&size_c) {
        let stepped = matches!(s.style, Style::Step | Style::Dashed);
        top.series.push(Drawn { series: s, colour: colour_of(*c), stepped });
    }
    for (s, c) in data.load.iter().zip(&load_c) {
        top.series.push(Drawn { series: s, colour: colour_of(*c), stepped: s.style == Style::Step });
    }
    for (s, c) in data.load.iter().zip(&load_c).chain(data.sizes.iter().zip(&size_c)) {
        top.legend.push((LegendSwatch::Series(s.style, colour_of(*c)), s.name.clone()));
    }

    let mut panels = vec![top];
    if !data.per_node.is_empty() {
        let mut p = Panel {
            label: data.per_node_label.clone(),
            series: Vec::new(),
            legend: Vec::new(),
            legend_rows: Vec::new(),
            rect: Rect { x: 0.0, y: 0.0, w: 0.0, h: 0.0 },
            header_y: 0.0,
            y_lo: 0.0,
            y_hi: 1.0,
            y_ticks: Vec::new(),
            y_decimals: 0,
        };
        for (s, c) in data.per_node.iter().zip(&node_c) {
            p.series.push(Drawn { series: s, colour: colour_of(*c), stepped: s.style == Style::Step });
            p.legend.push((LegendSwatch::Series(s.style, colour_of(*c)), s.name.clone()));
        }
        panels.push(p);
    }

    // Horizontal layout: the legend is laid out against the right edge before the y tick labels
    // are known, so it is wrapped against the full width left of the panel label.
    let plot_right = w - RIGHT_MARGIN;
    let mut marker_kinds: Vec<MarkerKind> = Vec::new();
    for kind in [MarkerKind::ScaleOut, MarkerKind::ScaleIn, MarkerKind::Spike] {
        if data.markers.iter().any(|m| m.kind == kind && m.at_ms >= start && m.at_ms <= end) {
            marker_kinds.push(kind);
        }
    }
    if shortfall_pair.is_some() {
        panels[0].legend.push((LegendSwatch::Shade, "demand > serving".to_owned()));
    }
    for kind in &marker_kinds {
        let name = match kind {
            MarkerKind::ScaleOut => "scale out",
            MarkerKind::ScaleIn => "scale in",
            MarkerKind::Spike => "spike",
        };
        panels[0].legend.push((LegendSwatch::Marker(*kind), name.to_owned()));
    }
    for p in &mut panels {
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
        p.legend_rows = rows;
    }

    // Vertical layout.
    let has_markers = !marker_kinds.is_empty();
    // A spike and the scale-out it causes share a timestamp, so spikes get a lane of their own.
    let spike_lane = marker_kinds.contains(&MarkerKind::Spike) && marker_kinds.len() > 1;
    let strip_h = if spike_lane { 2.0 * MARKER_STRIP_H - 2.0 } else { MARKER_STRIP_H };
    let mut fixed = PAD + TITLE_H + TIME_LABEL_H + PAD;
    for p in &panels {
        fixed += p.legend_rows.len() as f64 * LEGEND_ROW_H + 6.0;
    }
    if has_markers {
        fixed += strip_h;
    }
    fixed += PANEL_GAP * (panels.len() as f64 - 1.0);
    let avail_h = (h - fixed).max(40.0);
    let shares: &[f64] = if panels.len() == 2 { &[0.6, 0.4] } else { &[1.0] };
    let mut y = PAD + TITLE_H;
    for (i, p) in panels.iter_mut().enumerate() {
        p.header_y = y;
        y += p.legend_rows.len() as f64 * LEGEND_ROW_H + 6.0;
        let ph = (avail_h * shares[i]).floor();
        p.rect = Rect { x: 0.0, y, w: 0.0, h: ph };
        y += ph;
        if i == 0 && has_markers {
            y += strip_h;
        }
        y += PANEL_GAP;
    }

    // Y scales: nodes and utilizations are read against zero, so zero is always on the axis.
    let mut label_w: f64 = 0.0;
    for p in &mut panels {
        let (mut lo, mut hi) = (0.0f64, f64::NEG_INFINITY);
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
        let hi = hi + (hi - lo) * 0.03;
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
    let plot_x = (PAD + label_w + 8.0).round();
    for p in &mut panels {
        p.rect.x = plot_x;
        p.rect.w = (plot_right - plot_x).max(20.0);
    }
    let plot_w = panels[0].rect.w;
    // In i128: the span of two arbitrary i64 times does not fit an i64.
    let span_ms = (i128::from(end) - i128::from(start)).max(1) as f64;
    let x_px = |t: i64| plot_x + (i128::from(t) - i128::from(start)) as f64 / span_ms * plot_w;

    // Title, and the full UTC range on the right so the year and dates are never ambiguous.
    let range = format!("{} to {} UTC", format_full(start), format_full(end));
    // The SVG title is 14 px bold, about 8.4 px a character; cut it before it reaches the range.
    let title_room = ((w - 3.0 * PAD - text_width(&range)) / 8.4).max(3.0) as usize;
    let title = if data.title.chars().count() > title_room {
        let mut t: String = data.title.chars().take(title_room.saturating_sub(3)).collect();
        t.push_str("...");
        t
    } else {
        data.title.clone()
    };
    scene.prims.push(Prim::Text {
        x: PAD,
        y: PAD + 13.0,
        text: title,
        anchor: Anchor::Start,
        colour: INK,
        title: true,
    });
    scene.text(w - PAD, PAD + 12.0, range, Anchor::End, MUTED);

    // Time ticks, shared by every panel.
    let ticks = time_ticks(start, end, plot_w);

    for (pi, p) in panels.iter().enumerate() {
        let r = p.rect;
        let clip = scene.clips.len();
        scene.clips.push(r);

        // Header: the panel's label on the left, its legend rows on the right.
        let header_base = p.header_y + 12.0;
        scene.text(PAD, header_base, p.label.clone(), Anchor::Start, INK);
        for (ri, row) in p.legend_rows.iter().enumerate() {
            let row_w: f64 = row.iter().map(|&i| legend_item_width(&p.legend[i].1)).sum();
            let mut x = r.right() - row_w + 12.0;
            let base = header_base + ri as f64 * LEGEND_ROW_H;
            for &i in row {
                let (swatch, name) = &p.legend[i];
                draw_swatch(&mut scene, swatch, x, base - 4.0);
                scene.text(x + SWATCH_W + 5.0, base, name.clone(), Anchor::Start, INK);
                x += legend_item_width(name);
            }
        }

        // Grid and y tick labels; lines sit on half pixels so 1 px lines stay crisp.
        for &v in &p.y_ticks {
            let yy = p.y_px(v).round() + 0.5;
            let yy = yy.min(r.bottom() - 0.5);
            scene.line((r.x, yy), (r.right(), yy), GRID, 1.0);
            scene.text(r.x - 6.0, yy + 4.0, format_value(v, p.y_decimals), Anchor::End, MUTED);
        }
        for &(t, _) in &ticks {
            let xx = x_px(t).round() + 0.5;
            scene.line((xx, r.y), (xx, r.bottom()), GRID, 1.0);
        }

        // Marker guides help to read an action against the curves; with many markers they would
        // only add noise.
        let in_range: Vec<&Marker> = data.markers.iter().filter(|m| m.at_ms >= start && m.at_ms <= end).collect();
        if in_range.len() <= 40 {
            for m in &in_range {
                let xx = x_px(m.at_ms).round() + 0.5;
                scene.prims.push(Prim::Stroke {
                    pts: vec![(xx, r.y), (xx, r.bottom())],
                    colour: marker_colour(m.kind),
                    width: 1.0,
                    dashed: true,
                    opacity: 0.35,
                    clip: Some(clip),
                    tooltip: None,
                });
            }
        }

        // Shortfall shading sits under the lines so both edges stay readable.
        if pi == 0
            && let Some((demand, serving)) = shortfall_pair
        {
            for poly in shortfall_polygons(demand, serving, start, end, r, p) {
                scene.prims.push(Prim::Fill {
                    pts: poly,
                    colour: SHORTFALL,
                    opacity: SHORTFALL_OPACITY,
                    clip: Some(clip),
                    tooltip: Some("demand > serving".to_owned()),
                    class: "shortfall",
                });
            }
        }

        let columns = r.w.ceil().max(1.0) as usize;
        // Dashed plans go under solid lines: where desired equals serving, serving shows.
        let mut order: Vec<&Drawn<'_>> = p.series.iter().collect();
        order.sort_by_key(|d| match d.series.style {
            Style::Area => 0,
            Style::Dashed => 1,
            Style::Step => 2,
            Style::Line => 3,
        });
        for d in order {
            let runs = decimate(&d.series.points, start, end, columns);
            let to_px = |(t, v): (f64, f64)| (r.x + t * r.w / columns as f64, p.y_px(v));
            for run in runs {
                let mut pts: Vec<(f64, f64)> = run.into_iter().map(to_px).collect();
                if d.stepped {
                    pts = stepped(&pts);
                }
                let pts = drop_flat(round_pts(pts));
                if pts.is_empty() {
                    continue;
                }
                if d.series.style == Style::Area {
                    let base = p.y_px(0.0f64.max(p.y_lo).min(p.y_hi));
                    let mut poly = pts.clone();
                    if let (Some(first), Some(last)) = (pts.first(), pts.last()) {
                        poly.push((last.0, base));
                        poly.push((first.0, base));
                    }
                    scene.prims.push(Prim::Fill {
                        pts: poly,
                        colour: d.colour,
                        opacity: AREA_OPACITY,
                        clip: Some(clip),
                        tooltip: None,
                        class: "area",
                    });
                }
                scene.prims.push(Prim::Stroke {
                    pts,
                    colour: d.colour,
                    width: stroke_width(d.series.style),
                    dashed: d.series.style == Style::Dashed,
                    opacity: 1.0,
                    clip: Some(clip),
                    tooltip: Some(d.series.name.clone()),
                });
            }
        }

        // Axis lines go last so curves at zero do not hide them.
        let bx = r.x + 0.5;
        let by = r.bottom() + 0.5;
        scene.line((bx, r.y), (bx, by), AXIS, 1.0);
        scene.line((r.x, by), (r.right(), by), AXIS, 1.0);
        for &(t, _) in &ticks {
            let xx = x_px(t).round() + 0.5;
            scene.line((xx, by), (xx, by + 4.0), AXIS, 1.0);
        }

        if pi == 0 && has_markers {
            let cy = r.bottom() + 1.0 + MARKER_STRIP_H / 2.0;
            // Spikes are rarer and explain the scale-outs next to them, so they stay on top.
            let mut in_range = in_range.clone();
            in_range.sort_by_key(|m| m.kind == MarkerKind::Spike);
            for m in &in_range {
                let cy = if spike_lane && m.kind == MarkerKind::Spike { cy + MARKER_STRIP_H - 2.0 } else { cy };
                let mut label = match m.kind {
                    MarkerKind::ScaleOut => "scale out",
                    MarkerKind::ScaleIn => "scale in",
                    MarkerKind::Spike => "spike",
                }
                .to_owned();
                let _ = write!(label, " at {}", format_full(m.at_ms));
                if !m.label.is_empty() {
                    let _ = write!(label, ": {}", m.label);
                }
                scene.prims.push(Prim::Fill {
                    pts: marker_shape(m.kind, x_px(m.at_ms), cy),
                    colour: marker_colour(m.kind),
                    opacity: 1.0,
                    clip: None,
                    tooltip: Some(label),
                    class: match m.kind {
                        MarkerKind::ScaleOut => "marker scale-out",
                        MarkerKind::ScaleIn => "marker scale-in",
                        MarkerKind::Spike => "marker spike",
                    },
                });
            }
        }

        if pi + 1 == panels.len() {
            // Labels at the ends of the axis are pulled in rather than cut off at the image edge.
            for (t, label) in &ticks {
                let half = text_width(label) / 2.0;
                // max/min rather than clamp: a label wider than the image must not panic.
                let x = x_px(*t).max(PAD / 2.0 + half).min(w - PAD / 2.0 - half);
                scene.text(x, by + 15.0, label.clone(), Anchor::Middle, MUTED);
            }
        }
    }
    scene
}

fn stroke_width(style: Style) -> f64 {
    match style {
        Style::Step => 2.0,
        Style::Line | Style::Dashed | Style::Area => 1.6,
    }
}

fn legend_item_width(name: &str) -> f64 {
    SWATCH_W + 5.0 + text_width(name) + 16.0
}

fn draw_swatch(scene: &mut Scene, swatch: &LegendSwatch, x: f64, cy: f64) {
    match *swatch {
        LegendSwatch::Series(style, colour) => {
            if style == Style::Area {
                scene.rect(Rect { x, y: cy - 5.0, w: SWATCH_W, h: 10.0 }, colour, AREA_OPACITY);
            }
            let pts = match style {
                Style::Step => {
                    vec![(x, cy + 4.0), (x + 10.0, cy + 4.0), (x + 10.0, cy - 4.0), (x + SWATCH_W, cy - 4.0)]
                }
                Style::Area => vec![(x, cy - 5.0), (x + SWATCH_W, cy - 5.0)],
                Style::Line | Style::Dashed => vec![(x, cy), (x + SWATCH_W, cy)],
            };
            scene.prims.push(Prim::Stroke {
                pts,
                colour,
                width: stroke_width(style),
                dashed: style == Style::Dashed,
                opacity: 1.0,
                clip: None,
                tooltip: None,
            });
        }
        LegendSwatch::Shade => {
            scene.rect(Rect { x, y: cy - 5.0, w: SWATCH_W, h: 10.0 }, SHORTFALL, SHORTFALL_OPACITY + 0.1);
        }
        LegendSwatch::Marker(kind) => {
            scene.prims.push(Prim::Fill {
                pts: marker_shape(kind, x + SWATCH_W / 2.0, cy),
                colour: marker_colour(kind),
                opacity: 1.0,
                clip: None,
                tooltip: None,
                class: "",
            });
        }
    }
}

fn marker_shape(kind: MarkerKind, x: f64, cy: f64) -> Vec<(f64, f64)> {
    match kind {
        MarkerKind::ScaleOut => vec![(x, cy - 5.0), (x + 5.5, cy + 5.0), (x - 5.5, cy + 5.0)],
        MarkerKind::ScaleIn => vec![(x - 5.5, cy - 5.0), (x + 5.5, cy - 5.0), (x, cy + 5.0)],
        MarkerKind::Spike => vec![(x, cy - 6.0), (x + 5.0, cy), (x, cy + 6.0), (x - 5.0, cy)],
    }
}

// === data reduction ===

/// The points that can affect the visible range: those inside it plus one neighbour on each
/// side, so lines and steps enter and leave the plot at the right height.
fn visible(points: &[(i64, f64)], start: i64, end: i64) -> &[(i64, f64)] {
    let lo = points.partition_point(|p| p.0 < start).saturating_sub(1);
    let hi = (points.partition_point(|p| p.0 <= end) + 1).min(points.len());
    if lo >= hi { &[] } else { &points[lo..hi] }
}

/// Reduces a series to at most the first, minimum, maximum and last sample of each of `columns`
/// pixel columns, splitting it into runs at non-finite values.
///
/// Returns x in column units (0.0 = `start`, `columns` = `end`) and the values unchanged. Keeping
/// the extremes of each column means a one-sample spike survives among any number of samples.
fn decimate(points: &[(i64, f64)], start: i64, end: i64, columns: usize) -> Vec<Vec<(f64, f64)>> {
    let span = (i128::from(end) - i128::from(start)).max(1) as f64;
    let cols = columns as f64;
    let x_of = |t: i64| (i128::from(t) - i128::from(start)) as f64 / span * cols;
    let col_of = |x: f64| x.floor().clamp(-1.0, cols) as i64;

    let mut runs = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    // The current column's candidates, as indices into `points`.
    let mut group: Vec<usize> = Vec::new();
    let pts = visible(points, start, end);

    let flush = |group: &mut Vec<usize>, run: &mut Vec<(f64, f64)>| {
        if group.is_empty() {
            return;
        }
        let first = group[0];
        let last = group[group.len() - 1];
        let mut min = first;
        let mut max = first;
        for &i in group.iter() {
            if pts[i].1 < pts[min].1 {
                min = i;
            }
            if pts[i].1 > pts[max].1 {
                max = i;
            }
        }
        let mut keep = [first, min, max, last];
        keep.sort_unstable();
        let mut prev = None;
        for i in keep {
            if prev != Some(i) {
                run.push((x_of(pts[i].0), pts[i].1));
                prev = Some(i);
            }
        }
        group.clear();
    };

    let mut current_col = i64::MIN;
    for (i, &(t, v)) in pts.iter().enumerate() {
        if !v.is_finite() {
            flush(&mut group, &mut run);
            if !run.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
            current_col = i64::MIN;
            continue;
        }
        let col = col_of(x_of(t));
        if col != current_col {
            flush(&mut group, &mut run);
            current_col = col;
        }
        group.push(i);
    }
    flush(&mut group, &mut run);
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Turns sample points into the corners of a step line that holds each value until the next.
fn stepped(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len() * 2);
    for (i, &p) in pts.iter().enumerate() {
        if i > 0 {
            out.push((p.0, pts[i - 1].1));
        }
        out.push(p);
    }
    out
}

fn round_pts(pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    pts.into_iter().map(|(x, y)| ((x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0)).collect()
}

/// Drops points that add nothing at output precision: repeats, and the middle of runs along
/// one horizontal or vertical line (flat stretches are most of a step series).
fn drop_flat(pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
    for p in pts {
        if out.last() == Some(&p) {
            continue;
        }
        if out.len() >= 2 {
            let a = out[out.len() - 2];
            let b = out[out.len() - 1];
            let horizontal = a.1 == b.1 && b.1 == p.1 && (a.0 <= b.0) == (b.0 <= p.0);
            let vertical = a.0 == b.0 && b.0 == p.0 && (a.1 <= b.1) == (b.1 <= p.1);
            if horizontal || vertical {
                out.pop();
            }
        }
        out.push(p);
    }
    out
}

/// The value a series has at `t` when read as a step line: the last sample at or before `t`.
fn step_value_at(points: &[(i64, f64)], t: f64) -> Option<f64> {
    let i = points.partition_point(|p| (p.0 as f64) <= t);
    if i == 0 {
        return None;
    }
    let v = points[i - 1].1;
    v.is_finite().then_some(v)
}

/// The polygons between the demand line and the serving step line wherever demand is higher,
/// one pixel column at a time; a column's demand is its highest sample so short peaks count.
fn shortfall_polygons(
    demand: &Series,
    serving: &Series,
    start: i64,
    end: i64,
    r: Rect,
    p: &Panel<'_>,
) -> Vec<Vec<(f64, f64)>> {
    let columns = r.w.ceil().max(1.0) as usize;
    let span = (i128::from(end) - i128::from(start)) as f64;
    let t_at = |c: f64| start as f64 + c / columns as f64 * span;
    let d = &demand.points;
    let mut polys = Vec::new();
    let mut top: Vec<(f64, f64)> = Vec::new();
    let mut bottom: Vec<(f64, f64)> = Vec::new();
    let mut finish = |top: &mut Vec<(f64, f64)>, bottom: &mut Vec<(f64, f64)>| {
        if !top.is_empty() {
            let mut poly = std::mem::take(top);
            poly.extend(bottom.drain(..).rev());
            polys.push(drop_flat(round_pts(poly)));
        }
    };
    for c in 0..columns {
        let (t0, t1) = (t_at(c as f64), t_at(c as f64 + 1.0));
        let tc = (t0 + t1) / 2.0;
        let lo = d.partition_point(|q| (q.0 as f64) < t0);
        let hi = d.partition_point(|q| (q.0 as f64) < t1);
        let peak = d[lo..hi]
            .iter()
            .map(|q| q.1)
            .filter(|v| v.is_finite())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let dv = peak.or_else(|| interpolate(d, tc));
        let sv = step_value_at(&serving.points, tc);
        match (dv, sv) {
            (Some(dv), Some(sv)) if dv > sv => {
                let x0 = r.x + c as f64 * r.w / columns as f64;
                let x1 = r.x + (c + 1) as f64 * r.w / columns as f64;
                let (yd, ys) = (p.y_px(dv.min(p.y_hi)), p.y_px(sv.max(p.y_lo)));
                top.push((x0, yd));
                top.push((x1, yd));
                bottom.push((x0, ys));
                bottom.push((x1, ys));
            }
            _ => finish(&mut top, &mut bottom),
        }
    }
    finish(&mut top, &mut bottom);
    polys
}

/// Linear interpolation between the samples around `t`; none across a gap or outside the data.
fn interpolate(points: &[(i64, f64)], t: f64) -> Option<f64> {
    let i = points.partition_point(|p| (p.0 as f64) <= t);
    if i == 0 || i == points.len() {
        return None;
    }
    let (a, b) = (points[i - 1], points[i]);
    if !a.1.is_finite() || !b.1.is_finite() {
        return None;
    }
    if b.0 == a.0 {
        return Some(a.1);
    }
    Some(a.1 + (b.1 - a.1) * (t - a.0 as f64) / (b.0 as f64 - a.0 as f64))
}

// === axes ===

/// Ticks on multiples of 1, 2 or 5 × 10ⁿ covering `lo..=hi`, about `target` of them.
fn nice_ticks(lo: f64, hi: f64, target: f64) -> (Vec<f64>, f64) {
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
fn fitted_ticks(lo: f64, hi: f64, target: f64) -> (Vec<f64>, f64) {
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

fn decimals_for(step: f64) -> usize {
    if step >= 1.0 { 0 } else { (-step.log10()).ceil().max(0.0) as usize }
}

fn format_value(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    // "-0" and "-0.0" come from tiny negative rounding noise.
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_owned()
    } else {
        s
    }
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Ticks of a year or more sit on 364-day multiples, like the longest step before them.
const YEAR: i64 = 364 * DAY;

/// Time ticks at round UTC times with labels; the interval is the smallest that leaves room
/// between labels.
fn time_ticks(start: i64, end: i64, plot_w: f64) -> Vec<(i64, String)> {
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

fn format_tick(t: i64, step: i64, multi_day: bool) -> String {
    let (y, mo, d, hh, mm, ss) = civil(t);
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

fn format_full(t: i64) -> String {
    let (y, mo, d, hh, mm, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {hh:02}:{mm:02}")
}

/// UTC calendar fields of epoch milliseconds (Howard Hinnant's `civil_from_days`), so labels need
/// neither a time zone database nor a fallible conversion.
fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(DAY);
    let ms = t.rem_euclid(DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (ms / HOUR) as u32, (ms % HOUR / MINUTE) as u32, (ms % MINUTE / SECOND) as u32)
}

// === SVG ===

mod svg {
    use super::{Anchor, Prim, Scene};
    use std::fmt::Write as _;

    const FONT: &str = "ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace";

    pub(super) fn write(scene: &Scene) -> String {
        let mut out = String::with_capacity(64 * 1024);
        // Clip ids are document-global; deriving them from the content keeps two charts on one
        // dashboard page from borrowing each other's clip rectangles while staying deterministic.
        let id =
            format!("ebf{:08x}", fnv1a(format!("{}|{}|{}|{:?}", scene.title, scene.width, scene.height, scene.clips)));
        let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}" font-size="11">"#,
            w = scene.width,
            h = scene.height,
        );
        let _ = writeln!(out, "<title>{}</title>", escape(&scene.title));
        out.push_str("<defs>");
        for (i, r) in scene.clips.iter().enumerate() {
            let _ = write!(
                out,
                r#"<clipPath id="{id}-c{i}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath>"#,
                num(r.x),
                num(r.y),
                num(r.w),
                num(r.h + 1.0)
            );
        }
        out.push_str("</defs>\n");
        for prim in &scene.prims {
            match prim {
                Prim::Stroke { pts, colour, width, dashed, opacity, clip, tooltip } => {
                    out.push_str("<polyline points=\"");
                    push_points(&mut out, pts);
                    let _ = write!(out, r#"" fill="none" stroke="{}" stroke-width="{}""#, colour.hex(), num(*width));
                    if pts.len() > 2 {
                        out.push_str(r#" stroke-linejoin="round""#);
                    }
                    if *dashed {
                        let _ = write!(out, r#" stroke-dasharray="{} {}""#, num(super::DASH.0), num(super::DASH.1));
                    }
                    if *opacity < 1.0 {
                        let _ = write!(out, r#" stroke-opacity="{}""#, opacity);
                    }
                    close(&mut out, &id, *clip, tooltip.as_deref(), "polyline");
                }
                Prim::Fill { pts, colour, opacity, clip, tooltip, class } => {
                    out.push_str("<polygon points=\"");
                    push_points(&mut out, pts);
                    let _ = write!(out, r#"" fill="{}""#, colour.hex());
                    if *opacity < 1.0 {
                        let _ = write!(out, r#" fill-opacity="{}""#, opacity);
                    }
                    if !class.is_empty() {
                        let _ = write!(out, r#" class="{class}""#);
                    }
                    close(&mut out, &id, *clip, tooltip.as_deref(), "polygon");
                }
                Prim::Text { x, y, text, anchor, colour, title } => {
                    let _ = write!(out, r#"<text x="{}" y="{}" fill="{}""#, num(*x), num(*y), colour.hex());
                    match anchor {
                        Anchor::Start => {}
                        Anchor::Middle => out.push_str(r#" text-anchor="middle""#),
                        Anchor::End => out.push_str(r#" text-anchor="end""#),
                    }
                    if *title {
                        out.push_str(r#" font-size="14" font-weight="bold""#);
                    }
                    let _ = writeln!(out, ">{}</text>", escape(text));
                }
            }
        }
        out.push_str("</svg>\n");
        out
    }

    fn close(out: &mut String, id: &str, clip: Option<usize>, tooltip: Option<&str>, tag: &str) {
        if let Some(c) = clip {
            let _ = write!(out, r#" clip-path="url(#{id}-c{c})""#);
        }
        match tooltip {
            Some(t) => {
                let _ = writeln!(out, "><title>{}</title></{tag}>", escape(t));
            }
            None => out.push_str("/>\n"),
        }
    }

    fn push_points(out: &mut String, pts: &[(f64, f64)]) {
        for (i, (x, y)) in pts.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{},{}", num(*x), num(*y));
        }
    }

    /// One decimal, without a trailing ".0": a tenth of a pixel is below what renderers show.
    pub(super) fn num(v: f64) -> String {
        let s = format!("{:.1}", v);
        let s = s.strip_suffix(".0").unwrap_or(&s);
        if s == "-0" { "0".to_owned() } else { s.to_owned() }
    }

    /// Escapes text for XML content and attributes, dropping the control characters that XML 1.0
    /// cannot carry at all.
    pub(super) fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                '\t' | '\n' | '\r' => out.push(c),
                c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
                c => out.push(c),
            }
        }
        out
    }

    fn fnv1a(s: String) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in s.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h
    }
}

/// Dash pattern of dashed lines, in pixels: (on, off).
const DASH: (f64, f64) = (6.0, 4.0);

#[cfg(test)]
mod tests {
    use super::*;

    const APR_16_NOON: i64 = 1_776_340_800_000; // 2026-04-16 12:00 UTC

    /// A small deterministic generator, so sample data needs no crate and never changes.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Three days of a daily cycle sampled every `step_ms`, with a burst on the second afternoon,
    /// run through a toy fast-out/slow-in autoscaler so the chart has everything a real run has.
    fn sample(step_ms: i64) -> ChartData {
        let start = APR_16_NOON - 12 * HOUR;
        let end = start + 3 * DAY;
        let target = 0.65;
        let mut rng = Lcg(7);
        let (mut demand, mut serving, mut desired) = (Vec::new(), Vec::new(), Vec::new());
        let (mut observed, mut smoothed, mut target_line) = (Vec::new(), Vec::new(), Vec::new());
        let mut markers = Vec::new();
        let (mut want, mut have) = (3.0f64, 3.0f64);
        let (mut smooth_demand, mut smooth_util) = (3.0f64, 0.6f64);
        // Five-minute exponential smoothing, whatever the sampling step.
        let alpha = 1.0 - (-(step_ms as f64) / (5 * MINUTE) as f64).exp();
        let mut pending: Option<(i64, f64)> = None;
        let (mut last_change, mut last_spike) = (start, start - DAY);
        let mut t = start;
        while t <= end {
            let day_phase = (t.rem_euclid(DAY) as f64 / DAY as f64 - 0.25) * std::f64::consts::TAU;
            let mut d = 5.0 + 3.5 * day_phase.sin() + (rng.next() - 0.5) * 0.6;
            let burst_at = start + DAY + 14 * HOUR;
            if t >= burst_at && t < burst_at + 90 * MINUTE {
                d += 7.0 * (1.0 - (t - burst_at) as f64 / (90 * MINUTE) as f64);
            }
            // Monitoring drops out for 20 minutes on the last day.
            let gap = t >= start + 2 * DAY + 3 * HOUR && t < start + 2 * DAY + 3 * HOUR + 20 * MINUTE;
            let util = (d * target / have).min(1.0);
            if !gap {
                smooth_demand += (d - smooth_demand) * alpha;
                smooth_util += (util - smooth_util) * alpha;
            }
            // The toy policy decides once a minute: spikes jump straight to the raw need, other
            // growth follows the smoothed need, and scale-in sheds a node per half hour.
            if t % MINUTE == 0 && !gap {
                let spike = d > smooth_demand * 1.5 && t - last_spike > 30 * MINUTE;
                let needed = (if spike { d } else { smooth_demand } * 1.05).ceil().max(2.0);
                if spike {
                    last_spike = t;
                    markers.push(Marker { at_ms: t, kind: MarkerKind::Spike, label: format!("demand {d:.1} nodes") });
                }
                if needed > want && (spike || t - last_change >= 15 * MINUTE) {
                    markers.push(Marker {
                        at_ms: t,
                        kind: MarkerKind::ScaleOut,
                        label: format!("{want} -> {needed} nodes"),
                    });
                    want = needed;
                    last_change = t;
                    pending = Some((t + 12 * MINUTE, want));
                } else if needed < want && t - last_change >= 30 * MINUTE {
                    markers.push(Marker {
                        at_ms: t,
                        kind: MarkerKind::ScaleIn,
                        label: format!("{want} -> {} nodes", want - 1.0),
                    });
                    want -= 1.0;
                    last_change = t;
                    pending = Some((t + MINUTE, want));
                }
            }
            if let Some((at, n)) = pending
                && t >= at
            {
                have = n;
                pending = None;
            }
            demand.push((t, if gap { f64::NAN } else { d }));
            serving.push((t, have));
            desired.push((t, want));
            observed.push((t, if gap { f64::NAN } else { util }));
            smoothed.push((t, smooth_util));
            target_line.push((t, target));
            t += step_ms;
        }
        ChartData {
            title: "bigtable/prod-events: 3-day replay".to_owned(),
            start_ms: start,
            end_ms: end,
            load: vec![Series::new("demand", Style::Line, demand)],
            sizes: vec![Series::new("serving", Style::Step, serving), Series::new("desired", Style::Dashed, desired)],
            markers,
            y_label: "nodes".to_owned(),
            per_node: vec![
                Series::new("observed", Style::Line, observed),
                Series::new("smoothed", Style::Line, smoothed),
                Series::new("target", Style::Dashed, target_line),
            ],
            per_node_label: "CPU utilization".to_owned(),
        }
    }

    /// Checks that `doc` is well-formed XML as far as an SVG needs: balanced, properly nested
    /// tags, quoted attributes, and no raw `<` or bare `&` in text or attribute values.
    fn check_xml(doc: &str) -> Result<usize, String> {
        fn check_text(s: &str) -> Result<(), String> {
            let mut rest = s;
            while let Some(i) = rest.find('&') {
                let after = &rest[i + 1..];
                let end = after.find(';').ok_or_else(|| format!("bare & in {s:?}"))?;
                let ent = &after[..end];
                let ok =
                    matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos") || (ent.starts_with('#') && ent.len() > 1);
                if !ok {
                    return Err(format!("unknown entity &{ent}; in {s:?}"));
                }
                rest = &after[end + 1..];
            }
            if s.contains('<') {
                return Err(format!("raw < in {s:?}"));
            }
            Ok(())
        }
        let mut stack: Vec<&str> = Vec::new();
        let mut elements = 0;
        let mut rest = doc;
        let mut root_closed = false;
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            if root_closed && !text.trim().is_empty() {
                return Err("text after the root element".into());
            }
            check_text(text)?;
            let tag_start = &rest[lt..];
            if let Some(body) = tag_start.strip_prefix("<?") {
                let end = body.find("?>").ok_or("unterminated <?")?;
                rest = &body[end + 2..];
                continue;
            }
            if let Some(body) = tag_start.strip_prefix("<!--") {
                let end = body.find("-->").ok_or("unterminated comment")?;
                rest = &body[end + 3..];
                continue;
            }
            // Find the tag's end, skipping '>' inside quoted attribute values.
            let mut quote = None;
            let mut end = None;
            for (i, c) in tag_start.char_indices().skip(1) {
                match (quote, c) {
                    (None, '"' | '\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, '>') => {
                        end = Some(i);
                        break;
                    }
                    (None, '<') => return Err("< inside a tag".into()),
                    _ => {}
                }
            }
            let end = end.ok_or("unterminated tag")?;
            let inner = &tag_start[1..end];
            rest = &tag_start[end + 1..];
            if let Some(name) = inner.strip_prefix('/') {
                let open = stack.pop().ok_or_else(|| format!("unexpected </{name}>"))?;
                if open != name.trim() {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
                root_closed = stack.is_empty();
                continue;
            }
            if root_closed {
                return Err("second root element".into());
            }
            let self_closing = inner.ends_with('/');
            let inner = inner.trim_end_matches('/');
            let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
            let name = &inner[..name_end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
                return Err(format!("bad element name {name:?}"));
            }
            // Attributes: name="value" pairs, nothing else.
            let mut attrs = inner[name_end..].trim();
            while !attrs.is_empty() {
                let eq = attrs.find('=').ok_or_else(|| format!("attribute without value in <{name}>"))?;
                let an = attrs[..eq].trim();
                if an.is_empty() || an.contains(char::is_whitespace) {
                    return Err(format!("bad attribute name {an:?} in <{name}>"));
                }
                let after = &attrs[eq + 1..];
                let q = after.chars().next().ok_or("missing attribute value")?;
                if q != '"' && q != '\'' {
                    return Err(format!("unquoted attribute {an} in <{name}>"));
                }
                let close = after[1..].find(q).ok_or("unterminated attribute value")?;
                check_text(&after[1..1 + close])?;
                attrs = after[close + 2..].trim_start();
            }
            elements += 1;
            if !self_closing {
                stack.push(name);
            } else if stack.is_empty() {
                root_closed = true;
            }
        }
        if !rest.trim().is_empty() {
            return Err("trailing text".into());
        }
        if !stack.is_empty() {
            return Err(format!("unclosed elements {stack:?}"));
        }
        if !root_closed {
            return Err("no root element".into());
        }
        Ok(elements)
    }

    #[test]
    fn xml_checker_rejects_what_it_should() {
        assert!(check_xml("<a><b/></a>").is_ok());
        assert!(check_xml("<a><b></a>").is_err());
        assert!(check_xml("<a x=1/>").is_err());
        assert!(check_xml("<a>x & y</a>").is_err());
        assert!(check_xml("<a x=\"<\"/>").is_err());
        assert!(check_xml("<a/><b/>").is_err());
    }

    #[test]
    fn svg_is_well_formed_and_names_series_markers_and_axes() {
        let data = sample(MINUTE);
        let svg = render_svg(&data, 1200, 720);
        let elements = check_xml(&svg).unwrap();
        assert!(elements > 50, "only {elements} elements");
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains(r#"width="1200" height="720""#));
        for name in ["demand", "serving", "desired", "observed", "smoothed", "target"] {
            assert!(svg.contains(&format!(">{name}</text>")), "legend lacks {name}");
        }
        for label in ["nodes", "CPU utilization", "demand &gt; serving"] {
            assert!(svg.contains(&format!(">{label}</text>")), "no label {label}");
        }
        for class in ["marker scale-out", "marker scale-in", "marker spike"] {
            assert!(svg.contains(&format!(r#"class="{class}""#)), "no {class} marker");
        }
        // Marker tooltips carry the time and the caller's label.
        let first = &data.markers[0];
        assert!(svg.contains(&format!("at {}: {}</title>", format_full(first.at_ms), svg::escape(&first.label))));
        // Time ticks name UTC dates and hours; y ticks are plain numbers.
        assert!(svg.contains(">04-16 12:00</text>"), "no 04-16 12:00 tick");
        assert!(svg.contains(">2026-04-16 00:00 to 2026-04-19 00:00 UTC</text>"));
        let y_labels: Vec<f64> = svg
            .split(r#"text-anchor="end">"#)
            .skip(1)
            .filter_map(|rest| rest.split('<').next()?.parse().ok())
            .collect();
        assert!(y_labels.len() >= 6, "{y_labels:?}");
        assert!(y_labels.contains(&0.0) && y_labels.iter().any(|v| v.fract() != 0.0), "{y_labels:?}");
        // Demand above serving (the burst) is shaded.
        assert!(svg.contains(r#"class="shortfall""#));
    }

    #[test]
    fn svg_escapes_text() {
        let mut data = sample(HOUR);
        data.title = "a<b & \"c\" 'd'\u{1}".to_owned();
        data.load[0].name = "<script>".to_owned();
        data.markers[0].label = "x & y".to_owned();
        let svg = render_svg(&data, 800, 500);
        check_xml(&svg).unwrap();
        assert!(svg.contains("<title>a&lt;b &amp; &quot;c&quot; &apos;d&apos;</title>"));
        assert!(svg.contains(">&lt;script&gt;</text>"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("x &amp; y</title>"));
    }

    #[test]
    fn a_long_title_is_cut_before_it_reaches_the_time_range() {
        let mut data = sample(HOUR);
        data.title = "x".repeat(300);
        let svg = render_svg(&data, 800, 500);
        let title_text = svg.split("font-weight=\"bold\">").nth(1).unwrap().split('<').next().unwrap();
        assert!(title_text.ends_with("...") && title_text.len() < 80, "{title_text}");
        // The document title keeps the full text.
        assert!(svg.contains(&format!("<title>{}</title>", data.title)));
    }

    #[test]
    fn decimation_keeps_a_single_sample_spike_among_100k_points() {
        let n = 100_000i64;
        let mut rng = Lcg(1);
        let mut points: Vec<(i64, f64)> = (0..n).map(|i| (i * 1000, 5.0 + rng.next())).collect();
        points[54_321].1 = 1000.0;
        points[77_777].1 = -50.0;
        let columns = 1100;
        let runs = decimate(&points, 0, (n - 1) * 1000, columns);
        assert_eq!(runs.len(), 1);
        let kept: Vec<f64> = runs[0].iter().map(|p| p.1).collect();
        assert!(kept.len() <= 4 * (columns + 1), "kept {}", kept.len());
        assert!(kept.contains(&1000.0), "spike lost");
        assert!(kept.contains(&-50.0), "dip lost");
        // Points stay in time order, so the line does not double back.
        assert!(runs[0].windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn decimation_breaks_lines_at_gaps_and_keeps_neighbours_outside_the_range() {
        let points = vec![(0, 1.0), (10, 2.0), (20, f64::NAN), (30, 3.0), (40, 4.0), (50, 5.0)];
        let runs = decimate(&points, 15, 45, 30);
        assert_eq!(runs.len(), 2);
        // The sample before the range stays, so the line enters the plot at the right height.
        assert_eq!(runs[0], vec![(-5.0, 2.0)]);
        assert_eq!(runs[1].iter().map(|p| p.1).collect::<Vec<_>>(), vec![3.0, 4.0, 5.0]);
    }

    #[test]
    fn huge_series_give_a_small_svg_that_still_shows_the_spike() {
        let mut data = sample(3 * SECOND); // 86,401 points per series, 6 series
        let spike_at = data.load[0].points.len() / 3;
        data.load[0].points[spike_at].1 = 40.0;
        let svg = render_svg(&data, 1200, 720);
        assert!(svg.len() < 1_000_000, "svg is {} bytes", svg.len());
        check_xml(&svg).unwrap();
        let scene = build_scene(&data, 1200, 720);
        let plot = scene.clips[0];
        let top_of_demand = scene
            .prims
            .iter()
            .filter_map(|p| match p {
                Prim::Stroke { pts, tooltip: Some(t), .. } if t == "demand" => {
                    Some(pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min))
                }
                _ => None,
            })
            .fold(f64::INFINITY, f64::min);
        // Without the spike demand stays under 15 of the axis' 50 nodes (y below 70% of the
        // plot); with it the line must climb to 40 of 50.
        assert!(top_of_demand < plot.y + plot.h * 0.25, "demand peaks at y={top_of_demand}, plot {plot:?}");
    }

    #[test]
    fn output_is_deterministic() {
        let data = sample(MINUTE);
        assert_eq!(render_svg(&data, 900, 600), render_svg(&data, 900, 600));
    }

    #[test]
    fn write_chart_writes_svg_and_refuses_png_and_jpg() {
        let data = sample(HOUR);
        let dir = std::env::temp_dir().join(format!("ebbflow-chart-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = write_chart(&dir.join("out.jpg"), &data).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains(".jpg") && msg.contains(".svg"), "{msg}");
        assert!(!dir.join("out.jpg").exists());
        assert!(write_chart(&dir.join("noext"), &data).unwrap_err().to_string().contains("(none)"));

        write_chart(&dir.join("out.SVG"), &data).unwrap();
        assert!(std::fs::read_to_string(dir.join("out.SVG")).unwrap().contains("<svg"));
        let png = write_chart(&dir.join("out.png"), &data).unwrap_err().to_string();
        assert!(png.contains("SVG only") && png.contains(".svg"), "{png}");
        assert!(!dir.join("out.png").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nice_ticks_use_round_steps_and_cover_the_range() {
        let (ticks, step) = nice_ticks(0.0, 23.3, 5.0);
        assert_eq!(step, 5.0);
        assert_eq!(ticks, vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
        let (ticks, step) = nice_ticks(0.0, 1.04, 4.0);
        assert_eq!(step, 0.5);
        assert_eq!(ticks.last(), Some(&1.5));
        assert_eq!(format_value(0.30000000000000004, decimals_for(0.1)), "0.3");
        assert_eq!(format_value(-0.0001, 1), "0.0");
    }

    #[test]
    fn time_labels_are_utc_and_round() {
        assert_eq!(civil(APR_16_NOON), (2026, 4, 16, 12, 0, 0));
        assert_eq!(civil(1_709_251_198_000), (2024, 2, 29, 23, 59, 58));
        assert_eq!(civil(-3_600_000), (1969, 12, 31, 23, 0, 0));

        let ticks = time_ticks(APR_16_NOON - 12 * HOUR, APR_16_NOON + 60 * HOUR, 1100.0);
        assert!(ticks.len() >= 6 && ticks.len() <= 20, "{ticks:?}");
        assert!(ticks.iter().all(|(t, _)| t % HOUR == 0));
        assert!(ticks.iter().any(|(_, l)| l == "04-16 12:00"), "{ticks:?}");

        // Within one day, hours alone.
        let ticks = time_ticks(APR_16_NOON, APR_16_NOON + 2 * HOUR, 1000.0);
        assert!(ticks.iter().any(|(_, l)| l == "13:00"), "{ticks:?}");
        // Across months, days alone, on Mondays when weekly.
        let ticks = time_ticks(APR_16_NOON, APR_16_NOON + 90 * DAY, 600.0);
        assert!(ticks.iter().all(|(_, l)| l.len() == 5 && l.as_bytes()[2] == b'-'), "{ticks:?}");
    }

    #[test]
    fn shading_appears_only_where_demand_exceeds_serving() {
        let start = APR_16_NOON;
        let mut data = ChartData {
            title: "t".to_owned(),
            start_ms: start,
            end_ms: start + 10 * HOUR,
            load: vec![Series::new("demand", Style::Line, (0..=10).map(|h| (start + h * HOUR, 3.0)).collect())],
            sizes: vec![Series::new("serving", Style::Step, vec![(start, 4.0)])],
            ..ChartData::default()
        };
        assert!(!render_svg(&data, 600, 400).contains("shortfall"));
        data.load[0].points[5].1 = 9.0;
        let svg = render_svg(&data, 600, 400);
        assert_eq!(svg.matches(r#"class="shortfall""#).count(), 1);
    }

    #[test]
    fn empty_and_degenerate_input_still_renders() {
        let data = ChartData::default();
        let svg = render_svg(&data, 10, 10);
        check_xml(&svg).unwrap();
        assert!(svg.contains(r#"width="160" height="120""#), "raised to the least size");
    }

    /// Writes the sample to the temp directory for a person to look at:
    /// `cargo test --lib chart::tests::render_example -- --ignored`.
    #[test]
    #[ignore = "writes files for manual inspection"]
    fn render_example() {
        let data = sample(10 * SECOND);
        let dir = std::env::temp_dir();
        write_chart(&dir.join("chart_example.svg"), &data).unwrap();
        // The burst, close up: the shortfall while new nodes are provisioned.
        let zoom = ChartData {
            title: "bigtable/prod-events: burst".to_owned(),
            start_ms: data.start_ms + DAY + 13 * HOUR,
            end_ms: data.start_ms + DAY + 17 * HOUR,
            ..data
        };
        write_chart(&dir.join("chart_example_zoom.svg"), &zoom).unwrap();
    }
}
