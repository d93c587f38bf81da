//! Test support: audit events and every AWS delivery framing, built from raw lines.
//!
//! Tests describe what they need ("an update of shop/web that widens the
//! allowlist, delivered through Kinesis") and these helpers produce the exact
//! bytes AWS would deliver, so every framing is tested with the same events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod aws;
pub mod cloudtrail;
pub mod contract;
pub mod engine;
pub mod faults;

use std::io::Write;
use std::path::PathBuf;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use sentinel_core::decode::{
    Counts, DecodeError, Decoded, EventRecord, Limits, Location, Options, SkipReason, decode_bytes,
};
use serde_json::{Value, json};

/// The public sample data the tests read, copied into the repository with its
/// provenance and licences (`tests/fixtures/samples/SOURCES.md`).
pub fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/samples")
}

/// An Ingress object body.
pub fn ingress(ns: &str, name: &str, annotations: Value, host: &str, service: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "4242", "generation": 2,
                     "annotations": annotations},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}
            ]}}],
            "tls": [{"hosts": [host], "secretName": format!("{name}-tls")}]
        }
    })
}

/// An audit event for a write to an Ingress, as EKS logs it (RequestResponse level).
pub fn ingress_write(audit_id: &str, verb: &str, time: &str, object: &Value, user: &str) -> Value {
    let ns = object["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = object["metadata"]["name"].as_str().unwrap_or("x");
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": audit_id, "stage": "ResponseComplete",
        "requestURI": format!("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}"),
        "verb": verb,
        "user": {
            "username": format!("arn:aws:sts::111122223333:assumed-role/Admin/{user}"),
            "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLEID",
            "groups": ["system:authenticated"],
            "extra": {
                "accessKeyId": ["ASIAEXAMPLEKEY"],
                "arn": [format!("arn:aws:sts::111122223333:assumed-role/Admin/{user}")],
                "canonicalArn": ["arn:aws:iam::111122223333:role/Admin"],
                "principalId": ["AROAEXAMPLEID"],
                "sessionName": [user]
            }
        },
        "sourceIPs": ["192.0.2.10"], "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3978b2a",
        "objectRef": {"resource": "ingresses", "namespace": ns, "name": name,
                      "apiGroup": "networking.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": if verb == "create" { 201 } else { 200 }},
        "requestObject": object, "responseObject": object,
        "requestReceivedTimestamp": time, "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    })
}

/// A read of an Ingress by a controller: the kind of event that must be skipped.
pub fn noise(i: usize) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("noise-{i}"), "stage": "ResponseComplete",
        "requestURI": "/apis/networking.k8s.io/v1/ingresses?watch=true", "verb": "watch",
        "user": {"username": "system:serviceaccount:ingress-nginx:ingress-nginx", "groups": ["system:serviceaccounts"]},
        "sourceIPs": ["10.0.3.4"], "userAgent": "nginx-ingress-controller/v1.10.0",
        "objectRef": {"resource": "ingresses", "apiGroup": "networking.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z", "stageTimestamp": "2024-05-01T10:00:00.000000Z"
    })
}

