//! Target kinds that plug in: one descriptor per kind of thing a policy can scale.
//!
//! Everything the rest of the program needs to know about a kind (its identity, the project its
//! metrics default to, its default warm-up, its field checks, how to build its adapter) is one
//! [`TargetKind`] implementation, on the kind's reference type (the `spec.target.<kind>` wire
//! struct). The kinds are registered in one list, `target_kinds!` in `api.rs`, which generates
//! the [`crate::api::TargetRef`] enum and its dispatch to the descriptor; nothing else matches on
//! the kind.
//!
//! A new kind is one new file (its reference type, its [`TargetKind`] impl and its adapter) plus
//! one line in that list.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::adapters::{
    AdapterError, MemberObservation, OperationStatus, ResizeStarted, ScaleTarget, TargetObservation,
};
use crate::core::{Dur, SizeRule};

/// One problem with a kind's fields: the field under `spec.target.<kind>`, and what is wrong.
pub type KindIssue = (&'static str, String);

/// What the program knows about one target kind. Implemented by the kind's reference type.
pub trait TargetKind: Send + Sync {
    /// The kind's field under `spec.target`, e.g. `"bigtableCluster"`.
    fn field(&self) -> &'static str;
    /// The target in one line, for status, logs and the dashboard.
    fn describe(&self) -> String;
    /// What makes two policies aim at the same target. Cloud targets are global (the default);
    /// a namespaced kind puts the policy's namespace in.
    fn identity(&self, _namespace: &str) -> String {
        self.describe()
    }
    /// The innermost name: two references to the same target have the same field and leaf (a
    /// necessary condition that needs no allocation).
    fn leaf(&self) -> &str;
    /// The project metric queries default to; `None` when the kind has none (queries must name
    /// theirs).
    fn project(&self) -> Option<&str>;
    /// How long added capacity of this kind takes to carry load.
    fn default_warmup(&self) -> Dur;
    /// How a target of this kind answers a resize: the simulator's defaults for it. The default
    /// is a target whose resize is one write, done at once, with no floor of its own.
    fn behaviour(&self) -> Behaviour {
        Behaviour::default()
    }
    /// Problems with the kind's own fields, in field order.
    fn check(&self) -> Vec<KindIssue>;
    /// For a target made of members each sized from its own metrics (a replicated Bigtable
    /// instance with `sizing: perCluster`): the fraction of the largest member's decision no
    /// member goes below (see `core::replicas`). `None` (the default): the target is sized as one.
    fn per_member_floor(&self) -> Option<f64> {
        None
    }
    /// When the policy steers the kind's built-in autoscaler (`steerAutoscaler: true`) and a
    /// replay can model it: the sizes the autoscaler's minimum takes. `None` (the default): the
    /// policy sets the size, or the replay does not model the kind's autoscaler.
    fn steered_sizes(&self) -> Option<SizeRule> {
        None
    }
    /// The target a metric of this kind's policy is held at when its `target` is left out, as
    /// far as the spec alone tells (the adapter may know better: see
    /// [`ScaleTarget::recommended_target`]); `None` (the default): the target is required.
    fn recommended_target(&self, _metric: &crate::api::MetricSpec) -> Option<f64> {
        None
    }
    /// The scale-in cooldown of a policy that sets none (`spec.scaleIn.cooldown`), as a
    /// duration: 10m unless the kind's capacity asks for more.
    fn default_scale_in_cooldown(&self) -> &'static str {
        crate::api::DEFAULT_SCALE_IN_COOLDOWN
    }
    /// What the kind's sizes count, in reports: "nodes" (the default), "processing units".
    fn size_unit(&self) -> &'static str {
        "nodes"
    }
    /// Whether building the adapter needs a Kubernetes API.
    fn needs_kube(&self) -> bool {
        false
    }
    /// Build the adapter for this target in `namespace` (the policy's), from the shared clients.
    fn connect(&self, clients: &Arc<Clients>, namespace: &str) -> Result<BoxTarget, AdapterError>;
}

