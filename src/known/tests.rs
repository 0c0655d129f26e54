use super::*;
use crate::api::{OverrideSpec, ScheduleSpec, WorkloadRef};
use crate::spec::policy_from_spec;

/// A valid spec to edit (shared with the override commands' tests).
pub(crate) fn spec() -> ScalePolicySpec {
    let yaml = r#"
target: {workload: {apiVersion: apps/v1, kind: Deployment, name: web}}
minSize: 2
maxSize: 30
metrics: [{name: cpu, target: 0.6, query: {project: p, filter: 'metric.type="x"'}}]
"#;
    let mut s: ScalePolicySpec = serde_saphyr::from_str(yaml).expect("spec");
    s.target = crate::api::TargetRef::Workload(WorkloadRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "web".into(),
    });
    s
}

/// A weekly schedule raising the minimum to 10 for two hours.
pub(crate) fn schedule(name: &str) -> ScheduleSpec {
    ScheduleSpec {
        name: name.into(),
        cron: Some("0 20 * * FRI".into()),
        time_zone: Some("Europe/London".into()),
        start: None,
        duration: "2h".into(),
        min_size: Some(10),
        max_size: None,
        lead_time: None,
    }
}

fn issues(s: &ScalePolicySpec) -> Vec<String> {
    match policy_from_spec(s) {
        Ok(_) => vec![],
        Err(e) => e.issues.iter().map(|i| i.to_string()).collect(),
    }
}

#[test]
fn a_schedule_converts_with_the_kinds_default_lead_time() {
    let mut s = spec();
    s.schedules = vec![schedule("match")];
    let p = policy_from_spec(&s).expect("valid");
    // A workload warms up in 1m; plus 5m for the resize itself.
    assert_eq!(p.known.schedules[0].lead, Dur::mins(6));
    assert_eq!(p.known.schedules[0].min_size, Some(10));
    s.schedules[0].lead_time = Some("45m".into());
    assert_eq!(policy_from_spec(&s).expect("valid").known.schedules[0].lead, Dur::mins(45));
    // A Bigtable cluster warms up for 20m: 25m.
    s.target = crate::api::TargetRef::BigtableCluster(crate::api::BigtableClusterRef {
        project: "p".into(),
        instance: "i".into(),
        cluster: "c".into(),
        storage_target: None,
        steer_autoscaler: false,
    });
    s.schedules[0].lead_time = None;
    assert_eq!(policy_from_spec(&s).expect("valid").known.schedules[0].lead, Dur::mins(25));
}

#[test]
fn bad_schedules_name_the_field_and_the_fix() {
    let mut s = spec();
    let mut zone = schedule("a");
    zone.time_zone = Some("Europe/Londn".into());
    let mut cron = schedule("b");
    cron.cron = Some("0 25 * * *".into());
    let mut both = schedule("c");
    both.start = Some("2026-12-24T18:00:00+09:00".into());
    let mut high = schedule("d");
    high.min_size = Some(31);
    let mut clash = schedule("e");
    (clash.min_size, clash.max_size) = (None, Some(8));
    let mut once = schedule("f");
    (once.cron, once.time_zone, once.start) = (None, None, Some("24 Dec 2026".into()));
    let mut none = schedule("a");
    (none.min_size, none.max_size, none.duration) = (None, None, "0s".into());
    s.schedules = vec![zone, cron, both, high, clash, once, none];
    let got = issues(&s);
    for want in [
        "spec.schedules[0].timeZone: \"Europe/Londn\" is not a time zone in the tz database",
        "spec.schedules[1].cron: hour field: 25 is out of range 0-23",
        "spec.schedules[2]: set exactly one of cron (with timeZone) for a recurring window or start for a one-off",
        "spec.schedules[3].minSize: 31 is above spec.maxSize (30); lower it or raise spec.maxSize",
        "spec.schedules[0].minSize: 10 is above spec.schedules[4].maxSize (8)",
        "spec.schedules[5].start: \"24 Dec 2026\" is not an RFC 3339 time with an offset",
        "spec.schedules[6].name: \"a\" is used by an earlier schedule",
        "spec.schedules[6].duration: must be greater than 0",
        "spec.schedules[6]: sets no bound: set minSize and/or maxSize",
    ] {
        assert!(got.iter().any(|g| g.starts_with(want)), "missing {want:?} in {got:#?}");
    }
}

#[test]
fn bad_overrides_name_the_field_and_expired_ones_are_kept_but_ignored() {
    let mut s = spec();
    s.overrides = vec![OverrideSpec {
        name: "x".into(),
        owner: " ".into(),
        reason: "r".into(),
        since: None,
        until: "tomorrow".into(),
        min_size: Some(40),
        max_size: None,
        pause: None,
    }];
    let got = issues(&s);
    assert!(got.iter().any(|g| g.starts_with("spec.overrides[0].owner: must say who set it")), "{got:?}");
    assert!(got.iter().any(|g| g.starts_with("spec.overrides[0].until: \"tomorrow\" is not an RFC 3339")), "{got:?}");
    assert!(got.iter().any(|g| g.starts_with("spec.overrides[0].minSize: 40 is above spec.maxSize (30)")), "{got:?}");
    // An expired override is valid and has no effect.
    s.overrides[0] = OverrideSpec {
        owner: "alice".into(),
        until: "2020-01-01T00:00:00Z".into(),
        min_size: Some(20),
        ..s.overrides[0].clone()
    };
    let p = policy_from_spec(&s).expect("valid");
    assert_eq!(p.known.active(Ts::parse_rfc3339("2026-01-01T00:00:00Z").expect("t"), 2, 30).bounds(2, 30), (2, 30));
}
