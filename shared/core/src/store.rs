//! The engine's ports: where state lives and where alerts go.
//!
//! Adapters implement one small trait, [`Store`]: a keyed document store with
//! versions, conditional writes and expiry, the semantics DynamoDB gives with
//! condition expressions and TTL. Every capability the engine needs
//! (baselines, change plans, identity records, correlation state, learned
//! activity, alerts) is a typed view over it ([`Baselines`], [`Plans`],
//! [`Identities`], [`Incidents`], [`Activity`], [`AlertStore`]), implemented
//! once for every store. [`Sink`] is where the engine's output goes: alert
//! revisions, records that cannot be processed, and the raw events behind
//! alerts.
//!
//! Expiry is judged against the time the caller passes, not the wall clock:
//! a replay of last month's logs must see last month's state.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize as _, Serialize};
use serde_json::Value;
use sha2::Digest as _;

use crate::decode::{DecodeError, Location};
use crate::fault::{Fault, FaultClass};

/// The kinds of state, each its own key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Last seen and last approved state of each tracked object.
    Baseline,
    /// Registered change plans.
    Plan,
    /// CloudTrail identity records: access key or session → origin.
    Identity,
    /// Open incidents per actor (correlation windows).
    Incident,
    /// Learned activity patterns per actor and namespace.
    Activity,
    /// Every alert, by id (compliance record).
    Alert,
    /// Indexes: TLS Secrets and Services referenced by Ingresses, hosts with TLS.
    Index,
    /// Alerts waiting for CloudTrail to name the origin of a session.
    Pending,
    /// Every revision and status change of every alert (compliance history).
    History,
}

impl Space {
    /// A short stable name, used as a key prefix by adapters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Plan => "plan",
            Self::Identity => "identity",
            Self::Incident => "incident",
            Self::Activity => "activity",
            Self::Alert => "alert",
            Self::Index => "index",
            Self::Pending => "pending",
            Self::History => "history",
        }
    }

    /// Every space.
    pub const ALL: [Space; 9] = [
        Self::Baseline,
        Self::Plan,
        Self::Identity,
        Self::Incident,
        Self::Activity,
        Self::Alert,
        Self::Index,
        Self::Pending,
        Self::History,
    ];
}

/// A stored document, shared: the stores and the read cache hand out the
/// same one instead of copying a baseline's whole tree on every read and
/// write.
pub type Document = Arc<Value>;

/// A stored document with its version.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The document.
    pub value: Document,
    /// Starts at 1 and grows by one with every write.
    pub version: u64,
    /// When the record stops existing, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Record {
    /// The record's version and expiry: what a write's condition is checked against.
    pub fn stamp(&self) -> Stamp {
        Stamp { version: self.version, expires_at: self.expires_at }
    }

    /// True until the record expires.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.stamp().live(now)
    }
}

/// A stored record's version and expiry, without its document: enough to
/// decide a conditional write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The record's version.
    pub version: u64,
    /// When the record stops existing, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Stamp {
    /// True until the record expires.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// The condition a write must meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist (or have expired).
    Absent,
    /// The stored version must be this one.
    Version(u64),
    /// No condition.
    Any,
}

impl Expect {
    /// `Absent` for no current version, else that version.
    pub fn from_current(version: Option<u64>) -> Self {
        version.map_or(Self::Absent, Self::Version)
    }
}

/// One conditional write of a group ([`Store::put_all`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Put {
    /// The space.
    pub space: Space,
    /// The key.
    pub key: String,
    /// The document.
    pub value: Document,
    /// The condition.
    pub expect: Expect,
    /// When the record stops existing, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The time the condition is judged at (an expired record is absent).
    pub now: DateTime<Utc>,
}

impl Put {
    /// A put of a typed document.
    pub fn typed<T: Serialize>(
        space: Space,
        key: &str,
        value: &T,
        expect: Expect,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        Ok(Self { space, key: key.to_owned(), value: encode(space, key, value)?, expect, expires_at, now })
    }
}

