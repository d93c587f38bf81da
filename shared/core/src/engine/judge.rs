//! Judgement: is a material change approved? Inside a maintenance window (or,
//! where none is configured, within the actor's learned hours), by an
//! approved actor (where the policy names any for the namespace), under a
//! change plan whose manifest digest matches (where the policy requires
//! plans). All of them: approved, recorded without alert. Otherwise each miss
//! is a finding. Once the cluster's learning period has passed, an actor
//! never seen changing its Ingress layer is a finding too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Engine;
use super::assess::Assessment;
use super::context::EventContext;
use crate::alert::IdentityStatus;
use crate::keys;
use crate::pattern::Usual;
use crate::plan::{PlanVerdict, judge as judge_plan};
use crate::policy::WindowVerdict;
use crate::rules::{Finding, RuleId};
use crate::store::{Activity, Plans, Space, Store, StoreError, Typed};

/// What the engine knows of a cluster as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ClusterHistory {
    /// The first event seen: the learning period runs from here.
    pub since: DateTime<Utc>,
}

/// The verdict on one change.
pub(super) struct Verdict {
    /// Approved on every count: record it, raise nothing.
    pub approved: bool,
    /// A change plan covered it.
    pub plan_ok: bool,
    /// The counts it failed on, as findings (empty for a change that is not material).
    pub findings: Vec<Finding>,
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Judges a change against windows, approved actors and plans.
    pub(super) fn judge(&self, ctx: &EventContext<'_>, a: &Assessment) -> Result<Verdict, StoreError> {
        let (namespace, name, time) = (ctx.namespace(), ctx.name(), ctx.time);
        let approved_actor = self.policy.approved_actor(&ctx.actor, namespace);
        // A policy that names nobody for a namespace is not violated by anybody.
        let actor_ok = approved_actor.is_some() || !self.policy.actors_cover(namespace);
        let window = self.policy.window(namespace, time);
        let anytime = approved_actor.is_some_and(|a| a.anytime);
        let window_ok = match &window {
            WindowVerdict::Inside(_) => true,
            WindowVerdict::Frozen(_) => false,
            WindowVerdict::Outside => anytime,
            WindowVerdict::NoneConfigured => anytime || self.usual(ctx)? != Usual::No,
        };
        let plan = if self.policy.require_plans {
            let plans = self.store.plans(&ctx.cluster, namespace, time)?;
            judge_plan(&plans, &ctx.actor, name, time, a.digest.as_deref())
        } else {
            PlanVerdict::Covered("plans not required".into())
        };
        let plan_ok = matches!(plan, PlanVerdict::Covered(_));
        let new_actor = if a.material { self.new_actor(ctx)? } else { None };
        // Approval is positive: an actor the policy names, in a window, under a
        // plan where plans are required. Only then are content findings silent;
        // a policy that names nobody approves nothing, it just objects to less.
        if a.material && approved_actor.is_some() && window_ok && plan_ok && new_actor.is_none() {
            return Ok(Verdict { approved: true, plan_ok, findings: Vec::new() });
        }
        let mut findings = Vec::new();
        if !a.material {
            return Ok(Verdict { approved: false, plan_ok, findings });
        }
        if let Some(learning_since) = new_actor {
            findings.push(Finding::new(
                RuleId::NewActor,
                format!("{} changes the Ingress layer of {} for the first time", ctx.actor.display(), ctx.cluster),
                &json!({"actor": ctx.actor.stable_name(), "cluster_learned_since": learning_since}),
            ));
        }
        let object = ctx.resource.to_string();
        if !window_ok {
            let why = match &window {
                WindowVerdict::NoneConfigured => "far outside the actor's usual hours".to_owned(),
                other => other.to_string(),
            };
            findings.push(if a.secret {
                Finding::new(RuleId::TlsSecretRotated, format!("TLS Secret {name} written {why}"), &window)
            } else {
                Finding::new(RuleId::OutOfWindow, format!("change to {object} {why}"), &window)
            });
        }
        if !actor_ok {
            findings.push(Finding::new(
                RuleId::UnapprovedActor,
                format!("{} is not an approved actor for namespace {namespace}", ctx.actor.display()),
                &json!({"actor_key": ctx.actor_key}),
            ));
        }
        match &plan {
            PlanVerdict::Covered(_) => {}
            PlanVerdict::NoPlan => findings.push(Finding::new(
                RuleId::Unplanned,
                format!("no change plan covers {object}"),
                &json!({"plan": null}),
            )),
            PlanVerdict::DigestMismatch { plan, expected, actual } => findings.push(Finding::new(
                RuleId::Unplanned,
                format!("{object} differs from the manifest approved in plan {plan}"),
                &json!({"plan": plan, "expected_digest": expected, "actual_digest": actual}),
            )),
        }
        if self.identity_status(&ctx.actor) == IdentityStatus::Pending
            && self.policy.identity.unresolved_grace.0.is_zero()
        {
            findings.push(Finding::new(
                RuleId::IdentityUnresolved,
                format!(
                    "IAM session {} cannot be traced to a person or pipeline",
                    ctx.actor.iam_arn.as_deref().unwrap_or("(unknown)")
                ),
                &json!({"access_key_id": ctx.actor.access_key_id, "session_name": ctx.actor.session_name}),
            ));
        }
        Ok(Verdict { approved: false, plan_ok, findings })
    }

    /// When the cluster's learning began, if it has passed and the actor was
    /// never seen making a material change to the cluster's Ingress layer.
    fn new_actor(&self, ctx: &EventContext<'_>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(history) =
            self.store.get_typed::<ClusterHistory>(Space::Activity, &keys::cluster_history(&ctx.cluster), ctx.time)?
        else {
            return Ok(None);
        };
        let since = history.value.since;
        if ctx.time - since < self.policy.learning.min_history.0 {
            return Ok(None);
        }
        let seen =
            self.store.get(Space::Activity, &keys::actor_seen(&ctx.cluster, &ctx.actor.stable_name()), ctx.time)?;
        Ok(seen.is_none().then_some(since))
    }

    /// The learned pattern's verdict on the actor changing the namespace now.
    fn usual(&self, ctx: &EventContext<'_>) -> Result<Usual, StoreError> {
        let key = keys::activity(&ctx.cluster, &ctx.actor_key, ctx.namespace());
        Ok(self
            .store
            .activity(&key, ctx.time)?
            .map_or(Usual::Learning, |m| m.value.usual(ctx.time, &self.policy.learning)))
    }
}
