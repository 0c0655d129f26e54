//! The controller against a mock Kubernetes API server (`tower_test`): every request is checked
//! and answered in order, and anything extra fails the test. The Google side is a small fake.

use crate::controller_support;

use std::sync::Arc;
use std::time::Duration;

use controller_support::*;
use ebbflow::api::ScalePolicy;
use ebbflow::controller::Engine;
use ebbflow::controller::cluster::{Context, KubeStatus, reconcile};
use ebbflow::controller::events::KubeEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::reconcile::Shown;
use http::Method;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use serde_json::{Value, json};

fn context(
    client: kube::Client,
    fake: &Fake,
    leadership: Leadership,
    peers: &[ScalePolicy],
) -> Arc<Context<FakeBackends>> {
    let (store, mut writer) = kube::runtime::reflector::store();
    for p in peers {
        writer.apply_watcher_event(&watcher::Event::Apply(p.clone()));
    }
    let engine = Engine::new(
        FakeBackends(fake.clone()),
        KubeStatus::new(client.clone()),
        KubeEvents::new(client, Some("test-pod".into())),
        leadership,
        Arc::new(Metrics::default()),
    )
    .with_clock(Arc::new(now));
    Arc::new(Context { engine, store })
}

fn world(size: u32, samples: Vec<ebbflow::core::Sample>) -> Fake {
    let fake = Fake::default();
    {
        let mut w = fake.world();
        w.size = size;
        w.samples = samples;
    }
    fake
}

async fn run(
    sp: ScalePolicy,
    ctx: Arc<Context<FakeBackends>>,
    handle: Handle,
    steps: Vec<Step>,
) -> (Result<Action, ebbflow::controller::reconcile::Error>, Vec<Req>, Handle) {
    let server = tokio::spawn(serve(handle, steps));
    let result = reconcile(Arc::new(sp), ctx).await;
    let (seen, mut handle) =
        tokio::time::timeout(Duration::from_secs(2), server).await.expect("all expected requests").expect("server");
    assert_no_more_requests(&mut handle).await;
    (result, seen, handle)
}

/// A sustained spike leads to: the intent recorded in status under the object's resourceVersion,
/// one absolute resize, the outcome in status (without a precondition) and a ScaledOut Event.
#[tokio::test]
async fn spike_resizes_patches_status_and_publishes_event() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 1.6, 3));
    let sp = policy("shop", "orders", "Enforce", Value::Null);
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let resizes_at_intent = fake.clone();
    let steps: Vec<Step> = vec![
        expect_status_patch(&sp, "101", move |b| {
            assert_eq!(b["metadata"]["resourceVersion"], "100", "intent must carry the precondition");
            let flight = &b["status"]["state"]["inFlight"];
            assert_eq!(flight["from"], 4);
            assert!(flight["to"].as_u64().unwrap_or(0) > 4, "{flight}");
            assert!(resizes_at_intent.world().resizes.is_empty(), "the resize was sent before the intent");
        }),
        expect_status_patch(&sp, "102", |b| {
            assert!(b["metadata"].get("resourceVersion").is_none(), "outcome write must not be fenced again");
            let s = &b["status"];
            assert_eq!(s["lastDecision"]["reason"], "ScaleOutOnSpike", "{s}");
            assert_eq!(s["lastDecision"]["direction"], "Up");
            assert_eq!(s["lastDecision"]["metrics"]["cpu"]["spike"], true);
            assert!(s["state"].get("inFlight").is_none(), "a /scale-style resize finishes at once");
            assert!(s["state"]["lastScaleOutAt"].is_string());
            assert_eq!(s["observedGeneration"], 1);
            assert_eq!(s["target"], "bigtable p1/i1/c1");
            assert_eq!(condition(s, "Ready")["status"], "True");
            assert_eq!(condition(s, "ScalingActive")["reason"], "ScaleOutOnSpike");
            assert!(s["cooldown"]["spikeHoldUntil"].is_string(), "{s}");
        }),
        expect_event("shop", "ScaledOut"),
    ];
    let (result, _, _) = run(sp, ctx, handle, steps).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(Duration::from_secs(60)));
    let w = fake.world();
    assert_eq!(w.resizes.len(), 1, "exactly one resize");
    assert_eq!(w.resizes[0], 8, "4 nodes, capped by the default step of max(4 nodes, 100%)");
}

