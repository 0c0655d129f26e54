//! What happened, when and why: the events of a policy (or a fleet) over the last 24 hours,
//! newest first, each with its reason in words. Read from status only (its resizes, recent
//! decisions and conditions), so every replica and `ebbflow status NAME --events` tell the
//! same story.

use schemars::JsonSchema;
use serde::Serialize;

use super::model::{PolicyView, clock_time, human};
use crate::core::{Dur, Ts};

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Kind {
    /// A resize the controller started (with how long it took, or why it failed).
    Resize,
    /// A decision that changed what the policy does: a new reason or a new size asked for
    /// (guard blocks, spikes, holds, dry-run proposals).
    Decision,
    /// A condition that went bad (an error, missing data, a limit) and is still so.
    Problem,
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When (RFC 3339).
    pub time: String,
    /// `namespace/name`.
    pub policy: String,
    /// Resize, Decision or Problem.
    pub kind: Kind,
    /// CamelCase reason (a `Reason` name or a condition reason).
    pub reason: String,
    /// Size before, when sizes are involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    /// Size after (or asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// Seconds a resize took, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_secs: Option<u64>,
    /// The event in words.
    pub text: String,
}

/// How long the timeline reaches back.
pub const SPAN: Dur = Dur(24 * 3_600_000);

/// Why a resize was made, in words.
pub fn reason_words(reason: &str) -> &'static str {
    match reason {
        "ScaleOut" => "the smoothed load was above the target",
        "ScaleOutOnSpike" => "a sustained spike",
        "ScaleOutAhead" => "the weekly shape forecast a rise",
        "ScaleIn" => "the load stayed below the target for the stabilization window",
        "RaiseToMinSize" => "the size was below minSize",
        "LowerToMaxSize" => "the size was above maxSize",
        "RaiseToStorageFloor" => "the storage needed more nodes",
        _ => "see the decision",
    }
}

/// The events of one policy within [`SPAN`] of `now`, newest first.
pub fn events(v: &PolicyView, now: Ts) -> Vec<Event> {
    let Some(st) = v.status.as_ref() else { return Vec::new() };
    let policy = v.key();
    let recent = |t: &str| Ts::parse_rfc3339(t).is_ok_and(|t| now - t <= SPAN);
    let mut out = Vec::new();
    let resizes = st.history.as_ref().map(|h| h.resizes.as_slice()).unwrap_or_default();
    for r in resizes.iter().filter(|r| recent(&r.time)) {
        let outcome = match (&r.error, r.took_secs) {
            (Some(e), _) => format!("; failed: {e}"),
            // Operation times are minutes and seconds; "1m" would hide half of a 95 s resize.
            (None, Some(s)) if s < 3600 && s % 60 != 0 && s > 60 => format!("; took {}m{}s", s / 60, s % 60),
            (None, Some(s)) => format!("; took {}", human(Dur(s as i64 * 1000))),
            (None, None) => "; still running".into(),
        };
        out.push(Event {
            time: r.time.clone(),
            policy: policy.clone(),
            kind: Kind::Resize,
            reason: r.reason.clone(),
            from: Some(r.from),
            to: Some(r.to),
            took_secs: r.took_secs,
            text: format!("resized {} → {}: {}{outcome}", r.from, r.to, reason_words(&r.reason)),
        });
    }
    // A decision that started a resize is told by its resize entry.
    let started = |t: &str| resizes.iter().any(|r| r.time == t);
    for d in st.recent_decisions.iter().filter(|d| recent(&d.time) && !started(&d.time)) {
        out.push(Event {
            time: d.time.clone(),
            policy: policy.clone(),
            kind: Kind::Decision,
            reason: d.reason.clone(),
            from: Some(d.from),
            to: (d.to != d.from).then_some(d.to),
            took_secs: None,
            text: d.message.clone(),
        });
    }
    for c in &st.conditions {
        let bad = if c.type_ == "ScalingLimited" { c.status == "True" } else { c.status == "False" };
        // Timers and running resizes are told by the decisions; these are the problems.
        let benign = ["ScaleOutCooldown", "ScaleInCooldown", "SpikeHold", "ResizeInProgress", "DryRun", "Paused"];
        if bad && !benign.contains(&c.reason.as_str()) && recent(&c.last_transition_time) {
            out.push(Event {
                time: c.last_transition_time.clone(),
                policy: policy.clone(),
                kind: Kind::Problem,
                reason: c.reason.clone(),
                from: None,
                to: None,
                took_secs: None,
                text: format!("{} went {} ({}): {}", c.type_, c.status, c.reason, c.message),
            });
        }
    }
    sort(&mut out);
    out
}

/// The events of every policy, newest first, at most `limit`.
pub fn fleet(views: &[PolicyView], now: Ts, limit: usize) -> Vec<Event> {
    let mut out: Vec<Event> = views.iter().flat_map(|v| events(v, now)).collect();
    sort(&mut out);
    out.truncate(limit);
    out
}

fn sort(events: &mut [Event]) {
    // RFC 3339 in UTC sorts as text only at one precision; sort by the parsed time.
    let key = |e: &Event| Ts::parse_rfc3339(&e.time).map_or(i64::MIN, |t| t.0);
    events.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.policy.cmp(&b.policy)));
}

/// The timeline as text, for `ebbflow status NAME --events`.
pub fn text(events: &[Event], now: Ts) -> String {
    if events.is_empty() {
        return "No events in the last 24 hours.\n".into();
    }
    let rows: Vec<[String; 3]> = events
        .iter()
        .map(|e| {
            let when = Ts::parse_rfc3339(&e.time)
                .map(|t| format!("{} ({} ago)", clock_time(t, now), human(now - t)))
                .unwrap_or_else(|_| e.time.clone());
            let kind = match e.kind {
                Kind::Resize => "resize",
                Kind::Decision => "decision",
                Kind::Problem => "problem",
            };
            [when, format!("{kind} {}", e.reason), e.text.clone()]
        })
        .collect();
    let w0 = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
    let multi = events.iter().any(|e| e.policy != events[0].policy);
    let mut o = String::new();
    for (r, e) in rows.iter().zip(events) {
        let who = if multi { format!("{}  ", e.policy) } else { String::new() };
        o.push_str(&format!("{:<w0$}  {who}{:<w1$}  {}\n", r[0], r[1], r[2]));
    }
    o
}
