//! The storage floor: the fewest nodes the target's stored data needs (Bigtable keeps stored
//! data under a share of its nodes' storage capacity).
//!
//! `storage_utilization` is stored bytes over the capacity of the nodes that existed when the
//! sample was measured, so a sample can only be read against the node count *of its own time*.
//! Monitoring lags by minutes: right after a resize the newest sample still describes the old
//! size, and multiplying it by the new count raises the floor again, and again (3 → 40 nodes in
//! two minutes, where 4 were needed). Nor is a sample's timestamp proof of its node count: the
//! service computes utilization against the capacity with a lag of its own, and a sample stamped
//! 180 s after a 6 → 9 resize finished was still data over 6 nodes; read against 9 it asked for
//! 13 where 9 were needed. So a sample is read against every size the resize history says may
//! have served it (any size the target had in its alignment period or the [`STORAGE_SETTLE`]
//! before it): when every reading puts the floor at or under the current size, the highest is the
//! floor (scale-in never goes under any of them); when every reading puts it above, the lowest is
//! (a raise never goes past what the data needs on any reading); otherwise it is unknown, which
//! blocks scale-in and raises nothing. While a resize is in flight it is unknown.
//!
//! ```text
//! floor = max(1, ceil(utilization × serve_nodes / storage_target))
//! ```

use std::borrow::Cow;

use crate::decide::{DataProblem, Floor};
use crate::signal::Sample;
use crate::state::PolicyState;
use crate::time::{Dur, Ts};

/// Default `storageTarget` of a target with a storage floor: keep stored data at most at half of
/// the nodes' storage capacity.
pub const DEFAULT_STORAGE_TARGET: f64 = 0.5;

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
    Unreadable(Cow<'static, str>),
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
        (None, Some(s)) => {
            FloorInput::Unreadable(format!("storage utilization is {} (not a fraction)", s.value).into())
        }
        (None, None) => FloorInput::Unreadable("no storage utilization sample in the last 15 minutes".into()),
        // The common cases in words that need no formatting: a replay meets them often.
        (Some(DataProblem::Partial), _) => {
            FloorInput::Unreadable("storage utilization data is not clean: Partial".into())
        }
        (Some(DataProblem::QueryFailed), _) => {
            FloorInput::Unreadable("storage utilization data is not clean: QueryFailed".into())
        }
        (Some(p), _) => FloorInput::Unreadable(format!("storage utilization data is not clean: {p:?}").into()),
    }
}

/// How long after the node count changed a storage sample may still be computed against the
/// count before: the service's own lag (180 s was seen, after a resize had been reported done),
/// with room to spare. Only readings that disagree about the current size wait this out.
pub const STORAGE_SETTLE: Dur = Dur::mins(5);

/// The floor `input` sets for a target of `current` nodes, given the resize history in `state`.
pub fn resolve(input: &FloorInput, state: &PolicyState, current: u32) -> Floor {
    match input {
        FloorInput::None => Floor::None,
        FloorInput::Unreadable(_) => Floor::Unknown,
        FloorInput::Storage(r) => match sizes_behind(state, r.at, current) {
            Some(sizes) => floor_on_any_of(r, sizes, current),
            None => Floor::Unknown,
        },
    }
}

/// Every node count the utilization sampled at `at` may have been computed against: `current`,
/// and both sizes of each resize that finished after `at − STORAGE_SAMPLE_PERIOD −
/// STORAGE_SETTLE` (a resize runs for minutes, and the count changes somewhere inside it). `None`
/// when that cannot be known: a resize in flight, or one that finished in that span and whose
/// record is gone. An iterator, not a list: the floor is resolved on every evaluation.
fn sizes_behind(state: &PolicyState, at: Ts, current: u32) -> Option<impl Iterator<Item = u32> + '_> {
    if state.in_flight.is_some() {
        return None;
    }
    let since = at - STORAGE_SAMPLE_PERIOD - STORAGE_SETTLE;
    let recorded = state.resizes.last().is_some_and(|r| r.finished_at > since);
    if state.last_resize_at.is_some_and(|done| done > since) && !recorded {
        return None;
    }
    // The history is oldest first: from the newest back to the first resize finished before the span.
    let resized = state.resizes.iter().rev().take_while(move |r| r.finished_at > since).flat_map(|r| [r.from, r.to]);
    Some(std::iter::once(current).chain(resized))
}

