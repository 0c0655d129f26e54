//! Known events: schedules that move the size bounds for a window, and overrides (owner, reason,
//! expiry) that move the bounds or pause a direction until they expire.
//!
//! Pure: a time zone is a value ([`jiff::tz::TimeZone`], loaded by the caller), `now` is an
//! argument. [`Known::active`] says which bounds and pauses hold at an instant; `decide` applies
//! them, so the controller and the simulator (which passes the trace's timestamps) agree.
//!
//! ## Rules
//! - A schedule narrows the spec's bounds while it is active: its `min` raises the minimum, its
//!   `max` lowers the maximum. The spec's bounds stay the outer limits.
//! - A window opens at each start (cron match or the absolute start) and lasts `duration`. The
//!   raised minimum applies from `start − lead` (so the capacity serves when the window opens);
//!   the lowered maximum applies from `start` only.
//! - Overlapping schedules: the highest minimum and the lowest maximum win.
//! - An override replaces the bounds while it is active (several: highest minimum, lowest
//!   maximum), and a pause blocks its direction. When an override's maximum is below a schedule's
//!   minimum, the override wins: it is the newer, explicit word of a person.
//! - Expired overrides are ignored: the spec's bounds (and active schedules) apply again.
//!
//! ## Daylight-saving time
//! Cron fields are matched on the local wall clock of the schedule's zone, each local day once:
//! - A local time that does not exist (02:30 on the spring-forward day in Europe) starts the
//!   window at the same offset after the gap: 02:30 CET does not exist, the window opens at
//!   03:30 CEST, which is 01:30 UTC, the instant 02:30 would have been without the change.
//! - A local time that happens twice (02:30 on the fall-back day in Europe) starts the window
//!   once, at its first occurrence (02:30 CEST, 00:30 UTC).
//! - The duration is elapsed time: a 3h window over a change lasts three real hours.

use std::sync::Mutex;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Disambiguation, TimeZone};

use crate::time::{Dur, Ts};

/// A five-field cron expression: minute, hour, day of month, month, day of week.
///
/// Each field takes `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, and lists of these
/// separated by commas. Months take `JAN`..`DEC`, days of week `SUN`..`SAT` (0 and 7 are both
/// Sunday). As in Vixie cron, when both day fields are restricted, a day matches if either does.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_any: bool,
    weekdays_any: bool,
    text: String,
    /// The fire times of the local days last asked about (see [`Schedule::current`]).
    memo: FireMemo,
}

// By hand, to leave the memo out: it is a cache, not part of the expression.
impl std::fmt::Debug for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cron")
            .field("minutes", &self.minutes)
            .field("hours", &self.hours)
            .field("days", &self.days)
            .field("months", &self.months)
            .field("weekdays", &self.weekdays)
            .field("days_any", &self.days_any)
            .field("weekdays_any", &self.weekdays_any)
            .field("text", &self.text)
            .finish()
    }
}

/// The instants a cron fires on a run of local days, kept between evaluations: while a schedule
/// is in use, every evaluation asks about nearly the same instants, and working them out means
/// a time-zone conversion per fire. A cache only: a clone starts empty, and it never makes two
/// crons unequal. Behind a lock because a policy is shared between threads.
#[derive(Default)]
struct FireMemo(Mutex<Option<Fires>>);

impl Clone for FireMemo {
    fn clone(&self) -> FireMemo {
        FireMemo::default()
    }
}

impl PartialEq for FireMemo {
    fn eq(&self, _: &FireMemo) -> bool {
        true
    }
}

impl Eq for FireMemo {}

/// What [`Cron::each_local`] yields for the local days `first - 1 ..= last + 1` in `zone`, and the
/// instants for which those are the days [`Cron::starts`] walks.
struct Fires {
    /// The zone the instants are in.
    zone: TimeZone,
    /// Local date of the start of the range asked about.
    first: Date,
    /// Local date of its end.
    last: Date,
    /// The fire instants, in the order the walk meets them (see [`Cron::each_local`]).
    starts: Vec<Ts>,
    /// Whether `starts` strictly increases (always, but near a daylight-saving gap).
    increasing: bool,
    /// Instants whose local date is `first`.
    from_span: (Ts, Ts),
    /// Instants whose local date is `last`.
    to_span: (Ts, Ts),
}

