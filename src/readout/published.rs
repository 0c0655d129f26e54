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
use crate::api::ScalePolicy;

/// The latest view of each policy (object with its newest status), keyed by [`key`].
pub type Snapshots = Arc<RwLock<BTreeMap<String, ScalePolicy>>>;

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
}
