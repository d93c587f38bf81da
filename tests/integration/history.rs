//! A generated cluster history: 10,000 routine writes stay silent, and 20
//! insider actions injected into the same history are each caught by the
//! right rule.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use sentinel_core::rules::RuleId;
use sentinel_tests::engine::*;
use serde_json::{Value, json};

const NAMESPACES: [&str; 4] = ["shop", "blog", "api", "docs"];

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn ingress(ns: &str, name: &str) -> Value {
    let mut o = storefront();
    o["metadata"]["namespace"] = json!(ns);
    o["metadata"]["name"] = json!(name);
    o["spec"]["rules"][0]["host"] = json!(format!("{name}.{ns}.example.com"));
    o["spec"]["tls"] = json!([{"hosts": [format!("{name}.{ns}.example.com")], "secretName": format!("{name}-tls")}]);
    o
}

fn status_write(id: &str, ns: &str, name: &str, time: &str) -> Value {
    let mut e = write(
        id,
        "update",
        "ingresses",
        ns,
        name,
        time,
        service_account("ingress-nginx", "ingress-nginx"),
        Some(&ingress(ns, name)),
    );
    e["objectRef"]["subresource"] = json!("status");
    e
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Inside the test policy's window: weekdays 09:00–17:00 UTC.
fn in_window(t: DateTime<Utc>) -> bool {
    t.weekday().num_days_from_monday() < 5 && (9..17).contains(&t.hour())
}

struct History {
    events: Vec<Value>,
    /// Injected audit id → the rule that must catch it.
    expected: Vec<(String, RuleId)>,
}

/// What the routine material changes of a generated history are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Routine {
    /// Planned rewrites and timeouts by CI inside the window (judged approved under the test policy).
    Planned,
    /// Growth: CI creates new apps and adds paths in working hours (nothing a content rule objects to).
    Growth,
}

fn generate(routine: usize, inject: bool) -> History {
    generate_with(routine, inject, Routine::Planned)
}

fn generate_with(routine: usize, inject: bool, mode: Routine) -> History {
    let mut rng = Lcg(7);
    let mut objects: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut events = Vec::new();
    let mut expected = Vec::new();
    let start: DateTime<Utc> = "2024-03-04T09:30:00Z".parse().unwrap();
    // Initial deploys by CI, inside the window, under plans.
    for (i, ns) in NAMESPACES.iter().enumerate() {
        for n in 0..5 {
            let name = format!("app{n}");
            let o = ingress(ns, &name);
            let t = start + Duration::minutes((i * 5 + n) as i64);
            events.push(write(&format!("init-{ns}-{n}"), "create", "ingresses", ns, &name, &ts(t), ci(), Some(&o)));
            objects.insert((ns.to_string(), name), o);
        }
    }
    let legacy = ingress("shop", "legacy");
    events.push(write("init-legacy", "create", "ingresses", "shop", "legacy", &ts(start), ci(), Some(&legacy)));
    let mut t = start + Duration::hours(1);
    for i in 0..routine {
        t += Duration::minutes(7 + rng.below(5) as i64);
        let keys: Vec<(String, String)> = objects.keys().cloned().collect();
        let (ns, name) = keys[rng.below(keys.len() as u64) as usize].clone();
        let id = format!("r{i}");
        let kind = rng.below(10);
        let event = if mode == Routine::Growth && kind == 7 && in_window(t) {
            // A new app in the namespace, under its usual domain.
            let app = format!("new{i}");
            let o = ingress(&ns, &app);
            let e = write(&id, "create", "ingresses", &ns, &app, &ts(t), ci(), Some(&o));
            objects.insert((ns.clone(), app), o);
            e
        } else {
            let Some(obj) = objects.get_mut(&(ns.clone(), name.clone())) else { unreachable!("a key just read") };
            routine_write(&Write { kind, mode, i, t, id: &id, ns: &ns, name: &name }, obj)
        };
        events.push(event);
        if inject && i % (routine / 20) == routine / 40 && expected.len() < 20 {
            let n = expected.len();
            let night = {
                let d = t.date_naive().and_hms_opt(2, 0, 0).unwrap().and_utc() + Duration::days(1);
                d + Duration::minutes(n as i64)
            };
            let (event, rule) = insider(n, &mut objects, night);
            // The clock moves to the insider's action, so later routine writes
            // (which carry it, as the live object would) come after it.
            t = event["stageTimestamp"].as_str().unwrap().parse().unwrap();
            expected.push((event["auditID"].as_str().unwrap().to_owned(), rule));
            events.push(event);
        }
    }
    // The history is fed in time order, as replay does.
    events.sort_by(|a, b| a["stageTimestamp"].as_str().cmp(&b["stageTimestamp"].as_str()));
    History { events, expected }
}

