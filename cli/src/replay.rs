//! `sentinel replay`: the detection engine over audit-log files, on a local store.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use sentinel_core::alert::Alert;
use sentinel_core::decode::Options;
use sentinel_core::engine::{Engine, Stats};
use sentinel_core::fault::Fault;
use sentinel_core::keys;
use sentinel_core::plan::ChangePlan;
use sentinel_core::policy::Policy;
use sentinel_core::rules::Severity;
use sentinel_core::store::{Plans, Quarantined, Sink, Store};
use serde::Deserialize;

use crate::{Format, inputs};

/// Arguments of `sentinel replay`.
#[derive(clap::Args)]
pub struct Args {
    /// EKS audit logs: files or directories, in any supported framing.
    #[arg(long, num_args = 1.., required_unless_present = "cloudtrail")]
    audit: Vec<PathBuf>,
    /// CloudTrail: S3 log files, JSON records, EventBridge events or CloudWatch Logs deliveries.
    #[arg(long, num_args = 1..)]
    cloudtrail: Vec<PathBuf>,
    /// The policy file (TOML). Without one, quiet defaults apply: content
    /// rules fire, the learned model judges hours, new actors and new hosts;
    /// no actor is unapproved and no plan is required.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Change plans to register before replaying (TOML, `[[plans]]`).
    #[arg(long)]
    approvals: Option<PathBuf>,
    /// Where state lives; without a flag, in memory for this run.
    #[command(flatten)]
    state: crate::state::StateArgs,
    /// Output format for alerts on standard output.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Exit with status 4 if any alert reaches this severity.
    #[arg(long, value_parser = crate::parse_severity)]
    fail_on: Option<Severity>,
    /// Keep evidence here: the raw audit event behind each alert
    /// (`events/<cluster>/<audit id>.json`) and every record that could not
    /// be processed, with its raw bytes (`quarantine/<id>.bin` and `.json`).
    #[arg(long)]
    evidence: Option<PathBuf>,
    #[command(flatten)]
    limits: inputs::LimitArgs,
}

/// The approvals file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsFile {
    #[serde(default)]
    plans: Vec<ChangePlan>,
}

/// Reads a policy file, or the defaults.
pub fn load_policy(path: Option<&Path>) -> Result<Policy> {
    let Some(path) = path else { return Ok(Policy::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Policy::from_toml(&text).with_context(|| format!("invalid policy {}", path.display()))
}

/// Reads an approvals file.
pub fn load_plans(path: &Path) -> Result<Vec<ChangePlan>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ApprovalsFile = toml::from_str(&text).with_context(|| format!("invalid approvals {}", path.display()))?;
    Ok(file.plans)
}

/// Prints each alert revision as it is published; reports and keeps
/// quarantined records; keeps evidence when asked to.
struct Printer<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    format: Format,
    evidence: Option<PathBuf>,
    worst: Option<Severity>,
    by_severity: [u64; 4],
    quarantined: u64,
    /// Signals already printed per alert, so text shows only what is new.
    shown: HashMap<String, usize>,
}

impl Printer<'_> {
    fn write_file(&self, relative: &Path, bytes: &[u8]) -> Result<(), Fault> {
        let Some(dir) = &self.evidence else { return Ok(()) };
        let path = dir.join(relative);
        let operation = || format!("writing {}", path.display());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Fault::io(operation(), e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| Fault::io(operation(), e))
    }
}

