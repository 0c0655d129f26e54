//! The search space of `ebbflow tune`: which policy fields it moves, within what bounds, and how
//! a point of the unit cube becomes a policy.
//!
//! A variant is a point `x ∈ [0, 1]^d`, one coordinate per knob; each knob decodes its coordinate
//! to a value on its own grid (whole minutes, whole nodes, 0.01 of a target), so two points that
//! decode alike are the same variant and are run once.

use crate::api::ScalePolicySpec;
use crate::core::Dur;

/// A policy field the tuner may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Knob {
    /// `metrics[i].target`.
    Target,
    /// `metrics[i].headroom.quantile`.
    HeadroomQuantile,
    /// `metrics[i].smoothing.window`, minutes.
    SmoothingWindow,
    /// `metrics[i].ramp.threshold`.
    RampThreshold,
    /// `scaleOut.cooldown`, minutes.
    OutCooldown,
    /// `scaleOut.stabilizationWindow`, minutes.
    OutStabilization,
    /// `scaleOut.maxStepNodes`.
    OutStepNodes,
    /// `scaleOut.maxStepPercent`.
    OutStepPercent,
    /// `scaleIn.cooldown`, minutes.
    InCooldown,
    /// `scaleIn.stabilizationWindow`, minutes.
    InStabilization,
    /// `scaleIn.maxStepNodes`.
    InStepNodes,
    /// `scaleIn.maxStepPercent`.
    InStepPercent,
    /// `spike.threshold`.
    SpikeThreshold,
    /// `spike.sustainedSamples`.
    SpikeSustained,
    /// `spike.hold`, minutes.
    SpikeHold,
}

/// Bigtable's guidance for removing nodes: at most 10% of the cluster per 10 minutes.
pub const BIGTABLE_SCALE_IN_PERCENT: u32 = 10;
/// The span of Bigtable's scale-in guidance, in minutes.
pub const BIGTABLE_SCALE_IN_MINUTES: f64 = 10.0;

/// One searched dimension: a knob, its bounds and its grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    /// The field.
    pub knob: Knob,
    /// Smallest value.
    pub lo: f64,
    /// Largest value.
    pub hi: f64,
    /// Grid step (values are rounded to multiples of it).
    pub step: f64,
    /// The starting policy's value.
    pub base: f64,
}

impl Dim {
    /// The value at coordinate `x ∈ [0, 1]`.
    pub fn decode(&self, x: f64) -> f64 {
        let v = self.lo + x.clamp(0.0, 1.0) * (self.hi - self.lo);
        let v = (v / self.step).round() * self.step;
        // Rounding to the grid can leave the bounds by a hair; and print cleanly (0.55, not
        // 0.5500000000000001).
        let v = v.clamp(self.lo, self.hi);
        (v * 1e6).round() / 1e6
    }

    /// The coordinate of `value` (clamped into the bounds).
    pub fn encode(&self, value: f64) -> f64 {
        if self.hi <= self.lo { 0.5 } else { ((value - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0) }
    }

    /// The value as it is written in a policy: `10m`, `0.55`, `4`.
    pub fn show(&self, value: f64) -> String {
        if self.knob.is_minutes() { Dur::mins(value.round() as i64).to_string() } else { format!("{value}") }
    }
}

impl Knob {
    /// The field's path inside `spec`, for metric `metric`.
    pub fn path(self, metric: usize) -> String {
        match self {
            Knob::Target => format!("metrics[{metric}].target"),
            Knob::HeadroomQuantile => format!("metrics[{metric}].headroom.quantile"),
            Knob::SmoothingWindow => format!("metrics[{metric}].smoothing.window"),
            Knob::RampThreshold => format!("metrics[{metric}].ramp.threshold"),
            Knob::OutCooldown => "scaleOut.cooldown".into(),
            Knob::OutStabilization => "scaleOut.stabilizationWindow".into(),
            Knob::OutStepNodes => "scaleOut.maxStepNodes".into(),
            Knob::OutStepPercent => "scaleOut.maxStepPercent".into(),
            Knob::InCooldown => "scaleIn.cooldown".into(),
            Knob::InStabilization => "scaleIn.stabilizationWindow".into(),
            Knob::InStepNodes => "scaleIn.maxStepNodes".into(),
            Knob::InStepPercent => "scaleIn.maxStepPercent".into(),
            Knob::SpikeThreshold => "spike.threshold".into(),
            Knob::SpikeSustained => "spike.sustainedSamples".into(),
            Knob::SpikeHold => "spike.hold".into(),
        }
    }

