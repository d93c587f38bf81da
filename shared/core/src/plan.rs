//! Approved change plans: CI/CD says in advance what it is about to change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::actor::Actor;
use crate::ingress::IngressState;
use crate::policy::Pattern;

/// A registered plan: this actor may change these objects in this period,
/// optionally only into exactly this state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangePlan {
    /// A stable id (the ticket, or one derived from the plan).
    pub id: String,
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Object name pattern.
    pub name: Pattern,
    /// Actor pattern, matched against the username, IAM role ARN, session
    /// ARN, originating principal and service account.
    pub actor: Pattern,
    /// Valid from.
    pub valid_from: DateTime<Utc>,
    /// Valid until.
    pub valid_until: DateTime<Utc>,
    /// `sha256:<hex>` of the expected Ingress ([`manifest_digest`]), if pinned.
    #[serde(default)]
    pub digest: Option<String>,
    /// Change ticket, for the record.
    #[serde(default)]
    pub ticket: Option<String>,
}

/// Why a plan did not cover a change (the closest miss).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanVerdict {
    /// Covered by this plan.
    Covered(String),
    /// A plan matched everything but the manifest digest.
    DigestMismatch {
        /// The plan.
        plan: String,
        /// What it expected.
        expected: String,
        /// What was written.
        actual: Option<String>,
    },
    /// No plan matched.
    NoPlan,
}

impl ChangePlan {
    /// An id derived from the plan's content, for plans without a ticket.
    pub fn derived_id(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.cluster.as_str(),
            &self.namespace,
            self.name.as_str(),
            self.actor.as_str(),
            &self.valid_from.to_rfc3339(),
            &self.valid_until.to_rfc3339(),
            self.digest.as_deref().unwrap_or(""),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        format!("plan-{}", &hex::encode(hash.finalize())[..16])
    }

    fn covers_object(&self, actor: &Actor, name: &str, at: DateTime<Utc>) -> bool {
        let actor_ids = [
            Some(actor.kubernetes_username.as_str()),
            actor.role_arn.as_deref(),
            actor.iam_arn.as_deref(),
            actor.originating_principal.as_deref(),
            actor.service_account.as_deref(),
        ];
        self.valid_from <= at
            && at < self.valid_until
            && self.name.matches(name)
            && actor_ids.iter().flatten().any(|id| self.actor.matches(id))
    }
}

/// Finds the plan covering a change of `name` by `actor` at `at`, whose
/// resulting state has digest `digest` (for Ingresses).
pub fn judge(plans: &[ChangePlan], actor: &Actor, name: &str, at: DateTime<Utc>, digest: Option<&str>) -> PlanVerdict {
    let mut miss = PlanVerdict::NoPlan;
    for plan in plans.iter().filter(|p| p.covers_object(actor, name, at)) {
        match (&plan.digest, digest) {
            (None, _) => return PlanVerdict::Covered(plan.id.clone()),
            (Some(expected), Some(actual)) if expected == actual => return PlanVerdict::Covered(plan.id.clone()),
            (Some(expected), actual) => {
                miss = PlanVerdict::DigestMismatch {
                    plan: plan.id.clone(),
                    expected: expected.clone(),
                    actual: actual.map(str::to_owned),
                }
            }
        }
    }
    miss
}

/// The digest of an Ingress as deployed: `sha256:` over its model with the
/// namespace left out (manifests often omit it), so formatting, field order,
/// server-set fields and `last-applied-configuration` do not change it.
pub fn manifest_digest(state: &IngressState) -> String {
    let mut normal = state.clone();
    normal.namespace = None;
    normal.annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    // Serialising a plain struct with ordered maps cannot fail.
    let canonical = serde_json::to_vec(&normal).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(digest: Option<String>) -> ChangePlan {
        ChangePlan {
            id: "CHG-1".into(),
            cluster: "prod".into(),
            namespace: "shop".into(),
            name: Pattern::new("store*").unwrap(),
            actor: Pattern::new("arn:aws:iam::111122223333:role/Deploy").unwrap(),
            valid_from: "2024-05-01T00:00:00Z".parse().unwrap(),
            valid_until: "2024-05-02T00:00:00Z".parse().unwrap(),
            digest,
            ticket: None,
        }
    }

    fn deployer() -> Actor {
        Actor { role_arn: Some("arn:aws:iam::111122223333:role/Deploy".into()), ..Actor::default() }
    }

    #[test]
    fn a_plan_covers_its_objects_actor_and_period_only() {
        let at = "2024-05-01T12:00:00Z".parse().unwrap();
        let plans = [plan(None)];
        assert_eq!(judge(&plans, &deployer(), "storefront", at, None), PlanVerdict::Covered("CHG-1".into()));
        assert_eq!(judge(&plans, &deployer(), "admin", at, None), PlanVerdict::NoPlan);
        assert_eq!(judge(&plans, &Actor::default(), "storefront", at, None), PlanVerdict::NoPlan);
        let late = "2024-05-02T00:00:00Z".parse().unwrap();
        assert_eq!(judge(&plans, &deployer(), "storefront", late, None), PlanVerdict::NoPlan);
    }

    #[test]
    fn a_pinned_digest_must_match_and_ignores_formatting_and_server_fields() {
        let a = IngressState::from_value(&json!({"metadata": {"name": "storefront", "namespace": "shop",
            "resourceVersion": "9", "annotations": {"b": "2", "a": "1",
            "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"rules": [{"host": "shop.example.com"}]}}))
        .unwrap();
        let b = IngressState::from_value(&json!({"spec": {"rules": [{"host": "shop.example.com"}]},
            "metadata": {"annotations": {"a": "1", "b": "2"}, "name": "storefront"}}))
        .unwrap();
        assert_eq!(manifest_digest(&a), manifest_digest(&b));
        let at = "2024-05-01T12:00:00Z".parse().unwrap();
        let plans = [plan(Some(manifest_digest(&a)))];
        assert!(matches!(
            judge(&plans, &deployer(), "storefront", at, Some(&manifest_digest(&b))),
            PlanVerdict::Covered(_)
        ));
        let mut c = b.clone();
        c.annotations.insert("nginx.ingress.kubernetes.io/server-snippet".into(), "x".into());
        assert!(matches!(
            judge(&plans, &deployer(), "storefront", at, Some(&manifest_digest(&c))),
            PlanVerdict::DigestMismatch { .. }
        ));
    }
}
