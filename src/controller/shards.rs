//! Sharding the policies across replicas with one Lease per shard (`ebbflow run --shards N`,
//! N > 1). A policy belongs to shard `fnv1a(namespace/name) mod N`, or to the shard its label
//! `ebbflow.dev/shard` names. Each replica holds a fair share of the shards, `ceil(N / live
//! replicas)`, and evaluates only their policies.
//!
//! Every [`STEP`] a replica ([`ShardLeases::step`]):
//! 1. renews its presence Lease (`ebbflow-replica-<identity>`), so the others count it;
//! 2. counts the live replicas: presence Leases renewed within their duration;
//! 3. renews the shard Leases it holds (a merge patch fenced by the Lease's resourceVersion; one
//!    that changed under it is lost, not fought over);
//! 4. gives back one shard if it holds more than its share (a new replica appeared), so the fleet
//!    rebalances one shard at a time instead of in a storm;
//! 5. takes free shards up to its share: one whose Lease is missing, released, or expired.
//!
//! Kubernetes is the engine: Leases for ownership, the API server for state. A shard's policies
//! are evaluated only while its Lease is held, ownership is checked again right before a resize,
//! and the status write's resourceVersion precondition stays the last line of defence against
//! two replicas that both believe they hold a shard for a moment.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

use crate::api::ScalePolicy;
use crate::clock::Clock;
use crate::core::{Dur, Ts};

/// A label on every Lease this module writes, naming its kind (`shard` or `replica`).
pub const LEASE_LABEL: &str = "ebbflow.dev/lease";
/// A label on a policy that pins it to a shard (a number below the shard count).
pub const SHARD_LABEL: &str = "ebbflow.dev/shard";
/// How long a Lease holds without renewal.
pub const LEASE_DURATION: Dur = Dur(15_000);
/// How often a replica steps (renews, rebalances): a third of the duration.
pub const STEP: Dur = Dur(5_000);
/// Most shards (held as a bit set).
pub const MAX_SHARDS: u32 = 64;
/// A replica's presence Lease not renewed for this many durations is deleted.
const STALE_DURATIONS: i64 = 40;

/// The shards a replica holds, out of how many, and until when it may act on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Number of shards.
    pub count: u32,
    /// Bit `i` set: shard `i` is held.
    pub mask: u64,
    /// Acting on them stops at this time unless a later step renews them: the renewal plus the
    /// Lease duration less one step, so a replica cut off from the API server (its renewals
    /// failing or hanging) stops before any other may take its shards. `None`: no bound.
    pub until: Option<Ts>,
}

impl Held {
    /// Whether shard `i` is held.
    pub fn holds(&self, i: u32) -> bool {
        i < self.count.min(MAX_SHARDS) && self.mask & (1 << i) != 0
    }

    /// How many shards are held.
    pub fn len(&self) -> u32 {
        self.mask.count_ones()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.mask == 0
    }
}

/// FNV-1a, 64-bit: stable across builds and platforms (a policy must not change shard when
/// the binary does), and cheap.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The shard of `namespace/name` out of `count`, unless `pin` (the policy's label) names one.
pub fn shard_of_key(key: &str, pin: Option<&str>, count: u32) -> u32 {
    let count = count.clamp(1, MAX_SHARDS);
    match pin.and_then(|p| p.trim().parse::<u32>().ok()).filter(|p| *p < count) {
        Some(p) => p,
        None => u32::try_from(fnv1a(key.as_bytes()) % u64::from(count)).unwrap_or(0),
    }
}

/// The shard of a policy out of `count` (see [`shard_of_key`]).
pub fn shard_of(sp: &ScalePolicy, count: u32) -> u32 {
    let key = format!("{}/{}", sp.namespace().unwrap_or_else(|| "default".into()), sp.name_any());
    shard_of_key(&key, sp.labels().get(SHARD_LABEL).map(String::as_str), count)
}

/// One Lease as this module reads it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    holder: String,
    renewed: Option<Ts>,
    duration: Dur,
    resource_version: Option<String>,
}

impl Seen {
    fn of(l: &Lease) -> Seen {
        let spec = l.spec.as_ref();
        Seen {
            holder: spec.and_then(|s| s.holder_identity.clone()).unwrap_or_default(),
            renewed: spec.and_then(|s| s.renew_time.as_ref()).map(|t| Ts(t.0.as_millisecond())),
            duration: spec
                .and_then(|s| s.lease_duration_seconds)
                .map_or(LEASE_DURATION, |s| Dur(i64::from(s.max(1)) * 1000)),
            resource_version: l.metadata.resource_version.clone(),
        }
    }

    /// Held by someone at `now`: a holder, renewed within its duration.
    fn live(&self, now: Ts) -> bool {
        !self.holder.is_empty() && self.renewed.is_some_and(|r| now < r + self.duration)
    }
}