impl Fires {
    /// The latest start the walk of [`Cron::starts`] over `[from, to]` visits for which `keep`
    /// holds.
    fn latest(&self, from: Ts, to: Ts, keep: impl Fn(Ts) -> bool) -> Option<Ts> {
        if self.increasing {
            // Strictly increasing, the walk visits exactly the fires inside [from, to].
            let begin = self.starts.partition_point(|&at| at < from);
            let end = self.starts.partition_point(|&at| at <= to);
            return self.starts.get(begin..end)?.iter().rev().copied().find(|&at| keep(at));
        }
        let mut walk = Walk { from, to, previous: None };
        let mut found = None;
        for &at in &self.starts {
            match walk.step(at) {
                Step::Skip => {}
                Step::Stop => break,
                Step::Visit => {
                    if keep(at) {
                        found = Some(at);
                    }
                }
            }
        }
        found
    }
}

/// The walk of [`Cron::starts`] over the instants the cron's fields name, oldest local day first.
struct Walk {
    from: Ts,
    to: Ts,
    /// The last instant visited.
    previous: Option<Ts>,
}

/// What the walk does with one instant.
enum Step {
    /// Not in the range, or not after the last one visited.
    Skip,
    /// Past the range: the walk ends.
    Stop,
    /// A start in the range.
    Visit,
}

impl Walk {
    fn step(&mut self, at: Ts) -> Step {
        // A time in a gap moves past it and can land on a later match: once.
        if self.previous.is_some_and(|p| at <= p) || at < self.from {
            return Step::Skip;
        }
        if at > self.to {
            return Step::Stop;
        }
        self.previous = Some(at);
        Step::Visit
    }
}

