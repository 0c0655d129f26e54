//! The controller's dashboard, served next to `/metrics`:
//!
//! | route | what |
//! |---|---|
//! | `/` | the page: a card per policy; it refreshes itself from `/api/policies` |
//! | `/api/policies` | every policy: the readout row, why it is (not) scaling, conditions, recent decisions |
//! | `/api/policies/{ns}/{name}` | one policy, with its history points |
//! | `/api/policies/{ns}/{name}/chart.svg` | its chart, drawn by [`crate::chart`] like `simulate --chart` |
//! | `/api/policies/{ns}/{name}/events` | its timeline: the last 24 hours from status, newest first |
//! | `/api/events` | the fleet's timeline |
//!
//! Everything is embedded in the binary (no CDN: it works without internet). The JSON carries
//! what status carries minus the core's internal `state`; no credentials or environment.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use schemars::JsonSchema;
use serde::Serialize;

use crate::api::{MetricKind, Mode, ScalePolicy};
use crate::chart::{ChartData, Marker, MarkerKind, MetricPanel, Series, Style};
use crate::core::{Dur, Ts};
use crate::readout::{self, PolicyView};

pub use crate::readout::history::{self, History, Point};
use crate::readout::published::{Published, key};

/// Chart size on the page; the page scales it to the card's width.
pub const CHART_WIDTH: u32 = 1100;
/// Chart height on the page for a policy with one metric.
pub const CHART_HEIGHT: u32 = 520;
/// Height added per further metric: each metric has a panel of its own, and ten of them in the
/// one-metric height would leave a few pixels each.
pub const CHART_METRIC_HEIGHT: u32 = 160;
/// The chart's height for `metrics` metric panels.
pub fn chart_height(metrics: usize) -> u32 {
    CHART_HEIGHT + CHART_METRIC_HEIGHT * metrics.saturating_sub(1) as u32
}

/// The shortest time span a chart shows: a single point still gets an axis.
const MIN_SPAN: Dur = Dur::secs(30);

const INDEX_HTML: &str = include_str!("assets/index.html");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");

/// What the dashboard reads: what the engine publishes, the newest view of each policy and its
/// history.
pub type Dashboard = Published;

/// A card on the page: the readout of one policy plus what its chart needs.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// Row, why, conditions, recent decisions.
    #[serde(flatten)]
    pub detail: readout::Detail,
    /// How many history points the chart has.
    pub points: usize,
    /// URL of the chart, or None while there is no history ("no data yet").
    pub chart: Option<String>,
    /// The target's kind as the spec names it: bigtableCluster, gkeNodePool, workload, ...
    pub target_kind: String,
    /// When the policy last resized (or, in DryRun, last proposed a resize), RFC 3339.
    pub last_acted: Option<String>,
}

/// `/api/policies`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Overview {
    /// When this was computed (RFC 3339).
    pub now: String,
    /// One card per policy, by namespace/name.
    pub policies: Vec<Card>,
}

/// The target the policy holds metric `m` at: as its last decision recorded it (a target left
/// out is filled from the target itself, e.g. a Spanner instance's configuration), else as the
/// spec alone resolves it.
fn held_target(sp: &ScalePolicy, m: &crate::api::MetricSpec) -> Option<f64> {
    let recorded = sp.status.as_ref().and_then(|s| s.last_decision.as_ref()).and_then(|d| d.metrics.get(&m.name));
    recorded.map(|r| r.target).or_else(|| crate::spec::target_of(&sp.spec, m))
}

/// The points to chart for `sp`: the day status keeps (5-minute buckets, the same on every
/// replica and after a restart) up to where this instance's own per-decision points begin,
/// then those.
pub fn points(sp: &ScalePolicy, live: &[Point]) -> Vec<Point> {
    let Some(h) = sp.status.as_ref().and_then(|s| s.history.as_ref()) else { return live.to_vec() };
    let first_live = live.first().map_or(Ts(i64::MAX), |p| p.time);
    let target = sp.spec.metrics.first().and_then(|m| held_target(sp, m));
    let resizes: Vec<(Ts, &crate::api::ResizeEntry)> =
        h.resizes.iter().filter_map(|r| Some((Ts::parse_rfc3339(&r.time).ok()?, r))).collect();
    let mut out: Vec<Point> = Vec::new();
    for b in crate::readout::day::buckets(h) {
        let end = b.start + crate::readout::day::BUCKET;
        if end > first_live || (b.observed.is_none() && b.serving.is_none()) {
            continue;
        }
        // A resize inside the bucket shows as that bucket's decision, so the chart marks it.
        let resize = resizes.iter().find(|(t, _)| *t >= b.start && *t < end).map(|(_, r)| *r);
        out.push(Point {
            time: b.start,
            observed: b.observed,
            smoothed: b.smoothed,
            target,
            effective_target: None,
            serving: b.serving,
            current: b.serving,
            desired: b.desired,
            spike: resize.is_some_and(|r| r.reason == "ScaleOutOnSpike"),
            reason: resize.map_or_else(String::new, |r| r.reason.clone()),
            from: resize.map_or(0, |r| r.from),
            to: resize.map_or(0, |r| r.to),
            others: Vec::new(),
        });
    }
    out.extend(live.iter().cloned());
    out
}

