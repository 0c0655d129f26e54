//! A mock API server that lists and watches: namespaced collections of JSON objects, a
//! `fieldSelector=metadata.name=...` and `labelSelector=k=v,...` honoured as the real API server
//! does, watches held open until something changes (then answered with the change and closed,
//! after which the client watches again from the new resourceVersion), and a collection can be
//! set to refuse with a status code (e.g. 403 for missing RBAC). It also takes what a controller
//! writes: status patches (with the resourceVersion precondition) and Events, so several
//! replicas can share one API server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Handle;

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
        && let Some(name) = f.strip_prefix("metadata.name=")
        && object["metadata"]["name"] != name
    {
        return false;
    }
    if let Some(l) = param(uri, "labelSelector") {
        return l.split(',').all(|kv| match kv.split_once('=') {
            Some((k, v)) => object["metadata"]["labels"][k] == v,
            None => false,
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
                tokio::select! {
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
                            assert!(method == http::Method::PATCH && status, "the mock serves no {method} {uri}");
                            let want = &body["metadata"]["resourceVersion"];
                            if !want.is_null() && *want != object["metadata"]["resourceVersion"] {
                                let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
                                    "reason": "Conflict", "message": "the object has been modified"});
                                respond(send, 409, serde_json::to_vec(&body).expect("json"));
                                continue;
                            }
                            object["status"] = body["status"].clone();
                            let stored = apply(&mut s, &mut held, Change::Put(coll, object));
                            respond(send, 200, serde_json::to_vec(&stored).expect("json"));
                            continue;
                        }
                        if param(&uri, "watch").as_deref() == Some("true") {
                            let since = param(&uri, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
                            held.push((uri, since, send));
                            continue;
                        }
                        let items: Vec<Value> = s.objects.get(&path).map(|m| {
                            m.values().filter(|(_, o)| matches(&uri, o)).map(|(_, o)| o.clone()).collect()
                        }).unwrap_or_default();
                        let body = json!({"kind": "List", "apiVersion": "v1",
                            "metadata": {"resourceVersion": s.rv.to_string()}, "items": items});
                        respond(send, 200, serde_json::to_vec(&body).expect("json"));
                    }
                    change = rx.recv() => {
                        let Some(change) = change else { return };
                        let mut s = st.lock().expect("store");
                        apply(&mut s, &mut held, change);
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
