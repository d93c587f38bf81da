//! What an Ingress annotation means, by controller.
//!
//! Annotations are where most Ingress risk lives: one string can open an
//! allowlist, inject nginx configuration, strip authentication or mirror
//! traffic elsewhere. [`classify`] maps a key to its controller and the kind
//! of setting it is, and folds aliases (`whitelist-source-range` and
//! `allowlist-source-range`) into one setting, so renaming an annotation is
//! not seen as removing one and adding another.
//!
//! Sources: ingress-nginx's own annotation risk levels, the AWS Load Balancer
//! Controller annotation reference, Traefik's and HAProxy's ingress docs.

use serde::Serialize;

/// The controller an annotation configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Controller {
    /// ingress-nginx (`nginx.ingress.kubernetes.io/`).
    Nginx,
    /// AWS Load Balancer Controller (`alb.ingress.kubernetes.io/`).
    AwsLoadBalancer,
    /// Traefik (`traefik.ingress.kubernetes.io/`).
    Traefik,
    /// HAProxy Kubernetes Ingress Controller (`haproxy.org/`, `ingress.kubernetes.io/`).
    Haproxy,
    /// Kubernetes itself (`kubernetes.io/`, `kubectl.kubernetes.io/`).
    Kubernetes,
    /// Anything else.
    Other,
}

/// What kind of setting an annotation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnnotationKind {
    /// Source ranges allowed in (everything else refused).
    Allowlist,
    /// Source ranges refused.
    Denylist,
    /// Raw controller configuration (nginx snippets, HAProxy config snippets).
    Snippet,
    /// Authentication: external auth, basic auth, client certificates, ALB OIDC/Cognito.
    Auth,
    /// Rewrites, redirects, mirroring, upstream host and other request routing overrides.
    Rewrite,
    /// TLS settings: redirects to HTTPS, certificates, policies, passthrough, upstream TLS.
    Tls,
    /// The protocol spoken to the backend.
    BackendProtocol,
    /// Response headers and CORS.
    Headers,
    /// ALB scheme: `internal` or `internet-facing`.
    Scheme,
    /// Web application firewall and shield attachments.
    Waf,
    /// Security groups of the load balancer.
    SecurityGroups,
    /// Traefik middlewares (auth, headers, allowlists by reference).
    Middlewares,
    /// The legacy `kubernetes.io/ingress.class` annotation.
    Class,
    /// Client-side bookkeeping with no effect on routing (`last-applied-configuration`).
    Bookkeeping,
    /// Anything else.
    Other,
}

/// An annotation key, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified<'a> {
    /// The controller it configures.
    pub controller: Controller,
    /// The kind of setting.
    pub kind: AnnotationKind,
    /// The setting's canonical key: the key itself, or the preferred alias.
    pub setting: &'a str,
}

use AnnotationKind as K;

const NGINX: &str = "nginx.ingress.kubernetes.io/";
const ALB: &str = "alb.ingress.kubernetes.io/";
const TRAEFIK: &str = "traefik.ingress.kubernetes.io/";
const HAPROXY: &str = "haproxy.org/";
const HAPROXY_LEGACY: &str = "ingress.kubernetes.io/";

/// Aliases: (alias, canonical key).
const ALIASES: &[(&str, &str)] = &[
    ("nginx.ingress.kubernetes.io/whitelist-source-range", "nginx.ingress.kubernetes.io/allowlist-source-range"),
    ("haproxy.org/whitelist", "haproxy.org/allow-list"),
    ("haproxy.org/blacklist", "haproxy.org/deny-list"),
    ("ingress.kubernetes.io/whitelist-source-range", "haproxy.org/allow-list"),
    ("ingress.kubernetes.io/blacklist-source-range", "haproxy.org/deny-list"),
];

