//! Settling an earlier resize: what the target's answer about the resize in flight means, and
//! what it does to the state. The tick asks (IO) and calls [`settle`] with the answers (pure).

use crate::state::{InFlight, PolicyState};
use crate::time::{Dur, Ts};

/// How long a target may stay busy with a resize that has no operation name to ask about before
/// the resize counts as failed (something else is keeping the target busy).
pub const MAX_BUSY: Dur = Dur(60 * 60_000);

/// How long a resize is followed by its operation's word before it counts as failed: an
/// operation that never reports done must not hold the policy forever. Bigtable and GKE resizes
/// take minutes, so only an operation that is stuck gets this far.
pub const MAX_OPERATION: Dur = Dur(2 * 60 * 60_000);

/// What the target said about the operation of the resize in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The resize has no operation name to ask about (an intent recorded before sending, or a
    /// request that timed out and showed it taken): the size and busy flag must tell.
    NoOperation,
    /// The operation is gone (expired or never recorded): the size must tell.
    Vanished,
    /// Still running.
    Running,
    /// Done without error.
    Done,
    /// Failed, with why.
    Failed(String),
}

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
    /// The operation still ran after [`MAX_OPERATION`]: it is no longer followed and counts as
    /// failed (resizes back off). The target may still be busy with it.
    TimedOut {
        /// Size asked for.
        to: u32,
        /// The operation's name.
        operation: String,
        /// How long it was followed.
        after: Dur,
    },
    /// Failed or vanished: no cooldown starts.
    Failed {
        /// Size asked for.
        to: u32,
        /// Why.
        message: String,
    },
}

/// Apply what became of the resize in flight to the state. `size` and `busy` are what the target
/// showed, observed after the answer (so never older than it).
pub fn settle(
    state: &mut PolicyState,
    flight: &InFlight,
    answer: Answer,
    size: u32,
    busy: bool,
    now: Ts,
) -> OperationOutcome {
    // Whether the target got where the resize was going. The core asks only for sizes the target
    // said it can take (`core::sizes`), but what it can take may change under it (zones added to
    // a pool), so a scale-in counts as done once the size dropped, a scale-out once it reached
    // the size asked for.
    let reached = |size: u32| if flight.to > flight.from { size >= flight.to } else { size < flight.from };
    let mut backoff = true;
    let status = match answer {
        // Past the bound an operation is no longer believed: a target that got where it was
        // going and is idle finished it whatever the operation says; otherwise it is abandoned.
        Answer::Running if now - flight.started_at >= MAX_OPERATION => {
            if !busy && reached(size) {
                Status::Done
            } else {
                Status::TimedOut
            }
        }
        Answer::Running => Status::Running,
        Answer::Done => Status::Done,
        Answer::Failed(message) => Status::Failed(message),
        Answer::Vanished => {
            if reached(size) {
                Status::Done
            } else {
                Status::Failed(format!(
                    "operation {} vanished and the size is {} not {}",
                    flight.operation.as_deref().unwrap_or_default(),
                    size,
                    flight.to
                ))
            }
        }
        // No operation name: the size tells whether it took effect; a busy target is still
        // applying it (a target can show the new size as soon as a resize starts, so done only
        // when idle), but not forever; otherwise it never happened, and must not enter the
        // resize history (which attributes samples to capacity).
        Answer::NoOperation if busy && now - flight.started_at < MAX_BUSY => Status::Running,
        Answer::NoOperation if !busy && reached(size) => Status::Done,
        Answer::NoOperation if flight.confirm_by.is_some_and(|t| now < t) => Status::Running,
        Answer::NoOperation => {
            // An intent a restart found unsent is no failure of the target: no backoff.
            backoff = flight.confirm_by.is_some();
            Status::Failed(format!("the resize to {} did not take effect (size is {size})", flight.to))
        }
    };
    match status {
        Status::Running => OperationOutcome::Running,
        // Done, and nothing changed: the request was taken and ignored (or the target rounded it
        // back to the size it had). Re-sending it every tick would change nothing either: back
        // off, and say so.
        Status::Done if size == flight.from => {
            state.abandon_resize();
            state.note_resize_failure(
                now,
                &format!("the resize to {} was reported done but the size is still {size}", flight.to),
            );
            OperationOutcome::NoEffect { to: flight.to, size }
        }
        // Done: record the size the target really has.
        Status::Done => {
            state.finish_resize_at_size(size, now);
            state.note_resize_success();
            OperationOutcome::Finished { from: flight.from, to: size }
        }
        Status::Failed(message) => {
            state.abandon_resize();
            if backoff {
                state.note_resize_failure(now, &message);
            }
            OperationOutcome::Failed { to: flight.to, message }
        }
        Status::TimedOut => {
            let operation = flight.operation.clone().unwrap_or_default();
            let after = now - flight.started_at;
            state.abandon_resize();
            state.note_resize_failure(
                now,
                &format!(
                    "operation {operation} (resize to {}) has not finished after {after}; a resize is followed for at most {MAX_OPERATION}, so it no longer is",
                    flight.to
                ),
            );
            OperationOutcome::TimedOut { to: flight.to, operation, after }
        }
    }
}

