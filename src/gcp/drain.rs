//! Graceful scale-in of a GKE node pool, as cluster-autoscaler does it: choose the nodes cheapest
//! to empty, cordon and taint them, evict their pods through the Eviction API (so
//! PodDisruptionBudgets hold), and delete exactly those VMs from their zones' instance groups.
//!
//! ## The plan is the operation
//! [`Drainer::plan`] touches nothing: it chooses nodes and returns them as a [`Plan`], which the
//! target hands back as the resize's operation name (`drain:<started ms>:<zone>/<node>,...`). The
//! tick stores that name in the policy's status like any operation before the next tick asks
//! about it, so the plan is recorded before any node is touched. Each later
//! [`Drainer::advance`] (the tick's "how is the operation") moves every planned node one step on,
//! reading where it stands from the cluster itself, so a restarted or newly elected controller
//! carries on from the same plan:
//!
//! 1. not tainted yet: taint `ebbflow.dev/draining:NoSchedule`, cordon, and note the drain's
//!    deadline on the node (one merge patch with the node's resourceVersion as precondition);
//! 2. tainted, pods left: evict each (DaemonSet pods, mirror pods and finished pods stay; a pod
//!    that may not move, e.g. one that arrived before the cordon, ends the node's drain at once);
//!    a PodDisruptionBudget's 429 is tried again on the next tick, until the deadline;
//! 3. empty: note the deletion on the node, then `instanceGroupManagers.deleteInstances` for that
//!    one VM on its zone's group, and follow the zone operation;
//! 4. past the deadline and not empty: the taint and the cordon are taken back and the node is
//!    kept; the outcome names the pod and the budget that blocked it.
//!
//! The drain is over when every node is deleted or kept. It never deletes a node that still runs
//! a pod it had to move, nor one that does not carry its taint. A node left tainted by a plan that
//! was lost (state deleted, operation abandoned) is untainted once its deadline has passed by
//! [`ORPHAN_GRACE`] ([`Drainer::release_orphans`], on every observation).

use std::collections::BTreeMap;

use google_cloud_compute_v1::client::InstanceGroupManagers;
use google_cloud_compute_v1::model::InstanceGroupManagersDeleteInstancesRequest;
use google_cloud_compute_v1::model::operation::Status as ZoneOpStatus;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::adapters::{AdapterError, ErrorKind, OperationStatus};
use crate::core::{Dur, Ts};
use crate::gcp::{Clock, RetryConfig, map_error, retry};

const BACKEND: &str = "gke";
/// Operation names of drains start with this.
pub const PREFIX: &str = "drain:";
/// The taint a draining node carries: ebbflow's mark, and what keeps new pods off it.
pub const TAINT_KEY: &str = "ebbflow.dev/draining";
/// When the node's drain gives up (milliseconds since the epoch).
pub const DEADLINE_ANNOTATION: &str = "ebbflow.dev/drain-deadline";
/// The zone operation deleting the node's VM, once sent ("" while being sent).
pub const DELETE_ANNOTATION: &str = "ebbflow.dev/delete-operation";
/// A node a plan kept: `<plan started ms> <why>`, so later steps of that plan leave it alone.
pub const KEPT_ANNOTATION: &str = "ebbflow.dev/drain-kept";
/// GKE's label naming a node's pool.
pub const POOL_LABEL: &str = "cloud.google.com/gke-nodepool";
/// The node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Node annotations that keep a node from being chosen (cluster-autoscaler's, and ours).
pub const SCALE_DOWN_DISABLED: [&str; 2] =
    ["cluster-autoscaler.kubernetes.io/scale-down-disabled", "ebbflow.dev/scale-down-disabled"];
/// A pod annotated `"false"` here is never evicted (cluster-autoscaler's annotation).
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// How long past its deadline a node tainted by a plan no one follows any more stays tainted.
pub const ORPHAN_GRACE: Dur = Dur(5 * 60_000);

/// How a pool drains, from its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainSettings {
    /// How long a node may take to empty before it is kept.
    pub timeout: Dur,
    /// The most grace period an evicted pod is given.
    pub max_grace: Dur,
    /// Whether pods with `emptyDir` volumes may be evicted (their data is lost).
    pub evict_local_storage: bool,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings { timeout: Dur::mins(10), max_grace: Dur::mins(2), evict_local_storage: false }
    }
}

/// Nodes chosen for removal, and when: the drain's operation name, so it lives in status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// When the plan was made; each node's deadline counts from its taint.
    pub started: Ts,
    /// `(zone, node)`; a GKE node is named as its VM.
    pub nodes: Vec<(String, String)>,
}

