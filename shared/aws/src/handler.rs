//! The Lambda handlers: event in, engine run, alerts to SNS, a report out.
//!
//! Decode failures (bad input) are not retried: they are logged as errors
//! with their location and returned in the response, and the good records
//! are processed. Engine failures that may pass (throttling, a conflicting
//! concurrent write, SNS unavailable) fail the invocation, or for Kinesis the
//! record, so Lambda retries it; alert ids and baselines make the retry
//! publish nothing twice.

use std::sync::Arc;

use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use sentinel_core::cloudtrail::percent_decode;
use sentinel_core::decode::{
    CloudTrailRecord, Counts, Decoded, EventRecord, Options, decode_bytes, decode_cloudtrail_bytes,
    decode_cloudtrail_reader, decode_reader,
};
use sentinel_core::engine::{Engine, RunError};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::config::Config;
use crate::{DynamoStore, SnsSink, open_object};

/// What a function holds across invocations.
pub struct App {
    /// Configuration from the environment.
    pub config: Config,
    /// The state and alerts tables.
    pub store: DynamoStore,
    /// S3, for objects named by notifications.
    pub s3: aws_sdk_s3::Client,
    /// SNS, for alerts.
    pub sns: aws_sdk_sns::Client,
    /// Runs the SDK's futures from the engine's blocking thread.
    pub handle: Handle,
}

impl App {
    /// Builds the clients once, at cold start.
    pub async fn connect(config: Config) -> Self {
        let sdk = crate::sdk_config().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(crate::endpoint_overridden()).build();
        let handle = Handle::current();
        Self {
            store: DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                &config.state_table,
                &config.alerts_table,
                handle.clone(),
            ),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sns: aws_sdk_sns::Client::new(&sdk),
            config,
            handle,
        }
    }
}

/// A record or input that could not be processed, reported in the response.
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
    /// Alerts opened and revised.
    pub alerts_opened: u64,
    /// Alert revisions published after the first.
    pub alerts_updated: u64,
    /// Records and inputs that could not be processed.
    pub failures: Vec<Failure>,
    /// Kinesis records to retry (partial batch response).
    #[serde(rename = "batchItemFailures", skip_serializing_if = "Vec::is_empty")]
    pub batch_item_failures: Vec<Value>,
}

/// Collects decoded events and reports decode failures on the error path.
#[derive(Default)]
struct Batch {
    audit: Vec<EventRecord>,
    trail: Vec<CloudTrailRecord>,
    failures: Vec<Failure>,
}

impl Batch {
    fn sink(&mut self) -> impl FnMut(Decoded) + '_ {
        |d| match d {
            Decoded::Event(e) => self.audit.push(*e),
            Decoded::CloudTrail(t) => self.trail.push(*t),
            Decoded::Failed(e) => {
                tracing::error!(location = %e.location, error = %e.kind, "Record could not be decoded.");
                self.failures.push(Failure { location: e.location.to_string(), message: e.kind.to_string() });
            }
            Decoded::Skipped { .. } => {}
        }
    }
}

/// An S3 object named by a notification (keys arrive form-URL-encoded).
fn s3_objects(payload: &Value) -> Vec<(String, String)> {
    if payload.get("detail-type").and_then(Value::as_str) == Some("Object Created") {
        let d = &payload["detail"];
        let bucket = d["bucket"]["name"].as_str().unwrap_or_default().to_owned();
        let key = d["object"]["key"].as_str().unwrap_or_default().to_owned();
        return vec![(bucket, key)];
    }
    payload["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let bucket = r["s3"]["bucket"]["name"].as_str()?;
            let key = r["s3"]["object"]["key"].as_str()?;
            Some((bucket.to_owned(), percent_decode(&key.replace('+', " "))))
        })
        .collect()
}

/// Objects that are not logs: the CloudWatch export probe, CloudTrail digests and insights.
fn skip_key(key: &str) -> bool {
    key.ends_with("aws-logs-write-test") || key.contains("/CloudTrail-Digest/") || key.contains("/CloudTrail-Insight/")
}

enum Source {
    Audit,
    CloudTrail,
}

