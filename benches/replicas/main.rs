//! A fleet of policies shared by replicas in shards (`ebbflow run --shards N`, issue 26): N
//! policies (default 10,000; `EBBFLOW_BENCH_POLICIES`) over R replicas (default 3;
//! `EBBFLOW_BENCH_REPLICAS`) in S shards (default 8, as `deploy/`; `EBBFLOW_BENCH_SHARDS`), for a
//! number of simulated hours (default 2; `EBBFLOW_BENCH_HOURS`).
//!
//! ```sh
//! cargo bench --bench replicas
//! EBBFLOW_BENCH_POLICIES=1000 EBBFLOW_BENCH_HOURS=1 cargo bench --bench replicas
//! ```
//!
//! Each replica is its own process, as each pod is, built as `ebbflow run` builds it: the shard
//! Leases (`ShardLeases`, stepped every 5 simulated seconds), the kube-rs reflector that watches
//! every policy of the fleet, the engine with the production Google backends, status written by
//! server-side apply and Events. They talk over HTTP to a Kubernetes API server in this process
//! (`apiserver.rs`) and to the fake Google APIs in a child process (the policies, series and
//! clusters of `cargo bench --bench controller`). Time is simulated: every simulated minute each
//! replica reconciles every policy in its cache, as its Controller requeues them at their
//! interval; it evaluates those of its shards and passes over the rest. The replicas take their
//! turns one after the other, so the Monitoring queries and cluster reads the fake logs during a
//! turn are that replica's.
//!
//! Reported per replica: shards and policies held, tick wall time, Monitoring queries per tick,
//! CPU seconds per simulated hour (the watch of the whole fleet's status writes included),
//! resident memory; for the fleet: policies read by no replica or by two in a minute (counted at
//! the fake targets), status writes, conflicts, and the sizing rule (policies per replica per GiB).

mod apiserver;
#[path = "../common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ebbflow::api::ScalePolicy;
use ebbflow::controller::Engine;
use ebbflow::controller::backends::ProdBackends;
use ebbflow::controller::cluster::{Context, KubeStatus, reconcile};
use ebbflow::controller::events::KubeEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::shards::ShardLeases;
use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::GcpConfig;
use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use apiserver::ApiServer;
use common::{FAKE_ENV, Fake, mib, policy, rss_kib, serve_fake_if_child};

