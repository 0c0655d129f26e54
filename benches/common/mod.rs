//! What the controller benchmarks share: the fleet of policies (each its own Bigtable cluster,
//! CPU and a request rate shared by groups), the scripted series, and the fake Google APIs in a
//! child process, so that the resident memory measured is the controller's alone.

#![allow(dead_code)] // each benchmark uses its own part

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use ebbflow::api::ScalePolicy;
use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::bigtable::storage_utilization_query;
use ebbflow::gcp::fake::{Endpoint, FakeGcp, Script};

/// Groups of policies that share a request-rate query.
pub const GROUPS: usize = 10;
/// Set in the child process that serves the fake Google APIs: `policies start_ms`.
pub const FAKE_ENV: &str = "EBBFLOW_BENCH_FAKE";
/// The scripted series cover this much before the simulated time they are set at (the longest
/// first fetch of a policy is 30 minutes)...
pub const SCRIPT_BEFORE: Dur = Dur::mins(45);
/// ...and this much after (they are moved on every simulated hour).
pub const SCRIPT_AFTER: Dur = Dur::mins(75);

pub fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn cpu_filter(i: usize) -> String {
    format!(r#"metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c{i}""#)
}

pub fn lb_filter(g: usize) -> String {
    format!(
        r#"metric.type="loadbalancing.googleapis.com/https/request_count" AND resource.labels.url_map_name="lb{g}""#
    )
}

pub fn storage_filter(i: usize) -> String {
    storage_utilization_query(&ebbflow::api::BigtableClusterRef {
        project: "p1".into(),
        instance: "i1".into(),
        cluster: format!("c{i}"),
        storage_target: None,
        steer_autoscaler: false,
    })
    .filter
}

/// CPU of cluster `i` at `t`, `since` the start of the run: within the tolerance of the 0.6
/// target for most; hot for every 50th; for every 10th a daily cycle between 0.25 and 0.85,
/// starting in the band.
pub fn cpu(i: usize, t: Ts, since: Ts) -> f64 {
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

pub fn policy(i: usize) -> ScalePolicy {
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
/// Monitoring queries and resizes since the last count, then the clusters read, and forgets them: the fake logs every
/// request, which over 30 hours would be gigabytes). Anything else, or the end of stdin, ends it.
pub fn serve_fake(n: usize, since: Ts) {
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
                // Which clusters were read (each evaluation reads its target once): the
                // benchmark of replicas counts every policy evaluated once per interval.
                let read: Vec<String> = fake
                    .requests_to(Endpoint::GetCluster)
                    .iter()
                    .filter_map(|r| r.path.rsplit_once("/clusters/c").map(|(_, i)| i.to_string()))
                    .collect();
                fake.clear_log();
                format!("{queries} {resizes} {}", read.join(" "))
            }
            _ => break,
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}

/// In the child process started by [`Fake::start`] (its environment says so): serve the fake
/// until told to stop, and say so; otherwise `false` and nothing is done. `start`: the run's
/// start, unless the environment names another.
pub fn serve_fake_if_child(start: Ts) -> bool {
    let Ok(args) = std::env::var(FAKE_ENV) else { return false };
    let mut words = args.split_whitespace();
    let n = words.next().and_then(|w| w.parse().ok()).unwrap_or(1000);
    let since = words.next().and_then(|w| w.parse().ok()).map_or(start, Ts);
    serve_fake(n, since);
    true
}

/// Every series, one point a minute from `SCRIPT_BEFORE` before `at` to `SCRIPT_AFTER` after it.
pub fn script(fake: &FakeGcp, n: usize, at: Ts, since: Ts) {
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
pub struct Fake {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    /// Where the fake Google APIs listen.
    pub endpoint: String,
}

impl Fake {
    pub fn start(n: usize, since: Ts) -> Fake {
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

    pub fn ask(&mut self, line: &str) -> String {
        writeln!(self.input, "{line}").and_then(|()| self.input.flush()).expect("writing to the fake");
        let mut answer = String::new();
        self.output.read_line(&mut answer).expect("reading from the fake");
        answer.trim().to_string()
    }

    /// Script the series around `at`.
    pub fn window(&mut self, at: Ts) {
        let answer = self.ask(&format!("window {}", at.0));
        assert_eq!(answer, "ok", "the fake did not script the series");
    }

    /// Monitoring queries and resizes since the last count.
    pub fn count(&mut self) -> (usize, usize) {
        let (queries, resizes, _) = self.count_reads();
        (queries, resizes)
    }

    /// Monitoring queries, resizes and the index of each cluster read since the last count.
    pub fn count_reads(&mut self) -> (usize, usize, Vec<usize>) {
        let answer = self.ask("count");
        let mut words = answer.split_whitespace().map(|w| w.parse().unwrap_or(0));
        (words.next().unwrap_or(0), words.next().unwrap_or(0), words.collect())
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        // Any unknown command ends the child's loop, and with it the process.
        let _ = writeln!(self.input, "quit").and_then(|()| self.input.flush());
        let _ = self.child.wait();
    }
}
