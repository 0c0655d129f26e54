//! Snapshot tests of `ebbflow status` output for the states an operator asks about: cooling
//! down, dry run, missing data, a resize in progress, permission denied.
//!
//! The expected text lives in `tests/snapshots/status_*.txt` and was reviewed by hand. Time is
//! fixed and colours are off, so the output is exact. After an intended change, rewrite them
//! with `UPDATE_SNAPSHOTS=1 cargo test --test it status_readout::` and review the diff.

use std::path::PathBuf;

use ebbflow::api::ScalePolicy;
use ebbflow::core::Ts;
use ebbflow::readout::cli::{Output, StatusArgs, parse_state_file, render};
use ebbflow::readout::{self, Level, Paint, PolicyView};
use serde_json::{Value, json};

fn now() -> Ts {
    Ts::parse_rfc3339("2026-11-23T14:20:00Z").expect("time")
}

/// `now` plus or minus minutes, as RFC 3339.
fn at(minutes: f64) -> String {
    Ts(now().0 + (minutes * 60_000.0) as i64).to_rfc3339()
}

fn cond(type_: &str, status: &str, reason: &str, message: &str, since_min: f64) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": at(since_min), "observedGeneration": 1})
}

fn ok_conditions(target: &str) -> Vec<Value> {
    vec![
        cond("Ready", "True", "Reconciled", &format!("evaluating {target}"), -300.0),
        cond("AbleToScale", "True", "ReadyForNewScale", "the target can be resized", -40.0),
        cond("ScalingActive", "True", "WithinTolerance", "hold", -40.0),
        cond("ScalingLimited", "False", "DesiredWithinRange", "the desired size is within bounds", -300.0),
    ]
}

fn decision(min: f64, reason: &str, from: u32, to: u32, message: &str, metrics: Value) -> Value {
    let direction = match from.cmp(&to) {
        std::cmp::Ordering::Less => "Up",
        std::cmp::Ordering::Greater => "Down",
        std::cmp::Ordering::Equal => "None",
    };
    json!({"time": at(min), "direction": direction, "reason": reason, "message": message,
           "from": from, "to": to, "metrics": metrics})
}

fn policy(ns: &str, name: &str, mode: &str, target: Value) -> ScalePolicy {
    serde_json::from_value(json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"target": target, "minSize": 2, "maxSize": 20, "mode": mode,
                 "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "metric.type=\"x\""}}]}
    }))
    .expect("policy")
}

fn bigtable(cluster: &str) -> Value {
    json!({"bigtableCluster": {"project": "p1", "instance": "orders", "cluster": cluster}})
}

