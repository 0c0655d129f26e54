//! The closed-loop world a replay runs in.
//!
//! Demand is conserved: for a per-node metric recorded on `recordedSize` nodes,
//! `demand(t) = value(t) × recordedSize`, and the policy sees `demand(t') / serving(t')` for samples
//! `t' <= now - metricDelay`, where `serving` is the capacity that was actually serving at `t'`. So
//! a good decision lowers what the policy sees next, as in production.
//!
//! The target behaves as its kind does (`kinds::Behaviour`): a resize is an operation that runs
//! for `resizeTime`; meanwhile the target is busy, shows the old or the new size as its kind does,
//! and refuses another resize (as Bigtable and GKE refuse a second update). When the operation
//! finishes, removed capacity stops serving at once and added capacity serves after
//! `provisionDelay` more. Billing counts the size asked for from the moment it is asked.
//!
//! The metric source behaves as Cloud Monitoring sometimes does ([`Faults`]): some samples are
//! never written (gaps), some arrive later than the usual delay, and some answers are partial.
//! Which ones is decided by a seeded hash of the sample's (or the fetch's) time, so a replay is
//! the same every time and the same samples are missing for every algorithm.
//!
//! A target with a storage floor (Bigtable) serves a storage utilization series: stored data (a
//! constant, or the trace's `storage` column, read as recorded on `recordedSize` nodes) over the
//! nodes the target had at each sample's time.
//!
//! Further metrics (a guard) are answered from named trace columns by the same load model
//! ([`World::with_feeds`]); a replicated instance is one fleet per cluster, resized together,
//! answering the replayed metric as its hottest cluster's own load over its own serving nodes
//! ([`World::with_clusters`]).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Mutex;

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, MetricQuery, MetricSource, MonitoringQuery, OperationStatus, ResizeStarted,
    ScaleTarget, Series, TargetObservation,
};
use crate::core::floor::{self, FloorInput};
use crate::core::step::Seen;
use crate::core::{DataProblem, Dur, MetricKind, Sample, SizeRule, Ts};
use crate::sim::trace::Trace;

/// Parameters of the simulated world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Size the target had while the trace was recorded (per-node metrics only).
    pub recorded_size: u32,
    /// Size the replay starts at.
    pub start_size: u32,
    /// Time from the end of a resize operation until added capacity serves.
    pub provision_delay: Dur,
    /// Time before a sample becomes visible to the policy.
    pub metric_delay: Dur,
    /// How long a resize operation runs (zero: done at once). The target is busy meanwhile.
    pub resize_time: Dur,
    /// Whether the target shows the new size while a resize runs (Bigtable) or the old one.
    pub new_size_while_busy: bool,
    /// The stored data behind the storage floor, if the target has one.
    pub storage: Storage,
    /// How the metric source misbehaves.
    pub faults: Faults,
    /// The sizes the target can take (zone multiples, Bigtable's 2x node scaling): it says so
    /// when observed, as the live adapter does, and refuses any other.
    pub sizes: SizeRule,
    /// A built-in autoscaler the policy steers (`steerAutoscaler`), if any.
    pub steer: Option<Steer>,
}

/// A built-in autoscaler (Bigtable's, Spanner's managed one) that the policy steers by setting
/// its minimum, as the replay models it: every minute it reads the load as its metric shows it
/// (the metric delay ago) and wants the size that holds it at `target`, within its limits; it
/// adds that capacity at once (one resize operation, provisioned as any other), and removes it
/// at a slower pace, at most a tenth of the size (one node at least) each [`STEER_DOWN_PACE`],
/// as both services document ("removes compute capacity at a slower rate than when scaling
/// up"). It never goes under the minimum the policy sets, which it reaches at its next step.
/// A simple model, not the services' own algorithms, which are not published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steer {
    /// The per-node level the autoscaler holds the live size at (its CPU target).
    pub target: f64,
    /// Its minimum at the start (the policy's `minSize`, until the policy writes another).
    pub min: u32,
    /// Its maximum at the start (raised with the minimum, as the adapters raise it).
    pub max: u32,
    /// The sizes its minimum takes (Spanner: whole thousands of processing units).
    pub bound_sizes: SizeRule,
}

/// How often a steered autoscaler takes a step down.
pub const STEER_DOWN_PACE: Dur = Dur::mins(10);

/// A steered autoscaler's limits and pace, as the replay goes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limits {
    min: u32,
    max: u32,
    last_down: Option<Ts>,
}

impl Model {
    /// A world with the given sizes and delays whose target answers at once, has no storage
    /// floor, and whose metric source never misbehaves (the model before targets had kinds).
    pub fn ideal(recorded_size: u32, start_size: u32, provision_delay: Dur, metric_delay: Dur) -> Model {
        Model {
            recorded_size,
            start_size,
            provision_delay,
            metric_delay,
            resize_time: Dur::ZERO,
            new_size_while_busy: false,
            storage: Storage::Off,
            faults: Faults::NONE,
            sizes: SizeRule::Any,
            steer: None,
        }
    }
}

/// The stored data a target's storage floor is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Storage {
    /// No storage floor.
    Off,
    /// Stored data, in nodes' worth of storage capacity, constant over the replay.
    Constant {
        /// Data in nodes' worth of capacity (utilization × the nodes it was measured on).
        data_nodes: f64,
        /// The utilization the policy keeps the data at or under (`storageTarget`).
        target: f64,
    },
    /// The trace's `storage` column: utilization measured on `recorded_on` nodes.
    Trace {
        /// Nodes the column was recorded on.
        recorded_on: u32,
        /// The utilization the policy keeps the data at or under (`storageTarget`).
        target: f64,
    },
}

impl Storage {
    /// The storage target, when there is a floor.
    pub fn target(&self) -> Option<f64> {
        match *self {
            Storage::Off => None,
            Storage::Constant { target, .. } | Storage::Trace { target, .. } => Some(target),
        }
    }

    /// Stored data at `t`, in nodes' worth of capacity (NaN when unknown).
    pub fn data_nodes(&self, trace: &Trace, t: Ts) -> f64 {
        match *self {
            Storage::Off => f64::NAN,
            Storage::Constant { data_nodes, .. } => data_nodes,
            Storage::Trace { recorded_on, .. } => {
                let i = trace.storage.partition_point(|p| p.0 <= t);
                if i == 0 { f64::NAN } else { trace.storage[i - 1].1 * f64::from(recorded_on) }
            }
        }
    }

    /// The nodes the data at `t` needs at the storage target (0 without a floor or data): what
    /// the policy's floor reads, known at once, for the baselines.
    pub fn floor_at(&self, trace: &Trace, t: Ts) -> u32 {
        match self.target() {
            Some(target) => {
                let data = self.data_nodes(trace, t);
                if data.is_finite() { (data / target - 1e-9).ceil().max(1.0) as u32 } else { 0 }
            }
            None => 0,
        }
    }
}

