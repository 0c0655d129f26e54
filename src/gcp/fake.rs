//! A local fake of the three Google REST APIs ebbflow uses, for tests, the controller benchmark
//! and demos. One axum server on `127.0.0.1:0` answers:
//!
//! | API | request | what the fake does |
//! |---|---|---|
//! | Monitoring | `POST /v3/projects/{p}/timeSeries` | accepts custom-metric writes within the API's limits (200 series, one point each, no series twice) and records them |
//! | Monitoring | `GET /v3/projects/{p}/timeSeries` | serves the [`Script`] set for the exact `filter`, points in `(startTime, endTime]`, newest first, paged |
//! | Bigtable | `GET /v2/projects/{p}/instances/{i}/clusters/{c}` | a stateful cluster |
//! | Bigtable | `GET /v2/projects/{p}/instances/{i}/clusters` | every cluster of the instance (ListClusters) |
//! | Bigtable | `PATCH` the same, `updateMask=serve_nodes` or `serveNodes` | starts a google.longrunning operation; the cluster is RESIZING until it is done |
//! | Bigtable | `GET /v2/operations/**` | the operation; it finishes on the N-th poll ([`FakeGcp::set_polls_to_finish`]) and only then changes the node count |
//! | Bigtable | `GET /v2/{name=operations/projects/**}/operations` | `operations.list`: the operations under `name` (gcloud lists an instance's with `operations/projects/P/instances/I`), done or not, oldest first, paged (`pageSize`, `pageToken`), as `{"operations": [...], "nextPageToken": ...}`; each with its `PartialUpdateClusterMetadata` (the original request, with its `serveNodes`) |
//! | GKE | `GET /v1/projects/{p}/locations/{l}/clusters/{c}` | the cluster with its pools (gcloud reads it before resizing) |
//! | GKE | `GET …/clusters/{c}/nodePools/{np}` | a stateful node pool |
//! | GKE | `POST …/nodePools/{np}:setSize`, `:setAutoscaling` | starts a GKE `Operation`; the pool is RECONCILING until it is done |
//! | GKE | `GET /v1/projects/{p}/locations/{l}/operations/{id}` | the operation, finishing as above |
//! | Compute | `GET /compute/v1/projects/{p}/zones/{z}/autoscalers` | none (gcloud asks before describing a group; GKE's groups have no Compute autoscaler) |
//! | Compute | `POST …/instanceGroupManagers/{g}/deleteInstances` | takes the named VMs out of the group (a node-pool drain's last step): the group's `targetSize` drops by as many at once, as Compute's does, and a zone operation is returned; a name that is not one of the group's VMs is skipped with `skipInstancesOnValidationError`, refused (400) without it. The VMs are named as GKE names nodes ([`FakeGcp::group_instances`]) |
//! | Compute | `GET /compute/v1/projects/{p}/zones/{z}/operations/{op}`, `POST …/{op}/wait` | the zone operation, finishing on the N-th poll as the others do |
//! | Spanner | `GET /v1/projects/{p}/instances/{i}` | a stateful instance: its `processingUnits` (and `nodeCount` when whole nodes), READY, its `autoscalingConfig` when the managed autoscaler is on |
//! | Spanner | `PATCH` the same, body `{"instance": {...}, "fieldMask": "processingUnits"}` (or `processing_units`, `nodeCount`; gcloud adds `autoscalingConfig`, which turns the managed autoscaler off) | starts an operation `projects/P/instances/I/operations/ID`; the instance reads its old size until it is done and refuses another update (400 FAILED_PRECONDITION); a size off the ladder (100-unit steps below 1000, thousands above) is 400 INVALID_ARGUMENT |
//! | Spanner | `GET /v1/projects/{p}/instances/{i}/operations/{id}`, `GET …/operations` | the operation (with `UpdateInstanceMetadata` naming the units asked for), finishing on the N-th poll; the instance's operations, paged |
//! | Compute | `GET /compute/v1/projects/{p}/zones/{z}/instanceGroupManagers/{g}` | a node pool's group in one zone (the pool lists them in `instanceGroupUrls`): its `targetSize` is the pool's live count there, changed when a resize operation finishes or by hand ([`FakeGcp::set_group_size`]); the pool's `initialNodeCount` stays at its creation value, as GKE's does |
//!
//! ## Closed loop ([`FakeGcp::set_world`])
//!
//! With a [`World`], one Bigtable cluster behaves like the service instead of like a script: its
//! CPU and storage series are computed from a demand model and from the node count *of each
//! point's own minute* (new nodes carry load only after a warm-up, removed ones stop at once;
//! CPU saturates at 100%), points become visible only after a Monitoring lag, a resize takes
//! time on a clock the test owns, and while it runs the cluster reports either `RESIZING` with
//! the new size or `READY` with the old one (both are seen in the wild). A test can then ask
//! whether the controller settles where the arithmetic says, instead of whether it sent what the
//! script expected.
//!
//! A replicated instance is several worlds ([`FakeGcp::add_world`]), one per cluster, each with
//! its own demand and size, sharing the CPU and storage filters (queries over the instance). A
//! query matching several worlds is answered as Monitoring answers it: one series per cluster
//! (labelled `cluster`) without a `crossSeriesReducer`, or reduced point by point (MEAN, MAX, MIN,
//! SUM) within each `groupByFields` group.
//!
//! It accepts both the Rust clients' requests (`$alt=json;enum-encoding=int`, `updateMask=serveNodes`)
//! and gcloud's (`alt=json`, `updateMask=serve_nodes`). Faults are injected per [`Endpoint`]
//! ([`FakeGcp::inject`]); bad data (empty, NaN, stale, partial, several series) is scripted in the
//! time series themselves. Every request is logged ([`FakeGcp::requests`]) so a test can assert,
//! for example, that no resize was sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::core::{Dur, Ts};

/// The API method a request was routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Monitoring `projects.timeSeries.list`.
    ListTimeSeries,
    /// Monitoring `projects.timeSeries.create`.
    CreateTimeSeries,
    /// Bigtable `GetCluster`.
    GetCluster,
    /// Bigtable `ListClusters`.
    ListClusters,
    /// Bigtable `PartialUpdateCluster`.
    UpdateCluster,
    /// Bigtable `GetOperation`.
    BigtableOperation,
    /// Bigtable `ListOperations` (google.longrunning, under `operations/projects/**`).
    ListBigtableOperations,
    /// GKE `GetCluster`.
    GkeGetCluster,
    /// GKE `GetNodePool`.
    GetNodePool,
    /// GKE `SetNodePoolSize`.
    SetNodePoolSize,
    /// GKE `SetNodePoolAutoscaling`.
    SetNodePoolAutoscaling,
    /// GKE `GetOperation`.
    GkeOperation,
    /// Compute `instanceGroupManagers.get`.
    GetInstanceGroupManager,
    /// Compute `autoscalers.list` in a zone (gcloud asks before describing a group).
    ListAutoscalers,
    /// Compute `instanceGroupManagers.deleteInstances`.
    DeleteInstances,
    /// Compute `zoneOperations.get`.
    ZoneOperation,
    /// Spanner `GetInstance`.
    GetSpannerInstance,
    /// Spanner `UpdateInstance`.
    UpdateSpannerInstance,
    /// Spanner `GetOperation` (an instance's).
    SpannerOperation,
    /// Spanner `ListOperations` (an instance's).
    ListSpannerOperations,
    /// Anything else (answered 404).
    Unknown,
}

impl Endpoint {
    /// Whether this method changes a target's size.
    pub fn is_resize(self) -> bool {
        matches!(
            self,
            Endpoint::UpdateCluster
                | Endpoint::SetNodePoolSize
                | Endpoint::SetNodePoolAutoscaling
                | Endpoint::UpdateSpannerInstance
        )
    }

    fn permission(self) -> (&'static str, &'static str) {
        match self {
            Endpoint::ListTimeSeries => ("monitoring.googleapis.com", "monitoring.timeSeries.list"),
            Endpoint::CreateTimeSeries => ("monitoring.googleapis.com", "monitoring.timeSeries.create"),
            Endpoint::GetCluster | Endpoint::BigtableOperation | Endpoint::ListBigtableOperations => {
                ("bigtableadmin.googleapis.com", "bigtable.clusters.get")
            }
            Endpoint::UpdateCluster => ("bigtableadmin.googleapis.com", "bigtable.clusters.update"),
            Endpoint::ListClusters => ("bigtableadmin.googleapis.com", "bigtable.clusters.list"),
            Endpoint::GkeGetCluster | Endpoint::GetNodePool => ("container.googleapis.com", "container.clusters.get"),
            Endpoint::SetNodePoolSize | Endpoint::SetNodePoolAutoscaling => {
                ("container.googleapis.com", "container.clusters.update")
            }
            Endpoint::GkeOperation => ("container.googleapis.com", "container.operations.get"),
            Endpoint::GetInstanceGroupManager => ("compute.googleapis.com", "compute.instanceGroupManagers.get"),
            Endpoint::ListAutoscalers => ("compute.googleapis.com", "compute.autoscalers.list"),
            Endpoint::DeleteInstances => ("compute.googleapis.com", "compute.instanceGroupManagers.update"),
            Endpoint::ZoneOperation => ("compute.googleapis.com", "compute.zoneOperations.get"),
            Endpoint::GetSpannerInstance => ("spanner.googleapis.com", "spanner.instances.get"),
            Endpoint::UpdateSpannerInstance => ("spanner.googleapis.com", "spanner.instances.update"),
            Endpoint::SpannerOperation => ("spanner.googleapis.com", "spanner.instanceOperations.get"),
            Endpoint::ListSpannerOperations => ("spanner.googleapis.com", "spanner.instanceOperations.list"),
            Endpoint::Unknown => ("googleapis.com", "unknown"),
        }
    }
}

/// A failure the fake answers with instead of the real response.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 RESOURCE_EXHAUSTED, as a quota overrun.
    TooManyRequests,
    /// 503 UNAVAILABLE.
    Unavailable,
    /// Answer normally, but only after this long (a client with a shorter timeout sees a timeout).
    Delay(Duration),
    /// Carry the request out at once, but answer only after this long: a client with a shorter
    /// timeout never learns that its write was taken (the case that leaves orphan operations).
    LostResponse(Duration),
    /// 200 with a truncated JSON body.
    MalformedJson,
    /// 403 PERMISSION_DENIED with an `ErrorInfo` naming the endpoint's IAM permission.
    PermissionDenied,
    /// 404 NOT_FOUND.
    NotFound,
    /// 400 FAILED_PRECONDITION: another operation is in progress on the resource.
    OperationInProgress,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    /// Where it was routed.
    pub endpoint: Endpoint,
    /// HTTP method.
    pub method: String,
    /// Decoded path.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Request body.
    pub body: String,
    /// The fault injected into the answer, if any.
    pub fault: Option<Fault>,
}

