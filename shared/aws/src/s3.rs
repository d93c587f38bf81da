//! S3 objects streamed into the (synchronous) decoder.

use std::io::Read;

use aws_sdk_s3::Client;
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

/// An S3 read failure.
#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {message}")]
pub struct ObjectError {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// What happened.
    pub message: String,
    /// True when trying again may help (not for a missing object).
    pub retryable: bool,
}

/// Opens an object for streaming reads, without holding it in memory.
/// Call from a blocking thread.
pub fn open_object(
    client: &Client,
    handle: &Handle,
    bucket: &str,
    key: &str,
) -> Result<impl Read + use<>, ObjectError> {
    let out = handle.block_on(client.get_object().bucket(bucket).key(key).send()).map_err(|e| {
        let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
        ObjectError {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: format!("{e}: {:?}", std::error::Error::source(&e)),
            retryable: !missing,
        }
    })?;
    Ok(SyncIoBridge::new_with_handle(out.body.into_async_read(), handle.clone()))
}
