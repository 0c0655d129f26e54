//! One evaluation of one policy, shared by the in-cluster controller and standalone mode:
//! validate → refuse a second policy on a target → tick (with the write fence) → status, Events,
//! metrics.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;

use crate::adapters::{
    AdapterError, ErrorKind, MemberObservation, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget,
    Series, TargetObservation,
};
use crate::api::{ScalePolicy, ScalePolicyStatus, TargetRef};
use crate::controller::events::{self, Dedup, EventSink, PolicyEvent};
use crate::controller::leader::Leadership;
use crate::controller::metrics::Metrics;
use crate::controller::status::{self, Meta};
use crate::core::{Dur, Ts};
use crate::spec::policy_from_spec;
use crate::tick::{TickError, tick_with_guard};

/// Where metrics come from and what gets resized, per policy.
pub trait Backends: Send + Sync + 'static {
    /// The metric source, shared by all policies.
    type Source: MetricSource;
    /// A target handle, made for one tick.
    type Target: ScaleTarget;
    /// The metric source.
    fn source(&self) -> &Self::Source;
    /// A handle on `target`; `namespace` is the policy's (workload targets live there).
    fn target(&self, namespace: &str, target: &TargetRef) -> Result<Self::Target, AdapterError>;
}

/// A status write that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The object changed since it was read (HTTP 409): re-read and decide again.
    #[error("the policy changed since it was read")]
    Conflict,
    /// Any other failure.
    #[error("writing status failed: {message}")]
    Failed {
        /// HTTP status code, if any.
        code: Option<u16>,
        /// What happened.
        message: String,
    },
}

/// Where status lives: the status subresource in a cluster, a JSON file in standalone mode.
pub trait StatusStore: Send + Sync {
    /// Write `status`. With `precondition`, only if the object's resourceVersion is still that
    /// one ([`StoreError::Conflict`] otherwise). Returns the new resourceVersion, if known.
    /// `status` is shared: a store that keeps it keeps this `Arc`, which the dashboard's view
    /// holds too.
    fn write(
        &self,
        sp: &ScalePolicy,
        status: &Arc<ScalePolicyStatus>,
        precondition: Option<&str>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The object `sp` was read from, shared, if this store keeps it (the dashboard shows it
    /// beside the status); `None` (the default) has the engine keep a copy.
    fn object(&self, _sp: &ScalePolicy) -> Option<Arc<ScalePolicy>> {
        None
    }
    /// The policy as stored now.
    fn reread(&self, sp: &ScalePolicy) -> impl Future<Output = Result<ScalePolicy, StoreError>> + Send;
}

/// Why a reconcile failed; the error policy retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target or an operation could not be read.
    #[error(transparent)]
    Tick(#[from] TickError),
    /// Status could not be written or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// Short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Tick(e) => e.adapter().kind.as_str(),
            Error::Store(StoreError::Conflict) => "StatusConflict",
            Error::Store(_) => "StatusWriteFailed",
        }
    }
}

/// When to evaluate a policy next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// After this long.
    After(Duration),
    /// Only when the spec changes (invalid spec).
    AwaitChange,
}

pub use crate::clock::{Clock, wall_clock};

use crate::controller::fence::Fence;
pub use crate::controller::fence::{Refusal, conflicting_owner, target_identity};
pub use crate::readout::published::{Published, Shown, Snapshots, key};

/// Interval when the spec cannot say (invalid spec, or a follower).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Re-reads after a 409 before giving up until the next requeue.
const MAX_CONFLICT_RETRIES: usize = 2;
/// The least time the reads of one evaluation get: one slow attempt (a 20 s timeout) and the
/// retries of a few queries must fit, or a short interval would turn a slow answer into a hold.
const MIN_READ_BUDGET: Duration = Duration::from_secs(60);
/// The most time the reads of one evaluation get, whatever the interval: a source that hangs or
/// pages without end costs one held evaluation, not minutes without a decision or a status.
const MAX_READ_BUDGET: Duration = Duration::from_secs(120);

