//! `ebbflow demo`: the real controller loop and dashboard against a simulated Bigtable cluster,
//! faster than real time, with no cluster and no cloud account.
//!
//! The world is the one `ebbflow simulate` replays in (`sim::world`: a bundled recorded trace as
//! the load, nodes that serve after a provisioning delay, resize operations that take minutes,
//! Monitoring's delay). Only the driver differs: instead of the replay's loop, the standalone
//! engine evaluates the policy (status in a state file, Events in the log, the dashboard and
//! `/metrics` on `--listen`), on a clock that runs `--speed` times faster than the wall clock.
//!
//! The trace is moved in time so that the demo starts now, shortly before the policy's first
//! scale-out in a replay of it (at the size the replay had there), so something happens within
//! the first minute; `ebbflow status
//! --state` on the demo's state file shows the same policy as the dashboard.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::adapters::AdapterError;
use crate::api::{ScalePolicy, TargetRef};
use crate::controller::Engine;
use crate::controller::events::LogEvents;
use crate::controller::http::{self, AppState};
use crate::controller::leader::Leadership;
use crate::controller::metrics::Metrics;
use crate::controller::reconcile::{Backends, key};
use crate::controller::standalone::FileStore;
use crate::core::{Dur, Ts};
use crate::sim::Scenario;
use crate::sim::model::World;

/// `ebbflow demo` options.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// A scenario file (as for `simulate --scenario`); default: the embedded one `simulate` runs.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// How many times faster than real time the simulated clock runs (120: two hours a minute).
    #[arg(long, default_value_t = 120.0)]
    pub speed: f64,
    /// Where the dashboard, `/metrics` and `/healthz` listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the demo writes its policy file and state file [default: a new directory in the
    /// system's temporary directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Stop after this much simulated time (e.g. 6h) [default: the end of the trace].
    #[arg(long = "for", value_name = "DUR")]
    pub for_: Option<String>,
}

/// The fastest `--speed`: a simulated minute in a millisecond; faster says nothing a replay does
/// not (`ebbflow simulate`).
pub const MAX_SPEED: f64 = 60_000.0;

/// How much earlier than the policy's first resize (in a replay of the scenario) the demo starts:
/// long enough to see the load build, short enough that the first action comes within a minute.
const LEAD_IN: Dur = Dur::mins(45);

/// What a demo run did, for its last line and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSummary {
    /// Evaluations made.
    pub evaluations: u64,
    /// Resizes sent.
    pub resizes: u64,
    /// The size at the end.
    pub size: u32,
    /// The simulated time at the end.
    pub until: Ts,
}

/// The options, checked.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The scenario, built.
    pub scenario: Scenario,
    /// Simulated time per real time.
    pub speed: f64,
    /// Where the dashboard listens.
    pub listen: SocketAddr,
    /// Where the policy and state files go.
    pub dir: PathBuf,
    /// Simulated time to run for (`None`: to the end of the trace).
    pub length: Option<Dur>,
}

impl DemoArgs {
    /// Check the flags and build the scenario; the error names the flag.
    pub fn options(&self) -> Result<DemoOptions, String> {
        if !(self.speed.is_finite() && (1.0..=MAX_SPEED).contains(&self.speed)) {
            return Err(format!(
                "--speed {}: give a factor from 1 (real time) to {MAX_SPEED} (120 runs two simulated hours a real minute)",
                self.speed
            ));
        }
        let length = match &self.for_ {
            None => None,
            Some(text) => match Dur::parse(text) {
                Ok(d) if d > Dur::ZERO => Some(d),
                Ok(_) => return Err(format!("--for {text}: must be greater than 0")),
                Err(e) => return Err(format!("--for: {e}")),
            },
        };
        let file = match &self.scenario {
            Some(p) => crate::sim::scenario::ScenarioFile::load(p)?,
            None => crate::sim::cli::default_scenario_file(),
        };
        let scenario = Scenario::build(file)?;
        if !scenario.clusters.is_empty() {
            return Err("--scenario: the demo runs one target; a scenario with clusters: is for `simulate`".into());
        }
        let dir = match &self.dir {
            Some(dir) => check_dir(dir)?,
            // A new directory of this process's own (not a name another user could have made
            // first), kept after the demo so `ebbflow status` can still read it.
            None => tempfile::Builder::new()
                .prefix("ebbflow-demo-")
                .tempdir()
                .map_err(|e| format!("creating the demo's directory: {e}"))?
                .keep(),
        };
        Ok(DemoOptions { scenario, speed: self.speed, listen: self.listen, dir, length })
    }
}

/// The file that marks a directory as the demo's: the demo replaces its state file and policy
/// files, which in any other directory could be a controller's.
pub const MARKER: &str = ".ebbflow-demo";

