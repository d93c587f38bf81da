//! Correlation and publication: findings become signals (policy severities,
//! sensitive namespaces, suppressions, bounded evidence), signals join the
//! actor's open incident, and each new revision of its alert is recorded,
//! published, and only then marked published, so a crash in between
//! republishes, never skips. An incident whose alert is full continues in a
//! new alert that names the one before it, so no alert outgrows a DynamoDB
//! item or an SNS message.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::assess::Assessment;
use super::context::EventContext;
use super::judge::Verdict;
use super::{Engine, EngineError};
use crate::actor::Actor;
use crate::alert::{Alert, AlertRecord, IdentityStatus, Incident, Resource, Revised, RevisionRecord, Signal, alert_id};
use crate::baseline::ObjectState;
use crate::bound;
use crate::ingress::diff::diff;
use crate::keys;
use crate::rules::{Finding, RuleId};
use crate::store::{AlertStore, Expect, Incidents, Put, Sink, Space, Store, Versioned};

/// The longest summary kept.
const SUMMARY: usize = 512;

/// Most signals an incident holds below the alert threshold (the newest are kept).
const MAX_HELD: usize = 64;

/// Whose signals these are, as correlation groups and alerts name them.
#[derive(Clone, Copy)]
pub(super) struct Attribution<'a> {
    /// The cluster.
    pub cluster: &'a str,
    /// The actor.
    pub actor: &'a Actor,
    /// The key the actor's signals are grouped by.
    pub actor_key: &'a str,
    /// How far the actor is known.
    pub status: IdentityStatus,
}

impl<'a> Attribution<'a> {
    fn of(ctx: &'a EventContext<'_>, status: IdentityStatus) -> Self {
        Self { cluster: &ctx.cluster, actor: &ctx.actor, actor_key: &ctx.actor_key, status }
    }
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// A write refused by authorization: a signal on its own.
    pub(super) fn denied(&mut self, ctx: &EventContext<'_>, sink: &mut dyn Sink) -> Result<(), EngineError> {
        let event = &ctx.record.event;
        let finding = Finding::new(
            RuleId::Denied,
            format!("{} of {} refused by authorization", event.verb, ctx.resource),
            &json!({"verb": event.verb, "status": event.response_status}),
        );
        let mut signals: Vec<Signal> =
            self.signal(finding, &ctx.resource, ctx.audit_id(), ctx.time).into_iter().collect();
        note(&mut signals, &ctx.notes);
        if !signals.is_empty() {
            sink.keep_event(&ctx.cluster, ctx.audit_id(), &ctx.record.raw)?;
        }
        let by = Attribution::of(ctx, self.identity_status(&ctx.actor));
        self.correlate(&by, signals, false, ctx.time, sink).map(|_| ())
    }

    /// Raises the signals of a change that is not approved. Returns true when
    /// there were none (the change is then the new approved state).
    pub(super) fn alert(
        &mut self,
        ctx: &EventContext<'_>,
        a: &Assessment,
        verdict: Verdict,
        sink: &mut dyn Sink,
    ) -> Result<bool, EngineError> {
        let findings = a.findings.iter().cloned().chain(verdict.findings);
        let mut signals: Vec<Signal> =
            findings.filter_map(|f| self.signal(f, &ctx.resource, ctx.audit_id(), ctx.time)).collect();
        // Drift from the last approved state shows what an incident adds up
        // to; once per write (on its first signal), and only for the newest
        // write: a late one did not leave the object as it now stands.
        let approved = a.baseline.as_ref().and_then(|(b, _)| b.approved.as_ref());
        if let (true, Some(ObjectState::Ingress(from)), ObjectState::Ingress(to), Some(first)) =
            (a.newest, approved, &a.new_state, signals.first_mut())
            && let Some(obj) = first.evidence.as_object_mut()
        {
            obj.insert("drift_since_approved".into(), json!(diff(from, to)));
        }
        note(&mut signals, &ctx.notes);
        note(&mut signals, &a.notes);
        let clean = signals.is_empty();
        if !clean {
            sink.keep_event(&ctx.cluster, ctx.audit_id(), &ctx.record.raw)?;
        }
        let mut status = self.identity_status(&ctx.actor);
        let waiting = status == IdentityStatus::Pending && a.material;
        if status == IdentityStatus::Pending && self.policy.identity.unresolved_grace.0.is_zero() {
            status = IdentityStatus::Unresolved;
        }
        let alert_id = self.correlate(&Attribution::of(ctx, status), signals, verdict.plan_ok, ctx.time, sink)?;
        if let (Some(alert_id), true) = (alert_id, waiting && status == IdentityStatus::Pending) {
            self.await_identity(&ctx.actor, &alert_id, &ctx.cluster, &ctx.resource, ctx.audit_id(), ctx.time)?;
        }
        Ok(clean)
    }

