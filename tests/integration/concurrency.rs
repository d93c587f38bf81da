//! Two function instances at once, as Lambda runs concurrent deliveries:
//! `audit-ingest` under the runtime emulator with two instances, invoked
//! with two interleaved batches of one history at the same moment, its
//! calls through a proxy that gives each one a network's latency, against
//! moto. Each object's writes are in one batch (a shard keeps an object's
//! order); each actor's writes are in both, so the instances race on the
//! actor's incident and alert. The alerts left behind have the same ids and
//! the same signals as when the batches are processed one after the other
//! (revision numbers may differ); no signal is lost or in two alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sentinel_core::alert::AlertRecord;
use sentinel_tests::aws::*;
use sentinel_tests::engine::{ci, iam_user, mallory, storefront, write};
use sentinel_tests::faults::FaultProxy;
use serde_json::{Value, json};

/// Every alert in the table: its id, with its signals as (rule, audit id).
fn alerts(aws: &Emulator) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let items = aws.rt.block_on(dynamo.scan().table_name("alerts").send()).unwrap().items.unwrap_or_default();
    items
        .into_iter()
        .map(|item| {
            let record: AlertRecord = serde_dynamo::from_attribute_value(item["doc"].clone()).unwrap();
            let signals = record.alert.signals.iter().map(|s| (s.rule.to_string(), s.audit_id.clone())).collect();
            (record.alert.alert_id, signals)
        })
        .collect()
}

/// An Ingress named `name`, widened to the internet or given a snippet.
fn ingress(name: &str, change: &str) -> (Value, Value) {
    let mut created = storefront();
    created["metadata"]["name"] = json!(name);
    let mut changed = created.clone();
    match change {
        "widen" => {
            changed["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] =
                json!("0.0.0.0/0")
        }
        _ => changed["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!("return 200;"),
    }
    (created, changed)
}

/// Two subscription deliveries of one night's history: each Ingress created
/// by CI under its plan, then changed by mallory or alice, every change
/// within one correlation window (an incident that spans two windows takes
/// the id of the window its first processed signal falls in); the objects
/// alternate between batches.
fn batches() -> [Value; 2] {
    let alice = iam_user("Admin", "alice@example.com", "ASIAALICE");
    let mut batches = [Vec::new(), Vec::new()];
    for (i, (name, change)) in [
        ("web", "widen"),
        ("api", "snippet"),
        ("admin", "widen"),
        ("shop", "snippet"),
        ("pay", "widen"),
        ("cart", "snippet"),
    ]
    .into_iter()
    .enumerate()
    {
        let (created, changed) = ingress(name, change);
        let actor = if i % 3 == 2 { alice.clone() } else { mallory() };
        // 02:02 to 02:22: inside one 30-minute correlation window.
        let at = format!("2024-05-02T02:{:02}:00Z", 2 + i * 4);
        batches[i % 2].push(write(
            &format!("{name}-c"),
            "create",
            "ingresses",
            "shop",
            name,
            "2024-05-01T10:00:00Z",
            ci(),
            Some(&created),
        ));
        batches[i % 2].push(write(
            &format!("{name}-u"),
            "update",
            "ingresses",
            "shop",
            name,
            &at,
            actor,
            Some(&changed),
        ));
    }
    batches.map(|events| {
        serde_json::from_str(&sentinel_tests::lambda_logs_event(&sentinel_tests::envelope(&events))).unwrap()
    })
}

fn prepare(aws: &Emulator) {
    aws.reset();
    aws.stack();
    plan_ci_for_prod(&aws.store());
}

#[test]
fn two_instances_at_once_leave_the_alerts_one_after_the_other_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let proxy = FaultProxy::start(aws.moto.port);
    let topic = aws.stack().topic;
    let env = proxied_env(&aws.moto, &proxy.endpoint(), &topic);
    let watch = watch_instances(dir.path(), &env, 2);
    let [a, b] = batches();
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();

    // One after the other.
    prepare(&aws);
    invoke(&watch, "audit-ingest", &a, &dir_a);
    invoke(&watch, "audit-ingest", &b, &dir_b);
    let sequential = alerts(&aws);
    assert_eq!(sequential.len(), 2, "one alert per actor, mallory and alice: {sequential:#?}");

    // At once: every call takes 30 ms, so the two invocations overlap
    // through their reads, their conflicting writes and their retries.
    prepare(&aws);
    proxy.slow_every_call(Duration::from_millis(30));
    let run = |payload: &Value, dir: &std::path::Path| {
        let start = Instant::now();
        let report = try_invoke(&watch, "audit-ingest", payload, dir, INVOKE_TIMEOUT);
        (report, (start, Instant::now()))
    };
    let ((report_a, span_a), (report_b, span_b)) = std::thread::scope(|s| {
        let one = s.spawn(|| run(&a, &dir_a));
        let two = s.spawn(|| run(&b, &dir_b));
        (one.join().unwrap(), two.join().unwrap())
    });
    let (report_a, report_b) = (report_a.unwrap(), report_b.unwrap());
    assert!(span_a.0 < span_b.1 && span_b.0 < span_a.1, "the invocations ran at the same time");
    let log = watch.log();
    let instances: BTreeSet<&str> = log
        .lines()
        .filter_map(|l| l.split("instance_id=").nth(1))
        .filter_map(|id| id.split_whitespace().next())
        .collect();
    assert!(instances.len() >= 2, "two function instances: {instances:?}");
    let concurrent = alerts(&aws);
    assert_eq!(concurrent, sequential, "reports: {report_a:#}\n{report_b:#}");
    let mut seen = BTreeSet::new();
    for signals in concurrent.values() {
        for s in signals {
            assert!(seen.insert(s.clone()), "{s:?} in two alerts");
        }
    }
}
