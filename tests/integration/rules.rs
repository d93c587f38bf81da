//! Every rule id, fired by the change it is for and silent for its look-alike;
//! approved and routine changes silent; correlation and idempotency.

use sentinel_core::rules::RuleId;
use sentinel_core::store::{Expect, Identities};
use sentinel_tests::engine::*;
use serde_json::{Value, json};

const DAY: &str = "2024-05-01T10:00:00Z"; // Wednesday, inside the window
const LATER: &str = "2024-05-01T11:00:00Z";
const NIGHT: &str = "2024-05-02T02:00:00Z"; // Thursday night

/// The storefront created by CI, then one change to it by `user` at `time`.
fn change(edit: impl Fn(&mut Value), user: Value, time: &str) -> Harness {
    let before = storefront();
    let mut after = before.clone();
    edit(&mut after);
    let mut h = Harness::new();
    h.feed(&[
        write("create", "create", "ingresses", "shop", "web", DAY, ci(), Some(&before)),
        write("change", "update", "ingresses", "shop", "web", time, user, Some(&after)),
    ]);
    h
}

fn fires(h: &Harness, rule: RuleId) -> bool {
    h.sink.rules().contains(&rule)
}

fn annotate(key: &'static str, value: Option<&'static str>) -> impl Fn(&mut Value) {
    move |o: &mut Value| {
        let a = o["metadata"]["annotations"].as_object_mut().unwrap();
        match value {
            Some(v) => a.insert(format!("nginx.ingress.kubernetes.io/{key}"), json!(v)),
            None => a.remove(&format!("nginx.ingress.kubernetes.io/{key}")),
        };
    }
}

/// (rule, the change that must fire it, a look-alike that must not).
type Case = (RuleId, Box<dyn Fn(&mut Value)>, Box<dyn Fn(&mut Value)>);

fn content_cases() -> Vec<Case> {
    vec![
        (
            RuleId::AllowlistWidened,
            Box::new(annotate("allowlist-source-range", Some("10.0.0.0/8,0.0.0.0/0"))),
            Box::new(annotate("allowlist-source-range", Some("10.1.0.0/16"))),
        ),
        (
            RuleId::SnippetInjected,
            Box::new(annotate("server-snippet", Some("location /x { return 200; }"))),
            Box::new(annotate("proxy-body-size", Some("8m"))),
        ),
        (
            RuleId::RewriteChanged,
            Box::new(annotate("rewrite-target", Some("/$2"))),
            Box::new(annotate("proxy-read-timeout", Some("60"))),
        ),
        (
            RuleId::AuthWeakened,
            Box::new(annotate("auth-url", None)),
            Box::new(annotate("auth-signin", Some("https://login.shop.example.com"))),
        ),
        (
            RuleId::TlsWeakened,
            Box::new(|o: &mut Value| o["spec"]["tls"] = json!([])),
            Box::new(|o: &mut Value| {
                o["spec"]["tls"][0]["hosts"].as_array_mut().unwrap().push(json!("www.shop.example.com"))
            }),
        ),
        (
            RuleId::HeadersStripped,
            Box::new(annotate("custom-headers", None)),
            Box::new(annotate("cors-allow-methods", Some("GET"))),
        ),
        (
            RuleId::BackendRerouted,
            Box::new(|o: &mut Value| {
                o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("exfil")
            }),
            Box::new(|o: &mut Value| {
                o["spec"]["rules"][0]["http"]["paths"].as_array_mut().unwrap().push(
                    json!({"path": "/help", "pathType": "Prefix", "backend": {"service": {"name": "help", "port": {"number": 80}}}}),
                )
            }),
        ),
        (
            RuleId::HostAdded,
            Box::new(|o: &mut Value| {
                o["spec"]["rules"].as_array_mut().unwrap().push(json!({"host": "shop.evil.example.net"}))
            }),
            Box::new(|o: &mut Value| {
                o["spec"]["rules"].as_array_mut().unwrap().push(json!({"host": "api.shop.example.com"}))
            }),
        ),
        (
            RuleId::ClassChanged,
            Box::new(|o: &mut Value| o["spec"]["ingressClassName"] = json!("rogue")),
            Box::new(annotate("proxy-body-size", Some("8m"))),
        ),
        (
            RuleId::ExposurePublic,
            Box::new(|o: &mut Value| {
                o["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] = json!("internet-facing")
            }),
            Box::new(|o: &mut Value| {
                o["metadata"]["annotations"]["alb.ingress.kubernetes.io/inbound-cidrs"] = json!("10.0.0.0/8")
            }),
        ),
    ]
}

#[test]
fn content_rules_fire_on_their_change_and_not_on_the_look_alike() {
    for (rule, positive, negative) in content_cases() {
        let h = change(&positive, mallory(), NIGHT);
        assert!(fires(&h, rule), "{rule} must fire; fired {:?}", h.sink.rules());
        let h = change(&negative, mallory(), NIGHT);
        assert!(!fires(&h, rule), "{rule} must not fire on its look-alike; fired {:?}", h.sink.rules());
    }
}

#[test]
fn approved_changes_raise_nothing_whatever_they_change() {
    for (rule, positive, _) in content_cases() {
        let h = change(&positive, ci(), LATER);
        assert!(h.sink.published.is_empty(), "approved change for {rule} raised {:?}", h.sink.rules());
        assert_eq!(h.stats().approved, 2, "{rule}: the create and the change are recorded as approved");
    }
}

#[test]
fn deletion_fires_and_an_update_does_not() {
    let mut h = Harness::new();
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
        write("d", "delete", "ingresses", "shop", "web", NIGHT, mallory(), None),
    ]);
    assert!(fires(&h, RuleId::Deleted));
    let h = change(annotate("proxy-body-size", Some("1m")), mallory(), NIGHT);
    assert!(!fires(&h, RuleId::Deleted));
}

