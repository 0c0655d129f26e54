//! The example policies in `deploy/examples/` (one per target kind) and `simulations/policies/`
//! pass the generated CRD schema and the core's validation; broken variants of them are refused
//! with messages that name the field and say how to fix it.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebbflow::crd::{LoadError, parse_policy, schema_issues};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn doc(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_example_matches_the_schema_and_validates() {
    let mut kinds = Vec::new();
    for path in yaml_files("deploy/examples").into_iter().chain(yaml_files("simulations/policies")) {
        let issues = schema_issues(&doc(&path));
        assert!(issues.is_empty(), "{}: {issues:?}", path.display());
        let (sp, _) = ebbflow::crd::load_policy(&path).unwrap_or_else(|e| panic!("{e}"));
        if path.starts_with(root().join("deploy/examples")) {
            kinds.push(sp.spec.target.kind().field());
        }
    }
    kinds.sort();
    kinds.dedup();
    // The API server enforces the target's one-of CEL rule, which the schema check above does not
    // evaluate: a kind missing from it makes every policy of that kind unappliable.
    let rule = ebbflow::api::TargetRef::one_of_rule();
    let crd = ebbflow::crd::crd_yaml();
    assert!(crd.contains(&rule), "the CRD carries {rule}");
    for kind in &kinds {
        assert!(rule.contains(&format!("has(self.{kind})")), "{rule} lets a {kind} target through");
    }
    assert_eq!(
        kinds,
        ["bigtableCluster", "bigtableInstance", "gkeNodePool", "spannerInstance", "workload"],
        "one example per target kind"
    );
}

/// What loading a broken variant of the workload example says, as one string.
fn refusal(edit: impl FnOnce(&mut Value)) -> String {
    let mut d = doc(&root().join("deploy/examples/workload.yaml"));
    edit(&mut d);
    let text = serde_saphyr::to_string(&d).expect("yaml");
    let sp = match parse_policy("bad.yaml", &text) {
        Ok(sp) => sp,
        Err(e @ (LoadError::Schema { .. } | LoadError::Parse { .. })) => return e.to_string(),
        Err(e) => panic!("unexpected: {e}"),
    };
    match ebbflow::spec::policy_from_spec(&sp.spec) {
        Ok(_) => panic!("accepted a bad policy: {text}"),
        Err(e) => format!("bad.yaml: {e}"),
    }
}

fn set(path: &str, v: Value) -> impl FnOnce(&mut Value) {
    let path = path.to_string();
    move |d: &mut Value| *d.pointer_mut(&path).unwrap_or_else(|| panic!("no {path}")) = v
}

fn insert(path: &str, key: &str, v: Value) -> impl FnOnce(&mut Value) {
    let (path, key) = (path.to_string(), key.to_string());
    move |d: &mut Value| {
        d.pointer_mut(&path).and_then(Value::as_object_mut).unwrap_or_else(|| panic!("no {path}")).insert(key, v);
    }
}

fn remove(path: &str, key: &str) -> impl FnOnce(&mut Value) {
    let (path, key) = (path.to_string(), key.to_string());
    move |d: &mut Value| {
        d.pointer_mut(&path).and_then(Value::as_object_mut).unwrap_or_else(|| panic!("no {path}")).remove(&key);
    }
}

#[track_caller]
fn refused(message: String, field: &str, hint: &str) {
    assert!(message.starts_with("bad.yaml: "), "names the file: {message}");
    assert!(message.contains(&format!("{field}: ")), "names {field}: {message}");
    assert!(message.contains(hint), "says {hint:?}: {message}");
}

#[test]
fn schema_errors_name_the_field() {
    // A misspelt key would be pruned by the API server and silently ignored; here it is an error.
    refused(refusal(insert("/spec", "minsize", json!(2))), "spec.minsize", "unknown field; the fields here are:");
    refused(refusal(set("/spec/scaleIn/cooldown", json!("5 minutes"))), "spec.scaleIn.cooldown", "e.g. \"30s\"");
    refused(refusal(insert("/spec", "mode", json!("enforce"))), "spec.mode", "\"Enforce\"");
    refused(refusal(set("/spec/metrics/0/target", json!("high"))), "spec.metrics[0].target", "must be a number");
    refused(refusal(set("/spec/minSize", json!(1.5))), "spec.minSize", "whole number");
    refused(
        refusal(set("/spec/metrics/0/query/perSeriesAligner", json!("MEAN"))),
        "spec.metrics[0].query.perSeriesAligner",
        "ALIGN_MEAN",
    );
    refused(refusal(remove("/spec", "metrics")), "spec.metrics", "is required");
    refused(refusal(set("/spec/target/workload/name", json!(""))), "spec.target.workload.name", "must not be empty");
    refused(refusal(set("/apiVersion", json!("ebbflow.dev/v1"))), "apiVersion", "ebbflow.dev/v1alpha1");
    refused(
        refusal(insert("/spec/target", "bigtableCluster", json!({"project": "p", "instance": "i", "cluster": "c"}))),
        "spec.target",
        "exactly one of bigtableCluster, bigtableInstance, gkeNodePool, spannerInstance, workload (found 2)",
    );
    refused(refusal(set("/spec/target", json!({}))), "spec.target", "(found 0)");
    // Warm-up only exists for scale-out (removed capacity stops serving at once).
    refused(refusal(insert("/spec/scaleIn", "warmup", json!("1m"))), "spec.scaleIn.warmup", "unknown field");
    refused(
        refusal(insert("/spec/scaleIn", "maxStepPercent", json!(150))),
        "spec.scaleIn.maxStepPercent",
        "at most 100",
    );
}

