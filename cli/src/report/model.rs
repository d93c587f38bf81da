//! What a report says: the alerts, their revisions, and the totals the page,
//! the CSV files and `summary.json` share.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use sentinel_core::alert::{Alert, AlertRecord, IdentityStatus, Revised, RevisionRecord, Status};
use sentinel_core::rules::Severity;
use serde::Serialize;
use serde_json::Value;

/// Every alert at its latest revision, with its history.
#[derive(Default)]
pub struct Data {
    /// Alerts by id.
    pub alerts: BTreeMap<String, Alert>,
    /// Revisions by alert id, oldest first.
    pub revisions: BTreeMap<String, Vec<RevisionRecord>>,
    /// What could not be read.
    pub problems: Vec<String>,
}

impl Data {
    /// Adds the items of table exports: alert items (`doc` an alert record)
    /// and history items (`doc` a revision record).
    pub fn add_items(&mut self, items: impl IntoIterator<Item = Value>) {
        for item in items {
            let Some(doc) = item.get("doc").cloned() else { continue };
            // An alerts item holds an alert record; a history item, a revision.
            if doc.get("alert").is_none() {
                match serde_json::from_value::<RevisionRecord>(doc) {
                    Ok(r) => self.revisions.entry(r.alert_id.clone()).or_default().push(r),
                    Err(e) => self.problems.push(format!("a history item that is not a revision: {e}")),
                }
            } else {
                match serde_json::from_value::<AlertRecord>(doc) {
                    Ok(r) => self.add_alert(r.alert),
                    Err(e) => self.problems.push(format!("an alerts item that is not an alert: {e}")),
                }
            }
        }
    }

    /// Adds one revision of an alert (a line of `replay --format json`):
    /// the latest revision wins, and each line becomes a revision of its history.
    pub fn add_revision(&mut self, alert: Alert) {
        let history = self.revisions.entry(alert.alert_id.clone()).or_default();
        if !history.iter().any(|r| r.revision == alert.revision) {
            let before = history.iter().map(|r| r.signals_added.len()).sum();
            let at = alert
                .status_changes
                .last()
                .filter(|_| alert.revised_for == Revised::Status)
                .map_or(alert.last_seen, |c| c.at);
            history.push(RevisionRecord::of(&alert, before, at));
        }
        self.add_alert(alert);
    }

    fn add_alert(&mut self, alert: Alert) {
        match self.alerts.get(&alert.alert_id) {
            Some(known) if known.revision >= alert.revision => {}
            _ => {
                self.alerts.insert(alert.alert_id.clone(), alert);
            }
        }
    }

    /// Keeps the alerts first seen in `[from, to)`, and orders histories.
    pub fn finish(&mut self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) {
        self.alerts.retain(|_, a| from.is_none_or(|f| a.first_seen >= f) && to.is_none_or(|t| a.first_seen < t));
        let alerts = &self.alerts;
        self.revisions.retain(|id, _| alerts.contains_key(id));
        for history in self.revisions.values_mut() {
            history.sort_by_key(|r| r.revision);
            history.dedup_by_key(|r| r.revision);
        }
    }
}

/// A count by name.
#[derive(Clone, Debug, Serialize)]
pub struct Count {
    /// What is counted.
    pub name: String,
    /// How many alerts.
    pub alerts: usize,
}

/// Alerts first seen in one ISO week, by severity.
#[derive(Clone, Debug, Serialize)]
pub struct Week {
    /// `2024-W18`.
    pub week: String,
    /// By severity.
    pub low: usize,
    /// By severity.
    pub medium: usize,
    /// By severity.
    pub high: usize,
    /// By severity.
    pub critical: usize,
}

/// A rule's weight.
#[derive(Clone, Debug, Serialize)]
pub struct RuleCount {
    /// The rule id.
    pub rule: String,
    /// Alerts holding it.
    pub alerts: usize,
    /// Its signals.
    pub signals: usize,
}

/// How long something took, over the alerts where it happened.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Durations {
    /// Alerts where it happened.
    pub count: usize,
    /// Median, in hours.
    pub median_hours: Option<f64>,
    /// 90th percentile, in hours.
    pub p90_hours: Option<f64>,
}

/// An open alert older than the report's limit.
#[derive(Clone, Debug, Serialize)]
pub struct Stale {
    /// The alert.
    pub alert_id: String,
    /// Its severity.
    pub severity: Severity,
    /// Its status.
    pub status: Status,
    /// First seen.
    pub first_seen: DateTime<Utc>,
    /// Age in days at the report's time.
    pub age_days: i64,
    /// Its title.
    pub title: String,
}

/// The totals: `summary.json`, and what the page draws.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// When the report was made; ages are counted to here.
    pub generated_at: DateTime<Utc>,
    /// The period, if limited.
    pub from: Option<DateTime<Utc>>,
    /// The period, if limited.
    pub to: Option<DateTime<Utc>>,
    /// Alerts.
    pub alerts: usize,
    /// Signals over every alert.
    pub signals: usize,
    /// Alerts by severity.
    pub by_severity: BTreeMap<String, usize>,
    /// Alerts by status.
    pub by_status: BTreeMap<String, usize>,
    /// Alerts by how far the actor is known.
    pub by_identity: BTreeMap<String, usize>,
    /// IAM-authenticated alerts whose person CloudTrail named, out of all IAM-authenticated alerts.
    pub identity_resolution_rate: Option<f64>,
    /// Alerts per week, by severity.
    pub per_week: Vec<Week>,
    /// Rules, most frequent first.
    pub by_rule: Vec<RuleCount>,
    /// Who is behind the alerts, most first.
    pub top_principals: Vec<Count>,
    /// Namespaces, most first.
    pub top_namespaces: Vec<Count>,
    /// Objects, most first.
    pub top_objects: Vec<Count>,
    /// Alerts whose changes a registered plan covered (something else was wrong).
    pub approved: usize,
    /// Alerts whose changes no plan covered.
    pub unapproved: usize,
    /// From first signal to acknowledgement (or closing, if never acknowledged).
    pub time_to_acknowledge: Durations,
    /// From first signal to closing.
    pub time_to_resolve: Durations,
    /// The age past which an open alert is listed.
    pub stale_days: i64,
    /// Open alerts older than that.
    pub stale_open: Vec<Stale>,
}

