//! One test per decision rule.

use super::fixtures::*;
use crate::*;

#[test]
fn load_above_the_dead_band_scales_out_to_the_needed_size() {
    let mut w = World::new(policy(), 4);
    // 4 nodes at 0.9 = 3.6 nodes of work; landing in the middle of the band (0.57 per node)
    // needs ceil(3.6 / 0.57) = 7 nodes.
    let ds: Vec<_> = (0..3).map(|_| w.step(0.9)).collect();
    let out = ds.iter().find(|d| d.is_resize()).expect("a scale-out");
    assert_eq!(out.reason, Reason::ScaleOut);
    assert_eq!(out.desired, 7);
}

#[test]
fn inside_the_dead_band_nothing_moves() {
    let mut w = World::new(policy(), 5);
    for _ in 0..30 {
        let d = w.step(0.56); // 6.7% under target, inside the 10% band under it
        assert!(!d.is_resize(), "{:?}", d.reason);
    }
    assert_eq!(w.step(0.56).reason, Reason::WithinTolerance);
}

#[test]
fn the_target_is_a_ceiling() {
    let mut w = World::new(policy(), 5);
    // 3% over target is outside the band: scale out even though it is "close".
    let d = (0..3).map(|_| w.step(0.618)).find(|d| d.is_resize()).expect("scale-out");
    assert_eq!(d.reason, Reason::ScaleOut);
    // 5 x 0.618 = 3.09 nodes of work; ceil(3.09 / 0.57) = 6.
    assert_eq!(d.desired, 6);
}

#[test]
fn scale_in_waits_for_the_whole_stabilization_window() {
    let mut p = policy();
    p.scale_in.cooldown = dur("0s");
    p.spike = None;
    let mut w = World::new(p, 10);
    // Settle at target, then load drops to half.
    w.run_demand(6.0, 20);
    let ds = w.run_demand(3.0, 30);
    let first_in = ds.iter().position(|d| d.reason == Reason::ScaleIn).expect("scale-in eventually");
    // The 15m window must be full of lower recommendations first.
    assert!(first_in >= 15, "scaled in after {first_in} minutes");
    assert!(ds[..first_in].iter().all(|d| !d.is_resize()));
}

#[test]
fn scale_in_is_limited_to_its_step() {
    let mut p = policy();
    p.scale_in.cooldown = dur("0s");
    p.scale_in.stabilization = dur("0s");
    p.scale_in.step_nodes = Some(1);
    p.scale_in.step_percent = Some(10);
    p.spike = None;
    let mut w = World::new(p, 20);
    let ds = w.run_demand(1.0, 10);
    for d in ds.iter().filter(|d| d.reason == Reason::ScaleIn) {
        // 10% of 20 is 2 nodes, more than maxStepNodes 1: the larger step is allowed.
        assert!(d.current - d.desired <= (d.current / 10).max(1), "{} -> {}", d.current, d.desired);
    }
}

#[test]
fn scale_out_is_limited_to_its_step() {
    let mut p = policy();
    p.scale_out.step_nodes = Some(2);
    p.scale_out.step_percent = None;
    let mut w = World::new(p, 4);
    let d = (0..5).map(|_| w.step(1.0)).find(|d| d.is_resize()).unwrap();
    assert_eq!(d.desired, 6);
    assert_eq!(d.limited_by, Some(Limit::Step));
}

#[test]
fn scale_in_cooldown_counts_from_the_last_resize() {
    let mut p = policy();
    p.scale_in.cooldown = dur("10m");
    p.scale_in.stabilization = dur("0s");
    p.spike = None;
    let mut w = World::new(p, 4);
    let ds = w.run_demand(6.0, 6); // scale out to ~10
    let out_at = ds.iter().position(|d| d.is_resize()).unwrap() as i64 + 1;
    let ds = w.run_demand(2.0, 20);
    let first_in = ds.iter().find(|d| d.reason == Reason::ScaleIn).unwrap();
    // Cooldown 10m after the scale-out, and the 5m smoothing window after warm-up (0s here).
    assert!(first_in.at >= at(out_at + 10), "{:?}", first_in.at);
    assert!(ds.iter().any(|d| d.reason == Reason::ScaleInCooldown));
}

