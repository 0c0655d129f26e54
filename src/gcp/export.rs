//! Opt-in export of the controller's decisions to Cloud Monitoring as custom metrics
//! (`custom.googleapis.com/ebbflow/...`) through `projects.timeSeries.create`, for teams that
//! alert and chart in Cloud Monitoring instead of Prometheus.
//!
//! Every export interval, one point per series, from what the engine published (the newest
//! status of each policy): current and desired size, per metric the target and effective target,
//! and per policy and reason the decisions counted since the exporter started. Requests follow
//! the API's limits: at most [`MAX_SERIES_PER_REQUEST`] series per request, and a series at most
//! once per request. Needs `monitoring.timeSeries.create` (roles/monitoring.metricWriter) on
//! the export project.

use std::collections::BTreeMap;

use google_cloud_api::model::{Metric, MonitoredResource};
use google_cloud_monitoring_v3::client::MetricService;
use google_cloud_monitoring_v3::model::{Point, TimeInterval, TimeSeries, TypedValue};

use crate::adapters::AdapterError;
use crate::api::ScalePolicy;
use crate::core::Ts;
use crate::gcp::map_error;
use crate::readout::published::key;

/// `projects.timeSeries.create` takes at most 200 time series per request.
pub const MAX_SERIES_PER_REQUEST: usize = 200;
/// Prefix of every exported metric type.
pub const PREFIX: &str = "custom.googleapis.com/ebbflow/";
const BACKEND: &str = "monitoring";
const PERMISSION: &str = "monitoring.timeSeries.create";

/// One point of one series, before it becomes a `TimeSeries`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPoint {
    /// Metric type after [`PREFIX`], e.g. "desired_size".
    pub name: &'static str,
    /// Metric labels (namespace, policy, and metric or reason).
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: Value,
}

/// A gauge or a count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A GAUGE INT64 (sizes).
    Size(i64),
    /// A GAUGE DOUBLE (targets).
    Level(f64),
    /// A CUMULATIVE INT64 since the exporter started (decision counts).
    Count(i64),
}

/// Decisions counted per `(policy, reason)`, across export rounds; a decision is counted once,
/// by its time.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    seen: BTreeMap<String, String>,
    counts: BTreeMap<(String, String), i64>,
}

impl Counts {
    /// Count the last decision of each policy not counted yet.
    pub fn observe(&mut self, policies: &[ScalePolicy]) {
        // Counts of policies that are gone are neither exported nor kept.
        let live: std::collections::BTreeSet<String> = policies.iter().map(key).collect();
        self.seen.retain(|k, _| live.contains(k));
        self.counts.retain(|(k, _), _| live.contains(k));
        for sp in policies {
            let Some(d) = sp.status.as_ref().and_then(|s| s.last_decision.as_ref()) else { continue };
            let k = key(sp);
            if self.seen.get(&k) != Some(&d.time) {
                self.seen.insert(k.clone(), d.time.clone());
                *self.counts.entry((k, d.reason.clone())).or_default() += 1;
            }
        }
    }
}

fn labels(sp: &ScalePolicy, extra: Option<(&str, &str)>) -> BTreeMap<String, String> {
    let k = key(sp);
    let (ns, name) = k.split_once('/').unwrap_or(("", &k));
    let mut l = BTreeMap::from([("namespace".to_string(), ns.to_string()), ("policy".to_string(), name.to_string())]);
    if let Some((k, v)) = extra {
        l.insert(k.to_string(), v.to_string());
    }
    l
}

/// The points to write for `policies` (and the decision counts so far).
pub fn points(policies: &[ScalePolicy], counts: &Counts) -> Vec<ExportPoint> {
    let mut out = Vec::new();
    for sp in policies {
        let Some(st) = sp.status.as_ref() else { continue };
        if let Some(n) = st.current_size {
            out.push(ExportPoint { name: "current_size", labels: labels(sp, None), value: Value::Size(n.into()) });
        }
        if let Some(n) = st.desired_size {
            out.push(ExportPoint { name: "desired_size", labels: labels(sp, None), value: Value::Size(n.into()) });
        }
        for (metric, r) in st.last_decision.iter().flat_map(|d| d.metrics.iter()) {
            let l = labels(sp, Some(("metric", metric)));
            out.push(ExportPoint { name: "target", labels: l.clone(), value: Value::Level(r.target) });
            let eff = r.effective_target.unwrap_or(r.target);
            out.push(ExportPoint { name: "effective_target", labels: l, value: Value::Level(eff) });
        }
    }
    for ((k, reason), n) in &counts.counts {
        if let Some(sp) = policies.iter().find(|sp| &key(sp) == k) {
            out.push(ExportPoint {
                name: "decisions",
                labels: labels(sp, Some(("reason", reason))),
                value: Value::Count(*n),
            });
        }
    }
    out
}

