//! Commit: the last stage. A write is remembered in its object's baseline
//! only after every signal of it is recorded and published. Only the newest
//! write moves the object's state, its approved state and the reference
//! indexes: a late write takes its place in the history and changes nothing
//! that came after it. Accepted changes teach the actor's learned pattern.

use chrono::{DateTime, Utc};

use super::assess::Assessment;
use super::context::EventContext;
use super::judge::ClusterHistory;
use super::{Engine, EngineError};
use crate::baseline::{Baseline, ObjectState, Write};
use crate::keys;
use crate::pattern::ActivityModel;
use crate::store::{Baselines, Expect, Space, Store, Typed};

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Remembers the write (last), keeps the indexes, learns from accepted changes.
    pub(super) fn commit(&mut self, ctx: &EventContext<'_>, a: &Assessment, accepted: bool) -> Result<(), EngineError> {
        let (mut baseline, version) = match &a.baseline {
            Some((b, v)) => (b.clone(), Some(*v)),
            None => (Baseline::default(), None),
        };
        if a.newest {
            // A patch logged without its result leaves the indexes as they were.
            let old = match baseline.seen() {
                Some(ObjectState::Ingress(s)) => Some(s.clone()),
                _ => None,
            };
            match &a.new_state {
                ObjectState::Ingress(new) => self.index_references(&ctx.object, old.as_ref(), Some(new), ctx.time)?,
                ObjectState::Deleted if old.is_some() => {
                    self.index_references(&ctx.object, old.as_ref(), None, ctx.time)?;
                }
                _ => {}
            }
            if accepted {
                baseline.approved = Some(a.new_state.clone());
                if let ObjectState::Ingress(state) = &a.new_state {
                    self.learn_hosts(&ctx.object, state, ctx.time)?;
                }
            }
        }
        baseline.record(
            a.index,
            Write {
                audit_id: ctx.audit_id().to_owned(),
                time: ctx.time,
                resource_version: ctx.record.event.resource_version(),
                actor: ctx.actor_key.clone(),
                state: Some(a.new_state.clone()),
            },
        );
        if a.material {
            self.remember_actor(ctx)?;
        }
        if accepted && a.material {
            let key = keys::activity(&ctx.cluster, &ctx.actor_key, ctx.namespace());
            let time = ctx.time;
            self.store.update_typed::<ActivityModel>(
                Space::Activity,
                &key,
                time,
                |_| None,
                |current| {
                    let mut model = current.unwrap_or_else(|| ActivityModel::new(time));
                    model.learn(time);
                    Some(model)
                },
            )?;
        }
        self.store.put_baseline(&ctx.object.baseline(), &baseline, Expect::from_current(version), None, ctx.time)?;
        Ok(())
    }

    /// Remembers that the actor has changed the cluster's Ingress layer (a
    /// new actor raises its signal once), and when the cluster was first seen.
    fn remember_actor(&self, ctx: &EventContext<'_>) -> Result<(), EngineError> {
        let time = ctx.time;
        self.store.update_typed::<ClusterHistory>(
            Space::Activity,
            &keys::cluster_history(&ctx.cluster),
            time,
            |_| None,
            |current| match current {
                Some(h) if h.since <= time => None,
                _ => Some(ClusterHistory { since: time }),
            },
        )?;
        let key = keys::actor_seen(&ctx.cluster, &ctx.actor.stable_name());
        self.store.update_typed::<DateTime<Utc>>(
            Space::Activity,
            &key,
            time,
            |_| None,
            |current| match current {
                Some(first) if first <= time => None,
                _ => Some(time),
            },
        )?;
        Ok(())
    }
}
