//! Step rows and the summary computed from them.
//!
//! [`Summary::from_steps`] is the only place summary figures are computed, and it reads nothing but
//! the rows (plus the target, limit and start size the summary itself states), so anyone can
//! recompute every figure from a `--steps-out` file.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::core::Ts;

/// One evaluation of one algorithm.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Evaluation time.
    pub at: Ts,
    /// Demand at that time (NaN inside a gap of the trace).
    pub demand: f64,
    /// Newest raw value the policy had seen (NaN if none).
    pub observed: f64,
    /// Smoothed value the policy sized on, per node at the current size (NaN if none).
    pub smoothed: f64,
    /// Whether a spike was detected.
    pub spike: bool,
    /// Size asked for after the decision (what is billed).
    pub desired: u32,
    /// Capacity serving after the decision.
    pub serving: u32,
    /// Why (a `Reason` name, or the baseline's name).
    pub reason: &'static str,
}

/// Figures of one run, all derivable from its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Algorithm name: the policy's name, or a baseline.
    pub algorithm: String,
    /// Target per node the run was judged against.
    pub target: f64,
    /// Per-node limit the run was judged against.
    pub limit: f64,
    /// Size before the first evaluation.
    pub start_size: u32,
    /// Evaluations.
    pub evaluations: usize,
    /// Σ desired × step length.
    pub node_minutes: f64,
    /// node-minutes relative to the oracle's (the lower bound); filled in when compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_lower_bound: Option<f64>,
    /// Minutes with demand / serving above the target.
    pub minutes_over_target: f64,
    /// Minutes with demand / serving above the limit.
    pub minutes_over_limit: f64,
    /// Minutes inside gaps of the trace (no demand known).
    pub minutes_without_data: f64,
    /// Resizes up.
    pub scale_outs: u32,
    /// Resizes down.
    pub scale_ins: u32,
    /// Scale-ins followed by a scale-out within an hour.
    pub reversals: u32,
    /// Largest size asked for.
    pub largest_size: u32,
    /// Overloads: episodes that went over the limit.
    pub overloads: u32,
    /// Minutes from going over the limit to being back at or under the target, per overload.
    pub recovery_minutes: Vec<f64>,
}

/// Reversal window: a scale-in undone within this many minutes was a mistake.
const REVERSAL_MINUTES: f64 = 60.0;

impl Summary {
    /// Compute every figure from the rows.
    pub fn from_steps(algorithm: &str, steps: &[Step], target: f64, limit: f64, start_size: u32) -> Summary {
        let mut s = Summary {
            algorithm: algorithm.to_string(),
            target,
            limit,
            start_size,
            evaluations: steps.len(),
            node_minutes: 0.0,
            vs_lower_bound: None,
            minutes_over_target: 0.0,
            minutes_over_limit: 0.0,
            minutes_without_data: 0.0,
            scale_outs: 0,
            scale_ins: 0,
            reversals: 0,
            largest_size: 0,
            overloads: 0,
            recovery_minutes: Vec::new(),
        };
        let mut prev = start_size;
        let mut last_in: Option<Ts> = None;
        let mut overload_since: Option<Ts> = None;
        for (i, step) in steps.iter().enumerate() {
            let minutes = step_minutes(steps, i);
            s.node_minutes += step.desired as f64 * minutes;
            s.largest_size = s.largest_size.max(step.desired);
            if step.desired > prev {
                s.scale_outs += 1;
                if let Some(t) = last_in.take()
                    && (step.at - t).as_minutes() <= REVERSAL_MINUTES
                {
                    s.reversals += 1;
                }
            } else if step.desired < prev {
                s.scale_ins += 1;
                last_in = Some(step.at);
            }
            prev = step.desired;
            if step.demand.is_nan() {
                s.minutes_without_data += minutes;
                continue;
            }
            let load = step.demand / step.serving.max(1) as f64;
            if load > target {
                s.minutes_over_target += minutes;
            }
            if load > limit {
                s.minutes_over_limit += minutes;
                if overload_since.is_none() {
                    overload_since = Some(step.at);
                    s.overloads += 1;
                }
            } else if load <= target
                && let Some(since) = overload_since.take()
            {
                s.recovery_minutes.push((step.at - since).as_minutes());
            }
        }
        if let (Some(since), Some(last)) = (overload_since, steps.last()) {
            // Never recovered before the trace ended: count the time until the end.
            s.recovery_minutes.push((last.at - since).as_minutes() + step_minutes(steps, steps.len() - 1));
        }
        s
    }

    /// Median recovery, in minutes.
    pub fn recovery_median(&self) -> Option<f64> {
        let mut v = self.recovery_minutes.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }

    /// Longest recovery, in minutes.
    pub fn recovery_max(&self) -> Option<f64> {
        self.recovery_minutes.iter().copied().reduce(f64::max)
    }
}

/// Length of row `i`: until the next row; the last row lasts as long as the one before it.
fn step_minutes(steps: &[Step], i: usize) -> f64 {
    if i + 1 < steps.len() {
        (steps[i + 1].at - steps[i].at).as_minutes()
    } else if i > 0 {
        (steps[i].at - steps[i - 1].at).as_minutes()
    } else {
        1.0
    }
}

