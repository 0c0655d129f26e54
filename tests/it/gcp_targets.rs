//! Bigtable and GKE targets through the real Rust clients against the local fake, and whole ticks
//! (`ebbflow::tick::tick`) with every fault: what the adapters report, and that bad data never
//! leads to a resize request.

use crate::gcp_support;

use std::sync::Arc;

use ebbflow::adapters::{ErrorKind, FloorMetric, OperationStatus, ResizeStarted, ScaleTarget};
use ebbflow::core::{DataProblem, Dur, Floor, FloorInput, Missing, PolicyState, Reason, SizeRule};
use ebbflow::gcp::CloudMonitoring;
use ebbflow::gcp::bigtable::storage_utilization_query;
use ebbflow::gcp::fake::{Endpoint, Fault, Script};
use ebbflow::tick::{Actuation, OperationOutcome, read_floor, tick};
use gcp_support::*;

/// The floor an observation sets for a policy that has not resized yet, its metric read through
/// `source` as the tick reads it.
async fn floor(o: &ebbflow::adapters::TargetObservation, source: &CloudMonitoring) -> Floor {
    let input = read_floor(&o.floor, source, now()).await;
    ebbflow::core::floor::resolve(&input, &PolicyState::default(), o.size)
}

fn storage_filter() -> String {
    storage_utilization_query(&bigtable_ref()).filter
}

/// Good data on a 3-node cluster at 0.9 CPU (target 0.5): the tick resizes. The fault tests
/// below differ from this one only in the fault, so their "no resize" is meaningful.
#[tokio::test]
async fn good_data_resizes_through_a_long_running_operation() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    fake.set_time_series(CPU, cpu_script(0.9));
    fake.set_time_series(&storage_filter(), Script::regular(now() - Dur::mins(5), Dur::mins(1), &[0.1; 6]));
    fake.set_polls_to_finish(2);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = bigtable(&cfg).await;
    let (policy, queries) = policy();

    let r = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await.unwrap();
    assert_eq!(ebbflow::core::floor::resolve(&r.floor, &PolicyState::default(), 3), Floor::Nodes(1));
    assert_eq!(r.decision.reason, Reason::ScaleOut);
    let Actuation::Started { to: 6, operation: Some(op), done: false } = &r.actuation else {
        panic!("{:?}", r.actuation)
    };
    assert!(op.starts_with("operations/projects/p1/instances/i1/clusters/c1/locations/us-central1-b/operations/"));
    let patch = &fake.requests_to(Endpoint::UpdateCluster)[0];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, "/v2/projects/p1/instances/i1/clusters/c1");
    assert_eq!(patch.param("updateMask"), Some("serveNodes"));
    let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(body["serveNodes"], 6);
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(3), "not applied before the operation completes");

    // next tick: the operation is still running (first poll), the cluster is RESIZING
    let later = now() + Dur::mins(1);
    let r2 = tick(&policy, &queries, r.decision.state.clone(), source.as_ref(), &target, later).await.unwrap();
    assert_eq!(r2.operation, Some(OperationOutcome::Running));
    assert!(r2.observation.busy);
    assert_eq!(r2.actuation, Actuation::None);
    // and then done: the size changed, cooldowns start
    let r3 = tick(&policy, &queries, r2.decision.state.clone(), source.as_ref(), &target, later + Dur::mins(1)).await;
    assert_eq!(r3.unwrap().operation, Some(OperationOutcome::Finished { from: 3, to: 6 }));
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(6));
    assert_eq!(fake.resize_requests().len(), 1);
}