/// How the simulated metric source misbehaves. Rates are shares, 0 to 1; which samples and
/// fetches are hit is a seeded hash of their time, so every algorithm meets the same ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Share of samples never written: the policy never sees them (demand is unchanged).
    pub gap_rate: f64,
    /// Share of fetches answered with partial data (the answer carries an execution error).
    pub partial_rate: f64,
    /// Share of samples that become visible only `late_by` after the usual metric delay.
    pub late_rate: f64,
    /// How much later a late sample becomes visible.
    pub late_by: Dur,
    /// The seed of the hash.
    pub seed: u64,
}

/// What a fault is drawn for: each gets its own stream.
const GAP: u64 = 0x6761_7073;
const LATE: u64 = 0x6c61_7465;
const PARTIAL_METRIC: u64 = 0x7061_7274;
const PARTIAL_STORAGE: u64 = 0x7374_6f72;

impl Faults {
    /// A source that never misbehaves.
    pub const NONE: Faults = Faults { gap_rate: 0.0, partial_rate: 0.0, late_rate: 0.0, late_by: Dur::ZERO, seed: 0 };

    /// A number in [0, 1) drawn for `what` at `t` (splitmix64 of the seed, the stream and the time).
    fn draw(&self, what: u64, t: Ts) -> f64 {
        let mut z = self.seed ^ what.rotate_left(32) ^ (t.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether the sample measured at `at` was never written.
    pub fn gap(&self, at: Ts) -> bool {
        self.gap_rate > 0.0 && self.draw(GAP, at) < self.gap_rate
    }

    /// When the sample measured at `at` becomes visible, with the usual `delay`.
    pub fn visible_at(&self, at: Ts, delay: Dur) -> Ts {
        if self.late_rate > 0.0 && self.draw(LATE, at) < self.late_rate {
            at + delay + self.late_by
        } else {
            at + delay
        }
    }

    /// Whether the sample measured at `at` can be read at `now` (written, and visible by then).
    pub fn readable(&self, at: Ts, now: Ts, delay: Dur) -> bool {
        !self.gap(at) && self.visible_at(at, delay) <= now
    }

    /// Whether the metric fetch made at `now` is answered with partial data.
    pub fn partial(&self, now: Ts) -> bool {
        self.partial_rate > 0.0 && self.draw(PARTIAL_METRIC, now) < self.partial_rate
    }

    /// Whether the storage fetch made at `now` is answered with partial data.
    fn partial_storage(&self, now: Ts) -> bool {
        self.partial_rate > 0.0 && self.draw(PARTIAL_STORAGE, now) < self.partial_rate
    }

    /// Whether any fault can happen.
    pub fn any(&self) -> bool {
        self.gap_rate > 0.0 || self.partial_rate > 0.0 || self.late_rate > 0.0
    }
}

/// A resize was refused: an operation is still running on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// When the running operation finishes.
    pub until: Ts,
}

/// A resize operation in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operation {
    id: u64,
    from: u32,
    to: u32,
    done_at: Ts,
}

/// Capacity over time: what was asked for, what the target has, what serves, and what is still
/// provisioning; and the resize operation running, if any.
#[derive(Debug, Clone)]
pub struct Fleet {
    requested: u32,
    /// The size the target has (its operations applied): serving plus provisioning.
    applied: u32,
    ready: u32,
    pending: VecDeque<(Ts, u32)>,
    /// `(from, serving)` whenever serving capacity changed, oldest first.
    history: Vec<(Ts, u32)>,
    /// `(from, applied)` whenever the target's size changed, oldest first.
    sizes: Vec<(Ts, u32)>,
    delay: Dur,
    operation_time: Dur,
    running: Option<Operation>,
    operations: u64,
}

impl Fleet {
    /// A fleet of `size` serving nodes since the beginning of time, whose resizes are done at
    /// once and whose added nodes serve after `delay`.
    pub fn new(size: u32, delay: Dur) -> Fleet {
        Fleet {
            requested: size,
            applied: size,
            ready: size,
            pending: VecDeque::new(),
            history: vec![(Ts(i64::MIN), size)],
            sizes: vec![(Ts(i64::MIN), size)],
            delay,
            operation_time: Dur::ZERO,
            running: None,
            operations: 0,
        }
    }

    /// The same fleet, with resizes that run as operations of `time` (zero: done at once).
    pub fn with_operations(mut self, time: Dur) -> Fleet {
        self.operation_time = time;
        self
    }

    /// The fleet a model describes.
    pub fn for_model(model: &Model) -> Fleet {
        Fleet::new(model.start_size, model.provision_delay).with_operations(model.resize_time)
    }

    /// Size asked for. Billed with the nodes still serving: a scale-in's nodes cost until its
    /// operation removes them (`report::Summary` bills the larger of the two).
    pub fn requested(&self) -> u32 {
        self.requested
    }

    /// Capacity serving now.
    pub fn serving(&self) -> u32 {
        self.ready
    }

    /// Whether a resize operation is running at `now`.
    pub fn busy(&self, now: Ts) -> bool {
        self.running.is_some_and(|op| op.done_at > now)
    }

    /// The size the target shows: the size it has, or while an operation runs, the size it is
    /// going to when the kind shows that (`new_size_while_busy`).
    pub fn shown(&self, new_size_while_busy: bool) -> u32 {
        match self.running {
            Some(op) if new_size_while_busy => op.to,
            Some(op) => op.from,
            None => self.applied,
        }
    }

    /// Let operations finished by `now` take effect, then capacity that is ready by `now` serve.
    pub fn advance(&mut self, now: Ts) {
        if let Some(op) = self.running
            && op.done_at <= now
        {
            self.running = None;
            self.apply(op.to, op.done_at);
        }
        while let Some(&(at, n)) = self.pending.front() {
            if at > now {
                break;
            }
            self.pending.pop_front();
            self.ready += n;
            self.history.push((at, self.ready));
        }
    }

    /// Ask for `to` nodes at `now`: done at once, or an operation (its id) that runs for the
    /// fleet's operation time. Refused while another runs.
    pub fn resize(&mut self, to: u32, now: Ts) -> Result<Option<u64>, Busy> {
        self.advance(now);
        if let Some(op) = self.running {
            return Err(Busy { until: op.done_at });
        }
        self.requested = to;
        if self.operation_time == Dur::ZERO {
            self.apply(to, now);
            return Ok(None);
        }
        self.operations += 1;
        let op = Operation { id: self.operations, from: self.applied, to, done_at: now + self.operation_time };
        self.running = Some(op);
        Ok(Some(op.id))
    }

