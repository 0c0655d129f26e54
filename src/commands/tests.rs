use super::*;
use crate::api::{OverrideSpec, PauseKind};
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

/// A policy file as a person writes it: comments everywhere, fields out of the usual order, and
/// most fields left to their defaults.
const COMMENTED: &str = "# Orders cluster: scale on CPU.
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: orders   # the key in status
spec:
  # Production bounds; see the runbook.
  target:
    bigtableCluster: {project: p1, instance: i1, cluster: c1}
  maxSize: 20
  minSize: 2
  metrics:
    - name: cpu
      target: 0.6 # a fraction of the node's CPU
      query:
        filter: metric.type=\"bigtable.googleapis.com/cluster/cpu_load\"

# Nothing below spec is ours.
";

/// `text` without its `  overrides:` block (the key line and the lines indented under it).
fn without_overrides_block(text: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "  overrides:" {
            inside = true;
            continue;
        }
        if inside && line.starts_with("   ") {
            continue;
        }
        inside = false;
        out.push(line);
    }
    out.concat()
}

fn overrides_of(text: &str) -> Vec<OverrideSpec> {
    crate::crd::check_policy("orders.yaml", text).expect("the edited file is a valid policy").0.spec.overrides
}

/// Issue 28, item 3: `override --file` rewrote the whole file (comments gone, every default
/// written in). Now only the overrides block differs, byte for byte; a second override edits
/// that block again, and resuming the last one gives back the file exactly as it was.
#[test]
fn overrides_edit_only_their_block_of_the_file() {
    let now = Ts::parse_rfc3339("2026-12-01T00:00:00Z").expect("t");
    let (sp, _) = crate::crd::check_policy("orders.yaml", COMMENTED).expect("valid");
    let list = with_override(&sp.spec, &campaign("2026-12-24T18:00:00+09:00", Some(20)), now).expect("ok");
    let once = overrides_in_text(COMMENTED, &list).expect("edited");
    assert_eq!(without_overrides_block(&once), COMMENTED, "only the overrides block differs:\n{once}");
    assert!(
        once.contains("\n  overrides:\n    - name: campaign\n"),
        "after the last field, indented like the metrics:\n{once}"
    );
    assert!(once.ends_with("\n\n# Nothing below spec is ours.\n"), "{once}");
    assert_eq!(overrides_of(&once), list);

    // A second override: the block is edited again, not added twice.
    let (sp, _) = crate::crd::check_policy("orders.yaml", &once).expect("valid");
    let mut pause = campaign("2026-12-10T00:00:00Z", None);
    pause.name = "pause".into();
    pause.pause = Some(PauseKind::ScaleIn);
    let list = with_override(&sp.spec, &pause, now).expect("ok");
    assert_eq!(list.len(), 2);
    let twice = overrides_in_text(&once, &list).expect("edited");
    assert_eq!(twice.matches("overrides:").count(), 1, "{twice}");
    assert_eq!(without_overrides_block(&twice), COMMENTED, "{twice}");
    assert_eq!(overrides_of(&twice), list);

    // Resume one, then the other: the key goes with the last, and the file is as written.
    let (sp, _) = crate::crd::check_policy("orders.yaml", &twice).expect("valid");
    let list = without_override(&sp.spec, Some("pause"), now).expect("ok");
    let one_left = overrides_in_text(&twice, &list).expect("edited");
    assert_eq!(overrides_of(&one_left), list);
    let (sp, _) = crate::crd::check_policy("orders.yaml", &one_left).expect("valid");
    let none = without_override(&sp.spec, None, now).expect("ok");
    assert_eq!(overrides_in_text(&one_left, &none).expect("edited"), COMMENTED);
}