    /// Applies severity overrides, sensitive namespaces and suppressions.
    pub(super) fn signal(
        &mut self,
        f: Finding,
        resource: &Resource,
        audit_id: &str,
        time: DateTime<Utc>,
    ) -> Option<Signal> {
        let namespace = resource.namespace.as_deref().unwrap_or_default();
        let name = resource.name.as_deref().unwrap_or_default();
        if !f.rule.protected() && self.policy.suppression(f.rule, namespace, name, time).is_some() {
            self.stats.suppressed += 1;
            return None;
        }
        let mut severity = if self.policy.severity.contains_key(&f.rule) {
            self.policy.severity(f.rule, f.severity)
        } else {
            f.severity
        };
        if f.rule.protected() {
            severity = severity.max(f.severity);
        }
        if self.policy.is_sensitive(namespace) {
            severity = severity.raised();
        }
        self.stats.signals += 1;
        Some(Signal {
            rule: f.rule,
            severity,
            summary: bound::line(&f.summary, SUMMARY),
            evidence: f.evidence,
            audit_id: audit_id.to_owned(),
            time,
            resource: resource.clone(),
        })
    }

    /// Merges signals into the actor's open incident, records the alert and publishes it.
    pub(super) fn correlate(
        &mut self,
        by: &Attribution<'_>,
        signals: Vec<Signal>,
        approved: bool,
        time: DateTime<Utc>,
        sink: &mut dyn Sink,
    ) -> Result<Option<String>, EngineError> {
        if signals.is_empty() {
            return Ok(None);
        }
        let mut signals = signals;
        for s in &mut signals {
            bound::json(&mut s.evidence, &bound::EVIDENCE);
        }
        let Attribution { cluster, actor, actor_key, status } = *by;
        let window = self.policy.correlation.window.0;
        let incident_key = keys::incident(cluster, actor_key);
        // The incident points at its alert; the alert record is the one source of truth.
        let stored = self.store.incident(&incident_key, time)?;
        // Written on the condition that no one else wrote it since this read
        // (a race processes the event again, from fresh reads): no second read.
        let expect = Expect::from_current(stored.as_ref().map(|i| i.version));
        let open = stored.filter(|i| time <= i.value.last_seen + window);
        // An incident lasts a window past its last signal, and never expires as it is written.
        let expiry = |last_seen: DateTime<Utc>| (last_seen + window).max(time + Duration::seconds(1));
        let last_seen = open.as_ref().map_or(time, |i| i.value.last_seen.max(time));
        let (held, current) = match open {
            Some(i) => {
                let current = match &i.value.alert_id {
                    Some(id) => self.store.stored_alert(id, time)?,
                    None => None,
                };
                (i.value.held, current)
            }
            None => (Vec::new(), None),
        };
        let threshold = self.policy.alert_threshold;
        if current.is_none() && signals.iter().all(|s| s.severity < threshold && !s.rule.protected()) {
            // Below the alert threshold with no alert open: kept with the
            // incident, to join its alert if a louder signal opens one.
            let mut held = held;
            for s in signals {
                if !held.iter().any(|h| h.rule == s.rule && h.audit_id == s.audit_id && h.resource == s.resource) {
                    self.stats.held += 1;
                    held.push(s);
                }
            }
            let start = held.len().saturating_sub(MAX_HELD);
            held.drain(..start);
            let incident = Incident { alert_id: None, last_seen, held };
            self.store.put_incident(&incident_key, &incident, expect, Some(expiry(last_seen)), time)?;
            return Ok(None);
        }
        let (alert, record) = match current {
            Some(record) if record.value.alert.has_room_for(&signals) => {
                let mut alert = record.value.alert.clone();
                alert.merge(signals, approved, actor);
                (alert, Some(record))
            }
            current => {
                // A new alert starts with what the incident held below the threshold.
                let continues = current.map(|r| r.value.alert.alert_id);
                let opening: Vec<Signal> =
                    if continues.is_none() { held.into_iter().chain(signals).collect() } else { signals };
                let again = opening.clone();
                let Some(first) = opening.iter().map(|s| s.time).min() else { return Ok(None) };
                let id = alert_id(cluster, &actor.credential(), window_start(first, window), continues.as_deref());
                let Some(mut new) = Alert::open(id, cluster, actor, actor_key, status, opening, approved) else {
                    return Ok(None);
                };
                // The incident's alert is full: this one continues it.
                new.continues = continues;
                // A rerun after the window closed: the alert record knows this
                // incident already. On a first attempt the write's condition
                // asks instead of a read.
                let known = if self.optimistic { None } else { self.store.stored_alert(&new.alert_id, time)? };
                match known {
                    Some(known) => {
                        let mut alert = known.value.alert.clone();
                        alert.merge(again, approved, actor);
                        (alert, Some(known))
                    }
                    None => (new, None),
                }
            }
        };
        let incident =
            Incident { alert_id: Some(alert.alert_id.clone()), last_seen: alert.last_seen, held: Vec::new() };
        self.store.put_incident(&incident_key, &incident, expect, Some(expiry(alert.last_seen)), time)?;
        self.record_and_publish(&alert, record, time, sink)?;
        Ok(Some(alert.alert_id))
    }

