//! Graceful scale-in of a GKE node pool (`gcp::drain`), against the Google fake (node pools whose
//! instance groups hold named VMs, `deleteInstances` that takes them out and answers with a zone
//! operation) and the HTTP-level mock API server (nodes, pods spread over them, PodDisruptionBudgets
//! and the Eviction subresource answering 429 while a budget allows no disruption). The two are
//! kept consistent the way a cluster is: a node is a VM of the pool, and it leaves the API once
//! its VM is deleted.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ebbflow::adapters::{OperationStatus, ResizeStarted, ScaleTarget};
use ebbflow::api::GkeNodePoolRef;
use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::drain::{DEADLINE_ANNOTATION, DELETE_ANNOTATION, KEPT_ANNOTATION, POOL_LABEL, TAINT_KEY, ZONE_LABEL};
use ebbflow::gcp::fake::{Endpoint, FakeGcp};
use ebbflow::gcp::{Clock, GcpConfig, GkeNodePool};
use serde_json::{Value, json};

use crate::controller_support::mock_client;
use crate::controller_support::watch::WatchServer;
use crate::gcp_support::{POOL, fake, gke_ref};

const NODES: &str = "/api/v1/nodes";
const ZONES: [&str; 2] = ["us-central1-a", "us-central1-b"];

/// A pool of 3 VMs in each of two zones, a node for each VM, and a clock the test moves.
struct Cluster {
    fake: FakeGcp,
    cfg: GcpConfig,
    api: WatchServer,
    kube: kube::Client,
    now: Arc<AtomicI64>,
    /// Node names per zone, in the groups' order.
    nodes: Vec<Vec<String>>,
}

impl Cluster {
    async fn new() -> Cluster {
        let (fake, cfg) = fake().await;
        fake.add_node_pool("p1", "us-central1", "gke1", "pool-1", 3, &ZONES);
        let (kube, handle) = mock_client();
        let api = WatchServer::start(handle);
        let mut nodes = Vec::new();
        for zone in ZONES {
            let names = fake.group_instances(POOL, zone);
            for n in &names {
                api.put(NODES, node(n, zone));
            }
            nodes.push(names);
        }
        Cluster { fake, cfg, api, kube, now: Arc::new(AtomicI64::new(1_800_000_000_000)), nodes }
    }

    fn clock(&self) -> Clock {
        let now = self.now.clone();
        Arc::new(move || Ts(now.load(Ordering::SeqCst)))
    }

    fn advance(&self, d: Dur) {
        self.now.fetch_add(d.0, Ordering::SeqCst);
    }

    /// The target as a freshly started controller builds it (nothing carried over but the
    /// plan in the operation name): every test can "restart" by calling this again.
    async fn target(&self, settings: impl FnOnce(&mut GkeNodePoolRef)) -> GkeNodePool {
        let mut r = gke_ref(false);
        settings(&mut r);
        GkeNodePool::connect(&self.cfg, &r).await.unwrap().with_drain(self.kube.clone(), &r, self.clock())
    }

    /// A pod of a ReplicaSet on `node`, requesting `cpu`.
    fn pod(&self, name: &str, node: &str, cpu: &str, labels: Value) {
        self.api.put(
            "/api/v1/namespaces/shop/pods",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "shop", "labels": labels,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]},
                "spec": {"nodeName": node, "terminationGracePeriodSeconds": 600,
                    "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
                "status": {"phase": "Running"}}),
        );
    }

    fn node(&self, name: &str) -> Option<Value> {
        self.api.get(NODES, name)
    }

    fn cordoned(&self, name: &str) -> bool {
        self.node(name).is_some_and(|n| {
            n["spec"]["unschedulable"] == true
                || n["spec"]["taints"].as_array().is_some_and(|t| t.iter().any(|t| t["key"] == TAINT_KEY))
        })
    }

    /// The VMs deleted so far and the nodes they ran leave the API, as the node controller does.
    fn reap(&self) {
        for (zone, names) in ZONES.iter().zip(&self.nodes) {
            let live = self.fake.group_instances(POOL, zone);
            for n in names.iter().filter(|n| !live.contains(n)) {
                self.api.delete(NODES, n);
            }
        }
    }

    fn deletes(&self) -> usize {
        self.fake.requests_to(Endpoint::DeleteInstances).len()
    }

    fn patches(&self) -> usize {
        self.api.seen().iter().filter(|r| r.starts_with("PATCH") || r.starts_with("POST")).count()
    }
}

