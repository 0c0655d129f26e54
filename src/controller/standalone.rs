//! Standalone mode: the same loop without a cluster. Policies come from YAML files, status
//! (with the core's state) lives in one local JSON file, Events go to the log.
//!
//! The file is replaced atomically (write a temporary file, fsync, rename), so a crash leaves the
//! old or the new version, never a torn one. A status that records a new resize in flight (the
//! intent, then its operation name) is written through at once; other changes are batched and
//! flushed every second and at shutdown.
//!
//! One state file belongs to one process: [`FileStore::open`] takes an exclusive OS lock on a
//! sidecar `<state>.lock` (the state file itself is replaced by rename, so a lock on it would be
//! lost at the first write). Two instances sharing a file sent every resize twice. Both are found
//! through the canonical path (symlinks resolved), so `--state alias.json`, a symlink to the file
//! another process uses, meets that process's lock, and the write goes to the file the symlink
//! names, which stays a symlink. Before every write the lock file is checked to still be the one
//! this process locked: one deleted under it is taken again, and one another process has locked
//! since stops this process's writes (its ticks fail before any resize is sent) and its run.
//!
//! Each entry records the target it was written for. An entry whose policy now points at another
//! target is started afresh (its in-flight resize belonged to the old target's operation), with a
//! warning. The entry of a policy that is not loaded is kept: its file may only have a typo, and
//! dropping the entry lost an in-flight resize (the fixed policy then sent it again), its resize
//! history and its budget. It is dropped only after [`ABSENT_GRACE`] of starts without it and
//! without any unreadable policy file, which is what a policy deliberately removed looks like.
//!
//! The policy files are live: `ebbflow run --policies DIR` looks at the directory every
//! [`DEFAULT_POLL`] ([`policyfiles::DirWatch`]) and applies what changed without a restart. An
//! added file starts its policy; a changed one is evaluated at once with its generation bumped
//! (status's `observedGeneration` follows); a removed one stops its policy, whose entry then
//! follows the rule above. A file that no longer parses, breaks a name rule, does not validate,
//! or duplicates another file's policy keeps the last good version running, and the problem is
//! shown as `Ready=False` with reason [`POLICY_FILE_INVALID`] in status (the state file, so
//! `ebbflow status`, and the dashboard) and logged.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kube::ResourceExt;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::api::{Condition, ScalePolicy, ScalePolicyStatus};
use crate::controller::backends::{BackendConfig, ProdBackends};
use crate::controller::events::{EventSink, LogEvents};
use crate::controller::http::{self, AppState};
use crate::controller::leader::Leadership;
use crate::controller::metrics::Metrics;
use crate::controller::reconcile::{Backends, Engine, Next, Shown, StatusStore, StoreError, key, target_identity};
use crate::core::{Dur, Ts};
use crate::policyfiles::{self, DirWatch, PolicyDir, Resolved};

/// One policy's entry in the state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    resource_version: u64,
    /// [`target_identity`] of the policy when this entry was written. Files written before this
    /// field existed have none: the entry is kept and the target recorded from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    /// The first start that found no policy for this entry; cleared when the policy is back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    absent_since: Option<Ts>,
    /// Shared with the dashboard's view of the policy ([`crate::readout::published::Shown`]):
    /// one copy of each status in memory, not two.
    status: Arc<ScalePolicyStatus>,
}

/// How long the entry of a policy that is no longer loaded is kept before it is dropped: long
/// enough to fix a file or restore a deleted one over a weekend, short enough that the state
/// file does not collect every policy that ever existed.
pub const ABSENT_GRACE: Dur = Dur(7 * 24 * 60 * 60_000);

/// The state file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StateFile {
    policies: BTreeMap<String, Entry>,
}

/// The state in memory and how many changes it has seen.
struct Versioned {
    file: StateFile,
    /// Bumped by every change; compared with [`FileStore::durable`] to know what is on disk.
    generation: u64,
}

/// The `Ready` reason of a policy whose file is broken while its last good version runs.
pub const POLICY_FILE_INVALID: &str = "PolicyFileInvalid";

/// What is wrong with a running policy's file, and since when.
#[derive(Debug, Clone)]
struct FileProblem {
    message: String,
    since: Ts,
}

/// The policies that run, as the files last gave them.
struct Loaded {
    policies: BTreeMap<String, Arc<ScalePolicy>>,
    /// The same policies (the same allocations), shared by every evaluation's check for a second
    /// policy on its target (a copy per task was a million pointers at 1,000 policies).
    peers: Arc<[Arc<ScalePolicy>]>,
    problems: BTreeMap<String, FileProblem>,
}

impl Loaded {
    fn new(policies: BTreeMap<String, Arc<ScalePolicy>>) -> Loaded {
        let peers = peers_of(&policies);
        Loaded { policies, peers, problems: BTreeMap::new() }
    }
}

fn peers_of(policies: &BTreeMap<String, Arc<ScalePolicy>>) -> Arc<[Arc<ScalePolicy>]> {
    policies.values().cloned().collect()
}

/// What [`FileStore::replace`] changed, by key.
#[derive(Debug, Default)]
pub struct Changes {
    /// Policies that were not running.
    pub added: Vec<String>,
    /// Running policies with a new spec (their generation is bumped), or whose file problem is
    /// gone (evaluated again so that `Ready` is recomputed).
    pub changed: Vec<String>,
    /// Policies no longer running, as they last ran.
    pub removed: Vec<ScalePolicy>,
    /// Running policies whose file problem is new or different, with the problem.
    pub problems: Vec<(String, String)>,
    /// Running policies whose file problem is gone.
    pub fixed: Vec<String>,
}