/// One routine write: what it is, to which object, when.
struct Write<'a> {
    kind: u64,
    mode: Routine,
    i: usize,
    t: DateTime<Utc>,
    id: &'a str,
    ns: &'a str,
    name: &'a str,
}

/// The routine write `w` to `obj`, which it changes as the live object would change.
fn routine_write(w: &Write<'_>, obj: &mut Value) -> Value {
    let Write { kind, mode, i, t, id, ns, name } = *w;
    match kind {
        // Image bumps recorded in an annotation nobody judges, by CI or Argo CD, at any hour.
        0..=4 => {
            obj["metadata"]["annotations"]["app.example.com/image-tag"] = json!(format!("v1.{i}"));
            let who =
                if kind.is_multiple_of(2) { ci() } else { service_account("argocd", "argocd-application-controller") };
            write(id, "patch", "ingresses", ns, name, &ts(t), who, Some(obj))
        }
        // Controller status writes and replica scaling: filtered before the engine.
        5 => status_write(id, ns, name, &ts(t)),
        6 => write(id, "patch", "deployments", ns, name, &ts(t), ci(), Some(&json!({"spec": {"replicas": 3}}))),
        // Material changes by CI inside the window (an image bump when the clock is outside it).
        _ if !in_window(t) => {
            obj["metadata"]["annotations"]["app.example.com/image-tag"] = json!(format!("v2.{i}"));
            write(id, "patch", "ingresses", ns, name, &ts(t), ci(), Some(obj))
        }
        // Growth: a new path for the app.
        _ if mode == Routine::Growth => {
            if let Some(paths) = obj["spec"]["rules"][0]["http"]["paths"].as_array_mut() {
                paths.push(json!({"path": format!("/p{i}"), "pathType": "Prefix",
                                  "backend": {"service": {"name": name, "port": {"number": 80}}}}));
            }
            write(id, "update", "ingresses", ns, name, &ts(t), ci(), Some(obj))
        }
        // Planned: timeouts and rewrites, under the CI's plans.
        _ => {
            obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] =
                json!(format!("{}", 30 + i % 60));
            obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] =
                json!(format!("/r{}", i % 7));
            write(id, "update", "ingresses", ns, name, &ts(t), ci(), Some(obj))
        }
    }
}

