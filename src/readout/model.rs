//! The readout's model: what a policy is doing and why, as rows, health, timers and reasons,
//! computed from its spec and status. No text styling here; [`super::text`] renders it for a
//! terminal and the dashboard serves it as JSON.

use kube::ResourceExt;
use schemars::JsonSchema;
use serde::Serialize;

use crate::api::{Condition, DecisionRecord, MetricKind, Mode, ScalePolicy, ScalePolicySpec, ScalePolicyStatus};
use crate::core::{Dur, Ts};

/// One policy as the readout sees it. The spec is optional because a standalone state file
/// holds status only; without it the mode is unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyView {
    /// Namespace ("default" when none is set).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The spec, when known.
    pub spec: Option<ScalePolicySpec>,
    /// The status the controller wrote, if any.
    pub status: Option<ScalePolicyStatus>,
}

impl PolicyView {
    /// The view of a `ScalePolicy` object.
    pub fn from_policy(sp: &ScalePolicy) -> PolicyView {
        PolicyView {
            namespace: sp.namespace().unwrap_or_else(|| "default".into()),
            name: sp.name_any(),
            spec: Some(sp.spec.clone()),
            status: sp.status.clone(),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
    }

    fn is_false(&self, type_: &str) -> Option<&Condition> {
        self.condition(type_).filter(|c| c.status == "False")
    }

    fn mode(&self) -> Option<Mode> {
        self.spec.as_ref().map(|s| s.mode)
    }
}

/// How worried a reader should be about a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Level {
    /// Evaluated, nothing wrong.
    Ok,
    /// Not evaluated yet.
    Pending,
    /// A resize is running.
    Busy,
    /// Working, but degraded: missing data, limited by a bound, paused.
    Warn,
    /// Not working: invalid spec, permission denied, target unreadable, resize failed.
    Error,
}

/// The health cell: a level and a short CamelCase word (a condition reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Health {
    /// How worried to be.
    pub level: Level,
    /// E.g. "OK", "MissingData", "PermissionDenied", "Resizing".
    pub text: String,
}

/// A timer that is still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    /// When it ends (RFC 3339).
    pub until: String,
    /// Seconds left at `now`.
    pub left_secs: i64,
}

/// The metric a row shows: the policy's first metric.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricCell {
    /// The metric's name in the policy.
    pub name: String,
    /// Newest raw value as measured: per serving node (or the total).
    pub observed: Option<f64>,
    /// Smoothed demand per node across all current nodes, warming ones included (or the
    /// total): what the size is computed from.
    pub smoothed: Option<f64>,
    /// The metric's target.
    pub target: f64,
    /// The target the size was computed against (lower than `target` when headroom for noise
    /// asks for more nodes); None before the first reading.
    pub effective_target: Option<f64>,
    /// Scatter of single samples around the smoothed value, as a fraction of it.
    pub noise: Option<f64>,
    /// Size the forecast rise asks for, when one is expected.
    pub forecast: Option<u32>,
    /// Demand the forecast expects at now + lead, on the scale of `smoothed`.
    pub forecast_demand: Option<f64>,
    /// Size this metric alone asks for.
    pub recommended: Option<u32>,
    /// Per-node metric (true) or a total spread over the nodes (false).
    pub per_node: bool,
    /// A spike was detected on the last tick.
    pub spike: bool,
    /// How many more metrics the policy has.
    pub others: usize,
}

impl MetricCell {
    /// Nodes the newest observed value needs at the target, and the nodes that served it: the
    /// chart's demand and serving lines at the newest point.
    pub fn demand_nodes(&self, serving: u32) -> Option<f64> {
        let v = self.observed?;
        if self.target <= 0.0 {
            return None;
        }
        Some(if self.per_node { v * f64::from(serving) / self.target } else { v / self.target })
    }
}

/// The newest observed load needs more nodes at the target than were serving: the chart's
/// shaded area at its newest point.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shortfall {
    /// The metric that is short.
    pub metric: String,
    /// Nodes the newest observed value needs at the target.
    pub needed: f64,
    /// Nodes that served it.
    pub serving: u32,
}