fn top(counts: BTreeMap<String, usize>, n: usize) -> Vec<Count> {
    let mut v: Vec<Count> = counts.into_iter().map(|(name, alerts)| Count { name, alerts }).collect();
    v.sort_by(|a, b| b.alerts.cmp(&a.alerts).then_with(|| a.name.cmp(&b.name)));
    v.truncate(n);
    v
}

fn durations(mut hours: Vec<f64>) -> Durations {
    if hours.is_empty() {
        return Durations::default();
    }
    hours.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((hours.len() as f64 - 1.0) * q).round() as usize;
        (hours[i.min(hours.len() - 1)] * 100.0).round() / 100.0
    };
    Durations { count: hours.len(), median_hours: Some(at(0.5)), p90_hours: Some(at(0.9)) }
}

fn hours(d: Duration) -> f64 {
    d.num_seconds().max(0) as f64 / 3600.0
}

/// The totals of `data`, as of `now`.
pub fn summarise(
    data: &Data,
    now: DateTime<Utc>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    stale_days: i64,
) -> Summary {
    let alerts: Vec<&Alert> = data.alerts.values().collect();
    let mut by_severity: BTreeMap<String, usize> =
        ["low", "medium", "high", "critical"].iter().map(|s| ((*s).to_owned(), 0)).collect();
    let mut by_status: BTreeMap<String, usize> = Status::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
    let mut by_identity = BTreeMap::new();
    let mut weeks: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut rules: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut principals, mut namespaces, mut objects) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut ack, mut resolve) = (Vec::new(), Vec::new());
    let mut stale = Vec::new();
    for a in &alerts {
        *by_severity.entry(a.severity.as_str().to_owned()).or_default() += 1;
        *by_status.entry(a.status.as_str().to_owned()).or_default() += 1;
        *by_identity.entry(a.identity_status.as_str().to_owned()).or_default() += 1;
        let w = a.first_seen.iso_week();
        weeks.entry(format!("{}-W{:02}", w.year(), w.week())).or_default()[a.severity as usize] += 1;
        let mut seen = Vec::new();
        for s in &a.signals {
            let e = rules.entry(s.rule.as_str().to_owned()).or_default();
            e.1 += 1;
            if !seen.contains(&s.rule) {
                e.0 += 1;
                seen.push(s.rule);
            }
        }
        // A person only on evidence: an unresolved actor is counted as such.
        let principal = match &a.actor.originating_principal {
            Some(origin) => origin.clone(),
            None => format!("unresolved: {}", a.actor.display()),
        };
        *principals.entry(principal).or_default() += 1;
        for n in a.namespaces() {
            *namespaces.entry(n.to_owned()).or_default() += 1;
        }
        for r in &a.resources {
            *objects.entry(r.to_string()).or_default() += 1;
        }
        if let Some(first) = a.status_changes.iter().find(|c| c.status == Status::Acknowledged || c.status.is_closed())
        {
            ack.push(hours(first.at - a.first_seen));
        }
        if a.status.is_closed()
            && let Some(closed) = a.status_changes.iter().rev().find(|c| c.status.is_closed())
        {
            resolve.push(hours(closed.at - a.first_seen));
        }
        let age = (now - a.first_seen).num_days();
        if !a.status.is_closed() && age >= stale_days {
            stale.push(Stale {
                alert_id: a.alert_id.clone(),
                severity: a.severity,
                status: a.status,
                first_seen: a.first_seen,
                age_days: age,
                title: a.title.clone(),
            });
        }
    }
    stale.sort_by(|a, b| b.age_days.cmp(&a.age_days).then_with(|| a.alert_id.cmp(&b.alert_id)));
    let iam: Vec<&&Alert> = alerts.iter().filter(|a| a.actor.is_iam()).collect();
    let resolved = iam.iter().filter(|a| a.identity_status == IdentityStatus::Resolved).count();
    let mut by_rule: Vec<RuleCount> =
        rules.into_iter().map(|(rule, (alerts, signals))| RuleCount { rule, alerts, signals }).collect();
    by_rule.sort_by(|a, b| b.signals.cmp(&a.signals).then_with(|| a.rule.cmp(&b.rule)));
    Summary {
        generated_at: now,
        from,
        to,
        alerts: alerts.len(),
        signals: alerts.iter().map(|a| a.signals.len()).sum(),
        by_severity,
        by_status,
        by_identity,
        identity_resolution_rate: (!iam.is_empty())
            .then(|| (resolved as f64 / iam.len() as f64 * 1000.0).round() / 1000.0),
        per_week: weeks
            .into_iter()
            .map(|(week, c)| Week { week, low: c[0], medium: c[1], high: c[2], critical: c[3] })
            .collect(),
        by_rule,
        top_principals: top(principals, 10),
        top_namespaces: top(namespaces, 10),
        top_objects: top(objects, 10),
        approved: alerts.iter().filter(|a| a.approved).count(),
        unapproved: alerts.iter().filter(|a| !a.approved).count(),
        time_to_acknowledge: durations(ack),
        time_to_resolve: durations(resolve),
        stale_days,
        stale_open: stale,
    }
}
