//! The detection engine: one audit event in, alerts out.
//!
//! For each relevant event, in stages, each in its own module around one
//! [`context::EventContext`]:
//!
//! 1. [`assess`]: find the object's baseline, say what changed, run the
//!    content rules;
//! 2. [`judge`]: judge the change against the policy (maintenance windows or
//!    the learned pattern, approved actors, change plans);
//! 3. [`correlate`]: merge the signals into the actor's open incident and
//!    publish the alert revision;
//! 4. [`commit`]: only then move the baseline and keep the indexes
//!    ([`index`]) current.
//!
//! That order makes retries safe: an event whose baseline already holds it is
//! a duplicate and stops at once; one that failed half-way is processed
//! again, finds its signals already in the incident, and only republishes
//! what was not yet published. CloudTrail events take their own path
//! ([`identity`]).

mod assess;
mod commit;
mod context;
mod correlate;
mod identity;
mod index;
mod judge;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::decode::{CloudTrailRecord, EventRecord};
use crate::policy::Policy;
use crate::store::{AlertSink, SinkError, Store, StoreError};

pub use identity::{Pending, PendingEvent};

/// What the engine counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Events already applied (duplicates, reruns, stale deliveries).
    pub duplicates: u64,
    /// Writes that changed nothing that matters (churn).
    pub routine: u64,
    /// Material changes judged approved and recorded without alert.
    pub approved: u64,
    /// Signals raised (after suppression).
    pub signals: u64,
    /// Signals silenced by a suppression.
    pub suppressed: u64,
    /// Alerts opened.
    pub alerts_opened: u64,
    /// Alert revisions published after the first.
    pub alerts_updated: u64,
}

impl Stats {
    /// Adds another run's counts to these.
    pub fn merge(&mut self, other: &Stats) {
        self.events += other.events;
        self.duplicates += other.duplicates;
        self.routine += other.routine;
        self.approved += other.approved;
        self.signals += other.signals;
        self.suppressed += other.suppressed;
        self.alerts_opened += other.alerts_opened;
        self.alerts_updated += other.alerts_updated;
    }
}

/// Why the engine could not process an event.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl EngineError {
    /// True when processing the event again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Store(StoreError::Conflict { .. }) => true,
            Self::Store(StoreError::Backend { retryable, .. }) => *retryable,
            Self::Store(StoreError::Corrupt { .. }) => false,
            Self::Sink(e) => e.retryable,
        }
    }
}

/// An engine failure, with the event it happened on.
#[derive(Debug, thiserror::Error)]
#[error("processing {at}: {source}")]
pub struct RunError {
    /// The event.
    pub at: String,
    /// What failed.
    #[source]
    pub source: EngineError,
}

/// How often a conflicting concurrent write is retried before giving up.
const CONFLICT_RETRIES: usize = 5;

/// The engine over a store and a policy.
pub struct Engine<'a, S: Store + ?Sized> {
    policy: &'a Policy,
    store: &'a S,
    stats: Stats,
    /// The earliest deadline among alerts waiting for CloudTrail, once known.
    next_deadline: Option<Option<DateTime<Utc>>>,
}

impl<'a, S: Store + ?Sized> Engine<'a, S> {
    /// An engine for one run (a replay, a Lambda invocation).
    pub fn new(policy: &'a Policy, store: &'a S) -> Self {
        Self { policy, store, stats: Stats::default(), next_deadline: None }
    }

    /// What has been counted so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Processes audit and CloudTrail events together in time order
    /// (CloudTrail first on a tie: credentials are issued before they are
    /// used), advancing the clock for alerts that wait on CloudTrail.
    pub fn run(
        &mut self,
        audit: &[EventRecord],
        cloudtrail: &[CloudTrailRecord],
        sink: &mut dyn AlertSink,
    ) -> Result<(), RunError> {
        let mut audit = audit.iter().peekable();
        let mut trail = cloudtrail.iter().peekable();
        loop {
            let take_trail = match (trail.peek(), audit.peek()) {
                (Some(t), Some(a)) => a.event.time().is_some_and(|at| t.event.event_time <= at),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return Ok(()),
            };
            if take_trail {
                let Some(record) = trail.next() else { return Ok(()) };
                let at = || format!("CloudTrail event {} ({})", record.event.event_id, record.location);
                self.tick(record.event.event_time, sink).map_err(|e| RunError { at: at(), source: e })?;
                self.process_cloudtrail(record, sink).map_err(|e| RunError { at: at(), source: e })?;
            } else {
                let Some(record) = audit.next() else { return Ok(()) };
                let at = || format!("audit event {} ({})", record.event.audit_id, record.location);
                if let Some(time) = record.event.time() {
                    self.tick(time, sink).map_err(|e| RunError { at: at(), source: e })?;
                }
                self.process(record, sink).map_err(|e| RunError { at: at(), source: e })?;
            }
        }
    }

    /// Processes one relevant audit event, publishing any alert revision to `sink`.
    pub fn process(&mut self, record: &EventRecord, sink: &mut dyn AlertSink) -> Result<(), EngineError> {
        self.stats.events += 1;
        let mut attempt = 0;
        loop {
            match self.process_once(record, sink) {
                Err(EngineError::Store(StoreError::Conflict { .. })) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    fn process_once(&mut self, record: &EventRecord, sink: &mut dyn AlertSink) -> Result<(), EngineError> {
        let Some(ctx) = self.context(record)? else { return Ok(()) };
        if ctx.denied {
            return self.denied(&ctx, sink);
        }
        let Some(a) = self.assess(&ctx)? else { return Ok(()) };
        if a.previous.as_ref().is_some_and(|(b, _)| b.covers(ctx.time, ctx.audit_id())) {
            self.stats.duplicates += 1;
            return Ok(());
        }
        if !a.material && a.findings.is_empty() {
            self.stats.routine += 1;
            return self.commit(&ctx, &a, true);
        }
        let verdict = self.judge(&ctx, &a)?;
        if verdict.approved {
            self.stats.approved += 1;
            return self.commit(&ctx, &a, true);
        }
        let clean = self.alert(&ctx, &a, verdict, sink)?;
        self.commit(&ctx, &a, clean)
    }
}
