//! Decode throughput on a realistic EKS audit-log mix.
//!
//! Generates ~100 MB of audit events (1–2 KB each, IAM `user.extra` on every
//! one, 0.1% Ingress writes, the rest reads, watches, lease renewals and
//! status updates), then measures in one run, best of three:
//!
//! - gzip decompression alone (the floor every S3 object pays),
//! - decode + relevance filter of the gzip object (JSON lines),
//! - decode + filter of the same bytes uncompressed,
//! - decode + filter of a Firehose object: one gzip member per subscription
//!   envelope, audit events escaped inside them.
//!
//! Run: `cargo bench -p sentinel-tests --bench decode` (`BENCH_MB` sets the size).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use sentinel_core::decode::{Decoded, Options, decode_bytes, decode_reader};
use sentinel_tests::{envelope, firehose_multi_member, gzip, ingress, ingress_write};
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
        "requestReceivedTimestamp": format!("2024-05-01T10:{:02}:{:02}.{:06}Z", i / 60_000 % 60, i / 1000 % 60, rng.below(1_000_000)),
        "stageTimestamp": format!("2024-05-01T10:{:02}:{:02}.{:06}Z", i / 60_000 % 60, i / 1000 % 60, rng.below(1_000_000)),
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

struct Data {
    events: Vec<String>,
    writes: u64,
}

fn generate(target: usize) -> Data {
    let mut rng = Lcg(42);
    let (mut events, mut size, mut writes) = (Vec::new(), 0, 0);
    let mut i = 0u64;
    while size < target {
        let event = if i % 1000 == 999 {
            writes += 1;
            let obj = ingress(
                "shop",
                &format!("web-{i}"),
                json!({"nginx.ingress.kubernetes.io/allowlist-source-range":
                "10.0.0.0/8"}),
                "shop.example.com",
                "web",
            );
            ingress_write(&format!("w{i}"), "update", "2024-05-01T10:00:00.000000Z", &obj, "alice")
        } else {
            background(&mut rng, i)
        };
        let line = event.to_string();
        size += line.len() + 1;
        events.push(line);
        i += 1;
    }
    Data { events, writes }
}

fn best_of_three(mut run: impl FnMut() -> u64) -> (Duration, u64) {
    let mut best = Duration::MAX;
    let mut result = 0;
    for _ in 0..3 {
        let start = Instant::now();
        result = run();
        best = best.min(start.elapsed());
    }
    (best, result)
}

fn report(name: &str, bytes: usize, time: Duration) {
    let mb = bytes as f64 / 1e6;
    println!("{name:<44} {:>8.1} MB/s  ({mb:.0} MB in {:.3} s)", mb / time.as_secs_f64(), time.as_secs_f64());
}

fn kept_of(counts: sentinel_core::decode::Counts) -> u64 {
    counts.kept
}

fn main() {
    let mb: usize = std::env::var("BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let data = generate(mb << 20);
    let plain: String = data.events.iter().map(|e| format!("{e}\n")).collect();
    let gz = gzip(plain.as_bytes());
    let values: Vec<Value> = data.events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let envelopes: Vec<String> = values.chunks(200).map(envelope).collect();
    let firehose = firehose_multi_member(&envelopes);
    let firehose_plain: usize = envelopes.iter().map(String::len).sum();
    println!(
        "{} events, {:.1} MB, {} Ingress writes; gzip {:.1} MB ({:.1}:1)",
        data.events.len(),
        plain.len() as f64 / 1e6,
        data.writes,
        gz.len() as f64 / 1e6,
        plain.len() as f64 / gz.len() as f64
    );
    let options = Options::default();
    let mut sink = |d: Decoded| {
        if let Decoded::Failed(e) = d {
            panic!("benchmark data failed to decode: {e}");
        }
    };

    let (time, out) = best_of_three(|| std::io::copy(&mut MultiGzDecoder::new(&gz[..]), &mut std::io::sink()).unwrap());
    assert_eq!(out, plain.len() as u64);
    report("gzip decompression alone (flate2, zlib-rs)", plain.len(), time);
    // Each decode must keep exactly the Ingress writes, or its figure means nothing.
    let (time, kept) =
        best_of_three(|| kept_of(decode_reader("bench.gz", &gz[..], &options, &mut sink).expect("a slice reads")));
    assert_eq!(kept, data.writes);
    report("decode + filter, gzip JSON lines", plain.len(), time);
    let (time, kept) = best_of_three(|| kept_of(decode_bytes("bench.jsonl", plain.as_bytes(), &options, &mut sink)));
    assert_eq!(kept, data.writes);
    report("decode + filter, plain JSON lines", plain.len(), time);
    let (time, kept) = best_of_three(|| {
        kept_of(decode_reader("firehose.gz", &firehose[..], &options, &mut sink).expect("a slice reads"))
    });
    assert_eq!(kept, data.writes);
    report("decode + filter, Firehose gzip envelopes", firehose_plain, time);
    let mut buf = Vec::new();
    MultiGzDecoder::new(&firehose[..]).read_to_end(&mut buf).unwrap();
    assert_eq!(buf.len(), firehose_plain);
}
