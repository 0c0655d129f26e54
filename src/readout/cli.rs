//! `ebbflow status`: the IO around the readout. Reads policies from the Kubernetes API or from
//! standalone mode's state file, then hands them to the pure functions in [`crate::readout`].

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::{ScalePolicy, ScalePolicyStatus};
use crate::core::{Dur, Ts};
use crate::readout::{self, Paint, PolicyView};

/// Show every policy: size, metric vs target, last decision, timers and health.
///
/// With NAME, explain one policy in full: why it is or is not scaling now, its conditions and its
/// recent decisions.
#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// One policy to explain in full: NAME or NAMESPACE/NAME.
    pub name: Option<String>,
    /// Only this namespace [default: all namespaces].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Read standalone mode's state file instead of the Kubernetes API.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With --state: the policies directory standalone mode runs with, so the readout knows each
    /// policy's mode and metric order (the state file holds status only).
    #[arg(long, value_name = "DIR", requires = "state")]
    pub policies: Option<PathBuf>,
    /// Refresh in place until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Refresh period for --watch, e.g. 2s or 1m30s.
    // Hyphen values reach the parser, so `--interval -1s` is refused as a bad duration of
    // --interval rather than as an unknown flag `-1`.
    #[arg(
        long,
        default_value = "2s",
        value_name = "DUR",
        allow_hyphen_values = true,
        value_parser = crate::commands::duration_flag
    )]
    pub interval: Duration,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The last 24 hours as a timeline, newest first: resizes with how long they took,
    /// decisions that changed something, problems; each with its reason in words. With NAME,
    /// that policy's; without, the fleet's.
    #[arg(long)]
    pub events: bool,
}

/// Most events the fleet timeline shows.
pub const FLEET_EVENTS: usize = 200;

/// `-o` formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned text for people.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Read standalone mode's state file: `{"policies": {"ns/name": {"status": {...}}}}`.
pub fn views_from_state_file(path: &Path, specs: &[ScalePolicy]) -> Result<Vec<PolicyView>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse_state_file(&bytes, specs).map_err(|e| format!("{}: not an ebbflow state file: {e}", path.display()))
}

/// The views in a state file's content; `specs` (from the policies directory) fill in the spec.
pub fn parse_state_file(bytes: &[u8], specs: &[ScalePolicy]) -> Result<Vec<PolicyView>, String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        status: ScalePolicyStatus,
    }
    #[derive(serde::Deserialize)]
    struct File {
        policies: std::collections::BTreeMap<String, Entry>,
    }
    // serde_json quotes a wrong value whole, and a state file may be damaged into one huge line.
    let file: File = serde_json::from_slice(bytes).map_err(|e| {
        let at = if e.line() > 0 { format!(" (line {}, column {})", e.line(), e.column()) } else { String::new() };
        format!("{}{at}", crate::crd::humanize_serde(&e.to_string()))
    })?;
    let mut views: Vec<PolicyView> = file
        .policies
        .into_iter()
        .map(|(key, e)| {
            let (ns, name) = key.split_once('/').unwrap_or(("default", &key));
            let spec = specs.iter().find(|sp| PolicyView::from_policy(sp).key() == key).map(|sp| sp.spec.clone());
            PolicyView { namespace: ns.to_string(), name: name.to_string(), spec, status: Some(e.status) }
        })
        .collect();
    // Policies in the directory that the controller has not written yet still exist.
    for sp in specs {
        let v = PolicyView::from_policy(sp);
        if !views.iter().any(|x| x.key() == v.key()) {
            views.push(PolicyView { status: None, ..v });
        }
    }
    views.sort_by_key(PolicyView::key);
    Ok(views)
}