fn node(name: &str, zone: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {POOL_LABEL: "pool-1", ZONE_LABEL: zone}},
        "spec": {}, "status": {}})
}

/// Steps the drain until it is over (at most `steps` times), playing the kubelet and the node
/// controller between steps; the last status.
async fn drive(c: &Cluster, target: &GkeNodePool, op: &str, steps: usize) -> OperationStatus {
    let mut last = OperationStatus::Running;
    for _ in 0..steps {
        last = target.operation(op).await.unwrap();
        if !running(&last) {
            break;
        }
        c.api.finish_terminating();
        c.reap();
        c.advance(Dur::secs(30));
    }
    last
}

/// Whether the drain is still going (with or without a word on where it stands).
fn running(status: &OperationStatus) -> bool {
    matches!(status, OperationStatus::Running | OperationStatus::Progress(_))
}

/// A policy on the test pool, sizes 2-20, metric `cpu` at target 0.5 with the Monitoring `query`,
/// and the fields of `extra` added to its spec; with its Monitoring queries.
fn pool_policy(query: Value, extra: Value) -> (ebbflow::core::Policy, Vec<ebbflow::adapters::MetricQuery>) {
    let mut spec = json!({
        "target": {"gkeNodePool": {"project": "p1", "location": "us-central1", "cluster": "gke1", "nodePool": "pool-1"}},
        "minSize": 2, "maxSize": 20,
        "metrics": [{"name": "cpu", "target": 0.5, "query": query}]
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    let spec: ebbflow::api::ScalePolicySpec = serde_json::from_value(spec).unwrap();
    let policy = ebbflow::spec::policy_from_spec(&spec).unwrap();
    let queries = spec.metrics.iter().map(|m| ebbflow::spec::metric_query(m, "p1", "default")).collect();
    (policy, queries)
}

fn plan_of(started: ResizeStarted) -> String {
    match started {
        ResizeStarted::Operation(name) => name,
        other => panic!("a drain plan, not {other:?}"),
    }
}

/// 6 -> 4 across two zones: the emptiest node of each zone is chosen (zone a holds the two
/// emptiest of the pool, yet one comes from each zone), nothing is touched before the plan is
/// stored, the pods move through the Eviction API with their grace period capped, and exactly
/// the two drained VMs are deleted; the live size, read from the groups, is 4 while the pool's
/// initialNodeCount still says 3 per zone.
#[tokio::test]
async fn the_emptiest_nodes_of_each_zone_are_drained_and_only_they_are_deleted() {
    let c = Cluster::new().await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    // zone a: 100m, 200m, 2000m; zone b: 500m, 900m, 3000m.
    for (i, (n, cpu)) in
        [(&a[0], "100m"), (&a[1], "200m"), (&a[2], "2"), (&b[0], "500m"), (&b[1], "900m"), (&b[2], "3")]
            .into_iter()
            .enumerate()
    {
        c.pod(&format!("web-{i}"), n, cpu, json!({"app": "web"}));
    }
    let target = c.target(|_| {}).await;
    assert_eq!(target.observe().await.unwrap().size, 6);

    let op = plan_of(target.resize(4).await.unwrap());
    assert!(op.contains(&format!("us-central1-a/{}", a[0])) && op.contains(&format!("us-central1-b/{}", b[0])), "{op}");
    assert_eq!(c.patches(), 0, "planning touches nothing: the plan goes into status first");
    assert_eq!(c.deletes(), 0);

    // First step: both cordoned and tainted, with a deadline.
    assert!(running(&target.operation(&op).await.unwrap()));
    for n in [&a[0], &b[0]] {
        assert!(c.cordoned(n), "{n} cordoned");
        assert!(c.node(n).unwrap()["metadata"]["annotations"][DEADLINE_ANNOTATION].is_string());
    }
    assert!(!c.cordoned(&a[1]) && !c.cordoned(&b[1]), "no other node touched");

    // Second step: the pods are evicted with the grace period capped at maxPodGracePeriod (2m).
    assert!(running(&target.operation(&op).await.unwrap()));
    let web0 = c.api.get("/api/v1/namespaces/shop/pods", "web-0").unwrap();
    assert_eq!(web0["metadata"]["deletionGracePeriodSeconds"], 120, "600 s asked, capped at 2 minutes");
    assert_eq!(c.deletes(), 0, "no VM deleted while its pods are terminating");

    let status = drive(&c, &target, &op, 10).await;
    assert_eq!(status, OperationStatus::Done);
    assert_eq!(c.deletes(), 2, "one deleteInstances per drained node");
    assert_eq!(c.fake.group_instances(POOL, ZONES[0]), a[1..].to_vec());
    assert_eq!(c.fake.group_instances(POOL, ZONES[1]), b[1..].to_vec());
    assert_eq!(c.fake.group_sizes(POOL), [2, 2], "zones stay balanced");
    assert_eq!(target.observe().await.unwrap().size, 4, "the live size is the groups' target sizes");
    assert_eq!(c.fake.node_pool(POOL).map(|p| p.0), Some(3), "the pool's own per-zone count still says 3");
    for n in [&a[1], &a[2], &b[1], &b[2]] {
        assert!(!c.cordoned(n), "{n} untouched");
    }
}

/// A budget that never allows a disruption: the node is drained until drainTimeout, then kept:
/// uncordoned, untainted, no VM deleted, and the outcome names the pod and the budget.
#[tokio::test]
async fn a_budget_that_never_allows_eviction_keeps_the_node_and_says_why() {
    let c = Cluster::new().await;
    for (zone, names) in c.nodes.iter().enumerate() {
        for (i, n) in names.iter().enumerate() {
            let cpu = if zone == 0 && i == 0 { "10m" } else { "1" };
            c.pod(&format!("db-{zone}-{i}"), n, cpu, json!({"app": "db"}));
        }
    }
    c.api.put(
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "db-pdb", "namespace": "shop"},
            "spec": {"minAvailable": 6, "selector": {"matchLabels": {"app": "db"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 6, "desiredHealthy": 6, "expectedPods": 6}}),
    );
    let target = c.target(|r| r.drain_timeout = Some("5m".into())).await;
    let op = plan_of(target.resize(4).await.unwrap());
    // While it waits, the operation says which pod and which budget hold each node.
    target.operation(&op).await.unwrap();
    let OperationStatus::Progress(now) = target.operation(&op).await.unwrap() else { panic!("still draining") };
    assert!(
        now.contains(&format!("{}: 1 pod(s) left", c.nodes[0][0])) && now.contains("held by pod shop/db-0-0"),
        "{now}"
    );
    assert!(now.contains("db-pdb needs 6 healthy pods"), "{now}");
    let status = drive(&c, &target, &op, 30).await;
    let OperationStatus::Failed(why) = status else { panic!("kept, so failed: {status:?}") };
    assert!(why.contains("db-pdb") && why.contains("shop/db-0-0"), "{why}");
    assert!(why.contains("not empty after 5m"), "{why}");
    let evictions: Vec<String> = c.api.seen().into_iter().filter(|r| r.contains("/eviction")).collect();
    assert!(evictions.last().is_some_and(|r| r.contains("dryRun=All")), "at the deadline only asked: {evictions:?}");
    assert_eq!(c.deletes(), 0, "no VM deleted");
    for names in &c.nodes {
        for n in names {
            assert!(!c.cordoned(n), "{n} serves again");
        }
    }
    let kept = c.node(&c.nodes[0][0]).unwrap();
    assert!(kept["metadata"]["annotations"][KEPT_ANNOTATION].as_str().is_some_and(|k| k.contains("db-pdb")));
    assert_eq!(c.fake.group_sizes(POOL), [3, 3]);
    // Another step of the same plan leaves the kept node alone.
    assert!(matches!(target.operation(&op).await.unwrap(), OperationStatus::Failed(_)));
    assert!(!c.cordoned(&c.nodes[0][0]));
}

/// Pods that cannot move keep their node out of the plan; when no node can go, the resize is
/// refused with each node's reason and nothing is touched.
#[tokio::test]
async fn nodes_whose_pods_cannot_move_are_never_chosen() {
    let c = Cluster::new().await;
    let bare = |name: &str, node: &str, extra: Value| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]}, "status": {"phase": "Running"}});
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                p.insert(k.clone(), v.clone());
            }
        }
        p
    };
    let owned = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]);
    let pods = "/api/v1/namespaces/shop/pods";
    let all: Vec<&String> = c.nodes.iter().flatten().collect();
    c.api.put(pods, bare("bare", all[0], json!({})));
    c.api.put(
        pods,
        bare(
            "pinned",
            all[1],
            json!({"metadata": {"name": "pinned", "namespace": "shop", "ownerReferences": owned,
            "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}}}),
        ),
    );
    c.api.put(
        pods,
        bare(
            "scratch",
            all[2],
            json!({"metadata": {"name": "scratch", "namespace": "shop", "ownerReferences": owned},
            "spec": {"nodeName": all[2], "containers": [{"name": "c"}], "volumes": [{"name": "tmp", "emptyDir": {}}]}}),
        ),
    );
    let mut disabled = node(all[3], ZONES[1]);
    disabled["metadata"]["annotations"] = json!({"cluster-autoscaler.kubernetes.io/scale-down-disabled": "true"});
    c.api.put(NODES, disabled);
    c.pod("busy", all[4], "4", json!({"app": "web"}));
    c.pod("light", all[5], "100m", json!({"app": "web"}));

    let target = c.target(|_| {}).await;
    let op = plan_of(target.resize(5).await.unwrap());
    assert_eq!(
        op.split(':').nth(2),
        Some(format!("{}/{}", ZONES[1], all[5]).as_str()),
        "the one movable, emptiest node"
    );

    c.api.put(pods, bare("bare-2", all[5], json!({})));
    c.api.put(pods, bare("bare-3", all[4], json!({})));
    let refused = target.resize(5).await.expect_err("no node can go");
    for why in ["no controller", "safe-to-evict", "evictLocalStorage", "scale-down-disabled"] {
        assert!(refused.message.contains(why), "{why}: {refused}");
    }
    assert_eq!(c.patches(), 0, "nothing was touched");
}

/// A controller killed at each step (plan stored, cordoned, half evicted, delete sent) and
/// started again (a new adapter with only the stored plan) finishes the same drain: no node is
/// deleted undrained, none stays cordoned, and the group shrinks once per node.
#[tokio::test]
async fn a_restart_at_every_step_finishes_the_drain_without_harm() {
    let c = Cluster::new().await;
    let victim = c.nodes[0][0].clone();
    c.pod("a", &victim, "10m", json!({"app": "web"}));
    c.pod("b", &victim, "10m", json!({"app": "web"}));
    for (i, n) in c.nodes.iter().flatten().skip(1).enumerate() {
        c.pod(&format!("x{i}"), n, "1", json!({"app": "web"}));
    }
    // One of the two pods may go at a time.
    c.api.put(
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 7, "desiredHealthy": 6}}),
    );
    // Plan stored, then killed: a new process carries on from the stored name.
    let op = plan_of(c.target(|_| {}).await.resize(5).await.unwrap());
    assert!(op.ends_with(&format!("/{victim}")), "{op}");
    // Cordoned, then killed.
    assert!(running(&c.target(|_| {}).await.operation(&op).await.unwrap()));
    assert!(c.cordoned(&victim));
    // Half evicted (the budget let one pod go), then killed.
    assert!(running(&c.target(|_| {}).await.operation(&op).await.unwrap()));
    let terminating =
        |p: &str| !c.api.get("/api/v1/namespaces/shop/pods", p).unwrap()["metadata"]["deletionTimestamp"].is_null();
    assert!(terminating("a") && !terminating("b"), "one eviction taken, one refused by the budget");
    assert_eq!(c.deletes(), 0);
    // The first pod is gone and its replacement healthy elsewhere: the budget allows one more.
    c.api.finish_terminating();
    c.api.put(
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 7, "desiredHealthy": 6}}),
    );
    assert!(running(&c.target(|_| {}).await.operation(&op).await.unwrap()));
    assert_eq!(c.deletes(), 0, "not deleted while a pod is still terminating");
    c.api.finish_terminating();
    // Empty: the delete is sent; killed before the operation was noted on the node.
    assert!(running(&c.target(|_| {}).await.operation(&op).await.unwrap()));
    assert_eq!(c.deletes(), 1);
    let mut n = c.node(&victim).unwrap();
    n["metadata"]["annotations"][DELETE_ANNOTATION] = json!("");
    c.api.put(NODES, n);
    // While it was down, a pod was bound to the node (one with spec.nodeName set skips the
    // scheduler): the new process evicts it before it sends the deletion again.
    c.pod("late", &victim, "10m", json!({"app": "late"}));
    assert!(running(&c.target(|_| {}).await.operation(&op).await.unwrap()));
    assert_eq!(c.deletes(), 1, "not sent again while a pod runs there");
    assert!(terminating("late"), "the late pod is evicted first");
    c.api.finish_terminating();
    // The new process sends it again (the group skips a VM already gone) and follows it.
    let status = drive(&c, &c.target(|_| {}).await, &op, 5).await;
    assert_eq!(status, OperationStatus::Done);
    assert_eq!(c.fake.group_sizes(POOL), [2, 3], "one VM removed, once");
    assert!(!c.fake.group_instances(POOL, ZONES[0]).contains(&victim));
    for n in c.nodes.iter().flatten().filter(|n| **n != victim) {
        assert!(!c.cordoned(n), "{n}");
    }
}