/// `[t, end)`: instants whose local date in `zone` is `date`, the local date of `t`. It ends at the
/// next local midnight or the zone's next transition, whichever comes first; empty when neither
/// can be worked out. Only later instants are covered: evaluations move forward.
fn day_span(zone: &TimeZone, t: Ts, date: Date) -> (Ts, Ts) {
    let Ok(at) = jiff::Timestamp::from_millisecond(t.0) else { return (t, t) };
    // The offset holds from `at` until the next transition (one at `at` itself is in effect).
    let offset = zone.to_offset(at);
    let Some(midnight) = date.tomorrow().ok().and_then(|d| offset.to_timestamp(d.to_datetime(Time::midnight())).ok())
    else {
        return (t, t);
    };
    let end = match zone.following(at).next() {
        Some(transition) => midnight.min(transition.timestamp()),
        None => midnight,
    };
    (t, Ts(end.as_millisecond()))
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn field(text: &str, name: &str, lo: u32, hi: u32, names: &[&str], first_name: u32) -> Result<(u64, bool), String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(first_name + i as u32);
        }
        let v: u32 = s.parse().map_err(|_| format!("{name} field: \"{s}\" is not a number"))?;
        if v < lo || v > hi {
            return Err(format!("{name} field: {v} is out of range {lo}-{hi}"));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("{name} field: step \"{s}\" is not a number"))?;
                if step == 0 {
                    return Err(format!("{name} field: a step must be at least 1"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            // `5/15` means from 5 to the end in steps of 15, as in Vixie cron.
            (v, if step > 1 { hi } else { v })
        };
        if a > b {
            return Err(format!("{name} field: range {a}-{b} runs backwards"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, text == "*" || text == "?"))
}

impl Cron {
    /// Parse `"30 19 * * MON-FRI"`. The error names the field and the problem.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "needs 5 fields (minute hour day-of-month month day-of-week), got {}; e.g. \"30 19 * * FRI\"",
                parts.len()
            ));
        }
        let (minutes, _) = field(parts[0], "minute", 0, 59, &[], 0)?;
        let (hours, _) = field(parts[1], "hour", 0, 23, &[], 0)?;
        let (days, days_any) = field(parts[2].replace('?', "*").as_str(), "day-of-month", 1, 31, &[], 1)?;
        let (months, _) = field(parts[3], "month", 1, 12, &MONTHS, 1)?;
        let (mut weekdays, weekdays_any) =
            field(parts[4].replace('?', "*").as_str(), "day-of-week", 0, 7, &WEEKDAYS, 0)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        Ok(Cron {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_any,
            weekdays_any,
            text: parts.join(" "),
            memo: FireMemo::default(),
        })
    }

    /// The expression as written (fields separated by single spaces).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the cron fires on this local date (any time of it).
    pub fn matches_date(&self, d: Date) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }

    /// Whether the cron fires at this local wall-clock minute.
    pub fn matches(&self, t: DateTime) -> bool {
        self.matches_date(t.date())
            && self.hours & (1 << t.hour()) != 0
            && self.minutes & (1 << t.minute()) != 0
            && t.second() == 0
    }

    /// Each instant the cron fires in `zone` within `[from, to]`, oldest first, until `visit`
    /// returns false. Each local day is matched once (see the module's DST rules).
    pub fn starts(&self, zone: &TimeZone, from: Ts, to: Ts, mut visit: impl FnMut(Ts) -> bool) {
        let (Some(first), Some(last)) = (local_date(zone, from), local_date(zone, to)) else { return };
        let mut walk = Walk { from, to, previous: None };
        self.each_local(zone, first, last, |at| match walk.step(at) {
            Step::Skip => true,
            Step::Stop => false,
            Step::Visit => visit(at),
        });
    }

    /// Every instant the fields name on the local days `first - 1 ..= last + 1` (a day either
    /// side: an instant's local date and its fires' local dates can differ), by day and then by
    /// time of day, until `emit` returns false. Near a daylight-saving gap the instants need not
    /// increase; [`Cron::starts`] walks them.
    fn each_local(&self, zone: &TimeZone, first: Date, last: Date, mut emit: impl FnMut(Ts) -> bool) {
        let (Ok(mut day), Ok(end)) = (first.yesterday(), last.tomorrow()) else { return };
        while day <= end {
            if self.matches_date(day) {
                for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                    for m in (0..60).filter(|m| self.minutes & (1u64 << m) != 0) {
                        let Ok(time) = Time::new(h as i8, m as i8, 0, 0) else { continue };
                        let Some(at) = instant(zone, day.to_datetime(time)) else { continue };
                        if !emit(at) {
                            return;
                        }
                    }
                }
            }
            let Ok(next) = day.tomorrow() else { return };
            day = next;
        }
    }

    /// The latest start [`Cron::starts`] visits within `[from, to]` for which `keep` holds. The
    /// fires of the local days involved are worked out once and kept until the range moves to
    /// other days, so an evaluation converts no times.
    fn latest_start(&self, zone: &TimeZone, from: Ts, to: Ts, keep: impl Fn(Ts) -> bool) -> Option<Ts> {
        let Ok(mut memo) = self.memo.0.try_lock() else {
            // Another thread is using the memo (or a panic left it poisoned): walk without it.
            let mut found = None;
            self.starts(zone, from, to, |at| {
                if keep(at) {
                    found = Some(at);
                }
                true
            });
            return found;
        };
        self.fires(&mut memo, zone, from, to)?.latest(from, to, keep)
    }

    /// The memo, brought up to date for `[from, to]`; `None` when a local date cannot be worked
    /// out (then [`Cron::starts`] visits nothing).
    fn fires<'m>(&self, memo: &'m mut Option<Fires>, zone: &TimeZone, from: Ts, to: Ts) -> Option<&'m Fires> {
        let within = |(a, b): (Ts, Ts), t: Ts| a <= t && t < b;
        let fresh =
            memo.as_ref().is_some_and(|f| within(f.from_span, from) && within(f.to_span, to) && f.zone == *zone);
        if !fresh {
            let first = local_date(zone, from)?;
            let last = local_date(zone, to)?;
            let stale = memo.as_ref().is_none_or(|f| f.first != first || f.last != last || f.zone != *zone);
            let f = memo.get_or_insert_with(|| Fires {
                zone: zone.clone(),
                first,
                last,
                starts: Vec::new(),
                increasing: true,
                from_span: (from, from),
                to_span: (to, to),
            });
            if stale {
                f.zone = zone.clone();
                f.first = first;
                f.last = last;
                f.starts.clear();
                let starts = &mut f.starts;
                self.each_local(zone, first, last, |at| {
                    starts.push(at);
                    true
                });
                f.increasing = f.starts.windows(2).all(|w| w[0] < w[1]);
            }
            f.from_span = day_span(zone, from, first);
            f.to_span = day_span(zone, to, last);
        }
        memo.as_ref()
    }
}

fn local_date(zone: &TimeZone, t: Ts) -> Option<Date> {
    let ts = jiff::Timestamp::from_millisecond(t.0).ok()?;
    Some(zone.to_datetime(ts).date())
}

/// The instant of a local wall-clock time: a time in a gap moves forward by the gap, a repeated
/// time takes its first occurrence (jiff's `compatible` disambiguation, as RFC 5545 and Temporal).
pub fn instant(zone: &TimeZone, local: DateTime) -> Option<Ts> {
    // The timestamp alone: a zoned value would clone the zone and work out the local time again.
    let ts = zone.to_ambiguous_timestamp(local).disambiguate(Disambiguation::Compatible).ok()?;
    Some(Ts(ts.as_millisecond()))
}