impl LoggedRequest {
    /// The first value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A point value, as Monitoring types it on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FakeValue {
    /// `doubleValue` (NaN goes out as the string `"NaN"`, as proto3 JSON has it).
    Double(f64),
    /// `int64Value` (a JSON string, as proto3 JSON has it).
    Int(i64),
}

/// One scripted time series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FakeSeries {
    /// Resource labels that tell this series apart from others of the same query.
    pub labels: Vec<(String, String)>,
    /// Points, in any order; each is served for a query whose interval contains its time.
    pub points: Vec<(Ts, FakeValue)>,
}

/// What `timeSeries.list` returns for one filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// The series (none: the query matches nothing).
    pub series: Vec<FakeSeries>,
    /// Messages returned as `executionErrors` (partial data).
    pub execution_errors: Vec<String>,
}

impl Script {
    /// One series with a double point every `step`, the first at `start`.
    pub fn regular(start: Ts, step: Dur, values: &[f64]) -> Script {
        let points = values.iter().enumerate().map(|(i, v)| (start + Dur(step.0 * i as i64), FakeValue::Double(*v)));
        Script {
            series: vec![FakeSeries { labels: Vec::new(), points: points.collect() }],
            execution_errors: Vec::new(),
        }
    }

    /// Add another series with the same points but different labels (a query without a reducer).
    pub fn duplicated(mut self, label: &str, values: &[&str]) -> Script {
        let points = self.series.first().map(|s| s.points.clone()).unwrap_or_default();
        self.series = values
            .iter()
            .map(|v| FakeSeries { labels: vec![(label.to_string(), v.to_string())], points: points.clone() })
            .collect();
        self
    }

    /// Report partial data.
    pub fn partial(mut self, message: &str) -> Script {
        self.execution_errors.push(message.to_string());
        self
    }
}

/// How a Bigtable cluster reports itself while a resize operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhileResizing {
    /// `state: RESIZING`, `serveNodes` already the new size.
    ResizingWithNewSize,
    /// `state: READY`, `serveNodes` still the old size, until the operation is done.
    ReadyWithOldSize,
}

/// Demand over time, in nodes' worth of CPU at 100% (5.1: five nodes and a tenth, fully busy).
pub type Demand = Arc<dyn Fn(Ts) -> f64 + Send + Sync>;

/// A Bigtable cluster that responds to its own size as the service does (see the module docs).
#[derive(Clone)]
pub struct World {
    /// Full cluster name, `projects/P/instances/I/clusters/C` (added with `add_bigtable_cluster`).
    pub cluster: String,
    /// The `filter` of the policy's CPU query; served `min(1, demand / serving nodes)`.
    pub cpu_filter: String,
    /// The `filter` of the storage utilization query; served `data_nodes / nodes`.
    pub storage_filter: String,
    /// Demand at a time.
    pub demand: Demand,
    /// Stored data, in nodes' worth of storage capacity.
    pub data_nodes: f64,
    /// How long new nodes take to carry load after the resize finished.
    pub warmup: Dur,
    /// How long a resize operation runs.
    pub resize_time: Dur,
    /// A point for minute `t` is served from `t + lag` on.
    pub lag: Dur,
    /// Storage utilization at `t` is computed against the node count at `t - storage_lag`: the
    /// service's own delay in counting nodes for it, beyond the point's publication lag.
    pub storage_lag: Dur,
    /// How the cluster reports itself during a resize.
    pub while_resizing: WhileResizing,
    /// CPU points that read this value instead of the model's (a glitch, an absurd sample).
    pub cpu_overrides: Vec<(Ts, f64)>,
    /// Resizes are accepted and reported done, but the size never changes (as when something
    /// else owns the size).
    pub ignores_resizes: bool,
    /// The clock shared with the controller under test.
    pub clock: crate::clock::Clock,
}

struct WorldState {
    world: World,
    /// When the node count changed, and to what, oldest first (the first entry is the start).
    nodes: Vec<(Ts, u32)>,
}

impl WorldState {
    fn nodes_at(&self, t: Ts) -> u32 {
        self.nodes.iter().rev().find(|(at, _)| *at <= t).or(self.nodes.first()).map_or(0, |(_, n)| *n)
    }

    /// Nodes carrying load at `t`: the fewest the cluster had at any time in the warm-up before
    /// `t` (added ones carry load only after the warm-up; removed ones stop at once).
    fn serving_at(&self, t: Ts) -> u32 {
        let since = t - self.world.warmup;
        self.nodes
            .iter()
            .filter(|(at, _)| *at > since && *at <= t)
            .map(|(_, n)| *n)
            .fold(self.nodes_at(since), u32::min)
    }

    fn cpu_at(&self, t: Ts) -> f64 {
        if let Some((_, v)) = self.world.cpu_overrides.iter().find(|(at, _)| *at == t) {
            return *v;
        }
        let serving = f64::from(self.serving_at(t).max(1));
        ((self.world.demand)(t) / serving).clamp(0.0, 1.0)
    }

    fn storage_at(&self, t: Ts) -> f64 {
        self.world.data_nodes / f64::from(self.nodes_at(t - self.world.storage_lag).max(1))
    }
}

#[derive(Debug, Clone)]
struct Cluster {
    project: String,
    zone: String,
    nodes: u32,
    /// Built-in autoscaling's (min, max) serve nodes, when it is on.
    autoscaling: Option<(u32, u32)>,
    busy_op: Option<String>,
}

#[derive(Debug, Clone)]
struct Pool {
    /// Nodes per zone as last set by a resize (every zone's group converges to it).
    per_zone: u32,
    /// Nodes per zone when the pool was created: `initialNodeCount`, which no resize changes.
    initial: u32,
    /// Zones whose group was resized by hand (not through GKE), with their target size.
    by_hand: Vec<(String, u32)>,
    zones: Vec<String>,
    autoscaling: Option<(u32, u32)>,
    busy_op: Option<String>,
    /// Each zone's VMs by name, as the group lists them: grown with new names and shrunk from the
    /// newest when its size is set, and missing exactly the ones `deleteInstances` removed.
    instances: std::collections::BTreeMap<String, Vec<String>>,
    /// Names given so far (a new VM never takes a deleted one's name).
    serial: u32,
}

/// A Spanner instance.
#[derive(Debug, Clone)]
struct SpannerInstance {
    config: String,
    units: u32,
    /// The managed autoscaler's `autoscalingConfig`, when it is on.
    autoscaling: Option<Value>,
    busy_op: Option<String>,
}

#[derive(Debug, Clone)]
enum Change {
    ServeNodes(u32),
    /// Bigtable's autoscaling limits: a new min and/or max serve nodes (`None`: unchanged), or
    /// autoscaling turned off with these serve nodes.
    BigtableLimits(Option<u32>, Option<u32>),
    BigtableManual(u32),
    /// A Spanner update: the processing units (`None`: unchanged) and the `autoscalingConfig`
    /// (`Some(None)`: cleared, as gcloud's `--processing-units` clears it).
    Spanner(Option<u32>, Option<Option<Value>>),
    PoolSize(u32),
    PoolAutoscaling(Value),
    /// VMs a group was told to delete: its target size dropped at the request; the operation
    /// is the VMs going away.
    DeleteVms,
}

#[derive(Debug, Clone)]
struct Op {
    target: String,
    change: Change,
    polls_left: u32,
    /// In a [`World`]: when the operation finishes, whatever the polls.
    finishes_at: Option<Ts>,
    /// The node count before (for a world cluster reporting READY with the old size).
    from: u32,
    done: bool,
    error: Option<String>,
    kind: &'static str,
    /// Order of creation (the number in its name).
    seq: u64,
    /// Never reports done ([`FakeGcp::stall_operations`]).
    stuck: bool,
    /// When it was requested, on a world's clock (the metadata's `requestTime`).
    requested_at: Option<Ts>,
}

#[derive(Default)]
struct FakeState {
    base: String,
    log: Vec<LoggedRequest>,
    written: Vec<Value>,
    scripts: HashMap<String, Script>,
    points_per_page: usize,
    faults: Vec<(Endpoint, Fault, u32)>,
    clusters: HashMap<String, Cluster>,
    pools: HashMap<String, Pool>,
    spanner: HashMap<String, SpannerInstance>,
    ops: HashMap<String, Op>,
    next_op: u64,
    polls_to_finish: u32,
    next_op_error: Option<String>,
    /// Operations started now never report done.
    stall: bool,
    /// One per world cluster (several: a replicated instance).
    worlds: Vec<WorldState>,
}

type Shared = Arc<Mutex<FakeState>>;