/// A plan that was lost (its status deleted while the node was cordoned) does not leave the node
/// cordoned for good: once its deadline has passed by the grace, observing the pool releases it.
#[tokio::test]
async fn a_node_left_cordoned_by_a_lost_plan_is_released() {
    let c = Cluster::new().await;
    for (i, n) in c.nodes.iter().flatten().enumerate() {
        c.pod(&format!("p{i}"), n, if i == 0 { "10m" } else { "1" }, json!({"app": "web"}));
    }
    let target = c.target(|_| {}).await;
    let op = plan_of(target.resize(5).await.unwrap());
    target.operation(&op).await.unwrap();
    let victim = &c.nodes[0][0];
    assert!(c.cordoned(victim));
    // The plan is forgotten. Within its drain time the node stays as it is (a live plan may
    // still be followed by another replica)...
    c.advance(Dur::mins(10));
    target.observe().await.unwrap();
    assert!(c.cordoned(victim));
    // ...past it by the grace, it serves again.
    c.advance(Dur::mins(6));
    target.observe().await.unwrap();
    assert!(!c.cordoned(victim), "released");
    assert_eq!(c.deletes(), 0);
}

/// The whole loop: a policy whose load needs fewer nodes drains them through the tick, one
/// evaluation a minute. The evaluation that decides stores the plan as its operation (nothing
/// touched yet); the next ones move the drain on; the resize finishes at the size the groups
/// show, and only then does the cooldown start.
#[tokio::test]
async fn a_policy_scales_the_pool_in_through_a_drain_evaluation_by_evaluation() {
    use ebbflow::core::PolicyState;
    use ebbflow::gcp::CloudMonitoring;
    use ebbflow::gcp::fake::Script;
    use ebbflow::tick::OperationOutcome;

    let c = Cluster::new().await;
    for (i, n) in c.nodes.iter().flatten().enumerate() {
        c.pod(&format!("web-{i}"), n, "100m", json!({"app": "web"}));
    }
    let filter =
        r#"metric.type="kubernetes.io/node/cpu/allocatable_utilization" AND resource.labels.cluster_name="gke1""#;
    let (policy, queries) = pool_policy(
        json!({"filter": filter, "crossSeriesReducer": "REDUCE_MEAN"}),
        json!({"scaleIn": {"cooldown": "0s", "stabilizationWindow": "0s", "maxStepNodes": 10}, "forecast": {"mode": "off"}}),
    );
    let start = crate::gcp_support::now();
    // Nodes at 15 % against a 50 % target: 6 nodes' load fits on 2.
    c.fake.set_time_series(filter, Script::regular(start - Dur::mins(30), Dur::mins(1), &[0.15; 40]));
    let source = CloudMonitoring::new(&c.cfg).await.unwrap();
    let target = c.target(|_| {}).await;

    let mut state = PolicyState::default();
    let mut finished = None;
    let mut progress = Vec::new();
    for minute in 0..15 {
        let now = start + Dur::mins(minute);
        let report = ebbflow::tick::tick(&policy, &queries, state, &source, &target, now).await.unwrap();
        state = report.decision.state.clone();
        progress.extend(report.progress.clone());
        if minute == 0 {
            let flight = state.in_flight.as_ref().expect("a resize started");
            assert_eq!((flight.from, flight.to), (6, 2));
            assert!(flight.operation.as_deref().is_some_and(|o| o.starts_with("drain:")), "{flight:?}");
            assert_eq!(c.patches(), 0, "the plan is stored before any node is touched");
        }
        if let Some(done @ OperationOutcome::Finished { .. }) = report.operation {
            finished = Some((minute, done));
            break;
        }
        c.api.finish_terminating();
        c.reap();
        c.advance(Dur::mins(1));
    }
    let (minute, done) = finished.expect("the drain finished within 15 evaluations");
    assert_eq!(done, OperationOutcome::Finished { from: 6, to: 2 });
    // Each evaluation while it ran said where the drain stood (status.operationProgress).
    assert!(progress.iter().any(|p| p.contains("cordoned and tainted")), "{progress:?}");
    assert!(progress.iter().any(|p| p.contains("pod(s) left")), "{progress:?}");
    assert!(progress.iter().any(|p| p.contains("VM is being deleted")), "{progress:?}");
    assert!(minute >= 3, "cordon, evict, delete each take an evaluation: finished at minute {minute}");
    assert_eq!(c.fake.group_sizes(POOL), [1, 1], "two nodes drained and deleted in each zone");
    assert_eq!(c.fake.requests_to(Endpoint::SetNodePoolSize).len(), 0, "no plain resize");
    assert_eq!(state.last_resize_at, Some(start + Dur::mins(minute)), "the cooldown starts when the nodes are gone");
}

