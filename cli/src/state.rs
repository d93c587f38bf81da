//! Where `replay` and `approve` keep state: a local file, memory, or (with
//! the `aws` feature) the deployed stack's DynamoDB tables.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sentinel_core::store::{MemoryStore, Store};
use sentinel_local::FileStore;

/// State location flags.
#[derive(clap::Args)]
pub struct StateArgs {
    /// The local state file (created if missing).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The deployed stack's state table (its StateTableName output); needs the `aws` feature.
    #[arg(long, requires = "aws_alerts_table", conflicts_with = "state")]
    pub aws_state_table: Option<String>,
    /// The deployed stack's alerts table (its AlertsTableName output).
    #[arg(long, requires = "aws_state_table")]
    pub aws_alerts_table: Option<String>,
}

impl StateArgs {
    /// Runs `f` on the chosen store; without any flag, a store in memory.
    pub fn with_store<R>(&self, f: impl FnOnce(&dyn Store) -> Result<R>) -> Result<R> {
        if let (Some(state), Some(alerts)) = (&self.aws_state_table, &self.aws_alerts_table) {
            return aws(state, alerts, f);
        }
        match &self.state {
            Some(path) => {
                let store = FileStore::open(path).with_context(|| format!("cannot open state {}", path.display()))?;
                f(&store)
            }
            None => f(&MemoryStore::new()),
        }
    }
}

#[cfg(feature = "aws")]
fn aws<R>(state: &str, alerts: &str, f: impl FnOnce(&dyn Store) -> Result<R>) -> Result<R> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let sdk = rt.block_on(sentinel_aws::sdk_config());
    let store = sentinel_aws::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), state, alerts, rt.handle().clone());
    f(&store)
}

#[cfg(not(feature = "aws"))]
fn aws<R>(_state: &str, _alerts: &str, _f: impl FnOnce(&dyn Store) -> Result<R>) -> Result<R> {
    anyhow::bail!("this sentinel was built without AWS support: build it with `--features aws`")
}
