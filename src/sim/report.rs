//! Step rows and the summary computed from them.
//!
//! [`Summary::from_steps`] is the only place summary figures are computed, and it reads nothing but
//! the rows (plus the target, limit and start size the summary itself states), so anyone can
//! recompute every figure from a `--steps-out` file.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::core::Ts;

/// Relative rounding allowed before a load counts as over its target or limit: values read in
/// one unit and divided into another (percent into fractions) land a few ulps off exact ties.
pub(crate) const TIE: f64 = 1e-9;

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
    /// The demand the policy's forecast expected at `at + lead`, when it forecast a rise (NaN
    /// otherwise, and for baselines).
    pub forecast: f64,
    /// The demand the policy's line through a steady climb expected at `at + warmup`, when it
    /// believed one (NaN otherwise, and for baselines).
    pub ramp: f64,
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
    /// Σ nodes billed × step length: the size asked for, or the nodes still serving while a
    /// scale-in runs ([`billed`]).
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
    /// The SPEC Research Group's elasticity metrics, from the same rows.
    #[serde(default)]
    pub elasticity: Elasticity,
    /// How good the policy's forecast was (policies with a forecast only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastScore>,
    /// How good the policy's line through steady climbs was, scored like the forecast with the
    /// warm-up as its lead (runs where it believed a line or scaled out on one only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<ForecastScore>,
}

/// The forecast against what happened, from the steps: each row's `forecast` (demand expected
/// at `at + lead`) against the `demand` of the row at `at + lead`. Errors are in nodes at the
/// target (demand / target), so they read as "nodes too many or too few".
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastScore {
    /// How far ahead the forecast looks, in minutes.
    pub lead_minutes: f64,
    /// Rows with a forecast whose outcome is known (demand at `at + lead` inside the trace).
    pub forecasts: u32,
    /// Mean absolute error, in nodes: mean |forecast − actual| / target.
    pub mae_nodes: f64,
    /// Mean absolute percentage error: mean |forecast − actual| / actual, percent, over rows
    /// whose actual is above 0.
    pub mape: f64,
    /// Mean error, in nodes: above 0 the forecast expected more than came.
    pub bias_nodes: f64,
    /// The naive forecast's mean absolute error on the same rows, in nodes: "demand stays what
    /// it is now", |demand(at) − actual| / target. A forecast worth having beats it.
    pub naive_mae_nodes: f64,
    /// Scale-outs made ahead of a forecast rise (reason ScaleOutAhead; ScaleOutOnRamp for the
    /// line through a climb).
    pub ahead_scale_outs: u32,
    /// Of those, the ones the load needed: within the lead, demand went past what the size
    /// before the scale-out carries at the target.
    pub ahead_needed: u32,
}

impl ForecastScore {
    /// Its lead as a duration.
    pub fn lead(&self) -> crate::core::Dur {
        crate::core::Dur((self.lead_minutes * 60_000.0).round() as i64)
    }

    /// Score the rows' forecasts at `target` per node, `lead` ahead.
    pub fn from_steps(steps: &[Step], target: f64, lead: crate::core::Dur, start_size: u32) -> ForecastScore {
        Self::scored(steps, target, lead, start_size, |s| s.forecast, "ScaleOutAhead")
    }

    /// Score the rows' lines through a steady climb at `target` per node, `warmup` ahead (the
    /// lead the line sizes for); `None` when the line was never believed nor acted on.
    pub fn of_ramp(steps: &[Step], target: f64, warmup: crate::core::Dur, start_size: u32) -> Option<ForecastScore> {
        let f = Self::scored(steps, target, warmup, start_size, |s| s.ramp, "ScaleOutOnRamp");
        (f.forecasts > 0 || f.ahead_scale_outs > 0).then_some(f)
    }

