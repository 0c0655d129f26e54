//! Leader election on a Lease (`kube-lease-manager`). Only the leader evaluates policies and
//! writes to targets; followers keep their watch caches warm so a failover is quick.
//!
//! Leadership is re-checked right before every resize, after the intent is recorded in status
//! (see [`crate::controller::reconcile`]). Two instances that both believe they lead for a moment
//! (a lease that expired during a GC pause) cannot both resize from the same state: the intent
//! write carries a resourceVersion precondition, and only one of them gets it through.

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};

use crate::api::ScalePolicy;
use crate::controller::shards::{Held, shard_of};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether this instance may act. Cheap to clone; reads never block.
#[derive(Debug, Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    // Keeps a fixed or test-controlled channel open.
    tx: Option<std::sync::Arc<watch::Sender<bool>>>,
    /// With shards (`ebbflow run --shards N`, N > 1): the shards held, and the clock their
    /// bound is read on; `rx` is then unused.
    shards: Option<(watch::Receiver<Held>, crate::readout::published::EngineClock)>,
}

impl Leadership {
    /// Always the leader (standalone mode: one process, no Lease).
    pub fn always() -> Leadership {
        Leadership::manual(true)
    }

    /// A leadership flag set by hand (tests).
    pub fn manual(initial: bool) -> Leadership {
        let (tx, rx) = watch::channel(initial);
        Leadership { rx, tx: Some(std::sync::Arc::new(tx)), shards: None }
    }

    /// Follow a channel that a lease manager publishes to.
    pub fn from_channel(rx: watch::Receiver<bool>) -> Leadership {
        Leadership { rx, tx: None, shards: None }
    }

    /// Follow the shards a [`crate::controller::shards::ShardLeases`] holds.
    pub fn sharded(shards: watch::Receiver<Held>, clock: crate::clock::Clock) -> Leadership {
        let (_, rx) = watch::channel(false);
        Leadership { rx, tx: None, shards: Some((shards, crate::readout::published::EngineClock(Some(clock)))) }
    }

    /// The shards held now: none once their bound has passed without a renewal.
    fn held_now(shards: &watch::Receiver<Held>, clock: &crate::readout::published::EngineClock) -> Held {
        let held = *shards.borrow();
        match held.until {
            Some(until) if clock.now() >= until => Held { mask: 0, ..held },
            _ => held,
        }
    }

    /// Whether this instance holds the lease right now; with shards, whether it holds shard 0
    /// (what one replica of the fleet does alone, such as exporting decisions).
    pub fn is_leader(&self) -> bool {
        match &self.shards {
            None => *self.rx.borrow(),
            Some((s, clock)) => Self::held_now(s, clock).holds(0),
        }
    }

    /// Whether this instance may evaluate and resize `sp`: it leads, or holds `sp`'s shard.
    pub fn owns(&self, sp: &ScalePolicy) -> bool {
        match &self.shards {
            None => *self.rx.borrow(),
            Some((s, clock)) => {
                let held = Self::held_now(s, clock);
                held.holds(shard_of(sp, held.count))
            }
        }
    }

    /// The shards held, with shards.
    pub fn held(&self) -> Option<Held> {
        self.shards.as_ref().map(|(s, clock)| Self::held_now(s, clock))
    }

    /// Change a manual flag (tests); does nothing for a lease-backed one.
    pub fn set(&self, leader: bool) {
        if let Some(tx) = &self.tx {
            tx.send_replace(leader);
        }
    }

    /// Yields each time this instance becomes the leader, so a new leader evaluates every policy
    /// at once instead of at each policy's next requeue. Ends when the lease manager stops.
    pub fn acquired(&self) -> futures::stream::BoxStream<'static, ()> {
        use futures::StreamExt;
        match &self.shards {
            None => futures::stream::unfold(self.rx.clone(), |mut rx| async move {
                loop {
                    rx.changed().await.ok()?;
                    if *rx.borrow_and_update() {
                        return Some(((), rx));
                    }
                }
            })
            .boxed(),
            // With shards: each time a shard is taken that was not held before.
            Some((s, _)) => futures::stream::unfold((s.clone(), 0u64), |(mut rx, mut before)| async move {
                loop {
                    rx.changed().await.ok()?;
                    // Compared with the last set seen, not the last one that yielded: shards
                    // lost and taken again are news again.
                    let now = rx.borrow_and_update().mask;
                    let gained = now & !before != 0;
                    before = now;
                    if gained {
                        return Some(((), (rx, before)));
                    }
                }
            })
            .boxed(),
        }
    }

    /// Wait until leadership changes: whether this instance leads now, or `None` once nothing
    /// publishes it any more (the lease task ended).
    pub async fn changed(&mut self) -> Option<bool> {
        let ended = match &mut self.shards {
            None => self.rx.changed().await.is_err(),
            Some((s, _)) => s.changed().await.is_err(),
        };
        (!ended).then(|| self.is_leader())
    }
}

/// A running lease manager: dropping every [`Leadership`] clone and awaiting [`Lease::release`]
/// gives the lease up so a standby takes over at once rather than after the lease expires.
pub struct Lease {
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Lease {
    /// Start competing for the Lease `name` in `namespace` as `identity` (the pod name).
    /// A 15s lease renewed 5s before expiry: a failover takes at most about 15s.
    pub async fn start(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> Result<(Lease, Leadership), LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await?;
        let (rx, task) = manager.watch().await;
        Ok((Lease { task }, Leadership::from_channel(rx)))
    }

    /// Release the lease. Every [`Leadership`] clone must be dropped first: the manager releases
    /// when its channel closes.
    pub async fn release(self) {
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("leader lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Err(e) => tracing::warn!(error = %e, "the lease task panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    /// `acquired` fires on each change to leader, not on losing it, and ends with the channel.
    #[tokio::test]
    async fn acquired_fires_when_leadership_is_gained() {
        let (tx, rx) = watch::channel(false);
        let l = Leadership::from_channel(rx);
        let mut gained = Box::pin(l.acquired());
        tx.send_replace(true);
        assert_eq!(gained.next().await, Some(()));
        tx.send_replace(false);
        tx.send_replace(true);
        assert_eq!(gained.next().await, Some(()));
        drop(tx);
        assert_eq!(gained.next().await, None);
    }
}
