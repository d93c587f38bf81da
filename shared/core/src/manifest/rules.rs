//! Manifest rules: what an object is, whatever it changed from. Modeled on
//! ingress-nginx's own annotation risk levels and the public CVE vectors of
//! the Ingress layer (snippets, annotation injection, path traversal), and on
//! what the manifest scanners a team already runs check for this layer
//! (wildcard hosts, missing TLS, default backends, ExternalName targets,
//! controller settings, Gateway API listeners, routes and grants).
//!
//! Each finding says where in the object it points ([`Locus`]), so `sentinel
//! check` can name the line. The engine runs the same rules on every live
//! write and keeps what the write introduced ([`introduced`]).

use serde::Serialize;
use serde_json::{Value, json};

use crate::ingress::annotations::{AnnotationKind, Controller, classify};
use crate::ingress::cidr::SourceRanges;
use crate::ingress::{Backend, IngressState};
use crate::rules::{Finding, RuleId, Severity, strips_headers};

/// Where in an object a finding points.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Locus {
    /// An annotation, by key.
    Annotation(String),
    /// The host of the rule at this index (or the rule, when it has none).
    Host(usize),
    /// A path of a rule.
    Path {
        /// The rule's index.
        rule: usize,
        /// The path's index within the rule.
        path: usize,
    },
    /// The TLS section (missing or incomplete).
    Tls,
    /// The default backend.
    DefaultBackend,
    /// Any other field, by JSON pointer.
    Pointer(String),
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Locus {
    /// The JSON pointer of the field in `object` (an Ingress of any served
    /// version, or another kind for [`Locus::Pointer`]).
    pub fn pointer(&self, object: &Value) -> String {
        match self {
            Self::Annotation(key) => format!("/metadata/annotations/{}", escape(key)),
            Self::Host(rule) => {
                let host = format!("/spec/rules/{rule}/host");
                if object.pointer(&host).is_some() { host } else { format!("/spec/rules/{rule}") }
            }
            Self::Path { rule, path } => format!("/spec/rules/{rule}/http/paths/{path}"),
            Self::Tls => "/spec/tls".to_owned(),
            Self::DefaultBackend => {
                if object.pointer("/spec/backend").is_some() { "/spec/backend" } else { "/spec/defaultBackend" }
                    .to_owned()
            }
            Self::Pointer(p) => p.clone(),
        }
    }
}

/// A finding and where it points.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    /// The finding.
    pub finding: Finding,
    /// Where in the object.
    pub locus: Locus,
}

/// What the rules need to know beyond the object.
pub struct Env<'a> {
    /// The controller serving the object's class; `None` when unknown, and
    /// then every controller's rules apply.
    pub controller: Option<Controller>,
    /// Whether a host is allowed in a namespace: `None` where no host
    /// patterns are configured (only wildcards and catch-alls are judged).
    pub host_allowed: &'a dyn Fn(&str, &str) -> Option<bool>,
    /// Where a Service of a namespace points, if it is an ExternalName.
    pub external_name: &'a dyn Fn(&str, &str) -> Option<String>,
    /// True if the ConfigMap `namespace/name` configures an ingress controller.
    pub controller_configmap: &'a dyn Fn(&str, &str) -> bool,
}

impl Env<'_> {
    /// An environment that knows nothing beyond the object.
    pub fn bare() -> Env<'static> {
        Env {
            controller: None,
            host_allowed: &|_, _| None,
            external_name: &|_, _| None,
            controller_configmap: &|_, _| false,
        }
    }

    fn applies(&self, annotation: Controller) -> bool {
        match self.controller {
            None => true,
            Some(c) => c == annotation || matches!(annotation, Controller::Kubernetes | Controller::Other),
        }
    }
}

/// The controller a class's `spec.controller` names.
pub fn controller_of(spec_controller: &str) -> Controller {
    match spec_controller {
        "k8s.io/ingress-nginx" => Controller::Nginx,
        "ingress.k8s.aws/alb" => Controller::AwsLoadBalancer,
        c if c.starts_with("traefik.io/") => Controller::Traefik,
        c if c.starts_with("haproxy.org/") => Controller::Haproxy,
        _ => Controller::Other,
    }
}

