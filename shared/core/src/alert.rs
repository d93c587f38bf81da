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

/// `kind namespace/name`, `-` for what is not known (raw: escape it for display).
impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace.as_deref().unwrap_or("-"), self.name.as_deref().unwrap_or("-"))
    }
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
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Resolved => "resolved",
            Self::SessionOnly => "session_only",
            Self::Pending => "pending",
            Self::Unresolved => "unresolved",
            Self::Inferred => "inferred",
        }
    }

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

/// Where an alert stands with the people who handle it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody has taken it yet.
    #[default]
    Open,
    /// Someone is looking at it.
    Acknowledged,
    /// Dealt with: the change was reverted or explained.
    Resolved,
    /// Not what it looked like.
    FalsePositive,
    /// Real, and accepted as it is.
    AcceptedRisk,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 5] =
        [Self::Open, Self::Acknowledged, Self::Resolved, Self::FalsePositive, Self::AcceptedRisk];

    /// True for the statuses that close an alert.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Resolved | Self::FalsePositive | Self::AcceptedRisk)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::FalsePositive => "false_positive",
            Self::AcceptedRisk => "accepted_risk",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.replace('-', "_");
        Self::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            format!("unknown status {s:?}: expected open, acknowledged, resolved, false-positive or accepted-risk")
        })
    }
}

/// A status change: to what, from what, who, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The new status.
    pub status: Status,
    /// The status before.
    pub from: Status,
    /// Who made the change, as authenticated (an IAM ARN, an OS user, or
    /// `ingress-sentinel` when a new signal reopens the alert).
    pub by: String,
    /// The name the caller gave (`--as`), beside the authenticated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// What a revision changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revised {
    /// Signals joined (the first revision too).
    #[default]
    Signals,
    /// What is known of the actor changed (CloudTrail named the origin, or a
    /// deadline passed), or a related alert was cross-referenced.
    Identity,
    /// Someone acknowledged, closed or reopened it.
    Status,
}

impl Revised {
    /// The snake_case name (the `event` message attribute).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signals => "signals",
            Self::Identity => "identity",
            Self::Status => "status",
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
    /// Where it stands with the people who handle it.
    #[serde(default)]
    pub status: Status,
    /// Every status change, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_changes: Vec<StatusChange>,
    /// What this revision changed.
    #[serde(default)]
    pub revised_for: Revised,
}

/// One revision of an alert, as the history table keeps it: when and why it
/// was recorded, and what it added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RevisionRecord {
    /// The alert.
    pub alert_id: String,
    /// The revision.
    pub revision: u32,
    /// When it was recorded (wall clock).
    pub recorded_at: DateTime<Utc>,
    /// What it changed.
    pub revised_for: Revised,
    /// The alert's severity at this revision.
    pub severity: Severity,
    /// Its status at this revision.
    pub status: Status,
    /// How far the actor was known.
    pub identity_status: IdentityStatus,
    /// Its title at this revision.
    pub title: String,
    /// The signals this revision added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals_added: Vec<Signal>,
    /// The status change this revision made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_change: Option<StatusChange>,
}

