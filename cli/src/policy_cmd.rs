//! `sentinel policy validate`: a policy file read as the engine reads it,
//! with the line and column of what is wrong.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use sentinel_core::policy::Policy;

/// Arguments of `sentinel policy validate`.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The policy file (TOML).
    file: PathBuf,
}

/// Runs `sentinel policy validate`: 0 for a valid policy, 1 otherwise.
pub fn validate(args: &ValidateArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    match Policy::from_toml(&text) {
        Ok(p) => {
            writeln!(
                out,
                "{}: valid policy for cluster {}: {} windows, {} freezes, {} approved actors, {} host rules, {} suppressions",
                args.file.display(),
                p.cluster,
                p.windows.len(),
                p.freezes.len(),
                p.actors.len(),
                p.hosts.len(),
                p.suppressions.len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            writeln!(out, "{}: {e}", args.file.display())?;
            Ok(ExitCode::from(1))
        }
    }
}
