//! The synchronous driver of the core's step machine (`core::step`): one evaluation of a policy
//! against the simulated world ([`Sim`]), with no futures, no locks, and the samples fetched into
//! buffers that live as long as the replay. The controller drives the same machine through its
//! async driver (`tick`), so a replay decides as production does.

use crate::core::replicas::{fraction_floor, hold_at_floor};
use crate::core::settle::Answer;
use crate::core::step::{Decided, Evaluation, Next, Written};
use crate::core::{DataProblem, Decision, MetricInput, Policy, PolicyState, Sample, Ts};
use crate::sim::model::{Sim, Source};
use crate::tick::written_of;

/// Most metrics a replay feeds per evaluation without allocating for their inputs: more than a
/// policy may have.
const INPUTS: usize = 16;

/// What a replay keeps between evaluations besides the decision: where each metric is answered
/// from, and one sample buffer per metric, reused.
#[derive(Debug)]
pub struct Driver {
    sources: Vec<Source>,
    buffers: Vec<Vec<Sample>>,
}

impl Driver {
    /// A driver for a policy whose metrics are answered from `sources`, in spec order.
    pub fn new(sources: Vec<Source>) -> Driver {
        let buffers = sources.iter().map(|_| Vec::new()).collect();
        Driver { sources, buffers }
    }

    /// A driver for the scenario's policy in `world` (see [`crate::sim::sim`]): the world
    /// answers a query from the column its metric is mapped to (the first, unless `columns:` says
    /// otherwise), whatever its source, bound by query once here.
    pub fn for_scenario(sc: &crate::sim::Scenario, world: &Sim<'_>) -> Driver {
        let query = |m| crate::spec::metric_query(m, "simulated", "simulated");
        Driver::new(sc.spec.metrics.iter().map(|m| world.source_of(&query(m))).collect())
    }

    /// Evaluate `policy` once at the world's time `now` (the world already advanced to it), from
    /// the state in `decision` (the previous evaluation's, or [`Decision::none_yet`]), writing
    /// any resize to the world: the steps of `tick::tick_with_guard`, without a guard (a replay
    /// has no other replica). The decision is made in place: its state carried on, its verdict
    /// and outcomes overwritten, nothing moved or allocated.
    pub fn evaluate<'p, 's>(
        &mut self,
        policy: &'p Policy,
        decision: &'s mut Decision,
        world: &mut Sim<'_>,
        now: Ts,
    ) -> Decided<'p, &'s mut Decision> {
        let evaluation = Evaluation::start_in(policy, decision, now);
        let answer = answer(evaluation.operation().map(|name| world.operation(name)));
        let settled = evaluation.settle(answer, world.seen());
        let gathering = settled.floor(world.floor_input());
        let problems =
            self.gather(|i| gathering.after(i), |source, after, out| world.fetch_into(source, after, now, out));
        let mut decided = gathering.decide_in_place(&self.inputs(&problems));
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
            let problems = self.gather(
                |i| gathering.after(i),
                |source, after, out| world.fetch_member_into(m, source, after, now, out),
            );
            decided.push(gathering.decide(&self.inputs(&problems)));
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

    /// Fetch each metric's samples since `after(i)`, what its signal has seen, into the reused
    /// buffers; the problems of the fetches, by metric.
    fn gather(
        &mut self,
        after: impl Fn(usize) -> Ts,
        fetch: impl Fn(Source, Ts, &mut Vec<Sample>) -> Option<DataProblem>,
    ) -> [Option<DataProblem>; INPUTS] {
        let mut problems = [None; INPUTS];
        for (i, (source, buffer)) in self.sources.iter().zip(&mut self.buffers).enumerate().take(INPUTS) {
            buffer.clear();
            problems[i] = fetch(*source, after(i), buffer);
        }
        problems
    }

    /// The inputs of the last [`Driver::gather`], by metric.
    fn inputs<'b>(&'b self, problems: &[Option<DataProblem>; INPUTS]) -> Fetched<'b> {
        let n = self.buffers.len().min(INPUTS);
        let inputs: [MetricInput<'_>; INPUTS] = std::array::from_fn(|i| match self.buffers.get(i) {
            Some(b) => MetricInput { samples: b, problem: problems[i] },
            None => MetricInput { samples: &[], problem: None },
        });
        Fetched { inputs, n }
    }
}

/// Up to [`INPUTS`] metric inputs, without allocating.
struct Fetched<'b> {
    inputs: [MetricInput<'b>; INPUTS],
    n: usize,
}

impl<'b> std::ops::Deref for Fetched<'b> {
    type Target = [MetricInput<'b>];
    fn deref(&self) -> &[MetricInput<'b>] {
        &self.inputs[..self.n]
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
