//! A mock API server that lists and watches: namespaced collections of JSON objects, a
//! `fieldSelector=metadata.name=...` and `labelSelector=k=v,...` honoured as the real API server
//! does, watches held open until something changes (then answered with the change and closed,
//! after which the client watches again from the new resourceVersion), and a collection can be
//! set to refuse with a status code (e.g. 403 for missing RBAC). It also takes what a controller
//! writes: status patches (with the resourceVersion precondition) and Events, so several
//! replicas can share one API server.
//!
//! For node drains it also serves what kubectl drain and cluster-autoscaler use: cluster-wide
//! lists of a namespaced kind (`/api/v1/pods`), `fieldSelector=spec.nodeName=...`, merge patches
//! of objects (a `metadata.resourceVersion` in the patch is a precondition, 409 when stale), and
//! the Eviction subresource honouring PodDisruptionBudgets as the API server does: a pod selected
//! by a budget whose `status.disruptionsAllowed` is 0 gets 429 with the budget's cause, one selected
//! by two budgets gets 500, a `dryRun=All` request changes nothing; otherwise
//! the budget's allowance drops by one and the pod starts terminating (`deletionTimestamp`, the
//! grace period asked) until [`WatchServer::finish_terminating`] plays the kubelet.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Handle;
use super::writes::{merge, stale};

type Responder = tower_test::mock::SendResponse<Response<Body>>;

#[derive(Default)]
struct Store {
    rv: u64,
    /// Collection path (e.g. `/apis/apps/v1/namespaces/data/deployments`) → name → (rv, object).
    objects: BTreeMap<String, BTreeMap<String, (u64, Value)>>,
    /// Collection path → status code every request to it gets.
    refuse: BTreeMap<String, u16>,
    /// Requests seen: method and URI.
    seen: Vec<String>,
    /// Event bodies posted.
    events: Vec<Value>,
}

/// Changes the test makes to the cluster.
enum Change {
    Put(String, Value),
    Delete(String, String),
}

/// The mock API server: a handle to change the world while it serves.
#[derive(Clone)]
pub struct WatchServer {
    store: Arc<Mutex<Store>>,
    tx: mpsc::UnboundedSender<Change>,
}

fn collection(uri: &str) -> String {
    uri.split('?').next().unwrap_or_default().to_string()
}

fn param(uri: &str, key: &str) -> Option<String> {
    let q = uri.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%3D", "=").replace("%2C", ",").replace("%2F", "/"))
    })
}

fn matches(uri: &str, object: &Value) -> bool {
    if let Some(f) = param(uri, "fieldSelector")
        && let Some((field, want)) = f.split_once('=')
        && field.split('.').fold(object, |v, k| &v[k]) != want
    {
        return false;
    }
    if let Some(l) = param(uri, "labelSelector") {
        return l.split(',').all(|kv| match kv.split_once('=') {
            Some((k, v)) => object["metadata"]["labels"][k] == v,
            // A key alone selects objects that carry the label, whatever its value.
            None => !object["metadata"]["labels"][kv].is_null(),
        });
    }
    true
}

fn respond(send: Responder, code: u16, body: Vec<u8>) {
    let response = Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("response");
    send.send_response(response);
}

/// The API server's answer to a write whose precondition failed.
fn conflict(send: Responder) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
        "reason": "Conflict", "message": "the object has been modified"});
    respond(send, 409, serde_json::to_vec(&body).expect("json"));
}

/// Applies a change to the store and answers the watches it concerns; returns the object as
/// stored (with its new resourceVersion), if any.
fn apply(s: &mut Store, held: &mut Vec<(String, u64, Responder)>, change: Change) -> Option<Value> {
    s.rv += 1;
    let rv = s.rv;
    let (path, event) = match change {
        Change::Put(path, mut object) => {
            object["metadata"]["resourceVersion"] = rv.to_string().into();
            let name = object["metadata"]["name"].as_str().expect("name").to_string();
            let coll = s.objects.entry(path.clone()).or_default();
            let kind = if coll.contains_key(&name) { "MODIFIED" } else { "ADDED" };
            coll.insert(name, (rv, object.clone()));
            (path, json!({"type": kind, "object": object}))
        }
        Change::Delete(path, name) => {
            let (_, mut object) = s.objects.entry(path.clone()).or_default().remove(&name)?;
            object["metadata"]["resourceVersion"] = rv.to_string().into();
            (path, json!({"type": "DELETED", "object": object}))
        }
    };
    let mut keep = Vec::new();
    for (uri, since, send) in held.drain(..) {
        if collection(&uri) == path && matches(&uri, &event["object"]) && rv > since {
            let mut line = serde_json::to_vec(&event).expect("json");
            line.push(b'\n');
            respond(send, 200, line);
        } else {
            keep.push((uri, since, send));
        }
    }
    *held = keep;
    Some(event["object"].clone())
}