/// [`settle`] for the resize in flight in `state` itself (`None` when there is none). A resize
/// still running leaves the state as it is, so that answer is given without copying the flight
/// (its operation name is a string, and a replay asks on every evaluation while one runs).
pub fn settle_in_flight(
    state: &mut PolicyState,
    answer: Answer,
    size: u32,
    busy: bool,
    now: Ts,
) -> Option<OperationOutcome> {
    let flight = state.in_flight.as_ref()?;
    if still_running(flight, &answer, size, busy, now) {
        return Some(OperationOutcome::Running);
    }
    let flight = flight.clone();
    Some(settle(state, &flight, answer, size, busy, now))
}

/// Whether [`settle`] reads `answer` as the resize still running (the arms of its match that
/// give `Status::Running`, in its order).
fn still_running(flight: &InFlight, answer: &Answer, size: u32, busy: bool, now: Ts) -> bool {
    let reached = if flight.to > flight.from { size >= flight.to } else { size < flight.from };
    match answer {
        Answer::Running => now - flight.started_at < MAX_OPERATION,
        Answer::NoOperation if busy && now - flight.started_at < MAX_BUSY => true,
        Answer::NoOperation if !busy && reached => false,
        Answer::NoOperation => flight.confirm_by.is_some_and(|t| now < t),
        Answer::Vanished | Answer::Done | Answer::Failed(_) => false,
    }
}

/// The answer, once the size has been consulted.
enum Status {
    Running,
    Done,
    Failed(String),
    TimedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(from: u32, to: u32, operation: Option<&str>) -> (PolicyState, InFlight) {
        let mut s = PolicyState::default();
        s.begin_resize(from, to, operation.map(str::to_string), Ts(0));
        let f = s.in_flight.clone().expect("in flight");
        (s, f)
    }

