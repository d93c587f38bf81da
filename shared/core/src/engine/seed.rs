//! Seeding: baselines from the cluster as it stands (`kubectl get … -o
//! json`), so a new deployment starts from the real state instead of judging
//! every object on first sight. A seeded object is recorded as approved, its
//! references indexed and its hosts learned; an object the engine already
//! knows is left as it is.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::assess::manifest_body;
use super::{Engine, EngineError};
use crate::audit::Kind;
use crate::baseline::{Baseline, ObjectState, Write};
use crate::ingress::IngressState;
use crate::keys::ObjectKey;
use crate::store::{Baselines, Expect, Store, StoreError};

/// What seeding did with one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seeded {
    /// Its baseline was written.
    Recorded,
    /// The engine already knows the object: left as it is.
    Known,
    /// Not an object the engine tracks (or a Secret: never stored).
    Untracked,
}

/// The state the engine keeps for an object of `kind` with this body.
pub fn state_of(kind: Kind, body: &Value) -> Option<ObjectState> {
    let state = match kind {
        Kind::Ingress => ObjectState::Ingress(IngressState::from_value(body).ok()?),
        Kind::Service => {
            let field = |f: &str| body["spec"][f].as_str().map(str::to_owned);
            ObjectState::Service { service_type: field("type"), external_name: field("externalName") }
        }
        // Secret contents are never stored.
        Kind::Secret => return None,
        Kind::ConfigMap
        | Kind::IngressClass
        | Kind::Gateway
        | Kind::HttpRoute
        | Kind::GrpcRoute
        | Kind::TlsRoute
        | Kind::ReferenceGrant => ObjectState::Manifest(manifest_body(body)),
    };
    Some(state.bounded())
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Records `body` as the approved state of `object`, unless the engine knows it already.
    pub fn seed(&mut self, object: &ObjectKey, body: &Value) -> Result<Seeded, EngineError> {
        if object.kind == Kind::ConfigMap && !self.policy.is_controller_configmap(&object.namespace, &object.name) {
            return Ok(Seeded::Untracked);
        }
        let Some(state) = state_of(object.kind, body) else { return Ok(Seeded::Untracked) };
        // Dated at the object's creation: a write seen later goes after it
        // (where neither carries a resourceVersion to order them).
        let time: DateTime<Utc> = body["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .filter(|t| *t <= self.now)
            .unwrap_or(self.now);
        let key = object.baseline();
        if self.store.baseline(&key, self.now)?.is_some() {
            return Ok(Seeded::Known);
        }
        let version = body["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok());
        let baseline = Baseline {
            writes: vec![Write {
                audit_id: format!(
                    "seed:{}",
                    version.map_or_else(|| crate::bound::sha256(body.to_string().as_bytes()), |v: u64| v.to_string())
                ),
                time,
                resource_version: version,
                actor: "seed".to_owned(),
                state: Some(state.clone()),
            }],
            approved: Some(state.clone()),
            trimmed: false,
        };
        match self.store.put_baseline(&key, &baseline, Expect::Absent, None, self.now) {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => return Ok(Seeded::Known),
            Err(e) => return Err(e.into()),
        }
        if let ObjectState::Ingress(ingress) = &state {
            self.index_references(object, None, Some(ingress), time)?;
            self.learn_hosts(object, ingress, time)?;
        }
        Ok(Seeded::Recorded)
    }
}
