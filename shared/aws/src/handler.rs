//! The Lambda handlers: event in, engine run, alerts to SNS, a report out.
//!
//! Two kinds of failure, decided once:
//!
//! - **Bad input** (a record or payload that does not decode, an event that
//!   cannot be trusted, a trigger of unknown shape): the record is
//!   quarantined in the evidence bucket with its raw bytes, source and
//!   position, counted (`QuarantinedRecords`, embedded metric format), and the
//!   rest of the batch goes on. The invocation succeeds: delivering the same
//!   bytes again would change nothing.
//! - **The environment** (throttling, 5xx, access denied, KMS, a missing
//!   table, topic or bucket, an S3 read that broke past its resumes, the
//!   function's time running out): every independent object of the batch
//!   is still processed, then the invocation fails with a typed error
//!   (`Sentinel.<class>`), so CloudWatch Logs, Lambda's asynchronous retries
//!   or S3 deliver it again. For Kinesis, the failed record and every later
//!   record of the shard are reported in `batchItemFailures` and retried
//!   from there. Alert ids and baselines make every redelivery publish
//!   nothing twice.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::s3::S3Event;
use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use sentinel_core::alert::Alert;
use sentinel_core::cloudtrail::percent_decode;
use sentinel_core::decode::{
    CloudTrailRecord, Counts, DecodeError, Decoded, ErrorKind, EventRecord, Location, Options, ReadError, decode_bytes,
    decode_cloudtrail_bytes, decode_cloudtrail_reader, decode_reader, on_cores,
};
use sentinel_core::engine::{Engine, RunFailures};
use sentinel_core::fault::{Fault, FaultClass, chain};
use sentinel_core::keys;
use sentinel_core::store::{Quarantined, Sink};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::config::Config;
use crate::evidence::EvidenceBucket;
use crate::s3::{ObjectVersion, open_object};
use crate::{DynamoStore, SnsSink};

/// Time kept in hand before the function's deadline: an object not finished
/// by then fails the invocation, naming how far it got.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// What a function holds across invocations.
pub struct App {
    /// Configuration from the environment.
    pub config: Config,
    /// The state and alerts tables.
    pub store: DynamoStore,
    /// S3, for objects named by notifications.
    pub s3: aws_sdk_s3::Client,
    /// Where alerts are published.
    pub sns: SnsSink,
    /// Where quarantined records and the raw events behind alerts are kept.
    pub evidence: EvidenceBucket,
    /// Runs the SDK's futures from the engine's blocking thread.
    pub handle: Handle,
    /// Set once this container has compared its policy with the recorded one
    /// (the policy of a container never changes).
    policy_checked: AtomicBool,
}

impl App {
    /// Builds the clients once, at cold start.
    pub async fn connect(config: Config) -> Self {
        let sdk = crate::sdk_config().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(crate::endpoint_overridden()).build();
        let handle = Handle::current();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.state_table,
            &config.alerts_table,
            handle.clone(),
        );
        let store = match &config.history_table {
            Some(table) => store.with_history_table(table),
            None => store,
        };
        Self {
            store,
            sns: SnsSink::new(aws_sdk_sns::Client::new(&sdk), &config.topic_arn, &config.alerts_table, handle.clone())
                .with_chat_topic(config.chat_topic_arn.clone()),
            evidence: EvidenceBucket::new(s3.clone(), &config.evidence_bucket, handle.clone()),
            s3,
            config,
            handle,
            policy_checked: AtomicBool::new(false),
        }
    }

    /// Once per container: the policy in force against the recorded one
    /// (a difference is a `pipeline.tampering` alert). Retried on the next
    /// invocation if it fails.
    fn check_policy(&self, engine: &mut Engine<'_, DynamoStore>, sink: &mut dyn Sink) -> Result<(), HandlerError> {
        if self.policy_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        engine.check_policy(sink).map_err(|e| HandlerError { class: e.class(), message: chain(&e) })?;
        self.policy_checked.store(true, Ordering::Release);
        Ok(())
    }
}

/// A failed invocation: the environment failed, and AWS should deliver the event again.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What kind of failure: the Lambda error type is `Sentinel.<class>`.
    pub class: FaultClass,
    /// Every cause, in words.
    pub message: String,
}

