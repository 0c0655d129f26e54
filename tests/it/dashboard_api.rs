//! The dashboard without a browser: the history the engine keeps, the chart built from it, and
//! the routes as the controller serves them next to `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use ebbflow::api::{ScalePolicy, ScalePolicyStatus};
use ebbflow::chart::MarkerKind;
use ebbflow::core::{Dur, Ts};
use ebbflow::dashboard::{Dashboard, History, card, chart_data, overview};
use ebbflow::readout::history::{MAX_AGE, MAX_POINTS};
use ebbflow::readout::published::Shown;
use serde_json::{Value, json};

fn t0() -> Ts {
    Ts::parse_rfc3339("2026-11-23T12:00:00Z").expect("time")
}

fn policy(mode: &str) -> ScalePolicy {
    serde_json::from_value(json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": "orders", "namespace": "data"},
        "spec": {"target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
                 "minSize": 3, "maxSize": 12, "mode": mode,
                 "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}]}
    }))
    .expect("policy")
}

/// A status as the controller writes it after a tick at `at`.
fn status(at: Ts, reason: &str, from: u32, to: u32, raw: f64, spike: bool) -> ScalePolicyStatus {
    serde_json::from_value(json!({
        "target": "bigtable p1/i1/c1", "currentSize": from, "desiredSize": to,
        "lastDecision": {"time": at.to_rfc3339(), "direction": if to > from { "Up" } else { "None" },
                         "reason": reason, "message": format!("{reason} {from} -> {to}"), "from": from, "to": to,
                         "metrics": {"cpu": {"raw": raw, "smoothed": raw * 0.8, "target": 0.5, "spike": spike}}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                        "lastTransitionTime": t0().to_rfc3339()}]
    }))
    .expect("status")
}

/// History keeps one point per decision (the intent and the outcome of a tick are one), and
/// drops points past 720 or 6 hours.
#[test]
fn history_is_bounded_and_one_point_per_decision() {
    let sp = policy("Enforce");
    let h = History::default();
    h.record("data/orders", &sp, &status(t0(), "ScaleOutOnSpike", 3, 7, 1.2, true));
    h.record("data/orders", &sp, &status(t0(), "ScaleOutOnSpike", 3, 7, 1.2, true));
    assert_eq!(h.points("data/orders").len(), 1);
    // An older decision arriving late (a re-read status) is not history.
    h.record("data/orders", &sp, &status(t0() - Dur::secs(60), "WithinTolerance", 3, 3, 0.3, false));
    assert_eq!(h.points("data/orders").len(), 1);

    for i in 1..=1000 {
        h.record("data/orders", &sp, &status(t0() + Dur::secs(10 * i), "WithinTolerance", 7, 7, 0.4, false));
    }
    let p = h.points("data/orders");
    assert_eq!(p.len(), MAX_POINTS);
    assert_eq!(p.last().expect("newest").time, t0() + Dur::secs(10_000));

    for i in 1..=10 {
        h.record(
            "data/orders",
            &sp,
            &status(t0() + Dur::secs(10_000) + Dur::mins(60 * i), "WithinTolerance", 7, 7, 0.4, false),
        );
    }
    let p = h.points("data/orders");
    let newest = p.last().expect("newest").time;
    assert!(p.iter().all(|x| newest - x.time <= MAX_AGE), "nothing older than 6h");
    h.forget("data/orders");
    assert!(h.points("data/orders").is_empty());
}

