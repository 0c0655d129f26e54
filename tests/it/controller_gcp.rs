//! The controller with the production backends against the fake Google servers
//! (`ebbflow::gcp::fake`) and the mock Kubernetes API: a Bigtable resize runs as a long-running
//! operation across reconciles, and each reconcile is a freshly started controller that knows
//! only what status says.

use crate::controller_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use controller_support::{
    Req, Step, assert_no_more_requests, condition, expect_event, expect_status_patch, mock_client, serve,
};
use ebbflow::api::ScalePolicy;
use ebbflow::controller::Engine;
use ebbflow::controller::backends::ProdBackends;
use ebbflow::controller::cluster::{Context, KubeStatus, reconcile};
use ebbflow::controller::events::KubeEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::GcpConfig;
use ebbflow::gcp::fake::{FakeGcp, Script};
use serde_json::{Value, json};

const CPU: &str = r#"metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c1""#;
const CLUSTER: &str = "projects/p1/instances/i1/clusters/c1";

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-23T04:00:30Z").expect("time")
}

fn policy(status: Value, rv: &str) -> ScalePolicy {
    let mut v = json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": "bt", "namespace": "data", "uid": "uid-bt", "resourceVersion": rv,
                     "generation": 1, "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {
            "target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
            "minSize": 1, "maxSize": 20, "interval": "60s",
            "metrics": [{"name": "cpu", "target": 0.5, "query": {
                "filter": CPU, "alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MEAN",
                "crossSeriesReducer": "REDUCE_MEAN", "groupByFields": ["resource.labels.cluster"]}}]
        }
    });
    if !status.is_null() {
        v["status"] = status;
    }
    serde_json::from_value(v).expect("policy")
}

/// A controller process as started at `at`: fresh backends, fresh engine, nothing in memory.
async fn controller(fake: &FakeGcp, client: kube::Client, at: Arc<AtomicI64>) -> Arc<Context<ProdBackends>> {
    let clock: ebbflow::controller::reconcile::Clock = Arc::new(move || Ts(at.load(Ordering::SeqCst)));
    let backends = ProdBackends::with_gcp(None, GcpConfig::for_fake(fake.endpoint())).await;
    let engine = Engine::new(
        backends,
        KubeStatus::new(client.clone()),
        KubeEvents::new(client, Some("test-pod".into())),
        Leadership::manual(true),
        Arc::new(Metrics::default()),
    )
    .with_clock(clock);
    let (store, _writer) = kube::runtime::reflector::store();
    Arc::new(Context { engine, store })
}

async fn reconcile_with(
    ctx: Arc<Context<ProdBackends>>,
    sp: ScalePolicy,
    handle: controller_support::Handle,
    steps: Vec<Step>,
) -> Vec<Req> {
    let server = tokio::spawn(serve(handle, steps));
    reconcile(Arc::new(sp), ctx).await.expect("reconcile");
    let (seen, mut handle) =
        tokio::time::timeout(Duration::from_secs(5), server).await.expect("all requests").expect("server");
    assert_no_more_requests(&mut handle).await;
    seen
}

/// 0.9 CPU on 3 nodes (target 0.5): the first controller records the intent, starts one Bigtable
/// resize to 6 (a long-running operation) and records the operation; restarted controllers
/// follow the operation from status until it is done, and never send a second resize.
#[tokio::test]
async fn bigtable_resize_through_fake_google_survives_restarts() {
    let fake = FakeGcp::start().await.expect("fake");
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    // The operation is still running at the first check and done at the second.
    fake.set_polls_to_finish(2);
    fake.set_time_series(CPU, Script::regular(start() - Dur::mins(30), Dur::mins(1), &[0.9; 31]));
    // Little stored data: the storage floor is 1 node and never in the way.
    let cluster: ebbflow::api::BigtableClusterRef =
        serde_json::from_value(json!({"project": "p1", "instance": "i1", "cluster": "c1"})).expect("ref");
    let storage = ebbflow::gcp::bigtable::storage_utilization_query(&cluster).filter;
    fake.set_time_series(&storage, Script::regular(start() - Dur::mins(30), Dur::mins(1), &[0.05; 33]));
    let at = Arc::new(AtomicI64::new(start().0));

    // 1. Decide, fence, resize.
    let (client, handle) = mock_client();
    let ctx = controller(&fake, client, at.clone()).await;
    let sp = policy(Value::Null, "100");
    let seen = reconcile_with(
        ctx,
        sp.clone(),
        handle,
        vec![
            expect_status_patch(&sp, "101", |b| {
                assert_eq!(b["metadata"]["resourceVersion"], "100");
                assert_eq!(b["status"]["state"]["inFlight"]["to"], 6);
            }),
            expect_status_patch(&sp, "102", |b| {
                let s = &b["status"];
                let op = s["operation"].as_str().unwrap_or_default();
                assert!(op.starts_with("operations/projects/p1/instances/i1/clusters/c1/"), "{s}");
                assert_eq!(s["state"]["inFlight"]["operation"], op);
                assert_eq!(condition(s, "AbleToScale")["reason"], "ResizeInProgress");
            }),
            expect_event("data", "ScaledOut"),
        ],
    )
    .await;
    assert_eq!(fake.resize_requests().len(), 1);
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(3), "applied only when the operation completes");
    let stored = seen[1].body["status"].clone();

    // 2. A new process a minute later: the operation is still running; no resize.
    at.store((start() + Dur::secs(60)).0, Ordering::SeqCst);
    let (client, handle) = mock_client();
    let ctx = controller(&fake, client, at.clone()).await;
    let sp = policy(stored, "102");
    let seen = reconcile_with(
        ctx,
        sp.clone(),
        handle,
        vec![expect_status_patch(&sp, "103", |b| {
            assert_eq!(b["metadata"]["resourceVersion"], "102");
            assert_eq!(b["status"]["lastDecision"]["reason"], "ResizeInProgress", "{}", b["status"]);
            assert!(b["status"]["state"]["inFlight"].is_object(), "{}", b["status"]);
        })],
    )
    .await;
    assert_eq!(fake.resize_requests().len(), 1);
    let stored = seen[0].body["status"].clone();

    // 3. Another restart: the operation is done; the cooldown starts; still one resize.
    at.store((start() + Dur::secs(120)).0, Ordering::SeqCst);
    let (client, handle) = mock_client();
    let ctx = controller(&fake, client, at.clone()).await;
    let sp = policy(stored, "103");
    reconcile_with(
        ctx,
        sp.clone(),
        handle,
        vec![expect_status_patch(&sp, "104", |b| {
            let s = &b["status"];
            assert!(s["state"].get("inFlight").is_none(), "{s}");
            assert_eq!(s["state"]["resizes"][0]["to"], 6);
            assert!(s["state"]["lastScaleOutAt"].is_string(), "the cooldown starts when the resize finished");
        })],
    )
    .await;
    assert_eq!(fake.resize_requests().len(), 1, "one resize in all");
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(6));
}