/// A 409 on the intent write means someone else changed the policy: no resize is sent; the
/// controller re-reads the policy, sees the resize the other writer started, and waits for it.
#[tokio::test]
async fn conflict_on_intent_rereads_and_never_double_resizes() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 1.6, 3));
    fake.world().operations.insert("op-7".into(), ebbflow::adapters::OperationStatus::Running);
    let sp = policy("shop", "orders", "Enforce", Value::Null);
    // What the other writer stored: a resize 4 -> 8 in flight.
    let fresh = {
        let mut f = policy(
            "shop",
            "orders",
            "Enforce",
            json!({"state": {"inFlight": {"from": 4, "to": 8, "startedAt": "2026-11-22T04:59:30Z", "operation": "op-7"},
                             "budgetSince": "2026-11-22T04:59:30Z", "budgetUsed": 1}}),
        );
        f.metadata.resource_version = Some("105".into());
        f
    };
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let fresh_json = serde_json::to_value(&fresh).expect("json");
    let steps: Vec<Step> = vec![
        Box::new(|r: &Req| {
            assert_eq!(r.method, Method::PATCH);
            assert_eq!(r.body["metadata"]["resourceVersion"], "100");
            (409, status_error(409, "Conflict"))
        }),
        Box::new(move |r: &Req| {
            assert_eq!(r.method, Method::GET);
            assert!(r.uri.starts_with("/apis/ebbflow.dev/v1alpha1/namespaces/shop/scalepolicies/orders"), "{}", r.uri);
            (200, fresh_json)
        }),
        expect_status_patch(&fresh, "106", |b| {
            assert_eq!(b["metadata"]["resourceVersion"], "105", "decided from the re-read object");
            let s = &b["status"];
            assert_eq!(s["lastDecision"]["reason"], "ResizeInProgress", "{s}");
            assert_eq!(s["state"]["inFlight"]["operation"], "op-7");
            assert_eq!(s["operation"], "op-7");
            assert_eq!(condition(s, "AbleToScale")["status"], "False");
        }),
    ];
    let (result, _, _) = run(sp, ctx.clone(), handle, steps).await;
    result.expect("reconcile");
    assert!(fake.world().resizes.is_empty(), "no resize may be sent after a 409");
    let m = &ctx.engine.metrics;
    let conflicts = ebbflow::controller::metrics::ApiCodeLabels { backend: "kubernetes".into(), code: "409".into() };
    assert_eq!(m.api_error_codes.get_or_create(&conflicts).get(), 1);
    let busy = ebbflow::controller::metrics::ApiErrorLabels { backend: "kubernetes".into(), kind: "TargetBusy".into() };
    assert_eq!(m.api_errors.get_or_create(&busy).get(), 1);
    let skipped = ebbflow::controller::metrics::ReasonLabels {
        namespace: "shop".into(),
        policy: "orders".into(),
        reason: "StatusConflict".into(),
    };
    assert_eq!(m.skipped.get_or_create(&skipped).get(), 1);
}

