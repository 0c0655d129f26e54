use super::*;
use crate::api::{ScheduleSpec, WorkloadRef};
use crate::spec::policy_from_spec;

fn spec() -> ScalePolicySpec {
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

fn schedule(name: &str) -> ScheduleSpec {
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

fn campaign(until: &str, min: Option<u32>) -> NewOverride {
    NewOverride {
        name: "campaign".into(),
        owner: "alice".into(),
        reason: "Christmas".into(),
        until: Ts::parse_rfc3339(until).expect("t"),
        min_size: min,
        max_size: None,
        pause: None,
    }
}

#[test]
fn override_edits_refuse_a_past_expiry_and_a_minimum_above_max_size() {
    let now = Ts::parse_rfc3339("2026-12-01T00:00:00Z").expect("t");
    let s = spec();
    let e = with_override(&s, &campaign("2026-11-30T00:00:00Z", Some(20)), now).unwrap_err();
    assert!(e.contains("is in the past") && e.contains("--for"), "{e}");
    let e = with_override(&s, &campaign("2026-12-24T18:00:00+09:00", Some(31)), now).unwrap_err();
    assert!(e.contains("--min 31 is above the policy's maxSize (30)"), "{e}");
    let list = with_override(&s, &campaign("2026-12-24T18:00:00+09:00", Some(20)), now).expect("ok");
    assert_eq!(
        (list.len(), list[0].until.as_str(), list[0].since.as_deref()),
        (1, "2026-12-24T09:00:00Z", Some("2026-12-01T00:00:00Z"))
    );
    // The same name replaces; expired entries are dropped on the way.
    let mut s2 = s.clone();
    s2.overrides = list;
    s2.overrides.push(OverrideSpec {
        name: "old".into(),
        until: "2026-11-01T00:00:00Z".into(),
        ..s2.overrides[0].clone()
    });
    let list = with_override(&s2, &campaign("2026-12-10T00:00:00Z", Some(25)), now).expect("ok");
    assert_eq!(list.iter().map(|o| (o.name.as_str(), o.min_size)).collect::<Vec<_>>(), [("campaign", Some(25))]);
    // Resume: by name, all, or a clear error.
    s2.overrides = list;
    assert_eq!(without_override(&s2, Some("campaign"), now).expect("ok"), vec![]);
    assert!(without_override(&s2, Some("nope"), now).unwrap_err().contains("active: campaign"));
    assert_eq!(without_override(&spec(), None, now).unwrap_err(), "no active override to resume");
}

#[test]
fn the_plugin_name_is_recognised_wherever_it_is_installed() {
    use std::ffi::OsStr;
    for (argv0, plugin) in [
        ("kubectl-ebbflow", true),
        ("/usr/local/bin/kubectl-ebbflow", true),
        ("C:\\bin\\kubectl-ebbflow.exe", cfg!(windows)),
        ("kubectl-ebbflow.exe", true),
        ("ebbflow", false),
        ("/usr/local/bin/ebbflow", false),
        ("kubectl-ebbflow-old", false),
    ] {
        assert_eq!(cli::invoked_as_plugin(OsStr::new(argv0)), plugin, "{argv0}");
    }
}

#[test]
fn schedules_text_lists_windows_in_the_zone_and_utc() {
    let mut s = spec();
    s.schedules = vec![schedule("match")];
    let p = policy_from_spec(&s).expect("valid");
    let now = Ts::parse_rfc3339("2026-10-20T00:00:00Z").expect("t");
    let text = cli::schedules_text(&p.known.schedules, &s.schedules, now, 2);
    // Friday 23 October is BST (UTC+1), Friday 30 October GMT after the change on the 25th.
    assert!(text.contains("2026-10-23 Fri 20:00 BST -> 2026-10-23 Fri 22:00 BST   UTC 2026-10-23T19:00:00Z"), "{text}");
    assert!(text.contains("2026-10-30 Fri 20:00 GMT -> 2026-10-30 Fri 22:00 GMT   UTC 2026-10-30T20:00:00Z"), "{text}");
    assert!(text.contains("raise from 2026-10-23T18:54:00Z"), "{text}");
}
