//! The closed-loop world a replay runs in.
//!
//! Demand is conserved: for a per-node metric recorded on `recordedSize` nodes,
//! `demand(t) = value(t) × recordedSize`, and the policy sees `demand(t') / serving(t')` for samples
//! `t' <= now - metricDelay`, where `serving` is the capacity that was actually serving at `t'`. So
//! a good decision lowers what the policy sees next, as in production. Added capacity serves only
//! after `provisionDelay`; removed capacity stops serving at once.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::adapters::{
    AdapterError, FloorMetric, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget, Series,
    TargetObservation,
};
use crate::core::MetricKind;
use crate::core::{Dur, Sample, Ts};
use crate::sim::trace::Trace;

/// Parameters of the simulated world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Size the target had while the trace was recorded (per-node metrics only).
    pub recorded_size: u32,
    /// Size the replay starts at.
    pub start_size: u32,
    /// Time before added capacity serves.
    pub provision_delay: Dur,
    /// Time before a sample becomes visible to the policy.
    pub metric_delay: Dur,
}

/// Capacity over time: what was asked for, what serves, and what is still provisioning.
#[derive(Debug, Clone)]
pub struct Fleet {
    requested: u32,
    ready: u32,
    pending: VecDeque<(Ts, u32)>,
    /// `(from, serving)` whenever serving capacity changed, oldest first.
    history: Vec<(Ts, u32)>,
    delay: Dur,
}

impl Fleet {
    /// A fleet of `size` serving nodes since the beginning of time.
    pub fn new(size: u32, delay: Dur) -> Fleet {
        Fleet { requested: size, ready: size, pending: VecDeque::new(), history: vec![(Ts(i64::MIN), size)], delay }
    }

    /// Size asked for (what is billed).
    pub fn requested(&self) -> u32 {
        self.requested
    }

    /// Capacity serving now.
    pub fn serving(&self) -> u32 {
        self.ready
    }

    /// Let provisioning capacity that is ready by `now` start serving.
    pub fn advance(&mut self, now: Ts) {
        while let Some(&(at, n)) = self.pending.front() {
            if at > now {
                break;
            }
            self.pending.pop_front();
            self.ready += n;
            self.history.push((at, self.ready));
        }
    }

    /// Ask for `to` nodes at `now`.
    pub fn resize(&mut self, to: u32, now: Ts) {
        if to > self.requested {
            let add = to - self.requested;
            if self.delay == Dur::ZERO {
                self.ready += add;
                self.history.push((now, self.ready));
            } else {
                self.pending.push_back((now + self.delay, add));
            }
        } else {
            // Removing: cancel provisioning nodes first (newest first), then serving ones.
            let mut remove = self.requested - to;
            while remove > 0 {
                match self.pending.back_mut() {
                    Some(last) => {
                        let take = last.1.min(remove);
                        last.1 -= take;
                        remove -= take;
                        if last.1 == 0 {
                            self.pending.pop_back();
                        }
                    }
                    None => {
                        self.ready -= remove;
                        remove = 0;
                        self.history.push((now, self.ready));
                    }
                }
            }
        }
        self.requested = to;
    }

    /// Capacity that was serving at `at`.
    pub fn serving_at(&self, at: Ts) -> u32 {
        let i = self.history.partition_point(|&(t, _)| t <= at);
        self.history[i.saturating_sub(1)].1
    }
}

/// The trace plus the fleet, seen through the ports: a [`MetricSource`] that applies the metric
/// delay and the load model, and a [`ScaleTarget`] that resizes the fleet.
pub struct World<'a> {
    trace: &'a Trace,
    kind: MetricKind,
    model: Model,
    fleet: Mutex<(Fleet, Ts)>,
}