#[test]
fn a_tls_secret_in_use_written_at_night_fires_and_others_do_not() {
    let mut h = Harness::new();
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
        write("s1", "update", "secrets", "shop", "web-tls", NIGHT, mallory(), None),
    ]);
    assert!(fires(&h, RuleId::TlsSecretRotated));
    let mut h = Harness::new();
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
        write("s2", "update", "secrets", "shop", "web-tls", LATER, ci(), None),
        write("s3", "update", "secrets", "shop", "unrelated", NIGHT, mallory(), None),
    ]);
    assert!(h.sink.published.is_empty(), "{:?}", h.sink.rules());
}

#[test]
fn the_controller_configmap_fires_and_other_configmaps_do_not() {
    let mut h = Harness::new();
    h.feed(&[write("m", "patch", "configmaps", "ingress-nginx", "ingress-nginx-controller", NIGHT, mallory(), None)]);
    assert!(fires(&h, RuleId::ControllerConfigChanged));
    let mut h = Harness::new();
    h.feed(&[write("m", "patch", "configmaps", "shop", "app-settings", NIGHT, mallory(), None)]);
    assert!(h.sink.published.is_empty());
}

#[test]
fn a_service_turned_external_name_under_an_ingress_is_a_reroute() {
    let svc = |t: &str| json!({"kind": "Service", "spec": {"type": t, "externalName": "attacker.example.net"}});
    let mut h = Harness::new();
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
        write("s", "update", "services", "shop", "web", NIGHT, mallory(), Some(&svc("ExternalName"))),
    ]);
    assert!(fires(&h, RuleId::BackendRerouted), "{:?}", h.sink.rules());
    let mut h = Harness::new();
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
        write("s", "update", "services", "shop", "other", NIGHT, mallory(), Some(&svc("ExternalName"))),
        write("t", "update", "services", "shop", "web", NIGHT, mallory(), Some(&svc("ClusterIP"))),
    ]);
    assert!(h.sink.published.is_empty(), "{:?}", h.sink.rules());
}

#[test]
fn out_of_window_fires_for_an_approved_actor_at_night_only() {
    let edit = annotate("rewrite-target", Some("/"));
    let h = change(&edit, ci(), NIGHT);
    assert_eq!(h.sink.rules(), [RuleId::RewriteChanged, RuleId::OutOfWindow]);
    assert!(h.sink.alerts()[0].approved, "the plan covered it; only the window did not");
    assert!(!fires(&change(&edit, ci(), LATER), RuleId::OutOfWindow));
    // Argo CD may change at any hour (it still needs a plan).
    let before = storefront();
    let mut after = before.clone();
    edit(&mut after);
    let mut h = Harness::new();
    let mut plan = ci_plan("shop");
    plan.id = "gitops".into();
    plan.actor = sentinel_core::policy::Pattern::new("argocd:*").unwrap();
    sentinel_core::store::Plans::put_plan(&h.store, &plan, DAY.parse().unwrap()).unwrap();
    h.feed(&[
        write("create", "create", "ingresses", "shop", "web", DAY, ci(), Some(&before)),
        write(
            "change",
            "update",
            "ingresses",
            "shop",
            "web",
            NIGHT,
            service_account("argocd", "argocd-server"),
            Some(&after),
        ),
    ]);
    assert!(h.sink.published.is_empty(), "{:?}", h.sink.rules());
}

