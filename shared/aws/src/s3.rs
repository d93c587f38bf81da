//! S3 objects streamed into the (synchronous) decoder, never held whole.
//!
//! An object is read at the version its notification names, and only while
//! its ETag still matches: a rewritten key is not the object that was
//! announced. A body that fails or ends early half-way (a reset connection,
//! a truncated response) is resumed with a ranged GET from the byte reached,
//! a few times; past that the read fails, and so does the invocation, so AWS
//! delivers the notification again. A failure of S3 is never mistaken for a
//! damaged object.

use std::io::Read;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use sentinel_core::fault::{Fault, FaultClass};
use tokio::runtime::Handle;

/// How often a broken body is resumed before the read fails.
const RESUMES: u32 = 3;

/// One version of an object, as a notification names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Bucket.
    pub bucket: String,
    /// Key (decoded).
    pub key: String,
    /// Version id, in a versioned bucket.
    pub version_id: Option<String>,
    /// ETag announced; the object is read only while it still has it.
    pub etag: Option<String>,
}

impl ObjectVersion {
    /// `s3://bucket/key`, with `?versionId=` when known: how inputs are named.
    pub fn name(&self) -> String {
        match &self.version_id {
            Some(v) => format!("s3://{}/{}?versionId={v}", self.bucket, self.key),
            None => format!("s3://{}/{}", self.bucket, self.key),
        }
    }
}

/// An object opened for reading.
pub struct Opened {
    /// Its bytes, resumed on failure.
    pub reader: ObjectReader,
    /// When S3 stored it: the delivery time of events that carry none.
    pub last_modified: Option<DateTime<Utc>>,
    /// Its size in bytes.
    pub size: u64,
}

/// Reads an object's body, resuming with ranged GETs where it breaks.
pub struct ObjectReader {
    client: Client,
    handle: Handle,
    object: ObjectVersion,
    body: ByteStream,
    chunk: Bytes,
    offset: u64,
    size: u64,
    resumes: u32,
}

async fn get(
    client: &Client,
    object: &ObjectVersion,
    from: u64,
) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, Fault> {
    let mut request = client
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .set_if_match(object.etag.clone());
    if from > 0 {
        request = request.range(format!("bytes={from}-"));
    }
    request
        .send()
        .await
        .map_err(|e| crate::fault::from_sdk(format!("S3 GetObject {} from byte {from}", object.name()), e))
}

/// Opens an object version for streaming reads. Call from a blocking thread.
pub fn open_object(client: &Client, handle: &Handle, object: &ObjectVersion) -> Result<Opened, Fault> {
    let out = handle.block_on(get(client, object, 0))?;
    let mut object = object.clone();
    // Resumes must read the very bytes the first response began.
    object.etag = object.etag.or_else(|| out.e_tag().map(str::to_owned));
    object.version_id = object.version_id.or_else(|| out.version_id().map(str::to_owned));
    let last_modified = out.last_modified().and_then(|t| Utc.timestamp_opt(t.secs(), t.subsec_nanos()).single());
    let size = out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    let reader = ObjectReader {
        client: client.clone(),
        handle: handle.clone(),
        object,
        body: out.body,
        chunk: Bytes::new(),
        offset: 0,
        size,
        resumes: RESUMES,
    };
    Ok(Opened { reader, last_modified, size })
}

impl ObjectReader {
    /// Starts again from the byte reached, or fails when out of resumes.
    fn resume(&mut self, why: String) -> std::io::Result<()> {
        if self.resumes == 0 {
            let fault = Fault::new(
                FaultClass::Unavailable,
                format!("S3 GetObject {} (resumed {RESUMES} times)", self.object.name()),
                format!("{why} at byte {} of {}", self.offset, self.size),
            );
            return Err(std::io::Error::other(fault));
        }
        self.resumes -= 1;
        tracing::warn!(object = %self.object.name(), offset = self.offset, reason = %why, "Resuming an object read.");
        let out = self.handle.block_on(get(&self.client, &self.object, self.offset)).map_err(std::io::Error::other)?;
        self.body = out.body;
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                buf[..n].copy_from_slice(&self.chunk.split_to(n));
                self.offset += n as u64;
                return Ok(n);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            match self.handle.block_on(self.body.next()) {
                Some(Ok(bytes)) => self.chunk = bytes,
                None if self.offset >= self.size => return Ok(0),
                None => self.resume("the body ended early".to_owned())?,
                Some(Err(e)) => self.resume(sentinel_core::fault::chain(&e))?,
            }
        }
    }
}