/// A running fake. Dropping it stops the server.
pub struct FakeGcp {
    addr: SocketAddr,
    state: Shared,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeGcp {
    /// Start on the current tokio runtime, on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<FakeGcp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(FakeState {
            base: format!("http://{addr}"),
            points_per_page: 1000,
            polls_to_finish: 1,
            ..FakeState::default()
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "fake GCP server failed");
            }
        });
        Ok(FakeGcp { addr, state, _stop: stop })
    }

    /// Start on a thread of its own, for callers without a tokio runtime (benchmarks, a browser
    /// test's setup). The server stops when the returned value is dropped.
    pub fn start_on_thread() -> std::io::Result<FakeGcp> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                match FakeGcp::start().await {
                    Ok(fake) => {
                        let _ = tx.send(Ok((fake.addr, fake.state.clone())));
                        // Keep this runtime, and with it the server, alive until the handle drops.
                        let _ = stopped.await;
                        drop(fake);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (addr, state) = rx.recv().map_err(std::io::Error::other)??;
        Ok(FakeGcp { addr, state, _stop: stop })
    }

    /// Base URL to give a client: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make the cluster `world.cluster` (already added) respond to its size as the service does.
    /// Worlds made before are forgotten.
    pub fn set_world(&self, world: World) {
        self.state().worlds.clear();
        self.add_world(world);
    }

    /// Make one more cluster (already added) respond to its size as the service does, next to
    /// the worlds there are: with the same filters, a replicated instance's clusters. Every world
    /// must share one clock.
    pub fn add_world(&self, world: World) {
        let mut st = self.state();
        let nodes = st.clusters.get(&world.cluster).map_or(1, |c| c.nodes);
        let start = (world.clock)();
        // Resizes of the cluster started before it had a world finish by its clock from now on.
        for op in st.ops.values_mut().filter(|o| o.target == world.cluster && !o.done && !o.stuck) {
            op.finishes_at = op.finishes_at.or(Some(start + world.resize_time));
        }
        st.worlds.retain(|w| w.world.cluster != world.cluster);
        st.worlds.push(WorldState { world, nodes: vec![(Ts(i64::MIN / 2), nodes), (start, nodes)] });
    }

    /// The (first) world cluster's node count over time: `(since, nodes)`, oldest first.
    pub fn world_history(&self) -> Vec<(Ts, u32)> {
        self.state().worlds.first().map(|w| w.nodes[1..].to_vec()).unwrap_or_default()
    }

    /// The node count over time of the world cluster `cluster` (full name).
    pub fn world_history_of(&self, cluster: &str) -> Vec<(Ts, u32)> {
        self.state()
            .worlds
            .iter()
            .find(|w| w.world.cluster == cluster)
            .map(|w| w.nodes[1..].to_vec())
            .unwrap_or_default()
    }

    /// Serve `script` for queries whose `filter` is exactly `filter`.
    pub fn set_time_series(&self, filter: &str, script: Script) {
        self.state().scripts.insert(filter.to_string(), script);
    }

    /// Points per `timeSeries.list` page (default 1000); a series longer than this is split over
    /// pages, with its labels repeated on each, as the real API does.
    pub fn set_points_per_page(&self, n: usize) {
        self.state().points_per_page = n.max(1);
    }

    /// Answer the next `times` requests to `endpoint` with `fault` (`u32::MAX`: always).
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        self.state().faults.push((endpoint, fault, times));
    }

    /// Remove all injected faults.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Operations report done on the `n`-th poll (0: done at once, in the resize answer). Default 1.
    pub fn set_polls_to_finish(&self, n: u32) {
        self.state().polls_to_finish = n;
    }

    /// The next operation started finishes with this error and changes nothing.
    pub fn fail_next_operation(&self, message: &str) {
        self.state().next_op_error = Some(message.to_string());
    }

    /// Operations started from now on (`true`) never report done, as a stuck operation of the
    /// service: they change nothing, and their target stays busy with them (a world cluster shows
    /// itself as its [`WhileResizing`] says, for good).
    pub fn stall_operations(&self, on: bool) {
        self.state().stall = on;
    }

    /// Start a resize of the Bigtable cluster `name` (full name) to `nodes` as a `PATCH` does, but
    /// with no request in the log: the write of a process killed before it read the answer and
    /// recorded the operation, or of another client. The operation's name; `None` if the cluster
    /// does not exist, is busy, or finished the resize at once.
    pub fn start_bigtable_resize(&self, name: &str, nodes: u32) -> Option<String> {
        let mut st = self.state();
        advance_world(&mut st);
        if st.clusters.get(name)?.busy_op.is_some() {
            return None;
        }
        let query = [("updateMask".to_string(), "serveNodes".to_string())];
        let _ = update_cluster(&mut st, name, &query, &json!({"serveNodes": nodes}));
        st.clusters.get(name).and_then(|c| c.busy_op.clone())
    }

    /// Add (or replace) a Bigtable cluster `projects/{project}/instances/{instance}/clusters/{cluster}`.
    pub fn add_bigtable_cluster(&self, project: &str, instance: &str, cluster: &str, zone: &str, nodes: u32) {
        self.state().clusters.insert(
            format!("projects/{project}/instances/{instance}/clusters/{cluster}"),
            Cluster { project: project.into(), zone: zone.into(), nodes, autoscaling: None, busy_op: None },
        );
    }

    /// Delete a Bigtable cluster (by full name): it leaves its instance's list, as a cluster
    /// deleted by its owner does.
    pub fn remove_bigtable_cluster(&self, name: &str) {
        self.state().clusters.remove(name);
    }

    /// Turn Bigtable's built-in autoscaling on (limits 1 to 10 nodes) or off for a cluster (by
    /// full name).
    pub fn set_bigtable_autoscaling(&self, name: &str, on: bool) {
        self.set_bigtable_autoscaling_limits(name, on.then_some((1, 10)));
    }

    /// Turn Bigtable's built-in autoscaling on with these (min, max) serve nodes, or off.
    pub fn set_bigtable_autoscaling_limits(&self, name: &str, limits: Option<(u32, u32)>) {
        if let Some(c) = self.state().clusters.get_mut(name) {
            c.autoscaling = limits;
        }
    }

    /// A cluster's built-in autoscaling limits (min, max), if it is on.
    pub fn bigtable_autoscaling(&self, name: &str) -> Option<(u32, u32)> {
        self.state().clusters.get(name).and_then(|c| c.autoscaling)
    }

    /// The built-in autoscalers act, each wanting `wanted` (a Bigtable cluster's serve nodes or a
    /// Spanner instance's processing units, by full name; `None`: keep its size): the live size
    /// moves to that, kept within the limits it was given. The fake's autoscalers act only when
    /// told, so a test sees that a new limit is not a new size at once, as it is not in the
    /// services (they add and remove capacity over minutes).
    pub fn run_builtin_autoscaler(&self, name: &str, wanted: Option<u32>) {
        let mut st = self.state();
        if let Some(c) = st.clusters.get_mut(name)
            && let Some((lo, hi)) = c.autoscaling
        {
            c.nodes = wanted.unwrap_or(c.nodes).clamp(lo, hi.max(lo));
        }
        if let Some(i) = st.spanner.get_mut(name)
            && let Some((lo, hi)) = spanner_limits(i.autoscaling.as_ref())
        {
            i.units = wanted.unwrap_or(i.units).clamp(lo, hi.max(lo));
        }
    }

    /// A cluster's serve nodes now (by full name).
    pub fn bigtable_nodes(&self, name: &str) -> Option<u32> {
        self.state().clusters.get(name).map(|c| c.nodes)
    }

    /// Add (or replace) a Spanner instance `projects/{project}/instances/{instance}` in the
    /// configuration `config` (e.g. `regional-us-central1`) with `units` processing units.
    pub fn add_spanner_instance(&self, project: &str, instance: &str, config: &str, units: u32) {
        self.state().spanner.insert(
            format!("projects/{project}/instances/{instance}"),
            SpannerInstance {
                config: format!("projects/{project}/instanceConfigs/{config}"),
                units,
                autoscaling: None,
                busy_op: None,
            },
        );
    }

    /// Turn a Spanner instance's managed autoscaler on with these limits (processing units), or
    /// off.
    pub fn set_spanner_autoscaling(&self, name: &str, limits: Option<(u32, u32)>) {
        if let Some(i) = self.state().spanner.get_mut(name) {
            i.autoscaling = limits.map(|(lo, hi)| {
                json!({"autoscalingLimits": {"minProcessingUnits": lo, "maxProcessingUnits": hi},
                       "autoscalingTargets": {"highPriorityCpuUtilizationPercent": 65, "storageUtilizationPercent": 95}})
            });
        }
    }

    /// Turn a Spanner instance's managed autoscaler on with limits written in nodes.
    pub fn set_spanner_autoscaling_nodes(&self, name: &str, (lo, hi): (u32, u32)) {
        if let Some(i) = self.state().spanner.get_mut(name) {
            i.autoscaling = Some(json!({"autoscalingLimits": {"minNodes": lo, "maxNodes": hi},
                "autoscalingTargets": {"highPriorityCpuUtilizationPercent": 65, "storageUtilizationPercent": 95}}));
        }
    }

    /// A Spanner instance's managed-autoscaler limits, in processing units, if it is on.
    pub fn spanner_autoscaling(&self, name: &str) -> Option<(u32, u32)> {
        self.state().spanner.get(name).and_then(|i| spanner_limits(i.autoscaling.as_ref()))
    }

    /// A Spanner instance's managed-autoscaler config as the API shows it, if it is on.
    pub fn spanner_autoscaling_config(&self, name: &str) -> Option<Value> {
        self.state().spanner.get(name).and_then(|i| i.autoscaling.clone())
    }

    /// A Spanner instance's processing units now (by full name).
    pub fn spanner_units(&self, name: &str) -> Option<u32> {
        self.state().spanner.get(name).map(|i| i.units)
    }

    /// Start an update of the Spanner instance `name` to `units` as a `PATCH` does, but with no
    /// request in the log (another client's, or a killed process's). The operation's name;
    /// `None` if the instance does not exist, is busy, or the update finished at once.
    pub fn start_spanner_update(&self, name: &str, units: u32) -> Option<String> {
        let mut st = self.state();
        if st.spanner.get(name)?.busy_op.is_some() {
            return None;
        }
        let body = json!({"instance": {"name": name, "processingUnits": units}, "fieldMask": "processingUnits"});
        let _ = update_spanner(&mut st, name, &body);
        st.spanner.get(name).and_then(|i| i.busy_op.clone())
    }

    /// Add (or replace) a GKE node pool `projects/{p}/locations/{l}/clusters/{c}/nodePools/{np}`
    /// with `per_zone` nodes in each of `zones`.
    pub fn add_node_pool(
        &self,
        project: &str,
        location: &str,
        cluster: &str,
        pool: &str,
        per_zone: u32,
        zones: &[&str],
    ) {
        let name = format!("projects/{project}/locations/{location}/clusters/{cluster}/nodePools/{pool}");
        let mut p = Pool {
            per_zone,
            initial: per_zone,
            by_hand: Vec::new(),
            zones: zones.iter().map(|z| z.to_string()).collect(),
            autoscaling: None,
            busy_op: None,
            instances: Default::default(),
            serial: 0,
        };
        p.converge(&name);
        self.state().pools.insert(name, p);
    }

    /// Enable the cluster autoscaler on a pool (by full name) with per-zone limits, or disable it.
    pub fn set_node_pool_autoscaling(&self, name: &str, limits: Option<(u32, u32)>) {
        if let Some(p) = self.state().pools.get_mut(name) {
            p.autoscaling = limits;
        }
    }

    /// A pool's nodes per zone now, and its autoscaler limits (by full name).
    pub fn node_pool(&self, name: &str) -> Option<(u32, Option<(u32, u32)>)> {
        self.state().pools.get(name).map(|p| (p.per_zone, p.autoscaling))
    }

    /// Resize one zone's instance group of a pool (by full name) by hand, as someone editing
    /// the group in the console does: the pool's own fields do not change; a later resize
    /// through GKE sets every zone again.
    pub fn set_group_size(&self, pool: &str, zone: &str, size: u32) {
        if let Some(p) = self.state().pools.get_mut(pool) {
            p.by_hand.retain(|(z, _)| z != zone);
            p.by_hand.push((zone.to_string(), size));
            p.converge(pool);
        }
    }

    /// The VMs of a pool's group in `zone` (by full name), as `listManagedInstances` names them:
    /// a GKE node is named as its VM.
    pub fn group_instances(&self, pool: &str, zone: &str) -> Vec<String> {
        self.state().pools.get(pool).and_then(|p| p.instances.get(zone).cloned()).unwrap_or_default()
    }

    /// The target size of each zone's instance group of a pool (by full name), in zone order.
    pub fn group_sizes(&self, pool: &str) -> Vec<u32> {
        self.state().pools.get(pool).map(|p| p.zones.iter().map(|z| p.group_size(z)).collect()).unwrap_or_default()
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state().log.clone()
    }

    /// Requests routed to `endpoint`.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<LoggedRequest> {
        self.state().log.iter().filter(|r| r.endpoint == endpoint).cloned().collect()
    }

    /// Requests that would change a target's size (answered or not).
    pub fn resize_requests(&self) -> Vec<LoggedRequest> {
        self.state().log.iter().filter(|r| r.endpoint.is_resize()).cloned().collect()
    }

    /// How many long-running operations the fake has started (each accepted resize starts one).
    pub fn operations_started(&self) -> usize {
        self.state().ops.len()
    }

    /// Time series accepted by `projects.timeSeries.create`, oldest first (as JSON).
    pub fn written_series(&self) -> Vec<Value> {
        self.state().written.clone()
    }

    /// Forget the request log.
    pub fn clear_log(&self) {
        self.state().log.clear();
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        if let Some(b) = hex {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(method: &Method, path: &str) -> Endpoint {
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["v3", "projects", _, "timeSeries"]) => Endpoint::ListTimeSeries,
        ("POST", ["v3", "projects", _, "timeSeries"]) => Endpoint::CreateTimeSeries,
        ("GET", ["v2", "projects", _, "instances", _, "clusters", _]) => Endpoint::GetCluster,
        ("GET", ["v2", "projects", _, "instances", _, "clusters"]) => Endpoint::ListClusters,
        ("PATCH", ["v2", "projects", _, "instances", _, "clusters", _]) => Endpoint::UpdateCluster,
        ("GET", ["v2", "operations", .., "operations"]) => Endpoint::ListBigtableOperations,
        ("GET", ["v2", "operations", ..]) => Endpoint::BigtableOperation,
        ("GET", ["v1", "projects", _, "instances", _]) => Endpoint::GetSpannerInstance,
        ("PATCH", ["v1", "projects", _, "instances", _]) => Endpoint::UpdateSpannerInstance,
        ("GET", ["v1", "projects", _, "instances", _, "operations"]) => Endpoint::ListSpannerOperations,
        ("GET", ["v1", "projects", _, "instances", _, "operations", _]) => Endpoint::SpannerOperation,
        ("GET", ["v1", "projects", _, "locations", _, "clusters", _]) => Endpoint::GkeGetCluster,
        ("GET", ["v1", "projects", _, "locations", _, "clusters", _, "nodePools", _]) => Endpoint::GetNodePool,
        ("POST", ["v1", "projects", _, "locations", _, "clusters", _, "nodePools", np]) if np.ends_with(":setSize") => {
            Endpoint::SetNodePoolSize
        }
        ("POST", ["v1", "projects", _, "locations", _, "clusters", _, "nodePools", np])
            if np.ends_with(":setAutoscaling") =>
        {
            Endpoint::SetNodePoolAutoscaling
        }
        ("GET", ["v1", "projects", _, "locations", _, "operations", _]) => Endpoint::GkeOperation,
        ("GET", ["compute", "v1", "projects", _, "zones", _, "instanceGroupManagers", _]) => {
            Endpoint::GetInstanceGroupManager
        }
        ("GET", ["compute", "v1", "projects", _, "zones", _, "autoscalers"]) => Endpoint::ListAutoscalers,
        ("POST", ["compute", "v1", "projects", _, "zones", _, "instanceGroupManagers", _, "deleteInstances"]) => {
            Endpoint::DeleteInstances
        }
        ("GET", ["compute", "v1", "projects", _, "zones", _, "operations", _])
        | ("POST", ["compute", "v1", "projects", _, "zones", _, "operations", _, "wait"]) => Endpoint::ZoneOperation,
        _ => Endpoint::Unknown,
    }
}

