//! The in-cluster controller: a kube-rs `Controller` over `ScalePolicy`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::api::{ScalePolicy, ScalePolicyStatus};
use crate::controller::backends::{BackendConfig, ProdBackends};
use crate::controller::events::KubeEvents;
use crate::controller::http::{self, AppState};
use crate::controller::leader::Lease;
use crate::controller::metrics::Metrics;
use crate::controller::reconcile::{Backends, Engine, Error, Next, StatusStore, StoreError, key};
use crate::controller::{FIELD_MANAGER, LEASE_NAME};

/// Status in the `status` subresource, written with server-side apply as `ebbflow`.
#[derive(Clone)]
pub struct KubeStatus {
    client: Client,
}

impl KubeStatus {
    /// Status writes through `client`.
    pub fn new(client: Client) -> KubeStatus {
        KubeStatus { client }
    }

    fn api(&self, sp: &ScalePolicy) -> Api<ScalePolicy> {
        Api::namespaced(self.client.clone(), &sp.namespace().unwrap_or_else(|| "default".into()))
    }
}

fn store_error(e: kube::Error) -> StoreError {
    match e {
        kube::Error::Api(s) if s.code == 409 => StoreError::Conflict,
        kube::Error::Api(s) => StoreError::Failed { code: Some(s.code), message: s.message },
        other => StoreError::Failed { code: None, message: other.to_string() },
    }
}

impl StatusStore for KubeStatus {
    async fn write(
        &self,
        sp: &ScalePolicy,
        status: &Arc<ScalePolicyStatus>,
        precondition: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let mut metadata = serde_json::json!({ "name": sp.name_any() });
        // A resourceVersion in an apply patch is a precondition: the server answers 409 when the
        // object changed since.
        if let Some(rv) = precondition {
            metadata["resourceVersion"] = rv.into();
        }
        let patch = serde_json::json!({
            "apiVersion": "ebbflow.dev/v1alpha1",
            "kind": "ScalePolicy",
            "metadata": metadata,
            "status": &**status,
        });
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let out = self.api(sp).patch_status(&sp.name_any(), &pp, &Patch::Apply(&patch)).await.map_err(store_error)?;
        Ok(out.resource_version())
    }

    async fn reread(&self, sp: &ScalePolicy) -> Result<ScalePolicy, StoreError> {
        self.api(sp).get(&sp.name_any()).await.map_err(store_error)
    }
}

/// What the Controller hands every reconcile.
pub struct Context<B> {
    /// The shared evaluation engine.
    pub engine: Engine<B, KubeStatus, KubeEvents>,
    /// The Controller's cache of all policies, for the one-policy-per-target rule.
    pub store: Store<ScalePolicy>,
}

/// Reconcile one policy: evaluate it and requeue it at its interval.
pub async fn reconcile<B: Backends>(sp: Arc<ScalePolicy>, ctx: Arc<Context<B>>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", policy = %key(&sp));
    async move {
        let started = Instant::now();
        // Only the policies that may share its target (the rule of one policy per target reads
        // no others): a copy of the whole cache per reconcile made a tick quadratic in the fleet.
        let peers = if ctx.engine.leadership.owns(&sp) {
            ctx.store.state_filter(|p| crate::controller::fence::same_leaf(&p.spec.target, &sp.spec.target))
        } else {
            Vec::new()
        };
        let result = ctx.engine.evaluate(sp, &peers).await;
        ctx.engine.metrics.reconcile_duration.0.observe(started.elapsed().as_secs_f64());
        result.map(|next| match next {
            Next::After(d) => Action::requeue(d),
            Next::AwaitChange => Action::await_change(),
        })
    }
    .instrument(span)
    .await
}