/// The last decision, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastDecision {
    /// A `Reason` name.
    pub reason: String,
    /// Up, Down or None.
    pub direction: String,
    /// Size before.
    pub from: u32,
    /// Size asked for.
    pub to: u32,
    /// When (RFC 3339).
    pub time: String,
    /// Seconds since then at `now` (None when the time does not parse).
    pub age_secs: Option<i64>,
    /// The controller's one-line explanation.
    pub message: String,
}

/// One line of `ebbflow status`, and one card header on the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `namespace/name`.
    pub policy: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The target in one line.
    pub target: String,
    /// Enforce, DryRun, Paused; None when the spec is unknown.
    pub mode: Option<String>,
    /// Size the target has.
    pub current: Option<u32>,
    /// The live size of the built-in autoscaler the policy steers (`current` is its minimum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<u32>,
    /// Size the policy wants.
    pub desired: Option<u32>,
    /// The first metric's values.
    pub metric: Option<MetricCell>,
    /// The last decision.
    pub last: Option<LastDecision>,
    /// Time until a scale-out is allowed.
    pub cooldown_out: Option<Timer>,
    /// Time until a scale-in is allowed.
    pub cooldown_in: Option<Timer>,
    /// Time until the spike hold ends.
    pub spike_hold: Option<Timer>,
    /// The resize operation being followed.
    pub operation: Option<String>,
    /// What that operation said it is doing at the last evaluation (a drain's nodes, the pods
    /// left on each and the budget holding them).
    pub progress: Option<String>,
    /// With shards: the replica that evaluates the policy, and its shard ("by pod-a, shard 3").
    pub owner: Option<String>,
    /// Nodes serving when the last decision was made: `current` minus nodes still warming up or
    /// not yet seen serving in the per-node metric (or the size before a running resize).
    pub serving: Option<u32>,
    /// The newest observed load needs more nodes than were serving.
    pub shortfall: Option<Shortfall>,
    /// Health, from the conditions and the shortfall.
    pub health: Health,
    /// Schedule windows and overrides in effect at the last evaluation, and until when.
    /// Left out when there are none (`default` tells the API schema it is optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<crate::api::ActiveStatus>,
}

/// Everything `ebbflow status NAME` shows, for `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    /// The row.
    #[serde(flatten)]
    pub row: Row,
    /// Why the policy is or is not scaling now, one reason per line.
    pub why: Vec<String>,
    /// The conditions as stored.
    pub conditions: Vec<Condition>,
    /// The recent distinct decisions, newest first.
    pub recent_decisions: Vec<DecisionRecord>,
}

fn timer(at: Option<&String>, now: Ts) -> Option<Timer> {
    let at = at?;
    let t = Ts::parse_rfc3339(at).ok()?;
    (t > now).then(|| Timer { until: at.clone(), left_secs: ((t - now).0 + 999) / 1000 })
}

