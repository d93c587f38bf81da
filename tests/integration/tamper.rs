//! Blinding the pipeline: every call that can cut, mute or rewrite the
//! product is a `pipeline.tampering` signal, classified from records shaped
//! as CloudTrail writes them (versioned Lambda API names included); the same
//! calls on other resources are not; and a policy change cannot hide itself.

use sentinel_core::engine::Engine;
use sentinel_core::rules::{RuleId, Severity};
use sentinel_core::store::MemoryStore;
use sentinel_tests::cloudtrail as ct;
use sentinel_tests::engine::*;
use serde_json::{Value, json};

const ACCOUNT: &str = ct::ACCOUNT;
const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// The stack `ingress-sentinel` as its CloudFormation names come out, and its key.
const POLICY: &str = r#"
cluster = "prod"
[pipeline]
keys = ["arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
"#;

fn insider() -> Value {
    ct::session("PlatformAdmin", "mallory@example.com", "ASIAINSIDER")
}

/// One watched call: (event source, event name, request parameters, what the summary must say).
fn watched_calls() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    let function = "ingress-sentinel-AuditIngestFunction-9Qx1Lb2Zk3Hd";
    let function_arn = format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{function}");
    let role = "ingress-sentinel-AuditIngestFunctionRole-1J2K3L4M5N6O";
    let topic = format!("arn:aws:sns:eu-west-1:{ACCOUNT}:ingress-sentinel-alerts");
    vec![
        (
            "lambda.amazonaws.com",
            "RemovePermission20150331v2",
            json!({"functionName": function, "statementId": "logs-subscription"}),
            "RemovePermission20150331v2 on function",
        ),
        (
            "lambda.amazonaws.com",
            "PutFunctionConcurrency20171031",
            json!({"functionName": function_arn, "reservedConcurrentExecutions": 0}),
            "PutFunctionConcurrency20171031 on function",
        ),
        (
            "lambda.amazonaws.com",
            "UpdateFunctionConfiguration20150331v2",
            json!({"functionName": function, "environment": {}}),
            "its environment, where the policy lives, changed",
        ),
        (
            "lambda.amazonaws.com",
            "DeleteEventSourceMapping20150331",
            json!({"uUID": "a1b2c3d4-5678-90ab-cdef-11111EXAMPLE", "functionName": function}),
            "on function",
        ),
        ("kms.amazonaws.com", "DisableKey", json!({"keyId": KEY_ARN}), "DisableKey on KMS key"),
        (
            "kms.amazonaws.com",
            "ScheduleKeyDeletion",
            json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "pendingWindowInDays": 7}),
            "ScheduleKeyDeletion on KMS key",
        ),
        (
            "kms.amazonaws.com",
            "PutKeyPolicy",
            json!({"keyId": KEY_ARN, "policyName": "default", "policy": "{\"Statement\":[]}"}),
            "PutKeyPolicy on KMS key",
        ),
        (
            "events.amazonaws.com",
            "DeleteRule",
            json!({"name": "ingress-sentinel-pipeline-calls", "force": false}),
            "DeleteRule on EventBridge rule",
        ),
        (
            "events.amazonaws.com",
            "DisableRule",
            json!({"name": "ingress-sentinel-outbox-sweep"}),
            "DisableRule on EventBridge rule",
        ),
        (
            "events.amazonaws.com",
            "RemoveTargets",
            json!({"rule": "ingress-sentinel-pipeline-calls", "ids": ["IdentityIngest"], "force": false}),
            "RemoveTargets on EventBridge rule",
        ),
        (
            "events.amazonaws.com",
            "PutRule",
            json!({"name": "ingress-sentinel-pipeline-calls", "eventPattern": "{\"source\":[\"aws.none\"]}"}),
            "PutRule on EventBridge rule",
        ),
        (
            "monitoring.amazonaws.com",
            "DeleteAlarms",
            json!({"alarmNames": ["ingress-sentinel-no-audit-events", "someone-elses-alarm"]}),
            "DeleteAlarms on alarm ingress-sentinel-no-audit-events",
        ),
        (
            "monitoring.amazonaws.com",
            "DisableAlarmActions",
            json!({"alarmNames": ["ingress-sentinel-audit-errors"]}),
            "DisableAlarmActions on alarm",
        ),
        (
            "iam.amazonaws.com",
            "PutRolePolicy",
            json!({"roleName": role, "policyName": "deny", "policyDocument": "{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}),
            "PutRolePolicy on role",
        ),
        (
            "iam.amazonaws.com",
            "AttachRolePolicy",
            json!({"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AWSDenyAll"}),
            "AttachRolePolicy on role",
        ),
        (
            "iam.amazonaws.com",
            "UpdateAssumeRolePolicy",
            json!({"roleName": role, "policyDocument": "{}"}),
            "UpdateAssumeRolePolicy on role",
        ),
        (
            "s3.amazonaws.com",
            "PutBucketNotification",
            json!({"bucketName": "ingress-sentinel-auditexportbucket-1x2y3z", "Host": "ingress-sentinel-auditexportbucket-1x2y3z.s3.eu-west-1.amazonaws.com",
                   "notification": "", "NotificationConfiguration": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}}),
            "PutBucketNotification on bucket",
        ),
        (
            "s3.amazonaws.com",
            "PutBucketLifecycle",
            json!({"bucketName": "ingress-sentinel-evidencebucket-4a5b6c", "lifecycle": ""}),
            "on bucket",
        ),
        (
            "logs.amazonaws.com",
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "/aws/eks/prod/cluster", "filterName": "ingress-sentinel"}),
            "DeleteSubscriptionFilter on log group /aws/eks/prod/cluster",
        ),
        (
            "logs.amazonaws.com",
            "PutRetentionPolicy",
            json!({"logGroupName": "/aws/eks/prod/cluster", "retentionInDays": 1}),
            "PutRetentionPolicy on log group",
        ),
        (
            "logs.amazonaws.com",
            "DeleteLogGroup",
            json!({"logGroupName": "/aws/eks/prod/cluster"}),
            "DeleteLogGroup on log group",
        ),
        (
            "cloudtrail.amazonaws.com",
            "StopLogging",
            json!({"name": format!("arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/management-events")}),
            "StopLogging on trail",
        ),
        (
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            json!({"trailName": "management-events", "eventSelectors": [{"readWriteType": "ReadOnly"}]}),
            "PutEventSelectors on trail",
        ),
        (
            "dynamodb.amazonaws.com",
            "UpdateContinuousBackups",
            json!({"tableName": "ingress-sentinel-AlertsTable-1ABC", "pointInTimeRecoverySpecification": {"pointInTimeRecoveryEnabled": false}}),
            "UpdateContinuousBackups on table",
        ),
        (
            "dynamodb.amazonaws.com",
            "DeleteTable",
            json!({"tableName": "ingress-sentinel-StateTable-2DEF"}),
            "DeleteTable on table",
        ),
        (
            "sns.amazonaws.com",
            "SetTopicAttributes",
            json!({"topicArn": topic, "attributeName": "Policy", "attributeValue": "{}"}),
            "SetTopicAttributes on topic",
        ),
        (
            "sns.amazonaws.com",
            "Unsubscribe",
            json!({"subscriptionArn": format!("{topic}:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")}),
            "Unsubscribe on topic",
        ),
        (
            "scheduler.amazonaws.com",
            "DeleteSchedule",
            json!({"name": "ingress-sentinel-outbox-sweep", "groupName": "default"}),
            "DeleteSchedule on EventBridge rule",
        ),
    ]
}

