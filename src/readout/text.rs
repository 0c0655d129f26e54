//! The readout on a terminal: the table of `ebbflow status` and the explanation of one policy,
//! with ANSI styling when stdout is a terminal.

use std::fmt::Write as _;

use super::model::{Level, MetricCell, PolicyView, Row, Timer, clock_time, detail, human, metric_cells, num, row};
use crate::core::{Dur, Ts};

/// ANSI styling, or none (not a terminal, NO_COLOR, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint(pub bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 && !text.is_empty() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
    fn bold(self, t: &str) -> String {
        self.wrap("1", t)
    }
    pub(super) fn dim(self, t: &str) -> String {
        self.wrap("2", t)
    }
    fn level(self, l: Level, t: &str) -> String {
        match l {
            Level::Ok => self.wrap("32", t),
            Level::Pending => self.wrap("2", t),
            Level::Busy => self.wrap("36", t),
            Level::Warn => self.wrap("33", t),
            Level::Error => self.wrap("1;31", t),
        }
    }
}

fn size_cell(r: &Row) -> String {
    sizes_text(r.current, r.desired, r.live)
}

fn sizes_text(current: Option<u32>, desired: Option<u32>, live: Option<u32>) -> String {
    let size = match (current, desired) {
        (Some(c), Some(d)) if c != d => format!("{c} → {d}"),
        (Some(c), _) => c.to_string(),
        (None, Some(d)) => format!("? → {d}"),
        (None, None) => "-".into(),
    };
    // Steering a built-in autoscaler, the sizes are its minimum; its own size is beside them.
    match live {
        Some(live) => format!("min {size}, live {live}"),
        None => size,
    }
}

fn metric_text(m: &Option<MetricCell>) -> String {
    let Some(m) = m else { return "-".into() };
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), num);
    let more = if m.others > 0 { format!(" +{}", m.others) } else { String::new() };
    let spike = if m.spike { " spike" } else { "" };
    let eff = match m.effective_target {
        Some(e) if e < m.target * (1.0 - 1e-6) => format!(" (eff. {})", num(e)),
        _ => String::new(),
    };
    format!("{} {}/{} vs {}{eff}{spike}{more}", m.name, opt(m.observed), opt(m.smoothed), num(m.target))
}

fn last_text(r: &Row) -> String {
    match &r.last {
        Some(l) => {
            let sizes = if l.from != l.to { format!(" {}→{}", l.from, l.to) } else { String::new() };
            let age = l.age_secs.map(|s| format!(" {} ago", human(Dur(s * 1000)))).unwrap_or_default();
            format!("{}{sizes}{age}", l.reason)
        }
        None => "-".into(),
    }
}

fn left(t: &Option<Timer>) -> String {
    t.as_ref().map_or_else(|| "-".into(), |t| human(Dur(t.left_secs * 1000)))
}

