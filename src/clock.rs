//! The one place that reads the wall clock (`clippy.toml` forbids it elsewhere): everything else
//! takes `now` as an argument, so tests and replays control time.

use std::sync::Arc;

use crate::core::Ts;

/// A source of "now", injected wherever time is read (the controller, the adapters that need it),
/// so tests and replays control time. The crate's one clock type.
pub type Clock = Arc<dyn Fn() -> Ts + Send + Sync>;

/// The wall clock, as a [`Clock`].
pub fn wall_clock() -> Clock {
    Arc::new(now)
}

/// The time now, in the core's representation.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Ts {
    Ts(jiff::Timestamp::now().as_millisecond())
}