/// Every data fault: the tick holds the size and no resize request reaches the fake.
#[tokio::test]
async fn bad_data_never_sends_a_resize() {
    type Case = (&'static str, Script, Option<(Endpoint, Fault)>, Missing);
    let cases: Vec<Case> = vec![
        ("empty series", Script::default(), None, Missing::NoData),
        (
            "NaN newest point",
            Script::regular(now() - Dur::mins(5), Dur::mins(1), &[0.9, 0.9, 0.9, 0.9, f64::NAN]),
            None,
            Missing::Invalid,
        ),
        ("stale points", Script::regular(now() - Dur::mins(30), Dur::mins(1), &[0.9; 20]), None, Missing::Stale),
        (
            "partial",
            cpu_script(0.9).partial("Internal error reading some series"),
            None,
            Missing::Source(DataProblem::Partial),
        ),
        (
            "several series",
            cpu_script(0.9).duplicated("cluster", &["c1", "c2"]),
            None,
            Missing::Source(DataProblem::MultipleSeries(2)),
        ),
        (
            "429 throughout",
            cpu_script(0.9),
            Some((Endpoint::ListTimeSeries, Fault::TooManyRequests)),
            Missing::Source(DataProblem::QueryFailed),
        ),
        (
            "503 throughout",
            cpu_script(0.9),
            Some((Endpoint::ListTimeSeries, Fault::Unavailable)),
            Missing::Source(DataProblem::QueryFailed),
        ),
        (
            "timeout",
            cpu_script(0.9),
            Some((Endpoint::ListTimeSeries, Fault::Delay(std::time::Duration::from_millis(600)))),
            Missing::Source(DataProblem::QueryFailed),
        ),
        (
            "malformed JSON",
            cpu_script(0.9),
            Some((Endpoint::ListTimeSeries, Fault::MalformedJson)),
            Missing::Source(DataProblem::QueryFailed),
        ),
        (
            "403",
            cpu_script(0.9),
            Some((Endpoint::ListTimeSeries, Fault::PermissionDenied)),
            Missing::Source(DataProblem::QueryFailed),
        ),
        (
            "404",
            cpu_script(0.9),
            Some((Endpoint::ListTimeSeries, Fault::NotFound)),
            Missing::Source(DataProblem::QueryFailed),
        ),
    ];
    for (name, script, fault, missing) in cases {
        let (fake, cfg) = fake().await;
        fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
        fake.set_time_series(CPU, script);
        if let Some((endpoint, fault)) = fault {
            fake.inject(endpoint, fault, u32::MAX);
        }
        let r = bigtable_tick(&cfg).await.unwrap();
        assert_eq!(r.decision.reason, Reason::MissingData, "{name}: {:?}", r.decision);
        assert_eq!(r.decision.metrics[0].missing, Some(missing), "{name}");
        assert_eq!(r.actuation, Actuation::None, "{name}");
        assert!(fake.resize_requests().is_empty(), "{name}: a resize was sent on bad data");
        assert_eq!(fake.bigtable_nodes(CLUSTER), Some(3), "{name}");
        if name == "403" {
            let (_, e) = &r.metric_errors[0];
            assert_eq!(e.kind, ErrorKind::PermissionDenied);
            assert!(e.message.contains("monitoring.timeSeries.list"), "{e}");
        }
    }
}

#[tokio::test]
async fn a_single_transient_failure_is_retried_and_the_tick_goes_on() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    fake.set_time_series(CPU, cpu_script(0.9));
    fake.inject(Endpoint::ListTimeSeries, Fault::TooManyRequests, 1);
    fake.inject(Endpoint::GetCluster, Fault::Unavailable, 1);
    fake.inject(Endpoint::UpdateCluster, Fault::Unavailable, 1);
    let r = bigtable_tick(&cfg).await.unwrap();
    assert!(matches!(r.actuation, Actuation::Started { to: 6, .. }), "{:?}", r.actuation);
    assert_eq!(fake.requests_to(Endpoint::UpdateCluster).len(), 2, "the absolute-size PATCH is safe to retry");
}