/// The status table: one row per policy, columns padded, styled when `paint` is on.
pub fn table(rows: &[Row], paint: Paint) -> String {
    if rows.is_empty() {
        return "No ScalePolicies found.\n".into();
    }
    let header = [
        "POLICY",
        "TARGET",
        "MODE",
        "SIZE",
        "METRIC observed/smoothed vs target",
        "LAST DECISION",
        "COOLDOWN out/in",
        "SPIKE HOLD",
        "HEALTH",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.policy.clone(),
                r.target.clone(),
                r.mode.clone().unwrap_or_else(|| "-".into()),
                size_cell(r),
                metric_text(&r.metric),
                last_text(r),
                format!("{}/{}", left(&r.cooldown_out), left(&r.cooldown_in)),
                left(&r.spike_hold),
                r.health.text.clone(),
            ]
        })
        .collect();
    let width =
        |c: usize| cells.iter().map(|row| row[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut out = String::new();
    let head: Vec<String> = header.iter().zip(&widths).map(|(h, w)| pad(h, *w)).collect();
    out.push_str(&paint.bold(head.join("  ").trim_end()));
    out.push('\n');
    for (r, row) in rows.iter().zip(&cells) {
        let mut line = Vec::with_capacity(row.len());
        for (c, (cell, w)) in row.iter().zip(&widths).enumerate() {
            // Pad first, then colour: escape codes have no width.
            let padded = if c + 1 == row.len() { cell.clone() } else { pad(cell, *w) };
            line.push(match c {
                2 if r.mode.as_deref() == Some("DryRun") => paint.wrap("35", &padded),
                2 if r.mode.as_deref() == Some("Paused") => paint.dim(&padded),
                3 if r.current != r.desired => paint.bold(&padded),
                8 => paint.level(r.health.level, &padded),
                _ => padded,
            });
        }
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `ebbflow status NAME`: the policy in full.
pub fn explain(v: &PolicyView, now: Ts, paint: Paint) -> String {
    let r = row(v, now);
    let d = detail(v, now);
    let mut o = String::new();
    let mode = r.mode.clone().unwrap_or_else(|| "mode unknown".into());
    let _ = writeln!(o, "{}  {}  ({mode})", paint.bold(&r.policy), r.target);
    let _ = writeln!(o, "health     {}", paint.level(r.health.level, &r.health.text));
    let op = r.operation.as_deref().map(|o| format!("  ({o})")).unwrap_or_default();
    let _ = writeln!(o, "size       {}{op}", size_cell(&r));
    if let Some(owner) = &r.owner {
        let _ = writeln!(o, "evaluated  {owner}");
    }
    if let Some(line) = crate::known::summary(&r.active) {
        let _ = writeln!(o, "active     {line}");
    }
    if let Some(members) = v.status.as_ref().map(|s| &s.members).filter(|m| !m.is_empty()) {
        let each: Vec<String> = members
            .iter()
            .map(|m| {
                let busy = if m.state == "READY" { String::new() } else { format!(" {}", m.state) };
                let op = m.operation.as_deref().map(|o| format!(" ({o})")).unwrap_or_default();
                // Per-cluster sizing: each member's own decision, what was applied, and why.
                let own = match (m.desired_size, m.applied_size) {
                    (Some(d), Some(a)) => format!(
                        ": own {d}, applied {a}{}",
                        m.message.as_deref().map(|w| format!(" ({w})")).unwrap_or_default()
                    ),
                    _ => String::new(),
                };
                format!("{} {}{busy}{op}{own}", m.name, m.size)
            })
            .collect();
        let per_member = members.iter().any(|m| m.applied_size.is_some());
        let _ = writeln!(o, "members    {}", each.join(if per_member { "\n           " } else { ", " }));
    }
    let names: Vec<String> = match &v.spec {
        Some(spec) => spec.metrics.iter().map(|m| m.name.clone()).collect(),
        None => v.status.iter().flat_map(|s| s.last_decision.iter()).flat_map(|d| d.metrics.keys().cloned()).collect(),
    };
    let cells = metric_cells(v);
    let from = v.status.as_ref().and_then(|s| s.last_decision.as_ref()).map(|d| d.from);
    for (i, name) in names.iter().enumerate() {
        let label = if i == 0 { "metrics" } else { "" };
        let Some(m) = cells.iter().find(|c| &c.name == name) else {
            let _ = writeln!(o, "{label:<10} {name}: no reading");
            continue;
        };
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), num);
        let pad = " ".repeat(12 + name.chars().count());
        let spike = if m.spike { "  SPIKE" } else { "" };
        let (seen, spread) = match (m.per_node, r.serving, from) {
            (true, Some(s), Some(f)) if s < f => {
                (format!("per serving node, {s} serving"), format!("per node over all {f}, warming ones included"))
            }
            (true, _, _) => ("per node".to_string(), "per node".to_string()),
            (false, _, _) => ("total".to_string(), "total".to_string()),
        };
        let _ = writeln!(o, "{label:<10} {name}: observed {} (newest sample, {seen}){spike}", opt(m.observed));
        let _ = writeln!(o, "{pad}smoothed {} ({spread}; the size is computed from this)", opt(m.smoothed));
        let eff = match m.effective_target {
            Some(e) if e < m.target * (1.0 - 1e-6) => format!(", effective target {} (lower for noise)", num(e)),
            Some(_) => ", effective target the same".to_string(),
            None => String::new(),
        };
        let noise = m.noise.map(|n| format!(", noise ±{}% of smoothed", num(n * 100.0))).unwrap_or_default();
        let _ = writeln!(o, "{pad}target {}{eff}{noise}", num(m.target));
        let asks = m.recommended.map_or_else(|| "asks for -".to_string(), |n| format!("asks for {n}"));
        let forecast = match (m.forecast, m.forecast_demand) {
            (Some(f), Some(d)) => format!("; forecast {} ahead asks for {f}", num(d)),
            (Some(f), None) => format!("; forecast asks for {f}"),
            _ => String::new(),
        };
        let _ = writeln!(o, "{pad}{asks}{forecast}");
    }
    o.push('\n');
    let _ = writeln!(o, "{}", paint.bold("Why now"));
    for line in &d.why {
        let _ = writeln!(o, "  {line}");
    }
    if !d.conditions.is_empty() {
        o.push('\n');
        let _ = writeln!(o, "{}", paint.bold("Conditions"));
        let tw = d.conditions.iter().map(|c| c.type_.len()).max().unwrap_or(0);
        let rw = d.conditions.iter().map(|c| c.reason.len()).max().unwrap_or(0);
        for c in &d.conditions {
            let since = Ts::parse_rfc3339(&c.last_transition_time)
                .map(|t| format!(" (since {} ago)", human(now - t)))
                .unwrap_or_default();
            let good = if c.type_ == "ScalingLimited" { c.status == "False" } else { c.status == "True" };
            let status = format!("{:<5}", c.status);
            let status = if good { paint.level(Level::Ok, &status) } else { paint.level(Level::Warn, &status) };
            let _ = writeln!(o, "  {:<tw$}  {status}  {:<rw$}  {}{}", c.type_, c.reason, c.message, paint.dim(&since));
        }
    }
    if !d.recent_decisions.is_empty() {
        o.push('\n');
        let _ = writeln!(o, "{}", paint.bold("Recent decisions (newest first)"));
        let lines: Vec<[String; 4]> = d
            .recent_decisions
            .iter()
            .map(|x| {
                let when = Ts::parse_rfc3339(&x.time)
                    .map(|t| format!("{} ({} ago)", clock_time(t, now), human(now - t)))
                    .unwrap_or_else(|_| x.time.clone());
                let sizes = if x.from != x.to { format!("{} → {}", x.from, x.to) } else { x.from.to_string() };
                [when, x.reason.clone(), sizes, x.message.clone()]
            })
            .collect();
        let w = |i: usize| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (w(0), w(1), w(2));
        for [when, reason, sizes, message] in &lines {
            let _ = writeln!(o, "  {when:<w0$}  {reason:<w1$}  {sizes:<w2$}  {message}");
        }
    }
    o
}

/// Whether colours should be used on stdout: a terminal, and `NO_COLOR` unset
/// (<https://no-color.org>).
pub fn stdout_paint() -> Paint {
    use std::io::IsTerminal;
    Paint(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A steered autoscaler's sizes read as its minimum, with its live size beside them.
    #[test]
    fn a_steered_autoscaler_shows_its_minimum_and_live_size() {
        assert_eq!(sizes_text(Some(3), Some(5), None), "3 → 5");
        assert_eq!(sizes_text(Some(3), Some(5), Some(9)), "min 3 → 5, live 9");
        assert_eq!(sizes_text(Some(4), Some(4), Some(4)), "min 4, live 4");
    }
}
