//! A Kubernetes API server for the benchmark of replicas, over HTTP on 127.0.0.1, so each replica
//! runs in its own process with its own client, as pods do. It serves what the controller uses
//! and nothing else (anything else is answered 404 and counted, so the report shows it):
//!
//! - `ScalePolicy` objects in one namespace: a list (every item, as the API server answers a
//!   list at resourceVersion 0 from its cache), a watch streamed as JSON lines from a
//!   resourceVersion (410 Expired when the events since have been dropped, which makes the client
//!   list again), a GET of one, and the server-side-apply PATCH of the status subresource with
//!   a `metadata.resourceVersion` precondition (409 when stale);
//! - Leases in the controller's namespace: list by label key, create (409 when the name is taken),
//!   GET, merge PATCH with a resourceVersion precondition, DELETE with preconditions;
//! - `events.k8s.io/v1` Events: created and counted, not kept.
//!
//! Like the API server it writes every status it is sent, changed or not, and every write is a
//! watch event that every replica's cache receives.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::watch;

#[path = "../../tests/it/controller_support/writes.rs"]
mod writes;
use writes::{merge, stale};

/// The namespace of the policies.
pub const POLICY_NS: &str = "bench";
const POLICIES: &str = "/apis/ebbflow.dev/v1alpha1/namespaces/bench/scalepolicies";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ebbflow-system/leases";

#[derive(Default)]
struct World {
    rv: u64,
    policies: BTreeMap<String, Value>,
    leases: BTreeMap<String, Value>,
    /// The policies' watch events after `dropped`, each its JSON line.
    log: VecDeque<(u64, Bytes)>,
    /// Events up to this resourceVersion are no longer in `log`.
    dropped: u64,
    /// How many watch events `log` keeps (a few intervals' worth of writes).
    keep: usize,
    counts: Counts,
}

/// What the server was asked, since the last [`ApiServer::take_counts`].
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Status writes taken.
    pub status_writes: u64,
    /// Status writes refused for a stale resourceVersion.
    pub conflicts: u64,
    /// Lease reads and writes.
    pub lease_requests: u64,
    /// Events created or updated.
    pub events: u64,
    /// Lists and watches of the policies.
    pub lists: u64,
    /// Watches started.
    pub watches: u64,
    /// Requests this server does not serve (method and path), which would be a gap in it.
    pub unserved: Vec<String>,
}

/// The server: a handle to read what happened.
#[derive(Clone)]
pub struct ApiServer {
    world: Arc<Mutex<World>>,
    latest: watch::Sender<u64>,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                      "reason": reason, "message": message});
    reply(code, &body)
}

fn reply(code: u16, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap_or_default()))
        .unwrap_or_default()
}

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

impl World {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Store `object` as policy `name` with a new resourceVersion and log its watch event.
    fn put_policy(&mut self, name: &str, mut object: Value) -> Value {
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        let kind = if self.policies.contains_key(name) { "MODIFIED" } else { "ADDED" };
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": &object})).unwrap_or_default();
        line.push(b'\n');
        self.log.push_back((rv, Bytes::from(line)));
        while self.log.len() > self.keep {
            if let Some((old, _)) = self.log.pop_front() {
                self.dropped = old;
            }
        }
        self.policies.insert(name.to_string(), object.clone());
        object
    }
}

