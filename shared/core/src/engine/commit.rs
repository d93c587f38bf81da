//! Commit: the last stage. A write is remembered in its object's baseline
//! only after every signal of it is recorded and published. Only the newest
//! write moves the object's state, its approved state and the reference
//! indexes: a late write takes its place in the history and changes nothing
//! that came after it. Accepted changes teach the actor's learned pattern.

use super::assess::Assessment;
use super::context::EventContext;
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
}
