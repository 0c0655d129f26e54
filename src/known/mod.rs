//! Known events around the core's [`crate::core::known`]: the spec's `schedules` and
//! `overrides` checked and converted (time zones are looked up here, the only IO) and their state
//! in status. The commands that edit them (`ebbflow override`, `pause`, `resume`) are in
//! [`crate::commands`], which checks the edited policy through `spec`; `spec` calls this module.

use jiff::tz::TimeZone;

use crate::api::{self, ActiveStatus, PauseKind, ScalePolicySpec};
use crate::core::known::{Active, Cron, Known, Override, Pause, Recurrence, Schedule, Source};
use crate::core::{Dur, Ts};

/// Longest window: a month. Longer "windows" are bounds, and belong in minSize and maxSize.
pub const MAX_WINDOW: Dur = Dur(31 * 24 * 3_600_000);

/// Longest override reason, in characters: it is a sentence for a person, shown in status,
/// Events and the dashboard, none of which should carry a document.
pub const MAX_REASON: usize = 1024;
/// Longest override owner, in characters (an e-mail address is at most 254).
pub const MAX_OWNER: usize = 254;

/// A name Kubernetes would take as a label (RFC 1123): 1-63 lowercase letters, digits and '-',
/// starting and ending with a letter or digit.
pub fn is_label(name: &str) -> bool {
    let b = name.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-')
}

/// Look up an IANA time zone, with an error that says what is accepted.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    if name.trim().is_empty() {
        return Err("must not be empty; use an IANA name such as \"Europe/Berlin\" or \"UTC\"".into());
    }
    TimeZone::get(name).map_err(|_| {
        format!("\"{name}\" is not a time zone in the tz database; use an IANA name such as \"Europe/Berlin\", \"Asia/Tokyo\" or \"UTC\"")
    })
}

/// Parse an RFC 3339 timestamp, with an example in the error.
pub fn timestamp(text: &str) -> Result<Ts, String> {
    Ts::parse_rfc3339(text)
        .map_err(|_| format!("\"{text}\" is not an RFC 3339 time with an offset; e.g. \"2026-12-24T18:00:00+09:00\""))
}

