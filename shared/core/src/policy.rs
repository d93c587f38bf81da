//! The policy: what counts as an approved change, and how loud to be.
//!
//! One TOML file, used identically by `sentinel replay` and on AWS
//! (`examples/policy.toml` is a commented example). Every value is checked
//! while it is read, so a bad time zone, glob, weekday, duration, rule id or
//! severity is an error that names its line and column.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Deserializer, de};

use crate::actor::Actor;
use crate::decode::LogSource;
use crate::rules::{RuleId, Severity};

/// A policy that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

/// A glob pattern (`*` matches any run of characters, `?` one character).
///
/// Checked when it is read; compiled into its matcher when first used, so
/// a function's start does not pay for the many patterns of a policy that
/// an invocation never consults.
#[derive(Clone)]
pub struct Pattern {
    text: String,
    glob: Glob,
    matcher: OnceLock<GlobMatcher>,
}

/// The pattern as written, whether or not it was used yet: the policy's
/// recorded sections are built from this and must not change with use.
impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.text).finish()
    }
}

impl Pattern {
    /// Reads a pattern.
    pub fn new(text: &str) -> Result<Self, globset::Error> {
        Ok(Self { text: text.to_owned(), glob: Glob::new(text)?, matcher: OnceLock::new() })
    }

    /// True if `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        self.matcher.get_or_init(|| self.glob.compile_matcher()).is_match(value)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Pattern::new(&text).map_err(|e| de::Error::custom(format!("invalid pattern {text:?}: {e}")))
    }
}

impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

fn any_matches(patterns: &[Pattern], value: &str) -> bool {
    patterns.iter().any(|p| p.matches(value))
}

/// A length of time written `90s`, `30m`, `2h` or `14d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: i64 = n.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 30m, 2h, 14d"))?;
        let d = match unit {
            "s" => Duration::try_seconds(n),
            "m" => Duration::try_minutes(n),
            "h" => Duration::try_hours(n),
            "d" => Duration::try_days(n),
            _ => None,
        };
        d.map(Span).ok_or_else(|| format!("invalid duration {s:?}: expected e.g. 30m, 2h, 14d"))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

fn time_of_day<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let s = String::deserialize(d)?;
    NaiveTime::parse_from_str(&s, "%H:%M").map_err(|_| de::Error::custom(format!("invalid time {s:?}: expected HH:MM")))
}

fn weekdays<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| s.parse().map_err(|_| de::Error::custom(format!("invalid weekday {s:?}: expected mon … sun"))))
        .collect()
}

fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|_| de::Error::custom(format!("unknown time zone {s:?}: expected an IANA name like Europe/Berlin")))
}

fn all_namespaces() -> Vec<Pattern> {
    Pattern::new("*").into_iter().collect()
}

/// A weekly recurring maintenance window, in a time zone.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// A name for reports.
    pub name: String,
    /// Namespaces it covers (default: all).
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<Pattern>,
    /// Days it opens on.
    #[serde(deserialize_with = "weekdays")]
    pub days: Vec<Weekday>,
    /// Opening time, local.
    #[serde(deserialize_with = "time_of_day")]
    pub start: NaiveTime,
    /// Closing time, local; before `start` means it closes the next day.
    #[serde(deserialize_with = "time_of_day")]
    pub end: NaiveTime,
    /// IANA time zone (default UTC).
    #[serde(default = "utc", deserialize_with = "timezone")]
    pub timezone: Tz,
}

fn utc() -> Tz {
    Tz::UTC
}

impl Window {
    /// True if `at` falls inside this window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.timezone);
        let (day, t) = (local.weekday(), local.time());
        if self.start <= self.end {
            self.days.contains(&day) && t >= self.start && t < self.end
        } else {
            (self.days.contains(&day) && t >= self.start) || (self.days.contains(&day.pred()) && t < self.end)
        }
    }
}

/// A one-off period in which no change is approved.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// A name for reports.
    pub name: String,
    /// Start.
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub until: DateTime<Utc>,
    /// Namespaces it covers (default: all).
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<Pattern>,
}