/// A zone, node or group name as it may go into a URL path.
fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Plan {
    /// The operation name.
    pub fn encode(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|(z, n)| format!("{z}/{n}")).collect();
        format!("{PREFIX}{}:{}", self.started.0, nodes.join(","))
    }

    /// The plan an operation name carries; `None` for any other name, or one whose zone or node
    /// names are not plain (they go into request paths).
    pub fn decode(name: &str) -> Option<Plan> {
        let (started, nodes) = name.strip_prefix(PREFIX)?.split_once(':')?;
        let started = Ts(started.parse().ok()?);
        let nodes = nodes
            .split(',')
            .map(|zn| {
                let (z, n) = zn.split_once('/')?;
                (plain(z) && plain(n)).then(|| (z.to_string(), n.to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        (!nodes.is_empty()).then_some(Plan { started, nodes })
    }
}

/// Whether a PodDisruptionBudget's `selector` selects a pod with `labels`, as `policy/v1` reads
/// it: every `matchLabels` pair and every `matchExpressions` entry hold (an empty selector
/// selects every pod of the namespace).
fn selects(selector: Option<&LabelSelector>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(sel) = selector else { return true };
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let by_label = sel.match_labels.as_ref().is_none_or(|m| m.iter().all(|(k, v)| get(k) == Some(v)));
    let by_expression = sel.match_expressions.as_deref().unwrap_or_default().iter().all(|e| {
        let among = e.values.as_deref().unwrap_or_default().iter().any(|v| get(&e.key) == Some(v));
        match e.operator.as_str() {
            "In" => among,
            "NotIn" => !among,
            "Exists" => get(&e.key).is_some(),
            "DoesNotExist" => get(&e.key).is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

/// A `kube-system` pod that no PodDisruptionBudget covers keeps its node, as cluster-autoscaler
/// has it by default: system pods (DNS, metrics) are not moved unless their owners said how
/// many may go at once. `budgets` are the selectors of `kube-system`'s budgets.
fn unbudgeted_system_pod(pod: &Pod, budgets: &[Option<LabelSelector>]) -> Option<String> {
    let system = pod.metadata.namespace.as_deref() == Some("kube-system");
    let covered = budgets.iter().any(|b| selects(b.as_ref(), pod.metadata.labels.as_ref()));
    (system && !covered).then(|| {
        format!("pod {} is a kube-system pod without a PodDisruptionBudget (give it one to let it move)", pod_name(pod))
    })
}

/// Why a pod keeps its node, if it does (`None`: it can be evicted).
fn pod_blocks(pod: &Pod, settings: &DrainSettings) -> Option<String> {
    let name = pod_name(pod);
    let annotations = pod.metadata.annotations.as_ref();
    if annotations.and_then(|a| a.get(SAFE_TO_EVICT)).is_some_and(|v| v == "false") {
        return Some(format!("pod {name} is annotated {SAFE_TO_EVICT}: \"false\""));
    }
    let owners = pod.metadata.owner_references.as_deref().unwrap_or_default();
    if !owners.iter().any(|o| o.controller == Some(true)) {
        return Some(format!("pod {name} has no controller, so nothing would start it again elsewhere"));
    }
    let local = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some() || v.host_path.is_some()));
    if local && !settings.evict_local_storage {
        return Some(format!(
            "pod {name} keeps data on the node (an emptyDir or hostPath volume); set evictLocalStorage: true to evict such pods"
        ));
    }
    None
}

/// Pods that stay on a node being drained: DaemonSet pods (they go with the node), mirror pods
/// (the kubelet's own) and pods that have finished.
fn stays(pod: &Pod) -> bool {
    let daemon = pod.metadata.owner_references.as_deref().unwrap_or_default().iter().any(|o| o.kind == "DaemonSet");
    let mirror = pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let finished =
        pod.status.as_ref().and_then(|s| s.phase.as_deref()).is_some_and(|p| p == "Succeeded" || p == "Failed");
    daemon || mirror || finished
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The CPU a pod requests, in millicores (what moving it costs the rest of the pool).
fn cpu_millis(pod: &Pod) -> u64 {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    containers
        .iter()
        .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get("cpu"))
        .map(|q| {
            let q = q.0.as_str();
            match q.strip_suffix('m') {
                Some(m) => m.parse::<f64>().unwrap_or(0.0),
                None => q.parse::<f64>().unwrap_or(0.0) * 1000.0,
            }
        })
        .map(|m| m.max(0.0) as u64)
        .sum()
}

fn has_taint(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| t.iter().any(|t| t.key == TAINT_KEY))
}

fn annotation<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

/// When the node's drain gives up, as its annotation says.
fn deadline_of(node: &Node) -> Option<Ts> {
    annotation(node, DEADLINE_ANNOTATION).and_then(|d| d.parse().ok()).map(Ts)
}

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or_default()
}

fn zone_of(node: &Node) -> Option<&str> {
    node.metadata.labels.as_ref()?.get(ZONE_LABEL).map(String::as_str)
}

fn kube_error(what: &str, e: kube::Error) -> AdapterError {
    let kind = match &e {
        kube::Error::Api(s) if s.code == 403 => ErrorKind::PermissionDenied,
        kube::Error::Api(s) if s.code == 429 || s.code >= 500 => ErrorKind::Transient,
        // A node changed since it was read: the next step reads it again.
        kube::Error::Api(s) if s.code == 409 => ErrorKind::Busy,
        // Never NotFound: the tick reads that as the operation vanished, and a node or pod that
        // went away mid-step is the next step's news, not the drain's end.
        _ => ErrorKind::Other,
    };
    let fix = if kind == ErrorKind::PermissionDenied {
        "; a drain needs RBAC on nodes (get, list, patch), pods (list) and pods/eviction (create), as deploy/rbac.yaml grants, or set scaleIn: resize"
    } else {
        ""
    };
    AdapterError::new("kubernetes", kind, format!("{what}: {e}{fix}"))
}

/// What a 429 from the Eviction API says blocked it: the budget's own words when given.
fn budget_words(status: &kube::core::Status) -> String {
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.iter().find(|c| c.reason == "DisruptionBudget"))
        .map_or_else(|| status.message.clone(), |c| c.message.clone())
}

/// A node that may be drained: what emptying it moves (CPU requested in millicores, pods), and
/// its name; ordered cheapest first.
type Candidate = ((u64, usize), String);

/// A pool's instance groups by zone (GKE may keep several in a zone, e.g. during a blue-green
/// upgrade).
pub type Groups = BTreeMap<String, Vec<String>>;

/// The group of `zone` that holds VM `node`: GKE names a pool's VMs after their group
/// (`gke-C-P-HASH-grp` holds `gke-C-P-HASH-xxxx`); the zone's only group otherwise.
fn group_of<'a>(groups: &'a Groups, zone: &str, node: &str) -> Option<&'a str> {
    let list = groups.get(zone)?;
    let named =
        list.iter().find(|g| node.strip_prefix(g.trim_end_matches("-grp")).is_some_and(|rest| rest.starts_with('-')));
    named
        .or(match list.as_slice() {
            [only] => Some(only),
            _ => None,
        })
        .map(String::as_str)
}

