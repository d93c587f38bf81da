//! The contract every [`Store`] implementation must meet: the in-memory
//! store, the redb file store and the DynamoDB adapter run the same checks.

use chrono::{DateTime, Duration, Utc};
use sentinel_core::store::{Expect, GROUP_LIMIT, Put, Space, Store, StoreError};
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Runs every check against an empty store.
pub fn store_contract(store: &dyn Store) {
    versions_and_conditional_writes(store);
    expiry(store);
    scans(store);
    spaces_are_separate(store);
    documents_round_trip(store);
    deletes(store);
    batched_reads(store);
    cached_reads(store);
    groups(store);
    reads_ahead(store);
    held_writes(store);
}

fn put(space: Space, key: &str, value: serde_json::Value, expect: Expect, now: DateTime<Utc>) -> Put {
    Put { space, key: key.to_owned(), value: value.into(), expect, expires_at: None, now }
}

/// A group of writes across spaces (DynamoDB: across tables) is all or nothing.
fn groups(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    store.put(Space::Incident, "g-inc", json!(1).into(), Expect::Absent, None, now).unwrap();
    let group = [
        put(Space::Incident, "g-inc", json!(2), Expect::Version(1), now),
        put(Space::History, "g-alert|0000000001", json!({"revision": 1}), Expect::Absent, now),
        put(Space::Alert, "g-alert", json!({"alert": 1}), Expect::Absent, now),
    ];
    assert_eq!(store.put_all(&group).unwrap(), [2, 1, 1]);
    assert_eq!(store.get(Space::Alert, "g-alert", now).unwrap().map(|r| (*r.value).clone()), Some(json!({"alert": 1})));
    // One stale condition: nothing of the group is written, and the conflict names its key.
    let stale = [
        put(Space::Incident, "g-inc", json!(3), Expect::Version(2), now),
        put(Space::Baseline, "g-new", json!("new"), Expect::Absent, now),
        put(Space::Alert, "g-alert", json!({"alert": 2}), Expect::Absent, now),
    ];
    match store.put_all(&stale) {
        Err(StoreError::Conflict { key, .. }) => assert_eq!(key, "g-alert"),
        other => panic!("a stale condition must conflict: {other:?}"),
    }
    assert_eq!(store.get(Space::Incident, "g-inc", now).unwrap().map(|r| r.version), Some(2), "nothing written");
    assert_eq!(store.get(Space::Baseline, "g-new", now).unwrap(), None, "nothing written");
    // More than one transaction's worth: applied in order, every put.
    let many: Vec<Put> =
        (0..GROUP_LIMIT + 5).map(|i| put(Space::Index, &format!("g{i}"), json!(i), Expect::Absent, now)).collect();
    assert_eq!(store.put_all(&many).unwrap(), vec![1; GROUP_LIMIT + 5]);
    assert_eq!(store.scan(Space::Index, "g", now).unwrap().len(), GROUP_LIMIT + 5);
}

/// Keys and prefix scans read in one step.
fn reads_ahead(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    store.put(Space::Identity, "ra-key", json!("id").into(), Expect::Absent, None, now).unwrap();
    store.put(Space::Pending, "ra|1", json!(1).into(), Expect::Absent, None, now).unwrap();
    store.put(Space::Pending, "ra|2", json!(2).into(), Expect::Absent, None, now).unwrap();
    let keys = [(Space::Identity, "ra-key".to_owned()), (Space::Identity, "ra-none".to_owned())];
    let read =
        store.read_ahead(&keys, &[(Space::Pending, "ra|".to_owned()), (Space::Plan, "ra".to_owned())], now).unwrap();
    assert_eq!(
        read.records.iter().map(|r| r.as_ref().map(|r| (*r.value).clone())).collect::<Vec<_>>(),
        [Some(json!("id")), None]
    );
    let scanned: Vec<Vec<String>> = read.scanned.iter().map(|s| s.iter().map(|(k, _)| k.clone()).collect()).collect();
    assert_eq!(scanned, [vec!["ra|1".to_owned(), "ra|2".to_owned()], vec![]]);
}

