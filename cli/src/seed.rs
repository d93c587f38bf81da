//! `sentinel baseline seed`: baselines from the cluster as it stands, so a
//! new deployment starts from the real state without first-sight noise.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use sentinel_core::audit::Kind;
use sentinel_core::engine::{Engine, Seeded};
use sentinel_core::keys::ObjectKey;
use sentinel_core::text::escape;

/// Arguments of `sentinel baseline seed`.
#[derive(clap::Args)]
pub struct Args {
    /// `kubectl get ingress,ingressclass,service,configmap,gateway,httproute -A -o json`
    /// output (or any manifests): files, directories, or `-`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The cluster the baselines belong to (default: the policy's).
    #[arg(long)]
    cluster: Option<String>,
    /// The policy (TOML): which ConfigMaps configure the ingress controller.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Where the baselines go: a state file, or the deployed tables.
    #[command(flatten)]
    state: crate::state::StateArgs,
}

/// Runs `sentinel baseline seed`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    if args.state.state.is_none() && args.state.aws_state_table.is_none() {
        anyhow::bail!("say where the baselines go: --state FILE, or --aws-state-table and --aws-alerts-table");
    }
    let mut policy = crate::replay::load_policy(args.policy.as_deref())?;
    if let Some(cluster) = &args.cluster {
        policy.cluster.clone_from(cluster);
    }
    let files = crate::check::read_paths(&args.paths)?;
    for e in &files.errors {
        writeln!(out, "{}", escape(&e.to_string()))?;
    }
    let (mut recorded, mut known, mut untracked) = (0, 0, 0);
    args.state.with_store(|store| {
        let mut engine = Engine::new(&policy, store);
        for m in &files.objects {
            let Some(kind) = Kind::from_name(m.kind()) else {
                untracked += 1;
                continue;
            };
            let key = ObjectKey {
                cluster: policy.cluster.clone(),
                kind,
                namespace: if m.object["metadata"]["namespace"].is_string() {
                    m.namespace().to_owned()
                } else {
                    String::new()
                },
                name: m.name().to_owned(),
            };
            let seeded = engine.seed(&key, &m.object).with_context(|| format!("cannot seed {}", key.baseline()))?;
            match seeded {
                Seeded::Recorded => recorded += 1,
                Seeded::Known => known += 1,
                Seeded::Untracked => untracked += 1,
            }
        }
        Ok(())
    })?;
    writeln!(
        out,
        "baselines: {recorded} recorded, {known} already known, {untracked} not tracked; {} unreadable, {} documents skipped",
        files.errors.len(),
        files.skipped
    )?;
    Ok(if files.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