/// Set in a replica's process: `identity api_url gcp_endpoint shards`.
const REPLICA_ENV: &str = "EBBFLOW_BENCH_REPLICA";
/// Evaluations in flight at once in a replica (the Controller runs reconciles concurrently).
const CONCURRENCY: usize = 64;
/// Lease steps per simulated minute (`shards::STEP` is 5 s).
const STEPS_PER_MINUTE: i64 = 12;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU time this process has used (user and system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// One replica's process: reads commands from stdin, a line each, and answers a line.
fn serve_replica(args: &str) {
    let words: Vec<&str> = args.split_whitespace().collect();
    let [identity, api_url, gcp_endpoint, shards] = words[..] else {
        panic!("{REPLICA_ENV}: expected `identity api_url gcp_endpoint shards`, got {args:?}");
    };
    let shards: u32 = shards.parse().expect("shards");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let at = Arc::new(AtomicI64::new(0));
        let clock: ebbflow::clock::Clock = {
            let at = at.clone();
            Arc::new(move || Ts(at.load(Ordering::SeqCst)))
        };
        let config = kube::Config::new(api_url.parse().expect("the API server's URL"));
        let client = kube::Client::try_from(config).expect("kube client");
        let (leases, held) = ShardLeases::new(client.clone(), "ebbflow-system", identity, shards, clock.clone());

        // The cache of every policy of the fleet, as the Controller's reflector keeps it; the
        // newest resourceVersion seen tells the coordinator it has caught up.
        let (store, writer) = reflector::store::<ScalePolicy>();
        let seen = Arc::new(AtomicU64::new(0));
        let api = kube::Api::<ScalePolicy>::namespaced(client.clone(), apiserver::POLICY_NS);
        tokio::spawn({
            let seen = seen.clone();
            reflector(writer, watcher(api, watcher::Config::default().any_semantic()))
                .default_backoff()
                .applied_objects()
                .for_each(move |o| {
                    if let Ok(o) = o
                        && let Some(rv) = o.resource_version().and_then(|v| v.parse::<u64>().ok())
                    {
                        seen.fetch_max(rv, Ordering::SeqCst);
                    }
                    async {}
                })
        });

        let gcp =
            GcpConfig { monitoring_queries_per_minute: u32::MAX, ..GcpConfig::for_fake(gcp_endpoint.to_string()) };
        let engine = Engine::new(
            ProdBackends::with_gcp(None, gcp).await,
            KubeStatus::new(client.clone()),
            KubeEvents::new(client.clone(), Some(identity.to_string())),
            Leadership::sharded(held, clock.clone()),
            Arc::new(Metrics::default()),
        )
        .with_clock(clock.clone())
        .with_identity(identity);
        let ctx = Arc::new(Context { engine, store: store.clone() });

        let mut out = std::io::stdout().lock();
        let mut lines = std::io::stdin().lines();
        while let Some(Ok(line)) = lines.next() {
            let mut w = line.split_whitespace();
            let reply = match (w.next(), w.next().and_then(|v| v.parse::<i64>().ok())) {
                (Some("time"), Some(ms)) => {
                    at.store(ms, Ordering::SeqCst);
                    "ok".to_string()
                }
                (Some("step"), _) => match leases.step().await {
                    Ok(h) => format!("{}", h.mask),
                    Err(e) => format!("error {e}"),
                },
                // Wait until the cache has seen resourceVersion `rv` and holds `n` policies.
                (Some("sync"), Some(rv)) => {
                    let n: usize = w.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    let began = Instant::now();
                    while (seen.load(Ordering::SeqCst) < rv as u64 || store.state().len() < n)
                        && began.elapsed() < Duration::from_secs(120)
                    {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    format!("{} {}", store.state().len(), began.elapsed().as_millis())
                }
                (Some("tick"), _) => {
                    let policies = store.state();
                    let owned = policies.iter().filter(|p| ctx.engine.leadership.owns(p)).count();
                    let began = Instant::now();
                    let mut lat: Vec<(Duration, bool)> = futures::stream::iter(policies)
                        .map(|p| {
                            let ctx = ctx.clone();
                            async move {
                                let mine = ctx.engine.leadership.owns(&p);
                                let t0 = Instant::now();
                                let ok = reconcile(p, ctx).await.is_ok();
                                (if mine { Some(t0.elapsed()) } else { None }, ok)
                            }
                        })
                        .buffer_unordered(CONCURRENCY)
                        .filter_map(|(d, ok)| async move { d.map(|d| (d, ok)) })
                        .collect()
                        .await;
                    let wall = began.elapsed();
                    let failed = lat.iter().filter(|l| !l.1).count();
                    lat.sort();
                    let pct = |p: f64| {
                        lat.get(((lat.len().max(1) - 1) as f64 * p) as usize).map_or(0.0, |l| l.0.as_secs_f64() * 1e3)
                    };
                    format!(
                        "{owned} {failed} {:.1} {:.1} {:.1} {} {} {:.2}",
                        wall.as_secs_f64() * 1e3,
                        pct(0.5),
                        pct(0.99),
                        rss_kib("VmRSS:"),
                        rss_kib("VmHWM:"),
                        cpu_seconds()
                    )
                }
                _ => break,
            };
            if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });
}

/// A replica's process and the pipes to it.
struct Replica {
    name: String,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Replica {
    fn start(name: &str, api_url: &str, gcp: &str, shards: u32) -> Replica {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let mut child = Command::new(exe)
            .env(REPLICA_ENV, format!("{name} {api_url} {gcp} {shards}"))
            .env_remove(FAKE_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a replica's process");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Replica { name: name.to_string(), child, input, output }
    }

    fn ask(&mut self, line: &str) -> String {
        writeln!(self.input, "{line}").and_then(|()| self.input.flush()).expect("writing to a replica");
        let mut answer = String::new();
        self.output.read_line(&mut answer).expect("reading from a replica");
        answer.trim().to_string()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit").and_then(|()| self.input.flush());
        let _ = self.child.wait();
    }
}

/// What one replica's `tick` answered.
#[derive(Debug, Default, Clone, Copy)]
struct Turn {
    owned: usize,
    failed: usize,
    wall_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss: u64,
    hwm: u64,
    cpu_total_s: f64,
    queries: usize,
}

impl Turn {
    fn parse(line: &str) -> Turn {
        let f: Vec<f64> = line.split_whitespace().map(|w| w.parse().unwrap_or(f64::NAN)).collect();
        let g = |i: usize| f.get(i).copied().unwrap_or(f64::NAN);
        Turn {
            owned: g(0) as usize,
            failed: g(1) as usize,
            wall_ms: g(2),
            p50_ms: g(3),
            p99_ms: g(4),
            rss: g(5) as u64,
            hwm: g(6) as u64,
            cpu_total_s: g(7),
            queries: 0,
        }
    }
}

fn main() {
    let start = Ts::parse_rfc3339("2026-11-23T04:00:30Z").expect("time");
    if serve_fake_if_child(start) {
        return;
    }
    if let Ok(args) = std::env::var(REPLICA_ENV) {
        serve_replica(&args);
        return;
    }
    let n: usize = env_or("EBBFLOW_BENCH_POLICIES", 10_000);
    let count: usize = env_or("EBBFLOW_BENCH_REPLICAS", 3).max(1);
    let shards: u32 = env_or("EBBFLOW_BENCH_SHARDS", 8).clamp(2, 64);
    let hours: i64 = env_or("EBBFLOW_BENCH_HOURS", 2).max(1);

    let mut fake = Fake::start(n, start);
    fake.window(start);
    // The API server on a runtime of its own threads, in this process: its memory and CPU are
    // not the replicas'.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (api, url) = rt.block_on(ApiServer::start(n * 3));
    for i in 0..n {
        api.create_policy(serde_json::to_value(policy(i)).expect("json"));
    }
    let names: Vec<String> = (0..count).map(|r| format!("ebbflow-{}", (b'a' + r as u8) as char)).collect();
    let mut replicas: Vec<Replica> =
        names.iter().map(|name| Replica::start(name, &url, &fake.endpoint, shards)).collect();
    let set_time = |replicas: &mut [Replica], at: Ts| {
        for r in replicas.iter_mut() {
            assert_eq!(r.ask(&format!("time {}", at.0)), "ok");
        }
    };
    let sync = |replicas: &mut [Replica], rv: u64| -> Vec<String> {
        replicas.iter_mut().map(|r| r.ask(&format!("sync {rv} {n}"))).collect()
    };
    println!("ebbflow replicas benchmark: {n} policies, {count} replicas, {shards} shards, {hours} simulated hours");
    let began = Instant::now();
    let synced = sync(&mut replicas, api.policies_version());
    println!("caches filled (policies cached, ms): {synced:?} in {:.1} s", began.elapsed().as_secs_f64());

    // Two simulated minutes of Lease steps before the first evaluation: the replicas see each
    // other and the shards settle (each step gives back at most one surplus shard).
    let warm = start - Dur::mins(2);
    for s in 0..2 * STEPS_PER_MINUTE {
        let at = warm + Dur::secs(5 * s);
        set_time(&mut replicas, at);
        for r in replicas.iter_mut() {
            r.ask("step");
        }
    }
    let holders = api.lease_holders();
    let held: Vec<usize> = names.iter().map(|n| holders.values().filter(|h| *h == n).count()).collect();
    println!("shards held after the warm-up: {held:?} (of {shards})");
    let _ = api.take_counts();
    let _ = fake.count_reads();

    println!();
    println!("min  replica     shards  policies  wall_ms  p50_ms  p99_ms  queries  failed  rss_mib");
    let minutes = hours * 60;
    let mut last: Vec<Turn> = vec![Turn::default(); count];
    let mut skipped_total = 0usize;
    let mut doubled_total = 0usize;
    let mut worst_skip = 0usize;
    let mut per_minute_wall: Vec<Vec<f64>> = vec![Vec::new(); count];
    let mut per_minute_queries: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut hourly: Vec<(i64, Vec<Turn>, apiserver::Counts)> = Vec::new();
    let mut counts_hour = apiserver::Counts::default();
    let mut cpu_at_hour: Vec<f64> = vec![0.0; count];
    let run_began = Instant::now();
    for t in 0..minutes {
        let now = start + Dur::mins(t);
        if t > 0 && t % 60 == 0 {
            fake.window(now);
        }
        // The Lease steps of the minute before, then every replica's turn at `now`.
        for s in 1..STEPS_PER_MINUTE {
            let at = now - Dur::mins(1) + Dur::secs(5 * s);
            set_time(&mut replicas, at);
            for r in replicas.iter_mut() {
                let held = r.ask("step");
                assert!(!held.starts_with("error"), "{}: {held}", r.name);
            }
        }
        set_time(&mut replicas, now);
        for r in replicas.iter_mut() {
            r.ask("step");
        }
        let mut reads = vec![0u8; n];
        for (i, r) in replicas.iter_mut().enumerate() {
            // Each replica's cache has what the others wrote: its own writes of the minute
            // before came back through the watch before it evaluates again.
            r.ask(&format!("sync {} {n}", api.policies_version()));
            let mut turn = Turn::parse(&r.ask("tick"));
            let (queries, _, read) = fake.count_reads();
            turn.queries = queries;
            for c in read {
                if let Some(x) = reads.get_mut(c) {
                    *x = x.saturating_add(1);
                }
            }
            per_minute_wall[i].push(turn.wall_ms);
            per_minute_queries[i].push(queries);
            if t < 3 || (t + 1) % 60 == 0 {
                let shards_held = api.lease_holders().values().filter(|h| **h == r.name).count();
                println!(
                    "{t:>3}  {:<10}  {shards_held:>6}  {:>8}  {:>7.0}  {:>6.1}  {:>6.1}  {queries:>7}  {:>6}  {:>7.1}",
                    r.name,
                    turn.owned,
                    turn.wall_ms,
                    turn.p50_ms,
                    turn.p99_ms,
                    turn.failed,
                    mib(turn.rss)
                );
            }
            last[i] = turn;
        }
        let skipped = reads.iter().filter(|c| **c == 0).count();
        let doubled = reads.iter().filter(|c| **c > 1).count();
        skipped_total += skipped;
        doubled_total += doubled;
        worst_skip = worst_skip.max(skipped);
        let c = api.take_counts();
        counts_hour.status_writes += c.status_writes;
        counts_hour.conflicts += c.conflicts;
        counts_hour.lease_requests += c.lease_requests;
        counts_hour.events += c.events;
        counts_hour.lists += c.lists;
        counts_hour.watches += c.watches;
        counts_hour.unserved.extend(c.unserved);
        if (t + 1) % 60 == 0 {
            let hour = (t + 1) / 60;
            println!(
                "hour {hour}: status writes {}, conflicts {}, lease requests {}, events {}, lists {}, watches {}, \
                 policies unread in a minute {skipped}, read twice {doubled}, stored status JSON {:.0} MiB, \
                 wall {:.0} s",
                counts_hour.status_writes,
                counts_hour.conflicts,
                counts_hour.lease_requests,
                counts_hour.events,
                counts_hour.lists,
                counts_hour.watches,
                api.policies_json_bytes() as f64 / 1048576.0,
                run_began.elapsed().as_secs_f64()
            );
            for (i, turn) in last.iter().enumerate() {
                println!(
                    "  {}: CPU {:.1} s this simulated hour, resident {:.1} MiB (peak {:.1})",
                    names[i],
                    turn.cpu_total_s - cpu_at_hour[i],
                    mib(turn.rss),
                    mib(turn.hwm)
                );
                cpu_at_hour[i] = turn.cpu_total_s;
            }
            if !counts_hour.unserved.is_empty() {
                counts_hour.unserved.sort();
                counts_hour.unserved.dedup();
                println!("  requests the benchmark's API server does not serve: {:?}", counts_hour.unserved);
            }
            hourly.push((hour, last.clone(), std::mem::take(&mut counts_hour)));
        }
    }

    println!();
    println!("summary ({n} policies, {count} replicas, {shards} shards, {hours} simulated hours):");
    for (i, name) in names.iter().enumerate() {
        let mut wall = per_minute_wall[i][1.min(per_minute_wall[i].len())..].to_vec();
        wall.sort_by(f64::total_cmp);
        let med = wall.get(wall.len() / 2).copied().unwrap_or(0.0);
        let max = wall.last().copied().unwrap_or(0.0);
        let q = &per_minute_queries[i];
        let q_med = {
            let mut q = q[1.min(q.len())..].to_vec();
            q.sort();
            q.get(q.len() / 2).copied().unwrap_or(0)
        };
        let turn = last[i];
        let per_gib = turn.owned as f64 / (mib(turn.hwm) / 1024.0);
        println!(
            "  {name}: {} policies; tick wall median {med:.0} ms, max {max:.0} ms (after the first); \
             Monitoring queries per tick median {q_med}; resident {:.1} MiB, peak {:.1} MiB; \
             {per_gib:.0} policies evaluated per GiB of peak",
            turn.owned,
            mib(turn.rss),
            mib(turn.hwm)
        );
    }
    println!(
        "  policies read by no replica in a minute: {skipped_total} in all (worst minute {worst_skip}); \
         read by two or more: {doubled_total}"
    );
    drop(replicas);
    drop(fake);
    drop(rt);
}
