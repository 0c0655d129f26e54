//! One evaluation of one policy as a synchronous state machine: it takes what the world answered
//! and says what to ask or write next. It does no IO and awaits nothing, so the controller drives
//! it with an async driver that does the IO (`tick` in the `ebbflow` crate), and a replay drives
//! it with a plain loop over arrays (`sim` there): one sequence of rules, two drivers.
//!
//! ```text
//! Evaluation::start ─ operation()? ─► settle(answer, seen) ─► Settled
//!   Settled ─ floor input ─► Gathering ─ after(i) per metric ─► decide(samples) ─► Decided
//!   Decided ─ next(): Keep | DryRun | Write ─► written(answer)   (only for a Write)
//! ```
//!
//! The order is the rule: the operation in flight is asked about before the target is observed
//! (so the observation is never older than the operation's answer), the resize is settled before
//! the floor is resolved (the floor reads the resize history), and each metric is fetched from
//! what its signal has not seen yet.

use crate::decide::{Decision, Inputs, MetricInput, MetricOutcome, decide_prepared};
use crate::floor::{self, FloorInput};
use crate::policy::{Mode, Policy, history};
use crate::settle::{Answer, OperationOutcome, settle_in_flight};
use crate::sizes::SizeRule;
use crate::state::{PolicyState, UNCONFIRMED_GRACE};
use crate::time::{Dur, Ts};

/// What the target showed when observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Its size now.
    pub size: u32,
    /// Whether a resize is running on it (perhaps not ours).
    pub busy: bool,
    /// The sizes it can take.
    pub sizes: SizeRule,
    /// The capacity serving, when it is not `size`: a target steered through its built-in
    /// autoscaler's minimum shows that minimum as its size, while the autoscaler's own live
    /// size is what carries the load the metrics measure.
    pub serving: Option<u32>,
}

/// An evaluation begun: the stored state, with timestamps from the future brought back to now.
#[derive(Debug)]
pub struct Evaluation<'p> {
    policy: &'p Policy,
    now: Ts,
    state: PolicyState,
    clock_skew: Vec<&'static str>,
}

impl<'p> Evaluation<'p> {
    /// Begin evaluating `policy` at `now` from `state` (moved in, not copied: a copy is a dozen
    /// allocations).
    pub fn start(policy: &'p Policy, mut state: PolicyState, now: Ts) -> Evaluation<'p> {
        // A stored state written on a clock ahead of ours is brought back to now first.
        let clock_skew = state.clamp_future(now, policy.spike.as_ref().map_or(Dur::ZERO, |s| s.hold));
        Evaluation { policy, now, state, clock_skew }
    }

    /// The operation of the resize in flight to ask the target about before observing it, if it
    /// has one.
    pub fn operation(&self) -> Option<&str> {
        self.state.in_flight.as_ref().and_then(|f| f.operation.as_deref())
    }

    /// The state as it stands (read-only), e.g. for the resize in flight.
    pub fn state(&self) -> &PolicyState {
        &self.state
    }

    /// Carry in the answer about the operation ([`Answer::NoOperation`] when there was none to
    /// ask about) and what the target showed, observed after that answer: the resize in flight,
    /// if any, is settled.
    pub fn settle(mut self, answer: Answer, seen: Seen) -> Settled<'p> {
        let operation = settle_in_flight(&mut self.state, answer, seen.size, seen.busy, self.now);
        Settled { policy: self.policy, now: self.now, state: self.state, clock_skew: self.clock_skew, seen, operation }
    }
}

/// The resize in flight settled; the floor's reading is next.
#[derive(Debug)]
pub struct Settled<'p> {
    policy: &'p Policy,
    now: Ts,
    state: PolicyState,
    clock_skew: Vec<&'static str>,
    seen: Seen,
    operation: Option<OperationOutcome>,
}

impl<'p> Settled<'p> {
    /// What became of the resize in flight, if one was.
    pub fn operation(&self) -> Option<&OperationOutcome> {
        self.operation.as_ref()
    }

    /// What the target showed.
    pub fn seen(&self) -> Seen {
        self.seen
    }

    /// Carry in the reading of the target's floor metric ([`FloorInput::None`] for a target
    /// without one). The signals are lined up with the policy's metrics and the stored state is
    /// made sure of, before the metrics are fetched: a reset signal asks for its whole history.
    pub fn floor(mut self, floor: FloorInput) -> Gathering<'p> {
        self.state.align(self.policy);
        let reset = self.state.sanitize(self.policy, self.seen.size);
        Gathering {
            policy: self.policy,
            now: self.now,
            state: self.state,
            clock_skew: self.clock_skew,
            seen: self.seen,
            operation: self.operation,
            floor,
            reset,
        }
    }
}

/// Ready to gather: each metric's samples since [`Gathering::after`] are next.
#[derive(Debug)]
pub struct Gathering<'p> {
    policy: &'p Policy,
    now: Ts,
    state: PolicyState,
    clock_skew: Vec<&'static str>,
    seen: Seen,
    operation: Option<OperationOutcome>,
    floor: FloorInput,
    reset: Vec<&'static str>,
}