/// Who may change the Ingress layer of some namespaces.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedActor {
    /// A name for reports.
    pub name: String,
    /// Namespaces (default: all).
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<Pattern>,
    /// Kubernetes username pattern.
    #[serde(default)]
    pub kubernetes_username: Option<Pattern>,
    /// IAM role ARN pattern (`arn:aws:iam::ACCOUNT:role/NAME`, no path).
    #[serde(default)]
    pub iam_role_arn: Option<Pattern>,
    /// Originating principal pattern (the person or pipeline behind a session).
    #[serde(default)]
    pub originating_principal: Option<Pattern>,
    /// Service account pattern, `namespace:name`.
    #[serde(default)]
    pub service_account: Option<Pattern>,
    /// May change outside maintenance windows (freezes still apply).
    #[serde(default)]
    pub anytime: bool,
}

impl ApprovedActor {
    /// True if `actor` is this one (every pattern given must match).
    pub fn matches(&self, actor: &Actor) -> bool {
        let checks = [
            (&self.kubernetes_username, Some(actor.kubernetes_username.as_str())),
            (&self.iam_role_arn, actor.role_arn.as_deref()),
            (&self.originating_principal, actor.originating_principal.as_deref()),
            (&self.service_account, actor.service_account.as_deref()),
        ];
        let mut any = false;
        for (pattern, value) in checks {
            if let Some(p) = pattern {
                any = true;
                if !value.is_some_and(|v| p.matches(v)) {
                    return false;
                }
            }
        }
        any
    }
}

/// Known host patterns of some namespaces.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hosts {
    /// Namespaces.
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<Pattern>,
    /// Host patterns (`*.shop.example.com`).
    pub patterns: Vec<Pattern>,
}

/// A rule silenced for some objects, for a reason, until a date.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// The rule.
    pub rule: RuleId,
    /// Namespaces (default: all).
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<Pattern>,
    /// Object names (default: all).
    #[serde(default)]
    pub names: Vec<Pattern>,
    /// Why: required, so every silence can be audited.
    pub reason: String,
    /// When it stops applying: required, so no silence is forever.
    pub expires: DateTime<Utc>,
}

/// Correlation settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correlation {
    /// Signals of one actor this close together form one incident.
    #[serde(default = "default_window")]
    pub window: Span,
}

fn default_window() -> Span {
    Span(Duration::minutes(30))
}

impl Default for Correlation {
    fn default() -> Self {
        Self { window: default_window() }
    }
}

/// Learned-pattern settings (see `pattern`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Learning {
    /// Changes an actor must have made in a namespace before its pattern counts.
    #[serde(default = "default_min_changes")]
    pub min_changes: u32,
    /// How long the history must span.
    #[serde(default = "default_min_history")]
    pub min_history: Span,
    /// Hours either side of a usual hour that still count as usual.
    #[serde(default = "default_tolerance")]
    pub tolerance_hours: u32,
}

fn default_min_changes() -> u32 {
    20
}
fn default_min_history() -> Span {
    Span(Duration::days(14))
}
fn default_tolerance() -> u32 {
    1
}

impl Default for Learning {
    fn default() -> Self {
        Self {
            min_changes: default_min_changes(),
            min_history: default_min_history(),
            tolerance_hours: default_tolerance(),
        }
    }
}

/// Identity settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// Session names that say nothing about the person.
    #[serde(default = "default_generic_sessions")]
    pub generic_session_names: Vec<Pattern>,
    /// How long to wait for CloudTrail to name the origin of a session
    /// before `identity.unresolved` fires (CloudTrail lands minutes late).
    #[serde(default = "default_grace")]
    pub unresolved_grace: Span,
    /// How long a person who exec'd, attached or port-forwarded into a pod
    /// (or added a debug container) is named as a possible origin of what
    /// the pod's service account does.
    #[serde(default = "default_access_window")]
    pub access_window: Span,
}

fn default_access_window() -> Span {
    Span(Duration::hours(1))
}

fn default_grace() -> Span {
    Span(Duration::minutes(15))
}