impl Changes {
    /// Whether the set of policies or any spec changed.
    pub fn any(&self) -> bool {
        !self.added.is_empty() || !self.changed.is_empty() || !self.removed.is_empty()
    }
}

/// Status in a local JSON file, locked for this process.
pub struct FileStore {
    path: PathBuf,
    /// Locked before `state` when both are held.
    loaded: RwLock<Loaded>,
    // Shared with the blocking flush, which serializes under it straight into the file.
    state: Arc<Mutex<Versioned>>,
    /// The newest generation known to be on disk. Only raised (`fetch_max`), so a slow flush of
    /// an older snapshot finishing late cannot lower it.
    durable: AtomicU64,
    // Serializes file replacement; the map lock is never held across IO. Shared so that the
    // blocking write owns it: a flush abandoned mid-write (shutdown) still keeps a later flush
    // from racing it, so an older snapshot can never be renamed over a newer one.
    io: Arc<tokio::sync::Mutex<()>>,
    /// Held for the life of the store; closing it releases the lock. Checked before each write.
    lock: Arc<Mutex<StateLock>>,
}

/// The exclusive lock on `<state>.lock`, and where it should be found.
struct StateLock {
    path: PathBuf,
    file: std::fs::File,
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
    /// The policy files could not be loaded.
    #[error(transparent)]
    Policies(#[from] policyfiles::DirError),
    /// The state file's directory does not exist.
    #[error(
        "--state {path}: the directory {dir} does not exist (create it, or point --state at a file in an existing directory)"
    )]
    StateDir {
        /// The state file.
        path: String,
        /// Its directory.
        dir: String,
    },
    /// The lock file was replaced and another process holds the new one.
    #[error(
        "--state {path}: another process took the lock {lock} after it was deleted or replaced under this one; this process stops writing the state and resizing, so that no resize is sent twice"
    )]
    LockLost {
        /// The state file.
        path: String,
        /// The lock file.
        lock: String,
    },
    /// Another process holds the state file.
    #[error(
        "--state {path} is in use by another ebbflow process{}: two instances on one state file would send every resize twice; stop the other instance or give this one its own --state (lock file: {lock})",
        .holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The state file.
        path: String,
        /// The lock file.
        lock: String,
        /// The holder's process id, as it wrote it into the lock file.
        holder: Option<u32>,
    },
    /// The HTTP listener could not be bound.
    #[error(transparent)]
    Listen(#[from] http::ListenError),
}

fn io_err(path: &Path, source: std::io::Error) -> StandaloneError {
    StandaloneError::Io { path: path.display().to_string(), source }
}

impl FileStore {
    /// Open (or start) the state file for `policies` (all of them readable), taking its lock.
    /// See [`FileStore::open_dir`].
    pub fn open(path: &Path, policies: Vec<ScalePolicy>) -> Result<FileStore, StandaloneError> {
        FileStore::open_dir(path, PolicyDir { policies, unreadable: Vec::new() }, crate::clock::now())
    }