/// The policies of the fixture and a standalone state file with their statuses.
fn fixture() -> (Vec<ScalePolicy>, Value) {
    let policies = vec![
        policy("data", "cooling", "Enforce", bigtable("c1")),
        policy(
            "data",
            "dryrun",
            "DryRun",
            json!({"gkeNodePool": {"project": "p1", "location": "us-central1", "cluster": "k1", "nodePool": "batch"}}),
        ),
        policy("data", "missing", "Enforce", bigtable("c2")),
        policy("data", "resizing", "Enforce", bigtable("c3")),
        policy("team-b", "denied", "Enforce", bigtable("c4")),
        policy("team-b", "fresh", "Enforce", bigtable("c5")),
        policy("data", "warming", "Enforce", bigtable("c6")),
    ];
    let cpu = |raw: f64, smoothed: f64, rec: u32, spike: bool| json!({"cpu": {"raw": raw, "smoothed": smoothed, "target": 0.5, "recommended": rec, "spike": spike}});

    // Scaled out on a spike 20 minutes ago; load fell back; scale-in waits for its cooldown and
    // the spike hold, and the storage floor would stop it at 6 anyway.
    let cooling = json!({
        "observedGeneration": 1, "target": "bigtable p1/orders/c1", "currentSize": 8, "desiredSize": 8,
        "lastDecision": decision(-1.0, "ScaleInCooldown", 8, 8, &format!("scale-in blocked: cooldown until {}", at(12.0)), cpu(0.21, 0.24, 4, false)),
        "recentDecisions": [
            decision(-95.0, "WithinTolerance", 6, 6, "hold at 6: within 10% of target", json!({})),
            decision(-20.0, "ScaleOutOnSpike", 6, 8, "scale out 6 -> 8 at once: sustained spike", json!({})),
            decision(-8.0, "ScaleInCooldown", 8, 8, &format!("scale-in blocked: cooldown until {}", at(12.0)), json!({})),
        ],
        "cooldown": {"scaleInAllowedAt": at(12.0), "spikeHoldUntil": at(10.5)},
        "conditions": [
            cond("Ready", "True", "Reconciled", "evaluating bigtable p1/orders/c1", -300.0),
            cond("AbleToScale", "False", "ScaleInCooldown", &format!("scale-in blocked: cooldown until {}", at(12.0)), -8.0),
            cond("ScalingActive", "True", "ScaleInCooldown", &format!("scale-in blocked: cooldown until {}", at(12.0)), -8.0),
            cond("ScalingLimited", "False", "DesiredWithinRange", "the desired size is within bounds", -300.0),
        ],
    });

    // DryRun: the policy would scale out, and says so, but never touches the pool.
    let dryrun = json!({
        "observedGeneration": 1, "target": "gke p1/us-central1/k1/batch", "currentSize": 3, "desiredSize": 5,
        "lastDecision": decision(-0.5, "ScaleOut", 3, 5, "scale out 3 -> 5: smoothed load is above target", cpu(0.81, 0.77, 5, false)),
        "recentDecisions": [
            decision(-30.0, "WithinTolerance", 3, 3, "hold at 3: within 10% of target", json!({})),
            decision(-6.0, "ScaleOut", 3, 5, "scale out 3 -> 5: smoothed load is above target", json!({})),
        ],
        "conditions": [
            cond("Ready", "True", "Reconciled", "evaluating gke p1/us-central1/k1/batch", -300.0),
            cond("AbleToScale", "True", "DryRun", "DryRun: decisions are reported, never applied", -300.0),
            cond("ScalingActive", "True", "ScaleOut", "scale out 3 -> 5: smoothed load is above target", -6.0),
            cond("ScalingLimited", "False", "DesiredWithinRange", "the desired size is within bounds", -300.0),
        ],
    });

    // The metric went stale: the size is held.
    let mut missing_conditions = ok_conditions("bigtable p1/orders/c2");
    missing_conditions[2] =
        cond("ScalingActive", "False", "MissingData", "hold at 4: missing data for cpu (stale)", -14.0);
    let missing = json!({
        "observedGeneration": 1, "target": "bigtable p1/orders/c2", "currentSize": 4, "desiredSize": 4,
        "lastDecision": decision(-1.0, "MissingData", 4, 4, "hold at 4: missing data for cpu (stale)",
            json!({"cpu": {"raw": 0.44, "target": 0.5, "spike": false}})),
        "recentDecisions": [
            decision(-50.0, "WithinTolerance", 4, 4, "hold at 4: within 10% of target", json!({})),
            decision(-14.0, "MissingData", 4, 4, "hold at 4: missing data for cpu (stale)", json!({})),
        ],
        "conditions": missing_conditions,
    });

    // A resize is running as a long-running operation.
    let op = "operations/projects/p1/instances/orders/clusters/c3/locations/us-central1-b/operations/7781";
    let resizing = json!({
        "observedGeneration": 1, "target": "bigtable p1/orders/c3", "currentSize": 4, "desiredSize": 8,
        "lastDecision": decision(-1.0, "ResizeInProgress", 4, 4, "hold: a resize is in progress", cpu(1.02, 0.93, 8, true)),
        "recentDecisions": [
            decision(-3.0, "ScaleOutOnSpike", 4, 8, "scale out 4 -> 8 at once: sustained spike", json!({})),
            decision(-2.0, "ResizeInProgress", 4, 4, "hold: a resize is in progress", json!({})),
        ],
        "cooldown": {"spikeHoldUntil": at(27.0)},
        "operation": op,
        "state": {"inFlight": {"from": 4, "to": 8, "startedAt": at(-3.0), "operation": op}},
        "conditions": [
            cond("Ready", "True", "Reconciled", "evaluating bigtable p1/orders/c3", -300.0),
            cond("AbleToScale", "False", "ResizeInProgress", "resizing 4 -> 8", -3.0),
            cond("ScalingActive", "True", "ResizeInProgress", "hold: a resize is in progress", -2.0),
            cond("ScalingLimited", "False", "DesiredWithinRange", "the desired size is within bounds", -300.0),
        ],
    });

    // The service account lost bigtable.clusters.get: the target cannot be read.
    let denied_msg = "bigtable: reading projects/p1/instances/orders/clusters/c4 was refused (403): permission bigtable.clusters.get denied";
    let denied = json!({
        "observedGeneration": 1, "target": "bigtable p1/orders/c4", "currentSize": 5, "desiredSize": 5,
        "lastDecision": decision(-42.0, "WithinTolerance", 5, 5, "hold at 5: within 10% of target", cpu(0.49, 0.5, 5, false)),
        "conditions": [
            cond("Ready", "False", "PermissionDenied", denied_msg, -40.0),
            cond("AbleToScale", "False", "PermissionDenied", denied_msg, -40.0),
            cond("ScalingActive", "True", "WithinTolerance", "hold at 5: within 10% of target", -300.0),
            cond("ScalingLimited", "False", "DesiredWithinRange", "the desired size is within bounds", -300.0),
        ],
    });

    // Issue 15's case: right after a spike took the cluster from 3 to 9, the 6 new nodes are
    // still warming up. The 3 serving nodes run hot (0.71 against 0.5) while demand spread over
    // all 9 is 0.24; noise lowered the effective target, and the weekly shape forecasts a rise.
    let warming = json!({
        "observedGeneration": 1, "target": "bigtable p1/orders/c6", "currentSize": 9, "desiredSize": 9,
        "lastDecision": {
            "time": at(-0.5), "direction": "None", "reason": "WithinTolerance", "message": "hold at 9: within 10% of target",
            "from": 9, "to": 9, "serving": 3,
            "metrics": {"cpu": {"raw": 0.71, "smoothed": 0.24, "target": 0.5, "recommended": 9, "spike": false,
                                "effectiveTarget": 0.44, "noise": 0.21, "forecast": 11, "forecastDemand": 0.47}}},
        "recentDecisions": [
            decision(-4.0, "ScaleOutOnSpike", 3, 9, "scale out 3 -> 9 at once: sustained spike", json!({})),
            decision(-2.0, "WithinTolerance", 9, 9, "hold at 9: within 10% of target", json!({})),
        ],
        "history": {
            "resizes": [
                {"time": at(-300.0), "from": 4, "to": 3, "reason": "ScaleIn", "tookSecs": 60},
                {"time": at(-4.0), "from": 3, "to": 9, "reason": "ScaleOutOnSpike", "tookSecs": 95}
            ],
            "since": at(-10.0), "observed": "0.3 0.71", "smoothed": "0.28 0.24", "serving": "3 3", "desired": "3 9"
        },
        "conditions": ok_conditions("bigtable p1/orders/c6"),
    });

    let state = json!({"policies": {
        "data/warming": {"resourceVersion": 5, "status": warming},
        "data/cooling": {"resourceVersion": 41, "status": cooling},
        "data/dryrun": {"resourceVersion": 12, "status": dryrun},
        "data/missing": {"resourceVersion": 30, "status": missing},
        "data/resizing": {"resourceVersion": 9, "status": resizing},
        "team-b/denied": {"resourceVersion": 77, "status": denied},
    }});
    (policies, state)
}

