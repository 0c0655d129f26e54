//! The `ebbflow` command: wiring only; the work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// ebbflow: a metric-driven autoscaler for Google Cloud.
#[derive(Parser, Debug)]
#[command(name = "ebbflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    kube: ebbflow::commands::KubeFlags,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the ScalePolicy CustomResourceDefinition as YAML.
    Crd,
    /// Print the JSON Schema of the dashboard's JSON API (docs/api.schema.json).
    ApiSchema,
    /// Replay recorded metrics through a policy and compare it with baselines (no cluster, no cloud).
    Simulate(ebbflow::sim::cli::SimulateArgs),
    /// Watch the controller work, with no cluster and no cloud: the real control loop and
    /// dashboard against a simulated Bigtable cluster driven by a recorded trace, faster than
    /// real time.
    Demo(ebbflow::demo::DemoArgs),
    /// Search a policy's parameters on recorded traces: the Pareto front of cost, overload and
    /// scale actions, and the cheapest variant that meets your constraints, as ready-to-apply YAML.
    Tune(ebbflow::sim::tune::TuneArgs),
    /// Run the controller: in-cluster (default) or standalone with --policies and --state.
    Run(RunArgs),
    /// Save Cloud Monitoring ListTimeSeries responses (all pages, as a JSON array) for `simulate`.
    Record(RecordArgs),
    /// Show what every policy is doing and why (from the cluster, or --state FILE in standalone mode).
    Status(ebbflow::readout::cli::StatusArgs),
    /// Set a policy's minimum and/or maximum until an expiry (stored in spec.overrides).
    Override(ebbflow::commands::OverrideArgs),
    /// Pause scale-in, scale-out or both until an expiry (stored in spec.overrides).
    Pause(ebbflow::commands::PauseArgs),
    /// End a policy's overrides and pauses before their expiry.
    Resume(ebbflow::commands::ResumeArgs),
    /// Show a policy's next schedule windows (in their time zone and UTC) and its overrides.
    Schedules(ebbflow::commands::SchedulesArgs),
    /// Check ScalePolicy files and report every problem with its field.
    Validate {
        /// ScalePolicy YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Print an error as `error: ` and its causes, never with `{:?}`: for an anyhow error that
/// includes a backtrace whenever RUST_BACKTRACE is set, and a bad input file is not a crash.
fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<()> {
    use clap::{CommandFactory, FromArgMatches};
    // Installed as `kubectl-ebbflow`, the same binary is the kubectl plugin `kubectl ebbflow`.
    let plugin = std::env::args_os().next().is_some_and(|a| ebbflow::commands::invoked_as_plugin(&a));
    let cli = if plugin {
        Cli::from_arg_matches(&Cli::command().bin_name("kubectl ebbflow").get_matches()).unwrap_or_else(|e| e.exit())
    } else {
        Cli::parse()
    };
    ebbflow::commands::set_flags(cli.kube.clone());
    match cli.command {
        Command::Override(args) => ebbflow::commands::run_override(&args).map_err(anyhow::Error::msg),
        Command::Pause(args) => ebbflow::commands::run_pause(&args).map_err(anyhow::Error::msg),
        Command::Resume(args) => ebbflow::commands::run_resume(&args).map_err(anyhow::Error::msg),
        Command::Schedules(args) => ebbflow::commands::run_schedules(&args).map_err(anyhow::Error::msg),
        Command::Crd => {
            print!("{}", ebbflow::crd::crd_yaml());
            Ok(())
        }
        Command::ApiSchema => {
            println!("{}", serde_json::to_string_pretty(&ebbflow::dashboard::api_schema())?);
            Ok(())
        }
        Command::Run(args) => run(args),
        Command::Simulate(args) => ebbflow::sim::cli::run(&args).map_err(anyhow::Error::msg),
        Command::Demo(args) => ebbflow::demo::main(&args).map_err(anyhow::Error::msg),
        Command::Tune(args) => ebbflow::sim::tune::run(&args).map_err(anyhow::Error::msg),
        Command::Record(args) => record(args),
        Command::Status(args) => ebbflow::readout::cli::run(&args).map_err(anyhow::Error::msg),
        Command::Validate { files } => {
            let mut failed = 0;
            // Names and duplicates across the files (standalone mode refuses both): the files
            // involved are reported here, and not as ok below.
            let across = ebbflow::policyfiles::check_paths(&files);
            for p in &across {
                eprintln!("{p}");
            }
            let involved = |f: &PathBuf| across.iter().any(|p| p.concerns(&f.display().to_string()));
            failed += files.iter().filter(|f| involved(f)).count();
            for f in files.iter().filter(|f| !involved(f)) {
                match ebbflow::crd::load_policy(f) {
                    Ok((sp, _)) => println!("{}: ok ({})", f.display(), sp.spec.target.describe()),
                    Err(e) => {
                        failed += 1;
                        // One line per problem: schema and rule problems together, each with its field.
                        for line in e.lines() {
                            eprintln!("{line}");
                        }
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} files are invalid", files.len());
            }
            Ok(())
        }
    }
}

/// `ebbflow run` options.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Standalone mode: a directory of ScalePolicy YAML files (no cluster needed). Without it,
    /// run as the in-cluster controller.
    #[arg(long, requires = "state")]
    policies: Option<PathBuf>,
    /// Standalone mode: the JSON file that keeps each policy's status and state across restarts.
    #[arg(long, requires = "policies")]
    state: Option<PathBuf>,
    /// Address for /metrics, /healthz, /readyz and the dashboard (no authentication; the
    /// in-cluster Deployment passes 0.0.0.0:8080 for Prometheus).
    #[arg(long, default_value = "127.0.0.1:8080", env = "EBBFLOW_LISTEN")]
    listen: std::net::SocketAddr,
    /// After SIGTERM, how long ticks in progress may run on before they are abandoned (the state
    /// is saved and the process exits), e.g. 10s or 1m30s.
    #[arg(
        long,
        default_value = "10s",
        value_name = "DUR",
        env = "EBBFLOW_SHUTDOWN_GRACE",
        value_parser = ebbflow::commands::duration_flag
    )]
    shutdown_grace: std::time::Duration,
    /// Override the Google API endpoint (e.g. a local fake).
    #[arg(long, env = "EBBFLOW_GCP_ENDPOINT")]
    gcp_endpoint: Option<String>,
    /// Opt-in: export decisions every minute to Cloud Monitoring in this project, as
    /// custom.googleapis.com/ebbflow/* metrics (needs roles/monitoring.metricWriter there).
    #[arg(long, value_name = "PROJECT", env = "EBBFLOW_EXPORT_PROJECT")]
    export_monitoring: Option<String>,
    /// Namespace of the leader-election Lease (in-cluster).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ebbflow-system")]
    lease_namespace: String,
    /// This instance's identity in the Lease (in-cluster; the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// In-cluster: share the policies among the replicas in this many shards (2-64), one Lease
    /// each, every replica holding an even share; 1 (the default): one leader evaluates all.
    #[arg(long, env = "EBBFLOW_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    shards: u32,
}

