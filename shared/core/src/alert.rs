//! Alerts: the product's output, one JSON object per incident.
//!
//! The contract (`shared/core/schema/alert.schema.json`) is what SNS
//! subscribers, the alerts table and `sentinel replay --format json` carry.
//! An alert is revised, never duplicated: later signals of the same incident
//! raise `revision` under the same `alert_id`, which derives from the inputs
//! alone, so retries and reruns produce the same id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::actor::{Actor, Credential};
use crate::rules::{RuleId, Severity};
use crate::text::escape_markup;

/// The contract version.
pub const SCHEMA_VERSION: &str = "1.0";

/// Most signals one alert holds; an incident with more continues in a new alert.
pub const MAX_SIGNALS: usize = 256;

/// Most bytes of JSON one alert takes: it must fit a DynamoDB item (400 KB)
/// beside its reporting attributes, and an SNS message (256 KB) beside its
/// message attributes.
pub const ALERT_BUDGET: usize = 192 * 1024;

/// An object an alert is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Resource {
    /// Plural resource, e.g. `ingresses`.
    pub kind: String,
    /// Namespace, if namespaced.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// One rule's finding about one change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The rule.
    pub rule: RuleId,
    /// Severity after policy and namespace adjustments.
    pub severity: Severity,
    /// One line for people (attacker-controlled parts are data; escape to render).
    pub summary: String,
    /// The change as data.
    pub evidence: Value,
    /// The audit event (or CloudTrail event) it came from.
    pub audit_id: String,
    /// When the change happened.
    pub time: DateTime<Utc>,
    /// The object.
    pub resource: Resource,
}

/// How far the actor behind an alert is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    /// A Kubernetes user or service account: nothing to resolve.
    Kubernetes,
    /// CloudTrail named the person or pipeline behind the IAM session.
    Resolved,
    /// An IAM session with a telling name (e.g. an e-mail), not confirmed by CloudTrail.
    SessionOnly,
    /// Waiting for CloudTrail to name the origin.
    Pending,
    /// CloudTrail did not name the origin within the grace period.
    Unresolved,
    /// A service account acted, and people who may be behind it are listed
    /// in `actor.possible_origins` (exec into its pod, a token requested for it).
    Inferred,
}

impl IdentityStatus {
    /// The status an actor has on its own, before any wait.
    pub fn of(actor: &Actor, generic_session: bool) -> Self {
        if actor.originating_principal.is_some() {
            Self::Resolved
        } else if !actor.is_iam() && !actor.possible_origins.is_empty() {
            Self::Inferred
        } else if !actor.is_iam() {
            Self::Kubernetes
        } else if generic_session {
            Self::Pending
        } else {
            Self::SessionOnly
        }
    }
}

/// An alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id.
    pub alert_id: String,
    /// Contract version.
    pub schema_version: String,
    /// Starts at 1; grows as signals merge in.
    pub revision: u32,
    /// Overall severity.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// EKS cluster.
    pub cluster: String,
    /// First signal's time.
    pub first_seen: DateTime<Utc>,
    /// Last signal's time.
    pub last_seen: DateTime<Utc>,
    /// Who did it.
    pub actor: Actor,
    /// The key signals were grouped by.
    pub actor_key: String,
    /// How far the actor is known.
    pub identity_status: IdentityStatus,
    /// Objects involved.
    pub resources: Vec<Resource>,
    /// Every signal, in order.
    pub signals: Vec<Signal>,
    /// True when a registered change plan covered every change (the alert
    /// then says what else was wrong: window, actor, identity).
    pub approved: bool,
    /// Every audit id involved.
    pub audit_ids: Vec<String>,
    /// The alert this one continues: the incident's earlier alert, full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<String>,
    /// Other alerts of the same originating principal: cross-references,
    /// never merged, so each alert keeps its own history and status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_alerts: Vec<String>,
}

/// An actor's open incident: which alert it is, and when it last grew.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The incident's alert; `None` while every signal was below the alert threshold.
    pub alert_id: Option<String>,
    /// Its last signal's time: the correlation window runs from here.
    pub last_seen: DateTime<Utc>,
    /// Signals below the alert threshold, kept until a signal opens the alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Signal>,
}

