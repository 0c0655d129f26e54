//! Exponential backoff with deterministic jitter for the schedules the controller keeps between
//! evaluations (resizes after failures, evaluations after errors). Pure: the jitter comes from a
//! seed the caller passes (a policy key, a time), not from a random source, so replays repeat.
//! This is the one seeded backoff; retries of one request within an evaluation use `backon`'s
//! random jitter in `gcp::retry` (outside the core, which depends on serde and jiff only).

use crate::time::Dur;

/// `base × 2^(failures − 1)`, capped at `cap`, plus up to 20% of that as jitter drawn from
/// `seed`, so that policies failing together (an outage) do not retry in lockstep.
pub fn exponential(failures: u32, base: Dur, cap: Dur, seed: &[u8]) -> Dur {
    let doublings = failures.saturating_sub(1).min(20);
    let wait = base.0.max(0).saturating_mul(1i64 << doublings).min(cap.0.max(0));
    // FNV-1a: a stable spread of the seed, not a secret.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    Dur(wait + (h % (wait as u64 / 5 + 1)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles per failure from the base, stops at the cap, and spreads by seed within 20%.
    #[test]
    fn doubles_caps_and_jitters() {
        let (base, cap) = (Dur::secs(60), Dur::mins(30));
        let d1 = exponential(1, base, cap, b"a");
        let d3 = exponential(3, base, cap, b"a");
        assert!(d1 >= Dur::secs(60) && d1 <= Dur::secs(72), "{d1:?}");
        assert!(d3 >= Dur::secs(240) && d3 <= Dur::secs(288), "{d3:?}");
        let far = exponential(40, base, cap, b"a");
        assert!(far >= cap && far <= Dur(cap.0 * 6 / 5), "{far:?}");
        let spread: std::collections::HashSet<Dur> = (0u8..20).map(|i| exponential(2, base, cap, &[i])).collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