/// The most writes one group applies all or nothing: DynamoDB's
/// `TransactWriteItems` bound. Larger groups are applied in order, in parts.
pub const GROUP_LIMIT: usize = 100;

/// What a store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found another version: someone else wrote first.
    #[error("conditional write on {space}/{key} failed: the record changed")]
    Conflict {
        /// The space.
        space: &'static str,
        /// The key.
        key: String,
    },
    /// A stored document does not have the expected shape.
    #[error("stored {space}/{key} is not readable: {source}")]
    Corrupt {
        /// The space.
        space: &'static str,
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The backend failed: the environment, not the input.
    #[error(transparent)]
    Backend(#[from] crate::fault::Fault),
}

/// A versioned key-value store with conditional writes and expiry.
pub trait Store {
    /// Reads a record; an expired one (at `now`) is absent.
    fn get(&self, space: Space, key: &str, now: DateTime<Utc>) -> Result<Option<Record>, StoreError>;

    /// Writes `value` if `expect` holds, returning the new version.
    fn put(
        &self,
        space: Space,
        key: &str,
        value: Document,
        expect: Expect,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Every live record whose key starts with `prefix`, in key order.
    fn scan(&self, space: Space, prefix: &str, now: DateTime<Utc>) -> Result<Vec<(String, Record)>, StoreError>;

    /// Removes a record (absent already is fine).
    fn delete(&self, space: Space, key: &str) -> Result<(), StoreError>;

    /// Writes every put if every condition holds, none otherwise, returning
    /// the new versions in order: one round trip where the backend has
    /// transactions. At most one put per key. A group larger than
    /// [`GROUP_LIMIT`] is applied in order in parts, each all or nothing.
    fn put_all(&self, puts: &[Put]) -> Result<Vec<u64>, StoreError>;

    /// Reads several keys, in order: one round trip where the backend can
    /// batch them, one read each otherwise.
    fn get_many(&self, keys: &[(Space, String)], now: DateTime<Utc>) -> Result<Vec<Option<Record>>, StoreError> {
        keys.iter().map(|(space, key)| self.get(*space, key, now)).collect()
    }

    /// Reads several keys and scans several prefixes: one round trip where
    /// the backend can send them together, one call each otherwise.
    fn read_ahead(
        &self,
        keys: &[(Space, String)],
        scans: &[(Space, String)],
        now: DateTime<Utc>,
    ) -> Result<ReadAhead, StoreError> {
        let records = self.get_many(keys, now)?;
        let scanned = scans.iter().map(|(space, prefix)| self.scan(*space, prefix, now)).collect::<Result<_, _>>()?;
        Ok(ReadAhead { records, scanned })
    }

    /// The ids of alerts whose latest revision is not published, recorded
    /// before `before`: the outbox. Stores with an index of them answer from
    /// it (it may lag: callers read each alert again); this default reads every alert.
    fn unpublished_alerts(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let all = self.scan(Space::Alert, "", now)?;
        Ok(all
            .into_iter()
            .filter(|(_, r)| {
                crate::alert::AlertRecord::deserialize(&*r.value)
                    .is_ok_and(|a| a.unpublished() && a.recorded_at.is_none_or(|t| t < before))
            })
            .map(|(key, _)| key)
            .collect())
    }
}

/// What [`Store::read_ahead`] read.
#[derive(Clone, Debug, Default)]
pub struct ReadAhead {
    /// The records of the keys, in order.
    pub records: Vec<Option<Record>>,
    /// The live records under each prefix, in order.
    pub scanned: Vec<Vec<(String, Record)>>,
}

/// A typed document with its version.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    /// The document.
    pub value: T,
    /// Its version.
    pub version: u64,
}

fn decode<T: DeserializeOwned>(space: Space, key: &str, record: Record) -> Result<Versioned<T>, StoreError> {
    let value = T::deserialize(&*record.value).map_err(|source| StoreError::Corrupt {
        space: space.as_str(),
        key: key.to_owned(),
        source,
    })?;
    Ok(Versioned { value, version: record.version })
}

fn encode<T: Serialize>(space: Space, key: &str, value: &T) -> Result<Document, StoreError> {
    serde_json::to_value(value).map(Arc::new).map_err(|source| StoreError::Corrupt {
        space: space.as_str(),
        key: key.to_owned(),
        source,
    })
}

/// How often [`Typed::update_typed`] reads again after losing a race.
const UPDATE_ATTEMPTS: usize = 5;

/// Typed reads and writes of one space.
pub trait Typed: Store {
    /// Reads and decodes a document.
    fn get_typed<T: DeserializeOwned>(
        &self,
        space: Space,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        self.get(space, key, now)?.map(|r| decode(space, key, r)).transpose()
    }

    /// Encodes and conditionally writes a document.
    fn put_typed<T: Serialize>(
        &self,
        space: Space,
        key: &str,
        value: &T,
        expect: Expect,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.put(space, key, encode(space, key, value)?, expect, expires_at, now)
    }

    /// Reads a document, lets `change` edit it (`None`: nothing to write),
    /// and writes the result back on the condition that nobody wrote in
    /// between, reading again on a conflict. Returns what was written.
    fn update_typed<T: Serialize + DeserializeOwned>(
        &self,
        space: Space,
        key: &str,
        now: DateTime<Utc>,
        expires: impl Fn(&T) -> Option<DateTime<Utc>>,
        mut change: impl FnMut(Option<T>) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.get_typed::<T>(space, key, now)?;
            let expect = Expect::from_current(current.as_ref().map(|c| c.version));
            let Some(next) = change(current.map(|c| c.value)) else { return Ok(None) };
            match self.put_typed(space, key, &next, expect, expires(&next), now) {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map(|_| Some(next)),
            }
        }
        Err(StoreError::Conflict { space: space.as_str(), key: key.to_owned() })
    }

    /// Reads and decodes every document under a key prefix.
    fn scan_typed<T: DeserializeOwned>(
        &self,
        space: Space,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Versioned<T>)>, StoreError> {
        self.scan(space, prefix, now)?.into_iter().map(|(key, r)| decode(space, &key, r).map(|v| (key, v))).collect()
    }
}