/// How long the reads of one evaluation (the resize in flight, the target, the floor's and the
/// policy's metrics) may take together: the policy's interval, so an evaluation ends before the
/// next is due, but between one and two minutes.
pub fn read_budget(interval: Dur) -> Duration {
    to_std(interval).clamp(MIN_READ_BUDGET, MAX_READ_BUDGET)
}

/// The instant by which every read of one evaluation must have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: tokio::time::Instant,
    budget: Duration,
}

impl Deadline {
    /// `budget` from now (tokio's monotonic clock, which tests can pause).
    pub fn after(budget: Duration) -> Deadline {
        Deadline { at: tokio::time::Instant::now() + budget, budget }
    }

    /// `read`'s answer, or a transient error once the deadline has passed. What was read stays
    /// read; only what is still waiting is given up on.
    async fn bound<R>(
        self,
        what: &str,
        read: impl Future<Output = Result<R, AdapterError>>,
    ) -> Result<R, AdapterError> {
        tokio::time::timeout_at(self.at, read).await.unwrap_or_else(|_| {
            Err(AdapterError::new(
                "deadline",
                ErrorKind::Transient,
                format!(
                    "{what} did not answer within the {} the reads of one evaluation may take \
                     (a source that hangs or pages without end); the next evaluation asks again",
                    Dur(i64::try_from(self.budget.as_millis()).unwrap_or(i64::MAX))
                ),
            ))
        })
    }
}

/// A metric source or a target whose reads all end by one [`Deadline`]: the time box of one
/// evaluation. A metric read past it is a failed query (the core holds on missing data, status
/// says why); a target read past it is an evaluation error. A resize is never cut short: it is
/// sent only after its intent is in status, and once sent its answer is waited for.
pub struct TimeBoxed<'a, T> {
    inner: &'a T,
    deadline: Deadline,
}

impl<'a, T> TimeBoxed<'a, T> {
    /// `inner`, read by `deadline`.
    pub fn new(inner: &'a T, deadline: Deadline) -> TimeBoxed<'a, T> {
        TimeBoxed { inner, deadline }
    }
}

impl<M: MetricSource> MetricSource for TimeBoxed<'_, M> {
    async fn fetch(&self, query: &MetricQuery, after: Ts, until: Ts) -> Result<Series, AdapterError> {
        self.deadline.bound("the metric source", self.inner.fetch(query, after, until)).await
    }
}

impl<T: ScaleTarget> ScaleTarget for TimeBoxed<'_, T> {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        self.deadline.bound("the target", self.inner.observe()).await
    }
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.inner.resize(to).await
    }
    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        self.deadline.bound("the resize operation", self.inner.operation(name)).await
    }
    async fn observe_members(&self) -> Result<Vec<MemberObservation>, AdapterError> {
        self.deadline.bound("the target", self.inner.observe_members()).await
    }
    async fn resize_member(&self, member: &str, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.inner.resize_member(member, to).await
    }
    async fn resize_within(&self, to: u32, max: u32) -> Result<ResizeStarted, AdapterError> {
        self.inner.resize_within(to, max).await
    }
    async fn recommended_target(&self) -> Result<Option<f64>, AdapterError> {
        self.deadline.bound("the target", self.inner.recommended_target()).await
    }
}

/// Everything one evaluation needs; shared by all policies.
pub struct Engine<B, S, E> {
    /// Metric source and target factory.
    pub backends: B,
    /// Where status goes.
    pub store: S,
    /// Where Events go.
    pub events: E,
    /// Whether this instance may write to targets.
    pub leadership: Leadership,
    /// This replica's name, written into status with shards (which replica evaluates what).
    pub identity: Option<String>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Event de-duplication.
    pub dedup: Dedup,
    /// Time source.
    pub clock: Clock,
    /// Newest view of each policy, published for the dashboard.
    pub snapshots: Snapshots,
    /// The last hours of decisions per policy, published for the dashboard's charts.
    pub history: crate::readout::history::History,
    failures: Mutex<HashMap<String, u32>>,
}