impl HandlerError {
    fn from_fault(fault: &Fault) -> Self {
        Self { class: fault.class, message: chain(fault) }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Self {
        Diagnostic { error_type: format!("Sentinel.{}", error.class.as_str()), error_message: error.message }
    }
}

/// A record quarantined, as reported in the response.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// Where.
    pub location: String,
    /// Why.
    pub message: String,
}

/// What an invocation did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Decode counts over every input of the invocation.
    pub counts: Counts,
    /// Alerts opened.
    pub alerts_opened: u64,
    /// Alert revisions published after the first.
    pub alerts_updated: u64,
    /// Records quarantined (undecodable, untrusted, or of unknown shape).
    pub quarantined: u64,
    /// The records quarantined.
    pub failures: Vec<Failure>,
    /// Kinesis records to retry, with every later record of the shard (partial batch response).
    #[serde(rename = "batchItemFailures", skip_serializing_if = "Vec::is_empty")]
    pub batch_item_failures: Vec<Value>,
}

/// The invocation's outputs: alerts to SNS, evidence to the bucket.
struct Outputs<'a> {
    sns: &'a SnsSink,
    evidence: &'a EvidenceBucket,
    quarantined: Vec<Failure>,
    /// Events kept and not yet stored (by key): stored while the next
    /// alert is published, or when the engine settles.
    unsent: Vec<(String, Vec<u8>)>,
}

impl<'a> Outputs<'a> {
    fn new(app: &'a App) -> Self {
        Self { sns: &app.sns, evidence: &app.evidence, quarantined: Vec::new(), unsent: Vec::new() }
    }
}

impl Sink for Outputs<'_> {
    fn publish(&mut self, alert: &Alert) -> Result<(), Fault> {
        let unsent = std::mem::take(&mut self.unsent);
        self.sns.publish_with(alert, self.evidence.keep_events(unsent))
    }

    fn quarantine(&mut self, record: &Quarantined<'_>) -> Result<(), Fault> {
        self.evidence.quarantine(record)?;
        tracing::error!(location = %record.location, reason = %record.reason, "Record quarantined.");
        self.quarantined.push(Failure { location: record.location.to_string(), message: record.reason.to_owned() });
        Ok(())
    }

    fn keep_event(&mut self, cluster: &str, audit_id: &str, raw: &[u8]) -> Result<(), Fault> {
        let key = keys::kept_event(cluster, audit_id);
        // A retried event keeps its event again: one object, one write.
        self.unsent.retain(|(k, _)| *k != key);
        self.unsent.push((key, raw.to_vec()));
        Ok(())
    }

    fn settle(&mut self) -> Result<(), Fault> {
        self.evidence.keep_events_now(std::mem::take(&mut self.unsent))
    }
}

/// What the two functions read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Audit,
    CloudTrail,
}

impl Source {
    fn function(self) -> &'static str {
        match self {
            Self::Audit => "audit-ingest",
            Self::CloudTrail => "identity-ingest",
        }
    }
}

/// The top-level keys that tell triggers apart; the rest stays raw.
#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(borrow, default)]
    awslogs: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "Records")]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default, rename = "detail-type")]
    detail_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
}

/// The one field of a record that says what kind of record it is.
#[derive(Deserialize)]
struct RecordKind<'a> {
    #[serde(borrow, default, rename = "eventSource")]
    event_source: Option<Cow<'a, str>>,
}

/// An S3 "Object Created" event from EventBridge (keys are not URL-encoded there).
#[derive(Deserialize)]
struct ObjectCreated {
    bucket: NameOnly,
    object: ObjectDetail,
}

#[derive(Deserialize)]
struct NameOnly {
    name: String,
}

#[derive(Deserialize)]
struct ObjectDetail {
    key: String,
    #[serde(default, rename = "version-id")]
    version_id: Option<String>,
    #[serde(default)]
    etag: Option<String>,
}

/// One invocation: its engine, its outputs, its report, its deadline.
struct Invocation<'a> {
    app: &'a App,
    source: Source,
    engine: Engine<'a, DynamoStore>,
    outputs: Outputs<'a>,
    report: Report,
    options: Options,
    deadline: Option<SystemTime>,
    /// Environment failures so far (the invocation fails if any).
    errors: Vec<HandlerError>,
}

