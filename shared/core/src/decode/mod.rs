//! Decoding every form in which EKS audit logs are delivered.
//!
//! One entry point takes any input, in any framing, compressed or not:
//!
//! | delivery | what the bytes are |
//! |---|---|
//! | CloudWatch Logs subscription → Lambda | `{"awslogs":{"data":base64(gzip(envelope))}}` |
//! | subscription → Kinesis → Lambda | `{"Records":[{"kinesis":{"data":base64(gzip(envelope))}}]}` |
//! | subscription → Firehose transformation | `{"records":[{"data":base64(gzip(envelope))}]}` |
//! | subscription → Firehose → S3 | one gzip member per envelope, no delimiter; or decompressed envelopes, with or without newlines; or message text only |
//! | CreateExportTask → S3 | gzip lines `<RFC 3339 time> <audit event>` |
//! | anything else → S3 or a file | gzip or plain JSON lines of audit events |
//!
//! The layers nest (a Lambda payload holds base64 of gzip of an envelope, whose
//! log events hold audit events as JSON strings), so decoding is recursive:
//! decompress, sniff the framing, split into records, and for each record
//! either descend into its payload or judge it as an audit event.
//!
//! Every record is accounted for in [`Counts`]: kept, denied, skipped with a
//! reason, or malformed; damage to a whole input (truncated gzip, a gzip bomb,
//! an unknown format) is an input error. Each failure is passed to the sink as
//! a [`DecodeError`] naming the input and the position, and decoding goes on
//! with the next record. Nothing panics on input.

mod compress;
mod envelope;
mod error;
mod framing;

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

pub use crate::filter::SkipReason;
pub use compress::Codec;
pub use error::{DecodeError, ErrorKind, Location, ReadError};

use crate::audit::AuditEvent;
use crate::filter::{self, Header, Verdict};
use framing::{Framing, Item, Lines, Records, Shape, Values};

/// Bounds on what one input may cost.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most decompressed bytes accepted from one top-level input.
    pub max_decompressed_bytes: u64,
    /// Most decompressed bytes accepted from one base64 payload inside a
    /// Lambda event (CloudWatch Logs sends at most about 1 MB compressed);
    /// also the most an input held in memory is decompressed into memory at
    /// once (larger content is streamed, up to `max_decompressed_bytes`).
    pub max_payload_bytes: u64,
    /// Largest single record (line or JSON object). EKS audit events are at
    /// most 256 KB; envelopes a few MB.
    pub max_record_bytes: usize,
}

/// How to decode.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Bounds on what one input may cost.
    pub limits: Limits,
    /// Also hand every skipped record to the sink ([`Decoded::Skipped`]), to
    /// explain why an event was not picked up. Off in production: it costs a
    /// location string per record.
    pub report_skipped: bool,
}

impl Options {
    /// These options for one payload of a delivery, held in memory (a
    /// Kinesis record's data is one subscription payload): it may inflate to
    /// `max_payload_bytes` and no more, so a record of a gzip bomb is
    /// reported instead of read to the object limit.
    pub fn for_payload(&self) -> Self {
        let mut options = self.clone();
        options.limits.max_decompressed_bytes = options.limits.max_payload_bytes;
        options
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_decompressed_bytes: 8 << 30, max_payload_bytes: 64 << 20, max_record_bytes: 16 << 20 }
    }
}

/// Whether an event was a successful write or a refused one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A successful write to a tracked object.
    Kept,
    /// A write refused by authorization (HTTP 403): a signal of probing.
    Denied,
    /// A person reached into a pod or asked for a service account's token
    /// (exec, attach, port-forward, a debug container, a token request).
    Access,
}

/// Where a log event came from, when the delivery says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LogSource {
    /// AWS account that owns the log group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Log group, `/aws/eks/<cluster>/cluster` for EKS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// Log stream, `kube-apiserver-audit-<hash>` for audit logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream: Option<String>,
    /// CloudWatch Logs event id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl LogSource {
    /// The EKS cluster name, read from a `/aws/eks/<cluster>/cluster` log group.
    pub fn cluster(&self) -> Option<&str> {
        let group = self.log_group.as_deref()?;
        group.strip_prefix("/aws/eks/")?.strip_suffix("/cluster").filter(|c| !c.is_empty() && !c.contains('/'))
    }
}

/// An audit event that passed the relevance filter.
#[derive(Clone, Debug)]
pub struct EventRecord {
    /// The event.
    pub event: AuditEvent,
    /// Successful or denied.
    pub outcome: Outcome,
    /// Where it was read.
    pub location: Location,
    /// The log group and stream it was delivered from, if known.
    pub source: LogSource,
    /// When the delivery says the event was logged (the CloudWatch Logs event
    /// timestamp, the export line's time), if it says. Callers may fill it in
    /// from the S3 object's or the file's time.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The event as logged (its JSON), kept as evidence and for quarantine.
    pub raw: Box<[u8]>,
}

impl EventRecord {
    /// When the change happened: the event's own time, else its delivery's.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.event.time().or(self.delivered_at)
    }
}

/// A CloudTrail event the product acts on.
#[derive(Clone, Debug)]
pub struct CloudTrailRecord {
    /// The event.
    pub event: crate::cloudtrail::CloudTrailEvent,
    /// Where it was read.
    pub location: Location,
}

/// What the decoder hands to its sink.
#[derive(Debug)]
pub enum Decoded {
    /// A relevant audit event.
    Event(Box<EventRecord>),
    /// A relevant CloudTrail event (CloudTrail inputs only).
    CloudTrail(Box<CloudTrailRecord>),
    /// A record or input that could not be decoded.
    Failed(DecodeError),
    /// A record passed over, and why; only with [`Options::report_skipped`].
    Skipped {
        /// Where it was read.
        location: Location,
        /// Why it was skipped.
        reason: SkipReason,
    },
}

/// Records skipped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Not a write to a tracked resource.
    pub not_relevant: u64,
    /// Writes to the `status` subresource.
    pub status_subresource: u64,
    /// Writes that failed for reasons other than authorization.
    pub unsuccessful: u64,
    /// Stages other than `ResponseComplete`.
    pub incomplete_stage: u64,
    /// JSON that is not an audit event.
    pub not_audit_event: u64,
    /// CloudWatch Logs `CONTROL_MESSAGE` health checks.
    pub control_message: u64,
}