#[test]
fn a_sustained_spike_scales_out_at_once_on_the_raw_value() {
    let mut p = policy();
    p.metrics[0].window = dur("30m");
    let mut w = World::new(p, 5);
    w.steady_hour();
    let a = w.step(1.8);
    assert!(!a.is_resize(), "one sample is not sustained: {:?}", a.reason);
    let b = w.step(1.8);
    assert_eq!(b.reason, Reason::ScaleOutOnSpike);
    // 5 nodes x 1.8 = 9 nodes of work at 100%; at 0.6 that needs 15; step limit is 100% or 4.
    assert_eq!(b.desired, 10);
    assert!(b.state.spike_hold_until.is_some());
}

/// Through `decide`: a five-minute sample beyond the limit on the nodes serving is a spike at
/// once; the same value a minute long, or a five-minute one the nodes carry under the limit,
/// waits for a second sample.
#[test]
fn a_five_minute_sample_beyond_the_limit_scales_out_on_a_spike_at_once() {
    let first_high = |every: i64, value: f64| {
        let mut p = policy();
        p.metrics[0].max_age = dur("10m");
        let mut w = World::new(p, 4);
        let sample = |w: &mut World, v: f64| {
            let d = w.step_with(&[Sample { at: at(w.now + 1), value: v }], None);
            for _ in 1..every {
                w.step_with(&[], None);
            }
            d
        };
        for i in 0..60 {
            sample(&mut w, 0.5 + 0.01 * (i % 3) as f64);
        }
        sample(&mut w, value)
    };
    // The limit is 0.75 per node.
    assert_eq!(first_high(5, 0.9).reason, Reason::ScaleOutOnSpike);
    assert_ne!(first_high(1, 0.9).reason, Reason::ScaleOutOnSpike, "one minute is not sustained");
    assert_ne!(first_high(5, 0.7).reason, Reason::ScaleOutOnSpike, "under the limit: a second sample");
}

/// A spike is sized as any scale-out: for the middle of the band, with the noise's headroom,
/// where the top of the band left ordinary scatter above the target from the start.
#[test]
fn a_spike_is_sized_for_the_middle_of_the_band() {
    let mut p = policy();
    p.metrics[0].window = dur("30m");
    (p.scale_out.step_nodes, p.scale_out.step_percent) = (None, None);
    let mut w = World::new(p, 5);
    w.steady_hour();
    w.step(1.2);
    let spike = w.step(1.2);
    assert_eq!(spike.reason, Reason::ScaleOutOnSpike);
    // 5 nodes x 1.2 = 6 nodes of work: 6 / 0.6 = 10 nodes put it at the target, the top of the
    // band; 6 / (0.6 x 0.95) = 10.5 in its middle.
    assert_eq!(spike.desired, 11);
    let after = w.run_demand(6.0, 40);
    assert!(after.iter().all(|d| d.direction() != Direction::Up), "{:?}", after.iter().find(|d| d.is_resize()));
}

/// A full node reads its ceiling however much load waits: the first saturated sample sizes the
/// target from itself, where the average of it with the samples before lags behind; a metric
/// with no ceiling, or a value far above it (no capped reading), is averaged as before.
#[test]
fn a_saturated_sample_sizes_from_itself() {
    let first_saturated = |ceiling: Option<f64>, value: f64| {
        let mut p = policy();
        p.spike = None;
        p.metrics[0].ceiling = ceiling;
        let mut w = World::new(p, 4);
        w.steady_hour();
        w.step(value)
    };
    let d = first_saturated(Some(1.0), 1.0);
    assert_eq!(d.reason, Reason::ScaleOut);
    // 4 nodes full is at least 4 nodes of work: 4 / (0.6 x 0.95) asks for 8 (and the step of
    // 100 % allows it).
    assert_eq!(d.desired, 8);
    let averaged = first_saturated(None, 1.0);
    assert!(averaged.desired < 8, "no ceiling: the average sizes, {:?} to {}", averaged.reason, averaged.desired);
    let beyond = first_saturated(Some(1.0), 1.6);
    assert!(beyond.desired < 8, "1.6 is no capped reading: {:?} to {}", beyond.reason, beyond.desired);
}