/// ingress-nginx settings by name (after the prefix).
const NGINX_KINDS: &[(&str, AnnotationKind)] = &[
    ("allowlist-source-range", K::Allowlist),
    ("denylist-source-range", K::Denylist),
    ("configuration-snippet", K::Snippet),
    ("server-snippet", K::Snippet),
    ("auth-snippet", K::Snippet),
    ("modsecurity-snippet", K::Snippet),
    ("stream-snippet", K::Snippet),
    ("auth-url", K::Auth),
    ("auth-signin", K::Auth),
    ("auth-signin-redirect-param", K::Auth),
    ("auth-type", K::Auth),
    ("auth-secret", K::Auth),
    ("auth-secret-type", K::Auth),
    ("auth-realm", K::Auth),
    ("auth-method", K::Auth),
    ("auth-response-headers", K::Auth),
    ("auth-proxy-set-headers", K::Auth),
    ("auth-request-redirect", K::Auth),
    ("auth-cache-key", K::Auth),
    ("auth-cache-duration", K::Auth),
    ("auth-always-set-cookie", K::Auth),
    ("auth-keepalive", K::Auth),
    ("auth-tls-secret", K::Auth),
    ("auth-tls-verify-client", K::Auth),
    ("auth-tls-verify-depth", K::Auth),
    ("auth-tls-match-cn", K::Auth),
    ("auth-tls-error-page", K::Auth),
    ("auth-tls-pass-certificate-to-upstream", K::Auth),
    ("enable-global-auth", K::Auth),
    ("satisfy", K::Auth),
    ("rewrite-target", K::Rewrite),
    ("use-regex", K::Rewrite),
    ("app-root", K::Rewrite),
    ("permanent-redirect", K::Rewrite),
    ("permanent-redirect-code", K::Rewrite),
    ("temporal-redirect", K::Rewrite),
    ("temporal-redirect-code", K::Rewrite),
    ("from-to-www-redirect", K::Rewrite),
    ("upstream-vhost", K::Rewrite),
    ("x-forwarded-prefix", K::Rewrite),
    ("mirror-target", K::Rewrite),
    ("mirror-host", K::Rewrite),
    ("mirror-uri", K::Rewrite),
    ("mirror-request-body", K::Rewrite),
    ("server-alias", K::Rewrite),
    ("proxy-redirect-from", K::Rewrite),
    ("proxy-redirect-to", K::Rewrite),
    ("default-backend", K::Rewrite),
    ("custom-http-errors", K::Rewrite),
    ("canary", K::Rewrite),
    ("canary-by-header", K::Rewrite),
    ("canary-by-header-value", K::Rewrite),
    ("canary-by-header-pattern", K::Rewrite),
    ("canary-by-cookie", K::Rewrite),
    ("canary-weight", K::Rewrite),
    ("canary-weight-total", K::Rewrite),
    ("service-upstream", K::Rewrite),
    ("ssl-redirect", K::Tls),
    ("force-ssl-redirect", K::Tls),
    ("ssl-passthrough", K::Tls),
    ("ssl-ciphers", K::Tls),
    ("ssl-prefer-server-ciphers", K::Tls),
    ("proxy-ssl-secret", K::Tls),
    ("proxy-ssl-verify", K::Tls),
    ("proxy-ssl-verify-depth", K::Tls),
    ("proxy-ssl-name", K::Tls),
    ("proxy-ssl-server-name", K::Tls),
    ("proxy-ssl-protocols", K::Tls),
    ("proxy-ssl-ciphers", K::Tls),
    ("backend-protocol", K::BackendProtocol),
    ("secure-backends", K::BackendProtocol),
    ("grpc-backend", K::BackendProtocol),
    ("custom-headers", K::Headers),
    ("enable-cors", K::Headers),
    ("cors-allow-origin", K::Headers),
    ("cors-allow-methods", K::Headers),
    ("cors-allow-headers", K::Headers),
    ("cors-allow-credentials", K::Headers),
    ("cors-expose-headers", K::Headers),
    ("cors-max-age", K::Headers),
    ("hsts", K::Headers),
    ("hsts-max-age", K::Headers),
    ("hsts-include-subdomains", K::Headers),
    ("hsts-preload", K::Headers),
    ("hide-headers", K::Headers),
    ("enable-modsecurity", K::Waf),
    ("enable-owasp-core-rules", K::Waf),
    ("modsecurity-transaction-id", K::Waf),
];

/// AWS Load Balancer Controller settings by name (after the prefix).
const ALB_KINDS: &[(&str, AnnotationKind)] = &[
    ("inbound-cidrs", K::Allowlist),
    ("scheme", K::Scheme),
    ("security-groups", K::SecurityGroups),
    ("manage-backend-security-group-rules", K::SecurityGroups),
    ("wafv2-acl-arn", K::Waf),
    ("waf-acl-id", K::Waf),
    ("shield-advanced-protection", K::Waf),
    ("auth-type", K::Auth),
    ("auth-idp-cognito", K::Auth),
    ("auth-idp-oidc", K::Auth),
    ("auth-on-unauthenticated-request", K::Auth),
    ("auth-scope", K::Auth),
    ("auth-session-cookie", K::Auth),
    ("auth-session-timeout", K::Auth),
    ("mutual-authentication", K::Auth),
    ("certificate-arn", K::Tls),
    ("ssl-policy", K::Tls),
    ("ssl-redirect", K::Tls),
    ("listen-ports", K::Tls),
    ("backend-protocol", K::BackendProtocol),
    ("backend-protocol-version", K::BackendProtocol),
    ("group.name", K::Rewrite),
    ("group.order", K::Rewrite),
];

/// ALB settings matched by prefix: custom actions and conditions route and redirect.
const ALB_PREFIXES: &[(&str, AnnotationKind)] = &[("actions.", K::Rewrite), ("conditions.", K::Rewrite)];

