//! `identity-ingest`: CloudTrail files in S3 and EventBridge CloudTrail
//! events into identity records and pipeline-tampering signals.

use std::sync::Arc;

use lambda_runtime::{Error, service_fn};
use sentinel_aws::config::Config;
use sentinel_aws::handler::{App, identity};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let app = Arc::new(App::connect(Config::from_env()?).await);
    lambda_runtime::run(service_fn(|event| identity(Arc::clone(&app), event))).await
}
