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

/// How many links of a role chain are followed before giving up (a loop, or forged records).
const MAX_CHAIN: usize = 32;

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

/// What a chain of identity records leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Origin {
    /// The person or pipeline.
    pub principal: String,
    /// Its account, when CloudTrail says.
    pub account: Option<String>,
    /// `sts:SourceIdentity` met along the chain.
    pub source_identity: Option<String>,
}

impl Origin {
    /// Names the origin on the actor; its account only when it differs from
    /// the session's (a chain that crossed accounts).
    pub(super) fn apply(self, actor: &mut Actor) {
        let session_account = actor.iam_arn.as_deref().and_then(crate::actor::account_of);
        actor.originating_account = self.account.filter(|a| Some(a.as_str()) != session_account);
        actor.originating_principal = Some(self.principal);
        actor.source_identity = self.source_identity;
    }
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Who is behind a set of credentials: the record of the access key,
    /// followed along role chains (a record whose origin is not known yet
    /// points at the credentials that obtained it) to the origin.
    ///
    /// A session ARN is used only when the key is unknown, the session name
    /// is specific (not generic by the policy), and exactly one issuance of
    /// that ARN was live at `time`: whoever assumed a shared role last is
    /// never taken for whoever used it.
    pub(super) fn lookup_origin(
        &self,
        access: Option<&str>,
        session: Option<&str>,
        time: DateTime<Utc>,
    ) -> Result<Option<Origin>, StoreError> {
        let mut record = match access {
            Some(key) => self.store.identity(&keys::identity(&Credential::AccessKey(key.to_owned())), time)?,
            None => None,
        }
        .map(|v| v.value);
        if record.is_none()
            && let Some(arn) = session
        {
            record = self.unique_issuance(arn, time)?;
        }
        let mut source_identity = None;
        let mut followed: Vec<Credential> = Vec::new();
        while let Some(r) = record {
            source_identity = source_identity.or(r.source_identity.clone());
            if let Some(principal) = r.originating_principal {
                return Ok(Some(Origin { principal, account: r.origin_account, source_identity }));
            }
            let Some(via) = r.via else { return Ok(None) };
            if followed.contains(&via) || followed.len() >= MAX_CHAIN {
                return Ok(None);
            }
            let at = r.issued_at.unwrap_or(time);
            record = match &via {
                Credential::AccessKey(k) => {
                    self.store.identity(&keys::identity(&Credential::AccessKey(k.clone())), at)?.map(|v| v.value)
                }
                Credential::Session(arn) => self.unique_issuance(arn, at)?,
                Credential::User(_) => None,
            };
            followed.push(via);
        }
        Ok(None)
    }

    /// The one issuance of a specific session ARN live at `time`, if exactly one was.
    fn unique_issuance(&self, arn: &str, time: DateTime<Utc>) -> Result<Option<IdentityRecord>, StoreError> {
        let name = arn.rsplit('/').next().unwrap_or_default();
        if !arn.contains(":assumed-role/") || name.is_empty() || self.policy.is_generic_session(name) {
            return Ok(None);
        }
        let mut live: Vec<IdentityRecord> = self
            .store
            .scan_typed::<IdentityRecord>(Space::Identity, &keys::session_issuances(arn), time)?
            .into_iter()
            .map(|(_, v)| v.value)
            .filter(|r| r.live_at(time))
            .collect();
        Ok(if live.len() == 1 { live.pop() } else { None })
    }