/// Check the spec's schedules and overrides and convert them; every problem goes to `fail` with
/// its field path. `warmup` is the scale-out warm-up the default lead time builds on.
pub fn known_from_spec(spec: &ScalePolicySpec, warmup: Dur, fail: &mut dyn FnMut(String, String)) -> Known {
    let mut known = Known::default();
    let default_lead = warmup + Dur::mins(api::FORECAST_OPERATION_TIME_MINUTES);
    for (i, s) in spec.schedules.iter().enumerate() {
        let base = format!("spec.schedules[{i}]");
        let mut ok = true;
        let mut bad = |field: &str, message: String| {
            ok = false;
            fail(format!("{base}{field}"), message);
        };
        if s.name.trim().is_empty() {
            bad(".name", "must not be empty; e.g. \"friday-match\"".into());
        }
        if spec.schedules[..i].iter().any(|o| o.name == s.name) {
            bad(".name", format!("\"{}\" is used by an earlier schedule; names must be unique", s.name));
        }
        let recurrence = match (&s.cron, &s.start) {
            (Some(cron), None) => {
                let cron = Cron::parse(cron).map_err(|e| bad(".cron", e));
                let zone = match &s.time_zone {
                    Some(z) => zone(z).map_err(|e| bad(".timeZone", e)),
                    None => {
                        bad(".timeZone", "is required with cron; e.g. \"Europe/Berlin\"".into());
                        Err(())
                    }
                };
                match (cron, zone) {
                    (Ok(cron), Ok(zone)) => Some(Recurrence::Cron { cron, zone }),
                    _ => None,
                }
            }
            (None, Some(start)) => {
                if s.time_zone.is_some() {
                    bad(".timeZone", "applies to cron only; a start carries its own offset".into());
                }
                timestamp(start).map_err(|e| bad(".start", e)).ok().map(Recurrence::Once)
            }
            _ => {
                bad("", "set exactly one of cron (with timeZone) for a recurring window or start for a one-off".into());
                None
            }
        };
        let duration = match Dur::parse(&s.duration) {
            Ok(d) if d > Dur::ZERO && d <= MAX_WINDOW => d,
            Ok(_) => {
                bad(".duration", format!("must be greater than 0 and at most 744h (got \"{}\")", s.duration));
                Dur::ZERO
            }
            Err(e) => {
                bad(".duration", e);
                Dur::ZERO
            }
        };
        let lead = match &s.lead_time {
            Some(t) => Dur::parse(t).map_err(|e| bad(".leadTime", e)).unwrap_or(Dur::ZERO),
            None => default_lead,
        };
        if s.min_size.is_none() && s.max_size.is_none() {
            bad("", "sets no bound: set minSize and/or maxSize".into());
        }
        if s.min_size == Some(0) || s.max_size == Some(0) {
            bad(if s.min_size == Some(0) { ".minSize" } else { ".maxSize" }, "must be at least 1".into());
        }
        if let Some(m) = s.min_size.filter(|&m| m > spec.max_size) {
            bad(".minSize", format!("{m} is above spec.maxSize ({}); lower it or raise spec.maxSize", spec.max_size));
        }
        if let Some(m) = s.max_size.filter(|&m| m < spec.min_size) {
            bad(".maxSize", format!("{m} is below spec.minSize ({}); raise it or lower spec.minSize", spec.min_size));
        }
        // Whether two cron windows ever overlap depends on the calendar, so any pair whose
        // minimum lies above the other's maximum is refused.
        for (j, o) in spec.schedules.iter().enumerate().filter(|&(j, _)| j != i) {
            if let (Some(lo), Some(hi)) = (s.min_size, o.max_size)
                && lo > hi
            {
                bad(
                    ".minSize",
                    format!(
                        "{lo} is above spec.schedules[{j}].maxSize ({hi}): if the windows overlapped, the minimum would lie above the maximum"
                    ),
                );
            }
        }
        if let (true, Some(recurrence)) = (ok, recurrence) {
            known.schedules.push(Schedule {
                name: s.name.clone(),
                recurrence,
                duration,
                min_size: s.min_size,
                max_size: s.max_size,
                lead,
            });
        }
    }
    for (i, o) in spec.overrides.iter().enumerate() {
        let base = format!("spec.overrides[{i}]");
        let mut ok = true;
        let mut bad = |field: &str, message: String| {
            ok = false;
            fail(format!("{base}{field}"), message);
        };
        if o.name.trim().is_empty() {
            bad(".name", "must not be empty; e.g. \"campaign\"".into());
        } else if !is_label(&o.name) {
            // The name lands in Events, status, logs and the CLI's --name; a path or spaces in it
            // confuse every one of them.
            bad(
                ".name",
                format!(
                    "{} is not a lowercase name: at most 63 letters a-z, digits and '-', starting and ending with a letter or digit; e.g. \"campaign\"",
                    crate::excerpt::quoted(&o.name)
                ),
            );
        }
        if spec.overrides[..i].iter().any(|p| p.name == o.name) {
            bad(".name", format!("\"{}\" is used by an earlier override; names must be unique", o.name));
        }
        if o.owner.trim().is_empty() {
            bad(".owner", "must say who set it; e.g. \"alice@example.com\"".into());
        }
        if o.reason.trim().is_empty() {
            bad(".reason", "must say why; e.g. \"Christmas campaign\"".into());
        }
        for (field, text, most) in [(".owner", &o.owner, MAX_OWNER), (".reason", &o.reason, MAX_REASON)] {
            let n = text.chars().count();
            if n > most {
                bad(
                    field,
                    format!("is {n} characters long; at most {most} (it is shown in status, Events and the dashboard)"),
                );
            }
        }
        let until = timestamp(&o.until).map_err(|e| bad(".until", e)).ok();
        let since = o.since.as_deref().and_then(|t| timestamp(t).map_err(|e| bad(".since", e)).ok());
        if let (Some(a), Some(b)) = (since, until)
            && a >= b
        {
            bad(".until", format!("{} is not after since ({})", o.until, a.to_rfc3339()));
        }
        if o.min_size.is_none() && o.max_size.is_none() && o.pause.is_none() {
            bad("", "changes nothing: set minSize, maxSize and/or pause".into());
        }
        for (field, v) in [(".minSize", o.min_size), (".maxSize", o.max_size)] {
            match v {
                Some(0) => bad(field, "must be at least 1".into()),
                Some(m) if m > spec.max_size => bad(
                    field,
                    format!("{m} is above spec.maxSize ({}); lower it or raise spec.maxSize first", spec.max_size),
                ),
                _ => {}
            }
        }
        if let (Some(lo), Some(hi)) = (o.min_size, o.max_size)
            && lo > hi
        {
            bad(".minSize", format!("{lo} is above maxSize ({hi})"));
        }
        if let (true, Some(until)) = (ok, until) {
            known.overrides.push(Override {
                name: o.name.clone(),
                owner: o.owner.clone(),
                reason: o.reason.clone(),
                since,
                until,
                min_size: o.min_size,
                max_size: o.max_size,
                pause: o.pause.map(|p| match p {
                    PauseKind::ScaleIn => Pause::ScaleIn,
                    PauseKind::ScaleOut => Pause::ScaleOut,
                    PauseKind::Freeze => Pause::Freeze,
                }),
            });
        }
    }
    known
}

/// What is in effect, as status entries.
pub fn active_status(active: &Active) -> Vec<ActiveStatus> {
    active
        .entries
        .iter()
        .map(|e| ActiveStatus {
            kind: match e.source {
                Source::Schedule => "Schedule".into(),
                Source::Override => "Override".into(),
            },
            name: e.name.clone(),
            effect: e.effect.clone(),
            from: e.from.map(Ts::to_rfc3339),
            until: e.until.to_rfc3339(),
        })
        .collect()
}

/// One line for `kubectl get sp` and the text readout: the first entry, and how many more.
pub fn summary(active: &[ActiveStatus]) -> Option<String> {
    let first = active.first()?;
    let more = if active.len() > 1 { format!(" (+{} more)", active.len() - 1) } else { String::new() };
    Some(format!("{} {} ({}) until {}{more}", first.kind.to_lowercase(), first.name, first.effect, first.until))
}

#[cfg(test)]
pub(crate) mod tests;
