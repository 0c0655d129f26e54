//! The one place that reads the wall clock (`clippy.toml` forbids it elsewhere): everything else
//! takes `now` as an argument, so tests and replays control time.

use crate::core::Ts;

/// The time now, in the core's representation.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Ts {
    Ts(jiff::Timestamp::now().as_millisecond())
}