    /// Score `expected(row)` (demand expected `lead` later) against what came, and count the
    /// scale-outs made for `reason`.
    fn scored(
        steps: &[Step],
        target: f64,
        lead: crate::core::Dur,
        start_size: u32,
        expected: impl Fn(&Step) -> f64,
        reason: &str,
    ) -> ForecastScore {
        let mut f = ForecastScore { lead_minutes: lead.as_minutes(), ..ForecastScore::default() };
        let (mut abs, mut err, mut pct, mut naive, mut with_actual) = (0.0, 0.0, 0.0, 0.0, 0u32);
        for (i, s) in steps.iter().enumerate() {
            let before = if i == 0 { start_size } else { steps[i - 1].desired };
            if s.reason == reason && s.desired > before {
                f.ahead_scale_outs += 1;
                let end = s.at + lead;
                let needed = steps[i + 1..]
                    .iter()
                    .take_while(|r| r.at <= end)
                    .any(|r| demand_nodes(r.demand, target) > f64::from(before));
                f.ahead_needed += u32::from(needed);
            }
            let forecast = expected(s);
            if !forecast.is_finite() || !s.demand.is_finite() {
                continue;
            }
            // The row at `at + lead` (or the newest before it), after this one.
            let j = steps.partition_point(|r| r.at <= s.at + lead);
            if j <= i + 1 || s.at + lead > steps[steps.len() - 1].at {
                continue;
            }
            let actual = steps[j - 1].demand;
            if !actual.is_finite() {
                continue;
            }
            f.forecasts += 1;
            abs += (forecast - actual).abs();
            err += forecast - actual;
            naive += (s.demand - actual).abs();
            if actual > 0.0 {
                pct += (forecast - actual).abs() / actual;
                with_actual += 1;
            }
        }
        if f.forecasts > 0 {
            let n = f64::from(f.forecasts);
            f.mae_nodes = abs / n / target;
            f.bias_nodes = err / n / target;
            f.naive_mae_nodes = naive / n / target;
        }
        if with_actual > 0 {
            f.mape = 100.0 * pct / f64::from(with_actual);
        }
        f
    }
}

/// The SPEC Research Group's elasticity metrics (Herbst et al., "Ready for Rain? A View from SPEC
/// Research on the Future of Cloud Metrics", SPEC-RG-2016-01; Bauer et al., "Chameleon", IEEE TPDS
/// 2019), computed from the steps.
///
/// Demand `d_t` is the resource demand in nodes, `ceil(demand / target)` (the size that keeps the
/// row at or under the target, what the oracle asks for before min/max); supply `s_t` is the
/// serving size. Rows without demand (gaps) are left out: `T` is the time with demand, and
/// "consecutive" rows are consecutive among the rows kept. `Δt` is the row's length. All but the
/// jitter and the counts are percentages.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Elasticity {
    /// θ_U = 100 / T · Σ max(d_t − s_t, 0) / max(d_t, 1) · Δt: mean relative shortfall, percent.
    pub under_accuracy: f64,
    /// θ_O = 100 / T · Σ max(s_t − d_t, 0) / max(d_t, 1) · Δt: mean relative excess, percent.
    pub over_accuracy: f64,
    /// τ_U = 100 / T · Σ [s_t < d_t] · Δt: share of time under-provisioned, percent.
    pub under_timeshare: f64,
    /// τ_O = 100 / T · Σ [s_t > d_t] · Δt: share of time over-provisioned, percent.
    pub over_timeshare: f64,
    /// υ = 100 / Σ_{t≥2} Δt · Σ_{t≥2} min(|sgn Δs_t − sgn Δd_t|, 1) · Δt: share of time supply and
    /// demand did not move the same way (one changed and the other did not, or they went opposite
    /// ways), percent.
    pub instability: f64,
    /// j = (supply adaptations − demand changes) / T, per hour: positive when supply moves more
    /// often than demand (restless), negative when it moves less (inert).
    pub jitter_per_hour: f64,
    /// Supply adaptations: rows whose serving size differs from the previous kept row's.
    pub supply_changes: u32,
    /// Demand changes: rows whose demand in nodes differs from the previous kept row's.
    pub demand_changes: u32,
}

/// The denominator's floor in θ_U and θ_O, in nodes: a row whose demand rounds to 0 nodes is
/// judged against 1 node, so any excess there counts once per node instead of dividing by 0.
const DEMAND_FLOOR_NODES: f64 = 1.0;

