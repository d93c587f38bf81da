//! Ingress Sentinel on AWS.
//!
//! The engine's ports on the real services: [`DynamoStore`] (state and the
//! alerts table), [`SnsSink`] (alert publication), [`EvidenceBucket`]
//! (quarantined records and the raw events behind alerts) and
//! [`open_object`] (S3 objects streamed into the decoder, resumed where a
//! body breaks), plus the Lambda handlers the function crates run
//! ([`handler`]). Every SDK error becomes a [`sentinel_core::fault::Fault`]
//! classified once from its error code ([`fault`]). Every client comes from one
//! [`aws_config::SdkConfig`], so `AWS_ENDPOINT_URL` points all of them at an
//! emulator without a code path of its own.
//!
//! The engine is synchronous; the adapters bridge to the SDK's async clients
//! with a runtime handle, so they must be called from a blocking thread
//! (`tokio::task::spawn_blocking`), never from inside an async task.

pub mod config;
mod dynamo;
mod evidence;
pub mod fault;
pub mod handler;
pub mod metrics;
mod s3;
mod sns;

pub use dynamo::{DynamoStore, OUTBOX_INDEX};
pub use evidence::EvidenceBucket;
pub use s3::{ObjectReader, ObjectVersion, Opened, open_object};
pub use sns::{SnsSink, message_attributes};

/// Who the SDK's credentials belong to: the caller's ARN, from STS
/// `GetCallerIdentity` (an assumed-role session names its session).
pub async fn caller_arn(sdk: &aws_config::SdkConfig) -> Result<String, sentinel_core::fault::Fault> {
    let out = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| fault::from_sdk("STS GetCallerIdentity", e))?;
    out.arn.ok_or_else(|| {
        sentinel_core::fault::Fault::new(
            sentinel_core::fault::FaultClass::Other,
            "STS GetCallerIdentity",
            "the answer names no ARN",
        )
    })
}

/// Loads the shared SDK configuration: region, credentials, endpoint
/// (`AWS_ENDPOINT_URL`), with retries that back off on throttling: five
/// attempts, unless `AWS_MAX_ATTEMPTS` says otherwise.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let loader = if std::env::var_os("AWS_MAX_ATTEMPTS").is_some() {
        loader
    } else {
        loader.retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
    };
    loader.load().await
}

/// True when an endpoint override is set (an emulator): S3 then needs path-style addressing.
pub fn endpoint_overridden() -> bool {
    std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
}