/// True while there is time left before `deadline`, with [`DEADLINE_MARGIN`] kept in hand.
fn time_left(deadline: Option<SystemTime>) -> bool {
    deadline.is_none_or(|d| d.duration_since(SystemTime::now()).is_ok_and(|left| left > DEADLINE_MARGIN))
}

impl<'a> Invocation<'a> {
    fn new(app: &'a App, source: Source, deadline: Option<SystemTime>) -> Self {
        Self {
            app,
            source,
            engine: Engine::new(&app.config.policy, &app.store),
            outputs: Outputs::new(app),
            report: Report::default(),
            options: Options::default(),
            deadline,
            errors: Vec::new(),
        }
    }

    /// Quarantines a decoding failure; a failure to quarantine is the environment's.
    fn quarantine(&mut self, error: &DecodeError) -> Result<(), HandlerError> {
        let reason = error.kind.to_string();
        self.outputs.quarantine(&Quarantined::of(error, &reason)).map_err(|f| HandlerError::from_fault(&f))
    }

    /// Decodes bytes held in memory, quarantining what does not decode.
    fn decode_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<Batch, HandlerError> {
        let decoded = Batch::decode(self.source, &self.options, name, bytes);
        self.accept(decoded)
    }

    /// Counts a decoded batch and quarantines what did not decode.
    fn accept(&mut self, (mut batch, counts): (Batch, Counts)) -> Result<Batch, HandlerError> {
        self.report.counts.merge(&counts);
        for error in std::mem::take(&mut batch.failed) {
            self.quarantine(&error)?;
        }
        Ok(batch)
    }

    /// Runs the engine over a batch while time is left; `what` names the batch in errors.
    fn run(&mut self, mut batch: Batch, what: &str) -> Result<(), HandlerError> {
        batch.audit.sort_by_key(EventRecord::time);
        batch.trail.sort_by_key(|r| r.event.event_time);
        let deadline = self.deadline;
        let mut keep_going = || time_left(deadline);
        let result = self.engine.run_while(&batch.audit, &batch.trail, &mut self.outputs, &mut keep_going);
        result.map_err(|failures| run_error(what, &failures))
    }

    /// One S3 object: read at its version, decoded as it streams, judged.
    fn object(
        &mut self,
        object: &ObjectVersion,
        event_time: Option<chrono::DateTime<Utc>>,
    ) -> Result<(), HandlerError> {
        let name = object.name();
        if skip_key(&object.key) {
            tracing::info!(object = %name, "Skipping an object that holds no log records.");
            return Ok(());
        }
        if !time_left(self.deadline) {
            return Err(HandlerError {
                class: FaultClass::Timeout,
                message: format!("{name} was not started: the function's time ran out on earlier objects"),
            });
        }
        let opened = open_object(&self.app.s3, &self.app.handle, object).map_err(|f| HandlerError::from_fault(&f))?;
        let delivered = opened.last_modified.or(event_time);
        let mut batch = Batch::default();
        let read = match self.source {
            Source::Audit => decode_reader,
            Source::CloudTrail => decode_cloudtrail_reader,
        };
        let counts = read(&name, opened.reader, &self.options, &mut |d| batch.add(d)).map_err(|e| read_error(&e))?;
        for record in &mut batch.audit {
            record.delivered_at = record.delivered_at.or(delivered);
        }
        let batch = self.accept((batch, counts))?;
        self.run(batch, &name)
    }

    /// Every object of a notification; one failing does not stop the others.
    fn objects(&mut self, objects: Vec<(ObjectVersion, Option<chrono::DateTime<Utc>>)>) {
        for (object, time) in objects {
            if let Err(e) = self.object(&object, time) {
                tracing::error!(object = %object.name(), error = %e.message, "Object will be delivered again.");
                self.errors.push(e);
            }
        }
    }