    /// Settling the flight in the state gives what settling a copy of it gives, for every
    /// answer, size, busy flag and age around the bounds (it only skips the copy while running).
    #[test]
    fn settling_in_place_is_settling_a_copy() {
        let answers =
            [Answer::NoOperation, Answer::Vanished, Answer::Running, Answer::Done, Answer::Failed("no".into())];
        let ages = [Dur::ZERO, Dur::mins(10), MAX_BUSY, MAX_OPERATION, Dur(MAX_OPERATION.0 + 1)];
        for (from, to) in [(4, 6), (6, 4)] {
            for op in [None, Some("op")] {
                for confirm in [None, Some(Ts(Dur::mins(20).0))] {
                    for answer in &answers {
                        for size in [3, 4, 5, 6, 7] {
                            for busy in [false, true] {
                                for age in ages {
                                    let (mut s, mut f) = flight(from, to, op);
                                    f.confirm_by = confirm;
                                    s.in_flight = Some(f.clone());
                                    let mut copy = s.clone();
                                    let now = Ts(age.0);
                                    let expected = settle(&mut copy, &f, answer.clone(), size, busy, now);
                                    let got = settle_in_flight(&mut s, answer.clone(), size, busy, now);
                                    assert_eq!(
                                        got,
                                        Some(expected),
                                        "{from}->{to} {op:?} {answer:?} {size} {busy} {age}"
                                    );
                                    assert_eq!(s, copy);
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(settle_in_flight(&mut PolicyState::default(), Answer::Done, 4, false, Ts(0)), None);
    }

    #[test]
    fn a_vanished_operation_is_judged_by_the_size() {
        let (mut s, f) = flight(4, 6, Some("op"));
        assert_eq!(
            settle(&mut s, &f, Answer::Vanished, 6, false, Ts(60_000)),
            OperationOutcome::Finished { from: 4, to: 6 }
        );
        assert!(s.in_flight.is_none());
        let (mut s, f) = flight(4, 6, Some("op"));
        let out = settle(&mut s, &f, Answer::Vanished, 4, false, Ts(60_000));
        assert!(matches!(out, OperationOutcome::Failed { to: 6, .. }), "{out:?}");
        assert_eq!(s.resize_failures, 1);
    }

    #[test]
    fn done_without_a_change_is_no_effect_and_backs_off() {
        let (mut s, f) = flight(4, 6, Some("op"));
        assert_eq!(settle(&mut s, &f, Answer::Done, 4, false, Ts(1)), OperationOutcome::NoEffect { to: 6, size: 4 });
        assert_eq!(s.resize_failures, 1);
    }

    #[test]
    fn without_an_operation_busy_means_running_until_max_busy() {
        let (mut s, f) = flight(4, 6, None);
        assert_eq!(settle(&mut s, &f, Answer::NoOperation, 6, true, Ts(1)), OperationOutcome::Running);
        let out = settle(&mut s, &f, Answer::NoOperation, 4, true, Ts(MAX_BUSY.0));
        assert!(matches!(out, OperationOutcome::Failed { .. }), "{out:?}");
        // An unsent intent (no confirm_by) is no failure of the target: no backoff.
        assert_eq!(s.resize_failures, 0);
    }

    /// An operation that never reports done holds the policy until MAX_OPERATION, no longer: then
    /// the resize is abandoned, counted as failed (backoff), and the state says which operation
    /// and for how long. Before, it was "a resize is in progress" forever.
    #[test]
    fn an_operation_that_never_finishes_is_abandoned_after_max_operation() {
        let (mut s, f) = flight(4, 6, Some("op-7"));
        let just_before = Ts(MAX_OPERATION.0 - 1);
        assert_eq!(settle(&mut s, &f, Answer::Running, 4, true, just_before), OperationOutcome::Running);
        assert!(s.in_flight.is_some());
        let at = Ts(MAX_OPERATION.0);
        assert_eq!(
            settle(&mut s, &f, Answer::Running, 4, true, at),
            OperationOutcome::TimedOut { to: 6, operation: "op-7".into(), after: MAX_OPERATION }
        );
        assert!(s.in_flight.is_none());
        assert_eq!(s.resize_failures, 1);
        assert!(s.retry_resize_at.is_some_and(|t| t > at), "resizes back off");
        let why = s.last_resize_error.as_deref().unwrap_or_default();
        assert!(why.contains("op-7") && why.contains("2h"), "{why}");
        // A target that got there and is idle finished it, whatever the operation says.
        let (mut s, f) = flight(4, 6, Some("op-7"));
        assert_eq!(settle(&mut s, &f, Answer::Running, 6, false, at), OperationOutcome::Finished { from: 4, to: 6 });
    }

    #[test]
    fn a_scale_in_is_done_once_the_size_dropped() {
        let (mut s, f) = flight(6, 3, None);
        assert_eq!(
            settle(&mut s, &f, Answer::NoOperation, 4, false, Ts(1)),
            OperationOutcome::Finished { from: 6, to: 4 }
        );
    }
}