    /// Open (or start) the state file for the policies of `dir`, taking its lock.
    ///
    /// Fails when the file's directory does not exist, when another process holds the lock, or
    /// when the file is not ebbflow's. Entries are matched with the policies: an entry written
    /// for another target is reset; the entry of a policy not loaded is kept (its file may not
    /// parse), and dropped only once it has been absent for [`ABSENT_GRACE`] at `now` while every
    /// policy file parsed. Each is logged. A policy's generation goes on from the one its saved
    /// status saw, so that a restart does not look like an edit.
    pub fn open_dir(path: &Path, dir: PolicyDir, now: Ts) -> Result<FileStore, StandaloneError> {
        let PolicyDir { policies, unreadable } = dir;
        let given = path;
        let dir = parent_dir(path);
        if !dir.is_dir() {
            return Err(StandaloneError::StateDir { path: path.display().to_string(), dir: dir.display().to_string() });
        }
        let path = &canonical_state_path(path).map_err(|e| io_err(path, e))?;
        let lock = lock_state_file(given, path)?;
        let mut file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<StateFile>(&bytes)
                .map_err(|e| StandaloneError::Corrupt { path: path.display().to_string(), message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(e) => return Err(io_err(path, e)),
        };
        let mut policies: BTreeMap<String, Arc<ScalePolicy>> =
            policies.into_iter().map(|p| (key(&p), Arc::new(p))).collect();
        let changed = match_entries(&mut file, &policies, !unreadable.is_empty(), now, path);
        // The generation goes on from the one the status last saw: a restart is not an edit, and
        // counting from 1 again would look like one (an evaluation before the interval is up).
        for (k, sp) in &mut policies {
            if let Some(g) = file.policies.get(k).and_then(|e| e.status.observed_generation) {
                // Not shared yet: no copy is made.
                Arc::make_mut(sp).metadata.generation = Some(g.max(1));
            }
        }
        Ok(FileStore {
            path: path.to_path_buf(),
            loaded: RwLock::new(Loaded::new(policies)),
            // Generation 1 against durable 0: the corrections reach the disk at the next flush.
            state: Arc::new(Mutex::new(Versioned { file, generation: u64::from(changed) })),
            durable: AtomicU64::new(0),
            io: Arc::new(tokio::sync::Mutex::new(())),
            lock: Arc::new(Mutex::new(lock)),
        })
    }

    fn loaded(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Every policy, with its stored status.
    pub fn all(&self) -> Vec<Arc<ScalePolicy>> {
        self.keys().iter().filter_map(|k| self.current(k)).map(Arc::new).collect()
    }

    /// The keys (`namespace/name`) of the policies that run.
    pub fn keys(&self) -> Vec<String> {
        self.loaded().policies.keys().cloned().collect()
    }

    /// Whether the policy `k` runs.
    pub fn contains(&self, k: &str) -> bool {
        self.loaded().policies.contains_key(k)
    }

    /// The policies that run, without status (what [`DirWatch::resolve`] compares the files
    /// with).
    pub fn policies(&self) -> BTreeMap<String, ScalePolicy> {
        self.loaded().policies.iter().map(|(k, sp)| (k.clone(), ScalePolicy::clone(sp))).collect()
    }

    /// The policies that run, without status, shared (for the check for a second policy on a
    /// target).
    pub fn peers(&self) -> Arc<[Arc<ScalePolicy>]> {
        self.loaded().peers.clone()
    }

    /// What is wrong with the file of the running policy `k`, if anything.
    pub fn file_problem(&self, k: &str) -> Option<String> {
        self.loaded().problems.get(k).map(|p| p.message.clone())
    }

    /// Run the policies `next` gives from now on (`now` on the engine's clock). A policy whose
    /// spec changed gets its generation bumped; one added goes on from the generation its
    /// saved status saw, plus one. The saved state follows the rule of [`FileStore::open_dir`]
    /// (a removed policy's entry is kept, marked absent); a policy with a file problem gets
    /// `Ready=False` ([`POLICY_FILE_INVALID`]) in its stored status, kept there through every
    /// status write until the problem is gone.
    pub fn replace(&self, next: Resolved, now: Ts) -> Changes {
        let unreadable = next.unreadable();
        let Resolved { policies: next, problems, .. } = next;
        let mut changes = Changes::default();
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (k, message) in &problems {
            if loaded.problems.get(k).is_none_or(|p| p.message != *message) {
                changes.problems.push((k.clone(), message.clone()));
            }
        }
        changes.fixed =
            loaded.problems.keys().filter(|k| next.contains_key(*k) && !problems.contains_key(*k)).cloned().collect();
        let problems: BTreeMap<String, FileProblem> = problems
            .into_iter()
            .map(|(k, message)| {
                let since = loaded.problems.get(&k).map_or(now, |p| p.since);
                (k, FileProblem { message, since })
            })
            .collect();

        let mut policies = BTreeMap::new();
        for (k, mut sp) in next {
            let sp = match loaded.policies.remove(&k) {
                Some(old) if old.spec == sp.spec && !changes.fixed.contains(&k) => old,
                Some(old) => {
                    sp.metadata.generation = Some(old.metadata.generation.unwrap_or(1).saturating_add(1));
                    changes.changed.push(k.clone());
                    Arc::new(sp)
                }
                None => {
                    let seen = state.file.policies.get(&k).and_then(|e| e.status.observed_generation);
                    sp.metadata.generation = Some(seen.map_or(1, |g| g.max(0).saturating_add(1)));
                    changes.added.push(k.clone());
                    Arc::new(sp)
                }
            };
            policies.insert(k, sp);
        }
        changes.removed = std::mem::take(&mut loaded.policies).into_values().map(Arc::unwrap_or_clone).collect();
        loaded.peers = peers_of(&policies);
        loaded.policies = policies;
        loaded.problems = problems;

        let mut changed =
            changes.any() && match_entries(&mut state.file, &loaded.policies, unreadable, now, &self.path);
        // A tick that read the old version must not write its intent under the new one (an edit,
        // a pause added with `ebbflow pause --file`, a removal): as the API server does on an
        // edit, the resourceVersion moves, so the tick's intent write is a conflict and it
        // decides again from the new spec, or, for a removed policy, sends nothing.
        let edited = changes.changed.iter().chain(&changes.added).cloned().chain(changes.removed.iter().map(key));
        for k in edited {
            if let Some(entry) = state.file.policies.get_mut(&k) {
                entry.resource_version += 1;
                changed = true;
            }
        }
        for (k, problem) in &loaded.problems {
            let generation = loaded.policies.get(k).and_then(|sp| sp.metadata.generation);
            if let Some(entry) = state.file.policies.get_mut(k)
                && mark_problem(&mut entry.status, problem, generation)
            {
                // A status change like any other: a tick that read the old version decides again.
                entry.resource_version += 1;
                changed = true;
            }
        }
        if changed {
            state.generation += 1;
        }
        changes
    }

    /// One policy with its stored status and version.
    pub fn current(&self, k: &str) -> Option<ScalePolicy> {
        let mut sp = ScalePolicy::clone(self.loaded().policies.get(k)?);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = state.file.policies.get(k) {
            sp.status = Some(ScalePolicyStatus::clone(&e.status));
            sp.metadata.resource_version = Some(e.resource_version.to_string());
        } else {
            sp.metadata.resource_version = Some("0".into());
        }
        Some(sp)
    }

    /// The stored status of `k`, shared with whoever shows it (not a copy).
    pub fn status(&self, k: &str) -> Option<Arc<ScalePolicyStatus>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).file.policies.get(k).map(|e| e.status.clone())
    }