    /// Kinesis: each record in shard order. After a record fails, it and
    /// every later record are reported for retry (and not processed now),
    /// so a later write never commits ahead of an earlier one that failed.
    fn kinesis(&mut self, event: KinesisEvent) {
        // Decoding touches nothing but the record, so every record is decoded
        // first, on the cores there are; the engine then takes them in order.
        let named: Vec<(String, &[u8])> = event
            .records
            .iter()
            .map(|r| {
                let id = r.event_id.as_deref().unwrap_or(&r.kinesis.sequence_number);
                (format!("kinesis:{id}"), r.kinesis.data.0.as_slice())
            })
            .collect();
        let bytes = named.iter().map(|(_, data)| data.len()).sum();
        let options = self.options.for_payload();
        let (source, options) = (self.source, &options);
        let decoded = on_cores(&named, bytes, |share| {
            share.iter().map(|(name, data)| Batch::decode(source, options, name, data)).collect::<Vec<_>>()
        });
        let mut failed = false;
        for ((record, (name, _)), decoded) in event.records.iter().zip(&named).zip(decoded.into_iter().flatten()) {
            let sequence = record.kinesis.sequence_number.clone();
            if failed {
                self.report.batch_item_failures.push(json!({"itemIdentifier": sequence}));
                continue;
            }
            let outcome = self.accept(decoded).and_then(|batch| self.run(batch, name));
            if let Err(e) = outcome {
                tracing::warn!(record = %name, error = %e.message, "Record and the rest of the shard's batch will be retried.");
                self.report.batch_item_failures.push(json!({"itemIdentifier": sequence}));
                failed = true;
            }
        }
    }

    /// Dispatches on the trigger's shape.
    fn handle(&mut self, raw: &str) -> Result<(), HandlerError> {
        let shape = match serde_json::from_str::<Shape<'_>>(raw) {
            Ok(shape) => shape,
            Err(e) => return self.unknown(raw, &format!("not a JSON object: {e}")),
        };
        if shape.awslogs.is_some() {
            let batch = self.decode_bytes("CloudWatch Logs subscription event", raw.as_bytes())?;
            return self.run(batch, "the CloudWatch Logs subscription event");
        }
        if let Some(records) = &shape.records {
            let kind = records
                .first()
                .and_then(|r| serde_json::from_str::<RecordKind<'_>>(r.get()).ok())
                .and_then(|k| k.event_source.map(Cow::into_owned));
            match kind.as_deref() {
                Some("aws:kinesis") => match serde_json::from_str::<KinesisEvent>(raw) {
                    Ok(event) => self.kinesis(event),
                    Err(e) => return self.unknown(raw, &format!("a Kinesis event that does not parse: {e}")),
                },
                Some("aws:s3") => match serde_json::from_str::<S3Event>(raw) {
                    Ok(event) => self.objects(s3_objects(&event)),
                    Err(e) => return self.unknown(raw, &format!("an S3 notification that does not parse: {e}")),
                },
                _ if self.source == Source::CloudTrail => {
                    let batch = self.decode_bytes("CloudTrail records", raw.as_bytes())?;
                    self.run(batch, "the CloudTrail records")?;
                }
                other => return self.unknown(raw, &format!("records from {}", other.unwrap_or("an unknown source"))),
            }
            return Ok(());
        }
        match shape.detail_type.as_deref() {
            Some("Object Created") => {
                let detail = shape.detail.map(|d| serde_json::from_str::<ObjectCreated>(d.get()));
                match detail {
                    Some(Ok(d)) => {
                        let object = ObjectVersion {
                            bucket: d.bucket.name,
                            key: d.object.key,
                            version_id: d.object.version_id,
                            etag: d.object.etag,
                        };
                        self.objects(vec![(object, None)]);
                        Ok(())
                    }
                    _ => self.unknown(raw, "an S3 Object Created event without bucket and key"),
                }
            }
            Some(_) if self.source == Source::CloudTrail => {
                let batch = self.decode_bytes("EventBridge event", raw.as_bytes())?;
                self.run(batch, "the EventBridge event")
            }
            _ => self.unknown(raw, "no trigger this function knows"),
        }
    }

    /// A trigger of unknown shape: quarantined whole.
    fn unknown(&mut self, raw: &str, why: &str) -> Result<(), HandlerError> {
        let location = Location::input(Arc::from(format!("{} invocation", self.source.function())));
        let error = DecodeError {
            location,
            kind: ErrorKind::UnknownFormat(why.to_owned()),
            raw: Some(raw.as_bytes().to_vec()),
        };
        self.report.counts.input_errors += 1;
        self.quarantine(&error)
    }

