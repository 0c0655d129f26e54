//! The `ebbflow` command: wiring only; the work lives in the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// ebbflow: a metric-driven autoscaler for Google Cloud.
#[derive(Parser, Debug)]
#[command(name = "ebbflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the ScalePolicy CustomResourceDefinition as YAML.
    Crd,
    /// Check ScalePolicy files and report every problem with its field.
    Validate {
        /// ScalePolicy YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", ebbflow::crd::crd_yaml());
            Ok(())
        }
        Command::Validate { files } => {
            let mut failed = 0;
            for f in &files {
                match ebbflow::crd::load_policy(f) {
                    Ok((sp, _)) => println!("{}: ok ({})", f.display(), sp.spec.target.describe()),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{e}");
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
