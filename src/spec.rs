//! Spec → policy: every rule about what a valid `ScalePolicySpec` is, and its conversion into the
//! decision core's [`Policy`].
//!
//! The CRD's CEL rules catch the same mistakes at `kubectl apply` time, and this catches them
//! wherever a spec enters without an API server (simulate, standalone mode, `ebbflow validate`).
//! All problems are reported at once, each naming the field and the fix. The core never sees the
//! wire types: this module maps them onto its own enums.

use std::fmt;

use crate::adapters::{MetricQuery, SourceContext};
use crate::api::{self, ScalePolicySpec};
use crate::core::forecast::{ForecastMode, ForecastPolicy};
use crate::core::policy::{MetricPolicy, Pace, SpikePolicy};
use crate::core::units::KnownMetric;
use crate::core::{Dur, MetricKind, MissingDataPolicy, Mode, Policy, SmoothingKind};

/// One problem with a spec: the field path, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Path from the spec root, e.g. `spec.metrics[0].smoothing.window`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A spec that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ScalePolicy spec: {}", .issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
pub struct PolicyError {
    /// Each problem, in field order.
    pub issues: Vec<FieldIssue>,
}

struct Checker {
    issues: Vec<FieldIssue>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.issues.push(FieldIssue { field: field.into(), message: message.into() });
    }

    fn duration(&mut self, field: &str, text: &str) -> Dur {
        match Dur::parse(text) {
            Ok(d) => d,
            Err(e) => {
                self.fail(field, e);
                Dur::ZERO
            }
        }
    }

    fn positive_duration(&mut self, field: &str, text: &str) -> Dur {
        let d = self.duration(field, text);
        if d == Dur::ZERO && Dur::parse(text).is_ok() {
            self.fail(field, format!("must be greater than 0 (got \"{text}\"); e.g. \"5m\""));
        }
        d
    }

    fn pace(
        &mut self,
        field: &str,
        cooldown: &str,
        stabilization: &str,
        nodes: Option<u32>,
        percent: Option<u32>,
    ) -> Pace {
        let cooldown = self.duration(&format!("{field}.cooldown"), cooldown);
        let stabilization = self.duration(&format!("{field}.stabilizationWindow"), stabilization);
        if nodes == Some(0) {
            self.fail(format!("{field}.maxStepNodes"), "must be at least 1; set it to null for no limit");
        }
        if percent == Some(0) {
            self.fail(format!("{field}.maxStepPercent"), "must be at least 1; set it to null for no limit");
        }
        Pace { cooldown, stabilization, step_nodes: nodes, step_percent: percent }
    }
}

/// The target metric `m` of `spec` is held at: as written, or, left out, the one the target's
/// kind recommends for it from the spec alone (a Spanner instance's high-priority CPU: 0.65,
/// Google's recommendation for a regional instance; the controller reads the instance's
/// configuration and fills in 0.45 for a multi-region one, see [`fill_targets`]).
pub fn target_of(spec: &ScalePolicySpec, m: &api::MetricSpec) -> Option<f64> {
    m.target.or_else(|| spec.target.kind().recommended_target(m))
}

/// Fill in every left-out target the kind recommends one for: with `recommended` (what the
/// target itself says, e.g. from a Spanner instance's configuration) where given, else the
/// kind's default from the spec alone. The metrics that were filled, by index.
pub fn fill_targets(spec: &mut ScalePolicySpec, recommended: Option<f64>) -> Vec<usize> {
    let kind = spec.target.kind();
    let fill: Vec<(usize, f64)> = spec
        .metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| m.target.is_none())
        .filter_map(|(i, m)| kind.recommended_target(m).map(|d| (i, recommended.unwrap_or(d))))
        .collect();
    for &(i, t) in &fill {
        spec.metrics[i].target = Some(t);
    }
    fill.into_iter().map(|(i, _)| i).collect()
}

/// The scale-in cooldown `spec` sets, or its target kind's default when it sets none.
pub fn scale_in_cooldown(spec: &ScalePolicySpec) -> &str {
    spec.scale_in.cooldown.as_deref().unwrap_or_else(|| spec.target.kind().default_scale_in_cooldown())
}