/// One node empties and one is held by its budget: the drain ends done in part, with the one VM
/// deleted, the other node serving again, and the pod and budget named; the tick reads it as a
/// finished resize at the size the groups show, with a warning Event.
#[tokio::test]
async fn a_drain_that_removes_only_some_nodes_says_which_were_kept_and_why() {
    use ebbflow::controller::events::for_report;
    use ebbflow::core::PolicyState;
    use ebbflow::tick::OperationOutcome;

    let c = Cluster::new().await;
    let (a, b) = (c.nodes[0].clone(), c.nodes[1].clone());
    c.pod("free", &a[0], "10m", json!({"app": "web"}));
    c.pod("held", &b[0], "10m", json!({"app": "db"}));
    for (i, n) in a[1..].iter().chain(&b[1..]).enumerate() {
        c.pod(&format!("busy-{i}"), n, "2", json!({"app": "web"}));
    }
    c.api.put(
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db-pdb", "namespace": "shop"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1}}),
    );
    let target = c.target(|r| r.drain_timeout = Some("2m".into())).await;
    let op = plan_of(target.resize(4).await.unwrap());
    let status = drive(&c, &target, &op, 20).await;
    let OperationStatus::DonePartly(left) = &status else { panic!("done in part: {status:?}") };
    assert!(left.starts_with("1 of 2 node(s) removed"), "{left}");
    assert!(left.contains(&b[0]) && left.contains("shop/held") && left.contains("db-pdb"), "{left}");
    assert_eq!(c.fake.group_sizes(POOL), [2, 3]);
    assert!(!c.cordoned(&b[0]), "the kept node serves again");

    // Through the tick: a finished resize at 5, and a warning Event that says what was kept.
    let filter = r#"metric.type="kubernetes.io/node/cpu/allocatable_utilization""#;
    let (policy, queries) = pool_policy(json!({"filter": filter}), json!({}));
    let now = crate::gcp_support::now();
    c.fake.set_time_series(filter, ebbflow::gcp::fake::Script::regular(now - Dur::mins(30), Dur::mins(1), &[0.4; 31]));
    let source = ebbflow::gcp::CloudMonitoring::new(&c.cfg).await.unwrap();
    let mut state = PolicyState::default();
    state.begin_resize(6, 4, Some(op.clone()), now - Dur::mins(5));
    let report = ebbflow::tick::tick(&policy, &queries, state, &source, &target, now).await.unwrap();
    assert_eq!(report.operation, Some(OperationOutcome::Finished { from: 6, to: 5 }), "finished at what was removed");
    let events = for_report(&policy, &report);
    let partly = events.iter().find(|e| e.reason == "ResizePartlyDone").expect("a warning Event");
    assert!(partly.warning && partly.note.contains("db-pdb") && partly.note.contains("shop/held"), "{}", partly.note);
}

