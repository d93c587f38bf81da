//! The store contract, run against each local implementation, and writes
//! held as one group against the same writes made one by one.

use sentinel_core::store::{Cached, Expect, MemoryStore, Space, Store, StoreError};
use sentinel_local::FileStore;
use sentinel_tests::contract::store_contract;
use serde_json::json;

#[test]
fn the_memory_store_meets_the_contract() {
    store_contract(&MemoryStore::new());
}

#[test]
fn the_file_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    store_contract(&FileStore::open(dir.path().join("state.redb")).unwrap());
}

#[test]
fn the_file_store_keeps_state_across_reopening_and_purges_expired_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let now = "2024-05-01T10:00:00Z".parse().unwrap();
    let later = "2024-05-01T11:00:00Z".parse().unwrap();
    {
        let store = FileStore::open(&path).unwrap();
        store.put(Space::Baseline, "kept", json!("k").into(), Expect::Absent, None, now).unwrap();
        store.put(Space::Incident, "gone", json!("g").into(), Expect::Absent, Some(later), now).unwrap();
    }
    let store = FileStore::open(&path).unwrap();
    assert_eq!(store.get(Space::Baseline, "kept", now).unwrap().unwrap().version, 1);
    assert_eq!(store.purge(now).unwrap(), 0);
    assert_eq!(store.purge(later).unwrap(), 1);
    assert_eq!(store.get(Space::Incident, "gone", now).unwrap(), None, "purged for good");
}

/// How one write of a generated sequence chooses its condition.
#[derive(Clone, Copy, Debug)]
enum Condition {
    /// The version the writer just read (absent: `Absent`), as the engine writes.
    Current,
    /// The key must be new.
    Absent,
    /// A version nobody holds.
    Stale,
    /// No condition.
    Any,
}

/// A small deterministic generator, so a failure names its sequence.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn write(store: &dyn Store, key: &str, value: i64, condition: Condition) -> Result<u64, StoreError> {
    let now = "2024-05-01T10:00:00Z".parse().unwrap();
    let expect = match condition {
        Condition::Current => Expect::from_current(store.get(Space::Baseline, key, now)?.map(|r| r.version)),
        Condition::Absent => Expect::Absent,
        Condition::Stale => Expect::Version(1_000),
        Condition::Any => Expect::Any,
    };
    store.put(Space::Baseline, key, json!(value).into(), expect, None, now)
}

#[test]
fn writes_held_as_one_group_leave_what_the_same_writes_made_one_by_one_leave_or_nothing() {
    let now = "2024-05-01T10:00:00Z".parse().unwrap();
    let keys = ["a", "b", "c"];
    let mut rng = Lcg(7);
    for sequence in 0..500 {
        // The same starting state for both: some keys exist, at some version.
        let (direct, grouped) = (MemoryStore::new(), MemoryStore::new());
        for (i, key) in keys.iter().enumerate() {
            for _ in 0..rng.below(3) {
                for store in [&direct, &grouped] {
                    write(store, key, i as i64, Condition::Any).unwrap();
                }
            }
        }
        let ops: Vec<(&str, i64, Condition)> = (0..1 + rng.below(6))
            .map(|n| {
                let key = keys[rng.below(keys.len() as u64) as usize];
                let condition =
                    [Condition::Current, Condition::Current, Condition::Absent, Condition::Stale, Condition::Any]
                        [rng.below(5) as usize];
                (key, 100 + n as i64, condition)
            })
            .collect();
        let before: Vec<_> = keys.iter().map(|k| grouped.get(Space::Baseline, k, now).unwrap()).collect();
        let one_by_one: Vec<bool> = ops.iter().map(|(k, v, c)| write(&direct, k, *v, *c).is_ok()).collect();
        let cached = Cached::new(&grouped);
        cached.stage();
        let held: Result<Vec<u64>, StoreError> = ops.iter().map(|(k, v, c)| write(&cached, k, *v, *c)).collect();
        let flushed = held.and_then(|_| cached.finish());
        let context = format!("sequence {sequence}: {ops:?}, one by one {one_by_one:?}, grouped {flushed:?}");
        if one_by_one.iter().all(|ok| *ok) {
            assert!(flushed.is_ok(), "{context}");
            for key in keys {
                let value = |s: &MemoryStore| s.get(Space::Baseline, key, now).unwrap().map(|r| r.value);
                assert_eq!(value(&grouped), value(&direct), "{context}: {key}");
            }
        } else {
            assert!(matches!(flushed, Err(StoreError::Conflict { .. })), "{context}");
            let after: Vec<_> = keys.iter().map(|k| grouped.get(Space::Baseline, k, now).unwrap()).collect();
            assert_eq!(after, before, "{context}: a failed group writes nothing");
        }
    }
}