fn alerted(policy: &str, records: &[Value]) -> Vec<(RuleId, Severity, String)> {
    let mut h = Harness::with_policy(policy);
    h.feed_both(&[], records);
    h.sink.alerts().iter().flat_map(|a| a.signals.iter().map(|s| (s.rule, s.severity, s.summary.clone()))).collect()
}

#[test]
fn every_call_that_can_blind_the_pipeline_is_tampering() {
    for (i, (source, name, params, says)) in watched_calls().into_iter().enumerate() {
        let record = ct::call(&format!("t-{i}"), "2024-05-02T03:00:00Z", source, name, insider(), params);
        let signals = alerted(POLICY, &[record]);
        assert_eq!(signals.len(), 1, "{name}: {signals:?}");
        let (rule, severity, summary) = &signals[0];
        assert_eq!((*rule, *severity), (RuleId::PipelineTampering, Severity::Critical), "{name}");
        assert!(summary.contains(says), "{name}: {summary:?} does not say {says:?}");
    }
}

#[test]
fn the_same_calls_on_other_resources_and_failed_calls_are_not_tampering() {
    let others: Vec<Value> = [
        (
            "lambda.amazonaws.com",
            "RemovePermission20150331v2",
            json!({"functionName": "billing-api", "statementId": "x"}),
        ),
        ("kms.amazonaws.com", "DisableKey", json!({"keyId": "arn:aws:kms:eu-west-1:111122223333:key/ffff"})),
        ("events.amazonaws.com", "DeleteRule", json!({"name": "nightly-report"})),
        ("iam.amazonaws.com", "PutRolePolicy", json!({"roleName": "billing-api-role", "policyName": "p"})),
        ("s3.amazonaws.com", "PutBucketNotification", json!({"bucketName": "marketing-assets"})),
        ("logs.amazonaws.com", "DeleteLogGroup", json!({"logGroupName": "/aws/lambda/billing-api"})),
        ("monitoring.amazonaws.com", "DeleteAlarms", json!({"alarmNames": ["billing-latency"]})),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (source, name, params))| {
        ct::call(&format!("o-{i}"), "2024-05-02T03:00:00Z", source, name, insider(), params)
    })
    .collect();
    assert!(alerted(POLICY, &others).is_empty());
    let mut failed = ct::call(
        "f-1",
        "2024-05-02T03:00:00Z",
        "kms.amazonaws.com",
        "DisableKey",
        insider(),
        json!({"keyId": KEY_ARN}),
    );
    failed["errorCode"] = json!("AccessDenied");
    assert!(alerted(POLICY, &[failed]).is_empty());
}