/// Traefik settings by name (after the prefix).
const TRAEFIK_KINDS: &[(&str, AnnotationKind)] = &[
    ("router.middlewares", K::Middlewares),
    ("router.tls", K::Tls),
    ("router.tls.certresolver", K::Tls),
    ("router.tls.options", K::Tls),
    ("router.entrypoints", K::Tls),
    ("router.pathmatcher", K::Rewrite),
    ("service.serversscheme", K::BackendProtocol),
];

/// HAProxy settings by name (after `haproxy.org/`).
const HAPROXY_KINDS: &[(&str, AnnotationKind)] = &[
    ("allow-list", K::Allowlist),
    ("deny-list", K::Denylist),
    ("backend-config-snippet", K::Snippet),
    ("frontend-config-snippet", K::Snippet),
    ("auth-type", K::Auth),
    ("auth-secret", K::Auth),
    ("auth-realm", K::Auth),
    ("path-rewrite", K::Rewrite),
    ("request-redirect", K::Rewrite),
    ("set-host", K::Rewrite),
    ("route-acl", K::Rewrite),
    ("ssl-redirect", K::Tls),
    ("ssl-passthrough", K::Tls),
    ("server-ssl", K::BackendProtocol),
    ("server-proto", K::BackendProtocol),
    ("response-set-header", K::Headers),
    ("request-set-header", K::Headers),
    ("cors-enable", K::Headers),
    ("cors-allow-origin", K::Headers),
];

fn lookup(table: &[(&str, AnnotationKind)], name: &str) -> Option<AnnotationKind> {
    table.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// Classifies an annotation key.
pub fn classify(key: &str) -> Classified<'_> {
    let setting = ALIASES.iter().find(|(alias, _)| *alias == key).map_or(key, |(_, canonical)| *canonical);
    let (controller, kind) = if let Some(name) = setting.strip_prefix(NGINX) {
        (Controller::Nginx, lookup(NGINX_KINDS, name))
    } else if let Some(name) = setting.strip_prefix(ALB) {
        let by_prefix = || ALB_PREFIXES.iter().find(|(p, _)| name.starts_with(p)).map(|(_, k)| *k);
        (Controller::AwsLoadBalancer, lookup(ALB_KINDS, name).or_else(by_prefix))
    } else if let Some(name) = setting.strip_prefix(TRAEFIK) {
        (Controller::Traefik, lookup(TRAEFIK_KINDS, name))
    } else if let Some(name) = setting.strip_prefix(HAPROXY) {
        (Controller::Haproxy, lookup(HAPROXY_KINDS, name))
    } else if setting.starts_with(HAPROXY_LEGACY) {
        (Controller::Haproxy, None)
    } else if setting == "kubernetes.io/ingress.class" {
        (Controller::Kubernetes, Some(K::Class))
    } else if setting == "kubectl.kubernetes.io/last-applied-configuration" {
        (Controller::Kubernetes, Some(K::Bookkeeping))
    } else {
        (Controller::Other, None)
    };
    Classified { controller, kind: kind.unwrap_or(K::Other), setting }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_controller_and_meaning() {
        let c = classify("nginx.ingress.kubernetes.io/configuration-snippet");
        assert_eq!((c.controller, c.kind), (Controller::Nginx, K::Snippet));
        assert_eq!(classify("alb.ingress.kubernetes.io/inbound-cidrs").kind, K::Allowlist);
        assert_eq!(classify("alb.ingress.kubernetes.io/scheme").kind, K::Scheme);
        assert_eq!(classify("alb.ingress.kubernetes.io/actions.ssl-redirect").kind, K::Rewrite);
        assert_eq!(classify("traefik.ingress.kubernetes.io/router.middlewares").kind, K::Middlewares);
        assert_eq!(classify("haproxy.org/backend-config-snippet").kind, K::Snippet);
        assert_eq!(classify("kubernetes.io/ingress.class").kind, K::Class);
        assert_eq!(classify("example.com/team").kind, K::Other);
        assert_eq!(classify("nginx.ingress.kubernetes.io/proxy-body-size").kind, K::Other);
    }

    #[test]
    fn aliases_fold_into_one_setting() {
        let old = classify("nginx.ingress.kubernetes.io/whitelist-source-range");
        let new = classify("nginx.ingress.kubernetes.io/allowlist-source-range");
        assert_eq!(old.setting, new.setting);
        assert_eq!(old.kind, K::Allowlist);
        assert_eq!(classify("haproxy.org/whitelist").setting, "haproxy.org/allow-list");
    }

    /// Every annotation ingress-nginx itself rates Critical or High must be classified.
    #[test]
    fn every_high_risk_nginx_annotation_has_a_kind() {
        for name in [
            "configuration-snippet",
            "server-snippet",
            "auth-snippet",
            "modsecurity-snippet",
            "stream-snippet",
            "auth-url",
            "auth-signin",
            "auth-tls-match-cn",
            "mirror-target",
            "mirror-host",
            "proxy-ssl-name",
            "server-alias",
        ] {
            let key = format!("{NGINX}{name}");
            assert_ne!(classify(&key).kind, K::Other, "{key}");
        }
    }
}
