//! Baselines: what the engine knows of each tracked object.
//!
//! A baseline remembers the writes applied to one object, in the order they
//! were made (by `resourceVersion` where both writes carry one, else by time;
//! a tie goes after what is already there), and the object's state after the
//! newest few. Two states matter most: the newest write's state is the ground
//! truth the next write is compared with, so each actor is judged on exactly
//! what they changed; `approved` is the object as it last stood with nothing
//! to object to, and alerts carry the drift from it, so "change, then revert"
//! and "two small steps" both show in full.
//!
//! Deliveries arrive out of order (several API-server log streams, unordered
//! asynchronous invocations, retries minutes later). A write that arrives
//! after later ones is placed where it belongs and judged against the write
//! before it; the newest state never moves backwards. Only the same audit id
//! is a duplicate: equal or missing timestamps never make a write disappear.
//!
//! Everything here is bounded so one baseline always fits one DynamoDB item
//! (400 KB): each kept state at most [`STATE_BUDGET`], the states of older
//! writes within [`RECENT_BUDGET`], and at most [`MAX_WRITES`] writes over
//! [`HORIZON`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::bound;
use crate::ingress::IngressState;

/// The most one kept state may take, serialised.
pub const STATE_BUDGET: usize = 64 * 1024;
/// Room for the states of the writes before the newest.
pub const RECENT_BUDGET: usize = 96 * 1024;
/// Writes whose state is kept, newest first.
pub const MAX_STATES: usize = 8;
/// Writes remembered per object (their ids, for duplicates, and their order).
pub const MAX_WRITES: usize = 128;
/// How long writes are remembered, counted back from the newest.
pub const HORIZON: Duration = Duration::days(14);
/// How much of an annotation value too large to keep is kept.
const VALUE_EXCERPT: usize = 256;

/// What is known of an object's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectState {
    /// An Ingress, modelled.
    Ingress(IngressState),
    /// A Service: its type and, for ExternalName, where it points.
    Service {
        /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
        service_type: Option<String>,
        /// The DNS name an ExternalName service resolves to.
        external_name: Option<String>,
    },
    /// Written, but its body is not logged (Secrets, ConfigMaps, Gateway API on EKS).
    Opaque,
    /// An object the manifest rules read, where its body is known (a
    /// controller ConfigMap or a Gateway API object from a seeded baseline,
    /// or logged by a cluster whose audit policy keeps bodies): its `spec`
    /// and `data`.
    Manifest(serde_json::Value),
    /// Deleted.
    Deleted,
    /// An Ingress too large to keep even with its annotation values cut:
    /// the next write is judged on its own.
    Oversized {
        /// The sha256 of the state.
        sha256: String,
        /// Its serialised size.
        bytes: usize,
    },
}

impl ObjectState {
    /// The state as it is kept: an Ingress over [`STATE_BUDGET`] has its
    /// largest annotation values cut to an excerpt and digest, largest first,
    /// until it fits; one that still does not fit is [`ObjectState::Oversized`].
    /// Writes are compared in this form on both sides, so a cut value that
    /// changes still shows as changed.
    pub fn bounded(self) -> Self {
        if let Self::Manifest(body) = &self {
            let bytes = bound::size(body);
            return if bytes <= STATE_BUDGET {
                self
            } else {
                Self::Oversized { sha256: bound::sha256(body.to_string().as_bytes()), bytes }
            };
        }
        let Self::Ingress(mut state) = self else { return self };
        let mut size = bound::size(&state);
        if size <= STATE_BUDGET {
            return Self::Ingress(state);
        }
        let mut largest: Vec<(usize, String)> = state.annotations.iter().map(|(k, v)| (v.len(), k.clone())).collect();
        largest.sort_by(|a, b| b.cmp(a));
        for (len, key) in largest {
            if size <= STATE_BUDGET || len <= VALUE_EXCERPT * 2 {
                break;
            }
            if let Some(value) = state.annotations.get_mut(&key) {
                let cut = format!(
                    "{}…[cut: {} bytes, sha256:{}]",
                    bound::prefix(value, VALUE_EXCERPT),
                    value.len(),
                    bound::sha256(value.as_bytes())
                );
                size = size + cut.len() - value.len();
                *value = cut;
            }
        }
        let size = bound::size(&state);
        if size <= STATE_BUDGET {
            Self::Ingress(state)
        } else {
            let text = serde_json::to_vec(&state).unwrap_or_default();
            Self::Oversized { sha256: bound::sha256(&text), bytes: size }
        }
    }
}