fn process(app: &App, payload: &Value, source: Source) -> Result<Report, Error> {
    let options = Options::default();
    let mut report = Report::default();
    let mut batch = Batch::default();
    // One engine and one sink for the invocation; alerts waiting on CloudTrail are settled once.
    let mut engine = Engine::new(&app.config.policy, &app.store);
    let mut sink = SnsSink::new(app.sns.clone(), &app.config.topic_arn, &app.config.alerts_table, app.handle.clone());
    engine.tick(Utc::now(), &mut sink).map_err(|e| Box::new(e) as Error)?;
    let is_s3 = payload.get("detail-type").and_then(Value::as_str) == Some("Object Created")
        || payload["Records"].get(0).and_then(|r| r.get("s3")).is_some();
    let is_kinesis = payload["Records"].get(0).and_then(|r| r.get("kinesis")).is_some();
    if is_s3 {
        for (bucket, key) in s3_objects(payload) {
            if skip_key(&key) {
                tracing::info!(bucket, key, "Skipping an object that holds no log records.");
                continue;
            }
            let name = format!("s3://{bucket}/{key}");
            let reader = match open_object(&app.s3, &app.handle, &bucket, &key) {
                Ok(r) => r,
                Err(e) if e.retryable => return Err(e.into()),
                Err(e) => {
                    tracing::error!(object = %name, error = %e, "Object could not be read.");
                    batch.failures.push(Failure { location: name, message: e.to_string() });
                    continue;
                }
            };
            let counts = match source {
                Source::Audit => decode_reader(&name, reader, &options, &mut batch.sink()),
                Source::CloudTrail => decode_cloudtrail_reader(&name, reader, &options, &mut batch.sink()),
            };
            report.counts.merge(&counts);
        }
        run(&mut engine, &mut sink, &mut batch, &mut report)?;
    } else if is_kinesis {
        kinesis(&mut engine, &mut sink, payload, &mut report)?;
    } else {
        let bytes = serde_json::to_vec(payload)?;
        let counts = match source {
            Source::Audit => decode_bytes("event", &bytes, &options, &mut batch.sink()),
            Source::CloudTrail => decode_cloudtrail_bytes("event", &bytes, &options, &mut batch.sink()),
        };
        report.counts.merge(&counts);
        run(&mut engine, &mut sink, &mut batch, &mut report)?;
    }
    report.alerts_opened = engine.stats().alerts_opened;
    report.alerts_updated = engine.stats().alerts_updated;
    Ok(report)
}

/// Runs the engine over a batch; retryable engine failures fail the invocation.
fn run(
    engine: &mut Engine<'_, DynamoStore>,
    sink: &mut SnsSink,
    batch: &mut Batch,
    report: &mut Report,
) -> Result<(), Error> {
    batch.audit.sort_by_key(|r| r.event.time());
    batch.trail.sort_by_key(|r| r.event.event_time);
    let result = engine.run(&batch.audit, &batch.trail, sink);
    report.failures.append(&mut batch.failures);
    match result {
        Ok(()) => Ok(()),
        Err(RunError { at, source }) if !source.retryable() => {
            tracing::error!(event = %at, error = %source, "Event could not be processed.");
            report.failures.push(Failure { location: at, message: source.to_string() });
            Ok(())
        }
        Err(e) => Err(Box::new(e)),
    }
}

/// Kinesis: each record on its own, so one bad record is reported and a
/// failing one is retried alone (partial batch response).
fn kinesis(
    engine: &mut Engine<'_, DynamoStore>,
    sink: &mut SnsSink,
    payload: &Value,
    report: &mut Report,
) -> Result<(), Error> {
    let options = Options::default();
    for record in payload["Records"].as_array().into_iter().flatten() {
        let sequence = record["kinesis"]["sequenceNumber"].as_str().unwrap_or_default().to_owned();
        let name = format!("kinesis:{sequence}");
        let mut batch = Batch::default();
        let wrapped = json!({"Records": [record]});
        let bytes = serde_json::to_vec(&wrapped)?;
        let counts = decode_bytes(&name, &bytes, &options, &mut batch.sink());
        report.counts.merge(&counts);
        if let Err(e) = run(engine, sink, &mut batch, report) {
            tracing::warn!(record = %name, error = %e, "Record will be retried.");
            report.batch_item_failures.push(json!({"itemIdentifier": sequence}));
        }
    }
    Ok(())
}

/// The audit-log function: CloudWatch Logs subscription, Kinesis, S3 (and its EventBridge form).
pub async fn audit(app: Arc<App>, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    let report = tokio::task::spawn_blocking(move || process(&app, &payload, Source::Audit)).await??;
    Ok(serde_json::to_value(report)?)
}

/// The identity function: CloudTrail files in S3 and EventBridge CloudTrail events.
pub async fn identity(app: Arc<App>, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    let report = tokio::task::spawn_blocking(move || process(&app, &payload, Source::CloudTrail)).await??;
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_keys_are_url_decoded_and_eventbridge_keys_are_not() {
        let n = json!({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "logs/Happy+Face%3A1.gz"}}}]});
        assert_eq!(s3_objects(&n), [("b".to_owned(), "logs/Happy Face:1.gz".to_owned())]);
        let e =
            json!({"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {"key": "a+b.gz"}}});
        assert_eq!(s3_objects(&e), [("b".to_owned(), "a+b.gz".to_owned())]);
    }

    #[test]
    fn probes_digests_and_insights_are_skipped() {
        assert!(skip_key("exports/abc/aws-logs-write-test"));
        assert!(skip_key("AWSLogs/1/CloudTrail-Digest/eu-west-1/2024/05/02/x.json.gz"));
        assert!(!skip_key("AWSLogs/1/CloudTrail/eu-west-1/2024/05/02/x.json.gz"));
    }
}
