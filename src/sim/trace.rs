//! Recorded metric traces: CSV `timestamp,value` and Cloud Monitoring `ListTimeSeries` JSON.
//!
//! A CSV trace may carry a column headed `storage`: the target's storage utilization (stored
//! bytes over the storage capacity of the nodes it was recorded on, 0..1), which the simulator
//! serves as the storage floor's metric. Further columns named in the header (e.g.
//! `timestamp,cpu,cpu_hottest` or one column per cluster) are kept by name for a scenario to map
//! to metrics (`columns:`) or to the clusters of an instance (`clusters:`). Empty fields of a
//! column are gaps of that series only.
//!
//! A trace may say the unit of its values in a comment line, `# unit: percent` or
//! `# unit: fraction` (see [`TraceScale`]); a scenario's `traceScale` says the same for a trace
//! that cannot carry it (the bundled NAB files are byte-identical copies). A percent trace is
//! divided by 100 when a scenario reads it for a fraction metric ([`Trace::percent_to_fractions`]).
//!
//! Nothing is interpolated: a gap stays a gap, and the simulator shows the policy no sample there.
//! A value that is not a finite number (`NaN`, `inf`, an empty CSV field, or the REST encoding
//! `"NaN"`, `"Infinity"`, `"-Infinity"` of a Cloud Monitoring double) is such a gap: the sample
//! is left out and counted in [`Trace::missing`], so no non-finite number ever reaches the
//! policy's smoothing. Every error names the file, the line and the fix, and quotes at most a
//! short excerpt of the input.

use std::path::Path;

use serde::Deserialize;

use crate::core::{Dur, Ts};
use crate::excerpt::{quoted, shorten_quotes};

/// A recorded series, sorted, without duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Where it came from (file name), for reports.
    pub name: String,
    /// Samples `(time, value)`, strictly increasing in time.
    pub points: Vec<(Ts, f64)>,
    /// The `storage` column's samples `(time, utilization)`, if the trace has one.
    pub storage: Vec<(Ts, f64)>,
    /// Further columns named in the CSV header (e.g. the hottest node's CPU, or one column per
    /// cluster of an instance), which a scenario maps to metrics or clusters.
    pub columns: Vec<Column>,
    /// The header's name of the first value column, when the trace has a header.
    pub value_name: Option<String>,
    /// Median spacing, computed once: every evaluation of a replay asks for it.
    interval: Dur,
    /// Samples left out because their value was not a finite number.
    missing: usize,
    /// How long after a sample the simulated world can still act on it: set by the scenario that
    /// replays the trace (see [`Trace::world_lag`]).
    world_lag: Dur,
    /// The unit a `# unit:` comment line declares, and that line.
    unit_line: Option<(TraceScale, usize)>,
    /// The unit the values were read from, once a scenario has resolved it (percent: the values
    /// here are the file's divided by 100).
    read_as: Option<TraceScale>,
}

/// The unit a trace's values are written in, for a policy metric whose unit is a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TraceScale {
    /// Percent, 0 to 100 (as NAB and most dashboards record CPU): divided by 100 when read, so a
    /// fraction metric's policy sees fractions.
    Percent,
    /// Fractions, 0 to 1, as Cloud Monitoring reports utilization: replayed as written. Values
    /// above 1 are load beyond what the recorded nodes could serve.
    Fraction,
}

impl TraceScale {
    /// The word a scenario, a flag or a `# unit:` line uses.
    pub fn word(self) -> &'static str {
        match self {
            TraceScale::Percent => "percent",
            TraceScale::Fraction => "fraction",
        }
    }
}

/// A further named column of a CSV trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its header name.
    pub name: String,
    /// Its samples `(time, value)`, oldest first; an empty field is a gap of this column only.
    pub points: Vec<(Ts, f64)>,
}

