//! The store contract, run against each local implementation.

use sentinel_core::store::{Expect, MemoryStore, Space, Store};
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
        store.put(Space::Baseline, "kept", &json!("k"), Expect::Absent, None, now).unwrap();
        store.put(Space::Incident, "gone", &json!("g"), Expect::Absent, Some(later), now).unwrap();
    }
    let store = FileStore::open(&path).unwrap();
    assert_eq!(store.get(Space::Baseline, "kept", now).unwrap().unwrap().version, 1);
    assert_eq!(store.purge(now).unwrap(), 0);
    assert_eq!(store.purge(later).unwrap(), 1);
    assert_eq!(store.get(Space::Incident, "gone", now).unwrap(), None, "purged for good");
}
