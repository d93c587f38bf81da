//! `sentinel`: Ingress Sentinel on a workstation or in CI.
//!
//! `sentinel inspect` reads EKS audit logs in any delivery form (files or
//! directories) and shows the writes that change the Ingress layer and what
//! each changed; `sentinel replay` runs the detection engine over them on a
//! local store; `sentinel approve` registers change plans; `sentinel check`
//! judges manifests before they ship; `sentinel baseline seed` starts the
//! baselines from the cluster as it stands; `sentinel policy validate`
//! checks a policy file.

mod ack;
mod approve;
mod check;
mod inputs;
mod inspect;
mod policy_cmd;
mod replay;
mod report;
mod seed;
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
    /// Judge Kubernetes manifests before they ship, with the live rules.
    ///
    /// Manifest rules judge each object on what it is; with a baseline
    /// (--against a `kubectl get -o json` dump or manifests, or --state), the
    /// change rules judge what each object changes, as a live alert would.
    /// Formats: text, json, sarif (code scanning), github (annotations).
    /// Exit status: 0, 3 when some input could not be read, 4 when a finding
    /// reached --fail-on, 1 on error.
    Check(check::Args),
    /// Acknowledge, close or reopen an alert, with who, when and why.
    ///
    /// The change is a revision of its own, kept in the alert's history and
    /// published. The person an alert names cannot close it. Exit status: 0,
    /// 2 when the change is refused (named caller, same status, no such alert).
    Ack(ack::Args),
    /// Compliance report from DynamoDB exports of the alerts and history
    /// tables, or from `replay --format json` output: index.html (one
    /// self-contained page), alerts.csv, signals.csv and summary.json.
    Report(report::Args),
    /// Baselines: what the engine knows of each object.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// The policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum BaselineCommand {
    /// Record the cluster as it stands (`kubectl get … -A -o json`) as the
    /// approved baseline of each object the engine does not know yet.
    Seed(seed::Args),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Read a policy as the engine would; name the line and column of what is wrong.
    Validate(policy_cmd::ValidateArgs),
}

/// Parses `low`, `medium`, `high` or `critical`.
pub fn parse_severity(s: &str) -> Result<sentinel_core::rules::Severity, String> {
    s.parse()
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
        Command::Ack(args) => ack::run(&args, &mut std::io::stdout().lock()),
        Command::Report(args) => report::run(&args, &mut std::io::stdout().lock()),
        Command::Check(args) => check::run(&args, &mut std::io::stdout().lock()),
        Command::Baseline(BaselineCommand::Seed(args)) => seed::run(&args, &mut std::io::stdout().lock()),
        Command::Policy(PolicyCommand::Validate(args)) => policy_cmd::validate(&args, &mut std::io::stdout().lock()),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sentinel: {error:#}");
            ExitCode::from(1)
        }
    }
}