fn views() -> Vec<PolicyView> {
    let (policies, state) = fixture();
    parse_state_file(&serde_json::to_vec(&state).expect("json"), &policies).expect("state file")
}

fn args(name: Option<&str>, output: Output) -> StatusArgs {
    StatusArgs {
        name: name.map(str::to_string),
        namespace: None,
        state: None,
        policies: None,
        watch: false,
        interval: std::time::Duration::from_secs(2),
        output,
        events: false,
    }
}

/// Compare with `tests/snapshots/{name}.txt`, or write it when UPDATE_SNAPSHOTS is set.
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it", path.display()));
    if expected != actual {
        panic!(
            "{} differs from the output.\n--- expected\n{expected}\n--- actual\n{actual}\nRun with UPDATE_SNAPSHOTS=1 to accept.",
            path.display()
        );
    }
}

fn show(name: Option<&str>) -> String {
    render(&args(name, Output::Table), &views(), now(), Paint(false)).expect("render")
}

/// The table: one line per policy, every state recognisable at a glance.
#[test]
fn status_table_snapshot() {
    snapshot("status_table", &show(None));
}

/// Cooling down: scale-in waits for its cooldown and the spike hold, with clock times and time left.
#[test]
fn status_cooling_down_snapshot() {
    let out = show(Some("cooling"));
    assert!(
        out.contains("scale-in blocked: cooldown until 14:32 UTC (12m left); spike hold until 14:30 UTC (10m left)"),
        "{out}"
    );
    snapshot("status_cooling_down", &out);
}

