//! Reference indexes: which Ingresses use a Secret or a Service, and which
//! serve a host over TLS. EKS logs no bodies for Secrets, so a write to one
//! matters only through the Ingresses that use it.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::baseline::ObjectState;
use crate::ingress::{Backend, IngressState};
use crate::keys::{self, ObjectKey, Used};
use crate::store::{Baselines, Space, Store, StoreError, Typed};

/// Most hosts remembered per namespace (the most recently seen).
const MAX_LEARNED_HOSTS: usize = 512;

/// The baseline key of a Service in a namespace.
pub(super) fn service_baseline(cluster: &str, namespace: &str, service: &str) -> String {
    ObjectKey {
        cluster: cluster.to_owned(),
        kind: crate::audit::Kind::Service,
        namespace: namespace.to_owned(),
        name: service.to_owned(),
    }
    .baseline()
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// The target of a Service of type ExternalName, if the service is one.
    pub(super) fn external_name(
        &self,
        cluster: &str,
        namespace: &str,
        service: &str,
        time: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let Some(baseline) = self.store.baseline(&service_baseline(cluster, namespace, service), time)? else {
            return Ok(None);
        };
        Ok(match baseline.value.seen() {
            Some(ObjectState::Service { service_type: Some(t), external_name }) if t == "ExternalName" => {
                Some(external_name.clone().unwrap_or_default())
            }
            _ => None,
        })
    }

    /// True if another Ingress than `own_key` serves `host` over TLS.
    pub(super) fn tls_elsewhere(
        &self,
        cluster: &str,
        host: &str,
        own_key: &str,
        time: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let users = self.store.get_typed::<Vec<String>>(Space::Index, &keys::tls_host(cluster, host), time)?;
        Ok(users.is_some_and(|v| v.value.iter().any(|k| k != own_key)))
    }

    /// Ingresses (names) of a namespace that use a Secret or Service.
    pub(super) fn users(
        &self,
        cluster: &str,
        namespace: &str,
        used: Used<'_>,
        time: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let key = keys::users(cluster, namespace, used);
        Ok(self.store.get_typed::<Vec<String>>(Space::Index, &key, time)?.map(|v| v.value).unwrap_or_default())
    }

    /// The hosts a namespace's Ingresses have served without objection.
    pub(super) fn learned_hosts(
        &self,
        cluster: &str,
        namespace: &str,
        time: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let key = keys::namespace_hosts(cluster, namespace);
        Ok(self.store.get_typed::<Vec<String>>(Space::Index, &key, time)?.map(|v| v.value).unwrap_or_default())
    }

    /// Adds an accepted Ingress's hosts to what its namespace has had (the
    /// newest [`MAX_LEARNED_HOSTS`]; wildcards are never learned).
    pub(super) fn learn_hosts(
        &self,
        object: &ObjectKey,
        state: &IngressState,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let hosts: Vec<String> = state.hosts().flatten().filter(|h| !h.contains('*')).map(str::to_owned).collect();
        if hosts.is_empty() {
            return Ok(());
        }
        let key = keys::namespace_hosts(&object.cluster, &object.namespace);
        self.store.update_typed::<Vec<String>>(
            Space::Index,
            &key,
            time,
            |_| None,
            |current| {
                let mut known = current.unwrap_or_default();
                let before = known.clone();
                for h in &hosts {
                    known.retain(|k| k != h);
                    known.push(h.clone());
                }
                let start = known.len().saturating_sub(MAX_LEARNED_HOSTS);
                known.drain(..start);
                (known != before).then_some(known)
            },
        )?;
        Ok(())
    }

    /// Keeps the Secret, Service and TLS-host indexes of one Ingress current.
    pub(super) fn index_references(
        &self,
        object: &ObjectKey,
        old: Option<&IngressState>,
        new: Option<&IngressState>,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (cluster, namespace) = (object.cluster.as_str(), object.namespace.as_str());
        let refs = |s: Option<&IngressState>| -> Vec<String> {
            let Some(s) = s else { return Vec::new() };
            let secrets = s.tls.iter().filter_map(|t| t.secret_name.as_deref().map(Used::Secret));
            let services = s.backends().filter_map(|b| match b {
                Backend::Service { name, .. } => Some(Used::Service(name)),
                Backend::Resource { .. } => None,
            });
            let mut out: Vec<String> = secrets.chain(services).map(|u| keys::users(cluster, namespace, u)).collect();
            out.sort();
            out.dedup();
            out
        };
        let hosts = |s: Option<&IngressState>| -> Vec<String> {
            let mut out: Vec<String> = s
                .map(|s| s.tls.iter().flat_map(|t| t.hosts.iter().map(|h| keys::tls_host(cluster, h))).collect())
                .unwrap_or_default();
            out.sort();
            out.dedup();
            out
        };
        let (name, key) = (object.name.as_str(), object.baseline());
        let (old_refs, new_refs) = (refs(old), refs(new));
        let (old_hosts, new_hosts) = (hosts(old), hosts(new));
        for index in old_refs.iter().filter(|r| !new_refs.contains(r)) {
            self.update_index(index, name, false, time)?;
        }
        for index in new_refs.iter().filter(|r| !old_refs.contains(r)) {
            self.update_index(index, name, true, time)?;
        }
        for index in old_hosts.iter().filter(|r| !new_hosts.contains(r)) {
            self.update_index(index, &key, false, time)?;
        }
        for index in new_hosts.iter().filter(|r| !old_hosts.contains(r)) {
            self.update_index(index, &key, true, time)?;
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
}
