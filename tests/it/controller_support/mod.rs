//! Test support for the controller: a `tower_test` mock API server that checks each request and
//! answers it (kube-rs's documented approach; there is no envtest for Rust), and small fakes of
//! the metric source and the target.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebbflow::adapters::{
    AdapterError, ErrorKind, FloorMetric, MetricQuery, MetricSource, OperationStatus, ResizeStarted, ScaleTarget,
    Series, TargetObservation,
};
use ebbflow::api::{ScalePolicy, TargetRef};
use ebbflow::controller::Backends;
use ebbflow::controller::leader::Leadership;
use ebbflow::core::{Sample, Ts};
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

pub mod watch;
pub mod writes;

/// The mock API server's handle.
pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A client talking to a mock API server.
pub fn mock_client() -> (kube::Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "default"), handle)
}

/// One request the controller made.
#[derive(Debug, Clone)]
pub struct Req {
    /// HTTP method.
    pub method: Method,
    /// Path and query.
    pub uri: String,
    /// JSON body (Null when empty).
    pub body: Value,
}

/// Checks one request and gives the answer: (status code, JSON body).
pub type Step = Box<dyn FnOnce(&Req) -> (u16, Value) + Send>;

/// Answer the next `steps.len()` requests in order; returns what was seen and the handle.
pub async fn serve(mut handle: Handle, steps: Vec<Step>) -> (Vec<Req>, Handle) {
    let mut seen = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        let Some((request, send)) = handle.next_request().await else {
            panic!("expected request #{i}, but the client went away");
        };
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        let req = Req { method: parts.method, uri: parts.uri.to_string(), body };
        let (code, answer) = step(&req);
        let response = Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&answer).expect("json")))
            .expect("response");
        send.send_response(response);
        seen.push(req);
    }
    (seen, handle)
}

/// Assert the controller sends nothing more.
pub async fn assert_no_more_requests(handle: &mut Handle) {
    if let Ok(Some((req, _))) = tokio::time::timeout(Duration::from_millis(100), handle.next_request()).await {
        panic!("unexpected request: {} {}", req.method(), req.uri());
    }
}

/// A Kubernetes `Status` error body.
pub fn status_error(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
           "message": format!("the object has been modified ({reason})")})
}

/// The status subresource path of `ns/name`.
pub fn status_path(ns: &str, name: &str) -> String {
    format!("/apis/ebbflow.dev/v1alpha1/namespaces/{ns}/scalepolicies/{name}/status?")
}

/// A step expecting a server-side-apply status patch; `check` inspects the body; answers the
/// object with `rv`.
pub fn expect_status_patch(sp: &ScalePolicy, rv: &'static str, check: impl FnOnce(&Value) + Send + 'static) -> Step {
    let path =
        status_path(&sp.metadata.namespace.clone().unwrap_or_default(), &sp.metadata.name.clone().unwrap_or_default());
    let mut object = serde_json::to_value(sp).expect("policy json");
    Box::new(move |r: &Req| {
        assert_eq!(r.method, Method::PATCH, "{}", r.uri);
        assert!(r.uri.starts_with(&path), "{} is not {path}", r.uri);
        assert!(r.uri.contains("fieldManager=ebbflow") && r.uri.contains("force=true"), "{}", r.uri);
        check(&r.body);
        object["status"] = r.body["status"].clone();
        object["metadata"]["resourceVersion"] = rv.into();
        (200, object)
    })
}

/// A step expecting an Event with `reason`; answers it as created.
pub fn expect_event(ns: &'static str, reason: &'static str) -> Step {
    Box::new(move |r: &Req| {
        assert_eq!(r.method, Method::POST, "{}", r.uri);
        assert!(r.uri.starts_with(&format!("/apis/events.k8s.io/v1/namespaces/{ns}/events")), "{}", r.uri);
        assert_eq!(r.body["reason"], reason, "{}", r.body);
        (201, r.body.clone())
    })
}

/// Everything the fake world records and answers.
#[derive(Default)]
pub struct World {
    /// Target size.
    pub size: u32,
    /// Target busy flag.
    pub busy: bool,
    /// Metric samples served (filtered to the asked range).
    pub samples: Vec<Sample>,
    /// Make every metric fetch fail.
    pub metrics_fail: bool,
    /// Sizes the controller asked for, in order.
    pub resizes: Vec<u32>,
    /// Calls to observe.
    pub observes: u32,
    /// Calls to fetch.
    pub fetches: u32,
    /// Operation states by name.
    pub operations: HashMap<String, OperationStatus>,
    /// When set, resize starts an operation with this name instead of finishing at once.
    pub resize_operation: Option<String>,
    /// When set, a metric fetch takes leadership away (to test the fence).
    pub lose_leadership_on_fetch: Option<Leadership>,
    /// Observing the target panics this many more times (a bug in an adapter or the engine).
    pub panics: u32,
}

