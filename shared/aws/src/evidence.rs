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
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        self.handle
            .block_on(request.send())
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

    /// Keeps the raw audit event behind an alert.
    pub fn keep_event(&self, cluster: &str, audit_id: &str, raw: &[u8]) -> Result<(), Fault> {
        self.put(&keys::kept_event(cluster, audit_id), raw.to_vec(), "application/json")
    }
}
