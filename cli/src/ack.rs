//! `sentinel ack`: acknowledge, close or reopen an alert, with who, when and
//! why. The change is a revision of its own, kept in the history and
//! published (with `--aws-*`, to the stack's topic with `event` = `status`;
//! locally, printed). The caller is who the credentials say (STS with
//! `--aws-*`, the OS user locally), beside any name given with `--as`; the
//! person an alert names cannot close it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use sentinel_core::alert::{Alert, Status};
use sentinel_core::engine::{Caller, Engine, LifecycleError};
use sentinel_core::fault::Fault;
use sentinel_core::policy::Policy;
use sentinel_core::store::{Quarantined, Sink};

use crate::Format;

/// Arguments of `sentinel ack`.
#[derive(clap::Args)]
pub struct Args {
    /// The alert id (`isa-…`).
    alert_id: String,
    /// The new status: acknowledged, resolved, false-positive, accepted-risk (or open, to reopen).
    #[arg(long)]
    status: Status,
    /// Why.
    #[arg(long)]
    reason: String,
    /// A name to record beside the authenticated caller (a ticket queue, a team member's e-mail).
    #[arg(long = "as")]
    as_name: Option<String>,
    /// Where the alert lives: a state file, or the deployed stack's tables.
    #[command(flatten)]
    state: crate::state::StateArgs,
    /// The stack's alert topic (its AlertTopicArn output): where the status revision is published.
    #[arg(long)]
    aws_topic_arn: Option<String>,
    /// How to print the new revision.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Prints the revision a local `ack` records.
struct Print<'a>(&'a mut dyn Write, Format);

impl Sink for Print<'_> {
    fn publish(&mut self, alert: &Alert) -> Result<(), Fault> {
        let text = match self.1 {
            Format::Json => serde_json::to_string(alert).unwrap_or_default(),
            Format::Text => alert.to_text(),
        };
        writeln!(self.0, "{text}").map_err(|e| Fault::io("printing the revision", e))
    }
    fn quarantine(&mut self, _: &Quarantined<'_>) -> Result<(), Fault> {
        Ok(())
    }
    fn keep_event(&mut self, _: &str, _: &str, _: &[u8]) -> Result<(), Fault> {
        Ok(())
    }
}

/// The local caller: the account the process runs as, from the system's
/// account database (not `$USER`, which the caller sets at will).
fn os_user() -> Result<String> {
    whoami::fallible::username().map_err(|e| anyhow::anyhow!("cannot tell who is calling: {e}"))
}

/// Runs `sentinel ack`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    if args.state.state.is_none() && args.state.aws_state_table.is_none() {
        bail!("say where the alert lives: --state FILE, or --aws-state-table, --aws-alerts-table and --aws-topic-arn");
    }
    let policy = Policy::default();
    let result = args.state.with_stack(args.aws_topic_arn.as_deref(), |store, stack| {
        let mut engine = Engine::new(&policy, store);
        let mut print = Print(&mut *out, args.format);
        let (principal, sink): (String, &mut dyn Sink) = match stack {
            Some(s) => (s.caller, s.sink),
            None => (os_user()?, &mut print),
        };
        let caller = Caller { principal, on_behalf_of: args.as_name.clone() };
        Ok(engine.set_status(&args.alert_id, args.status, &args.reason, &caller, sink))
    })?;
    match result {
        Ok(alert) => {
            eprintln!("alert {} is {} (revision {})", alert.alert_id, alert.status.as_str(), alert.revision);
            Ok(ExitCode::SUCCESS)
        }
        Err(
            e @ (LifecycleError::NamedCaller { .. } | LifecycleError::Unchanged { .. } | LifecycleError::NotFound(_)),
        ) => {
            eprintln!("sentinel: {e}");
            Ok(ExitCode::from(2))
        }
        Err(LifecycleError::Engine(e)) => Err(e.into()),
    }
}