    /// Whether operation `id` is still running at `now`; `None` for an id never issued.
    pub fn operation_running(&self, id: u64, now: Ts) -> Option<bool> {
        if id == 0 || id > self.operations {
            return None;
        }
        Some(self.running.is_some_and(|op| op.id == id && op.done_at > now))
    }

    /// The target takes size `to` at `at`: added nodes start provisioning, removed ones stop.
    fn apply(&mut self, to: u32, at: Ts) {
        if to > self.applied {
            let add = to - self.applied;
            if self.delay == Dur::ZERO {
                self.ready += add;
                self.history.push((at, self.ready));
            } else {
                self.pending.push_back((at + self.delay, add));
            }
        } else {
            // Removing: cancel provisioning nodes first (newest first), then serving ones.
            let mut remove = self.applied - to;
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
                        self.history.push((at, self.ready));
                    }
                }
            }
        }
        if to != self.applied {
            self.sizes.push((at, to));
        }
        self.applied = to;
    }

    /// Capacity that was serving at `at`.
    pub fn serving_at(&self, at: Ts) -> u32 {
        let i = self.history.partition_point(|&(t, _)| t <= at);
        self.history[i.saturating_sub(1)].1
    }

    /// The size the target had at `at` (what a storage sample of that time was measured on).
    pub fn size_at(&self, at: Ts) -> u32 {
        let i = self.sizes.partition_point(|&(t, _)| t <= at);
        self.sizes[i.saturating_sub(1)].1
    }
}

/// The query the simulated target names for its storage floor (what [`World`] serves the
/// storage series for).
pub fn storage_query() -> MetricQuery {
    MetricQuery::Monitoring(MonitoringQuery {
        project: "simulated".into(),
        filter: "metric.type=\"bigtable.googleapis.com/cluster/storage_utilization\"".into(),
        alignment_period: Dur::secs(60),
        per_series_aligner: "ALIGN_MAX".into(),
        cross_series_reducer: None,
        group_by_fields: Vec::new(),
    })
}

/// A further metric of a replay: its query, its kind, the largest value it reports (see
/// [`observed_of`]), and the trace column it is read from.
pub type Feed<'a> = (MetricQuery, MetricKind, Option<f64>, &'a [(Ts, f64)]);

/// Samples of one trace column, oldest first.
type Column<'a> = &'a [(Ts, f64)];

/// Where a metric of the replayed policy is answered from: resolved once per replay from its
/// query, so a fetch compares no strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The replayed metric: the trace's first column (per cluster for an instance).
    Replayed,
    /// A further metric: the feed at this index ([`Sim::with_feeds`]).
    Feed(usize),
    /// The storage utilization series of the target's floor.
    Storage,
}

/// The trace plus the fleet: answers what the policy asks, applying the metric delay, the load
/// model and the faults, and resizes the fleet as an operation. Plain data with synchronous
/// methods, for a replay's driver (`sim::drive`); [`World`] is the same behind the adapter ports.
#[derive(Debug, Clone)]
pub struct Sim<'a> {
    trace: &'a Trace,
    kind: MetricKind,
    /// The largest value the replayed metric reports (see [`observed_of`]).
    ceiling: Option<f64>,
    model: Model,
    storage_query: MetricQuery,
    /// One fleet, or one per cluster of a replicated instance (sized together).
    fleets: Vec<Fleet>,
    /// The clock.
    now: Ts,
    /// Further metrics, each answered from a named column of the trace: its query, its kind, and
    /// the column's samples.
    feeds: Vec<Feed<'a>>,
    /// A replicated instance: each cluster's samples of the replayed metric, one fleet each.
    clusters: Vec<&'a [(Ts, f64)]>,
    /// Where the last searches of each metric's column ended (`[after, until]`; the replayed
    /// metric first, then each feed), and of the demand lookup: see [`seek`].
    cursors: Vec<[Cell<usize>; 2]>,
    demand_cursor: Cell<usize>,
    /// The steered autoscaler's limits, when the policy steers one.
    limits: Option<Limits>,
}

/// `points.partition_point(|p| p.0 <= t)`, searched from where the last search with this
/// `cursor` ended: a replay asks for ever later times, so the answer is usually a few samples on
/// (two binary searches of the whole trace per fetch were a sixth of a replay's time).
pub(crate) fn seek(points: &[(Ts, f64)], t: Ts, cursor: &Cell<usize>) -> usize {
    const NEAR: usize = 8;
    let c = cursor.get().min(points.len());
    let i = if c > 0 && points[c - 1].0 > t {
        points[..c].partition_point(|p| p.0 <= t)
    } else {
        let ahead = &points[c..];
        let near = ahead.iter().take(NEAR).take_while(|p| p.0 <= t).count();
        if near < NEAR { c + near } else { c + ahead.partition_point(|p| p.0 <= t) }
    };
    cursor.set(i);
    i
}

/// How far back the storage series is served: more than the floor's own lookback.
const STORAGE_SERVED: Dur = Dur::mins(60);

/// The operation names the simulated target hands out.
const OPERATION_PREFIX: &str = "simulated-resize-";

impl<'a> Sim<'a> {
    /// A world replaying `trace` for a metric of `kind`.
    pub fn new(trace: &'a Trace, kind: MetricKind, model: Model) -> Sim<'a> {
        Sim {
            trace,
            kind,
            ceiling: None,
            model,
            storage_query: storage_query(),
            fleets: vec![Fleet::for_model(&model)],
            now: Ts(i64::MIN),
            feeds: Vec::new(),
            clusters: Vec::new(),
            cursors: vec![Default::default()],
            demand_cursor: Cell::new(0),
            limits: model.steer.map(|s| Limits { min: s.min, max: s.max.max(s.min), last_down: None }),
        }
    }

    /// The same world with the replayed metric reporting at most `ceiling` per node (see
    /// [`observed_of`]).
    pub fn with_ceiling(mut self, ceiling: Option<f64>) -> Sim<'a> {
        self.ceiling = ceiling;
        self
    }