#[test]
fn unapproved_actor_fires_for_a_stranger_even_with_a_plan_and_window() {
    let edit = annotate("rewrite-target", Some("/"));
    let h = change(&edit, service_account("default", "builder"), LATER);
    assert!(fires(&h, RuleId::UnapprovedActor));
    assert!(!fires(&h, RuleId::OutOfWindow));
    assert!(!fires(&change(&edit, ci(), LATER), RuleId::UnapprovedActor));
}

#[test]
fn unplanned_fires_without_a_plan_or_with_another_manifest() {
    let ing = |ns: &str| {
        let mut o = storefront();
        o["metadata"]["namespace"] = json!(ns);
        o
    };
    let mut h = Harness::new();
    h.feed(&[write("c", "create", "ingresses", "blog", "web", DAY, ci(), Some(&ing("blog")))]);
    assert_eq!(h.sink.rules(), [RuleId::Unplanned]);
    // A plan pinned to a digest: the same manifest passes, another does not.
    let state = sentinel_core::IngressState::from_value(&ing("blog")).unwrap();
    let mut plan = ci_plan("blog");
    plan.digest = Some(sentinel_core::plan::manifest_digest(&state));
    let mut h = Harness::new();
    sentinel_core::store::Plans::put_plan(&h.store, &plan, DAY.parse().unwrap()).unwrap();
    let mut other = ing("blog");
    other["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-alias"] = json!("admin.blog");
    h.feed(&[
        write("c", "create", "ingresses", "blog", "web", DAY, ci(), Some(&ing("blog"))),
        write("d", "create", "ingresses", "blog", "web2", DAY, ci(), Some(&other)),
    ]);
    assert_eq!(h.sink.alerts().len(), 1);
    let signal = &h.sink.alerts()[0].signals[0];
    assert_eq!((signal.rule, signal.resource.name.as_deref()), (RuleId::Unplanned, Some("web2")));
    assert!(signal.summary.contains("differs from the manifest approved"));
}

#[test]
fn a_denied_write_is_a_signal_and_an_allowed_one_is_not() {
    let mut denied = write("x", "patch", "ingresses", "shop", "web", NIGHT, mallory(), None);
    denied["responseStatus"] = json!({"code": 403, "reason": "Forbidden"});
    let low = TEST_POLICY.replacen("require_plans = true", "require_plans = true\nalert_threshold = \"low\"", 1);
    let mut h = Harness::with_policy(&low);
    h.feed(std::slice::from_ref(&denied));
    assert_eq!(h.sink.rules(), [RuleId::Denied]);
    let mut h = Harness::new();
    h.feed(&[write("x", "create", "ingresses", "shop", "web", LATER, ci(), Some(&storefront()))]);
    assert!(h.sink.published.is_empty());
    // Below the default threshold (medium), a refused write alone is held
    // with its incident, and joins the alert a louder signal opens.
    let mut h = Harness::new();
    h.feed(&[write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront()))]);
    h.feed(&[denied]);
    assert!(h.sink.published.is_empty());
    assert_eq!(h.stats().held, 1);
    let mut snippet = storefront();
    snippet["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!("return 200;");
    h.feed(&[write("s", "update", "ingresses", "shop", "web", "2024-05-02T02:05:00Z", mallory(), Some(&snippet))]);
    let alert = &h.sink.alerts()[0];
    assert_eq!(alert.signals[0].rule, RuleId::Denied, "the held signal opens the alert's history");
    assert!(alert.signals.iter().any(|s| s.rule == RuleId::SnippetInjected));
}