/// A controller restarted while a resize operation was running finds it in status, checks the
/// operation instead of resizing again, and starts the cooldown when it is done.
#[tokio::test]
async fn restart_mid_operation_resumes_without_second_resize() {
    let (client, handle) = mock_client();
    let fake = world(8, trace(0.5, 0.5, 0));
    fake.world().operations.insert("op-1".into(), ebbflow::adapters::OperationStatus::Done);
    let sp = policy(
        "shop",
        "orders",
        "Enforce",
        json!({"state": {"inFlight": {"from": 4, "to": 8, "startedAt": "2026-11-22T04:58:00Z", "operation": "op-1"},
                         "budgetSince": "2026-11-22T04:58:00Z", "budgetUsed": 1},
               "operation": "op-1"}),
    );
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let steps: Vec<Step> = vec![expect_status_patch(&sp, "101", |b| {
        assert_eq!(b["metadata"]["resourceVersion"], "100");
        let s = &b["status"];
        assert!(s["state"].get("inFlight").is_none(), "{s}");
        assert!(s.get("operation").is_none(), "{s}");
        assert_eq!(s["state"]["lastScaleOutAt"], "2026-11-22T05:00:00Z", "cooldown starts when the resize finished");
        assert_eq!(s["state"]["resizes"][0]["to"], 8);
        assert_eq!(s["state"]["budgetUsed"], 1, "the finished resize is not counted twice");
        assert_eq!(s["lastDecision"]["to"], 8, "{s}");
    })];
    let (result, _, _) = run(sp, ctx, handle, steps).await;
    result.expect("reconcile");
    assert!(fake.world().resizes.is_empty(), "the resize was already sent before the restart");
}

/// A controller that crashed after recording its intent but before the target answered finds the
/// intent (no operation name) and the target already at that size: it settles it, no resize.
#[tokio::test]
async fn restart_after_intent_settles_by_size() {
    let (client, handle) = mock_client();
    let fake = world(8, trace(0.5, 0.5, 0));
    let sp = policy(
        "shop",
        "orders",
        "Enforce",
        json!({"state": {"inFlight": {"from": 4, "to": 8, "startedAt": "2026-11-22T04:58:00Z"}, "budgetUsed": 1,
                         "budgetSince": "2026-11-22T04:58:00Z"}}),
    );
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let steps: Vec<Step> = vec![expect_status_patch(&sp, "101", |b| {
        assert!(b["status"]["state"].get("inFlight").is_none());
        assert_eq!(b["status"]["currentSize"], 8);
    })];
    let (result, _, _) = run(sp, ctx, handle, steps).await;
    result.expect("reconcile");
    assert!(fake.world().resizes.is_empty());
}

/// A controller that crashed after recording its intent but before sending the resize finds the
/// intent, the target still at the old size and not busy: the resize never happened, so it is
/// dropped from the state (no phantom entry in the resize history, no cooldown) and reported.
#[tokio::test]
async fn restart_after_unsent_intent_drops_it() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 0.5, 0));
    let sp = policy(
        "shop",
        "orders",
        "Enforce",
        json!({"state": {"inFlight": {"from": 4, "to": 8, "startedAt": "2026-11-22T04:58:00Z"}, "budgetUsed": 1,
                         "budgetSince": "2026-11-22T04:58:00Z"}}),
    );
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let steps: Vec<Step> = vec![
        expect_status_patch(&sp, "101", |b| {
            let s = &b["status"];
            assert!(s["state"].get("inFlight").is_none(), "{s}");
            assert!(s["state"].get("resizes").is_none_or(|r| r.as_array().is_none_or(|a| a.is_empty())), "{s}");
            assert!(s["state"].get("lastResizeAt").is_none(), "no cooldown for a resize that never happened");
            assert_eq!(condition(s, "AbleToScale")["reason"], "ResizeFailed");
        }),
        expect_event("shop", "ResizeFailed"),
    ];
    let (result, _, _) = run(sp, ctx, handle, steps).await;
    result.expect("reconcile");
    assert!(fake.world().resizes.is_empty(), "steady load: nothing to resize now");
}

/// A follower sends nothing: no API request, no target call, not even a metric query.
#[tokio::test]
async fn follower_never_writes() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 1.6, 3));
    let sp = policy("shop", "orders", "Enforce", Value::Null);
    let ctx = context(client, &fake, Leadership::manual(false), std::slice::from_ref(&sp));
    let (result, seen, _) = run(sp, ctx, handle, vec![]).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(Duration::from_secs(60)));
    assert!(seen.is_empty());
    let w = fake.world();
    assert_eq!((w.observes, w.fetches, w.resizes.len()), (0, 0, 0));
}