    /// The same world answering further metrics from named columns: `(query, kind, ceiling,
    /// samples)`, each sample per node as recorded on `recordedSize` nodes (per-node load falls as
    /// nodes serve) or a total. A query not listed is the replayed metric's.
    pub fn with_feeds(mut self, feeds: Vec<Feed<'a>>) -> Sim<'a> {
        self.cursors = (0..=feeds.len()).map(|_| Default::default()).collect();
        self.feeds = feeds;
        self
    }

    /// The same world as a replicated instance sized as one (`bigtableInstance`, `largest`): one
    /// fleet per cluster, each resized with the others, and the replayed metric answered as the
    /// policy's instance query (`REDUCE_MAX`) is: each minute the hottest cluster's value, its own
    /// demand over its own serving nodes.
    pub fn with_clusters(mut self, clusters: Vec<&'a [(Ts, f64)]>) -> Sim<'a> {
        let n = clusters.len().max(1);
        self.clusters = clusters;
        self.fleets = vec![Fleet::for_model(&self.model); n];
        self
    }

    /// Each fleet's `(requested, serving)` now: one, or one per cluster.
    pub fn fleet_sizes(&self) -> Vec<(u32, u32)> {
        self.fleets.iter().map(|f| (f.requested(), f.serving())).collect()
    }

    /// Demand of the replayed metric at `t`, as [`crate::sim::demand_in`] reads it: for an
    /// instance, the hottest cluster's.
    pub fn demand_at(&self, t: Ts, gap: Dur) -> f64 {
        if self.clusters.is_empty() {
            // As `crate::sim::demand_in`, with the search started where the last one ended.
            let i = seek(&self.trace.points, t, &self.demand_cursor);
            let Some(&(at, v)) = i.checked_sub(1).and_then(|i| self.trace.points.get(i)) else { return f64::NAN };
            let demand = demand_of(self.kind, self.model.recorded_size, v);
            return if t - at > gap || !demand.is_finite() { f64::NAN } else { demand };
        }
        self.clusters
            .iter()
            .map(|pts| crate::sim::demand_in(pts, self.kind, self.model.recorded_size, t, gap))
            .fold(f64::NAN, f64::max)
    }

    /// Move the clock to `now` (and let a steered autoscaler take its step).
    pub fn advance(&mut self, now: Ts) {
        for f in &mut self.fleets {
            f.advance(now);
        }
        self.now = now;
        if let (Some(steer), Some(limits)) = (self.model.steer, self.limits) {
            self.limits = Some(self.autoscale(steer, limits, now));
        }
    }

    /// One step of the steered autoscaler (see [`Steer`]): the limits after it.
    fn autoscale(&mut self, steer: Steer, mut limits: Limits, now: Ts) -> Limits {
        let delay = self.model.metric_delay;
        let demand = crate::sim::demand_in(
            &self.trace.points,
            self.kind,
            self.model.recorded_size,
            now - delay,
            self.trace.interval() + delay,
        );
        let rule = self.model.sizes;
        let Some(f) = self.fleets.first_mut() else { return limits };
        // It reads the metric as the policy does: a full node shows its ceiling, no more.
        let demand = match (self.kind, self.ceiling) {
            (MetricKind::PerNode, Some(c)) => demand.min(c * f64::from(f.serving_at(now - delay).max(1))),
            _ => demand,
        };
        if f.busy(now) {
            return limits;
        }
        let current = f.requested();
        let need = if demand.is_finite() && steer.target > 0.0 {
            (demand / steer.target - 1e-9).ceil().clamp(1.0, f64::from(u32::MAX)) as u32
        } else {
            current
        };
        let want = need.clamp(limits.min, limits.max.max(limits.min));
        let want = rule.up(want).unwrap_or(want);
        if want > current {
            let _ = f.resize(want, now);
        } else if want < current && limits.last_down.is_none_or(|t| now - t >= STEER_DOWN_PACE) {
            let step = (current / 10).max(1);
            let to = want.max(current.saturating_sub(step));
            let to = rule.up(to).unwrap_or(to);
            if to < current && f.resize(to, now).is_ok() {
                limits.last_down = Some(now);
            }
        }
        limits
    }

    /// `(requested, serving)` now; for an instance, the largest size asked for and the fewest
    /// nodes serving in any cluster.
    pub fn sizes(&self) -> (u32, u32) {
        let requested = self.fleets.iter().map(Fleet::requested).max().unwrap_or(0);
        let serving = self.fleets.iter().map(Fleet::serving).min().unwrap_or(0);
        (requested, serving)
    }

    /// Demand carried by a trace value of the replayed metric.
    pub fn demand_of(&self, value: f64) -> f64 {
        demand_of(self.kind, self.model.recorded_size, value)
    }

    /// Where `query` is answered from.
    pub fn source_of(&self, query: &MetricQuery) -> Source {
        if self.model.storage.target().is_some() && *query == self.storage_query {
            return Source::Storage;
        }
        match self.feeds.iter().position(|(q, _, _, _)| q == query) {
            Some(i) => Source::Feed(i),
            None => Source::Replayed,
        }
    }

    /// What the target shows now: an instance is as large as its largest cluster, and busy while
    /// any cluster is.
    pub fn seen(&self) -> Seen {
        let shown = self.fleets.iter().map(|f| f.shown(self.model.new_size_while_busy)).max().unwrap_or(0);
        if let (Some(steer), Some(limits)) = (self.model.steer, self.limits) {
            // The minimum is what the policy controls; the autoscaler's live size serves. A new
            // minimum is taken at once (the adapters follow a short operation).
            return Seen { size: limits.min, busy: false, sizes: steer.bound_sizes, serving: Some(shown) };
        }
        Seen { size: shown, busy: self.fleets.iter().any(|f| f.busy(self.now)), sizes: self.model.sizes, serving: None }
    }

    /// The floor metric the target names, for the adapter port.
    fn floor_metric(&self) -> FloorMetric {
        match self.model.storage.target() {
            Some(storage_target) => FloorMetric::Storage { query: self.storage_query.clone(), storage_target },
            None => FloorMetric::None,
        }
    }

    /// What the floor reads now, as the tick reads it from the storage series of the last
    /// [`floor::STORAGE_LOOKBACK`]: its newest sample, built without the rest of the series.
    pub fn floor_input(&self) -> FloorInput {
        self.floor_input_of(0)
    }

    /// [`Sim::floor_input`] for member `m` (a cluster of an instance sized per cluster: each
    /// holds all the data, over its own nodes).
    pub fn floor_input_of(&self, m: usize) -> FloorInput {
        let Some(storage_target) = self.model.storage.target() else { return FloorInput::None };
        let until = self.now;
        let newest = self.newest_storage(m, until - floor::STORAGE_LOOKBACK, until);
        let problem = self.model.faults.partial_storage(until).then_some(DataProblem::Partial);
        floor::storage_input(newest.as_slice(), problem, storage_target)
    }

    /// The storage sample of time `at`: the data over the size the target had then.
    fn storage_sample(&self, m: usize, at: Ts, data_nodes: f64) -> Sample {
        let size = self.fleets.get(m).map_or(1, |f| f.size_at(at));
        Sample { at, value: data_nodes / f64::from(size.max(1)) }
    }

    /// The storage series' samples in `(after, until]` as visible at `until`, one a minute for
    /// constant data; or only the newest of them.
    fn storage_samples(&self, m: usize, after: Ts, until: Ts, out: &mut Vec<Sample>) {
        let visible = until - self.model.metric_delay;
        let from = after.max(visible - STORAGE_SERVED);
        match self.model.storage {
            Storage::Off => {}
            Storage::Constant { data_nodes, .. } => {
                let minute = Dur::mins(1).0;
                let mut t = Ts((from.0.div_euclid(minute) + 1) * minute);
                while t <= visible {
                    out.push(self.storage_sample(m, t, data_nodes));
                    t = t + Dur::mins(1);
                }
            }
            Storage::Trace { recorded_on, .. } => {
                let pts = &self.trace.storage;
                let lo = pts.partition_point(|p| p.0 <= from);
                let hi = pts.partition_point(|p| p.0 <= visible);
                out.extend(
                    pts[lo..hi.max(lo)].iter().map(|&(at, u)| self.storage_sample(m, at, u * f64::from(recorded_on))),
                );
            }
        }
    }

    /// The newest sample [`Sim::storage_samples`] would serve.
    fn newest_storage(&self, m: usize, after: Ts, until: Ts) -> Option<Sample> {
        let visible = until - self.model.metric_delay;
        let from = after.max(visible - STORAGE_SERVED);
        match self.model.storage {
            Storage::Off => None,
            Storage::Constant { data_nodes, .. } => {
                let minute = Dur::mins(1).0;
                let first = Ts((from.0.div_euclid(minute) + 1) * minute);
                let last = Ts(visible.0.div_euclid(minute) * minute);
                (last >= first).then(|| self.storage_sample(m, last, data_nodes))
            }
            Storage::Trace { recorded_on, .. } => {
                let pts = &self.trace.storage;
                let lo = pts.partition_point(|p| p.0 <= from);
                let hi = pts.partition_point(|p| p.0 <= visible);
                (hi > lo).then(|| {
                    let (at, u) = pts[hi - 1];
                    self.storage_sample(m, at, u * f64::from(recorded_on))
                })
            }
        }
    }

    /// The samples of `source` in `(after, until]` as visible at `until`, appended to `out` (the
    /// caller reuses it, so a replay allocates nothing here), and the problem the answer carries.
    pub fn fetch_into(&self, source: Source, after: Ts, until: Ts, out: &mut Vec<Sample>) -> Option<DataProblem> {
        self.read(None, source, after, until, out)
    }

    /// The samples of `source` for the target as a whole (`member` `None`: the replayed metric of
    /// an instance is its hottest cluster's each minute, as its `REDUCE_MAX` query reports) or for
    /// one member's own series (a cluster's column against its own nodes, as the policy's queries
    /// narrowed to the cluster ask). Further metrics are read against that member's (or the first
    /// fleet's) serving nodes.
    fn read(
        &self,
        member: Option<usize>,
        source: Source,
        after: Ts,
        until: Ts,
        out: &mut Vec<Sample>,
    ) -> Option<DataProblem> {
        let faults = self.model.faults;
        let m = member.unwrap_or(0);
        if source == Source::Storage {
            self.storage_samples(m, after, until, out);
            return faults.partial_storage(until).then_some(DataProblem::Partial);
        }
        let (Some(fleet), delay, recorded) = (self.fleets.get(m), self.model.metric_delay, self.model.recorded_size)
        else {
            return Some(DataProblem::QueryFailed);
        };
        let (kind, ceiling, pts): (MetricKind, Option<f64>, Column<'_>) = match (source, member) {
            (Source::Feed(i), _) => (self.feeds[i].1, self.feeds[i].2, self.feeds[i].3),
            (_, Some(m)) => (self.kind, self.ceiling, self.clusters.get(m).copied().unwrap_or(&self.trace.points)),
            _ if self.clusters.is_empty() => (self.kind, self.ceiling, &self.trace.points),
            _ => (self.kind, self.ceiling, self.clusters[0]),
        };
        let slot = match source {
            Source::Feed(i) => i + 1,
            _ => 0,
        };
        // The whole target's searches start where the last ended; a member's are few.
        let (lo, hi) = match (member, self.cursors.get(slot)) {
            (None, Some([a, b])) => (seek(pts, after, a), seek(pts, until - delay, b)),
            _ => (pts.partition_point(|p| p.0 <= after), pts.partition_point(|p| p.0 <= until - delay)),
        };
        let replicated = member.is_none() && matches!(source, Source::Replayed) && !self.clusters.is_empty();
        let observed = |series: &[(Ts, f64)], fleet: &Fleet, at: Ts| -> Option<f64> {
            let i = series.partition_point(|p| p.0 < at);
            let &(t, raw) = series.get(i).filter(|p| p.0 == at)?;
            Some(observed_of(kind, demand_of(kind, recorded, raw), fleet.serving_at(t), raw, ceiling))
        };
        for &(at, raw) in pts.get(lo..hi).unwrap_or_default() {
            if faults.any() && !faults.readable(at, until, delay) {
                continue;
            }
            let value = if replicated {
                // The instance query's REDUCE_MAX: the hottest cluster at this minute.
                self.clusters.iter().zip(&self.fleets).filter_map(|(s, f)| observed(s, f, at)).fold(f64::NAN, f64::max)
            } else {
                observed_of(kind, demand_of(kind, recorded, raw), fleet.serving_at(at), raw, ceiling)
            };
            // A value near f64::MAX times the recorded size overflows: the policy sees no sample
            // there rather than an infinity in its averages.
            if value.is_finite() {
                out.push(Sample { at, value });
            }
        }
        // A partial answer still carries what it has, as Cloud Monitoring's does.
        faults.partial(until).then_some(DataProblem::Partial)
    }

    /// Ask for `to` nodes now: as the instance adapter, no cluster is written while any runs an
    /// operation, and a size the target cannot take is refused, as the service refuses it.
    pub fn resize(&mut self, to: u32) -> Result<ResizeStarted, AdapterError> {
        let now = self.now;
        if let (Some(steer), Some(limits)) = (self.model.steer, self.limits.as_mut()) {
            // Steering: a new minimum (the maximum raised with it), which the autoscaler
            // reaches at its next step.
            if !steer.bound_sizes.allows(to) {
                return Err(AdapterError::new(
                    "simulated",
                    ErrorKind::Refused,
                    format!("the autoscaler's minimum cannot be {to} (its sizes: {:?})", steer.bound_sizes),
                ));
            }
            // Both services keep the maximum at most 10 x the minimum, as the adapters do.
            if to.saturating_mul(10) < limits.max {
                return Err(AdapterError::new(
                    "simulated",
                    ErrorKind::Refused,
                    format!("the autoscaler's minimum cannot go below a tenth of its maximum {}", limits.max),
                ));
            }
            limits.min = to;
            limits.max = limits.max.max(to);
            return Ok(ResizeStarted::Done);
        }
        self.check_size(to)?;
        let busy = self.fleets.iter_mut().find_map(|f| {
            f.advance(now);
            f.running.map(|op| Busy { until: op.done_at })
        });
        let mut started = Ok(None);
        match busy {
            Some(b) => started = Err(b),
            None => {
                for (i, f) in self.fleets.iter_mut().enumerate() {
                    let r = f.resize(to, now);
                    if i == 0 {
                        started = r;
                    }
                }
            }
        }
        answer_of(started, "target")
    }

    /// How many members the world has: the clusters of an instance, else one.
    pub fn members(&self) -> usize {
        self.fleets.len()
    }

    /// What member `m` shows now (a cluster of an instance sized per cluster).
    pub fn seen_of(&self, m: usize) -> Seen {
        let (size, busy) =
            self.fleets.get(m).map_or((0, false), |f| (f.shown(self.model.new_size_while_busy), f.busy(self.now)));
        Seen { size, busy, sizes: self.model.sizes, serving: None }
    }

    /// [`Sim::fetch_into`] for member `m`'s own series (a cluster of an instance sized per
    /// cluster): its column of the replayed metric, and every metric, against its own nodes.
    pub fn fetch_member_into(
        &self,
        m: usize,
        source: Source,
        after: Ts,
        until: Ts,
        out: &mut Vec<Sample>,
    ) -> Option<DataProblem> {
        self.read(Some(m), source, after, until, out)
    }

    /// Resize member `m` alone, as the instance adapter's per-cluster write does: refused while
    /// that cluster runs an operation, or for a size it cannot take.
    pub fn resize_member(&mut self, m: usize, to: u32) -> Result<ResizeStarted, AdapterError> {
        let now = self.now;
        self.check_size(to)?;
        let Some(fleet) = self.fleets.get_mut(m) else {
            return Err(AdapterError::new("simulated", ErrorKind::NotFound, format!("no member {m}")));
        };
        answer_of(fleet.resize(to, now), "cluster")
    }

    /// What member `m` says of operation `name`.
    pub fn operation_of(&self, m: usize, name: &str) -> Option<bool> {
        let id = name.strip_prefix(OPERATION_PREFIX)?.parse().ok()?;
        self.fleets.get(m)?.operation_running(id, self.now)
    }

    /// The replay's row for the target at `now`: `(requested, serving, demand)`. One fleet: its
    /// sizes and the demand at `now`. An instance: the nodes asked for and serving over all its
    /// clusters (what is billed), and the demand that puts the total at the load of its most
    /// loaded cluster (`demand / serving` is that cluster's), so a row is over the limit when any
    /// cluster is.
    pub fn row(&self, now: Ts, gap: Dur) -> (u32, u32, f64) {
        if self.clusters.is_empty() {
            let (requested, serving) = self.sizes();
            return (requested, serving, self.demand_at(now, gap));
        }
        let requested = self.fleets.iter().map(Fleet::requested).sum();
        let serving: u32 = self.fleets.iter().map(Fleet::serving).sum();
        let load = self
            .clusters
            .iter()
            .zip(&self.fleets)
            .map(|(pts, f)| {
                crate::sim::demand_in(pts, self.kind, self.model.recorded_size, now, gap)
                    / f64::from(f.serving().max(1))
            })
            .fold(f64::NAN, f64::max);
        (requested, serving, load * f64::from(serving.max(1)))
    }

    /// What the target says of operation `name`: running, done, or never issued (`None`).
    pub fn operation(&self, name: &str) -> Option<bool> {
        // The clusters' operations start together and run as long: one id names them all.
        let id = name.strip_prefix(OPERATION_PREFIX)?.parse().ok()?;
        self.fleets.iter().map(|f| f.operation_running(id, self.now)).try_fold(false, |any, r| r.map(|r| any || r))
    }
}

impl Sim<'_> {
    /// A size the target cannot take is refused, as the service refuses it.
    fn check_size(&self, to: u32) -> Result<(), AdapterError> {
        if self.model.sizes.allows(to) {
            return Ok(());
        }
        Err(AdapterError::new(
            "simulated",
            ErrorKind::Refused,
            format!("the target cannot take {to} nodes (its sizes: {:?})", self.model.sizes),
        ))
    }
}

/// A fleet's answer to a resize as the adapter port says it: done, an operation, or busy (as
/// Bigtable and GKE answer an update while another operation runs on the `what`).
fn answer_of(started: Result<Option<u64>, Busy>, what: &str) -> Result<ResizeStarted, AdapterError> {
    match started {
        Ok(None) => Ok(ResizeStarted::Done),
        Ok(Some(id)) => Ok(ResizeStarted::Operation(format!("{OPERATION_PREFIX}{id}"))),
        Err(Busy { until }) => Err(AdapterError::new(
            "simulated",
            ErrorKind::Busy,
            format!("the {what} is running another resize operation (until {until})"),
        )),
    }
}

/// A [`Sim`] behind the adapter ports (`MetricSource`, `ScaleTarget`), shared across tasks: what
/// `ebbflow demo` runs the live engine against.
pub struct World<'a> {
    sim: Mutex<Sim<'a>>,
}

