//! One evaluation of one policy: clamp timestamps from the future (pure) → ask about the resize
//! in flight (IO) → observe (IO) → settle that resize (pure, `core::settle`) → resolve the storage
//! floor (pure) → gather (IO) → decide (pure) → actuate (IO).
//!
//! The controller and the simulator both call [`tick`]; they differ only in the adapters they pass
//! and in where they keep the state, so a dry run and production cannot drift apart.

use std::future::Future;

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget,
    Series, TargetObservation,
};
use crate::core::Mode;
use crate::core::floor::{self, FloorInput};
use crate::core::settle::{Answer, settle};
use crate::core::{DataProblem, Decision, Dur, Inputs, MetricInput, Policy, PolicyState, Ts, decide};

pub use crate::core::settle::{MAX_BUSY, MAX_OPERATION, OperationOutcome};

/// What the actuation step did with the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actuation {
    /// Nothing to do: the decision keeps the size.
    None,
    /// DryRun: the resize was decided but not sent.
    DryRun {
        /// The size that would have been set.
        to: u32,
    },
    /// The resize was sent.
    Started {
        /// Size asked for.
        to: u32,
        /// Operation name, if the target runs resizes as operations.
        operation: Option<String>,
        /// Whether the target reported it done at once.
        done: bool,
    },
    /// Sending the resize failed.
    Failed {
        /// Size asked for.
        to: u32,
        /// Why.
        error: AdapterError,
    },
}

/// Everything one tick saw and did.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// What the target reported.
    pub observation: TargetObservation,
    /// What the target's floor metric read as (`FloorInput::None` for a target without one).
    pub floor: FloorInput,
    /// What happened to an operation started earlier, if one was in flight.
    pub operation: Option<OperationOutcome>,
    /// Metric fetches that failed, by metric index.
    pub metric_errors: Vec<(usize, AdapterError)>,
    /// The decision (with the next state).
    pub decision: Decision,
    /// What was done with it.
    pub actuation: Actuation,
    /// Timestamps of the stored state that lay in the future and were clamped to now.
    pub clock_skew: Vec<&'static str>,
}