#[test]
fn spike_hold_blocks_scale_in() {
    let mut p = policy();
    p.scale_in.cooldown = dur("0s");
    p.scale_in.stabilization = dur("0s");
    p.warmup = dur("0s");
    p.spike.as_mut().expect("spike on").hold = dur("30m");
    let mut w = World::new(p, 5);
    w.steady_hour();
    w.step(1.8);
    let spike = w.step(1.8);
    assert_eq!(spike.reason, Reason::ScaleOutOnSpike);
    let ds = w.run_demand(1.0, 25);
    assert!(ds.iter().all(|d| d.direction() != Direction::Down));
    assert!(ds.iter().any(|d| d.reason == Reason::SpikeHold));
}

#[test]
fn missing_stale_and_nan_data_hold_the_size() {
    let mut w = World::new(policy(), 8);
    w.run_demand(4.8, 10);
    let size = w.size;
    // No samples for long enough to go stale.
    let mut reasons = Vec::new();
    for _ in 0..5 {
        reasons.push(w.step_with(&[], None).reason);
    }
    assert_eq!(*reasons.last().unwrap(), Reason::MissingData);
    let nan = [Sample { at: at(w.now + 1), value: f64::NAN }];
    let d = w.step_with(&nan, None);
    assert_eq!(d.reason, Reason::MissingData);
    assert_eq!(d.metrics[0].missing, Some(Missing::Invalid));
    let partial = [Sample { at: at(w.now + 1), value: 0.01 }];
    let d = w.step_with(&partial, Some(DataProblem::Partial));
    assert_eq!(d.reason, Reason::MissingData);
    assert_eq!(w.size, size);
}

#[test]
fn scale_out_only_lets_healthy_metrics_scale_out_but_never_in() {
    let mut p = policy();
    let mut second = p.metrics[0].clone();
    second.name = "rps".into();
    p.metrics.push(second);
    p.on_missing_data = MissingDataPolicy::ScaleOutOnly;
    p.scale_in.cooldown = dur("0s");
    p.scale_in.stabilization = dur("0s");
    let policy = p;
    let mut state = PolicyState::default();
    let mut now = 0;
    let mut size = 4;
    let mut last = None;
    // Load worth 4.8 nodes at 100%, then 0.2: per-node values fall as the policy adds nodes.
    for load in [[4.8; 10], [0.2; 10]].concat() {
        now += 1;
        let good = [Sample { at: at(now), value: load / size as f64 }];
        let inputs = [
            MetricInput { samples: &good, problem: None },
            MetricInput { samples: &[], problem: Some(DataProblem::QueryFailed) },
        ];
        let d = decide(
            &policy,
            state,
            &Inputs {
                current: size,
                metrics: &inputs,
                floor: Floor::None,
                busy: false,
                serving: None,
                sizes: SizeRule::Any,
            },
            at(now),
        );
        state = d.state.clone();
        if d.is_resize() {
            assert_eq!(d.direction(), Direction::Up);
            state.begin_resize(size, d.desired, None, at(now));
            state.finish_resize(at(now));
            size = d.desired;
        }
        last = Some(d);
    }
    assert!(size > 4, "scaled out on the healthy metric");
    assert_eq!(last.unwrap().reason, Reason::MissingData);
}

#[test]
fn bounds_apply_whatever_the_metrics_say() {
    let mut w = World::new(policy(), 1);
    assert_eq!(w.step(0.0).reason, Reason::RaiseToMinSize);
    assert_eq!(w.size, 2);
    let mut w = World::new(policy(), 30);
    let d = w.step(0.6);
    assert_eq!((d.reason, d.desired), (Reason::LowerToMaxSize, 20));
    let mut w = World::new(policy(), 20);
    let d = (0..4).map(|_| w.step(1.0)).last().unwrap();
    assert_eq!((d.reason, d.limited_by), (Reason::AtMaxSize, Some(Limit::MaxSize)));
}

