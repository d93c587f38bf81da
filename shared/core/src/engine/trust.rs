//! Trust: an audit event is believed only if it came the way audit events
//! come. One from a log group or account the stack does not watch, or dated
//! implausibly far ahead of its delivery (or of now), may have been written
//! by someone who can write to a log group or the export bucket, to plant a
//! change or to blind an object with a date in the future. It is quarantined,
//! never applied, and raises `pipeline.forged-event` against the source that
//! delivered it: what it claims about its actor is data, not evidence.

use serde_json::{Value, json};

use super::correlate::Attribution;
use super::{Engine, EngineError};
use crate::actor::Actor;
use crate::alert::{IdentityStatus, Resource};
use crate::cloudtrail::PipelineNames;
use crate::decode::EventRecord;
use crate::rules::{Finding, RuleId};
use crate::store::{Quarantined, Sink, Store};

/// Why an event is not believed.
pub(super) struct Distrust {
    /// In words.
    pub reason: String,
    /// As data.
    pub evidence: Value,
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Why `record` cannot be trusted, if it cannot.
    pub(super) fn distrust(&self, record: &EventRecord) -> Option<Distrust> {
        let pipeline = &self.policy.pipeline;
        let source = &record.source;
        let base = json!({"owner": source.owner, "log_group": source.log_group, "log_stream": source.log_stream,
                          "delivered_at": record.delivered_at, "claimed_time": record.event.time()});
        let with = |reason: String| Distrust { reason, evidence: base.clone() };
        if let Some(group) = &source.log_group
            && !pipeline.log_group(group)
        {
            return Some(with(format!("delivered from log group {group}, which the stack does not watch")));
        }
        if let Some(owner) = &source.owner
            && !pipeline.accounts.is_empty()
            && !pipeline.accounts.iter().any(|a| a == owner)
        {
            return Some(with(format!("delivered from account {owner}, which the stack does not watch")));
        }
        let skew = pipeline.max_clock_skew.0;
        let claimed = record.event.time()?;
        if let Some(delivered) = record.delivered_at
            && claimed > delivered + skew
        {
            let ahead = (claimed - delivered).num_seconds();
            return Some(with(format!("dated {claimed}, {ahead}s after its delivery at {delivered}")));
        }
        if claimed > self.now + skew {
            let ahead = (claimed - self.now).num_seconds();
            return Some(with(format!("dated {claimed}, {ahead}s in the future")));
        }
        None
    }

    /// Quarantines an untrusted event and raises `pipeline.forged-event`
    /// against the source that delivered it.
    pub(super) fn quarantine_untrusted(
        &mut self,
        record: &EventRecord,
        distrust: &Distrust,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let reason = format!("untrusted audit event: {}", distrust.reason);
        sink.quarantine(&Quarantined { location: &record.location, reason: &reason, raw: Some(&record.raw) })?;
        self.stats.quarantined += 1;
        let event = &record.event;
        let source = &record.source;
        let writer = match (&source.owner, &source.log_group) {
            (Some(owner), Some(group)) => format!("{owner}:{group}"),
            (None, Some(group)) => group.clone(),
            _ => record.location.input.to_string(),
        };
        let actor = Actor { kubernetes_username: format!("unknown writer of {writer}"), ..Actor::default() };
        let actor_key = format!("source:{writer}");
        let resource = Resource {
            kind: event.object_ref.resource.clone(),
            namespace: event.object_ref.namespace.clone(),
            name: event.object_ref.name.clone(),
        };
        let mut evidence = distrust.evidence.clone();
        evidence["claimed_user"] = json!(event.user.username);
        evidence["claimed_verb"] = json!(event.verb);
        evidence["quarantined_at"] = json!(record.location.to_string());
        let finding =
            Finding::new(RuleId::ForgedEvent, format!("audit event not believed: {}", distrust.reason), &evidence);
        let time = record.delivered_at.unwrap_or(self.now);
        let signals: Vec<_> = self.signal(finding, &resource, &event.audit_id, time).into_iter().collect();
        let cluster = self.policy.cluster_of(&record.source);
        let by =
            Attribution { cluster: &cluster, actor: &actor, actor_key: &actor_key, status: IdentityStatus::Unresolved };
        self.correlate(&by, signals, false, time, sink).map(|_| ())
    }
}
