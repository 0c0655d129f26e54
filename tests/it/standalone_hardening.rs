//! Standalone mode in the real world (issue #10): duplicate and invalid policy names, one process
//! per state file, entries that outlived their target or their policy, intents durable under a
//! concurrent flush, and a shutdown that a hanging Google call cannot hold up.

use crate::controller_support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller_support::*;
use ebbflow::adapters::{
    AdapterError, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget, Series, TargetObservation,
};
use ebbflow::api::{ScalePolicy, ScalePolicyStatus, TargetRef};
use ebbflow::controller::events::LogEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::reconcile::target_identity;
use ebbflow::controller::standalone::{FileStore, StandaloneError, run_policies_with_grace};
use ebbflow::controller::{Backends, Engine, StatusStore};
use ebbflow::policyfiles::load_dir;
use serde_json::{Value, json};
use tokio::sync::watch;

/// A valid policy file at minSize 2.
fn policy_yaml(namespace: Option<&str>, name: &str, cluster: &str) -> String {
    bigtable_policy_yaml(namespace, name, cluster, 2)
}

fn write(dir: &Path, file: &str, text: &str) -> String {
    let path = dir.join("policies").join(file);
    std::fs::write(&path, text).expect("write policy");
    path.display().to_string()
}

fn load_err(dir: &Path) -> String {
    match load_dir(&dir.join("policies")) {
        Ok(p) => panic!("loaded {} policies; expected a refusal", p.len()),
        Err(e) => e.to_string(),
    }
}

// === item 7: names ===

