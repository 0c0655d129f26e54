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
