//! Standalone controller at scale: N policies (default 1,000; `EBBFLOW_BENCH_POLICIES`) against
//! the fake Google servers, through the production backends and the file state store, for 30
//! simulated hours (`EBBFLOW_BENCH_HOURS`).
//!
//! ```sh
//! cargo bench --bench controller
//! EBBFLOW_BENCH_HOURS=2 EBBFLOW_BENCH_POLICIES=200 cargo bench --bench controller
//! ```
//!
//! Each policy scales its own Bigtable cluster on two metrics: the cluster's CPU (a query of its
//! own) and a request rate shared by groups of policies (ten distinct queries in all). Each
//! cluster's storage floor is one more query of its own. Most clusters idle within tolerance,
//! every 50th runs hot and scales out to its maximum, every 10th follows a daily cycle and
//! resizes out and in all day (so resize histories and recent decisions reach their bounds).
//!
//! Time is simulated: the engine reads a clock this benchmark sets, one evaluation of every
//! policy per simulated minute, as fast as they run, and the state file is written after each
//! (the standalone controller writes it every second). Reported:
//!
//! - for the first ticks: per-evaluation latency, wall time per tick, and Monitoring queries per
//!   tick against the number of distinct queries (the goal is one per distinct query);
//! - every simulated hour: resident memory, the live chart points and the day buckets one policy
//!   keeps, resizes sent; at the end the largest resident size and the growth after the first
//!   day, against the goal of a flat line under 64 MiB at 1,000 policies.
//!
//! The fake servers run in a child process (this binary, started again with `EBBFLOW_BENCH_FAKE`
//! set), as in the measurement that found the growth: the resident memory is the controller's
//! alone. The child is told over its stdin when to move its scripted series on, and answers with
//! the request counts of each tick.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ebbflow::api::ScalePolicy;
use ebbflow::controller::Engine;
use ebbflow::controller::backends::ProdBackends;
use ebbflow::controller::events::LogEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::reconcile::key;
use ebbflow::controller::standalone::FileStore;
use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::GcpConfig;
use futures::StreamExt;

use common::{Fake, GROUPS, mib, policy, rss_kib, serve_fake_if_child};

/// Ticks whose latency and query counts are printed.
const TIMED_TICKS: i64 = 3;
/// Evaluations in flight at once (the Controller runs reconciles concurrently too).
const CONCURRENCY: usize = 64;
/// Simulated hours, unless `EBBFLOW_BENCH_HOURS` says otherwise: more than a day, so every
/// structure bounded by a day has reached its bound and the line must be flat after it.
const HOURS: i64 = 30;
/// The goal for the resident memory of the controller with 1,000 policies.
const GOAL_MIB: f64 = 64.0;

/// Resident memory at the end of one simulated hour.
struct Sample {
    hour: i64,
    rss: u64,
}