/// Demand in nodes at the target: `ceil(demand / target)`, with the same 1e-9 slack the oracle
/// sizes with, so a load of exactly 2 × target needs 2 nodes, not 3. NaN (unknown demand) stays
/// NaN; a negative demand needs 0 nodes.
pub fn demand_nodes(demand: f64, target: f64) -> f64 {
    let n = (demand / target - 1e-9).ceil();
    // Written as a comparison, not f64::max, which would turn NaN into 0.
    if n < 0.0 { 0.0 } else { n }
}

impl Elasticity {
    /// Compute the metrics from the rows, judged at `target` per node.
    pub fn from_steps(steps: &[Step], target: f64) -> Elasticity {
        let mut e = Elasticity::default();
        let (mut t, mut paired) = (0.0, 0.0);
        let (mut under, mut over, mut t_under, mut t_over, mut unstable) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let mut prev: Option<(f64, u32)> = None;
        for (i, step) in steps.iter().enumerate() {
            let d = demand_nodes(step.demand, target);
            if !d.is_finite() {
                continue;
            }
            let dt = step_minutes(steps, i);
            let s = step.serving as f64;
            t += dt;
            match s.total_cmp(&d) {
                Ordering::Less => {
                    under += (d - s) / d.max(DEMAND_FLOOR_NODES) * dt;
                    t_under += dt;
                }
                Ordering::Greater => {
                    over += (s - d) / d.max(DEMAND_FLOOR_NODES) * dt;
                    t_over += dt;
                }
                Ordering::Equal => {}
            }
            if let Some((pd, ps)) = prev {
                paired += dt;
                let (ds, dd) = (step.serving.cmp(&ps), d.total_cmp(&pd));
                e.supply_changes += u32::from(ds != Ordering::Equal);
                e.demand_changes += u32::from(dd != Ordering::Equal);
                if ds != dd {
                    unstable += dt;
                }
            }
            prev = Some((d, step.serving));
        }
        if t > 0.0 {
            e.under_accuracy = 100.0 * under / t;
            e.over_accuracy = 100.0 * over / t;
            e.under_timeshare = 100.0 * t_under / t;
            e.over_timeshare = 100.0 * t_over / t;
            e.jitter_per_hour = (e.supply_changes as f64 - e.demand_changes as f64) / (t / 60.0);
        }
        if paired > 0.0 {
            e.instability = 100.0 * unstable / paired;
        }
        e
    }
}

/// Reversal window: a scale-in undone within this many minutes was a mistake.
const REVERSAL_MINUTES: f64 = 60.0;

