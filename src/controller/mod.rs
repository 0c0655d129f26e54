//! `ebbflow run`: the controller. One loop, two homes:
//!
//! - **in a cluster** ([`cluster::run`]): a kube-rs `Controller` over `ScalePolicy`, state in
//!   `.status.state`, Events through `events.k8s.io/v1`, leader election on a Lease;
//! - **standalone** ([`standalone::run`]): policies from YAML files, state in a local JSON file.
//!
//! Both call [`reconcile::Engine::evaluate`], which calls [`crate::tick::tick_with_guard`]: the
//! decision logic lives in the core and the tick only. The conflict rule (one policy per target)
//! and the write fence before a resize are in [`fence`].
//!
//! ```text
//!  ScalePolicy ─► validate ─► conflict check ─► tick: observe, gather, decide
//!                                                  │ resize wanted (Enforce)?
//!                                                  ▼
//!                       fence: still leader? write intent to status (resourceVersion precondition)
//!                                                  │ ok             │ 409 / not leader
//!                                                  ▼                ▼
//!                                       resize (absolute size)   send nothing; re-read, re-decide
//!                                                  ▼
//!                                   status (server-side apply), Events, metrics
//! ```

pub mod backends;
pub mod cluster;
pub mod events;
pub mod fence;
pub mod http;
pub mod known;
pub mod kubemetrics;
pub mod leader;
pub mod members;
pub mod metrics;
pub mod reconcile;
pub mod shards;
pub mod standalone;
pub mod status;
pub mod workload;

pub use reconcile::{Backends, Engine, Next, StatusStore, StoreError};

/// The field manager for server-side apply of status.
pub const FIELD_MANAGER: &str = "ebbflow";

/// The name of the leader-election Lease.
pub const LEASE_NAME: &str = "ebbflow-leader";

/// Every `(apiGroup, resource, verb)` the controller's code calls on the Kubernetes API, in one
/// place. `deploy/rbac.yaml` must grant exactly these (a test compares them).
pub const RBAC: &[(&str, &str, &str)] = &[
    // The Controller's watch, and the re-read after a 409 on a status write.
    ("ebbflow.dev", "scalepolicies", "get"),
    ("ebbflow.dev", "scalepolicies", "list"),
    ("ebbflow.dev", "scalepolicies", "watch"),
    // Server-side apply of status is a PATCH on the status subresource.
    ("ebbflow.dev", "scalepolicies/status", "patch"),
    // kube's Recorder creates an Event and patches it into a series when it repeats.
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
    // kube-lease-manager reads, creates and applies (PATCH) the Lease; with shards
    // (`controller::shards`) the replicas also list them, and delete the presence Leases of pods
    // long gone.
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "list"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "patch"),
    ("coordination.k8s.io", "leases", "delete"),
    // Workload targets: read and merge-patch the /scale subresource.
    ("apps", "deployments/scale", "get"),
    ("apps", "deployments/scale", "patch"),
    ("apps", "statefulsets/scale", "get"),
    ("apps", "statefulsets/scale", "patch"),
    // gkeNodePool drains (`gcp::drain`): find the pool's nodes, cordon and taint them (merge
    // patch), re-read one before noting its VM's deletion, list the pods on each, evict them.
    ("", "nodes", "get"),
    ("", "nodes", "list"),
    ("", "nodes", "patch"),
    ("", "pods/eviction", "create"),
    // ...and read kube-system's disruption budgets (a system pod without one keeps its node).
    ("policy", "poddisruptionbudgets", "list"),
    // Kubernetes metrics (`controller::kubemetrics`): watch caches of what they read, no get;
    // drains list the pods on a node too.
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("apps", "deployments", "list"),
    ("apps", "deployments", "watch"),
    ("apps", "statefulsets", "list"),
    ("apps", "statefulsets", "watch"),
];