/// A controller upgraded without the new RBAC: the first scale-in is refused with what to grant
/// (or how to opt out), and nothing is touched.
#[tokio::test]
async fn missing_rbac_for_nodes_is_refused_with_what_to_grant() {
    let c = Cluster::new().await;
    c.api.refuse(NODES, 403);
    let target = c.target(|_| {}).await;
    let e = target.resize(4).await.expect_err("refused");
    assert_eq!(e.kind, ebbflow::adapters::ErrorKind::PermissionDenied, "{e}");
    assert!(e.message.contains("pods/eviction") && e.message.contains("scaleIn: resize"), "{e}");
    assert_eq!(c.deletes(), 0);
    assert!(c.fake.requests_to(Endpoint::SetNodePoolSize).is_empty(), "no plain resize behind the user's back");
}

/// A deletion the group keeps refusing (here the controller lacks the permission) neither stops
/// the drain's other nodes nor reads as a vanished operation: the drain reports it while it
/// retries, and at the deadline the node is released, not left cordoned.
#[tokio::test]
async fn a_deletion_that_keeps_failing_releases_the_node_at_its_deadline() {
    use ebbflow::gcp::fake::Fault;
    let c = Cluster::new().await;
    for (i, n) in c.nodes.iter().flatten().enumerate() {
        c.pod(&format!("p{i}"), n, if i == 0 { "10m" } else { "1" }, json!({"app": "web"}));
    }
    c.fake.inject(Endpoint::DeleteInstances, Fault::PermissionDenied, 1000);
    let target = c.target(|r| r.drain_timeout = Some("3m".into())).await;
    let op = plan_of(target.resize(5).await.unwrap());
    let victim = c.nodes[0][0].clone();
    let mut said = Vec::new();
    let status = loop {
        let s = target.operation(&op).await.unwrap();
        match &s {
            OperationStatus::Progress(p) => said.push(p.clone()),
            OperationStatus::Running => {}
            _ => break s,
        }
        assert!(said.len() < 30, "the drain never ended: {said:?}");
        c.api.finish_terminating();
        c.advance(Dur::secs(30));
    };
    assert!(
        said.iter()
            .any(|p| p.contains("deleting its VM was refused") && p.contains("compute.instanceGroupManagers.update")),
        "{said:?}"
    );
    let OperationStatus::Failed(why) = status else { panic!("{status:?}") };
    assert!(why.contains(&victim) && why.contains("refused"), "{why}");
    assert!(!c.cordoned(&victim), "released, not cordoned for good");
    assert_eq!(c.fake.group_sizes(POOL), [3, 3]);
}

