//! Realistic EKS audit traffic for the benchmark, in every framing AWS
//! delivers it: gzip JSON lines (S3), CloudWatch Logs subscription Lambda
//! events, Kinesis Lambda events and Firehose objects; and the engine run
//! end to end over each on the memory store.
//!
//! The traffic: 1–2 KB events with IAM `user.extra` on every one, one in a
//! thousand an Ingress write (by one of twenty people), the rest reads,
//! watches, lease renewals and status updates, fifty a second as on a busy
//! cluster, as compressible as real audit logs.

use std::io::Write;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use sentinel_core::alert::Alert;
use sentinel_core::decode::{Counts, Decoded, EventRecord, Options, decode_bytes, decode_reader, on_cores};
use sentinel_core::engine::Engine;
use sentinel_core::fault::Fault;
use sentinel_core::policy::Policy;
use sentinel_core::store::{MemoryStore, Quarantined, Sink};
use serde_json::{Value, json};

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn iam_user(rng: &mut Lcg) -> Value {
    let session = format!("user{}@example.com", rng.below(500));
    json!({
        "username": format!("arn:aws:sts::111122223333:assumed-role/Developer/{}", session.replace('@', "-")),
        "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLEDEVELOPER",
        "groups": ["system:authenticated", "developers"],
        "extra": {
            "accessKeyId": [format!("ASIA{:016}", rng.below(1 << 40))],
            "arn": [format!("arn:aws:sts::111122223333:assumed-role/Developer/{session}")],
            "canonicalArn": ["arn:aws:iam::111122223333:role/Developer"],
            "principalId": ["AROAEXAMPLEDEVELOPER"],
            "sessionName": [session],
            "sigs.k8s.io/aws-iam-authenticator/principalId": ["AROAEXAMPLEDEVELOPER"]
        }
    })
}

/// One background event: what fills 99.9% of a real audit log.
fn background(rng: &mut Lcg, i: u64) -> Value {
    let (verb, resource, group, sub) = match rng.below(10) {
        0..=3 => ("get", "pods", "", ""),
        4 => ("list", "ingresses", "networking.k8s.io", ""),
        5 => ("watch", "ingresses", "networking.k8s.io", ""),
        6 => ("update", "leases", "coordination.k8s.io", ""),
        7 => ("update", "ingresses", "networking.k8s.io", "status"),
        8 => ("get", "configmaps", "", ""),
        _ => ("patch", "deployments", "apps", ""),
    };
    let ns = format!("team-{}", rng.below(40));
    let mut object_ref = json!({"resource": resource, "namespace": ns, "name": format!("obj-{}", rng.below(5000)),
                                "apiGroup": group, "apiVersion": "v1"});
    if !sub.is_empty() {
        object_ref["subresource"] = json!(sub);
    }
    // Grow to 1–2 KB the way real events do (label selectors, field
    // selectors, continue tokens), with text about as compressible as real
    // audit logs (gzip ~6:1).
    let mut pad = String::new();
    while pad.len() < rng.below(900) as usize {
        let word = WORDS[rng.below(WORDS.len() as u64) as usize];
        pad.push_str(&format!("{word}%3D{:x}{:x}%2C", rng.next(), rng.next()));
    }
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("{i:08x}-7c1d-4e2f-9a3b-{:012x}", rng.next()), "stage": "ResponseComplete",
        "requestURI": format!("/apis/{group}/v1/namespaces/{ns}/{resource}?resourceVersion=0&q={pad}"),
        "verb": verb, "user": iam_user(rng), "sourceIPs": [format!("10.0.{}.{}", rng.below(255), rng.below(255))],
        "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3978b2a",
        "objectRef": object_ref, "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": stamp(i), "stageTimestamp": stamp(i),
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": "EKS Access Policy: allowed by ClusterRoleBinding"}
    })
}

