//! Standalone controller at scale: N policies (default 1,000; `EBBFLOW_BENCH_POLICIES`) against
//! the fake Google servers, through the production backends and the file state store.
//!
//! ```sh
//! cargo bench --bench controller
//! ```
//!
//! Each policy scales its own Bigtable cluster on two metrics: the cluster's CPU (a query of its
//! own) and a request rate shared by groups of policies (ten distinct queries in all). Each
//! cluster's storage floor is one more query of its own. Three ticks are run, one virtual minute
//! apart. Reported: resident memory, per-evaluation latency, wall time per tick, and Monitoring
//! queries per tick against the number of distinct queries (the goal is one per distinct query).
//! The fake server runs in the same process (on its own thread), so its memory is included; the
//! resident size before the controller starts is reported too.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ebbflow::api::ScalePolicy;
use ebbflow::controller::Engine;
use ebbflow::controller::backends::ProdBackends;
use ebbflow::controller::events::LogEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::standalone::FileStore;
use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::GcpConfig;
use ebbflow::gcp::bigtable::storage_utilization_query;
use ebbflow::gcp::fake::{Endpoint, FakeGcp, Script};
use futures::StreamExt;

const GROUPS: usize = 10;
const TICKS: i64 = 3;
/// Evaluations in flight at once (the Controller runs reconciles concurrently too).
const CONCURRENCY: usize = 64;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn cpu_filter(i: usize) -> String {
    format!(r#"metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c{i}""#)
}

fn lb_filter(g: usize) -> String {
    format!(
        r#"metric.type="loadbalancing.googleapis.com/https/request_count" AND resource.labels.url_map_name="lb{g}""#
    )
}

fn policy(i: usize) -> ScalePolicy {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": format!("p{i}"), "namespace": "bench", "generation": 1,
                     "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {
            "target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": format!("c{i}")}},
            "minSize": 1, "maxSize": 30,
            "metrics": [
                {"name": "cpu", "target": 0.6, "query": {"filter": cpu_filter(i), "crossSeriesReducer": "REDUCE_MEAN",
                                                         "groupByFields": ["resource.labels.cluster"]}},
                {"name": "requests", "target": 20000.0, "kind": "total",
                 "query": {"filter": lb_filter(i % GROUPS), "perSeriesAligner": "ALIGN_RATE", "crossSeriesReducer": "REDUCE_SUM"}}
            ]
        }
    }))
    .expect("policy")
}

fn main() {
    let n: usize = std::env::var("EBBFLOW_BENCH_POLICIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let start = Ts::parse_rfc3339("2026-11-23T04:00:30Z").expect("time");

    let fake = FakeGcp::start_on_thread().expect("fake");
    let minutes = 31 + TICKS as usize;
    for i in 0..n {
        fake.add_bigtable_cluster("p1", "i1", &format!("c{i}"), "us-central1-b", 3);
        // Most clusters idle within tolerance; every 50th runs hot and scales out.
        let cpu = if i % 50 == 0 { 0.95 } else { 0.55 };
        let values: Vec<f64> = (0..minutes).map(|m| cpu + if m % 2 == 0 { 0.01 } else { -0.01 }).collect();
        fake.set_time_series(&cpu_filter(i), Script::regular(start - Dur::mins(30), Dur::mins(1), &values));
        let storage = storage_utilization_query(&ebbflow::api::BigtableClusterRef {
            project: "p1".into(),
            instance: "i1".into(),
            cluster: format!("c{i}"),
            storage_target: None,
        });
        fake.set_time_series(
            &storage.filter,
            Script::regular(start - Dur::mins(30), Dur::mins(1), &vec![0.1; minutes]),
        );
    }
    for g in 0..GROUPS {
        fake.set_time_series(
            &lb_filter(g),
            Script::regular(start - Dur::mins(30), Dur::mins(1), &vec![30000.0; minutes]),
        );
    }
    let distinct = n * 2 + GROUPS;
    let rss_before = rss_kib("VmRSS:");

    let dir = std::env::temp_dir().join(format!("ebbflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let at = Arc::new(AtomicI64::new(start.0));
    let clock: ebbflow::controller::reconcile::Clock = {
        let at = at.clone();
        Arc::new(move || Ts(at.load(Ordering::SeqCst)))
    };
    let policies: Vec<ScalePolicy> = (0..n).map(policy).collect();

    rt.block_on(async {
        // Quota pacing is Monitoring's real limit; the virtual minutes here pass in milliseconds.
        let gcp = GcpConfig { monitoring_queries_per_minute: u32::MAX, ..GcpConfig::for_fake(fake.endpoint()) };
        let backends = ProdBackends::with_gcp(None, gcp).await;
        let store = FileStore::open(&dir.join("state.json"), policies).expect("store");
        let engine = Arc::new(
            Engine::new(backends, store, LogEvents, Leadership::always(), Arc::new(Metrics::default()))
                .with_clock(clock.clone()),
        );
        let peers = engine.store.all();

        println!("ebbflow controller benchmark: {n} policies, {distinct} distinct Monitoring queries per tick");
        println!("tick  wall_ms  p50_ms  p99_ms  max_ms  monitoring_queries  failed");
        for t in 0..TICKS {
            at.store((start + Dur::secs(60 * t)).0, Ordering::SeqCst);
            let queries_before = fake.requests_to(Endpoint::ListTimeSeries).len();
            let began = Instant::now();
            let results: Vec<(Duration, bool)> = futures::stream::iter(engine.store.all())
                .map(|sp| {
                    let engine = engine.clone();
                    let peers = &peers;
                    async move {
                        let t0 = Instant::now();
                        let ok = engine.evaluate(sp, peers).await.is_ok();
                        (t0.elapsed(), ok)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            let wall = began.elapsed();
            let mut lat: Vec<Duration> = results.iter().map(|r| r.0).collect();
            lat.sort();
            let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
            let failed = results.iter().filter(|r| !r.1).count();
            let queries = fake.requests_to(Endpoint::ListTimeSeries).len() - queries_before;
            println!(
                "{t:>4}  {:>7.0}  {:>6.1}  {:>6.1}  {:>6.1}  {queries:>18}  {failed:>6}",
                wall.as_secs_f64() * 1e3,
                pct(0.5),
                pct(0.99),
                pct(1.0)
            );
        }
        engine.store.flush().await.expect("flush");
        let resizes = fake.resize_requests().len();
        let state_bytes = std::fs::metadata(dir.join("state.json")).map(|m| m.len()).unwrap_or(0);
        println!("resizes sent: {resizes} (expected {})", n.div_ceil(50));
        println!("state file: {:.1} MiB", state_bytes as f64 / 1048576.0);
    });
    println!(
        "resident memory: {:.1} MiB now, {:.1} MiB peak, {:.1} MiB before the controller started (fake server and its data)",
        rss_kib("VmRSS:") as f64 / 1024.0,
        rss_kib("VmHWM:") as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