impl<'a> World<'a> {
    /// A world replaying `trace` for a metric of `kind`.
    pub fn new(trace: &'a Trace, kind: MetricKind, model: Model) -> World<'a> {
        World {
            trace,
            kind,
            model,
            fleet: Mutex::new((Fleet::new(model.start_size, model.provision_delay), Ts(i64::MIN))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Fleet, Ts)> {
        // A panic while holding the lock can only come from a bug in this module; keep going with
        // the data as it is rather than poisoning every later call.
        self.fleet.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Move the clock to `now`.
    pub fn advance(&self, now: Ts) {
        let mut g = self.lock();
        g.0.advance(now);
        g.1 = now;
    }

    /// `(requested, serving)` now.
    pub fn sizes(&self) -> (u32, u32) {
        let g = self.lock();
        (g.0.requested(), g.0.serving())
    }

    /// Demand carried by the trace sample at index `i`.
    pub fn demand_of(&self, value: f64) -> f64 {
        demand_of(self.kind, self.model.recorded_size, value)
    }
}

/// Demand in capacity units × metric units: per-node values scale with the recorded size.
pub fn demand_of(kind: MetricKind, recorded_size: u32, value: f64) -> f64 {
    match kind {
        MetricKind::PerNode => value * recorded_size as f64,
        MetricKind::Total => value,
    }
}

/// What the policy would observe for a sample carrying `demand` on `serving` nodes.
pub fn observed_of(kind: MetricKind, demand: f64, serving: u32, raw: f64) -> f64 {
    match kind {
        MetricKind::PerNode => demand / serving.max(1) as f64,
        MetricKind::Total => raw,
    }
}

impl MetricSource for World<'_> {
    fn fetch(
        &self,
        _query: &MetricQuery,
        after: Ts,
        until: Ts,
    ) -> impl Future<Output = Result<Series, AdapterError>> + Send {
        let visible_until = until - self.model.metric_delay;
        let pts = &self.trace.points;
        let lo = pts.partition_point(|p| p.0 <= after);
        let hi = pts.partition_point(|p| p.0 <= visible_until);
        let g = self.lock();
        let samples = if lo < hi {
            pts[lo..hi]
                .iter()
                .map(|&(at, raw)| {
                    let demand = demand_of(self.kind, self.model.recorded_size, raw);
                    Sample { at, value: observed_of(self.kind, demand, g.0.serving_at(at), raw) }
                })
                // A value near f64::MAX times the recorded size overflows: the policy sees no
                // sample there rather than an infinity in its averages.
                .filter(|s| s.value.is_finite())
                .collect()
        } else {
            Vec::new()
        };
        drop(g);
        std::future::ready(Ok(Series { samples, problem: None }))
    }
}

impl ScaleTarget for World<'_> {
    fn observe(&self) -> impl Future<Output = Result<TargetObservation, AdapterError>> + Send {
        let size = self.lock().0.requested();
        std::future::ready(Ok(TargetObservation {
            size,
            busy: false,
            sizes: crate::core::SizeRule::Any,
            floor: FloorMetric::None,
            members: Vec::new(),
        }))
    }

    fn resize(&self, to: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send {
        let mut g = self.lock();
        let now = g.1;
        g.0.resize(to, now);
        std::future::ready(Ok(ResizeStarted::Done))
    }

    fn operation(&self, _name: &str) -> impl Future<Output = Result<OperationStatus, AdapterError>> + Send {
        std::future::ready(Ok(OperationStatus::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_capacity_serves_after_the_delay_removed_capacity_stops_at_once() {
        let mut f = Fleet::new(4, Dur::mins(10));
        f.resize(8, Ts(0));
        assert_eq!((f.requested(), f.serving()), (8, 4));
        f.advance(Ts(Dur::mins(9).0));
        assert_eq!(f.serving(), 4);
        f.advance(Ts(Dur::mins(10).0));
        assert_eq!(f.serving(), 8);
        f.resize(5, Ts(Dur::mins(11).0));
        assert_eq!(f.serving(), 5);
        assert_eq!(f.serving_at(Ts(Dur::mins(10).0)), 8);
        assert_eq!(f.serving_at(Ts(0)), 4);
    }

    #[test]
    fn removing_cancels_provisioning_nodes_first() {
        let mut f = Fleet::new(4, Dur::mins(10));
        f.resize(8, Ts(0));
        f.resize(6, Ts(1));
        assert_eq!((f.requested(), f.serving()), (6, 4));
        f.advance(Ts(Dur::mins(10).0));
        assert_eq!(f.serving(), 6);
    }
}
