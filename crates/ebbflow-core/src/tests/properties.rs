//! Property tests of the invariants every decision must keep, whatever the history.

use proptest::prelude::*;

use super::fixtures::*;
use crate::*;

/// A random but valid policy.
fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        1u32..5,
        5u32..40,
        prop::bool::ANY,
        1u32..30,
        prop::option::of(1u32..6),
        prop::option::of(5u32..200),
        0u32..20,
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(min, max, ema, window, step_nodes, step_pct, cooldown_in, spike, out_only)| {
            let mut s = policy();
            s.min_size = min;
            s.max_size = max;
            s.metrics[0].smoothing = if ema { SmoothingKind::Ema } else { SmoothingKind::Sma };
            s.metrics[0].window = Dur::mins(i64::from(window));
            s.scale_in.step_nodes = step_nodes;
            s.scale_in.step_percent = step_pct;
            s.scale_out.step_nodes = step_nodes;
            s.scale_out.step_percent = step_pct;
            s.scale_in.cooldown = Dur::mins(i64::from(cooldown_in));
            if !spike {
                s.spike = None;
            }
            s.on_missing_data = if out_only { MissingDataPolicy::ScaleOutOnly } else { MissingDataPolicy::Hold };
            s
        })
}

/// One tick's input: a value, or a data fault.
#[derive(Debug, Clone, Copy)]
enum Tick {
    Value(f64),
    Nothing,
    Nan,
    Partial(f64),
}

fn arb_tick() -> impl Strategy<Value = Tick> {
    prop_oneof![
        8 => (0.0f64..3.0).prop_map(Tick::Value),
        1 => Just(Tick::Nothing),
        1 => Just(Tick::Nan),
        1 => (0.0f64..3.0).prop_map(Tick::Partial),
    ]
}

fn input_of(tick: Tick, now: i64) -> (Vec<Sample>, Option<DataProblem>) {
    match tick {
        Tick::Value(v) => (vec![Sample { at: at(now), value: v }], None),
        Tick::Nothing => (vec![], None),
        Tick::Nan => (vec![Sample { at: at(now), value: f64::NAN }], None),
        Tick::Partial(v) => (vec![Sample { at: at(now), value: v }], Some(DataProblem::Partial)),
    }
}

/// Drive a world through `ticks`, checking `check` on every decision.
fn drive(policy: Policy, start: u32, ticks: &[Tick], mut check: impl FnMut(&World, &Decision, Tick)) -> World {
    let mut w = World::new(policy, start);
    for &t in ticks {
        let (samples, problem) = input_of(t, w.now + 1);
        let before = w.state.clone();
        let d = w.step_with(&samples, problem);
        let snapshot = World {
            policy: w.policy.clone(),
            state: before,
            size: d.current,
            now: w.now,
            floor: w.floor,
            sizes: w.sizes,
            serving: w.serving,
        };
        check(&snapshot, &d, t);
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn size_never_leaves_min_max(policy in arb_policy(), ticks in prop::collection::vec(arb_tick(), 1..120)) {
        let start = (policy.min_size + policy.max_size) / 2;
        drive(policy, start, &ticks, |w, d, _| {
            assert!(d.desired >= w.policy.min_size && d.desired <= w.policy.max_size, "{} not in [{}, {}]", d.desired, w.policy.min_size, w.policy.max_size);
        });
    }

    #[test]
    fn no_scale_in_inside_cooldown_or_spike_hold(policy in arb_policy(), ticks in prop::collection::vec(arb_tick(), 1..120)) {
        let start = policy.max_size;
        drive(policy, start, &ticks, |w, d, _| {
            if d.direction() == Direction::Down {
                let now = d.at;
                if let Some(last) = w.state.last_resize_at {
                    assert!(now >= last + w.policy.scale_in.cooldown, "scale-in inside cooldown");
                }
                if let Some(hold) = w.state.spike_hold_until {
                    assert!(now >= hold, "scale-in inside spike hold");
                }
            }
        });
    }

    #[test]
    fn bad_data_never_lowers_the_size(policy in arb_policy(), ticks in prop::collection::vec(arb_tick(), 1..120)) {
        let start = policy.max_size;
        drive(policy, start, &ticks, |_, d, t| {
            if matches!(t, Tick::Nothing | Tick::Nan | Tick::Partial(_)) {
                assert!(d.direction() != Direction::Down, "{:?} lowered the size on {t:?}", d.reason);
            }
        });
    }

    /// More load never asks for less. The load is sustained for two samples: a single sample far
    /// out of line with recent ones is held back until the next confirms it (see
    /// `core::signal`), and from the second sample on the move counts exactly as if it had not
    /// been held.
    #[test]
    fn more_load_never_asks_for_less(policy in arb_policy(), ticks in prop::collection::vec(arb_tick(), 1..60), v in 0.0f64..3.0, extra in 0.0f64..2.0) {
        let start = (policy.min_size + policy.max_size) / 2;
        let w = drive(policy, start, &ticks, |_, _, _| {});
        let now = at(w.now + 2);
        let decide_on = |value: f64| {
            let s = [Sample { at: at(w.now + 1), value }, Sample { at: now, value }];
            let input = [MetricInput { samples: &s, problem: None }];
            decide(&w.policy, w.state.clone(), &Inputs { current: w.size, metrics: &input, floor: Floor::None, busy: false, serving: None, sizes: SizeRule::Any }, now)
        };
        let low = decide_on(v);
        let high = decide_on(v + extra);
        assert!(high.desired >= low.desired, "{} at {v} but {} at {}", low.desired, high.desired, v + extra);
    }

    #[test]
    fn same_inputs_same_decision(policy in arb_policy(), ticks in prop::collection::vec(arb_tick(), 1..80)) {
        let start = policy.min_size;
        let a = drive(policy.clone(), start, &ticks, |_, _, _| {});
        let b = drive(policy, start, &ticks, |_, _, _| {});
        assert_eq!(a.state, b.state);
        assert_eq!(a.size, b.size);
    }

    #[test]
    fn a_step_never_exceeds_its_limit(policy in arb_policy(), ticks in prop::collection::vec(arb_tick(), 1..120)) {
        let start = (policy.min_size + policy.max_size) / 2;
        drive(policy, start, &ticks, |w, d, _| {
            let in_range = d.current >= w.policy.min_size && d.current <= w.policy.max_size;
            match d.direction() {
                Direction::Up if in_range => assert!(d.desired - d.current <= w.policy.scale_out.max_step(d.current, true)),
                Direction::Down if in_range => assert!(d.current - d.desired <= w.policy.scale_in.max_step(d.current, false)),
                _ => {}
            }
        });
    }
}

/// Any `f64` at all, weighted toward the ones that break arithmetic.
fn arb_any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::num::f64::ANY,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(-0.0),
        1 => 3.0e307f64..f64::MAX,
        3 => 0.0f64..3.0,
    ]
}