/// Dry run: says what it would do and that it never does it.
#[test]
fn status_dry_run_snapshot() {
    let out = show(Some("data/dryrun"));
    assert!(out.contains("dry run: would resize 3 -> 5 (ScaleOut)"), "{out}");
    snapshot("status_dry_run", &out);
}

/// Missing data: the size is held and the metric named.
#[test]
fn status_missing_data_snapshot() {
    let out = show(Some("missing"));
    assert!(out.contains("holding the size (MissingData): hold at 4: missing data for cpu (stale)"), "{out}");
    snapshot("status_missing_data", &out);
}

/// A resize in progress: the operation and how long it has run.
#[test]
fn status_operation_in_progress_snapshot() {
    let out = show(Some("resizing"));
    assert!(out.contains("resize in progress: 4 -> 8, operation operations/"), "{out}");
    assert!(out.contains("started 3m ago"), "{out}");
    snapshot("status_operation_in_progress", &out);
}

/// Nodes warming up after a scale-out, noise headroom and a forecast: every figure says what
/// it is, the health is no OK next to a shortfall, and the lines say why the cluster is larger
/// than target arithmetic says.
#[test]
fn status_warming_up_snapshot() {
    let out = show(Some("warming"));
    assert!(out.contains("health     Shortfall"), "{out}");
    assert!(out.contains("observed 0.71 (newest sample, per serving node, 3 serving)"), "{out}");
    assert!(
        out.contains("smoothed 0.24 (per node over all 9, warming ones included; the size is computed from this)"),
        "{out}"
    );
    assert!(out.contains("6 of 9 nodes are still warming up or not yet seen serving"), "{out}");
    assert!(out.contains("sized on an effective target of 0.44 instead of 0.5"), "{out}");
    assert!(out.contains("forecasts a rise to 0.47 per node, which asks for 11 nodes"), "{out}");
    assert!(
        out.contains("shortfall: the newest cpu sample needs 4.26 nodes at the target and 3 were serving"),
        "{out}"
    );
    snapshot("status_warming_up", &out);
    let table = show(None);
    let row = table.lines().find(|l| l.starts_with("data/warming")).expect("row");
    assert!(row.contains("cpu 0.71/0.24 vs 0.5 (eff. 0.44)") && row.ends_with("Shortfall"), "{row}");
}