async fn views_from_cluster(namespace: Option<&str>) -> Result<Vec<PolicyView>, String> {
    let (client, _) =
        crate::commands::client().await.map_err(|e| format!("{e}; for standalone mode use --state FILE"))?;
    let api: kube::Api<ScalePolicy> = match namespace {
        Some(ns) => kube::Api::namespaced(client, ns),
        None => kube::Api::all(client),
    };
    let list = api.list(&Default::default()).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "listing ScalePolicies was refused ({}); try -n NAMESPACE or ask for list on scalepolicies.ebbflow.dev",
            s.message
        ),
        kube::Error::Api(s) if s.code == 404 => {
            "the ScalePolicy CRD is not installed: kubectl apply -f crds/scalepolicy.yaml".to_string()
        }
        other => format!("listing ScalePolicies failed: {other}"),
    })?;
    let mut views: Vec<PolicyView> = list.items.iter().map(PolicyView::from_policy).collect();
    views.sort_by_key(PolicyView::key);
    Ok(views)
}

fn load(args: &StatusArgs, rt: &tokio::runtime::Runtime) -> Result<Vec<PolicyView>, String> {
    let mut views = match &args.state {
        Some(path) => {
            let specs = match &args.policies {
                Some(dir) => crate::policyfiles::load_dir(dir).map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            views_from_state_file(path, &specs)?
        }
        None => rt.block_on(views_from_cluster(args.namespace.as_deref()))?,
    };
    if let Some(ns) = &args.namespace {
        views.retain(|v| &v.namespace == ns);
    }
    Ok(views)
}

/// The one policy `name` (NAME or NAMESPACE/NAME) designates among `views`.
pub fn find<'a>(views: &'a [PolicyView], name: &str) -> Result<&'a PolicyView, String> {
    let hits: Vec<&PolicyView> = views.iter().filter(|v| v.key() == name || v.name == name).collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no ScalePolicy named {name}")),
        many => {
            let keys: Vec<String> = many.iter().map(|v| v.key()).collect();
            Err(format!("{name} is ambiguous: {}; use NAMESPACE/NAME or -n", keys.join(", ")))
        }
    }
}

/// Render `views` as `args` asks, at `now`.
pub fn render(args: &StatusArgs, views: &[PolicyView], now: Ts, paint: Paint) -> Result<String, String> {
    let ser = |v: &dyn erased::Ser| -> Result<String, String> {
        match args.output {
            Output::Json => v.json(),
            _ => v.yaml(),
        }
    };
    if args.events {
        let events = match &args.name {
            Some(name) => readout::timeline::events(find(views, name)?, now),
            None => readout::timeline::fleet(views, now, FLEET_EVENTS),
        };
        return match args.output {
            Output::Table => Ok(readout::timeline::text(&events, now)),
            _ => ser(&events),
        };
    }
    match (&args.name, args.output) {
        (Some(name), Output::Table) => Ok(readout::explain(find(views, name)?, now, paint)),
        (Some(name), _) => ser(&readout::detail(find(views, name)?, now)),
        (None, Output::Table) => {
            let rows: Vec<readout::Row> = views.iter().map(|v| readout::row(v, now)).collect();
            Ok(readout::table(&rows, paint))
        }
        (None, _) => {
            let rows: Vec<readout::Row> = views.iter().map(|v| readout::row(v, now)).collect();
            ser(&rows)
        }
    }
}

/// Serialize either of the two shapes without making `render` generic over them.
mod erased {
    pub trait Ser {
        fn json(&self) -> Result<String, String>;
        fn yaml(&self) -> Result<String, String>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> Result<String, String> {
            serde_json::to_string_pretty(self).map(|s| s + "\n").map_err(|e| e.to_string())
        }
        fn yaml(&self) -> Result<String, String> {
            serde_saphyr::to_string(self).map_err(|e| e.to_string())
        }
    }
}