proptest! {
    /// No input ever puts a non-finite number in the state, or leaves a signal a check would
    /// reset, and the stored state always reads back as it was.
    #[test]
    fn no_input_puts_a_non_finite_number_in_the_state(
        policy in arb_policy(),
        values in prop::collection::vec(prop::collection::vec(arb_any_f64(), 0..4), 1..80),
        size in 1u32..60,
    ) {
        let mut state = PolicyState::default();
        for (minute, tick) in values.iter().enumerate() {
            let samples: Vec<Sample> = tick
                .iter()
                .enumerate()
                .map(|(i, v)| Sample { at: Ts(minute as i64 * 60_000 + i as i64 * 10_000), value: *v })
                .collect();
            let input = [MetricInput { samples: &samples, problem: None }];
            let now = Ts(minute as i64 * 60_000 + 50_000);
            let d = decide(&policy, state, &Inputs { current: size, metrics: &input, floor: Floor::None, busy: false, serving: None, sizes: SizeRule::Any }, now);
            state = d.state;
            // A state the core keeps is not checked again (`PolicyState::checked`): its own
            // updates must leave every signal as plausible as a check would demand.
            for s in &state.signals {
                prop_assert!(s.is_plausible(), "{s:?}");
                prop_assert!(s.profile.as_ref().is_none_or(|p| p.is_plausible()), "{s:?}");
            }
            // Stored as JSON, a NaN or an infinity becomes `null`, and the next start failed to
            // read it ("invalid type: null, expected f64"). Debug prints them as NaN / inf.
            let dbg = format!("{state:?}");
            let bad = dbg.split(|c: char| !c.is_ascii_alphanumeric()).find(|t| *t == "NaN" || *t == "inf");
            prop_assert!(bad.is_none(), "{dbg}");
            let json = serde_json::to_string(&state).expect("serializes");
            let back: Result<PolicyState, _> = serde_json::from_str(&json);
            prop_assert!(back.is_ok(), "{json}");
        }
    }
}

/// Rules a target may have: every size, per-zone multiples, a Spanner-like ladder (scaled down
/// so it matters at the sizes the policies here reach).
fn arb_rule() -> impl Strategy<Value = SizeRule> {
    prop_oneof![
        1 => Just(SizeRule::Any),
        3 => (2u32..5).prop_map(SizeRule::Multiple),
        1 => Just(SizeRule::Ladder { fine: 2, threshold: 10, coarse: 5 }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the load, the floor and the bounds, a resize only ever asks for a size the
    /// target can take, inside [minSize, maxSize]; and so the state only records such sizes.
    #[test]
    fn decide_never_asks_for_an_unreachable_size(
        policy in arb_policy(),
        sizes in arb_rule(),
        start in 1u32..45,
        floor in prop::option::of(1u32..45),
        ticks in prop::collection::vec(arb_tick(), 1..120),
    ) {
        let mut w = World::new(policy, start);
        w.sizes = sizes;
        w.floor = floor.map_or(Floor::None, Floor::Nodes);
        for &t in &ticks {
            let (samples, problem) = input_of(t, w.now + 1);
            let d = w.step_with(&samples, problem);
            if d.is_resize() {
                prop_assert!(sizes.allows(d.desired), "{sizes:?} cannot take {} ({:?})", d.desired, d.reason);
                prop_assert!(
                    d.desired >= w.policy.min_size && d.desired <= w.policy.max_size,
                    "{} not in [{}, {}]", d.desired, w.policy.min_size, w.policy.max_size
                );
            }
            for r in &w.state.resizes {
                prop_assert!(sizes.allows(r.to), "the state recorded {} under {sizes:?}", r.to);
            }
        }
    }
}