#[test]
fn a_bigtable_instance_listing_a_cluster_twice_is_refused_with_the_fix() {
    let mut d = doc(&root().join("deploy/examples/bigtable-instance.yaml"));
    d["spec"]["target"]["bigtableInstance"]["clusters"] = json!(["a", "b", "a"]);
    let sp = parse_policy("bad.yaml", &serde_saphyr::to_string(&d).expect("yaml")).expect("schema allows it");
    let e = ebbflow::spec::policy_from_spec(&sp.spec).expect_err("refused").to_string();
    assert!(e.contains("spec.target.bigtableInstance.clusters") && e.contains("list each cluster once"), "{e}");
    // The per-cluster mode is spelled `sizing: perCluster`; a guessed `mode` is an unknown
    // field, not silently ignored.
    d["spec"]["target"]["bigtableInstance"]["clusters"] = json!(["a"]);
    d["spec"]["target"]["bigtableInstance"]["mode"] = json!("perCluster");
    let e = parse_policy("bad.yaml", &serde_saphyr::to_string(&d).expect("yaml")).expect_err("unknown").to_string();
    assert!(e.contains("spec.target.bigtableInstance.mode") && e.contains("unknown field"), "{e}");
}

/// The CRD's CEL rules run in the API server; `policy_from_spec` enforces the same rules for
/// files and the simulator, with the same field names.
#[test]
fn cel_rules_are_enforced_for_files_too() {
    let crd = ebbflow::crd::crd_yaml();
    for rule in [
        "self.minSize <= self.maxSize",
        "duration(self) > duration('0s')",
        "duration(self) >= duration('60s')",
        "duration(self) >= duration('10s')",
        "has(self.target.spannerInstance) || self.metrics.all(m, has(m.target))",
    ] {
        assert!(crd.contains(rule), "the CRD carries {rule}");
    }
    refused(refusal(set("/spec/minSize", json!(50))), "spec.minSize", "greater than maxSize (40)");
    refused(
        refusal(set("/spec/metrics/0/smoothing/window", json!("0s"))),
        "spec.metrics[0].smoothing.window",
        "greater than 0",
    );
    refused(
        refusal(set("/spec/metrics/0/query/alignmentPeriod", json!("30s"))),
        "spec.metrics[0].query.alignmentPeriod",
        "at least 60s",
    );
    refused(refusal(insert("/spec", "interval", json!("5s"))), "spec.interval", "at least 10s");
    refused(refusal(remove("/spec/metrics/0", "target")), "spec.metrics[0].target", "is required");
    refused(
        refusal(remove("/spec/metrics/0/query", "project")),
        "spec.metrics[0].query.project",
        "required for a workload target",
    );
}

/// Setting one pace field keeps the defaults of the others (fast out, slow in), and null lifts a
/// step limit.
#[test]
fn partial_pace_blocks_keep_their_defaults() {
    let mut d = doc(&root().join("deploy/examples/workload.yaml"));
    d["spec"]["scaleOut"] = json!({"cooldown": "1m", "maxStepPercent": null});
    let text = serde_saphyr::to_string(&d).expect("yaml");
    let sp = parse_policy("p.yaml", &text).expect("parse");
    let p = ebbflow::spec::policy_from_spec(&sp.spec).expect("valid");
    // workload.yaml sets scaleIn.cooldown and stabilizationWindow only.
    assert_eq!((p.scale_in.step_nodes, p.scale_in.step_percent), (Some(1), Some(10)));
    assert_eq!(p.scale_in.cooldown, ebbflow::core::Dur::mins(5));
    assert_eq!((p.scale_out.step_nodes, p.scale_out.step_percent), (Some(4), None));
    assert_eq!(p.scale_out.cooldown, ebbflow::core::Dur::mins(1));
}