/// Split `points` into requests: at most [`MAX_SERIES_PER_REQUEST`] series each, and no series
/// twice in one request (the API refuses a request that writes one series twice).
pub fn batches(points: Vec<ExportPoint>) -> Vec<Vec<ExportPoint>> {
    let mut out: Vec<Vec<ExportPoint>> = Vec::new();
    for p in points {
        let same = |q: &ExportPoint| q.name == p.name && q.labels == p.labels;
        match out.iter_mut().find(|b| b.len() < MAX_SERIES_PER_REQUEST && !b.iter().any(same)) {
            Some(b) => b.push(p),
            None => out.push(vec![p]),
        }
    }
    out
}

fn timestamp(t: Ts) -> google_cloud_wkt::Timestamp {
    google_cloud_wkt::Timestamp::clamp(t.0.div_euclid(1000), (t.0.rem_euclid(1000) * 1_000_000) as i32)
}

/// The API's form of one point at `now` (counts start at `since`), in `project`'s global resource.
pub fn time_series(p: &ExportPoint, project: &str, now: Ts, since: Ts) -> TimeSeries {
    use google_cloud_api::model::metric_descriptor::{MetricKind, ValueType};
    let (kind, vtype, value, start) = match p.value {
        Value::Size(n) => (MetricKind::Gauge, ValueType::Int64, TypedValue::new().set_int64_value(n), None),
        Value::Level(v) => (MetricKind::Gauge, ValueType::Double, TypedValue::new().set_double_value(v), None),
        Value::Count(n) => {
            (MetricKind::Cumulative, ValueType::Int64, TypedValue::new().set_int64_value(n), Some(since))
        }
    };
    let mut interval = TimeInterval::new().set_end_time(timestamp(now));
    if let Some(s) = start {
        interval = interval.set_start_time(timestamp(s));
    }
    TimeSeries::new()
        .set_metric(Metric::new().set_type(format!("{PREFIX}{}", p.name)).set_labels(p.labels.clone()))
        .set_resource(MonitoredResource::new().set_type("global").set_labels([("project_id", project)]))
        .set_metric_kind(kind)
        .set_value_type(vtype)
        .set_points([Point::new().set_interval(interval).set_value(value)])
}

/// Writes the points to Cloud Monitoring.
pub struct Exporter {
    client: MetricService,
    project: String,
    since: Ts,
    counts: Counts,
}

impl Exporter {
    /// An exporter into `project` through `client`, counting decisions from `since`.
    pub fn new(client: MetricService, project: impl Into<String>, since: Ts) -> Exporter {
        Exporter { client, project: project.into(), since, counts: Counts::default() }
    }

    /// One export round at `now`: every series once, in as few requests as the limits allow.
    /// Returns how many requests were sent.
    pub async fn export(&mut self, policies: &[ScalePolicy], now: Ts) -> Result<usize, AdapterError> {
        self.counts.observe(policies);
        // A cumulative point must end after its start.
        let now = now.max(self.since + crate::core::Dur(1000));
        let all = batches(points(policies, &self.counts));
        for batch in &all {
            let series: Vec<TimeSeries> =
                batch.iter().map(|p| time_series(p, &self.project, now, self.since)).collect();
            self.client
                .create_time_series()
                .set_name(format!("projects/{}", self.project))
                .set_time_series(series)
                .send()
                .await
                .map_err(|e| map_error(BACKEND, PERMISSION, &e))?;
        }
        Ok(all.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &'static str, policy: &str) -> ExportPoint {
        ExportPoint {
            name,
            labels: BTreeMap::from([("policy".to_string(), policy.to_string())]),
            value: Value::Size(1),
        }
    }

    /// 450 series go out in 3 requests of at most 200; a series that appears twice (which the
    /// API refuses within one request) goes into another request.
    #[test]
    fn batches_respect_the_api_limits() {
        let mut pts: Vec<ExportPoint> = (0..450).map(|i| point("desired_size", &format!("p{i}"))).collect();
        pts.push(point("desired_size", "p0"));
        let b = batches(pts);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![200, 200, 51]);
        for batch in &b {
            let mut keys: Vec<_> = batch.iter().map(|p| (p.name, p.labels.clone())).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), batch.len(), "a series twice in one request");
        }
    }
}
