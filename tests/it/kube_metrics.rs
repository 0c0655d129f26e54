//! Kubernetes state as a metric: the watch-cache source against a mock API server that lists and
//! watches, and a Bigtable policy that follows its subscriber Deployment through the Google fake.

use crate::controller_support;
use crate::gcp_support;

use std::time::Duration;

use controller_support::mock_client;
use controller_support::watch::{WatchServer, deployment, pod};
use ebbflow::adapters::{ErrorKind, MetricQuery, MetricSource, Sources};
use ebbflow::api::{MetricSpec, ScalePolicySpec};
use ebbflow::controller::kubemetrics::KubeMetrics;
use ebbflow::core::{Dur, PolicyState, Reason, Ts};
use ebbflow::gcp::CloudMonitoring;
use ebbflow::tick::{Actuation, tick};
use gcp_support::{CLUSTER, CPU, bigtable, cpu_script, fake, now};
use serde_json::json;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/data/deployments";
const PODS: &str = "/api/v1/namespaces/data/pods";

fn metric(kubernetes: serde_json::Value) -> MetricQuery {
    let m: MetricSpec =
        serde_json::from_value(json!({"name": "k", "target": 1.0, "kind": "total", "kubernetes": kubernetes}))
            .expect("metric");
    ebbflow::spec::metric_query(&m, "p1", "data")
}

fn replicas(name: &str, count: &str) -> MetricQuery {
    metric(json!({"replicas": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "count": count}}))
}