impl<'a> From<Sim<'a>> for World<'a> {
    fn from(sim: Sim<'a>) -> World<'a> {
        World { sim: Mutex::new(sim) }
    }
}

impl<'a> World<'a> {
    /// A world replaying `trace` for a metric of `kind` (see [`Sim::new`]).
    pub fn new(trace: &'a Trace, kind: MetricKind, model: Model) -> World<'a> {
        World::from(Sim::new(trace, kind, model))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sim<'a>> {
        // A panic while holding the lock can only come from a bug in this module; keep going with
        // the data as it is rather than poisoning every later call.
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Move the clock to `now`.
    pub fn advance(&self, now: Ts) {
        self.lock().advance(now);
    }

    /// `(requested, serving)` now (see [`Sim::sizes`]).
    pub fn sizes(&self) -> (u32, u32) {
        self.lock().sizes()
    }

    /// Each fleet's `(requested, serving)` now.
    pub fn fleet_sizes(&self) -> Vec<(u32, u32)> {
        self.lock().fleet_sizes()
    }

    /// Demand of the replayed metric at `t` (see [`Sim::demand_at`]).
    pub fn demand_at(&self, t: Ts, gap: Dur) -> f64 {
        self.lock().demand_at(t, gap)
    }
}

/// Demand in capacity units × metric units: per-node values scale with the recorded size.
pub fn demand_of(kind: MetricKind, recorded_size: u32, value: f64) -> f64 {
    match kind {
        MetricKind::PerNode => value * recorded_size as f64,
        MetricKind::Total => value,
    }
}

/// What the policy would observe for a sample carrying `demand` on `serving` nodes. A per-node
/// utilization reports at most its `ceiling`: a CPU at 100 % shows no more however much load
/// waits, so on fewer nodes than the load needs the policy sees that the nodes are full, not by
/// how much (a trace's own values above the ceiling, load recorded beyond its nodes, are capped
/// alike).
pub fn observed_of(kind: MetricKind, demand: f64, serving: u32, raw: f64, ceiling: Option<f64>) -> f64 {
    match kind {
        MetricKind::PerNode => {
            let value = demand / serving.max(1) as f64;
            ceiling.map_or(value, |c| value.min(c))
        }
        MetricKind::Total => raw,
    }
}

impl MetricSource for World<'_> {
    fn fetch(
        &self,
        query: &MetricQuery,
        after: Ts,
        until: Ts,
    ) -> impl Future<Output = Result<Series, AdapterError>> + Send {
        let sim = self.lock();
        let mut samples = Vec::new();
        let problem = sim.fetch_into(sim.source_of(query), after, until, &mut samples);
        std::future::ready(Ok(Series { samples, problem }))
    }
}

impl ScaleTarget for World<'_> {
    fn observe(&self) -> impl Future<Output = Result<TargetObservation, AdapterError>> + Send {
        let sim = self.lock();
        let seen = sim.seen();
        let observation = TargetObservation {
            size: seen.size,
            busy: seen.busy,
            sizes: seen.sizes,
            floor: sim.floor_metric(),
            members: Vec::new(),
            serving: seen.serving,
            steered_max: None,
        };
        std::future::ready(Ok(observation))
    }

