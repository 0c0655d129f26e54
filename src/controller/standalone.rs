//! Standalone mode: the same loop without a cluster. Policies come from YAML files, status
//! (with the core's state) lives in one local JSON file, Events go to the log.
//!
//! The file is replaced atomically (write a temporary file, fsync, rename), so a crash leaves the
//! old or the new version, never a torn one. A status that records a new resize in flight (the
//! intent, then its operation name) is written through at once; other changes are batched and
//! flushed every second and at shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::api::{ScalePolicy, ScalePolicyStatus, TargetRef};
use crate::controller::backends::{BackendConfig, ProdBackends};
use crate::controller::events::{EventSink, LogEvents};
use crate::controller::http::{self, AppState};
use crate::controller::leader::Leadership;
use crate::controller::metrics::Metrics;
use crate::controller::reconcile::{Backends, Engine, Next, StatusStore, StoreError, key};

/// One policy's entry in the state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    resource_version: u64,
    status: ScalePolicyStatus,
}

/// The state file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StateFile {
    policies: BTreeMap<String, Entry>,
}

/// Status in a local JSON file.
pub struct FileStore {
    path: PathBuf,
    policies: BTreeMap<String, ScalePolicy>,
    state: Mutex<StateFile>,
    dirty: AtomicBool,
    // Serializes file replacement; the map lock is never held across IO.
    io: tokio::sync::Mutex<()>,
}

/// Why standalone mode could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not ebbflow's.
    #[error("{path}: not an ebbflow state file: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// No policy could be loaded.
    #[error("no ScalePolicy files (*.yaml, *.yml) in {0}")]
    NoPolicies(String),
}

fn io_err(path: &Path, source: std::io::Error) -> StandaloneError {
    StandaloneError::Io { path: path.display().to_string(), source }
}

impl FileStore {
    /// Open (or start) the state file for `policies`.
    pub fn open(path: &Path, policies: Vec<ScalePolicy>) -> Result<FileStore, StandaloneError> {
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<StateFile>(&bytes)
                .map_err(|e| StandaloneError::Corrupt { path: path.display().to_string(), message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(e) => return Err(io_err(path, e)),
        };
        Ok(FileStore {
            path: path.to_path_buf(),
            policies: policies.into_iter().map(|p| (key(&p), p)).collect(),
            state: Mutex::new(state),
            dirty: AtomicBool::new(false),
            io: tokio::sync::Mutex::new(()),
        })
    }

    /// Every policy, with its stored status.
    pub fn all(&self) -> Vec<Arc<ScalePolicy>> {
        self.policies.keys().filter_map(|k| self.current(k)).map(Arc::new).collect()
    }

    /// One policy with its stored status and version.
    pub fn current(&self, k: &str) -> Option<ScalePolicy> {
        let mut sp = self.policies.get(k)?.clone();
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = state.policies.get(k) {
            sp.status = Some(e.status.clone());
            sp.metadata.resource_version = Some(e.resource_version.to_string());
        } else {
            sp.metadata.resource_version = Some("0".into());
        }
        Some(sp)
    }

    /// Write the file if anything changed since the last flush.
    pub async fn flush(&self) -> Result<(), StandaloneError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let _io = self.io.lock().await;
        let bytes = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec(&*state).map_err(|e| StandaloneError::Corrupt {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?
        };
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = result {
            self.dirty.store(true, Ordering::Release);
            return Err(io_err(&self.path, e));
        }
        Ok(())
    }
}

/// Replace `path` with `bytes` so that a reader (or a crash) sees the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl StatusStore for FileStore {
    async fn write(
        &self,
        sp: &ScalePolicy,
        status: &ScalePolicyStatus,
        precondition: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let k = key(sp);
        let (rv, announces_resize) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let entry = state.policies.entry(k).or_default();
            if let Some(want) = precondition
                && want != entry.resource_version.to_string()
            {
                return Err(StoreError::Conflict);
            }
            let in_flight = |s: &ScalePolicyStatus| s.state.as_ref().and_then(|st| st.in_flight.clone());
            let announces_resize = in_flight(status).is_some() && in_flight(status) != in_flight(&entry.status);
            entry.resource_version += 1;
            entry.status = status.clone();
            (entry.resource_version, announces_resize)
        };
        self.dirty.store(true, Ordering::Release);
        // A resize intent (or its operation name) must be on disk before the resize is sent (or
        // before the next one could be decided); everything else can wait for the periodic flush.
        if announces_resize {
            self.flush().await.map_err(|e| StoreError::Failed { code: None, message: e.to_string() })?;
        }
        Ok(Some(rv.to_string()))
    }

    async fn reread(&self, sp: &ScalePolicy) -> Result<ScalePolicy, StoreError> {
        self.current(&key(sp))
            .ok_or_else(|| StoreError::Failed { code: Some(404), message: format!("{} is not loaded", key(sp)) })
    }
}