/// When a schedule's windows start.
#[derive(Debug, Clone, PartialEq)]
pub enum Recurrence {
    /// At every cron match in the zone's local time.
    Cron {
        /// The expression.
        cron: Cron,
        /// The zone its fields are read in.
        zone: TimeZone,
    },
    /// Once, at this instant.
    Once(Ts),
}

/// A schedule: bounds that hold for a window that recurs or happens once.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Name, unique within the policy.
    pub name: String,
    /// When windows start.
    pub recurrence: Recurrence,
    /// How long each window lasts.
    pub duration: Dur,
    /// Minimum size while active (raised `lead` before the window opens).
    pub min_size: Option<u32>,
    /// Maximum size while active.
    pub max_size: Option<u32>,
    /// How long before the window the minimum is raised.
    pub lead: Dur,
}

/// One window of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When the window opens.
    pub start: Ts,
    /// When it closes.
    pub end: Ts,
}

impl Schedule {
    /// Every window whose start lies in `[from, to]`, oldest first, until `visit` returns false.
    pub fn windows(&self, from: Ts, to: Ts, mut visit: impl FnMut(Window) -> bool) {
        match &self.recurrence {
            Recurrence::Once(start) => {
                if *start >= from && *start <= to {
                    visit(Window { start: *start, end: *start + self.duration });
                }
            }
            Recurrence::Cron { cron, zone } => {
                cron.starts(zone, from, to, |start| visit(Window { start, end: start + self.duration }))
            }
        }
    }

    /// The window that is open or being led into at `now` (`start − lead <= now < end`), the
    /// latest-starting one if several are.
    pub fn current(&self, now: Ts) -> Option<Window> {
        // The windows that start in [from, to] (see `windows`), the last that holds `now`.
        let (from, to) = (now - self.duration, now + self.lead);
        let holds = |start: Ts| start - self.lead <= now && now < start + self.duration;
        let start = match &self.recurrence {
            Recurrence::Once(start) => Some(*start).filter(|&s| s >= from && s <= to && holds(s)),
            Recurrence::Cron { cron, zone } => cron.latest_start(zone, from, to, holds),
        }?;
        Some(Window { start, end: start + self.duration })
    }

    /// The next `n` windows that end after `now` (an open window first).
    pub fn next(&self, now: Ts, n: usize, horizon: Dur) -> Vec<Window> {
        let mut out = Vec::with_capacity(n);
        self.windows(now - self.duration, now + horizon, |w| {
            if w.end > now {
                out.push(w);
            }
            out.len() < n
        });
        out
    }
}

/// What an override pauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pause {
    /// No scale-in while active.
    ScaleIn,
    /// No scale-out while active.
    ScaleOut,
    /// No resize at all while active.
    Freeze,
}

impl Pause {
    /// Whether this pause blocks scale-in.
    pub fn blocks_in(self) -> bool {
        matches!(self, Pause::ScaleIn | Pause::Freeze)
    }
    /// Whether this pause blocks scale-out.
    pub fn blocks_out(self) -> bool {
        matches!(self, Pause::ScaleOut | Pause::Freeze)
    }
}

/// A temporary change by a person: bounds and/or a pause, until an expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Name, unique within the policy (for `ebbflow resume NAME --override X`).
    pub name: String,
    /// Who set it.
    pub owner: String,
    /// Why.
    pub reason: String,
    /// When it was set; before then it does not apply.
    pub since: Option<Ts>,
    /// When it stops applying.
    pub until: Ts,
    /// Minimum size while active.
    pub min_size: Option<u32>,
    /// Maximum size while active.
    pub max_size: Option<u32>,
    /// Direction(s) held while active.
    pub pause: Option<Pause>,
}

impl Override {
    /// Whether it applies at `now`.
    pub fn is_active(&self, now: Ts) -> bool {
        now < self.until && self.since.is_none_or(|s| s <= now)
    }
}

/// A policy's schedules and overrides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Known {
    /// Schedules, in spec order.
    pub schedules: Vec<Schedule>,
    /// Overrides, in spec order (expired ones included; they are ignored).
    pub overrides: Vec<Override>,
}

/// Where a bound comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A schedule.
    Schedule,
    /// An override.
    Override,
}