    /// Write the file if anything changed since the last flush. When this returns `Ok`, every
    /// change made before the call is on disk, even if another flush was running meanwhile.
    pub async fn flush(&self) -> Result<(), StandaloneError> {
        let guard = self.io.clone().lock_owned().await;
        // Checked on every flush, changes or not: the periodic flush is what notices a lock file
        // deleted under an idle process before a second process can take it.
        let lock = self.lock.clone();
        let held = tokio::task::spawn_blocking(move || lock.lock().unwrap_or_else(|p| p.into_inner()).verify())
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match held {
            Ok(true) => {}
            Ok(false) => {
                return Err(StandaloneError::LockLost {
                    path: self.path.display().to_string(),
                    lock: FileStore::lock_path(&self.path).display().to_string(),
                });
            }
            Err(e) => return Err(io_err(&FileStore::lock_path(&self.path), e)),
        }
        if self.state.lock().unwrap_or_else(|p| p.into_inner()).generation <= self.durable.load(Ordering::Acquire) {
            return Ok(());
        }
        // The snapshot is taken under the IO lock: a flush that started earlier and wrote an
        // older snapshot has finished, and this one includes every change made before the call.
        // It is serialized straight into the temporary file under the state lock (a few
        // milliseconds of copying into the page cache; the fsync comes after the lock is
        // released): a buffer of the whole file was the controller's largest allocation, 8 MB
        // at 1,000 policies every second.
        let (path, state) = (self.path.clone(), self.state.clone());
        let result = tokio::task::spawn_blocking(move || {
            let mut generation = 0;
            let result = crate::policyfiles::write_atomically_with(&path, |file| {
                use std::io::Write as _;
                let state = state.lock().unwrap_or_else(|p| p.into_inner());
                generation = state.generation;
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
                serde_json::to_writer(&mut out, &state.file).map_err(std::io::Error::other)?;
                out.flush()
            });
            drop(guard);
            result.map(|()| generation)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let generation = result.map_err(|e| io_err(&self.path, e))?;
        self.durable.fetch_max(generation, Ordering::AcqRel);
        Ok(())
    }

    /// The lock file next to the state file `path`.
    pub fn lock_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "state".into());
        name.push(".lock");
        parent_dir(path).join(name)
    }
}

/// The directory a file named `path` lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    path.parent().filter(|d| !d.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// The file `path` names once symlinks are followed (also a dangling one: the state file may
/// not exist yet), in its canonical directory. Two paths to one file give the same answer, so
/// they meet at one lock, and the atomic write replaces the file, never a symlink to it.
fn canonical_state_path(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    // As many links as the kernel follows before ELOOP.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = if to.is_absolute() { to } else { parent_dir(&p).join(to) };
            }
            _ => break,
        }
    }
    let dir = std::fs::canonicalize(parent_dir(&p))?;
    Ok(match p.file_name() {
        Some(name) => dir.join(name),
        None => p,
    })
}

/// What trying to lock the file at a path found.
enum Try {
    Held(std::fs::File),
    Taken(std::fs::File),
}

fn try_lock_at(lock_path: &Path) -> std::io::Result<Try> {
    use std::io::{Seek, Write};
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(lock_path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Try::Taken(file)),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    file.set_len(0)?;
    file.seek(std::io::SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Try::Held(file))
}

/// Take the exclusive lock on `<path>.lock` (`path` canonical; `given` is what the user named)
/// and write this process's id into it (for the next one's error message). The lock lives as
/// long as the returned file is open; a crashed process's lock goes with it.
fn lock_state_file(given: &Path, path: &Path) -> Result<StateLock, StandaloneError> {
    use std::io::Read;
    let lock_path = FileStore::lock_path(path);
    match try_lock_at(&lock_path).map_err(|e| io_err(&lock_path, e))? {
        Try::Held(file) => Ok(StateLock { path: lock_path, file }),
        Try::Taken(mut file) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(StandaloneError::Locked {
                path: given.display().to_string(),
                lock: lock_path.display().to_string(),
                holder: text.trim().parse().ok(),
            })
        }
    }
}

