//! The AWS round trips one relevant write costs, counted on the wire:
//! `audit-ingest` under the Lambda runtime emulator, its calls through a
//! counting proxy in front of moto. Calls in flight at the same time count
//! as one round trip.

use sentinel_core::actor::{Credential, IdentityRecord};
use sentinel_core::keys;
use sentinel_core::store::{Expect, Identities};
use sentinel_tests::aws::*;
use sentinel_tests::engine::{ci, iam_user, storefront, write};
use sentinel_tests::faults::FaultProxy;
use serde_json::{Value, json};
use std::time::Duration;

fn subscription(events: &[Value]) -> Value {
    serde_json::from_str(&sentinel_tests::lambda_logs_event(&sentinel_tests::envelope(events))).unwrap()
}

#[test]
fn a_relevant_write_costs_a_bounded_number_of_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let proxy = FaultProxy::start(aws.moto.port);
    let Stack { topic, queue } = aws.stack();
    let env = proxied_env(&aws.moto, &proxy.endpoint(), &topic);
    plan_ci_for_prod(&aws.store());
    let watch = watch(dir.path(), &env);
    // The Ingress exists (created under its plan), alice has been seen
    // before, and CloudTrail has traced her session to her.
    let alice = iam_user("Admin", "alice@example.com", "ASIAALICE");
    let traced = IdentityRecord {
        originating_principal: Some("alice@example.com".into()),
        issued_by: "AssumeRoleWithSAML".into(),
        ..Default::default()
    };
    let key = keys::identity(&Credential::AccessKey("ASIAALICE".into()));
    aws.store().put_identity(&key, &traced, Expect::Absent, None, "2024-05-01T09:00:00Z".parse().unwrap()).unwrap();
    let mut widened = storefront();
    let first = subscription(&[
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write("r", "update", "ingresses", "shop", "web", "2024-05-01T11:00:00Z", alice.clone(), Some(&storefront())),
    ]);
    invoke(&watch, "audit-ingest", &first, dir.path());
    aws.rt.block_on(queue.drain());
    // Every call takes a network's time, as on AWS.
    proxy.slow_every_call(Duration::from_millis(40));
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
    let trips = proxy.round_trips();
    println!("{} round trips: {trips:?}", trips.len());
    assert!(trips.len() <= ROUND_TRIPS, "{} round trips for one relevant write: {trips:?}", trips.len());
    // Concurrent where the order of effects allows: the batch with the
    // plans query, the publish with the evidence.
    assert!(
        trips.iter().any(|t| t.contains(&"sns:Publish".to_owned()) && t.contains(&"s3:PutObject".to_owned())),
        "{trips:?}"
    );
    // The incident, revision and history before the publish; the mark and the baseline after it.
    let publish = trips.iter().position(|t| t.contains(&"sns:Publish".to_owned())).unwrap();
    assert!(trips[publish - 1].contains(&"dynamodb:TransactWriteItems".to_owned()), "{trips:?}");
    assert!(trips[publish + 1..].iter().flatten().any(|c| c == "dynamodb:TransactWriteItems"), "{trips:?}");
}

/// The most sequential round trips one relevant write costs in the common
/// case: its identity (with the invocation's look at alerts waiting for
/// CloudTrail), the state it determines (with its change plans), the
/// incident with the alert revision and its history, the publish (with the
/// evidence), the mark with the baseline.
const ROUND_TRIPS: usize = 5;