/// Writes held by the engine's memory: seen by its reads at once, written
/// as one group on flush, the conditions they were made with kept.
fn held_writes(store: &dyn Store) {
    use sentinel_core::store::Cached;
    let now = t("2024-05-01T10:00:00Z");
    store.put(Space::Baseline, "h", json!(1).into(), Expect::Absent, None, now).unwrap();
    let cached = Cached::new(store);
    cached.stage();
    assert_eq!(cached.put(Space::Baseline, "h", json!(2).into(), Expect::Version(1), None, now).unwrap(), 2);
    assert_eq!(cached.put(Space::Alert, "h-alert", json!("a").into(), Expect::Absent, None, now).unwrap(), 1);
    // Folded into the held write of its key: one write, the first condition.
    assert_eq!(cached.put(Space::Baseline, "h", json!(3).into(), Expect::Version(2), None, now).unwrap(), 2);
    let folded_stale = cached.put(Space::Baseline, "h", json!(4).into(), Expect::Version(1), None, now);
    assert!(matches!(folded_stale, Err(StoreError::Conflict { .. })), "{folded_stale:?}");
    assert_eq!(
        cached.get(Space::Baseline, "h", now).unwrap().map(|r| (*r.value).clone()),
        Some(json!(3)),
        "held, yet seen"
    );
    assert_eq!(store.get(Space::Baseline, "h", now).unwrap().map(|r| r.version), Some(1), "held, not written");
    cached.flush().unwrap();
    let written = store.get(Space::Baseline, "h", now).unwrap().unwrap();
    assert_eq!(((*written.value).clone(), written.version), (json!(3), 2));
    assert!(store.get(Space::Alert, "h-alert", now).unwrap().is_some());
    // A writer behind the memory's back: the held group fails whole on flush.
    cached.put(Space::Baseline, "h", json!(5).into(), Expect::Version(2), None, now).unwrap();
    cached.put(Space::Baseline, "h-other", json!(1).into(), Expect::Absent, None, now).unwrap();
    store.put(Space::Baseline, "h", json!("theirs").into(), Expect::Version(2), None, now).unwrap();
    assert!(matches!(cached.finish(), Err(StoreError::Conflict { .. })));
    assert_eq!(store.get(Space::Baseline, "h", now).unwrap().map(|r| (*r.value).clone()), Some(json!("theirs")));
    assert_eq!(store.get(Space::Baseline, "h-other", now).unwrap(), None);
    // Not holding after finish: writes go through at once.
    cached.forget();
    cached.put(Space::Baseline, "h-now", json!(1).into(), Expect::Absent, None, now).unwrap();
    assert!(store.get(Space::Baseline, "h-now", now).unwrap().is_some());
}

fn batched_reads(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    store.put(Space::Baseline, "b1", json!("one").into(), Expect::Absent, None, now).unwrap();
    store.put(Space::Alert, "a1", json!({"alert": 1}).into(), Expect::Absent, None, now).unwrap();
    store.put(Space::Incident, "gone", json!(0).into(), Expect::Absent, Some(now), now - Duration::hours(1)).unwrap();
    let keys: Vec<(Space, String)> = [
        (Space::Alert, "a1"),
        (Space::Baseline, "missing"),
        (Space::Baseline, "b1"),
        (Space::Incident, "gone"),
        (Space::Baseline, "b1"),
    ]
    .iter()
    .map(|(s, k)| (*s, (*k).to_owned()))
    .collect();
    let got: Vec<Option<serde_json::Value>> =
        store.get_many(&keys, now).unwrap().into_iter().map(|r| r.map(|r| (*r.value).clone())).collect();
    assert_eq!(got, [Some(json!({"alert": 1})), None, Some(json!("one")), None, Some(json!("one"))], "in order");
    let many: Vec<(Space, String)> = (0..130).map(|i| (Space::Baseline, format!("k{i}"))).collect();
    assert!(store.get_many(&many, now).unwrap().iter().all(Option::is_none), "more than one batch");
}

/// The engine's per-event memory over this store: a key is read once, a
/// write is remembered, a failed write forgotten.
fn cached_reads(store: &dyn Store) {
    use sentinel_core::store::Cached;
    let now = t("2024-05-01T10:00:00Z");
    let cached = Cached::new(store);
    cached.prefetch(&[(Space::Baseline, "c".to_owned())], &[], now).unwrap();
    assert_eq!(cached.get(Space::Baseline, "c", now).unwrap(), None);
    // Written behind the memory's back: the memory keeps what it read until told to forget.
    store.put(Space::Baseline, "c", json!(1).into(), Expect::Absent, None, now).unwrap();
    assert_eq!(cached.get(Space::Baseline, "c", now).unwrap(), None);
    cached.forget();
    assert_eq!(
        cached.get(Space::Baseline, "c", now).unwrap().map(|r| ((*r.value).clone(), r.version)),
        Some((json!(1), 1))
    );
    assert_eq!(cached.put(Space::Baseline, "c", json!(2).into(), Expect::Version(1), None, now).unwrap(), 2);
    assert_eq!(cached.get(Space::Baseline, "c", now).unwrap().map(|r| r.version), Some(2), "its own write");
    let stale = cached.put(Space::Baseline, "c", json!(3).into(), Expect::Version(1), None, now);
    assert!(matches!(stale, Err(StoreError::Conflict { .. })));
    assert_eq!(store.get(Space::Baseline, "c", now).unwrap().map(|r| r.version), Some(2));
}

