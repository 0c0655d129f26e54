//! The fake is driven by Google's own `gcloud` CLI (a client nobody on this team wrote), to show
//! that it speaks the real REST API: gcloud's requests (`alt=json`, `updateMask=serve_nodes`,
//! `setSize` with the pool name in the body) are served, and the fake's state changes as the real
//! service's would. Where gcloud is not installed the tests fail if EBBFLOW_REQUIRE_GCLOUD is set
//! (as `.ci/run` sets it, so CI cannot pass by skipping), and otherwise say loudly that nothing
//! was checked.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

use ebbflow::gcp::fake::{Endpoint, FakeGcp, Fault};

const CLUSTER: &str = "projects/p1/instances/i1/clusters/c1";
const SPANNER: &str = "projects/p1/instances/i1";
const POOL: &str = "projects/p1/locations/us-central1/clusters/gke1/nodePools/pool-1";

/// Whether the test `name` can run. Without gcloud it fails when EBBFLOW_REQUIRE_GCLOUD is set,
/// and otherwise prints a SKIP banner straight to the process's stderr: the harness captures
/// `eprintln!` of a passing test, and a skip nobody sees reads as a pass.
fn gcloud_available(name: &str) -> bool {
    if Command::new("gcloud").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(
        std::env::var_os("EBBFLOW_REQUIRE_GCLOUD").is_none(),
        "EBBFLOW_REQUIRE_GCLOUD is set but gcloud is not installed: install Google's google-cloud-cli package \
         (https://cloud.google.com/sdk/docs/install#deb; .ci/run does)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIP {name}: gcloud not found; NOTHING WAS CHECKED (install google-cloud-cli; \
         .ci/run sets EBBFLOW_REQUIRE_GCLOUD=1 to make this fail) ***\n"
    );
    false
}

struct Gcloud {
    endpoint: String,
    config_dir: PathBuf,
}

