//! Conformance: every public sample envelope, event and audit file decodes
//! to exactly the records it holds.

use std::fs;

use sentinel_core::decode::Outcome;
use sentinel_tests::{decode, samples_dir};

fn sample(path: &str) -> Vec<u8> {
    let full = samples_dir().join(path);
    fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn cloudwatch_logs_lambda_event_of_the_rust_runtime() {
    let d = decode("rust-runtime", &sample("aws-lambda-rust-runtime/example-cloudwatch_logs-event.json"));
    assert_eq!((d.counts.records, d.counts.skipped.not_audit_event, d.counts.kept), (2, 2, 0));
    assert!(d.errors.is_empty(), "{:?}", d.error_messages());
}

#[test]
fn powertools_cloudwatch_events_gzip_and_zlib_with_policy_level() {
    for file in ["cloudWatchLogEvent.json", "cloudWatchLogEventWithPolicyLevel.json"] {
        let d = decode(file, &sample(&format!("powertools-lambda-python/{file}")));
        assert_eq!((d.counts.records, d.counts.skipped.not_audit_event), (2, 2), "{file}");
        assert!(d.errors.is_empty(), "{file}: {:?}", d.error_messages());
    }
}

#[test]
fn powertools_real_kinesis_capture_of_a_subscription() {
    let d = decode("kinesis", &sample("powertools-lambda-python/kinesisStreamCloudWatchLogsEvent.json"));
    assert_eq!(d.counts.records, 6);
    assert_eq!(d.counts.skipped.not_audit_event, 6);
    assert!(d.errors.is_empty(), "{:?}", d.error_messages());
}

#[test]
fn kinesis_and_firehose_events_with_non_log_payloads_are_reported_by_record() {
    for (file, field) in
        [("example-kinesis-event.json", "Records[0].kinesis.data"), ("example-firehose-event.json", "records[0].data")]
    {
        let d = decode(file, &sample(&format!("aws-lambda-rust-runtime/{file}")));
        assert_eq!(d.counts.records, 0, "{file}");
        assert_eq!(d.counts.input_errors, 2, "{file}");
        let first = d.error_messages().remove(0);
        assert!(first.contains(field) && first.contains("unrecognised input format"), "{first}");
    }
}

#[test]
fn opentelemetry_envelopes_data_control_and_concatenated() {
    let dir = "opentelemetry-collector-contrib/subscription-filter";
    let data = decode("data", &sample(&format!("{dir}/valid_cloudwatch_log.json")));
    // CloudTrail-like messages (cut short in this AWS documentation example,
    // but ending in a brace): no write to a tracked resource, so not parsed.
    assert_eq!((data.counts.records, data.counts.skipped.not_relevant), (3, 3));
    let control = decode("control", &sample(&format!("{dir}/valid_cloudwatch_log_control.json")));
    assert_eq!((control.counts.records, control.counts.skipped.control_message), (1, 1));
    let two = decode("multiple", &sample(&format!("{dir}/multiple_json_objects.json")));
    assert_eq!((two.counts.records, two.counts.skipped.not_audit_event), (2, 2));
    let cloudtrail = decode("ct", &sample("opentelemetry-collector-contrib/cloudtraillog/cloudtrail_log_cw.json"));
    assert_eq!((cloudtrail.counts.records, cloudtrail.counts.skipped.not_relevant), (1, 1));
    for d in [data, control, two, cloudtrail] {
        assert!(d.errors.is_empty(), "{:?}", d.error_messages());
    }
}

#[test]
fn falco_minikube_audit_files_keep_exactly_the_tracked_writes() {
    let dir = samples_dir().join("falco/k8s_audit");
    let mut entries: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert_eq!(entries.len(), 47);
    let (mut records, mut kept, mut access, mut skipped, mut resources) = (0, 0, 0, 0, Vec::new());
    let mut accesses = Vec::new();
    for path in entries {
        let d = decode(&path.display().to_string(), &fs::read(&path).unwrap());
        assert!(d.errors.is_empty(), "{:?}", d.error_messages());
        d.assert_balanced();
        records += d.counts.records;
        kept += d.counts.kept;
        access += d.counts.access;
        skipped += d.counts.skipped.total();
        for e in &d.events {
            let o = &e.event.object_ref;
            match e.outcome {
                Outcome::Access => accesses.push(format!("{}/{}", o.resource, o.subresource.as_deref().unwrap_or(""))),
                _ => resources.push(o.resource.clone()),
            }
        }
    }
    assert_eq!((records, kept, access, skipped), (52, 17, 2, 33));
    resources.sort();
    resources.dedup();
    assert_eq!(resources, ["configmaps", "secrets", "services"]);
    // The real exec and attach of the minikube trace: a person reaching into a pod.
    accesses.sort();
    assert_eq!(accesses, ["pods/attach", "pods/exec"]);
}

/// The Panther test cases: EKS-shaped Ingress events (4 creates, one of them
/// denied, and 1 update), one AKS-wrapped and one GKE event, embedded as JSON in a YAML file.
#[test]
fn panther_ingress_cases_four_creates_and_one_update_in_eks_shape() {
    let yaml =
        String::from_utf8(sample("panther-analysis/rules/kubernetes_rules/k8s_ingress_without_tls.yml")).unwrap();
    let logs = panther_logs(&yaml);
    assert_eq!(logs.len(), 7);
    let lines: String = logs.iter().map(|l| format!("{l}\n")).collect();
    let d = decode("panther", lines.as_bytes());
    assert!(d.errors.is_empty(), "{:?}", d.error_messages());
    assert_eq!(d.counts.records, 7);
    assert_eq!((d.counts.kept, d.counts.denied, d.counts.skipped.not_relevant), (4, 1, 2));
    let verbs: Vec<(&str, Outcome)> = d.events.iter().map(|e| (e.event.verb.as_str(), e.outcome)).collect();
    assert_eq!(
        verbs,
        [
            ("create", Outcome::Kept),
            ("create", Outcome::Kept),
            ("create", Outcome::Kept),
            ("create", Outcome::Denied),
            ("update", Outcome::Kept)
        ]
    );
    // The v1beta1 backend shape of the first case is normalised.
    let first = d.events[0].event.object_after().unwrap();
    let state = sentinel_core::IngressState::from_value(first).unwrap();
    assert_eq!(state.class(), Some("nginx"));
    assert_eq!(state.backends().next().unwrap().to_string(), "service api-service:80");
}

/// The `Log:` values of a Panther rule's tests: JSON flow mappings in YAML.
fn panther_logs(yaml: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in yaml.lines() {
        if line.trim_start().starts_with("Log:") {
            current = Some(String::new());
        } else if line.starts_with("  - Name:") {
            if let Some(json) = current.take() {
                out.push(serde_json::from_str(&json).unwrap());
            }
        } else if let Some(json) = current.as_mut() {
            json.push_str(line);
            json.push('\n');
        }
    }
    if let Some(json) = current {
        out.push(serde_json::from_str(&json).unwrap());
    }
    out
}
