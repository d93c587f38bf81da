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
//! That order makes retries safe: an event whose baseline already holds its
//! audit id is a duplicate and stops at once; one that failed half-way is
//! processed again, finds its signals already in the incident, and only
//! republishes what was not yet published. Events that cannot be trusted (from
//! a log group or account the stack does not watch, or dated implausibly far
//! ahead of their delivery) stop before any of this ([`trust`]). CloudTrail
//! events take their own path ([`identity`]).
//!
//! A failure is never swallowed: [`Engine::run`] goes on with the events of
//! other objects (those of the failed object keep their order: they wait) and
//! returns every failure, so the caller fails the invocation and AWS delivers
//! the batch again.

mod access;
mod assess;
mod commit;
mod context;
mod correlate;
mod guard;
mod identity;
mod index;
mod judge;
mod lifecycle;
mod outbox;
mod prefetch;
mod seed;
mod trust;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::decode::{CloudTrailRecord, EventRecord};
use crate::fault::{Fault, FaultClass};
use crate::keys::ObjectKey;
use crate::policy::Policy;
use crate::store::{Cached, Sink, Store, StoreError};

pub use guard::PolicyRecord;
pub use identity::{Pending, PendingEvent};
pub use lifecycle::{Caller, LifecycleError};
pub use outbox::{OUTBOX_GRACE, Swept};
pub use seed::{Seeded, state_of};

/// What the engine counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Events applied already (the same audit id delivered again).
    pub duplicates: u64,
    /// Writes that arrived after later writes of their object, judged in their place.
    pub late: u64,
    /// Writes that changed nothing that matters (churn).
    pub routine: u64,
    /// Material changes judged approved and recorded without alert.
    pub approved: u64,
    /// Events quarantined as untrustworthy (unwatched source, implausible time).
    pub quarantined: u64,
    /// Signals raised (after suppression).
    pub signals: u64,
    /// Signals silenced by a suppression.
    pub suppressed: u64,
    /// Signals below the alert threshold, kept with their incident without an alert.
    pub held: u64,
    /// Access events recorded (a person holding a pod's or service account's power).
    pub access: u64,
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
        self.late += other.late;
        self.routine += other.routine;
        self.approved += other.approved;
        self.quarantined += other.quarantined;
        self.signals += other.signals;
        self.suppressed += other.suppressed;
        self.held += other.held;
        self.access += other.access;
        self.alerts_opened += other.alerts_opened;
        self.alerts_updated += other.alerts_updated;
    }
}

/// Why the engine could not process an event: always the environment (the
/// store or an output failed), never the input.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing, quarantining or keeping evidence failed.
    #[error(transparent)]
    Sink(#[from] Fault),
}

impl EngineError {
    /// The kind of failure: a conflict that outlasted its retries counts as
    /// the store being unavailable; stored state that cannot be read is a defect.
    pub fn class(&self) -> FaultClass {
        match self {
            Self::Store(StoreError::Backend(f)) | Self::Sink(f) => f.class,
            Self::Store(StoreError::Conflict { .. }) => FaultClass::Unavailable,
            Self::Store(StoreError::Corrupt { .. }) => FaultClass::Other,
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

/// Every failure of a run, and the events left for the next delivery.
#[derive(Debug)]
pub struct RunFailures {
    /// The events that failed, in order.
    pub failed: Vec<RunError>,
    /// Events not processed: an earlier event of the same object failed, or time ran out.
    pub waiting: Vec<String>,
    /// The run stopped because its caller ran out of time.
    pub out_of_time: bool,
}

impl std::fmt::Display for RunFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} event(s) failed, {} left for the next delivery", self.failed.len(), self.waiting.len())?;
        if self.out_of_time {
            f.write_str(" (time ran out)")?;
        }
        if let Some(first) = self.failed.first() {
            write!(f, "; first: {}", crate::fault::chain(first))?;
        }
        Ok(())
    }
}

impl std::error::Error for RunFailures {}

impl RunFailures {
    /// The class of the first failure.
    pub fn class(&self) -> FaultClass {
        self.failed.first().map_or(FaultClass::Other, |e| e.source.class())
    }
}

/// How often a conflicting concurrent write is retried before giving up.
const CONFLICT_RETRIES: usize = 5;

/// The engine over a store and a policy.
pub struct Engine<'a, S: Store + ?Sized> {
    policy: &'a Policy,
    /// The store, read through a per-event memory (each key read once).
    store: Cached<'a, S>,
    stats: Stats,
    /// The earliest deadline among alerts waiting for CloudTrail, once known.
    next_deadline: Option<Option<DateTime<Utc>>>,
    /// The time the run started: the date of an event that has no other.
    now: DateTime<Utc>,
    /// Set when the caller fixed the time ([`Engine::at`]): the clock stands still.
    fixed: bool,
    /// Set on an event's first attempt: an alert id never stored is taken
    /// to be new without a read (its write's condition says so; a conflict
    /// makes the next attempt read).
    optimistic: bool,
}

impl<'a, S: Store + ?Sized> Engine<'a, S> {
    /// An engine for one run (a replay, a Lambda invocation).
    pub fn new(policy: &'a Policy, store: &'a S) -> Self {
        Self {
            policy,
            store: Cached::new(store),
            stats: Stats::default(),
            next_deadline: None,
            now: Utc::now(),
            fixed: false,
            optimistic: false,
        }
    }