/// `--events`: the last 24 hours newest first, resizes with their durations and reasons in
/// words; the decision that started a resize is told once, by the resize.
#[test]
fn status_events_snapshot() {
    let mut a = args(Some("warming"), Output::Table);
    a.events = true;
    let out = render(&a, &views(), now(), Paint(false)).expect("render");
    assert!(
        out.contains("resize ScaleOutOnSpike") && out.contains("resized 3 → 9: a sustained spike; took 1m35s"),
        "{out}"
    );
    assert!(out.contains("resized 4 → 3: the load stayed below the target"), "{out}");
    assert_eq!(out.matches("3 → 9").count(), 1, "one entry for one resize: {out}");
    snapshot("status_events", &out);
    // The fleet's timeline names each policy; JSON carries the same entries.
    a.name = None;
    let fleet = render(&a, &views(), now(), Paint(false)).expect("render");
    assert!(fleet.contains("data/warming") && fleet.contains("team-b/denied"), "{fleet}");
    a.output = Output::Json;
    let json: Value = serde_json::from_str(&render(&a, &views(), now(), Paint(false)).expect("json")).expect("valid");
    let first = &json[0];
    for field in ["time", "policy", "kind", "reason", "text"] {
        assert!(first.get(field).is_some(), "{field} missing: {first}");
    }
}

/// Permission denied: the first line says the policy is not working, and why.
#[test]
fn status_permission_denied_snapshot() {
    let out = show(Some("denied"));
    let why = out.split("Why now\n").nth(1).expect("why section");
    assert!(why.starts_with("  not ready (PermissionDenied): bigtable: reading"), "{out}");
    snapshot("status_permission_denied", &out);
}

/// A policy in the directory that the controller has not evaluated yet is listed as pending.
#[test]
fn a_policy_without_status_is_pending() {
    let v = views();
    let fresh = v.iter().find(|v| v.name == "fresh").expect("listed");
    let row = readout::row(fresh, now());
    assert_eq!((row.health.level, row.health.text.as_str()), (Level::Pending, "NotEvaluated"));
    assert_eq!(row.target, "bigtable p1/orders/c5", "the spec supplies the target");
    assert!(readout::why(fresh, now())[0].starts_with("not evaluated yet"));
}

/// Without the policies directory the state file alone still gives a table; the mode is unknown.
#[test]
fn state_file_alone_reads_without_specs() {
    let (_, state) = fixture();
    let v = parse_state_file(&serde_json::to_vec(&state).expect("json"), &[]).expect("state file");
    assert_eq!(v.len(), 6);
    let row = readout::row(&v[0], now());
    assert_eq!(row.mode, None);
    assert_eq!(row.metric.as_ref().map(|m| m.name.as_str()), Some("cpu"));
    assert!(readout::table(&[row], Paint(false)).lines().nth(1).expect("row").contains("  -  "));
}

/// `-o json` carries the same facts as the text, as numbers a script can use.
#[test]
fn json_output_has_the_numbers() {
    let out = render(&args(None, Output::Json), &views(), now(), Paint(false)).expect("json");
    let rows: Value = serde_json::from_str(&out).expect("valid JSON");
    let cooling = rows.as_array().expect("array").iter().find(|r| r["policy"] == "data/cooling").expect("row");
    assert_eq!(cooling["cooldownIn"]["leftSecs"], 720);
    assert_eq!(cooling["spikeHold"]["leftSecs"], 630);
    assert_eq!(cooling["last"]["reason"], "ScaleInCooldown");
    assert_eq!(cooling["health"]["level"], "Ok");

    let one = render(&args(Some("resizing"), Output::Json), &views(), now(), Paint(false)).expect("json");
    let one: Value = serde_json::from_str(&one).expect("valid JSON");
    assert_eq!(one["recentDecisions"][0]["reason"], "ResizeInProgress", "newest first");
    assert!(
        one["why"]
            .as_array()
            .expect("why")
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.starts_with("resize in progress")))
    );

    let yaml = render(&args(Some("denied"), Output::Yaml), &views(), now(), Paint(false)).expect("yaml");
    assert!(yaml.contains("policy: team-b/denied"), "{yaml}");
}