impl StateLock {
    /// Whether this process still holds the lock at its path. A lock file deleted or replaced
    /// under it (a cleaner, a person) is locked again, unless another process has locked the new
    /// one: then this process has lost the state file.
    fn verify(&mut self) -> std::io::Result<bool> {
        match std::fs::metadata(&self.path) {
            Ok(at_path) if same_file(&at_path, &self.file.metadata()?) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match try_lock_at(&self.path)? {
            Try::Held(file) => {
                tracing::warn!(lock = %self.path.display(), "the state lock file was deleted or replaced; locked it again");
                self.file = file;
                Ok(true)
            }
            Try::Taken(_) => Ok(false),
        }
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

// Elsewhere a file cannot be deleted while it is open, which is what the check is for.
#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// Set `Ready=False` with [`POLICY_FILE_INVALID`] and the problem in `status`; whether it changed.
fn mark_problem(status: &mut Arc<ScalePolicyStatus>, problem: &FileProblem, generation: Option<i64>) -> bool {
    let ready = Condition {
        type_: crate::controller::status::READY.to_string(),
        status: "False".into(),
        reason: POLICY_FILE_INVALID.into(),
        message: problem.message.clone(),
        last_transition_time: problem.since.to_rfc3339(),
        observed_generation: generation,
    };
    // Copied out of the shared status only when it changes.
    match status.conditions.iter().position(|c| c.type_ == ready.type_) {
        Some(i) if status.conditions[i] == ready => false,
        Some(i) => {
            Arc::make_mut(status).conditions[i] = ready;
            true
        }
        None => {
            Arc::make_mut(status).conditions.push(ready);
            true
        }
    }
}

/// Reset entries written for another target, and keep or drop the entries of policies that are
/// not loaded (see [`FileStore::open_dir`]); whether anything changed.
fn match_entries(
    file: &mut StateFile,
    policies: &BTreeMap<String, Arc<ScalePolicy>>,
    unreadable: bool,
    now: Ts,
    path: &Path,
) -> bool {
    let mut changed = false;
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for (k, entry) in file.policies.iter_mut().filter(|(k, _)| !policies.contains_key(*k)) {
        // A clock that went back (or an entry from a clock ahead) restarts the grace.
        let since = match entry.absent_since {
            Some(t) if t <= now => t,
            _ => {
                entry.absent_since = Some(now);
                changed = true;
                now
            }
        };
        if !unreadable && now - since >= ABSENT_GRACE {
            dropped.push(k.clone());
        } else {
            kept.push(k.clone());
        }
    }
    if !kept.is_empty() {
        tracing::warn!(
            state = %path.display(),
            policies = ?kept,
            unreadable_files = unreadable,
            grace = %ABSENT_GRACE,
            "the state file has entries for policies that are not loaded; keeping them (a policy file that \
             does not parse, or one removed less than the grace ago while every file parsed)"
        );
    }
    if !dropped.is_empty() {
        tracing::warn!(
            state = %path.display(),
            policies = ?dropped,
            grace = %ABSENT_GRACE,
            "dropping the saved state of policies absent for longer than the grace"
        );
        for k in &dropped {
            file.policies.remove(k);
        }
        changed = true;
    }
    for (k, sp) in policies {
        let Some(entry) = file.policies.get_mut(k) else { continue };
        if entry.absent_since.take().is_some() {
            changed = true;
        }
        let target = target_identity(sp);
        match &entry.target {
            Some(was) if *was != target => {
                tracing::warn!(
                    policy = %k,
                    was = %was,
                    now = %target,
                    "the policy's target changed since its state was saved; starting its state afresh"
                );
                *entry = Entry {
                    resource_version: entry.resource_version + 1,
                    target: Some(target),
                    absent_since: None,
                    status: Default::default(),
                };
                changed = true;
            }
            Some(_) => {}
            None => {
                entry.target = Some(target);
                changed = true;
            }
        }
    }
    changed
}

impl StatusStore for FileStore {
    async fn write(
        &self,
        sp: &ScalePolicy,
        status: &Arc<ScalePolicyStatus>,
        precondition: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let k = key(sp);
        let (problem, loaded_target) = {
            let loaded = self.loaded();
            (loaded.problems.get(&k).cloned(), loaded.policies.get(&k).map(|sp| target_identity(sp)))
        };
        // A tick that began before the policy's file moved it to another target writes no more:
        // its status (and its in-flight resize) is the old target's, and the entry was started
        // afresh for the new one.
        if loaded_target.is_some_and(|t| t != target_identity(sp)) {
            tracing::warn!(policy = %k, "the policy's target changed during its evaluation; its status is not written");
            return Err(StoreError::Conflict);
        }
        let (rv, announces_resize) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let entry = state.file.policies.entry(k).or_default();
            if let Some(want) = precondition
                && want != entry.resource_version.to_string()
            {
                return Err(StoreError::Conflict);
            }
            let in_flight = |s: &ScalePolicyStatus| s.state.as_ref().and_then(|st| st.in_flight.clone());
            let announces_resize = in_flight(status).is_some() && in_flight(status) != in_flight(&entry.status);
            entry.resource_version += 1;
            entry.target = Some(target_identity(sp));
            entry.status = status.clone();
            // The evaluation computed Ready from the last good version; the file is still broken.
            if let Some(p) = &problem {
                mark_problem(&mut entry.status, p, sp.metadata.generation);
            }
            let rv = entry.resource_version;
            state.generation += 1;
            (rv, announces_resize)
        };
        // A resize intent (or its operation name) must be on disk before the resize is sent (or
        // before the next one could be decided); everything else can wait for the periodic flush.
        if announces_resize {
            self.flush().await.map_err(|e| StoreError::Failed { code: None, message: e.to_string() })?;
        }
        Ok(Some(rv.to_string()))
    }

    /// The loaded object, while `sp` is its current generation.
    fn object(&self, sp: &ScalePolicy) -> Option<Arc<ScalePolicy>> {
        self.loaded().policies.get(&key(sp)).filter(|o| o.metadata.generation == sp.metadata.generation).cloned()
    }

    async fn reread(&self, sp: &ScalePolicy) -> Result<ScalePolicy, StoreError> {
        self.current(&key(sp))
            .ok_or_else(|| StoreError::Failed { code: Some(404), message: format!("{} is not loaded", key(sp)) })
    }
}

/// How long ticks in progress may run on after the shutdown signal, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often `ebbflow run --policies DIR` looks for added, changed and removed policy files: an
/// edit reaches the controller within a few seconds, and a thousand files cost a thousand
/// `stat` calls at each look.
pub const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// [`run_policies_with_grace`] with [`DEFAULT_SHUTDOWN_GRACE`].
pub async fn run_policies<B: Backends, E: EventSink + 'static>(
    engine: Arc<Engine<B, FileStore, E>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), StandaloneError> {
    run_policies_with_grace(engine, shutdown, DEFAULT_SHUTDOWN_GRACE).await
}

/// Evaluate every policy in `engine.store` on its own schedule until `shutdown` turns true (or its
/// sender goes away). Ticks in progress then get `grace` to finish; those still running (a Google
/// call that hangs) are abandoned, and the state file is flushed.
///
/// Abandoning is safe: a resize intent is on disk before the resize is sent, and the next start
/// settles an intent without an operation name by looking at the target.
///
/// The policies are the store's as opened; [`run_policies_watching`] also follows their files.
pub async fn run_policies_with_grace<B: Backends, E: EventSink + 'static>(
    engine: Arc<Engine<B, FileStore, E>>,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), StandaloneError> {
    run_inner(engine, shutdown, grace, None).await
}

