//! Recent decisions: a bounded series of points per policy, fed by every status write, for the
//! dashboard's charts.
//!
//! Status holds one decision; a chart needs the last hours. The controller keeps them in memory
//! only (a restart starts an empty chart) because they are for looking at, not for deciding:
//! everything the decision core needs survives in `status.state`.
//!
//! Memory: with 1,000 policies this was the controller's largest structure and the one that grew
//! for hours (up to 720 [`Point`]s a policy, each with a `String` and a `Vec` of its own: some
//! 300 bytes a decision, 100+ MB in all). A decision is now kept as one fixed-size record of 48
//! bytes (sizes as `u32`, values as `f32`, the reason an index into `Reason::ALL`), plus 12 bytes
//! per further metric in a flat ring; each metric name is kept once per policy, not per point. At
//! most [`MAX_POINTS`] and [`MAX_AGE`] (60 points, about 3 KB, at the default 60 s interval):
//! the hours before are drawn from the day status keeps (`readout::day`, 5-minute buckets), so
//! the chart loses nothing but resolution.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::Serialize;

use super::PolicyView;
use crate::api::{ScalePolicy, ScalePolicyStatus};
use crate::core::{Dur, Reason, Ts};

/// Most points kept per policy: an hour at a 30 s interval. Measured at 1,000 policies (`cargo
/// bench --bench controller`, heaptrack): two hours were 8 MB of the controller's heap at 60 s.
pub const MAX_POINTS: usize = 120;
/// Points older than this (behind the newest) are dropped; the chart shows the hours before from
/// the day in status.
pub const MAX_AGE: Dur = Dur(3_600_000);

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
    /// Nodes that were serving (current minus nodes still warming up or not yet seen serving).
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
    // A point needs the spec and this status only: the object's own (older) status is not copied
    // on every write as well.
    let view = PolicyView {
        namespace: String::new(),
        name: String::new(),
        spec: Some(sp.spec.clone()),
        status: Some(status.clone()),
    };
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
pub struct History(Arc<Mutex<HashMap<String, Series>>>);

impl History {
    /// Record the decision in a status just written for `sp`. A second write for the same
    /// decision (the intent, then the outcome) replaces the first; older decisions are ignored.
    pub fn record(&self, key: &str, sp: &ScalePolicy, status: &ScalePolicyStatus) {
        let Some(p) = point_of(sp, status) else { return };
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up before inserting, so a write does not allocate the key each time.
        if !all.contains_key(key) {
            all.insert(key.to_string(), Series::default());
        }
        if let Some(series) = all.get_mut(key) {
            series.put(&p);
        }
    }

    /// Drop a deleted policy's points.
    pub fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// A copy of one policy's points, oldest first.
    pub fn points(&self, key: &str) -> Vec<Point> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).map(Series::points).unwrap_or_default()
    }
}

/// Records are added this many at a time once a series' ring is full, so its capacity stays
/// within this of its length (a `VecDeque` left to itself doubles, to 1.5 times the bound).
const GROW: usize = 16;
/// Other metrics kept per point (a policy has at most 10 metrics in all).
const MAX_OTHERS: usize = 16;
/// Reasons that are no `Reason` name (a status written by another version) kept per policy.
const MAX_ODD_REASONS: usize = 8;
/// Reason codes from here on index [`Series::odd_reasons`].
const ODD: u8 = 128;
/// The reason code of a reason that could not be kept (read back as "").
const LOST: u8 = u8::MAX;
const _: () = assert!(Reason::ALL.len() < ODD as usize && ODD as usize + MAX_ODD_REASONS < LOST as usize);

/// Bits of [`Record::flags`]: which of serving, current, desired are present, and the spike.
const HAS_SERVING: u8 = 1;
const HAS_CURRENT: u8 = 2;
const HAS_DESIRED: u8 = 4;
const SPIKE: u8 = 8;