/// `ebbflow validate` accepts the examples and lists every problem of a bad file, by field.
#[test]
fn validate_command_reports_every_problem() {
    let ok = Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .arg("validate")
        .args(yaml_files("deploy/examples"))
        .output()
        .expect("run ebbflow");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).matches(": ok (").count(), yaml_files("deploy/examples").len());

    let dir = std::env::temp_dir().join(format!("ebbflow-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(root().join("deploy/examples/workload.yaml"))
        .expect("example")
        .replace("minSize: 1", "minSize: 100")
        .replace("window: 4m", "window: 0s");
    std::fs::write(&bad, text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_ebbflow")).arg("validate").arg(&bad).output().expect("run ebbflow");
    std::fs::remove_dir_all(&dir).ok();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("spec.minSize: minSize (100) is greater than maxSize (40)"), "{err}");
    assert!(err.contains("spec.metrics[0].smoothing.window: must be greater than 0"), "{err}");
}

/// A broken variant of the named example, loaded and validated: what it says, as one string.
fn refusal_of(example: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut d = doc(&root().join("deploy/examples").join(example));
    edit(&mut d);
    let text = serde_saphyr::to_string(&d).expect("yaml");
    let sp = match parse_policy("bad.yaml", &text) {
        Ok(sp) => sp,
        Err(e @ (LoadError::Schema { .. } | LoadError::Parse { .. })) => return e.to_string(),
        Err(e) => panic!("unexpected: {e}"),
    };
    match ebbflow::spec::policy_from_spec(&sp.spec) {
        Ok(_) => panic!("accepted a bad policy: {text}"),
        Err(e) => format!("bad.yaml: {e}"),
    }
}

/// The Kubernetes-metric and guard examples: their mistakes are refused by field, with the fix.
#[test]
fn kubernetes_metric_and_guard_mistakes_name_the_field() {
    let k8s = "bigtable-follows-subscribers.yaml";
    refused(
        refusal_of(k8s, insert("/spec/metrics/1", "query", json!({"filter": "metric.type=\"x\""}))),
        "spec.metrics[1].kubernetes",
        "set only one of query (Cloud Monitoring) or kubernetes",
    );
    refused(
        refusal_of(k8s, remove("/spec/metrics/1", "kubernetes")),
        "spec.metrics[1].query",
        "each metric needs a source",
    );
    refused(
        refusal_of(
            k8s,
            set(
                "/spec/metrics/1/kubernetes",
                json!({"field": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "s", "path": "items[*].x"}}),
            ),
        ),
        "spec.metrics[1].kubernetes.field.path",
        "not a dotted path; write e.g. status.replicas",
    );
    refused(
        refusal_of(k8s, set("/spec/metrics/1/kubernetes/replicas/count", json!("available"))),
        "spec.metrics[1].kubernetes.replicas.count",
        "desired",
    );
    let guard = "bigtable-hot-node-guard.yaml";
    refused(
        refusal_of(guard, insert("/spec/metrics/0", "role", json!("guard"))),
        "spec.metrics",
        "at least one must size the target",
    );
    refused(refusal_of(guard, set("/spec/metrics/1/role", json!("veto"))), "spec.metrics[1].role", "guard");
}

/// The per-cluster example: a floor outside (0, 1], a floor without per-cluster sizing, and an
/// unknown sizing are refused naming the field and the fix.
#[test]
fn a_per_cluster_floor_out_of_range_is_refused_with_the_fix() {
    let example = "bigtable-instance-per-cluster.yaml";
    let (sp, _) = ebbflow::crd::load_policy(&root().join("deploy/examples").join(example)).expect("loads");
    assert_eq!(sp.spec.target.kind().per_member_floor(), Some(0.5), "the example sizes per cluster");
    for bad in [0.0, 1.2] {
        refused(
            refusal_of(example, set("/spec/target/bigtableInstance/perClusterFloor", json!(bad))),
            "spec.target.bigtableInstance.perClusterFloor",
            "more than 0 and at most 1",
        );
    }
    refused(
        refusal_of(example, set("/spec/target/bigtableInstance/sizing", json!("largest"))),
        "spec.target.bigtableInstance.perClusterFloor",
        "applies only with sizing: perCluster",
    );
    refused(
        refusal_of(example, set("/spec/target/bigtableInstance/sizing", json!("eachOwn"))),
        "spec.target.bigtableInstance.sizing",
        "perCluster",
    );
}

/// Every policy the project ships: the examples, the simulator's policies, and those the bundled
/// scenarios and examples replay.
fn bundled_policies() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        yaml_files("deploy/examples").into_iter().chain(yaml_files("simulations/policies")).collect();
    for dir in ["simulations/scenarios", "simulations/examples"] {
        for scenario in yaml_files(dir) {
            let f = ebbflow::sim::scenario::ScenarioFile::load(&scenario).unwrap_or_else(|e| panic!("{e}"));
            let policy = f.policy.unwrap_or_else(|| panic!("{}: names no policy", scenario.display()));
            files.push(policy.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", policy.display())));
        }
    }
    files.sort();
    files.dedup();
    files
}

