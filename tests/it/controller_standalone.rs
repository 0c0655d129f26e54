//! Standalone mode: policies from YAML files, state in a local JSON file, the same engine.

use crate::controller_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use controller_support::*;
use ebbflow::adapters::OperationStatus;
use ebbflow::controller::events::LogEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::standalone::{
    FileStore, POLICY_FILE_INVALID, RESTART_AFTER, run_policies, run_policies_watching,
};
use ebbflow::controller::{Engine, StatusStore, StoreError};
use ebbflow::core::{Dur, Ts};
use ebbflow::policyfiles::load_dir;
use ebbflow::policyfiles::write_atomically;
use serde_json::Value;
use tokio::sync::watch;

const VALID: &str = r#"
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: orders
spec:
  target:
    bigtableCluster: {project: p1, instance: i1, cluster: c1}
  minSize: 2
  maxSize: 20
  interval: 60s
  metrics:
    - name: cpu
      target: 0.5
      query:
        filter: metric.type="bigtable.googleapis.com/cluster/cpu_load"
"#;

const INVALID: &str = r#"
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: broken
  namespace: team-b
spec:
  target:
    gkeNodePool: {project: p1, location: us-central1, cluster: k1, nodePool: pool}
  minSize: 9
  maxSize: 3
  metrics:
    - name: cpu
      target: 0.5
      query:
        filter: x
"#;

fn write_policies(dir: &Path) {
    std::fs::write(dir.join("policies/orders.yaml"), VALID).expect("write");
    std::fs::write(dir.join("policies/broken.yml"), INVALID).expect("write");
    std::fs::write(dir.join("policies/README.md"), "not a policy").expect("write");
}

fn engine(store: FileStore, fake: &Fake, at: Ts) -> Arc<Engine<FakeBackends, FileStore, LogEvents>> {
    Arc::new(
        Engine::new(FakeBackends(fake.clone()), store, LogEvents, Leadership::always(), Arc::new(Metrics::default()))
            .with_clock(Arc::new(move || at)),
    )
}