/// The chart shows load, serving and desired size, observed and smoothed against the target, a
/// marker for the scale-out and one per spike (not one per spiking tick).
#[test]
fn chart_marks_scale_actions_and_spikes() {
    let sp = policy("Enforce");
    let h = History::default();
    h.record("k", &sp, &status(t0(), "WithinTolerance", 3, 3, 0.3, false));
    h.record("k", &sp, &status(t0() + Dur::secs(60), "ScaleOutOnSpike", 3, 7, 1.2, true));
    h.record("k", &sp, &status(t0() + Dur::secs(120), "ResizeInProgress", 3, 3, 1.1, true));
    h.record("k", &sp, &status(t0() + Dur::secs(180), "WithinTolerance", 7, 7, 0.5, false));
    let points = h.points("k");
    let data = chart_data(&sp, &points, t0() + Dur::secs(200)).expect("chart");
    let kinds: Vec<MarkerKind> = data.markers.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![MarkerKind::ScaleOut, MarkerKind::Spike]);
    assert_eq!(data.markers[0].label, "3->7 ScaleOutOnSpike");
    // Load in nodes at the target: 1.2 per node on 3 nodes at 0.5 per node is 7.2 nodes.
    assert!((data.load[0].points[1].1 - 7.2).abs() < 1e-9);
    let names: Vec<&str> = data.sizes.iter().chain(&data.metrics[0].series).map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["serving (warmed up)", "desired", "observed (per serving node)", "smoothed (per node, all nodes)"]
    );
    // The target and the limit (1.25 × target without spec.metrics[].headroom.limit).
    assert_eq!((data.metrics[0].target, data.metrics[0].limit), (Some(0.5), Some(0.625)));
    assert!(data.start_ms < t0().0 && data.end_ms == (t0() + Dur::secs(200)).0, "the data fills the width");
    let single = chart_data(&sp, &points[..1], t0()).expect("chart");
    assert!(single.end_ms - single.start_ms >= Dur::secs(30).0, "one point still gets an axis");
    let svg = ebbflow::chart::render_svg(&data, 1100, 520);
    assert!(svg.contains("ScaleOutOnSpike"), "the marker's tooltip");

    let dry = chart_data(&policy("DryRun"), &points, t0() + Dur::secs(200)).expect("chart");
    assert_eq!(dry.markers[0].label, "3->7 ScaleOutOnSpike (dry run)");
    assert!(chart_data(&sp, &[], t0()).is_none(), "no chart without data");
}

/// A policy without history has a card without a chart (the page says "no data yet").
#[test]
fn card_without_history_has_no_chart() {
    let mut sp = policy("Enforce");
    sp.status = Some(ScalePolicyStatus::default());
    let c = card(&sp, &[], t0());
    assert_eq!(c.chart, None);
    assert_eq!(c.points, 0);
    let j = serde_json::to_value(&c).expect("json");
    assert_eq!(j["policy"], "data/orders");
    assert_eq!(j["health"]["level"], "Pending");
}

fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_string(), body.to_string())
}