fn deletes(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    store.put(Space::Pending, "p", json!(1).into(), Expect::Absent, None, now).unwrap();
    store.delete(Space::Pending, "p").unwrap();
    assert_eq!(store.get(Space::Pending, "p", now).unwrap(), None);
    store.delete(Space::Pending, "never-there").unwrap();
    assert_eq!(
        store.put(Space::Pending, "p", json!(2).into(), Expect::Absent, None, now).unwrap(),
        1,
        "versions restart"
    );
}

fn versions_and_conditional_writes(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    assert_eq!(store.get(Space::Baseline, "a", now).unwrap(), None);
    assert_eq!(store.put(Space::Baseline, "a", json!(1).into(), Expect::Absent, None, now).unwrap(), 1);
    let conflict = store.put(Space::Baseline, "a", json!(2).into(), Expect::Absent, None, now);
    assert!(matches!(conflict, Err(StoreError::Conflict { .. })), "Absent on an existing key must conflict");
    assert_eq!(store.put(Space::Baseline, "a", json!(2).into(), Expect::Version(1), None, now).unwrap(), 2);
    let stale = store.put(Space::Baseline, "a", json!(3).into(), Expect::Version(1), None, now);
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "a stale version must conflict");
    assert!(matches!(
        store.put(Space::Baseline, "never", json!(1).into(), Expect::Version(1), None, now),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.put(Space::Baseline, "a", json!(3).into(), Expect::Any, None, now).unwrap(), 3);
    let got = store.get(Space::Baseline, "a", now).unwrap().unwrap();
    assert_eq!(((*got.value).clone(), got.version, got.expires_at), (json!(3), 3, None));
}

fn expiry(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    let at = now + Duration::minutes(30);
    store.put(Space::Incident, "x", json!({"n": 1}).into(), Expect::Absent, Some(at), now).unwrap();
    assert_eq!(store.get(Space::Incident, "x", at - Duration::seconds(1)).unwrap().unwrap().expires_at, Some(at));
    assert_eq!(store.get(Space::Incident, "x", at).unwrap(), None, "expired at its expiry time");
    // An expired record is absent for writes too, and its versions start again.
    assert_eq!(store.put(Space::Incident, "x", json!({"n": 2}).into(), Expect::Absent, None, at).unwrap(), 1);
    assert_eq!(
        store.get(Space::Incident, "x", at + Duration::days(365)).unwrap().unwrap().value.as_ref().clone(),
        json!({"n": 2})
    );
    // A live record is not absent; an expired one has no version to expect.
    store.put(Space::Incident, "y", json!(1).into(), Expect::Absent, Some(at), now).unwrap();
    let live = store.put(Space::Incident, "y", json!(2).into(), Expect::Absent, None, at - Duration::seconds(1));
    assert!(matches!(live, Err(StoreError::Conflict { .. })), "{live:?}");
    let gone = store.put(Space::Incident, "y", json!(2).into(), Expect::Version(1), None, at);
    assert!(matches!(gone, Err(StoreError::Conflict { .. })), "{gone:?}");
    assert_eq!(
        store.put(Space::Incident, "y", json!(2).into(), Expect::Version(1), None, at - Duration::seconds(1)).unwrap(),
        2
    );
}

fn scans(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    for key in ["prod|shop|b", "prod|shop|a", "prod|shopping|c", "prod|payments|d", "staging|shop|e"] {
        store.put(Space::Plan, key, json!(key).into(), Expect::Any, None, now).unwrap();
    }
    store
        .put(Space::Plan, "prod|shop|old", json!("old").into(), Expect::Any, Some(now), now - Duration::hours(1))
        .unwrap();
    let keys: Vec<String> = store.scan(Space::Plan, "prod|shop|", now).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["prod|shop|a", "prod|shop|b"], "prefix, key order, live records only");
    assert!(store.scan(Space::Plan, "nothing|", now).unwrap().is_empty());
}

fn spaces_are_separate(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    store.put(Space::Alert, "same", json!("alert").into(), Expect::Absent, None, now).unwrap();
    store.put(Space::Activity, "same", json!("activity").into(), Expect::Absent, None, now).unwrap();
    assert_eq!(store.get(Space::Alert, "same", now).unwrap().unwrap().value.as_ref().clone(), json!("alert"));
    assert_eq!(store.get(Space::Activity, "same", now).unwrap().unwrap().value.as_ref().clone(), json!("activity"));
    assert!(store.scan(Space::Identity, "", now).unwrap().is_empty());
}

fn documents_round_trip(store: &dyn Store) {
    let now = t("2024-05-01T10:00:00Z");
    let doc = json!({"annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers \"X: ü\";\n"},
                     "list": [1, 2.5, null, true], "nested": {"deep": {"er": "\u{1b}[31m"}}});
    let key = "prod|ingresses|shop|web with spaces/and|pipes";
    store.put(Space::Index, key, doc.clone().into(), Expect::Absent, None, now).unwrap();
    assert_eq!(store.get(Space::Index, key, now).unwrap().unwrap().value.as_ref().clone(), doc);
}
