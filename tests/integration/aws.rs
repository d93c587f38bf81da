//! On AWS's wire protocol: the DynamoDB store against moto, and both Lambda
//! functions run as real binaries under the runtime emulator, talking to
//! moto through the real SDK clients.

use std::time::Duration;

use sentinel_tests::aws::*;
use sentinel_tests::cloudtrail as ct;
use sentinel_tests::contract::store_contract;
use sentinel_tests::engine::{assert_valid_alert, ci, iam_user, storefront, write};
use serde_json::{Value, json};

#[test]
fn the_dynamodb_store_meets_the_contract_on_moto() {
    let dir = tempfile::tempdir().unwrap();
    store_contract(&Emulator::start(dir.path()).store());
}

const POLICY: &str = r#"
cluster = "prod"
[[actors]]
name = "ci"
iam_role_arn = "arn:aws:iam::111122223333:role/Deploy"
"#;

fn cloudwatch_event(events: &[Value]) -> Value {
    serde_json::from_str(&sentinel_tests::lambda_logs_event(&sentinel_tests::envelope(events))).unwrap()
}

fn named(name: &str, allow: &str) -> Value {
    let mut o = storefront();
    o["metadata"]["name"] = json!(name);
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!(allow);
    o
}

fn attribute<'a>(notification: &'a Value, name: &str) -> &'a str {
    notification["MessageAttributes"][name]["Value"].as_str().unwrap_or_default()
}

