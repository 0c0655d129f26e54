//! Table tests of each decision rule, and property tests of the invariants.

mod fixtures;
mod properties;
mod rules;