#[test]
fn identity_unresolved_fires_for_a_generic_session_until_its_key_is_known() {
    let edit = annotate("rewrite-target", Some("/"));
    let generic = || iam_user("Admin", "EKSGetTokenAuth", "ASIASHARED");
    assert!(fires(&change(&edit, generic(), NIGHT), RuleId::IdentityUnresolved));
    assert!(!fires(&change(&edit, mallory(), NIGHT), RuleId::IdentityUnresolved));
    // With an identity record for the access key, the origin is known.
    let before = storefront();
    let mut after = before.clone();
    edit(&mut after);
    let mut h = Harness::new();
    let record = sentinel_core::actor::IdentityRecord {
        originating_principal: Some("alice@example.com".into()),
        issued_by: "AssumeRoleWithSAML".into(),
        ..Default::default()
    };
    h.store
        .put_identity(
            &sentinel_core::keys::identity(&sentinel_core::actor::Credential::AccessKey("ASIASHARED".into())),
            &record,
            Expect::Any,
            None,
            DAY.parse().unwrap(),
        )
        .unwrap();
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&before)),
        write("u", "update", "ingresses", "shop", "web", NIGHT, generic(), Some(&after)),
    ]);
    assert!(!fires(&h, RuleId::IdentityUnresolved));
    assert_eq!(h.sink.alerts()[0].actor.originating_principal.as_deref(), Some("alice@example.com"));
    assert_eq!(h.sink.alerts()[0].actor_key, "alice@example.com");
}

#[test]
fn first_sight_alerts_only_when_the_object_is_risky_in_itself() {
    let mut risky = storefront();
    risky["metadata"]["annotations"]["nginx.ingress.kubernetes.io/configuration-snippet"] = json!("return 200;");
    risky["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    let mut h = Harness::new();
    // Seen first through an update at night by an unknown actor: no baseline to diff.
    h.feed(&[write("u", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&risky))]);
    assert_eq!(h.sink.rules(), [RuleId::AllowlistWidened, RuleId::SnippetInjected]);
    let mut h = Harness::new();
    h.feed(&[write("u", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&storefront()))]);
    assert!(h.sink.published.is_empty(), "a plain first sight is recorded, not alerted: {:?}", h.sink.rules());
}

#[test]
fn signals_of_one_actor_within_the_window_are_one_alert_revised() {
    let mut h = Harness::new();
    let mut a = storefront();
    a["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] = json!("/");
    let mut b = a.clone();
    b["spec"]["ingressClassName"] = json!("rogue");
    let mut c = b.clone();
    c["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!("return 200;");
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
        write("1", "update", "ingresses", "shop", "web", "2024-05-02T02:00:00Z", mallory(), Some(&a)),
        write("2", "update", "ingresses", "shop", "web", "2024-05-02T02:20:00Z", mallory(), Some(&b)),
        write("3", "update", "ingresses", "shop", "web", "2024-05-02T04:00:00Z", mallory(), Some(&c)),
    ]);
    let alerts = h.sink.alerts();
    assert_eq!(alerts.len(), 2, "two incidents: 02:00+02:20, then 04:00");
    assert_eq!(alerts[0].revision, 2);
    assert_eq!(alerts[0].audit_ids, ["1", "2"]);
    assert_eq!(h.sink.published.len(), 3);
    assert_eq!(h.sink.published[0].alert_id, h.sink.published[1].alert_id);
    // Breadth escalates: rewrite (medium) + class (high) + three judgement rules.
    assert_eq!(alerts[0].severity, sentinel_core::rules::Severity::Critical);
}

#[test]
fn alert_ids_are_stable_across_runs_and_reruns_add_nothing() {
    let edit = annotate("server-snippet", Some("return 200;"));
    let first = change(&edit, mallory(), NIGHT);
    let second = change(&edit, mallory(), NIGHT);
    assert_eq!(first.sink.published[0].alert_id, second.sink.published[0].alert_id);
    // The same events again on the same state: nothing new.
    let mut h = change(&edit, mallory(), NIGHT);
    let before = storefront();
    let mut after = before.clone();
    edit(&mut after);
    let published = h.sink.published.len();
    h.feed(&[
        write("create", "create", "ingresses", "shop", "web", DAY, ci(), Some(&before)),
        write("change", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&after)),
    ]);
    assert_eq!(h.sink.published.len(), published);
    assert_eq!(h.stats().duplicates, 2);
}

