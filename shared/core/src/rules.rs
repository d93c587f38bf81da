//! The rule catalogue: stable ids, default severities, and the content rules
//! that turn a semantic change into findings.
//!
//! Judgement rules (windows, approved actors, plans, identity) live in the
//! engine, which knows the policy; the rules here only read the change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ingress::IngressState;
use crate::ingress::annotations::AnnotationKind;
use crate::ingress::cidr::{AddressSet, SourceRanges};
use crate::ingress::diff::{Action, Change};

/// How bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Needs an answer today.
    Medium,
    /// Needs an answer now.
    High,
    /// Likely an attack in progress.
    Critical,
}

impl Severity {
    /// One level up, capped at critical.
    pub fn raised(self) -> Self {
        match self {
            Self::Low => Self::Medium,
            Self::Medium => Self::High,
            Self::High | Self::Critical => Self::Critical,
        }
    }

    /// A score out of 10, as code-scanning tools rank severities
    /// (critical above 9, high from 7, medium from 4).
    pub fn score(self) -> &'static str {
        match self {
            Self::Low => "3.0",
            Self::Medium => "5.5",
            Self::High => "8.0",
            Self::Critical => "9.5",
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(Value::String(s.to_owned()))
            .map_err(|_| format!("unknown severity {s:?}: expected low, medium, high or critical"))
    }
}

macro_rules! rules {
    ($($variant:ident = $id:literal, $severity:ident, $doc:literal $runbook:literal;)*) => {
        /// A rule's stable id.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum RuleId {
            $(#[doc = $doc] #[serde(rename = $id)] $variant,)*
        }

        impl RuleId {
            /// Every rule.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),*];

            /// The stable id, e.g. `ingress.allowlist.widened`.
            pub fn as_str(self) -> &'static str {
                match self { $(RuleId::$variant => $id,)* }
            }

            /// The severity when the policy does not override it.
            pub fn default_severity(self) -> Severity {
                match self { $(RuleId::$variant => Severity::$severity,)* }
            }

            /// What the rule catches.
            pub fn description(self) -> &'static str {
                match self { $(RuleId::$variant => $doc,)* }
            }

            /// What to check next, in one line: shown with every rendering of a signal.
            pub fn runbook(self) -> &'static str {
                match self { $(RuleId::$variant => $runbook,)* }
            }
        }
    };
}

