//! What happened, when and why: the events of a policy (or a fleet) over the last 24 hours,
//! newest first, each with its reason in words. Read from status only (its resizes, recent
//! decisions and conditions), so every replica and `ebbflow status NAME --events` tell the
//! same story.

use schemars::JsonSchema;
use serde::Serialize;

use super::model::{PolicyView, clock_time, human};
use crate::api::ScalePolicyStatus;
use crate::core::state::CLOCK_SKEW_TOLERANCE;
use crate::core::{Dur, PolicyState, Ts};

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
        "ScaleOutOnRamp" => "the load climbed steadily",
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
    let starts: Vec<Option<Ts>> = resizes.iter().map(|r| Ts::parse_rfc3339(&r.time).ok()).collect();
    let flying = in_flight_starts(st);
    for (i, r) in resizes.iter().enumerate().filter(|(_, r)| recent(&r.time)) {
        let (outcome, took_secs) = match (&r.error, r.took_secs) {
            (Some(e), _) => (format!("; failed: {e}"), r.took_secs),
            (None, Some(s)) => (took(s), Some(s)),
            (None, None) => untimed(st, &starts, i, &flying, now),
        };
        out.push(Event {
            time: r.time.clone(),
            policy: policy.clone(),
            kind: Kind::Resize,
            reason: r.reason.clone(),
            from: Some(r.from),
            to: Some(r.to),
            took_secs,
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

/// "; took 1m35s": operation times are minutes and seconds, and "1m" would hide half of a 95 s
/// resize.
fn took(s: u64) -> String {
    if s < 3600 && !s.is_multiple_of(60) && s > 60 {
        format!("; took {}m{}s", s / 60, s % 60)
    } else {
        format!("; took {}", human(Dur(s as i64 * 1000)))
    }
}

/// When each resize that status shows in flight now was started: the target's (the core state's)
/// and each member's. A status that carries no core state at all says only whether some resize
/// runs (its operation, or AbleToScale held by ResizeInProgress); then the newest resize is the
/// one running, which the latest possible start stands for.
fn in_flight_starts(st: &ScalePolicyStatus) -> Vec<Ts> {
    let states: Vec<&PolicyState> =
        st.state.iter().chain(st.members.iter().filter_map(|m| m.core_state.as_ref())).collect();
    if states.is_empty() {
        let resizing = st.operation.is_some()
            || st
                .conditions
                .iter()
                .any(|c| c.type_ == "AbleToScale" && c.status == "False" && c.reason == "ResizeInProgress");
        return if resizing { vec![Ts(i64::MAX)] } else { Vec::new() };
    }
    states.iter().filter_map(|s| s.in_flight.as_ref().map(|f| f.started_at)).collect()
}

/// The outcome of the `i`th resize of the day when status did not time it. The day's history
/// times a resize only when the tick that saw it end wrote so, and some ticks do not (one that
/// finishes a resize and starts the next, or a replicated instance whose resizing cluster is not
/// the one its decision is told by): judged by that alone, a finished resize read "still
/// running" all day. So it is running only while status shows a resize in flight that it can
/// be: the newest resize started at or before that one began (one target runs one resize at a
/// time). Otherwise it ended, and the core's record of finished resizes, when it still holds
/// one between this start and the next, tells how long it took.
fn untimed(st: &ScalePolicyStatus, starts: &[Option<Ts>], i: usize, flying: &[Ts], now: Ts) -> (String, Option<u64>) {
    // The entry written for a start has its time; failing that (a start clamped after a clock
    // skew), the newest entry up to as far past it as the core tolerates skew.
    let tolerance = CLOCK_SKEW_TOLERANCE.0;
    let newest_by = |s: Ts| {
        starts
            .iter()
            .rposition(|t| *t == Some(s))
            .or_else(|| starts.iter().rposition(|t| t.is_some_and(|t| t.0 <= s.0.saturating_add(tolerance))))
    };
    if flying.iter().any(|&s| newest_by(s) == Some(i)) {
        return ("; still running".into(), None);
    }
    let Some(start) = starts.get(i).copied().flatten() else {
        return ("; no longer running (its end was not recorded)".into(), None);
    };
    let next = starts.iter().skip(i + 1).flatten().copied().find(|t| *t >= start).unwrap_or(now);
    let finished = st
        .state
        .iter()
        .chain(st.members.iter().filter_map(|m| m.core_state.as_ref()))
        .flat_map(|s| &s.resizes)
        .map(|r| r.finished_at)
        .filter(|t| *t >= start && *t <= next)
        .max();
    match finished {
        Some(end) => {
            let secs = ((end - start).0.max(0) / 1000) as u64;
            (took(secs), Some(secs))
        }
        None => ("; no longer running (its end was not recorded)".into(), None),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MemberStatus, ResizeEntry, StatusHistory};
    use crate::core::state::{InFlight, ResizeRecord};

    fn t0() -> Ts {
        Ts::parse_rfc3339("2026-11-23T14:00:00Z").expect("time")
    }

    fn entry(at: Ts, from: u32, to: u32) -> ResizeEntry {
        ResizeEntry { time: at.to_rfc3339(), from, to, reason: "ScaleOut".into(), took_secs: None, error: None }
    }

    fn flight(from: u32, to: u32, at: Ts) -> InFlight {
        InFlight { from, to, started_at: at, operation: Some("op".into()), confirm_by: None }
    }

    fn status(resizes: Vec<ResizeEntry>, state: Option<PolicyState>) -> ScalePolicyStatus {
        ScalePolicyStatus {
            history: Some(StatusHistory { resizes, ..StatusHistory::default() }),
            state,
            ..ScalePolicyStatus::default()
        }
    }

    /// The resize events of `status` at `now`, oldest first.
    fn resizes(status: ScalePolicyStatus, now: Ts) -> Vec<Event> {
        let v = PolicyView { namespace: "data".into(), name: "orders".into(), spec: None, status: Some(status) };
        let mut out: Vec<Event> = events(&v, now).into_iter().filter(|e| e.kind == Kind::Resize).collect();
        out.reverse();
        out
    }

    /// The tick that finished the scale-out 3 → 5 started the next, 5 → 7, so status never
    /// timed the first: the timeline said "still running" for it all day. Only the resize in
    /// flight runs; the first took what the core's record of it says.
    #[test]
    fn a_resize_finished_by_the_tick_that_started_the_next_reads_finished() {
        let (a, b) = (t0(), t0() + Dur::mins(5));
        let state = PolicyState {
            in_flight: Some(flight(5, 7, b)),
            resizes: vec![ResizeRecord::new(3, 5, b)],
            ..PolicyState::default()
        };
        let out = resizes(status(vec![entry(a, 3, 5), entry(b, 5, 7)], Some(state)), b + Dur::mins(1));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].text.ends_with("; took 5m"), "{}", out[0].text);
        assert_eq!(out[0].took_secs, Some(300));
        assert!(out[1].text.ends_with("; still running"), "{}", out[1].text);
        assert_eq!(out[1].took_secs, None);
    }

    /// Nothing in flight: a resize status did not time has ended, whether or not the core still
    /// remembers when; while it is in flight it runs.
    #[test]
    fn an_untimed_resize_runs_only_while_it_is_in_flight() {
        let a = t0();
        let now = a + Dur::mins(30);
        let idle = resizes(status(vec![entry(a, 3, 5)], Some(PolicyState::default())), now);
        assert!(idle[0].text.ends_with("; no longer running (its end was not recorded)"), "{}", idle[0].text);
        let timed = PolicyState { resizes: vec![ResizeRecord::new(3, 5, a + Dur::secs(95))], ..PolicyState::default() };
        let done = resizes(status(vec![entry(a, 3, 5)], Some(timed)), now);
        assert!(done[0].text.ends_with("; took 1m35s"), "{}", done[0].text);
        // A record from before the resize began is another resize's.
        let older = PolicyState { resizes: vec![ResizeRecord::new(2, 3, a - Dur::mins(1))], ..PolicyState::default() };
        let other = resizes(status(vec![entry(a, 3, 5)], Some(older)), now);
        assert!(!other[0].text.contains("took"), "{}", other[0].text);
        let running = PolicyState { in_flight: Some(flight(3, 5, a)), ..PolicyState::default() };
        let run = resizes(status(vec![entry(a, 3, 5)], Some(running)), now);
        assert!(run[0].text.ends_with("; still running"), "{}", run[0].text);
    }

    /// A replicated instance: the decision status tells is one cluster's, which need not be the
    /// cluster that resized. Each member's state says what runs and when it finished.
    #[test]
    fn members_say_whether_their_resize_runs() {
        let a = t0();
        let now = a + Dur::mins(10);
        let member =
            |state: PolicyState| MemberStatus { name: "c2".into(), core_state: Some(state), ..MemberStatus::default() };
        let mut st = status(vec![entry(a, 3, 5)], Some(PolicyState::default()));
        st.members = vec![member(PolicyState { in_flight: Some(flight(3, 5, a)), ..PolicyState::default() })];
        assert!(resizes(st.clone(), now)[0].text.ends_with("; still running"));
        st.members = vec![member(PolicyState {
            resizes: vec![ResizeRecord::new(3, 5, a + Dur::mins(4))],
            ..PolicyState::default()
        })];
        assert!(resizes(st, now)[0].text.ends_with("; took 4m"));
    }

    /// Without any core state in status, an operation (or AbleToScale held by ResizeInProgress)
    /// is all there is to go by: the newest resize runs, the older ones do not.
    #[test]
    fn without_core_state_the_operation_tells() {
        let (a, b) = (t0(), t0() + Dur::mins(5));
        let mut st = status(vec![entry(a, 3, 5), entry(b, 5, 7)], None);
        st.operation = Some("operations/7".into());
        let out = resizes(st.clone(), b + Dur::mins(1));
        assert!(out[0].text.contains("no longer running"), "{}", out[0].text);
        assert!(out[1].text.ends_with("; still running"), "{}", out[1].text);
        st.operation = None;
        let out = resizes(st, b + Dur::mins(1));
        assert!(out.iter().all(|e| !e.text.contains("still running")), "{out:?}");
    }
}