/// Shared fake world.
#[derive(Clone, Default)]
pub struct Fake(pub Arc<Mutex<World>>);

impl Fake {
    /// Lock the world.
    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().expect("world")
    }
}

impl MetricSource for Fake {
    async fn fetch(&self, _q: &MetricQuery, after: Ts, until: Ts) -> Result<Series, AdapterError> {
        let mut w = self.world();
        w.fetches += 1;
        if let Some(l) = w.lose_leadership_on_fetch.take() {
            l.set(false);
        }
        if w.metrics_fail {
            return Err(AdapterError {
                backend: "monitoring",
                kind: ErrorKind::Transient,
                code: Some(503),
                message: "service unavailable".into(),
            });
        }
        let samples = w.samples.iter().copied().filter(|s| s.at > after && s.at <= until).collect();
        Ok(Series { samples, problem: None })
    }
}

impl ScaleTarget for Fake {
    async fn observe(&self) -> Result<TargetObservation, AdapterError> {
        let mut w = self.world();
        w.observes += 1;
        if w.panics > 0 {
            w.panics -= 1;
            // Not while holding the lock: a poisoned world would fail the test, not the code.
            drop(w);
            panic!("injected: observing the target panicked");
        }
        Ok(TargetObservation {
            size: w.size,
            busy: w.busy,
            sizes: ebbflow::core::SizeRule::Any,
            floor: FloorMetric::None,
            members: Vec::new(),
            serving: None,
            steered_max: None,
        })
    }
    async fn resize(&self, to: u32) -> Result<ResizeStarted, AdapterError> {
        let mut w = self.world();
        w.resizes.push(to);
        match w.resize_operation.clone() {
            Some(op) => {
                w.operations.insert(op.clone(), OperationStatus::Running);
                w.busy = true;
                Ok(ResizeStarted::Operation(op))
            }
            None => {
                w.size = to;
                Ok(ResizeStarted::Done)
            }
        }
    }
    async fn operation(&self, name: &str) -> Result<OperationStatus, AdapterError> {
        self.world()
            .operations
            .get(name)
            .cloned()
            .ok_or_else(|| AdapterError::new("fake", ErrorKind::NotFound, format!("no operation {name}")))
    }
}

/// Backends serving the fake world for every target.
#[derive(Clone, Default)]
pub struct FakeBackends(pub Fake);

impl Backends for FakeBackends {
    type Source = Fake;
    type Target = Fake;
    fn source(&self) -> &Fake {
        &self.0
    }
    fn target(&self, _namespace: &str, _target: &TargetRef) -> Result<Fake, AdapterError> {
        Ok(self.0.clone())
    }
}

/// The fixed "now" of the scenarios.
pub fn now() -> Ts {
    Ts::parse_rfc3339("2026-11-22T05:00:00Z").expect("time")
}

/// 30 minutes of a steady per-node value around `base` (small alternating noise), one sample a
/// minute, then `spike` for the last `spike_len` minutes.
pub fn trace(base: f64, spike: f64, spike_len: i64) -> Vec<Sample> {
    (0..30)
        .map(|i| {
            let at = Ts(now().0 - 60_000 * (29 - i));
            let value = if i >= 30 - spike_len {
                spike
            } else if i % 2 == 0 {
                base * 1.02
            } else {
                base * 0.98
            };
            Sample { at, value }
        })
        .collect()
}

/// A ScalePolicy object as the API server would return it.
pub fn policy(ns: &str, name: &str, mode: &str, extra_status: Value) -> ScalePolicy {
    let mut v = json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "resourceVersion": "100",
                     "generation": 1, "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {
            "target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
            "minSize": 2, "maxSize": 20, "mode": mode,
            "metrics": [{"name": "cpu", "target": 0.5,
                         "query": {"filter": "metric.type=\"bigtable.googleapis.com/cluster/cpu_load\""}}]
        }
    });
    if !extra_status.is_null() {
        v["status"] = extra_status;
    }
    serde_json::from_value(v).expect("policy")
}

/// The condition `type_` in a status JSON.
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// A fresh directory `$TMP/ebbflow-{name}-{pid}` with an empty `policies/` folder in it.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ebbflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    dir
}

/// A valid Bigtable policy file; `namespace: None` leaves the field out (standalone reads it as
/// `default`).
pub fn bigtable_policy_yaml(namespace: Option<&str>, name: &str, cluster: &str, min_size: u32) -> String {
    let ns = namespace.map(|n| format!("\n  namespace: {n}")).unwrap_or_default();
    format!(
        r#"apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: "{name}"{ns}
spec:
  target:
    bigtableCluster: {{project: p1, instance: i1, cluster: {cluster}}}
  minSize: {min_size}
  maxSize: 20
  interval: 60s
  metrics:
    - name: cpu
      target: 0.5
      query:
        filter: metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="{cluster}"
"#
    )
}
