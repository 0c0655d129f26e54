//! Request sharing, a port-level concern: many policies asking the same query of any source cost
//! one query per tick.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::adapters::{AdapterError, MetricQuery, MetricSource, Series};
use crate::core::{Dur, Ts};

/// One fetch remembered by [`SharedSource`].
#[derive(Clone)]
struct Cached {
    after: Ts,
    until: Ts,
    result: Result<Series, AdapterError>,
}

/// Shares queries between policies: N policies with the same [`MetricQuery`] cost one query per
/// tick instead of N.
///
/// A fetch of `(after, until]` is served from the last query of the same `MetricQuery` when that
/// query covered the range (its `after` no later) and was made for an `until` at most `tick` away;
/// the samples are cut to the range asked. Otherwise the widest range known is queried again. A
/// failure is shared the same way, so a failing backend is not hammered by every policy in turn.
/// Concurrent fetches of the same query wait for the one in flight.
pub struct SharedSource<M> {
    inner: M,
    tick: Dur,
    entries: std::sync::Mutex<HashMap<MetricQuery, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
    queries: AtomicU64,
}

impl<M: MetricSource> SharedSource<M> {
    /// Share `inner`'s results for fetches whose `until` lies within `tick` of a cached query's.
    pub fn new(inner: M, tick: Dur) -> SharedSource<M> {
        SharedSource { inner, tick, entries: Default::default(), queries: AtomicU64::new(0) }
    }

    /// Queries passed to the inner source so far.
    pub fn queries_issued(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The wrapped source.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<M: MetricSource> MetricSource for SharedSource<M> {
    async fn fetch(&self, query: &MetricQuery, after: Ts, until: Ts) -> Result<Series, AdapterError> {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.entry(query.clone()).or_default().clone()
        };
        let mut cached = slot.lock().await;
        let fresh = cached.as_ref().filter(|c| (until - c.until).0.abs() <= self.tick.0);
        let hit = fresh.filter(|c| c.after <= after).cloned();
        let entry = match hit {
            Some(c) => c,
            None => {
                // Widen to what the last query covered, so the next policy's range is a subset.
                let from = fresh.map_or(after, |c| c.after.min(after));
                let to = fresh.map_or(until, |c| c.until.max(until));
                self.queries.fetch_add(1, Ordering::Relaxed);
                let result = self.inner.fetch(query, from, to).await;
                let c = Cached { after: from, until: to, result };
                *cached = Some(c.clone());
                c
            }
        };
        entry.result.map(|s| Series {
            samples: s.samples.into_iter().filter(|x| x.at > after && x.at <= until).collect(),
            problem: s.problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::MonitoringQuery;
    use crate::core::Sample;
    use std::sync::Mutex;

    struct Counting(Mutex<Vec<(Ts, Ts)>>);
    impl MetricSource for Counting {
        async fn fetch(&self, _q: &MetricQuery, after: Ts, until: Ts) -> Result<Series, AdapterError> {
            self.0.lock().unwrap().push((after, until));
            let samples = (1..=20).map(|i| Sample { at: Ts(i * 60_000), value: i as f64 }).collect();
            Ok(Series { samples, problem: None })
        }
    }

    fn q(filter: &str) -> MetricQuery {
        MetricQuery::Monitoring(MonitoringQuery {
            project: "p1".into(),
            filter: filter.into(),
            alignment_period: Dur::secs(60),
            per_series_aligner: "ALIGN_MEAN".into(),
            cross_series_reducer: None,
            group_by_fields: vec![],
        })
    }

    #[tokio::test]
    async fn shared_source_issues_one_query_per_distinct_query_per_tick() {
        let shared = SharedSource::new(Counting(Mutex::new(vec![])), Dur::secs(10));
        let now = Ts(20 * 60_000);
        // three policies on the same query, with different history needs, one on another query
        let a = shared.fetch(&q("cpu"), Ts(5 * 60_000), now).await.unwrap();
        let b = shared.fetch(&q("cpu"), Ts(15 * 60_000), now + Dur::secs(2)).await.unwrap();
        let c = shared.fetch(&q("other"), Ts(0), now).await.unwrap();
        assert_eq!(shared.queries_issued(), 2);
        assert_eq!(a.samples.len(), 15);
        assert_eq!(b.samples.first().unwrap().at, Ts(16 * 60_000), "served as a subset");
        assert_eq!(c.samples.len(), 20);
        // a wider range than cached in the same tick widens the query once
        shared.fetch(&q("cpu"), Ts(0), now).await.unwrap();
        shared.fetch(&q("cpu"), Ts(60_000), now).await.unwrap();
        assert_eq!(shared.queries_issued(), 3);
        // next tick: a new query
        shared.fetch(&q("cpu"), Ts(15 * 60_000), now + Dur::secs(60)).await.unwrap();
        assert_eq!(shared.queries_issued(), 4);
        let calls = shared.inner().0.lock().unwrap().clone();
        assert_eq!(calls[2], (Ts(0), now), "widened to the earliest start asked for");
    }
}
