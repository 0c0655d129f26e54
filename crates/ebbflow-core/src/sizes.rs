//! Which sizes a target can take, and how the decision rounds to them.
//!
//! Not every integer is a size every target can reach: a regional GKE node pool changes by whole
//! nodes per zone (the total is a multiple of its zone count), a Bigtable cluster with 2x node
//! scaling takes even node counts only, Spanner's processing units go in steps of 100 below 1000
//! and in thousands above. The target says which ([`SizeRule`], in its observation), and
//! [`crate::decide`] only ever asks for a size the rule allows, so no adapter rounds behind the
//! core's back and the state never records a size the target cannot reach.
//!
//! The rounding rule:
//! - a wanted size is rounded **up** to the next reachable size, whichever way the decision
//!   goes: the policy asked for at least that much capacity (a scale-in that cannot reach a lower
//!   size without going under what the load needs keeps the current size);
//! - the bounds are the reachable sizes inside `[minSize, maxSize]`: `minSize` rounded up and
//!   `maxSize` rounded down ([`SizeRule::bounds`]), so a decision never goes below `minSize` nor
//!   above `maxSize`. When no reachable size lies between them (say minSize 4 and maxSize 5 on a
//!   3-zone pool), the policy cannot be honoured by any resize, and the decision keeps the size
//!   the target has;
//! - a step limit moves at least one reachable size: a scale-in step smaller than the rule's
//!   step goes to the next reachable size below, a scale-out step is rounded up.

/// The sizes a target can take. Every rule allows only sizes of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SizeRule {
    /// Any whole number (Bigtable nodes without 2x scaling, workload replicas).
    #[default]
    Any,
    /// Multiples of this number (a node pool's zone count, Bigtable's 2x node scaling).
    Multiple(u32),
    /// Multiples of `fine` below `threshold`, then multiples of `coarse` (Spanner processing
    /// units: 100, 200, ..., 900, then 1000, 2000, ...).
    Ladder {
        /// Step below the threshold.
        fine: u32,
        /// Where the coarse steps begin; itself a multiple of `coarse`.
        threshold: u32,
        /// Step from the threshold on.
        coarse: u32,
    },
}

fn round_up(n: u32, k: u32) -> Option<u32> {
    n.div_ceil(k).checked_mul(k)
}

impl SizeRule {
    /// Spanner's processing units: 100-unit steps below 1000, then whole thousands.
    pub const SPANNER_PROCESSING_UNITS: SizeRule = SizeRule::Ladder { fine: 100, threshold: 1000, coarse: 1000 };

    /// The rule with degenerate steps (0) read as 1, so arithmetic on it cannot divide by zero.
    fn sane(self) -> SizeRule {
        match self {
            SizeRule::Multiple(k) if k <= 1 => SizeRule::Any,
            SizeRule::Ladder { fine, threshold, coarse } => {
                SizeRule::Ladder { fine: fine.max(1), threshold, coarse: coarse.max(1) }
            }
            other => other,
        }
    }

    /// Whether the target can take `n`.
    pub fn allows(self, n: u32) -> bool {
        n >= 1 && self.up(n) == Some(n)
    }

    /// The smallest reachable size at or above `n` (at least 1); `None` past `u32::MAX`.
    pub fn up(self, n: u32) -> Option<u32> {
        let n = n.max(1);
        match self.sane() {
            SizeRule::Any => Some(n),
            SizeRule::Multiple(k) => round_up(n, k),
            SizeRule::Ladder { fine, threshold, coarse } => {
                if n < threshold {
                    round_up(n, fine).map(|r| if r >= threshold { round_up(threshold, coarse) } else { Some(r) })?
                } else {
                    round_up(n, coarse)
                }
            }
        }
    }