fn run(args: RunArgs) -> Result<()> {
    use ebbflow::controller::{backends::BackendConfig, cluster, standalone};
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Some(url) = &args.gcp_endpoint {
        ebbflow::controller::check_gcp_endpoint(url).map_err(anyhow::Error::msg)?;
    }
    if let Some(project) = &args.export_monitoring {
        ebbflow::controller::check_project_id(project).map_err(anyhow::Error::msg)?;
    }
    let backends = BackendConfig { gcp_endpoint: args.gcp_endpoint, export_project: args.export_monitoring };
    let shutdown_grace = args.shutdown_grace;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async move {
        match (args.policies, args.state) {
            (Some(policies), Some(state)) => {
                standalone::run(standalone::StandaloneOptions {
                    policies,
                    state,
                    listen: args.listen,
                    backends,
                    shutdown_grace,
                    pages: ebbflow::dashboard::router,
                })
                .await?;
            }
            _ => {
                let identity = args.identity.unwrap_or_else(|| {
                    std::env::var("HOSTNAME").unwrap_or_else(|_| format!("ebbflow-{}", std::process::id()))
                });
                cluster::run(cluster::ClusterOptions {
                    listen: args.listen,
                    lease_namespace: args.lease_namespace,
                    identity,
                    shards: args.shards,
                    backends,
                    shutdown_grace,
                    pages: ebbflow::dashboard::router,
                })
                .await?;
            }
        }
        Ok(())
    });
    // Abandoned calls may still hold runtime threads; they must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// `ebbflow record` options.
