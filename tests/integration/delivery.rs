//! Delivery as it really is: out of order, repeated, undated, forged and
//! oversized. Every distinct write is judged, none twice; nothing the
//! product writes outgrows DynamoDB's or SNS's limits; an engine failure on
//! one object leaves the others processed and loses nothing on redelivery.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sentinel_core::alert::{ALERT_BUDGET, Alert, MAX_SIGNALS};
use sentinel_core::baseline::Baseline;
use sentinel_core::bound;
use sentinel_core::engine::Engine;
use sentinel_core::fault::{Fault, FaultClass};
use sentinel_core::policy::Policy;
use sentinel_core::rules::RuleId;
use sentinel_core::store::{Baselines, Document, Expect, MemoryStore, Put, Record, Space, Store, StoreError};
use sentinel_tests::engine::*;
use sentinel_tests::{envelope, envelope_from, samples_dir};
use serde_json::{Value, json};

const DAY: &str = "2024-05-01T10:00:00Z";
const NIGHT: &str = "2024-05-02T02:00:00Z";

fn with_version(mut object: Value, version: u64) -> Value {
    object["metadata"]["resourceVersion"] = json!(version.to_string());
    object
}

fn widened() -> Value {
    let mut o = storefront();
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    o
}

fn signals_of(h: &Harness, audit_id: &str) -> Vec<RuleId> {
    h.sink.alerts().iter().flat_map(|a| a.signals.iter()).filter(|s| s.audit_id == audit_id).map(|s| s.rule).collect()
}

#[test]
fn a_change_and_its_revert_delivered_in_reverse_order_are_both_judged() {
    let mut h = Harness::new();
    let create = write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&with_version(storefront(), 100)));
    let widen = write("w", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&with_version(widened(), 101)));
    let revert = write(
        "r",
        "update",
        "ingresses",
        "shop",
        "web",
        "2024-05-02T02:01:00Z",
        mallory(),
        Some(&with_version(storefront(), 102)),
    );
    h.feed(&[create]);
    // The revert arrives first (another API server's log stream): against the
    // create it changes nothing.
    h.feed(&[revert]);
    assert!(h.sink.published.is_empty(), "{:#?}", h.sink.published);
    // The malicious change arrives last, and is judged where it belongs.
    h.feed(&[widen]);
    assert!(signals_of(&h, "w").contains(&RuleId::AllowlistWidened), "{:?}", h.sink.rules());
    assert_eq!(h.stats().late, 1);
    let signal = h.sink.alerts()[0].signals.iter().find(|s| s.rule == RuleId::AllowlistWidened).unwrap().clone();
    assert_eq!(signal.evidence["arrived_late"]["later_writes_applied_first"], 1);
    // The baseline did not move backwards: the object still stands as the revert left it.
    let baseline = h.store.baseline("test|ingresses|shop|web", NIGHT.parse().unwrap()).unwrap().unwrap().value;
    let order: Vec<&str> = baseline.writes.iter().map(|w| w.audit_id.as_str()).collect();
    assert_eq!(order, ["c", "w", "r"]);
    let before = h.sink.published.len();
    h.feed(&[write(
        "x",
        "update",
        "ingresses",
        "shop",
        "web",
        "2024-05-02T02:02:00Z",
        mallory(),
        Some(&with_version(storefront(), 103)),
    )]);
    assert_eq!(h.sink.published.len(), before, "the same state again is no change");
}

#[test]
fn without_resource_versions_time_places_a_late_write() {
    let mut h = Harness::new();
    h.feed(&[write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront()))]);
    h.feed(&[write("r", "update", "ingresses", "shop", "web", "2024-05-02T02:01:00Z", mallory(), Some(&storefront()))]);
    h.feed(&[write("w", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&widened()))]);
    assert!(signals_of(&h, "w").contains(&RuleId::AllowlistWidened), "{:?}", h.sink.rules());
}

#[test]
fn two_distinct_writes_at_the_same_time_are_both_judged() {
    let mut h = Harness::new();
    let mut snippet = widened();
    snippet["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!("return 200;");
    h.feed(&[write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront()))]);
    h.feed(&[
        write("a", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&widened())),
        write("b", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&snippet)),
    ]);
    assert!(signals_of(&h, "a").contains(&RuleId::AllowlistWidened));
    assert!(signals_of(&h, "b").contains(&RuleId::SnippetInjected));
    assert_eq!(h.stats().duplicates, 0);
}

