use super::*;
use crate::api::{OverrideSpec, ScalePolicySpec, ScheduleSpec, WorkloadRef};
use crate::core::Ts;
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
        assert_eq!(invoked_as_plugin(OsStr::new(argv0)), plugin, "{argv0}");
    }
}

#[test]
fn schedules_text_lists_windows_in_the_zone_and_utc() {
    let mut s = spec();
    s.schedules = vec![schedule("match")];
    let p = policy_from_spec(&s).expect("valid");
    let now = Ts::parse_rfc3339("2026-10-20T00:00:00Z").expect("t");
    let text = schedules_text(&p.known.schedules, &s.schedules, now, 2);
    // Friday 23 October is BST (UTC+1), Friday 30 October GMT after the change on the 25th.
    assert!(text.contains("2026-10-23 Fri 20:00 BST -> 2026-10-23 Fri 22:00 BST   UTC 2026-10-23T19:00:00Z"), "{text}");
    assert!(text.contains("2026-10-30 Fri 20:00 GMT -> 2026-10-30 Fri 22:00 GMT   UTC 2026-10-30T20:00:00Z"), "{text}");
    assert!(text.contains("raise from 2026-10-23T18:54:00Z"), "{text}");
}
