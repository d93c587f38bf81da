//! The detection engine: one audit event in, alerts out.
//!
//! For each relevant event: find the object's baseline, say what changed,
//! run the content rules, judge the change against the policy (maintenance
//! windows or the learned pattern, approved actors, change plans), merge the
//! signals into the actor's open incident, publish the alert revision, and
//! only then move the baseline. That order makes retries safe: an event whose
//! baseline already covers it is a duplicate and stops at once; one that
//! failed half-way is processed again, finds its signals already in the
//! incident, and only republishes what was not yet published.

mod identity;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use crate::actor::Actor;
use crate::alert::{Alert, AlertRecord, IdentityStatus, Incident, Resource, Signal};
use crate::baseline::{Baseline, ObjectState};
use crate::decode::{EventRecord, Outcome};
use crate::ingress::IngressState;
use crate::ingress::diff::diff;
use crate::pattern::{ActivityModel, Usual};
use crate::plan::{PlanVerdict, judge as judge_plan, manifest_digest};
use crate::policy::{Policy, WindowVerdict};
use crate::rules::{self, Context, Finding, RuleId, Severity};
use crate::store::{
    Activity, AlertSink, AlertStore, Baselines, Expect, Incidents, Plans, SinkError, Space, Store, StoreError, Typed,
    Versioned,
};

/// What the engine counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Events already applied (duplicates, reruns, stale deliveries).
    pub duplicates: u64,
    /// Writes that changed nothing that matters (churn).
    pub routine: u64,
    /// Material changes judged approved and recorded without alert.
    pub approved: u64,
    /// Signals raised (after suppression).
    pub signals: u64,
    /// Signals silenced by a suppression.
    pub suppressed: u64,
    /// Alerts opened.
    pub alerts_opened: u64,
    /// Alert revisions published after the first.
    pub alerts_updated: u64,
}

impl Stats {
    /// Adds another run's counts to these.
    pub fn merge(&mut self, other: &Stats) {
        self.events += other.events;
        self.duplicates += other.duplicates;
        self.routine += other.routine;
        self.approved += other.approved;
        self.signals += other.signals;
        self.suppressed += other.suppressed;
        self.alerts_opened += other.alerts_opened;
        self.alerts_updated += other.alerts_updated;
    }
}

/// Why the engine could not process an event.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl EngineError {
    /// True when processing the event again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Store(StoreError::Conflict { .. }) => true,
            Self::Store(StoreError::Backend { retryable, .. }) => *retryable,
            Self::Store(StoreError::Corrupt { .. }) => false,
            Self::Sink(e) => e.retryable,
        }
    }
}

/// An engine failure, with the event it happened on.
#[derive(Debug, thiserror::Error)]
#[error("processing {at}: {source}")]
pub struct RunError {
    /// The event.
    pub at: String,
    /// What failed.
    #[source]
    pub source: EngineError,
}

/// How often a conflicting concurrent write is retried before giving up.
const CONFLICT_RETRIES: usize = 5;

/// The engine over a store and a policy.
pub struct Engine<'a, S: Store + ?Sized> {
    policy: &'a Policy,
    store: &'a S,
    stats: Stats,
    /// The earliest deadline among alerts waiting for CloudTrail, once known.
    next_deadline: Option<Option<DateTime<Utc>>>,
}

/// What one event is, once looked at.
struct Assessment {
    key: String,
    resource: Resource,
    new_state: ObjectState,
    /// The change matters for judgement.
    material: bool,
    findings: Vec<Finding>,
    /// `sha256:` of the new Ingress state, for plan digests.
    digest: Option<String>,
    /// The previous baseline and its version.
    previous: Option<(Baseline, u64)>,
    /// Judge windows through the secret-rotation rule instead of change.out-of-window.
    secret: bool,
}

impl<'a, S: Store + ?Sized> Engine<'a, S> {
    /// An engine for one run (a replay, a Lambda invocation).
    pub fn new(policy: &'a Policy, store: &'a S) -> Self {
        Self { policy, store, stats: Stats::default(), next_deadline: None }
    }