/// The row for one policy at `now`.
pub fn row(v: &PolicyView, now: Ts) -> Row {
    let st = v.status.as_ref();
    let target = st
        .and_then(|s| s.target.clone())
        .or_else(|| v.spec.as_ref().map(|s| s.target.describe()))
        .unwrap_or_else(|| "-".into());
    let last = st.and_then(|s| s.last_decision.as_ref()).map(|d| LastDecision {
        reason: d.reason.clone(),
        direction: d.direction.clone(),
        from: d.from,
        to: d.to,
        time: d.time.clone(),
        age_secs: Ts::parse_rfc3339(&d.time).ok().map(|t| (now - t).0.max(0) / 1000),
        message: d.message.clone(),
    });
    let cooldown = st.and_then(|s| s.cooldown.as_ref());
    let operation = st.and_then(|s| {
        s.operation.as_deref().map(shown_operation).or_else(|| {
            // A resize recorded as intended but not yet followed by an operation name.
            s.state.as_ref()?.in_flight.as_ref().map(|f| format!("resize {} -> {}", f.from, f.to))
        })
    });
    let last_rec = st.and_then(|s| s.last_decision.as_ref());
    let serving = last_rec.map(|d| d.serving.unwrap_or(d.from));
    let shortfall = serving.and_then(|n| shortfall(v, n));
    Row {
        policy: v.key(),
        namespace: v.namespace.clone(),
        name: v.name.clone(),
        target,
        mode: v.mode().map(|m| format!("{m:?}")),
        current: st.and_then(|s| s.current_size),
        live: st.and_then(|s| s.live_size),
        desired: st.and_then(|s| s.desired_size),
        metric: metric_cell(v),
        last,
        cooldown_out: timer(cooldown.and_then(|c| c.scale_out_allowed_at.as_ref()), now),
        cooldown_in: timer(cooldown.and_then(|c| c.scale_in_allowed_at.as_ref()), now),
        spike_hold: timer(cooldown.and_then(|c| c.spike_hold_until.as_ref()), now),
        // An error names its cause (a failing evaluation may keep its last decision); otherwise a
        // policy whose decisions stopped is overdue, whatever they said when they stopped.
        health: match health(v, operation.is_some(), shortfall.is_some()) {
            h if h.level != Level::Error && h.level != Level::Pending && overdue(v, now).is_some() => {
                Health { level: Level::Error, text: "Overdue".into() }
            }
            h => h,
        },
        operation,
        progress: st.and_then(|s| s.operation.as_ref().and(s.operation_progress.clone())),
        owner: st.and_then(|s| match (&s.evaluated_by, s.shard) {
            (Some(by), Some(shard)) => Some(format!("by {by}, shard {shard}")),
            (None, Some(shard)) => Some(format!("shard {shard}")),
            (by, None) => by.as_ref().map(|b| format!("by {b}")),
        }),
        serving,
        shortfall,
        active: st.map(|s| s.active.clone()).unwrap_or_default(),
    }
}

/// The metrics of the last decision, in the spec's order (the status map is sorted by name).
fn cells(v: &PolicyView) -> Vec<MetricCell> {
    let Some(readings) = v.status.as_ref().and_then(|s| s.last_decision.as_ref()).map(|d| &d.metrics) else {
        return Vec::new();
    };
    let names: Vec<(String, bool)> = match &v.spec {
        Some(spec) => spec.metrics.iter().map(|m| (m.name.clone(), m.kind == MetricKind::PerNode)).collect(),
        None => readings.keys().map(|k| (k.clone(), true)).collect(),
    };
    let others = names.len().saturating_sub(1);
    names
        .into_iter()
        .filter_map(|(name, per_node)| {
            let r = readings.get(&name)?;
            Some(MetricCell {
                observed: r.raw,
                smoothed: r.smoothed,
                target: r.target,
                effective_target: r.effective_target,
                noise: r.noise,
                forecast: r.forecast,
                forecast_demand: r.forecast_demand,
                recommended: r.recommended,
                per_node,
                spike: r.spike,
                others,
                name,
            })
        })
        .collect()
}

/// The largest shortfall over the metrics at the last decision, if any metric's newest value
/// needs more nodes at its target than `serving`.
fn shortfall(v: &PolicyView, serving: u32) -> Option<Shortfall> {
    // A paused policy reads nothing; its last numbers are history, not now.
    if v.mode() == Some(Mode::Paused) {
        return None;
    }
    cells(v)
        .into_iter()
        .filter_map(|m| {
            let needed = m.demand_nodes(serving)?;
            // A hair over (rounding in the stored values) is no shortfall worth a warning.
            (needed > f64::from(serving) * (1.0 + 1e-9)).then_some(Shortfall { metric: m.name, needed, serving })
        })
        .max_by(|a, b| a.needed.total_cmp(&b.needed))
}

fn metric_cell(v: &PolicyView) -> Option<MetricCell> {
    let first = match &v.spec {
        Some(spec) => spec.metrics.first()?.name.clone(),
        None => v.status.as_ref()?.last_decision.as_ref()?.metrics.keys().next()?.clone(),
    };
    cells(v).into_iter().find(|c| c.name == first)
}

