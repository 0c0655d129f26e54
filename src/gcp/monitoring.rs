//! Cloud Monitoring as a [`MetricSource`]: `projects.timeSeries.list` with the policy's filter
//! and aggregation, every page followed up to a [`QueryBound`] on pages and points (an answer past
//! it is given up on as [`ErrorKind::Malformed`], naming the bound).
//!
//! Missing data is reported as missing, never as zero:
//! - no series at all → no samples (the core marks the metric `NoData` or `Stale`);
//! - a NaN point stays NaN (the core marks it `Invalid`);
//! - a response with `executionErrors` → [`DataProblem::Partial`], samples kept;
//! - more than one series where the query should return one → [`DataProblem::MultipleSeries`],
//!   no samples (which series it was is logged), because picking one would be a guess;
//! - the newest, still-filling alignment period is dropped (see [`complete_until`]).
//!
//! It answers [`MetricQuery::Monitoring`]; request sharing between policies is the port layer's
//! ([`crate::adapters::SharedSource`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use google_cloud_monitoring_v3::client::MetricService;
use google_cloud_monitoring_v3::model::aggregation::{Aligner, Reducer};
use google_cloud_monitoring_v3::model::typed_value::Value;
use google_cloud_monitoring_v3::model::{Aggregation, ListTimeSeriesResponse, TimeInterval, TimeSeries};

use crate::adapters::{AdapterError, ErrorKind, MetricQuery, MetricSource, MonitoringQuery, Series};
use crate::core::{DataProblem, Dur, Sample, Ts};
use crate::gcp::{GcpConfig, QuotaLimiter, RetryConfig, map_error, monitoring_client, retry};

const BACKEND: &str = "monitoring";
const PERMISSION: &str = "monitoring.timeSeries.list";

/// Cloud Monitoring, read through `projects.timeSeries.list`.
pub struct CloudMonitoring {
    client: MetricService,
    retry: RetryConfig,
    limiter: QuotaLimiter,
    requests: AtomicU64,
}

impl CloudMonitoring {
    /// Build the client as `cfg` says (a fake's endpoint, or the real one with ADC).
    pub async fn new(cfg: &GcpConfig) -> Result<CloudMonitoring, AdapterError> {
        Ok(CloudMonitoring::from_client(monitoring_client(cfg).await?, cfg))
    }

    /// Wrap an existing client.
    pub fn from_client(client: MetricService, cfg: &GcpConfig) -> CloudMonitoring {
        CloudMonitoring {
            client,
            retry: cfg.retry,
            limiter: QuotaLimiter::new(cfg.monitoring_queries_per_minute),
            requests: AtomicU64::new(0),
        }
    }

    /// HTTP requests sent so far (pages and retries each count).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Every page of `query` over `(start, end]`, as the API returned them; an answer that pages
    /// or brings back more than its [`QueryBound`] is given up on, so a `nextPageToken` that never
    /// ends costs a few pages, not thousands.
    pub async fn list_pages(
        &self,
        query: &MonitoringQuery,
        start: Ts,
        end: Ts,
    ) -> Result<Vec<ListTimeSeriesResponse>, AdapterError> {
        let aligner = Aligner::from(query.per_series_aligner.as_str());
        if aligner.value().is_none() {
            return Err(AdapterError::new(
                BACKEND,
                ErrorKind::Refused,
                format!("unknown perSeriesAligner {:?}", query.per_series_aligner),
            ));
        }
        let mut aggregation = Aggregation::new()
            .set_alignment_period(dur_to_wkt(query.alignment_period))
            .set_per_series_aligner(aligner)
            .set_group_by_fields(query.group_by_fields.clone());
        if let Some(reducer) = &query.cross_series_reducer {
            let r = Reducer::from(reducer.as_str());
            if r.value().is_none() {
                return Err(AdapterError::new(
                    BACKEND,
                    ErrorKind::Refused,
                    format!("unknown crossSeriesReducer {reducer:?}"),
                ));
            }
            aggregation = aggregation.set_cross_series_reducer(r);
        }
        let request = self
            .client
            .list_time_series()
            .set_name(format!("projects/{}", query.project))
            .set_filter(query.filter.clone())
            .set_interval(TimeInterval::new().set_start_time(ts_to_wkt(start)).set_end_time(ts_to_wkt(end)))
            .set_aggregation(aggregation);

        let bound = QueryBound::new(query, end - start);
        let mut pages = Vec::new();
        let mut points = 0usize;
        let mut token = String::new();
        loop {
            let page = retry(BACKEND, &self.retry, || {
                let req = request.clone().set_page_token(token.clone());
                async {
                    self.limiter.acquire(&query.project).await;
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    req.send().await.map_err(|e| map_error(BACKEND, PERMISSION, &e))
                }
            })
            .await?;
            token = page.next_page_token.clone();
            // A series without points still costs its labels: count it as one.
            points = points.saturating_add(page.time_series.iter().map(|ts| ts.points.len().max(1)).sum());
            pages.push(page);
            if points > bound.points {
                return Err(bound.too_many_points(points, pages.len()));
            }
            if token.is_empty() {
                return Ok(pages);
            }
            if pages.len() >= bound.pages {
                return Err(bound.too_many_pages());
            }
        }
    }
}

