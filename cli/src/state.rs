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
    /// The deployed stack's history table (its HistoryTableName output);
    /// without it, alert history goes to the state table.
    #[arg(long, requires = "aws_state_table")]
    pub aws_history_table: Option<String>,
}

/// The deployed stack as `ack` needs it: its alert topic and who is calling.
pub struct Stack<'a> {
    /// Publishes revisions to the stack's alert topic.
    pub sink: &'a mut dyn sentinel_core::store::Sink,
    /// The caller's ARN, from STS.
    pub caller: String,
}

impl StateArgs {
    /// Runs `f` on the chosen store; without any flag, a store in memory.
    pub fn with_store<R>(&self, f: impl FnOnce(&dyn Store) -> Result<R>) -> Result<R> {
        if let (Some(state), Some(alerts)) = (&self.aws_state_table, &self.aws_alerts_table) {
            return aws(state, alerts, self.aws_history_table.as_deref(), None, |store, _| f(store));
        }
        match &self.state {
            Some(path) => {
                let store = FileStore::open(path).with_context(|| format!("cannot open state {}", path.display()))?;
                f(&store)
            }
            None => f(&MemoryStore::new()),
        }
    }

    /// Runs `f` on the deployed stack's tables, its topic `topic` and the
    /// caller's identity; `None` for the stack when the state is local.
    pub fn with_stack<R>(
        &self,
        topic: Option<&str>,
        f: impl FnOnce(&dyn Store, Option<Stack<'_>>) -> Result<R>,
    ) -> Result<R> {
        match (&self.aws_state_table, &self.aws_alerts_table) {
            (Some(state), Some(alerts)) => {
                let topic =
                    topic.context("publishing to the stack needs --aws-topic-arn (its AlertTopicArn output)")?;
                aws(state, alerts, self.aws_history_table.as_deref(), Some(topic), f)
            }
            _ => self.with_store(|store| f(store, None)),
        }
    }
}

#[cfg(feature = "aws")]
fn aws<R>(
    state: &str,
    alerts: &str,
    history: Option<&str>,
    topic: Option<&str>,
    f: impl FnOnce(&dyn Store, Option<Stack<'_>>) -> Result<R>,
) -> Result<R> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let sdk = rt.block_on(sentinel_aws::sdk_config());
    let store = sentinel_aws::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), state, alerts, rt.handle().clone());
    let store = match history {
        Some(table) => store.with_history_table(table),
        None => store,
    };
    let Some(topic) = topic else { return f(&store, None) };
    let caller = rt.block_on(sentinel_aws::caller_arn(&sdk)).context("cannot tell who is calling")?;
    let sns = sentinel_aws::SnsSink::new(aws_sdk_sns::Client::new(&sdk), topic, alerts, rt.handle().clone());
    let mut sink = Publisher(sns);
    f(&store, Some(Stack { sink: &mut sink, caller }))
}

/// The stack's topic as the engine's sink (`ack` only publishes).
#[cfg(feature = "aws")]
struct Publisher(sentinel_aws::SnsSink);

#[cfg(feature = "aws")]
impl sentinel_core::store::Sink for Publisher {
    fn publish(&mut self, alert: &sentinel_core::alert::Alert) -> Result<(), sentinel_core::fault::Fault> {
        self.0.publish(alert)
    }
    fn quarantine(&mut self, _: &sentinel_core::store::Quarantined<'_>) -> Result<(), sentinel_core::fault::Fault> {
        Ok(())
    }
    fn keep_event(&mut self, _: &str, _: &str, _: &[u8]) -> Result<(), sentinel_core::fault::Fault> {
        Ok(())
    }
}

#[cfg(not(feature = "aws"))]
fn aws<R>(
    _state: &str,
    _alerts: &str,
    _history: Option<&str>,
    _topic: Option<&str>,
    _f: impl FnOnce(&dyn Store, Option<Stack<'_>>) -> Result<R>,
) -> Result<R> {
    anyhow::bail!("this sentinel was built without AWS support: build it with `--features aws`")
}