/// Every metric of the last decision, in the spec's order.
pub fn metric_cells(v: &PolicyView) -> Vec<MetricCell> {
    cells(v)
}

/// Reasons of AbleToScale=False that mean the target cannot be resized at all (as opposed to a
/// timer or a running resize).
const BROKEN: &[&str] = &[
    "PermissionDenied",
    "CredentialsMissing",
    "CredentialsRefused",
    "ResizeFailed",
    "TargetBusy",
    "TargetConflict",
    "ResizeBackoff",
    "ResizeHadNoEffect",
    "ResizeTimedOut",
];

/// How long a policy's last evaluation is past due: its last decision is older than two of its
/// intervals (one evaluation may be slow or retried), and it is not paused. The status is the
/// store, so any replica, and `ebbflow status` reading the API server, sees a controller that
/// stopped evaluating a policy (a hung or dead leader, a shard no one holds).
pub fn overdue(v: &PolicyView, now: Ts) -> Option<Dur> {
    overdue_of(v.spec.as_ref()?, v.status.as_ref()?, now)
}

/// [`overdue`] from a policy's spec and status, borrowed.
pub fn overdue_of(spec: &ScalePolicySpec, status: &ScalePolicyStatus, now: Ts) -> Option<Dur> {
    if spec.mode == Mode::Paused {
        return None;
    }
    let interval = Dur::parse(&spec.interval).ok()?;
    let last = Ts::parse_rfc3339(&status.last_decision.as_ref()?.time).ok()?;
    let age = now - last;
    (age > interval + interval).then_some(age)
}

fn health(v: &PolicyView, resizing: bool, short: bool) -> Health {
    let h = |level, text: &str| Health { level, text: text.to_string() };
    if v.status.as_ref().is_none_or(|s| s.conditions.is_empty()) {
        return h(Level::Pending, "NotEvaluated");
    }
    if let Some(c) = v.is_false("Ready") {
        return h(Level::Error, &c.reason);
    }
    if let Some(c) = v.is_false("AbleToScale").filter(|c| BROKEN.contains(&c.reason.as_str())) {
        return h(Level::Error, &c.reason);
    }
    if let Some(c) = v.is_false("ScalingActive") {
        return h(Level::Warn, &c.reason);
    }
    if resizing {
        return h(Level::Busy, "Resizing");
    }
    // The chart shades this; OK next to a shaded shortfall would contradict it.
    if short {
        return h(Level::Warn, "Shortfall");
    }
    if let Some(c) = v.condition("ScalingLimited").filter(|c| c.status == "True") {
        return h(Level::Warn, &format!("Limited:{}", c.reason));
    }
    h(Level::Ok, "OK")
}

