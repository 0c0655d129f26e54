//! One evaluation of one policy as a synchronous state machine: it takes what the world answered
//! and says what to ask or write next. It does no IO and awaits nothing, so the controller drives
//! it with an async driver that does the IO (`tick` in the `ebbflow` crate), and a replay drives
//! it with a plain loop over arrays (`sim` there): one sequence of rules, two drivers.
//!
//! ```text
//! Evaluation::start(state) | start_in(&mut decision) ─ operation()? ─► settle(answer, seen) ─► Settled
//!   Settled ─ floor input ─► Gathering ─ after(i) per metric
//!   Gathering ─ decide(samples) | decide_in_place(samples) ─► Decided
//!   Decided ─ next(): Keep | DryRun | Write ─► written(answer)   (only for a Write)
//! ```
//!
//! Each stage holds the state in a [`Slot`]: the state itself (moved in at the start and out
//! in the [`Decision`]), as the controller keeps it between ticks, or the decision of the
//! previous evaluation borrowed and overwritten in place, as a replay keeps it: moving a state
//! of a few hundred bytes through the stages was a sixth of the step machine's time.
//!
//! The order is the rule: the operation in flight is asked about before the target is observed
//! (so the observation is never older than the operation's answer), the resize is settled before
//! the floor is resolved (the floor reads the resize history), and each metric is fetched from
//! what its signal has not seen yet.

use std::borrow::BorrowMut;

use crate::decide::{Decision, Inputs, MetricInput, MetricOutcome, Verdict, decide_prepared};
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

/// Where an evaluation keeps the state: owned ([`PolicyState`], handed back in the
/// [`Decision`]), or the previous evaluation's decision borrowed (`&mut Decision`), whose state
/// is carried on and whose verdict and outcomes are overwritten.
pub trait Slot {
    /// The state.
    fn state(&self) -> &PolicyState;
    /// The state, to change.
    fn state_mut(&mut self) -> &mut PolicyState;
}

impl Slot for PolicyState {
    fn state(&self) -> &PolicyState {
        self
    }
    fn state_mut(&mut self) -> &mut PolicyState {
        self
    }
}

impl Slot for &mut Decision {
    fn state(&self) -> &PolicyState {
        &self.state
    }
    fn state_mut(&mut self) -> &mut PolicyState {
        &mut self.state
    }
}

/// An evaluation begun: the stored state, with timestamps from the future brought back to now.
#[derive(Debug)]
pub struct Evaluation<'p, S: Slot = PolicyState> {
    policy: &'p Policy,
    now: Ts,
    slot: S,
    clock_skew: Vec<&'static str>,
}

impl<'p> Evaluation<'p> {
    /// Begin evaluating `policy` at `now` from `state` (moved in, not copied: a copy is a dozen
    /// allocations).
    pub fn start(policy: &'p Policy, state: PolicyState, now: Ts) -> Evaluation<'p> {
        Evaluation::start_in(policy, state, now)
    }
}

impl<'p, S: Slot> Evaluation<'p, S> {
    /// Begin evaluating `policy` at `now` from the state in `slot`: [`Evaluation::start`] for
    /// either kind of [`Slot`]; with `&mut previous_decision`, the state is not moved at all.
    pub fn start_in(policy: &'p Policy, mut slot: S, now: Ts) -> Evaluation<'p, S> {
        // A stored state written on a clock ahead of ours is brought back to now first.
        let hold = policy.spike.as_ref().map_or(Dur::ZERO, |s| s.hold);
        let clock_skew = slot.state_mut().clamp_future(now, hold);
        Evaluation { policy, now, slot, clock_skew }
    }

    /// The operation of the resize in flight to ask the target about before observing it, if it
    /// has one.
    pub fn operation(&self) -> Option<&str> {
        self.slot.state().in_flight.as_ref().and_then(|f| f.operation.as_deref())
    }

    /// The state as it stands (read-only), e.g. for the resize in flight.
    pub fn state(&self) -> &PolicyState {
        self.slot.state()
    }

    /// Carry in the answer about the operation ([`Answer::NoOperation`] when there was none to
    /// ask about) and what the target showed, observed after that answer: the resize in flight,
    /// if any, is settled.
    pub fn settle(mut self, answer: Answer, seen: Seen) -> Settled<'p, S> {
        let operation = settle_in_flight(self.slot.state_mut(), answer, seen.size, seen.busy, self.now);
        Settled { policy: self.policy, now: self.now, slot: self.slot, clock_skew: self.clock_skew, seen, operation }
    }
}

/// The resize in flight settled; the floor's reading is next.
#[derive(Debug)]
pub struct Settled<'p, S: Slot = PolicyState> {
    policy: &'p Policy,
    now: Ts,
    slot: S,
    clock_skew: Vec<&'static str>,
    seen: Seen,
    operation: Option<OperationOutcome>,
}