const WORDS: &[&str] = &[
    "app",
    "component",
    "tier",
    "release",
    "version",
    "team",
    "env",
    "region",
    "zone",
    "instance",
    "labelSelector",
    "fieldSelector",
    "continue",
    "limit",
    "timeoutSeconds",
    "allowWatchBookmarks",
];

/// One Ingress write by one of twenty people: what the engine is for.
fn ingress_write(i: u64) -> Value {
    let (ns, name) = ("shop", format!("web-{}", i % 50));
    let object = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": format!("{i}"), "generation": 2,
                     "annotations": {"nginx.ingress.kubernetes.io/allowlist-source-range":
                                     if i % 3000 == 2999 { "0.0.0.0/0" } else { "10.0.0.0/8" }}},
        "spec": {"ingressClassName": "nginx",
                 "rules": [{"host": format!("{name}.example.com"), "http": {"paths": [
                     {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}],
                 "tls": [{"hosts": [format!("{name}.example.com")], "secretName": format!("{name}-tls")}]}
    });
    let person = i / 1000 % 20;
    let user = format!("dev{person}@example.com");
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": format!("w{i:08}-7c1d-4e2f-9a3b-000000000000"), "stage": "ResponseComplete",
        "requestURI": format!("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}"),
        "verb": "update",
        "user": {"username": format!("arn:aws:sts::111122223333:assumed-role/Admin/{user}"),
                 "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLEID", "groups": ["system:authenticated"],
                 "extra": {"accessKeyId": [format!("ASIAEXAMPLEKEY{person:03}")], "arn": [format!("arn:aws:sts::111122223333:assumed-role/Admin/{user}")],
                           "canonicalArn": ["arn:aws:iam::111122223333:role/Admin"], "principalId": ["AROAEXAMPLEID"],
                           "sessionName": [user]}},
        "sourceIPs": ["192.0.2.10"], "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3978b2a",
        "objectRef": {"resource": "ingresses", "namespace": ns, "name": name, "apiGroup": "networking.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": object, "responseObject": object,
        "requestReceivedTimestamp": stamp(i), "stageTimestamp": stamp(i),
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    })
}

/// Milliseconds between two events: 50 a second, a busy production cluster,
/// so 200 MB spans about 45 minutes and a person's incident collects the
/// few writes they make in its window, as in a real log.
const MS_PER_EVENT: u64 = 20;

/// 2024-05-01T10:00:00Z, when the generated log starts.
const START_MS: i64 = 1_714_557_600_000;

/// The time of the `i`-th event, as the API server writes it.
fn stamp(i: u64) -> String {
    let ms = i * MS_PER_EVENT;
    let s = ms / 1000;
    format!("2024-05-01T{:02}:{:02}:{:02}.{:06}Z", 10 + s / 3600, s / 60 % 60, s % 60, ms % 1000 * 1000)
}

/// The top-level keys of an audit event in the order the API server writes
/// them (its Go struct's field order), and those of `objectRef`. A
/// `serde_json::Value` sorts its keys, which would put `verb` last.
const EVENT_ORDER: &[&str] = &[
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "requestURI",
    "verb",
    "user",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestObject",
    "responseObject",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
];
const OBJECT_REF_ORDER: &[&str] = &["resource", "namespace", "name", "apiGroup", "apiVersion", "subresource"];

/// One event as compact JSON as the API server writes it: keys in its order,
/// and `&`, `<`, `>` escaped (`\u0026`), as Go's JSON encoder does by default
/// (every list and watch with more than one query parameter has them).
fn in_api_server_order(event: &Value) -> String {
    fn object(map: &serde_json::Map<String, Value>, order: &[&str], out: &mut String) {
        out.push('{');
        let keys = order.iter().copied().filter(|k| map.contains_key(*k));
        for (n, key) in keys.chain(map.keys().map(String::as_str).filter(|k| !order.contains(k))).enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&json!(key).to_string());
            out.push(':');
            match (&map[key], key) {
                (Value::Object(inner), "objectRef") => object(inner, OBJECT_REF_ORDER, out),
                (value, _) => out.push_str(&value.to_string()),
            }
        }
        out.push('}');
    }
    let mut out = String::new();
    match event {
        Value::Object(map) => object(map, EVENT_ORDER, &mut out),
        other => out.push_str(&other.to_string()),
    }
    // Outside strings JSON has none of these characters, so this escapes
    // exactly the ones inside them.
    out.replace('&', "\\u0026").replace('<', "\\u003c").replace('>', "\\u003e")
}

