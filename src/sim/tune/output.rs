//! What `tune` prints and writes: the front as a table, a chart of it, the recommended policy as
//! commented YAML, and the message when nothing meets the constraints.

use std::fmt::Write as _;

use super::search::{Scores, Stop};
use super::{Member, Problem, TuneArgs, Tuned};

/// Scores per day: (node-minutes, minutes over the limit, actions).
fn per_day(s: &Scores, days: f64) -> (f64, f64, f64) {
    let d = days.max(1e-9);
    (s.node_minutes / d, s.over_limit / d, s.actions as f64 / d)
}

fn change_text(m: &Member) -> String {
    if m.changes.is_empty() {
        return "(the starting policy)".into();
    }
    m.changes.iter().map(|(path, _, to)| format!("{path}={to}")).collect::<Vec<_>>().join(" ")
}

/// The constraints in words.
pub fn constraints_text(t: &Tuned) -> String {
    let c = &t.constraints;
    let mut parts = Vec::new();
    if let Some(m) = c.over_limit_per_day {
        let whose =
            if c.over_limit_from_start { " (the starting policy's own; set --max-over-limit-per-day)" } else { "" };
        parts.push(format!("at most {m:.2} minutes over the limit per day{whose}"));
    }
    if let Some(m) = c.actions_per_day {
        parts.push(format!("at most {m} scale actions per day"));
    }
    if c.bigtable {
        parts.push("Bigtable's scale-in guidance (at most 10% of the nodes per 10 minutes)".into());
    }
    parts.join("; ")
}