/// One point without anything on the heap (48 bytes). A value that is absent is NaN. Values are
/// `f32`: seven significant digits are more than a chart or a person reads (the status keeps
/// three a bucket), and at 1,000 policies `f64` cost 1.8 MB more.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Record {
    time: Ts,
    /// Observed, smoothed, target, effective target.
    values: [f32; 4],
    /// Serving, current, desired, from, to.
    sizes: [u32; 5],
    flags: u8,
    /// An index into `Reason::ALL`, `ODD +` one into [`Series::odd_reasons`], or [`LOST`].
    reason: u8,
    /// Other metrics of this point: three numbers each in [`Series::numbers`].
    others: u8,
}

/// One policy's points, oldest first.
#[derive(Debug, Default)]
struct Series {
    records: VecDeque<Record>,
    /// Observed, smoothed and target of each other metric of each record, in the records' order.
    numbers: VecDeque<f32>,
    /// The other metrics' names, from the first record that has them on (a new entry only when
    /// the policy's metrics change), oldest first.
    names: VecDeque<(Ts, Box<[Box<str>]>)>,
    odd_reasons: Vec<Box<str>>,
}

fn nan(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, narrow)
}

/// `v` as `f32`, infinities kept (a value out of `f32`'s range is out of any chart's too).
fn narrow(v: f64) -> f32 {
    v as f32
}

/// The `f64` a person would have written for `v`: its shortest decimal form (0.55, not
/// 0.550000011920929), so the points read back as they were recorded to seven digits.
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

fn value(v: f32) -> Option<f64> {
    (!v.is_nan()).then(|| widen(v))
}

impl Series {
    fn put(&mut self, p: &Point) {
        match self.records.back().map(|r| r.time) {
            Some(t) if t > p.time => return,
            Some(t) if t == p.time => self.pop_back(),
            _ => {}
        }
        let others = &p.others[..p.others.len().min(MAX_OTHERS)];
        let same_names = self.names.back().is_some_and(|(_, names)| {
            names.len() == others.len() && names.iter().zip(others).all(|(a, b)| **a == *b.name)
        });
        if !same_names {
            self.names.push_back((p.time, others.iter().map(|m| Box::<str>::from(m.name.as_str())).collect()));
        }
        let more = 3 * others.len();
        if self.numbers.capacity() - self.numbers.len() < more {
            self.numbers.reserve_exact(more * GROW);
        }
        for m in others {
            self.numbers.extend([nan(m.observed), nan(m.smoothed), narrow(m.target)]);
        }
        let mut flags = 0;
        for (bit, v) in [(HAS_SERVING, p.serving), (HAS_CURRENT, p.current), (HAS_DESIRED, p.desired)] {
            if v.is_some() {
                flags |= bit;
            }
        }
        if p.spike {
            flags |= SPIKE;
        }
        let record = Record {
            time: p.time,
            values: [nan(p.observed), nan(p.smoothed), nan(p.target), nan(p.effective_target)],
            sizes: [p.serving.unwrap_or(0), p.current.unwrap_or(0), p.desired.unwrap_or(0), p.from, p.to],
            flags,
            reason: self.reason_code(&p.reason),
            others: others.len() as u8,
        };
        if self.records.len() == self.records.capacity() {
            self.records.reserve_exact(GROW);
        }
        self.records.push_back(record);
        let newest = p.time;
        while self.records.len() > MAX_POINTS || self.records.front().is_some_and(|r| newest - r.time > MAX_AGE) {
            self.pop_front();
        }
    }

    fn reason_code(&mut self, name: &str) -> u8 {
        if let Some(i) = Reason::ALL.iter().position(|r| r.as_str() == name) {
            return i as u8;
        }
        if let Some(i) = self.odd_reasons.iter().position(|r| **r == *name) {
            return ODD + i as u8;
        }
        if self.odd_reasons.len() < MAX_ODD_REASONS {
            self.odd_reasons.push(name.into());
            return ODD + (self.odd_reasons.len() - 1) as u8;
        }
        LOST
    }

    fn reason(&self, code: u8) -> &str {
        if code < ODD {
            Reason::ALL.get(usize::from(code)).map_or("", |r| r.as_str())
        } else {
            self.odd_reasons.get(usize::from(code - ODD)).map_or("", |r| &**r)
        }
    }

