//! The `bigtableInstance` target against the Google fake: a replicated instance is three
//! clusters, each a world of its own (per-node CPU is its own demand over its own serving nodes,
//! resizes take minutes), and Monitoring answers the instance query per cluster, reduced as the
//! query says.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ebbflow::adapters::{ErrorKind, OperationStatus, ResizeStarted, ScaleTarget};
use ebbflow::api::{BigtableClusterRef, BigtableInstanceRef, ScalePolicy};
use ebbflow::controller::Engine;
use ebbflow::controller::backends::ProdBackends;
use ebbflow::controller::events::LogEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::reconcile::key;
use ebbflow::controller::standalone::FileStore;
use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::bigtable_instance::storage_utilization_query;
use ebbflow::gcp::fake::{Endpoint, FakeGcp, WhileResizing, World};
use ebbflow::gcp::{BigtableCluster, BigtableInstance, GcpConfig};

const CPU: &str = r#"metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.instance="i1""#;
const CLUSTERS: [(&str, &str); 3] = [("c1", "us-central1-b"), ("c2", "us-east1-b"), ("c3", "europe-west1-b")];

fn full(c: &str) -> String {
    format!("projects/p1/instances/i1/clusters/{c}")
}

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-23T00:00:00Z").expect("time")
}

fn instance(clusters: &[&str]) -> BigtableInstanceRef {
    BigtableInstanceRef {
        project: "p1".into(),
        instance: "i1".into(),
        clusters: clusters.iter().map(|c| c.to_string()).collect(),
        storage_target: None,
    }
}

async fn fake_instance(nodes: u32) -> (FakeGcp, GcpConfig) {
    let fake = FakeGcp::start().await.expect("fake");
    for (c, zone) in CLUSTERS {
        fake.add_bigtable_cluster("p1", "i1", c, zone, nodes);
    }
    // Another instance's cluster, which the instance target must never touch.
    fake.add_bigtable_cluster("p1", "other", "c1", "us-central1-b", nodes);
    let cfg = GcpConfig::for_fake(fake.endpoint());
    (fake, cfg)
}

/// Serve nodes each PATCH asked for, by cluster ID, in order.
fn writes(fake: &FakeGcp) -> Vec<(String, u32)> {
    fake.resize_requests()
        .iter()
        .map(|r| {
            let n = serde_json::from_str::<serde_json::Value>(&r.body).ok().and_then(|b| b["serveNodes"].as_u64());
            (r.path.rsplit('/').next().unwrap_or_default().to_string(), n.unwrap_or(0) as u32)
        })
        .collect()
}

