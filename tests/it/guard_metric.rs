//! The hot-node veto against the Google fake: a Bigtable cluster whose average CPU would allow a
//! scale-in, but whose hottest node (`cpu_load_hottest_node`, a guard metric) is at 90%.

use crate::gcp_support;

use ebbflow::adapters::MetricQuery;
use ebbflow::api::ScalePolicySpec;
use ebbflow::core::{Direction, Dur, PolicyState, Reason};
use ebbflow::gcp::CloudMonitoring;
use ebbflow::gcp::bigtable::storage_utilization_query;
use ebbflow::gcp::fake::Script;
use ebbflow::tick::{Actuation, tick};
use gcp_support::{CPU, bigtable, bigtable_ref, cpu_script, fake, now};
use serde_json::json;

const HOT: &str =
    r#"metric.type="bigtable.googleapis.com/cluster/cpu_load_hottest_node" AND resource.labels.cluster="c1""#;

/// One tick of the guarded policy from a fresh state, with the hottest node at `hot`.
async fn tick_with_hottest(hot: f64) -> (ebbflow::tick::TickReport, ebbflow::core::Policy, usize) {
    let (gcp, cfg) = fake().await;
    gcp.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 10);
    // Average CPU 20% on 10 nodes: the average alone asks for far fewer.
    gcp.set_time_series(CPU, cpu_script(0.2));
    gcp.set_time_series(HOT, Script::regular(now() - Dur::mins(30), Dur::mins(1), &[hot; 31]));
    let storage = storage_utilization_query(&bigtable_ref()).filter;
    gcp.set_time_series(&storage, Script::regular(now() - Dur::mins(5), Dur::mins(1), &[0.05; 6]));
    let spec: ScalePolicySpec = serde_json::from_value(json!({
        "target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
        "minSize": 1, "maxSize": 20,
        "metrics": [
            {"name": "cpu", "target": 0.6, "query": {"filter": CPU}},
            {"name": "hottest-node", "role": "guard", "target": 0.8,
             "query": {"filter": HOT, "perSeriesAligner": "ALIGN_MAX"}}
        ],
        "scaleIn": {"cooldown": "0s", "stabilizationWindow": "0s"}
    }))
    .expect("spec");
    let policy = ebbflow::spec::policy_from_spec(&spec).expect("valid");
    let queries: Vec<MetricQuery> = spec.metrics.iter().map(|m| ebbflow::spec::metric_query(m, "p1", "data")).collect();
    let source = CloudMonitoring::new(&cfg).await.expect("monitoring");
    let target = bigtable(&cfg).await;
    let report = tick(&policy, &queries, PolicyState::default(), &source, &target, now()).await.expect("tick");
    (report, policy, gcp.resize_requests().len())
}

#[tokio::test]
async fn a_hot_node_blocks_a_scale_in_the_average_allows() {
    let (hot, policy, writes) = tick_with_hottest(0.9).await;
    let d = &hot.decision;
    assert_eq!((d.current, d.desired, d.reason), (10, 10, Reason::GuardMetricHigh), "{}", d.message(&policy));
    assert!(d.recommended.is_some_and(|r| r < 10), "the average alone asks for less: {:?}", d.recommended);
    assert!(d.message(&policy).contains("hottest-node"), "names the guard: {}", d.message(&policy));
    assert_eq!((hot.actuation.clone(), writes), (Actuation::None, 0), "nothing sent");

    // The same cluster with its hottest node at 50%: the average's scale-in goes ahead.
    let (cool, policy, writes) = tick_with_hottest(0.5).await;
    let d = &cool.decision;
    assert_eq!((d.direction(), d.reason), (Direction::Down, Reason::ScaleIn), "{}", d.message(&policy));
    assert_eq!(writes, 1);
}
