//! Shared setup for the `gcp_*` integration tests: a fake on 127.0.0.1, clients pointed at it with
//! anonymous credentials and fast retries, and a Bigtable CPU policy.
#![allow(dead_code)]
// Setup helpers fail loudly, like the tests that call them.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ebbflow::adapters::MetricQuery;
use ebbflow::api::{BigtableClusterRef, GkeNodePoolRef, ScalePolicySpec};
use ebbflow::core::{Dur, Policy, PolicyState, Ts};
use ebbflow::gcp::fake::{FakeGcp, Script};
use ebbflow::gcp::{BigtableCluster, Clock, CloudMonitoring, GcpConfig, GkeNodePool};
use ebbflow::tick::{TickReport, tick};

pub const CPU: &str = r#"metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c1""#;
pub const CLUSTER: &str = "projects/p1/instances/i1/clusters/c1";
pub const POOL: &str = "projects/p1/locations/us-central1/clusters/gke1/nodePools/pool-1";

pub fn now() -> Ts {
    Ts::parse_rfc3339("2026-11-23T04:00:30Z").unwrap()
}

pub async fn fake() -> (FakeGcp, GcpConfig) {
    let fake = FakeGcp::start().await.unwrap();
    let cfg = GcpConfig::for_fake(fake.endpoint());
    assert!(cfg.endpoint.as_deref().unwrap().starts_with("http://127.0.0.1:"));
    (fake, cfg)
}

pub fn clock(at: Ts) -> Clock {
    Arc::new(move || at)
}

/// 30 minutes of one-minute CPU samples ending at `now()`, all at `value`.
pub fn cpu_script(value: f64) -> Script {
    Script::regular(now() - Dur::mins(30), Dur::mins(1), &[value; 31])
}

pub fn bigtable_ref() -> BigtableClusterRef {
    BigtableClusterRef {
        project: "p1".into(),
        instance: "i1".into(),
        cluster: "c1".into(),
        storage_target: None,
        steer_autoscaler: false,
    }
}

pub fn gke_ref(adjust: bool) -> GkeNodePoolRef {
    GkeNodePoolRef {
        project: "p1".into(),
        location: "us-central1".into(),
        cluster: "gke1".into(),
        node_pool: "pool-1".into(),
        adjust_cluster_autoscaler: adjust,
        ..Default::default()
    }
}

/// A Bigtable CPU policy, target 0.5 per node, fast scale-out, no stabilization.
pub fn policy() -> (Policy, Vec<MetricQuery>) {
    let spec: ScalePolicySpec = serde_json::from_value(serde_json::json!({
        "target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
        "minSize": 1, "maxSize": 20,
        "metrics": [{"name": "cpu", "target": 0.5, "query": {
            "filter": CPU, "alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MEAN",
            "crossSeriesReducer": "REDUCE_MEAN", "groupByFields": ["resource.labels.cluster"]}}],
        "scaleIn": {"cooldown": "0s", "stabilizationWindow": "0s", "maxStepNodes": 10}
    }))
    .unwrap();
    let policy = ebbflow::spec::policy_from_spec(&spec).unwrap();
    let queries = spec.metrics.iter().map(|m| ebbflow::spec::metric_query(m, "p1", "default")).collect();
    (policy, queries)
}

/// A Bigtable cluster adapter (the tick reads its storage floor through the policy's source).
pub async fn bigtable(cfg: &GcpConfig) -> BigtableCluster {
    BigtableCluster::connect(cfg, &bigtable_ref()).await.unwrap()
}

pub async fn gke(cfg: &GcpConfig, adjust: bool) -> GkeNodePool {
    GkeNodePool::connect(cfg, &gke_ref(adjust)).await.unwrap()
}

/// One tick of the Bigtable CPU policy against the fake, from a fresh state.
pub async fn bigtable_tick(cfg: &GcpConfig) -> Result<TickReport, ebbflow::tick::TickError> {
    let source = Arc::new(CloudMonitoring::new(cfg).await.unwrap());
    let target = bigtable(cfg).await;
    let (policy, queries) = policy();
    tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await
}
