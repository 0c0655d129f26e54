//! `ebbflow override`, `pause`, `resume` and `schedules`, and the kubectl plugin's flags (and the
//! Kubernetes client `ebbflow status` shares).
//!
//! The same binary runs as `kubectl-ebbflow` (a symlink or copy on the PATH): kubectl then finds
//! it as the plugin `kubectl ebbflow`. Overrides are stored in the policy's `spec.overrides`, so
//! they survive restarts and show in `kubectl get sp -o yaml`; in standalone mode they are
//! edited in the policy file (`--file`): only its `spec.overrides`, the rest of the file as the
//! user wrote it, and a running `ebbflow run --policies DIR` picks the edit up by itself.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::api::{PauseKind, ScalePolicy};
use crate::core::known::Schedule;
use crate::core::{Dur, Ts};
use crate::known;

mod edits;

pub use edits::{NewOverride, overrides_in_text, with_override, without_override};

/// Whether the program was started under the plugin name (`kubectl-ebbflow`, or
/// `kubectl-ebbflow.exe`), by kubectl or directly.
pub fn invoked_as_plugin(argv0: &OsStr) -> bool {
    Path::new(argv0).file_stem().and_then(OsStr::to_str).is_some_and(|s| s == "kubectl-ebbflow")
}

/// kubectl's connection flags, as the plugin receives them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeFlags {
    /// The kubeconfig context to use (as kubectl's --context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Path to the kubeconfig file [default: $KUBECONFIG, then ~/.kube/config].
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

static FLAGS: OnceLock<KubeFlags> = OnceLock::new();

/// Remember the connection flags for every command of this process (set once by `main`).
pub fn set_flags(flags: KubeFlags) {
    let _ = FLAGS.set(flags);
}

/// A client as kubectl would connect with the flags given (`--context`, `--kubeconfig`, then
/// `KUBECONFIG`, then in-cluster), and the namespace of its context.
pub async fn client() -> Result<(Client, String), String> {
    let flags = FLAGS.get().cloned().unwrap_or_default();
    let config = if flags.context.is_some() || flags.kubeconfig.is_some() {
        let opts = kube::config::KubeConfigOptions { context: flags.context.clone(), ..Default::default() };
        match &flags.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| format!("{}: cannot read kubeconfig: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &opts).await
            }
            None => kube::Config::from_kubeconfig(&opts).await,
        }
        .map_err(|e| match &flags.context {
            Some(c) => format!("kubeconfig context \"{c}\" cannot be used: {e}"),
            None => format!("kubeconfig cannot be used: {e}"),
        })?
    } else {
        kube::Config::infer().await.map_err(|e| format!("no Kubernetes API ({e}); pass --context or set KUBECONFIG"))?
    };
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| format!("cannot connect: {e}"))?;
    Ok((client, namespace))
}

/// Where the policy lives: the cluster (default) or a standalone policy file.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The ScalePolicy's name.
    pub name: String,
    /// Namespace [default: the kubeconfig context's].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Standalone mode: the policy's YAML file instead of the cluster. Only its spec.overrides is
    /// edited; comments and the other fields stay as written.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Until when: `--until TIME` or `--for DURATION`.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct Expiry {
    /// Expiry as RFC 3339 with offset, e.g. 2026-12-24T18:00:00+09:00.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Expiry as a duration from now, e.g. 2h or 90m.
    #[arg(long = "for", value_name = "DUR")]
    pub for_: Option<String>,
}

/// The longest `--for`: a pause or override of a year is already a change of policy.
pub const MAX_FOR: Dur = Dur(366 * 24 * 3_600_000);

