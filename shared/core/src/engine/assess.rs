//! Assessment: where a write goes among its object's writes, what it changed
//! in the object, and what the content rules say about that change.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::Engine;
use super::context::EventContext;
use crate::audit::{Kind, Verb};
use crate::baseline::{Baseline, ObjectState, Placement, Predecessor};
use crate::ingress::diff::diff;
use crate::ingress::{Backend, IngressState};
use crate::keys::Used;
use crate::manifest::rules as manifest;
use crate::plan::manifest_digest;
use crate::rules::{self, Context, Finding, RuleId};
use crate::store::{Baselines, Store, StoreError};

/// What an event is to the engine.
pub(super) enum Look {
    /// An object the engine does not track (a Secret no Ingress uses, another ConfigMap).
    Untracked,
    /// Applied already: its audit id is in the object's baseline.
    Duplicate,
    /// A write to judge.
    Change(Box<Assessment>),
}

/// What one write is, once looked at.
pub(super) struct Assessment {
    /// The object as it stands after the write, as it is kept.
    pub new_state: ObjectState,
    /// The change matters for judgement.
    pub material: bool,
    /// What the content rules found.
    pub findings: Vec<Finding>,
    /// `sha256:` of the new Ingress state, for plan digests.
    pub digest: Option<String>,
    /// The object's baseline as stored, and its version.
    pub baseline: Option<(Baseline, u64)>,
    /// Where the write goes among those remembered.
    pub index: usize,
    /// No remembered write came after it: it moves the baseline.
    pub newest: bool,
    /// What the write before it left.
    pub predecessor: Predecessor,
    /// Judge windows through the secret-rotation rule instead of change.out-of-window.
    pub secret: bool,
    /// What every signal of the write says besides its own evidence.
    pub notes: Map<String, Value>,
}

impl Assessment {
    /// The state the write was made to: what the write before it left.
    pub fn previous_state(&self) -> Option<&ObjectState> {
        match &self.predecessor {
            Predecessor::Known(state) => Some(state),
            Predecessor::Nothing | Predecessor::Unknown => None,
        }
    }
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Looks at an event: its object, where it goes among the object's
    /// writes, what changed, what the content rules say.
    pub(super) fn assess(&self, ctx: &EventContext<'_>) -> Result<Look, StoreError> {
        let tracked = match ctx.object.kind {
            Kind::Secret => !self.users(&ctx.cluster, ctx.namespace(), Used::Secret(ctx.name()), ctx.time)?.is_empty(),
            Kind::ConfigMap => self.policy.is_controller_configmap(ctx.namespace(), ctx.name()),
            _ => true,
        };
        if !tracked {
            return Ok(Look::Untracked);
        }
        let Some(mut a) = self.place(ctx)? else { return Ok(Look::Duplicate) };
        let (namespace, name) = (ctx.namespace(), ctx.name());
        match ctx.object.kind {
            Kind::Ingress => self.assess_ingress(ctx, &mut a)?,
            Kind::Service => self.assess_service(ctx, &mut a)?,
            Kind::Secret => {
                a.secret = true;
                a.new_state = opaque(ctx);
            }
            Kind::ConfigMap => {
                a.findings.push(Finding::new(
                    RuleId::ControllerConfigChanged,
                    format!("ingress controller ConfigMap {namespace}/{name} {}", ctx.verb.past()),
                    &json!({"verb": ctx.verb}),
                ));
                self.assess_body(ctx, &mut a);
            }
            Kind::IngressClass => {
                a.findings.push(Finding::new(
                    RuleId::ClassChanged,
                    format!("IngressClass {name} {}: which controller serves the class may change", ctx.verb.past()),
                    &json!({"verb": ctx.verb, "spec": ctx.record.event.object_after().map(|o| &o["spec"])}),
                ));
                a.new_state = opaque(ctx);
            }
            // Gateway API objects: bodies are not logged on EKS, so every write
            // is judged by who, when and under which plan; where a body is
            // there, the manifest rules judge what it introduces.
            Kind::Gateway | Kind::HttpRoute | Kind::GrpcRoute | Kind::TlsRoute | Kind::ReferenceGrant => {
                self.assess_body(ctx, &mut a);
            }
        }
        Ok(Look::Change(Box::new(a)))
    }