#[tokio::test]
async fn one_hot_cluster_grows_every_cluster_together() {
    let (fake, cfg) = fake_instance(3).await;
    let now = Arc::new(AtomicI64::new(start().0));
    let clock: ebbflow::clock::Clock = {
        let now = now.clone();
        Arc::new(move || Ts(now.load(Ordering::SeqCst)))
    };
    // c1 takes the application's traffic (3.3 nodes' worth at 100%); the replicas serve little.
    for (c, demand) in [("c1", 3.3), ("c2", 0.4), ("c3", 0.3)] {
        fake.add_world(World {
            cluster: full(c),
            cpu_filter: CPU.into(),
            storage_filter: storage_utilization_query(&instance(&[])).filter,
            demand: Arc::new(move |_| demand),
            data_nodes: 0.2,
            warmup: Dur::mins(20),
            resize_time: Dur::mins(4),
            lag: Dur::mins(3),
            while_resizing: WhileResizing::ResizingWithNewSize,
            cpu_overrides: Vec::new(),
            ignores_resizes: false,
            clock: clock.clone(),
        });
    }
    let yaml = format!(
        r#"
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata: {{name: orders, namespace: data}}
spec:
  target:
    bigtableInstance: {{project: p1, instance: i1}}
  minSize: 1
  maxSize: 30
  interval: 60s
  metrics:
    - name: cpu
      target: 0.6
      query:
        filter: '{CPU}'
        perSeriesAligner: ALIGN_MEAN
        crossSeriesReducer: REDUCE_MAX
"#
    );
    let mut sp: ScalePolicy = ebbflow::crd::parse_policy("orders.yaml", &yaml).expect("policy");
    sp.metadata.generation = Some(1);
    let k = key(&sp);
    let dir = std::env::temp_dir().join(format!("ebbflow-bigtable-instance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = FileStore::open(&dir.join("state.json"), vec![sp]).expect("store");
    let backends = ProdBackends::with_gcp(None, cfg).await;
    let engine =
        Engine::new(backends, store, LogEvents, Leadership::always(), Arc::new(Metrics::default())).with_clock(clock);
    for minute in 0..3 * 60 {
        now.store((start() + Dur::mins(minute)).0, Ordering::SeqCst);
        let sp = Arc::new(engine.store.current(&k).expect("policy"));
        let _ = engine.evaluate(sp.clone(), std::slice::from_ref(&sp)).await;
    }
    let status = serde_json::to_value(engine.store.current(&k).expect("policy").status).expect("status");
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);

    // The hot cluster alone needs 3.3 / 0.6 = 5.5 -> 6 nodes; the replicas alone would need 1.
    for (c, _) in CLUSTERS {
        assert_eq!(fake.bigtable_nodes(&full(c)), Some(6), "{c} ends at the hot cluster's size; status {status}");
    }
    assert_eq!(fake.bigtable_nodes("projects/p1/instances/other/clusters/c1"), Some(3), "another instance untouched");
    // Every resize went to all three clusters, to one size, each once.
    let w = writes(&fake);
    assert!(!w.is_empty(), "the hot cluster must cause a resize");
    for chunk in w.chunks(3) {
        let ids: Vec<&str> = chunk.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(ids, ["c1", "c2", "c3"], "one write per cluster per resize: {w:?}");
        assert!(chunk.iter().all(|(_, n)| *n == chunk[0].1), "one size for all: {w:?}");
    }
    assert_eq!(w.len() % 3, 0, "{w:?}");
    let h1 = fake.world_history_of(&full("c1"));
    assert_eq!(h1, fake.world_history_of(&full("c3")), "the clusters changed size together");
    // Status shows every cluster.
    let members = status["members"].as_array().expect("status.members");
    let shown: Vec<(String, u64)> = members
        .iter()
        .map(|m| (m["name"].as_str().unwrap_or("").to_string(), m["size"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(shown, [("c1".to_string(), 6), ("c2".to_string(), 6), ("c3".to_string(), 6)], "{status}");
    assert_eq!(status["currentSize"], 6);
}

#[tokio::test]
async fn a_cluster_with_builtin_autoscaling_is_refused_with_no_write() {
    let (fake, cfg) = fake_instance(3).await;
    fake.set_bigtable_autoscaling(&full("c2"), true);
    let target = BigtableInstance::connect(&cfg, &instance(&[])).await.expect("client");
    let e = target.observe().await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("cluster c2") && e.message.contains("--disable-autoscaling"), "{}", e.message);
    assert!(e.message.contains("spec.target.bigtableInstance.clusters"), "says how to leave it out: {}", e.message);
    let e = target.resize(5).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(fake.resize_requests().is_empty(), "nothing half-applied: no cluster written");
    // Leaving the autoscaled cluster out is the documented fix.
    let subset = BigtableInstance::connect(&cfg, &instance(&["c1", "c3"])).await.expect("client");
    assert_eq!(subset.observe().await.expect("observe").members.len(), 2);
}

#[tokio::test]
async fn an_operation_on_one_cluster_makes_the_target_busy() {
    let (fake, cfg) = fake_instance(3).await;
    fake.set_polls_to_finish(2);
    // Someone resizes c2 alone.
    let c2: BigtableClusterRef =
        serde_json::from_value(serde_json::json!({"project": "p1", "instance": "i1", "cluster": "c2"})).expect("ref");
    let other = BigtableCluster::connect(&cfg, &c2).await.expect("client");
    let ResizeStarted::Operation(theirs) = other.resize(4).await.expect("resize") else { panic!("an operation") };

    let target = BigtableInstance::connect(&cfg, &instance(&[])).await.expect("client");
    let o = target.observe().await.expect("observe");
    assert!(o.busy, "c2 is RESIZING: the instance is busy");
    assert_eq!(o.size, 3, "serve nodes change when the operation is done");
    let states: Vec<(&str, &str)> = o.members.iter().map(|m| (m.name.as_str(), m.state.as_str())).collect();
    assert_eq!(states, [("c1", "READY"), ("c2", "RESIZING"), ("c3", "READY")]);
    fake.clear_log();
    let e = target.resize(5).await.expect_err("busy");
    assert_eq!(e.kind, ErrorKind::Busy);
    assert!(e.message.contains("c2"), "{}", e.message);
    assert!(fake.resize_requests().is_empty(), "no cluster written while one is busy");

    // Their operation finishes; ours then resizes the two clusters that differ, and is followed
    // as one: running while either runs.
    while other.operation(&theirs).await.expect("op") == OperationStatus::Running {}
    let ResizeStarted::Operation(ours) = target.resize(4).await.expect("resize") else { panic!("operations") };
    let w = writes(&fake);
    assert_eq!(w, [("c1".to_string(), 4), ("c3".to_string(), 4)], "c2 is at 4 already");
    assert_eq!(ours.split(", ").count(), 2, "{ours}");
    assert_eq!(target.operation(&ours).await.expect("op"), OperationStatus::Running);
    let o = target.observe().await.expect("observe");
    assert!(o.busy);
    assert!(o.members[0].operation.as_deref().is_some_and(|op| op.contains("/clusters/c1/")), "{:?}", o.members);
    assert_eq!(target.operation(&ours).await.expect("op"), OperationStatus::Done);
    let o = target.observe().await.expect("observe");
    assert!(!o.busy);
    assert!(o.members.iter().all(|m| m.size == 4 && m.operation.is_none()), "{:?}", o.members);
    assert!(fake.requests_to(Endpoint::ListClusters).iter().all(|r| r.path.ends_with("/instances/i1/clusters")));
}

#[tokio::test]
async fn a_listed_cluster_that_does_not_exist_is_named() {
    let (_fake, cfg) = fake_instance(3).await;
    let target = BigtableInstance::connect(&cfg, &instance(&["c1", "c9"])).await.expect("client");
    let e = target.observe().await.expect_err("missing");
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("\"c9\"") && e.message.contains("c1, c2, c3"), "{}", e.message);
}

#[tokio::test]
async fn uneven_clusters_read_the_storage_floor_of_the_largest() {
    let (fake, cfg) = fake_instance(3).await;
    fake.add_bigtable_cluster("p1", "i1", "c2", "us-east1-b", 6);
    let target = BigtableInstance::connect(&cfg, &instance(&[])).await.expect("client");
    let o = target.observe().await.expect("observe");
    assert_eq!(o.size, 6);
    let ebbflow::adapters::FloorMetric::Storage { query, .. } = &o.floor else { panic!("a storage floor") };
    let filter = &query.monitoring().expect("monitoring").filter;
    assert!(filter.ends_with(r#"resource.labels.cluster=one_of("c2")"#), "{filter}");
    // Even again: every cluster's utilization counts, the fullest wins.
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 6);
    fake.add_bigtable_cluster("p1", "i1", "c3", "europe-west1-b", 6);
    let o = target.observe().await.expect("observe");
    let ebbflow::adapters::FloorMetric::Storage { query, .. } = &o.floor else { panic!("a storage floor") };
    assert_eq!(query.monitoring().expect("monitoring").filter, storage_utilization_query(&instance(&[])).filter);
}

#[tokio::test]
async fn a_refused_write_names_its_cluster_and_the_permission() {
    let (fake, cfg) = fake_instance(3).await;
    fake.inject(Endpoint::UpdateCluster, ebbflow::gcp::fake::Fault::PermissionDenied, 1);
    let target = BigtableInstance::connect(&cfg, &instance(&[])).await.expect("client");
    let e = target.resize(5).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    assert!(e.message.starts_with("cluster c1: ") && e.message.contains("bigtable.clusters.update"), "{}", e.message);
    assert_eq!(writes(&fake).len(), 1, "the first refusal stops the resize: no cluster left ahead of the others");
}
