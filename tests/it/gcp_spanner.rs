//! The `spannerInstance` target through the real Rust client against the local fake, and whole
//! ticks: sizes on the processing-unit ladder, an update that reads the old size until its
//! operation is done, the managed autoscaler refused, a running update followed instead of sent
//! twice, the storage floor in processing units.

use crate::gcp_support;

use std::sync::Arc;
use std::time::Duration;

use ebbflow::adapters::{ErrorKind, FloorMetric, OperationStatus, ResizeStarted, ScaleTarget};
use ebbflow::api::{ScalePolicySpec, SpannerInstanceRef};
use ebbflow::core::{Dur, Floor, PolicyState, Reason, SizeRule};
use ebbflow::gcp::CloudMonitoring;
use ebbflow::gcp::fake::{Endpoint, Fault, Script};
use ebbflow::gcp::spanner::{SpannerInstance, storage_utilization_query};
use ebbflow::tick::{Actuation, OperationOutcome, read_floor, tick};
use gcp_support::*;

const INSTANCE: &str = "projects/p1/instances/i1";
const HIGH_CPU: &str = r#"metric.type="spanner.googleapis.com/instance/cpu/utilization_by_priority" AND metric.labels.priority="high" AND resource.labels.instance_id="i1""#;

fn spanner_ref() -> SpannerInstanceRef {
    SpannerInstanceRef { project: "p1".into(), instance: "i1".into(), storage_target: None, steer_autoscaler: false }
}

fn storage_filter() -> String {
    storage_utilization_query(&spanner_ref()).filter
}

/// A Spanner policy on high-priority CPU, target 0.65 (Google's recommended maximum for a
/// regional instance), 100 to 10,000 processing units, the default paces.
fn spanner_policy() -> (ebbflow::core::Policy, Vec<ebbflow::adapters::MetricQuery>) {
    let spec: ScalePolicySpec = serde_json::from_value(serde_json::json!({
        "target": {"spannerInstance": {"project": "p1", "instance": "i1"}},
        "minSize": 100, "maxSize": 10000,
        "metrics": [{"name": "cpu", "target": 0.65, "query": {
            "filter": HIGH_CPU, "alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MEAN",
            "crossSeriesReducer": "REDUCE_SUM"}}],
        "scaleIn": {"cooldown": "0s", "stabilizationWindow": "0s"}
    }))
    .expect("a spec");
    let policy = ebbflow::spec::policy_from_spec(&spec).expect("a valid spec");
    let queries = spec.metrics.iter().map(|m| ebbflow::spec::metric_query(m, "p1", "default")).collect();
    (policy, queries)
}

fn cpu(value: f64) -> Script {
    Script::regular(now() - Dur::mins(30), Dur::mins(1), &[value; 31])
}

async fn spanner(cfg: &ebbflow::gcp::GcpConfig) -> SpannerInstance {
    SpannerInstance::connect(cfg, &spanner_ref()).await.expect("a client")
}