/// The audit-log pipeline and the product's own resources, watched in CloudTrail.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Log groups carrying EKS audit logs.
    #[serde(default = "default_log_groups")]
    pub log_groups: Vec<Pattern>,
    /// Trails whose logging feeds identity resolution.
    #[serde(default = "everything")]
    pub trails: Vec<Pattern>,
    /// The product's Lambda functions.
    #[serde(default = "default_product")]
    pub functions: Vec<Pattern>,
    /// The product's SNS topics (ARNs).
    #[serde(default = "default_topics")]
    pub topics: Vec<Pattern>,
    /// The product's DynamoDB tables.
    #[serde(default = "default_product")]
    pub tables: Vec<Pattern>,
    /// Buckets that deliver audit logs or CloudTrail to the product, or keep its evidence.
    #[serde(default = "default_product")]
    pub buckets: Vec<Pattern>,
    /// The product's KMS keys (ARNs or key ids).
    #[serde(default)]
    pub keys: Vec<Pattern>,
    /// The product's EventBridge rules and schedules.
    #[serde(default = "default_product")]
    pub rules: Vec<Pattern>,
    /// The product's CloudWatch alarms.
    #[serde(default = "default_product")]
    pub alarms: Vec<Pattern>,
    /// The product's IAM roles (names).
    #[serde(default = "default_product")]
    pub roles: Vec<Pattern>,
    /// Accounts whose log groups may deliver audit logs (empty: any). An
    /// event from another account is quarantined as untrusted.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// How far ahead of its delivery (or of now) an event may be dated
    /// before it is quarantined as untrusted.
    #[serde(default = "default_skew")]
    pub max_clock_skew: Span,
}

fn default_skew() -> Span {
    Span(Duration::minutes(5))
}

fn patterns(list: &[&str]) -> Vec<Pattern> {
    list.iter().filter_map(|p| Pattern::new(p).ok()).collect()
}
fn default_log_groups() -> Vec<Pattern> {
    patterns(&["/aws/eks/*/cluster"])
}
fn everything() -> Vec<Pattern> {
    patterns(&["*"])
}
fn default_product() -> Vec<Pattern> {
    patterns(&["ingress-sentinel*"])
}
fn default_topics() -> Vec<Pattern> {
    patterns(&["arn:aws:sns:*:*:ingress-sentinel*"])
}

impl Default for Pipeline {
    fn default() -> Self {
        Self {
            log_groups: default_log_groups(),
            trails: everything(),
            functions: default_product(),
            topics: default_topics(),
            tables: default_product(),
            buckets: default_product(),
            keys: Vec::new(),
            rules: default_product(),
            alarms: default_product(),
            roles: default_product(),
            accounts: Vec::new(),
            max_clock_skew: default_skew(),
        }
    }
}

impl crate::cloudtrail::PipelineNames for Pipeline {
    fn log_group(&self, name: &str) -> bool {
        any_matches(&self.log_groups, name)
    }

    fn watches(&self, target: crate::cloudtrail::Target, name: &str) -> bool {
        use crate::cloudtrail::Target as T;
        let list = match target {
            T::LogGroup => &self.log_groups,
            T::Trail => &self.trails,
            T::Function => &self.functions,
            T::Topic => &self.topics,
            T::Table => &self.tables,
            T::Bucket => &self.buckets,
            T::Key => &self.keys,
            T::Rule => &self.rules,
            T::Alarm => &self.alarms,
            T::Role => &self.roles,
        };
        // Calls name resources by name or by ARN (a function by its ARN, a
        // table by its ARN in resource policies, a key by id or ARN): the
        // last part of an ARN is tried too.
        let last = name.rsplit(['/', ':']).next().unwrap_or(name);
        any_matches(list, name)
            || any_matches(list, last)
            || (target == T::Key && list.iter().any(|p| p.as_str().ends_with(&format!("/{name}"))))
    }
}

fn default_generic_sessions() -> Vec<Pattern> {
    ["EKSGetTokenAuth", "[0-9]*", "botocore-session-*", "aws-go-sdk-*"]
        .iter()
        .filter_map(|p| Pattern::new(p).ok())
        .collect()
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            generic_session_names: default_generic_sessions(),
            unresolved_grace: default_grace(),
            access_window: default_access_window(),
        }
    }
}

