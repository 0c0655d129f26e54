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
//! series well under a megabyte. A series with more than a few samples a column (weeks or months
//! of minutes) is drawn as a light band from each column's lowest to its highest sample and one
//! line through the columns' means (a step series: the value each column ends on): drawn sample
//! by sample, every column would zigzag across its whole range and the plot fill as a solid band.
//! The target and limit labels of a metric panel are placed so they never overprint each other,
//! however close their lines.
//!
//! The parts: `layout` (panels, legends, placement, scales) and `draw` (primitives per panel)
//! build the `scene`; `reduce` thins the data to pixel columns; `ticks` picks value and UTC time
//! ticks (calendar fields from `jiff`); `marks` and `palette` hold the small shapes and colours;
//! `svg` writes the scene.

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
    /// Lower panels, one per metric, each on its own value scale so a request count in the
    /// thousands never flattens a utilization of 0.6 next to it. When empty the chart has one
    /// panel.
    pub metrics: Vec<MetricPanel>,
}

/// One metric's panel: its series on a scale of its own, with the target and the limit drawn as
/// labelled lines (and always inside the scale, however high a spike goes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricPanel {
    /// Label of the panel's y axis, e.g. "cpu per node".
    pub label: String,
    /// Observed, smoothed, effective target and the like, in the metric's units.
    pub series: Vec<Series>,
    /// The value the policy holds the metric at, drawn as a labelled line.
    pub target: Option<f64>,
    /// The value the metric must not pass (the target × the limit ratio, or the headroom's
    /// `limit`), drawn as a labelled line.
    pub limit: Option<f64>,
}

impl MetricPanel {
    /// A panel from its label and series, without target or limit lines.
    pub fn new(label: impl Into<String>, series: Vec<Series>) -> Self {
        MetricPanel { label: label.into(), series, target: None, limit: None }
    }

    /// The same panel with its target and limit lines (non-finite values draw no line).
    pub fn with_lines(mut self, target: Option<f64>, limit: Option<f64>) -> Self {
        self.target = target.filter(|v| v.is_finite());
        self.limit = limit.filter(|v| v.is_finite());
        self
    }
}

/// One named line on the chart.
///
/// Colours come from a colour-blind-safe palette (Okabe–Ito), by the series' position across
/// `load`, then `sizes`, then each metric panel's series.
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
    svg::write(&layout::build_scene(data, width, height))
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

mod draw;
pub mod embed;
mod layout;
mod marks;
mod palette;
mod reduce;
mod scene;
mod svg;
#[cfg(test)]
mod tests;
mod ticks;