    fn resize(&self, to: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send {
        std::future::ready(self.lock().resize(to))
    }

    fn operation(&self, name: &str) -> impl Future<Output = Result<OperationStatus, AdapterError>> + Send {
        std::future::ready(match self.lock().operation(name) {
            Some(true) => Ok(OperationStatus::Running),
            Some(false) => Ok(OperationStatus::Done),
            None => Err(AdapterError::new("simulated", ErrorKind::NotFound, format!("no operation {name}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_capacity_serves_after_the_delay_removed_capacity_stops_at_once() {
        let mut f = Fleet::new(4, Dur::mins(10));
        assert_eq!(f.resize(8, Ts(0)), Ok(None));
        assert_eq!((f.requested(), f.serving()), (8, 4));
        f.advance(Ts(Dur::mins(9).0));
        assert_eq!(f.serving(), 4);
        f.advance(Ts(Dur::mins(10).0));
        assert_eq!(f.serving(), 8);
        assert_eq!(f.resize(5, Ts(Dur::mins(11).0)), Ok(None));
        assert_eq!(f.serving(), 5);
        assert_eq!(f.serving_at(Ts(Dur::mins(10).0)), 8);
        assert_eq!(f.serving_at(Ts(0)), 4);
    }

    #[test]
    fn removing_cancels_provisioning_nodes_first() {
        let mut f = Fleet::new(4, Dur::mins(10));
        assert!(f.resize(8, Ts(0)).is_ok() && f.resize(6, Ts(1)).is_ok());
        assert_eq!((f.requested(), f.serving()), (6, 4));
        f.advance(Ts(Dur::mins(10).0));
        assert_eq!(f.serving(), 6);
    }

    fn min(m: i64) -> Ts {
        Ts(Dur::mins(m).0)
    }

    /// A resize runs for the operation time: the target is busy and refuses another, shows the
    /// old or new size as its kind does, bills the new size at once, and the added nodes serve
    /// the provisioning delay after the operation ends; a scale-in stops nodes when it ends.
    /// A steered autoscaler (load 3 nodes' worth at a target of 1 per node, limits 2 to 10):
    /// it adds capacity at its next step, removes a tenth (one node at least) every 10 minutes,
    /// never goes under the minimum the policy writes nor over its maximum, which a higher
    /// minimum raises; the policy sees the minimum as the size and the live size as serving.
    #[test]
    fn a_steered_autoscaler_keeps_within_its_limits_at_its_own_pace() {
        let csv: String = std::iter::once("timestamp,value".to_string())
            .chain((0..200).map(|m| format!("2024-01-01 {:02}:{:02}:00,3", m / 60, m % 60)))
            .collect::<Vec<_>>()
            .join("\n");
        let trace = Trace::parse("t.csv", &csv).unwrap();
        let t0 = trace.points[0].0;
        let steer = Steer { target: 1.0, min: 2, max: 10, bound_sizes: SizeRule::Any };
        let model = Model { steer: Some(steer), ..Model::ideal(1, 4, Dur::ZERO, Dur::ZERO) };
        let mut sim = Sim::new(&trace, MetricKind::Total, model);
        let live = |sim: &mut Sim<'_>, m: i64| {
            sim.advance(t0 + Dur::mins(m));
            sim.sizes().0
        };
        assert_eq!(live(&mut sim, 1), 3, "down to the load's 3, one node (a tenth of 4, at least one)");
        assert_eq!(sim.seen(), Seen { size: 2, busy: false, sizes: SizeRule::Any, serving: Some(3) });
        assert_eq!(sim.resize(6), Ok(ResizeStarted::Done), "a new minimum is taken at once");
        assert_eq!(sim.sizes().0, 3, "the autoscaler reaches it at its next step, not at once");
        assert_eq!(live(&mut sim, 2), 6);
        assert_eq!(sim.resize(2), Ok(ResizeStarted::Done));
        let walk: Vec<u32> = (3..40).map(|m| live(&mut sim, m)).collect();
        // The last step down was at minute 1: the next comes at minute 11, then one each 10.
        assert_eq!(walk.iter().filter(|&&n| n == 6).count(), 8, "{walk:?}");
        assert_eq!(walk.iter().filter(|&&n| n == 5).count(), 10, "one node each 10 minutes: {walk:?}");
        assert_eq!(walk.iter().filter(|&&n| n == 4).count(), 10, "{walk:?}");
        assert_eq!(*walk.last().unwrap(), 3, "down to the load, not to the minimum: {walk:?}");
        assert_eq!(sim.resize(12), Ok(ResizeStarted::Done), "a minimum over the maximum raises it");
        assert_eq!(live(&mut sim, 41), 12);
    }

    #[test]
    fn a_resize_is_an_operation_that_keeps_the_target_busy() {
        let mut f = Fleet::new(4, Dur::mins(10)).with_operations(Dur::mins(4));
        assert_eq!(f.resize(8, min(0)), Ok(Some(1)));
        assert!(f.busy(min(0)) && f.busy(min(3)) && !f.busy(min(4)));
        assert_eq!((f.shown(true), f.shown(false), f.requested()), (8, 4, 8));
        assert_eq!(f.resize(9, min(2)), Err(Busy { until: min(4) }), "refused while the operation runs");
        assert_eq!(f.requested(), 8, "a refused resize changes nothing");
        assert_eq!(f.operation_running(1, min(3)), Some(true));
        f.advance(min(4));
        assert_eq!((f.operation_running(1, min(4)), f.operation_running(2, min(4))), (Some(false), None));
        assert_eq!((f.shown(false), f.serving(), f.size_at(min(3)), f.size_at(min(4))), (8, 4, 4, 8));
        f.advance(min(13));
        assert_eq!(f.serving(), 4, "serves 10 minutes after the operation ended, not after the request");
        f.advance(min(14));
        assert_eq!(f.serving(), 8);
        assert_eq!(f.resize(5, min(20)), Ok(Some(2)));
        f.advance(min(23));
        assert_eq!((f.serving(), f.requested()), (8, 5), "removed nodes serve until the operation ends");
        f.advance(min(24));
        assert_eq!(f.serving(), 5);
        assert_eq!(f.serving_at(min(23)), 8);
    }

    /// The storage series is the data over the nodes the target had at each sample's time, as
    /// visible after the metric delay.
    #[test]
    fn storage_utilization_follows_the_size_of_its_time() {
        let trace = Trace::parse("t.csv", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,1\n").unwrap();
        let t0 = trace.points[0].0;
        let model = Model {
            resize_time: Dur::mins(2),
            storage: Storage::Constant { data_nodes: 2.0, target: 0.5 },
            ..Model::ideal(1, 4, Dur::ZERO, Dur::mins(1))
        };
        let world = World::new(&trace, MetricKind::Total, model);
        world.advance(t0 + Dur::mins(10));
        let started = crate::sim::run_now(world.resize(8));
        assert_eq!(started, Ok(ResizeStarted::Operation("simulated-resize-1".into())));
        let busy = crate::sim::run_now(world.resize(9)).unwrap_err();
        assert_eq!(busy.kind, ErrorKind::Busy);
        world.advance(t0 + Dur::mins(16));
        let q = storage_query();
        let s = crate::sim::run_now(world.fetch(&q, t0 + Dur::mins(9), t0 + Dur::mins(16))).unwrap();
        let values: Vec<f64> = s.samples.iter().map(|s| s.value).collect();
        // Minutes 10..=15 visible at 16: on 4 nodes until the operation ended at minute 12.
        assert_eq!(values, [0.5, 0.5, 0.25, 0.25, 0.25, 0.25]);
        assert_eq!(Storage::Constant { data_nodes: 2.0, target: 0.5 }.floor_at(&trace, t0), 4);
        let obs = crate::sim::run_now(world.observe()).unwrap();
        assert!(matches!(obs.floor, FloorMetric::Storage { storage_target: 0.5, .. }));
        assert_eq!((obs.size, obs.busy), (8, false));
    }

    /// The floor reads only the newest storage sample: built alone, it is the last of the series
    /// the adapter port serves, at every time, for constant data and for a column, before, during
    /// and after a resize; and a size the target cannot take is refused, as the service does.
    #[test]
    fn the_newest_storage_sample_is_the_last_of_the_series() {
        let mut csv = String::from("timestamp,value,storage\n");
        for m in 0..90 {
            csv.push_str(&format!("2024-01-01 {:02}:{:02}:00,1,{}\n", m / 60, m % 60, 0.2 + f64::from(m % 7) / 100.0));
        }
        let trace = Trace::parse("t.csv", &csv).unwrap();
        let t0 = trace.points[0].0;
        for storage in
            [Storage::Constant { data_nodes: 2.0, target: 0.5 }, Storage::Trace { recorded_on: 3, target: 0.5 }]
        {
            let model = Model {
                resize_time: Dur::mins(2),
                storage,
                sizes: SizeRule::Multiple(2),
                ..Model::ideal(1, 4, Dur::ZERO, Dur::mins(3))
            };
            let mut sim = Sim::new(&trace, MetricKind::Total, model);
            for m in 0..90 {
                let now = t0 + Dur::mins(m);
                sim.advance(now);
                if m == 30 {
                    assert_eq!(sim.resize(7).map_err(|e| e.kind), Err(ErrorKind::Refused), "odd size on a 2x target");
                    assert!(sim.resize(8).is_ok());
                }
                let mut series = Vec::new();
                sim.storage_samples(0, now - floor::STORAGE_LOOKBACK, now, &mut series);
                assert_eq!(sim.newest_storage(0, now - floor::STORAGE_LOOKBACK, now), series.last().copied(), "{m}");
            }
        }
    }

    /// A search started from the last one's end finds what a binary search of the whole column
    /// finds, forwards in small and large steps, backwards, and past either end.
    #[test]
    fn a_cursor_search_is_a_binary_search() {
        let points: Vec<(Ts, f64)> = (0..500).map(|i| (min(i * 3), 0.0)).collect();
        let cursor = Cell::new(0);
        let mut t = -5i64;
        let mut step = 1u64;
        for _ in 0..3000 {
            let at = Ts(Dur::mins(1).0 * t / 2);
            assert_eq!(seek(&points, at, &cursor), points.partition_point(|p| p.0 <= at), "{at}");
            step = step.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            t += match step >> 60 {
                0 => -40,
                1 => 200,
                2..=4 => 0,
                _ => (step >> 61) as i64,
            };
            t = t.clamp(-10, 3100);
        }
    }

    /// Faults hit about their share of samples and fetches, the seed picks which, and a late
    /// sample is readable only after its extra delay.
    #[test]
    fn faults_hit_their_share_of_samples() {
        let f = Faults { gap_rate: 0.1, partial_rate: 0.02, late_rate: 0.3, late_by: Dur::mins(3), seed: 7 };
        let times: Vec<Ts> = (0..20_000).map(min).collect();
        let share = |hit: &dyn Fn(Ts) -> bool| times.iter().filter(|&&t| hit(t)).count() as f64 / times.len() as f64;
        assert!((share(&|t| f.gap(t)) - 0.1).abs() < 0.01);
        assert!((share(&|t| f.partial(t)) - 0.02).abs() < 0.005);
        assert!((share(&|t| f.visible_at(t, Dur::mins(4)) > t + Dur::mins(4)) - 0.3).abs() < 0.015);
        let late = *times.iter().find(|&&t| !f.gap(t) && f.visible_at(t, Dur::mins(4)) > t + Dur::mins(4)).unwrap();
        assert!(!f.readable(late, late + Dur::mins(6), Dur::mins(4)));
        assert!(f.readable(late, late + Dur::mins(7), Dur::mins(4)));
        let other = Faults { seed: 8, ..f };
        assert_ne!(
            times.iter().map(|&t| f.gap(t)).collect::<Vec<_>>(),
            times.iter().map(|&t| other.gap(t)).collect::<Vec<_>>(),
            "the seed picks the samples"
        );
        assert!(!Faults::NONE.any() && times.iter().all(|&t| Faults::NONE.readable(t, t, Dur::ZERO)));
    }
}