/// The routes answer with the page, the JSON and the chart; the JSON leaves out the core's
/// internal state and anything not about the policy.
#[tokio::test(flavor = "multi_thread")]
async fn routes_serve_page_json_and_chart() {
    let mut sp = policy("Enforce");
    let mut st = status(t0(), "ScaleOutOnSpike", 3, 7, 1.2, true);
    st.state = Some(Default::default());
    sp.status = Some(st.clone());
    let snapshots = Arc::new(RwLock::new(BTreeMap::from([("data/orders".to_string(), Shown::of(sp.clone()))])));
    let history = History::default();
    history.record("data/orders", &sp, &st);
    let d = Dashboard { snapshots, history, ..Default::default() };
    let ov = overview(&d, t0() + Dur::secs(30));
    assert_eq!(ov.policies.len(), 1);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, ebbflow::dashboard::router(d)).await });
    let (head, body, list, one, chart, missing, js) = tokio::task::spawn_blocking(move || {
        let (head, body) = get(addr, "/");
        (
            head,
            body,
            get(addr, "/api/policies").1,
            get(addr, "/api/policies/data/orders").1,
            get(addr, "/api/policies/data/orders/chart.svg"),
            get(addr, "/api/policies/data/nope").0,
            get(addr, "/assets/dashboard.js").1,
        )
    })
    .await
    .expect("client");
    assert!(head.contains("text/html"), "{head}");
    assert!(head.to_lowercase().contains("content-security-policy: default-src 'none'"), "{head}");
    assert!(body.contains("/assets/dashboard.js") && !body.contains("http://") && !body.contains("https://"));
    assert!(js.contains("fetch(\"/api/policies\""));

    let list: Value = serde_json::from_str(&list).expect("json");
    let p = &list["policies"][0];
    assert_eq!(p["policy"], "data/orders");
    assert_eq!(p["last"]["reason"], "ScaleOutOnSpike");
    assert!(p["chart"].as_str().expect("chart url").starts_with("/api/policies/data/orders/chart.svg?v="));
    assert!(!list.to_string().contains("\"state\""), "the core's state is not shown");

    let one: Value = serde_json::from_str(&one).expect("json");
    assert_eq!(one["history"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["history"][0]["reason"], "ScaleOutOnSpike");
    assert!(chart.0.contains("image/svg+xml"), "{}", chart.0);
    assert!(chart.1.starts_with("<svg") || chart.1.starts_with("<?xml"), "{}", &chart.1[..60.min(chart.1.len())]);
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

/// A name that reads as markup (a scenario, trace or metric name is the user's text) stays data:
/// the embedded JSON holds no "<", so neither "</script>" nor "<!--" can end it or swallow the
/// script after it, and it still parses to the same name.
#[test]
fn simulation_report_data_cannot_break_out_of_its_script() {
    let mut sc = ebbflow::sim::cli::SimulateArgs::default().scenario().expect("embedded default scenario");
    sc.name = "x</script><!--<script>alert(1)".into();
    let runs = ebbflow::sim::compare(&sc);
    let html = ebbflow::sim::html::html(&sc, &runs);
    let marker = "<script type=\"application/json\" id=\"chart-data\">";
    let at = html.find(marker).expect("embedded data") + marker.len();
    let end = at + html[at..].find("</script>").expect("end of data");
    let text = &html[at..end];
    assert!(!text.contains('<'), "raw < in the embedded data: {}", &text[..text.len().min(300)]);
    let data: Value = serde_json::from_str(text).expect("the embedded data are JSON");
    assert!(data.to_string().contains("x</script><!--<script>alert(1)"), "the name survives as data");
    assert_eq!(html.matches("<script>").count(), 1, "one inline script, the report's own");
    assert!(html.contains("id=\"chart-noscript\""), "a note for viewers that run no script");
}

/// `simulate --html` is one self-contained file: the summary with every baseline, the zoomable
/// chart (its data and script inline), the scale actions; nothing fetched from elsewhere. The
/// embedded data cover the whole replay, keep its highest sample, and carry the metric's target
/// and limit.
#[test]
fn simulation_report_is_self_contained() {
    let sc = ebbflow::sim::cli::SimulateArgs::default().scenario().expect("embedded default scenario");
    let runs = ebbflow::sim::compare(&sc);
    let html = ebbflow::sim::html::html(&sc, &runs);
    for algorithm in ["hpa", "static-peak", "oracle", "oracle-30"] {
        assert!(html.contains(&format!("<td>{algorithm}</td>")), "{algorithm} row");
    }
    assert!(html.contains("Elasticity (SPEC Research Group metrics)") && html.contains("θU"), "the scores table");
    assert!(html.contains("Scale actions ("));
    assert!(!html.contains(" src=") && !html.contains("href=\"http") && !html.contains("url(http"), "nothing fetched");
    assert!(
        html.contains("data-range=\"day\"")
            && html.contains("data-range=\"week\"")
            && html.contains("data-range=\"all\"")
    );
    let at = html.find("<script type=\"application/json\" id=\"chart-data\">").expect("embedded data") + 48;
    let end = at + html[at..].find("</script>").expect("end of data");
    let data: Value = serde_json::from_str(&html[at..end]).expect("the embedded data are JSON");
    let (start, stop) = sc.trace.span();
    assert_eq!((data["start"].as_i64(), data["end"].as_i64()), (Some(start.0), Some(stop.0)));
    let cpu = &data["panels"][1];
    assert_eq!((cpu["target"].as_f64(), cpu["limit"].as_f64()), (Some(sc.policy.metrics[0].target), Some(sc.limit)));
    let observed =
        cpu["series"].as_array().expect("series").iter().find(|s| s["name"] == "observed").expect("observed");
    let top = observed.get("hi").unwrap_or(&observed["lo"]);
    let drawn_max = top.as_array().expect("buckets").iter().filter_map(Value::as_f64).fold(f64::MIN, f64::max);
    let peak = runs[0].steps.iter().map(|s| s.observed).filter(|v| v.is_finite()).fold(f64::MIN, f64::max);
    assert!((drawn_max - peak).abs() <= 1e-5 * peak.abs(), "highest sample {peak}, embedded {drawn_max}");
}

/// Every series deploy/grafana/ebbflow.json queries is one the controller exports, so the
/// dashboard breaks in review, not in Grafana, when a metric is renamed.
#[test]
fn grafana_dashboard_queries_exported_metrics() {
    let mut registry = prometheus_client::registry::Registry::default();
    let m = ebbflow::controller::metrics::Metrics::register(&mut registry);
    // Families without a series print nothing: give each one.
    use ebbflow::controller::metrics::{MetricLabels, PolicyLabels, ReasonLabels};
    let pl = PolicyLabels { namespace: "n".into(), policy: "p".into() };
    let ml = MetricLabels { namespace: "n".into(), policy: "p".into(), metric: "cpu".into() };
    m.current_size.get_or_create(&pl).set(1);
    m.desired_size.get_or_create(&pl).set(1);
    m.observed.get_or_create(&ml).set(0.5);
    m.smoothed.get_or_create(&ml).set(0.5);
    m.decisions
        .get_or_create(&ReasonLabels { namespace: "n".into(), policy: "p".into(), reason: "ScaleOut".into() })
        .inc();
    m.skip("n", "p", "DryRun");
    for g in [&m.target, &m.effective_target, &m.noise, &m.forecast_demand] {
        g.get_or_create(&ml).set(0.5);
    }
    m.forecast_size.get_or_create(&ml).set(3);
    m.budget_left.get_or_create(&pl).set(99);
    m.api_error(&ebbflow::adapters::AdapterError::new("bigtable", ebbflow::adapters::ErrorKind::PermissionDenied, "x"));
    let text = ebbflow::controller::metrics::encode(&registry);
    let mut exported = std::collections::BTreeSet::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').expect("name and type");
        match kind {
            "counter" => exported.extend([format!("{name}_total")]),
            "histogram" => exported.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}"))),
            _ => exported.extend([name.to_string()]),
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/ebbflow.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("valid JSON");
    let mut used = std::collections::BTreeSet::new();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    // Resizes show as annotations on every panel.
    let resizes = dash["annotations"]["list"]
        .as_array()
        .expect("annotations")
        .iter()
        .find(|a| a["name"] == "Resizes")
        .expect("an annotation query for resizes");
    exprs.push(resizes["expr"].as_str().expect("annotation expr").to_string());
    for v in dash["templating"]["list"].as_array().expect("variables") {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_string());
        }
    }
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("ebbflow_") {
            let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            rest = &rest[i + name.len()..];
            used.insert(name);
        }
    }
    assert!(used.len() >= 8, "{used:?}");
    // The series that say why a cluster is larger than target arithmetic, and the budget.
    for name in [
        "ebbflow_metric_effective_target",
        "ebbflow_metric_noise_ratio",
        "ebbflow_metric_forecast_size",
        "ebbflow_policy_resize_budget_remaining",
    ] {
        assert!(used.contains(name), "the Grafana dashboard does not show {name}");
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(unknown.is_empty(), "not exported: {unknown:?}; exported: {exported:?}");
}