/// The policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Cluster name for inputs that do not carry one (local files).
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// The AWS account the stack runs in. Clusters whose audit logs are
    /// delivered from other accounts are named `<account>/<cluster>`, so
    /// two accounts' clusters of one name stay apart.
    #[serde(default)]
    pub account: Option<String>,
    /// Material changes need a registered change plan. Off by default: a
    /// policy that asks for no plans is not violated by changes without one.
    #[serde(default)]
    pub require_plans: bool,
    /// Signals below this severity open no alert on their own: they are kept
    /// with the actor's incident and join its alert if one opens.
    #[serde(default = "default_threshold")]
    pub alert_threshold: Severity,
    /// Namespaces whose signals are one severity higher.
    #[serde(default)]
    pub sensitive_namespaces: Vec<Pattern>,
    /// Ingress controller ConfigMaps, `namespace/name` patterns.
    #[serde(default = "default_controller_configmaps")]
    pub controller_configmaps: Vec<Pattern>,
    /// Maintenance windows.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Change freezes.
    #[serde(default)]
    pub freezes: Vec<Freeze>,
    /// Approved actors.
    #[serde(default)]
    pub actors: Vec<ApprovedActor>,
    /// Known hosts.
    #[serde(default)]
    pub hosts: Vec<Hosts>,
    /// Severity overrides per rule.
    #[serde(default)]
    pub severity: std::collections::BTreeMap<RuleId, Severity>,
    /// Suppressions.
    #[serde(default)]
    pub suppressions: Vec<Suppression>,
    /// Correlation.
    #[serde(default)]
    pub correlation: Correlation,
    /// Learned patterns.
    #[serde(default)]
    pub learning: Learning,
    /// Identity resolution.
    #[serde(default)]
    pub identity: IdentitySettings,
    /// The pipeline and the product's resources, watched in CloudTrail.
    #[serde(default)]
    pub pipeline: Pipeline,
}

fn default_cluster() -> String {
    "local".to_owned()
}
fn default_threshold() -> Severity {
    Severity::Medium
}
fn default_controller_configmaps() -> Vec<Pattern> {
    ["ingress-nginx/ingress-nginx-controller", "*/nginx-configuration", "kube-system/aws-load-balancer-controller*"]
        .iter()
        .filter_map(|p| Pattern::new(p).ok())
        .collect()
}

impl Default for Policy {
    fn default() -> Self {
        // An empty document yields every default.
        toml::from_str("").unwrap_or_else(|_| unreachable!("the empty policy is valid"))
    }
}

/// Whether a time is inside a maintenance window, for a namespace.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "window", content = "name", rename_all = "snake_case")]
pub enum WindowVerdict {
    /// Inside the named window.
    Inside(String),
    /// Outside every window that covers the namespace.
    Outside,
    /// Inside the named freeze.
    Frozen(String),
    /// No window covers the namespace.
    NoneConfigured,
}

impl Policy {
    /// The cluster an event comes from: the EKS log group's cluster (else the
    /// policy's), qualified by the account that owns the log group when that
    /// is not the stack's own.
    pub fn cluster_of(&self, source: &LogSource) -> String {
        let name = source.cluster().unwrap_or(&self.cluster);
        match (&source.owner, &self.account) {
            (Some(owner), Some(home)) if owner != home => format!("{owner}/{name}"),
            _ => name.to_owned(),
        }
    }

    /// Each section of the policy with its value in words, to tell which
    /// sections a policy change touched.
    pub fn sections(&self) -> Vec<(&'static str, String)> {
        // Destructured so a new field cannot be left out.
        let Self {
            cluster,
            account,
            require_plans,
            alert_threshold,
            sensitive_namespaces,
            controller_configmaps,
            windows,
            freezes,
            actors,
            hosts,
            severity,
            suppressions,
            correlation,
            learning,
            identity,
            pipeline,
        } = self;
        vec![
            ("cluster", format!("{cluster:?}")),
            ("account", format!("{account:?}")),
            ("require_plans", format!("{require_plans:?}")),
            ("alert_threshold", format!("{alert_threshold:?}")),
            ("sensitive_namespaces", format!("{sensitive_namespaces:?}")),
            ("controller_configmaps", format!("{controller_configmaps:?}")),
            ("windows", format!("{windows:?}")),
            ("freezes", format!("{freezes:?}")),
            ("actors", format!("{actors:?}")),
            ("hosts", format!("{hosts:?}")),
            ("severity", format!("{severity:?}")),
            ("suppressions", format!("{suppressions:?}")),
            ("correlation", format!("{correlation:?}")),
            ("learning", format!("{learning:?}")),
            ("identity", format!("{identity:?}")),
            ("pipeline", format!("{pipeline:?}")),
        ]
    }