/// The generated audit log.
pub struct Corpus {
    /// One compact JSON audit event per entry, in time order.
    pub events: Vec<String>,
    /// How many of them are Ingress writes (what every path must keep).
    pub writes: u64,
}

impl Corpus {
    /// About `bytes` of audit events (always the same for the same size).
    pub fn generate(bytes: usize) -> Self {
        let mut rng = Lcg(42);
        let (mut events, mut size, mut writes) = (Vec::new(), 0, 0);
        let mut i = 0u64;
        while size < bytes {
            let event = if i % 1000 == 999 {
                writes += 1;
                ingress_write(i)
            } else {
                background(&mut rng, i)
            };
            let line = in_api_server_order(&event);
            size += line.len() + 1;
            events.push(line);
            i += 1;
        }
        Self { events, writes }
    }

    /// The events as JSON lines: the bytes every figure is counted over.
    pub fn json_lines(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.events.iter().map(|e| e.len() + 1).sum());
        for e in &self.events {
            out.extend_from_slice(e.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// CloudWatch Logs subscription envelopes of `per` events each (as
    /// CloudWatch writes them: the audit event as a JSON string in `message`).
    pub fn envelopes(&self, per: usize) -> Vec<String> {
        self.events
            .chunks(per)
            .enumerate()
            .map(|(c, chunk)| {
                let log_events: Vec<String> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let ts = START_MS + ((c * per + i) as u64 * MS_PER_EVENT) as i64;
                        format!(r#"{{"id":"3791{c:06}{i:06}","timestamp":{ts},"message":{}}}"#, json!(e))
                    })
                    .collect();
                // CloudWatch Logs' own layout: compact, `logEvents` last.
                format!(
                    r#"{{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/eks/prod/cluster","logStream":"kube-apiserver-audit-0a1b2c3d4e5f","subscriptionFilters":["ingress-sentinel"],"logEvents":[{}]}}"#,
                    log_events.join(",")
                )
            })
            .collect()
    }
}

/// gzip of `bytes` as one member, at the level CloudWatch Logs uses.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Lambda event of a CloudWatch Logs subscription delivering `envelope`.
pub fn subscription_event(envelope: &str) -> Vec<u8> {
    json!({"awslogs": {"data": b64(&gzip(envelope.as_bytes()))}}).to_string().into_bytes()
}

/// A Kinesis Lambda event, one record per envelope.
pub fn kinesis_event(envelopes: &[String], first: usize) -> Vec<u8> {
    let records: Vec<Value> = envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p",
                               "sequenceNumber": format!("49590{:012}", first + i), "data": b64(&gzip(e.as_bytes())),
                               "approximateArrivalTimestamp": 1_714_557_600.5},
                   "eventSource": "aws:kinesis", "eventName": "aws:kinesis:record", "awsRegion": "eu-west-1"})
        })
        .collect();
    json!({"Records": records}).to_string().into_bytes()
}

/// A Firehose object: one gzip member per envelope, concatenated.
pub fn firehose_object(envelopes: &[String]) -> Vec<u8> {
    envelopes.iter().flat_map(|e| gzip(e.as_bytes())).collect()
}

/// A decoder sink that keeps the events and stops at anything damaged.
fn keep(records: &mut Vec<EventRecord>) -> impl FnMut(Decoded) + '_ {
    |d| match d {
        Decoded::Event(e) => records.push(*e),
        Decoded::Failed(e) => panic!("benchmark data failed to decode: {e}"),
        _ => {}
    }
}