rules! {
    AllowlistWidened = "ingress.allowlist.widened", High,
        "A source-range allowlist admits addresses it did not before, or is removed."
        "Compare the allowlist with the approved one in the alert's evidence; if nobody asked for it, restore the previous ranges and review access logs from the new ranges.";
    SnippetInjected = "ingress.snippet.injected", Critical,
        "A configuration, server, auth or stream snippet annotation appears or changes."
        "Read the snippet in the evidence: remove it unless a reviewed change introduced it, and check the controller's logs and config for what it did while live.";
    RewriteChanged = "ingress.rewrite.changed", Medium,
        "Rewrites, redirects, upstream-vhost, app-root, mirroring or similar routing overrides change."
        "Check where requests now go (rewrite, redirect, mirror target) and that the destination belongs to you; mirroring can copy credentials out.";
    AuthWeakened = "ingress.auth.weakened", High,
        "External auth, basic auth, client-certificate or ALB auth is removed or pointed elsewhere."
        "Confirm with the service owner that authentication was meant to change; restore the auth annotation if not, and review requests served without it.";
    TlsWeakened = "ingress.tls.weakened", High,
        "TLS removed, hosts dropped from TLS, secret swapped, HTTPS redirect off or backend protocol downgraded."
        "Restore TLS (hosts, secret, redirect, backend protocol) unless the change was planned; a swapped certificate Secret may serve an attacker's key.";
    TlsSecretRotated = "ingress.tls.secret-rotated", Medium,
        "A TLS Secret used by an Ingress is written outside a maintenance window."
        "Confirm the certificate rotation with its owner; compare the new certificate's issuer and subject with the old one.";
    HeadersStripped = "ingress.headers.stripped", Medium,
        "Security headers are removed or hidden (snippets, custom headers, HSTS, CORS)."
        "Check which security headers are gone (HSTS, CSP, CORS) and restore them unless the change was reviewed.";
    BackendRerouted = "ingress.backend.rerouted", High,
        "An existing host/path points at another service or port, or at an ExternalName service."
        "Check the new backend (service, port, ExternalName target) belongs to the application; traffic may be leaving the cluster or reaching a lookalike.";
    HostAdded = "ingress.host.added", Medium,
        "A host outside the known host patterns appears (wildcards included)."
        "Confirm the host belongs to the team; a wildcard or unknown host can capture traffic or enable subdomain takeover.";
    ClassChanged = "ingress.class.changed", High,
        "The ingress class changes: another controller takes over."
        "Check which controller serves the Ingress now and that its configuration matches the old one (allowlists, auth, TLS).";
    ExposurePublic = "ingress.exposure.public", Critical,
        "An internal load balancer becomes internet-facing."
        "Confirm the load balancer is meant to be internet-facing; restore the internal scheme or add inbound-cidrs if not.";
    Deleted = "ingress.deleted", Medium,
        "An Ingress is deleted."
        "Confirm the deletion was planned; a deleted Ingress can hand its host to another one, or take a service offline.";
    ControllerConfigChanged = "ingress.controller.config-changed", High,
        "The ingress controller's ConfigMap changes."
        "Diff the controller's ConfigMap with the last reviewed version; global settings (snippets, risk level, headers) affect every Ingress.";
    OutOfWindow = "change.out-of-window", Medium,
        "A change lands outside the maintenance windows, or far outside the actor's learned pattern."
        "Ask the actor about the change; work outside the maintenance windows or their usual hours needs a reason.";
    UnapprovedActor = "change.unapproved-actor", Medium,
        "The actor is not approved for the namespace."
        "Confirm who the actor is and why they changed this namespace; add them to the policy if they should, revert if not.";
    Unplanned = "change.unplanned", Medium,
        "No registered change plan covers the change, or the manifest digest differs."
        "Find the change ticket; without a registered plan (or with a different manifest) the change bypassed review.";
    Denied = "change.denied", Low,
        "A write to the Ingress layer was refused by authorization: someone is probing."
        "Someone tried a write authorization refused: find who, from where, and what else they tried.";
    NewActor = "change.new-actor", Medium,
        "Once the learning period has passed, an actor never seen changing the cluster's Ingress layer makes a material change."
        "Confirm the new actor's identity and role; a first change by someone never seen deserves a look.";
    IdentityUnresolved = "identity.unresolved", Medium,
        "An IAM-authenticated change whose origin cannot be traced."
        "Find the person behind the IAM session in CloudTrail (the access key's AssumeRole); a session that cannot be traced is itself a finding.";
    AccessChanged = "identity.access-changed", High,
        "CloudTrail shows EKS cluster access granted, changed or removed (access entries, access policies)."
        "Confirm the access entry or policy change was approved; cluster-admin access granted out of process is a takeover path.";
    AnnotationInjection = "ingress.annotation.injection", Critical,
        "An ingress-nginx annotation value carries characters or directives that nginx would read as configuration (CVE-2025-24514, CVE-2025-1097, CVE-2025-1098, CVE-2025-15566, CVE-2026-1580)."
        "Remove the annotation value now, patch ingress-nginx to a fixed release, and inspect the controller for configuration or code the value injected.";
    PathTraversal = "ingress.path.traversal", High,
        "A path or annotation value reaches files nginx can read or serve: alias or root directives, Lua, /etc/, service-account tokens (CVE-2021-25745, CVE-2021-25746)."
        "Remove the path or value; check the controller did not serve files (service-account tokens, /etc) and rotate any token it could read.";
    TlsMissing = "ingress.tls.missing", Low,
        "An Ingress serves hosts without TLS."
        "Add a TLS block covering every host, or confirm the Ingress is meant to serve plain HTTP.";
    DefaultBackend = "ingress.backend.default", Medium,
        "A default backend catches every request that no rule matches."
        "Confirm the catch-all backend is intended: every request no rule matches goes there, for any host.";
    HostClash = "ingress.host.clash", High,
        "Two Ingresses claim the same host and path: one can take over the other's traffic."
        "Find which Ingress should own the host and path and remove the other claim; the controller decides the winner, not the owner.";
    ControllerUnsafe = "ingress.controller.unsafe-config", High,
        "The ingress controller's ConfigMap lets annotations write configuration: snippets allowed, or Critical-risk annotations accepted."
        "Turn snippet annotations off and keep annotations-risk-level at High or below unless a reviewed exception needs it.";
    ExternalNameUnsafe = "service.external-name.unsafe", High,
        "An ExternalName Service points at the instance metadata service, the node itself or a name inside the cluster."
        "Point the Service at its real target; the metadata address or an in-cluster name lets ingress traffic reach what it should not.";
    GatewayListenerInsecure = "gateway.listener.insecure", Medium,
        "A Gateway listener serves plain HTTP, or TLS without a certificate."
        "Give the listener a certificate, or confirm plain HTTP is intended (a redirect-only listener).";
    GatewayRoutesAllNamespaces = "gateway.listener.all-namespaces", High,
        "A Gateway listener accepts routes from every namespace."
        "Restrict allowedRoutes to the namespaces that should attach routes (Same, or a selector).";
    ReferenceGrantOpen = "gateway.referencegrant.open", High,
        "A ReferenceGrant opens every object of a kind in its namespace, not named ones."
        "Name the objects the grant opens; an open grant lets the other namespace route to any of them.";
    CrossNamespaceBackend = "gateway.backend.cross-namespace", High,
        "A route sends traffic to a backend in another namespace."
        "Confirm the route may send traffic into the other namespace, and that a ReferenceGrant there allows exactly this.";
    PipelineTampering = "pipeline.tampering", Critical,
        "CloudTrail shows the audit-log pipeline being disabled or cut."
        "Restore the pipeline now (logging, subscription, functions, keys, alarms, policy) and treat everything during the gap as unseen; then find who did it.";
    ForgedEvent = "pipeline.forged-event", High,
        "An audit event came from a log group or account the stack does not watch, or is dated implausibly far ahead of its delivery: someone may be writing fake audit logs."
        "Find who can write to the log group or export bucket that delivered it; forged audit events are an attempt to hide or frame.";
}