    /// What has been counted so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Processes audit and CloudTrail events together in time order
    /// (CloudTrail first on a tie: credentials are issued before they are
    /// used), advancing the clock for alerts that wait on CloudTrail.
    pub fn run(
        &mut self,
        audit: &[EventRecord],
        cloudtrail: &[crate::decode::CloudTrailRecord],
        sink: &mut dyn AlertSink,
    ) -> Result<(), RunError> {
        let mut audit = audit.iter().peekable();
        let mut trail = cloudtrail.iter().peekable();
        loop {
            let take_trail = match (trail.peek(), audit.peek()) {
                (Some(t), Some(a)) => a.event.time().is_some_and(|at| t.event.event_time <= at),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return Ok(()),
            };
            if take_trail {
                let Some(record) = trail.next() else { return Ok(()) };
                let at = || format!("CloudTrail event {} ({})", record.event.event_id, record.location);
                self.tick(record.event.event_time, sink).map_err(|e| RunError { at: at(), source: e })?;
                self.process_cloudtrail(record, sink).map_err(|e| RunError { at: at(), source: e })?;
            } else {
                let Some(record) = audit.next() else { return Ok(()) };
                let at = || format!("audit event {} ({})", record.event.audit_id, record.location);
                if let Some(time) = record.event.time() {
                    self.tick(time, sink).map_err(|e| RunError { at: at(), source: e })?;
                }
                self.process(record, sink).map_err(|e| RunError { at: at(), source: e })?;
            }
        }
    }

