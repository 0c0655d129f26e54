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

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
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
use ebbflow::gcp::bigtable::storage_utilization_query;
use ebbflow::gcp::fake::{Endpoint, FakeGcp, Script};
use futures::StreamExt;

const GROUPS: usize = 10;
/// Ticks whose latency and query counts are printed.
const TIMED_TICKS: i64 = 3;
/// Evaluations in flight at once (the Controller runs reconciles concurrently too).
const CONCURRENCY: usize = 64;
/// Simulated hours, unless `EBBFLOW_BENCH_HOURS` says otherwise: more than a day, so every
/// structure bounded by a day has reached its bound and the line must be flat after it.
const HOURS: i64 = 30;
/// The goal for the resident memory of the controller with 1,000 policies.
const GOAL_MIB: f64 = 64.0;
/// Set in the child process that serves the fake Google APIs: `policies start_ms`.
const FAKE_ENV: &str = "EBBFLOW_BENCH_FAKE";
/// The scripted series cover this much before the simulated time they are set at (the longest
/// first fetch of a policy is 30 minutes)...
const SCRIPT_BEFORE: Dur = Dur::mins(45);
/// ...and this much after (they are moved on every simulated hour).
const SCRIPT_AFTER: Dur = Dur::mins(75);

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn cpu_filter(i: usize) -> String {
    format!(r#"metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c{i}""#)
}

fn lb_filter(g: usize) -> String {
    format!(
        r#"metric.type="loadbalancing.googleapis.com/https/request_count" AND resource.labels.url_map_name="lb{g}""#
    )
}

fn storage_filter(i: usize) -> String {
    storage_utilization_query(&ebbflow::api::BigtableClusterRef {
        project: "p1".into(),
        instance: "i1".into(),
        cluster: format!("c{i}"),
        storage_target: None,
    })
    .filter
}

/// CPU of cluster `i` at `t`, `since` the start of the run: within the tolerance of the 0.6
/// target for most; hot for every 50th; for every 10th a daily cycle between 0.25 and 0.85,
/// starting in the band.
fn cpu(i: usize, t: Ts, since: Ts) -> f64 {
    let wiggle = if t.0.div_euclid(60_000) % 2 == 0 { 0.01 } else { -0.01 };
    if i.is_multiple_of(50) {
        0.95 + wiggle
    } else if i.is_multiple_of(10) {
        let day = (t - since).0 as f64 / 86_400_000.0;
        0.55 + 0.3 * (day * std::f64::consts::TAU).sin() + wiggle
    } else {
        0.55 + wiggle
    }
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

/// The child process: the fake Google APIs with `n` clusters. Reads commands from stdin, one a
/// line: `window MS` (script the series around that time; answers `ok`), `count` (answers the
/// Monitoring queries and resizes since the last count, and forgets them: the fake logs every
/// request, which over 30 hours would be gigabytes). Anything else, or the end of stdin, ends it.
fn serve_fake(n: usize, since: Ts) {
    let fake = FakeGcp::start_on_thread().expect("fake");
    for i in 0..n {
        fake.add_bigtable_cluster("p1", "i1", &format!("c{i}"), "us-central1-b", 3);
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", fake.endpoint()).and_then(|()| out.flush()).is_err() {
        return;
    }
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let reply = match (words.next(), words.next().and_then(|w| w.parse::<i64>().ok())) {
            (Some("window"), Some(at)) => {
                script(&fake, n, Ts(at), since);
                "ok".to_string()
            }
            (Some("count"), _) => {
                let queries = fake.requests_to(Endpoint::ListTimeSeries).len();
                let resizes = fake.resize_requests().len();
                fake.clear_log();
                format!("{queries} {resizes}")
            }
            _ => break,
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}

/// Every series, one point a minute from `SCRIPT_BEFORE` before `at` to `SCRIPT_AFTER` after it.
fn script(fake: &FakeGcp, n: usize, at: Ts, since: Ts) {
    let from = Ts((at - SCRIPT_BEFORE).0.div_euclid(60_000) * 60_000);
    let minutes = ((SCRIPT_BEFORE + SCRIPT_AFTER).0 / 60_000) as usize;
    let times: Vec<Ts> = (0..minutes).map(|m| from + Dur::mins(m as i64)).collect();
    for i in 0..n {
        let values: Vec<f64> = times.iter().map(|t| cpu(i, *t, since)).collect();
        fake.set_time_series(&cpu_filter(i), Script::regular(from, Dur::mins(1), &values));
        fake.set_time_series(&storage_filter(i), Script::regular(from, Dur::mins(1), &vec![0.1; minutes]));
    }
    for g in 0..GROUPS {
        fake.set_time_series(&lb_filter(g), Script::regular(from, Dur::mins(1), &vec![30000.0; minutes]));
    }
}

/// The child process serving the fake, and the pipes to talk to it.
struct Fake {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    endpoint: String,
}

impl Fake {
    fn start(n: usize, since: Ts) -> Fake {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let mut child = Command::new(exe)
            .env(FAKE_ENV, format!("{n} {}", since.0))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the fake's process");
        let input = child.stdin.take().expect("the fake's stdin");
        let mut output = BufReader::new(child.stdout.take().expect("the fake's stdout"));
        let mut endpoint = String::new();
        output.read_line(&mut endpoint).expect("the fake's endpoint");
        Fake { child, input, output, endpoint: endpoint.trim().to_string() }
    }

    fn ask(&mut self, line: &str) -> String {
        writeln!(self.input, "{line}").and_then(|()| self.input.flush()).expect("writing to the fake");
        let mut answer = String::new();
        self.output.read_line(&mut answer).expect("reading from the fake");
        answer.trim().to_string()
    }

    /// Script the series around `at`.
    fn window(&mut self, at: Ts) {
        let answer = self.ask(&format!("window {}", at.0));
        assert_eq!(answer, "ok", "the fake did not script the series");
    }

    /// Monitoring queries and resizes since the last count.
    fn count(&mut self) -> (usize, usize) {
        let answer = self.ask("count");
        let mut words = answer.split_whitespace().map(|w| w.parse().unwrap_or(0));
        (words.next().unwrap_or(0), words.next().unwrap_or(0))
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        // Any unknown command ends the child's loop, and with it the process.
        let _ = writeln!(self.input, "quit").and_then(|()| self.input.flush());
        let _ = self.child.wait();
    }
}

/// Resident memory at the end of one simulated hour.
struct Sample {
    hour: i64,
    rss: u64,
}

fn main() {
    let start = Ts::parse_rfc3339("2026-11-23T04:00:30Z").expect("time");
    if let Ok(args) = std::env::var(FAKE_ENV) {
        let mut words = args.split_whitespace();
        let n = words.next().and_then(|w| w.parse().ok()).unwrap_or(1000);
        let since = words.next().and_then(|w| w.parse().ok()).map_or(start, Ts);
        serve_fake(n, since);
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