#[test]
fn only_the_same_audit_id_is_a_duplicate() {
    let mut h = Harness::new();
    let create = write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront()));
    let widen = write("w", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&widened()));
    h.feed(&[create.clone(), widen.clone()]);
    let published = h.sink.published.len();
    // A retry minutes later, and the create again, out of order.
    h.feed(&[widen, create]);
    assert_eq!(h.sink.published.len(), published);
    assert_eq!(h.stats().duplicates, 2);
}

/// An event logged without a time or an audit id (as in Panther's test cases).
fn undated(id_hint: &str, object: &Value, user: Value) -> Value {
    let mut e = write(id_hint, "update", "ingresses", "shop", "web", DAY, user, Some(object));
    let map = e.as_object_mut().unwrap();
    for field in ["auditID", "requestReceivedTimestamp", "stageTimestamp"] {
        map.remove(field);
    }
    e
}

#[test]
fn writes_without_time_or_audit_id_are_each_judged_and_dated_by_their_delivery() {
    let mut h = Harness::new();
    let create = write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront()));
    h.feed_delivery(envelope(&[create]).as_bytes());
    let mut snippet = storefront();
    snippet["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!("return 200;");
    // Two distinct undated writes in one delivery, stamped by CloudWatch Logs at night.
    let mut stream: Value =
        serde_json::from_str(&envelope(&[undated("1", &widened(), mallory()), undated("2", &snippet, mallory())]))
            .unwrap();
    let night: DateTime<Utc> = NIGHT.parse().unwrap();
    for (i, e) in stream["logEvents"].as_array_mut().unwrap().iter_mut().enumerate() {
        e["timestamp"] = json!(night.timestamp_millis() + i as i64);
    }
    let delivered = stream.to_string();
    h.feed_delivery(delivered.as_bytes());
    let rules = h.sink.rules();
    assert!(rules.contains(&RuleId::AllowlistWidened) && rules.contains(&RuleId::SnippetInjected), "{rules:?}");
    let alert = h.sink.alerts().into_iter().find(|a| a.actor.session_name.as_deref() == Some("mallory@example.com"));
    let alert = alert.unwrap().clone();
    assert_eq!(alert.audit_ids.len(), 2, "two distinct ids derived from content");
    for s in &alert.signals {
        assert!(s.audit_id.starts_with("sha256:"), "{}", s.audit_id);
        assert!(s.time >= night, "{}", s.time);
        assert_eq!(s.evidence["event_time"]["source"], "delivery", "{:#}", s.evidence);
    }
    // The same delivery again is the same two events: nothing new.
    let published = h.sink.published.len();
    h.feed_delivery(delivered.as_bytes());
    assert_eq!(h.sink.published.len(), published);
}

/// The `Log:` values of a Panther rule's tests: JSON flow mappings in YAML.
fn panther_logs(yaml: &str) -> Vec<Value> {
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
    out.extend(current.map(|json| serde_json::from_str(&json).unwrap()));
    out
}

#[test]
fn panther_ingress_cases_without_time_or_id_are_each_judged_never_in_1970() {
    let path = samples_dir().join("panther-analysis/rules/kubernetes_rules/k8s_ingress_without_tls.yml");
    let logs = panther_logs(&std::fs::read_to_string(path).unwrap());
    let mut h = Harness::with_policy("cluster = \"test\"\nrequire_plans = true\n");
    h.feed(&logs);
    // Four creates and one update kept, one create denied: none lost as "already applied".
    assert_eq!(h.stats().events, 5);
    assert_eq!(h.stats().duplicates, 0);
    let ids: BTreeSet<String> = h.sink.alerts().iter().flat_map(|a| a.audit_ids.clone()).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    for s in h.sink.alerts().iter().flat_map(|a| &a.signals) {
        assert!(s.time.timestamp() > 1_700_000_000, "{}", s.time);
        assert_eq!(s.evidence["event_time"]["source"], "processing");
    }
}