impl Trace {
    /// The samples of the column named `name` (case-insensitive): the first value column under
    /// its header name, or a further column.
    pub fn column(&self, name: &str) -> Option<&[(Ts, f64)]> {
        if self.value_name.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(name)) {
            return Some(&self.points);
        }
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)).map(|c| c.points.as_slice())
    }

    /// Every column a scenario can map: the first value column's name, then the further ones.
    pub fn column_names(&self) -> Vec<&str> {
        self.value_name.iter().map(String::as_str).chain(self.columns.iter().map(|c| c.name.as_str())).collect()
    }

    /// The unit the trace's own `# unit:` line declares, with its line number.
    pub fn unit_line(&self) -> Option<(TraceScale, usize)> {
        self.unit_line
    }

    /// The unit the values were read from, once a scenario resolved it; `None` when neither the
    /// trace nor the scenario said.
    pub fn read_as(&self) -> Option<TraceScale> {
        self.read_as
    }

    /// Record that the values are in `scale` as written (nothing is converted).
    pub(crate) fn set_read_as(&mut self, scale: TraceScale) {
        self.read_as = Some(scale);
    }

    /// Divide every value column by 100: a percent recording read for a fraction metric. The
    /// `storage` column is a utilization (0..1) already and is left as it is.
    pub(crate) fn percent_to_fractions(&mut self) {
        for p in &mut self.points {
            p.1 /= 100.0;
        }
        for c in &mut self.columns {
            for p in &mut c.points {
                p.1 /= 100.0;
            }
        }
        self.read_as = Some(TraceScale::Percent);
    }

    /// The largest value of the given samples, if any.
    pub fn peak(points: &[(Ts, f64)]) -> Option<f64> {
        points.iter().map(|p| p.1).reduce(f64::max)
    }
}

/// A trace that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TraceError {
    /// The file.
    pub file: String,
    /// 1-based line, where it applies.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn err(file: &str, line: Option<usize>, message: impl Into<String>) -> TraceError {
    TraceError { file: file.to_string(), line, message: message.into() }
}

/// Parse a naive (`2014-02-14 14:30:00`) or RFC 3339 timestamp; naive times are taken as UTC.
pub fn parse_time(text: &str) -> Option<Ts> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(Ts(ts.as_millisecond()));
    }
    let dt: jiff::civil::DateTime = t.parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| Ts(z.timestamp().as_millisecond()))
}