/// Validate a spec and convert it. Every problem is reported, each naming its field and the fix.
pub fn policy_from_spec(spec: &ScalePolicySpec) -> Result<Policy, PolicyError> {
    let mut c = Checker { issues: Vec::new() };

    if spec.min_size == 0 {
        c.fail("spec.minSize", "must be at least 1");
    }
    if spec.max_size == 0 {
        c.fail("spec.maxSize", "must be at least 1");
    }
    if spec.min_size > spec.max_size {
        c.fail(
            "spec.minSize",
            format!(
                "minSize ({}) is greater than maxSize ({}); raise maxSize or lower minSize",
                spec.min_size, spec.max_size
            ),
        );
    }
    let kind = spec.target.kind();
    for (field, message) in kind.check() {
        c.fail(format!("spec.target.{}.{field}", kind.field()), message);
    }
    // Steering Bigtable's or Spanner's autoscaler, minSize..maxSize become its limits at the
    // widest, and both services keep the maximum within 10 x the minimum.
    if let Some(sizes) = kind.steered_sizes() {
        let min = sizes.up(spec.min_size).unwrap_or(spec.min_size);
        let max = sizes.down(spec.max_size).unwrap_or(spec.max_size);
        if min.saturating_mul(10) < max {
            c.fail(
                "spec.minSize",
                format!(
                    "with steerAutoscaler the autoscaler's limits are minSize ({min}) to maxSize ({max}), and Bigtable and Spanner keep the maximum within 10 x the minimum: raise minSize to at least {} or lower maxSize",
                    max.div_ceil(10)
                ),
            );
        }
    }

    if kind.per_member_floor().is_some() {
        // Each member's series is selected by adding its clause to the policy's filter; a filter
        // that picks clusters itself would leave every other member without data.
        for (i, m) in spec.metrics.iter().enumerate() {
            if m.source.query.as_ref().is_some_and(|q| q.filter.contains("resource.labels.cluster")) {
                c.fail(
                    format!("spec.metrics[{i}].query.filter"),
                    "names resource.labels.cluster, but with sizing: perCluster each cluster reads its own series \
                     (ebbflow adds AND resource.labels.cluster=\"<id>\"); write the filter over the instance \
                     (resource.labels.instance=...) and leave the cluster out",
                );
            }
        }
    }
    if spec.metrics.is_empty() {
        c.fail("spec.metrics", "needs at least one metric");
    }
    if spec.metrics.len() > 10 {
        c.fail("spec.metrics", format!("has {} metrics; at most 10 are allowed", spec.metrics.len()));
    }
    let mut metrics = Vec::with_capacity(spec.metrics.len());
    for (i, m) in spec.metrics.iter().enumerate() {
        let base = format!("spec.metrics[{i}]");
        if m.name.trim().is_empty() {
            c.fail(format!("{base}.name"), "must not be empty; e.g. \"cpu\"");
        }
        if spec.metrics[..i].iter().any(|other| other.name == m.name) {
            c.fail(
                format!("{base}.name"),
                format!("\"{}\" is used by an earlier metric; names must be unique", m.name),
            );
        }
        let target = match target_of(spec, m) {
            Some(t) => t,
            None => {
                c.fail(
                    format!("{base}.target"),
                    "is required: the level to hold the metric at, in its own units (e.g. 0.6 for 60% CPU)",
                );
                1.0
            }
        };
        if !(target.is_finite() && target > 0.0) {
            c.fail(format!("{base}.target"), format!("must be a number greater than 0 (got {target})"));
        }
        // A level in the wrong unit (60 on a 0-1 metric) validates and then shrinks the target
        // to minSize: each level is held to the range of the metric type the filter selects.
        let known = metric_unit(m);
        if let Some(problem) = known.and_then(|k| k.level_problem(target, m.kind.into(), spec.max_size)) {
            c.fail(format!("{base}.target"), problem);
        }
        for (field, message) in m.source.check(&SourceContext { project: kind.project(), namespace: "" }) {
            c.fail(format!("{base}.{field}"), message);
        }
        let window = c.positive_duration(&format!("{base}.smoothing.window"), &m.smoothing.window);
        let max_age = c.positive_duration(&format!("{base}.maxDataAge"), &m.max_data_age);
        let h = &m.headroom;
        let limit = h.limit.unwrap_or(target * crate::api::DEFAULT_LIMIT_RATIO);
        if h.limit.is_some() && !(limit.is_finite() && limit >= target) {
            c.fail(
                format!("{base}.headroom.limit"),
                format!(
                    "must be a number at least the target {} (got {limit}); leave it out for 1.25 x target",
                    target
                ),
            );
        }
        if let Some(problem) =
            h.limit.zip(known).and_then(|(limit, k)| k.level_problem(limit, m.kind.into(), spec.max_size))
        {
            c.fail(format!("{base}.headroom.limit"), problem);
        }
        if h.enabled && !(h.quantile.is_finite() && (0.5..=0.999).contains(&h.quantile)) {
            c.fail(
                format!("{base}.headroom.quantile"),
                format!(
                    "must be between 0.5 and 0.999 (got {}); 0.975 keeps 97.5% of single samples under the limit",
                    h.quantile
                ),
            );
        }
        let r = &m.ramp;
        if r.enabled && !(r.threshold.is_finite() && (2.0..=20.0).contains(&r.threshold)) {
            c.fail(
                format!("{base}.ramp.threshold"),
                format!(
                    "must be between 2 and 20 (got {}); 4 believes about one false climb in 5,000 windows of noise",
                    r.threshold
                ),
            );
        }
        metrics.push(MetricPolicy {
            name: m.name.clone(),
            target,
            kind: m.kind.into(),
            smoothing: m.smoothing.kind.into(),
            window,
            max_age,
            limit,
            headroom_z: h.enabled.then(|| crate::core::policy::normal_quantile(h.quantile.clamp(0.5, 0.999))),
            guard: (m.role == api::MetricRole::Guard).then_some(target),
            ceiling: known.and_then(|k| k.unit.max()).filter(|_| m.kind == api::MetricKind::PerNode),
            ramp_t: r.enabled.then_some(r.threshold.clamp(2.0, 20.0)),
        });
    }
    if !spec.metrics.is_empty() && spec.metrics.iter().all(|m| m.role == api::MetricRole::Guard) {
        c.fail(
            "spec.metrics",
            "every metric is a guard (role: guard); at least one must size the target (leave out role, or role: size)",
        );
    }

    let spike = if spec.spike.enabled {
        let s = &spec.spike;
        if !(s.threshold.is_finite() && s.threshold >= 1.0) {
            c.fail("spec.spike.threshold", format!("must be at least 1 (got {})", s.threshold));
        }
        if !(s.min_rise.is_finite() && s.min_rise >= 0.0) {
            c.fail("spec.spike.minRise", format!("must be 0 or more (got {})", s.min_rise));
        }
        if s.sustained_samples == 0 {
            c.fail("spec.spike.sustainedSamples", "must be at least 1");
        }
        let hold = c.duration("spec.spike.hold", &s.hold);
        Some(SpikePolicy { threshold: s.threshold, min_rise: s.min_rise, sustained: s.sustained_samples.max(1), hold })
    } else {
        None
    };

    let (o, i) = (&spec.scale_out, &spec.scale_in);
    let scale_out = c.pace("spec.scaleOut", &o.cooldown, &o.stabilization_window, o.max_step_nodes, o.max_step_percent);
    let in_cooldown = i.cooldown.as_deref().unwrap_or_else(|| kind.default_scale_in_cooldown());
    let scale_in = c.pace("spec.scaleIn", in_cooldown, &i.stabilization_window, i.max_step_nodes, i.max_step_percent);
    let warmup = match &o.warmup {
        Some(text) => c.duration("spec.scaleOut.warmup", text),
        None => kind.default_warmup(),
    };
    if !(spec.tolerance.is_finite() && (0.0..=0.9).contains(&spec.tolerance)) {
        c.fail(
            "spec.tolerance",
            format!("must be between 0 and 0.9 (got {}); 0.1 means a 10% dead band", spec.tolerance),
        );
    }
    let interval = c.duration("spec.interval", &spec.interval);
    if Dur::parse(&spec.interval).is_ok() && interval < Dur::secs(10) {
        c.fail("spec.interval", format!("must be at least 10s (got \"{}\")", spec.interval));
    }
    let forecast = {
        let lead = match &spec.forecast.lead {
            Some(text) => c.positive_duration("spec.forecast.lead", text),
            None => warmup + Dur::mins(api::FORECAST_OPERATION_TIME_MINUTES),
        };
        let mode = match spec.forecast.mode {
            api::ForecastMode::Off => None,
            api::ForecastMode::Report => Some(ForecastMode::Report),
            api::ForecastMode::Act => Some(ForecastMode::Act),
        };
        mode.map(|mode| ForecastPolicy { mode, lead })
    };
    if spec.max_resizes_per_day == 0 {
        c.fail("spec.maxResizesPerDay", "must be at least 1");
    }
    let known = crate::known::known_from_spec(spec, warmup, &mut |f, m| c.fail(f, m));

    if !c.issues.is_empty() {
        return Err(PolicyError { issues: c.issues });
    }
    Ok(Policy {
        min_size: spec.min_size,
        max_size: spec.max_size,
        metrics,
        spike,
        scale_out,
        scale_in,
        warmup,
        tolerance: spec.tolerance,
        interval,
        mode: spec.mode.into(),
        on_missing_data: spec.on_missing_data.into(),
        max_resizes_per_day: spec.max_resizes_per_day,
        forecast,
        known,
    })
}