#[test]
fn storage_floor_blocks_scale_in_and_unknown_floor_blocks_it_too() {
    let mut p = policy();
    p.scale_in.cooldown = dur("0s");
    p.scale_in.stabilization = dur("0s");
    let mut w = World::new(p, 10);
    w.floor = Floor::Nodes(9);
    let ds = w.run_demand(1.0, 5);
    assert_eq!(w.size, 9);
    assert!(ds.iter().any(|d| d.reason == Reason::AtStorageFloor));
    w.floor = Floor::Unknown;
    let d = w.run_demand(1.0, 3).pop().unwrap();
    assert_eq!(d.reason, Reason::StorageFloorUnknown);
    w.floor = Floor::Nodes(12);
    assert_eq!(w.step(0.1).reason, Reason::RaiseToStorageFloor);
    assert_eq!(w.size, 12);
}

#[test]
fn a_resize_in_flight_blocks_further_resizes() {
    let p = policy();
    let mut state = PolicyState::default();
    state.begin_resize(4, 6, Some("operations/1".into()), at(0));
    let s = [Sample { at: at(1), value: 1.0 }];
    let input = [MetricInput { samples: &s, problem: None }];
    let d = decide(
        &p,
        state,
        &Inputs { current: 4, metrics: &input, floor: Floor::None, busy: false, serving: None, sizes: SizeRule::Any },
        at(1),
    );
    assert_eq!(d.reason, Reason::ResizeInProgress);
    assert!(!d.is_resize());
}

#[test]
fn the_daily_budget_stops_resizes_and_says_until_when() {
    let mut p = policy();
    p.max_resizes_per_day = 2;
    p.scale_out.step_nodes = Some(1);
    p.scale_out.step_percent = None;
    let mut w = World::new(p, 2);
    let ds = w.run_demand(10.0, 5);
    assert_eq!(ds.iter().filter(|d| d.is_resize()).count(), 2);
    let blocked = ds.iter().find(|d| d.reason == Reason::ResizeBudgetExhausted).unwrap();
    assert_eq!(blocked.wait_until, Some(at(1) + state::BUDGET_SPAN));
    assert!(blocked.message(&w.policy).contains("2 resizes per day"));
}

#[test]
fn dry_run_and_enforce_decide_alike_and_paused_does_nothing() {
    let mut dry = policy();
    dry.mode = Mode::DryRun;
    let mut a = World::new(policy(), 4);
    let mut b = World::new(dry, 4);
    for _ in 0..3 {
        assert_eq!(a.step(0.9).desired, b.step(0.9).desired);
    }
    let mut paused = policy();
    paused.mode = Mode::Paused;
    let mut c = World::new(paused, 4);
    assert!((0..5).all(|_| c.step(2.0).reason == Reason::Paused));
}

#[test]
fn warmup_reads_samples_during_it_as_load_on_the_old_size() {
    // With 20m warm-up, a per-node value that stays high right after scale-out (the new nodes do
    // not carry load yet) must not trigger a second scale-out for the same load.
    let mut p = policy();
    p.warmup = dur("20m");
    p.spike = None;
    p.metrics[0].smoothing = SmoothingKind::Ema;
    let mut w = World::new(p, 4);
    let first = (0..10).map(|_| w.step(0.9)).find(|d| d.is_resize()).unwrap();
    assert_eq!(first.desired, 7);
    // The old 4 nodes still carry all the work: the per-node value stays 0.9.
    let ds: Vec<_> = (0..15).map(|_| w.step(0.9)).collect();
    assert!(ds.iter().all(|d| !d.is_resize()), "{:?}", ds.iter().map(|d| d.reason).collect::<Vec<_>>());
}

#[test]
fn state_survives_a_round_trip_and_decides_the_same() {
    let mut w = World::new(policy(), 4);
    w.run_demand(5.0, 30);
    let json = serde_json::to_string(&w.state).unwrap();
    let restored: PolicyState = serde_json::from_str(&json).unwrap();
    let s = [Sample { at: at(w.now + 1), value: 0.2 }];
    let input = [MetricInput { samples: &s, problem: None }];
    let inputs = Inputs {
        current: w.size,
        metrics: &input,
        floor: Floor::None,
        busy: false,
        serving: None,
        sizes: SizeRule::Any,
    };
    let a = decide(&w.policy, w.state.clone(), &inputs, at(w.now + 1));
    let b = decide(&w.policy, restored, &inputs, at(w.now + 1));
    assert_eq!(a, b);
}