fn shard_lease(i: u32) -> String {
    format!("ebbflow-shard-{i}")
}

fn replica_lease(identity: &str) -> String {
    format!("ebbflow-replica-{identity}")
}

/// The shard Leases of one replica.
pub struct ShardLeases {
    api: Api<Lease>,
    identity: String,
    count: u32,
    clock: Clock,
    tx: watch::Sender<Held>,
}

impl ShardLeases {
    /// Compete for `count` shards in `namespace` as `identity` (the pod name), reading time from
    /// `clock`; the receiver follows what is held.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        identity: &str,
        count: u32,
        clock: Clock,
    ) -> (ShardLeases, watch::Receiver<Held>) {
        let count = count.clamp(1, MAX_SHARDS);
        let (tx, rx) = watch::channel(Held { count, mask: 0, until: None });
        let leases =
            ShardLeases { api: Api::namespaced(client, namespace), identity: identity.to_string(), count, clock, tx };
        (leases, rx)
    }

    fn body(&self, kind: &str, name: &str, holder: &str, now: Ts) -> serde_json::Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": name, "labels": { LEASE_LABEL: kind, "app.kubernetes.io/name": "ebbflow" } },
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": LEASE_DURATION.0 / 1000,
                "renewTime": micro(now),
                "acquireTime": micro(now),
            },
        })
    }

    /// Write `holder` into Lease `name` if it is still at `rv` (`None`: create it). Whether it
    /// took; a conflict (someone else wrote first) is not an error.
    async fn claim(
        &self,
        kind: &str,
        name: &str,
        rv: Option<&str>,
        holder: &str,
        now: Ts,
    ) -> Result<bool, kube::Error> {
        let result = match rv {
            None => {
                let lease: Lease =
                    serde_json::from_value(self.body(kind, name, holder, now)).map_err(kube::Error::SerdeError)?;
                self.api.create(&PostParams::default(), &lease).await.map(drop)
            }
            Some(rv) => {
                let mut patch = self.body(kind, name, holder, now);
                patch["metadata"]["resourceVersion"] = json!(rv);
                self.api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(drop)
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One step (see the module docs): what this replica holds afterwards, also published.
    pub async fn step(&self) -> Result<Held, kube::Error> {
        let now = (self.clock)();
        let listed = self.api.list(&ListParams::default().labels(LEASE_LABEL)).await?.items;
        let by_name: BTreeMap<String, Seen> = listed.iter().map(|l| (l.name_any(), Seen::of(l))).collect();
        let me = replica_lease(&self.identity);
        let mine = by_name.get(&me);
        self.claim("replica", &me, mine.and_then(|s| s.resource_version.as_deref()), &self.identity, now).await?;
        let others = listed
            .iter()
            .filter(|l| l.labels().get(LEASE_LABEL).is_some_and(|k| k == "replica") && l.name_any() != me)
            .filter(|l| Seen::of(l).live(now))
            .count();
        let live = u32::try_from(others + 1).unwrap_or(u32::MAX);
        // Presence Leases of pods long gone (each pod has its own name): deleted, or they would
        // pile up with every rollout. A conflict or a 404 means another replica did it.
        for l in listed.iter().filter(|l| l.labels().get(LEASE_LABEL).is_some_and(|k| k == "replica")) {
            let seen = Seen::of(l);
            let gone = seen.renewed.is_none_or(|r| now > r + Dur(seen.duration.0 * STALE_DURATIONS));
            if gone && l.name_any() != me {
                // Under the resourceVersion it was read at: a replica that came back and renewed
                // it meanwhile keeps it (409).
                let dp = kube::api::DeleteParams {
                    preconditions: Some(kube::api::Preconditions {
                        resource_version: seen.resource_version.clone(),
                        uid: None,
                    }),
                    ..Default::default()
                };
                match self.api.delete(&l.name_any(), &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => {
                        tracing::warn!(lease = %l.name_any(), error = %e, "could not delete a gone replica's Lease")
                    }
                }
            }
        }
        let fair = self.count.div_ceil(live);

        // Counted from before the first request: a renewal that succeeds took effect after it.
        let mut held = Held { count: self.count, mask: 0, until: Some(now + LEASE_DURATION - STEP) };
        for i in 0..self.count {
            let name = shard_lease(i);
            if let Some(s) = by_name.get(&name).filter(|s| s.holder == self.identity && s.live(now))
                && self.claim("shard", &name, s.resource_version.as_deref(), &self.identity, now).await?
            {
                held.mask |= 1 << i;
            }
        }
        // What was renewed is acted on from now, whatever the rest of the step meets.
        self.publish(held);
        if held.len() > fair {
            // Give back the highest shard, one a step: no longer acted on before it is released
            // (by writing no holder; another replica takes it at its next step).
            let i = 63 - held.mask.leading_zeros();
            held.mask &= !(1 << i);
            self.publish(held);
            match self.release_shard(i, now).await {
                Ok(true) => tracing::info!(shard = i, fair, "gave back a shard to rebalance"),
                Ok(false) => {}
                Err(e) => tracing::warn!(shard = i, error = %e, "giving back a shard failed; it expires on its own"),
            }
        }
        for i in 0..self.count {
            if held.len() >= fair {
                break;
            }
            if held.holds(i) {
                continue;
            }
            let name = shard_lease(i);
            let taken = match by_name.get(&name) {
                None => self.claim("shard", &name, None, &self.identity, now).await,
                Some(s) if !s.live(now) => {
                    self.claim("shard", &name, s.resource_version.as_deref(), &self.identity, now).await
                }
                Some(_) => Ok(false),
            };
            match taken {
                Ok(true) => {
                    held.mask |= 1 << i;
                    self.publish(held);
                    tracing::info!(shard = i, fair, "took a shard");
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(shard = i, error = %e, "taking a shard failed"),
            }
        }
        Ok(held)
    }

    /// Publish what is held, notifying the engine only when it changed (a renewal moves only the
    /// bound).
    fn publish(&self, held: Held) {
        self.tx.send_if_modified(|h| {
            let changed = h.mask != held.mask || h.count != held.count;
            *h = held;
            changed
        });
    }

    /// Write no holder into shard `i`'s Lease if this replica still holds it (a late release
    /// must not wipe another replica's claim).
    async fn release_shard(&self, i: u32, now: Ts) -> Result<bool, kube::Error> {
        let name = shard_lease(i);
        let fresh = self.api.get(&name).await?;
        if Seen::of(&fresh).holder != self.identity {
            return Ok(false);
        }
        self.claim("shard", &name, fresh.metadata.resource_version.as_deref(), "", now).await
    }

    /// Step every [`STEP`] until `stop` resolves, then release every Lease held at once, so the
    /// others take the shards without waiting for them to expire.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let step = tokio::time::timeout(std::time::Duration::from_millis(STEP.0.unsigned_abs()), self.step());
            if let Err(e) =
                step.await.unwrap_or_else(|_| Err(kube::Error::Service("shard lease step timed out".into())))
            {
                // What was published last stays, bounded by its `until`: acting stops before the
                // Leases can expire for the others, and a later good step renews them.
                tracing::warn!(error = %e, "shard leases: step failed");
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(std::time::Duration::from_millis(STEP.0.unsigned_abs())) => {}
            }
        }
        self.release().await;
    }

    /// Give back every shard this replica holds, and its presence: stops acting first, and
    /// writes no holder only into Leases that are still its own.
    pub async fn release(&self) {
        let now = (self.clock)();
        let held = self.tx.send_replace(Held { count: self.count, mask: 0, until: None });
        for i in (0..self.count).filter(|i| held.holds(*i)) {
            if let Err(e) = self.release_shard(i, now).await {
                tracing::warn!(shard = i, error = %e, "releasing a shard failed; it expires on its own");
            }
        }
        let me = replica_lease(&self.identity);
        if let Ok(l) = self.api.get(&me).await
            && let Err(e) = self.claim("replica", &me, l.metadata.resource_version.as_deref(), "", now).await
        {
            tracing::warn!(error = %e, "releasing the presence Lease failed; it expires on its own");
        }
    }
}

fn micro(t: Ts) -> String {
    jiff::Timestamp::from_millisecond(t.0)
        .map_or_else(|_| "1970-01-01T00:00:00.000000Z".into(), |t| format!("{}", t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shards are spread by name, stable, and a label pins a policy to one; a pin out of range
    /// or not a number is ignored.
    #[test]
    fn a_policy_belongs_to_the_shard_of_its_name_unless_pinned() {
        assert_eq!(shard_of_key("data/orders", None, 8), shard_of_key("data/orders", None, 8));
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a's published value for \"a\"");
        let spread: std::collections::BTreeSet<u32> =
            (0..200).map(|i| shard_of_key(&format!("ns/policy-{i}"), None, 8)).collect();
        assert_eq!(spread.len(), 8, "200 names reach every one of 8 shards");
        assert_eq!(shard_of_key("data/orders", Some("3"), 8), 3);
        assert_eq!(shard_of_key("data/orders", Some("9"), 8), shard_of_key("data/orders", None, 8));
        assert_eq!(shard_of_key("data/orders", Some("x"), 8), shard_of_key("data/orders", None, 8));
        assert_eq!(shard_of_key("data/orders", None, 1), 0);
        let held = Held { count: 8, mask: 0b1010, until: None };
        assert!(held.holds(1) && held.holds(3) && !held.holds(0) && !held.holds(9));
        assert_eq!(held.len(), 2);
        assert_eq!(micro(Ts(1_700_000_000_123)), "2023-11-14T22:13:20.123000Z");
    }
}