    fn pop_front(&mut self) {
        let Some(r) = self.records.pop_front() else { return };
        let n = (3 * usize::from(r.others)).min(self.numbers.len());
        self.numbers.drain(..n);
        match self.records.front().map(|r| r.time) {
            // Names whose successor starts at or before the oldest record are used by none.
            Some(oldest) => {
                while self.names.get(1).is_some_and(|(since, _)| *since <= oldest) {
                    self.names.pop_front();
                }
            }
            None => self.names.clear(),
        }
    }

    fn pop_back(&mut self) {
        let Some(r) = self.records.pop_back() else { return };
        let keep = self.numbers.len().saturating_sub(3 * usize::from(r.others));
        self.numbers.truncate(keep);
        if self.names.back().is_some_and(|(since, _)| *since >= r.time) {
            self.names.pop_back();
        }
    }

    fn points(&self) -> Vec<Point> {
        let mut out = Vec::with_capacity(self.records.len());
        let (mut at, mut run) = (0, 0);
        for r in &self.records {
            while self.names.get(run + 1).is_some_and(|(since, _)| *since <= r.time) {
                run += 1;
            }
            let names: &[Box<str>] = match self.names.get(run) {
                Some((_, n)) => n,
                None => &[],
            };
            let others = (0..usize::from(r.others))
                .filter_map(|i| {
                    let number = |j: usize| self.numbers.get(at + 3 * i + j).copied().unwrap_or(f32::NAN);
                    Some(MetricPoint {
                        name: names.get(i)?.to_string(),
                        observed: value(number(0)),
                        smoothed: value(number(1)),
                        target: widen(number(2)),
                    })
                })
                .collect();
            at += 3 * usize::from(r.others);
            let size = |i: usize, bit: u8| (r.flags & bit != 0).then_some(r.sizes[i]);
            out.push(Point {
                time: r.time,
                observed: value(r.values[0]),
                smoothed: value(r.values[1]),
                target: value(r.values[2]),
                effective_target: value(r.values[3]),
                serving: size(0, HAS_SERVING),
                current: size(1, HAS_CURRENT),
                desired: size(2, HAS_DESIRED),
                spike: r.flags & SPIKE != 0,
                reason: self.reason(r.reason).to_string(),
                from: r.sizes[3],
                to: r.sizes[4],
                others,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(metrics: serde_json::Value) -> ScalePolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": "orders", "namespace": "data"},
            "spec": {"target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
                     "minSize": 3, "maxSize": 12, "metrics": metrics}
        }))
        .expect("policy")
    }

    fn two_metrics() -> ScalePolicy {
        policy(serde_json::json!([
            {"name": "cpu", "target": 0.5, "query": {"filter": "x"}},
            {"name": "requests", "target": 5000, "kind": "total", "query": {"filter": "y"}}
        ]))
    }

