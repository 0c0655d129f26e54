//! `ebbflow simulate --html FILE`: one self-contained HTML file to attach to a change review.
//!
//! It holds the summary against the baselines, the chart, the decision mix and every scale
//! action. The chart is zoomable: range buttons (day, week, all), panning, from/to fields and
//! drag-to-zoom, drawn by a small inline script from the series embedded in the page (reduced by
//! [`crate::chart::embed`] to each bucket's lowest and highest value, so peaks show at every
//! zoom). Nothing is fetched from elsewhere: it opens the same from a mail attachment or a CI
//! artifact. Where scripts are off, a note points to `--chart`, which writes the static SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::sim::{Run, Scenario, Step};

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:24px auto;max-width:1240px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5b6475;margin:0 0 12px}.note{color:#8a5a00;background:#fff6e0;border-left:3px solid #e0a400;padding:4px 8px;margin:4px 0}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 7px;border-bottom:1px solid #e3e6ec;text-align:right}
td{white-space:nowrap}
th{background:#f4f6f9;font-weight:600;white-space:normal;vertical-align:bottom;line-height:1.25}
th:first-child,td:first-child{text-align:left}
td.l,th.l{text-align:left;white-space:normal}
tr.policy td{font-weight:600;background:#eef5ff}
.up{color:#0b6e4f}.down{color:#a4461d}
figure{margin:0;border:1px solid #e3e6ec;border-radius:6px;padding:8px;background:#fff}
figure svg{width:100%;height:auto;display:block}
#zoom-tools{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:0 0 8px}#zoom-tools[hidden]{display:none}
#zoom-tools button{font:inherit;padding:2px 10px;border:1px solid #b8c0cc;border-radius:4px;background:#f4f6f9;cursor:pointer}
#zoom-tools input{font:inherit;width:10.5em}#zoom-range{color:#5b6475}#zoom-error{color:#a4461d}
.foot{color:#5b6475;font-size:12px;margin-top:24px}
"#;

fn num(v: f64, digits: usize) -> String {
    if v.is_finite() { format!("{v:.digits$}") } else { "-".into() }
}

/// The report as an HTML document.
pub fn html(sc: &Scenario, runs: &[Run]) -> String {
    let mut o = String::new();
    let title = format!("ebbflow simulation: {}", sc.name);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(o, "<h1>{}</h1>\n<p class=\"sub\">{}</p>", escape(&title), escape(&sc.describe()));
    for n in &sc.notes {
        let _ = writeln!(o, "<div class=\"note\">note: {}</div>", escape(n));
    }

    o.push_str("<h2>Summary against the baselines</h2>\n<div class=\"table-wrap\"><table><thead><tr>");
    for h in [
        "algorithm",
        "node-minutes",
        "× lower bound",
        "min over target",
        "min over limit",
        "scale-outs",
        "scale-ins",
        "reversals",
        "largest",
        "overloads",
        "recovery p50 / max",
    ] {
        let _ = write!(o, "<th>{}</th>", escape(h));
    }
    o.push_str("</tr></thead><tbody>\n");
    for (i, r) in runs.iter().enumerate() {
        let s = &r.summary;
        let rec = match (s.recovery_median(), s.recovery_max()) {
            (Some(m), Some(x)) => format!("{m:.0}m / {x:.0}m"),
            _ => "-".into(),
        };
        let class = if i == 0 { " class=\"policy\"" } else { "" };
        let _ = writeln!(
            o,
            "<tr{class}><td>{}</td><td>{:.0}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.algorithm),
            s.node_minutes,
            s.vs_lower_bound.map_or_else(|| "-".into(), |v| format!("{v:.2}")),
            s.minutes_over_target,
            s.minutes_over_limit,
            s.scale_outs,
            s.scale_ins,
            s.reversals,
            s.largest_size,
            s.overloads,
            escape(&rec),
        );
    }
    o.push_str("</tbody></table></div>\n");
    o.push_str(
        "<p class=\"sub\">node-minutes: billed size × time; × lower bound: relative to the oracle; minutes over target / limit: \
         per-node load above the target / the limit; reversals: scale-ins undone within an hour.</p>\n",
    );

    o.push_str("<h2>Elasticity (SPEC Research Group metrics)</h2>\n<div class=\"table-wrap\"><table><thead><tr>");
    for h in [
        "algorithm",
        "θU under-provisioning accuracy %",
        "θO over-provisioning accuracy %",
        "τU time under %",
        "τO time over %",
        "υ instability %",
        "jitter / h",
        "supply changes",
        "demand changes",
    ] {
        let _ = write!(o, "<th>{}</th>", escape(h));
    }
    o.push_str("</tr></thead><tbody>\n");
    for (i, r) in runs.iter().enumerate() {
        let (s, e) = (&r.summary, &r.summary.elasticity);
        let class = if i == 0 { " class=\"policy\"" } else { "" };
        let _ = writeln!(
            o,
            "<tr{class}><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.algorithm),
            e.under_accuracy,
            e.over_accuracy,
            e.under_timeshare,
            e.over_timeshare,
            e.instability,
            e.jitter_per_hour,
            e.supply_changes,
            e.demand_changes,
        );
    }
    o.push_str("</tbody></table></div>\n");
    o.push_str(
        "<p class=\"sub\">Demand d = ceil(demand / target) nodes, supply s = serving nodes, over the time with data. \
         θU / θO: mean shortfall / excess of s against d, relative to max(d, 1); τU / τO: share of time s &lt; d / s &gt; d; \
         υ: share of time s and d did not move the same way; jitter: (supply changes − demand changes) per hour.</p>\n",
    );

    forecast(&mut o, runs);

    if !runs.is_empty() {
        chart(&mut o, &crate::sim::chart::chart_data(sc, runs));
    }

    if let Some(policy) = runs.first() {
        decisions(&mut o, sc, &policy.steps);
    }
    let _ = writeln!(o, "<p class=\"foot\">Generated by ebbflow {} (simulate --html).</p>", env!("CARGO_PKG_VERSION"));
    o.push_str("</body></html>\n");
    o
}

const REPORT_JS: &str = include_str!("assets/report.js");

/// The chart section: the toolbar (shown by the script), the embedded series, the script that
/// draws them, and the static SVG for readers without scripts.
fn chart(o: &mut String, data: &crate::chart::ChartData) {
    o.push_str("<h2>Chart</h2>\n<figure>\n");
    o.push_str(
        "<div id=\"zoom-tools\" hidden><button type=\"button\" data-range=\"all\">all (reset zoom)</button>\
         <button type=\"button\" data-range=\"week\">week</button><button type=\"button\" data-range=\"day\">day</button>\
         <button type=\"button\" data-pan=\"-1\" title=\"earlier\">◀</button><button type=\"button\" data-pan=\"1\" title=\"later\">▶</button>\
         <label>from <input id=\"zoom-from\" spellcheck=\"false\"></label><label>to <input id=\"zoom-to\" spellcheck=\"false\"></label>\
         <button type=\"button\" id=\"zoom-apply\">show</button><span id=\"zoom-error\"></span><span id=\"zoom-range\"></span></div>\n",
    );
    o.push_str("<div id=\"zoom\"></div>\n");
    // The static SVG of a long replay is most of a megabyte again (a marker per resize), so
    // readers without scripts get a pointer to it rather than a copy in every report. A plain
    // paragraph the script removes, not <noscript>: a viewer that blocks inline scripts with a
    // content policy (a CI artifact page) still shows it.
    o.push_str(
        "<p class=\"note\" id=\"chart-noscript\">The chart is drawn by the page's script, which did not run here. \
         <code>ebbflow simulate --chart FILE.svg</code> writes the same chart as a static SVG.</p>\n",
    );
    let embedded = crate::chart::embed::embed(data, crate::chart::embed::MAX_BUCKETS);
    let json = serde_json::to_string(&embedded).unwrap_or_else(|_| "null".into());
    // Every "<" as its JSON escape: "</script>" would end the element early and "<!--" would put
    // the HTML parser in a state where the data swallows the script after it.
    let _ =
        writeln!(o, "<script type=\"application/json\" id=\"chart-data\">{}</script>", json.replace('<', "\\u003c"));
    let _ = writeln!(o, "<script>{REPORT_JS}</script>");
    o.push_str("</figure>\n");
}

fn forecast(o: &mut String, runs: &[Run]) {
    let scored: Vec<_> = runs.iter().flat_map(|r| r.summary.forecast_scores()).collect();
    if scored.is_empty() {
        return;
    }
    o.push_str("<h2>Forecast against what came</h2>\n<div class=\"table-wrap\"><table><thead><tr>");
    for h in [
        "algorithm",
        "lead",
        "forecasts scored",
        "MAE (nodes)",
        "MAPE %",
        "bias (nodes)",
        "naive MAE (nodes)",
        "scale-outs ahead",
        "of which needed",
    ] {
        let _ = write!(o, "<th>{}</th>", escape(h));
    }
    o.push_str("</tr></thead><tbody>\n");
    for (name, f) in scored {
        let _ = writeln!(
            o,
            "<tr class=\"policy\"><td>{}</td><td>{:.0}m</td><td>{}</td><td>{:.2}</td><td>{:.1}</td><td>{:+.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&name),
            f.lead_minutes,
            f.forecasts,
            f.mae_nodes,
            f.mape,
            f.bias_nodes,
            f.naive_mae_nodes,
            f.ahead_scale_outs,
            f.ahead_needed,
        );
    }
    o.push_str("</tbody></table></div>\n");
    o.push_str(
        "<p class=\"sub\">Each forecast rise (the demand expected lead later) against the demand that arrived then, in nodes at \
         the target. Naive: the error of assuming demand stays what it is now, on the same rows. Needed: within the lead, demand \
         went past what the size before the early scale-out carries at the target. The chart draws each forecast at the time it \
         was for. (line): the line through a steady climb, its lead the warm-up, scored on the evaluations where it was believed; \
         its scale-outs ahead are ScaleOutOnRamp resizes.</p>\n",
    );
}

fn decisions(o: &mut String, sc: &Scenario, steps: &[Step]) {
    let mut mix: BTreeMap<&str, usize> = BTreeMap::new();
    for s in steps {
        *mix.entry(s.reason).or_default() += 1;
    }
    let mut mix: Vec<(&str, usize)> = mix.into_iter().collect();
    mix.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    o.push_str("<h2>Decisions by reason</h2>\n<div class=\"table-wrap\"><table><thead><tr><th>reason</th><th>evaluations</th><th>share</th></tr></thead><tbody>\n");
    for (reason, n) in &mix {
        let share = *n as f64 * 100.0 / steps.len().max(1) as f64;
        let _ = writeln!(o, "<tr><td>{}</td><td>{n}</td><td>{share:.1}%</td></tr>", escape(reason));
    }
    o.push_str("</tbody></table></div>\n");

    let mut prev = sc.start_total();
    let mut actions = String::new();
    let mut count = 0;
    for s in steps {
        if s.desired != prev {
            count += 1;
            let (class, arrow) = if s.desired > prev { ("up", "▲") } else { ("down", "▼") };
            let _ = writeln!(
                actions,
                "<tr><td>{}</td><td class=\"{class}\">{arrow} {prev} → {}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.at.to_rfc3339()),
                s.desired,
                escape(s.reason),
                num(s.observed, 3),
                num(s.smoothed, 3),
                if s.spike { "yes" } else { "" },
                s.serving,
            );
        }
        prev = s.desired;
    }
    let _ = writeln!(o, "<h2>Scale actions ({count})</h2>");
    if count == 0 {
        o.push_str("<p class=\"sub\">The policy never resized the target.</p>\n");
        return;
    }
    o.push_str(
        "<div class=\"table-wrap\"><table><thead><tr><th>time (UTC)</th><th>resize</th><th class=\"l\">reason</th><th>observed</th><th>smoothed</th><th>spike</th><th>serving</th></tr></thead><tbody>\n",
    );
    o.push_str(&actions);
    o.push_str("</tbody></table></div>\n");
}

/// Write the report to `path`.
pub fn write(path: &Path, sc: &Scenario, runs: &[Run]) -> std::io::Result<()> {
    std::fs::write(path, html(sc, runs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Ts;
    use crate::sim::report::{ForecastScore, Summary};

    /// The forecast table shows the line's score as its own row, and only when there is one.
    #[test]
    fn the_forecast_table_has_a_row_for_the_line() {
        let step = |i: i64, demand: f64, desired: u32| Step {
            at: Ts(i * 60_000),
            demand,
            observed: f64::NAN,
            smoothed: f64::NAN,
            spike: false,
            desired,
            serving: desired,
            reason: "WithinTolerance",
            forecast: f64::NAN,
            ramp: f64::NAN,
        };
        let mut steps: Vec<Step> = (0..5).map(|i| step(i, 20.0, 2)).collect();
        let plain = Summary::from_steps("mine", &steps, 10.0, 12.5, 2);
        let mut o = String::new();
        forecast(&mut o, &[Run { steps: steps.clone(), summary: plain.clone() }]);
        assert!(o.is_empty(), "{o}");
        steps[0].ramp = 30.0;
        let line = ForecastScore::of_ramp(&steps, 10.0, crate::core::Dur::mins(2), 2);
        assert!(line.is_some());
        forecast(&mut o, &[Run { steps, summary: Summary { ramp: line, ..plain } }]);
        assert!(o.contains("<td>mine (line)</td><td>2m</td><td>1</td><td>1.00</td>"), "{o}");
    }
}