/// One write applied to an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Its audit id.
    pub audit_id: String,
    /// When it was made.
    pub time: DateTime<Utc>,
    /// The object's `resourceVersion` after it, when logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<u64>,
    /// Who made it (actor key).
    pub actor: String,
    /// The object after it; kept for the newest writes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ObjectState>,
}

impl Write {
    /// True if this write was made before one at `version`/`time` (a tie is before).
    fn before(&self, version: Option<u64>, time: DateTime<Utc>) -> bool {
        match (self.resource_version, version) {
            (Some(a), Some(b)) if a != b => a < b,
            _ => self.time <= time,
        }
    }
}

/// The baseline of one object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// The writes remembered, in the order they were made.
    pub writes: Vec<Write>,
    /// The state after the last write that raised nothing, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<ObjectState>,
    /// Older writes were forgotten: a write placed before every remembered
    /// one has an unknown predecessor.
    #[serde(default)]
    pub trimmed: bool,
}

/// What came before a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Predecessor {
    /// The object as the write before left it.
    Known(Box<ObjectState>),
    /// No write before it: the object is seen for the first time.
    Nothing,
    /// Writes came before it, but their state was not kept.
    Unknown,
}

/// Where a write belongs among those remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Applied already: the same audit id is remembered.
    Duplicate,
    /// Its place: how many remembered writes came before it, and whether it
    /// is the newest (later writes arrived first when it is not).
    At {
        /// Its index among the remembered writes.
        index: usize,
        /// No remembered write came after it.
        newest: bool,
        /// What the write before it left.
        predecessor: Predecessor,
    },
}

impl Baseline {
    /// The newest write.
    pub fn newest(&self) -> Option<&Write> {
        self.writes.last()
    }

    /// The object as the newest write left it.
    pub fn seen(&self) -> Option<&ObjectState> {
        self.newest().and_then(|w| w.state.as_ref())
    }

    /// Where a write with `audit_id`, made at `version`/`time`, belongs.
    pub fn place(&self, audit_id: &str, version: Option<u64>, time: DateTime<Utc>) -> Placement {
        if self.writes.iter().any(|w| w.audit_id == audit_id) {
            return Placement::Duplicate;
        }
        let index = self.writes.iter().rposition(|w| w.before(version, time)).map_or(0, |i| i + 1);
        let predecessor = match index.checked_sub(1).map(|i| &self.writes[i]) {
            Some(w) => w.state.clone().map_or(Predecessor::Unknown, |s| Predecessor::Known(Box::new(s))),
            None if self.trimmed => Predecessor::Unknown,
            None => Predecessor::Nothing,
        };
        Placement::At { index, newest: index == self.writes.len(), predecessor }
    }

    /// Remembers a write at `index` (from [`Baseline::place`]), then forgets
    /// what no longer fits the bounds.
    pub fn record(&mut self, index: usize, write: Write) {
        let index = index.min(self.writes.len());
        self.writes.insert(index, write);
        self.trim();
    }

    /// Applies the bounds: writes older than [`HORIZON`] before the newest
    /// or beyond [`MAX_WRITES`] are forgotten; states are kept for the newest
    /// [`MAX_STATES`] writes within [`RECENT_BUDGET`] (the newest always).
    fn trim(&mut self) {
        let Some(newest) = self.newest().map(|w| w.time) else { return };
        let before = self.writes.len();
        let keep_from = self.writes.iter().position(|w| w.time >= newest - HORIZON).unwrap_or(0);
        let keep_from = keep_from.max(self.writes.len().saturating_sub(MAX_WRITES));
        self.writes.drain(..keep_from);
        self.trimmed |= self.writes.len() < before;
        let mut room = RECENT_BUDGET;
        for (n, w) in self.writes.iter_mut().rev().enumerate() {
            if n == 0 {
                continue;
            }
            let Some(state) = &w.state else { continue };
            let size = bound::size(state);
            if n >= MAX_STATES || size > room {
                w.state = None;
            } else {
                room -= size;
            }
        }
    }

