//! The synthetic workload the decision core's speed is measured on (`simulate --bench` and
//! `cargo bench -p ebbflow-core --bench decide`): one policy, one deterministic load, one loop
//! through [`decide_into`]. Here so that both measure the same work; the timing is theirs (this
//! crate reads no clock).

use crate::decide::decide_into;
use crate::policy::{MetricPolicy, Pace, SpikePolicy};
use crate::signal::SignalState;
use crate::{Dur, Floor, Inputs, MetricInput, MetricKind, Policy, PolicyState, Sample, SmoothingKind, Ts};

/// A CPU policy on a cluster of 2-200 nodes with every rule on: headroom for noise, spikes,
/// fast-out slow-in steps and cooldowns.
pub fn policy(smoothing: SmoothingKind) -> Policy {
    Policy {
        min_size: 2,
        max_size: 200,
        metrics: vec![MetricPolicy {
            name: "cpu".into(),
            target: 0.6,
            kind: MetricKind::PerNode,
            smoothing,
            window: Dur::mins(10),
            max_age: Dur::mins(5),
            limit: 0.75,
            headroom_z: Some(1.645),
            guard: None,
            ceiling: None,
            ramp_t: Some(crate::ramp::RAMP_T),
        }],
        spike: Some(SpikePolicy { threshold: 3.0, min_rise: 0.2, sustained: 2, hold: Dur::mins(30) }),
        scale_out: Pace { cooldown: Dur::ZERO, stabilization: Dur::ZERO, step_nodes: Some(4), step_percent: Some(100) },
        scale_in: Pace {
            cooldown: Dur::mins(10),
            stabilization: Dur::mins(15),
            step_nodes: Some(1),
            step_percent: Some(10),
        },
        warmup: Dur::mins(3),
        tolerance: 0.1,
        interval: Dur::secs(60),
        mode: crate::Mode::Enforce,
        on_missing_data: crate::MissingDataPolicy::Hold,
        max_resizes_per_day: 1000,
        forecast: None,
        known: Default::default(),
    }
}

/// A deterministic, noisy, cyclic load with bursts, `n` samples one minute apart, in nodes of
/// work at 100 %.
pub fn load(n: usize) -> Vec<f64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x % 1000) as f64 / 1000.0 - 0.5;
            let day = (i as f64 / 1440.0 * std::f64::consts::TAU).sin();
            let burst = if i % 997 < 5 { 0.6 } else { 0.0 };
            (0.5 + 0.2 * day + 0.05 * noise + burst).max(0.0)
        })
        .collect()
}

/// Every sample through `decide`, in place (`decide_into`: the state and the outcome buffer are
/// kept, as the replay keeps them), resizing at once to what it decides. Returns the last state
/// and size.
pub fn drive(policy: &Policy, values: &[f64]) -> (PolicyState, u32) {
    let mut state = PolicyState::default();
    let mut outcomes = Vec::new();
    let mut size = 10u32;
    for (i, &v) in values.iter().enumerate() {
        let now = Ts(i as i64 * 60_000);
        let s = [Sample { at: now, value: v * 10.0 / size as f64 }];
        let input = [MetricInput { samples: &s, problem: None }];
        let inputs = Inputs {
            current: size,
            metrics: &input,
            floor: Floor::None,
            busy: false,
            serving: None,
            sizes: crate::SizeRule::Any,
        };
        let d = decide_into(policy, &mut state, &inputs, now, &mut outcomes);
        if d.desired != size {
            state.begin_resize(size, d.desired, None, now);
            state.finish_resize(now);
            size = d.desired;
        }
    }
    (state, size)
}

/// Every sample through one signal's smoothing and spike detection alone (the per-sample work;
/// `decide` runs once per tick on top of it). Returns the smoothed demand at the end.
pub fn signal_pass(policy: &Policy, values: &[f64]) -> Option<f64> {
    let (metric, spike) = (&policy.metrics[0], policy.spike.as_ref());
    let mut signal = SignalState::new(metric);
    for (i, &v) in values.iter().enumerate() {
        let s = [Sample { at: Ts(i as i64 * 60_000), value: v }];
        std::hint::black_box(signal.ingest(metric, spike, &s, |_, _, _| 10));
    }
    signal.smoothed_demand()
}