/// The printed report: what was tuned on, how the search went, the front, the recommendation.
pub fn report(problem: &Problem, t: &Tuned, args: &TuneArgs) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Tuning {} on {} trace(s), each split by whole days:",
        problem.policy_path.display(),
        problem.cases.len()
    );
    for c in &problem.cases {
        let (start, end) = c.scenario.trace.span();
        let _ = writeln!(
            o,
            "  {}: {} ({} to {}): tuned on the first {:.1} days, held back the last {} (from {})",
            c.source,
            c.scenario.trace.name,
            start,
            end,
            c.tune_days(),
            if c.held_days == 1 { "day".to_string() } else { format!("{} days", c.held_days) },
            c.cutoff
        );
    }
    let _ = writeln!(
        o,
        "The search saw only the tuning days; the held-back days were replayed afterwards, for the front only, to show how it does on load it was not fitted to."
    );
    let _ = writeln!(o, "Constraints (averages per tuning day): {}.", constraints_text(t));
    let f = &t.found;
    let pruned = f.evaluated.iter().filter(|e| matches!(e.outcome, super::search::Outcome::Pruned)).count();
    let invalid = f.evaluated.iter().filter(|e| matches!(e.outcome, super::search::Outcome::Invalid(_))).count();
    let first = f.evaluated.iter().filter(|e| e.generation == 0).count();
    let stop = match f.stop {
        Stop::Budget => format!("the budget of {} variants was spent", args.budget),
        Stop::Converged(k) => format!("the front did not move for {k} generations"),
        Stop::Exhausted => "no new variant could be bred".into(),
    };
    let _ = writeln!(
        o,
        "Searched {} variants in {:.1}s ({} space-filling, then {} generations bred from the front; {} replayed to the end, {} stopped early once the front beat them{}); stopped because {stop}.",
        f.evaluated.len(),
        t.seconds,
        first,
        f.generations,
        f.evaluated.len() - pruned - invalid,
        pruned,
        if invalid > 0 { format!(", {invalid} invalid") } else { String::new() },
    );
    let _ = writeln!(o);
    let rows = shown_rows(t, args.show);
    let _ = writeln!(
        o,
        "Pareto front: {} variants (node-minutes against minutes over the limit against scale actions), cheapest first{}.",
        t.front.len(),
        if rows.len() < t.front.len() { format!("; {} shown (--show 0 for all)", rows.len()) } else { String::new() }
    );
    let _ = writeln!(
        o,
        "start: the starting policy; rec: the recommendation (* with its ineffective changes reverted); + meets the constraints. Figures are per day."
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:>7}  {:>9} {:>9} {:>8}  {:>9} {:>9} {:>8}  changes",
        "", "tuning:", "", "", "held-back:", "", ""
    );
    let _ = writeln!(
        o,
        "{:>7}  {:>9} {:>9} {:>8}  {:>9} {:>9} {:>8}  ",
        "variant", "node-min", "min>limit", "actions", "node-min", "min>limit", "actions"
    );
    let row = |o: &mut String, label: String, m: &Member| {
        let (a, b, c) = per_day(&m.split.tuning, t.tune_days);
        let (x, y, z) = per_day(&m.split.held, t.held_days);
        let _ = writeln!(o, "{label:>7}  {a:>9.0} {b:>9.2} {c:>8.1}  {x:>9.0} {y:>9.2} {z:>8.1}  {}", change_text(m));
    };
    row(&mut o, "start".into(), &t.start);
    if let Some(m) = &t.recommendation {
        row(&mut o, "rec".into(), m);
    }
    for i in rows {
        let mark = if Some(i) == t.recommended {
            "*"
        } else if t.front[i].meets {
            "+"
        } else {
            " "
        };
        row(&mut o, format!("{mark}{}", i + 1), &t.front[i]);
    }
    let _ = writeln!(o);
    if let (Some(best), Some(m)) = (t.recommended, &t.recommendation) {
        let from = &t.front[best];
        let _ = writeln!(
            o,
            "Recommended: variant {} (the cheapest on the front that meets the constraints), keeping {} of its {} changes; reverting the others costs at most {}% more and still meets the constraints:",
            best + 1,
            m.changes.len(),
            from.changes.len(),
            super::SIMPLER_COST * 100.0
        );
        for (path, from, to) in &m.changes {
            let _ = writeln!(o, "  {path}: {from} -> {to}");
        }
        if m.changes.is_empty() {
            let _ = writeln!(o, "  (no change: the starting policy already is the cheapest that meets them)");
        }
        let _ = writeln!(o, "  tuning days:    {}", versus(&m.split.tuning, &t.start.split.tuning, t.tune_days));
        let _ = writeln!(o, "  held-back days: {}", versus(&m.split.held, &t.start.split.held, t.held_days));
        let (_, over, actions) = per_day(&m.split.held, t.held_days);
        let mut missed = Vec::new();
        if let Some(limit) = t.constraints.over_limit_per_day
            && over > limit + 1e-9
        {
            missed.push(format!("{over:.2} minutes over the limit per day against at most {limit:.2}"));
        }
        if let Some(limit) = t.constraints.actions_per_day
            && actions > limit + 1e-9
        {
            missed.push(format!("{actions:.1} scale actions per day against at most {limit}"));
        }
        if !missed.is_empty() {
            let _ = writeln!(
                o,
                "  note: on the held-back days it missed the constraints ({}): the load there differs from the tuning days; tighten the constraint for a margin, or tune on more days.",
                missed.join(", ")
            );
        }
    }
    o
}

/// "X node-min/day (−12% against the start), Y min over the limit/day (…), Z actions/day (…)".
fn versus(s: &Scores, start: &Scores, days: f64) -> String {
    let (a, b, c) = per_day(s, days);
    let (a0, b0, c0) = per_day(start, days);
    let rel = |v: f64, v0: f64| {
        if v0 > 0.0 { format!("{:+.0}%", (v / v0 - 1.0) * 100.0) } else { format!("start {v0:.2}") }
    };
    format!(
        "{a:.0} node-min/day ({}), {b:.2} min over the limit/day ({}), {c:.1} actions/day ({}) against the starting policy",
        rel(a, a0),
        rel(b, b0),
        rel(c, c0)
    )
}

