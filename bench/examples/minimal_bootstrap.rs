//! The smallest `lambda_runtime` function: it answers every event with the
//! event. `bench/coldstart` measures `audit-ingest`'s start against it, so
//! the figure says what Sentinel adds to what every Rust function pays.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) })).await
}
