//! The synchronous driver of the core's step machine (`core::step`): one evaluation of a policy
//! against the simulated world ([`Sim`]), with no futures, no locks, and the samples fetched into
//! buffers that live as long as the replay. The controller drives the same machine through its
//! async driver (`tick`), so a replay decides as production does.

use crate::core::replicas::{fraction_floor, hold_at_floor};
use crate::core::settle::Answer;
use crate::core::step::{Decided, Evaluation, Gathering, Next, Written};
use crate::core::{DataProblem, Decision, MetricInput, MetricOutcome, Policy, PolicyState, Sample, Ts};
use crate::sim::model::{Sim, Source};
use crate::tick::written_of;

/// Most metrics a replay feeds per evaluation without allocating for their inputs: more than a
/// policy may have.
const INPUTS: usize = 16;

/// What a replay keeps between evaluations besides the state: where each metric is answered
/// from, and one sample buffer per metric, reused.
#[derive(Debug)]
pub struct Driver {
    sources: Vec<Source>,
    buffers: Vec<Vec<Sample>>,
    /// The per-metric outcomes of the last decision, handed back by [`Driver::recycle`].
    outcomes: Vec<MetricOutcome>,
}

impl Driver {
    /// A driver for a policy whose metrics are answered from `sources`, in spec order.
    pub fn new(sources: Vec<Source>) -> Driver {
        let buffers = sources.iter().map(|_| Vec::new()).collect();
        Driver { sources, buffers, outcomes: Vec::new() }
    }

    /// A driver for the scenario's policy in `world` (see [`crate::sim::sim`]): the world
    /// answers a query from the column its metric is mapped to (the first, unless `columns:` says
    /// otherwise), whatever its source, bound by query once here.
    pub fn for_scenario(sc: &crate::sim::Scenario, world: &Sim<'_>) -> Driver {
        let query = |m| crate::spec::metric_query(m, "simulated", "simulated");
        Driver::new(sc.spec.metrics.iter().map(|m| world.source_of(&query(m))).collect())
    }

    /// Evaluate `policy` once at the world's time `now` (the world already advanced to it), from
    /// `state`, writing any resize to the world: the steps of `tick::tick_with_guard`, without a
    /// guard (a replay has no other replica).
    pub fn evaluate<'p>(
        &mut self,
        policy: &'p Policy,
        state: PolicyState,
        world: &mut Sim<'_>,
        now: Ts,
    ) -> Decided<'p> {
        let evaluation = Evaluation::start(policy, state, now);
        let answer = answer(evaluation.operation().map(|name| world.operation(name)));
        let settled = evaluation.settle(answer, world.seen());
        let gathering = settled.floor(world.floor_input());
        let outcomes = std::mem::take(&mut self.outcomes);
        let mut decided =
            self.gather_and_decide(gathering, outcomes, |source, after, out| world.fetch_into(source, after, now, out));
        if let Next::Write { to, .. } = decided.next() {
            let answer: Written = written_of(&world.resize(to));
            decided.written(&answer);
        }
        decided
    }

    /// Evaluate an instance sized per cluster once: each member (cluster) is its own step
    /// machine with its own state (`states`, one per member, in order) and its own series; then
    /// the core's replica rule raises every member to `fraction` of the largest member's
    /// decision; then one write per member that changes, scale-outs first, and no scale-in after
    /// a failed write (the floor it was cut against may not hold), as `members::actuate` sends
    /// them. The decisions come back in member order, each with its next state.
    pub fn evaluate_members<'p>(
        &mut self,
        policy: &'p Policy,
        fraction: f64,
        states: Vec<PolicyState>,
        world: &mut Sim<'_>,
        now: Ts,
    ) -> Vec<Decided<'p>> {
        let mut decided: Vec<Decided<'p>> = Vec::with_capacity(states.len());
        for (m, state) in states.into_iter().enumerate().take(world.members()) {
            let evaluation = Evaluation::start(policy, state, now);
            let answer = answer(evaluation.operation().map(|name| world.operation_of(m, name)));
            let settled = evaluation.settle(answer, world.seen_of(m));
            let gathering = settled.floor(world.floor_input_of(m));
            let world = &*world;
            decided.push(self.gather_and_decide(gathering, Vec::new(), |source, after, out| {
                world.fetch_member_into(m, source, after, now, out)
            }));
        }
        let own: Vec<u32> = decided.iter().map(|d| d.decision.desired).collect();
        let floor = fraction_floor(&own, fraction);
        for d in &mut decided {
            let sizes = d.seen.sizes;
            hold_at_floor(policy, &mut d.decision, floor, sizes, now);
        }
        let mut order: Vec<usize> = (0..decided.len()).collect();
        order.sort_by_key(|&m| {
            let d = &decided[m].decision;
            (d.desired < d.current, std::cmp::Reverse(own[m]))
        });
        let mut failed = false;
        for m in order {
            let Next::Write { from, to } = decided[m].next() else { continue };
            if to < from && failed {
                continue;
            }
            let answer: Written = written_of(&world.resize_member(m, to));
            failed |= matches!(answer, Written::Failed(_));
            decided[m].written(&answer);
        }
        decided
    }

    /// Fetch each metric's samples since what its signal has seen (into the reused buffers) and
    /// decide, writing the per-metric outcomes into `outcomes`.
    fn gather_and_decide<'p>(
        &mut self,
        gathering: Gathering<'p>,
        outcomes: Vec<MetricOutcome>,
        fetch: impl Fn(Source, Ts, &mut Vec<Sample>) -> Option<DataProblem>,
    ) -> Decided<'p> {
        let mut problems = [None; INPUTS];
        for (i, (source, buffer)) in self.sources.iter().zip(&mut self.buffers).enumerate().take(INPUTS) {
            buffer.clear();
            problems[i] = fetch(*source, gathering.after(i), buffer);
        }
        let n = self.buffers.len().min(INPUTS);
        let inputs: [MetricInput<'_>; INPUTS] = std::array::from_fn(|i| match self.buffers.get(i) {
            Some(b) => MetricInput { samples: b, problem: problems[i] },
            None => MetricInput { samples: &[], problem: None },
        });
        gathering.decide_reusing(&inputs[..n], outcomes)
    }

    /// Take back what a decision of [`Driver::evaluate`] holds that the next evaluation can
    /// reuse, and return the state to carry into it.
    pub fn recycle(&mut self, decision: Decision) -> PolicyState {
        self.outcomes = decision.metrics;
        decision.state
    }
}

/// How the simulated target answers about an operation (`None`: there was none to ask about).
fn answer(running: Option<Option<bool>>) -> Answer {
    match running {
        Some(Some(true)) => Answer::Running,
        Some(Some(false)) => Answer::Done,
        Some(None) => Answer::Vanished,
        None => Answer::NoOperation,
    }
}