#[derive(clap::Args, Debug)]
struct RecordArgs {
    /// Project whose time series to read.
    #[arg(long)]
    project: String,
    /// Monitoring filter, e.g. `metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c1"`.
    #[arg(long)]
    filter: String,
    /// Start of the range (RFC 3339, exclusive).
    #[arg(long)]
    from: String,
    /// End of the range (RFC 3339, inclusive).
    #[arg(long)]
    to: String,
    /// File to write the JSON array of responses to.
    #[arg(long)]
    out: PathBuf,
    /// Alignment period, e.g. 60s or 5m.
    #[arg(long, default_value = "60s", value_name = "DUR", value_parser = ebbflow::commands::dur_flag)]
    alignment_period: ebbflow::core::Dur,
    /// Per-series aligner.
    #[arg(long, default_value = "ALIGN_MEAN")]
    aligner: String,
    /// Cross-series reducer, e.g. REDUCE_MEAN.
    #[arg(long)]
    reducer: Option<String>,
    /// Group-by fields for the reducer (repeat the flag for several).
    #[arg(long = "group-by")]
    group_by: Vec<String>,
    /// Override the Google API endpoint (e.g. a local fake); anonymous credentials are used then.
    #[arg(long, env = "EBBFLOW_GCP_ENDPOINT")]
    gcp_endpoint: Option<String>,
}

fn record(args: RecordArgs) -> Result<()> {
    use ebbflow::core::Ts;
    let from = Ts::parse_rfc3339(&args.from).map_err(anyhow::Error::msg)?;
    let to = Ts::parse_rfc3339(&args.to).map_err(anyhow::Error::msg)?;
    let query = ebbflow::adapters::MonitoringQuery {
        project: args.project,
        filter: args.filter,
        alignment_period: args.alignment_period,
        per_series_aligner: args.aligner,
        cross_series_reducer: args.reducer,
        group_by_fields: args.group_by,
    };
    let cfg = ebbflow::gcp::GcpConfig::new(args.gcp_endpoint);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let pages = rt.block_on(ebbflow::gcp::monitoring::record(&cfg, &query, from, to))?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&pages)?)?;
    eprintln!("wrote {} page(s) to {}", pages.as_array().map_or(0, Vec::len), args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ebbflow").chain(args.iter().copied()))
    }

    /// `--shutdown-grace` reads durations as policies write them ("1h30m"), its default is one
    /// of them, and anything else is refused naming the flag and the grammar.
    #[test]
    fn shutdown_grace_takes_the_duration_grammar_of_policies() {
        let grace = |extra: &[&str]| {
            parse(&[&["run", "--policies", "p", "--state", "s.json"][..], extra].concat()).map(|cli| {
                match cli.command {
                    Command::Run(args) => args.shutdown_grace,
                    other => panic!("not run: {other:?}"),
                }
            })
        };
        assert_eq!(grace(&["--shutdown-grace", "1h30m"]).expect("1h30m"), std::time::Duration::from_secs(5400));
        assert_eq!(grace(&["--shutdown-grace", "250ms"]).expect("250ms"), std::time::Duration::from_millis(250));
        assert_eq!(grace(&[]).expect("the default"), std::time::Duration::from_secs(10));
        for bad in ["90 minutes", "1day", "10"] {
            let e = grace(&["--shutdown-grace", bad]).expect_err("refused").to_string();
            assert!(e.contains("--shutdown-grace") && e.contains("1h30m"), "{bad}: {e}");
        }
    }

    /// `record --alignment-period` is read by the same grammar, and named when it is wrong.
    #[test]
    fn alignment_period_takes_the_duration_grammar_of_policies() {
        let record = |period: &str| {
            let args = ["record", "--project", "p", "--filter", "f", "--from", "a", "--to", "b", "--out", "o"];
            parse(&[&args[..], &["--alignment-period", period][..]].concat()).map(|cli| match cli.command {
                Command::Record(args) => args.alignment_period,
                other => panic!("not record: {other:?}"),
            })
        };
        assert_eq!(record("1m30s").expect("1m30s"), ebbflow::core::Dur::secs(90));
        let e = record("90 minutes").expect_err("refused").to_string();
        assert!(e.contains("--alignment-period") && e.contains("1h30m"), "{e}");
    }
}
