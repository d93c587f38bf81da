//! Baselines: what the engine knows of each tracked object.
//!
//! Two states are kept apart. `seen` is the object as last written, the
//! ground truth that the next write is compared with, so each actor is judged
//! on exactly what they changed. `approved` is the object as it last stood
//! with nothing to object to (an approved change, or one that raised no
//! signal); alerts carry the drift from it, so "change, then revert" and
//! "two small steps" both show in full.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ingress::IngressState;

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
    /// Deleted.
    Deleted,
}

/// The baseline of one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// The state after the last write.
    pub seen: ObjectState,
    /// The state after the last write that raised nothing, if any.
    pub approved: Option<ObjectState>,
    /// Time of the last write applied.
    pub time: DateTime<Utc>,
    /// Audit id of the last write applied.
    pub audit_id: String,
    /// Who made the last write (actor key).
    pub actor: String,
}

impl Baseline {
    /// True if an event at `time` with `audit_id` was already applied, or is
    /// older than what was: replays and duplicate deliveries stop here.
    pub fn covers(&self, time: DateTime<Utc>, audit_id: &str) -> bool {
        (time, audit_id) <= (self.time, self.audit_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_applied_or_older_event_is_covered() {
        let t: DateTime<Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
        let b =
            Baseline { seen: ObjectState::Opaque, approved: None, time: t, audit_id: "b".into(), actor: "x".into() };
        assert!(b.covers(t, "b"));
        assert!(b.covers(t, "a"));
        assert!(!b.covers(t, "c"));
        assert!(b.covers(t - chrono::Duration::seconds(1), "z"));
        assert!(!b.covers(t + chrono::Duration::seconds(1), "a"));
    }
}