/// Leadership lost between deciding and resizing: the fence stops the resize before anything is
/// written (no intent, no resize, no status).
#[tokio::test]
async fn leadership_lost_mid_tick_sends_nothing() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 1.6, 3));
    let leadership = Leadership::manual(true);
    fake.world().lose_leadership_on_fetch = Some(leadership.clone());
    let sp = policy("shop", "orders", "Enforce", Value::Null);
    let ctx = context(client, &fake, leadership.clone(), std::slice::from_ref(&sp));
    let (result, seen, _) = run(sp, ctx, handle, vec![]).await;
    result.expect("reconcile");
    assert!(!leadership.is_leader());
    assert!(seen.is_empty());
    assert!(fake.world().resizes.is_empty());
}

/// DryRun decides and reports, but never calls the target's resize.
#[tokio::test]
async fn dry_run_never_calls_the_target() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 1.6, 3));
    let sp = policy("shop", "orders", "DryRun", Value::Null);
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let steps: Vec<Step> = vec![
        expect_status_patch(&sp, "101", |b| {
            assert_eq!(b["metadata"]["resourceVersion"], "100");
            let s = &b["status"];
            assert_eq!(s["currentSize"], 4);
            assert_eq!(s["desiredSize"], 8);
            assert!(s["state"].get("inFlight").is_none());
            assert_eq!(condition(s, "AbleToScale")["reason"], "DryRun");
        }),
        expect_event("shop", "DryRunScaleOut"),
    ];
    let (result, _, _) = run(sp, ctx, handle, steps).await;
    result.expect("reconcile");
    assert!(fake.world().resizes.is_empty());
}

/// Metrics that cannot be read hold the size, set ScalingActive=False/MissingData and raise one
/// MetricsUnavailable Event; the same problem on the next tick raises none.
#[tokio::test]
async fn missing_metrics_hold_size_and_warn_once() {
    let (client, handle) = mock_client();
    let fake = world(4, Vec::new());
    fake.world().metrics_fail = true;
    let sp = policy("shop", "orders", "Enforce", Value::Null);
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let steps: Vec<Step> = vec![
        expect_status_patch(&sp, "101", |b| {
            let s = &b["status"];
            assert_eq!(s["desiredSize"], 4);
            assert_eq!(s["lastDecision"]["reason"], "MissingData");
            let c = condition(s, "ScalingActive");
            assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("MissingData")));
        }),
        Box::new(|r: &Req| {
            assert_eq!(r.body["reason"], "MetricsUnavailable");
            assert_eq!(r.body["type"], "Warning");
            assert!(r.body["note"].as_str().unwrap_or("").contains("service unavailable"), "{}", r.body);
            (201, r.body.clone())
        }),
    ];
    let (result, _, handle) = run(sp.clone(), ctx.clone(), handle, steps).await;
    result.expect("reconcile");
    assert!(fake.world().resizes.is_empty());

    // Same problem on the next tick (a spec change forces the evaluation): status only, no Event.
    let mut again = sp.clone();
    again.metadata.generation = Some(2);
    let steps: Vec<Step> = vec![expect_status_patch(&again, "102", |b| {
        assert_eq!(condition(&b["status"], "ScalingActive")["reason"], "MissingData");
    })];
    let (result, _, _) = run(again, ctx, handle, steps).await;
    result.expect("reconcile");
}

/// An invalid spec: Ready=False/InvalidSpec naming every field, an InvalidSpec Event, and no
/// requeue until the spec changes. The target is never read.
#[tokio::test]
async fn invalid_spec_awaits_change() {
    let (client, handle) = mock_client();
    let fake = world(4, Vec::new());
    let mut sp = policy("shop", "orders", "Enforce", Value::Null);
    sp.spec.min_size = 30;
    sp.spec.interval = "5s".into();
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&sp));
    let steps: Vec<Step> = vec![
        expect_status_patch(&sp, "101", |b| {
            let c = condition(&b["status"], "Ready");
            assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("InvalidSpec")));
            let m = c["message"].as_str().unwrap_or("");
            assert!(m.contains("spec.minSize") && m.contains("spec.interval"), "{m}");
        }),
        expect_event("shop", "InvalidSpec"),
    ];
    let (result, _, _) = run(sp, ctx, handle, steps).await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.world().observes, 0);
}