/// How a target kind answers a resize, as far as a replay needs to know: how long the resize
/// operation runs (the target is busy meanwhile and refuses another), what size it shows while
/// it runs, and whether its data sets a floor. The simulator's model of the target defaults to
/// these; the real adapters learn the same things from the service at run time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Behaviour {
    /// How long a resize operation typically runs. Zero: the request is the resize.
    pub operation_time: Dur,
    /// Whether the target shows the new size while the operation runs (Bigtable: RESIZING with
    /// the new `serve_nodes`) rather than the old one until it is done (a GKE node pool).
    pub new_size_while_busy: bool,
    /// The storage utilization its data is kept at or under, when the kind has a storage floor.
    pub storage_target: Option<f64>,
    /// The sizes it can take whatever its settings (Spanner's processing-unit ladder); a rule
    /// that depends on the target's settings (zones, 2x node scaling) is the replay's to say.
    pub sizes: SizeRule,
}

/// The check of a kind's `storageTarget`, when it has one: 0.05 to 0.95.
pub fn storage_target_issue(target: Option<f64>) -> Option<KindIssue> {
    target
        .filter(|t| !(0.05..=0.95).contains(t))
        .map(|t| ("storageTarget", format!("must be between 0.05 and 0.95 (got {t})")))
}

/// The checks every kind makes of its name fields: none may be blank.
pub fn required(fields: &[(&'static str, &str)]) -> Vec<KindIssue> {
    fields.iter().filter(|(_, v)| v.trim().is_empty()).map(|(f, _)| (*f, "must not be empty".to_string())).collect()
}

/// The clients the kinds build their adapters from: the Kubernetes client (none in standalone
/// mode without a kubeconfig), settings by type (e.g. `gcp::GcpConfig`: this module names no
/// backend), and each kind's API client, built once on first use and shared by every target of
/// the kind.
pub struct Clients {
    /// The Kubernetes API, if there is one.
    pub kube: Option<kube::Client>,
    settings: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    cache: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Clients {
    /// Clients for `kube`, with no settings; nothing is built yet.
    pub fn new(kube: Option<kube::Client>) -> Clients {
        Clients { kube, settings: HashMap::new(), cache: Mutex::new(HashMap::new()) }
    }

    /// Add a setting the kinds read by its type (one per type).
    pub fn with<S: Send + Sync + 'static>(mut self, setting: S) -> Clients {
        self.settings.insert(TypeId::of::<S>(), Box::new(setting));
        self
    }

    /// The setting of type `S`; an error naming it when none was given.
    pub fn setting<S: 'static>(&self) -> Result<&S, AdapterError> {
        self.settings.get(&TypeId::of::<S>()).and_then(|s| s.downcast_ref::<S>()).ok_or_else(|| {
            AdapterError::new(
                "clients",
                crate::adapters::ErrorKind::Other,
                format!("no {} was configured", std::any::type_name::<S>()),
            )
        })
    }

    /// The shared client of type `C`, built by `build` the first time it is asked for. A client
    /// that cannot be built stays unbuilt with its reason, which every call reports (no
    /// credentials do not come back by retrying).
    pub async fn get<C, F, Fut>(&self, build: F) -> Result<C, AdapterError>
    where
        C: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, AdapterError>>,
    {
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let entry = cache
                .entry(TypeId::of::<C>())
                .or_insert_with(|| Arc::new(OnceCell::<Result<C, AdapterError>>::new()) as Arc<dyn Any + Send + Sync>);
            entry.clone()
        };
        let cell = cell.downcast::<OnceCell<Result<C, AdapterError>>>().map_err(|_| {
            AdapterError::new("clients", crate::adapters::ErrorKind::Other, "client cache holds the wrong type")
        })?;
        cell.get_or_init(build).await.clone()
    }
}