    fn is_minutes(self) -> bool {
        matches!(
            self,
            Knob::SmoothingWindow
                | Knob::OutCooldown
                | Knob::OutStabilization
                | Knob::InCooldown
                | Knob::InStabilization
                | Knob::SpikeHold
        )
    }

    /// The field's value in `spec` (durations in minutes); `None` when it is unset or unlimited,
    /// or does not parse (then the tuner leaves the field alone).
    pub fn get(self, spec: &ScalePolicySpec, metric: usize) -> Option<f64> {
        let m = spec.metrics.get(metric)?;
        let mins = |s: &str| Dur::parse(s).ok().map(|d| d.0 as f64 / 60_000.0);
        match self {
            Knob::Target => crate::spec::target_of(spec, m),
            Knob::HeadroomQuantile => m.headroom.enabled.then_some(m.headroom.quantile),
            Knob::SmoothingWindow => mins(&m.smoothing.window),
            Knob::RampThreshold => m.ramp.enabled.then_some(m.ramp.threshold),
            Knob::OutCooldown => mins(&spec.scale_out.cooldown),
            Knob::OutStabilization => mins(&spec.scale_out.stabilization_window),
            Knob::OutStepNodes => spec.scale_out.max_step_nodes.map(f64::from),
            Knob::OutStepPercent => spec.scale_out.max_step_percent.map(f64::from),
            Knob::InCooldown => mins(crate::spec::scale_in_cooldown(spec)),
            Knob::InStabilization => mins(&spec.scale_in.stabilization_window),
            Knob::InStepNodes => spec.scale_in.max_step_nodes.map(f64::from),
            Knob::InStepPercent => spec.scale_in.max_step_percent.map(f64::from),
            Knob::SpikeThreshold => spec.spike.enabled.then_some(spec.spike.threshold),
            Knob::SpikeSustained => spec.spike.enabled.then_some(f64::from(spec.spike.sustained_samples)),
            Knob::SpikeHold => {
                if spec.spike.enabled {
                    mins(&spec.spike.hold)
                } else {
                    None
                }
            }
        }
    }

