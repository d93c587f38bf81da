//! The outbox sweep. A revision is recorded before it is published and
//! marked published after: an invocation that fails in between (or ends on
//! the dead-letter queue) leaves it recorded and unpublished. The sweep,
//! run every minute, publishes each revision left so for more than a minute,
//! and fires the `identity.unresolved` deadlines that are due, so neither
//! waits for another event to arrive.
//!
//! One duplicate window remains: a crash after SNS accepted a revision and
//! before it was marked published sends that revision again. Both messages
//! carry the same `alert_id` and `revision` (message attributes and body), so
//! a subscriber keeps the first and drops the other.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{Engine, EngineError};
use crate::store::{AlertStore, Expect, Sink, Store, StoreError, Versioned};

/// How long a revision may stay unpublished before the sweep publishes it.
pub const OUTBOX_GRACE: Duration = Duration::minutes(1);

/// What a sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Revisions found unpublished past the grace period.
    pub found: u64,
    /// Revisions published.
    pub published: u64,
    /// Revisions published meanwhile by someone else.
    pub raced: u64,
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Publishes every revision left unpublished for more than a minute
    /// before `now`, and fires the identity deadlines due by `now`.
    pub fn sweep(&mut self, now: DateTime<Utc>, sink: &mut dyn Sink) -> Result<Swept, EngineError> {
        self.tick(now, sink)?;
        let mut swept = Swept::default();
        for key in self.store.unpublished_alerts(now - OUTBOX_GRACE, now)? {
            swept.found += 1;
            // Read again, consistently: an invocation may have published it
            // since the index was read.
            let Some(current) = self.store.stored_alert(&key, now)? else { continue };
            if !current.value.unpublished() {
                swept.raced += 1;
                continue;
            }
            let Versioned { value: mut stored, version } = current;
            sink.publish(&stored.alert)?;
            stored.published_revision = stored.alert.revision;
            match self.store.put_alert(&key, &stored, Expect::Version(version), None, now) {
                Ok(_) => swept.published += 1,
                // Marked meanwhile: the revision went out twice, same id and revision.
                Err(StoreError::Conflict { .. }) => swept.raced += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(swept)
    }
}