    /// The same engine with another idea of the current time (for tests and replays).
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self.fixed = true;
        self
    }

    /// The wall clock, or the fixed time of [`Engine::at`]: when a revision
    /// is recorded, so the outbox sweep never takes one still being
    /// published for one left behind.
    pub(super) fn clock(&self) -> DateTime<Utc> {
        if self.fixed { self.now } else { Utc::now() }
    }

    /// What has been counted so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Processes audit and CloudTrail events together in time order
    /// (CloudTrail first on a tie: credentials are issued before they are
    /// used), advancing the clock for alerts that wait on CloudTrail.
    ///
    /// A failed event does not stop the run: later events of the same object
    /// wait (they keep their order for the next delivery); every other event
    /// is processed. Every failure is returned.
    pub fn run(
        &mut self,
        audit: &[EventRecord],
        cloudtrail: &[CloudTrailRecord],
        sink: &mut dyn Sink,
    ) -> Result<(), RunFailures> {
        self.run_while(audit, cloudtrail, sink, &mut || true)
    }

    /// [`Engine::run`], stopping before an event once `keep_going` says no
    /// (a Lambda function's time running out); what is left is returned as waiting.
    pub fn run_while(
        &mut self,
        audit: &[EventRecord],
        cloudtrail: &[CloudTrailRecord],
        sink: &mut dyn Sink,
        keep_going: &mut dyn FnMut() -> bool,
    ) -> Result<(), RunFailures> {
        let mut failures = RunFailures { failed: Vec::new(), waiting: Vec::new(), out_of_time: false };
        let mut blocked: BTreeSet<ObjectKey> = BTreeSet::new();
        let mut audit = audit.iter().peekable();
        let mut trail = cloudtrail.iter().peekable();
        loop {
            if (audit.peek().is_some() || trail.peek().is_some()) && !keep_going() {
                failures.out_of_time = true;
                failures.waiting.extend(audit.map(|r| format!("audit event {} ({})", r.event.audit_id, r.location)));
                failures
                    .waiting
                    .extend(trail.map(|r| format!("CloudTrail event {} ({})", r.event.event_id, r.location)));
                break;
            }
            let take_trail = match (trail.peek(), audit.peek()) {
                (Some(t), Some(a)) => a.time().is_some_and(|at| t.event.event_time <= at),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_trail {
                let Some(record) = trail.next() else { break };
                let at = || format!("CloudTrail event {} ({})", record.event.event_id, record.location);
                let result =
                    self.tick(record.event.event_time, sink).and_then(|()| self.process_cloudtrail(record, sink));
                if let Err(source) = result {
                    failures.failed.push(RunError { at: at(), source });
                }
            } else {
                let Some(record) = audit.next() else { break };
                let at = || format!("audit event {} ({})", record.event.audit_id, record.location);
                let object = self.object_of(record);
                if object.as_ref().is_some_and(|o| blocked.contains(o)) {
                    failures.waiting.push(at());
                    continue;
                }
                let result = self
                    .look_ahead(record, object.is_some())
                    .map_err(EngineError::from)
                    .and_then(|()| match record.time() {
                        Some(time) => self.tick(time, sink),
                        None => Ok(()),
                    })
                    .and_then(|()| self.process(record, sink));
                if let Err(source) = result {
                    failures.failed.push(RunError { at: at(), source });
                    blocked.extend(object);
                }
            }
        }
        if failures.failed.is_empty() && !failures.out_of_time { Ok(()) } else { Err(failures) }
    }

    /// Processes one relevant audit event, publishing any alert revision to `sink`.
    pub fn process(&mut self, record: &EventRecord, sink: &mut dyn Sink) -> Result<(), EngineError> {
        self.stats.events += 1;
        let mut attempt = 0;
        let result = loop {
            let counted = self.stats.clone();
            self.optimistic = attempt == 0;
            match self.process_once(record, sink) {
                Err(EngineError::Store(StoreError::Conflict { .. })) if attempt < CONFLICT_RETRIES => {
                    // Processed again from fresh reads, and counted once.
                    self.store.forget();
                    self.stats = counted;
                    attempt += 1;
                }
                other => break other,
            }
        };
        self.optimistic = false;
        // Fresh reads for every event: nothing read for this one is kept.
        self.store.forget();
        result
    }

    /// One attempt at an event. Its writes are held and written in two
    /// groups, each all or nothing: before the alert is published (the
    /// incident, the alert revision and its history), and once the event is
    /// done (the revision marked published, the baseline, the indexes and
    /// what the event taught). Kept evidence is stored before the second.
    fn process_once(&mut self, record: &EventRecord, sink: &mut dyn Sink) -> Result<(), EngineError> {
        self.store.stage();
        self.apply(record, sink)?;
        sink.settle()?;
        self.store.finish()?;
        Ok(())
    }

    fn apply(&mut self, record: &EventRecord, sink: &mut dyn Sink) -> Result<(), EngineError> {
        if let Some(distrust) = self.distrust(record) {
            return self.quarantine_untrusted(record, &distrust, sink);
        }
        if record.outcome == crate::decode::Outcome::Access {
            return self.record_access(record);
        }
        let Some(ctx) = self.context(record)? else { return Ok(()) };
        self.prefetch(&ctx)?;
        if ctx.denied {
            return self.denied(&ctx, sink);
        }
        let a = match self.assess(&ctx)? {
            assess::Look::Untracked => return Ok(()),
            assess::Look::Duplicate => {
                self.stats.duplicates += 1;
                return Ok(());
            }
            assess::Look::Change(a) => a,
        };
        if !a.newest {
            self.stats.late += 1;
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