#[tokio::test]
async fn target_faults_are_reported_with_their_kind_and_fix() {
    // reading the cluster fails: no decision, no resize
    for (fault, kind, needle) in [
        (Fault::PermissionDenied, ErrorKind::PermissionDenied, "bigtable.clusters.get"),
        (Fault::NotFound, ErrorKind::NotFound, "not found"),
        (Fault::MalformedJson, ErrorKind::Malformed, "unreadable"),
    ] {
        let (fake, cfg) = fake().await;
        fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
        fake.set_time_series(CPU, cpu_script(0.9));
        fake.inject(Endpoint::GetCluster, fault.clone(), u32::MAX);
        let e = bigtable_tick(&cfg).await.unwrap_err();
        assert_eq!(e.adapter().kind, kind, "{fault:?}: {e}");
        assert!(e.to_string().contains(needle), "{fault:?}: {e}");
        assert!(fake.resize_requests().is_empty());
    }

    // the resize itself is refused or the cluster is busy: reported, state unchanged
    for (fault, kind, needle) in [
        (Fault::PermissionDenied, ErrorKind::PermissionDenied, "bigtable.clusters.update"),
        (Fault::OperationInProgress, ErrorKind::Busy, "in progress"),
    ] {
        let (fake, cfg) = fake().await;
        fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
        fake.set_time_series(CPU, cpu_script(0.9));
        fake.inject(Endpoint::UpdateCluster, fault.clone(), u32::MAX);
        let r = bigtable_tick(&cfg).await.unwrap();
        let Actuation::Failed { to: 6, error } = &r.actuation else { panic!("{:?}", r.actuation) };
        assert_eq!(error.kind, kind, "{error}");
        assert!(error.message.contains(needle), "{error}");
        assert_eq!(fake.requests_to(Endpoint::UpdateCluster).len(), 1, "not retried: {kind:?} is not transient");
        assert!(r.decision.state.in_flight.is_none());
        assert_eq!(fake.bigtable_nodes(CLUSTER), Some(3));
    }
}

#[tokio::test]
async fn bigtable_builtin_autoscaling_is_refused() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    fake.set_bigtable_autoscaling(CLUSTER, true);
    fake.set_time_series(CPU, cpu_script(0.9));
    let e = bigtable_tick(&cfg).await.unwrap_err();
    assert_eq!(e.adapter().kind, ErrorKind::Refused);
    assert!(e.adapter().message.contains("built-in autoscaling"), "{e}");
    assert!(e.adapter().message.contains("ignored"), "{e}");
    assert!(e.adapter().message.contains("steerAutoscaler: true"), "the other way out: {e}");
    assert!(fake.resize_requests().is_empty());
}

#[tokio::test]
async fn bigtable_storage_floor_and_busy_state() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 4);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = bigtable(&cfg).await;

    // no storage metric: unknown floor (blocks scale-in in the core)
    assert_eq!(floor(&target.observe().await.unwrap(), &source).await, Floor::Unknown);
    // 4 nodes at 30% storage, target 50% → 2.4 nodes of data → 3
    fake.set_time_series(&storage_filter(), Script::regular(now() - Dur::mins(5), Dur::mins(1), &[0.3; 6]));
    let obs = target.observe().await.unwrap();
    assert_eq!((obs.size, obs.busy, floor(&obs, &source).await), (4, false, Floor::Nodes(3)));
    let req = fake.requests_to(Endpoint::ListTimeSeries).pop().unwrap();
    assert_eq!(req.param("aggregation.perSeriesAligner"), Some("11"), "ALIGN_MAX");
    // a NaN storage sample or a failed query: unknown again
    fake.set_time_series(&storage_filter(), Script::regular(now() - Dur::mins(3), Dur::mins(1), &[0.3, f64::NAN]));
    assert_eq!(floor(&target.observe().await.unwrap(), &source).await, Floor::Unknown);
    fake.inject(Endpoint::ListTimeSeries, Fault::PermissionDenied, u32::MAX);
    // Unreadable, and the reason names the missing permission (status and Events show it).
    let input = read_floor(&target.observe().await.unwrap().floor, source.as_ref(), now()).await;
    let FloorInput::Unreadable(why) = input else { panic!("readable") };
    assert!(why.contains("monitoring.timeSeries.list"), "{why}");
    fake.clear_faults();

    // someone else resizes (gcloud, console): RESIZING → busy; a second resize is Busy, not a failure
    fake.set_polls_to_finish(5);
    assert!(matches!(target.resize(5).await.unwrap(), ResizeStarted::Operation(_)));
    assert!(target.observe().await.unwrap().busy);
    assert_eq!(target.resize(6).await.unwrap_err().kind, ErrorKind::Busy);
}