/// Decodes bytes held whole in memory into their events and counts.
fn decode_whole(name: &str, bytes: &[u8], options: &Options) -> (Vec<EventRecord>, Counts) {
    let mut records: Vec<EventRecord> = Vec::new();
    let counts = decode_bytes(name, bytes, options, &mut keep(&mut records));
    (records, counts)
}

/// Counts what the engine would publish, nothing more.
#[derive(Default)]
pub struct Count {
    /// Alert revisions published.
    pub revisions: u64,
    /// Records quarantined.
    pub quarantined: u64,
}

impl Sink for Count {
    fn publish(&mut self, _: &Alert) -> Result<(), Fault> {
        self.revisions += 1;
        Ok(())
    }
    fn quarantine(&mut self, _: &Quarantined<'_>) -> Result<(), Fault> {
        self.quarantined += 1;
        Ok(())
    }
    fn keep_event(&mut self, _: &str, _: &str, _: &[u8]) -> Result<(), Fault> {
        Ok(())
    }
}

/// The engine as a function runs it: each delivery decoded, then judged
/// against the state the earlier ones left in the store.
#[derive(Default)]
pub struct Pipeline {
    policy: Policy,
    store: MemoryStore,
    options: Options,
    /// What was published.
    pub sink: Count,
    /// What the decoder counted.
    pub counts: Counts,
}

impl Pipeline {
    /// Decodes one Lambda event (any framing), as it arrives whole, and runs
    /// the engine over it.
    pub fn deliver(&mut self, name: &str, bytes: &[u8]) {
        let decoded = decode_whole(name, bytes, &self.options);
        self.take(decoded);
    }

    /// Runs one Kinesis Lambda event as `audit-ingest` does: the event
    /// parsed with its base64 data decoded (`aws_lambda_events`), every
    /// record decoded on the cores there are, then each record's events
    /// judged in turn, so a failure can be reported from that record on.
    pub fn deliver_kinesis(&mut self, name: &str, bytes: &[u8]) {
        let event: aws_lambda_events::event::kinesis::KinesisEvent = match serde_json::from_slice(bytes) {
            Ok(event) => event,
            Err(e) => panic!("the benchmark's Kinesis event does not parse: {e}"),
        };
        let data: Vec<(String, &[u8])> = event
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("{name}:{i}"), r.kinesis.data.0.as_slice()))
            .collect();
        let options = &self.options.for_payload();
        let decoded = on_cores(&data, data.iter().map(|(_, d)| d.len()).sum(), |share| {
            share.iter().map(|(name, d)| decode_whole(name, d, options)).collect::<Vec<_>>()
        });
        decoded.into_iter().flatten().for_each(|d| self.take(d));
    }

    /// Decodes one Lambda event and counts the relevant events, without
    /// judging them: what the engine adds is the difference.
    pub fn decode_only(bytes: &[u8]) -> u64 {
        decode_bytes("event", bytes, &Options::default(), &mut |_| {}).kept
    }

    /// Decodes one S3 object as the function reads it, streamed, and runs
    /// the engine over it.
    pub fn read_object(&mut self, name: &str, bytes: &[u8]) {
        let mut records: Vec<EventRecord> = Vec::new();
        let counts = match decode_reader(name, bytes, &self.options, &mut keep(&mut records)) {
            Ok(counts) => counts,
            Err(e) => panic!("reading benchmark data from memory failed: {e}"),
        };
        self.take((records, counts));
    }

    /// Counts what a delivery decoded and runs the engine over its records.
    fn take(&mut self, (mut records, counts): (Vec<EventRecord>, Counts)) {
        self.counts.merge(&counts);
        self.judge(&mut records);
    }

    /// Runs the engine over decoded records, in time order.
    pub fn judge(&mut self, records: &mut [EventRecord]) {
        records.sort_by_key(EventRecord::time);
        let mut engine = Engine::new(&self.policy, &self.store);
        if let Err(e) = engine.run(records, &[], &mut self.sink) {
            panic!("the engine failed on benchmark data: {e}");
        }
    }
}