/// ingress-nginx annotations whose values are written into nginx.conf, by
/// name after the prefix: ingress-nginx rates them High or Critical, and the
/// injection CVEs went through them.
const INJECTABLE: &[&str] = &[
    "auth-url",
    "auth-signin",
    "auth-tls-match-cn",
    "auth-proxy-set-headers",
    "auth-method",
    "mirror-target",
    "mirror-host",
    "permanent-redirect",
    "temporal-redirect",
    "rewrite-target",
    "server-alias",
    "proxy-ssl-name",
    "upstream-hash-by",
    "upstream-vhost",
    "app-root",
];

/// nginx directives that have no business in an annotation value.
const DIRECTIVES: &[&str] = &[
    "proxy_pass",
    "load_module",
    "include ",
    "ssl_engine",
    "content_by_lua",
    "access_by_lua",
    "_by_lua",
    "more_set_headers",
    "add_header",
    "return ",
    "rewrite ",
    "location ",
    "server ",
    "alias ",
    "root ",
];

/// What in a value would break out of its place in nginx.conf.
fn injection(value: &str) -> Option<String> {
    let found: Vec<&str> = [
        ('\n', "a newline"),
        ('\r', "a carriage return"),
        (';', "a semicolon"),
        ('{', "a brace"),
        ('}', "a brace"),
        ('#', "a comment mark"),
        ('"', "a quote"),
        ('\'', "a quote"),
        ('`', "a backtick"),
        ('\\', "a backslash"),
    ]
    .iter()
    .filter(|(c, _)| value.contains(*c))
    .map(|(_, what)| *what)
    .collect();
    let lower = value.to_ascii_lowercase();
    let word = DIRECTIVES.iter().find(|d| lower.contains(*d)).map(|d| format!("the nginx directive {}", d.trim()));
    let mut all: Vec<String> = found.into_iter().map(str::to_owned).collect();
    all.dedup();
    all.extend(word);
    (!all.is_empty()).then(|| all.join(", "))
}

/// What in a value or path reaches files nginx can read or serve.
fn traversal(value: &str) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    [
        ("/var/run/secrets", "the service-account token directory"),
        ("/etc/", "/etc/"),
        ("_by_lua", "Lua code"),
        ("alias ", "an alias directive"),
        ("root ", "a root directive"),
        ("../", "a parent-directory step"),
    ]
    .iter()
    .find(|(needle, _)| lower.contains(needle))
    .map(|(_, what)| *what)
}

fn found(rule: RuleId, summary: String, evidence: Value, locus: Locus) -> Located {
    Located { finding: Finding::new(rule, summary, &evidence), locus }
}

fn with(mut l: Located, severity: Severity) -> Located {
    l.finding.severity = severity;
    l
}

