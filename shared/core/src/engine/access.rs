//! Service accounts back to people. A person who execs, attaches or
//! port-forwards into a pod, adds a debug container to it, or requests a
//! token for a service account, holds that service account's power for a
//! while. A write by the service account in that time names them as a
//! possible origin, with the evidence: never as the origin, and never in the
//! key that groups signals, since the pod may have acted on its own.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Engine, EngineError};
use crate::actor::{Actor, PossibleOrigin};
use crate::decode::EventRecord;
use crate::keys;
use crate::store::{Space, Store, StoreError, Typed};

/// Most grants remembered per pod or service account (the newest).
const MAX_GRANTS: usize = 16;

/// The longest a requested token is believed to live (the API server caps it too).
const MAX_TOKEN_LIFETIME: i64 = 48 * 3600;

/// A person holding a pod's or service account's power, for a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Grant {
    /// Who: their origin if CloudTrail named it, else their Kubernetes user.
    pub principal: String,
    /// What they did.
    pub via: String,
    /// From when.
    pub time: DateTime<Utc>,
    /// Until when.
    pub until: DateTime<Utc>,
    /// The audit event.
    pub audit_id: String,
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Remembers that a person reached into a pod or took a service account's token.
    pub(super) fn record_access(&mut self, record: &EventRecord) -> Result<(), EngineError> {
        let event = &record.event;
        let start = event.request_received_timestamp.or(record.time()).unwrap_or(self.now);
        let actor = self.resolve(Actor::from_event(event), start)?;
        if actor.is_machine() {
            // A workload reaching into another is not a person behind it.
            return Ok(());
        }
        let object = &event.object_ref;
        let (namespace, name) =
            (object.namespace.as_deref().unwrap_or_default(), object.name.as_deref().unwrap_or_default());
        let subresource = object.subresource.as_deref().unwrap_or_default();
        let (subject, until, via) = if object.resource == "serviceaccounts" {
            let lifetime = event
                .request_object
                .as_ref()
                .and_then(|b| b.pointer("/spec/expirationSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(3600)
                .clamp(600, MAX_TOKEN_LIFETIME);
            let via = format!("requested a token for service account {namespace}/{name}");
            (format!("sa:{name}"), start + Duration::seconds(lifetime), via)
        } else {
            let what = match subresource {
                "exec" => "exec into",
                "attach" => "attach to",
                "portforward" => "port-forward to",
                _ => "debug container in",
            };
            let via = format!("{what} pod {namespace}/{name}");
            (format!("pod:{name}"), start + self.policy.identity.access_window.0, via)
        };
        let principal = actor.originating_principal.clone().unwrap_or_else(|| actor.kubernetes_username.clone());
        let grant = Grant { principal, via, time: start, until, audit_id: event.audit_id.clone() };
        let cluster = self.policy.cluster_of(&record.source);
        let key = keys::access(&cluster, namespace, &subject);
        let expires = |grants: &Vec<Grant>| grants.iter().map(|g| g.until).max().map(|t| t + Duration::days(1));
        self.store.update_typed::<Vec<Grant>>(Space::Index, &key, start, expires, |current| {
            let mut grants = current.unwrap_or_default();
            if grants.iter().any(|g| g.audit_id == grant.audit_id) {
                return None;
            }
            grants.push(grant.clone());
            grants.sort_by_key(|g| g.time);
            let drop = grants.len().saturating_sub(MAX_GRANTS);
            grants.drain(..drop);
            Some(grants)
        })?;
        self.stats.access += 1;
        Ok(())
    }

    /// The people who held a service account's power at `time`: through its
    /// pod (`pod_name`) or a token requested for it.
    pub(super) fn possible_origins(
        &self,
        actor: &Actor,
        cluster: &str,
        time: DateTime<Utc>,
    ) -> Result<Vec<PossibleOrigin>, StoreError> {
        let Some((namespace, name)) = actor.service_account.as_deref().and_then(|sa| sa.split_once(':')) else {
            return Ok(Vec::new());
        };
        let subjects = actor.pod_name.iter().map(|p| format!("pod:{p}")).chain([format!("sa:{name}")]);
        let mut out = Vec::new();
        for subject in subjects {
            let grants =
                self.store.get_typed::<Vec<Grant>>(Space::Index, &keys::access(cluster, namespace, &subject), time)?;
            for g in grants.map(|g| g.value).unwrap_or_default() {
                if g.time <= time && time <= g.until && !out.iter().any(|o: &PossibleOrigin| o.audit_id == g.audit_id) {
                    out.push(PossibleOrigin { principal: g.principal, via: g.via, time: g.time, audit_id: g.audit_id });
                }
            }
        }
        Ok(out)
    }
}