/// [`drive`] through the step machine (`crate::step`), as a replay drives it: every stage of an
/// evaluation (clock, settling, floor, gathering, decision, write) on a target that resizes at
/// once, each evaluation deciding in place into the previous one's decision. Returns the last
/// state and size.
pub fn drive_steps(policy: &Policy, values: &[f64]) -> (PolicyState, u32) {
    use crate::settle::Answer;
    use crate::step::{Evaluation, Next, Seen, Written};
    let mut decision = crate::Decision::none_yet(PolicyState::default());
    let mut size = 10u32;
    for (i, &v) in values.iter().enumerate() {
        let now = Ts(i as i64 * 60_000);
        let evaluation = Evaluation::start_in(policy, &mut decision, now);
        let seen = Seen { size, busy: false, sizes: crate::SizeRule::Any, serving: None };
        let gathering = evaluation.settle(Answer::NoOperation, seen).floor(crate::FloorInput::None);
        let s = [Sample { at: now, value: v * 10.0 / size as f64 }];
        let input = [MetricInput { samples: &s[..usize::from(gathering.after(0) < now)], problem: None }];
        let mut decided = gathering.decide_in_place(&input);
        if let Next::Write { to, .. } = decided.next() {
            decided.written(&Written::Done);
            size = to;
        }
    }
    (decision.state, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step machine adds stages around `decide`, not rules: on the same load it makes the same
    /// resizes, to the same sizes at the same times, as `decide` run in place. Fails if a stage
    /// changes what is decided (the bench would then compare two different workloads).
    #[test]
    fn the_step_machine_decides_as_decide_does() {
        let values = load(20_000);
        for kind in [SmoothingKind::Ema, SmoothingKind::Sma] {
            let policy = policy(kind);
            let (plain, plain_size) = drive(&policy, &values);
            let (stepped, stepped_size) = drive_steps(&policy, &values);
            assert!(plain.resizes.len() > 3, "the load resizes the target: {:?}", plain.resizes);
            assert_eq!(plain_size, stepped_size);
            assert_eq!(plain, stepped);
        }
    }

    /// The two slots decide alike evaluation by evaluation: the state moved through the stages
    /// (as the controller keeps it) and the previous decision overwritten in place (as a replay
    /// does) give equal decisions, verdict, outcomes and state, on every sample. Fails if
    /// deciding in place leaves a stale field of the decision before.
    #[test]
    fn owned_and_borrowed_slots_give_equal_decisions() {
        use crate::settle::Answer;
        use crate::step::{Evaluation, Next, Seen, Written};
        let policy = policy(SmoothingKind::Ema);
        let values = load(6_000);
        let mut owned = PolicyState::default();
        let mut borrowed = crate::Decision::none_yet(PolicyState::default());
        let (mut size, mut resizes) = (10u32, 0);
        for (i, &v) in values.iter().enumerate() {
            let now = Ts(i as i64 * 60_000);
            let seen = Seen { size, busy: false, sizes: crate::SizeRule::Any, serving: None };
            let s = [Sample { at: now, value: v * 10.0 / size as f64 }];
            let input = [MetricInput { samples: &s, problem: None }];
            let gathering =
                Evaluation::start(&policy, owned, now).settle(Answer::NoOperation, seen).floor(crate::FloorInput::None);
            let mut a = gathering.decide(&input);
            let gathering = Evaluation::start_in(&policy, &mut borrowed, now)
                .settle(Answer::NoOperation, seen)
                .floor(crate::FloorInput::None);
            let mut b = gathering.decide_in_place(&input);
            assert_eq!(a.next(), b.next(), "sample {i}");
            if let Next::Write { to, .. } = a.next() {
                a.written(&Written::Done);
                b.written(&Written::Done);
                size = to;
                resizes += 1;
            }
            assert_eq!(a.decision, *b.decision, "sample {i}");
            owned = a.decision.state;
        }
        assert!(resizes > 3, "the load resizes the target: {resizes}");
    }
}