/// A policy that suppresses `pipeline.tampering`, lowers it and raises the
/// alert threshold cannot hide the function update that installs it.
#[test]
fn a_policy_that_suppresses_tampering_cannot_hide_tampering() {
    let hiding = format!(
        r#"alert_threshold = "critical"
{POLICY}
[severity]
"pipeline.tampering" = "low"
[[suppressions]]
rule = "pipeline.tampering"
reason = "noisy"
expires = "2099-01-01T00:00:00Z"
"#
    );
    let update = ct::call(
        "p-1",
        "2024-05-02T03:00:00Z",
        "lambda.amazonaws.com",
        "UpdateFunctionConfiguration20150331v2",
        insider(),
        json!({"functionName": "ingress-sentinel-AuditIngestFunction-9Qx1Lb2Zk3Hd", "environment": {}}),
    );
    let signals = alerted(&hiding, &[update]);
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!((signals[0].0, signals[0].1), (RuleId::PipelineTampering, Severity::Critical));
}

/// The policy in force is recorded; a run under a different one raises
/// `pipeline.tampering` naming the sections that changed, whatever the new
/// policy says about that rule. The first policy, and the same policy
/// again, raise nothing.
#[test]
fn a_change_of_the_policy_in_force_is_itself_alerted() {
    let store = MemoryStore::new();
    let now = "2024-05-02T03:00:00Z".parse().unwrap();
    let check = |policy: &str, sink: &mut Collect| {
        let policy = sentinel_core::policy::Policy::from_toml(policy).unwrap();
        Engine::new(&policy, &store).at(now).check_policy(sink).unwrap()
    };
    let mut sink = Collect::default();
    assert!(check(POLICY, &mut sink).is_empty());
    assert!(check(POLICY, &mut sink).is_empty());
    assert!(sink.alerts().is_empty());
    let hiding = format!(
        "{POLICY}\n[[suppressions]]\nrule = \"pipeline.tampering\"\nreason = \"noisy\"\nexpires = \"2099-01-01T00:00:00Z\"\n"
    );
    assert_eq!(check(&hiding, &mut sink), ["suppressions"]);
    let alerts = sink.alerts();
    assert_eq!(alerts.len(), 1);
    let signal = &alerts[0].signals[0];
    assert_eq!((signal.rule, signal.severity), (RuleId::PipelineTampering, Severity::Critical));
    assert!(signal.summary.contains("the policy in force changed: suppressions"), "{}", signal.summary);
    assert_eq!(signal.evidence["suppressed_rules_now"], json!(["pipeline.tampering"]));
    // Recorded: the new policy again is no news.
    assert!(check(&hiding, &mut sink).is_empty());
    assert_eq!(sink.alerts().len(), 1);
}
