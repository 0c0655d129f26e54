//! A replay allocates nothing per evaluation once warmed up (issue 23): the driver reuses its
//! sample buffers, each evaluation decides in place into the previous decision (its state and
//! outcome vector carried on, not copied), and the world is plain data. Counted by the test
//! binary's global allocator, per thread (`alloc-count`).

use ebbflow::core::step::Next;
use ebbflow::core::{Decision, PolicyState, Ts};
use ebbflow::sim::Scenario;
use ebbflow::sim::drive::Driver;
use ebbflow::sim::scenario::ScenarioFile;

fn scenario(name: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/scenarios").join(name);
    Scenario::build(ScenarioFile::load(&path).expect("bundled scenario")).expect("valid scenario")
}

/// Every evaluation of two days of a bundled minute-level replay (after a day of warm-up), with
/// the world's faults on: those that neither write a resize nor settle one allocate nothing. A
/// write names an operation and a finished resize enters the history; both are rare.
#[test]
fn a_replay_evaluation_allocates_nothing_after_warm_up() {
    for name in ["rds-noisy-1m.yaml", "taxi-noisy-1m.yaml", "ec2-noisy-midload.yaml"] {
        let sc = scenario(name);
        let mut world = ebbflow::sim::sim(&sc);
        let mut driver = Driver::for_scenario(&sc, &world);
        let mut decision = Decision::none_yet(PolicyState::default());
        let (start, _) = sc.trace.span();
        let step = sc.policy.interval;
        let (mut quiet, mut busy, mut allocating) = (0u32, 0u32, Vec::new());
        for k in 0..3 * 1440 {
            let now = Ts(start.0 + k * step.0);
            world.advance(now);
            let before = alloc_count::allocations();
            let decided = driver.evaluate(&sc.policy, &mut decision, &mut world, now);
            let made = alloc_count::allocations() - before;
            let wrote = matches!(decided.next(), Next::Write { .. });
            let settled =
                decided.operation.as_ref().is_some_and(|o| *o != ebbflow::core::settle::OperationOutcome::Running);
            if k < 1440 {
                continue;
            }
            if wrote || settled {
                busy += 1;
            } else {
                quiet += 1;
                if made > 0 {
                    allocating.push((now, made));
                }
            }
        }
        assert!(quiet > 2000, "{name}: {quiet} quiet evaluations, {busy} that wrote or settled");
        assert!(
            allocating.is_empty(),
            "{name}: {} of {quiet} quiet evaluations allocated: {:?}",
            allocating.len(),
            &allocating[..allocating.len().min(5)]
        );
    }
}