/// Two policies on one target: the younger is refused with a condition naming the older, and the
/// target is not touched.
#[tokio::test]
async fn second_policy_on_a_target_is_refused() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 1.6, 3));
    let first = policy("shop", "orders", "Enforce", Value::Null);
    let mut second = policy("billing", "orders-too", "Enforce", Value::Null);
    second.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-11-10T00:00:00Z".parse().expect("time")));
    let ctx = context(client, &fake, Leadership::manual(true), &[first, second.clone()]);
    let steps: Vec<Step> = vec![
        expect_status_patch(&second, "101", |b| {
            let c = condition(&b["status"], "Ready");
            assert_eq!(c["reason"], "TargetConflict");
            assert!(c["message"].as_str().unwrap_or("").contains("shop/orders"), "{c}");
        }),
        expect_event("billing", "TargetConflict"),
    ];
    let (result, _, _) = run(second, ctx, handle, steps).await;
    result.expect("reconcile");
    let w = fake.world();
    assert_eq!((w.observes, w.resizes.len()), (0, 0));
}

/// A target that cannot be read fails the reconcile (so the error policy backs off), records
/// Ready=False in status and raises a Warning.
#[tokio::test]
async fn target_error_backs_off_and_reports() {
    use ebbflow::controller::cluster::error_policy;
    struct Denied;
    impl ebbflow::adapters::ScaleTarget for Denied {
        async fn observe(&self) -> Result<ebbflow::adapters::TargetObservation, ebbflow::adapters::AdapterError> {
            Err(ebbflow::adapters::AdapterError {
                backend: "bigtable",
                kind: ebbflow::adapters::ErrorKind::PermissionDenied,
                code: Some(403),
                message: "missing bigtable.clusters.update".into(),
            })
        }
        async fn resize(&self, _: u32) -> Result<ebbflow::adapters::ResizeStarted, ebbflow::adapters::AdapterError> {
            unreachable!("never resized")
        }
        async fn operation(
            &self,
            _: &str,
        ) -> Result<ebbflow::adapters::OperationStatus, ebbflow::adapters::AdapterError> {
            unreachable!("no operation")
        }
    }
    struct DeniedBackends(Fake);
    impl ebbflow::controller::Backends for DeniedBackends {
        type Source = Fake;
        type Target = Denied;
        fn source(&self) -> &Fake {
            &self.0
        }
        fn target(&self, _: &str, _: &ebbflow::api::TargetRef) -> Result<Denied, ebbflow::adapters::AdapterError> {
            Ok(Denied)
        }
    }
    let (client, handle) = mock_client();
    let sp = policy("shop", "orders", "Enforce", Value::Null);
    let (store, _writer) = kube::runtime::reflector::store();
    let engine = Engine::new(
        DeniedBackends(Fake::default()),
        KubeStatus::new(client.clone()),
        KubeEvents::new(client, Some("test-pod".into())),
        Leadership::manual(true),
        Arc::new(Metrics::default()),
    )
    .with_clock(Arc::new(now));
    let ctx = Arc::new(Context { engine, store });
    let steps: Vec<Step> = vec![
        expect_status_patch(&sp, "101", |b| {
            let c = condition(&b["status"], "Ready");
            assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("PermissionDenied")));
            assert!(c["message"].as_str().unwrap_or("").contains("bigtable.clusters.update"));
        }),
        expect_event("shop", "PermissionDenied"),
    ];
    let server = tokio::spawn(serve(handle, steps));
    let sp = Arc::new(sp);
    let err = reconcile(sp.clone(), ctx.clone()).await.expect_err("a target error fails the reconcile");
    let (_, mut handle) = server.await.expect("server");
    assert_no_more_requests(&mut handle).await;
    assert_eq!(err.label(), "PermissionDenied");
    let action = error_policy(sp, &err, ctx);
    assert_ne!(action, Action::await_change());
}