/// The registry's entry for the metric type a metric's Cloud Monitoring filter selects: its unit
/// and range. `None` for a type whose unit is not known, or a Kubernetes source (not checked).
pub fn metric_unit(m: &api::MetricSpec) -> Option<&'static KnownMetric> {
    m.source.query.as_ref().and_then(|q| crate::core::units::of_filter(&q.filter))
}

/// The highest level (target, guard level, headroom limit) metric `m` can be held at on a policy
/// of at most `max_size` nodes, when its unit has one (a fraction: 1 per node).
pub fn level_bound(m: &api::MetricSpec, max_size: u32) -> Option<f64> {
    metric_unit(m).and_then(|k| k.level_bound(m.kind.into(), max_size))
}

/// The query of one of a spec's metrics, resolved for the policy: `default_project` is the
/// target's project (what Cloud Monitoring queries default to), `namespace` the policy's (where
/// Kubernetes reads happen). Each source resolves its own fields (`crate::adapters::sources`).
pub fn metric_query(m: &api::MetricSpec, default_project: &str, namespace: &str) -> MetricQuery {
    m.source.query(&SourceContext { project: Some(default_project), namespace })
}

impl From<api::MetricKind> for MetricKind {
    fn from(k: api::MetricKind) -> MetricKind {
        match k {
            api::MetricKind::PerNode => MetricKind::PerNode,
            api::MetricKind::Total => MetricKind::Total,
        }
    }
}