impl Trace {
    /// Read a trace, choosing the format by content: JSON if it starts with `{` or `[`, else CSV.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| err(&file, None, format!("cannot read: {e}")))?;
        Trace::parse(&file, &text)
    }

    /// Parse trace text; `file` is used in messages and as the trace's name.
    pub fn parse(file: &str, text: &str) -> Result<Trace, TraceError> {
        let first = text.trim_start().chars().next();
        let (points, extra, missing) = match first {
            Some('{') | Some('[') => {
                let (points, missing) = parse_monitoring_json(file, text)?;
                (points, Extra::default(), missing)
            }
            _ => parse_csv(file, text)?,
        };
        let Extra { storage, columns, value_name, unit_line } = extra;
        if points.is_empty() {
            return Err(err(
                file,
                None,
                format!(
                    "the trace has no usable samples: all {missing} values are NaN, Infinity or empty; record a metric that has data"
                ),
            ));
        }
        let name = Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| file.into());
        let interval = median_spacing(&points);
        Ok(Trace {
            name,
            points,
            storage,
            columns,
            value_name,
            interval,
            missing,
            world_lag: Dur::ZERO,
            unit_line,
            read_as: None,
        })
    }

    /// Median spacing between samples: the trace's nominal interval.
    pub fn interval(&self) -> Dur {
        self.interval
    }

    /// Samples whose value was not a finite number (NaN, ±Infinity, empty), left out as gaps.
    pub fn missing(&self) -> usize {
        self.missing
    }

    /// First and last sample times.
    pub fn span(&self) -> (Ts, Ts) {
        (self.points[0].0, self.points[self.points.len() - 1].0)
    }

    /// How long after a sample's time the simulated world can still change because of it: the
    /// metric delay and lateness before it is seen, then the resize and provisioning it may cause.
    /// The scenario sets it from its model; zero until then (the replay's own margin covers the
    /// minutes these take in practice).
    pub fn world_lag(&self) -> Dur {
        self.world_lag
    }

    /// Set [`Trace::world_lag`] (by the scenario, from its model).
    pub(crate) fn set_world_lag(&mut self, lag: Dur) {
        self.world_lag = Dur(lag.0.max(0));
    }

    /// The stretches longer than `longer_than` in which no column of the trace (value, storage or
    /// a further column) has a sample: `(last sample before, first sample after)`, oldest first.
    /// Only stretches between two samples are listed (none before the first or after the last).
    ///
    /// Each column's own long gaps are intersected, so the work and the result are bounded by
    /// the number of samples, whatever the span.
    pub fn silences(&self, longer_than: Dur) -> Vec<(Ts, Ts)> {
        let min = longer_than.0.max(0);
        let mut quiet: Option<Vec<(i64, i64)>> = None;
        let columns = std::iter::once(self.points.as_slice())
            .chain(std::iter::once(self.storage.as_slice()))
            .chain(self.columns.iter().map(|c| c.points.as_slice()));
        for points in columns {
            // A column without samples is silent throughout: it narrows nothing.
            let (Some(first), Some(last)) = (points.first(), points.last()) else { continue };
            let mut own = vec![(i64::MIN, first.0.0)];
            own.extend(points.windows(2).map(|w| (w[0].0.0, w[1].0.0)).filter(|(a, b)| b.saturating_sub(*a) > min));
            own.push((last.0.0, i64::MAX));
            quiet = Some(match quiet {
                None => own,
                Some(q) => intersect(&q, &own, min),
            });
        }
        quiet
            .unwrap_or_default()
            .into_iter()
            .filter(|&(a, b)| a != i64::MIN && b != i64::MAX && b.saturating_sub(a) > min)
            .map(|(a, b)| (Ts(a), Ts(b)))
            .collect()
    }
}