/// A Google API error body: `{"error": {"code", "message", "status", "details"}}`.
fn google_error(http: StatusCode, status: &str, message: &str, details: Value) -> Response {
    let body = json!({"error": {"code": http.as_u16(), "message": message, "status": status, "details": details}});
    (http, [("content-type", "application/json; charset=UTF-8")], body.to_string()).into_response()
}

fn fault_response(endpoint: Endpoint, fault: &Fault, resource: &str) -> Option<Response> {
    let (domain, permission) = endpoint.permission();
    Some(match fault {
        Fault::TooManyRequests => google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            &format!(
                "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service '{domain}' for consumer 'project_number:123456789'."
            ),
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com",
                    "metadata": {"service": domain, "consumer": "projects/123456789", "quota_limit": "ReadRequestsPerMinutePerProject"}}]),
        ),
        Fault::Unavailable => google_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            json!([]),
        ),
        Fault::MalformedJson => {
            (StatusCode::OK, [("content-type", "application/json")], "{\"timeSeries\": [{\"points\": [{\"interval\": ")
                .into_response()
        }
        Fault::PermissionDenied => google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!("Permission '{permission}' denied on resource '//{domain}/{resource}' (or it may not exist)."),
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                    "metadata": {"permission": permission, "resource": resource}}]),
        ),
        Fault::NotFound => google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Resource '{resource}' was not found."),
            json!([]),
        ),
        Fault::OperationInProgress => google_error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            &format!(
                "Cannot modify '{resource}': another operation is in progress (incompatible operation operation-0)."
            ),
            json!([]),
        ),
        Fault::Delay(_) | Fault::LostResponse(_) => return None,
    })
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, [("content-type", "application/json; charset=UTF-8")], v.to_string()).into_response()
}

