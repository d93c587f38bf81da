//! Hostile and broken input: a clear error naming the input and position,
//! the rest still processed, no panic, bounded memory.

use sentinel_core::decode::{ErrorKind, Limits, Options};
use sentinel_tests::*;
use serde_json::json;

fn one_write() -> serde_json::Value {
    let obj = ingress("shop", "web", json!({}), "shop.example.com", "web");
    ingress_write("good-1", "update", "2024-05-01T10:00:00.000000Z", &obj, "alice")
}

#[test]
fn truncated_gzip_keeps_what_came_before_and_says_where_it_broke() {
    let mut lines = json_lines(&[one_write()]);
    for i in 0..2000 {
        lines.push_str(&format!("{}\n", noise(i)));
    }
    let gz = gzip(lines.as_bytes());
    let cut = &gz[..gz.len() * 3 / 4];
    let d = decode("cut.gz", cut);
    assert_eq!(d.audit_ids(), ["good-1"]);
    assert_eq!(d.counts.input_errors, 1);
    let msg = &d.error_messages()[0];
    assert!(msg.starts_with("cut.gz: decompressed byte "), "{msg}");
    assert!(msg.contains("corrupt or truncated gzip data at compressed byte"), "{msg}");
}

#[test]
fn trailing_garbage_after_a_gzip_member_is_an_error_after_the_good_data() {
    let mut gz = gzip(json_lines(&[one_write()]).as_bytes());
    gz.extend_from_slice(b"this is not gzip");
    let d = decode("trailing.gz", &gz);
    assert_eq!(d.audit_ids(), ["good-1"]);
    assert_eq!(d.counts.input_errors, 1);
    assert!(matches!(d.errors[0].kind, ErrorKind::Decompress { codec: "gzip", .. }), "{:?}", d.errors);
}

#[test]
fn invalid_utf8_and_invalid_json_name_their_line_and_the_rest_goes_on() {
    let good = one_write().to_string();
    let mut bytes = good.replacen("good-1", "good-0", 1).into_bytes();
    bytes.push(b'\n');
    // Line 2: a relevant record with a byte that is not UTF-8 inside a string.
    let mut line2 = good.clone().into_bytes();
    let at = line2.windows(5).position(|w| w == b"alice").unwrap();
    line2[at + 2] = 0xff;
    bytes.extend_from_slice(&line2);
    bytes.push(b'\n');
    // Line 3: cut short, as a crashed writer leaves it, before its resource is named.
    bytes.extend_from_slice(&good.as_bytes()[..good.find("objectRef").unwrap()]);
    bytes.push(b'\n');
    // Line 4: fine.
    bytes.extend_from_slice(good.replacen("good-1", "good-4", 1).as_bytes());
    bytes.push(b'\n');
    let d = decode("mixed.jsonl", &bytes);
    assert_eq!(d.audit_ids(), ["good-0", "good-4"]);
    assert_eq!(d.counts.malformed, 2);
    let msgs = d.error_messages();
    assert!(msgs[0].starts_with("mixed.jsonl: line 2: invalid JSON"), "{msgs:?}");
    assert!(msgs[1].starts_with("mixed.jsonl: line 3: invalid JSON"), "{msgs:?}");
}