/// A status with a day of history: a resize 3 -> 7 at 10:00 and 5-minute buckets for 24 hours.
fn status_with_a_day(now: Ts) -> ScalePolicyStatus {
    use ebbflow::readout::day;
    let mut h: Option<ebbflow::api::StatusHistory> = None;
    for m in 0..(24 * 60) {
        let at = now - Dur::mins(24 * 60) + Dur::mins(m);
        let (n, v) = if m < 600 { (3, 0.45) } else { (7, 0.4) };
        let r = day::Reading { observed: Some(v), smoothed: Some(v), serving: Some(n), desired: Some(n) };
        h = Some(day::fold(h.as_ref(), at, r));
    }
    let mut h = h.expect("history");
    let at = now - Dur::mins(24 * 60) + Dur::mins(600);
    day::resize_started(&mut h, at, 3, 7, "ScaleOut");
    day::resize_finished(&mut h, at, at + Dur::secs(95), None);
    let mut st = status(now, "WithinTolerance", 7, 7, 0.4, false);
    st.history = Some(h);
    st
}

/// After a restart (or on a follower) this instance has no points of its own: the chart shows
/// the day status keeps, with the resize marked, and a time range narrows it.
#[test]
fn a_restarted_controller_charts_the_day_from_status() {
    let now = t0();
    let mut sp = policy("Enforce");
    sp.status = Some(status_with_a_day(now));
    let pts = ebbflow::dashboard::points(&sp, &[]);
    assert!(pts.len() >= 280, "{}", pts.len());
    let data = chart_data(&sp, &pts, now).expect("chart");
    assert!(data.end_ms - data.start_ms >= Dur::mins(23 * 60).0, "a day wide");
    assert!(data.markers.iter().any(|m| m.label.starts_with("3->7 ScaleOut")), "{:?}", data.markers);
    let hour = ebbflow::dashboard::chart_data_in(&sp, &pts, now, Dur::mins(60)).expect("chart");
    assert!(hour.end_ms - hour.start_ms <= Dur::mins(64).0, "an hour wide: {}", hour.end_ms - hour.start_ms);
    // Live points take over where they begin; the buckets before them stay.
    let h = History::default();
    h.record("data/orders", &sp, sp.status.as_ref().expect("status"));
    let merged = ebbflow::dashboard::points(&sp, &h.points("data/orders"));
    assert_eq!(merged.last().map(|p| p.time), Some(now));
    assert!(merged.windows(2).all(|w| w[0].time <= w[1].time), "in time order");
    let c = card(&sp, &pts, now);
    assert_eq!(c.target_kind, "bigtableCluster");
    assert_eq!(c.last_acted.as_deref(), Some((now - Dur::mins(24 * 60) + Dur::mins(600)).to_rfc3339().as_str()));
}