/// The project a target lives in, the default for metric queries.
fn target_project(t: &TargetRef) -> &str {
    t.kind().project().unwrap_or_default()
}

impl<B: Backends, S: StatusStore, E: EventSink> Engine<B, S, E> {
    /// Assemble an engine.
    pub fn new(backends: B, store: S, events: E, leadership: Leadership, metrics: Arc<Metrics>) -> Self {
        Engine {
            backends,
            store,
            events,
            leadership,
            identity: None,
            metrics,
            dedup: Dedup::default(),
            clock: wall_clock(),
            snapshots: Snapshots::default(),
            history: crate::readout::history::History::default(),
            failures: Mutex::default(),
        }
    }

    /// What this engine publishes (shared, not copied): the newest object of each policy and
    /// its recent decisions, for the pages that show them.
    pub fn published(&self) -> Published {
        Published {
            snapshots: self.snapshots.clone(),
            history: self.history.clone(),
            clock: crate::readout::published::EngineClock(Some(self.clock.clone())),
        }
    }

    /// Replace the clock (tests, replays).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Name this replica (its pod) in the statuses it writes with shards.
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Evaluate one policy. A 409 on a status write re-reads the policy and decides again, so a
    /// resize is never sent from a stale state.
    pub async fn evaluate(&self, sp: Arc<ScalePolicy>, peers: &[Arc<ScalePolicy>]) -> Result<Next, Error> {
        let mut sp = sp;
        let mut attempt = 0;
        let result = loop {
            // Followers keep their caches warm and nothing else: status carries the core's
            // state, and two writers of one state would fight.
            if !self.leadership.owns(&sp) {
                break Ok(self.follow(&sp));
            }
            match self.evaluate_once(&sp, peers).await {
                Err(Error::Store(StoreError::Conflict)) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::info!(attempt, "status changed under us; re-reading and deciding again");
                    sp = Arc::new(self.store.reread(&sp).await?);
                }
                other => break other,
            }
        };
        let k = key(&sp);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if result.is_ok() {
            failures.remove(&k);
        } else {
            *failures.entry(k).or_default() += 1;
        }
        result
    }

    /// How long to wait after a failed evaluation: exponential per policy, with jitter so that
    /// policies failing together (an outage) do not retry in lockstep.
    pub fn backoff(&self, sp: &ScalePolicy) -> Duration {
        let k = key(sp);
        let n = self.failures.lock().unwrap_or_else(|p| p.into_inner()).get(&k).copied().unwrap_or(1);
        backoff(n, &k, (self.clock)())
    }

    /// A policy another instance evaluates: its status (with its day of history), shared with
    /// the cache, is what this replica's dashboard shows.
    fn follow(&self, sp: &Arc<ScalePolicy>) -> Next {
        if sp.status.is_some() {
            self.snapshots.write().unwrap_or_else(|p| p.into_inner()).insert(key(sp), Shown::shared(sp.clone()));
        }
        Next::After(policy_from_spec(&sp.spec).map(|p| to_std(p.interval)).unwrap_or(DEFAULT_INTERVAL))
    }

    async fn evaluate_once(&self, sp: &ScalePolicy, peers: &[Arc<ScalePolicy>]) -> Result<Next, Error> {
        let now = (self.clock)();
        let target_desc = sp.spec.target.describe();
        let meta = Meta { generation: sp.metadata.generation, target: &target_desc, now };
        // Borrowed, not copied: a status is some 15 KB with its day of history.
        let none = ScalePolicyStatus::default();
        let prev = sp.status.as_ref().unwrap_or(&none);

        let policy = match policy_from_spec(&sp.spec) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(error = %err, "invalid spec");
                let status = status::invalid_spec(prev, &err, meta);
                let status = self.write(sp, status, None).await?;
                let msg = status.conditions.iter().find(|c| c.type_ == status::READY).map(|c| c.message.clone());
                self.announce(
                    sp,
                    vec![PolicyEvent {
                        warning: true,
                        reason: "InvalidSpec".into(),
                        note: msg.unwrap_or_default(),
                        action: "Validate".into(),
                    }],
                )
                .await;
                return Ok(Next::AwaitChange);
            }
        };
        let interval = to_std(policy.interval);

        if let Some(owner) = conflicting_owner(sp, peers.iter().map(|p| p.as_ref())) {
            let owner = key(owner);
            let status = status::target_conflict(prev, &owner, meta);
            self.write(sp, status, None).await?;
            let note = format!("{target_desc} is already scaled by ScalePolicy {owner}");
            self.announce(
                sp,
                vec![PolicyEvent { warning: true, reason: "TargetConflict".into(), note, action: "Validate".into() }],
            )
            .await;
            self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), "TargetConflict");
            return Ok(Next::After(interval));
        }

        // A status write wakes the watch; evaluate at the policy's pace, not at every event. A last
        // decision from the future (a skewed clock, a hand-edited status) is not obeyed: it would
        // stop evaluation silently until then.
        if prev.observed_generation == sp.metadata.generation
            && let Some(last) = prev.last_decision.as_ref().and_then(|d| Ts::parse_rfc3339(&d.time).ok())
        {
            if last > now + crate::core::state::CLOCK_SKEW_TOLERANCE {
                tracing::warn!(
                    last_decision = %last,
                    now = %now,
                    "the last decision is dated in the future (clock skew?): evaluating now"
                );
            } else if now < last + policy.interval {
                return Ok(Next::After(to_std((last + policy.interval) - now)));
            }
        }

        let target = match self.backends.target(&sp.namespace().unwrap_or_default(), &sp.spec.target) {
            Ok(t) => t,
            Err(e) => return self.tick_failed(sp, prev, TickError::Target(e), meta).await,
        };
        // A target left out where the target recommends one is read from the target itself
        // (a Spanner instance's configuration: regional or multi-region) at each evaluation.
        let policy = if sp.spec.metrics.iter().any(|m| m.target.is_none()) {
            // Within the evaluation's read budget, as every other read.
            let read = Deadline::after(read_budget(policy.interval));
            let recommended = match TimeBoxed::new(&target, read).recommended_target().await {
                Ok(r) => r,
                Err(e) => return self.tick_failed(sp, prev, TickError::Target(e), meta).await,
            };
            let mut spec = sp.spec.clone();
            crate::spec::fill_targets(&mut spec, recommended);
            policy_from_spec(&spec).unwrap_or(policy)
        } else {
            policy
        };
        let project = target_project(&sp.spec.target);
        let namespace = sp.namespace().unwrap_or_default();
        let queries: Vec<MetricQuery> =
            sp.spec.metrics.iter().map(|m| crate::spec::metric_query(m, project, &namespace)).collect();
        if let Some(fraction) = sp.spec.target.kind().per_member_floor() {
            return self.evaluate_members(sp, prev, &policy, fraction, &queries, &target, meta).await;
        }
        let state = prev.state.clone().unwrap_or_default();
        let rv = sp.resource_version();
        let mut fence = Fence { engine: self, sp, policy: &policy, prev, meta, rv: rv.as_deref(), wrote: false };

        // Every read of this evaluation ends by one deadline; the intent write and the resize
        // (made after the reads) are not cut short.
        let deadline = Deadline::after(read_budget(policy.interval));
        let source = TimeBoxed::new(self.backends.source(), deadline);
        let boxed = TimeBoxed::new(&target, deadline);
        let guarded = match tick_with_guard(&policy, &queries, state, &source, &boxed, now, &mut fence).await {
            Ok(g) => g,
            Err(e) => return self.tick_failed(sp, prev, e, meta).await,
        };
        let wrote_intent = fence.wrote;
        let report = guarded.report;
        match guarded.refused {
            Some(Refusal::NotLeader) => {
                tracing::warn!("lost leadership before resizing; nothing sent");
                self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), "NotLeader");
                return Ok(Next::After(interval));
            }
            Some(Refusal::Store(StoreError::Conflict)) => {
                self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), "StatusConflict");
                return Err(StoreError::Conflict.into());
            }
            Some(Refusal::Store(e)) => {
                self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), "StatusWriteFailed");
                return Err(e.into());
            }
            None => {}
        }

        if !report.clock_skew.is_empty() {
            tracing::warn!(
                fields = ?report.clock_skew,
                now = %now,
                "stored state had timestamps in the future (clock skew?); no longer trusted (clamped to now, or dropped where a future time would delay a scale-out)"
            );
        }
        let status = status::from_report(prev, &policy, &report, meta);
        // The intent write already fenced this tick (and moved the resourceVersion): the outcome of
        // a resize that was sent must be recorded whatever else changed since.
        let precondition = if wrote_intent { None } else { rv.as_deref() };
        let status = self.write(sp, status, precondition).await?;
        tracing::info!(
            reason = report.decision.reason.as_str(),
            current = report.observation.size,
            desired = report.decision.desired,
            "{}",
            report.decision.message(&policy)
        );
        self.metrics.record_report(&sp.namespace().unwrap_or_default(), &sp.name_any(), &policy, &report, &status);
        if matches!(report.actuation, crate::tick::Actuation::DryRun { .. }) {
            self.metrics.skip(&sp.namespace().unwrap_or_default(), &sp.name_any(), "DryRun");
        }
        let mut news = events::for_report(&policy, &report);
        news.extend(crate::controller::known::events(&prev.active, &status.active));
        self.announce(sp, news).await;
        Ok(Next::After(interval))
    }

    pub(super) async fn tick_failed(
        &self,
        sp: &ScalePolicy,
        prev: &ScalePolicyStatus,
        err: TickError,
        meta: Meta<'_>,
    ) -> Result<Next, Error> {
        tracing::warn!(error = %err, "tick failed");
        self.metrics.api_error(err.adapter());
        let status = status::target_error(prev, &err, meta);
        // Best effort: the error is what the caller must hear about.
        if let Err(e) = self.write(sp, status, sp.resource_version().as_deref()).await {
            tracing::debug!(error = %e, "recording the tick error in status failed");
        }
        self.announce(sp, events::for_tick_error(&err)).await;
        Err(err.into())
    }

    /// Write `status`, moved, not copied: the store and the dashboard share it, and so does the
    /// caller, which gets it back.
    pub(super) async fn write(
        &self,
        sp: &ScalePolicy,
        status: ScalePolicyStatus,
        precondition: Option<&str>,
    ) -> Result<Arc<ScalePolicyStatus>, StoreError> {
        let mut status = status;
        if let Some(held) = self.leadership.held() {
            status.shard = Some(crate::controller::shards::shard_of(sp, held.count));
            status.evaluated_by.clone_from(&self.identity);
        }
        let status = Arc::new(status);
        let rv = self.store.write(sp, &status, precondition).await.inspect_err(|e| {
            let code = match e {
                StoreError::Conflict => Some(409),
                StoreError::Failed { code, .. } => *code,
            };
            let kind = if code == Some(409) { ErrorKind::Busy } else { ErrorKind::Other };
            self.metrics.api_error(&AdapterError { backend: "kubernetes", kind, code, message: e.to_string() });
        })?;
        self.history.record(&key(sp), sp, &status);
        let object = self.store.object(sp).unwrap_or_else(|| {
            Arc::new(ScalePolicy { metadata: sp.metadata.clone(), spec: sp.spec.clone(), status: None })
        });
        let shown = Shown::written(object, status.clone(), rv);
        self.snapshots.write().unwrap_or_else(|p| p.into_inner()).insert(key(sp), shown);
        Ok(status)
    }

    pub(super) async fn announce(&self, sp: &ScalePolicy, events: Vec<PolicyEvent>) {
        for ev in self.dedup.filter(&key(sp), events) {
            self.events.publish(sp, &ev).await;
        }
    }

    /// Forget a deleted policy (metrics, event memory, dashboard).
    pub fn forget(&self, sp: &ScalePolicy) {
        let k = key(sp);
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&k);
        self.dedup.forget(&k);
        self.snapshots.write().unwrap_or_else(|p| p.into_inner()).remove(&k);
        self.history.forget(&k);
        self.metrics.forget(
            &sp.namespace().unwrap_or_default(),
            &sp.name_any(),
            policy_from_spec(&sp.spec).ok().as_ref(),
        );
    }
}