/// [`run_policies`], following the policy files in `dir` (looked at every `poll`): an added
/// file starts its policy, a changed one is evaluated at once in its new version, a removed one
/// stops its policy, and a broken one keeps its last good version running with the problem in
/// status and the logs (see the module documentation).
pub async fn run_policies_watching<B: Backends, E: EventSink + 'static>(
    engine: Arc<Engine<B, FileStore, E>>,
    shutdown: watch::Receiver<bool>,
    dir: PathBuf,
    poll: Duration,
) -> Result<(), StandaloneError> {
    run_inner(engine, shutdown, DEFAULT_SHUTDOWN_GRACE, Some((dir, poll))).await
}

/// The first wait before a policy task that panicked starts again; each further panic of the
/// same policy doubles it, up to [`MAX_RESTART_AFTER`]. A panic is a bug, but one policy's bug
/// must not leave that policy unwatched for the life of the process (it did: the task ended with
/// a log line, and the policy was never evaluated again).
pub const RESTART_AFTER: Duration = Duration::from_secs(1);
/// The longest wait before a panicked policy task starts again.
pub const MAX_RESTART_AFTER: Duration = Duration::from_secs(300);

/// The policy tasks, each with its wake-up (a new version, or its policy gone) by key.
#[derive(Default)]
struct Tasks {
    set: tokio::task::JoinSet<()>,
    by_key: BTreeMap<String, (Arc<Notify>, tokio::task::Id)>,
    names: HashMap<tokio::task::Id, String>,
    /// Panics of each policy's task so far, for the wait before the next start.
    panics: HashMap<String, u32>,
}