#[test]
fn suppressions_silence_a_rule_until_they_expire() {
    let policy = format!(
        "{TEST_POLICY}\n[[suppressions]]\nrule = \"ingress.rewrite.changed\"\nnamespaces = [\"shop\"]\nreason = \"migration\"\nexpires = \"2024-05-02T01:00:00Z\"\n"
    );
    let run = |time: &str| {
        let mut h = Harness::with_policy(&policy);
        let mut after = storefront();
        after["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] = json!("/");
        h.feed(&[
            write("c", "create", "ingresses", "shop", "web", DAY, ci(), Some(&storefront())),
            write("u", "update", "ingresses", "shop", "web", time, ci(), Some(&after)),
        ]);
        h
    };
    let silenced = run("2024-05-01T23:00:00Z");
    assert_eq!(silenced.sink.rules(), [RuleId::OutOfWindow]);
    assert_eq!(silenced.stats().suppressed, 1);
    assert_eq!(run(NIGHT).sink.rules(), [RuleId::RewriteChanged, RuleId::OutOfWindow]);
}

#[test]
fn a_learned_pattern_flags_a_change_far_outside_it_where_no_window_is_set() {
    let policy = "cluster = \"test\"\nrequire_plans = false\n[[actors]]\nname = \"ci\"\niam_role_arn = \"arn:aws:iam::111122223333:role/Deploy\"\n[learning]\nmin_changes = 10\nmin_history = \"7d\"\n";
    let mut h = Harness::with_policy(policy);
    let mut events =
        vec![write("c", "create", "ingresses", "shop", "web", "2024-04-01T10:00:00Z", ci(), Some(&storefront()))];
    for day in 1..=14 {
        let mut o = storefront();
        o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] = json!(format!("/v{day}"));
        let time = format!("2024-04-{:02}T10:15:00Z", day + 1);
        events.push(write(&format!("d{day}"), "update", "ingresses", "shop", "web", &time, ci(), Some(&o)));
    }
    h.feed(&events);
    assert!(h.sink.published.is_empty(), "learning: {:?}", h.sink.rules());
    let mut o = storefront();
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] = json!("/night");
    h.feed(&[write("n", "update", "ingresses", "shop", "web", "2024-04-20T03:00:00Z", ci(), Some(&o))]);
    assert_eq!(h.sink.rules(), [RuleId::RewriteChanged, RuleId::OutOfWindow]);
    let mut o2 = o.clone();
    o2["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] = json!("/day");
    let before = h.sink.published.len();
    h.feed(&[write("m", "update", "ingresses", "shop", "web", "2024-04-22T10:30:00Z", ci(), Some(&o2))]);
    assert_eq!(h.sink.published.len(), before, "inside the learned hours");
}

#[test]
fn sensitive_namespaces_raise_severity() {
    let mut h = Harness::new();
    let mut o = storefront();
    o["metadata"]["namespace"] = json!("vault");
    h.feed(&[write("c", "delete", "ingresses", "vault", "web", NIGHT, mallory(), Some(&o))]);
    let deleted = h.sink.alerts()[0].signals.iter().find(|s| s.rule == RuleId::Deleted).unwrap().severity;
    assert_eq!(deleted, sentinel_core::rules::Severity::High);
}

/// Every rule id of the catalogue is exercised by a test here (each content
/// case carries its own look-alike) or, for the CloudTrail rules, in the
/// identity tests, for forged events in the delivery tests, and for the
/// manifest rules in the manifest tests.
#[test]
fn every_rule_has_a_test() {
    let source = [
        include_str!("rules.rs"),
        include_str!("identity.rs"),
        include_str!("delivery.rs"),
        include_str!("manifest.rs"),
    ]
    .concat();
    for rule in RuleId::ALL {
        let variant = format!("RuleId::{rule:?}");
        let used = source
            .match_indices(&variant)
            .any(|(i, _)| source[i + variant.len()..].chars().next().is_some_and(|c| !c.is_alphanumeric()));
        assert!(used, "{rule} is not tested");
    }
}

#[test]
fn a_create_with_a_host_outside_the_known_patterns_fires_and_a_first_sight_does_not() {
    let mut outside = storefront();
    outside["spec"]["rules"][0]["host"] = json!("shop.evil.example.net");
    let mut h = Harness::new();
    h.feed(&[write("c", "create", "ingresses", "shop", "web", NIGHT, mallory(), Some(&outside))]);
    assert!(fires(&h, RuleId::HostAdded), "{:?}", h.sink.rules());
    let mut h = Harness::new();
    h.feed(&[write("c", "create", "ingresses", "shop", "web", NIGHT, mallory(), Some(&storefront()))]);
    assert!(!fires(&h, RuleId::HostAdded), "a known host: {:?}", h.sink.rules());
    // Seen first through an update, the same object is only recorded.
    let mut h = Harness::new();
    h.feed(&[write("u", "update", "ingresses", "shop", "web", NIGHT, mallory(), Some(&outside))]);
    assert!(h.sink.published.is_empty(), "{:?}", h.sink.rules());
}