    /// The largest reachable size at or below `n`; `None` when there is none (below the first).
    pub fn down(self, n: u32) -> Option<u32> {
        let r = match self.sane() {
            SizeRule::Any => n,
            SizeRule::Multiple(k) => n / k * k,
            SizeRule::Ladder { fine, threshold, coarse } => {
                let coarse_floor = n / coarse * coarse;
                if n >= threshold && coarse_floor >= threshold {
                    coarse_floor
                } else {
                    n.min(threshold.saturating_sub(1)) / fine * fine
                }
            }
        };
        (r >= 1).then_some(r)
    }

    /// The smallest and largest reachable sizes inside `[min, max]`, or `None` when no
    /// reachable size lies between them.
    pub fn bounds(self, min: u32, max: u32) -> Option<(u32, u32)> {
        let lo = self.up(min)?;
        let hi = self.down(max)?;
        (lo <= hi).then_some((lo, hi))
    }

    /// The next reachable size below `current`, if any.
    pub fn below(self, current: u32) -> Option<u32> {
        self.down(current.checked_sub(1)?)
    }

    /// A short description, for messages: "any size", "multiples of 3", ...
    pub fn describe(self) -> String {
        match self.sane() {
            SizeRule::Any => "any size".into(),
            SizeRule::Multiple(k) => format!("multiples of {k}"),
            SizeRule::Ladder { fine, threshold, coarse } => {
                format!("multiples of {fine} below {threshold}, then multiples of {coarse}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiples_round_to_whole_zones() {
        let r = SizeRule::Multiple(3);
        assert_eq!((r.up(4), r.up(6), r.down(5), r.down(2)), (Some(6), Some(6), Some(3), None));
        assert!(r.allows(9) && !r.allows(10) && !r.allows(0));
        assert_eq!(r.bounds(2, 10), Some((3, 9)));
        assert_eq!(r.bounds(4, 5), None);
        assert_eq!(r.below(6), Some(3));
    }

    #[test]
    fn spanner_ladder() {
        let r = SizeRule::SPANNER_PROCESSING_UNITS;
        assert_eq!(r.up(1), Some(100));
        assert_eq!(r.up(950), Some(1000));
        assert_eq!(r.up(1001), Some(2000));
        assert_eq!(r.down(1999), Some(1000));
        assert_eq!(r.down(999), Some(900));
        assert_eq!(r.down(99), None);
        assert!(r.allows(300) && r.allows(3000) && !r.allows(1500) && !r.allows(150));
        assert_eq!(r.below(1000), Some(900));
        assert_eq!(r.below(2000), Some(1000));
    }

    #[test]
    fn any_is_every_positive_integer() {
        let r = SizeRule::Any;
        assert!((1..50).all(|n| r.allows(n) && r.up(n) == Some(n) && r.down(n) == Some(n)));
        assert_eq!(r.up(0), Some(1));
        assert_eq!(SizeRule::Multiple(0), SizeRule::Multiple(0));
        assert_eq!(SizeRule::Multiple(0).up(5), Some(5));
    }

    #[test]
    fn up_and_down_are_reachable_and_tight() {
        let rules = [
            SizeRule::Any,
            SizeRule::Multiple(2),
            SizeRule::Multiple(3),
            SizeRule::Multiple(7),
            SizeRule::SPANNER_PROCESSING_UNITS,
            SizeRule::Ladder { fine: 2, threshold: 10, coarse: 5 },
        ];
        for r in rules {
            for n in 0..3000u32 {
                let up = r.up(n).expect("small n");
                assert!(r.allows(up) && up >= n.max(1), "{r:?} up({n}) = {up}");
                assert!((n.max(1)..up).all(|m| !r.allows(m)), "{r:?} up({n}) = {up} skips one");
                if let Some(d) = r.down(n) {
                    assert!(r.allows(d) && d <= n, "{r:?} down({n}) = {d}");
                    assert!((d + 1..=n).all(|m| !r.allows(m)), "{r:?} down({n}) = {d} skips one");
                } else {
                    assert!((1..=n).all(|m| !r.allows(m)), "{r:?} down({n}) is None");
                }
            }
        }
    }
}
