//! Two replicas of the controller against one mock API server (HTTP level: lists, gets, status
//! patches with their precondition, Events): only the leader decides and writes; the follower's
//! dashboard shows the leader's status with its day of history; a restarted replica (fresh
//! process state, the same API server) shows the last 24 hours at once and carries them on when
//! it becomes the leader.

use crate::controller_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use controller_support::watch::WatchServer;
use controller_support::*;
use ebbflow::api::ScalePolicy;
use ebbflow::controller::Engine;
use ebbflow::controller::cluster::{Context, KubeStatus, reconcile};
use ebbflow::controller::events::KubeEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::core::{Dur, Sample, Ts};
use ebbflow::readout::day;
use kube::Api;
use kube::runtime::watcher;
use serde_json::{Value, json};

const POLICIES: &str = "/apis/ebbflow.dev/v1alpha1/namespaces/shop/scalepolicies";

/// One replica: its own engine (and so its own in-memory history and published snapshots) and
/// leadership, sharing the API server, the fake Google side and the clock.
fn replica(
    client: &kube::Client,
    fake: &Fake,
    leader: bool,
    clock: &Arc<AtomicI64>,
    sp: &ScalePolicy,
) -> Arc<Context<FakeBackends>> {
    let (store, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&watcher::Event::Apply(sp.clone()));
    let clock = clock.clone();
    let engine = Engine::new(
        FakeBackends(fake.clone()),
        KubeStatus::new(client.clone()),
        KubeEvents::new(client.clone(), Some(format!("pod-{}", if leader { "a" } else { "b" }))),
        Leadership::manual(leader),
        Arc::new(Metrics::default()),
    )
    .with_clock(Arc::new(move || Ts(clock.load(Ordering::SeqCst))));
    Arc::new(Context { engine, store })
}

/// The day a previous leader left in status: 5-minute buckets for the 23 hours before `now`
/// at 4 nodes, and a resize 3 -> 4 at 20 hours ago.
fn previous_day(now: Ts) -> Value {
    let mut h = None;
    for m in (0..23 * 60).step_by(5) {
        let at = now - Dur::mins(23 * 60) + Dur::mins(m);
        let n = if at < now - Dur::mins(20 * 60) { 3 } else { 4 };
        let r = day::Reading { observed: Some(0.45), smoothed: Some(0.45), serving: Some(n), desired: Some(n) };
        h = Some(day::fold(h.as_ref(), at, r));
    }
    let mut h = h.expect("history");
    let at = now - Dur::mins(20 * 60);
    day::resize_started(&mut h, at, 3, 4, "ScaleOut");
    day::resize_finished(&mut h, at, at + Dur::secs(95), None);
    json!({"currentSize": 4, "desiredSize": 4, "history": h})
}

/// Answers a GET on a dashboard: the JSON body.
async fn get(addr: std::net::SocketAddr, path: &str) -> Value {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let (head, body) = out.split_once("\r\n\r\n").expect("response");
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}\n{body}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    })
    .await
    .expect("get")
}

