//! One evaluation of one policy: clamp timestamps from the future (pure) → settle (IO: the
//! resize in flight, asked about first) → observe (IO) → resolve the storage floor (pure) →
//! gather (IO) → decide (pure) → actuate (IO).
//!
//! The controller and the simulator both call [`tick`]; they differ only in the adapters they pass
//! and in where they keep the state, so a dry run and production cannot drift apart.

use std::future::Future;

use crate::adapters::{
    AdapterError, ErrorKind, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget, Series,
    TargetObservation,
};
use crate::core::Mode;
use crate::core::state::InFlight;
use crate::core::{DataProblem, Decision, Dur, Inputs, MetricInput, Policy, PolicyState, Ts, decide};

/// What happened to a resize the previous ticks had started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationOutcome {
    /// Still running.
    Running,
    /// Finished: cooldowns start now.
    Finished {
        /// Size before.
        from: u32,
        /// Size after.
        to: u32,
    },
    /// The target reported it done, but its size did not change: the request was accepted and
    /// ignored (e.g. built-in autoscaling owns the size). No cooldown starts; resizes back off.
    NoEffect {
        /// Size asked for.
        to: u32,
        /// Size the target still has.
        size: u32,
    },
    /// Failed or vanished: no cooldown starts.
    Failed {
        /// Size asked for.
        to: u32,
        /// Why.
        message: String,
    },
}

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

/// How long a target may stay busy with a resize that has no operation name to ask about before
/// the resize counts as failed (something else is keeping the target busy).
pub const MAX_BUSY: Dur = Dur(60 * 60_000);

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

    let mut operation = None;
    if let Some(flight) = flight {
        // Whether the target got where the resize was going. A target may round (Bigtable's 2x
        // node scaling to even sizes, a node pool to whole nodes per zone), so a scale-in counts
        // as done once the size dropped, a scale-out once it reached the size asked for.
        let reached = |size: u32| if flight.to > flight.from { size >= flight.to } else { size < flight.from };
        let mut backoff = true;
        let status = match op_status {
            Some(Ok(s)) => s,
            // The operation is gone (expired or never recorded): the size tells what happened.
            Some(Err(e)) if e.kind == ErrorKind::NotFound => {
                if reached(observation.size) {
                    OperationStatus::Done
                } else {
                    OperationStatus::Failed(format!(
                        "operation {} vanished and the size is {} not {}",
                        flight.operation.as_deref().unwrap_or_default(),
                        observation.size,
                        flight.to
                    ))
                }
            }
            Some(Err(e)) => return Err(TickError::Operation(e)),
            // No operation name: the resize was recorded as an intent (see `BeforeActuate`) and
            // the process stopped before the target answered, or the request timed out and the
            // target showed it taken. The size tells whether it took effect; a busy target is
            // still applying it (a target can show the new size as soon as a resize starts, so
            // done only when idle), but not forever; otherwise it never happened, and must not
            // enter the resize history (which attributes samples to capacity).
            None if observation.busy && now - flight.started_at < MAX_BUSY => OperationStatus::Running,
            None if !observation.busy && reached(observation.size) => OperationStatus::Done,
            None if flight.confirm_by.is_some_and(|t| now < t) => OperationStatus::Running,
            None => {
                // An intent a restart found unsent is no failure of the target: no backoff.
                backoff = flight.confirm_by.is_some();
                OperationStatus::Failed(format!(
                    "the resize to {} did not take effect (size is {})",
                    flight.to, observation.size
                ))
            }
        };
        operation = Some(settle(&mut state, &flight, status, observation.size, now, backoff));
    }
    // gather (IO): only what each signal has not seen yet
    state.align(policy);
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
    let inputs: Vec<MetricInput<'_>> =
        series.iter().map(|s| MetricInput { samples: &s.samples, problem: s.problem }).collect();

    // decide (pure)
    let busy = observation.busy && state.in_flight.is_none();
    let floor = crate::core::floor::resolve(&observation.floor, &state, observation.size);
    let mut decision = decide(policy, state, &Inputs { current: observation.size, metrics: &inputs, floor, busy }, now);

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
            let report =
                TickReport { observation, operation, metric_errors, decision, actuation: Actuation::None, clock_skew };
            return Ok(GuardedTick { report, refused: Some(refusal) });
        }
        match target.resize(to).await {
            Ok(ResizeStarted::Done) => {
                decision.state.begin_resize(from, to, None, now);
                decision.state.finish_resize(now);
                decision.state.note_resize_success();
                Actuation::Started { to, operation: None, done: true }
            }
            Ok(ResizeStarted::Operation(name)) => {
                decision.state.begin_resize(from, to, Some(name.clone()), now);
                Actuation::Started { to, operation: Some(name), done: false }
            }
            Ok(ResizeStarted::Unconfirmed) => {
                decision.state.begin_resize(from, to, None, now);
                if let Some(f) = decision.state.in_flight.as_mut() {
                    f.confirm_by = Some(now + UNCONFIRMED_GRACE);
                }
                Actuation::Started { to, operation: None, done: false }
            }
            Err(error) => {
                decision.state.note_resize_failure(now, &error.to_string());
                Actuation::Failed { to, error }
            }
        }
    };

    Ok(GuardedTick {
        report: TickReport { observation, operation, metric_errors, decision, actuation, clock_skew },
        refused: None,
    })
}

/// Apply what became of the resize in flight to the state: the rules for settling an earlier
/// resize, apart from the IO that found them out.
fn settle(
    state: &mut PolicyState,
    flight: &InFlight,
    status: OperationStatus,
    size: u32,
    now: Ts,
    backoff: bool,
) -> OperationOutcome {
    match status {
        OperationStatus::Running => OperationOutcome::Running,
        // Done, and nothing changed: the request was taken and ignored (or the target rounded it
        // back to the size it had). Re-sending it every tick would change nothing either: back
        // off, and say so.
        OperationStatus::Done if size == flight.from => {
            state.abandon_resize();
            state.note_resize_failure(
                now,
                &format!("the resize to {} was reported done but the size is still {size}", flight.to),
            );
            OperationOutcome::NoEffect { to: flight.to, size }
        }
        // Done: record the size the target really has (it may round, e.g. 2x node scaling).
        OperationStatus::Done => {
            state.finish_resize_at_size(size, now);
            state.note_resize_success();
            OperationOutcome::Finished { from: flight.from, to: size }
        }
        OperationStatus::Failed(message) => {
            state.abandon_resize();
            if backoff {
                state.note_resize_failure(now, &message);
            }
            OperationOutcome::Failed { to: flight.to, message }
        }
    }
}