/// The floor a reading sets if it may have been measured on any of `sizes` (see the module docs):
/// the highest of their floors when all are at or under `current`, the lowest when all are above
/// it, unknown when they straddle it.
fn floor_on_any_of(r: &StorageReading, sizes: impl Iterator<Item = u32>, current: u32) -> Floor {
    let mut range: Option<(u32, u32)> = None;
    for n in sizes {
        let Floor::Nodes(f) = storage_floor(r.utilization, n, r.storage_target) else { return Floor::Unknown };
        range = Some(range.map_or((f, f), |(lo, hi)| (lo.min(f), hi.max(f))));
    }
    match range {
        Some((_, hi)) if hi <= current => Floor::Nodes(hi),
        Some((lo, _)) if lo > current => Floor::Nodes(lo),
        _ => Floor::Unknown,
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
    /// the new node count alone: reading 3 nodes at 67% as 4 nodes at 67% is what ratcheted the
    /// floor upward. 0.67 is 2.01 nodes of data on 3 nodes (a floor of 5) or 2.68 on 4 (6): both
    /// need more than 4, so the floor is the lesser until only 4 can be behind the sample.
    #[test]
    fn a_sample_older_than_the_last_resize_is_read_against_each_size_it_may_have_had() {
        let mut state = PolicyState::default();
        state.begin_resize(3, 4, None, Ts(100_000));
        let reading =
            |at: i64| FloorInput::Storage(StorageReading { at: Ts(at), utilization: 0.67, storage_target: 0.5 });
        // In flight: nothing measured is known to be on either size.
        assert_eq!(resolve(&reading(150_000), &state, 3), Floor::Unknown);
        state.finish_resize(Ts(200_000));
        // Measured before, or within the settle time after, the resize finished: 3 or 4 nodes.
        assert_eq!(resolve(&reading(190_000), &state, 4), Floor::Nodes(5));
        assert_eq!(resolve(&reading(260_000), &state, 4), Floor::Nodes(5));
        // Only 4 nodes can be behind it: 0.67 × 4 / 0.5 = 5.36 → 6.
        let settled = 200_000 + (STORAGE_SAMPLE_PERIOD + STORAGE_SETTLE).0;
        assert_eq!(resolve(&reading(settled), &state, 4), Floor::Nodes(6));
        assert_eq!(resolve(&FloorInput::Unreadable("403".into()), &state, 4), Floor::Unknown);
        assert_eq!(resolve(&FloorInput::None, &state, 4), Floor::None);
    }

    /// The service computes utilization against the node count with a lag of its own: a sample
    /// stamped 180 s after a 6 → 9 resize finished was still 4.2 nodes of data over 6 nodes
    /// (0.7), which 9 nodes carry at 0.5. Read against 9 alone it asked for 13 (9 → 13, one
    /// write too many); read against 6 and 9 it raises nothing.
    #[test]
    fn a_storage_sample_180_s_late_after_a_9_node_resize_does_not_raise_the_floor_above_9() {
        let done = Ts(3_600_000);
        let mut state = PolicyState::default();
        state.begin_resize(6, 9, Some("operations/1".into()), done - Dur::mins(4));
        state.finish_resize(done);
        let reading =
            |at: Ts, utilization: f64| FloorInput::Storage(StorageReading { at, utilization, storage_target: 0.5 });
        let late = done + Dur::secs(180);
        let floor = resolve(&reading(late, 0.7), &state, 9);
        assert!(!matches!(floor, Floor::Nodes(n) if n > 9), "{floor:?}");
        assert_eq!(floor, Floor::Unknown, "6 nodes say 9, 9 nodes say 13: it straddles the size");
        // The same data already computed over 9 nodes: 9 on either reading at most, which holds
        // scale-in there.
        assert_eq!(resolve(&reading(late, 4.2 / 9.0), &state, 9), Floor::Nodes(9));
        // Data that outgrew 9 nodes on every reading (0.9: 11 on 6, 17 on 9) raises to the lesser.
        assert_eq!(resolve(&reading(late, 0.9), &state, 9), Floor::Nodes(11));
        // Once only 9 nodes can be behind a sample, it is read against 9 alone.
        let settled = done + STORAGE_SAMPLE_PERIOD + STORAGE_SETTLE;
        assert_eq!(resolve(&reading(settled, 4.2 / 9.0), &state, 9), Floor::Nodes(9));
        assert_eq!(resolve(&reading(settled, 0.7), &state, 9), Floor::Nodes(13));
    }

    /// After a scale-in, a sample still computed over the larger size reads low against the
    /// smaller one: the floor is the larger reading, so scale-in never goes under it.
    #[test]
    fn after_a_scale_in_the_floor_is_the_higher_reading() {
        let done = Ts(3_600_000);
        let mut state = PolicyState::default();
        state.begin_resize(10, 8, None, done - Dur::mins(4));
        state.finish_resize(done);
        // 3 nodes of data over 10 nodes (0.3): 6 on 10, 5 on 8.
        let reading =
            FloorInput::Storage(StorageReading { at: done + Dur::mins(2), utilization: 0.3, storage_target: 0.5 });
        assert_eq!(resolve(&reading, &state, 8), Floor::Nodes(6));
        // A resize in the span whose record is gone: the size before it is unknown.
        state.resizes.clear();
        assert_eq!(resolve(&reading, &state, 8), Floor::Unknown);
    }
}