/// The rules for one Ingress.
pub fn ingress(state: &IngressState, env: &Env<'_>) -> Vec<Located> {
    let mut out = Vec::new();
    let namespace = state.namespace.as_deref().unwrap_or("default");
    let nginx = env.applies(Controller::Nginx);
    for (key, value) in &state.annotations {
        let c = classify(key);
        if !env.applies(c.controller) {
            continue;
        }
        let at = || Locus::Annotation(key.clone());
        let evidence = || json!({"annotation": key, "value": value});
        match c.kind {
            AnnotationKind::Snippet => {
                out.push(found(
                    RuleId::SnippetInjected,
                    format!("snippet {key} writes raw controller configuration (CVE-2021-25742, CVE-2023-5043)"),
                    evidence(),
                    at(),
                ));
                if strips_headers(value) {
                    out.push(found(
                        RuleId::HeadersStripped,
                        format!("snippet {key} removes or hides response headers"),
                        evidence(),
                        at(),
                    ));
                }
            }
            AnnotationKind::Allowlist => {
                let ranges = SourceRanges::parse(value);
                if ranges.addresses().covers_a_whole_family() {
                    out.push(with(
                        found(
                            RuleId::AllowlistWidened,
                            format!("allowlist {key} admits every address"),
                            evidence(),
                            at(),
                        ),
                        Severity::Critical,
                    ));
                } else if !ranges.invalid.is_empty() {
                    let bad: Vec<&str> = ranges.invalid.iter().map(|e| e.entry.as_str()).collect();
                    out.push(found(
                        RuleId::AllowlistWidened,
                        format!(
                            "allowlist {key} holds invalid entries ({}); the controller may drop the whole list",
                            bad.join(", ")
                        ),
                        evidence(),
                        at(),
                    ));
                }
            }
            AnnotationKind::Tls
                if (key.ends_with("/ssl-redirect") || key.ends_with("/force-ssl-redirect"))
                    && value.eq_ignore_ascii_case("false")
                    && !state.tls.is_empty() =>
            {
                out.push(with(
                    found(
                        RuleId::TlsWeakened,
                        format!("{key} is false beside TLS: clients may stay on plain HTTP"),
                        evidence(),
                        at(),
                    ),
                    Severity::Medium,
                ));
            }
            AnnotationKind::Scheme if value == "internet-facing" => {
                let cidrs = state.annotations.get("alb.ingress.kubernetes.io/inbound-cidrs");
                let open = cidrs.is_none_or(|v| SourceRanges::parse(v).addresses().covers_a_whole_family());
                if open {
                    out.push(with(
                        found(
                            RuleId::ExposurePublic,
                            "internet-facing load balancer open to every address (no narrower inbound-cidrs)".into(),
                            evidence(),
                            at(),
                        ),
                        Severity::High,
                    ));
                }
            }
            AnnotationKind::Headers if value.trim() == "*" => {
                out.push(with(
                    found(RuleId::HeadersStripped, format!("{key} set to *"), evidence(), at()),
                    Severity::Medium,
                ));
            }
            _ => {}
        }
        if c.controller == Controller::Nginx && nginx {
            let name = key.rsplit('/').next().unwrap_or_default();
            if INJECTABLE.contains(&name)
                && let Some(what) = injection(value)
            {
                out.push(found(
                    RuleId::AnnotationInjection,
                    format!("{key} carries {what}, which nginx would read as configuration"),
                    evidence(),
                    at(),
                ));
            }
            if c.kind != AnnotationKind::Snippet
                && let Some(what) = traversal(value)
            {
                out.push(found(RuleId::PathTraversal, format!("{key} reaches {what}"), evidence(), at()));
            }
        }
    }
    for (i, rule) in state.rules.iter().enumerate() {
        match rule.host.as_deref() {
            None => out.push(found(
                RuleId::HostAdded,
                "a rule without host serves every host name".into(),
                json!({"rule": i}),
                Locus::Host(i),
            )),
            Some(host) => {
                let allowed = (env.host_allowed)(namespace, host);
                if host.starts_with('*') && allowed != Some(true) {
                    out.push(with(
                        found(
                            RuleId::HostAdded,
                            format!("wildcard host {host}"),
                            json!({"host": host}),
                            Locus::Host(i),
                        ),
                        Severity::High,
                    ));
                } else if allowed == Some(false) {
                    out.push(found(
                        RuleId::HostAdded,
                        format!("host {host} is outside the known host patterns"),
                        json!({"host": host}),
                        Locus::Host(i),
                    ));
                }
            }
        }
        for (j, path) in rule.paths.iter().enumerate() {
            let locus = || Locus::Path { rule: i, path: j };
            if nginx
                && let Some(p) = path.path.as_deref()
                && let Some(what) = traversal(p).or_else(|| injection(p).map(|_| "nginx configuration syntax"))
            {
                out.push(found(
                    RuleId::PathTraversal,
                    format!("path {p} reaches {what} (CVE-2021-25745)"),
                    json!({"path": p}),
                    locus(),
                ));
            }
            if let Some(Backend::Service { name, .. }) = &path.backend
                && let Some(target) = (env.external_name)(namespace, name)
            {
                out.push(found(
                    RuleId::BackendRerouted,
                    format!("routes to ExternalName service {name} ({target})"),
                    json!({"service": name, "external_name": target}),
                    locus(),
                ));
            }
        }
    }
    let covered = |host: &str| {
        state.tls.iter().flat_map(|t| &t.hosts).any(|t| {
            t == host
                || t.strip_prefix('*')
                    .is_some_and(|suffix| host.ends_with(suffix) && !host[..host.len() - suffix.len()].contains('.'))
        })
    };
    let hosts: Vec<&str> = state.hosts().flatten().collect();
    if state.tls.is_empty() && (!state.rules.is_empty() || state.default_backend.is_some()) {
        out.push(found(RuleId::TlsMissing, "served without TLS".into(), json!({"hosts": hosts}), Locus::Tls));
    } else {
        let uncovered: Vec<&str> = hosts.iter().copied().filter(|h| !covered(h)).collect();
        if !uncovered.is_empty() {
            out.push(found(
                RuleId::TlsMissing,
                format!("hosts without TLS: {}", uncovered.join(", ")),
                json!({"hosts": uncovered}),
                Locus::Tls,
            ));
        }
    }
    if let Some(backend) = &state.default_backend {
        out.push(found(
            RuleId::DefaultBackend,
            format!("default backend {backend} catches every request no rule matches"),
            json!({"backend": backend}),
            Locus::DefaultBackend,
        ));
        if let Backend::Service { name, .. } = backend
            && let Some(target) = (env.external_name)(namespace, name)
        {
            out.push(found(
                RuleId::BackendRerouted,
                format!("default backend is ExternalName service {name} ({target})"),
                json!({"service": name, "external_name": target}),
                Locus::DefaultBackend,
            ));
        }
    }
    out
}

