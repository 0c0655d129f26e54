//! The storage floor: the fewest nodes the target's stored data needs (Bigtable keeps stored
//! data under a share of its nodes' storage capacity).
//!
//! `storage_utilization` is stored bytes over the capacity of the nodes that existed when the
//! sample was measured, so a sample can only be read against the node count *of its own time*.
//! Monitoring lags by minutes: right after a resize the newest sample still describes the old
//! size, and multiplying it by the new count raises the floor again, and again (3 → 40 nodes in
//! two minutes, where 4 were needed). So the floor is computed only from a sample measured after
//! the last resize finished (its whole alignment period on the current size); until one exists
//! it is unknown, which blocks scale-in and raises nothing.
//!
//! ```text
//! floor = max(1, ceil(utilization × serve_nodes / storage_target))
//! ```

use crate::decide::{DataProblem, Floor};
use crate::signal::Sample;
use crate::state::PolicyState;
use crate::time::{Dur, Ts};

/// The alignment period of a storage sample: the sample at `t` describes `(t − period, t]`.
pub const STORAGE_SAMPLE_PERIOD: Dur = Dur::secs(60);

/// The newest storage utilization sample of the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StorageReading {
    /// When it was measured (end of its alignment period).
    pub at: Ts,
    /// Stored bytes over the storage capacity of the nodes of that time, 0..1.
    pub utilization: f64,
    /// The utilization to keep the data at or under (the policy's `storageTarget`).
    pub storage_target: f64,
}

/// What a target reports about a floor of its own.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FloorInput {
    /// The target has no floor.
    #[default]
    None,
    /// The newest storage sample, to be read against the node count of its time.
    Storage(StorageReading),
    /// The floor could not be read (the query failed, no sample, NaN): why, for people.
    Unreadable(String),
}

/// How far back the tick reads the storage metric: it moves slowly, and a sample older than
/// this says too little about the data now.
pub const STORAGE_LOOKBACK: Dur = Dur::mins(15);

/// Read a fetched storage utilization series (the newest sample of the last
/// [`STORAGE_LOOKBACK`]) as the floor's input. No sample, NaN, negative or unclean data is
/// unreadable, with why, which blocks scale-in.
pub fn storage_input(samples: &[Sample], problem: Option<DataProblem>, storage_target: f64) -> FloorInput {
    match (problem, samples.last()) {
        (None, Some(s)) if s.value.is_finite() && s.value >= 0.0 => {
            FloorInput::Storage(StorageReading { at: s.at, utilization: s.value, storage_target })
        }
        (None, Some(s)) => FloorInput::Unreadable(format!("storage utilization is {} (not a fraction)", s.value)),
        (None, None) => FloorInput::Unreadable("no storage utilization sample in the last 15 minutes".into()),
        (Some(p), _) => FloorInput::Unreadable(format!("storage utilization data is not clean: {p:?}")),
    }
}

/// The floor `input` sets for a target of `current` nodes, given the resize history in `state`.
pub fn resolve(input: &FloorInput, state: &PolicyState, current: u32) -> Floor {
    match input {
        FloorInput::None => Floor::None,
        FloorInput::Unreadable(_) => Floor::Unknown,
        FloorInput::Storage(r) => {
            let measured_on_current = state.in_flight.is_none()
                && state.last_resize_at.is_none_or(|done| r.at - STORAGE_SAMPLE_PERIOD >= done);
            if measured_on_current { storage_floor(r.utilization, current, r.storage_target) } else { Floor::Unknown }
        }
    }
}

/// The nodes the stored data needs at `storage_target`, from a utilization measured on
/// `serve_nodes` nodes. Invalid utilization gives [`Floor::Unknown`].
pub fn storage_floor(utilization: f64, serve_nodes: u32, storage_target: f64) -> Floor {
    if !utilization.is_finite() || utilization < 0.0 || !storage_target.is_finite() || storage_target <= 0.0 {
        return Floor::Unknown;
    }
    // The small slack keeps 0.25 × 4 / 0.5 = 2.0000000000000004 from asking for 3 nodes.
    let nodes = (utilization * f64::from(serve_nodes) / storage_target - 1e-9).ceil();
    Floor::Nodes(nodes.clamp(1.0, f64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_floor_is_the_nodes_the_data_needs_at_the_target() {
        // 4 nodes at 30% → 1.2 nodes of data → at 50% → 2.4 → 3
        assert_eq!(storage_floor(0.3, 4, 0.5), Floor::Nodes(3));
        assert_eq!(storage_floor(0.25, 4, 0.5), Floor::Nodes(2));
        assert_eq!(storage_floor(0.0, 4, 0.5), Floor::Nodes(1));
        assert_eq!(storage_floor(0.9, 10, 0.6), Floor::Nodes(15));
        assert_eq!(storage_floor(f64::NAN, 4, 0.5), Floor::Unknown);
        assert_eq!(storage_floor(-0.1, 4, 0.5), Floor::Unknown);
        assert_eq!(storage_floor(0.5, 4, f64::NAN), Floor::Unknown);
    }

    /// A sample measured before the last resize finished (Monitoring lag) is not multiplied by
    /// the new node count: the floor is unknown until a sample of the new size exists. Reading
    /// 3 nodes at 67% as 4 nodes at 67% is what ratcheted the floor upward.
    #[test]
    fn a_sample_older_than_the_last_resize_sets_no_floor() {
        let mut state = PolicyState::default();
        state.begin_resize(3, 4, None, Ts(100_000));
        let reading =
            |at: i64| FloorInput::Storage(StorageReading { at: Ts(at), utilization: 0.67, storage_target: 0.5 });
        // In flight: nothing measured is known to be on either size.
        assert_eq!(resolve(&reading(150_000), &state, 3), Floor::Unknown);
        state.finish_resize(Ts(200_000));
        // Measured before, or partly before, the resize finished.
        assert_eq!(resolve(&reading(190_000), &state, 4), Floor::Unknown);
        assert_eq!(resolve(&reading(230_000), &state, 4), Floor::Unknown);
        // Measured wholly on 4 nodes: 0.67 × 4 / 0.5 = 5.36 → 6.
        assert_eq!(resolve(&reading(260_000), &state, 4), Floor::Nodes(6));
        assert_eq!(resolve(&FloorInput::Unreadable("403".into()), &state, 4), Floor::Unknown);
        assert_eq!(resolve(&FloorInput::None, &state, 4), Floor::None);
    }
}