/// `gcloud container node-pools describe` of the fake's pool-1, as JSON.
fn describe_pool(gcloud: &Gcloud) -> serde_json::Value {
    let out = gcloud.run(&[
        "container",
        "node-pools",
        "describe",
        "pool-1",
        "--cluster=gke1",
        "--region=us-central1",
        "--format=json",
    ]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("the pool as JSON")
}

impl Gcloud {
    fn new(fake: &FakeGcp, name: &str) -> Gcloud {
        // A private configuration directory: no user settings, credentials or state leak in or out.
        let config_dir = std::env::temp_dir().join(format!("ebbflow-gcloud-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&config_dir).expect("create a gcloud config dir");
        Gcloud { endpoint: format!("{}/", fake.endpoint()), config_dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("gcloud")
            .args(args)
            .env("CLOUDSDK_CONFIG", &self.config_dir)
            .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_BIGTABLEADMIN", &self.endpoint)
            .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER", &self.endpoint)
            .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_SPANNER", &self.endpoint)
            .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", format!("{}compute/v1/", self.endpoint))
            .env("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", "true")
            .env("CLOUDSDK_CORE_PROJECT", "p1")
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
            .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
            .env("CLOUDSDK_SURVEY_DISABLE_PROMPTS", "true")
            .output()
            .expect("run gcloud");
        eprintln!("gcloud {}: {}\n{}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr));
        out
    }
}

impl Drop for Gcloud {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.config_dir).ok();
    }
}

#[test]
fn gcloud_describes_and_resizes_the_fake_bigtable_cluster() {
    if !gcloud_available("gcloud_describes_and_resizes_the_fake_bigtable_cluster") {
        return;
    }
    let fake = FakeGcp::start_on_thread().unwrap();
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    let gcloud = Gcloud::new(&fake, "bigtable");

    let out = gcloud.run(&["bigtable", "clusters", "describe", "c1", "--instance=i1", "--format=json"]);
    assert!(out.status.success());
    let described: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(described["serveNodes"], 3);
    assert_eq!(described["state"], "READY");
    assert_eq!(fake.requests_to(Endpoint::GetCluster)[0].param("alt"), Some("json"));

    // gcloud waits for the long-running operation, polling it, then reads the cluster again
    let out = gcloud.run(&["bigtable", "clusters", "update", "c1", "--instance=i1", "--num-nodes=5"]);
    assert!(out.status.success());
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(5));
    let patch = &fake.requests_to(Endpoint::UpdateCluster)[0];
    assert_eq!(patch.param("updateMask"), Some("serve_nodes"), "gcloud's snake_case mask");
    assert!(!fake.requests_to(Endpoint::BigtableOperation).is_empty(), "gcloud polled the operation");

    // the fake's 403 is a Google error body gcloud understands
    fake.inject(Endpoint::UpdateCluster, Fault::PermissionDenied, 1);
    let out = gcloud.run(&["bigtable", "clusters", "update", "c1", "--instance=i1", "--num-nodes=7"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bigtable.clusters.update"), "{stderr}");
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(5));
}

/// gcloud reads the instance, updates its processing units through an operation it polls, lists
/// the instance's operations, and is refused a size off the ladder and a second update while one
/// runs, as Spanner refuses them. Its `--processing-units` also clears the managed autoscaler
/// (its field mask names `autoscalingConfig`), which the fake honours.
#[test]
fn gcloud_describes_and_updates_the_fake_spanner_instance() {
    if !gcloud_available("gcloud_describes_and_updates_the_fake_spanner_instance") {
        return;
    }
    let fake = FakeGcp::start_on_thread().unwrap();
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 1000);
    let gcloud = Gcloud::new(&fake, "spanner");

    let out = gcloud.run(&["spanner", "instances", "describe", "i1", "--format=json"]);
    assert!(out.status.success());
    let described: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((described["processingUnits"].as_u64(), described["nodeCount"].as_u64()), (Some(1000), Some(1)));
    assert_eq!(described["config"], "projects/p1/instanceConfigs/regional-us-central1");
    assert_eq!(fake.requests_to(Endpoint::GetSpannerInstance)[0].path, "/v1/projects/p1/instances/i1");

    // gcloud waits for the operation, polling it, then reads the instance again.
    fake.set_polls_to_finish(1);
    let out = gcloud.run(&["spanner", "instances", "update", "i1", "--processing-units=300"]);
    assert!(out.status.success());
    assert_eq!(fake.spanner_units(SPANNER), Some(300));
    let patch = &fake.requests_to(Endpoint::UpdateSpannerInstance)[0];
    let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(body["instance"]["processingUnits"], 300, "{body}");
    assert_eq!(body["fieldMask"], "processingUnits,autoscalingConfig", "gcloud's mask, in the body");
    assert!(!fake.requests_to(Endpoint::SpannerOperation).is_empty(), "gcloud polled the operation");

    // The operation gcloud followed is listed among the instance's.
    let out = gcloud.run(&["spanner", "operations", "list", "--instance=i1", "--type=INSTANCE", "--format=json"]);
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["done"], true);

    // Off the ladder: refused by the service, with the rule; the size stays.
    let out = gcloud.run(&["spanner", "instances", "update", "i1", "--processing-units=350", "--async"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiple of 100"));
    // One update at a time: the second is refused while the first runs.
    fake.set_polls_to_finish(5);
    let out = gcloud.run(&["spanner", "instances", "update", "i1", "--nodes=2", "--async"]);
    assert!(out.status.success());
    assert_eq!(fake.spanner_units(SPANNER), Some(300), "the old size until the operation is done");
    let out = gcloud.run(&["spanner", "instances", "update", "i1", "--processing-units=500", "--async"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAILED_PRECONDITION"));

    // With the managed autoscaler on, gcloud's --processing-units turns it off and sets the size.
    let fake = FakeGcp::start_on_thread().unwrap();
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 1000);
    fake.set_spanner_autoscaling(SPANNER, Some((1000, 5000)));
    fake.set_polls_to_finish(0);
    let gcloud = Gcloud::new(&fake, "spanner-managed");
    let out = gcloud.run(&["spanner", "instances", "update", "i1", "--processing-units=2000", "--async"]);
    assert!(out.status.success());
    let out = gcloud.run(&["spanner", "instances", "describe", "i1", "--format=json"]);
    let described: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(described["processingUnits"], 2000);
    assert!(described.get("autoscalingConfig").is_none(), "{described}");
}

/// gcloud changes built-in autoscaling limits on the fake as Bigtable and Spanner take them:
/// Bigtable's `--autoscaling-min-nodes` (a PartialUpdateCluster with the snake_case limits
/// mask), Spanner's `--autoscaling-min-processing-units` (the camelCase path in the body's
/// fieldMask); a maximum over ten times the minimum is refused by both; a new limit is not a new
/// size; Bigtable's `--disable-autoscaling --num-nodes` turns autoscaling off and sets the size.
#[test]
fn gcloud_steers_the_fake_built_in_autoscalers() {
    if !gcloud_available("gcloud_steers_the_fake_built_in_autoscalers") {
        return;
    }
    let fake = FakeGcp::start_on_thread().unwrap();
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 4);
    fake.set_bigtable_autoscaling_limits(CLUSTER, Some((2, 10)));
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 2000);
    fake.set_spanner_autoscaling(SPANNER, Some((1000, 5000)));
    fake.set_polls_to_finish(0);
    let gcloud = Gcloud::new(&fake, "steer");

    let out =
        gcloud.run(&["bigtable", "clusters", "update", "c1", "--instance=i1", "--autoscaling-min-nodes=5", "--async"]);
    assert!(out.status.success());
    let patch = &fake.requests_to(Endpoint::UpdateCluster)[0];
    assert_eq!(
        patch.param("updateMask"),
        Some("cluster_config.cluster_autoscaling_config.autoscaling_limits.min_serve_nodes")
    );
    assert_eq!((fake.bigtable_autoscaling(CLUSTER), fake.bigtable_nodes(CLUSTER)), (Some((5, 10)), Some(4)));
    let out =
        gcloud.run(&["bigtable", "clusters", "update", "c1", "--instance=i1", "--autoscaling-max-nodes=60", "--async"]);
    assert!(!out.status.success(), "60 > 10 x 5");
    assert!(String::from_utf8_lossy(&out.stderr).contains("10 x min_serve_nodes"));
    let out = gcloud.run(&["bigtable", "clusters", "describe", "c1", "--instance=i1", "--format=json"]);
    let described: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let limits = &described["clusterConfig"]["clusterAutoscalingConfig"]["autoscalingLimits"];
    assert_eq!((limits["minServeNodes"].as_u64(), limits["maxServeNodes"].as_u64()), (Some(5), Some(10)));
    let out = gcloud.run(&[
        "bigtable",
        "clusters",
        "update",
        "c1",
        "--instance=i1",
        "--disable-autoscaling",
        "--num-nodes=7",
        "--async",
    ]);
    assert!(out.status.success());
    assert_eq!((fake.bigtable_autoscaling(CLUSTER), fake.bigtable_nodes(CLUSTER)), (None, Some(7)));

    let out =
        gcloud.run(&["spanner", "instances", "update", "i1", "--autoscaling-min-processing-units=3000", "--async"]);
    assert!(out.status.success());
    let body: serde_json::Value =
        serde_json::from_str(&fake.requests_to(Endpoint::UpdateSpannerInstance)[0].body).unwrap();
    assert_eq!(body["fieldMask"], "autoscalingConfig.autoscalingLimits.minProcessingUnits");
    assert_eq!(
        (fake.spanner_autoscaling(SPANNER), fake.spanner_units(SPANNER)),
        (Some((3000, 5000)), Some(2000)),
        "a new minimum, not a new size, until the autoscaler acts"
    );
    let out =
        gcloud.run(&["spanner", "instances", "update", "i1", "--autoscaling-max-processing-units=40000", "--async"]);
    assert!(!out.status.success(), "40000 > 10 x 3000");
    assert_eq!(fake.spanner_autoscaling(SPANNER), Some((3000, 5000)));
}

#[test]
fn gcloud_resizes_the_fake_gke_node_pool() {
    if !gcloud_available("gcloud_resizes_the_fake_gke_node_pool") {
        return;
    }
    let fake = FakeGcp::start_on_thread().unwrap();
    fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 2, &["us-central1-a", "us-central1-b"]);
    let gcloud = Gcloud::new(&fake, "gke");

    let described = describe_pool(&gcloud);
    assert_eq!(described["initialNodeCount"], 2);
    assert_eq!(described["locations"].as_array().unwrap().len(), 2);

    // --num-nodes is per zone, as gcloud documents it
    let out = gcloud.run(&[
        "container",
        "clusters",
        "resize",
        "gke1",
        "--node-pool=pool-1",
        "--num-nodes=4",
        "--region=us-central1",
    ]);
    assert!(out.status.success());
    assert_eq!(fake.node_pool(POOL), Some((4, None)));
    let set_size = &fake.requests_to(Endpoint::SetNodePoolSize)[0];
    assert_eq!(set_size.path, format!("/v1/{POOL}:setSize"));
    let body: serde_json::Value = serde_json::from_str(&set_size.body).unwrap();
    assert_eq!(body["nodeCount"], 4);
    assert_eq!(body["name"], POOL, "gcloud sends the name in the body as well");
    assert!(!fake.requests_to(Endpoint::GkeOperation).is_empty(), "gcloud waited for the operation");

    // As GKE does, the pool keeps its creation count in initialNodeCount; the live count is in
    // its instance groups, which gcloud reads from the Compute API the fake speaks too.
    let described = describe_pool(&gcloud);
    assert_eq!(described["initialNodeCount"], 2, "not changed by the resize");
    let urls = described["instanceGroupUrls"].as_array().unwrap();
    assert_eq!(urls.len(), 2, "one group per zone");
    for (url, zone) in urls.iter().zip(["us-central1-a", "us-central1-b"]) {
        let group = url.as_str().unwrap().rsplit('/').next().unwrap();
        let out = gcloud.run(&[
            "compute",
            "instance-groups",
            "managed",
            "describe",
            group,
            &format!("--zone={zone}"),
            "--format=json",
        ]);
        assert!(out.status.success());
        let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(g["targetSize"], 4, "{g}");
        assert_eq!(g["name"], group);
    }
    let reads = fake.requests_to(Endpoint::GetInstanceGroupManager);
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads[0].path.starts_with("/compute/v1/projects/p1/zones/us-central1-a/instanceGroupManagers/"));
}