/// An `overrides:` key the user wrote (inline, with a comment, before other fields) is replaced
/// where it is; the fields after it and the line endings (CRLF) stay as they were.
#[test]
fn an_existing_overrides_key_is_replaced_in_place() {
    let now = Ts::parse_rfc3339("2026-12-01T00:00:00Z").expect("t");
    let text =
        COMMENTED.replace("  maxSize: 20\n", "  overrides: []   # none yet\n  maxSize: 20\n").replace('\n', "\r\n");
    let (sp, _) = crate::crd::check_policy("orders.yaml", &text).expect("valid");
    let list = with_override(&sp.spec, &campaign("2026-12-24T18:00:00+09:00", Some(20)), now).expect("ok");
    let edited = overrides_in_text(&text, &list).expect("edited");
    let (head, tail) = text.split_once("  overrides: []   # none yet\r\n").expect("the key");
    assert!(edited.starts_with(head) && edited.ends_with(tail), "{edited}");
    let block = &edited[head.len()..edited.len() - tail.len()];
    assert!(block.starts_with("  overrides:\r\n    - name: campaign\r\n"), "{block}");
    assert!(block.split_inclusive('\n').all(|l| l.ends_with("\r\n")), "CRLF kept: {block:?}");
    assert_eq!(overrides_of(&edited), list);
}

/// `spec` in flow style cannot be edited without rewriting it: refused, with what to do instead
/// (the list to paste), and the file is left alone.
#[test]
fn a_flow_style_spec_is_refused_with_what_to_do() {
    let now = Ts::parse_rfc3339("2026-12-01T00:00:00Z").expect("t");
    let text = "apiVersion: ebbflow.dev/v1alpha1\nkind: ScalePolicy\nmetadata: {name: orders}\n\
                spec: {target: {bigtableCluster: {project: p1, instance: i1, cluster: c1}}, minSize: 2, maxSize: 20, \
                metrics: [{name: cpu, target: 0.6, query: {filter: x}}]}\n";
    let (sp, _) = crate::crd::check_policy("orders.yaml", text).expect("valid");
    let list = with_override(&sp.spec, &campaign("2026-12-24T18:00:00+09:00", Some(20)), now).expect("ok");
    let why = overrides_in_text(text, &list).unwrap_err();
    assert!(why.contains("flow style"), "{why}");
    let message = super::edits::refusal("orders.yaml", &why, &list);
    assert!(message.starts_with("orders.yaml was not changed: its `spec:` is written in flow style"), "{message}");
    assert!(message.contains("one field per line") && message.contains("by hand"), "{message}");
    assert!(message.contains("  overrides:\n    - name: campaign"), "{message}");
    let why = overrides_in_text("{\"spec\": {\"minSize\": 2}}", &list).unwrap_err();
    assert!(why.contains("no top-level `spec:`"), "{why}");
}

/// The command on a file: the message says when a running controller sees the change, the file
/// keeps its comments, and a symlink to it stays a symlink.
#[cfg(unix)]
#[test]
fn pause_with_file_edits_the_file_and_says_when_it_applies() {
    let dir = std::env::temp_dir().join(format!("ebbflow-edit-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    let real = dir.join("orders.yaml");
    std::fs::write(&real, COMMENTED).expect("write");
    let link = dir.join("policies/orders.yaml");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let target = Target { name: "orders".into(), namespace: None, file: Some(link.clone()) };
    let msg = edit(&target, |sp, now| {
        let mut p = campaign("2099-12-24T18:00:00+09:00", None);
        p.pause = Some(PauseKind::Freeze);
        with_override(&sp.spec, &p, now)
    })
    .expect("edited");
    assert!(msg.contains("spec.overrides only"), "{msg}");
    assert!(
        msg.contains(&format!(
            "a running `ebbflow run --policies {}` picks this up within a few seconds",
            dir.join("policies").display()
        )),
        "{msg}"
    );
    assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink(), "the symlink was replaced");
    let text = std::fs::read_to_string(&real).expect("read");
    assert_eq!(without_overrides_block(&text), COMMENTED, "{text}");
    assert_eq!(overrides_of(&text)[0].pause, Some(PauseKind::Freeze));
    let msg = edit(&target, |sp, now| without_override(&sp.spec, None, now)).expect("resumed");
    assert!(msg.contains("updated"), "{msg}");
    assert_eq!(std::fs::read_to_string(&real).expect("read"), COMMENTED);
    let _ = std::fs::remove_dir_all(&dir);
}