/// Which front rows to print: all when `show` is 0 or covers them; otherwise spread evenly
/// along the cost axis, always with the recommendation.
fn shown_rows(t: &Tuned, show: usize) -> Vec<usize> {
    let n = t.front.len();
    if show == 0 || n <= show {
        return (0..n).collect();
    }
    let mut rows: Vec<usize> = (0..show).map(|k| k * (n - 1) / (show - 1).max(1)).collect();
    if let Some(r) = t.recommended {
        rows.push(r);
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// Why nothing met the constraints: which one binds, and how close the front came.
pub fn no_variant_meets(t: &Tuned) -> String {
    let c = &t.constraints;
    let days = t.tune_days;
    let best_over = t.front.iter().map(|m| m.split.tuning.over_limit / days).fold(f64::INFINITY, f64::min);
    let best_actions = t.front.iter().map(|m| m.split.tuning.actions as f64 / days).fold(f64::INFINITY, f64::min);
    let mut binding = Vec::new();
    if let Some(m) = c.over_limit_per_day
        && best_over > m + 1e-9
    {
        let flag = if c.over_limit_from_start {
            "the starting policy's minutes over the limit"
        } else {
            "--max-over-limit-per-day"
        };
        binding.push(format!("{flag} ({m:.2}/day) binds: the fewest any variant reached was {best_over:.2} per day"));
    }
    if let Some(m) = c.actions_per_day
        && best_actions > m + 1e-9
    {
        binding.push(format!(
            "--max-resizes-per-day ({m}) binds: the fewest scale actions any variant made was {best_actions:.1} per day"
        ));
    }
    if binding.is_empty() {
        // Each is met by some variant, never both by one: show the trade-off.
        let (Some(mo), Some(ma)) = (c.over_limit_per_day, c.actions_per_day) else {
            return "no variant meets the constraints on the tuning days (the scale-in guidance excluded the rest)"
                .into();
        };
        let fewest = t
            .front
            .iter()
            .filter(|m| m.split.tuning.over_limit / days <= mo + 1e-9)
            .map(|m| m.split.tuning.actions as f64 / days)
            .fold(f64::INFINITY, f64::min);
        binding.push(format!(
            "each constraint is met alone, never both: variants within {mo:.2} minutes over the limit per day make at least {fewest:.1} scale actions per day (the bound is {ma})"
        ));
    }
    format!(
        "no variant meets the constraints on the tuning days; {}. Loosen the constraint, give a larger --budget, or tune on traces closer to your load. No policy was written.",
        binding.join("; ")
    )
}

/// The recommended policy as ScalePolicy YAML: the starting policy's document with the tuned
/// fields changed, after comments saying what it was tuned on and what it achieved.
pub fn policy_yaml(problem: &Problem, t: &Tuned, m: &Member, args: &TuneArgs) -> Result<String, String> {
    let mut spec = problem.policy.spec.clone();
    for d in &problem.dims {
        if let Some(v) = d.knob.get(&m.spec, 0) {
            d.knob.set(&mut spec, problem.metric, v);
        }
    }
    let meta = &problem.policy.metadata;
    let mut metadata = serde_json::Map::new();
    if let Some(n) = &meta.name {
        metadata.insert("name".into(), n.clone().into());
    }
    if let Some(n) = &meta.namespace {
        metadata.insert("namespace".into(), n.clone().into());
    }
    for (key, map) in [("labels", &meta.labels), ("annotations", &meta.annotations)] {
        if let Some(map) = map {
            metadata.insert(key.into(), serde_json::to_value(map).map_err(|e| e.to_string())?);
        }
    }
    // Serialized from the typed spec, so the fields keep the order the CRD documents.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc<'a> {
        api_version: &'a str,
        kind: &'a str,
        metadata: serde_json::Map<String, serde_json::Value>,
        spec: &'a crate::api::ScalePolicySpec,
    }
    let doc = Doc { api_version: "ebbflow.dev/v1alpha1", kind: "ScalePolicy", metadata, spec: &spec };
    let body = serde_saphyr::to_string(&doc).map_err(|e| e.to_string())?;

    let mut c = String::new();
    let _ = writeln!(
        c,
        "Tuned by `ebbflow tune` from {} (seed {}, {} variants searched).",
        problem.policy_path.display(),
        args.seed,
        t.found.evaluated.len()
    );
    let _ = writeln!(c, "Tuned on (each trace split by whole days; the search never saw the held-back days):");
    for case in &problem.cases {
        let (start, end) = case.scenario.trace.span();
        let _ = writeln!(
            c,
            "  {} ({}, {} to {}): tuned on {:.1} days, held back the last {} from {}",
            case.source,
            case.scenario.trace.name,
            start,
            end,
            case.tune_days(),
            case.held_days,
            case.cutoff
        );
    }
    let _ = writeln!(c, "Constraints (averages per tuning day): {}.", constraints_text(t));
    let _ = writeln!(c, "Changed from the starting policy:");
    for (path, from, to) in &m.changes {
        let _ = writeln!(c, "  {path}: {from} -> {to}");
    }
    if m.changes.is_empty() {
        let _ = writeln!(c, "  nothing: the starting policy is already the cheapest that meets the constraints");
    }
    let line = |s: &Scores, days: f64| {
        let (a, b, x) = per_day(s, days);
        format!(
            "{:.0} node-minutes, {:.2} minutes over the limit, {} scale actions over {days:.1} days ({a:.0} / {b:.2} / {x:.1} per day)",
            s.node_minutes, s.over_limit, s.actions
        )
    };
    let _ = writeln!(c, "Achieved on the tuning days:    {}", line(&m.split.tuning, t.tune_days));
    let _ = writeln!(c, "Achieved on the held-back days: {}", line(&m.split.held, t.held_days));
    let _ = writeln!(c, "The starting policy, tuning days:    {}", line(&t.start.split.tuning, t.tune_days));
    let _ = writeln!(c, "The starting policy, held-back days: {}", line(&t.start.split.held, t.held_days));
    let _ = writeln!(
        c,
        "Replayed with: {}",
        problem.cases.iter().map(|k| k.scenario.describe()).collect::<Vec<_>>().join("; ")
    );
    let comments: String =
        c.lines().map(|l| if l.is_empty() { "#\n".to_string() } else { format!("# {l}\n") }).collect();
    Ok(format!("{comments}{body}"))
}

/// Ticks covering `lo..hi` at a step of 1, 2 or 5 × 10^k, about five of them.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) };
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    (first..=last).map(|k| (k as f64 * step * 1e6).round() / 1e6).collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Most lines the front's title takes; a longer one ends in "…" (the file names are all in the
/// printed report).
const TITLE_LINES: usize = 4;
/// Pixels per character of the 14 px sans-serif title, on the wide side (DejaVu Sans), so a line
/// never runs past the edge.
const TITLE_CHAR_W: f64 = 8.4;
/// Baseline to baseline of the title's lines.
const TITLE_LINE_H: f64 = 18.0;

/// `text` in lines of at most `max` characters, broken at spaces, and within a word (a deep
/// policy path) after its slashes or, for a part longer than a line, anywhere.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(8);
    // Where a word may break: after each slash, and every `max` characters.
    let pieces = |word: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for seg in word.split_inclusive('/') {
            let chars: Vec<char> = seg.chars().collect();
            out.extend(chars.chunks(max).map(|c| c.iter().collect::<String>()));
        }
        out
    };
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        for (k, piece) in pieces(word).into_iter().enumerate() {
            // The pieces of one word join without a space.
            let glue = if line.is_empty() || k > 0 { "" } else { " " };
            if !line.is_empty() && line.chars().count() + glue.len() + piece.chars().count() > max {
                lines.push(std::mem::take(&mut line));
            } else {
                line.push_str(glue);
            }
            line.push_str(&piece);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The front's title in lines that fit `width` pixels: one line ran off the 760-pixel chart
/// whenever the policy's path and the traces' names were long, and was cut off at its edge.
fn title_lines(policy: &str, traces: &[&str], width: f64) -> Vec<String> {
    let max = (width / TITLE_CHAR_W).floor().max(8.0) as usize;
    let mut lines = wrap(&format!("Pareto front of {policy} on {} (per day)", traces.join(", ")), max);
    if lines.len() > TITLE_LINES {
        lines.truncate(TITLE_LINES);
        if let Some(last) = lines.last_mut() {
            let keep: String = last.chars().take(max - 1).collect();
            *last = format!("{keep}…");
        }
    }
    lines
}

/// A self-contained SVG of the front: node-minutes per day against minutes over the limit per
/// day, on the tuning days (filled) and the held-back days (hollow), with every other variant
/// run in grey, the starting policy, the recommendation and the over-limit constraint.
pub fn chart_svg(problem: &Problem, t: &Tuned) -> String {
    let w = 760.0;
    let names: Vec<&str> = problem.cases.iter().map(|c| c.scenario.trace.name.as_str()).collect();
    let title = title_lines(&problem.policy_path.display().to_string(), &names, w - 20.0);
    // Each further title line moves the plot down and makes the image taller, so the plot keeps
    // its size.
    let extra = TITLE_LINE_H * title.len().saturating_sub(1) as f64;
    let h = 480.0 + extra;
    let (left, right, top, bottom) = (70.0, 20.0, 40.0 + extra, 56.0);
    let td = t.tune_days;
    let mut pts: Vec<(f64, f64)> =
        t.found.evaluated.iter().filter_map(|e| e.scores()).map(|s| (s.node_minutes / td, s.over_limit / td)).collect();
    let front: Vec<(f64, f64)> =
        t.front.iter().map(|m| (m.split.tuning.node_minutes / td, m.split.tuning.over_limit / td)).collect();
    let held: Vec<(f64, f64)> = t
        .front
        .iter()
        .map(|m| (m.split.held.node_minutes / t.held_days, m.split.held.over_limit / t.held_days))
        .collect();
    let start = (t.start.split.tuning.node_minutes / td, t.start.split.tuning.over_limit / td);
    // Scale to the front and the start (far-off variants are clipped at the edge).
    let focus: Vec<(f64, f64)> = front.iter().chain(&held).chain(std::iter::once(&start)).copied().collect();
    let xmax_raw = focus.iter().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let xmin_raw = focus.iter().map(|p| p.0).fold(f64::INFINITY, f64::min) * 0.95;
    let ymax_raw =
        focus.iter().map(|p| p.1).fold(0.0, f64::max).max(t.constraints.over_limit_per_day.unwrap_or(0.0)) * 1.1;
    let yt = ticks(0.0, ymax_raw.max(1.0));
    let ymax = yt.last().copied().unwrap_or(1.0);
    let xt = ticks(xmin_raw, xmax_raw.max(xmin_raw + 1.0));
    let (xmin, xmax) = (xt.first().copied().unwrap_or(0.0), xt.last().copied().unwrap_or(1.0));
    let px = |x: f64| left + (x.clamp(xmin, xmax) - xmin) / (xmax - xmin).max(1e-9) * (w - left - right);
    let py = |y: f64| top + (1.0 - y.clamp(0.0, ymax) / ymax.max(1e-9)) * (h - top - bottom);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    for (k, line) in title.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}" font-size="14">{}</text>"#,
            22.0 + TITLE_LINE_H * k as f64,
            esc(line)
        );
    }
    for &v in &yt {
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    for &v in &xt {
        let x = px(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{v}</text>"##,
            h - bottom,
            h - bottom + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">node-minutes per day</text>"#,
        (left + w - right) / 2.0,
        h - 14.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">minutes over the limit per day</text>"#,
        (top + h - bottom) / 2.0
    );
    if let Some(m) = t.constraints.over_limit_per_day {
        let y = py(m);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c33" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="#c33" text-anchor="end">constraint</text>"##,
            w - right,
            w - right - 4.0,
            y - 4.0
        );
    }
    pts.retain(|p| p.0 <= xmax && p.1 <= ymax);
    for p in &pts {
        let _ = writeln!(s, r##"<circle cx="{:.1}" cy="{:.1}" r="1.5" fill="#bbb"/>"##, px(p.0), py(p.1));
    }
    for (a, b) in front.iter().zip(&held) {
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#f0a040" stroke-width="0.6"/>"##,
            px(a.0),
            py(a.1),
            px(b.0),
            py(b.1)
        );
    }
    for p in &front {
        let _ = writeln!(s, r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#2a6fdb"/>"##, px(p.0), py(p.1));
    }
    for p in &held {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="none" stroke="#e08000" stroke-width="1.5"/>"##,
            px(p.0),
            py(p.1)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="black"/>"##,
        px(start.0) - 4.5,
        py(start.1) - 4.5
    );
    if let Some(m) = &t.recommendation {
        let (x, y) = (px(m.split.tuning.node_minutes / td), py(m.split.tuning.over_limit / td));
        let _ =
            writeln!(s, r##"<circle cx="{x:.1}" cy="{y:.1}" r="8" fill="none" stroke="#c33" stroke-width="2.5"/>"##);
    }
    // Legend.
    let lx = w - right - 230.0;
    let items = [
        (r##"<circle cx="0" cy="0" r="4" fill="#2a6fdb"/>"##, "front, tuning days"),
        (
            r##"<circle cx="0" cy="0" r="4" fill="none" stroke="#e08000" stroke-width="1.5"/>"##,
            "same variants, held-back days",
        ),
        (r##"<circle cx="0" cy="0" r="1.5" fill="#bbb"/>"##, "other variants run"),
        (r##"<rect x="-4.5" y="-4.5" width="9" height="9" fill="black"/>"##, "starting policy"),
        (r##"<circle cx="0" cy="0" r="8" fill="none" stroke="#c33" stroke-width="2.5"/>"##, "recommended"),
    ];
    for (k, (mark, label)) in items.iter().enumerate() {
        let y = top + 12.0 + k as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<g transform="translate({:.1} {y:.1})">{mark}</g><text x="{:.1}" y="{:.1}">{label}</text>"#,
            lx,
            lx + 14.0,
            y + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short title stays one line; a long one (a deep policy path, many traces) is broken into
    /// lines that each fit the chart, losing nothing up to the line limit, and past it ends in
    /// "…".
    #[test]
    fn the_fronts_title_fits_the_chart() {
        let width = 740.0;
        let max = (width / TITLE_CHAR_W) as usize;
        let short = title_lines("policies/orders.yaml", &["nyc_taxi.csv"], width);
        assert_eq!(short, vec!["Pareto front of policies/orders.yaml on nyc_taxi.csv (per day)".to_string()]);

        let path =
            "/home/someone/work/platform/autoscaling/bigtable/production/europe-west4/policies/orders-cluster.yaml";
        let traces = ["ec2_cpu_utilization_ac20cd.csv", "cpu_utilization_asg_misconfiguration.csv", "nyc_taxi.csv"];
        let long = title_lines(path, &traces, width);
        assert!(long.len() > 1 && long.len() <= TITLE_LINES, "{long:?}");
        assert!(long.iter().all(|l| l.chars().count() <= max), "{long:?}");
        let joined: String = long.concat().chars().filter(|c| !c.is_whitespace()).collect();
        for part in [path, traces[0], traces[1], traces[2], "(perday)"] {
            assert!(joined.contains(part), "{part} lost: {long:?}");
        }

        let many: Vec<String> = (0..40).map(|i| format!("trace-number-{i}.csv")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cut = title_lines(path, &many, width);
        assert_eq!(cut.len(), TITLE_LINES);
        assert!(cut.iter().all(|l| l.chars().count() <= max), "{cut:?}");
        assert!(cut.last().is_some_and(|l| l.ends_with('…')), "{cut:?}");
    }
}