impl Skipped {
    /// All skipped records.
    pub fn total(&self) -> u64 {
        self.not_relevant
            + self.status_subresource
            + self.unsuccessful
            + self.incomplete_stage
            + self.not_audit_event
            + self.control_message
    }

    fn add(&mut self, reason: SkipReason) {
        match reason {
            SkipReason::NotRelevant => self.not_relevant += 1,
            SkipReason::StatusSubresource => self.status_subresource += 1,
            SkipReason::Unsuccessful => self.unsuccessful += 1,
            SkipReason::IncompleteStage => self.incomplete_stage += 1,
            SkipReason::NotAuditEvent => self.not_audit_event += 1,
            SkipReason::ControlMessage => self.control_message += 1,
        }
    }
}

/// The account of one or more inputs: `records == kept + denied + access + skipped + malformed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Leaf records read (audit lines, log events, control messages).
    pub records: u64,
    /// Successful writes to tracked objects.
    pub kept: u64,
    /// Writes refused by authorization.
    pub denied: u64,
    /// Access events kept (exec, attach, port-forward, debug containers, token requests).
    pub access: u64,
    /// Records passed over, by reason.
    pub skipped: Skipped,
    /// Records that could not be decoded.
    pub malformed: u64,
    /// Inputs, or parts of inputs, that could not be read at all (truncated
    /// or corrupt compression, size limits, unknown formats, read errors).
    pub input_errors: u64,
    /// Decompressed bytes read from top-level inputs.
    pub bytes: u64,
}

impl Counts {
    /// Adds another input's counts to these.
    pub fn merge(&mut self, other: &Counts) {
        self.records += other.records;
        self.kept += other.kept;
        self.denied += other.denied;
        self.access += other.access;
        self.malformed += other.malformed;
        self.input_errors += other.input_errors;
        self.bytes += other.bytes;
        let (s, o) = (&mut self.skipped, &other.skipped);
        s.not_relevant += o.not_relevant;
        s.status_subresource += o.status_subresource;
        s.unsuccessful += o.unsuccessful;
        s.incomplete_stage += o.incomplete_stage;
        s.not_audit_event += o.not_audit_event;
        s.control_message += o.control_message;
    }
}

/// Decodes one input read from `reader`, passing relevant events and failures
/// to `sink`, and returns its counts. `input` names it in every error.
///
/// Bad data is the sink's to hear about ([`Decoded::Failed`]); a failure of
/// the reader itself (the network, the disk) is not bad data: decoding stops
/// and it is returned, so the caller can read the input again.
pub fn decode_reader<R: Read + Send>(
    input: &str,
    reader: R,
    options: &Options,
    sink: &mut dyn FnMut(Decoded),
) -> Result<Counts, ReadError> {
    decode_source(input, reader, options, sink, Mode::Audit)
}

/// Decodes one input held in memory (a Lambda event payload, a small object).
pub fn decode_bytes(input: &str, bytes: &[u8], options: &Options, sink: &mut dyn FnMut(Decoded)) -> Counts {
    let mut decoder = Decoder::new(options, sink, Mode::Audit, None);
    let location = Location::input(Arc::from(input));
    decoder.counts.bytes = decoder.whole(&location, bytes, options.limits.max_decompressed_bytes, None);
    decoder.counts
}

/// Decodes one CloudTrail input: S3 log files (`{"Records":[…]}`, gzip),
/// JSON arrays or lines of records, EventBridge "AWS API Call via CloudTrail"
/// events, and CloudTrail delivered through a CloudWatch Logs subscription.
/// Only events the product acts on reach the sink; digest and insight
/// records are skipped.
pub fn decode_cloudtrail_reader<R: Read + Send>(
    input: &str,
    reader: R,
    options: &Options,
    sink: &mut dyn FnMut(Decoded),
) -> Result<Counts, ReadError> {
    decode_source(input, reader, options, sink, Mode::CloudTrail)
}

/// A reader whose own failures are told apart from the data's: it keeps its
/// error, so a decompressor's "unexpected end" caused by it is not reported
/// as a truncated input.
struct Source<R> {
    inner: R,
    read: u64,
    failed: SourceFailure,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((self.read, e));
                Err(std::io::Error::new(kind, "the input's reader failed"))
            }
        }
    }
}

fn decode_source<R: Read + Send>(
    input: &str,
    reader: R,
    options: &Options,
    sink: &mut dyn FnMut(Decoded),
    mode: Mode,
) -> Result<Counts, ReadError> {
    let failed = SourceFailure::default();
    let source = Source { inner: reader, read: 0, failed: Arc::clone(&failed) };
    let reader = BufReader::with_capacity(compress::BUFFER, source);
    let counts = decode_any(input, reader, options, sink, mode, Some(&failed));
    let failure = failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    match failure {
        Some((offset, source)) => Err(ReadError { location: Location::input(Arc::from(input)), offset, source }),
        None => Ok(counts),
    }
}

/// [`decode_cloudtrail_reader`] for an input held in memory.
pub fn decode_cloudtrail_bytes(input: &str, bytes: &[u8], options: &Options, sink: &mut dyn FnMut(Decoded)) -> Counts {
    decode_any(input, bytes, options, sink, Mode::CloudTrail, None)
}

/// What a decoder reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Audit,
    CloudTrail,
}

/// The slot where a [`Source`] keeps its failure.
type SourceFailure = Arc<std::sync::Mutex<Option<(u64, std::io::Error)>>>;

fn decode_any<R: BufRead + Send>(
    input: &str,
    reader: R,
    options: &Options,
    sink: &mut dyn FnMut(Decoded),
    mode: Mode,
    source_failure: Option<&SourceFailure>,
) -> Counts {
    let mut decoder = Decoder::new(options, sink, mode, source_failure);
    let location = Location::input(Arc::from(input));
    decoder.counts.bytes = decoder.stream(&location, reader, options.limits.max_decompressed_bytes, None);
    decoder.counts
}

struct Decoder<'a> {
    limits: &'a Limits,
    report_skipped: bool,
    sink: &'a mut dyn FnMut(Decoded),
    counts: Counts,
    mode: Mode,
    source_failure: Option<&'a SourceFailure>,
}

/// Input below which decoding its parts on several cores costs more in
/// starting threads than it saves.
const PARALLEL_BYTES: usize = 256 << 10;