impl Summary {
    /// Its forecast scores, each with the name it is shown under: the weekly forecast's under
    /// the algorithm's name, the line's through a steady climb as "name (line)".
    pub fn forecast_scores(&self) -> impl Iterator<Item = (String, ForecastScore)> + '_ {
        let line = self.ramp.map(|f| (format!("{} (line)", self.algorithm), f));
        self.forecast.map(|f| (self.algorithm.clone(), f)).into_iter().chain(line)
    }

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
            elasticity: Elasticity::from_steps(steps, target),
            forecast: None,
            ramp: None,
        };
        let mut prev = start_size;
        let mut last_in: Option<Ts> = None;
        let mut overload_since: Option<Ts> = None;
        for (i, step) in steps.iter().enumerate() {
            let minutes = step_minutes(steps, i);
            s.node_minutes += billed(step.desired, step.serving) as f64 * minutes;
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
            // Over by more than rounding: the baselines size with the same tolerance (a 54 %
            // sample read as 0.54 makes 5.4 / 9 = 0.6000000000000001, which is at the target).
            let load = step.demand / step.serving.max(1) as f64 / (1.0 + TIE);
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

/// Nodes billed in a step: those asked for, or more while a scale-in's operation has not yet
/// removed nodes that still serve (a Bigtable resize, a node-pool drain that deletes a VM only
/// once its pods have moved): they cost until they are gone.
pub fn billed(desired: u32, serving: u32) -> u32 {
    desired.max(serving)
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
pub const STEPS_HEADER: &str = "timestamp,demand,observed,smoothed,spike,desired,serving,reason,forecast,ramp";

fn num(v: f64) -> String {
    if v.is_nan() { String::new() } else { format!("{v}") }
}

/// Write steps as CSV (`timestamp,demand,observed,smoothed,spike,desired,serving,reason,forecast,ramp`);
/// unknown values are empty fields.
pub fn write_steps(out: &mut impl std::io::Write, steps: &[Step]) -> std::io::Result<()> {
    write_steps_with(out, steps, None)
}

/// [`write_steps`], and for a policy with schedules or overrides an eleventh column, `known`: what
/// was in effect at each step, e.g. `schedule morning-rush (min 9)`, entries separated by `; `.
pub fn write_steps_with(
    out: &mut impl std::io::Write,
    steps: &[Step],
    policy: Option<&crate::core::Policy>,
) -> std::io::Result<()> {
    let policy = policy.filter(|p| !p.known.is_empty());
    match policy {
        Some(_) => writeln!(out, "{STEPS_HEADER},known")?,
        None => writeln!(out, "{STEPS_HEADER}")?,
    }
    for s in steps {
        write!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            s.at.to_rfc3339(),
            num(s.demand),
            num(s.observed),
            num(s.smoothed),
            s.spike,
            s.desired,
            s.serving,
            s.reason,
            num(s.forecast),
            num(s.ramp)
        )?;
        if let Some(p) = policy {
            let a = p.known.active(s.at, p.min_size, p.max_size);
            let known: Vec<String> = a
                .entries
                .iter()
                .map(|e| {
                    let kind = if e.source == crate::core::known::Source::Schedule { "schedule" } else { "override" };
                    format!("{kind} {} ({})", e.name, e.effect)
                })
                .collect();
            write!(out, ",{}", known.join("; ").replace(',', ";"))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Read a steps CSV back (used to check that the summary is recomputable). Columns are found by
/// the header's names, so a file written before the `forecast` or the `ramp` column existed reads
/// with none of them, and a `known` column is skipped.
pub fn read_steps(text: &str) -> Result<Vec<Step>, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    if header.len() < 8 || header[..8] != STEPS_HEADER.split(',').take(8).collect::<Vec<_>>()[..] {
        return Err(format!("line 1: expected the header {STEPS_HEADER}"));
    }
    let (forecast, ramp) = (column("forecast"), column("ramp"));
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        let c: Vec<&str> = line.split(',').collect();
        if c.len() != header.len() {
            return Err(format!("line {line_no}: expected {} columns, as the header has", header.len()));
        }
        let f = |s: &str| {
            if s.is_empty() { Ok(f64::NAN) } else { s.parse::<f64>().map_err(|e| format!("line {line_no}: {e}")) }
        };
        let optional = |k: Option<usize>| k.map_or(Ok(f64::NAN), |k| f(c[k]));
        let reason = crate::core::Reason::parse(c[7]).map(|r| r.as_str()).unwrap_or("other");
        out.push(Step {
            at: Ts::parse_rfc3339(c[0])?,
            demand: f(c[1])?,
            observed: f(c[2])?,
            smoothed: f(c[3])?,
            spike: c[4] == "true",
            desired: c[5].parse().map_err(|e| format!("line {line_no}: {e}"))?,
            serving: c[6].parse().map_err(|e| format!("line {line_no}: {e}"))?,
            reason,
            forecast: optional(forecast)?,
            ramp: optional(ramp)?,
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
    let body = rows
        .iter()
        .map(|r| {
            let rec = match (r.recovery_median(), r.recovery_max()) {
                (Some(m), Some(x)) => format!("{m:.0}m/{x:.0}m"),
                _ => "-".into(),
            };
            vec![
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
            ]
        })
        .collect();
    grid_text(&header, body)
}

/// Render the elasticity metrics of each summary as a second terminal table.
pub fn scores_table(rows: &[Summary]) -> String {
    let header = ["algorithm", "θU %", "θO %", "τU %", "τO %", "υ %", "jitter/h", "supply chg", "demand chg"];
    let body = rows
        .iter()
        .map(|r| {
            let e = &r.elasticity;
            vec![
                r.algorithm.clone(),
                format!("{:.1}", e.under_accuracy),
                format!("{:.1}", e.over_accuracy),
                format!("{:.1}", e.under_timeshare),
                format!("{:.1}", e.over_timeshare),
                format!("{:.1}", e.instability),
                format!("{:.2}", e.jitter_per_hour),
                e.supply_changes.to_string(),
                e.demand_changes.to_string(),
            ]
        })
        .collect();
    grid_text(&header, body)
}

/// The forecast's score for each summary that has one, and the line's through steady climbs (as
/// "name (line)"), as a terminal table (empty when none).
pub fn forecast_table(rows: &[Summary]) -> String {
    let header =
        ["algorithm", "lead", "forecasts", "MAE nodes", "MAPE %", "bias nodes", "naive MAE", "ahead outs", "needed"];
    let body: Vec<Vec<String>> = rows
        .iter()
        .flat_map(Summary::forecast_scores)
        .map(|(name, f)| {
            vec![
                name,
                format!("{:.0}m", f.lead_minutes),
                f.forecasts.to_string(),
                format!("{:.2}", f.mae_nodes),
                format!("{:.1}", f.mape),
                format!("{:+.2}", f.bias_nodes),
                format!("{:.2}", f.naive_mae_nodes),
                f.ahead_scale_outs.to_string(),
                f.ahead_needed.to_string(),
            ]
        })
        .collect();
    if body.is_empty() { String::new() } else { grid_text(&header, body) }
}

/// A header, a rule and right-aligned columns (the first left-aligned).
fn grid_text(header: &[&str], body: Vec<Vec<String>>) -> String {
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    cells.extend(body);
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
            forecast: f64::NAN,
            ramp: f64::NAN,
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

    /// A scale-in's nodes are billed until its operation removes them (they still serve): a
    /// 10 -> 6 resize whose operation runs 3 minutes costs 10 nodes for those minutes; it counts
    /// as one scale-in when asked for, not when it ends.
    #[test]
    fn a_scale_in_is_billed_until_its_nodes_are_gone() {
        let steps = vec![
            step(0, 1.0, 10, 10),
            step(1, 1.0, 6, 10),
            step(2, 1.0, 6, 10),
            step(3, 1.0, 6, 10),
            step(4, 1.0, 6, 6),
        ];
        let s = Summary::from_steps("t", &steps, 0.5, 0.6, 10);
        assert_eq!(s.node_minutes, (10 + 10 + 10 + 10 + 6) as f64);
        assert_eq!((s.scale_outs, s.scale_ins), (0, 1));
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Target 10 per node, one row a minute, so demand in nodes is ceil(demand / 10).
    #[test]
    fn elasticity_on_a_hand_made_run() {
        let steps = vec![
            step(0, 20.0, 2, 2),     // d 2 = s 2: exact (20 / 10 is 2 nodes, not 3)
            step(1, 35.0, 2, 2),     // d 4 > s 2: short by 2 / 4 = 0.5; demand moved, supply not
            step(2, 35.0, 5, 5),     // s 5 > d 4: excess 1 / 4 = 0.25; supply moved, demand not
            step(3, f64::NAN, 5, 5), // gap: left out
            step(4, 0.0, 1, 1),      // d 0 < s 1: excess 1 / max(0, 1) = 1; both fell
            step(5, 10.0, 1, 1),     // d 1 = s 1: exact; demand rose, supply not
        ];
        let e = Elasticity::from_steps(&steps, 10.0);
        // T = 5 minutes with demand.
        assert!(close(e.under_accuracy, 100.0 * 0.5 / 5.0), "θU {}", e.under_accuracy);
        assert!(close(e.over_accuracy, 100.0 * (0.25 + 1.0) / 5.0), "θO {}", e.over_accuracy);
        assert!(close(e.under_timeshare, 20.0), "τU {}", e.under_timeshare);
        assert!(close(e.over_timeshare, 40.0), "τO {}", e.over_timeshare);
        // Pairs 0→1, 1→2, 2→4, 4→5 (4 minutes); 2→4 moved both down, the other three differ.
        assert!(close(e.instability, 75.0), "υ {}", e.instability);
        assert_eq!((e.supply_changes, e.demand_changes), (2, 3));
        // (2 − 3) changes in 5 minutes = −12 per hour.
        assert!(close(e.jitter_per_hour, -12.0), "j {}", e.jitter_per_hour);
        // The summary carries the same figures.
        assert_eq!(Summary::from_steps("t", &steps, 10.0, 12.5, 2).elasticity, e);
    }

    /// Rows of different lengths weigh by their length, and supply that follows demand exactly is
    /// perfectly accurate and stable.
    #[test]
    fn elasticity_weighs_rows_by_their_length() {
        let steps = vec![
            step(0, 30.0, 2, 2),  // d 3 > s 2 for 10 minutes: 1 / 3 short
            step(10, 30.0, 3, 3), // exact for 5 minutes
            step(15, 50.0, 5, 5), // exact for 5 minutes (the last row lasts as long as the one before)
        ];
        let e = Elasticity::from_steps(&steps, 10.0);
        assert!(close(e.under_accuracy, 100.0 * (10.0 / 3.0) / 20.0), "θU {}", e.under_accuracy);
        assert!(close(e.under_timeshare, 50.0), "τU {}", e.under_timeshare);
        assert_eq!((e.over_accuracy, e.over_timeshare), (0.0, 0.0));
        // 0→10: supply up, demand flat (5 minutes unstable); 10→15: both up (stable).
        assert!(close(e.instability, 50.0), "υ {}", e.instability);
        assert_eq!((e.supply_changes, e.demand_changes), (2, 1));
        assert!(close(e.jitter_per_hour, 1.0 / (20.0 / 60.0)), "j {}", e.jitter_per_hour);

        let followed = vec![step(0, 20.0, 2, 2), step(1, 40.0, 4, 4), step(2, 10.0, 1, 1)];
        let e = Elasticity::from_steps(&followed, 10.0);
        assert_eq!(
            (e.under_accuracy, e.over_accuracy, e.under_timeshare, e.over_timeshare, e.instability, e.jitter_per_hour),
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!((e.supply_changes, e.demand_changes), (2, 2));

        // No demand at all: nothing to judge, every figure 0 (not NaN, which JSON cannot hold).
        let empty = Elasticity::from_steps(&[step(0, f64::NAN, 2, 2)], 10.0);
        assert_eq!(empty, Elasticity::default());
    }

    #[test]
    fn scores_table_lists_every_algorithm() {
        let steps = vec![step(0, 20.0, 2, 2), step(1, 35.0, 2, 2)];
        let t = scores_table(&[Summary::from_steps("mine", &steps, 10.0, 12.5, 2)]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("algorithm") && lines[0].contains("θU %"), "{t}");
        // θU = 100 · (0 + 0.5 · 1) / 2 = 25 %, τU 50 %.
        assert!(lines[2].starts_with("mine") && lines[2].contains("25.0") && lines[2].contains("50.0"), "{t}");
    }

    #[test]
    fn steps_round_trip_through_csv() {
        let mut steps = vec![step(0, 1.0, 2, 2), step(1, f64::NAN, 3, 2)];
        steps[0].forecast = 1.5;
        steps[1].ramp = 2.5;
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
            for (x, y) in [
                (b.demand, s.demand),
                (b.observed, s.observed),
                (b.smoothed, s.smoothed),
                (b.forecast, s.forecast),
                (b.ramp, s.ramp),
            ] {
                assert!(x == y || (x.is_nan() && y.is_nan()), "{x} != {y}");
            }
        }
        // Files written before the `ramp` column (and before `forecast`) read, with neither; a
        // row short of the header's columns is refused with its line.
        let old = "timestamp,demand,observed,smoothed,spike,desired,serving,reason,forecast\n\
                   2026-01-01T00:00:00Z,1,,,false,2,2,ScaleOut,1.5\n";
        let back = read_steps(old).expect("a forecast-era file");
        assert_eq!((back[0].forecast, back[0].ramp.is_nan()), (1.5, true));
        let older = "timestamp,demand,observed,smoothed,spike,desired,serving,reason\n\
                     2026-01-01T00:00:00Z,1,,,false,2,2,ScaleOut\n";
        assert!(read_steps(older).expect("an older file")[0].forecast.is_nan());
        let short = format!("{STEPS_HEADER}\n2026-01-01T00:00:00Z,1,,,false,2,2,ScaleOut,1.5\n");
        assert!(read_steps(&short).unwrap_err().starts_with("line 2:"));
    }

    /// The line through a climb is scored like the forecast, its warm-up as the lead, with its
    /// own scale-outs; a run where it never believed a line nor scaled out on one has no score.
    #[test]
    fn the_line_is_scored_like_the_forecast() {
        let mut steps = vec![step(0, 20.0, 2, 2), step(1, 25.0, 3, 2), step(2, 30.0, 5, 3), step(3, 50.0, 6, 5)];
        assert_eq!(ForecastScore::of_ramp(&steps, 10.0, crate::core::Dur::mins(2), 2), None);
        steps[0].ramp = 40.0;
        steps[1].reason = "ScaleOutOnRamp";
        steps[2].forecast = 99.0;
        let f = ForecastScore::of_ramp(&steps, 10.0, crate::core::Dur::mins(2), 2).expect("scored");
        // Row 0 expected 40 for minute 2, which brought 30: one node too many.
        assert_eq!((f.forecasts, f.ahead_scale_outs, f.ahead_needed), (1, 1, 1));
        assert!(close(f.mae_nodes, 1.0) && close(f.bias_nodes, 1.0), "{f:?}");
        let t = forecast_table(&[Summary { ramp: Some(f), ..Summary::from_steps("mine", &steps, 10.0, 12.5, 2) }]);
        assert!(t.lines().nth(2).is_some_and(|l| l.starts_with("mine (line)") && l.contains("1.00")), "{t}");
    }

    /// Target 10 per node, one row a minute, lead 2 minutes. Row 0 forecasts 40 for minute 2,
    /// which brought 30 (1 node too many, 33 %; the naive "20 stays 20" missed by 1 node); row 1
    /// forecasts 30 for minute 3, which brought 50 (2 nodes too few, 40 %; naive missed by 2.5
    /// nodes); row 3's lead runs past the trace and is not scored. Row 1 scaled out ahead
    /// (2 -> 3) and demand went past 2 nodes within the lead: needed; row 3 scaled out ahead
    /// (5 -> 6) and demand never passed 5 nodes: not needed.
    #[test]
    fn forecast_score_on_a_hand_made_run() {
        let mut steps = vec![step(0, 20.0, 2, 2), step(1, 25.0, 3, 2), step(2, 30.0, 5, 3), step(3, 50.0, 6, 5)];
        steps.push(step(4, 40.0, 6, 6));
        steps[0].forecast = 40.0;
        steps[1].forecast = 30.0;
        steps[3].forecast = 60.0;
        steps[1].reason = "ScaleOutAhead";
        steps[3].reason = "ScaleOutAhead";
        let f = ForecastScore::from_steps(&steps, 10.0, crate::core::Dur::mins(2), 2);
        assert_eq!(f.lead_minutes, 2.0);
        assert_eq!(f.forecasts, 2);
        assert!(close(f.mae_nodes, (1.0 + 2.0) / 2.0), "MAE {}", f.mae_nodes);
        assert!(close(f.bias_nodes, (1.0 - 2.0) / 2.0), "bias {}", f.bias_nodes);
        assert!(close(f.mape, 100.0 * (10.0 / 30.0 + 20.0 / 50.0) / 2.0), "MAPE {}", f.mape);
        assert!(close(f.naive_mae_nodes, (1.0 + 2.5) / 2.0), "naive {}", f.naive_mae_nodes);
        assert_eq!((f.ahead_scale_outs, f.ahead_needed), (2, 1));
        let t = forecast_table(&[Summary { forecast: Some(f), ..Summary::from_steps("mine", &steps, 10.0, 12.5, 2) }]);
        assert!(
            t.lines().nth(2).is_some_and(|l| l.starts_with("mine") && l.contains("1.50") && l.contains("-0.50")),
            "{t}"
        );
        assert_eq!(forecast_table(&[Summary::from_steps("none", &steps, 10.0, 12.5, 2)]), "");
    }
}