/// A Spanner policy that leaves its high-priority CPU target out, reconciled by the controller
/// against the fake: held at Google's recommendation for the instance's configuration, read
/// from the instance. At 0.6 CPU on 2,000 units a regional instance (0.65) holds; a multi-region
/// one (nam3, 0.45) scales out to 3,000, the next rung that brings 0.6 under 0.45.
#[tokio::test]
async fn a_left_out_spanner_cpu_target_follows_the_instance_configuration() {
    const HIGH_CPU: &str = r#"metric.type="spanner.googleapis.com/instance/cpu/utilization_by_priority" AND metric.labels.priority="high" AND resource.labels.instance_id="i1""#;
    let spanner_policy = || -> ScalePolicy {
        serde_json::from_value(json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": "sp1", "namespace": "data", "uid": "uid-sp1", "resourceVersion": "100",
                         "generation": 1, "creationTimestamp": "2026-11-01T00:00:00Z"},
            "spec": {
                "target": {"spannerInstance": {"project": "p1", "instance": "i1"}},
                "minSize": 100, "maxSize": 10000, "interval": "60s",
                "metrics": [{"name": "cpu", "query": {
                    "filter": HIGH_CPU, "alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MEAN",
                    "crossSeriesReducer": "REDUCE_SUM"}}]
            }
        }))
        .expect("policy")
    };
    let spanner: ebbflow::api::SpannerInstanceRef =
        serde_json::from_value(json!({"project": "p1", "instance": "i1"})).expect("ref");
    let storage = ebbflow::gcp::spanner::storage_utilization_query(&spanner).filter;
    for (config, held, resized) in [("regional-us-central1", 0.65, None), ("nam3", 0.45, Some(3000))] {
        let fake = FakeGcp::start().await.expect("fake");
        fake.add_spanner_instance("p1", "i1", config, 2000);
        fake.set_polls_to_finish(2);
        fake.set_time_series(HIGH_CPU, Script::regular(start() - Dur::mins(30), Dur::mins(1), &[0.6; 31]));
        fake.set_time_series(&storage, Script::regular(start() - Dur::mins(30), Dur::mins(1), &[0.05; 33]));
        let at = Arc::new(AtomicI64::new(start().0));
        let (client, handle) = mock_client();
        let ctx = controller(&fake, client, at).await;
        let sp = spanner_policy();
        let target_of = |b: &Value| b["status"]["lastDecision"]["metrics"]["cpu"]["target"].as_f64();
        let steps: Vec<Step> = match resized {
            None => vec![expect_status_patch(&sp, "101", move |b| {
                assert_eq!(b["status"]["lastDecision"]["reason"], "WithinTolerance", "{config}: {}", b["status"]);
                assert_eq!(target_of(b), Some(held), "{config}: {}", b["status"]);
            })],
            Some(to) => vec![
                expect_status_patch(&sp, "101", move |b| assert_eq!(b["status"]["state"]["inFlight"]["to"], to)),
                expect_status_patch(&sp, "102", move |b| {
                    assert_eq!(target_of(b), Some(held), "{config}: {}", b["status"]);
                }),
                expect_event("data", "ScaledOut"),
            ],
        };
        reconcile_with(ctx, sp.clone(), handle, steps).await;
        assert_eq!(fake.resize_requests().len(), usize::from(resized.is_some()), "{config}");
    }
}