/// The steps CSV header.
pub const STEPS_HEADER: &str = "timestamp,demand,observed,smoothed,spike,desired,serving,reason";

fn num(v: f64) -> String {
    if v.is_nan() { String::new() } else { format!("{v}") }
}

/// Write steps as CSV (`timestamp,demand,observed,smoothed,spike,desired,serving,reason`); unknown
/// values are empty fields.
pub fn write_steps(out: &mut impl std::io::Write, steps: &[Step]) -> std::io::Result<()> {
    writeln!(out, "{STEPS_HEADER}")?;
    for s in steps {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            s.at.to_rfc3339(),
            num(s.demand),
            num(s.observed),
            num(s.smoothed),
            s.spike,
            s.desired,
            s.serving,
            s.reason
        )?;
    }
    Ok(())
}

/// Read a steps CSV back (used to check that the summary is recomputable).
pub fn read_steps(text: &str) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        if c.len() != 8 {
            return Err(format!("line {}: expected 8 columns", i + 1));
        }
        let f = |s: &str| {
            if s.is_empty() { Ok(f64::NAN) } else { s.parse::<f64>().map_err(|e| format!("line {}: {e}", i + 1)) }
        };
        let reason = crate::core::Reason::parse(c[7]).map(|r| r.as_str()).unwrap_or("other");
        out.push(Step {
            at: Ts::parse_rfc3339(c[0])?,
            demand: f(c[1])?,
            observed: f(c[2])?,
            smoothed: f(c[3])?,
            spike: c[4] == "true",
            desired: c[5].parse().map_err(|e| format!("line {}: {e}", i + 1))?,
            serving: c[6].parse().map_err(|e| format!("line {}: {e}", i + 1))?,
            reason,
        });
    }
    Ok(out)
}

/// Render summaries side by side as a terminal table.
pub fn table(rows: &[Summary]) -> String {
    let header = [
        "algorithm",
        "node-min",
        "x lower",
        "min>target",
        "min>limit",
        "outs",
        "ins",
        "revs",
        "max",
        "overloads",
        "recovery p50/max",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let rec = match (r.recovery_median(), r.recovery_max()) {
            (Some(m), Some(x)) => format!("{m:.0}m/{x:.0}m"),
            _ => "-".into(),
        };
        cells.push(vec![
            r.algorithm.clone(),
            format!("{:.0}", r.node_minutes),
            r.vs_lower_bound.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
            format!("{:.0}", r.minutes_over_target),
            format!("{:.0}", r.minutes_over_limit),
            r.scale_outs.to_string(),
            r.scale_ins.to_string(),
            r.reversals.to_string(),
            r.largest_size.to_string(),
            r.overloads.to_string(),
            rec,
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|c| cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(out, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(out, "  {cell:>w$}", w = widths[c]);
            }
        }
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(min: i64, demand: f64, desired: u32, serving: u32) -> Step {
        Step {
            at: Ts(min * 60_000),
            demand,
            observed: f64::NAN,
            smoothed: f64::NAN,
            spike: false,
            desired,
            serving,
            reason: "ScaleOut",
        }
    }

    #[test]
    fn figures_on_a_hand_made_run() {
        // target 0.5 per node, limit 0.6
        let steps = vec![
            step(0, 1.0, 2, 2), // 0.5: at target
            step(1, 2.0, 3, 2), // 1.0: over limit (overload starts), scale-out
            step(2, 2.0, 3, 3), // 0.67: over limit
            step(3, 1.4, 3, 3), // 0.47: recovered after 3 min
            step(4, 0.5, 2, 2), // scale-in
            step(5, f64::NAN, 2, 2),
            step(6, 1.5, 4, 2), // scale-out 50 min later counts as a reversal, over limit
        ];
        let s = Summary::from_steps("t", &steps, 0.5, 0.6, 2);
        assert_eq!(s.node_minutes, (2 + 3 + 3 + 3 + 2 + 2 + 4) as f64);
        assert_eq!(s.minutes_over_target, 3.0);
        assert_eq!(s.minutes_over_limit, 3.0);
        assert_eq!(s.minutes_without_data, 1.0);
        assert_eq!((s.scale_outs, s.scale_ins, s.reversals), (2, 1, 1));
        assert_eq!(s.largest_size, 4);
        assert_eq!(s.overloads, 2);
        assert_eq!(s.recovery_minutes, vec![2.0, 1.0]);
    }

    #[test]
    fn steps_round_trip_through_csv() {
        let steps = vec![step(0, 1.0, 2, 2), step(1, f64::NAN, 3, 2)];
        let mut buf = Vec::new();
        write_steps(&mut buf, &steps).unwrap();
        let back = read_steps(std::str::from_utf8(&buf).unwrap()).unwrap();
        assert_eq!(back.len(), 2);
        // Step holds NaNs (unknown values), which never compare equal: compare field by field.
        for (b, s) in back.iter().zip(&steps) {
            assert_eq!(
                (b.at, b.spike, b.desired, b.serving, b.reason),
                (s.at, s.spike, s.desired, s.serving, s.reason)
            );
            for (x, y) in [(b.demand, s.demand), (b.observed, s.observed), (b.smoothed, s.smoothed)] {
                assert!(x == y || (x.is_nan() && y.is_nan()), "{x} != {y}");
            }
        }
    }
}
