use super::*;
use crate::api::OverrideSpec;
use crate::core::Ts;
use crate::known::tests::{schedule, spec};
use crate::spec::policy_from_spec;

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

/// Issue 29, item 13: an override name with a path in it, a 100 KB reason and an owner of a
/// kilobyte are refused naming the field (they were written into the policy); a `--for` beyond a
/// year is refused naming the flag (100000000h failed later on an unreadable "@…ms" time).
#[test]
fn override_names_reasons_and_durations_are_bounded() {
    let now = Ts::parse_rfc3339("2026-12-01T00:00:00Z").expect("t");
    let s = spec();
    let mut bad = campaign("2026-12-24T18:00:00+09:00", Some(20));
    bad.name = "Bad Name/../x".into();
    let e = with_override(&s, &bad, now).unwrap_err();
    assert!(e.contains("spec.overrides[0].name") && e.contains("is not a lowercase name"), "{e}");
    let mut bad = campaign("2026-12-24T18:00:00+09:00", Some(20));
    bad.reason = "a".repeat(100_000);
    let e = with_override(&s, &bad, now).unwrap_err();
    assert!(e.contains("spec.overrides[0].reason") && e.contains("at most 1024"), "{e}");
    assert!(e.len() < 1_000, "the message quotes the reason whole: {} bytes", e.len());
    let mut bad = campaign("2026-12-24T18:00:00+09:00", Some(20));
    bad.owner = "o".repeat(1_000);
    let e = with_override(&s, &bad, now).unwrap_err();
    assert!(e.contains("spec.overrides[0].owner"), "{e}");
    let mut ok = campaign("2026-12-24T18:00:00+09:00", Some(20));
    ok.name = "black-friday-2".into();
    with_override(&s, &ok, now).expect("a valid name");

    let expiry = |d: &str| Expiry { until: None, for_: Some(d.into()) };
    let e = expiry("100000000h").at(now).unwrap_err();
    assert!(e.starts_with("--for \"100000000h\": at most"), "{e}");
    assert_eq!(expiry("8784h").at(now), Ok(now + MAX_FOR));
    assert!(expiry("0s").at(now).unwrap_err().contains("greater than 0"));
}