#[tokio::test]
async fn bigtable_operation_states() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    let target = bigtable(&cfg).await;

    fake.fail_next_operation("Insufficient node quota in us-central1-b");
    let ResizeStarted::Operation(op) = target.resize(9).await.unwrap() else { panic!() };
    let poll = &fake.requests_to(Endpoint::UpdateCluster)[0];
    assert_eq!(poll.param("$alt"), Some("json;enum-encoding=int"));
    let OperationStatus::Failed(msg) = target.operation(&op).await.unwrap() else { panic!() };
    assert!(msg.contains("Insufficient node quota"), "{msg}");
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(3));
    assert_eq!(fake.requests_to(Endpoint::BigtableOperation)[0].path, format!("/v2/{op}"));

    fake.set_polls_to_finish(0);
    assert_eq!(target.resize(4).await.unwrap(), ResizeStarted::Done, "an operation done at once");
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(4));
    let e = target.operation("operations/projects/p1/instances/i1/clusters/c1/locations/x/operations/999").await;
    assert_eq!(e.unwrap_err().kind, ErrorKind::NotFound, "an expired operation: the tick falls back to the size");
}

/// A resize of the cluster already running (sent by a process killed before it recorded the
/// operation, or whose answer was lost; the cluster may show READY at its old size meanwhile) is
/// found among the instance's operations: a resize to its size follows it instead of sending
/// another, one to another size is Busy without a request. Before, both were sent (and refused).
#[tokio::test]
async fn a_running_resize_is_followed_not_sent_again() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    fake.set_polls_to_finish(2);
    let running = fake.start_bigtable_resize(CLUSTER, 6).expect("resize started");
    let target = bigtable(&cfg).await;

    assert_eq!(target.resize(6).await.unwrap(), ResizeStarted::Operation(running.clone()));
    let e = target.resize(8).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    assert!(e.message.contains(&running), "{e}");
    assert!(fake.resize_requests().is_empty(), "a resize was sent while one ran: {:?}", fake.resize_requests());
    let list = &fake.requests_to(Endpoint::ListBigtableOperations)[0];
    assert_eq!(list.path, "/v2/operations/projects/p1/instances/i1/operations", "as gcloud lists an instance's");
    // Followed to its end, which applies it.
    assert_eq!(target.operation(&running).await.unwrap(), OperationStatus::Running);
    assert_eq!(target.operation(&running).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(6));
    // Once it is done, a resize is sent as usual.
    assert!(matches!(target.resize(8).await.unwrap(), ResizeStarted::Operation(_)));
    assert_eq!(fake.resize_requests().len(), 1);
}

