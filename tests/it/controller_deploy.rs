//! The manifests in `deploy/` agree with the code: RBAC grants exactly the API calls the code
//! makes, the CRD is the generated one, and the Deployment is hardened and wired as the code
//! expects (probes, identity, Lease namespace).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn docs(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Every (apiGroup, resource, verb) granted by the ClusterRole and the Role equals the list the
/// code keeps in `ebbflow::controller::RBAC`: nothing missing (a 403 in production), nothing extra.
#[test]
fn rbac_grants_exactly_what_the_code_calls() {
    let mut granted = BTreeSet::new();
    for doc in docs("rbac.yaml") {
        if !matches!(doc["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in doc["rules"].as_array().expect("rules") {
            for g in strs(&rule["apiGroups"]) {
                for r in strs(&rule["resources"]) {
                    for v in strs(&rule["verbs"]) {
                        granted.insert((g.clone(), r.clone(), v));
                    }
                }
            }
        }
    }
    let used: BTreeSet<(String, String, String)> =
        ebbflow::controller::RBAC.iter().map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string())).collect();
    let missing: Vec<_> = used.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&used).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from deploy/rbac.yaml: {missing:?}; granted but unused: {extra:?}"
    );
    assert!(!granted.iter().any(|(_, _, v)| v == "*"), "no wildcard verbs");
}

/// The Lease is only granted in the namespace the controller runs in, which is where the code
/// looks for it (POD_NAMESPACE).
#[test]
fn lease_role_lives_in_the_controller_namespace() {
    let role = docs("rbac.yaml").into_iter().find(|d| d["kind"] == "Role").expect("Role");
    let deployment = &docs("deployment.yaml")[0];
    assert_eq!(role["metadata"]["namespace"], deployment["metadata"]["namespace"]);
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    let pod_ns = env.as_array().expect("env").iter().find(|e| e["name"] == "POD_NAMESPACE").expect("POD_NAMESPACE");
    assert_eq!(pod_ns["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
}

/// crds/scalepolicy.yaml is what `ebbflow crd` prints, and the deploy kustomization includes it.
#[test]
fn crd_manifest_matches_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let on_disk = std::fs::read_to_string(root.join("crds/scalepolicy.yaml")).expect("crds/scalepolicy.yaml");
    assert!(
        on_disk == ebbflow::crd::crd_yaml(),
        "crds/scalepolicy.yaml drifted from the code: run `cargo run -- crd > crds/scalepolicy.yaml`"
    );
    let crds = &docs("../crds/kustomization.yaml")[0];
    assert_eq!(strs(&crds["resources"]), ["scalepolicy.yaml"]);
    let deploy = &docs("kustomization.yaml")[0];
    assert!(strs(&deploy["resources"]).contains(&"../crds".to_string()), "deploy/ must include ../crds");
}

/// Three replicas sharing shards, spread over zones, at most one down by a disruption;
/// non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp, resource
/// requests, and probes on the endpoints the code serves.
#[test]
fn deployment_is_hardened_and_probed() {
    let d = &docs("deployment.yaml")[0];
    assert_eq!(d["spec"]["replicas"], 3);
    let args = strs(&d["spec"]["template"]["spec"]["containers"][0]["args"]);
    let shards = args.iter().position(|a| a == "--shards").and_then(|i| args.get(i + 1)).expect("--shards N");
    assert!(shards.parse::<u32>().is_ok_and(|n| n >= 3), "at least one shard per replica: {args:?}");
    assert_eq!(
        d["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
    let pdb = &docs("pdb.yaml")[0];
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], d["spec"]["selector"]["matchLabels"]);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(strs(&c["securityContext"]["capabilities"]["drop"]), vec!["ALL"]);
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["requests"]["memory"].is_string());
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(strs(&c["args"])[0], "run");

    let sa = &docs("serviceaccount.yaml")[0];
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    assert!(sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].is_string());
    for binding in docs("rbac.yaml").into_iter().filter(|d| d["kind"].as_str().is_some_and(|k| k.ends_with("Binding")))
    {
        assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
        assert_eq!(binding["subjects"][0]["namespace"], sa["metadata"]["namespace"]);
    }
}

/// kustomization.yaml lists every manifest in deploy/.
#[test]
fn kustomization_lists_every_manifest() {
    let k = &docs("kustomization.yaml")[0];
    let listed: BTreeSet<String> = strs(&k["resources"]).into_iter().collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("deploy/")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .chain(["../crds".to_string()])
        .collect();
    assert_eq!(listed, files, "deploy/kustomization.yaml lists every manifest here plus ../crds");
}