/// The card of `sp` with `points` of history at `now`.
pub fn card(sp: &ScalePolicy, points: &[Point], now: Ts) -> Card {
    let detail = readout::detail(&PolicyView::from_policy(sp), now);
    // The version in the URL changes with the data, so the browser reloads the image only then.
    let chart = points.last().map(|p| {
        format!("/api/policies/{}/{}/chart.svg?v={}-{}", detail.row.namespace, detail.row.name, p.time.0, points.len())
    });
    let target_kind = serde_json::to_value(&sp.spec.target)
        .ok()
        .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
        .unwrap_or_default();
    Card { points: points.len(), chart, target_kind, last_acted: last_acted(sp), detail }
}

/// The newest resize in status (its day of history, else its recent decisions).
fn last_acted(sp: &ScalePolicy) -> Option<String> {
    let st = sp.status.as_ref()?;
    let newest = |times: Vec<&String>| {
        times
            .into_iter()
            .filter_map(|t| Some((Ts::parse_rfc3339(t).ok()?, t)))
            .max_by_key(|(t, _)| t.0)
            .map(|(_, t)| t.clone())
    };
    let resizes = st.history.as_ref().map(|h| h.resizes.iter().map(|r| &r.time).collect()).unwrap_or_default();
    newest(resizes).or_else(|| {
        newest(st.recent_decisions.iter().filter(|d| d.from != d.to && is_action(&d.reason)).map(|d| &d.time).collect())
    })
}

/// Time ranges the chart can show, by the `range` query value.
pub fn range(name: &str) -> Option<Dur> {
    match name {
        "1h" => Some(Dur::mins(60)),
        "6h" => Some(Dur::mins(6 * 60)),
        "24h" | "1d" => Some(Dur::mins(24 * 60)),
        _ => None,
    }
}

