//! CloudTrail in the engine: identity records, late resolution of IAM
//! sessions, pipeline tampering and cluster-access changes.
//!
//! CloudTrail lands minutes after the audit events it explains. An alert on
//! a session whose name says nothing (`EKSGetTokenAuth`) therefore waits: it
//! is published at once with `identity_status: pending`, and a pending entry
//! remembers which events it covers. When the identity record arrives, the
//! alert is revised under the same id with the origin, and re-judged (the
//! origin may not be an approved actor). When the grace period passes first,
//! `identity.unresolved` joins the alert.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::correlate::Attribution;
use super::{Engine, EngineError};
use crate::actor::{Actor, Credential, IdentityRecord};
use crate::alert::{IdentityStatus, Incident, Resource, Signal};
use crate::cloudtrail::{self, Caller, Meaning};
use crate::decode::CloudTrailRecord;
use crate::keys;
use crate::rules::{Finding, RuleId};
use crate::store::{Expect, Identities, Incidents, Sink, Space, Store, StoreError, Typed};

/// How many links of a role chain are followed before giving up.
const MAX_CHAIN: usize = 8;

/// An alert waiting for CloudTrail to name the origin of its session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The alert.
    pub alert_id: String,
    /// Its cluster.
    pub cluster: String,
    /// When `identity.unresolved` fires if nothing arrives.
    pub deadline: DateTime<Utc>,
    /// The changes made with the session.
    pub events: Vec<PendingEvent>,
    /// `identity.unresolved` has fired; a late record still enriches the alert.
    #[serde(default)]
    pub fired: bool,
}

/// One change made with an unresolved session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingEvent {
    /// Its audit id.
    pub audit_id: String,
    /// When.
    pub time: DateTime<Utc>,
    /// What it changed.
    pub resource: Resource,
}

fn session_key(arn: &str) -> String {
    keys::identity(&Credential::Session(arn.to_owned()))
}

