//! Ingress Sentinel state in one local file.
//!
//! [`FileStore`] implements the engine's [`Store`] port on
//! [redb](https://docs.rs/redb), an embedded, crash-safe, pure-Rust
//! key-value database: one file, ACID write transactions, no server and no
//! C toolchain. Each put runs in its own write transaction, so the version
//! check and the write are atomic, as DynamoDB's condition expressions are.
//! Expiry follows DynamoDB's TTL: an expired record reads as absent at once,
//! and [`FileStore::purge`] removes it later.
//!
//! ```
//! use sentinel_core::store::{Expect, Space, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let store = sentinel_local::FileStore::open(dir.path().join("state.redb")).unwrap();
//! let now = chrono::Utc::now();
//! let v = store.put(Space::Baseline, "k", serde_json::json!({"a": 1}).into(), Expect::Absent, None, now).unwrap();
//! assert_eq!(v, 1);
//! ```

use std::path::Path;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sentinel_core::fault::{Fault, FaultClass};
use sentinel_core::store::{Document, Expect, Put, Record, Space, Stamp, Store, StoreError, next_version};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One table; keys are `<space>\0<key>`, so a space is a key range.
const TABLE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("state");

/// A record as stored (written from a borrowed document).
#[derive(Serialize, Deserialize)]
struct Stored<V = Value> {
    value: V,
    version: u64,
    expires_at: Option<DateTime<Utc>>,
}

/// The engine's state in one redb file.
pub struct FileStore {
    db: Database,
}

/// A failure of the state file: the disk, not the input.
fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(Fault::new(FaultClass::Io, "state file", e.into()))
}

fn full_key(space: Space, key: &str) -> String {
    format!("{}\0{key}", space.as_str())
}

impl<V> Stored<V> {
    fn stamp(&self) -> Stamp {
        Stamp { version: self.version, expires_at: self.expires_at }
    }
}

impl From<Stored> for Record {
    fn from(stored: Stored) -> Self {
        Record { value: Document::new(stored.value), version: stored.version, expires_at: stored.expires_at }
    }
}

fn parse<V: serde::de::DeserializeOwned>(space: Space, key: &str, bytes: &[u8]) -> Result<Stored<V>, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        space: space.as_str(),
        key: key.to_owned(),
        source,
    })
}

impl FileStore {
    /// Opens (or creates) the state file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(|e| {
            StoreError::Backend(Fault::new(FaultClass::Io, format!("opening state file {}", path.display()), e))
        })?;
        let tx = db.begin_write().map_err(backend)?;
        tx.open_table(TABLE).map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(Self { db })
    }

    /// Removes every record expired at `now`; returns how many.
    pub fn purge(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        let removed = {
            let mut table = tx.open_table(TABLE).map_err(backend)?;
            // Only the expiry counts: each document is checked as JSON and skipped, not built.
            let expired = table
                .extract_if(|_, bytes| {
                    serde_json::from_slice::<Stored<serde::de::IgnoredAny>>(bytes).is_ok_and(|r| !r.stamp().live(now))
                })
                .map_err(backend)?;
            expired.count()
        };
        tx.commit().map_err(backend)?;
        Ok(removed)
    }
}

impl FileStore {
    /// Runs `write` in one write transaction: committed when it succeeds,
    /// aborted (nothing written) when any of its conditions fails.
    fn transact<T>(
        &self,
        write: impl FnOnce(&mut redb::Table<'_, &'static str, &'static [u8]>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        let written = tx.open_table(TABLE).map_err(backend).and_then(|mut table| write(&mut table));
        match written {
            Ok(done) => {
                tx.commit().map_err(backend)?;
                Ok(done)
            }
            Err(e) => {
                tx.abort().map_err(backend)?;
                Err(e)
            }
        }
    }
}

/// One conditional write inside a transaction: the current version read,
/// the condition applied, the document stored with the next version.
fn write_in(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    space: Space,
    key: &str,
    value: &Value,
    expect: Expect,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let k = full_key(space, key);
    let current = match table.get(k.as_str()).map_err(backend)? {
        Some(bytes) => {
            // Only the version and expiry count here: the document is
            // checked as JSON and skipped, not built.
            let s: Stored<serde::de::IgnoredAny> = parse(space, key, bytes.value())?;
            Some(s.stamp())
        }
        None => None,
    };
    let version = next_version(space, key, current, expect, now)?;
    let bytes = serde_json::to_vec(&Stored { value, version, expires_at }).map_err(|source| StoreError::Corrupt {
        space: space.as_str(),
        key: key.to_owned(),
        source,
    })?;
    table.insert(k.as_str(), bytes.as_slice()).map_err(backend)?;
    Ok(version)
}

impl Store for FileStore {
    fn get(&self, space: Space, key: &str, now: DateTime<Utc>) -> Result<Option<Record>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(TABLE).map_err(backend)?;
        let Some(bytes) = table.get(full_key(space, key).as_str()).map_err(backend)? else { return Ok(None) };
        let stored = parse(space, key, bytes.value())?;
        Ok(stored.stamp().live(now).then(|| stored.into()))
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
        self.transact(|table| write_in(table, space, key, &value, expect, expires_at, now))
    }

    fn put_all(&self, puts: &[Put]) -> Result<Vec<u64>, StoreError> {
        self.transact(|table| {
            puts.iter().map(|p| write_in(table, p.space, &p.key, &p.value, p.expect, p.expires_at, p.now)).collect()
        })
    }

    fn delete(&self, space: Space, key: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        {
            let mut table = tx.open_table(TABLE).map_err(backend)?;
            table.remove(full_key(space, key).as_str()).map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    fn scan(&self, space: Space, prefix: &str, now: DateTime<Utc>) -> Result<Vec<(String, Record)>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(TABLE).map_err(backend)?;
        let start = full_key(space, prefix);
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..).map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            let Some(key) = k.value().strip_prefix(&start[..start.len() - prefix.len()]) else { break };
            if !key.starts_with(prefix) {
                break;
            }
            let stored = parse(space, key, v.value())?;
            if stored.stamp().live(now) {
                out.push((key.to_owned(), stored.into()));
            }
        }
        Ok(out)
    }
}