/// Compact JSON lines.
pub fn json_lines(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

/// gzip of `bytes` as one member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// zlib of `bytes`.
pub fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A CloudWatch Logs subscription `DATA_MESSAGE` envelope holding `events`
/// as log messages, from the `prod` cluster's audit log group in account
/// 111122223333. Each log event is stamped a second after its audit event's
/// `stageTimestamp`, as EKS delivers them.
pub fn envelope(events: &[Value]) -> String {
    envelope_from("111122223333", "/aws/eks/prod/cluster", events)
}

/// [`envelope`] from another account and log group.
pub fn envelope_from(owner: &str, log_group: &str, events: &[Value]) -> String {
    let stamp = |i: usize, e: &Value| {
        e["stageTimestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(1_714_557_600_000_i64 + i as i64, |t| t.timestamp_millis() + 1000)
    };
    let messages: Vec<(i64, String)> = events.iter().enumerate().map(|(i, e)| (stamp(i, e), e.to_string())).collect();
    layout(owner, log_group, &messages)
}

/// An envelope of audit events already written as JSON text, each kept byte
/// for byte (the API server's escapes too), with its log event's timestamp.
pub fn envelope_of_texts(messages: &[(i64, String)]) -> String {
    layout("111122223333", "/aws/eks/prod/cluster", messages)
}

/// CloudWatch Logs' own layout: compact, keys in this order, `logEvents`
/// last (the decoder's fast split relies on it; other layouts take the
/// general parser).
fn layout(owner: &str, log_group: &str, messages: &[(i64, String)]) -> String {
    let log_events: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, (stamp, text))| format!(r#"{{"id":"3728{i:04}","timestamp":{stamp},"message":{}}}"#, json!(text)))
        .collect();
    format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":{},"logGroup":{},"logStream":"kube-apiserver-audit-0a1b2c","subscriptionFilters":["ingress-sentinel"],"logEvents":[{}]}}"#,
        json!(owner),
        json!(log_group),
        log_events.join(",")
    )
}

/// A `CONTROL_MESSAGE` envelope.
pub fn control_envelope() -> String {
    json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
           "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1_714_557_600_000_i64,
           "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]})
    .to_string()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Lambda event of a CloudWatch Logs subscription.
pub fn lambda_logs_event(envelope: &str) -> String {
    json!({"awslogs": {"data": b64(&gzip(envelope.as_bytes()))}}).to_string()
}

/// A Kinesis Lambda event, one record per envelope.
pub fn kinesis_event(envelopes: &[String]) -> String {
    let records: Vec<Value> = envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": format!("4959{i}"),
                            "data": b64(&gzip(e.as_bytes())), "approximateArrivalTimestamp": 1_714_557_600.5},
                "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": format!("shardId-000:4959{i}"),
                "eventName": "aws:kinesis:record", "awsRegion": "eu-west-1",
                "eventSourceARN": "arn:aws:kinesis:eu-west-1:111122223333:stream/eks-audit"
            })
        })
        .collect();
    json!({"Records": records}).to_string()
}

/// A Firehose S3 object with no processor: one gzip member per envelope, no delimiter.
pub fn firehose_multi_member(envelopes: &[String]) -> Vec<u8> {
    envelopes.iter().flat_map(|e| gzip(e.as_bytes())).collect()
}

/// A Firehose S3 object after decompression, envelopes concatenated with no delimiter.
pub fn firehose_concatenated(envelopes: &[String]) -> String {
    envelopes.concat()
}

/// A Firehose S3 object after decompression, one envelope per line.
pub fn firehose_newline(envelopes: &[String]) -> String {
    envelopes.iter().map(|e| format!("{e}\n")).collect()
}

/// A Firehose message-only delivery (`dataMessageExtraction`), no delimiter.
pub fn firehose_message_only(events: &[Value]) -> String {
    events.iter().map(Value::to_string).collect()
}

/// A CloudWatch Logs export object (`CreateExportTask`), before gzip.
pub fn export_lines(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| format!("{} {e}\n", e["stageTimestamp"].as_str().unwrap_or("2024-05-01T10:00:00.000Z")))
        .collect()
}

/// What a decode produced.
#[derive(Debug, Default)]
pub struct Decoding {
    /// Relevant events.
    pub events: Vec<EventRecord>,
    /// Failures.
    pub errors: Vec<DecodeError>,
    /// Skipped records, when asked for.
    pub skipped: Vec<(Location, SkipReason)>,
    /// The account.
    pub counts: Counts,
}

impl Decoding {
    /// Audit ids of the relevant events, in order.
    pub fn audit_ids(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.event.audit_id.as_str()).collect()
    }

    /// Error messages, rendered.
    pub fn error_messages(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }

    /// Asserts that every record is accounted for.
    pub fn assert_balanced(&self) {
        let c = &self.counts;
        assert_eq!(
            c.records,
            c.kept + c.denied + c.access + c.skipped.total() + c.malformed,
            "unbalanced counts: {c:?}"
        );
    }
}

/// Decodes `bytes` with `limits`.
pub fn decode_with(name: &str, bytes: &[u8], limits: &Limits) -> Decoding {
    decode_options(name, bytes, &Options { limits: limits.clone(), report_skipped: false })
}

/// Decodes `bytes` with `options`.
pub fn decode_options(name: &str, bytes: &[u8], options: &Options) -> Decoding {
    let (mut events, mut errors, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let counts = decode_bytes(name, bytes, options, &mut |d| match d {
        Decoded::Event(e) => events.push(*e),
        Decoded::Failed(e) => errors.push(e),
        Decoded::Skipped { location, reason } => skipped.push((location, reason)),
        Decoded::CloudTrail(_) => unreachable!("audit inputs yield no CloudTrail records"),
    });
    let out = Decoding { events, errors, skipped, counts };
    out.assert_balanced();
    out
}

/// Decodes `bytes` with default limits.
pub fn decode(name: &str, bytes: &[u8]) -> Decoding {
    decode_with(name, bytes, &Limits::default())
}