impl ApiServer {
    /// Serve on 127.0.0.1 (on the current Tokio runtime); returns the server and its URL.
    /// `keep`: how many watch events a replica may fall behind before it must list again.
    pub async fn start(keep: usize) -> (ApiServer, String) {
        let world = World { keep, ..World::default() };
        let (latest, _) = watch::channel(0);
        let server = ApiServer { world: Arc::new(Mutex::new(world)), latest };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port for the API server");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let app = axum::Router::new().fallback(handle).with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, url)
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Create a policy (what `kubectl apply` does).
    pub fn create_policy(&self, mut object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        if let Some(m) = object["metadata"].as_object_mut() {
            m.insert("namespace".into(), POLICY_NS.into());
        }
        let rv = self.world().put_policy(&name, object)["metadata"]["resourceVersion"].clone();
        self.latest.send_replace(rv.as_str().and_then(|v| v.parse().ok()).unwrap_or(0));
    }

    /// The resourceVersion of the last change to a policy.
    pub fn policies_version(&self) -> u64 {
        *self.latest.borrow()
    }

    /// What was asked since the last call, and forget it.
    pub fn take_counts(&self) -> Counts {
        std::mem::take(&mut self.world().counts)
    }

    /// Each shard Lease's holder, by name.
    pub fn lease_holders(&self) -> BTreeMap<String, String> {
        self.world()
            .leases
            .iter()
            .filter(|(n, _)| n.starts_with("ebbflow-shard-"))
            .map(|(n, l)| (n.clone(), l["spec"]["holderIdentity"].as_str().unwrap_or_default().to_string()))
            .collect()
    }

    /// Bytes of the stored policies as JSON (what a list of them all would carry).
    pub fn policies_json_bytes(&self) -> usize {
        self.world().policies.values().map(|p| serde_json::to_vec(p).map_or(0, |v| v.len())).sum()
    }
}

async fn handle(State(server): State<ApiServer>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let bytes = axum::body::to_bytes(req.into_body(), usize::MAX).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let is_get = method == axum::http::Method::GET;

    if path == POLICIES && is_get {
        if matches!(param(&query, "watch"), Some("true" | "1")) {
            return watch_policies(&server, &query);
        }
        let mut w = server.world();
        w.counts.lists += 1;
        let items: Vec<&Value> = w.policies.values().collect();
        return reply(
            200,
            &json!({"kind": "ScalePolicyList", "apiVersion": "ebbflow.dev/v1alpha1",
                                  "metadata": {"resourceVersion": w.rv.to_string()}, "items": items}),
        );
    }
    if let Some(rest) = path.strip_prefix(POLICIES).and_then(|r| r.strip_prefix('/')) {
        let (name, sub) = rest.split_once('/').unwrap_or((rest, ""));
        let mut w = server.world();
        let Some(current) = w.policies.get(name).cloned() else {
            return status(404, "NotFound", &format!("scalepolicies \"{name}\" not found"));
        };
        match (method.as_str(), sub) {
            ("GET", "") => return reply(200, &current),
            ("PATCH", "status") => {
                if stale(&body["metadata"]["resourceVersion"], &current) {
                    w.counts.conflicts += 1;
                    return status(409, "Conflict", "the object has been modified; please apply your changes");
                }
                let mut object = current;
                object["status"] = body["status"].clone();
                w.counts.status_writes += 1;
                let stored = w.put_policy(name, object);
                let rv = w.rv;
                drop(w);
                server.latest.send_replace(rv);
                return reply(200, &stored);
            }
            _ => {}
        }
    }
    if path.starts_with(LEASES) {
        let mut w = server.world();
        w.counts.lease_requests += 1;
        let name = path.strip_prefix(LEASES).and_then(|r| r.strip_prefix('/')).unwrap_or_default().to_string();
        match (method.as_str(), name.is_empty()) {
            ("GET", true) => {
                let key = param(&query, "labelSelector").map(|s| s.replace("%2F", "/")).unwrap_or_default();
                let items: Vec<&Value> = w
                    .leases
                    .values()
                    .filter(|l| key.is_empty() || !l["metadata"]["labels"][key.as_str()].is_null())
                    .collect();
                return reply(
                    200,
                    &json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1",
                                          "metadata": {"resourceVersion": w.rv.to_string()}, "items": items}),
                );
            }
            ("POST", true) => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
                if w.leases.contains_key(&name) {
                    return status(409, "AlreadyExists", &format!("leases \"{name}\" already exists"));
                }
                let mut lease = body;
                lease["metadata"]["resourceVersion"] = w.next_rv().to_string().into();
                w.leases.insert(name, lease.clone());
                return reply(201, &lease);
            }
            (m, false) => {
                let Some(current) = w.leases.get(&name).cloned() else {
                    return status(404, "NotFound", &format!("leases \"{name}\" not found"));
                };
                match m {
                    "GET" => return reply(200, &current),
                    "PATCH" => {
                        if stale(&body["metadata"]["resourceVersion"], &current) {
                            return status(409, "Conflict", "the object has been modified");
                        }
                        let mut patch = body;
                        if let Some(meta) = patch["metadata"].as_object_mut() {
                            meta.remove("resourceVersion");
                        }
                        let mut lease = current;
                        merge(&mut lease, &patch);
                        lease["metadata"]["resourceVersion"] = w.next_rv().to_string().into();
                        w.leases.insert(name, lease.clone());
                        return reply(200, &lease);
                    }
                    "DELETE" => {
                        if stale(&body["preconditions"]["resourceVersion"], &current) {
                            return status(409, "Conflict", "the object has been modified");
                        }
                        w.leases.remove(&name);
                        return reply(200, &current);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if path.starts_with("/apis/events.k8s.io/v1/namespaces/") && matches!(method.as_str(), "POST" | "PATCH") {
        server.world().counts.events += 1;
        return reply(if method == axum::http::Method::POST { 201 } else { 200 }, &body);
    }
    server.world().counts.unserved.push(format!("{method} {path}"));
    status(404, "NotFound", &format!("the benchmark's API server does not serve {method} {path}"))
}

/// A watch of the policies from the `resourceVersion` asked: the logged events after it, then
/// each new one as it is written. 410 Expired when the events after it were dropped.
fn watch_policies(server: &ApiServer, query: &str) -> Response {
    let since: u64 = param(query, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    {
        let mut w = server.world();
        w.counts.watches += 1;
        if since < w.dropped {
            let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "code": 410, "reason": "Expired", "message": format!("too old resource version: {since}")}});
            let mut line = serde_json::to_vec(&gone).unwrap_or_default();
            line.push(b'\n');
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(line))
                .unwrap_or_default();
        }
    }
    let state = (server.clone(), server.latest.subscribe(), since);
    let stream = futures::stream::unfold(state, |(server, mut latest, mut since)| async move {
        loop {
            let chunk: Vec<u8> = {
                let w = server.world();
                if since < w.dropped {
                    // Fell behind what is kept: end the watch; the client watches again from
                    // where it got to and is told to list.
                    return None;
                }
                let first = w.log.partition_point(|(rv, _)| *rv <= since);
                let mut out = Vec::new();
                for (rv, line) in w.log.range(first..) {
                    out.extend_from_slice(line);
                    since = *rv;
                }
                out
            };
            if !chunk.is_empty() {
                return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (server, latest, since)));
            }
            latest.changed().await.ok()?;
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}
