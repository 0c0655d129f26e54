//! The decision core's speed on its synthetic workload (`ebbflow_core::workload`), one core:
//! `cargo bench -p ebbflow-core --bench decide`. A report, never a timed test; the goal (issue
//! 23) is 20 million samples per second through `decide`.

use std::time::Instant;

use ebbflow_core::SmoothingKind;
use ebbflow_core::workload::{drive, drive_steps, load, policy, signal_pass};

fn main() {
    let values = load(2_000_000);
    for kind in [SmoothingKind::Ema, SmoothingKind::Sma] {
        let policy = policy(kind);
        let started = Instant::now();
        std::hint::black_box(drive(&policy, &values));
        let decide = values.len() as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        std::hint::black_box(drive_steps(&policy, &values));
        let steps = values.len() as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        std::hint::black_box(signal_pass(&policy, &values));
        let signal = values.len() as f64 / started.elapsed().as_secs_f64();
        println!(
            "{kind:?}: decide {:.1} million samples/s, through the step machine {:.1}, signal step alone {:.1}",
            decide / 1e6,
            steps / 1e6,
            signal / 1e6
        );
    }
}