/// Load every `*.yaml` / `*.yml` ScalePolicy in `dir`. Files that do not parse are reported and
/// skipped; specs that parse but break a rule are kept, so they get an InvalidSpec status.
pub fn load_dir(dir: &Path) -> Result<Vec<ScalePolicy>, StandaloneError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| io_err(&f, e))?;
        match crate::crd::parse_policy(&f.display().to_string(), &text) {
            Ok(mut sp) => {
                if sp.metadata.namespace.is_none() {
                    sp.metadata.namespace = Some("default".into());
                }
                sp.metadata.generation = Some(1);
                out.push(sp);
            }
            Err(e) => tracing::error!(error = %e, "skipping policy file"),
        }
    }
    if out.is_empty() {
        return Err(StandaloneError::NoPolicies(dir.display().to_string()));
    }
    Ok(out)
}

/// Evaluate every policy in `engine.store` on its own schedule until `shutdown` turns true. A
/// tick in progress finishes; then the state file is flushed.
pub async fn run_policies<B: Backends, E: EventSink + 'static>(
    engine: Arc<Engine<B, FileStore, E>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), StandaloneError> {
    let peers = engine.store.all();
    let mut tasks = tokio::task::JoinSet::new();
    for sp in &peers {
        let k = key(sp);
        let engine = engine.clone();
        let peers = peers.clone();
        let mut shutdown = shutdown.clone();
        tasks.spawn(async move {
            let span = tracing::info_span!("reconcile", policy = %k);
            loop {
                let Some(sp) = engine.store.current(&k) else { return };
                let started = std::time::Instant::now();
                let result = {
                    use tracing::Instrument;
                    engine.evaluate(Arc::new(sp.clone()), &peers).instrument(span.clone()).await
                };
                engine.metrics.reconcile_duration.0.observe(started.elapsed().as_secs_f64());
                let wait = match result {
                    Ok(Next::After(d)) => d,
                    Ok(Next::AwaitChange) => {
                        // Files are read once; a fix needs a restart.
                        let _ = shutdown.wait_for(|s| *s).await;
                        return;
                    }
                    Err(e) => {
                        let d = engine.backoff(&sp);
                        span.in_scope(|| tracing::warn!(error = %e, retry_in = ?d, "evaluation failed"));
                        d
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        });
    }
    let flusher = {
        let engine = engine.clone();
        let mut shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
                if let Err(e) = engine.store.flush().await {
                    tracing::error!(error = %e, "writing the state file failed");
                }
            }
        }
    };
    let ((), ()) = tokio::join!(async { while tasks.join_next().await.is_some() {} }, flusher);
    engine.store.flush().await
}

/// Options for standalone mode.
#[derive(Debug, Clone)]
pub struct StandaloneOptions {
    /// Directory of ScalePolicy YAML files.
    pub policies: PathBuf,
    /// The JSON state file.
    pub state: PathBuf,
    /// Where `/metrics`, `/healthz`, `/readyz` listen.
    pub listen: SocketAddr,
    /// Backend settings.
    pub backends: BackendConfig,
}

/// Run standalone until SIGTERM or Ctrl-C.
pub async fn run(opts: StandaloneOptions) -> Result<(), StandaloneError> {
    let policies = load_dir(&opts.policies)?;
    // Workload targets need an API server; everything else works without one.
    let client = if policies.iter().any(|p| matches!(p.spec.target, TargetRef::Workload(_))) {
        match kube::Client::try_default().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no Kubernetes API: workload targets will fail");
                None
            }
        }
    } else {
        None
    };
    tracing::info!(policies = policies.len(), state = %opts.state.display(), "standalone mode");
    let names: Vec<String> = policies.iter().map(|p| p.name_any()).collect();
    tracing::debug!(?names, "loaded policies");
    let store = FileStore::open(&opts.state, policies)?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    metrics.leader.set(1);
    let engine = Arc::new(Engine::new(
        ProdBackends::connect(client, &opts.backends, crate::controller::reconcile::wall_clock()).await,
        store,
        LogEvents,
        Leadership::always(),
        metrics,
    ));
    let state = AppState {
        registry: Arc::new(registry),
        ready: Arc::new(AtomicBool::new(true)),
        snapshots: engine.snapshots.clone(),
        history: engine.history.clone(),
    };

    let (stop, shutdown) = watch::channel(false);
    let stop = Arc::new(stop);
    let server = tokio::spawn(http::serve(opts.listen, http::router(state), {
        let mut s = shutdown.clone();
        async move {
            let _ = s.wait_for(|v| *v).await;
        }
    }));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            crate::controller::shutdown_signal().await;
            tracing::info!("shutting down: finishing ticks in progress");
            stop.send_replace(true);
        }
    });
    let result = run_policies(engine, shutdown).await;
    stop.send_replace(true);
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "http server failed"),
        Err(e) => tracing::warn!(error = %e, "http server task failed"),
        Ok(Ok(())) => {}
    }
    result
}
