//! The controller's dashboard, served next to `/metrics`:
//!
//! | route | what |
//! |---|---|
//! | `/` | the page: a card per policy; it refreshes itself from `/api/policies` |
//! | `/api/policies` | every policy: the readout row, why it is (not) scaling, conditions, recent decisions |
//! | `/api/policies/{ns}/{name}` | one policy, with its history points |
//! | `/api/policies/{ns}/{name}/chart.svg` | its chart, drawn by [`crate::chart`] like `simulate --chart` |
//!
//! Everything is embedded in the binary (no CDN: it works without internet). The JSON carries
//! what status carries minus the core's internal `state`; no credentials or environment.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::api::{MetricKind, Mode, ScalePolicy};
use crate::chart::{ChartData, Marker, MarkerKind, Series, Style};
use crate::core::{Dur, Ts};
use crate::readout::{self, PolicyView};

pub use crate::readout::history::{self, History, Point};
use crate::readout::published::{Published, key};

/// Chart size on the page; the page scales it to the card's width.
pub const CHART_WIDTH: u32 = 1100;
/// Chart height on the page.
pub const CHART_HEIGHT: u32 = 520;
/// The shortest time span a chart shows: a single point still gets an axis.
const MIN_SPAN: Dur = Dur::secs(30);

const INDEX_HTML: &str = include_str!("assets/index.html");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");

/// What the dashboard reads: what the engine publishes, the newest view of each policy and its
/// history.
pub type Dashboard = Published;

/// A card on the page: the readout of one policy plus what its chart needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// Row, why, conditions, recent decisions.
    #[serde(flatten)]
    pub detail: readout::Detail,
    /// How many history points the chart has.
    pub points: usize,
    /// URL of the chart, or None while there is no history ("no data yet").
    pub chart: Option<String>,
}

/// `/api/policies`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// When this was computed (RFC 3339).
    pub now: String,
    /// One card per policy, by namespace/name.
    pub policies: Vec<Card>,
}

/// The card of `sp` with `points` of history at `now`.
pub fn card(sp: &ScalePolicy, points: &[Point], now: Ts) -> Card {
    let detail = readout::detail(&PolicyView::from_policy(sp), now);
    // The version in the URL changes with the data, so the browser reloads the image only then.
    let chart = points.last().map(|p| {
        format!("/api/policies/{}/{}/chart.svg?v={}-{}", detail.row.namespace, detail.row.name, p.time.0, points.len())
    });
    Card { detail, points: points.len(), chart }
}

/// Whether a decision reason resizes (or, in DryRun, would have).
fn is_action(reason: &str) -> bool {
    matches!(
        reason,
        "ScaleOut"
            | "ScaleOutOnSpike"
            | "ScaleIn"
            | "RaiseToMinSize"
            | "LowerToMaxSize"
            | "RaiseToStorageFloor"
            | "ScheduledMinimum"
            | "ScheduledMaximum"
            | "OverrideMinimum"
            | "OverrideMaximum"
    )
}

