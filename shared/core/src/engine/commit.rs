//! Commit: the last stage. The baseline moves only after every signal of the
//! change is recorded and published; the reference indexes follow the new
//! state; accepted changes teach the actor's learned pattern.

use super::assess::Assessment;
use super::context::EventContext;
use super::{Engine, EngineError};
use crate::baseline::{Baseline, ObjectState};
use crate::keys;
use crate::pattern::ActivityModel;
use crate::store::{Baselines, Expect, Space, Store, Typed};

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Moves the baseline (last), keeps the indexes, learns from accepted changes.
    pub(super) fn commit(&mut self, ctx: &EventContext<'_>, a: &Assessment, accepted: bool) -> Result<(), EngineError> {
        let previous_approved = a.previous.as_ref().and_then(|(b, _)| b.approved.clone());
        let baseline = Baseline {
            seen: a.new_state.clone(),
            approved: if accepted { Some(a.new_state.clone()) } else { previous_approved },
            time: ctx.time,
            audit_id: ctx.audit_id().to_owned(),
            actor: ctx.actor_key.clone(),
        };
        let old = match a.previous_state() {
            Some(ObjectState::Ingress(s)) => Some(s),
            _ => None,
        };
        // A patch logged without its result leaves the indexes as they were.
        match &a.new_state {
            ObjectState::Ingress(new) => self.index_references(&ctx.object, old, Some(new), ctx.time)?,
            ObjectState::Deleted if old.is_some() => self.index_references(&ctx.object, old, None, ctx.time)?,
            _ => {}
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
        let expect = Expect::from_current(a.previous.as_ref().map(|(_, v)| *v));
        self.store.put_baseline(&ctx.object.baseline(), &baseline, expect, None, ctx.time)?;
        Ok(())
    }
}
