//! `audit-ingest`: EKS audit logs from a CloudWatch Logs subscription,
//! Kinesis or S3 into the detection engine; alerts to SNS.

use std::sync::Arc;

use lambda_runtime::{Error, service_fn};
use sentinel_aws::config::Config;
use sentinel_aws::handler::{App, audit};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let app = Arc::new(App::connect(Config::from_env()?).await);
    lambda_runtime::run(service_fn(|event| audit(Arc::clone(&app), event))).await
}