/// Drains nodes of one pool.
#[derive(Clone)]
pub struct Drainer {
    /// The Kubernetes API of the pool's cluster.
    pub kube: kube::Client,
    /// The pool's instance groups.
    pub groups: InstanceGroupManagers,
    /// Retries of Compute requests.
    pub retry: RetryConfig,
    /// The pool's project.
    pub project: String,
    /// The pool's short name (its nodes' `cloud.google.com/gke-nodepool` label).
    pub pool: String,
    /// Timeout, grace cap, local storage.
    pub settings: DrainSettings,
    /// Time, for deadlines.
    pub clock: Clock,
}

/// Where one planned node stands after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeState {
    /// Still being drained or deleted: where it stands, for people.
    Going(String),
    /// Its VM is deleted (or the node is gone).
    Removed,
    /// Kept: its drain ran out of time or found a pod that may not move.
    Kept(String),
}

impl Drainer {
    async fn pool_nodes(&self) -> Result<Vec<Node>, AdapterError> {
        let lp = ListParams::default().labels(&format!("{POOL_LABEL}={}", self.pool));
        Api::<Node>::all(self.kube.clone())
            .list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| kube_error(&format!("listing the nodes of pool {}", self.pool), e))
    }

    async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, AdapterError> {
        let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
        Api::<Pod>::all(self.kube.clone())
            .list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| kube_error(&format!("listing the pods on node {node}"), e))
    }

    /// Choose `remove` nodes to drain, cheapest to empty first and balanced across zones: each
    /// pick comes from the zone that has the most nodes left among those with a candidate.
    /// Refused when no node can be removed (each one's reason is given); fewer than asked when
    /// only fewer can. Touches nothing.
    pub async fn plan(&self, remove: u32) -> Result<Plan, AdapterError> {
        let nodes = self.pool_nodes().await?;
        if nodes.is_empty() {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!(
                    "no node of pool {} is in the Kubernetes API this controller reads (label {POOL_LABEL}); drain needs the pool's own cluster, or set scaleIn: resize",
                    self.pool
                ),
            ));
        }
        let budgets: Vec<Option<LabelSelector>> =
            Api::<PodDisruptionBudget>::namespaced(self.kube.clone(), "kube-system")
                .list(&ListParams::default())
                .await
                .map_err(|e| kube_error("listing kube-system's PodDisruptionBudgets", e))?
                .items
                .into_iter()
                .map(|b| b.spec.and_then(|s| s.selector))
                .collect();
        let mut per_zone: BTreeMap<String, u32> = BTreeMap::new();
        // zone -> candidates, cheapest last (popped first).
        let mut candidates: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        let mut refusals = Vec::new();
        for node in &nodes {
            let name = node_name(node).to_string();
            let Some(zone) = zone_of(node).filter(|z| plain(z)).map(str::to_string) else {
                refusals.push(format!("{name}: no {ZONE_LABEL} label"));
                continue;
            };
            *per_zone.entry(zone.clone()).or_default() += 1;
            if !plain(&name) {
                refusals.push(format!("{name}: not a VM name"));
                continue;
            }
            if let Some(key) = SCALE_DOWN_DISABLED.iter().find(|k| annotation(node, k) == Some("true")) {
                refusals.push(format!("{name}: annotated {key}"));
                continue;
            }
            let cordoned = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
            if has_taint(node) || cordoned {
                refusals.push(format!("{name}: already cordoned or being drained"));
                continue;
            }
            let pods: Vec<Pod> = self.pods_on(&name).await?.into_iter().filter(|p| !stays(p)).collect();
            let blocked =
                pods.iter().find_map(|p| pod_blocks(p, &self.settings).or_else(|| unbudgeted_system_pod(p, &budgets)));
            if let Some(why) = blocked {
                refusals.push(format!("{name}: {why}"));
                continue;
            }
            let cost = (pods.iter().map(cpu_millis).sum::<u64>(), pods.len());
            candidates.entry(zone).or_default().push((cost, name));
        }
        for list in candidates.values_mut() {
            list.sort_by(|a, b| b.cmp(a));
        }
        let mut chosen = Vec::new();
        for _ in 0..remove {
            let pick = candidates
                .iter()
                .filter_map(|(zone, list)| list.last().map(|c| (per_zone.get(zone).copied().unwrap_or(0), c, zone)))
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
                .map(|(_, _, zone)| zone.clone());
            let Some(zone) = pick else { break };
            let Some((_, node)) = candidates.get_mut(&zone).and_then(Vec::pop) else { break };
            *per_zone.entry(zone.clone()).or_default() -= 1;
            chosen.push((zone, node));
        }
        if chosen.is_empty() {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!("no node of pool {} can be drained: {}", self.pool, refusals.join("; ")),
            ));
        }
        if chosen.len() < remove as usize {
            tracing::warn!(pool = %self.pool, asked = remove, chosen = chosen.len(), kept = %refusals.join("; "), "fewer nodes can be drained than the decision removes");
        }
        Ok(Plan { started: (self.clock)(), nodes: chosen })
    }

    /// Move every node of `plan` one step on (see the module docs); `groups` maps each zone to
    /// its instance group. Over when every node is removed or kept: done if all were removed,
    /// done in part (naming what kept the others) if some were, failed if none was.
    pub async fn advance(&self, plan: &Plan, groups: &Groups) -> Result<OperationStatus, AdapterError> {
        let nodes = self.pool_nodes().await?;
        let mut states = Vec::new();
        for (zone, name) in &plan.nodes {
            let node = nodes.iter().find(|n| node_name(n) == name);
            let state = match node {
                // Gone from the cluster: its VM was deleted (by us, or by someone else).
                None => NodeState::Removed,
                // A step that failed is tried again next time, and said in the progress: one
                // node's trouble (a missing permission, a group refusing) must not stop the
                // others, and the operation's own time bound still applies.
                Some(node) => match self.step(node, zone, groups, plan.started).await {
                    Ok(state) => state,
                    Err(e) if e.kind == ErrorKind::Busy => {
                        NodeState::Going("changed while being drained; read again next time".into())
                    }
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "drain step failed; tried again next evaluation");
                        NodeState::Going(format!("step failed, tried again: {e}"))
                    }
                },
            };
            states.push((name, state));
        }
        let going: Vec<String> = states
            .iter()
            .filter_map(|(n, s)| if let NodeState::Going(at) = s { Some(format!("{n}: {at}")) } else { None })
            .collect();
        if !going.is_empty() {
            let settled = states.len() - going.len();
            let more = if settled > 0 { format!(" ({settled} of {} done)", states.len()) } else { String::new() };
            return Ok(OperationStatus::Progress(format!("draining{more}: {}", going.join("; "))));
        }
        let kept: Vec<String> = states
            .iter()
            .filter_map(|(n, s)| if let NodeState::Kept(why) = s { Some(format!("{n}: {why}")) } else { None })
            .collect();
        let removed = states.len() - kept.len();
        if removed == 0 {
            return Ok(OperationStatus::Failed(format!("no node was removed, all were kept: {}", kept.join("; "))));
        }
        if !kept.is_empty() {
            tracing::warn!(pool = %self.pool, removed, kept = %kept.join("; "), "drain finished with nodes kept");
            return Ok(OperationStatus::DonePartly(format!(
                "{removed} of {} node(s) removed; kept, uncordoned: {}",
                states.len(),
                kept.join("; ")
            )));
        }
        Ok(OperationStatus::Done)
    }

    async fn step(&self, node: &Node, zone: &str, groups: &Groups, started: Ts) -> Result<NodeState, AdapterError> {
        let name = node_name(node);
        let now = (self.clock)();
        if let Some(why) = annotation(node, KEPT_ANNOTATION).and_then(|k| k.strip_prefix(&format!("{} ", started.0))) {
            return Ok(NodeState::Kept(why.to_string()));
        }
        // "" is a deletion noted but never answered (a crash around the request): the node is
        // checked again below like any tainted one, and sent again only if still empty.
        if let Some(op) = annotation(node, DELETE_ANNOTATION).filter(|op| !op.is_empty()) {
            return self.follow_delete(node, zone, op, started).await;
        }
        if !has_taint(node) {
            if now >= started + self.settings.timeout {
                // The plan waited out its whole drain time before this node was touched (the
                // controller was down): the load it was made for has moved on.
                return Ok(NodeState::Kept(format!(
                    "the plan is older than drainTimeout {}; not started",
                    self.settings.timeout
                )));
            }
            // Not touched yet: taint, cordon, set the deadline.
            let deadline = now + self.settings.timeout;
            self.mark(node, deadline).await?;
            return Ok(NodeState::Going("cordoned and tainted".into()));
        }
        let deadline = deadline_of(node).unwrap_or(now);
        let pods: Vec<Pod> = self.pods_on(name).await?.into_iter().filter(|p| !stays(p)).collect();
        if pods.is_empty() {
            return self.delete(node, zone, groups, started).await;
        }
        if let Some(why) = pods.iter().find_map(|p| pod_blocks(p, &self.settings)) {
            return self.keep(node, started, why).await;
        }
        let waiting: Vec<&Pod> = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
        if now >= deadline {
            // Kept: no pod is disrupted for a node that stays. A dry-run eviction names what
            // still holds it.
            let why = match waiting.first() {
                Some(pod) => {
                    self.evict(pod, true).await?.unwrap_or_else(|| format!("pod {} not evicted yet", pod_name(pod)))
                }
                None => format!("{} pod(s) still terminating, e.g. {}", pods.len(), pod_name(&pods[0])),
            };
            tracing::warn!(node = %name, why = %why, "drain timed out: node kept, uncordoned");
            return self.keep(node, started, format!("not empty after {}: {why}", self.settings.timeout)).await;
        }
        let mut blocked: Option<String> = None;
        for pod in waiting {
            if let Some(why) = self.evict(pod, false).await? {
                blocked.get_or_insert(why);
            }
        }
        let left = format!("{} pod(s) left, {} to go", pods.len(), deadline - now);
        Ok(NodeState::Going(match blocked {
            Some(why) => format!("{left}; held by {why}"),
            None => format!("{left}; terminating"),
        }))
    }

    /// Taint, cordon and stamp the deadline, in one patch fenced by the node's resourceVersion.
    async fn mark(&self, node: &Node, deadline: Ts) -> Result<(), AdapterError> {
        let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        taints.retain(|t| t.key != TAINT_KEY);
        taints.push(k8s_openapi::api::core::v1::Taint {
            key: TAINT_KEY.to_string(),
            effect: "NoSchedule".to_string(),
            value: Some(self.pool.clone()),
            time_added: None,
        });
        let patch = json!({
            "metadata": {
                "resourceVersion": node.metadata.resource_version,
                "annotations": { DEADLINE_ANNOTATION: deadline.0.to_string() },
            },
            "spec": { "unschedulable": true, "taints": taints },
        });
        self.patch_node(node_name(node), &patch).await
    }

    /// Keep the node: release it, noting for the rest of the plan that (and why) it was kept.
    async fn keep(&self, node: &Node, started: Ts, why: String) -> Result<NodeState, AdapterError> {
        let note: String = format!("{} {why}", started.0).chars().take(512).collect();
        self.release(node, Some(note)).await?;
        Ok(NodeState::Kept(why))
    }

    /// Take the taint, the cordon, the deadline and a deletion mark back: the node serves again.
    async fn release(&self, node: &Node, kept: Option<String>) -> Result<(), AdapterError> {
        let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        taints.retain(|t| t.key != TAINT_KEY);
        let patch = json!({
            "metadata": {
                "resourceVersion": node.metadata.resource_version,
                "annotations": { DEADLINE_ANNOTATION: null, DELETE_ANNOTATION: null, KEPT_ANNOTATION: kept },
            },
            "spec": { "unschedulable": null, "taints": taints },
        });
        self.patch_node(node_name(node), &patch).await
    }

    async fn patch_node(&self, name: &str, patch: &serde_json::Value) -> Result<(), AdapterError> {
        Api::<Node>::all(self.kube.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(drop)
            .map_err(|e| kube_error(&format!("patching node {name}"), e))
    }

    /// Ask the Eviction API to evict `pod` (only to ask, with `dry_run`); `Some(why)` when it
    /// said no: a disruption budget (429), or an answer the drain cannot act on (e.g. a pod under
    /// two budgets, which the API server refuses with 500), retried until the deadline.
    async fn evict(&self, pod: &Pod, dry_run: bool) -> Result<Option<String>, AdapterError> {
        let (ns, name) =
            (pod.metadata.namespace.as_deref().unwrap_or("default"), pod.metadata.name.as_deref().unwrap_or_default());
        let asked = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
        let grace = asked.clamp(0, self.settings.max_grace.0 / 1000);
        // The Eviction object as the API defines it. Not kube's `Api::evict`, which sends the
        // options as `delete_options`: the API server ignores that unknown field, and every pod
        // would get its own grace period whatever the cap.
        let eviction = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": { "name": name, "namespace": ns },
            "deleteOptions": { "gracePeriodSeconds": grace },
        });
        let post = PostParams { dry_run, ..PostParams::default() };
        let sent: Result<kube::core::Status, kube::Error> =
            Api::<Pod>::namespaced(self.kube.clone(), ns).create_subresource("eviction", name, &post, &eviction).await;
        match sent {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 429 => Ok(Some(format!("pod {ns}/{name}: {}", budget_words(&s)))),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 500 || s.code == 409 => {
                Ok(Some(format!("pod {ns}/{name}: the Eviction API answered {}: {}", s.code, s.message)))
            }
            Err(e) => Err(kube_error(&format!("evicting pod {ns}/{name}"), e)),
        }
    }

    /// Delete the node's VM from its zone's group: noted on the node first, so a restart follows
    /// the operation instead of sending another.
    async fn delete(&self, node: &Node, zone: &str, groups: &Groups, started: Ts) -> Result<NodeState, AdapterError> {
        let name = node_name(node);
        let Some(group) = group_of(groups, zone, name) else {
            return self.keep(node, started, format!("no instance group of the pool in zone {zone} holds it")).await;
        };
        // Sent before: a crash came between the request and noting its operation. The group
        // skips a VM it already deletes; the first request is strict, so a VM that is not the
        // group's is an error, not a silent success.
        let resend = annotation(node, DELETE_ANNOTATION).is_some();
        if !resend {
            let patch = json!({
                "metadata": { "resourceVersion": node.metadata.resource_version, "annotations": { DELETE_ANNOTATION: "" } },
            });
            self.patch_node(name, &patch).await?;
        }
        let instance = format!("projects/{}/zones/{zone}/instances/{name}", self.project);
        let sent = self
            .groups
            .delete_instances()
            .set_project(self.project.clone())
            .set_zone(zone.to_string())
            .set_instance_group_manager(group.to_string())
            .set_body(
                InstanceGroupManagersDeleteInstancesRequest::new()
                    .set_instances([instance])
                    .set_skip_instances_on_validation_error(resend),
            )
            .send()
            .await;
        let op = match sent {
            Ok(op) => op,
            Err(e) => {
                let e = map_error(BACKEND, "compute.instanceGroupManagers.deleteInstances", &e);
                let now = (self.clock)();
                if now >= deadline_of(node).unwrap_or(now) {
                    return self.keep(node, started, format!("deleting its VM was refused: {e}")).await;
                }
                return Ok(NodeState::Going(format!("empty; deleting its VM was refused, tried again: {e}")));
            }
        };
        let op_name = op.name.unwrap_or_default();
        tracing::info!(node = %name, zone, group = %group, operation = %op_name, "drained node's VM deleted");
        let fresh = Api::<Node>::all(self.kube.clone())
            .get(name)
            .await
            .map_err(|e| kube_error(&format!("reading node {name}"), e))?;
        let patch = json!({
            "metadata": { "resourceVersion": fresh.metadata.resource_version, "annotations": { DELETE_ANNOTATION: op_name } },
        });
        self.patch_node(name, &patch).await?;
        Ok(NodeState::Going(format!("empty; its VM is being deleted ({op_name})")))
    }

    async fn follow_delete(&self, node: &Node, zone: &str, op: &str, started: Ts) -> Result<NodeState, AdapterError> {
        if !op.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            // Not an id this code wrote: not put in a path; the node goes when its VM does.
            return Ok(NodeState::Going("its VM is being deleted".into()));
        }
        let got = retry(BACKEND, &self.retry, || async {
            self.groups
                .get_operation()
                .set_project(self.project.clone())
                .set_zone(zone.to_string())
                .set_operation(op.to_string())
                .send()
                .await
                .map_err(|e| map_error(BACKEND, "compute.zoneOperations.get", &e))
        })
        .await;
        match got {
            Ok(o) if o.status == Some(ZoneOpStatus::Done) => match o.error.filter(|e| !e.errors.is_empty()) {
                // The VM is still there: it serves again.
                Some(e) => {
                    let why = e.errors.iter().filter_map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
                    self.keep(node, started, format!("deleting its VM failed: {why}")).await
                }
                None => Ok(NodeState::Removed),
            },
            Ok(_) => Ok(NodeState::Going(format!("its VM is being deleted ({op})"))),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(NodeState::Removed),
            Err(e) => Err(e),
        }
    }

    /// Give up `plan`: release each of its nodes still tainted whose VM is not being deleted
    /// (the policy stopped draining: `scaleIn` or `adjustClusterAutoscaler` changed). How many.
    pub async fn roll_back(&self, plan: &Plan) -> Result<usize, AdapterError> {
        let mut released = 0;
        for node in self.pool_nodes().await? {
            let planned = plan.nodes.iter().any(|(_, n)| n == node_name(&node));
            if planned && has_taint(&node) && annotation(&node, DELETE_ANNOTATION).is_none_or(str::is_empty) {
                self.release(&node, None).await?;
                released += 1;
            }
        }
        Ok(released)
    }

    /// Untaint and uncordon nodes of the pool that carry the drain taint past their deadline by
    /// [`ORPHAN_GRACE`] and whose VM is not being deleted: left by a plan no one follows.
    pub async fn release_orphans(&self) -> Result<(), AdapterError> {
        let now = (self.clock)();
        for node in self.pool_nodes().await? {
            let deadline = deadline_of(&node);
            // A deletion noted as sent ("") whose node outlived its deadline by the grace never
            // happened; one with an operation is on its way.
            let orphan = has_taint(&node)
                && annotation(&node, DELETE_ANNOTATION).is_none_or(str::is_empty)
                && deadline.is_none_or(|d| now >= d + ORPHAN_GRACE);
            if orphan {
                tracing::warn!(node = %node_name(&node), "node left tainted by a drain no one follows: released");
                self.release(&node, None).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_round_trips_through_its_operation_name_and_nothing_else_is_one() {
        let plan = Plan {
            started: Ts(1_700_000_000_000),
            nodes: vec![
                ("europe-west1-b".into(), "gke-c-p-1a2b-x1".into()),
                ("europe-west1-c".into(), "gke-c-p-3c4d-y2".into()),
            ],
        };
        let name = plan.encode();
        assert_eq!(name, "drain:1700000000000:europe-west1-b/gke-c-p-1a2b-x1,europe-west1-c/gke-c-p-3c4d-y2");
        assert_eq!(Plan::decode(&name), Some(plan));
        assert_eq!(
            crate::readout::shown_operation(&name),
            "drain of 2 node(s): gke-c-p-1a2b-x1, gke-c-p-3c4d-y2",
            "people read the nodes, not the encoding"
        );
        assert_eq!(crate::readout::shown_operation("operations/7"), "operations/7");
        for other in [
            "operation-17-abc",
            "drain:",
            "drain:12:",
            "drain:x:z/n",
            "drain:12:z/../n",
            "drain:12:z/N",
            "drain:12:z/n?x",
            "drain:12:zonly",
        ] {
            assert_eq!(Plan::decode(other), None, "{other}");
        }
    }

    /// A zone with two groups (a blue-green upgrade): the node's own group by its name, never
    /// the other one (whose deleteInstances would skip the VM and report success).
    #[test]
    fn a_node_is_deleted_through_the_group_named_after_it() {
        let groups: Groups = BTreeMap::from([
            ("z-a".to_string(), vec!["gke-c-p-1111aaaa-grp".to_string(), "gke-c-p-2222bbbb-grp".to_string()]),
            ("z-b".to_string(), vec!["gke-c-p-3333cccc-grp".to_string()]),
        ]);
        assert_eq!(group_of(&groups, "z-a", "gke-c-p-2222bbbb-x7k2"), Some("gke-c-p-2222bbbb-grp"));
        assert_eq!(group_of(&groups, "z-a", "gke-c-p-1111aaaa-q9"), Some("gke-c-p-1111aaaa-grp"));
        assert_eq!(group_of(&groups, "z-a", "some-other-node"), None, "two groups, neither named after it");
        assert_eq!(group_of(&groups, "z-b", "renamed-node"), Some("gke-c-p-3333cccc-grp"), "a zone's only group");
        assert_eq!(group_of(&groups, "z-c", "gke-c-p-3333cccc-x"), None);
    }

    /// Budget selectors as policy/v1 reads them: an empty one selects every pod.
    #[test]
    fn budget_selectors_select_as_the_api_server_does() {
        let labels = BTreeMap::from([("app".to_string(), "dns".to_string())]);
        let sel = |v: serde_json::Value| -> Option<LabelSelector> { serde_json::from_value(v).ok() };
        assert!(selects(None, Some(&labels)));
        assert!(selects(sel(json!({})).as_ref(), Some(&labels)), "empty selects all");
        assert!(selects(sel(json!({"matchLabels": {"app": "dns"}})).as_ref(), Some(&labels)));
        assert!(!selects(sel(json!({"matchLabels": {"app": "web"}})).as_ref(), Some(&labels)));
        let expr = |op: &str| sel(json!({"matchExpressions": [{"key": "app", "operator": op, "values": ["dns"]}]}));
        assert!(selects(expr("In").as_ref(), Some(&labels)) && !selects(expr("NotIn").as_ref(), Some(&labels)));
        let exists = |op: &str| sel(json!({"matchExpressions": [{"key": "tier", "operator": op}]}));
        assert!(
            !selects(exists("Exists").as_ref(), Some(&labels))
                && selects(exists("DoesNotExist").as_ref(), Some(&labels))
        );
    }

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    #[test]
    fn pods_that_cannot_move_keep_their_node_and_daemon_pods_stay() {
        let owned =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]);
        let s = DrainSettings::default();
        let ok = pod(json!({"metadata": {"name": "a", "namespace": "n", "ownerReferences": owned}}));
        assert_eq!(pod_blocks(&ok, &s), None);
        assert!(!stays(&ok));
        let bare = pod(json!({"metadata": {"name": "b", "namespace": "n"}}));
        assert!(pod_blocks(&bare, &s).is_some_and(|w| w.contains("no controller")));
        let pinned = pod(json!({"metadata": {"name": "c", "namespace": "n", "ownerReferences": owned,
            "annotations": {SAFE_TO_EVICT: "false"}}}));
        assert!(pod_blocks(&pinned, &s).is_some_and(|w| w.contains("safe-to-evict")));
        let local = pod(json!({"metadata": {"name": "d", "namespace": "n", "ownerReferences": owned},
            "spec": {"containers": [], "volumes": [{"name": "scratch", "emptyDir": {}}]}}));
        assert!(pod_blocks(&local, &s).is_some_and(|w| w.contains("evictLocalStorage")));
        assert_eq!(pod_blocks(&local, &DrainSettings { evict_local_storage: true, ..s }), None);
        let host = pod(json!({"metadata": {"name": "h", "namespace": "n", "ownerReferences": owned},
            "spec": {"containers": [], "volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}]}}));
        assert!(pod_blocks(&host, &s).is_some_and(|w| w.contains("hostPath")));
        let daemon = pod(json!({"metadata": {"name": "e", "namespace": "n",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u", "controller": true}]}}));
        assert!(stays(&daemon));
        let done = pod(json!({"metadata": {"name": "f", "namespace": "n"}, "status": {"phase": "Succeeded"}}));
        assert!(stays(&done));
        let requests = pod(json!({"metadata": {"name": "g"}, "spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "1.5"}}}]}}));
        assert_eq!(cpu_millis(&requests), 1750);
    }
}
