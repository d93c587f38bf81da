//! The stack's evidence bucket: records that could not be processed
//! (`quarantine/`, with their raw bytes) and the raw audit events behind
//! alerts (`events/<cluster>/<audit id>.json`), in the layout of
//! [`sentinel_core::keys`]. Keys derive from the content, so a retry
//! overwrites the same objects instead of adding copies.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use sentinel_core::fault::Fault;
use sentinel_core::keys;
use sentinel_core::store::Quarantined;
use tokio::runtime::Handle;

/// Writes evidence to one bucket.
pub struct EvidenceBucket {
    client: Client,
    bucket: String,
    handle: Handle,
}

impl EvidenceBucket {
    /// Evidence in `bucket`; `handle` runs the SDK's futures.
    pub fn new(client: Client, bucket: impl Into<String>, handle: Handle) -> Self {
        Self { client, bucket: bucket.into(), handle }
    }

    fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), Fault> {
        self.handle.block_on(self.send(key, body, content_type))
    }

    async fn send(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), Fault> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::fault::from_sdk(format!("S3 PutObject s3://{}/{key}", self.bucket), e))
    }

    /// Keeps a record that could not be processed: its description, then its bytes.
    pub fn quarantine(&self, record: &Quarantined<'_>) -> Result<(), Fault> {
        let id = record.key();
        if let Some(raw) = record.raw {
            self.put(&keys::quarantined(&id, "bin"), raw.to_vec(), "application/octet-stream")?;
        }
        let description = serde_json::to_vec(&record.describe()).unwrap_or_default();
        self.put(&keys::quarantined(&id, "json"), description, "application/json")
    }

    /// Keeps raw audit events behind alerts, by their keys
    /// ([`keys::kept_event`]), one after another.
    pub async fn keep_events(&self, events: Vec<(String, Vec<u8>)>) -> Result<(), Fault> {
        for (key, raw) in events {
            self.send(&key, raw, "application/json").await?;
        }
        Ok(())
    }

    /// [`EvidenceBucket::keep_events`], from a blocking thread.
    pub fn keep_events_now(&self, events: Vec<(String, Vec<u8>)>) -> Result<(), Fault> {
        if events.is_empty() {
            return Ok(());
        }
        self.handle.block_on(self.keep_events(events))
    }
}