/// Two files with the same namespace/name (one implicit `default`) stop the start with a
/// message naming both files; before, the second silently replaced the first.
#[test]
fn duplicate_policy_names_refuse_to_load_naming_both_files() {
    let dir = tempdir("hardening-dup");
    let a = write(&dir, "a.yaml", &policy_yaml(None, "orders", "c1"));
    let b = write(&dir, "b.yaml", &policy_yaml(Some("default"), "orders", "c2"));
    write(&dir, "c.yaml", &policy_yaml(Some("team-a"), "orders", "c3"));
    let err = load_err(&dir);
    assert!(err.contains(&a) && err.contains(&b), "both files named: {err}");
    assert!(err.contains("default/orders") && err.contains("unique"), "{err}");
    assert!(!err.contains("c.yaml"), "the same name in another namespace is fine: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A name with `/` (it would collide with another policy's `namespace/name` key) and a namespace
/// that is not a DNS label are refused with the field and the rule.
#[test]
fn invalid_names_refuse_to_load_naming_field_and_rule() {
    let dir = tempdir("hardening-names");
    let slash = write(&dir, "slash.yaml", &policy_yaml(Some("team"), "a/orders", "c1"));
    let err = load_err(&dir);
    assert!(err.contains(&slash), "{err}");
    assert!(err.contains("metadata.name") && err.contains("RFC 1123 DNS subdomain"), "{err}");

    std::fs::remove_file(&slash).expect("rm");
    let upper = write(&dir, "upper.yaml", &policy_yaml(Some("Team_A"), "orders", "c1"));
    let err = load_err(&dir);
    assert!(err.contains(&upper), "{err}");
    assert!(err.contains("metadata.namespace") && err.contains("RFC 1123 DNS label"), "{err}");

    std::fs::remove_file(&upper).expect("rm");
    write(&dir, "ok.yaml", &policy_yaml(Some("team-a"), "orders.v2", "c1"));
    assert_eq!(load_dir(&dir.join("policies")).expect("valid names load").len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

// === item 8: the state file ===

fn policies(dir: &Path) -> Vec<ScalePolicy> {
    load_dir(&dir.join("policies")).expect("load")
}

/// A second store on the same file is refused while the first is open, naming the file and the
/// holder's pid; closing the first frees it.
#[test]
fn state_file_is_locked_for_one_process() {
    let dir = tempdir("hardening-lock");
    write(&dir, "orders.yaml", &policy_yaml(None, "orders", "c1"));
    let state = dir.join("state.json");
    let first = FileStore::open(&state, policies(&dir)).expect("first open");
    let err = match FileStore::open(&state, policies(&dir)) {
        Ok(_) => panic!("a second store on {} was allowed", state.display()),
        Err(e) => e,
    };
    assert!(matches!(err, StandaloneError::Locked { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&state.display().to_string()), "{text}");
    assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
    drop(first);
    FileStore::open(&state, policies(&dir)).expect("free again once the first store is closed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lock survives the atomic replacement of the state file (a lock on the state file itself
/// would be on the replaced inode after the first write).
#[tokio::test]
async fn state_file_lock_survives_writes() {
    let dir = tempdir("hardening-lock-write");
    write(&dir, "orders.yaml", &policy_yaml(None, "orders", "c1"));
    let state = dir.join("state.json");
    let store = FileStore::open(&state, policies(&dir)).expect("open");
    let sp = store.current("default/orders").expect("loaded");
    for i in 0..3 {
        let status = Arc::new(ScalePolicyStatus { current_size: Some(3 + i), ..Default::default() });
        store.write(&sp, &status, None).await.expect("write");
        store.flush().await.expect("flush");
    }
    assert!(state.exists());
    assert!(matches!(FileStore::open(&state, policies(&dir)), Err(StandaloneError::Locked { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A state file in a directory that does not exist is refused at open, naming `--state`.
#[test]
fn state_file_directory_must_exist() {
    let dir = tempdir("hardening-nodir");
    write(&dir, "orders.yaml", &policy_yaml(None, "orders", "c1"));
    let state = dir.join("missing").join("state.json");
    let err = FileStore::open(&state, policies(&dir)).err().expect("refused").to_string();
    assert!(err.contains("--state") && err.contains("does not exist") && err.contains("missing"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Captures log lines for one synchronous call.
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buf").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().expect("buf").clone()).expect("utf8");
    (out, text)
}

fn in_flight_status(to: u32) -> Value {
    json!({"currentSize": 4, "state": {"inFlight": {"from": 4, "to": to, "startedAt": "2026-11-22T04:59:00Z"}}})
}

/// Entries are matched with the loaded policies at open: one written for another target is
/// reset (its in-flight resize was the old cluster's), one without a target (an older file) is
/// kept and gets the target recorded, one whose policy is gone is kept with the time it was
/// first missed (dropped only after `ABSENT_GRACE`, see tests/it/controller_standalone.rs); the
/// first and last with a warning naming them.
#[tokio::test]
async fn state_entries_follow_their_targets_and_policies() {
    let dir = tempdir("hardening-entries");
    write(&dir, "moved.yaml", &policy_yaml(None, "moved", "c-new"));
    write(&dir, "legacy.yaml", &policy_yaml(None, "legacy", "c2"));
    let state = dir.join("state.json");
    let loaded = policies(&dir);
    let moved = loaded.iter().find(|p| p.metadata.name.as_deref() == Some("moved")).expect("moved");
    let old_target = target_identity(moved).replace("c-new", "c-old");
    let file = json!({"policies": {
        "default/moved": {"resourceVersion": 7, "target": old_target, "status": in_flight_status(8)},
        "default/legacy": {"resourceVersion": 3, "status": in_flight_status(6)},
        "default/deleted": {"resourceVersion": 2, "target": "bigtable p1/i1/c9", "status": in_flight_status(5)},
    }});
    std::fs::write(&state, serde_json::to_vec(&file).expect("json")).expect("write state");

    let (store, logs) = logs_of(|| FileStore::open(&state, loaded));
    let store = store.expect("open");
    let in_flight = |k: &str| {
        store.current(k).and_then(|sp| sp.status).and_then(|s| s.state).and_then(|s| s.in_flight).map(|f| f.to)
    };
    assert_eq!(in_flight("default/moved"), None, "the old target's in-flight resize is not carried over");
    assert_eq!(in_flight("default/legacy"), Some(6), "an entry without a target is kept");
    assert!(logs.contains("default/moved") && logs.contains("c-old") && logs.contains("c-new"), "{logs}");
    assert!(logs.contains("default/deleted") && logs.contains("WARN"), "{logs}");

    store.flush().await.expect("flush");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("read")).expect("json");
    let entries = on_disk["policies"].as_object().expect("policies");
    assert_eq!(entries["default/deleted"]["status"]["state"]["inFlight"]["to"], 5, "{on_disk}");
    assert!(entries["default/deleted"]["absentSince"].is_string(), "{on_disk}");
    assert_eq!(entries["default/legacy"]["target"], "bigtable p1/i1/c2", "{on_disk}");
    assert_eq!(entries["default/moved"]["target"], "bigtable p1/i1/c-new", "{on_disk}");
    assert!(entries["default/moved"]["status"]["state"].get("inFlight").is_none(), "{on_disk}");
    let _ = std::fs::remove_dir_all(&dir);
}

// === item 9: an intent is on disk before `write` returns, whatever else flushes ===

/// A flusher hammers `flush` (as the periodic task does) while intents are written; after every
/// intent's `write` returns, the file on disk already carries it. Before, a flush that had just
/// cleared the dirty flag made the intent's own flush return at once, before anything was
/// written.
#[test]
fn intent_is_durable_when_write_returns_despite_concurrent_flushes() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempdir("hardening-durable");
        write(&dir, "orders.yaml", &policy_yaml(None, "orders", "c1"));
        write(&dir, "other.yaml", &policy_yaml(None, "other", "c2"));
        let state = dir.join("state.json");
        let store = Arc::new(FileStore::open(&state, policies(&dir)).expect("open"));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut flushers = Vec::new();
        // Flushers spin (nothing else changes the state), so one of them is likely to look at the
        // state between an intent's change and the intent's own flush.
        for _ in 0..3 {
            let store = store.clone();
            let stop = stop.clone();
            flushers.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store.flush().await.expect("flush");
                    tokio::task::yield_now().await;
                }
            }));
        }
        let sp = store.current("default/orders").expect("orders");
        // A fixed number of rounds, not a time budget: the race is the same on a slow machine.
        let mut rounds = 0;
        while rounds < 100 {
            rounds += 1;
            let to = 3 + (rounds % 2000);
            let mut st = ebbflow::core::PolicyState::default();
            st.begin_resize(3, to, None, now());
            let status = Arc::new(ScalePolicyStatus { current_size: Some(3), state: Some(st), ..Default::default() });
            store.write(&sp, &status, None).await.expect("intent");
            let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("read")).expect("json");
            assert_eq!(
                on_disk["policies"]["default/orders"]["status"]["state"]["inFlight"]["to"], to,
                "round {rounds}: write returned before the intent reached the disk"
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for f in flushers {
            f.await.expect("flusher");
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}

// === item 12: shutdown within a deadline ===

/// Backends where policy `c1`'s resize never returns (a Google call that hangs); everything
/// else is the ordinary fake.
#[derive(Clone)]
struct HangingResize {
    spiky: Fake,
    calm: Fake,
    resizing: Arc<tokio::sync::Notify>,
}

enum Either {
    Hangs(Fake, Arc<tokio::sync::Notify>),
    Calm(Fake),
}

impl MetricSource for HangingResize {
    async fn fetch(
        &self,
        q: &MetricQuery,
        after: ebbflow::core::Ts,
        until: ebbflow::core::Ts,
    ) -> Result<Series, AdapterError> {
        if q.monitoring().is_some_and(|m| m.filter.contains("\"c1\"")) {
            self.spiky.fetch(q, after, until).await
        } else {
            self.calm.fetch(q, after, until).await
        }
    }
}

impl ScaleTarget for Either {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        match self {
            Either::Hangs(f, _) | Either::Calm(f) => f.observe().await,
        }
    }
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        match self {
            Either::Hangs(_, resizing) => {
                resizing.notify_one();
                std::future::pending().await
            }
            Either::Calm(f) => f.resize(to).await,
        }
    }
    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        match self {
            Either::Hangs(f, _) | Either::Calm(f) => f.operation(name).await,
        }
    }
}

impl Backends for HangingResize {
    type Source = HangingResize;
    type Target = Either;
    fn source(&self) -> &HangingResize {
        self
    }
    fn target(&self, _ns: &str, target: &TargetRef) -> Result<Either, AdapterError> {
        match target {
            TargetRef::BigtableCluster(b) if b.cluster == "c1" => {
                Ok(Either::Hangs(self.spiky.clone(), self.resizing.clone()))
            }
            _ => Ok(Either::Calm(self.calm.clone())),
        }
    }
}

/// Shutdown while a resize call hangs: `run_policies_with_grace` returns within the grace (plus
/// a margin), the hanging tick is abandoned, and the state file is flushed: the intent is on
/// disk, and so is a status change made just before the signal (which only the final flush
/// writes in so short a run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_a_hanging_tick_after_the_grace_and_flushes() {
    let dir = tempdir("hardening-grace");
    write(&dir, "spiky.yaml", &policy_yaml(None, "spiky", "c1"));
    write(&dir, "calm.yaml", &policy_yaml(None, "calm", "c2"));
    let state = dir.join("state.json");
    let backends = HangingResize { spiky: Fake::default(), calm: Fake::default(), resizing: Arc::default() };
    {
        let mut w = backends.spiky.world();
        w.size = 4;
        w.samples = trace(0.5, 1.6, 3);
    }
    {
        let mut w = backends.calm.world();
        w.size = 4;
        w.samples = trace(0.5, 0.5, 0);
    }
    let resizing = backends.resizing.clone();
    let engine = Arc::new(
        Engine::new(
            backends,
            FileStore::open(&state, policies(&dir)).expect("open"),
            LogEvents,
            Leadership::always(),
            Arc::new(Metrics::default()),
        )
        .with_clock(Arc::new(now)),
    );
    let (stop, shutdown) = watch::channel(false);
    let grace = Duration::from_millis(500);
    let run = tokio::spawn(run_policies_with_grace(engine.clone(), shutdown, grace));
    tokio::time::timeout(Duration::from_secs(5), resizing.notified()).await.expect("the resize was sent");
    // Let the calm policy finish its first tick (its status waits for a flush).
    for _ in 0..200 {
        if engine.store.current("default/calm").and_then(|sp| sp.status).is_some_and(|s| s.last_decision.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A plain status change only a flush writes (the periodic one waits a second; this run is
    // shorter).
    let calm = engine.store.current("default/calm").expect("calm");
    let mut marked = calm.status.clone().unwrap_or_default();
    marked.current_size = Some(77);
    engine.store.write(&calm, &Arc::new(marked), None).await.expect("write");

    stop.send_replace(true);
    // A hang guard only (the call hangs for far longer): shutdown ends although a call hangs.
    let result = tokio::time::timeout(Duration::from_secs(60), run).await;
    result.expect("shutdown never finished: the hanging call kept it alive").expect("task").expect("flush");

    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("json");
    let spiky = &on_disk["policies"]["default/spiky"]["status"];
    assert!(spiky["state"]["inFlight"]["to"].as_u64().is_some_and(|to| to > 4), "intent on disk: {spiky}");
    let calm = &on_disk["policies"]["default/calm"]["status"];
    assert_eq!(calm["currentSize"], 77, "the final flush wrote the last status: {calm}");
    let _ = std::fs::remove_dir_all(&dir);
}