/// Runs `work` over `parts` in one share per core the process may use (the
/// first share on this thread, the others on threads of their own) and
/// returns the shares' results in order; in one share, here, when there is
/// one core or less than [`PARALLEL_BYTES`] of input (`bytes`), where
/// starting threads would cost more than it saves. For work that touches
/// nothing but its share: decoding, never the store or the sink.
pub fn on_cores<T: Sync, R: Send>(parts: &[T], bytes: usize, work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let workers = cores().min(parts.len());
    if workers < 2 || bytes < PARALLEL_BYTES {
        return vec![work(parts)];
    }
    let mut shares = parts.chunks(parts.len().div_ceil(workers));
    let here = shares.next().unwrap_or_default();
    let work = &work;
    std::thread::scope(|scope| {
        let threads: Vec<_> = shares.map(|share| scope.spawn(move || work(share))).collect();
        let mut results = vec![work(here)];
        // Decoding never panics on input; a panic is a bug, and says so.
        results.extend(threads.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))));
        results
    })
}

/// The cores this process may use, asked once.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

/// Where one candidate record was delivered from, as the framing says.
#[derive(Clone, Copy, Default)]
struct Delivery<'a> {
    source: Option<&'a LogSource>,
    event_id: Option<&'a str>,
    at: Option<Logged>,
}

/// When the framing says a record was logged.
#[derive(Clone, Copy)]
enum Logged {
    /// An export line's time.
    Time(DateTime<Utc>),
    /// A log event's timestamp, in milliseconds since the epoch: made a
    /// time only for a record that is kept, not for the thousand around it.
    Millis(i64),
}

impl Logged {
    fn time(self) -> Option<DateTime<Utc>> {
        match self {
            Self::Time(time) => Some(time),
            Self::Millis(ms) => Utc.timestamp_millis_opt(ms).single(),
        }
    }
}

#[derive(Deserialize)]
struct LambdaLogs<'a> {
    #[serde(borrow)]
    awslogs: LambdaLogsData<'a>,
}

#[derive(Deserialize)]
struct LambdaLogsData<'a> {
    #[serde(borrow)]
    data: Payload<'a>,
}