impl RuleId {
    /// Where the rule is documented: its entry in `docs/rules.md`.
    pub fn help_uri(self) -> String {
        format!("{}/blob/main/docs/rules.md#{}", env!("CARGO_PKG_REPOSITORY"), self.as_str())
    }

    /// The first sentence of the description.
    pub fn short_description(self) -> &'static str {
        let d = self.description();
        d.find(": ").or_else(|| d.find(". ")).map_or(d.trim_end_matches('.'), |i| &d[..i])
    }

    /// The rule's severity as a score out of 10, as code-scanning tools rank
    /// them (`security-severity`).
    pub fn security_severity(self) -> &'static str {
        self.default_severity().score()
    }

    /// True for the rules about the pipeline itself: no policy can silence
    /// them or lower their severity, so a policy change that tries is still
    /// seen, as it would be under the policy it replaces.
    pub fn protected(self) -> bool {
        matches!(self, Self::PipelineTampering | Self::ForgedEvent)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a content rule found in one change.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule.
    pub rule: RuleId,
    /// The severity before policy and namespace adjustments.
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
    /// The change itself, as data.
    pub evidence: Value,
}

impl Finding {
    /// A finding at the rule's default severity, with `evidence` as data.
    pub fn new(rule: RuleId, summary: String, evidence: &impl Serialize) -> Self {
        Self { rule, severity: rule.default_severity(), summary, evidence: json!(evidence) }
    }

    fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// What content rules need to know beyond the change.
pub struct Context<'a> {
    /// True if a host is known for the namespace: allowed by its known-host
    /// patterns, or like the hosts it has had where none are configured. A
    /// wildcard is known only when a pattern is that exact wildcard.
    pub host_known: &'a dyn Fn(&str) -> bool,
    /// True if a service of the namespace is of type ExternalName.
    pub external_name: &'a dyn Fn(&str) -> Option<String>,
}

/// Directives that remove or hide response headers inside nginx snippets.
const HEADER_STRIPPERS: &[&str] = &["more_clear_headers", "proxy_hide_header", "more_clear_input_headers"];

pub(crate) fn strips_headers(snippet: &str) -> bool {
    let lower = snippet.to_ascii_lowercase();
    HEADER_STRIPPERS.iter().any(|d| lower.contains(d))
        || (lower.contains("strict-transport-security") && lower.contains("max-age=0"))
}

/// True if the networks admit every IPv4 or every IPv6 address.
fn admits_everything(networks: &[ipnet::IpNet]) -> bool {
    AddressSet::from_networks(networks).covers_a_whole_family()
}

const SECURE_PROTOCOLS: &[&str] = &["HTTPS", "GRPCS", "AJPS"];

