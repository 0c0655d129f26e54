//! Builders for core tests: a policy with every knob at a readable value, and a driver that feeds
//! one sample per tick.

use crate::policy::{MetricPolicy, Pace, SpikePolicy};
use crate::*;

/// A per-node CPU policy: target 0.6, 5m SMA, min 2, max 20, fast out, slow in (the spec
/// defaults, with no warm-up).
pub fn policy() -> Policy {
    Policy {
        min_size: 2,
        max_size: 20,
        metrics: vec![MetricPolicy {
            name: "cpu".into(),
            target: 0.6,
            kind: MetricKind::PerNode,
            smoothing: SmoothingKind::Sma,
            window: Dur::mins(5),
            max_age: Dur::mins(3),
            limit: 0.75,
            headroom_z: Some(crate::policy::normal_quantile(0.975)),
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
        warmup: Dur::ZERO,
        tolerance: 0.1,
        interval: Dur::secs(60),
        mode: Mode::Enforce,
        on_missing_data: MissingDataPolicy::Hold,
        max_resizes_per_day: 100,
        forecast: None,
        known: Default::default(),
    }
}

pub fn at(min: i64) -> Ts {
    Ts(min * 60_000)
}

/// A small closed-loop world: the target resizes instantly when asked.
pub struct World {
    pub policy: Policy,
    pub state: PolicyState,
    pub size: u32,
    pub now: i64,
    pub floor: Floor,
    /// The sizes the target can take.
    pub sizes: SizeRule,
    /// The capacity serving when it is not `size` (a steered autoscaler's live size).
    pub serving: Option<u32>,
}

impl World {
    pub fn new(policy: Policy, size: u32) -> World {
        World {
            policy,
            state: PolicyState::default(),
            size,
            now: 0,
            floor: Floor::None,
            sizes: SizeRule::Any,
            serving: None,
        }
    }

    /// An hour of steady load at about half of each node, a sample a minute, scattered a little
    /// so that the signal knows its noise: the start of the spike and saturation rules' tests.
    pub fn steady_hour(&mut self) {
        for i in 0..60 {
            self.step(0.5 + 0.01 * (i % 3) as f64);
        }
    }

    /// Advance one minute, offer one sample of `value` measured now, decide, and apply.
    pub fn step(&mut self, value: f64) -> Decision {
        let samples = [Sample { at: at(self.now + 1), value }];
        self.step_with(&samples, None)
    }

    /// Advance one minute, offer one sample per metric (in policy order) measured now, decide,
    /// and apply.
    pub fn step_each(&mut self, values: &[f64]) -> Decision {
        let samples: Vec<[Sample; 1]> = values.iter().map(|&value| [Sample { at: at(self.now + 1), value }]).collect();
        let inputs: Vec<MetricInput<'_>> = samples.iter().map(|s| MetricInput { samples: s, problem: None }).collect();
        self.step_inputs(&inputs)
    }

    /// Advance one minute and decide on exactly these per-metric inputs.
    pub fn step_inputs(&mut self, input: &[MetricInput<'_>]) -> Decision {
        self.now += 1;
        let inputs = Inputs {
            current: self.size,
            metrics: input,
            floor: self.floor,
            busy: false,
            serving: self.serving,
            sizes: self.sizes,
        };
        let d = decide(&self.policy, std::mem::take(&mut self.state), &inputs, at(self.now));
        self.state = d.state.clone();
        if d.is_resize() {
            self.state.begin_resize(d.current, d.desired, None, at(self.now));
            self.state.finish_resize(at(self.now));
            self.size = d.desired;
        }
        d
    }

    /// Advance one minute and decide on exactly these samples (may be empty).
    pub fn step_with(&mut self, samples: &[Sample], problem: Option<DataProblem>) -> Decision {
        self.now += 1;
        let input = [MetricInput { samples, problem }];
        let inputs = Inputs {
            current: self.size,
            metrics: &input,
            floor: self.floor,
            busy: false,
            serving: self.serving,
            sizes: self.sizes,
        };
        let d = decide(&self.policy, std::mem::take(&mut self.state), &inputs, at(self.now));
        self.state = d.state.clone();
        if d.is_resize() {
            self.state.begin_resize(d.current, d.desired, None, at(self.now));
            self.state.finish_resize(at(self.now));
            self.size = d.desired;
        }
        d
    }

    /// Run `minutes` steps at a per-node value that corresponds to `demand` nodes' worth of load
    /// at 100% (value = demand / size), as a closed loop would observe it.
    pub fn run_demand(&mut self, demand: f64, minutes: usize) -> Vec<Decision> {
        (0..minutes)
            .map(|_| {
                let v = demand / self.size as f64;
                self.step(v)
            })
            .collect()
    }
}

/// Deterministic noise: a fixed pseudo-random sequence in [-1, 1], the same in every test.
pub fn noise(i: usize) -> f64 {
    let x = ((i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33) as f64;
    (x / (1u64 << 31) as f64) * 2.0 - 1.0
}

/// A duration from its text, e.g. "5m".
pub fn dur(text: &str) -> Dur {
    Dur::parse(text).expect("valid duration")
}