impl From<api::SmoothingKind> for SmoothingKind {
    fn from(k: api::SmoothingKind) -> SmoothingKind {
        match k {
            api::SmoothingKind::Sma => SmoothingKind::Sma,
            api::SmoothingKind::Ema => SmoothingKind::Ema,
        }
    }
}

impl From<api::Mode> for Mode {
    fn from(m: api::Mode) -> Mode {
        match m {
            api::Mode::Enforce => Mode::Enforce,
            api::Mode::DryRun => Mode::DryRun,
            api::Mode::Paused => Mode::Paused,
        }
    }
}

impl From<api::MissingDataPolicy> for MissingDataPolicy {
    fn from(m: api::MissingDataPolicy) -> MissingDataPolicy {
        match m {
            api::MissingDataPolicy::Hold => MissingDataPolicy::Hold,
            api::MissingDataPolicy::ScaleOutOnly => MissingDataPolicy::ScaleOutOnly,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        HeadroomSpec, MetricSourceSpec, MetricSpec, MonitoringSpec, ScaleInRules, ScaleOutRules, Smoothing, SpikeSpec,
        TargetRef, WorkloadRef,
    };

    /// A per-node CPU spec with every knob at a readable value.
    fn spec() -> ScalePolicySpec {
        ScalePolicySpec {
            target: TargetRef::Workload(WorkloadRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "web".into(),
            }),
            min_size: 2,
            max_size: 20,
            metrics: vec![MetricSpec {
                name: "cpu".into(),
                source: MetricSourceSpec {
                    query: Some(MonitoringSpec {
                        project: Some("p".into()),
                        filter: "metric.type=\"x\"".into(),
                        alignment_period: "60s".into(),
                        per_series_aligner: "ALIGN_MEAN".into(),
                        cross_series_reducer: None,
                        group_by_fields: vec![],
                    }),
                    ..MetricSourceSpec::default()
                },
                role: api::MetricRole::Size,
                target: Some(0.6),
                kind: api::MetricKind::PerNode,
                smoothing: Smoothing { kind: api::SmoothingKind::Sma, window: "5m".into() },
                max_data_age: "3m".into(),
                headroom: HeadroomSpec::default(),
                ramp: api::RampSpec::default(),
            }],
            spike: SpikeSpec::default(),
            scale_out: ScaleOutRules { warmup: Some("0s".into()), ..ScaleOutRules::default() },
            scale_in: ScaleInRules::default(),
            tolerance: 0.1,
            interval: "60s".into(),
            mode: api::Mode::Enforce,
            on_missing_data: api::MissingDataPolicy::Hold,
            max_resizes_per_day: 100,
            forecast: api::ForecastSpec::default(),
            schedules: vec![],
            overrides: vec![],
        }
    }

