//! Judgement: is a material change approved? Inside a maintenance window (or,
//! where none is configured, within the actor's learned hours), by an
//! approved actor, under a change plan whose manifest digest matches. All
//! three: approved, recorded without alert. Otherwise each miss is a finding.

use serde_json::json;

use super::Engine;
use super::assess::Assessment;
use super::context::{EventContext, object_text};
use crate::alert::IdentityStatus;
use crate::keys;
use crate::pattern::Usual;
use crate::plan::{PlanVerdict, judge as judge_plan};
use crate::policy::WindowVerdict;
use crate::rules::{Finding, RuleId};
use crate::store::{Activity, Plans, Store, StoreError};

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
        if a.material && approved_actor.is_some() && window_ok && plan_ok {
            return Ok(Verdict { approved: true, plan_ok, findings: Vec::new() });
        }
        let mut findings = Vec::new();
        if !a.material {
            return Ok(Verdict { approved: false, plan_ok, findings });
        }
        let object = object_text(&ctx.resource);
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
        if approved_actor.is_none() {
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

    /// The learned pattern's verdict on the actor changing the namespace now.
    fn usual(&self, ctx: &EventContext<'_>) -> Result<Usual, StoreError> {
        let key = keys::activity(&ctx.cluster, &ctx.actor_key, ctx.namespace());
        Ok(self
            .store
            .activity(&key, ctx.time)?
            .map_or(Usual::Learning, |m| m.value.usual(ctx.time, &self.policy.learning)))
    }
}
