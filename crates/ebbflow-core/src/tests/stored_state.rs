//! A stored state is trusted no more than the samples it came from: timestamps from the future
//! never delay a scale-out, and values no sample could produce move nothing.

use super::fixtures::*;
use crate::forecast::{ForecastMode, ForecastPolicy, HOURS, Profile};
use crate::smoothing::Smoother;
use crate::state::ResizeRecord;
use crate::*;

/// The fixture policy with a Bigtable-like warm-up, a scale-out cooldown, and no scale-in
/// stabilization (so that scale-in waits on its cooldown alone).
fn skew_policy() -> Policy {
    let mut p = policy();
    p.warmup = dur("20m");
    p.scale_out.cooldown = dur("5m");
    p.scale_in.stabilization = dur("0s");
    p
}

/// A world that has held 9 nodes for half an hour at 0.57 per node (inside the dead band).
fn settled(p: Policy) -> World {
    let mut w = World::new(p, 9);
    w.now = 600;
    for _ in 0..30 {
        let d = w.step(0.57);
        assert!(!d.is_resize(), "{:?}", d.reason);
    }
    w
}

/// The settled world's state after a scale-out 6 -> 9 that finished at `t`.
fn scaled_out_at(w: &World, t: Ts) -> PolicyState {
    let mut s = w.state.clone();
    s.resizes = vec![ResizeRecord::new(6, 9, t)];
    s.last_resize_at = Some(t);
    s.last_scale_out_at = Some(t);
    s
}

/// A state written on a clock an hour ahead meets 48% overload: it scales out at once, as the
/// same state without skew does. Clamped to "now", its resize made the 9 nodes count as warming
/// (the samples were read as if 6 served, which put the load inside the dead band) and started
/// the scale-out cooldown again: it held.
#[test]
fn clock_skew_never_delays_a_scale_out() {
    let p = skew_policy();
    let w = settled(p.clone());
    let now = at(w.now + 1);
    let plain = scaled_out_at(&w, now - dur("60m"));
    let mut skewed = scaled_out_at(&w, now + dur("60m"));
    let hold = p.spike.map_or(Dur::ZERO, |s| s.hold);
    assert_eq!(skewed.clamp_future(now, hold), vec!["lastResizeAt", "lastScaleOutAt", "resizes"]);

    let overload = [Sample { at: now, value: 0.6 * 1.48 }];
    let input = [MetricInput { samples: &overload, problem: None }];
    let inputs =
        Inputs { current: 9, metrics: &input, floor: Floor::None, busy: false, serving: None, sizes: SizeRule::Any };
    let expected = decide(&p, plain, &inputs, now);
    assert_eq!((expected.reason, expected.direction()), (Reason::ScaleOut, Direction::Up), "{}", expected.message(&p));
    let d = decide(&p, skewed, &inputs, now);
    assert_eq!((d.reason, d.desired), (expected.reason, expected.desired), "{}", d.message(&p));
}

/// Slow in stays slow: under light load the skewed state waits the whole scale-in cooldown from
/// now, where the same state without skew (its resize an hour old) scales in at once.
#[test]
fn clock_skew_still_holds_scale_in_for_its_cooldown() {
    let p = skew_policy();
    let w = settled(p.clone());
    let now = at(w.now + 1);
    let plain = scaled_out_at(&w, now - dur("60m"));
    let mut skewed = scaled_out_at(&w, now + dur("60m"));
    skewed.clamp_future(now, dur("30m"));
    let first_scale_in = |state: PolicyState| {
        let mut v = World {
            policy: p.clone(),
            state,
            size: 9,
            now: w.now,
            floor: Floor::None,
            sizes: SizeRule::Any,
            serving: None,
        };
        v.run_demand(3.0, 20).iter().position(|d| d.reason == Reason::ScaleIn)
    };
    let plain_in = first_scale_in(plain).expect("the load asks for less");
    let skewed_in = first_scale_in(skewed).expect("the load asks for less, after the cooldown");
    assert!(plain_in < 10, "{plain_in}");
    // One decision a minute from `now`: the 10-minute cooldown counts from now.
    assert!(skewed_in >= 10, "{skewed_in}");
}

fn set_smoothed(s: &mut PolicyState, value: f64) {
    match &mut s.signals[0].smoother {
        Smoother::Ema { value: v, .. } => *v = Some(value),
        Smoother::Sma { .. } => panic!("the test policy smooths with an EMA"),
    }
}

/// Values no valid sample can leave in a state (a smoothed 1e308 scaled 9 -> 18 at once; NaN or
/// negative values and a negative deviation scaled in under load that sits in the dead band; a
/// resize history 50 times maxSize read every sample against 1,000 nodes) are reset to no
/// history: the size holds, as the real samples say.
#[test]
fn absurd_stored_values_move_nothing() {
    let mut p = policy();
    p.metrics[0].smoothing = SmoothingKind::Ema;
    // Without a stabilization window, a wrong recommendation downward acts at once too.
    p.scale_in.stabilization = dur("0s");
    type Poison = fn(&mut PolicyState);
    let cases: [(&str, Poison); 5] = [
        ("a smoothed value of 1e308", |s| set_smoothed(s, 1e308)),
        ("a NaN smoothed value", |s| set_smoothed(s, f64::NAN)),
        ("a negative smoothed value", |s| set_smoothed(s, -50.0)),
        ("a negative deviation", |s| s.signals[0].deviation = -1.0),
        ("a resize to 50 times maxSize", |s| {
            s.resizes = vec![ResizeRecord::new(9, 1_000, at(605))];
        }),
    ];
    for (what, poison) in cases {
        let mut w = settled(p.clone());
        poison(&mut w.state);
        // As a state read from status is: not yet checked.
        w.state.checked = Default::default();
        for _ in 0..5 {
            let d = w.step(0.57);
            assert!(!d.is_resize(), "{what}: {}", d.message(&w.policy));
        }
        assert_eq!(w.size, 9, "{what}");
    }
}

/// A forecast profile that lost hours (a hand-edited state) panicked on its first lookup (index
/// out of bounds), on every tick: it is learned afresh instead.
#[test]
fn a_malformed_forecast_profile_is_learned_afresh() {
    let mut p = policy();
    p.forecast = Some(ForecastPolicy { mode: ForecastMode::Report, lead: dur("30m") });
    let mut w = settled(p);
    w.state.signals[0].profile =
        Some(Box::new(Profile { peaks: vec![5.0; 24], seen: vec![2; 24], open: None, weight: 0.9 }));
    w.state.checked = Default::default();
    let d = w.step(0.57);
    assert!(!d.is_resize(), "{}", d.message(&w.policy));
    assert_eq!(w.state.signals[0].profile.as_ref().map(|f| f.peaks.len()), Some(HOURS));
}