/// Whether a PodDisruptionBudget's `selector` selects a pod with `labels`, as `policy/v1` reads
/// it: `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist) all hold; an empty
/// selector selects every pod of the namespace.
fn selects(selector: &Value, labels: &Value) -> bool {
    let by_label = selector["matchLabels"].as_object().is_none_or(|m| m.iter().all(|(k, v)| labels[k] == *v));
    let by_expression = selector["matchExpressions"].as_array().is_none_or(|es| {
        es.iter().all(|e| {
            let value = &labels[e["key"].as_str().unwrap_or_default()];
            let among = e["values"].as_array().is_some_and(|vs| vs.contains(value));
            match e["operator"].as_str() {
                Some("In") => among,
                Some("NotIn") => !among,
                Some("Exists") => !value.is_null(),
                Some("DoesNotExist") => value.is_null(),
                _ => false,
            }
        })
    });
    by_label && by_expression
}

/// An Eviction POST for pod `ns/name` (see the module docs): the status code and body.
fn evict(
    s: &mut Store,
    held: &mut Vec<(String, u64, Responder)>,
    ns: &str,
    name: &str,
    body: &Value,
    dry_run: bool,
) -> (u16, Value) {
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let Some(mut pod) = s.objects.get(&pods).and_then(|m| m.get(name)).map(|(_, o)| o.clone()) else {
        return (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
            "reason": "NotFound", "message": format!("pods \"{name}\" not found")}),
        );
    };
    let ok = json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201});
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return (200, ok);
    }
    let budgets = format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets");
    let matching: Vec<Value> = s
        .objects
        .get(&budgets)
        .map(|m| {
            m.values()
                .map(|(_, b)| b.clone())
                .filter(|b| selects(&b["spec"]["selector"], &pod["metadata"]["labels"]))
                .collect()
        })
        .unwrap_or_default();
    if matching.len() > 1 {
        return (
            500,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            "code": 500}),
        );
    }
    if let Some(b) = matching.iter().find(|b| b["status"]["disruptionsAllowed"].as_i64().unwrap_or(0) <= 0) {
        let budget = b["metadata"]["name"].as_str().unwrap_or_default();
        let healthy = b["status"]["currentHealthy"].as_i64().unwrap_or(0);
        let desired = b["status"]["desiredHealthy"].as_i64().unwrap_or(0);
        return (
            429,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests",
            "details": {"causes": [{"reason": "DisruptionBudget",
                "message": format!("The disruption budget {budget} needs {desired} healthy pods and has {healthy} currently")}]},
            "code": 429}),
        );
    }
    if dry_run {
        return (201, ok);
    }
    for mut b in matching {
        let allowed = b["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
        b["status"]["disruptionsAllowed"] = json!(allowed - 1);
        apply(s, held, Change::Put(budgets.clone(), b));
    }
    pod["metadata"]["deletionTimestamp"] = json!("2026-12-07T10:00:00Z");
    pod["metadata"]["deletionGracePeriodSeconds"] =
        body["deleteOptions"]["gracePeriodSeconds"].as_i64().map_or(json!(30), |g| json!(g));
    apply(s, held, Change::Put(pods, pod));
    (201, ok)
}

/// `(collection, name)` of a path to one object (`.../scalepolicies/orders`) or to its status
/// subresource (`.../scalepolicies/orders/status`), when the collection is known.
fn object_path<'a>(s: &Store, path: &'a str) -> Option<(String, &'a str, bool)> {
    let (rest, status) = match path.strip_suffix("/status") {
        Some(rest) => (rest, true),
        None => (path, false),
    };
    let (coll, name) = rest.rsplit_once('/')?;
    s.objects.contains_key(coll).then(|| (coll.to_string(), name, status))
}

