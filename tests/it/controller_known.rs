//! Overrides and pauses through the controller, against the mock Kubernetes API server: an
//! override raises the minimum, then expires mid-run (Events and conditions at both ends); a
//! pause holds only its own direction.

use crate::controller_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use controller_support::*;
use ebbflow::api::ScalePolicy;
use ebbflow::controller::Engine;
use ebbflow::controller::cluster::{Context, KubeStatus, reconcile};
use ebbflow::controller::events::KubeEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::core::Ts;
use serde_json::{Value, json};

/// A controller whose clock the test moves.
fn context(client: kube::Client, fake: &Fake, sp: &ScalePolicy, clock: Arc<AtomicI64>) -> Arc<Context<FakeBackends>> {
    let (store, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(sp.clone()));
    let engine = Engine::new(
        FakeBackends(fake.clone()),
        KubeStatus::new(client.clone()),
        KubeEvents::new(client, Some("test-pod".into())),
        Leadership::manual(true),
        Arc::new(Metrics::default()),
    )
    .with_clock(Arc::new(move || Ts(clock.load(Ordering::SeqCst))));
    Arc::new(Context { engine, store })
}

fn with_overrides(mut sp: ScalePolicy, overrides: Value) -> ScalePolicy {
    let mut v = serde_json::to_value(&sp).expect("json");
    v["spec"]["overrides"] = overrides;
    sp = serde_json::from_value(v).expect("policy with overrides");
    sp
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

async fn reconcile_once(
    sp: &ScalePolicy,
    ctx: Arc<Context<FakeBackends>>,
    handle: Handle,
    steps: Vec<Step>,
) -> (Vec<Req>, Handle) {
    let server = tokio::spawn(serve(handle, steps));
    reconcile(Arc::new(sp.clone()), ctx).await.expect("reconcile");
    let (seen, mut handle) =
        tokio::time::timeout(Duration::from_secs(2), server).await.expect("all expected requests").expect("server");
    assert_no_more_requests(&mut handle).await;
    (seen, handle)
}

/// An override raises the minimum to 10 for 90 seconds: the first tick scales 4 -> 10 with the
/// reason OverrideMinimum and announces the override; two minutes later it has expired, the
/// status says so, an OverrideExpired Event is published, and the size is not pinned any more.
#[tokio::test]
async fn an_override_raises_the_minimum_then_expires_mid_run() {
    let (client, handle) = mock_client();
    let fake = world(4, trace(0.5, 0.5, 0));
    let until = Ts(now().0 + 90_000).to_rfc3339();
    let sp = with_overrides(
        policy("shop", "orders", "Enforce", Value::Null),
        json!([{"name": "campaign", "owner": "alice", "reason": "Christmas campaign", "until": until, "minSize": 10}]),
    );
    let clock = Arc::new(AtomicI64::new(now().0));
    let ctx = context(client, &fake, &sp, clock.clone());
    let written = Arc::new(std::sync::Mutex::new(Value::Null));
    let keep = written.clone();
    let until_check = until.clone();
    let steps: Vec<Step> = vec![
        expect_status_patch(&sp, "101", |b| assert_eq!(b["status"]["state"]["inFlight"]["to"], 10)),
        expect_status_patch(&sp, "102", move |b| {
            let s = &b["status"];
            assert_eq!(s["lastDecision"]["reason"], "OverrideMinimum", "{s}");
            assert_eq!(s["lastDecision"]["to"], 10);
            assert_eq!(s["active"][0]["name"], "campaign");
            assert_eq!(s["active"][0]["effect"], "min 10");
            assert_eq!(s["active"][0]["until"], until_check.as_str());
            assert!(s["activeSummary"].as_str().is_some_and(|t| t.contains("campaign")), "{s}");
            let c = condition(s, "KnownEvents");
            assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("True"), Some("OverrideActive")));
            *keep.lock().expect("lock") = s.clone();
        }),
        expect_event("shop", "ScaledOut"),
        expect_event("shop", "OverrideStarted"),
    ];
    let (_, handle) = reconcile_once(&sp, ctx.clone(), handle, steps).await;
    assert_eq!(fake.world().resizes, vec![10]);

    // Two minutes on: the override has expired. The policy as the watch would deliver it now.
    clock.store(now().0 + 120_000, Ordering::SeqCst);
    let mut next = sp.clone();
    next.status = Some(serde_json::from_value(written.lock().expect("lock").clone()).expect("status"));
    next.metadata.resource_version = Some("102".into());
    let steps: Vec<Step> = vec![
        expect_status_patch(&next, "103", |b| {
            let s = &b["status"];
            assert!(s.get("active").is_none() && s.get("activeSummary").is_none(), "expired: {s}");
            let c = condition(s, "KnownEvents");
            assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("NoneActive")));
            // Load that needs 4 nodes on 10: scale-in now waits only for its usual timers.
            assert_ne!(s["lastDecision"]["reason"], "OverrideMinimum", "{s}");
            assert_ne!(s["lastDecision"]["reason"], "AtMinSize", "{s}");
        }),
        expect_event("shop", "OverrideExpired"),
    ];
    reconcile_once(&next, ctx, handle, steps).await;
    assert_eq!(fake.world().resizes, vec![10], "no resize on expiry itself");
}

/// A scale-out pause holds a spike's scale-out (reason ScaleOutPaused, nothing sent); a scale-in
/// pause lets the same spike through.
#[tokio::test]
async fn a_pause_blocks_only_its_direction() {
    let until = Ts(now().0 + 3_600_000).to_rfc3339();
    for (pause, resized) in [("scaleOut", false), ("scaleIn", true)] {
        let (client, handle) = mock_client();
        let fake = world(4, trace(0.5, 1.6, 3));
        let sp = with_overrides(
            policy("shop", "orders", "Enforce", Value::Null),
            json!([{"name": "hold", "owner": "bob", "reason": "incident 42", "until": until, "pause": pause}]),
        );
        let ctx = context(client, &fake, &sp, Arc::new(AtomicI64::new(now().0)));
        let steps: Vec<Step> = if resized {
            vec![
                expect_status_patch(&sp, "101", |_| {}),
                expect_status_patch(&sp, "102", |b| {
                    assert_eq!(b["status"]["lastDecision"]["reason"], "ScaleOutOnSpike")
                }),
                expect_event("shop", "ScaledOut"),
                expect_event("shop", "OverrideStarted"),
            ]
        } else {
            vec![
                expect_status_patch(&sp, "101", |b| {
                    let d = &b["status"]["lastDecision"];
                    assert_eq!(d["reason"], "ScaleOutPaused", "{d}");
                    assert!(d["message"].as_str().is_some_and(|m| m.contains("paused by an override")), "{d}");
                    assert_eq!(b["status"]["active"][0]["effect"], "pause scale-out");
                }),
                expect_event("shop", "OverrideStarted"),
            ]
        };
        reconcile_once(&sp, ctx, handle, steps).await;
        assert_eq!(fake.world().resizes.len(), usize::from(resized), "pause {pause}");
    }
}