/// 800 processing units at 0.9 high-priority CPU need about 1,110 at 0.65: the ladder has
/// nothing between 1,000 and 2,000, so the policy asks for 2,000, through one update whose
/// operation it follows; the instance reads 800 until the operation is done, as Spanner's does.
#[tokio::test]
async fn high_cpu_scales_out_on_the_ladder_through_an_operation() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 800);
    fake.set_time_series(HIGH_CPU, cpu(0.9));
    fake.set_time_series(&storage_filter(), Script::regular(now() - Dur::mins(5), Dur::mins(1), &[0.1; 6]));
    fake.set_polls_to_finish(2);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = spanner(&cfg).await;
    let (policy, queries) = spanner_policy();

    let r = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await.unwrap();
    assert_eq!(r.observation.sizes, SizeRule::SPANNER_PROCESSING_UNITS);
    assert_eq!(r.decision.reason, Reason::ScaleOut);
    let Actuation::Started { to: 2000, operation: Some(op), done: false } = &r.actuation else {
        panic!("{:?}", r.actuation)
    };
    assert!(op.starts_with("projects/p1/instances/i1/operations/"), "{op}");
    let patch = &fake.requests_to(Endpoint::UpdateSpannerInstance)[0];
    assert_eq!((patch.method.as_str(), patch.path.as_str()), ("PATCH", "/v1/projects/p1/instances/i1"));
    let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(body["instance"]["processingUnits"], 2000, "{body}");
    let mask = body["fieldMask"].as_str().unwrap();
    assert!(mask == "processingUnits" || mask == "processing_units", "only the size changes: {mask}");
    assert_eq!(fake.spanner_units(INSTANCE), Some(800), "not applied before the operation completes");

    // Next tick: the operation runs, the instance still reads 800 and READY: nothing is sent.
    let later = now() + Dur::mins(1);
    let r2 = tick(&policy, &queries, r.decision.state.clone(), source.as_ref(), &target, later).await.unwrap();
    assert_eq!(r2.operation, Some(OperationOutcome::Running));
    assert_eq!((r2.observation.size, r2.observation.busy), (800, false));
    assert_eq!(r2.actuation, Actuation::None);
    let r3 = tick(&policy, &queries, r2.decision.state.clone(), source.as_ref(), &target, later + Dur::mins(1)).await;
    assert_eq!(r3.unwrap().operation, Some(OperationOutcome::Finished { from: 800, to: 2000 }));
    assert_eq!(fake.spanner_units(INSTANCE), Some(2000));
    assert_eq!(fake.resize_requests().len(), 1);
}

/// Low CPU scales in by the default step (10 %, at least one rung of the ladder) down to sizes
/// the ladder has: from 3,000 the next size below is 2,000, never 2,700.
#[tokio::test]
async fn scale_in_goes_to_the_next_rung_below() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 3000);
    fake.set_time_series(HIGH_CPU, cpu(0.1));
    fake.set_time_series(&storage_filter(), Script::regular(now() - Dur::mins(5), Dur::mins(1), &[0.05; 6]));
    fake.set_polls_to_finish(0);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = spanner(&cfg).await;
    let (policy, queries) = spanner_policy();
    let r = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await.unwrap();
    assert_eq!(r.decision.reason, Reason::ScaleIn, "{:?}", r.decision);
    assert!(matches!(r.actuation, Actuation::Started { to: 2000, .. }), "{:?}", r.actuation);
    assert_eq!(fake.spanner_units(INSTANCE), Some(2000));
}

/// The storage floor is read in processing units: 2,000 units at 60 % of their storage limit,
/// kept at or under 75 %, hold 1,600 units' worth of data.
#[tokio::test]
async fn storage_floor_in_processing_units() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "nam3", 2000);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = spanner(&cfg).await;
    let obs = target.observe().await.unwrap();
    let FloorMetric::Storage { storage_target, .. } = &obs.floor else { panic!("{:?}", obs.floor) };
    assert_eq!(*storage_target, 0.75);
    let floor = async || {
        let input = read_floor(&obs.floor, source.as_ref(), now()).await;
        ebbflow::core::floor::resolve(&input, &PolicyState::default(), 2000)
    };
    assert_eq!(floor().await, Floor::Unknown, "no storage metric: scale-in blocked");
    fake.set_time_series(&storage_filter(), Script::regular(now() - Dur::mins(5), Dur::mins(1), &[0.6; 6]));
    assert_eq!(floor().await, Floor::Nodes(1600));
    let req = fake.requests_to(Endpoint::ListTimeSeries).pop().unwrap();
    assert!(req.param("filter").unwrap().contains("resource.labels.instance_id=\"i1\""));
}

/// With Spanner's managed autoscaler on, processing units are output-only: refused with the
/// fix, and nothing is sent.
#[tokio::test]
async fn the_managed_autoscaler_is_refused() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 1000);
    fake.set_spanner_autoscaling(INSTANCE, Some((1000, 5000)));
    fake.set_time_series(HIGH_CPU, cpu(0.9));
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = spanner(&cfg).await;
    let (policy, queries) = spanner_policy();
    let e = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await.unwrap_err();
    assert_eq!(e.adapter().kind, ErrorKind::Refused);
    assert!(e.adapter().message.contains("managed autoscaler"), "{e}");
    assert!(e.adapter().message.contains("--processing-units"), "the fix: {e}");
    assert!(e.adapter().message.contains("steerAutoscaler: true"), "the other way out: {e}");
    assert!(fake.resize_requests().is_empty());
}