fn is_secure_protocol(value: Option<&str>) -> bool {
    value.is_some_and(|v| SECURE_PROTOCOLS.iter().any(|p| v.eq_ignore_ascii_case(p)) || v == "true")
}

fn is_off(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.eq_ignore_ascii_case("false"))
}

/// The findings of one change of an Ingress.
pub fn findings(change: &Change, ctx: &Context<'_>) -> Vec<Finding> {
    use RuleId as R;
    let mut out = Vec::new();
    let f = |rule, summary: String| Finding::new(rule, summary, change);
    match change {
        Change::AllowlistWidened { annotation, entries, newly_admitted, removed } => {
            let everything = *removed || admits_everything(newly_admitted) || admits_everything(entries);
            let summary = if *removed {
                format!("allowlist {annotation} removed: every address is admitted")
            } else {
                let added: Vec<String> = entries.iter().map(ToString::to_string).collect();
                format!("allowlist {annotation} widened by {}", added.join(", "))
            };
            let finding = f(R::AllowlistWidened, summary);
            out.push(if everything { finding.with_severity(Severity::Critical) } else { finding });
        }
        Change::DenylistShrunk { annotation, .. } => {
            out.push(f(R::AllowlistWidened, format!("denylist {annotation} shrunk: refused addresses let in")));
        }
        Change::SourceRangeInvalid { annotation, entries } => {
            let bad: Vec<&str> = entries.iter().map(|e| e.entry.as_str()).collect();
            out.push(f(
                R::AllowlistWidened,
                format!(
                    "allowlist {annotation} holds invalid entries ({}); the controller may drop the whole list",
                    bad.join(", ")
                ),
            ));
        }
        Change::Annotation { annotation, kind, action, from, to, .. } => {
            annotation_findings(annotation, *kind, *action, from.as_deref(), to.as_deref(), change, &mut out);
        }
        Change::TlsRemoved { hosts, .. } => {
            out.push(f(R::TlsWeakened, format!("TLS removed for {}", hosts.join(", "))));
        }
        Change::TlsHostsDropped { hosts } => {
            out.push(f(R::TlsWeakened, format!("hosts no longer served over TLS: {}", hosts.join(", "))));
        }
        Change::TlsSecretSwapped { host, from, to } => out.push(f(
            R::TlsWeakened,
            format!(
                "certificate for {host} now from Secret {} (was {})",
                to.as_deref().unwrap_or("(controller default)"),
                from.as_deref().unwrap_or("(controller default)")
            ),
        )),
        Change::BackendChanged { host, path, from: Some(from), to } => {
            let to_text = to.as_ref().map_or_else(|| "(none)".to_owned(), ToString::to_string);
            out.push(f(
                R::BackendRerouted,
                format!(
                    "{} {} rerouted from {from} to {to_text}",
                    host.as_deref().unwrap_or("(any host)"),
                    path.as_deref().unwrap_or("(any path)")
                ),
            ));
        }
        Change::DefaultBackendChanged { from: Some(from), to } => {
            let to_text = to.as_ref().map_or_else(|| "(none)".to_owned(), ToString::to_string);
            out.push(f(R::BackendRerouted, format!("default backend rerouted from {from} to {to_text}")));
        }
        Change::HostAdded { host } => {
            let name = host.as_deref().unwrap_or("*");
            let wildcard = host.as_deref().is_none_or(|h| h.starts_with('*'));
            if !(ctx.host_known)(name) {
                let finding = f(R::HostAdded, format!("host {name} added outside the known host patterns"));
                out.push(if wildcard { finding.with_severity(Severity::High) } else { finding });
            }
        }
        Change::ClassChanged { from, to } => out.push(f(
            R::ClassChanged,
            format!(
                "ingress class changed from {} to {}",
                from.as_deref().unwrap_or("(default)"),
                to.as_deref().unwrap_or("(default)")
            ),
        )),
        _ => {}
    }
    // A route to an ExternalName service sends traffic out of the cluster.
    let new_backend = match change {
        Change::BackendChanged { to: Some(b), .. }
        | Change::PathAdded { backend: Some(b), .. }
        | Change::DefaultBackendChanged { to: Some(b), .. } => Some(b),
        _ => None,
    };
    if let Some(crate::ingress::Backend::Service { name, .. }) = new_backend
        && let Some(target) = (ctx.external_name)(name)
    {
        out.push(f(R::BackendRerouted, format!("route now points at ExternalName service {name} ({target})")));
    }
    out
}