/// Whether a decision reason resizes (or, in DryRun, would have).
fn is_action(reason: &str) -> bool {
    matches!(
        reason,
        "ScaleOut"
            | "ScaleOutOnSpike"
            | "ScaleOutAhead"
            | "ScaleOutOnRamp"
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
    chart_data_in(sp, points, now, crate::readout::day::SPAN)
}

/// [`chart_data`] over at most the last `span` before `now`.
pub fn chart_data_in(sp: &ScalePolicy, points: &[Point], now: Ts, span: Dur) -> Option<ChartData> {
    let end = now.max(points.last()?.time);
    let from = points.partition_point(|p| p.time < end - span);
    let points = &points[from.min(points.len().saturating_sub(1))..];
    let first = points.first()?;
    let last = points.last()?;
    // The data fills the width, with a small margin before the first point so its marker shows.
    let first_at = first.time.max(end - span);
    let start = (first_at - Dur((end - first_at).0 / 20)).min(end - MIN_SPAN);
    let metric = sp.spec.metrics.first();
    let kind = metric.map_or(MetricKind::PerNode, |m| m.kind);
    let nan = f64::NAN;
    // A metric's value per node: a total is spread over the nodes that measured it.
    let per_node = |kind: MetricKind, v: Option<f64>, n: Option<u32>| -> f64 {
        match (kind, v, n) {
            (MetricKind::PerNode, Some(v), _) => v,
            (MetricKind::Total, Some(v), Some(n)) => v / f64::from(n.max(1)),
            _ => nan,
        }
    };
    // Nodes that measured the sample: new nodes serve only after their warm-up.
    let serving = |p: &Point| p.serving.or(p.current);
    // Load in nodes: what the newest raw value asks for at the target (the readout's shortfall
    // uses the same arithmetic, so the health badge and the shading agree).
    let load = |p: &Point| -> f64 {
        match (p.observed, p.target, kind) {
            (Some(v), Some(t), MetricKind::Total) if t > 0.0 => v / t,
            (Some(v), Some(t), MetricKind::PerNode) if t > 0.0 => serving(p).map_or(nan, |n| v * f64::from(n) / t),
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
    // One panel per metric, each on its own scale with its target and limit lines.
    let mut metrics = Vec::new();
    for (i, m) in sp.spec.metrics.iter().enumerate() {
        let held = held_target(sp, m).unwrap_or(f64::NAN);
        let limit = crate::readout::limit_of(m, held);
        let mut v = if i == 0 {
            vec![
                Series::new(
                    "observed (per serving node)",
                    Style::Line,
                    series(&|p| per_node(kind, p.observed, serving(p))),
                ),
                Series::new(
                    "smoothed (per node, all nodes)",
                    Style::Line,
                    series(&|p| per_node(kind, p.smoothed, p.current)),
                ),
            ]
        } else {
            fn other<'p>(p: &'p Point, name: &str) -> Option<&'p crate::readout::history::MetricPoint> {
                p.others.iter().find(|o| o.name == name)
            }
            vec![
                Series::new(
                    "observed (per serving node)",
                    Style::Line,
                    series(&|p| per_node(m.kind, other(p, &m.name).and_then(|o| o.observed), serving(p))),
                ),
                Series::new(
                    "smoothed (per node, all nodes)",
                    Style::Line,
                    series(&|p| per_node(m.kind, other(p, &m.name).and_then(|o| o.smoothed), p.current)),
                ),
            ]
        };
        // Only when noise headroom lowered it at some point: otherwise it is the target line.
        if i == 0
            && points
                .iter()
                .any(|p| matches!((p.effective_target, p.target), (Some(e), Some(t)) if e < t * (1.0 - 1e-6)))
        {
            v.push(Series::new("effective target", Style::Dashed, series(&|p| p.effective_target.unwrap_or(nan))));
        }
        let target = if i == 0 { last.target.unwrap_or(held) } else { held };
        metrics.push(MetricPanel::new(format!("{} per node", m.name), v).with_lines(Some(target), Some(limit)));
    }
    Some(ChartData {
        title: format!("{}: {}", key(sp), sp.spec.target.describe()),
        start_ms: start.0,
        end_ms: end.0,
        load: vec![Series::new("load (nodes at target)", Style::Area, series(&load))],
        sizes: vec![
            Series::new("serving (warmed up)", Style::Step, series(&|p| size(serving(p)))),
            Series::new("desired", Style::Dashed, series(&|p| size(p.desired))),
        ],
        markers,
        y_label: "nodes".into(),
        metrics,
    })
}

/// The JSON Schema (draft 2020-12) of every JSON answer the dashboard serves, generated from
/// the response types: `$defs` holds one schema per route's answer (`Overview` for
/// `/api/policies`, `PolicyDetail` for `/api/policies/{ns}/{name}`, `Timeline` for both event
/// routes) and everything they use. Checked in as `docs/api.schema.json` (`ebbflow api-schema`
/// prints it); a test fails when the two drift apart.
pub fn api_schema() -> serde_json::Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let routes = [
        ("/api/policies", generator.subschema_for::<Overview>()),
        ("/api/policies/{namespace}/{name}", generator.subschema_for::<PolicyDetail>()),
        ("/api/policies/{namespace}/{name}/events", generator.subschema_for::<Timeline>()),
        ("/api/events", generator.subschema_for::<Timeline>()),
    ];
    let mut defs = serde_json::Value::Object(generator.take_definitions(true));
    closed(&mut defs);
    let mut routes_json = serde_json::Map::new();
    for (path, schema) in routes {
        routes_json.insert(path.to_owned(), schema.to_value());
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ebbflow.dev/schemas/api.schema.json",
        "title": "ebbflow dashboard JSON API",
        "description": "The answers of the controller's dashboard routes. x-routes maps each route to the schema of its answer (GET, 200, application/json). Generated by `ebbflow api-schema` from the response types.",
        "x-routes": routes_json,
        "$defs": defs,
    })
}

/// Marks every object schema that lists its properties as closed (`additionalProperties:
/// false`), so a field the server sends but the schema does not name fails validation instead
/// of passing unnoticed. Flattened structs are merged into one object by schemars, so this
/// holds for them too.
fn closed(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("additionalProperties".into(), serde_json::Value::Bool(false));
            }
            o.values_mut().for_each(closed);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(closed),
        _ => {}
    }
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
        .route("/api/policies/{ns}/{name}/events", get(policy_events))
        .route("/api/events", get(fleet_events))
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
    d.snapshots.read().unwrap_or_else(|e| e.into_inner()).values().map(|s| s.policy()).collect()
}