#[test]
fn a_forged_future_dated_event_is_quarantined_and_the_real_change_still_alerts() {
    let mut h = Harness::new();
    let create = write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront()));
    h.feed_delivery(envelope(&[create]).as_bytes());
    // Someone writes an event dated 2031 into the log group: it would have
    // made every real write look old and be skipped.
    let forged = write("f", "update", "ingresses", "shop", "web", "2031-01-01T00:00:00Z", ci(), Some(&storefront()));
    let real = write("w", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&widened()));
    let mut stream: Value = serde_json::from_str(&envelope(&[forged.clone(), real])).unwrap();
    // Delivered at the time of the real change.
    stream["logEvents"][0]["timestamp"] = stream["logEvents"][1]["timestamp"].clone();
    h.feed_delivery(stream.to_string().as_bytes());
    assert!(signals_of(&h, "w").contains(&RuleId::AllowlistWidened), "{:?}", h.sink.rules());
    assert!(signals_of(&h, "f").contains(&RuleId::ForgedEvent), "{:?}", h.sink.rules());
    assert_eq!(h.sink.quarantined.len(), 1);
    let (location, reason, raw) = &h.sink.quarantined[0];
    assert!(location.contains("logEvents[0]") && reason.contains("after its delivery"), "{location}: {reason}");
    assert_eq!(serde_json::from_slice::<Value>(raw.as_deref().unwrap()).unwrap(), forged);
    // The forged write never entered the baseline.
    let baseline = h.store.baseline("prod|ingresses|shop|web", NIGHT.parse().unwrap()).unwrap().unwrap().value;
    assert!(baseline.writes.iter().all(|w| w.audit_id != "f"));
    // It is flagged against the source that delivered it, not the user it names.
    let forged_alert = h.sink.alerts().into_iter().find(|a| a.audit_ids.contains(&"f".to_owned())).unwrap().clone();
    assert!(forged_alert.actor.kubernetes_username.contains("/aws/eks/prod/cluster"));
    assert_eq!(forged_alert.signals[0].evidence["claimed_user"], ci()["username"]);
}

#[test]
fn events_from_a_log_group_or_account_the_stack_does_not_watch_are_not_believed() {
    let policy =
        format!("{TEST_POLICY}\n[pipeline]\naccounts = [\"111122223333\"]\nlog_groups = [\"/aws/eks/prod/cluster\"]\n");
    for (owner, group, why) in [
        ("999988887777", "/aws/eks/prod/cluster", "account 999988887777"),
        ("111122223333", "/aws/eks/staging/cluster", "log group /aws/eks/staging/cluster"),
    ] {
        let mut h = Harness::with_policy(&policy);
        let event = write("w", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&widened()));
        h.feed_delivery(envelope_from(owner, group, &[event]).as_bytes());
        assert_eq!(h.sink.rules(), [RuleId::ForgedEvent], "{why}");
        assert!(h.sink.quarantined[0].1.contains(why), "{:?}", h.sink.quarantined);
        assert_eq!(h.stats().quarantined, 1);
    }
}

#[test]
fn a_250_kb_snippet_is_cut_in_the_alert_and_the_baseline_and_kept_whole_as_evidence() {
    let mut h = Harness::new();
    h.feed(&[write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront()))]);
    let padding = format!("return 200; # {}", "A".repeat(250 * 1024));
    let mut padded = storefront();
    padded["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!(padding);
    let event = write("p", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&padded));
    h.feed(std::slice::from_ref(&event));
    let alert = &h.sink.alerts()[0];
    assert!(alert.signals.iter().any(|s| s.rule == RuleId::SnippetInjected));
    let size = bound::size(alert);
    assert!(size <= ALERT_BUDGET, "{size}");
    // The evidence says how long the value was and what it hashes to.
    let text = serde_json::to_string(alert).unwrap();
    assert!(text.contains(&bound::sha256(padding.as_bytes())), "the digest of the whole value");
    assert!(text.contains(&padding.len().to_string()));
    // The stored baseline fits a DynamoDB item, and the raw event is kept whole.
    let baseline = h.store.get(Space::Baseline, "test|ingresses|shop|web", NIGHT.parse().unwrap()).unwrap().unwrap();
    assert!(bound::size(&baseline.value) < 300 * 1024, "{}", bound::size(&baseline.value));
    let (_, id, raw) = h.sink.kept.last().unwrap();
    assert_eq!(id, "p");
    assert_eq!(serde_json::from_slice::<Value>(raw).unwrap(), event);
    // A second write with the same padding is no change; another padding is.
    let before = h.sink.published.len();
    h.feed(&[write("q", "update", "ingresses", "shop", "web", "2024-05-02T02:01:00Z", mallory(), Some(&padded))]);
    assert_eq!(h.sink.published.len(), before);
    padded["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] =
        json!(format!("{padding}; more_clear_headers *;"));
    h.feed(&[write("s", "update", "ingresses", "shop", "web", "2024-05-02T02:02:00Z", mallory(), Some(&padded))]);
    assert!(signals_of(&h, "s").contains(&RuleId::SnippetInjected));
}

