//! Builders for core tests: a spec with every knob at a readable value, and a driver that feeds
//! one sample per tick.

use crate::api::*;
use crate::core::*;

/// A per-node CPU policy: target 0.6, 5m SMA, min 2, max 20, fast out, slow in.
pub fn spec() -> ScalePolicySpec {
    ScalePolicySpec {
        target: TargetRef::Workload(WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
        }),
        min_size: 2,
        max_size: 20,
        metrics: vec![MetricSpec {
            name: "cpu".into(),
            query: MonitoringQuery {
                project: Some("p".into()),
                filter: "metric.type=\"x\"".into(),
                alignment_period: "60s".into(),
                per_series_aligner: "ALIGN_MEAN".into(),
                cross_series_reducer: None,
                group_by_fields: vec![],
            },
            target: 0.6,
            kind: MetricKind::PerNode,
            smoothing: Smoothing { kind: SmoothingKind::Sma, window: "5m".into() },
            max_data_age: "3m".into(),
        }],
        spike: SpikeSpec::default(),
        scale_out: ScaleOutRules { warmup: Some("0s".into()), ..ScaleOutRules::default() },
        scale_in: ScaleInRules::default(),
        tolerance: 0.1,
        interval: "60s".into(),
        mode: Mode::Enforce,
        on_missing_data: MissingDataPolicy::Hold,
        max_resizes_per_day: 100,
    }
}

pub fn policy_of(spec: &ScalePolicySpec) -> Policy {
    Policy::from_spec(spec).expect("valid fixture spec")
}

pub fn policy() -> Policy {
    policy_of(&spec())
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
}

impl World {
    pub fn new(policy: Policy, size: u32) -> World {
        World { policy, state: PolicyState::default(), size, now: 0, floor: Floor::None }
    }

    /// Advance one minute, offer one sample of `value` measured now, decide, and apply.
    pub fn step(&mut self, value: f64) -> Decision {
        let samples = [Sample { at: at(self.now + 1), value }];
        self.step_with(&samples, None)
    }

    /// Advance one minute and decide on exactly these samples (may be empty).
    pub fn step_with(&mut self, samples: &[Sample], problem: Option<DataProblem>) -> Decision {
        self.now += 1;
        let input = [MetricInput { samples, problem }];
        let inputs = Inputs { current: self.size, metrics: &input, floor: self.floor, busy: false };
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
