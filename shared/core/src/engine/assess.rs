//! Assessment: what an event changed in its object, and what the content
//! rules say about that change.

use serde_json::json;

use super::Engine;
use super::context::EventContext;
use crate::audit::Kind;
use crate::baseline::{Baseline, ObjectState};
use crate::ingress::IngressState;
use crate::ingress::diff::diff;
use crate::keys::Used;
use crate::plan::manifest_digest;
use crate::rules::{self, Context, Finding, RuleId};
use crate::store::{Baselines, Store, StoreError};

/// What one event is, once looked at.
pub(super) struct Assessment {
    /// The object as it stands after the write.
    pub new_state: ObjectState,
    /// The change matters for judgement.
    pub material: bool,
    /// What the content rules found.
    pub findings: Vec<Finding>,
    /// `sha256:` of the new Ingress state, for plan digests.
    pub digest: Option<String>,
    /// The previous baseline and its version.
    pub previous: Option<(Baseline, u64)>,
    /// Judge windows through the secret-rotation rule instead of change.out-of-window.
    pub secret: bool,
}

impl Assessment {
    fn new(previous: Option<(Baseline, u64)>) -> Self {
        Self {
            new_state: ObjectState::Opaque,
            material: true,
            findings: Vec::new(),
            digest: None,
            previous,
            secret: false,
        }
    }

    /// The state the object was last seen in.
    pub fn previous_state(&self) -> Option<&ObjectState> {
        self.previous.as_ref().map(|(b, _)| &b.seen)
    }
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Looks at an event: its object, what changed, what the content rules say.
    /// `None` for objects the engine does not track (Secrets no Ingress uses, other ConfigMaps).
    pub(super) fn assess(&self, ctx: &EventContext<'_>) -> Result<Option<Assessment>, StoreError> {
        match ctx.object.kind {
            Kind::Ingress => self.assess_ingress(ctx).map(Some),
            Kind::Service => self.assess_service(ctx).map(Some),
            Kind::Secret => self.assess_secret(ctx),
            Kind::ConfigMap => self.assess_configmap(ctx),
            Kind::IngressClass => {
                let mut a = Assessment::new(self.previous(ctx)?);
                a.findings.push(Finding::new(
                    RuleId::ClassChanged,
                    format!(
                        "IngressClass {} {}: which controller serves the class may change",
                        ctx.name(),
                        ctx.verb.past()
                    ),
                    &json!({"verb": ctx.verb, "spec": ctx.record.event.object_after().map(|o| &o["spec"])}),
                ));
                a.new_state = opaque(ctx);
                Ok(Some(a))
            }
            // Gateway API objects: bodies are not logged on EKS, so every write is judged.
            Kind::Gateway | Kind::HttpRoute => {
                let mut a = Assessment::new(self.previous(ctx)?);
                a.new_state = opaque(ctx);
                Ok(Some(a))
            }
        }
    }

    fn previous(&self, ctx: &EventContext<'_>) -> Result<Option<(Baseline, u64)>, StoreError> {
        Ok(self.store.baseline(&ctx.object.baseline(), ctx.time)?.map(|v| (v.value, v.version)))
    }

    fn assess_ingress(&self, ctx: &EventContext<'_>) -> Result<Assessment, StoreError> {
        let mut a = Assessment::new(self.previous(ctx)?);
        let namespace = ctx.namespace();
        let known = self.policy.known_hosts(namespace);
        let known_host = |h: &str| known.as_ref().is_some_and(|ps| ps.iter().any(|p| p.matches(h)));
        let external = |svc: &str| self.external_name(&ctx.cluster, namespace, svc, ctx.time);
        let rules_ctx = Context {
            known_host: known.as_ref().map(|_| &known_host as &dyn Fn(&str) -> bool),
            external_name: &external,
        };
        if ctx.verb.is_delete() {
            a.new_state = ObjectState::Deleted;
            a.findings.push(Finding::new(
                RuleId::Deleted,
                format!("Ingress {namespace}/{} deleted", ctx.name()),
                &json!({"last_known": a.previous_state()}),
            ));
        } else if let Some(Ok(state)) = ctx.record.event.object_after().map(IngressState::from_value) {
            a.digest = Some(manifest_digest(&state));
            match a.previous_state() {
                Some(ObjectState::Ingress(old)) => {
                    let changes = diff(old, &state);
                    a.material = changes.iter().any(rules::is_material);
                    a.findings = changes.iter().flat_map(|c| rules::findings(c, &rules_ctx)).collect();
                }
                _ => {
                    let key = ctx.object.baseline();
                    let tls_elsewhere = |host: &str| self.tls_elsewhere(&ctx.cluster, host, &key, ctx.time);
                    // A create is a change; a first sight of an older object is not.
                    a.material = ctx.verb == crate::audit::Verb::Create;
                    a.findings = rules::first_sight(&state, &rules_ctx, &tls_elsewhere, a.material);
                }
            }
            a.new_state = ObjectState::Ingress(state);
        }
        // A patch logged without its result: the write is judged, and the
        // next write is compared with nothing rather than with a guess.
        Ok(a)
    }

    fn assess_service(&self, ctx: &EventContext<'_>) -> Result<Assessment, StoreError> {
        let mut a = Assessment::new(self.previous(ctx)?);
        let body = ctx.record.event.object_after();
        let field = |f: &str| body.and_then(|b| b["spec"][f].as_str()).map(str::to_owned);
        a.new_state = if ctx.verb.is_delete() {
            ObjectState::Deleted
        } else {
            ObjectState::Service { service_type: field("type"), external_name: field("externalName") }
        };
        a.material = false;
        let was_external = matches!(a.previous_state(), Some(ObjectState::Service { service_type: Some(t), .. }) if t == "ExternalName");
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
        Ok(a)
    }

    fn assess_secret(&self, ctx: &EventContext<'_>) -> Result<Option<Assessment>, StoreError> {
        if self.users(&ctx.cluster, ctx.namespace(), Used::Secret(ctx.name()), ctx.time)?.is_empty() {
            return Ok(None);
        }
        let mut a = Assessment::new(self.previous(ctx)?);
        a.secret = true;
        a.new_state = opaque(ctx);
        Ok(Some(a))
    }

    fn assess_configmap(&self, ctx: &EventContext<'_>) -> Result<Option<Assessment>, StoreError> {
        let (namespace, name) = (ctx.namespace(), ctx.name());
        if !self.policy.is_controller_configmap(namespace, name) {
            return Ok(None);
        }
        let mut a = Assessment::new(self.previous(ctx)?);
        a.findings.push(Finding::new(
            RuleId::ControllerConfigChanged,
            format!("ingress controller ConfigMap {namespace}/{name} {}", ctx.verb.past()),
            &json!({"verb": ctx.verb}),
        ));
        a.new_state = opaque(ctx);
        Ok(Some(a))
    }
}

/// The state of an object whose body is not logged.
fn opaque(ctx: &EventContext<'_>) -> ObjectState {
    if ctx.verb.is_delete() { ObjectState::Deleted } else { ObjectState::Opaque }
}