/// `/api/policies` for a fleet of 1,000 policies, each with a day of history: every card has
/// the fields the page filters and sorts on, with the right types, and the answer stays small
/// enough to fetch every 5 seconds.
#[test]
fn fleet_of_a_thousand_has_the_shape_the_page_reads() {
    let now = t0();
    let st = status_with_a_day(now);
    let mut map = BTreeMap::new();
    for i in 0..1000 {
        let mut sp = policy(if i % 3 == 0 { "DryRun" } else { "Enforce" });
        sp.metadata.name = Some(format!("p{i:04}"));
        sp.metadata.namespace = Some(format!("team-{}", i % 7));
        sp.status = Some(st.clone());
        map.insert(format!("team-{}/p{i:04}", i % 7), Shown::of(sp));
    }
    let d = Dashboard { snapshots: Arc::new(RwLock::new(map)), ..Default::default() };
    let body = serde_json::to_string(&overview(&d, now)).expect("json");
    let v: Value = serde_json::from_str(&body).expect("json");
    let cards = v["policies"].as_array().expect("policies");
    assert_eq!(cards.len(), 1000);
    for c in cards {
        for (field, ok) in [
            ("policy", c["policy"].is_string()),
            ("namespace", c["namespace"].is_string()),
            ("targetKind", c["targetKind"].is_string()),
            ("mode", c["mode"].is_string()),
            ("health.level", c["health"]["level"].is_string()),
            ("lastActed", c["lastActed"].is_string()),
            ("metric.smoothed", c["metric"]["smoothed"].is_number()),
            ("metric.target", c["metric"]["target"].is_number()),
            ("why", c["why"].is_array()),
            ("chart", c["chart"].is_string() || c["chart"].is_null()),
        ] {
            assert!(ok, "{field} missing or of the wrong type in {c}");
        }
    }
    // The whole answer conforms to the published schema.
    let errors = validate(&api_schema_file(), "/api/policies", &v);
    assert!(errors.is_empty(), "{}", errors[..errors.len().min(10)].join("\n"));
    // The day's series live in status, not in every overview card.
    assert!(body.len() < 4 * 1024 * 1024, "{} bytes", body.len());
}

