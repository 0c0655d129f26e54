//! Schedules and overrides: cron arithmetic, zones and daylight-saving time, overlaps, lead time,
//! and how `decide` honours the bounds and pauses they set.

use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::fixtures::*;
use crate::known::{Cron, Known, Override, Pause, Recurrence, Schedule, Source};
use crate::*;

fn ts(text: &str) -> Ts {
    Ts::parse_rfc3339(text).expect("valid RFC 3339")
}

/// The tz database lookup is the caller's IO; tests read the system's copy.
fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("zone in the tz database")
}

fn starts(cron: &str, zone_name: &str, from: &str, to: &str) -> Vec<String> {
    let mut out = Vec::new();
    Cron::parse(cron).expect("valid cron").starts(&zone(zone_name), ts(from), ts(to), |t| {
        out.push(t.to_rfc3339());
        true
    });
    out
}

fn daily(
    name: &str,
    cron: &str,
    zone_name: &str,
    hours: i64,
    min: Option<u32>,
    max: Option<u32>,
    lead: i64,
) -> Schedule {
    Schedule {
        name: name.into(),
        recurrence: Recurrence::Cron { cron: Cron::parse(cron).expect("valid"), zone: zone(zone_name) },
        duration: Dur::mins(hours * 60),
        min_size: min,
        max_size: max,
        lead: Dur::mins(lead),
    }
}

#[test]
fn cron_expressions_parse_or_name_the_field() {
    for (text, error) in [
        ("30 19 * * MON-FRI", None),
        ("*/15 8-18 1,15 JAN-mar 0", None),
        ("5/20 * * * 7", None),
        ("0 0 * *", Some("needs 5 fields")),
        ("60 * * * *", Some("minute field: 60 is out of range 0-59")),
        ("0 24 * * *", Some("hour field: 24 is out of range 0-23")),
        ("0 0 0 * *", Some("day-of-month field: 0 is out of range 1-31")),
        ("0 0 * 13 *", Some("month field: 13 is out of range 1-12")),
        ("0 0 * * FUN", Some("day-of-week field: \"FUN\" is not a number")),
        ("0 0 * * */0", Some("a step must be at least 1")),
        ("0 20-8 * * *", Some("hour field: range 20-8 runs backwards")),
    ] {
        let got = Cron::parse(text);
        match error {
            None => assert!(got.is_ok(), "{text}: {got:?}"),
            Some(e) => assert!(got.as_ref().is_err_and(|m| m.contains(e)), "{text}: {got:?}"),
        }
    }
}

#[test]
fn cron_fields_match_as_vixie_cron_does() {
    use jiff::civil::date;
    // 2026-12-04 is a Friday, 2026-12-06 a Sunday.
    let fri = date(2026, 12, 4);
    let sun = date(2026, 12, 6);
    for (cron, at, want) in [
        ("30 19 * * MON-FRI", fri.at(19, 30, 0, 0), true),
        ("30 19 * * MON-FRI", fri.at(19, 31, 0, 0), false),
        ("30 19 * * MON-FRI", sun.at(19, 30, 0, 0), false),
        ("0 12 * * 7", sun.at(12, 0, 0, 0), true),
        ("0 12 * * 0", sun.at(12, 0, 0, 0), true),
        ("*/15 * * * *", fri.at(3, 45, 0, 0), true),
        ("*/15 * * * *", fri.at(3, 40, 0, 0), false),
        ("5/20 * * * *", fri.at(3, 45, 0, 0), true),
        ("5/20 * * * *", fri.at(3, 5, 0, 0), true),
        ("5/20 * * * *", fri.at(3, 20, 0, 0), false),
        // Both day fields restricted: either matches (the 6th is a Sunday, not a Friday).
        ("0 0 6 * FRI", sun.at(0, 0, 0, 0), true),
        ("0 0 6 * FRI", fri.at(0, 0, 0, 0), true),
        ("0 0 7 * FRI", sun.at(0, 0, 0, 0), false),
        // Only one restricted: that one decides.
        ("0 0 6 * *", fri.at(0, 0, 0, 0), false),
        ("0 0 * DEC *", fri.at(0, 0, 0, 0), true),
        ("0 0 * NOV *", fri.at(0, 0, 0, 0), false),
    ] {
        assert_eq!(Cron::parse(cron).expect("valid").matches(at), want, "{cron} at {at}");
    }
}