/// Check a `--gcp-endpoint` value: an `http://` or `https://` URL with a host. Without this, a
/// typo surfaced later as an unrelated client error on every call.
pub fn check_gcp_endpoint(url: &str) -> Result<(), String> {
    let problem = match url.parse::<axum::http::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(host)) if !host.is_empty() => None,
            (Some("http" | "https"), _) => Some("it has no host"),
            _ => Some("it does not start with http:// or https://"),
        },
        Err(_) => Some("it is not a URL"),
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(format!(
            "--gcp-endpoint {url:?}: {why}; give an http:// or https:// URL with a host, e.g. http://127.0.0.1:8085 (or leave the flag out to use Google's endpoints)"
        )),
    }
}

/// Check `--export-monitoring PROJECT` at start: a Google Cloud project ID (6-30 lowercase
/// letters, digits and hyphens, starting with a letter, not ending with a hyphen; an older
/// domain-scoped ID such as `example.com:my-project` has a domain and a colon in front). A typo
/// otherwise surfaced only as a warning once a minute, with nothing exported.
pub fn check_project_id(project: &str) -> Result<(), String> {
    let id = match project.rsplit_once(':') {
        Some((domain, id))
            if !domain.is_empty()
                && domain.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-') =>
        {
            id
        }
        _ => project,
    };
    let b = id.as_bytes();
    let ok = (6..=30).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last().is_some_and(|&c| c != b'-')
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--export-monitoring {}: not a Google Cloud project ID (6 to 30 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen); give the project's ID, not its name or number, e.g. my-project-123",
            crate::excerpt::quoted(project)
        ))
    }
}

/// Drive `work` until it ends, or until `grace` has passed since `signal` resolved; whether `work`
/// ended by itself. `work` is expected to stop on the same signal (the kube-rs Controller's
/// `shutdown_on_signal`); this bounds how long it may take, so a call that hangs cannot keep the
/// process alive past its termination grace period.
pub async fn run_with_grace(
    work: impl std::future::Future<Output = ()>,
    signal: impl std::future::Future<Output = ()>,
    grace: std::time::Duration,
) -> bool {
    tokio::select! {
        () = work => true,
        () = async {
            signal.await;
            tokio::time::sleep(grace).await;
        } => false,
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work that stops on the signal by itself ends normally; work that hangs is dropped once the
    /// grace has passed after the signal, and not before.
    #[tokio::test(start_paused = true)]
    async fn work_is_bounded_by_the_grace_after_the_signal() {
        use std::time::Duration;
        use tokio::time::{Instant, sleep};
        let grace = Duration::from_secs(10);
        let started = Instant::now();
        assert!(run_with_grace(sleep(Duration::from_secs(3)), sleep(Duration::from_secs(1)), grace).await);
        assert_eq!(started.elapsed(), Duration::from_secs(3));

        let started = Instant::now();
        let hangs = std::future::pending::<()>();
        assert!(!run_with_grace(hangs, sleep(Duration::from_secs(5)), grace).await);
        assert_eq!(started.elapsed(), Duration::from_secs(15), "signal at 5 s + 10 s grace");

        // Without a signal, work runs as long as it takes.
        let started = Instant::now();
        assert!(run_with_grace(sleep(Duration::from_secs(3600)), std::future::pending(), grace).await);
        assert_eq!(started.elapsed(), Duration::from_secs(3600));
    }

    #[test]
    fn gcp_endpoint_must_be_an_http_url_with_a_host() {
        for ok in ["http://127.0.0.1:8085", "https://monitoring.googleapis.com", "http://localhost"] {
            assert_eq!(check_gcp_endpoint(ok), Ok(()), "{ok}");
        }
        for bad in ["not-a-url", "127.0.0.1:8085", "ftp://x", "http://", "", "http:///path"] {
            let err = check_gcp_endpoint(bad).expect_err(bad);
            assert!(err.starts_with("--gcp-endpoint"), "{err}");
        }
    }

    #[test]
    fn export_project_must_be_a_project_id() {
        for ok in ["my-project", "p12345", "example.com:my-project", &format!("a{}", "b".repeat(29))] {
            assert_eq!(check_project_id(ok), Ok(()), "{ok}");
        }
        for bad in
            ["", "p1", "My Project", "123456789012", "my-project-", "my_project", "projects/my-project", ":abcdef"]
        {
            let err = check_project_id(bad).expect_err(bad);
            assert!(err.starts_with("--export-monitoring") && err.contains("project ID"), "{err}");
        }
    }
}