impl<'p> Gathering<'p> {
    /// Fetch metric `i`'s samples in `(after(i), now]`: what its signal has not seen yet, within
    /// its history and data age.
    pub fn after(&self, i: usize) -> Ts {
        let Some(metric) = self.policy.metrics.get(i) else { return self.now };
        let earliest = self.now - history(metric.window, metric.max_age);
        self.state.signals.get(i).and_then(|s| s.last_at).map_or(earliest, |t| t.max(earliest))
    }

    /// Fields of the stored state that held values no sample could produce and were reset to no
    /// history (for a warning).
    pub fn reset(&self) -> &[&'static str] {
        &self.reset
    }

    /// Decide from each metric's samples (in spec order; a failed fetch is an empty input with
    /// its problem).
    pub fn decide(self, metrics: &[MetricInput<'_>]) -> Decided<'p> {
        let outcomes = Vec::with_capacity(self.policy.metrics.len());
        self.decide_reusing(metrics, outcomes)
    }

    /// [`Gathering::decide`], with the per-metric outcomes written into `outcomes` (emptied
    /// first): a driver that hands back the previous decision's `metrics` allocates nothing here.
    pub fn decide_reusing(mut self, metrics: &[MetricInput<'_>], mut outcomes: Vec<MetricOutcome>) -> Decided<'p> {
        let current = self.seen.size;
        // A target busy with a resize of ours is not busy with someone else's.
        let busy = self.seen.busy && self.state.in_flight.is_none();
        let floor = floor::resolve(&self.floor, &self.state, current);
        let inputs = Inputs { current, metrics, floor, busy, serving: self.seen.serving, sizes: self.seen.sizes };
        // `floor` lined the state up and made sure of it for this size; nothing changed since.
        let verdict = decide_prepared(self.policy, &mut self.state, &inputs, self.now, &mut outcomes);
        let decision = Decision::from_parts(verdict, outcomes, self.state);
        Decided {
            policy: self.policy,
            now: self.now,
            decision,
            seen: self.seen,
            operation: self.operation,
            floor: self.floor,
            clock_skew: self.clock_skew,
            reset: self.reset,
        }
    }
}

/// What to do with a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The decision keeps the size.
    Keep,
    /// Dry run: the resize is decided, not sent.
    DryRun {
        /// The size that would be set.
        to: u32,
    },
    /// Send a resize from `from` to `to`, then carry its answer in with [`Decided::written`].
    Write {
        /// Size before.
        from: u32,
        /// Size asked for.
        to: u32,
    },
}

/// How the target answered a resize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Applied at once.
    Done,
    /// Accepted as an operation with this name, to be asked about on later evaluations.
    Operation(String),
    /// The request's answer was lost, but the target showed it taken: settled by its size.
    Unconfirmed,
    /// Refused or failed, with why (resizes back off).
    Failed(String),
}

/// A decision reached: what to write next, and everything the evaluation saw.
#[derive(Debug)]
pub struct Decided<'p> {
    policy: &'p Policy,
    now: Ts,
    /// The decision, with the state to carry into the next evaluation.
    pub decision: Decision,
    /// What the target showed.
    pub seen: Seen,
    /// What became of the resize in flight, if one was.
    pub operation: Option<OperationOutcome>,
    /// The floor metric's reading.
    pub floor: FloorInput,
    /// Fields of the stored state that lay in the future and were clamped to now.
    pub clock_skew: Vec<&'static str>,
    /// Fields of the stored state that were reset to no history.
    pub reset: Vec<&'static str>,
}

impl Decided<'_> {
    /// What the decision asks for, in the policy's mode.
    pub fn next(&self) -> Next {
        let d = &self.decision;
        if !d.is_resize() {
            Next::Keep
        } else if self.policy.mode != Mode::Enforce {
            Next::DryRun { to: d.desired }
        } else {
            Next::Write { from: d.current, to: d.desired }
        }
    }

    /// The state to store before a [`Next::Write`] is sent: the resize begun, with no operation
    /// name yet, so a controller killed mid-write finds the resize it may have sent.
    pub fn intent(&self) -> PolicyState {
        let mut intent = self.decision.state.clone();
        intent.begin_resize(self.decision.current, self.decision.desired, None, self.now);
        intent
    }

    /// Carry in the target's answer to the [`Next::Write`].
    pub fn written(&mut self, answer: &Written) {
        let (from, to) = (self.decision.current, self.decision.desired);
        record_write(&mut self.decision.state, (from, to), answer, self.now);
    }
}

/// Carry the answer to a resize from `from` to `to` into `state` (begun, finished at once,
/// awaiting confirmation, or failed): the one bookkeeping of a write, for a target and for each
/// member of one.
pub fn record_write(state: &mut PolicyState, (from, to): (u32, u32), answer: &Written, now: Ts) {
    match answer {
        Written::Done => {
            state.begin_resize(from, to, None, now);
            state.finish_resize(now);
            state.note_resize_success();
        }
        Written::Operation(name) => state.begin_resize(from, to, Some(name.clone()), now),
        Written::Unconfirmed => {
            state.begin_resize(from, to, None, now);
            if let Some(f) = state.in_flight.as_mut() {
                f.confirm_by = Some(now + UNCONFIRMED_GRACE);
            }
        }
        Written::Failed(why) => state.note_resize_failure(now, why),
    }
}