impl Expiry {
    fn at(&self, now: Ts) -> Result<Ts, String> {
        match (&self.until, &self.for_) {
            (Some(t), _) => known::timestamp(t).map_err(|e| format!("--until: {e}")),
            (None, Some(text)) => match Dur::parse(text) {
                Ok(d) if d > MAX_FOR => Err(format!(
                    "--for {}: at most {MAX_FOR} (366 days); an override meant to last longer belongs in the policy itself (spec.minSize, spec.maxSize)",
                    crate::excerpt::quoted(text)
                )),
                Ok(d) if d > Dur::ZERO => Ok(now + d),
                Ok(_) => Err(format!("--for: must be greater than 0 (got \"{text}\")")),
                Err(e) => Err(format!("--for: {e}")),
            },
            (None, None) => Err("give --until TIME or --for DURATION".into()),
        }
    }
}

/// A duration flag's value (clap's `value_parser`), in the one grammar of durations: the one
/// policies use ([`Dur::parse`]: `90s`, `5m`, `1h30m`, `250ms`). Clap names the flag in the error.
pub fn dur_flag(text: &str) -> Result<Dur, String> {
    Dur::parse(text).map_err(|e| format!("{e} (durations are written as in policies, e.g. 90s, 5m, 1h30m or 250ms)"))
}

/// [`dur_flag`] as a [`std::time::Duration`], for flags that feed timers.
pub fn duration_flag(text: &str) -> Result<std::time::Duration, String> {
    let d = dur_flag(text)?;
    // Dur::parse reads no sign, so this never fails; the message is for the impossible case.
    u64::try_from(d.0).map(std::time::Duration::from_millis).map_err(|_| format!("\"{text}\" is negative"))
}

/// Who and why, common to override and pause.
#[derive(clap::Args, Debug, Clone)]
pub struct Why {
    /// Why (stored with the override, shown in status and Events).
    #[arg(long)]
    pub reason: String,
    /// Who [default: $USER].
    #[arg(long)]
    pub owner: Option<String>,
}

impl Why {
    fn owner(&self) -> String {
        self.owner.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into())
    }
}

/// `ebbflow override`: set the bounds until an expiry.
#[derive(clap::Args, Debug, Clone)]
pub struct OverrideArgs {
    #[command(flatten)]
    target: Target,
    /// Minimum size until the expiry.
    #[arg(long)]
    min: Option<u32>,
    /// Maximum size until the expiry.
    #[arg(long)]
    max: Option<u32>,
    #[command(flatten)]
    expiry: Expiry,
    #[command(flatten)]
    why: Why,
    /// The override's name; an override of the same name is replaced.
    #[arg(long = "name", default_value = "override")]
    override_name: String,
}

/// `ebbflow pause`: hold one direction (or both) until an expiry.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("direction").required(true).args(["scale_in", "scale_out", "freeze"])))]
pub struct PauseArgs {
    #[command(flatten)]
    target: Target,
    /// Pause scale-in only.
    #[arg(long)]
    scale_in: bool,
    /// Pause scale-out only.
    #[arg(long)]
    scale_out: bool,
    /// Pause both directions.
    #[arg(long)]
    freeze: bool,
    #[command(flatten)]
    expiry: Expiry,
    #[command(flatten)]
    why: Why,
    /// The override's name; an override of the same name is replaced.
    #[arg(long = "name", default_value = "pause")]
    override_name: String,
}

/// `ebbflow resume`: end overrides before their expiry.
#[derive(clap::Args, Debug, Clone)]
pub struct ResumeArgs {
    #[command(flatten)]
    target: Target,
    /// Only this override [default: all of them].
    #[arg(long = "name")]
    override_name: Option<String>,
}

/// `ebbflow schedules`: the next windows of each schedule, and the overrides in effect.
#[derive(clap::Args, Debug, Clone)]
pub struct SchedulesArgs {
    #[command(flatten)]
    target: Target,
    /// Windows to show per schedule.
    #[arg(long, default_value_t = 5)]
    count: usize,
}