/// A duration for people: "45s", "12m", "3h5m", "2d4h". Rounded up below a minute so that a
/// timer with 200 ms left still shows "1s", and truncated above.
pub fn human(d: Dur) -> String {
    let s = (d.0.max(0) + 999) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 if (s % 3600) / 60 == 0 => format!("{}h", s / 3600),
        3600..86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ if (s % 86_400) / 3600 == 0 => format!("{}d", s / 86_400),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A clock time for people, in UTC: "14:32 UTC" on the day of `now`, else with the date.
pub fn clock_time(t: Ts, now: Ts) -> String {
    let (Ok(a), Ok(b)) = (jiff::Timestamp::from_millisecond(t.0), jiff::Timestamp::from_millisecond(now.0)) else {
        return t.to_rfc3339();
    };
    if a.strftime("%Y-%m-%d").to_string() == b.strftime("%Y-%m-%d").to_string() {
        a.strftime("%H:%M UTC").to_string()
    } else {
        a.strftime("%Y-%m-%d %H:%M UTC").to_string()
    }
}

/// "until 14:32 UTC (12m left)".
fn until(t: &Timer, now: Ts) -> String {
    let at = Ts::parse_rfc3339(&t.until).map(|at| clock_time(at, now)).unwrap_or_else(|_| t.until.clone());
    format!("until {at} ({} left)", human(Dur(t.left_secs * 1000)))
}

/// A metric value with three significant digits, trailing zeros dropped: "0.82", "1.5", "5000".
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        return format!("{v:.0}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Why the policy is or is not scaling at `now`, most important first: what stops it
/// altogether, then what each direction waits for, then what the last decision said.
pub fn why(v: &PolicyView, now: Ts) -> Vec<String> {
    let Some(st) = v.status.as_ref() else {
        return vec!["not evaluated yet: the controller has written no status for this policy".into()];
    };
    let r = row(v, now);
    let mut out = Vec::new();
    if let Some(age) = overdue(v, now).filter(|_| r.health.text == "Overdue") {
        let interval = v.spec.as_ref().map(|s| s.interval.as_str()).unwrap_or_default();
        out.push(format!(
            "overdue: last evaluated {} ago, every {interval} expected; is the controller running, and does a replica hold its Lease (the leader's, or its shard's)?",
            human(age)
        ));
    }
    let last = st.last_decision.as_ref();
    match v.mode() {
        Some(Mode::Paused) => out.push("paused: spec.mode is Paused; nothing is evaluated or resized".into()),
        Some(Mode::DryRun) => match last.filter(|d| d.from != d.to) {
            Some(d) => out.push(format!(
                "dry run: would resize {} -> {} ({}), but DryRun never touches the target",
                d.from, d.to, d.reason
            )),
            None => out.push("dry run: decisions are reported, never applied".into()),
        },
        _ => {}
    }
    if let Some(c) = v.is_false("Ready") {
        out.push(format!("not ready ({}): {}", c.reason, c.message));
    }
    // A target that cannot be read sets both conditions alike; say it once.
    if let Some(c) = v
        .is_false("AbleToScale")
        .filter(|c| BROKEN.contains(&c.reason.as_str()))
        .filter(|c| v.is_false("Ready").is_none_or(|r| r.message != c.message))
    {
        out.push(format!("cannot resize ({}): {}", c.reason, c.message));
    }
    if let Some(f) = st.state.as_ref().and_then(|s| s.in_flight.as_ref()) {
        let op = f.operation.as_deref().map(|o| format!(", operation {}", shown_operation(o))).unwrap_or_default();
        out.push(format!("resize in progress: {} -> {}{op}, started {} ago", f.from, f.to, human(now - f.started_at)));
    } else if let Some(op) = &st.operation {
        out.push(format!("resize in progress: operation {}", shown_operation(op)));
    }
    if let Some(p) = st.operation_progress.as_ref().filter(|_| st.operation.is_some()) {
        out.push(format!("  {p}"));
    }
    if let Some(c) = v.is_false("ScalingActive").filter(|c| c.reason != "Paused") {
        out.push(format!("holding the size ({}): {}", c.reason, c.message));
    }

    let reason = last.map(|d| d.reason.as_str()).unwrap_or_default();
    let mut out_blocks = Vec::new();
    if let Some(t) = &r.cooldown_out {
        out_blocks.push(format!("cooldown {}", until(t, now)));
    }
    if reason == "AtMaxSize" {
        out_blocks.push(format!("at maxSize {}", r.current.unwrap_or_default()));
    }
    let mut in_blocks = Vec::new();
    if let Some(t) = &r.cooldown_in {
        in_blocks.push(format!("cooldown {}", until(t, now)));
    }
    if let Some(t) = &r.spike_hold {
        in_blocks.push(format!("spike hold {}", until(t, now)));
    }
    match (reason, last) {
        ("AtStorageFloor", Some(d)) => in_blocks.push(format!("storage floor {} nodes", d.to)),
        ("StorageFloorUnknown", _) => in_blocks.push("storage utilization is unknown".into()),
        ("AtMinSize", Some(d)) => in_blocks.push(format!("at minSize {}", d.from)),
        ("AwaitingFreshData", _) => in_blocks.push("waiting for a fresh sample".into()),
        ("StabilizingScaleIn", _) => {
            in_blocks.push("a higher size was recommended within the stabilization window".into())
        }
        ("ResizeBudgetExhausted", Some(d)) => {
            out_blocks.push(d.message.clone());
            in_blocks.push(d.message.clone());
        }
        _ => {}
    }
    if !out_blocks.is_empty() {
        out.push(format!("scale-out blocked: {}", out_blocks.join("; ")));
    }
    if !in_blocks.is_empty() {
        out.push(format!("scale-in blocked: {}", in_blocks.join("; ")));
    }
    if let Some(c) = v.condition("ScalingLimited").filter(|c| c.status == "True") {
        out.push(format!("limited ({}): {}", c.reason, c.message));
    }
    out.extend(figures(v, &r));
    if let Some(d) = last {
        let age = r.last.as_ref().and_then(|l| l.age_secs).map(|s| format!(" ({} ago)", human(Dur(s * 1000))));
        out.push(format!("last decision{}: {}", age.unwrap_or_default(), d.message));
    }
    // Per-cluster sizing: each cluster's own decision, what it was applied, and why.
    for m in st.members.iter() {
        if let (Some(own), Some(applied)) = (m.desired_size, m.applied_size) {
            let why = m.message.as_deref().or(m.reason.as_deref()).unwrap_or_default();
            out.push(format!("cluster {} at {}: own decision {own}, applied {applied}: {why}", m.name, m.size));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|l| seen.insert(l.clone()));
    out
}

/// What the numbers mean when they seem to disagree: a shortfall, nodes still warming up, an
/// effective target under the target, a forecast. One line each, in words.
pub fn figures(v: &PolicyView, r: &Row) -> Vec<String> {
    let mut out = Vec::new();
    let cells = cells(v);
    let from = v.status.as_ref().and_then(|s| s.last_decision.as_ref()).map(|d| d.from);
    if let Some(s) = &r.shortfall {
        let m = cells.iter().find(|c| c.name == s.metric);
        let over = m
            .and_then(|m| Some((m.observed?, m.target)))
            .filter(|_| m.is_some_and(|m| m.per_node))
            .map(|(o, t)| {
                format!(
                    " ({} observed per serving node, {:.0}% above the target {})",
                    num(o),
                    (o / t - 1.0) * 100.0,
                    num(t)
                )
            })
            .unwrap_or_default();
        out.push(format!(
            "shortfall: the newest {} sample needs {} nodes at the target and {} were serving{over}",
            s.metric,
            num(s.needed),
            s.serving
        ));
    }
    if let (Some(serving), Some(from)) = (r.serving, from)
        && serving < from
    {
        out.push(format!(
            "{} of {from} nodes are still warming up or not yet seen serving in the metric: observed values are per serving node ({serving}); smoothed values are demand spread over all {from}, which is what the size is computed from",
            from - serving
        ));
    }
    let spec_metric = |name: &str| v.spec.as_ref().and_then(|s| s.metrics.iter().find(|m| m.name == name));
    for m in &cells {
        if let Some(e) = m.effective_target.filter(|e| *e < m.target * (1.0 - 1e-6)) {
            let head = spec_metric(&m.name).map(|s| &s.headroom);
            let limit =
                spec_metric(&m.name).map_or(m.target * crate::api::DEFAULT_LIMIT_RATIO, |s| limit_of(s, m.target));
            let q = head.map_or(String::new(), |h| format!("{}% of ", num(h.quantile * 100.0)));
            let noise = m.noise.map_or(String::new(), |n| {
                format!("single samples scatter ±{}% around the smoothed value, so ", num(n * 100.0))
            });
            out.push(format!(
                "{}: sized on an effective target of {} instead of {}: {noise}headroom keeps {q}samples under the limit {} (spec.metrics[].headroom)",
                m.name,
                num(e),
                num(m.target),
                num(limit)
            ));
        }
        if let Some(f) = m.forecast {
            let acts = v.spec.as_ref().is_none_or(|s| s.forecast.mode == crate::api::ForecastMode::Act);
            let demand = m
                .forecast_demand
                .map(|d| format!(" to {}{}", num(d), if m.per_node { " per node" } else { "" }))
                .unwrap_or_default();
            let what = if acts {
                "the policy scales out ahead of it"
            } else {
                "report only (spec.forecast.mode: report), not acted on"
            };
            out.push(format!(
                "{}: the weekly shape forecasts a rise{demand}, which asks for {f} nodes; {what}",
                m.name
            ));
        }
    }
    out
}

/// The detail of one policy, for `-o json|yaml`.
pub fn detail(v: &PolicyView, now: Ts) -> Detail {
    let st = v.status.clone().unwrap_or_default();
    let mut recent = st.recent_decisions.clone();
    if recent.is_empty()
        && let Some(d) = &st.last_decision
    {
        recent.push(d.clone());
    }
    recent.reverse();
    Detail { row: row(v, now), why: why(v, now), conditions: st.conditions, recent_decisions: recent }
}

/// The level single samples of `m` should rarely pass: `headroom.limit`, or `target` (the one
/// the policy holds, see [`crate::spec::target_of`]) × the default limit ratio. The readout's
/// messages and the charts' limit lines both use this.
pub fn limit_of(m: &crate::api::MetricSpec, target: f64) -> f64 {
    m.headroom.limit.unwrap_or(target * crate::api::DEFAULT_LIMIT_RATIO)
}

/// An operation as people read it: a node-pool drain names the nodes it is taking out (its
/// operation name is the plan, `drain:<ms>:<zone>/<node>,...`); any other is shown as it is.
pub fn shown_operation(op: &str) -> String {
    match crate::gcp::drain::Plan::decode(op) {
        Some(plan) => {
            let nodes: Vec<&str> = plan.nodes.iter().map(|(_, n)| n.as_str()).collect();
            format!("drain of {} node(s): {}", nodes.len(), nodes.join(", "))
        }
        None => op.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Dur(200)), "1s");
        assert_eq!(human(Dur::secs(45)), "45s");
        assert_eq!(human(Dur::mins(12) + Dur::secs(30)), "12m");
        assert_eq!(human(Dur::mins(185)), "3h5m");
        assert_eq!(human(Dur::mins(120)), "2h");
        assert_eq!(human(Dur::mins(60 * 52)), "2d4h");
        assert_eq!(human(Dur(-5)), "0s");
    }

    #[test]
    fn numbers_keep_three_digits() {
        assert_eq!(num(0.8234), "0.823");
        assert_eq!(num(0.81), "0.81");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(0.01234), "0.0123");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(5000.4), "5000");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), "-");
    }

    #[test]
    fn clock_time_shows_the_date_only_on_another_day() {
        let now = Ts::parse_rfc3339("2026-11-23T14:20:00Z").unwrap();
        assert_eq!(clock_time(Ts::parse_rfc3339("2026-11-23T14:32:10Z").unwrap(), now), "14:32 UTC");
        assert_eq!(clock_time(Ts::parse_rfc3339("2026-11-24T00:10:00Z").unwrap(), now), "2026-11-24 00:10 UTC");
    }

    /// A policy backing off after failed resizes, or whose resizes had no effect, cannot resize:
    /// its health is an error, not OK, and the readout says why.
    #[test]
    fn backoff_and_no_effect_are_errors() {
        for reason in ["ResizeBackoff", "ResizeHadNoEffect"] {
            let status: ScalePolicyStatus = serde_json::from_value(serde_json::json!({
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "evaluating",
                     "lastTransitionTime": "2026-11-23T14:00:00Z"},
                    {"type": "AbleToScale", "status": "False", "reason": reason,
                     "message": "resize to 9 waits: 3 earlier resize(s) failed (last: 403)",
                     "lastTransitionTime": "2026-11-23T14:00:00Z"},
                    {"type": "ScalingActive", "status": "True", "reason": reason, "message": "x",
                     "lastTransitionTime": "2026-11-23T14:00:00Z"}
                ]
            }))
            .unwrap();
            let v = PolicyView { namespace: "data".into(), name: "orders".into(), spec: None, status: Some(status) };
            let h = health(&v, false, false);
            assert_eq!((h.level, h.text.as_str()), (Level::Error, reason));
        }
    }
}
