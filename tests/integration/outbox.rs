//! The outbox: a revision recorded but never published (the invocation died
//! between the two, or ended on the dead-letter queue) is published by the
//! sweep, once; a published one is not published again; and an identity
//! deadline fires on time with no later event to carry it.

use chrono::{DateTime, Duration, Utc};
use sentinel_core::alert::{Alert, IdentityStatus};
use sentinel_core::decode::{Decoded, EventRecord, Options, decode_bytes};
use sentinel_core::engine::Engine;
use sentinel_core::fault::{Fault, FaultClass};
use sentinel_core::policy::Policy;
use sentinel_core::rules::RuleId;
use sentinel_core::store::{AlertStore, MemoryStore, Quarantined, Sink, Store};
use sentinel_tests::aws::*;
use sentinel_tests::engine::{Collect, ci, iam_user, storefront, write};
use serde_json::{Value, json};

const POLICY: &str = "cluster = \"prod\"\n[identity]\nunresolved_grace = \"15m\"\n";

/// A sink whose SNS is down: the revision is recorded, never published.
struct SnsDown;

impl Sink for SnsDown {
    fn publish(&mut self, _: &Alert) -> Result<(), Fault> {
        Err(Fault::new(FaultClass::Unavailable, "SNS Publish", "503 Service Unavailable"))
    }
    fn quarantine(&mut self, _: &Quarantined<'_>) -> Result<(), Fault> {
        Ok(())
    }
    fn keep_event(&mut self, _: &str, _: &str, _: &[u8]) -> Result<(), Fault> {
        Ok(())
    }
}

fn widening(id: &str, name: &str, time: &str, key: &str) -> Value {
    let mut o = storefront();
    o["metadata"]["name"] = json!(name);
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    write(id, "update", "ingresses", "shop", name, time, iam_user("Admin", "EKSGetTokenAuth", key), Some(&o))
}

fn records(events: &[Value]) -> Vec<EventRecord> {
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    let mut out = Vec::new();
    decode_bytes("audit", lines.as_bytes(), &Options::default(), &mut |d| {
        if let Decoded::Event(e) = d {
            out.push(*e);
        }
    });
    out
}

/// Runs the engine at `at` (its clock stands still there).
fn run(store: &dyn Store, at: DateTime<Utc>, events: &[Value], sink: &mut dyn Sink) -> bool {
    let policy = Policy::from_toml(POLICY).unwrap();
    Engine::new(&policy, store).at(at).run(&records(events), &[], sink).is_ok()
}

#[test]
fn the_sweep_fires_an_identity_deadline_with_no_later_event() {
    let store = MemoryStore::new();
    let policy = Policy::from_toml(POLICY).unwrap();
    let t: DateTime<Utc> = "2024-05-02T02:10:00Z".parse().unwrap();
    let mut sink = Collect::default();
    let created = write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront()));
    assert!(run(&store, t, &[created, widening("w", "web", "2024-05-02T02:10:00Z", "ASIAUNKNOWN")], &mut sink));
    assert_eq!(sink.alerts()[0].identity_status, IdentityStatus::Pending);
    // Inside the grace period the sweep leaves it waiting.
    Engine::new(&policy, &store).at(t + Duration::minutes(10)).sweep(t + Duration::minutes(10), &mut sink).unwrap();
    assert!(!sink.rules().contains(&RuleId::IdentityUnresolved));
    // Past it, the sweep fires the deadline itself.
    Engine::new(&policy, &store).at(t + Duration::minutes(16)).sweep(t + Duration::minutes(16), &mut sink).unwrap();
    assert_eq!(sink.alerts()[0].identity_status, IdentityStatus::Unresolved);
    assert!(sink.rules().contains(&RuleId::IdentityUnresolved));
}

#[test]
fn the_sweep_publishes_a_stranded_revision_once_and_a_published_one_never_on_moto() {
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let Stack { topic, queue } = aws.stack();
    let store = aws.store();
    let five_minutes_ago = Utc::now() - Duration::minutes(5);
    // One alert recorded while SNS was down: the invocation failed after the record.
    let stranded = [widening("s", "stranded", "2024-05-02T02:10:00Z", "ASIASTRANDED")];
    assert!(!run(&store, five_minutes_ago, &stranded, &mut SnsDown), "the invocation fails");
    // Another recorded and published.
    let mut published = Collect::default();
    let done = [widening("p", "published", "2024-05-02T02:11:00Z", "ASIAPUBLISHED")];
    assert!(run(&store, five_minutes_ago, &done, &mut published));
    assert_eq!(published.published.len(), 1);
    let now = Utc::now();
    let waiting = store.unpublished_alerts(now - sentinel_core::engine::OUTBOX_GRACE, now).unwrap();
    assert_eq!(waiting.len(), 1, "the outbox index holds the stranded revision only");

    let mut env = moto_env(&aws.moto);
    env.extend([("POLICY_TOML", POLICY.to_owned()), ("CLUSTER_NAME", "prod".to_owned())]);
    env.extend(function_env(&topic));
    let watch = watch(dir.path(), &env);
    let scheduled = json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "111122223333",
        "time": "2024-05-02T02:20:00Z", "region": REGION,
        "resources": ["arn:aws:events:eu-west-1:111122223333:rule/ingress-sentinel-outbox-sweep"], "detail": {}});
    let swept = invoke(&watch, "outbox-sweep", &scheduled, dir.path());
    assert_eq!((swept["found"].as_u64(), swept["published"].as_u64()), (Some(1), Some(1)), "{swept:#}");
    let messages = aws.rt.block_on(queue.drain());
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let attribute =
        |name: &str| messages[0]["MessageAttributes"][name]["Value"].as_str().unwrap_or_default().to_owned();
    assert_eq!(attribute("alert_id"), waiting[0]);
    assert_eq!(attribute("revision"), "1");
    let stored = store.stored_alert(&waiting[0], now).unwrap().unwrap().value;
    assert!(!stored.unpublished(), "marked published");

    // Swept again: nothing left, nothing sent twice.
    let again = invoke(&watch, "outbox-sweep", &scheduled, dir.path());
    assert_eq!((again["found"].as_u64(), again["published"].as_u64()), (Some(0), Some(0)), "{again:#}");
    assert!(aws.rt.block_on(queue.drain()).is_empty());
}