/// `--dir DIR`: a directory that does not exist yet (created), an empty one, or one an earlier
/// demo made (it has [`MARKER`]); anything else is refused, naming what is there.
fn check_dir(dir: &Path) -> Result<PathBuf, String> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("--dir {}: {e}", dir.display())),
        Ok(mut entries) => {
            if !dir.join(MARKER).exists()
                && let Some(Ok(first)) = entries.next()
            {
                return Err(format!(
                    "--dir {}: not empty and not a demo's directory (it has {}); give a new or empty directory, or leave --dir out",
                    dir.display(),
                    first.file_name().to_string_lossy()
                ));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "").map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// The simulated world, shared by the engine's source and every target handle.
type SharedWorld = Arc<World<'static>>;

/// Backends that answer every policy from the simulated world.
struct DemoBackends(SharedWorld);

impl Backends for DemoBackends {
    type Source = SharedWorld;
    type Target = SharedWorld;
    fn source(&self) -> &SharedWorld {
        &self.0
    }
    fn target(&self, _namespace: &str, _target: &TargetRef) -> Result<SharedWorld, AdapterError> {
        Ok(self.0.clone())
    }
}

/// The scenario moved in time by `by` (every column of its trace).
fn shifted(mut sc: Scenario, by: Dur) -> Scenario {
    let t = &mut sc.trace;
    for p in t.points.iter_mut().chain(t.storage.iter_mut()) {
        p.0 = p.0 + by;
    }
    for c in &mut t.columns {
        for p in &mut c.points {
            p.0 = p.0 + by;
        }
    }
    sc
}

/// Where in the trace the demo starts, and the size the target has there: [`LEAD_IN`] before the
/// policy's first scale-out in a replay (after its first settling), at the size the replay had
/// then; the trace's start and the scenario's start size if the policy never scales out.
fn start_of(sc: &Scenario) -> (Ts, u32) {
    let first = sc.trace.points.first().map_or(Ts(0), |p| p.0);
    let run = crate::sim::run_policy(sc);
    let out = run.steps.windows(2).find(|w| w[1].desired > w[0].desired).map(|w| w[1].at);
    let Some(out) = out else { return (first, sc.model.start_size) };
    let at = (out - LEAD_IN).max(first);
    let size = run.steps.iter().take_while(|s| s.at <= at).last().map_or(sc.model.start_size, |s| s.desired);
    (at, size)
}

/// The scenario's name as a policy name: lowercase letters, digits and '-' (a scenario's name is
/// free text or a file name, and becomes a file name here).
fn policy_name(name: &str) -> String {
    let mapped: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(63).collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() { "demo".into() } else { trimmed.to_string() }
}

/// The policy the demo runs, as a standalone policy file would give it.
fn demo_policy(sc: &Scenario) -> ScalePolicy {
    let mut sp = ScalePolicy::new(&policy_name(&sc.name), sc.spec.clone());
    sp.metadata.namespace = Some(crate::policyfiles::DEFAULT_NAMESPACE.into());
    sp.metadata.generation = Some(1);
    sp
}

/// Run the demo until the trace (or `opts.length`) ends or `stop` turns true; the dashboard
/// serves on the listener given (bound by the caller, so a busy port is refused before anything
/// starts). `say` receives the lines for the person watching.
pub async fn run(
    opts: DemoOptions,
    listener: tokio::net::TcpListener,
    stop: Arc<AtomicBool>,
    mut say: impl FnMut(String),
) -> Result<DemoSummary, String> {
    std::fs::create_dir_all(opts.dir.join("policies")).map_err(|e| format!("--dir {}: {e}", opts.dir.display()))?;
    let (begin, size) = start_of(&opts.scenario);
    let mut scenario = opts.scenario;
    scenario.model.start_size = size;
    // Minutes, so the demo's times read as whole minutes like a controller's.
    let now = crate::clock::now();
    let now = Ts(now.0 - now.0.rem_euclid(60_000));
    let by = now - begin;
    let sc: &'static Scenario = Box::leak(Box::new(shifted(scenario, by)));
    let end = sc.trace.points.last().map_or(now, |p| p.0);
    let end = opts.length.map_or(end, |d| end.min(now + d));
    let sp = demo_policy(sc);
    let policy_file = opts.dir.join("policies").join(format!("{}.yaml", policy_name(&sc.name)));
    let yaml = serde_saphyr::to_string(&sp).map_err(|e| format!("writing the demo policy: {e}"))?;
    crate::policyfiles::write_atomically(&policy_file, yaml.as_bytes())
        .map_err(|e| format!("{}: {e}", policy_file.display()))?;
    let state = opts.dir.join("state.json");
    // A previous demo's state in the same --dir belongs to another run of time (the directory is
    // the demo's: `check_dir`).
    let _ = std::fs::remove_file(&state);
    let store = FileStore::open_dir(
        &state,
        crate::policyfiles::PolicyDir { policies: vec![sp.clone()], unreadable: Vec::new() },
        now,
    )
    .map_err(|e| e.to_string())?;

    let world: SharedWorld = Arc::new(crate::sim::world(sc));
    let clock_at = Arc::new(AtomicI64::new(now.0));
    let clock: crate::clock::Clock = {
        let at = clock_at.clone();
        Arc::new(move || Ts(at.load(Ordering::SeqCst)))
    };
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    metrics.leader.set(1);
    let engine = Arc::new(
        Engine::new(DemoBackends(world.clone()), store, LogEvents, Leadership::always(), metrics).with_clock(clock),
    );
    let state_http = AppState { registry: Arc::new(registry), ready: Arc::new(AtomicBool::new(true)) };
    let pages = crate::dashboard::router(engine.published());
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (quit, quitting) = tokio::sync::watch::channel(false);
    let server =
        tokio::spawn(http::serve_on(listener, http::router(state_http, pages), http::Limits::default(), async move {
            let mut q = quitting;
            let _ = q.wait_for(|v| *v).await;
        }));

    say(format!(
        "ebbflow demo: {} replayed through policy {} at {}x real time ({} simulated minutes a real second)",
        sc.trace.name,
        sc.name,
        opts.speed,
        (opts.speed / 60.0 * 100.0).round() / 100.0
    ));
    say(format!("  dashboard:  http://{addr}/"));
    say(format!(
        "  status:     ebbflow status --state {} --policies {}",
        state.display(),
        opts.dir.join("policies").display()
    ));
    say(format!("  simulated:  {} to {}  (Ctrl-C stops)", now, end));

    let k = key(&sp);
    let interval = sc.policy.interval;
    let step = Duration::from_secs_f64(interval.0 as f64 / 1000.0 / opts.speed);
    let mut summary = DemoSummary { evaluations: 0, resizes: 0, size: 0, until: now };
    let mut t = now;
    let mut next_wake = tokio::time::Instant::now();
    while t <= end && !stop.load(Ordering::SeqCst) {
        clock_at.store(t.0, Ordering::SeqCst);
        world.advance(t);
        let Some(current) = engine.store.current(&k) else { break };
        let current = Arc::new(current);
        let result = engine.evaluate(current.clone(), std::slice::from_ref(&current)).await;
        summary.evaluations += 1;
        if let Err(e) = result {
            say(format!("{t}  evaluation failed: {e}"));
        }
        let status = engine.store.current(&k).and_then(|p| p.status);
        if let Some(d) = status.as_ref().and_then(|s| s.last_decision.as_ref())
            && d.time == t.to_rfc3339()
        {
            summary.size = d.to;
            if d.to != d.from {
                summary.resizes += 1;
            }
            // Resizes, and the first decision (so the watcher sees where it starts).
            if d.to != d.from {
                say(format!("{t}  {} -> {}  {}: {}", d.from, d.to, d.reason, d.message));
            } else if summary.evaluations == 1 {
                say(format!("{t}  size {}  {}: {}", d.from, d.reason, d.message));
            }
        }
        // The state file is what `ebbflow status --state` reads.
        if let Err(e) = engine.store.flush().await {
            say(format!("writing {}: {e}", state.display()));
        }
        summary.until = t;
        t = t + interval;
        next_wake += step;
        // In slices, so Ctrl-C is heard within a fifth of a second at any speed.
        while tokio::time::Instant::now() < next_wake && !stop.load(Ordering::SeqCst) {
            let slice = tokio::time::Instant::now() + Duration::from_millis(200);
            tokio::time::sleep_until(next_wake.min(slice)).await;
        }
    }
    let _ = quit.send(true);
    let _ = server.await;
    say(format!(
        "demo ended at {} (simulated): {} evaluations, {} resizes, size {}",
        summary.until, summary.evaluations, summary.resizes, summary.size
    ));
    Ok(summary)
}

/// `ebbflow demo`: build, bind, run until the trace ends or Ctrl-C.
pub fn main(args: &DemoArgs) -> Result<(), String> {
    let opts = args.options()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = http::bind(opts.listen).await.map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        tokio::spawn({
            let stop = stop.clone();
            async move {
                crate::controller::shutdown_signal().await;
                stop.store(true, Ordering::SeqCst);
            }
        });
        run(opts, listener, stop, |line| println!("{line}")).await.map(|_| ())
    })
}

/// The demo's state file in `dir`.
pub fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}