/// An operation name read back from stored state goes into a request's path only if it is one
/// of the target's own: another cluster's, one that climbs out of the path, or one with a query
/// is not requested, and the tick settles the resize as if its operation had vanished (by the
/// size). Before, any stored name was requested as it was.
#[tokio::test]
async fn a_stored_operation_name_that_is_not_the_targets_is_never_requested() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    fake.add_bigtable_cluster("p1", "i1", "c2", "us-central1-b", 3);
    let other = fake.start_bigtable_resize("projects/p1/instances/i1/clusters/c2", 5).expect("resize started");
    let target = bigtable(&cfg).await;
    for name in [
        other.as_str(),
        "operations/projects/p1/instances/i1/clusters/c1/../c2/locations/us-central1-b/operations/1",
        "operations/projects/p1/instances/i1/clusters/c1/locations/us-central1-b/operations/1?alt=media",
        "projects/p1/instances/i1/clusters/c1",
    ] {
        let e = target.operation(name).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{name}: {e}");
        assert!(e.message.contains("is not an operation of projects/p1/instances/i1/clusters/c1"), "{e}");
    }
    assert!(fake.requests_to(Endpoint::BigtableOperation).is_empty(), "a foreign operation name was requested");

    // In a tick: the resize in flight under another cluster's operation is settled by the size.
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let (policy, queries) = policy();
    let mut state = PolicyState::default();
    state.begin_resize(3, 6, Some(other.clone()), now() - Dur::mins(2));
    let r = tick(&policy, &queries, state, source.as_ref(), &target, now()).await.unwrap();
    let Some(OperationOutcome::Failed { to: 6, message }) = &r.operation else { panic!("{:?}", r.operation) };
    assert!(message.contains("vanished"), "{message}");
    assert!(fake.requests_to(Endpoint::BigtableOperation).is_empty());

    // A GKE operation is an id of the pool's own project and location.
    fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 2, &["us-central1-a"]);
    let pool = gke(&cfg, false).await;
    for name in [
        "projects/p2/locations/us-central1/operations/operation-1",
        "projects/p1/locations/us-central1/operations/operation-1/../../clusters/gke1",
        "operation-1?alt=media",
    ] {
        assert_eq!(pool.operation(name).await.unwrap_err().kind, ErrorKind::NotFound, "{name}");
    }
    assert!(fake.requests_to(Endpoint::GkeOperation).is_empty(), "a foreign operation name was requested");
    let ResizeStarted::Operation(op) = pool.resize(3).await.unwrap() else { panic!() };
    let id = op.rsplit('/').next().unwrap();
    assert_eq!(pool.operation(id).await.unwrap(), OperationStatus::Done, "a short id of its own is requested");
}

#[tokio::test]
async fn gke_pool_size_is_per_zone_times_zones_and_partial_zones_are_refused() {
    let (fake, cfg) = fake().await;
    fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 2, &["us-central1-a", "us-central1-b", "us-central1-c"]);
    let pool = gke(&cfg, false).await;
    let obs = pool.observe().await.unwrap();
    assert_eq!((obs.size, obs.busy, &obs.floor), (6, false, &FloorMetric::None));
    assert_eq!(obs.sizes, SizeRule::Multiple(3), "whole nodes per zone");

    // The core asks for multiples of 3 only; anything else is refused, not rounded.
    let e = pool.resize(7).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    assert!(fake.requests_to(Endpoint::SetNodePoolSize).is_empty(), "nothing sent");
    let ResizeStarted::Operation(op) = pool.resize(9).await.unwrap() else { panic!() };
    assert_eq!(op, "projects/p1/locations/us-central1/operations/operation-1", "full name from the short id");
    let req = &fake.requests_to(Endpoint::SetNodePoolSize)[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/v1/{POOL}:setSize"));
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["nodeCount"], 3, "9 over 3 zones → 3 per zone");
    assert!(pool.observe().await.unwrap().busy, "RECONCILING while the operation runs");
    // another resize while that runs: GKE says FAILED_PRECONDITION "incompatible operation" → Busy
    let e = pool.resize(12).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    assert_eq!(pool.operation(&op).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.requests_to(Endpoint::GkeOperation)[0].path, format!("/v1/{op}"));
    assert_eq!(pool.observe().await.unwrap().size, 9);
    assert_eq!(fake.node_pool(POOL), Some((3, None)));

    // The live size is the groups' target sizes, not the pool's initialNodeCount (still 2: GKE
    // keeps the creation value): one group edited by hand in the console shows at once.
    let groups = fake.requests_to(Endpoint::GetInstanceGroupManager);
    assert!(groups.len() >= 3, "every zone's group read: {groups:?}");
    assert!(groups.iter().all(|r| r.path.starts_with("/compute/v1/projects/p1/zones/us-central1-")), "{groups:?}");
    fake.set_group_size(POOL, "us-central1-b", 5);
    let obs = pool.observe().await.unwrap();
    assert_eq!(obs.size, 3 + 5 + 3, "read from the groups");
    assert_eq!(obs.sizes, SizeRule::Multiple(3), "a resize through GKE still sets every zone alike");
    let ResizeStarted::Operation(op) = pool.resize(12).await.unwrap() else { panic!() };
    assert_eq!(pool.operation(&op).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.group_sizes(POOL), [4, 4, 4], "SetNodePoolSize set every group, the hand edit too");
    assert_eq!(pool.observe().await.unwrap().size, 12);

    // A group that cannot be read is an error with the permission it needs, not a size of 0.
    fake.inject(Endpoint::GetInstanceGroupManager, Fault::PermissionDenied, 1);
    let e = pool.observe().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("compute.instanceGroupManagers.get"), "{e}");
}