#[test]
fn both_functions_end_to_end_on_moto_under_the_runtime_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let (moto, rt, sdk) = (&aws.moto, &aws.rt, &aws.sdk);
    let s3 = aws.s3();
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let Stack { topic, queue } = aws.stack();
    let mut env = moto_env(moto);
    env.extend([("POLICY_TOML", POLICY.to_owned()), ("CLUSTER_NAME", "prod".to_owned())]);
    env.extend(function_env(&topic));
    // The template's optional chat topic.
    let chat =
        rt.block_on(aws_sdk_sns::Client::new(sdk).create_topic().name("chat").send()).unwrap().topic_arn.unwrap();
    env.push(("CHAT_TOPIC_ARN", chat.clone()));
    // A change plan for the CI role, registered as `sentinel approve --aws` would.
    let store = aws.store();
    plan_ci_for_prod(&store);
    let watch = watch(dir.path(), &env);
    let alice = iam_user("Admin", "alice@example.com", "ASIAALICE");

    // (a) A CloudWatch Logs subscription event: a planned create, then an unapproved widening.
    let first = cloudwatch_event(&[
        write("c1", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write(
            "w1",
            "update",
            "ingresses",
            "shop",
            "web",
            "2024-05-02T02:00:00Z",
            alice.clone(),
            Some(&named("web", "0.0.0.0/0")),
        ),
    ]);
    let report = invoke(&watch, "audit-ingest", &first, dir.path());
    assert_eq!(report["alerts_opened"], 1, "{report:#}");
    let messages = rt.block_on(queue.drain());
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let note = &messages[0];
    assert_eq!(attribute(note, "severity"), "critical");
    assert_eq!(attribute(note, "cluster"), "prod");
    assert!(attribute(note, "rule_ids").contains("ingress.allowlist.widened"));
    assert!(attribute(note, "namespaces").contains("shop"));
    let alert: Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
    assert_valid_alert(&alert);
    assert_eq!(attribute(note, "alert_id"), alert["alert_id"]);
    assert_eq!(attribute(note, "event"), "signals");
    assert!(note["Subject"].as_str().unwrap().starts_with("[CRITICAL] "));
    // One message, a body per protocol: the SQS subscriber above got the
    // alert JSON; an e-mail subscriber gets the text rendering.
    let sent = aws.published(&topic);
    assert_eq!(sent.len(), 1);
    let structure: Value = serde_json::from_str(&sent[0].0).unwrap();
    let default: Value = serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
    assert_eq!(default, alert, "the JSON subscribers' body");
    let email = structure["email"].as_str().unwrap();
    assert!(email.starts_with("[CRITICAL] ") && email.contains(alert["alert_id"].as_str().unwrap()), "{email}");
    assert!(email.contains("next (ingress.allowlist.widened): "), "what to check next: {email}");
    // The chat topic got the same revision in the AWS Chatbot format.
    let chatted = aws.published(&chat);
    assert_eq!(chatted.len(), 1);
    let card: Value = serde_json::from_str(&chatted[0].0).unwrap();
    assert_eq!((card["version"].as_str(), card["source"].as_str()), (Some("1.0"), Some("custom")), "{card:#}");
    assert_eq!(card["metadata"]["threadId"], alert["alert_id"]);
    // The alert and the baseline are in DynamoDB.
    let (stored, baseline) = rt.block_on(async {
        let a = dynamo
            .get_item()
            .table_name("alerts")
            .key("alert_id", aws_sdk_dynamodb::types::AttributeValue::S(alert["alert_id"].as_str().unwrap().into()))
            .send()
            .await
            .unwrap();
        let b = dynamo
            .get_item()
            .table_name("state")
            // The baseline lives in its cluster's partition of the space.
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("baseline#prod".into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("prod|ingresses|shop|web".into()))
            .send()
            .await
            .unwrap();
        (a.item, b.item)
    });
    let stored = stored.expect("alert item");
    assert_eq!(stored["severity"].as_s().unwrap(), "critical");
    assert!(stored["rules"].as_ss().unwrap().contains(&"ingress.allowlist.widened".to_owned()));
    assert!(baseline.is_some(), "baseline item");

    // The same delivery again (a retry): nothing new anywhere.
    let again = invoke(&watch, "audit-ingest", &first, dir.path());
    assert_eq!((again["alerts_opened"].as_u64(), again["alerts_updated"].as_u64()), (Some(0), Some(0)), "{again:#}");
    assert!(rt.block_on(queue.drain()).is_empty(), "no second alert");

    // An approved change (CI, under its plan) raises nothing.
    let mut planned = named("web", "0.0.0.0/0");
    planned["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] = json!("/v2");
    let approved = cloudwatch_event(&[write(
        "p1",
        "update",
        "ingresses",
        "shop",
        "web",
        "2024-05-02T10:00:00Z",
        ci(),
        Some(&planned),
    )]);
    let report = invoke(&watch, "audit-ingest", &approved, dir.path());
    assert_eq!(report["alerts_opened"], 0, "{report:#}");
    assert!(rt.block_on(queue.drain()).is_empty());

    // A malformed record is quarantined with its bytes and the good one still processed.
    let mut broken = cloudwatch_event(&[]);
    let envelope = json!({"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/eks/prod/cluster",
    "logStream": "s", "subscriptionFilters": [], "logEvents": [
        {"id": "1", "timestamp": 1_714_617_001_000_i64, "message": "{\"kind\":\"Event\",\"verb\":\"update\",\"objectRef\":{\"resource\":\"ingresses\"},\"user\":"},
        {"id": "2", "timestamp": 1_714_617_001_000_i64, "message": write("c2", "create", "ingresses", "shop", "api", "2024-05-02T02:30:00Z", alice.clone(), Some(&named("api", "0.0.0.0/0"))).to_string()}
    ]});
    broken["awslogs"]["data"] = json!(base64_gzip(&envelope.to_string()));
    let report = invoke(&watch, "audit-ingest", &broken, dir.path());
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report:#}");
    assert_eq!(report["quarantined"], 1, "{report:#}");
    assert!(failures[0]["location"].as_str().unwrap().contains("logEvents[0]"), "{report:#}");
    assert_eq!(rt.block_on(queue.drain()).len(), 1, "the good record's alert");
    let quarantined = rt.block_on(async {
        let listed = s3.list_objects_v2().bucket("evidence").prefix("quarantine/").send().await.unwrap();
        let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        let bin = keys.iter().find(|k| k.ends_with(".bin")).expect("the raw record").clone();
        let body = s3.get_object().bucket("evidence").key(&bin).send().await.unwrap().body.collect().await.unwrap();
        (keys, body.into_bytes())
    });
    assert_eq!(quarantined.0.len(), 2, "{:?}", quarantined.0);
    assert!(quarantined.1.starts_with(br#"{"kind":"Event""#), "{:?}", String::from_utf8_lossy(&quarantined.1));

    // Kinesis: each record on its own, and the report counts every record's alerts.
    let bob = iam_user("Admin", "bob@example.com", "ASIABOB");
    let kinesis: Value = serde_json::from_str(&sentinel_tests::kinesis_event(&[
        sentinel_tests::envelope(&[write(
            "k1",
            "update",
            "ingresses",
            "shop",
            "web",
            "2024-05-02T12:00:00Z",
            bob.clone(),
            Some(&named("web", "10.0.0.0/8")),
        )]),
        sentinel_tests::envelope(&[write(
            "k2",
            "create",
            "ingresses",
            "shop",
            "kin",
            "2024-05-02T13:00:00Z",
            alice.clone(),
            Some(&named("kin", "0.0.0.0/0")),
        )]),
        // A record anyone allowed to put records can write: well under
        // 1 MiB, past the 64 MiB a payload may inflate to.
        format!("{}\n", sentinel_tests::noise(0)).repeat((65 << 20) / 400),
    ]))
    .unwrap();
    let report = invoke(&watch, "audit-ingest", &kinesis, dir.path());
    assert_eq!(report["alerts_opened"], 2, "{report:#}");
    assert!(report.get("batchItemFailures").is_none(), "{report:#}");
    assert_eq!(report["quarantined"], 1, "{report:#}");
    let failure = report["failures"][0]["message"].as_str().unwrap_or_default();
    assert!(failure.contains("exceeds the limit of 67108864 bytes"), "{report:#}");
    assert_eq!(rt.block_on(queue.drain()).len(), 2);

    // (b) An exported audit-log object in S3, named URL-encoded by the notification.
    let export = sentinel_tests::gzip(
        sentinel_tests::export_lines(&[write(
            "e1",
            "update",
            "ingresses",
            "shop",
            "web",
            "2024-05-03T03:00:00Z",
            alice.clone(),
            Some(&named("web", "0.0.0.0/0,::/0")),
        )])
        .as_bytes(),
    );
    let key = "exports/task 1/kube-apiserver-audit-abc/000000.gz";
    rt.block_on(s3.put_object().bucket("audit-exports").key(key).body(export.into()).send()).unwrap();
    let notification =
        s3_notification("audit-exports", "exports/task+1/kube-apiserver-audit-abc/000000.gz", None, None);
    let report = invoke(&watch, "audit-ingest", &notification, dir.path());
    assert_eq!(report["counts"]["kept"], 1, "{report:#}");
    let messages = rt.block_on(queue.drain());
    assert_eq!(messages.len(), 1, "{report:#}");
    assert!(attribute(&messages[0], "rule_ids").contains("ingress.allowlist.widened"));

    // (b2) An export of several MiB, decoded as it downloads: the write in
    // its middle arrives across many chunks of the body and of the inflater.
    let mut events: Vec<Value> = (0..50).map(|i| padded_noise(i, 64 << 10)).collect();
    events.insert(
        50,
        write(
            "e2",
            "update",
            "ingresses",
            "shop",
            "big",
            "2024-05-03T03:30:00Z",
            alice.clone(),
            Some(&named("big", "0.0.0.0/0")),
        ),
    );
    events.extend((50..100).map(|i| padded_noise(i, 64 << 10)));
    let export = sentinel_tests::gzip(sentinel_tests::export_lines(&events).as_bytes());
    assert!(export.len() > 4 << 20, "{}", export.len());
    let key = "exports/task-2/kube-apiserver-audit-abc/000000.gz";
    rt.block_on(s3.put_object().bucket("audit-exports").key(key).body(export.into()).send()).unwrap();
    let report = invoke(&watch, "audit-ingest", &s3_notification("audit-exports", key, None, None), dir.path());
    assert_eq!(report["counts"]["kept"], 1, "{report:#}");
    assert_eq!(report["counts"]["records"], 101, "{report:#}");
    let messages = rt.block_on(queue.drain());
    assert_eq!(messages.len(), 1, "{report:#}");
    assert!(attribute(&messages[0], "rule_ids").contains("ingress.allowlist.widened"));

    // (c) A CloudTrail file in S3: audit logging switched off.
    let trail = sentinel_tests::gzip(
        ct::log_file(&[ct::cluster_logging(
            "t1",
            "2024-05-03T04:00:00Z",
            ct::iam_user("mallory"),
            "prod",
            &["audit"],
            false,
        )])
        .as_bytes(),
    );
    let trail_key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/03/111122223333_CloudTrail_eu-west-1_20240503T0400Z_x.json.gz";
    rt.block_on(s3.put_object().bucket("trail").key(trail_key).body(trail.into()).send()).unwrap();
    let notification = s3_notification("trail", trail_key, None, None);
    let report = invoke(&watch, "identity-ingest", &notification, dir.path());
    assert_eq!(report["alerts_opened"], 1, "{report:#}");
    let messages = rt.block_on(queue.drain());
    assert_eq!(messages.len(), 1);
    assert_eq!(attribute(&messages[0], "rule_ids"), "[\"pipeline.tampering\"]");

    // (d) A 250 KB snippet (just under the API server's limit): the alert is
    // stored and published within DynamoDB's and SNS's limits, cut with its digest.
    let padding = format!("return 200; # {}", "A".repeat(250 * 1024));
    let mut padded = named("web", "0.0.0.0/0,::/0");
    padded["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!(padding);
    let big = cloudwatch_event(&[write(
        "big",
        "update",
        "ingresses",
        "shop",
        "web",
        "2024-05-03T05:00:00Z",
        alice.clone(),
        Some(&padded),
    )]);
    let report = invoke(&watch, "audit-ingest", &big, dir.path());
    assert_eq!(report["alerts_opened"], 1, "{report:#}");
    let messages = rt.block_on(queue.drain());
    assert_eq!(messages.len(), 1);
    let body = messages[0]["Message"].as_str().unwrap();
    assert!(body.len() < 256 * 1024, "{}", body.len());
    assert!(body.contains(&sentinel_core::bound::sha256(padding.as_bytes())), "the digest of the whole snippet");
    let stored = rt.block_on(
        dynamo
            .get_item()
            .table_name("alerts")
            .key("alert_id", aws_sdk_dynamodb::types::AttributeValue::S(attribute(&messages[0], "alert_id").into()))
            .send(),
    );
    assert!(stored.unwrap().item.is_some(), "the alert item fits DynamoDB");
    // The raw event is kept whole in the evidence bucket.
    let kept = rt.block_on(async {
        s3.get_object().bucket("evidence").key("events/prod/big.json").send().await.unwrap().body.collect().await
    });
    assert!(kept.unwrap().into_bytes().len() > 250 * 1024);

    drop(watch);
    std::thread::sleep(Duration::from_millis(100));
}

/// A read to skip, its request URI carrying `bytes` of text that does not
/// compress (as real continue tokens barely do).
fn padded_noise(i: usize, bytes: usize) -> Value {
    use base64::Engine as _;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ i as u64;
    let random: Vec<u8> = (0..bytes * 3 / 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let mut event = sentinel_tests::noise(i);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
    event["requestURI"] = json!(format!("/apis/networking.k8s.io/v1/ingresses?continue={token}"));
    event
}

fn base64_gzip(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(sentinel_tests::gzip(text.as_bytes()))
}
