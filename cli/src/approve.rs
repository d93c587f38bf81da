//! `sentinel approve`: register a change plan before deploying.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use sentinel_core::IngressState;
use sentinel_core::plan::{ChangePlan, manifest_digest};
use sentinel_core::policy::{Pattern, Span};
use sentinel_core::store::Plans;

/// Arguments of `sentinel approve`.
#[derive(clap::Args)]
pub struct Args {
    /// Where to register the plan: a state file, or the deployed stack's tables.
    #[command(flatten)]
    state: crate::state::StateArgs,
    /// Cluster.
    #[arg(long)]
    cluster: String,
    /// Namespace.
    #[arg(long)]
    namespace: String,
    /// Object name or pattern.
    #[arg(long)]
    name: String,
    /// Who will make the change: a pattern over username, IAM role ARN,
    /// session ARN, originating principal or `namespace:serviceaccount`.
    #[arg(long)]
    actor: String,
    /// Start of validity (RFC 3339; default now).
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// How long it is valid (e.g. 2h).
    #[arg(long, default_value = "8h")]
    valid_for: Span,
    /// The Ingress manifest (YAML or JSON) the change must produce exactly.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Change ticket; also the plan's id when given.
    #[arg(long)]
    ticket: Option<String>,
}

/// Registers the plan and prints it as JSON.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let digest = match &args.manifest {
        Some(path) => Some(digest_of(path)?),
        None => None,
    };
    let valid_from = args.from.unwrap_or_else(Utc::now);
    let mut plan = ChangePlan {
        id: String::new(),
        cluster: args.cluster.clone(),
        namespace: args.namespace.clone(),
        name: Pattern::new(&args.name).with_context(|| format!("invalid --name {:?}", args.name))?,
        actor: Pattern::new(&args.actor).with_context(|| format!("invalid --actor {:?}", args.actor))?,
        valid_from,
        valid_until: valid_from + args.valid_for.0,
        digest,
        ticket: args.ticket.clone(),
    };
    plan.id = args.ticket.clone().unwrap_or_else(|| plan.derived_id());
    if args.state.state.is_none() && args.state.aws_state_table.is_none() {
        bail!("give --state FILE or --aws-state-table/--aws-alerts-table: a plan registered in memory would be lost");
    }
    args.state.with_store(|store| Ok(store.put_plan(&plan, valid_from)?))?;
    serde_json::to_writer(&mut *out, &plan)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

/// The digest of the one Ingress in a YAML or JSON manifest.
fn digest_of(path: &PathBuf) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut ingresses = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)
            .with_context(|| format!("{} is not valid YAML or JSON", path.display()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some("Ingress") {
            ingresses.push(value);
        }
    }
    match ingresses.as_slice() {
        [one] => {
            let state = IngressState::from_value(one).with_context(|| format!("{}", path.display()))?;
            Ok(manifest_digest(&state))
        }
        [] => bail!("{} holds no Ingress", path.display()),
        _ => bail!("{} holds {} Ingresses; give one per plan", path.display(), ingresses.len()),
    }
}