/// A [`ScaleTarget`] that can be kept behind a pointer whatever its kind.
pub trait DynTarget: Send + Sync {
    /// [`ScaleTarget::observe`].
    fn observe(&self) -> BoxFuture<'_, Result<TargetObservation, AdapterError>>;
    /// [`ScaleTarget::resize`].
    fn resize(&self, to: u32) -> BoxFuture<'_, Result<ResizeStarted, AdapterError>>;
    /// [`ScaleTarget::operation`].
    fn operation<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<OperationStatus, AdapterError>>;
    /// [`ScaleTarget::observe_members`].
    fn observe_members(&self) -> BoxFuture<'_, Result<Vec<MemberObservation>, AdapterError>>;
    /// [`ScaleTarget::resize_member`].
    fn resize_member<'a>(&'a self, member: &'a str, to: u32) -> BoxFuture<'a, Result<ResizeStarted, AdapterError>>;
    /// [`ScaleTarget::recommended_target`].
    fn recommended_target(&self) -> BoxFuture<'_, Result<Option<f64>, AdapterError>>;
    /// [`ScaleTarget::resize_within`].
    fn resize_within(&self, to: u32, max: u32) -> BoxFuture<'_, Result<ResizeStarted, AdapterError>>;
}

impl<T: ScaleTarget> DynTarget for T {
    fn observe(&self) -> BoxFuture<'_, Result<TargetObservation, AdapterError>> {
        Box::pin(ScaleTarget::observe(self))
    }
    fn resize(&self, to: u32) -> BoxFuture<'_, Result<ResizeStarted, AdapterError>> {
        Box::pin(ScaleTarget::resize(self, to))
    }
    fn operation<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<OperationStatus, AdapterError>> {
        Box::pin(ScaleTarget::operation(self, name))
    }
    fn observe_members(&self) -> BoxFuture<'_, Result<Vec<MemberObservation>, AdapterError>> {
        Box::pin(ScaleTarget::observe_members(self))
    }
    fn resize_member<'a>(&'a self, member: &'a str, to: u32) -> BoxFuture<'a, Result<ResizeStarted, AdapterError>> {
        Box::pin(ScaleTarget::resize_member(self, member, to))
    }
    fn recommended_target(&self) -> BoxFuture<'_, Result<Option<f64>, AdapterError>> {
        Box::pin(ScaleTarget::recommended_target(self))
    }
    fn resize_within(&self, to: u32, max: u32) -> BoxFuture<'_, Result<ResizeStarted, AdapterError>> {
        Box::pin(ScaleTarget::resize_within(self, to, max))
    }
}

/// A target of any kind.
pub struct BoxTarget(Box<dyn DynTarget>);

impl BoxTarget {
    /// Box `target`.
    pub fn new(target: impl ScaleTarget + 'static) -> BoxTarget {
        BoxTarget(Box::new(target))
    }

    /// An adapter built on first use by `make` (which usually waits for a shared client): a
    /// target whose client cannot be built fails every call with the reason.
    pub fn lazy<T, F, Fut>(make: F) -> BoxTarget
    where
        T: ScaleTarget + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, AdapterError>> + Send + 'static,
    {
        BoxTarget::new(Lazy { cell: OnceCell::new(), make })
    }
}

impl ScaleTarget for BoxTarget {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        self.0.observe().await
    }
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.0.resize(to).await
    }
    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        self.0.operation(name).await
    }
    async fn observe_members(&self) -> Result<Vec<MemberObservation>, AdapterError> {
        self.0.observe_members().await
    }
    async fn resize_member(&self, member: &str, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.0.resize_member(member, to).await
    }
    async fn recommended_target(&self) -> Result<Option<f64>, AdapterError> {
        self.0.recommended_target().await
    }
    async fn resize_within(&self, to: u32, max: u32) -> Result<ResizeStarted, AdapterError> {
        self.0.resize_within(to, max).await
    }
}

/// See [`BoxTarget::lazy`].
struct Lazy<T, F> {
    cell: OnceCell<Result<T, AdapterError>>,
    make: F,
}

impl<T, F, Fut> Lazy<T, F>
where
    T: ScaleTarget,
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, AdapterError>> + Send,
{
    async fn get(&self) -> Result<&T, AdapterError> {
        self.cell.get_or_init(|| (self.make)()).await.as_ref().map_err(Clone::clone)
    }
}

