//! What the engine publishes for the pages that show it: the newest object (with its status) of
//! each policy, and its recent decisions ([`History`]).
//!
//! The engine writes here after every status write and the dashboard reads; neither knows the
//! other. `ebbflow run` hands a [`Published`] to the dashboard's router when it starts the
//! controller (see `controller::http::Pages`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use kube::ResourceExt;

use super::history::History;
use crate::api::{ScalePolicy, ScalePolicyStatus};

/// The latest view of each policy, keyed by [`key`].
pub type Snapshots = Arc<RwLock<BTreeMap<String, Shown>>>;

/// One policy as last shown: its object and its newest status, both shared with the store that
/// wrote them or the cache that holds them. With 1,000 policies a full status (a day
/// of history, the core's state) is some 15 KB; a second copy of each was the controller's
/// largest structure, and a copy of each object another 3 MB (`cargo bench --bench controller`,
/// heaptrack).
#[derive(Debug, Clone)]
pub struct Shown {
    /// Metadata and spec (shared with a cache, also the status that came with it); its own
    /// resourceVersion may be older than [`Shown::resource_version`].
    object: Arc<ScalePolicy>,
    resource_version: Option<String>,
    status: Option<Arc<ScalePolicyStatus>>,
}

impl Shown {
    /// `object` (its status is not read) with the status `status` and, if known, the
    /// resourceVersion the write returned.
    pub fn written(
        object: Arc<ScalePolicy>,
        status: Arc<ScalePolicyStatus>,
        resource_version: Option<String>,
    ) -> Shown {
        let resource_version = resource_version.or_else(|| object.metadata.resource_version.clone());
        Shown { object, resource_version, status: Some(status) }
    }

    /// The object as it is (a follower shows what the leader wrote).
    pub fn of(mut sp: ScalePolicy) -> Shown {
        let status = sp.status.take().map(Arc::new);
        let resource_version = sp.metadata.resource_version.clone();
        Shown { object: Arc::new(sp), resource_version, status }
    }

    /// The object as it is, with its status, shared with the cache that holds it: a replica
    /// shows the policies other replicas evaluate without a copy of each (with 10,000 policies
    /// over three replicas, two thirds of every replica's statuses; `cargo bench --bench
    /// replicas`).
    pub fn shared(sp: Arc<ScalePolicy>) -> Shown {
        let resource_version = sp.metadata.resource_version.clone();
        Shown { object: sp, resource_version, status: None }
    }

    /// The object with its status, assembled (a copy: for pages, exports and tests).
    pub fn policy(&self) -> ScalePolicy {
        let mut sp = ScalePolicy::clone(&self.object);
        sp.metadata.resource_version.clone_from(&self.resource_version);
        if let Some(status) = &self.status {
            sp.status = Some(ScalePolicyStatus::clone(status));
        }
        sp
    }

    /// The newest status, if any: the one written, else the object's own (the store's, not a
    /// copy).
    pub fn status(&self) -> Option<&ScalePolicyStatus> {
        self.status.as_deref().or(self.object.status.as_ref())
    }

    /// The object (its status, if it carries one, may be older than [`Shown::status`]).
    pub fn object(&self) -> &ScalePolicy {
        &self.object
    }
}

/// `namespace/name`: the key of a policy in [`Snapshots`], [`History`] and the engine's maps.
pub fn key(sp: &ScalePolicy) -> String {
    format!("{}/{}", sp.namespace().unwrap_or_default(), sp.name_any())
}

/// Everything the engine publishes; clones share the same maps.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Newest object with status per policy.
    pub snapshots: Snapshots,
    /// Recent decisions per policy.
    pub history: History,
    /// The engine's clock, which the pages read "now" from: the wall clock, unless the engine
    /// runs on another (`ebbflow demo` runs faster than real time).
    pub clock: EngineClock,
}

impl Published {
    /// Now, on the engine's clock.
    pub fn now(&self) -> crate::core::Ts {
        self.clock.now()
    }
}

/// A [`crate::clock::Clock`] that may be absent (the wall clock), and prints as its kind.
#[derive(Clone, Default)]
pub struct EngineClock(pub Option<crate::clock::Clock>);

impl EngineClock {
    /// Now on this clock.
    pub fn now(&self) -> crate::core::Ts {
        self.0.as_ref().map_or_else(crate::clock::now, |c| c())
    }
}

impl std::fmt::Debug for EngineClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "EngineClock(injected)" } else { "EngineClock(wall)" })
    }
}