#[test]
fn an_incident_of_500_signals_continues_in_alerts_that_each_fit() {
    let mut h = Harness::new();
    let names: Vec<String> = (0..125).map(|i| format!("app{i:03}")).collect();
    let creates: Vec<Value> = names
        .iter()
        .map(|n| {
            let mut o = storefront();
            o["metadata"]["name"] = json!(n);
            write(&format!("c-{n}"), "create", "ingresses", "shop", n, DAY, ci(), Some(&o))
        })
        .collect();
    h.feed(&creates);
    // Each delete: ingress.deleted, out of window, unapproved actor, unplanned.
    let start: DateTime<Utc> = NIGHT.parse().unwrap();
    let deletes: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let t = (start + chrono::Duration::seconds(i as i64)).to_rfc3339();
            write(&format!("d-{n}"), "delete", "ingresses", "shop", n, &t, mallory(), None)
        })
        .collect();
    h.feed(&deletes);
    let alerts: Vec<Alert> = h.sink.alerts().into_iter().cloned().collect();
    let total: usize = alerts.iter().map(|a| a.signals.len()).sum();
    assert_eq!(total, 500);
    assert!(alerts.len() >= 2, "{}", alerts.len());
    for pair in alerts.windows(2) {
        assert_eq!(pair[1].continues.as_deref(), Some(pair[0].alert_id.as_str()));
    }
    for a in &alerts {
        assert!(a.signals.len() <= MAX_SIGNALS);
        assert!(bound::size(a) <= ALERT_BUDGET, "{}", bound::size(a));
    }
}

/// A store that fails every write to the keys containing `poison`, as a
/// throttled or denied table would.
struct Poisoned {
    inner: MemoryStore,
    poison: std::cell::Cell<Option<&'static str>>,
}

impl Store for Poisoned {
    fn get(&self, space: Space, key: &str, now: DateTime<Utc>) -> Result<Option<Record>, StoreError> {
        self.inner.get(space, key, now)
    }
    fn put(
        &self,
        space: Space,
        key: &str,
        value: Document,
        expect: Expect,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if self.poison.get().is_some_and(|p| key.contains(p)) {
            let fault = Fault::new(FaultClass::Throttled, format!("put {key}"), "throttled");
            return Err(StoreError::Backend(fault));
        }
        self.inner.put(space, key, value, expect, expires_at, now)
    }
    fn scan(&self, space: Space, prefix: &str, now: DateTime<Utc>) -> Result<Vec<(String, Record)>, StoreError> {
        self.inner.scan(space, prefix, now)
    }
    fn delete(&self, space: Space, key: &str) -> Result<(), StoreError> {
        self.inner.delete(space, key)
    }
    fn put_all(&self, puts: &[Put]) -> Result<Vec<u64>, StoreError> {
        if let Some(p) = puts.iter().find(|p| self.poison.get().is_some_and(|poison| p.key.contains(poison))) {
            let fault = Fault::new(FaultClass::Throttled, format!("put {}", p.key), "throttled");
            return Err(StoreError::Backend(fault));
        }
        self.inner.put_all(puts)
    }
}

fn decoded(events: &[Value]) -> Vec<sentinel_core::decode::EventRecord> {
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    sentinel_tests::decode("batch", lines.as_bytes()).events
}

