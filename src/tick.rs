//! The async driver of one evaluation: the core's step machine (`core::step`) says what to ask or
//! write next (clamp timestamps from the future → ask about the resize in flight → observe →
//! settle → read the floor → gather → decide → write), and this module does that IO through the
//! adapters.
//!
//! The controller drives every policy with [`tick_with_guard`]; a replay drives the same machine
//! synchronously over arrays (`sim::drive`), so a dry run and production cannot drift apart.

use std::future::Future;

use crate::adapters::{
    AdapterError, ErrorKind, FloorMetric, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget,
    Series, TargetObservation,
};
use crate::core::floor::{self, FloorInput};
use crate::core::settle::Answer;
use crate::core::step::{Evaluation, Gathering, Next, Seen, Settled, Written, record_write};
use crate::core::{DataProblem, Decision, MetricInput, Policy, PolicyState, Ts};

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
    /// What that operation said it is doing while it runs (a drain's nodes and what holds them),
    /// or, once it finished only in part, what it left undone.
    pub progress: Option<String>,
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
                    FloorInput::Unreadable(format!("storage utilization query failed: {e}").into())
                }
            }
        }
    }
}

/// What the target said of the operation in flight, as the core's settle rules read it; an
/// error other than "not found" ends the tick (the operation's fate is unknown).
pub fn answer_of(status: Option<Result<OperationStatus, AdapterError>>) -> Result<Answer, TickError> {
    Ok(match status {
        Some(Ok(OperationStatus::Running | OperationStatus::Progress(_))) => Answer::Running,
        Some(Ok(OperationStatus::Done | OperationStatus::DonePartly(_))) => Answer::Done,
        Some(Ok(OperationStatus::Failed(message))) => Answer::Failed(message),
        Some(Err(e)) if e.kind == ErrorKind::NotFound => Answer::Vanished,
        Some(Err(e)) => return Err(TickError::Operation(e)),
        None => Answer::NoOperation,
    })
}

/// Fetch each metric's samples that its signal has not seen yet (from
/// [`Gathering::after`](crate::core::step::Gathering::after)): one series per query, a failed
/// fetch read as a `QueryFailed` series and listed with its metric index.
pub async fn gather<M: MetricSource>(
    queries: &[MetricQuery],
    gathering: &Gathering<'_>,
    source: &M,
    now: Ts,
) -> (Vec<Series>, Vec<(usize, AdapterError)>) {
    let mut series: Vec<Series> = Vec::with_capacity(queries.len());
    let mut metric_errors = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        match source.fetch(query, gathering.after(i), now).await {
            Ok(s) => series.push(s),
            Err(e) => {
                series.push(Series { samples: Vec::new(), problem: Some(DataProblem::QueryFailed) });
                metric_errors.push((i, e));
            }
        }
    }
    (series, metric_errors)
}

/// The core's reading of a target's answer to a resize.
pub fn written_of(answer: &Result<ResizeStarted, AdapterError>) -> Written {
    match answer {
        Ok(ResizeStarted::Done) => Written::Done,
        Ok(ResizeStarted::Operation(name)) => Written::Operation(name.clone()),
        Ok(ResizeStarted::Unconfirmed) => Written::Unconfirmed,
        Err(e) => Written::Failed(e.to_string()),
    }
}

/// Carry the answer to a resize from `from` to `to` into the state (`core::step::record_write`)
/// and say what was done: for a target and for each member of one.
pub fn record_resize(
    state: &mut PolicyState,
    (from, to): (u32, u32),
    answer: Result<ResizeStarted, AdapterError>,
    now: Ts,
) -> Actuation {
    record_write(state, (from, to), &written_of(&answer), now);
    actuation_of(to, answer)
}

fn actuation_of(to: u32, answer: Result<ResizeStarted, AdapterError>) -> Actuation {
    match answer {
        Ok(ResizeStarted::Done) => Actuation::Started { to, operation: None, done: true },
        Ok(ResizeStarted::Operation(name)) => Actuation::Started { to, operation: Some(name), done: false },
        Ok(ResizeStarted::Unconfirmed) => Actuation::Started { to, operation: None, done: false },
        Err(error) => Actuation::Failed { to, error },
    }
}