/// A pool whose zones a drain left uneven (1 and 4 nodes) scaled out to 6: every zone is set to
/// at least the largest zone's count, so the larger zone loses no VM to the resize.
#[tokio::test]
async fn a_scale_out_after_an_uneven_drain_never_shrinks_a_zone() {
    let c = Cluster::new().await;
    c.fake.set_group_size(POOL, ZONES[0], 1);
    c.fake.set_group_size(POOL, ZONES[1], 4);
    let before = c.fake.group_instances(POOL, ZONES[1]);
    let target = c.target(|_| {}).await;
    let ResizeStarted::Operation(op) = target.resize(6).await.unwrap() else { panic!("an operation") };
    assert_eq!(target.operation(&op).await.unwrap(), OperationStatus::Done);
    assert_eq!(c.fake.group_sizes(POOL), [4, 4], "4 per zone, not 3");
    assert_eq!(c.fake.group_instances(POOL, ZONES[1]), before, "no VM of the larger zone removed");
}

/// The policy stops draining while a drain runs (scaleIn: resize): the next evaluation rolls the
/// drain back, releasing its nodes, and deletes nothing.
#[tokio::test]
async fn a_drain_whose_policy_stops_draining_is_rolled_back() {
    let c = Cluster::new().await;
    for (i, n) in c.nodes.iter().flatten().enumerate() {
        c.pod(&format!("p{i}"), n, if i == 0 { "10m" } else { "1" }, json!({"app": "web"}));
    }
    let op = plan_of(c.target(|_| {}).await.resize(5).await.unwrap());
    c.target(|_| {}).await.operation(&op).await.unwrap();
    let victim = &c.nodes[0][0];
    assert!(c.cordoned(victim));
    let resized = c.target(|r| r.scale_in = ebbflow::api::ScaleIn::Resize).await;
    let status = resized.operation(&op).await.unwrap();
    assert!(matches!(&status, OperationStatus::Failed(m) if m.contains("rolled back")), "{status:?}");
    assert!(!c.cordoned(victim));
    assert_eq!(c.deletes(), 0);
}