#[test]
fn reasons_round_trip_through_their_names() {
    for r in Reason::ALL {
        assert_eq!(Reason::parse(r.as_str()), Some(r));
    }
}

/// A state with no decisions of its own waits one scale-in stabilization window before any
/// scale-in, even when a back-filled half hour of low samples arrives with its first tick (a
/// second controller with an empty state file scaled 9 -> 7 within seconds).
#[test]
fn a_fresh_state_watches_a_stabilization_window_before_scaling_in() {
    let p = policy();
    let window = p.scale_in.stabilization;
    let mut w = World::new(p, 9);
    w.now = 30;
    let backfill: Vec<Sample> = (1..=30).map(|m| Sample { at: at(m), value: 0.1 }).collect();
    let first = w.step_with(&backfill, None);
    assert!(!first.is_resize(), "{:?}", first.reason);
    assert_eq!(first.reason, Reason::WatchingNewLoad);
    assert_eq!(first.wait_until, Some(at(31) + window));
    // It scales in once the window has passed under its own watch.
    let later: Vec<Decision> = (0..30).map(|_| w.step(0.1)).collect();
    let first_in = later.iter().find(|d| d.is_resize()).expect("scale-in");
    assert!(first_in.at >= at(31) + window, "{} {}", first_in.at, at(31) + window);
}

/// After a failed resize the next waits, exponentially longer with each failure, and a success
/// ends the backoff.
#[test]
fn failed_resizes_back_off() {
    let mut w = World::new(policy(), 4);
    w.state.note_resize_failure(at(0), "403: lacks bigtable.clusters.update");
    let d = w.step(0.9);
    assert_eq!(d.reason, Reason::ResizeBackoff);
    assert!(!d.is_resize());
    assert!(d.message(&w.policy).contains("bigtable.clusters.update"), "{}", d.message(&w.policy));
    let first = d.wait_until.expect("until");
    assert!(first >= at(1) && first <= at(2), "{first}");
    w.state.note_resize_failure(at(1), "503");
    w.state.note_resize_failure(at(1), "503");
    let second = w.state.retry_resize_at.expect("until");
    assert!(second >= at(1) + Dur::mins(4), "{second}");
    // Once the time has come, it resizes, and a finished resize clears the failures.
    w.now = 10;
    let d = w.step(0.9);
    assert!(d.is_resize(), "{:?}", d.reason);
    w.state.note_resize_success();
    assert_eq!((w.state.resize_failures, w.state.retry_resize_at, w.state.last_resize_error), (0, None, None));
}

/// A node pool in 3 zones changes by whole nodes per zone: the decision asks for multiples of 3,
/// rounding up on the way out and keeping capacity for the load on the way in.
#[test]
fn a_three_zone_pool_is_resized_in_multiples_of_three() {
    let mut p = policy();
    p.scale_in.cooldown = Dur::ZERO;
    p.scale_in.stabilization = Dur::ZERO;
    p.spike = None;
    p.min_size = 2;
    p.max_size = 20;
    let mut w = World::new(p, 6);
    w.sizes = SizeRule::Multiple(3);
    // 6 x 0.9 = 5.4 nodes of work; ceil(5.4 / 0.57) = 10, rounded up to 12.
    let out = (0..3).map(|_| w.step(0.9)).find(|d| d.is_resize()).expect("a scale-out");
    assert_eq!((out.reason, out.desired), (Reason::ScaleOut, 12));
    // Load drops to 3 nodes of work, which needs ceil(3 / 0.57) = 6 nodes: the pool comes down
    // by whole zones to 6 (3 would be too few).
    let ds = w.run_demand(3.0, 40);
    assert!(ds.iter().filter(|d| d.is_resize()).all(|d| d.desired % 3 == 0), "{ds:?}");
    assert_eq!(w.size, 6);
    // minSize 2 is not a size the pool can take: the lowest is 3.
    let mut low = World::new(w.policy.clone(), 1);
    low.sizes = SizeRule::Multiple(3);
    assert_eq!((low.step(0.0).reason, low.size), (Reason::RaiseToMinSize, 3));
}