/// `gcloud compute instance-groups managed delete-instances`, the call a node-pool drain makes
/// (through the Rust client) once a node is empty: the fake takes the named VM out of its zone's
/// group, drops the group's target size by one at once, and answers with a zone operation gcloud
/// follows to DONE.
#[test]
fn gcloud_deletes_one_vm_from_the_fake_node_pool_group() {
    if !gcloud_available("gcloud_deletes_one_vm_from_the_fake_node_pool_group") {
        return;
    }
    let fake = FakeGcp::start_on_thread().unwrap();
    fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 3, &["us-central1-a", "us-central1-b"]);
    let gcloud = Gcloud::new(&fake, "gke-delete");
    let described = describe_pool(&gcloud);
    let url = described["instanceGroupUrls"][0].as_str().unwrap().to_string();
    let group = url.rsplit('/').next().unwrap();
    let before = fake.group_instances(POOL, "us-central1-a");
    let victim = before[1].clone();
    let out = gcloud.run(&[
        "compute",
        "instance-groups",
        "managed",
        "delete-instances",
        group,
        &format!("--instances={victim}"),
        "--zone=us-central1-a",
        "--format=json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = fake.group_instances(POOL, "us-central1-a");
    assert_eq!(after, [before[0].clone(), before[2].clone()], "exactly the named VM left");
    assert_eq!(fake.group_sizes(POOL), [2, 3], "the group's target size dropped at once, the other zone's did not");
    let sent = &fake.requests_to(Endpoint::DeleteInstances)[0];
    assert_eq!(
        sent.path,
        format!("/compute/v1/projects/p1/zones/us-central1-a/instanceGroupManagers/{group}/deleteInstances")
    );
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert!(
        body["instances"][0].as_str().unwrap().ends_with(&format!("zones/us-central1-a/instances/{victim}")),
        "{body}"
    );
    assert_eq!(describe_pool(&gcloud)["initialNodeCount"], 3, "GKE's own count does not follow");
}
