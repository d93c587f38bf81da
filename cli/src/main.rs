//! `sentinel`: Ingress Sentinel on a workstation or in CI.
//!
//! `sentinel inspect` reads EKS audit logs in any delivery form (files or
//! directories) and shows the writes that change the Ingress layer and what
//! each changed; `sentinel replay` runs the detection engine over them on a
//! local store; `sentinel approve` registers change plans.

mod approve;
mod inputs;
mod inspect;
mod replay;
mod state;

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
    /// Run the detection engine over audit logs, in time order, and print alerts.
    ///
    /// Alerts go to standard output (with --format json, one JSON object per
    /// line and nothing else); a summary goes to standard error. State (baselines,
    /// incidents, learned patterns, alerts) lives in --state across runs, so a
    /// second run over the same logs raises nothing new. Exit status: 0, 3 when
    /// some input could not be decoded, 4 when an alert reached --fail-on, 1 on error.
    Replay(replay::Args),
    /// Register a change plan in a state file: who may change what, when, and
    /// optionally into exactly which manifest.
    Approve(approve::Args),
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
        Command::Replay(args) => replay::run(&args, &mut std::io::stdout().lock(), &mut std::io::stderr().lock()),
        Command::Approve(args) => approve::run(&args, &mut std::io::stdout().lock()),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sentinel: {error:#}");
            ExitCode::from(1)
        }
    }
}