/// Series one query may return before its answer is given up on as too large: a policy's query
/// should return one (more is already refused as [`DataProblem::MultipleSeries`]); a Bigtable
/// instance has at most 8 clusters, and the bound leaves room to say how many there were.
pub const MAX_SERIES: usize = 16;

/// Pages one query may take per [`PAGED_SPAN`] it covers before it is given up on as a paging
/// loop. A policy's query covers at most six hours (the longest first fetch, `core::policy::history`)
/// of points aligned to a minute or more, at most [`MAX_SERIES`] series: under 6,000 points, which
/// the service sends in one page (up to 100,000 points) and the fake in six (1,000). Twenty leaves
/// room for the short and empty pages a paged API may send, and ends a `nextPageToken` that never
/// ends within seconds and a few hundred kilobytes, instead of after 10,000 pages, minutes and
/// tens of megabytes, with the policy making no decision all the while.
pub const MAX_PAGES: usize = 20;

/// The span each [`MAX_PAGES`] pages are for: a policy's longest query. `ebbflow record` asks for
/// days or weeks, and gets as many times the pages.
pub const PAGED_SPAN: Dur = Dur::mins(6 * 60);

/// The shortest spacing of points a query can return: its alignment period, or 5 seconds (the
/// fastest a series can be written) for unaligned (`ALIGN_NONE`) points.
fn point_spacing(query: &MonitoringQuery) -> Dur {
    if query.per_series_aligner == "ALIGN_NONE" { Dur::secs(5) } else { query.alignment_period.max(Dur::secs(1)) }
}

/// How much one `timeSeries.list` query may bring back: pages, and points over all pages (which
/// is what the answer's memory grows with, some hundred bytes a point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBound {
    /// Pages: [`MAX_PAGES`] per [`PAGED_SPAN`] of the interval asked for.
    pub pages: usize,
    /// Points: [`MAX_SERIES`] series of one point per alignment period (5 seconds unaligned)
    /// over the interval, plus one at each end.
    pub points: usize,
    span: Dur,
    spacing: Dur,
}

impl QueryBound {
    /// The bound of `query` over an interval of length `span`.
    pub fn new(query: &MonitoringQuery, span: Dur) -> QueryBound {
        let span = Dur(span.0.max(0));
        let spacing = point_spacing(query);
        let chunks = span.0 / PAGED_SPAN.0 + 1;
        let per_series = span.0 / spacing.0 + 2;
        let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
        QueryBound {
            pages: MAX_PAGES.saturating_mul(size(chunks)),
            points: MAX_SERIES.saturating_mul(size(per_series)),
            span,
            spacing,
        }
    }

    fn too_many_pages(&self) -> AdapterError {
        AdapterError::new(
            BACKEND,
            ErrorKind::Malformed,
            format!(
                "gave up after {} pages, the bound for a query over {} ({MAX_PAGES} pages per {PAGED_SPAN}): \
                 the answer's nextPageToken never ended (a paging loop in the service or a proxy)",
                self.pages, self.span
            ),
        )
    }

    fn too_many_points(&self, points: usize, pages: usize) -> AdapterError {
        AdapterError::new(
            BACKEND,
            ErrorKind::Malformed,
            format!(
                "gave up after {points} points in {pages} pages, over the bound of {} for a query over {} \
                 ({MAX_SERIES} series of a point per {}): narrow the filter or add a crossSeriesReducer",
                self.points, self.span, self.spacing
            ),
        )
    }
}

impl MetricSource for CloudMonitoring {
    async fn fetch(&self, query: &MetricQuery, after: Ts, until: Ts) -> Result<Series, AdapterError> {
        let Some(query) = query.monitoring() else {
            return Err(AdapterError::new(BACKEND, ErrorKind::Refused, "not a Cloud Monitoring query"));
        };
        let pages = self.list_pages(query, after, until).await?;
        Ok(series_from_responses(&pages, query.alignment_period, after, until))
    }
}

/// `ebbflow record`: every `timeSeries.list` page of `query` over `(from, to]`, as a JSON array
/// of response objects (the REST API's own shape: camelCase, int64 values as strings), which
/// `ebbflow simulate` reads. Nothing is dropped or merged here: the file is the raw answer.
pub async fn record(
    cfg: &GcpConfig,
    query: &MonitoringQuery,
    from: Ts,
    to: Ts,
) -> Result<serde_json::Value, AdapterError> {
    if to <= from {
        return Err(AdapterError::new(BACKEND, ErrorKind::Refused, format!("--to {to} is not after --from {from}")));
    }
    let source = CloudMonitoring::new(cfg).await?;
    let pages = source.list_pages(query, from, to).await?;
    serde_json::to_value(&pages)
        .map_err(|e| AdapterError::new(BACKEND, ErrorKind::Malformed, format!("cannot serialise the responses: {e}")))
}

