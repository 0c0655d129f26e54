//! The decision core of ebbflow: pure, IO-free, clock-free. The controller and the simulator both
//! call it. It is its own crate, depending on serde and jiff only, so that purity is kept by the
//! compiler: nothing here can reach the network, the clock or the CRD's wire types.
//!
//! ```text
//!  samples ──► signal (demand smoothing, spike detection) ──► recommendation per metric
//!                                                                  │ max
//!  PolicyState (from status) ──► decide(policy, state, inputs, now) ──► Decision { desired, reason, next state }
//! ```
//!
//! Nothing here reads a clock or performs IO: `now` and all data are arguments, so a replay and a
//! table test are exact, and a restarted controller decides exactly as before from the state it
//! stored.

pub mod backoff;
pub mod decide;
pub mod floor;
pub mod forecast;
pub mod known;
pub mod policy;
pub mod ramp;
pub mod replicas;
pub mod settle;
pub mod signal;
pub mod sizes;
pub mod smoothing;
pub mod state;
pub mod step;
pub mod time;
pub mod units;
pub mod workload;

pub use decide::{
    DataProblem, Decision, Direction, Floor, Inputs, Limit, MetricInput, MetricOutcome, Missing, Reason, decide,
    effective_target,
};
pub use floor::{FloorInput, StorageReading};
pub use policy::{MetricKind, MissingDataPolicy, Mode, Policy, SmoothingKind};
pub use signal::Sample;
pub use sizes::SizeRule;
pub use state::PolicyState;
pub use time::{Dur, Ts};

#[cfg(test)]
mod tests;