/// Colour codes appear only when asked for, and never shift the columns.
#[test]
fn colours_only_when_painting() {
    let rows: Vec<_> = views().iter().map(|v| readout::row(v, now())).collect();
    let plain = readout::table(&rows, Paint(false));
    let painted = readout::table(&rows, Paint(true));
    assert!(!plain.contains('\x1b'));
    assert!(painted.contains("\x1b[1;31mPermissionDenied"), "{painted}");
    let strip = |s: &str| {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    };
    assert_eq!(strip(&painted), plain);
}

/// Names resolve as NAME or NAMESPACE/NAME; a name in two namespaces must be qualified.
#[test]
fn names_resolve_or_explain_the_ambiguity() {
    let mut v = views();
    let mut twin = v[0].clone();
    twin.namespace = "other".into();
    v.push(twin);
    let err = render(&args(Some("cooling"), Output::Table), &v, now(), Paint(false)).expect_err("ambiguous");
    assert!(err.contains("data/cooling, other/cooling"), "{err}");
    assert!(render(&args(Some("other/cooling"), Output::Table), &v, now(), Paint(false)).is_ok());
    let err = render(&args(Some("nope"), Output::Table), &v, now(), Paint(false)).expect_err("missing");
    assert_eq!(err, "no ScalePolicy named nope");
}

/// The controller keeps at most 20 recent decisions, one per change of reason or sizes, and the
/// intent and outcome of one tick in one entry.
#[test]
fn recent_decisions_are_bounded_and_deduplicated() {
    use ebbflow::api::DecisionRecord;
    use ebbflow::controller::status::remember;
    let rec = |min: f64, reason: &str, from: u32, to: u32| -> DecisionRecord {
        serde_json::from_value(decision(min, reason, from, to, "m", json!({"cpu": {"target": 0.5}}))).expect("record")
    };
    let mut recent = Vec::new();
    remember(&mut recent, rec(0.0, "WithinTolerance", 4, 4));
    remember(&mut recent, rec(1.0, "WithinTolerance", 4, 4));
    assert_eq!(recent.len(), 1, "a steady state is one entry");
    assert_eq!(recent[0].time, at(0.0), "which keeps the time it began");
    assert!(recent[0].metrics.is_empty(), "readings stay in lastDecision only");
    remember(&mut recent, rec(2.0, "ScaleOut", 4, 6));
    remember(&mut recent, rec(2.0, "ScaleOut", 4, 7));
    assert_eq!(recent.len(), 2, "intent and outcome of one tick share an entry");
    assert_eq!(recent[1].to, 7);
    for i in 0..50 {
        remember(
            &mut recent,
            rec(3.0 + f64::from(i), if i % 2 == 0 { "ScaleIn" } else { "ScaleOut" }, 6, 5 + (i % 2) * 2),
        );
    }
    assert_eq!(recent.len(), ebbflow::api::RECENT_DECISIONS);
    assert_eq!(recent.last().expect("newest").time, at(52.0));
}

/// A replicated Bigtable instance: every cluster on one line, with its size, a state other than
/// READY, and the operation being followed on it.
#[test]
fn an_instance_shows_every_cluster() {
    let target = json!({"bigtableInstance": {"project": "p1", "instance": "orders"}});
    let policies = vec![policy("data", "replicated", "Enforce", target)];
    let op = "operations/projects/p1/instances/orders/clusters/east/locations/us-east1-b/operations/7";
    let status = json!({
        "observedGeneration": 1, "target": "bigtable instance p1/orders (all clusters)", "currentSize": 6,
        "desiredSize": 6, "operation": op,
        "members": [
            {"name": "central", "size": 6, "state": "READY"},
            {"name": "east", "size": 6, "state": "RESIZING", "operation": op},
        ],
        "conditions": ok_conditions("bigtable instance p1/orders (all clusters)"),
    });
    let state = json!({"policies": {"data/replicated": {"resourceVersion": 3, "status": status}}});
    let v = parse_state_file(&serde_json::to_vec(&state).expect("json"), &policies).expect("state file");
    let out = render(&args(Some("replicated"), Output::Table), &v, now(), Paint(false)).expect("render");
    let line = out.lines().find(|l| l.starts_with("members")).unwrap_or_else(|| panic!("no members line: {out}"));
    assert_eq!(line, format!("members    central 6, east 6 RESIZING ({op})"), "{out}");
    // A single-cluster target has no such line.
    assert!(!show(Some("cooling")).contains("members"));
}