/// A kube-system pod that no PodDisruptionBudget covers keeps its node out of the plan, as
/// cluster-autoscaler has it by default; once kube-system gives it a budget, the node can go.
#[tokio::test]
async fn a_system_pod_without_a_budget_keeps_its_node() {
    let c = Cluster::new().await;
    let all: Vec<String> = c.nodes.iter().flatten().cloned().collect();
    for (i, n) in all.iter().enumerate().skip(1) {
        c.pod(&format!("web-{i}"), n, "1", json!({"app": "web"}));
    }
    // The emptiest node runs only a DNS replica.
    c.api.put(
        "/api/v1/namespaces/kube-system/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-dns-1", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "kube-dns", "uid": "u", "controller": true}]},
            "spec": {"nodeName": all[0], "containers": [{"name": "dns", "resources": {"requests": {"cpu": "10m"}}}]},
            "status": {"phase": "Running"}}),
    );
    let target = c.target(|_| {}).await;
    let op = plan_of(target.resize(5).await.unwrap());
    assert!(!op.contains(&all[0]), "the DNS node is not chosen: {op}");
    c.api.put(
        "/apis/policy/v1/namespaces/kube-system/poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"maxUnavailable": 1, "selector": {"matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]}},
            "status": {"disruptionsAllowed": 1}}),
    );
    let op = plan_of(target.resize(5).await.unwrap());
    assert!(op.ends_with(&format!("/{}", all[0])), "with a budget it is the cheapest again: {op}");
}