#[test]
fn a_wildcard_host_is_known_only_by_that_exact_pattern() {
    // `*.shop.example.com` is a known pattern of shop: as a glob it matches the
    // literal `*.api.shop.example.com`, which must still be flagged.
    let add = |host: &'static str| {
        move |o: &mut Value| {
            o["spec"]["rules"].as_array_mut().unwrap().push(json!({"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}));
        }
    };
    let h = change(add("*.api.shop.example.com"), mallory(), NIGHT);
    let signal = h.sink.alerts()[0].signals.iter().find(|s| s.rule == RuleId::HostAdded).cloned();
    assert_eq!(signal.map(|s| s.severity), Some(sentinel_core::rules::Severity::High));
    assert!(!fires(&change(add("*.shop.example.com"), mallory(), NIGHT), RuleId::HostAdded), "the exact pattern");
    assert!(!fires(&change(add("cart.shop.example.com"), mallory(), NIGHT), RuleId::HostAdded), "a concrete host");
}

#[test]
fn without_known_hosts_a_new_host_is_judged_against_the_hosts_the_namespace_has_had() {
    let policy = "cluster = \"test\"\n";
    let ingress = |name: &str, host: &str| {
        let mut o = storefront();
        o["metadata"]["namespace"] = json!("blog");
        o["metadata"]["name"] = json!(name);
        o["spec"]["rules"][0]["host"] = json!(host);
        o["spec"]["tls"][0]["hosts"] = json!([host]);
        o
    };
    let mut h = Harness::with_policy(policy);
    h.feed(&[
        write("a", "create", "ingresses", "blog", "a", DAY, ci(), Some(&ingress("a", "a.blog.example.com"))),
        write("b", "create", "ingresses", "blog", "b", LATER, ci(), Some(&ingress("b", "b.blog.example.com"))),
    ]);
    assert!(h.sink.published.is_empty(), "a sibling of a known host: {:?}", h.sink.rules());
    h.feed(&[write(
        "e",
        "create",
        "ingresses",
        "blog",
        "e",
        NIGHT,
        ci(),
        Some(&ingress("e", "login.attacker.example.net")),
    )]);
    assert!(fires(&h, RuleId::HostAdded), "a host unlike any the namespace had");
    h.feed(&[write("w", "create", "ingresses", "blog", "w", NIGHT, ci(), Some(&ingress("w", "*.blog.example.com")))]);
    let wildcard = h.sink.alerts().iter().flat_map(|a| &a.signals).find(|s| s.audit_id == "w").cloned().unwrap();
    assert_eq!((wildcard.rule, wildcard.severity), (RuleId::HostAdded, sentinel_core::rules::Severity::High));
}

#[test]
fn once_learned_an_actor_new_to_the_cluster_is_a_signal_once() {
    let policy = "cluster = \"test\"\n";
    let mut h = Harness::with_policy(policy);
    // Two weeks of CI changes teach the cluster's history.
    let start: chrono::DateTime<chrono::Utc> = "2024-04-15T10:00:00Z".parse().unwrap();
    let mut events = Vec::new();
    let with_path = |path: &str| {
        let mut o = storefront();
        o["spec"]["rules"][0]["http"]["paths"].as_array_mut().unwrap().push(json!(
            {"path": path, "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}));
        o
    };
    for day in 0..16 {
        let o = with_path(&format!("/v{day}"));
        let t = (start + chrono::Duration::days(day)).to_rfc3339();
        let verb = if day == 0 { "create" } else { "update" };
        events.push(write(&format!("ci-{day}"), verb, "ingresses", "shop", "web", &t, ci(), Some(&o)));
    }
    h.feed(&events);
    assert!(h.sink.published.is_empty(), "{:?}", h.sink.rules());
    let o = with_path("/eve");
    h.feed(&[write("eve-1", "update", "ingresses", "shop", "web", "2024-05-01T11:00:00Z", mallory(), Some(&o))]);
    assert_eq!(h.sink.rules(), [RuleId::NewActor]);
    let before = h.sink.published.len();
    let o = with_path("/eve2");
    h.feed(&[write("eve-2", "update", "ingresses", "shop", "web", "2024-05-01T15:00:00Z", mallory(), Some(&o))]);
    assert_eq!(h.sink.published.len(), before, "seen once, known since");
}