/// The newest point time kept for a query over `(…, until]`: `until − alignment_period`.
///
/// Monitoring ingests samples minutes late, and the aligned point of the newest period is computed
/// from whatever has arrived, so it reads low (a sum or count) or noisy (a mean of a few). The rule:
/// a point counts as complete once a whole alignment period has passed since its interval ended;
/// anything newer is dropped and fetched again on a later tick (the next fetch starts after the
/// newest sample kept, so nothing is lost).
pub fn complete_until(until: Ts, alignment_period: Dur) -> Ts {
    until - alignment_period
}

/// Turn raw `timeSeries.list` pages into the samples of one series, oldest first, applying the
/// missing-data rules of this module. Also used to read `ebbflow record` files.
pub fn series_from_responses(pages: &[ListTimeSeriesResponse], alignment_period: Dur, after: Ts, until: Ts) -> Series {
    let newest_kept = complete_until(until, alignment_period);
    // Pages may split one series' points, repeating its labels: group by identity.
    let mut by_series: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut partial = Vec::new();
    for page in pages {
        partial.extend(page.execution_errors.iter().map(|s| s.message.clone()));
        for ts in &page.time_series {
            let samples = by_series.entry(series_identity(ts)).or_default();
            for p in &ts.points {
                let Some(end) = p.interval.as_ref().and_then(|i| i.end_time.as_ref()) else { continue };
                let at = wkt_to_ts(end);
                if at <= after || at > newest_kept {
                    continue;
                }
                samples.push(Sample { at, value: point_value(p.value.as_ref().and_then(|v| v.value.as_ref())) });
            }
        }
    }
    if by_series.len() > 1 {
        tracing::warn!(
            series = by_series.len(),
            which = %by_series.keys().cloned().collect::<Vec<_>>().join("; "),
            "the query returned several time series where one was expected; add a crossSeriesReducer or narrow the filter"
        );
        return Series { samples: Vec::new(), problem: Some(DataProblem::MultipleSeries(by_series.len() as u32)) };
    }
    let mut samples = by_series.into_values().next().unwrap_or_default();
    // The API returns points newest first; the core wants oldest first, one per instant.
    samples.sort_by_key(|s| s.at);
    samples.dedup_by_key(|s| s.at);
    let problem = if partial.is_empty() {
        None
    } else {
        tracing::warn!(errors = %partial.join("; "), "Cloud Monitoring returned partial data");
        Some(DataProblem::Partial)
    };
    Series { samples, problem }
}

/// A series' labels in a stable order, to tell series apart and to name them in messages.
fn series_identity(ts: &TimeSeries) -> String {
    let mut out = String::new();
    if let Some(m) = &ts.metric {
        let labels: BTreeMap<_, _> = m.labels.iter().collect();
        out.push_str(&format!("{} {labels:?}", m.r#type));
    }
    if let Some(r) = &ts.resource {
        let labels: BTreeMap<_, _> = r.labels.iter().collect();
        out.push_str(&format!(" {} {labels:?}", r.r#type));
    }
    out
}

/// A point's value as f64. Types that have no single number (strings, missing values) become
/// NaN, which the core treats as invalid data rather than zero.
fn point_value(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::DoubleValue(d)) => *d,
        // i64 → f64 loses precision only above 2^53, far beyond any load metric.
        Some(Value::Int64Value(i)) => *i as f64,
        Some(Value::BoolValue(b)) => f64::from(u8::from(*b)),
        Some(Value::DistributionValue(d)) if d.count > 0 => d.mean,
        _ => f64::NAN,
    }
}

fn ts_to_wkt(t: Ts) -> google_cloud_wkt::Timestamp {
    google_cloud_wkt::Timestamp::clamp(t.0.div_euclid(1000), (t.0.rem_euclid(1000) * 1_000_000) as i32)
}

fn wkt_to_ts(t: &google_cloud_wkt::Timestamp) -> Ts {
    Ts(t.seconds() * 1000 + i64::from(t.nanos()) / 1_000_000)
}

fn dur_to_wkt(d: Dur) -> google_cloud_wkt::Duration {
    google_cloud_wkt::Duration::clamp(d.0.div_euclid(1000), (d.0.rem_euclid(1000) * 1_000_000) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_still_filling_period_is_dropped() {
        assert_eq!(complete_until(Ts(600_000), Dur::secs(60)), Ts(540_000));
    }
}
