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
        sizing: None,
        per_cluster_floor: None,
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
            storage_lag: Dur::ZERO,
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

// === sizing: perCluster ===

/// A policy on all of `i1` in per-cluster mode, floor 0.5, with a one-hour scale-in cooldown.
fn per_cluster_policy() -> ScalePolicy {
    let yaml = format!(
        r#"
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata: {{name: orders, namespace: data}}
spec:
  target:
    bigtableInstance: {{project: p1, instance: i1, sizing: perCluster, perClusterFloor: 0.5}}
  minSize: 1
  maxSize: 30
  interval: 60s
  scaleIn: {{cooldown: 60m}}
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
    sp
}

/// Three clusters of `nodes` each, each a world whose load is `demand(cluster, t)` (in nodes'
/// worth at 100% CPU): per-node CPU falls as its own nodes serve, resizes take 4 minutes.
async fn per_cluster_world(
    nodes: u32,
    demand: fn(&str, Ts) -> f64,
) -> (FakeGcp, GcpConfig, Arc<AtomicI64>, ebbflow::clock::Clock) {
    let (fake, cfg) = fake_instance(nodes).await;
    let now = Arc::new(AtomicI64::new(start().0));
    let clock: ebbflow::clock::Clock = {
        let now = now.clone();
        Arc::new(move || Ts(now.load(Ordering::SeqCst)))
    };
    for (c, _) in CLUSTERS {
        let id = c.to_string();
        fake.add_world(World {
            cluster: full(c),
            cpu_filter: CPU.into(),
            storage_filter: storage_utilization_query(&instance(&[])).filter,
            demand: Arc::new(move |t| demand(&id, t)),
            data_nodes: 0.2,
            warmup: Dur::mins(20),
            resize_time: Dur::mins(4),
            lag: Dur::mins(3),
            storage_lag: Dur::ZERO,
            while_resizing: WhileResizing::ResizingWithNewSize,
            cpu_overrides: Vec::new(),
            ignores_resizes: false,
            clock: clock.clone(),
        });
    }
    (fake, cfg, now, clock)
}

/// c1 takes the application's traffic, which rises at minute 60; the replicas serve little.
fn hot_c1(c: &str, t: Ts) -> f64 {
    match c {
        "c1" if t >= start() + Dur::mins(60) => 4.5,
        "c1" => 0.9,
        "c2" => 0.3,
        _ => 0.2,
    }
}

fn members_of(status: &serde_json::Value) -> Vec<(String, u64, u64, String)> {
    status["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("").to_string(),
                        m["desiredSize"].as_u64().unwrap_or(0),
                        m["appliedSize"].as_u64().unwrap_or(0),
                        m["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn per_cluster_a_hot_cluster_grows_alone_and_the_cool_ones_keep_the_floor_fraction() {
    let (fake, cfg, now, clock) = per_cluster_world(2, hot_c1).await;
    let sp = per_cluster_policy();
    let k = key(&sp);
    let dir = std::env::temp_dir().join(format!("ebbflow-bigtable-per-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = FileStore::open(&dir.join("state.json"), vec![sp]).expect("store");
    let backends = ProdBackends::with_gcp(None, cfg).await;
    let engine =
        Engine::new(backends, store, LogEvents, Leadership::always(), Arc::new(Metrics::default())).with_clock(clock);
    let size = |c: &str| fake.bigtable_nodes(&full(c)).unwrap_or(0);
    let mut status = serde_json::Value::Null;
    for minute in 0..4 * 60 {
        now.store((start() + Dur::mins(minute)).0, Ordering::SeqCst);
        let sp = Arc::new(engine.store.current(&k).expect("policy"));
        engine.evaluate(sp.clone(), std::slice::from_ref(&sp)).await.expect("evaluate");
        status = serde_json::to_value(engine.store.current(&k).expect("policy").status).expect("status");
        // Never below the floor: every cluster applied at least ceil(0.5 x the largest own
        // decision), and in the world every replica holds at least half the hot cluster's nodes.
        let m = members_of(&status);
        assert_eq!(m.len(), 3, "every cluster in status: {status}");
        let largest = m.iter().map(|(_, own, _, _)| *own).max().unwrap_or(0);
        for (c, own, applied, _) in &m {
            assert!(*applied >= largest.div_ceil(2) && applied >= own, "minute {minute}: {c} {m:?}");
        }
        for c in ["c2", "c3"] {
            assert!(size(c) >= size("c1").div_ceil(2), "minute {minute}: {c} at {} with c1 at {}", size(c), size("c1"));
        }
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);

    // c1 alone needs 4.5 / 0.6 = 7.5 nodes, and more to land inside the band.
    let hot = size("c1");
    assert!((8..=10).contains(&hot), "c1 grows to its own need: {hot}; {status}");
    // The replicas need one node each; the floor keeps them at half the hot cluster.
    for c in ["c2", "c3"] {
        assert_eq!(size(c), hot.div_ceil(2), "{c} stays at the floor fraction; {status}");
    }
    let m = members_of(&status);
    assert_eq!(m[0].1, u64::from(hot), "c1's own decision is its size: {m:?}");
    for (c, own, applied, reason) in &m[1..] {
        assert!(own < applied, "{c}'s own load asks for less than the floor: {m:?}");
        assert!(reason == "AtReplicaFloor" || reason == "WithinTolerance", "{c}: {reason}");
    }
    // One write per cluster that changes: every PATCH names one cluster, and the replicas were
    // raised by the floor (to the same size) after the hot cluster grew.
    let w = writes(&fake);
    assert!(w.iter().any(|(c, n)| c == "c1" && *n == hot), "{w:?}");
    assert!(w.iter().any(|(c, n)| c == "c2" && *n == hot.div_ceil(2)), "{w:?}");
    assert!(w.iter().filter(|(c, _)| c == "c1").count() < w.len(), "{w:?}");
    // Each cluster's own history: the replicas never at the hot cluster's size.
    assert_ne!(fake.world_history_of(&full("c1")), fake.world_history_of(&full("c2")));
    // The readout names every cluster's own and applied size.
    let sp: ScalePolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": "orders", "namespace": "data"},
        "spec": per_cluster_policy().spec, "status": status}))
    .expect("policy");
    let view = ebbflow::readout::PolicyView::from_policy(&sp);
    let text = ebbflow::readout::explain(&view, start() + Dur::mins(240), ebbflow::readout::Paint(false));
    let c2 = text.lines().find(|l| l.contains(" c2 ")).unwrap_or_default().to_string();
    assert!(c2.contains(&format!("own {}, applied {}", m[1].1, m[1].2)), "{text}");
    // The policy's last decision is one cluster's, and says which.
    assert!(status["lastDecision"]["message"].as_str().is_some_and(|m| m.starts_with("cluster c")), "{status}");
    // The dashboard's "why" list says the same per cluster.
    let why = ebbflow::readout::why(&view, start() + Dur::mins(240));
    assert!(why.iter().any(|l| l.starts_with("cluster c3 at ") && l.contains("applied")), "{why:?}");
}

#[tokio::test]
async fn per_cluster_a_cold_restart_keeps_each_clusters_cooldown() {
    // c1 is hot for 50 minutes, c2 for half an hour later on: each grows on its own, at its own
    // time, then cools. Each cluster's scale-in waits for the cooldown from its own last resize,
    // also across a restart that keeps only the state file.
    fn two_waves(c: &str, t: Ts) -> f64 {
        let m = (t - start()).0 / 60_000;
        match c {
            "c1" if m < 50 => 4.5,
            "c2" if (60..90).contains(&m) => 3.6,
            _ => 0.3,
        }
    }
    let (fake, cfg, now, clock) = per_cluster_world(2, two_waves).await;
    let sp = per_cluster_policy();
    let k = key(&sp);
    let dir = std::env::temp_dir().join(format!("ebbflow-bigtable-per-cluster-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("state.json");
    let backends = ProdBackends::with_gcp(None, cfg.clone()).await;
    let store = FileStore::open(&path, vec![sp.clone()]).expect("store");
    let engine = Engine::new(backends, store, LogEvents, Leadership::always(), Arc::new(Metrics::default()))
        .with_clock(clock.clone());
    let tick = |minute: i64| now.store((start() + Dur::mins(minute)).0, Ordering::SeqCst);
    for minute in 0..85 {
        tick(minute);
        let sp = Arc::new(engine.store.current(&k).expect("policy"));
        engine.evaluate(sp.clone(), std::slice::from_ref(&sp)).await.expect("evaluate");
    }
    let before = serde_json::to_value(engine.store.current(&k).expect("policy").status).expect("status");
    engine.store.flush().await.expect("flush");
    drop(engine);
    let last = |i: usize| {
        let s = &before["members"][i]["coreState"];
        assert!(s["inFlight"].is_null(), "cluster {i} settled before the restart: {before}");
        Ts::parse_rfc3339(s["lastResizeAt"].as_str().expect("resized")).expect("time")
    };
    let (c1_last, c2_last) = (last(0), last(1));
    assert!(
        c2_last - c1_last >= Dur::mins(20),
        "two clusters, two cooldowns: {c1_last} {c2_last} {:?} {:?}",
        fake.world_history_of(&full("c1")),
        fake.world_history_of(&full("c2"))
    );

    // Cold restart: a new engine, the state file its only memory.
    let backends = ProdBackends::with_gcp(None, cfg).await;
    let store = FileStore::open(&path, vec![sp]).expect("store reopened");
    let engine =
        Engine::new(backends, store, LogEvents, Leadership::always(), Arc::new(Metrics::default())).with_clock(clock);
    let restored = serde_json::to_value(engine.store.current(&k).expect("policy").status).expect("status");
    for i in 0..3 {
        // Timers and the resize history exactly (floats may lose a last digit through JSON).
        for field in ["lastResizeAt", "lastScaleOutAt", "resizes", "inFlight", "evaluatingSince", "budgetUsed"] {
            let (b, r) = (&before["members"][i]["coreState"][field], &restored["members"][i]["coreState"][field]);
            assert_eq!(b, r, "cluster {i}'s {field}");
        }
    }
    fake.clear_log();
    let grown = |c: &str| fake.bigtable_nodes(&full(c)).unwrap_or(0);
    let (c1_grown, c2_grown) = (grown("c1"), grown("c2"));
    let (mut c1_in, mut c2_in) = (None, None);
    for minute in 85..5 * 60 {
        tick(minute);
        let sp = Arc::new(engine.store.current(&k).expect("policy"));
        engine.evaluate(sp.clone(), std::slice::from_ref(&sp)).await.expect("evaluate");
        let w = writes(&fake);
        let at = start() + Dur::mins(minute);
        if c1_in.is_none() && w.iter().any(|(c, n)| c == "c1" && *n < c1_grown) {
            c1_in = Some(at);
        }
        if c2_in.is_none() && w.iter().any(|(c, n)| c == "c2" && *n < c2_grown) {
            c2_in = Some(at);
        }
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    // The cooldown (60m) counts from each cluster's own last resize, which only its own stored
    // state knows: a fresh state would scale in one stabilization window (20m) after the
    // restart, and c1's state would let c2 go 20 minutes early.
    let c1_in = c1_in.expect("c1 scales in once its cooldown is over");
    let c2_in = c2_in.expect("c2 scales in once its cooldown is over");
    assert!(c1_in >= c1_last + Dur::mins(60), "c1 scaled in at {c1_in}, its resize finished at {c1_last}");
    assert!(c2_in >= c2_last + Dur::mins(60), "c2 scaled in at {c2_in}, its resize finished at {c2_last}");
}

#[test]
fn a_per_cluster_floor_outside_zero_to_one_is_refused_naming_the_field() {
    let mut sp = per_cluster_policy();
    if let ebbflow::api::TargetRef::BigtableInstance(r) = &mut sp.spec.target {
        r.per_cluster_floor = Some(1.5);
    }
    let err = ebbflow::spec::policy_from_spec(&sp.spec).expect_err("refused").to_string();
    assert!(err.contains("spec.target.bigtableInstance.perClusterFloor"), "{err}");
    assert!(err.contains("at most 1") && err.contains("got 1.5"), "{err}");
}

/// Per-cluster writes: one cluster at a time, each its own operation; a busy cluster holds only
/// itself; built-in autoscaling on any selected cluster refuses every write.
#[tokio::test]
async fn per_cluster_writes_go_to_one_cluster_each() {
    let (fake, cfg) = fake_instance(3).await;
    fake.set_polls_to_finish(2);
    let c2: BigtableClusterRef =
        serde_json::from_value(serde_json::json!({"project": "p1", "instance": "i1", "cluster": "c2"})).expect("ref");
    let other = BigtableCluster::connect(&cfg, &c2).await.expect("client");
    other.resize(4).await.expect("someone resizes c2");
    let target = BigtableInstance::connect(&cfg, &instance(&[])).await.expect("client");
    let members = target.observe_members().await.expect("members");
    let seen: Vec<(&str, u32, bool, &str)> =
        members.iter().map(|m| (m.name.as_str(), m.observation.size, m.observation.busy, m.filter.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("c1", 3, false, r#"resource.labels.cluster="c1""#),
            ("c2", 3, true, r#"resource.labels.cluster="c2""#),
            ("c3", 3, false, r#"resource.labels.cluster="c3""#)
        ]
    );
    let ebbflow::adapters::FloorMetric::Storage { query, .. } = &members[2].observation.floor else { panic!("floor") };
    assert!(query.monitoring().expect("monitoring").filter.ends_with(r#"one_of("c3")"#), "its own storage");
    fake.clear_log();
    let ResizeStarted::Operation(op) = target.resize_member("c1", 5).await.expect("c1") else { panic!("an operation") };
    assert!(op.contains("/clusters/c1/"), "{op}");
    let e = target.resize_member("c2", 5).await.expect_err("c2 is busy");
    assert_eq!(e.kind, ErrorKind::Busy);
    assert_eq!(writes(&fake), [("c1".to_string(), 5)], "one write, to c1 only");
    fake.set_bigtable_autoscaling(&full("c3"), true);
    let e = target.resize_member("c1", 6).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("cluster c3"), "{}", e.message);
    assert_eq!(writes(&fake).len(), 1, "nothing written after the refusal");
}

/// Events kept for the test to read.
#[derive(Clone, Default)]
struct Recorded(Arc<std::sync::Mutex<Vec<ebbflow::controller::events::PolicyEvent>>>);

impl ebbflow::controller::events::EventSink for Recorded {
    async fn publish(&self, _: &ScalePolicy, ev: &ebbflow::controller::events::PolicyEvent) {
        self.0.lock().expect("events").push(ev.clone());
    }
}

/// Issue 29, item 13: a cluster deleted from the instance leaves status.members, and a Warning
/// Event names it (its state was dropped without a word before).
#[tokio::test]
async fn a_cluster_that_leaves_the_instance_is_named_in_a_warning() {
    let (fake, cfg, now, clock) = per_cluster_world(3, hot_c1).await;
    let sp = per_cluster_policy();
    let k = key(&sp);
    let dir = std::env::temp_dir().join(format!("ebbflow-bigtable-cluster-gone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let backends = ProdBackends::with_gcp(None, cfg).await;
    let store = FileStore::open(&dir.join("state.json"), vec![sp]).expect("store");
    let events = Recorded::default();
    let engine = Engine::new(backends, store, events.clone(), Leadership::always(), Arc::new(Metrics::default()))
        .with_clock(clock);
    let names = |engine: &Engine<_, FileStore, Recorded>| -> Vec<String> {
        let status = serde_json::to_value(engine.store.current(&k).expect("policy").status).expect("status");
        members_of(&status).into_iter().map(|m| m.0).collect()
    };
    for minute in 0..3 {
        now.store((start() + Dur::mins(minute)).0, Ordering::SeqCst);
        let sp = Arc::new(engine.store.current(&k).expect("policy"));
        engine.evaluate(sp.clone(), std::slice::from_ref(&sp)).await.expect("evaluate");
    }
    assert_eq!(names(&engine), ["c1", "c2", "c3"]);
    assert!(!events.0.lock().expect("events").iter().any(|e| e.reason == "ClusterGone"));
    fake.remove_bigtable_cluster(&full("c3"));
    now.store((start() + Dur::mins(3)).0, Ordering::SeqCst);
    let sp = Arc::new(engine.store.current(&k).expect("policy"));
    engine.evaluate(sp.clone(), std::slice::from_ref(&sp)).await.expect("evaluate");
    assert_eq!(names(&engine), ["c1", "c2"]);
    let gone: Vec<_> = events.0.lock().expect("events").iter().filter(|e| e.reason == "ClusterGone").cloned().collect();
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(gone[0].warning && gone[0].note.contains("cluster c3"), "{:?}", gone[0]);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