/// Fetch until the value is `want` (a watch event takes a moment to reach the cache).
async fn eventually(source: &KubeMetrics, q: &MetricQuery, want: f64) {
    let mut last = None;
    for _ in 0..100 {
        let r = source.fetch(q, Ts(0), now()).await;
        if let Ok(s) = &r
            && s.samples.last().map(|x| x.value) == Some(want)
        {
            return;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never read {want}: last {last:?}");
}

#[tokio::test]
async fn replicas_follow_the_watch_and_a_missing_object_is_missing_not_zero() {
    let (client, handle) = mock_client();
    let server = WatchServer::start(handle);
    server.put(DEPLOYMENTS, deployment("subscriber", 4, None));
    let source = KubeMetrics::new(Some(client)).with_sync_wait(Duration::from_secs(2));
    let desired = replicas("subscriber", "desired");
    let s = source.fetch(&desired, Ts(0), now()).await.expect("synced");
    assert_eq!(s.samples.len(), 1);
    assert_eq!((s.samples[0].at, s.samples[0].value), (now(), 4.0), "the value now, as one sample at the end");
    // No readyReplicas in status is Kubernetes' way of writing 0.
    eventually(&source, &replicas("subscriber", "ready"), 0.0).await;

    server.put(DEPLOYMENTS, deployment("subscriber", 16, Some(16)));
    eventually(&source, &desired, 16.0).await;
    eventually(&source, &replicas("subscriber", "ready"), 16.0).await;

    let missing = source.fetch(&replicas("nope", "desired"), Ts(0), now()).await.expect_err("no such deployment");
    assert_eq!(missing.kind, ErrorKind::NotFound, "{missing}");
    server.delete(DEPLOYMENTS, "subscriber");
    for _ in 0..100 {
        if source.fetch(&desired, Ts(0), now()).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = source.fetch(&desired, Ts(0), now()).await.expect_err("deleted");
    assert_eq!(gone.kind, ErrorKind::NotFound, "{gone}");

    // Reads come from watches: one list and watches per thing read, never a GET per fetch.
    let seen = server.seen();
    assert!(seen.iter().all(|r| r.starts_with("GET ")), "{seen:?}");
    assert!(seen.iter().any(|r| r.contains("watch=true")), "{seen:?}");
    let lists = seen.iter().filter(|r| !r.contains("watch=true")).count();
    assert_eq!(lists, 2, "one list per watched object (subscriber, nope): {seen:?}");
    assert!(seen.iter().all(|r| r.contains("fieldSelector=metadata.name")), "{seen:?}");
}

#[tokio::test]
async fn pods_are_counted_by_label_and_phase_and_a_path_reads_any_number() {
    let (client, handle) = mock_client();
    let server = WatchServer::start(handle);
    for (i, phase) in ["Running", "Running", "Pending", "Succeeded"].iter().enumerate() {
        server.put(PODS, pod(&format!("sub-{i}"), json!({"app": "subscriber"}), phase));
    }
    server.put(PODS, pod("other", json!({"app": "web"}), "Running"));
    server.put(DEPLOYMENTS, deployment("subscriber", 4, Some(3)));
    let source = KubeMetrics::new(Some(client)).with_sync_wait(Duration::from_secs(2));
    let running = metric(json!({"pods": {"matchLabels": {"app": "subscriber"}}}));
    let both = metric(json!({"pods": {"matchLabels": {"app": "subscriber"}, "phases": ["Running", "Pending"]}}));
    eventually(&source, &running, 2.0).await;
    eventually(&source, &both, 3.0).await;
    server.put(PODS, pod("sub-4", json!({"app": "subscriber"}), "Pending"));
    eventually(&source, &both, 4.0).await;
    assert!(server.seen().iter().any(|r| r.contains("labelSelector=app")), "the watch is narrowed server-side");

    let path = |p: &str| {
        metric(json!({"field": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "subscriber", "path": p}}))
    };
    eventually(&source, &path("status.readyReplicas"), 3.0).await;
    let absent = source.fetch(&path("status.unavailableReplicas"), Ts(0), now()).await.expect_err("absent path");
    assert_eq!(absent.kind, ErrorKind::NotFound, "an absent path is missing data, never 0: {absent}");
}

#[tokio::test]
async fn a_watch_refused_by_rbac_says_which_permission() {
    let (client, handle) = mock_client();
    let server = WatchServer::start(handle);
    server.refuse(PODS, 403);
    let source = KubeMetrics::new(Some(client)).with_sync_wait(Duration::from_millis(500));
    let err = source
        .fetch(&metric(json!({"pods": {"matchLabels": {"app": "subscriber"}}})), Ts(0), now())
        .await
        .expect_err("forbidden");
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
    assert!(err.message.contains("pods in namespace data") && err.message.contains("list and watch"), "{err}");
    let none =
        KubeMetrics::new(None).fetch(&replicas("subscriber", "desired"), Ts(0), now()).await.expect_err("no API");
    assert_eq!(none.kind, ErrorKind::Refused);
}

/// The scenario: the subscriber Deployment scales 4 → 16, and the Bigtable cluster
/// (one node per 2 subscribers) follows at the next evaluation, before its CPU shows the load.
/// CPU (Cloud Monitoring, through the Google fake) and the replicas mix: the larger wins.
#[tokio::test]
async fn bigtable_follows_the_subscriber_deployment_within_one_interval() {
    let (client, handle) = mock_client();
    let server = WatchServer::start(handle);
    server.put(DEPLOYMENTS, deployment("subscriber", 4, Some(4)));
    let (gcp, cfg) = fake().await;
    gcp.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 2);
    gcp.set_time_series(CPU, cpu_script(0.3));
    let spec: ScalePolicySpec = serde_json::from_value(json!({
        "target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
        "minSize": 1, "maxSize": 30, "tolerance": 0.0,
        "scaleOut": {"maxStepNodes": null, "maxStepPercent": null},
        "spike": {"enabled": false},
        "metrics": [
            {"name": "cpu", "target": 0.5, "query": {"filter": CPU}},
            {"name": "subscribers", "kind": "total", "target": 2, "headroom": {"enabled": false},
             "smoothing": {"type": "sma", "window": "1m"},
             "kubernetes": {"replicas": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "subscriber"}}}
        ]
    }))
    .expect("spec");
    let policy = ebbflow::spec::policy_from_spec(&spec).expect("valid");
    let queries: Vec<MetricQuery> = spec.metrics.iter().map(|m| ebbflow::spec::metric_query(m, "p1", "data")).collect();
    let source = Sources {
        monitoring: CloudMonitoring::new(&cfg).await.expect("monitoring"),
        kubernetes: KubeMetrics::new(Some(client)).with_sync_wait(Duration::from_secs(2)),
    };
    let target = bigtable(&cfg).await;

    let first = tick(&policy, &queries, PolicyState::default(), &source, &target, now()).await.expect("tick");
    assert_eq!(
        first.decision.desired, 2,
        "4 subscribers need 2 nodes, as the cluster has: {:?}",
        first.decision.reason
    );
    assert!(first.metric_errors.is_empty(), "{:?}", first.metric_errors);

    server.put(DEPLOYMENTS, deployment("subscriber", 16, Some(4)));
    for _ in 0..100 {
        if source.kubernetes.fetch(&queries[1], Ts(0), now()).await.is_ok_and(|s| s.samples[0].value == 16.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = now() + Dur::secs(60);
    let second = tick(&policy, &queries, first.decision.state, &source, &target, next).await.expect("tick");
    let d = &second.decision;
    assert_eq!((d.current, d.desired, d.reason), (2, 8, Reason::ScaleOut), "{}", d.message(&policy));
    assert!(d.metrics[0].recommended.is_some_and(|r| r <= 2), "CPU alone asks for no more: {:?}", d.metrics[0]);
    assert_eq!(d.metrics[1].recommended, Some(8), "16 subscribers / 2 per node");
    assert!(matches!(second.actuation, Actuation::Started { to: 8, .. }), "{:?}", second.actuation);
    let writes = gcp.resize_requests();
    assert_eq!(writes.len(), 1, "one write");
    assert!(writes[0].path.ends_with(CLUSTER) && writes[0].body.contains("8"), "{:?}", writes[0]);
}

/// `simulate` replays a Kubernetes metric from a trace like any other (bound by metric name): the
/// recorded subscriber replicas jump 4 → 16 and the simulated cluster follows at the next
/// evaluation (a Kubernetes metric has no Monitoring delay: `metricDelay: 0s`).
#[test]
fn simulate_replays_a_kubernetes_metric_from_a_trace() {
    use ebbflow::sim::scenario::ScenarioFile;
    let dir = std::env::temp_dir().join(format!("ebbflow-kube-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut csv = String::from("timestamp,value\n");
    for m in 0..120 {
        let replicas = if m < 60 { 4 } else { 16 };
        csv.push_str(&format!("2026-11-23 {:02}:{:02}:00,{replicas}\n", 4 + m / 60, m % 60));
    }
    let trace = dir.join("subscribers.csv");
    std::fs::write(&trace, csv).expect("trace");
    // The example, at one node per 2 subscribers.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/bigtable-follows-subscribers.yaml"),
    )
    .expect("example")
    .replace("target: 8", "target: 2");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, example).expect("policy");
    let sc = ebbflow::sim::Scenario::build(ScenarioFile {
        trace: Some(trace.clone()),
        policy: Some(policy.clone()),
        metric: Some("subscribers".into()),
        metric_delay: Some("0s".into()),
        provision_delay: Some("0s".into()),
        ..ScenarioFile::default()
    })
    .expect("scenario");
    let run = ebbflow::sim::run_policy(&sc);
    let jump = Ts::parse_rfc3339("2026-11-23T05:00:00Z").expect("time");
    let before = run.steps.iter().rfind(|s| s.at < jump).expect("before");
    assert_eq!(before.desired, 2, "4 subscribers / 2 per node");
    // The first scale-out comes within one interval of the jump.
    let first = run.steps.iter().find(|s| s.at >= jump && s.reason.starts_with("ScaleOut")).expect("a scale-out");
    assert!(first.at <= jump + Dur::secs(60), "follows within one interval: {first:?}");
    // 16 / 2 = 8 nodes at the target; a scale-out lands in the middle of the 10% dead band:
    // ceil(8 / 0.95) = 9, reached in steps of at most 4 nodes as each resize operation ends.
    let reached = run.steps.iter().filter(|s| s.at <= jump + Dur::mins(30)).map(|s| s.desired).max();
    assert_eq!(reached, Some(9), "sized for 16 subscribers");

    // And through the command, as a user runs it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .args(["simulate", "--trace"])
        .arg(&trace)
        .arg("--policy")
        .arg(&policy)
        .args(["--metric", "subscribers", "--metric-delay", "0s"])
        .output()
        .expect("run ebbflow");
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