/// Where an ExternalName target leads, if somewhere it should not.
fn unsafe_target(target: &str) -> Option<(&'static str, Severity)> {
    let t = target.trim_end_matches('.').to_ascii_lowercase();
    if t.starts_with("169.254.") || t == "fd00:ec2::254" || t.starts_with("metadata.") || t == "instance-data" {
        return Some(("the instance metadata service", Severity::Critical));
    }
    if t == "localhost" || t.ends_with(".localhost") || t.starts_with("127.") || t == "::1" || t == "0.0.0.0" {
        return Some(("the node itself", Severity::High));
    }
    if t.ends_with(".svc")
        || t.contains(".svc.")
        || t.ends_with(".cluster.local")
        || t.starts_with("kubernetes.default")
    {
        return Some(("a name inside the cluster", Severity::High));
    }
    None
}

fn text<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn items<'v>(v: &'v Value, pointer: &str) -> impl Iterator<Item = (usize, &'v Value)> {
    v.pointer(pointer).and_then(Value::as_array).into_iter().flatten().enumerate()
}

/// The rules for one object of any kind, as written in a manifest.
pub fn object(kind: &str, namespace: &str, name: &str, body: &Value, env: &Env<'_>) -> Vec<Located> {
    match kind {
        "Ingress" => match IngressState::from_value(body) {
            Ok(mut state) => {
                state.namespace.get_or_insert_with(|| namespace.to_owned());
                ingress(&state, env)
            }
            Err(_) => Vec::new(),
        },
        "Service" => service(body),
        "ConfigMap" if (env.controller_configmap)(namespace, name) => controller_configmap(body),
        "Gateway" => gateway(body),
        "HTTPRoute" | "GRPCRoute" | "TLSRoute" => route(namespace, body, env),
        "ReferenceGrant" => reference_grant(namespace, body),
        _ => Vec::new(),
    }
}

/// An ExternalName Service that leads somewhere it should not.
pub fn service(body: &Value) -> Vec<Located> {
    if text(body, "/spec/type") != Some("ExternalName") {
        return Vec::new();
    }
    let Some(target) = text(body, "/spec/externalName") else { return Vec::new() };
    let Some((what, severity)) = unsafe_target(target) else { return Vec::new() };
    vec![with(
        found(
            RuleId::ExternalNameUnsafe,
            format!("ExternalName points at {target}: {what}"),
            json!({"external_name": target}),
            Locus::Pointer("/spec/externalName".into()),
        ),
        severity,
    )]
}

/// An ingress controller ConfigMap that lets annotations write configuration.
pub fn controller_configmap(body: &Value) -> Vec<Located> {
    let mut out = Vec::new();
    if text(body, "/data/allow-snippet-annotations").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        out.push(found(
            RuleId::ControllerUnsafe,
            "allow-snippet-annotations is true: every Ingress may write raw nginx configuration (CVE-2021-25742)"
                .into(),
            json!({"allow-snippet-annotations": "true"}),
            Locus::Pointer("/data/allow-snippet-annotations".into()),
        ));
    }
    if text(body, "/data/annotations-risk-level").is_some_and(|v| v.eq_ignore_ascii_case("critical")) {
        out.push(found(
            RuleId::ControllerUnsafe,
            "annotations-risk-level is Critical: annotations of every risk level are accepted".into(),
            json!({"annotations-risk-level": "Critical"}),
            Locus::Pointer("/data/annotations-risk-level".into()),
        ));
    }
    out
}