    /// Handles the event, settles waiting alerts, and reports.
    fn process(mut self, raw: &str) -> Result<Report, HandlerError> {
        // A store that cannot answer the policy check cannot answer the
        // batch either: fail at once, and the whole delivery comes again.
        if let Err(e) = self.app.check_policy(&mut self.engine, &mut self.outputs) {
            self.errors.push(e);
        } else {
            if let Err(e) = self.handle(raw) {
                self.errors.push(e);
            }
            // Then the deadlines due by the wall clock. The batch's events
            // ticked by their own times already, the first one's look at the
            // waiting alerts sent alongside its identity read.
            if let Err(e) = self.engine.tick(Utc::now(), &mut self.outputs) {
                self.errors.push(HandlerError { class: e.class(), message: chain(&e) });
            }
        }
        let stats = self.engine.stats().clone();
        self.report.alerts_opened = stats.alerts_opened;
        self.report.alerts_updated = stats.alerts_updated;
        self.report.quarantined = self.outputs.quarantined.len() as u64;
        self.report.failures = std::mem::take(&mut self.outputs.quarantined);
        crate::metrics::emit(self.source.function(), &self.report, &stats, self.errors.len());
        match self.errors.len() {
            0 => Ok(self.report),
            1 => Err(self.errors.remove(0)),
            n => {
                let class = self.errors[0].class;
                let all: Vec<String> = self.errors.iter().map(|e| e.message.clone()).collect();
                Err(HandlerError { class, message: format!("{n} failures: {}", all.join("; ")) })
            }
        }
    }
}

/// Decoded events of a batch, and what did not decode.
#[derive(Default)]
struct Batch {
    audit: Vec<EventRecord>,
    trail: Vec<CloudTrailRecord>,
    failed: Vec<DecodeError>,
}

impl Batch {
    /// Decodes bytes held in memory into a batch and its counts; reports
    /// nothing, so it may run on any thread.
    fn decode(source: Source, options: &Options, name: &str, bytes: &[u8]) -> (Batch, Counts) {
        let mut batch = Batch::default();
        let read = match source {
            Source::Audit => decode_bytes,
            Source::CloudTrail => decode_cloudtrail_bytes,
        };
        let counts = read(name, bytes, options, &mut |d| batch.add(d));
        (batch, counts)
    }

    fn add(&mut self, decoded: Decoded) {
        match decoded {
            Decoded::Event(e) => self.audit.push(*e),
            Decoded::CloudTrail(t) => self.trail.push(*t),
            Decoded::Failed(e) => self.failed.push(e),
            Decoded::Skipped { .. } => {}
        }
    }
}

fn run_error(what: &str, failures: &RunFailures) -> HandlerError {
    let class = if failures.failed.is_empty() { FaultClass::Timeout } else { failures.class() };
    let message = if failures.failed.is_empty() {
        format!(
            "{what}: the function's time ran out with {} event(s) left; the retry resumes (events applied already are recognised)",
            failures.waiting.len()
        )
    } else {
        format!("{what}: {}", chain(failures))
    };
    HandlerError { class, message }
}

fn read_error(error: &ReadError) -> HandlerError {
    let fault = error.source.get_ref().and_then(|e| e.downcast_ref::<Fault>());
    HandlerError { class: fault.map_or(FaultClass::Io, |f| f.class), message: chain(error) }
}

/// The objects an S3 notification names (keys arrive form-URL-encoded).
fn s3_objects(event: &S3Event) -> Vec<(ObjectVersion, Option<chrono::DateTime<Utc>>)> {
    event
        .records
        .iter()
        .filter_map(|r| {
            let bucket = r.s3.bucket.name.clone()?;
            let key = r.s3.object.key.as_deref()?;
            let object = ObjectVersion {
                bucket,
                key: percent_decode(&key.replace('+', " ")),
                version_id: r.s3.object.version_id.clone().filter(|v| !v.is_empty()),
                etag: r.s3.object.e_tag.clone().filter(|v| !v.is_empty()),
            };
            Some((object, Some(r.event_time)))
        })
        .collect()
}

/// Objects that are not logs: the CloudWatch export probe, CloudTrail digests and insights.
fn skip_key(key: &str) -> bool {
    key.ends_with("aws-logs-write-test") || key.contains("/CloudTrail-Digest/") || key.contains("/CloudTrail-Insight/")
}