impl PauseArgs {
    fn kind(&self) -> PauseKind {
        if self.freeze || (self.scale_in && self.scale_out) {
            PauseKind::Freeze
        } else if self.scale_in {
            PauseKind::ScaleIn
        } else {
            PauseKind::ScaleOut
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

async fn get(target: &Target) -> Result<(Api<ScalePolicy>, ScalePolicy), String> {
    let (client, default_ns) = client().await?;
    let ns = target.namespace.clone().unwrap_or(default_ns);
    let api: Api<ScalePolicy> = Api::namespaced(client, &ns);
    match api.get(&target.name).await {
        Ok(sp) => Ok((api, sp)),
        Err(kube::Error::Api(s))
            if s.code == 404 && s.message.contains("the server could not find the requested resource") =>
        {
            Err("the ScalePolicy CRD is not installed: kubectl apply -f crds/scalepolicy.yaml".into())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Err(format!(
            "no ScalePolicy \"{}\" in namespace \"{ns}\"; list them with `ebbflow status -n {ns}`",
            target.name
        )),
        Err(e) => Err(format!("reading ScalePolicy {ns}/{}: {e}", target.name)),
    }
}

/// Read, edit `spec.overrides`, write back: the cluster object under its resourceVersion (a
/// concurrent edit fails instead of being lost), or the standalone file. The message says what
/// changed and when it takes effect.
fn edit(
    target: &Target,
    change: impl FnOnce(&ScalePolicy, Ts) -> Result<Vec<crate::api::OverrideSpec>, String>,
) -> Result<String, String> {
    let now = crate::clock::now();
    if let Some(path) = &target.file {
        return edit_file(path, &target.name, change, now);
    }
    runtime()?.block_on(async {
        let (api, sp) = get(target).await?;
        let overrides = change(&sp, now)?;
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": sp.resource_version() },
            "spec": { "overrides": overrides },
        });
        api.patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => {
                "the policy changed while it was being edited; run the command again".into()
            }
            kube::Error::Api(s) if s.code == 403 => {
                format!("updating the policy was refused ({}); ask for patch on scalepolicies.ebbflow.dev", s.message)
            }
            other => format!("updating the policy failed: {other}"),
        })?;
        Ok(format!(
            "scalepolicy {}/{} updated; the controller applies it at the policy's next evaluation",
            sp.namespace().unwrap_or_default(),
            target.name
        ))
    })
}

/// [`edit`] on a standalone policy file: only the text of `spec.overrides` changes (see
/// [`overrides_in_text`]), and the file is replaced atomically, through a symlink to it.
fn edit_file(
    path: &Path,
    name: &str,
    change: impl FnOnce(&ScalePolicy, Ts) -> Result<Vec<crate::api::OverrideSpec>, String>,
    now: Ts,
) -> Result<String, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let (sp, _) = crate::crd::check_policy(&file, &text).map_err(|e| e.to_string())?;
    if sp.name_any() != name {
        return Err(format!("{file} holds ScalePolicy \"{}\", not \"{name}\"", sp.name_any()));
    }
    let overrides = change(&sp, now)?;
    let edited = edits::overrides_in_text(&text, &overrides).map_err(|why| edits::refusal(&file, &why, &overrides))?;
    if edited != text {
        // The file a symlink names is replaced; the symlink stays one.
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        crate::policyfiles::write_atomically(&real, edited.as_bytes())
            .map_err(|e| format!("{file}: cannot write: {e}"))?;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok(format!(
        "{file}: ScalePolicy {name} updated (spec.overrides only; the rest of the file is as it was)\n\
         a running `ebbflow run --policies {}` picks this up within a few seconds",
        dir.display()
    ))
}

/// Run `ebbflow override`.
pub fn run_override(args: &OverrideArgs) -> Result<(), String> {
    if args.min.is_none() && args.max.is_none() {
        return Err("give --min and/or --max (to pause a direction, use `ebbflow pause`)".into());
    }
    let msg = edit(&args.target, |sp, now| {
        let until = args.expiry.at(now)?;
        edits::with_override(
            &sp.spec,
            &NewOverride {
                name: args.override_name.clone(),
                owner: args.why.owner(),
                reason: args.why.reason.clone(),
                until,
                min_size: args.min,
                max_size: args.max,
                pause: None,
            },
            now,
        )
    })?;
    println!("{msg}");
    Ok(())
}