/// Europe/Berlin: on 2026-03-29 the clocks go 02:00 CET → 03:00 CEST (02:30 does not exist); on
/// 2026-10-25 they go 03:00 CEST → 02:00 CET (02:30 happens twice).
#[test]
fn a_local_time_in_a_gap_or_a_fold_starts_once_as_documented() {
    for (what, cron, from, to, want) in [
        (
            "02:30 does not exist: the window opens after the gap, at 03:30 CEST",
            "30 2 * * *",
            "2026-03-28T00:00:00Z",
            "2026-03-30T23:00:00Z",
            vec!["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"],
        ),
        (
            "02:30 happens twice: one window, at the first (CEST) occurrence",
            "30 2 * * *",
            "2026-10-24T00:00:00Z",
            "2026-10-26T23:00:00Z",
            vec!["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        (
            "02:00 (in the gap) and 03:00 are the same instant on the change day: one window",
            "0 2,3 * * *",
            "2026-03-29T00:00:00Z",
            "2026-03-29T12:00:00Z",
            vec!["2026-03-29T01:00:00Z"],
        ),
        (
            "a fixed local time keeps its wall-clock hour across the change (UTC shifts by one)",
            "0 9 * * *",
            "2026-03-28T00:00:00Z",
            "2026-03-29T23:00:00Z",
            vec!["2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"],
        ),
    ] {
        assert_eq!(starts(cron, "Europe/Berlin", from, to), want, "{what}");
    }
    // New York falls back at 02:00 EDT → 01:00 EST: 01:30 happens twice, once counts.
    assert_eq!(
        starts("30 1 * * *", "America/New_York", "2026-11-01T00:00:00Z", "2026-11-02T12:00:00Z"),
        vec!["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
    // Tokyo has no daylight-saving time: a fixed 9-hour offset.
    assert_eq!(
        starts("0 18 24 12 *", "Asia/Tokyo", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        vec!["2026-12-24T09:00:00Z"]
    );
}

/// A window's duration is elapsed time, even over a clock change: 01:00 CEST + 3h is 03:00 CET
/// on the fall-back day (two hours on the wall clock).
#[test]
fn a_window_over_the_change_lasts_its_duration_in_real_time() {
    let s = daily("night", "0 1 * * *", "Europe/Berlin", 3, Some(5), None, 0);
    let w = s.current(ts("2026-10-25T01:30:00Z")).expect("open");
    assert_eq!(
        (w.start.to_rfc3339(), w.end.to_rfc3339()),
        ("2026-10-24T23:00:00Z".into(), "2026-10-25T02:00:00Z".into())
    );
    assert!(s.current(ts("2026-10-25T02:00:00Z")).is_none(), "closed at its end");
}

#[test]
fn overlapping_schedules_take_the_highest_minimum_and_the_lowest_maximum() {
    let known = Known {
        schedules: vec![
            daily("match", "0 20 * * *", "UTC", 2, Some(10), Some(30), 0),
            daily("evening", "0 19 * * *", "UTC", 4, Some(15), Some(25), 0),
            daily("morning", "0 8 * * *", "UTC", 1, Some(40), None, 0),
        ],
        overrides: vec![],
    };
    for (at, want, names) in [
        ("2026-12-01T18:59:00Z", (2, 50), vec![]),
        ("2026-12-01T19:30:00Z", (15, 25), vec!["evening"]),
        ("2026-12-01T20:30:00Z", (15, 25), vec!["match", "evening"]),
        ("2026-12-01T22:30:00Z", (15, 25), vec!["evening"]),
        ("2026-12-01T23:00:00Z", (2, 50), vec![]),
        ("2026-12-02T08:00:00Z", (40, 50), vec!["morning"]),
    ] {
        let a = known.active(ts(at), 2, 50);
        assert_eq!(a.bounds(2, 50), want, "{at}");
        assert_eq!(a.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), names, "{at}");
    }
}

#[test]
fn the_minimum_rises_a_lead_time_early_and_the_maximum_falls_at_the_start() {
    let known = Known {
        schedules: vec![daily("sale", "0 10 * * *", "Asia/Tokyo", 2, Some(20), Some(40), 25)],
        overrides: vec![],
    };
    // 10:00 JST is 01:00 UTC.
    for (at, want) in [
        ("2026-12-01T00:34:00Z", (2, 50)),
        ("2026-12-01T00:35:00Z", (20, 50)),
        ("2026-12-01T01:00:00Z", (20, 40)),
        ("2026-12-01T02:59:00Z", (20, 40)),
        ("2026-12-01T03:00:00Z", (2, 50)),
    ] {
        assert_eq!(known.active(ts(at), 2, 50).bounds(2, 50), want, "{at}");
    }
}

fn over(name: &str, until: &str, min: Option<u32>, max: Option<u32>, pause: Option<Pause>) -> Override {
    Override {
        name: name.into(),
        owner: "ops@example.com".into(),
        reason: "test".into(),
        since: None,
        until: ts(until),
        min_size: min,
        max_size: max,
        pause,
    }
}

#[test]
fn overrides_replace_the_bounds_until_they_expire() {
    let known = Known {
        schedules: vec![daily("match", "0 20 * * *", "UTC", 2, Some(10), None, 0)],
        overrides: vec![
            over("campaign", "2026-12-01T21:00:00Z", Some(20), None, None),
            over("cap", "2026-12-01T20:30:00Z", None, Some(8), Some(Pause::ScaleIn)),
        ],
    };
    let a = known.active(ts("2026-12-01T20:10:00Z"), 2, 50);
    // The cap (max 8) is below both minimums; the campaign's min 20 is an override too, so the
    // lowest maximum bounds it: (8, 8).
    assert_eq!(a.bounds(2, 50), (8, 8));
    assert_eq!(a.pause_in, Some(ts("2026-12-01T20:30:00Z")));
    let a = known.active(ts("2026-12-01T20:40:00Z"), 2, 50);
    assert_eq!((a.bounds(2, 50), a.min.map(|m| m.1), a.pause_in), ((20, 50), Some(Source::Override), None));
    let a = known.active(ts("2026-12-01T21:00:00Z"), 2, 50);
    assert_eq!((a.bounds(2, 50), a.min.map(|m| m.1)), ((10, 50), Some(Source::Schedule)));
    assert_eq!(known.active(ts("2026-12-01T22:00:00Z"), 2, 50).bounds(2, 50), (2, 50));
}

/// The world's clock starts at 1970-01-01T00:00Z; `at(m)` is minute m.
fn world_with(known: Known, size: u32) -> World {
    let mut p = policy();
    p.known = known;
    World::new(p, size)
}

fn once(name: &str, start_min: i64, mins: i64, min: Option<u32>, max: Option<u32>, lead: i64) -> Schedule {
    Schedule {
        name: name.into(),
        recurrence: Recurrence::Once(at(start_min)),
        duration: Dur::mins(mins),
        min_size: min,
        max_size: max,
        lead: Dur::mins(lead),
    }
}

#[test]
fn decide_scales_out_to_a_scheduled_minimum_ahead_of_the_window_and_back_after() {
    let mut w = world_with(Known { schedules: vec![once("match", 60, 30, Some(10), None, 20)], overrides: vec![] }, 3);
    // Quiet load (3 nodes at 50%): nothing to do until the lead time.
    let before = w.run_demand(1.5, 39);
    assert!(before.iter().all(|d| !d.is_resize()), "{:?}", before.iter().map(|d| d.reason).collect::<Vec<_>>());
    let d = w.step(1.5 / 3.0);
    assert_eq!((w.now, d.reason, d.desired), (40, Reason::ScheduledMinimum, 10));
    // Held through the window though the load asks for 3.
    let during = w.run_demand(1.5, 49);
    assert!(during.iter().all(|d| d.desired >= 10), "{:?}", during.iter().map(|d| d.desired).collect::<Vec<_>>());
    // After it, the usual scale-in returns (cooldowns and stabilization allowing).
    let after = w.run_demand(1.5, 120);
    assert!(after.iter().any(|d| d.reason == Reason::ScaleIn), "scale-in resumes after the window");
    assert!(w.size < 10);
}

#[test]
fn a_scheduled_maximum_lowers_the_size_while_open() {
    let mut w = world_with(Known { schedules: vec![once("night", 30, 60, None, Some(4), 20)], overrides: vec![] }, 8);
    let d = w.run_demand(4.0, 30);
    assert!(d[..29].iter().all(|d| d.desired >= 7), "the lead time does not lower the maximum");
    assert_eq!((d[29].reason, d[29].desired), (Reason::ScheduledMaximum, 4));
}

#[test]
fn a_pause_blocks_only_its_direction() {
    let until = "1970-01-01T03:00:00Z";
    // Pause scale-in: high load still scales out; low load does not scale in.
    let mut w = world_with(
        Known { schedules: vec![], overrides: vec![over("hold", until, None, None, Some(Pause::ScaleIn))] },
        4,
    );
    let out = w.run_demand(8.0, 10);
    assert!(out.iter().any(|d| d.direction() == Direction::Up), "scale-out is not paused");
    let low = w.run_demand(1.0, 60);
    assert!(low.iter().all(|d| d.direction() != Direction::Down));
    assert!(low.iter().any(|d| d.reason == Reason::ScaleInPaused && d.wait_until == Some(ts(until))));
    // After the expiry the same load scales in.
    let later = w.run_demand(1.0, 120);
    assert!(later.iter().any(|d| d.reason == Reason::ScaleIn));

    // Pause scale-out: high load is held, and the reason says why.
    let mut w = world_with(
        Known { schedules: vec![], overrides: vec![over("hold", until, None, None, Some(Pause::ScaleOut))] },
        4,
    );
    let high = w.run_demand(12.0, 30);
    assert!(high.iter().all(|d| d.direction() != Direction::Up));
    assert!(high.iter().any(|d| d.reason == Reason::ScaleOutPaused));
    // A freeze holds even the minimum an override raises.
    let mut w = world_with(
        Known { schedules: vec![], overrides: vec![over("f", until, Some(9), None, Some(Pause::Freeze))] },
        4,
    );
    let d = w.step(0.5);
    assert_eq!((d.reason, d.desired), (Reason::Frozen, 4));
}

#[test]
fn every_new_reason_is_listed_and_round_trips() {
    for r in [
        Reason::ScheduledMinimum,
        Reason::ScheduledMaximum,
        Reason::OverrideMinimum,
        Reason::OverrideMaximum,
        Reason::ScaleInPaused,
        Reason::ScaleOutPaused,
        Reason::Frozen,
    ] {
        assert_eq!(Reason::parse(r.as_str()), Some(r));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// While a schedule's minimum holds, every decision asks for at least that minimum (or
    /// maxSize, when the minimum lies above it).
    #[test]
    fn while_a_schedule_is_active_the_size_never_falls_below_its_minimum(
        start in 5i64..120,
        mins in 1i64..120,
        lead in 0i64..40,
        min in 1u32..40,
        max_size in 3u32..30,
        size in 1u32..30,
        loads in prop::collection::vec(0.0f64..20.0, 240),
    ) {
        let mut p = policy();
        p.max_size = max_size;
        p.known = Known { schedules: vec![once("s", start, mins, Some(min), None, lead)], overrides: vec![] };
        let mut w = World::new(p, size.min(max_size));
        for load in loads {
            let d = w.run_demand(load, 1).remove(0);
            let now = w.now;
            if now >= start - lead && now < start + mins {
                let floor = min.min(max_size).max(2);
                prop_assert!(d.desired >= floor, "at {now}: {} < {floor} ({:?})", d.desired, d.reason);
            }
        }
    }

    /// Once every override has expired, the bounds are the spec's and decisions are exactly those
    /// of the same policy without them.
    #[test]
    fn expiry_always_restores_the_spec_bounds(
        overrides in prop::collection::vec(
            (0i64..100, prop::option::of(1u32..60), prop::option::of(1u32..60), 0u8..4), 0..4),
        min in 1u32..5,
        max in 5u32..40,
        loads in prop::collection::vec(0.0f64..20.0, 60),
    ) {
        let list: Vec<Override> = overrides.iter().enumerate().map(|(i, &(until, lo, hi, pause))| Override {
            name: format!("o{i}"),
            owner: "p".into(),
            reason: "r".into(),
            since: None,
            until: at(until),
            min_size: lo,
            max_size: hi,
            pause: [None, Some(Pause::ScaleIn), Some(Pause::ScaleOut), Some(Pause::Freeze)][pause as usize],
        }).collect();
        let known = Known { schedules: vec![], overrides: list };
        for t in 100..200 {
            let a = known.active(at(t), min, max);
            prop_assert_eq!(a.bounds(min, max), (min, max));
            prop_assert_eq!((a.pause_in, a.pause_out, a.entries.len()), (None, None, 0));
        }
        let mut p = policy();
        (p.min_size, p.max_size) = (min, max);
        let mut with = p.clone();
        with.known = known;
        let (mut a, mut b) = (World::new(p, min), World::new(with, min));
        (a.now, b.now) = (100, 100);
        for load in loads {
            let (da, db) = (a.run_demand(load, 1).remove(0), b.run_demand(load, 1).remove(0));
            prop_assert_eq!(da, db);
        }
    }
}
