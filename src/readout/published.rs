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