fn to_std(d: Dur) -> Duration {
    Duration::from_millis(d.0.max(0) as u64)
}

/// Exponential backoff from 5s to 5m after `failures` consecutive failures, plus up to 20% jitter
/// derived from the policy key and the time (the crate's one backoff, [`crate::core::backoff`]).
pub fn backoff(failures: u32, key: &str, now: Ts) -> Duration {
    let seed: Vec<u8> = key.bytes().chain(now.0.to_le_bytes()).collect();
    to_std(crate::core::backoff::exponential(failures, Dur::secs(5), Dur::secs(300), &seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::FloorMetric;
    use crate::controller::events::LogEvents;

    /// A target of 4 nodes and its metric source; either can hang (never answer), as a paging
    /// loop or a stuck connection does.
    #[derive(Clone, Default)]
    struct World {
        source_hangs: bool,
        target_hangs: bool,
        resizes: Arc<Mutex<Vec<u32>>>,
    }

    impl MetricSource for World {
        async fn fetch(&self, _: &MetricQuery, _: Ts, _: Ts) -> Result<Series, AdapterError> {
            if self.source_hangs {
                std::future::pending::<()>().await;
            }
            Ok(Series { samples: Vec::new(), problem: None })
        }
    }

    impl ScaleTarget for World {
        async fn observe(&self) -> Result<TargetObservation, AdapterError> {
            if self.target_hangs {
                std::future::pending::<()>().await;
            }
            Ok(TargetObservation {
                size: 4,
                busy: false,
                sizes: crate::core::SizeRule::Any,
                floor: FloorMetric::None,
                members: Vec::new(),
                serving: None,
                steered_max: None,
            })
        }
        async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
            self.resizes.lock().unwrap().push(to);
            Ok(ResizeStarted::Done)
        }
        async fn operation(&self, _: &str) -> Result<OperationStatus, AdapterError> {
            Ok(OperationStatus::Done)
        }
    }

    impl Backends for World {
        type Source = World;
        type Target = World;
        fn source(&self) -> &World {
            self
        }
        fn target(&self, _: &str, _: &TargetRef) -> Result<World, AdapterError> {
            Ok(self.clone())
        }
    }

    /// Status writes, kept in memory.
    #[derive(Default)]
    struct Kept(Mutex<Vec<ScalePolicyStatus>>);

    impl StatusStore for Kept {
        async fn write(
            &self,
            _: &ScalePolicy,
            status: &Arc<ScalePolicyStatus>,
            _: Option<&str>,
        ) -> Result<Option<String>, StoreError> {
            self.0.lock().unwrap().push(ScalePolicyStatus::clone(status));
            Ok(None)
        }
        async fn reread(&self, sp: &ScalePolicy) -> Result<ScalePolicy, StoreError> {
            Ok(sp.clone())
        }
    }

    fn engine(world: World) -> Engine<World, Kept, LogEvents> {
        Engine::new(world, Kept::default(), LogEvents, Leadership::always(), Arc::new(Metrics::default()))
            .with_clock(Arc::new(|| Ts(1_795_000_000_000)))
    }

    fn policy() -> ScalePolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u1", "resourceVersion": "100", "generation": 1},
            "spec": {"target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
                     "minSize": 2, "maxSize": 20, "mode": "Enforce",
                     "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "metric.type=\"x\""}}]}
        }))
        .unwrap()
    }

    /// A metric source that never answers (the paging loop of issue 29, a hung connection) costs
    /// one evaluation held on missing data, given up on at the read budget and reported in
    /// status; before, the evaluation never ended: no decision, no status, the policy missing
    /// from the dashboard.
    #[tokio::test(start_paused = true)]
    async fn a_metric_source_that_never_answers_costs_one_held_evaluation() {
        let world = World { source_hangs: true, ..World::default() };
        let engine = engine(world.clone());
        let sp = policy();
        let started = tokio::time::Instant::now();
        let next = engine.evaluate(Arc::new(sp.clone()), &[]).await.unwrap();
        let budget = read_budget(Dur::secs(60));
        assert_eq!(budget, Duration::from_secs(60), "the default interval, between one and two minutes");
        let took = started.elapsed();
        assert!(took >= budget && took < budget + Duration::from_secs(1), "{took:?}");
        assert_eq!(next, Next::After(Duration::from_secs(60)));
        let written = engine.store.0.lock().unwrap().last().cloned().expect("a status is written");
        let active = written.conditions.iter().find(|c| c.type_ == status::SCALING_ACTIVE).expect("ScalingActive");
        assert_eq!(active.status, "False");
        assert!(active.message.contains("did not answer within the 1m"), "{}", active.message);
        assert!(world.resizes.lock().unwrap().is_empty(), "nothing resized without data");
        assert!(engine.snapshots.read().unwrap().contains_key(&key(&sp)), "the policy is shown");
    }

    /// A target that never answers ends the evaluation at the read budget with an error, reported
    /// in status, and nothing sent.
    #[tokio::test(start_paused = true)]
    async fn a_target_that_never_answers_is_an_evaluation_error_in_status() {
        let world = World { target_hangs: true, ..World::default() };
        let engine = engine(world.clone());
        let err = engine.evaluate(Arc::new(policy()), &[]).await.unwrap_err();
        assert!(matches!(&err, Error::Tick(TickError::Target(e)) if e.message.contains("did not answer")), "{err}");
        let written = engine.store.0.lock().unwrap().last().cloned().expect("a status is written");
        let ready = written.conditions.iter().find(|c| c.type_ == status::READY).expect("Ready");
        assert!(ready.message.contains("did not answer within the 1m"), "{}", ready.message);
        assert!(world.resizes.lock().unwrap().is_empty());
    }

    /// The budget follows the interval, within one and two minutes.
    #[test]
    fn read_budget_is_the_interval_within_one_and_two_minutes() {
        assert_eq!(read_budget(Dur::secs(10)), Duration::from_secs(60));
        assert_eq!(read_budget(Dur::secs(90)), Duration::from_secs(90));
        assert_eq!(read_budget(Dur::mins(30)), Duration::from_secs(120));
    }

    /// Backoff grows per failure, is capped at about 5 minutes, and is jittered.
    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let d1 = backoff(1, "ns/a", Ts(0));
        let d3 = backoff(3, "ns/a", Ts(0));
        assert!(d1 >= Duration::from_secs(5) && d1 <= Duration::from_secs(6), "{d1:?}");
        assert!(d3 >= Duration::from_secs(20) && d3 <= Duration::from_secs(24), "{d3:?}");
        assert!(backoff(30, "ns/a", Ts(0)) <= Duration::from_secs(360));
        let spread: std::collections::HashSet<Duration> = (0..20).map(|i| backoff(2, "ns/a", Ts(i))).collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