/// When no size the target can take lies within [minSize, maxSize], no resize can honour both:
/// the size stays.
#[test]
fn no_reachable_size_inside_the_bounds_keeps_the_size() {
    let mut p = policy();
    p.min_size = 4;
    p.max_size = 5;
    let mut w = World::new(p, 3);
    w.sizes = SizeRule::Multiple(3);
    let d = w.step(2.0);
    assert!(!d.is_resize());
    assert_eq!((d.reason, d.limited_by), (Reason::AtMaxSize, Some(Limit::MaxSize)));
}

/// A CPU policy with a hot-node guard at 0.8 (quiet scale-in timers, so only the guard can hold).
fn guarded() -> Policy {
    let mut p = policy();
    p.scale_in.cooldown = dur("0s");
    p.scale_in.stabilization = dur("0s");
    p.spike = None;
    let mut hot = p.metrics[0].clone();
    hot.name = "hottest-node".into();
    hot.target = 0.8;
    hot.guard = Some(0.8);
    p.metrics.push(hot);
    p
}

/// The hot-node veto (spotify/bigtable-autoscaler #133): average CPU alone would scale in, but
/// one node at 90% blocks it, naming the guard; when the node cools, scale-in proceeds.
#[test]
fn a_hot_guard_blocks_a_scale_in_the_average_allows() {
    let mut w = World::new(guarded(), 10);
    let mut hot = Vec::new();
    for _ in 0..30 {
        hot.push(w.step_each(&[0.3, 0.9]));
    }
    assert_eq!(w.size, 10, "no scale-in while the hottest node runs at 90%");
    let last = hot.last().expect("decisions");
    assert_eq!(last.reason, Reason::GuardMetricHigh);
    assert!(last.recommended.is_some_and(|r| r < 10), "the average alone asks for less: {:?}", last.recommended);
    assert!(last.message(&w.policy).contains("hottest-node"), "{}", last.message(&w.policy));
    // The same load with the node cool: scale-in goes ahead.
    let cool: Vec<Decision> = (0..30).map(|_| w.step_each(&[0.3, 0.5])).collect();
    assert!(
        cool.iter().any(|d| d.reason == Reason::ScaleIn),
        "{:?}",
        cool.iter().map(|d| d.reason).collect::<Vec<_>>()
    );
    assert!(w.size < 10);
}

/// A guard never asks for more nodes, however high it reads, and its spike is no scale-out.
#[test]
fn a_guard_never_scales_out() {
    let mut w = World::new(guarded(), 5);
    for i in 0..40 {
        let d = w.step_each(&[0.55, if i < 20 { 0.5 } else { 5.0 }]);
        assert_ne!(d.direction(), Direction::Up, "tick {i}: {:?}", d.reason);
        assert!(d.metrics[1].recommended.is_none());
    }
}

/// A guard with no data cannot vouch for a scale-in, but does not stop the sizing metrics from
/// scaling out.
#[test]
fn a_guard_without_data_blocks_scale_in_only() {
    let mut w = World::new(guarded(), 10);
    let none: [Sample; 0] = [];
    let mut last = None;
    for _ in 0..20 {
        let cpu = [Sample { at: at(w.now + 1), value: 0.3 }];
        last = Some(w.step_inputs(&[
            MetricInput { samples: &cpu, problem: None },
            MetricInput { samples: &none, problem: None },
        ]));
    }
    assert_eq!(w.size, 10);
    assert_eq!(last.expect("decisions").reason, Reason::MissingData);
    let ups: Vec<Decision> = (0..5)
        .map(|_| {
            let cpu = [Sample { at: at(w.now + 1), value: 1.2 }];
            w.step_inputs(&[
                MetricInput { samples: &cpu, problem: None },
                MetricInput { samples: &none, problem: None },
            ])
        })
        .collect();
    assert!(
        ups.iter().any(|d| d.direction() == Direction::Up),
        "{:?}",
        ups.iter().map(|d| d.reason).collect::<Vec<_>>()
    );
}

/// Demand (in nodes' worth of work at 100%) with a small deterministic wiggle.
fn wiggle(demand: f64, i: usize) -> f64 {
    demand * (1.0 + 0.02 * ((i % 3) as f64 - 1.0))
}