#[tokio::test]
async fn gke_faults_and_failed_operations() {
    let (fake, cfg) = fake().await;
    fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 2, &["us-central1-a"]);
    let pool = gke(&cfg, false).await;
    fake.inject(Endpoint::SetNodePoolSize, Fault::PermissionDenied, 1);
    let e = pool.resize(3).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    assert!(e.message.contains("container.clusters.update"), "{e}");
    fake.inject(Endpoint::SetNodePoolSize, Fault::OperationInProgress, 1);
    assert_eq!(pool.resize(3).await.unwrap_err().kind, ErrorKind::Busy);
    fake.inject(Endpoint::GetNodePool, Fault::NotFound, 1);
    assert_eq!(pool.observe().await.unwrap_err().kind, ErrorKind::NotFound);
    fake.inject(Endpoint::GkeOperation, Fault::PermissionDenied, 1);
    let ResizeStarted::Operation(op) = pool.resize(3).await.unwrap() else { panic!() };
    assert!(pool.operation(&op).await.unwrap_err().message.contains("container.operations.get"));
    assert_eq!(pool.operation(&op).await.unwrap(), OperationStatus::Done);

    fake.fail_next_operation("Not enough resources available in zone us-central1-a");
    let ResizeStarted::Operation(op) = pool.resize(4).await.unwrap() else { panic!() };
    let OperationStatus::Failed(msg) = pool.operation(&op).await.unwrap() else { panic!() };
    assert!(msg.contains("Not enough resources"), "{msg}");
    assert_eq!(fake.node_pool(POOL), Some((3, None)), "the failed resize changed nothing");
}

#[tokio::test]
async fn gke_cluster_autoscaler_is_refused_or_adjusted() {
    let (fake, cfg) = fake().await;
    fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 2, &["us-central1-a", "us-central1-b"]);
    fake.set_node_pool_autoscaling(POOL, Some((1, 3)));

    let refused = gke(&cfg, false).await.observe().await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Refused);
    assert!(refused.message.contains("adjustClusterAutoscaler"), "{refused}");

    let pool = gke(&cfg, true).await;
    let obs = pool.observe().await.unwrap();
    assert_eq!(obs.size, 2, "the autoscaler's minimum, 1 per zone × 2");
    assert_eq!(obs.sizes, SizeRule::Multiple(2));
    let ResizeStarted::Operation(op) = pool.resize(10).await.unwrap() else { panic!() };
    assert!(fake.requests_to(Endpoint::SetNodePoolSize).is_empty());
    let req = &fake.requests_to(Endpoint::SetNodePoolAutoscaling)[0];
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["autoscaling"]["minNodeCount"], 5, "10 over 2 zones → 5 per zone");
    assert_eq!(body["autoscaling"]["maxNodeCount"], 5, "max raised to the new min");
    assert_eq!(body["autoscaling"]["enabled"], true);
    assert_eq!(pool.operation(&op).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.node_pool(POOL), Some((2, Some((5, 5)))));
    assert_eq!(pool.observe().await.unwrap().size, 10);
}