fn main() {
    let start = Ts::parse_rfc3339("2026-11-23T04:00:30Z").expect("time");
    if serve_fake_if_child(start) {
        return;
    }
    let n: usize = std::env::var("EBBFLOW_BENCH_POLICIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let hours: i64 = std::env::var("EBBFLOW_BENCH_HOURS").ok().and_then(|v| v.parse().ok()).unwrap_or(HOURS).max(1);
    let rss_before = rss_kib("VmRSS:");
    let mut fake = Fake::start(n, start);
    fake.window(start);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let distinct = n * 2 + GROUPS;

    let dir = std::env::temp_dir().join(format!("ebbflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let at = Arc::new(AtomicI64::new(start.0));
    let clock: ebbflow::controller::reconcile::Clock = {
        let at = at.clone();
        Arc::new(move || Ts(at.load(Ordering::SeqCst)))
    };
    let policies: Vec<ScalePolicy> = (0..n).map(policy).collect();
    let keys: Vec<String> = policies.iter().map(key).collect();

    let samples = rt.block_on(async {
        // Quota pacing is Monitoring's real limit; the virtual minutes here pass in milliseconds.
        let gcp = GcpConfig { monitoring_queries_per_minute: u32::MAX, ..GcpConfig::for_fake(fake.endpoint.clone()) };
        let backends = ProdBackends::with_gcp(None, gcp).await;
        let store = FileStore::open(&dir.join("state.json"), policies).expect("store");
        let engine = Arc::new(
            Engine::new(backends, store, LogEvents, Leadership::always(), Arc::new(Metrics::default()))
                .with_clock(clock.clone()),
        );
        // The loaded policies, shared, as the standalone loop passes them (not a copy of each).
        let peers = engine.store.peers();
        let first = keys.first().cloned().unwrap_or_default();

        println!("ebbflow controller benchmark: {n} policies, {distinct} distinct Monitoring queries per tick");
        println!("tick  wall_ms  p50_ms  p99_ms  max_ms  monitoring_queries  failed");
        let began_run = Instant::now();
        let mut resizes = 0;
        let mut samples: Vec<Sample> = Vec::new();
        for t in 0..hours * 60 {
            let now = start + Dur::mins(t);
            if t > 0 && t % 60 == 0 {
                fake.window(now);
            }
            at.store(now.0, Ordering::SeqCst);
            let began = Instant::now();
            // Each policy's object is read just before its evaluation, as the standalone loop does
            // (not all 1,000 copies at once).
            let results: Vec<(Duration, bool)> = futures::stream::iter(keys.iter())
                .map(|k| {
                    let engine = engine.clone();
                    let peers = &peers;
                    async move {
                        let Some(sp) = engine.store.current(k) else { return (Duration::ZERO, false) };
                        let t0 = Instant::now();
                        let ok = engine.evaluate(Arc::new(sp), peers).await.is_ok();
                        (t0.elapsed(), ok)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            let wall = began.elapsed();
            engine.store.flush().await.expect("flush");
            let (queries, sent) = fake.count();
            resizes += sent;
            if t < TIMED_TICKS {
                let mut lat: Vec<Duration> = results.iter().map(|r| r.0).collect();
                lat.sort();
                let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
                let failed = results.iter().filter(|r| !r.1).count();
                println!(
                    "{t:>4}  {:>7.0}  {:>6.1}  {:>6.1}  {:>6.1}  {queries:>18}  {failed:>6}",
                    wall.as_secs_f64() * 1e3,
                    pct(0.5),
                    pct(0.99),
                    pct(1.0)
                );
            }
            if t + 1 == TIMED_TICKS {
                println!("resizes sent in {TIMED_TICKS} ticks: {resizes} (expected {})", n.div_ceil(50));
                println!();
                println!("hour  rss_mib  peak_mib  chart_points  day_buckets  resizes  state_mib  wall_s");
            }
            if (t + 1) % 60 == 0 {
                let hour = (t + 1) / 60;
                let rss = rss_kib("VmRSS:");
                let points = engine.history.points(&first).len();
                let day = engine
                    .store
                    .current(&first)
                    .and_then(|sp| sp.status?.history)
                    .map_or(0, |h| h.serving.split_ascii_whitespace().count());
                let state = std::fs::metadata(dir.join("state.json")).map(|m| m.len()).unwrap_or(0);
                println!(
                    "{hour:>4}  {:>7.1}  {:>8.1}  {points:>12}  {day:>11}  {resizes:>7}  {:>9.1}  {:>6.0}",
                    mib(rss),
                    mib(rss_kib("VmHWM:")),
                    state as f64 / 1048576.0,
                    began_run.elapsed().as_secs_f64()
                );
                samples.push(Sample { hour, rss });
            }
        }
        samples
    });

    println!();
    let max = samples.iter().max_by_key(|s| s.rss);
    let peak = rss_kib("VmHWM:");
    if let Some(max) = max {
        println!("resident memory: at most {:.1} MiB at the hourly samples (hour {})", mib(max.rss), max.hour);
        println!("peak (VmHWM, between samples too): {:.1} MiB", mib(peak));
        println!("before the controller started: {:.1} MiB", mib(rss_before));
    }
    // Every per-policy structure is bounded by a day at most: after it, the line must be flat.
    let after_a_day: Vec<&Sample> = samples.iter().filter(|s| s.hour >= 24).collect();
    if let (Some(first), Some(last)) = (after_a_day.first(), after_a_day.last()) {
        println!("growth from hour {} to hour {}: {:+.1} MiB", first.hour, last.hour, mib(last.rss) - mib(first.rss));
    } else {
        println!("growth after the first day: not measured (EBBFLOW_BENCH_HOURS={hours}, under 25)");
    }
    let worst = mib(peak.max(max.map_or(0, |s| s.rss)));
    println!(
        "goal: at most {GOAL_MIB:.0} MiB with 1,000 policies: {} ({worst:.1} MiB with {n} policies)",
        if worst <= GOAL_MIB { "met" } else { "NOT met" }
    );
    drop(fake);
    let _ = std::fs::remove_dir_all(&dir);
}
