//! The AWS calls one relevant write costs, counted on the wire: `audit-ingest`
//! under the Lambda runtime emulator, its calls through a counting proxy in
//! front of moto. Every call of the engine is sequential, so the count is
//! the number of round trips on the write's critical path.

use sentinel_core::store::Plans;
use sentinel_tests::aws::*;
use sentinel_tests::engine::{ci, ci_plan, iam_user, storefront, write};
use sentinel_tests::faults::FaultProxy;
use serde_json::{Value, json};

fn subscription(events: &[Value]) -> Value {
    serde_json::from_str(&sentinel_tests::lambda_logs_event(&sentinel_tests::envelope(events))).unwrap()
}

#[test]
fn a_relevant_write_costs_a_bounded_number_of_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let proxy = FaultProxy::start(aws.moto.port);
    let Stack { topic, queue } = aws.stack();
    let mut env = moto_env(&aws.moto);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.extend([("AWS_ENDPOINT_URL", proxy.endpoint()), ("CLUSTER_NAME", "prod".to_owned())]);
    env.extend(function_env(&topic));
    let mut plan = ci_plan("shop");
    plan.cluster = "prod".into();
    aws.store().put_plan(&plan, "2024-01-01T00:00:00Z".parse().unwrap()).unwrap();
    let watch = watch(dir.path(), &env);
    // The Ingress exists (created under its plan), and alice has been seen before.
    let alice = iam_user("Admin", "alice@example.com", "ASIAALICE");
    let mut widened = storefront();
    let first = subscription(&[
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write("r", "update", "ingresses", "shop", "web", "2024-05-01T11:00:00Z", alice.clone(), Some(&storefront())),
    ]);
    invoke(&watch, "audit-ingest", &first, dir.path());
    aws.rt.block_on(queue.drain());
    proxy.script(Vec::new());
    // The common case: one write that changes the object and opens an alert.
    widened["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    let change = subscription(&[write(
        "w",
        "update",
        "ingresses",
        "shop",
        "web",
        "2024-05-02T02:00:00Z",
        alice,
        Some(&widened),
    )]);
    let report = invoke(&watch, "audit-ingest", &change, dir.path());
    assert_eq!(report["alerts_opened"], 1, "{report:#}");
    let calls = proxy.all_calls();
    let total: usize = calls.values().sum();
    assert!(total <= ROUND_TRIPS, "{total} round trips for one relevant write: {calls:?}");
}

/// The most round trips one relevant write costs today: its identity, the
/// state it determines read in one batch, the incident's alert, its
/// conditional writes (none reads first), the evidence and the publish.
/// docs/performance.md says where the rest would go.
const ROUND_TRIPS: usize = 13;