/// A pool in 3 zones says it takes multiples of 3, and the tick asks for one: 3 nodes at 0.7 CPU
/// (target 0.5) need 5, and the pool is resized to 6, 2 per zone. The state records the 6.
#[tokio::test]
async fn a_three_zone_pool_is_resized_to_a_multiple_of_three() {
    let (fake, cfg) = fake().await;
    fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 1, &["us-central1-a", "us-central1-b", "us-central1-c"]);
    fake.set_time_series(CPU, cpu_script(0.7));
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let pool = gke(&cfg, false).await;
    let (policy, queries) = policy();

    let r = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &pool, now()).await.unwrap();
    assert_eq!((r.observation.size, r.observation.sizes), (3, SizeRule::Multiple(3)));
    assert_eq!(r.decision.recommended, Some(5), "the load needs 5 nodes");
    let Actuation::Started { to: 6, .. } = &r.actuation else { panic!("{:?}", r.actuation) };
    let body: serde_json::Value = serde_json::from_str(&fake.requests_to(Endpoint::SetNodePoolSize)[0].body).unwrap();
    assert_eq!(body["nodeCount"], 2, "6 over 3 zones");

    let r2 = tick(&policy, &queries, r.decision.state.clone(), source.as_ref(), &pool, now() + Dur::mins(1)).await;
    let r2 = r2.unwrap();
    assert_eq!(r2.operation, Some(OperationOutcome::Finished { from: 3, to: 6 }));
    assert!(r2.decision.state.resizes.iter().all(|x| x.to % 3 == 0), "{:?}", r2.decision.state.resizes);
    assert_eq!(fake.node_pool(POOL), Some((2, None)));
}

fn steered_ref() -> ebbflow::api::BigtableClusterRef {
    ebbflow::api::BigtableClusterRef { steer_autoscaler: true, ..bigtable_ref() }
}

/// Built-in autoscaling on (2 to 10 nodes, 4 live at 0.9 CPU) and the policy steering it: the load
/// is read on the 4 live nodes, and what the policy decides becomes the autoscaler's minimum,
/// through a PartialUpdateCluster of the limits alone (an operation, followed). The live size
/// moves only when the autoscaler acts, later, and then into the new limits.
#[tokio::test]
async fn steering_bigtable_autoscaling_sets_its_minimum() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 4);
    fake.set_bigtable_autoscaling_limits(CLUSTER, Some((2, 10)));
    fake.set_time_series(CPU, cpu_script(0.9));
    fake.set_polls_to_finish(1);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = ebbflow::gcp::BigtableCluster::connect(&cfg, &steered_ref()).await.unwrap();
    let (policy, queries) = policy();

    let obs = target.observe().await.unwrap();
    assert_eq!((obs.size, obs.serving, &obs.floor), (2, Some(4), &FloorMetric::None));
    let r = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await.unwrap();
    assert_eq!(r.decision.reason, Reason::ScaleOut);
    // 4 live nodes at 0.9 are 3.6 nodes of load, 8 at the 0.5 target: from a minimum of 2 the
    // scale-out step (100 %, or 4 nodes) allows 6.
    let Actuation::Started { to: 6, operation: Some(op), done: false } = &r.actuation else {
        panic!("{:?}", r.actuation)
    };
    let patch = &fake.requests_to(Endpoint::UpdateCluster)[0];
    let mask = patch.param("updateMask").unwrap();
    assert!(mask.contains("minServeNodes") || mask.contains("min_serve_nodes"), "{mask}");
    assert!(mask.contains("maxServeNodes") || mask.contains("max_serve_nodes"), "the policy's maxSize too: {mask}");
    assert!(!mask.split(',').any(|p| p == "serveNodes" || p == "serve_nodes"), "never the size: {mask}");
    let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    let limits = &body["clusterConfig"]["clusterAutoscalingConfig"]["autoscalingLimits"];
    assert_eq!((limits["minServeNodes"].as_u64(), limits["maxServeNodes"].as_u64()), (Some(6), Some(20)), "{body}");
    assert_eq!(target.operation(op).await.unwrap(), OperationStatus::Done);
    assert_eq!(fake.bigtable_autoscaling(CLUSTER), Some((6, 20)), "the policy's minimum and maxSize");
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(4), "a new minimum, not a new size, until the autoscaler acts");
    fake.run_builtin_autoscaler(CLUSTER, None);
    assert_eq!(fake.bigtable_nodes(CLUSTER), Some(6));
    let obs = target.observe().await.unwrap();
    assert_eq!((obs.size, obs.serving), (6, Some(6)));

    // A plain resize (no policy maximum) raises the maximum only when the minimum passes it.
    fake.set_polls_to_finish(0);
    assert_eq!(target.resize(12).await.unwrap(), ResizeStarted::Done);
    assert_eq!(fake.bigtable_autoscaling(CLUSTER), Some((12, 20)));
    assert_eq!(target.resize(24).await.unwrap(), ResizeStarted::Done);
    assert_eq!(fake.bigtable_autoscaling(CLUSTER), Some((24, 24)));
    // Within the policy's limits, the maximum follows the policy's, down as well as up.
    assert_eq!(target.resize_within(8, 30).await.unwrap(), ResizeStarted::Done);
    assert_eq!(fake.bigtable_autoscaling(CLUSTER), Some((8, 30)));
    assert_eq!(target.resize_within(9, 16).await.unwrap(), ResizeStarted::Done);
    assert_eq!(fake.bigtable_autoscaling(CLUSTER), Some((9, 16)), "lowered with the policy's");
    // Bigtable keeps max <= 10 x min: a minimum under a tenth of the maximum is refused, unsent.
    fake.set_bigtable_autoscaling_limits(CLUSTER, Some((4, 40)));
    let sent = fake.requests_to(Endpoint::UpdateCluster).len();
    let e = target.resize(3).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    assert!(e.message.contains("cannot go below 4"), "{e}");
    assert_eq!(fake.requests_to(Endpoint::UpdateCluster).len(), sent);
    // Autoscaling turned off by hand: the policy sets the serve nodes again.
    fake.set_bigtable_autoscaling_limits(CLUSTER, None);
    let obs = target.observe().await.unwrap();
    assert_eq!((obs.size, obs.serving), (6, None));
}

