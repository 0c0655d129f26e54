//! Ports: the two small traits every backend implements. The core never sees a cloud type; the
//! controller and the simulator only see these traits.
//!
//! - [`MetricSource`]: Cloud Monitoring or Kubernetes state in production, a replayed trace in the
//!   simulator; queries are a [`MetricQuery`] per source, routed by [`Sources`] and shared by
//!   [`SharedSource`]. Each source is one file here (its part of a metric's spec, its checks, its
//!   resolved query) registered in [`sources`].
//! - [`ScaleTarget`]: a Bigtable cluster, a GKE node pool or a `/scale` subresource in production,
//!   a simulated fleet in the simulator.

use std::future::Future;

use crate::core::{DataProblem, Sample, SizeRule, Ts};

pub mod kubernetes;
pub mod monitoring;
mod shared;
pub mod sources;

pub use kubernetes::{KubernetesMetric, number_at, parse_path, replicas_path};
pub use monitoring::MonitoringQuery;
pub use shared::SharedSource;
pub use sources::{MetricQuery, NoSource, SourceContext, SourceKind, Sources};

/// Samples of one query over a time range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Samples, oldest first.
    pub samples: Vec<Sample>,
    /// Set when the data is known not to be clean (partial, several series).
    pub problem: Option<DataProblem>,
}

/// What kind of failure a backend call hit; drives retries, conditions and Events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Worth retrying: 429, 503, timeouts, connection resets.
    Transient,
    /// No credentials could be found or read: no Application Default Credentials and no metadata
    /// server, or `GOOGLE_APPLICATION_CREDENTIALS` naming a file that is missing or not a key.
    CredentialsMissing,
    /// Credentials were found but refused: expired, revoked or invalid (401 UNAUTHENTICATED, or
    /// the token endpoint refusing to refresh them).
    CredentialsRefused,
    /// The caller lacks an IAM permission (403).
    PermissionDenied,
    /// The target or metric does not exist (404).
    NotFound,
    /// The target is busy with another operation.
    Busy,
    /// The backend refuses for a reason the user must fix (e.g. built-in autoscaling enabled).
    Refused,
    /// The backend answered something we cannot read.
    Malformed,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// CamelCase name, for Events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "Transient",
            ErrorKind::CredentialsMissing => "CredentialsMissing",
            ErrorKind::CredentialsRefused => "CredentialsRefused",
            ErrorKind::PermissionDenied => "PermissionDenied",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Busy => "TargetBusy",
            ErrorKind::Refused => "Refused",
            ErrorKind::Malformed => "Malformed",
            ErrorKind::Other => "Other",
        }
    }

    /// Whether the failure is about who the caller is or what it may do (missing or refused
    /// credentials, a missing permission): a set-up problem that no retry fixes, reported as
    /// itself rather than as missing data.
    pub fn is_access(self) -> bool {
        matches!(self, ErrorKind::CredentialsMissing | ErrorKind::CredentialsRefused | ErrorKind::PermissionDenied)
    }
}

/// A failed backend call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct AdapterError {
    /// Which backend, e.g. "monitoring", "bigtable", "gke", "kubernetes".
    pub backend: &'static str,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// HTTP status code, if there was one.
    pub code: Option<u16>,
    /// What happened and, where known, how to fix it (e.g. the missing IAM permission).
    pub message: String,
}

impl AdapterError {
    /// Build an error.
    pub fn new(backend: &'static str, kind: ErrorKind, message: impl Into<String>) -> AdapterError {
        AdapterError { backend, kind, code: None, message: message.into() }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Busy)
    }
}

/// Where metrics come from.
pub trait MetricSource: Send + Sync {
    /// Samples of `query` measured in `(after, until]`, oldest first. Missing data is an empty
    /// series or a `problem`, never zeros.
    fn fetch(
        &self,
        query: &MetricQuery,
        after: Ts,
        until: Ts,
    ) -> impl Future<Output = Result<Series, AdapterError>> + Send;
}

/// What a target reports about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetObservation {
    /// Size now (nodes or replicas).
    pub size: u32,
    /// Someone (maybe not us) is resizing it right now.
    pub busy: bool,
    /// The sizes it can take (a node pool: whole nodes per zone). The core only asks for
    /// these, so an adapter never rounds a size it was asked for.
    pub sizes: SizeRule,
    /// The metric behind a lower bound of the target's own (Bigtable storage), which the tick
    /// fetches and the core turns into a floor against the resize history.
    pub floor: FloorMetric,
    /// The parts sized together, for a target made of several (a replicated Bigtable
    /// instance's clusters); empty for a target that is one thing.
    pub members: Vec<TargetMember>,
    /// The live size when `size` is not it: a target whose built-in autoscaler the policy
    /// steers shows the autoscaler's minimum as its size, and this is the size the autoscaler
    /// keeps, which carries the load the metrics measure.
    pub serving: Option<u32>,
    /// The maximum of the built-in autoscaler the policy steers, as it stands (the policy writes
    /// its own largest size there; see `ScaleTarget::resize_within`).
    pub steered_max: Option<u32>,
}

/// One part of a target sized with the others, as observed (shown in status and the readout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMember {
    /// Its short name, e.g. a cluster ID.
    pub name: String,
    /// Its size now.
    pub size: u32,
    /// Its state as the backend reports it, e.g. `READY`, `RESIZING`.
    pub state: String,
    /// The resize operation this process started on it and is following, if any.
    pub operation: Option<String>,
}