/// Gateway listeners without TLS, or open to routes from every namespace.
pub fn gateway(body: &Value) -> Vec<Located> {
    let mut out = Vec::new();
    for (i, listener) in items(body, "/spec/listeners") {
        let name = text(listener, "/name").unwrap_or("?");
        let protocol = text(listener, "/protocol").unwrap_or_default();
        let port = listener.get("port").cloned().unwrap_or(Value::Null);
        let at = Locus::Pointer(format!("/spec/listeners/{i}"));
        let evidence = json!({"listener": name, "protocol": protocol, "port": port});
        let passthrough = text(listener, "/tls/mode") == Some("Passthrough");
        let certificates =
            listener.pointer("/tls/certificateRefs").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
        if protocol == "HTTP" {
            out.push(found(
                RuleId::GatewayListenerInsecure,
                format!("listener {name} serves plain HTTP on port {port}"),
                evidence.clone(),
                at.clone(),
            ));
        } else if matches!(protocol, "HTTPS" | "TLS") && !passthrough && !certificates {
            out.push(found(
                RuleId::GatewayListenerInsecure,
                format!("listener {name} ({protocol}) has no certificate"),
                evidence.clone(),
                at.clone(),
            ));
        }
        if text(listener, "/allowedRoutes/namespaces/from") == Some("All") {
            out.push(found(
                RuleId::GatewayRoutesAllNamespaces,
                format!("listener {name} accepts routes from every namespace"),
                evidence,
                Locus::Pointer(format!("/spec/listeners/{i}/allowedRoutes/namespaces/from")),
            ));
        }
    }
    out
}

/// Route hostnames outside the known hosts, and backends in other namespaces.
pub fn route(namespace: &str, body: &Value, env: &Env<'_>) -> Vec<Located> {
    let mut out = Vec::new();
    for (i, host) in items(body, "/spec/hostnames") {
        let Some(host) = host.as_str() else { continue };
        let allowed = (env.host_allowed)(namespace, host);
        let at = Locus::Pointer(format!("/spec/hostnames/{i}"));
        if host.starts_with('*') && allowed != Some(true) {
            out.push(with(
                found(RuleId::HostAdded, format!("wildcard hostname {host}"), json!({"host": host}), at),
                Severity::High,
            ));
        } else if allowed == Some(false) {
            out.push(found(
                RuleId::HostAdded,
                format!("hostname {host} is outside the known host patterns"),
                json!({"host": host}),
                at,
            ));
        }
    }
    for (i, rule) in items(body, "/spec/rules") {
        for (j, backend) in items(rule, "/backendRefs") {
            let Some(other) = text(backend, "/namespace").filter(|n| *n != namespace) else { continue };
            let kind = text(backend, "/kind").unwrap_or("Service");
            let name = text(backend, "/name").unwrap_or("?");
            out.push(found(
                RuleId::CrossNamespaceBackend,
                format!("backendRef to {kind} {other}/{name}, in another namespace"),
                json!({"kind": kind, "namespace": other, "name": name}),
                Locus::Pointer(format!("/spec/rules/{i}/backendRefs/{j}")),
            ));
        }
    }
    out
}

/// ReferenceGrants that open every object of a kind.
pub fn reference_grant(namespace: &str, body: &Value) -> Vec<Located> {
    let from: Vec<String> = items(body, "/spec/from")
        .map(|(_, f)| format!("{} in {}", text(f, "/kind").unwrap_or("?"), text(f, "/namespace").unwrap_or("?")))
        .collect();
    items(body, "/spec/to")
        .filter(|(_, to)| text(to, "/name").is_none_or(str::is_empty))
        .map(|(i, to)| {
            let kind = text(to, "/kind").unwrap_or("?");
            found(
                RuleId::ReferenceGrantOpen,
                format!("grants {} every {kind} of namespace {namespace}", from.join(", ")),
                json!({"from": from, "kind": kind}),
                Locus::Pointer(format!("/spec/to/{i}")),
            )
        })
        .collect()
}

/// An Ingress among several, for [`host_clashes`].
pub struct Claimant<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Where it is written, in words (`file:line`).
    pub place: String,
    /// The Ingress.
    pub state: &'a IngressState,
}

