//! The fault matrix: `audit-ingest` under the Lambda runtime emulator, its
//! AWS calls through a fault-injecting proxy in front of moto. Each scenario
//! breaks one call in the middle of a batch (past the SDK's own retries),
//! redelivers as AWS would (asynchronous retries; for Kinesis, the batch
//! from the first reported failure), and then counts: every signal of the
//! fault-free run is in exactly one alert of the alerts table, every alert's
//! latest revision reached the queue subscribed to the topic, and a
//! duplicate is only ever the same (alert_id, revision) again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentinel_core::alert::AlertRecord;
use sentinel_tests::aws::*;
use sentinel_tests::engine::{ci, iam_user, mallory, storefront, write};
use sentinel_tests::faults::{Fault, FaultProxy, Rule};
use serde_json::{Value, json};

/// What a run left behind.
#[derive(Debug, Default)]
struct Outcome {
    /// Every signal in the alerts table, as (rule, audit id) → alert id.
    signals: BTreeMap<(String, String), Vec<String>>,
    /// Every alert's latest revision in the table.
    revisions: BTreeMap<String, u32>,
    /// Every message on the queue, as (alert id, revision).
    messages: Vec<(String, u32)>,
}

impl Outcome {
    fn duplicates(&self) -> usize {
        let distinct: BTreeSet<&(String, u32)> = self.messages.iter().collect();
        self.messages.len() - distinct.len()
    }

    fn alerts(&self) -> usize {
        self.revisions.len()
    }
}

fn observe(aws: &Emulator, stack: &Stack) -> Outcome {
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk);
    aws.rt.block_on(async {
        let mut out = Outcome::default();
        for n in stack.queue.drain().await {
            let attr = |k: &str| n["MessageAttributes"][k]["Value"].as_str().unwrap_or_default().to_owned();
            out.messages.push((attr("alert_id"), attr("revision").parse().unwrap_or(0)));
        }
        let items = dynamo.scan().table_name("alerts").send().await.unwrap().items.unwrap_or_default();
        for item in items {
            let record: AlertRecord = serde_dynamo::from_attribute_value(item["doc"].clone()).unwrap();
            let alert = record.alert;
            out.revisions.insert(alert.alert_id.clone(), alert.revision);
            for s in &alert.signals {
                out.signals.entry((s.rule.to_string(), s.audit_id.clone())).or_default().push(alert.alert_id.clone());
            }
        }
        out
    })
}

/// How a trigger is delivered again after a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Lambda's asynchronous invocation: the same event, up to two more times.
    Async,
    /// Kinesis: the batch again from the first reported failure (or whole, on a function error).
    Kinesis,
}

