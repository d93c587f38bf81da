//! `sentinel`: Ingress Sentinel on a workstation or in CI.
//!
//! `sentinel inspect` reads EKS audit logs in any delivery form (files or
//! directories) and shows the writes that change the Ingress layer and what
//! each changed.

mod inputs;
mod inspect;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Ingress Sentinel: catches insider changes to Kubernetes Ingress on Amazon EKS.
#[derive(Parser)]
#[command(name = "sentinel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the audit events that change Ingress routing, TLS, allowlists and
    /// annotations, with what each changed where an earlier state is in the input.
    ///
    /// Reads CloudWatch Logs subscription events, Kinesis and Firehose
    /// deliveries, CloudWatch export files and plain JSON lines, gzip or not.
    /// Exit status: 0 when everything decoded, 3 when some records or inputs
    /// could not be (they are listed), 1 when an input could not be opened.
    Inspect(inspect::Args),
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Format {
    /// Readable text; attacker-controlled strings are escaped.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(&args, &mut std::io::stdout().lock()),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sentinel: {error:#}");
            ExitCode::from(1)
        }
    }
}