impl WatchServer {
    /// Serve `handle` until the client goes away.
    ///
    /// Besides lists and watches it answers what a controller writes: a GET of one object, a
    /// server-side-apply PATCH of the status subresource (the status replaced, a
    /// `metadata.resourceVersion` in the patch checked as a precondition: 409 when the object
    /// changed since, as the real API server does), and Event POSTs (accepted, recorded in
    /// [`WatchServer::seen`] and [`WatchServer::events`]).
    pub fn start(mut handle: Handle) -> WatchServer {
        let store = Arc::new(Mutex::new(Store::default()));
        let (tx, mut rx) = mpsc::unbounded_channel::<Change>();
        let st = store.clone();
        tokio::spawn(async move {
            let mut held: Vec<(String, u64, Responder)> = Vec::new();
            loop {
                // Changes the test made first: a test that puts an object and then lets the
                // client ask must see it.
                tokio::select! {
                    biased;
                    change = rx.recv() => {
                        let Some(change) = change else { return };
                        let mut s = st.lock().expect("store");
                        apply(&mut s, &mut held, change);
                    }
                    req = handle.next_request() => {
                        let Some((req, send)) = req else { return };
                        let req: Request<Body> = req;
                        let uri = req.uri().to_string();
                        let method = req.method().clone();
                        let bytes = http_body_util::BodyExt::collect(req.into_body()).await.map(|b| b.to_bytes()).unwrap_or_default();
                        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let mut s = st.lock().expect("store");
                        s.seen.push(format!("{method} {uri}"));
                        let path = collection(&uri);
                        if let Some(code) = s.refuse.get(&path) {
                            let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                                "reason": "Forbidden", "message": format!("cannot list resource at {path}")});
                            respond(send, *code, serde_json::to_vec(&body).expect("json"));
                            continue;
                        }
                        if method == http::Method::POST && path.ends_with("/eviction") {
                            let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                            let (code, reply) = match seg.as_slice() {
                                ["api", "v1", "namespaces", ns, "pods", name, "eviction"] => {
                                    let (ns, name) = (ns.to_string(), name.to_string());
                                    let dry_run = param(&uri, "dryRun").as_deref() == Some("All");
                                    evict(&mut s, &mut held, &ns, &name, &body, dry_run)
                                }
                                _ => (404, json!({"kind": "Status", "code": 404, "reason": "NotFound"})),
                            };
                            respond(send, code, serde_json::to_vec(&reply).expect("json"));
                            continue;
                        }
                        // A create (POST to a collection other than Events): 409 if the name is
                        // taken, as the API server answers.
                        if method == http::Method::POST && !path.ends_with("/events") && body["metadata"]["name"].is_string() {
                            let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
                            if s.objects.get(&path).is_some_and(|m| m.contains_key(&name)) {
                                let reply = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
                                    "reason": "AlreadyExists", "message": format!("{name} already exists")});
                                respond(send, 409, serde_json::to_vec(&reply).expect("json"));
                            } else {
                                let stored = apply(&mut s, &mut held, Change::Put(path.clone(), body.clone()));
                                respond(send, 201, serde_json::to_vec(&stored).expect("json"));
                            }
                            continue;
                        }
                        if method == http::Method::POST && path.ends_with("/events") {
                            s.events.push(body.clone());
                            respond(send, 201, serde_json::to_vec(&body).expect("json"));
                            continue;
                        }
                        if let Some((coll, name, status)) = object_path(&s, &path) {
                            let current = s.objects.get(&coll).and_then(|m| m.get(name)).map(|(_, o)| o.clone());
                            let Some(mut object) = current else {
                                let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                                    "reason": "NotFound", "message": format!("{name} not found")});
                                respond(send, 404, serde_json::to_vec(&body).expect("json"));
                                continue;
                            };
                            if method == http::Method::GET {
                                respond(send, 200, serde_json::to_vec(&object).expect("json"));
                                continue;
                            }
                            if method == http::Method::DELETE {
                                if stale(&body["preconditions"]["resourceVersion"], &object) {
                                    conflict(send);
                                    continue;
                                }
                                let gone = apply(&mut s, &mut held, Change::Delete(coll, name.to_string()));
                                respond(send, 200, serde_json::to_vec(&gone).expect("json"));
                                continue;
                            }
                            assert!(method == http::Method::PATCH, "the mock serves no {method} {uri}");
                            if stale(&body["metadata"]["resourceVersion"], &object) {
                                conflict(send);
                                continue;
                            }
                            if status {
                                object["status"] = body["status"].clone();
                            } else {
                                let mut patch = body.clone();
                                if let Some(m) = patch["metadata"].as_object_mut() {
                                    m.remove("resourceVersion");
                                }
                                merge(&mut object, &patch);
                            }
                            let stored = apply(&mut s, &mut held, Change::Put(coll, object));
                            respond(send, 200, serde_json::to_vec(&stored).expect("json"));
                            continue;
                        }
                        if param(&uri, "watch").as_deref() == Some("true") {
                            let since = param(&uri, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
                            held.push((uri, since, send));
                            continue;
                        }
                        // A namespaced kind listed across namespaces (`/api/v1/pods`): every
                        // namespace's collection of it.
                        let across = |coll: &str| match coll.split_once("/namespaces/") {
                            Some((group, rest)) => rest.split_once('/').is_some_and(|(_, kind)| path == format!("{group}/{kind}")),
                            None => false,
                        };
                        let items: Vec<Value> = s.objects.iter()
                            .filter(|(coll, _)| **coll == path || across(coll))
                            .flat_map(|(_, m)| m.values().filter(|(_, o)| matches(&uri, o)).map(|(_, o)| o.clone()))
                            .collect();
                        let body = json!({"kind": "List", "apiVersion": "v1",
                            "metadata": {"resourceVersion": s.rv.to_string()}, "items": items});
                        respond(send, 200, serde_json::to_vec(&body).expect("json"));
                    }
                }
            }
        });
        WatchServer { store, tx }
    }

    /// Create or replace `object` in the collection at `path`; open watches see it.
    pub fn put(&self, path: &str, object: Value) {
        self.tx.send(Change::Put(path.to_string(), object)).expect("server running");
    }

    /// Delete `name` from the collection at `path`.
    pub fn delete(&self, path: &str, name: &str) {
        self.tx.send(Change::Delete(path.to_string(), name.to_string())).expect("server running");
    }

    /// Answer every request to the collection at `path` with `code`.
    pub fn refuse(&self, path: &str, code: u16) {
        self.store.lock().expect("store").refuse.insert(path.to_string(), code);
    }

    /// The requests seen so far ("METHOD uri").
    pub fn seen(&self) -> Vec<String> {
        self.store.lock().expect("store").seen.clone()
    }

    /// The Events posted so far.
    pub fn events(&self) -> Vec<Value> {
        self.store.lock().expect("store").events.clone()
    }

    /// Play the kubelet: every pod that is terminating is gone (its grace period is over).
    pub fn finish_terminating(&self) {
        let gone: Vec<(String, String)> = {
            let s = self.store.lock().expect("store");
            s.objects
                .iter()
                .filter(|(coll, _)| coll.ends_with("/pods"))
                .flat_map(|(coll, m)| {
                    m.iter()
                        .filter(|(_, (_, o))| !o["metadata"]["deletionTimestamp"].is_null())
                        .map(|(n, _)| (coll.clone(), n.clone()))
                })
                .collect()
        };
        for (coll, name) in gone {
            self.delete(&coll, &name);
        }
    }

    /// The object `name` in the collection at `path`, as stored now.
    pub fn get(&self, path: &str, name: &str) -> Option<Value> {
        self.store.lock().expect("store").objects.get(path)?.get(name).map(|(_, o)| o.clone())
    }
}

/// A Deployment with `replicas` desired and `ready` ready.
pub fn deployment(name: &str, replicas: u32, ready: Option<u32>) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "data"},
        "spec": {"replicas": replicas}, "status": {}});
    if let Some(r) = ready {
        d["status"]["readyReplicas"] = r.into();
    }
    d
}

/// A Pod with `labels` in `phase`.
pub fn pod(name: &str, labels: Value, phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "data", "labels": labels},
           "status": {"phase": phase}})
}