    /// The states kept, by audit id: for reports and tests.
    pub fn kept_states(&self) -> BTreeMap<&str, &ObjectState> {
        self.writes.iter().filter_map(|w| w.state.as_ref().map(|s| (w.audit_id.as_str(), s))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn write(id: &str, time: &str, version: Option<u64>) -> Write {
        Write {
            audit_id: id.into(),
            time: t(time),
            resource_version: version,
            actor: "a".into(),
            state: Some(ObjectState::Opaque),
        }
    }

    fn baseline(writes: &[Write]) -> Baseline {
        let mut b = Baseline::default();
        for w in writes {
            let Placement::At { index, .. } = b.place(&w.audit_id, w.resource_version, w.time) else {
                panic!("duplicate")
            };
            b.record(index, w.clone());
        }
        b
    }

    #[test]
    fn only_the_same_audit_id_is_a_duplicate() {
        let b = baseline(&[write("a", "2024-05-01T10:00:00Z", None)]);
        assert_eq!(b.place("a", None, t("2024-05-01T09:00:00Z")), Placement::Duplicate);
        // Same time, another id: a distinct write, placed after.
        let Placement::At { index, newest, .. } = b.place("b", None, t("2024-05-01T10:00:00Z")) else { panic!() };
        assert_eq!((index, newest), (1, true));
    }

    #[test]
    fn a_late_write_is_placed_by_resource_version_then_time() {
        let b = baseline(&[write("a", "2024-05-01T10:00:00Z", Some(5)), write("c", "2024-05-01T10:00:02Z", Some(9))]);
        // Version 7 belongs between them, whatever its clock says.
        let expected =
            Placement::At { index: 1, newest: false, predecessor: Predecessor::Known(Box::new(ObjectState::Opaque)) };
        assert_eq!(b.place("b", Some(7), t("2024-05-01T11:00:00Z")), expected);
        // Without versions, time decides; before everything is a first sight.
        match b.place("z", None, t("2024-05-01T09:00:00Z")) {
            Placement::At { index: 0, newest: false, predecessor: Predecessor::Nothing } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn writes_and_states_are_bounded() {
        let mut b = Baseline::default();
        let start = t("2024-05-01T00:00:00Z");
        for i in 0..300 {
            let time = start + Duration::minutes(i);
            let Placement::At { index, .. } = b.place(&format!("w{i}"), None, time) else { panic!() };
            b.record(index, Write { time, ..write(&format!("w{i}"), "2024-05-01T00:00:00Z", None) });
        }
        assert_eq!(b.writes.len(), MAX_WRITES);
        assert!(b.trimmed);
        assert_eq!(b.kept_states().len(), MAX_STATES);
        assert!(b.seen().is_some());
        // Forgotten writes make the predecessor of an older one unknown.
        assert!(matches!(b.place("old", None, start), Placement::At { predecessor: Predecessor::Unknown, .. }));
    }

    #[test]
    fn a_huge_ingress_is_kept_with_its_largest_values_cut() {
        let mut state = IngressState::default();
        state.annotations.insert("nginx.ingress.kubernetes.io/server-snippet".into(), "x".repeat(250 * 1024));
        state.annotations.insert("small".into(), "y".into());
        let ObjectState::Ingress(kept) = ObjectState::Ingress(state).bounded() else { panic!("oversized") };
        let cut = &kept.annotations["nginx.ingress.kubernetes.io/server-snippet"];
        assert!(cut.len() < 1024 && cut.contains("256000 bytes"), "{cut}");
        assert_eq!(kept.annotations["small"], "y");
        assert!(bound::size(&kept) <= STATE_BUDGET);
    }
}