/// A tick that could not reach a decision.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TickError {
    /// The target could not be read.
    #[error("reading the target failed: {0}")]
    Target(#[source] AdapterError),
    /// An in-flight operation could not be checked.
    #[error("checking the resize operation failed: {0}")]
    Operation(#[source] AdapterError),
}

impl TickError {
    /// The adapter error behind this one.
    pub fn adapter(&self) -> &AdapterError {
        match self {
            TickError::Target(e) | TickError::Operation(e) => e,
        }
    }
}

pub use crate::core::policy::history;

pub use crate::core::state::UNCONFIRMED_GRACE;

/// A hook that runs after the decision and before the target is resized: the controller uses it
/// to re-check leadership and to record the intended size in status under a precondition, so a
/// controller killed mid-resize finds the resize in the state it stored.
pub trait BeforeActuate: Send {
    /// Why the resize must not be sent.
    type Refusal: Send;
    /// Called only for a resize in Enforce mode. `intent` is the state with the resize begun (no
    /// operation name yet). An error means: send nothing, and the tick's decision is void.
    fn before_actuate(
        &mut self,
        decision: &Decision,
        intent: &PolicyState,
    ) -> impl Future<Output = Result<(), Self::Refusal>> + Send;
}

/// The guard [`tick`] uses: never refuses.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGuard;

impl BeforeActuate for NoGuard {
    type Refusal = std::convert::Infallible;
    async fn before_actuate(&mut self, _: &Decision, _: &PolicyState) -> Result<(), Self::Refusal> {
        Ok(())
    }
}

/// The result of [`tick_with_guard`].
#[derive(Debug, Clone)]
pub struct GuardedTick<R> {
    /// What the tick saw and did. When the guard refused, `actuation` is [`Actuation::None`] and
    /// the decision's state must not be stored: the caller re-reads and decides again.
    pub report: TickReport,
    /// Why the guard refused to let the resize through, if it did.
    pub refused: Option<R>,
}

/// Fetch the metric behind a target's floor (IO) and read it as the core's floor input (pure,
/// `core::floor`): the step of [`tick`] that turns a [`FloorMetric`] into a [`FloorInput`].
pub async fn read_floor<M: MetricSource>(metric: &FloorMetric, source: &M, now: Ts) -> FloorInput {
    match metric {
        FloorMetric::None => FloorInput::None,
        FloorMetric::Storage { query, storage_target } => {
            match source.fetch(query, now - floor::STORAGE_LOOKBACK, now).await {
                Ok(s) => floor::storage_input(&s.samples, s.problem, *storage_target),
                Err(e) => {
                    tracing::warn!(error = %e, "storage utilization unreadable: scale-in blocked");
                    FloorInput::Unreadable(format!("storage utilization query failed: {e}"))
                }
            }
        }
    }
}

/// What the target said of the operation in flight, as the core's settle rules read it; an
/// error other than "not found" ends the tick (the operation's fate is unknown).
pub fn answer_of(status: Option<Result<OperationStatus, AdapterError>>) -> Result<Answer, TickError> {
    Ok(match status {
        Some(Ok(OperationStatus::Running)) => Answer::Running,
        Some(Ok(OperationStatus::Done)) => Answer::Done,
        Some(Ok(OperationStatus::Failed(message))) => Answer::Failed(message),
        Some(Err(e)) if e.kind == ErrorKind::NotFound => Answer::Vanished,
        Some(Err(e)) => return Err(TickError::Operation(e)),
        None => Answer::NoOperation,
    })
}

/// Fetch each metric's samples that its signal in `state` has not seen yet (within its window
/// and data age): one series per query, a failed fetch read as a `QueryFailed` series and listed
/// with its metric index.
pub async fn gather<M: MetricSource>(
    policy: &Policy,
    queries: &[MetricQuery],
    state: &PolicyState,
    source: &M,
    now: Ts,
) -> (Vec<Series>, Vec<(usize, AdapterError)>) {
    let mut series: Vec<Series> = Vec::with_capacity(queries.len());
    let mut metric_errors = Vec::new();
    for (i, (query, metric)) in queries.iter().zip(&policy.metrics).enumerate() {
        let earliest = now - history(metric.window, metric.max_age);
        let after = state.signals.get(i).and_then(|s| s.last_at).map_or(earliest, |t| t.max(earliest));
        match source.fetch(query, after, now).await {
            Ok(s) => series.push(s),
            Err(e) => {
                series.push(Series { samples: Vec::new(), problem: Some(DataProblem::QueryFailed) });
                metric_errors.push((i, e));
            }
        }
    }
    (series, metric_errors)
}

/// Carry the answer to a resize from `from` to `to` into the state (a resize begun, finished at
/// once, awaiting confirmation, or failed) and say what was done: the one bookkeeping of a write,
/// for a target and for each member of one.
pub fn record_resize(
    state: &mut PolicyState,
    (from, to): (u32, u32),
    answer: Result<ResizeStarted, AdapterError>,
    now: Ts,
) -> Actuation {
    match answer {
        Ok(ResizeStarted::Done) => {
            state.begin_resize(from, to, None, now);
            state.finish_resize(now);
            state.note_resize_success();
            Actuation::Started { to, operation: None, done: true }
        }
        Ok(ResizeStarted::Operation(name)) => {
            state.begin_resize(from, to, Some(name.clone()), now);
            Actuation::Started { to, operation: Some(name), done: false }
        }
        Ok(ResizeStarted::Unconfirmed) => {
            state.begin_resize(from, to, None, now);
            if let Some(f) = state.in_flight.as_mut() {
                f.confirm_by = Some(now + UNCONFIRMED_GRACE);
            }
            Actuation::Started { to, operation: None, done: false }
        }
        Err(error) => {
            state.note_resize_failure(now, &error.to_string());
            Actuation::Failed { to, error }
        }
    }
}

/// Run one evaluation. On error the state is untouched (the caller keeps its copy).
pub async fn tick<M: MetricSource, T: ScaleTarget>(
    policy: &Policy,
    queries: &[MetricQuery],
    state: PolicyState,
    source: &M,
    target: &T,
    now: Ts,
) -> Result<TickReport, TickError> {
    let guarded = tick_with_guard(policy, queries, state, source, target, now, &mut NoGuard).await?;
    if let Some(never) = guarded.refused {
        match never {}
    }
    Ok(guarded.report)
}

/// [`tick`] with a hook between deciding and resizing (see [`BeforeActuate`]).
pub async fn tick_with_guard<M: MetricSource, T: ScaleTarget, G: BeforeActuate>(
    policy: &Policy,
    queries: &[MetricQuery],
    mut state: PolicyState,
    source: &M,
    target: &T,
    now: Ts,
    guard: &mut G,
) -> Result<GuardedTick<G::Refusal>, TickError> {
    // A stored state written on a clock ahead of ours is brought back to now first (pure).
    let clock_skew = state.clamp_future(now, policy.spike.as_ref().map_or(Dur::ZERO, |s| s.hold));

    // settle (IO): ask about a resize started earlier before observing, so the observation is
    // never older than the operation's answer (a target can report its old size while the
    // operation runs; read before the operation finished, it made the finished resize look
    // undone, and it was sent again).
    let flight = state.in_flight.clone();
    let op_status = match flight.as_ref().and_then(|f| f.operation.as_deref()) {
        Some(name) => Some(target.operation(name).await),
        None => None,
    };

    // observe the target (IO)
    let observation = target.observe().await.map_err(TickError::Target)?;

    // settle (pure): what the answer and the size mean for the resize in flight
    let mut operation = None;
    if let Some(flight) = flight {
        let answer = answer_of(op_status)?;
        operation = Some(settle(&mut state, &flight, answer, observation.size, observation.busy, now));
    }
    // gather (IO): the floor's metric, then only what each signal has not seen yet
    let floor_input = read_floor(&observation.floor, source, now).await;
    state.align(policy);
    // Before gather (a reset signal asks for its whole history) and the floor (which reads the
    // resize history); `decide` makes sure of it again, silently, on every path.
    let reset = state.sanitize(policy, observation.size);
    if !reset.is_empty() {
        tracing::warn!(fields = ?reset, "stored state had values no sample could produce; reset them to no history");
    }
    let (series, metric_errors) = gather(policy, queries, &state, source, now).await;
    let inputs: Vec<MetricInput<'_>> =
        series.iter().map(|s| MetricInput { samples: &s.samples, problem: s.problem }).collect();

    // decide (pure)
    let busy = observation.busy && state.in_flight.is_none();
    let floor = crate::core::floor::resolve(&floor_input, &state, observation.size);
    let mut decision = decide(
        policy,
        state,
        &Inputs { current: observation.size, metrics: &inputs, floor, busy, sizes: observation.sizes },
        now,
    );

    // actuate (IO)
    let actuation = if !decision.is_resize() {
        Actuation::None
    } else if policy.mode != Mode::Enforce {
        Actuation::DryRun { to: decision.desired }
    } else {
        let (from, to) = (decision.current, decision.desired);
        let mut intent = decision.state.clone();
        intent.begin_resize(from, to, None, now);
        if let Err(refusal) = guard.before_actuate(&decision, &intent).await {
            let report = TickReport {
                observation,
                floor: floor_input,
                operation,
                metric_errors,
                decision,
                actuation: Actuation::None,
                clock_skew,
            };
            return Ok(GuardedTick { report, refused: Some(refusal) });
        }
        record_resize(&mut decision.state, (from, to), target.resize(to).await, now)
    };

    Ok(GuardedTick {
        report: TickReport {
            observation,
            floor: floor_input,
            operation,
            metric_errors,
            decision,
            actuation,
            clock_skew,
        },
        refused: None,
    })
}
