//! Table tests of each decision rule, and property tests of the invariants.

pub(crate) mod fixtures;
mod properties;
mod rules;
