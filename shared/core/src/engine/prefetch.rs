//! Reading ahead: what processing an event will read in the common case,
//! fetched in one step (a batch of keys, with any query sent alongside), so
//! the keys are read once and together instead of one round trip each.

use super::Engine;
use super::context::EventContext;
use super::index::service_baseline;
use crate::actor::{Actor, Credential};
use crate::audit::Kind;
use crate::decode::{EventRecord, Outcome};
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
        // Change plans are a query: sent alongside the batch.
        let plans = [(Space::Plan, keys::plans(cluster, namespace))];
        self.store.prefetch(&keys, &plans, ctx.time)
    }

    /// Reads ahead, before an audit event's tick, what the tick and the
    /// event's identity will read: the credentials' identity record and,
    /// when the tick is due to look, the alerts waiting for CloudTrail.
    /// Everything read before is forgotten: every event reads afresh.
    /// `tracked`: the event writes an object of a tracked kind.
    pub(super) fn look_ahead(&self, record: &EventRecord, tracked: bool) -> Result<(), StoreError> {
        self.store.forget();
        let time = self.time_of(record).0;
        let mut keys = Vec::new();
        if tracked || record.outcome == Outcome::Access {
            let actor = Actor::from_event(&record.event);
            if let (None, Some(key)) = (&actor.originating_principal, actor.access_key_id) {
                keys.push((Space::Identity, keys::identity(&Credential::AccessKey(key))));
            }
        }
        let pending = match record.time() {
            Some(at) if self.tick_due(at) => vec![(Space::Pending, String::new())],
            _ => Vec::new(),
        };
        self.store.prefetch(&keys, &pending, time)
    }
}
