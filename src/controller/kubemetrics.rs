//! The Kubernetes metric source: answers [`MetricQuery::Kubernetes`] from watch caches (kube's
//! `reflector`), never by polling the API server.
//!
//! Each distinct thing read (one object by name, or the Pods matching one label selector, in one
//! namespace) gets one watch, started on its first query and shared by every policy that reads
//! it; a watch nobody has read for [`IDLE_WATCH`] is stopped. A fetch reads the cache and returns
//! the value now as one sample at the end of the range asked for, so the policy's smoothing sees
//! one sample per evaluation.
//!
//! Missing data is never zero: an object that does not exist, a path that is absent, a watch
//! that has not synced or that fails (e.g. RBAC) is an error, which the tick reads as missing
//! data for that metric. A Pod count is a count: no matching Pods is 0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::adapters::kubernetes::{KubernetesQuery, ReplicaCount};
use crate::adapters::{
    AdapterError, ErrorKind, KubernetesMetric, MetricQuery, MetricSource, Series, number_at, parse_path, replicas_path,
};
use crate::controller::workload::kube_error;
use crate::core::{Sample, Ts};

/// A watch that no query has read for this long is stopped (its policy was deleted or changed).
pub const IDLE_WATCH: Duration = Duration::from_secs(15 * 60);

/// How long a fetch waits for a new watch's first list before reporting the metric missing.
pub const SYNC_WAIT: Duration = Duration::from_secs(5);

/// What one watch reads: the objects of one kind in one namespace, narrowed by name or labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WatchKey {
    namespace: String,
    api_version: String,
    kind: String,
    /// `metadata.name=...` for a single object.
    fields: Option<String>,
    /// `k=v,...` for Pods.
    labels: Option<String>,
}

struct Watch {
    store: Store<DynamicObject>,
    /// The watch's last failure, cleared by its next success.
    error: Arc<Mutex<Option<AdapterError>>>,
    task: tokio::task::JoinHandle<()>,
    used: Mutex<Instant>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Kubernetes metrics from watch caches.
pub struct KubeMetrics {
    client: Option<kube::Client>,
    watches: Mutex<HashMap<WatchKey, Arc<Watch>>>,
    sync_wait: Duration,
}

impl KubeMetrics {
    /// A source reading through `client`; without one (standalone without a kubeconfig) every
    /// query fails with the reason.
    pub fn new(client: Option<kube::Client>) -> KubeMetrics {
        KubeMetrics { client, watches: Mutex::new(HashMap::new()), sync_wait: SYNC_WAIT }
    }

    /// Wait at most `wait` for a new watch's first list (tests use a short wait).
    pub fn with_sync_wait(mut self, wait: Duration) -> KubeMetrics {
        self.sync_wait = wait;
        self
    }

