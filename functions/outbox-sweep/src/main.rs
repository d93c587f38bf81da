//! `outbox-sweep`: every minute, publishes alert revisions left unpublished
//! and fires the `identity.unresolved` deadlines that are due.

use std::sync::Arc;

use lambda_runtime::{Error, service_fn};
use sentinel_aws::config::Config;
use sentinel_aws::handler::{App, sweep};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let app = Arc::new(App::connect(Config::from_env()?).await);
    lambda_runtime::run(service_fn(|event| sweep(Arc::clone(&app), event))).await
}