/// An alert as recorded, with how far it has been published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The alert at its latest revision.
    pub alert: Alert,
    /// The last revision published to the sink.
    pub published_revision: u32,
    /// When the latest revision was recorded (wall clock): a revision left
    /// unpublished longer than a minute is the outbox sweep's to publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl AlertRecord {
    /// True if the latest revision has not been published.
    pub fn unpublished(&self) -> bool {
        self.published_revision < self.alert.revision
    }
}

/// The id of an incident's alert: derived from the cluster, the actor's
/// credentials and the first signal, never from the clock, and not from what
/// CloudTrail says later.
pub fn alert_id(cluster: &str, credential: &Credential, first: &Signal) -> String {
    let mut hash = Sha256::new();
    for part in [cluster, &credential.to_string(), &first.audit_id, first.rule.as_str()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("isa-{}", &hex::encode(hash.finalize())[..24])
}

impl Alert {
    /// A new alert from its first signals.
    pub fn open(
        cluster: &str,
        actor: &Actor,
        actor_key: &str,
        identity_status: IdentityStatus,
        signals: Vec<Signal>,
        approved: bool,
    ) -> Option<Self> {
        let first = signals.first()?;
        let mut alert = Self {
            alert_id: alert_id(cluster, &actor.credential(), first),
            schema_version: SCHEMA_VERSION.to_owned(),
            revision: 1,
            severity: Severity::Low,
            title: String::new(),
            cluster: cluster.to_owned(),
            first_seen: first.time,
            last_seen: first.time,
            actor: actor.clone(),
            actor_key: actor_key.to_owned(),
            identity_status,
            resources: Vec::new(),
            signals: Vec::new(),
            approved,
            audit_ids: Vec::new(),
            continues: None,
            related_alerts: Vec::new(),
        };
        alert.absorb(signals, approved);
        alert.revision = 1;
        Some(alert)
    }

    /// True if `signal` is in the alert already (same rule, event and object).
    pub fn holds(&self, signal: &Signal) -> bool {
        self.signals
            .iter()
            .any(|o| o.rule == signal.rule && o.audit_id == signal.audit_id && o.resource == signal.resource)
    }

    /// True if the signals the alert does not hold yet fit in it, within
    /// [`MAX_SIGNALS`] and [`ALERT_BUDGET`].
    pub fn has_room_for(&self, signals: &[Signal]) -> bool {
        let fresh: Vec<&Signal> = signals.iter().filter(|s| !self.holds(s)).collect();
        if fresh.is_empty() {
            return true;
        }
        // Each signal adds itself, its object and its audit id at most.
        let added: usize = fresh
            .iter()
            .map(|s| crate::bound::size_of(s) + crate::bound::size_of(&s.resource) + s.audit_id.len() + 8)
            .sum();
        self.signals.len() + fresh.len() <= MAX_SIGNALS && crate::bound::size_of(self) + added <= ALERT_BUDGET
    }

    /// Merges signals in; returns false (and changes nothing) when every one
    /// is already there, as on a retry or rerun.
    pub fn merge(&mut self, signals: Vec<Signal>, approved: bool, actor: &Actor) -> bool {
        let fresh: Vec<Signal> = signals.into_iter().filter(|s| !self.holds(s)).collect();
        if fresh.is_empty() {
            return false;
        }
        // A later event may know more about the actor: keep what is known, add the origin.
        if self.actor.originating_principal.is_none() && actor.originating_principal.is_some() {
            self.actor.originating_principal.clone_from(&actor.originating_principal);
            self.actor.source_identity.clone_from(&actor.source_identity);
            self.identity_status = IdentityStatus::Resolved;
        }
        self.absorb(fresh, approved);
        true
    }

    fn absorb(&mut self, signals: Vec<Signal>, approved: bool) {
        self.approved = if self.signals.is_empty() { approved } else { self.approved && approved };
        self.signals.extend(signals);
        self.revision += 1;
        self.refresh();
    }

    /// Recomputes everything derived from the signals and the actor: ids,
    /// resources, times, severity and title.
    pub fn refresh(&mut self) {
        self.audit_ids.clear();
        self.resources.clear();
        for s in &self.signals {
            if !self.audit_ids.contains(&s.audit_id) {
                self.audit_ids.push(s.audit_id.clone());
            }
            if !self.resources.contains(&s.resource) {
                self.resources.push(s.resource.clone());
            }
        }
        if let (Some(first), Some(last)) =
            (self.signals.iter().map(|s| s.time).min(), self.signals.iter().map(|s| s.time).max())
        {
            self.first_seen = first;
            self.last_seen = last;
        }
        self.severity = self.overall_severity();
        self.title = self.make_title();
    }

    /// The highest signal severity, raised once for breadth (three or more
    /// rules or objects) and once more for an unapproved actor behind a high
    /// finding: many kinds of signal, or a stranger doing something
    /// dangerous, is worse than any one signal.
    fn overall_severity(&self) -> Severity {
        let mut severity = self.signals.iter().map(|s| s.severity).max().unwrap_or(Severity::Low);
        let mut rules: Vec<RuleId> = self.signals.iter().map(|s| s.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        if rules.len() >= 3 || self.resources.len() >= 3 {
            severity = severity.raised();
        }
        let stranger = rules.contains(&RuleId::UnapprovedActor);
        if stranger && self.signals.iter().any(|s| s.severity >= Severity::High && s.rule != RuleId::UnapprovedActor) {
            severity = severity.raised();
        }
        severity
    }

    fn make_title(&self) -> String {
        let top = self.signals.iter().max_by_key(|s| (s.severity, std::cmp::Reverse(s.time)));
        let more = self.signals.len().saturating_sub(1);
        match top {
            Some(top) if more > 0 => format!("{} by {} (+{more} more signals)", top.summary, self.actor.display()),
            Some(top) => format!("{} by {}", top.summary, self.actor.display()),
            None => String::new(),
        }
    }

    /// Readable text for terminals, chat and e-mail. Every string that came
    /// from the cluster is escaped for control characters, ANSI, Markdown and HTML.
    pub fn to_text(&self) -> String {
        self.to_text_since(0)
    }

    /// [`Alert::to_text`] listing only the signals after the first `shown`
    /// (those a reader of earlier revisions has not seen).
    pub fn to_text_since(&self, shown: usize) -> String {
        let e = |s: &str| escape_markup(s).into_owned();
        let mut out = format!(
            "[{}] {} rev {} on {}: {}\n",
            self.severity.as_str().to_uppercase(),
            self.alert_id,
            self.revision,
            e(&self.cluster),
            e(&self.title)
        );
        let a = &self.actor;
        out.push_str(&format!("  actor: {}", e(a.display())));
        if let Some(account) = &a.originating_account {
            out.push_str(&format!(" (account {})", e(account)));
        }
        if !a.kubernetes_username.is_empty() && a.kubernetes_username != a.display() {
            out.push_str(&format!(", user {}", e(&a.kubernetes_username)));
        }
        for (label, value) in
            [("iam", &a.iam_arn), ("session", &a.session_name), ("key", &a.access_key_id), ("as", &a.impersonated_user)]
        {
            if let Some(v) = value {
                out.push_str(&format!(", {label} {}", e(v)));
            }
        }
        let status = serde_json::to_value(self.identity_status).ok();
        out.push_str(&format!(" [identity {}]\n", status.as_ref().and_then(|v| v.as_str()).unwrap_or("")));
        for p in &a.possible_origins {
            out.push_str(&format!("  possibly: {} ({})\n", e(&p.principal), e(&p.via)));
        }
        if !self.related_alerts.is_empty() {
            out.push_str(&format!("  related: {}\n", self.related_alerts.join(", ")));
        }
        if shown > 0 && shown < self.signals.len() {
            out.push_str(&format!("  ({shown} earlier signals above; new:)\n"));
        }
        for s in self.signals.iter().skip(shown.min(self.signals.len())) {
            let r = &s.resource;
            let object =
                format!("{} {}/{}", r.kind, r.namespace.as_deref().unwrap_or("-"), r.name.as_deref().unwrap_or("-"));
            out.push_str(&format!(
                "  - {} {} [{}] {}: {}\n",
                s.time.format("%Y-%m-%dT%H:%M:%SZ"),
                s.rule,
                s.severity,
                e(&object),
                e(&s.summary)
            ));
        }
        out
    }
}