/// A 10-minute average with a 10-minute warm-up on 8 nodes, after an hour of 4 nodes' worth
/// (0.5 a node, inside the band).
fn settled_on_eight() -> World {
    let mut p = policy();
    p.metrics[0].window = dur("10m");
    p.warmup = dur("10m");
    let mut w = World::new(p, 8);
    for i in 0..60 {
        w.run_demand(wiggle(4.0, i), 1);
    }
    w
}

#[test]
fn a_steady_climb_is_sized_for_where_it_will_be_before_the_average_catches_up() {
    // A slow climb of 0.02 a minute: the load passes the band's top (4.8) after 40 minutes, the
    // 10-minute average 5 later; a line through the last 30 minutes holds the climb alone after
    // 30.
    let mut w = settled_on_eight();
    let mut first = None;
    for i in 0..60 {
        let d = w.run_demand(wiggle(4.0 + 0.02 * i as f64, i), 1).remove(0);
        if d.is_resize() && first.is_none() {
            first = Some((i, d.reason));
        }
    }
    let (minute, reason) = first.expect("the climb is followed");
    assert_eq!(reason, Reason::ScaleOutOnRamp, "the line leads the average (minute {minute})");
    assert!(minute < 40, "before the load itself passes the band: minute {minute}");
}

#[test]
fn a_step_is_not_taken_for_a_climb() {
    let mut w = settled_on_eight();
    // A 4x step, held: the spike rule and the average follow it; the line never does.
    let ds: Vec<Decision> = (0..60).map(|i| w.run_demand(wiggle(16.0, i), 1).remove(0)).collect();
    assert!(ds.iter().any(|d| d.is_resize()), "the step is followed");
    assert!(
        ds.iter().all(|d| d.reason != Reason::ScaleOutOnRamp),
        "{:?}",
        ds.iter().map(|d| d.reason).collect::<Vec<_>>()
    );
}

/// A policy steering a built-in autoscaler's minimum: `current` is the minimum (3) while the
/// autoscaler keeps 10 nodes serving at 0.54 per node (5.4 nodes of load, 9 at the 0.6 target).
/// Read on the 10 serving nodes, the load raises the minimum to what it needs, within the
/// scale-out steps, and no further; read on the minimum's 3 nodes, as if they carried it, the
/// same samples sit inside the band and the minimum would never move.
#[test]
fn a_steered_minimum_is_sized_for_the_load_on_the_serving_capacity() {
    let mut steered = World::new(policy(), 3);
    steered.serving = Some(10);
    let mut plain = World::new(policy(), 3);
    let mut first = None;
    for _ in 0..20 {
        let d = steered.step(0.54);
        if d.is_resize() && first.is_none() {
            first = Some(d.reason);
        }
        assert!(!plain.step(0.54).is_resize(), "the minimum read as the serving capacity moved");
    }
    assert_eq!(first, Some(Reason::ScaleOut));
    assert!((9..=11).contains(&steered.size), "the minimum settles at the load's need: {}", steered.size);
    assert_eq!(plain.size, 3);
}

/// The steered autoscaler grows from 4 to 8 nodes on its own while the load stays 2.4 nodes'
/// worth, and the samples arrive 2 minutes late: those measured on 4 nodes (0.6 each) come in
/// after the autoscaler shows 8. Each is read on the live size of its own time, so the load
/// stays 2.4 and the minimum stays where that load puts it; read on today's 8 they would be 4.8
/// nodes of load, and the minimum would climb after the autoscaler (a ratchet).
#[test]
fn a_steered_autoscaler_growing_on_its_own_does_not_lift_the_minimum() {
    let mut w = World::new(policy(), 4);
    w.serving = Some(4);
    let delayed = |w: &World, value: f64| [Sample { at: at(w.now + 1 - 2), value }];
    for _ in 0..30 {
        let s = delayed(&w, 0.6);
        w.step_with(&s, None);
    }
    let settled = w.size;
    w.serving = Some(8);
    let mut highest = settled;
    for i in 0..30 {
        // Measured on 4 nodes until the first sample stamped after the growth arrives.
        let s = delayed(&w, if i < 2 { 0.6 } else { 0.3 });
        w.step_with(&s, None);
        highest = highest.max(w.size);
    }
    assert!(highest <= settled, "the minimum climbed from {settled} to {highest} after the autoscaler grew");
}