/// An update already running (another client's, or one whose answer was lost) is found among the
/// instance's operations: one to the size asked for is followed, one to another size is Busy,
/// and neither sends a request. A size off the ladder is refused before any request.
#[tokio::test]
async fn a_running_update_is_followed_and_off_ladder_sizes_are_refused() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 1000);
    fake.set_polls_to_finish(2);
    let running = fake.start_spanner_update(INSTANCE, 2000).expect("update started");
    let target = spanner(&cfg).await;

    assert_eq!(target.resize(2000).await.unwrap(), ResizeStarted::Operation(running.clone()));
    let e = target.resize(3000).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    assert!(e.message.contains(&running), "{e}");
    let e = target.resize(1500).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    assert!(e.message.contains("multiples of 100 below 1000, then multiples of 1000"), "{e}");
    assert!(fake.resize_requests().is_empty(), "{:?}", fake.resize_requests());
    let list = &fake.requests_to(Endpoint::ListSpannerOperations)[0];
    assert_eq!(list.path, "/v1/projects/p1/instances/i1/operations");

    assert_eq!(target.operation(&running).await.unwrap(), OperationStatus::Running);
    assert_eq!(target.operation(&running).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.spanner_units(INSTANCE), Some(2000));
    // A stored name that is not this instance's operation is never requested.
    let before = fake.requests().len();
    let e = target.operation("projects/p1/instances/i2/operations/_auto_op_1").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(fake.requests().len(), before);
    // A failed update reports Spanner's reason.
    fake.fail_next_operation("Insufficient quota: processing units in us-central1");
    let ResizeStarted::Operation(op) = target.resize(3000).await.unwrap() else { panic!() };
    assert_eq!(target.operation(&op).await.unwrap(), OperationStatus::Running);
    let OperationStatus::Failed(why) = target.operation(&op).await.unwrap() else { panic!() };
    assert!(why.contains("Insufficient quota"), "{why}");
    assert_eq!(fake.spanner_units(INSTANCE), Some(2000));
}

/// The update is taken but its answer is lost (the attempt times out): the retry reads the
/// instance (still the old size, as Spanner shows it) and finds the update among its operations,
/// so it follows that operation instead of sending a second update that Spanner would refuse.
#[tokio::test]
async fn a_lost_answer_is_found_not_sent_twice() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 500);
    fake.set_polls_to_finish(3);
    fake.inject(Endpoint::UpdateSpannerInstance, Fault::LostResponse(Duration::from_secs(1)), 1);
    let target = spanner(&cfg).await;
    let ResizeStarted::Operation(op) = target.resize(700).await.unwrap() else { panic!("not followed") };
    assert!(op.starts_with("projects/p1/instances/i1/operations/"), "{op}");
    assert_eq!(fake.requests_to(Endpoint::UpdateSpannerInstance).len(), 1, "sent once");
    assert_eq!(target.operation(&op).await.unwrap(), OperationStatus::Running);
    assert_eq!(target.operation(&op).await.unwrap(), OperationStatus::Running);
    assert_eq!(target.operation(&op).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.spanner_units(INSTANCE), Some(700));
}

/// A 403 names the permission the service account lacks.
#[tokio::test]
async fn a_missing_permission_is_named() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 1000);
    fake.inject(Endpoint::UpdateSpannerInstance, Fault::PermissionDenied, 1);
    let target = spanner(&cfg).await;
    let e = target.resize(2000).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    assert!(e.message.contains("spanner.instances.update"), "{e}");
    fake.inject(Endpoint::GetSpannerInstance, Fault::NotFound, 1);
    assert_eq!(target.observe().await.unwrap_err().kind, ErrorKind::NotFound);
}

fn steered() -> SpannerInstanceRef {
    SpannerInstanceRef { steer_autoscaler: true, ..spanner_ref() }
}