/// Run until `done` holds for the store (polling), then shut down and wait for the flush.
async fn run_until(engine: Arc<Engine<FakeBackends, FileStore, LogEvents>>, done: impl Fn(&FileStore) -> bool) {
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(run_policies(engine.clone(), shutdown));
    for _ in 0..200 {
        if done(&engine.store) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(done(&engine.store), "the policies were not evaluated in time");
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("shutdown").expect("task").expect("flush");
}

fn status_of(store: &FileStore, key: &str) -> Option<Value> {
    store.current(key).and_then(|sp| sp.status).map(|s| serde_json::to_value(s).expect("json"))
}

/// A restart in the middle of a resize operation: the first process starts the resize and
/// records it in the state file; the second process, started from that file, checks the
/// operation, finds it done and sends no second resize. The invalid policy gets its InvalidSpec
/// condition without stopping the valid one.
#[tokio::test]
async fn standalone_restart_resumes_from_the_state_file() {
    let dir = tempdir("restart");
    write_policies(&dir);
    let state = dir.join("state.json");
    let fake = Fake::default();
    {
        let mut w = fake.world();
        w.size = 4;
        w.samples = trace(0.5, 1.6, 3);
        w.resize_operation = Some("operations/op-1".into());
    }

    let policies = load_dir(&dir.join("policies")).expect("load");
    assert_eq!(policies.len(), 2, "README.md is not a policy");
    let e1 = engine(FileStore::open(&state, policies).expect("open"), &fake, now());
    run_until(e1, |s| {
        status_of(s, "default/orders").is_some_and(|v| v["lastDecision"].is_object() && v.get("operation").is_some())
            && status_of(s, "team-b/broken").is_some()
    })
    .await;
    assert_eq!(fake.world().resizes, vec![8]);

    // The file on disk (not the in-memory copy) carries everything the next process needs.
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("json");
    let orders = &on_disk["policies"]["default/orders"]["status"];
    assert_eq!(orders["state"]["inFlight"]["operation"], "operations/op-1", "{orders}");
    assert_eq!(orders["operation"], "operations/op-1");
    let broken = &on_disk["policies"]["team-b/broken"]["status"];
    assert_eq!(condition(broken, "Ready")["reason"], "InvalidSpec");
    assert!(
        std::fs::read_dir(&dir).expect("dir").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .contains(".tmp"))
    );

    // The operation finishes while no controller runs; a new process starts a minute later.
    fake.world().operations.insert("operations/op-1".into(), OperationStatus::Done);
    fake.world().size = 8;
    fake.world().busy = false;
    let later = now() + Dur::secs(61);
    // The spike is over: the new minute's sample is back to the old load, spread over 8 nodes.
    fake.world().samples.push(ebbflow::core::Sample { at: now() + Dur::secs(60), value: 0.25 });
    let policies = load_dir(&dir.join("policies")).expect("load");
    let e2 = engine(FileStore::open(&state, policies).expect("reopen"), &fake, later);
    run_until(e2, |s| status_of(s, "default/orders").is_some_and(|v| v["lastDecision"]["time"] == later.to_rfc3339()))
        .await;
    assert_eq!(fake.world().resizes, vec![8], "no second resize after the restart");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("json");
    let orders = &on_disk["policies"]["default/orders"]["status"];
    assert!(orders["state"].get("inFlight").is_none(), "{orders}");
    assert_eq!(orders["state"]["resizes"][0]["to"], 8);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The dashboard's view of a policy and the state file's entry hold one status between them, not
/// a copy each: with 1,000 policies the second copy (a day of history and the core's state, some
/// 15 KB a policy) was the controller's largest structure (`cargo bench --bench controller`).
#[tokio::test]
async fn the_dashboard_shows_the_stored_status_not_a_copy_of_it() {
    let dir = tempdir("shared-status");
    write_policies(&dir);
    let fake = Fake::default();
    {
        let mut w = fake.world();
        w.size = 4;
        w.samples = trace(0.5, 0.5, 3);
    }
    let policies = load_dir(&dir.join("policies")).expect("load");
    let e = engine(FileStore::open(&dir.join("state.json"), policies).expect("open"), &fake, now());
    let sp = Arc::new(e.store.current("default/orders").expect("loaded"));
    e.evaluate(sp, &e.store.peers()).await.expect("evaluate");
    let stored = e.store.status("default/orders").expect("stored");
    assert!(stored.last_decision.is_some(), "{stored:?}");
    let snapshots = e.snapshots.read().expect("snapshots");
    let shown = snapshots.get("default/orders").and_then(|s| s.status()).expect("on the dashboard");
    assert!(std::ptr::eq(&*stored, shown), "one status, shared");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A policy whose evaluation panics (a bug) is evaluated again after a wait, and the others never
/// stop: before, its task ended with a log line and the policy was never evaluated again while the
/// process ran. Paused time: the waits (1 s, then 2 s) pass without a wall clock.
#[tokio::test(start_paused = true)]
async fn a_policy_whose_evaluation_panics_is_started_again() {
    let dir = tempdir("panics");
    std::fs::write(dir.join("policies/orders.yaml"), VALID).expect("write");
    let fake = Fake::default();
    {
        let mut w = fake.world();
        w.size = 4;
        w.samples = trace(0.5, 0.5, 3);
        w.panics = 2;
    }
    let policies = load_dir(&dir.join("policies")).expect("load");
    let e = engine(FileStore::open(&dir.join("state.json"), policies).expect("open"), &fake, now());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(run_policies(e.clone(), shutdown));
    let began = tokio::time::Instant::now();
    eventually("a decision after two panics", || {
        status_of(&e.store, "default/orders").is_some_and(|v| v["lastDecision"].is_object())
    })
    .await;
    assert_eq!(fake.world().panics, 0, "both panics happened");
    assert!(fake.world().observes >= 3, "observed again after each panic");
    assert!(began.elapsed() >= RESTART_AFTER * 3, "waited 1 s, then 2 s: {:?}", began.elapsed());
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("shutdown").expect("task").expect("flush");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The file store honours resourceVersion preconditions like the API server, and replaces the
/// file atomically.
#[tokio::test]
async fn file_store_preconditions_and_atomic_replace() {
    let dir = tempdir("store");
    write_policies(&dir);
    let state = dir.join("state.json");
    let store = FileStore::open(&state, load_dir(&dir.join("policies")).expect("load")).expect("open");
    let sp = store.current("default/orders").expect("loaded");
    assert_eq!(sp.metadata.resource_version.as_deref(), Some("0"));
    let status = Arc::new(ebbflow::api::ScalePolicyStatus { current_size: Some(3), ..Default::default() });
    let rv = store.write(&sp, &status, Some("0")).await.expect("write");
    assert_eq!(rv.as_deref(), Some("1"));
    assert_eq!(store.write(&sp, &status, Some("0")).await, Err(StoreError::Conflict));
    // A plain status change waits for the periodic flush...
    assert!(!state.exists());
    // ...but a resize intent is on disk before the write returns.
    let mut intent = ebbflow::core::PolicyState::default();
    intent.begin_resize(3, 5, None, now());
    let status =
        Arc::new(ebbflow::api::ScalePolicyStatus { current_size: Some(3), state: Some(intent), ..Default::default() });
    store.write(&sp, &status, Some("1")).await.expect("intent");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("file")).expect("json");
    assert_eq!(on_disk["policies"]["default/orders"]["status"]["state"]["inFlight"]["to"], 5);
    let reread = store.reread(&sp).await.expect("reread");
    assert_eq!(reread.metadata.resource_version.as_deref(), Some("2"));

    // One store per state file: the lock goes with the first store.
    drop(store);
    write_atomically(&state, b"{\"policies\":{}}").expect("replace");
    assert_eq!(std::fs::read_to_string(&state).expect("read"), "{\"policies\":{}}");
    std::fs::write(&state, b"not json").expect("write");
    let err = FileStore::open(&state, Vec::new()).err().expect("corrupt file is refused");
    assert!(err.to_string().contains("not an ebbflow state file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 29, item 2: a resize is in flight (the target shows READY with its old size, as
/// Bigtable does until the operation is done) when the policy's file gets a typo and the
/// controller restarts. The saved state is kept while the file does not parse, and once it is
/// fixed the next start follows the operation instead of sending the resize again. It used to
/// drop the entry at the restart with the typo, and the fixed policy resized a second time.
#[tokio::test]
async fn a_policy_file_with_a_typo_keeps_its_saved_state_and_the_resize_is_not_sent_twice() {
    use ebbflow::controller::standalone::ABSENT_GRACE;
    use ebbflow::policyfiles::load_dir_all;
    let dir = tempdir("typo");
    write_policies(&dir);
    let state = dir.join("state.json");
    let fake = Fake::default();
    {
        let mut w = fake.world();
        w.size = 4;
        w.samples = trace(0.5, 1.6, 3);
        w.resize_operation = Some("operations/op-1".into());
    }
    let e1 =
        engine(FileStore::open(&state, load_dir(&dir.join("policies")).expect("load")).expect("open"), &fake, now());
    run_until(e1, |s| status_of(s, "default/orders").is_some_and(|v| v.get("operation").is_some())).await;
    assert_eq!(fake.world().resizes, vec![8]);
    // READY with the old size while the operation runs.
    fake.world().busy = false;

    // A typo: the file no longer parses; the other policy still loads.
    std::fs::write(dir.join("policies/orders.yaml"), VALID.replace("minSize: 2", "minSize: [2")).expect("typo");
    let loaded = load_dir_all(&dir.join("policies")).expect("load");
    assert_eq!(loaded.unreadable.len(), 1, "{:?}", loaded.unreadable);
    assert!(loaded.unreadable[0].contains("orders.yaml"), "{:?}", loaded.unreadable);
    let later = now() + Dur::secs(60);
    let store = FileStore::open_dir(&state, loaded, later).expect("open with a typo");
    assert!(store.current("default/orders").is_none(), "the policy is not loaded");
    store.flush().await.expect("flush");
    drop(store);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    let kept = &on_disk["policies"]["default/orders"];
    assert_eq!(kept["status"]["state"]["inFlight"]["operation"], "operations/op-1", "{on_disk}");

    // Even far past the grace, an unreadable file keeps every absent entry.
    let much_later = later + ABSENT_GRACE + Dur::secs(3600);
    let store = FileStore::open_dir(&state, load_dir_all(&dir.join("policies")).expect("load"), much_later)
        .expect("open again");
    store.flush().await.expect("flush");
    drop(store);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    assert!(on_disk["policies"]["default/orders"].is_object(), "{on_disk}");

    // Fixed: the next start follows the operation, which is still running, and holds.
    std::fs::write(dir.join("policies/orders.yaml"), VALID).expect("fix");
    let fixed = later + Dur::secs(12);
    let before = fake.world().observes;
    let e2 = engine(
        FileStore::open_dir(&state, load_dir_all(&dir.join("policies")).expect("load"), fixed).expect("reopen"),
        &fake,
        fixed,
    );
    run_until(e2, |s| {
        fake.world().observes > before
            && status_of(s, "default/orders").is_some_and(|v| v["lastDecision"]["time"] == fixed.to_rfc3339())
    })
    .await;
    assert_eq!(fake.world().resizes, vec![8], "the resize in flight was sent again");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    let orders = &on_disk["policies"]["default/orders"];
    assert_eq!(orders["status"]["state"]["inFlight"]["operation"], "operations/op-1", "{orders}");
    assert!(orders.get("absentSince").is_none(), "{orders}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A policy removed on purpose (every file parses) keeps its entry through the grace, then loses
/// it; one that comes back within the grace has its state and no absence mark.
#[tokio::test]
async fn the_state_of_a_removed_policy_is_dropped_only_after_the_grace() {
    use ebbflow::controller::standalone::ABSENT_GRACE;
    use ebbflow::policyfiles::load_dir_all;
    let dir = tempdir("removed");
    write_policies(&dir);
    let state = dir.join("state.json");
    let store = FileStore::open(&state, load_dir(&dir.join("policies")).expect("load")).expect("open");
    let sp = store.current("default/orders").expect("loaded");
    let status = Arc::new(ebbflow::api::ScalePolicyStatus { current_size: Some(3), ..Default::default() });
    store.write(&sp, &status, None).await.expect("write");
    store.flush().await.expect("flush");
    drop(store);
    std::fs::remove_file(dir.join("policies/orders.yaml")).expect("remove");
    let on_disk =
        |state: &Path| -> Value { serde_json::from_slice(&std::fs::read(state).expect("state")).expect("json") };
    async fn open_at(state: &Path, dir: &Path, at: Ts) {
        let store = FileStore::open_dir(state, load_dir_all(&dir.join("policies")).expect("load"), at).expect("open");
        store.flush().await.expect("flush");
    }
    open_at(&state, &dir, now()).await;
    assert_eq!(on_disk(&state)["policies"]["default/orders"]["absentSince"], now().to_rfc3339());
    open_at(&state, &dir, now() + ABSENT_GRACE - Dur::secs(1)).await;
    assert_eq!(on_disk(&state)["policies"]["default/orders"]["status"]["currentSize"], 3, "kept within the grace");
    open_at(&state, &dir, now() + ABSENT_GRACE).await;
    assert!(on_disk(&state)["policies"].get("default/orders").is_none(), "dropped after the grace");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Poll `done` every 10 ms until it holds. The bound (10 s) only keeps a broken build from
/// hanging: the directory is looked at every 10 ms here and nothing waits for a policy's interval.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not seen");
}

/// Replace a policy file in one step (a reader never sees half of it).
fn put(policies: &Path, file: &str, text: &str) {
    write_atomically(&policies.join(file), text.as_bytes()).expect("write");
}

/// The Ready condition's reason and message in the stored status.
fn ready(store: &FileStore, k: &str) -> Option<(String, String)> {
    let status = status_of(store, k)?;
    let c = status["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?;
    Some((c["reason"].as_str()?.to_string(), c["message"].as_str()?.to_string()))
}

fn reason(store: &FileStore, k: &str) -> String {
    ready(store, k).map(|(r, _)| r).unwrap_or_default()
}

fn max_size(store: &FileStore, k: &str) -> Option<u32> {
    store.current(k).map(|sp| sp.spec.max_size)
}

fn observed(store: &FileStore, k: &str) -> Option<i64> {
    store.current(k).and_then(|sp| sp.status).and_then(|s| s.observed_generation)
}

/// Issue 28, item 3: the policy files are live while standalone mode runs. An added file starts
/// its policy; a changed one is evaluated at once in its new version (generation and status's
/// observedGeneration move; the clock here never reaches the next interval, so nothing else
/// would evaluate it); a file that stops parsing, then one that stops validating, keeps its last
/// good version running with Ready=False PolicyFileInvalid in status, in the state file and on
/// the dashboard; the fix is applied; a second file with a running policy's name is refused and
/// does not replace it; an invalid spec waiting for a change is evaluated again once its file is
/// fixed; a removed file stops its policy, which leaves the dashboard while its saved state is
/// kept with absentSince. Before, every file was read once at start.
#[tokio::test]
async fn policy_files_are_live_while_standalone_runs() {
    let dir = tempdir("live");
    write_policies(&dir);
    let policies = dir.join("policies");
    let state = dir.join("state.json");
    let fake = Fake::default();
    {
        let mut w = fake.world();
        w.size = 4;
        w.samples = trace(0.5, 0.5, 0);
    }
    let engine = engine(FileStore::open(&state, load_dir(&policies).expect("load")).expect("open"), &fake, now());
    let (stop, shutdown) = watch::channel(false);
    let task =
        tokio::spawn(run_policies_watching(engine.clone(), shutdown, policies.clone(), Duration::from_millis(10)));
    let store = &engine.store;
    eventually("first evaluations", || {
        reason(store, "default/orders") == "Reconciled" && reason(store, "team-b/broken") == "InvalidSpec"
    })
    .await;

    // Added.
    put(&policies, "extra.yaml", &bigtable_policy_yaml(None, "extra", "c2", 2));
    eventually("the added policy evaluated", || reason(store, "default/extra") == "Reconciled").await;

    // Changed.
    put(&policies, "orders.yaml", &VALID.replace("maxSize: 20", "maxSize: 9"));
    eventually("the changed policy evaluated", || observed(store, "default/orders") == Some(2)).await;
    assert_eq!(max_size(store, "default/orders"), Some(9));
    assert_eq!(store.current("default/orders").and_then(|sp| sp.metadata.generation), Some(2));

    // Broken: it no longer parses, then it no longer validates. The last good version runs on.
    put(&policies, "orders.yaml", &VALID.replace("maxSize: 20", "maxSize: [9"));
    eventually("the parse error in status", || reason(store, "default/orders") == POLICY_FILE_INVALID).await;
    let (_, message) = ready(store, "default/orders").expect("ready");
    assert!(message.contains("orders.yaml") && message.contains("last good version keeps running"), "{message}");
    assert_eq!(max_size(store, "default/orders"), Some(9), "the last good version runs");
    put(&policies, "orders.yaml", &VALID.replace("maxSize: 20", "maxSize: 1"));
    eventually("the rule broken in status", || {
        ready(store, "default/orders").is_some_and(|(r, m)| r == POLICY_FILE_INVALID && m.contains("maxSize"))
    })
    .await;
    assert_eq!(max_size(store, "default/orders"), Some(9), "the last good version runs");
    assert_eq!(store.current("default/orders").and_then(|sp| sp.metadata.generation), Some(2), "not an edit");
    // The dashboard and the state file (what `ebbflow status` reads) show it too.
    let shown = engine
        .snapshots
        .read()
        .expect("snapshots")
        .get("default/orders")
        .map(|s| s.policy())
        .expect("on the dashboard");
    let shown = serde_json::to_value(shown.status.expect("status")).expect("json");
    assert_eq!(condition(&shown, "Ready")["reason"], POLICY_FILE_INVALID, "{shown}");
    store.flush().await.expect("flush");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    let orders = &on_disk["policies"]["default/orders"]["status"];
    assert_eq!(condition(orders, "Ready")["reason"], POLICY_FILE_INVALID, "{orders}");

    // Fixed.
    put(&policies, "orders.yaml", &VALID.replace("maxSize: 20", "maxSize: 12"));
    eventually("the fix evaluated", || {
        observed(store, "default/orders") == Some(3) && reason(store, "default/orders") == "Reconciled"
    })
    .await;
    assert_eq!(max_size(store, "default/orders"), Some(12));

    // A second file with the same name is refused; the running policy stays as it is.
    put(&policies, "dup.yaml", &VALID.replace("maxSize: 20", "maxSize: 5"));
    eventually("the duplicate in status", || {
        ready(store, "default/orders").is_some_and(|(r, m)| r == POLICY_FILE_INVALID && m.contains("dup.yaml"))
    })
    .await;
    let (_, message) = ready(store, "default/orders").expect("ready");
    assert!(message.contains("unique") && message.contains("dup.yaml is ignored"), "{message}");
    assert_eq!(max_size(store, "default/orders"), Some(12), "the duplicate did not replace it");
    std::fs::remove_file(policies.join("dup.yaml")).expect("remove");
    eventually("the duplicate gone", || reason(store, "default/orders") == "Reconciled").await;
    assert_eq!(max_size(store, "default/orders"), Some(12));

    // An invalid spec waits for its file to change, and is evaluated when it does.
    std::fs::write(policies.join("broken.yml"), INVALID.replace("maxSize: 3", "maxSize: 30")).expect("fix");
    eventually("the fixed invalid spec evaluated", || reason(store, "team-b/broken") == "Reconciled").await;

    // Removed.
    std::fs::remove_file(policies.join("extra.yaml")).expect("remove");
    eventually("the removed policy stopped", || {
        !store.contains("default/extra") && !engine.snapshots.read().expect("snapshots").contains_key("default/extra")
    })
    .await;
    store.flush().await.expect("flush");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    let extra = &on_disk["policies"]["default/extra"];
    assert_eq!(extra["absentSince"], now().to_rfc3339(), "its state is kept, marked absent: {extra}");
    assert!(extra["status"]["lastDecision"].is_object(), "{extra}");

    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("shutdown").expect("task").expect("flush");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tick that read a policy before its file changed (an edit, a pause added with
/// `ebbflow pause --file`, a removal) cannot write its intent: the resourceVersion moved with the
/// file, as the API server's does with an object, so the tick decides again from the new spec
/// (or, removed, sends nothing). Before, the stale tick's intent went through and its resize
/// was sent from the old spec.
#[tokio::test]
async fn a_policy_file_edited_during_a_tick_makes_the_ticks_intent_a_conflict() {
    use ebbflow::policyfiles::Resolved;
    let dir = tempdir("edited-mid-tick");
    write_policies(&dir);
    let state = dir.join("state.json");
    let store = FileStore::open(&state, load_dir(&dir.join("policies")).expect("load")).expect("open");
    let k = "default/orders";
    let sp = store.current(k).expect("loaded");
    let status = Arc::new(ebbflow::api::ScalePolicyStatus { current_size: Some(3), ..Default::default() });
    store.write(&sp, &status, Some("0")).await.expect("write");
    let stale = store.current(k).expect("loaded");
    let rv = stale.metadata.resource_version.clone().expect("rv");
    let mut intent = ebbflow::core::PolicyState::default();
    intent.begin_resize(3, 9, None, now());
    let intent =
        Arc::new(ebbflow::api::ScalePolicyStatus { current_size: Some(3), state: Some(intent), ..Default::default() });

    // The file is edited (maxSize 20 -> 5) while the tick runs.
    let mut edited = stale.clone();
    edited.spec.max_size = 5;
    edited.status = None;
    let others: Vec<_> =
        store.all().iter().filter(|p| ebbflow::controller::reconcile::key(p) != k).map(|p| (**p).clone()).collect();
    let mut next = Resolved::default();
    for p in others.into_iter().chain([edited]) {
        next.policies.insert(ebbflow::controller::reconcile::key(&p), p);
    }
    let changes = store.replace(next.clone(), now());
    assert_eq!(changes.changed, [k.to_string()]);
    assert_eq!(store.write(&stale, &intent, Some(&rv)).await, Err(StoreError::Conflict), "the stale intent");
    let fresh = store.current(k).expect("loaded");
    assert_eq!(fresh.spec.max_size, 5);
    store.write(&fresh, &intent, fresh.metadata.resource_version.as_deref()).await.expect("decided again");

    // Removed while a tick runs: its intent conflicts, and the re-read finds no policy.
    let stale = store.current(k).expect("loaded");
    let rv = stale.metadata.resource_version.clone().expect("rv");
    next.policies.remove(k);
    store.replace(next, now());
    assert_eq!(store.write(&stale, &intent, Some(&rv)).await, Err(StoreError::Conflict));
    assert!(store.reread(&stale).await.is_err(), "a removed policy is not re-read");
    let _ = std::fs::remove_dir_all(&dir);
}