async fn handle(State(shared): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = percent_decode(uri.path());
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let endpoint = route(&method, &path);
    let resource = path.trim_start_matches('/').split_once('/').map_or(String::new(), |(_, r)| r.to_string());
    let fault = {
        let mut st = shared.lock().unwrap_or_else(|p| p.into_inner());
        let fault = st.faults.iter_mut().find(|(e, _, n)| *e == endpoint && *n > 0).map(|(_, f, n)| {
            *n = n.saturating_sub(if *n == u32::MAX { 0 } else { 1 });
            f.clone()
        });
        st.log.push(LoggedRequest {
            endpoint,
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            fault: fault.clone(),
        });
        fault
    };
    if let Some(f) = &fault {
        if let Fault::Delay(d) = f {
            tokio::time::sleep(*d).await;
        } else if let Some(r) = fault_response(endpoint, f, resource.split(':').next().unwrap_or_default()) {
            return r;
        }
    }
    let response = respond(&shared, endpoint, &method, &path, &resource, &query, &body);
    if let Some(Fault::LostResponse(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    response
}

fn respond(
    shared: &Shared,
    endpoint: Endpoint,
    method: &Method,
    path: &str,
    resource: &str,
    query: &[(String, String)],
    body: &Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut st = shared.lock().unwrap_or_else(|p| p.into_inner());
    advance_world(&mut st);
    let name = resource.split(':').next().unwrap_or_default().to_string();
    match endpoint {
        Endpoint::ListTimeSeries => list_time_series(&st, query),
        Endpoint::CreateTimeSeries => create_time_series(&mut st, &body),
        Endpoint::GetCluster => match st.clusters.get(&name) {
            Some(c) => ok(world_cluster_json(&st, &name, c)),
            None => fault_response(endpoint, &Fault::NotFound, &name).unwrap_or_else(|| ok(json!({}))),
        },
        Endpoint::ListClusters => {
            let prefix = format!("{name}/");
            let mut names: Vec<&String> = st.clusters.keys().filter(|n| n.starts_with(&prefix)).collect();
            if names.is_empty() {
                return fault_response(endpoint, &Fault::NotFound, &name).unwrap_or_else(|| ok(json!({})));
            }
            names.sort();
            let clusters: Vec<Value> = names.iter().map(|n| world_cluster_json(&st, n, &st.clusters[*n])).collect();
            ok(json!({"clusters": clusters}))
        }
        Endpoint::UpdateCluster => update_cluster(&mut st, &name, query, &body),
        Endpoint::BigtableOperation | Endpoint::GkeOperation => get_operation(&mut st, endpoint, &name),
        Endpoint::ListBigtableOperations => {
            list_bigtable_operations(&st, name.strip_suffix("/operations").unwrap_or(&name), query)
        }
        Endpoint::GkeGetCluster => {
            let prefix = format!("{name}/nodePools/");
            let pools: Vec<Value> =
                st.pools.iter().filter(|(n, _)| n.starts_with(&prefix)).map(|(n, p)| pool_json(n, p)).collect();
            if pools.is_empty() {
                return fault_response(endpoint, &Fault::NotFound, &name).unwrap_or_else(|| ok(json!({})));
            }
            let location = name.split('/').nth(3).unwrap_or_default();
            ok(json!({"name": name.rsplit('/').next(), "location": location, "status": "RUNNING", "nodePools": pools}))
        }
        Endpoint::GetNodePool => match st.pools.get(&name) {
            Some(p) => ok(pool_json(&name, p)),
            None => fault_response(endpoint, &Fault::NotFound, &name).unwrap_or_else(|| ok(json!({}))),
        },
        Endpoint::SetNodePoolSize | Endpoint::SetNodePoolAutoscaling => set_pool(&mut st, endpoint, &name, &body),
        Endpoint::GetInstanceGroupManager => get_group(&st, path),
        // GKE's groups have no Compute autoscaler (the cluster autoscaler is GKE's own): none.
        Endpoint::ListAutoscalers => ok(json!({"kind": "compute#autoscalerList", "items": []})),
        Endpoint::DeleteInstances => delete_instances(&mut st, path, &body),
        Endpoint::ZoneOperation => zone_operation(&mut st, path),
        Endpoint::GetSpannerInstance => match st.spanner.get(&name) {
            Some(i) => ok(spanner_json(&name, i)),
            None => fault_response(endpoint, &Fault::NotFound, &name).unwrap_or_else(|| ok(json!({}))),
        },
        Endpoint::UpdateSpannerInstance => update_spanner(&mut st, &name, &body),
        Endpoint::SpannerOperation => get_operation(&mut st, endpoint, &name),
        Endpoint::ListSpannerOperations => {
            list_spanner_operations(&st, name.strip_suffix("/operations").unwrap_or(&name), query)
        }
        Endpoint::Unknown => {
            google_error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("no fake for {method} {path}"), json!([]))
        }
    }
}

/// `projects.timeSeries.create` with the API's rules: at most 200 series per request, one
/// point per series, a series at most once per request, custom metric types only. Accepted
/// series are kept for [`FakeGcp::written_series`].
fn create_time_series(st: &mut FakeState, body: &Value) -> Response {
    let bad = |m: &str| google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", m, json!([]));
    let Some(series) = body["timeSeries"].as_array() else { return bad("timeSeries is required") };
    if series.is_empty() || series.len() > 200 {
        return bad(&format!("a request must hold 1 to 200 time series, not {}", series.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, ts) in series.iter().enumerate() {
        let kind = ts["metric"]["type"].as_str().unwrap_or_default();
        if !kind.starts_with("custom.googleapis.com/") {
            return bad(&format!("timeSeries[{i}].metric.type {kind:?} is not a custom metric"));
        }
        if ts["points"].as_array().map_or(0, Vec::len) != 1 {
            return bad(&format!("timeSeries[{i}]: exactly one point is required"));
        }
        if !seen.insert((ts["metric"].to_string(), ts["resource"].to_string())) {
            return bad(&format!(
                "timeSeries[{i}]: Duplicate TimeSeries encountered; only one point per series per request"
            ));
        }
    }
    st.written.extend(series.iter().cloned());
    ok(json!({}))
}

fn list_time_series(st: &FakeState, query: &[(String, String)]) -> Response {
    let param = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let parse = |k: &str| param(k).and_then(|v| Ts::parse_rfc3339(v).ok());
    let (Some(filter), Some(end)) = (param("filter"), parse("interval.endTime")) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "filter and interval.endTime are required",
            json!([]),
        );
    };
    let start = parse("interval.startTime").unwrap_or(end);
    let computed;
    let script = match (st.scripts.get(filter), world_script(st, query, filter, start, end)) {
        (_, Some(s)) => {
            computed = s;
            &computed
        }
        (Some(s), None) => s,
        (None, None) => return ok(json!({})),
    };
    // (series, point) pairs in response order: series by series, each newest first.
    let mut flat: Vec<(usize, Ts, FakeValue)> = Vec::new();
    for (i, s) in script.series.iter().enumerate() {
        let mut pts: Vec<_> = s.points.iter().filter(|(t, _)| *t > start && *t <= end).collect();
        pts.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        flat.extend(pts.into_iter().map(|(t, v)| (i, *t, *v)));
    }
    let offset: usize =
        param("pageToken").and_then(|t| t.strip_prefix("offset-")).and_then(|n| n.parse().ok()).unwrap_or(0);
    let page = flat.iter().skip(offset).take(st.points_per_page);
    let metric_type = filter.split('"').nth(1).unwrap_or("custom.googleapis.com/fake");
    let mut series: Vec<Value> = Vec::new();
    let mut current: Option<usize> = None;
    for (i, t, v) in page {
        if current != Some(*i) {
            current = Some(*i);
            let labels: serde_json::Map<String, Value> =
                script.series[*i].labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let value_type = if matches!(v, FakeValue::Int(_)) { "INT64" } else { "DOUBLE" };
            series.push(
                json!({"metric": {"type": metric_type}, "resource": {"type": "bigtable_cluster", "labels": labels},
                "metricKind": "GAUGE", "valueType": value_type, "points": []}),
            );
        }
        let value = match v {
            FakeValue::Double(d) if d.is_nan() => json!({"doubleValue": "NaN"}),
            FakeValue::Double(d) => json!({"doubleValue": d}),
            FakeValue::Int(n) => json!({"int64Value": n.to_string()}),
        };
        let when = t.to_rfc3339();
        if let Some(points) = series.last_mut().and_then(|s| s["points"].as_array_mut()) {
            points.push(json!({"interval": {"startTime": when, "endTime": when}, "value": value}));
        }
    }
    let mut out = json!({});
    if !series.is_empty() {
        out["timeSeries"] = json!(series);
    }
    if offset + st.points_per_page < flat.len() {
        out["nextPageToken"] = json!(format!("offset-{}", offset + st.points_per_page));
    }
    if !script.execution_errors.is_empty() {
        out["executionErrors"] =
            json!(script.execution_errors.iter().map(|m| json!({"code": 14, "message": m})).collect::<Vec<_>>());
    }
    ok(out)
}

fn cluster_json(name: &str, c: &Cluster) -> Value {
    let mut v = json!({
        "name": name, "location": format!("projects/{}/locations/{}", c.project, c.zone),
        "state": if c.busy_op.is_some() { "RESIZING" } else { "READY" },
        "serveNodes": c.nodes, "nodeScalingFactor": "NODE_SCALING_FACTOR_1X", "defaultStorageType": "SSD",
    });
    if let Some((min, max)) = c.autoscaling {
        v["clusterConfig"] = json!({"clusterAutoscalingConfig": {
            "autoscalingLimits": {"minServeNodes": min, "maxServeNodes": max},
            "autoscalingTargets": {"cpuUtilizationPercent": 60, "storageUtilizationGibPerNode": 2560}}});
    }
    v
}

impl Pool {
    /// The target size of the pool's group in `zone`.
    fn group_size(&self, zone: &str) -> u32 {
        self.instances.get(zone).map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX))
    }

    /// The size each zone's group was last set to (by GKE, or by hand).
    fn wanted(&self, zone: &str) -> u32 {
        self.by_hand.iter().find(|(z, _)| z == zone).map_or(self.per_zone, |(_, n)| *n)
    }

    /// Bring every zone's VMs to the size it was set to, as the group does.
    fn converge(&mut self, name: &str) {
        for zone in self.zones.clone() {
            let want = self.wanted(&zone) as usize;
            let base = group_name(name, &zone).trim_end_matches("-grp").to_string();
            let list = self.instances.entry(zone).or_default();
            list.truncate(want);
            while list.len() < want {
                self.serial += 1;
                list.push(format!("{base}-{:04x}", self.serial));
            }
        }
    }
}

/// The name of the instance group of pool `name` (`projects/P/locations/L/clusters/C/nodePools/N`)
/// in `zone`, as GKE names them (`gke-CLUSTER-POOL-HASH-grp`; the hash here is the zone's).
fn group_name(name: &str, zone: &str) -> String {
    let part = |i: usize| name.split('/').nth(i).unwrap_or_default();
    let hash = zone.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("gke-{}-{}-{hash:08x}-grp", part(5), part(7))
}

/// `https://www.googleapis.com/compute/v1/projects/P/zones/Z/instanceGroupManagers/G` of pool
/// `name`'s group in `zone`.
fn group_url(name: &str, zone: &str) -> String {
    let project = name.split('/').nth(1).unwrap_or_default();
    format!(
        "https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/instanceGroupManagers/{}",
        group_name(name, zone)
    )
}

/// `instanceGroupManagers.get`: the group of a pool in one zone.
fn get_group(st: &FakeState, path: &str) -> Response {
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (project, zone, group) = match seg.as_slice() {
        ["compute", "v1", "projects", p, "zones", z, "instanceGroupManagers", g] => (*p, *z, *g),
        _ => return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such group", json!([])),
    };
    let found = st.pools.iter().find(|(n, p)| {
        n.split('/').nth(1) == Some(project) && p.zones.iter().any(|z| z == zone) && group_name(n, zone) == group
    });
    let Some((name, p)) = found else {
        let resource = format!("projects/{project}/zones/{zone}/instanceGroupManagers/{group}");
        return fault_response(Endpoint::GetInstanceGroupManager, &Fault::NotFound, &resource)
            .unwrap_or_else(|| ok(json!({})));
    };
    let url = group_url(name, zone);
    ok(json!({
        "kind": "compute#instanceGroupManager", "id": "4107011000000000000", "name": group,
        "zone": format!("https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"),
        "baseInstanceName": group.trim_end_matches("-grp"),
        "instanceGroup": url.replace("instanceGroupManagers", "instanceGroups"),
        "targetSize": p.group_size(zone),
        "status": {"isStable": p.busy_op.is_none()},
        "currentActions": {"none": p.group_size(zone), "creating": 0, "deleting": 0},
        "selfLink": url,
    }))
}

/// `instanceGroupManagers.deleteInstances`: the named VMs leave the group and its target size
/// drops by as many at once (as the group's does); the answer is a zone operation that finishes
/// as the others do. A name that is not one of the group's VMs is skipped with
/// `skipInstancesOnValidationError`, and refuses the whole request without it (400).
fn delete_instances(st: &mut FakeState, path: &str, body: &Value) -> Response {
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["compute", "v1", "projects", project, "zones", zone, "instanceGroupManagers", group, "deleteInstances"] =
        seg.as_slice()
    else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such group", json!([]));
    };
    let (project, zone, group) = (project.to_string(), zone.to_string(), group.to_string());
    let found = st.pools.iter().find(|(n, p)| {
        n.split('/').nth(1) == Some(project.as_str()) && p.zones.contains(&zone) && group_name(n, &zone) == group
    });
    let Some(pool) = found.map(|(n, _)| n.clone()) else {
        let resource = format!("projects/{project}/zones/{zone}/instanceGroupManagers/{group}");
        return fault_response(Endpoint::DeleteInstances, &Fault::NotFound, &resource).unwrap_or_else(|| ok(json!({})));
    };
    let skip = body["skipInstancesOnValidationError"].as_bool().unwrap_or(false);
    let asked: Vec<String> = body["instances"]
        .as_array()
        .map(|a| {
            a.iter().filter_map(Value::as_str).map(|u| u.rsplit('/').next().unwrap_or_default().to_string()).collect()
        })
        .unwrap_or_default();
    let Some(p) = st.pools.get_mut(&pool) else { return ok(json!({})) };
    let list = p.instances.entry(zone.clone()).or_default();
    if let Some(stranger) = asked.iter().find(|a| !list.contains(a))
        && !skip
    {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("Instance '{stranger}' is not a member of the instance group '{group}'."),
            json!([]),
        );
    }
    list.retain(|i| !asked.contains(i));
    let left = u32::try_from(list.len()).unwrap_or(u32::MAX);
    p.by_hand.retain(|(z, _)| *z != zone);
    p.by_hand.push((zone.clone(), left));
    let prefix = format!("compute/v1/projects/{project}/zones/{zone}/operations/operation-");
    let (full, op) = new_op(st, &pool, Change::DeleteVms, "compute.instanceGroupManagers.deleteInstances", prefix);
    st.ops.insert(full.clone(), op);
    if st.polls_to_finish == 0 && !st.stall {
        finish(st, &full);
    }
    ok(zone_op_json(st, &full, &group))
}