/// Policies deleted from the cluster are dropped from the dashboard's view and the metrics.
#[tokio::test]
async fn deleted_policies_are_forgotten() {
    let (client, _handle) = mock_client();
    let fake = world(4, Vec::new());
    let kept = policy("shop", "orders", "Enforce", Value::Null);
    let gone = policy("shop", "old", "Enforce", Value::Null);
    let ctx = context(client, &fake, Leadership::manual(true), std::slice::from_ref(&kept));
    {
        let mut snapshots = ctx.engine.snapshots.write().expect("lock");
        snapshots.insert("shop/orders".into(), Shown::of(kept.clone()));
        snapshots.insert("shop/old".into(), Shown::of(gone.clone()));
    }
    let labels = ebbflow::controller::metrics::PolicyLabels { namespace: "shop".into(), policy: "old".into() };
    ctx.engine.metrics.current_size.get_or_create(&labels).set(3);
    ebbflow::controller::cluster::prune(&ctx);
    let snapshots = ctx.engine.snapshots.read().expect("lock");
    assert_eq!(snapshots.keys().collect::<Vec<_>>(), vec!["shop/orders"]);
    assert_eq!(ctx.engine.metrics.current_size.get_or_create(&labels).get(), 0, "the series was removed");
}

/// The kube-rs `Controller` drives reconcile over the mock API server: it lists the policies,
/// opens a watch (held open here), reconciles the one policy (a spike: intent, resize, outcome,
/// Event) with the Controller's cache as the peer list, and requeues it at its interval.
#[tokio::test]
async fn controller_loop_lists_watches_and_reconciles() {
    use futures::StreamExt;
    use kube::runtime::controller::Controller;
    let (client, mut handle) = mock_client();
    let fake = world(4, trace(0.5, 1.6, 3));
    let sp = policy("shop", "orders", "Enforce", Value::Null);
    let list = json!({"apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicyList",
                      "metadata": {"resourceVersion": "100"}, "items": [serde_json::to_value(&sp).expect("json")]});
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let server = tokio::spawn({
        let seen = seen.clone();
        let object = serde_json::to_value(&sp).expect("json");
        async move {
            let mut held = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let (method, uri) = (request.method().clone(), request.uri().to_string());
                seen.lock().expect("lock").push(format!("{method} {uri}"));
                let (code, body) = if uri.contains("watch=true") {
                    // An open watch that never reports anything.
                    held.push(send);
                    continue;
                } else if method == Method::GET && uri.starts_with("/apis/ebbflow.dev/v1alpha1/scalepolicies") {
                    (200, list.clone())
                } else if method == Method::PATCH && uri.contains("/status") {
                    (200, object.clone())
                } else if method == Method::POST && uri.contains("/events") {
                    (201, json!({}))
                } else {
                    panic!("unexpected request {method} {uri}");
                };
                let response = http::Response::builder()
                    .status(code)
                    .body(kube::client::Body::from(serde_json::to_vec(&body).expect("json")))
                    .expect("response");
                send.send_response(response);
            }
        }
    });

    let api = kube::Api::<ScalePolicy>::all(client.clone());
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let mut ctx = context(client, &fake, Leadership::manual(true), &[]);
    Arc::get_mut(&mut ctx).expect("unique").store = controller.store();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        controller.run(reconcile, ebbflow::controller::cluster::error_policy, ctx).take(1).collect::<Vec<_>>(),
    )
    .await
    .expect("one reconcile");
    let (object, action) = outcome.into_iter().next().expect("an outcome").expect("reconciled");
    assert_eq!(object.name, "orders");
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    assert_eq!(fake.world().resizes, vec![8]);
    let seen = seen.lock().expect("lock").clone();
    assert!(seen[0].starts_with("GET /apis/ebbflow.dev/v1alpha1/scalepolicies?"), "{seen:?}");
    assert_eq!(seen.iter().filter(|r| r.starts_with("PATCH") && r.contains("/status")).count(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|r| r.starts_with("POST") && r.contains("/events")).count(), 1, "{seen:?}");
    server.abort();
}
