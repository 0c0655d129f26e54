//! The `ebbflow` binary at start-up and shutdown (issue #10): mistakes stop the start with a
//! message naming the flag or file, before any work; a second process on one state file is
//! refused; SIGTERM ends the process within `--shutdown-grace` even when a Google call hangs.
//! Every Google endpoint given is on 127.0.0.1.

use crate::controller_support;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use controller_support::{bigtable_policy_yaml, tempdir};
use ebbflow::gcp::fake::{Endpoint, FakeGcp, Fault};

fn bigtable_policy(ns: Option<&str>, name: &str, cluster: &str) -> String {
    bigtable_policy_yaml(ns, name, cluster, 1)
}

const GKE_POLICY: &str = r#"apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: pool
spec:
  target:
    gkeNodePool: {project: p1, location: us-central1-a, cluster: k1, nodePool: np}
  minSize: 1
  maxSize: 20
  interval: 60s
  metrics:
    - name: cpu
      target: 0.5
      query:
        filter: metric.type="kubernetes.io/node/cpu/allocatable_utilization"
"#;

fn ebbflow(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ebbflow"));
    c.args(args)
        .env_remove("EBBFLOW_LISTEN")
        .env_remove("EBBFLOW_GCP_ENDPOINT")
        .env_remove("EBBFLOW_SHUTDOWN_GRACE")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// How long a process may take to do what it does at once before it counts as hung. A hang
/// guard, not a measure of speed: a slow machine only uses more of it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Wait for `child` at most `limit`; kill it if it is still running then.
fn wait_bounded(mut child: Child, limit: Duration) -> (Option<ExitStatus>, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// Run to completion (at most [`HANG_GUARD`]): the exit status (None: still running, killed) and
/// stderr.
fn run(args: &[&str]) -> (Option<ExitStatus>, String) {
    wait_bounded(ebbflow(args).spawn().expect("spawn ebbflow"), HANG_GUARD)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Assert a refused start: it exited (did not keep running), non-zero, and said `needles`.
fn assert_refused(what: &str, (status, stderr): (Option<ExitStatus>, String), needles: &[&str]) {
    let status = status.unwrap_or_else(|| panic!("{what}: still running after {HANG_GUARD:?}; stderr: {stderr}"));
    assert!(!status.success(), "{what}: exited 0; stderr: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{what}: stderr does not mention {n:?}: {stderr}");
    }
}

// === item 7 in `validate` ===

/// `ebbflow validate a.yaml b.yaml` with the same namespace/name reports the duplicate naming
/// both files, and fails.
#[test]
fn validate_reports_duplicate_names_naming_both_files() {
    let dir = tempdir("startup-validate-dup");
    let a = dir.join("policies/a.yaml");
    let b = dir.join("policies/b.yaml");
    std::fs::write(&a, bigtable_policy(None, "orders", "c1")).expect("write");
    std::fs::write(&b, bigtable_policy(Some("default"), "orders", "c2")).expect("write");
    assert_refused("validate", run(&["validate", &s(&a), &s(&b)]), &[&s(&a), &s(&b), "default/orders"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An invalid name is reported with its field and rule.
#[test]
fn validate_reports_invalid_names_with_field_and_rule() {
    let dir = tempdir("startup-validate-name");
    let a = dir.join("policies/a.yaml");
    std::fs::write(&a, bigtable_policy(None, "team/orders", "c1")).expect("write");
    assert_refused("validate", run(&["validate", &s(&a)]), &[&s(&a), "metadata.name", "RFC 1123 DNS subdomain"]);
    let _ = std::fs::remove_dir_all(&dir);
}

// === item 13: start-up checks ===

/// `--state` in a directory that does not exist stops the start (it used to run and log an
/// error every second).
#[test]
fn run_refuses_a_state_file_in_a_missing_directory() {
    let dir = tempdir("startup-nodir");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    let state = dir.join("no-such-dir/state.json");
    let out = run(&[
        "run",
        "--policies",
        &s(&dir.join("policies")),
        "--state",
        &s(&state),
        "--listen",
        "127.0.0.1:0",
        "--gcp-endpoint",
        "http://127.0.0.1:9",
    ]);
    assert_refused("missing state directory", out, &["--state", "no-such-dir", "does not exist"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--gcp-endpoint not-a-url` is refused naming the flag and what is expected.
#[test]
fn run_refuses_a_gcp_endpoint_that_is_not_an_http_url() {
    let dir = tempdir("startup-endpoint");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    let out = run(&[
        "run",
        "--policies",
        &s(&dir.join("policies")),
        "--state",
        &s(&dir.join("state.json")),
        "--listen",
        "127.0.0.1:0",
        "--gcp-endpoint",
        "not-a-url",
    ]);
    assert_refused("bad endpoint", out, &["--gcp-endpoint", "not-a-url", "http://"]);
    assert!(!dir.join("state.json").exists(), "no work was done");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `--listen` port that is taken stops the start (it was only logged at shutdown), and no
/// policy was evaluated: the state file was not written.
#[test]
fn run_refuses_a_listen_address_in_use() {
    let dir = tempdir("startup-listen");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = run(&[
        "run",
        "--policies",
        &s(&dir.join("policies")),
        "--state",
        &s(&dir.join("state.json")),
        "--listen",
        &addr,
        "--gcp-endpoint",
        "http://127.0.0.1:9",
    ]);
    assert_refused("listen in use", out, &["--listen", &addr, "address in use"]);
    assert!(!dir.join("state.json").exists(), "no policy was evaluated");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without `--listen`, the server binds loopback only (the dashboard has no authentication).
#[test]
fn default_listen_is_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_ebbflow")).args(["run", "--help"]).output().expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
}

// === item 8 (a): one process per state file ===

/// A second `ebbflow run --state same.json` exits at start-up naming the file and the first
/// process's pid; the first keeps running.
#[test]
fn second_instance_on_the_same_state_file_is_refused() {
    let dir = tempdir("startup-two");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    let state = dir.join("same.json");
    let args = [
        "run",
        "--policies",
        &s(&dir.join("policies")),
        "--state",
        &s(&state),
        "--listen",
        "127.0.0.1:0",
        "--gcp-endpoint",
        "http://127.0.0.1:9",
    ];
    let mut first = ebbflow(&args).stderr(Stdio::null()).spawn().expect("spawn first");
    let pid = first.id();
    wait_for_lock(&dir.join("same.json.lock"), pid, &mut first);
    let out = run(&args);
    let first_alive = first.try_wait().expect("wait").is_none();
    let _ = first.kill();
    let _ = first.wait();
    assert_refused("second instance", out, &[&s(&state), &format!("pid {pid}"), "in use"]);
    assert!(first_alive, "the first instance kept running");
    let _ = std::fs::remove_dir_all(&dir);
}

// === item 12: SIGTERM within the grace ===

/// SIGTERM while a Google call hangs (the fake delays Bigtable's GetCluster 600 s, far beyond
/// the 1 s grace): the process exits 0, says it abandoned that policy's tick after the grace, and
/// the other policy's status stays in the state file. What shows the grace was applied is the
/// abandoned tick in the log, not a stopwatch: a process that waited for the call instead would
/// log no such line (and take minutes, which the hang guard stops). The grace's own timing is
/// tested on a paused clock (`controller::tests::work_is_bounded_by_the_grace_after_the_signal`).
#[cfg(unix)]
#[test]
fn sigterm_exits_within_the_grace_while_a_google_call_hangs() {
    let fake = FakeGcp::start_on_thread().expect("fake");
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    fake.add_node_pool("p1", "us-central1-a", "k1", "np", 3, &["us-central1-a"]);
    fake.inject(Endpoint::GetCluster, Fault::Delay(Duration::from_secs(600)), 1000);
    let dir = tempdir("startup-sigterm");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    std::fs::write(dir.join("policies/pool.yaml"), GKE_POLICY).expect("write");
    let state = dir.join("state.json");
    // The JSON log goes to stdout; a file, so that a long log can never block the process.
    let log = dir.join("stdout.log");
    let endpoint = fake.endpoint();
    let child = ebbflow(&[
        "run",
        "--policies",
        &s(&dir.join("policies")),
        "--state",
        &s(&state),
        "--listen",
        "127.0.0.1:0",
        "--gcp-endpoint",
        &endpoint,
        "--shutdown-grace",
        "1s",
    ])
    .stdout(std::fs::File::create(&log).expect("log file"))
    .spawn()
    .expect("spawn");
    // Wait until the hanging call is in progress and the other policy's status has been saved
    // (a hang guard bounds the wait; it is not a measure of speed).
    let pool_saved = || {
        std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["policies"]["default/pool"]["status"].is_object())
    };
    let started = Instant::now();
    while fake.requests_to(Endpoint::GetCluster).is_empty() || !pool_saved() {
        assert!(started.elapsed() < HANG_GUARD, "the policies were never evaluated");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(kill.success());
    // The hanging call takes 600 s: a process that waited for it instead of abandoning it after
    // the grace would still be running when the guard stops it.
    let (status, stderr) = wait_bounded(child, HANG_GUARD);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("still running {HANG_GUARD:?} after SIGTERM with a 1 s grace; stderr: {stderr}; log: {logged}")
    });
    assert!(status.success(), "{status:?}: {stderr}");
    let abandoned = logged
        .lines()
        .find(|l| l.contains("abandoning ticks still running after the grace period"))
        .unwrap_or_else(|| panic!("no tick was abandoned after the grace: {logged}"));
    assert!(abandoned.contains("default/orders"), "the hanging policy's tick was the one abandoned: {abandoned}");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("the state file was written")).expect("json");
    assert!(on_disk["policies"]["default/pool"]["status"].is_object(), "{on_disk}");
    let _ = std::fs::remove_dir_all(&dir);
}

// === issue 29, item 1: Kubernetes metrics in standalone mode ===

/// An API server on 127.0.0.1 that answers every request with an empty list and records the
/// request lines, enough for a client to start listing.
fn tiny_api_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            log.lock().expect("log").push(line.trim().to_string());
            // Skip the headers; a GET has no body.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let body =
                r#"{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"1"},"items":[]}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

/// A Bigtable policy with a metric read from a Deployment: standalone mode builds the
/// Kubernetes client from `KUBECONFIG` and reads the Deployment (it built a client only for
/// workload targets, so the metric was "missing data" forever and the cluster held under load).
#[test]
fn standalone_reads_kubernetes_metrics_of_a_bigtable_policy_through_kubeconfig() {
    let fake = FakeGcp::start_on_thread().expect("fake");
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    let (server, seen) = tiny_api_server();
    let dir = tempdir("startup-kubemetric");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {{server: \"{server}\"}}\n\
             contexts:\n- name: t\n  context: {{cluster: t, user: u, namespace: default}}\n\
             current-context: t\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .expect("write");
    let policy = format!(
        "{}    - name: subscribers\n      kind: total\n      target: 8\n      kubernetes:\n        replicas: \
         {{apiVersion: apps/v1, kind: Deployment, name: subscriber}}\n",
        bigtable_policy(None, "orders", "c1")
    );
    std::fs::write(dir.join("policies/orders.yaml"), policy).expect("write");
    let endpoint = fake.endpoint();
    let mut child = ebbflow(&[
        "run",
        "--policies",
        &s(&dir.join("policies")),
        "--state",
        &s(&dir.join("state.json")),
        "--listen",
        "127.0.0.1:0",
        "--gcp-endpoint",
        &endpoint,
    ])
    .env("KUBECONFIG", &kubeconfig)
    .env_remove("KUBERNETES_SERVICE_HOST")
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn");
    let started = Instant::now();
    let read = loop {
        let lines = seen.lock().expect("seen").clone();
        if let Some(l) = lines.iter().find(|l| l.contains("/apis/apps/v1/namespaces/default/deployments")) {
            break Some(l.clone());
        }
        if started.elapsed() > HANG_GUARD {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let read = read.unwrap_or_else(|| {
        panic!(
            "the API server named by KUBECONFIG was never asked for the Deployment: {:?}",
            seen.lock().expect("seen")
        )
    });
    assert!(read.starts_with("GET "), "{read}");
}

// === issue 29, item 3: one writer per state file, however it is named ===

/// Wait until `lock` holds `pid` (the process took the lock), at most [`HANG_GUARD`].
fn wait_for_lock(lock: &Path, pid: u32, child: &mut Child) {
    let started = Instant::now();
    while std::fs::read_to_string(lock).map(|t| t.trim() != pid.to_string()).unwrap_or(true) {
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the instance never took the lock at {}", lock.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_args(dir: &Path, state: &Path, endpoint: &str) -> Vec<String> {
    ["run", "--policies", &s(&dir.join("policies")), "--state", &s(state), "--listen", "127.0.0.1:0"]
        .into_iter()
        .map(String::from)
        .chain(["--gcp-endpoint".to_string(), endpoint.to_string()])
        .collect()
}

/// `--state alias.json`, a symlink to the file another process uses, is refused (both resized
/// before), and the first process's writes go through the symlink: it stays a symlink.
#[cfg(unix)]
#[test]
fn a_symlink_to_a_state_file_in_use_is_refused_and_stays_a_symlink() {
    let fake = FakeGcp::start_on_thread().expect("fake");
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    let dir = tempdir("startup-symlink");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    let real = dir.join("s.json");
    let alias = dir.join("alias.json");
    std::os::unix::fs::symlink("s.json", &alias).expect("symlink");
    let endpoint = fake.endpoint();
    let first_args = run_args(&dir, &alias, &endpoint);
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let mut first = ebbflow(&first_args).stderr(Stdio::null()).spawn().expect("spawn first");
    let pid = first.id();
    wait_for_lock(&dir.join("s.json.lock"), pid, &mut first);
    // The first evaluation's status reaches the file the symlink names.
    let started = Instant::now();
    while !real.exists() && started.elapsed() < HANG_GUARD {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second_args = run_args(&dir, &real, &endpoint);
    let second_args: Vec<&str> = second_args.iter().map(String::as_str).collect();
    let out = run(&second_args);
    let first_alive = first.try_wait().expect("wait").is_none();
    let _ = first.kill();
    let _ = first.wait();
    assert_refused("the state file through its real name", out, &[&format!("pid {pid}"), "in use"]);
    assert!(first_alive, "the first instance kept running");
    assert!(real.exists(), "the state was written to the file the symlink names");
    assert!(std::fs::symlink_metadata(&alias).expect("alias").file_type().is_symlink(), "the symlink was replaced");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lock file deleted under a running instance is taken again by it, so a second instance
/// started afterwards is still refused (it started and resized before).
#[cfg(unix)]
#[test]
fn a_lock_file_deleted_under_a_running_instance_still_keeps_a_second_out() {
    let fake = FakeGcp::start_on_thread().expect("fake");
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    let dir = tempdir("startup-lockgone");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    let state = dir.join("s.json");
    let args = run_args(&dir, &state, &fake.endpoint());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = ebbflow(&args).stderr(Stdio::null()).spawn().expect("spawn first");
    let pid = first.id();
    let lock = dir.join("s.json.lock");
    wait_for_lock(&lock, pid, &mut first);
    std::fs::remove_file(&lock).expect("delete the lock");
    // The periodic check (every second) locks it again.
    wait_for_lock(&lock, pid, &mut first);
    let out = run(&args);
    let first_alive = first.try_wait().expect("wait").is_none();
    let _ = first.kill();
    let _ = first.wait();
    assert_refused("second instance after the lock was deleted", out, &[&format!("pid {pid}"), "in use"]);
    assert!(first_alive, "the first instance kept running");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lock file deleted and at once taken by a second instance: whichever way the race goes,
/// exactly one of the two ends up running, holding the lock (both ran on before).
#[cfg(unix)]
#[test]
fn a_lock_file_deleted_and_taken_by_a_second_instance_leaves_one_running() {
    let fake = FakeGcp::start_on_thread().expect("fake");
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    let dir = tempdir("startup-locktaken");
    std::fs::write(dir.join("policies/orders.yaml"), bigtable_policy(None, "orders", "c1")).expect("write");
    let state = dir.join("s.json");
    let args = run_args(&dir, &state, &fake.endpoint());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = ebbflow(&args).stderr(Stdio::null()).spawn().expect("spawn first");
    wait_for_lock(&dir.join("s.json.lock"), first.id(), &mut first);
    std::fs::remove_file(dir.join("s.json.lock")).expect("delete the lock");
    let mut second = ebbflow(&args).spawn().expect("spawn second");
    // Settled when one has exited (the first on finding its lock taken, or the second refused)
    // and the lock names the other: counted, not timed (a hang guard bounds the wait).
    let lock = dir.join("s.json.lock");
    let started = Instant::now();
    let (first_running, second_running) = loop {
        let first_running = first.try_wait().expect("wait").is_none();
        let second_running = second.try_wait().expect("wait").is_none();
        let holder = std::fs::read_to_string(&lock).unwrap_or_default();
        let survivor = if first_running { first.id() } else { second.id() };
        let settled = first_running != second_running && holder.trim() == survivor.to_string();
        if settled || !(first_running || second_running) || started.elapsed() > HANG_GUARD {
            break (first_running, second_running);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for c in [&mut first, &mut second] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let mut err = String::new();
    if let Some(mut e) = second.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(first_running != second_running, "first running: {first_running}, second running: {second_running}; {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