    /// Reads a policy; errors name the line and column.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError(e.to_string()))
    }

    /// Judges a time against the windows and freezes covering a namespace.
    pub fn window(&self, namespace: &str, at: DateTime<Utc>) -> WindowVerdict {
        if let Some(f) =
            self.freezes.iter().find(|f| any_matches(&f.namespaces, namespace) && f.from <= at && at < f.until)
        {
            return WindowVerdict::Frozen(f.name.clone());
        }
        let mut covering = self.windows.iter().filter(|w| any_matches(&w.namespaces, namespace)).peekable();
        if covering.peek().is_none() {
            return WindowVerdict::NoneConfigured;
        }
        covering.find(|w| w.contains(at)).map_or(WindowVerdict::Outside, |w| WindowVerdict::Inside(w.name.clone()))
    }

    /// The approved-actor entry that covers `actor` in `namespace`, if any.
    pub fn approved_actor(&self, actor: &Actor, namespace: &str) -> Option<&ApprovedActor> {
        self.actors.iter().find(|a| any_matches(&a.namespaces, namespace) && a.matches(actor))
    }

    /// True if some `[[actors]]` entry names who may change `namespace`:
    /// only then is anyone else an unapproved actor there.
    pub fn actors_cover(&self, namespace: &str) -> bool {
        self.actors.iter().any(|a| any_matches(&a.namespaces, namespace))
    }

    /// True if the namespace's signals are raised a level.
    pub fn is_sensitive(&self, namespace: &str) -> bool {
        any_matches(&self.sensitive_namespaces, namespace)
    }

    /// Known host patterns for a namespace; `None` when none are configured.
    pub fn known_hosts(&self, namespace: &str) -> Option<Vec<&Pattern>> {
        let patterns: Vec<&Pattern> =
            self.hosts.iter().filter(|h| any_matches(&h.namespaces, namespace)).flat_map(|h| &h.patterns).collect();
        (!patterns.is_empty()).then_some(patterns)
    }

    /// Whether the known host patterns of a namespace allow `host`; `None`
    /// when none are configured. Patterns describe concrete hosts: a
    /// wildcard host is allowed only by a pattern that is that exact wildcard.
    pub fn host_allowed(&self, namespace: &str, host: &str) -> Option<bool> {
        let patterns = self.known_hosts(namespace)?;
        let wildcard = host.contains('*');
        Some(patterns.iter().any(|p| if wildcard { p.as_str() == host } else { p.matches(host) }))
    }

    /// True if `namespace/name` is an ingress controller ConfigMap.
    pub fn is_controller_configmap(&self, namespace: &str, name: &str) -> bool {
        any_matches(&self.controller_configmaps, &format!("{namespace}/{name}"))
    }

    /// The severity of a rule: the override, or the rule's default.
    pub fn severity(&self, rule: RuleId, default: Severity) -> Severity {
        self.severity.get(&rule).copied().unwrap_or(default)
    }

    /// The suppression that silences `rule` for `namespace/name` at `at`, if any.
    pub fn suppression(&self, rule: RuleId, namespace: &str, name: &str, at: DateTime<Utc>) -> Option<&Suppression> {
        self.suppressions.iter().find(|s| {
            s.rule == rule
                && at < s.expires
                && any_matches(&s.namespaces, namespace)
                && (s.names.is_empty() || any_matches(&s.names, name))
        })
    }

    /// True if a session name says nothing about who used it.
    pub fn is_generic_session(&self, session: &str) -> bool {
        any_matches(&self.identity.generic_session_names, session)
    }
}