/// A schedule window or override in effect at an instant, for status and Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Schedule or override.
    pub source: Source,
    /// Its name.
    pub name: String,
    /// When the window opens (schedules; may lie ahead by up to the lead time).
    pub from: Option<Ts>,
    /// Until when it holds.
    pub until: Ts,
    /// What it does, e.g. "min 20", "max 8", "pause scale-in".
    pub effect: String,
}

/// The bounds and pauses in effect at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Active {
    /// Minimum size and where it comes from, when something other than the spec sets it.
    pub min: Option<(u32, Source)>,
    /// Maximum size and where it comes from, when something other than the spec sets it.
    pub max: Option<(u32, Source)>,
    /// Scale-in is paused until then.
    pub pause_in: Option<Ts>,
    /// Scale-out is paused until then.
    pub pause_out: Option<Ts>,
    /// Everything in effect, schedules first.
    pub entries: Vec<Entry>,
}

impl Active {
    /// The bounds to use, given the spec's.
    pub fn bounds(&self, spec_min: u32, spec_max: u32) -> (u32, u32) {
        let max = self.max.map_or(spec_max, |(m, _)| m);
        let min = self.min.map_or(spec_min, |(m, _)| m);
        (min.min(max), max)
    }
}

fn effect(min: Option<u32>, max: Option<u32>, pause: Option<Pause>) -> String {
    let mut parts = Vec::new();
    if let Some(m) = min {
        parts.push(format!("min {m}"));
    }
    if let Some(m) = max {
        parts.push(format!("max {m}"));
    }
    match pause {
        Some(Pause::ScaleIn) => parts.push("pause scale-in".into()),
        Some(Pause::ScaleOut) => parts.push("pause scale-out".into()),
        Some(Pause::Freeze) => parts.push("freeze".into()),
        None => {}
    }
    parts.join(", ")
}