/// Delivers `payload` as AWS would; returns the errors of failed attempts.
/// A function that died is started afresh (`start`), as Lambda starts a new
/// execution environment for the retry.
fn deliver(watch: &mut Service, start: &dyn Fn() -> Service, payload: &Value, retry: Retry, dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let mut payload = payload.clone();
    for _ in 0..4 {
        match try_invoke(watch, "audit-ingest", &payload, dir, Duration::from_secs(20)) {
            Ok(report) => {
                let failed: Vec<String> = report["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect();
                if retry == Retry::Async || failed.is_empty() {
                    return errors;
                }
                errors.push(format!("batchItemFailures {failed:?}"));
                let from = failed.iter().min().cloned().unwrap_or_default();
                let records: Vec<Value> = payload["Records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["kinesis"]["sequenceNumber"].as_str().is_some_and(|s| *s >= *from))
                    .cloned()
                    .collect();
                payload = json!({"Records": records});
            }
            Err(e) if e.starts_with("Runtime.ExitError") => {
                errors.push(e);
                // The emulator keeps waiting on a dead function: replace it.
                *watch = start();
            }
            Err(e) => errors.push(e.lines().find(|l| l.contains("Sentinel.")).unwrap_or(&e).trim().to_owned()),
        }
    }
    errors.push("not delivered after every retry".into());
    errors
}

fn named(name: &str, allow: &str) -> Value {
    let mut o = storefront();
    o["metadata"]["name"] = json!(name);
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!(allow);
    o
}

/// The batch every scenario delivers: CI creates two Ingresses under its
/// plan; at night alice widens one, bob adds a snippet to the other and
/// widens the first again, and a stranger's patch is refused.
fn batch() -> Vec<Value> {
    let alice = iam_user("Admin", "alice@example.com", "ASIAALICE");
    let bob = iam_user("Admin", "bob@example.com", "ASIABOB");
    let mut snippet = named("api", "10.0.0.0/8");
    snippet["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!("return 200;");
    let mut denied = write("d1", "patch", "ingresses", "shop", "web", "2024-05-02T02:03:00Z", mallory(), None);
    denied["responseStatus"] = json!({"code": 403, "status": "Failure", "reason": "Forbidden"});
    vec![
        write(
            "c1",
            "create",
            "ingresses",
            "shop",
            "web",
            "2024-05-01T10:00:00Z",
            ci(),
            Some(&named("web", "10.0.0.0/8")),
        ),
        write(
            "c2",
            "create",
            "ingresses",
            "shop",
            "api",
            "2024-05-01T10:01:00Z",
            ci(),
            Some(&named("api", "10.0.0.0/8")),
        ),
        write(
            "w1",
            "update",
            "ingresses",
            "shop",
            "web",
            "2024-05-02T02:00:00Z",
            alice,
            Some(&named("web", "0.0.0.0/0")),
        ),
        write("s1", "update", "ingresses", "shop", "api", "2024-05-02T02:01:00Z", bob.clone(), Some(&snippet)),
        write("w2", "update", "ingresses", "shop", "web", "2024-05-02T02:02:00Z", bob, Some(&named("web", "::/0"))),
        denied,
    ]
}

fn cloudwatch_event(events: &[Value]) -> Value {
    serde_json::from_str(&sentinel_tests::lambda_logs_event(&sentinel_tests::envelope(events))).unwrap()
}

/// One envelope per record, so records of one shard touch the same Ingress.
fn kinesis_event(events: &[Value]) -> Value {
    let envelopes: Vec<String> = events.iter().map(|e| sentinel_tests::envelope(std::slice::from_ref(e))).collect();
    serde_json::from_str(&sentinel_tests::kinesis_event(&envelopes)).unwrap()
}

const EXPORT_KEY: &str = "exports/task-1/kube-apiserver-audit-abc/000000.gz";

fn s3_event() -> Value {
    s3_notification("audit-exports", EXPORT_KEY, None, None)
}

/// Which trigger a scenario delivers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Trigger {
    Subscription,
    Kinesis,
    S3,
}

impl Trigger {
    fn payload(self) -> (Value, Retry) {
        match self {
            Self::Subscription => (cloudwatch_event(&batch()), Retry::Async),
            Self::Kinesis => (kinesis_event(&batch()), Retry::Kinesis),
            Self::S3 => (s3_event(), Retry::Async),
        }
    }
}

fn prepare(aws: &Emulator, trigger: Trigger, topic: &str) -> Stack {
    aws.reset();
    let stack = aws.stack();
    assert_eq!(stack.topic, topic, "the topic keeps its ARN across resets");
    plan_ci_for_prod(&aws.store());
    if trigger == Trigger::S3 {
        let body = sentinel_tests::gzip(sentinel_tests::export_lines(&batch()).as_bytes());
        aws.rt
            .block_on(aws.s3().put_object().bucket("audit-exports").key(EXPORT_KEY).body(body.into()).send())
            .unwrap();
    }
    stack
}

struct Row {
    call: String,
    fault: String,
    trigger: Trigger,
    first_attempt: String,
    expected: usize,
    received: usize,
    duplicates: usize,
}

#[test]
fn every_fault_on_every_call_loses_no_alert_and_duplicates_only_whole_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let proxy = FaultProxy::start(aws.moto.port);
    let topic = aws.stack().topic;
    let mut env = proxied_env(&aws.moto, &proxy.endpoint(), &topic);
    env.extend([
        ("AWS_MAX_ATTEMPTS", "2".to_owned()),
        (
            "POLICY_TOML",
            "cluster = \"prod\"\n[[actors]]\nname = \"ci\"\niam_role_arn = \"arn:aws:iam::111122223333:role/Deploy\"\n"
                .to_owned(),
        ),
    ]);
    let start = || watch(dir.path(), &env);
    let mut watch = start();

    // The fault-free runs say what every faulty run must end with.
    let mut expected = BTreeMap::new();
    for trigger in [Trigger::Subscription, Trigger::Kinesis, Trigger::S3] {
        let stack = prepare(&aws, trigger, &topic);
        proxy.script(Vec::new());
        let (payload, retry) = trigger.payload();
        let errors = deliver(&mut watch, &start, &payload, retry, dir.path());
        assert!(errors.is_empty(), "{trigger:?} without faults: {errors:?}\n{}", watch.log());
        let outcome = observe(&aws, &stack);
        assert!(outcome.alerts() >= 2 && outcome.duplicates() == 0, "{trigger:?}: {outcome:?}");
        expected.insert(trigger, outcome);
    }

    let kill: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {
        // The function dies after SNS took the message, before it is marked published.
        let _ = std::process::Command::new("pkill").args(["-KILL", "-f", "target/debug/audit-ingest"]).status();
    });
    let retried = [(Fault::Unavailable, 2), (Fault::Throttled, 2), (Fault::Reset, 2)];
    let final_ = [(Fault::AccessDenied, 1), (Fault::Missing, 1), (Fault::Latency(Duration::from_millis(1500)), 1)];
    let mut scenarios: Vec<(Trigger, &str, usize, Fault, usize)> = Vec::new();
    for (call, skip) in [
        ("dynamodb:GetItem", 2),
        ("dynamodb:BatchGetItem", 3),
        ("dynamodb:PutItem", 0),
        ("dynamodb:TransactWriteItems", 3),
        ("dynamodb:Query", 4),
        ("sns:Publish", 1),
        ("s3:PutObject", 1),
    ] {
        for (fault, times) in retried.iter().chain(final_.iter()) {
            scenarios.push((Trigger::Subscription, call, skip, fault.clone(), *times));
        }
    }
    for (fault, times) in retried.iter().chain(final_.iter()).chain([(Fault::Truncate, 1)].iter()) {
        scenarios.push((Trigger::S3, "s3:GetObject", 0, fault.clone(), *times));
    }
    scenarios.push((Trigger::Subscription, "sns:Publish", 1, Fault::After(kill), 1));
    scenarios.push((Trigger::Kinesis, "dynamodb:TransactWriteItems", 0, Fault::Throttled, 2));
    scenarios.push((Trigger::Kinesis, "sns:Publish", 0, Fault::Unavailable, 2));

    let mut rows = Vec::new();
    let started = Instant::now();
    for (trigger, call, skip, fault, times) in scenarios {
        let stack = prepare(&aws, trigger, &topic);
        let fault_name = format!("{fault:?}");
        proxy.script(vec![Rule { call: call.into(), skip, times, fault }]);
        let (payload, retry) = trigger.payload();
        let errors = deliver(&mut watch, &start, &payload, retry, dir.path());
        let injected = proxy.injected();
        let outcome = observe(&aws, &stack);
        let want = &expected[&trigger];
        let context = format!("{trigger:?} {call} {fault_name}: injected {injected:?}, errors {errors:?}");
        assert!(!injected.is_empty(), "{context}: the fault never fired ({} calls)", proxy.calls(call));
        assert!(!errors.iter().any(|e| e.contains("not delivered")), "{context}");
        // Every signal of the fault-free run, each in exactly one alert.
        let signals: BTreeSet<&(String, String)> = outcome.signals.keys().collect();
        let wanted: BTreeSet<&(String, String)> = want.signals.keys().collect();
        assert_eq!(signals, wanted, "{context}");
        for (signal, alerts) in &outcome.signals {
            assert_eq!(alerts.len(), 1, "{context}: {signal:?} in {alerts:?}");
        }
        // Every alert's latest revision reached the subscriber; repeats are whole revisions.
        for (alert, revision) in &outcome.revisions {
            assert!(
                outcome.messages.contains(&(alert.clone(), *revision)),
                "{context}: {alert} rev {revision} missing"
            );
        }
        let published: BTreeSet<&String> = outcome.messages.iter().map(|(a, _)| a).collect();
        assert_eq!(published.len(), outcome.alerts(), "{context}: a message for an alert the table lacks");
        if trigger == Trigger::Kinesis && call == "dynamodb:TransactWriteItems" {
            // The first record failed: it and every later record of the shard,
            // among them the one touching the same Ingress, are retried.
            let first = errors.first().cloned().unwrap_or_default();
            assert!(first.contains("\"49590\"") && first.contains("\"49592\""), "{context}");
        }
        let absorbed = matches!(fault_name.as_str(), "latency" | "truncated body");
        assert_eq!(
            errors.is_empty(),
            absorbed,
            "{context}: a fault past the SDK's retries fails the attempt; a slow or cut body does not"
        );
        rows.push(Row {
            call: call.into(),
            fault: fault_name,
            trigger,
            first_attempt: errors.first().cloned().unwrap_or_else(|| "succeeded".into()),
            expected: want.alerts(),
            received: outcome.alerts(),
            duplicates: outcome.duplicates(),
        });
    }
    let mut table = String::from(
        "| trigger | call | fault | first attempt | alerts expected | alerts received | duplicate messages |\n|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let first: String = r.first_attempt.chars().take(90).collect();
        table.push_str(&format!(
            "| {:?} | {} | {} | {} | {} | {} | {} |\n",
            r.trigger,
            r.call,
            r.fault,
            first.replace('|', "/"),
            r.expected,
            r.received,
            r.duplicates
        ));
    }
    let target = sentinel_tests::aws::workspace().join("target/fault-matrix.md");
    std::fs::write(&target, &table).unwrap();
    println!("{table}\n{} scenarios in {:?}", rows.len(), started.elapsed());
}