/// The n-th insider action, applied to the generator's own view of the objects.
fn insider(n: usize, objects: &mut BTreeMap<(String, String), Value>, night: DateTime<Utc>) -> (Value, RuleId) {
    let ns = NAMESPACES[n % 2]; // shop and blog: objects always present
    let name = format!("app{}", n % 5);
    let key = (ns.to_string(), name.clone());
    let id = format!("insider-{n}");
    let time = ts(night);
    let day = {
        let d = night.date_naive().and_hms_opt(10, 0, 0).unwrap().and_utc();
        ts(if d.weekday().num_days_from_monday() < 5 { d } else { d + Duration::days(2) })
    };
    let Some(obj) = objects.get_mut(&key) else { unreachable!("shop and blog objects are never deleted") };
    let a =
        |o: &mut Value, k: &str, v: Value| o["metadata"]["annotations"][format!("nginx.ingress.kubernetes.io/{k}")] = v;
    let edit = |obj: &mut Value, f: &dyn Fn(&mut Value)| {
        f(obj);
        obj.clone()
    };
    let update = |body: &Value| write(&id, "update", "ingresses", ns, &name, &time, mallory(), Some(body));
    match n {
        0 => (update(&edit(obj, &|o| a(o, "allowlist-source-range", json!("0.0.0.0/0")))), RuleId::AllowlistWidened),
        1 => (update(&edit(obj, &|o| a(o, "configuration-snippet", json!("return 200;")))), RuleId::SnippetInjected),
        2 => (
            update(&edit(obj, &|o| a(o, "permanent-redirect", json!("https://evil.example.net")))),
            RuleId::RewriteChanged,
        ),
        3 => (
            update(&edit(obj, &|o| {
                o["metadata"]["annotations"].as_object_mut().unwrap().remove("nginx.ingress.kubernetes.io/auth-url");
            })),
            RuleId::AuthWeakened,
        ),
        4 => (update(&edit(obj, &|o| o["spec"]["tls"] = json!([]))), RuleId::TlsWeakened),
        5 => (
            update(&edit(obj, &|o| {
                o["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("nginx.ingress.kubernetes.io/custom-headers");
            })),
            RuleId::HeadersStripped,
        ),
        6 => (
            update(&edit(obj, &|o| {
                o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("exfil")
            })),
            RuleId::BackendRerouted,
        ),
        7 => (
            update(&edit(obj, &|o| {
                o["spec"]["rules"].as_array_mut().unwrap().push(json!({"host": "*.evil.example.net"}))
            })),
            RuleId::HostAdded,
        ),
        8 => (update(&edit(obj, &|o| o["spec"]["ingressClassName"] = json!("rogue"))), RuleId::ClassChanged),
        9 => (
            update(&edit(obj, &|o| {
                o["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] = json!("internet-facing")
            })),
            RuleId::ExposurePublic,
        ),
        // An object routine writes never touch, so nothing writes it after its deletion.
        10 => (write(&id, "delete", "ingresses", "shop", "legacy", &time, mallory(), None), RuleId::Deleted),
        11 => (
            write(&id, "patch", "configmaps", "ingress-nginx", "ingress-nginx-controller", &time, mallory(), None),
            RuleId::ControllerConfigChanged,
        ),
        12 => (
            write(&id, "update", "secrets", ns, &format!("{name}-tls"), &time, mallory(), None),
            RuleId::TlsSecretRotated,
        ),
        13 => {
            let mut e = write(&id, "patch", "ingresses", ns, &name, &time, mallory(), None);
            e["responseStatus"] = json!({"code": 403});
            (e, RuleId::Denied)
        }
        14 => {
            let body = edit(obj, &|o| a(o, "x-forwarded-prefix", json!("/admin")));
            (
                write(
                    &id,
                    "update",
                    "ingresses",
                    ns,
                    &name,
                    &time,
                    iam_user("Admin", "EKSGetTokenAuth", "ASIASHARED"),
                    Some(&body),
                ),
                RuleId::IdentityUnresolved,
            )
        }
        15 => {
            let body = edit(obj, &|o| a(o, "rewrite-target", json!("/night")));
            (write(&id, "update", "ingresses", ns, &name, &time, ci(), Some(&body)), RuleId::OutOfWindow)
        }
        16 => {
            let body = edit(obj, &|o| a(o, "app-root", json!("/builder")));
            (
                write(&id, "update", "ingresses", ns, &name, &day, service_account("default", "builder"), Some(&body)),
                RuleId::UnapprovedActor,
            )
        }
        17 => {
            let o = ingress("api", "shadow");
            (write(&id, "create", "ingresses", "api", "shadow", &day, ci(), Some(&o)), RuleId::Unplanned)
        }
        18 => {
            let svc = json!({"kind": "Service", "spec": {"type": "ExternalName", "externalName": "collector.evil.example.net"}});
            (write(&id, "update", "services", ns, "web", &time, mallory(), Some(&svc)), RuleId::BackendRerouted)
        }
        _ => (update(&edit(obj, &|o| o["spec"]["tls"][0]["secretName"] = json!("attacker-cert"))), RuleId::TlsWeakened),
    }
}

fn run(history: &History) -> Harness {
    // Every signal opens an alert here, so each insider action can be checked by its own.
    let mut h = Harness::with_policy(&TEST_POLICY.replacen(
        "cluster = \"test\"",
        "cluster = \"test\"\nalert_threshold = \"low\"",
        1,
    ));
    for ns in ["blog", "docs", "api"] {
        let mut plan = ci_plan(ns);
        // Only the app* objects are planned, so an unplanned one stands out.
        plan.name = sentinel_core::policy::Pattern::new("app*").unwrap();
        sentinel_core::store::Plans::put_plan(&h.store, &plan, "2024-01-01T00:00:00Z".parse().unwrap()).unwrap();
    }
    h.feed(&history.events);
    h
}

#[test]
fn ten_thousand_routine_writes_raise_nothing() {
    let history = generate(10_000, false);
    assert!(history.events.len() >= 10_000);
    let h = run(&history);
    assert!(h.sink.published.is_empty(), "routine history raised {:?}: {:#?}", h.sink.rules(), h.sink.alerts().first());
    assert!(h.stats().approved > 500, "planned changes recorded as approved: {:?}", h.stats());
    assert!(h.stats().routine > 3000, "{:?}", h.stats());
}

#[test]
fn twenty_insider_actions_in_the_same_history_are_each_caught_by_the_right_rule() {
    let history = generate(10_000, true);
    assert_eq!(history.expected.len(), 20);
    let h = run(&history);
    let signals: Vec<(&str, RuleId)> =
        h.sink.alerts().iter().flat_map(|a| a.signals.iter().map(|s| (s.audit_id.as_str(), s.rule))).collect();
    for (audit_id, rule) in &history.expected {
        assert!(
            signals.contains(&(audit_id.as_str(), *rule)),
            "{audit_id} must raise {rule}; got {:?}",
            signals.iter().filter(|(id, _)| id == audit_id).collect::<Vec<_>>()
        );
    }
    // Nothing but the insider actions raised anything.
    let stray: Vec<&(&str, RuleId)> = signals.iter().filter(|(id, _)| !id.starts_with("insider-")).collect();
    assert!(stray.is_empty(), "routine writes raised {stray:?}");
}

/// Without any policy (the first thing a new user tries): no windows, no
/// approved actors, no plans, no known hosts. CI grows the cluster in working
/// hours (new apps, new paths) beside the usual churn.
fn run_without_policy(history: &History) -> Harness {
    let mut h = Harness::with_policy("");
    // CloudTrail names the person behind mallory's key: she signs in before each action.
    let trail: Vec<Value> = history
        .events
        .iter()
        .filter(|e| e["auditID"].as_str().is_some_and(|id| id.starts_with("insider-")))
        .map(|e| {
            let at: DateTime<Utc> = e["stageTimestamp"].as_str().unwrap().parse().unwrap();
            let id = format!("sso-{}", e["auditID"].as_str().unwrap());
            sentinel_tests::cloudtrail::sso(&id, &ts(at - Duration::minutes(5)), "mallory@example.com", "ASIAMALLORY")
        })
        .collect();
    h.feed_both(&history.events, &trail);
    h
}

#[test]
fn without_a_policy_ten_thousand_routine_writes_raise_nothing() {
    let history = generate_with(10_000, false, Routine::Growth);
    let creates = history.events.iter().filter(|e| e["verb"] == "create").count();
    assert!(creates > 100, "new apps among the routine writes: {creates}");
    let h = run_without_policy(&history);
    assert!(h.sink.published.is_empty(), "raised {:?}: {:#?}", h.sink.rules(), h.sink.alerts().first());
}

#[test]
fn without_a_policy_the_insider_actions_are_each_caught_by_their_content_rule_with_the_right_origin() {
    let history = generate_with(10_000, true, Routine::Growth);
    let h = run_without_policy(&history);
    let alerts = h.sink.alerts();
    let signals: Vec<(&str, RuleId, Option<&str>)> = alerts
        .iter()
        .flat_map(|a| a.signals.iter().map(|s| (s.audit_id.as_str(), s.rule, a.actor.originating_principal.as_deref())))
        .collect();
    // What content rules catch whatever the policy: the judgement rules need one.
    let judgement = [
        RuleId::OutOfWindow,
        RuleId::UnapprovedActor,
        RuleId::Unplanned,
        RuleId::Denied,
        RuleId::IdentityUnresolved,
        RuleId::TlsSecretRotated,
    ];
    let mut caught = 0;
    for (audit_id, rule) in history.expected.iter().filter(|(_, r)| !judgement.contains(r)) {
        let hit = signals.iter().find(|(id, r, _)| id == audit_id && r == rule);
        let Some((_, _, origin)) = hit else { panic!("{audit_id} must raise {rule}; got {signals:?}") };
        if audit_id != "insider-16" {
            assert_eq!(*origin, Some("mallory@example.com"), "{audit_id}");
        }
        caught += 1;
    }
    assert!(caught >= 11, "{caught}");
    // Routine writes raise nothing, except new routes into the Service an
    // insider turned into an ExternalName: those are caught too.
    let stray: Vec<_> = alerts
        .iter()
        .flat_map(|a| &a.signals)
        .filter(|s| !s.audit_id.starts_with("insider-"))
        .filter(|s| !(s.rule == RuleId::BackendRerouted && s.summary.contains("ExternalName service web")))
        .map(|s| (s.audit_id.clone(), s.rule, s.summary.clone()))
        .collect();
    assert!(stray.is_empty(), "routine writes raised {stray:?}");
}