/// `--events` after a tick that finished one scale-out and started the next: status never timed
/// the first (the day's history ends a resize only when no resize is in flight after the tick),
/// and the timeline said "still running" for it all day. Now only the resize in flight runs; the
/// first took what the core's record of finished resizes says.
#[test]
fn a_finished_resize_is_not_shown_running() {
    let policies = vec![policy("data", "orders", "Enforce", bigtable("c7"))];
    let op = "operations/projects/p1/instances/orders/clusters/c7/locations/us-central1-b/operations/9";
    let status = json!({
        "observedGeneration": 1, "target": "bigtable p1/orders/c7", "currentSize": 5, "desiredSize": 7,
        "operation": op,
        "state": {
            "inFlight": {"from": 5, "to": 7, "startedAt": at(-6.0), "operation": op},
            "resizes": [{"from": 3, "to": 5, "finishedAt": at(-6.0)}],
        },
        "history": {"resizes": [
            {"time": at(-10.0), "from": 3, "to": 5, "reason": "ScaleOut"},
            {"time": at(-6.0), "from": 5, "to": 7, "reason": "ScaleOut"},
        ]},
        "conditions": ok_conditions("bigtable p1/orders/c7"),
    });
    let state = json!({"policies": {"data/orders": {"resourceVersion": 3, "status": status}}});
    let v = parse_state_file(&serde_json::to_vec(&state).expect("json"), &policies).expect("state file");
    let mut a = args(Some("orders"), Output::Table);
    a.events = true;
    let out = render(&a, &v, now(), Paint(false)).expect("render");
    let line = |to: &str| out.lines().find(|l| l.contains(to)).unwrap_or_else(|| panic!("no {to}: {out}"));
    assert!(line("resized 3 → 5").ends_with("; took 4m"), "{out}");
    assert!(line("resized 5 → 7").ends_with("; still running"), "{out}");
    assert_eq!(out.matches("still running").count(), 1, "{out}");
}

/// A policy whose decisions stopped (its controller hung or gone, or no replica holds it) reads
/// `Overdue` once its last decision is older than two intervals, from any reader of the status;
/// a paused policy never does, and an error keeps its own name.
#[test]
fn a_policy_not_evaluated_for_two_intervals_is_overdue() {
    let view = |mode: &str, last_min: f64| {
        let mut sp = policy("data", "stuck", mode, bigtable("c9"));
        sp.status = Some(
            serde_json::from_value(json!({
                "currentSize": 4, "desiredSize": 4,
                "lastDecision": decision(last_min, "WithinTolerance", 4, 4, "hold at 4", json!({})),
                "conditions": ok_conditions("bigtable p1/orders/c9")
            }))
            .expect("status"),
        );
        PolicyView::from_policy(&sp)
    };
    let fresh = readout::row(&view("Enforce", -1.5), now());
    assert_eq!(fresh.health.text, "OK", "90 s after the last decision, with a 60 s interval");
    let stuck = view("Enforce", -5.0);
    let row = readout::row(&stuck, now());
    assert_eq!((row.health.level, row.health.text.as_str()), (Level::Error, "Overdue"));
    assert!(readout::why(&stuck, now())[0].starts_with("overdue: last evaluated 5m ago, every 60s expected"));
    assert_ne!(readout::row(&view("Paused", -50.0), now()).health.text, "Overdue", "paused: nothing is due");
}
