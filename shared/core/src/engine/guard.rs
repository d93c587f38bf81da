//! The policy in force, watched. The policy is where an insider would hide a
//! change: a suppression for `pipeline.tampering`, a wider window, a resource
//! dropped from `pipeline`. Each section of the policy in force is kept as a
//! digest in the store; when a run starts under a policy that differs from
//! the recorded one, the difference is a `pipeline.tampering` signal (a
//! protected rule: the new policy cannot suppress it, lower it or hold it
//! below the alert threshold, so it is judged as under the policy before
//! it). Who made the change is in the CloudTrail record of the function
//! update that delivered it, a signal of its own.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::correlate::Attribution;
use super::{Engine, EngineError};
use crate::actor::Actor;
use crate::alert::{IdentityStatus, Resource};
use crate::keys;
use crate::rules::{Finding, RuleId};
use crate::store::{Expect, Sink, Space, Store, Typed as _};

/// The recorded policy: a digest per section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// Section name → digest of its value.
    pub sections: BTreeMap<String, String>,
    /// When this policy was first seen in force.
    pub since: DateTime<Utc>,
}

fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Compares the policy in force with the one recorded, records it, and
    /// raises `pipeline.tampering` naming the sections that changed. The
    /// first policy ever seen is recorded without a signal.
    pub fn check_policy(&mut self, sink: &mut dyn Sink) -> Result<Vec<String>, EngineError> {
        let now = self.now;
        let sections: BTreeMap<String, String> =
            self.policy.sections().into_iter().map(|(name, text)| (name.to_owned(), digest(&text))).collect();
        let key = keys::policy_in_force(&self.policy.cluster);
        let recorded = self.store.get_typed::<PolicyRecord>(Space::Index, &key, now)?;
        let changed: Vec<String> = match &recorded {
            None => Vec::new(),
            Some(r) => sections
                .iter()
                .filter(|(name, d)| r.value.sections.get(*name) != Some(*d))
                .map(|(name, _)| name.clone())
                .chain(r.value.sections.keys().filter(|n| !sections.contains_key(*n)).cloned())
                .collect(),
        };
        if recorded.is_some() && changed.is_empty() {
            return Ok(changed);
        }
        let expect = Expect::from_current(recorded.as_ref().map(|r| r.version));
        let record = PolicyRecord { sections, since: now };
        if !changed.is_empty() {
            self.policy_signal(&changed, recorded.as_ref().map(|r| r.value.since), &record, &key, sink)?;
        }
        // Recorded only once the signal is: a failure before this point
        // leaves the change to be seen again on the retry. A conflict means
        // another invocation recorded the same change (its signal has the
        // same id and joins the same incident).
        match self.store.put_typed(Space::Index, &key, &record, expect, None, now) {
            Ok(_) | Err(crate::store::StoreError::Conflict { .. }) => Ok(changed),
            Err(e) => Err(e.into()),
        }
    }

    fn policy_signal(
        &mut self,
        changed: &[String],
        since: Option<DateTime<Utc>>,
        record: &PolicyRecord,
        key: &str,
        sink: &mut dyn Sink,
    ) -> Result<(), EngineError> {
        let now = self.now;
        let suppressed: Vec<&str> =
            self.policy.suppressions.iter().filter(|s| s.expires > now).map(|s| s.rule.as_str()).collect();
        let finding = Finding::new(
            RuleId::PipelineTampering,
            format!("the policy in force changed: {}", changed.join(", ")),
            &json!({
                "changed_sections": changed,
                "in_force_since": since,
                "suppressed_rules_now": suppressed,
            }),
        );
        let resource = Resource { kind: "sentinel:policy".to_owned(), namespace: None, name: Some(key.to_owned()) };
        let id = format!("policy:{}", digest(&format!("{:?}", record.sections)));
        let signals: Vec<_> = self.signal(finding, &resource, &id, now).into_iter().collect();
        let actor = Actor { kubernetes_username: "the stack's configuration".to_owned(), ..Actor::default() };
        let cluster = self.policy.cluster.clone();
        let by = Attribution {
            cluster: &cluster,
            actor: &actor,
            actor_key: "stack:policy",
            status: IdentityStatus::Unresolved,
        };
        self.correlate(&by, signals, false, now, sink).map(|_| ())
    }
}