#[test]
fn a_failure_on_one_object_leaves_the_others_processed_and_a_redelivery_loses_nothing() {
    let policy = Policy::from_toml(TEST_POLICY).unwrap();
    let store = Poisoned { inner: MemoryStore::new(), poison: std::cell::Cell::new(None) };
    let mut api = storefront();
    api["metadata"]["name"] = json!("api");
    let mut api_widened = widened();
    api_widened["metadata"]["name"] = json!("api");
    let batch = decoded(&[
        write("c1", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
        write("c2", "create", "ingresses", "shop", "api", DAY, ci(), Some(&api)),
        write("w1", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&widened())),
        write("w2", "update", "ingresses", "shop", "api", "2024-05-02T02:00:01Z", mallory(), Some(&api_widened)),
        write("w3", "update", "ingresses", "shop", "web", "2024-05-02T02:00:02Z", mallory(), Some(&storefront())),
    ]);
    let mut sink = Collect::default();
    // The baseline of shop/web cannot be written.
    store.poison.set(Some("ingresses|shop|web"));
    let failures = Engine::new(&policy, &store).run(&batch, &[], &mut sink).unwrap_err();
    assert_eq!(failures.failed.len(), 1, "{failures}");
    assert_eq!(failures.class(), FaultClass::Throttled);
    assert!(failures.failed[0].at.contains("c1"));
    // web's later writes wait, in order; api's were all processed.
    assert_eq!(failures.waiting.len(), 2, "{:?}", failures.waiting);
    assert!(sink.alerts().iter().any(|a| a.audit_ids.contains(&"w2".to_owned())));
    // Redelivered whole once the table recovers: web is judged, api adds nothing.
    store.poison.set(None);
    let published = sink.published.len();
    Engine::new(&policy, &store).run(&batch, &[], &mut sink).unwrap();
    assert!(sink.published.len() > published);
    let alerts = sink.alerts();
    assert!(alerts.iter().any(|a| a.audit_ids.contains(&"w1".to_owned())), "web's change is judged on redelivery");
    let mut seen = BTreeSet::new();
    for s in alerts.iter().flat_map(|a| &a.signals) {
        assert!(seen.insert((s.rule, s.audit_id.clone())), "{} of {} twice", s.rule, s.audit_id);
    }
    let baseline: Baseline =
        store.inner.baseline("test|ingresses|shop|web", NIGHT.parse().unwrap()).unwrap().unwrap().value;
    assert_eq!(baseline.writes.len(), 3);
}

#[test]
fn a_run_out_of_time_leaves_the_rest_waiting_and_the_redelivery_finishes_it() {
    let policy = Policy::from_toml(TEST_POLICY).unwrap();
    let store = MemoryStore::new();
    let objects = ["a", "b", "c"];
    let batch = decoded(
        &objects
            .iter()
            .map(|n| {
                let mut o = widened();
                o["metadata"]["name"] = json!(n);
                write(&format!("w-{n}"), "create", "ingresses", "shop", n, NIGHT, mallory(), Some(&o))
            })
            .collect::<Vec<_>>(),
    );
    let mut sink = Collect::default();
    let mut budget = 1;
    let mut keep_going = || {
        budget -= 1;
        budget >= 0
    };
    let failures = Engine::new(&policy, &store).run_while(&batch, &[], &mut sink, &mut keep_going).unwrap_err();
    assert!(failures.out_of_time && failures.failed.is_empty());
    assert_eq!(failures.waiting.len(), 2, "{failures}");
    let mut engine = Engine::new(&policy, &store);
    engine.run(&batch, &[], &mut sink).unwrap();
    assert_eq!(engine.stats().duplicates, 1);
    let ids: BTreeSet<String> = sink.alerts().iter().flat_map(|a| a.audit_ids.clone()).collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn clusters_of_one_name_in_two_accounts_keep_their_own_state_and_alerts() {
    let mut h = Harness::new();
    h.policy.account = Some("111122223333".into());
    h.policy.pipeline.accounts = vec!["111122223333".into(), "222233334444".into()];
    let change = |id: &str| {
        [
            write(&format!("{id}-c"), "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
            write(&format!("{id}-w"), "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&widened())),
        ]
    };
    h.feed_delivery(envelope_from("111122223333", "/aws/eks/prod/cluster", &change("home")).as_bytes());
    h.feed_delivery(envelope_from("222233334444", "/aws/eks/prod/cluster", &change("member")).as_bytes());
    // One alert each, named by where the cluster lives: the stack's own account plain.
    let clusters: BTreeSet<String> = h.sink.alerts().iter().map(|a| a.cluster.clone()).collect();
    assert_eq!(clusters, BTreeSet::from(["prod".to_owned(), "222233334444/prod".to_owned()]));
    // Each cluster's Ingress has its own baseline: the member's create did
    // not look like a change of the home cluster's object.
    let now: DateTime<Utc> = NIGHT.parse().unwrap();
    for key in ["prod|ingresses|shop|web", "222233334444/prod|ingresses|shop|web"] {
        let baseline = h.store.baseline(key, now).unwrap().unwrap_or_else(|| panic!("no baseline {key}"));
        assert_eq!(baseline.value.writes.len(), 2, "{key}");
    }
    assert_eq!(signals_of(&h, "member-w"), signals_of(&h, "home-w"));
}
