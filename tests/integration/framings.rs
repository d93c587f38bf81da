//! Every delivery framing yields the same events, with the same accounting.

use sentinel_core::decode::Outcome;
use sentinel_tests::*;
use serde_json::{Value, json};

/// Three relevant writes among noise: a create, a status update (noise), a
/// denied patch, and an update.
fn history() -> Vec<Value> {
    let v1 = ingress(
        "shop",
        "web",
        json!({"nginx.ingress.kubernetes.io/allowlist-source-range": "10.0.0.0/8"}),
        "shop.example.com",
        "web",
    );
    let v2 = ingress(
        "shop",
        "web",
        json!({"nginx.ingress.kubernetes.io/allowlist-source-range": "0.0.0.0/0"}),
        "shop.example.com",
        "web",
    );
    let mut status = ingress_write("status-1", "update", "2024-05-01T10:01:00.000000Z", &v1, "controller");
    status["objectRef"]["subresource"] = json!("status");
    let mut denied = ingress_write("denied-1", "patch", "2024-05-01T10:02:00.000000Z", &v2, "mallory");
    denied["responseStatus"] = json!({"code": 403, "status": "Failure", "reason": "Forbidden"});
    vec![
        noise(1),
        ingress_write("create-1", "create", "2024-05-01T10:00:00.000000Z", &v1, "ci-deployer"),
        noise(2),
        status,
        denied,
        ingress_write("update-1", "update", "2024-05-01T10:03:00.000000Z", &v2, "alice@example.com"),
        noise(3),
    ]
}

fn assert_history(name: &str, d: &Decoding) {
    assert!(d.errors.is_empty(), "{name}: {:?}", d.error_messages());
    assert_eq!(d.audit_ids(), ["create-1", "denied-1", "update-1"], "{name}");
    assert_eq!(d.events[1].outcome, Outcome::Denied, "{name}");
    let c = &d.counts;
    assert_eq!(
        (c.records, c.kept, c.denied, c.skipped.not_relevant, c.skipped.status_subresource),
        (7, 2, 1, 3, 1),
        "{name}"
    );
    // The typed event carries the IAM session that made it.
    let alice = &d.events[2].event.user;
    assert_eq!(alice.session_name(), Some("alice@example.com"));
    assert_eq!(alice.access_key_id(), Some("ASIAEXAMPLEKEY"));
}

#[test]
fn json_lines_plain_and_gzip() {
    let lines = json_lines(&history());
    assert_history("plain", &decode("plain", lines.as_bytes()));
    assert_history("gzip", &decode("gzip", &gzip(lines.as_bytes())));
    assert_history("crlf", &decode("crlf", lines.replace('\n', "\r\n").as_bytes()));
}

#[test]
fn cloudwatch_logs_subscription_lambda_event() {
    let d = decode("awslogs", lambda_logs_event(&envelope(&history())).as_bytes());
    assert_history("awslogs", &d);
    let e = &d.events[0];
    assert_eq!(e.source.cluster(), Some("prod"));
    assert_eq!(e.source.event_id.as_deref(), Some("37280001"));
    assert_eq!(
        e.location.to_string(),
        "awslogs: byte 0 (line 1) > awslogs.data > byte 0 (line 1) > \
         logEvents[1] (/aws/eks/prod/cluster kube-apiserver-audit-0a1b2c id 37280001)"
    );
}