/// Observe and settle (IO, then the core's rules): ask about the resize in flight, observe the
/// target, and carry both answers into the evaluation.
pub async fn observe_and_settle<'p, T: ScaleTarget>(
    evaluation: Evaluation<'p>,
    target: &T,
) -> Result<(Settled<'p>, TargetObservation, Option<String>), TickError> {
    // Ask about a resize started earlier before observing, so the observation is never older
    // than the operation's answer (a target can report its old size while the operation runs;
    // read before the operation finished, it made the finished resize look undone, and it was
    // sent again).
    let op_status = match evaluation.operation() {
        Some(name) => Some(target.operation(name).await),
        None => None,
    };
    let observation = target.observe().await.map_err(TickError::Target)?;
    let progress = match &op_status {
        Some(Ok(OperationStatus::Progress(p) | OperationStatus::DonePartly(p))) => Some(p.clone()),
        _ => None,
    };
    let answer = answer_of(op_status)?;
    let seen =
        Seen { size: observation.size, busy: observation.busy, sizes: observation.sizes, serving: observation.serving };
    Ok((evaluation.settle(answer, seen), observation, progress))
}

/// Read the floor and gather the metrics (IO) for a settled evaluation: the last IO before the
/// decision.
pub async fn read_and_gather<'p, M: MetricSource>(
    settled: Settled<'p>,
    observation: &TargetObservation,
    queries: &[MetricQuery],
    source: &M,
    now: Ts,
) -> (Gathering<'p>, Vec<Series>, Vec<(usize, AdapterError)>) {
    let gathering = settled.floor(read_floor(&observation.floor, source, now).await);
    if !gathering.reset().is_empty() {
        tracing::warn!(fields = ?gathering.reset(), "stored state had values no sample could produce; reset them to no history");
    }
    let (series, metric_errors) = gather(queries, &gathering, source, now).await;
    (gathering, series, metric_errors)
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

/// [`tick`] with a hook between deciding and resizing (see [`BeforeActuate`]): the async driver
/// of the core's step machine (`core::step`), doing the IO each step asks for.
pub async fn tick_with_guard<M: MetricSource, T: ScaleTarget, G: BeforeActuate>(
    policy: &Policy,
    queries: &[MetricQuery],
    state: PolicyState,
    source: &M,
    target: &T,
    now: Ts,
    guard: &mut G,
) -> Result<GuardedTick<G::Refusal>, TickError> {
    let (settled, observation, progress) = observe_and_settle(Evaluation::start(policy, state, now), target).await?;
    let (gathering, series, metric_errors) = read_and_gather(settled, &observation, queries, source, now).await;
    let inputs: Vec<MetricInput<'_>> =
        series.iter().map(|s| MetricInput { samples: &s.samples, problem: s.problem }).collect();
    let mut decided = gathering.decide(&inputs);

    let mut refused = None;
    // The policy's largest size now (maxSize, or a window's): a steered autoscaler's maximum.
    let (_, max) = policy.known.limits(now, policy.min_size, policy.max_size).bounds(policy.min_size, policy.max_size);
    let actuation = match decided.next() {
        Next::Keep => {
            steer_maximum(policy, &observation, &decided.decision, max, target).await;
            Actuation::None
        }
        Next::DryRun { to } => Actuation::DryRun { to },
        Next::Write { to, .. } => match guard.before_actuate(&decided.decision, &decided.intent()).await {
            Err(refusal) => {
                refused = Some(refusal);
                Actuation::None
            }
            Ok(()) => {
                let answer = target.resize_within(to, max.max(to)).await;
                decided.written(&written_of(&answer));
                actuation_of(to, answer)
            }
        },
    };
    let report = TickReport {
        observation,
        floor: decided.floor,
        operation: decided.operation,
        progress,
        metric_errors,
        decision: decided.decision,
        actuation,
        clock_skew: decided.clock_skew,
    };
    Ok(GuardedTick { report, refused })
}

/// A steered autoscaler whose maximum is not the policy's largest size now (a window opened or
/// closed, `maxSize` was edited) while the minimum stays: its limits are written again, the
/// minimum as it is. Only in Enforce, with no resize in flight and the target not busy; the
/// write is not a resize of the policy's (its state and budget are not touched), and is the
/// same from any replica that evaluates the same spec, so it needs no fence. A failure is
/// logged and tried again at the next evaluation.
async fn steer_maximum<T: ScaleTarget>(
    policy: &Policy,
    observation: &TargetObservation,
    decision: &crate::core::Decision,
    max: u32,
    target: &T,
) {
    let Some(current) = observation.steered_max else { return };
    // The largest size the autoscaler's maximum can take under the policy's.
    let want = observation.sizes.down(max).unwrap_or(max).max(observation.size);
    if current == want
        || policy.mode != crate::core::Mode::Enforce
        || observation.busy
        || decision.state.in_flight.is_some()
    {
        return;
    }
    match target.resize_within(observation.size, want).await {
        Ok(_) => tracing::info!(from = current, to = want, "steered autoscaler's maximum set to the policy's"),
        Err(e) => {
            tracing::warn!(error = %e, "setting the steered autoscaler's maximum failed; trying again next evaluation")
        }
    }
}