/// `zoneOperations.get`, and `zoneOperations.wait` (gcloud's way of following one; the real
/// call returns when the operation is done or after up to two minutes, so its caller loops):
/// the operation, finishing on the N-th poll like the others.
fn zone_operation(st: &mut FakeState, path: &str) -> Response {
    let full = path.trim_start_matches('/').trim_end_matches("/wait").to_string();
    let Some(op) = st.ops.get_mut(&full) else {
        return fault_response(Endpoint::ZoneOperation, &Fault::NotFound, &full).unwrap_or_else(|| ok(json!({})));
    };
    if !op.done && !op.stuck {
        op.polls_left = op.polls_left.saturating_sub(1);
        if op.polls_left == 0 {
            finish(st, &full);
        }
    }
    ok(zone_op_json(st, &full, ""))
}

/// A Compute zone `Operation` as the API shows it.
fn zone_op_json(st: &FakeState, full: &str, group: &str) -> Value {
    let Some(op) = st.ops.get(full) else { return json!({}) };
    let short = full.rsplit('/').next().unwrap_or_default();
    let zone = full.split('/').nth(5).unwrap_or_default();
    let project = full.split('/').nth(3).unwrap_or_default();
    let mut v = json!({"kind": "compute#operation", "id": op.seq.to_string(), "name": short,
        "zone": format!("https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"),
        "operationType": op.kind, "progress": if op.done { 100 } else { 0 },
        "status": if op.done { "DONE" } else { "RUNNING" },
        "selfLink": format!("https://www.googleapis.com/{full}")});
    if !group.is_empty() {
        v["targetLink"] = json!(format!(
            "https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/instanceGroupManagers/{group}"
        ));
    }
    if let Some(msg) = op.error.as_ref().filter(|_| op.done) {
        v["error"] = json!({"errors": [{"code": "RESOURCE_OPERATION_FAILED", "message": msg}]});
    }
    v
}

fn pool_json(name: &str, p: &Pool) -> Value {
    let groups: Vec<String> = p.zones.iter().map(|z| group_url(name, z)).collect();
    let mut v = json!({
        "name": name.rsplit('/').next(), "config": {"machineType": "e2-standard-4", "diskSizeGb": 100},
        "initialNodeCount": p.initial, "locations": p.zones, "version": "1.33.5-gke.1000000",
        "instanceGroupUrls": groups,
        "status": if p.busy_op.is_some() { "RECONCILING" } else { "RUNNING" },
        "selfLink": format!("https://container.googleapis.com/v1/{name}"),
    });
    if let Some((min, max)) = p.autoscaling {
        v["autoscaling"] =
            json!({"enabled": true, "minNodeCount": min, "maxNodeCount": max, "locationPolicy": "BALANCED"});
    }
    v
}

fn new_op(st: &mut FakeState, target: &str, change: Change, kind: &'static str, prefix: String) -> (String, Op) {
    st.next_op += 1;
    let name = format!("{prefix}{}", st.next_op);
    let world = st.worlds.iter().find(|w| w.world.cluster == target);
    let op = Op {
        target: target.to_string(),
        change,
        polls_left: st.polls_to_finish,
        finishes_at: world.filter(|_| !st.stall).map(|w| (w.world.clock)() + w.world.resize_time),
        from: st.clusters.get(target).map_or(0, |c| c.nodes),
        done: false,
        error: st.next_op_error.take(),
        kind,
        seq: st.next_op,
        stuck: st.stall,
        requested_at: world.map(|w| (w.world.clock)()),
    };
    (name, op)
}

/// `PartialUpdateCluster`. The mask (`updateMask`, snake_case from gcloud, lowerCamelCase from
/// the Rust client) names what changes: `serve_nodes` (ignored, as the service ignores it, while
/// built-in autoscaling is on, unless the mask also clears `cluster_config.cluster_autoscaling_config`,
/// which turns it off as gcloud's `--disable-autoscaling` does), or the autoscaling limits'
/// `min_serve_nodes` / `max_serve_nodes`, which must keep 1 <= min <= max <= 10 x min.
fn update_cluster(st: &mut FakeState, name: &str, query: &[(String, String)], body: &Value) -> Response {
    let bad = |m: &str| google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", m, json!([]));
    let mask = query.iter().find(|(k, _)| k == "updateMask").map(|(_, v)| v.as_str()).unwrap_or_default();
    // One spelling for both clients: lowerCamelCase paths read as snake_case.
    let snake = |p: &str| {
        p.chars().fold(String::new(), |mut out, c| {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
            out
        })
    };
    let paths: Vec<String> = mask.split(',').map(|p| snake(p.trim())).filter(|p| !p.is_empty()).collect();
    const LIMITS: &str = "cluster_config.cluster_autoscaling_config.autoscaling_limits";
    let number =
        |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).and_then(|n| u32::try_from(n).ok());
    let limits = &body["clusterConfig"]["clusterAutoscalingConfig"]["autoscalingLimits"];
    let (mut nodes, mut clear, mut min, mut max) = (None, false, None, None);
    for p in &paths {
        match p.as_str() {
            "serve_nodes" => match number(&body["serveNodes"]).filter(|n| *n > 0) {
                Some(n) => nodes = Some(n),
                None => return bad("serve_nodes must be positive"),
            },
            "cluster_config.cluster_autoscaling_config" if body["clusterConfig"].is_null() => clear = true,
            p if p == format!("{LIMITS}.min_serve_nodes") => min = Some(number(&limits["minServeNodes"]).unwrap_or(0)),
            p if p == format!("{LIMITS}.max_serve_nodes") => max = Some(number(&limits["maxServeNodes"]).unwrap_or(0)),
            other => return bad(&format!("unsupported update mask path {other:?}")),
        }
    }
    if paths.is_empty() {
        return bad(&format!("unsupported update mask {mask:?}"));
    }
    let Some(c) = st.clusters.get(name).cloned() else {
        return fault_response(Endpoint::UpdateCluster, &Fault::NotFound, name).unwrap_or_else(|| ok(json!({})));
    };
    let change = match (nodes, clear, min.is_some() || max.is_some(), c.autoscaling) {
        (Some(n), true, false, _) => Change::BigtableManual(n),
        // serve_nodes is output only while autoscaling is on: the write is taken and ignored.
        (Some(n), false, false, _) => Change::ServeNodes(n),
        (None, false, true, Some((lo, hi))) => {
            let (lo, hi) = (min.unwrap_or(lo), max.unwrap_or(hi));
            if lo < 1 || hi < lo || hi > lo.saturating_mul(10) {
                return bad(&format!(
                    "autoscaling limits must satisfy 1 <= min_serve_nodes <= max_serve_nodes <= 10 x min_serve_nodes (got min {lo}, max {hi})"
                ));
            }
            Change::BigtableLimits(min, max)
        }
        (None, false, true, None) => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                &format!("{name} does not have autoscaling enabled: set its whole cluster_autoscaling_config first"),
                json!([]),
            );
        }
        _ => return bad(&format!("unsupported combination of update mask paths {mask:?}")),
    };
    if c.busy_op.is_some() {
        return fault_response(Endpoint::UpdateCluster, &Fault::OperationInProgress, name)
            .unwrap_or_else(|| ok(json!({})));
    }
    let prefix = format!("operations/{name}/locations/{}/operations/", c.zone);
    let (op_name, op) = new_op(st, name, change, "bigtable", prefix);
    st.ops.insert(op_name.clone(), op);
    if let Some(c) = st.clusters.get_mut(name) {
        c.busy_op = Some(op_name.clone());
    }
    if st.polls_to_finish == 0 && st.ops.get(&op_name).is_some_and(|o| o.finishes_at.is_none() && !o.stuck) {
        finish(st, &op_name);
    }
    ok(bigtable_op_json(st, &op_name))
}

fn set_pool(st: &mut FakeState, endpoint: Endpoint, name: &str, body: &Value) -> Response {
    let Some(p) = st.pools.get(name).cloned() else {
        return fault_response(endpoint, &Fault::NotFound, name).unwrap_or_else(|| ok(json!({})));
    };
    if let Some(busy) = &p.busy_op {
        let msg = format!("Cluster is running incompatible operation {}.", busy.rsplit('/').next().unwrap_or_default());
        return google_error(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", &msg, json!([]));
    }
    let (change, kind) = if endpoint == Endpoint::SetNodePoolSize {
        let Some(n) = body["nodeCount"].as_u64().and_then(|n| u32::try_from(n).ok()) else {
            return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "nodeCount is required", json!([]));
        };
        (Change::PoolSize(n), "SET_NODE_POOL_SIZE")
    } else {
        (Change::PoolAutoscaling(body["autoscaling"].clone()), "SET_NODE_POOL_MANAGEMENT")
    };
    let location = name.split('/').nth(3).unwrap_or_default().to_string();
    let project = name.split('/').nth(1).unwrap_or_default().to_string();
    let (short, op) = new_op(st, name, change, kind, "operation-".to_string());
    let full = format!("projects/{project}/locations/{location}/operations/{short}");
    st.ops.insert(full.clone(), op);
    if let Some(p) = st.pools.get_mut(name) {
        p.busy_op = Some(full.clone());
    }
    if st.polls_to_finish == 0 && !st.stall {
        finish(st, &full);
    }
    ok(gke_op_json(st, &full))
}

fn get_operation(st: &mut FakeState, endpoint: Endpoint, name: &str) -> Response {
    let name = if endpoint == Endpoint::BigtableOperation {
        format!("operations/{}", name.trim_start_matches("operations/"))
    } else {
        name.to_string()
    };
    let Some(op) = st.ops.get_mut(&name) else {
        return fault_response(endpoint, &Fault::NotFound, &name).unwrap_or_else(|| ok(json!({})));
    };
    // A world operation finishes by the clock (see `advance_world`), not by polls; a stuck one
    // never does.
    if !op.done && op.finishes_at.is_none() && !op.stuck {
        op.polls_left = op.polls_left.saturating_sub(1);
        if op.polls_left == 0 {
            finish(st, &name);
        }
    }
    match endpoint {
        Endpoint::BigtableOperation => ok(bigtable_op_json(st, &name)),
        Endpoint::SpannerOperation => ok(spanner_op_json(st, &name)),
        _ => ok(gke_op_json(st, &name)),
    }
}