/// The managed autoscaler on (1,000 to 5,000 units, 2,000 live at 0.9 high-priority CPU) and the
/// policy steering it: the load is read on the 2,000 live units, the decision (in whole
/// thousands, as the limits must be) becomes the autoscaler's minimum through an UpdateInstance
/// of that limit alone, and the live size moves only when the autoscaler acts.
#[tokio::test]
async fn steering_the_managed_autoscaler_sets_its_minimum() {
    let (fake, cfg) = fake().await;
    fake.add_spanner_instance("p1", "i1", "regional-us-central1", 2000);
    fake.set_spanner_autoscaling(INSTANCE, Some((1000, 5000)));
    fake.set_time_series(HIGH_CPU, cpu(0.9));
    fake.set_polls_to_finish(1);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = SpannerInstance::connect(&cfg, &steered()).await.unwrap();
    let (policy, queries) = spanner_policy();

    let obs = target.observe().await.unwrap();
    assert_eq!((obs.size, obs.serving, obs.sizes), (1000, Some(2000), SizeRule::Multiple(1000)));
    assert_eq!(obs.floor, FloorMetric::None, "the autoscaler's own storage target guards the data");
    let r = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await.unwrap();
    assert_eq!(r.decision.reason, Reason::ScaleOut);
    // 2,000 units at 0.9 need about 2,800 at 0.65; from a minimum of 1,000 the step (100 %)
    // allows 2,000.
    let Actuation::Started { to: 2000, operation: Some(op), done: false } = &r.actuation else {
        panic!("{:?}", r.actuation)
    };
    let body: serde_json::Value =
        serde_json::from_str(&fake.requests_to(Endpoint::UpdateSpannerInstance)[0].body).unwrap();
    let mask = body["fieldMask"].as_str().unwrap();
    assert!(mask.contains("minProcessingUnits") || mask.contains("min_processing_units"), "{mask}");
    assert!(
        mask.contains("maxProcessingUnits") || mask.contains("max_processing_units"),
        "the policy's maxSize: {mask}"
    );
    assert!(!mask.split(',').any(|p| p == "processingUnits" || p == "processing_units"), "never the size: {mask}");
    let limits = &body["instance"]["autoscalingConfig"]["autoscalingLimits"];
    assert_eq!(
        (limits["minProcessingUnits"].as_u64(), limits["maxProcessingUnits"].as_u64()),
        (Some(2000), Some(10000))
    );
    assert_eq!(target.operation(op).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.spanner_autoscaling(INSTANCE), Some((2000, 10000)));
    fake.run_builtin_autoscaler(INSTANCE, Some(1000));
    assert_eq!(fake.spanner_units(INSTANCE), Some(2000), "the autoscaler keeps at least the new minimum");

    // Spanner keeps the maximum at most 10 x the minimum: refused with the fix, nothing sent.
    fake.set_spanner_autoscaling(INSTANCE, Some((2000, 20000)));
    let sent = fake.requests_to(Endpoint::UpdateSpannerInstance).len();
    let e = target.resize(1000).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    assert!(e.message.contains("cannot go below 2000"), "{e}");
    assert_eq!(fake.requests_to(Endpoint::UpdateSpannerInstance).len(), sent);
    // Limits written in nodes are written back in nodes, the maximum raised with the minimum.
    fake.set_polls_to_finish(0);
    fake.set_spanner_autoscaling_nodes(INSTANCE, (1, 3));
    assert_eq!(target.observe().await.unwrap().size, 1000);
    assert_eq!(target.resize(4000).await.unwrap(), ResizeStarted::Done);
    let limits = &fake.spanner_autoscaling_config(INSTANCE).unwrap()["autoscalingLimits"];
    assert_eq!((limits["minNodes"].as_u64(), limits["maxNodes"].as_u64()), (Some(4), Some(4)), "{limits}");
}

/// The high-priority CPU level Google recommends, read from the instance's configuration: 0.65
/// for a regional one, 0.45 for a multi-region (nam3) or custom one.
#[tokio::test]
async fn the_recommended_cpu_target_follows_the_configuration() {
    for (config, want) in [("regional-us-central1", 0.65), ("nam3", 0.45), ("custom-nam11-foo", 0.45)] {
        let (fake, cfg) = fake().await;
        fake.add_spanner_instance("p1", "i1", config, 1000);
        let target = spanner(&cfg).await;
        assert_eq!(target.recommended_target().await.unwrap(), Some(want), "{config}");
    }
}
