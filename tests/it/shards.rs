//! Shards across replicas (`ebbflow run --shards N`, issue 26) against the HTTP-level mock API
//! server, which creates Leases (409 when the name is taken), lists them by label and applies
//! merge patches under a resourceVersion precondition (409 when stale), as the API server does.
//! Time is each replica's clock, which the test moves: a Lease expires when its renewal is older
//! than its duration on the reader's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ebbflow::controller::leader::Leadership;
use ebbflow::controller::shards::{Held, ShardLeases, shard_of_key};
use ebbflow::core::{Dur, Ts};

use crate::controller_support::mock_client;
use crate::controller_support::watch::WatchServer;

const NS: &str = "ebbflow-system";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ebbflow-system/leases";
const SHARDS: u32 = 8;

struct Fleet {
    api: WatchServer,
    kube: kube::Client,
    now: Arc<AtomicI64>,
}

impl Fleet {
    fn new() -> Fleet {
        let (kube, handle) = mock_client();
        Fleet { api: WatchServer::start(handle), kube, now: Arc::new(AtomicI64::new(1_800_000_000_000)) }
    }

    fn replica(&self, identity: &str) -> (ShardLeases, tokio::sync::watch::Receiver<Held>) {
        let now = self.now.clone();
        ShardLeases::new(self.kube.clone(), NS, identity, SHARDS, Arc::new(move || Ts(now.load(Ordering::SeqCst))))
    }

    fn advance(&self, d: Dur) {
        self.now.fetch_add(d.0, Ordering::SeqCst);
    }