/// No bundled policy holds a metric outside its unit (`target: 60` on Bigtable's 0-1 `cpu_load`
/// validated, and shrank a cluster toward minSize when applied): each validates against the
/// registry, every built-in metric type it reads is in the registry (so the check covers it),
/// and each fraction metric's levels, written as percent, are refused naming the field.
#[test]
fn every_bundled_policy_holds_its_metrics_in_their_units() {
    use ebbflow::core::units::{Unit, lookup, metric_type};
    let mut fractions = 0;
    for path in bundled_policies() {
        let (sp, _) = ebbflow::crd::load_policy(&path).unwrap_or_else(|e| panic!("{e}"));
        for (i, m) in sp.spec.metrics.iter().enumerate() {
            let Some(q) = &m.source.query else { continue };
            let ty =
                metric_type(&q.filter).unwrap_or_else(|| panic!("{}: metric {i} names no metric.type", path.display()));
            let Some(known) = lookup(ty) else {
                assert!(
                    ty.starts_with("custom.googleapis.com/"),
                    "{}: {ty} is not in the unit registry",
                    path.display()
                );
                continue;
            };
            if known.unit != Unit::Fraction {
                continue;
            }
            fractions += 1;
            let target = ebbflow::spec::target_of(&sp.spec, m).expect("a target, written or recommended");
            assert!(target > 0.0 && target <= 1.0, "{}: {} target {}", path.display(), m.name, target);
            let mut d = doc(&path);
            d["spec"]["metrics"][i]["target"] = json!(target * 100.0);
            let text = serde_saphyr::to_string(&d).expect("yaml");
            let e = ebbflow::crd::check_policy("bad.yaml", &text).expect_err("a percent target").to_string();
            let want = format!("spec.metrics[{i}].target: ");
            assert!(e.contains(&want) && e.contains(&format!("but {ty} is a fraction (0-1): write ")), "{e}");
        }
    }
    assert!(fractions >= 8, "the bundled CPU policies are checked: {fractions}");
}

/// The mistake of issue 28: percent on Bigtable's CPU. Refused by `validate` (and so by the
/// controller, standalone loading, simulate and tune, which all validate through the same rules)
/// naming the field and the fraction to write; the guard's level and the headroom limit too.
#[test]
fn a_percent_target_on_cpu_load_is_refused_naming_the_field_and_the_fix() {
    refused(
        refusal_of("bigtable-cluster.yaml", set("/spec/metrics/0/target", json!(60))),
        "spec.metrics[0].target",
        "60 is above 1, but bigtable.googleapis.com/cluster/cpu_load is a fraction (0-1): write 0.6 for 60 %",
    );
    refused(
        refusal_of("bigtable-cluster.yaml", insert("/spec/metrics/0", "headroom", json!({"limit": 75}))),
        "spec.metrics[0].headroom.limit",
        "75 is above 1, but bigtable.googleapis.com/cluster/cpu_load is a fraction (0-1): write 0.75 for 75 %",
    );
    refused(
        refusal_of("bigtable-hot-node-guard.yaml", set("/spec/metrics/1/target", json!(90))),
        "spec.metrics[1].target",
        "bigtable.googleapis.com/cluster/cpu_load_hottest_node is a fraction (0-1): write 0.9 for 90 %",
    );
    // A count has no upper bound: 50000 undelivered messages per replica is a level like any.
    let (sp, _) = ebbflow::crd::load_policy(&root().join("deploy/examples/workload.yaml")).expect("loads");
    let mut d = doc(&root().join("deploy/examples/workload.yaml"));
    d["spec"]["metrics"][0]["target"] = json!(sp.spec.metrics[0].target_value() * 100.0);
    ebbflow::crd::check_policy("w.yaml", &serde_saphyr::to_string(&d).expect("yaml")).expect("a count is unbounded");

    let dir = std::env::temp_dir().join(format!("ebbflow-validate-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("percent.yaml");
    let text = std::fs::read_to_string(root().join("deploy/examples/bigtable-cluster.yaml")).expect("example");
    std::fs::write(&bad, text.replace("target: 0.6", "target: 60")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_ebbflow")).arg("validate").arg(&bad).output().expect("run ebbflow");
    std::fs::remove_dir_all(&dir).ok();
    assert!(!out.status.success(), "validate says ok to target 60 on cpu_load");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("percent.yaml") && err.contains("spec.metrics[0].target: 60 is above 1"), "{err}");
    assert!(err.contains("write 0.6 for 60 %"), "{err}");
}
