//! Reading ahead: what processing an event will read in the common case,
//! fetched in one batch, so the keys are read once and together instead of
//! one round trip each.

use super::Engine;
use super::context::EventContext;
use super::index::service_baseline;
use crate::audit::Kind;
use crate::ingress::{Backend, IngressState};
use crate::keys;
use crate::store::{Space, Store, StoreError};

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Reads ahead the object's baseline, the actor's activity in the
    /// namespace, the cluster's learning history, whether the actor was seen
    /// before, the actor's incident and the namespace's learned hosts; for
    /// an Ingress, the baselines of the Services it routes to and the TLS
    /// index of its hosts. A key read ahead that the event turns out not to
    /// need costs nothing more; one it needs and was not read ahead is read
    /// when needed.
    pub(super) fn prefetch(&self, ctx: &EventContext<'_>) -> Result<(), StoreError> {
        let (cluster, namespace) = (ctx.cluster.as_str(), ctx.namespace());
        let mut keys = vec![
            (Space::Baseline, ctx.object.baseline()),
            (Space::Activity, keys::activity(cluster, &ctx.actor_key, namespace)),
            (Space::Activity, keys::cluster_history(cluster)),
            (Space::Activity, keys::actor_seen(cluster, &ctx.actor.stable_name())),
            (Space::Incident, keys::incident(cluster, &ctx.actor_key)),
            (Space::Index, keys::namespace_hosts(cluster, namespace)),
        ];
        if ctx.object.kind == Kind::Ingress
            && let Some(Ok(state)) = ctx.record.event.object_after().map(IngressState::from_value)
        {
            for backend in state.backends() {
                if let Backend::Service { name, .. } = backend {
                    keys.push((Space::Baseline, service_baseline(cluster, namespace, name)));
                }
            }
            keys.extend(state.hosts().flatten().map(|host| (Space::Index, keys::tls_host(cluster, host))));
        }
        self.store.prefetch(&keys, ctx.time)
    }
}