impl Sink for Printer<'_> {
    fn publish(&mut self, alert: &Alert) -> Result<(), Fault> {
        let written = match self.format {
            Format::Json => serde_json::to_string(alert)
                .map_err(std::io::Error::other)
                .and_then(|line| writeln!(self.out, "{line}")),
            Format::Text => {
                let shown = self.shown.insert(alert.alert_id.clone(), alert.signals.len()).unwrap_or(0);
                writeln!(self.out, "{}", alert.to_text_since(shown))
            }
        };
        written.map_err(|e| Fault::io(format!("printing alert {}", alert.alert_id), e))?;
        self.worst = self.worst.max(Some(alert.severity));
        if alert.revision == 1 {
            self.by_severity[alert.severity as usize] += 1;
        }
        Ok(())
    }

    fn quarantine(&mut self, record: &Quarantined<'_>) -> Result<(), Fault> {
        self.quarantined += 1;
        let line = format!("quarantined: {}: {}", record.location, record.reason);
        writeln!(self.err, "{}", sentinel_core::text::escape(&line))
            .map_err(|e| Fault::io("writing to standard error", e))?;
        let key = record.key();
        let description = record.describe().to_string();
        self.write_file(Path::new(&keys::quarantined(&key, "json")), description.as_bytes())?;
        match record.raw {
            Some(raw) => self.write_file(Path::new(&keys::quarantined(&key, "bin")), raw),
            None => Ok(()),
        }
    }

    fn keep_event(&mut self, cluster: &str, audit_id: &str, raw: &[u8]) -> Result<(), Fault> {
        // Without --evidence the events stay where they were read from: the input files.
        self.write_file(Path::new(&keys::kept_event(cluster, audit_id)), raw)
    }
}

/// Runs the command: alerts to `out`, the summary to `err`.
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<ExitCode> {
    let policy = load_policy(args.policy.as_deref())?;
    args.state.with_store(|store| replay(args, &policy, store, out, err))
}

fn replay(
    args: &Args,
    policy: &Policy,
    store: &dyn Store,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode> {
    let mut plans = 0;
    if let Some(path) = &args.approvals {
        for plan in load_plans(path)? {
            store.put_plan(&plan, plan.valid_from)?;
            plans += 1;
        }
    }
    let options = Options { limits: args.limits.limits(), report_skipped: false };
    let mut decoded = inputs::Inputs::default();
    if !args.audit.is_empty() {
        decoded.extend(inputs::decode_kind(&args.audit, &options, inputs::Kind::Audit)?);
    }
    if !args.cloudtrail.is_empty() {
        decoded.extend(inputs::decode_kind(&args.cloudtrail, &options, inputs::Kind::CloudTrail)?);
    }
    let mut printer = Printer {
        out,
        err: &mut *err,
        format: args.format,
        evidence: args.evidence.clone(),
        worst: None,
        by_severity: [0; 4],
        quarantined: 0,
        shown: HashMap::new(),
    };
    for error in &decoded.errors {
        let reason = error.kind.to_string();
        printer.quarantine(&Quarantined::of(error, &reason))?;
    }
    let mut engine = Engine::new(policy, store);
    engine.run(&decoded.records, &decoded.cloudtrail, &mut printer)?;
    let (worst, by_severity, quarantined) = (printer.worst, printer.by_severity, printer.quarantined);
    summary(err, &decoded, engine.stats(), &by_severity, plans)?;
    let failed = args.fail_on.is_some_and(|threshold| worst.is_some_and(|w| w >= threshold));
    Ok(if failed {
        ExitCode::from(4)
    } else if decoded.damaged() || quarantined > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(err: &mut dyn Write, d: &inputs::Inputs, s: &Stats, by: &[u64; 4], plans: usize) -> Result<()> {
    let c = &d.counts;
    writeln!(
        err,
        "records: {} read, {} relevant ({} denied, {} access, {} CloudTrail), {} skipped, {} malformed, {} input errors",
        c.records,
        c.kept + c.denied + c.access,
        c.denied,
        c.access,
        d.cloudtrail.len(),
        c.skipped.total(),
        c.malformed,
        c.input_errors
    )?;
    writeln!(
        err,
        "changes: {} processed, {} routine, {} approved and recorded, {} already applied, {} arrived late, \
         {} untrusted and quarantined; {} plans registered",
        s.events, s.routine, s.approved, s.duplicates, s.late, s.quarantined, plans
    )?;
    writeln!(
        err,
        "alerts: {} new (critical {}, high {}, medium {}, low {}), {} updates; {} signals, {} suppressed, \
         {} held below the alert threshold",
        s.alerts_opened, by[3], by[2], by[1], by[0], s.alerts_updated, s.signals, s.suppressed, s.held
    )?;
    Ok(())
}
