//! Table tests of each decision rule, and property tests of the invariants.

pub(crate) mod fixtures;
mod headroom;
mod known;
mod properties;
mod rules;
mod stored_state;