impl<S: Store + ?Sized> Typed for S {}

macro_rules! port {
    ($(#[$doc:meta])* $name:ident, $space:expr, $get:ident, $put:ident, $ty:ty) => {
        $(#[$doc])*
        pub trait $name {
            /// Reads one document.
            fn $get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Versioned<$ty>>, StoreError>;
            /// Writes one document if `expect` holds.
            fn $put(
                &self,
                key: &str,
                value: &$ty,
                expect: Expect,
                expires_at: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError>;
        }

        impl<S: Store + ?Sized> $name for S {
            fn $get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Versioned<$ty>>, StoreError> {
                self.get_typed($space, key, now)
            }
            fn $put(
                &self,
                key: &str,
                value: &$ty,
                expect: Expect,
                expires_at: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                self.put_typed($space, key, value, expect, expires_at, now)
            }
        }
    };
}

port!(
    /// Baselines: the last seen and last approved state of each object.
    Baselines, Space::Baseline, baseline, put_baseline, crate::baseline::Baseline
);
port!(
    /// Correlation state: the open incident of each actor.
    Incidents, Space::Incident, incident, put_incident, crate::alert::Incident
);
port!(
    /// The compliance record of every alert, by id.
    AlertStore, Space::Alert, stored_alert, put_alert, crate::alert::AlertRecord
);
port!(
    /// The history of every alert: one record per revision.
    AlertHistory, Space::History, revision_record, put_revision_record, crate::alert::RevisionRecord
);
port!(
    /// Learned activity patterns per actor and namespace.
    Activity, Space::Activity, activity, put_activity, crate::pattern::ActivityModel
);
port!(
    /// CloudTrail identity records, by access key id or session ARN.
    Identities, Space::Identity, identity, put_identity, crate::actor::IdentityRecord
);

/// Registered change plans.
pub trait Plans {
    /// Every live plan for a cluster and namespace.
    fn plans(
        &self,
        cluster: &str,
        namespace: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::plan::ChangePlan>, StoreError>;
    /// Registers (or replaces) a plan; it expires when it stops being valid.
    fn put_plan(&self, plan: &crate::plan::ChangePlan, now: DateTime<Utc>) -> Result<(), StoreError>;
}

impl<S: Store + ?Sized> Plans for S {
    fn plans(
        &self,
        cluster: &str,
        namespace: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::plan::ChangePlan>, StoreError> {
        let prefix = crate::keys::plans(cluster, namespace);
        Ok(self.scan_typed(Space::Plan, &prefix, now)?.into_iter().map(|(_, v)| v.value).collect())
    }

    fn put_plan(&self, plan: &crate::plan::ChangePlan, now: DateTime<Utc>) -> Result<(), StoreError> {
        let key = crate::keys::plan(&plan.cluster, &plan.namespace, &plan.id);
        self.put_typed(Space::Plan, &key, plan, Expect::Any, Some(plan.valid_until), now).map(|_| ())
    }
}

/// Where the engine's output goes: SNS and the evidence bucket on AWS,
/// standard output and a directory locally. Every call must be safe to make
/// again with the same arguments: a retried event makes it again.
pub trait Sink {
    /// Publishes one alert revision. Consumers deduplicate by `alert_id` and `revision`.
    fn publish(&mut self, alert: &crate::alert::Alert) -> Result<(), Fault>;

    /// Keeps a record that cannot be processed, with its raw bytes, where a
    /// person can find it by its source and position.
    fn quarantine(&mut self, record: &Quarantined<'_>) -> Result<(), Fault>;

    /// Keeps the raw audit event behind an alert, retrievable by its audit id
    /// (alerts carry only bounded evidence).
    fn keep_event(&mut self, cluster: &str, audit_id: &str, raw: &[u8]) -> Result<(), Fault>;

    /// Waits until every event kept is stored. A sink may store kept events
    /// while it publishes (one round trip for both); the engine settles
    /// before it remembers a write, so no alert's evidence is left unstored.
    fn settle(&mut self) -> Result<(), Fault> {
        Ok(())
    }
}

/// A record that could not be processed, as it is kept.
#[derive(Clone, Copy, Debug)]
pub struct Quarantined<'a> {
    /// Where it was read: the input, and the position inside it.
    pub location: &'a Location,
    /// Why it could not be processed.
    pub reason: &'a str,
    /// Its bytes, as far as they were read. `None` when the input itself is
    /// what is damaged (it stays where it is) or the record was too large to hold.
    pub raw: Option<&'a [u8]>,
}

impl<'a> Quarantined<'a> {
    /// The quarantine of a decoding failure; `reason` is its text.
    pub fn of(error: &'a DecodeError, reason: &'a str) -> Self {
        Self { location: &error.location, reason, raw: error.raw.as_deref() }
    }

    /// A key for it that is the same on every retry: its input, position and reason, hashed.
    pub fn key(&self) -> String {
        let mut hash = sha2::Sha256::new();
        for part in [self.location.input.as_bytes(), self.location.at.as_bytes(), self.reason.as_bytes()] {
            hash.update(part);
            hash.update([0]);
        }
        hex::encode(hash.finalize())
    }

    /// What is known of it, as kept beside its bytes.
    pub fn describe(&self) -> Value {
        serde_json::json!({
            "input": self.location.input,
            "position": self.location.at,
            "reason": self.reason,
            "raw_bytes": self.raw.map(<[u8]>::len),
        })
    }
}

type Records = BTreeMap<(Space, String), Record>;

/// A store in memory: for tests, and for runs that need no state afterwards.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Records>, StoreError> {
        self.records
            .lock()
            .map_err(|_| StoreError::Backend(Fault::new(FaultClass::Other, "memory store", "lock poisoned by a panic")))
    }
}

/// The live records under a prefix, with their keys, in key order.
type Scanned = Vec<(String, Record)>;

/// A held write made while nothing is held: a defect of the caller.
fn not_holding(put: &Put) -> StoreError {
    let fault = Fault::new(
        FaultClass::Other,
        format!("{}/{}", put.space.as_str(), put.key),
        "a write held while no group is open",
    );
    StoreError::Backend(fault)
}

/// A store that remembers what it read and wrote, for the processing of
/// one event: the engine reads ahead in one step ([`Cached::prefetch`])
/// what it will read one key at a time, and never reads a key twice.
///
/// Writes go through at once, or, between [`Cached::stage`] and
/// [`Cached::flush`], are held and then written as one group
/// ([`Store::put_all`]): each with the condition it was made with, so a
/// concurrent writer still makes the group fail as a whole. Reads see held
/// writes. A write that fails forgets its keys, so the next read asks the
/// store. [`Cached::forget`] starts afresh (between events, and before an
/// event is processed again after a conflict).
#[derive(Debug)]
pub struct Cached<'a, S: ?Sized> {
    inner: &'a S,
    seen: RefCell<HashMap<(Space, String), Option<Record>>>,
    /// Scans read ahead, by space and prefix (dropped on any write to the space).
    scanned: RefCell<HashMap<(Space, String), Scanned>>,
    /// `Some` while writes are held: the writes, in order, each with the
    /// version it will have. Reads see them before what was read.
    staged: RefCell<Option<Vec<Held>>>,
}

/// A write held until the group is written.
#[derive(Debug)]
struct Held {
    put: Put,
    version: u64,
}

impl<'a, S: Store + ?Sized> Cached<'a, S> {
    /// Nothing remembered yet.
    pub fn new(inner: &'a S) -> Self {
        Self { inner, seen: RefCell::default(), scanned: RefCell::default(), staged: RefCell::default() }
    }

    /// Forgets everything read, and drops writes held and not yet written.
    pub fn forget(&self) {
        self.seen.borrow_mut().clear();
        self.scanned.borrow_mut().clear();
        self.staged.borrow_mut().take();
    }

    /// Holds writes from now on, until [`Cached::flush`].
    pub fn stage(&self) {
        self.staged.borrow_mut().get_or_insert_with(Vec::new);
    }

    /// Writes what is held as one group and keeps holding writes. Nothing
    /// held: no call.
    pub fn flush(&self) -> Result<(), StoreError> {
        let held = match self.staged.borrow_mut().as_mut() {
            Some(held) if !held.is_empty() => std::mem::take(held),
            _ => return Ok(()),
        };
        self.write_group(held.into_iter().map(|h| h.put).collect()).map(|_| ())
    }

    /// Writes what is held and stops holding writes.
    pub fn finish(&self) -> Result<(), StoreError> {
        let flushed = self.flush();
        self.staged.borrow_mut().take();
        flushed
    }

    /// Reads `keys` not yet known and scans `prefixes`, at once.
    pub fn prefetch(
        &self,
        keys: &[(Space, String)],
        prefixes: &[(Space, String)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let wanted: Vec<(Space, String)> = {
            let seen = self.seen.borrow();
            let mut wanted: Vec<(Space, String)> = keys
                .iter()
                .filter(|(sp, k)| !seen.contains_key(&(*sp, k.clone())) && !self.is_held(*sp, k))
                .cloned()
                .collect();
            wanted.sort();
            wanted.dedup();
            wanted
        };
        let scans: Vec<(Space, String)> = {
            let scanned = self.scanned.borrow();
            prefixes.iter().filter(|p| !scanned.contains_key(*p)).cloned().collect()
        };
        if wanted.is_empty() && scans.is_empty() {
            return Ok(());
        }
        let read = self.inner.read_ahead(&wanted, &scans, now)?;
        self.seen.borrow_mut().extend(wanted.into_iter().zip(read.records));
        self.scanned.borrow_mut().extend(scans.into_iter().zip(read.scanned));
        Ok(())
    }

    /// Writes a group at once: what it wrote is what the next read sees
    /// (the documents move into the memory), a failure forgets its keys.
    fn write_group(&self, puts: Vec<Put>) -> Result<Vec<u64>, StoreError> {
        self.scanned.borrow_mut().retain(|(s, _), _| !puts.iter().any(|p| p.space == *s));
        let written = self.inner.put_all(&puts);
        let mut seen = self.seen.borrow_mut();
        match &written {
            Ok(versions) => {
                for (p, &version) in puts.into_iter().zip(versions) {
                    seen.insert((p.space, p.key), Some(Record { value: p.value, version, expires_at: p.expires_at }));
                }
            }
            Err(_) => {
                for p in puts {
                    seen.remove(&(p.space, p.key));
                }
            }
        }
        written
    }

    /// Holds a write, or folds it into the held write of the same key, and
    /// answers the version it will have. A write with no condition takes the
    /// current version as its condition (read once, if not known).
    fn hold(&self, mut put: Put) -> Result<u64, StoreError> {
        self.scanned.borrow_mut().retain(|(space, _), _| *space != put.space);
        let mut staged = self.staged.borrow_mut();
        let Some(held) = staged.as_mut() else { return Err(not_holding(&put)) };
        if let Some(h) = held.iter_mut().find(|h| h.put.space == put.space && h.put.key == put.key) {
            // The held write is the current record: the new write must
            // expect it, and the group keeps the first write's condition.
            let current = Stamp { version: h.version, expires_at: h.put.expires_at };
            next_version(put.space, &put.key, Some(current), put.expect, put.now)?;
            h.put.value = put.value;
            h.put.expires_at = put.expires_at;
            return Ok(h.version);
        }
        drop(staged);
        if put.expect == Expect::Any {
            let current = self.get(put.space, &put.key, put.now)?;
            put.expect = Expect::from_current(current.map(|r| r.version));
        }
        let version = match put.expect {
            Expect::Version(v) => v + 1,
            Expect::Absent | Expect::Any => 1,
        };
        if let Some(held) = self.staged.borrow_mut().as_mut() {
            held.push(Held { put, version });
        }
        Ok(version)
    }

    /// Whether a write of `key` is held.
    fn is_held(&self, space: Space, key: &str) -> bool {
        self.staged.borrow().as_ref().is_some_and(|h| h.iter().any(|h| h.put.space == space && h.put.key == key))
    }

    /// The record a held write will leave, if `key` has one.
    fn held(&self, space: Space, key: &str) -> Option<Record> {
        let staged = self.staged.borrow();
        let h = staged.as_ref()?.iter().find(|h| h.put.space == space && h.put.key == key)?;
        Some(Record { value: h.put.value.clone(), version: h.version, expires_at: h.put.expires_at })
    }

    fn holding(&self) -> bool {
        self.staged.borrow().is_some()
    }
}

impl<S: Store + ?Sized> Store for Cached<'_, S> {
    fn get(&self, space: Space, key: &str, now: DateTime<Utc>) -> Result<Option<Record>, StoreError> {
        if let Some(held) = self.held(space, key) {
            return Ok(Some(held).filter(|r| r.live(now)));
        }
        if let Some(known) = self.seen.borrow().get(&(space, key.to_owned())) {
            return Ok(known.clone().filter(|r| r.live(now)));
        }
        let record = self.inner.get(space, key, now)?;
        self.seen.borrow_mut().insert((space, key.to_owned()), record.clone());
        Ok(record)
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
        let put = Put { space, key: key.to_owned(), value, expect, expires_at, now };
        if self.holding() {
            return self.hold(put);
        }
        self.write_group(vec![put]).map(|versions| versions[0])
    }

    fn put_all(&self, puts: &[Put]) -> Result<Vec<u64>, StoreError> {
        if self.holding() {
            return puts.iter().map(|p| self.hold(p.clone())).collect();
        }
        self.write_group(puts.to_vec())
    }

    fn scan(&self, space: Space, prefix: &str, now: DateTime<Utc>) -> Result<Vec<(String, Record)>, StoreError> {
        if let Some(known) = self.scanned.borrow().get(&(space, prefix.to_owned())) {
            return Ok(known.iter().filter(|(_, r)| r.live(now)).cloned().collect());
        }
        self.inner.scan(space, prefix, now)
    }

    fn delete(&self, space: Space, key: &str) -> Result<(), StoreError> {
        // Deletes are not held: what is held goes first, keeping the order.
        self.flush()?;
        self.scanned.borrow_mut().retain(|(s, _), _| *s != space);
        let deleted = self.inner.delete(space, key);
        self.seen.borrow_mut().remove(&(space, key.to_owned()));
        deleted
    }

    fn get_many(&self, keys: &[(Space, String)], now: DateTime<Utc>) -> Result<Vec<Option<Record>>, StoreError> {
        self.prefetch(keys, &[], now)?;
        keys.iter().map(|(space, key)| self.get(*space, key, now)).collect()
    }

    fn unpublished_alerts(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.inner.unpublished_alerts(before, now)
    }
}

/// Applies `expect` to the current record and returns the next version:
/// the one rule every store implementation shares.
pub fn next_version(
    space: Space,
    key: &str,
    current: Option<Stamp>,
    expect: Expect,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let current = current.filter(|r| r.live(now));
    let ok = match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) => true,
        (Expect::Version(v), Some(r)) => r.version == v,
        _ => false,
    };
    if !ok {
        return Err(StoreError::Conflict { space: space.as_str(), key: key.to_owned() });
    }
    Ok(current.map_or(1, |r| r.version + 1))
}