#[test]
fn a_hundred_megabyte_line_is_refused_without_holding_it() {
    let mut bytes = Vec::with_capacity(101 << 20);
    bytes.extend_from_slice(br#"{"kind":"Event","verb":"update","objectRef":{"resource":"ingresses"},"x":""#);
    bytes.resize(100 << 20, b'a');
    bytes.extend_from_slice(b"\"}\n");
    bytes.extend_from_slice(one_write().to_string().as_bytes());
    let d = decode("huge.jsonl", &bytes);
    assert_eq!(d.audit_ids(), ["good-1"]);
    assert!(matches!(d.errors[0].kind, ErrorKind::RecordTooLarge { limit, .. } if limit == 16 << 20));
    assert!(d.error_messages()[0].starts_with("huge.jsonl: line 1: record of at least 104857602 bytes"));
}

#[test]
fn a_gzip_bomb_stops_at_the_configured_limit() {
    // 64 MiB of one repeated audit line compresses to well under 1 MiB.
    let line = format!("{}\n", noise(0));
    let bomb = gzip(line.repeat((64 << 20) / line.len()).as_bytes());
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let limits = Limits { max_decompressed_bytes: 8 << 20, ..Limits::default() };
    let d = decode_with("bomb.gz", &bomb, &limits);
    assert_eq!(d.counts.input_errors, 1);
    assert!(d.counts.records > 0 && d.counts.records <= (8 << 20) / line.len() as u64);
    assert!(matches!(d.errors[0].kind, ErrorKind::DecompressedTooLarge { limit } if limit == 8 << 20));
}

#[test]
fn a_kinesis_record_is_read_as_one_payload_and_stops_at_the_payload_limit() {
    // A record is a payload held in memory: the object limit does not apply.
    let line = format!("{}\n", noise(0));
    let record = gzip(line.repeat((8 << 20) / line.len()).as_bytes());
    let limits = Limits { max_payload_bytes: 1 << 20, ..Limits::default() };
    let options = Options { limits, report_skipped: false };
    assert_eq!(decode_options("kinesis:1", &record, &options).counts.input_errors, 0, "as an object: read through");
    let d = decode_options("kinesis:1", &record, &options.for_payload());
    assert_eq!(d.counts.input_errors, 1);
    assert!(matches!(d.errors[0].kind, ErrorKind::DecompressedTooLarge { limit } if limit == 1 << 20));
}

#[test]
fn a_gzip_bomb_inside_a_lambda_payload_stops_at_the_payload_limit() {
    let mut payload = Vec::from(&br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","message":""#[..]);
    payload.resize(32 << 20, b'a');
    payload.extend_from_slice(b"\"}]}");
    let event = json!({"awslogs": {"data": base64_of(&gzip(&payload))}}).to_string();
    let limits = Limits { max_payload_bytes: 1 << 20, ..Limits::default() };
    let d = decode_with("event.json", event.as_bytes(), &limits);
    assert!(matches!(d.errors[0].kind, ErrorKind::DecompressedTooLarge { limit } if limit == 1 << 20));
    assert!(d.error_messages()[0].starts_with("event.json: byte 0 (line 1) > awslogs.data > "));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn json_nested_ten_thousand_deep_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        r#"{{"kind":"Event","verb":"update","objectRef":{{"resource":"ingresses"}},"requestObject":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let lines = format!("{deep}\n{}\n", one_write());
    let d = decode("deep.jsonl", lines.as_bytes());
    assert_eq!(d.audit_ids(), ["good-1"]);
    assert_eq!(d.counts.malformed, 1);
    assert!(d.error_messages()[0].contains("recursion limit exceeded"), "{:?}", d.error_messages());
    // The same inside concatenated values.
    let d = decode("deep.json", format!("{deep}{}", one_write()).as_bytes());
    assert_eq!(d.audit_ids(), ["good-1"]);
}

#[test]
fn an_unknown_format_is_named() {
    let d = decode("photo.jpg", b"\xff\xd8\xff\xe0 JFIF");
    assert_eq!(d.counts.input_errors, 1);
    assert_eq!(
        d.error_messages()[0],
        "photo.jpg: unrecognised input format: starts with byte 0xff, not a JSON object, a timestamped export line or gzip/zlib data"
    );
    let d = decode("vpc.jsonl", b"{\"version\":2,\"srcaddr\":\"10.0.0.1\"}\n");
    assert!(d.error_messages()[0].contains("neither a Kubernetes audit event nor an AWS log envelope"));
}

#[test]
fn a_bad_base64_record_does_not_stop_the_batch() {
    let good = envelope(&[one_write()]);
    let mut event: serde_json::Value = serde_json::from_str(&kinesis_event(&[good.clone(), good])).unwrap();
    event["Records"][0]["kinesis"]["data"] = json!("!!!not base64!!!");
    let d = decode("kinesis.json", event.to_string().as_bytes());
    assert_eq!(d.audit_ids(), ["good-1"]);
    assert!(d.error_messages()[0].contains("Records[0].kinesis.data: invalid base64 in kinesis.data"));
}

#[test]
fn attacker_strings_that_mimic_framing_keys_do_not_change_the_framing() {
    let obj = ingress("shop", "web", json!({"awslogs": "x", "messageType": "CONTROL_MESSAGE"}), "h", "web");
    let line = ingress_write("forged", "update", "2024-05-01T10:00:00.000000Z", &obj, "mallory").to_string();
    let d = decode("forged.jsonl", format!("{line}\n").as_bytes());
    assert_eq!(d.audit_ids(), ["forged"]);
}