impl Tasks {
    fn spawn<B: Backends, E: EventSink + 'static>(
        &mut self,
        engine: &Arc<Engine<B, FileStore, E>>,
        k: String,
        shutdown: &watch::Receiver<bool>,
    ) {
        self.spawn_after(engine, k, shutdown, Duration::ZERO);
    }

    /// Start the task of `k` after `delay` (at once for zero), unless shutdown comes first.
    fn spawn_after<B: Backends, E: EventSink + 'static>(
        &mut self,
        engine: &Arc<Engine<B, FileStore, E>>,
        k: String,
        shutdown: &watch::Receiver<bool>,
        delay: Duration,
    ) {
        let wake = Arc::new(Notify::new());
        let task = policy_task(engine.clone(), k.clone(), wake.clone(), shutdown.clone());
        let mut stop = shutdown.clone();
        let handle = self.set.spawn(async move {
            if !delay.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            task.await;
        });
        self.names.insert(handle.id(), k.clone());
        self.by_key.insert(k, (wake, handle.id()));
    }

    /// Wake the task of `k` (a permit is kept if it is evaluating); whether there is one.
    fn wake(&self, k: &str) -> bool {
        match self.by_key.get(k) {
            Some((wake, _)) => {
                wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// A task ended: forget it, and start its policy again if the policy came back while the
    /// task was ending (removed and added again within one evaluation).
    fn ended<B: Backends, E: EventSink + 'static>(
        &mut self,
        engine: &Arc<Engine<B, FileStore, E>>,
        joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
        shutdown: &watch::Receiver<bool>,
    ) {
        let (id, failed) = match joined {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let Some(k) = self.names.remove(&id) else { return };
        if self.by_key.get(&k).is_some_and(|(_, task)| *task == id) {
            self.by_key.remove(&k);
        }
        let running = !*shutdown.borrow() && shutdown.has_changed().is_ok();
        match failed {
            Some(e) if e.is_panic() && running && !self.by_key.contains_key(&k) && engine.store.contains(&k) => {
                let n = self.panics.entry(k.clone()).or_default();
                *n = n.saturating_add(1);
                let delay = RESTART_AFTER.saturating_mul(2u32.saturating_pow(*n - 1)).min(MAX_RESTART_AFTER);
                tracing::error!(
                    policy = %k,
                    error = %e,
                    panics = *n,
                    restart_in = ?delay,
                    "policy task panicked (a bug: please report it with this log); starting it again"
                );
                self.spawn_after(engine, k, shutdown, delay);
            }
            Some(e) => tracing::error!(policy = %k, error = %e, "policy task failed"),
            // A dropped sender is the signal too.
            None if running && !self.by_key.contains_key(&k) && engine.store.contains(&k) => {
                self.spawn(engine, k, shutdown);
            }
            None => {}
        }
    }
}

/// Evaluate the policy `k` until it is no longer in the store (its file was removed) or
/// `shutdown`; between evaluations, sleep until the next is due or `wake` (a new version).
async fn policy_task<B: Backends, E: EventSink + 'static>(
    engine: Arc<Engine<B, FileStore, E>>,
    k: String,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("reconcile", policy = %k);
    let mut last = None;
    while let Some(sp) = engine.store.current(&k) {
        let peers = engine.store.peers();
        let started = std::time::Instant::now();
        let result = {
            use tracing::Instrument;
            // Boxed: a sleeping task then holds no room for an evaluation's state.
            Box::pin(engine.evaluate(Arc::new(sp.clone()), &peers).instrument(span.clone())).await
        };
        engine.metrics.reconcile_duration.0.observe(started.elapsed().as_secs_f64());
        publish_problem(&engine, &k);
        if *shutdown.borrow() {
            return;
        }
        let wait = match result {
            Ok(Next::After(d)) => Some(d),
            // An invalid spec: nothing to do until its file changes.
            Ok(Next::AwaitChange) => None,
            Err(e) => {
                let d = engine.backoff(&sp);
                span.in_scope(|| tracing::warn!(error = %e, retry_in = ?d, "evaluation failed"));
                Some(d)
            }
        };
        last = Some(sp);
        let due = async {
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = due => {}
            _ = wake.notified() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
    // The policy was removed: it leaves the dashboard and the metrics (unless it is back).
    if let Some(sp) = last
        && !engine.store.contains(&k)
    {
        engine.forget(&sp);
    }
}

/// Show the file problem of `k`, if any, on the dashboard at once: the status the evaluation
/// published was computed from the last good version, and says nothing of the file.
fn publish_problem<B: Backends, E: EventSink>(engine: &Engine<B, FileStore, E>, k: &str) {
    if engine.store.file_problem(k).is_none() {
        return;
    }
    if let Some(sp) = engine.store.current(k).filter(|sp| sp.status.is_some()) {
        engine.snapshots.write().unwrap_or_else(|p| p.into_inner()).insert(k.to_string(), Shown::of(sp));
    }
}

/// Look at the policy directory and apply what changed: start, wake or stop tasks, and log it.
fn follow<B: Backends, E: EventSink + 'static>(
    engine: &Arc<Engine<B, FileStore, E>>,
    dir: &mut DirWatch,
    tasks: &mut Tasks,
    shutdown: &watch::Receiver<bool>,
    unlisted: &mut Option<String>,
) {
    let changed = match dir.scan() {
        Ok(changed) => changed,
        Err(e) => {
            let e = e.to_string();
            if unlisted.as_deref() != Some(e.as_str()) {
                tracing::error!(error = %e, "cannot list the policy directory; the policies run as last read");
                *unlisted = Some(e);
            }
            return;
        }
    };
    if unlisted.take().is_some() {
        tracing::info!("the policy directory can be listed again");
    }
    if !changed {
        return;
    }
    let resolved = dir.resolve(&engine.store.policies());
    let changes = engine.store.replace(resolved, (engine.clock)());
    for k in &changes.added {
        tracing::info!(policy = %k, "policy file added: starting the policy");
        if !tasks.wake(k) {
            tasks.spawn(engine, k.clone(), shutdown);
        }
    }
    for k in &changes.changed {
        let generation = engine.store.current(k).and_then(|sp| sp.metadata.generation);
        tracing::info!(policy = %k, ?generation, "policy file changed: evaluating the new version now");
        tasks.wake(k);
    }
    for sp in &changes.removed {
        let k = key(sp);
        tracing::info!(
            policy = %k,
            grace = %ABSENT_GRACE,
            "policy file removed: stopping the policy (its saved state is kept for the grace, in case the file comes back)"
        );
        if !tasks.wake(&k) {
            engine.forget(sp);
        }
    }
    for (k, problem) in &changes.problems {
        tracing::error!(policy = %k, problem = %problem, "policy file problem: the last good version keeps running");
        publish_problem(engine, k);
    }
    for k in &changes.fixed {
        tracing::info!(policy = %k, "policy file problem resolved");
    }
    if changes.any() && engine.store.keys().is_empty() {
        tracing::warn!("no policy runs: every policy file was removed or is refused");
    }
}

/// The next look at the policy directory, if it is followed.
async fn next_look(dir: &mut Option<(DirWatch, tokio::time::Interval)>) {
    match dir {
        Some((_, every)) => {
            every.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn run_inner<B: Backends, E: EventSink + 'static>(
    engine: Arc<Engine<B, FileStore, E>>,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
    files: Option<(PathBuf, Duration)>,
) -> Result<(), StandaloneError> {
    let mut tasks = Tasks::default();
    for k in engine.store.keys() {
        tasks.spawn(&engine, k, &shutdown);
    }
    // Ends early only when another process took the state file's lock.
    let mut flusher = tokio::spawn({
        let engine = engine.clone();
        let mut shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait_for(|s| *s) => return None,
                }
                match engine.store.flush().await {
                    Ok(()) => {}
                    Err(e @ StandaloneError::LockLost { .. }) => return Some(e),
                    Err(e) => tracing::error!(error = %e, "writing the state file failed"),
                }
            }
        }
    });
    // The first look is at once: a file changed since the store was opened is applied.
    let mut dir = files.map(|(dir, poll)| {
        let mut every = tokio::time::interval(poll.max(Duration::from_millis(1)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        (DirWatch::new(&dir), every)
    });
    let mut unlisted = None;

    // A dropped sender counts as the signal: nobody could send it any more.
    // A receiver of its own for the wait: the branches hand `shutdown` on to new tasks.
    let mut stopping = shutdown.clone();
    let stopped = loop {
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => break None,
            lost = &mut flusher => break Some(lost.ok().flatten()),
            Some(joined) = tasks.set.join_next_with_id(), if !tasks.set.is_empty() => {
                tasks.ended(&engine, joined, &shutdown);
            }
            _ = next_look(&mut dir) => {
                if let Some((files, _)) = dir.as_mut() {
                    follow(&engine, files, &mut tasks, &shutdown, &mut unlisted);
                }
            }
        }
    };
    let (lost, flusher) = match stopped {
        None => (None, Some(flusher)),
        Some(lost) => (lost, None),
    };
    if let Some(e) = lost {
        // Every write of this process now fails, so no resize can be sent; stop at once.
        tracing::error!(error = %e, "stopping");
        tasks.set.abort_all();
        while tasks.set.join_next().await.is_some() {}
        return Err(e);
    }
    let mut names = tasks.names;
    let mut tasks = tasks.set;
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
            Ok(None) => break,
            Ok(Some(Ok((id, ())))) => {
                names.remove(&id);
            }
            Ok(Some(Err(e))) => {
                if let Some(k) = names.remove(&e.id()) {
                    tracing::error!(policy = %k, error = %e, "policy task failed");
                }
            }
            Err(_) => {
                let abandoned: Vec<&String> = names.values().collect();
                tracing::warn!(
                    ?grace,
                    policies = ?abandoned,
                    "shutting down: abandoning ticks still running after the grace period"
                );
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    if let Some(f) = flusher {
        match f.await {
            Ok(Some(e)) => return Err(e),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the periodic flush task failed"),
        }
    }
    engine.store.flush().await
}

/// Options for standalone mode.
#[derive(Debug, Clone)]
pub struct StandaloneOptions {
    /// Directory of ScalePolicy YAML files.
    pub policies: PathBuf,
    /// The JSON state file.
    pub state: PathBuf,
    /// Where `/metrics`, `/healthz`, `/readyz` and the dashboard listen.
    pub listen: SocketAddr,
    /// Backend settings.
    pub backends: BackendConfig,
    /// How long ticks in progress may run on after SIGTERM before they are abandoned.
    pub shutdown_grace: Duration,
    /// The pages served next to `/metrics` (`ebbflow run` passes the dashboard).
    pub pages: http::Pages,
}

/// Whether `sp` needs a Kubernetes API: a workload target, or a metric read from Kubernetes
/// objects. Everything else works without one, so no kubeconfig is looked for.
pub fn needs_kube(sp: &ScalePolicy) -> bool {
    sp.spec.target.kind().needs_kube() || sp.spec.metrics.iter().any(|m| m.source.needs_kube())
}

/// Run standalone until SIGTERM or Ctrl-C.
///
/// Everything that can be checked is checked before any policy is evaluated, so a mistake stops
/// the start instead of being logged every second: the policy files, the state file (its
/// directory, its lock, its content) and the `--listen` address (bound here, not later). Then
/// the policy directory is looked at every [`DEFAULT_POLL`], and what changed is applied (see
/// the module documentation). A Kubernetes client is made only for the policies found at start:
/// a workload policy added later needs a restart if none was.
pub async fn run(opts: StandaloneOptions) -> Result<(), StandaloneError> {
    let dir = policyfiles::load_dir_all(&opts.policies)?;
    let needs_kube = dir.policies.iter().any(needs_kube);
    let names: Vec<String> = dir.policies.iter().map(|p| p.name_any()).collect();
    let count = dir.policies.len();
    let store = FileStore::open_dir(&opts.state, dir, crate::clock::now())?;
    let listener = http::bind(opts.listen).await?;
    let client = if needs_kube {
        match kube::Client::try_default().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no Kubernetes API: workload targets, kubernetes metrics and node-pool drains will fail");
                None
            }
        }
    } else {
        None
    };
    tracing::info!(
        policies = count,
        state = %opts.state.display(),
        dir = %opts.policies.display(),
        "standalone mode (policy files added, changed or removed are applied within {DEFAULT_POLL:?})"
    );
    tracing::debug!(?names, "loaded policies");
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    metrics.leader.set(1);
    let engine = Arc::new(Engine::new(
        ProdBackends::connect(client, &opts.backends).await,
        store,
        LogEvents,
        Leadership::always(),
        metrics.clone(),
    ));
    let state = AppState { registry: Arc::new(registry), ready: Arc::new(AtomicBool::new(true)) };
    let pages = (opts.pages)(engine.published());
    // Ends with the process: in standalone mode there is no other replica to hand over to.
    let _overdue = super::metrics::spawn_overdue(engine.published(), metrics);
    super::backends::spawn_export(&opts.backends, engine.published(), || true).await;

    let (stop, shutdown) = watch::channel(false);
    let stop = Arc::new(stop);
    let server = tokio::spawn(http::serve_on(listener, http::router(state, pages), http::Limits::default(), {
        let mut s = shutdown.clone();
        async move {
            let _ = s.wait_for(|v| *v).await;
        }
    }));
    tokio::spawn({
        let stop = stop.clone();
        let grace = opts.shutdown_grace;
        async move {
            crate::controller::shutdown_signal().await;
            tracing::info!(?grace, "shutting down: finishing ticks in progress");
            stop.send_replace(true);
        }
    });
    let result = run_inner(engine, shutdown, opts.shutdown_grace, Some((opts.policies.clone(), DEFAULT_POLL))).await;
    stop.send_replace(true);
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "http server failed"),
        Err(e) => tracing::warn!(error = %e, "http server task failed"),
        Ok(Ok(())) => {}
    }
    result
}