/// Events as the API server writes them: Go's encoder escapes every `&`,
/// `<` and `>` in a string (`\u0026`), and a client may spell a letter of
/// a key or value as an escape too (here the verb of `update-1`). Judged
/// alike as JSON lines and inside a subscription envelope, where each
/// escape is escaped again; the letter escape never hides a write.
#[test]
fn escapes_as_the_api_server_writes_them() {
    let mut h = history();
    for e in &mut h {
        let uri = e["requestURI"].as_str().unwrap_or("/").to_owned();
        let joint = if uri.contains('?') { "&" } else { "?fieldManager=kubectl&" };
        e["requestURI"] = json!(format!("{uri}{joint}limit=500&resourceVersion=0&labelSelector=tier<>web"));
    }
    let mut texts: Vec<String> = h
        .iter()
        .map(|e| e.to_string().replace('&', "\\u0026").replace('<', "\\u003c").replace('>', "\\u003e"))
        .collect();
    let update = texts.iter().position(|t| t.contains(r#""update-1""#)).unwrap();
    texts[update] = texts[update].replace(r#""verb":"update""#, r#""verb":"upd\u0061te""#);
    assert!(texts[update].contains(r"upd\u0061te") && texts.iter().all(|t| t.contains(r"\u0026limit=500")));

    let lines: String = texts.iter().map(|t| format!("{t}\n")).collect();
    let messages: Vec<(i64, String)> = texts.iter().map(|t| (1_714_557_600_000, t.clone())).collect();
    let envelope = envelope_of_texts(&messages);
    assert!(envelope.contains(r"\\u0026limit=500") && envelope.contains(r"upd\\u0061te"));
    for (name, d) in [
        ("lines", decode("lines", lines.as_bytes())),
        ("gzip lines", decode("gzip", &gzip(lines.as_bytes()))),
        ("awslogs", decode("awslogs", lambda_logs_event(&envelope).as_bytes())),
    ] {
        assert_history(name, &d);
        let uri = d.events[2].event.request_uri.as_deref().unwrap_or_default();
        assert!(uri.ends_with("&limit=500&resourceVersion=0&labelSelector=tier<>web"), "{name}: {uri}");
    }
}

#[test]
fn subscription_envelope_zlib_compressed() {
    assert_history("zlib", &decode("zlib", &zlib(envelope(&history()).as_bytes())));
}

#[test]
fn kinesis_event_of_subscription_envelopes_with_a_control_message() {
    let h = history();
    let d = decode("kinesis", kinesis_event(&[envelope(&h[..3]), control_envelope(), envelope(&h[3..])]).as_bytes());
    assert_eq!(d.counts.skipped.control_message, 1);
    assert_eq!(d.counts.records, 8);
    assert_eq!(d.audit_ids(), ["create-1", "denied-1", "update-1"]);
    assert!(d.events[2].location.at.starts_with("byte 0 (line 1) > Records[2].kinesis.data"));
}

#[test]
fn firehose_objects_in_every_layout() {
    let h = history();
    let envelopes = vec![envelope(&h[..2]), control_envelope(), envelope(&h[2..])];
    let check = |name: &str, d: Decoding| {
        assert_eq!(d.counts.skipped.control_message, 1, "{name}");
        assert_eq!(d.audit_ids(), ["create-1", "denied-1", "update-1"], "{name}");
        assert!(d.errors.is_empty(), "{name}: {:?}", d.error_messages());
    };
    check("multi-member gzip", decode("fh", &firehose_multi_member(&envelopes)));
    check("concatenated", decode("fh", firehose_concatenated(&envelopes).as_bytes()));
    check("concatenated gzip", decode("fh", &gzip(firehose_concatenated(&envelopes).as_bytes())));
    check("newline-delimited", decode("fh", firehose_newline(&envelopes).as_bytes()));
    // Message-only deliveries are audit events, with or without newlines.
    assert_history("message-only", &decode("fh", firehose_message_only(&h).as_bytes()));
    assert_history("message-only gzip", &decode("fh", &gzip(firehose_message_only(&h).as_bytes())));
}

#[test]
fn cloudwatch_export_lines() {
    let d = decode("export", &gzip(export_lines(&history()).as_bytes()));
    assert_history("export", &d);
    assert_eq!(d.events[0].location.to_string(), "export: line 2");
}

#[test]
fn pretty_printed_single_event_file() {
    let h = history();
    let pretty = serde_json::to_string_pretty(&h[5]).unwrap();
    // Pretty JSON spans lines: read as one object when it is the file's only content.
    let d = decode("pretty", format!("{}{}", firehose_message_only(&h[..5]), pretty).as_bytes());
    assert_eq!(d.audit_ids(), ["create-1", "denied-1", "update-1"]);
}

#[test]
fn decoding_a_reader_streams_the_same_result() {
    let bytes = gzip(json_lines(&history()).as_bytes());
    let mut ids = Vec::new();
    let counts = sentinel_core::decode::decode_reader("reader", &bytes[..], &Default::default(), &mut |d| {
        if let sentinel_core::decode::Decoded::Event(e) = d {
            ids.push(e.event.audit_id);
        }
    })
    .unwrap();
    assert_eq!(ids, ["create-1", "denied-1", "update-1"]);
    assert_eq!(counts.records, 7);
    assert_eq!(counts.bytes, json_lines(&history()).len() as u64);
}

#[test]
fn skipped_records_are_reported_with_reason_and_place_when_asked() {
    let options = sentinel_core::decode::Options { report_skipped: true, ..Default::default() };
    let d = decode_options("kinesis", kinesis_event(&[envelope(&history()), control_envelope()]).as_bytes(), &options);
    let skipped: Vec<(String, &str)> = d.skipped.iter().map(|(l, r)| (l.at.clone(), r.as_str())).collect();
    let inner = "byte 0 (line 1) > Records[0].kinesis.data > byte 0 (line 1)";
    let at = |i: usize| {
        format!("{inner} > logEvents[{i}] (/aws/eks/prod/cluster kube-apiserver-audit-0a1b2c id 3728{i:04})")
    };
    assert_eq!(
        skipped,
        [
            (at(0), "not_relevant"),
            (at(2), "not_relevant"),
            (at(3), "status_subresource"),
            (at(6), "not_relevant"),
            ("byte 0 (line 1) > Records[1].kinesis.data > byte 0 (line 1)".to_owned(), "control_message"),
        ]
    );
    assert_eq!(d.counts.skipped.total(), 5);
}