/// A lower bound the target's data sets on its size, as a metric the tick fetches through the
/// same [`MetricSource`] as the policy's metrics (so the simulator can replay it too).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FloorMetric {
    /// The target has no such bound.
    #[default]
    None,
    /// Storage utilization (stored bytes over the current nodes' capacity, 0..1), to be kept at
    /// or under `storage_target` (see `core::floor`).
    Storage {
        /// The query that returns the utilization.
        query: MetricQuery,
        /// The utilization never to exceed by scaling in.
        storage_target: f64,
    },
}

/// How a resize request was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResizeStarted {
    /// Applied at once (e.g. a `/scale` subresource write).
    Done,
    /// Accepted as a long-running operation with this name; check it with [`ScaleTarget::operation`].
    Operation(String),
    /// The request timed out, and reading the target afterwards showed it busy or at the new
    /// size: it was taken, but its operation is unknown. Settled by watching the size.
    Unconfirmed,
}

/// State of a long-running resize operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    /// Still running.
    Running,
    /// Still running, and what it is doing for people (a node-pool drain: each node, the pods
    /// left on it and the budget holding them), shown in status and the readout.
    Progress(String),
    /// Finished successfully.
    Done,
    /// Finished, but only part of what was asked: what was left undone and why, for people (a
    /// drain's nodes that would not empty, kept). The target's size tells how far it got.
    DonePartly(String),
    /// Finished with an error.
    Failed(String),
}

/// What gets resized.
pub trait ScaleTarget: Send + Sync {
    /// Read the current size and anything that limits resizing.
    fn observe(&self) -> impl Future<Output = Result<TargetObservation, AdapterError>> + Send;
    /// Ask for an absolute size (never a delta, so a retried request is harmless).
    fn resize(&self, to: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send;
    /// Check an operation started by [`ScaleTarget::resize`].
    fn operation(&self, name: &str) -> impl Future<Output = Result<OperationStatus, AdapterError>> + Send;
    /// For a target whose members are each sized on their own (a replicated Bigtable instance
    /// in `perCluster` mode): every member, observed as a target of its own, with one read of
    /// the target. A target that is one thing refuses.
    fn observe_members(&self) -> impl Future<Output = Result<Vec<MemberObservation>, AdapterError>> + Send {
        async { Err(no_members()) }
    }
    /// Resize one member (by [`MemberObservation::name`]) to an absolute size; its operation is
    /// checked with [`ScaleTarget::operation`]. A target that is one thing refuses.
    fn resize_member(&self, member: &str, to: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send {
        let _ = (member, to);
        async { Err(no_members()) }
    }
    /// [`ScaleTarget::resize`], for a policy whose largest size now (`maxSize`, or a window's) is
    /// `max`: a target whose built-in autoscaler the policy steers sets its limits to `to` and
    /// `max` (see `steerAutoscaler`); any other resizes to `to`, as `resize` does.
    fn resize_within(&self, to: u32, max: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send {
        let _ = max;
        self.resize(to)
    }
    /// The level the service recommends for the target's main CPU metric, read from the target
    /// itself (a Spanner instance's configuration: regional or multi-region), for a metric whose
    /// policy leaves its target out. `None` (the default): the kind recommends none.
    fn recommended_target(&self) -> impl Future<Output = Result<Option<f64>, AdapterError>> + Send {
        async { Ok(None) }
    }
}

/// A shared source answers as the source it shares (`ebbflow demo` hands one simulated world to
/// the engine as its source and as every policy's target).
impl<M: MetricSource + ?Sized> MetricSource for std::sync::Arc<M> {
    fn fetch(
        &self,
        query: &MetricQuery,
        after: Ts,
        until: Ts,
    ) -> impl Future<Output = Result<Series, AdapterError>> + Send {
        (**self).fetch(query, after, until)
    }
}

/// A shared target answers as the target it shares.
impl<T: ScaleTarget + ?Sized> ScaleTarget for std::sync::Arc<T> {
    fn observe(&self) -> impl Future<Output = Result<TargetObservation, AdapterError>> + Send {
        (**self).observe()
    }
    fn resize(&self, to: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send {
        (**self).resize(to)
    }
    fn operation(&self, name: &str) -> impl Future<Output = Result<OperationStatus, AdapterError>> + Send {
        (**self).operation(name)
    }
    fn observe_members(&self) -> impl Future<Output = Result<Vec<MemberObservation>, AdapterError>> + Send {
        (**self).observe_members()
    }
    fn resize_member(&self, member: &str, to: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send {
        (**self).resize_member(member, to)
    }
    fn recommended_target(&self) -> impl Future<Output = Result<Option<f64>, AdapterError>> + Send {
        (**self).recommended_target()
    }
    fn resize_within(&self, to: u32, max: u32) -> impl Future<Output = Result<ResizeStarted, AdapterError>> + Send {
        (**self).resize_within(to, max)
    }
}

fn no_members() -> AdapterError {
    AdapterError::new(
        "target",
        ErrorKind::Refused,
        "this target is one thing: it has no members to size each on its own",
    )
}

/// One member of a target observed as a target of its own, for per-member sizing.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberObservation {
    /// Its short name, e.g. a cluster ID.
    pub name: String,
    /// Its state as the backend reports it, e.g. `READY`, `RESIZING`.
    pub state: String,
    /// It, as a target: its size, busy, size rule and its own floor (`members` empty).
    pub observation: TargetObservation,
    /// A Cloud Monitoring filter clause that narrows the policy's queries to this member's own
    /// series (e.g. `resource.labels.cluster="c1"`); the tick appends it with `AND`.
    pub filter: String,
}