    /// Watches running now.
    pub fn watches(&self) -> usize {
        self.watches.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn watch(&self, client: &kube::Client, key: WatchKey) -> Arc<Watch> {
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        watches.retain(|_, w| w.used.lock().unwrap_or_else(|p| p.into_inner()).elapsed() < IDLE_WATCH);
        let w = watches.entry(key.clone()).or_insert_with(|| Arc::new(start(client.clone(), &key)));
        *w.used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        w.clone()
    }
}

fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    // The plural is derived from the kind (Deployment → deployments), as for workload targets.
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn start(client: kube::Client, key: &WatchKey) -> Watch {
    let ar = resource(&key.api_version, &key.kind);
    let api: Api<DynamicObject> = Api::namespaced_with(client, &key.namespace, &ar);
    let mut config = watcher::Config::default();
    if let Some(f) = &key.fields {
        config = config.fields(f);
    }
    if let Some(l) = &key.labels {
        config = config.labels(l);
    }
    let writer = reflector::store::Writer::new(ar.clone());
    let store = writer.as_reader();
    let error = Arc::new(Mutex::new(None));
    let seen = error.clone();
    let what = format!("watching {} in namespace {}", ar.plural, key.namespace);
    let task = tokio::spawn(async move {
        watcher(api, config)
            .default_backoff()
            .reflect(writer)
            .for_each(|event| {
                let e = event.err().map(|e| watch_error(&what, e));
                if let Some(e) = &e {
                    tracing::warn!(error = %e, "Kubernetes metric watch failed; retrying with backoff");
                }
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = e;
                std::future::ready(())
            })
            .await;
    });
    Watch { store, error, task, used: Mutex::new(Instant::now()) }
}

fn watch_error(what: &str, e: watcher::Error) -> AdapterError {
    let mut err = match e {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            kube_error(e)
        }
        other => AdapterError::new("kubernetes", ErrorKind::Transient, other.to_string()),
    };
    if err.kind == ErrorKind::PermissionDenied {
        err.message = format!("{what}: {} (grant list and watch on it)", err.message);
    } else {
        err.message = format!("{what}: {}", err.message);
    }
    err
}

fn key_of(m: &KubernetesMetric) -> WatchKey {
    let ns = m.namespace.clone();
    match &m.query {
        KubernetesQuery::Replicas(r) => WatchKey {
            namespace: ns,
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            fields: Some(format!("metadata.name={}", r.name)),
            labels: None,
        },
        KubernetesQuery::Field(f) => WatchKey {
            namespace: ns,
            api_version: f.api_version.clone(),
            kind: f.kind.clone(),
            fields: Some(format!("metadata.name={}", f.name)),
            labels: None,
        },
        KubernetesQuery::Pods(p) => WatchKey {
            namespace: ns,
            api_version: "v1".into(),
            kind: "Pod".into(),
            fields: None,
            labels: Some(p.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")),
        },
    }
}

/// The value `m` reads from the objects a watch holds (pure).
pub fn evaluate(m: &KubernetesMetric, objects: &[Arc<DynamicObject>]) -> Result<f64, AdapterError> {
    let missing = |what: String| AdapterError::new("kubernetes", ErrorKind::NotFound, what);
    let named = |name: &str| objects.iter().find(|o| o.metadata.name.as_deref() == Some(name)).cloned();
    match &m.query {
        KubernetesQuery::Pods(p) => {
            let count = objects
                .iter()
                .filter(|o| {
                    p.match_labels.iter().all(|(k, v)| o.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v))
                })
                .filter(|o| {
                    let phase = o.data.get("status").and_then(|s| s.get("phase")).and_then(|p| p.as_str());
                    p.phases.iter().any(|want| Some(want.as_str()) == phase)
                })
                .count();
            Ok(count as f64)
        }
        KubernetesQuery::Replicas(r) => {
            let o = named(&r.name).ok_or_else(|| missing(format!("{} does not exist", m.describe())))?;
            let path = parse_path(replicas_path(r.count)).unwrap_or_default();
            match (number_at(&o.data, &path), r.count) {
                (Some(n), _) => Ok(n),
                // Kubernetes leaves zero counts out of status: no readyReplicas is none ready.
                (None, ReplicaCount::Ready) => Ok(0.0),
                (None, ReplicaCount::Desired) => Err(missing(format!("{} has no spec.replicas", m.describe()))),
            }
        }
        KubernetesQuery::Field(f) => {
            let o = named(&f.name).ok_or_else(|| missing(format!("{} does not exist", m.describe())))?;
            let path = parse_path(&f.path).ok_or_else(|| {
                AdapterError::new("kubernetes", ErrorKind::Refused, format!("path \"{}\" is not a dotted path", f.path))
            })?;
            number_at(&o.data, &path).ok_or_else(|| missing(format!("{}: no number there", m.describe())))
        }
    }
}

impl MetricSource for KubeMetrics {
    async fn fetch(&self, query: &MetricQuery, _after: Ts, until: Ts) -> Result<Series, AdapterError> {
        let MetricQuery::Kubernetes(m) = query else {
            return Err(AdapterError::new("kubernetes", ErrorKind::Other, "not a Kubernetes query"));
        };
        let Some(client) = &self.client else {
            return Err(AdapterError::new(
                "kubernetes",
                ErrorKind::Refused,
                "no Kubernetes API (standalone without a kubeconfig): kubernetes metrics need one",
            ));
        };
        let watch = self.watch(client, key_of(m));
        let last_error = || watch.error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if tokio::time::timeout(self.sync_wait, watch.store.wait_until_ready()).await.is_err() {
            return Err(last_error().unwrap_or_else(|| {
                AdapterError::new(
                    "kubernetes",
                    ErrorKind::Transient,
                    format!("the watch of {} has not synced yet", m.describe()),
                )
            }));
        }
        // A failing watch keeps its last state, which may be old: that is missing data too.
        if let Some(e) = last_error() {
            return Err(e);
        }
        let value = evaluate(m, &watch.store.state())?;
        Ok(Series { samples: vec![Sample { at: until, value }], problem: None })
    }
}