/// A JSON Schema validator for the subset docs/api.schema.json uses: type (one or a list),
/// required, properties, additionalProperties, items, enum, const, anyOf, oneOf, allOf,
/// nullable (OpenAPI), minimum/maximum, integer formats, and `$ref` into `$defs`. No validator
/// crate is in the dependency tree, and this subset is small. Anything else the schema might
/// start to use is refused loudly, so the checks never pass by not understanding a keyword.
mod schema {
    use serde_json::Value;

    const KNOWN: &[&str] = &[
        "type",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "nullable",
        "minimum",
        "maximum",
        "format",
        "$ref",
        "description",
        "title",
        "default",
        "$schema",
        "$id",
        "$defs",
        "x-routes",
    ];

    /// Every way `v` fails `schema`, each naming the JSON path; empty when it conforms.
    pub fn errors(root: &Value, schema: &Value, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        check(root, schema, v, "$", &mut out);
        out
    }

    fn type_ok(t: &str, v: &Value) -> bool {
        match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            other => panic!("schema uses unknown type {other}"),
        }
    }

    fn check(root: &Value, s: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
        let Some(s) = s.as_object() else {
            if s == &Value::Bool(false) {
                out.push(format!("{path}: not allowed"));
            }
            return;
        };
        for k in s.keys() {
            assert!(KNOWN.contains(&k.as_str()), "the validator does not know the keyword {k:?} (at {path})");
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("unsupported $ref {r}"));
            let target = root["$defs"].get(name).unwrap_or_else(|| panic!("$ref to a missing definition {r}"));
            check(root, target, v, path, out);
        }
        if v.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => panic!("bad type {t}"),
            };
            if !types.iter().any(|t| type_ok(t, v)) {
                out.push(format!("{path}: expected {}, got {v}", types.join(" or ")));
                return;
            }
        }
        if let Some(c) = s.get("const")
            && c != v
        {
            out.push(format!("{path}: expected {c}, got {v}"));
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            out.push(format!("{path}: {v} is not one of {e:?}"));
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                out.push(format!("{path}: {n} is below the minimum {min}"));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                out.push(format!("{path}: {n} is above the maximum {max}"));
            }
            let range = match s.get("format").and_then(Value::as_str) {
                Some("uint32") => Some((0.0, f64::from(u32::MAX))),
                Some("uint8") => Some((0.0, 255.0)),
                Some("int32") => Some((f64::from(i32::MIN), f64::from(i32::MAX))),
                _ => None,
            };
            if let Some((lo, hi)) = range
                && !(lo..=hi).contains(&n)
            {
                out.push(format!("{path}: {n} does not fit {}", s["format"]));
            }
        }
        for (key, all) in [("anyOf", false), ("oneOf", true)] {
            if let Some(alts) = s.get(key).and_then(Value::as_array) {
                let passing = alts.iter().filter(|a| errors(root, a, v).is_empty()).count();
                if passing == 0 || (all && passing > 1) {
                    out.push(format!("{path}: {v} matches {passing} of the {key} alternatives"));
                }
            }
        }
        if let Some(alts) = s.get("allOf").and_then(Value::as_array) {
            for a in alts {
                check(root, a, v, path, out);
            }
        }
        if let Some(o) = v.as_object() {
            for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                let r = r.as_str().expect("required names");
                if !o.contains_key(r) {
                    out.push(format!("{path}: required field {r} is missing"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, val) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(root, ps, val, &format!("{path}.{k}"), out),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => out.push(format!("{path}: field {k} is not in the schema")),
                        Some(extra @ Value::Object(_)) => check(root, extra, val, &format!("{path}.{k}"), out),
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
            for (i, x) in a.iter().enumerate() {
                check(root, items, x, &format!("{path}[{i}]"), out);
            }
        }
    }
}