/// Host and path pairs claimed by two Ingresses: one can take over the
/// other's traffic. Each of the first `judged` claimants gets a finding for
/// every route another claimant (judged or not) also claims.
pub fn host_clashes(claimants: &[Claimant<'_>], judged: usize) -> Vec<(usize, Located)> {
    let route = |host: &Option<String>, path: &Option<String>| {
        (host.clone().unwrap_or_else(|| "*".into()), path.clone().unwrap_or_else(|| "/".into()))
    };
    let mut claims: std::collections::BTreeMap<(String, String), Vec<usize>> = std::collections::BTreeMap::new();
    for (n, c) in claimants.iter().enumerate() {
        for rule in &c.state.rules {
            for path in &rule.paths {
                claims.entry(route(&rule.host, &path.path)).or_default().push(n);
            }
        }
    }
    let mut out = Vec::new();
    for (n, c) in claimants.iter().enumerate().take(judged) {
        for (i, rule) in c.state.rules.iter().enumerate() {
            for (j, path) in rule.paths.iter().enumerate() {
                let (host, p) = route(&rule.host, &path.path);
                let rivals = claims.get(&(host.clone(), p.clone())).into_iter().flatten();
                let Some(other) =
                    rivals.map(|r| &claimants[*r]).find(|o| (o.namespace, o.name) != (c.namespace, c.name))
                else {
                    continue;
                };
                out.push((
                    n,
                    found(
                        RuleId::HostClash,
                        format!("{host}{p} is also claimed by Ingress {}/{} ({})", other.namespace, other.name, other.place),
                        json!({"host": host, "path": p, "other": format!("{}/{}", other.namespace, other.name), "at": other.place}),
                        Locus::Path { rule: i, path: j },
                    ),
                ));
            }
        }
    }
    out
}

/// The findings of `new` that `old` did not have (by rule and summary).
pub fn introduced(old: &[Located], new: Vec<Located>) -> Vec<Located> {
    new.into_iter()
        .filter(|n| !old.iter().any(|o| o.finding.rule == n.finding.rule && o.finding.summary == n.finding.summary))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(kind: &str, body: Value) -> Vec<RuleId> {
        object(kind, "shop", "x", &body, &Env::bare()).into_iter().map(|l| l.finding.rule).collect()
    }

    #[test]
    fn injection_and_traversal_read_what_nginx_would() {
        assert_eq!(injection("https://auth.example.com/verify"), None);
        assert!(injection("http://x/#;\n}").is_some_and(|w| w.contains("newline") && w.contains("semicolon")));
        assert!(injection("https://a proxy_pass http://evil").is_some_and(|w| w.contains("proxy_pass")));
        assert_eq!(
            traversal("/var/run/secrets/kubernetes.io/serviceaccount/token"),
            Some("the service-account token directory")
        );
        assert_eq!(traversal("/api/v1"), None);
    }

    #[test]
    fn external_name_targets() {
        assert_eq!(unsafe_target("169.254.169.254").map(|t| t.1), Some(Severity::Critical));
        assert_eq!(unsafe_target("localhost").map(|t| t.1), Some(Severity::High));
        assert!(unsafe_target("db.payments.svc.cluster.local").is_some());
        assert_eq!(unsafe_target("api.example.com"), None);
    }

    #[test]
    fn gateway_kinds() {
        let gw = json!({"spec": {"listeners": [
            {"name": "web", "protocol": "HTTP", "port": 80},
            {"name": "tls", "protocol": "HTTPS", "port": 443, "tls": {"certificateRefs": [{"name": "c"}]},
             "allowedRoutes": {"namespaces": {"from": "All"}}}]}});
        assert_eq!(rules_of("Gateway", gw), [RuleId::GatewayListenerInsecure, RuleId::GatewayRoutesAllNamespaces]);
        let grant = json!({"spec": {"from": [{"kind": "HTTPRoute", "namespace": "web"}], "to": [{"kind": "Service"}]}});
        assert_eq!(rules_of("ReferenceGrant", grant), [RuleId::ReferenceGrantOpen]);
        let named = json!({"spec": {"from": [{"kind": "HTTPRoute", "namespace": "web"}], "to": [{"kind": "Service", "name": "api"}]}});
        assert!(rules_of("ReferenceGrant", named).is_empty());
    }
}