/// The chart of one policy's history: load in nodes against serving and desired size, scale
/// actions and spikes marked, and the first metric per node against its target. None without
/// points.
pub fn chart_data(sp: &ScalePolicy, points: &[Point], now: Ts) -> Option<ChartData> {
    let first = points.first()?;
    let last = points.last()?;
    let end = now.max(last.time);
    // The data fills the width, with a small margin before the first point so its marker shows.
    let first_at = first.time.max(end - history::MAX_AGE);
    let start = (first_at - Dur((end - first_at).0 / 20)).min(end - MIN_SPAN);
    let metric = sp.spec.metrics.first();
    let kind = metric.map_or(MetricKind::PerNode, |m| m.kind);
    let name = metric.map_or("metric", |m| m.name.as_str());
    let nan = f64::NAN;
    let per_node = |p: &Point, v: Option<f64>| -> f64 {
        match (kind, v, p.current) {
            (MetricKind::PerNode, Some(v), _) => v,
            (MetricKind::Total, Some(v), Some(n)) => v / f64::from(n.max(1)),
            _ => nan,
        }
    };
    // Load in nodes: what the newest raw value asks for at the target.
    let load = |p: &Point| -> f64 {
        match (p.observed, p.target, kind) {
            (Some(v), Some(t), MetricKind::Total) if t > 0.0 => v / t,
            (Some(v), Some(t), MetricKind::PerNode) if t > 0.0 => p.current.map_or(nan, |n| v * f64::from(n) / t),
            _ => nan,
        }
    };
    let series = |f: &dyn Fn(&Point) -> f64| -> Vec<(i64, f64)> { points.iter().map(|p| (p.time.0, f(p))).collect() };
    let size = |v: Option<u32>| v.map_or(nan, f64::from);
    let dry = if sp.spec.mode == Mode::DryRun { " (dry run)" } else { "" };
    let mut markers = Vec::new();
    let mut spiking = false;
    for p in points {
        if is_action(&p.reason) && p.from != p.to {
            let kind = if p.to > p.from { MarkerKind::ScaleOut } else { MarkerKind::ScaleIn };
            markers.push(Marker { at_ms: p.time.0, kind, label: format!("{}->{} {}{dry}", p.from, p.to, p.reason) });
        }
        if p.spike && !spiking {
            markers.push(Marker { at_ms: p.time.0, kind: MarkerKind::Spike, label: "spike".into() });
        }
        spiking = p.spike;
    }
    let target = last.target.unwrap_or(nan);
    Some(ChartData {
        title: format!("{}: {}", key(sp), sp.spec.target.describe()),
        start_ms: start.0,
        end_ms: end.0,
        load: vec![Series::new("load (nodes at target)", Style::Area, series(&load))],
        sizes: vec![
            Series::new("serving", Style::Step, series(&|p| size(p.current))),
            Series::new("desired", Style::Dashed, series(&|p| size(p.desired))),
        ],
        markers,
        y_label: "nodes".into(),
        per_node: vec![
            Series::new("observed", Style::Line, series(&|p| per_node(p, p.observed))),
            Series::new("smoothed", Style::Line, series(&|p| per_node(p, p.smoothed))),
            Series::new("target", Style::Dashed, vec![(start.0, target), (end.0, target)]),
        ],
        per_node_label: format!("{name} per node"),
    })
}

/// The dashboard's routes, to merge into the controller's router.
pub fn router(d: Dashboard) -> Router {
    Router::new()
        .route("/", get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }))
        .route("/assets/dashboard.js", get(|| async { page(DASHBOARD_JS, "text/javascript; charset=utf-8") }))
        .route("/assets/dashboard.css", get(|| async { page(DASHBOARD_CSS, "text/css; charset=utf-8") }))
        .route("/api/policies", get(list))
        .route("/api/policies/{ns}/{name}", get(one))
        .route("/api/policies/{ns}/{name}/chart.svg", get(chart))
        .with_state(d)
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Only our own script and styles; the chart is an image from the same origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn json<T: Serialize>(v: &T) -> Response {
    match serde_json::to_string(v) {
        Ok(body) => {
            ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn policies(d: &Dashboard) -> Vec<ScalePolicy> {
    d.snapshots.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
}

fn find(d: &Dashboard, ns: &str, name: &str) -> Option<ScalePolicy> {
    d.snapshots.read().unwrap_or_else(|e| e.into_inner()).get(&format!("{ns}/{name}")).cloned()
}

/// The overview at `now`.
pub fn overview(d: &Dashboard, now: Ts) -> Overview {
    let policies = policies(d).iter().map(|sp| card(sp, &d.history.points(&key(sp)), now)).collect();
    Overview { now: now.to_rfc3339(), policies }
}

async fn list(State(d): State<Dashboard>) -> Response {
    json(&overview(&d, crate::clock::now()))
}

/// `/api/policies/{ns}/{name}`: the card and its points.
#[derive(Serialize)]
struct One {
    #[serde(flatten)]
    card: Card,
    history: Vec<Point>,
}

async fn one(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    let Some(sp) = find(&d, &ns, &name) else {
        return (StatusCode::NOT_FOUND, format!("no policy {ns}/{name} has been evaluated here")).into_response();
    };
    let history = d.history.points(&key(&sp));
    json(&One { card: card(&sp, &history, crate::clock::now()), history })
}

async fn chart(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    let Some(sp) = find(&d, &ns, &name) else {
        return (StatusCode::NOT_FOUND, format!("no policy {ns}/{name} has been evaluated here")).into_response();
    };
    let points = d.history.points(&key(&sp));
    match chart_data(&sp, &points, crate::clock::now()) {
        Some(data) => (
            [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=3600")],
            crate::chart::render_svg(&data, CHART_WIDTH, CHART_HEIGHT),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no data yet").into_response(),
    }
}