fn api_schema_file() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("docs/api.schema.json")).expect("schema JSON")
}

/// docs/api.schema.json is what `ebbflow api-schema` prints (generated from the response types).
#[test]
fn api_schema_file_matches_the_code() {
    let on_disk =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.schema.json"))
            .expect("docs/api.schema.json");
    let generated = serde_json::to_string_pretty(&ebbflow::dashboard::api_schema()).expect("json") + "\n";
    assert!(
        on_disk == generated,
        "docs/api.schema.json drifted from the code: run `cargo run -- api-schema > docs/api.schema.json`"
    );
}

/// The answer of `route` (a key of the schema's x-routes) checked against its schema.
fn validate(schema: &Value, route: &str, answer: &Value) -> Vec<String> {
    let s = schema["x-routes"].get(route).unwrap_or_else(|| panic!("no schema for {route}"));
    schema::errors(schema, s, answer)
}

/// Real answers of a running dashboard conform to docs/api.schema.json: a policy with a day of
/// history, live points, a second metric and a schedule in effect; one never evaluated; and a
/// policy whose status is a failure.
#[tokio::test(flavor = "multi_thread")]
async fn api_answers_conform_to_the_schema() {
    let now = ebbflow::clock::now();
    let mut orders: ScalePolicy = serde_json::from_value(json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": "orders", "namespace": "data"},
        "spec": {"target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
                 "minSize": 3, "maxSize": 12,
                 "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}},
                             {"name": "requests", "target": 5000, "kind": "total", "query": {"filter": "y"}}]}
    }))
    .expect("policy");
    let mut st = status_with_a_day(now);
    let d = st.last_decision.as_mut().expect("decision");
    d.metrics.insert(
        "requests".into(),
        serde_json::from_value(json!({"raw": 14000.0, "smoothed": 12000.0, "target": 5000.0})).expect("reading"),
    );
    st.active = vec![
        serde_json::from_value(json!({"kind": "Schedule", "name": "business-hours", "effect": "min 5",
                                      "until": (now + Dur::mins(60)).to_rfc3339()}))
        .expect("active"),
    ];
    orders.status = Some(st.clone());
    let pending = {
        let mut sp = policy("DryRun");
        sp.metadata.name = Some("pending".into());
        sp
    };
    let mut broken = policy("Enforce");
    broken.metadata.name = Some("broken".into());
    broken.status = Some(
        serde_json::from_value(json!({
            "conditions": [{"type": "Ready", "status": "False", "reason": "PermissionDenied",
                            "message": "bigtable.clusters.update denied", "lastTransitionTime": now.to_rfc3339()}]
        }))
        .expect("status"),
    );
    let history = History::default();
    history.record("data/orders", &orders, &st);
    let map = BTreeMap::from([
        ("data/orders".to_string(), Shown::of(orders)),
        ("data/pending".to_string(), Shown::of(pending)),
        ("data/broken".to_string(), Shown::of(broken)),
    ]);
    let d = Dashboard { snapshots: Arc::new(RwLock::new(map)), history, ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, ebbflow::dashboard::router(d)).await });
    let answers = tokio::task::spawn_blocking(move || {
        [
            ("/api/policies", "/api/policies"),
            ("/api/policies/data/orders", "/api/policies/{namespace}/{name}"),
            ("/api/policies/data/pending", "/api/policies/{namespace}/{name}"),
            ("/api/policies/data/broken", "/api/policies/{namespace}/{name}"),
            ("/api/policies/data/orders/events", "/api/policies/{namespace}/{name}/events"),
            ("/api/events", "/api/events"),
        ]
        .map(|(path, route)| {
            let (head, body) = get(addr, path);
            assert!(head.contains("200 OK") && head.contains("application/json"), "{path}: {head}");
            (path, route, serde_json::from_str::<Value>(&body).expect("json"))
        })
    })
    .await
    .expect("requests");

    let schema = api_schema_file();
    for (path, route, answer) in &answers {
        let errors = validate(&schema, route, answer);
        assert!(errors.is_empty(), "{path} does not conform to docs/api.schema.json:\n{}", errors.join("\n"));
    }
    // The answers exercised the optional parts: a second metric's points, a schedule, events.
    let one = &answers[1].2;
    assert!(one["history"].as_array().is_some_and(|h| h.iter().any(|p| p["others"].is_array())), "{one}");
    assert_eq!(one["active"][0]["name"], "business-hours");
    assert!(answers[5].2["events"].as_array().is_some_and(|e| !e.is_empty()));

    // The validator rejects what a client would trip over.
    let overview = &answers[0].2;
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut v = overview.clone();
        f(&mut v);
        validate(&schema, "/api/policies", &v)
    };
    let missing = broken(&|v| {
        v["policies"][0].as_object_mut().expect("card").remove("policy");
    });
    assert!(missing.iter().any(|e| e.contains("$.policies[0]: required field policy is missing")), "{missing:?}");
    let wrong_type = broken(&|v| v["policies"][0]["points"] = json!("many"));
    assert!(wrong_type.iter().any(|e| e.starts_with("$.policies[0].points: expected integer")), "{wrong_type:?}");
    let negative = broken(&|v| v["policies"][0]["desired"] = json!(-3));
    assert!(!negative.is_empty(), "a negative size is not a uint32");
    let bad_level = broken(&|v| v["policies"][0]["health"]["level"] = json!("Fine"));
    assert!(bad_level.iter().any(|e| e.contains("$.policies[0].health.level")), "{bad_level:?}");
    let unknown = broken(&|v| v["policies"][0]["secret"] = json!("x"));
    assert!(unknown.iter().any(|e| e.contains("field secret is not in the schema")), "{unknown:?}");
    let null_list = broken(&|v| v["policies"] = Value::Null);
    assert!(!null_list.is_empty());
}