    /// Who is behind the caller of a CloudTrail event, as far as is known, with its account.
    fn origin_of(&self, e: &cloudtrail::CloudTrailEvent) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(match cloudtrail::caller(e) {
            Caller::Origin(origin) => {
                let account = e.user_identity.account_id.clone().or_else(|| e.recipient_account_id.clone());
                Some((origin, account))
            }
            Caller::Session { access_key_id, session_arn } => self
                .lookup_origin(access_key_id.as_deref(), session_arn.as_deref(), e.event_time)?
                .map(|o| (o.principal, o.account)),
        })
    }

    /// Processes one CloudTrail event.
    pub fn process_cloudtrail(&mut self, record: &CloudTrailRecord, sink: &mut dyn Sink) -> Result<(), EngineError> {
        let e = &record.event;
        self.stats.events += 1;
        let origin = self.origin_of(e)?;
        match cloudtrail::classify(e, &self.policy.pipeline) {
            Meaning::Issuer => self.issue(e, origin, sink),
            Meaning::Tampering(what) => {
                self.cloudtrail_signal(e, RuleId::PipelineTampering, what, origin.map(|o| o.0), sink)
            }
            Meaning::AccessChange(what) => {
                self.cloudtrail_signal(e, RuleId::AccessChanged, what, origin.map(|o| o.0), sink)
            }
            Meaning::Other => Ok(()),
        }
    }

    /// Records the credentials an issuer event handed out, then settles the
    /// alerts that waited on them (or on credentials obtained with them).
    fn issue(
        &mut self,
        e: &cloudtrail::CloudTrailEvent,
        origin: Option<(String, Option<String>)>,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let time = e.event_time;
        let (key, session, expiry) = cloudtrail::issued(e);
        // The caller's origin is not known yet: remember its credentials, so
        // the chain completes when their record arrives.
        let caller = &e.user_identity;
        let via = match &origin {
            Some(_) => None,
            None => caller
                .access_key_id
                .clone()
                .map(Credential::AccessKey)
                .or_else(|| caller.arn.clone().filter(|a| a.contains(":assumed-role/")).map(Credential::Session)),
        };
        if origin.is_none() && via.is_none() {
            return Ok(());
        }
        let identity = cloudtrail::record(e, origin, via.clone());
        // Kept past expiry for audit events that arrive late.
        // An expiry before issuance is bad data: assume the longest session.
        let expires = expiry.filter(|x| *x > time).unwrap_or(time + Duration::hours(12)) + Duration::days(1);
        let mut issued = Vec::new();
        if let Some(k) = key {
            let credential = Credential::AccessKey(k);
            self.store.put_identity(&keys::identity(&credential), &identity, Expect::Any, Some(expires), time)?;
            issued.push(credential);
        }
        if let Some(arn) = session {
            let key = keys::session_issuance(&arn, time);
            self.store.put_identity(&key, &identity, Expect::Any, Some(expires), time)?;
            issued.push(Credential::Session(arn));
        }
        if let Some(via) = &via {
            let children = issued.clone();
            self.store.update_typed::<Vec<Credential>>(
                Space::Identity,
                &keys::links(via),
                time,
                |_| Some(expires),
                |current| {
                    let mut links = current.unwrap_or_default();
                    let before = links.len();
                    for c in &children {
                        if !links.contains(c) {
                            links.push(c.clone());
                        }
                    }
                    (links.len() > before).then_some(links)
                },
            )?;
        }
        for credential in issued {
            self.resolve_chain(&credential, time, sink)?;
        }
        Ok(())
    }

    /// Settles the alerts waiting on `credential` and on every credential
    /// obtained with it while its origin was unknown.
    fn resolve_chain(
        &mut self,
        credential: &Credential,
        time: DateTime<Utc>,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let mut todo = vec![credential.clone()];
        let mut done: Vec<Credential> = Vec::new();
        while let Some(c) = todo.pop() {
            if done.contains(&c) || done.len() >= MAX_CHAIN * 4 {
                continue;
            }
            self.resolve_pending(&c, time, sink)?;
            if let Some(children) = self.store.get_typed::<Vec<Credential>>(Space::Identity, &keys::links(&c), time)? {
                todo.extend(children.value);
            }
            done.push(c);
        }
        Ok(())
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

    /// Enriches the alerts waiting on `credential` with the origin CloudTrail
    /// named, if the chain now leads to one, and cross-references that
    /// origin's open incident: the alerts are never merged, each keeps its
    /// own history and status.
    fn resolve_pending(
        &mut self,
        credential: &Credential,
        time: DateTime<Utc>,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let waiting = self.store.scan_typed::<Pending>(Space::Pending, &keys::pending_for(credential), time)?;
        if waiting.is_empty() {
            return Ok(());
        }
        let origin = match credential {
            Credential::AccessKey(k) => self.lookup_origin(Some(k), None, time)?,
            Credential::Session(arn) => self.lookup_origin(None, Some(arn), time)?,
            Credential::User(_) => None,
        };
        let Some(origin) = origin else { return Ok(()) };
        for (key, pending) in waiting {
            let pending = pending.value;
            let policy = self.policy;
            let generic = |s: &str| policy.is_generic_session(s);
            let revised = self.revise(&pending.alert_id, time, sink, |alert| {
                origin.clone().apply(&mut alert.actor);
                alert.identity_status = IdentityStatus::Resolved;
                // A record that arrives after the grace period still settles the question.
                alert.signals.retain(|s| s.rule != RuleId::IdentityUnresolved);
                alert.actor_key = alert.actor.key(generic);
                // The origin may change the verdict on the actor.
                for ev in &pending.events {
                    let ns = ev.resource.namespace.as_deref().unwrap_or_default();
                    let approved = policy.approved_actor(&alert.actor, ns).is_some() || !policy.actors_cover(ns);
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
                            s.evidence = json!({"actor_key": alert.actor_key});
                            alert.signals.push(s);
                        }
                    }
                }
            })?;
            if let Some(alert) = revised {
                self.cross_reference(&alert, time, sink)?;
            }
            self.forget_pending(&key)?;
        }
        Ok(())
    }

    /// Links a freshly resolved alert with its origin's open incident (both
    /// ways); with none open, later changes by the origin join this alert.
    fn cross_reference(
        &mut self,
        alert: &crate::alert::Alert,
        time: DateTime<Utc>,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let incident_key = keys::incident(&alert.cluster, &alert.actor_key);
        let window = self.policy.correlation.window.0;
        let open = self.store.incident(&incident_key, time)?.filter(|i| time <= i.value.last_seen + window);
        match open.and_then(|i| i.value.alert_id) {
            Some(other) if other != alert.alert_id => {
                let this = alert.alert_id.clone();
                let link = |a: &mut crate::alert::Alert, id: &str| {
                    if !a.related_alerts.iter().any(|r| r == id) {
                        a.related_alerts.push(id.to_owned());
                    }
                };
                self.revise(&this, time, sink, |a| link(a, &other))?;
                self.revise(&other, time, sink, |a| link(a, &this))?;
            }
            Some(_) => {}
            None => {
                let incident =
                    Incident { alert_id: Some(alert.alert_id.clone()), last_seen: alert.last_seen, held: Vec::new() };
                let expires = (alert.last_seen + window).max(time + Duration::seconds(1));
                self.store.put_incident(&incident_key, &incident, Expect::Any, Some(expires), time)?;
            }
        }
        Ok(())
    }

    /// Whether [`Engine::tick`] at `now` looks at the waiting alerts: the
    /// first time, and once the earliest deadline it knows has come.
    pub(super) fn tick_due(&self, now: DateTime<Utc>) -> bool {
        self.next_deadline.is_none_or(|next| next.is_some_and(|d| d <= now))
    }

    /// Fires `identity.unresolved` for every alert whose wait ended before `now`.
    /// Call it as time advances (before each event in a replay; on each invocation on AWS).
    pub fn tick(&mut self, now: DateTime<Utc>, sink: &mut dyn Sink) -> Result<(), EngineError> {
        if !self.tick_due(now) {
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