    /// Write `value` into `spec`.
    pub fn set(self, spec: &mut ScalePolicySpec, metric: usize, value: f64) {
        let dur = |v: f64| Dur::mins(v.round() as i64).to_string();
        let count = |v: f64| v.round().max(1.0) as u32;
        let bound = spec.metrics.get(metric).and_then(|m| crate::spec::level_bound(m, spec.max_size));
        // The target the policy holds: as written, or the kind's recommendation when left out.
        let held = spec.metrics.get(metric).and_then(|m| crate::spec::target_of(spec, m));
        let Some(m) = spec.metrics.get_mut(metric) else { return };
        match self {
            Knob::Target if Some(value) != held => {
                // The limit is where overload starts for the person who set the target: it stays
                // where the starting policy had it while the target moves (never below it). Written
                // out, it must be a level of the metric's unit: 1.25 x a target of 0.9 is no CPU
                // fraction, so it stops at the top of the range.
                let limit = m.headroom.limit.unwrap_or(held.unwrap_or(value) * crate::api::DEFAULT_LIMIT_RATIO);
                let limit = bound.map_or(limit, |b| limit.min(b));
                m.headroom.limit = Some(limit.max(value));
                m.target = Some(value);
            }
            Knob::Target => {}
            Knob::HeadroomQuantile => m.headroom.quantile = value,
            Knob::SmoothingWindow => m.smoothing.window = dur(value),
            Knob::RampThreshold => m.ramp.threshold = value,
            Knob::OutCooldown => spec.scale_out.cooldown = dur(value),
            Knob::OutStabilization => spec.scale_out.stabilization_window = dur(value),
            Knob::OutStepNodes => spec.scale_out.max_step_nodes = Some(count(value)),
            Knob::OutStepPercent => spec.scale_out.max_step_percent = Some(count(value)),
            // Left unset while it is the kind's default, so a policy that set none still does.
            Knob::InCooldown
                if Dur::parse(crate::spec::scale_in_cooldown(spec)).ok() != Some(Dur::mins(value.round() as i64)) =>
            {
                spec.scale_in.cooldown = Some(dur(value));
            }
            Knob::InCooldown => {}
            Knob::InStabilization => spec.scale_in.stabilization_window = dur(value),
            Knob::InStepNodes => spec.scale_in.max_step_nodes = Some(count(value)),
            Knob::InStepPercent => spec.scale_in.max_step_percent = Some(count(value)),
            Knob::SpikeThreshold => spec.spike.threshold = value,
            Knob::SpikeSustained => spec.spike.sustained_samples = count(value),
            Knob::SpikeHold => spec.spike.hold = dur(value),
        }
    }
}

/// The dimensions searched for a starting policy. Each range holds the starting value, so the
/// starting policy is a point of the space; under `bigtable_guidance` the scale-in step and
/// cooldown are bounded so that no variant removes more than 10% (or the one node a step can
/// always remove) per 10 minutes.
pub fn dims(spec: &ScalePolicySpec, metric: usize, bigtable_guidance: bool) -> Vec<Dim> {
    let mut out = Vec::new();
    let mut add = |knob: Knob, lo: f64, hi: f64, step: f64| {
        let Some(base) = knob.get(spec, metric) else { return };
        let (lo, hi) = (lo.min(base), hi.max(base));
        out.push(Dim { knob, lo, hi, step, base });
    };
    if let Some(target) = Knob::Target.get(spec, metric) {
        // From half to 1.2 x the starting target, in its own unit, on a grid of a tenth of its
        // order of magnitude: 0.33-0.78 by 0.01 for 0.65, 2500-6000 by 100 for 5000. A fraction
        // metric's target stays a fraction: the range stops at the top of the metric's (1 per
        // node), so no variant holds CPU at 1.08.
        let step = 10f64.powf(target.log10().floor() - 1.0);
        let mut hi = (target * 1.2 / step).floor() * step;
        if let Some(bound) = spec.metrics.get(metric).and_then(|m| crate::spec::level_bound(m, spec.max_size)) {
            hi = hi.min(bound);
        }
        add(Knob::Target, (target * 0.5 / step).ceil() * step, hi, step);
    }
    add(Knob::HeadroomQuantile, 0.8, 0.995, 0.005);
    add(Knob::SmoothingWindow, 1.0, 30.0, 1.0);
    add(Knob::RampThreshold, 3.0, 8.0, 0.5);
    add(Knob::OutCooldown, 0.0, 30.0, 1.0);
    add(Knob::OutStabilization, 0.0, 30.0, 1.0);
    add(Knob::OutStepNodes, 1.0, 20.0, 1.0);
    add(Knob::OutStepPercent, 10.0, 200.0, 5.0);
    add(Knob::InStabilization, 0.0, 60.0, 1.0);
    add(Knob::SpikeThreshold, 2.0, 6.0, 0.1);
    add(Knob::SpikeSustained, 1.0, 5.0, 1.0);
    add(Knob::SpikeHold, 0.0, 60.0, 1.0);
    if bigtable_guidance {
        // At most one step per 10 minutes (the cooldown runs from the last resize in either
        // direction), of at most 10% or the single node any step may remove. The ranges do
        // not stretch to hold a starting value that breaks the guidance.
        let base_of = |k: Knob, default: f64| k.get(spec, metric).unwrap_or(default);
        let pct = BIGTABLE_SCALE_IN_PERCENT as f64;
        out.push(Dim {
            knob: Knob::InCooldown,
            lo: BIGTABLE_SCALE_IN_MINUTES,
            hi: 60.0,
            step: 1.0,
            base: base_of(Knob::InCooldown, 0.0),
        });
        out.push(Dim {
            knob: Knob::InStepNodes,
            lo: 1.0,
            hi: 1.0,
            step: 1.0,
            base: base_of(Knob::InStepNodes, f64::INFINITY),
        });
        out.push(Dim {
            knob: Knob::InStepPercent,
            lo: 1.0,
            hi: pct,
            step: 1.0,
            base: base_of(Knob::InStepPercent, f64::INFINITY),
        });
    } else {
        add(Knob::InCooldown, 1.0, 60.0, 1.0);
        add(Knob::InStepNodes, 1.0, 10.0, 1.0);
        add(Knob::InStepPercent, 5.0, 50.0, 5.0);
    }
    out
}

/// Whether `spec` follows Bigtable's scale-in guidance (see [`dims`]); the reason when not.
pub fn bigtable_guidance_problem(spec: &ScalePolicySpec) -> Option<String> {
    let cooldown = Dur::parse(crate::spec::scale_in_cooldown(spec)).map(|d| d.0 as f64 / 60_000.0).unwrap_or(0.0);
    let mut problems = Vec::new();
    if cooldown < BIGTABLE_SCALE_IN_MINUTES {
        problems.push(format!("scaleIn.cooldown {} is under 10m", crate::spec::scale_in_cooldown(spec)));
    }
    match spec.scale_in.max_step_percent {
        Some(p) if p <= BIGTABLE_SCALE_IN_PERCENT => {}
        Some(p) => problems.push(format!("scaleIn.maxStepPercent {p} is over 10")),
        None => problems.push("scaleIn.maxStepPercent is unlimited".into()),
    }
    match spec.scale_in.max_step_nodes {
        Some(1) => {}
        Some(n) => problems.push(format!("scaleIn.maxStepNodes {n} lets a small cluster lose more than 10% at once")),
        None => problems.push("scaleIn.maxStepNodes is unlimited".into()),
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// A variant's values, one per dimension, as decoded from the unit cube.
pub fn decode(dims: &[Dim], x: &[f64]) -> Vec<f64> {
    dims.iter().zip(x).map(|(d, &x)| d.decode(x)).collect()
}

/// The starting policy's point in the unit cube (clamped where guidance bounds exclude it).
pub fn base_point(dims: &[Dim]) -> Vec<f64> {
    dims.iter().map(|d| d.encode(d.base)).collect()
}

/// `spec` with the values applied.
pub fn apply(spec: &ScalePolicySpec, metric: usize, dims: &[Dim], values: &[f64]) -> ScalePolicySpec {
    let mut s = spec.clone();
    for (d, &v) in dims.iter().zip(values) {
        d.knob.set(&mut s, metric, v);
    }
    s
}

/// The values that differ from the starting policy, as `path=value` (empty for the start).
pub fn changes(dims: &[Dim], values: &[f64], metric: usize) -> Vec<(String, String, String)> {
    dims.iter()
        .zip(values)
        .filter(|(d, v)| (**v - d.base).abs() > 1e-9)
        .map(|(d, &v)| {
            let from = if d.base.is_finite() { d.show(d.base) } else { "unlimited".into() };
            (d.knob.path(metric), from, d.show(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ScalePolicySpec {
        let text = include_str!("../../../simulations/policies/default-065.yaml");
        let (sp, _) = crate::crd::check_policy("default-065.yaml", text).expect("bundled policy is valid");
        sp.spec
    }

    #[test]
    fn every_range_holds_the_start_and_the_start_decodes_to_itself() {
        let s = spec();
        let dims = dims(&s, 0, false);
        assert!(dims.len() >= 12, "{dims:?}");
        let values = decode(&dims, &base_point(&dims));
        for (d, v) in dims.iter().zip(&values) {
            assert!(d.lo <= d.base && d.base <= d.hi, "{d:?}");
            assert!((v - d.base).abs() < 1e-9, "{d:?} decodes to {v}");
        }
        assert!(changes(&dims, &values, 0).is_empty());
        assert_eq!(apply(&s, 0, &dims, &values), s);
    }

    /// A target left out (a Spanner instance's high-priority CPU) stays left out while the
    /// search keeps it where the kind puts it: the start decodes to the very same spec, with no
    /// target pinned and no limit written from a missing one.
    #[test]
    fn a_left_out_target_stays_left_out_at_the_start() {
        let s: ScalePolicySpec = serde_json::from_value(serde_json::json!({
            "target": {"spannerInstance": {"project": "p", "instance": "i"}},
            "minSize": 100, "maxSize": 5000,
            "metrics": [{"name": "cpu", "query": {"filter": "metric.type=\"spanner.googleapis.com/instance/cpu/utilization_by_priority\" AND metric.labels.priority=\"high\""}}]
        }))
        .expect("spec");
        let dims = dims(&s, 0, false);
        let target = dims.iter().find(|d| d.knob == Knob::Target).expect("the target is searched");
        assert_eq!(target.base, 0.65, "from the kind's recommendation");
        let applied = apply(&s, 0, &dims, &decode(&dims, &base_point(&dims)));
        assert_eq!(applied.metrics[0].target, None);
        assert_eq!(applied.metrics[0].headroom.limit, None);
    }

    #[test]
    fn values_land_on_their_grid_and_apply_as_policy_fields() {
        let s = spec();
        let dims = dims(&s, 0, false);
        let x: Vec<f64> = (0..dims.len()).map(|i| (i as f64 * 0.37) % 1.0).collect();
        let values = decode(&dims, &x);
        let tuned = apply(&s, 0, &dims, &values);
        for (d, v) in dims.iter().zip(&values) {
            assert!((v / d.step - (v / d.step).round()).abs() < 1e-6, "{d:?}: {v}");
            assert_eq!(d.knob.get(&tuned, 0), Some(*v), "{:?}", d.knob);
        }
        crate::spec::policy_from_spec(&tuned).expect("every decoded variant is a valid policy");
    }

    /// The line through a climb is searched by its threshold (issue 24: the defaults' own
    /// parameters are tunable), and not at all when the policy turned it off.
    #[test]
    fn the_ramp_threshold_is_searched_unless_turned_off() {
        let mut s = spec();
        let ramp = |s: &ScalePolicySpec| dims(s, 0, false).into_iter().find(|d| d.knob == Knob::RampThreshold);
        let d = ramp(&s).expect("searched");
        assert_eq!((d.lo, d.hi, d.base), (3.0, 8.0, crate::core::ramp::RAMP_T));
        s.metrics[0].ramp.enabled = false;
        assert!(ramp(&s).is_none(), "off: left alone");
    }

    #[test]
    fn bigtable_guidance_bounds_the_scale_in_step_and_cooldown() {
        let s = spec();
        let dims = dims(&s, 0, true);
        for x in [0.0, 0.5, 1.0] {
            let values = decode(&dims, &vec![x; dims.len()]);
            let tuned = apply(&s, 0, &dims, &values);
            assert_eq!(bigtable_guidance_problem(&tuned), None, "x = {x}: {:?}", tuned.scale_in);
        }
        let mut loose = s.clone();
        loose.scale_in.cooldown = Some("5m".into());
        loose.scale_in.max_step_percent = Some(20);
        let problem = bigtable_guidance_problem(&loose).expect("breaks the guidance");
        assert!(problem.contains("scaleIn.cooldown 5m") && problem.contains("maxStepPercent 20"), "{problem}");
    }
}