/// A policy with a CPU metric and a request-count metric: the dashboard chart has a panel for
/// each, the request count spread over the serving nodes (it is a total) against its own
/// target and limit, and the CPU target still drawn inside its own panel.
#[test]
fn dashboard_chart_has_a_panel_per_metric() {
    let mut sp: ScalePolicy = serde_json::from_value(json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": "orders", "namespace": "data"},
        "spec": {"target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
                 "minSize": 3, "maxSize": 12,
                 "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}},
                             {"name": "requests", "target": 5000, "kind": "total", "query": {"filter": "y"},
                              "headroom": {"limit": 7000}}]}
    }))
    .expect("policy");
    let h = History::default();
    for i in 0..10 {
        let mut st = status(t0() + Dur::secs(60 * i), "WithinTolerance", 3, 3, 0.45, false);
        st.last_decision.as_mut().expect("decision").metrics.insert(
            "requests".into(),
            serde_json::from_value(json!({"raw": 12000.0 + 300.0 * i as f64, "smoothed": 12000.0, "target": 5000.0}))
                .expect("reading"),
        );
        sp.status = Some(st.clone());
        h.record("data/orders", &sp, &st);
    }
    let data = chart_data(&sp, &h.points("data/orders"), t0() + Dur::secs(600)).expect("chart");
    let panels: Vec<(&str, Option<f64>, Option<f64>)> =
        data.metrics.iter().map(|m| (m.label.as_str(), m.target, m.limit)).collect();
    assert_eq!(panels, [("cpu per node", Some(0.5), Some(0.625)), ("requests per node", Some(5000.0), Some(7000.0))]);
    // 12,000 requests/s over 3 serving nodes is 4,000 per node, on the target's scale.
    assert_eq!(data.metrics[1].series[0].points[0].1, 4000.0);
    let svg = ebbflow::chart::render_svg(&data, 1100, 520);
    for label in [">target 0.5<", ">limit 0.625<", ">target 5000<", ">limit 7000<"] {
        assert!(svg.contains(label), "no {label} in the chart");
    }
}