    fn status(at: Ts, reason: &str, from: u32, to: u32, raw: f64) -> ScalePolicyStatus {
        serde_json::from_value(serde_json::json!({
            "target": "bigtable p1/i1/c1", "currentSize": from, "desiredSize": to,
            "lastDecision": {"time": at.to_rfc3339(), "direction": "None", "reason": reason, "message": "m",
                             "from": from, "to": to, "serving": from.saturating_sub(1),
                             "metrics": {"cpu": {"raw": raw, "smoothed": raw * 0.8, "target": 0.5,
                                                 "effectiveTarget": 0.45, "spike": raw > 1.0},
                                         "requests": {"raw": raw * 1e4, "target": 5000.0}}},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                            "lastTransitionTime": at.to_rfc3339()}]
        }))
        .expect("status")
    }

    fn t0() -> Ts {
        Ts::parse_rfc3339("2026-11-23T00:00:00Z").expect("time")
    }

    /// A record gives back the point it was made from: sizes absent or present, the reason (a
    /// `Reason`, or another name), the other metrics by name exactly; values to seven
    /// significant digits.
    #[test]
    fn records_round_trip_to_points() {
        let sp = two_metrics();
        let h = History::default();
        for (i, reason) in ["ScaleOutOnSpike", "WithinTolerance", "SomethingNewer"].into_iter().enumerate() {
            let st = status(t0() + Dur::mins(i as i64), reason, 3 + i as u32, 4 + i as u32, 0.4 + i as f64);
            h.record("data/orders", &sp, &st);
        }
        let expected: Vec<Point> = (0..3)
            .map(|i| {
                let reason = ["ScaleOutOnSpike", "WithinTolerance", "SomethingNewer"][i];
                let st = status(t0() + Dur::mins(i as i64), reason, 3 + i as u32, 4 + i as u32, 0.4 + i as f64);
                point_of(&sp, &st).expect("point")
            })
            .collect();
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()),
            (x, y) => x.is_none() && y.is_none(),
        };
        let mut got = h.points("data/orders");
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter_mut().zip(&expected) {
            for (a, b) in [
                (&mut g.observed, e.observed),
                (&mut g.smoothed, e.smoothed),
                (&mut g.target, e.target),
                (&mut g.effective_target, e.effective_target),
            ] {
                assert!(close(*a, b), "{a:?} recorded as {b:?}");
                *a = b;
            }
            for (m, n) in g.others.iter_mut().zip(&e.others) {
                assert!(
                    close(m.observed, n.observed)
                        && close(m.smoothed, n.smoothed)
                        && close(Some(m.target), Some(n.target))
                );
                (m.observed, m.smoothed, m.target) = (n.observed, n.smoothed, n.target);
            }
        }
        assert_eq!(got, expected);
        // Shortest decimal form: what was written to seven digits reads back exactly.
        assert_eq!(h.points("data/orders")[0].observed, Some(0.4));
        assert_eq!(expected[2].others.len(), 1);
        assert!(expected[0].serving.is_some() && expected[0].effective_target.is_some());
    }

    /// More than a day of one-minute decisions, with a spec edit in between and an odd reason on
    /// every tick: each part of a policy's series stays within its bound (entries, not bytes).
    #[test]
    fn a_policy_series_stays_bounded_over_more_than_a_day() {
        let h = History::default();
        let (two, one) =
            (two_metrics(), policy(serde_json::json!([{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}])));
        for m in 0..26 * 60 {
            // The spec loses its second metric for an hour, then gets it back.
            let sp = if (600..660).contains(&m) { &one } else { &two };
            let reason = ["WithinTolerance", "ScaleOut", "ScaleIn"][m as usize % 3];
            let odd = format!("Unknown{}", m % 20);
            let at = t0() + Dur::mins(m);
            h.record("data/orders", sp, &status(at, reason, 4, 4, 0.5));
            h.record("data/orders", sp, &status(at, if m % 7 == 0 { odd.as_str() } else { reason }, 4, 5, 0.5));
        }
        let all = h.0.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.get("data/orders").expect("series");
        // An hour of one-minute decisions, the intent and the outcome of a tick one point.
        assert_eq!(s.records.len(), 61);
        assert!(s.records.capacity() <= MAX_POINTS + GROW, "{}", s.records.capacity());
        assert_eq!(s.numbers.len(), 3 * s.records.iter().map(|r| usize::from(r.others)).sum::<usize>());
        assert!(s.numbers.capacity() <= 3 * (MAX_POINTS + 2 * GROW), "{}", s.numbers.capacity());
        assert_eq!(s.names.len(), 1, "names of the spec edit a day ago are gone");
        assert!(s.odd_reasons.len() <= MAX_ODD_REASONS);
        drop(all);
        let points = h.points("data/orders");
        let newest = points.last().expect("newest").time;
        assert!(points.iter().all(|p| newest - p.time <= MAX_AGE && p.others.len() == 1 && p.to == 5));

        // A short interval fills the count bound first.
        for s in 0..3_000 {
            h.record("data/fast", &two_metrics(), &status(t0() + Dur::secs(10 * s), "ScaleOut", 4, 4, 0.5));
        }
        assert_eq!(h.points("data/fast").len(), MAX_POINTS);
        assert_eq!(h.0.lock().unwrap_or_else(|e| e.into_inner()).len(), 2, "one series per policy");
    }

    /// The record stays the size the memory budget was worked out with.
    #[test]
    fn a_record_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 48);
    }
}