/// Complete an operation: apply its change (unless it fails) and free its target.
fn finish(st: &mut FakeState, name: &str) {
    let Some(op) = st.ops.get_mut(name) else { return };
    op.done = true;
    let (target, change, failed) = (op.target.clone(), op.change.clone(), op.error.is_some());
    match change {
        Change::BigtableLimits(min, max) => {
            if let Some(c) = st.clusters.get_mut(&target) {
                c.busy_op = None;
                if let (false, Some((lo, hi))) = (failed, c.autoscaling) {
                    // New limits, not a new size: the autoscaler moves into them later.
                    c.autoscaling = Some((min.unwrap_or(lo), max.unwrap_or(hi)));
                }
            }
        }
        Change::BigtableManual(n) => {
            if let Some(c) = st.clusters.get_mut(&target) {
                c.busy_op = None;
                if !failed {
                    c.autoscaling = None;
                    c.nodes = n;
                }
            }
        }
        Change::ServeNodes(n) => {
            // While built-in autoscaling is on, serve_nodes is output only: ignored.
            let autoscaled = st.clusters.get(&target).is_some_and(|c| c.autoscaling.is_some());
            let ignored = autoscaled || st.worlds.iter().any(|w| w.world.cluster == target && w.world.ignores_resizes);
            let failed = failed || ignored;
            if let Some(c) = st.clusters.get_mut(&target) {
                c.busy_op = None;
                if !failed {
                    c.nodes = n;
                }
            }
            let at = st.ops.get(name).and_then(|o| o.finishes_at);
            if let (Some(w), Some(at), false) = (st.worlds.iter_mut().find(|w| w.world.cluster == target), at, failed) {
                w.nodes.push((at, n));
            }
        }
        Change::PoolSize(n) => {
            if let Some(p) = st.pools.get_mut(&target) {
                p.busy_op = None;
                if !failed {
                    // SetNodePoolSize sets every zone's group, hand edits included.
                    p.per_zone = n;
                    p.by_hand.clear();
                    p.converge(&target);
                }
            }
        }
        Change::DeleteVms => {}
        Change::Spanner(units, autoscaling) => {
            if let Some(i) = st.spanner.get_mut(&target) {
                i.busy_op = None;
                if !failed {
                    if let Some(u) = units {
                        i.units = u;
                    }
                    if let Some(a) = autoscaling {
                        i.autoscaling = a;
                    }
                }
            }
        }
        Change::PoolAutoscaling(a) => {
            if let Some(p) = st.pools.get_mut(&target) {
                p.busy_op = None;
                if !failed {
                    let n = |k: &str| a[k].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
                    p.autoscaling =
                        a["enabled"].as_bool().unwrap_or(false).then(|| (n("minNodeCount"), n("maxNodeCount")));
                }
            }
        }
    }
}

/// Finish the world's operations whose time has come, in order.
fn advance_world(st: &mut FakeState) {
    let Some(now) = st.worlds.first().map(|w| (w.world.clock)()) else { return };
    let mut due: Vec<(Ts, String)> = st
        .ops
        .iter()
        .filter(|(_, o)| !o.done && o.finishes_at.is_some_and(|t| t <= now))
        .map(|(n, o)| (o.finishes_at.unwrap_or(now), n.clone()))
        .collect();
    due.sort();
    for (_, name) in due {
        finish(st, &name);
    }
}

/// A cluster as the API shows it; a world cluster in the middle of a resize shows itself as its
/// [`WhileResizing`] says.
fn world_cluster_json(st: &FakeState, name: &str, c: &Cluster) -> Value {
    let mut v = cluster_json(name, c);
    let running = c.busy_op.as_ref().and_then(|op| st.ops.get(op));
    match (st.worlds.iter().find(|w| w.world.cluster == name), running) {
        (Some(w), Some(op)) => {
            let Change::ServeNodes(to) = op.change else { return v };
            match w.world.while_resizing {
                WhileResizing::ResizingWithNewSize => v["serveNodes"] = json!(to),
                WhileResizing::ReadyWithOldSize => {
                    v["serveNodes"] = json!(op.from);
                    v["state"] = json!("READY");
                }
            }
            v
        }
        _ => v,
    }
}