    /// Reads the object's baseline and places the write among its writes;
    /// `None` for a write applied already.
    fn place(&self, ctx: &EventContext<'_>) -> Result<Option<Assessment>, StoreError> {
        let baseline = self.store.baseline(&ctx.object.baseline(), ctx.time)?.map(|v| (v.value, v.version));
        let version = ctx.record.event.resource_version();
        let placement = match &baseline {
            Some((b, _)) => b.place(ctx.audit_id(), version, ctx.time),
            None => Placement::At { index: 0, newest: true, predecessor: Predecessor::Nothing },
        };
        let Placement::At { index, newest, predecessor } = placement else { return Ok(None) };
        let mut notes = Map::new();
        if !newest {
            let later = baseline.as_ref().map_or(0, |(b, _)| b.writes.len().saturating_sub(index));
            notes.insert(
                "arrived_late".into(),
                json!({"later_writes_applied_first": later, "judged_against": "the write before it"}),
            );
        }
        if predecessor == Predecessor::Unknown {
            notes.insert("predecessor".into(), json!("unknown: the writes before it are no longer kept"));
        }
        Ok(Some(Assessment {
            new_state: ObjectState::Opaque,
            material: true,
            findings: Vec::new(),
            digest: None,
            baseline,
            index,
            newest,
            predecessor,
            secret: false,
            notes,
        }))
    }

    fn assess_ingress(&self, ctx: &EventContext<'_>, a: &mut Assessment) -> Result<(), StoreError> {
        let namespace = ctx.namespace();
        let body = ctx.record.event.object_after().map(IngressState::from_value);
        // What the rules ask of the store, read up front so a failure is not lost inside a rule.
        let mut externals = BTreeMap::new();
        let mut tls_elsewhere = BTreeSet::new();
        if let Some(Ok(state)) = &body {
            for backend in state.backends() {
                if let Backend::Service { name, .. } = backend
                    && let Some(target) = self.external_name(&ctx.cluster, namespace, name, ctx.time)?
                {
                    externals.insert(name.clone(), target);
                }
            }
            let key = ctx.object.baseline();
            for host in state.hosts().flatten() {
                if self.tls_elsewhere(&ctx.cluster, host, &key, ctx.time)? {
                    tls_elsewhere.insert(host.to_owned());
                }
            }
        }
        // Without known-host patterns, hosts are judged against the hosts the namespace has had.
        let learned = match self.policy.known_hosts(namespace) {
            Some(_) => Vec::new(),
            None => self.learned_hosts(&ctx.cluster, namespace, ctx.time)?,
        };
        let host_known = |h: &str| match self.policy.host_allowed(namespace, h) {
            Some(allowed) => allowed,
            None => rules::like_learned(h, &learned),
        };
        let external = |svc: &str| externals.get(svc).cloned();
        let rules_ctx = Context { host_known: &host_known, external_name: &external };
        let host_allowed = |ns: &str, h: &str| self.policy.host_allowed(ns, h);
        let external_in = |_: &str, svc: &str| externals.get(svc).cloned();
        let configmap = |ns: &str, n: &str| self.policy.is_controller_configmap(ns, n);
        let env = manifest::Env {
            controller: None,
            host_allowed: &host_allowed,
            external_name: &external_in,
            controller_configmap: &configmap,
        };
        if ctx.verb.is_delete() {
            a.new_state = ObjectState::Deleted;
            a.findings.push(Finding::new(
                RuleId::Deleted,
                format!("Ingress {namespace}/{} deleted", ctx.name()),
                &json!({"last_known": a.previous_state()}),
            ));
        } else if let Some(Ok(full)) = body {
            a.digest = Some(manifest_digest(&full));
            // Compared in the form it is kept in, so a value cut on both sides is equal.
            let kept = ObjectState::Ingress(full.clone()).bounded();
            let state = match &kept {
                ObjectState::Ingress(s) => s,
                _ => &full,
            };
            let (material, mut findings, introduced) = match a.previous_state() {
                Some(ObjectState::Ingress(old)) => {
                    let changes = diff(old, state);
                    (
                        changes.iter().any(rules::is_material),
                        changes.iter().flat_map(|c| rules::findings(c, &rules_ctx)).collect(),
                        manifest::introduced(&manifest::ingress(old, &env), manifest::ingress(state, &env)),
                    )
                }
                _ => {
                    let tls_elsewhere = |host: &str| tls_elsewhere.contains(host);
                    // A create is a change; a first sight of an older object is not.
                    let created = ctx.verb == Verb::Create;
                    let introduced = if created { manifest::ingress(state, &env) } else { Vec::new() };
                    (created, rules::first_sight(state, &rules_ctx, &tls_elsewhere, created), introduced)
                }
            };
            add_introduced(&mut findings, introduced);
            a.material = material;
            a.findings = findings;
            a.new_state = kept;
        }
        // A patch logged without its result: the write is judged, and the
        // next write is compared with nothing rather than with a guess.
        Ok(())
    }