fn find(d: &Dashboard, ns: &str, name: &str) -> Option<ScalePolicy> {
    d.snapshots.read().unwrap_or_else(|e| e.into_inner()).get(&format!("{ns}/{name}")).map(|s| s.policy())
}

/// The overview at `now`. Cards need only how many points there are and the newest, so the
/// day in status is not decoded here (that is most of the time with 1,000 policies).
pub fn overview(d: &Dashboard, now: Ts) -> Overview {
    let policies = policies(d)
        .iter()
        .map(|sp| {
            let live = d.history.points(&key(sp));
            let day = sp.status.as_ref().and_then(|s| s.history.as_ref()).filter(|h| h.since.is_some());
            match (live.is_empty(), day) {
                // Only the version and the count go into the card: a stand-in point carries them.
                (true, Some(h)) => {
                    let n = h.serving.split_ascii_whitespace().count();
                    let end = h.since.as_deref().and_then(|s| Ts::parse_rfc3339(s).ok()).unwrap_or(now)
                        + Dur(crate::readout::day::BUCKET.0 * n as i64);
                    let stand_in = history::Point {
                        time: end,
                        observed: None,
                        smoothed: None,
                        target: None,
                        effective_target: None,
                        serving: None,
                        current: None,
                        desired: None,
                        spike: false,
                        reason: String::new(),
                        from: 0,
                        to: 0,
                        others: Vec::new(),
                    };
                    let mut c = card(sp, std::slice::from_ref(&stand_in), now);
                    c.points = n;
                    c
                }
                _ => card(sp, &live, now),
            }
        })
        .collect();
    Overview { now: now.to_rfc3339(), policies }
}

async fn list(State(d): State<Dashboard>) -> Response {
    json(&overview(&d, d.now()))
}

/// `/api/policies/{ns}/{name}`: the card and its points.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PolicyDetail {
    /// The card, as in `/api/policies`.
    #[serde(flatten)]
    pub card: Card,
    /// The chart's points, oldest first: the day status keeps, then this replica's own.
    pub history: Vec<Point>,
}

async fn one(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    let Some(sp) = find(&d, &ns, &name) else {
        return (StatusCode::NOT_FOUND, format!("no policy {ns}/{name} has been evaluated here")).into_response();
    };
    let history = points(&sp, &d.history.points(&key(&sp)));
    json(&PolicyDetail { card: card(&sp, &history, d.now()), history })
}

/// `/api/events` (and `/api/policies/{ns}/{name}/events`): a timeline, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Timeline {
    /// When this was computed (RFC 3339).
    pub now: String,
    /// Newest first, at most [`readout::cli::FLEET_EVENTS`] for the fleet.
    pub events: Vec<readout::timeline::Event>,
}

/// The fleet's timeline at `now`.
pub fn fleet_timeline(d: &Dashboard, now: Ts) -> Timeline {
    let views: Vec<PolicyView> = policies(d).iter().map(PolicyView::from_policy).collect();
    Timeline { now: now.to_rfc3339(), events: readout::timeline::fleet(&views, now, readout::cli::FLEET_EVENTS) }
}

async fn fleet_events(State(d): State<Dashboard>) -> Response {
    json(&fleet_timeline(&d, d.now()))
}

async fn policy_events(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    let Some(sp) = find(&d, &ns, &name) else {
        return (StatusCode::NOT_FOUND, format!("no policy {ns}/{name} has been evaluated here")).into_response();
    };
    let now = d.now();
    json(&Timeline { now: now.to_rfc3339(), events: readout::timeline::events(&PolicyView::from_policy(&sp), now) })
}

/// `?range=1h|6h|24h` on the chart.
#[derive(serde::Deserialize)]
struct ChartQuery {
    range: Option<String>,
}

async fn chart(
    State(d): State<Dashboard>,
    Path((ns, name)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<ChartQuery>,
) -> Response {
    let span = match q.range.as_deref() {
        None => crate::readout::day::SPAN,
        Some(r) => match range(r) {
            Some(span) => span,
            None => return (StatusCode::BAD_REQUEST, format!("range={r}: use 1h, 6h or 24h")).into_response(),
        },
    };
    let Some(sp) = find(&d, &ns, &name) else {
        return (StatusCode::NOT_FOUND, format!("no policy {ns}/{name} has been evaluated here")).into_response();
    };
    let points = points(&sp, &d.history.points(&key(&sp)));
    match chart_data_in(&sp, &points, d.now(), span) {
        Some(data) => (
            [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=3600")],
            crate::chart::render_svg(&data, CHART_WIDTH, chart_height(data.metrics.len())),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no data yet").into_response(),
    }
}