impl<T, F, Fut> ScaleTarget for Lazy<T, F>
where
    T: ScaleTarget,
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, AdapterError>> + Send,
{
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        self.get().await?.observe().await
    }
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.get().await?.resize(to).await
    }
    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        self.get().await?.operation(name).await
    }
    async fn observe_members(&self) -> Result<Vec<MemberObservation>, AdapterError> {
        self.get().await?.observe_members().await
    }
    async fn resize_member(&self, member: &str, to: u32) -> Result<ResizeStarted, AdapterError> {
        self.get().await?.resize_member(member, to).await
    }
    async fn recommended_target(&self) -> Result<Option<f64>, AdapterError> {
        self.get().await?.recommended_target().await
    }
    async fn resize_within(&self, to: u32, max: u32) -> Result<ResizeStarted, AdapterError> {
        self.get().await?.resize_within(to, max).await
    }
}

/// A target this process cannot serve: every call fails with the reason.
pub struct Unavailable(pub AdapterError);

impl ScaleTarget for Unavailable {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        Err(self.0.clone())
    }
    async fn resize(&self, _: u32) -> Result<ResizeStarted, AdapterError> {
        Err(self.0.clone())
    }
    async fn operation(&self, _: &str) -> Result<OperationStatus, AdapterError> {
        Err(self.0.clone())
    }
    async fn observe_members(&self) -> Result<Vec<MemberObservation>, AdapterError> {
        Err(self.0.clone())
    }
    async fn resize_member(&self, _: &str, _: u32) -> Result<ResizeStarted, AdapterError> {
        Err(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::adapters::ErrorKind;
    use crate::api::{GkeNodePoolRef, TargetRef, WorkloadRef};
    use crate::gcp::GcpConfig;

    #[tokio::test]
    async fn a_client_is_built_once_and_a_failure_is_kept() {
        let clients = Clients::new(None);
        let built = AtomicU32::new(0);
        for _ in 0..3 {
            let c: Result<u32, AdapterError> = clients
                .get(|| async {
                    built.fetch_add(1, Ordering::SeqCst);
                    Ok(7)
                })
                .await;
            assert_eq!(c, Ok(7));
        }
        let failed: Result<String, AdapterError> =
            clients.get(|| async { Err(AdapterError::new("x", ErrorKind::Refused, "no credentials")) }).await;
        let again: Result<String, AdapterError> = clients.get(|| async { Ok("built".to_string()) }).await;
        assert_eq!(built.load(Ordering::SeqCst), 1);
        assert_eq!(failed.unwrap_err().message, "no credentials");
        assert_eq!(again.unwrap_err().message, "no credentials", "the failure is kept");
    }

    #[tokio::test]
    async fn kinds_answer_for_their_targets() {
        let clients = Arc::new(Clients::new(None).with(GcpConfig::new(Some("http://127.0.0.1:9".into()))));
        assert!(clients.setting::<GcpConfig>().is_ok());
        assert!(clients.setting::<String>().is_err());
        let w = TargetRef::Workload(WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
        });
        assert_eq!((w.kind().field(), w.kind().identity("ns")), ("workload", "ns/apps/v1 deployment web".to_string()));
        assert_eq!(w.kind().project(), None);
        let refused = w.kind().connect(&clients, "ns").err().expect("no Kubernetes API");
        assert_eq!(refused.kind, ErrorKind::Refused);
        let g = TargetRef::GkeNodePool(GkeNodePoolRef {
            project: "p".into(),
            location: "l".into(),
            cluster: "c".into(),
            node_pool: " ".into(),
            ..Default::default()
        });
        assert_eq!(g.kind().identity("ns"), "gke p/l/c/ ");
        assert_eq!(g.kind().check(), vec![("nodePool", "must not be empty".to_string())]);
        assert_eq!(g.kind().default_warmup(), Dur::mins(3));
    }
}