    /// A ConfigMap or Gateway API write: kept as its body where one is
    /// logged, and judged by the manifest rules on what it introduces.
    fn assess_body(&self, ctx: &EventContext<'_>, a: &mut Assessment) {
        let body = ctx.record.event.object_after().filter(|_| !ctx.verb.is_delete());
        let Some(body) = body else {
            a.new_state = opaque(ctx);
            return;
        };
        let host_allowed = |ns: &str, h: &str| self.policy.host_allowed(ns, h);
        let configmap = |ns: &str, n: &str| self.policy.is_controller_configmap(ns, n);
        let env = manifest::Env {
            controller: None,
            host_allowed: &host_allowed,
            external_name: &|_, _| None,
            controller_configmap: &configmap,
        };
        let kind = ctx.object.kind.name();
        let (namespace, name) = (ctx.namespace(), ctx.name());
        let kept = manifest_body(body);
        let introduced = match a.previous_state() {
            Some(ObjectState::Manifest(old)) => manifest::introduced(
                &manifest::object(kind, namespace, name, old, &env),
                manifest::object(kind, namespace, name, &kept, &env),
            ),
            // Nothing known before: a create (or first write seen) is judged whole.
            None => manifest::object(kind, namespace, name, &kept, &env),
            Some(_) => Vec::new(),
        };
        add_introduced(&mut a.findings, introduced);
        a.new_state = ObjectState::Manifest(kept).bounded();
    }

    fn assess_service(&self, ctx: &EventContext<'_>, a: &mut Assessment) -> Result<(), StoreError> {
        let body = ctx.record.event.object_after();
        let field = |f: &str| body.and_then(|b| b["spec"][f].as_str()).map(str::to_owned);
        a.new_state = if ctx.verb.is_delete() {
            ObjectState::Deleted
        } else {
            ObjectState::Service { service_type: field("type"), external_name: field("externalName") }
        };
        a.material = false;
        let was_external = matches!(a.previous_state(), Some(ObjectState::Service { service_type: Some(t), .. }) if t == "ExternalName");
        if let Some(body) = body.filter(|_| !ctx.verb.is_delete()) {
            let before = match a.previous_state() {
                Some(ObjectState::Service { service_type, external_name }) => {
                    manifest::service(&json!({"spec": {"type": service_type, "externalName": external_name}}))
                }
                _ => Vec::new(),
            };
            add_introduced(&mut a.findings, manifest::introduced(&before, manifest::service(body)));
            a.material |= !a.findings.is_empty();
        }
        if let ObjectState::Service { service_type: Some(t), external_name } = &a.new_state {
            let (namespace, name) = (ctx.namespace(), ctx.name());
            let users = self.users(&ctx.cluster, namespace, Used::Service(name), ctx.time)?;
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
        Ok(())
    }
}

/// Adds what the manifest rules found introduced, except where a change rule
/// already named the same rule for this write (one finding, one id).
fn add_introduced(findings: &mut Vec<Finding>, introduced: Vec<manifest::Located>) {
    let named: BTreeSet<RuleId> = findings.iter().map(|f| f.rule).collect();
    findings.extend(introduced.into_iter().map(|l| l.finding).filter(|f| !named.contains(&f.rule)));
}

/// The part of a body the manifest rules read.
pub(crate) fn manifest_body(body: &Value) -> Value {
    let mut kept = Map::new();
    for field in ["spec", "data"] {
        if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
            kept.insert(field.to_owned(), v.clone());
        }
    }
    Value::Object(kept)
}

/// The state of an object whose body is not logged.
fn opaque(ctx: &EventContext<'_>) -> ObjectState {
    if ctx.verb.is_delete() { ObjectState::Deleted } else { ObjectState::Opaque }
}