    /// With per-cluster sizing each cluster's series is selected by ebbflow: a filter that picks
    /// a cluster itself is refused (every other cluster would read nothing); in largest mode it
    /// is the user's choice.
    #[test]
    fn a_per_cluster_filter_must_not_pick_a_cluster_itself() {
        let mut s = spec();
        let mut instance = api::BigtableInstanceRef {
            project: "p".into(),
            instance: "orders".into(),
            clusters: vec![],
            storage_target: None,
            sizing: Some(api::InstanceSizing::PerCluster),
            per_cluster_floor: None,
        };
        s.target = TargetRef::BigtableInstance(instance.clone());
        s.metrics[0].source.query.as_mut().expect("query").filter =
            "metric.type=\"bigtable.googleapis.com/cluster/cpu_load\" AND resource.labels.cluster=\"c1\"".into();
        let err = policy_from_spec(&s).expect_err("refused").to_string();
        assert!(err.contains("spec.metrics[0].query.filter") && err.contains("resource.labels.instance"), "{err}");
        instance.sizing = None;
        s.target = TargetRef::BigtableInstance(instance);
        assert!(policy_from_spec(&s).is_ok(), "largest mode reads whatever the filter selects");
    }

    /// The defaults of the spec land in the policy: every field, and the wire enums mapped onto
    /// the core's own.
    #[test]
    fn a_spec_converts_with_its_defaults() {
        let p = policy_from_spec(&spec()).expect("valid");
        let expected = Policy {
            min_size: 2,
            max_size: 20,
            metrics: vec![MetricPolicy {
                name: "cpu".into(),
                target: 0.6,
                kind: MetricKind::PerNode,
                smoothing: SmoothingKind::Sma,
                window: Dur::mins(5),
                max_age: Dur::mins(3),
                limit: 0.75,
                headroom_z: Some(crate::core::policy::normal_quantile(0.975)),
                guard: None,
                ceiling: None,
                ramp_t: Some(crate::core::ramp::RAMP_T),
            }],
            spike: Some(SpikePolicy { threshold: 3.0, min_rise: 0.2, sustained: 2, hold: Dur::mins(30) }),
            scale_out: Pace {
                cooldown: Dur::ZERO,
                stabilization: Dur::ZERO,
                step_nodes: Some(4),
                step_percent: Some(100),
            },
            scale_in: Pace {
                cooldown: Dur::mins(10),
                stabilization: Dur::mins(15),
                step_nodes: Some(1),
                step_percent: Some(10),
            },
            warmup: Dur::ZERO,
            tolerance: 0.1,
            interval: Dur::secs(60),
            mode: Mode::Enforce,
            on_missing_data: MissingDataPolicy::Hold,
            max_resizes_per_day: 100,
            forecast: Some(ForecastPolicy { mode: ForecastMode::Act, lead: Dur::mins(5) }),
            known: Default::default(),
        };
        assert_eq!(p, expected);
        let mut dry = spec();
        dry.mode = api::Mode::DryRun;
        dry.on_missing_data = api::MissingDataPolicy::ScaleOutOnly;
        dry.metrics[0].kind = api::MetricKind::Total;
        dry.metrics[0].smoothing.kind = api::SmoothingKind::Ema;
        let p = policy_from_spec(&dry).expect("valid");
        assert_eq!((p.mode, p.on_missing_data), (Mode::DryRun, MissingDataPolicy::ScaleOutOnly));
        assert_eq!((p.metrics[0].kind, p.metrics[0].smoothing), (MetricKind::Total, SmoothingKind::Ema));
    }

