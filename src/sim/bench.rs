//! Speed and memory figures for `simulate --bench` (never asserted in timed tests). The work
//! measured is the core's own synthetic workload (`core::workload`), which
//! `cargo bench -p ebbflow-core --bench decide` times too.

use std::time::Instant;

use crate::core::SmoothingKind;
use crate::core::workload::{drive, load, policy, signal_pass};

/// Samples per second through smoothing, spike detection and `decide`, one decision per sample
/// (the slower of EMA and SMA smoothing).
pub fn core_samples_per_second() -> f64 {
    let values = load(2_000_000);
    let mut best: f64 = 0.0;
    for kind in [SmoothingKind::Ema, SmoothingKind::Sma] {
        let policy = policy(kind);
        let started = Instant::now();
        std::hint::black_box(drive(&policy, &values));
        let rate = values.len() as f64 / started.elapsed().as_secs_f64();
        best = if best == 0.0 { rate } else { best.min(rate) };
    }
    best
}

/// Samples per second through one signal's smoothing and spike detection alone (the per-sample
/// work; `decide` runs once per tick on top of it).
pub fn signal_samples_per_second() -> f64 {
    let values = load(5_000_000);
    let mut best: f64 = 0.0;
    for kind in [SmoothingKind::Ema, SmoothingKind::Sma] {
        let policy = policy(kind);
        let started = Instant::now();
        std::hint::black_box(signal_pass(&policy, &values));
        let rate = values.len() as f64 / started.elapsed().as_secs_f64();
        best = if best == 0.0 { rate } else { best.min(rate) };
    }
    best
}

/// Serialized size of the state after a long run: it must not grow with the trace.
pub fn state_bytes_after_long_run() -> usize {
    let (state, _) = drive(&policy(SmoothingKind::Sma), &load(1_000_000));
    serde_json::to_vec(&state).map(|v| v.len()).unwrap_or(0)
}