fn annotation_findings(
    key: &str,
    kind: AnnotationKind,
    action: Action,
    from: Option<&str>,
    to: Option<&str>,
    change: &Change,
    out: &mut Vec<Finding>,
) {
    use AnnotationKind as K;
    use RuleId as R;
    let f = |rule, summary: String| Finding::new(rule, summary, change);
    match (kind, action) {
        (K::Snippet, Action::Added | Action::Changed) => {
            out.push(f(R::SnippetInjected, format!("snippet {key} {}", past(action))));
            if to.is_some_and(strips_headers) {
                out.push(f(R::HeadersStripped, format!("snippet {key} removes or hides response headers")));
            }
        }
        (K::Rewrite, _) => {
            let mirror = key.contains("mirror");
            let finding = f(R::RewriteChanged, format!("{key} {}", past(action)));
            out.push(if mirror { finding.with_severity(Severity::High) } else { finding });
        }
        (K::Auth, Action::Removed | Action::Changed) => {
            out.push(f(R::AuthWeakened, format!("authentication setting {key} {}", past(action))));
        }
        (K::Middlewares, Action::Removed | Action::Changed) => {
            let finding =
                f(R::AuthWeakened, format!("middlewares {key} {} (may carry auth or allowlists)", past(action)));
            out.push(finding.with_severity(Severity::Medium));
        }
        (K::Tls, _) => {
            let redirect_off = key.ends_with("ssl-redirect") && is_off(to) && !is_off(from);
            let tls_off = key.ends_with("router.tls") && is_off(to) && !is_off(from);
            let cert = key.ends_with("certificate-arn") || key.ends_with("ssl-policy") || key.contains("proxy-ssl");
            if redirect_off || tls_off {
                out.push(f(R::TlsWeakened, format!("{key} turned off")));
            } else if cert && action != Action::Added {
                out.push(f(R::TlsWeakened, format!("{key} {}", past(action))).with_severity(Severity::Medium));
            }
        }
        (K::BackendProtocol, _) if is_secure_protocol(from) && !is_secure_protocol(to) => {
            out.push(f(
                R::TlsWeakened,
                format!("backend protocol downgraded from {} to {}", from.unwrap_or(""), to.unwrap_or("HTTP")),
            ));
        }
        (K::Headers, Action::Removed | Action::Changed) => {
            out.push(f(R::HeadersStripped, format!("header setting {key} {}", past(action))));
        }
        (K::Headers, Action::Added) if to == Some("*") => {
            out.push(f(R::HeadersStripped, format!("{key} set to *")));
        }
        (K::Scheme, _) if to == Some("internet-facing") => {
            out.push(f(
                R::ExposurePublic,
                format!("load balancer scheme now internet-facing (was {})", from.unwrap_or("internal")),
            ));
        }
        _ => {}
    }
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Added => "added",
        Action::Removed => "removed",
        Action::Changed => "changed",
    }
}

/// True if `host` is like the hosts a namespace has had: one of them, or
/// under the same parent domain as one of them (`app7.blog.example.com`
/// beside `app1.blog.example.com`). A namespace with no hosts yet has
/// nothing to judge against. A wildcard is never known by learning: only a
/// policy pattern that is that exact wildcard allows one.
pub fn like_learned(host: &str, learned: &[String]) -> bool {
    if host.contains('*') {
        return false;
    }
    if learned.is_empty() {
        return true;
    }
    let parent = |h: &str| h.split_once('.').map(|(_, rest)| rest.to_owned()).filter(|p| p.contains('.'));
    let own = parent(host);
    learned.iter().any(|l| l == host || (own.is_some() && parent(l) == own))
}

/// True if the change matters for judgement (plans, actors, windows). Other
/// annotations (deploy tooling, team labels) do not.
pub fn is_material(change: &Change) -> bool {
    !matches!(change, Change::Annotation { kind: AnnotationKind::Other, .. } | Change::TlsAdded { .. })
}