fn access_key(key: &str) -> String {
    keys::identity(&Credential::AccessKey(key.to_owned()))
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// The identity record behind an access key or session ARN, following
    /// role chains (a record whose origin is itself a session) to their end.
    pub(super) fn lookup_origin(
        &self,
        access: Option<&str>,
        session: Option<&str>,
        time: DateTime<Utc>,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        let mut found = None;
        for key in access.map(access_key).into_iter().chain(session.map(session_key)) {
            if let Some(r) = self.store.identity(&key, time)? {
                found = Some(r.value);
                break;
            }
        }
        let Some(mut record) = found else { return Ok(None) };
        let mut seen = vec![record.originating_principal.clone()];
        for _ in 0..MAX_CHAIN {
            if !record.originating_principal.starts_with("arn:aws:sts::") {
                break;
            }
            let Some(next) = self.store.identity(&session_key(&record.originating_principal), time)? else { break };
            if seen.contains(&next.value.originating_principal) {
                break;
            }
            seen.push(next.value.originating_principal.clone());
            let source_identity = record.source_identity.take();
            record = IdentityRecord {
                source_identity: source_identity.or(next.value.source_identity.clone()),
                ..next.value
            };
        }
        Ok(Some(record))
    }

    /// Who is behind the caller of a CloudTrail event, as far as is known.
    fn origin_of(&self, e: &cloudtrail::CloudTrailEvent) -> Result<Option<String>, StoreError> {
        Ok(match cloudtrail::caller(e) {
            Caller::Origin(origin) => Some(origin),
            Caller::Session { access_key_id, session_arn } => self
                .lookup_origin(access_key_id.as_deref(), session_arn.as_deref(), e.event_time)?
                .map(|r| r.originating_principal),
        })
    }

    /// Processes one CloudTrail event.
    pub fn process_cloudtrail(&mut self, record: &CloudTrailRecord, sink: &mut dyn Sink) -> Result<(), EngineError> {
        let e = &record.event;
        self.stats.events += 1;
        let time = e.event_time;
        let origin = self.origin_of(e)?;
        match cloudtrail::classify(e, &self.policy.pipeline) {
            Meaning::Issuer => {
                let (key, session, expiry) = cloudtrail::issued(e);
                // Fall back to the caller's session, so chains still resolve later.
                let Some(origin) = origin.or_else(|| e.user_identity.arn.clone()) else { return Ok(()) };
                let identity = cloudtrail::record(e, origin);
                // Kept past expiry for audit events that arrive late.
                // An expiry before issuance is bad data: assume the longest session.
                let expires = expiry.filter(|x| *x > time).unwrap_or(time + Duration::hours(12)) + Duration::days(1);
                let credentials: Vec<Credential> =
                    key.map(Credential::AccessKey).into_iter().chain(session.map(Credential::Session)).collect();
                for c in &credentials {
                    self.store.put_identity(&keys::identity(c), &identity, Expect::Any, Some(expires), time)?;
                }
                for c in &credentials {
                    self.resolve_pending(c, &identity, time, sink)?;
                }
                Ok(())
            }
            Meaning::Tampering(what) => self.cloudtrail_signal(e, RuleId::PipelineTampering, what, origin, sink),
            Meaning::AccessChange(what) => self.cloudtrail_signal(e, RuleId::AccessChanged, what, origin, sink),
            Meaning::Other => Ok(()),
        }
    }

    fn cloudtrail_signal(
        &mut self,
        e: &cloudtrail::CloudTrailEvent,
        rule: RuleId,
        what: String,
        origin: Option<String>,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let u = &e.user_identity;
        let actor = Actor {
            iam_arn: u.arn.clone(),
            role_arn: u.arn.as_deref().and_then(crate::actor::role_of_session_arn),
            access_key_id: u.access_key_id.clone(),
            session_name: u
                .arn
                .as_deref()
                .filter(|a| a.contains(":assumed-role/"))
                .and_then(|a| a.rsplit('/').next())
                .map(str::to_owned),
            originating_principal: origin,
            source_ips: e.source_ip_address.iter().cloned().collect(),
            user_agent: e.user_agent.clone(),
            ..Actor::default()
        };
        let params = e.request_parameters.as_ref();
        let text = |k: &str| params.and_then(|p| p.get(k)).and_then(|v| v.as_str());
        let cluster = match e.event_source.as_str() {
            "eks.amazonaws.com" => text("name").map(str::to_owned),
            "logs.amazonaws.com" => text("logGroupName")
                .and_then(|g| g.strip_prefix("/aws/eks/"))
                .and_then(|g| g.strip_suffix("/cluster"))
                .map(str::to_owned),
            _ => None,
        }
        .unwrap_or_else(|| self.policy.cluster.clone());
        let target = ["name", "logGroupName", "trailName", "functionName", "topicArn", "tableName", "bucketName"]
            .iter()
            .find_map(|k| text(k))
            .map(cloudtrail::percent_decode);
        let resource = Resource {
            kind: format!("aws:{}", e.event_source.trim_end_matches(".amazonaws.com")),
            namespace: None,
            name: target,
        };
        let mut f = Finding::new(rule, what, &json!({"event_name": e.event_name, "request_parameters": params}));
        if rule == RuleId::AccessChanged
            && text("policyArn").is_some_and(|p| p.ends_with("AmazonEKSClusterAdminPolicy"))
        {
            f.severity = crate::rules::Severity::Critical;
        }
        let Some(signal) = self.signal(f, &resource, &e.event_id, e.event_time) else { return Ok(()) };
        let actor_key = actor.key(|s| self.policy.is_generic_session(s));
        let by = Attribution {
            cluster: &cluster,
            actor: &actor,
            actor_key: &actor_key,
            status: self.identity_status(&actor),
        };
        self.correlate(&by, vec![signal], false, e.event_time, sink).map(|_| ())
    }

    /// Remembers that an alert waits for CloudTrail to name its session's origin.
    pub(super) fn await_identity(
        &mut self,
        actor: &Actor,
        alert_id: &str,
        cluster: &str,
        resource: &Resource,
        audit_id: &str,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key = keys::pending(&actor.credential(), alert_id);
        let deadline = time + self.policy.identity.unresolved_grace.0;
        let event = PendingEvent { audit_id: audit_id.to_owned(), time, resource: resource.clone() };
        // Kept well past the deadline: expiry only cleans up.
        let expires = |p: &Pending| Some(p.deadline + Duration::days(7));
        let written = self.store.update_typed::<Pending>(Space::Pending, &key, time, expires, |current| {
            let mut pending = current.unwrap_or_else(|| Pending {
                alert_id: alert_id.to_owned(),
                cluster: cluster.to_owned(),
                deadline,
                events: Vec::new(),
                fired: false,
            });
            if pending.events.iter().any(|e| e.audit_id == audit_id && e.resource == *resource) {
                return None;
            }
            if pending.fired {
                // A new change with the same session: wait again, for it.
                pending.fired = false;
                pending.deadline = deadline;
            }
            pending.events.push(event.clone());
            Some(pending)
        })?;
        // Only a known earliest deadline can be moved; an unknown one makes the next tick scan.
        if let (Some(pending), Some(known)) = (written, self.next_deadline) {
            self.next_deadline = Some(Some(known.map_or(pending.deadline, |d| d.min(pending.deadline))));
        }
        Ok(())
    }

    /// Drops a pending entry.
    fn forget_pending(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(Space::Pending, key)
    }

    /// Enriches the alerts waiting on `credential` with the origin CloudTrail named.
    fn resolve_pending(
        &mut self,
        credential: &Credential,
        identity: &IdentityRecord,
        time: DateTime<Utc>,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let waiting = self.store.scan_typed::<Pending>(Space::Pending, &keys::pending_for(credential), time)?;
        for (key, pending) in waiting {
            let pending = pending.value;
            let policy = self.policy;
            let generic = |s: &str| policy.is_generic_session(s);
            let revised = self.revise(&pending.alert_id, time, sink, |alert| {
                alert.actor.originating_principal = Some(identity.originating_principal.clone());
                alert.actor.source_identity = identity.source_identity.clone();
                alert.identity_status = IdentityStatus::Resolved;
                // A record that arrives after the grace period still settles the question.
                alert.signals.retain(|s| s.rule != RuleId::IdentityUnresolved);
                alert.actor_key = alert.actor.key(generic);
                // The origin may change the verdict on the actor.
                for ev in &pending.events {
                    let ns = ev.resource.namespace.as_deref().unwrap_or_default();
                    let approved = policy.approved_actor(&alert.actor, ns).is_some();
                    let flagged = |s: &Signal| {
                        s.rule == RuleId::UnapprovedActor && s.audit_id == ev.audit_id && s.resource == ev.resource
                    };
                    let has = alert.signals.iter().any(flagged);
                    let summary = format!("{} is not an approved actor for namespace {ns}", alert.actor.display());
                    if approved && has {
                        alert.signals.retain(|s| !flagged(s));
                    } else if !approved && has {
                        // Still not approved: say who it really is.
                        let key = alert.actor_key.clone();
                        for s in alert.signals.iter_mut().filter(|s| flagged(s)) {
                            s.summary = summary.clone();
                            if let Some(obj) = s.evidence.as_object_mut() {
                                obj.insert("actor_key".into(), json!(key));
                            }
                        }
                    } else if !approved && !has {
                        let template = alert.signals.iter().find(|s| s.audit_id == ev.audit_id).cloned();
                        if let Some(mut s) = template {
                            s.rule = RuleId::UnapprovedActor;
                            s.severity =
                                policy.severity(RuleId::UnapprovedActor, RuleId::UnapprovedActor.default_severity());
                            s.summary = summary;
                            let drift = s.evidence.get("drift_since_approved").cloned();
                            s.evidence = json!({"actor_key": alert.actor_key});
                            if let (Some(d), Some(obj)) = (drift, s.evidence.as_object_mut()) {
                                obj.insert("drift_since_approved".into(), d);
                            }
                            alert.signals.push(s);
                        }
                    }
                }
            })?;
            if let Some(alert) = revised {
                // Later changes by the same origin join this incident.
                let incident_key = keys::incident(&alert.cluster, &alert.actor_key);
                let window = self.policy.correlation.window.0;
                let incident = Incident { alert_id: alert.alert_id.clone(), last_seen: alert.last_seen };
                self.store.put_incident(&incident_key, &incident, Expect::Any, Some(alert.last_seen + window), time)?;
            }
            self.forget_pending(&key)?;
        }
        Ok(())
    }

    /// Fires `identity.unresolved` for every alert whose wait ended before `now`.
    /// Call it as time advances (before each event in a replay; on each invocation on AWS).
    pub fn tick(&mut self, now: DateTime<Utc>, sink: &mut dyn Sink) -> Result<(), EngineError> {
        if let Some(next) = self.next_deadline
            && next.is_none_or(|d| d > now)
        {
            return Ok(());
        }
        let mut earliest: Option<DateTime<Utc>> = None;
        for (key, pending) in self.store.scan_typed::<Pending>(Space::Pending, "", now)? {
            let mut pending = pending.value;
            if pending.fired {
                continue;
            }
            if pending.deadline > now {
                earliest = Some(earliest.map_or(pending.deadline, |d| d.min(pending.deadline)));
                continue;
            }
            let policy = self.policy;
            let mut unresolved = Vec::new();
            for ev in &pending.events {
                let f = Finding::new(
                    RuleId::IdentityUnresolved,
                    "IAM session cannot be traced to a person or pipeline: CloudTrail named no origin in time"
                        .to_owned(),
                    &json!({"waited": policy.identity.unresolved_grace.0.num_seconds(), "audit_id": ev.audit_id}),
                );
                unresolved.extend(self.signal(f, &ev.resource, &ev.audit_id, ev.time));
            }
            self.revise(&pending.alert_id, now, sink, |alert| {
                alert.identity_status = IdentityStatus::Unresolved;
                for s in unresolved {
                    if !alert
                        .signals
                        .iter()
                        .any(|o| o.rule == s.rule && o.audit_id == s.audit_id && o.resource == s.resource)
                    {
                        alert.signals.push(s);
                    }
                }
            })?;
            pending.fired = true;
            let expires = Some(pending.deadline + Duration::days(7));
            self.store.put_typed(Space::Pending, &key, &pending, Expect::Any, expires, now)?;
        }
        self.next_deadline = Some(earliest);
        Ok(())
    }
}