/// A base64 payload as the bytes of its JSON string, borrowed where the
/// string has no escapes. Not checked as UTF-8: base64 is ASCII, and a byte
/// outside its alphabet fails the base64 decode, which names the field.
struct Payload<'a>(Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for Payload<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Bytes<'a> {
            type Value = Payload<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Payload<'a>, E> {
                Ok(Payload(Cow::Borrowed(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Payload<'a>, E> {
                Ok(Payload(Cow::Owned(v.to_vec())))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Payload<'a>, E> {
                Ok(Payload(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Payload<'a>, E> {
                Ok(Payload(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        deserializer.deserialize_bytes(Bytes(std::marker::PhantomData))
    }
}

/// Kinesis (`Records[].kinesis.data`) and Firehose (`records[].data`) Lambda events.
#[derive(Deserialize)]
struct LambdaRecords<'a> {
    #[serde(borrow, alias = "records", rename = "Records")]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct LambdaRecord<'a> {
    #[serde(borrow, default)]
    kinesis: Option<KinesisData<'a>>,
    #[serde(borrow, default)]
    data: Option<Payload<'a>>,
    #[serde(borrow, default)]
    s3: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "eventVersion")]
    event_version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct KinesisData<'a> {
    #[serde(borrow)]
    data: Payload<'a>,
}

impl<'a> Decoder<'a> {
    fn new(
        options: &'a Options,
        sink: &'a mut dyn FnMut(Decoded),
        mode: Mode,
        source_failure: Option<&'a SourceFailure>,
    ) -> Self {
        Self {
            limits: &options.limits,
            report_skipped: options.report_skipped,
            sink,
            counts: Counts::default(),
            mode,
            source_failure,
        }
    }

    fn skip(&mut self, reason: SkipReason, at: &dyn Fn() -> Location) {
        self.counts.records += 1;
        self.counts.skipped.add(reason);
        if self.report_skipped {
            (self.sink)(Decoded::Skipped { location: at(), reason });
        }
    }

    /// Reports a failure. `raw`: the bytes that could not be decoded, as far
    /// as they are known. A whole-input failure caused by the input's own
    /// reader is no failure of the data: it is not reported (the caller
    /// hears of it as a [`ReadError`]).
    fn fail(&mut self, location: Location, kind: ErrorKind, whole_input: bool, raw: Option<&[u8]>) {
        if whole_input && self.source_failure.is_some_and(|f| f.lock().is_ok_and(|f| f.is_some())) {
            return;
        }
        if whole_input {
            self.counts.input_errors += 1;
        } else {
            self.counts.records += 1;
            self.counts.malformed += 1;
        }
        let raw = raw.map(<[u8]>::to_vec);
        (self.sink)(Decoded::Failed(DecodeError { location, kind, raw }));
    }

    /// [`Decoder::stream`] for an input held whole in memory: one gzip member
    /// is decompressed at once, and one subscription envelope is split
    /// where it lies, without the streaming framing.
    fn whole(&mut self, location: &Location, bytes: &[u8], limit: u64, raw: Option<&[u8]>) -> u64 {
        let mut inflated = compress::Scratch::take();
        // A payload's worth at most is inflated at once: a small input that
        // inflates to more (a Kinesis record of a gzip bomb) is streamed, in
        // flat memory, and stopped at `limit`.
        let at_once = limit.min(self.limits.max_payload_bytes);
        let plain = match (compress::gunzip_whole(bytes, at_once, &mut inflated), Codec::sniff(bytes)) {
            (Some(size), _) => &inflated[..size],
            (None, Codec::Plain) if bytes.len() as u64 <= limit => bytes,
            _ => return self.stream(location, bytes, limit, raw),
        };
        // One Lambda event or one envelope, whole: read where it lies.
        let (object, start, newlines) = lone_value(plain);
        if self.mode == Mode::Audit
            && object.len() <= self.limits.max_record_bytes
            && object.starts_with(b"{")
            && object.ends_with(b"}")
        {
            let at = location.child(Values::<&[u8]>::place(start, 1 + newlines));
            let done = match framing::shape(object) {
                Shape::Envelope => self.one_envelope(&at, object),
                // Several objects, or damage: the framing finds and reports it.
                shape @ (Shape::LambdaLogs | Shape::Records) => self.shaped(&at, object, shape).is_ok(),
                _ => false,
            };
            if done {
                return plain.len() as u64;
            }
        }
        self.stream(location, plain, limit, raw)
    }

    /// Decompresses, sniffs and splits one stream. Returns the decompressed
    /// bytes read. `raw`: the stream's bytes as they arrived, for a payload
    /// inside an event (quarantined whole if the stream is damaged).
    fn stream<R: BufRead + Send>(&mut self, location: &Location, reader: R, limit: u64, raw: Option<&[u8]>) -> u64 {
        std::thread::scope(|scope| self.stream_on(scope, location, reader, limit, raw))
    }

    /// [`Decoder::stream`], decompressing on a thread of `scope`.
    fn stream_on<'scope, R: BufRead + Send + 'scope>(
        &mut self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        location: &Location,
        reader: R,
        limit: u64,
        raw: Option<&[u8]>,
    ) -> u64 {
        let compress::Opened { mut reader, why } = match compress::open(scope, reader, limit) {
            Ok(opened) => opened,
            Err(e) => {
                self.fail(location.clone(), ErrorKind::Io(e), true, raw);
                return 0;
            }
        };
        let start = match &mut reader {
            compress::Stream::Inflated(members) if self.mode == Mode::Audit => self.envelope_members(location, members),
            _ => Start::default(),
        };
        if start.envelopes > 0 {
            // What follows envelopes is read as the values it should be.
            let values = Values::starting_at(&mut reader, self.limits.max_record_bytes, start.offset, start.line);
            return self.records(location, &why, values, raw);
        }
        let framing = match reader.fill_buf() {
            Ok(window) => {
                let keys = match self.mode {
                    Mode::Audit => framing::AUDIT_KEYS,
                    Mode::CloudTrail => framing::CLOUDTRAIL_KEYS,
                };
                framing::sniff(window, window.is_empty(), keys)
            }
            Err(e) => {
                let kind = why.explain(e);
                self.fail(location.child("byte 0"), kind, true, raw);
                return 0;
            }
        };
        match framing {
            Framing::Empty => 0,
            Framing::Unknown(what) => {
                self.fail(location.clone(), ErrorKind::UnknownFormat(what), true, raw);
                0
            }
            Framing::Lines => self.records(location, &why, Lines::new(&mut reader, self.limits.max_record_bytes), raw),
            Framing::Values => {
                self.records(location, &why, Values::new(&mut reader, self.limits.max_record_bytes), raw)
            }
            Framing::RecordArray => self.record_array(location, &why, reader, raw),
        }
    }

    /// Reads the gzip members at the start of a stream that are each one
    /// CloudWatch Logs envelope (as in a Firehose object: one member per
    /// subscription payload) as [`Decoder::whole`] reads a payload: split
    /// where it lies, without the framing's scan of every byte. Stops at the
    /// first member that is anything else, leaving it to the framing.
    fn envelope_members(&mut self, location: &Location, members: &mut compress::Received) -> Start {
        let mut start = Start::default();
        let mut member = compress::Scratch::take();
        while members.envelope_member(self.limits.max_record_bytes, &mut member) {
            let (object, first, newlines) = lone_value(&member);
            let (offset, line) = (start.offset + first, start.line + newlines);
            if !self.one_envelope(&location.child(Values::<&[u8]>::place(offset, line)), object) {
                members.hold(&mut member, None);
                break;
            }
            start.offset += member.len() as u64;
            start.line += memchr::memchr_iter(b'\n', &member).count() as u64;
            start.envelopes += 1;
        }
        start
    }

    /// Streams the records of one JSON document holding them all (a
    /// CloudTrail file), one record in memory at a time. JSON damage ends the
    /// document: the records before it are kept, the rest is reported.
    fn record_array<R: BufRead>(
        &mut self,
        location: &Location,
        why: &compress::Explainer,
        reader: R,
        raw: Option<&[u8]>,
    ) -> u64 {
        let mut counted = CountingReader { inner: reader, read: 0 };
        let mut de = serde_json::Deserializer::from_reader(&mut counted);
        let mut index = 0usize;
        let result = serde::de::DeserializeSeed::deserialize(
            RecordArraySeed { decoder: self, location, index: &mut index },
            &mut de,
        );
        let read = counted.read;
        if let Err(e) = result {
            let at = location.child(format_args!("Records[{index}]"));
            let kind = match e.io_error_kind() {
                // The reader's own error (decompression, size limit), unwrapped.
                Some(_) => why.explain(std::io::Error::from(e)),
                None => ErrorKind::Json(e),
            };
            self.fail(at, kind, true, raw);
        }
        read
    }

    /// Reads every record of a split stream. Returns the decompressed bytes read.
    fn records<R: Records>(
        &mut self,
        location: &Location,
        why: &compress::Explainer,
        mut reader: R,
        raw: Option<&[u8]>,
    ) -> u64 {
        loop {
            match reader.next_item() {
                Ok(None) => return reader.offset(),
                Ok(Some(Item::Record { offset, line, bytes })) => {
                    let at = || location.child(R::place(offset, line));
                    if R::LINES { self.line(&at, bytes) } else { self.value(&at(), bytes) }
                }
                Ok(Some(Item::Bad { offset, line, error, bytes })) => {
                    let kept = (!bytes.is_empty()).then_some(bytes);
                    self.fail(location.child(R::place(offset, line)), error, false, kept);
                }
                Err(e) => {
                    let at = location.child(format_args!("decompressed byte {}", reader.offset()));
                    self.fail(at, why.explain(e), true, raw);
                    return reader.offset();
                }
            }
        }
    }

    /// One line of a lines stream: an audit event, or a timestamped export line holding one.
    fn line(&mut self, at: &dyn Fn() -> Location, bytes: &[u8]) {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        if trimmed.first() == Some(&b'{') {
            self.message(trimmed, false, at, Delivery::default());
        } else if let Some((time, message)) = framing::split_export_line(trimmed) {
            self.message(
                message.trim_ascii(),
                false,
                at,
                Delivery { at: Some(Logged::Time(time)), ..Delivery::default() },
            );
        } else {
            self.fail(at(), ErrorKind::NotJsonLine, false, Some(bytes));
        }
    }

    /// One JSON object of a values stream.
    fn value(&mut self, location: &Location, bytes: &[u8]) {
        if let Err(e) = self.shaped(location, bytes, framing::shape(bytes)) {
            self.fail(location.clone(), ErrorKind::Json(e), false, Some(bytes));
        }
    }

    /// One JSON object of a known shape. An error in its outer layer is
    /// returned before anything of it was read, for the caller to report.
    fn shaped(&mut self, location: &Location, bytes: &[u8], shape: Shape) -> Result<(), serde_json::Error> {
        match shape {
            Shape::Event => self.message(bytes, false, &|| location.clone(), Delivery::default()),
            Shape::Envelope => self.envelope(location, bytes),
            Shape::LambdaLogs => {
                let event = serde_json::from_slice::<LambdaLogs<'_>>(bytes)?;
                self.payload(&location.child("awslogs.data"), "awslogs.data", &event.awslogs.data);
            }
            Shape::Records => {
                let event = serde_json::from_slice::<LambdaRecords<'_>>(bytes)?;
                let records: Vec<(usize, &RawValue)> = event.records.iter().copied().enumerate().collect();
                self.in_parallel(&records, bytes.len(), |decoder, &(i, raw)| {
                    match serde_json::from_str::<LambdaRecord<'_>>(raw.get()) {
                        Ok(record) => decoder.lambda_record(location, i, &record, raw.get().as_bytes()),
                        Err(e) => {
                            let at = location.child(format_args!("Records[{i}]"));
                            decoder.fail(at, ErrorKind::Json(e), false, Some(raw.get().as_bytes()));
                        }
                    }
                });
            }
        }
        Ok(())
    }

    fn lambda_record(&mut self, location: &Location, i: usize, record: &LambdaRecord<'_>, raw: &[u8]) {
        if let Some(kinesis) = &record.kinesis {
            let at = location.child(format_args!("Records[{i}].kinesis.data"));
            self.payload(&at, "kinesis.data", &kinesis.data);
        } else if let Some(data) = &record.data {
            self.payload(&location.child(format_args!("records[{i}].data")), "data", data);
        } else {
            let what = if record.s3.is_some() {
                "an S3 event notification: decode the object it names, not the notification"
            } else if record.event_version.is_some() {
                "a CloudTrail record: read it as identity input"
            } else {
                "a Lambda event record with neither kinesis.data nor data"
            };
            let at = location.child(format_args!("Records[{i}]"));
            self.fail(at, ErrorKind::UnknownFormat(what.into()), true, Some(raw));
        }
    }

    /// A base64 payload: decoded, then decoded again as a stream of its own.
    fn payload(&mut self, location: &Location, field: &'static str, data: &Payload<'_>) {
        let data = data.0.as_ref();
        let raw = Some(data);
        let mut bytes = compress::Scratch::take();
        let data = data.trim_ascii();
        let room = bytes.room(base64::decoded_len_estimate(data.len()));
        match base64::engine::general_purpose::STANDARD.decode_slice(data, room) {
            Ok(size) => {
                self.whole(location, &bytes[..size], self.limits.max_payload_bytes, raw);
            }
            Err(e) => {
                let message = match e {
                    base64::DecodeSliceError::DecodeError(e) => e.to_string(),
                    // Not expected: the room is the decoded length's upper bound.
                    e @ base64::DecodeSliceError::OutputSliceTooSmall => e.to_string(),
                };
                self.fail(location.clone(), ErrorKind::Base64 { field, message }, false, raw);
            }
        }
    }

    /// One envelope, in whatever layout.
    fn envelope(&mut self, location: &Location, bytes: &[u8]) {
        self.log_events(location, bytes, envelope::parse(bytes));
    }

    /// Reads `object` if it is one envelope and nothing else; false, with
    /// nothing read, if the framing must find what it holds.
    fn one_envelope(&mut self, location: &Location, object: &[u8]) -> bool {
        let parsed = match envelope::split(object) {
            Some(split) => Ok(split),
            None if envelope::is_one(object) => envelope::parse_whole(object),
            None => return false,
        };
        self.log_events(location, object, parsed);
        true
    }

    /// The log events of the envelope `bytes`, or the failure to parse it.
    fn log_events(
        &mut self,
        location: &Location,
        bytes: &[u8],
        parsed: Result<envelope::Parsed<'_>, serde_json::Error>,
    ) {
        let (header, entries) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => return self.fail(location.clone(), ErrorKind::Json(e), false, Some(bytes)),
        };
        if header.message_type.as_deref() == Some("CONTROL_MESSAGE") {
            return self.skip(SkipReason::ControlMessage, &|| location.clone());
        }
        let source = LogSource {
            owner: header.owner,
            log_group: header.log_group,
            log_stream: header.log_stream,
            event_id: None,
        };
        let entries: Vec<(usize, envelope::Entry<'_>)> = entries.into_iter().enumerate().collect();
        self.in_parallel(&entries, bytes.len(), |decoder, (i, log_event)| {
            let i = *i;
            let raw = log_event.message;
            // Where a person finds it again: the log stream and the log event's id.
            let at = || match (&source.log_group, &source.log_stream, &log_event.id) {
                (Some(g), Some(s), Some(id)) => location.child(format_args!("logEvents[{i}] ({g} {s} id {id})")),
                _ => location.child(format_args!("logEvents[{i}]")),
            };
            let delivery = Delivery {
                source: Some(&source),
                event_id: log_event.id.as_deref(),
                at: log_event.timestamp.map(Logged::Millis),
            };
            match raw.first() {
                // The usual case: the audit event as a JSON string.
                Some(b'"') => decoder.message(raw, true, &at, delivery),
                // Tolerated: a producer that embedded the object itself.
                Some(b'{') => decoder.message(raw, false, &at, delivery),
                _ => decoder.skip(SkipReason::NotAuditEvent, &at),
            }
        });
    }

    /// Decodes independent parts (the records of a Kinesis or Firehose
    /// event, the log events of an envelope) with [`on_cores`], each share
    /// collecting what it decodes; then passes those on in order, so the
    /// sink hears exactly what one thread would have told it.
    fn in_parallel<T: Sync>(&mut self, parts: &[T], bytes: usize, decode: impl Fn(&mut Decoder<'_>, &T) + Sync) {
        let (limits, report_skipped, mode) = (self.limits, self.report_skipped, self.mode);
        let collected = on_cores(parts, bytes, |share| {
            let mut out = Vec::new();
            let mut collect = |d| out.push(d);
            let mut decoder = Decoder {
                limits,
                report_skipped,
                sink: &mut collect,
                counts: Counts::default(),
                mode,
                source_failure: None,
            };
            for part in share {
                decode(&mut decoder, part);
            }
            let counts = decoder.counts;
            (out, counts)
        });
        for (out, counts) in collected {
            out.into_iter().for_each(&mut *self.sink);
            self.counts.merge(&counts);
        }
    }

    /// One CloudTrail record (or its EventBridge form, or a digest to skip).
    fn cloudtrail(&mut self, bytes: &[u8], escaped: bool, at: &dyn Fn() -> Location) {
        let json = match unescape(bytes, escaped) {
            Ok(json) => json,
            Err(e) => return self.fail(at(), ErrorKind::Json(e), false, Some(bytes)),
        };
        let json = json.as_ref();
        if !json.trim_ascii_start().starts_with(b"{") {
            return self.skip(SkipReason::NotAuditEvent, at);
        }
        let value: serde_json::Value = match serde_json::from_slice(json) {
            Ok(v) => v,
            Err(e) => return self.fail(at(), ErrorKind::Json(e), false, Some(json)),
        };
        // EventBridge wraps the record in `detail`; digests and insights are not API calls.
        let record =
            if value.get("detail-type").is_some() { value.get("detail").cloned().unwrap_or_default() } else { value };
        if record.get("digestStartTime").is_some()
            || record.get("eventType").and_then(serde_json::Value::as_str) == Some("AwsCloudTrailInsight")
        {
            return self.skip(SkipReason::NotAuditEvent, at);
        }
        let watched =
            record.get("eventName").and_then(serde_json::Value::as_str).is_some_and(crate::cloudtrail::watched);
        if !watched {
            return self.skip(SkipReason::NotRelevant, at);
        }
        match serde_json::from_value::<crate::cloudtrail::CloudTrailEvent>(record) {
            Ok(event) => {
                self.counts.records += 1;
                self.counts.kept += 1;
                (self.sink)(Decoded::CloudTrail(Box::new(CloudTrailRecord { event, location: at() })));
            }
            Err(e) => self.fail(at(), ErrorKind::Json(e), false, Some(json)),
        }
    }

    /// One candidate audit event. `escaped`: `bytes` is a JSON string literal
    /// holding it; `delivery`: what the framing says of where and when it was
    /// logged, copied only if it is kept.
    fn message(&mut self, bytes: &[u8], escaped: bool, at: &dyn Fn() -> Location, delivery: Delivery<'_>) {
        if self.mode == Mode::CloudTrail {
            return self.cloudtrail(bytes, escaped, at);
        }
        // A record that does not end like a JSON object was cut short (and may
        // have lost the very fields the prefilter looks for): parse it, so the
        // damage is reported rather than counted as irrelevant.
        let (start, end): (&[u8], &[u8]) = if escaped { (b"\"{", b"}\"") } else { (b"{", b"}") };
        if !bytes.starts_with(start) {
            // Plain log text (a Lambda's own log lines, a health message).
            return self.skip(SkipReason::NotAuditEvent, at);
        }
        if bytes.ends_with(end) {
            if !filter::prefilter(bytes, escaped) {
                return self.skip(SkipReason::NotRelevant, at);
            }
            if filter::other_subresource(bytes, escaped) {
                return self.skip(SkipReason::StatusSubresource, at);
            }
        }
        let json = match unescape(bytes, escaped) {
            Ok(json) => json,
            Err(e) => return self.fail(at(), ErrorKind::Json(e), false, Some(bytes)),
        };
        let json = json.as_ref();
        let verdict = match serde_json::from_slice::<Header<'_>>(json) {
            Ok(header) => filter::judge(&header),
            Err(e) => return self.fail(at(), ErrorKind::Json(e), false, Some(json)),
        };
        let outcome = match verdict {
            Verdict::Skip(reason) => return self.skip(reason, at),
            Verdict::Kept => Outcome::Kept,
            Verdict::Denied => Outcome::Denied,
            Verdict::Access => Outcome::Access,
        };
        match serde_json::from_slice::<AuditEvent>(json) {
            Ok(mut event) => {
                self.counts.records += 1;
                match outcome {
                    Outcome::Kept => self.counts.kept += 1,
                    Outcome::Denied => self.counts.denied += 1,
                    Outcome::Access => self.counts.access += 1,
                }
                if event.audit_id.is_empty() {
                    // Without an id, two distinct writes must still be two
                    // events, and a redelivery of one the same event.
                    event.audit_id = content_id(json);
                }
                let source = delivery.source.cloned().unwrap_or_default();
                let source = LogSource { event_id: delivery.event_id.map(str::to_owned), ..source };
                let record = EventRecord {
                    event,
                    outcome,
                    location: at(),
                    source,
                    delivered_at: delivery.at.and_then(Logged::time),
                    raw: json.into(),
                };
                (self.sink)(Decoded::Event(Box::new(record)));
            }
            Err(e) => self.fail(at(), ErrorKind::Json(e), false, Some(json)),
        }
    }
}

/// The id of an event logged without `auditID`: `sha256:` of its bytes, so
/// the same bytes delivered twice are one event and different bytes two.
fn content_id(json: &[u8]) -> String {
    format!("sha256:{}", &hex::encode(Sha256::digest(json))[..32])
}

/// The record itself: as given, or unescaped from the JSON string literal holding it.
fn unescape(bytes: &[u8], escaped: bool) -> Result<Cow<'_, [u8]>, serde_json::Error> {
    if escaped {
        serde_json::from_slice::<String>(bytes).map(|s| Cow::Owned(s.into_bytes()))
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

/// The one JSON value `bytes` may hold, without the whitespace around it;
/// with the bytes and the newlines of the whitespace before it, for its place.
fn lone_value(bytes: &[u8]) -> (&[u8], u64, u64) {
    let start = bytes.iter().position(|b| !framing::is_ws(*b)).unwrap_or(bytes.len());
    let newlines = memchr::memchr_iter(b'\n', &bytes[..start]).count() as u64;
    (bytes[start..].trim_ascii_end(), start as u64, newlines)
}

/// Where a stream's framing starts, after the envelope members before it.
struct Start {
    envelopes: u64,
    /// Decompressed bytes before the framing's first.
    offset: u64,
    /// The line the framing starts on.
    line: u64,
}

impl Default for Start {
    fn default() -> Self {
        Self { envelopes: 0, offset: 0, line: 1 }
    }
}

/// Counts bytes read through it.
struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// `{"Records": [ … ]}` or `[ … ]`, each record handed to the decoder as it is read.
struct RecordArraySeed<'d, 'a, 'l> {
    decoder: &'d mut Decoder<'a>,
    location: &'l Location,
    index: &'d mut usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for RecordArraySeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RecordArraySeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a CloudTrail file: {\"Records\": [...]} or an array of records")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let RecordArraySeed { decoder, location, index } = self;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "Records" {
                map.next_value_seed(RecordArraySeed { decoder: &mut *decoder, location, index: &mut *index })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            let at = || self.location.child(format_args!("Records[{}]", *self.index));
            self.decoder.cloudtrail(raw.get().as_bytes(), false, &at);
            *self.index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_name_comes_from_the_eks_log_group() {
        let source = |g: &str| LogSource { log_group: Some(g.into()), ..LogSource::default() };
        assert_eq!(source("/aws/eks/prod-eu/cluster").cluster(), Some("prod-eu"));
        assert_eq!(source("/aws/lambda/x").cluster(), None);
        assert_eq!(source("/aws/eks//cluster").cluster(), None);
    }

    const WRITE: &str = r#"{"kind":"Event","auditID":"a-ID","stage":"ResponseComplete","verb":"update","objectRef":{"resource":"ingresses","namespace":"shop","name":"web","apiGroup":"networking.k8s.io"},"responseStatus":{"code":200},"user":{"username":"alice"},"requestReceivedTimestamp":"2024-05-01T10:00:00Z","stageTimestamp":"2024-05-01T10:00:00Z"}"#;

    /// Gzip JSON lines of `n` Ingress writes, numbered, with 2 KB of text each
    /// so the stream spans several of the decompression thread's chunks.
    fn writes(n: usize) -> Vec<u8> {
        let pad = "x".repeat(2048);
        let mut lines = String::new();
        for i in 0..n {
            lines.push_str(&WRITE.replace("a-ID", &format!("a-{i}")).replace("alice", &format!("alice{pad}")));
            lines.push('\n');
        }
        gzip(lines.as_bytes())
    }

    /// Yields `good` bytes, a few at a time, then fails as a network does.
    struct Breaks<'a> {
        bytes: &'a [u8],
        good: usize,
    }

    impl Read for Breaks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.good == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"));
            }
            let n = buf.len().min(self.good).min(self.bytes.len()).min(4096);
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            self.good -= n;
            Ok(n)
        }
    }

    fn kept_ids(gz: &[u8], good: usize) -> (Vec<String>, Result<Counts, ReadError>) {
        let mut ids = Vec::new();
        let result = decode_reader("object", Breaks { bytes: gz, good }, &Options::default(), &mut |d| {
            if let Decoded::Event(e) = d {
                ids.push(e.event.audit_id);
            }
        });
        (ids, result)
    }

    /// Work spread over the cores comes back share by share in the parts'
    /// order, each part done once; below the threshold it stays in one share.
    #[test]
    fn on_cores_returns_every_part_once_in_order() {
        let parts: Vec<usize> = (0..1001).collect();
        let done: Vec<usize> =
            on_cores(&parts, PARALLEL_BYTES, |share| share.iter().map(|p| p * 2).collect::<Vec<_>>()).concat();
        assert_eq!(done, parts.iter().map(|p| p * 2).collect::<Vec<_>>());
        assert_eq!(on_cores(&parts, PARALLEL_BYTES - 1, <[usize]>::len), vec![1001]);
        let shares = on_cores(&parts, PARALLEL_BYTES, <[usize]>::len);
        assert!(shares.len() <= cores() && (cores() < 2 || shares.len() >= 2), "{} shares", shares.len());
        assert_eq!(shares.iter().sum::<usize>(), 1001);
    }

    /// An envelope large enough to be decoded on every core tells the sink
    /// what one thread would: every log event, kept, failed or skipped, in
    /// its order, and the same counts.
    #[test]
    fn log_events_decoded_on_several_cores_reach_the_sink_in_order() {
        let n = 3000;
        let envelope = envelope_of(0, n, 200);
        assert!(envelope.len() > PARALLEL_BYTES);
        let options = Options { report_skipped: true, ..Options::default() };
        let mut seen = Vec::new();
        let counts = decode_bytes("envelope", envelope.as_bytes(), &options, &mut |d| {
            seen.push(match d {
                Decoded::Event(e) => format!("kept {}", e.location.at),
                Decoded::Failed(e) => format!("failed {}", e.location.at),
                Decoded::Skipped { location, .. } => format!("skipped {}", location.at),
                Decoded::CloudTrail(_) => "cloudtrail".into(),
            });
        });
        let expected: Vec<String> = (0..n)
            .map(|i| {
                let what = ["kept", "skipped", "failed"][i % 3];
                format!("{what} byte 0 (line 1) > logEvents[{i}] (/aws/eks/prod/cluster s id {i})")
            })
            .collect();
        assert_eq!(seen.len(), expected.len());
        let first_difference = seen.iter().zip(&expected).find(|(s, e)| s != e);
        assert_eq!(first_difference, None);
        assert_eq!((counts.records, counts.kept, counts.malformed), (n as u64, n as u64 / 3, n as u64 / 3));
    }

    /// A subscription envelope in CloudWatch's layout of `n` log events
    /// (kept, skipped and failed in turn), each `pad` bytes longer.
    fn envelope_of(first: usize, n: usize, pad: usize) -> String {
        let pad = "x".repeat(pad);
        let events: Vec<String> = (first..first + n)
            .map(|i| {
                let message = match i % 3 {
                    0 => WRITE.replace("a-ID", &format!("a-{i}")).replace("alice", &format!("a{pad}")),
                    1 => format!(r#"{{"kind":"Event","verb":"get","objectRef":{{"resource":"pods"}},"x":"{pad}"}}"#),
                    _ => r#"{"kind":"Event","verb":"update","objectRef":{"resource":"ingresses"},"#.to_owned(),
                };
                format!(r#"{{"id":"{i}","timestamp":1714557600000,"message":{}}}"#, serde_json::json!(message))
            })
            .collect();
        format!(
            r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/prod/cluster","logStream":"s","subscriptionFilters":["f"],"logEvents":[{}]}}"#,
            events.join(",")
        )
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, bytes).unwrap_or_default();
        gz.finish().unwrap_or_default()
    }

    /// Everything the sink hears of `bytes`, and the counts.
    fn heard(bytes: &[u8]) -> (Vec<String>, Counts) {
        let options = Options { report_skipped: true, ..Options::default() };
        let mut seen = Vec::new();
        let counts = decode_bytes("object", bytes, &options, &mut |d| {
            seen.push(match d {
                Decoded::Event(e) => format!("kept {} {}", e.event.audit_id, e.location.at),
                Decoded::Failed(e) => format!("failed {} {}", e.location.at, e.kind),
                Decoded::Skipped { location, .. } => format!("skipped {}", location.at),
                Decoded::CloudTrail(_) => "cloudtrail".into(),
            });
        });
        (seen, counts)
    }

    /// A Firehose object (one gzip member per subscription payload) is read
    /// member by member, without the framing's scan; the sink hears exactly
    /// what the framing would tell it of the same bytes in one member: every
    /// log event in order, at the same place, with the same counts. Members
    /// that are not one envelope each (an envelope cut across two members,
    /// two in one, JSON lines after them) are left to the framing.
    #[test]
    fn a_firehose_object_is_read_member_by_member_as_its_framing_reads_it() {
        // Two envelopes larger than the inflating thread's chunks, small ones around them.
        let envelopes: Vec<String> = [(0, 3, 10), (3, 400, 5000), (403, 5, 10), (408, 300, 6000), (708, 1, 0)]
            .iter()
            .map(|&(first, n, pad)| envelope_of(first, n, pad))
            .collect();
        assert!(envelopes[1].len() > compress::BUFFER && envelopes[3].len() > compress::BUFFER);
        let text = envelopes.concat();
        let reference = heard(&gzip(text.as_bytes()));
        assert_eq!(reference.1.records, 709);
        assert_eq!(reference.1.kept, 237);
        let second = format!("byte {} (line 1) > logEvents[0] (/aws/eks/prod/cluster s id 3)", envelopes[0].len());
        assert!(reference.0.iter().any(|s| s.ends_with(&second)), "{:?}", &reference.0[3]);

        let members: Vec<u8> = envelopes.iter().flat_map(|e| gzip(e.as_bytes())).collect();
        let cut = envelopes[2].len() / 2;
        let layouts = [
            ("one member per envelope", members),
            ("an envelope cut across two members", {
                let (a, b) = envelopes[2].split_at(cut);
                [
                    gzip(envelopes[..2].concat().as_bytes()),
                    gzip(a.as_bytes()),
                    gzip((b.to_owned() + &envelopes[3..].concat()).as_bytes()),
                ]
                .concat()
            }),
            ("two envelopes in one member", {
                let members = envelopes.iter().map(|e| gzip(e.as_bytes()));
                let two = gzip((envelopes[1].clone() + &envelopes[2]).as_bytes());
                [members.clone().take(1).collect::<Vec<_>>(), vec![two], members.skip(3).collect()].concat().concat()
            }),
            (
                "empty members between them",
                envelopes.iter().flat_map(|e| [gzip(b""), gzip(e.as_bytes())]).collect::<Vec<_>>().concat(),
            ),
        ];
        for (layout, bytes) in layouts {
            let got = heard(&bytes);
            assert_eq!(got.1, reference.1, "{layout}");
            let first_difference = got.0.iter().zip(&reference.0).find(|(g, r)| g != r);
            assert_eq!((got.0.len(), first_difference), (reference.0.len(), None), "{layout}");
        }

        // JSON lines after envelope members are read as values, as before.
        let line = WRITE.replace("a-ID", "a-line");
        let mut tail = envelopes.iter().flat_map(|e| gzip(e.as_bytes())).collect::<Vec<u8>>();
        tail.extend(gzip(format!("{line}\n{line}\n").as_bytes()));
        let (seen, counts) = heard(&tail);
        assert_eq!(counts.kept, 239);
        assert_eq!(seen.iter().filter(|s| s.starts_with("kept a-line")).count(), 2);
        let at = text.len();
        assert!(seen.iter().any(|s| s == &format!("kept a-line byte {at} (line 1)")), "{:?}", seen.last());

        // Damage after the envelopes: what came before is kept, the damage reported where it is.
        let mut damaged = envelopes.iter().flat_map(|e| gzip(e.as_bytes())).collect::<Vec<u8>>();
        damaged.extend(b"not gzip");
        let (seen, counts) = heard(&damaged);
        assert_eq!((counts.kept, counts.input_errors), (237, 1));
        assert!(
            seen.last().is_some_and(|s| s.starts_with(&format!("failed decompressed byte {at}"))),
            "{:?}",
            seen.last()
        );
    }

    /// A payload's base64 is read as bytes, borrowed; a producer that
    /// escapes its slashes (`\/`, as JSON allows) gets the same result.
    #[test]
    fn a_payload_with_escaped_slashes_decodes_like_one_without() {
        use base64::Engine as _;
        // The first event id whose payload's base64 holds a slash.
        let (id, data) = (0..)
            .map(|n| {
                let envelope = format!(
                    r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/prod/cluster","logStream":"s","subscriptionFilters":[],"logEvents":[{{"id":"1","timestamp":1714557600000,"message":{}}}]}}"#,
                    serde_json::json!(WRITE.replace("a-ID", &format!("a-{n}")))
                );
                (format!("a-{n}"), base64::engine::general_purpose::STANDARD.encode(gzip(envelope.as_bytes())))
            })
            .find(|(_, data)| data.contains('/'))
            .unwrap_or_default();
        let kept = |event: &str| {
            let mut ids = Vec::new();
            decode_bytes("event", event.as_bytes(), &Options::default(), &mut |d| {
                if let Decoded::Event(e) = d {
                    ids.push(e.event.audit_id);
                }
            });
            ids
        };
        let plain = format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#);
        let escaped = plain.replace('/', "\\/");
        assert_ne!(plain, escaped);
        assert_eq!(kept(&plain), vec![id]);
        assert_eq!(kept(&escaped), kept(&plain));
    }

    /// Decompression runs on its own thread: every record arrives, in order,
    /// and a reader that fails midway is the reader's failure (the caller
    /// reads the object again), never a damaged input, with the records
    /// before it kept.
    #[test]
    fn a_stream_decompressed_on_its_own_thread_keeps_order_and_tells_a_reader_failure_from_damage() {
        let gz = writes(2000);
        let (ids, result) = kept_ids(&gz, usize::MAX);
        let expected: Vec<String> = (0..2000).map(|i| format!("a-{i}")).collect();
        assert_eq!(ids, expected);
        assert_eq!(result.map(|c| c.kept).ok(), Some(2000));

        let (ids, result) = kept_ids(&gz, gz.len() / 2);
        let error = result.err();
        assert!(error.as_ref().is_some_and(|e| e.offset == (gz.len() / 2) as u64), "{error:?}");
        assert!(error.is_some_and(|e| e.source.kind() == std::io::ErrorKind::ConnectionReset));
        assert!(!ids.is_empty() && ids.len() < 2000);
        assert_eq!(ids, expected[..ids.len()]);
    }
}