impl fmt::Display for WindowVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inside(name) => write!(f, "inside window {name:?}"),
            Self::Outside => f.write_str("outside every maintenance window"),
            Self::Frozen(name) => write!(f, "during freeze {name:?}"),
            Self::NoneConfigured => f.write_str("no maintenance window configured"),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_policy_reads_the_same_before_and_after_its_patterns_are_used() {
        let policy = Policy::from_toml("sensitive_namespaces = ['pay*']").unwrap();
        let before = policy.sections();
        assert!(policy.is_sensitive("payments") && !policy.is_sensitive("shop"));
        assert_eq!(policy.sections(), before, "the recorded policy must not change with use");
    }

    #[test]
    fn a_cluster_of_another_account_is_named_with_its_account() {
        let mut policy = Policy::from_toml("cluster = \"local\"\naccount = \"111122223333\"").unwrap();
        let source = |owner: Option<&str>, group: &str| LogSource {
            owner: owner.map(str::to_owned),
            log_group: Some(group.to_owned()),
            ..LogSource::default()
        };
        assert_eq!(policy.cluster_of(&source(Some("111122223333"), "/aws/eks/prod/cluster")), "prod");
        assert_eq!(policy.cluster_of(&source(Some("222233334444"), "/aws/eks/prod/cluster")), "222233334444/prod");
        assert_eq!(policy.cluster_of(&source(None, "/aws/eks/prod/cluster")), "prod");
        assert_eq!(policy.cluster_of(&source(Some("222233334444"), "/tmp/audit")), "222233334444/local");
        // Without the stack's own account (a local replay), names stay as they are.
        policy.account = None;
        assert_eq!(policy.cluster_of(&source(Some("222233334444"), "/aws/eks/prod/cluster")), "prod");
    }

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_weekly_and_time_zone_aware() {
        let p = Policy::from_toml(
            r#"
            [[windows]]
            name = "weekdays"
            days = ["mon", "tue", "wed", "thu", "fri"]
            start = "09:00"
            end = "17:00"
            timezone = "Europe/Berlin"
            [[windows]]
            name = "night"
            namespaces = ["batch"]
            days = ["sat"]
            start = "22:00"
            end = "02:00"
            "#,
        )
        .unwrap();
        // 2024-05-02 is a Thursday; Berlin is UTC+2 in May.
        assert_eq!(p.window("shop", t("2024-05-02T07:30:00Z")), WindowVerdict::Inside("weekdays".into()));
        assert_eq!(p.window("shop", t("2024-05-02T06:30:00Z")), WindowVerdict::Outside);
        assert_eq!(p.window("shop", t("2024-05-02T15:00:00Z")), WindowVerdict::Outside);
        // Overnight window: Saturday 22:00 to Sunday 02:00 UTC.
        assert_eq!(p.window("batch", t("2024-05-05T01:00:00Z")), WindowVerdict::Inside("night".into()));
        assert_eq!(p.window("batch", t("2024-05-05T03:00:00Z")), WindowVerdict::Outside);
    }

    #[test]
    fn freezes_override_windows_and_missing_windows_are_said() {
        let p = Policy::from_toml(
            r#"
            [[windows]]
            name = "always"
            namespaces = ["shop"]
            days = ["mon","tue","wed","thu","fri","sat","sun"]
            start = "00:00"
            end = "23:59"
            [[freezes]]
            name = "black friday"
            from = "2024-11-29T00:00:00Z"
            until = "2024-12-02T00:00:00Z"
            "#,
        )
        .unwrap();
        assert_eq!(p.window("shop", t("2024-11-30T12:00:00Z")), WindowVerdict::Frozen("black friday".into()));
        assert_eq!(p.window("other", t("2024-05-01T12:00:00Z")), WindowVerdict::NoneConfigured);
    }

    #[test]
    fn invalid_values_are_errors_naming_the_line() {
        for (text, expected) in [
            ("[[windows]]\nname='x'\ndays=['mon']\nstart='9am'\nend='17:00'", "line 4"),
            ("[[windows]]\nname='x'\ndays=['funday']\nstart='09:00'\nend='17:00'", "line 3"),
            ("[[windows]]\nname='x'\ndays=['mon']\nstart='09:00'\nend='17:00'\ntimezone='Mars/Olympus'", "line 6"),
            ("[correlation]\nwindow = 'soon'", "line 2"),
            ("[severity]\n'ingress.nope' = 'high'", "line 2"),
            ("[severity]\n'ingress.deleted' = 'severe'", "line 2"),
            ("[[actors]]\nname='x'\nkubernetes_username='[oops'", "line 3"),
            ("[[suppressions]]\nrule='ingress.deleted'\nreason='x'", "expires"),
            ("unknown_key = 1", "unknown field"),
        ] {
            let err = Policy::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_shipped_example_policy_is_valid() {
        let text = include_str!("../../../examples/policy.toml");
        let p = Policy::from_toml(text).unwrap();
        assert!(!p.windows.is_empty() && !p.actors.is_empty() && !p.suppressions.is_empty());
    }
}