impl Known {
    /// Whether there is nothing to apply, ever.
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty() && self.overrides.is_empty()
    }

    /// The bounds and pauses in effect at `now`, given the spec's bounds, with an entry for
    /// each schedule window and override in effect (for status and Events).
    pub fn active(&self, now: Ts, spec_min: u32, spec_max: u32) -> Active {
        self.resolve(now, spec_min, spec_max, true)
    }

    /// The bounds and pauses in effect at `now`, as [`Known::active`] gives them, without the
    /// entries: what a decision needs, without building text nobody reads.
    pub fn limits(&self, now: Ts, spec_min: u32, spec_max: u32) -> Active {
        if self.is_empty() {
            return Active::default();
        }
        self.resolve(now, spec_min, spec_max, false)
    }

    fn resolve(&self, now: Ts, spec_min: u32, spec_max: u32, entries: bool) -> Active {
        let mut a = Active::default();
        // Schedules narrow the spec's bounds.
        let (mut smin, mut smax) = (None::<u32>, None::<u32>);
        for s in &self.schedules {
            let Some(w) = s.current(now) else { continue };
            let opened = now >= w.start;
            let min = s.min_size.filter(|&m| m > spec_min);
            let max = s.max_size.filter(|&m| m < spec_max && opened);
            if min.is_none() && max.is_none() {
                continue;
            }
            if let Some(m) = min {
                smin = Some(smin.map_or(m, |x| x.max(m)));
            }
            if let Some(m) = max {
                smax = Some(smax.map_or(m, |x| x.min(m)));
            }
            if !entries {
                continue;
            }
            a.entries.push(Entry {
                source: Source::Schedule,
                name: s.name.clone(),
                from: Some(w.start),
                until: w.end,
                effect: effect(min, max, None),
            });
        }
        a.min = smin.map(|m| (m, Source::Schedule));
        a.max = smax.map(|m| (m, Source::Schedule));
        // Overrides replace them.
        let (mut omin, mut omax) = (None::<u32>, None::<u32>);
        for o in self.overrides.iter().filter(|o| o.is_active(now)) {
            if let Some(m) = o.min_size {
                omin = Some(omin.map_or(m, |x| x.max(m)));
            }
            if let Some(m) = o.max_size {
                omax = Some(omax.map_or(m, |x| x.min(m)));
            }
            if let Some(p) = o.pause {
                if p.blocks_in() {
                    a.pause_in = Some(a.pause_in.map_or(o.until, |t| t.max(o.until)));
                }
                if p.blocks_out() {
                    a.pause_out = Some(a.pause_out.map_or(o.until, |t| t.max(o.until)));
                }
            }
            if entries {
                a.entries.push(Entry {
                    source: Source::Override,
                    name: o.name.clone(),
                    from: o.since,
                    until: o.until,
                    effect: effect(o.min_size, o.max_size, o.pause),
                });
            }
        }
        if let Some(m) = omin {
            a.min = Some((m, Source::Override));
        }
        if let Some(m) = omax {
            a.max = Some((m, Source::Override));
            // The override is the newer word: a schedule's minimum above it gives way.
            if a.min.is_some_and(|(lo, src)| src == Source::Schedule && lo > m) {
                a.min = None;
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Ts {
        Ts::parse_rfc3339(text).expect("valid RFC 3339")
    }

    fn schedule(cron: &str, zone: &str, duration: Dur, lead: Dur) -> Schedule {
        Schedule {
            name: "s".into(),
            recurrence: Recurrence::Cron {
                cron: Cron::parse(cron).expect("valid cron"),
                zone: TimeZone::get(zone).expect("zone in the tz database"),
            },
            duration,
            min_size: Some(5),
            max_size: Some(30),
            lead,
        }
    }

    /// The window as found before fires were kept: the last of the windows [`Schedule::windows`]
    /// walks that holds `now`.
    fn walked(s: &Schedule, now: Ts) -> Option<Window> {
        let mut found = None;
        s.windows(now - s.duration, now + s.lead, |w| {
            if w.start - s.lead <= now && now < w.end {
                found = Some(w);
            }
            true
        });
        found
    }

    /// The fires kept between evaluations give the window the walk over the calendar gives, at
    /// every minute across windows opening and closing, local days changing, a daylight-saving
    /// gap with several fires inside it, time running backwards, and a zone changed under them.
    #[test]
    fn kept_fires_give_the_window_the_calendar_walk_gives() {
        let cases = [
            ("0 6 * * MON-FRI", "UTC", Dur::mins(180), Dur::mins(30)),
            ("30 19 * * *", "Europe/Berlin", Dur::mins(90), Dur::mins(45)),
            // Europe/Berlin springs forward at 02:00 on 2026-03-29: 02:10, 02:20 and 02:50 land
            // after the gap, where 03:10 and 03:20 then fall on instants already passed.
            ("10,20,50 2,3 * * *", "Europe/Berlin", Dur::mins(25), Dur::mins(15)),
            ("*/30 * * * *", "America/New_York", Dur::mins(7), Dur::ZERO),
        ];
        let start = ts("2026-03-26T00:00:00Z");
        for (cron, zone, duration, lead) in cases {
            let mut s = schedule(cron, zone, duration, lead);
            let forward = (0..4 * 1440).map(|m| start + Dur::mins(m));
            let backward = (0..1440 / 7).map(|k| start + Dur::mins(4 * 1440 - 7 * k));
            let mut open = 0;
            for now in forward.chain(backward) {
                let w = s.current(now);
                assert_eq!(w, walked(&s, now), "{cron} in {zone} at {now}");
                open += usize::from(w.is_some());
            }
            assert!(open > 0, "{cron} in {zone}: no window in four days");
            if let Recurrence::Cron { zone, .. } = &mut s.recurrence {
                *zone = TimeZone::get("Asia/Tokyo").expect("zone in the tz database");
            }
            for m in 0..1440 {
                let now = start + Dur::mins(m);
                assert_eq!(s.current(now), walked(&s, now), "{cron} in Asia/Tokyo at {now}");
            }
        }
    }

    /// The bounds and pauses a decision reads are those status shows, without the entries.
    #[test]
    fn limits_are_the_active_bounds_without_entries() {
        let known = Known {
            schedules: vec![
                schedule("0 6 * * MON-FRI", "UTC", Dur::mins(180), Dur::mins(30)),
                Schedule {
                    max_size: Some(8),
                    min_size: None,
                    ..schedule("0 22 * * *", "UTC", Dur::mins(300), Dur::ZERO)
                },
            ],
            overrides: vec![Override {
                name: "hold".into(),
                owner: "ops".into(),
                reason: "launch".into(),
                since: Some(ts("2026-03-27T05:00:00Z")),
                until: ts("2026-03-27T07:00:00Z"),
                min_size: Some(12),
                max_size: None,
                pause: Some(Pause::ScaleIn),
            }],
        };
        let start = ts("2026-03-26T00:00:00Z");
        for m in (0..3 * 1440).step_by(5) {
            let now = start + Dur::mins(m);
            let full = known.active(now, 2, 40);
            assert_eq!(known.limits(now, 2, 40), Active { entries: Vec::new(), ..full }, "at {now}");
        }
        assert_eq!(Known::default().limits(start, 2, 40), Active::default());
    }
}