    #[test]
    fn every_spec_problem_is_reported_with_its_field() {
        let mut s = spec();
        s.min_size = 30;
        s.metrics[0].smoothing.window = "0s".into();
        s.metrics[0].source.query.as_mut().expect("query").alignment_period = "30s".into();
        s.metrics[0].target = Some(-1.0);
        s.scale_in.cooldown = Some("5 minutes".into());
        s.tolerance = 2.0;
        let err = policy_from_spec(&s).unwrap_err();
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.minSize",
                "spec.metrics[0].target",
                "spec.metrics[0].query.alignmentPeriod",
                "spec.metrics[0].smoothing.window",
                "spec.scaleIn.cooldown",
                "spec.tolerance"
            ]
        );
        assert!(err.to_string().contains("raise maxSize or lower minSize"));
    }

    /// The line through a climb: its threshold reaches the core, a bad one is refused naming the
    /// field, and turned off it fits no line (nor is its threshold checked).
    #[test]
    fn the_ramp_threshold_reaches_the_core_and_a_bad_one_is_refused() {
        let mut s = spec();
        assert_eq!(policy_from_spec(&s).expect("valid").metrics[0].ramp_t, Some(crate::core::ramp::RAMP_T));
        s.metrics[0].ramp = api::RampSpec { enabled: true, threshold: 6.0 };
        assert_eq!(policy_from_spec(&s).expect("valid").metrics[0].ramp_t, Some(6.0));
        s.metrics[0].ramp.threshold = 1.0;
        let text = policy_from_spec(&s).expect_err("invalid").to_string();
        assert!(text.contains("spec.metrics[0].ramp.threshold: must be between 2 and 20 (got 1)"), "{text}");
        s.metrics[0].ramp.enabled = false;
        assert_eq!(policy_from_spec(&s).expect("off").metrics[0].ramp_t, None);
    }

    #[test]
    fn bad_headroom_settings_name_the_field_and_the_fix() {
        let mut s = spec();
        s.metrics[0].headroom = HeadroomSpec { enabled: true, quantile: 1.5, limit: Some(0.5) };
        let text = policy_from_spec(&s).expect_err("invalid").to_string();
        assert!(text.contains("spec.metrics[0].headroom.quantile: must be between 0.5 and 0.999 (got 1.5)"), "{text}");
        assert!(
            text.contains("spec.metrics[0].headroom.limit: must be a number at least the target 0.6 (got 0.5)"),
            "{text}"
        );
        // Off, the quantile is not used and not checked; the limit still is (it is the spec's word).
        s.metrics[0].headroom = HeadroomSpec { enabled: false, quantile: 1.5, limit: None };
        let p = policy_from_spec(&s).expect("valid");
        assert_eq!((p.metrics[0].headroom_z, p.metrics[0].limit), (None, 0.75));
        // A limit of its own is kept; the quantile becomes its normal quantile.
        s.metrics[0].headroom = HeadroomSpec { enabled: true, quantile: 0.95, limit: Some(0.9) };
        let p = policy_from_spec(&s).expect("valid");
        assert_eq!(p.metrics[0].limit, 0.9);
        assert!((p.metrics[0].headroom_z.expect("on") - 1.6448536).abs() < 1e-6);
    }

    /// A level outside its metric's range (percent on a 0-1 metric) is refused naming the field
    /// and the fraction to write: the target, a guard's level and a headroom limit alike; a total
    /// of a fraction is bounded by maxSize; counts and unknown types are not bounded.
    #[test]
    fn a_level_in_the_wrong_unit_is_refused_with_the_fix() {
        let with = |filter: &str, edit: &dyn Fn(&mut ScalePolicySpec)| {
            let mut s = spec();
            s.metrics[0].source.query.as_mut().expect("query").filter = filter.into();
            edit(&mut s);
            policy_from_spec(&s)
        };
        let cpu = "metric.type = \"kubernetes.io/node/cpu/allocatable_utilization\" AND resource.labels.x=\"y\"";
        let err = with(cpu, &|s| s.metrics[0].target = Some(60.0)).expect_err("percent on a fraction");
        assert_eq!(
            err.issues,
            [FieldIssue {
                field: "spec.metrics[0].target".into(),
                message: "60 is above 1, but kubernetes.io/node/cpu/allocatable_utilization is a fraction (0-1): \
                          write 0.6 for 60 %"
                    .into(),
            }]
        );
        let err = with(cpu, &|s| s.metrics[0].headroom.limit = Some(75.0)).expect_err("a percent limit");
        assert_eq!(err.issues[0].field, "spec.metrics[0].headroom.limit");
        assert!(err.issues[0].message.ends_with("write 0.75 for 75 %"), "{err}");
        let err = with(cpu, &|s| {
            s.metrics[0].role = api::MetricRole::Guard;
            s.metrics[0].target = Some(90.0);
            s.metrics.insert(0, spec().metrics[0].clone());
            s.metrics[0].name = "size".into();
        })
        .expect_err("a guard's level");
        assert_eq!(err.issues[0].field, "spec.metrics[1].target");
        assert!(err.issues[0].message.ends_with("write 0.9 for 90 %"), "{err}");
        // A total of at most maxSize (20) shares: 15 can be reached, 30 cannot.
        assert!(
            with(cpu, &|s| (s.metrics[0].kind, s.metrics[0].target) = (api::MetricKind::Total, Some(15.0))).is_ok()
        );
        let err = with(cpu, &|s| (s.metrics[0].kind, s.metrics[0].target) = (api::MetricKind::Total, Some(30.0)))
            .expect_err("never reached");
        assert!(err.to_string().contains("spec.metrics[0].target: 30 is above 20"), "{err}");
        // In range, a count, or a type whose unit is not known: accepted.
        assert!(with(cpu, &|s| s.metrics[0].target = Some(1.0)).is_ok());
        let requests = "metric.type=\"loadbalancing.googleapis.com/https/request_count\"";
        assert!(with(requests, &|s| s.metrics[0].target = Some(5000.0)).is_ok());
        assert!(
            with("metric.type=\"custom.googleapis.com/cpu_percent\"", &|s| s.metrics[0].target = Some(60.0)).is_ok()
        );
    }

    /// Each source checks its own fields under its own field path, through the registry; the
    /// registry checks that exactly one is set, and resolves the one that is.
    #[test]
    fn metric_sources_check_their_fields_and_resolve_their_queries() {
        let mut s = spec();
        let q = s.metrics[0].source.query.as_mut().expect("query");
        q.filter = " ".into();
        q.project = None;
        let text = policy_from_spec(&s).expect_err("invalid").to_string();
        assert!(text.contains("spec.metrics[0].query.filter: must not be empty"), "{text}");
        assert!(text.contains("spec.metrics[0].query.project: is required for a workload target"), "{text}");

        let mut k = spec();
        k.metrics[0].source.query = None;
        k.metrics[0].source.kubernetes =
            Some(api::KubernetesQuery::Pods(api::PodsQuery { match_labels: Default::default(), phases: vec![] }));
        let err = policy_from_spec(&k).expect_err("invalid");
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["spec.metrics[0].kubernetes.pods.matchLabels", "spec.metrics[0].kubernetes.pods.phases"]);

        k.metrics[0].source.kubernetes = Some(api::KubernetesQuery::Replicas(api::ReplicasQuery {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "subscriber".into(),
            count: api::ReplicaCount::Ready,
        }));
        policy_from_spec(&k).expect("valid");
        match metric_query(&k.metrics[0], "p", "data") {
            MetricQuery::Kubernetes(m) => assert_eq!(m.describe(), "deployment data/subscriber"),
            other => panic!("resolved to {other:?}"),
        }
        let m = metric_query(&spec().metrics[0], "target-project", "data");
        assert_eq!(m.monitoring().map(|q| (q.project.as_str(), q.alignment_period)), Some(("p", Dur::secs(60))));
        let mut defaulted = spec();
        defaulted.metrics[0].source.query.as_mut().expect("query").project = None;
        let m = metric_query(&defaulted.metrics[0], "target-project", "data");
        assert_eq!(m.monitoring().map(|q| q.project.as_str()), Some("target-project"), "the target's project");

        let mut none = spec();
        none.metrics[0].source.query = None;
        let err = policy_from_spec(&none).expect_err("no source");
        assert_eq!(err.issues[0].field, "spec.metrics[0].query");
        assert_eq!(
            err.issues[0].message,
            "each metric needs a source: a Cloud Monitoring query, or kubernetes (replicas, pods or field)"
        );
    }

    /// A target may be left out only where the target kind recommends one: a Spanner
    /// instance's high-priority CPU (held at 0.65 from the spec alone); anywhere else it is
    /// required, naming the field.
    #[test]
    fn a_left_out_target_is_the_kinds_recommendation_or_required() {
        let mut s = spec();
        s.metrics[0].target = None;
        let err = policy_from_spec(&s).expect_err("required").to_string();
        assert!(err.contains("spec.metrics[0].target: is required"), "{err}");
        let spanner: ScalePolicySpec = serde_json::from_value(serde_json::json!({
            "target": {"spannerInstance": {"project": "p", "instance": "i"}},
            "minSize": 100, "maxSize": 5000,
            "metrics": [
                {"name": "cpu", "query": {"filter": "metric.type=\"spanner.googleapis.com/instance/cpu/utilization_by_priority\" AND metric.labels.priority = \"high\""}},
                {"name": "low", "query": {"filter": "metric.type=\"spanner.googleapis.com/instance/cpu/utilization_by_priority\" AND metric.labels.priority=\"low\""}}
            ]
        }))
        .expect("spec");
        let err = policy_from_spec(&spanner).expect_err("low priority has no recommendation").to_string();
        assert!(err.contains("spec.metrics[1].target: is required") && !err.contains("metrics[0]"), "{err}");
        let mut one = spanner.clone();
        one.metrics.truncate(1);
        assert_eq!(policy_from_spec(&one).expect("valid").metrics[0].target, 0.65);
        let mut filled = one.clone();
        assert_eq!(fill_targets(&mut filled, Some(0.45)), vec![0]);
        assert_eq!(filled.metrics[0].target, Some(0.45));
        assert_eq!(policy_from_spec(&filled).expect("valid").metrics[0].target, 0.45);
    }

    /// A policy that sets no scale-in cooldown gets its kind's: an hour for a Spanner instance
    /// (hourly billing, rebalancing), 10 minutes otherwise; one it sets is kept.
    #[test]
    fn the_scale_in_cooldown_defaults_by_kind() {
        assert_eq!(policy_from_spec(&spec()).expect("valid").scale_in.cooldown, Dur::mins(10));
        let mut spanner: ScalePolicySpec = serde_json::from_value(serde_json::json!({
            "target": {"spannerInstance": {"project": "p", "instance": "i"}},
            "minSize": 100, "maxSize": 5000,
            "metrics": [{"name": "cpu", "target": 0.65, "query": {"filter": "metric.type=\"spanner.googleapis.com/instance/cpu/utilization_by_priority\""}}]
        }))
        .expect("spec");
        assert_eq!(policy_from_spec(&spanner).expect("valid").scale_in.cooldown, Dur::mins(60));
        assert_eq!(scale_in_cooldown(&spanner), "60m");
        spanner.scale_in.cooldown = Some("15m".into());
        assert_eq!(policy_from_spec(&spanner).expect("valid").scale_in.cooldown, Dur::mins(15));
    }

    /// Steering Bigtable's or Spanner's autoscaler, minSize..maxSize are its limits at the
    /// widest, which both services keep within 10 x: wider is refused naming minSize and the fix
    /// (Spanner's limits are whole thousands of processing units).
    #[test]
    fn a_steered_autoscalers_limits_keep_within_ten_times() {
        let steered = |min: u32, max: u32, target: serde_json::Value| -> Result<Policy, PolicyError> {
            let spec: ScalePolicySpec = serde_json::from_value(serde_json::json!({
                "target": target, "minSize": min, "maxSize": max,
                "metrics": [{"name": "cpu", "target": 0.6, "query": {"filter": "metric.type=\"bigtable.googleapis.com/cluster/cpu_load\""}}]
            }))
            .expect("spec");
            policy_from_spec(&spec)
        };
        let bigtable = serde_json::json!({"bigtableCluster": {"project": "p", "instance": "i", "cluster": "c", "steerAutoscaler": true}});
        let err = steered(2, 40, bigtable.clone()).expect_err("40 > 10 x 2").to_string();
        assert!(err.contains("spec.minSize: with steerAutoscaler") && err.contains("at least 4"), "{err}");
        assert!(steered(4, 40, bigtable).is_ok());
        let unsteered = serde_json::json!({"bigtableCluster": {"project": "p", "instance": "i", "cluster": "c"}});
        assert!(steered(2, 40, unsteered).is_ok(), "only a steered autoscaler has the rule");
        let spanner =
            serde_json::json!({"spannerInstance": {"project": "p", "instance": "i", "steerAutoscaler": true}});
        // minSize 100 is 1000 as a limit: up to 10,000 is fine, 20,000 is not.
        assert!(steered(100, 10000, spanner.clone()).is_ok());
        let err = steered(100, 20000, spanner).expect_err("20000 > 10 x 1000").to_string();
        assert!(err.contains("at least 2000"), "{err}");
    }
}