impl RevisionRecord {
    /// The record of `alert`'s current revision, after one that held `before` signals.
    pub fn of(alert: &Alert, before: usize, recorded_at: DateTime<Utc>) -> Self {
        Self {
            alert_id: alert.alert_id.clone(),
            revision: alert.revision,
            recorded_at,
            revised_for: alert.revised_for,
            severity: alert.severity,
            status: alert.status,
            identity_status: alert.identity_status,
            title: alert.title.clone(),
            signals_added: alert.signals.iter().skip(before).cloned().collect(),
            status_change: (alert.revised_for == Revised::Status)
                .then(|| alert.status_changes.last().cloned())
                .flatten(),
        }
    }
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

/// The rules of some signals, each once, in order of first appearance.
fn distinct_rules(signals: &[Signal]) -> Vec<RuleId> {
    let mut out = Vec::new();
    for s in signals {
        if !out.contains(&s.rule) {
            out.push(s.rule);
        }
    }
    out
}

/// The id of an incident's alert: derived from the cluster, the actor's
/// credentials, the correlation window its first signal falls in
/// (`opened`, the window's start) and the alert it continues, if any; never
/// from the clock, from what CloudTrail says later, or from which of the
/// incident's signals happened to be processed first — so function
/// instances processing one incident's events at the same time agree on it
/// (for an incident that spans two windows, the window of the first signal
/// processed decides).
/// An actor's next incident opens at least a window after the last one's
/// first signal, in a later window: ids do not repeat.
pub fn alert_id(cluster: &str, credential: &Credential, opened: DateTime<Utc>, continues: Option<&str>) -> String {
    let mut hash = Sha256::new();
    let opened = opened.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for part in [cluster, &credential.to_string(), &opened, continues.unwrap_or_default()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("isa-{}", &hex::encode(hash.finalize())[..24])
}

impl Alert {
    /// A new alert from its first signals, under `alert_id` ([`alert_id`]).
    pub fn open(
        alert_id: String,
        cluster: &str,
        actor: &Actor,
        actor_key: &str,
        identity_status: IdentityStatus,
        signals: Vec<Signal>,
        approved: bool,
    ) -> Option<Self> {
        let first = signals.first()?;
        let mut alert = Self {
            alert_id,
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
            status: Status::Open,
            status_changes: Vec::new(),
            revised_for: Revised::Signals,
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

    /// The namespaces of the objects it is about, each once, sorted.
    pub fn namespaces(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.resources.iter().filter_map(|r| r.namespace.as_deref()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// True if the signals the alert does not hold yet fit in it, within
    /// [`MAX_SIGNALS`] and [`ALERT_BUDGET`].
    pub fn has_room_for(&self, signals: &[Signal]) -> bool {
        let fresh: Vec<&Signal> = signals.iter().filter(|s| !self.holds(s)).collect();
        if fresh.is_empty() {
            return true;
        }
        // Each signal adds itself, its object and its audit id at most.
        let added: usize =
            fresh.iter().map(|s| crate::bound::size(s) + crate::bound::size(&s.resource) + s.audit_id.len() + 8).sum();
        self.signals.len() + fresh.len() <= MAX_SIGNALS && crate::bound::size(self) + added <= ALERT_BUDGET
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
        self.revised_for = Revised::Signals;
        // A new signal reopens a closed alert: the incident goes on.
        if self.status.is_closed() {
            let at = self.signals.last().map_or(self.last_seen, |s| s.time);
            self.status_changes.push(StatusChange {
                status: Status::Open,
                from: self.status,
                by: "ingress-sentinel".to_owned(),
                on_behalf_of: None,
                at,
                reason: "a new signal arrived".to_owned(),
            });
            self.status = Status::Open;
        }
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
        out.push_str(&format!(" [identity {}]\n", self.identity_status.as_str()));
        for p in &a.possible_origins {
            out.push_str(&format!("  possibly: {} ({})\n", e(&p.principal), e(&p.via)));
        }
        if !self.related_alerts.is_empty() {
            out.push_str(&format!("  related: {}\n", self.related_alerts.join(", ")));
        }
        if shown > 0 && shown < self.signals.len() {
            out.push_str(&format!("  ({shown} earlier signals above; new:)\n"));
        }
        let new = &self.signals[shown.min(self.signals.len())..];
        for s in new {
            out.push_str(&format!(
                "  - {} {} [{}] {}: {}\n",
                s.time.format("%Y-%m-%dT%H:%M:%SZ"),
                s.rule,
                s.severity,
                e(&s.resource.to_string()),
                e(&s.summary)
            ));
        }
        if let Some(change) = self.status_changes.last() {
            out.push_str(&format!(
                "  status: {} since {} by {}{}: {}\n",
                self.status.as_str(),
                change.at.format("%Y-%m-%dT%H:%M:%SZ"),
                e(&change.by),
                change.on_behalf_of.as_deref().map(|n| format!(" (as {})", e(n))).unwrap_or_default(),
                e(&change.reason)
            ));
        }
        for rule in distinct_rules(new) {
            out.push_str(&format!("  next ({rule}): {}\n", rule.runbook()));
        }
        out
    }

    /// The alert in the AWS Chatbot custom-notification format (Slack,
    /// Microsoft Teams): every string from the cluster made inert for
    /// Markdown, HTML and mentions.
    pub fn to_chat(&self) -> Value {
        let e = |s: &str| crate::text::escape_chat(s).into_owned();
        let mut lines =
            vec![format!("*Actor:* {} [identity {}]", e(self.actor.display()), self.identity_status.as_str())];
        for s in self.signals.iter().rev().take(10).rev() {
            let r = &s.resource;
            lines.push(format!(
                "• `{}` {} {}/{}: {}",
                s.rule,
                s.severity,
                e(r.namespace.as_deref().unwrap_or("-")),
                e(r.name.as_deref().unwrap_or("-")),
                e(&s.summary)
            ));
        }
        if self.signals.len() > 10 {
            lines.push(format!("(+{} earlier signals in the alert)", self.signals.len() - 10));
        }
        lines.push(format!("*Status:* {}", self.status.as_str()));
        let rules = distinct_rules(&self.signals);
        let next: Vec<String> = rules.iter().map(|r| format!("{r}: {}", r.runbook())).collect();
        serde_json::json!({
            "version": "1.0",
            "source": "custom",
            "id": format!("{}-{}", self.alert_id, self.revision),
            "content": {
                "textType": "client-markdown",
                "title": format!("[{}] {}", self.severity.as_str().to_uppercase(), e(&self.title)),
                "description": lines.join("\n"),
                "nextSteps": next,
                "keywords": rules.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            },
            "metadata": {
                "threadId": self.alert_id,
                "summary": e(&self.title),
                "eventType": self.revised_for.as_str(),
                "additionalContext": {
                    "alert_id": self.alert_id,
                    "revision": self.revision.to_string(),
                    "severity": self.severity.as_str(),
                    "cluster": e(&self.cluster),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_status_names_are_their_serialized_names() {
        use IdentityStatus::*;
        for s in [Kubernetes, Resolved, SessionOnly, Pending, Unresolved, Inferred] {
            assert_eq!(serde_json::to_value(s).ok(), Some(Value::from(s.as_str())));
        }
    }

    #[test]
    fn a_resource_reads_kind_namespace_and_name() {
        let r = Resource { kind: "ingresses".into(), namespace: Some("shop".into()), name: None };
        assert_eq!(r.to_string(), "ingresses shop/-");
    }
}
