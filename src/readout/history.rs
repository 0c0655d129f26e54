//! Recent decisions: a bounded series of points per policy, fed by every status write, for the
//! dashboard's charts.
//!
//! Status holds one decision; a chart needs the last hours. The controller keeps them in memory
//! only (a restart starts an empty chart) because they are for looking at, not for deciding:
//! everything the decision core needs survives in `status.state`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::Serialize;

use super::PolicyView;
use crate::api::{ScalePolicy, ScalePolicyStatus};
use crate::core::{Dur, Ts};

/// Most points kept per policy: 6 hours at the default 60 s interval, twice over.
pub const MAX_POINTS: usize = 720;
/// Points older than this (behind the newest) are dropped.
pub const MAX_AGE: Dur = Dur(6 * 3_600_000);

/// One evaluation of one policy, as the chart draws it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// When the decision was made (RFC 3339).
    #[schemars(with = "String")]
    pub time: Ts,
    /// Newest raw value of the policy's first metric.
    pub observed: Option<f64>,
    /// Its smoothed value.
    pub smoothed: Option<f64>,
    /// Its target.
    pub target: Option<f64>,
    /// The target it was sized against (lower for noise headroom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_target: Option<f64>,
    /// Nodes that were serving (current minus nodes still warming up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<u32>,
    /// Size the target had.
    pub current: Option<u32>,
    /// Size the policy wanted.
    pub desired: Option<u32>,
    /// A spike was detected.
    pub spike: bool,
    /// The decision's `Reason` name.
    pub reason: String,
    /// The decision's size before.
    pub from: u32,
    /// The size the decision asked for.
    pub to: u32,
    /// The policy's other metrics at this decision, each drawn on a scale of its own (the first
    /// metric is `observed` and `smoothed` above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<MetricPoint>,
}

/// One more metric of a decision, as [`crate::api::MetricReading`] carries it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    /// The metric's name (spec.metrics[].name).
    pub name: String,
    /// Newest raw value: per serving node, or the total for a total metric.
    pub observed: Option<f64>,
    /// Smoothed value: per node across all nodes, or the total for a total metric.
    pub smoothed: Option<f64>,
    /// Its target.
    pub target: f64,
}

/// The point a status describes, if it carries a decision.
pub fn point_of(sp: &ScalePolicy, status: &ScalePolicyStatus) -> Option<Point> {
    let d = status.last_decision.as_ref()?;
    let time = Ts::parse_rfc3339(&d.time).ok()?;
    let view = PolicyView { status: Some(status.clone()), ..PolicyView::from_policy(sp) };
    let row = super::row(&view, time);
    let m = row.metric;
    Some(Point {
        time,
        observed: m.as_ref().and_then(|m| m.observed),
        smoothed: m.as_ref().and_then(|m| m.smoothed),
        target: m.as_ref().map(|m| m.target),
        effective_target: m.as_ref().and_then(|m| m.effective_target),
        serving: row.serving,
        current: status.current_size,
        desired: status.desired_size,
        spike: d.metrics.values().any(|r| r.spike),
        reason: d.reason.clone(),
        from: d.from,
        to: d.to,
        others: sp
            .spec
            .metrics
            .iter()
            .skip(1)
            .filter_map(|m| {
                let r = d.metrics.get(&m.name)?;
                Some(MetricPoint { name: m.name.clone(), observed: r.raw, smoothed: r.smoothed, target: r.target })
            })
            .collect(),
    })
}

/// Points per policy (`namespace/name`), shared between the engine that writes and the HTTP
/// handlers that read.
#[derive(Debug, Clone, Default)]
pub struct History(Arc<Mutex<HashMap<String, VecDeque<Point>>>>);

impl History {
    /// Record the decision in a status just written for `sp`. A second write for the same
    /// decision (the intent, then the outcome) replaces the first; older decisions are ignored.
    pub fn record(&self, key: &str, sp: &ScalePolicy, status: &ScalePolicyStatus) {
        let Some(p) = point_of(sp, status) else { return };
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let points = all.entry(key.to_string()).or_default();
        match points.back_mut() {
            Some(last) if last.time == p.time => *last = p,
            Some(last) if last.time > p.time => {}
            _ => points.push_back(p),
        }
        let newest = points.back().map_or(Ts(0), |p| p.time);
        while points.len() > MAX_POINTS || points.front().is_some_and(|p| newest - p.time > MAX_AGE) {
            points.pop_front();
        }
    }

    /// Drop a deleted policy's points.
    pub fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// A copy of one policy's points, oldest first.
    pub fn points(&self, key: &str) -> Vec<Point> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }
}