impl<'p, S: Slot> Settled<'p, S> {
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
    pub fn floor(mut self, floor: FloorInput) -> Gathering<'p, S> {
        let state = self.slot.state_mut();
        state.align(self.policy);
        let reset = state.sanitize(self.policy, self.seen.size);
        Gathering {
            policy: self.policy,
            now: self.now,
            slot: self.slot,
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
pub struct Gathering<'p, S: Slot = PolicyState> {
    policy: &'p Policy,
    now: Ts,
    slot: S,
    clock_skew: Vec<&'static str>,
    seen: Seen,
    operation: Option<OperationOutcome>,
    floor: FloorInput,
    reset: Vec<&'static str>,
}

impl<'p, S: Slot> Gathering<'p, S> {
    /// Fetch metric `i`'s samples in `(after(i), now]`: what its signal has not seen yet, within
    /// its history and data age.
    pub fn after(&self, i: usize) -> Ts {
        let Some(metric) = self.policy.metrics.get(i) else { return self.now };
        let earliest = self.now - history(metric.window, metric.max_age);
        self.slot.state().signals.get(i).and_then(|s| s.last_at).map_or(earliest, |t| t.max(earliest))
    }

    /// Fields of the stored state that held values no sample could produce and were reset to no
    /// history (for a warning).
    pub fn reset(&self) -> &[&'static str] {
        &self.reset
    }

    /// The verdict from each metric's samples, the outcomes written into `outcomes`, the state
    /// in the slot brought forward.
    fn verdict(&mut self, metrics: &[MetricInput<'_>], outcomes: &mut Vec<MetricOutcome>) -> Verdict {
        let current = self.seen.size;
        let state = self.slot.state_mut();
        // A target busy with a resize of ours is not busy with someone else's.
        let busy = self.seen.busy && state.in_flight.is_none();
        let floor = floor::resolve(&self.floor, state, current);
        let inputs = Inputs { current, metrics, floor, busy, serving: self.seen.serving, sizes: self.seen.sizes };
        // `floor` lined the state up and made sure of it for this size; nothing changed since.
        decide_prepared(self.policy, state, &inputs, self.now, outcomes)
    }

    /// The rest of a stage, around the decision it leads to.
    fn into_decided<D: BorrowMut<Decision>>(self, decision: D) -> Decided<'p, D> {
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

impl<'p> Gathering<'p> {
    /// Decide from each metric's samples (in spec order; a failed fetch is an empty input with
    /// its problem).
    pub fn decide(self, metrics: &[MetricInput<'_>]) -> Decided<'p> {
        let outcomes = Vec::with_capacity(self.policy.metrics.len());
        self.decide_reusing(metrics, outcomes)
    }

    /// [`Gathering::decide`], with the per-metric outcomes written into `outcomes` (emptied
    /// first): a driver that hands back the previous decision's `metrics` allocates nothing here.
    pub fn decide_reusing(mut self, metrics: &[MetricInput<'_>], mut outcomes: Vec<MetricOutcome>) -> Decided<'p> {
        let verdict = self.verdict(metrics, &mut outcomes);
        let state = std::mem::take(&mut self.slot);
        let decision = Decision::from_parts(verdict, outcomes, state);
        self.into_decided(decision)
    }
}

impl<'p, 's> Gathering<'p, &'s mut Decision> {
    /// [`Gathering::decide`] into the borrowed decision: its verdict and outcomes are
    /// overwritten, its state (the slot's) carried on, nothing moved or allocated.
    pub fn decide_in_place(mut self, metrics: &[MetricInput<'_>]) -> Decided<'p, &'s mut Decision> {
        let mut outcomes = std::mem::take(&mut self.slot.metrics);
        let verdict = self.verdict(metrics, &mut outcomes);
        self.slot.metrics = outcomes;
        self.slot.set_verdict(verdict);
        let Gathering { policy, now, slot, clock_skew, seen, operation, floor, reset } = self;
        Decided { policy, now, decision: slot, seen, operation, floor, clock_skew, reset }
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

/// A decision reached: what to write next, and everything the evaluation saw. `D` is the
/// decision itself, or the previous one borrowed and overwritten ([`Gathering::decide_in_place`]).
#[derive(Debug)]
pub struct Decided<'p, D: BorrowMut<Decision> = Decision> {
    policy: &'p Policy,
    now: Ts,
    /// The decision, with the state to carry into the next evaluation.
    pub decision: D,
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

impl<D: BorrowMut<Decision>> Decided<'_, D> {
    /// What the decision asks for, in the policy's mode.
    pub fn next(&self) -> Next {
        let d: &Decision = self.decision.borrow();
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
        let d: &Decision = self.decision.borrow();
        let mut intent = d.state.clone();
        intent.begin_resize(d.current, d.desired, None, self.now);
        intent
    }

    /// Carry in the target's answer to the [`Next::Write`].
    pub fn written(&mut self, answer: &Written) {
        let d: &mut Decision = self.decision.borrow_mut();
        let (from, to) = (d.current, d.desired);
        record_write(&mut d.state, (from, to), answer, self.now);
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