    /// Processes one relevant audit event, publishing any alert revision to `sink`.
    pub fn process(&mut self, record: &EventRecord, sink: &mut dyn AlertSink) -> Result<(), EngineError> {
        self.stats.events += 1;
        let mut attempt = 0;
        loop {
            match self.process_once(record, sink) {
                Err(EngineError::Store(StoreError::Conflict { .. })) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    fn process_once(&mut self, record: &EventRecord, sink: &mut dyn AlertSink) -> Result<(), EngineError> {
        let event = &record.event;
        let time = event.time().unwrap_or(DateTime::UNIX_EPOCH);
        let cluster = record.source.cluster().unwrap_or(&self.policy.cluster).to_owned();
        let actor = self.resolve(Actor::from_event(event), time)?;
        let actor_key = actor.key(|s| self.policy.is_generic_session(s));
        let namespace = event.object_ref.namespace.clone().unwrap_or_default();
        let resource = Resource {
            kind: event.object_ref.resource.clone(),
            namespace: event.object_ref.namespace.clone(),
            name: event.object_ref.name.clone(),
        };

        if record.outcome == Outcome::Denied {
            let signal = self.signal(
                Finding::new(
                    RuleId::Denied,
                    format!("{} of {} refused by authorization", event.verb, object_text(&resource)),
                    &json!({"verb": event.verb, "status": event.response_status}),
                ),
                &resource,
                &event.audit_id,
                time,
            );
            let signals: Vec<Signal> = signal.into_iter().collect();
            let status = self.identity_status(&actor);
            return self.correlate(&cluster, &actor, &actor_key, status, signals, false, time, sink).map(|_| ());
        }

        let Some(a) = self.assess(record, &cluster, time, resource)? else {
            return Ok(());
        };
        if a.previous.as_ref().is_some_and(|(b, _)| b.covers(time, &event.audit_id)) {
            self.stats.duplicates += 1;
            return Ok(());
        }

        if !a.material && a.findings.is_empty() {
            self.stats.routine += 1;
            return self.commit(&a, &cluster, &actor_key, &namespace, &event.audit_id, time, true);
        }

        // Judgement: window (or learned pattern), approved actor, change plan.
        let approved_actor = self.policy.approved_actor(&actor, &namespace);
        let verdict = self.policy.window(&namespace, time);
        let anytime = approved_actor.is_some_and(|a| a.anytime);
        let window_ok = match &verdict {
            WindowVerdict::Inside(_) => true,
            WindowVerdict::Frozen(_) => false,
            WindowVerdict::Outside => anytime,
            WindowVerdict::NoneConfigured => {
                anytime || self.usual(&cluster, &actor_key, &namespace, time)? != Usual::No
            }
        };
        let name = a.resource.name.clone().unwrap_or_default();
        let plan = if self.policy.require_plans {
            let plans = self.store.plans(&cluster, &namespace, time)?;
            judge_plan(&plans, &actor, &name, time, a.digest.as_deref())
        } else {
            PlanVerdict::Covered("plans not required".into())
        };
        let plan_ok = matches!(plan, PlanVerdict::Covered(_));
        if a.material && approved_actor.is_some() && window_ok && plan_ok {
            self.stats.approved += 1;
            return self.commit(&a, &cluster, &actor_key, &namespace, &event.audit_id, time, true);
        }

        let mut findings = a.findings.clone();
        if a.material {
            if !window_ok {
                let why = match &verdict {
                    WindowVerdict::NoneConfigured => "far outside the actor's usual hours".to_owned(),
                    other => other.to_string(),
                };
                if a.secret {
                    findings.push(Finding::new(
                        RuleId::TlsSecretRotated,
                        format!("TLS Secret {name} written {why}"),
                        &verdict,
                    ));
                } else {
                    findings.push(Finding::new(
                        RuleId::OutOfWindow,
                        format!("change to {} {why}", object_text(&a.resource)),
                        &verdict,
                    ));
                }
            }
            if approved_actor.is_none() {
                findings.push(Finding::new(
                    RuleId::UnapprovedActor,
                    format!("{} is not an approved actor for namespace {namespace}", actor.display()),
                    &json!({"actor_key": actor_key}),
                ));
            }
            match &plan {
                PlanVerdict::Covered(_) => {}
                PlanVerdict::NoPlan => findings.push(Finding::new(
                    RuleId::Unplanned,
                    format!("no change plan covers {}", object_text(&a.resource)),
                    &json!({"plan": null}),
                )),
                PlanVerdict::DigestMismatch { plan, expected, actual } => findings.push(Finding::new(
                    RuleId::Unplanned,
                    format!("{} differs from the manifest approved in plan {plan}", object_text(&a.resource)),
                    &json!({"plan": plan, "expected_digest": expected, "actual_digest": actual}),
                )),
            }
            if self.identity_status(&actor) == IdentityStatus::Pending
                && self.policy.identity.unresolved_grace.0.is_zero()
            {
                findings.push(Finding::new(
                    RuleId::IdentityUnresolved,
                    format!(
                        "IAM session {} cannot be traced to a person or pipeline",
                        actor.iam_arn.as_deref().unwrap_or("(unknown)")
                    ),
                    &json!({"access_key_id": actor.access_key_id, "session_name": actor.session_name}),
                ));
            }
        }
        let signals: Vec<Signal> =
            findings.into_iter().filter_map(|f| self.signal(f, &a.resource, &event.audit_id, time)).collect();
        // Drift from the last approved state shows what an incident adds up to.
        let drift = match (&a.previous, &a.new_state) {
            (Some((Baseline { approved: Some(ObjectState::Ingress(from)), .. }, _)), ObjectState::Ingress(to)) => {
                Some(diff(from, to))
            }
            _ => None,
        };
        let signals: Vec<Signal> = signals
            .into_iter()
            .map(|mut s| {
                if let (Some(d), Some(obj)) = (&drift, s.evidence.as_object_mut()) {
                    obj.insert("drift_since_approved".into(), json!(d));
                }
                s
            })
            .collect();
        let clean = signals.is_empty();
        let mut status = self.identity_status(&actor);
        let waiting = status == IdentityStatus::Pending && a.material;
        if status == IdentityStatus::Pending && self.policy.identity.unresolved_grace.0.is_zero() {
            status = IdentityStatus::Unresolved;
        }
        let alert_id = self.correlate(&cluster, &actor, &actor_key, status, signals, plan_ok, time, sink)?;
        if let (Some(alert_id), true) = (alert_id, waiting && status == IdentityStatus::Pending) {
            self.await_identity(&actor, &alert_id, &cluster, &a.resource, &event.audit_id, time)?;
        }
        self.commit(&a, &cluster, &actor_key, &namespace, &event.audit_id, time, clean)
    }

    /// Fills in what identity records know about the actor's credentials.
    fn resolve(&self, mut actor: Actor, time: DateTime<Utc>) -> Result<Actor, StoreError> {
        if let Some(record) = self.lookup_origin(actor.access_key_id.as_deref(), actor.iam_arn.as_deref(), time)? {
            actor.originating_principal = Some(record.originating_principal);
            actor.source_identity = record.source_identity;
        }
        Ok(actor)
    }

    /// How far an actor is known, by the policy's idea of a telling session name.
    fn identity_status(&self, actor: &Actor) -> IdentityStatus {
        let generic = actor.session_name.as_deref().is_none_or(|s| self.policy.is_generic_session(s));
        IdentityStatus::of(actor, generic)
    }

    fn usual(&self, cluster: &str, actor_key: &str, namespace: &str, time: DateTime<Utc>) -> Result<Usual, StoreError> {
        let key = format!("{cluster}|{actor_key}|{namespace}");
        Ok(self.store.activity(&key, time)?.map_or(Usual::Learning, |m| m.value.usual(time, &self.policy.learning)))
    }

    /// Applies severity overrides, sensitive namespaces and suppressions.
    fn signal(&mut self, f: Finding, resource: &Resource, audit_id: &str, time: DateTime<Utc>) -> Option<Signal> {
        let namespace = resource.namespace.as_deref().unwrap_or_default();
        if self.policy.suppression(f.rule, namespace, resource.name.as_deref().unwrap_or_default(), time).is_some() {
            self.stats.suppressed += 1;
            return None;
        }
        let mut severity = if self.policy.severity.contains_key(&f.rule) {
            self.policy.severity(f.rule, f.severity)
        } else {
            f.severity
        };
        if self.policy.is_sensitive(namespace) {
            severity = severity.raised();
        }
        self.stats.signals += 1;
        Some(Signal {
            rule: f.rule,
            severity,
            summary: f.summary,
            evidence: f.evidence,
            audit_id: audit_id.to_owned(),
            time,
            resource: resource.clone(),
        })
    }

    /// Looks at an event: its object, what changed, what the content rules say.
    /// `None` for objects the engine does not track (Secrets no Ingress uses, other ConfigMaps).
    fn assess(
        &self,
        record: &EventRecord,
        cluster: &str,
        time: DateTime<Utc>,
        resource: Resource,
    ) -> Result<Option<Assessment>, StoreError> {
        let event = &record.event;
        let namespace = resource.namespace.clone().unwrap_or_default();
        let name = resource.name.clone().unwrap_or_default();
        let key = format!("{cluster}|{}|{namespace}|{name}", resource.kind);
        let deleted = matches!(event.verb.as_str(), "delete" | "deletecollection");
        let lookup = |store: &S| -> Result<Option<(Baseline, u64)>, StoreError> {
            Ok(store.baseline(&key, time)?.map(|v| (v.value, v.version)))
        };
        let mut a = Assessment {
            key: key.clone(),
            resource: resource.clone(),
            new_state: ObjectState::Opaque,
            material: true,
            findings: Vec::new(),
            digest: None,
            previous: None,
            secret: false,
        };
        match resource.kind.as_str() {
            "ingresses" => {
                a.previous = lookup(self.store)?;
                let known = self.policy.known_hosts(&namespace);
                let known_host = |h: &str| known.as_ref().is_some_and(|ps| ps.iter().any(|p| p.matches(h)));
                let external = |svc: &str| self.external_name(cluster, &namespace, svc, time);
                let ctx = Context {
                    known_host: known.as_ref().map(|_| &known_host as &dyn Fn(&str) -> bool),
                    external_name: &external,
                };
                let previous_state = a.previous.as_ref().map(|(b, _)| &b.seen);
                if deleted {
                    a.new_state = ObjectState::Deleted;
                    a.findings.push(Finding::new(
                        RuleId::Deleted,
                        format!("Ingress {namespace}/{name} deleted"),
                        &json!({"last_known": previous_state}),
                    ));
                } else if let Some(Ok(state)) = event.object_after().map(IngressState::from_value) {
                    a.digest = Some(manifest_digest(&state));
                    match previous_state {
                        Some(ObjectState::Ingress(old)) => {
                            let changes = diff(old, &state);
                            a.material = changes.iter().any(rules::is_material);
                            a.findings = changes.iter().flat_map(|c| rules::findings(c, &ctx)).collect();
                        }
                        _ => {
                            let tls_elsewhere = |host: &str| self.tls_elsewhere(cluster, host, &key, time);
                            // A create is a change; a first sight of an older object is not.
                            a.material = event.verb == "create";
                            a.findings = rules::first_sight(&state, &ctx, &tls_elsewhere, a.material);
                        }
                    }
                    a.new_state = ObjectState::Ingress(state);
                }
                // A patch logged without its result: the write is judged, and
                // the next write is compared with nothing rather than with a guess.
            }
            "services" => {
                a.previous = lookup(self.store)?;
                let body = event.object_after();
                let field = |f: &str| body.and_then(|b| b["spec"][f].as_str()).map(str::to_owned);
                a.new_state = if deleted {
                    ObjectState::Deleted
                } else {
                    ObjectState::Service { service_type: field("type"), external_name: field("externalName") }
                };
                a.material = false;
                let was_external = matches!(&a.previous, Some((Baseline { seen: ObjectState::Service { service_type: Some(t), .. }, .. }, _)) if t == "ExternalName");
                if let ObjectState::Service { service_type: Some(t), external_name } = &a.new_state {
                    let users = self.referencing(cluster, &namespace, "service", &name, time)?;
                    if t == "ExternalName" && !was_external && !users.is_empty() {
                        a.findings.push(Finding::new(
                            RuleId::BackendRerouted,
                            format!(
                                "Service {namespace}/{name}, used by Ingress {}, now points outside the cluster ({})",
                                users.join(", "),
                                external_name.as_deref().unwrap_or("?")
                            ),
                            &json!({"external_name": external_name, "ingresses": users}),
                        ));
                        a.material = true;
                    }
                }
            }
            "secrets" => {
                if self.referencing(cluster, &namespace, "secret", &name, time)?.is_empty() {
                    return Ok(None);
                }
                a.previous = lookup(self.store)?;
                a.secret = true;
                a.new_state = if deleted { ObjectState::Deleted } else { ObjectState::Opaque };
            }
            "configmaps" => {
                if !self.policy.is_controller_configmap(&namespace, &name) {
                    return Ok(None);
                }
                a.previous = lookup(self.store)?;
                a.findings.push(Finding::new(
                    RuleId::ControllerConfigChanged,
                    format!("ingress controller ConfigMap {namespace}/{name} {}", past(&event.verb)),
                    &json!({"verb": event.verb}),
                ));
                a.new_state = if deleted { ObjectState::Deleted } else { ObjectState::Opaque };
            }
            "ingressclasses" => {
                a.previous = lookup(self.store)?;
                a.findings.push(Finding::new(
                    RuleId::ClassChanged,
                    format!("IngressClass {name} {}: which controller serves the class may change", past(&event.verb)),
                    &json!({"verb": event.verb, "spec": event.object_after().map(|o| &o["spec"])}),
                ));
                a.new_state = if deleted { ObjectState::Deleted } else { ObjectState::Opaque };
            }
            // Gateway API objects: bodies are not logged on EKS, so every write is judged.
            _ => {
                a.previous = lookup(self.store)?;
                a.new_state = if deleted { ObjectState::Deleted } else { ObjectState::Opaque };
            }
        }
        Ok(Some(a))
    }

    /// The target of a Service of type ExternalName, if the service is one.
    fn external_name(&self, cluster: &str, namespace: &str, service: &str, time: DateTime<Utc>) -> Option<String> {
        let key = format!("{cluster}|services|{namespace}|{service}");
        match self.store.baseline(&key, time) {
            Ok(Some(b)) => match b.value.seen {
                ObjectState::Service { service_type: Some(t), external_name } if t == "ExternalName" => {
                    Some(external_name.unwrap_or_default())
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// True if another Ingress serves `host` over TLS.
    fn tls_elsewhere(&self, cluster: &str, host: &str, own_key: &str, time: DateTime<Utc>) -> bool {
        let key = format!("{cluster}|tls-host|{host}");
        self.store
            .get_typed::<Vec<String>>(Space::Index, &key, time)
            .ok()
            .flatten()
            .is_some_and(|v| v.value.iter().any(|k| k != own_key))
    }

    /// Ingresses (names) that reference a Secret or Service of a namespace.
    fn referencing(
        &self,
        cluster: &str,
        ns: &str,
        what: &str,
        name: &str,
        time: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let key = format!("{cluster}|{what}|{ns}|{name}");
        Ok(self.store.get_typed::<Vec<String>>(Space::Index, &key, time)?.map(|v| v.value).unwrap_or_default())
    }

    /// Moves the baseline (last), keeps the indexes, learns from accepted changes.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        a: &Assessment,
        cluster: &str,
        actor_key: &str,
        namespace: &str,
        audit_id: &str,
        time: DateTime<Utc>,
        accepted: bool,
    ) -> Result<(), EngineError> {
        let previous_approved = a.previous.as_ref().and_then(|(b, _)| b.approved.clone());
        let baseline = Baseline {
            seen: a.new_state.clone(),
            approved: if accepted { Some(a.new_state.clone()) } else { previous_approved },
            time,
            audit_id: audit_id.to_owned(),
            actor: actor_key.to_owned(),
        };
        if let ObjectState::Ingress(state) = &a.new_state {
            let name = a.resource.name.clone().unwrap_or_default();
            let old = match &a.previous {
                Some((Baseline { seen: ObjectState::Ingress(s), .. }, _)) => Some(s),
                _ => None,
            };
            self.index_references(cluster, namespace, &name, &a.key, old, Some(state), time)?;
        } else if let (ObjectState::Deleted, Some((Baseline { seen: ObjectState::Ingress(old), .. }, _))) =
            (&a.new_state, &a.previous)
        {
            let name = a.resource.name.clone().unwrap_or_default();
            self.index_references(cluster, namespace, &name, &a.key, Some(old), None, time)?;
        }
        if accepted && a.material {
            let key = format!("{cluster}|{actor_key}|{namespace}");
            self.store.update_typed::<ActivityModel>(
                Space::Activity,
                &key,
                time,
                |_| None,
                |current| {
                    let mut model = current.unwrap_or_else(|| ActivityModel::new(time));
                    model.learn(time);
                    Some(model)
                },
            )?;
        }
        let expect = Expect::from_current(a.previous.as_ref().map(|(_, v)| *v));
        self.store.put_baseline(&a.key, &baseline, expect, None, time)?;
        Ok(())
    }

    /// Keeps the Secret, Service and TLS-host indexes of one Ingress current.
    #[allow(clippy::too_many_arguments)]
    fn index_references(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        key: &str,
        old: Option<&IngressState>,
        new: Option<&IngressState>,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let refs = |s: Option<&IngressState>| -> Vec<String> {
            let Some(s) = s else { return Vec::new() };
            let mut out: Vec<String> = s
                .tls
                .iter()
                .filter_map(|t| t.secret_name.as_ref().map(|n| format!("{cluster}|secret|{namespace}|{n}")))
                .chain(s.backends().filter_map(|b| match b {
                    crate::ingress::Backend::Service { name, .. } => {
                        Some(format!("{cluster}|service|{namespace}|{name}"))
                    }
                    crate::ingress::Backend::Resource { .. } => None,
                }))
                .collect();
            out.sort();
            out.dedup();
            out
        };
        let hosts = |s: Option<&IngressState>| -> Vec<String> {
            let mut out: Vec<String> = s
                .map(|s| s.tls.iter().flat_map(|t| t.hosts.iter().map(|h| format!("{cluster}|tls-host|{h}"))).collect())
                .unwrap_or_default();
            out.sort();
            out.dedup();
            out
        };
        let (old_refs, new_refs) = (refs(old), refs(new));
        let (old_hosts, new_hosts) = (hosts(old), hosts(new));
        for index in old_refs.iter().filter(|r| !new_refs.contains(r)) {
            self.update_index(index, name, false, time)?;
        }
        for index in new_refs.iter().filter(|r| !old_refs.contains(r)) {
            self.update_index(index, name, true, time)?;
        }
        for index in old_hosts.iter().filter(|r| !new_hosts.contains(r)) {
            self.update_index(index, key, false, time)?;
        }
        for index in new_hosts.iter().filter(|r| !old_hosts.contains(r)) {
            self.update_index(index, key, true, time)?;
        }
        Ok(())
    }

    fn update_index(&self, index: &str, member: &str, add: bool, time: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.update_typed::<Vec<String>>(
            Space::Index,
            index,
            time,
            |_| None,
            |current| {
                let mut members = current.unwrap_or_default();
                let present = members.iter().any(|m| m == member);
                match (add, present) {
                    (true, true) | (false, false) => return None,
                    (true, false) => members.push(member.to_owned()),
                    (false, true) => members.retain(|m| m != member),
                }
                Some(members)
            },
        )?;
        Ok(())
    }

    /// Merges signals into the actor's open incident, records the alert and publishes it.
    #[allow(clippy::too_many_arguments)]
    fn correlate(
        &mut self,
        cluster: &str,
        actor: &Actor,
        actor_key: &str,
        status: IdentityStatus,
        signals: Vec<Signal>,
        approved: bool,
        time: DateTime<Utc>,
        sink: &mut dyn AlertSink,
    ) -> Result<Option<String>, EngineError> {
        if signals.is_empty() {
            return Ok(None);
        }
        let window = self.policy.correlation.window.0;
        let incident_key = format!("{cluster}|{actor_key}");
        // The incident points at its alert; the alert record is the one source of truth.
        let open = self.store.incident(&incident_key, time)?.filter(|i| time <= i.value.last_seen + window);
        let current = match &open {
            Some(i) => self.store.stored_alert(&i.value.alert_id, time)?,
            None => None,
        };
        let (alert, record) = match current {
            Some(record) => {
                let mut alert = record.value.alert.clone();
                alert.merge(signals, approved, actor);
                (alert, Some(record))
            }
            None => {
                let again = signals.clone();
                let Some(new) = Alert::open(cluster, actor, actor_key, status, signals, approved) else {
                    return Ok(None);
                };
                // A rerun after the window closed: the alert record knows this incident already.
                match self.store.stored_alert(&new.alert_id, time)? {
                    Some(known) => {
                        let mut alert = known.value.alert.clone();
                        alert.merge(again, approved, actor);
                        (alert, Some(known))
                    }
                    None => (new, None),
                }
            }
        };
        let incident = Incident { alert_id: alert.alert_id.clone(), last_seen: alert.last_seen };
        let expires = (alert.last_seen + window).max(time + Duration::seconds(1));
        self.store.put_incident(&incident_key, &incident, Expect::Any, Some(expires), time)?;
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
        sink: &mut dyn AlertSink,
    ) -> Result<(), EngineError> {
        let published = record.as_ref().map_or(0, |r| r.value.published_revision);
        if published >= alert.revision {
            return Ok(());
        }
        let version = record.map(|r| r.version);
        let mut stored = AlertRecord { alert: alert.clone(), published_revision: published };
        let version = self.store.put_alert(&alert.alert_id, &stored, Expect::from_current(version), None, time)?;
        sink.publish(alert)?;
        stored.published_revision = alert.revision;
        self.store.put_alert(&alert.alert_id, &stored, Expect::Version(version), None, time)?;
        if alert.revision == 1 {
            self.stats.alerts_opened += 1;
        } else {
            self.stats.alerts_updated += 1;
        }
        Ok(())
    }
}

fn object_text(r: &Resource) -> String {
    format!("{} {}/{}", r.kind, r.namespace.as_deref().unwrap_or("-"), r.name.as_deref().unwrap_or("-"))
}

fn past(verb: &str) -> &'static str {
    match verb {
        "create" => "created",
        "delete" | "deletecollection" => "deleted",
        _ => "changed",
    }
}

impl Severity {
    /// True if `self` is at least `other`.
    pub fn at_least(self, other: Severity) -> bool {
        self >= other
    }
}
