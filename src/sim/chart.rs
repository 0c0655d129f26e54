//! The simulation's chart: demand against the capacity the policy provided, with scale actions
//! and spikes marked, drawn by the same renderer the dashboard uses.

use std::path::Path;

use crate::chart::{ChartData, Marker, MarkerKind, MetricPanel, Series, Style, write_chart};
use crate::sim::{Run, Scenario};

/// Chart data for a comparison (`runs[0]` is the policy, `runs[1]` the HPA baseline).
pub fn chart_data(sc: &Scenario, runs: &[Run]) -> ChartData {
    let policy = &runs[0];
    let target = sc.policy.metrics[0].target;
    let (start, end) = sc.trace.span();
    let pts = |f: &dyn Fn(&crate::sim::Step) -> f64, run: &Run| -> Vec<(i64, f64)> {
        run.steps.iter().map(|s| (s.at.0, f(s))).collect()
    };
    let mut sizes = vec![
        Series::new(format!("{} serving", policy.summary.algorithm), Style::Step, pts(&|s| s.serving as f64, policy)),
        Series::new(format!("{} desired", policy.summary.algorithm), Style::Dashed, pts(&|s| s.desired as f64, policy)),
    ];
    if let Some(hpa) = runs.iter().find(|r| r.summary.algorithm == "hpa") {
        sizes.push(Series::new("hpa serving", Style::Step, pts(&|s| s.serving as f64, hpa)));
    }
    // Schedule windows and overrides: the minimum they set, drawn only while they hold.
    let known = &sc.policy.known;
    if !known.is_empty() {
        let bound = |s: &crate::sim::Step| {
            let a = known.active(s.at, sc.policy.min_size, sc.policy.max_size);
            a.min.map_or(f64::NAN, |(m, _)| m as f64)
        };
        sizes.push(Series::new("scheduled / override minimum", Style::Dashed, pts(&bound, policy)));
    }
    let mut markers = Vec::new();
    let mut prev = sc.start_total();
    for s in &policy.steps {
        if s.desired != prev {
            let kind = if s.desired > prev { MarkerKind::ScaleOut } else { MarkerKind::ScaleIn };
            markers.push(Marker { at_ms: s.at.0, kind, label: format!("{prev}->{} {}", s.desired, s.reason) });
        }
        if s.spike && s.reason == "ScaleOutOnSpike" {
            markers.push(Marker { at_ms: s.at.0, kind: MarkerKind::Spike, label: "spike".into() });
        }
        prev = s.desired;
    }
    let mut load = vec![Series::new("demand (nodes at target)", Style::Area, pts(&|s| s.demand / target, policy))];
    // Each forecast drawn at the time it was for, so it lies over the demand that came.
    if let Some(f) = &sc.policy.forecast
        && policy.steps.iter().any(|s| s.forecast.is_finite())
    {
        let ahead = policy.steps.iter().map(|s| ((s.at + f.lead).0, s.forecast / target)).collect();
        load.push(Series::new(format!("forecast for +{} (nodes at target)", f.lead), Style::Dashed, ahead));
    }
    let metric = &sc.policy.metrics[0];
    // A total (requests/s) is compared with a per-node target only once spread over the nodes
    // serving it; drawn raw, a total of thousands flattens a target of a hundred into the axis.
    let (observed, smoothed, unit) = match metric.kind {
        crate::core::MetricKind::PerNode => (pts(&|s| s.observed, policy), pts(&|s| s.smoothed, policy), "per node"),
        crate::core::MetricKind::Total => (
            pts(&|s| s.observed / f64::from(s.serving.max(1)), policy),
            pts(&|s| s.smoothed / f64::from(s.serving.max(1)), policy),
            "per serving node",
        ),
    };
    ChartData {
        title: format!("{} on {}", policy.summary.algorithm, sc.trace.name),
        start_ms: start.0,
        end_ms: end.0,
        load,
        sizes,
        markers,
        y_label: "nodes".into(),
        metrics: vec![
            MetricPanel::new(
                format!("{} {unit}", metric.name),
                vec![Series::new("observed", Style::Line, observed), Series::new("smoothed", Style::Line, smoothed)],
            )
            .with_lines(Some(target), Some(sc.limit)),
        ],
    }
}

/// Write the chart as SVG (the path must end in `.svg`).
pub fn write(path: &Path, sc: &Scenario, runs: &[Run]) -> std::io::Result<()> {
    write_chart(path, &chart_data(sc, runs))
}