/// Retry a failed policy with its own backoff; others carry on.
pub fn error_policy<B: Backends>(sp: Arc<ScalePolicy>, err: &Error, ctx: Arc<Context<B>>) -> Action {
    let delay = ctx.engine.backoff(&sp);
    tracing::warn!(policy = %key(&sp), error = %err, kind = err.label(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Options for the in-cluster controller.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where `/metrics`, `/healthz`, `/readyz` listen.
    pub listen: SocketAddr,
    /// Namespace of the leader Lease (the controller's own).
    pub lease_namespace: String,
    /// This instance's identity in the Lease (the pod name).
    pub identity: String,
    /// Shards the policies are shared in (`--shards`): 1, one leader Lease for all; more, one
    /// Lease per shard ([`crate::controller::shards`]).
    pub shards: u32,
    /// Backend settings.
    pub backends: BackendConfig,
    /// How long reconciles in progress may run on after SIGTERM before they are abandoned.
    pub shutdown_grace: std::time::Duration,
    /// The pages served next to `/metrics` (`ebbflow run` passes the dashboard).
    pub pages: http::Pages,
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No Kubernetes configuration, or the client failed.
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// Leader election could not start.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
    /// The `--listen` address could not be bound.
    #[error(transparent)]
    Listen(#[from] http::ListenError),
}

/// Run the controller until SIGTERM or Ctrl-C: finish the reconciles in progress (for at most
/// `shutdown_grace`; a Google call that hangs is abandoned then), then give up the lease so a
/// standby takes over at once.
pub async fn run(opts: ClusterOptions) -> Result<(), RunError> {
    // Bound first: a taken port stops the start, before the lease is contended.
    let listener = http::bind(opts.listen).await?;
    let client = Client::try_default().await?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let (lease, leadership, shard_leases) = if opts.shards > 1 {
        let (leases, held) = super::shards::ShardLeases::new(
            client.clone(),
            &opts.lease_namespace,
            &opts.identity,
            opts.shards,
            crate::clock::wall_clock(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(leases.run(async {
            let _ = stopped.await;
        }));
        (None, super::leader::Leadership::sharded(held, crate::clock::wall_clock()), Some((stop, task)))
    } else {
        let (lease, leadership) =
            Lease::start(client.clone(), &opts.lease_namespace, LEASE_NAME, &opts.identity).await?;
        (Some(lease), leadership, None)
    };

    let api = Api::<ScalePolicy>::all(client.clone());
    let controller = Controller::new(api, watcher::Config::default().any_semantic())
        .reconcile_all_on(leadership.acquired())
        .shutdown_on_signal();
    let store = controller.store();
    let engine = Engine::new(
        ProdBackends::connect(Some(client.clone()), &opts.backends).await,
        KubeStatus::new(client.clone()),
        KubeEvents::new(client.clone(), Some(opts.identity.clone())),
        leadership.clone(),
        metrics.clone(),
    )
    .with_identity(opts.identity.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState { registry: Arc::new(registry), ready: ready.clone() };
    let pages = (opts.pages)(engine.published());
    let overdue = super::metrics::spawn_overdue(engine.published(), metrics.clone());
    let exporting = leadership.clone();
    super::backends::spawn_export(&opts.backends, engine.published(), move || exporting.is_leader()).await;
    let ctx = Arc::new(Context { engine, store: store.clone() });
    // The Controller reports no deletions (there is no finalizer: nothing to clean up in the
    // cloud), so deleted policies are dropped from metrics and memory by comparing with the cache.
    let pruner = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                prune(&ctx);
            }
        }
    });

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve_on(listener, http::router(state, pages), http::Limits::default(), async {
        let _ = http_stopped.await;
    }));
    tokio::spawn({
        let store = store.clone();
        let ready = ready.clone();
        async move {
            if store.wait_until_ready().await.is_ok() {
                ready.store(true, Ordering::Relaxed);
            }
        }
    });
    let leader_gauge = tokio::spawn({
        let mut leadership = leadership.clone();
        let metrics = metrics.clone();
        async move {
            metrics.leader.set(i64::from(leadership.is_leader()));
            // Ends with the lease task (a closed channel would otherwise wake this at once, forever).
            while let Some(leader) = leadership.changed().await {
                let shards = leadership.held().map(|h| h.len());
                tracing::info!(leader, ?shards, "leadership changed");
                metrics.leader.set(i64::from(leader));
                metrics.shards_held.set(i64::from(shards.unwrap_or(0)));
            }
            tracing::warn!("the lease task ended; leadership is no longer followed");
        }
    });

    let controller =
        controller.run(reconcile::<ProdBackends>, error_policy::<ProdBackends>, ctx).for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
        });
    // The Controller stops on the signal itself, after the reconciles in progress; this bounds
    // how long they may take.
    let grace = opts.shutdown_grace;
    if !crate::controller::run_with_grace(controller, crate::controller::shutdown_signal(), grace).await {
        tracing::warn!(?grace, "shutting down: abandoning reconciles still running after the grace period");
    }

    pruner.abort();
    overdue.abort();
    tracing::info!("shutting down: releasing the lease");
    // The lease manager releases once every receiver of its channel is gone.
    leader_gauge.abort();
    let _ = leader_gauge.await;
    drop(leadership);
    if let Some(lease) = lease {
        lease.release().await;
    }
    if let Some((stop, task)) = shard_leases {
        // The shard manager releases every Lease it holds when told to stop.
        let _ = stop.send(());
        let _ = task.await;
    }
    let _ = stop_http.send(());
    match server.await {
        Ok(r) => r?,
        Err(e) => tracing::warn!(error = %e, "http server task failed"),
    }
    Ok(())
}

/// Forget policies that are no longer in the Controller's cache.
pub fn prune<B: Backends>(ctx: &Context<B>) {
    if ctx.store.is_empty() {
        // An empty cache may just not be synced yet.
        return;
    }
    let live: std::collections::HashSet<String> = ctx.store.state().iter().map(|p| key(p)).collect();
    let gone: Vec<ScalePolicy> = ctx
        .engine
        .snapshots
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(k, _)| !live.contains(*k))
        .map(|(_, shown)| shown.object().clone())
        .collect();
    for sp in gone {
        tracing::info!(policy = %key(&sp), "policy deleted; forgetting it");
        ctx.engine.forget(&sp);
    }
}