    /// Records an alert revision, publishes it if not yet published, then
    /// marks it published: a crash in between republishes, never skips.
    /// `record` is the alert's stored record as just read (`None`: there is none).
    fn record_and_publish(
        &mut self,
        alert: &Alert,
        record: Option<Versioned<AlertRecord>>,
        time: DateTime<Utc>,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let published = record.as_ref().map_or(0, |r| r.value.published_revision);
        if published >= alert.revision {
            return Ok(());
        }
        let (mut stored, written) = match record {
            // Recorded by an earlier attempt that did not get to publish it.
            Some(r) if r.value.alert.revision >= alert.revision => (r.value, r.version),
            record => {
                let before = record.as_ref().map_or(0, |r| r.value.alert.signals.len());
                let version = record.map(|r| r.version);
                let recorded_at = self.clock();
                let history = RevisionRecord::of(alert, before, recorded_at);
                let stored =
                    AlertRecord { alert: alert.clone(), published_revision: published, recorded_at: Some(recorded_at) };
                // The revision and its history in one group, with every write
                // held before it (the incident): recorded together or not at
                // all, so a history record always has its revision.
                let key = keys::revision(&alert.alert_id, alert.revision);
                let group = [
                    Put::typed(Space::History, &key, &history, Expect::Absent, None, time)?,
                    Put::typed(Space::Alert, &alert.alert_id, &stored, Expect::from_current(version), None, time)?,
                ];
                self.store.put_all(&group)?;
                (stored, version.map_or(1, |v| v + 1))
            }
        };
        // Recorded before it is published.
        self.store.flush()?;
        sink.publish(alert)?;
        stored.published_revision = alert.revision;
        self.store.put_alert(&alert.alert_id, &stored, Expect::Version(written), None, time)?;
        if alert.revision == 1 {
            self.stats.alerts_opened += 1;
        } else {
            self.stats.alerts_updated += 1;
        }
        Ok(())
    }

    /// Applies `change` to the latest revision of an alert; if anything
    /// changed, records and publishes the next revision and returns it.
    pub(super) fn revise(
        &mut self,
        alert_id: &str,
        time: DateTime<Utc>,
        sink: &mut dyn Sink,
        change: impl FnOnce(&mut Alert),
    ) -> Result<Option<Alert>, EngineError> {
        let Some(record) = self.store.stored_alert(alert_id, time)? else { return Ok(None) };
        let before = record.value.alert.clone();
        let mut alert = before.clone();
        change(&mut alert);
        alert.refresh();
        if alert == before {
            return Ok(None);
        }
        alert.revision = before.revision + 1;
        alert.revised_for = if alert.status_changes.len() != before.status_changes.len() {
            Revised::Status
        } else if alert.signals.len() != before.signals.len() {
            Revised::Signals
        } else {
            Revised::Identity
        };
        self.record_and_publish(&alert, Some(record), time, sink)?;
        Ok(Some(alert))
    }
}

/// The start of the correlation window `time` falls in, windows counted from
/// the Unix epoch: the same for every signal of the window, whoever sees it first.
fn window_start(time: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    let size = window.num_seconds().max(1);
    DateTime::from_timestamp(time.timestamp().div_euclid(size) * size, 0).unwrap_or(time)
}

/// Adds what every signal of an event says besides its own evidence.
fn note(signals: &mut [Signal], notes: &serde_json::Map<String, serde_json::Value>) {
    if notes.is_empty() {
        return;
    }
    for s in signals {
        if let Some(obj) = s.evidence.as_object_mut() {
            for (k, v) in notes {
                obj.insert(k.clone(), v.clone());
            }
        } else {
            let evidence = s.evidence.take();
            let mut obj = notes.clone();
            obj.insert("finding".into(), evidence);
            s.evidence = serde_json::Value::Object(obj);
        }
    }
}