/// The worlds' series for `filter`, one point a minute in `(start, end]`, as visible now: one
/// series per matching world, aggregated as the query's `crossSeriesReducer` and
/// `groupByFields` say.
fn world_script(st: &FakeState, query: &[(String, String)], filter: &str, start: Ts, end: Ts) -> Option<Script> {
    let minute = Dur::mins(1).0;
    let mut series = Vec::new();
    // Monitoring applies a cluster clause as it does any label clause: a world answers the filter
    // without it, and only for the clusters it selects.
    let (base, selected) = cluster_clause(filter);
    for w in &st.worlds {
        let id = w.world.cluster.rsplit('/').next().unwrap_or_default();
        let answers = |f: &str| f == w.world.cpu_filter || f == w.world.storage_filter;
        let f = if answers(filter) {
            filter
        } else if answers(base) && selected.as_ref().is_some_and(|ids| ids.iter().any(|s| s == id)) {
            base
        } else {
            continue;
        };
        let cpu = f == w.world.cpu_filter;
        let visible = end.min((w.world.clock)() - w.world.lag);
        let mut points = Vec::new();
        let mut t = Ts((start.0.div_euclid(minute) + 1) * minute);
        // Bounded by the query's own interval (the controller asks for hours at most).
        while t <= visible && points.len() < 10_000 {
            let v = if cpu { w.cpu_at(t) } else { w.storage_at(t) };
            points.push((t, FakeValue::Double(v)));
            t = t + Dur::mins(1);
        }
        let id = w.world.cluster.rsplit('/').next().unwrap_or_default().to_string();
        series.push(FakeSeries { labels: vec![("cluster".into(), id)], points });
    }
    if series.is_empty() {
        return None;
    }
    let reducer = query.iter().find(|(k, _)| k == "aggregation.crossSeriesReducer").map(|(_, v)| v.as_str());
    // Enum names or the int encoding the Rust clients send.
    let reduce: Option<fn(&[f64]) -> f64> = match reducer {
        Some("REDUCE_MEAN" | "1") => Some(|v| v.iter().sum::<f64>() / v.len() as f64),
        Some("REDUCE_MIN" | "2") => Some(|v| v.iter().copied().fold(f64::INFINITY, f64::min)),
        Some("REDUCE_MAX" | "3") => Some(|v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        Some("REDUCE_SUM" | "4") => Some(|v| v.iter().sum()),
        _ => None,
    };
    let Some(reduce) = reduce else {
        return Some(Script { series, execution_errors: Vec::new() });
    };
    let by_cluster = query.iter().any(|(k, v)| k == "aggregation.groupByFields" && v == "resource.labels.cluster");
    let groups: Vec<Vec<FakeSeries>> =
        if by_cluster { series.into_iter().map(|s| vec![s]).collect() } else { vec![series] };
    let reduced = groups
        .into_iter()
        .map(|group| {
            let mut at: std::collections::BTreeMap<Ts, Vec<f64>> = std::collections::BTreeMap::new();
            for s in &group {
                for (t, v) in &s.points {
                    if let FakeValue::Double(d) = v {
                        at.entry(*t).or_default().push(*d);
                    }
                }
            }
            let labels = if by_cluster { group[0].labels.clone() } else { Vec::new() };
            FakeSeries { labels, points: at.into_iter().map(|(t, v)| (t, FakeValue::Double(reduce(&v)))).collect() }
        })
        .collect();
    Some(Script { series: reduced, execution_errors: Vec::new() })
}

/// A filter's trailing `AND resource.labels.cluster=...` clause (`="c1"` or `=one_of("a","b")`):
/// the filter without it, and the cluster IDs it selects.
fn cluster_clause(filter: &str) -> (&str, Option<Vec<String>>) {
    const CLAUSE: &str = " AND resource.labels.cluster=";
    let Some(at) = filter.rfind(CLAUSE) else { return (filter, None) };
    let rest = &filter[at + CLAUSE.len()..];
    if rest.contains(" AND ") {
        return (filter, None);
    }
    let list = rest.strip_prefix("one_of(").and_then(|r| r.strip_suffix(')')).unwrap_or(rest);
    let ids = list.split(',').map(|id| id.trim().trim_matches('"').to_string()).collect();
    // A narrowed filter holds the policy's own in parentheses.
    let base = &filter[..at];
    (base.strip_prefix('(').and_then(|b| b.strip_suffix(')')).unwrap_or(base), Some(ids))
}

/// `operations.list` of the Bigtable Admin API: the operations whose names lie under `parent`,
/// done or not, oldest first, `pageSize` at a time (default 100, at most 500) from `pageToken`.
fn list_bigtable_operations(st: &FakeState, parent: &str, query: &[(String, String)]) -> Response {
    let prefix = format!("{parent}/");
    let ops = st.ops.iter().filter(|(n, o)| o.kind == "bigtable" && n.starts_with(&prefix));
    operations_page(st, ops, query, bigtable_op_json)
}

/// One page of `ops`, oldest first, as `operations.list` answers (`pageSize`, `pageToken`),
/// each as `json` shows it.
fn operations_page<'a>(
    st: &'a FakeState,
    ops: impl Iterator<Item = (&'a String, &'a Op)>,
    query: &[(String, String)],
    json: fn(&FakeState, &str) -> Value,
) -> Response {
    let param = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let mut ops: Vec<(&String, &Op)> = ops.collect();
    ops.sort_by_key(|(_, o)| o.seq);
    let size = param("pageSize").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(100).min(500);
    let offset: usize =
        param("pageToken").and_then(|t| t.strip_prefix("offset-")).and_then(|n| n.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = ops.iter().skip(offset).take(size).map(|(n, _)| json(st, n)).collect();
    // proto3 JSON leaves out empty fields: no operations, no `operations`.
    let mut out = json!({});
    if !page.is_empty() {
        out["operations"] = json!(page);
    }
    if offset + size < ops.len() {
        out["nextPageToken"] = json!(format!("offset-{}", offset + size));
    }
    ok(out)
}

fn bigtable_op_json(st: &FakeState, name: &str) -> Value {
    let Some(op) = st.ops.get(name) else { return json!({}) };
    let mut request = json!({"cluster": {"name": op.target}, "updateMask": "serveNodes"});
    match op.change {
        Change::ServeNodes(n) => request["cluster"]["serveNodes"] = json!(n),
        Change::BigtableManual(n) => {
            request["cluster"]["serveNodes"] = json!(n);
            request["updateMask"] = json!("serveNodes,clusterConfig.clusterAutoscalingConfig");
        }
        Change::BigtableLimits(min, max) => {
            const LIMITS: &str = "clusterConfig.clusterAutoscalingConfig.autoscalingLimits";
            let mut limits = json!({});
            let mut mask = Vec::new();
            if let Some(n) = min {
                limits["minServeNodes"] = json!(n);
                mask.push(format!("{LIMITS}.minServeNodes"));
            }
            if let Some(n) = max {
                limits["maxServeNodes"] = json!(n);
                mask.push(format!("{LIMITS}.maxServeNodes"));
            }
            request["cluster"]["clusterConfig"] = json!({"clusterAutoscalingConfig": {"autoscalingLimits": limits}});
            request["updateMask"] = json!(mask.join(","));
        }
        _ => {}
    }
    let kind = "type.googleapis.com/google.bigtable.admin.v2.PartialUpdateClusterMetadata";
    let mut metadata = json!({"@type": kind, "originalRequest": request});
    if let Some(at) = op.requested_at {
        metadata["requestTime"] = json!(at.to_rfc3339());
    }
    let mut v = json!({"name": name, "done": op.done, "metadata": metadata});
    if op.done {
        match (&op.error, st.clusters.get(&op.target)) {
            (Some(msg), _) => v["error"] = json!({"code": 9, "message": msg}),
            (None, Some(c)) => {
                let mut cluster = cluster_json(&op.target, c);
                cluster["@type"] = json!("type.googleapis.com/google.bigtable.admin.v2.Cluster");
                v["response"] = cluster;
            }
            (None, None) => {}
        }
    }
    v
}

fn gke_op_json(st: &FakeState, full: &str) -> Value {
    let Some(op) = st.ops.get(full) else { return json!({}) };
    let short = full.rsplit('/').next().unwrap_or_default();
    let location = full.split('/').nth(3).unwrap_or_default();
    let mut v = json!({"name": short, "zone": location, "location": location, "operationType": op.kind,
        "status": if op.done { "DONE" } else { "RUNNING" },
        "selfLink": format!("{}/v1/{full}", st.base), "targetLink": format!("{}/v1/{}", st.base, op.target)});
    if let Some(msg) = op.error.as_ref().filter(|_| op.done) {
        v["error"] = json!({"code": 9, "message": msg});
        v["statusMessage"] = json!(msg);
    }
    v
}

/// A Spanner instance as `GetInstance` shows it: its size before any update that is running.
fn spanner_json(name: &str, i: &SpannerInstance) -> Value {
    let mut v = json!({"name": name, "config": i.config, "displayName": name.rsplit('/').next(),
        "processingUnits": i.units, "state": "READY"});
    // Whole nodes also read as `nodeCount`; below a node it is left out (proto3's zero).
    if i.units >= 1000 {
        v["nodeCount"] = json!(i.units / 1000);
    }
    if let Some(a) = &i.autoscaling {
        v["autoscalingConfig"] = a.clone();
    }
    v
}

/// Whether Spanner takes `units`: 100 to 900 in steps of 100, then multiples of 1000.
fn spanner_ladder(units: u32) -> bool {
    units > 0 && if units < 1000 { units.is_multiple_of(100) } else { units.is_multiple_of(1000) }
}

/// `UpdateInstance`: the request body is the whole `UpdateInstanceRequest`, the mask a
/// comma-joined string in it (gcloud: `processingUnits,autoscalingConfig`; the Rust client:
/// `processingUnits`).
fn update_spanner(st: &mut FakeState, name: &str, body: &Value) -> Response {
    let bad = |m: &str| google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", m, json!([]));
    let mask = body["fieldMask"].as_str().unwrap_or_default();
    let fields: Vec<&str> = mask.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    if fields.is_empty() {
        return bad("field_mask must name the fields to update");
    }
    let instance = &body["instance"];
    let number = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let mut units = None;
    let mut autoscaling = None;
    // Limits set one by one (gcloud's --autoscaling-min-processing-units, the Rust client's
    // masks): applied to the instance's own config, in lowerCamelCase whichever spelling came.
    let mut limits: Vec<(&str, Value)> = Vec::new();
    for f in &fields {
        let camel = f
            .split('_')
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { w[..1].to_uppercase() + &w[1..] })
            .collect::<String>();
        if let Some(key) = camel.strip_prefix("autoscalingConfig.autoscalingLimits.") {
            let key =
                ["minProcessingUnits", "maxProcessingUnits", "minNodes", "maxNodes"].into_iter().find(|k| *k == key);
            let Some(key) = key else { return bad(&format!("unsupported field mask path {f:?}")) };
            limits.push((key, instance["autoscalingConfig"]["autoscalingLimits"][key].clone()));
            continue;
        }
        match *f {
            "processingUnits" | "processing_units" => units = Some(number(&instance["processingUnits"]).unwrap_or(0)),
            "nodeCount" | "node_count" => {
                units = Some(number(&instance["nodeCount"]).unwrap_or(0).saturating_mul(1000))
            }
            "autoscalingConfig" | "autoscaling_config" => {
                autoscaling = Some(Some(instance["autoscalingConfig"].clone()).filter(|a| !a.is_null()))
            }
            other => return bad(&format!("unsupported field mask path {other:?}")),
        }
    }
    let units = match units.map(u32::try_from) {
        None => None,
        Some(Ok(u)) if spanner_ladder(u) => Some(u),
        Some(u) => {
            return bad(&format!(
                "Processing units must be a multiple of 100 below 1000 and of 1000 above it (got {})",
                u.map_or("too many".to_string(), |u| u.to_string())
            ));
        }
    };
    let Some(i) = st.spanner.get(name).cloned() else {
        return fault_response(Endpoint::UpdateSpannerInstance, &Fault::NotFound, name)
            .unwrap_or_else(|| ok(json!({})));
    };
    if let Some(busy) = &i.busy_op {
        let msg = format!("Cannot modify instance {name}: update operation {busy} is in progress.");
        return google_error(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", &msg, json!([]));
    }
    if !limits.is_empty() {
        let Some(mut config) = i.autoscaling.clone() else {
            return google_error(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                &format!("{name} does not have autoscaling enabled: set its whole autoscalingConfig first"),
                json!([]),
            );
        };
        for (key, value) in limits {
            // A limit in one unit replaces its pair's other unit (a oneof).
            let other = match key {
                "minProcessingUnits" => "minNodes",
                "minNodes" => "minProcessingUnits",
                "maxProcessingUnits" => "maxNodes",
                _ => "maxProcessingUnits",
            };
            if let Some(l) = config["autoscalingLimits"].as_object_mut() {
                l.remove(other);
            }
            config["autoscalingLimits"][key] = value;
        }
        let l = &config["autoscalingLimits"];
        let pu = |k: &str, n: &str| l[k].as_u64().or_else(|| l[n].as_u64().map(|v| v * 1000)).unwrap_or(0);
        let (lo, hi) = (pu("minProcessingUnits", "minNodes"), pu("maxProcessingUnits", "maxNodes"));
        if lo < 1000 || hi < lo || hi > lo * 10 || lo % 1000 != 0 || hi % 1000 != 0 {
            return bad(&format!(
                "autoscaling limits must be multiples of 1000 processing units, the minimum at least 1000 and the maximum between the minimum and 10 times it (got {lo} to {hi})"
            ));
        }
        autoscaling = Some(Some(config));
    }
    // The managed autoscaler owns the size: setting one without clearing it is refused.
    if units.is_some() && i.autoscaling.is_some() && !matches!(autoscaling, Some(None)) {
        return google_error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            &format!("Cannot set the compute capacity of {name} while autoscaling is enabled."),
            json!([]),
        );
    }
    let (op_name, op) =
        new_op(st, name, Change::Spanner(units, autoscaling), "spanner", format!("{name}/operations/_auto_op_"));
    st.ops.insert(op_name.clone(), op);
    if let Some(i) = st.spanner.get_mut(name) {
        i.busy_op = Some(op_name.clone());
    }
    if st.polls_to_finish == 0 && !st.stall {
        finish(st, &op_name);
    }
    ok(spanner_op_json(st, &op_name))
}

fn spanner_op_json(st: &FakeState, name: &str) -> Value {
    let Some(op) = st.ops.get(name) else { return json!({}) };
    let mut asked = json!({"name": op.target});
    if let Change::Spanner(units, autoscaling) = &op.change {
        if let Some(u) = units {
            asked["processingUnits"] = json!(u);
        }
        if let Some(Some(a)) = autoscaling {
            asked["autoscalingConfig"] = a.clone();
        }
    }
    let metadata = json!({"@type": "type.googleapis.com/google.spanner.admin.instance.v1.UpdateInstanceMetadata",
        "instance": asked, "startTime": "2026-01-01T00:00:00Z"});
    let mut v = json!({"name": name, "done": op.done, "metadata": metadata});
    if op.done {
        match (&op.error, st.spanner.get(&op.target)) {
            (Some(msg), _) => v["error"] = json!({"code": 9, "message": msg}),
            (None, Some(i)) => {
                let mut response = spanner_json(&op.target, i);
                response["@type"] = json!("type.googleapis.com/google.spanner.admin.instance.v1.Instance");
                v["response"] = response;
            }
            (None, None) => {}
        }
    }
    v
}

/// An instance's operations, oldest first, paged as `operations.list` pages them.
fn list_spanner_operations(st: &FakeState, instance: &str, query: &[(String, String)]) -> Response {
    let prefix = format!("{instance}/operations/");
    operations_page(st, st.ops.iter().filter(|(n, _)| n.starts_with(&prefix)), query, spanner_op_json)
}

/// The (min, max) processing units of a Spanner `autoscalingConfig`, in either of its units.
fn spanner_limits(config: Option<&Value>) -> Option<(u32, u32)> {
    let l = &config?["autoscalingLimits"];
    let n = |k: &str| l[k].as_u64().and_then(|v| u32::try_from(v).ok());
    let min = n("minProcessingUnits").or_else(|| n("minNodes").map(|v| v.saturating_mul(1000)))?;
    let max = n("maxProcessingUnits").or_else(|| n("maxNodes").map(|v| v.saturating_mul(1000)))?;
    Some((min, max))
}