/// Serves `ctx`'s dashboard on a free port.
async fn dashboard(ctx: &Context<FakeBackends>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = ebbflow::dashboard::router(ctx.engine.published());
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// What the API server holds for the policy now, read as a replica's watch would deliver it.
async fn read(api: &Api<ScalePolicy>) -> Arc<ScalePolicy> {
    Arc::new(api.get("orders").await.expect("get the policy"))
}

/// The points of a `/api/policies/{ns}/{name}` answer as (time, desired, reason).
fn points(one: &Value) -> Vec<(String, Value, String)> {
    one["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|p| (p["time"].to_string(), p["desired"].clone(), p["reason"].as_str().unwrap_or_default().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn follower_and_restarted_replica_show_the_leaders_day() {
    let (client, handle) = mock_client();
    let server = WatchServer::start(handle);
    // The dashboards read the wall clock (their timelines keep the last 24 hours of it), so the
    // replay ends just before it.
    let start = Ts((ebbflow::clock::now() - Dur::mins(40)).0 / 60_000 * 60_000);
    let mut object = serde_json::to_value(policy("shop", "orders", "Enforce", Value::Null)).expect("json");
    object["status"] = previous_day(start);
    server.put(POLICIES, object);
    while server.get(POLICIES, "orders").is_none() {
        tokio::task::yield_now().await;
    }
    let api: Api<ScalePolicy> = Api::namespaced(client.clone(), "shop");
    let sp = read(&api).await;

    // The world: 4 nodes; a total load of 2 nodes' worth at the 0.5 target, then a sustained
    // surge to 6.4 for ten minutes. The per-node CPU the metric reports is the load over the
    // nodes there are, so it falls when nodes are added.
    let fake = Fake::default();
    fake.world().size = 4;
    let clock = Arc::new(AtomicI64::new(start.0));
    let load = |minute: i64| if (10..20).contains(&minute) { 3.2 } else { 1.0 };
    {
        let mut w = fake.world();
        w.samples =
            (-30..=0).map(|m| Sample { at: start + Dur::mins(m) - Dur::secs(10), value: load(m) / 4.0 }).collect();
    }

    let leader = replica(&client, &fake, true, &clock, &sp);
    for minute in 1..=30 {
        let at = start + Dur::mins(minute);
        clock.store(at.0, Ordering::SeqCst);
        {
            let mut w = fake.world();
            let per_node = load(minute) / f64::from(w.size.max(1));
            w.samples.push(Sample { at: at - Dur::secs(10), value: per_node });
        }
        reconcile(read(&api).await, leader.clone()).await.expect("leader tick");
    }
    let resizes = fake.world().resizes.clone();
    assert!(!resizes.is_empty(), "the surge should have made the leader resize");
    let size = fake.world().size;
    let stored = server.get(POLICIES, "orders").expect("policy");
    assert_eq!(stored["status"]["desiredSize"], size, "{}", stored["status"]);
    assert!(stored["status"]["history"]["since"].is_string(), "the leader writes its day into status");

    // The follower reads the object as its watch delivers it, and decides nothing.
    let follower = replica(&client, &fake, false, &clock, &sp);
    let writes_before = server.seen().iter().filter(|r| r.starts_with("PATCH")).count();
    let observes_before = fake.world().observes;
    reconcile(read(&api).await, follower.clone()).await.expect("follower");
    assert_eq!(
        server.seen().iter().filter(|r| r.starts_with("PATCH")).count(),
        writes_before,
        "a follower never writes"
    );
    assert_eq!(fake.world().observes, observes_before, "a follower never reads the target");
    assert!(follower.engine.history.points("shop/orders").is_empty(), "the follower has no history of its own");

    let (lead_at, follow_at) = (dashboard(&leader).await, dashboard(&follower).await);
    let (lead, follow) = (get(lead_at, "/api/policies").await, get(follow_at, "/api/policies").await);
    let card = |v: &Value| v["policies"].as_array().expect("policies").first().cloned().expect("one card");
    let (lc, fc) = (card(&lead), card(&follow));
    assert_eq!(fc["desired"], size, "the follower shows the leader's desired size: {fc}");
    assert_eq!((fc["desired"].clone(), fc["current"].clone()), (lc["desired"].clone(), lc["current"].clone()));
    assert_eq!(fc["lastActed"], lc["lastActed"], "the same last resize");

    let path = "/api/policies/shop/orders";
    let (lone, fone) = (get(lead_at, path).await, get(follow_at, path).await);
    let fpts = points(&fone);
    assert!(!fpts.is_empty(), "the follower shows no history (only its own, empty, memory?): {fone}");
    // The whole day, from the previous leader's buckets to this leader's resize.
    let first = Ts::parse_rfc3339(fone["history"][0]["time"].as_str().expect("time")).expect("time");
    assert!(first <= start - Dur::mins(22 * 60), "the follower's chart starts {first}, not a day back");
    assert!(fpts.iter().any(|p| p.2 == "ScaleOut" && p.1 == 4), "the previous leader's resize 3 -> 4: {fpts:?}");
    assert!(
        fpts.iter().any(|p| p.1 == size && p.2.starts_with("ScaleOut")),
        "this leader's resize to {size} is in the follower's history: {fpts:?}"
    );
    assert_eq!(fpts.last().map(|p| p.1.clone()), Some(size.into()));
    // Where the leader's chart is made of the same buckets, it is the same chart.
    let lpts = points(&lone);
    let shared: Vec<_> = fpts.iter().filter(|p| lpts.contains(p)).collect();
    assert!(shared.len() * 10 >= fpts.len() * 9, "{} of {} points shared", shared.len(), fpts.len());
    let events = "/api/policies/shop/orders/events";
    let (le, fe) = (get(lead_at, events).await, get(follow_at, events).await);
    assert!(fe["events"].as_array().is_some_and(|e| e.iter().filter(|e| e["kind"] == "Resize").count() >= 2), "{fe}");
    assert_eq!(le["events"], fe["events"], "the same timeline on both replicas");

    // A restart: fresh process state, the same API server. The day is there at once.
    let restarted = replica(&client, &fake, false, &clock, &sp);
    reconcile(read(&api).await, restarted.clone()).await.expect("restarted replica");
    let rone = get(dashboard(&restarted).await, path).await;
    assert_eq!(points(&rone), fpts, "the restarted replica shows the same day as the follower");

    // It wins the lease and decides on: the day in status goes on from where it was.
    restarted.engine.leadership.set(true);
    let at = start + Dur::mins(31);
    clock.store(at.0, Ordering::SeqCst);
    {
        let mut w = fake.world();
        let per_node = load(31) / f64::from(w.size.max(1));
        w.samples.push(Sample { at: at - Dur::secs(10), value: per_node });
    }
    reconcile(read(&api).await, restarted.clone()).await.expect("new leader tick");
    let after = get(dashboard(&restarted).await, path).await;
    let apts = points(&after);
    assert!(apts.iter().any(|p| p.2 == "ScaleOut" && p.1 == 4), "the older resize survived the new leader's write");
    let first_after = Ts::parse_rfc3339(after["history"][0]["time"].as_str().expect("time")).expect("time");
    assert!(first_after <= start - Dur::mins(22 * 60), "{first_after}");
}