impl Store for MemoryStore {
    fn get(&self, space: Space, key: &str, now: DateTime<Utc>) -> Result<Option<Record>, StoreError> {
        Ok(self.lock()?.get(&(space, key.to_owned())).filter(|r| r.live(now)).cloned())
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
        let mut records = self.lock()?;
        let k = (space, key.to_owned());
        let version = next_version(space, key, records.get(&k).map(Record::stamp), expect, now)?;
        records.insert(k, Record { value, version, expires_at });
        Ok(version)
    }

    fn delete(&self, space: Space, key: &str) -> Result<(), StoreError> {
        self.lock()?.remove(&(space, key.to_owned()));
        Ok(())
    }

    fn put_all(&self, puts: &[Put]) -> Result<Vec<u64>, StoreError> {
        let mut records = self.lock()?;
        // Every condition first: nothing is written unless all hold.
        let versions = puts
            .iter()
            .map(|p| {
                next_version(
                    p.space,
                    &p.key,
                    records.get(&(p.space, p.key.clone())).map(Record::stamp),
                    p.expect,
                    p.now,
                )
            })
            .collect::<Result<Vec<u64>, StoreError>>()?;
        for (p, version) in puts.iter().zip(&versions) {
            let record = Record { value: p.value.clone(), version: *version, expires_at: p.expires_at };
            records.insert((p.space, p.key.clone()), record);
        }
        Ok(versions)
    }

    fn scan(&self, space: Space, prefix: &str, now: DateTime<Utc>) -> Result<Vec<(String, Record)>, StoreError> {
        let records = self.lock()?;
        Ok(records
            .range((space, prefix.to_owned())..)
            .take_while(|((s, k), _)| *s == space && k.starts_with(prefix))
            .filter(|(_, r)| r.live(now))
            .map(|((_, k), r)| (k.clone(), r.clone()))
            .collect())
    }
}