async fn invoke(app: Arc<App>, event: LambdaEvent<Box<RawValue>>, source: Source) -> Result<Value, HandlerError> {
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let left = deadline.duration_since(SystemTime::now()).ok();
    tracing::info!(
        request_id = %event.context.request_id,
        time_left_ms = left.map(|l| l.as_millis() as u64),
        "Invocation started."
    );
    // A deadline passed before the start is none at all (a runtime emulator
    // that sets no deadline): Lambda itself always gives the time left.
    let deadline = left.map(|_| deadline);
    let raw = event.payload;
    let report = tokio::task::spawn_blocking(move || Invocation::new(&app, source, deadline).process(raw.get()))
        .await
        .map_err(|e| HandlerError {
            class: FaultClass::Other,
            message: format!("the invocation's thread failed: {e}"),
        })??;
    serde_json::to_value(report)
        .map_err(|e| HandlerError { class: FaultClass::Other, message: format!("the report does not serialise: {e}") })
}

/// The outbox sweep (every minute, on a schedule): publishes revisions left
/// unpublished for more than a minute and fires the identity deadlines due.
pub async fn sweep(app: Arc<App>, _event: LambdaEvent<Box<RawValue>>) -> Result<Value, HandlerError> {
    let swept = tokio::task::spawn_blocking(move || {
        let mut outputs = Outputs::new(&app);
        let mut engine = Engine::new(&app.config.policy, &app.store);
        let swept = app.check_policy(&mut engine, &mut outputs).and_then(|()| {
            engine.sweep(Utc::now(), &mut outputs).map_err(|e| HandlerError { class: e.class(), message: chain(&e) })
        });
        let stats = engine.stats().clone();
        let report =
            Report { alerts_opened: stats.alerts_opened, alerts_updated: stats.alerts_updated, ..Report::default() };
        crate::metrics::emit("outbox-sweep", &report, &stats, usize::from(swept.is_err()));
        swept
    })
    .await
    .map_err(|e| HandlerError { class: FaultClass::Other, message: format!("the sweep's thread failed: {e}") })??;
    tracing::info!(found = swept.found, published = swept.published, raced = swept.raced, "Outbox swept.");
    serde_json::to_value(swept)
        .map_err(|e| HandlerError { class: FaultClass::Other, message: format!("the report does not serialise: {e}") })
}

/// The audit-log function: CloudWatch Logs subscription, Kinesis, S3 (and its EventBridge form).
pub async fn audit(app: Arc<App>, event: LambdaEvent<Box<RawValue>>) -> Result<Value, HandlerError> {
    invoke(app, event, Source::Audit).await
}

/// The identity function: CloudTrail files in S3 and EventBridge CloudTrail events.
pub async fn identity(app: Arc<App>, event: LambdaEvent<Box<RawValue>>) -> Result<Value, HandlerError> {
    invoke(app, event, Source::CloudTrail).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_keys_are_url_decoded_with_their_version() {
        let n: S3Event = serde_json::from_value(json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
            "eventTime": "2024-05-02T02:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:X"}, "requestParameters": {"sourceIPAddress": "192.0.2.1"},
            "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
            "object": {"key": "logs/Happy+Face%3A1.gz", "size": 1, "versionId": "v1", "eTag": "e1"}}}]}))
        .unwrap();
        let objects = s3_objects(&n);
        assert_eq!(objects[0].0.key, "logs/Happy Face:1.gz");
        assert_eq!(objects[0].0.version_id.as_deref(), Some("v1"));
        assert_eq!(objects[0].0.etag.as_deref(), Some("e1"));
        assert_eq!(objects[0].0.name(), "s3://b/logs/Happy Face:1.gz?versionId=v1");
    }

    #[test]
    fn probes_digests_and_insights_are_skipped() {
        assert!(skip_key("exports/abc/aws-logs-write-test"));
        assert!(skip_key("AWSLogs/1/CloudTrail-Digest/eu-west-1/2024/05/02/x.json.gz"));
        assert!(!skip_key("AWSLogs/1/CloudTrail/eu-west-1/2024/05/02/x.json.gz"));
    }

    #[test]
    fn a_failure_is_a_typed_lambda_error() {
        let d: Diagnostic =
            HandlerError { class: FaultClass::Throttled, message: "DynamoDB PutItem failed".into() }.into();
        assert_eq!(d.error_type, "Sentinel.throttled");
        assert_eq!(d.error_message, "DynamoDB PutItem failed");
    }
}