/// Run `ebbflow pause`.
pub fn run_pause(args: &PauseArgs) -> Result<(), String> {
    let msg = edit(&args.target, |sp, now| {
        let until = args.expiry.at(now)?;
        edits::with_override(
            &sp.spec,
            &NewOverride {
                name: args.override_name.clone(),
                owner: args.why.owner(),
                reason: args.why.reason.clone(),
                until,
                min_size: None,
                max_size: None,
                pause: Some(args.kind()),
            },
            now,
        )
    })?;
    println!("{msg}");
    Ok(())
}

/// Run `ebbflow resume`.
pub fn run_resume(args: &ResumeArgs) -> Result<(), String> {
    let msg = edit(&args.target, |sp, now| edits::without_override(&sp.spec, args.override_name.as_deref(), now))?;
    println!("{msg}");
    Ok(())
}

/// Run `ebbflow schedules`.
pub fn run_schedules(args: &SchedulesArgs) -> Result<(), String> {
    let sp = match &args.target.file {
        Some(path) => crate::crd::load_policy(path).map_err(|e| e.to_string())?.0,
        None => runtime()?.block_on(get(&args.target))?.1,
    };
    let policy = crate::spec::policy_from_spec(&sp.spec).map_err(|e| e.to_string())?;
    print!("{}", schedules_text(&policy.known.schedules, &sp.spec.schedules, crate::clock::now(), args.count));
    let now = crate::clock::now();
    let live: Vec<_> = policy.known.overrides.iter().filter(|o| o.until > now).collect();
    for o in live {
        println!(
            "override {}: {} until {} (by {}: {})",
            o.name,
            known_effect(o),
            o.until.to_rfc3339(),
            o.owner,
            o.reason
        );
    }
    Ok(())
}

fn known_effect(o: &crate::core::known::Override) -> String {
    let mut parts = Vec::new();
    if let Some(m) = o.min_size {
        parts.push(format!("min {m}"));
    }
    if let Some(m) = o.max_size {
        parts.push(format!("max {m}"));
    }
    if let Some(p) = o.pause {
        parts.push(format!("pause {p:?}"));
    }
    parts.join(", ")
}

/// The next windows of each schedule, in its own zone and in UTC (pure, for tests).
pub fn schedules_text(schedules: &[Schedule], specs: &[crate::api::ScheduleSpec], now: Ts, count: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if schedules.is_empty() {
        out.push_str("no schedules\n");
    }
    for (s, spec) in schedules.iter().zip(specs) {
        let bounds = [s.min_size.map(|m| format!("min {m}")), s.max_size.map(|m| format!("max {m}"))]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        let when = match (&spec.cron, &spec.time_zone) {
            (Some(c), Some(z)) => format!("cron \"{c}\" in {z}"),
            _ => "once".to_string(),
        };
        let _ = writeln!(out, "schedule {} ({when}, {}, {bounds}, lead {}):", s.name, Dur(s.duration.0), s.lead);
        let zone = match &s.recurrence {
            crate::core::known::Recurrence::Cron { zone, .. } => zone.clone(),
            crate::core::known::Recurrence::Once(_) => jiff::tz::TimeZone::UTC,
        };
        let windows = s.next(now, count, Dur(400 * 24 * 3_600_000));
        if windows.is_empty() {
            out.push_str("  no window ahead\n");
        }
        for w in windows {
            let local = |t: Ts| {
                jiff::Timestamp::from_millisecond(t.0)
                    .map(|ts| ts.to_zoned(zone.clone()).strftime("%Y-%m-%d %a %H:%M %Z").to_string())
                    .unwrap_or_default()
            };
            let open = if w.start <= now { "  (open now)" } else { "" };
            let _ = writeln!(
                out,
                "  {} -> {}   UTC {} -> {}   raise from {}{open}",
                local(w.start),
                local(w.end),
                w.start.to_rfc3339(),
                w.end.to_rfc3339(),
                (w.start - s.lead).to_rfc3339(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