/// Findings on the first sight of an Ingress, where it is risky in itself.
/// `tls_elsewhere` says a host is served over TLS by another Ingress.
/// `created`: the object is new (a create), so hosts that are not known
/// count too; an older object seen for the first time is not judged on them.
pub fn first_sight(
    state: &IngressState,
    ctx: &Context<'_>,
    tls_elsewhere: &dyn Fn(&str) -> bool,
    created: bool,
) -> Vec<Finding> {
    let empty = IngressState::default();
    let mut out = Vec::new();
    let mut hosts = Vec::new();
    // Judge the risky parts as changes from nothing.
    for change in crate::ingress::diff::diff(&empty, state) {
        match &change {
            Change::Annotation { kind: AnnotationKind::Snippet, .. } => out.extend(findings(&change, ctx)),
            Change::AllowlistNarrowed { annotation, .. } => {
                let value = state.annotations.get(annotation).map(String::as_str).unwrap_or_default();
                let ranges = SourceRanges::parse(value);
                if admits_everything(&ranges.networks) {
                    out.push(Finding::new(
                        RuleId::AllowlistWidened,
                        format!("created with allowlist {annotation} admitting every address"),
                        &change,
                    ));
                }
            }
            Change::HostAdded { .. } | Change::PathAdded { .. } | Change::DefaultBackendChanged { .. } => {
                for f in findings(&change, ctx) {
                    if f.rule == RuleId::BackendRerouted {
                        out.push(f);
                    } else if created && f.rule == RuleId::HostAdded {
                        hosts.push(f);
                    }
                }
            }
            Change::SourceRangeInvalid { .. } => out.extend(findings(&change, ctx)),
            _ => {}
        }
    }
    // ExternalName backends on hosts added with the object.
    for rule in &state.rules {
        for path in &rule.paths {
            if let Some(crate::ingress::Backend::Service { name, .. }) = &path.backend
                && let Some(target) = (ctx.external_name)(name)
            {
                let change = Change::PathAdded {
                    host: rule.host.clone(),
                    path: path.path.clone(),
                    backend: path.backend.clone(),
                };
                out.push(Finding::new(
                    RuleId::BackendRerouted,
                    format!("created with a route to ExternalName service {name} ({target})"),
                    &change,
                ));
            }
        }
    }
    let tls_hosts: Vec<&str> = state.tls.iter().flat_map(|t| t.hosts.iter().map(String::as_str)).collect();
    for host in state.hosts().flatten() {
        if !tls_hosts.contains(&host) && tls_elsewhere(host) {
            let change = Change::TlsHostsDropped { hosts: vec![host.to_owned()] };
            out.push(Finding::new(
                RuleId::TlsWeakened,
                format!("host {host} served without TLS here, with TLS elsewhere"),
                &change,
            ));
        }
    }
    out.dedup_by(|a, b| a.rule == b.rule && a.summary == b.summary);
    out.extend(hosts);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_id_round_trips_and_is_unique() {
        let mut ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        for rule in RuleId::ALL {
            let json = serde_json::to_value(rule).unwrap();
            assert_eq!(json, rule.as_str());
            assert_eq!(serde_json::from_value::<RuleId>(json).unwrap(), *rule);
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RuleId::ALL.len());
    }

    /// The alert contract lists exactly the rules there are.
    #[test]
    fn the_alert_schema_names_every_rule_and_no_other() {
        let schema: Value = serde_json::from_str(include_str!("../schema/alert.schema.json")).unwrap();
        let mut listed: Vec<&str> = schema
            .pointer("/properties/signals/items/properties/rule/enum")
            .and_then(Value::as_array)
            .expect("the rule enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        listed.sort_unstable();
        ids.sort_unstable();
        assert_eq!(listed, ids);
    }

    /// Every rule's help link lands on its entry in `docs/rules.md`, which
    /// says what the catalogue says.
    #[test]
    fn the_rules_reference_documents_every_rule() {
        let doc = include_str!("../../../docs/rules.md");
        for rule in RuleId::ALL {
            assert!(doc.contains(&format!("<a id=\"{}\"></a>", rule.as_str())), "{rule} has no anchor");
            assert!(doc.contains(rule.description()), "{rule}: the description differs");
            assert!(doc.contains(rule.runbook()), "{rule}: the runbook line differs");
            assert!(rule.help_uri().ends_with(&format!("docs/rules.md#{}", rule.as_str())));
        }
    }

    #[test]
    fn severities_order_and_raise() {
        assert!(Severity::Low < Severity::Critical);
        assert_eq!(Severity::High.raised(), Severity::Critical);
        assert_eq!(Severity::Critical.raised(), Severity::Critical);
        assert_eq!("medium".parse::<Severity>(), Ok(Severity::Medium));
    }
}