/// The minimum stays where it is, but the autoscaler's maximum is not the policy's (it was
/// edited by hand, or a window changed it): the tick writes the limits again, the minimum as it
/// is, and once they agree writes nothing more. The policy's own state is not touched.
#[tokio::test]
async fn a_steered_maximum_that_drifted_is_set_again_without_a_resize() {
    let (fake, cfg) = fake().await;
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 4);
    fake.set_bigtable_autoscaling_limits(CLUSTER, Some((3, 10)));
    // 4 live nodes at 0.36: 1.44 nodes of load, 3 at the 0.5 target: the minimum holds.
    fake.set_time_series(CPU, cpu_script(0.36));
    fake.set_polls_to_finish(0);
    let source = Arc::new(CloudMonitoring::new(&cfg).await.unwrap());
    let target = ebbflow::gcp::BigtableCluster::connect(&cfg, &steered_ref()).await.unwrap();
    let (policy, queries) = policy();

    let r = tick(&policy, &queries, PolicyState::default(), source.as_ref(), &target, now()).await.unwrap();
    assert!(!r.decision.is_resize(), "{:?}", r.decision);
    assert_eq!(r.actuation, Actuation::None);
    assert!(r.decision.state.resizes.is_empty() && r.decision.state.in_flight.is_none(), "no resize of the policy's");
    assert_eq!(fake.bigtable_autoscaling(CLUSTER), Some((3, 20)), "the policy's maxSize, the minimum as it was");
    let writes = fake.requests_to(Endpoint::UpdateCluster).len();
    assert_eq!(writes, 1);
    let r = tick(&policy, &queries, r.decision.state, source.as_ref(), &target, now() + Dur::mins(1)).await.unwrap();
    assert!(!r.decision.is_resize());
    assert_eq!(fake.requests_to(Endpoint::UpdateCluster).len(), writes, "nothing more once they agree");
}
