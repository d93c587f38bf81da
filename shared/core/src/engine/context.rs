//! One event as every stage sees it: what was written, where, when, by whom.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::Engine;
use crate::actor::Actor;
use crate::alert::{IdentityStatus, Resource};
use crate::audit::Verb;
use crate::decode::{EventRecord, Outcome};
use crate::keys::ObjectKey;
use crate::store::{Store, StoreError};

/// An audit event, resolved once and handed to each stage.
pub(super) struct EventContext<'r> {
    /// The decoded record.
    pub record: &'r EventRecord,
    /// The cluster it came from (the log group's, else the policy's).
    pub cluster: String,
    /// When the change happened.
    pub time: DateTime<Utc>,
    /// The write.
    pub verb: Verb,
    /// The object written, as a store key.
    pub object: ObjectKey,
    /// The object, as alerts name it.
    pub resource: Resource,
    /// Who wrote it, with what CloudTrail knows of their credentials.
    pub actor: Actor,
    /// The key the actor's signals are grouped by.
    pub actor_key: String,
    /// The write was refused by authorization.
    pub denied: bool,
    /// What every signal of the event says besides its own evidence (where
    /// its time came from, that it arrived late).
    pub notes: Map<String, Value>,
}

impl EventContext<'_> {
    /// The audit id.
    pub fn audit_id(&self) -> &str {
        &self.record.event.audit_id
    }

    /// The namespace (empty for cluster-scoped objects).
    pub fn namespace(&self) -> &str {
        &self.object.namespace
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.object.name
    }
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// The object an event writes; `None` for an object of no tracked kind.
    pub(super) fn object_of(&self, record: &EventRecord) -> Option<ObjectKey> {
        let object = &record.event.object_ref;
        Some(ObjectKey {
            cluster: self.policy.cluster_of(&record.source),
            kind: object.kind()?,
            namespace: object.namespace.clone().unwrap_or_default(),
            name: object.name.clone().unwrap_or_default(),
        })
    }

    /// When an event happened: its own time; without one, its delivery's;
    /// without that, the time this run started. Never the epoch. The note
    /// says where a time that is not the event's own came from.
    pub(super) fn time_of(&self, record: &EventRecord) -> (DateTime<Utc>, Option<Value>) {
        let why = "the audit event carries no stageTimestamp or requestReceivedTimestamp";
        match (record.event.time(), record.delivered_at) {
            (Some(t), _) => (t, None),
            (None, Some(d)) => (d, Some(json!({"source": "delivery", "reason": why}))),
            (None, None) => (self.now, Some(json!({"source": "processing", "reason": why}))),
        }
    }

    /// The context of a relevant event; `None` for an object of no tracked kind.
    pub(super) fn context<'r>(&self, record: &'r EventRecord) -> Result<Option<EventContext<'r>>, StoreError> {
        let event = &record.event;
        let Some(object) = self.object_of(record) else { return Ok(None) };
        let (time, time_note) = self.time_of(record);
        let cluster = object.cluster.clone();
        let mut actor = self.resolve(Actor::from_event(event), time)?;
        if actor.service_account.is_some() {
            actor.possible_origins = self.possible_origins(&actor, &object.cluster, time)?;
        }
        let actor_key = actor.key(|s| self.policy.is_generic_session(s));
        let mut notes = Map::new();
        if let Some(note) = time_note {
            notes.insert("event_time".into(), note);
        }
        let resource = Resource {
            kind: event.object_ref.resource.clone(),
            namespace: event.object_ref.namespace.clone(),
            name: event.object_ref.name.clone(),
        };
        Ok(Some(EventContext {
            record,
            cluster,
            time,
            verb: event.verb(),
            object,
            resource,
            actor,
            actor_key,
            denied: record.outcome == Outcome::Denied,
            notes,
        }))
    }

    /// How far an actor is known, by the policy's idea of a telling session name.
    pub(super) fn identity_status(&self, actor: &Actor) -> IdentityStatus {
        let generic = actor.session_name.as_deref().is_none_or(|s| self.policy.is_generic_session(s));
        IdentityStatus::of(actor, generic)
    }

    /// Fills in what identity records know about the actor's credentials
    /// (an IAM user or the root user is its own origin already).
    pub(super) fn resolve(&self, mut actor: Actor, time: DateTime<Utc>) -> Result<Actor, StoreError> {
        if actor.originating_principal.is_some() {
            return Ok(actor);
        }
        if let Some(origin) = self.lookup_origin(actor.access_key_id.as_deref(), actor.iam_arn.as_deref(), time)? {
            origin.apply(&mut actor);
        }
        Ok(actor)
    }
}