    /// Each shard's holder as the Leases say.
    fn holders(&self) -> Vec<String> {
        (0..SHARDS)
            .map(|i| {
                self.api
                    .get(LEASES, &format!("ebbflow-shard-{i}"))
                    .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect()
    }
}

fn disjoint(a: Held, b: Held) -> bool {
    a.mask & b.mask == 0
}

/// One replica takes every shard; a second one appears and the first gives shards back one a
/// step until each holds four, and no shard is ever held by both; the first dies and the second
/// takes its shards once their Leases expire; a replica that stops releases its Leases, so the
/// next takes them at once.
#[tokio::test]
async fn replicas_share_the_shards_evenly_and_take_over_those_of_one_that_died() {
    let f = Fleet::new();
    let (a, _) = f.replica("pod-a");
    let alone = a.step().await.expect("step");
    assert_eq!(alone.len(), SHARDS, "alone, it holds every shard");
    assert!(f.holders().iter().all(|h| h == "pod-a"));

    let (b, _) = f.replica("pod-b");
    let mut held_b = b.step().await.expect("step");
    assert!(held_b.is_empty(), "a newcomer takes nothing that is held: {held_b:?}");
    let mut steps = 0;
    let mut held_a = alone;
    let mut moves = Vec::new();
    while held_a.len() != 4 || held_b.len() != 4 {
        f.advance(Dur::secs(5));
        let before = held_a.len();
        held_a = a.step().await.expect("step");
        assert!(before - held_a.len() <= 1, "one shard given back a step, not a storm");
        held_b = b.step().await.expect("step");
        assert!(disjoint(held_a, held_b), "no shard held by both: {held_a:?} {held_b:?}");
        moves.push((held_a.len(), held_b.len()));
        steps += 1;
        assert!(steps <= 8, "rebalanced within 8 steps: {moves:?}");
    }
    let holders = f.holders();
    assert_eq!(holders.iter().filter(|h| *h == "pod-a").count(), 4, "{holders:?}");
    assert_eq!(holders.iter().filter(|h| *h == "pod-b").count(), 4, "{holders:?}");

    // pod-a dies: nothing renews its Leases. Within their 15 s they are still its.
    f.advance(Dur::secs(10));
    assert_eq!(b.step().await.expect("step").len(), 4, "a's Leases have not expired yet");
    f.advance(Dur::secs(6));
    let all = b.step().await.expect("step");
    assert_eq!(all.len(), SHARDS, "a's shards taken once its Leases expired");
    // Long after, pod-a's presence Lease is deleted (every rollout would leave one otherwise).
    assert!(f.api.get(LEASES, "ebbflow-replica-pod-a").is_some());
    f.advance(Dur::mins(11));
    b.step().await.expect("step");
    assert!(f.api.get(LEASES, "ebbflow-replica-pod-a").is_none(), "a's presence Lease deleted");
    assert!(f.api.get(LEASES, "ebbflow-replica-pod-b").is_some(), "b's own kept");

    // pod-a comes back late and releases what it once held: it writes no holder into Leases
    // that are pod-b's now.
    a.release().await;
    assert!(f.holders().iter().all(|h| h == "pod-b"), "a late release wipes no one's claim: {:?}", f.holders());
    // pod-b stops gracefully: its Leases are given up, and pod-c takes them without waiting.
    b.release().await;
    assert!(f.holders().iter().all(String::is_empty), "{:?}", f.holders());
    let (c, rx) = f.replica("pod-c");
    assert_eq!(c.step().await.expect("step").len(), SHARDS);
    assert_eq!(rx.borrow().len(), SHARDS, "the held set is published");
}

/// A replica evaluates only the policies of the shards it holds, and a label pins a policy to a
/// shard; ownership follows the published set at once (the fence reads it before a resize).
#[tokio::test]
async fn a_replica_owns_only_the_policies_of_its_shards() {
    let policy = |name: &str, pin: Option<&str>| -> ebbflow::api::ScalePolicy {
        let mut v = serde_json::json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": name, "namespace": "data"},
            "spec": {"target": {"bigtableCluster": {"project": "p", "instance": "i", "cluster": name}},
                     "minSize": 1, "maxSize": 9, "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}]}});
        if let Some(p) = pin {
            v["metadata"]["labels"] = serde_json::json!({"ebbflow.dev/shard": p});
        }
        serde_json::from_value(v).expect("policy")
    };
    let (tx, rx) = tokio::sync::watch::channel(Held { count: SHARDS, mask: 0, until: None });
    let leadership = Leadership::sharded(rx, Arc::new(|| Ts(0)));
    let orders = policy("orders", None);
    let shard = shard_of_key("data/orders", None, SHARDS);
    assert!(!leadership.owns(&orders));
    tx.send_replace(Held { count: SHARDS, mask: 1 << shard, until: None });
    assert!(leadership.owns(&orders));
    let pinned = policy("orders", Some(&((shard + 1) % SHARDS).to_string()));
    assert!(!leadership.owns(&pinned), "the label moves it to another shard");
    tx.send_replace(Held { count: SHARDS, mask: 0, until: None });
    assert!(!leadership.owns(&orders), "lost at once");
}

/// A replica cut off from the API server while it keeps running: its renewals fail (or hang),
/// and it stops acting on its shards before their Leases expire for the others, so no two
/// replicas act on one shard; once the others take them, it holds nothing when it comes back.
#[tokio::test]
async fn a_replica_cut_off_stops_acting_before_another_may_take_its_shards() {
    let f = Fleet::new();
    let (a, rx) = f.replica("pod-a");
    let clock = {
        let now = f.now.clone();
        Arc::new(move || Ts(now.load(Ordering::SeqCst))) as ebbflow::clock::Clock
    };
    let leadership = Leadership::sharded(rx, clock);
    let policy: ebbflow::api::ScalePolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": "orders", "namespace": "data"},
        "spec": {"target": {"bigtableCluster": {"project": "p", "instance": "i", "cluster": "c"}},
                 "minSize": 1, "maxSize": 9, "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}]}}))
    .expect("policy");
    assert_eq!(a.step().await.expect("step").len(), SHARDS);
    assert!(leadership.owns(&policy));

    // Renewals hang (no step completes): acting stops by the bound, before the Leases expire.
    f.advance(Dur::secs(6));
    assert!(leadership.owns(&policy), "a step late is no reason to stop");
    f.advance(Dur::secs(5));
    assert!(!leadership.owns(&policy), "stopped 10 s after its last renewal, 5 s before expiry");
    let (b, _) = f.replica("pod-b");
    assert!(b.step().await.expect("step").is_empty(), "and the others cannot take them yet");

    // Renewals fail: the step reports it and nothing is held from then on.
    f.api.refuse(LEASES, 503);
    assert!(a.step().await.is_err());
    f.advance(Dur::secs(10));
    assert!(!leadership.owns(&policy));
}

/// The failure drills through the controller itself: three replicas (each its own engine, as
/// each pod runs one) over one mock API server and one fake target, 1,000 policies in 8 shards
/// (`cargo bench --bench replicas` runs 10,000 in processes of their own). Every interval each replica reconciles every policy, as its Controller would. Counted at each
/// replica's fake target: every policy is evaluated by exactly one replica per interval, the one
/// whose Leases hold its shard, before and after one replica dies (its Leases stop renewing, its
/// shards are taken, and it writes nothing) and while a fourth joins (rebalanced to within one of
/// even); every status names the replica and the shard.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_evaluate_every_policy_exactly_once_through_a_death_and_a_join() {
    use crate::controller_support::{Fake, FakeBackends, policy};
    use ebbflow::controller::Engine;
    use ebbflow::controller::cluster::{Context, KubeStatus, reconcile};
    use ebbflow::controller::events::KubeEvents;
    use ebbflow::controller::metrics::Metrics;
    use ebbflow::core::Sample;
    use kube::runtime::watcher;

    const POLICIES: &str = "/apis/ebbflow.dev/v1alpha1/namespaces/shop/scalepolicies";
    const COUNT: usize = 1000;
    let f = Fleet::new();
    let start = Ts(f.now.load(Ordering::SeqCst));
    for i in 0..COUNT {
        // Each its own cluster: policies on one target would be held back as conflicting.
        let mut p =
            serde_json::to_value(policy("shop", &format!("p{i}"), "Enforce", serde_json::Value::Null)).expect("json");
        p["spec"]["target"]["bigtableCluster"]["cluster"] = format!("c{i}").into();
        f.api.put(POLICIES, p);
    }
    while f.api.get(POLICIES, &format!("p{}", COUNT - 1)).is_none() {
        tokio::task::yield_now().await;
    }
    let api: kube::Api<ebbflow::api::ScalePolicy> = kube::Api::namespaced(f.kube.clone(), "shop");
    // One fake target world per replica (same size, same samples), so each replica's
    // evaluations are counted on their own. Load within tolerance: no resize, and every
    // evaluation is one observation of the target.
    let world = || {
        let fake = Fake::default();
        fake.world().size = 4;
        fake.world().samples =
            (-30..=600).map(|m| Sample { at: start + Dur::mins(m) - Dur::secs(10), value: 0.48 }).collect();
        fake
    };

    let clock = {
        let now = f.now.clone();
        Arc::new(move || Ts(now.load(Ordering::SeqCst))) as ebbflow::clock::Clock
    };
    let mut replicas = Vec::new();
    // pod-d joins later: until then it is not running (no step, and it holds nothing).
    for name in ["pod-a", "pod-b", "pod-c", "pod-d"] {
        let (leases, rx) = f.replica(name);
        let (store, mut writer) = kube::runtime::reflector::store();
        for p in api.list(&Default::default()).await.expect("list").items {
            writer.apply_watcher_event(&watcher::Event::Apply(p));
        }
        let fake = world();
        let engine = Engine::new(
            FakeBackends(fake.clone()),
            KubeStatus::new(f.kube.clone()),
            KubeEvents::new(f.kube.clone(), Some(name.to_string())),
            Leadership::sharded(rx, clock.clone()),
            Arc::new(Metrics::default()),
        )
        .with_clock(clock.clone())
        .with_identity(name);
        replicas.push((leases, Arc::new(Context { engine, store }), name != "pod-d", fake, name));
    }
    type Replica = (ShardLeases, Arc<Context<FakeBackends>>, bool, Fake, &'static str);
    /// One interval: every live replica steps its Leases every 5 s, then each reconciles every
    /// policy (as its Controller would). Per replica: the policies it evaluated, and the ones
    /// the Leases say are its (the shard of each policy's name, and each shard's holder).
    async fn interval(
        f: &Fleet,
        api: &kube::Api<ebbflow::api::ScalePolicy>,
        replicas: &[Replica],
    ) -> Vec<(usize, usize)> {
        for _ in 0..12 {
            f.advance(Dur::secs(5));
            for (leases, _, alive, _, _) in replicas {
                if *alive {
                    leases.step().await.expect("step");
                }
            }
        }
        let holders = f.holders();
        let mut out = Vec::new();
        // Each replica's Controller reconciles every policy of its cache: here the policies as
        // they are at the interval's start (a replica's own statuses come back through the
        // watch before it evaluates them again).
        let policies: Vec<Arc<ebbflow::api::ScalePolicy>> =
            api.list(&Default::default()).await.expect("list").items.into_iter().map(Arc::new).collect();
        for (_, ctx, _, fake, name) in replicas {
            let before = fake.world().observes;
            for p in &policies {
                reconcile(p.clone(), ctx.clone()).await.expect("reconcile");
            }
            let theirs = (0..COUNT)
                .filter(|i| holders[shard_of_key(&format!("shop/p{i}"), None, SHARDS) as usize] == *name)
                .count();
            out.push(((fake.world().observes - before) as usize, theirs));
        }
        out
    }

    for round in 0..2 {
        let counts = interval(&f, &api, &replicas).await;
        for (evaluated, theirs) in &counts {
            assert_eq!(evaluated, theirs, "round {round}: each replica evaluates its shards' policies: {counts:?}");
        }
        assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), COUNT, "every policy has an owner: {counts:?}");
        assert!(counts[..3].iter().all(|c| c.0 > 0), "all three replicas work: {counts:?}");
    }
    // Any replica's readout says who evaluates each policy: the status names it and the shard.
    let holders = f.holders();
    for i in 0..COUNT {
        let status = &f.api.get(POLICIES, &format!("p{i}")).expect("policy")["status"];
        let shard = shard_of_key(&format!("shop/p{i}"), None, SHARDS);
        assert_eq!(status["shard"], shard, "p{i}");
        assert_eq!(status["evaluatedBy"], holders[shard as usize].as_str(), "p{i}");
    }
    // pod-c dies: its Leases stop renewing; it is not stepped again, but its engine still runs.
    replicas[2].2 = false;
    for round in 0..2 {
        let counts = interval(&f, &api, &replicas).await;
        assert_eq!(counts[2], (0, 0), "after the death, round {round}: the dead replica acts on nothing");
        for (evaluated, theirs) in &counts {
            assert_eq!(evaluated, theirs, "round {round}: {counts:?}");
        }
        assert_eq!(counts[0].1 + counts[1].1, COUNT, "its shards were taken: {counts:?}");
    }
    // pod-d joins: the shards rebalance to within one of even (8 over 3: 3, 3, 2), one shard
    // given back a step, and every policy is evaluated once in every interval meanwhile.
    replicas[3].2 = true;
    for round in 0..2 {
        let counts = interval(&f, &api, &replicas).await;
        for (evaluated, theirs) in &counts {
            assert_eq!(evaluated, theirs, "joining, round {round}: {counts:?}");
        }
        assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), COUNT, "{counts:?}");
    }
    let held: Vec<u32> = replicas.iter().map(|r| r.1.engine.leadership.held().map_or(0, |h| h.len())).collect();
    assert_eq!(held.iter().sum::<u32>(), SHARDS, "{held:?}");
    assert_eq!(held[2], 0);
    assert!([held[0], held[1], held[3]].iter().all(|n| (2..=3).contains(n)), "within one of even: {held:?}");
    for (_, _, _, fake, _) in &replicas {
        assert!(fake.world().resizes.is_empty(), "load within tolerance: no resize to double");
    }
}