/// Shortest refresh period for --watch: each refresh lists every policy from the API server
/// (or reads the state file), and a tighter loop only burns the server's and the terminal's time.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Longest refresh period for --watch; beyond a day a watch is almost certainly a typo.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Check `--interval` (negative values never get here: clap refuses them as not a duration).
pub fn check_interval(interval: Duration) -> Result<(), String> {
    if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        return Err(format!(
            "--interval {}: the refresh period must be between {} and {}; e.g. --interval 2s",
            shown(interval),
            shown(MIN_INTERVAL),
            shown(MAX_INTERVAL)
        ));
    }
    Ok(())
}

/// `d` written as durations are written everywhere else (`1h30m`, `250ms`).
fn shown(d: Duration) -> Dur {
    Dur(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time a demo's status is shown at: now, or the newest decision if that is later. `ebbflow
/// demo` runs faster than real time, so its state reads as of its newest decision rather than
/// as decisions from the future.
pub fn shown_now(views: &[PolicyView]) -> Ts {
    views
        .iter()
        .filter_map(|v| v.status.as_ref()?.last_decision.as_ref())
        .filter_map(|d| Ts::parse_rfc3339(&d.time).ok())
        .fold(crate::clock::now(), Ts::max)
}

/// Run the command; the error is the message for the user.
pub fn run(args: &StatusArgs) -> Result<(), String> {
    // Checked with or without --watch: a wrong value is a mistake either way, and it is cheaper
    // to hear about it before the first refresh.
    check_interval(args.interval)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let paint = readout::stdout_paint();
    let tty = std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout();
    let mut first = true;
    loop {
        let views = load(args, &rt);
        // Only a demo's state runs ahead of the wall clock on purpose; anywhere else a status
        // from the future is clock skew, which the readout must show, not adopt.
        let demo = args.state.as_deref().and_then(Path::parent).is_some_and(|d| d.join(crate::demo::MARKER).exists());
        let now = match views.as_deref() {
            Ok(views) if demo => shown_now(views),
            _ => crate::clock::now(),
        };
        let text = views.and_then(|views| render(args, &views, now, paint));
        if !args.watch {
            print!("{}", text?);
            return Ok(());
        }
        // In watch mode a failed read is shown and retried: the controller may be restarting.
        let body = text.unwrap_or_else(|e| format!("error: {e}\n"));
        let header = format!("every {}: ebbflow status  {}\n\n", shown(args.interval), now.to_rfc3339());
        let frame = if tty {
            // Home, draw, clear what is left of the previous frame: no flicker.
            let clear = if std::mem::take(&mut first) { "\x1b[2J" } else { "" };
            format!("{clear}\x1b[H{}{}\x1b[J", paint.dim(&header), body.replace('\n', "\x1b[K\n"))
        } else {
            format!("{header}{body}\n")
        };
        let _ = stdout.write_all(frame.as_bytes());
        let _ = stdout.flush();
        std::thread::sleep(args.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser, Debug)]
    struct Status {
        #[command(flatten)]
        args: StatusArgs,
    }

    fn interval(extra: &[&str]) -> Result<Duration, String> {
        Status::try_parse_from(std::iter::once("status").chain(extra.iter().copied()))
            .map(|s| s.args.interval)
            .map_err(|e| e.to_string())
    }

    /// `--interval` reads durations as policies write them, and names itself and the grammar
    /// when given anything else; out of range, the bounds are written in that grammar too.
    #[test]
    fn interval_takes_the_duration_grammar_of_policies() {
        assert_eq!(interval(&[]), Ok(Duration::from_secs(2)), "the default");
        assert_eq!(interval(&["--interval", "1m30s"]), Ok(Duration::from_secs(90)));
        for bad in ["90 minutes", "2 s", "1day", "-1s"] {
            let e = interval(&["--interval", bad]).expect_err("refused");
            assert!(e.contains("--interval") && e.contains("1h30m"), "{bad}: {e}");
        }
        let e = check_interval(Duration::from_secs(2 * 24 * 3600)).expect_err("two days");
        assert!(e.contains("--interval 48h") && e.contains("between 1s and 24h"), "{e}");
    }
}