/// The parts longer than `min` that two sorted lists of disjoint open intervals share.
fn intersect(x: &[(i64, i64)], y: &[(i64, i64)], min: i64) -> Vec<(i64, i64)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < x.len() && j < y.len() {
        let (lo, hi) = (x[i].0.max(y[j].0), x[i].1.min(y[j].1));
        if hi.saturating_sub(lo) > min {
            out.push((lo, hi));
        }
        if x[i].1 < y[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn median_spacing(points: &[(Ts, f64)]) -> Dur {
    let mut gaps: Vec<i64> = points.windows(2).map(|w| w[1].0.0 - w[0].0.0).collect();
    if gaps.is_empty() {
        return Dur::mins(1);
    }
    let mid = gaps.len() / 2;
    let (_, m, _) = gaps.select_nth_unstable(mid);
    Dur(*m)
}

/// A sample's value: `None` for a value that is not a finite number (a gap), an error for text
/// that is not a number at all.
fn csv_value(text: &str) -> Result<Option<f64>, ()> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    // Rust reads NaN, inf and infinity in any case, as exporters write them; 1e999 overflows to inf.
    let v: f64 = t.parse().map_err(|_| ())?;
    Ok(v.is_finite().then_some(v))
}

/// The name of the optional third CSV column: storage utilization.
pub const STORAGE_COLUMN: &str = "storage";

/// Samples `(time, value)`, oldest first.
type Points = Vec<(Ts, f64)>;

/// What a CSV trace holds besides its first value column.
#[derive(Default)]
struct Extra {
    /// The `storage` column's samples.
    storage: Points,
    /// The other named columns, in header order.
    columns: Vec<Column>,
    /// The header's name of the first value column, if there is a header.
    value_name: Option<String>,
    /// The unit a `# unit:` line declares, and that line.
    unit_line: Option<(TraceScale, usize)>,
}

/// The unit a comment line declares (`unit: percent`), `None` for any other comment; an error
/// for a `unit:` this reader does not know, so a misspelt one is not silently ignored.
fn unit_comment(file: &str, line: usize, comment: &str) -> Result<Option<TraceScale>, TraceError> {
    let Some((key, value)) = comment.split_once(':') else { return Ok(None) };
    if !key.trim().eq_ignore_ascii_case("unit") {
        return Ok(None);
    }
    match value.trim().to_ascii_lowercase().as_str() {
        "percent" | "%" => Ok(Some(TraceScale::Percent)),
        "fraction" => Ok(Some(TraceScale::Fraction)),
        _ => Err(err(
            file,
            Some(line),
            format!(
                "# unit: {} is not a unit a trace declares; write \"# unit: percent\" (0-100, divided by 100 for a \
                 fraction metric) or \"# unit: fraction\" (0-1), or remove the line",
                quoted(value.trim())
            ),
        )),
    }
}

/// "two", "three", ...: how rows are described in messages.
fn count_word(n: usize) -> String {
    const WORDS: [&str; 9] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"];
    WORDS.get(n).map_or_else(|| n.to_string(), |w| w.to_string())
}

/// Samples, the other columns, and the number of rows whose (first) value was missing.
fn parse_csv(file: &str, text: &str) -> Result<(Points, Extra, usize), TraceError> {
    let mut points: Vec<(Ts, f64)> = Vec::new();
    let mut extra = Extra::default();
    let mut missing = 0;
    // The previous data row's time and line, missing values included: order is checked on rows.
    let mut prev: Option<(Ts, usize)> = None;
    let mut header_seen = false;
    // The header's names after the timestamp (empty without a header: two columns), and which of
    // them is the storage column.
    let mut names: Vec<String> = Vec::new();
    let mut storage_at: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(unit) = unit_comment(file, n, comment)? {
                match extra.unit_line {
                    Some((other, at)) if other != unit => {
                        return Err(err(
                            file,
                            Some(n),
                            format!(
                                "\"# unit: {}\" contradicts \"# unit: {}\" on line {at}; keep one",
                                unit.word(),
                                other.word()
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => extra.unit_line = Some((unit, n)),
                }
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let mut cols = line.split(',');
        let (Some(ts), Some(val)) = (cols.next(), cols.next()) else {
            return Err(err(file, Some(n), format!("expected \"timestamp,value\", got {}", quoted(line))));
        };
        if prev.is_none() && !header_seen && parse_time(ts).is_none() && csv_value(val).is_err() {
            header_seen = true;
            names = std::iter::once(val).chain(cols).map(|c| c.trim().to_string()).collect();
            for (k, name) in names.iter().enumerate() {
                if name.is_empty() {
                    return Err(err(
                        file,
                        Some(n),
                        format!(
                            "the header {} has an empty column name (column {}); name every column",
                            quoted(line),
                            k + 2
                        ),
                    ));
                }
                if names[..k].iter().any(|o| o.eq_ignore_ascii_case(name)) {
                    return Err(err(
                        file,
                        Some(n),
                        format!(
                            "the header {} names column {} twice; give each column its own name",
                            quoted(line),
                            quoted(name)
                        ),
                    ));
                }
            }
            storage_at = names.iter().skip(1).position(|c| c.eq_ignore_ascii_case(STORAGE_COLUMN)).map(|k| k + 1);
            extra.value_name = Some(names[0].clone());
            extra.columns = names
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(k, _)| Some(*k) != storage_at)
                .map(|(_, name)| Column { name: name.clone(), points: Vec::new() })
                .collect();
            continue;
        }
        let rest: Vec<&str> = cols.collect();
        let want = names.len().max(1);
        if rest.len() + 1 != want {
            let want = if names.len() > 1 {
                // The header as read, cut like any quoted input: its names may be long.
                format!("{} columns {}", count_word(want + 1), quoted(&format!("timestamp,{}", names.join(","))))
            } else {
                "two columns \"timestamp,value\" (a third needs a header naming it \"storage\", or naming the column)"
                    .to_string()
            };
            return Err(err(file, Some(n), format!("expected {want}, got {}", quoted(line))));
        }
        let at = parse_time(ts).ok_or_else(|| {
            err(
                file,
                Some(n),
                format!("{} is not a timestamp; write \"2014-02-14 14:30:00\" (UTC) or RFC 3339", quoted(ts.trim())),
            )
        })?;
        let value = csv_value(val)
            .map_err(|_| err(file, Some(n), format!("{} is not a number; write e.g. 42.5", quoted(val.trim()))))?;
        let mut other = 0;
        for (k, text) in rest.iter().enumerate().map(|(k, t)| (k + 1, t)) {
            if Some(k) == storage_at {
                let stored = csv_value(text).map_err(|_| {
                    err(
                        file,
                        Some(n),
                        format!("storage {} is not a number; write a fraction such as 0.3", quoted(text.trim())),
                    )
                })?;
                match stored {
                    Some(u) if !(0.0..=1.0).contains(&u) => {
                        return Err(err(
                            file,
                            Some(n),
                            format!(
                                "storage {u} is not a utilization; write a fraction of the storage capacity, 0 to 1"
                            ),
                        ));
                    }
                    Some(u) => extra.storage.push((at, u)),
                    None => {}
                }
            } else {
                let v = csv_value(text).map_err(|_| {
                    err(file, Some(n), format!("{} {} is not a number; write e.g. 42.5", names[k], quoted(text.trim())))
                })?;
                // An empty field is a gap of that column only.
                if let Some(v) = v {
                    extra.columns[other].points.push((at, v));
                }
                other += 1;
            }
        }
        if let Some((prev_at, prev_line)) = prev {
            if at == prev_at {
                return Err(err(
                    file,
                    Some(n),
                    format!("duplicate timestamp {at} (also on line {prev_line}); keep one row per time"),
                ));
            }
            if at < prev_at {
                return Err(err(
                    file,
                    Some(n),
                    format!(
                        "timestamp {at} is earlier than line {prev_line}; sort the rows by time (e.g. `sort -t, -k1,1`)"
                    ),
                ));
            }
        }
        prev = Some((at, n));
        match value {
            Some(v) => points.push((at, v)),
            None => missing += 1,
        }
    }
    if prev.is_none() {
        return Err(err(file, None, "the trace has no samples; expected rows of \"timestamp,value\" after the header"));
    }
    Ok((points, extra, missing))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse {
    #[serde(default)]
    time_series: Vec<TimeSeries>,
    #[serde(default)]
    execution_errors: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct TimeSeries {
    #[serde(default)]
    points: Vec<Point>,
}

#[derive(Deserialize)]
struct Point {
    interval: Interval,
    value: TypedValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Interval {
    end_time: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedValue {
    // A JSON number, or in the REST (proto3 JSON) encoding a string: "NaN", "Infinity",
    // "-Infinity", or a number written as a string.
    double_value: Option<serde_json::Value>,
    // int64 travels as a JSON string in the REST API.
    int64_value: Option<serde_json::Value>,
}

/// A point's value: `Ok(None)` when it is not a finite number (a gap), an error when it is not a
/// number at all.
fn typed_number(field: &str, v: &serde_json::Value) -> Result<Option<f64>, String> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.trim() {
            "NaN" | "Infinity" | "-Infinity" => None,
            t => Some(t.parse::<f64>().map_err(|_| format!("{field} {} is not a number", quoted(s)))?),
        },
        other => {
            let kind = match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Array(_) => "a list",
                serde_json::Value::Object(_) => "an object",
                _ => "null",
            };
            return Err(format!("{field} is {kind}; expected a number or a number in a string"));
        }
    };
    Ok(n.filter(|x| x.is_finite()))
}

/// One or more `ListTimeSeries` responses: a single object, a JSON array of them, or several
/// objects one after another (pages concatenated).
fn parse_monitoring_json(file: &str, text: &str) -> Result<(Vec<(Ts, f64)>, usize), TraceError> {
    let mut pages: Vec<ListResponse> = Vec::new();
    let trimmed = text.trim_start();
    let json_err = |e: serde_json::Error| {
        err(
            file,
            Some(e.line()),
            format!(
                "not a Cloud Monitoring ListTimeSeries response: {}; expected {{\"timeSeries\":[{{\"points\":[...]}}]}} or an array of such pages",
                shorten_quotes(&e.to_string())
            ),
        )
    };
    if trimmed.starts_with('[') {
        pages = serde_json::from_str(text).map_err(json_err)?;
    } else {
        for page in serde_json::Deserializer::from_str(text).into_iter::<ListResponse>() {
            pages.push(page.map_err(json_err)?);
        }
    }
    let mut points: Vec<(Ts, f64)> = Vec::new();
    let mut missing = 0;
    let mut series_seen = 0;
    for (p, page) in pages.iter().enumerate() {
        if !page.execution_errors.is_empty() {
            return Err(err(
                file,
                None,
                format!("page {} reports executionErrors (partial data); record the range again or trim it", p + 1),
            ));
        }
        if page.time_series.len() > 1 {
            return Err(err(
                file,
                None,
                format!(
                    "page {} holds {} time series; the simulator replays one: narrow the filter or add a crossSeriesReducer when recording",
                    p + 1,
                    page.time_series.len()
                ),
            ));
        }
        for series in &page.time_series {
            series_seen += 1;
            for point in &series.points {
                let at = Ts::parse_rfc3339(&point.interval.end_time)
                    .map_err(|e| err(file, None, format!("endTime: {}", shorten_quotes(&e))))?;
                let value = match (&point.value.double_value, &point.value.int64_value) {
                    (Some(v), _) if !v.is_null() => typed_number("doubleValue", v),
                    (_, Some(v)) if !v.is_null() => typed_number("int64Value", v),
                    _ => {
                        return Err(err(
                            file,
                            None,
                            format!(
                                "point at {at} has no doubleValue or int64Value; record a numeric metric (use an aligner for distributions)"
                            ),
                        ));
                    }
                }
                .map_err(|m| err(file, None, format!("point at {at}: {m}")))?;
                match value {
                    Some(v) => points.push((at, v)),
                    None => missing += 1,
                }
            }
        }
    }
    if series_seen == 0 || points.len() + missing == 0 {
        return Err(err(file, None, "the response holds no points; check the filter and the time range you recorded"));
    }
    // The API returns points newest first, and pages continue the same series.
    points.sort_by_key(|p| p.0);
    for w in points.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(err(file, None, format!("duplicate point at {}; a page was recorded twice", w[0].0)));
        }
    }
    Ok((points, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nab_csv_with_naive_utc_times() {
        let t =
            Trace::parse("x.csv", "timestamp,value\n2014-02-14 14:30:00,0.132\n2014-02-14 14:35:00,0.134\n").unwrap();
        assert_eq!(t.points.len(), 2);
        assert_eq!(t.points[0].0, Ts::parse_rfc3339("2014-02-14T14:30:00Z").unwrap());
        assert_eq!(t.interval(), Dur::mins(5));
    }

    #[test]
    fn reads_a_storage_column_named_in_the_header() {
        let t = Trace::parse(
            "s.csv",
            "timestamp,value,storage\n2014-02-14 14:30:00,40,0.3\n2014-02-14 14:35:00,41,\n2014-02-14 14:40:00,,0.31\n",
        )
        .unwrap();
        assert_eq!(t.points.len(), 2, "an empty value is a gap of the metric only");
        let at = |s: &str| Ts::parse_rfc3339(s).unwrap();
        assert_eq!(t.storage, vec![(at("2014-02-14T14:30:00Z"), 0.3), (at("2014-02-14T14:40:00Z"), 0.31)]);
        let plain = Trace::parse("p.csv", "timestamp,value\n2014-02-14 14:30:00,1\n").unwrap();
        assert!(plain.storage.is_empty());
        // A third column needs its header; a storage value must be a fraction.
        let e = Trace::parse("p.csv", "timestamp,value\n2014-02-14 14:30:00,1,0.3\n").unwrap_err();
        assert!(e.message.contains("needs a header naming it \"storage\""), "{e}");
        // Other named columns are kept by name, gaps and all; names must be given and distinct.
        let t = Trace::parse(
            "p.csv",
            "timestamp,cpu,disk,storage\n2014-02-14 14:30:00,1,0.3,0.1\n2014-02-14 14:31:00,1,,0.1\n",
        )
        .unwrap();
        assert_eq!(t.column_names(), ["cpu", "disk"]);
        assert_eq!(t.column("disk").map(<[_]>::len), Some(1));
        assert_eq!(t.column("CPU").map(<[_]>::len), Some(2));
        assert_eq!(t.storage.len(), 2);
        let e = Trace::parse("p.csv", "timestamp,value,value\n2014-02-14 14:30:00,1,0.3\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("twice"), "{e}");
        let e = Trace::parse("p.csv", "timestamp,value,disk\n2014-02-14 14:30:00,1,x\n").unwrap_err();
        assert!(e.message.contains("disk \"x\" is not a number"), "{e}");
        let e = Trace::parse("p.csv", "timestamp,value,storage\n2014-02-14 14:30:00,1,30\n").unwrap_err();
        assert!(e.message.contains("storage 30 is not a utilization"), "{e}");
        let e = Trace::parse("p.csv", "timestamp,value,storage\n2014-02-14 14:30:00,1\n").unwrap_err();
        assert!(e.message.contains("three columns"), "{e}");
    }

    /// A trace may say its unit in a comment line; nothing is converted until a scenario reads
    /// it for a fraction metric. A unit this reader does not know, or two that disagree, is an
    /// error naming the line, not a comment silently skipped.
    #[test]
    fn a_unit_line_declares_the_unit_and_conversion_divides_the_values_by_100() {
        let csv = "# recorded by hand\n# Unit: Percent\ntimestamp,value,hot,storage\n2014-02-14 14:30:00,40,90,0.3\n";
        let mut t = Trace::parse("p.csv", csv).unwrap();
        assert_eq!((t.unit_line(), t.read_as()), (Some((TraceScale::Percent, 2)), None));
        assert_eq!(t.points[0].1, 40.0, "read as written");
        t.percent_to_fractions();
        assert_eq!((t.points[0].1, t.columns[0].points[0].1), (0.4, 0.9));
        assert_eq!(t.storage[0].1, 0.3, "storage is a utilization already");
        assert_eq!(t.read_as(), Some(TraceScale::Percent));
        assert_eq!(Trace::peak(&t.points), Some(0.4));

        let plain = Trace::parse("p.csv", "# unit: fraction\n# unit: fraction\n2014-02-14 14:30:00,0.4\n").unwrap();
        assert_eq!(plain.unit_line(), Some((TraceScale::Fraction, 1)));
        let e = Trace::parse("p.csv", "# unit: requests\n2014-02-14 14:30:00,4\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("\"requests\" is not a unit") && e.message.contains("# unit: percent"), "{e}");
        let e = Trace::parse("p.csv", "# unit: percent\n2014-02-14 14:30:00,4\n# unit: fraction\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("contradicts") && e.message.contains("line 1"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let e = Trace::parse("t.csv", "timestamp,value\n2014-02-14 14:30:00,abc\n").unwrap_err();
        assert_eq!(e.to_string(), "t.csv:2: \"abc\" is not a number; write e.g. 42.5");
        let e = Trace::parse("t.csv", "timestamp,value\n2014-02-14 14:35:00,1\n2014-02-14 14:30:00,2\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("sort the rows"), "{e}");
        let e = Trace::parse("t.csv", "timestamp,value\n2014-02-14 14:35:00,1\n2014-02-14 14:35:00,2\n").unwrap_err();
        assert!(e.message.contains("duplicate timestamp") && e.message.contains("line 2"), "{e}");
        let e = Trace::parse("t.csv", "timestamp,value\n").unwrap_err();
        assert!(e.message.contains("no samples"), "{e}");
        let e = Trace::parse("t.csv", "timestamp,value\nyesterday,4\n").unwrap_err();
        assert!(e.message.contains("is not a timestamp"), "{e}");
    }

    #[test]
    fn reads_concatenated_monitoring_pages_newest_first() {
        let page = |a: &str, b: &str| {
            format!(
                r#"{{"timeSeries":[{{"metric":{{"type":"x"}},"points":[
                {{"interval":{{"endTime":"{b}"}},"value":{{"doubleValue":0.5}}}},
                {{"interval":{{"endTime":"{a}"}},"value":{{"int64Value":"3"}}}}]}}],"nextPageToken":"p"}}"#
            )
        };
        let text = format!(
            "{}\n{}",
            page("2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z"),
            page("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
        );
        let t = Trace::parse("rec.json", &text).unwrap();
        let values: Vec<f64> = t.points.iter().map(|p| p.1).collect();
        assert_eq!(values, [3.0, 0.5, 3.0, 0.5]);
        let arr = format!("[{}]", page("2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z"));
        assert_eq!(Trace::parse("rec.json", &arr).unwrap().points.len(), 2);
    }

    #[test]
    fn rejects_partial_and_multi_series_recordings() {
        let partial = r#"{"timeSeries":[{"points":[{"interval":{"endTime":"2026-01-01T00:00:00Z"},"value":{"doubleValue":1}}]}],"executionErrors":[{"code":8}]}"#;
        assert!(Trace::parse("r.json", partial).unwrap_err().message.contains("executionErrors"));
        let multi = r#"{"timeSeries":[{"points":[]},{"points":[]}]}"#;
        assert!(Trace::parse("r.json", multi).unwrap_err().message.contains("2 time series"));
        assert!(Trace::parse("r.json", "{\"timeSeries\": [").unwrap_err().message.contains("ListTimeSeries"));
    }

    /// A silence is a stretch with no sample in any column: a sample of another column inside a
    /// gap of the value column splits it, and gaps no longer than the bound are not silences.
    #[test]
    fn silences_are_the_long_gaps_every_column_shares() {
        let csv = "timestamp,value,storage,cpu_hottest\n\
            2024-01-01 00:00:00,1,0.2,\n\
            2024-01-01 00:01:00,1,,\n\
            2024-01-05 00:00:00,,,0.5\n\
            2024-01-09 00:00:00,,0.2,\n\
            2024-01-20 00:00:00,1,,\n\
            2024-01-20 00:10:00,1,,\n";
        let t = Trace::parse("t.csv", csv).unwrap();
        let at = |s: &str| parse_time(s).unwrap();
        assert_eq!(
            t.silences(Dur::mins(60 * 24)),
            [
                (at("2024-01-01 00:01:00"), at("2024-01-05 00:00:00")),
                (at("2024-01-05 00:00:00"), at("2024-01-09 00:00:00")),
                (at("2024-01-09 00:00:00"), at("2024-01-20 00:00:00")),
            ]
        );
        assert_eq!(t.silences(Dur::mins(60 * 24 * 5)), [(at("2024-01-09 00:00:00"), at("2024-01-20 00:00:00"))]);
        assert!(t.silences(Dur::mins(60 * 24 * 30)).is_empty());
    }
}
